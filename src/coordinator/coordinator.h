// The coordinator's state machine: requests, dispatch queues, movers, waiters and the journal
// discipline around them. It runs on the EventLoop thread only; gRPC threads post into the
// loop (service.h) and never touch this object.
//
// Design, in the order a request meets it:
//  * Submit allocates ids, merges a spec into a pending (non-final) request for the same file
//    and action, records idempotency keys, and marks the new rows dirty. At the end of every
//    loop turn all dirty rows, plus meta (next_id, lock) and other records of the turn, go to
//    the journal as ONE append; appends complete in order. The submitter is answered from the
//    append's completion (posted back into the loop), so nothing unjournaled is acknowledged.
//    A new request may be assigned in the turn that created it (one row, one append, which
//    fail together); otherwise it enters its dispatch queue only once its row is durable, so
//    no assignment is ever journaled for a request whose creation failed.
//  * Dispatch queues and the policy that empties them live in the Scheduler (scheduler.h):
//    class (blocking restore, restore, remove, archive), owner lanes, placement pools and
//    batching slots. At the end of a turn with something to dispatch, each connected mover
//    with free capacity gets what the scheduler chooses from the queues it may serve, up to
//    its free capacity per kind and in total
//    (and a per-turn bound). An assignment (mover, ++epoch, ++attempts) is journaled in that
//    turn's append; the action is sent only when that append is durable, and only if the
//    request is still assigned to that mover and epoch. Items going to one mover in one turn
//    are grouped into ActionBatch messages by (archive id, flags).
//  * Results are accepted only from the session of the mover and the epoch the request is
//    assigned to; every result, applied or ignored, is acknowledged (ResultAcks) once what it
//    changed is durable, and the mover keeps it in hand until then. Capacity is freed at once; the final row is journaled; waiters hear of a
//    change once its row is durable. A retryable failure goes back to its queue after a
//    backoff (retry_delay_us doubling per attempt, up to max_retry_delay_us) until
//    max_attempts; with no_retry every failure is final. The backoff is not journaled: after
//    a restart, queued requests are dispatched at once. Final records are purged final_grace_us after they are durable (a FIFO of
//    deadlines and one timer).
//  * Movers say Hello with the (id, epoch) pairs they still hold. Pairs still assigned to them
//    are kept, others are dropped; requests assigned to them but not in hand are requeued (or
//    sent again, when they were never sent). A disconnected mover keeps its work for
//    mover_grace_us; then its work is requeued. After a restart, movers with assigned work are
//    "disconnected since start" with the same grace.
//  * A failed journal append: its new requests are forgotten and their submitters get
//    kUnavailable; its assignments are taken back (they were never sent); other rows are
//    rewritten by a retry timer. Submits are refused and dispatch paused until an append
//    succeeds again.
//  * Shutdown keeps every assignment in the journal: a restarted coordinator gives a
//    reconnecting mover back its work.
//  * Every connected mover gets a Ping each heartbeat_interval_us; one silent for
//    heartbeat_timeout_us is given nothing new (its work is taken back by the active request
//    timeout). A drained mover (meta "drain/<id>") is given nothing new either.
//  * Cancel records a CANCEL request per target ("cancel_of=<id>" in its data), ending with
//    its target; a forwarded one survives a restart. Meta records ("lock", "drain/<id>") are
//    written with their value at the turn's end and rewritten when their append fails.
//  * Lock 0/1/2 is journaled as meta "lock". Lock 2 (quit once nothing is assigned) is
//    restored as 1 after a restart: the quit it asked for has happened, and a coordinator
//    that quit again at every start could not be unlocked.
//  * Merging: a spec for a file and action that already has a queued or assigned request
//    returns that request's id (merged), whatever its archive id, flags or extent. A replayed
//    idempotency key returns the first answer; after a restart its `merged` flags read false
//    (the journal keeps only the ids).
//  * Mover capacities: max_archive/max_restore/max_remove bound the actions a mover holds per
//    kind (-1 unlimited, 0 none); max_bytes bounds one ActionBatch message (as coordinatool's
//    hal buffer size), 0 meaning the coordinator's message limit.
//  * Outgoing batches and wait updates are built on protobuf arenas and shared immutably
//    with the stream writer threads, so the loop allocates per message, not per item.
//
// Cost: every decision is a hash lookup or an ordered-set operation (O(log n)); dispatch
// visits only non-empty queues of the archive ids a mover serves; nothing scans all requests
// except Status/State listings, which are bounded by their limit or by the files asked for.
#pragma once

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/inlined_vector.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "coordinator/event_loop.h"
#include "coordinator/events.h"
#include "coordinator/policy.h"
#include "coordinator/scheduler.h"
#include "hsm/fid.h"
#include "store/journal.h"
#include "tierflow.pb.h"

