// gRPC handlers: check the request against limits.h, post into the coordinator loop, wait for
// the answer, write it back.
#include "coordinator/service.h"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "coordinator/limits.h"

namespace tierflow::coordinator {

using tierflow::Status;

grpc::Status ToGrpcStatus(const Status& status) {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (status.code()) {
    case Code::kOk:
      return grpc::Status::OK;
    case Code::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case Code::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case Code::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case Code::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case Code::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Code::kBusy:
      code = grpc::StatusCode::ABORTED;
      break;
    case Code::kNoSpace:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case Code::kCanceled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case Code::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case Code::kTimeout:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case Code::kCorrupt:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    case Code::kIo:
    case Code::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, status.message());
}

namespace {

const Status kLoopGone(Code::kUnavailable, "coordinator is shutting down; retry after it restarts");

// One of at most `limit` concurrent streams of a kind; released when it goes out of scope.
class Slot {
 public:
  Slot(std::atomic<size_t>* count, size_t limit) : count_(count) {
    taken_ = count_->fetch_add(1) < limit;
    if (!taken_) count_->fetch_sub(1);
  }
  ~Slot() {
    if (taken_) count_->fetch_sub(1);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  bool taken() const { return taken_; }

 private:
  std::atomic<size_t>* const count_;
  bool taken_ = false;
};

grpc::Status TooManyStreams(std::string_view what, size_t limit, std::string_view option) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      fmt::format("the coordinator already has {} {} open, its limit; retry once "
                                  "some have ended, or raise {}",
                                  limit, what, option));
}

std::string_view KindName(const v1::MoverMessage& msg) {
  switch (msg.msg_case()) {
    case v1::MoverMessage::kHello:
      return "a Hello";
    case v1::MoverMessage::kProgress:
      return "a Progress";
    case v1::MoverMessage::kResult:
      return "a Result";
    case v1::MoverMessage::kReports:
      return "a Reports";
    case v1::MoverMessage::kPong:
      return "a Pong";
    case v1::MoverMessage::kCapacities:
      return "a Capacities";
    case v1::MoverMessage::MSG_NOT_SET:
      break;
  }
  return "an empty message";
}

// The bytes of one session's reports posted to the loop and not yet applied. The reader waits
// while the session is over its bound, so a mover flooding its stream is slowed by HTTP/2 flow
// control instead of growing the loop's queue.
class Backlog : public std::enable_shared_from_this<Backlog> {
 public:
  // Gives its bytes back when destroyed: after the report is applied, or dropped by a stopped
  // loop.
  class Credit {
   public:
    Credit(std::shared_ptr<Backlog> backlog, size_t bytes)
        : backlog_(std::move(backlog)), bytes_(bytes) {}
    ~Credit() { backlog_->Release(bytes_); }
    Credit(const Credit&) = delete;
    Credit& operator=(const Credit&) = delete;

   private:
    std::shared_ptr<Backlog> backlog_;
    size_t bytes_;
  };

  // Waits until there is room for `bytes` (a message larger than the bound goes alone), or the
  // call is cancelled.
  std::shared_ptr<Credit> Take(size_t bytes, grpc::ServerContext* context) {
    std::unique_lock<std::mutex> lock(mu_);
    while (pending_ > 0 && pending_ + bytes > limits::kMaxPendingReportBytes &&
           !context->IsCancelled()) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    pending_ += bytes;
    return std::make_shared<Credit>(shared_from_this(), bytes);
  }

 private:
  void Release(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ -= bytes;
    }
    cv_.notify_one();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  size_t pending_ = 0;
};

// Cancels a call unless disarmed within `timeout`: a mover stream that says nothing would
// otherwise hold its session slot (and a thread) forever.
class HelloDeadline {
 public:
  HelloDeadline(grpc::ServerContext* context, std::chrono::milliseconds timeout) {
    thread_ = std::thread([this, context, timeout] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, timeout, [&] { return disarmed_; })) {
        expired_ = true;
        context->TryCancel();
      }
    });
  }
  ~HelloDeadline() { Disarm(); }
  HelloDeadline(const HelloDeadline&) = delete;
  HelloDeadline& operator=(const HelloDeadline&) = delete;

  // Whether it had expired (and cancelled the call) first.
  bool Disarm() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      disarmed_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    return expired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  bool expired_ = false;
  std::thread thread_;
};

