// HSM operations on local Linux files: each operation opens the file once, checks its identity
// and record, moves data through the backend, and commits the new record in an order that
// keeps the file correct if the process dies at any point (see the comments at each commit).
#include "mover/fs/local_fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <vector>

#include "hsm/hsm_state.h"
#include "mover/fs/managed_file.h"

namespace tierflow::mover {
namespace {

using hsm::kStateArchived;
using hsm::kStateDirty;
using hsm::kStateExists;
using hsm::kStateLost;
using hsm::kStateNoArchive;
using hsm::kStateNoRelease;
using hsm::kStateReleased;

using MaybeRecord = std::optional<HsmRecord>;

std::vector<Extent> WholeFile(uint64_t size) { return {Extent{0, size}}; }

bool Has(const MaybeRecord& rec, uint32_t bits) { return rec && (rec->states & bits) != 0; }

Status NotArchived(const std::string& path) {
  return Status(Code::kFailedPrecondition, path + " is not archived");
}

// Only a record describing resident, clean, archived data makes a claim worth sealing.
bool NeedsSeal(const HsmRecord& r) {
  return (r.states & kStateArchived) && !(r.states & (kStateDirty | kStateReleased));
}

// Writes `next` over `rec`; when both describe resident, clean, archived data and the file has
// not changed since `rec` was sealed, the new record is sealed too, so bookkeeping writes (an
// error, a flag) do not make the file look modified.
Status WriteKeepingSeal(const ManagedFile& f, const MaybeRecord& rec, HsmRecord next) {
  if (rec && NeedsSeal(*rec) && NeedsSeal(next)) {
    const HsmRecord& old = *rec;
    Status st = f.WriteSealed(next, [&old](const VersionStamp& now) { return UnchangedSinceSeal(old, now); },
                              /*lease_held=*/false);
    if (st.code() != Code::kBusy) return st;
  }
  return f.WriteRecord(std::move(next));
}

Result<HsmRecord> RecordOrNew(const ManagedFile& f, const MaybeRecord& rec) {
  if (rec) return *rec;
  auto id = f.Identify();
  if (!id.ok()) return id.status();
  HsmRecord fresh;
  fresh.fid = id->fid;
  return fresh;
}

// Stores `error` as the file's last error.
Status SaveError(const ManagedFile& f, const MaybeRecord& rec, const Status& error) {
  auto next = RecordOrNew(f, rec);
  if (!next.ok()) return next.status();
  next->last_error_code = error.AsErrno();
  next->last_error = error.message().substr(0, kMaxLastErrorBytes);
  return WriteKeepingSeal(f, rec, std::move(*next));
}

// Returns `error`, first recording it on the file unless it is a cancel or a change under us
// (those say nothing about the file).
Status Fail(const ManagedFile& f, const MaybeRecord& rec, const Status& error) {
  if (error.code() != Code::kCanceled && error.code() != Code::kBusy) SaveError(f, rec, error);
  return error;
}

// ---- archive ----

// Ok with *skip set when there is nothing to do.
Status CheckArchivable(const std::string& path, const MaybeRecord& rec, uint32_t archive_id, bool* skip) {
  *skip = false;
  if (Has(rec, kStateNoArchive)) {
    return Status(Code::kPermissionDenied, path + " has noarchive set; clear it to archive the file");
  }
  if (Has(rec, kStateExists) && rec->archive_id != archive_id) {
    return Status(Code::kPermissionDenied,
                  fmt::format("{} is archived in archive {}, not {}; remove it from archive {} first", path,
                              rec->archive_id, archive_id, rec->archive_id));
  }
  // A released file's data is the archive copy already (and reading it would read holes).
  *skip = Has(rec, kStateReleased);
  return Status::Ok();
}

HsmRecord ArchivedRecord(const MaybeRecord& rec, const hsm::FileId& id, uint32_t archive_id,
                         const VersionStamp& stamp, const PutResult& put) {
  HsmRecord r = rec.value_or(HsmRecord{});
  r.fid = id.fid;
  r.archive_id = archive_id;
  r.states = (r.states | kStateExists | kStateArchived) & ~(kStateDirty | kStateLost);
  r.stamp = stamp;
  r.object_ref = put.object_ref;
  r.checksum = put.checksum;
  r.resident = WholeFile(stamp.size);
  r.last_error_code = 0;
  r.last_error.clear();
  return r;
}

Status ChangedDuringArchive(const std::string& path) {
  return Status(Code::kBusy, fmt::format("archiving {}: file changed during archive; archive it again once "
                                         "it is no longer being modified",
                                         path));
}

// ---- restore ----

// Writes the archived data back into the file and puts its mtime back; on failure punches
// whatever was written so the file reads as it did (released).
Status WriteBack(const ManagedFile& f, const HsmRecord& rec, ArchiveBackend& backend, const CopyControl& ctl) {
  auto now = f.Stamp();
  if (!now.ok()) return now.status();
  if (now->size != rec.stamp.size) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("its size changed while it was released (archived {} bytes, now {}); "
                              "remove the archive copy and archive the file again",
                              rec.stamp.size, now->size));
  }
  auto w = f.Reopen(O_WRONLY);
  if (!w.ok()) return w.status();
  Status st = backend.Get(rec.object_ref, w->get(), rec.checksum, ctl);
  if (st.ok()) {
    struct timespec times[2];
    times[0] = times[1] = {static_cast<time_t>(rec.stamp.mtime_ns / 1'000'000'000),
                           static_cast<long>(rec.stamp.mtime_ns % 1'000'000'000)};
    if (::futimens(w->get(), times) != 0) st = Status::FromErrno(errno, "setting the times");
  }
  // Data durable before the record may say resident.
  if (st.ok() && ::fsync(w->get()) != 0) st = Status::FromErrno(errno, "syncing the restored data");
  if (st.ok()) return st;
  Status punched = PunchAndKeepMtime(w->get(), f.path(), rec.stamp.size, rec.stamp.mtime_ns);
  if (!punched.ok()) return Status(st.code(), st.message() + "; then " + punched.message(), st.sys_errno());
  return st;
}

// The commit after the data is back. A change right after our restore (a writer that waited
// for it) leaves the file resident but dirty.
Status CommitRestored(const ManagedFile& f, const HsmRecord& rec) {
  auto stamp = f.Stamp();
  if (!stamp.ok()) return stamp.status();
  HsmRecord r = rec;
  r.states &= ~kStateReleased;
  r.stamp = *stamp;
  r.resident = WholeFile(stamp->size);
  r.last_error_code = 0;
  r.last_error.clear();
  const VersionStamp restored = *stamp;
  Status st = f.WriteSealed(r, [&restored](const VersionStamp& now) { return now == restored; },
                            /*lease_held=*/false);
  if (st.code() == Code::kBusy) {
    r.states |= kStateDirty;
    st = f.WriteRecord(r);
  }
  return st;
}

// Undoes a restore whose record could not be committed: the data goes again.
Status Repunch(const ManagedFile& f, const HsmRecord& rec) {
  auto w = f.Reopen(O_WRONLY);
  if (!w.ok()) return w.status();
  return PunchAndKeepMtime(w->get(), f.path(), rec.stamp.size, rec.stamp.mtime_ns);
}

// ---- release ----

Status CheckReleasable(const std::string& path, const HsmRecord& r) {
  if (r.states & kStateLost) {
    return Status(Code::kFailedPrecondition, path + " is marked lost: its archive copy is gone; it cannot be released");
  }
  if (r.states & kStateNoRelease) {
    return Status(Code::kFailedPrecondition, path + " has norelease set; clear it to release the file");
  }
  if (r.states & kStateDirty) {
    return Status(Code::kFailedPrecondition,
                  path + " was modified since it was archived (dirty); archive it again before releasing");
  }
  return Status::Ok();
}

std::string DescribeChange(const HsmRecord& r, const VersionStamp& now) {
  if (now.size != r.stamp.size) return fmt::format("size {} -> {}", r.stamp.size, now.size);
  if (now.mtime_ns != r.stamp.mtime_ns) return "its mtime changed";
  if (now.generation != r.stamp.generation) return "its inode generation changed";
  if (!r.seal.sealed()) {
    return "nothing proves the copy matches it: it was open for writing when it was archived, or "
           "was marked dirty since";
  }
  return "its ctime moved past the archive's record";
}

Status MarkDirty(const ManagedFile& f, HsmRecord r, const VersionStamp& now) {
  std::string why = DescribeChange(r, now);
  r.states |= kStateDirty;
  TF_RETURN_IF_ERROR(f.WriteRecord(r));
  return Status(Code::kFailedPrecondition,
                fmt::format("{} changed since it was archived ({}); archive it again before releasing", f.path(), why));
}

// Record first, then punch: a crash in between leaves a file marked released whose data is
// still there (a restore rewrites the same bytes), never a resident-looking file of zeros.
Status PunchReleased(const ManagedFile& f, const HsmRecord& r, const VersionStamp& now) {
  HsmRecord released = r;
  released.states |= kStateReleased;
  released.resident.clear();
  TF_RETURN_IF_ERROR(f.WriteRecord(released));
  TF_RETURN_IF_ERROR(f.Sync());
  Status st = f.PunchAll(now.size, now.mtime_ns);
  if (st.ok()) return st;
  if (st.sys_errno() == EOPNOTSUPP) {  // nothing was punched: the file is as it was
    auto same_data = [&now](const VersionStamp& s) {
      return s.size == now.size && s.mtime_ns == now.mtime_ns && s.generation == now.generation;
    };
    f.WriteSealed(r, same_data, /*lease_held=*/true);
    return Status(Code::kFailedPrecondition, f.path() + ": its filesystem cannot punch holes, so it cannot be released",
                  EOPNOTSUPP);
  }
  Status failed(st.code(), st.message() + "; the file stays released and is restored from the archive on access",
                st.sys_errno());
  SaveError(f, released, failed);
  return failed;
}

Status LeaseError(const std::string& path, const Status& st) {
  if (st.sys_errno() == EAGAIN || st.sys_errno() == EBUSY) {
    return Status(Code::kBusy, path + " is open for writing or reading by another process; close it and retry",
                  st.sys_errno());
  }
  return st.Annotate("releasing " + path);
}

// ---- deleted files ----

// Kernel file handle types (include/linux/exportfs.h).
constexpr int kFileIdIno32Gen = 0x01;
constexpr int kFileIdIno64Gen = 0x81;

std::string FsTypeName(int64_t magic) {
  switch (magic) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: return "tmpfs";
    case NFS_SUPER_MAGIC: return "nfs";
    default: return fmt::format("type {:#x}", magic);
  }
}

// The handle open_by_handle_at needs for `fid` on a filesystem of type `magic`: handle_bytes
// and handle_type followed by the bytes, as struct file_handle.
Result<std::vector<char>> HandleFor(const hsm::Fid& fid, int64_t magic, const std::string& id_text) {
  auto refuse = [&](const std::string& why) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("cannot prove that {} is gone: {}; its archive copy is kept", id_text, why));
  };
  if (fid.ver != 0) return refuse("its id is not one of a Linux filesystem's files (ver is not 0)");
  const bool small = fid.seq <= UINT32_MAX;
  if (magic != XFS_SUPER_MAGIC && !(magic == EXT4_SUPER_MAGIC && small)) {
    return refuse(fmt::format("tierflow cannot build a file handle from a file id on {} (only on ext4 and xfs); "
                              "remove the copy by hand once you are sure the file is gone",
                              FsTypeName(magic)));
  }
  std::vector<char> buf(sizeof(file_handle) + 12);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  char* bytes = buf.data() + sizeof(file_handle);
  const uint32_t gen = fid.oid;
  if (small) {
    const uint32_t ino = static_cast<uint32_t>(fid.seq);
    fh->handle_type = kFileIdIno32Gen;
    fh->handle_bytes = 8;
    std::memcpy(bytes, &ino, 4);
    std::memcpy(bytes + 4, &gen, 4);
  } else {
    fh->handle_type = kFileIdIno64Gen;
    fh->handle_bytes = 12;
    std::memcpy(bytes, &fid.seq, 8);
    std::memcpy(bytes + 8, &gen, 4);
  }
  return buf;
}

