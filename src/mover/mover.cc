// Mover runtime: the coordinator stream (session thread reads, writer thread writes), the table
// of actions in hand, and one worker thread per running action.
//
// Threads and ownership:
//  - session thread: connects, says Hello, reads Welcome/ActionBatch/CancelActions, reconnects
//    with backoff when the stream breaks.
//  - writer thread: the only writer of the stream after Hello; sends every ready result and the
//    latest progress as one Reports message.
//  - workers: one detached thread per running action; counted in live_workers_ so that Shutdown
//    waits for all of them before the object goes away.
// Everything below mu_ is shared; the blocking calls (Read, Write, the copy) run without it.
#include "mover/mover.h"

#include <fmt/ranges.h>
#include <grpcpp/grpcpp.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/log.h"
#include "coordinator/limits.h"
#include "wire/convert.h"
#include "mover/action_runner.h"
#include "mover/backends/posix_backend.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::mover {

namespace {

constexpr int64_t kMaxReconnectDelayMs = 5000;
constexpr int kMaxResultsPerMessage = 1000;
constexpr uint32_t kProtocolVersion = 1;
constexpr auto kFlushOnShutdown = std::chrono::seconds(2);
constexpr auto kCloseTimeout = std::chrono::seconds(1);

enum Kind { kArchive = 0, kRestore = 1, kRemove = 2, kNumKinds = 3 };

int KindOf(v1::Action a) {
  switch (a) {
    case v1::ARCHIVE:
      return kArchive;
    case v1::RESTORE:
      return kRestore;
    case v1::REMOVE:
      return kRemove;
    default:
      return -1;
  }
}

const char* KindFlag(int kind) {
  static const char* kFlags[] = {"--max-archive", "--max-restore", "--max-remove"};
  return kFlags[kind];
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

// The coordinator refuses a Result whose error text passes 16 KiB (and ends the stream):
// keep the start of a longer one.
v1::Result Bounded(v1::Result result) {
  constexpr std::string_view kCut = " [truncated]";
  if (result.error().size() > coordinator::limits::kMaxErrorBytes) {
    std::string* e = result.mutable_error();
    e->resize(coordinator::limits::kMaxErrorBytes - kCut.size());
    e->append(kCut);
  }
  return result;
}

using Key = std::pair<uint64_t, uint64_t>;  // (request id, epoch)

// Two actions on one file never run at once.
using FileKey = hsm::FileId;
FileKey FileOf(const v1::ActionItem& item) { return wire::FileIdFromProto(item.file()); }

// One action in hand: queued for a slot, running on a worker, or done and not yet reported.
struct Task {
  v1::ActionItem item;
  int kind = 0;
  std::atomic<bool> cancel{false};
  bool running = false;
  bool dropped = false;              // the coordinator no longer wants it: discard its result
  bool canceled = false;             // the coordinator canceled it: report ECANCELED
  bool sending = false;              // its result is in a Write right now
  bool sent = false;                 // its result was written; waiting for the coordinator's ack
  bool acked = false;                // acknowledged while its Write was still returning
  std::optional<v1::Result> result;  // set when done; the task leaves the table once acked
  int64_t last_progress_ms = 0;

  Key key() const { return {item.id(), item.epoch()}; }
};
using TaskPtr = std::shared_ptr<Task>;

class MoverImpl final : public Mover {
 public:
  MoverImpl(MoverOptions options, std::shared_ptr<ArchiveBackend> backend)
      : options_(std::move(options)), backend_(std::move(backend)) {
    max_[kArchive] = options_.max_archive;
    max_[kRestore] = options_.max_restore;
    max_[kRemove] = options_.max_remove;
  }
  ~MoverImpl() override {
    Shutdown();
    if (action_log_fd_ >= 0) ::close(action_log_fd_);
  }

  Status OpenActionLog() {
    if (options_.action_log.empty()) return Status::Ok();
    action_log_fd_ = ::open(options_.action_log.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (action_log_fd_ < 0) {
      return Status::FromErrno(errno, "opening the action log " + options_.action_log +
                                          " (--action-log)");
    }
    return Status::Ok();
  }

  void StartThreads() {
    session_thread_ = std::thread([this] { SessionLoop(); });
    writer_thread_ = std::thread([this] { WriterLoop(); });
  }

  void Wait() override {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return shut_down_; });
  }

  void Shutdown() override;

  MoverCounts Counts() override {
    std::lock_guard lk(mu_);
    MoverCounts c;
    for (int k = 0; k < kNumKinds; ++k) {
      c.queued += static_cast<int>(queued_[k].size());
      c.running += running_[k];
    }
    for (const auto& [key, t] : tasks_) c.unreported += (t->result && !t->dropped) ? 1 : 0;
    c.connected = stream_ != nullptr;
    return c;
  }

 private:
  // ---- session (session thread) ----
  bool Stopping() {
    std::lock_guard lk(mu_);
    return stop_session_;
  }
  void SessionLoop();
  bool RunSession();
  v1::MoverMessage BuildHelloLocked() const;
  void HandleWelcome(const v1::Welcome& w);
  void HandleBatch(const v1::ActionBatch& batch);
  void HandleCancel(const v1::CancelActions& cancel);
  void HandleAcks(const v1::ResultAcks& acks);
  void HandlePing(const v1::Ping& ping);
  void EndStream(grpc::ClientContext* ctx);
  void CloseStreamLocked(std::unique_lock<std::mutex>& lk);

  // ---- reports (writer thread) ----
  void WriterLoop();
  bool HasReportsLocked() const;
  bool HasUnackedLocked() const;
  v1::MoverMessage TakeReportsLocked(std::vector<TaskPtr>* taken);

  // ---- tasks (any thread, mu_ held where it says Locked) ----
  void StartQueuedLocked(int kind);
  void FinishWithoutRunningLocked(const TaskPtr& t, const Status& status);
  void RunTask(TaskPtr t);
  void OnProgress(const TaskPtr& t, uint64_t done, uint64_t total);
  void ForgetLocked(const TaskPtr& t);
  void LogOutcome(const Task& t, const ActionOutcome& out, int64_t elapsed_us) const;
  void AppendActionLog(const Task& t, const v1::Result& result) const;
  Status ShutdownStatus(const Task& t) const;

  const MoverOptions options_;
  const std::shared_ptr<ArchiveBackend> backend_;
  std::array<int32_t, kNumKinds> max_{};

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, TaskPtr> tasks_;
  std::array<std::deque<TaskPtr>, kNumKinds> queued_;
  std::array<int32_t, kNumKinds> running_{};
  std::set<FileKey> busy_files_;  // files with an action running
  std::map<Key, v1::Progress> progress_;
  std::optional<uint64_t> pong_;  // a Ping to answer
  int action_log_fd_ = -1;
  int live_workers_ = 0;
  grpc::ClientContext* ctx_ = nullptr;  // the current call, to cancel it
  grpc::ClientReaderWriter<v1::MoverMessage, v1::CoordinatorMessage>* stream_ =
      nullptr;  // set once welcomed
  bool writer_busy_ = false;
  bool stopping_ = false;      // Shutdown began: take no new work
  bool stop_session_ = false;  // stop (re)connecting
  bool stop_writer_ = false;
  bool shut_down_ = false;
  std::once_flag shutdown_once_;

  std::thread session_thread_;
  std::thread writer_thread_;
};

// ---------------------------------------------------------------------------------------------
// Session

void MoverImpl::SessionLoop() {
  int64_t delay = std::max<int64_t>(options_.reconnect_delay_ms, 1);
  while (true) {
    bool welcomed = RunSession();
    std::unique_lock lk(mu_);
    if (stop_session_) return;
    if (welcomed) delay = std::max<int64_t>(options_.reconnect_delay_ms, 1);
    spdlog::debug("mover {}: reconnecting to {} in {} ms", options_.id, options_.coordinator,
                  delay);
    cv_.wait_for(lk, std::chrono::milliseconds(delay), [&] { return stop_session_; });
    if (stop_session_) return;
    delay = std::min(delay * 2, kMaxReconnectDelayMs);
  }
}

// One stream, from Hello until it breaks. Returns whether the coordinator welcomed us.
bool MoverImpl::RunSession() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_delay_ms));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_delay_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kMaxReconnectDelayMs));
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel =
      grpc::CreateCustomChannel(options_.coordinator, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::Coordinator::NewStub(channel);
  grpc::ClientContext ctx;
  v1::MoverMessage hello;
  {
    std::lock_guard lk(mu_);
    if (stop_session_) return false;
    ctx_ = &ctx;
    hello = BuildHelloLocked();
  }
  auto stream = stub->MoverSession(&ctx);
  bool welcomed = false;
  if (stream->Write(hello)) {
    v1::CoordinatorMessage msg;
    while (stream->Read(&msg)) {
      if (msg.has_welcome()) {
        HandleWelcome(msg.welcome());
        std::lock_guard lk(mu_);
        stream_ = stream.get();
        welcomed = true;
        cv_.notify_all();
      } else if (msg.has_batch()) {
        HandleBatch(msg.batch());
      } else if (msg.has_cancel()) {
        HandleCancel(msg.cancel());
      } else if (msg.has_acks()) {
        HandleAcks(msg.acks());
      } else if (msg.has_ping()) {
        HandlePing(msg.ping());
      }
    }
  }
  EndStream(&ctx);
  grpc::Status st = stream->Finish();
  if (Stopping()) {
    spdlog::debug("mover {}: stream to {} closed", options_.id, options_.coordinator);
  } else if (st.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    spdlog::info(
        "mover {}: the coordinator at {} still holds an older session for this id ({}); "
        "retrying",
        options_.id, options_.coordinator, st.error_message());
  } else if (welcomed) {
    spdlog::warn(
        "mover {}: lost the stream to the coordinator at {} ({}); keeping the actions in "
        "hand and reconnecting",
        options_.id, options_.coordinator, st.error_message());
  } else {
    spdlog::debug("mover {}: cannot reach the coordinator at {}: {}", options_.id,
                  options_.coordinator, st.error_message());
  }
  return welcomed;
}

