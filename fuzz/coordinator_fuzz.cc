// Fuzzes the coordinator's protobuf handlers: the bytes are a script of calls into an
// in-process Coordinator (ManualClock, in-memory journal, recording channels), as the gRPC
// service makes them. Each call is one op byte, then, for a message, a length byte and that
// many bytes parsed with ParseFromArray:
//   0 Submit  1 Cancel  2 State  3 Status  4 Lock  5 Drain  6 Hello (a new mover stream)
//   7 MoverMessage on stream [u8]  8 answer item [u8] of stream [u8] as [u8] says
//   9 advance the clock [u8]  10 end a loop turn  11 stream [u8] ends
//   12 hold journal appends  13 release [u8] held appends  14 fail the next [u8 % 4] appends
//   15 Wait  16 Unwatch [u8]  17 restart over the journal
// Invariants: nothing crashes; every Reply runs exactly once, by the time the loop is idle
// with no append held or failing; the coordinator settles after every call.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "coordinator/testing/fakes.h"
#include "fuzz_check.h"

namespace tierflow::coordinator {
namespace {

using testing::MemJournal;
using testing::RecordingMoverChannel;
using testing::RecordingWaitChannel;
using testing::TestSink;

// Short timeouts, so that an input of a few clock steps reaches every timer.
CoordinatorOptions FuzzOptions(Clock* clock) {
  CoordinatorOptions o;
  o.clock = clock;
  o.mover_grace_us = 10'000'000;
  o.final_grace_us = 30'000'000;
  o.idempotency_ttl_us = 120'000'000;
  o.journal_retry_us = 1'000'000;
  o.retry_delay_us = 1'000'000;
  o.max_retry_delay_us = 8'000'000;
  o.active_request_timeout_us = 60'000'000;
  o.max_batch_items = 4;
  o.max_dispatch_per_turn = 16;
  return o;
}

// Reads the script front to back; past the end every read is zero and done() is true.
class Script {
 public:
  Script(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t U8() { return done() ? 0 : *p_++; }
  template <typename M>
  M Message() {
    size_t n = U8();
    n = std::min<size_t>(n, end_ - p_);
    M m;
    if (!m.ParseFromArray(p_, static_cast<int>(n))) m.Clear();  // the server would reject it
    p_ += n;
    return m;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

class Driver {
 public:
  Driver() : sink_(&journal_) { Start(); }
  ~Driver() {
    Settle();
    CheckReplies();
    Run([&] { coord_->Shutdown(); });
    Stop();
  }

  void Step(Script& s) {
    uint8_t op = s.U8() % 18;
    switch (op) {
      case 0: {
        auto req = s.Message<v1::SubmitRequest>();
        auto count = NewReply();
        // A replayed idempotency key is answered with the first answer, whatever the specs.
        int specs = req.idempotency_key().empty() ? req.requests_size() : -1;
        Run([&] { coord_->Submit(req, Counted<v1::SubmitReply>(count, specs)); });
        break;
      }
      case 1: {
        auto req = s.Message<v1::CancelRequest>();
        auto count = NewReply();
        Run([&] { coord_->Cancel(req, Counted<v1::CancelReply>(count, -1)); });
        break;
      }
      case 2: {
        auto req = s.Message<v1::StateRequest>();
        Run([&] { coord_->State(req); });
        break;
      }
      case 3: {
        auto req = s.Message<v1::StatusRequest>();
        Run([&] { coord_->GetStatus(req); });
        break;
      }
      case 4: {
        uint32_t level = s.Message<v1::LockRequest>().lock();
        auto count = NewReply();
        Run([&] { coord_->Lock(level, Counted<v1::LockReply>(count, -1)); });
        break;
      }
      case 5: {
        auto req = s.Message<v1::DrainRequest>();
        auto count = NewReply();
        Run([&] { coord_->Drain(req, Counted<v1::DrainReply>(count, -1)); });
        break;
      }
      case 6: {
        auto hello = s.Message<v1::Hello>();
        auto channel = std::make_shared<RecordingMoverChannel>();
        Result<Coordinator::SessionId> session(Status(Code::kInternal, "not run"));
        Run([&] { session = coord_->MoverHello(hello, channel); });
        if (session.ok()) streams_.push_back({*session, channel});
        break;
      }
      case 7: {
        const Stream* st = PickStream(s.U8());
        auto msg = s.Message<v1::MoverMessage>();
        if (st) Run([&] { coord_->MoverReport(st->session, msg); });
        break;
      }
      case 8:
        Answer(PickStream(s.U8()), s.U8(), s.U8());
        break;
      case 9: {
        uint8_t k = s.U8();
        // Seconds, or over an hour for the longest timeouts.
        clock_.Advance(k == 255 ? 4'000'000'000 : int64_t{k} * 1'000'000);
        loop_->Poke();
        break;
      }
      case 10:
        Turn();
        break;
      case 11: {
        const Stream* st = PickStream(s.U8());
        if (st) Run([&] { coord_->MoverGone(st->session); });
        break;
      }
      case 12:
        sink_.Hold(true);
        break;
      case 13:
        sink_.Release(s.U8());
        break;
      case 14:
        sink_.FailNext(s.U8() % 4, Status(Code::kIo, "injected journal failure"));
        break;
      case 15: {
        auto req = s.Message<v1::WaitRequest>();
        std::vector<uint64_t> ids(req.ids().begin(), req.ids().end());
        auto channel = std::make_shared<RecordingWaitChannel>();
        Result<Coordinator::WatchId> watch(Status(Code::kInternal, "not run"));
        Run([&] { watch = coord_->Watch(ids, channel); });
        if (watch.ok()) watches_.push_back(*watch);
        break;
      }
      case 16: {
        uint8_t i = s.U8();
        if (!watches_.empty()) {
          Coordinator::WatchId w = watches_[i % watches_.size()];
          Run([&] { coord_->Unwatch(w); });
        }
        break;
      }
      case 17:
        Settle();
        CheckReplies();
        Stop();
        Start();
        break;
    }
    Drain();
  }

 private:
  struct Stream {
    Coordinator::SessionId session;
    std::shared_ptr<RecordingMoverChannel> channel;
  };

  void Start() {
    loop_ = std::make_unique<EventLoop>(&clock_);
    coord_ = std::make_unique<Coordinator>(FuzzOptions(&clock_), loop_.get(), &sink_);
    auto contents = journal_.Load();
    FUZZ_CHECK(contents.ok());
    FUZZ_CHECK(coord_->Recover(*contents).ok());
    loop_->Start();
  }
  void Stop() {
    loop_->Stop();
    coord_.reset();
    loop_.reset();
    streams_.clear();
    watches_.clear();
  }

  // Lets every held or failing append complete and every journal retry run.
  void Settle() {
    sink_.Hold(false);
    sink_.FailNext(0, Status());
    for (int i = 0; i < 4; ++i) {
      sink_.Release();
      Drain();
      clock_.Advance(FuzzOptions(&clock_).journal_retry_us);
      loop_->Poke();
      Drain();
    }
    sink_.Release();
    Drain();
  }

  void CheckReplies() {
    for (const auto& count : replies_) {
      if (*count != 1) {
        std::fprintf(stderr, "a Reply ran %d times once the coordinator was idle\n", *count);
        FUZZ_CHECK(*count == 1);
      }
    }
    replies_.clear();
  }

  std::shared_ptr<int> NewReply() {
    replies_.push_back(std::make_shared<int>(0));
    return replies_.back();
  }
  // A reply that counts its calls; a second call aborts at once. A SubmitReply must hold one
  // Accepted per spec when `specs` >= 0.
  template <typename T>
  Coordinator::Reply<T> Counted(std::shared_ptr<int> count, int specs) {
    return [count, specs](Result<T> r) {
      FUZZ_CHECK(++*count == 1);
      (void)specs;
      if constexpr (std::is_same_v<T, v1::SubmitReply>) {
        if (r.ok() && specs >= 0) FUZZ_CHECK(r->accepted_size() == specs);
      }
    };
  }

  const Stream* PickStream(uint8_t i) const {
    return streams_.empty() ? nullptr : &streams_[i % streams_.size()];
  }

  // What a mover does with an item it was sent: progress, success, or a failure.
  void Answer(const Stream* st, uint8_t item, uint8_t how) {
    if (!st) return;
    auto items = st->channel->items();
    if (items.empty()) return;
    const v1::ActionItem& it = items[item % items.size()];
    v1::MoverMessage msg;
    if (how % 5 == 4) {
      auto* p = msg.mutable_progress();
      p->set_id(it.id());
      p->set_epoch(it.epoch());
      p->set_bytes_done(how);
      p->set_bytes_total(255);
    } else {
      auto* r = msg.mutable_result();
      r->set_id(it.id());
      r->set_epoch(it.epoch());
      static constexpr int32_t kCodes[] = {0, EIO, EIO, ECANCELED};
      r->set_error_code(kCodes[how % 4]);
      r->set_retryable(how % 5 == 1);
      if (r->error_code() != 0) r->set_error("fuzz failure");
    }
    Run([&] { coord_->MoverReport(st->session, msg); });
  }

  void Run(const std::function<void()>& fn) {
    std::promise<void> done;
    loop_->Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  // One whole loop turn (closures, timers, turn end) after what is posted now.
  void Turn() {
    std::promise<void> done;
    loop_->Post([&] { loop_->Post([&] { done.set_value(); }); });
    done.get_future().wait();
  }
  // Until the loop is idle and every append the sink is not holding has completed. Each try
  // waits for one whole loop turn and reads the count in the next.
  void Drain() {
    for (int i = 0; i < 1000; ++i) {
      std::promise<size_t> inflight;
      loop_->Post([&] { loop_->Post([&] { inflight.set_value(coord_->inflight_appends()); }); });
      if (inflight.get_future().get() <= sink_.held()) return;
    }
    std::fprintf(stderr, "the coordinator did not settle: appends stay in flight\n");
    std::abort();
  }

  ManualClock clock_;
  MemJournal journal_;
  TestSink sink_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Coordinator> coord_;
  std::vector<Stream> streams_;
  std::vector<Coordinator::WatchId> watches_;
  std::vector<std::shared_ptr<int>> replies_;
};

}  // namespace
}  // namespace tierflow::coordinator

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  // Invalid UTF-8 in string fields is logged by protobuf (and the message refused).
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                     const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tierflow::coordinator::Script script(data, size);
  tierflow::coordinator::Driver driver;
  for (int steps = 0; !script.done() && steps < 256; ++steps) driver.Step(script);
  return 0;
}
