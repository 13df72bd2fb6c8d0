// Tests for the dirty tracker on loop-mounted ext4 and xfs images with a real posix archive:
// writes, truncates and mmap writes of archived files set dirty (so release refuses), other
// files are left alone, and a last unlink reports the deleted file's id when the policy is on.
#include "watch/tracker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/fs_test_support.h"
#include "mover/fs/local_fs.h"
#include "mover/fs/loop_mount_test_support.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::watch {
namespace {

using mover::testing::LoopMount;
using mover::testing::WriteAt;
using mover::testing::WriteFile;

constexpr int64_t kSettleMs = 10'000;

class TrackerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!LoopMount::HaveMkfs(GetParam())) GTEST_SKIP() << "mkfs." << GetParam() << " missing";
    fs_ = std::make_unique<LoopMount>(GetParam());
    ASSERT_TRUE(fs_->ok()) << "cannot loop-mount a " << GetParam() << " image";
    // The archive lives on a filesystem of its own, as it would in production.
    archive_fs_ = std::make_unique<LoopMount>("ext4", "64M");
    ASSERT_TRUE(archive_fs_->ok());
    auto b = mover::PosixBackend::Open({archive_fs_->path()});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(*b);
  }
  void TearDown() override {
    if (tracker_) tracker_->Stop();
  }

  void StartTracker(bool remove_on_unlink) {
    TrackerOptions opt;
    opt.mount = fs_->path();
    opt.remove_archive_on_last_unlink = remove_on_unlink;
    opt.on_deleted = [this](const hsm::FileId& id) {
      std::lock_guard<std::mutex> lock(mu_);
      deleted_.push_back(id);
    };
    auto t = Tracker::Start(opt);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tracker_ = std::move(*t);
  }
  void Settle() { ASSERT_TRUE(tracker_->Settle(kSettleMs)) << "tracker did not settle"; }

  // A file with `data`, archived (and the tracker settled, so the events of its writing are
  // handled before the test changes it).
  std::string Archived(const std::string& name, const std::string& data = "archived data") {
    std::string path = *fs_ / name;
    WriteFile(path, data);
    auto id = mover::IdentifyFile(path);
    EXPECT_TRUE(id.ok());
    Status st = mover::ArchiveFile(path, *id, 1, *backend_, {});
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (tracker_) Settle();
    return path;
  }
  uint32_t States(const std::string& path) {
    auto s = mover::GetFileState(path);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->record.states : 0;
  }
  bool HasRecord(const std::string& path) {
    auto s = mover::GetFileState(path);
    return s.ok() && s->has_record;
  }
  std::vector<hsm::FileId> Deleted() {
    std::lock_guard<std::mutex> lock(mu_);
    return deleted_;
  }

  std::unique_ptr<LoopMount> fs_;
  std::unique_ptr<LoopMount> archive_fs_;
  std::unique_ptr<mover::PosixBackend> backend_;
  std::unique_ptr<Tracker> tracker_;
  std::mutex mu_;
  std::vector<hsm::FileId> deleted_;
};

TEST_P(TrackerTest, AWriteToAnArchivedFileMarksItDirty) {
  StartTracker(false);
  std::string f = Archived("f");
  ASSERT_EQ(States(f), hsm::kStateExists | hsm::kStateArchived);
  const uint64_t dirty_before = tracker_->Stats().marked_dirty;
  WriteAt(f, 3, "X");
  Settle();
  EXPECT_EQ(States(f), hsm::kStateExists | hsm::kStateArchived | hsm::kStateDirty);
  EXPECT_EQ(tracker_->Stats().marked_dirty, dirty_before + 1);
}

TEST_P(TrackerTest, ATruncateMarksItDirty) {
  StartTracker(false);
  std::string f = Archived("f", std::string(10000, 'a'));
  ASSERT_EQ(::truncate(f.c_str(), 100), 0);
  Settle();
  EXPECT_NE(States(f) & hsm::kStateDirty, 0u);
}