// Detaches the writer from a stream that ended, waiting out a Write in progress.
void MoverImpl::EndStream(grpc::ClientContext* ctx) {
  ctx->TryCancel();
  std::unique_lock lk(mu_);
  stream_ = nullptr;
  cv_.wait(lk, [&] { return !writer_busy_; });
  ctx_ = nullptr;
  cv_.notify_all();
}

v1::MoverMessage MoverImpl::BuildHelloLocked() const {
  v1::MoverMessage m;
  v1::Hello* h = m.mutable_hello();
  h->set_id(options_.id);
  h->set_host(options_.host);
  for (uint32_t a : options_.archive_ids) h->add_archive_ids(a);
  v1::Capacities* c = h->mutable_capacities();
  c->set_max_archive(options_.max_archive);
  c->set_max_restore(options_.max_restore);
  c->set_max_remove(options_.max_remove);
  c->set_max_bytes(options_.max_bytes);
  h->set_protocol(kProtocolVersion);
  for (const auto& [key, t] : tasks_) {
    if (t->dropped) continue;
    v1::InHand* ih = h->add_in_hand();
    ih->set_id(key.first);
    ih->set_epoch(key.second);
  }
  return m;
}

void MoverImpl::HandleWelcome(const v1::Welcome& w) {
  std::lock_guard lk(mu_);
  pong_.reset();
  // Results written on an earlier session but never acknowledged go out again: the
  // coordinator may have died before making them durable. It acknowledges and ignores one it
  // already has.
  for (auto& [key, t] : tasks_) t->sent = false;
  int dropped = 0;
  for (const v1::InHand& d : w.drop()) {
    auto it = tasks_.find({d.id(), d.epoch()});
    if (it == tasks_.end()) continue;
    TaskPtr t = it->second;
    t->dropped = true;
    t->cancel = true;
    ++dropped;
    if (!t->running) ForgetLocked(t);  // queued or done: nothing more to do
  }
  spdlog::info(
      "mover {}: connected to the coordinator at {} (session {}, {} in hand kept, {} "
      "dropped)",
      options_.id, options_.coordinator, w.session(), w.keep_size(), dropped);
}

