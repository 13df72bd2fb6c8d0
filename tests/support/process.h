// Real processes for cross-process tests: start `tierflow` subcommands, capture their output,
// signal and reap them; run a command to completion; wait on conditions with deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace tierflow::testing {

// The tierflow binary under test (set by CMake).
std::string TierflowBinary();

// A child process whose stdout and stderr go to one log file. Killed (SIGKILL) on destruction.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Sends `sig` and waits (up to `timeout`) for exit; returns the wait status or -1 on timeout.
  int Stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv to completion with the given environment additions (KEY=VALUE), up to `timeout`.
CommandResult Run(const std::vector<std::string>& argv,
                  std::chrono::seconds timeout = std::chrono::seconds(300),
                  const std::vector<std::string>& env = {});

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tierflow::testing