namespace tierflow::coordinator {

struct CoordinatorOptions {
  Clock* clock = SystemClock::Default();
  uint32_t default_archive_id = 1;              // for specs with archive id 0
  int64_t mover_grace_us = 60'000'000;          // a disconnected mover keeps its work this long
  int64_t final_grace_us = 60'000'000;          // final records are kept this long, then purged
  int64_t idempotency_ttl_us = 86'400'000'000;  // a submit key is remembered this long
  int64_t journal_retry_us = 1'000'000;         // after a failed append, rewrite after this delay
  uint32_t max_attempts = 3;                    // a retryable failure is retried up to this
  int64_t retry_delay_us = 1'000'000;           // before the first retry; doubles per attempt
  int64_t max_retry_delay_us = 60'000'000;      // cap of that delay
  bool no_retry = false;                        // Lustre's NRA: every failure is final
  // An assigned request with neither progress nor a result for this long is taken back from
  // its mover (which is told to cancel it) and requeued, or failed once it has had
  // max_attempts; Lustre's active_request_timeout. 0 = never.
  int64_t active_request_timeout_us = 3'600'000'000;
  // Every connected mover gets a Ping this often and answers with a Pong. One silent for
  // heartbeat_timeout_us (a hung process that keeps its stream) is given nothing new, and
  // `status` says so; its actions are taken back by the active request timeout. 0 = off.
  int64_t heartbeat_interval_us = 10'000'000;
  int64_t heartbeat_timeout_us = 30'000'000;
  size_t max_batch_items = 1000;                // items per ActionBatch message
  size_t max_message_bytes = 16 << 20;          // bound for one message to a mover or waiter
  size_t max_dispatch_per_turn = 20'000;        // per mover per loop turn; bounds one append
  SchedulingOptions scheduling;                 // order, fair share, placement, batching
  EventHub* events = nullptr;                   // request events (watch, report files); may be null
};

// Where journal records go. The production sink wraps store::JournalWriter; tests hold, release
// or fail appends.
class JournalSink {
 public:
  using Done = std::function<void(const Status&)>;
  virtual ~JournalSink() = default;
  // Called on the loop thread; must not block on disk. `done` runs exactly once, on any
  // thread, when the records are durable (ok) or were not applied at all (error). Appends
  // complete in the order they were made.
  virtual void Append(std::vector<store::JournalRecord> records, Done done) = 0;
  // Records committed so far, for status. Thread-safe.
  virtual uint64_t committed_records() const { return 0; }
};

// Outgoing messages are immutable and shared: the loop builds them (on a protobuf arena, which
// the pointer keeps alive) and the stream's writer thread serializes and releases them.
using OutMessage = std::shared_ptr<const v1::CoordinatorMessage>;
using OutUpdate = std::shared_ptr<const v1::WaitUpdate>;

// The outbound half of one mover stream. Called on the loop thread; must queue, never block.
class MoverChannel {
 public:
  virtual ~MoverChannel() = default;
  virtual void Send(OutMessage msg) = 0;
  // Ends the stream (coordinator shutdown). The stream's reader then reports MoverGone.
  virtual void Close(const Status& status) = 0;
};

// The receiving end of one Wait call. Called on the loop thread; must queue, never block.
class WaitChannel {
 public:
  virtual ~WaitChannel() = default;
  virtual void Send(OutUpdate update) = 0;
  // The last call: ok once every watched request is final, else why the wait ended.
  virtual void Finish(const Status& status) = 0;
};

class Coordinator {
 public:
  template <typename T>
  using Reply = std::function<void(Result<T>)>;
  using WatchId = uint64_t;
  using SessionId = uint64_t;