// Ok only if the filesystem at `mount` (the file's, checked by fsid) says no file has `id`.
Status ProveGone(const std::string& mount, const hsm::FileId& id) {
  const std::string id_text = "file " + id.ToString();
  UniqueFd mount_fd(::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd.valid()) return Status::FromErrno(errno, "opening mount point " + mount);
  struct statfs sfs;
  if (::fstatfs(mount_fd.get(), &sfs) != 0) return Status::FromErrno(errno, "reading the filesystem of " + mount);
  const std::string fsid =
      FsidString(static_cast<uint32_t>(sfs.f_fsid.__val[0]), static_cast<uint32_t>(sfs.f_fsid.__val[1]));
  if (fsid != id.fsid) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("cannot prove that {} is gone: {} is filesystem {}, not {}; its archive copy is kept",
                              id_text, mount, fsid, id.fsid));
  }
  auto handle = HandleFor(id.fid, static_cast<int64_t>(sfs.f_type), id_text);
  if (!handle.ok()) return handle.status();
  UniqueFd fd(::open_by_handle_at(mount_fd.get(), reinterpret_cast<file_handle*>(handle->data()),
                                  O_PATH | O_CLOEXEC));
  if (fd.valid()) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("{} still exists on {} (it has a link or is still open); its archive copy is kept",
                              id_text, mount));
  }
  if (errno == ESTALE) return Status::Ok();
  Status st = Status::FromErrno(errno, fmt::format("looking {} up by handle on {}", id_text, mount));
  return Status(Code::kFailedPrecondition, st.message() + "; cannot prove it is gone, so its archive copy is kept",
                st.sys_errno());
}

}  // namespace

