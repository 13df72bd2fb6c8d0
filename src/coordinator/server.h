// The coordinator process: a gRPC server (client verbs and mover streams) in front of the
// coordinator loop, with its journal in STATE_DIR/journal.db.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "coordinator/policy.h"

namespace tierflow::coordinator {

struct ServerOptions {
  std::string listen = "127.0.0.1:7420";  // HOST:PORT; port 0 picks a free port (see port())
  std::string state_dir;                  // created if missing; holds journal.db
  Clock* clock = SystemClock::Default();
  uint32_t default_archive_id = 1;
  int64_t mover_grace_us = 60'000'000;  // a disconnected mover keeps its work this long
  int64_t final_grace_us = 60'000'000;  // final records are kept this long, then purged
  size_t max_message_bytes = 16 << 20;
  uint32_t max_attempts = 3;  // a retryable failure is retried up to this
  int64_t retry_delay_us = 1'000'000;  // backoff before the first retry, doubling per attempt
  bool no_retry = false;               // every failure is final (Lustre's NRA)
  int64_t active_request_timeout_us = 3'600'000'000;  // silent assigned work is taken back
  int64_t heartbeat_interval_us = 10'000'000;          // Ping to every mover this often
  int64_t heartbeat_timeout_us = 30'000'000;           // no Pong this long: given nothing new
  // Concurrent streams past which new ones are refused (RESOURCE_EXHAUSTED): each holds a
  // gRPC thread, so a client opening streams in a loop cannot exhaust the process.
  size_t max_wait_streams = 4096;
  size_t max_mover_sessions = 256;
  int64_t hello_timeout_us = 10'000'000;  // a mover stream silent this long is ended
  SchedulingOptions scheduling;           // order, fair share, placement, batching, reporting
};

class Server {
 public:
  // Opens the journal, rebuilds the queues, starts the loop and listens. Errors name the
  // address or the state directory and say what to do.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options);
  virtual ~Server() = default;

  virtual int port() const = 0;
  // Blocks until Shutdown() is called or a `lock --quit` finishes.
  virtual void Wait() = 0;
  // Stops accepting, closes mover streams, flushes the journal. Keeps assignments in the
  // journal, so after a restart work a mover still holds is not given to another. Thread-safe.
  virtual void Shutdown() = 0;
};

}  // namespace tierflow::coordinator
