// Tests of the SQLite journal: round trips, atomic batches, refusal of foreign files, disk full.
#include "store/sqlite/sqlite_journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "store/store_test_support.h"

namespace tierflow::store {
namespace {

using test_support::MakeRow;
using test_support::TempDir;

std::unique_ptr<SqliteJournal> OpenOrDie(const std::string& path) {
  Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(path);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? std::move(j).value() : nullptr;
}

JournalContents LoadOrDie(Journal* j) {
  Result<JournalContents> c = j->Load();
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : JournalContents{};
}

std::vector<uint64_t> Ids(const JournalContents& c) {
  std::vector<uint64_t> ids;
  for (const RequestRow& r : c.requests) ids.push_back(r.id);
  return ids;
}

RequestRow ExtremeRow() {
  RequestRow r;
  r.id = (1ULL << 63) - 1;
  r.file.fsid = "fs-\xc3\xa9";
  r.file.fid = {UINT64_MAX, UINT32_MAX, UINT32_MAX};
  r.path = std::string("/mnt/\xff\xfe not utf-8/\0nul", 24);
  r.action = hsm::Action::kCancel;
  r.archive_id = UINT32_MAX;
  r.flags = UINT64_MAX;
  for (int i = 0; i < (1 << 20); ++i) r.data.push_back(static_cast<char>(i * 31));
  r.offset = UINT64_MAX - 1;
  r.length = UINT64_MAX;
  r.user = std::string("u\0\x80", 3);
  r.state = RequestState::kCanceled;
  r.mover = std::string(4096, 'm');
  r.epoch = UINT64_MAX;
  r.attempts = UINT32_MAX;
  r.error_code = INT32_MIN;
  r.error = "bad byte \xc0 in message";
  r.created_us = INT64_MIN;
  r.changed_us = INT64_MAX;
  return r;
}

TEST(SqliteJournalTest, RoundTripsEveryFieldIncludingEmptyLongAndBinary) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  RequestRow empty;  // all defaults: empty strings, zero ids
  RequestRow extreme = ExtremeRow();
  RequestRow ordinary = MakeRow(42, RequestState::kFailed);
  ASSERT_TRUE(j->Commit({JournalRecord::Put(extreme), JournalRecord::Put(empty), JournalRecord::Put(ordinary)}).ok());

  JournalContents c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), 3u);
  EXPECT_EQ(c.requests[0], empty);
  EXPECT_EQ(c.requests[1], ordinary);
  EXPECT_EQ(c.requests[2], extreme);
}

TEST(SqliteJournalTest, LoadOrdersByUnsignedId) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  std::vector<JournalRecord> batch;
  for (uint64_t id : {UINT64_MAX, uint64_t{7}, uint64_t{1} << 63, uint64_t{1}, (uint64_t{1} << 63) - 1}) {
    batch.push_back(JournalRecord::Put(MakeRow(id)));
  }
  ASSERT_TRUE(j->Commit(batch).ok());
  EXPECT_EQ(Ids(LoadOrDie(j.get())),
            (std::vector<uint64_t>{1, 7, (uint64_t{1} << 63) - 1, uint64_t{1} << 63, UINT64_MAX}));
}

TEST(SqliteJournalTest, PutReplacesTheWholeRow) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit({JournalRecord::Put(MakeRow(1)), JournalRecord::Put(MakeRow(2))}).ok());
  RequestRow assigned = MakeRow(1, RequestState::kAssigned);
  assigned.data.clear();
  ASSERT_TRUE(j->Commit({JournalRecord::Put(assigned)}).ok());

  JournalContents c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), 2u);
  EXPECT_EQ(c.requests[0], assigned);
  EXPECT_EQ(c.requests[1], MakeRow(2));
}

