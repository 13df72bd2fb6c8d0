// Test file trees and snapshots.
#include "support/tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <stdexcept>
#include <vector>

namespace tierflow::testing {

namespace {

void Fill(std::vector<char>& buf, uint64_t& state) {
  auto* words = reinterpret_cast<uint64_t*>(buf.data());
  for (size_t i = 0; i < buf.size() / 8; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    words[i] = state;
  }
}

int OpenForWrite(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  return fd;
}

void PwriteAll(int fd, const char* data, size_t len, uint64_t off) {
  while (len > 0) {
    ssize_t n = pwrite(fd, data, len, off);
    if (n <= 0) throw std::runtime_error("pwrite failed");
    data += n;
    len -= n;
    off += n;
  }
}

}  // namespace

void WriteFile(const std::string& path, uint64_t size, uint32_t seed) {
  int fd = OpenForWrite(path);
  std::vector<char> buf(4 << 20);
  uint64_t state = 0x9E3779B97F4A7C15ULL ^ seed;
  for (uint64_t off = 0; off < size; off += buf.size()) {
    Fill(buf, state);
    PwriteAll(fd, buf.data(), std::min<uint64_t>(buf.size(), size - off), off);
  }
  close(fd);
}

void WriteSparseFile(const std::string& path, uint64_t size, const std::vector<uint64_t>& offsets,
                     uint64_t data_bytes, uint32_t seed) {
  int fd = OpenForWrite(path);
  if (ftruncate(fd, size) != 0) throw std::runtime_error("ftruncate failed");
  std::vector<char> buf(data_bytes + 8);
  uint64_t state = 0x2545F4914F6CDD1DULL ^ seed;
  for (uint64_t off : offsets) {
    Fill(buf, state);
    PwriteAll(fd, buf.data(), data_bytes, off);
  }
  close(fd);
}

FileSnapshot Snapshot(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + path);
  FileSnapshot s;
  s.size = st.st_size;
  s.mode = st.st_mode;
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  std::vector<char> buf(4 << 20);
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) XXH3_64bits_update(h, buf.data(), n);
  s.content_hash = XXH3_64bits_digest(h);
  XXH3_freeState(h);
  std::vector<char> names(65536);
  ssize_t len = flistxattr(fd, names.data(), names.size());
  for (ssize_t i = 0; i < len;) {
    std::string name(names.data() + i);
    i += name.size() + 1;
    if (name.rfind("user.", 0) != 0 || name.rfind("user.tierflow", 0) == 0) continue;
    std::vector<char> val(65536);
    ssize_t vl = fgetxattr(fd, name.c_str(), val.data(), val.size());
    if (vl >= 0) s.user_xattrs[name] = std::string(val.data(), vl);
  }
  close(fd);
  return s;
}

std::map<std::string, FileSnapshot> SnapshotTree(const std::string& root) {
  std::map<std::string, FileSnapshot> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && !e.is_symlink()) {
      out[std::filesystem::relative(e.path(), root).string()] = Snapshot(e.path().string());
    }
  }
  return out;
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return uint64_t(st.st_blocks) * 512;
}

bool HasData(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  off_t r = lseek(fd, 0, SEEK_DATA);
  close(fd);
  return r >= 0;
}

}  // namespace tierflow::testing
