// The holder's event loop; see holder.h. One thread (the caller of Run) owns every member but
// the stats (under stats_mu_) and the stop eventfd; Stop() only writes that eventfd.
#include "watch/holder.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "common/log.h"
#include "hsm/hsm_state.h"
#include "mover/fs/local_fs.h"
#include "watch/fanotify.h"
#include "watch/filesystem_id.h"
#include "watch/holder_protocol.h"

namespace tierflow::watch {
namespace {

constexpr size_t kEventBufferSize = 64 << 10;
constexpr int kMaxMessagesPerWakeup = 64;

bool WouldBlock(const Status& st) { return st.sys_errno() == EAGAIN; }

bool IsReleased(const mover::FileState& s) {
  return s.has_record && (s.record.states & hsm::kStateReleased) != 0;
}

// Every pending event holds a descriptor; a busy filesystem may hold many.
void RaiseDescriptorLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Creates the socket's directory (mode 0700) if it is missing.
Status MakeSocketDir(const std::string& socket_path) {
  std::filesystem::path dir = std::filesystem::path(socket_path).parent_path();
  if (dir.empty()) return Status::Ok();
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::Ok();
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "creating the holder's socket directory " + dir.string());
  }
  return Status::Ok();
}

// Whether something listens on `path` (a stale socket file refuses the connection).
bool SomeoneListens(const sockaddr_un& addr) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return false;
  return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

struct Client {
  UniqueFd sock;
  pid_t pid = 0;
  bool hello = false;
  Role role = Role::kPass;
  std::deque<uint64_t> outq;  // tokens still to send (watcher only)
};

struct Pending {
  UniqueFd fd;
  EventMsg msg;
  std::string path;
};

class HolderImpl final : public Holder {
 public:
  HolderImpl(std::string mount, std::string fsid, std::string socket_path)
      : mount_(std::move(mount)), fsid_(std::move(fsid)), socket_path_(std::move(socket_path)) {}
  ~HolderImpl() override { Shutdown(); }

  Status Init();
  void Run() override;
  void Stop() override {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
  }
  HolderStats Stats() override {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
  }
  const std::string& fsid() const override { return fsid_; }
  const std::string& socket_path() const override { return socket_path_; }

 private:
  template <typename F>
  void Count(F f) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    f(stats_);
    stats_.pending = pending_.size();
    stats_.watcher_connected = watcher_ != 0;
  }

  bool FilesystemGone() const;
  void ReadEvents();
  void HandleEvent(PermissionEvent ev);
  bool Trusted(pid_t pid) const;
  void Answer(int fd, int error, const std::string& path);
  void Accept();
  void ServeClient(uint64_t id);
  void HandleHello(uint64_t id, Client& c, const HelloMsg& hello);
  void HandleAnswer(const AnswerMsg& answer);
  void Flush(uint64_t id);
  void DropClient(uint64_t id, const std::string& why);
  void Shutdown();

  const std::string mount_;
  const std::string fsid_;
  const std::string socket_path_;
  const pid_t self_ = ::getpid();
  UniqueFd lock_;
  UniqueFd group_;
  UniqueFd listen_;
  UniqueFd stop_fd_;
  UniqueFd mountinfo_;
  bool listening_ = false;  // socket_path_ is ours to unlink
  bool stopping_ = false;
  std::map<uint64_t, Client> clients_;
  uint64_t next_client_ = 1;
  uint64_t watcher_ = 0;                 // client id, 0 = none
  std::map<uint64_t, Pending> pending_;  // by token, so a new watcher gets them in order
  uint64_t next_token_ = 1;
  std::mutex stats_mu_;
  HolderStats stats_;
};

