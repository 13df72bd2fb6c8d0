// The pre-content half of fanotify.h: the filesystem check, the pre-content group and its
// marks, the permission-event parser and the answer. (The FID group is in fanotify_fid.cc.)
#include "watch/fanotify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tierflow::watch {
namespace {

constexpr unsigned kFanMarkFilesystem = 0x100;  // FAN_MARK_FILESYSTEM

struct FsType {
  unsigned long magic;
  const char* name;
  bool watchable;
};

// statfs f_type values (linux/magic.h). Only the first three have pre-content hooks; the rest
// are here so that a refusal can name what it found.
constexpr FsType kFsTypes[] = {
    {0xEF53, "ext4", true},          {0x58465342, "xfs", true},    {0x9123683E, "btrfs", true},
    {0x01021994, "tmpfs", false},    {0x858458f6, "ramfs", false}, {0x6969, "nfs", false},
    {0x794c7630, "overlay", false},  {0x65735546, "fuse", false},  {0xFF534D42, "cifs", false},
    {0xFE534D42, "smb2", false},     {0x2fc12fc1, "zfs", false},   {0xF2F52010, "f2fs", false},
    {0x4d44, "vfat", false},         {0x2011BAB0, "exfat", false}, {0x9660, "iso9660", false},
    {0x73717368, "squashfs", false}, {0x00c36400, "ceph", false},  {0x9fa0, "proc", false},
    {0x62656572, "sysfs", false},    {0x5346544e, "ntfs", false},  {0x0bd00bd0, "lustre", false},
};

// Pre-content events arrived in Linux 6.14.
Status CheckKernel() {
  struct utsname u {};
  if (::uname(&u) != 0) return Status::Ok();  // cannot tell; fanotify_init will say
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return Status::Ok();
  if (major > 6 || (major == 6 && minor >= 14)) return Status::Ok();
  return Status(Code::kFailedPrecondition,
                fmt::format("Linux {} has no fanotify pre-content events; watching a filesystem "
                            "needs Linux 6.14 or later",
                            u.release));
}

bool KernelAcceptsDenyErrno(int err) {
  switch (err) {
    case EIO:
    case EPERM:
    case EBUSY:
    case ETXTBSY:
    case EAGAIN:
    case ENOSPC:
    case EDQUOT:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<std::string> CheckWatchableFilesystem(const std::string& mount) {
  struct statfs sfs {};
  if (::statfs(mount.c_str(), &sfs) != 0) {
    return Status::FromErrno(errno, "checking the filesystem of " + mount);
  }
  auto magic = static_cast<unsigned long>(sfs.f_type) & 0xffffffffUL;
  const FsType* found = nullptr;
  for (const FsType& t : kFsTypes) {
    if (t.magic == magic) found = &t;
  }
  if (found == nullptr || !found->watchable) {
    std::string type = found != nullptr ? found->name : fmt::format("type 0x{:x}", magic);
    return Status(Code::kFailedPrecondition,
                  fmt::format("{} is on a {} filesystem, which has no fanotify pre-content hooks; "
                              "tierflow can watch only ext4, xfs or btrfs filesystems, on Linux "
                              "6.14 or later",
                              mount, type));
  }
  TF_RETURN_IF_ERROR(CheckKernel());
  return std::string(found->name);
}

Result<UniqueFd> InitPreContentGroup(bool nonblocking) {
  unsigned flags = kFanClassPreContent | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS;
  if (nonblocking) flags |= FAN_NONBLOCK;
  int fd = ::fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == EPERM) {
      return Status(Code::kPermissionDenied,
                    "creating a fanotify pre-content group needs CAP_SYS_ADMIN; run as root", err);
    }
    if (err == EINVAL) {
      return Status(Code::kFailedPrecondition,
                    "this kernel refuses fanotify pre-content groups; watching a filesystem needs "
                    "Linux 6.14 or later",
                    err);
    }
    return Status::FromErrno(err, "creating a fanotify pre-content group");
  }
  return UniqueFd(fd);
}

Status MarkFilesystemPreAccess(int group, const std::string& mount) {
  if (::fanotify_mark(group, FAN_MARK_ADD | kFanMarkFilesystem, kWatchedEvents, AT_FDCWD,
                      mount.c_str()) == 0) {
    return Status::Ok();
  }
  int err = errno;
  if (err == EOPNOTSUPP || err == EINVAL) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("the filesystem of {} refuses fanotify pre-content marks ({}); "
                              "tierflow can watch only ext4, xfs or btrfs, on Linux 6.14 or later",
                              mount, std::strerror(err)),
                  err);
  }
  return Status::FromErrno(err, "marking the filesystem of " + mount + " for pre-content events");
}