TEST(SqliteJournalTest, RecordsOfOneBatchApplyInOrder) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit({JournalRecord::Put(MakeRow(1)), JournalRecord::Put(MakeRow(1, RequestState::kAssigned)),
                         JournalRecord::Put(MakeRow(2)), JournalRecord::Delete(2), JournalRecord::Meta("k", "1"),
                         JournalRecord::Meta("k", "2")})
                  .ok());
  JournalContents c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), 1u);
  EXPECT_EQ(c.requests[0], MakeRow(1, RequestState::kAssigned));
  EXPECT_EQ(c.meta, (std::map<std::string, std::string>{{"k", "2"}}));
}

TEST(SqliteJournalTest, DeleteRemovesOnlyThatRequest) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit({JournalRecord::Put(MakeRow(1)), JournalRecord::Put(MakeRow(2)), JournalRecord::Put(MakeRow(3))}).ok());
  ASSERT_TRUE(j->Commit({JournalRecord::Delete(2), JournalRecord::Delete(99)}).ok());
  EXPECT_EQ(Ids(LoadOrDie(j.get())), (std::vector<uint64_t>{1, 3}));
}

TEST(SqliteJournalTest, MetaAndIdempotencyKeys) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  std::string binary("\0\x01\xff", 3);
  ASSERT_TRUE(j->Commit({JournalRecord::Meta("next_id", "10"), JournalRecord::Meta("blob", binary),
                         JournalRecord::Meta("empty", ""),
                         JournalRecord::Idempotency("req-a", {1, 2, UINT64_MAX, 0}, 1234),
                         JournalRecord::Idempotency("req-b", {}, -5), JournalRecord::Idempotency("req-c", {9}, 7)})
                  .ok());
  ASSERT_TRUE(j->Commit({JournalRecord::Meta("next_id", "11"), JournalRecord::DeleteIdempotency("req-c"),
                         JournalRecord::DeleteIdempotency("never-there")})
                  .ok());

  JournalContents c = LoadOrDie(j.get());
  EXPECT_EQ(c.meta, (std::map<std::string, std::string>{{"next_id", "11"}, {"blob", binary}, {"empty", ""}}));
  ASSERT_EQ(c.idempotency.size(), 2u);
  EXPECT_EQ(c.idempotency["req-a"].ids, (std::vector<uint64_t>{1, 2, UINT64_MAX, 0}));
  EXPECT_EQ(c.idempotency["req-a"].created_us, 1234);
  EXPECT_TRUE(c.idempotency["req-b"].ids.empty());
  EXPECT_EQ(c.idempotency["req-b"].created_us, -5);
}

TEST(SqliteJournalTest, ReopenReadsWhatWasCommitted) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  JournalContents before;
  {
    auto j = OpenOrDie(path);
    ASSERT_NE(j, nullptr);
    for (uint64_t base = 0; base < 3000; base += 1000) {
      std::vector<JournalRecord> batch;
      for (uint64_t id = base; id < base + 1000; ++id) batch.push_back(JournalRecord::Put(MakeRow(id)));
      batch.push_back(JournalRecord::Meta("next_id", std::to_string(base + 1000)));
      batch.push_back(JournalRecord::Idempotency("key" + std::to_string(base), {base, base + 1}, 99));
      ASSERT_TRUE(j->Commit(batch).ok());
    }
    before = LoadOrDie(j.get());
  }
  auto j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  JournalContents after = LoadOrDie(j.get());
  EXPECT_EQ(after.requests.size(), 3000u);
  EXPECT_EQ(after.requests, before.requests);
  EXPECT_EQ(after.meta, before.meta);
  EXPECT_EQ(after.idempotency.size(), 3u);
  EXPECT_EQ(after.idempotency["key2000"].ids, (std::vector<uint64_t>{2000, 2001}));
}

