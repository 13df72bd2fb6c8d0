// Tag matching and the checks of a scheduling policy (see policy.h).
#include "coordinator/policy.h"

#include <set>

namespace tierflow::coordinator {
namespace {

bool IsSeparator(char c) { return c == ' ' || c == '\t' || c == ',' || c == '\n'; }

// Calls fn(key, value) for each key=value token until it returns true.
template <typename Fn>
bool ForEachTag(std::string_view data, Fn fn) {
  size_t i = 0;
  while (i < data.size()) {
    while (i < data.size() && IsSeparator(data[i])) ++i;
    size_t start = i;
    while (i < data.size() && !IsSeparator(data[i])) ++i;
    std::string_view token = data.substr(start, i - start);
    size_t eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    if (fn(token.substr(0, eq), token.substr(eq + 1))) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string_view> TagValue(std::string_view data, std::string_view key) {
  std::optional<std::string_view> found;
  ForEachTag(data, [&](std::string_view k, std::string_view v) {
    if (k != key) return false;
    found = v;
    return true;
  });
  return found;
}

bool HasTag(std::string_view data, std::string_view tag) {
  size_t eq = tag.find('=');
  if (eq == std::string_view::npos) return false;
  std::string_view key = tag.substr(0, eq), value = tag.substr(eq + 1);
  return ForEachTag(data, [&](std::string_view k, std::string_view v) {
    return k == key && v == value;
  });
}

Status ValidatePolicy(const SchedulingOptions& o) {
  auto where = [](const PlacementRule& r) {
    return r.line > 0 ? " (placement rule at line " + std::to_string(r.line) + ")" : std::string();
  };
  for (int c = 0; c < kWorkClasses; ++c) {
    if (!(o.order.weights[c] > 0)) {
      return Status(Code::kInvalidArgument, "order weights must be positive numbers");
    }
  }
  if (o.order.policy != "weighted" && o.order.policy != "fifo") {
    return Status(Code::kInvalidArgument,
                  "order.policy must be \"weighted\" or \"fifo\", not \"" + o.order.policy + "\"");
  }
  if (!(o.fair_share.default_weight > 0)) {
    return Status(Code::kInvalidArgument, "fair_share.default_weight must be positive");
  }
  for (const auto& [name, w] : o.fair_share.weights) {
    if (!(w > 0)) {
      return Status(Code::kInvalidArgument, "fair_share weight of " + name + " must be positive");
    }
  }
  std::set<std::string> tags;
  for (const PlacementRule& r : o.placement) {
    if (r.tag.empty() == r.hash_key.empty()) {
      return Status(Code::kInvalidArgument,
                    "a placement rule needs either tag = \"key=value\" or hash_tag = \"key\"" + where(r));
    }
    if (!r.tag.empty() && (r.tag.find('=') == std::string::npos || r.tag.front() == '=')) {
      return Status(Code::kInvalidArgument,
                    "placement tag \"" + r.tag + "\" is not key=value" + where(r));
    }
    if (r.movers.empty()) {
      return Status(Code::kInvalidArgument, "a placement rule names no movers" + where(r));
    }
    std::set<std::string> seen;
    for (const std::string& m : r.movers) {
      if (m.empty() || !seen.insert(m).second) {
        return Status(Code::kInvalidArgument,
                      "placement rule names mover \"" + m + "\" twice or empty" + where(r));
      }
    }
    std::string key = r.tag.empty() ? "#" + r.hash_key : r.tag;
    if (!tags.insert(key).second) {
      return Status(Code::kInvalidArgument,
                    "two placement rules for " + (r.tag.empty() ? "hash tag " + r.hash_key : r.tag) +
                        where(r));
    }
    if (r.fallback_after_us < 0) {
      return Status(Code::kInvalidArgument, "placement fallback_after must not be negative" + where(r));
    }
  }
  if (!o.batching.tag.empty() && o.batching.slots_per_mover == 0) {
    return Status(Code::kInvalidArgument, "batching.slots_per_mover must be at least 1");
  }
  if (!o.batching.tag.empty() && o.batching.idle_us <= 0 && o.batching.max_us <= 0) {
    return Status(Code::kInvalidArgument,
                  "batching needs idle or max (seconds), or a slot would be held forever");
  }
  if (!o.reporting.dir.empty() && o.reporting.hint.empty()) {
    return Status(Code::kInvalidArgument, "reporting.dir needs reporting.hint (the tag key naming the file)");
  }
  return Status::Ok();
}

}  // namespace tierflow::coordinator
