// Thin wrappers over the fanotify system calls that tierflow's Linux frontend uses, with the
// constants Debian 12's headers lack (kernel 6.14+ pre-content events), and parsers for the
// event records the kernel writes. See ../shared reference "fanotify pre-content events".
//
// Two groups watch a managed filesystem:
//  - a pre-content group (FAN_CLASS_PRE_CONTENT) with a filesystem mark for FAN_PRE_ACCESS:
//    every read, write, truncate and mmap of a regular file waits for our answer. The holder
//    owns it (holder.h).
//  - a notification group reporting file handles (FAN_REPORT_FID) for FAN_MODIFY,
//    FAN_CLOSE_WRITE and FAN_DELETE_SELF: the tracker (tracker.h) marks archived files dirty and
//    notices unlinks.
// Ignore marks on resident files are evictable and do not survive a modification: a write,
// truncate or hole punch (release) of the file clears them in the kernel, so a released file
// is always intercepted again.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "hsm/fid.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::watch {

using mover::UniqueFd;

// Missing from Debian 12's <sys/fanotify.h>; values from the 6.14+ uapi header.
inline constexpr uint64_t kFanPreAccess = 0x00100000;
// What the holder's group intercepts: pre-content access (read, write, truncate, mmap) and
// open. Opens count because open(O_TRUNC) raises no pre-content event (6.18): without the open
// event, a program could truncate a released file, or a file whose restore is running, and the
// restore would then write old data into the new file. So a released file is restored when a
// process other than tierflow's own opens it.
inline constexpr uint64_t kFanOpenPerm = 0x00010000;  // FAN_OPEN_PERM
inline constexpr uint64_t kWatchedEvents = kFanPreAccess | kFanOpenPerm;
inline constexpr unsigned kFanClassPreContent = 0x08;
inline constexpr unsigned kFanMarkEvictable = 0x200;
inline constexpr uint8_t kFanEventInfoTypeRange = 6;
inline constexpr uint32_t kFanAllow = 0x01;
inline constexpr uint32_t kFanDeny = 0x02;
inline constexpr uint32_t FanDenyErrno(int err) {
  return kFanDeny | (static_cast<uint32_t>(err) << 24);
}

// The filesystem types whose pre-content hooks exist (ext4, xfs, btrfs). Anything else is
// refused with Code::kFailedPrecondition naming the type found (e.g. "tmpfs") and what is
// needed (an ext4, xfs or btrfs filesystem and a 6.14+ kernel).
Result<std::string> CheckWatchableFilesystem(const std::string& mount);

// A pre-content group (O_RDONLY|O_NONBLOCK|O_LARGEFILE event fds, close-on-exec, the group
// nonblocking when asked). Read-only on purpose: with writable event fds the kernel (6.18)
// drops a file's ignore mark again at once, and a writable event fd held while a restore
// commits keeps the commit's read lease (and so the seal) out. O_NONBLOCK because the kernel
// opens each event's fd against the file's leases: an access by a process under its own write
// lease (a release punching) would make the reader of the group wait for that lease to break
// (45 s), stalling every access to the filesystem; nonblocking, the kernel denies that one
// access (EPERM) at once instead.
// Errors say that CAP_SYS_ADMIN and a 6.14+ kernel are needed.
Result<UniqueFd> InitPreContentGroup(bool nonblocking);
// Marks the whole filesystem holding `mount` for kWatchedEvents (after CheckWatchableFilesystem).
Status MarkFilesystemPreAccess(int group, const std::string& mount);

// Ignore kWatchedEvents on the inode of `file_fd` from now on, until the file is modified or
// its inode leaves the cache (evictable, not surviving modify).
Status AddIgnoreMark(int group, int file_fd);
Status RemoveIgnoreMark(int group, int file_fd);

struct PermissionEvent {
  UniqueFd fd;        // the file, opened by the kernel without notifications
  uint64_t mask = 0;  // kFanPreAccess or FAN_OPEN_PERM
  pid_t pid = 0;
  bool has_range = false;
  uint64_t offset = 0;  // range info; a truncate reports offset = new size, count = 0
  uint64_t count = 0;
};
// Parses what one read() of a pre-content group returned. Takes ownership of every event fd in
// it (also when the buffer is malformed: fds already parsed stay owned by the result's
// elements; the error names the byte offset).
Result<std::vector<PermissionEvent>> ParsePermissionEvents(std::string_view buf);
// Answers a permission event: error 0 allows, else FAN_DENY_ERRNO(error) (error must be one the
// kernel accepts: EIO, EPERM, EBUSY, ETXTBSY, EAGAIN, ENOSPC, EDQUOT; others become EIO).
// An event whose waiter is gone is not an error.
Status Respond(int group, int event_fd, int error);

// A notification group reporting file ids (FAN_CLASS_NOTIF | FAN_REPORT_FID).
Result<UniqueFd> InitFidGroup(bool nonblocking);
// Marks the filesystem holding `mount` for `mask` (e.g. FAN_MODIFY | FAN_CLOSE_WRITE |
// FAN_DELETE_SELF).
Status MarkFilesystemFid(int group, const std::string& mount, uint64_t mask);

struct FidEvent {
  uint64_t mask = 0;
  pid_t pid = 0;
  std::string fsid;            // as hsm::FileId::fsid: 16 lowercase hex digits
  int32_t handle_type = 0;     // struct file_handle's handle_type
  std::string handle;          // f_handle bytes
};
// Parses what one read() of a FID group returned (FAN_EVENT_INFO_TYPE_FID records; overflow
// events come back with mask FAN_Q_OVERFLOW and no handle).
Result<std::vector<FidEvent>> ParseFidEvents(std::string_view buf);

// The tierflow file id of a handle: ext4/xfs FILEID_INO32_GEN (1: u32 ino, u32 gen), xfs
// 64-bit inodes (0x81: u64 ino, u32 gen), btrfs (0x4d/0x4e: u64 objectid, u64 root, u32 gen).
// Others are Code::kFailedPrecondition naming the type (Code has no "unimplemented").
Result<hsm::Fid> FidFromHandle(int32_t handle_type, std::string_view handle);
// open_by_handle_at on the filesystem of `mount_fd`; a file that no longer exists is
// Code::kNotFound ("stale").
Result<UniqueFd> OpenByHandle(int mount_fd, int32_t handle_type, std::string_view handle,
                              int flags);

}  // namespace tierflow::watch
