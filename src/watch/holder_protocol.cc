// The holder's local socket protocol; see holder_protocol.h.
#include "watch/holder_protocol.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace tierflow::watch {
namespace {

enum MsgType : uint8_t { kHello = 1, kWelcome = 2, kRefused = 3, kEvent = 4, kAnswer = 5 };

// Larger than any message: a Welcome carries a mount path (at most PATH_MAX).
constexpr size_t kMaxMessage = 16 << 10;

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { Int(v, 4); }
  void U64(uint64_t v) { Int(v, 8); }
  void Str(const std::string& s) {
    U32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  std::string Take() { return std::move(out_); }

 private:
  void Int(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    uint64_t x;
    if (!Int(1, &x)) return false;
    *v = static_cast<uint8_t>(x);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t x;
    if (!Int(4, &x)) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool U64(uint64_t* v) { return Int(8, v); }
  bool Str(std::string* s) {
    uint32_t len;
    if (!U32(&len) || in_.size() - pos_ < len) return false;
    s->assign(in_.substr(pos_, len));
    pos_ += len;
    return true;
  }
  bool AtEnd() const { return pos_ == in_.size(); }

 private:
  bool Int(int bytes, uint64_t* v) {
    if (in_.size() - pos_ < static_cast<size_t>(bytes)) return false;
    uint64_t x = 0;
    for (int i = 0; i < bytes; ++i) {
      x |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += bytes;
    *v = x;
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
};

struct Encoder {
  Writer& w;
  void operator()(const HelloMsg& m) {
    w.U8(kHello);
    w.U8(static_cast<uint8_t>(m.role));
  }
  void operator()(const WelcomeMsg& m) {
    w.U8(kWelcome);
    w.Str(m.fsid);
    w.Str(m.mount);
  }
  void operator()(const RefusedMsg& m) {
    w.U8(kRefused);
    w.Str(m.reason);
  }
  void operator()(const EventMsg& m) {
    w.U8(kEvent);
    w.U64(m.token);
    w.U64(m.mask);
    w.U32(static_cast<uint32_t>(m.pid));
    w.U8(m.has_range ? 1 : 0);
    w.U64(m.offset);
    w.U64(m.count);
  }
  void operator()(const AnswerMsg& m) {
    w.U8(kAnswer);
    w.U64(m.token);
    w.U32(static_cast<uint32_t>(m.error));
  }
};

Result<HolderMessage> DecodeBody(uint8_t type, Reader& r) {
  switch (type) {
    case kHello: {
      uint8_t role;
      if (!r.U8(&role)) break;
      if (role != static_cast<uint8_t>(Role::kWatcher) &&
          role != static_cast<uint8_t>(Role::kPass)) {
        return Status(Code::kInvalidArgument,
                      fmt::format("holder hello names unknown role {}", role));
      }
      return HolderMessage(HelloMsg{static_cast<Role>(role)});
    }
    case kWelcome: {
      WelcomeMsg m;
      if (!r.Str(&m.fsid) || !r.Str(&m.mount)) break;
      return HolderMessage(std::move(m));
    }
    case kRefused: {
      RefusedMsg m;
      if (!r.Str(&m.reason)) break;
      return HolderMessage(std::move(m));
    }
    case kEvent: {
      EventMsg m;
      uint32_t pid;
      uint8_t has_range;
      if (!r.U64(&m.token) || !r.U64(&m.mask) || !r.U32(&pid) || !r.U8(&has_range) ||
          !r.U64(&m.offset) || !r.U64(&m.count)) {
        break;
      }
      if (has_range > 1) {
        return Status(Code::kInvalidArgument,
                      fmt::format("holder event message has has_range {}", has_range));
      }
      m.pid = static_cast<int32_t>(pid);
      m.has_range = has_range == 1;
      return HolderMessage(m);
    }
    case kAnswer: {
      AnswerMsg m;
      uint32_t error;
      if (!r.U64(&m.token) || !r.U32(&error)) break;
      m.error = static_cast<int32_t>(error);
      return HolderMessage(m);
    }
    default:
      return Status(Code::kInvalidArgument,
                    fmt::format("holder message has unknown type {}", type));
  }
  return Status(Code::kInvalidArgument,
                fmt::format("holder message of type {} is truncated", type));
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string HolderSocketPath(const std::string& fsid) {
  const char* dir = std::getenv("TIERFLOW_RUN_DIR");
  std::string base = dir != nullptr && *dir != '\0' ? dir : "/run/tierflow";
  return base + "/holder-" + fsid + ".sock";
}

Result<sockaddr_un> HolderSocketAddress(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Status(Code::kInvalidArgument,
                  fmt::format("holder socket path {} is longer than {} bytes; set "
                              "TIERFLOW_RUN_DIR to a shorter directory",
                              socket_path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  return addr;
}

std::string EncodeMessage(const HolderMessage& msg) {
  Writer w;
  std::visit(Encoder{w}, msg);
  return w.Take();
}

Result<HolderMessage> DecodeMessage(std::string_view bytes) {
  Reader r(bytes);
  uint8_t type;
  if (!r.U8(&type)) return Status(Code::kInvalidArgument, "holder message is empty");
  auto msg = DecodeBody(type, r);
  if (!msg.ok()) return msg;
  if (!r.AtEnd()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("holder message of type {} has trailing bytes", type));
  }
  return msg;
}

Status SendMessage(int sock, const HolderMessage& msg, int fd) {
  std::string bytes = EncodeMessage(msg);
  iovec iov{bytes.data(), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof(control));
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(bytes.size())) return Status::Ok();
  int err = n < 0 ? errno : EIO;
  if (err == EPIPE || err == ECONNRESET || err == ENOTCONN) {
    return Status(Code::kUnavailable, "the holder connection is closed", err);
  }
  if (err == EAGAIN) {
    return Status(Code::kUnavailable, "sending on the holder connection would block", err);
  }
  return Status::FromErrno(err, "sending on the holder connection");
}

Result<Received> ReceiveMessage(int sock) {
  char buf[kMaxMessage];
  iovec iov{buf, sizeof(buf)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    if (err == EAGAIN) {
      return Status(Code::kUnavailable, "receiving on the holder connection would block", err);
    }
    if (err == ECONNRESET || err == ENOTCONN) {
      return Status(Code::kUnavailable, "the holder connection is closed", err);
    }
    return Status::FromErrno(err, "receiving on the holder connection");
  }
  // Own every descriptor that came along before looking at the bytes, so none leaks.
  UniqueFd attached;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (!attached.valid()) {
        attached = UniqueFd(fd);
      } else {
        ::close(fd);
      }
    }
  }
  if (n == 0) return Status(Code::kUnavailable, "the holder connection is closed");
  if ((mh.msg_flags & MSG_TRUNC) != 0) {
    return Status(Code::kInvalidArgument, "holder message is longer than any valid message");
  }
  auto msg = DecodeMessage(std::string_view(buf, static_cast<size_t>(n)));
  if (!msg.ok()) return msg.status();
  return Received{std::move(*msg), std::move(attached)};
}

Result<UniqueFd> ConnectToHolder(const std::string& socket_path, Role role, int64_t timeout_ms,
                                 WelcomeMsg* welcome) {
  auto addr = HolderSocketAddress(socket_path);
  if (!addr.ok()) return addr.status();
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Status::FromErrno(errno, "creating a socket for " + socket_path);
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return Status(Code::kNotFound, "no holder listens on " + socket_path, err);
    }
    return Status::FromErrno(err, "connecting to the holder at " + socket_path);
  }
  TF_RETURN_IF_ERROR(SendMessage(sock.get(), HelloMsg{role}));
  int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    pollfd p{sock.get(), POLLIN, 0};
    int64_t left = deadline - NowMs();
    int r = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "waiting for the holder at " + socket_path);
    if (r == 0) {
      return Status(Code::kTimeout, fmt::format("the holder at {} did not answer within {} ms",
                                                socket_path, timeout_ms));
    }
    break;
  }
  auto got = ReceiveMessage(sock.get());
  if (!got.ok()) return got.status().Annotate("connecting to the holder at " + socket_path);
  if (auto* w = std::get_if<WelcomeMsg>(&got->msg)) {
    if (welcome != nullptr) *welcome = std::move(*w);
    return sock;
  }
  if (auto* r = std::get_if<RefusedMsg>(&got->msg)) {
    return Status(Code::kFailedPrecondition,
                  "the holder at " + socket_path + " refused the connection: " + r->reason);
  }
  return Status(Code::kInvalidArgument,
                "the holder at " + socket_path + " answered the hello with an unexpected message");
}

}  // namespace tierflow::watch