void MoverImpl::HandleBatch(const v1::ActionBatch& batch) {
  std::lock_guard lk(mu_);
  std::array<bool, kNumKinds> touched{};
  for (const v1::ActionItem& in : batch.items()) {
    int kind = KindOf(in.action());
    if (kind < 0) {
      spdlog::debug("mover {}: ignoring {} item {} in a batch (cancels come as CancelActions)",
                    options_.id, v1::Action_Name(in.action()), in.id());
      continue;
    }
    auto t = std::make_shared<Task>();
    t->item = in;
    t->kind = kind;
    if (t->item.archive_id() == 0) t->item.set_archive_id(batch.archive_id());
    if (t->item.flags() == 0) t->item.set_flags(batch.flags());
    if (!tasks_.emplace(t->key(), t).second) {
      spdlog::warn("mover {}: action {} epoch {} is already in hand; ignoring the duplicate",
                   options_.id, in.id(), in.epoch());
      continue;
    }
    if (stopping_) {
      FinishWithoutRunningLocked(t, ShutdownStatus(*t));
      continue;
    }
    queued_[kind].push_back(t);
    touched[kind] = true;
  }
  for (int k = 0; k < kNumKinds; ++k) {
    if (touched[k]) StartQueuedLocked(k);
  }
}

void MoverImpl::HandleCancel(const v1::CancelActions& cancel) {
  std::lock_guard lk(mu_);
  for (const v1::InHand& c : cancel.items()) {
    for (auto it = tasks_.lower_bound({c.id(), 0}); it != tasks_.end() && it->first.first == c.id();
         ++it) {
      TaskPtr t = it->second;
      if (c.epoch() != 0 && t->item.epoch() != c.epoch()) continue;
      if (t->result.has_value()) continue;  // already done: its result stands
      t->cancel = true;
      t->canceled = true;
      if (t->running) continue;  // the copy sees the flag and stops
      auto& q = queued_[t->kind];
      q.erase(std::remove(q.begin(), q.end(), t), q.end());
      FinishWithoutRunningLocked(t, Status(Code::kCanceled, "canceled before it started"));
    }
  }
}

