// The coordinator's durable journal: request rows, small metadata and idempotency keys.
// The coordinator loop owns the in-memory state; the journal only makes it durable. All calls
// are made from the store thread (JournalWriter), never from the loop, because they block on disk.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "hsm/action.h"
#include "hsm/fid.h"

namespace tierflow::store {

enum class RequestState : uint8_t {
  kQueued = 1,
  kAssigned = 2,
  kSucceeded = 3,
  kFailed = 4,
  kCanceled = 5,
};

inline bool IsFinal(RequestState s) {
  return s == RequestState::kSucceeded || s == RequestState::kFailed || s == RequestState::kCanceled;
}
const char* RequestStateName(RequestState s);

// One request as persisted. The whole row is written on every change: rows are small and a
// full-row upsert keeps recovery trivial (the last row written is the truth).
struct RequestRow {
  uint64_t id = 0;
  hsm::FileId file;
  std::string path;
  hsm::Action action = hsm::Action::kArchive;
  uint32_t archive_id = 0;
  uint64_t flags = 0;
  std::string data;
  uint64_t offset = 0;
  uint64_t length = UINT64_MAX;
  std::string user;
  RequestState state = RequestState::kQueued;
  std::string mover;       // assigned mover id; empty when queued
  uint64_t epoch = 0;      // incremented on each assignment
  uint32_t attempts = 0;
  int32_t error_code = 0;
  std::string error;
  int64_t created_us = 0;  // wall clock
  int64_t changed_us = 0;
  // The file's owner as the submitter saw it, for fair share by owner, group or project.
  bool has_owner = false;
  uint32_t owner_uid = 0;
  uint32_t owner_gid = 0;
  uint32_t projid = 0;

  bool operator==(const RequestRow&) const = default;
};

// One change. Records of a batch are applied in order, atomically.
struct JournalRecord {
  enum class Kind : uint8_t {
    kPutRequest,      // insert or replace `request`
    kDeleteRequest,   // purge request `id` (after its grace delay)
    kSetMeta,         // meta[key] = value
    kPutIdempotency,  // idempotency key -> ids, with created time
    kDeleteIdempotency,
  };
  Kind kind = Kind::kPutRequest;
  RequestRow request;
  uint64_t id = 0;
  std::string key;
  std::string value;
  std::vector<uint64_t> ids;
  int64_t created_us = 0;

  static JournalRecord Put(RequestRow row);
  static JournalRecord Delete(uint64_t id);
  static JournalRecord Meta(std::string key, std::string value);
  static JournalRecord Idempotency(std::string key, std::vector<uint64_t> ids, int64_t created_us);
  static JournalRecord DeleteIdempotency(std::string key);
};

struct IdempotencyEntry {
  std::vector<uint64_t> ids;
  int64_t created_us = 0;
};

// Everything the coordinator needs to rebuild its state at start.
struct JournalContents {
  std::vector<RequestRow> requests;  // ordered by id
  std::map<std::string, std::string> meta;
  std::map<std::string, IdempotencyEntry> idempotency;
};

class Journal {
 public:
  virtual ~Journal() = default;
  // Applies the batch atomically and durably: on return with ok, all of it survives a crash
  // (or power loss); on error, none of it is applied and the journal is still usable.
  virtual Status Commit(const std::vector<JournalRecord>& batch) = 0;
  // Reads the whole journal. Called once, before the first Commit.
  virtual Result<JournalContents> Load() = 0;
};

}  // namespace tierflow::store
