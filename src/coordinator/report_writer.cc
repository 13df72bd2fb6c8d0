// Report files: lines queued by the loop, appended and expired by the writer thread.
#include "coordinator/report_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "hsm/fid.h"

namespace tierflow::coordinator {

namespace {

constexpr size_t kMaxNameBytes = 255;     // NAME_MAX
constexpr size_t kMaxWarnedNames = 1024;  // unsafe names remembered, so each is warned once

std::string FidText(const v1::FileRef& f) {
  return hsm::Fid{f.seq(), f.oid(), f.ver()}.ToString();
}

size_t CountLines(std::string_view text) { return std::count(text.begin(), text.end(), '\n'); }

// `name` for a log line: at most 64 bytes, control bytes as '?'.
std::string Printable(std::string_view name) {
  std::string out(name.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

std::string ReportLine(const v1::Event& e) {
  const std::string fid = FidText(e.file());
  const std::string& host = e.host().empty() ? e.mover() : e.host();
  switch (e.kind()) {
    case v1::Event::NEW:
      return "new " + fid;
    case v1::Event::ASSIGN:
      return fmt::format("assign {} {}", fid, host);
    case v1::Event::SENT:
      return fmt::format("sent {} {}", fid, host);
    case v1::Event::PROGRESS:
      return fmt::format("progress {} {} {}/{}", fid, host, e.bytes_done(), e.bytes_total());
    case v1::Event::DONE:
      return fmt::format("done {} {}", fid, e.status());
    case v1::Event::CANCEL:
      return "cancel " + fid;
    default:
      return fmt::format("event{} {}", static_cast<int>(e.kind()), fid);
  }
}

bool ReportWriter::SafeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '/' || u < 0x20 || u == 0x7f;
  });
}

Result<std::unique_ptr<ReportWriter>> ReportWriter::Open(const std::string& dir, int64_t quiet_us,
                                                         Clock* clock) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(Code::kIo, fmt::format("cannot create the report directory {}: {}; create it, "
                                         "fix its permissions or choose another report dir",
                                         dir, ec.message()));
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(Code::kIo,
                  fmt::format("cannot open the report directory {}: {}; it must be a directory "
                              "the coordinator can write, or choose another report dir",
                              dir, std::strerror(err)),
                  err);
  }
  if (::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
    const int err = errno;
    ::close(fd);
    return Status(Code::kPermissionDenied,
                  fmt::format("the report directory {} is not writable: {}; fix its permissions "
                              "or choose another report dir",
                              dir, std::strerror(err)),
                  err);
  }
  return std::unique_ptr<ReportWriter>(new ReportWriter(dir, fd, quiet_us, clock));
}

ReportWriter::ReportWriter(std::string dir, int dir_fd, int64_t quiet_us, Clock* clock)
    : dir_(std::move(dir)), dir_fd_(dir_fd), quiet_us_(quiet_us), clock_(clock) {
  AdoptLeftovers();
  thread_ = std::thread([this] { Run(); });
}

// Report files a stopped coordinator left behind are kept as if last written now: a job still
// running appends to its file again, the others are removed once quiet. Only regular files
// with a name a hint value could have are taken; anything else in the directory is left alone.
void ReportWriter::AdoptLeftovers() {
  const int fd = ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
  if (d == nullptr) {
    if (fd >= 0) ::close(fd);
    spdlog::warn("cannot list the report directory {}: {}; files left by an earlier run stay",
                 dir_, std::strerror(errno));
    return;
  }
  const int64_t now = clock_->NowMicros();
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    struct stat st {};
    if (!SafeName(name) || ::fstatat(dir_fd_, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode)) {
      continue;
    }
    last_line_us_.emplace(name, now);
  }
  ::closedir(d);
  if (!last_line_us_.empty()) {
    spdlog::info("report directory {}: {} files from an earlier run, removed once quiet", dir_,
                 last_line_us_.size());
  }
}

ReportWriter::~ReportWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  ::close(dir_fd_);
}

void ReportWriter::Add(std::string_view name, std::string_view line) {
  if (!SafeName(name)) {
    ++unsafe_lines_;
    if (warned_.size() < kMaxWarnedNames && warned_.emplace(name).second) {
      spdlog::warn(
          "reporting hint value '{}' is not a safe file name (empty, '.', '..', longer than {} "
          "bytes, or with '/' or a control character); its requests get no report file",
          Printable(name), kMaxNameBytes);
    }
    return;
  }
  if (backlog_bytes_.load(std::memory_order_relaxed) + turn_bytes_ + line.size() + 1 >
      kMaxBacklogBytes) {
    ++lines_dropped_;  // the writer is stuck; Failed() has said why
    return;
  }
  std::string& text = turn_[std::string(name)];
  text.append(line);
  text.push_back('\n');
  turn_bytes_ += line.size() + 1;
}