  // `loop` and `journal` must outlive the coordinator. Installs the loop's turn-end hook, so
  // construct before loop->Start().
  Coordinator(const CoordinatorOptions& options, EventLoop* loop, JournalSink* journal);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Rebuilds queues, movers and timers from the journal. Call once, before any other call
  // (before loop->Start(), or on the loop thread).
  Status Recover(const store::JournalContents& contents);

  // Everything below: loop thread only. A Reply runs exactly once, on the loop thread,
  // possibly before the call returns.

  // Answers once the new rows are durable: one Accepted per spec, in order.
  void Submit(const v1::SubmitRequest& request, Reply<v1::SubmitReply> done);
  // Queued requests end canceled at once; running ones get a cancel sent to their mover.
  // Unknown ids are an error (nothing changes); a file with no pending request is skipped.
  void Cancel(const v1::CancelRequest& request, Reply<v1::CancelReply> done);
  v1::StateReply State(const v1::StateRequest& request) const;
  // Counters, movers and warnings; with include_requests, a listing of at most `limit`
  // requests. With no filter and no after_id it is an overview: assigned (mover by mover),
  // queued, retrying, then recently final requests. With any filter (actions, states, mover,
  // tag, user) or after_id, it lists the matching requests with ids above after_id in id
  // order, and next_after_id names the last one listed when more match. Cost: a walk over
  // the ids above after_id in order, stopped once the page is full (see ListSlice).
  v1::StatusReply GetStatus(const v1::StatusRequest& request) const;
  // GetStatus as the Status RPC runs it: a filtered listing walks at most kListSlice requests
  // per loop turn, so a filter that matches little among millions does not hold the loop (and
  // a restore behind it) for the whole walk. Each request is described as it is when walked.
  void AnswerStatus(const v1::StatusRequest& request, Reply<v1::StatusReply> done);
  static constexpr size_t kListSlice = 8192;
  // 0 dispatch, 1 accept but dispatch nothing, 2 as 1 and quit once nothing is assigned.
  // Answers once the lock is durable.
  void Lock(uint32_t level, Reply<v1::LockReply> done);
  // Drains one mover (or undoes it): it is given nothing new. Journaled as meta
  // "drain/<mover id>"; answers once durable. An unknown mover id is kNotFound.
  void Drain(const v1::DrainRequest& request, Reply<v1::DrainReply> done);
  // Replaces a mover's capacities (or, with reset, goes back to the mover's own): they win
  // over its Hello and its own Capacities messages until reset. Journaled as meta
  // "capacity/<mover id>"; answers once durable. Lowering takes nothing back: the mover is
  // given nothing new of a kind until it holds less than the new bound. Unknown mover:
  // kNotFound.
  void SetCapacity(const v1::CapacityRequest& request, Reply<v1::CapacityReply> done);

  // Streams the durable state of `ids` to `channel`: their current state now, then every
  // change, then Finish(ok) when all are final. Unknown ids: kNotFound, nothing registered.
  Result<WatchId> Watch(const std::vector<uint64_t>& ids, std::shared_ptr<WaitChannel> channel);
  void Unwatch(WatchId watch);

  // A mover stream opened with `hello`. Sends Welcome on `channel` and returns the session
  // that later messages name. kAlreadyExists when a live session has the same mover id.
  Result<SessionId> MoverHello(const v1::Hello& hello, std::shared_ptr<MoverChannel> channel);
  // Progress, Result or Reports from a session; anything from a stale session is ignored.
  void MoverReport(SessionId session, const v1::MoverMessage& message);
  // The stream of `session` ended.
  void MoverGone(SessionId session);

  // Runs once, on the loop thread, when lock 2 has been durable and nothing is assigned.
  void SetQuitHandler(std::function<void()> handler) { quit_handler_ = std::move(handler); }
  // Refuses new work, closes mover streams and waiters. Assignments stay as they are.
  void Shutdown();

  // For tests and benchmarks.
  const store::RequestRow* FindRow(uint64_t id) const;
  uint32_t lock() const { return lock_; }
  bool journal_ok() const { return journal_ok_; }
  size_t request_count() const { return requests_.size(); }
  size_t inflight_appends() const { return inflight_.size(); }

