// SqliteJournal: the journal as one SQLite database in WAL mode. Each Commit is one
// BEGIN IMMEDIATE ... COMMIT with cached prepared statements; synchronous=FULL makes the commit
// durable before it returns. For throughput a request is stored as id, state and action columns
// plus one compact BLOB of its other fields (request_codec.h), and runs of puts are written
// kRowsPerInsert rows per statement: together about 1.6x fewer CPU cycles per record than one
// column per field and one statement per row. The connection holds an exclusive lock for its
// lifetime, so two coordinators can never write the same journal, and the WAL index lives in heap
// memory (no -shm file, which also lets a journal reopen on a full disk).
#include "store/sqlite/sqlite_journal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include "store/request_codec.h"

namespace tierflow::store {
namespace {

// "TFLW": marks the file as a tierflow journal, so another application's database is refused.
constexpr int32_t kApplicationId = 0x54464C57;
constexpr int kSchemaVersion = 1;

// Tuning. A 64 MiB page cache holds the pages a large batch dirties (64k new rows are ~8 MiB), so
// the WAL is written once, sequentially, at COMMIT. The WAL is checkpointed when it passes 32 MiB
// and truncated back to 64 MiB after a checkpoint if it grew beyond, which bounds its size.
constexpr int kPageSize = 4096;
constexpr int kCacheSizeKib = 64 * 1024;
constexpr int kWalAutocheckpointPages = 8192;
constexpr int64_t kJournalSizeLimitBytes = 64 << 20;
constexpr int kBusyTimeoutMs = 1000;

// Rows per multi-row INSERT: amortizes the per-statement cost of the VDBE over many rows.
constexpr size_t kRowsPerInsert = 64;

// `state` and `action` are columns so that an operator can query the journal with the sqlite3 shell
// (and so that the CHECKs catch a corrupted value); everything else is in `body`.
constexpr const char* kSchema = R"sql(
CREATE TABLE requests(
  id INTEGER PRIMARY KEY,
  state INTEGER NOT NULL CHECK(state BETWEEN 1 AND 5),
  action INTEGER NOT NULL CHECK(action BETWEEN 1 AND 4),
  body BLOB NOT NULL
);
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE idempotency(key TEXT PRIMARY KEY, ids BLOB NOT NULL, created INTEGER NOT NULL)
  WITHOUT ROWID;
)sql";

// "INSERT OR REPLACE INTO requests(id, state, action, body) VALUES(?,?,?,?),(?,?,?,?)..."
std::string PutRequestsSql(size_t rows) {
  std::string sql = "INSERT OR REPLACE INTO requests(id, state, action, body) VALUES";
  for (size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?,?,?,?)" : ",(?,?,?,?)";
  return sql;
}

// SQLite integers are signed 64-bit; unsigned values are stored by their bit pattern.
int64_t ToSql(uint64_t v) { return static_cast<int64_t>(v); }

std::string EncodeIds(const std::vector<uint64_t>& ids) {
  std::string out(ids.size() * 8, '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int b = 0; b < 8; ++b) out[i * 8 + b] = static_cast<char>(ids[i] >> (8 * b));
  }
  return out;
}

std::vector<uint64_t> DecodeIds(std::string_view blob) {
  std::vector<uint64_t> ids(blob.size() / 8);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<uint8_t>(blob[i * 8 + b]);
    ids[i] = v;
  }
  return ids;
}

// The bytes of a column, valid until the next step of `st`.
std::string_view ColumnView(sqlite3_stmt* st, int col) {
  const void* p = sqlite3_column_blob(st, col);
  int n = sqlite3_column_bytes(st, col);
  return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
}

std::string ColumnString(sqlite3_stmt* st, int col) { return std::string(ColumnView(st, col)); }

// SQLite's own binding of bytes: SQLITE_STATIC is safe because every bound string outlives the
// sqlite3_step that reads it.
void BindBytes(sqlite3_stmt* st, int col, const std::string& s, bool blob) {
  if (blob) {
    sqlite3_bind_blob64(st, col, s.data(), s.size(), SQLITE_STATIC);
  } else {
    sqlite3_bind_text64(st, col, s.data(), s.size(), SQLITE_STATIC, SQLITE_UTF8);
  }
}

Code CodeFor(int rc, int sys_errno) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return Code::kNoSpace;
    case SQLITE_IOERR: return Code::kIo;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Code::kCorrupt;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Code::kBusy;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return Code::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return sys_errno == ENOENT || sys_errno == ENOTDIR ? Code::kNotFound : Code::kPermissionDenied;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE: return Code::kInvalidArgument;
    default: return Code::kInternal;
  }
}

