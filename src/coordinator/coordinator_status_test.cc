// Visibility and runtime capacities: Status listings with filters and id paging, per-kind
// mover counters, SetCapacity (raise, lower, reset, restart, reconnect) and a mover announcing
// its own capacities. A real loop thread, a ManualClock and an in-memory journal (harness.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <set>

#include "coordinator/coordinator.h"
#include "coordinator/testing/harness.h"

namespace tierflow::coordinator {
namespace {

using store::RequestState;
using testing::Harness;
using testing::MakeHello;
using testing::MoverHandle;
using testing::ResultMsg;
using testing::Spec;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr int64_t kSecond = 1'000'000;

v1::RequestSpec Tagged(v1::Action action, uint64_t seq, const std::string& data,
                       const std::string& user) {
  v1::RequestSpec s = Spec(action, seq);
  s.set_data(data);
  s.set_user(user);
  return s;
}

std::vector<uint64_t> Ids(const v1::StatusReply& reply) {
  std::vector<uint64_t> ids;
  for (const auto& r : reply.requests()) ids.push_back(r.id());
  return ids;
}

v1::Capacities Caps(int32_t archive, int32_t restore, int32_t remove, uint32_t total = 0) {
  v1::Capacities c;
  c.set_max_archive(archive);
  c.set_max_restore(restore);
  c.set_max_remove(remove);
  c.set_max_total(total);
  return c;
}

class CoordinatorStatusTest : public ::testing::Test {
 protected:
  void SetUp() override { h.Start(Options()); }
  static CoordinatorOptions Options() {
    CoordinatorOptions o;
    o.mover_grace_us = 30 * kSecond;
    o.final_grace_us = 10 * kSecond;
    o.heartbeat_interval_us = 0;  // the test movers do not answer Pings
    return o;
  }
  MoverHandle Connect(const v1::Hello& hello) {
    auto m = h.Hello(hello);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : MoverHandle{};
  }
  // A listing as the Status RPC answers it (AnswerStatus: walked in slices).
  v1::StatusReply List(v1::StatusRequest req) {
    req.set_include_requests(true);
    std::promise<v1::StatusReply> answer;
    h.Run([&] {
      h.coord()->AnswerStatus(req, [&](Result<v1::StatusReply> r) {
        EXPECT_TRUE(r.ok()) << r.status().ToString();
        answer.set_value(r.ok() ? *r : v1::StatusReply());
      });
    });
    return answer.get_future().get();
  }
  // Every page of `req` (with `limit` per page), checking that each page but the last is full
  // and names its last id as the next page's start.
  std::vector<uint64_t> AllPages(v1::StatusRequest req, uint32_t limit, int* pages) {
    std::vector<uint64_t> all;
    req.set_limit(limit);
    *pages = 0;
    for (;;) {
      v1::StatusReply page = List(req);
      ++*pages;
      for (uint64_t id : Ids(page)) all.push_back(id);
      if (page.next_after_id() == 0) break;
      EXPECT_EQ(page.requests_size(), static_cast<int>(limit));
      EXPECT_EQ(page.next_after_id(), page.requests(page.requests_size() - 1).id());
      req.set_after_id(page.next_after_id());
      if (*pages > 1000) {
        ADD_FAILURE() << "paging does not end";
        break;
      }
    }
    return all;
  }
  Result<v1::CapacityReply> SetCapacity(const std::string& mover, const v1::Capacities& caps,
                                        bool reset = false) {
    v1::CapacityRequest req;
    req.set_mover(mover);
    *req.mutable_capacities() = caps;
    req.set_reset(reset);
    auto out = std::make_shared<std::optional<Result<v1::CapacityReply>>>();
    h.Run([&] {
      h.coord()->SetCapacity(req, [out](Result<v1::CapacityReply> r) { out->emplace(r); });
    });
    h.Drain();
    if (!*out) return Status(Code::kInternal, "SetCapacity was not answered");
    return **out;
  }
  v1::MoverInfo MoverOf(const std::string& id) {
    v1::StatusReply status = h.StatusOf();
    for (const auto& m : status.movers()) {
      if (m.id() == id) return m;
    }
    ADD_FAILURE() << "mover " << id << " is not listed";
    return {};
  }
  // Ids of archives `m` was sent that it has not finished here.
  void Finish(const MoverHandle& m, size_t index) {
    auto items = m.channel->items();
    ASSERT_LT(index, items.size());
    h.Report(m, ResultMsg(items[index].id(), items[index].epoch()));
  }

