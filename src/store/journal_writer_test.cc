// Tests of the store thread: group commit, callback order, batch bounds, failures and shutdown.
#include "store/journal_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "store/faulty_journal.h"
#include "store/sqlite/sqlite_journal.h"
#include "store/store_test_support.h"

namespace tierflow::store {
namespace {

using namespace std::chrono_literals;
using test_support::MakeRow;
using test_support::TempDir;

// Forwards to another journal and remembers each batch's size. Read sizes only after Flush().
class RecordingJournal final : public Journal {
 public:
  explicit RecordingJournal(Journal* base) : base_(base) {}
  Status Commit(const std::vector<JournalRecord>& batch) override {
    sizes.push_back(batch.size());
    return base_->Commit(batch);
  }
  Result<JournalContents> Load() override { return base_->Load(); }
  std::vector<size_t> sizes;

 private:
  Journal* base_;
};

class JournalWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(dir_.File("journal.db"));
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    sqlite_ = std::move(j).value();
  }

  std::vector<uint64_t> LoadIds() {
    Result<JournalContents> c = sqlite_->Load();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    std::vector<uint64_t> ids;
    if (c.ok()) {
      for (const RequestRow& r : c->requests) ids.push_back(r.id);
    }
    return ids;
  }

  static std::vector<JournalRecord> Puts(uint64_t first, size_t n) {
    std::vector<JournalRecord> records;
    for (uint64_t id = first; id < first + n; ++id) records.push_back(JournalRecord::Put(MakeRow(id)));
    return records;
  }

  TempDir dir_;
  std::unique_ptr<SqliteJournal> sqlite_;
};

TEST_F(JournalWriterTest, CallbackRunsOnceTheRecordsAreDurable) {
  JournalWriter writer(sqlite_.get());
  Status seen(Code::kInternal, "callback never ran");
  int calls = 0;
  writer.Append(Puts(1, 3), [&](const Status& st) {
    seen = st;
    ++calls;
  });
  writer.Flush();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(seen.ok()) << seen.ToString();
  EXPECT_EQ(writer.committed_records(), 3u);
  EXPECT_EQ(writer.commits(), 1u);
  EXPECT_EQ(LoadIds(), (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(JournalWriterTest, GroupCommitsAppendsFromManyThreadsInOrder) {
  FaultyJournal faulty(sqlite_.get());
  JournalWriter writer(&faulty);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;

  // Stall the disk on a first append so that all the others pile up behind it.
  faulty.PauseCommits();
  std::atomic<int> seed_calls{0};
  writer.Append(Puts(1'000'000, 1), [&](const Status&) { ++seed_calls; });
  ASSERT_TRUE(faulty.WaitForPausedCommit(10s));

  std::vector<std::vector<int>> order(kThreads);  // touched only by the store thread
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        writer.Append(Puts(t * 10'000 + i, 1), [&, t, i](const Status& st) {
          order[t].push_back(i);
          if (!st.ok()) ++failures;
        });
      }
    });
  }
  for (std::thread& th : threads) th.join();
  faulty.ResumeCommits();
  writer.Flush();

  EXPECT_EQ(seed_calls.load(), 1);
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(order[t].size(), static_cast<size_t>(kPerThread)) << "thread " << t;
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(order[t][i], i) << "thread " << t;
  }
  EXPECT_LE(writer.commits(), 3u);  // the stalled one, then everything else in one or two batches
  EXPECT_EQ(faulty.commit_calls(), writer.commits());
  EXPECT_EQ(writer.committed_records(), static_cast<uint64_t>(kThreads * kPerThread + 1));
  EXPECT_EQ(LoadIds().size(), static_cast<size_t>(kThreads * kPerThread + 1));
}

TEST_F(JournalWriterTest, ConcurrentAppendsWithoutStallsAllSettleInOrder) {
  JournalWriter writer(sqlite_.get());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2500;
  std::vector<std::vector<int>> order(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        writer.Append({JournalRecord::Put(MakeRow(t * 10'000 + i)),
                       JournalRecord::Put(MakeRow(t * 10'000 + i, RequestState::kAssigned))},
                      [&, t, i](const Status& st) {
                        if (st.ok()) order[t].push_back(i);
                      });
      }
    });
  }
  for (std::thread& th : threads) th.join();
  writer.Flush();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(order[t].size(), static_cast<size_t>(kPerThread)) << "thread " << t;
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(order[t][i], i) << "thread " << t;
  }
  EXPECT_EQ(writer.committed_records(), static_cast<uint64_t>(2 * kThreads * kPerThread));
  EXPECT_LT(writer.commits(), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_F(JournalWriterTest, BatchesAreBoundedButNeverSplitAnAppend) {
  RecordingJournal recording(sqlite_.get());
  FaultyJournal faulty(&recording);
  JournalWriter writer(&faulty, /*max_batch_records=*/10);
  faulty.PauseCommits();
  writer.Append(Puts(1000, 1), nullptr);
  ASSERT_TRUE(faulty.WaitForPausedCommit(10s));
  for (uint64_t a = 0; a < 5; ++a) writer.Append(Puts(a * 4, 4), nullptr);
  writer.Append(Puts(100, 25), nullptr);  // larger than a batch: committed whole, alone
  writer.Append(Puts(200, 3), nullptr);
  faulty.ResumeCommits();
  writer.Flush();
  EXPECT_EQ(recording.sizes, (std::vector<size_t>{1, 8, 8, 4, 25, 3}));
  EXPECT_EQ(LoadIds().size(), 1u + 20u + 25u + 3u);
}

TEST_F(JournalWriterTest, FailedCommitFailsEveryAppendOfThatBatchAndAppliesNone) {
  FaultyJournal faulty(sqlite_.get());
  JournalWriter writer(&faulty);
  faulty.PauseCommits();
  std::vector<Status> results(5);
  auto record = [&](int i) { return [&results, i](const Status& st) { results[i] = st; }; };
  writer.Append(Puts(1, 1), record(0));
  ASSERT_TRUE(faulty.WaitForPausedCommit(10s));
  writer.Append(Puts(2, 2), record(1));
  writer.Append({JournalRecord::Meta("next_id", "9")}, record(2));
  faulty.FailNextCommits(2, Status(Code::kIo, "writing journal: Input/output error", EIO));
  faulty.ResumeCommits();
  writer.Flush();
  writer.Append(Puts(10, 1), record(3));
  writer.Flush();

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].code(), Code::kIo) << i;
    EXPECT_EQ(results[i].message(), "writing journal: Input/output error");
  }
  EXPECT_TRUE(results[3].ok()) << results[3].ToString();
  EXPECT_EQ(writer.committed_records(), 1u);
  EXPECT_EQ(writer.commits(), 1u);
  EXPECT_EQ(faulty.failed_commits(), 2u);
  EXPECT_EQ(LoadIds(), (std::vector<uint64_t>{10}));
  EXPECT_TRUE(sqlite_->Load()->meta.empty());
}

