// The request that removes the archive copy of a deleted file (remove_archive_on_last_unlink):
// built by the watching mover when the tracker (tracker.h) reports a last unlink, submitted to
// the coordinator like any REMOVE, and run by a mover as RemoveCopyOfDeletedFile (local_fs.h),
// which deletes the copy only once the filesystem proves the file is gone.
#pragma once

#include <string>

#include "hsm/fid.h"
#include "tierflow.pb.h"

namespace tierflow::watch {

// A REMOVE of `file` whose path is the mount point of its filesystem (the file has no path
// any more), tagged with mover::kUnlinkedTag in its data, archive id 0 (the coordinator's
// default: a posix archive names the copy by file id alone).
v1::RequestSpec UnlinkedRemoveSpec(const hsm::FileId& file, const std::string& mount);

}  // namespace tierflow::watch
