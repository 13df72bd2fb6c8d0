// The mover runtime: keeps one stream to the coordinator, runs actions on worker threads within
// its capacities, reports progress and results, and reconnects (with the list of actions still
// in hand) when the stream breaks.
//
// Protocol (proto/tierflow.proto, MoverSession): Hello{id, host, archive ids, capacities,
// in_hand} first; after Welcome the mover drops the `drop` actions (cancels them, discards their
// results) and sends what it buffered. A result stays in hand until the coordinator
// acknowledges it (ResultAcks, sent once durable): a stream that breaks before the ack lists
// the action in the next Hello and sends the result again, so nothing runs twice because a
// result was lost. Pings are answered with Pongs by the writer. Results that are ready together go in one Reports
// message with the latest progress. A result has error_code 0, ECANCELED (canceled by
// CancelActions), or Status::AsErrno(); retryable only for kUnavailable/kTimeout (and for
// actions stopped by Shutdown). While disconnected the mover keeps running what it holds and
// reconnects with backoff (reconnect_delay_ms doubling to 5 s); a Hello refused with
// ALREADY_EXISTS is retried the same way. CANCEL items inside a batch are ignored.
//
// Threads: a session thread (connect, read), a writer thread (the only stream writer after
// Hello) and one worker thread per running action. The public methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace tierflow::mover {

class ArchiveBackend;

struct MoverOptions {
  std::string coordinator = "127.0.0.1:7420";
  std::string id;    // stable name; defaults to the host name
  std::string host;  // defaults to the host name
  std::vector<uint32_t> archive_ids = {1};
  int32_t max_archive = 4;  // concurrent actions per kind; -1 = unlimited
  int32_t max_restore = 4;
  int32_t max_remove = 4;
  uint64_t max_bytes = 0;  // 0 = unlimited; advertised in Hello for the coordinator to honour
  std::string posix_root;  // archive root of the posix backend
  bool posix_v2 = false;
  // Used instead of a posix backend on posix_root when set (another backend, or a test double).
  // Called from worker threads concurrently; must outlive the mover.
  std::shared_ptr<ArchiveBackend> backend;
  uint64_t max_bytes_per_sec = 0;  // bandwidth limit of each copy; 0 = none
  // Called on the worker thread before each action, with the fsid of the action's file: lets
  // the process make its own I/O on that filesystem pass a fanotify holder (watch::
  // EnsureHolderPass). An error fails the action as retryable.
  std::function<Status(const std::string& fsid)> prepare_filesystem;
  // When set, one line per finished action is appended here (see AppendActionLog in
  // mover.cc): "<wall_us> <mover id> <request id> <epoch> <ACTION> <fid> <errno>".
  std::string action_log;
  int64_t progress_interval_ms = 2000;
  int64_t reconnect_delay_ms = 200;  // first retry delay; doubles up to 5 s
};

// A snapshot of what a mover holds, for status displays and tests.
struct MoverCounts {
  int queued = 0;          // received, waiting for a slot
  int running = 0;         // on a worker now
  int unreported = 0;      // finished, result not yet acknowledged by the coordinator
  bool connected = false;  // welcomed on a live stream
};

class Mover {
 public:
  // Checks the options (archive root usable) and starts connecting in the background; does not
  // wait for the coordinator. Errors say which option is wrong.
  static Result<std::unique_ptr<Mover>> Start(const MoverOptions& options);
  virtual ~Mover() = default;
  // Blocks until Shutdown().
  virtual void Wait() = 0;
  virtual MoverCounts Counts() = 0;
  // Stops taking work: queued actions and the running ones (canceled at their next copy step)
  // are reported as retryable failures so the coordinator gives them to a mover again; waits
  // for the workers, flushes results for up to 2 s, closes the stream. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace tierflow::mover