Status HolderImpl::Init() {
  auto addr = HolderSocketAddress(socket_path_);
  if (!addr.ok()) return addr.status();
  TF_RETURN_IF_ERROR(MakeSocketDir(socket_path_));

  // The lock settles races between holders starting at once; the probe finds a live one that
  // does not lock (and tells a stale socket file from a live one).
  std::string lock_path = socket_path_ + ".lock";
  lock_ = UniqueFd(::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  if (!lock_.valid()) return Status::FromErrno(errno, "opening the holder lock " + lock_path);
  std::string already = fmt::format(
      "a holder already watches the filesystem of {} (fsid {}, socket {}); stop it first", mount_,
      fsid_, socket_path_);
  if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status(Code::kAlreadyExists, already);
    return Status::FromErrno(errno, "locking " + lock_path);
  }
  if (SomeoneListens(*addr)) return Status(Code::kAlreadyExists, already);

  RaiseDescriptorLimit();
  auto group = InitPreContentGroup(/*nonblocking=*/true);
  if (!group.ok()) return group.status();
  group_ = std::move(*group);
  TF_RETURN_IF_ERROR(MarkFilesystemPreAccess(group_.get(), mount_));

  listen_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_.valid()) return Status::FromErrno(errno, "creating the holder socket");
  if (::unlink(socket_path_.c_str()) == 0) {
    spdlog::info("holder: replaced the stale socket {}", socket_path_);
  }
  if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return Status::FromErrno(errno, "binding the holder socket " + socket_path_);
  }
  listening_ = true;
  if (::chmod(socket_path_.c_str(), 0600) != 0) {
    return Status::FromErrno(errno, "setting the mode of " + socket_path_);
  }
  if (::listen(listen_.get(), 64) != 0) {
    return Status::FromErrno(errno, "listening on " + socket_path_);
  }
  stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.valid()) return Status::FromErrno(errno, "creating the holder's stop eventfd");
  mountinfo_ = UniqueFd(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!mountinfo_.valid()) return Status::FromErrno(errno, "opening /proc/self/mountinfo");
  return Status::Ok();
}

bool HolderImpl::FilesystemGone() const {
  auto now = FilesystemIdOf(mount_);
  return !now.ok() || *now != fsid_;
}

void HolderImpl::Run() {
  spdlog::info("holder: watching {} (fsid {}), listening on {}", mount_, fsid_, socket_path_);
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  while (group_.valid()) {
    fds.clear();
    ids.clear();
    fds.push_back({stop_fd_.get(), POLLIN, 0});
    fds.push_back({mountinfo_.get(), POLLPRI, 0});
    fds.push_back({group_.get(), POLLIN, 0});
    fds.push_back({listen_.get(), POLLIN, 0});
    for (const auto& [id, c] : clients_) {
      fds.push_back({c.sock.get(), static_cast<short>(POLLIN | (c.outq.empty() ? 0 : POLLOUT)), 0});
      ids.push_back(id);
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("holder: poll failed: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) {
      spdlog::info("holder: stopping");
      break;
    }
    if (fds[1].revents != 0 && FilesystemGone()) {
      spdlog::info("holder: {} (fsid {}) is no longer mounted; exiting", mount_, fsid_);
      break;
    }
    if (fds[2].revents != 0) ReadEvents();
    if (fds[3].revents != 0) Accept();
    for (size_t i = 0; i < ids.size(); ++i) {
      short rev = fds[4 + i].revents;
      if (rev == 0 || clients_.count(ids[i]) == 0) continue;
      if ((rev & POLLOUT) != 0) Flush(ids[i]);
      if ((rev & (POLLIN | POLLHUP | POLLERR)) != 0 && clients_.count(ids[i]) != 0) {
        ServeClient(ids[i]);
      }
    }
  }
  Shutdown();
}

void HolderImpl::ReadEvents() {
  std::vector<char> buf(kEventBufferSize);
  for (;;) {
    ssize_t n = ::read(group_.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      // EMFILE/ENFILE: the kernel could not open the event's file and denied that access.
      if (errno != EAGAIN) {
        spdlog::error("holder: reading fanotify events of {}: {}", mount_, std::strerror(errno));
      }
      return;
    }
    if (n == 0) return;
    auto events = ParsePermissionEvents(std::string_view(buf.data(), static_cast<size_t>(n)));
    if (!events.ok()) {
      spdlog::error("holder: fanotify events of {} are malformed: {}", mount_,
                    events.status().ToString());
      continue;
    }
    for (PermissionEvent& ev : *events) HandleEvent(std::move(ev));
  }
}

bool HolderImpl::Trusted(pid_t pid) const {
  if (pid == self_) return true;
  for (const auto& [id, c] : clients_) {
    if (c.hello && c.pid == pid) return true;
  }
  return false;
}

void HolderImpl::Answer(int fd, int error, const std::string& path) {
  Status st = Respond(group_.get(), fd, error);
  if (!st.ok()) spdlog::warn("holder: answering the access to {}: {}", path, st.ToString());
}

// Trusted or not, a resident file gets an ignore mark, so later accesses stay in the kernel;
// among them a release's punch, which must raise no event: it runs under the releaser's own
// write lease, which the event's descriptor cannot be opened against (see fanotify.h).
// The record is read again once the mark is in place, so a release that wrote "released" in
// between cannot leave a released file ignored: its punch comes after the mark and clears it.
void HolderImpl::HandleEvent(PermissionEvent ev) {
  Count([](HolderStats& s) { ++s.events; });
  if (!ev.fd.valid()) {
    spdlog::warn("holder: fanotify event without a file on {} (mask {:#x})", mount_, ev.mask);
    return;
  }
  int fd = ev.fd.get();
  bool trusted = Trusted(ev.pid);
  auto state = mover::GetFileStateOfFd(fd, "an accessed file");
  bool released = state.ok() && IsReleased(*state);
  bool marked = false;
  if (state.ok() && !released) {
    Status mark = AddIgnoreMark(group_.get(), fd);
    marked = mark.ok();
    if (!marked) spdlog::debug("holder: {}: {}", PathOfFd(fd), mark.ToString());
    auto again = mover::GetFileStateOfFd(fd, "an accessed file");
    if (marked && (!again.ok() || IsReleased(*again))) {
      (void)RemoveIgnoreMark(group_.get(), fd);
      marked = false;
      released = again.ok();
      if (!again.ok()) state = again.status();
    }
  }
  if (trusted || (state.ok() && !released)) {
    Count([&](HolderStats& s) {
      ++(trusted ? s.allowed_trusted : s.allowed_resident);
      if (marked) ++s.ignore_marks;
    });
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("holder: allowed pid {} ({}) on {}", ev.pid,
                    trusted ? "trusted" : "resident file", PathOfFd(fd));
    }
    Answer(fd, 0, "a file");
    return;
  }
  std::string path = PathOfFd(fd);
  if (!state.ok()) {
    spdlog::warn("holder: denying pid {} access to {}: its HSM record cannot be read: {}", ev.pid,
                 path, state.status().ToString());
    Count([](HolderStats& s) { ++s.denied; });
    Answer(fd, EIO, path);
    return;
  }
  uint64_t token = next_token_++;
  EventMsg msg{token, ev.mask, ev.pid, ev.has_range, ev.offset, ev.count};
  spdlog::debug("holder: pid {} waits for released {} (event {}, offset {} count {})", ev.pid, path,
                token, ev.offset, ev.count);
  pending_.emplace(token, Pending{std::move(ev.fd), msg, std::move(path)});
  Count([](HolderStats&) {});
  if (watcher_ != 0 && !stopping_) {
    clients_[watcher_].outq.push_back(token);
    Flush(watcher_);
  }
}

