// Dispatch queues and policy (see scheduler.h). Loop thread only.
#include "coordinator/scheduler.h"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "hsm/action.h"

namespace tierflow::coordinator {
namespace {

constexpr int kKindOfClass[kWorkClasses] = {0, 0, 1, 2};  // restore, restore, remove, archive
constexpr int kArchiveClass = static_cast<int>(WorkClass::kArchive);
constexpr int kRingPoints = 64;  // virtual nodes per mover on a hash ring
// Open batch values looked at for one mover before giving up (values it may not take, by
// archive id or placement, are skipped).
constexpr int kOpenScan = 64;

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// A fair-share weight key as the lanes name owners: names of users or groups become their
// numeric ids when fair share is by owner or group.
std::string OwnerKey(ShareBy by, const std::string& name) {
  if (AllDigits(name) || (by != ShareBy::kOwner && by != ShareBy::kGroup)) return name;
  char buf[4096];
  if (by == ShareBy::kOwner) {
    passwd pw{}, *out = nullptr;
    if (getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &out) == 0 && out) {
      return std::to_string(out->pw_uid);
    }
  } else {
    group gr{}, *out = nullptr;
    if (getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &out) == 0 && out) {
      return std::to_string(out->gr_gid);
    }
  }
  spdlog::warn("fair_share weight for {} {}: no such {} on this host; it applies to nobody",
               by == ShareBy::kOwner ? "user" : "group", name,
               by == ShareBy::kOwner ? "user" : "group");
  return "?" + name;
}

}  // namespace

uint32_t Scheduler::Interned::Intern(std::string_view name) {
  auto it = index.find(absl::string_view(name.data(), name.size()));
  if (it != index.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(names.size());
  names.emplace_back(name);
  index.emplace(std::string(name), id);
  return id;
}

// FNV-1a, mixed: stable across runs, hosts and versions, unlike std::hash, because a ring
// must send a value to the same mover after a restart.
uint64_t Scheduler::Hash(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h);
}

Scheduler::Scheduler(const SchedulingOptions& options, Clock* clock, Lookup lookup)
    : options_(options),
      clock_(clock),
      lookup_(std::move(lookup)),
      fifo_(options.order.policy == "fifo") {
  owners_.Intern("");  // lane 0: everyone, when fair share is off or the owner is unknown
  owner_weight_.push_back(options_.fair_share.default_weight);
  std::map<std::string, double> weights;
  for (const auto& [name, w] : options_.fair_share.weights) {
    weights[OwnerKey(options_.fair_share.by, name)] = w;
  }
  for (const auto& [key, w] : weights) {
    owners_.Intern(key);
    owner_weight_.push_back(w);
  }
  const int64_t now = clock_->NowMicros();
  pools_.push_back(Pool{});  // pool 0: any mover
  pools_[0].what = "any mover";
  rings_.resize(options_.placement.size());
  named_pool_.assign(options_.placement.size(), 0);
  for (size_t i = 0; i < options_.placement.size(); ++i) {
    const PlacementRule& rule = options_.placement[i];
    std::string movers = fmt::format("{}", fmt::join(rule.movers, ", "));
    if (rule.hash_key.empty()) {
      Pool p;
      p.members = rule.movers;
      p.fallback_any = true;
      p.fallback_after_us = rule.fallback_after_us;
      p.absent_since_us = now;
      p.what = fmt::format("mover(s) {} (placement {})", movers, rule.tag);
      named_pool_[i] = static_cast<uint32_t>(pools_.size());
      pools_.push_back(std::move(p));
      continue;
    }
    for (const std::string& m : rule.movers) {
      Pool p;
      p.members = {m};
      p.fallback = rule.movers;
      p.fallback_after_us = rule.fallback_after_us;
      p.absent_since_us = now;
      p.what = fmt::format("mover {} (placement by hash of {} over {})", m, rule.hash_key, movers);
      uint32_t pool = static_cast<uint32_t>(pools_.size());
      pools_.push_back(std::move(p));
      for (int v = 0; v < kRingPoints; ++v) {
        rings_[i].emplace_back(Hash(fmt::format("{}#{}", m, v)), pool);
      }
    }
    std::sort(rings_[i].begin(), rings_[i].end());
  }
}

// ---- classification ----

