// A coordinator on a real EventLoop thread, with a ManualClock, an in-memory journal and
// recording channels, driven from the test thread. Every call into the coordinator is posted
// to its loop, as the gRPC service does; Drain() waits until the loop is idle and every
// append the sink is not holding has completed.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "coordinator/testing/fakes.h"

namespace tierflow::coordinator::testing {

struct MoverHandle {
  Coordinator::SessionId session = 0;
  std::shared_ptr<RecordingMoverChannel> channel;
};

class Harness {
 public:
  Harness() : sink_(&journal_) {}
  ~Harness() { Stop(); }

  // Starts a coordinator over what the journal holds now.
  void Start(CoordinatorOptions options = {}) {
    options.clock = &clock_;
    options_ = options;
    loop_ = std::make_unique<EventLoop>(&clock_);
    coord_ = std::make_unique<Coordinator>(options, loop_.get(), &sink_);
    auto contents = journal_.Load();
    ASSERT_TRUE(contents.ok());
    Status st = coord_->Recover(*contents);
    ASSERT_TRUE(st.ok()) << st.ToString();
    loop_->Start();
    Drain();
  }
  // Stops the loop as a crash would: whatever is held in the sink is lost.
  void Crash() {
    if (!loop_) return;
    loop_->Stop();
    sink_.Hold(false);
    DropHeld();  // their completions are posted to the stopped loop and dropped
    coord_.reset();
    loop_.reset();
  }
  void Stop() {
    if (!loop_) return;
    sink_.Hold(false);
    sink_.Release();
    Drain();
    Crash();
  }
  void Restart() {
    Stop();
    Start(options_);
  }

