// gRPC handlers: post into the coordinator loop, wait for the answer, write it back.
#include "coordinator/service.h"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

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

// One Wait call: the loop queues updates, the handler thread writes them.
class WaitQueue final : public WaitChannel {
 public:
  enum class Next { kUpdate, kFinished, kIdle };

  void Send(OutUpdate update) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      updates_.push_back(std::move(update));
    }
    cv_.notify_one();
  }
  void Finish(const Status& status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      status_ = status;
    }
    cv_.notify_one();
  }
  // Updates first, then the end; kIdle after `timeout` with neither.
  Next Pop(OutUpdate* update, Status* status, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !updates_.empty() || finished_; });
    if (!updates_.empty()) {
      *update = std::move(updates_.front());
      updates_.pop_front();
      return Next::kUpdate;
    }
    if (finished_) {
      *status = status_;
      return Next::kFinished;
    }
    return Next::kIdle;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<OutUpdate> updates_;
  bool finished_ = false;
  Status status_;
};

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

CoordinatorService::CoordinatorService(EventLoop* loop, Coordinator* coordinator)
    : loop_(loop), coordinator_(coordinator) {}

grpc::Status CoordinatorService::Submit(grpc::ServerContext*, const v1::SubmitRequest* request,
                                        v1::SubmitReply* reply) {
  // `request` outlives the call: this thread waits until the loop has answered.
  auto r = CallInLoop<v1::SubmitReply>(
      loop_, [this, request](auto done) { coordinator_->Submit(*request, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Cancel(grpc::ServerContext*, const v1::CancelRequest* request,
                                        v1::CancelReply* reply) {
  auto r = CallInLoop<v1::CancelReply>(
      loop_, [this, request](auto done) { coordinator_->Cancel(*request, std::move(done)); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::State(grpc::ServerContext*, const v1::StateRequest* request,
                                       v1::StateReply* reply) {
  auto r = GetInLoop<v1::StateReply>(
      loop_, [this, request]() -> Result<v1::StateReply> { return coordinator_->State(*request); });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Status(grpc::ServerContext*, const v1::StatusRequest* request,
                                        v1::StatusReply* reply) {
  auto r = GetInLoop<v1::StatusReply>(loop_, [this, request]() -> Result<v1::StatusReply> {
    return coordinator_->GetStatus(*request);
  });
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
  auto r = CallInLoop<v1::DrainReply>(loop_, [this, request = *request](auto done) {
    coordinator_->Drain(request, std::move(done));
  });
  if (!r.ok()) return ToGrpcStatus(r.status());
  *reply = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Wait(grpc::ServerContext* context, const v1::WaitRequest* request,
                                      grpc::ServerWriter<v1::WaitUpdate>* writer) {
  auto queue = std::make_shared<WaitQueue>();
  std::vector<uint64_t> ids(request->ids().begin(), request->ids().end());
  auto watch = GetInLoop<Coordinator::WatchId>(
      loop_, [this, &ids, queue]() { return coordinator_->Watch(ids, queue); });
  if (!watch.ok()) return ToGrpcStatus(watch.status());
  Coordinator::WatchId wid = *watch;
  auto unwatch = [this, wid] { loop_->Post([this, wid] { coordinator_->Unwatch(wid); }); };
  OutUpdate update;
  tierflow::Status end;
  for (;;) {
    // The timeout only bounds how long a client that went away keeps this thread.
    switch (queue->Pop(&update, &end, std::chrono::milliseconds(500))) {
      case WaitQueue::Next::kUpdate:
        if (!writer->Write(*update)) {
          unwatch();
          return grpc::Status(grpc::StatusCode::CANCELLED, "waiter went away");
        }
        break;
      case WaitQueue::Next::kFinished:
        return ToGrpcStatus(end);
      case WaitQueue::Next::kIdle:
        if (context->IsCancelled()) {
          unwatch();
          return grpc::Status(grpc::StatusCode::CANCELLED, "waiter went away");
        }
        break;
    }
  }
}

grpc::Status CoordinatorService::MoverSession(grpc::ServerContext* context, MoverStream* stream) {
  v1::MoverMessage first;
  if (!stream->Read(&first)) return grpc::Status::OK;  // gone before saying anything
  if (!first.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message of a mover session must be Hello");
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
  grpc::Status end = grpc::Status::OK;
  for (;;) {
    auto msg = std::make_shared<v1::MoverMessage>();
    if (!stream->Read(msg.get())) break;
    if (msg->msg_case() == v1::MoverMessage::kHello ||
        msg->msg_case() == v1::MoverMessage::MSG_NOT_SET) {
      end =
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       fmt::format("mover session {}: expected Progress, Result or Reports, got "
                                   "{}; closing this stream",
                                   sid, msg->has_hello() ? "a second Hello" : "an empty message"));
      spdlog::warn("{}", end.error_message());
      break;
    }
    loop_->Post([this, sid, msg] { coordinator_->MoverReport(sid, *msg); });
  }
  loop_->Post([this, sid] { coordinator_->MoverGone(sid); });
  channel->Stop();
  tierflow::Status closed;
  if (channel->closed(&closed)) return ToGrpcStatus(closed);
  return end;
}

}  // namespace tierflow::coordinator
