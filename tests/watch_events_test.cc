// Request events on real processes: a `tierflow watch --json` process and the coordinator's
// report files follow an archive tagged job=J1 from its submission to its end, and the report
// file goes away once quiet.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "support/cluster_fixture.h"
#include "support/tree.h"

namespace tierflow::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kQuietSeconds = 5;

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

// The value of "key":"..." or "key":N in one JSON line of `tierflow watch --json` (flat
// objects, values without escapes in this test).
std::string JsonField(const std::string& line, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  size_t p = line.find(needle);
  if (p == std::string::npos) return "";
  p += needle.size();
  if (line[p] == '"') {
    size_t end = line.find('"', p + 1);
    return line.substr(p + 1, end - p - 1);
  }
  size_t end = line.find_first_of(",}", p);
  return line.substr(p, end - p);
}

class WatchEventsTest : public ::testing::Test, protected ClusterCommands {
 protected:
  void SetUp() override {
    reports_ = cluster_.dir() / "reports";
    const std::string config = cluster_.dir() / "tierflow.toml";
    std::ofstream(config) << "[reporting]\n"
                          << "dir = \"" << reports_ << "\"\n"
                          << "hint = \"job\"\n"
                          << "quiet = " << kQuietSeconds << "\n";
    cluster_.StartCoordinator({"--config", config});
    cluster_.StartMover("m1");
  }

  // The JSON event lines the watch process printed so far (its log also holds its stderr).
  std::vector<std::string> Events(Process& watch) {
    std::vector<std::string> out;
    for (const std::string& l : SplitLines(watch.Log())) {
      if (l.starts_with("{")) out.push_back(l);
    }
    return out;
  }
  static std::vector<std::string> Kinds(const std::vector<std::string>& events) {
    std::vector<std::string> out;
    for (const std::string& e : events) out.push_back(JsonField(e, "kind"));
    return out;
  }

  std::string reports_;
};

TEST_F(WatchEventsTest, WatchAndReportFileFollowAnArchiveThenTheFileGoesQuiet) {
  WriteFile(P("a"), 100'000, 1);
  Process watch({TierflowBinary(), "watch", "--json", "--coordinator", cluster_.address()},
                cluster_.dir() / "watch.log");
  ASSERT_TRUE(WaitFor([&] { return watch.Log().find("watching the events") != std::string::npos; },
                      std::chrono::seconds(30)))
      << watch.Log() << cluster_.Logs();

  // Locked, the coordinator accepts the archive and holds it: its "new" comes first, and the
  // rest follows at once on unlock (the report file must not go quiet in between).
  MustRun({"lock"});
  MustRun({"archive", "--data", "job=J1", P("a")});
  ASSERT_TRUE(WaitFor([&] { return Kinds(Events(watch)) == std::vector<std::string>{"new"}; },
                      std::chrono::seconds(30)))
      << watch.Log();
  MustRun({"unlock"});
  ASSERT_TRUE(WaitFor(
      [&] {
        auto k = Kinds(Events(watch));
        return std::find(k.begin(), k.end(), "done") != k.end();
      },
      std::chrono::seconds(60)))
      << watch.Log() << cluster_.Logs();

  // The mover may report the copy's progress before its result; nothing else may come.
  std::vector<std::string> events;
  for (const std::string& e : Events(watch)) {
    if (JsonField(e, "kind") != "progress") events.push_back(e);
  }
  ASSERT_EQ(Kinds(events), (std::vector<std::string>{"new", "assign", "sent", "done"}))
      << watch.Log();
  const std::string id = JsonField(events[0], "id");
  const std::string fid = JsonField(events[0], "fid");
  const std::string host = JsonField(events[1], "host");
  EXPECT_FALSE(host.empty()) << events[1];
  for (const std::string& e : events) {
    EXPECT_EQ(JsonField(e, "id"), id) << e;
    EXPECT_EQ(JsonField(e, "fid"), fid) << e;
    EXPECT_EQ(JsonField(e, "action"), "archive") << e;
    EXPECT_EQ(JsonField(e, "hint"), "J1") << e;
    EXPECT_EQ(JsonField(e, "path"), P("a")) << e;
  }
  EXPECT_EQ(JsonField(events[1], "mover"), "m1");
  EXPECT_EQ(JsonField(events[3], "status"), "0");
  CommandResult state = MustRun({"state", "--json", P("a")});
  EXPECT_EQ(JsonField(state.out, "fid"), fid) << "events name the file by its FID";

  // The report file: written by the coordinator's writer thread right after the turn.
  const std::string report = reports_ + "/J1";
  std::vector<std::string> lines;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::ifstream in(report);
        std::stringstream ss;
        ss << in.rdbuf();
        lines.clear();
        for (const std::string& l : SplitLines(ss.str())) {
          if (!l.starts_with("progress ")) lines.push_back(l);
        }
        return !lines.empty() && lines.back().starts_with("done ");
      },
      std::chrono::seconds(30)))
      << "report file " << report << " never showed the done line\n"
      << cluster_.Logs();
  EXPECT_EQ(lines, (std::vector<std::string>{"new " + fid, "assign " + fid + " " + host,
                                             "sent " + fid + " " + host, "done " + fid + " 0"}));
  EXPECT_EQ(std::vector<std::string>{"J1"}, [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(reports_)) names.push_back(e.path().filename());
    return names;
  }()) << "one file per hint value";

  // Quiet for kQuietSeconds, it goes.
  const auto done_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return !fs::exists(report); }, std::chrono::seconds(60)))
      << cluster_.Logs();
  EXPECT_GE(std::chrono::steady_clock::now() - done_at, std::chrono::seconds(kQuietSeconds - 2))
      << "removed long before it was quiet";

  // The watcher ends, unreachable (exit 3), when the coordinator goes away.
  cluster_.KillCoordinator(SIGTERM);
  const int status = watch.Stop(0, std::chrono::seconds(30));
  ASSERT_NE(status, -1) << "watch still runs after the coordinator stopped\n" << watch.Log();
  ASSERT_TRUE(WIFEXITED(status)) << watch.Log();
  EXPECT_EQ(WEXITSTATUS(status), 3) << watch.Log();
  EXPECT_NE(watch.Log().find("ended the event stream"), std::string::npos) << watch.Log();
}

