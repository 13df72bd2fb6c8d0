// File identity. A managed file is named by its filesystem id and a stable file id.
// Lustre FIDs are one form of the stable id; on Linux filesystems tierflow builds one from
// the inode number and generation (seq = inode, oid = generation, ver = 0), so the id survives
// renames and is never reused for another file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tierflow::hsm {

struct Fid {
  uint64_t seq = 0;
  uint32_t oid = 0;
  uint32_t ver = 0;

  bool operator==(const Fid&) const = default;
  auto operator<=>(const Fid&) const = default;
  bool IsZero() const { return seq == 0 && oid == 0 && ver == 0; }

  // "[0x200000401:0x1:0x0]", as Lustre prints it.
  std::string ToString() const;
  // "0x200000401:0x1:0x0": the form used in lhsmtool_posix archive file names.
  std::string ToBareString() const;
  // Accepts the bracketed and the bare form.
  static Result<Fid> Parse(std::string_view text);
};

// A file as the coordinator knows it: (filesystem, stable id).
struct FileId {
  std::string fsid;
  Fid fid;

  bool operator==(const FileId&) const = default;
  auto operator<=>(const FileId&) const = default;
  std::string ToString() const;  // "fsid:[seq:oid:ver]"
};

struct FidHash {
  size_t operator()(const Fid& f) const noexcept;
};

struct FileIdHash {
  size_t operator()(const FileId& f) const noexcept;
};

}  // namespace tierflow::hsm
