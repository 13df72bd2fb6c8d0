// Journal on one SQLite file in WAL mode with synchronous=FULL: each Commit is one transaction.
#pragma once

#include <memory>
#include <string>

#include "store/journal.h"

struct sqlite3;

namespace tierflow::store {

class SqliteJournal final : public Journal {
 public:
  // Opens or creates the database at `path` (e.g. STATE_DIR/journal.db), creating the schema.
  // Errors name the file and say what to do (permissions, disk full, not a tierflow journal).
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
