// What an administrator can say about the order and placement of work: the [order],
// [fair_share], [[placement]], [batching] and [reporting] sections of tierflow.toml
// (etc/tierflow.toml documents each key). Plain data: src/cli/config.cc fills it, the coordinator
// checks it (ValidatePolicy) and applies it.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tierflow::coordinator {

// Dispatch classes, in their default order.
enum class WorkClass : int { kBlockingRestore = 0, kRestore = 1, kRemove = 2, kArchive = 3 };
inline constexpr int kWorkClasses = 4;

struct OrderOptions {
  // Share of a mover's free slots each class gets while several classes have work it can take
  // (stride scheduling). The defaults make the order nearly strict: blocking restores, then
  // restores, removes, archives; an archive still gets one slot in ~1,111 under a flood.
  std::array<double, kWorkClasses> weights = {1000, 100, 10, 1};
  // Aging: a class whose oldest queued request has waited this long goes before any class
  // whose oldest has not, oldest first. 0 = off.
  int64_t max_wait_us = 0;
  // "fifo" takes requests in id order whatever their class, owner or tags (the baseline the
  // benchmarks compare against); "weighted" is the default above.
  std::string policy = "weighted";
};

enum class ShareBy { kNone, kRequester, kOwner, kGroup, kProject };

struct FairShareOptions {
  ShareBy by = ShareBy::kNone;
  // Share weights by name: a requester's name, or for owner/group a user/group name or a
  // numeric id, for project a project id. Others get default_weight.
  std::map<std::string, double> weights;
  double default_weight = 1;
};

// Routes archives whose data holds tag `tag` (key=value, matched exactly) to `movers`, or,
// with hash_key, spreads the values of that tag over `movers` on a consistent-hash ring.
// Work waits for its movers; after fallback_after_us with none of them connected it may go
// to any mover (named rules) or to any other mover of the ring (hash rules). 0 = hold forever.
struct PlacementRule {
  std::string tag;       // "key=value"; empty for a hash rule
  std::string hash_key;  // tag key whose value is hashed; empty for a named rule
  std::vector<std::string> movers;
  int64_t fallback_after_us = 0;
  int line = 0;          // where it was configured, for messages
};

struct BatchingOptions {
  std::string tag;              // tag key whose value a slot reserves; empty = no batching
  uint32_t slots_per_mover = 1;
  int64_t idle_us = 0;          // a slot with nothing new for this long is released
  int64_t max_us = 0;           // a slot is released after being held this long (0 = never)
};

struct ReportingOptions {
  std::string dir;              // report files DIR/<hint value>; empty = no report files
  std::string hint;             // tag key whose value names the report file
  int64_t quiet_us = 60'000'000;  // a report file with no new line for this long is removed
};

struct SchedulingOptions {
  OrderOptions order;
  FairShareOptions fair_share;
  std::vector<PlacementRule> placement;
  BatchingOptions batching;
  ReportingOptions reporting;
};

// Request data holds tags: "key=value" tokens separated by spaces, tabs or commas. The value of
// the first tag whose key is exactly `key`, or nullopt when there is none.
std::optional<std::string_view> TagValue(std::string_view data, std::string_view key);
// True when data holds exactly the tag "key=value" given as `tag`.
bool HasTag(std::string_view data, std::string_view tag);

// Checks a policy for contradictions the config parser cannot see (a mover named twice in one
// hash rule, two named rules for the same tag, weights that are not positive...).
Status ValidatePolicy(const SchedulingOptions& options);

}  // namespace tierflow::coordinator
