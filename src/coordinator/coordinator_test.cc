// Coordinator state machine tests: a real loop thread, a ManualClock, an in-memory journal
// whose appends can be held or failed, and recording mover/waiter channels.
#include "coordinator/coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

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

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { h.Start(Options()); }
  CoordinatorOptions Options() {
    CoordinatorOptions o;
    o.mover_grace_us = 30 * kSecond;
    o.final_grace_us = 10 * kSecond;
    o.journal_retry_us = 1 * kSecond;
    o.heartbeat_interval_us = 0;  // the test movers do not answer Pings; one test turns them on
    return o;
  }
  MoverHandle Connect(const v1::Hello& hello) {
    auto m = h.Hello(hello);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : MoverHandle{};
  }
  RequestState StateOf(uint64_t id) {
    auto row = h.Row(id);
    return row ? row->state : static_cast<RequestState>(0);
  }

  Harness h;
};

TEST_F(CoordinatorTest, SubmitIsAnsweredOnlyOnceDurable) {
  h.sink().Hold(true);
  v1::SubmitRequest req;
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  *req.add_requests() = Spec(v1::RESTORE, 2);
  auto slot = h.SubmitAsync(req);
  h.Drain();
  EXPECT_FALSE(slot->has_value()) << "answered before the journal append completed";
  EXPECT_EQ(h.sink().held(), 1u);
  EXPECT_EQ(h.journal().rows(), 0u);

  h.sink().Release();
  h.Drain();
  ASSERT_TRUE(slot->has_value());
  ASSERT_TRUE((*slot)->ok());
  const auto& reply = ***slot;
  ASSERT_EQ(reply.accepted_size(), 2);
  EXPECT_NE(reply.accepted(0).id(), reply.accepted(1).id());
  EXPECT_FALSE(reply.accepted(0).merged());
  auto row = h.journal().Row(reply.accepted(0).id());
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->state, RequestState::kQueued);
  EXPECT_EQ(row->archive_id, 1u) << "archive id 0 takes the default";
  EXPECT_GE(std::stoull(h.journal().Meta("next_id")), reply.accepted(1).id() + 1);
}

TEST_F(CoordinatorTest, IdenticalPendingRequestsAreMerged) {
  v1::SubmitRequest req;
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  *req.add_requests() = Spec(v1::ARCHIVE, 1);  // same file, same action, same submit
  *req.add_requests() = Spec(v1::RESTORE, 1);  // same file, another action
  auto r1 = h.Submit(req);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->accepted(1).id(), r1->accepted(0).id());
  EXPECT_TRUE(r1->accepted(1).merged());
  EXPECT_NE(r1->accepted(2).id(), r1->accepted(0).id());

  v1::SubmitRequest again;
  *again.add_requests() = Spec(v1::ARCHIVE, 1);
  auto r2 = h.Submit(again);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->accepted(0).id(), r1->accepted(0).id());
  EXPECT_TRUE(r2->accepted(0).merged());
  EXPECT_EQ(h.journal().rows(), 2u);

  // Once final, the same file and action make a new request.
  auto m = Connect(MakeHello("m1", {1}, 4));
  auto row = h.Row(r1->accepted(0).id());
  h.Report(m, ResultMsg(row->id, row->epoch));
  EXPECT_EQ(StateOf(row->id), RequestState::kSucceeded);
  auto r3 = h.Submit(again);
  ASSERT_TRUE(r3.ok());
  EXPECT_NE(r3->accepted(0).id(), r1->accepted(0).id());
  EXPECT_FALSE(r3->accepted(0).merged());
}

TEST_F(CoordinatorTest, IdempotencyKeyReplaysTheFirstAnswerAcrossRestart) {
  v1::SubmitRequest req;
  req.set_idempotency_key("key-1");
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  *req.add_requests() = Spec(v1::ARCHIVE, 2);
  auto first = h.Submit(req);
  ASSERT_TRUE(first.ok());

  v1::SubmitRequest retry;
  retry.set_idempotency_key("key-1");
  *retry.add_requests() = Spec(v1::ARCHIVE, 99);  // ignored: the key decides
  auto second = h.Submit(retry);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->accepted_size(), 2);
  EXPECT_EQ(second->accepted(0).id(), first->accepted(0).id());
  EXPECT_EQ(second->accepted(1).id(), first->accepted(1).id());
  EXPECT_EQ(h.journal().rows(), 2u) << "the replay created nothing";

  h.Restart();
  auto third = h.Submit(retry);
  ASSERT_TRUE(third.ok());
  ASSERT_EQ(third->accepted_size(), 2);
  EXPECT_EQ(third->accepted(1).id(), first->accepted(1).id());
  // New ids after a restart never reuse old ones.
  uint64_t fresh = h.SubmitOne(Spec(v1::ARCHIVE, 3));
  EXPECT_GT(fresh, first->accepted(1).id());
}

TEST_F(CoordinatorTest, InvalidSpecsAreRejectedWhole) {
  v1::SubmitRequest req;
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  *req.add_requests() = Spec(v1::CANCEL, 2);
  auto r = h.Submit(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("request 1"));
  EXPECT_EQ(h.journal().rows(), 0u);
}

TEST_F(CoordinatorTest, DispatchesRestoresBeforeRemovesBeforeArchives) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  uint64_t rm = h.SubmitOne(Spec(v1::REMOVE, 2));
  uint64_t rs = h.SubmitOne(Spec(v1::RESTORE, 3));
  // A per-turn bound of one makes each turn pick exactly the highest-priority request.
  h.Stop();
  CoordinatorOptions o = Options();
  o.max_dispatch_per_turn = 1;
  h.Start(o);
  auto m = Connect(MakeHello("m1", {1}, 4, 4, 4));
  auto items = m.channel->items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].id(), rs);
  EXPECT_EQ(items[1].id(), rm);
  EXPECT_EQ(items[2].id(), a);
  EXPECT_EQ(items[0].action(), v1::RESTORE);
  EXPECT_EQ(items[0].epoch(), 1u);
}