// What the administrator should do about `code` (with the system's errno, when there is one).
const char* AdviceFor(Code code, int sys_errno) {
  switch (code) {
    case Code::kNoSpace: return "free space on the filesystem holding it; nothing of this batch was written";
    case Code::kIo:
      if (sys_errno == EROFS) {
        return "the filesystem holding it has turned read-only (often after a disk error): check the kernel log, "
               "then repair the filesystem and mount it read-write";
      }
      return "check the disk and the kernel log";
    case Code::kCorrupt: return "it is damaged or not a tierflow journal; move it aside and restore from a backup";
    case Code::kBusy: return "another tierflow coordinator has it open; stop that one or use another state directory";
    case Code::kPermissionDenied: return "check the ownership and permissions of the file and its directory";
    case Code::kNotFound: return "check that the state directory exists";
    case Code::kInvalidArgument: return "a record broke a schema rule; nothing of this batch was written";
    default: return "this is a bug in tierflow; please report it";
  }
}

// The directory holding the journal at `path` (a plain path or a "file:" URI).
std::string JournalDirectory(const std::string& path) {
  std::string file = path.rfind("file:", 0) == 0 ? path.substr(5, path.find('?') - 5) : path;
  size_t slash = file.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : file.substr(0, slash);
}

// Whether the filesystem holding `dir` refuses writes because it is read-only. SQLite does not
// keep the errno of every failed write, and a filesystem that turned read-only after an error
// (ext4 errors=remount-ro) may still show "rw" in its mount flags, so this tries to create a file.
bool FilesystemReadOnly(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0) return true;
  std::string probe = dir + "/.tierflow-write-probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno == EROFS;
  ::close(fd);
  ::unlink(probe.c_str());
  return false;
}

}  // namespace

struct SqliteJournal::Impl {
  std::string path;
  sqlite3* db = nullptr;
  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* put_request = nullptr;   // one row
  sqlite3_stmt* put_requests = nullptr;  // kRowsPerInsert rows
  std::vector<std::string> bodies;       // encoding buffers, reused across commits
  sqlite3_stmt* delete_request = nullptr;
  sqlite3_stmt* set_meta = nullptr;
  sqlite3_stmt* put_idempotency = nullptr;
  sqlite3_stmt* delete_idempotency = nullptr;

  Impl() : bodies(kRowsPerInsert) {}
  ~Impl() {
    for (sqlite3_stmt* st : {begin, commit, put_request, put_requests, delete_request, set_meta, put_idempotency,
                             delete_idempotency}) {
      sqlite3_finalize(st);
    }
    sqlite3_close_v2(db);
  }

  // A Status for SQLite result `rc` while doing `what`, naming the file and the remedy.
  Status Error(int rc, const std::string& what) const {
    int sys_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
    Code code = CodeFor(rc, sys_errno);
    if (code == Code::kNoSpace && sys_errno == 0) sys_errno = ENOSPC;  // SQLite keeps no errno for FULL
    if (code == Code::kIo && sys_errno != EROFS && FilesystemReadOnly(JournalDirectory(path))) sys_errno = EROFS;
    const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    std::string msg = "journal " + path + ": " + what + ": " + detail;
    if (sys_errno != 0 && (code == Code::kIo || code == Code::kNoSpace)) {
      msg += std::string(" (") + std::strerror(sys_errno) + ")";
    }
    msg += std::string("; ") + AdviceFor(code, sys_errno);
    return Status(code, std::move(msg), code == Code::kIo || code == Code::kNoSpace ? sys_errno : 0);
  }

