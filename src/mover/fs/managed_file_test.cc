// Tests for the pieces of ManagedFile whose failure would be silent elsewhere: a lease break
// must not kill the process, and a sealed record must prove exactly "not touched since".
#include "mover/fs/managed_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "mover/fs/fs_test_support.h"

namespace tierflow::mover {
namespace {

using namespace testing;  // NOLINT: test helpers

TEST(FileLeaseTest, ABreakDoesNotSignalTheHolder) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty()) << "no scratch filesystem with trusted xattrs";
  std::string f = dir / "f";
  WriteFile(f, "x");
  auto file = ManagedFile::Open(f, O_RDONLY);
  ASSERT_TRUE(file.ok());
  auto lease = FileLease::Take(file->fd(), F_RDLCK);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  pid_t child = ::fork();
  if (child == 0) {
    int fd = ::open(f.c_str(), O_WRONLY);  // blocks until the lease is dropped
    ::_exit(fd >= 0 ? 0 : 1);
  }
  ASSERT_GT(child, 0);
  // Wait, with a deadline, for the kernel to start breaking the lease (the child is in open).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (::fcntl(file->fd(), F_GETLEASE) == F_RDLCK && std::chrono::steady_clock::now() < deadline) {
    ::sched_yield();
  }
  EXPECT_EQ(::fcntl(file->fd(), F_GETLEASE), F_UNLCK) << "the lease break never started";
  lease->Drop();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Reaching this line is the test: SIGIO's default action would have killed the process.
}

TEST(FileLeaseTest, AWriteLeaseIsRefusedWhileAnotherDescriptorIsOpen) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty()) << "no scratch filesystem with trusted xattrs";
  std::string f = dir / "f";
  WriteFile(f, "x");
  auto file = ManagedFile::Open(f, O_RDWR);
  ASSERT_TRUE(file.ok());
  {
    UniqueFd reader(::open(f.c_str(), O_RDONLY));
    auto lease = FileLease::Take(file->fd(), F_WRLCK);
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.status().sys_errno(), EAGAIN);
  }
  auto lease = FileLease::Take(file->fd(), F_WRLCK);
  EXPECT_TRUE(lease.ok()) << lease.status().ToString();
}

TEST(SealTest, ASealedRecordProvesTheFileUntouchedUntilAnyChange) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty()) << "no scratch filesystem with trusted xattrs";
  std::string f = dir / "f";
  WriteFile(f, "data");
  auto file = ManagedFile::Open(f, O_RDONLY);
  ASSERT_TRUE(file.ok());
  auto stamp = file->Stamp();
  ASSERT_TRUE(stamp.ok());
  HsmRecord rec;
  rec.fid = file->Identify()->fid;
  rec.stamp = *stamp;
  const VersionStamp expected = *stamp;
  ASSERT_TRUE(file->WriteSealed(rec, [&](const VersionStamp& now) { return now == expected; }, false).ok());
  auto stored = file->ReadRecord();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  ASSERT_TRUE((*stored)->seal.sealed());
  EXPECT_TRUE(UnchangedSinceSeal(**stored, *file->Stamp())) << "our own write broke the seal";
  // Even a metadata-only change made right after the seal falls outside it.
  ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  EXPECT_FALSE(UnchangedSinceSeal(**stored, *file->Stamp()));
}

TEST(SealTest, AFailedCheckWritesNothing) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty()) << "no scratch filesystem with trusted xattrs";
  std::string f = dir / "f";
  WriteFile(f, "data");
  auto file = ManagedFile::Open(f, O_RDONLY);
  ASSERT_TRUE(file.ok());
  Status st = file->WriteSealed(HsmRecord{}, [](const VersionStamp&) { return false; }, false);
  EXPECT_EQ(st.code(), Code::kBusy);
  EXPECT_EQ(GetXattr(f, kRecordXattr), "<none>");
}

}  // namespace
}  // namespace tierflow::mover
