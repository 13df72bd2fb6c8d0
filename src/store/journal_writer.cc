// JournalWriter: a mutex-protected queue of appends drained by one store thread. While one
// transaction is being committed the next appends pile up, so the batch size grows with the load
// and each fsync is shared by every append that arrived during the previous one (group commit).
#include "store/journal_writer.h"

#include <atomic>
#include <utility>

namespace tierflow::store {

struct JournalWriter::Impl {
  struct Pending {
    std::vector<JournalRecord> records;
    Done done;
  };

  Journal* journal;
  size_t max_batch_records;

  std::mutex mu;
  std::condition_variable work_cv;     // signalled on Append and on stop
  std::condition_variable settled_cv;  // signalled when a batch's callbacks have run
  std::deque<Pending> queue;           // guarded by mu
  uint64_t appended = 0;               // appends accepted so far; guarded by mu
  uint64_t settled = 0;                // appends whose callbacks have run; guarded by mu
  bool stopping = false;               // guarded by mu

  std::atomic<uint64_t> committed_records{0};
  std::atomic<uint64_t> commits{0};
  std::thread thread;

  Impl(Journal* j, size_t max) : journal(j), max_batch_records(max == 0 ? 1 : max) {}

  void Run();
  std::vector<Pending> TakeBatch(size_t* records);
  Status CommitBatch(std::vector<Pending>& taken, size_t records);
};

// Called with mu held and the queue non-empty. Takes whole appends, oldest first, until the next
// one would overflow max_batch_records; the first is always taken, however large it is.
std::vector<JournalWriter::Impl::Pending> JournalWriter::Impl::TakeBatch(size_t* records) {
  std::vector<Pending> taken;
  *records = 0;
  while (!queue.empty()) {
    size_t n = queue.front().records.size();
    if (!taken.empty() && *records + n > max_batch_records) break;
    *records += n;
    taken.push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return taken;
}

Status JournalWriter::Impl::CommitBatch(std::vector<Pending>& taken, size_t records) {
  if (records == 0) return Status::Ok();
  if (taken.size() == 1) return journal->Commit(taken.front().records);
  std::vector<JournalRecord> batch;
  batch.reserve(records);
  for (Pending& p : taken) {
    for (JournalRecord& r : p.records) batch.push_back(std::move(r));
  }
  return journal->Commit(batch);
}

void JournalWriter::Impl::Run() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    work_cv.wait(lock, [this] { return stopping || !queue.empty(); });
    if (queue.empty()) return;  // stopping, and everything appended has settled
    size_t records = 0;
    std::vector<Pending> taken = TakeBatch(&records);
    lock.unlock();

    Status status = CommitBatch(taken, records);
    if (status.ok()) {
      committed_records.fetch_add(records, std::memory_order_relaxed);
      if (records > 0) commits.fetch_add(1, std::memory_order_relaxed);
    }
    for (Pending& p : taken) {
      if (p.done) p.done(status);
    }
    size_t appends = taken.size();
    taken.clear();  // frees the records on this thread, outside the lock

    lock.lock();
    settled += appends;
    settled_cv.notify_all();
  }
}

JournalWriter::JournalWriter(Journal* journal, size_t max_batch_records)
    : impl_(std::make_unique<Impl>(journal, max_batch_records)) {
  Impl* impl = impl_.get();
  impl_->thread = std::thread([impl] { impl->Run(); });
}

JournalWriter::~JournalWriter() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_one();
  impl_->thread.join();
}

void JournalWriter::Append(std::vector<JournalRecord> records, Done done) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back(Impl::Pending{std::move(records), std::move(done)});
    ++impl_->appended;
  }
  impl_->work_cv.notify_one();
}

void JournalWriter::Flush() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  uint64_t target = impl_->appended;
  impl_->settled_cv.wait(lock, [&] { return impl_->settled >= target; });
}

uint64_t JournalWriter::committed_records() const {
  return impl_->committed_records.load(std::memory_order_relaxed);
}

uint64_t JournalWriter::commits() const { return impl_->commits.load(std::memory_order_relaxed); }

}  // namespace tierflow::store
