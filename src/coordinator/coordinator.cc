// The coordinator state machine (see coordinator.h for the design). Loop thread only.
#include "coordinator/coordinator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstring>

#include "coordinator/convert.h"

namespace tierflow::coordinator {

using store::JournalRecord;
using store::RequestRow;
using store::RequestState;

namespace {

// Journal meta key of a mover's drain flag: "drain/<mover id>" = "1" or "0".
constexpr std::string_view kDrainMetaPrefix = "drain/";
// Journal meta key of a mover's capacity override (tierflow capacity): "capacity/<mover id>".
constexpr std::string_view kCapacityMetaPrefix = "capacity/";
// The data of a CANCEL request names its target, then repeats its tags: "cancel_of=<id> ...".
constexpr std::string_view kCancelTargetPrefix = "cancel_of=";

void AddInHand(google::protobuf::RepeatedPtrField<v1::InHand>* items, uint64_t id,
               uint64_t epoch) {
  v1::InHand* item = items->Add();
  item->set_id(id);
  item->set_epoch(epoch);
}

uint64_t CancelTargetOf(const RequestRow& row) {
  if (!row.data.starts_with(kCancelTargetPrefix)) return 0;
  uint64_t id = 0;
  auto [p, ec] = std::from_chars(row.data.data() + kCancelTargetPrefix.size(),
                                 row.data.data() + row.data.size(), id);
  return ec == std::errc() ? id : 0;
}

constexpr size_t kMaxInfosPerUpdate = 4096;

// A message built on its own arena: one allocation per block instead of one per field, and
// the thread that writes it frees a few blocks rather than thousands of small objects.
template <typename T>
struct ArenaMessage {
  std::shared_ptr<google::protobuf::Arena> arena;
  T* msg = nullptr;

  static ArenaMessage New() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = 4096;
    options.max_block_size = 256 << 10;
    ArenaMessage m;
    m.arena = std::make_shared<google::protobuf::Arena>(options);
    m.msg = google::protobuf::Arena::CreateMessage<T>(m.arena.get());
    return m;
  }
  // Hands the message (and its arena) over; this object is empty afterwards.
  std::shared_ptr<const T> Share() {
    std::shared_ptr<const T> out(std::move(arena), msg);
    msg = nullptr;
    return out;
  }
};

template <typename T>
std::shared_ptr<const T> Shared(T msg) {
  return std::make_shared<const T>(std::move(msg));
}

size_t EstimateItemBytes(const RequestRow& row) {
  return 64 + row.path.size() + row.data.size() + row.file.fsid.size() + row.error.size() +
         row.mover.size();
}

std::string JournalFailure(const std::string& error) {
  return fmt::format(
      "journal write failed: {}; requests not accepted (retry once the state "
      "directory is writable again)",
      error);
}

}  // namespace

// ---- small helpers ----

int Coordinator::KindOf(hsm::Action action) {
  switch (action) {
    case hsm::Action::kRestore:
      return 0;
    case hsm::Action::kRemove:
      return 1;
    default:
      return 2;
  }
}

int Coordinator::CounterOf(hsm::Action action) {
  return action == hsm::Action::kCancel ? kKinds : KindOf(action);
}

hsm::Action Coordinator::ActionOfKind(int kind) {
  static constexpr hsm::Action kOrder[kKinds] = {hsm::Action::kRestore, hsm::Action::kRemove,
                                                 hsm::Action::kArchive};
  return kOrder[kind];
}

bool Coordinator::Mover::Serves(uint32_t archive_id) const {
  return archive_ids.empty() ||
         std::binary_search(archive_ids.begin(), archive_ids.end(), archive_id);
}

int64_t Coordinator::Mover::Free(int kind) const {
  int64_t free = cap[kind] < 0 ? INT64_MAX : std::max<int64_t>(0, cap[kind] - running[kind]);
  if (max_total > 0) {
    free = std::min(free, std::max<int64_t>(0, max_total - running[0] - running[1] - running[2]));
  }
  return free;
}

Coordinator::Coordinator(const CoordinatorOptions& options, EventLoop* loop, JournalSink* journal)
    : options_(options),
      clock_(options.clock),
      loop_(loop),
      journal_(journal),
      sched_(options.scheduling, options.clock,
             Scheduler::Lookup{
                 [this](uint64_t id) { return KindOf(requests_.at(id).row.action); },
                 [this](uint64_t id) { return requests_.at(id).queued_us; }}) {
  loop_->SetTurnEndHook([this] { EndTurn(); });
}

Coordinator::~Coordinator() { loop_->SetTurnEndHook({}); }

