// Request events: the hub's filters, per-turn batches and slow-watcher accounting; the report
// files (line formats, appends across turns, quiet removal, unsafe names, a full disk); a real
// Coordinator driving both; and the Events RPC of a real server on loopback.
#include "coordinator/events.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "coordinator/report_writer.h"
#include "coordinator/server.h"
#include "coordinator/service.h"
#include "coordinator/testing/harness.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::coordinator {
namespace {

namespace fs = std::filesystem;
using testing::Harness;
using testing::MakeHello;
using testing::ResultMsg;
using testing::Spec;

// Records the batches the hub sends; its backlog is whatever the test says.
class RecordingEventChannel final : public EventChannel {
 public:
  size_t queued_bytes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return queued_;
  }
  void Send(std::shared_ptr<const v1::EventBatch> batch, size_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    batches_.push_back(*batch);
  }
  void Finish(const Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    status_ = status;
  }
  void set_queued(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    queued_ = bytes;
  }
  std::vector<v1::EventBatch> batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  std::vector<v1::Event> events() const {
    std::vector<v1::Event> out;
    for (const auto& b : batches()) out.insert(out.end(), b.events().begin(), b.events().end());
    return out;
  }
  // "new 1", "assign 1", ...: kind word and request id of every event so far.
  std::vector<std::string> steps() const {
    std::vector<std::string> out;
    for (const auto& e : events()) {
      std::string line = ReportLine(e);
      out.push_back(line.substr(0, line.find(' ')) + " " + std::to_string(e.id()));
    }
    return out;
  }
  bool finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  mutable std::mutex mu_;
  size_t queued_ = 0;
  std::vector<v1::EventBatch> batches_;
  bool finished_ = false;
  Status status_;
};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tf_events_XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

store::RequestRow Row(uint64_t id, hsm::Action action, std::string data, std::string mover = "") {
  store::RequestRow r;
  r.id = id;
  r.action = action;
  r.file = {"fs1", {0x200000401, static_cast<uint32_t>(id), 0}};
  r.path = "/data/f" + std::to_string(id);
  r.data = std::move(data);
  r.mover = std::move(mover);
  return r;
}

constexpr char kFid1[] = "[0x200000401:0x1:0x0]";

// ---- the hub alone, driven from the test thread as if it were the loop ----

class EventHubTest : public ::testing::Test {
 protected:
  void SetUp() override { Make({}); }
  void Make(ReportingOptions reporting) {
    auto hub = EventHub::Create(reporting, &clock_);
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
  }
  std::shared_ptr<RecordingEventChannel> Watch(EventFilter filter) {
    auto ch = std::make_shared<RecordingEventChannel>();
    EXPECT_NE(hub_->Subscribe(std::move(filter), ch), 0u);
    return ch;
  }
  void Emit(v1::Event::Kind kind, const store::RequestRow& row, const std::string& host = "") {
    hub_->Emit(kind, row, host, 0, 0, 0);
  }

  ManualClock clock_{5'000'000};
  std::unique_ptr<EventHub> hub_;
};

TEST_F(EventHubTest, InactiveUntilSomeoneWatches) {
  EXPECT_FALSE(hub_->active());
  auto ch = Watch({});
  EXPECT_TRUE(hub_->active());
  hub_->Unsubscribe(1);
  EXPECT_FALSE(hub_->active());
}

TEST_F(EventHubTest, FiltersByHintActionAndMover) {
  Make({"", "job", 1'000'000});
  auto all = Watch({});
  auto j1 = Watch({"J1", {}, ""});
  auto restores = Watch({"", {v1::RESTORE}, ""});
  auto m1 = Watch({"", {}, "m1"});
  Emit(v1::Event::NEW, Row(1, hsm::Action::kArchive, "job=J1"));
  Emit(v1::Event::ASSIGN, Row(1, hsm::Action::kArchive, "job=J1", "m1"), "h1");
  Emit(v1::Event::NEW, Row(2, hsm::Action::kRestore, "job=J10"));
  Emit(v1::Event::ASSIGN, Row(2, hsm::Action::kRestore, "job=J10", "m2"), "h2");
  Emit(v1::Event::NEW, Row(3, hsm::Action::kArchive, "xjob=J1"));
  hub_->Flush();
  EXPECT_EQ(all->steps(), (std::vector<std::string>{"new 1", "assign 1", "new 2", "assign 2",
                                                    "new 3"}));
  EXPECT_EQ(j1->steps(), (std::vector<std::string>{"new 1", "assign 1"}))
      << "hint values match exactly, tag keys too";
  EXPECT_EQ(restores->steps(), (std::vector<std::string>{"new 2", "assign 2"}));
  EXPECT_EQ(m1->steps(), (std::vector<std::string>{"assign 1"})) << "a new request has no mover";
}

