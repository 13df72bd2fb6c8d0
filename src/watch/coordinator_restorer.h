// The watcher's way to the coordinator: a RestoreRequester that submits one blocking restore
// (hal flag BLOCKING, so the coordinator dispatches it before any other request) and follows
// it with a Wait stream until it ends. It keeps trying while the coordinator is unreachable:
// a reader of a released file waits for a restarting coordinator rather than failing.
// One thread per restore in flight; Stop() cancels the calls and joins them, ending every
// open restore with Code::kCanceled.
// It also submits the remove requests the unlink policy queues (SubmitInBackground).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tierflow.grpc.pb.h"
#include "watch/watcher.h"

namespace grpc {
class ClientContext;
}

namespace tierflow::watch {

class CoordinatorRestorer : public RestoreRequester {
 public:
  explicit CoordinatorRestorer(const std::string& address);
  ~CoordinatorRestorer() override;

  void RequestRestore(const hsm::FileId& file, const std::string& path, uint32_t archive_id,
                      std::function<void(Status)> done) override;
  // Submits `spec` (with retries while the coordinator is unreachable); logs the outcome.
  void SubmitInBackground(const v1::RequestSpec& spec);
  void Stop();

 private:
  // Submits with an idempotency key, retrying while unreachable; the request id.
  Result<uint64_t> Submit(const v1::RequestSpec& spec);
  // Follows `id` until it is final; Ok for SUCCEEDED, the request's error otherwise.
  Status Follow(uint64_t id);
  void Spawn(std::function<void()> fn);
  bool Sleep(int64_t ms);  // false once stopping
  bool Track(grpc::ClientContext* ctx);  // false once stopping
  void Untrack(grpc::ClientContext* ctx);

  std::string address_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string key_prefix_;
  std::atomic<uint64_t> next_key_{1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<grpc::ClientContext*> calls_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<Worker> workers_;
};

}  // namespace tierflow::watch
