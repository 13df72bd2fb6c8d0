// Tests for RemoveCopyOfDeletedFile on real loop-mounted ext4 and xfs filesystems: the copy of
// a deleted file goes, and every case where the file's absence cannot be proven keeps it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/fs_test_support.h"
#include "mover/fs/local_fs.h"
#include "mover/fs/loop_mount_test_support.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::mover {
namespace {

using namespace testing;  // NOLINT: test helpers

class DeletedFileTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!LoopMount::HaveMkfs(GetParam()))
      GTEST_SKIP() << "mkfs." << GetParam() << " is not installed";
    fs_ = std::make_unique<LoopMount>(GetParam());
    ASSERT_TRUE(fs_->ok()) << "cannot loop-mount a " << GetParam() << " image";
    archive_ = *fs_ / "archive";
    ASSERT_EQ(::mkdir(archive_.c_str(), 0700), 0);
    auto b = PosixBackend::Open({archive_});
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = std::move(*b);
  }

  // A file on the loop filesystem, archived; returns its id.
  hsm::FileId Archived(const std::string& name) {
    std::string path = *fs_ / name;
    WriteFile(path, "content of " + name);
    auto id = IdentifyFile(path);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    Status st = ArchiveFile(path, *id, 1, *backend_, {});
    EXPECT_TRUE(st.ok()) << st.ToString();
    return id.ok() ? *id : hsm::FileId{};
  }
  std::string CopyOf(const hsm::FileId& id) {
    return archive_ + "/" + backend_->RelativePath(id.fid);
  }

  std::unique_ptr<LoopMount> fs_;
  std::string archive_;
  std::unique_ptr<PosixBackend> backend_;
};

