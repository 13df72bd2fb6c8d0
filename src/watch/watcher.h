// The watcher: runs inside a mover on the host that mounts a watched filesystem. It connects
// to that filesystem's holder as its watcher, receives the events of released files, asks the
// coordinator for one blocking restore per file (however many processes wait on it), and
// answers every waiting event when the restore ends: allowed once the record says resident,
// EIO when the restore failed (the file stays released). It reconnects to the holder (and
// starts one if none runs and `holder_command` is set) when the connection breaks.
//
// HolderPass: how another tierflow process (a release, a mover restoring files on a filesystem
// it does not watch) makes its own I/O on a watched filesystem pass the holder without waiting.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "hsm/fid.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::watch {

// Asks for a restore and reports its end. Implementations call `done` exactly once, from any
// thread, possibly before RequestRestore returns.
class RestoreRequester {
 public:
  virtual ~RestoreRequester() = default;
  virtual void RequestRestore(const hsm::FileId& file, const std::string& path,
                              uint32_t archive_id, std::function<void(Status)> done) = 0;
};

struct WatcherOptions {
  std::string mount;
  std::string socket_path;  // default: HolderSocketPath(fsid of mount)
  // argv of a holder to start (detached, in its own session) when none listens; empty: never
  // start one, keep retrying the connection.
  std::vector<std::string> holder_command;
  RestoreRequester* requester = nullptr;  // must outlive the watcher
  int64_t reconnect_delay_ms = 100;       // doubles up to 2 s
};

struct WatcherStats {
  uint64_t events = 0;        // events received from the holder
  uint64_t restores = 0;      // restores requested (one per file and episode)
  uint64_t allowed = 0;
  uint64_t denied = 0;
  bool connected = false;
};

class Watcher {
 public:
  // Validates the mount (CheckWatchableFilesystem), then connects in the background; when
  // `wait_connected_ms` > 0, waits that long for the first connection (Code::kUnavailable if
  // none came, naming the socket).
  static Result<std::unique_ptr<Watcher>> Start(const WatcherOptions& options,
                                                int64_t wait_connected_ms);
  virtual ~Watcher() = default;
  virtual WatcherStats Stats() = 0;
  // Disconnects; events not answered yet stay pending in the holder for the next watcher.
  virtual void Stop() = 0;
};

// Trusted passage for this process's I/O on the watched filesystem `fsid`, if a holder watches
// it (no holder: nothing to do, Ok). Passes are cached per filesystem for the life of the
// process; a broken connection is reopened on the next call. Thread-safe.
Status EnsureHolderPass(const std::string& fsid);

}  // namespace tierflow::watch