// The coordinator has made these results durable (or ignored them): forget the actions.
void MoverImpl::HandleAcks(const v1::ResultAcks& acks) {
  std::lock_guard lk(mu_);
  for (const v1::InHand& a : acks.items()) {
    auto it = tasks_.find({a.id(), a.epoch()});
    if (it == tasks_.end()) continue;
    TaskPtr t = it->second;
    if (!t->result.has_value()) continue;
    if (t->sending) {
      t->acked = true;  // the writer forgets it once its Write returns
      continue;
    }
    ForgetLocked(t);
  }
  cv_.notify_all();
}

// Answered under mu_ by the writer: a mover whose lock is stuck does not answer.
void MoverImpl::HandlePing(const v1::Ping& ping) {
  std::lock_guard lk(mu_);
  pong_ = ping.seq();
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Reports

void MoverImpl::WriterLoop() {
  std::unique_lock lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return stop_writer_ || (stream_ != nullptr && HasReportsLocked()); });
    if (stop_writer_) return;
    std::vector<TaskPtr> taken;
    v1::MoverMessage msg;
    if (pong_.has_value()) {
      msg.mutable_pong()->set_seq(*pong_);
      pong_.reset();
    } else {
      msg = TakeReportsLocked(&taken);
    }
    auto* stream = stream_;
    writer_busy_ = true;
    lk.unlock();
    bool ok = stream->Write(msg);
    lk.lock();
    writer_busy_ = false;
    for (const TaskPtr& t : taken) {
      t->sending = false;
      if (!ok) continue;
      t->sent = true;  // kept until acknowledged
      if (t->acked) ForgetLocked(t);
    }
    cv_.notify_all();
  }
}

