// Test doubles for the coordinator: an in-memory Journal, a JournalSink that commits at once,
// holds appends until released, or fails them, and channels that record what the coordinator
// sends. Header-only; used by the coordinator's tests and benchmarks.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "coordinator/coordinator.h"
#include "store/journal.h"

namespace tierflow::coordinator::testing {

// A Journal in memory: commits apply at once; Load returns what was committed.
class MemJournal final : public store::Journal {
 public:
  Status Commit(const std::vector<store::JournalRecord>& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& rec : batch) Apply(rec);
    ++commits_;
    return Status::Ok();
  }
  Result<store::JournalContents> Load() override {
    std::lock_guard<std::mutex> lock(mu_);
    store::JournalContents c;
    for (const auto& [id, row] : rows_) c.requests.push_back(row);
    c.meta = meta_;
    c.idempotency = idempotency_;
    return c;
  }
  size_t rows() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rows_.size();
  }
  std::optional<store::RequestRow> Row(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rows_.find(id);
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }
  std::string Meta(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = meta_.find(key);
    return it == meta_.end() ? "" : it->second;
  }

 private:
  void Apply(const store::JournalRecord& rec) {
    using K = store::JournalRecord::Kind;
    switch (rec.kind) {
      case K::kPutRequest:
        rows_[rec.request.id] = rec.request;
        break;
      case K::kDeleteRequest:
        rows_.erase(rec.id);
        break;
      case K::kSetMeta:
        meta_[rec.key] = rec.value;
        break;
      case K::kPutIdempotency:
        idempotency_[rec.key] = {rec.ids, rec.created_us};
        break;
      case K::kDeleteIdempotency:
        idempotency_.erase(rec.key);
        break;
    }
  }

  mutable std::mutex mu_;
  std::map<uint64_t, store::RequestRow> rows_;
  std::map<std::string, std::string> meta_;
  std::map<std::string, store::IdempotencyEntry> idempotency_;
  uint64_t commits_ = 0;
};

// A JournalSink over a Journal. In auto mode each append is committed at once (on the
// calling thread); in hold mode appends wait until Release(). FailNext(n) makes the next n
// commits fail without touching the journal.
class TestSink final : public JournalSink {
 public:
  explicit TestSink(store::Journal* journal) : journal_(journal) {}

  void Append(std::vector<store::JournalRecord> records, Done done) override {
    std::unique_lock<std::mutex> lock(mu_);
    appends_++;
    if (hold_ || !held_.empty()) {
      held_.push_back({std::move(records), std::move(done)});
      return;
    }
    lock.unlock();
    Complete(records, done);
  }
  uint64_t committed_records() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return committed_;
  }

  void Hold(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
  }
  // Completes up to `n` held appends (all when n < 0), oldest first.
  void Release(int n = -1) {
    for (int i = 0; n < 0 || i < n; ++i) {
      std::unique_lock<std::mutex> lock(mu_);
      if (held_.empty()) return;
      auto a = std::move(held_.front());
      held_.pop_front();
      lock.unlock();
      Complete(a.records, a.done);
    }
  }
  void FailNext(int n, Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = n;
    fail_status_ = std::move(status);
  }
  size_t held() const {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  uint64_t appends() const {
    std::lock_guard<std::mutex> lock(mu_);
    return appends_;
  }

 private:
  struct Held {
    std::vector<store::JournalRecord> records;
    Done done;
  };
  void Complete(const std::vector<store::JournalRecord>& records, const Done& done) {
    Status st;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fail_next_ > 0) {
        --fail_next_;
        st = fail_status_;
      }
    }
    if (st.ok()) st = journal_->Commit(records);
    if (st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      committed_ += records.size();
    }
    done(st);
  }

  store::Journal* const journal_;
  mutable std::mutex mu_;
  bool hold_ = false;
  std::deque<Held> held_;
  int fail_next_ = 0;
  Status fail_status_;
  uint64_t committed_ = 0;
  uint64_t appends_ = 0;
};

// Records what the coordinator sends to one mover.
class RecordingMoverChannel final : public MoverChannel {
 public:
  void Send(OutMessage msg) override {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(*msg);
  }
  void Close(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    close_status_ = status;
  }
  std::vector<v1::CoordinatorMessage> messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  // Every ActionItem sent so far, in order.
  std::vector<v1::ActionItem> items() const {
    return Collect<v1::ActionItem>(&v1::CoordinatorMessage::has_batch,
                                   [](const auto& m) { return m.batch().items(); });
  }
  // The cancel items sent (CancelActions), in order.
  std::vector<v1::InHand> cancels() const {
    return Collect<v1::InHand>(&v1::CoordinatorMessage::has_cancel,
                               [](const auto& m) { return m.cancel().items(); });
  }
  // The results acknowledged (ResultAcks), in order.
  std::vector<v1::InHand> acks() const {
    return Collect<v1::InHand>(&v1::CoordinatorMessage::has_acks,
                               [](const auto& m) { return m.acks().items(); });
  }
  // The sequence numbers of the Pings sent.
  std::vector<uint64_t> pings() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> out;
    for (const auto& m : messages_) {
      if (m.has_ping()) out.push_back(m.ping().seq());
    }
    return out;
  }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  template <typename T, typename Has, typename Items>
  std::vector<T> Collect(Has has, Items items) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<T> out;
    for (const auto& m : messages_) {
      if (!(m.*has)()) continue;
      for (const auto& it : items(m)) out.push_back(it);
    }
    return out;
  }

  mutable std::mutex mu_;
  std::vector<v1::CoordinatorMessage> messages_;
  bool closed_ = false;
  Status close_status_;
};

// Records what the coordinator sends to one waiter.
class RecordingWaitChannel final : public WaitChannel {
 public:
  void Send(OutUpdate update) override {
    std::lock_guard<std::mutex> lock(mu_);
    updates_.push_back(*update);
  }
  void Finish(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    status_ = status;
  }
  std::vector<v1::WaitUpdate> updates() const {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }
  bool finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<v1::WaitUpdate> updates_;
  bool finished_ = false;
  Status status_;
};

}  // namespace tierflow::coordinator::testing