 private:
  // Dispatch order: restores, removes, archives.
  static constexpr int kKinds = 3;
  static int KindOf(hsm::Action action);
  // Counters have one more row: CANCEL requests (recorded by Cancel, never dispatched).
  static constexpr int kCounterKinds = kKinds + 1;
  static int CounterOf(hsm::Action action);
  static hsm::Action ActionOfKind(int kind);

  struct Request {
    store::RequestRow row;
    uint64_t bytes_done = 0;
    uint64_t bytes_total = 0;
    uint32_t unsynced = 0;      // appends in flight that carry this row
    bool durable = false;       // its row has been durable at least once
    bool queued = false;        // in its dispatch queue
    bool in_turn = false;       // dirty in the current turn
    bool send_pending = false;  // assignment journaled, not yet known durable
    bool sent = false;          // the current assignment is with the mover
    bool cancel_requested = false;
    bool purge_scheduled = false;
    bool watched = false;
    int64_t retry_at_us = 0;    // queued but held back until then (retry backoff); 0 = not
    int64_t active_us = 0;      // assigned: when it was assigned or last reported progress
    int64_t queued_us = 0;      // queued: since when (monotonic), for aging
    Ticket ticket;              // where it waits in the scheduler (set by Enqueue)
  };


  struct Mover {
    std::string id;
    std::string host;
    std::vector<uint32_t> archive_ids;  // empty: every archive id
    std::array<int64_t, kKinds> cap{};  // -1 unlimited
    std::array<int64_t, kKinds> running{};
    uint64_t max_bytes = 0;
    bool connected = false;
    SessionId session = 0;
    std::shared_ptr<MoverChannel> channel;
    absl::flat_hash_set<uint64_t> assigned;
    EventLoop::TimerId grace_timer = 0;
    uint64_t done = 0;
    uint64_t failed = 0;
    uint64_t batches = 0;
    bool draining = false;  // tierflow drain: given nothing new
    bool silent = false;    // connected, but no Pong for heartbeat_timeout_us
    // Capacities: `own_caps` as the mover said them (Hello, or its Capacities message);
    // `cap_override` (tierflow capacity) wins until reset. cap, max_bytes and max_total are
    // the ones in force (ApplyCapacities).
    v1::Capacities own_caps;
    std::optional<v1::Capacities> cap_override;
    int64_t max_total = 0;  // actions of any kind held at once; 0 = per-kind bounds only
    int64_t last_pong_us = 0;
    uint64_t ping_seq = 0;

    bool Serves(uint32_t archive_id) const;
    int64_t Free(int kind) const;
  };

  struct Send {
    std::string mover;
    uint64_t id;
    uint64_t epoch;
  };

  // One journal append: what to do when it is durable or failed.
  struct Append {
    uint64_t seq = 0;
    std::vector<uint64_t> touched;              // rows put (one count of `unsynced` each)
    std::vector<uint64_t> created;              // new requests (forgotten if the append fails)
    std::vector<std::string> idempotency_keys;  // new keys (forgotten if it fails)
    std::vector<std::string> meta;              // meta keys written (rewritten if it fails)
    std::vector<Send> sends;                    // assignments to send once durable
    std::vector<JournalSink::Done> callbacks;
  };

  struct Watcher {
    std::shared_ptr<WaitChannel> channel;
    // Keyed by request id with the identity hash: ids are allocated in order, so neighbours
    // in time are neighbours in memory (a flat map would scatter them).
    std::unordered_set<uint64_t> remaining;  // not yet reported final
  };

  struct IdempotencyEntry {
    std::vector<uint64_t> ids;
    std::vector<bool> merged;
    int64_t created_us = 0;
  };

  // Turn end: dispatch, quit check, one journal append.
  void EndTurn();
  void FlushJournal();
  void OnDurable(uint64_t seq, const Status& status);
  void OnAppendFailed(Append& append, const Status& status);
  // Runs `fn` once everything journaled so far is durable (or failed).
  void AfterDurable(JournalSink::Done fn);
  void MarkDirty(Request& r);
  void ScheduleJournalRetry();

