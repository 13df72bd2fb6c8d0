// The coordinator over the real store: SqliteJournal behind the group-committing JournalWriter,
// with FaultyJournal to fail commits. Checks what a crash (no shutdown, nothing flushed beyond
// what was acknowledged) and a failing disk do to acknowledged requests.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <map>
#include <cerrno>
#include <cstring>
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
  v1::StatusReply GetStatus() {
    v1::StatusReply reply;
    Run([&] { reply = coord_->GetStatus(v1::StatusRequest()); });
    return reply;
  }
  bool JournalOk() {
    bool ok = false;
    Run([&] { ok = coord_->journal_ok(); });
    return ok;
  }
  size_t RequestCount() {
    size_t n = 0;
    Run([&] { n = coord_->request_count(); });
    return n;
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


// A failing disk (EIO), a full one (ENOSPC) and a read-only one (EROFS), injected through the store's interface with the
// errors the SQLite journal returns for them (sqlite_journal.cc names the file and the remedy).
struct DiskFault {
  const char* name;
  Code code;
  int sys_errno;
  const char* what;    // SQLite's words for it
  const char* advice;  // the journal's remedy
};

class DiskFaultTest : public DurabilityTest, public ::testing::WithParamInterface<DiskFault> {
 protected:
  Status Fault() const {
    const DiskFault& f = GetParam();
    return Status(f.code,
                  "journal " + path_ + ": committing 3 records: " + f.what + " (" +
                      std::strerror(f.sys_errno) + "); " + f.advice,
                  f.sys_errno);
  }

  // 40 acknowledged requests; a mover m1 took 10 and finished 4 of them, so the journal holds
  // queued, assigned and succeeded rows. Returns the items m1 still holds.
  std::vector<v1::ActionItem> Populate(Process& p) {
    for (int b = 0; b < 2; ++b) {
      v1::SubmitRequest req;
      for (int i = 0; i < 20; ++i) *req.add_requests() = Spec(v1::ARCHIVE, 1 + b * 20 + i);
      auto r = p.Submit(req);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) {
        for (const auto& a : r->accepted()) acked_.push_back(a.id());
      }
    }
    channel_ = std::make_shared<RecordingMoverChannel>();
    session_ = p.Hello(MakeHello("m1", {1}, 10), channel_);
    std::vector<v1::ActionItem> items = channel_->items();
    EXPECT_EQ(items.size(), 10u);
    if (items.size() < 4) return {};
    p.Report(session_, Results({items.begin(), items.begin() + 4}));
    return {items.begin() + 4, items.end()};
  }

  // Every acknowledged row as the coordinator holds it now.
  std::map<uint64_t, store::RequestRow> Rows(Process& p) {
    std::map<uint64_t, store::RequestRow> out;
    for (uint64_t id : acked_) {
      auto row = p.Row(id);
      EXPECT_TRUE(row.has_value()) << "request " << id << " is gone";
      if (row) out[id] = *row;
    }
    return out;
  }

  // The refusal an administrator reads: what failed, where (the state directory), what to do.
  void ExpectRefused(const Result<v1::SubmitReply>& r) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kUnavailable);
    const std::string& m = r.status().message();
    EXPECT_NE(m.find("journal write failed"), std::string::npos) << m;
    EXPECT_NE(m.find(dir_), std::string::npos) << "names the state directory: " << m;
    EXPECT_NE(m.find(GetParam().what), std::string::npos) << m;
    EXPECT_NE(m.find(GetParam().advice), std::string::npos) << m;
    EXPECT_NE(m.find("requests not accepted"), std::string::npos) << m;
  }

  static bool WarnsOfJournal(const v1::StatusReply& status, const std::string& dir) {
    for (const std::string& w : status.warnings()) {
      if (w.find("journal") != std::string::npos && w.find(dir) != std::string::npos) return true;
    }
    return false;
  }

  std::vector<uint64_t> acked_;
  std::shared_ptr<RecordingMoverChannel> channel_;
  Coordinator::SessionId session_ = 0;
};

