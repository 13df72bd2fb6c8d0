// End to end on real processes: a coordinator and a mover on loopback, driven by the tierflow
// command, archive -> release -> restore a tree of files and compare every byte and attribute.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "support/cluster_fixture.h"
#include "support/tree.h"

namespace tierflow::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1ull << 30;

// Every regular file below `root`, as absolute paths.
std::vector<std::string> FilesUnder(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

class SpineTest : public ::testing::Test, protected ClusterCommands {
 protected:
  void SetUp() override {
    cluster_.StartCoordinator();
    cluster_.StartMover("m1");
  }

  std::string StateLine(const std::string& path) {
    CommandResult r = cluster_.Client({"state", path});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return r.out;
  }

  // Flips one byte of the archive's only copy (at offset 4242).
  void CorruptTheOnlyArchiveCopy() {
    const std::vector<std::string> copies = FilesUnder(cluster_.archive());
    ASSERT_EQ(copies.size(), 1u);
    int fd = open(copies[0].c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char c;
    ASSERT_EQ(pread(fd, &c, 1, 4242), 1);
    c ^= 0x5a;
    ASSERT_EQ(pwrite(fd, &c, 1, 4242), 1);
    close(fd);
  }
};

TEST_F(SpineTest, ArchiveReleaseRestoreTreePreservesEveryByteAndAttribute) {
  fs::create_directories(P("deep/a/b/c/d/e/f/g/h"));
  fs::create_directories(P("odd dir"));
  WriteFile(P("empty"), 0, 1);
  WriteFile(P("small"), 4097, 2);
  WriteFile(P("deep/a/b/c/d/e/f/g/h/leaf"), 123457, 3);
  WriteFile(P("odd dir/name with spaces"), 5000, 4);
  WriteFile(P("odd dir/new\nline"), 6000, 5);
  WriteFile(P("odd dir/quote\"and'tab\t"), 7000, 6);
  WriteSparseFile(P("sparse"), 1 * kGiB, {0, 256 * kMiB, 1 * kGiB - 65536}, 65536, 7);
  WriteFile(P("big"), 1 * kGiB, 8);
  chmod(P("small").c_str(), 0640);
  chown(P("small").c_str(), 1234, 5678);
  setxattr(P("small").c_str(), "user.project", "hsm", 3, 0);
  struct timespec times[2] = {{1600000000, 123456789}, {1500000000, 987654321}};
  utimensat(AT_FDCWD, P("deep/a/b/c/d/e/f/g/h/leaf").c_str(), times, 0);
  auto before = SnapshotTree(cluster_.fs());
  ASSERT_EQ(before.size(), 8u);

  MustRun({"archive", "--wait", cluster_.fs()});
  for (const auto& f : FilesUnder(cluster_.fs())) {
    EXPECT_NE(StateLine(f).find("exists archived"), std::string::npos) << f;
  }

  MustRun({"release", cluster_.fs()});
  for (const auto& f : FilesUnder(cluster_.fs())) {
    std::string line = StateLine(f);
    EXPECT_NE(line.find("(0x0000000d) released exists archived, archive_id:1"), std::string::npos)
        << line;
    EXPECT_FALSE(HasData(f)) << "release punches all data of " << f;
  }
  EXPECT_EQ(fs::file_size(P("big")), 1 * kGiB) << "release keeps the size";

  MustRun({"restore", "--wait", cluster_.fs()});
  auto after = SnapshotTree(cluster_.fs());
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [rel, snap] : before) {
    ASSERT_TRUE(after.count(rel)) << rel;
    EXPECT_EQ(after[rel], snap) << "round trip changed " << rel;
  }
  EXPECT_LT(AllocatedBytes(P("sparse")), 16 * kMiB) << "sparse file stays sparse";
  EXPECT_NE(StateLine(P("big")).find("(0x00000009) exists archived"), std::string::npos);

  MustRun({"remove", "--wait", P("small")});
  EXPECT_NE(StateLine(P("small")).find("(0x00000000)"), std::string::npos);
  EXPECT_TRUE(FilesUnder(cluster_.archive()).size() == before.size() - 1)
      << "remove deletes exactly one archive copy";
}

TEST_F(SpineTest, StateJsonListsStatesOnePerLine) {
  WriteFile(P("a"), 100, 1);
  WriteFile(P("b\nc"), 100, 2);
  MustRun({"archive", "--wait", P("a")});
  MustRun({"release", P("a")});
  CommandResult r = MustRun({"state", "--json", P("a"), P("b\nc")});
  std::vector<std::string> lines;
  std::stringstream ss(r.out);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_NE(lines[0].find("\"states\":[\"released\",\"exists\",\"archived\"]"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find("\"archive_id\":1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("b\\nc"), std::string::npos) << "newline escaped: " << lines[1];
}

TEST_F(SpineTest, MissingPathAndSpecialFileAreClearErrors) {
  CommandResult r = cluster_.Client({"archive", P("no-such-file")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no-such-file"), std::string::npos) << Describe(r);

  ASSERT_EQ(mkfifo(P("fifo").c_str(), 0644), 0);
  r = cluster_.Client({"archive", P("fifo")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("fifo"), std::string::npos) << Describe(r);

  r = cluster_.Client({"release", cluster_.fs() + "/no-such-dir/x"});
  EXPECT_NE(r.exit_code, 0);

  r = cluster_.Client({"archive", "--archive-id", "not-a-number", P("x")});
  EXPECT_EQ(r.exit_code, 2) << "usage errors exit 2: " << Describe(r);
}

TEST_F(SpineTest, ReleaseRefusesUnarchivedAndModifiedFiles) {
  WriteFile(P("plain"), 1000, 1);
  CommandResult r = cluster_.Client({"release", P("plain")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("plain"), std::string::npos) << Describe(r);
  EXPECT_TRUE(HasData(P("plain"))) << "data untouched";

  WriteFile(P("changed"), 1000, 2);
  MustRun({"archive", "--wait", P("changed")});
  {
    std::ofstream out(P("changed"), std::ios::app);
    out << "more data";
  }
  r = cluster_.Client({"release", P("changed")});
  EXPECT_NE(r.exit_code, 0) << "a file modified since its archive must not be released";
  EXPECT_TRUE(HasData(P("changed")));
  EXPECT_EQ(StateLine(P("changed")).find("released"), std::string::npos);
}

TEST_F(SpineTest, ArchiveIdWithoutMoverStaysQueuedAndStatusSaysWhy) {
  WriteFile(P("f"), 1000, 1);
  MustRun({"archive", "--archive-id", "7", P("f")});
  CommandResult r = MustRun({"status"});
  EXPECT_NE(r.out.find("archive id 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--archive-id 7"), std::string::npos) << "says what to do: " << r.out;
  r = MustRun({"status", "--json"});
  EXPECT_NE(r.out.find("archive id 7"), std::string::npos) << r.out;
  EXPECT_EQ(StateLine(P("f")).find("archived"), std::string::npos);
}

TEST_F(SpineTest, CancelEndsAQueuedRequestAtOnce) {
  WriteFile(P("f"), 1000, 1);
  MustRun({"archive", "--archive-id", "7", P("f")});  // no mover serves 7: stays queued
  MustRun({"cancel", P("f")});
  CommandResult r = MustRun({"status", "--json"});
  EXPECT_NE(r.out.find("\"canceled\":\"1\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("archive id 7"), std::string::npos) << "nothing left queued: " << r.out;
  EXPECT_EQ(StateLine(P("f")).find("archived"), std::string::npos);
}

TEST_F(SpineTest, CorruptArchiveCopyFailsRestoreAndFileStaysReleased) {
  WriteFile(P("precious"), 300000, 9);
  auto before = Snapshot(P("precious"));
  MustRun({"archive", "--wait", P("precious")});
  MustRun({"release", P("precious")});
  ASSERT_NO_FATAL_FAILURE(CorruptTheOnlyArchiveCopy());
  CommandResult r = cluster_.Client({"restore", "--wait", P("precious")});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_NE((r.out + r.err).find("checksum"), std::string::npos) << Describe(r);
  std::string state = StateLine(P("precious"));
  EXPECT_NE(state.find("released"), std::string::npos) << state;
  EXPECT_NE(state.find("checksum"), std::string::npos) << "state shows the error: " << state;
  EXPECT_FALSE(HasData(P("precious"))) << "failed restore leaves the data punched";
  r = MustRun({"status"});
  EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
}

// Linux file names are bytes: a name that is not UTF-8 (Latin-1 here) is archived, released
// and restored like any other, is listed by status, and an error that names it reaches the
// coordinator and the command (protobuf strings must be UTF-8; such a path travels as bytes).
TEST_F(SpineTest, AFileNameThatIsNotUtf8GoesThroughEveryAction) {
  const std::string name = "caf\xe9 \xff.dat";
  WriteFile(P(name), 300000, 3);
  const auto before = Snapshot(P(name));
  MustRun({"archive", "--wait", P(name)});
  MustRun({"release", P(name)});
  EXPECT_FALSE(HasData(P(name)));
  MustRun({"restore", "--wait", P(name)});
  EXPECT_EQ(Snapshot(P(name)), before);
  CommandResult r = MustRun({"status", "--state", "succeeded", "--action", "restore"});
  EXPECT_NE(r.out.find(name), std::string::npos) << "the listing shows the name:\n" << r.out;
  r = MustRun({"status", "--json", "--state", "succeeded", "--action", "restore"});
  EXPECT_NE(r.out.find("\"raw_path\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("caf\\\\xe9 \\\\xff.dat"), std::string::npos) << "readable too: " << r.out;

  // A corrupt copy: the restore fails with an error that names the file.
  MustRun({"release", P(name)});
  ASSERT_NO_FATAL_FAILURE(CorruptTheOnlyArchiveCopy());
  r = cluster_.Client({"restore", "--wait", P(name)});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_NE((r.out + r.err).find("checksum"), std::string::npos) << Describe(r) << cluster_.Logs();
  EXPECT_FALSE(HasData(P(name)));
}

TEST(SpineMoverTest, UnwritableArchiveRootIsRefusedAtStart) {
  Cluster cluster;
  cluster.StartCoordinator();
  std::string ro = cluster.dir() / "ro";
  mkdir(ro.c_str(), 0755);
  ASSERT_EQ(mount(cluster.archive().c_str(), ro.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_EQ(mount(nullptr, ro.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), 0);
  CommandResult r = tierflow::testing::Run({TierflowBinary(), "mover", "--coordinator", cluster.address(), "--id", "m",
                         "--archive-id", "1", "--posix-root", ro},
                        std::chrono::seconds(30));
  umount(ro.c_str());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(ro), std::string::npos) << Describe(r);
  EXPECT_NE(r.err.find("writable"), std::string::npos) << Describe(r);
}

// kill -9 of the coordinator while requests are queued and running: after a restart every
// acknowledged request completes, and every archive copy restores to the original bytes.
TEST(SpineCrashTest, CoordinatorKilledWhileRequestsQueuedAndRunning) {
  Cluster cluster;
  cluster.StartCoordinator();
  cluster.StartMover("m1", {"--max-archive", "2"});
  const int kFiles = 60;
  for (int i = 0; i < kFiles; ++i) {
    WriteFile(cluster.fs() + "/f" + std::to_string(i), (i % 7) * 3 * kMiB + i, i);
  }
  auto before = SnapshotTree(cluster.fs());
  CommandResult r = cluster.Client({"archive", cluster.fs()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);  // acknowledged: durable from here on

  // Let some work start, then kill the coordinator mid-flight.
  WaitFor([&] { return !FilesUnder(cluster.archive()).empty(); }, std::chrono::seconds(60));
  cluster.KillCoordinator(SIGKILL);
  cluster.StartCoordinator();

  bool all_archived = WaitFor(
      [&] {
        for (int i = 0; i < kFiles; ++i) {
          CommandResult s = cluster.Client({"state", cluster.fs() + "/f" + std::to_string(i)});
          if (s.out.find("archived") == std::string::npos) return false;
        }
        return true;
      },
      std::chrono::seconds(180));
  ASSERT_TRUE(all_archived) << cluster.Logs();

  ASSERT_EQ(cluster.Client({"release", cluster.fs()}).exit_code, 0);
  r = cluster.Client({"restore", "--wait", cluster.fs()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r) << cluster.Logs();
  EXPECT_EQ(SnapshotTree(cluster.fs()), before);
  EXPECT_EQ(FilesUnder(cluster.archive()).size(), size_t(kFiles)) << "one copy per file, no temporaries";
}

}  // namespace
}  // namespace tierflow::testing
