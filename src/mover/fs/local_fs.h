// HSM operations on files of a local Linux filesystem (ext4, xfs, btrfs), tying the file's
// persistent HSM record to an archive backend. Used by the mover (archive, restore, remove) and
// by the client on the same host (identify, state, release). All calls block on I/O; call them
// from worker threads, never from an event loop. Calls on different files may run
// concurrently. Calls on one file are not coordinated beyond the leases (a release while
// another call has the file open fails with kBusy); the coordinator never runs two actions on
// one file at once. They need root (trusted.* xattrs, leases on other users' files).
//
// The version stamp and our own record writes: the record keeps the stamp taken before the
// archive copy (size, mtime, ctime, generation) plus a ctime window, the seal, that provably
// holds the ctime our own last record write produced (see CtimeSeal in hsm_record.h). "The
// file is unchanged since archive" means: size, mtime and generation equal the stamp and the
// ctime is inside the seal. Every record write that leaves a resident, clean, archived file
// (archive, restore, SetHsmFlags, RecordError) re-seals only after checking, under a read
// lease, that this still holds; otherwise it writes the record unsealed and the file counts as
// changed. Sealing costs a wait of up to one clock tick plus 2 ms per such write.
//
// Fanotify: release punches and restore writes through ordinary descriptors, so a pre-content
// watcher on the same filesystem sees the mover's own accesses too and must let them through.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "hsm/fid.h"
#include "mover/backends/archive_backend.h"
#include "mover/fs/hsm_record.h"

