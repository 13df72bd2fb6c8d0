// Runs one action received from the coordinator against the local filesystem (fs/local_fs.h)
// and an archive backend, and turns the outcome into the wire Result. Stateless: the mover
// runtime owns scheduling, cancel flags and reporting.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/status.h"
#include "mover/backends/archive_backend.h"
#include "tierflow.pb.h"

namespace tierflow::mover {

// What happened to one action: its status and the logical bytes moved (0 for remove).
struct ActionOutcome {
  Status status;
  uint64_t bytes = 0;
};

// Runs ARCHIVE, RESTORE or REMOVE for `item` through `backend`. Blocks for the whole copy;
// call it from a worker thread. `ctl.cancel` is checked before starting (a canceled action
// never touches the file) and by the copy itself. Other actions are kInvalidArgument.
ActionOutcome RunAction(const v1::ActionItem& item, ArchiveBackend& backend,
                        const CopyControl& ctl);

// The Result the coordinator expects for `outcome`: error_code 0 on success, ECANCELED for a
// canceled action, Status::AsErrno() otherwise; retryable only for kUnavailable and kTimeout.
v1::Result MakeResult(const v1::ActionItem& item, const ActionOutcome& outcome);

}  // namespace tierflow::mover
