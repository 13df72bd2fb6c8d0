// An archive backend stores and returns copies of file data. Backends run inside movers; they
// know nothing of HSM state (the filesystem adapter keeps that) and only move bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "hsm/fid.h"

namespace tierflow::mover {

// Called during long copies, at least every `progress_interval`, from the copying thread.
using ProgressFn = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

struct CopyControl {
  ProgressFn progress;                         // may be empty
  const std::atomic<bool>* cancel = nullptr;   // when it becomes true, stop with Code::kCanceled
  uint64_t max_bytes_per_sec = 0;              // bandwidth limit of the copy; 0 = none
};

// Metadata kept with the archive copy, applied to the archive file itself where possible.
struct PutResult {
  std::string object_ref;  // how to find the copy again (a path relative to the backend root)
  uint64_t checksum = 0;   // XXH3-64 of the logical content, holes read as zeros
  uint64_t bytes = 0;      // logical size copied
};

class ArchiveBackend {
 public:
  virtual ~ArchiveBackend() = default;
  // Copies the whole content of `src_fd` (a regular file open for reading) into a new archive
  // copy for `file`, atomically replacing any previous copy for that file. Holes stay holes.
  // The source's mode, owner, times and xattrs (except trusted.tierflow.*) are kept on the copy.
  virtual Result<PutResult> Put(int src_fd, const hsm::FileId& file, const CopyControl& ctl) = 0;
  // Writes the copy's content into `dst_fd` (a regular file of the right size, open for writing),
  // writing only the data ranges so holes stay holes, and verifies the content against
  // `expected_checksum`; a mismatch is Code::kCorrupt and names the copy.
  virtual Status Get(const std::string& object_ref, int dst_fd, uint64_t expected_checksum,
                     const CopyControl& ctl) = 0;
  // Removes the copy. A copy that is already gone is not an error.
  virtual Status Delete(const std::string& object_ref) = 0;

  // The object reference Put gives (or would give) the copy of `file`, so that a copy can be
  // found without the file's record (the file was deleted). Backends whose references are not
  // a function of the file id return Code::kFailedPrecondition.
  virtual Result<std::string> ObjectRefFor(const hsm::FileId& file) {
    return Status(Code::kFailedPrecondition,
                  "this archive backend cannot name the copy of " + file.ToString() + " by its file id");
  }
  // Calls `fn` with the reference of every whole copy in the archive (partial copies of Puts
  // under way are left out), in no particular order. Blocks for the whole walk; for listing
  // orphaned copies. Backends that cannot list return Code::kFailedPrecondition.
  virtual Status ListObjects(const std::function<void(const std::string& object_ref)>& fn) {
    return Status(Code::kFailedPrecondition, "this archive backend cannot list its copies");
  }
};

}  // namespace tierflow::mover