TEST(SqliteJournalTest, FileIsInWalModeAndMarkedAsTierflow) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto pragma = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    std::string v;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return v;
  };
  EXPECT_EQ(pragma("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(pragma("PRAGMA application_id"), std::to_string(0x54464C57));
  EXPECT_EQ(pragma("PRAGMA user_version"), "1");
  sqlite3_close(db);
}

TEST(SqliteJournalTest, FailedBatchAppliesNothingAndJournalStaysUsable) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  auto j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit({JournalRecord::Put(MakeRow(1)), JournalRecord::Meta("next_id", "2")}).ok());

  RequestRow bad = MakeRow(4);
  bad.state = static_cast<RequestState>(9);  // violates the schema's CHECK on state
  Status st = j->Commit({JournalRecord::Put(MakeRow(2)), JournalRecord::Delete(1), JournalRecord::Meta("next_id", "5"),
                         JournalRecord::Idempotency("k", {2}, 1), JournalRecord::Put(bad), JournalRecord::Put(MakeRow(3))});
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("record 5 of 6"), std::string::npos) << st.message();

  JournalContents c = LoadOrDie(j.get());
  EXPECT_EQ(Ids(c), (std::vector<uint64_t>{1}));
  EXPECT_EQ(c.meta["next_id"], "2");
  EXPECT_TRUE(c.idempotency.empty());

  ASSERT_TRUE(j->Commit({JournalRecord::Put(MakeRow(2))}).ok());
  EXPECT_EQ(Ids(LoadOrDie(j.get())), (std::vector<uint64_t>{1, 2}));
}

TEST(SqliteJournalTest, BadRowInsideALargeBatchAppliesNothing) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  std::vector<JournalRecord> batch;
  for (uint64_t id = 1; id <= 300; ++id) batch.push_back(JournalRecord::Put(MakeRow(id)));
  ASSERT_TRUE(j->Commit(batch).ok());
  batch.clear();
  for (uint64_t id = 1; id <= 500; ++id) batch.push_back(JournalRecord::Put(MakeRow(id, RequestState::kSucceeded)));
  batch.insert(batch.begin() + 250, JournalRecord::Delete(3));
  batch[100].request.state = static_cast<RequestState>(0);
  Status st = j->Commit(batch);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("CHECK constraint failed"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("records 65-128 of 501"), std::string::npos) << st.message();

  JournalContents c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), 300u);
  for (const RequestRow& r : c.requests) ASSERT_EQ(r, MakeRow(r.id));

  batch[100].request.state = RequestState::kSucceeded;
  ASSERT_TRUE(j->Commit(batch).ok());
  c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), 499u);
  EXPECT_EQ(c.requests[2], MakeRow(4, RequestState::kSucceeded));
  EXPECT_EQ(c.requests.back(), MakeRow(500, RequestState::kSucceeded));
}

TEST(SqliteJournalTest, LoadReportsADamagedRow) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  {
    auto j = OpenOrDie(path);
    ASSERT_NE(j, nullptr);
    ASSERT_TRUE(j->Commit({JournalRecord::Put(MakeRow(1)), JournalRecord::Put(MakeRow(2))}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE requests SET body=x'01ff' WHERE id=2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  Result<JournalContents> c = j->Load();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kCorrupt);
  EXPECT_NE(c.status().message().find("request 2"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find(path), std::string::npos) << c.status().message();
}

TEST(SqliteJournalTest, InvalidActionIsRefused) {
  TempDir dir;
  auto j = OpenOrDie(dir.File("journal.db"));
  ASSERT_NE(j, nullptr);
  RequestRow bad = MakeRow(1);
  bad.action = static_cast<hsm::Action>(0);
  EXPECT_EQ(j->Commit({JournalRecord::Put(bad)}).code(), Code::kInvalidArgument);
  EXPECT_TRUE(LoadOrDie(j.get()).requests.empty());
}

TEST(SqliteJournalTest, SecondOpenOfAnOpenJournalIsRefused) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  auto first = OpenOrDie(path);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->Commit({JournalRecord::Put(MakeRow(1))}).ok());
  Result<std::unique_ptr<SqliteJournal>> second = SqliteJournal::Open(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kBusy);
  EXPECT_NE(second.status().message().find(path), std::string::npos) << second.status().message();
  EXPECT_NE(second.status().message().find("another tierflow coordinator"), std::string::npos);
  // The refused open did not disturb the first.
  ASSERT_TRUE(first->Commit({JournalRecord::Put(MakeRow(2))}).ok());
  EXPECT_EQ(Ids(LoadOrDie(first.get())), (std::vector<uint64_t>{1, 2}));
}