void HolderImpl::Accept() {
  for (;;) {
    UniqueFd sock(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!sock.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN)
        spdlog::warn("holder: accept on {}: {}", socket_path_, std::strerror(errno));
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("holder: reading the peer of a connection: {}", std::strerror(errno));
      continue;
    }
    if (cred.uid != 0) {
      spdlog::warn("holder: refused a connection from uid {} (pid {})", cred.uid, cred.pid);
      (void)SendMessage(sock.get(), RefusedMsg{"only root may connect to the holder"});
      continue;
    }
    uint64_t id = next_client_++;
    clients_[id] = Client{std::move(sock), cred.pid, false, Role::kPass, {}};
  }
}

void HolderImpl::ServeClient(uint64_t id) {
  for (int i = 0; i < kMaxMessagesPerWakeup; ++i) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = it->second;
    auto got = ReceiveMessage(c.sock.get());
    if (!got.ok()) {
      if (WouldBlock(got.status())) return;
      DropClient(id, got.status().ToString());
      return;
    }
    if (auto* hello = std::get_if<HelloMsg>(&got->msg)) {
      HandleHello(id, c, *hello);
    } else if (auto* answer = std::get_if<AnswerMsg>(&got->msg); answer && id == watcher_) {
      HandleAnswer(*answer);
    } else {
      DropClient(id, "it sent a message out of turn");
      return;
    }
  }
}

