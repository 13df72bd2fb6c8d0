// Fid formatting and parsing.
#include "hsm/fid.h"

#include <fmt/format.h>

#include <charconv>
#include <functional>

namespace tierflow::hsm {

std::string Fid::ToString() const { return "[" + ToBareString() + "]"; }

std::string Fid::ToBareString() const { return fmt::format("{:#x}:{:#x}:{:#x}", seq, oid, ver); }

namespace {

bool ParseHex(std::string_view part, uint64_t max, uint64_t* out) {
  if (part.size() < 3 || part[0] != '0' || (part[1] != 'x' && part[1] != 'X')) return false;
  part.remove_prefix(2);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v, 16);
  if (ec != std::errc() || ptr != part.data() + part.size() || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

Result<Fid> Fid::Parse(std::string_view text) {
  std::string_view body = text;
  if (!body.empty() && body.front() == '[') {
    if (body.back() != ']') return Status(Code::kInvalidArgument, fmt::format("malformed fid '{}': missing ']'", text));
    body = body.substr(1, body.size() - 2);
  }
  size_t c1 = body.find(':');
  size_t c2 = c1 == std::string_view::npos ? c1 : body.find(':', c1 + 1);
  if (c2 == std::string_view::npos || body.find(':', c2 + 1) != std::string_view::npos) {
    return Status(Code::kInvalidArgument,
                  fmt::format("malformed fid '{}': expected [0xSEQ:0xOID:0xVER]", text));
  }
  uint64_t seq = 0, oid = 0, ver = 0;
  if (!ParseHex(body.substr(0, c1), UINT64_MAX, &seq) ||
      !ParseHex(body.substr(c1 + 1, c2 - c1 - 1), UINT32_MAX, &oid) ||
      !ParseHex(body.substr(c2 + 1), UINT32_MAX, &ver)) {
    return Status(Code::kInvalidArgument,
                  fmt::format("malformed fid '{}': each part must be 0x-prefixed hex in range", text));
  }
  return Fid{seq, static_cast<uint32_t>(oid), static_cast<uint32_t>(ver)};
}

std::string FileId::ToString() const { return fsid + ":" + fid.ToString(); }

size_t FidHash::operator()(const Fid& f) const noexcept {
  uint64_t h = f.seq * 0x9E3779B97F4A7C15ULL;
  h ^= (static_cast<uint64_t>(f.oid) << 32 | f.ver) + 0x632BE59BD9B4E019ULL + (h << 6) + (h >> 2);
  return static_cast<size_t>(h);
}

size_t FileIdHash::operator()(const FileId& f) const noexcept {
  return FidHash()(f.fid) ^ (std::hash<std::string>()(f.fsid) * 31);
}

}  // namespace tierflow::hsm