TEST(SqliteJournalTest, RefusesAFileThatIsNotSqlite) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  std::string text(8192, 'x');
  { std::ofstream(path) << text; }
  Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Code::kCorrupt);
  EXPECT_NE(j.status().message().find(path + " is not a tierflow journal"), std::string::npos) << j.status().message();
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), text);  // left untouched
}

TEST(SqliteJournalTest, RefusesAnotherApplicationsDatabase) {
  TempDir dir;
  std::string path = dir.File("other.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(j.status().message().find("not a tierflow journal"), std::string::npos) << j.status().message();
  EXPECT_NE(j.status().message().find(path), std::string::npos);
}

TEST(SqliteJournalTest, RefusesANewerSchemaVersion) {
  TempDir dir;
  std::string path = dir.File("journal.db");
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(j.status().message().find("schema version 2"), std::string::npos) << j.status().message();
}

TEST(SqliteJournalTest, MissingDirectoryIsNotFound) {
  TempDir dir;
  std::string path = dir.File("no/such/dir/journal.db");
  Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(path);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Code::kNotFound);
  EXPECT_NE(j.status().message().find(path), std::string::npos) << j.status().message();
}

// A SQLite VFS that forwards to the default one but, on command, fails writes or syncs of WAL
// files: I/O errors injected on purpose, the way SQLite's own tests do. Journals use it through a
// URI path "file:...?vfs=tf_faulty".
class FaultyVfs {
 public:
  static std::atomic<int> wal_writes_before_failure;  // >= 0: let that many through, fail the next
  static std::atomic<bool> fail_wal_syncs;

  static void Register() {
    static bool done = [] {
      real_ = sqlite3_vfs_find(nullptr);
      vfs_ = *real_;
      vfs_.zName = "tf_faulty";
      vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
      vfs_.pNext = nullptr;
      vfs_.xOpen = Open;
      vfs_.xDelete = [](sqlite3_vfs*, const char* n, int d) { return real_->xDelete(real_, n, d); };
      vfs_.xAccess = [](sqlite3_vfs*, const char* n, int f, int* o) { return real_->xAccess(real_, n, f, o); };
      vfs_.xFullPathname = [](sqlite3_vfs*, const char* n, int k, char* o) {
        return real_->xFullPathname(real_, n, k, o);
      };
      return sqlite3_vfs_register(&vfs_, 0) == SQLITE_OK;
    }();
    ASSERT_TRUE(done);
  }

 private:
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
    bool wal;
  };
  static sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }
  static bool Wal(sqlite3_file* f) { return reinterpret_cast<File*>(f)->wal; }

  static int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
    File* file = reinterpret_cast<File*>(f);
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    file->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real_->xOpen(real_, name, file->real, flags, out);
    f->pMethods = file->real->pMethods != nullptr ? &methods_ : nullptr;
    return rc;
  }

  static const sqlite3_io_methods methods_;
  static sqlite3_vfs* real_;
  static sqlite3_vfs vfs_;
};

