// Scheduling rules, one test per rule: tags, placement (named and consistent-hash, with
// fallback), batching slots, class weights and aging, fair share (by requester, file owner,
// group and project), restore latency behind a large archive backlog, and the fifo baseline.
// A real loop thread and a ManualClock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "coordinator/policy.h"
#include "coordinator/scheduler.h"
#include "coordinator/testing/harness.h"

namespace tierflow::coordinator {
namespace {

using store::RequestState;
using testing::Harness;
using ::testing::HasSubstr;
using testing::MakeHello;
using testing::MoverHandle;
using testing::ResultMsg;
using testing::Spec;

constexpr int64_t kSecond = 1'000'000;

v1::RequestSpec Tagged(v1::Action action, uint64_t seq, const std::string& data,
                       const std::string& user = "") {
  v1::RequestSpec s = Spec(action, seq);
  s.set_data(data);
  s.set_user(user);
  return s;
}

class SchedulingTest : public ::testing::Test {
 protected:
  void Start(SchedulingOptions scheduling, size_t per_turn = 20'000) {
    CoordinatorOptions o;
    o.mover_grace_us = 30 * kSecond;
    o.final_grace_us = 10 * kSecond;
    o.heartbeat_interval_us = 0;
    o.active_request_timeout_us = 0;
    o.max_dispatch_per_turn = per_turn;
    o.scheduling = std::move(scheduling);
    ASSERT_TRUE(ValidatePolicy(o.scheduling).ok());
    h.Start(o);
  }
  MoverHandle Connect(v1::Hello hello, uint32_t max_total = 0) {
    hello.mutable_capacities()->set_max_total(max_total);
    auto m = h.Hello(hello);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : MoverHandle{};
  }
  // Items sent to `m` since the last call for it.
  std::vector<v1::ActionItem> NewItems(const MoverHandle& m) {
    auto all = m.channel->items();
    size_t& seen = seen_[m.channel.get()];
    std::vector<v1::ActionItem> out(all.begin() + static_cast<std::ptrdiff_t>(seen), all.end());
    seen = all.size();
    return out;
  }
  // Reports success for every item in `items`, in one Reports message.
  void Complete(const MoverHandle& m, const std::vector<v1::ActionItem>& items) {
    if (items.empty()) return;
    v1::MoverMessage msg;
    for (const auto& it : items) {
      auto* r = msg.mutable_reports()->add_results();
      r->set_id(it.id());
      r->set_epoch(it.epoch());
    }
    h.Report(m, msg);
  }
  uint64_t SubmitMany(const std::vector<v1::RequestSpec>& specs) {
    uint64_t first = 0;
    for (size_t i = 0; i < specs.size(); i += 10'000) {
      v1::SubmitRequest req;
      for (size_t j = i; j < std::min(specs.size(), i + 10'000); ++j) *req.add_requests() = specs[j];
      auto reply = h.Submit(req);
      EXPECT_TRUE(reply.ok()) << reply.status().ToString();
      if (reply.ok() && first == 0) first = reply->accepted(0).id();
    }
    return first;
  }
  // Submits `big` archives of one owner and `small` of another (`set` fills each file's owner,
  // told whether it is the second), connects one mover of capacity 100 and completes 10 rounds
  // of what it is sent. Returns the share of dispatches that went to the second owner's files.
  template <typename SetOwner>
  double ShareOfSecondOwner(int big, int small, SetOwner set) {
    std::vector<v1::RequestSpec> specs;
    for (int i = 0; i < big + small; ++i) {
      auto spec = Spec(v1::ARCHIVE, 1'000'000 + i);
      set(spec.mutable_owner(), i >= big);
      specs.push_back(spec);
    }
    SubmitMany(specs);
    auto m = Connect(MakeHello("m1", {1}, 100));
    int second = 0, total = 0;
    for (int round = 0; round < 10; ++round) {
      auto items = NewItems(m);
      for (const auto& it : items) {
        ++total;
        second += it.file().seq() >= 1'000'000u + static_cast<uint64_t>(big);
      }
      Complete(m, items);
    }
    EXPECT_GE(total, 1000);
    return total == 0 ? 0 : second / static_cast<double>(total);
  }
  std::string WaitingReason(uint64_t id) {
    const v1::StatusReply status = h.StatusOf(true);
    for (const auto& r : status.requests()) {
      if (r.id() == id) return r.waiting_reason();
    }
    return "(not listed)";
  }

  Harness h;
  std::map<const void*, size_t> seen_;
};

// ---- tags ----

TEST(TagsTest, MatchWholeKeysAndValuesNotSubstrings) {
  EXPECT_EQ(TagValue("project=climate job=7", "project"), "climate");
  EXPECT_EQ(TagValue("a=1,project=climate", "project"), "climate");
  EXPECT_FALSE(TagValue("myproject=climate", "project").has_value());
  EXPECT_FALSE(TagValue("project", "project").has_value());
  EXPECT_EQ(TagValue("project=", "project"), "");
  EXPECT_TRUE(HasTag("x=1 project=climate", "project=climate"));
  EXPECT_FALSE(HasTag("project=climate2", "project=climate"));
  EXPECT_FALSE(HasTag("xproject=climate", "project=climate"));
  EXPECT_FALSE(HasTag("project=climat", "project=climate"));
}

// ---- placement ----

TEST_F(SchedulingTest, TaggedArchivesGoOnlyToTheirNamedMovers) {
  SchedulingOptions s;
  s.placement.push_back(PlacementRule{"project=climate", "", {"tape1"}, 0, 0});
  Start(s);
  auto disk = Connect(MakeHello("disk", {1}, 100));
  uint64_t climate = h.SubmitOne(Tagged(v1::ARCHIVE, 1, "owner=x project=climate"));
  uint64_t near1 = h.SubmitOne(Tagged(v1::ARCHIVE, 2, "project=climate2"));
  uint64_t near2 = h.SubmitOne(Tagged(v1::ARCHIVE, 3, "xproject=climate"));
  // Not the tag: any mover may take them.
  EXPECT_EQ(h.Row(near1)->mover, "disk");
  EXPECT_EQ(h.Row(near2)->mover, "disk");
  EXPECT_EQ(h.Row(climate)->state, RequestState::kQueued) << "only tape1 may take it";
  auto tape = Connect(MakeHello("tape1", {1}, 100));
  EXPECT_EQ(h.Row(climate)->mover, "tape1");
  // With both connected, every climate archive goes to tape1.
  for (int i = 0; i < 10; ++i) {
    uint64_t id = h.SubmitOne(Tagged(v1::ARCHIVE, 10 + i, "project=climate"));
    EXPECT_EQ(h.Row(id)->mover, "tape1");
  }
  // Restores are not placed by archive rules.
  uint64_t restore = h.SubmitOne(Tagged(v1::RESTORE, 4, "project=climate"));
  EXPECT_EQ(h.Row(restore)->state, RequestState::kAssigned);
  (void)disk;
  (void)tape;
}

TEST_F(SchedulingTest, WorkForAnAbsentMoverIsHeldThenFallsBackAfterItsDelay) {
  SchedulingOptions s;
  s.placement.push_back(PlacementRule{"project=climate", "", {"tape1"}, 0, 0});
  s.placement.push_back(PlacementRule{"project=bio", "", {"tape2"}, 60 * kSecond, 0});
  Start(s);
  auto disk = Connect(MakeHello("disk", {1}, 100));
  uint64_t held = h.SubmitOne(Tagged(v1::ARCHIVE, 1, "project=climate"));
  uint64_t later = h.SubmitOne(Tagged(v1::ARCHIVE, 2, "project=bio"));
  EXPECT_EQ(h.Row(held)->state, RequestState::kQueued);
  EXPECT_EQ(h.Row(later)->state, RequestState::kQueued);
  EXPECT_THAT(WaitingReason(held), HasSubstr("held for mover(s) tape1"));
  EXPECT_THAT(WaitingReason(later), HasSubstr("falls back to any mover in"));

  h.Advance(59 * kSecond);
  EXPECT_EQ(h.Row(later)->state, RequestState::kQueued);
  h.Advance(1 * kSecond);
  EXPECT_EQ(h.Row(later)->state, RequestState::kAssigned);
  EXPECT_EQ(h.Row(later)->mover, "disk");
  // No fallback configured: held however long it takes.
  h.Advance(3600 * kSecond);
  EXPECT_EQ(h.Row(held)->state, RequestState::kQueued);
  auto tape = Connect(MakeHello("tape1", {1}, 100));
  EXPECT_EQ(h.Row(held)->mover, "tape1");
  (void)disk;
  (void)tape;
}

TEST(ConsistentHashTest, AddingOrRemovingAMoverMovesOnlyItsShare) {
  ManualClock clock;
  Scheduler::Lookup none{[](uint64_t) { return 0; }, [](uint64_t) { return int64_t{0}; }};
  auto targets = [&](std::vector<std::string> movers) {
    SchedulingOptions s;
    s.placement.push_back(PlacementRule{"", "dataset", std::move(movers), 0, 0});
    Scheduler sched(s, &clock, none);
    std::vector<std::string> out;
    for (int v = 0; v < 20'000; ++v) out.push_back(sched.HashTarget(0, "ds" + std::to_string(v)));
    return out;
  };
  auto three = targets({"m1", "m2", "m3"});
  auto four = targets({"m1", "m2", "m3", "m4"});
  auto two = targets({"m1", "m3"});
  std::map<std::string, int> share;
  int moved = 0;
  for (size_t i = 0; i < three.size(); ++i) {
    ++share[three[i]];
    if (three[i] != four[i]) {
      ++moved;
      EXPECT_EQ(four[i], "m4") << "a value moved between movers that stayed";
    }
    if (three[i] != "m2") {
      EXPECT_EQ(two[i], three[i]) << "a value of a mover that stayed moved";
    }
  }
  // Each mover holds about a third, and adding a fourth moves about a quarter (plain modulo
  // would move three quarters).
  for (const auto& [m, n] : share) EXPECT_NEAR(n / 20'000.0, 1 / 3.0, 0.1) << m;
  EXPECT_NEAR(moved / 20'000.0, 0.25, 0.1);
}

TEST_F(SchedulingTest, HashPlacementSendsEachValueToItsMoverAndFallsBackWithinTheRing) {
  SchedulingOptions s;
  s.placement.push_back(PlacementRule{"", "dataset", {"m1", "m2", "m3"}, 30 * kSecond, 0});
  Start(s);
  Scheduler::Lookup none{[](uint64_t) { return 0; }, [](uint64_t) { return int64_t{0}; }};
  Scheduler reference(s, &h.clock(), none);
  auto outsider = Connect(MakeHello("outsider", {1}, 100));
  auto m1 = Connect(MakeHello("m1", {1}, 100));
  auto m2 = Connect(MakeHello("m2", {1}, 100));
  std::map<std::string, std::vector<uint64_t>> by_target;
  for (int v = 0; v < 60; ++v) {
    std::string value = "ds" + std::to_string(v);
    by_target[reference.HashTarget(0, value)].push_back(
        h.SubmitOne(Tagged(v1::ARCHIVE, 10 + v, "dataset=" + value)));
  }
  ASSERT_EQ(by_target.size(), 3u);
  for (const auto& [target, ids] : by_target) {
    for (uint64_t id : ids) {
      auto row = h.Row(id);
      if (target == "m3") {
        EXPECT_EQ(row->state, RequestState::kQueued) << "m3 is absent: held for it";
      } else {
        EXPECT_EQ(row->mover, target);
      }
    }
  }
  h.Advance(30 * kSecond);
  for (uint64_t id : by_target["m3"]) {
    auto row = h.Row(id);
    EXPECT_EQ(row->state, RequestState::kAssigned);
    EXPECT_TRUE(row->mover == "m1" || row->mover == "m2") << "fell back outside the ring: "
                                                          << row->mover;
  }
  (void)outsider;
  (void)m1;
  (void)m2;
}

// ---- batching ----

TEST_F(SchedulingTest, ASlotReservesATagValueForOneMoverUntilIdle) {
  SchedulingOptions s;
  s.batching.tag = "batch";
  s.batching.slots_per_mover = 1;
  s.batching.idle_us = 5 * kSecond;
  s.batching.max_us = 600 * kSecond;
  Start(s);
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 8; ++i) {
    specs.push_back(Tagged(v1::ARCHIVE, 100 + i, i % 2 ? "batch=B" : "batch=A"));
  }
  SubmitMany(specs);
  auto m1 = Connect(MakeHello("m1", {1}, 2));
  auto m2 = Connect(MakeHello("m2", {1}, 2));
  std::map<std::string, std::set<std::string>> values;  // mover -> batch values it got
  auto record = [&](const MoverHandle& m, const std::string& name) {
    auto items = NewItems(m);
    for (const auto& it : items) values[name].insert(std::string(*TagValue(it.data(), "batch")));
    return items;
  };
  for (int round = 0; round < 4; ++round) {
    auto a = record(m1, "m1");
    auto b = record(m2, "m2");
    Complete(m1, a);
    Complete(m2, b);
  }
  EXPECT_EQ(values["m1"], (std::set<std::string>{"A"}));
  EXPECT_EQ(values["m2"], (std::set<std::string>{"B"}));

  // A new A archive still goes to m1 while its slot is fresh, even if m1 is full and m2 idle.
  h.Advance(4 * kSecond);
  uint64_t a1 = h.SubmitOne(Tagged(v1::ARCHIVE, 200, "batch=A"));
  uint64_t a2 = h.SubmitOne(Tagged(v1::ARCHIVE, 201, "batch=A"));
  uint64_t a3 = h.SubmitOne(Tagged(v1::ARCHIVE, 202, "batch=A"));
  EXPECT_EQ(h.Row(a1)->mover, "m1");
  EXPECT_EQ(h.Row(a2)->mover, "m1");
  EXPECT_EQ(h.Row(a3)->state, RequestState::kQueued);
  EXPECT_THAT(WaitingReason(a3), HasSubstr("reserved by mover m1"));
  // m2's slot (B) goes idle after 5 s; m1's slot keeps being idle too, as nothing new goes
  // through it while it is full: once released, the A archive may go to m2.
  h.Advance(5 * kSecond);
  EXPECT_EQ(h.Row(a3)->state, RequestState::kAssigned);
  EXPECT_EQ(h.Row(a3)->mover, "m2");
}

// A tag that names every job must not grow the coordinator forever: a value is kept while
// requests with it wait or a slot holds it, and forgotten after.
TEST(SchedulerTest, ABatchValueIsForgottenOnceNothingWaitsAndNoSlotHoldsIt) {
  ManualClock clock;
  SchedulingOptions o;
  o.batching.tag = "job";
  o.batching.slots_per_mover = 1;
  o.batching.idle_us = 5 * kSecond;
  Scheduler s(o, &clock, {[](uint64_t) { return 2; }, [](uint64_t) { return int64_t{0}; }});
  std::map<uint64_t, Ticket> tickets;
  auto add = [&](uint64_t id, const std::string& job) {
    store::RequestRow row;
    row.id = id;
    row.action = hsm::Action::kArchive;
    row.archive_id = 1;
    row.data = "job=" + job;
    tickets[id] = s.Classify(row);
    s.Add(id, 1, 0, tickets[id]);
  };
  for (uint64_t id = 1; id <= 1000; ++id) add(id, "J" + std::to_string(id));
  EXPECT_EQ(s.batch_values(), 1000u);
  for (uint64_t id = 1; id < 1000; ++id) s.Remove(id, 1, 0, tickets[id]);
  EXPECT_EQ(s.batch_values(), 1u) << "removed requests leave no value behind";

  Scheduler::Room room;
  room.kind = {INT64_MAX, INT64_MAX, INT64_MAX};
  room.archive_cap = 10;
  std::vector<uint64_t> taken;
  s.Dispatch("m1", {}, room, [&](uint64_t id) { taken.push_back(id); });
  EXPECT_THAT(taken, ::testing::ElementsAre(1000u));
  EXPECT_EQ(s.batch_values(), 1u) << "the slot holds it while nothing waits";
  s.Released("m1", tickets[1000]);
  clock.Advance(6 * kSecond);
  s.ExpireSlots();
  EXPECT_EQ(s.batch_values(), 0u) << "the slot idled out";
  EXPECT_TRUE(s.Slots("m1").empty());

  // The same value later starts afresh, and a stale ticket of the old one matches no slot.
  add(1001, "J1000");
  taken.clear();
  s.Dispatch("m1", {}, room, [&](uint64_t id) { taken.push_back(id); });
  EXPECT_THAT(taken, ::testing::ElementsAre(1001u));
  s.Released("m1", tickets[1000]);
  auto slots = s.Slots("m1");
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0].value, "J1000");
  EXPECT_EQ(slots[0].running, 1u) << "the old ticket did not release the new reservation";
}

TEST_F(SchedulingTest, SlotsShareTheArchiveCapacityAndAreReleasedAfterTheirMaximum) {
  SchedulingOptions s;
  s.batching.tag = "batch";
  s.batching.slots_per_mover = 2;
  s.batching.idle_us = 0;
  s.batching.max_us = 60 * kSecond;
  Start(s);
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 6; ++i) specs.push_back(Tagged(v1::ARCHIVE, 100 + i, "batch=A"));
  for (int i = 0; i < 6; ++i) specs.push_back(Tagged(v1::ARCHIVE, 200 + i, "batch=B"));
  for (int i = 0; i < 6; ++i) specs.push_back(Tagged(v1::ARCHIVE, 300 + i, "batch=C"));
  SubmitMany(specs);
  auto values = [&](const std::vector<v1::ActionItem>& items) {
    std::map<std::string, int> out;
    for (const auto& it : items) ++out[std::string(*TagValue(it.data(), "batch"))];
    return out;
  };
  auto m1 = Connect(MakeHello("m1", {1}, 4));
  // Two slots, each at most 4 / 2 = 2 archives running: A and B, two of each.
  auto items1 = NewItems(m1);
  EXPECT_EQ(values(items1), (std::map<std::string, int>{{"A", 2}, {"B", 2}}));
  // A second mover finds A and B reserved: it takes C only, though it has room for more.
  auto m2 = Connect(MakeHello("m2", {1}, 4));
  auto items2 = NewItems(m2);
  EXPECT_EQ(values(items2), (std::map<std::string, int>{{"C", 2}}));
  auto status = h.StatusOf();
  ASSERT_EQ(status.movers_size(), 2);

  // Held for their maximum, every slot is released although its mover is busy: m2 (the only
  // one with room) now takes the oldest open value, A.
  h.Advance(60 * kSecond);
  EXPECT_EQ(values(NewItems(m2)), (std::map<std::string, int>{{"A", 2}}));
  EXPECT_TRUE(NewItems(m1).empty());
}

// ---- order ----

TEST_F(SchedulingTest, ClassWeightsShareAMoverAndNoClassStarves) {
  SchedulingOptions s;
  s.order.weights = {1000, 3, 1, 1};  // restores three times the archives' share
  Start(s);
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 400; ++i) specs.push_back(Spec(v1::ARCHIVE, 1000 + i));
  for (int i = 0; i < 400; ++i) specs.push_back(Spec(v1::RESTORE, 5000 + i));
  SubmitMany(specs);
  auto m = Connect(MakeHello("m1", {1}, -1, -1, -1), /*max_total=*/4);
  std::map<v1::Action, int> got;
  for (int round = 0; round < 50; ++round) {
    auto items = NewItems(m);
    for (const auto& it : items) ++got[it.action()];
    Complete(m, items);
  }
  int total = got[v1::ARCHIVE] + got[v1::RESTORE];
  ASSERT_EQ(total, 200);
  EXPECT_NEAR(got[v1::RESTORE] / static_cast<double>(total), 0.75, 0.03);
}

TEST_F(SchedulingTest, AgingLetsAnOldArchiveGoBeforeFreshRestores) {
  SchedulingOptions s;
  s.order.max_wait_us = 10 * kSecond;
  Start(s, /*per_turn=*/1);
  h.SubmitOne(Spec(v1::RESTORE, 50));
  uint64_t archive = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, -1, -1, -1), /*max_total=*/1);
  // A stream of restores keeps the mover's one slot busy; the archive waits...
  for (int i = 0; i < 5; ++i) {
    h.SubmitOne(Spec(v1::RESTORE, 100 + i));
    h.Advance(1 * kSecond);
    Complete(m, NewItems(m));
  }
  EXPECT_EQ(h.Row(archive)->state, RequestState::kQueued);
  // ...until it has waited max_wait: then it goes before the fresher restores.
  for (int i = 0; i < 3; ++i) h.SubmitOne(Spec(v1::RESTORE, 200 + i));
  h.Advance(5 * kSecond);
  auto items = NewItems(m);
  Complete(m, items);
  items = NewItems(m);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].id(), archive);
}

