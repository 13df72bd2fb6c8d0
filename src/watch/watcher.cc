// The watcher's connection loop and per-file restore grouping; see watcher.h. One thread owns
// the connection and every event; restore completions reach it through an inbox (a queue and
// an eventfd), so `done` may run on any thread, also after the watcher is gone.
#include "watch/watcher.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <thread>

#include "common/log.h"
#include "hsm/hsm_state.h"
#include "mover/fs/local_fs.h"
#include "watch/fanotify.h"
#include "watch/filesystem_id.h"
#include "watch/holder_protocol.h"

namespace tierflow::watch {
namespace {

constexpr int64_t kConnectTimeoutMs = 5000;
constexpr int64_t kMaxReconnectDelayMs = 2000;
// A holder that was started but never answered is started again after this long.
constexpr int64_t kRespawnAfterMs = 10000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool IsReleased(const mover::FileState& s) {
  return s.has_record && (s.record.states & hsm::kStateReleased) != 0;
}

// Starts `argv` detached: in its own session, stdin from /dev/null, stdout and stderr kept, no
// other inherited descriptor (it must not pin the watched filesystem), cwd "/".
void SpawnDetached(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    spdlog::error("watcher: cannot start the holder: fork: {}", std::strerror(errno));
    return;
  }
  if (child == 0) {
    // Only async-signal-safe calls from here: the parent has other threads.
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    if (::chdir("/") != 0) ::_exit(127);
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::close_range(3, ~0U, 0);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

// Restore completions, posted from any thread. Shared with every `done` callback so that a
// late callback after the watcher stopped still has somewhere harmless to post.
class Inbox {
 public:
  struct Done {
    hsm::FileId file;
    uint64_t restore = 0;
    Status status;
  };
  Inbox() : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  bool valid() const { return efd_.valid(); }
  int fd() const { return efd_.get(); }
  void Post(Done d) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(d));
    }
    Wake();
  }
  void Wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(efd_.get(), &one, sizeof(one));
  }
  std::vector<Done> Take() {
    uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(efd_.get(), &v, sizeof(v));
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(queue_, {});
  }

 private:
  UniqueFd efd_;
  std::mutex mu_;
  std::vector<Done> queue_;
};

class WatcherImpl final : public Watcher {
 public:
  WatcherImpl(WatcherOptions options, std::string socket_path)
      : options_(std::move(options)), socket_path_(std::move(socket_path)) {}
  ~WatcherImpl() override { Stop(); }

  Status Begin() {
    if (!inbox_->valid()) return Status::FromErrno(errno, "creating the watcher's eventfd");
    thread_ = std::thread([this] { Main(); });
    return Status::Ok();
  }
  bool WaitConnected(int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return stats_.connected; });
  }
  WatcherStats Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void Stop() override {
    stop_ = true;
    inbox_->Wake();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Waiting {
    uint64_t token = 0;
    UniqueFd fd;
  };
  // One restore in flight for one file; kept across reconnections (the holder resends the
  // events, which then join it instead of asking again).
  struct Restore {
    uint64_t id = 0;
    std::string path;
    std::vector<Waiting> events;
  };

  template <typename F>
  void Count(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(stats_);
    cv_.notify_all();
  }

  void Main();
  void Serve(UniqueFd sock);
  // Waits up to `ms` for a stop or restore completions (handled); false once stopping.
  bool Pause(int64_t ms);
  void HandleEvent(const EventMsg& ev, UniqueFd fd);
  void HandleDone(Inbox::Done done);
  void Answer(uint64_t token, int error);
  void DropEvents();

  const WatcherOptions options_;
  const std::string socket_path_;
  const pid_t self_ = ::getpid();
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  WatcherStats stats_;
  // Watcher thread only.
  UniqueFd sock_;
  bool broken_ = false;
  std::map<hsm::FileId, Restore> restores_;
  uint64_t next_restore_ = 1;
};

