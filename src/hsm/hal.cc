// Lustre HSM action list and kuc header codecs. Fields are copied with memcpy, so neither
// alignment of the buffer nor host endianness matters beyond "same as the sender".
#include "hsm/hal.h"

#include <fmt/format.h>

#include <cstring>

namespace tierflow::hsm {

namespace {

template <typename T>
void Put(std::string* out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out->append(bytes, sizeof(T));
}

void PutFid(std::string* out, const Fid& f) {
  Put<uint64_t>(out, f.seq);
  Put<uint32_t>(out, f.oid);
  Put<uint32_t>(out, f.ver);
}

void PadTo8(std::string* out) { out->resize(Align8(out->size()), '\0'); }

// Caller guarantees pos + sizeof(T) <= buf.size().
template <typename T>
T Get(std::string_view buf, size_t pos) {
  T v;
  std::memcpy(&v, buf.data() + pos, sizeof(T));
  return v;
}

Fid GetFid(std::string_view buf, size_t pos) {
  return Fid{Get<uint64_t>(buf, pos), Get<uint32_t>(buf, pos + 8), Get<uint32_t>(buf, pos + 12)};
}

Status Malformed(std::string message) {
  return Status(Code::kInvalidArgument, "malformed HSM action list: " + std::move(message));
}

void EncodeItem(const ActionItem& item, std::string* out) {
  Put<uint32_t>(out, static_cast<uint32_t>(kHaiHeaderSize + item.data.size()));
  Put<uint32_t>(out, item.action);
  PutFid(out, item.fid);
  PutFid(out, item.dfid);
  Put<uint64_t>(out, item.extent_offset);
  Put<uint64_t>(out, item.extent_length);
  Put<uint64_t>(out, item.cookie);
  Put<uint64_t>(out, item.gid);
  out->append(item.data);
  PadTo8(out);
}

// Decodes the item at `pos` (index `i`, for messages); sets *next to the following item.
Result<ActionItem> DecodeItem(std::string_view buf, size_t pos, uint32_t i, size_t* next) {
  // pos may lie up to 7 bytes past the end when the previous item's padding was cut off.
  size_t left = pos < buf.size() ? buf.size() - pos : 0;
  if (left < kHaiHeaderSize) {
    return Malformed(fmt::format("item {} at offset {} needs {} bytes, only {} left", i, pos,
                                 kHaiHeaderSize, left));
  }
  uint32_t len = Get<uint32_t>(buf, pos);
  if (len < kHaiHeaderSize) {
    return Malformed(fmt::format("item {} at offset {} has hai_len {}, below the minimum {}", i,
                                 pos, len, kHaiHeaderSize));
  }
  if (len > buf.size() - pos) {
    return Malformed(fmt::format("item {} at offset {} has hai_len {}, past the end of the {}-byte "
                                 "buffer",
                                 i, pos, len, buf.size()));
  }
  ActionItem item;
  item.action = Get<uint32_t>(buf, pos + 4);
  item.fid = GetFid(buf, pos + 8);
  item.dfid = GetFid(buf, pos + 24);
  item.extent_offset = Get<uint64_t>(buf, pos + 40);
  item.extent_length = Get<uint64_t>(buf, pos + 48);
  item.cookie = Get<uint64_t>(buf, pos + 56);
  item.gid = Get<uint64_t>(buf, pos + 64);
  item.data.assign(buf.substr(pos + kHaiHeaderSize, len - kHaiHeaderSize));
  *next = pos + Align8(len);
  return item;
}

}  // namespace

size_t ActionListSize(const ActionList& hal) {
  size_t total = kHalHeaderSize + Align8(hal.fsname.size() + 1);
  for (const ActionItem& item : hal.items) total += Align8(kHaiHeaderSize + item.data.size());
  return total;
}

std::string EncodeActionList(const ActionList& hal) {
  std::string out;
  out.reserve(ActionListSize(hal));
  Put<uint32_t>(&out, hal.version);
  Put<uint32_t>(&out, static_cast<uint32_t>(hal.items.size()));
  Put<uint64_t>(&out, hal.compound_id);
  Put<uint64_t>(&out, hal.flags);
  Put<uint32_t>(&out, hal.archive_id);
  Put<uint32_t>(&out, 0);  // padding
  out.append(hal.fsname);
  out.push_back('\0');
  PadTo8(&out);
  for (const ActionItem& item : hal.items) EncodeItem(item, &out);
  return out;
}

Status ValidateActionList(const ActionList& hal) {
  if (hal.version != kHalVersion) {
    return Status(Code::kInvalidArgument,
                  fmt::format("HSM action list version {} is not supported; only {} exists",
                              hal.version, kHalVersion));
  }
  if (hal.fsname.find('\0') != std::string::npos) {
    return Status(Code::kInvalidArgument,
                  "HSM action list fsname contains a NUL byte; Lustre fsnames are C strings");
  }
  size_t size = ActionListSize(hal);
  if (size > kHalMaxSize) {
    return Status(Code::kInvalidArgument,
                  fmt::format("HSM action list of {} items is {} bytes, above the {}-byte limit; "
                              "split it into smaller lists",
                              hal.items.size(), size, kHalMaxSize));
  }
  return Status::Ok();
}

Result<ActionList> DecodeActionList(std::string_view buf) {
  if (buf.size() > kHalMaxSize) {
    return Malformed(fmt::format("{} bytes, above the {}-byte limit", buf.size(), kHalMaxSize));
  }
  if (buf.size() < kHalHeaderSize) {
    return Malformed(fmt::format("{} bytes, shorter than the {}-byte header", buf.size(),
                                 kHalHeaderSize));
  }
  ActionList hal;
  hal.version = Get<uint32_t>(buf, 0);
  if (hal.version != kHalVersion) {
    return Malformed(fmt::format("hal_version {}, expected {}", hal.version, kHalVersion));
  }
  uint32_t count = Get<uint32_t>(buf, 4);
  hal.compound_id = Get<uint64_t>(buf, 8);
  hal.flags = Get<uint64_t>(buf, 16);
  hal.archive_id = Get<uint32_t>(buf, 24);
  size_t nul = buf.find('\0', kHalHeaderSize);
  if (nul == std::string_view::npos) {
    return Malformed("hal_fsname at offset 32 is not NUL-terminated within the buffer");
  }
  hal.fsname.assign(buf.substr(kHalHeaderSize, nul - kHalHeaderSize));
  size_t pos = kHalHeaderSize + Align8(hal.fsname.size() + 1);
  size_t room = pos < buf.size() ? buf.size() - pos : 0;
  if (count > room / kHaiHeaderSize) {
    return Malformed(fmt::format("hal_count {} needs at least {} bytes of items, only {} left",
                                 count, uint64_t{count} * kHaiHeaderSize, room));
  }
  hal.items.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    Result<ActionItem> item = DecodeItem(buf, pos, i, &pos);
    if (!item.ok()) return item.status();
    hal.items.push_back(std::move(*item));
  }
  return hal;
}