std::atomic<int> FaultyVfs::wal_writes_before_failure{-1};
std::atomic<bool> FaultyVfs::fail_wal_syncs{false};
sqlite3_vfs* FaultyVfs::real_ = nullptr;
sqlite3_vfs FaultyVfs::vfs_;
const sqlite3_io_methods FaultyVfs::methods_ = {
    3,
    [](sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); },
    [](sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return Real(f)->pMethods->xRead(Real(f), b, n, o); },
    [](sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
      if (Wal(f) && wal_writes_before_failure.fetch_sub(1) == 0) return SQLITE_IOERR_WRITE;
      return Real(f)->pMethods->xWrite(Real(f), b, n, o);
    },
    [](sqlite3_file* f, sqlite3_int64 n) { return Real(f)->pMethods->xTruncate(Real(f), n); },
    [](sqlite3_file* f, int flags) {
      if (Wal(f) && fail_wal_syncs.load()) return SQLITE_IOERR_FSYNC;
      return Real(f)->pMethods->xSync(Real(f), flags);
    },
    [](sqlite3_file* f, sqlite3_int64* n) { return Real(f)->pMethods->xFileSize(Real(f), n); },
    [](sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); },
    [](sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); },
    [](sqlite3_file* f, int* o) { return Real(f)->pMethods->xCheckReservedLock(Real(f), o); },
    [](sqlite3_file* f, int op, void* a) { return Real(f)->pMethods->xFileControl(Real(f), op, a); },
    [](sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); },
    [](sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); },
    [](sqlite3_file* f, int pg, int sz, int ext, void volatile** p) {
      return Real(f)->pMethods->xShmMap(Real(f), pg, sz, ext, p);
    },
    [](sqlite3_file* f, int o, int n, int fl) { return Real(f)->pMethods->xShmLock(Real(f), o, n, fl); },
    [](sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); },
    [](sqlite3_file* f, int d) { return Real(f)->pMethods->xShmUnmap(Real(f), d); },
    [](sqlite3_file* f, sqlite3_int64 o, int n, void** p) { return Real(f)->pMethods->xFetch(Real(f), o, n, p); },
    [](sqlite3_file* f, sqlite3_int64 o, void* p) { return Real(f)->pMethods->xUnfetch(Real(f), o, p); },
};

class SqliteJournalIoErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FaultyVfs::Register();
    uri_ = "file:" + dir_.File("journal.db") + "?vfs=tf_faulty";
  }
  void TearDown() override {
    FaultyVfs::wal_writes_before_failure = -1;
    FaultyVfs::fail_wal_syncs = false;
  }
  TempDir dir_;
  std::string uri_;
};

std::vector<JournalRecord> Rows(uint64_t first, uint64_t n, RequestState state = RequestState::kQueued) {
  std::vector<JournalRecord> batch;
  for (uint64_t id = first; id < first + n; ++id) batch.push_back(JournalRecord::Put(MakeRow(id, state)));
  return batch;
}

TEST_F(SqliteJournalIoErrorTest, FailedWalWriteAppliesNothingAndJournalRecovers) {
  auto j = OpenOrDie(uri_);
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit(Rows(0, 1000)).ok());
  std::vector<JournalRecord> batch = Rows(0, 5000, RequestState::kAssigned);
  batch.push_back(JournalRecord::Meta("next_id", "5000"));
  for (int writes : {0, 7, 150}) {  // fail the first, an early, and a late write of the commit
    FaultyVfs::wal_writes_before_failure = writes;
    Status st = j->Commit(batch);
    FaultyVfs::wal_writes_before_failure = -1;
    EXPECT_EQ(st.code(), Code::kIo) << st.ToString();
    EXPECT_NE(st.message().find(dir_.File("journal.db")), std::string::npos) << st.message();
    JournalContents c = LoadOrDie(j.get());
    ASSERT_EQ(c.requests.size(), 1000u);
    EXPECT_EQ(c.requests[999], MakeRow(999));
    EXPECT_TRUE(c.meta.empty());
  }
  ASSERT_TRUE(j->Commit(Rows(1000, 10)).ok());
  j.reset();
  j = OpenOrDie(uri_);
  ASSERT_NE(j, nullptr);
  JournalContents c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), 1010u);
  EXPECT_EQ(c.requests[0], MakeRow(0));
  EXPECT_TRUE(c.meta.empty());
}

TEST_F(SqliteJournalIoErrorTest, FailedSyncIsReportedAndOverwrittenByTheNextCommit) {
  auto j = OpenOrDie(uri_);
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit(Rows(0, 100)).ok());
  FaultyVfs::fail_wal_syncs = true;
  Status st = j->Commit(Rows(100, 500));
  FaultyVfs::fail_wal_syncs = false;
  EXPECT_EQ(st.code(), Code::kIo) << st.ToString();
  EXPECT_EQ(LoadOrDie(j.get()).requests.size(), 100u);

  ASSERT_TRUE(j->Commit(Rows(1000, 5)).ok());
  j.reset();
  j = OpenOrDie(uri_);
  ASSERT_NE(j, nullptr);
  std::vector<uint64_t> ids = Ids(LoadOrDie(j.get()));
  ASSERT_EQ(ids.size(), 105u);
  EXPECT_EQ(ids[99], 99u);
  EXPECT_EQ(ids[100], 1000u);
}