Ticket Scheduler::Classify(const store::RequestRow& row) {
  Ticket t;
  if (fifo_) return t;
  const bool archive = row.action == hsm::Action::kArchive;
  switch (row.action) {
    case hsm::Action::kRestore:
      t.cls = static_cast<uint8_t>((row.flags & hsm::kHalFlagBlocking) ? WorkClass::kBlockingRestore
                                                                        : WorkClass::kRestore);
      break;
    case hsm::Action::kRemove:
      t.cls = static_cast<uint8_t>(WorkClass::kRemove);
      break;
    default:
      t.cls = static_cast<uint8_t>(WorkClass::kArchive);
  }
  std::string owner;
  switch (options_.fair_share.by) {
    case ShareBy::kNone:
      break;
    case ShareBy::kRequester:
      owner = row.user;
      break;
    case ShareBy::kOwner:
      if (row.has_owner) owner = std::to_string(row.owner_uid);
      break;
    case ShareBy::kGroup:
      if (row.has_owner) owner = std::to_string(row.owner_gid);
      break;
    case ShareBy::kProject:
      if (row.has_owner) owner = std::to_string(row.projid);
      break;
  }
  if (!owner.empty()) {
    t.owner = owners_.Intern(owner);
    if (t.owner == owner_weight_.size()) owner_weight_.push_back(options_.fair_share.default_weight);
  }
  if (!archive) return t;
  for (size_t i = 0; i < options_.placement.size() && t.pool == 0; ++i) {
    const PlacementRule& rule = options_.placement[i];
    if (rule.hash_key.empty()) {
      if (HasTag(row.data, rule.tag)) t.pool = named_pool_[i];
      continue;
    }
    auto value = TagValue(row.data, rule.hash_key);
    if (!value) continue;
    const auto& ring = rings_[i];
    auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(Hash(*value), uint32_t{0}));
    t.pool = (it == ring.end() ? ring.front() : *it).second;
  }
  if (!options_.batching.tag.empty()) {
    if (auto value = TagValue(row.data, options_.batching.tag)) {
      auto it = batch_ids_.find(absl::string_view(value->data(), value->size()));
      if (it == batch_ids_.end()) {
        while (next_batch_ == 0 || batches_.contains(next_batch_)) ++next_batch_;  // wrapped
        it = batch_ids_.emplace(std::string(*value), next_batch_++).first;
        batches_[it->second].value = it->first;
      }
      t.batch = it->second;
    }
  }
  return t;
}

std::string Scheduler::HashTarget(size_t rule, std::string_view value) const {
  const auto& ring = rings_.at(rule);
  if (ring.empty()) return "";
  auto it = std::lower_bound(ring.begin(), ring.end(), std::make_pair(Hash(value), uint32_t{0}));
  return pools_[(it == ring.end() ? ring.front() : *it).second].members.front();
}

// ---- queues ----

void Scheduler::Add(uint64_t id, uint32_t archive_id, uint64_t flags, const Ticket& t) {
  Queue& q = queues_[QueueKey{t.cls, t.batch, archive_id, flags, t.pool}];
  auto [lit, fresh] = q.lanes.try_emplace(t.owner);
  Lane& lane = lit->second;
  if (fresh) {
    // An owner with nothing queued starts at the current pass: idle time saves no credit.
    lane.pass = std::max(lane.pass, q.vtime);
    q.by_pass.emplace(Finish(lane.pass, t.owner), t.owner);
  } else if (id < *lane.ids.begin()) {
    q.by_head.erase({*lane.ids.begin(), t.owner});
  }
  if (fresh || id < *lane.ids.begin()) q.by_head.emplace(id, t.owner);
  lane.ids.insert(id);
  ++q.size;
  ++size_;
  if (class_size_[t.cls]++ == 0) {
    class_pass_[t.cls] = std::max(class_pass_[t.cls], class_vtime_);
  }
  if (t.batch != 0) {
    Batch& b = batches_[t.batch];
    ++b.queued;
    if (id < b.head) RefreshBatch(t.batch);
  }
}

