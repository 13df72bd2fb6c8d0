// Cluster: real coordinator and mover processes for cross-process tests.
#include "support/cluster.h"

#include <signal.h>
#include <sys/stat.h>

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
}

void Cluster::StartCoordinator() {
  coordinator_.reset();
  std::string log = dir_ / ("coordinator." + std::to_string(++coordinator_starts_) + ".log");
  coordinator_ = std::make_unique<Process>(
      std::vector<std::string>{TierflowBinary(), "coordinator", "--listen", address(), "--state", state_},
      log);
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