TEST_F(EventHubTest, EventCarriesTheRequestHintAndWallTime) {
  Make({"", "job", 1'000'000});
  auto ch = Watch({});
  store::RequestRow row = Row(1, hsm::Action::kArchive, "user=a job=J1,x=y", "m1");
  hub_->Emit(v1::Event::PROGRESS, row, "h1", 10, 100, 0);
  hub_->Emit(v1::Event::DONE, row, "", 100, 100, 5);
  hub_->Flush();
  auto events = ch->events();
  ASSERT_EQ(events.size(), 2u);
  const v1::Event& e = events[0];
  EXPECT_EQ(e.kind(), v1::Event::PROGRESS);
  EXPECT_EQ(e.id(), 1u);
  EXPECT_EQ(e.action(), v1::ARCHIVE);
  EXPECT_EQ(e.file().fsid(), "fs1");
  EXPECT_EQ(e.file().path(), "/data/f1");
  EXPECT_EQ(e.mover(), "m1");
  EXPECT_EQ(e.host(), "h1");
  EXPECT_EQ(e.bytes_done(), 10u);
  EXPECT_EQ(e.bytes_total(), 100u);
  EXPECT_EQ(e.hint(), "J1");
  EXPECT_EQ(e.time_us(), clock_.WallMicros()) << "progress happens when it is reported";
  EXPECT_EQ(events[1].status(), 5);
}

TEST_F(EventHubTest, AStateChangeIsDatedWhenItHappenedNotWhenPublished) {
  Make({"", "job", 1'000'000});
  auto ch = Watch({});
  store::RequestRow row = Row(1, hsm::Action::kRestore, "job=J1", "m1");
  row.created_us = 1'000;
  row.changed_us = 2'000;
  ASSERT_GT(clock_.WallMicros(), 2'000);
  hub_->Emit(v1::Event::NEW, row, "", 0, 0, 0);
  hub_->Emit(v1::Event::ASSIGN, row, "h1", 0, 0, 0);
  hub_->Emit(v1::Event::SENT, row, "h1", 0, 0, 0);
  hub_->Flush();
  auto events = ch->events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].time_us(), 1'000);
  EXPECT_EQ(events[1].time_us(), 2'000) << "the scheduler's decision, not the commit after it";
  EXPECT_EQ(events[2].time_us(), clock_.WallMicros());
}

TEST_F(EventHubTest, WithoutAHintKeyEventsCarryNoHint) {
  auto ch = Watch({});
  Emit(v1::Event::NEW, Row(1, hsm::Action::kArchive, "job=J1"));
  hub_->Flush();
  ASSERT_EQ(ch->events().size(), 1u);
  EXPECT_EQ(ch->events()[0].hint(), "");
}

TEST_F(EventHubTest, OneBatchPerTurnOnlyForWatchersThatGotEvents) {
  auto archives = Watch({"", {v1::ARCHIVE}, ""});
  auto removes = Watch({"", {v1::REMOVE}, ""});
  for (uint64_t id = 1; id <= 3; ++id) Emit(v1::Event::NEW, Row(id, hsm::Action::kArchive, ""));
  hub_->Flush();
  ASSERT_EQ(archives->batches().size(), 1u);
  EXPECT_EQ(archives->batches()[0].events_size(), 3);
  EXPECT_EQ(archives->batches()[0].dropped(), 0u);
  EXPECT_TRUE(removes->batches().empty());
  hub_->Flush();  // a turn with nothing
  EXPECT_EQ(archives->batches().size(), 1u);
  Emit(v1::Event::NEW, Row(4, hsm::Action::kArchive, ""));
  hub_->Flush();
  ASSERT_EQ(archives->batches().size(), 2u);
  EXPECT_EQ(archives->batches()[1].events(0).id(), 4u);
}

TEST_F(EventHubTest, AHugeTurnIsSplitIntoBatchesOfBoundedSize) {
  auto ch = Watch({});
  store::RequestRow row = Row(1, hsm::Action::kArchive, "");
  row.path = "/" + std::string(4000, 'p');
  for (int i = 0; i < 3000; ++i) Emit(v1::Event::NEW, row);  // ~12 MB of events
  hub_->Flush();
  auto batches = ch->batches();
  ASSERT_GE(batches.size(), 3u);
  size_t total = 0;
  for (const auto& b : batches) {
    EXPECT_LT(b.ByteSizeLong(), 5u << 20) << "one batch must stay far below the message bound";
    total += b.events_size();
  }
  EXPECT_EQ(total, 3000u);
}

TEST_F(EventHubTest, SlowWatcherLosesEventsCountedInItsNextBatch) {
  auto slow = Watch({});
  auto fast = Watch({});
  slow->set_queued(EventHub::kMaxQueuedBytes + 1);
  for (uint64_t id = 1; id <= 5; ++id) Emit(v1::Event::NEW, Row(id, hsm::Action::kArchive, ""));
  hub_->Flush();
  EXPECT_TRUE(slow->batches().empty()) << "a watcher over its bound gets nothing new";
  EXPECT_EQ(fast->events().size(), 5u) << "another watcher is not held back";

  slow->set_queued(EventHub::kMaxQueuedBytes);  // at the bound: still served
  Emit(v1::Event::NEW, Row(6, hsm::Action::kArchive, ""));
  hub_->Flush();
  auto batches = slow->batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].dropped(), 5u);
  ASSERT_EQ(batches[0].events_size(), 1);
  EXPECT_EQ(batches[0].events(0).id(), 6u);

  Emit(v1::Event::NEW, Row(7, hsm::Action::kArchive, ""));
  hub_->Flush();
  EXPECT_EQ(slow->batches().back().dropped(), 0u) << "drops are reported once";
}