TEST_P(TrackerTest, AWriteThroughMmapIsSeenWhenTheFileIsClosed) {
  StartTracker(false);
  std::string f = Archived("f", std::string(4096, 'a'));
  {
    mover::UniqueFd fd(::open(f.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    void* map = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(map, MAP_FAILED);
    static_cast<char*>(map)[10] = 'Z';
    ASSERT_EQ(::msync(map, 4096, MS_SYNC), 0);
    ::munmap(map, 4096);
  }  // close: FAN_CLOSE_WRITE (an mmap write raises no FAN_MODIFY)
  Settle();
  EXPECT_NE(States(f) & hsm::kStateDirty, 0u);
}

TEST_P(TrackerTest, ManyWritesToOneFileAreOneDirtyMark) {
  StartTracker(false);
  std::string f = Archived("f");
  mover::UniqueFd fd(::open(f.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  for (int i = 0; i < 200; ++i) ASSERT_EQ(::pwrite(fd.get(), "y", 1, i), 1);
  fd.Reset();
  Settle();
  TrackerStats s = tracker_->Stats();
  EXPECT_EQ(s.marked_dirty, 1u);
  EXPECT_LT(s.checked, 200u) << "events of one file were not coalesced";
}

TEST_P(TrackerTest, AFileThatWasNeverArchivedIsLeftAlone) {
  StartTracker(false);
  std::string f = *fs_ / "plain";
  WriteFile(f, "never archived");
  WriteAt(f, 0, "N");
  ASSERT_EQ(::truncate(f.c_str(), 3), 0);
  Settle();
  EXPECT_FALSE(HasRecord(f)) << "the tracker created a record";
  TrackerStats s = tracker_->Stats();
  EXPECT_GE(s.checked, 1u);
  EXPECT_EQ(s.marked_dirty, 0u);
  EXPECT_EQ(s.errors, 0u);
}

TEST_P(TrackerTest, AReleasedFileIsNotTouched) {
  StartTracker(false);
  std::string f = Archived("f", std::string(8192, 'r'));
  Status st = mover::ReleaseFile(f);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Settle();  // the punch raised FAN_MODIFY
  EXPECT_EQ(States(f), hsm::kStateExists | hsm::kStateArchived | hsm::kStateReleased);
  EXPECT_EQ(tracker_->Stats().marked_dirty, 0u);
}

TEST_P(TrackerTest, AModifiedArchivedFileIsNotReleased) {
  StartTracker(false);
  std::string f = Archived("f", "version 1");
  WriteFile(f, "version 2");
  Settle();
  ASSERT_NE(States(f) & hsm::kStateDirty, 0u);
  Status st = mover::ReleaseFile(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("dirty"), std::string::npos) << st.message();
  EXPECT_EQ(mover::testing::ReadFile(f), "version 2");
}

TEST_P(TrackerTest, ALastUnlinkReportsTheDeletedFilesId) {
  StartTracker(true);
  std::string f = Archived("f");
  std::string kept = Archived("kept");
  ASSERT_EQ(::link(kept.c_str(), (*fs_ / "kept-2").c_str()), 0);
  auto id = mover::IdentifyFile(f);
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(::unlink(f.c_str()), 0);
  ASSERT_EQ(::unlink(kept.c_str()), 0);  // another link remains: not deleted
  Settle();
  EXPECT_EQ(Deleted(), std::vector<hsm::FileId>{*id});
  EXPECT_EQ(tracker_->Stats().deleted, 1u);
}

TEST_P(TrackerTest, AnUnlinkedFileStillOpenIsReportedWhenClosed) {
  StartTracker(true);
  std::string f = Archived("f");
  auto id = mover::IdentifyFile(f);
  ASSERT_TRUE(id.ok());
  mover::UniqueFd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::unlink(f.c_str()), 0);
  Settle();
  EXPECT_TRUE(Deleted().empty()) << "reported while still open";
  fd.Reset();
  Settle();
  EXPECT_EQ(Deleted(), std::vector<hsm::FileId>{*id});
}

TEST_P(TrackerTest, WithThePolicyOffDeletesAreNotReported) {
  StartTracker(false);
  std::string f = Archived("f");
  ASSERT_EQ(::unlink(f.c_str()), 0);
  Settle();
  EXPECT_TRUE(Deleted().empty());
  EXPECT_EQ(tracker_->Stats().deleted, 0u);
}

TEST_P(TrackerTest, SettleWithNothingQueuedReturnsAndStopEndsIt) {
  StartTracker(false);
  EXPECT_TRUE(tracker_->Settle(kSettleMs));
  EXPECT_TRUE(tracker_->Settle(kSettleMs));
  tracker_->Stop();
  EXPECT_FALSE(tracker_->Settle(100));
  tracker_->Stop();  // idempotent
}

INSTANTIATE_TEST_SUITE_P(Filesystems, TrackerTest, ::testing::Values("ext4", "xfs"));

TEST(TrackerStart, AFilesystemWithoutHooksIsRefusedNamingIt) {
  char tmpl[] = "/tmp/tierflow-tmpfs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  {
    mover::testing::ScopedMount tmpfs("tmpfs", dir, "tmpfs", 0, "size=1m");
    ASSERT_TRUE(tmpfs.ok());
    auto t = Tracker::Start({dir, false, nullptr});
    EXPECT_EQ(t.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(t.status().message().find("tmpfs"), std::string::npos) << t.status().message();
  }
  ::rmdir(dir.c_str());
}

TEST(TrackerStart, ThePolicyNeedsACallback) {
  auto t = Tracker::Start({"/", true, nullptr});
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tierflow::watch