void WatcherImpl::Main() {
  int64_t delay = std::max<int64_t>(options_.reconnect_delay_ms, 1);
  int64_t last_spawn = INT64_MIN / 2;
  bool told = false;
  while (!stop_) {
    WelcomeMsg welcome;
    auto sock = ConnectToHolder(socket_path_, Role::kWatcher, kConnectTimeoutMs, &welcome);
    if (sock.ok()) {
      spdlog::info("watcher: connected to the holder of {} (fsid {}) at {}", welcome.mount,
                   welcome.fsid, socket_path_);
      delay = std::max<int64_t>(options_.reconnect_delay_ms, 1);
      told = false;
      Serve(std::move(*sock));
      if (!stop_) spdlog::warn("watcher: lost the holder at {}; reconnecting", socket_path_);
      Pause(delay);
      continue;
    }
    const Status& st = sock.status();
    bool spawn = st.code() == Code::kNotFound && !options_.holder_command.empty() &&
                 NowMs() - last_spawn >= kRespawnAfterMs;
    if (spawn) {
      spdlog::info("watcher: no holder listens on {}; starting one: {}", socket_path_,
                   fmt::join(options_.holder_command, " "));
      SpawnDetached(options_.holder_command);
      last_spawn = NowMs();
    } else if (!told) {
      spdlog::warn("watcher: {}; retrying", st.ToString());
      told = true;
    } else {
      spdlog::debug("watcher: {}; retrying", st.ToString());
    }
    if (!Pause(delay)) break;
    delay = std::min(delay * 2, kMaxReconnectDelayMs);
  }
}

bool WatcherImpl::Pause(int64_t ms) {
  int64_t deadline = NowMs() + ms;
  while (!stop_) {
    int64_t left = deadline - NowMs();
    if (left <= 0) return true;
    pollfd p{inbox_->fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) > 0) {
      for (Inbox::Done& d : inbox_->Take()) HandleDone(std::move(d));
    }
  }
  return false;
}

