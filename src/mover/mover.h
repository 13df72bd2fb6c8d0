// The mover runtime: keeps one stream to the coordinator, runs actions on worker threads within
// its capacities, reports progress and results, and reconnects (with the list of actions still
// in hand) when the stream breaks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace tierflow::mover {

struct MoverOptions {
  std::string coordinator = "127.0.0.1:7420";
  std::string id;                      // stable name; defaults to the host name
  std::string host;                    // defaults to the host name
  std::vector<uint32_t> archive_ids = {1};
  int32_t max_archive = 4;             // concurrent actions per kind; -1 = unlimited
  int32_t max_restore = 4;
  int32_t max_remove = 4;
  uint64_t max_bytes = 0;              // 0 = unlimited
  std::string posix_root;              // archive root of the posix backend
  bool posix_v2 = false;
  int64_t progress_interval_ms = 2000;
  int64_t reconnect_delay_ms = 200;    // first retry delay; doubles up to 5 s
};

class Mover {
 public:
  // Checks the options (archive root usable) and starts connecting in the background.
  static Result<std::unique_ptr<Mover>> Start(const MoverOptions& options);
  virtual ~Mover() = default;
  // Blocks until Shutdown().
  virtual void Wait() = 0;
  // Stops taking work, lets running actions finish their current step, closes the stream.
  virtual void Shutdown() = 0;
};

}  // namespace tierflow::mover
