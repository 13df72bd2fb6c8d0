// The store thread: group-commits journal records. Callers on any thread append a batch with a
// callback; the thread drains everything pending into one Journal::Commit (one transaction,
// one fsync) and then runs each callback with the commit's status, in append order.
// Callbacks run on the store thread and must not block: the coordinator's callbacks only post
// into its loop. A callback may Append (the records go into a later batch) but must not call
// Flush or destroy the writer.
// A batch is the appends pending when the thread becomes free, oldest first, up to
// max_batch_records (an append is never split; one larger than the bound is committed alone).
// If Journal::Commit fails, every append of that batch gets the error and none of its records
// are applied; later appends are tried again normally.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store/journal.h"

namespace tierflow::store {

class JournalWriter {
 public:
  using Done = std::function<void(const Status&)>;

  // `journal` must outlive the writer. max_batch_records bounds one transaction.
  explicit JournalWriter(Journal* journal, size_t max_batch_records = 65536);
  ~JournalWriter();  // flushes what is pending (running its callbacks), then stops the thread
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Thread-safe, never blocks on disk. `done` runs once the records are durable (ok) or
  // could not be written (error: none of this append's records were applied). `done` may be
  // empty. Callbacks run in append order. Must not be called once destruction has begun.
  void Append(std::vector<JournalRecord> records, Done done);

  // Blocks until everything appended before the call is committed or failed. For tests/shutdown.
  void Flush();

  // Number of records committed so far (for status and benchmarks). Thread-safe.
  uint64_t committed_records() const;
  // Number of successful Journal::Commit calls (transactions) so far. Thread-safe.
  uint64_t commits() const;

 private:
  // Implementation chosen by the store module; see journal_writer.cc.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierflow::store