void Scheduler::Remove(uint64_t id, uint32_t archive_id, uint64_t flags, const Ticket& t) {
  auto qit = queues_.find(QueueKey{t.cls, t.batch, archive_id, flags, t.pool});
  if (qit == queues_.end()) return;
  Queue& q = qit->second;
  auto lit = q.lanes.find(t.owner);
  if (lit == q.lanes.end()) return;
  Lane& lane = lit->second;
  const uint64_t head = *lane.ids.begin();
  if (lane.ids.erase(id) == 0) return;
  --q.size;
  --size_;
  --class_size_[t.cls];
  if (head == id) {
    q.by_head.erase({head, t.owner});
    if (!lane.ids.empty()) q.by_head.emplace(*lane.ids.begin(), t.owner);
  }
  if (lane.ids.empty()) {
    q.by_pass.erase({Finish(lane.pass, t.owner), t.owner});
    q.lanes.erase(lit);
  }
  if (q.size == 0) queues_.erase(qit);
  if (t.batch != 0) {
    Batch& b = batches_.at(t.batch);
    --b.queued;
    if (id == b.head) RefreshBatch(t.batch);
    ForgetBatchIfUnused(t.batch);
  }
}

double Scheduler::Finish(double pass, uint32_t owner) const {
  return pass + 1.0 / owner_weight_[owner];
}

// Takes the next id of the lane whose next dispatch finishes first (its pass plus one stride):
// virtual-finish-time order, so a lane that comes back does not jump ahead of busier ones.
uint64_t Scheduler::TakeFrom(std::map<QueueKey, Queue>::iterator it) {
  Queue& q = it->second;
  const uint32_t owner = q.by_pass.begin()->second;
  q.by_pass.erase(q.by_pass.begin());
  Lane& lane = q.lanes.at(owner);
  const uint64_t id = *lane.ids.begin();
  lane.ids.erase(lane.ids.begin());
  q.by_head.erase({id, owner});
  q.vtime = lane.pass;
  lane.pass = Finish(lane.pass, owner);
  if (lane.ids.empty()) {
    q.lanes.erase(owner);
  } else {
    q.by_pass.emplace(Finish(lane.pass, owner), owner);
    q.by_head.emplace(*lane.ids.begin(), owner);
  }
  --q.size;
  --size_;
  const QueueKey key = it->first;
  --class_size_[key.cls];
  if (key.batch != 0) {
    Batch& b = batches_.at(key.batch);
    --b.queued;
    if (id == b.head) RefreshBatch(key.batch);
    ForgetBatchIfUnused(key.batch);
  }
  return id;
}

// Recomputes a batch value's oldest id and its place among the open values.
void Scheduler::RefreshBatch(uint32_t batch) {
  Batch& b = batches_.at(batch);
  if (b.head != UINT64_MAX) open_.erase({b.head, batch});
  b.head = UINT64_MAX;
  if (b.queued == 0) return;
  for (auto it = queues_.lower_bound(QueueKey{kArchiveClass, batch, 0, 0, 0});
       it != queues_.end() && it->first.cls == kArchiveClass && it->first.batch == batch; ++it) {
    b.head = std::min(b.head, it->second.head());
  }
  if (b.reserved_by.empty() && b.head != UINT64_MAX) open_.emplace(b.head, batch);
}

// ---- movers, pools, slots ----

void Scheduler::SetConnected(const std::string& mover, bool connected) {
  MoverState& ms = movers_[mover];
  if (ms.connected == connected) return;
  ms.connected = connected;
  const int64_t now = clock_->NowMicros();
  for (Pool& p : pools_) {
    if (std::find(p.members.begin(), p.members.end(), mover) == p.members.end()) continue;
    p.connected += connected ? 1 : -1;
    if (p.connected == 0) p.absent_since_us = now;
  }
}

bool Scheduler::MayTake(const Pool& p, const std::string& mover, int64_t now) const {
  if (p.members.empty()) return true;
  if (std::find(p.members.begin(), p.members.end(), mover) != p.members.end()) return true;
  if (p.connected > 0 || p.fallback_after_us <= 0 || now - p.absent_since_us < p.fallback_after_us) {
    return false;
  }
  return p.fallback_any || std::find(p.fallback.begin(), p.fallback.end(), mover) != p.fallback.end();
}

bool Scheduler::Eligible(const QueueKey& key, const std::string& mover,
                         const std::vector<uint32_t>& archive_ids, int64_t now) const {
  if (!archive_ids.empty() &&
      !std::binary_search(archive_ids.begin(), archive_ids.end(), key.archive_id)) {
    return false;
  }
  return MayTake(pools_[key.pool], mover, now);
}

