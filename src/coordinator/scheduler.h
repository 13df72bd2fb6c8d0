// The coordinator's dispatch queues and the policy that empties them (policy.h says what an
// administrator configures). Loop thread only, like the Coordinator that owns it.
//
// Structure, from a mover's point of view:
//  * Requests wait in queues keyed by (class, batch value, archive id, flags, pool). Classes
//    are blocking restore, restore, remove, archive. A pool is who may take the work: any
//    mover (pool 0), the movers of a named placement rule, or one mover of a consistent-hash
//    rule; a pool whose movers have all been away for its fallback time opens to the others.
//  * Inside a queue, each owner (requester, file owner, group or project, by fair_share.by)
//    has a lane of ids in id (= age) order. Lanes are served in virtual-finish-time order
//    (weighted fair queueing): each dispatch advances a lane's pass by 1/weight and the lane
//    whose next pass is smallest goes next, so backlogged owners get dispatches in
//    proportion to their weights, and an owner who was idle comes back at the current pass,
//    with no credit saved up.
//  * Classes are chosen the same way among those the mover has free capacity for (order
//    weights; the defaults 1000:100:10:1 make it nearly strict priority), except that with aging (max_wait) a class whose oldest request has waited
//    that long goes first. The "fifo" policy has one class and takes the oldest request of
//    any kind, stopping when the mover cannot take it (the plain baseline).
//  * Batching: archives whose data holds the batching tag wait in queues of their tag value.
//    A mover reserves a value in one of its N slots when it takes the oldest open value; while
//    reserved, that value's archives go only to it, at most archive capacity / N running at
//    once, until the slot has had nothing new for `idle` or was held for `max`.
//
// Cost of one dispatch decision: a few ordered-set operations on the chosen queue (O(log n) in
// its length), plus a walk over the queues the mover may take from, whose number depends on
// the configuration and archive ids, not on how many requests wait.
#pragma once

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/node_hash_map.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "coordinator/policy.h"
#include "store/journal.h"

namespace tierflow::coordinator {

// Where a request waits: computed from its row by Classify, kept by the caller, given back to
// Add and Remove.
struct Ticket {
  uint32_t owner = 0;  // fair-share lane (0: everyone when fair share is off)
  uint32_t pool = 0;   // placement pool (0: any mover)
  uint32_t batch = 0;  // batching tag value (0: none)
  uint8_t cls = 0;     // WorkClass (0 for every request under the fifo policy)
};

class Scheduler {
 public:
  // What the scheduler asks of the requests it holds.
  struct Lookup {
    std::function<int(uint64_t id)> kind;               // 0 restore, 1 remove, 2 archive
    std::function<int64_t(uint64_t id)> queued_since_us;  // monotonic, for aging
  };
  // What a mover can take now. Unlimited is INT64_MAX.
  struct Room {
    std::array<int64_t, 3> kind{};  // by kind: restore, remove, archive
    int64_t total = INT64_MAX;
    int64_t archive_cap = -1;       // its archive capacity (-1 unlimited): a slot's share
    size_t budget = SIZE_MAX;       // at most this many in this call
  };
  struct SlotInfo {
    std::string value;
    uint64_t running = 0;
    uint64_t taken = 0;
    int64_t held_us = 0;
    int64_t idle_us = 0;
  };

  Scheduler(const SchedulingOptions& options, Clock* clock, Lookup lookup);

  Ticket Classify(const store::RequestRow& row);
  void Add(uint64_t id, uint32_t archive_id, uint64_t flags, const Ticket& t);
  void Remove(uint64_t id, uint32_t archive_id, uint64_t flags, const Ticket& t);
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // Presence of a mover, for placement pools and their fallback clocks.
  void SetConnected(const std::string& mover, bool connected);
  // A mover that is gone for good (grace expired): its slots are released.
  void ReleaseSlots(const std::string& mover);
  // Slots past their idle or max time are released, so their values open to every mover.
  void ExpireSlots();
  // Chooses work for `mover` (serving `archive_ids`, empty = all) within `room`; calls
  // assign(id) for each request taken, in dispatch order. Returns how many.
  size_t Dispatch(const std::string& mover, const std::vector<uint32_t>& archive_ids, Room room,
                  const std::function<void(uint64_t)>& assign);
  // An archive taken through `mover`'s slot for t.batch is no longer running there.
  void Released(const std::string& mover, const Ticket& t);
  // The next time a slot expires or a pool falls back (monotonic us), 0 = none.
  int64_t NextDeadlineUs() const;