  Status Exec(const char* sql, const std::string& what) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(rc, what);
  }

  Status Prepare(const char* sql, sqlite3_stmt** st) {
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : Error(rc, "preparing statements");
  }

  // Runs `sql` and calls fn(stmt) for each result row.
  template <typename Fn>
  Status ForEachRow(const char* sql, const std::string& what, Fn fn) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(st);
    }
    Status status = rc == SQLITE_DONE ? Status::Ok() : Error(rc, what);
    sqlite3_finalize(st);
    return status;
  }

  // Runs a statement that returns at most one value, e.g. "PRAGMA user_version", as text.
  Result<std::string> QueryText(const char* sql, const std::string& what) {
    std::string value;
    Status status = ForEachRow(sql, what, [&value](sqlite3_stmt* st) { value = ColumnString(st, 0); });
    if (!status.ok()) return status;
    return value;
  }
  Result<int64_t> QueryInt(const char* sql, const std::string& what) {
    Result<std::string> text = QueryText(sql, what);
    if (!text.ok()) return text.status();
    return static_cast<int64_t>(std::strtoll(text->c_str(), nullptr, 10));
  }

  Status OpenFile();
  Status CheckOrCreateSchema();
  Status Configure();
  Status PrepareAll();

  // Runs a write statement and resets it; returns the SQLite result (SQLITE_DONE on success).
  static int Step(sqlite3_stmt* st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
  }
  int Apply(const JournalRecord& rec);
  void BindRequest(sqlite3_stmt* st, int slot, const RequestRow& r);
  int PutRequests(const JournalRecord* recs, size_t n);
  Status CommitBatch(const std::vector<JournalRecord>& batch);
  void RollbackIfOpen();

  Status LoadRequests(std::vector<RequestRow>* out);
  Status LoadMeta(std::map<std::string, std::string>* out);
  Status LoadIdempotency(std::map<std::string, IdempotencyEntry>* out);
};

Status SqliteJournal::Impl::OpenFile() {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "opening");
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // Set before the first read: the lock is then held until close and the WAL index stays in heap.
  return Exec("PRAGMA locking_mode=EXCLUSIVE", "setting the locking mode");
}

Status SqliteJournal::Impl::CheckOrCreateSchema() {
  // The first read of the file: a file that is not SQLite fails here with SQLITE_NOTADB.
  Result<int64_t> app = QueryInt("PRAGMA application_id", "reading the header");
  if (!app.ok()) {
    if (app.status().code() == Code::kCorrupt) {
      return Status(Code::kCorrupt, path + " is not a tierflow journal (not a SQLite database); move it "
                                           "aside or choose another state directory");
    }
    return app.status();
  }
  Result<int64_t> version = QueryInt("PRAGMA user_version", "reading the schema version");
  if (!version.ok()) return version.status();
  Result<int64_t> tables = QueryInt("SELECT count(*) FROM sqlite_schema", "reading the schema");
  if (!tables.ok()) return tables.status();

  if (*app == 0 && *version == 0 && *tables == 0) {
    TF_RETURN_IF_ERROR(Exec(("PRAGMA page_size=" + std::to_string(kPageSize)).c_str(), "setting the page size"));
    TF_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL", "switching to WAL mode"));
    std::string create = "BEGIN IMMEDIATE;" + std::string(kSchema) +
                         "PRAGMA application_id=" + std::to_string(kApplicationId) +
                         ";PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";COMMIT;";
    Status st = Exec(create.c_str(), "creating the schema");
    if (!st.ok()) RollbackIfOpen();
    return st;
  }
  if (*app != kApplicationId) {
    return Status(Code::kFailedPrecondition,
                  path + " is a SQLite database of another application (application_id " + std::to_string(*app) +
                      "), not a tierflow journal; move it aside or choose another state directory");
  }
  if (*version != kSchemaVersion) {
    return Status(Code::kFailedPrecondition,
                  "journal " + path + " has schema version " + std::to_string(*version) + " but this tierflow reads " +
                      std::to_string(kSchemaVersion) + "; run the tierflow release that wrote it");
  }
  return Status::Ok();
}

Status SqliteJournal::Impl::Configure() {
  Result<std::string> mode = QueryText("PRAGMA journal_mode=WAL", "switching to WAL mode");
  if (!mode.ok()) return mode.status();
  if (*mode != "wal") {
    return Status(Code::kFailedPrecondition, "journal " + path + " cannot use WAL mode (it stays in " + *mode +
                                                 " mode); put the state directory on a local filesystem");
  }
  // secure_delete is on in some distributions' builds; zeroing freed space costs every replace.
  std::string pragmas = "PRAGMA synchronous=FULL;PRAGMA temp_store=MEMORY;PRAGMA secure_delete=OFF;"
                        "PRAGMA cache_size=-" +
                        std::to_string(kCacheSizeKib) +
                        ";PRAGMA wal_autocheckpoint=" + std::to_string(kWalAutocheckpointPages) +
                        ";PRAGMA journal_size_limit=" + std::to_string(kJournalSizeLimitBytes) + ";";
  return Exec(pragmas.c_str(), "configuring");
}

