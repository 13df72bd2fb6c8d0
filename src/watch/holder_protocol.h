// The local protocol between the holder (holder.h) and the tierflow processes on its host: a
// SOCK_SEQPACKET unix socket, one message per packet, file descriptors passed with
// SCM_RIGHTS. Only root may connect (the holder checks SO_PEERCRED).
//
// Every message starts with a u8 type; integers are little-endian fixed width.
//   Hello   (client -> holder): type 1 | u8 role (1 = watcher, 2 = pass)
//   Welcome (holder -> client): type 2 | u32 len + fsid | u32 len + mount
//   Refused (holder -> client): type 3 | u32 len + reason (then the holder closes)
//   Event   (holder -> watcher): type 4 | u64 token | u64 mask | i32 pid | u8 has_range |
//           u64 offset | u64 count, with the event's file descriptor attached
//   Answer  (watcher -> holder): type 5 | u64 token | i32 error (0 = allow)
// A "pass" client is trusted while connected: events raised by its process are allowed at once
// (its I/O is tierflow's own: a release punching, a mover restoring). A "watcher" is trusted
// the same way and receives the events of released files; at most one watcher is connected.
#pragma once

#include <sys/un.h>

#include <cstdint>
#include <string>
#include <variant>

#include "common/status.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::watch {

using mover::UniqueFd;

enum class Role : uint8_t { kWatcher = 1, kPass = 2 };

struct HelloMsg {
  Role role = Role::kPass;
};
struct WelcomeMsg {
  std::string fsid;
  std::string mount;
};
struct RefusedMsg {
  std::string reason;
};
struct EventMsg {
  uint64_t token = 0;
  uint64_t mask = 0;
  int32_t pid = 0;
  bool has_range = false;
  uint64_t offset = 0;
  uint64_t count = 0;
};
struct AnswerMsg {
  uint64_t token = 0;
  int32_t error = 0;
};
using HolderMessage = std::variant<HelloMsg, WelcomeMsg, RefusedMsg, EventMsg, AnswerMsg>;

std::string EncodeMessage(const HolderMessage& msg);
// Code::kInvalidArgument for an unknown type, a short or overlong packet.
Result<HolderMessage> DecodeMessage(std::string_view bytes);

// Where the holder of filesystem `fsid` listens: $TIERFLOW_RUN_DIR (default /run/tierflow)
// + "/holder-" + fsid + ".sock".
std::string HolderSocketPath(const std::string& fsid);
// The unix address of `socket_path`; Code::kInvalidArgument (naming TIERFLOW_RUN_DIR) when it
// does not fit in sun_path.
Result<sockaddr_un> HolderSocketAddress(const std::string& socket_path);

// Sends one message, with `fd` attached when >= 0. EPIPE/ECONNRESET are Code::kUnavailable.
Status SendMessage(int sock, const HolderMessage& msg, int fd = -1);
struct Received {
  HolderMessage msg;
  UniqueFd fd;  // attached descriptor, if any
};
// Receives one message (blocking unless the socket is nonblocking: then Code::kUnavailable
// "would block"); the peer closing is Code::kUnavailable "closed".
Result<Received> ReceiveMessage(int sock);

// Connects to `socket_path` (SOCK_SEQPACKET, close-on-exec), sends Hello{role} and waits up to
// `timeout_ms` for Welcome. A missing socket or no listener is Code::kNotFound; Refused is
// Code::kFailedPrecondition with the holder's reason.
Result<UniqueFd> ConnectToHolder(const std::string& socket_path, Role role, int64_t timeout_ms,
                                 WelcomeMsg* welcome = nullptr);

}  // namespace tierflow::watch
