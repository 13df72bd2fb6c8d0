// The dirty tracker: a notification-class fanotify group reporting file ids (fanotify.h) with a
// filesystem mark for FAN_MODIFY, FAN_CLOSE_WRITE and FAN_DELETE_SELF. Runs inside the watching
// mover. For each modified or closed-after-write file it opens the file by handle and, when
// the file is archived and its data may have changed since (MarkDirtyIfChanged in local_fs.h),
// sets dirty in its record, so `state` shows it and it is never released with a stale copy.
// (Release checks the version stamp itself too: the tracker is what makes the change visible
// before anyone tries.) Events are coalesced per file; an overflow of the kernel queue is
// logged and counted (release's stamp check still protects the data).
// For each deleted regular file (its last link gone) it calls `on_deleted` with the file's id,
// when remove_archive_on_last_unlink is on: the mover then queues the removal of the file's
// archive copy, if it has one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "hsm/fid.h"

namespace tierflow::watch {

struct TrackerOptions {
  std::string mount;
  bool remove_archive_on_last_unlink = false;  // as Lustre's MDT tunable; default off
  // Called on the tracker's thread for every regular file whose last link went away, when
  // remove_archive_on_last_unlink is set. Must not block for long.
  std::function<void(const hsm::FileId&)> on_deleted;
};

struct TrackerStats {
  uint64_t events = 0;        // events read
  uint64_t checked = 0;       // files examined (after coalescing)
  uint64_t marked_dirty = 0;
  uint64_t deleted = 0;       // on_deleted calls
  uint64_t overflows = 0;
  uint64_t errors = 0;        // files that could not be examined (logged)
};

class Tracker {
 public:
  // Creates the group and the mark (CheckWatchableFilesystem first) and starts its thread.
  static Result<std::unique_ptr<Tracker>> Start(const TrackerOptions& options);
  virtual ~Tracker() = default;
  virtual TrackerStats Stats() = 0;
  // Blocks until every event raised before the call has been handled (tests and benchmarks use
  // it instead of sleeping) or `timeout_ms` passed (false).
  virtual bool Settle(int64_t timeout_ms) = 0;
  virtual void Stop() = 0;
};

}  // namespace tierflow::watch