  Harness h;
};

// ---- listing ----

TEST_F(CoordinatorStatusTest, FiltersByActionStateMoverTagAndUser) {
  uint64_t a1 = h.SubmitOne(Tagged(v1::ARCHIVE, 1, "proj=a,pool=x", "alice"));
  uint64_t a2 = h.SubmitOne(Tagged(v1::ARCHIVE, 2, "proj=ab", "bob"));
  uint64_t a3 = h.SubmitOne(Tagged(v1::ARCHIVE, 3, "pool=y proj=a", "bob"));
  uint64_t r4 = h.SubmitOne(Tagged(v1::RESTORE, 4, "proj=a", "alice"));
  uint64_t d5 = h.SubmitOne(Tagged(v1::REMOVE, 5, "", "carol"));
  // m1 takes one archive (capacity 1); the rest stay queued.
  auto m1 = Connect(MakeHello("m1", {1}, 1, 0, 0));
  ASSERT_EQ(m1.channel->items().size(), 1u);
  EXPECT_EQ(m1.channel->items()[0].id(), a1);

  v1::StatusRequest req;
  req.add_actions(v1::ARCHIVE);
  EXPECT_THAT(Ids(List(req)), ElementsAre(a1, a2, a3));
  req.add_actions(v1::REMOVE);
  EXPECT_THAT(Ids(List(req)), ElementsAre(a1, a2, a3, d5));

  req = {};
  req.add_states(v1::ASSIGNED);
  EXPECT_THAT(Ids(List(req)), ElementsAre(a1));
  req.add_states(v1::QUEUED);
  EXPECT_THAT(Ids(List(req)), ElementsAre(a1, a2, a3, r4, d5));

  req = {};
  req.set_mover("m1");
  EXPECT_THAT(Ids(List(req)), ElementsAre(a1));
  req.set_mover("m2");
  EXPECT_TRUE(List(req).requests().empty());

  req = {};
  req.set_tag("proj=a");
  EXPECT_THAT(Ids(List(req)), ElementsAre(a1, a3, r4)) << "proj=ab is another value";
  req.set_tag("proj=");
  EXPECT_TRUE(List(req).requests().empty()) << "a tag matches whole, not as a prefix";

  req = {};
  req.set_user("bob");
  EXPECT_THAT(Ids(List(req)), ElementsAre(a2, a3));

  // Every filter at once: bob's queued archives tagged proj=a.
  req = {};
  req.add_actions(v1::ARCHIVE);
  req.add_states(v1::QUEUED);
  req.set_tag("proj=a");
  req.set_user("bob");
  v1::StatusReply reply = List(req);
  ASSERT_THAT(Ids(reply), ElementsAre(a3));
  EXPECT_EQ(reply.requests(0).data(), "pool=y proj=a");
  EXPECT_EQ(reply.requests(0).user(), "bob");
  EXPECT_EQ(reply.next_after_id(), 0u);
  EXPECT_THAT(reply.requests(0).waiting_reason(), HasSubstr("capacity"));
}

// --user is the requester's name, or a number: the uid of the file's owner.
TEST_F(CoordinatorStatusTest, UserMatchesTheRequesterOrTheOwnersUid) {
  v1::RequestSpec owned = Tagged(v1::ARCHIVE, 1, "", "alice");
  owned.mutable_owner()->set_uid(1002);
  owned.mutable_owner()->set_gid(50);
  uint64_t a = h.SubmitOne(owned);
  uint64_t b = h.SubmitOne(Tagged(v1::ARCHIVE, 2, "", "1002"));  // a requester named 1002
  uint64_t c = h.SubmitOne(Tagged(v1::ARCHIVE, 3, "", "bob"));
  v1::StatusRequest req;
  req.set_user("1002");
  v1::StatusReply reply = List(req);
  EXPECT_THAT(Ids(reply), ElementsAre(a, b));
  ASSERT_GE(reply.requests_size(), 1);
  EXPECT_EQ(reply.requests(0).owner().uid(), 1002u);
  EXPECT_EQ(reply.requests(0).owner().gid(), 50u);
  req.set_user("alice");
  EXPECT_THAT(Ids(List(req)), ElementsAre(a));
  req.set_user("100");
  EXPECT_TRUE(List(req).requests().empty()) << "a uid matches whole";
  req.set_user("bob");
  EXPECT_THAT(Ids(List(req)), ElementsAre(c));
}

TEST_F(CoordinatorStatusTest, PagesGiveEachMatchingRequestOnceInIdOrder) {
  std::vector<uint64_t> tagged;
  for (int i = 0; i < 57; ++i) {
    uint64_t id = h.SubmitOne(Tagged(v1::ARCHIVE, 100 + i, i % 3 == 0 ? "t=1" : "t=2", "u"));
    if (i % 3 == 0) tagged.push_back(id);
  }
  v1::StatusRequest req;
  req.set_tag("t=1");
  int pages = 0;
  EXPECT_THAT(AllPages(req, 5, &pages), ElementsAreArray(tagged));
  EXPECT_EQ(pages, 4);  // 19 = 5 + 5 + 5 + 4

  // after_id alone pages through everything.
  std::vector<uint64_t> all;
  for (uint64_t id = 1; id <= 57; ++id) all.push_back(id);
  req = {};
  req.set_after_id(0);
  req.add_states(v1::QUEUED);
  EXPECT_THAT(AllPages(req, 10, &pages), ElementsAreArray(all));
  EXPECT_EQ(pages, 6);

  // An exact last page has no next page; after the last id, nothing.
  req = {};
  req.set_tag("t=1");
  req.set_limit(19);
  EXPECT_EQ(List(req).next_after_id(), 0u);
  req.set_after_id(all.back());
  EXPECT_TRUE(List(req).requests().empty());
  req.set_after_id(UINT64_MAX);
  EXPECT_TRUE(List(req).requests().empty());
}

// Purged ids leave gaps: the walk goes over the live ids only, and the pages are the same.
TEST_F(CoordinatorStatusTest, PagesAreTheSameWhenMostIdsArePurged) {
  auto m = Connect(MakeHello("m1", {1}, -1));
  for (int i = 0; i < 60; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  auto items = m.channel->items();
  ASSERT_EQ(items.size(), 60u);
  std::vector<uint64_t> kept;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i % 10 == 7) {
      kept.push_back(items[i].id());
    } else {
      h.Report(m, ResultMsg(items[i].id(), items[i].epoch()));
    }
  }
  h.Advance(11 * kSecond);  // final requests are purged
  ASSERT_EQ(h.coord()->request_count(), kept.size());
  std::sort(kept.begin(), kept.end());