TEST_F(CoordinatorTest, BlockingRestoresGoFirstEvenFromAnotherArchive) {
  // Ten restores of archive 1 fill the queue; a blocking one of archive 2 arrives last, and a
  // plain restore that a reader then waits on is promoted.
  for (int i = 0; i < 10; ++i) h.SubmitOne(Spec(v1::RESTORE, 100 + i, 1));
  v1::RequestSpec blocking = Spec(v1::RESTORE, 200, 2);
  blocking.set_flags(hsm::kHalFlagBlocking);
  uint64_t b = h.SubmitOne(blocking);
  uint64_t plain = h.SubmitOne(Spec(v1::RESTORE, 300, 1));
  v1::RequestSpec again = Spec(v1::RESTORE, 300, 1);
  again.set_flags(hsm::kHalFlagBlocking);
  EXPECT_EQ(h.SubmitOne(again), plain);  // merged, and promoted
  ASSERT_TRUE(h.Row(plain).has_value());
  EXPECT_EQ(h.Row(plain)->flags & hsm::kHalFlagBlocking, hsm::kHalFlagBlocking);

  auto m = Connect(MakeHello("m1", {1, 2}, 4, /*restore*/ 2, 4));
  auto items = m.channel->items();
  ASSERT_EQ(items.size(), 2u);
  std::vector<uint64_t> got = {items[0].id(), items[1].id()};
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<uint64_t>{b, plain}));
}

TEST_F(CoordinatorTest, CapacitiesAreRespectedPerKind) {
  std::vector<uint64_t> archives, restores;
  for (int i = 0; i < 5; ++i) archives.push_back(h.SubmitOne(Spec(v1::ARCHIVE, 10 + i)));
  for (int i = 0; i < 3; ++i) restores.push_back(h.SubmitOne(Spec(v1::RESTORE, 20 + i)));
  auto m = Connect(MakeHello("m1", {1}, /*archive*/ 2, /*restore*/ 1, /*remove*/ 0));
  auto items = m.channel->items();
  int na = 0, nr = 0;
  for (const auto& it : items) (it.action() == v1::ARCHIVE ? na : nr)++;
  EXPECT_EQ(na, 2);
  EXPECT_EQ(nr, 1);

  // A result frees one archive slot: exactly one more archive goes out, the oldest queued.
  h.Report(m, ResultMsg(archives[0], 1));
  items = m.channel->items();
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[3].id(), archives[2]);
  auto status = h.StatusOf();
  EXPECT_EQ(status.counters(2).action(), v1::ARCHIVE);
  EXPECT_EQ(status.counters(2).assigned(), 2u);
  EXPECT_EQ(status.counters(2).queued(), 2u);
  EXPECT_EQ(status.counters(2).succeeded(), 1u);
}

TEST_F(CoordinatorTest, RoutesByArchiveIdAndWarnsAboutUnservedIds) {
  uint64_t a1 = h.SubmitOne(Spec(v1::ARCHIVE, 1, 1));
  uint64_t a2 = h.SubmitOne(Spec(v1::ARCHIVE, 2, 2));
  uint64_t a7 = h.SubmitOne(Spec(v1::ARCHIVE, 3, 7));
  auto m1 = Connect(MakeHello("m1", {1}, 8));
  auto m2 = Connect(MakeHello("m2", {2, 3}, 8));
  ASSERT_EQ(m1.channel->items().size(), 1u);
  EXPECT_EQ(m1.channel->items()[0].id(), a1);
  ASSERT_EQ(m2.channel->items().size(), 1u);
  EXPECT_EQ(m2.channel->items()[0].id(), a2);
  EXPECT_EQ(StateOf(a7), RequestState::kQueued);

  const std::string expected =
      "archive id 7 is not served by any connected mover; start a mover with --archive-id 7";
  auto status = h.StatusOf(true);
  EXPECT_THAT(std::vector<std::string>(status.warnings().begin(), status.warnings().end()),
              ::testing::Contains(expected));
  bool found = false;
  for (const auto& info : status.requests()) {
    if (info.id() == a7) {
      EXPECT_EQ(info.waiting_reason(), expected);
      found = true;
    }
  }
  EXPECT_TRUE(found);

  // A mover for archive id 7 picks it up and the warning goes away.
  auto m7 = Connect(MakeHello("m7", {7}, 8));
  ASSERT_EQ(m7.channel->items().size(), 1u);
  EXPECT_EQ(m7.channel->items()[0].id(), a7);
  EXPECT_EQ(h.StatusOf().warnings_size(), 0);
}

TEST_F(CoordinatorTest, OneArchiveIdAndFlagsPerBatch) {
  h.SubmitOne(Spec(v1::ARCHIVE, 1, 1, 0));
  h.SubmitOne(Spec(v1::ARCHIVE, 2, 1, hsm::kHalFlagForce));
  h.SubmitOne(Spec(v1::ARCHIVE, 3, 2, 0));
  h.SubmitOne(Spec(v1::RESTORE, 4, 1, 0));
  h.SubmitOne(Spec(v1::ARCHIVE, 5, 1, 0));
  auto m = Connect(MakeHello("m1", {1, 2}, 8));
  int batches = 0;
  size_t items = 0;
  for (const auto& msg : m.channel->messages()) {
    if (!msg.has_batch()) continue;
    ++batches;
    for (const auto& it : msg.batch().items()) {
      EXPECT_EQ(it.archive_id(), msg.batch().archive_id());
      EXPECT_EQ(it.flags(), msg.batch().flags());
      ++items;
    }
  }
  EXPECT_EQ(items, 5u);
  EXPECT_EQ(batches, 3) << "(1,0) with the restore, (1,FORCE), (2,0)";
}

TEST_F(CoordinatorTest, ResultsFromTheWrongMoverOrEpochAreIgnored) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m1 = Connect(MakeHello("m1", {1}, 1));
  auto m2 = Connect(MakeHello("m2", {1}, 1));
  auto row = h.Row(id);
  ASSERT_EQ(row->state, RequestState::kAssigned);
  const MoverHandle& owner = row->mover == "m1" ? m1 : m2;
  const MoverHandle& other = row->mover == "m1" ? m2 : m1;

  h.Report(other, ResultMsg(id, row->epoch));
  EXPECT_EQ(StateOf(id), RequestState::kAssigned);
  h.Report(owner, ResultMsg(id, row->epoch + 1));
  EXPECT_EQ(StateOf(id), RequestState::kAssigned);
  h.Report(owner, ResultMsg(id, row->epoch, EIO));
  EXPECT_EQ(StateOf(id), RequestState::kFailed);
  EXPECT_EQ(h.Row(id)->error_code, EIO);
  // A late duplicate after the end changes nothing.
  h.Report(owner, ResultMsg(id, row->epoch));
  EXPECT_EQ(StateOf(id), RequestState::kFailed);
}