TEST_P(DeletedFileTest, TheCopyOfADeletedFileIsRemoved) {
  hsm::FileId id = Archived("f");
  ASSERT_TRUE(Exists(CopyOf(id)));
  ASSERT_EQ(::unlink((*fs_ / "f").c_str()), 0);
  Status st = RemoveCopyOfDeletedFile(fs_->path(), id, *backend_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(Exists(CopyOf(id)));
  // Again: the copy is already gone, which is not an error.
  st = RemoveCopyOfDeletedFile(fs_->path(), id, *backend_);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_P(DeletedFileTest, AFileThatStillExistsKeepsItsCopy) {
  hsm::FileId id = Archived("f");
  ASSERT_EQ(::rename((*fs_ / "f").c_str(), (*fs_ / "moved").c_str()), 0);
  Status st = RemoveCopyOfDeletedFile(fs_->path(), id, *backend_);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("still exists"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(id.ToString()), std::string::npos) << st.message();
  EXPECT_TRUE(Exists(CopyOf(id)));
}

TEST_P(DeletedFileTest, AFileWithAnotherLinkKeepsItsCopy) {
  hsm::FileId id = Archived("f");
  ASSERT_EQ(::link((*fs_ / "f").c_str(), (*fs_ / "other-name").c_str()), 0);
  ASSERT_EQ(::unlink((*fs_ / "f").c_str()), 0);
  EXPECT_EQ(RemoveCopyOfDeletedFile(fs_->path(), id, *backend_).code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Exists(CopyOf(id)));
}

TEST_P(DeletedFileTest, AnUnlinkedFileStillOpenKeepsItsCopyUntilClosed) {
  hsm::FileId id = Archived("f");
  UniqueFd open_fd(::open((*fs_ / "f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(open_fd.valid());
  ASSERT_EQ(::unlink((*fs_ / "f").c_str()), 0);
  Status st = RemoveCopyOfDeletedFile(fs_->path(), id, *backend_);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_TRUE(Exists(CopyOf(id)));
  open_fd.Reset();
  // xfs frees unlinked inodes in the background: retry until the filesystem says so.
  for (int i = 0; i < 200 && !st.ok(); ++i) {
    st = RemoveCopyOfDeletedFile(fs_->path(), id, *backend_);
    if (!st.ok()) ::usleep(10'000);
  }
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(Exists(CopyOf(id)));
}

TEST_P(DeletedFileTest, AReusedInodeNumberIsNotTheDeletedFile) {
  hsm::FileId id = Archived("f");
  ASSERT_EQ(::unlink((*fs_ / "f").c_str()), 0);
  // Whatever inode the filesystem hands out next, the old id (inode + generation) is gone.
  WriteFile(*fs_ / "g", "new file");
  Status st = RemoveCopyOfDeletedFile(fs_->path(), id, *backend_);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(Exists(CopyOf(id)));
}

TEST_P(DeletedFileTest, AnotherFilesystemsMountIsRefused) {
  hsm::FileId id = Archived("f");
  ASSERT_EQ(::unlink((*fs_ / "f").c_str()), 0);
  Status st = RemoveCopyOfDeletedFile("/tmp", id, *backend_);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find(id.fsid), std::string::npos) << st.message();
  EXPECT_TRUE(Exists(CopyOf(id)));
}

TEST_P(DeletedFileTest, AnIdThatIsNotALinuxFileIdIsRefused) {
  hsm::FileId id = Archived("f");
  hsm::FileId lustre_like = id;
  lustre_like.fid.ver = 1;
  EXPECT_EQ(RemoveCopyOfDeletedFile(fs_->path(), lustre_like, *backend_).code(),
            Code::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Filesystems, DeletedFileTest, ::testing::Values("ext4", "xfs"));

// xfs gives inodes above 2^32 on large filesystems: their handles carry a 64-bit inode number.
TEST(DeletedFileXfs, A64BitInodeIsHandledToo) {
  if (!LoopMount::HaveMkfs("xfs")) GTEST_SKIP() << "mkfs.xfs is not installed";
  // A sparse 4 TiB image in 5 allocation groups: inodes of groups 2 and up are above 2^32.
  LoopMount fs("xfs", "4T", "-K -d agcount=5 -l size=64m");
  ASSERT_TRUE(fs.ok());
  std::string archive = fs / "archive";
  ASSERT_EQ(::mkdir(archive.c_str(), 0700), 0);
  auto backend = PosixBackend::Open({archive});
  ASSERT_TRUE(backend.ok());
  std::string path;
  hsm::FileId id;
  for (int d = 0; d < 8 && id.fid.seq <= UINT32_MAX;
       ++d) {  // new directories rotate through the groups
    std::string dir = fs / ("d" + std::to_string(d));
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    path = dir + "/f";
    WriteFile(path, "far away");
    auto got = IdentifyFile(path);
    ASSERT_TRUE(got.ok());
    id = *got;
  }
  ASSERT_GT(id.fid.seq, UINT32_MAX) << "no inode above 2^32 was handed out";
  ASSERT_TRUE(ArchiveFile(path, id, 1, **backend, {}).ok());
  std::string copy = archive + "/" + (*backend)->RelativePath(id.fid);
  EXPECT_EQ(RemoveCopyOfDeletedFile(fs.path(), id, **backend).code(), Code::kFailedPrecondition);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  Status st = RemoveCopyOfDeletedFile(fs.path(), id, **backend);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(Exists(copy));
}

// tmpfs (like btrfs, whose handles need the subvolume) cannot be asked by file id.
TEST(DeletedFileOtherFs, AFilesystemWithoutBuildableHandlesIsRefusedNamingIt) {
  char tmpl[] = "/tmp/tierflow-tmpfs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  {
    ScopedMount tmpfs("tmpfs", dir, "tmpfs", 0, "size=8m");
    ASSERT_TRUE(tmpfs.ok());
    std::string archive = dir + "/archive";
    ASSERT_EQ(::mkdir(archive.c_str(), 0700), 0);
    auto backend = PosixBackend::Open({archive});
    ASSERT_TRUE(backend.ok());
    WriteFile(dir + "/f", "x");
    auto id = IdentifyFile(dir + "/f");
    ASSERT_TRUE(id.ok());
    UniqueFd src(::open((dir + "/f").c_str(), O_RDONLY | O_CLOEXEC));
    auto put = (*backend)->Put(src.get(), *id, {});
    ASSERT_TRUE(put.ok());
    ASSERT_EQ(::unlink((dir + "/f").c_str()), 0);
    Status st = RemoveCopyOfDeletedFile(dir, *id, **backend);
    EXPECT_EQ(st.code(), Code::kFailedPrecondition);
    EXPECT_NE(st.message().find("tmpfs"), std::string::npos) << st.message();
    EXPECT_TRUE(Exists(archive + "/" + put->object_ref));
  }
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace tierflow::mover
