// Transparent HSM end to end: a coordinator and a watching mover (real processes) on a
// loop-mounted ext4, xfs or btrfs filesystem made by the test. Released files are read, mapped,
// executed, truncated and rewritten by ordinary programs, and must come back with every byte,
// once, and never as zeros.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "support/cluster_fixture.h"
#include "support/tree.h"
#include "tierflow.pb.h"
#include "watch/filesystem_id.h"
#include "watch/watcher.h"

namespace tierflow::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1 << 20;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool AllZero(const std::string& s) {
  return s.find_first_not_of('\0') == std::string::npos;
}

// What a child process (an untrusted reader, as any user program) saw.
struct ChildOutcome {
  int err = 0;       // errno of the first failing call, 0 when all worked
  std::string data;  // bytes it read
};

// Runs `fn` in a forked child and returns what it reported through a pipe. The child is a
// separate process, so its accesses are intercepted like any program's.
ChildOutcome InChild(const std::function<ChildOutcome()>& fn) {
  int p[2];
  if (pipe(p) != 0) return {errno, ""};
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    ChildOutcome o = fn();
    int32_t e = o.err;
    uint64_t n = o.data.size();
    (void)!write(p[1], &e, sizeof e);
    (void)!write(p[1], &n, sizeof n);
    size_t off = 0;
    while (off < o.data.size()) {
      ssize_t w = write(p[1], o.data.data() + off, o.data.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    _exit(0);
  }
  close(p[1]);
  ChildOutcome o;
  int32_t e = -1;
  uint64_t n = 0;
  if (read(p[0], &e, sizeof e) == sizeof e && read(p[0], &n, sizeof n) == sizeof n) {
    o.err = e;
    o.data.resize(n);
    size_t off = 0;
    while (off < n) {
      ssize_t r = read(p[0], o.data.data() + off, n - off);
      if (r <= 0) break;
      off += static_cast<size_t>(r);
    }
  } else {
    o.err = -1;
  }
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return o;
}

ChildOutcome ReadRange(const std::string& path, off_t offset, size_t len) {
  return InChild([&] {
    ChildOutcome o;
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return ChildOutcome{errno, ""};
    if (lseek(fd, offset, SEEK_SET) != offset) return ChildOutcome{errno, ""};
    o.data.resize(len);
    size_t got = 0;
    while (got < len) {
      ssize_t r = read(fd, o.data.data() + got, len - got);
      if (r < 0) {
        o.err = errno;
        break;
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    o.data.resize(got);
    close(fd);
    return o;
  });
}

class HsmTest : public ::testing::TestWithParam<std::string>, protected ClusterCommands {
 protected:
  void SetUp() override {
    const std::string type = GetParam();
    const std::string mkfs = "mkfs." + type;
    if (access(("/usr/sbin/" + mkfs).c_str(), X_OK) != 0 &&
        access(("/sbin/" + mkfs).c_str(), X_OK) != 0) {
      GTEST_SKIP() << mkfs << " is not installed";
    }
    std::string why;
    ASSERT_TRUE(cluster_.MountLoopFs(type, type == "ext4" ? 256 : 512, &why)) << why;
    cluster_.StartCoordinator();
  }

  // A mover watching the filesystem; waits until the coordinator sees it (it connects after
  // its watcher is up).
  void StartWatchingMover(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--watch", cluster_.fs()};
    args.insert(args.end(), extra.begin(), extra.end());
    cluster_.StartMover("m1", args);
    ASSERT_TRUE(WaitFor([&] { return MoverConnected("m1"); }, std::chrono::seconds(60)))
        << cluster_.Logs();
    // The test's own looks at files (HasData, reading resident files) must not restore them:
    // it passes the holder, like tierflow's own tools. Readers run in other processes.
    auto fsid = watch::FilesystemIdOf(cluster_.fs());
    ASSERT_TRUE(fsid.ok()) << fsid.status().ToString();
    tierflow::Status pass = watch::EnsureHolderPass(*fsid);
    ASSERT_TRUE(pass.ok()) << pass.ToString();
  }

  v1::StatusReply Status() {
    v1::StatusReply reply;
    CommandResult r = cluster_.Client({"status", "--json", "--limit", "1000"});
    if (r.exit_code == 0) {
      (void)google::protobuf::util::JsonStringToMessage(r.out, &reply);
    }
    return reply;
  }

  bool MoverConnected(const std::string& id) {
    const v1::StatusReply status = Status();
    for (const auto& m : status.movers()) {
      if (m.id() == id && m.connected()) return true;
    }
    return false;
  }

  v1::ActionCounters CountersOf(v1::Action action) {
    const v1::StatusReply status = Status();
    for (const auto& c : status.counters()) {
      if (c.action() == action) return c;
    }
    return {};
  }
  uint64_t Succeeded(v1::Action action) { return CountersOf(action).succeeded(); }
  uint64_t Failed(v1::Action action) { return CountersOf(action).failed(); }
  // Requests of `action` that are queued or running.
  uint64_t Open(v1::Action action) {
    const v1::ActionCounters c = CountersOf(action);
    return c.queued() + c.assigned();
  }

  std::string StateLine(const std::string& path) { return cluster_.Client({"state", path}).out; }
  bool Released(const std::string& path) {
    return StateLine(path).find("released") != std::string::npos;
  }

  // Writes, archives and releases a file of `size` bytes; returns its content.
  std::string MakeReleased(const std::string& rel, uint64_t size, uint32_t seed) {
    const std::string path = P(rel);
    WriteFile(path, size, seed);
    std::string content = Slurp(path);
    MustRun({"archive", "--wait", path});
    MustRun({"release", path});
    EXPECT_TRUE(Released(path)) << StateLine(path);
    EXPECT_FALSE(HasData(path));
    return content;
  }
};

TEST_P(HsmTest, CatAndDdOfAReleasedFileRestoreItOnce) {
  StartWatchingMover();
  const std::string content = MakeReleased("a", 3 * kMiB + 123, 1);
  CommandResult cat = testing::Run({"/bin/cat", P("a")}, std::chrono::seconds(120));
  ASSERT_EQ(cat.exit_code, 0) << Describe(cat) << cluster_.Logs();
  EXPECT_TRUE(cat.out == content) << "cat read " << cat.out.size() << " bytes";
  EXPECT_FALSE(Released(P("a"))) << StateLine(P("a"));
  // Now resident: dd at an offset reads without another restore.
  CommandResult dd = testing::Run({"/bin/dd", "if=" + P("a"), "bs=4096", "skip=100", "count=2",
                          "status=none"});
  ASSERT_EQ(dd.exit_code, 0) << Describe(dd);
  EXPECT_TRUE(dd.out == content.substr(100 * 4096, 8192));
  EXPECT_EQ(Succeeded(v1::RESTORE), 1u);

  // dd of a second released file, at an offset (lseek then read).
  const std::string second = MakeReleased("b", 2 * kMiB, 2);
  ChildOutcome part = ReadRange(P("b"), 1234567, 1000);
  ASSERT_EQ(part.err, 0) << strerror(part.err);
  EXPECT_TRUE(part.data == second.substr(1234567, 1000));
  EXPECT_EQ(Succeeded(v1::RESTORE), 2u);
}

TEST_P(HsmTest, MmapOfAReleasedFileSeesItsData) {
  StartWatchingMover();
  const std::string content = MakeReleased("m", 5 * kMiB + 17, 3);
  ChildOutcome o = InChild([&] {
    int fd = open(P("m").c_str(), O_RDONLY);
    if (fd < 0) return ChildOutcome{errno, ""};
    void* p = mmap(nullptr, content.size(), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return ChildOutcome{errno, ""};
    ChildOutcome out{0, std::string(static_cast<const char*>(p), content.size())};
    munmap(p, content.size());
    close(fd);
    return out;
  });
  ASSERT_EQ(o.err, 0) << strerror(o.err) << cluster_.Logs();
  EXPECT_TRUE(o.data == content) << (AllZero(o.data) ? "read zeros" : "read other bytes");
}

TEST_P(HsmTest, AReleasedProgramRuns) {
  StartWatchingMover();
  const std::string bin = P("echo");
  fs::copy_file("/bin/echo", bin);
  chmod(bin.c_str(), 0755);
  MustRun({"archive", "--wait", bin});
  MustRun({"release", bin});
  ASSERT_TRUE(Released(bin));
  CommandResult r = testing::Run({bin, "restored", "and", "running"}, std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << Describe(r) << cluster_.Logs();
  EXPECT_EQ(r.out, "restored and running\n");
}

TEST_P(HsmTest, TruncatingAReleasedFileRestoresItFirst) {
  StartWatchingMover();
  const std::string small = MakeReleased("small", 1 * kMiB, 4);
  const std::string large = MakeReleased("large", 1 * kMiB, 5);
  ASSERT_EQ(testing::Run({"/usr/bin/truncate", "-s", "1000", P("small")}).exit_code, 0);
  ASSERT_EQ(testing::Run({"/usr/bin/truncate", "-s", std::to_string(3 * kMiB), P("large")}).exit_code, 0);
  EXPECT_TRUE(Slurp(P("small")) == small.substr(0, 1000));
  std::string grown = Slurp(P("large"));
  ASSERT_EQ(grown.size(), 3 * kMiB);
  EXPECT_TRUE(grown.substr(0, kMiB) == large);
  EXPECT_TRUE(AllZero(grown.substr(kMiB)));
  // The files changed after their archive: dirty, and release refuses them.
  EXPECT_NE(StateLine(P("small")).find("dirty"), std::string::npos) << StateLine(P("small"));
  EXPECT_NE(cluster_.Client({"release", P("small")}).exit_code, 0);
}

TEST_P(HsmTest, TenReadersOfOneReleasedFileShareOneRestore) {
  // A slow restore keeps the readers waiting together.
  StartWatchingMover({"--bandwidth", "8"});
  const std::string content = MakeReleased("shared", 8 * kMiB, 6);
  std::vector<std::unique_ptr<Process>> readers;
  for (int i = 0; i < 10; ++i) {
    readers.push_back(std::make_unique<Process>(
        std::vector<std::string>{"/bin/sh", "-c", "cat '" + P("shared") + "' > '" +
                                                      cluster_.dir() / ("out" + std::to_string(i)) +
                                                      "'"},
        cluster_.dir() / ("reader" + std::to_string(i) + ".log")));
  }
  for (auto& r : readers) {
    ASSERT_TRUE(WaitFor([&] { return !r->running(); }, std::chrono::seconds(120)))
        << cluster_.Logs();
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(Slurp(cluster_.dir() / ("out" + std::to_string(i))) == content) << "reader " << i;
  }
  EXPECT_EQ(Succeeded(v1::RESTORE), 1u);
}

TEST_P(HsmTest, AKilledReaderDoesNotStopTheRestore) {
  StartWatchingMover({"--bandwidth", "4"});
  const std::string content = MakeReleased("k", 8 * kMiB, 7);
  Process reader({"/bin/cat", P("k")}, cluster_.dir() / "reader.log");
  ASSERT_TRUE(WaitFor([&] { return Open(v1::RESTORE) == 1; })) << cluster_.Logs();
  reader.Stop(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return Succeeded(v1::RESTORE) == 1; }, std::chrono::seconds(120)))
      << cluster_.Logs();
  EXPECT_FALSE(Released(P("k")));
  EXPECT_TRUE(Slurp(P("k")) == content);
}

TEST_P(HsmTest, RemoveOverwriteAndRenameWhileTheRestoreRuns) {
  StartWatchingMover({"--bandwidth", "4"});
  MakeReleased("gone", 8 * kMiB, 8);
  const std::string over = MakeReleased("over", 8 * kMiB, 9);
  const std::string moved = MakeReleased("moved", 8 * kMiB, 10);

  // rm while a reader waits: the unlink goes through, the reader ends (data or EIO), nothing
  // hangs.
  // A restore is running once the mover has written data into the released file.
  Process r1({"/bin/cat", P("gone")}, cluster_.dir() / "r1.log");
  ASSERT_TRUE(WaitFor([&] { return HasData(P("gone")); })) << cluster_.Logs();
  ASSERT_EQ(testing::Run({"/bin/rm", "-f", P("gone")}).exit_code, 0);
  EXPECT_FALSE(fs::exists(P("gone")));
  ASSERT_TRUE(WaitFor([&] { return !r1.running(); }, std::chrono::seconds(120)));

  // cp over a released file while its restore runs: the new content wins, whole.
  const std::string fresh = cluster_.dir() / "fresh";
  WriteFile(fresh, 100000, 11);
  Process r2({"/bin/cat", P("over")}, cluster_.dir() / "r2.log");
  ASSERT_TRUE(WaitFor([&] { return HasData(P("over")); })) << cluster_.Logs();
  CommandResult cp = testing::Run({"/bin/cp", fresh, P("over")}, std::chrono::seconds(120));
  ASSERT_EQ(cp.exit_code, 0) << Describe(cp);
  EXPECT_TRUE(Slurp(P("over")) == Slurp(fresh));
  ASSERT_TRUE(WaitFor([&] { return !r2.running(); }, std::chrono::seconds(120)));

  // mv while the restore runs: the data arrives under the new name.
  Process r3({"/bin/cat", P("moved")}, cluster_.dir() / "r3.log");
  ASSERT_TRUE(WaitFor([&] { return HasData(P("moved")); })) << cluster_.Logs();
  ASSERT_EQ(testing::Run({"/bin/mv", P("moved"), P("moved2")}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return !r3.running(); }, std::chrono::seconds(120)));
  EXPECT_TRUE(Slurp(P("moved2")) == moved) << cluster_.Logs();
  EXPECT_FALSE(Released(P("moved2")));
}

TEST_P(HsmTest, WritesDuringArchiveFailItAndModifiedFilesBecomeDirty) {
  StartWatchingMover({"--bandwidth", "1"});  // 8 MiB: about 8 s of copy
  const std::string path = P("busy");
  WriteFile(path, 8 * kMiB, 12);
  MustRun({"archive", path});
  // The copy is under way once the mover has reported progress on it ("on m1 1.0 MiB/8.0
  // MiB"); the copy itself has no name in the archive until it is whole.
  auto copying = [&] { return cluster_.Client({"status"}).out.find("MiB/") != std::string::npos; };
  ASSERT_TRUE(WaitFor(copying)) << cluster_.Logs();
  {
    std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(4096);
    out << "changed while the copy ran";
  }
  ASSERT_TRUE(WaitFor([&] { return Failed(v1::ARCHIVE) == 1; }, std::chrono::seconds(120)))
      << cluster_.Logs();
  std::string st = StateLine(path);
  EXPECT_EQ(st.find("archived"), std::string::npos) << st;

  // An archived file that is then written becomes dirty without anyone asking.
  const std::string clean = P("clean");
  WriteFile(clean, 100000, 13);
  MustRun({"archive", "--wait", clean});
  {
    std::ofstream out(clean, std::ios::binary | std::ios::app);
    out << "more";
  }
  EXPECT_TRUE(WaitFor([&] { return StateLine(clean).find("dirty") != std::string::npos; }))
      << StateLine(clean);
}

TEST_P(HsmTest, ReleaseRefusesDirtyUnarchivedNoreleaseAndOpenFiles) {
  StartWatchingMover();
  WriteFile(P("new"), 1000, 14);
  CommandResult r = cluster_.Client({"release", P("new")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not archived"), std::string::npos) << Describe(r);

  WriteFile(P("dirty"), 1000, 15);
  MustRun({"archive", "--wait", P("dirty")});
  MustRun({"state", "--set", "dirty", P("dirty")});
  r = cluster_.Client({"release", P("dirty")});
  EXPECT_NE(r.exit_code, 0) << Describe(r);

  WriteFile(P("keep"), 1000, 16);
  MustRun({"archive", "--wait", P("keep")});
  MustRun({"state", "--set", "norelease", P("keep")});
  r = cluster_.Client({"release", P("keep")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("norelease"), std::string::npos) << Describe(r);

  WriteFile(P("open"), 1000, 17);
  MustRun({"archive", "--wait", P("open")});
  int fd = open(P("open").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  r = cluster_.Client({"release", P("open")});
  close(fd);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("open"), std::string::npos) << Describe(r);
  for (const char* name : {"new", "dirty", "keep", "open"}) {
    EXPECT_TRUE(HasData(P(name))) << name;
    EXPECT_FALSE(Released(P(name))) << name;
  }
}

TEST_P(HsmTest, MissingOrCorruptCopyGivesReadersEioAndShowsTheError) {
  StartWatchingMover();
  auto copies = [&] {
    std::set<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(cluster_.archive())) {
      if (e.is_regular_file()) out.insert(e.path().string());
    }
    return out;
  };
  MakeReleased("lost", 100000, 18);
  std::set<std::string> first = copies();
  ASSERT_EQ(first.size(), 1u);
  MakeReleased("bad", 100000, 19);
  std::set<std::string> both = copies();
  ASSERT_EQ(both.size(), 2u);
  both.erase(*first.begin());
  fs::remove(*first.begin());  // the copy of "lost" is gone
  {
    std::fstream f(*both.begin(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(10);
    f << "XXXX";  // the copy of "bad" is damaged
  }
  for (const char* name : {"lost", "bad"}) {
    ChildOutcome o = ReadRange(P(name), 0, 100000);
    EXPECT_EQ(o.err, EIO) << name << ": " << strerror(o.err) << " read " << o.data.size();
    EXPECT_TRUE(o.data.empty()) << name << " read bytes";
    EXPECT_TRUE(Released(P(name))) << StateLine(P(name));
    EXPECT_FALSE(HasData(P(name)));
  }
  std::string state = cluster_.Client({"state", P("lost"), P("bad")}).out;
  EXPECT_NE(state.find("error"), std::string::npos) << state;
  std::string status = cluster_.Client({"status"}).out;
  EXPECT_NE(status.find("failed"), std::string::npos) << status;
}

TEST_P(HsmTest, ReadersWaitThroughAWatcherCrashAndNeverSeeZeros) {
  StartWatchingMover();
  const std::string content = MakeReleased("w", 4 * kMiB, 20);
  // Nothing is dispatched while locked, so the reader is still waiting when the mover (and its
  // watcher) is killed.
  MustRun({"lock"});
  Process reader({"/bin/sh", "-c", "cat '" + P("w") + "' > '" + cluster_.dir() / "w.out" + "'"},
                 cluster_.dir() / "w.log");
  ASSERT_TRUE(WaitFor([&] { return Open(v1::RESTORE) == 1; })) << cluster_.Logs();
  cluster_.KillMover("m1", SIGKILL);
  MustRun({"unlock"});
  EXPECT_TRUE(reader.running()) << "the reader finished without a watcher: " << Slurp(cluster_.dir() / "w.out").size();
  StartWatchingMover();
  ASSERT_TRUE(WaitFor([&] { return !reader.running(); }, std::chrono::seconds(180)))
      << cluster_.Logs();
  std::string got = Slurp(cluster_.dir() / "w.out");
  EXPECT_FALSE(AllZero(got));
  EXPECT_TRUE(got == content) << "read " << got.size() << " bytes";
}

TEST_P(HsmTest, FlagsRefuseArchiveReleaseAndRestore) {
  StartWatchingMover();
  WriteFile(P("na"), 1000, 21);
  MustRun({"state", "--set", "noarchive", P("na")});
  CommandResult r = cluster_.Client({"archive", "--wait", P("na")});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(StateLine(P("na")).find("archived"), std::string::npos);
  CommandResult bad = cluster_.Client({"state", "--set", "bogus", P("na")});
  EXPECT_EQ(bad.exit_code, 2) << Describe(bad);

  MakeReleased("gone", 1000, 22);
  MustRun({"state", "--set", "lost", P("gone")});
  r = cluster_.Client({"restore", "--wait", P("gone")});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  ChildOutcome o = ReadRange(P("gone"), 0, 1000);
  EXPECT_EQ(o.err, EIO);
}

TEST_P(HsmTest, LastUnlinkRemovesTheArchiveCopyWhenAsked) {
  StartWatchingMover({"--remove-archive-on-last-unlink"});
  WriteFile(P("u"), 1000, 23);
  MustRun({"archive", "--wait", P("u")});
  auto copies = [&] {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(cluster_.archive())) {
      n += e.is_regular_file() ? 1 : 0;
    }
    return n;
  };
  ASSERT_EQ(copies(), 1u);
  fs::remove(P("u"));
  if (GetParam() == "btrfs") {
    // A btrfs file handle needs the subvolume root, which a file id does not keep, so the
    // mover cannot prove the file gone: it refuses, and the copy stays.
    EXPECT_TRUE(WaitFor([&] { return Failed(v1::REMOVE) == 1; })) << cluster_.Logs();
    EXPECT_EQ(copies(), 1u);
    return;
  }
  EXPECT_TRUE(WaitFor([&] { return copies() == 0; })) << cluster_.Logs();
}

TEST_P(HsmTest, WithoutThePolicyOrphanedCopiesAreListed) {
  StartWatchingMover();
  WriteFile(P("o"), 1000, 24);
  WriteFile(P("kept"), 1000, 25);
  MustRun({"archive", "--wait", P("o"), P("kept")});
  fs::remove(P("o"));
  CommandResult r = MustRun({"orphans", "--fs", cluster_.fs(), "--archive", cluster_.archive()});
  // One orphan line plus a summary; the kept file's copy is not listed.
  EXPECT_NE(r.out.find("orphans: 1 of 2 archive copies"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Filesystems, HsmTest, ::testing::Values("ext4", "xfs", "btrfs"));

}  // namespace
}  // namespace tierflow::testing