Coordinator::Request* Coordinator::Find(uint64_t id) {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

const Coordinator::Request* Coordinator::Find(uint64_t id) const {
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

const RequestRow* Coordinator::FindRow(uint64_t id) const {
  const Request* r = Find(id);
  return r ? &r->row : nullptr;
}

uint64_t Coordinator::FileKey(const hsm::FileId& file) { return hsm::FileIdHash()(file); }

const Coordinator::Request* Coordinator::FindPending(const hsm::FileId& file,
                                                     hsm::Action action) const {
  auto it = files_.find(FileKey(file));
  if (it == files_.end()) return nullptr;
  return FindPending(it->second, file, action);
}

const Coordinator::Request* Coordinator::FindPending(const FileIds& ids, const hsm::FileId& file,
                                                     hsm::Action action) const {
  for (uint64_t id : ids) {
    const Request* r = Find(id);
    if (r && r->row.action == action && !store::IsFinal(r->row.state) && r->row.file == file) {
      return r;
    }
  }
  return nullptr;
}

std::vector<uint64_t> Coordinator::RequestsOf(const hsm::FileId& file) const {
  std::vector<uint64_t> out;
  auto it = files_.find(FileKey(file));
  if (it == files_.end()) return out;
  for (uint64_t id : it->second) {
    const Request* r = Find(id);
    if (r && r->row.file == file) out.push_back(id);
  }
  return out;
}

// ---- recovery ----

Status Coordinator::Recover(const store::JournalContents& contents) {
  int64_t now = clock_->NowMicros();
  int64_t wall = clock_->WallMicros();
  uint64_t max_id = 0;
  std::vector<std::pair<int64_t, uint64_t>> purges;
  std::vector<uint64_t> pending_cancels;
  for (const RequestRow& row : contents.requests) {
    max_id = std::max(max_id, row.id);
    Request& r = Insert(row);
    r.durable = true;
    if (row.action == hsm::Action::kCancel) {
      if (row.state == RequestState::kAssigned) pending_cancels.push_back(row.id);
      if (!store::IsFinal(row.state)) continue;
    }
    if (row.state == RequestState::kQueued) {
      Enqueue(r);
    } else if (row.state == RequestState::kAssigned) {
      auto [it, created] = movers_.try_emplace(row.mover);
      Mover& m = it->second;
      if (created) m.id = row.mover;
      m.assigned.insert(row.id);
      ++m.running[KindOf(row.action)];
      r.sent = true;  // unknown: the mover's Hello decides
    } else {
      int64_t left = std::clamp<int64_t>(row.changed_us + options_.final_grace_us - wall, 0,
                                         options_.final_grace_us);
      purges.emplace_back(now + left, row.id);
      r.purge_scheduled = true;
    }
  }
  std::sort(purges.begin(), purges.end());
  purge_fifo_.assign(purges.begin(), purges.end());
  ArmPurgeTimer();
  // A cancel forwarded before the restart still stands: its target is canceled at its
  // mover's next Hello (ReconcileHello), or the cancel ends now if the target already has.
  for (uint64_t id : pending_cancels) {
    Request& c = *Find(id);
    Request* target = Find(CancelTargetOf(c.row));
    if (target != nullptr && !store::IsFinal(target->row.state)) {
      target->cancel_requested = true;
      cancel_of_[target->row.id] = id;
    } else if (target != nullptr) {
      cancel_of_[target->row.id] = id;
      EndCancelOf(*target);
    } else {
      Finalize(c, RequestState::kSucceeded, 0, "");
    }
  }

  next_id_ = std::max<uint64_t>(max_id + 1, 1);
  if (auto it = contents.meta.find("next_id"); it != contents.meta.end()) {
    uint64_t v = 0;
    try {
      v = std::stoull(it->second);
    } catch (...) {
      return Status(Code::kCorrupt, fmt::format("journal meta next_id '{}' is not a number; the "
                                                "journal is damaged, restore it from a backup",
                                                it->second));
    }
    next_id_ = std::max(next_id_, v);
  }
  if (auto it = contents.meta.find("lock"); it != contents.meta.end()) {
    lock_ = it->second == "0" ? 0 : 1;
    if (it->second == "2") {
      spdlog::warn(
          "lock 2 (quit) was in force at the last stop; starting locked (lock 1): run "
          "`tierflow lock 0` to dispatch again");
    }
  }

  for (auto it = contents.meta.lower_bound(std::string(kDrainMetaPrefix));
       it != contents.meta.end() && it->first.starts_with(kDrainMetaPrefix); ++it) {
    if (it->second != "1") continue;
    std::string id = it->first.substr(kDrainMetaPrefix.size());
    auto [mit, created] = movers_.try_emplace(id);
    if (created) mit->second.id = id;
    mit->second.draining = true;
  }
  RecoverCapacities(contents.meta);

  std::vector<std::pair<int64_t, std::string>> keys;
  for (const auto& [key, entry] : contents.idempotency) {
    int64_t left = entry.created_us + options_.idempotency_ttl_us - wall;
    if (left <= 0) {
      extra_records_.push_back(JournalRecord::DeleteIdempotency(key));
      continue;
    }
    IdempotencyEntry& e = idempotency_[key];
    e.ids = entry.ids;
    e.merged.assign(entry.ids.size(), false);
    e.created_us = entry.created_us;
    keys.emplace_back(now + std::min(left, options_.idempotency_ttl_us), key);
  }
  std::sort(keys.begin(), keys.end());
  idempotency_fifo_.assign(keys.begin(), keys.end());
  ArmIdempotencyTimer();

  for (auto& [id, m] : movers_) {
    if (!m.assigned.empty()) StartGrace(m);
  }
  ArmActiveSweep();
  ArmHeartbeat();
  dispatch_needed_ = true;
  spdlog::info(
      "coordinator recovered {} requests ({} queued, {} assigned to {} movers), next id "
      "{}, lock {}",
      requests_.size(), queued_total_, assigned_total_, movers_.size(), next_id_, lock_);
  return Status::Ok();
}

// ---- request bookkeeping ----

Coordinator::Request& Coordinator::Insert(const v1::RequestSpec& spec, uint64_t id, int64_t wall,
                                          FileIds* file_ids) {
  ids_.insert(ids_.end(), id);
  Request& r = requests_[id];
  RowFromSpec(spec, &r.row);
  r.row.id = id;
  if (r.row.archive_id == 0) r.row.archive_id = options_.default_archive_id;
  r.row.created_us = r.row.changed_us = wall;
  file_ids->push_back(id);
  Count(r);
  return r;
}

Coordinator::Request& Coordinator::Insert(RequestRow row) {
  uint64_t id = row.id;
  ids_.insert(id);
  Request& r = requests_[id];
  r.row = std::move(row);
  Index(r);
  return r;
}

void Coordinator::Index(Request& r) {
  files_[FileKey(r.row.file)].push_back(r.row.id);
  Count(r);
}

void Coordinator::Count(const Request& r) {
  ++counts_[CounterOf(r.row.action)][static_cast<int>(r.row.state)];
  if (r.row.state == RequestState::kQueued) ++queued_total_;
  if (r.row.state == RequestState::kAssigned) ++assigned_total_;
}

void Coordinator::SetState(Request& r, RequestState state) {
  RequestState old = r.row.state;
  int kind = CounterOf(r.row.action);
  --counts_[kind][static_cast<int>(old)];
  ++counts_[kind][static_cast<int>(state)];
  if (old == RequestState::kQueued) --queued_total_;
  if (old == RequestState::kAssigned) --assigned_total_;
  if (state == RequestState::kQueued) ++queued_total_;
  if (state == RequestState::kAssigned) ++assigned_total_;
  r.row.state = state;
  r.row.changed_us = clock_->WallMicros();
}

void Coordinator::Forget(uint64_t id) {
  Request* r = Find(id);
  if (!r) return;
  if (r->queued) Dequeue(*r);
  if (r->row.state == RequestState::kAssigned) Unassign(*r);
  cancel_of_.erase(id);
  int kind = CounterOf(r->row.action);
  --counts_[kind][static_cast<int>(r->row.state)];
  if (r->row.state == RequestState::kQueued) --queued_total_;
  if (r->row.state == RequestState::kAssigned) --assigned_total_;
  if (auto it = files_.find(FileKey(r->row.file)); it != files_.end()) {
    auto& ids = it->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) files_.erase(it);
  }
  if (r->watched) {
    FinishWatchersOf(
        id, Status(Code::kNotFound, fmt::format("request {} is no longer known: its journal write "
                                                "failed; submit it again",
                                                id)));
  }
  requests_.erase(id);
  ids_.erase(id);
}

void Coordinator::Enqueue(Request& r) {
  r.ticket = sched_.Classify(r.row);
  r.queued_us = clock_->NowMicros();
  sched_.Add(r.row.id, r.row.archive_id, r.row.flags, r.ticket);
  r.queued = true;
  dispatch_needed_ = true;
}

void Coordinator::Dequeue(Request& r) {
  sched_.Remove(r.row.id, r.row.archive_id, r.row.flags, r.ticket);
  r.queued = false;
}

void Coordinator::Unassign(Request& r) {
  auto it = movers_.find(r.row.mover);
  if (it != movers_.end()) {
    Mover& m = it->second;
    if (m.assigned.erase(r.row.id) > 0) {
      --m.running[KindOf(r.row.action)];
      sched_.Released(m.id, r.ticket);
    }
  }
  r.sent = false;
  r.send_pending = false;
  dispatch_needed_ = true;
}

void Coordinator::Finalize(Request& r, RequestState state, int32_t error_code, std::string error) {
  if (r.queued) Dequeue(r);
  if (r.row.state == RequestState::kAssigned) Unassign(r);
  SetState(r, state);
  r.row.error_code = error_code;
  r.row.error = std::move(error);
  r.cancel_requested = false;
  MarkDirty(r);
  if (r.row.action != hsm::Action::kCancel) Emit(v1::Event::DONE, r, nullptr, error_code);
  if (!cancel_of_.empty()) EndCancelOf(r);
}

bool Coordinator::EventsOn() const {
  return options_.events != nullptr && options_.events->active();
}

void Coordinator::Emit(v1::Event::Kind kind, const Request& r, const Mover* m, int32_t status) {
  if (!EventsOn()) return;
  options_.events->Emit(kind, r.row, m ? m->host : std::string(), r.bytes_done, r.bytes_total,
                        status);
}

Coordinator::Request& Coordinator::RecordCancel(Request& target, bool done) {
  const uint64_t id = next_id_++;
  next_id_dirty_ = true;
  ids_.insert(ids_.end(), id);
  Request& c = requests_[id];
  c.row = target.row;
  c.row.id = id;
  c.row.action = hsm::Action::kCancel;
  // The target's tags follow, so the cancel reaches the target's report file and watchers.
  c.row.data = fmt::format("{}{} {}", kCancelTargetPrefix, target.row.id, target.row.data);
  c.row.flags = 0;
  c.row.epoch = 0;
  c.row.attempts = 0;
  c.row.error_code = 0;
  c.row.error.clear();
  c.row.created_us = c.row.changed_us = clock_->WallMicros();
  c.row.state = done ? RequestState::kSucceeded : RequestState::kAssigned;
  if (done) c.row.mover.clear();
  Index(c);
  current_.created.push_back(id);
  MarkDirty(c);
  if (!done) cancel_of_[target.row.id] = id;
  return c;
}

// The target of a pending CANCEL request is final: the cancel succeeded if the target ended
// canceled, and failed (too late) otherwise.
void Coordinator::EndCancelOf(const Request& target) {
  auto it = cancel_of_.find(target.row.id);
  if (it == cancel_of_.end()) return;
  const uint64_t cancel_id = it->second;
  cancel_of_.erase(it);
  Request* c = Find(cancel_id);
  if (c == nullptr || store::IsFinal(c->row.state)) return;
  if (target.row.state == RequestState::kCanceled) {
    Finalize(*c, RequestState::kSucceeded, 0, "");
  } else {
    Finalize(*c, RequestState::kFailed, EALREADY,
             fmt::format("request {} ended {} before the cancel reached it", target.row.id,
                         store::RequestStateName(target.row.state)));
  }
}

void Coordinator::Requeue(Request& r, const std::string& why, int64_t delay_us) {
  if (r.cancel_requested) {
    Finalize(r, RequestState::kCanceled, ECANCELED,
             fmt::format("canceled (a cancel was pending when {})", why));
    return;
  }
  if (r.row.state == RequestState::kAssigned) Unassign(r);
  SetState(r, RequestState::kQueued);
  r.row.mover.clear();
  r.bytes_done = 0;
  MarkDirty(r);
  if (delay_us > 0) {
    r.retry_at_us = clock_->NowMicros() + delay_us;
    backoff_.emplace(r.retry_at_us, r.row.id);
    ArmBackoffTimer();
    return;
  }
  if (!r.queued) Enqueue(r);
}

int64_t Coordinator::RetryDelay(uint32_t attempts) const {
  int64_t delay = options_.retry_delay_us;
  for (uint32_t i = 1; i < attempts && delay < options_.max_retry_delay_us; ++i) delay *= 2;
  return std::min(delay, options_.max_retry_delay_us);
}

void Coordinator::ArmBackoffTimer() {
  if (backoff_.empty()) return;
  const int64_t due = backoff_.begin()->first;
  if (backoff_timer_ != 0 && backoff_timer_at_ <= due) return;
  if (backoff_timer_ != 0) loop_->CancelTimer(backoff_timer_);
  backoff_timer_at_ = due;
  backoff_timer_ = loop_->RunAt(due, [this] { OnBackoffTimer(); });
}

// Requests whose backoff is over join their queue, unless they ended meanwhile (canceled) or
// were queued again by other means.
void Coordinator::OnBackoffTimer() {
  backoff_timer_ = 0;
  const int64_t now = clock_->NowMicros();
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    auto [due, id] = *backoff_.begin();
    backoff_.erase(backoff_.begin());
    Request* r = Find(id);
    if (r == nullptr || r->retry_at_us != due) continue;
    r->retry_at_us = 0;
    if (r->row.state == RequestState::kQueued && !r->queued) Enqueue(*r);
  }
  ArmBackoffTimer();
}

// ---- journal discipline ----

void Coordinator::MarkDirty(Request& r) {
  if (r.in_turn) return;
  r.in_turn = true;
  current_.touched.push_back(r.row.id);
}

void Coordinator::AfterDurable(JournalSink::Done fn) {
  bool current_has_records =
      !current_.touched.empty() || !extra_records_.empty() || next_id_dirty_ ||
      !meta_dirty_.empty();
  if (current_has_records) {
    current_.callbacks.push_back(std::move(fn));
  } else if (!inflight_.empty()) {
    inflight_.back().callbacks.push_back(std::move(fn));
  } else {
    fn(Status::Ok());
  }
}

void Coordinator::EndTurn() {
  if (dispatch_needed_) Dispatch();
  // A new request may be assigned in the turn that created it: creation and assignment then
  // share one row and one append, and fail together. One left queued waits for its row to be
  // durable: an assignment journaled in a later append could outlive a failed creation.
  for (uint64_t id : current_.created) {
    Request* r = Find(id);
    if (r && r->queued && !r->durable) Dequeue(*r);
  }
  CheckQuit();
  if (options_.events != nullptr) options_.events->Flush();
  FlushJournal();
}

