// Test support for the watch module: a loop-mounted ext4 image per test (never /tmp's own
// filesystem), a private run directory for holder sockets, child processes with captured
// output, released files made with the real mover code, and "child modes" of the test binary
// itself (run as /proc/self/exe --tf-watch-child MODE ...) for tests that need tierflow code in
// another process: a pass client, a holder process. Header-only; tests run as root.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/loop_mount_test_support.h"
#include "mover/fs/local_fs.h"
#include "watch/filesystem_id.h"
#include "watch/holder.h"
#include "watch/watcher.h"

extern char** environ;

namespace tierflow::watch::testing {


inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Polls `pred` until it holds or `timeout_ms` passed; the wait is for a condition, not a time.
inline bool WaitFor(const std::function<bool()>& pred, int64_t timeout_ms = 10000) {
  int64_t deadline = NowMs() + timeout_ms;
  while (!pred()) {
    if (NowMs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

inline void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s[i] = static_cast<char>('a' + x % 26);  // never zero: a zero read is always a bug here
  }
  return s;
}

// A fresh ext4 image mounted on a private directory, plus an archive directory and a run
// directory (TIERFLOW_RUN_DIR) outside it. Unmounted (lazily) and removed at scope exit.
class LoopFs {
 public:
  explicit LoopFs(const std::string& type = "ext4") : loop_(type) {
    if (!loop_.ok()) return;
    run_ = loop_.base() + "/run";
    archive_ = loop_.base() + "/archive";
    std::filesystem::create_directories(archive_);
    ::setenv("TIERFLOW_RUN_DIR", run_.c_str(), 1);
    auto fsid = FilesystemIdOf(loop_.path());
    if (fsid.ok()) fsid_ = *fsid;
    auto backend = mover::PosixBackend::Open({archive_});
    if (backend.ok()) backend_ = std::move(*backend);
  }

  bool ok() const { return loop_.ok() && !fsid_.empty() && backend_ != nullptr; }
  const std::string& mnt() const { return loop_.path(); }
  const std::string& run_dir() const { return run_; }
  const std::string& fsid() const { return fsid_; }
  std::string operator/(const std::string& name) const { return loop_ / name; }
  mover::PosixBackend& backend() { return *backend_; }
  // Unmounts now (a test of what happens then); the destructor then has nothing to undo.
  bool Unmount() { return loop_.Unmount(); }

 private:
  mover::testing::LoopMount loop_;
  std::string run_, archive_, fsid_;
  std::unique_ptr<mover::PosixBackend> backend_;
};

// Retries while the file is busy (an event descriptor of a just-answered access may still be
// open in the holder for a moment: the lease that release takes sees it).
inline Status RetryBusy(const std::function<Status()>& op) {
  Status st;
  int64_t deadline = NowMs() + 10000;
  do {
    st = op();
  } while (st.code() == Code::kBusy && NowMs() < deadline &&
           (std::this_thread::sleep_for(std::chrono::milliseconds(5)), true));
  return st;
}

// Writes `content`, archives it and releases it. The caller's process must be trusted by the
// filesystem's holder, if one runs (the holder's own process, or EnsureHolderPass first).
inline void MakeReleased(LoopFs& fs, const std::string& path, const std::string& content) {
  WriteFile(path, content);
  auto id = mover::IdentifyFile(path);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  Status st = RetryBusy([&] { return mover::ArchiveFile(path, *id, 1, fs.backend(), {}); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  st = RetryBusy([&] { return mover::ReleaseFile(path); });
  ASSERT_TRUE(st.ok()) << st.ToString();
}

inline bool IsReleased(const std::string& path) {
  auto s = mover::GetFileState(path);
  return s.ok() && s->has_record && (s->record.states & hsm::kStateReleased) != 0;
}

// A child process with stdout and stderr captured; killed and reaped at scope exit.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Whether it has exited by now (reaps it if so).
  bool Exited() {
    if (exited_ || pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      status_ = status;
    }
    return exited_;
  }
  // Collects its output until it exits; false if it did not within `timeout_ms`.
  bool Wait(int64_t timeout_ms = 20000) {
    int64_t deadline = NowMs() + timeout_ms;
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      pollfd p[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
      int64_t left = deadline - NowMs();
      if (left <= 0) return false;
      if (::poll(p, 2, static_cast<int>(left)) <= 0) continue;
      Drain(p[0].revents, &out_fd_, &out_);
      Drain(p[1].revents, &err_fd_, &err_);
    }
    while (!Exited()) {
      if (NowMs() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  static void Drain(short revents, int* fd, std::string* into) {
    if (revents == 0) return;
    char buf[1 << 16];
    ssize_t n = ::read(*fd, buf, sizeof(buf));
    if (n > 0) {
      into->append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      ::close(*fd);
      *fd = -1;
    }
  }
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string out_, err_;
};

// `cat PATH` in a child: a reader that is not trusted by the holder.
inline std::unique_ptr<Child> Cat(const std::string& path) {
  return std::make_unique<Child>(std::vector<std::string>{"cat", path});
}

// The test binary in a child mode (see RunChildMode).
inline std::unique_ptr<Child> SelfChild(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/proc/self/exe", "--tf-watch-child"};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Child>(argv);
}

// A holder running on its own thread of this process (so this process is trusted).
class HolderThread {
 public:
  explicit HolderThread(const std::string& mount) {
    auto h = Holder::Start({mount, ""});
    status_ = h.status();
    if (!h.ok()) return;
    holder_ = std::move(*h);
    thread_ = std::thread([this] {
      holder_->Run();
      done_ = true;
    });
  }
  ~HolderThread() { Stop(); }
  void Stop() {
    if (holder_) holder_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return holder_ != nullptr; }
  const Status& status() const { return status_; }
  Holder& operator*() { return *holder_; }
  Holder* operator->() { return holder_.get(); }
  bool done() const { return done_; }
  std::thread& thread() { return thread_; }

 private:
  Status status_;
  std::unique_ptr<Holder> holder_;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

// ---- child modes ----

inline int ChildPassRead(const std::string& fsid, const std::string& path) {
  Status st = EnsureHolderPass(fsid);
  if (!st.ok()) {
    std::fprintf(stderr, "pass: %s\n", st.ToString().c_str());
    return 2;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 3;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) {
    if (::write(1, buf, static_cast<size_t>(n)) != n) return 4;
  }
  ::close(fd);
  return n == 0 ? 0 : 5;
}

// A holder process: serves until SIGTERM.
inline int ChildHolder(const std::string& mount) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto h = Holder::Start({mount, ""});
  if (!h.ok()) {
    std::fprintf(stderr, "holder: %s\n", h.status().ToString().c_str());
    return 3;
  }
  Holder* holder = h->get();
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&set, &sig);
    holder->Stop();
  });
  stopper.detach();
  holder->Run();
  return 0;
}

// Runs a child mode if this process was started as one (before main: gtest never sees it).
inline bool RunChildMode() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  if (args.size() < 3 || args[1] != "--tf-watch-child") return false;
  int rc = 99;
  if (args[2] == "pass-read" && args.size() == 5) rc = ChildPassRead(args[3], args[4]);
  if (args[2] == "holder" && args.size() == 4) rc = ChildHolder(args[3]);
  std::fflush(nullptr);
  ::_exit(rc);
}

inline const bool kChildModeChecked = RunChildMode();

}  // namespace tierflow::watch::testing