TEST_F(CoordinatorTest, RetryableFailuresAreRequeuedUpToMaxAttempts) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 1));
  for (uint64_t epoch = 1; epoch <= 3; ++epoch) {
    auto items = m.channel->items();
    ASSERT_EQ(items.size(), epoch);
    EXPECT_EQ(items.back().id(), id);
    EXPECT_EQ(items.back().epoch(), epoch);
    h.Report(m, ResultMsg(id, epoch, EAGAIN, /*retryable=*/true));
    if (epoch < 3) h.Advance(5 * kSecond);  // past the backoff (1 s, then 2 s)
  }
  auto row = h.Row(id);
  EXPECT_EQ(row->state, RequestState::kFailed);
  EXPECT_EQ(row->attempts, 3u);
  EXPECT_EQ(row->error_code, EAGAIN);
  EXPECT_EQ(m.channel->items().size(), 3u);
  EXPECT_EQ(h.journal().Row(id)->state, RequestState::kFailed);
}

TEST_F(CoordinatorTest, RetriesWaitOutADoublingBackoffAndSayWhy) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 1));
  h.Report(m, ResultMsg(id, 1, EAGAIN, /*retryable=*/true));
  // First retry after retry_delay_us (1 s by default), not before.
  EXPECT_EQ(StateOf(id), RequestState::kQueued);
  auto status = h.StatusOf(true);
  ASSERT_EQ(status.requests_size(), 1);
  EXPECT_THAT(status.requests(0).waiting_reason(), HasSubstr("retrying in"));
  EXPECT_THAT(status.requests(0).waiting_reason(), HasSubstr("attempt 2 of 3"));
  h.Advance(kSecond - 1);
  EXPECT_EQ(m.channel->items().size(), 1u);
  h.Advance(1);
  ASSERT_EQ(m.channel->items().size(), 2u);
  // The second retry waits twice as long.
  h.Report(m, ResultMsg(id, 2, EAGAIN, /*retryable=*/true));
  h.Advance(2 * kSecond - 1);
  EXPECT_EQ(m.channel->items().size(), 2u);
  h.Advance(1);
  EXPECT_EQ(m.channel->items().size(), 3u);
}

TEST_F(CoordinatorTest, ACancelDuringTheBackoffEndsTheRequest) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 1));
  h.Report(m, ResultMsg(id, 1, EAGAIN, /*retryable=*/true));
  v1::CancelRequest cancel;
  cancel.add_ids(id);
  ASSERT_TRUE(h.Cancel(cancel).ok());
  EXPECT_EQ(StateOf(id), RequestState::kCanceled);
  h.Advance(10 * kSecond);
  EXPECT_EQ(m.channel->items().size(), 1u);
}

TEST_F(CoordinatorTest, NoRetryMakesEveryFailureFinal) {
  h.Stop();
  CoordinatorOptions o = Options();
  o.no_retry = true;
  h.Start(o);
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 1));
  h.Report(m, ResultMsg(id, 1, EAGAIN, /*retryable=*/true));
  EXPECT_EQ(StateOf(id), RequestState::kFailed);
  EXPECT_EQ(h.Row(id)->error_code, EAGAIN);
}

TEST_F(CoordinatorTest, ASilentActionIsTakenBackAfterTheActiveRequestTimeout) {
  h.Stop();
  CoordinatorOptions o = Options();
  o.active_request_timeout_us = 100 * kSecond;
  o.mover_grace_us = 1000 * kSecond;  // the mover stays connected: no grace involved
  h.Start(o);
  uint64_t quiet = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  uint64_t busy = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  auto m = Connect(MakeHello("m1", {1}, 1));
  auto m2 = Connect(MakeHello("m2", {1}, 1));
  ASSERT_EQ(StateOf(quiet), RequestState::kAssigned);
  ASSERT_EQ(StateOf(busy), RequestState::kAssigned);
  const std::string quiet_mover = h.Row(quiet)->mover;
  const std::string busy_mover = h.Row(busy)->mover;
  ASSERT_NE(quiet_mover, busy_mover);
  MoverHandle& q = quiet_mover == "m1" ? m : m2;
  MoverHandle& b = quiet_mover == "m1" ? m2 : m;
  // One mover reports progress every 30 s; the other says nothing.
  for (int i = 0; i < 4; ++i) {
    h.Advance(30 * kSecond);
    v1::MoverMessage p;
    p.mutable_progress()->set_id(busy);
    p.mutable_progress()->set_epoch(1);
    p.mutable_progress()->set_bytes_done(i);
    h.Report(b, p);
  }
  h.Advance(20 * kSecond);
  EXPECT_EQ(StateOf(busy), RequestState::kAssigned);
  // The silent one was canceled at its mover and went to a mover again (epoch 2).
  auto row = h.Row(quiet);
  ASSERT_TRUE(row.has_value());
  EXPECT_GE(row->epoch, 2u);
  EXPECT_THAT(row->error, HasSubstr("reported nothing"));
  bool canceled = false;
  for (const auto& c : q.channel->cancels()) canceled |= c.id() == quiet && c.epoch() == 1;
  EXPECT_TRUE(canceled);
  // Its late result, from the old epoch, is ignored.
  h.Report(q, ResultMsg(quiet, 1));
  EXPECT_NE(StateOf(quiet), RequestState::kSucceeded);
}

TEST_F(CoordinatorTest, CancelQueuedAtOnceAndForwardRunning) {
  uint64_t queued = h.SubmitOne(Spec(v1::ARCHIVE, 1, 5));  // no mover serves 5
  uint64_t running = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  auto m = Connect(MakeHello("m1", {1}, 4));
  ASSERT_EQ(StateOf(running), RequestState::kAssigned);

  v1::CancelRequest req;
  auto* f = req.add_files();
  f->set_fsid("fs1");
  f->set_seq(1);
  f->set_oid(1);
  req.add_ids(running);
  auto reply = h.Cancel(req);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_THAT(reply->canceled(), ::testing::ElementsAre(queued));
  EXPECT_THAT(reply->forwarded(), ::testing::ElementsAre(running));
  EXPECT_EQ(StateOf(queued), RequestState::kCanceled);
  EXPECT_EQ(h.journal().Row(queued)->state, RequestState::kCanceled);
  EXPECT_EQ(StateOf(running), RequestState::kAssigned);

  const auto msgs = m.channel->messages();
  ASSERT_TRUE(msgs.back().has_cancel());
  EXPECT_EQ(msgs.back().cancel().items(0).id(), running);
  EXPECT_EQ(msgs.back().cancel().items(0).epoch(), 1u);

  h.Report(m, ResultMsg(running, 1, ECANCELED));
  EXPECT_EQ(StateOf(running), RequestState::kCanceled);

  // A file with no request: nothing recorded, no error.
  v1::CancelRequest none;
  none.add_files()->set_fsid("fs1");
  none.mutable_files(0)->set_seq(77);
  uint64_t before = h.sink().appends();
  auto r2 = h.Cancel(none);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->canceled_size() + r2->forwarded_size(), 0);
  EXPECT_EQ(h.sink().appends(), before);

  v1::CancelRequest unknown;
  unknown.add_ids(12345);
  auto r3 = h.Cancel(unknown);
  EXPECT_EQ(r3.status().code(), Code::kNotFound);
}