void Coordinator::FlushJournal() {
  std::vector<JournalRecord> records;
  records.reserve(current_.touched.size() + extra_records_.size() + 2);
  std::vector<uint64_t> put;
  put.reserve(current_.touched.size());
  for (uint64_t id : current_.touched) {
    Request* r = Find(id);
    if (!r) continue;
    r->in_turn = false;
    ++r->unsynced;
    // Built in place: one copy of the row, no moves (this runs for every change).
    JournalRecord& rec = records.emplace_back();
    rec.kind = JournalRecord::Kind::kPutRequest;
    rec.id = id;
    rec.request = r->row;
    put.push_back(id);
  }
  current_.touched = std::move(put);
  if (next_id_dirty_) records.push_back(JournalRecord::Meta("next_id", std::to_string(next_id_)));
  next_id_dirty_ = false;
  for (const std::string& key : meta_dirty_) records.push_back(JournalRecord::Meta(key, MetaValue(key)));
  current_.meta.assign(meta_dirty_.begin(), meta_dirty_.end());
  meta_dirty_.clear();
  for (JournalRecord& rec : extra_records_) records.push_back(std::move(rec));
  extra_records_.clear();

  if (records.empty()) {
    // Nothing to write: callbacks wait for what is already in flight, if anything.
    std::vector<JournalSink::Done> callbacks = std::move(current_.callbacks);
    current_ = Append{};
    if (!inflight_.empty()) {
      for (auto& cb : callbacks) inflight_.back().callbacks.push_back(std::move(cb));
    } else {
      for (auto& cb : callbacks) cb(Status::Ok());
    }
    return;
  }
  uint64_t seq = next_seq_++;
  current_.seq = seq;
  inflight_.push_back(std::move(current_));
  current_ = Append{};
  journal_->Append(std::move(records), [this, seq](const Status& status) {
    loop_->Post([this, seq, status] { OnDurable(seq, status); });
  });
}

void Coordinator::OnDurable(uint64_t seq, const Status& status) {
  if (inflight_.empty() || inflight_.front().seq != seq) {
    spdlog::error("journal append {} completed out of order; ignoring its completion", seq);
    return;
  }
  Append append = std::move(inflight_.front());
  inflight_.pop_front();
  if (!status.ok()) {
    for (uint64_t id : append.touched) {
      if (Request* r = Find(id)) --r->unsynced;
    }
    OnAppendFailed(append, status);
    return;
  }
  if (!journal_ok_) {
    spdlog::info("journal writes succeed again; accepting requests and dispatching");
    journal_ok_ = true;
    journal_error_.clear();
    dispatch_needed_ = true;
  }
  if (EventsOn()) {
    for (uint64_t id : append.created) {
      const Request* r = Find(id);
      if (r == nullptr) continue;
      Emit(r->row.action == hsm::Action::kCancel ? v1::Event::CANCEL : v1::Event::NEW, *r, nullptr);
      if (r->row.action != hsm::Action::kCancel && r->row.state == RequestState::kAssigned) {
        auto m = movers_.find(r->row.mover);
        Emit(v1::Event::ASSIGN, *r, m == movers_.end() ? nullptr : &m->second);
      }
    }
  }
  std::vector<uint64_t> notify;
  for (uint64_t id : append.touched) {  // each id once per append (see MarkDirty)
    Request* r = Find(id);
    if (!r) continue;
    --r->unsynced;
    r->durable = true;
    if (r->unsynced != 0) continue;
    if (store::IsFinal(r->row.state) && !r->purge_scheduled) SchedulePurge(*r);
    if (r->watched) notify.push_back(id);
    // A new request not assigned in its first turn joins its queue now (one waiting out a
    // retry backoff joins when it is over).
    if (r->row.state == RequestState::kQueued && !r->queued && r->retry_at_us == 0) Enqueue(*r);
  }
  SendAssigned(append.sends);
  NotifyWatchers(notify, false);
  for (auto& cb : append.callbacks) cb(Status::Ok());
}

void Coordinator::OnAppendFailed(Append& append, const Status& status) {
  if (journal_ok_) {
    spdlog::error(
        "journal append failed: {}; refusing new requests and pausing dispatch until a "
        "write succeeds (retrying every {} ms)",
        status.ToString(), options_.journal_retry_us / 1000);
  }
  journal_ok_ = false;
  journal_error_ = status.ToString();
  std::unordered_set<uint64_t> created(append.created.begin(), append.created.end());
  for (uint64_t id : append.created) Forget(id);
  for (const std::string& key : append.idempotency_keys) idempotency_.erase(key);
  for (uint64_t id : append.touched) {
    if (!created.count(id) && Find(id)) retry_.insert(id);
  }
  retry_meta_.insert(append.meta.begin(), append.meta.end());
  for (const Send& s : append.sends) {
    Request* r = Find(s.id);
    if (r && r->row.state == RequestState::kAssigned && r->row.mover == s.mover &&
        r->row.epoch == s.epoch && !r->sent) {
      Requeue(*r, "its assignment could not be journaled");
    }
  }
  for (auto& cb : append.callbacks) cb(status);
  ScheduleJournalRetry();
}

std::string Coordinator::MetaValue(const std::string& key) const {
  if (key == "lock") return std::to_string(lock_);
  if (key.starts_with(kDrainMetaPrefix)) {
    auto it = movers_.find(key.substr(kDrainMetaPrefix.size()));
    return it != movers_.end() && it->second.draining ? "1" : "0";
  }
  if (key.starts_with(kCapacityMetaPrefix)) {
    return CapacityMetaValue(key.substr(kCapacityMetaPrefix.size()));
  }
  return "";
}

void Coordinator::ScheduleJournalRetry() {
  if (retry_timer_ != 0) return;
  retry_timer_ = loop_->RunAt(clock_->NowMicros() + options_.journal_retry_us, [this] {
    retry_timer_ = 0;
    for (uint64_t id : retry_) {
      if (Request* r = Find(id)) MarkDirty(*r);
    }
    retry_.clear();
    next_id_dirty_ = true;  // also a probe when nothing else is pending
    meta_dirty_.merge(retry_meta_);  // rewritten with their current values
    retry_meta_.clear();
  });
}

// ---- client calls ----

void Coordinator::Submit(const v1::SubmitRequest& request, Reply<v1::SubmitReply> done) {
  if (shutting_down_) {
    done(
        Status(Code::kUnavailable, "coordinator is shutting down; submit again after it restarts"));
    return;
  }
  if (!journal_ok_) {
    done(Status(Code::kUnavailable, JournalFailure(journal_error_)));
    return;
  }
  const std::string& key = request.idempotency_key();
  // An append that fails forgets its new requests and its key. With a key, the key says
  // whether the answer stands (its requests may since have been purged, final, which is no
  // failure); without one, every request must still be known.
  auto finish = [this, key](v1::SubmitReply reply, Reply<v1::SubmitReply> done) {
    AfterDurable(
        [this, key, reply = std::move(reply), done = std::move(done)](const Status& st) mutable {
          if (!st.ok()) {
            done(Status(Code::kUnavailable, JournalFailure(st.ToString())));
            return;
          }
          bool stands = true;
          if (!key.empty()) {
            stands = idempotency_.count(key) > 0;
          } else {
            for (const auto& a : reply.accepted()) stands = stands && Find(a.id()) != nullptr;
          }
          if (!stands) {
            done(Status(Code::kUnavailable, JournalFailure(journal_error_)));
            return;
          }
          done(std::move(reply));
        });
  };
  if (!key.empty()) {
    if (auto it = idempotency_.find(key); it != idempotency_.end()) {
      v1::SubmitReply reply;
      for (size_t i = 0; i < it->second.ids.size(); ++i) {
        auto* a = reply.add_accepted();
        a->set_id(it->second.ids[i]);
        a->set_merged(it->second.merged[i]);
      }
      finish(std::move(reply), std::move(done));
      return;
    }
  }
  for (int i = 0; i < request.requests_size(); ++i) {
    Status st = ValidateSpec(request.requests(i), i);
    if (!st.ok()) {
      done(st);
      return;
    }
  }
  int64_t wall = clock_->WallMicros();
  v1::SubmitReply reply;
  reply.mutable_accepted()->Reserve(request.requests_size());
  IdempotencyEntry entry;
  for (const v1::RequestSpec& spec : request.requests()) {
    auto* accepted = reply.add_accepted();
    hsm::Action action = *ActionFromProto(spec.action());
    // One probe of the file index serves both the merge check and the insertion.
    const hsm::FileId file = FileIdFromProto(spec.file());
    FileIds& file_ids = files_[FileKey(file)];
    if (const Request* existing = FindPending(file_ids, file, action)) {
      accepted->set_id(existing->row.id);
      accepted->set_merged(true);
      if (spec.flags() & ~existing->row.flags & hsm::kHalFlagBlocking) {
        PromoteToBlocking(*Find(existing->row.id));
      }
    } else {
      Request& r = Insert(spec, next_id_++, wall, &file_ids);
      MarkDirty(r);
      current_.created.push_back(r.row.id);
      next_id_dirty_ = true;
      accepted->set_id(r.row.id);
      Enqueue(r);  // may be assigned in this turn, so one row carries both (see EndTurn)
    }
    if (!key.empty()) {
      entry.ids.push_back(accepted->id());
      entry.merged.push_back(accepted->merged());
    }
  }
  if (!key.empty()) {
    entry.created_us = wall;
    extra_records_.push_back(JournalRecord::Idempotency(key, entry.ids, wall));
    current_.idempotency_keys.push_back(key);
    idempotency_fifo_.emplace_back(clock_->NowMicros() + options_.idempotency_ttl_us, key);
    idempotency_[key] = std::move(entry);
    ArmIdempotencyTimer();
  }
  finish(std::move(reply), std::move(done));
}

