// Sparse-aware copy with hashing: walks src's data extents with SEEK_DATA/SEEK_HOLE, moves each
// through one aligned buffer (pread, hash the buffer, pwrite) and hashes holes from a static
// zero block, so the checksum covers the logical content without materialising the holes.
#include "mover/backends/sparse_copy.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

namespace tierflow::mover {
namespace {

constexpr size_t kZeroBlock = 1 << 20;
constexpr uint64_t kWritebackBytes = 8 << 20;
// Never written: left in .bss so it costs no space in the binary and reads from the zero page.
alignas(4096) char kZeros[kZeroBlock];

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
struct HashStateDeleter {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

// Reports progress no more often than needed and at least every interval.
class ProgressTicker {
 public:
  ProgressTicker(const CopyControl& ctl, const SparseCopyOptions& opt, uint64_t total)
      : ctl_(ctl),
        clock_(opt.clock ? opt.clock : SystemClock::Default()),
        interval_us_(opt.progress_interval_ms * 1000),
        total_(total),
        last_us_(clock_->NowMicros()) {}

  // Between chunks: Code::kCanceled once the cancel flag is up; progress when due.
  Status Tick(uint64_t done) {
    if (ctl_.cancel && ctl_.cancel->load(std::memory_order_relaxed)) {
      return Status(Code::kCanceled, "copy canceled");
    }
    if (!ctl_.progress) return Status::Ok();
    int64_t now = clock_->NowMicros();
    if (now - last_us_ >= interval_us_) {
      last_us_ = now;
      ctl_.progress(done, total_);
    }
    return Status::Ok();
  }
  void Finish() {
    if (ctl_.progress) ctl_.progress(total_, total_);
  }

  // After `bytes` more data bytes were copied: waits, in slices short enough to notice a
  // cancel, until the copy is back under ctl.max_bytes_per_sec (measured from the start).
  Status Throttle(uint64_t bytes) {
    if (ctl_.max_bytes_per_sec == 0) return Status::Ok();
    moved_ += bytes;
    const int64_t due_us = static_cast<int64_t>(moved_ * 1000000 / ctl_.max_bytes_per_sec);
    for (;;) {
      const int64_t ahead_us = start_us_ + due_us - SystemClock::Default()->NowMicros();
      if (ahead_us <= 0) return Status::Ok();
      if (ctl_.cancel && ctl_.cancel->load(std::memory_order_relaxed)) {
        return Status(Code::kCanceled, "copy canceled");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(std::min<int64_t>(ahead_us, 50000)));
    }
  }

 private:
  const CopyControl& ctl_;
  const Clock* clock_;
  int64_t interval_us_;
  uint64_t total_;
  int64_t last_us_;
  uint64_t moved_ = 0;
  int64_t start_us_ = SystemClock::Default()->NowMicros();
};

class SparseCopier {
 public:
  SparseCopier(const CopyEnd& src, const CopyEnd& dst, uint64_t size, const SparseCopyOptions& opt,
               const CopyControl& ctl)
      : src_(src), dst_(dst), size_(size), opt_(opt), ticker_(ctl, opt, size) {}

  Result<uint64_t> Run() {
    size_t chunk = std::max<size_t>(4096, (opt_.chunk_size + 4095) / 4096 * 4096);
    buf_.reset(static_cast<char*>(std::aligned_alloc(4096, chunk)));
    state_.reset(XXH3_createState());
    if (!buf_ || !state_) return Status(Code::kInternal, "out of memory for the copy buffer");
    chunk_ = chunk;
    XXH3_64bits_reset(state_.get());
    posix_fadvise(src_.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t off = 0;
    while (off < size_) {
      auto data = Seek(off, SEEK_DATA);
      if (!data.ok()) return data.status();
      TF_RETURN_IF_ERROR(HashHole(off, *data));
      if (*data >= size_) break;
      auto hole = Seek(*data, SEEK_HOLE);
      if (!hole.ok()) return hole.status();
      TF_RETURN_IF_ERROR(CopyData(*data, *hole));
      off = *hole;
    }
    ticker_.Finish();
    return XXH3_64bits_digest(state_.get());
  }

 private:
  // The next data (or hole) offset at or after `from`, clamped to size_ (ENXIO: none left).
  Result<uint64_t> Seek(uint64_t from, int whence) {
    off_t r = ::lseek(src_.fd, static_cast<off_t>(from), whence);
    if (r < 0) {
      if (errno == ENXIO) return size_;
      return Status::FromErrno(errno, "seeking in " + src_.name);
    }
    return std::min<uint64_t>(static_cast<uint64_t>(r), size_);
  }

  Status HashHole(uint64_t from, uint64_t to) {
    while (from < to) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, kZeroBlock));
      XXH3_64bits_update(state_.get(), kZeros, n);
      from += n;
      TF_RETURN_IF_ERROR(ticker_.Tick(from));
    }
    return Status::Ok();
  }

  Status CopyData(uint64_t from, uint64_t to) {
    while (from < to) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(to - from, chunk_));
      auto got = ReadFull(from, want);
      if (!got.ok()) return got.status();
      XXH3_64bits_update(state_.get(), buf_.get(), want);
      TF_RETURN_IF_ERROR(WriteFull(from, want));
      from += want;
      StartWriteback(from);
      TF_RETURN_IF_ERROR(ticker_.Tick(from));
      TF_RETURN_IF_ERROR(ticker_.Throttle(want));
    }
    return Status::Ok();
  }

  // Starts writeback of what was written since the last call once it reaches
  // kWritebackBytes, so the disk works while we copy without a syscall per chunk.
  void StartWriteback(uint64_t written_to) {
    if (!opt_.start_writeback) return;
    if (written_to - unflushed_from_ < kWritebackBytes) return;
    ::sync_file_range(dst_.fd, static_cast<off_t>(unflushed_from_), static_cast<off_t>(written_to - unflushed_from_),
                      SYNC_FILE_RANGE_WRITE);
    unflushed_from_ = written_to;
  }

  Result<size_t> ReadFull(uint64_t off, size_t want) {
    size_t done = 0;
    while (done < want) {
      ssize_t n = ::pread(src_.fd, buf_.get() + done, want - done, static_cast<off_t>(off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "reading " + src_.name);
      if (n == 0) {
        return Status(Code::kBusy, src_.name + " ended at byte " + std::to_string(off + done) +
                                       " while copying " + std::to_string(size_) + " bytes: it changed during the copy");
      }
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status WriteFull(uint64_t off, size_t len) {
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pwrite(dst_.fd, buf_.get() + done, len - done, static_cast<off_t>(off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "writing " + dst_.name);
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  const CopyEnd& src_;
  const CopyEnd& dst_;
  uint64_t size_;
  const SparseCopyOptions& opt_;
  ProgressTicker ticker_;
  size_t chunk_ = 0;
  uint64_t unflushed_from_ = 0;
  std::unique_ptr<char, FreeDeleter> buf_;
  std::unique_ptr<XXH3_state_t, HashStateDeleter> state_;
};

}  // namespace

Result<uint64_t> CopySparse(const CopyEnd& src, const CopyEnd& dst, uint64_t size,
                            const SparseCopyOptions& options, const CopyControl& ctl) {
  return SparseCopier(src, dst, size, options, ctl).Run();
}

}  // namespace tierflow::mover