  std::vector<SlotInfo> Slots(const std::string& mover) const;
  // Why a queued request with ticket t may wait beyond capacity, or "" (placement, batching).
  std::string Holding(const Ticket& t) const;
  // The archive ids with queued work.
  std::set<uint32_t> ArchiveIds() const;
  // Each queued id, queue by queue, until fn returns false.
  void ForEachQueued(const std::function<bool(uint64_t id, uint32_t archive_id)>& fn) const;
  // The movers a hash rule sends `value` to (for tests and status): rule index, value.
  std::string HashTarget(size_t rule, std::string_view value) const;
  // Batch values known now: those with queued work or a slot (a value is forgotten once it
  // has neither, so a tag that names every job does not grow the coordinator forever).
  size_t batch_values() const { return batches_.size(); }

 private:
  struct QueueKey {
    uint8_t cls = 0;
    uint32_t batch = 0;
    uint32_t archive_id = 0;
    uint64_t flags = 0;
    uint32_t pool = 0;
    auto operator<=>(const QueueKey&) const = default;
  };
  struct Lane {
    double pass = 0;
    absl::btree_set<uint64_t> ids;
  };
  struct Queue {
    absl::flat_hash_map<uint32_t, Lane> lanes;            // owner -> non-empty lane
    absl::btree_set<std::pair<double, uint32_t>> by_pass;  // lanes by (finish tag, owner)
    absl::btree_set<std::pair<uint64_t, uint32_t>> by_head;  // lanes by (oldest id, owner)
    double vtime = 0;                                      // pass of the lane served last
    size_t size = 0;
    uint64_t head() const { return by_head.empty() ? UINT64_MAX : by_head.begin()->first; }
  };
  struct Pool {
    std::vector<std::string> members;   // empty: any mover
    bool fallback_any = false;          // after fallback: any mover, else `fallback`
    std::vector<std::string> fallback;
    int64_t fallback_after_us = 0;      // 0: hold forever
    int connected = 0;
    int64_t absent_since_us = 0;        // monotonic; valid while connected == 0
    std::string what;                   // for messages
  };
  struct Slot {
    uint32_t batch = 0;
    int64_t reserved_us = 0;
    int64_t last_us = 0;
    uint64_t running = 0;
    uint64_t taken = 0;
  };
  struct MoverState {
    bool connected = false;
    std::vector<Slot> slots;
  };
  struct Batch {
    std::string value;
    size_t queued = 0;
    uint64_t head = UINT64_MAX;   // its key in open_ while open
    std::string reserved_by;      // empty: open
  };
  struct Interned {
    std::vector<std::string> names;
    absl::flat_hash_map<std::string, uint32_t> index;
    uint32_t Intern(std::string_view name);
  };

  static uint64_t Hash(std::string_view s);
  bool MayTake(const Pool& pool, const std::string& mover, int64_t now) const;
  bool Eligible(const QueueKey& key, const std::string& mover,
                const std::vector<uint32_t>& archive_ids, int64_t now) const;
  double Finish(double pass, uint32_t owner) const;
  uint64_t TakeFrom(std::map<QueueKey, Queue>::iterator it);
  void RefreshBatch(uint32_t batch);
  void ForgetBatchIfUnused(uint32_t batch);
  void ReleaseSlot(Slot& slot);
  size_t DispatchFifo(const std::string& mover, const std::vector<uint32_t>& archive_ids,
                      Room room, const std::function<void(uint64_t)>& assign);

  const SchedulingOptions options_;
  Clock* const clock_;
  const Lookup lookup_;
  const bool fifo_;

  std::map<QueueKey, Queue> queues_;
  size_t size_ = 0;
  std::array<size_t, kWorkClasses> class_size_{};
  std::array<double, kWorkClasses> class_pass_{};
  double class_vtime_ = 0;

  Interned owners_;
  std::vector<double> owner_weight_;
  std::vector<Pool> pools_;
  std::vector<uint32_t> named_pool_;  // placement rule index -> pool (named rules)
  // Hash rules: rule index -> ring of (point, pool), sorted.
  std::vector<std::vector<std::pair<uint64_t, uint32_t>>> rings_;
  absl::flat_hash_map<std::string, MoverState> movers_;
  // Batch values by id, and ids by value. Ids are never reused while the coordinator runs, so a
  // running request's ticket naming a forgotten value matches no slot.
  absl::node_hash_map<uint32_t, Batch> batches_;
  absl::flat_hash_map<std::string, uint32_t> batch_ids_;
  uint32_t next_batch_ = 1;
  absl::btree_set<std::pair<uint64_t, uint32_t>> open_;  // open batch values by (head, batch)
};

}  // namespace tierflow::coordinator