// With --follow, a watcher outlives a coordinator restart and sees what happens after it.
TEST_F(WatchEventsTest, AFollowingWatcherWatchesAgainAfterARestart) {
  WriteFile(P("a"), 1000, 1);
  WriteFile(P("b"), 1000, 2);
  Process watch({TierflowBinary(), "watch", "--follow", "--json", "--coordinator",
                 cluster_.address()},
                cluster_.dir() / "watch.log");
  auto watching = [&] {
    const std::string log = watch.Log();
    size_t n = 0;
    for (size_t at = log.find("watching the events"); at != std::string::npos;
         at = log.find("watching the events", at + 1)) {
      ++n;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return watching() == 1; }, std::chrono::seconds(30))) << watch.Log();
  MustRun({"archive", "--wait", P("a")});
  ASSERT_TRUE(WaitFor([&] { return Kinds(Events(watch)).size() >= 4; }, std::chrono::seconds(30)))
      << watch.Log();

  cluster_.KillCoordinator(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return watch.Log().find("reconnecting") != std::string::npos; },
                      std::chrono::seconds(30)))
      << watch.Log();
  EXPECT_TRUE(watch.running()) << "it must wait for the coordinator\n" << watch.Log();
  cluster_.StartCoordinator();
  ASSERT_TRUE(WaitFor([&] { return watching() == 2; }, std::chrono::seconds(30))) << watch.Log();
  MustRun({"archive", "--wait", P("b")});
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const std::string& e : Events(watch)) {
          if (JsonField(e, "kind") == "done" && JsonField(e, "path") == P("b")) return true;
        }
        return false;
      },
      std::chrono::seconds(30)))
      << watch.Log() << cluster_.Logs();
}

TEST_F(WatchEventsTest, HintFilterShowsOnlyThatJob) {
  WriteFile(P("a"), 1000, 1);
  WriteFile(P("b"), 1000, 2);
  Process watch(
      {TierflowBinary(), "watch", "--hint", "J2", "--coordinator", cluster_.address()},
      cluster_.dir() / "watch.log");
  ASSERT_TRUE(WaitFor([&] { return watch.Log().find("watching the events") != std::string::npos; },
                      std::chrono::seconds(30)))
      << watch.Log();
  MustRun({"archive", "--wait", "--data", "job=J1", P("a")});
  MustRun({"archive", "--wait", "--data", "job=J2", P("b")});
  ASSERT_TRUE(WaitFor([&] { return watch.Log().find(" done ") != std::string::npos; },
                      std::chrono::seconds(30)))
      << watch.Log();
  // Text lines: "TIME ID WORDS", the words of the report file.
  std::vector<std::string> words;
  for (const std::string& l : SplitLines(watch.Log())) {
    if (l.starts_with("tierflow:")) continue;
    std::stringstream ss(l);
    std::string time, id, word;
    ss >> time >> id >> word;
    EXPECT_TRUE(time.ends_with("Z")) << l;
    words.push_back(word);
  }
  ASSERT_FALSE(words.empty());
  EXPECT_EQ(words.back(), "done") << watch.Log();
  EXPECT_EQ(std::count(words.begin(), words.end(), "done"), 1) << "J1's archive is not shown\n"
                                                               << watch.Log();
}

}  // namespace
}  // namespace tierflow::testing
