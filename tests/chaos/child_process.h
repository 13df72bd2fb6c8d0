// Child processes of the chaos driver: started in their own process group with a parent-death
// signal, so that none outlives the driver, whether it returns, fails or is killed itself.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace tierflow::chaos {

// One `tierflow` process (or any program) whose stdout and stderr are appended to a log file.
// Killed with SIGKILL on destruction. Not thread-safe: one owner thread starts, kills and
// restarts it.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Forks and execs argv; the child gets SIGKILL when the driver dies (PR_SET_PDEATHSIG).
  void Start();
  // SIGKILLs the whole process group and reaps the child. Does nothing when not running.
  void Kill();
  // True while the child has not exited. Reaps it when it has; exit_status() then tells how.
  bool Running();
  std::string ExitDescription() const;
  const std::string& log_path() const { return log_path_; }

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
  int status_ = 0;
};

// Installs handlers for SIGINT, SIGTERM and SIGHUP that SIGKILL every running child's process
// group, then let the driver die of the signal.
void KillChildrenOnTerminationSignals();

}  // namespace tierflow::chaos