TEST_F(EventHubTest, CaughtUpWatcherHearsOfItsLossesWithoutNewEvents) {
  auto slow = Watch({});
  slow->set_queued(EventHub::kMaxQueuedBytes + 1);
  Emit(v1::Event::NEW, Row(1, hsm::Action::kArchive, ""));
  Emit(v1::Event::NEW, Row(2, hsm::Action::kArchive, ""));
  hub_->Flush();
  hub_->Flush();  // still behind: nothing to say yet
  EXPECT_TRUE(slow->batches().empty());
  slow->set_queued(0);
  hub_->Flush();
  auto batches = slow->batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].events_size(), 0);
  EXPECT_EQ(batches[0].dropped(), 2u);
}

TEST_F(EventHubTest, CloseFinishesWatchersAndRefusesNewOnes) {
  auto ch = Watch({});
  Emit(v1::Event::NEW, Row(1, hsm::Action::kArchive, ""));
  hub_->Close(Status(Code::kUnavailable, "shutting down"));
  EXPECT_EQ(ch->events().size(), 1u) << "what the last turn emitted is delivered first";
  EXPECT_TRUE(ch->finished());
  EXPECT_EQ(ch->status().code(), Code::kUnavailable);
  EXPECT_FALSE(hub_->active());
  auto late = std::make_shared<RecordingEventChannel>();
  EXPECT_EQ(hub_->Subscribe({}, late), 0u);
  EXPECT_TRUE(late->finished());
  EXPECT_EQ(late->status().code(), Code::kUnavailable);
}

TEST_F(EventHubTest, ReportDirNeedsAHintKeyAndAWritableDirectory) {
  TempDir dir;
  auto no_hint = EventHub::Create({dir / "reports", "", 1'000'000}, &clock_);
  ASSERT_FALSE(no_hint.ok());
  EXPECT_NE(no_hint.status().message().find("hint"), std::string::npos)
      << no_hint.status().ToString();

  std::ofstream(dir / "file") << "x";
  auto not_dir = EventHub::Create({dir / "file", "job", 1'000'000}, &clock_);
  ASSERT_FALSE(not_dir.ok());
  EXPECT_NE(not_dir.status().message().find(dir / "file"), std::string::npos)
      << not_dir.status().ToString();

  auto made = EventHub::Create({dir / "a/b/reports", "job", 1'000'000}, &clock_);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_TRUE(fs::is_directory(dir / "a/b/reports"));
  EXPECT_TRUE((*made)->active()) << "report files need every event";
}