TEST_F(CoordinatorTest, CancelOfAnAssignmentNotYetSentEndsItAtOnce) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  h.sink().Hold(true);
  auto m = Connect(MakeHello("m1", {1}, 4));  // assignment journaled, held
  ASSERT_EQ(StateOf(id), RequestState::kAssigned);
  v1::CancelRequest req;
  req.add_ids(id);
  std::optional<Result<v1::CancelReply>> out;
  h.Run([&] { h.coord()->Cancel(req, [&](Result<v1::CancelReply> r) { out.emplace(r); }); });
  h.sink().Hold(false);
  h.sink().Release();
  h.Drain();
  ASSERT_TRUE(out && out->ok());
  EXPECT_THAT((*out)->canceled(), ::testing::ElementsAre(id));
  EXPECT_EQ(StateOf(id), RequestState::kCanceled);
  EXPECT_TRUE(m.channel->items().empty()) << "a canceled assignment must not be sent";
}

TEST_F(CoordinatorTest, ReconnectWithinGraceKeepsWorkAndSendsNothingElsewhere) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  uint64_t b = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  auto m1 = Connect(MakeHello("m1", {1}, 4));
  ASSERT_EQ(m1.channel->items().size(), 2u);
  h.Gone(m1);
  auto m2 = Connect(MakeHello("m2", {1}, 4));
  h.Advance(20 * kSecond);  // inside the 30 s grace
  EXPECT_TRUE(m2.channel->items().empty());

  v1::Hello again = MakeHello("m1", {1}, 4);
  auto* in = again.add_in_hand();
  in->set_id(a);
  in->set_epoch(1);
  in = again.add_in_hand();
  in->set_id(999);  // not assigned to it: dropped
  in->set_epoch(1);
  auto m1b = Connect(again);
  auto welcome = m1b.channel->messages().at(0);
  ASSERT_TRUE(welcome.has_welcome());
  ASSERT_EQ(welcome.welcome().keep_size(), 1);
  EXPECT_EQ(welcome.welcome().keep(0).id(), a);
  ASSERT_EQ(welcome.welcome().drop_size(), 1);
  EXPECT_EQ(welcome.welcome().drop(0).id(), 999u);
  // b was not in hand: requeued, and since both movers are free it goes to one of them with a
  // new epoch.
  h.Advance(60 * kSecond);  // past the old grace: nothing more happens to a
  EXPECT_EQ(StateOf(a), RequestState::kAssigned);
  EXPECT_EQ(h.Row(a)->mover, "m1");
  EXPECT_EQ(h.Row(a)->epoch, 1u);
  EXPECT_EQ(h.Row(b)->epoch, 2u);
  for (const auto& it : m2.channel->items()) EXPECT_NE(it.id(), a);
  h.Report(m1b, ResultMsg(a, 1));
  EXPECT_EQ(StateOf(a), RequestState::kSucceeded);
}

TEST_F(CoordinatorTest, AfterGraceWorkGoesToAnotherMover) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m1 = Connect(MakeHello("m1", {1}, 4));
  h.Gone(m1);
  auto m2 = Connect(MakeHello("m2", {1}, 4));
  h.Advance(29 * kSecond);
  EXPECT_TRUE(m2.channel->items().empty());
  h.Advance(2 * kSecond);
  auto items = m2.channel->items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].id(), a);
  EXPECT_EQ(items[0].epoch(), 2u);
  // m1 comes back late with its old epoch: told to drop it; its result is ignored.
  v1::Hello again = MakeHello("m1", {1}, 4);
  again.add_in_hand()->set_id(a);
  again.mutable_in_hand(0)->set_epoch(1);
  auto m1b = Connect(again);
  EXPECT_EQ(m1b.channel->messages().at(0).welcome().drop_size(), 1);
  h.Report(m1b, ResultMsg(a, 1));
  EXPECT_EQ(StateOf(a), RequestState::kAssigned);
  h.Report(m2, ResultMsg(a, 2));
  EXPECT_EQ(StateOf(a), RequestState::kSucceeded);
}

TEST_F(CoordinatorTest, SecondLiveSessionWithTheSameIdIsRefused) {
  auto m1 = Connect(MakeHello("m1", {1}, 4));
  auto dup = h.Hello(MakeHello("m1", {1}, 4));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_THAT(dup.status().message(), HasSubstr("m1"));
}

TEST_F(CoordinatorTest, RestartRebuildsQueuedAndAssigned) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(h.SubmitOne(Spec(v1::ARCHIVE, 1 + i)));
  auto m = Connect(MakeHello("m1", {1}, 1));
  ASSERT_EQ(StateOf(ids[0]), RequestState::kAssigned);
  h.Crash();
  h.Start(Options());
  auto status = h.StatusOf();
  EXPECT_EQ(status.counters(2).queued(), 2u);
  EXPECT_EQ(status.counters(2).assigned(), 1u);
  ASSERT_EQ(status.movers_size(), 1);
  EXPECT_FALSE(status.movers(0).connected());

  v1::Hello again = MakeHello("m1", {1}, 1);
  again.add_in_hand()->set_id(ids[0]);
  again.mutable_in_hand(0)->set_epoch(1);
  auto mb = Connect(again);
  EXPECT_EQ(mb.channel->messages().at(0).welcome().keep_size(), 1);
  EXPECT_TRUE(mb.channel->items().empty()) << "capacity 1 is taken by the kept action";
  h.Report(mb, ResultMsg(ids[0], 1));
  h.Report(mb, ResultMsg(ids[1], 1));
  h.Report(mb, ResultMsg(ids[2], 1));
  for (uint64_t id : ids) EXPECT_EQ(StateOf(id), RequestState::kSucceeded);
}