Status SqliteJournal::Impl::PrepareAll() {
  TF_RETURN_IF_ERROR(Prepare("BEGIN IMMEDIATE", &begin));
  TF_RETURN_IF_ERROR(Prepare("COMMIT", &commit));
  TF_RETURN_IF_ERROR(Prepare(PutRequestsSql(1).c_str(), &put_request));
  TF_RETURN_IF_ERROR(Prepare(PutRequestsSql(kRowsPerInsert).c_str(), &put_requests));
  TF_RETURN_IF_ERROR(Prepare("DELETE FROM requests WHERE id=?", &delete_request));
  TF_RETURN_IF_ERROR(Prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?,?)", &set_meta));
  TF_RETURN_IF_ERROR(
      Prepare("INSERT OR REPLACE INTO idempotency(key, ids, created) VALUES(?,?,?)", &put_idempotency));
  return Prepare("DELETE FROM idempotency WHERE key=?", &delete_idempotency);
}

// Binds `r` to the row `slot` (from 0) of a put statement; encodes into bodies[slot].
void SqliteJournal::Impl::BindRequest(sqlite3_stmt* st, int slot, const RequestRow& r) {
  std::string& body = bodies[slot];
  body.clear();
  EncodeRequestBody(r, &body);
  int col = slot * 4;
  sqlite3_bind_int64(st, col + 1, ToSql(r.id));
  sqlite3_bind_int(st, col + 2, static_cast<int>(r.state));
  sqlite3_bind_int(st, col + 3, static_cast<int>(r.action));
  sqlite3_bind_blob64(st, col + 4, body.data(), body.size(), SQLITE_STATIC);
}

// Writes the requests of `n` consecutive put records (n == 1 or kRowsPerInsert).
int SqliteJournal::Impl::PutRequests(const JournalRecord* recs, size_t n) {
  sqlite3_stmt* st = n == 1 ? put_request : put_requests;
  for (size_t i = 0; i < n; ++i) BindRequest(st, static_cast<int>(i), recs[i].request);
  return Step(st);
}

int SqliteJournal::Impl::Apply(const JournalRecord& rec) {
  switch (rec.kind) {
    case JournalRecord::Kind::kPutRequest: return PutRequests(&rec, 1);
    case JournalRecord::Kind::kDeleteRequest:
      sqlite3_bind_int64(delete_request, 1, ToSql(rec.id));
      return Step(delete_request);
    case JournalRecord::Kind::kSetMeta:
      BindBytes(set_meta, 1, rec.key, false);
      BindBytes(set_meta, 2, rec.value, true);
      return Step(set_meta);
    case JournalRecord::Kind::kPutIdempotency: {
      std::string ids = EncodeIds(rec.ids);
      BindBytes(put_idempotency, 1, rec.key, false);
      BindBytes(put_idempotency, 2, ids, true);
      sqlite3_bind_int64(put_idempotency, 3, rec.created_us);
      return Step(put_idempotency);
    }
    case JournalRecord::Kind::kDeleteIdempotency:
      BindBytes(delete_idempotency, 1, rec.key, false);
      return Step(delete_idempotency);
  }
  return SQLITE_MISUSE;  // a kind this journal does not know: refuse the whole batch
}

static const char* KindName(JournalRecord::Kind kind) {
  switch (kind) {
    case JournalRecord::Kind::kPutRequest: return "put request";
    case JournalRecord::Kind::kDeleteRequest: return "delete request";
    case JournalRecord::Kind::kSetMeta: return "set meta";
    case JournalRecord::Kind::kPutIdempotency: return "put idempotency key";
    case JournalRecord::Kind::kDeleteIdempotency: return "delete idempotency key";
  }
  return "unknown kind";
}

// "writing record 3 of 10 (put request 42)" or "writing records 1-64 of 100 (put requests 7-300)".
static std::string DescribeRecords(const std::vector<JournalRecord>& batch, size_t first, size_t n) {
  const JournalRecord& rec = batch[first];
  std::string what = rec.key.empty() ? std::to_string(rec.id) : rec.key;
  if (n == 1) {
    return "writing record " + std::to_string(first + 1) + " of " + std::to_string(batch.size()) + " (" +
           KindName(rec.kind) + " " + what + ")";
  }
  return "writing records " + std::to_string(first + 1) + "-" + std::to_string(first + n) + " of " +
         std::to_string(batch.size()) + " (put requests " + what + "-" + std::to_string(batch[first + n - 1].id) + ")";
}