// ---- report files ----

TEST(ReportLineTest, EachKindInCoordinatoolsWords) {
  v1::Event e;
  e.mutable_file()->set_seq(0x200000401);
  e.mutable_file()->set_oid(0x1);
  e.set_host("h1");
  e.set_mover("m1");
  e.set_bytes_done(5);
  e.set_bytes_total(9);
  e.set_status(28);
  auto line = [&](v1::Event::Kind k) {
    e.set_kind(k);
    return ReportLine(e);
  };
  EXPECT_EQ(line(v1::Event::NEW), std::string("new ") + kFid1);
  EXPECT_EQ(line(v1::Event::ASSIGN), std::string("assign ") + kFid1 + " h1");
  EXPECT_EQ(line(v1::Event::SENT), std::string("sent ") + kFid1 + " h1");
  EXPECT_EQ(line(v1::Event::PROGRESS), std::string("progress ") + kFid1 + " h1 5/9");
  EXPECT_EQ(line(v1::Event::DONE), std::string("done ") + kFid1 + " 28");
  EXPECT_EQ(line(v1::Event::CANCEL), std::string("cancel ") + kFid1);
  e.clear_host();
  EXPECT_EQ(line(v1::Event::SENT), std::string("sent ") + kFid1 + " m1")
      << "a mover without a host name is named by its id";
}

class ReportWriterTest : public ::testing::Test {
 protected:
  void Open(const std::string& dir, int64_t quiet_us = 10'000'000) {
    auto w = ReportWriter::Open(dir, quiet_us, &clock_);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    writer_ = std::move(w).value();
  }
  void Turn(const std::vector<std::pair<std::string, std::string>>& lines) {
    for (const auto& [name, line] : lines) writer_->Add(name, line);
    writer_->Flush();
    writer_->Sync();
  }

  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<ReportWriter> writer_;
};

TEST_F(ReportWriterTest, LinesAppendInOrderAcrossTurns) {
  Open(dir_.path());
  Turn({{"J1", "new A"}, {"J2", "new B"}, {"J1", "assign A h"}});
  Turn({{"J1", "done A 0"}});
  EXPECT_EQ(Lines(dir_ / "J1"), (std::vector<std::string>{"new A", "assign A h", "done A 0"}));
  EXPECT_EQ(Lines(dir_ / "J2"), (std::vector<std::string>{"new B"}));
  EXPECT_EQ(writer_->stats().lines_written, 4u);
}

TEST_F(ReportWriterTest, LinesOfATurnAreWrittenOnlyAtFlush) {
  Open(dir_.path());
  writer_->Add("J1", "new A");
  writer_->Sync();
  EXPECT_FALSE(fs::exists(dir_ / "J1"));
  writer_->Flush();
  writer_->Sync();
  EXPECT_EQ(Lines(dir_ / "J1"), (std::vector<std::string>{"new A"}));
}

TEST_F(ReportWriterTest, QuietFileIsRemovedAndComesBackWithNewLines) {
  Open(dir_.path(), 10'000'000);
  Turn({{"J1", "new A"}, {"J2", "new B"}});
  clock_.Advance(6'000'000);
  Turn({{"J2", "done B 0"}});  // J2 is busy again, J1 is not
  clock_.Advance(3'999'999);
  writer_->Sync();
  EXPECT_EQ(FilesIn(dir_.path()), (std::vector<std::string>{"J1", "J2"})) << "not yet quiet";
  clock_.Advance(1);
  writer_->Sync();
  EXPECT_EQ(FilesIn(dir_.path()), (std::vector<std::string>{"J2"}));
  clock_.Advance(6'000'000);
  writer_->Sync();
  EXPECT_TRUE(FilesIn(dir_.path()).empty());
  EXPECT_EQ(writer_->stats().files_removed, 2u);

  Turn({{"J1", "new C"}});
  EXPECT_EQ(Lines(dir_ / "J1"), (std::vector<std::string>{"new C"})) << "a fresh file";
}

