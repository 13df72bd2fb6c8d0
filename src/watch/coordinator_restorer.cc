// Blocking restores through the coordinator's gRPC service; see coordinator_restorer.h.
#include "watch/coordinator_restorer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "hsm/action.h"
#include "wire/convert.h"

namespace tierflow::watch {

namespace {

bool Final(v1::RequestState s) { return s == v1::SUCCEEDED || s == v1::FAILED || s == v1::CANCELED; }

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  return buf;
}

}  // namespace

CoordinatorRestorer::CoordinatorRestorer(const std::string& address) : address_(address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  stub_ = v1::Coordinator::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  key_prefix_ = fmt::format("watch:{}:{}:{}:", HostName(), ::getpid(),
                            std::chrono::system_clock::now().time_since_epoch().count());
}

CoordinatorRestorer::~CoordinatorRestorer() { Stop(); }

void CoordinatorRestorer::Stop() {
  std::vector<Worker> workers;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (grpc::ClientContext* c : calls_) c->TryCancel();
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (Worker& w : workers) w.thread.join();
}

void CoordinatorRestorer::Spawn(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  // Reap the workers that are done, so the list stays as long as the work in flight.
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->finished->load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  auto finished = std::make_shared<std::atomic<bool>>(false);
  workers_.push_back(Worker{std::thread([fn = std::move(fn), finished] {
                              fn();
                              finished->store(true);
                            }),
                            finished});
}

bool CoordinatorRestorer::Sleep(int64_t ms) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

bool CoordinatorRestorer::Track(grpc::ClientContext* ctx) {
  std::lock_guard lk(mu_);
  if (stopping_) return false;
  calls_.push_back(ctx);
  return true;
}

void CoordinatorRestorer::Untrack(grpc::ClientContext* ctx) {
  std::lock_guard lk(mu_);
  calls_.erase(std::remove(calls_.begin(), calls_.end(), ctx), calls_.end());
}

Result<uint64_t> CoordinatorRestorer::Submit(const v1::RequestSpec& spec) {
  v1::SubmitRequest req;
  req.set_idempotency_key(key_prefix_ + std::to_string(next_key_++));
  *req.add_requests() = spec;
  int64_t delay = 100;
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!Track(&ctx)) break;
    v1::SubmitReply reply;
    grpc::Status st = stub_->Submit(&ctx, req, &reply);
    Untrack(&ctx);
    if (st.ok() && reply.accepted_size() == 1) return reply.accepted(0).id();
    if (!st.ok() && st.error_code() != grpc::StatusCode::UNAVAILABLE &&
        st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
        st.error_code() != grpc::StatusCode::CANCELLED) {
      return Status(Code::kFailedPrecondition,
                    fmt::format("the coordinator at {} refused the request: {}", address_,
                                st.error_message()));
    }
    spdlog::debug("coordinator {} unreachable ({}); retrying", address_, st.error_message());
    if (!Sleep(delay)) break;
    delay = std::min<int64_t>(delay * 2, 2000);
  }
  return Status(Code::kCanceled, "the watcher is stopping");
}

Status CoordinatorRestorer::Follow(uint64_t id) {
  int64_t delay = 100;
  for (;;) {
    grpc::ClientContext ctx;
    if (!Track(&ctx)) break;
    v1::WaitRequest req;
    req.add_ids(id);
    auto reader = stub_->Wait(&ctx, req);
    v1::WaitUpdate update;
    std::optional<v1::RequestInfo> final_info;
    while (!final_info && reader->Read(&update)) {
      delay = 100;
      for (const v1::RequestInfo& r : update.requests()) {
        if (r.id() == id && Final(r.state())) final_info = r;
      }
    }
    if (final_info) ctx.TryCancel();
    grpc::Status st = reader->Finish();
    Untrack(&ctx);
    if (final_info) {
      if (final_info->state() == v1::SUCCEEDED) return Status::Ok();
      if (final_info->state() == v1::CANCELED) {
        return Status(Code::kCanceled, fmt::format("restore request {} was canceled", id));
      }
      return Status(Code::kInternal, fmt::format("restore request {} failed: {}", id,
                                                 final_info->error()));
    }
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      return Status(Code::kNotFound, fmt::format("restore request {} is no longer known: {}", id,
                                                 st.error_message()));
    }
    if (!Sleep(delay)) break;
    delay = std::min<int64_t>(delay * 2, 2000);
  }
  return Status(Code::kCanceled, "the watcher is stopping");
}

void CoordinatorRestorer::RequestRestore(const hsm::FileId& file, const std::string& path,
                                         uint32_t archive_id, std::function<void(Status)> done) {
  v1::RequestSpec spec;
  spec.set_action(v1::RESTORE);
  wire::FileRefToProto(file, path, spec.mutable_file());
  spec.set_archive_id(archive_id);
  spec.set_flags(hsm::kHalFlagBlocking);
  Spawn([this, spec, done = std::move(done)] {
    // A request that vanished (purged, or its journal write failed) is submitted again.
    for (int round = 0; round < 3; ++round) {
      auto id = Submit(spec);
      if (!id.ok()) return done(id.status());
      Status st = Follow(*id);
      if (st.code() != Code::kNotFound) return done(st);
    }
    done(Status(Code::kUnavailable, "the coordinator lost the restore request three times"));
  });
}

void CoordinatorRestorer::SubmitInBackground(const v1::RequestSpec& spec) {
  Spawn([this, spec] {
    auto id = Submit(spec);
    if (id.ok()) {
      spdlog::info("submitted {} of {} as request {}", v1::Action_Name(spec.action()),
                   wire::PathFromProto(spec.file()), *id);
    } else {
      spdlog::warn("could not submit {} of {}: {}", v1::Action_Name(spec.action()),
                   wire::PathFromProto(spec.file()), id.status().ToString());
    }
  });
}

}  // namespace tierflow::watch