Status AddIgnoreMark(int group, int file_fd) {
  if (::fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | kFanMarkEvictable,
                      kWatchedEvents, file_fd, nullptr) == 0) {
    return Status::Ok();
  }
  return Status::FromErrno(errno, fmt::format("adding an ignore mark on descriptor {}", file_fd));
}

Status RemoveIgnoreMark(int group, int file_fd) {
  if (::fanotify_mark(group, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, kWatchedEvents, file_fd,
                      nullptr) == 0 ||
      errno == ENOENT) {
    return Status::Ok();
  }
  return Status::FromErrno(errno,
                           fmt::format("removing the ignore mark on descriptor {}", file_fd));
}

Result<std::vector<PermissionEvent>> ParsePermissionEvents(std::string_view buf) {
  std::vector<PermissionEvent> events;
  size_t pos = 0;
  while (pos < buf.size()) {
    fanotify_event_metadata meta;
    if (buf.size() - pos < sizeof(meta)) {
      return Status(Code::kInvalidArgument,
                    fmt::format("fanotify event at byte {} is truncated ({} bytes left)", pos,
                                buf.size() - pos));
    }
    std::memcpy(&meta, buf.data() + pos, sizeof(meta));
    PermissionEvent ev;
    if (meta.fd >= 0) ev.fd = UniqueFd(meta.fd);  // owned from here on, whatever follows
    ev.mask = meta.mask;
    ev.pid = meta.pid;
    if (meta.vers != FANOTIFY_METADATA_VERSION) {
      return Status(Code::kInvalidArgument,
                    fmt::format("fanotify event at byte {} has version {} (expected {})", pos,
                                meta.vers, FANOTIFY_METADATA_VERSION));
    }
    if (meta.metadata_len < sizeof(meta) || meta.event_len < meta.metadata_len ||
        meta.event_len > buf.size() - pos) {
      return Status(Code::kInvalidArgument,
                    fmt::format("fanotify event at byte {} has bad lengths (metadata {}, event {}, "
                                "{} bytes left)",
                                pos, meta.metadata_len, meta.event_len, buf.size() - pos));
    }
    size_t info = pos + meta.metadata_len;
    size_t end = pos + meta.event_len;
    while (info < end) {
      fanotify_event_info_header hdr;
      if (end - info < sizeof(hdr)) {
        return Status(Code::kInvalidArgument,
                      fmt::format("fanotify info record at byte {} is truncated", info));
      }
      std::memcpy(&hdr, buf.data() + info, sizeof(hdr));
      if (hdr.len < sizeof(hdr) || hdr.len > end - info) {
        return Status(
            Code::kInvalidArgument,
            fmt::format("fanotify info record at byte {} has bad length {}", info, hdr.len));
      }
      if (hdr.info_type == kFanEventInfoTypeRange) {
        // {header, u32 pad, u64 offset, u64 count}
        if (hdr.len < 24) {
          return Status(Code::kInvalidArgument,
                        fmt::format("fanotify range record at byte {} is {} bytes (expected 24)",
                                    info, hdr.len));
        }
        std::memcpy(&ev.offset, buf.data() + info + 8, 8);
        std::memcpy(&ev.count, buf.data() + info + 16, 8);
        ev.has_range = true;
      }
      info += hdr.len;
    }
    events.push_back(std::move(ev));
    pos = end;
  }
  return events;
}

Status Respond(int group, int event_fd, int error) {
  fanotify_response resp{};
  resp.fd = event_fd;
  if (error == 0) {
    resp.response = kFanAllow;
  } else {
    resp.response = FanDenyErrno(KernelAcceptsDenyErrno(error) ? error : EIO);
  }
  ssize_t n = ::write(group, &resp, sizeof(resp));
  if (n == static_cast<ssize_t>(sizeof(resp))) return Status::Ok();
  if (n < 0 && errno == ENOENT) return Status::Ok();  // no such event: its waiter is gone
  int err = n < 0 ? errno : EIO;
  return Status::FromErrno(err, fmt::format("answering fanotify event on descriptor {}", event_fd));
}

}  // namespace tierflow::watch
