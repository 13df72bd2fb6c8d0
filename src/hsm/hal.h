// Lustre's binary HSM action list (hsm_action_list + hsm_action_item, "HAL") and the
// kernel-to-user message header (kuc_hdr) that carries it to a copytool. Declarations are
// tierflow's own, written from the layout in reference/lustre-hsm.md; no Lustre header is used.
// Everything is host-endian, as Lustre sends it. Pure functions; any thread.
//
// Layout (byte offsets):
//   hal: version u32 @0 (=1), count u32 @4, compound_id u64 @8, flags u64 @16,
//        archive_id u32 @24, padding u32 @28, fsname @32 (NUL-terminated);
//        first item at 32 + align8(strlen(fsname) + 1).
//   hai: len u32 @0 (= 72 + data length), action u32 @4, fid @8, dfid @24,
//        extent offset u64 @40, extent length u64 @48, cookie u64 @56, gid u64 @64, data @72;
//        next item at hai + align8(len).
//   fid: seq u64 @0, oid u32 @8, ver u32 @12.
// Padding bytes are written as zero and ignored when read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "hsm/fid.h"

namespace tierflow::hsm {

inline constexpr uint32_t kHalVersion = 1;
inline constexpr size_t kHalHeaderSize = 32;
inline constexpr size_t kHaiHeaderSize = 72;
// llapi's receive buffer; DecodeActionList refuses anything larger.
inline constexpr size_t kHalMaxSize = 1 << 20;
// Extent length meaning "to the end of the file".
inline constexpr uint64_t kExtentWholeFile = ~uint64_t{0};

constexpr size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

// One hsm_action_item.
struct ActionItem {
  uint32_t action = 0;  // copytool value (ToCopytoolAction), kept raw: NOOP and unknown pass through
  Fid fid;              // the file
  Fid dfid;             // the fid to access data through (the volatile file for a restore)
  uint64_t extent_offset = 0;
  uint64_t extent_length = kExtentWholeFile;
  uint64_t cookie = 0;  // the request's id at the coordinator
  uint64_t gid = 0;     // group lock id
  std::string data;     // opaque request data (any bytes)

  bool operator==(const ActionItem&) const = default;
};

// One hsm_action_list: items sharing an archive id and flags.
struct ActionList {
  uint32_t version = kHalVersion;
  uint64_t compound_id = 0;
  uint64_t flags = 0;  // kHalFlag* from action.h
  uint32_t archive_id = 0;
  std::string fsname;  // must not contain NUL (the encoder would write it, the decoder stop at it)
  std::vector<ActionItem> items;

  bool operator==(const ActionList&) const = default;
};

// Bytes EncodeActionList produces: 32 + align8(fsname + 1) + sum of align8(72 + data).
size_t ActionListSize(const ActionList& hal);

// Serialises `hal` exactly as Lustre lays it out; hal_count is items.size(). Does not check
// limits: call ValidateActionList first when the list comes from outside.
std::string EncodeActionList(const ActionList& hal);

// Checks what the encoder cannot represent or the decoder would refuse: version 1, fsname
// without NUL, total size at most kHalMaxSize. kInvalidArgument on failure.
Status ValidateActionList(const ActionList& hal);

// Parses a list from `buf` without reading outside it. Rejects, with kInvalidArgument and a
// message naming the field and offset: a buffer larger than kHalMaxSize or shorter than the
// header, a version other than 1, an fsname without its NUL, a count larger than the buffer
// can hold, an item whose len is below 72 or runs past the end. Bytes after the last item are
// ignored (as are missing padding bytes after the last item).
Result<ActionList> DecodeActionList(std::string_view buf);

// Kernel-to-user message header (kuc_hdr), 8 bytes: magic u16 @0, transport u8 @2, flags u8 @3,
// msgtype u16 @4, msglen u16 @6 (header included).
inline constexpr size_t kKucHeaderSize = 8;
inline constexpr uint16_t kKucMagic = 0x191C;
inline constexpr uint8_t kKucTransportHsm = 2;
inline constexpr uint16_t kKucMsgShutdown = 1;
inline constexpr uint16_t kKucMsgHal = 100;
inline constexpr size_t kKucMaxMessage = 0xFFFF;  // msglen is u16

struct KucHeader {
  uint16_t magic = kKucMagic;
  uint8_t transport = kKucTransportHsm;
  uint8_t flags = 0;
  uint16_t msgtype = kKucMsgHal;
  uint16_t msglen = kKucHeaderSize;

  bool operator==(const KucHeader&) const = default;
};

std::string EncodeKucHeader(const KucHeader& h);

// Parses the header at the start of `buf`. Rejects (kInvalidArgument) a buffer shorter than 8
// bytes, a wrong magic (naming the byte-swapped case), msglen below 8 or beyond `buf`.
// The transport and msgtype are returned as read, not checked.
Result<KucHeader> DecodeKucHeader(std::string_view buf);

// Header + payload for an HSM-transport message of `msgtype`; msglen counts both.
// kInvalidArgument when the whole message would not fit msglen's 16 bits.
Result<std::string> EncodeKucMessage(uint16_t msgtype, std::string_view payload);

}  // namespace tierflow::hsm