// A real full disk: a small ext4 image mounted on a loop device. Needs root and loop devices;
// skipped otherwise.
class SqliteJournalDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a loop filesystem";
    std::string img = dir_.File("fs.img");
    mnt_ = dir_.File("mnt");
    std::string cmd = "truncate -s " + ImageSize() + " " + img + " && mkfs.ext4 -q -F " + img + " && mkdir " + mnt_ +
                      " && mount -o loop " + img + " " + mnt_;
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "cannot mount a loop filesystem: " << cmd;
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) {
      EXPECT_EQ(umount(mnt_.c_str()), 0) << std::strerror(errno);
    }
  }

  virtual std::string ImageSize() const { return "8M"; }

  // Fills the filesystem, then gives back `leave` bytes. Returns the filler's path.
  std::string Fill(off_t leave) {
    std::string filler = mnt_ + "/filler";
    int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    std::string chunk(64 << 10, 'f');
    off_t size = 0;
    for (;;) {
      ssize_t n = write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;
      size += n;
    }
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_EQ(ftruncate(fd, size > leave ? size - leave : 0), 0);
    EXPECT_EQ(fsync(fd), 0);
    close(fd);
    return filler;
  }

  TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
};

std::vector<JournalRecord> BigRows(uint64_t first, int n) {
  std::vector<JournalRecord> batch;
  for (uint64_t id = first; id < first + n; ++id) {
    RequestRow r = MakeRow(id);
    r.data.assign(1024, static_cast<char>('a' + id % 26));
    batch.push_back(JournalRecord::Put(std::move(r)));
  }
  return batch;
}

TEST_F(SqliteJournalDiskFullTest, CommitFailsWithNoSpaceAndJournalReopensIntact) {
  std::string path = mnt_ + "/journal.db";
  auto j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit(BigRows(0, 100)).ok());
  std::string filler = Fill(600 << 10);

  uint64_t next = 100;
  Status failure;
  for (int i = 0; i < 100 && failure.ok(); ++i) {
    failure = j->Commit(BigRows(next, 100));
    if (failure.ok()) next += 100;
  }
  ASSERT_FALSE(failure.ok()) << "the disk never filled up";
  EXPECT_GT(next, 100u) << "no commit succeeded between filling the disk and running out";
  EXPECT_EQ(failure.code(), Code::kNoSpace) << failure.ToString();
  EXPECT_EQ(failure.sys_errno(), ENOSPC);
  EXPECT_NE(failure.message().find(path), std::string::npos) << failure.message();
  EXPECT_EQ(Ids(LoadOrDie(j.get())).size(), next);

  // Reopen on the still-full disk: every committed row is there, nothing of the failed batch.
  j.reset();
  j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  JournalContents c = LoadOrDie(j.get());
  ASSERT_EQ(c.requests.size(), next);
  for (uint64_t id = 0; id < next; ++id) ASSERT_EQ(c.requests[id].id, id);
  EXPECT_EQ(c.requests.back().data, std::string(1024, static_cast<char>('a' + (next - 1) % 26)));

  // Space comes back: the same journal commits again.
  ASSERT_EQ(unlink(filler.c_str()), 0);
  Status st = j->Commit(BigRows(next, 100));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(LoadOrDie(j.get()).requests.size(), next + 100);
  j.reset();
}