TEST_F(ReportWriterTest, FilesLeftByAnEarlierRunAreRemovedOnceQuiet) {
  Open(dir_.path());
  Turn({{"J1", "new A"}, {"J2", "new B"}});
  writer_.reset();  // the coordinator stops: its files stay
  ASSERT_EQ(FilesIn(dir_.path()), (std::vector<std::string>{"J1", "J2"}));
  fs::create_directory(dir_ / "sub");
  fs::create_symlink(dir_ / "J1", dir_ / "link");

  Open(dir_.path());  // the next start
  clock_.Advance(6'000'000);
  Turn({{"J2", "done B 0"}});  // J2's job goes on after the restart
  clock_.Advance(4'000'000);
  writer_->Sync();
  EXPECT_EQ(FilesIn(dir_.path()), (std::vector<std::string>{"J2", "link", "sub"}))
      << "J1 was quiet for 10 s since the start; what is not a regular file is not ours";
  EXPECT_EQ(Lines(dir_ / "J2"), (std::vector<std::string>{"new B", "done B 0"}));
  clock_.Advance(6'000'000);
  writer_->Sync();
  EXPECT_EQ(FilesIn(dir_.path()), (std::vector<std::string>{"link", "sub"}));
  EXPECT_EQ(writer_->stats().files_removed, 2u);
}

TEST_F(ReportWriterTest, UnsafeNamesGetNoFile) {
  const std::string sub = dir_ / "sub";
  Open(sub);
  const std::vector<std::string> unsafe = {"",    ".",   "..",  "a/b", "../x", std::string(256, 'x'),
                                           "a\nb", std::string("a\0b", 3)};
  for (const std::string& name : unsafe) {
    EXPECT_FALSE(ReportWriter::SafeName(name)) << name;
    writer_->Add(name, "new A");
  }
  writer_->Add("..", "new B");  // warned once, counted again
  writer_->Flush();
  writer_->Sync();
  EXPECT_TRUE(FilesIn(sub).empty());
  EXPECT_EQ(FilesIn(dir_.path()), (std::vector<std::string>{"sub"})) << "nothing outside either";
  EXPECT_EQ(writer_->stats().unsafe_lines, unsafe.size() + 1);

  const std::string longest(255, 'y');
  EXPECT_TRUE(ReportWriter::SafeName(longest));
  EXPECT_TRUE(ReportWriter::SafeName("job-7.tar_x"));
  Turn({{longest, "new A"}});
  EXPECT_EQ(Lines(sub + "/" + longest).size(), 1u);
}

TEST_F(ReportWriterTest, ASymlinkPlantedInTheDirectoryIsNotFollowed) {
  Open(dir_ / "reports");
  std::ofstream(dir_ / "victim") << "precious\n";
  fs::create_symlink(dir_ / "victim", dir_ / "reports/J1");
  Turn({{"J1", "new A"}});
  EXPECT_EQ(Lines(dir_ / "victim"), (std::vector<std::string>{"precious"}));
  EXPECT_EQ(writer_->stats().write_errors, 1u);
}

// A tmpfs of 64 KiB: a real filesystem that really runs out of space.
class FullDiskTest : public ReportWriterTest {
 protected:
  void SetUp() override {
    mnt_ = dir_ / "mnt";
    fs::create_directory(mnt_);
    if (::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=64k") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (needs CAP_SYS_ADMIN): " << std::strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    writer_.reset();
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  std::string mnt_;
  bool mounted_ = false;
};

TEST_F(FullDiskTest, WriteErrorsAreCountedAndWritingResumesOnceThereIsSpace) {
  Open(mnt_);
  Turn({{"J1", "new A"}});
  {
    std::ofstream filler(mnt_ + "/filler");
    std::string block(4096, 'f');
    while (filler.write(block.data(), block.size()) && filler.flush()) {
    }
  }
  std::string long_line(8192, 'x');
  Turn({{"J1", long_line}, {"J1", "assign A h"}});
  const auto stats = writer_->stats();
  EXPECT_GE(stats.write_errors, 1u);
  EXPECT_EQ(stats.lines_dropped, 2u);
  EXPECT_EQ(Lines(mnt_ + "/J1"), (std::vector<std::string>{"new A"}))
      << "a failed write leaves no cut line behind";

  fs::remove(mnt_ + "/filler");
  Turn({{"J1", "done A 0"}});
  EXPECT_EQ(Lines(mnt_ + "/J1"), (std::vector<std::string>{"new A", "done A 0"}));
  EXPECT_EQ(writer_->stats().lines_written, 2u);
}

// ---- a real Coordinator ----

class CoordinatorEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = EventHub::Create({dir_.path(), "job", 30'000'000}, &h_.clock());
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
    CoordinatorOptions o;
    o.events = hub_.get();
    h_.Start(o);
    h_.Run([&] { hub_->Subscribe({}, watcher_); });
  }
  void TearDown() override {
    h_.Stop();
    hub_.reset();
  }
  v1::RequestSpec Tagged(v1::Action action, uint64_t seq, const std::string& data) {
    v1::RequestSpec s = Spec(action, seq);
    s.set_data(data);
    return s;
  }
  std::vector<std::string> Report(const std::string& name) {
    hub_->reports()->Sync();
    return Lines(dir_ / name);
  }

