// The coordinator over the real store: SqliteJournal behind the group-committing JournalWriter,
// with FaultyJournal to fail commits. Checks what a crash (no shutdown, nothing flushed beyond
// what was acknowledged) and a failing disk do to acknowledged requests.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "coordinator/testing/fakes.h"
#include "coordinator/testing/harness.h"
#include "coordinator/writer_sink.h"
#include "store/faulty_journal.h"
#include "store/journal_writer.h"
#include "store/sqlite/sqlite_journal.h"

namespace tierflow::coordinator {
namespace {

using store::RequestState;
using testing::MakeHello;
using testing::RecordingMoverChannel;
using testing::Spec;

// One coordinator "process": journal file, store thread, loop.
class Process {
 public:
  Process(const std::string& path, ManualClock* clock, bool faulty = false) {
    auto j = store::SqliteJournal::Open(path);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    sqlite_ = std::move(j).value();
    faulty_ = std::make_unique<store::FaultyJournal>(sqlite_.get());
    store::Journal* journal = faulty ? static_cast<store::Journal*>(faulty_.get()) : sqlite_.get();
    auto contents = journal->Load();
    EXPECT_TRUE(contents.ok());
    writer_ = std::make_unique<store::JournalWriter>(journal);
    sink_ = std::make_unique<WriterSink>(writer_.get());
    loop_ = std::make_unique<EventLoop>(clock);
    CoordinatorOptions o;
    o.clock = clock;
    o.journal_retry_us = 1'000'000;
    coord_ = std::make_unique<Coordinator>(o, loop_.get(), sink_.get());
    Status st = coord_->Recover(*contents);
    EXPECT_TRUE(st.ok()) << st.ToString();
    loop_->Start();
  }
  // kill -9: the loop and the store thread stop; nothing more is written.
  ~Process() {
    loop_->Stop();
    writer_.reset();
    coord_.reset();
    loop_.reset();
  }

  void Run(std::function<void()> fn) {
    std::promise<void> done;
    loop_->Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  void Drain() {
    for (int i = 0; i < 1000; ++i) {
      writer_->Flush();
      std::promise<void> done;
      loop_->Post([&] { loop_->Post([&] { done.set_value(); }); });
      done.get_future().wait();
      size_t inflight = 0;
      Run([&] { inflight = coord_->inflight_appends(); });
      if (inflight == 0) return;
    }
    ADD_FAILURE() << "did not settle";
  }
  Result<v1::SubmitReply> Submit(const v1::SubmitRequest& req) {
    std::optional<Result<v1::SubmitReply>> out;
    Run([&] { coord_->Submit(req, [&](Result<v1::SubmitReply> r) { out.emplace(r); }); });
    Drain();
    if (!out) return Status(Code::kInternal, "not answered");
    return *out;
  }
  Coordinator::SessionId Hello(const v1::Hello& h, std::shared_ptr<RecordingMoverChannel> ch) {
    Coordinator::SessionId sid = 0;
    Run([&] {
      auto r = coord_->MoverHello(h, ch);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) sid = *r;
    });
    Drain();
    return sid;
  }
  void Report(Coordinator::SessionId sid, const v1::MoverMessage& m) {
    Run([&] { coord_->MoverReport(sid, m); });
    Drain();
  }
  std::optional<store::RequestRow> Row(uint64_t id) {
    std::optional<store::RequestRow> out;
    Run([&] {
      if (const auto* r = coord_->FindRow(id)) out = *r;
    });
    return out;
  }
  EventLoop* loop() { return loop_.get(); }
  store::FaultyJournal* faulty() { return faulty_.get(); }

