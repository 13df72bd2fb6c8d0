// Failures of real processes on loopback: a coordinator stopped gracefully keeps its movers'
// work, a mover killed mid-copy leaves nothing behind and its action is run again elsewhere, a
// mover that stops answering is found by heartbeats, and the maintenance verbs (lock, drain)
// hold across restarts. Each mover writes an action log, so "ran once" is read, not assumed.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "support/cluster_fixture.h"
#include "support/tree.h"

namespace tierflow::testing {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

std::vector<std::string> FilesUnder(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

struct LogLine {
  std::string mover;
  uint64_t id = 0;
  uint64_t epoch = 0;
  std::string action;
  std::string fid;
  int err = 0;
};

// The lines of a mover's --action-log (absent file: none).
std::vector<LogLine> ReadActionLog(const std::string& path) {
  std::vector<LogLine> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    int64_t when = 0;
    LogLine l;
    if (f >> when >> l.mover >> l.id >> l.epoch >> l.action >> l.fid >> l.err) out.push_back(l);
  }
  return out;
}

class FaultsTest : public ::testing::Test, protected ClusterCommands {
 protected:
  std::string ActionLog(const std::string& mover) { return cluster_.dir() / (mover + ".actions"); }
  Process& StartMover(const std::string& id, std::vector<std::string> extra = {}) {
    extra.push_back("--action-log");
    extra.push_back(ActionLog(id));
    return cluster_.StartMover(id, extra);
  }
  std::string Status() { return cluster_.Client({"status"}).out; }
  bool StatusSays(const std::string& text, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    return WaitFor([&] { return Status().find(text) != std::string::npos; }, timeout);
  }
  bool IsArchived(const std::string& path) {
    return cluster_.Client({"state", path}).out.find("archived") != std::string::npos;
  }
  // Releases, restores and compares every byte of `path` with `before`.
  void ExpectRestoresTo(const std::string& path, const FileSnapshot& before) {
    MustRun({"release", path});
    MustRun({"restore", "--wait", path});
    EXPECT_EQ(Snapshot(path), before);
  }
};

// SIGTERM keeps assignments: after the restart the mover that held the copy keeps it and
// finishes it; the other mover, idle and connected first, is never given it.
TEST_F(FaultsTest, AGracefulStopKeepsAssignmentsAcrossTheRestart) {
  cluster_.StartCoordinator();
  StartMover("m1", {"--bandwidth", "2"});  // 6 MiB: about 3 s of copy
  const std::string f = P("big");
  WriteFile(f, 6 * kMiB, 7);
  const FileSnapshot before = Snapshot(f);
  MustRun({"archive", f});
  ASSERT_TRUE(StatusSays("on m1")) << cluster_.Logs();

  cluster_.KillCoordinator(SIGTERM);
  ASSERT_FALSE(cluster_.coordinator().running());
  cluster_.StartCoordinator();
  StartMover("m2");
  ASSERT_TRUE(WaitFor([&] { return IsArchived(f); }, std::chrono::seconds(60))) << cluster_.Logs();

  const auto m1 = ReadActionLog(ActionLog("m1"));
  ASSERT_EQ(m1.size(), 1u) << cluster_.Logs();
  EXPECT_EQ(m1[0].err, 0);
  EXPECT_EQ(m1[0].epoch, 1u) << "the assignment changed across the restart";
  EXPECT_TRUE(ReadActionLog(ActionLog("m2")).empty()) << "the work was given to another mover";
  ExpectRestoresTo(f, before);
}

// kill -9 of the mover mid-copy: after the grace its action goes to another mover, the archive
// holds exactly the one final copy (no temporary), and it restores to the original bytes.
TEST_F(FaultsTest, AMoverKilledMidCopyLeavesNoTemporaryAndItsWorkIsRunAgain) {
  cluster_.StartCoordinator({"--mover-grace", "1"});
  StartMover("m1", {"--bandwidth", "1"});  // 8 MiB: about 8 s of copy
  const std::string f = P("big");
  WriteFile(f, 8 * kMiB, 3);
  const FileSnapshot before = Snapshot(f);
  MustRun({"archive", f});
  ASSERT_TRUE(StatusSays("on m1 ")) << cluster_.Logs();
  ASSERT_TRUE(WaitFor([&] { return Status().find("MiB/") != std::string::npos; }))
      << "no progress reported: " << Status();
  cluster_.KillMover("m1", SIGKILL);
  EXPECT_TRUE(FilesUnder(cluster_.archive()).empty()) << "a killed copy left a file behind";

  StartMover("m2");
  ASSERT_TRUE(WaitFor([&] { return IsArchived(f); }, std::chrono::seconds(60))) << cluster_.Logs();
  EXPECT_TRUE(ReadActionLog(ActionLog("m1")).empty());
  const auto m2 = ReadActionLog(ActionLog("m2"));
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(m2[0].err, 0);
  EXPECT_EQ(m2[0].epoch, 2u);
  EXPECT_EQ(FilesUnder(cluster_.archive()).size(), 1u) << "one copy, no temporaries";
  ExpectRestoresTo(f, before);
}

// A mover that keeps its connection but stops answering (SIGSTOP) is reported silent by
// heartbeats; its action is taken back after the active request timeout and run by another
// mover; when it wakes, its late result is acknowledged and ignored.
TEST_F(FaultsTest, AMoverThatStopsAnsweringIsFoundByHeartbeatsAndItsWorkMoves) {
  cluster_.StartCoordinator({"--heartbeat-interval", "0.5", "--heartbeat-timeout", "2",
                             "--active-request-timeout", "6"});
  Process& m1 = StartMover("m1", {"--bandwidth", "1"});  // 12 MiB: about 12 s of copy
  const std::string f = P("big");
  WriteFile(f, 12 * kMiB, 5);
  const FileSnapshot before = Snapshot(f);
  MustRun({"archive", f});
  ASSERT_TRUE(StatusSays("on m1")) << cluster_.Logs();
  m1.Signal(SIGSTOP);
  ASSERT_TRUE(StatusSays("silent")) << Status();
  EXPECT_NE(Status().find("m1 has not answered a heartbeat"), std::string::npos);

  StartMover("m2");
  ASSERT_TRUE(WaitFor([&] { return IsArchived(f); }, std::chrono::seconds(60))) << cluster_.Logs();
  m1.Signal(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return Status().find("silent") == std::string::npos; }))
      << "m1 still silent after it woke: " << Status();
  const auto m2 = ReadActionLog(ActionLog("m2"));
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(m2[0].err, 0);
  // m1 saw the cancel when it woke (or finished first): its result, from an old epoch, changes
  // nothing; the file stays archived and restores whole.
  ASSERT_TRUE(WaitFor([&] { return ReadActionLog(ActionLog("m1")).size() == 1; }))
      << cluster_.Logs();
  EXPECT_TRUE(IsArchived(f));
  EXPECT_EQ(FilesUnder(cluster_.archive()).size(), 1u);
  ExpectRestoresTo(f, before);
}

