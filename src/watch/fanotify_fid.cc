// The file-id half of fanotify.h: a notification group reporting file handles (the dirty
// tracker's), the parser of its event records, and the mapping from a kernel file handle to
// tierflow's file id and back to an open file.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/fanotify.h>

#include <cstring>
#include <vector>

#include "mover/fs/local_fs.h"
#include "watch/fanotify.h"

namespace tierflow::watch {
namespace {

// Kernel file handle types (include/linux/exportfs.h).
constexpr int32_t kFileIdIno32Gen = 0x01;
constexpr int32_t kFileIdIno64Gen = 0x81;
constexpr int32_t kFileIdBtrfsWithoutParent = 0x4d;
constexpr int32_t kFileIdBtrfsWithParent = 0x4e;
constexpr int32_t kFileIdBtrfsWithParentRoot = 0x4f;

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Status Malformed(size_t offset, const std::string& what) {
  return Status(Code::kCorrupt,
                fmt::format("malformed fanotify event at byte {}: {}", offset, what));
}

// Reads the FAN_EVENT_INFO_TYPE_FID record among the info records in [begin, end) of `buf`.
Status ParseInfoRecords(std::string_view buf, size_t begin, size_t end, FidEvent* ev) {
  for (size_t off = begin; off < end;) {
    if (end - off < sizeof(fanotify_event_info_header))
      return Malformed(off, "truncated info header");
    auto hdr = Load<fanotify_event_info_header>(buf.data() + off);
    if (hdr.len < sizeof(hdr) || hdr.len > end - off)
      return Malformed(off, "info record length out of range");
    if (hdr.info_type == FAN_EVENT_INFO_TYPE_FID) {
      constexpr size_t kFixed = sizeof(fanotify_event_info_fid) + sizeof(file_handle);
      if (hdr.len < kFixed) return Malformed(off, "fid record shorter than its fixed part");
      auto fid = Load<fanotify_event_info_fid>(buf.data() + off);
      auto fh = Load<file_handle>(buf.data() + off + sizeof(fanotify_event_info_fid));
      if (fh.handle_bytes > hdr.len - kFixed)
        return Malformed(off, "file handle longer than its record");
      ev->fsid = mover::FsidString(static_cast<uint32_t>(fid.fsid.val[0]),
                                   static_cast<uint32_t>(fid.fsid.val[1]));
      ev->handle_type = fh.handle_type;
      ev->handle.assign(buf.data() + off + kFixed, fh.handle_bytes);
    }
    off += hdr.len;
  }
  return Status::Ok();
}

const char* FidGroupHint(int err) {
  switch (err) {
    case EPERM:
      return "creating a fanotify group needs CAP_SYS_ADMIN; run the mover as root";
    case EINVAL:
      return "this kernel does not report file ids (FAN_REPORT_FID needs Linux 5.1 or later)";
    case EMFILE:
      return "too many fanotify groups; raise /proc/sys/fs/fanotify/max_user_groups";
    default:
      return "";
  }
}

const char* MarkHint(int err) {
  switch (err) {
    case EXDEV:
      return "; mark the filesystem through its top-level mount (on btrfs, the top subvolume)";
    case ENODEV:
    case EOPNOTSUPP:
      return "; this filesystem cannot report file ids (use ext4, xfs or btrfs)";
    case ENOSPC:
      return "; too many fanotify marks; raise /proc/sys/fs/fanotify/max_user_marks";
    default:
      return "";
  }
}

}  // namespace

Result<UniqueFd> InitFidGroup(bool nonblocking) {
  unsigned flags =
      FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | (nonblocking ? FAN_NONBLOCK : 0);
  UniqueFd group(::fanotify_init(flags, O_RDONLY | O_LARGEFILE));
  if (!group.valid()) {
    int err = errno;
    Status st = Status::FromErrno(err, "creating the fanotify file-id group");
    const char* hint = FidGroupHint(err);
    return *hint ? Status(st.code(), st.message() + "; " + hint, err) : st;
  }
  return group;
}

Status MarkFilesystemFid(int group, const std::string& mount, uint64_t mask) {
  if (::fanotify_mark(group, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, mount.c_str()) !=
      0) {
    int err = errno;
    Status st =
        Status::FromErrno(err, "marking the filesystem of " + mount + " for file-id events");
    return Status(st.code(), st.message() + MarkHint(err), err);
  }
  return Status::Ok();
}

Result<std::vector<FidEvent>> ParseFidEvents(std::string_view buf) {
  std::vector<FidEvent> out;
  for (size_t off = 0; off < buf.size();) {
    if (buf.size() - off < sizeof(fanotify_event_metadata))
      return Malformed(off, "truncated metadata");
    auto md = Load<fanotify_event_metadata>(buf.data() + off);
    if (md.fd >= 0) ::close(md.fd);  // a file-id group reports none; never leak one
    if (md.vers != FANOTIFY_METADATA_VERSION) {
      return Malformed(off, fmt::format("metadata version {} (expected {})", md.vers,
                                        FANOTIFY_METADATA_VERSION));
    }
    if (md.metadata_len < sizeof(md) || md.event_len < md.metadata_len ||
        md.event_len > buf.size() - off) {
      return Malformed(off, "event length out of range");
    }
    FidEvent ev;
    ev.mask = md.mask;
    ev.pid = md.pid;
    TF_RETURN_IF_ERROR(ParseInfoRecords(buf, off + md.metadata_len, off + md.event_len, &ev));
    out.push_back(std::move(ev));
    off += md.event_len;
  }
  return out;
}

Result<hsm::Fid> FidFromHandle(int32_t handle_type, std::string_view handle) {
  auto too_short = [&](size_t need) {
    return Status(Code::kCorrupt,
                  fmt::format("file handle of type {:#x} has {} bytes, expected at least {}",
                              handle_type, handle.size(), need));
  };
  switch (handle_type) {
    case kFileIdIno32Gen:
      if (handle.size() < 8) return too_short(8);
      return hsm::Fid{Load<uint32_t>(handle.data()), Load<uint32_t>(handle.data() + 4), 0};
    case kFileIdIno64Gen:
      if (handle.size() < 12) return too_short(12);
      return hsm::Fid{Load<uint64_t>(handle.data()), Load<uint32_t>(handle.data() + 8), 0};
    case kFileIdBtrfsWithoutParent:
    case kFileIdBtrfsWithParent:
    case kFileIdBtrfsWithParentRoot:
      // struct btrfs_fid: u64 objectid, u64 root_objectid, u32 gen, ... (packed)
      if (handle.size() < 20) return too_short(20);
      return hsm::Fid{Load<uint64_t>(handle.data()), Load<uint32_t>(handle.data() + 16), 0};
    default:
      return Status(
          Code::kFailedPrecondition,
          fmt::format("file handles of type {:#x} are not understood; tierflow knows ext4, xfs and "
                      "btrfs handles",
                      handle_type));
  }
}

Result<UniqueFd> OpenByHandle(int mount_fd, int32_t handle_type, std::string_view handle,
                              int flags) {
  std::vector<char> buf(sizeof(file_handle) + handle.size());
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(handle.size());
  fh->handle_type = handle_type;
  std::memcpy(buf.data() + sizeof(file_handle), handle.data(), handle.size());
  UniqueFd fd(::open_by_handle_at(mount_fd, fh, flags | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ESTALE) {
      return Status(Code::kNotFound, "stale file handle: the file no longer exists", ESTALE);
    }
    return Status::FromErrno(errno,
                             fmt::format("opening a file by handle (type {:#x})", handle_type));
  }
  return fd;
}

}  // namespace tierflow::watch
