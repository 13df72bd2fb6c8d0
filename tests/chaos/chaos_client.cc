// The chaos driver's gRPC client.
#include "chaos_client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <thread>

namespace tierflow::chaos {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

bool Transient(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAVAILABLE || c == grpc::StatusCode::DEADLINE_EXCEEDED;
}

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

Status FromGrpc(const grpc::Status& st, const std::string& what) {
  return Status(Code::kInternal,
                fmt::format("{} failed: gRPC {} {}", what, static_cast<int>(st.error_code()),
                            st.error_message()));
}

// "request 123 is not known ..." -> 123; 0 when the message names no request.
uint64_t UnknownRequestId(const std::string& message) {
  unsigned long long id = 0;
  size_t at = message.find("request ");
  if (at == std::string::npos || std::sscanf(message.c_str() + at, "request %llu", &id) != 1) {
    return 0;
  }
  return id;
}

}  // namespace

bool IsFinal(v1::RequestState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELED;
}

ChaosClient::ChaosClient(const std::string& address, int64_t give_up_ms)
    : address_(address), give_up_ms_(give_up_ms) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  args.SetMaxReceiveMessageSize(256 << 20);
  stub_ = v1::Coordinator::NewStub(
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
}

template <typename Req, typename Reply>
Result<Reply> ChaosClient::Call(grpc::Status (v1::Coordinator::Stub::*method)(grpc::ClientContext*,
                                                                              const Req&, Reply*),
                                const Req& request, const char* what) {
  const auto start = Clock::now();
  bool retried = false;
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Reply reply;
    grpc::Status st = (stub_.get()->*method)(&ctx, request, &reply);
    if (st.ok()) {
      if (retried) ++retried_;
      return reply;
    }
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      return Status(Code::kNotFound, st.error_message());
    }
    if (!Transient(st.error_code()) || MsSince(start) > give_up_ms_) {
      return FromGrpc(st, fmt::format("{} at {}", what, address_));
    }
    retried = true;
    std::this_thread::sleep_for(milliseconds(10));  // pacing retries; the channel reconnects
  }
}

Result<v1::SubmitReply> ChaosClient::Submit(const v1::SubmitRequest& request) {
  return Call(&v1::Coordinator::Stub::Submit, request, "submitting");
}

Result<v1::CancelReply> ChaosClient::Cancel(const v1::CancelRequest& request) {
  return Call(&v1::Coordinator::Stub::Cancel, request, "canceling");
}

Result<v1::StatusReply> ChaosClient::GetStatus() {
  return Call(&v1::Coordinator::Stub::Status, v1::StatusRequest(), "asking for the status");
}

bool ChaosClient::Answers(int64_t ms) {
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(ms));
  v1::StatusReply reply;
  return stub_->Status(&ctx, v1::StatusRequest(), &reply).ok();
}

Result<v1::StateReply> ChaosClient::State(const v1::StateRequest& request) {
  return Call(&v1::Coordinator::Stub::State, request, "asking for file states");
}

Status ChaosClient::Follow(
    std::vector<uint64_t> ids, const std::function<void(const v1::RequestInfo&)>& on_update,
    const std::function<void(uint64_t id, const std::string& why)>& on_unknown,
    const std::atomic<bool>* stop) {
  std::set<uint64_t> open(ids.begin(), ids.end());
  auto last_answer = Clock::now();
  while (!open.empty()) {
    if (stop->load()) return Status(Code::kCanceled, "stopped");
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    // Bounds a stream that stops moving, so that *stop is looked at now and then.
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::WaitRequest req;
    for (uint64_t id : open) req.add_ids(id);
    auto reader = stub_->Wait(&ctx, req);
    v1::WaitUpdate update;
    while (!open.empty() && reader->Read(&update)) {
      last_answer = Clock::now();
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
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      uint64_t id = UnknownRequestId(st.error_message());
      if (id == 0 || !open.count(id)) return FromGrpc(st, "following requests");
      on_unknown(id, st.error_message());
      open.erase(id);
      last_answer = Clock::now();
      continue;
    }
    if (!st.ok() && !Transient(st.error_code()) && st.error_code() != grpc::StatusCode::CANCELLED) {
      return FromGrpc(st, "following requests");
    }
    if (MsSince(last_answer) > give_up_ms_) {
      return Status(Code::kUnavailable,
                    fmt::format("no answer from the coordinator at {} for {} ms while following "
                                "{} requests (last: {})",
                                address_, give_up_ms_, open.size(), st.error_message()));
    }
    std::this_thread::sleep_for(milliseconds(10));  // pacing reopenings; the channel reconnects
  }
  return Status::Ok();
}

}  // namespace tierflow::chaos
