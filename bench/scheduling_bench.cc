// Scheduling under a large backlog, the weighted policy side by side with the plain fifo one in
// the same run:
//  1. decision cost: one Scheduler::Dispatch of one request as the queue grows from 10^3 to
//     10^6 (the queue is topped up outside the timed part, so its length stays put);
//  2. memory per queued request: heap in use (every arena) after 1,000,000 archives are
//     submitted to a real Coordinator with its SQLite journal, less SQLite's own memory (its
//     page cache is bounded, not per request; it is printed apart), divided by 1,000,000;
//     resident growth is printed too; then a status page of 1000 and a listing whose filter
//     matches nothing, with the longest a task posted meanwhile waited for the loop;
//  3. restore latency behind 1,000,000 queued archives: a real Coordinator, loop thread and
//     SQLite journal, one in-process mover that completes everything at once, a feeder that
//     keeps the archive backlog at 1,000,000, and a restore submitted every few milliseconds;
//     time from Submit to the restore's batch being handed to the mover's stream.
//
//     The mover completes archives at archive_rate per second (a busy site's drives); with
//     archive_rate=0 it completes them at once and the coordinator loop runs saturated.
//
// Usage: scheduling_bench [queued=1000000] [restores=500] [decisions=200000]
//                         [archive_rate=2000]
#include <malloc.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "coordinator/scheduler.h"
#include "coordinator/writer_sink.h"
#include "store/journal_writer.h"
#include "store/sqlite/sqlite_journal.h"

using namespace tierflow;
using namespace tierflow::coordinator;
using Steady = std::chrono::steady_clock;

namespace {

struct Args {
  uint64_t queued = 1'000'000;
  int restores = 500;
  int decisions = 200'000;
  uint64_t archive_rate = 2000;  // archives the mover completes per second (0: at once)
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto eq = s.find('=');
    if (eq == std::string::npos) continue;
    std::string k = s.substr(0, eq);
    uint64_t v = std::stoull(s.substr(eq + 1));
    if (k == "queued") a.queued = v;
    if (k == "restores") a.restores = static_cast<int>(v);
    if (k == "decisions") a.decisions = static_cast<int>(v);
    if (k == "archive_rate") a.archive_rate = v;
  }
  return a;
}

// The weighted policy as a site would run it: fair share among 100 users, two placement rules
// (neither matches the bench's archives, so every decision checks them), default class weights.
SchedulingOptions Weighted() {
  SchedulingOptions s;
  s.fair_share.by = ShareBy::kRequester;
  for (int u = 0; u < 10; ++u) s.fair_share.weights["user" + std::to_string(u)] = 1 + u % 3;
  s.placement.push_back(PlacementRule{"project=tape", "", {"tape1"}, 0, 0});
  s.placement.push_back(PlacementRule{"", "dataset", {"m1", "m2", "m3"}, 0, 0});
  return s;
}

SchedulingOptions Fifo() {
  SchedulingOptions s;
  s.order.policy = "fifo";
  return s;
}

// Resident memory of the process, bytes (every thread's arena counts, unlike mallinfo2).
size_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%lu %lu", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// ---- 1. decision cost ----

double DecisionNanos(const SchedulingOptions& options, uint64_t queued, int decisions) {
  ManualClock clock;
  Scheduler::Lookup lookup{[&](uint64_t) { return 2; }, [](uint64_t) { return int64_t{0}; }};
  Scheduler sched(options, &clock, lookup);
  store::RequestRow row;
  row.action = hsm::Action::kArchive;
  std::vector<Ticket> tickets;
  auto add = [&](uint64_t id) {
    row.user = "user" + std::to_string(id % 100);
    Ticket t = sched.Classify(row);
    sched.Add(id, 1, 0, t);
  };
  uint64_t next = 1;
  for (; next <= queued; ++next) add(next);
  sched.SetConnected("m1", true);
  Scheduler::Room room;
  room.kind = {INT64_MAX, INT64_MAX, INT64_MAX};
  room.budget = 1;
  double total_ns = 0;
  const int chunk = 1000;
  uint64_t taken = 0;
  for (int done = 0; done < decisions; done += chunk) {
    auto t0 = Steady::now();
    for (int i = 0; i < chunk; ++i) {
      sched.Dispatch("m1", {}, room, [&](uint64_t) { ++taken; });
    }
    total_ns += std::chrono::duration<double, std::nano>(Steady::now() - t0).count();
    for (int i = 0; i < chunk; ++i) add(next++);  // keep the length
  }
  if (taken != static_cast<uint64_t>(decisions)) std::fprintf(stderr, "decisions went missing\n");
  return total_ns / decisions;
}

