// Tests of the local client verbs on real files: `state --set/--clear` (lfs hsm_set's rules and
// the exit codes), `release` refusals, and `orphans` against a real posix archive.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "cli/cli_app.h"
#include "cli/run_args.h"
#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/fs_test_support.h"
#include "mover/fs/local_fs.h"

namespace tierflow::cli {
namespace {

using mover::testing::TempDir;
using mover::testing::WriteFile;

std::string Describe(const Ran& r) {
  return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

class LocalVerbsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "no scratch filesystem with trusted xattrs";
    fs_ = dir_ / "fs";
    archive_ = dir_ / "archive";
    ASSERT_EQ(::mkdir(fs_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(archive_.c_str(), 0755), 0);
    auto b = mover::PosixBackend::Open({archive_});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(*b);
  }

  std::string File(const std::string& name, const std::string& data = "data") {
    std::string path = fs_ + "/" + name;
    WriteFile(path, data);
    return path;
  }
  hsm::FileId Archive(const std::string& path, uint32_t archive_id = 1) {
    auto id = mover::IdentifyFile(path);
    EXPECT_TRUE(id.ok());
    Status st = mover::ArchiveFile(path, *id, archive_id, *backend_, {});
    EXPECT_TRUE(st.ok()) << st.ToString();
    return *id;
  }
  uint32_t States(const std::string& path) {
    auto s = mover::GetFileState(path);
    EXPECT_TRUE(s.ok());
    return s.ok() ? s->record.states : 0;
  }

  TempDir dir_;
  std::string fs_, archive_;
  std::unique_ptr<mover::PosixBackend> backend_;
};

TEST_F(LocalVerbsTest, StateSetAndClearChangeTheFlagsAndShowTheResult) {
  std::string f = File("f");
  Ran r = RunArgs({"state", "--set", "norelease,noarchive", f});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_EQ(States(f), hsm::kStateNoRelease | hsm::kStateNoArchive);
  EXPECT_NE(r.out.find("norelease noarchive"), std::string::npos) << r.out;

  r = RunArgs({"state", "--clear", "noarchive", "--set", "NoRelease", f});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_EQ(States(f), hsm::kStateNoRelease);

  r = RunArgs({"state", "--clear", "norelease", "--clear", "noarchive", "--json", f});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_EQ(States(f), 0u);
  EXPECT_NE(r.out.find("\"state_bits\":0"), std::string::npos) << r.out;
}

TEST_F(LocalVerbsTest, AnUnknownFlagIsAUsageErrorNamingIt) {
  std::string f = File("f");
  Ran r = RunArgs({"state", "--set", "norelease,frozen", f});
  EXPECT_EQ(r.code, kExitUsage) << Describe(r);
  EXPECT_NE(r.err.find("'frozen'"), std::string::npos) << r.err;
  EXPECT_EQ(States(f), 0u) << "nothing may change on a usage error";
  r = RunArgs({"state", "--clear", "", f});
  EXPECT_EQ(r.code, kExitUsage) << Describe(r);
}

TEST_F(LocalVerbsTest, RefusalsFollowLustresRulesAndExitOne) {
  std::string f = File("f");
  // dirty needs an archive copy (exists).
  Ran r = RunArgs({"state", "--set", "dirty", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("dirty requires exists"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(f), std::string::npos) << r.err;
  // Only norelease, noarchive and dirty are the user's, and lost root's (these tests run as
  // root); released, archived and exists are never set by hand.
  for (const char* flag : {"released", "archived", "exists"}) {
    r = RunArgs({"state", "--set", flag, f});
    EXPECT_EQ(r.code, kExitFailed) << flag << ": " << Describe(r);
    EXPECT_NE(r.err.find("cannot be set by hand"), std::string::npos) << r.err;
  }
  r = RunArgs({"state", "--set", "lost", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("lost requires archived"), std::string::npos) << r.err;
  r = RunArgs({"state", "--set", "norelease", "--clear", "norelease", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("both set and cleared"), std::string::npos) << r.err;
  EXPECT_EQ(States(f), 0u);
}

TEST_F(LocalVerbsTest, DirtyOnAnArchivedFileBlocksItsRelease) {
  std::string f = File("f");
  Archive(f);
  Ran r = RunArgs({"state", "--set", "dirty", f});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_NE(States(f) & hsm::kStateDirty, 0u);
  r = RunArgs({"release", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("dirty"), std::string::npos) << r.err;
  EXPECT_EQ(States(f) & hsm::kStateReleased, 0u);
  // Clearing dirty does not make the copy trustworthy again: only a new archive does.
  r = RunArgs({"state", "--clear", "dirty", f});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  r = RunArgs({"release", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("archive it again"), std::string::npos) << r.err;
  Archive(f);
  r = RunArgs({"release", f});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  // A released file cannot be made dirty (released and dirty exclude each other).
  r = RunArgs({"state", "--set", "dirty", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("released and dirty"), std::string::npos) << r.err;
}

TEST_F(LocalVerbsTest, NoreleaseBlocksRelease) {
  std::string f = File("f");
  Archive(f);
  ASSERT_EQ(RunArgs({"state", "--set", "norelease", f}).code, kExitOk);
  Ran r = RunArgs({"release", f});
  EXPECT_EQ(r.code, kExitFailed) << Describe(r);
  EXPECT_NE(r.err.find("norelease"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("0 released, 1 failed"), std::string::npos) << r.out;
}

TEST_F(LocalVerbsTest, OrphansListsCopiesNoFileRefersTo) {
  std::string a = File("a"), b = File("b"), c = File("sub-c");
  Archive(a);
  hsm::FileId gone = Archive(b);
  Archive(c);
  ASSERT_EQ(::unlink(b.c_str()), 0);
  const std::string gone_ref = backend_->RelativePath(gone.fid);

  Ran r = RunArgs({"orphans", "--fs", fs_, "--archive", archive_});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), gone_ref + " " + gone.fid.ToString()) << r.out;
  EXPECT_NE(r.out.find("orphans: 1 of 3 archive copies"), std::string::npos) << r.out;

  r = RunArgs({"orphans", "--fs", fs_, "--archive", archive_, "--json"});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("\"orphans\":[{\"object_ref\":\"" + gone_ref + "\",\"fid\":\"" +
                       gone.fid.ToString() + "\"}]"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"copies\":3"), std::string::npos) << r.out;

  // In another archive id no file refers to any copy.
  r = RunArgs({"orphans", "--fs", fs_, "--archive", archive_, "--archive-id", "2"});
  ASSERT_EQ(r.code, kExitOk) << Describe(r);
  EXPECT_NE(r.out.find("orphans: 3 of 3"), std::string::npos) << r.out;
}

TEST_F(LocalVerbsTest, OrphansNeedsBothDirectories) {
  EXPECT_EQ(RunArgs({"orphans", "--fs", fs_}).code, kExitUsage);
  EXPECT_EQ(RunArgs({"orphans", "--fs", "/no/such/dir", "--archive", archive_}).code, kExitUsage);
}

}  // namespace
}  // namespace tierflow::cli
