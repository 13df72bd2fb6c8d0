// A tierflow installation made of real processes on loopback: one coordinator and movers, each a
// `tierflow` process, with the state directory, archive root and managed tree in a temp dir.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace tierflow::testing {

class Cluster {
 public:
  Cluster();
  ~Cluster();

  const std::string& fs() const { return fs_; }            // the managed tree
  const std::string& archive() const { return archive_; }  // posix archive root
  const std::string& state() const { return state_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  TempDir& dir() { return dir_; }

  // Makes fs() the root of a fresh loop-mounted filesystem of `type` ("ext4", "xfs", "btrfs") of
  // `size_mb` MiB, unmounted (lazily) when the cluster ends; holder sockets go to a private run
  // directory (TIERFLOW_RUN_DIR). Returns false (with `why`) when it cannot be made.
  bool MountLoopFs(const std::string& type, uint64_t size_mb, std::string* why);

  // Starts (or restarts) the coordinator and waits until it answers `status`. `flags` are
  // added to its command line, and kept for later restarts.
  void StartCoordinator();
  void StartCoordinator(std::vector<std::string> flags);
  Process& coordinator() { return *coordinator_; }
  void KillCoordinator(int sig);

  // Starts a mover with the given extra flags (e.g. {"--max-archive", "1"}).
  Process& StartMover(const std::string& id, std::vector<std::string> extra = {});
  void KillMover(const std::string& id, int sig);

  // Runs `tierflow VERB ARGS...` with TIERFLOW_COORDINATOR pointing at this cluster.
  CommandResult Client(std::vector<std::string> args);

  // Logs of every process, for failure messages.
  std::string Logs() const;

 private:
  TempDir dir_;
  std::string fs_, archive_, state_;
  int port_;
  int coordinator_starts_ = 0;
  std::vector<std::string> coordinator_flags_;
  bool mounted_ = false;
  std::unique_ptr<Process> coordinator_;
  std::vector<std::pair<std::string, std::unique_ptr<Process>>> movers_;
};

}  // namespace tierflow::testing
