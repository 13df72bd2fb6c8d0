// Filesystem ids and descriptor paths; see filesystem_id.h.
#include "watch/filesystem_id.h"

#include <fmt/format.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>

#include "mover/fs/local_fs.h"

namespace tierflow::watch {

Result<std::string> FilesystemIdOf(const std::string& path) {
  struct statfs sfs {};
  if (::statfs(path.c_str(), &sfs) != 0) {
    return Status::FromErrno(errno, "reading the filesystem id of " + path);
  }
  return mover::FsidString(static_cast<uint32_t>(sfs.f_fsid.__val[0]),
                           static_cast<uint32_t>(sfs.f_fsid.__val[1]));
}

std::string PathOfFd(int fd) {
  char buf[PATH_MAX];
  std::string link = fmt::format("/proc/self/fd/{}", fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0) return fmt::format("<descriptor {}>", fd);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace tierflow::watch
