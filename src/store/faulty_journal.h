// A Journal for tests that wraps a real one and fails or stalls on command, to show what the
// writer and the coordinator do when the disk fails, fills up, slows down, and recovers.
// All switches are thread-safe: a test flips them while the store thread is committing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "store/journal.h"

namespace tierflow::store {

class FaultyJournal final : public Journal {
 public:
  // `base` must outlive this journal. Until a switch is set, every call goes straight to `base`.
  explicit FaultyJournal(Journal* base) : base_(base) {}
  FaultyJournal(const FaultyJournal&) = delete;
  FaultyJournal& operator=(const FaultyJournal&) = delete;

  // The next `n` Commit calls return `status` (which must not be ok) without reaching `base`,
  // so nothing of those batches is applied.
  void FailNextCommits(int n, Status status);
  // Every Commit returns `status` until ClearFailures(): a disk that stays broken.
  void FailAllCommits(Status status);
  // Load returns `status` until ClearFailures().
  void FailLoad(Status status);
  // The disk recovers: commits and loads reach `base` again. Does not resume paused commits.
  void ClearFailures();

  // A stalled disk: Commit calls block (before reaching `base` or failing) until ResumeCommits().
  void PauseCommits();
  void ResumeCommits();
  // Waits until at least one Commit is blocked by PauseCommits(), or `timeout` passes.
  // Returns whether one is blocked.
  bool WaitForPausedCommit(std::chrono::milliseconds timeout);

  uint64_t commit_calls() const;    // every Commit call, including failed ones
  uint64_t failed_commits() const;  // calls failed by this wrapper (not by `base`)

  Status Commit(const std::vector<JournalRecord>& batch) override;
  Result<JournalContents> Load() override;

 private:
  Journal* const base_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int fail_next_ = 0;       // guarded by mu_
  bool fail_all_ = false;   // guarded by mu_
  Status commit_error_;     // guarded by mu_
  Status load_error_;       // guarded by mu_; ok = no failure
  bool paused_ = false;     // guarded by mu_
  int blocked_ = 0;         // commits waiting on the pause; guarded by mu_
  uint64_t commit_calls_ = 0;
  uint64_t failed_commits_ = 0;
};

}  // namespace tierflow::store