TEST_F(CoordinatorTest, AssignedAtCrashAndNeverInHandIsRequeuedOnHello) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 1));
  h.Crash();
  h.Start(Options());
  // The mover restarted too and holds nothing: the action runs again, with a new epoch.
  auto mb = Connect(MakeHello("m1", {1}, 1));
  auto items = mb.channel->items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].id(), a);
  EXPECT_EQ(items[0].epoch(), 2u);
}

TEST_F(CoordinatorTest, MoverNotBackAfterRestartGraceIsRequeued) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  Connect(MakeHello("m1", {1}, 1));
  h.Crash();
  h.Start(Options());
  auto m2 = Connect(MakeHello("m2", {1}, 1));
  EXPECT_TRUE(m2.channel->items().empty());
  h.Advance(31 * kSecond);
  ASSERT_EQ(m2.channel->items().size(), 1u);
  EXPECT_EQ(m2.channel->items()[0].id(), a);
}

TEST_F(CoordinatorTest, LockStopsDispatchUnlockResumesAndSurvivesRestart) {
  auto lock = h.Lock(1);
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(lock->lock(), 1u);
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  EXPECT_TRUE(m.channel->items().empty());
  auto status = h.StatusOf(true);
  EXPECT_EQ(status.lock(), 1u);
  ASSERT_GE(status.requests_size(), 1);
  EXPECT_THAT(status.requests(0).waiting_reason(), HasSubstr("locked"));

  h.Stop();
  h.Start(Options());
  EXPECT_EQ(h.StatusOf().lock(), 1u);
  m = Connect(MakeHello("m1", {1}, 4));
  EXPECT_TRUE(m.channel->items().empty());
  ASSERT_TRUE(h.Lock(0).ok());
  ASSERT_EQ(m.channel->items().size(), 1u);
  EXPECT_EQ(m.channel->items()[0].id(), a);
  EXPECT_EQ(h.journal().Meta("lock"), "0");
  EXPECT_EQ(h.Lock(3).status().code(), Code::kInvalidArgument);
}

TEST_F(CoordinatorTest, LockTwoQuitsOnceNothingIsAssigned) {
  std::atomic<int> quits{0};
  h.Run([&] { h.coord()->SetQuitHandler([&] { ++quits; }); });
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  h.SubmitOne(Spec(v1::ARCHIVE, 2));
  auto m = Connect(MakeHello("m1", {1}, 1));
  ASSERT_TRUE(h.Lock(2).ok());
  EXPECT_EQ(quits.load(), 0) << "one action still runs";
  h.Report(m, ResultMsg(a, 1));
  EXPECT_EQ(quits.load(), 1);
  EXPECT_EQ(m.channel->items().size(), 1u) << "locked: the queued one is not dispatched";
  // After a restart lock 2 is kept as a lock (1): it does not quit again.
  h.Stop();
  h.Start(Options());
  EXPECT_EQ(h.StatusOf().lock(), 1u);
}

TEST_F(CoordinatorTest, JournalFailureRefusesSubmitsKeepsStateAndRecovers) {
  uint64_t kept = h.SubmitOne(Spec(v1::ARCHIVE, 1, 9));
  h.sink().FailNext(1, Status(Code::kIo, "disk I/O error on journal.db", EIO));
  v1::SubmitRequest req;
  *req.add_requests() = Spec(v1::ARCHIVE, 2);
  auto failed = h.Submit(req);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kUnavailable);
  EXPECT_THAT(failed.status().message(), HasSubstr("journal write failed"));
  EXPECT_THAT(failed.status().message(), HasSubstr("disk I/O error"));
  EXPECT_THAT(failed.status().message(), HasSubstr("not accepted"));
  EXPECT_EQ(h.Get<size_t>([&] { return h.coord()->request_count(); }), 1u)
      << "the failed request is forgotten";
  v1::StateRequest sreq;
  sreq.add_files()->set_fsid("fs1");
  sreq.mutable_files(0)->set_seq(2);
  sreq.mutable_files(0)->set_oid(1);
  EXPECT_EQ(h.Get<v1::StateReply>([&] { return h.coord()->State(sreq); }).requests_size(), 0);

  // Refused at once while the journal is failing, with the same reason.
  h.sink().FailNext(100, Status(Code::kIo, "disk I/O error on journal.db", EIO));
  auto refused = h.Submit(req);
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  auto warnings = h.StatusOf().warnings();
  EXPECT_THAT(std::vector<std::string>(warnings.begin(), warnings.end()),
              ::testing::Contains(HasSubstr("journal writes are failing")));
  EXPECT_EQ(StateOf(kept), RequestState::kQueued);

  h.sink().FailNext(0, Status());
  h.Advance(2 * kSecond);  // the retry timer probes the journal
  EXPECT_TRUE(h.Get<bool>([&] { return h.coord()->journal_ok(); }));
  auto accepted = h.Submit(req);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_TRUE(h.journal().Row(accepted->accepted(0).id()).has_value());
  EXPECT_TRUE(h.journal().Row(kept).has_value());
}

TEST_F(CoordinatorTest, FailedResultWriteIsRetriedAndFailedAssignmentIsNotSent) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  // The assignment's append fails, and so does the append taking it back.
  h.sink().FailNext(2, Status(Code::kIo, "disk full", ENOSPC));
  auto m = Connect(MakeHello("m1", {1}, 4));
  EXPECT_TRUE(m.channel->items().empty()) << "the assignment was not durable";
  EXPECT_EQ(StateOf(a), RequestState::kQueued);
  h.Advance(2 * kSecond);  // retry succeeds, dispatch resumes
  ASSERT_EQ(m.channel->items().size(), 1u);
  uint64_t epoch = m.channel->items()[0].epoch();
  EXPECT_EQ(h.journal().Row(a)->state, RequestState::kAssigned);

  h.sink().FailNext(1, Status(Code::kIo, "disk full", ENOSPC));
  h.Report(m, ResultMsg(a, epoch));
  EXPECT_EQ(StateOf(a), RequestState::kSucceeded);
  EXPECT_EQ(h.journal().Row(a)->state, RequestState::kAssigned);
  h.Advance(2 * kSecond);
  EXPECT_EQ(h.journal().Row(a)->state, RequestState::kSucceeded);
}

TEST_F(CoordinatorTest, FailedSubmitAssignedInTheSameTurnIsNeverSent) {
  auto m = Connect(MakeHello("m1", {1}, 1));
  h.sink().FailNext(1, Status(Code::kIo, "disk I/O error", EIO));
  v1::SubmitRequest req;
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  auto failed = h.Submit(req);
  ASSERT_EQ(failed.status().code(), Code::kUnavailable);
  EXPECT_TRUE(m.channel->items().empty());
  EXPECT_EQ(h.StatusOf().movers(0).running(), 0u) << "its capacity was given back";
  h.Advance(2 * kSecond);
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  ASSERT_EQ(m.channel->items().size(), 1u) << "capacity 1 is free again";
  EXPECT_EQ(m.channel->items()[0].id(), id);
  EXPECT_EQ(h.journal().Row(id)->state, RequestState::kAssigned);
}