// ---- a coordinator on a real loop and journal ----

// Completes restores at once and archives at `archive_rate` per second (0: at once, which
// keeps the coordinator loop saturated); records when each restore reached it.
class Mover final : public MoverChannel {
 public:
  Mover(EventLoop* loop, Coordinator* coord, uint64_t archive_rate)
      : loop_(loop), coord_(coord), archive_rate_(archive_rate) {
    if (archive_rate_ > 0) pacer_ = std::thread([this] { Pace(); });
  }
  ~Mover() override {
    stop_.store(true);
    if (pacer_.joinable()) pacer_.join();
  }
  void SetSession(Coordinator::SessionId s) { session_ = s; }

  // Loop thread.
  void Send(OutMessage msg) override {
    if (!msg->has_batch()) return;
    auto now = Steady::now();
    auto reports = std::make_shared<v1::MoverMessage>();
    for (const auto& item : msg->batch().items()) {
      std::lock_guard lock(mu_);
      if (item.action() == v1::RESTORE) {
        dispatched_[item.id()] = now;
        cv_.notify_all();
      } else if (archive_rate_ > 0) {
        pending_.emplace_back(item.id(), item.epoch());
        continue;
      }
      auto* r = reports->mutable_reports()->add_results();
      r->set_id(item.id());
      r->set_epoch(item.epoch());
    }
    Report(std::move(reports));
  }
  void Close(const Status&) override {}

  bool WaitDispatched(uint64_t id, Steady::time_point* at, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return dispatched_.count(id) > 0; })) return false;
    *at = dispatched_[id];
    return true;
  }
  uint64_t done() const { return archives_done_.load(); }

 private:
  void Report(std::shared_ptr<v1::MoverMessage> reports) {
    if (reports->reports().results_size() == 0) return;
    archives_done_ += reports->reports().results_size();
    loop_->Post([this, reports] { coord_->MoverReport(session_, *reports); });
  }
  void Pace() {
    const auto tick = std::chrono::milliseconds(10);
    auto next = Steady::now();
    while (!stop_.load()) {
      next += tick;
      std::this_thread::sleep_until(next);
      auto reports = std::make_shared<v1::MoverMessage>();
      std::lock_guard lock(mu_);
      for (uint64_t i = 0; i < archive_rate_ / 100 && !pending_.empty(); ++i) {
        auto* r = reports->mutable_reports()->add_results();
        r->set_id(pending_.front().first);
        r->set_epoch(pending_.front().second);
        pending_.pop_front();
      }
      Report(std::move(reports));
    }
  }

  EventLoop* loop_;
  Coordinator* coord_;
  const uint64_t archive_rate_;
  std::atomic<bool> stop_{false};
  std::thread pacer_;
  std::deque<std::pair<uint64_t, uint64_t>> pending_;
  Coordinator::SessionId session_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Steady::time_point> dispatched_;
  std::atomic<uint64_t> archives_done_{0};
};

// Records when each restore was assigned: the ASSIGN event is dated with the scheduler's
// decision (wall clock), even when it is published after the commit of the turn that made it.
class AssignTimes final : public EventChannel {
 public:
  size_t queued_bytes() const override { return 0; }
  void Send(std::shared_ptr<const v1::EventBatch> batch, size_t) override {
    std::lock_guard lock(mu_);
    for (const auto& e : batch->events()) {
      if (e.kind() == v1::Event::ASSIGN) assigned_.emplace(e.id(), e.time_us());
    }
  }
  void Finish(const Status&) override {}
  bool Get(uint64_t id, int64_t* at_us) {
    std::lock_guard lock(mu_);
    auto it = assigned_.find(id);
    if (it == assigned_.end()) return false;
    *at_us = it->second;
    return true;
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, int64_t> assigned_;  // wall clock, microseconds
};

struct Rig {
  std::string dir;
  std::unique_ptr<store::SqliteJournal> journal;
  std::unique_ptr<store::JournalWriter> writer;
  std::unique_ptr<WriterSink> sink;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<EventHub> hub;
  std::unique_ptr<Coordinator> coord;
  std::shared_ptr<AssignTimes> assigned = std::make_shared<AssignTimes>();

