// Test support: a filesystem of a chosen type (ext4, xfs) made in an image file and
// loop-mounted for one test, so tests can put fanotify marks on it and build file handles
// without touching /tmp's filesystem. Unmounted (lazily) and removed by the destructor, also
// when the test fails. Needs root; header-only so that it stays out of the libraries.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace tierflow::mover::testing {

class LoopMount {
 public:
  // `type` is "ext4" or "xfs"; mkfs_options are added to mkfs's command line.
  explicit LoopMount(const std::string& type, const std::string& size = "320M",
                     const std::string& mkfs_options = "") {
    char tmpl[] = "/tmp/tierflow-loop-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    base_ = tmpl;
    const std::string img = base_ + "/fs.img";
    mount_ = base_ + "/mnt";
    std::filesystem::create_directory(mount_);
    const std::string mkfs = type == "xfs" ? "mkfs.xfs -q -f " : "mkfs.ext4 -q -F -I 256 ";
    if (Shell("truncate -s " + size + " " + img + " && " + mkfs + mkfs_options + " " + img) != 0)
      return;
    if (Shell("mount -t " + type + " -o loop " + img + " " + mount_) != 0) return;
    mounted_ = true;
  }
  ~LoopMount() {
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!base_.empty()) std::filesystem::remove_all(base_, ec);
  }
  LoopMount(const LoopMount&) = delete;
  LoopMount& operator=(const LoopMount&) = delete;

  bool ok() const { return mounted_; }
  const std::string& path() const { return mount_; }
  // Beside the mount point, for what a test keeps off the filesystem (an archive, sockets).
  const std::string& base() const { return base_; }
  // Unmounts now, not lazily (a test of what happens then); false if the filesystem is busy.
  bool Unmount() {
    if (!mounted_) return false;
    mounted_ = ::umount2(mount_.c_str(), 0) != 0;
    return !mounted_;
  }
  std::string operator/(const std::string& name) const { return mount_ + "/" + name; }

  static bool HaveMkfs(const std::string& type) { return Shell("command -v mkfs." + type) == 0; }

 private:
  static int Shell(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str());
  }

  std::string base_;
  std::string mount_;
  bool mounted_ = false;
};

}  // namespace tierflow::mover::testing
