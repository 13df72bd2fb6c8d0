// The client verbs' connection to the coordinator: unary calls with deadlines, Submit retried
// with the same idempotency key while the coordinator is unavailable (a restart), and Wait
// followed to the end across stream breaks. Errors are Status values: kUnavailable means the
// coordinator could not be reached (exit code 3) and says how to start it. One thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::cli {

class CoordinatorClient {
 public:
  explicit CoordinatorClient(std::string address);

  const std::string& address() const { return address_; }

  // Retries UNAVAILABLE with the request's key, for about 5 s (15 s once the coordinator has
  // answered this client): long enough for a coordinator restart.
  Result<v1::SubmitReply> Submit(const v1::SubmitRequest& request);
  Result<v1::CancelReply> Cancel(const v1::CancelRequest& request);
  Result<v1::StatusReply> GetStatus(const v1::StatusRequest& request);
  Result<v1::LockReply> Lock(uint32_t lock);
  Result<v1::DrainReply> Drain(const v1::DrainRequest& req);
  Result<v1::CapacityReply> SetCapacity(const v1::CapacityRequest& req);

  // Streams the state of `ids` until every one is final, calling `on_update` for each state the
  // coordinator sends. When the stream breaks (e.g. a coordinator restart) it reconnects with the
  // ids still open; it gives up with kUnavailable after `give_up_ms` without an answer.
  Status Wait(const std::vector<uint64_t>& ids,
              const std::function<void(const v1::RequestInfo&)>& on_update,
              int64_t give_up_ms = 120'000);

  // Follows request events until the stream ends: `on_open` once the coordinator has
  // subscribed this client, then `on_batch` per batch. Ends with kUnavailable when the
  // coordinator cannot be reached or goes away (no reconnect: events meanwhile are lost).
  Status Events(const v1::EventsRequest& request, const std::function<void()>& on_open,
                const std::function<void(const v1::EventBatch&)>& on_batch);

  // The message for a coordinator that cannot be reached.
  static Status Unreachable(const std::string& address, const std::string& detail);

 private:
  Status FromGrpc(const grpc::Status& st, const std::string& what);

  // One unary call with the standard deadline; `what` names it in errors ("canceling requests").
  template <typename Req, typename Reply>
  Result<Reply> Unary(grpc::Status (v1::Coordinator::Stub::*call)(grpc::ClientContext*, const Req&,
                                                                   Reply*),
                      const Req& request, const std::string& what);

  std::string address_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  bool answered_ = false;  // the coordinator has answered at least once
};

bool IsFinal(v1::RequestState state);

}  // namespace tierflow::cli
