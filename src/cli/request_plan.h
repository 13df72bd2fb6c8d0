// From local file states to the requests a client verb submits: Lustre's "is it needed" and
// "is it allowed" rules (hsm/hsm_state.h) applied to each file, with a note for every file that
// needs nothing and an error for every file the request is not allowed on. Pure logic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "hsm/action.h"
#include "mover/fs/local_fs.h"
#include "tierflow.pb.h"

namespace tierflow::cli {

// A file named on the command line, as the client found it.
struct LocalFile {
  std::string path;  // absolute
  mover::FileState state;
};

// The record's state bits, plus dirty when an archived, resident file's data changed since it
// was archived (mover::UnchangedSinceSeal, the test release applies): without a watcher, the
// stamp is how the client knows.
uint32_t EffectiveStates(const mover::FileState& state);

struct PlanOptions {
  hsm::Action action = hsm::Action::kArchive;
  uint32_t archive_id =
      0;             // archive only; 0 = the file's own archive, else the coordinator's default
  std::string data;  // archive only: request data
  std::string user;
};

struct PlannedRequest {
  std::string path;
  v1::RequestSpec spec;
  uint64_t size = 0;  // logical size, for progress
};

struct Plan {
  std::vector<PlannedRequest> requests;
  std::vector<std::string> notes;  // files skipped because there is nothing to do
  std::vector<Status> errors;      // files the action is not allowed on, each naming the file
};

// Restore and remove go to the archive id in the file's record. Hard links to one file are
// requested once.
Plan PlanRequests(const PlanOptions& options, const std::vector<LocalFile>& files);

// Splits the requests into Submit messages of at most `batch_size`, each with its own random
// idempotency key.
std::vector<v1::SubmitRequest> SplitBatches(const std::vector<PlannedRequest>& requests,
                                            size_t batch_size);

// 128 random bits as 32 hex digits.
std::string NewIdempotencyKey();

// "archive", "restore", "remove", "cancel".
std::string VerbName(hsm::Action action);

}  // namespace tierflow::cli
