// Journal record constructors.
#include "store/journal.h"

namespace tierflow::store {

const char* RequestStateName(RequestState s) {
  switch (s) {
    case RequestState::kQueued: return "queued";
    case RequestState::kAssigned: return "assigned";
    case RequestState::kSucceeded: return "succeeded";
    case RequestState::kFailed: return "failed";
    case RequestState::kCanceled: return "canceled";
  }
  return "unknown";
}

JournalRecord JournalRecord::Put(RequestRow row) {
  JournalRecord r;
  r.kind = Kind::kPutRequest;
  r.id = row.id;
  r.request = std::move(row);
  return r;
}

JournalRecord JournalRecord::Delete(uint64_t id) {
  JournalRecord r;
  r.kind = Kind::kDeleteRequest;
  r.id = id;
  return r;
}

JournalRecord JournalRecord::Meta(std::string key, std::string value) {
  JournalRecord r;
  r.kind = Kind::kSetMeta;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

JournalRecord JournalRecord::Idempotency(std::string key, std::vector<uint64_t> ids, int64_t created_us) {
  JournalRecord r;
  r.kind = Kind::kPutIdempotency;
  r.key = std::move(key);
  r.ids = std::move(ids);
  r.created_us = created_us;
  return r;
}

JournalRecord JournalRecord::DeleteIdempotency(std::string key) {
  JournalRecord r;
  r.kind = Kind::kDeleteIdempotency;
  r.key = std::move(key);
  return r;
}

}  // namespace tierflow::store