TEST_F(CoordinatorTest, ProgressIsStreamedToWaitersWithoutJournaling) {
  uint64_t id = h.SubmitOne(Spec(v1::RESTORE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  auto waiter = std::make_shared<testing::RecordingWaitChannel>();
  ASSERT_TRUE(
      h.Get<Result<Coordinator::WatchId>>([&] { return h.coord()->Watch({id}, waiter); }).ok());
  uint64_t appends = h.sink().appends();
  v1::MoverMessage msg;
  auto* p = msg.mutable_progress();
  p->set_id(id);
  p->set_epoch(1);
  p->set_bytes_done(512);
  p->set_bytes_total(1024);
  h.Report(m, msg);
  auto updates = waiter->updates();
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.back().requests(0).bytes_done(), 512u);
  EXPECT_EQ(updates.back().requests(0).bytes_total(), 1024u);
  EXPECT_EQ(h.sink().appends(), appends) << "progress is not journaled";
}

TEST_F(CoordinatorTest, AssignmentDurableWhileMoverAwayIsSentOnReconnectWithSameEpoch) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  h.sink().Hold(true);
  auto m = Connect(MakeHello("m1", {1}, 4));  // assignment journaled, held
  h.Gone(m);
  h.sink().Hold(false);
  h.sink().Release();
  h.Drain();
  EXPECT_TRUE(m.channel->items().empty()) << "the mover was gone when the append completed";
  auto m2 = Connect(MakeHello("m1", {1}, 4));  // holds nothing
  auto items = m2.channel->items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].id(), id);
  EXPECT_EQ(items[0].epoch(), 1u) << "never sent, so not requeued: same assignment";
}

TEST_F(CoordinatorTest, CancelingWorkHeldByADepartedMoverEndsIt) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  h.Gone(m);
  v1::CancelRequest req;
  req.add_ids(id);
  auto reply = h.Cancel(req);
  ASSERT_TRUE(reply.ok());
  EXPECT_THAT(reply->canceled(), ::testing::ElementsAre(id));
  EXPECT_EQ(StateOf(id), RequestState::kCanceled);
  EXPECT_THAT(h.Row(id)->error, HasSubstr("m1 was away"));
  // It comes back with the action in hand: told to drop it, and nothing is run again.
  v1::Hello hello = MakeHello("m1", {1}, 4);
  auto* ih = hello.add_in_hand();
  ih->set_id(id);
  ih->set_epoch(1);
  auto m2 = Connect(hello);
  const auto welcome = m2.channel->messages().front().welcome();
  ASSERT_EQ(welcome.drop_size(), 1);
  EXPECT_EQ(welcome.drop(0).id(), id);
  EXPECT_TRUE(m2.channel->items().empty()) << "a canceled request is not run again";
}

// Lustre's semantics: the CANCEL is itself a request, logged, ending succeeded with its
// target; a cancel for a file with no request records nothing.
TEST_F(CoordinatorTest, ACancelIsRecordedAndSucceedsWhenItsTargetEndsCanceled) {
  uint64_t queued = h.SubmitOne(Spec(v1::ARCHIVE, 1, 5));  // no mover serves 5
  uint64_t running = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  auto m = Connect(MakeHello("m1", {1}, 4));
  v1::CancelRequest req;
  req.add_ids(queued);
  req.add_ids(running);
  auto reply = h.Cancel(req);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->cancel_requests_size(), 2);
  const uint64_t cancel_queued = reply->cancel_requests(0);
  const uint64_t cancel_running = reply->cancel_requests(1);

  auto cq = h.Row(cancel_queued);
  ASSERT_TRUE(cq.has_value());
  EXPECT_EQ(cq->action, hsm::Action::kCancel);
  EXPECT_EQ(cq->state, RequestState::kSucceeded);
  EXPECT_EQ(cq->file, h.Row(queued)->file);
  auto cr = h.Row(cancel_running);
  ASSERT_TRUE(cr.has_value());
  EXPECT_EQ(cr->state, RequestState::kAssigned) << "pending until its target ends";
  EXPECT_EQ(h.journal().Row(cancel_running)->state, RequestState::kAssigned);

  h.Report(m, ResultMsg(running, 1, ECANCELED));
  EXPECT_EQ(StateOf(running), RequestState::kCanceled);
  EXPECT_EQ(StateOf(cancel_running), RequestState::kSucceeded);
  EXPECT_EQ(h.journal().Row(cancel_running)->state, RequestState::kSucceeded);

  // Status counts CANCEL requests in a row of their own.
  auto status = h.StatusOf();
  bool found = false;
  for (const auto& c : status.counters()) {
    if (c.action() != v1::CANCEL) continue;
    found = true;
    EXPECT_EQ(c.succeeded(), 2u);
  }
  EXPECT_TRUE(found);

  // Nothing pending any more: a cancel of these files records nothing.
  uint64_t before = h.sink().appends();
  auto again = h.Cancel(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->cancel_requests_size(), 0);
  EXPECT_EQ(h.sink().appends(), before);
}

TEST_F(CoordinatorTest, ACancelThatArrivesTooLateEndsFailedAndSaysSo) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  v1::CancelRequest req;
  req.add_ids(id);
  auto reply = h.Cancel(req);
  ASSERT_TRUE(reply.ok());
  ASSERT_EQ(reply->cancel_requests_size(), 1);
  h.Report(m, ResultMsg(id, 1));  // the mover finished first
  EXPECT_EQ(StateOf(id), RequestState::kSucceeded);
  auto c = h.Row(reply->cancel_requests(0));
  EXPECT_EQ(c->state, RequestState::kFailed);
  EXPECT_THAT(c->error, HasSubstr("ended succeeded before the cancel reached it"));
}