// The coordinator does not reopen its journal when the disk recovers: the connection that hit
// the full disk must commit again as soon as there is space, with nothing of the failed batch.
TEST_F(SqliteJournalDiskFullTest, SameConnectionCommitsAgainOnceSpaceIsFreed) {
  std::string path = mnt_ + "/journal.db";
  auto j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(j->Commit(BigRows(0, 100)).ok());
  std::string filler = Fill(300 << 10);
  uint64_t next = 100;
  Status failure;
  for (int i = 0; i < 100 && failure.ok(); ++i) {
    failure = j->Commit(BigRows(next, 100));
    if (failure.ok()) next += 100;
  }
  ASSERT_EQ(failure.code(), Code::kNoSpace) << failure.ToString();
  EXPECT_NE(failure.message().find("free space on the filesystem"), std::string::npos) << failure.message();
  // Still full: a retry fails the same way and applies nothing.
  EXPECT_EQ(j->Commit(BigRows(next, 100)).code(), Code::kNoSpace);
  EXPECT_EQ(Ids(LoadOrDie(j.get())).size(), next);

  ASSERT_EQ(unlink(filler.c_str()), 0);
  for (int i = 0; i < 5; ++i, next += 100) {
    Status st = j->Commit(BigRows(next, 100));
    ASSERT_TRUE(st.ok()) << "commit " << i << " after freeing space: " << st.ToString();
  }
  std::vector<uint64_t> ids = Ids(LoadOrDie(j.get()));
  ASSERT_EQ(ids.size(), next);
  for (uint64_t id = 0; id < next; ++id) ASSERT_EQ(ids[id], id);
  j.reset();
  j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(Ids(LoadOrDie(j.get())).size(), next);
}

// A WAL that needs a checkpoint when the disk is full: the checkpoint cannot grow the database
// file (SQLite drops that error: the commit itself is durable in the WAL), the WAL keeps growing
// until it cannot, and once space returns the next commits succeed and the checkpoint completes.
class SqliteJournalFullCheckpointTest : public SqliteJournalDiskFullTest {
 protected:
  // Room for the WAL past the checkpoint threshold (32 MiB) and the database file it fills.
  std::string ImageSize() const override { return "128M"; }
};

off_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST_F(SqliteJournalFullCheckpointTest, CheckpointFailsOnAFullDiskAndCompletesOnceSpaceReturns) {
  std::string path = mnt_ + "/journal.db";
  std::string wal = path + "-wal";
  auto j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  // Just below the autocheckpoint threshold (8192 pages of 4 KiB): nothing is in the database file yet.
  uint64_t next = 0;
  while (FileSize(wal) < (31 << 20)) {
    ASSERT_TRUE(j->Commit(BigRows(next, 200)).ok());
    next += 200;
  }
  off_t db_before = FileSize(path);
  ASSERT_LT(db_before, 1 << 20) << "a checkpoint ran before the test filled the disk";

  std::string filler = Fill(4 << 20);
  Status failure;
  for (int i = 0; i < 200 && failure.ok(); ++i) {
    failure = j->Commit(BigRows(next, 200));
    if (failure.ok()) next += 200;
  }
  ASSERT_EQ(failure.code(), Code::kNoSpace) << failure.ToString();
  EXPECT_GT(FileSize(wal), 32 << 20) << "the WAL passed the checkpoint threshold";
  off_t db_full = FileSize(path);
  EXPECT_LT(db_full, 16 << 20) << "the checkpoint could not have completed on a full disk";
  EXPECT_EQ(Ids(LoadOrDie(j.get())).size(), next);

  ASSERT_EQ(unlink(filler.c_str()), 0);
  Status st = j->Commit(BigRows(next, 200));
  ASSERT_TRUE(st.ok()) << st.ToString();
  next += 200;
  EXPECT_GT(FileSize(path), db_full + (8 << 20)) << "the checkpoint did not copy the WAL into the database";
  j.reset();  // close: checkpoints what is left and removes the WAL
  EXPECT_EQ(FileSize(wal), -1);
  j = OpenOrDie(path);
  ASSERT_NE(j, nullptr);
  std::vector<uint64_t> ids = Ids(LoadOrDie(j.get()));
  ASSERT_EQ(ids.size(), next);
  for (uint64_t id = 0; id < next; ++id) ASSERT_EQ(ids[id], id);
}

}  // namespace
}  // namespace tierflow::store
