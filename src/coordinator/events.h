// Request events (new, assign, sent, progress, done, cancel) for `tierflow watch` streams and
// for coordinatool-style report files. The coordinator calls Emit on its loop thread at each
// step of a request, only when active() (someone listens), so an unwatched coordinator pays
// one branch per step. Events of one loop turn are delivered together at Flush (turn end).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "coordinator/policy.h"
#include "store/journal.h"
#include "tierflow.pb.h"

namespace tierflow::coordinator {

// The receiving end of one Events call. Called on the loop thread; must queue, never block.
class EventChannel {
 public:
  virtual ~EventChannel() = default;
  // Bytes queued and not yet written: past a bound the hub drops this watcher's events and
  // reports how many in its next batch (a slow watcher must not grow the coordinator).
  virtual size_t queued_bytes() const = 0;
  // `bytes` is the hub's estimate of the batch's size (the loop does not serialize to count).
  virtual void Send(std::shared_ptr<const v1::EventBatch> batch, size_t bytes) = 0;
  virtual void Finish(const Status& status) = 0;
};

struct EventFilter {
  std::string hint;                  // value of the reporting hint tag; empty = any
  std::vector<v1::Action> actions;   // empty = any
  std::string mover;                 // empty = any
};

class ReportWriter;

// Loop thread only.
class EventHub {
 public:
  using SubscriberId = uint64_t;

  // A watcher whose channel holds more than this, unwritten, loses this turn's events; they
  // are counted and its next batch says how many.
  static constexpr size_t kMaxQueuedBytes = 8 << 20;

  // `reporting` names the hint tag (events carry its value) and, with a dir, turns on report
  // files. Fails when the report directory cannot be created, or a dir is given without a
  // hint key.
  static Result<std::unique_ptr<EventHub>> Create(const ReportingOptions& reporting, Clock* clock);
  // Stops the report writer (after writing what it was handed). Any thread, once the loop no
  // longer calls the hub.
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  bool active() const { return !closed_ && (!subscribers_.empty() || reports_ != nullptr); }
  const ReportingOptions& reporting() const { return reporting_; }
  // The report file writer, or null without a report dir. Its Sync is for tests.
  ReportWriter* reports() const { return reports_.get(); }

  // After Close, the channel is finished at once (with Close's status) and 0 is returned.
  SubscriberId Subscribe(EventFilter filter, std::shared_ptr<EventChannel> channel);
  void Unsubscribe(SubscriberId id);

  // One step of request `row`. `host` is the mover's host (assign, sent, progress); `status`
  // is the final errno (done).
  void Emit(v1::Event::Kind kind, const store::RequestRow& row, const std::string& host,
            uint64_t bytes_done, uint64_t bytes_total, int32_t status);
  // Sends what this turn emitted.
  void Flush();
  // Finishes every subscriber (coordinator shutdown) and hands the report writer its last
  // lines; the hub is inactive afterwards.
  void Close(const Status& status);

 private:
  EventHub(const ReportingOptions& reporting, Clock* clock);
  struct Subscriber;
  ReportingOptions reporting_;
  Clock* clock_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  std::unique_ptr<ReportWriter> reports_;
  SubscriberId next_id_ = 1;
  bool closed_ = false;
  Status close_status_;
};

}  // namespace tierflow::coordinator