// ---- fair share ----

TEST_F(SchedulingTest, FairShareGivesEachUserItsWeightedShareWhateverItsBacklog) {
  SchedulingOptions s;
  s.fair_share.by = ShareBy::kRequester;
  s.fair_share.weights = {{"alice", 1}, {"bob", 3}};
  Start(s);
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 100'000; ++i) specs.push_back(Tagged(v1::ARCHIVE, 1'000'000 + i, "", "alice"));
  for (int i = 0; i < 2'000; ++i) specs.push_back(Tagged(v1::ARCHIVE, 5'000'000 + i, "", "bob"));
  SubmitMany(specs);
  auto m = Connect(MakeHello("m1", {1}, 100));
  std::map<std::string, int> got;
  auto count = [&](const std::vector<v1::ActionItem>& items) {
    for (const auto& it : items) ++got[it.file().seq() >= 5'000'000 ? "bob" : "alice"];
  };
  for (int round = 0; round < 10; ++round) {
    auto items = NewItems(m);
    count(items);
    Complete(m, items);
    if (round == 4) {
      // The share is kept across a restart (the lane of each request is rebuilt from its row).
      // What it was sent after the last results is requeued (the Hello says nothing is in
      // hand) and dispatched again by the same rule.
      h.Restart();
      m = Connect(MakeHello("m1", {1}, 100));
    }
  }
  int total = got["alice"] + got["bob"];
  ASSERT_GE(total, 1000);
  EXPECT_NEAR(got["bob"] / static_cast<double>(total), 0.75, 0.02)
      << "alice " << got["alice"] << " bob " << got["bob"];
}

TEST_F(SchedulingTest, FairShareByFileOwnerUsesTheOwnerKeptInTheRow) {
  SchedulingOptions s;
  s.fair_share.by = ShareBy::kOwner;
  s.fair_share.weights = {{"1001", 1}, {"1002", 1}};
  Start(s);
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 1000; ++i) {
    auto spec = Spec(v1::ARCHIVE, 10'000 + i);
    spec.mutable_owner()->set_uid(i < 900 ? 1001 : 1002);
    specs.push_back(spec);
  }
  SubmitMany(specs);
  auto row = h.Row(1000);
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE(row->has_owner);
  EXPECT_EQ(row->owner_uid, 1002u);
  auto m = Connect(MakeHello("m1", {1}, 100));
  int owner2 = 0;
  for (const auto& it : NewItems(m)) owner2 += it.file().seq() >= 10'900;
  EXPECT_EQ(owner2, 50) << "equal weights: half of the first 100 dispatches";
}

TEST_F(SchedulingTest, FairShareByGroupNamesGroupsAndUsesTheFilesGroup) {
  SchedulingOptions s;
  s.fair_share.by = ShareBy::kGroup;
  // A group named in the configuration is resolved to its id ("daemon" is gid 1 on Debian);
  // gid 0 has no weight of its own and gets the default, 1.
  s.fair_share.weights = {{"daemon", 3}};
  Start(s);
  double share = ShareOfSecondOwner(20'000, 2'000, [](v1::FileOwner* o, bool second) {
    o->set_uid(1000);  // one owner for all: only the group tells them apart
    o->set_gid(second ? 1 : 0);
  });
  EXPECT_NEAR(share, 0.75, 0.02);
}

TEST_F(SchedulingTest, FairShareByProjectUsesTheFilesProjectId) {
  SchedulingOptions s;
  s.fair_share.by = ShareBy::kProject;
  s.fair_share.weights = {{"7", 1}, {"42", 4}};
  Start(s);
  double share = ShareOfSecondOwner(20'000, 2'000, [](v1::FileOwner* o, bool second) {
    o->set_uid(1000);
    o->set_gid(1000);
    o->set_projid(second ? 42 : 7);
  });
  EXPECT_NEAR(share, 0.8, 0.02);
}

// ---- latency behind a backlog ----

TEST_F(SchedulingTest, ARestoreBehind100kArchivesIsDispatchedInTheNextBatch) {
  Start(SchedulingOptions{});
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 100'000; ++i) specs.push_back(Spec(v1::ARCHIVE, 1'000'000 + i));
  SubmitMany(specs);
  auto m = Connect(MakeHello("m1", {1}, 100, 4, 4), /*max_total=*/100);
  ASSERT_EQ(NewItems(m).size(), 100u);  // archives fill every slot

  v1::RequestSpec restore = Spec(v1::RESTORE, 7);
  restore.set_flags(hsm::kHalFlagBlocking);
  uint64_t id = h.SubmitOne(restore);
  EXPECT_EQ(h.Row(id)->state, RequestState::kQueued) << "no slot is free";
  // One archive ends: the next batch carries the restore, not the next archive.
  auto first = m.channel->items().front();
  h.Report(m, ResultMsg(first.id(), first.epoch()));
  auto next = NewItems(m);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id(), id);
  EXPECT_EQ(next[0].action(), v1::RESTORE);
}

TEST_F(SchedulingTest, TheFifoBaselineKeepsArrivalOrderAndBlocksAtItsHead) {
  SchedulingOptions s;
  s.order.policy = "fifo";
  Start(s);
  std::vector<v1::RequestSpec> specs;
  for (int i = 0; i < 10; ++i) specs.push_back(Spec(v1::ARCHIVE, 100 + i));
  SubmitMany(specs);
  uint64_t restore = h.SubmitOne(Spec(v1::RESTORE, 7));
  auto m = Connect(MakeHello("m1", {1}, 4, 4, 4));
  auto items = NewItems(m);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].id(), 1u);
  EXPECT_EQ(h.Row(restore)->state, RequestState::kQueued)
      << "the fifo takes the oldest first and stops when it cannot";
}

}  // namespace
}  // namespace tierflow::coordinator
