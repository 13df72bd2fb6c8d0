// File trees for cross-process tests: build files with known content, and capture everything
// an HSM round trip must preserve (bytes, size, mode, owner, mtime, user xattrs) to compare later.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tierflow::testing {

// Writes `size` bytes of deterministic pseudo-random data derived from `seed`.
void WriteFile(const std::string& path, uint64_t size, uint32_t seed);
// A sparse file of logical size `size` with `data_bytes` of data at each listed offset.
void WriteSparseFile(const std::string& path, uint64_t size, const std::vector<uint64_t>& offsets,
                     uint64_t data_bytes, uint32_t seed);

struct FileSnapshot {
  uint64_t size = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime_ns = 0;
  uint64_t content_hash = 0;  // XXH3 of the bytes
  std::map<std::string, std::string> user_xattrs;
  bool operator==(const FileSnapshot&) const = default;
};

FileSnapshot Snapshot(const std::string& path);
// Every regular file below `root`, keyed by path relative to root.
std::map<std::string, FileSnapshot> SnapshotTree(const std::string& root);
// Allocated bytes (st_blocks * 512); includes an out-of-inode xattr block.
uint64_t AllocatedBytes(const std::string& path);
// Whether any byte of the file's data is allocated (SEEK_DATA finds something).
bool HasData(const std::string& path);

}  // namespace tierflow::testing