 private:
  std::unique_ptr<store::SqliteJournal> sqlite_;
  std::unique_ptr<store::FaultyJournal> faulty_;
  std::unique_ptr<store::JournalWriter> writer_;
  std::unique_ptr<WriterSink> sink_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Coordinator> coord_;
};

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tf_coord_durability_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/journal.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
  ManualClock clock_;
};

v1::MoverMessage Results(const std::vector<v1::ActionItem>& items) {
  v1::MoverMessage m;
  for (const auto& it : items) {
    auto* r = m.mutable_reports()->add_results();
    r->set_id(it.id());
    r->set_epoch(it.epoch());
  }
  return m;
}

TEST_F(DurabilityTest, AcknowledgedRequestsSurviveACrashAndRunOnce) {
  std::vector<uint64_t> acked;
  std::vector<v1::ActionItem> held;  // in the mover's hands at the crash
  std::set<uint64_t> finished;       // reported done before the crash
  {
    Process p(path_, &clock_);
    for (int b = 0; b < 4; ++b) {
      v1::SubmitRequest req;
      for (int i = 0; i < 50; ++i) *req.add_requests() = Spec(v1::ARCHIVE, 1 + b * 50 + i);
      auto r = p.Submit(req);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      for (const auto& a : r->accepted()) acked.push_back(a.id());
    }
    auto ch = std::make_shared<RecordingMoverChannel>();
    auto sid = p.Hello(MakeHello("m1", {1}, 50), ch);
    auto items = ch->items();
    ASSERT_EQ(items.size(), 50u);
    std::vector<v1::ActionItem> done(items.begin(), items.begin() + 20);
    held.assign(items.begin() + 20, items.end());
    p.Report(sid, Results(done));
    for (const auto& it : done) finished.insert(it.id());
    // The next 20 have been assigned and sent; the crash comes now.
    for (const auto& it : ch->items()) {
      if (!finished.count(it.id()) &&
          std::none_of(held.begin(), held.end(), [&](auto& h) { return h.id() == it.id(); })) {
        held.push_back(it);
      }
    }
  }
  Process p(path_, &clock_);
  for (uint64_t id : acked)
    ASSERT_TRUE(p.Row(id).has_value()) << "acknowledged request " << id << " lost";
  for (uint64_t id : finished) EXPECT_EQ(p.Row(id)->state, RequestState::kSucceeded);

  v1::Hello again = MakeHello("m1", {1}, 50);
  for (const auto& it : held) {
    auto* ih = again.add_in_hand();
    ih->set_id(it.id());
    ih->set_epoch(it.epoch());
  }
  auto ch = std::make_shared<RecordingMoverChannel>();
  auto sid = p.Hello(again, ch);
  ASSERT_EQ(ch->messages().at(0).welcome().keep_size(), static_cast<int>(held.size()));
  std::map<uint64_t, int> runs;
  for (const auto& it : held) runs[it.id()]++;
  for (uint64_t id : finished) runs[id]++;
  p.Report(sid, Results(held));
  for (int round = 0; round < 20; ++round) {
    std::vector<v1::ActionItem> fresh;
    for (const auto& it : ch->items()) {
      if (!runs.count(it.id()) || p.Row(it.id())->state == RequestState::kAssigned)
        fresh.push_back(it);
    }
    if (fresh.empty()) break;
    for (const auto& it : fresh) runs[it.id()]++;
    p.Report(sid, Results(fresh));
  }
  for (uint64_t id : acked) {
    EXPECT_EQ(p.Row(id)->state, RequestState::kSucceeded) << id;
    EXPECT_EQ(runs[id], 1) << "request " << id << " ran " << runs[id] << " times";
  }
}

TEST_F(DurabilityTest, FailingDiskRefusesSubmitsUntilItRecovers) {
  Process p(path_, &clock_, /*faulty=*/true);
  p.faulty()->FailAllCommits(Status(Code::kIo, "disk I/O error writing journal.db", EIO));
  v1::SubmitRequest req;
  *req.add_requests() = Spec(v1::ARCHIVE, 1);
  auto r = p.Submit(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("journal write failed"), std::string::npos);
  EXPECT_NE(r.status().message().find("disk I/O error"), std::string::npos);
  EXPECT_EQ(p.Submit(req).status().code(), Code::kUnavailable);

  p.faulty()->ClearFailures();
  clock_.Advance(2'000'000);
  p.loop()->Poke();
  p.Drain();
  auto ok = p.Submit(req);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  uint64_t id = ok->accepted(0).id();
  EXPECT_TRUE(p.Row(id).has_value());
}

}  // namespace
}  // namespace tierflow::coordinator