// A value with nothing queued and no slot is forgotten: a later request with it starts afresh.
void Scheduler::ForgetBatchIfUnused(uint32_t batch) {
  auto it = batches_.find(batch);
  if (it == batches_.end() || it->second.queued != 0 || !it->second.reserved_by.empty()) return;
  if (it->second.head != UINT64_MAX) open_.erase({it->second.head, batch});
  batch_ids_.erase(it->second.value);
  batches_.erase(it);
}

void Scheduler::ReleaseSlot(Slot& slot) {
  const uint32_t batch = slot.batch;
  Batch& b = batches_.at(batch);
  b.reserved_by.clear();
  if (b.head != UINT64_MAX) open_.emplace(b.head, batch);
  slot = Slot{};
  ForgetBatchIfUnused(batch);
}

void Scheduler::ReleaseSlots(const std::string& mover) {
  auto it = movers_.find(mover);
  if (it == movers_.end()) return;
  for (Slot& s : it->second.slots) {
    if (s.batch != 0) ReleaseSlot(s);
  }
}

void Scheduler::ExpireSlots() {
  if (options_.batching.tag.empty()) return;
  const int64_t now = clock_->NowMicros();
  const auto& b = options_.batching;
  for (auto& [name, ms] : movers_) {
    for (Slot& s : ms.slots) {
      if (s.batch == 0) continue;
      bool idle = b.idle_us > 0 && now - s.last_us >= b.idle_us;
      bool held = b.max_us > 0 && now - s.reserved_us >= b.max_us;
      if (idle || held) {
        spdlog::debug("mover {}: batching slot for {} released ({})", name,
                      batches_.at(s.batch).value, idle ? "idle" : "held for its maximum");
        ReleaseSlot(s);
      }
    }
  }
}

void Scheduler::Released(const std::string& mover, const Ticket& t) {
  if (t.batch == 0) return;
  auto it = movers_.find(mover);
  if (it == movers_.end()) return;
  for (Slot& s : it->second.slots) {
    if (s.batch == t.batch && s.running > 0) --s.running;
  }
}

int64_t Scheduler::NextDeadlineUs() const {
  int64_t next = 0;
  auto consider = [&next](int64_t t) {
    if (t > 0 && (next == 0 || t < next)) next = t;
  };
  const auto& b = options_.batching;
  for (const auto& [name, ms] : movers_) {
    for (const Slot& s : ms.slots) {
      if (s.batch == 0) continue;
      if (b.idle_us > 0) consider(s.last_us + b.idle_us);
      if (b.max_us > 0) consider(s.reserved_us + b.max_us);
    }
  }
  for (const Pool& p : pools_) {
    if (!p.members.empty() && p.connected == 0 && p.fallback_after_us > 0) {
      consider(p.absent_since_us + p.fallback_after_us);
    }
  }
  return next;
}

std::vector<Scheduler::SlotInfo> Scheduler::Slots(const std::string& mover) const {
  std::vector<SlotInfo> out;
  auto it = movers_.find(mover);
  if (it == movers_.end()) return out;
  const int64_t now = clock_->NowMicros();
  for (const Slot& s : it->second.slots) {
    if (s.batch == 0) continue;
    out.push_back(SlotInfo{batches_.at(s.batch).value, s.running, s.taken, now - s.reserved_us,
                           now - s.last_us});
  }
  return out;
}

std::string Scheduler::Holding(const Ticket& t) const {
  if (t.pool != 0) {
    const Pool& p = pools_[t.pool];
    if (p.connected == 0) {
      if (p.fallback_after_us <= 0) return fmt::format("held for {}, none connected", p.what);
      int64_t left = p.absent_since_us + p.fallback_after_us - clock_->NowMicros();
      if (left > 0) {
        return fmt::format("held for {}, none connected; falls back to {} in {:.0f} s", p.what,
                           p.fallback_any ? "any mover" : "the rule's other movers", left / 1e6);
      }
    }
  }
  if (t.batch != 0) {
    auto it = batches_.find(t.batch);
    if (it != batches_.end() && !it->second.reserved_by.empty()) {
      const Batch& b = it->second;
      return fmt::format("batch {}={} is reserved by mover {}", options_.batching.tag, b.value,
                         b.reserved_by);
    }
  }
  return "";
}

