// Formatting and parsing of Lustre active_requests lines.
#include "hsm/active_requests.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "hsm/action.h"

namespace tierflow::hsm {

namespace {

using Fields = std::map<std::string_view, std::string_view>;

Status Bad(std::string_view key, std::string_view value, std::string_view expected) {
  return Status(Code::kInvalidArgument,
                fmt::format("malformed active_requests field '{}={}': expected {}", key, value,
                            expected));
}

template <typename T>
bool ParseDigits(std::string_view s, int base, T* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// "%#llx": "0x1f"; the kernel prints zero as "0x0", glibc as "0", so both are accepted.
bool ParseHexNumber(std::string_view s, uint64_t* out) {
  if (s == "0") {
    *out = 0;
    return true;
  }
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  return ParseDigits(s.substr(2), 16, out);
}

// "a/b" or "a-b" of two hex numbers.
bool ParseHexPair(std::string_view s, char sep, uint64_t* a, uint64_t* b) {
  size_t at = s.find(sep);
  return at != std::string_view::npos && ParseHexNumber(s.substr(0, at), a) &&
         ParseHexNumber(s.substr(at + 1), b);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "[0A1B]" to bytes. An odd final nibble (older kernels could print half a byte when
// truncating) is dropped, and so is anything past kActiveRequestDataBytes, which the kernel
// never prints: ActiveRequest promises no more.
bool ParseDataField(std::string_view s, std::string* out) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  s = s.substr(1, s.size() - 2);
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (HexDigit(s[i]) < 0) return false;
  }
  for (size_t i = 0; i + 1 < s.size() && out->size() < kActiveRequestDataBytes; i += 2) {
    out->push_back(static_cast<char>(HexDigit(s[i]) * 16 + HexDigit(s[i + 1])));
  }
  return true;
}

Result<Fields> SplitFields(std::string_view line) {
  Fields fields;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t start = line.find_first_not_of(" \t\r", pos);
    if (start == std::string_view::npos) break;
    size_t end = line.find_first_of(" \t\r", start);
    if (end == std::string_view::npos) end = line.size();
    std::string_view token = line.substr(start, end - start);
    size_t eq = token.find('=');
    if (eq == std::string_view::npos) {
      return Status(Code::kInvalidArgument,
                    fmt::format("malformed active_requests line: '{}' is not key=value", token));
    }
    if (!fields.emplace(token.substr(0, eq), token.substr(eq + 1)).second) {
      return Status(Code::kInvalidArgument,
                    fmt::format("malformed active_requests line: '{}' appears twice",
                                token.substr(0, eq)));
    }
    pos = end;
  }
  return fields;
}

Status Require(const Fields& f) {
  for (std::string_view key :
       {"fid", "dfid", "compound/cookie", "action", "archive#", "flags", "extent"}) {
    if (!f.count(key)) {
      return Status(Code::kInvalidArgument,
                    fmt::format("malformed active_requests line: '{}=' is missing", key));
    }
  }
  return Status::Ok();
}

Status ParseFid(const Fields& f, std::string_view key, Fid* out) {
  std::string_view v = f.at(key);
  if (v.empty() || v.front() != '[') return Bad(key, v, "[0xSEQ:0xOID:0xVER]");
  Result<Fid> fid = Fid::Parse(v);
  if (!fid.ok()) return Bad(key, v, "[0xSEQ:0xOID:0xVER]");
  *out = *fid;
  return Status::Ok();
}

Status ParseRequired(const Fields& f, ActiveRequest* r) {
  TF_RETURN_IF_ERROR(ParseFid(f, "fid", &r->item.fid));
  TF_RETURN_IF_ERROR(ParseFid(f, "dfid", &r->item.dfid));
  std::string_view v = f.at("compound/cookie");
  if (!ParseHexPair(v, '/', &r->compound_id, &r->item.cookie)) {
    return Bad("compound/cookie", v, "0xCOMPOUND/0xCOOKIE");
  }
  v = f.at("action");
  std::optional<uint32_t> action = ParseCopytoolActionName(v);
  if (!action) return Bad("action", v, "NOOP, ARCHIVE, RESTORE, REMOVE or CANCEL");
  r->item.action = *action;
  v = f.at("archive#");
  if (!ParseDigits(v, 10, &r->archive_id)) return Bad("archive#", v, "a decimal archive id");
  v = f.at("flags");
  if (!ParseHexNumber(v, &r->flags)) return Bad("flags", v, "a 0x-prefixed hex number");
  v = f.at("extent");
  if (!ParseHexPair(v, '-', &r->item.extent_offset, &r->item.extent_length)) {
    return Bad("extent", v, "0xOFFSET-0xLENGTH");
  }
  return Status::Ok();
}

Status ParseOptional(const Fields& f, ActiveRequest* r) {
  if (auto it = f.find("gid"); it != f.end() && !ParseHexNumber(it->second, &r->item.gid)) {
    return Bad("gid", it->second, "a 0x-prefixed hex number");
  }
  if (auto it = f.find("data"); it != f.end() && !ParseDataField(it->second, &r->item.data)) {
    return Bad("data", it->second, "[HEX]");
  }
  if (auto it = f.find("canceled"); it != f.end()) {
    unsigned canceled = 0;
    if (!ParseDigits(it->second, 10, &canceled)) return Bad("canceled", it->second, "0 or 1");
    r->canceled = canceled != 0;
  }
  if (auto it = f.find("uuid"); it != f.end()) r->agent_uuid = it->second;
  if (auto it = f.find("done"); it != f.end() && !ParseDigits(it->second, 10, &r->done_bytes)) {
    return Bad("done", it->second, "a decimal byte count");
  }
  return Status::Ok();
}

// The request part of a line, with any lctl "mdt.X.hsm.active_requests=" prefix removed.
std::string_view StripHeader(std::string_view line) {
  constexpr std::string_view kSuffix = ".hsm.active_requests=";
  if (line.substr(0, 4) != "mdt.") return line;
  size_t at = line.find(kSuffix);
  if (at == std::string_view::npos || line.substr(0, at).find(' ') != std::string_view::npos) {
    return line;
  }
  return line.substr(at + kSuffix.size());
}

}  // namespace

std::string FormatActiveRequest(const ActiveRequest& r) {
  std::string data;
  size_t n = std::min(r.item.data.size(), kActiveRequestDataBytes);
  for (size_t i = 0; i < n; ++i) {
    data += fmt::format("{:02X}", static_cast<unsigned char>(r.item.data[i]));
  }
  return fmt::format(
      "fid={} dfid={} compound/cookie={:#x}/{:#x} action={} archive#={} flags={:#x} "
      "extent={:#x}-{:#x} gid={:#x} data=[{}] canceled={} uuid={} done={}",
      r.item.fid.ToString(), r.item.dfid.ToString(), r.compound_id, r.item.cookie,
      CopytoolActionName(r.item.action), r.archive_id, r.flags, r.item.extent_offset,
      r.item.extent_length, r.item.gid, data, r.canceled ? 1 : 0, r.agent_uuid, r.done_bytes);
}

Result<ActiveRequest> ParseActiveRequest(std::string_view line) {
  Result<Fields> fields = SplitFields(line);
  if (!fields.ok()) return fields.status();
  TF_RETURN_IF_ERROR(Require(*fields));
  ActiveRequest r;
  TF_RETURN_IF_ERROR(ParseRequired(*fields, &r));
  TF_RETURN_IF_ERROR(ParseOptional(*fields, &r));
  return r;
}

Result<std::vector<ActiveRequest>> ParseActiveRequests(std::string_view text) {
  std::vector<ActiveRequest> out;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    line = StripHeader(line);
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    Result<ActiveRequest> r = ParseActiveRequest(line);
    if (!r.ok()) return r.status().Annotate(fmt::format("active_requests line {}", line_no));
    out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace tierflow::hsm
