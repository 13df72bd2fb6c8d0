// coordinatool's report files: each value of the reporting hint tag names a file DIR/<value>
// that gets one line per step of the requests carrying it ("new FID", "assign FID host", ...,
// see ReportLine). The loop only queues lines; a thread of the writer's own appends them, one
// write per file per loop turn, and removes a file once no line was added to it for quiet_us
// (files left by an earlier run too).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "common/status.h"
#include "tierflow.pb.h"

namespace tierflow::coordinator {

// The report line of one event, without its newline: "new FID", "assign FID host", "sent FID
// host", "progress FID host done/total", "done FID status", "cancel FID", FID in Lustre's
// "[0xSEQ:0xOID:0xVER]" form; host is the mover's host, or its id when it gave none.
std::string ReportLine(const v1::Event& event);

class ReportWriter {
 public:
  struct Stats {
    uint64_t lines_written = 0;
    uint64_t lines_dropped = 0;  // not written: a write failed, or the backlog was full
    uint64_t write_errors = 0;   // failed opens and writes (disk full, permissions)
    uint64_t unsafe_lines = 0;   // lines whose hint value is not a safe file name
    uint64_t files_removed = 0;
  };

  // Lines handed to the writer thread and not yet written, past which new lines are dropped
  // (counted): a stuck disk must not grow the coordinator.
  static constexpr size_t kMaxBacklogBytes = 64 << 20;

  // Creates `dir` if missing and starts the writer thread. Fails, naming the directory, when it
  // cannot be created, opened or written. `clock` must outlive the writer.
  static Result<std::unique_ptr<ReportWriter>> Open(const std::string& dir, int64_t quiet_us,
                                                    Clock* clock);
  // Writes what was handed over and stops the thread. Files still present stay; the next
  // writer opened on the directory removes them once quiet.
  ~ReportWriter();
  ReportWriter(const ReportWriter&) = delete;
  ReportWriter& operator=(const ReportWriter&) = delete;

  // A hint value that may name a file in the directory: 1 to 255 bytes, not "." or "..", no
  // '/', no control byte (NUL and newline included).
  static bool SafeName(std::string_view name);

  // Loop thread. Queues `line` (no newline) for file `name`. A name that is not SafeName gets
  // no file and one warning in the log.
  void Add(std::string_view name, std::string_view line);
  // Loop thread. Hands the lines added since the last Flush to the writer thread.
  void Flush();
  // Any thread. Returns once the writer thread has written everything handed over so far and
  // removed the files quiet at clock->NowMicros(): how tests (with a ManualClock) see the
  // result of a turn without sleeping.
  void Sync();

  Stats stats() const;
  const std::string& dir() const { return dir_; }

 private:
  ReportWriter(std::string dir, int dir_fd, int64_t quiet_us, Clock* clock);
  void AdoptLeftovers();
  void Run();
  // Writer thread: appends `text` to file `name`; false (logged, counted) when it failed.
  bool Append(const std::string& name, const std::string& text);
  void Sweep(int64_t now_us);
  // Writer thread: how long it may sleep before a file goes quiet.
  std::chrono::microseconds NextSweepDelay() const;
  void Failed(const std::string& name, std::string_view what, int err, size_t lines);

  const std::string dir_;
  const int dir_fd_;
  const int64_t quiet_us_;
  Clock* const clock_;

  // Loop thread.
  std::unordered_map<std::string, std::string> turn_;  // file -> lines of this turn
  size_t turn_bytes_ = 0;
  std::unordered_set<std::string> warned_;  // unsafe names already warned about (bounded)

  // Shared with the writer thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the writer thread
  std::condition_variable sync_cv_;  // wakes Sync callers
  std::unordered_map<std::string, std::string> pending_;  // guarded by mu_
  uint64_t sync_wanted_ = 0;                              // guarded by mu_
  uint64_t sync_done_ = 0;                                // guarded by mu_
  bool stop_ = false;                                     // guarded by mu_
  bool exited_ = false;                                   // guarded by mu_
  std::atomic<size_t> backlog_bytes_{0};

  // Writer thread.
  std::unordered_map<std::string, int64_t> last_line_us_;  // files present -> last line time
  bool failing_ = false;

  std::atomic<uint64_t> lines_written_{0}, lines_dropped_{0}, write_errors_{0}, unsafe_lines_{0},
      files_removed_{0};
  std::thread thread_;
};

}  // namespace tierflow::coordinator