std::string FsidString(uint32_t val0, uint32_t val1) { return fmt::format("{:08x}{:08x}", val0, val1); }

Status RemoveCopyOfDeletedFile(const std::string& mount, const hsm::FileId& expected, ArchiveBackend& backend) {
  TF_RETURN_IF_ERROR(ProveGone(mount, expected));
  auto ref = backend.ObjectRefFor(expected);
  if (!ref.ok()) return ref.status().Annotate("removing the archive copy of deleted file " + expected.ToString());
  Status st = backend.Delete(*ref);
  if (!st.ok()) return st.Annotate("removing the archive copy of deleted file " + expected.ToString());
  return Status::Ok();
}

Result<hsm::FileId> IdentifyFile(const std::string& path) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  return f->Identify();
}

namespace {

Result<FileState> StateOf(const ManagedFile& f) {
  auto id = f.Identify();
  if (!id.ok()) return id.status();
  auto rec = f.ReadRecord();
  if (!rec.ok()) return rec.status();
  auto stamp = f.Stamp();
  if (!stamp.ok()) return stamp.status();
  FileState state;
  state.id = *id;
  state.has_record = rec->has_value();
  state.record = rec->value_or(HsmRecord{});
  state.current = *stamp;
  struct stat st {};
  if (::fstat(f.fd(), &st) == 0) {
    state.uid = st.st_uid;
    state.gid = st.st_gid;
  }
  // The project id (ext4, xfs project quotas); filesystems without one leave it 0.
  struct fsxattr fsx {};
  if (::ioctl(f.fd(), FS_IOC_FSGETXATTR, &fsx) == 0) state.projid = fsx.fsx_projid;
  return state;
}

Result<ManagedFile> AdoptDup(int fd, const std::string& name) {
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) return Status::FromErrno(errno, "duplicating the descriptor of " + name);
  return ManagedFile::Adopt(std::move(dup), name);
}

}  // namespace

