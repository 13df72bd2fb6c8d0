// The chaos driver's gRPC client: Submit, Cancel and Wait straight on the generated stub, each
// retried through coordinator restarts (UNAVAILABLE) until answered or `give_up_ms` passes
// without an answer. Thread-safe: one client is shared by every thread of the driver.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::chaos {

namespace v1 = ::tierflow::v1;

class ChaosClient {
 public:
  ChaosClient(const std::string& address, int64_t give_up_ms);

  // The same request (same idempotency key) is sent again after every transient failure, so an
  // answer lost in a crash is recovered from the key.
  Result<v1::SubmitReply> Submit(const v1::SubmitRequest& request);
  Result<v1::CancelReply> Cancel(const v1::CancelRequest& request);
  Result<v1::StatusReply> GetStatus();
  // One Status call waiting up to `ms` for the coordinator: whether it answered.
  bool Answers(int64_t ms);
  Result<v1::StateReply> State(const v1::StateRequest& request);

  // Follows `ids` with Wait streams, reopened after each break, until every id is final.
  // on_update sees every update of a followed id (the current state first, after each
  // reopening too). An id the coordinator does not know (NOT_FOUND) goes to on_unknown and is
  // no longer followed. Returns early with kCanceled when *stop becomes true, or with the
  // error of a non-transient failure.
  Status Follow(std::vector<uint64_t> ids,
                const std::function<void(const v1::RequestInfo&)>& on_update,
                const std::function<void(uint64_t id, const std::string& why)>& on_unknown,
                const std::atomic<bool>* stop);

  // Submits and cancels answered after at least one retry, for the report.
  uint64_t retried_calls() const { return retried_.load(); }

 private:
  template <typename Req, typename Reply>
  Result<Reply> Call(grpc::Status (v1::Coordinator::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                   Reply*),
                     const Req& request, const char* what);

  std::string address_;
  int64_t give_up_ms_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::atomic<uint64_t> retried_{0};
};

bool IsFinal(v1::RequestState state);

}  // namespace tierflow::chaos