  TempDir dir_;
  Harness h_;
  std::unique_ptr<EventHub> hub_;
  std::shared_ptr<RecordingEventChannel> watcher_ = std::make_shared<RecordingEventChannel>();
};

TEST_F(CoordinatorEventsTest, ArchiveQueuedBeforeItsMoverCameReportsEveryStep) {
  const uint64_t id = h_.SubmitOne(Tagged(v1::ARCHIVE, 1, "job=J1"));
  auto m = h_.Hello(MakeHello("m1", {1}, 4));
  ASSERT_TRUE(m.ok());
  v1::MoverMessage progress;
  progress.mutable_progress()->set_id(id);
  progress.mutable_progress()->set_epoch(1);
  progress.mutable_progress()->set_bytes_done(4096);
  progress.mutable_progress()->set_bytes_total(8192);
  h_.Report(*m, progress);
  h_.Report(*m, ResultMsg(id, 1));
  const std::string n = std::to_string(id);
  EXPECT_EQ(watcher_->steps(), (std::vector<std::string>{"new " + n, "assign " + n, "sent " + n,
                                                         "progress " + n, "done " + n}));
  const std::string fid = "[0x1:0x1:0x0]";
  EXPECT_EQ(Report("J1"),
            (std::vector<std::string>{"new " + fid, "assign " + fid + " m1.example",
                                      "sent " + fid + " m1.example",
                                      "progress " + fid + " m1.example 4096/8192",
                                      "done " + fid + " 0"}));
  for (const auto& e : watcher_->events()) EXPECT_EQ(e.hint(), "J1");
}

TEST_F(CoordinatorEventsTest, FailedRestoreEndsWithItsErrno) {
  auto m = h_.Hello(MakeHello("m1", {1}, 4));
  ASSERT_TRUE(m.ok());
  const uint64_t id = h_.SubmitOne(Tagged(v1::RESTORE, 2, "job=R"));
  h_.Report(*m, ResultMsg(id, 1, EIO));
  auto lines = Report("R");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "done [0x2:0x1:0x0] 5");
  auto events = watcher_->events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind(), v1::Event::DONE);
  EXPECT_EQ(events.back().status(), EIO);
  EXPECT_EQ(events.back().action(), v1::RESTORE);
}

// A request assigned in the turn that created it: its ASSIGN is emitted once that append is
// durable, after its NEW.
TEST_F(CoordinatorEventsTest, RequestAssignedInItsFirstTurnStillStartsWithNew) {
  auto m = h_.Hello(MakeHello("m1", {1}, 4));
  ASSERT_TRUE(m.ok());
  const uint64_t id = h_.SubmitOne(Tagged(v1::ARCHIVE, 5, "job=F"));
  h_.Report(*m, ResultMsg(id, 1));
  const std::string n = std::to_string(id);
  EXPECT_EQ(watcher_->steps(),
            (std::vector<std::string>{"new " + n, "assign " + n, "sent " + n, "done " + n}));
  auto lines = Report("F");
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines[0].starts_with("new ")) << lines[0];
}

// A CANCEL request's row carries its target's tags, so the target's report file gets its line.
TEST_F(CoordinatorEventsTest, CanceledRunningRequestWritesACancelLine) {
  auto m = h_.Hello(MakeHello("m1", {1}, 4));
  ASSERT_TRUE(m.ok());
  const uint64_t id = h_.SubmitOne(Tagged(v1::ARCHIVE, 6, "job=K"));
  v1::CancelRequest cancel;
  cancel.add_ids(id);
  ASSERT_TRUE(h_.Cancel(cancel).ok());
  h_.Report(*m, ResultMsg(id, 1, ECANCELED));
  const std::string fid = "[0x6:0x1:0x0]";
  auto lines = Report("K");
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[lines.size() - 2], "cancel " + fid);
  EXPECT_EQ(lines.back(), "done " + fid + " " + std::to_string(ECANCELED));
}