Result<FileState> GetFileState(const std::string& path) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  return StateOf(*f);
}

Result<FileState> GetFileStateOfFd(int fd, const std::string& name) {
  auto f = AdoptDup(fd, name);
  if (!f.ok()) return f.status();
  return StateOf(*f);
}

Result<bool> MarkDirtyIfChanged(int fd, const std::string& name) {
  auto f = AdoptDup(fd, name);
  if (!f.ok()) return f.status();
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  const MaybeRecord& r = *rec;
  if (!Has(r, kStateArchived) || Has(r, kStateDirty | kStateReleased)) return false;
  auto now = f->Stamp();
  if (!now.ok()) return now.status();
  if (UnchangedSinceSeal(**rec, *now)) return false;
  HsmRecord next = **rec;
  next.states |= kStateDirty;
  TF_RETURN_IF_ERROR(f->WriteRecord(next));
  return true;
}

Status ArchiveFile(const std::string& path, const hsm::FileId& expected, uint32_t archive_id,
                   ArchiveBackend& backend, const CopyControl& ctl) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  TF_RETURN_IF_ERROR(f->CheckIdentity(expected));
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  bool skip = false;
  TF_RETURN_IF_ERROR(CheckArchivable(path, *rec, archive_id, &skip));
  if (skip) return Status::Ok();
  auto before = f->Stamp();
  if (!before.ok()) return before.status();
  auto put = backend.Put(f->fd(), expected, ctl);
  if (!put.ok()) {
    if (put.status().code() == Code::kBusy) return ChangedDuringArchive(path);
    return Fail(*f, *rec, put.status().Annotate("archiving " + path));
  }
  HsmRecord next = ArchivedRecord(*rec, expected, archive_id, *before, *put);
  const VersionStamp copied = *before;
  Status st = f->WriteSealed(next, [&copied](const VersionStamp& now) { return now == copied; },
                             /*lease_held=*/false);
  if (st.code() == Code::kBusy) return ChangedDuringArchive(path);
  if (!st.ok()) return st.Annotate("archiving " + path);
  if (*rec && !(*rec)->object_ref.empty() && (*rec)->object_ref != put->object_ref) {
    backend.Delete((*rec)->object_ref);  // best effort: the record no longer points at it
  }
  return Status::Ok();
}

