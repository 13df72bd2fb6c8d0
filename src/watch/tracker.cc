// The dirty tracker's thread: reads the file-id group in batches, coalesces the events of each
// file, examines every modified file once per batch (opened by handle, never by path, so a
// rename cannot fool it) and reports last unlinks.
#include "watch/tracker.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "common/log.h"
#include "mover/fs/local_fs.h"
#include "watch/fanotify.h"

namespace tierflow::watch {
namespace {

constexpr size_t kReadBuffer = 64 << 10;

// One file of a batch: the filesystem it is on and its kernel handle.
struct HandleKey {
  std::string fsid;
  int32_t type = 0;
  std::string handle;
  bool operator<(const HandleKey& o) const {
    return std::tie(fsid, type, handle) < std::tie(o.fsid, o.type, o.handle);
  }
};

std::string ProcName(int fd) {
  std::string link = fmt::format("/proc/self/fd/{}", fd);
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : link;
}

class TrackerImpl final : public Tracker {
 public:
  TrackerImpl(TrackerOptions options, UniqueFd group, UniqueFd mount_fd, UniqueFd wake)
      : options_(std::move(options)),
        group_(std::move(group)),
        mount_fd_(std::move(mount_fd)),
        wake_(std::move(wake)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TrackerImpl() override { Stop(); }

  TrackerStats Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  bool Settle(int64_t timeout_ms) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return false;
    const uint64_t ticket = ++requested_;
    Wake();
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      return settled_ >= ticket || stopping_;
    }) && settled_ >= ticket;
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      Wake();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Wake() {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
  }

  void Run() {
    std::vector<char> buf(kReadBuffer);
    for (;;) {
      pollfd fds[2] = {{group_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
        spdlog::error("tracker on {}: poll failed: {}; dirty tracking stopped", options_.mount,
                      std::strerror(errno));
        break;
      }
      uint64_t drained;
      if (fds[1].revents & POLLIN) (void)!::read(wake_.get(), &drained, sizeof(drained));
      uint64_t target;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
        target = requested_;  // every Settle up to here asked before this drain began
      }
      Drain(buf);
      {
        std::lock_guard<std::mutex> lock(mu_);
        settled_ = std::max(settled_, target);
      }
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }

  // Reads and handles batches until the group has nothing queued.
  void Drain(std::vector<char>& buf) {
    for (;;) {
      if (Stopping()) return;
      ssize_t n = ::read(group_.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        spdlog::error("tracker on {}: reading events failed: {}", options_.mount,
                      n < 0 ? std::strerror(errno) : "end of file");
        Count(&TrackerStats::errors);
        return;
      }
      auto events = ParseFidEvents(std::string_view(buf.data(), static_cast<size_t>(n)));
      if (!events.ok()) {
        spdlog::error("tracker on {}: {}", options_.mount, events.status().ToString());
        Count(&TrackerStats::errors);
        continue;
      }
      HandleBatch(*events);
    }
  }

  void HandleBatch(const std::vector<FidEvent>& events) {
    std::set<HandleKey> modified, deleted;
    for (const FidEvent& ev : events) {
      Count(&TrackerStats::events);
      if (ev.mask & FAN_Q_OVERFLOW) {
        Count(&TrackerStats::overflows);
        spdlog::warn(
            "tracker on {}: the kernel's event queue overflowed; some modified files may not show "
            "dirty until release checks them",
            options_.mount);
        continue;
      }
      if (ev.handle.empty()) continue;
      HandleKey key{ev.fsid, ev.handle_type, ev.handle};
      if (ev.mask & FAN_DELETE_SELF) {
        deleted.insert(key);
      } else if (ev.mask & (FAN_MODIFY | FAN_CLOSE_WRITE)) {
        modified.insert(std::move(key));
      }
    }
    for (const HandleKey& key : modified) {
      if (!deleted.contains(key)) Examine(key);
    }
    for (const HandleKey& key : deleted) Deleted(key);
  }

  // Sets dirty on the file of `key` if it is archived and changed since.
  void Examine(const HandleKey& key) {
    Count(&TrackerStats::checked);
    // O_PATH first: opening a FIFO or device for real could block or act on the device.
    auto path_fd = OpenByHandle(mount_fd_.get(), key.type, key.handle, O_PATH);
    if (!path_fd.ok()) {
      if (path_fd.status().code() != Code::kNotFound) Failed("", path_fd.status());
      return;  // deleted since: nothing to mark
    }
    struct stat st;
    if (::fstat(path_fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    const std::string name = ProcName(path_fd->get());
    // O_NONBLOCK: a lease holder (a release punching the file) makes the open fail instead of
    // stalling the tracker; release checks the stamp itself.
    UniqueFd fd(::open(fmt::format("/proc/self/fd/{}", path_fd->get()).c_str(),
                       O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno != ENOENT) Failed(name, Status::FromErrno(errno, "opening " + name));
      return;
    }
    auto marked = mover::MarkDirtyIfChanged(fd.get(), name);
    if (!marked.ok()) return Failed(name, marked.status());
    if (*marked) {
      Count(&TrackerStats::marked_dirty);
      spdlog::info("tracker: {} changed since it was archived; marked dirty", name);
    }
  }

  void Deleted(const HandleKey& key) {
    if (!options_.remove_archive_on_last_unlink || !options_.on_deleted) return;
    auto fid = FidFromHandle(key.type, key.handle);
    if (!fid.ok()) return Failed("a deleted file", fid.status());
    Count(&TrackerStats::deleted);
    options_.on_deleted(hsm::FileId{key.fsid, *fid});
  }

  void Failed(const std::string& name, const Status& st) {
    Count(&TrackerStats::errors);
    spdlog::warn("tracker on {}: cannot examine {}: {}", options_.mount,
                 name.empty() ? "a modified file" : name, st.ToString());
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  void Count(uint64_t TrackerStats::*field) {
    std::lock_guard<std::mutex> lock(mu_);
    ++(stats_.*field);
  }

  const TrackerOptions options_;
  UniqueFd group_;
  UniqueFd mount_fd_;
  UniqueFd wake_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t requested_ = 0;  // Settle tickets handed out
  uint64_t settled_ = 0;    // tickets whose events are all handled
  TrackerStats stats_;
};

}  // namespace

Result<std::unique_ptr<Tracker>> Tracker::Start(const TrackerOptions& options) {
  if (options.remove_archive_on_last_unlink && !options.on_deleted) {
    return Status(Code::kInvalidArgument,
                  "remove_archive_on_last_unlink is on but no on_deleted callback is set");
  }
  auto fstype = CheckWatchableFilesystem(options.mount);
  if (!fstype.ok()) return fstype.status();
  UniqueFd mount_fd(::open(options.mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd.valid())
    return Status::FromErrno(errno, "opening the watched mount " + options.mount);
  auto group = InitFidGroup(/*nonblocking=*/true);
  if (!group.ok()) return group.status();
  uint64_t mask = FAN_MODIFY | FAN_CLOSE_WRITE;
  if (options.remove_archive_on_last_unlink) mask |= FAN_DELETE_SELF;
  TF_RETURN_IF_ERROR(MarkFilesystemFid(group->get(), options.mount, mask));
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return Status::FromErrno(errno, "creating the tracker's wakeup eventfd");
  return std::unique_ptr<Tracker>(
      new TrackerImpl(options, std::move(*group), std::move(mount_fd), std::move(wake)));
}

}  // namespace tierflow::watch