std::string EncodeKucHeader(const KucHeader& h) {
  std::string out;
  out.reserve(kKucHeaderSize);
  Put<uint16_t>(&out, h.magic);
  Put<uint8_t>(&out, h.transport);
  Put<uint8_t>(&out, h.flags);
  Put<uint16_t>(&out, h.msgtype);
  Put<uint16_t>(&out, h.msglen);
  return out;
}

Result<KucHeader> DecodeKucHeader(std::string_view buf) {
  auto bad = [](std::string why) {
    return Status(Code::kInvalidArgument, "malformed kernel-to-user message header: " + why);
  };
  if (buf.size() < kKucHeaderSize) {
    return bad(fmt::format("{} bytes, shorter than the {}-byte header", buf.size(),
                           kKucHeaderSize));
  }
  KucHeader h;
  h.magic = Get<uint16_t>(buf, 0);
  h.transport = Get<uint8_t>(buf, 2);
  h.flags = Get<uint8_t>(buf, 3);
  h.msgtype = Get<uint16_t>(buf, 4);
  h.msglen = Get<uint16_t>(buf, 6);
  if (h.magic == __builtin_bswap16(kKucMagic)) {
    return bad(fmt::format("magic {:#06x} is byte-swapped; the sender has the other endianness",
                           h.magic));
  }
  if (h.magic != kKucMagic) {
    return bad(fmt::format("magic {:#06x}, expected {:#06x}", h.magic, kKucMagic));
  }
  if (h.msglen < kKucHeaderSize || h.msglen > buf.size()) {
    return bad(fmt::format("msglen {} outside [{}, {}] (header size, bytes received)", h.msglen,
                           kKucHeaderSize, buf.size()));
  }
  return h;
}

Result<std::string> EncodeKucMessage(uint16_t msgtype, std::string_view payload) {
  if (payload.size() > kKucMaxMessage - kKucHeaderSize) {
    return Status(Code::kInvalidArgument,
                  fmt::format("kernel-to-user message payload of {} bytes does not fit the 16-bit "
                              "msglen (at most {} bytes)",
                              payload.size(), kKucMaxMessage - kKucHeaderSize));
  }
  KucHeader h;
  h.msgtype = msgtype;
  h.msglen = static_cast<uint16_t>(kKucHeaderSize + payload.size());
  std::string out = EncodeKucHeader(h);
  out.append(payload);
  return out;
}

}  // namespace tierflow::hsm