  explicit Rig(const SchedulingOptions& scheduling) {
    char tmpl[] = "/tmp/tf_sched_bench_XXXXXX";
    dir = mkdtemp(tmpl);
    journal = std::move(store::SqliteJournal::Open(dir + "/journal.db")).value();
    writer = std::make_unique<store::JournalWriter>(journal.get());
    sink = std::make_unique<WriterSink>(writer.get());
    loop = std::make_unique<EventLoop>(SystemClock::Default());
    CoordinatorOptions o;
    o.final_grace_us = 1'000'000;
    o.heartbeat_interval_us = 0;
    o.active_request_timeout_us = 0;
    o.scheduling = scheduling;
    hub = std::move(EventHub::Create(ReportingOptions{}, SystemClock::Default())).value();
    o.events = hub.get();
    EventFilter restores;
    restores.actions = {v1::RESTORE};
    hub->Subscribe(restores, assigned);
    coord = std::make_unique<Coordinator>(o, loop.get(), sink.get());
    (void)coord->Recover(store::JournalContents{});
    loop->Start();
  }
  ~Rig() {
    std::promise<void> p;
    loop->Post([&] {
      coord->Shutdown();
      p.set_value();
    });
    p.get_future().wait();
    writer->Flush();
    loop->Stop();
    writer.reset();
    coord.reset();
    hub.reset();
    loop.reset();
    journal.reset();
    std::filesystem::remove_all(dir);
  }

  template <typename T>
  T OnLoop(std::function<T()> fn) {
    std::promise<T> p;
    loop->Post([&] { p.set_value(fn()); });
    return p.get_future().get();
  }