// Ends a mover stream that broke the protocol: logged (naming the peer, as the stream may not
// have said who it is), and INVALID_ARGUMENT to the peer.
grpc::Status EndMoverStream(grpc::ServerContext* context, const std::string& who,
                            const Status& why) {
  std::string message = fmt::format("{}; closing this mover stream", why.message());
  spdlog::warn("mover stream from {} ({}): {}", context->peer(), who, message);
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// Runs `fn` on the loop and waits for the reply it passes to its callback.
template <typename T>
Result<T> CallInLoop(EventLoop* loop, std::function<void(Coordinator::Reply<T>)> fn) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  loop->Post([fn = std::move(fn), promise] {
    fn([promise](Result<T> r) { promise->set_value(std::move(r)); });
  });
  try {
    return future.get();
  } catch (const std::future_error&) {
    return kLoopGone;  // the loop stopped before answering
  }
}

// Runs `fn` on the loop and returns its value.
template <typename T>
Result<T> GetInLoop(EventLoop* loop, std::function<Result<T>()> fn) {
  return CallInLoop<T>(loop, [fn = std::move(fn)](Coordinator::Reply<T> done) { done(fn()); });
}

// What the loop hands to one gRPC handler thread: items in order, then the end. Counts the
// bytes it holds (as the producer estimated them), so a producer can stop feeding a client
// that does not read.
template <typename Item>
class Handoff {
 public:
  enum class Next { kItem, kFinished, kIdle };

  void Push(Item item, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bytes_ += bytes;
      items_.emplace_back(std::move(item), bytes);
    }
    cv_.notify_one();
  }
  void End(const Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      status_ = status;
    }
    cv_.notify_one();
  }
  size_t bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
  }
  // Items first, then the end; kIdle after `timeout` with neither.
  Next Pop(Item* item, Status* status, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !items_.empty() || finished_; });
    if (!items_.empty()) {
      *item = std::move(items_.front().first);
      bytes_ -= items_.front().second;
      items_.pop_front();
      return Next::kItem;
    }
    if (finished_) {
      *status = status_;
      return Next::kFinished;
    }
    return Next::kIdle;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Item, size_t>> items_;
  size_t bytes_ = 0;
  bool finished_ = false;
  Status status_;
};

// One Wait call.
class WaitQueue final : public WaitChannel, public Handoff<OutUpdate> {
 public:
  void Send(OutUpdate update) override { Push(std::move(update), 0); }
  void Finish(const Status& status) override { End(status); }
};

// One Events call.
class EventQueue final : public EventChannel, public Handoff<std::shared_ptr<const v1::EventBatch>> {
 public:
  size_t queued_bytes() const override { return bytes(); }
  void Send(std::shared_ptr<const v1::EventBatch> batch, size_t bytes) override {
    Push(std::move(batch), bytes);
  }
  void Finish(const Status& status) override { End(status); }
};

// Writes what `queue` hands over until the loop ends it (its status), or until the client goes
// away: then `gone` tells the loop, and the call ends CANCELLED. The timeout only bounds how long
// a client that went away keeps this thread.
template <typename Item, typename Writer>
grpc::Status WriteUntilEnd(Handoff<Item>& queue, Writer* writer, grpc::ServerContext* context,
                           const std::function<void()>& gone, const char* who) {
  Item item;
  tierflow::Status end;
  for (;;) {
    switch (queue.Pop(&item, &end, std::chrono::milliseconds(500))) {
      case Handoff<Item>::Next::kItem:
        if (!writer->Write(*item)) {
          gone();
          return grpc::Status(grpc::StatusCode::CANCELLED, std::string(who) + " went away");
        }
        item = Item();
        break;
      case Handoff<Item>::Next::kFinished:
        return ToGrpcStatus(end);
      case Handoff<Item>::Next::kIdle:
        if (context->IsCancelled()) {
          gone();
          return grpc::Status(grpc::StatusCode::CANCELLED, std::string(who) + " went away");
        }
        break;
    }
  }
}

using MoverStream = grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::MoverMessage>;

// The outbound half of a mover stream: a queue drained by a writer thread.
class StreamChannel final : public MoverChannel {
 public:
  StreamChannel(grpc::ServerContext* context, MoverStream* stream)
      : context_(context), stream_(stream) {
    writer_ = std::thread([this] { WriteLoop(); });
  }
  ~StreamChannel() override { Stop(); }

  void Send(OutMessage msg) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      queue_.push_back(std::move(msg));
    }
    cv_.notify_one();
  }
  void Close(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;  // the handler has returned; the context is gone
    closed_ = true;
    close_status_ = status;
    context_->TryCancel();  // unblocks the handler's Read
  }
  // Called by the handler thread before it returns: the stream must not be used after.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (writer_.joinable()) writer_.join();
  }
  bool closed(Status* status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) *status = close_status_;
    return closed_;
  }

 private:
  void WriteLoop() {
    pthread_setname_np(pthread_self(), "tf-mover-out");
    std::deque<OutMessage> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        batch.swap(queue_);
      }
      while (!batch.empty()) {
        grpc::WriteOptions options;
        if (batch.size() > 1) options.set_buffer_hint();
        if (!stream_->Write(*batch.front(), options)) {
          context_->TryCancel();  // the mover is gone; let the reader notice
          return;
        }
        batch.pop_front();
      }
    }
  }

  grpc::ServerContext* const context_;
  MoverStream* const stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<OutMessage> queue_;
  bool stop_ = false;
  bool closed_ = false;
  Status close_status_;
  std::thread writer_;
};

}  // namespace

