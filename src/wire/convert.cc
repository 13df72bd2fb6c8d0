// Wire <-> HSM domain conversions.
#include "wire/convert.h"

namespace tierflow::wire {

hsm::FileId FileIdFromProto(const v1::FileRef& ref) {
  return hsm::FileId{ref.fsid(), hsm::Fid{ref.seq(), ref.oid(), ref.ver()}};
}

void FileRefToProto(const hsm::FileId& file, const std::string& path, v1::FileRef* out) {
  out->set_fsid(file.fsid);
  out->set_seq(file.fid.seq);
  out->set_oid(file.fid.oid);
  out->set_ver(file.fid.ver);
  if (path.empty()) return;
  if (IsUtf8(path)) {
    out->set_path(path);
  } else {
    out->set_raw_path(path);
  }
}

const std::string& PathFromProto(const v1::FileRef& ref) {
  return ref.raw_path().empty() ? ref.path() : ref.raw_path();
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629).
size_t Utf8SequenceAt(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // no overlongs
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceAt(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string DisplayText(std::string_view s) {
  if (IsUtf8(s)) return std::string(s);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceAt(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i++]);
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<hsm::Action> ActionFromProto(v1::Action action) {
  switch (action) {
    case v1::ARCHIVE:
      return hsm::Action::kArchive;
    case v1::RESTORE:
      return hsm::Action::kRestore;
    case v1::REMOVE:
      return hsm::Action::kRemove;
    case v1::CANCEL:
      return hsm::Action::kCancel;
    default:
      return std::nullopt;
  }
}

v1::Action ActionToProto(hsm::Action action) {
  switch (action) {
    case hsm::Action::kArchive:
      return v1::ARCHIVE;
    case hsm::Action::kRestore:
      return v1::RESTORE;
    case hsm::Action::kRemove:
      return v1::REMOVE;
    case hsm::Action::kCancel:
      return v1::CANCEL;
  }
  return v1::ACTION_UNSPECIFIED;
}

}  // namespace tierflow::wire