Status RestoreFile(const std::string& path, const hsm::FileId& expected, ArchiveBackend& backend,
                   const CopyControl& ctl) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  TF_RETURN_IF_ERROR(f->CheckIdentity(expected));
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  if (!Has(*rec, kStateExists)) return NotArchived(path);
  if (!Has(*rec, kStateReleased)) return Status::Ok();
  if (Has(*rec, kStateLost)) {
    return Status(Code::kFailedPrecondition,
                  path + " is marked lost: its archive copy is known to be gone, so it cannot be restored");
  }
  const HsmRecord& r = **rec;
  Status st = WriteBack(*f, r, backend, ctl);
  if (!st.ok()) return Fail(*f, *rec, st.Annotate("restoring " + path));
  st = CommitRestored(*f, r);
  if (!st.ok()) {
    Status repunched = Repunch(*f, r);
    Status failed = st.Annotate("restoring " + path);
    if (!repunched.ok()) failed = Status(failed.code(), failed.message() + "; then " + repunched.message());
    return Fail(*f, *rec, failed);
  }
  return Status::Ok();
}

Status RemoveFile(const std::string& path, const hsm::FileId& expected, ArchiveBackend& backend) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  TF_RETURN_IF_ERROR(f->CheckIdentity(expected));
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  bool copy_left = *rec && !(*rec)->object_ref.empty();  // a remove that could not delete it
  // A managed file whose copy is already gone: done. A remove run again (its first run's
  // result was lost with a killed mover) must not fail after doing its work.
  if (!Has(*rec, kStateExists | kStateArchived) && !copy_left) {
    return *rec ? Status::Ok() : NotArchived(path);
  }
  if (Has(*rec, kStateReleased)) {
    return Status(Code::kFailedPrecondition, path + " is released: the archive copy is its only data; restore "
                                                    "it before removing the copy");
  }
  // Record first, durably: once it no longer says archived, nothing can release the file on
  // the strength of a copy that is about to go. A crash before the delete leaves an orphan
  // copy, named by object_ref so that removing again deletes it.
  HsmRecord r = **rec;
  r.states &= ~(kStateExists | kStateArchived | kStateDirty | kStateLost);
  r.checksum = 0;
  r.last_error_code = 0;
  r.last_error.clear();
  TF_RETURN_IF_ERROR(f->WriteRecord(r));
  TF_RETURN_IF_ERROR(f->Sync());
  if (copy_left) {
    Status st = backend.Delete(r.object_ref);
    if (!st.ok()) return Fail(*f, r, st.Annotate("removing the archive copy of " + path));
  }
  r.object_ref.clear();
  return f->WriteRecord(std::move(r));
}

Status ReleaseFile(const std::string& path) {
  auto f = ManagedFile::Open(path, O_RDWR);
  if (!f.ok()) return f.status();
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  if (!Has(*rec, kStateArchived)) {
    return Status(Code::kFailedPrecondition, path + " is not archived; archive it before releasing");
  }
  if (Has(*rec, kStateReleased)) return Status::Ok();
  const HsmRecord& r = **rec;
  TF_RETURN_IF_ERROR(CheckReleasable(path, r));
  // On a filesystem watched by a holder (src/watch/holder.h), this read of the still resident
  // file makes the holder put an ignore mark on it before it answers. So the punch below,
  // which runs under our write lease, raises no event: the kernel could not open the event's
  // descriptor against that lease. The punch modifies the file, which clears the mark again.
  char byte;
  (void)::pread(f->fd(), &byte, 1, 0);
  auto lease = FileLease::Take(f->fd(), F_WRLCK);
  if (!lease.ok()) return LeaseError(path, lease.status());
  auto now = f->Stamp();
  if (!now.ok()) return now.status();
  if (!UnchangedSinceSeal(r, *now)) return MarkDirty(*f, r, *now);
  return PunchReleased(*f, r, *now);
}

Status SetHsmFlags(const std::string& path, uint32_t set, uint32_t clear, bool admin) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  auto next = RecordOrNew(*f, *rec);
  if (!next.ok()) return next.status();
  auto states = hsm::ApplyUserFlags(next->states, set, clear, admin);
  if (!states.ok()) return states.status().Annotate(path);
  next->states = *states;
  return WriteKeepingSeal(*f, *rec, std::move(*next));
}

Status RecordError(const std::string& path, const Status& error) {
  auto f = ManagedFile::Open(path, O_RDONLY);
  if (!f.ok()) return f.status();
  auto rec = f->ReadRecord();
  if (!rec.ok()) return rec.status();
  return SaveError(*f, *rec, error);
}

}  // namespace tierflow::mover