void ReportWriter::Flush() {
  if (turn_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, text] : turn_) {
      auto [it, inserted] = pending_.try_emplace(name, std::move(text));
      if (!inserted) it->second += text;
    }
    backlog_bytes_ += turn_bytes_;
  }
  cv_.notify_one();
  turn_.clear();
  turn_bytes_ = 0;
}

void ReportWriter::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t want = ++sync_wanted_;
  cv_.notify_one();
  sync_cv_.wait(lock, [&] { return sync_done_ >= want || exited_; });
}

ReportWriter::Stats ReportWriter::stats() const {
  Stats s;
  s.lines_written = lines_written_.load();
  s.lines_dropped = lines_dropped_.load();
  s.write_errors = write_errors_.load();
  s.unsafe_lines = unsafe_lines_.load();
  s.files_removed = files_removed_.load();
  return s;
}

void ReportWriter::Run() {
  pthread_setname_np(pthread_self(), "tf-reports");
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    auto ready = [&] { return stop_ || !pending_.empty() || sync_wanted_ > sync_done_; };
    if (last_line_us_.empty()) {
      cv_.wait(lock, ready);
    } else {
      cv_.wait_for(lock, NextSweepDelay(), ready);
    }
    std::unordered_map<std::string, std::string> batch;
    batch.swap(pending_);
    const uint64_t want = sync_wanted_;
    const bool stop = stop_;
    lock.unlock();
    size_t bytes = 0;
    for (const auto& [name, text] : batch) {
      bytes += text.size();
      Append(name, text);
    }
    backlog_bytes_ -= bytes;
    if (!stop) Sweep(clock_->NowMicros());
    lock.lock();
    sync_done_ = want;
    sync_cv_.notify_all();
    if (stop && pending_.empty()) break;
  }
  exited_ = true;
  sync_cv_.notify_all();
}

bool ReportWriter::Append(const std::string& name, const std::string& text) {
  const int fd =
      ::openat(dir_fd_, name.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    Failed(name, "opening", errno, CountLines(text));
    return false;
  }
  last_line_us_[name] = clock_->NowMicros();
  const off_t before = ::lseek(fd, 0, SEEK_END);
  size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  // A half-written batch would leave a cut line that later lines are appended to.
  if (err != 0 && before >= 0) (void)::ftruncate(fd, before);
  ::close(fd);
  if (err != 0) {
    Failed(name, "writing", err, CountLines(text));
    return false;
  }
  lines_written_ += CountLines(text);
  if (failing_) {
    spdlog::info("report files in {} are written again", dir_);
    failing_ = false;
  }
  return true;
}

void ReportWriter::Failed(const std::string& name, std::string_view what, int err, size_t lines) {
  ++write_errors_;
  lines_dropped_ += lines;
  if (failing_) return;  // said once per failing spell
  failing_ = true;
  spdlog::warn(
      "report file {}/{}: {} failed: {}; report lines are dropped until a write succeeds (free "
      "space or fix the permissions of {})",
      dir_, name, what, std::strerror(err), dir_);
}

void ReportWriter::Sweep(int64_t now_us) {
  for (auto it = last_line_us_.begin(); it != last_line_us_.end();) {
    if (now_us - it->second < quiet_us_) {
      ++it;
      continue;
    }
    if (::unlinkat(dir_fd_, it->first.c_str(), 0) == 0) {
      ++files_removed_;
    } else if (errno != ENOENT) {
      spdlog::warn("cannot remove quiet report file {}/{}: {}", dir_, it->first,
                   std::strerror(errno));
    }
    it = last_line_us_.erase(it);
  }
}

std::chrono::microseconds ReportWriter::NextSweepDelay() const {
  const int64_t now = clock_->NowMicros();
  int64_t next = INT64_MAX;
  for (const auto& [name, last] : last_line_us_) next = std::min(next, last + quiet_us_);
  // Bounded, so a clock that moves unlike the thread's sleep (a test clock) is looked at again.
  return std::chrono::microseconds(std::clamp<int64_t>(next - now, 0, 60'000'000));
}

}  // namespace tierflow::coordinator
