// The user's HSM flags, orphaned archive copies and the removal of a deleted file's copy, on
// real processes: a coordinator and a mover on loopback, driven by the tierflow command (and,
// for the deleted file, by the REMOVE request the watching mover submits).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/hsm_record.h"
#include "mover/fs/local_fs.h"
#include "mover/fs/loop_mount_test_support.h"
#include "support/cluster_fixture.h"
#include "support/tree.h"
#include "tierflow.grpc.pb.h"
#include "watch/holder.h"
#include "watch/unlink.h"

namespace tierflow::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

class FlagsTest : public ::testing::Test, protected ClusterCommands {
 protected:
  void SetUp() override {
    cluster_.StartCoordinator();
    cluster_.StartMover("m1");
  }
  std::string CopyOf(const std::string& path) {
    auto st = mover::GetFileState(path);
    EXPECT_TRUE(st.ok());
    return cluster_.archive() + "/" + st->record.object_ref;
  }
};

TEST_F(FlagsTest, NoarchiveRefusesArchiveAndNoreleaseRefusesRelease) {
  WriteFile(P("f"), 5000, 1);
  MustRun({"state", "--set", "noarchive,norelease", P("f")});
  CommandResult r = cluster_.Client({"archive", "--wait", P("f")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("noarchive"), std::string::npos) << Describe(r);

  MustRun({"state", "--clear", "noarchive", P("f")});
  MustRun({"archive", "--wait", P("f")});
  r = cluster_.Client({"release", P("f")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("norelease"), std::string::npos) << Describe(r);
  EXPECT_TRUE(HasData(P("f")));

  MustRun({"state", "--clear", "norelease", P("f")});
  MustRun({"release", P("f")});
  EXPECT_FALSE(HasData(P("f")));
}

TEST_F(FlagsTest, BadFlagsAreUsageErrorsAndRuleBreaksAreRefusals) {
  WriteFile(P("f"), 100, 1);
  CommandResult r = cluster_.Client({"state", "--set", "sticky", P("f")});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("sticky"), std::string::npos) << Describe(r);
  r = cluster_.Client({"state", "--set", "dirty", P("f")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("dirty requires exists"), std::string::npos) << Describe(r);
  r = cluster_.Client({"state", "--set", "lost", P("f")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("lost requires archived"), std::string::npos) << Describe(r);
}

TEST_F(FlagsTest, ALostFileRefusesRestore) {
  WriteFile(P("f"), 5000, 1);
  MustRun({"archive", "--wait", P("f")});
  MustRun({"release", P("f")});
  // Edit the record the way an archive's own tools would (root may also `state --set lost`).
  char buf[8192];
  ssize_t n = ::getxattr(P("f").c_str(), mover::kRecordXattr, buf, sizeof(buf));
  ASSERT_GT(n, 0);
  auto rec = mover::DecodeRecord(std::string_view(buf, static_cast<size_t>(n)));
  ASSERT_TRUE(rec.ok());
  rec->states |= hsm::kStateLost;
  std::string bytes = mover::EncodeRecord(*rec);
  ASSERT_EQ(::setxattr(P("f").c_str(), mover::kRecordXattr, bytes.data(), bytes.size(), 0), 0);

  CommandResult r = cluster_.Client({"restore", "--wait", P("f")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("lost"), std::string::npos) << Describe(r);
  EXPECT_FALSE(HasData(P("f"))) << "a lost file stays released";
}

TEST_F(FlagsTest, OrphansListsTheCopiesOfDeletedFiles) {
  WriteFile(P("keep"), 1000, 1);
  WriteFile(P("gone"), 1000, 2);
  MustRun({"archive", "--wait", P("keep"), P("gone")});
  auto gone = mover::IdentifyFile(P("gone"));
  ASSERT_TRUE(gone.ok());
  const std::string ref = CopyOf(P("gone")).substr(cluster_.archive().size() + 1);
  ASSERT_EQ(::unlink(P("gone").c_str()), 0);

  CommandResult r = MustRun({"orphans", "--fs", cluster_.fs(), "--archive", cluster_.archive()});
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), ref + " " + gone->fid.ToString()) << Describe(r);
  EXPECT_NE(r.out.find("orphans: 1 of 2 archive copies"), std::string::npos) << Describe(r);
}

// The REMOVE that a watching mover submits for a file whose last link went away: the mover
// deletes the copy once the filesystem proves the file is gone, and keeps it otherwise.
TEST_F(FlagsTest, TheRemoveRequestOfADeletedFileDeletesItsCopy) {
  WriteFile(P("gone"), 1000, 1);
  WriteFile(P("alive"), 1000, 2);
  MustRun({"archive", "--wait", P("gone"), P("alive")});
  auto gone = mover::IdentifyFile(P("gone"));
  auto alive = mover::IdentifyFile(P("alive"));
  ASSERT_TRUE(gone.ok() && alive.ok());
  const std::string gone_copy = CopyOf(P("gone")), alive_copy = CopyOf(P("alive"));
  ASSERT_EQ(::unlink(P("gone").c_str()), 0);

  auto stub = v1::Coordinator::NewStub(
      grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials()));
  v1::SubmitRequest submit;
  *submit.add_requests() = watch::UnlinkedRemoveSpec(*gone, cluster_.fs());
  *submit.add_requests() = watch::UnlinkedRemoveSpec(*alive, cluster_.fs());
  v1::SubmitReply reply;
  grpc::ClientContext submit_ctx;
  submit_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(stub->Submit(&submit_ctx, submit, &reply).ok());
  ASSERT_EQ(reply.accepted_size(), 2);

  v1::WaitRequest wait;
  for (const v1::Accepted& a : reply.accepted()) wait.add_ids(a.id());
  grpc::ClientContext wait_ctx;
  wait_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto stream = stub->Wait(&wait_ctx, wait);
  std::map<uint64_t, v1::RequestInfo> last;
  v1::WaitUpdate update;
  while (stream->Read(&update)) {
    for (const v1::RequestInfo& info : update.requests()) last[info.id()] = info;
  }
  ASSERT_EQ(last.size(), 2u) << cluster_.Logs();
  const v1::RequestInfo& removed = last[reply.accepted(0).id()];
  const v1::RequestInfo& kept = last[reply.accepted(1).id()];
  EXPECT_EQ(removed.state(), v1::SUCCEEDED) << removed.error() << "\n" << cluster_.Logs();
  EXPECT_FALSE(Exists(gone_copy));
  EXPECT_EQ(kept.state(), v1::FAILED);
  EXPECT_NE(kept.error().find("still exists"), std::string::npos) << kept.error();
  EXPECT_TRUE(Exists(alive_copy));
}

// On a filesystem whose fanotify holder watches it, release's own punch must pass the holder:
// the record already says released when the punch starts, so without a pass the holder would
// hold the punch for a restore that no watcher is there to run, and release would hang.
// Known cost: the holder cannot read the punch's event while release holds its write lease
// (opening the event's descriptor breaks the lease), so today the punch waits for the kernel's
// lease-break-time (45 s by default) before it passes.
TEST(FlagsHolderTest, ReleasePassesTheHolderOfAWatchedFilesystem) {
  mover::testing::LoopMount fs("ext4");
  ASSERT_TRUE(fs.ok());
  TempDir run, archive;
  ASSERT_EQ(::setenv("TIERFLOW_RUN_DIR", run.path().c_str(), 1), 0);
  auto holder = watch::Holder::Start({fs.path(), ""});
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  std::thread serve([h = holder->get()] { h->Run(); });
  struct StopHolder {  // also when an assertion below returns early
    watch::Holder* h;
    std::thread* t;
    ~StopHolder() {
      h->Stop();
      t->join();
      ::unsetenv("TIERFLOW_RUN_DIR");
    }
  } stop{holder->get(), &serve};

  const std::string f = fs / "f";
  WriteFile(f, 100000, 7);
  auto backend = mover::PosixBackend::Open({archive.path()});
  ASSERT_TRUE(backend.ok());
  auto id = mover::IdentifyFile(f);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(mover::ArchiveFile(f, *id, 1, **backend, {}).ok());

  CommandResult r =
      ::tierflow::testing::Run({TierflowBinary(), "release", f}, std::chrono::seconds(60),
                               {"TIERFLOW_RUN_DIR=" + run.path()});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  auto state = mover::GetFileState(f);  // the record only: reading the data would wait
  ASSERT_TRUE(state.ok());
  EXPECT_NE(state->record.states & hsm::kStateReleased, 0u);
}

}  // namespace
}  // namespace tierflow::testing