bool MoverImpl::HasReportsLocked() const {
  if (!progress_.empty() || pong_.has_value()) return true;
  for (const auto& [key, t] : tasks_) {
    if (t->result.has_value() && !t->sending && !t->sent && !t->dropped) return true;
  }
  return false;
}

bool MoverImpl::HasUnackedLocked() const {
  for (const auto& [key, t] : tasks_) {
    if (t->result.has_value() && !t->dropped) return true;
  }
  return false;
}

v1::MoverMessage MoverImpl::TakeReportsLocked(std::vector<TaskPtr>* taken) {
  v1::MoverMessage m;
  v1::Reports* r = m.mutable_reports();
  for (auto& [key, p] : progress_) *r->add_progress() = p;
  progress_.clear();
  for (const auto& [key, t] : tasks_) {
    if (!t->result.has_value() || t->sending || t->sent || t->dropped) continue;
    if (r->results_size() >= kMaxResultsPerMessage) break;
    *r->add_results() = *t->result;
    t->sending = true;
    taken->push_back(t);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Tasks

// Starts queued actions of `kind` while it has free slots, in arrival order, passing over
// actions whose file is busy with another action (e.g. a dropped one still stopping).
void MoverImpl::StartQueuedLocked(int kind) {
  auto& q = queued_[kind];
  if (max_[kind] == 0) {
    while (!q.empty()) {
      TaskPtr t = q.front();
      q.pop_front();
      FinishWithoutRunningLocked(
          t, Status(Code::kUnavailable, "mover " + options_.id + " runs no " +
                                            v1::Action_Name(t->item.action()) + " actions (" +
                                            KindFlag(kind) + " 0)"));
    }
    return;
  }
  for (auto it = q.begin(); it != q.end() && (max_[kind] < 0 || running_[kind] < max_[kind]);) {
    TaskPtr t = *it;
    const FileKey file = FileOf(t->item);
    if (busy_files_.count(file)) {
      ++it;
      continue;
    }
    it = q.erase(it);
    busy_files_.insert(file);
    t->running = true;
    ++running_[kind];
    ++live_workers_;
    std::thread([this, t] { RunTask(t); }).detach();
  }
}

void MoverImpl::FinishWithoutRunningLocked(const TaskPtr& t, const Status& status) {
  ActionOutcome out{
      status.Annotate(v1::Action_Name(t->item.action()) + " " + wire::PathFromProto(t->item.file())), 0};
  LogOutcome(*t, out, 0);
  t->result = Bounded(MakeResult(t->item, out));
  AppendActionLog(*t, *t->result);
  if (t->dropped) ForgetLocked(t);
  cv_.notify_all();
}

void MoverImpl::RunTask(TaskPtr t) {
  CopyControl ctl;
  ctl.cancel = &t->cancel;
  ctl.progress = [this, t](uint64_t done, uint64_t total) { OnProgress(t, done, total); };
  ctl.max_bytes_per_sec = options_.max_bytes_per_sec;
  const auto start = std::chrono::steady_clock::now();
  ActionOutcome out;
  Status prepared = options_.prepare_filesystem ? options_.prepare_filesystem(t->item.file().fsid())
                                                : Status::Ok();
  if (prepared.ok()) {
    out = RunAction(t->item, *backend_, ctl);
  } else {
    out.status = Status(Code::kUnavailable, prepared.message());
  }
  const int64_t elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count();
  std::lock_guard lk(mu_);
  if (stopping_ && out.status.code() == Code::kCanceled && !t->canceled) {
    out.status = ShutdownStatus(*t);
  }
  LogOutcome(*t, out, elapsed_us);
  t->running = false;
  --running_[t->kind];
  --live_workers_;
  busy_files_.erase(FileOf(t->item));
  v1::Result result = Bounded(MakeResult(t->item, out));
  AppendActionLog(*t, result);
  if (t->dropped) {
    ForgetLocked(t);
  } else {
    t->result = std::move(result);
  }
  if (!stopping_) {
    for (int k = 0; k < kNumKinds; ++k) StartQueuedLocked(k);  // the file may unblock any kind
  }
  cv_.notify_all();
}

void MoverImpl::OnProgress(const TaskPtr& t, uint64_t done, uint64_t total) {
  const int64_t now = NowMs();
  std::lock_guard lk(mu_);
  if (t->dropped || now - t->last_progress_ms < options_.progress_interval_ms) return;
  t->last_progress_ms = now;
  v1::Progress& p = progress_[t->key()];
  p.set_id(t->item.id());
  p.set_epoch(t->item.epoch());
  p.set_bytes_done(done);
  p.set_bytes_total(total);
  cv_.notify_all();
}

void MoverImpl::ForgetLocked(const TaskPtr& t) {
  auto it = tasks_.find(t->key());
  if (it != tasks_.end() && it->second == t) tasks_.erase(it);
  progress_.erase(t->key());
  auto& q = queued_[t->kind];
  q.erase(std::remove(q.begin(), q.end(), t), q.end());
}

Status MoverImpl::ShutdownStatus(const Task& t) const {
  return Status(Code::kUnavailable, "mover " + options_.id +
                                        " is shutting down; the action will be given to a mover "
                                        "again");
}

void MoverImpl::LogOutcome(const Task& t, const ActionOutcome& out, int64_t elapsed_us) const {
  const v1::FileRef& f = t.item.file();
  const std::string fid = wire::FileIdFromProto(f).fid.ToString();
  if (out.status.ok()) {
    spdlog::info("{} {} {} id={} bytes={} duration={:.3f}s ok", v1::Action_Name(t.item.action()),
                 fid, wire::PathFromProto(f), t.item.id(), out.bytes, elapsed_us / 1e6);
  } else {
    spdlog::info("{} {} {} id={} bytes={} duration={:.3f}s failed: {}",
                 v1::Action_Name(t.item.action()), fid, wire::PathFromProto(f), t.item.id(),
                 out.bytes,
                 elapsed_us / 1e6, out.status.ToString());
  }
}

// One line per finished action, written before its result can be sent:
// "<wall_us> <mover id> <request id> <epoch> <ACTION> <fid> <errno>". An audit trail of what
// ran where; a request with two success lines ran twice.
void MoverImpl::AppendActionLog(const Task& t, const v1::Result& result) const {
  if (action_log_fd_ < 0) return;
  const std::string line = fmt::format(
      "{} {} {} {} {} {} {}\n",
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count(),
      options_.id, t.item.id(), t.item.epoch(), v1::Action_Name(t.item.action()),
      wire::FileIdFromProto(t.item.file()).fid.ToString(), result.error_code());
  // O_APPEND: one write per line keeps lines whole between movers sharing the file.
  if (::write(action_log_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    spdlog::warn("mover {}: cannot write the action log {}: {}", options_.id,
                 options_.action_log, strerror(errno));
  }
}

// Cancels what runs (reporting it as retryable so the coordinator gives it to a mover again),
// waits for the workers, flushes the results for a short while, then closes the stream.
void MoverImpl::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    std::unique_lock lk(mu_);
    stopping_ = true;
    for (auto& q : queued_) {
      while (!q.empty()) {
        TaskPtr t = q.front();
        q.pop_front();
        FinishWithoutRunningLocked(t, ShutdownStatus(*t));
      }
    }
    for (auto& [key, t] : tasks_) t->cancel = true;
    cv_.wait(lk, [&] { return live_workers_ == 0; });
    // Results go out and are acknowledged, or wait in hand for the next start to report
    // them (a restarted mover does not keep them: its actions are requeued after the grace).
    cv_.wait_for(lk, kFlushOnShutdown,
                 [&] { return stream_ == nullptr || (!HasUnackedLocked() && !writer_busy_); });
    stop_session_ = true;
    stop_writer_ = true;
    cv_.notify_all();
    CloseStreamLocked(lk);
    lk.unlock();
    if (session_thread_.joinable()) session_thread_.join();
    if (writer_thread_.joinable()) writer_thread_.join();
    lk.lock();
    shut_down_ = true;
    cv_.notify_all();
    spdlog::info("mover {}: stopped", options_.id);
  });
}

