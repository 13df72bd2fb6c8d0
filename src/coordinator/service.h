// The gRPC face of the coordinator (service tierflow.v1.Coordinator, synchronous API).
// Handlers run on gRPC threads and never touch coordinator state: they post a closure into the
// loop and wait for its answer. A mover stream has its reader on the handler thread and a
// writer thread of its own, so the loop only queues outbound messages and never blocks on a
// slow mover. Every request and mover message is checked against limits.h before it is posted,
// and the number of open Wait streams and mover sessions is capped, so a hostile or broken peer
// ends only its own call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string_view>

#include "common/status.h"
#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::coordinator {

// kUnavailable -> UNAVAILABLE and so on; the message is kept.
grpc::Status ToGrpcStatus(const tierflow::Status& status);

struct ServiceOptions {
  // Each open stream holds a gRPC thread; past these, new ones are refused (RESOURCE_EXHAUSTED).
  size_t max_wait_streams = 4096;
  size_t max_mover_sessions = 256;  // counted from the stream's start, before its Hello
  // A mover stream that has not said Hello by then is ended, so silent streams cannot hold
  // every session slot.
  std::chrono::milliseconds hello_timeout{10'000};
  // Serves Events streams (counted with the Wait streams); null: Events is unimplemented.
  EventHub* events = nullptr;
};

// Initial metadata of an Events stream, sent once the watcher is subscribed: events from then
// on reach it.
inline constexpr std::string_view kEventsSubscribedHeader = "tierflow-events-subscribed";

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  // Both must outlive the service, and the loop must keep running until the gRPC server has
  // shut down (handlers wait on it).
  CoordinatorService(EventLoop* loop, Coordinator* coordinator, ServiceOptions options = {});

  grpc::Status Submit(grpc::ServerContext* context, const v1::SubmitRequest* request,
                      v1::SubmitReply* reply) override;
  grpc::Status Wait(grpc::ServerContext* context, const v1::WaitRequest* request,
                    grpc::ServerWriter<v1::WaitUpdate>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::CancelRequest* request,
                      v1::CancelReply* reply) override;
  grpc::Status State(grpc::ServerContext* context, const v1::StateRequest* request,
                     v1::StateReply* reply) override;
  grpc::Status Status(grpc::ServerContext* context, const v1::StatusRequest* request,
                      v1::StatusReply* reply) override;
  grpc::Status Lock(grpc::ServerContext* context, const v1::LockRequest* request,
                    v1::LockReply* reply) override;
  grpc::Status Drain(grpc::ServerContext* context, const v1::DrainRequest* request,
                     v1::DrainReply* reply) override;
  grpc::Status SetCapacity(grpc::ServerContext* context, const v1::CapacityRequest* request,
                           v1::CapacityReply* reply) override;
  grpc::Status Events(grpc::ServerContext* context, const v1::EventsRequest* request,
                      grpc::ServerWriter<v1::EventBatch>* writer) override;
  grpc::Status MoverSession(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::MoverMessage>* stream) override;

 private:
  using MoverStream = grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::MoverMessage>;
  // The mover stream after its Hello was accepted as session `sid`: reports into the loop until
  // the stream ends; the status it ends with.
  grpc::Status ServeMover(grpc::ServerContext* context, MoverStream* stream,
                          const std::string& mover, uint64_t sid);

  EventLoop* const loop_;
  Coordinator* const coordinator_;
  const ServiceOptions options_;
  std::atomic<size_t> wait_streams_{0};
  std::atomic<size_t> mover_sessions_{0};
};

}  // namespace tierflow::coordinator