void Coordinator::Cancel(const v1::CancelRequest& request, Reply<v1::CancelReply> done) {
  if (shutting_down_) {
    done(
        Status(Code::kUnavailable, "coordinator is shutting down; cancel again after it restarts"));
    return;
  }
  std::vector<uint64_t> targets;
  for (uint64_t id : request.ids()) {
    if (!Find(id)) {
      done(Status(Code::kNotFound,
                  fmt::format("request {} is not known (never submitted, or purged after its "
                              "grace delay); nothing was canceled",
                              id)));
      return;
    }
    targets.push_back(id);
  }
  for (const auto& ref : request.files()) {
    std::vector<uint64_t> ids = RequestsOf(FileIdFromProto(ref));
    targets.insert(targets.end(), ids.begin(), ids.end());
  }
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());

  v1::CancelReply reply;
  std::map<std::string, v1::CoordinatorMessage> forwards;
  for (uint64_t id : targets) {
    Request* r = Find(id);
    if (store::IsFinal(r->row.state) || r->row.action == hsm::Action::kCancel) continue;
    if (auto pending = cancel_of_.find(id); pending != cancel_of_.end()) {
      reply.add_forwarded(id);  // already forwarded: the cancel it recorded stands
      reply.add_cancel_requests(pending->second);
      continue;
    }
    auto mit = movers_.find(r->row.mover);
    const bool mover_here = mit != movers_.end() && mit->second.connected;
    if (r->row.state == RequestState::kQueued || !r->sent || !mover_here) {
      // Queued, or assigned but never sent, or held by a mover that is away: it ends here.
      // A departed mover that comes back with it in hand is told to drop it.
      const std::string why =
          r->row.state == RequestState::kAssigned && r->sent
              ? fmt::format("canceled while its mover {} was away", r->row.mover)
              : std::string("canceled before it ran");
      reply.add_cancel_requests(RecordCancel(*r, /*done=*/true).row.id);
      r = Find(id);  // RecordCancel may have rehashed requests_
      Finalize(*r, RequestState::kCanceled, ECANCELED, why);
      reply.add_canceled(id);
      continue;
    }
    r->cancel_requested = true;
    const uint64_t epoch = r->row.epoch;
    const std::string mover = r->row.mover;
    reply.add_cancel_requests(RecordCancel(*r, /*done=*/false).row.id);
    reply.add_forwarded(id);
    AddInHand(forwards[mover].mutable_cancel()->mutable_items(), id, epoch);
  }
  for (auto& [mover, msg] : forwards) movers_[mover].channel->Send(Shared(std::move(msg)));
  AfterDurable([reply = std::move(reply), done = std::move(done)](const Status& st) {
    if (!st.ok()) {
      done(Status(Code::kUnavailable,
                  fmt::format("cancel applied but its journal write failed: {}; it is retried, "
                              "check the state directory",
                              st.ToString())));
      return;
    }
    done(reply);
  });
}

void Coordinator::Lock(uint32_t level, Reply<v1::LockReply> done) {
  if (level > 2) {
    done(Status(Code::kInvalidArgument,
                fmt::format("lock level {} is not 0 (dispatch), 1 (accept, dispatch nothing) or 2 "
                            "(lock, then quit once nothing runs)",
                            level)));
    return;
  }
  lock_ = level;
  meta_dirty_.insert("lock");
  quit_armed_ = false;
  if (level == 0) dispatch_needed_ = true;
  spdlog::info("lock set to {}", level);
  AfterDurable([this, level, done = std::move(done)](const Status& st) {
    if (!st.ok()) {
      done(Status(Code::kUnavailable,
                  fmt::format("lock {} applied but its journal write failed: {}; it is retried",
                              level, st.ToString())));
      return;
    }
    if (level == 2 && lock_ == 2) quit_armed_ = true;
    v1::LockReply reply;
    reply.set_lock(lock_);
    done(reply);
  });
}

// Answers a change to mover `id` (drain, capacities) with its MoverInfo once the change is
// durable; a failed write is retried by the journal retry, and the caller is told so.
template <typename ReplyT>
void Coordinator::AnswerWithMover(const std::string& id, const char* what,
                                  Reply<ReplyT> done) {
  AfterDurable([this, id, what, done = std::move(done)](const Status& st) {
    if (!st.ok()) {
      done(Status(Code::kUnavailable,
                  fmt::format("{} of mover {} applied but the journal write failed: {}; it is "
                              "retried",
                              what, id, st.ToString())));
      return;
    }
    ReplyT reply;
    FillMoverInfo(movers_.at(id), reply.mutable_mover());
    done(reply);
  });
}

void Coordinator::Drain(const v1::DrainRequest& request, Reply<v1::DrainReply> done) {
  auto it = movers_.find(request.mover());
  if (it == movers_.end()) {
    done(Status(Code::kNotFound,
                fmt::format("mover '{}' is not known to this coordinator (it never connected); "
                            "`tierflow status` lists the movers",
                            request.mover())));
    return;
  }
  Mover& m = it->second;
  const bool drain = !request.undo();
  if (m.draining != drain) {
    m.draining = drain;
    meta_dirty_.insert(std::string(kDrainMetaPrefix) + m.id);
    if (!drain) dispatch_needed_ = true;
    spdlog::info("mover {} {}; it holds {} actions", m.id,
                 drain ? "drained: it is given nothing new" : "undrained", m.assigned.size());
  }
  AnswerWithMover(m.id, "the drain", std::move(done));
}

void Coordinator::CheckQuit() {
  if (!quit_armed_ || quit_fired_ || lock_ != 2 || assigned_total_ != 0) return;
  quit_fired_ = true;
  spdlog::info("lock 2: nothing is assigned any more; quitting");
  if (quit_handler_) quit_handler_();
}

void Coordinator::Shutdown() {
  shutting_down_ = true;
  Status closing(Code::kUnavailable,
                 "coordinator is shutting down; reconnect to it after it restarts");
  for (auto& [id, m] : movers_) {
    if (m.grace_timer != 0) loop_->CancelTimer(m.grace_timer);
    m.grace_timer = 0;
    if (m.connected && m.channel) m.channel->Close(closing);
  }
  if (backoff_timer_ != 0) loop_->CancelTimer(backoff_timer_);
  backoff_timer_ = 0;
  if (active_sweep_timer_ != 0) loop_->CancelTimer(active_sweep_timer_);
  active_sweep_timer_ = 0;
  if (heartbeat_timer_ != 0) loop_->CancelTimer(heartbeat_timer_);
  heartbeat_timer_ = 0;
  for (auto& [wid, w] : watchers_) w.channel->Finish(closing);
  watchers_.clear();
  watch_index_.clear();
  for (auto& [id, r] : requests_) r.watched = false;
}

// ---- dispatch ----

void Coordinator::Dispatch() {
  dispatch_needed_ = false;
  if (lock_ != 0 || !journal_ok_ || shutting_down_ || sched_.empty()) return;
  sched_.ExpireSlots();
  std::vector<Mover*> ready;
  for (auto& [id, m] : movers_) {
    if (m.connected && !m.draining && !m.silent) ready.push_back(&m);
  }
  if (ready.empty()) return;
  bool more = false;
  for (size_t i = 0; i < ready.size() && !sched_.empty(); ++i) {
    Mover& m = *ready[(rr_ + i) % ready.size()];
    if (DispatchTo(m) >= options_.max_dispatch_per_turn) more = true;
  }
  ++rr_;
  ArmSchedulerTimer();
  if (more && !sched_.empty()) {
    // Another turn, so this one's append stays bounded.
    dispatch_needed_ = true;
    loop_->Post([] {});
  }
}

size_t Coordinator::DispatchTo(Mover& m) {
  Scheduler::Room room;
  for (int kind = 0; kind < kKinds; ++kind) room.kind[kind] = m.Free(kind);
  room.archive_cap = m.cap[KindOf(hsm::Action::kArchive)];
  if (m.max_total > 0) {
    room.total = std::max<int64_t>(0, m.max_total - m.running[0] - m.running[1] - m.running[2]);
  }
  room.budget = options_.max_dispatch_per_turn;
  return sched_.Dispatch(m.id, m.archive_ids, room,
                         [this, &m](uint64_t id) {
                           Request& r = requests_.at(id);
                           r.queued = false;
                           Assign(m, r);
                         });
}

// Slots expire and placement pools fall back with time: dispatch again when the next does.
void Coordinator::ArmSchedulerTimer() {
  int64_t at = sched_.NextDeadlineUs();
  if (at == 0 || (sched_timer_ != 0 && sched_timer_at_ <= at)) return;
  if (sched_timer_ != 0) loop_->CancelTimer(sched_timer_);
  sched_timer_at_ = at;
  sched_timer_ = loop_->RunAt(at, [this] {
    sched_timer_ = 0;
    dispatch_needed_ = true;
  });
}

// A process waits on this restore now (a fanotify reader): it joins the blocking queue. The
// flag is journaled with the row; a request already assigned just keeps running.
void Coordinator::PromoteToBlocking(Request& r) {
  const bool was_queued = r.queued;
  if (was_queued) Dequeue(r);
  r.row.flags |= hsm::kHalFlagBlocking;
  MarkDirty(r);
  if (was_queued) Enqueue(r);
}

void Coordinator::Assign(Mover& m, Request& r) {
  r.active_us = clock_->NowMicros();
  SetState(r, RequestState::kAssigned);
  r.row.mover = m.id;
  ++r.row.epoch;
  ++r.row.attempts;
  ++m.running[KindOf(r.row.action)];
  m.assigned.insert(r.row.id);
  r.send_pending = true;
  r.sent = false;
  r.bytes_done = 0;
  MarkDirty(r);
  current_.sends.push_back(Send{m.id, r.row.id, r.row.epoch});
  // A request assigned in the turn that created it says so after its "new" (OnDurable).
  if (r.durable) Emit(v1::Event::ASSIGN, r, &m);
}

void Coordinator::SendAssigned(const std::vector<Send>& sends) {
  size_t i = 0;
  std::vector<Request*> items;
  while (i < sends.size()) {
    const std::string& mover = sends[i].mover;
    size_t j = i;
    while (j < sends.size() && sends[j].mover == mover) ++j;
    auto mit = movers_.find(mover);
    Mover* m = mit == movers_.end() ? nullptr : &mit->second;
    bool live = m && m->connected && !shutting_down_;
    items.clear();
    for (size_t k = i; k < j; ++k) {
      Request* r = Find(sends[k].id);
      if (!r || r->row.state != RequestState::kAssigned || r->row.mover != mover ||
          r->row.epoch != sends[k].epoch) {
        continue;
      }
      r->send_pending = false;
      if (live) {
        r->sent = true;
        items.push_back(r);
        Emit(v1::Event::SENT, *r, m);
      }
    }
    if (live && !items.empty()) SendItems(*m, items);
    i = j;
  }
}