void WatcherImpl::Serve(UniqueFd sock) {
  sock_ = std::move(sock);
  broken_ = false;
  Count([](WatcherStats& s) { s.connected = true; });
  while (!stop_ && !broken_) {
    pollfd fds[2] = {{inbox_->fd(), POLLIN, 0}, {sock_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("watcher: poll failed: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) {
      for (Inbox::Done& d : inbox_->Take()) HandleDone(std::move(d));
    }
    if (fds[1].revents == 0 || stop_ || broken_) continue;
    auto got = ReceiveMessage(sock_.get());
    if (!got.ok()) {
      spdlog::debug("watcher: {}", got.status().ToString());
      break;
    }
    if (auto* ev = std::get_if<EventMsg>(&got->msg)) {
      HandleEvent(*ev, std::move(got->fd));
    } else {
      spdlog::warn("watcher: the holder at {} sent an unexpected message; reconnecting",
                   socket_path_);
      break;
    }
  }
  // The holder keeps every unanswered event and resends it to the next watcher.
  DropEvents();
  sock_.Reset();
  Count([](WatcherStats& s) { s.connected = false; });
}

void WatcherImpl::DropEvents() {
  for (auto& [id, r] : restores_) r.events.clear();
}

void WatcherImpl::Answer(uint64_t token, int error) {
  Count([&](WatcherStats& s) { ++(error == 0 ? s.allowed : s.denied); });
  if (broken_ || !sock_.valid()) return;
  Status st = SendMessage(sock_.get(), AnswerMsg{token, error});
  if (!st.ok()) {
    spdlog::warn("watcher: answering the holder at {}: {}", socket_path_, st.ToString());
    broken_ = true;
  }
}

void WatcherImpl::HandleEvent(const EventMsg& ev, UniqueFd fd) {
  Count([](WatcherStats& s) { ++s.events; });
  if (!fd.valid()) {
    spdlog::warn("watcher: event {} came without a file; denying it", ev.token);
    Answer(ev.token, EIO);
    return;
  }
  if (ev.pid == self_) {
    Answer(ev.token, 0);
    return;
  }
  std::string path = PathOfFd(fd.get());
  auto state = mover::GetFileStateOfFd(fd.get(), path);
  if (!state.ok()) {
    spdlog::warn("watcher: denying pid {} access to {}: {}", ev.pid, path,
                 state.status().ToString());
    Answer(ev.token, EIO);
    return;
  }
  if (!IsReleased(*state)) {
    spdlog::debug("watcher: {} is resident again; allowing pid {}", path, ev.pid);
    Answer(ev.token, 0);
    return;
  }
  auto it = restores_.find(state->id);
  if (it != restores_.end()) {
    spdlog::debug("watcher: pid {} joins the restore of {}", ev.pid, it->second.path);
    it->second.events.push_back({ev.token, std::move(fd)});
    return;
  }
  constexpr std::string_view kDeleted = " (deleted)";
  if (!path.starts_with("/") || path.ends_with(kDeleted)) {
    spdlog::warn(
        "watcher: {} is released and no longer has a name; it cannot be restored, "
        "denying pid {} with EIO",
        path, ev.pid);
    Answer(ev.token, EIO);
    return;
  }
  uint64_t rid = next_restore_++;
  Restore& r = restores_[state->id];
  r.id = rid;
  r.path = path;
  r.events.push_back({ev.token, std::move(fd)});
  Count([](WatcherStats& s) { ++s.restores; });
  spdlog::info("watcher: pid {} accesses released {}; requesting its restore", ev.pid, path);
  std::shared_ptr<Inbox> inbox = inbox_;
  hsm::FileId file = state->id;
  options_.requester->RequestRestore(file, path, state->record.archive_id,
                                     [inbox, file, rid](Status st) {
                                       inbox->Post({file, rid, std::move(st)});
                                     });
}

void WatcherImpl::HandleDone(Inbox::Done done) {
  auto it = restores_.find(done.file);
  if (it == restores_.end() || it->second.id != done.restore) return;
  Restore r = std::move(it->second);
  restores_.erase(it);
  if (!done.status.ok()) {
    spdlog::warn("watcher: restoring {} failed: {}; its readers get EIO", r.path,
                 done.status.ToString());
  } else {
    spdlog::info("watcher: restored {}; {} waiting accesses go on", r.path, r.events.size());
  }
  for (Waiting& w : r.events) {
    auto state = mover::GetFileStateOfFd(w.fd.get(), r.path);
    bool resident = state.ok() && !IsReleased(*state);
    if (!resident && done.status.ok()) {
      spdlog::warn("watcher: the restore of {} ended but the file {}; denying with EIO", r.path,
                   state.ok() ? "is still released" : state.status().ToString());
    }
    Answer(w.token, resident ? 0 : EIO);
  }
}

}  // namespace

Result<std::unique_ptr<Watcher>> Watcher::Start(const WatcherOptions& options,
                                                int64_t wait_connected_ms) {
  if (options.requester == nullptr) {
    return Status(Code::kInvalidArgument, "the watcher of " + options.mount + " has no requester");
  }
  auto type = CheckWatchableFilesystem(options.mount);
  if (!type.ok()) return type.status();
  std::string socket_path = options.socket_path;
  if (socket_path.empty()) {
    auto fsid = FilesystemIdOf(options.mount);
    if (!fsid.ok()) return fsid.status();
    socket_path = HolderSocketPath(*fsid);
  }
  auto w = std::make_unique<WatcherImpl>(options, socket_path);
  TF_RETURN_IF_ERROR(w->Begin());
  if (wait_connected_ms > 0 && !w->WaitConnected(wait_connected_ms)) {
    w->Stop();
    return Status(Code::kUnavailable,
                  fmt::format("no holder for {} answered on {} within {} ms; start one (tierflow "
                              "holder {}) or check its log",
                              options.mount, socket_path, wait_connected_ms, options.mount));
  }
  return std::unique_ptr<Watcher>(std::move(w));
}

Status EnsureHolderPass(const std::string& fsid) {
  static std::mutex mu;
  static auto* passes = new std::map<std::string, UniqueFd>();  // for the life of the process
  std::lock_guard<std::mutex> lock(mu);
  auto it = passes->find(fsid);
  if (it != passes->end()) {
    // The holder never writes to a pass: anything readable means it closed.
    pollfd p{it->second.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) return Status::Ok();
    passes->erase(it);
  }
  std::string path = HolderSocketPath(fsid);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();  // no holder watches fsid
  auto sock = ConnectToHolder(path, Role::kPass, kConnectTimeoutMs);
  if (!sock.ok()) {
    if (sock.status().code() == Code::kNotFound) return Status::Ok();  // stale socket file
    return sock.status().Annotate("getting a pass from the holder of filesystem " + fsid);
  }
  (*passes)[fsid] = std::move(*sock);
  return Status::Ok();
}

}  // namespace tierflow::watch
