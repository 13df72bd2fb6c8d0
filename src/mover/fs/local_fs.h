// HSM operations on files of a local Linux filesystem (ext4, xfs, btrfs), tying the file's
// persistent HSM record to an archive backend. Used by the mover (archive, restore, remove) and
// by the client on the same host (identify, state, release). All calls block on I/O; call them
// from worker threads, never from an event loop.
#pragma once

#include <string>

#include "common/status.h"
#include "hsm/fid.h"
#include "mover/backends/archive_backend.h"
#include "mover/fs/hsm_record.h"

namespace tierflow::mover {

// Stable identity of a regular file: fsid = statfs f_fsid as 16 hex digits, fid = {inode,
// generation (FS_IOC_GETVERSION, 0 where unsupported), 0}. A path that is missing, a directory
// or a special file is Code::kInvalidArgument / kNotFound with a message naming the path.
Result<hsm::FileId> IdentifyFile(const std::string& path);

struct FileState {
  hsm::FileId id;
  bool has_record = false;   // false: never managed; record is all zero
  HsmRecord record;
  VersionStamp current;      // the file's stamp now
};
Result<FileState> GetFileState(const std::string& path);

// Archive: opens `path`, checks its id is `expected` (else Code::kNotFound "file at PATH is no
// longer FID"), takes the stamp, copies through `backend`, takes the stamp again; if it changed
// the archive fails with Code::kBusy "file changed during archive" and the record is untouched.
// On success the record gets exists|archived, clears dirty, stores stamp/object/checksum/
// archive id and clears last_error. A file with noarchive is refused (kPermissionDenied).
Status ArchiveFile(const std::string& path, const hsm::FileId& expected, uint32_t archive_id,
                   ArchiveBackend& backend, const CopyControl& ctl);

// Restore: the file must be released (else success without copying: nothing to do) and not lost.
// Writes the data back through the backend (verifying the checksum), restores mtime/atime,
// clears released, marks the whole file resident and refreshes the stamp. On failure the data
// is punched again, the file stays released and the error is recorded in last_error.
Status RestoreFile(const std::string& path, const hsm::FileId& expected, ArchiveBackend& backend,
                   const CopyControl& ctl);

// Remove: deletes the archive copy and clears archived/exists (and released must not be set:
// removing the only copy of a released file is refused with kFailedPrecondition).
Status RemoveFile(const std::string& path, const hsm::FileId& expected, ArchiveBackend& backend);

// Release: allowed only for archived, not dirty, not norelease, not lost files whose current
// stamp equals the archived stamp (a mismatch sets dirty and is refused with a message saying to
// archive again). Takes an exclusive write lease (refused with kBusy if the file is open for
// writing), punches all data keeping the size, sets released and clears the resident list.
// Releasing an already released file succeeds.
Status ReleaseFile(const std::string& path);

// Records an error on the file's record (last_error) without changing its states; used when an
// action fails outside the functions above. Best effort.
Status RecordError(const std::string& path, const Status& error);

}  // namespace tierflow::mover