void Coordinator::SendItems(Mover& m, const std::vector<Request*>& items) {
  struct Open {
    uint32_t archive_id;
    uint64_t flags;
    ArenaMessage<v1::CoordinatorMessage> msg;
    v1::ActionBatch* batch = nullptr;
    size_t bytes = 0;

    void Start() {
      msg = ArenaMessage<v1::CoordinatorMessage>::New();
      batch = msg.msg->mutable_batch();
      batch->set_archive_id(archive_id);
      batch->set_flags(flags);
      bytes = 0;
    }
  };
  size_t byte_limit = options_.max_message_bytes / 2;
  if (m.max_bytes > 0) byte_limit = std::min<size_t>(byte_limit, m.max_bytes);
  std::vector<Open> open;
  auto flush = [&](Open& o) {
    if (o.batch->items_size() == 0) return;
    m.channel->Send(o.msg.Share());
    ++m.batches;
    o.Start();
  };
  for (Request* r : items) {
    Open* o = nullptr;
    for (Open& c : open) {
      if (c.archive_id == r->row.archive_id && c.flags == r->row.flags) o = &c;
    }
    if (!o) {
      o = &open.emplace_back();
      o->archive_id = r->row.archive_id;
      o->flags = r->row.flags;
      o->Start();
    }
    size_t bytes = EstimateItemBytes(r->row);
    if (o->batch->items_size() > 0 &&
        (static_cast<size_t>(o->batch->items_size()) >= options_.max_batch_items ||
         o->bytes + bytes > byte_limit)) {
      flush(*o);
    }
    RowToItem(r->row, o->batch->add_items());
    o->bytes += bytes;
  }
  for (Open& o : open) flush(o);
}

// ---- movers ----

bool Coordinator::Served(uint32_t archive_id) const {
  if (serve_all_ > 0) return true;
  auto it = served_.find(archive_id);
  return it != served_.end() && it->second > 0;
}

void Coordinator::SetConnected(Mover& m, bool connected) {
  if (m.connected == connected) return;
  m.connected = connected;
  sched_.SetConnected(m.id, connected);
  int delta = connected ? 1 : -1;
  if (m.archive_ids.empty()) {
    serve_all_ += delta;
  } else {
    for (uint32_t aid : m.archive_ids) served_[aid] += delta;
  }
}

Coordinator::Mover* Coordinator::FindSessionMover(SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return nullptr;
  auto mit = movers_.find(it->second);
  if (mit == movers_.end() || mit->second.session != session || !mit->second.connected) {
    return nullptr;
  }
  return &mit->second;
}

Result<Coordinator::SessionId> Coordinator::MoverHello(const v1::Hello& hello,
                                                       std::shared_ptr<MoverChannel> channel) {
  if (shutting_down_) {
    return Status(Code::kUnavailable, "coordinator is shutting down; reconnect after it restarts");
  }
  if (hello.id().empty()) {
    return Status(Code::kInvalidArgument, "Hello has no mover id; start the mover with --id NAME");
  }
  auto [it, created] = movers_.try_emplace(hello.id());
  Mover& m = it->second;
  if (created) m.id = hello.id();
  if (m.connected) {
    return Status(Code::kAlreadyExists,
                  fmt::format("mover id '{}' is already connected from host '{}'; stop that mover "
                              "or start this one with another --id",
                              m.id, m.host));
  }
  m.host = hello.host();
  m.archive_ids.assign(hello.archive_ids().begin(), hello.archive_ids().end());
  std::sort(m.archive_ids.begin(), m.archive_ids.end());
  m.archive_ids.erase(std::unique(m.archive_ids.begin(), m.archive_ids.end()), m.archive_ids.end());
  m.archive_ids.erase(std::remove(m.archive_ids.begin(), m.archive_ids.end(), 0u),
                      m.archive_ids.end());
  const auto& caps = hello.capacities();
  m.own_caps = caps;
  ApplyCapacities(m);  // an override set by `tierflow capacity` stays in force
  if (m.grace_timer != 0) loop_->CancelTimer(m.grace_timer);
  m.grace_timer = 0;
  m.session = next_session_++;
  m.channel = std::move(channel);
  m.silent = false;
  m.last_pong_us = clock_->NowMicros();
  ArmHeartbeat();
  sessions_[m.session] = m.id;
  SetConnected(m, true);

  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_session(m.session);
  std::vector<Request*> resend;
  v1::CoordinatorMessage cancels;
  size_t requeued = ReconcileHello(m, hello, welcome.mutable_welcome(), &resend, &cancels);
  int kept = welcome.welcome().keep_size();
  int dropped = welcome.welcome().drop_size();
  m.channel->Send(Shared(std::move(welcome)));
  if (!resend.empty()) SendItems(m, resend);
  if (cancels.cancel().items_size() > 0) m.channel->Send(Shared(std::move(cancels)));
  dispatch_needed_ = true;
  spdlog::info(
      "mover {} connected from host '{}' (session {}): {} archive ids, capacities "
      "archive {} restore {} remove {}; kept {}, resent {}, requeued {}, dropped {}",
      m.id, m.host, m.session, m.archive_ids.size(), caps.max_archive(), caps.max_restore(),
      caps.max_remove(), kept, resend.size(), requeued, dropped);
  return m.session;
}

size_t Coordinator::ReconcileHello(Mover& m, const v1::Hello& hello, v1::Welcome* welcome,
                                   std::vector<Request*>* resend, v1::CoordinatorMessage* cancels) {
  std::unordered_map<uint64_t, uint64_t> in_hand;
  for (const auto& h : hello.in_hand()) in_hand[h.id()] = h.epoch();
  std::vector<uint64_t> assigned(m.assigned.begin(), m.assigned.end());
  std::sort(assigned.begin(), assigned.end());
  size_t requeued = 0;
  for (uint64_t id : assigned) {
    Request& r = *Find(id);
    auto h = in_hand.find(id);
    if (h != in_hand.end() && h->second == r.row.epoch) {
      AddInHand(welcome->mutable_keep(), id, r.row.epoch);
      r.sent = true;
      in_hand.erase(h);
      if (r.cancel_requested) {
        AddInHand(cancels->mutable_cancel()->mutable_items(), id, r.row.epoch);
      }
    } else if (r.send_pending) {
      // Its assignment is still being journaled; it goes out on this session once durable.
    } else if (!r.sent) {
      r.sent = true;
      resend->push_back(&r);
    } else {
      Requeue(r, fmt::format("mover {} reconnected without it", m.id));
      ++requeued;
    }
  }
  for (const auto& [id, epoch] : in_hand) {
    AddInHand(welcome->mutable_drop(), id, epoch);
  }
  return requeued;
}

void Coordinator::MoverReport(SessionId session, const v1::MoverMessage& message) {
  Mover* m = FindSessionMover(session);
  if (!m) return;
  size_t ignored = 0;
  std::vector<std::pair<uint64_t, uint64_t>> acks;
  switch (message.msg_case()) {
    case v1::MoverMessage::kProgress:
      OnProgress(*m, message.progress());
      break;
    case v1::MoverMessage::kResult:
      OnResult(*m, message.result(), &ignored);
      acks.emplace_back(message.result().id(), message.result().epoch());
      break;
    case v1::MoverMessage::kReports:
      for (const auto& p : message.reports().progress()) OnProgress(*m, p);
      acks.reserve(message.reports().results_size());
      for (const auto& res : message.reports().results()) {
        OnResult(*m, res, &ignored);
        acks.emplace_back(res.id(), res.epoch());
      }
      break;
    case v1::MoverMessage::kPong:
      OnPong(*m);
      break;
    case v1::MoverMessage::kCapacities:
      OnCapacities(*m, message.capacities());
      break;
    default:
      spdlog::warn("mover {}: ignoring a message of unexpected kind {}", m->id,
                   static_cast<int>(message.msg_case()));
  }
  if (ignored > 0) {
    spdlog::warn(
        "mover {}: ignored {} result(s) for requests not assigned to it at that epoch "
        "(late, duplicate, or reassigned after a disconnect)",
        m->id, ignored);
  }
  if (!acks.empty()) AckResults(session, std::move(acks));
}

// Applied or ignored, a result is acknowledged only once every change it caused is durable:
// until then the mover keeps it and sends it again on its next session. If the append
// fails, no ack is sent; the mover's next Hello carries the action again.
void Coordinator::AckResults(SessionId session,
                             std::vector<std::pair<uint64_t, uint64_t>> results) {
  AfterDurable([this, session, results = std::move(results)](const Status& st) {
    if (!st.ok()) return;
    Mover* m = FindSessionMover(session);
    if (m == nullptr) return;
    v1::CoordinatorMessage msg;
    auto* items = msg.mutable_acks()->mutable_items();
    items->Reserve(static_cast<int>(results.size()));
    for (const auto& [id, epoch] : results) AddInHand(items, id, epoch);
    m->channel->Send(Shared(std::move(msg)));
  });
}

void Coordinator::OnPong(Mover& m) {
  m.last_pong_us = clock_->NowMicros();
  if (!m.silent) return;
  m.silent = false;
  dispatch_needed_ = true;
  spdlog::info("mover {} answers heartbeats again; it is given work again", m.id);
}

void Coordinator::ArmHeartbeat() {
  if (options_.heartbeat_interval_us <= 0 || shutting_down_ || heartbeat_timer_ != 0) return;
  heartbeat_timer_ = loop_->RunAt(clock_->NowMicros() + options_.heartbeat_interval_us, [this] {
    heartbeat_timer_ = 0;
    Heartbeat();
    ArmHeartbeat();
  });
}

void Coordinator::Heartbeat() {
  const int64_t now = clock_->NowMicros();
  for (auto& [id, m] : movers_) {
    if (!m.connected || !m.channel) continue;
    if (!m.silent && options_.heartbeat_timeout_us > 0 &&
        now - m.last_pong_us >= options_.heartbeat_timeout_us) {
      m.silent = true;
      spdlog::warn(
          "mover {} (host '{}') keeps its stream open but has not answered a heartbeat for "
          "{} s; it is given nothing new, and its {} actions are taken back once they pass "
          "the active request timeout ({} s)",
          m.id, m.host, (now - m.last_pong_us) / 1'000'000, m.assigned.size(),
          options_.active_request_timeout_us / 1'000'000);
    }
    v1::CoordinatorMessage msg;
    msg.mutable_ping()->set_seq(++m.ping_seq);
    m.channel->Send(Shared(std::move(msg)));
  }
}