  using FileIds = absl::InlinedVector<uint64_t, 2>;
  Request& Insert(store::RequestRow row);
  // A new request from a validated spec; `file_ids` is its file's entry in files_.
  Request& Insert(const v1::RequestSpec& spec, uint64_t id, int64_t wall, FileIds* file_ids);
  void Index(Request& r);        // files_ and counters
  void Count(const Request& r);  // counters
  Request* Find(uint64_t id);
  const Request* Find(uint64_t id) const;
  const Request* FindPending(const hsm::FileId& file, hsm::Action action) const;
  const Request* FindPending(const FileIds& ids, const hsm::FileId& file,
                             hsm::Action action) const;
  // The ids of the requests known for `file` (files_ is keyed by a hash of the file id).
  std::vector<uint64_t> RequestsOf(const hsm::FileId& file) const;
  static uint64_t FileKey(const hsm::FileId& file);
  // Removes a request from every index (purge, or a new request whose append failed).
  void Forget(uint64_t id);
  void SetState(Request& r, store::RequestState state);
  void Enqueue(Request& r);
  void Dequeue(Request& r);
  void Finalize(Request& r, store::RequestState state, int32_t error_code, std::string error);
  // Request events for watchers and report files (options_.events), when someone listens.
  bool EventsOn() const;
  void Emit(v1::Event::Kind kind, const Request& r, const Mover* m, int32_t status = 0);
  // Takes `r` back from its mover: frees the capacity; the caller sets the new state.
  void Unassign(Request& r);
  // Back to its queue (or canceled when a cancel is pending).
  // Back to its queue (at once, or after delay_us: a retry's backoff).
  void Requeue(Request& r, const std::string& why, int64_t delay_us = 0);

  void Dispatch();
  size_t DispatchTo(Mover& m);
  void ArmSchedulerTimer();
  void PromoteToBlocking(Request& r);
  int64_t RetryDelay(uint32_t attempts) const;
  void ArmBackoffTimer();
  void OnBackoffTimer();
  void ArmActiveSweep();
  void SweepActive();
  void Assign(Mover& m, Request& r);
  void SendAssigned(const std::vector<Send>& sends);
  void SendItems(Mover& m, const std::vector<Request*>& items);

  void OnResult(Mover& m, const v1::Result& result, size_t* ignored);
  void OnPong(Mover& m);
  void ArmHeartbeat();
  void Heartbeat();
  // Acknowledges results to the session once what they changed is durable.
  void AckResults(SessionId session, std::vector<std::pair<uint64_t, uint64_t>> results);
  // The CANCEL request recorded for target `r`: ends succeeded at once (`done`), or when the
  // target is final.
  Request& RecordCancel(Request& target, bool done);
  void EndCancelOf(const Request& target);
  void OnProgress(Mover& m, const v1::Progress& progress);
  // Keeps, drops, resends or requeues what `m` held before; returns how many were requeued.
  size_t ReconcileHello(Mover& m, const v1::Hello& hello, v1::Welcome* welcome,
                        std::vector<Request*>* resend, v1::CoordinatorMessage* cancels);
  void OnGraceExpired(const std::string& mover_id);
  void StartGrace(Mover& m);
  void SetConnected(Mover& m, bool connected);
  bool Served(uint32_t archive_id) const;
  Mover* FindSessionMover(SessionId session);

  void NotifyWatchers(const std::vector<uint64_t>& ids, bool progress_only);
  void AddInfo(const Request& r, v1::WaitUpdate* update) const;
  void SendChunked(WaitChannel& channel, std::vector<const Request*>& items) const;
  void FinishWatchersOf(uint64_t id, const Status& status);

  void SchedulePurge(Request& r);
  void ArmPurgeTimer();
  void RunPurge();
  void ArmIdempotencyTimer();
  void RunIdempotencyExpiry();
  void CheckQuit();

