// HSM record encoding: fixed-width little-endian fields framed by a magic, a version byte and a
// trailing XXH3-64, so a torn or corrupted xattr is refused instead of misread.
#include "mover/fs/hsm_record.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <cstring>

namespace tierflow::mover {
namespace {

constexpr char kMagic[4] = {'T', 'F', 'H', 'R'};
constexpr uint8_t kVersion = 1;
constexpr size_t kChecksumBytes = 8;
// magic + version + fixed fields before object_ref, the smallest well-formed record.
constexpr size_t kMinBytes = 4 + 1 + 16 + 4 + 4 + 28 + 16 + 8 + 4 + 4 + 4 + 4 + kChecksumBytes;

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void I32(int32_t v) { U32(static_cast<uint32_t>(v)); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bytes(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  std::string& out() { return out_; }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

// Reads fields front to back; any read past the end sets failed() and yields zeros.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint8_t U8() { return static_cast<uint8_t>(Le(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Le(4)); }
  uint64_t U64() { return Le(8); }
  int32_t I32() { return static_cast<int32_t>(U32()); }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  std::string Bytes() {
    uint32_t n = U32();
    if (failed_ || n > in_.size() - pos_) return Fail(), std::string();
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  size_t remaining() const { return in_.size() - pos_; }
  bool failed() const { return failed_; }
  void Fail() { failed_ = true; }

 private:
  uint64_t Le(size_t n) {
    if (failed_ || n > in_.size() - pos_) return Fail(), 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

uint64_t LoadLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

Status Corrupt(const std::string& why) {
  return Status(Code::kCorrupt, "HSM record is corrupt: " + why);
}

HsmRecord ReadFields(Reader& r) {
  HsmRecord rec;
  rec.fid.seq = r.U64();
  rec.fid.oid = r.U32();
  rec.fid.ver = r.U32();
  rec.archive_id = r.U32();
  rec.states = r.U32();
  rec.stamp.size = r.U64();
  rec.stamp.mtime_ns = r.I64();
  rec.stamp.ctime_ns = r.I64();
  rec.stamp.generation = r.U32();
  rec.seal.lo_ns = r.I64();
  rec.seal.hi_ns = r.I64();
  rec.checksum = r.U64();
  rec.object_ref = r.Bytes();
  uint32_t extents = r.U32();
  // Each extent takes 16 bytes: a count the remaining bytes cannot hold is corruption, and
  // checking it first keeps a flipped count from allocating gigabytes.
  if (extents > r.remaining() / 16) {
    r.Fail();
    return rec;
  }
  rec.resident.resize(extents);
  for (auto& e : rec.resident) {
    e.offset = r.U64();
    e.length = r.U64();
  }
  rec.last_error_code = r.I32();
  rec.last_error = r.Bytes();
  return rec;
}

}  // namespace

bool UnchangedSinceSeal(const HsmRecord& record, const VersionStamp& now) {
  return now.size == record.stamp.size && now.mtime_ns == record.stamp.mtime_ns &&
         now.generation == record.stamp.generation && record.seal.Contains(now.ctime_ns);
}

std::string EncodeRecord(const HsmRecord& rec) {
  Writer w;
  w.out().append(kMagic, sizeof(kMagic));
  w.U8(kVersion);
  w.U64(rec.fid.seq);
  w.U32(rec.fid.oid);
  w.U32(rec.fid.ver);
  w.U32(rec.archive_id);
  w.U32(rec.states);
  w.U64(rec.stamp.size);
  w.I64(rec.stamp.mtime_ns);
  w.I64(rec.stamp.ctime_ns);
  w.U32(rec.stamp.generation);
  w.I64(rec.seal.lo_ns);
  w.I64(rec.seal.hi_ns);
  w.U64(rec.checksum);
  w.Bytes(rec.object_ref);
  w.U32(static_cast<uint32_t>(rec.resident.size()));
  for (const auto& e : rec.resident) {
    w.U64(e.offset);
    w.U64(e.length);
  }
  w.I32(rec.last_error_code);
  w.Bytes(rec.last_error);
  w.U64(XXH3_64bits(w.out().data(), w.out().size()));
  return std::move(w.out());
}

Result<HsmRecord> DecodeRecord(std::string_view bytes) {
  if (bytes.size() < kMinBytes) {
    return Corrupt(fmt::format("{} bytes is shorter than any valid record ({})", bytes.size(), kMinBytes));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return Corrupt("bad magic");
  std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
  uint64_t stored = LoadLe64(bytes.data() + body.size());
  uint64_t actual = XXH3_64bits(body.data(), body.size());
  if (stored != actual) {
    return Corrupt(fmt::format("checksum mismatch (stored {:016x}, computed {:016x})", stored, actual));
  }
  Reader r(body.substr(sizeof(kMagic)));
  uint8_t version = r.U8();
  if (version != kVersion) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("HSM record has version {}, this tierflow reads version {}; "
                              "upgrade tierflow on this host",
                              version, kVersion));
  }
  HsmRecord rec = ReadFields(r);
  if (r.failed()) return Corrupt("a field runs past the end of the record");
  if (r.remaining() != 0) return Corrupt(fmt::format("{} unexpected bytes after the last field", r.remaining()));
  return rec;
}

}  // namespace tierflow::mover