std::set<uint32_t> Scheduler::ArchiveIds() const {
  std::set<uint32_t> out;
  for (const auto& [key, q] : queues_) out.insert(key.archive_id);
  return out;
}

void Scheduler::ForEachQueued(const std::function<bool(uint64_t, uint32_t)>& fn) const {
  for (const auto& [key, q] : queues_) {
    for (const auto& [owner, lane] : q.lanes) {
      for (uint64_t id : lane.ids) {
        if (!fn(id, key.archive_id)) return;
      }
    }
  }
}

// ---- dispatch ----

size_t Scheduler::DispatchFifo(const std::string& mover, const std::vector<uint32_t>& archive_ids,
                               Room room, const std::function<void(uint64_t)>& assign) {
  const int64_t now = clock_->NowMicros();
  std::vector<std::map<QueueKey, Queue>::iterator> cands;
  for (auto it = queues_.begin(); it != queues_.end(); ++it) {
    if (Eligible(it->first, mover, archive_ids, now)) cands.push_back(it);
  }
  size_t taken = 0;
  while (taken < room.budget && room.total > 0 && !cands.empty()) {
    size_t best = 0;
    for (size_t i = 1; i < cands.size(); ++i) {
      if (cands[i]->second.head() < cands[best]->second.head()) best = i;
    }
    const int kind = lookup_.kind(cands[best]->second.head());
    if (room.kind[kind] <= 0) break;  // the oldest request waits, and so does all behind it
    uint64_t id = TakeFrom(cands[best]);
    if (cands[best]->second.size == 0) {
      queues_.erase(cands[best]);
      cands.erase(cands.begin() + static_cast<std::ptrdiff_t>(best));
    }
    --room.kind[kind];
    --room.total;
    ++taken;
    assign(id);
  }
  return taken;
}