TEST_F(CoordinatorEventsTest, UntaggedRequestsReachWatchersButNoReportFile) {
  const uint64_t id = h_.SubmitOne(Spec(v1::ARCHIVE, 3));
  EXPECT_EQ(watcher_->steps(), (std::vector<std::string>{"new " + std::to_string(id)}));
  hub_->reports()->Sync();
  EXPECT_TRUE(FilesIn(dir_.path()).empty());
}

TEST_F(CoordinatorEventsTest, CanceledQueuedRequestIsDoneWithECANCELED) {
  const uint64_t id = h_.SubmitOne(Tagged(v1::ARCHIVE, 4, "job=C"));
  v1::CancelRequest cancel;
  cancel.add_ids(id);
  ASSERT_TRUE(h_.Cancel(cancel).ok());
  auto lines = Report("C");
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "new [0x4:0x1:0x0]");
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "done [0x4:0x1:0x0] " + std::to_string(ECANCELED)),
            lines.end());
}

// ---- the Events RPC of a real server ----

class EventsServiceTest : public ::testing::Test {
 protected:
  void Start(ReportingOptions reporting = {}) {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.state_dir = dir_ / "state";
    o.scheduling.reporting = reporting;
    auto s = Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    stub_ = v1::Coordinator::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_.reset(); }

  TempDir dir_;
  std::unique_ptr<Server> server_;
  // An Events call that must be refused: it yields no batch; returns how it ended.
  grpc::Status Refused(const v1::EventsRequest& req) {
    grpc::ClientContext ctx;
    auto reader = stub_->Events(&ctx, req);
    v1::EventBatch batch;
    EXPECT_FALSE(reader->Read(&batch));
    return reader->Finish();
  }

  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(EventsServiceTest, StreamCarriesEventsAndEndsWhenTheCoordinatorStops) {
  Start({dir_ / "reports", "job", 60'000'000});
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::EventsRequest req;
  req.set_hint("J1");
  auto reader = stub_->Events(&ctx, req);
  reader->WaitForInitialMetadata();
  ASSERT_EQ(ctx.GetServerInitialMetadata().count(std::string(kEventsSubscribedHeader)), 1u)
      << "subscribed before any event";

  v1::SubmitRequest submit;
  for (int i = 1; i <= 2; ++i) {
    v1::RequestSpec* s = submit.add_requests();
    *s = Spec(v1::ARCHIVE, i);
    s->set_data(i == 1 ? "job=J1" : "job=J2");
  }
  grpc::ClientContext sctx;
  v1::SubmitReply reply;
  ASSERT_TRUE(stub_->Submit(&sctx, submit, &reply).ok());

  v1::EventBatch batch;
  ASSERT_TRUE(reader->Read(&batch));
  ASSERT_EQ(batch.events_size(), 1) << "only J1's request";
  EXPECT_EQ(batch.events(0).kind(), v1::Event::NEW);
  EXPECT_EQ(batch.events(0).id(), reply.accepted(0).id());
  EXPECT_EQ(batch.events(0).hint(), "J1");

  server_->Shutdown();
  while (reader->Read(&batch)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(Lines(dir_ / "reports/J1"), (std::vector<std::string>{"new [0x1:0x1:0x0]"}))
      << "the last lines are written at shutdown";
}

TEST_F(EventsServiceTest, HintFilterWithoutAHintKeyIsRefused) {
  Start();
  v1::EventsRequest req;
  req.set_hint("J1");
  grpc::Status st = Refused(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("hint key"), std::string::npos) << st.error_message();
}

TEST_F(EventsServiceTest, OversizedFilterIsRefused) {
  Start();
  v1::EventsRequest req;
  req.set_mover("a/b");
  EXPECT_EQ(Refused(req).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EventsServiceTest, UnusableReportDirFailsStartNamingIt) {
  std::ofstream(dir_ / "not-a-dir") << "x";
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.state_dir = dir_ / "state";
  o.scheduling.reporting = {dir_ / "not-a-dir", "job", 1'000'000};
  auto s = Server::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(dir_ / "not-a-dir"), std::string::npos)
      << s.status().ToString();
}

}  // namespace
}  // namespace tierflow::coordinator
