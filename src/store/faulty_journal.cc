// FaultyJournal: failure and stall switches in front of another Journal.
#include "store/faulty_journal.h"

#include <utility>

namespace tierflow::store {

void FaultyJournal::FailNextCommits(int n, Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = n;
  commit_error_ = std::move(status);
}

void FaultyJournal::FailAllCommits(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_all_ = true;
  commit_error_ = std::move(status);
}

void FaultyJournal::FailLoad(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  load_error_ = std::move(status);
}

void FaultyJournal::ClearFailures() {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = 0;
  fail_all_ = false;
  commit_error_ = Status::Ok();
  load_error_ = Status::Ok();
}

void FaultyJournal::PauseCommits() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void FaultyJournal::ResumeCommits() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

bool FaultyJournal::WaitForPausedCommit(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return blocked_ > 0; });
}

uint64_t FaultyJournal::commit_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commit_calls_;
}

uint64_t FaultyJournal::failed_commits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_commits_;
}

Status FaultyJournal::Commit(const std::vector<JournalRecord>& batch) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    ++commit_calls_;
    if (paused_) {
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return !paused_; });
      --blocked_;
    }
    if (fail_all_ || fail_next_ > 0) {
      if (fail_next_ > 0) --fail_next_;
      ++failed_commits_;
      return commit_error_;
    }
  }
  return base_->Commit(batch);
}

Result<JournalContents> FaultyJournal::Load() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!load_error_.ok()) return load_error_;
  }
  return base_->Load();
}

}  // namespace tierflow::store