TEST_P(DiskFaultTest, RefusesSubmitsAndACrashKeepsExactlyTheAcknowledgedState) {
  std::map<uint64_t, store::RequestRow> before;
  {
    Process p(path_, &clock_, /*faulty=*/true);
    std::vector<v1::ActionItem> held = Populate(p);
    ASSERT_EQ(held.size(), 6u);
    before = Rows(p);
    ASSERT_EQ(before.size(), 40u);

    p.faulty()->FailAllCommits(Fault());
    p.Report(session_, Results({held[0]}));  // a result the journal cannot take
    v1::SubmitRequest req;
    for (int i = 0; i < 5; ++i) *req.add_requests() = Spec(v1::ARCHIVE, 100 + i);
    ExpectRefused(p.Submit(req));
    ExpectRefused(p.Submit(req));  // refused at once while the journal is known to fail
    EXPECT_FALSE(p.JournalOk());
    v1::StatusReply status = p.GetStatus();
    EXPECT_TRUE(WarnsOfJournal(status, dir_)) << status.DebugString();
    EXPECT_GT(p.faulty()->failed_commits(), 0u);
  }  // kill -9 while the disk is still failing

  Process restarted(path_, &clock_);
  EXPECT_EQ(restarted.RequestCount(), before.size()) << "a refused request was journaled";
  for (const auto& [id, row] : before) {
    auto now = restarted.Row(id);
    ASSERT_TRUE(now.has_value()) << "acknowledged request " << id << " lost";
    EXPECT_EQ(*now, row) << "acknowledged request " << id << " changed";
  }
  EXPECT_FALSE(WarnsOfJournal(restarted.GetStatus(), dir_));
}

TEST_P(DiskFaultTest, ResumesWithoutARestartOnceTheDiskRecovers) {
  std::map<uint64_t, store::RequestRow> before_crash;
  uint64_t finished_during_fault = 0;
  {
    Process p(path_, &clock_, /*faulty=*/true);
    std::vector<v1::ActionItem> held = Populate(p);
    ASSERT_EQ(held.size(), 6u);
    std::map<uint64_t, store::RequestRow> before = Rows(p);

    p.faulty()->FailAllCommits(Fault());
    finished_during_fault = held[0].id();
    p.Report(session_, Results({held[0]}));
    v1::SubmitRequest refused;
    *refused.add_requests() = Spec(v1::ARCHIVE, 200);
    ExpectRefused(p.Submit(refused));

    p.faulty()->ClearFailures();  // the disk recovers; the coordinator is not told
    for (int i = 0; i < 10 && !p.JournalOk(); ++i) {
      clock_.Advance(1'000'000);  // the journal retry timer
      p.loop()->Poke();
      p.Drain();
    }
    ASSERT_TRUE(p.JournalOk()) << "the coordinator did not resume after the disk recovered";
    EXPECT_FALSE(WarnsOfJournal(p.GetStatus(), dir_));

    v1::SubmitRequest req;
    for (int i = 0; i < 5; ++i) *req.add_requests() = Spec(v1::ARCHIVE, 300 + i);
    auto ok = p.Submit(req);
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    for (const auto& a : ok->accepted()) acked_.push_back(a.id());
    before_crash = Rows(p);
    ASSERT_EQ(before_crash.size(), 45u);
    EXPECT_EQ(before_crash[finished_during_fault].state, RequestState::kSucceeded);
    for (const auto& [id, row] : before) {
      const store::RequestRow& now = before_crash[id];
      if (id == finished_during_fault) continue;
      if (row.state != RequestState::kQueued) {
        EXPECT_EQ(now, row) << id;
      } else {  // dispatch resumed: the freed slot may have taken a queued request
        EXPECT_TRUE(now.state == RequestState::kQueued || now.state == RequestState::kAssigned) << id;
        EXPECT_EQ(now.file, row.file) << id;
        EXPECT_EQ(now.created_us, row.created_us) << id;
      }
    }
  }

  Process restarted(path_, &clock_);
  EXPECT_EQ(restarted.RequestCount(), before_crash.size());
  for (const auto& [id, row] : before_crash) {
    auto now = restarted.Row(id);
    ASSERT_TRUE(now.has_value()) << "acknowledged request " << id << " lost";
    EXPECT_EQ(*now, row) << "request " << id << " differs after the restart";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DiskFaultTest,
    ::testing::Values(DiskFault{"Eio", Code::kIo, EIO, "disk I/O error",
                                "check the disk and the kernel log"},
                      DiskFault{"Enospc", Code::kNoSpace, ENOSPC, "database or disk is full",
                                "free space on the filesystem holding it"},
                      // The filesystem turned read-only, then read-write again.
                      DiskFault{"Erofs", Code::kIo, EROFS, "disk I/O error",
                                "repair the filesystem and mount it read-write"}),
    [](const ::testing::TestParamInfo<DiskFault>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace tierflow::coordinator