void Coordinator::OnProgress(Mover& m, const v1::Progress& progress) {
  Request* r = Find(progress.id());
  if (!r || r->row.state != RequestState::kAssigned || r->row.mover != m.id ||
      r->row.epoch != progress.epoch()) {
    return;
  }
  r->bytes_done = progress.bytes_done();
  r->bytes_total = progress.bytes_total();
  r->active_us = clock_->NowMicros();
  Emit(v1::Event::PROGRESS, *r, &m);
  if (r->watched && r->unsynced == 0) NotifyWatchers({r->row.id}, true);
}

void Coordinator::OnResult(Mover& m, const v1::Result& result, size_t* ignored) {
  Request* r = Find(result.id());
  if (!r || r->row.state != RequestState::kAssigned || r->row.mover != m.id ||
      r->row.epoch != result.epoch()) {
    ++*ignored;
    return;
  }
  if (result.bytes() > 0) r->bytes_done = result.bytes();
  int32_t code = result.error_code();
  if (code == 0) {
    ++m.done;
    Finalize(*r, RequestState::kSucceeded, 0, "");
    return;
  }
  std::string error = result.error().empty() ? fmt::format("mover {} failed: {} (errno {})", m.id,
                                                           strerror(code), code)
                                             : result.error();
  if (code == ECANCELED) {
    Finalize(*r, RequestState::kCanceled, code, std::move(error));
    return;
  }
  ++m.failed;
  if (result.retryable() && !options_.no_retry && r->row.attempts < options_.max_attempts &&
      !r->cancel_requested) {
    r->row.error_code = code;
    r->row.error = std::move(error);
    Requeue(*r, "a retryable failure", RetryDelay(r->row.attempts));
    return;
  }
  Finalize(*r, RequestState::kFailed, code, std::move(error));
}

void Coordinator::MoverGone(SessionId session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  std::string id = it->second;
  sessions_.erase(it);
  auto mit = movers_.find(id);
  if (mit == movers_.end() || mit->second.session != session) return;
  Mover& m = mit->second;
  SetConnected(m, false);
  m.channel.reset();
  if (shutting_down_) return;
  spdlog::info(
      "mover {} disconnected (session {}); its {} assigned actions wait {} s for it to "
      "come back",
      m.id, session, m.assigned.size(), options_.mover_grace_us / 1'000'000);
  if (!m.assigned.empty()) StartGrace(m);
}

// Looks for hung actions a tenth of the timeout apart (between 1 s and 60 s), so a request
// is taken back at most that late.
void Coordinator::ArmActiveSweep() {
  if (options_.active_request_timeout_us <= 0 || shutting_down_) return;
  const int64_t every =
      std::clamp<int64_t>(options_.active_request_timeout_us / 10, 1'000'000, 60'000'000);
  active_sweep_timer_ = loop_->RunAt(clock_->NowMicros() + every, [this] {
    active_sweep_timer_ = 0;
    SweepActive();
    ArmActiveSweep();
  });
}

// A mover that keeps its stream but stops reporting on an action (a hung copy, a stuck
// device) would hold it forever: past the timeout the action is canceled at the mover and
// the request requeued (its late result, from an old epoch, is then ignored).
void Coordinator::SweepActive() {
  const int64_t now = clock_->NowMicros();
  const int64_t timeout = options_.active_request_timeout_us;
  std::vector<Request*> hung;
  for (auto& [mid, m] : movers_) {
    for (uint64_t id : m.assigned) {
      Request* r = Find(id);
      if (r == nullptr) continue;
      if (r->active_us == 0) r->active_us = now;  // assigned before a restart: count from now
      if (now - r->active_us >= timeout) hung.push_back(r);
    }
  }
  std::sort(hung.begin(), hung.end(),
            [](const Request* a, const Request* b) { return a->row.id < b->row.id; });
  for (Request* r : hung) {
    auto mit = movers_.find(r->row.mover);
    if (mit != movers_.end() && mit->second.connected && r->sent) {
      v1::CoordinatorMessage msg;
      AddInHand(msg.mutable_cancel()->mutable_items(), r->row.id, r->row.epoch);
      mit->second.channel->Send(Shared(std::move(msg)));
    }
    const std::string why = fmt::format("mover {} reported nothing on it for {} s",
                                        r->row.mover, timeout / 1'000'000);
    spdlog::warn("request {} ({}): {}; taking it back", r->row.id, r->row.path, why);
    if (r->row.attempts >= options_.max_attempts) {
      Finalize(*r, RequestState::kFailed, ETIMEDOUT, why);
    } else {
      r->row.error_code = ETIMEDOUT;
      r->row.error = why;
      Requeue(*r, why);
    }
  }
}

void Coordinator::StartGrace(Mover& m) {
  if (m.grace_timer != 0) loop_->CancelTimer(m.grace_timer);
  m.grace_timer = loop_->RunAt(clock_->NowMicros() + options_.mover_grace_us,
                               [this, id = m.id] { OnGraceExpired(id); });
}

void Coordinator::OnGraceExpired(const std::string& mover_id) {
  auto it = movers_.find(mover_id);
  if (it == movers_.end()) return;
  Mover& m = it->second;
  m.grace_timer = 0;
  if (m.connected || shutting_down_) return;
  std::vector<uint64_t> ids(m.assigned.begin(), m.assigned.end());
  std::sort(ids.begin(), ids.end());
  spdlog::warn("mover {} did not come back within {} s; requeuing its {} actions", m.id,
               options_.mover_grace_us / 1'000'000, ids.size());
  std::string why = fmt::format("mover {} did not come back within its grace delay", m.id);
  sched_.ReleaseSlots(m.id);
  for (uint64_t id : ids) {
    if (Request* r = Find(id)) Requeue(*r, why);
  }
}

// ---- waiters ----

Result<Coordinator::WatchId> Coordinator::Watch(const std::vector<uint64_t>& ids,
                                                std::shared_ptr<WaitChannel> channel) {
  for (uint64_t id : ids) {
    if (!Find(id)) {
      return Status(Code::kNotFound,
                    fmt::format("request {} is not known (never submitted, or purged after its "
                                "grace delay)",
                                id));
    }
  }
  WatchId wid = next_watch_++;
  Watcher w;
  w.channel = std::move(channel);
  std::vector<const Request*> snapshot;
  absl::flat_hash_set<uint64_t> seen;
  for (uint64_t id : ids) {
    if (!seen.insert(id).second) continue;
    Request& r = *Find(id);
    if (r.unsynced == 0) {
      snapshot.push_back(&r);
      if (store::IsFinal(r.row.state)) continue;
    }
    w.remaining.insert(id);
    watch_index_[id].push_back(wid);
    r.watched = true;
  }
  if (!snapshot.empty()) SendChunked(*w.channel, snapshot);
  if (w.remaining.empty()) {
    w.channel->Finish(Status::Ok());
    return wid;
  }
  watchers_.emplace(wid, std::move(w));
  return wid;
}

void Coordinator::Unwatch(WatchId watch) {
  auto it = watchers_.find(watch);
  if (it == watchers_.end()) return;
  for (uint64_t id : it->second.remaining) {
    auto idx = watch_index_.find(id);
    if (idx == watch_index_.end()) continue;
    auto& wids = idx->second;
    wids.erase(std::remove(wids.begin(), wids.end(), watch), wids.end());
    if (wids.empty()) {
      watch_index_.erase(idx);
      if (Request* r = Find(id)) r->watched = false;
    }
  }
  watchers_.erase(it);
}

void Coordinator::FinishWatchersOf(uint64_t id, const Status& status) {
  auto idx = watch_index_.find(id);
  if (idx == watch_index_.end()) return;
  std::vector<WatchId> wids(idx->second.begin(), idx->second.end());
  for (WatchId wid : wids) {
    auto it = watchers_.find(wid);
    if (it == watchers_.end()) continue;
    it->second.channel->Finish(status);
    Unwatch(wid);
  }
}

void Coordinator::AddInfo(const Request& r, v1::WaitUpdate* update) const {
  v1::RequestInfo* info = update->add_requests();
  RowToInfo(r.row, info);
  info->set_bytes_done(r.bytes_done);
  info->set_bytes_total(r.bytes_total);
  if (r.row.state == RequestState::kQueued) {
    info->set_waiting_reason(wire::DisplayText(WaitingReason(r)));
  }
}

void Coordinator::SendChunked(WaitChannel& channel, std::vector<const Request*>& items) const {
  auto update = ArenaMessage<v1::WaitUpdate>::New();
  size_t bytes = 0;
  for (const Request* r : items) {
    size_t b = EstimateItemBytes(r->row);
    if (update.msg->requests_size() > 0 &&
        (update.msg->requests_size() >= static_cast<int>(kMaxInfosPerUpdate) ||
         bytes + b > options_.max_message_bytes / 2)) {
      channel.Send(update.Share());
      update = ArenaMessage<v1::WaitUpdate>::New();
      bytes = 0;
    }
    AddInfo(*r, update.msg);
    bytes += b;
  }
  if (update.msg->requests_size() > 0) channel.Send(update.Share());
}

void Coordinator::NotifyWatchers(const std::vector<uint64_t>& ids, bool progress_only) {
  if (watchers_.empty() || ids.empty()) return;
  std::unordered_map<WatchId, std::vector<const Request*>> per_watcher;
  for (uint64_t id : ids) {
    const Request* r = Find(id);
    if (!r || !r->watched) continue;
    auto idx = watch_index_.find(id);
    if (idx == watch_index_.end()) continue;
    for (WatchId wid : idx->second) per_watcher[wid].push_back(r);
  }
  for (auto& [wid, items] : per_watcher) {
    auto it = watchers_.find(wid);
    if (it == watchers_.end()) continue;
    Watcher& w = it->second;
    SendChunked(*w.channel, items);
    if (progress_only) continue;
    for (const Request* r : items) {
      if (!store::IsFinal(r->row.state)) continue;
      uint64_t id = r->row.id;
      w.remaining.erase(id);
      auto idx = watch_index_.find(id);
      if (idx == watch_index_.end()) continue;
      auto& wids = idx->second;
      wids.erase(std::remove(wids.begin(), wids.end(), wid), wids.end());
      if (wids.empty()) {
        watch_index_.erase(idx);
        Find(id)->watched = false;
      }
    }
    if (w.remaining.empty()) {
      w.channel->Finish(Status::Ok());
      watchers_.erase(it);
    }
  }
}