TEST_F(JournalWriterTest, DiskFailsUntilItRecovers) {
  FaultyJournal faulty(sqlite_.get());
  JournalWriter writer(&faulty);
  faulty.FailAllCommits(Status(Code::kNoSpace, "journal full", ENOSPC));
  std::atomic<int> failed{0}, ok{0};
  auto count = [&](const Status& st) { st.ok() ? ++ok : ++failed; };
  for (uint64_t i = 0; i < 5; ++i) {
    writer.Append(Puts(i, 1), count);
    writer.Flush();
  }
  EXPECT_EQ(failed.load(), 5);
  faulty.ClearFailures();
  writer.Append(Puts(100, 1), count);
  writer.Flush();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(LoadIds(), (std::vector<uint64_t>{100}));
}

TEST_F(JournalWriterTest, SqliteErrorFailsTheWholeBatch) {
  FaultyJournal faulty(sqlite_.get());
  JournalWriter writer(&faulty);
  faulty.PauseCommits();
  std::vector<Status> results(3);
  writer.Append(Puts(1, 1), [&](const Status& st) { results[0] = st; });
  ASSERT_TRUE(faulty.WaitForPausedCommit(10s));
  RequestRow bad = MakeRow(3);
  bad.state = static_cast<RequestState>(0);
  writer.Append(Puts(2, 1), [&](const Status& st) { results[1] = st; });
  writer.Append({JournalRecord::Put(bad)}, [&](const Status& st) { results[2] = st; });
  faulty.ResumeCommits();
  writer.Flush();
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].code(), Code::kInvalidArgument);  // innocent, but in the same transaction
  EXPECT_EQ(results[2].code(), Code::kInvalidArgument);
  EXPECT_EQ(LoadIds(), (std::vector<uint64_t>{1}));
}

TEST_F(JournalWriterTest, DestructorCommitsWhatIsPending) {
  std::atomic<int> ok{0};
  {
    JournalWriter writer(sqlite_.get());
    for (uint64_t i = 0; i < 1000; ++i) {
      writer.Append(Puts(i, 1), [&](const Status& st) {
        if (st.ok()) ++ok;
      });
    }
  }
  EXPECT_EQ(ok.load(), 1000);
  EXPECT_EQ(LoadIds().size(), 1000u);
}

TEST_F(JournalWriterTest, CallbacksMayAppendAndEmptyAppendsSucceed) {
  JournalWriter writer(sqlite_.get());
  std::atomic<int> second_done{0};
  std::atomic<bool> empty_ok{false};
  writer.Append(Puts(1, 1), [&](const Status& st) {
    ASSERT_TRUE(st.ok());
    writer.Append(Puts(2, 1), [&](const Status& st2) { second_done = st2.ok() ? 1 : -1; });
  });
  writer.Flush();
  writer.Flush();  // the append made by the callback came before this call
  EXPECT_EQ(second_done.load(), 1);
  writer.Append({}, [&](const Status& st) { empty_ok = st.ok(); });
  writer.Flush();
  EXPECT_TRUE(empty_ok.load());
  EXPECT_EQ(writer.commits(), 2u);
  EXPECT_EQ(LoadIds(), (std::vector<uint64_t>{1, 2}));
}

TEST(FaultyJournalTest, FailsLoadUntilCleared) {
  TempDir dir;
  Result<std::unique_ptr<SqliteJournal>> base = SqliteJournal::Open(dir.File("journal.db"));
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  FaultyJournal faulty(base->get());
  faulty.FailLoad(Status(Code::kIo, "read error"));
  EXPECT_EQ(faulty.Load().status().code(), Code::kIo);
  faulty.ClearFailures();
  EXPECT_TRUE(faulty.Load().ok());
  EXPECT_FALSE(faulty.WaitForPausedCommit(1ms));
}

}  // namespace
}  // namespace tierflow::store