namespace tierflow::mover {

// A filesystem id as hsm::FileId::fsid spells it: statfs's f_fsid (or a fanotify event's fsid)
// as 16 lowercase hex digits, val[0] first.
std::string FsidString(uint32_t val0, uint32_t val1);

// Stable identity of a regular file: fsid = statfs f_fsid as 16 hex digits, fid = {inode,
// generation (FS_IOC_GETVERSION, 0 where unsupported), 0}. A path that is missing, a directory
// or a special file is Code::kInvalidArgument / kNotFound with a message naming the path.
Result<hsm::FileId> IdentifyFile(const std::string& path);

struct FileState {
  hsm::FileId id;
  bool has_record = false;   // false: never managed; record is all zero. Also false when the
                             // xattr holds another file's record (copied by cp -a as root):
                             // a record counts only if its fid is this file's
  HsmRecord record;
  VersionStamp current;      // the file's stamp now
  uint32_t uid = 0;          // its owner, group and project id (fair share by owner)
  uint32_t gid = 0;
  uint32_t projid = 0;
};
Result<FileState> GetFileState(const std::string& path);
// The same for a descriptor opened elsewhere (a fanotify event's file, a file opened by handle);
// `name` is used in messages. The descriptor is only read (fstat, ioctl, fgetxattr): no
// content access, so no fanotify permission event.
Result<FileState> GetFileStateOfFd(int fd, const std::string& name);

// For the dirty tracker: if the file of `fd` is archived, resident, not yet dirty and its data
// may have changed since the archive (its stamp is not the archived one, see CtimeSeal), sets
// dirty in its record and returns true. Otherwise changes nothing and returns false.
// `fd` may be read-only.
Result<bool> MarkDirtyIfChanged(int fd, const std::string& name);

// Archive: opens `path`, checks its id is `expected` (else Code::kNotFound "file at PATH is no
// longer FID"), takes the stamp, copies through `backend`, takes the stamp again; if it changed
// the archive fails with Code::kBusy "file changed during archive" and the record is untouched.
// On success the record gets exists|archived, clears dirty, stores stamp/object/checksum/
// archive id and clears last_error. A file with noarchive is refused (kPermissionDenied).
// So is a file archived in another archive id (remove it there first). A released file is
// already archived: success without copying. If the file is open for writing elsewhere when
// the copy ends, the archive still succeeds but the record is unsealed, so release refuses
// until the file is archived again while closed. Other failures are recorded in last_error
// (cancels and kBusy are not). A previous copy under another object_ref is deleted.
Status ArchiveFile(const std::string& path, const hsm::FileId& expected, uint32_t archive_id,
                   ArchiveBackend& backend, const CopyControl& ctl);

// Restore: the file must be released (else success without copying: nothing to do) and not lost.
// Writes the data back through the backend (verifying the checksum), restores mtime/atime,
// clears released, marks the whole file resident and refreshes the stamp. On failure the data
// is punched again, the file stays released and the error is recorded in last_error.
// A file without a record (or never archived) is kFailedPrecondition "PATH is not archived";
// a lost one is kFailedPrecondition. The data is fsynced before the record stops saying
// released. A file whose size changed while released is refused (kFailedPrecondition). If the
// file changes right after the data is back, it ends resident and dirty.
Status RestoreFile(const std::string& path, const hsm::FileId& expected, ArchiveBackend& backend,
                   const CopyControl& ctl);

// Remove: deletes the archive copy and clears archived/exists (and released must not be set:
// removing the only copy of a released file is refused with kFailedPrecondition).
// dirty and lost go too (they need exists/archived), as do object_ref and checksum; fid,
// norelease and noarchive stay. A file never archived is kFailedPrecondition "PATH is not
// archived". The record stops saying archived (fsynced) before the copy is deleted; if the
// delete fails, object_ref stays so that removing again finishes the job.
Status RemoveFile(const std::string& path, const hsm::FileId& expected, ArchiveBackend& backend);

// Release: allowed only for archived, not dirty, not norelease, not lost files whose current
// stamp equals the archived stamp (a mismatch sets dirty and is refused with a message saying to
// archive again). Takes an exclusive write lease (refused with kBusy if the file is open for
// writing), punches all data keeping the size, sets released and clears the resident list.
// Releasing an already released file succeeds.
// Details: refusals are kFailedPrecondition; the lease is taken on the O_RDWR descriptor that
// punches (Linux >= 5.3 allows a write lease on the holder's own writable fd) and fails if any
// other descriptor, reading or writing, is open: kBusy "PATH is open for writing or reading by
// another process; close it and retry". The record saying released is written and fsynced
// before the punch, so a crash in between leaves released-but-still-present data (a restore
// rewrites the same bytes), never a resident-looking file of zeros. mtime and atime are kept.
// A filesystem that cannot punch holes is kFailedPrecondition and the file stays as it was.
Status ReleaseFile(const std::string& path);

// Records an error on the file's record (last_error) without changing its states; used when an
// action fails outside the functions above. Best effort. (The functions above record their own
// failures, except cancels and kBusy changes, which say nothing about the file.)
Status RecordError(const std::string& path, const Status& error);

// Sets and clears user-settable state bits (norelease, noarchive, dirty) as `lfs hsm_set`
// does, with hsm::ApplyUserFlags's rules and errors (`admin`: root, who may also set lost). Creates the record if the file has none.
// Keeps a clean archived file releasable (the write is sealed, see CtimeSeal in hsm_record.h).
Status SetHsmFlags(const std::string& path, uint32_t set, uint32_t clear, bool admin = false);

// The request-data tag that marks a REMOVE as the cleanup of a deleted file (the tracker's
// remove_archive_on_last_unlink): the mover runs RemoveCopyOfDeletedFile for it.
inline constexpr char kUnlinkedTag[] = "tierflow.unlinked=1";

// Removal of the archive copy of a file that no longer exists (its last link went away, so it
// has no record left to say where the copy is). Deletes backend.ObjectRefFor(expected) only
// once it is proven that no file with that id exists on the filesystem mounted at `mount`:
// a file handle is built from the id (ext4/xfs FILEID_INO32_GEN for 32-bit inode numbers, xfs
// FILEID_INO64_GEN otherwise) and open_by_handle_at must fail with ESTALE. Anything else is
// refused with kFailedPrecondition and a message naming the id and why: the file still exists
// (linked or open somewhere), `mount` is another filesystem, or the filesystem's handles
// cannot be built from an id (btrfs needs the subvolume). A copy already gone is success.
// Needs CAP_DAC_READ_SEARCH (root).
Status RemoveCopyOfDeletedFile(const std::string& mount, const hsm::FileId& expected,
                               ArchiveBackend& backend);

}  // namespace tierflow::mover