// ---- purge of final records and idempotency keys ----

void Coordinator::SchedulePurge(Request& r) {
  r.purge_scheduled = true;
  purge_fifo_.emplace_back(clock_->NowMicros() + options_.final_grace_us, r.row.id);
  ArmPurgeTimer();
}

void Coordinator::ArmPurgeTimer() {
  if (purge_timer_ != 0 || purge_fifo_.empty()) return;
  purge_timer_ = loop_->RunAt(purge_fifo_.front().first, [this] {
    purge_timer_ = 0;
    RunPurge();
  });
}

void Coordinator::RunPurge() {
  int64_t now = clock_->NowMicros();
  while (!purge_fifo_.empty() && purge_fifo_.front().first <= now) {
    uint64_t id = purge_fifo_.front().second;
    purge_fifo_.pop_front();
    Request* r = Find(id);
    if (!r || !store::IsFinal(r->row.state) || r->unsynced != 0) continue;
    Forget(id);
    extra_records_.push_back(JournalRecord::Delete(id));
  }
  ArmPurgeTimer();
}

void Coordinator::ArmIdempotencyTimer() {
  if (idempotency_timer_ != 0 || idempotency_fifo_.empty()) return;
  idempotency_timer_ = loop_->RunAt(idempotency_fifo_.front().first, [this] {
    idempotency_timer_ = 0;
    RunIdempotencyExpiry();
  });
}

void Coordinator::RunIdempotencyExpiry() {
  int64_t now = clock_->NowMicros();
  int64_t wall = clock_->WallMicros();
  while (!idempotency_fifo_.empty() && idempotency_fifo_.front().first <= now) {
    std::string key = std::move(idempotency_fifo_.front().second);
    idempotency_fifo_.pop_front();
    auto it = idempotency_.find(key);
    if (it == idempotency_.end()) continue;
    // A key written again later has a later deadline further down the FIFO.
    if (it->second.created_us + options_.idempotency_ttl_us > wall + 1'000'000) continue;
    idempotency_.erase(it);
    extra_records_.push_back(JournalRecord::DeleteIdempotency(key));
  }
  ArmIdempotencyTimer();
}

// ---- reporting ----

std::string Coordinator::WaitingReason(const Request& r) const {
  if (r.row.state != RequestState::kQueued) return "";
  if (!r.durable) return "waiting for its journal write";
  if (!journal_ok_) {
    return fmt::format("journal writes are failing ({}); dispatch is paused until one succeeds",
                       journal_error_);
  }
  if (lock_ != 0) {
    return fmt::format("the coordinator is locked (lock {}); run `tierflow unlock` to dispatch",
                       lock_);
  }
  if (r.retry_at_us != 0) {
    return fmt::format("retrying in {:.1f} s (attempt {} of {}) after: {}",
                       static_cast<double>(r.retry_at_us - clock_->NowMicros()) / 1e6,
                       r.row.attempts + 1, options_.max_attempts, r.row.error);
  }
  uint32_t aid = r.row.archive_id;
  if (!Served(aid)) {
    return fmt::format(
        "archive id {} is not served by any connected mover; start a mover with "
        "--archive-id {}",
        aid, aid);
  }
  if (std::string held = sched_.Holding(r.ticket); !held.empty()) return held;
  int kind = KindOf(r.row.action);
  for (const auto& [id, m] : movers_) {
    if (m.connected && m.Serves(aid) && m.Free(kind) > 0) return "waiting for the next dispatch";
  }
  return fmt::format("every connected mover serving archive id {} is at its {} capacity", aid,
                     hsm::ActionName(r.row.action));
}

std::vector<std::string> Coordinator::Warnings() const {
  std::vector<std::string> out;
  std::set<uint32_t> unserved;
  for (uint32_t aid : sched_.ArchiveIds()) {
    if (!Served(aid)) unserved.insert(aid);
  }
  for (uint32_t aid : unserved) {
    out.push_back(
        fmt::format("archive id {} is not served by any connected mover; start a mover "
                    "with --archive-id {}",
                    aid, aid));
  }
  if (lock_ != 0 && queued_total_ > 0) {
    out.push_back(
        fmt::format("the coordinator is locked (lock {}): {} queued requests wait; run "
                    "`tierflow lock 0` to dispatch them",
                    lock_, queued_total_));
  }
  for (const auto& [id, m] : movers_) {
    if (m.connected && m.silent) {
      out.push_back(fmt::format(
          "mover {} has not answered a heartbeat for {} s; it is given nothing new (is the "
          "process stopped or hung on its host '{}'?)",
          id, (clock_->NowMicros() - m.last_pong_us) / 1'000'000, m.host));
    }
    if (m.draining) {
      out.push_back(fmt::format(
          "mover {} is drained: it is given nothing new ({} actions in hand); run `tierflow "
          "drain --undo {}` to give it work again",
          id, m.assigned.size(), id));
    }
  }
  if (!journal_ok_) {
    out.push_back(
        fmt::format("journal writes are failing ({}); new requests are refused until a "
                    "write succeeds; check the state directory's disk",
                    journal_error_));
  }
  return out;
}

v1::StateReply Coordinator::State(const v1::StateRequest& request) const {
  v1::StateReply reply;
  for (const auto& ref : request.files()) {
    for (uint64_t id : RequestsOf(FileIdFromProto(ref))) Describe(*Find(id), reply.add_requests());
  }
  return reply;
}

// The listing's view of a request: its row with data and requester (which wait updates leave
// out), progress, and why it waits.
void Coordinator::Describe(const Request& r, v1::RequestInfo* info) const {
  RowToInfo(r.row, info);
  if (!r.row.data.empty()) info->set_data(r.row.data);
  if (!r.row.user.empty()) info->set_user(r.row.user);
  if (r.row.has_owner) {
    info->mutable_owner()->set_uid(r.row.owner_uid);
    info->mutable_owner()->set_gid(r.row.owner_gid);
    info->mutable_owner()->set_projid(r.row.projid);
  }
  info->set_bytes_done(r.bytes_done);
  info->set_bytes_total(r.bytes_total);
  info->set_waiting_reason(wire::DisplayText(WaitingReason(r)));
}

void Coordinator::ListRequests(uint32_t limit, v1::StatusReply* reply) const {
  auto add = [&](const Request& r) {
    if (static_cast<uint32_t>(reply->requests_size()) >= limit) return false;
    Describe(r, reply->add_requests());
    return true;
  };
  for (const auto& [id, m] : movers_) {
    std::vector<uint64_t> ids(m.assigned.begin(), m.assigned.end());
    std::sort(ids.begin(), ids.end());
    for (uint64_t rid : ids) {
      if (!add(*Find(rid))) return;
    }
  }
  bool full = false;
  sched_.ForEachQueued([&](uint64_t rid, uint32_t) { return !(full = !add(*Find(rid))); });
  if (full) return;
  for (const auto& [due, rid] : backoff_) {
    const Request* r = Find(rid);
    if (r && r->retry_at_us == due && r->row.state == RequestState::kQueued && !add(*r)) return;
  }
  for (auto it = purge_fifo_.rbegin(); it != purge_fifo_.rend(); ++it) {
    const Request* r = Find(it->second);
    if (r && !add(*r)) return;
  }
}

namespace {

// The filters of a status listing, as one predicate over rows.
class RowFilter {
 public:
  explicit RowFilter(const v1::StatusRequest& request) : request_(request) {
    for (int a : request.actions()) actions_ |= a >= 0 && a < 64 ? uint64_t{1} << a : 0;
    for (int s : request.states()) states_ |= s >= 0 && s < 64 ? uint64_t{1} << s : 0;
    // `user` is the requester's name, or a number: the uid of the file's owner.
    const std::string& user = request.user();
    auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), uid_);
    by_uid_ = !user.empty() && ec == std::errc() && end == user.data() + user.size();
  }
  bool operator()(const RequestRow& row) const {
    const v1::StatusRequest& q = request_;
    if (q.actions_size() > 0 && !((actions_ >> ActionToProto(row.action)) & 1)) return false;
    if (q.states_size() > 0 && !((states_ >> StateToProto(row.state)) & 1)) return false;
    if (!q.mover().empty() && row.mover != q.mover()) return false;
    if (!q.user().empty() && row.user != q.user() &&
        !(by_uid_ && row.has_owner && row.owner_uid == uid_)) {
      return false;
    }
    return q.tag().empty() || HasTag(row.data, q.tag());
  }

 private:
  const v1::StatusRequest& request_;
  uint64_t actions_ = 0, states_ = 0;  // a bit per enum value
  uint32_t uid_ = 0;
  bool by_uid_ = false;
};

bool IsFilteredListing(const v1::StatusRequest& request) {
  return request.include_requests() &&
         (request.actions_size() > 0 || request.states_size() > 0 || !request.mover().empty() ||
          !request.tag().empty() || !request.user().empty() || request.after_id() != 0);
}

}  // namespace

struct Coordinator::Listing {
  explicit Listing(const v1::StatusRequest& r)
      : request(r), filter(request), limit(r.limit() == 0 ? 1000 : r.limit()), last(r.after_id()) {}
  Listing(const Listing&) = delete;
  Listing& operator=(const Listing&) = delete;
  const v1::StatusRequest request;
  const RowFilter filter;  // refers to `request`
  const uint32_t limit;
  uint64_t last;           // the last id walked
  v1::StatusReply reply;   // the requests listed so far, and next_after_id
  Reply<v1::StatusReply> done;
};