TEST_F(CoordinatorTest, AForwardedCancelSurvivesARestart) {
  uint64_t id = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  v1::CancelRequest req;
  req.add_ids(id);
  auto reply = h.Cancel(req);
  ASSERT_TRUE(reply.ok());
  const uint64_t cancel = reply->cancel_requests(0);
  h.Stop();  // the mover's cancel was lost with the old session
  h.Start(Options());
  v1::Hello hello = MakeHello("m1", {1}, 4);
  auto* ih = hello.add_in_hand();
  ih->set_id(id);
  ih->set_epoch(1);
  auto m2 = Connect(hello);
  ASSERT_EQ(m2.channel->cancels().size(), 1u) << "the cancel is sent again";
  EXPECT_EQ(m2.channel->cancels()[0].id(), id);
  h.Report(m2, ResultMsg(id, 1, ECANCELED));
  EXPECT_EQ(StateOf(id), RequestState::kCanceled);
  EXPECT_EQ(StateOf(cancel), RequestState::kSucceeded);
}

TEST_F(CoordinatorTest, ResultsAreAcknowledgedOnlyOnceDurable) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  h.sink().Hold(true);
  v1::MoverMessage msg;
  auto* res = msg.mutable_reports()->add_results();
  res->set_id(a);
  res->set_epoch(1);
  auto* stale = msg.mutable_reports()->add_results();  // not assigned at that epoch
  stale->set_id(a);
  stale->set_epoch(7);
  h.Report(m, msg);
  EXPECT_TRUE(m.channel->acks().empty()) << "acknowledged before its row was durable";
  h.sink().Hold(false);
  h.sink().Release();
  h.Drain();
  const auto acks = m.channel->acks();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].id(), a);
  EXPECT_EQ(acks[0].epoch(), 1u);
  EXPECT_EQ(acks[1].epoch(), 7u) << "an ignored result is acknowledged too";
  EXPECT_EQ(StateOf(a), RequestState::kSucceeded);
}

// The coordinator dies after the mover wrote a result but before the result was durable: the
// mover, never acknowledged, lists the action in its next Hello and sends the result again.
// The action is kept, not requeued, and never given to another mover.
TEST_F(CoordinatorTest, AResultLostInACrashIsReportedAgainNotRunTwice) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  h.sink().Hold(true);
  h.Report(m, ResultMsg(a, 1));
  EXPECT_TRUE(m.channel->acks().empty());
  h.Crash();
  h.Start(Options());
  EXPECT_EQ(StateOf(a), RequestState::kAssigned);
  auto other = Connect(MakeHello("m2", {1}, 4));
  v1::Hello hello = MakeHello("m1", {1}, 4);
  auto* ih = hello.add_in_hand();
  ih->set_id(a);
  ih->set_epoch(1);
  auto m2 = Connect(hello);
  const auto welcome = m2.channel->messages().front().welcome();
  ASSERT_EQ(welcome.keep_size(), 1);
  h.Report(m2, ResultMsg(a, 1));
  EXPECT_EQ(StateOf(a), RequestState::kSucceeded);
  EXPECT_EQ(h.Row(a)->attempts, 1u) << "ran once";
  ASSERT_EQ(m2.channel->acks().size(), 1u);
  h.Advance(120 * kSecond);
  EXPECT_TRUE(other.channel->items().empty()) << "the action was given to another mover";
  EXPECT_TRUE(m2.channel->items().empty());
}

TEST_F(CoordinatorTest, HeartbeatsFindAMoverThatStopsAnsweringAndItsWorkIsTakenBack) {
  h.Stop();
  CoordinatorOptions o = Options();
  o.heartbeat_interval_us = 1 * kSecond;
  o.heartbeat_timeout_us = 3 * kSecond;
  o.active_request_timeout_us = 20 * kSecond;
  h.Start(o);
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto hung = Connect(MakeHello("hung", {1}, 1));
  ASSERT_EQ(hung.channel->items().size(), 1u);
  auto live = Connect(MakeHello("live", {1}, 4));
  v1::MoverMessage pong;
  pong.mutable_pong();
  for (int i = 0; i < 5; ++i) {
    h.Advance(1 * kSecond);
    h.Report(live, pong);
  }
  ASSERT_FALSE(hung.channel->pings().empty()) << "no heartbeat was sent";
  auto status = h.StatusOf();
  for (const auto& mi : status.movers()) {
    if (mi.id() == "hung") {
      EXPECT_GE(mi.silent_us(), 3 * kSecond);
    }
    if (mi.id() == "live") {
      EXPECT_EQ(mi.silent_us(), 0);
    }
  }
  bool warned = false;
  for (const auto& w : status.warnings()) warned |= w.find("hung has not answered") != std::string::npos;
  EXPECT_TRUE(warned);
  // The silent mover has a free slot again only on paper: new work goes to the live one.
  h.Lock(0);
  uint64_t b = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  ASSERT_EQ(live.channel->items().size(), 1u);
  EXPECT_EQ(live.channel->items()[0].id(), b);
  // Its action is taken back after the active request timeout and goes to the live mover.
  for (int i = 0; i < 20; ++i) {
    h.Advance(1 * kSecond);
    h.Report(live, pong);
  }
  EXPECT_EQ(h.Row(a)->mover, "live");
  ASSERT_GE(hung.channel->cancels().size(), 1u);
  EXPECT_EQ(hung.channel->cancels()[0].id(), a);
  // It answers again: healthy, and given work.
  h.Report(hung, pong);
  status = h.StatusOf();
  for (const auto& mi : status.movers()) EXPECT_EQ(mi.silent_us(), 0) << mi.id();
  uint64_t c = h.SubmitOne(Spec(v1::ARCHIVE, 3));
  (void)c;
  EXPECT_EQ(StateOf(c), RequestState::kAssigned);
}

TEST_F(CoordinatorTest, ADrainedMoverIsGivenNothingNewAcrossARestartUntilUndone) {
  auto m1 = Connect(MakeHello("m1", {1}, 4));
  EXPECT_EQ(h.DrainMover("nobody").status().code(), Code::kNotFound);
  uint64_t held = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  ASSERT_EQ(m1.channel->items().size(), 1u);
  auto drained = h.DrainMover("m1");
  ASSERT_TRUE(drained.ok()) << drained.status().ToString();
  EXPECT_TRUE(drained->mover().draining());
  EXPECT_EQ(drained->mover().running(), 1u);
  EXPECT_EQ(h.journal().Meta("drain/m1"), "1");
  uint64_t next = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  EXPECT_EQ(m1.channel->items().size(), 1u) << "a drained mover got new work";
  h.Report(m1, ResultMsg(held, 1));  // it finishes what it holds
  EXPECT_EQ(StateOf(held), RequestState::kSucceeded);
  EXPECT_EQ(StateOf(next), RequestState::kQueued);
  bool warned = false;
  const auto drained_status = h.StatusOf();
  for (const auto& w : drained_status.warnings()) warned |= w.find("m1 is drained") != std::string::npos;
  EXPECT_TRUE(warned);

  h.Stop();
  h.Start(Options());
  m1 = Connect(MakeHello("m1", {1}, 4));
  EXPECT_TRUE(m1.channel->items().empty()) << "the drain did not survive the restart";
  auto m2 = Connect(MakeHello("m2", {1}, 4));
  ASSERT_EQ(m2.channel->items().size(), 1u);
  EXPECT_EQ(m2.channel->items()[0].id(), next);

  ASSERT_TRUE(h.DrainMover("m1", /*undo=*/true).ok());
  EXPECT_EQ(h.journal().Meta("drain/m1"), "0");
  h.SubmitOne(Spec(v1::ARCHIVE, 3));
  h.SubmitOne(Spec(v1::ARCHIVE, 4));
  EXPECT_GE(m1.channel->items().size(), 1u) << "undrained, it gets work again";
}

