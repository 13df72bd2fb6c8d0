// Journal on one SQLite file in WAL mode with synchronous=FULL: each Commit is one transaction.
// Not thread-safe: calls must not overlap (the store thread makes them all after Load).
// The file is held with an exclusive lock while open: a second Open of it, from this or another
// process, fails with kBusy. Errors map SQLite's codes: SQLITE_FULL -> kNoSpace,
// SQLITE_IOERR -> kIo, SQLITE_CORRUPT/NOTADB -> kCorrupt, BUSY -> kBusy, a schema CHECK failed by a
// record (e.g. an out-of-range state) -> kInvalidArgument; messages name the file.
// One caveat the disk imposes: if fsync itself fails (kIo at commit), the batch may or may not have
// reached the disk; the error is still reported and the batch is not visible to later reads in this
// process, but it may reappear after a restart.
#pragma once

#include <memory>
#include <string>

#include "store/journal.h"

struct sqlite3;

namespace tierflow::store {

class SqliteJournal final : public Journal {
 public:
  // Opens or creates the database at `path` (e.g. STATE_DIR/journal.db), creating the schema.
  // A path starting with "file:" is a SQLite URI (tests use it to pick a fault-injecting VFS).
  // Errors name the file and say what to do (permissions, disk full, not a tierflow journal).
  // A file that is not SQLite is refused with kCorrupt and left untouched; a SQLite database of
  // another application (no tierflow application_id) or of another schema version with
  // kFailedPrecondition; a missing directory with kNotFound.
  static Result<std::unique_ptr<SqliteJournal>> Open(const std::string& path);
  ~SqliteJournal() override;

  Status Commit(const std::vector<JournalRecord>& batch) override;
  Result<JournalContents> Load() override;

 private:
  struct Impl;
  explicit SqliteJournal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierflow::store