// Ids are allocated in order and never reused; ids_ holds the live ones in order, so a page is
// the first `limit` matches above after_id and one more match says there is a next page. A
// slice resumes above the last id walked, whatever changed in between. Measured with 1,000,000
// queued (2 cores): a page of 1000 in about 1.5 ms; a filter matching nothing walks them all,
// about 100 ms in slices of kListSlice (a few ms each) between which the loop goes on.
bool Coordinator::ListSlice(Listing& l, size_t budget) const {
  for (auto it = ids_.upper_bound(l.last); it != ids_.end(); ++it) {
    if (budget-- == 0) return false;
    l.last = *it;
    const Request* r = Find(*it);
    if (r == nullptr || !l.filter(r->row)) continue;
    if (static_cast<uint32_t>(l.reply.requests_size()) == l.limit) {
      l.reply.set_next_after_id(l.reply.requests(l.reply.requests_size() - 1).id());
      return true;
    }
    Describe(*r, l.reply.add_requests());
  }
  return true;
}

v1::StatusReply Coordinator::FinishListing(Listing& l) const {
  v1::StatusRequest header = l.request;
  header.set_include_requests(false);
  v1::StatusReply reply = GetStatus(header);
  reply.mutable_requests()->Swap(l.reply.mutable_requests());
  reply.set_next_after_id(l.reply.next_after_id());
  return reply;
}

void Coordinator::AnswerStatus(const v1::StatusRequest& request, Reply<v1::StatusReply> done) {
  if (!IsFilteredListing(request)) {
    done(GetStatus(request));
    return;
  }
  auto l = std::make_shared<Listing>(request);
  l->done = std::move(done);
  ContinueListing(std::move(l));
}

void Coordinator::ContinueListing(std::shared_ptr<Listing> l) {
  if (!ListSlice(*l, kListSlice)) {
    loop_->Post([this, l] { ContinueListing(l); });
    return;
  }
  l->done(FinishListing(*l));
}

void Coordinator::FillMoverInfo(const Mover& m, v1::MoverInfo* info) const {
  info->set_id(m.id);
  info->set_host(m.host);
  for (uint32_t aid : m.archive_ids) info->add_archive_ids(aid);
  info->mutable_capacities()->set_max_restore(static_cast<int32_t>(m.cap[0]));
  info->mutable_capacities()->set_max_remove(static_cast<int32_t>(m.cap[1]));
  info->mutable_capacities()->set_max_archive(static_cast<int32_t>(m.cap[2]));
  info->mutable_capacities()->set_max_bytes(m.max_bytes);
  info->mutable_capacities()->set_max_total(static_cast<uint32_t>(m.max_total));
  info->set_capacity_override(m.cap_override.has_value());
  info->set_connected(m.connected);
  info->set_running(m.assigned.size());
  info->set_running_restore(m.running[KindOf(hsm::Action::kRestore)]);
  info->set_running_remove(m.running[KindOf(hsm::Action::kRemove)]);
  info->set_running_archive(m.running[KindOf(hsm::Action::kArchive)]);
  info->set_done(m.done);
  info->set_failed(m.failed);
  info->set_batches(m.batches);
  info->set_draining(m.draining);
  if (m.connected && m.silent) info->set_silent_us(clock_->NowMicros() - m.last_pong_us);
  for (const Scheduler::SlotInfo& s : sched_.Slots(m.id)) {
    v1::BatchSlot* slot = info->add_slots();
    slot->set_value(wire::DisplayText(s.value));
    slot->set_running(s.running);
    slot->set_taken(s.taken);
    slot->set_held_us(s.held_us);
    slot->set_idle_us(s.idle_us);
  }
}

v1::StatusReply Coordinator::GetStatus(const v1::StatusRequest& request) const {
  v1::StatusReply reply;
  for (int kind = 0; kind < kCounterKinds; ++kind) {
    v1::ActionCounters* c = reply.add_counters();
    c->set_action(ActionToProto(kind == kKinds ? hsm::Action::kCancel : ActionOfKind(kind)));
    const auto& n = counts_[kind];
    c->set_queued(n[static_cast<int>(RequestState::kQueued)]);
    c->set_assigned(n[static_cast<int>(RequestState::kAssigned)]);
    c->set_succeeded(n[static_cast<int>(RequestState::kSucceeded)]);
    c->set_failed(n[static_cast<int>(RequestState::kFailed)]);
    c->set_canceled(n[static_cast<int>(RequestState::kCanceled)]);
  }
  for (const auto& [id, m] : movers_) FillMoverInfo(m, reply.add_movers());
  reply.set_lock(lock_);
  for (std::string& w : Warnings()) reply.add_warnings(wire::DisplayText(w));
  reply.set_journal_records(journal_->committed_records());
  if (IsFilteredListing(request)) {
    Listing l(request);
    ListSlice(l, SIZE_MAX);
    reply.mutable_requests()->Swap(l.reply.mutable_requests());
    reply.set_next_after_id(l.reply.next_after_id());
  } else if (request.include_requests()) {
    ListRequests(request.limit() == 0 ? 1000 : request.limit(), &reply);
  }
  return reply;
}

// ---- runtime capacities ----

namespace {

// The value of meta "capacity/<mover>": "archive=N restore=N remove=N total=N", or "" when no
// override is in force. max_bytes is not overridden: it is the size of the mover's own
// receive buffer.
std::string EncodeCapacities(const v1::Capacities& c) {
  return fmt::format("archive={} restore={} remove={} total={}", c.max_archive(), c.max_restore(),
                     c.max_remove(), c.max_total());
}

std::optional<v1::Capacities> DecodeCapacities(std::string_view text) {
  v1::Capacities c;
  while (!text.empty()) {
    size_t end = std::min(text.find(' '), text.size());
    std::string_view token = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (token.empty()) continue;
    size_t eq = token.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = token.substr(0, eq), value = token.substr(eq + 1);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || p != value.data() + value.size() || v < -1 || v > INT32_MAX) {
      return std::nullopt;
    }
    if (key == "archive") {
      c.set_max_archive(static_cast<int32_t>(v));
    } else if (key == "restore") {
      c.set_max_restore(static_cast<int32_t>(v));
    } else if (key == "remove") {
      c.set_max_remove(static_cast<int32_t>(v));
    } else if (key == "total") {
      if (v < 0) return std::nullopt;
      c.set_max_total(static_cast<uint32_t>(v));
    }  // other keys: written by a later version; ignored
  }
  return c;
}

std::string CapacityText(const v1::Capacities& c) {
  auto n = [](int32_t v) { return v < 0 ? std::string("unlimited") : std::to_string(v); };
  std::string text = fmt::format("archive {} restore {} remove {}", n(c.max_archive()),
                                 n(c.max_restore()), n(c.max_remove()));
  if (c.max_total() > 0) text += fmt::format(" total {}", c.max_total());
  return text;
}

}  // namespace

void Coordinator::ApplyCapacities(Mover& m) {
  const v1::Capacities& c = m.cap_override ? *m.cap_override : m.own_caps;
  auto bound = [](int32_t v) { return v < 0 ? int64_t{-1} : int64_t{v}; };
  m.cap[KindOf(hsm::Action::kRestore)] = bound(c.max_restore());
  m.cap[KindOf(hsm::Action::kRemove)] = bound(c.max_remove());
  m.cap[KindOf(hsm::Action::kArchive)] = bound(c.max_archive());
  m.max_total = c.max_total();
  m.max_bytes = m.own_caps.max_bytes();
  dispatch_needed_ = true;
}

void Coordinator::OnCapacities(Mover& m, const v1::Capacities& caps) {
  m.own_caps = caps;
  if (m.cap_override) {
    m.max_bytes = caps.max_bytes();
    spdlog::info(
        "mover {} announced capacities {}; the ones set by `tierflow capacity` ({}) stay in "
        "force until `tierflow capacity {} --reset`",
        m.id, CapacityText(caps), CapacityText(*m.cap_override), m.id);
    return;
  }
  ApplyCapacities(m);
  spdlog::info("mover {} capacities now {}", m.id, CapacityText(caps));
}

std::string Coordinator::CapacityMetaValue(const std::string& mover_id) const {
  auto it = movers_.find(mover_id);
  if (it == movers_.end() || !it->second.cap_override) return "";
  return EncodeCapacities(*it->second.cap_override);
}

void Coordinator::RecoverCapacities(const std::map<std::string, std::string>& meta) {
  for (auto it = meta.lower_bound(std::string(kCapacityMetaPrefix));
       it != meta.end() && it->first.starts_with(kCapacityMetaPrefix); ++it) {
    if (it->second.empty()) continue;
    std::string id = it->first.substr(kCapacityMetaPrefix.size());
    std::optional<v1::Capacities> caps = DecodeCapacities(it->second);
    if (!caps) {
      spdlog::warn(
          "journal meta {} = '{}' is not a capacity setting; ignoring it: mover {} uses its "
          "own capacities until `tierflow capacity {}` sets them again",
          it->first, it->second, id, id);
      continue;
    }
    auto [mit, created] = movers_.try_emplace(id);
    if (created) mit->second.id = id;
    mit->second.cap_override = *caps;
    ApplyCapacities(mit->second);
  }
}

void Coordinator::SetCapacity(const v1::CapacityRequest& request,
                              Reply<v1::CapacityReply> done) {
  auto it = movers_.find(request.mover());
  if (it == movers_.end()) {
    done(Status(Code::kNotFound,
                fmt::format("mover '{}' is not known to this coordinator (it never connected); "
                            "`tierflow status` lists the movers",
                            request.mover())));
    return;
  }
  Mover& m = it->second;
  if (request.reset()) {
    m.cap_override.reset();
  } else {
    m.cap_override = request.capacities();
    m.cap_override->clear_max_bytes();
  }
  ApplyCapacities(m);
  meta_dirty_.insert(std::string(kCapacityMetaPrefix) + m.id);
  spdlog::info("mover {} capacities set to {}{}; it holds {} actions", m.id,
               CapacityText(m.cap_override ? *m.cap_override : m.own_caps),
               m.cap_override ? "" : " (its own)", m.assigned.size());
  AnswerWithMover(m.id, "the capacities", std::move(done));
}

}  // namespace tierflow::coordinator