void HolderImpl::HandleHello(uint64_t id, Client& c, const HelloMsg& hello) {
  if (c.hello) {
    DropClient(id, "it said hello twice");
    return;
  }
  if (hello.role == Role::kWatcher && watcher_ != 0) {
    pid_t other = clients_[watcher_].pid;
    spdlog::warn("holder: refused a second watcher (pid {}); pid {} watches", c.pid, other);
    (void)SendMessage(c.sock.get(),
                      RefusedMsg{fmt::format("a watcher is already connected (pid {})", other)});
    DropClient(id, "");
    return;
  }
  Status st = SendMessage(c.sock.get(), WelcomeMsg{fsid_, mount_});
  if (!st.ok()) {
    DropClient(id, st.ToString());
    return;
  }
  c.hello = true;
  c.role = hello.role;
  if (hello.role == Role::kPass) {
    spdlog::debug("holder: pass for pid {}", c.pid);
    return;
  }
  watcher_ = id;
  for (const auto& [token, p] : pending_) c.outq.push_back(token);
  spdlog::info("holder: watcher connected (pid {}); {} events pending", c.pid, pending_.size());
  Count([](HolderStats&) {});
  Flush(id);
}

void HolderImpl::HandleAnswer(const AnswerMsg& answer) {
  auto it = pending_.find(answer.token);
  if (it == pending_.end()) {
    spdlog::debug("holder: answer for unknown event {}", answer.token);
    return;
  }
  Pending p = std::move(it->second);
  pending_.erase(it);
  Count([](HolderStats& s) { ++s.answered; });
  spdlog::debug("holder: event {} on {} answered {}", answer.token, p.path,
                answer.error == 0 ? std::string("allow") : std::strerror(answer.error));
  Answer(p.fd.get(), answer.error, p.path);
}

void HolderImpl::Flush(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  while (!c.outq.empty()) {
    auto p = pending_.find(c.outq.front());
    if (p == pending_.end()) {
      c.outq.pop_front();
      continue;
    }
    Status st = SendMessage(c.sock.get(), p->second.msg, p->second.fd.get());
    if (!st.ok()) {
      if (!WouldBlock(st)) DropClient(id, st.ToString());
      return;  // POLLOUT resumes
    }
    c.outq.pop_front();
    Count([](HolderStats& s) { ++s.forwarded; });
  }
}

void HolderImpl::DropClient(uint64_t id, const std::string& why) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  const Client& c = it->second;
  if (id == watcher_) {
    watcher_ = 0;
    spdlog::info("holder: watcher (pid {}) disconnected ({}); {} events wait for the next one",
                 c.pid, why, pending_.size());
  } else if (c.hello) {
    spdlog::debug("holder: pass for pid {} ended", c.pid);
  } else if (!why.empty() && why.find("closed") == std::string::npos) {
    spdlog::warn("holder: dropped a client (pid {}): {}", c.pid, why);
  }
  clients_.erase(it);
  Count([](HolderStats&) {});
}

void HolderImpl::Shutdown() {
  if (group_.valid()) {
    // Decide what is already queued (no forwarding any more), then deny what waits: from the
    // moment the group closes the kernel allows every access, so nothing may stay pending.
    stopping_ = true;
    ReadEvents();
    if (!pending_.empty()) {
      spdlog::info("holder: denying {} waiting accesses with EIO", pending_.size());
    }
    for (auto& [token, p] : pending_) {
      Count([](HolderStats& s) { ++s.denied; });
      Answer(p.fd.get(), EIO, p.path);
    }
    pending_.clear();
    group_.Reset();
    spdlog::info("holder: {} is no longer watched", mount_);
  }
  clients_.clear();
  watcher_ = 0;
  Count([](HolderStats&) {});
  if (listening_) {
    ::unlink(socket_path_.c_str());
    listening_ = false;
  }
  listen_.Reset();
}

}  // namespace

Result<std::unique_ptr<Holder>> Holder::Start(const HolderOptions& options) {
  auto type = CheckWatchableFilesystem(options.mount);
  if (!type.ok()) return type.status();
  std::error_code ec;
  std::string mount = std::filesystem::canonical(options.mount, ec).string();
  if (ec) return Status::FromErrno(ec.value(), "resolving " + options.mount);
  auto fsid = FilesystemIdOf(mount);
  if (!fsid.ok()) return fsid.status();
  std::string socket_path =
      options.socket_path.empty() ? HolderSocketPath(*fsid) : options.socket_path;
  auto holder = std::make_unique<HolderImpl>(mount, *fsid, socket_path);
  Status st = holder->Init();
  if (!st.ok()) return st.Annotate("starting the holder of " + mount);
  spdlog::info("holder: {} ({}, fsid {}) is watched", mount, *type, *fsid);
  return std::unique_ptr<Holder>(std::move(holder));
}

}  // namespace tierflow::watch
