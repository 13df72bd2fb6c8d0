// RequestRow body encoding: varints and length-prefixed strings, see request_codec.h.
#include "store/request_codec.h"

#include <cstdint>

namespace tierflow::store {
namespace {

constexpr uint8_t kVersion = 1;

void PutVarint(uint64_t v, std::string* out) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

void PutBytes(const std::string& s, std::string* out) {
  PutVarint(s.size(), out);
  out->append(s);
}

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
  out->push_back(static_cast<char>(kVersion));
  PutBytes(r.file.fsid, out);
  PutVarint(r.file.fid.seq, out);
  PutVarint(r.file.fid.oid, out);
  PutVarint(r.file.fid.ver, out);
  PutBytes(r.path, out);
  PutVarint(r.archive_id, out);
  PutVarint(r.flags, out);
  PutBytes(r.data, out);
  PutVarint(r.offset, out);
  PutVarint(r.length + 1, out);  // UINT64_MAX ("to the end") wraps to 0: one byte
  PutBytes(r.user, out);
  PutBytes(r.mover, out);
  PutVarint(r.epoch, out);
  PutVarint(r.attempts, out);
  PutVarint(ZigZag(r.error_code), out);
  PutBytes(r.error, out);
  PutVarint(ZigZag(r.created_us), out);
  PutVarint(ZigZag(static_cast<int64_t>(static_cast<uint64_t>(r.changed_us) - static_cast<uint64_t>(r.created_us))),
            out);
}

Status DecodeRequestBody(std::string_view body, RequestRow* r) {
  if (body.empty() || static_cast<uint8_t>(body.front()) != kVersion) {
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
  if (!in.ok() || error_code != r->error_code) return Status(Code::kCorrupt, "request row is truncated or malformed");
  if (!in.done()) return Status(Code::kCorrupt, "request row has unexpected trailing bytes");
  return Status::Ok();
}

}  // namespace tierflow::store
