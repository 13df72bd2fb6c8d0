// The holder: a small long-lived process per watched filesystem that owns the fanotify
// pre-content group, so that the group (and its filesystem mark) outlives any crash of the
// mover that restores files. It is the only reader of the group and answers every event
// itself:
//  - events raised by trusted processes (itself, a connected watcher or pass client, see
//    holder_protocol.h) are allowed at once;
//  - events on files whose HSM record does not say released are allowed at once, and the
//    file's inode gets an evictable ignore mark so its next accesses stay in the kernel (the
//    mark is cleared by the kernel when the file is modified, e.g. punched by a release);
//  - events on released files are forwarded to the watcher (with the event's descriptor) and
//    stay pending until it answers. With no watcher connected they wait; a watcher that
//    connects (again, after a crash) receives every pending event. So a reader of a released
//    file waits, and never reads the zeros of a punched file, while no watcher runs.
//  - a file whose record cannot be read or decoded is denied with EIO (its content is unknown).
// Why the holder reads events rather than handing the group descriptor to the watcher: the
// kernel keeps an event read by a process that then dies in its "answered later" list forever;
// no other reader sees it again, and its reader would hang. Only a process that never dies
// may read.
// When the holder stops (SIGTERM) it denies pending events with EIO, then closes the group:
// from then on the filesystem is unwatched (the kernel fails open) until a holder runs again.
// A holder whose filesystem is unmounted exits by itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace tierflow::watch {

struct HolderOptions {
  std::string mount;        // a mount point (or any path) of the filesystem to watch
  std::string socket_path;  // default: HolderSocketPath(fsid of mount)
};

struct HolderStats {
  uint64_t events = 0;            // permission events read
  uint64_t allowed_trusted = 0;   // raised by a trusted process
  uint64_t allowed_resident = 0;  // on a file that is not released
  uint64_t ignore_marks = 0;      // ignore marks added
  uint64_t forwarded = 0;         // sent to a watcher (resent ones count again)
  uint64_t pending = 0;           // waiting for a watcher's answer now
  uint64_t answered = 0;          // answers from watchers applied
  uint64_t denied = 0;            // denied by the holder itself (unreadable record, stop)
  bool watcher_connected = false;
};

class Holder {
 public:
  // Checks the filesystem (CheckWatchableFilesystem), creates the group and the filesystem
  // mark, and listens on the socket (mode 0600 in a 0700 directory; a stale socket file with no
  // listener is replaced, a live one is Code::kAlreadyExists "a holder already watches ...").
  // When it returns, every access to the filesystem is intercepted.
  static Result<std::unique_ptr<Holder>> Start(const HolderOptions& options);
  virtual ~Holder() = default;
  // Serves until Stop() (or the filesystem is unmounted). Call from one thread.
  virtual void Run() = 0;
  // Thread-safe; Run() returns soon after.
  virtual void Stop() = 0;
  virtual HolderStats Stats() = 0;
  virtual const std::string& fsid() const = 0;
  virtual const std::string& socket_path() const = 0;
};

}  // namespace tierflow::watch