// Half-closes a live stream so that the coordinator reads everything sent and ends the call
// (a cancel could overtake the last results); cancels the call if it does not end in time.
void MoverImpl::CloseStreamLocked(std::unique_lock<std::mutex>& lk) {
  auto* stream = stream_;
  if (stream != nullptr && !writer_busy_) {
    writer_busy_ = true;  // keeps EndStream from finishing the call under our WritesDone
    lk.unlock();
    stream->WritesDone();
    lk.lock();
    writer_busy_ = false;
    cv_.notify_all();
    cv_.wait_for(lk, kCloseTimeout, [&] { return ctx_ == nullptr; });
  }
  if (ctx_ != nullptr) ctx_->TryCancel();
}

Status CheckOptions(const MoverOptions& o) {
  if (o.coordinator.empty())
    return Status(Code::kInvalidArgument, "no coordinator address; pass --coordinator HOST:PORT");
  if (o.posix_root.empty() && o.backend == nullptr)
    return Status(Code::kInvalidArgument, "no archive root; pass --posix-root DIR");
  if (o.archive_ids.empty())
    return Status(Code::kInvalidArgument, "the mover serves no archive id; pass --archive-id N");
  for (uint32_t a : o.archive_ids) {
    if (a == 0)
      return Status(Code::kInvalidArgument, "archive id 0 is not valid; archive ids start at 1");
  }
  for (int32_t m : {o.max_archive, o.max_restore, o.max_remove}) {
    if (m < -1)
      return Status(Code::kInvalidArgument, "capacity " + std::to_string(m) +
                                                " is not valid; use -1 for unlimited or N >= 0");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Mover>> Mover::Start(const MoverOptions& options) {
  MoverOptions o = options;
  if (o.host.empty()) o.host = HostName();
  if (o.id.empty()) o.id = o.host;
  TF_RETURN_IF_ERROR(CheckOptions(o));
  std::shared_ptr<ArchiveBackend> backend = o.backend;
  if (backend == nullptr) {
    PosixBackendOptions bo;
    bo.root = o.posix_root;
    bo.v2_paths = o.posix_v2;
    bo.progress_interval_ms = o.progress_interval_ms;
    auto posix = PosixBackend::Open(bo);
    if (!posix.ok()) return posix.status().Annotate("mover " + o.id);
    backend = std::move(posix).value();
  }
  auto mover = std::make_unique<MoverImpl>(o, std::move(backend));
  TF_RETURN_IF_ERROR(mover->OpenActionLog());
  mover->StartThreads();
  spdlog::info("mover {}: serving archive ids {} from {} for the coordinator at {}", o.id,
               fmt::join(o.archive_ids, ","), o.posix_root, o.coordinator);
  return std::unique_ptr<Mover>(std::move(mover));
}

}  // namespace tierflow::mover
