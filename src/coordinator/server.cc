// The coordinator process: state directory, SQLite journal, store thread, loop, gRPC server.
#include "coordinator/server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>

#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "coordinator/events.h"
#include "coordinator/limits.h"
#include "coordinator/service.h"
#include "coordinator/writer_sink.h"
#include "store/journal_writer.h"
#include "store/sqlite/sqlite_journal.h"

namespace tierflow::coordinator {
namespace {

// Holds an exclusive flock on STATE_DIR/coordinator.lock, so two coordinators never share a
// journal.
Result<int> LockStateDir(const std::string& dir) {
  std::string path = dir + "/coordinator.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "opening " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status(Code::kBusy, fmt::format("state directory {} is in use by another "
                                             "coordinator; stop it or choose another state "
                                             "directory",
                                             dir));
    }
    return Status::FromErrno(err, "locking " + path);
  }
  return fd;
}

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(const ServerOptions& options) : options_(options) {}
  ~ServerImpl() override { Shutdown(); }

  Status Init();
  int port() const override { return port_; }
  void Wait() override;
  void Shutdown() override;

 private:
  void OnQuit();

  const ServerOptions options_;
  int lock_fd_ = -1;
  std::unique_ptr<store::SqliteJournal> journal_;
  std::unique_ptr<store::JournalWriter> writer_;
  std::unique_ptr<WriterSink> sink_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<EventHub> events_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;           // guarded by mu_
  bool shutting_down_ = false;  // guarded by mu_
  bool shut_down_ = false;      // guarded by mu_
};

Status ServerImpl::Init() {
  if (options_.state_dir.empty()) {
    return Status(Code::kInvalidArgument,
                  "no state directory given; pass --state-dir DIR (it holds journal.db)");
  }
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir, ec);
  if (ec) {
    return Status(Code::kIo, fmt::format("cannot create state directory {}: {}; create it or fix "
                                         "its permissions",
                                         options_.state_dir, ec.message()));
  }
  auto fd = LockStateDir(options_.state_dir);
  if (!fd.ok()) return fd.status();
  lock_fd_ = *fd;

  auto journal = store::SqliteJournal::Open(options_.state_dir + "/journal.db");
  if (!journal.ok()) return journal.status();
  journal_ = std::move(journal).value();
  auto contents = journal_->Load();
  if (!contents.ok()) return contents.status().Annotate("loading the journal");

  writer_ = std::make_unique<store::JournalWriter>(journal_.get());
  sink_ = std::make_unique<WriterSink>(writer_.get());
  loop_ = std::make_unique<EventLoop>(options_.clock);
  CoordinatorOptions copts;
  copts.clock = options_.clock;
  copts.default_archive_id = options_.default_archive_id;
  copts.mover_grace_us = options_.mover_grace_us;
  copts.final_grace_us = options_.final_grace_us;
  copts.max_attempts = options_.max_attempts;
  copts.retry_delay_us = options_.retry_delay_us;
  copts.no_retry = options_.no_retry;
  copts.active_request_timeout_us = options_.active_request_timeout_us;
  copts.heartbeat_interval_us = options_.heartbeat_interval_us;
  copts.heartbeat_timeout_us = options_.heartbeat_timeout_us;
  copts.max_message_bytes = options_.max_message_bytes;
  TF_RETURN_IF_ERROR(ValidatePolicy(options_.scheduling));
  copts.scheduling = options_.scheduling;
  auto events = EventHub::Create(options_.scheduling.reporting, options_.clock);
  if (!events.ok()) return events.status().Annotate("starting request events");
  events_ = std::move(events).value();
  copts.events = events_.get();
  coordinator_ = std::make_unique<Coordinator>(copts, loop_.get(), sink_.get());
  TF_RETURN_IF_ERROR(coordinator_->Recover(*contents));
  coordinator_->SetQuitHandler([this] { OnQuit(); });
  loop_->Start();

  ServiceOptions sopts;
  sopts.max_wait_streams = options_.max_wait_streams;
  sopts.max_mover_sessions = options_.max_mover_sessions;
  sopts.hello_timeout = std::chrono::milliseconds(options_.hello_timeout_us / 1000);
  sopts.events = events_.get();
  service_ = std::make_unique<CoordinatorService>(loop_.get(), coordinator_.get(), sopts);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  // Headers are bounded too: a call whose metadata is larger is refused by the transport.
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE,
                             static_cast<int>(limits::kMaxMetadataBytes));
  // Detect movers that vanish without closing their connection.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterService(service_.get());
  grpc_ = builder.BuildAndStart();
  if (!grpc_ || port_ == 0) {
    return Status(Code::kUnavailable,
                  fmt::format("cannot listen on {}: the address is malformed or in use; choose "
                              "another --listen HOST:PORT or stop the process using it",
                              options_.listen));
  }
  spdlog::info("coordinator listening on {} (port {}), state in {}", options_.listen, port_,
               options_.state_dir);
  return Status::Ok();
}

void ServerImpl::OnQuit() {
  std::lock_guard<std::mutex> lock(mu_);
  quit_ = true;
  cv_.notify_all();
}

void ServerImpl::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return quit_ || shutting_down_ || shut_down_; });
}

void ServerImpl::Shutdown() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (shutting_down_) {
      cv_.wait(lock, [&] { return shut_down_; });
      return;
    }
    shutting_down_ = true;
    cv_.notify_all();
  }
  if (loop_ && coordinator_) {
    // Refuse new work and end mover streams and waits; assignments stay journaled.
    std::promise<void> closed;
    loop_->Post([&] {
      coordinator_->Shutdown();
      events_->Close(Status(Code::kUnavailable, "the coordinator is shutting down"));
      closed.set_value();
    });
    closed.get_future().wait();
  }
  if (grpc_) grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (writer_) writer_->Flush();
  if (loop_) loop_->Stop();
  writer_.reset();  // completions of late appends are posted to the stopped loop and dropped
  grpc_.reset();
  service_.reset();
  coordinator_.reset();
  events_.reset();  // writes the last report lines
  sink_.reset();
  loop_.reset();
  journal_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto server = std::make_unique<ServerImpl>(options);
  Status st = server->Init();
  if (!st.ok()) return st;
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace tierflow::coordinator
