// Tests for RunAction's choice of operation: a REMOVE tagged as the cleanup of a deleted file
// removes the copy by file id (after proving the file is gone); any other REMOVE goes through
// the file's record.
#include "mover/action_runner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/fs_test_support.h"
#include "mover/fs/local_fs.h"
#include "mover/fs/loop_mount_test_support.h"
#include "wire/convert.h"

namespace tierflow::mover {
namespace {

using namespace testing;  // NOLINT: test helpers

class ActionRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.ok()) << "cannot loop-mount an ext4 image";
    archive_ = fs_ / "archive";
    ASSERT_EQ(::mkdir(archive_.c_str(), 0700), 0);
    auto b = PosixBackend::Open({archive_});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(*b);
  }

  hsm::FileId Archived(const std::string& path) {
    WriteFile(path, "data");
    auto id = IdentifyFile(path);
    EXPECT_TRUE(id.ok());
    EXPECT_TRUE(ArchiveFile(path, *id, 1, *backend_, {}).ok());
    return *id;
  }

  v1::ActionItem Remove(const hsm::FileId& id, const std::string& path, const std::string& data) {
    v1::ActionItem item;
    item.set_id(7);
    item.set_action(v1::REMOVE);
    wire::FileRefToProto(id, path, item.mutable_file());
    item.set_data(data);
    return item;
  }
  std::string CopyOf(const hsm::FileId& id) {
    return archive_ + "/" + backend_->RelativePath(id.fid);
  }

  LoopMount fs_{"ext4"};
  std::string archive_;
  std::unique_ptr<PosixBackend> backend_;
};

TEST_F(ActionRunnerTest, TaggedRemoveOfADeletedFileDeletesItsCopyThroughTheMountPoint) {
  hsm::FileId id = Archived(fs_ / "f");
  ASSERT_EQ(::unlink((fs_ / "f").c_str()), 0);
  ActionOutcome out =
      RunAction(Remove(id, fs_.path(), "owner=alice, tierflow.unlinked=1"), *backend_, {});
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_FALSE(Exists(CopyOf(id)));
  EXPECT_EQ(MakeResult(Remove(id, fs_.path(), ""), out).error_code(), 0);
}

TEST_F(ActionRunnerTest, TaggedRemoveOfAFileThatStillExistsFailsAndKeepsTheCopy) {
  hsm::FileId id = Archived(fs_ / "f");
  ActionOutcome out = RunAction(Remove(id, fs_.path(), kUnlinkedTag), *backend_, {});
  EXPECT_EQ(out.status.code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Exists(CopyOf(id)));
  v1::Result r = MakeResult(Remove(id, fs_.path(), kUnlinkedTag), out);
  EXPECT_NE(r.error_code(), 0);
  EXPECT_FALSE(r.retryable());
  EXPECT_NE(r.error().find("still exists"), std::string::npos) << r.error();
}

TEST_F(ActionRunnerTest, UntaggedRemoveGoesThroughTheFilesRecord) {
  hsm::FileId id = Archived(fs_ / "f");
  // A tag that only starts like the unlinked one is another tag.
  ActionOutcome out = RunAction(Remove(id, fs_ / "f", "tierflow.unlinked=10"), *backend_, {});
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_FALSE(Exists(CopyOf(id)));
  auto state = GetFileState(fs_ / "f");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->record.states & hsm::kStateArchived, 0u) << "the record still says archived";
}

}  // namespace
}  // namespace tierflow::mover