  v1::StatusRequest req;
  req.set_mover("m1");
  int pages = 0;
  EXPECT_THAT(AllPages(req, 4, &pages), ElementsAreArray(kept));
  EXPECT_EQ(pages, 2);
  req.set_after_id(kept[2]);
  req.set_limit(2);
  EXPECT_THAT(Ids(List(req)), ElementsAre(kept[3], kept[4]));
}

// A filter that matches little among many requests is walked kListSlice ids per loop turn:
// what was posted after the listing runs before its answer, and the answer is complete.
TEST_F(CoordinatorStatusTest, AListingIsWalkedInSlicesAndTheLoopGoesOnBetween) {
  const size_t n = 3 * Coordinator::kListSlice + 100;
  std::vector<uint64_t> rare;
  auto is_rare = [&](size_t i) { return i == n / 2 || i == n - 1; };
  for (size_t first = 0; first < n; first += 10'000) {
    v1::SubmitRequest req;
    for (size_t i = first; i < std::min(n, first + 10'000); ++i) {
      *req.add_requests() = Tagged(v1::ARCHIVE, 1 + i, is_rare(i) ? "job=rare" : "", "u");
    }
    auto reply = h.Submit(req);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    for (int i = 0; i < reply->accepted_size(); ++i) {
      if (is_rare(first + i)) rare.push_back(reply->accepted(i).id());
    }
  }
  ASSERT_EQ(rare.size(), 2u);
  v1::StatusRequest req;
  req.set_include_requests(true);
  req.set_tag("job=rare");
  bool answered = false;
  int ran_before_answer = 0;
  std::promise<v1::StatusReply> answer;
  h.Run([&] {
    h.coord()->AnswerStatus(req, [&](Result<v1::StatusReply> r) {
      answered = true;
      answer.set_value(r.ok() ? *r : v1::StatusReply());
    });
    // Posted after the listing began, on the loop thread: no race on the flags.
    for (int i = 0; i < 2; ++i) h.loop()->Post([&] { ran_before_answer += !answered; });
  });
  v1::StatusReply reply = answer.get_future().get();
  EXPECT_EQ(ran_before_answer, 2) << "the listing held the loop until it was done";
  EXPECT_THAT(Ids(reply), ElementsAreArray(rare));
  EXPECT_EQ(reply.next_after_id(), 0u);
  uint64_t queued_archives = 0;
  for (const auto& c : reply.counters()) queued_archives += c.action() == v1::ARCHIVE ? c.queued() : 0;
  EXPECT_EQ(queued_archives, n) << "the answer has the counters too";

  // A request that arrives during the walk, above the ids walked so far, is listed.
  answered = false;
  std::promise<v1::StatusReply> second;
  std::promise<uint64_t> late_id;
  h.Run([&] {
    h.coord()->AnswerStatus(req, [&](Result<v1::StatusReply> r) {
      answered = true;
      second.set_value(r.ok() ? *r : v1::StatusReply());
    });
    v1::SubmitRequest one;
    *one.add_requests() = Tagged(v1::ARCHIVE, 10 * n, "job=rare", "u");
    h.coord()->Submit(one, [&](Result<v1::SubmitReply> r) {
      late_id.set_value(r.ok() ? r->accepted(0).id() : 0);
    });
  });
  reply = second.get_future().get();
  const uint64_t late = late_id.get_future().get();
  ASSERT_NE(late, 0u);
  rare.push_back(late);
  EXPECT_THAT(Ids(reply), ElementsAreArray(rare));
}

TEST_F(CoordinatorStatusTest, WithoutFiltersTheOverviewListsRunningFirst) {
  for (int i = 0; i < 4; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  uint64_t restore = h.SubmitOne(Spec(v1::RESTORE, 9));
  Connect(MakeHello("m1", {1}, 0, 1, 0));
  v1::StatusReply reply = List({});
  ASSERT_EQ(reply.requests_size(), 5);
  EXPECT_EQ(reply.requests(0).id(), restore) << "the assigned restore comes first";
  EXPECT_EQ(reply.next_after_id(), 0u);
}

TEST_F(CoordinatorStatusTest, MoverInfoCountsRunningPerKind) {
  for (int i = 0; i < 3; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  h.SubmitOne(Spec(v1::RESTORE, 10));
  for (int i = 0; i < 2; ++i) h.SubmitOne(Spec(v1::REMOVE, 20 + i));
  Connect(MakeHello("m1", {1}, 2, 4, 1));
  v1::MoverInfo m = MoverOf("m1");
  EXPECT_EQ(m.running_archive(), 2u);
  EXPECT_EQ(m.running_restore(), 1u);
  EXPECT_EQ(m.running_remove(), 1u);
  EXPECT_EQ(m.running(), 4u);
  EXPECT_FALSE(m.capacity_override());
  EXPECT_EQ(m.capacities().max_archive(), 2);
}

TEST_F(CoordinatorStatusTest, MoverInfoListsItsBatchingSlots) {
  CoordinatorOptions o = Options();
  o.scheduling.batching.tag = "batch";
  o.scheduling.batching.slots_per_mover = 1;
  o.scheduling.batching.idle_us = 5 * kSecond;
  o.scheduling.batching.max_us = 600 * kSecond;
  h.Stop();
  h.Start(o);
  for (int i = 0; i < 3; ++i) h.SubmitOne(Tagged(v1::ARCHIVE, 1 + i, "batch=A", "u"));
  Connect(MakeHello("m1", {1}, 2));
  h.Advance(2 * kSecond);
  v1::MoverInfo info = MoverOf("m1");
  ASSERT_EQ(info.slots_size(), 1);
  EXPECT_EQ(info.slots(0).value(), "A");
  EXPECT_EQ(info.slots(0).running(), 2u);
  EXPECT_EQ(info.slots(0).taken(), 2u);
  EXPECT_EQ(info.slots(0).held_us(), 2 * kSecond);
  EXPECT_EQ(info.slots(0).idle_us(), 2 * kSecond);
}

// ---- SetCapacity ----

TEST_F(CoordinatorStatusTest, RaisingACapacityDispatchesMoreAtOnce) {
  for (int i = 0; i < 6; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  auto m = Connect(MakeHello("m1", {1}, 1));
  ASSERT_EQ(m.channel->items().size(), 1u);

  auto reply = SetCapacity("m1", Caps(4, 4, 4));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(reply->mover().capacity_override());
  EXPECT_EQ(reply->mover().capacities().max_archive(), 4);
  EXPECT_EQ(reply->mover().running_archive(), 4u);
  EXPECT_EQ(m.channel->items().size(), 4u) << "three more sent with no other event";
  EXPECT_EQ(h.journal().Meta("capacity/m1"), "archive=4 restore=4 remove=4 total=0");
}

TEST_F(CoordinatorStatusTest, LoweringACapacityTakesNothingBackAndGivesNothingUntilUnder) {
  for (int i = 0; i < 8; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  auto m = Connect(MakeHello("m1", {1}, 4));
  ASSERT_EQ(m.channel->items().size(), 4u);

  ASSERT_TRUE(SetCapacity("m1", Caps(2, 4, 4)).ok());
  EXPECT_TRUE(m.channel->cancels().empty()) << "nothing is taken back";
  EXPECT_EQ(MoverOf("m1").running_archive(), 4u);
  Finish(m, 0);  // 3 running, bound 2
  Finish(m, 1);  // 2 running: at the bound
  EXPECT_EQ(m.channel->items().size(), 4u);
  Finish(m, 2);  // 1 running: one more fits
  EXPECT_EQ(m.channel->items().size(), 5u);
  EXPECT_EQ(MoverOf("m1").running_archive(), 2u);
}

TEST_F(CoordinatorStatusTest, AnOverrideSurvivesARestartAndWinsOverTheHello) {
  for (int i = 0; i < 6; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  auto m = Connect(MakeHello("m1", {1}, 1));
  ASSERT_TRUE(SetCapacity("m1", Caps(3, 0, 0)).ok());
  ASSERT_EQ(m.channel->items().size(), 3u);

  h.Restart();
  v1::MoverInfo info = MoverOf("m1");
  EXPECT_TRUE(info.capacity_override()) << "known from the journal before any Hello";
  EXPECT_EQ(info.capacities().max_archive(), 3);
  // The mover reconnects with its own capacity 1, holding nothing: the override wins.
  auto m2 = Connect(MakeHello("m1", {1}, 1));
  EXPECT_EQ(m2.channel->items().size(), 3u);
  EXPECT_EQ(MoverOf("m1").capacities().max_archive(), 3);

  // Reset: back to its own capacity (1). Nothing taken back; nothing new until under 1.
  auto reset = SetCapacity("m1", {}, /*reset=*/true);
  ASSERT_TRUE(reset.ok()) << reset.status().ToString();
  EXPECT_FALSE(reset->mover().capacity_override());
  EXPECT_EQ(reset->mover().capacities().max_archive(), 1);
  EXPECT_EQ(h.journal().Meta("capacity/m1"), "");
  h.Restart();
  EXPECT_FALSE(MoverOf("m1").capacity_override()) << "the reset is journaled too";
}

// A reconnect of the same coordinator session (no restart) keeps the override as well.
TEST_F(CoordinatorStatusTest, AnOverrideSurvivesAReconnect) {
  for (int i = 0; i < 5; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  auto m = Connect(MakeHello("m1", {1}, 1));
  ASSERT_TRUE(SetCapacity("m1", Caps(2, 0, 0)).ok());
  ASSERT_EQ(m.channel->items().size(), 2u);
  h.Gone(m);
  v1::Hello again = MakeHello("m1", {1}, 8);
  for (const auto& item : m.channel->items()) {
    v1::InHand* held = again.add_in_hand();
    held->set_id(item.id());
    held->set_epoch(item.epoch());
  }
  auto m2 = Connect(again);
  EXPECT_TRUE(m2.channel->items().empty()) << "it holds 2, its bound; its own 8 is overridden";
  EXPECT_EQ(MoverOf("m1").running_archive(), 2u);
}

TEST_F(CoordinatorStatusTest, AnUnknownMoverIsNotFound) {
  auto reply = SetCapacity("nobody", Caps(1, 1, 1));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kNotFound);
  EXPECT_THAT(reply.status().message(), HasSubstr("nobody"));
  EXPECT_EQ(h.journal().Meta("capacity/nobody"), "");
}

TEST_F(CoordinatorStatusTest, TotalBoundsActionsOfEveryKind) {
  for (int i = 0; i < 4; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  for (int i = 0; i < 4; ++i) h.SubmitOne(Spec(v1::RESTORE, 10 + i));
  auto m = Connect(MakeHello("m1", {1}, 0, 0, 0));
  ASSERT_TRUE(SetCapacity("m1", Caps(4, 4, 4, /*total=*/3)).ok());
  EXPECT_EQ(m.channel->items().size(), 3u);
  v1::MoverInfo info = MoverOf("m1");
  EXPECT_EQ(info.running(), 3u);
  EXPECT_EQ(info.running_restore(), 3u) << "restores go first";
  EXPECT_EQ(info.capacities().max_total(), 3u);
  Finish(m, 0);
  EXPECT_EQ(m.channel->items().size(), 4u) << "one out, one in";
}

// ---- a mover's own capacities ----

TEST_F(CoordinatorStatusTest, AMoverAnnouncingCapacitiesIsGivenMoreOrLess) {
  for (int i = 0; i < 6; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  auto m = Connect(MakeHello("m1", {1}, 1));
  ASSERT_EQ(m.channel->items().size(), 1u);
  v1::MoverMessage msg;
  *msg.mutable_capacities() = Caps(3, 4, 4);
  h.Report(m, msg);
  EXPECT_EQ(m.channel->items().size(), 3u);
  EXPECT_EQ(MoverOf("m1").capacities().max_archive(), 3);

  // While an override is set, the mover's own change is recorded but not applied...
  ASSERT_TRUE(SetCapacity("m1", Caps(3, 4, 4)).ok());
  *msg.mutable_capacities() = Caps(5, 4, 4);
  h.Report(m, msg);
  EXPECT_EQ(m.channel->items().size(), 3u);
  EXPECT_EQ(MoverOf("m1").capacities().max_archive(), 3);
  // ...and is what a reset goes back to.
  ASSERT_TRUE(SetCapacity("m1", {}, /*reset=*/true).ok());
  EXPECT_EQ(m.channel->items().size(), 5u);
  EXPECT_EQ(MoverOf("m1").capacities().max_archive(), 5);
}

}  // namespace
}  // namespace tierflow::coordinator
