// The event hub: per-turn batches for watchers, lines for report files.
#include "coordinator/events.h"

#include <fmt/format.h>
#include <google/protobuf/arena.h>

#include <algorithm>
#include <utility>

#include "coordinator/convert.h"
#include "coordinator/report_writer.h"

namespace tierflow::coordinator {

namespace {

// One EventBatch message stays well under the coordinator's 16 MiB message bound: a turn that
// dispatches tens of thousands of requests sends several batches.
constexpr size_t kMaxBatchBytes = 4 << 20;

bool Matches(const EventFilter& f, std::string_view hint, v1::Action action,
             std::string_view mover) {
  if (!f.hint.empty() && f.hint != hint) return false;
  if (!f.mover.empty() && f.mover != mover) return false;
  return f.actions.empty() || std::find(f.actions.begin(), f.actions.end(), action) !=
                                  f.actions.end();
}

}  // namespace

// One watcher: its filter, its channel, and what this turn gave it.
struct EventHub::Subscriber {
  struct Batch {
    std::shared_ptr<google::protobuf::Arena> arena;
    v1::EventBatch* msg = nullptr;
    size_t bytes = 0;
  };

  SubscriberId id = 0;
  EventFilter filter;
  std::shared_ptr<EventChannel> channel;
  std::vector<Batch> batches;  // this turn's, sent at Flush
  bool checked = false;        // the channel's backlog was looked at this turn
  bool over = false;           // ... and was over the bound: this turn's events are dropped
  uint64_t dropped = 0;        // not reported yet

  // Whether this turn's events are dropped; asks the channel once per turn.
  bool Over() {
    if (!checked) {
      checked = true;
      over = channel->queued_bytes() > kMaxQueuedBytes;
    }
    return over;
  }

  // A new event of this turn's batch, on its arena; `bytes` is its estimated size.
  v1::Event* Add(size_t bytes) {
    if (batches.empty() || batches.back().bytes + bytes > kMaxBatchBytes) {
      google::protobuf::ArenaOptions options;
      options.start_block_size = 4096;
      options.max_block_size = 256 << 10;
      Batch& b = batches.emplace_back();
      b.arena = std::make_shared<google::protobuf::Arena>(options);
      b.msg = google::protobuf::Arena::CreateMessage<v1::EventBatch>(b.arena.get());
    }
    Batch& b = batches.back();
    b.bytes += bytes;
    return b.msg->add_events();
  }

  void Send() {
    if (batches.empty() && dropped > 0 && !Over()) {
      // Nothing new this turn, but it has caught up: tell it what it lost.
      auto empty = std::make_shared<v1::EventBatch>();
      empty->set_dropped(std::exchange(dropped, 0));
      channel->Send(std::move(empty), 0);  // a few bytes
    }
    for (Batch& b : batches) {
      b.msg->set_dropped(std::exchange(dropped, 0));
      channel->Send(std::shared_ptr<const v1::EventBatch>(std::move(b.arena), b.msg), b.bytes);
    }
    batches.clear();
    checked = false;
    over = false;
  }
};

EventHub::EventHub(const ReportingOptions& reporting, Clock* clock)
    : reporting_(reporting), clock_(clock) {}

EventHub::~EventHub() = default;

Result<std::unique_ptr<EventHub>> EventHub::Create(const ReportingOptions& reporting,
                                                   Clock* clock) {
  std::unique_ptr<EventHub> hub(new EventHub(reporting, clock));
  if (reporting.dir.empty()) return hub;
  if (reporting.hint.empty()) {
    return Status(Code::kInvalidArgument,
                  fmt::format("a report dir ({}) is set but no reporting hint key: report files "
                              "are named by the value of that tag; set the hint key too",
                              reporting.dir));
  }
  if (reporting.quiet_us <= 0) {
    return Status(Code::kInvalidArgument,
                  "the report quiet time must be positive: it is how long a report file stays "
                  "after its last line");
  }
  auto writer = ReportWriter::Open(reporting.dir, reporting.quiet_us, clock);
  if (!writer.ok()) return writer.status();
  hub->reports_ = std::move(writer).value();
  return hub;
}

EventHub::SubscriberId EventHub::Subscribe(EventFilter filter,
                                           std::shared_ptr<EventChannel> channel) {
  if (closed_) {
    channel->Finish(close_status_);
    return 0;
  }
  auto s = std::make_unique<Subscriber>();
  s->id = next_id_++;
  s->filter = std::move(filter);
  s->channel = std::move(channel);
  subscribers_.push_back(std::move(s));
  return subscribers_.back()->id;
}

void EventHub::Unsubscribe(SubscriberId id) {
  std::erase_if(subscribers_, [id](const auto& s) { return s->id == id; });
}

void EventHub::Emit(v1::Event::Kind kind, const store::RequestRow& row, const std::string& host,
                    uint64_t bytes_done, uint64_t bytes_total, int32_t status) {
  if (closed_) return;
  std::string_view hint;
  if (!reporting_.hint.empty()) hint = TagValue(row.data, reporting_.hint).value_or("");
  const bool report = reports_ != nullptr && !hint.empty();
  if (!report && subscribers_.empty()) return;

  const v1::Action action = ActionToProto(row.action);
  // A new or cancel request is no mover's (a pending cancel row keeps its target's mover).
  const bool has_mover = kind != v1::Event::NEW && kind != v1::Event::CANCEL;
  const std::string_view mover = has_mover ? std::string_view(row.mover) : std::string_view();
  // When the change happened: a state change is published once durable, so its time is the
  // one kept in the row (an assignment made in the turn that created the request is published
  // after its commit, yet dated when the scheduler made it). Sent and progress happen now.
  int64_t when = 0;
  switch (kind) {
    case v1::Event::NEW:
    case v1::Event::CANCEL:
      when = row.created_us;
      break;
    case v1::Event::ASSIGN:
    case v1::Event::DONE:
      when = row.changed_us;
      break;
    default:
      break;
  }
  if (when == 0) when = clock_->WallMicros();
  auto fill = [&](v1::Event* e) {
    e->set_kind(kind);
    e->set_id(row.id);
    e->set_action(action);
    FileRefToProto(row.file, row.path, e->mutable_file());
    e->set_mover(mover.data(), mover.size());
    e->set_host(host);
    e->set_bytes_done(bytes_done);
    e->set_bytes_total(bytes_total);
    e->set_status(status);
    e->set_hint(hint.data(), hint.size());
    e->set_time_us(when);
  };
  // Built once, in the first matching watcher's batch; the others get copies.
  const v1::Event* built = nullptr;
  const size_t bytes = 48 + row.file.fsid.size() + row.path.size() + mover.size() + host.size() +
                       hint.size();
  for (auto& s : subscribers_) {
    if (!Matches(s->filter, hint, action, mover)) continue;
    if (s->Over()) {
      ++s->dropped;
      continue;
    }
    v1::Event* e = s->Add(bytes);
    if (built != nullptr) {
      *e = *built;
    } else {
      fill(e);
      built = e;
    }
  }
  if (report) {
    v1::Event local;
    if (built == nullptr) {
      fill(&local);
      built = &local;
    }
    reports_->Add(hint, ReportLine(*built));
  }
}

void EventHub::Flush() {
  for (auto& s : subscribers_) s->Send();
  if (reports_ != nullptr) reports_->Flush();
}

void EventHub::Close(const Status& status) {
  if (closed_) return;
  Flush();
  closed_ = true;
  close_status_ = status;
  for (auto& s : subscribers_) s->channel->Finish(status);
  subscribers_.clear();
}

}  // namespace tierflow::coordinator