TEST_F(CoordinatorTest, StatusListsAssignedThenQueuedWithinTheLimit) {
  for (int i = 0; i < 5; ++i) h.SubmitOne(Spec(v1::ARCHIVE, 1 + i));
  Connect(MakeHello("m1", {1}, 2));
  v1::StatusRequest req;
  req.set_include_requests(true);
  req.set_limit(3);
  auto status = h.Get<v1::StatusReply>([&] { return h.coord()->GetStatus(req); });
  ASSERT_EQ(status.requests_size(), 3);
  EXPECT_EQ(status.requests(0).state(), v1::ASSIGNED);
  EXPECT_EQ(status.requests(1).state(), v1::ASSIGNED);
  EXPECT_EQ(status.requests(2).state(), v1::QUEUED);
  EXPECT_THAT(status.requests(2).waiting_reason(), HasSubstr("ARCHIVE capacity"));
  EXPECT_EQ(status.movers(0).running(), 2u);
}

// A drain change whose journal write failed is rewritten, with the current value, once the
// journal works again: an undrain is not lost to a failed append.
TEST_F(CoordinatorTest, ADrainChangeWhoseWriteFailedIsRewrittenOnRetry) {
  Connect(MakeHello("m1", {1}, 4));
  ASSERT_TRUE(h.DrainMover("m1").ok());
  ASSERT_EQ(h.journal().Meta("drain/m1"), "1");
  h.sink().FailNext(1, Status(Code::kIo, "disk I/O error"));
  EXPECT_FALSE(h.DrainMover("m1", /*undo=*/true).ok());
  EXPECT_EQ(h.journal().Meta("drain/m1"), "1");
  h.Advance(2 * kSecond);  // the journal retry
  EXPECT_EQ(h.journal().Meta("drain/m1"), "0");
}

TEST_F(CoordinatorTest, AReplayedKeyIsAnsweredAfterItsRequestsArePurged) {
  v1::SubmitRequest req;
  req.set_idempotency_key("k-purged");
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  auto first = h.Submit(req);
  ASSERT_TRUE(first.ok());
  const uint64_t id = first->accepted(0).id();
  auto m = Connect(MakeHello("m1", {1}, 4));
  h.Report(m, ResultMsg(id, 1));
  h.Advance(11 * kSecond);  // past final_grace: purged
  ASSERT_FALSE(h.Row(id).has_value());
  auto again = h.Submit(req);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->accepted(0).id(), id);
}

TEST_F(CoordinatorTest, IdempotencyKeysExpire) {
  h.Stop();
  CoordinatorOptions o = Options();
  o.idempotency_ttl_us = 100 * kSecond;
  h.Start(o);
  v1::SubmitRequest req;
  req.set_idempotency_key("k");
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  auto first = h.Submit(req);
  ASSERT_TRUE(first.ok());
  h.Advance(101 * kSecond);
  auto contents = h.journal().Load();
  EXPECT_EQ(contents->idempotency.count("k"), 0u);
  *req.mutable_requests(0) = Spec(v1::ARCHIVE, 2);
  auto second = h.Submit(req);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->accepted(0).id(), first->accepted(0).id()) << "an expired key is new again";
}

TEST_F(CoordinatorTest, FinalRecordsArePurgedAfterGrace) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  auto m = Connect(MakeHello("m1", {1}, 4));
  h.Report(m, ResultMsg(a, 1));
  ASSERT_EQ(StateOf(a), RequestState::kSucceeded);
  h.Advance(9 * kSecond);
  EXPECT_TRUE(h.Row(a).has_value());
  EXPECT_TRUE(h.journal().Row(a).has_value());
  h.Advance(2 * kSecond);
  EXPECT_FALSE(h.Row(a).has_value());
  EXPECT_FALSE(h.journal().Row(a).has_value());
  auto status = h.StatusOf();
  EXPECT_EQ(status.counters(2).succeeded(), 0u);
}

TEST_F(CoordinatorTest, WaitStreamsDurableChangesUntilFinal) {
  uint64_t a = h.SubmitOne(Spec(v1::ARCHIVE, 1));
  uint64_t b = h.SubmitOne(Spec(v1::ARCHIVE, 2));
  auto waiter = std::make_shared<testing::RecordingWaitChannel>();
  auto wid = h.Get<Result<Coordinator::WatchId>>([&] { return h.coord()->Watch({a, b}, waiter); });
  ASSERT_TRUE(wid.ok());
  ASSERT_EQ(waiter->updates().size(), 1u);
  EXPECT_EQ(waiter->updates()[0].requests_size(), 2);
  EXPECT_EQ(waiter->updates()[0].requests(0).state(), v1::QUEUED);

  auto m = Connect(MakeHello("m1", {1}, 4));
  h.sink().Hold(true);
  h.Report(m, ResultMsg(a, 1));
  size_t before = waiter->updates().size();
  h.sink().Release();
  h.sink().Hold(false);
  h.Drain();
  auto updates = waiter->updates();
  ASSERT_GT(updates.size(), before) << "the change is reported once durable";
  EXPECT_EQ(updates.back().requests(0).id(), a);
  EXPECT_EQ(updates.back().requests(0).state(), v1::SUCCEEDED);
  EXPECT_FALSE(waiter->finished());
  h.Report(m, ResultMsg(b, 1, EPERM));
  EXPECT_TRUE(waiter->finished());
  EXPECT_TRUE(waiter->status().ok());

  auto missing =
      h.Get<Result<Coordinator::WatchId>>([&] { return h.coord()->Watch({424242}, waiter); });
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace tierflow::coordinator