  void FillMoverInfo(const Mover& m, v1::MoverInfo* info) const;
  template <typename ReplyT>
  void AnswerWithMover(const std::string& id, const char* what, Reply<ReplyT> done);
  // Runtime capacities (end of coordinator.cc): cap/max_bytes/max_total from the override or
  // the mover's own; a mover's own Capacities message; meta "capacity/<id>" and its recovery.
  void ApplyCapacities(Mover& m);
  void OnCapacities(Mover& m, const v1::Capacities& caps);
  std::string CapacityMetaValue(const std::string& mover_id) const;
  void RecoverCapacities(const std::map<std::string, std::string>& meta);
  std::string MetaValue(const std::string& key) const;
  std::string WaitingReason(const Request& r) const;
  std::vector<std::string> Warnings() const;
  void ListRequests(uint32_t limit, v1::StatusReply* reply) const;
  // The filtered, id-ordered listing of GetStatus, walked in slices (coordinator.cc).
  struct Listing;
  // Walks at most `budget` more ids of `l`; true once the listing is complete.
  bool ListSlice(Listing& l, size_t budget) const;
  void ContinueListing(std::shared_ptr<Listing> l);
  // The counters, movers and warnings of a status reply, with `l`'s requests.
  v1::StatusReply FinishListing(Listing& l) const;
  void Describe(const Request& r, v1::RequestInfo* info) const;

  const CoordinatorOptions options_;
  Clock* const clock_;
  EventLoop* const loop_;
  JournalSink* const journal_;

  std::unordered_map<uint64_t, Request> requests_;
  // The ids of requests_, in order: filtered listings walk it (about 10 bytes per request).
  absl::btree_set<uint64_t> ids_;
  // Every known request of a file (usually one): merging and State look here.
  // Keyed by a 64-bit hash of the file id rather than the id itself (a FileId with its fsid
  // string is 48 bytes): a key may hold ids of several files, so readers compare row.file.
  absl::flat_hash_map<uint64_t, FileIds> files_;
  // Requests waiting out their retry backoff, by due time; they join their queue when due.
  EventLoop::TimerId active_sweep_timer_ = 0;
  std::multimap<int64_t, uint64_t> backoff_;
  EventLoop::TimerId backoff_timer_ = 0;
  int64_t backoff_timer_at_ = 0;
  // Dispatch queues and policy (scheduler.h): order, fair share, placement, batching.
  Scheduler sched_;
  EventLoop::TimerId sched_timer_ = 0;
  int64_t sched_timer_at_ = 0;
  std::array<std::array<uint64_t, 6>, kCounterKinds> counts_{};  // [counter kind][state]
  // Target request id -> the pending CANCEL request recorded for it.
  std::unordered_map<uint64_t, uint64_t> cancel_of_;
  EventLoop::TimerId heartbeat_timer_ = 0;
  uint64_t queued_total_ = 0;
  uint64_t assigned_total_ = 0;

  std::map<std::string, Mover> movers_;
  std::unordered_map<SessionId, std::string> sessions_;
  std::map<uint32_t, int> served_;  // archive id -> connected movers serving it
  int serve_all_ = 0;               // connected movers serving every archive id
  SessionId next_session_ = 1;
  size_t rr_ = 0;  // round-robin start among movers

  std::unordered_map<std::string, IdempotencyEntry> idempotency_;
  std::deque<std::pair<int64_t, std::string>> idempotency_fifo_;
  EventLoop::TimerId idempotency_timer_ = 0;

  std::unordered_map<WatchId, Watcher> watchers_;
  std::unordered_map<uint64_t, absl::InlinedVector<WatchId, 1>> watch_index_;
  WatchId next_watch_ = 1;

  std::deque<std::pair<int64_t, uint64_t>> purge_fifo_;
  EventLoop::TimerId purge_timer_ = 0;

  // Journal discipline.
  Append current_;
  std::vector<store::JournalRecord> extra_records_;  // non-row records of this turn
  bool next_id_dirty_ = false;
  // Meta records ("lock", "drain/<mover>") to write this turn; the value written is the one
  // current at the turn's end (MetaValue). Keys of a failed append are rewritten on retry.
  std::set<std::string> meta_dirty_;
  std::set<std::string> retry_meta_;
  std::deque<Append> inflight_;
  uint64_t next_seq_ = 1;
  bool journal_ok_ = true;
  std::string journal_error_;
  std::unordered_set<uint64_t> retry_;
  EventLoop::TimerId retry_timer_ = 0;

  uint64_t next_id_ = 1;
  uint32_t lock_ = 0;
  bool quit_armed_ = false;
  bool quit_fired_ = false;
  bool dispatch_needed_ = false;
  bool shutting_down_ = false;
  std::function<void()> quit_handler_;
};

}  // namespace tierflow::coordinator