  // Submits and waits for the answer (durable).
  std::vector<uint64_t> Submit(const v1::SubmitRequest& req) {
    std::promise<Result<v1::SubmitReply>> p;
    loop->Post([&] { coord->Submit(req, [&](Result<v1::SubmitReply> r) { p.set_value(r); }); });
    auto reply = p.get_future().get();
    std::vector<uint64_t> ids;
    if (!reply.ok()) {
      std::fprintf(stderr, "submit failed: %s\n", reply.status().ToString().c_str());
      return ids;
    }
    for (const auto& a : reply->accepted()) ids.push_back(a.id());
    return ids;
  }
};

v1::SubmitRequest Archives(uint64_t first, uint64_t n) {
  v1::SubmitRequest req;
  for (uint64_t i = 0; i < n; ++i) {
    auto* s = req.add_requests();
    s->set_action(v1::ARCHIVE);
    auto* f = s->mutable_file();
    f->set_fsid("benchfs");
    f->set_seq(first + i + 1);
    f->set_oid(1);
    f->set_path("/bench/dir" + std::to_string((first + i) / 1000) + "/file" +
                std::to_string(first + i));
    s->set_user("user" + std::to_string((first + i) % 100));
  }
  return req;
}

struct LatencyResult {
  double bytes_per_request = 0;  // heap in use, SQLite's own (bounded) cache excluded
  double rss_per_request = 0;    // resident memory growth, everything included
  double sqlite_mb = 0;
  std::vector<double> latencies_ms;   // to the batch handed to the mover (durable)
  std::vector<double> decided_ms;     // to the assignment decision
  int undispatched = 0;
  double archive_rate = 0;
  double page_ms = 0;         // a status page of 1000 queued requests (a state filter)
  double nothing_ms = 0;      // a status listing whose tag filter matches nothing
  double loop_held_ms = 0;    // the longest a task posted during that listing waited to run
};

// Times one status listing as the RPC answers it, while a pinger posts a task every 200 us
// and records how long each waited for the loop. Returns the listing's time.
double TimeListing(Rig& rig, const v1::StatusRequest& req, double* held_ms) {
  std::atomic<bool> done{false};
  std::mutex mu;
  double worst = 0;
  std::thread pinger([&] {
    while (!done.load()) {
      auto posted = Steady::now();
      std::promise<void> ran;
      rig.loop->Post([&] {
        double ms = std::chrono::duration<double, std::milli>(Steady::now() - posted).count();
        std::lock_guard lock(mu);
        worst = std::max(worst, ms);
        ran.set_value();
      });
      ran.get_future().wait();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  auto t = Steady::now();
  std::promise<void> answered;
  rig.loop->Post([&] {
    rig.coord->AnswerStatus(req, [&](Result<v1::StatusReply>) { answered.set_value(); });
  });
  answered.get_future().wait();
  double ms = std::chrono::duration<double, std::milli>(Steady::now() - t).count();
  done.store(true);
  pinger.join();
  if (held_ms) *held_ms = worst;
  return ms;
}

LatencyResult RestoreLatency(const SchedulingOptions& scheduling, const Args& args) {
  LatencyResult out;
  malloc_trim(0);
  const size_t rss0 = ResidentBytes();
  const size_t heap0 = mallinfo2().uordblks;  // every arena
  const int64_t sqlite0 = sqlite3_memory_used();
  Rig rig(scheduling);
  uint64_t next = 0;
  const uint64_t kBatch = 1000;  // archives per Submit, as a client sends them
  while (next < args.queued) {
    rig.Submit(Archives(next, kBatch));
    next += kBatch;
  }
  rig.writer->Flush();
  malloc_trim(0);
  const double n = static_cast<double>(args.queued);
  const double sqlite = static_cast<double>(sqlite3_memory_used() - sqlite0);
  out.sqlite_mb = sqlite / 1e6;
  out.bytes_per_request = (static_cast<double>(mallinfo2().uordblks - heap0) - sqlite) / n;
  out.rss_per_request = static_cast<double>(ResidentBytes() - rss0) / n;

  v1::StatusRequest page;
  page.set_include_requests(true);
  page.add_states(v1::QUEUED);
  page.set_limit(1000);
  out.page_ms = TimeListing(rig, page, nullptr);
  v1::StatusRequest nothing;
  nothing.set_include_requests(true);
  nothing.set_tag("job=none");
  out.nothing_ms = TimeListing(rig, nothing, &out.loop_held_ms);

  auto mover = std::make_shared<Mover>(rig.loop.get(), rig.coord.get(), args.archive_rate);
  v1::Hello hello;
  hello.set_id("m1");
  hello.set_host("localhost");
  hello.add_archive_ids(1);
  hello.mutable_capacities()->set_max_archive(1000);
  hello.mutable_capacities()->set_max_restore(16);
  hello.mutable_capacities()->set_max_remove(16);
  auto session = rig.OnLoop<Result<Coordinator::SessionId>>(
      [&] { return rig.coord->MoverHello(hello, mover); });
  mover->SetSession(*session);

  // The feeder keeps about `queued` archives waiting while restores are measured.
  std::atomic<bool> stop{false};
  uint64_t done0 = mover->done();
  auto t0 = Steady::now();
  std::thread feeder([&] {
    uint64_t fed = next;
    while (!stop.load()) {
      uint64_t backlog = fed - mover->done();
      if (backlog < args.queued) {
        rig.Submit(Archives(fed, kBatch));
        fed += kBatch;
      } else {
        std::this_thread::yield();
      }
    }
  });
  uint64_t restore_seq = 1ull << 40;
  struct Sent {
    uint64_t id;
    Steady::time_point at;
    int64_t wall_us;  // the same instant on the coordinator's wall clock, for the decision
  };
  std::vector<Sent> sent;
  for (int i = 0; i < args.restores; ++i) {
    v1::SubmitRequest req;
    auto* s = req.add_requests();
    s->set_action(v1::RESTORE);
    s->mutable_file()->set_fsid("benchfs");
    s->mutable_file()->set_seq(restore_seq++);
    s->mutable_file()->set_oid(1);
    s->mutable_file()->set_path("/bench/restore");
    auto t = Steady::now();
    const int64_t t_wall = SystemClock::Default()->WallMicros();
    std::promise<uint64_t> p;
    rig.loop->Post([&] {
      rig.coord->Submit(req, [&](Result<v1::SubmitReply> r) {
        p.set_value(r.ok() ? r->accepted(0).id() : 0);
      });
    });
    uint64_t id = p.get_future().get();
    sent.push_back({id, t, t_wall});
    // Paced: about one restore every 10 ms, as users would ask for files.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.store(true);
  feeder.join();
  double seconds = std::chrono::duration<double>(Steady::now() - t0).count();
  out.archive_rate = static_cast<double>(mover->done() - done0) / seconds;
  // Under fifo a restore waits for the whole backlog ahead of it: with paced archives that is
  // longer than anyone waits here.
  const auto deadline = Steady::now() + std::chrono::seconds(args.archive_rate > 0 ? 20 : 120);
  for (const auto& [id, t, t_wall] : sent) {
    Steady::time_point at;
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Steady::now());
    if (mover->WaitDispatched(id, &at, std::max(left, std::chrono::seconds(0)))) {
      out.latencies_ms.push_back(std::chrono::duration<double, std::milli>(at - t).count());
      int64_t decided_us = 0;
      if (rig.assigned->Get(id, &decided_us)) {
        out.decided_ms.push_back(static_cast<double>(decided_us - t_wall) / 1000.0);
      }
    } else {
      ++out.undispatched;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = Parse(argc, argv);
  InitLogging("warn", "scheduling_bench");
  const std::vector<std::pair<std::string, SchedulingOptions>> policies = {{"weighted", Weighted()},
                                                                           {"fifo", Fifo()}};
  std::printf("== dispatch decision cost (one request per Dispatch call), ns\n");
  std::printf("  %-10s", "queued");
  for (const auto& [name, p] : policies) std::printf(" %10s", name.c_str());
  std::printf("\n");
  for (uint64_t n = 1000; n <= args.queued; n *= 10) {
    std::printf("  %-10llu", static_cast<unsigned long long>(n));
    for (const auto& [name, p] : policies) std::printf(" %10.0f", DecisionNanos(p, n, args.decisions));
    std::printf("\n");
    std::fflush(stdout);
  }
  for (const auto& [name, p] : policies) {
    LatencyResult r = RestoreLatency(p, args);
    std::printf(
        "== %s: memory per queued request %.0f B of heap (after %llu archives; SQLite's page "
        "cache, bounded at 64 MiB, apart: %.1f MB); resident growth %.0f B per request\n",
        name.c_str(), r.bytes_per_request, static_cast<unsigned long long>(args.queued),
        r.sqlite_mb, r.rss_per_request);
    std::printf(
        "== %s: status listing at %llu queued: a page of 1000 in %.1f ms; a filter matching "
        "nothing in %.1f ms, the loop held at most %.1f ms meanwhile\n",
        name.c_str(), static_cast<unsigned long long>(args.queued), r.page_ms, r.nothing_ms,
        r.loop_held_ms);
    if (r.latencies_ms.empty()) {
      std::printf(
          "== %s: restore behind %llu queued archives: none of %d dispatched before the bench "
          "stopped waiting (each waits for the backlog ahead of it: about %.0f s at %llu "
          "archives/s)\n",
          name.c_str(), static_cast<unsigned long long>(args.queued), r.undispatched,
          args.archive_rate > 0 ? static_cast<double>(args.queued) / args.archive_rate : 0.0,
          static_cast<unsigned long long>(args.archive_rate));
      continue;
    }
    std::printf(
        "== %s: restore behind %llu queued archives, submit to dispatch decision: p50 %.3f ms "
        "p99 %.3f ms max %.3f ms\n",
        name.c_str(), static_cast<unsigned long long>(args.queued), Percentile(r.decided_ms, 0.5),
        Percentile(r.decided_ms, 0.99), Percentile(r.decided_ms, 1.0));
    std::printf(
        "== %s: restore behind %llu queued archives, submit to batch sent (durable): p50 %.3f ms "
        "p90 %.3f ms p99 %.3f ms max %.3f ms (%zu restores, %d not dispatched before the bench "
        "stopped waiting; archives moved %.0f/s)\n",
        name.c_str(), static_cast<unsigned long long>(args.queued), Percentile(r.latencies_ms, 0.5),
        Percentile(r.latencies_ms, 0.9), Percentile(r.latencies_ms, 0.99),
        Percentile(r.latencies_ms, 1.0), r.latencies_ms.size(),
        r.undispatched, r.archive_rate);
    std::fflush(stdout);
  }
  return 0;
}
