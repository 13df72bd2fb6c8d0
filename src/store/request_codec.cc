// RequestRow body encoding: varints and length-prefixed strings, see request_codec.h.
#include "store/request_codec.h"

#include <cstdint>
#include <cstring>

namespace tierflow::store {
namespace {

// Version 2 adds the file's owner (uid, gid, project id) after the version 1 fields; rows
// written as version 1 are still read (without an owner).
constexpr uint8_t kVersion1 = 1;
constexpr uint8_t kVersion = 2;

// Writers into a buffer sized by the caller for the worst case (10 bytes per varint).
char* PutVarint(uint64_t v, char* p) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

char* PutBytes(const std::string& s, char* p) {
  p = PutVarint(s.size(), p);
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

// Reads from the front of `in`; any failure makes ok() false and leaves the rest unread.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; ok_ && shift < 64; shift += 7) {
      if (in_.empty()) break;
      uint8_t b = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok_ = false;
    return 0;
  }
  uint32_t Varint32() {
    uint64_t v = Varint();
    if (v > UINT32_MAX) ok_ = false;
    return static_cast<uint32_t>(v);
  }
  std::string Bytes() {
    uint64_t n = Varint();
    if (!ok_ || n > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }

 private:
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

void EncodeRequestBody(const RequestRow& r, std::string* out) {
  constexpr size_t kFields = 22;
  size_t old = out->size();
  out->resize(old + 1 + kFields * 10 + r.file.fsid.size() + r.path.size() + r.data.size() + r.user.size() +
              r.mover.size() + r.error.size());
  char* p = out->data() + old;
  *p++ = static_cast<char>(kVersion);
  p = PutBytes(r.file.fsid, p);
  p = PutVarint(r.file.fid.seq, p);
  p = PutVarint(r.file.fid.oid, p);
  p = PutVarint(r.file.fid.ver, p);
  p = PutBytes(r.path, p);
  p = PutVarint(r.archive_id, p);
  p = PutVarint(r.flags, p);
  p = PutBytes(r.data, p);
  p = PutVarint(r.offset, p);
  p = PutVarint(r.length + 1, p);  // UINT64_MAX ("to the end") wraps to 0: one byte
  p = PutBytes(r.user, p);
  p = PutBytes(r.mover, p);
  p = PutVarint(r.epoch, p);
  p = PutVarint(r.attempts, p);
  p = PutVarint(ZigZag(r.error_code), p);
  p = PutBytes(r.error, p);
  p = PutVarint(ZigZag(r.created_us), p);
  uint64_t delta = static_cast<uint64_t>(r.changed_us) - static_cast<uint64_t>(r.created_us);
  p = PutVarint(ZigZag(static_cast<int64_t>(delta)), p);
  p = PutVarint(r.has_owner ? 1 : 0, p);
  if (r.has_owner) {
    p = PutVarint(r.owner_uid, p);
    p = PutVarint(r.owner_gid, p);
    p = PutVarint(r.projid, p);
  }
  out->resize(p - out->data());
}

Status DecodeRequestBody(std::string_view body, RequestRow* r) {
  const uint8_t version = body.empty() ? 0 : static_cast<uint8_t>(body.front());
  if (version != kVersion && version != kVersion1) {
    return Status(Code::kCorrupt, body.empty() ? "empty request row"
                                               : "request row has unknown format version " +
                                                     std::to_string(static_cast<uint8_t>(body.front())));
  }
  Reader in(body.substr(1));
  r->file.fsid = in.Bytes();
  r->file.fid.seq = in.Varint();
  r->file.fid.oid = in.Varint32();
  r->file.fid.ver = in.Varint32();
  r->path = in.Bytes();
  r->archive_id = in.Varint32();
  r->flags = in.Varint();
  r->data = in.Bytes();
  r->offset = in.Varint();
  r->length = in.Varint() - 1;
  r->user = in.Bytes();
  r->mover = in.Bytes();
  r->epoch = in.Varint();
  r->attempts = in.Varint32();
  int64_t error_code = UnZigZag(in.Varint());
  r->error_code = static_cast<int32_t>(error_code);
  r->error = in.Bytes();
  r->created_us = UnZigZag(in.Varint());
  r->changed_us = static_cast<int64_t>(static_cast<uint64_t>(r->created_us) + static_cast<uint64_t>(UnZigZag(in.Varint())));
  r->has_owner = false;
  r->owner_uid = r->owner_gid = r->projid = 0;
  if (version >= 2) {
    uint64_t has_owner = in.Varint();
    if (has_owner > 1) return Status(Code::kCorrupt, "request row has a malformed owner flag");
    r->has_owner = has_owner == 1;
    if (r->has_owner) {
      r->owner_uid = in.Varint32();
      r->owner_gid = in.Varint32();
      r->projid = in.Varint32();
    }
  }
  if (!in.ok() || error_code != r->error_code) return Status(Code::kCorrupt, "request row is truncated or malformed");
  if (!in.done()) return Status(Code::kCorrupt, "request row has unexpected trailing bytes");
  return Status::Ok();
}

}  // namespace tierflow::store
