// Cluster: real coordinator and mover processes for cross-process tests.
#include "support/cluster.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstdlib>

#include <stdexcept>

namespace tierflow::testing {

Cluster::Cluster()
    : fs_(dir_ / "fs"), archive_(dir_ / "archive"), state_(dir_ / "state"), port_(FreePort()) {
  mkdir(fs_.c_str(), 0755);
  mkdir(archive_.c_str(), 0755);
}

Cluster::~Cluster() {
  for (auto& [id, m] : movers_) m->Stop(SIGKILL);
  if (coordinator_) coordinator_->Stop(SIGKILL);
  // The holder of the filesystem notices the unmount and exits.
  if (mounted_) ::umount2(fs_.c_str(), MNT_DETACH);
}

bool Cluster::MountLoopFs(const std::string& type, uint64_t size_mb, std::string* why) {
  const std::string img = dir_ / ("fs-" + type + ".img");
  const std::string mkfs = type == "xfs"     ? "mkfs.xfs -q -f "
                           : type == "btrfs" ? "mkfs.btrfs -q -f "
                                             : "mkfs.ext4 -q -F -I 256 ";
  CommandResult made = Run({"/bin/sh", "-c",
                            "truncate -s " + std::to_string(size_mb) + "M " + img + " && " + mkfs +
                                img + " && mount -o loop " + img + " " + fs_});
  if (made.exit_code != 0) {
    *why = "cannot make a loop-mounted " + type + " filesystem: " + made.err;
    return false;
  }
  mounted_ = true;
  const std::string run = dir_ / "run";
  mkdir(run.c_str(), 0700);
  setenv("TIERFLOW_RUN_DIR", run.c_str(), 1);
  return true;
}

void Cluster::StartCoordinator(std::vector<std::string> flags) {
  coordinator_flags_ = std::move(flags);
  StartCoordinator();
}

void Cluster::StartCoordinator() {
  coordinator_.reset();
  std::string log = dir_ / ("coordinator." + std::to_string(++coordinator_starts_) + ".log");
  std::vector<std::string> argv{TierflowBinary(), "coordinator", "--listen", address(), "--state", state_};
  argv.insert(argv.end(), coordinator_flags_.begin(), coordinator_flags_.end());
  coordinator_ = std::make_unique<Process>(argv, log);
  bool up = WaitFor([&] { return Client({"status"}).exit_code == 0 || !coordinator_->running(); },
                    std::chrono::seconds(30));
  if (!up || !coordinator_->running()) {
    throw std::runtime_error("coordinator did not start:\n" + coordinator_->Log());
  }
}

void Cluster::KillCoordinator(int sig) {
  if (coordinator_) coordinator_->Stop(sig);
}

Process& Cluster::StartMover(const std::string& id, std::vector<std::string> extra) {
  std::vector<std::string> argv = {TierflowBinary(), "mover",         "--coordinator", address(),
                                   "--id",           id,              "--archive-id",  "1",
                                   "--posix-root",   archive_};
  argv.insert(argv.end(), extra.begin(), extra.end());
  movers_.emplace_back(id, std::make_unique<Process>(argv, dir_ / ("mover-" + id + ".log")));
  return *movers_.back().second;
}

void Cluster::KillMover(const std::string& id, int sig) {
  for (auto& [mid, m] : movers_) {
    if (mid == id) m->Stop(sig);
  }
}

CommandResult Cluster::Client(std::vector<std::string> args) {
  std::vector<std::string> argv = {TierflowBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, std::chrono::seconds(300), {"TIERFLOW_COORDINATOR=" + address()});
}

std::string Cluster::Logs() const {
  std::string out;
  if (coordinator_) out += "--- coordinator ---\n" + coordinator_->Log();
  for (const auto& [id, m] : movers_) out += "--- mover " + id + " ---\n" + m->Log();
  return out;
}

}  // namespace tierflow::testing
