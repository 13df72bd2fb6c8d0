// Copying a file's content into another file at the same offsets so that holes stay holes
// (only SEEK_DATA extents are read and written), hashing the logical content with XXH3-64 on
// the way (holes hash as zeros). Shared by the backends that read or write plain files.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "mover/backends/archive_backend.h"

namespace tierflow::mover {

struct SparseCopyOptions {
  size_t chunk_size = 256 << 10;      // one buffer of this size per copy; see PosixBackendOptions
  int64_t progress_interval_ms = 2000;
  // Start writeback every 8 MiB written (sync_file_range, not waiting), so the disk works while
  // we copy, a final fsync of the destination has little left and dirty pages do not pile up.
  bool start_writeback = false;
  const Clock* clock = nullptr;       // progress timing; nullptr = SystemClock::Default()
};

// One side of a copy: the descriptor and the name that error messages use for it.
struct CopyEnd {
  int fd = -1;
  std::string name;
};

// Copies bytes [0, size) of `src` to the same offsets of `dst`, skipping src's holes. Ranges of
// `dst` where src has holes are not written, so they must already read as zeros (a new, a
// truncated or a punched file); dst's size is not changed. Blocks on I/O; calls ctl.progress
// from this thread at least every progress_interval_ms and once at the end; checks ctl.cancel
// between chunks and keeps the data rate under ctl.max_bytes_per_sec when set. Returns the
// XXH3-64 of src's content.
// Errors: a read error is "reading SRC: ..." and a write error "writing DST: ..." (ENOSPC maps
// to Code::kNoSpace); src ending before `size` is Code::kBusy; a cancel is Code::kCanceled.
Result<uint64_t> CopySparse(const CopyEnd& src, const CopyEnd& dst, uint64_t size,
                            const SparseCopyOptions& options, const CopyControl& ctl);

}  // namespace tierflow::mover
