// gRPC calls of the client verbs, with their retry and reconnect rules.
#include "cli/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <set>
#include <thread>

#include "coordinator/service.h"

namespace tierflow::cli {

namespace {

using std::chrono::milliseconds;

void SetDeadline(grpc::ClientContext* ctx, int64_t ms) {
  ctx->set_deadline(std::chrono::system_clock::now() + milliseconds(ms));
}

bool Transient(grpc::StatusCode c) { return c == grpc::StatusCode::UNAVAILABLE; }

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool IsFinal(v1::RequestState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELED;
}

CoordinatorClient::CoordinatorClient(std::string address) : address_(std::move(address)) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(256 << 20);
  stub_ = v1::Coordinator::NewStub(
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
}

Status CoordinatorClient::Unreachable(const std::string& address, const std::string& detail) {
  return Status(Code::kUnavailable, "cannot reach the coordinator at " + address + " (" + detail +
                                        "); start it with 'tierflow coordinator' or pass "
                                        "--coordinator");
}

Status CoordinatorClient::FromGrpc(const grpc::Status& st, const std::string& what) {
  if (st.ok()) {
    answered_ = true;
    return Status::Ok();
  }
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // The coordinator answered, but its journal's disk is full or failing: it is reachable,
      // and the fix is on its state directory, not in starting it.
      if (st.error_message().starts_with("journal write failed")) {
        return Status(Code::kUnavailable, what + " refused by the coordinator at " + address_ +
                                              ": " + st.error_message());
      }
      return Unreachable(address_, st.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status(Code::kTimeout, "the coordinator at " + address_ + " did not answer " + what +
                                        " in time; check 'tierflow status' and its log");
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status(Code::kInvalidArgument, what + " refused: " + st.error_message());
    case grpc::StatusCode::NOT_FOUND:
      return Status(Code::kNotFound, what + ": " + st.error_message());
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Status(Code::kFailedPrecondition, what + " refused: " + st.error_message());
    case grpc::StatusCode::PERMISSION_DENIED:
      return Status(Code::kPermissionDenied, what + " refused: " + st.error_message());
    default:
      return Status(Code::kInternal,
                    what + " failed at the coordinator " + address_ + ": " + st.error_message());
  }
}

Result<v1::SubmitReply> CoordinatorClient::Submit(const v1::SubmitRequest& request) {
  const int64_t budget_ms = answered_ ? 15'000 : 5'000;
  const int64_t start = NowMs();
  int64_t delay = 100;
  while (true) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 60'000);
    v1::SubmitReply reply;
    grpc::Status st = stub_->Submit(&ctx, request, &reply);
    if (st.ok() || !Transient(st.error_code()) || NowMs() - start + delay > budget_ms) {
      Status s = FromGrpc(st, "submitting requests");
      if (!s.ok()) return s;
      return reply;
    }
    std::this_thread::sleep_for(milliseconds(delay));  // waiting for a restarting coordinator
    delay = std::min<int64_t>(delay * 2, 2000);
  }
}

template <typename Req, typename Reply>
Result<Reply> CoordinatorClient::Unary(
    grpc::Status (v1::Coordinator::Stub::*call)(grpc::ClientContext*, const Req&, Reply*),
    const Req& request, const std::string& what) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, 30'000);
  Reply reply;
  Status s = FromGrpc((stub_.get()->*call)(&ctx, request, &reply), what);
  if (!s.ok()) return s;
  return reply;
}

Result<v1::CancelReply> CoordinatorClient::Cancel(const v1::CancelRequest& request) {
  return Unary(&v1::Coordinator::Stub::Cancel, request, "canceling requests");
}

Result<v1::StatusReply> CoordinatorClient::GetStatus(const v1::StatusRequest& request) {
  return Unary(&v1::Coordinator::Stub::Status, request, "asking for the status");
}

Result<v1::LockReply> CoordinatorClient::Lock(uint32_t lock) {
  v1::LockRequest req;
  req.set_lock(lock);
  return Unary(&v1::Coordinator::Stub::Lock, req, "changing the lock");
}

Result<v1::DrainReply> CoordinatorClient::Drain(const v1::DrainRequest& req) {
  return Unary(&v1::Coordinator::Stub::Drain, req, "draining mover " + req.mover());
}

Result<v1::CapacityReply> CoordinatorClient::SetCapacity(const v1::CapacityRequest& req) {
  return Unary(&v1::Coordinator::Stub::SetCapacity, req,
               "setting the capacities of mover " + req.mover());
}

Status CoordinatorClient::Events(const v1::EventsRequest& request,
                                 const std::function<void()>& on_open,
                                 const std::function<void(const v1::EventBatch&)>& on_batch) {
  grpc::ClientContext ctx;
  auto reader = stub_->Events(&ctx, request);
  reader->WaitForInitialMetadata();
  const bool opened =
      ctx.GetServerInitialMetadata().count(std::string(coordinator::kEventsSubscribedHeader)) > 0;
  if (opened) on_open();
  v1::EventBatch batch;
  while (opened && reader->Read(&batch)) on_batch(batch);
  grpc::Status st = reader->Finish();
  if (!opened || (!st.ok() && st.error_code() != grpc::StatusCode::UNAVAILABLE)) {
    return FromGrpc(st, "watching events");
  }
  return Status(Code::kUnavailable,
                "the coordinator at " + address_ + " ended the event stream (" +
                    (st.ok() ? std::string("no reason given") : st.error_message()) +
                    "); events from now on are not seen: watch again once it is back");
}

Status CoordinatorClient::Wait(const std::vector<uint64_t>& ids,
                               const std::function<void(const v1::RequestInfo&)>& on_update,
                               int64_t give_up_ms) {
  std::set<uint64_t> open(ids.begin(), ids.end());
  int64_t last_answer = NowMs();
  int64_t delay = 100;
  while (!open.empty()) {
    grpc::ClientContext ctx;
    v1::WaitRequest req;
    for (uint64_t id : open) req.add_ids(id);
    auto reader = stub_->Wait(&ctx, req);
    v1::WaitUpdate update;
    while (!open.empty() && reader->Read(&update)) {
      last_answer = NowMs();
      delay = 100;
      for (const v1::RequestInfo& r : update.requests()) {
        if (!open.count(r.id())) continue;
        on_update(r);
        if (IsFinal(r.state())) open.erase(r.id());
      }
    }
    if (open.empty()) {
      ctx.TryCancel();
      reader->Finish();
      return Status::Ok();
    }
    grpc::Status st = reader->Finish();
    if (!st.ok() && !Transient(st.error_code()) && st.error_code() != grpc::StatusCode::CANCELLED) {
      return FromGrpc(st, "following requests");
    }
    if (NowMs() - last_answer > give_up_ms)
      return Unreachable(address_, st.ok() ? "the wait stream ended early" : st.error_message());
    std::this_thread::sleep_for(milliseconds(delay));  // waiting for a restarting coordinator
    delay = std::min<int64_t>(delay * 2, 2000);
  }
  return Status::Ok();
}

}  // namespace tierflow::cli