TEST_F(FaultsTest, LockSurvivesAKillAndDrainSendsWorkElsewhere) {
  cluster_.StartCoordinator();
  StartMover("m1");
  MustRun({"lock"});
  const std::string a = P("a");
  WriteFile(a, 4096, 1);
  MustRun({"archive", a});
  cluster_.KillCoordinator(SIGKILL);
  cluster_.StartCoordinator();
  EXPECT_NE(Status().find("locked"), std::string::npos) << Status();
  EXPECT_FALSE(IsArchived(a)) << "a locked coordinator dispatched";
  MustRun({"unlock"});
  ASSERT_TRUE(WaitFor([&] { return IsArchived(a); }));

  StartMover("m2");
  ASSERT_TRUE(StatusSays("m2"));
  CommandResult d = MustRun({"drain", "m1"});
  EXPECT_NE(d.out.find("drained"), std::string::npos) << Describe(d);
  cluster_.KillCoordinator(SIGKILL);
  cluster_.StartCoordinator();
  ASSERT_TRUE(StatusSays("drained"));
  for (int i = 0; i < 5; ++i) {
    const std::string f = P("d" + std::to_string(i));
    WriteFile(f, 4096, 10 + i);
    MustRun({"archive", f});
  }
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 5; ++i) {
      if (!IsArchived(P("d" + std::to_string(i)))) return false;
    }
    return true;
  })) << cluster_.Logs();
  EXPECT_EQ(ReadActionLog(ActionLog("m1")).size(), 1u) << "a drained mover was given work";
  EXPECT_EQ(ReadActionLog(ActionLog("m2")).size(), 5u);
  EXPECT_EQ(cluster_.Client({"drain", "nobody"}).exit_code != 0, true);
  MustRun({"drain", "--undo", "m1"});
  EXPECT_EQ(Status().find("drained"), std::string::npos);

  // lock --quit: the coordinator exits by itself once nothing runs.
  MustRun({"lock", "--quit"});
  EXPECT_TRUE(WaitFor([&] { return !cluster_.coordinator().running(); }, std::chrono::seconds(30)));
}

}  // namespace
}  // namespace tierflow::testing