Status SqliteJournal::Impl::CommitBatch(const std::vector<JournalRecord>& batch) {
  int rc = Step(begin);
  if (rc != SQLITE_DONE) return Error(rc, "starting a transaction");
  size_t puts = 0;  // length of the run of puts starting at i
  for (size_t i = 0; i < batch.size();) {
    if (puts == 0) {
      while (i + puts < batch.size() && batch[i + puts].kind == JournalRecord::Kind::kPutRequest) ++puts;
    }
    size_t n = puts >= kRowsPerInsert ? kRowsPerInsert : 1;
    rc = n > 1 ? PutRequests(&batch[i], n) : Apply(batch[i]);
    if (rc != SQLITE_DONE) return Error(rc, DescribeRecords(batch, i, n));
    i += n;
    puts -= puts > 0 ? n : 0;
  }
  rc = Step(commit);
  return rc == SQLITE_DONE ? Status::Ok() : Error(rc, "committing " + std::to_string(batch.size()) + " records");
}

// SQLite may already have rolled back by itself (e.g. after SQLITE_FULL); only roll back what is open.
void SqliteJournal::Impl::RollbackIfOpen() {
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status SqliteJournal::Impl::LoadRequests(std::vector<RequestRow>* out) {
  Status bad_row;
  TF_RETURN_IF_ERROR(ForEachRow("SELECT id, state, action, body FROM requests ORDER BY id", "reading requests",
                                [&](sqlite3_stmt* st) {
                                  RequestRow& r = out->emplace_back();
                                  r.id = sqlite3_column_int64(st, 0);
                                  r.state = static_cast<RequestState>(sqlite3_column_int(st, 1));
                                  r.action = static_cast<hsm::Action>(sqlite3_column_int(st, 2));
                                  Status decoded = DecodeRequestBody(ColumnView(st, 3), &r);
                                  if (!decoded.ok() && bad_row.ok()) {
                                    bad_row = decoded.Annotate("request " + std::to_string(r.id));
                                  }
                                }));
  if (!bad_row.ok()) {
    return Status(Code::kCorrupt, "reading journal " + path + ": " + bad_row.message() +
                                  "; the journal is damaged: move it aside and restore it from a backup");
  }
  // SQLite orders the ids as signed integers, so ids of 2^63 and above come first; move them last.
  auto small = std::find_if(out->begin(), out->end(), [](const RequestRow& r) { return r.id < (1ULL << 63); });
  std::rotate(out->begin(), small, out->end());
  return Status::Ok();
}

Status SqliteJournal::Impl::LoadMeta(std::map<std::string, std::string>* out) {
  return ForEachRow("SELECT key, value FROM meta", "reading meta",
                    [out](sqlite3_stmt* st) { (*out)[ColumnString(st, 0)] = ColumnString(st, 1); });
}

Status SqliteJournal::Impl::LoadIdempotency(std::map<std::string, IdempotencyEntry>* out) {
  return ForEachRow("SELECT key, ids, created FROM idempotency", "reading idempotency keys", [out](sqlite3_stmt* st) {
    IdempotencyEntry& e = (*out)[ColumnString(st, 0)];
    e.ids = DecodeIds(ColumnView(st, 1));
    e.created_us = sqlite3_column_int64(st, 2);
  });
}

Result<std::unique_ptr<SqliteJournal>> SqliteJournal::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  TF_RETURN_IF_ERROR(impl->OpenFile());
  TF_RETURN_IF_ERROR(impl->CheckOrCreateSchema());
  TF_RETURN_IF_ERROR(impl->Configure());
  TF_RETURN_IF_ERROR(impl->PrepareAll());
  return std::unique_ptr<SqliteJournal>(new SqliteJournal(std::move(impl)));
}

SqliteJournal::SqliteJournal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteJournal::~SqliteJournal() = default;

Status SqliteJournal::Commit(const std::vector<JournalRecord>& batch) {
  if (batch.empty()) return Status::Ok();
  Status status = impl_->CommitBatch(batch);
  if (!status.ok()) impl_->RollbackIfOpen();
  return status;
}

Result<JournalContents> SqliteJournal::Load() {
  JournalContents contents;
  TF_RETURN_IF_ERROR(impl_->LoadRequests(&contents.requests));
  TF_RETURN_IF_ERROR(impl_->LoadMeta(&contents.meta));
  TF_RETURN_IF_ERROR(impl_->LoadIdempotency(&contents.idempotency));
  return contents;
}

}  // namespace tierflow::store