CoordinatorService::CoordinatorService(EventLoop* loop, Coordinator* coordinator,
                                       ServiceOptions options)
    : loop_(loop), coordinator_(coordinator), options_(options) {}

grpc::Status CoordinatorService::Submit(grpc::ServerContext*, const v1::SubmitRequest* request,
                                        v1::SubmitReply* reply) {
  if (tierflow::Status st = CheckSubmit(*request); !st.ok()) return ToGrpcStatus(st);
  // `request` outlives the call: this thread waits until the loop has answered.
  auto r = CallInLoop<v1::SubmitReply>(
      loop_, [this, request](auto done) { coordinator_->Submit(*request, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Cancel(grpc::ServerContext*, const v1::CancelRequest* request,
                                        v1::CancelReply* reply) {
  if (tierflow::Status st = CheckCancel(*request); !st.ok()) return ToGrpcStatus(st);
  auto r = CallInLoop<v1::CancelReply>(
      loop_, [this, request](auto done) { coordinator_->Cancel(*request, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::State(grpc::ServerContext*, const v1::StateRequest* request,
                                       v1::StateReply* reply) {
  if (tierflow::Status st = CheckState(*request); !st.ok()) return ToGrpcStatus(st);
  auto r = GetInLoop<v1::StateReply>(
      loop_, [this, request]() -> Result<v1::StateReply> { return coordinator_->State(*request); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Status(grpc::ServerContext*, const v1::StatusRequest* request,
                                        v1::StatusReply* reply) {
  if (tierflow::Status st = CheckStatus(*request); !st.ok()) return ToGrpcStatus(st);
  auto r = CallInLoop<v1::StatusReply>(
      loop_, [this, request](auto done) { coordinator_->AnswerStatus(*request, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Lock(grpc::ServerContext*, const v1::LockRequest* request,
                                      v1::LockReply* reply) {
  uint32_t level = request->lock();
  auto r = CallInLoop<v1::LockReply>(
      loop_, [this, level](auto done) { coordinator_->Lock(level, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Drain(grpc::ServerContext*, const v1::DrainRequest* request,
                                       v1::DrainReply* reply) {
  if (tierflow::Status st = CheckDrain(*request); !st.ok()) return ToGrpcStatus(st);
  auto r = CallInLoop<v1::DrainReply>(
      loop_, [this, request](auto done) { coordinator_->Drain(*request, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::SetCapacity(grpc::ServerContext*,
                                             const v1::CapacityRequest* request,
                                             v1::CapacityReply* reply) {
  if (tierflow::Status st = CheckCapacity(*request); !st.ok()) return ToGrpcStatus(st);
  auto r = CallInLoop<v1::CapacityReply>(loop_, [this, request](auto done) {
    coordinator_->SetCapacity(*request, std::move(done));
  });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Wait(grpc::ServerContext* context, const v1::WaitRequest* request,
                                      grpc::ServerWriter<v1::WaitUpdate>* writer) {
  if (tierflow::Status st = CheckWait(*request); !st.ok()) return ToGrpcStatus(st);
  Slot slot(&wait_streams_, options_.max_wait_streams);
  if (!slot.taken()) {
    return TooManyStreams("Wait streams", options_.max_wait_streams,
                          "the coordinator's Wait stream limit");
  }
  auto queue = std::make_shared<WaitQueue>();
  std::vector<uint64_t> ids(request->ids().begin(), request->ids().end());
  auto watch = GetInLoop<Coordinator::WatchId>(
      loop_, [this, &ids, queue]() { return coordinator_->Watch(ids, queue); });
  if (!watch.ok()) return ToGrpcStatus(watch.status());
  Coordinator::WatchId wid = *watch;
  auto unwatch = [this, wid] { loop_->Post([this, wid] { coordinator_->Unwatch(wid); }); };
  return WriteUntilEnd(*queue, writer, context, unwatch, "waiter");
}

grpc::Status CoordinatorService::Events(grpc::ServerContext* context,
                                        const v1::EventsRequest* request,
                                        grpc::ServerWriter<v1::EventBatch>* writer) {
  EventHub* hub = options_.events;
  if (hub == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this coordinator publishes no events");
  }
  if (tierflow::Status st = CheckEvents(*request); !st.ok()) return ToGrpcStatus(st);
  Slot slot(&wait_streams_, options_.max_wait_streams);
  if (!slot.taken()) {
    return TooManyStreams("Wait and Events streams", options_.max_wait_streams,
                          "the coordinator's Wait stream limit");
  }
  EventFilter filter;
  filter.hint = request->hint();
  for (int action : request->actions()) filter.actions.push_back(static_cast<v1::Action>(action));
  filter.mover = request->mover();
  auto queue = std::make_shared<EventQueue>();
  auto sub = GetInLoop<EventHub::SubscriberId>(
      loop_, [hub, &filter, queue]() -> Result<EventHub::SubscriberId> {
        if (!filter.hint.empty() && hub->reporting().hint.empty()) {
          return tierflow::Status(Code::kFailedPrecondition,
                                  "this coordinator has no reporting hint key, so events carry "
                                  "no hint to filter on; configure the hint key (reporting "
                                  "hint) or watch without a hint");
        }
        return hub->Subscribe(std::move(filter), queue);
      });
  if (!sub.ok()) return ToGrpcStatus(sub.status());
  const EventHub::SubscriberId id = *sub;
  auto unsubscribe = [this, hub, id] { loop_->Post([hub, id] { hub->Unsubscribe(id); }); };
  // Tells the client it is subscribed: events from now on reach it.
  context->AddInitialMetadata(std::string(kEventsSubscribedHeader), "1");
  writer->SendInitialMetadata();
  return WriteUntilEnd(*queue, writer, context, unsubscribe, "watcher");
}

grpc::Status CoordinatorService::MoverSession(grpc::ServerContext* context, MoverStream* stream) {
  Slot slot(&mover_sessions_, options_.max_mover_sessions);
  if (!slot.taken()) {
    spdlog::warn("refusing a mover stream from {}: {} mover streams are open, the limit",
                 context->peer(), options_.max_mover_sessions);
    return TooManyStreams("mover streams", options_.max_mover_sessions,
                          "the coordinator's mover session limit");
  }
  v1::MoverMessage first;
  HelloDeadline deadline(context, options_.hello_timeout);
  bool read = stream->Read(&first);
  if (deadline.Disarm()) {
    std::string message = fmt::format("no Hello within {} ms; closing this mover stream",
                                      options_.hello_timeout.count());
    spdlog::warn("mover stream from {}: {}", context->peer(), message);
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, message);
  }
  if (!read) {
    if (context->IsCancelled()) return grpc::Status::OK;  // gone before saying anything
    // gRPC's synchronous Read does not tell a closed stream from bytes that do not parse.
    return EndMoverStream(
        context, "no Hello yet",
        tierflow::Status(Code::kInvalidArgument,
                         "the stream ended before its Hello, or its first message is not a "
                         "MoverMessage"));
  }
  if (!first.has_hello()) {
    return EndMoverStream(
        context, "no Hello yet",
        tierflow::Status(Code::kInvalidArgument,
               fmt::format("the first message of a mover stream must be a Hello, got {}",
                           KindName(first))));
  }
  if (tierflow::Status st = CheckMoverMessage(first); !st.ok()) {
    return EndMoverStream(context, "refused Hello", st);
  }
  auto channel = std::make_shared<StreamChannel>(context, stream);
  auto session = GetInLoop<Coordinator::SessionId>(loop_, [this, &first, channel]() {
    return coordinator_->MoverHello(first.hello(), channel);
  });
  if (!session.ok()) {
    channel->Stop();
    return ToGrpcStatus(session.status());
  }
  Coordinator::SessionId sid = *session;
  grpc::Status end = ServeMover(context, stream, first.hello().id(), sid);
  // The coordinator applies its grace rules to what the session held.
  loop_->Post([this, sid] { coordinator_->MoverGone(sid); });
  channel->Stop();
  tierflow::Status closed;
  if (channel->closed(&closed)) return ToGrpcStatus(closed);
  return end;
}

grpc::Status CoordinatorService::ServeMover(grpc::ServerContext* context, MoverStream* stream,
                                            const std::string& mover, uint64_t sid) {
  auto backlog = std::make_shared<Backlog>();
  for (;;) {
    auto msg = std::make_shared<v1::MoverMessage>();
    // Ends the session alike when the mover closes its side, goes away, or sends bytes that do
    // not parse (the synchronous API does not tell these apart).
    if (!stream->Read(msg.get())) return grpc::Status::OK;
    tierflow::Status st = msg->has_hello()
                    ? tierflow::Status(Code::kInvalidArgument, "a second Hello on an open session")
                    : CheckMoverMessage(*msg);
    if (!st.ok()) {
      return EndMoverStream(context, fmt::format("mover {}, session {}", mover, sid), st);
    }
    auto credit = backlog->Take(msg->ByteSizeLong(), context);
    loop_->Post([this, sid, msg, credit] { coordinator_->MoverReport(sid, *msg); });
  }
}

}  // namespace tierflow::coordinator