size_t Scheduler::Dispatch(const std::string& mover, const std::vector<uint32_t>& archive_ids,
                           Room room, const std::function<void(uint64_t)>& assign) {
  if (size_ == 0) return 0;
  if (fifo_) return DispatchFifo(mover, archive_ids, room, assign);
  using It = std::map<QueueKey, Queue>::iterator;
  const int64_t now = clock_->NowMicros();
  MoverState& ms = movers_[mover];
  const bool batching = !options_.batching.tag.empty();
  if (batching && ms.slots.size() != options_.batching.slots_per_mover) {
    ms.slots.resize(options_.batching.slots_per_mover);
  }
  const uint64_t share =
      room.archive_cap < 0 ? UINT64_MAX
                           : std::max<uint64_t>(1, static_cast<uint64_t>(room.archive_cap) /
                                                       std::max<size_t>(1, ms.slots.size()));

  // The queues this mover may take from: per class (batch 0), and per slot.
  std::array<std::vector<It>, kWorkClasses> cands;
  for (int c = 0; c < kWorkClasses; ++c) {
    if (class_size_[c] == 0) continue;
    for (auto it = queues_.lower_bound(QueueKey{static_cast<uint8_t>(c), 0, 0, 0, 0});
         it != queues_.end() && it->first.cls == c && it->first.batch == 0; ++it) {
      if (Eligible(it->first, mover, archive_ids, now)) cands[c].push_back(it);
    }
  }
  std::vector<std::vector<It>> slot_cands(ms.slots.size());
  auto fill_slot = [&](size_t i) {
    slot_cands[i].clear();
    const uint32_t batch = ms.slots[i].batch;
    if (batch == 0) return;
    for (auto it = queues_.lower_bound(QueueKey{kArchiveClass, batch, 0, 0, 0});
         it != queues_.end() && it->first.cls == kArchiveClass && it->first.batch == batch; ++it) {
      if (Eligible(it->first, mover, archive_ids, now)) slot_cands[i].push_back(it);
    }
  };
  for (size_t i = 0; i < ms.slots.size(); ++i) fill_slot(i);
  // The oldest open batch value this mover may take, if it has a free slot.
  auto open_value = [&]() -> std::pair<uint64_t, uint32_t> {
    if (!batching || open_.empty()) return {UINT64_MAX, 0};
    if (std::none_of(ms.slots.begin(), ms.slots.end(), [](const Slot& s) { return s.batch == 0; })) {
      return {UINT64_MAX, 0};
    }
    int scanned = 0;
    for (auto [head, batch] : open_) {
      if (++scanned > kOpenScan) break;
      for (auto it = queues_.lower_bound(QueueKey{kArchiveClass, batch, 0, 0, 0});
           it != queues_.end() && it->first.cls == kArchiveClass && it->first.batch == batch; ++it) {
        if (Eligible(it->first, mover, archive_ids, now)) return {head, batch};
      }
    }
    return {UINT64_MAX, 0};
  };
  auto oldest = [](const std::vector<It>& v) -> std::pair<uint64_t, size_t> {
    std::pair<uint64_t, size_t> best{UINT64_MAX, 0};
    for (size_t i = 0; i < v.size(); ++i) best = std::min(best, {v[i]->second.head(), i});
    return best;
  };
  auto drop_if_empty = [this](std::vector<It>& v, size_t i) {
    if (v[i]->second.size != 0) return;
    queues_.erase(v[i]);
    v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
  };
  std::pair<uint64_t, uint32_t> open = open_value();

  size_t taken = 0;
  while (taken < room.budget && room.total > 0) {
    // A slot with work and room to run it.
    int slot = -1;
    for (size_t i = 0; i < ms.slots.size() && slot < 0; ++i) {
      if (!slot_cands[i].empty() && ms.slots[i].running < share) slot = static_cast<int>(i);
    }
    // The class: aged first (oldest head), then smallest pass, then class order.
    int cls = -1;
    bool cls_aged = false;
    int64_t cls_since = 0;
    for (int c = 0; c < kWorkClasses; ++c) {
      if (room.kind[kKindOfClass[c]] <= 0) continue;
      uint64_t head = oldest(cands[c]).first;
      if (c == kArchiveClass) {
        if (slot >= 0) head = std::min(head, oldest(slot_cands[slot]).first);
        head = std::min(head, open.first);
      }
      if (head == UINT64_MAX) continue;
      bool aged = false;
      int64_t since = 0;
      if (options_.order.max_wait_us > 0) {
        since = lookup_.queued_since_us(head);
        aged = now - since >= options_.order.max_wait_us;
      }
      // Virtual finish time: the class whose next dispatch completes its share first.
      auto finish = [&](int k) { return class_pass_[k] + 1.0 / options_.order.weights[k]; };
      bool better = cls < 0 || (aged && !cls_aged) ||
                    (aged == cls_aged && (aged ? since < cls_since : finish(c) < finish(cls)));
      if (better) {
        cls = c;
        cls_aged = aged;
        cls_since = since;
      }
    }
    if (cls < 0) break;
    uint64_t id = 0;
    if (cls == kArchiveClass && slot >= 0) {
      // A reserved value goes to its mover first: that is what the slot is for.
      size_t qi = oldest(slot_cands[slot]).second;
      id = TakeFrom(slot_cands[slot][qi]);
      drop_if_empty(slot_cands[slot], qi);
      Slot& s = ms.slots[slot];
      ++s.running;
      ++s.taken;
      s.last_us = now;
    } else if (cls == kArchiveClass && open.first < oldest(cands[cls]).first) {
      // Reserve the oldest open value in a free slot.
      size_t free_slot = 0;
      while (ms.slots[free_slot].batch != 0) ++free_slot;
      Slot& s = ms.slots[free_slot];
      s = Slot{open.second, now, now, 0, 0};
      Batch& b = batches_.at(open.second);
      b.reserved_by = mover;
      open_.erase({b.head, open.second});
      fill_slot(free_slot);
      size_t qi = oldest(slot_cands[free_slot]).second;
      id = TakeFrom(slot_cands[free_slot][qi]);
      drop_if_empty(slot_cands[free_slot], qi);
      ++s.running;
      ++s.taken;
      open = open_value();
    } else {
      size_t qi = oldest(cands[cls]).second;
      id = TakeFrom(cands[cls][qi]);
      drop_if_empty(cands[cls], qi);
    }
    class_vtime_ = class_pass_[cls];
    class_pass_[cls] += 1.0 / options_.order.weights[cls];
    --room.kind[kKindOfClass[cls]];
    --room.total;
    ++taken;
    assign(id);
  }
  return taken;
}

}  // namespace tierflow::coordinator
