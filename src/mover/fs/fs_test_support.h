// Test support for the filesystem adapter and the backends: a scratch directory on a
// filesystem that takes trusted.* xattrs (a loop-mounted ext4 image when /tmp does not; tests
// run as root), mounts that undo themselves, and helpers to build and inspect real files.
// Header-only so that it stays out of the tf_mover library.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace tierflow::mover::testing {

inline bool SupportsTrustedXattrs(const std::string& dir) {
  std::string probe = dir + "/.xattr-probe";
  int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::fsetxattr(fd, "trusted.tierflow.probe", "1", 1, 0) == 0;
  ::close(fd);
  ::unlink(probe.c_str());
  return ok;
}

inline int Run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// One scratch area for the whole test binary, made on first use (so test runs that never ask
// for it create nothing) and removed at the end. TIERFLOW_TEST_LOOP=1 forces the ext4 image.
class ScratchEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (mounted_) ::umount2(root_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!base_.empty()) std::filesystem::remove_all(base_, ec);
    base_.clear();
    root_.clear();
    mounted_ = false;
  }
  // Empty if the scratch area could not be made (the test then fails on its TempDir).
  static const std::string& root() {
    if (base_.empty()) Make();
    return root_;
  }

 private:
  static void Make() {
    char tmpl[] = "/tmp/tierflow-fs-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    base_ = tmpl;
    root_ = base_;
    bool force_loop = std::getenv("TIERFLOW_TEST_LOOP") != nullptr;
    if (!force_loop && SupportsTrustedXattrs(base_)) return;
    std::string img = base_ + "/fs.img";
    std::string mnt = base_ + "/mnt";
    std::filesystem::create_directory(mnt);
    root_.clear();
    if (Run("truncate -s 256M " + img + " && mkfs.ext4 -q -F -I 256 " + img) != 0) return;
    if (Run("mount -o loop " + img + " " + mnt) != 0) return;
    mounted_ = true;
    if (SupportsTrustedXattrs(mnt)) root_ = mnt;
  }
  static inline std::string base_;
  static inline std::string root_;
  static inline bool mounted_ = false;
};

inline ::testing::Environment* const kScratchEnvironment =
    ::testing::AddGlobalTestEnvironment(new ScratchEnvironment);

// A fresh directory under the scratch root, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    if (ScratchEnvironment::root().empty()) return;  // path() stays empty; tests assert on it
    std::string tmpl = ScratchEnvironment::root() + "/t-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A mount made by a test and undone at scope exit.
class ScopedMount {
 public:
  ScopedMount(const std::string& source, const std::string& target, const char* type, unsigned long flags,
              const char* data)
      : target_(target) {
    ok_ = ::mount(source.c_str(), target.c_str(), type, flags, data) == 0;
  }
  // A read-only bind mount of `source` on `target`.
  static ScopedMount ReadOnlyBind(const std::string& source, const std::string& target) {
    ScopedMount m(source, target, nullptr, MS_BIND, nullptr);
    if (m.ok_) m.ok_ = ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) == 0;
    return m;
  }
  ScopedMount(ScopedMount&& o) noexcept : target_(std::move(o.target_)), ok_(o.ok_) { o.ok_ = false; }
  ~ScopedMount() {
    if (ok_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string target_;
  bool ok_ = false;
};

inline void WriteFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ::close(fd);
}

inline void WriteAt(const std::string& path, uint64_t offset, const std::string& data) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(data.size()));
  ::close(fd);
}

inline std::string ReadFile(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<cannot open " + path + ">";
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(x >> (8 * j));
  }
  return s;
}

// A sparse file: `size` bytes, data only at the given offsets. Returns its full content.
inline std::string MakeSparse(const std::string& path, uint64_t size,
                              const std::vector<std::pair<uint64_t, std::string>>& pieces) {
  std::string content(size, '\0');
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  for (const auto& [off, data] : pieces) {
    EXPECT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)), static_cast<ssize_t>(data.size()));
    content.replace(off, data.size(), data);
  }
  ::close(fd);
  return content;
}

inline struct stat Stat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st;
}

inline uint64_t Xxh3(const std::string& data) { return XXH3_64bits(data.data(), data.size()); }

inline std::string GetXattr(const std::string& path, const std::string& name) {
  char buf[8192];
  ssize_t n = ::getxattr(path.c_str(), name.c_str(), buf, sizeof(buf));
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

inline void SetXattr(const std::string& path, const std::string& name, const std::string& value) {
  ASSERT_EQ(::setxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0), 0) << name;
}

// Offsets where data starts and holes start, in order: the layout of a sparse file.
inline std::vector<int64_t> Layout(const std::string& path) {
  std::vector<int64_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  off_t size = ::lseek(fd, 0, SEEK_END);
  for (off_t off = 0; off < size;) {
    off_t data = ::lseek(fd, off, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    out.push_back(data);
    out.push_back(hole);
    off = hole;
  }
  ::close(fd);
  return out;
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace tierflow::mover::testing