  void Run(std::function<void()> fn) {
    std::promise<void> done;
    loop_->Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  template <typename T>
  T Get(std::function<T()> fn) {
    std::optional<T> out;
    Run([&] { out.emplace(fn()); });
    return std::move(*out);
  }
  // Waits for one whole loop turn (closures, timers, turn end) after what is posted now.
  void Turn() {
    std::promise<void> done;
    loop_->Post([&] { loop_->Post([&] { done.set_value(); }); });
    done.get_future().wait();
  }
  void Drain() {
    for (int i = 0; i < 10000; ++i) {
      Turn();
      size_t inflight = Get<size_t>([&] { return coord_->inflight_appends(); });
      if (inflight <= sink_.held()) return;
    }
    ADD_FAILURE() << "coordinator did not settle";
  }
  void Advance(int64_t micros) {
    clock_.Advance(micros);
    loop_->Poke();
    Drain();
  }

  // Submits and returns the reply slot; it is filled once the coordinator answers.
  std::shared_ptr<std::optional<Result<v1::SubmitReply>>> SubmitAsync(v1::SubmitRequest req) {
    auto slot = std::make_shared<std::optional<Result<v1::SubmitReply>>>();
    Run([&] { coord_->Submit(req, [slot](Result<v1::SubmitReply> r) { slot->emplace(r); }); });
    return slot;
  }
  Result<v1::SubmitReply> Submit(v1::SubmitRequest req) {
    auto slot = SubmitAsync(std::move(req));
    Drain();
    if (!slot->has_value()) return Status(Code::kInternal, "submit was not answered");
    return **slot;
  }
  // Submits one spec and returns its id (0 on error).
  uint64_t SubmitOne(const v1::RequestSpec& spec) {
    v1::SubmitRequest req;
    *req.add_requests() = spec;
    auto r = Submit(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->accepted(0).id() : 0;
  }
  Result<v1::CancelReply> Cancel(v1::CancelRequest req) {
    std::optional<Result<v1::CancelReply>> out;
    Run([&] { coord_->Cancel(req, [&](Result<v1::CancelReply> r) { out.emplace(r); }); });
    Drain();
    if (!out) return Status(Code::kInternal, "cancel was not answered");
    return *out;
  }
  Result<v1::LockReply> Lock(uint32_t level) {
    auto out = std::make_shared<std::optional<Result<v1::LockReply>>>();
    Run([&] { coord_->Lock(level, [out](Result<v1::LockReply> r) { out->emplace(r); }); });
    Drain();
    if (!*out) return Status(Code::kInternal, "lock was not answered");
    return **out;
  }
  // The coordinator's Drain of one mover (Drain() above waits for the loop to settle).
  Result<v1::DrainReply> DrainMover(const std::string& mover, bool undo = false) {
    v1::DrainRequest req;
    req.set_mover(mover);
    req.set_undo(undo);
    auto out = std::make_shared<std::optional<Result<v1::DrainReply>>>();
    Run([&] { coord_->Drain(req, [out](Result<v1::DrainReply> r) { out->emplace(r); }); });
    Drain();
    if (!*out) return Status(Code::kInternal, "drain was not answered");
    return **out;
  }
  v1::StatusReply StatusOf(bool with_requests = false) {
    v1::StatusRequest req;
    req.set_include_requests(with_requests);
    return Get<v1::StatusReply>([&] { return coord_->GetStatus(req); });
  }
  std::optional<store::RequestRow> Row(uint64_t id) {
    return Get<std::optional<store::RequestRow>>([&]() -> std::optional<store::RequestRow> {
      const store::RequestRow* row = coord_->FindRow(id);
      if (!row) return std::nullopt;
      return *row;
    });
  }

  Result<MoverHandle> Hello(const v1::Hello& hello) {
    auto channel = std::make_shared<RecordingMoverChannel>();
    auto session =
        Get<Result<Coordinator::SessionId>>([&] { return coord_->MoverHello(hello, channel); });
    Drain();
    if (!session.ok()) return session.status();
    return MoverHandle{*session, channel};
  }
  void Report(const MoverHandle& m, const v1::MoverMessage& msg) {
    Run([&] { coord_->MoverReport(m.session, msg); });
    Drain();
  }
  void Gone(const MoverHandle& m) {
    Run([&] { coord_->MoverGone(m.session); });
    Drain();
  }

  ManualClock& clock() { return clock_; }
  MemJournal& journal() { return journal_; }
  TestSink& sink() { return sink_; }
  Coordinator* coord() { return coord_.get(); }
  EventLoop* loop() { return loop_.get(); }

 private:
  void DropHeld() {
    // Held appends of a crashed coordinator never reach the journal.
    sink_.FailNext(static_cast<int>(sink_.held()), Status(Code::kIo, "crashed"));
    sink_.Release();
    sink_.FailNext(0, Status());
  }

  ManualClock clock_;
  MemJournal journal_;
  TestSink sink_;
  CoordinatorOptions options_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Coordinator> coord_;
};

// ---- message builders ----

inline v1::RequestSpec Spec(v1::Action action, uint64_t seq, uint32_t archive_id = 0,
                            uint64_t flags = 0) {
  v1::RequestSpec s;
  s.set_action(action);
  s.mutable_file()->set_fsid("fs1");
  s.mutable_file()->set_seq(seq);
  s.mutable_file()->set_oid(1);
  s.mutable_file()->set_path("/data/f" + std::to_string(seq));
  s.set_archive_id(archive_id);
  s.set_flags(flags);
  return s;
}

inline v1::Hello MakeHello(const std::string& id, std::vector<uint32_t> archive_ids,
                           int32_t max_archive, int32_t max_restore = 4, int32_t max_remove = 4) {
  v1::Hello h;
  h.set_id(id);
  h.set_host(id + ".example");
  for (uint32_t a : archive_ids) h.add_archive_ids(a);
  h.mutable_capacities()->set_max_archive(max_archive);
  h.mutable_capacities()->set_max_restore(max_restore);
  h.mutable_capacities()->set_max_remove(max_remove);
  return h;
}

inline v1::MoverMessage ResultMsg(uint64_t id, uint64_t epoch, int32_t error_code = 0,
                                  bool retryable = false) {
  v1::MoverMessage m;
  auto* r = m.mutable_result();
  r->set_id(id);
  r->set_epoch(epoch);
  r->set_error_code(error_code);
  r->set_retryable(retryable);
  if (error_code != 0) r->set_error("test failure");
  return m;
}

}  // namespace tierflow::coordinator::testing
