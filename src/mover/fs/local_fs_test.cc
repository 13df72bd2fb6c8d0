// Tests for the local filesystem HSM operations on real files with a real posix archive:
// archive -> release -> restore round trips, the stamp and seal checks, and every refusal.
#include "mover/fs/local_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <map>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/fs_test_support.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::mover {
namespace {

using namespace testing;  // NOLINT: test helpers
using namespace hsm;      // NOLINT: state bits

// st_blocks of a released file may still count one block: ext4 keeps an HSM record that does
// not fit in the inode in an external xattr block (4 KiB = 8 sectors).
constexpr blkcnt_t kXattrBlockSectors = 8;

// What must survive a round trip through the archive.
struct Snapshot {
  mode_t mode;
  uid_t uid;
  gid_t gid;
  int64_t mtime_sec, mtime_nsec;
  off_t size;
  std::map<std::string, std::string> user_xattrs;
  std::vector<int64_t> layout;
  bool operator==(const Snapshot&) const = default;
};

Snapshot Take(const std::string& path) {
  struct stat st = Stat(path);
  Snapshot s{st.st_mode, st.st_uid, st.st_gid, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size, {}, Layout(path)};
  char names[4096];
  ssize_t n = ::listxattr(path.c_str(), names, sizeof(names));
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
    std::string name(names + i);
    if (name.starts_with("user.")) s.user_xattrs[name] = GetXattr(path, name);
  }
  return s;
}

class LocalFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "no scratch filesystem with trusted xattrs";
    archive_ = dir_ / "archive";
    ASSERT_EQ(::mkdir(archive_.c_str(), 0755), 0);
    backend_ = OpenBackend({archive_});
  }

  std::unique_ptr<PosixBackend> OpenBackend(PosixBackendOptions opt) {
    auto b = PosixBackend::Open(opt);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }

  FileId Id(const std::string& path) {
    auto id = IdentifyFile(path);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : FileId{};
  }
  Status Archive(const std::string& path, const CopyControl& ctl = {}, ArchiveBackend* b = nullptr) {
    return ArchiveFile(path, Id(path), 1, b ? *b : *backend_, ctl);
  }
  Status Restore(const std::string& path) { return RestoreFile(path, Id(path), *backend_, {}); }
  Status Remove(const std::string& path) { return RemoveFile(path, Id(path), *backend_); }
  FileState State(const std::string& path) {
    auto s = GetFileState(path);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : FileState{};
  }
  std::string CopyOf(const std::string& path) { return archive_ + "/" + State(path).record.object_ref; }
  // Rewrites the record directly, as another tool (or a bug) would.
  void EditRecord(const std::string& path, const std::function<void(HsmRecord&)>& edit) {
    auto rec = DecodeRecord(GetXattr(path, kRecordXattr));
    ASSERT_TRUE(rec.ok());
    edit(*rec);
    SetXattr(path, kRecordXattr, EncodeRecord(*rec));
  }

  // Archive, release, restore; everything a user can see must come back.
  void RoundTrip(const std::string& path) {
    std::string content = ReadFile(path);
    Snapshot before = Take(path);
    ASSERT_TRUE(Archive(path).ok());
    FileState archived = State(path);
    EXPECT_EQ(archived.record.states, kStateExists | kStateArchived);
    EXPECT_EQ(archived.record.archive_id, 1u);
    EXPECT_EQ(archived.record.checksum, Xxh3(content));
    EXPECT_EQ(archived.record.stamp.size, content.size());
    EXPECT_EQ(archived.record.resident, (std::vector<Extent>{{0, content.size()}}));
    EXPECT_EQ(archived.record.object_ref, backend_->RelativePath(archived.id.fid));
    EXPECT_TRUE(archived.record.seal.sealed());

    Status released = ReleaseFile(path);
    ASSERT_TRUE(released.ok()) << released.ToString();
    EXPECT_EQ(State(path).record.states, kStateExists | kStateArchived | kStateReleased);
    EXPECT_TRUE(State(path).record.resident.empty());
    EXPECT_TRUE(Layout(path).empty()) << "release left data extents";
    EXPECT_LE(Stat(path).st_blocks, kXattrBlockSectors) << "release left data blocks";
    Snapshot punched = Take(path);
    EXPECT_EQ(punched.size, before.size);
    EXPECT_EQ(std::tie(punched.mtime_sec, punched.mtime_nsec), std::tie(before.mtime_sec, before.mtime_nsec));
    EXPECT_TRUE(ReadFile(path) == std::string(content.size(), '\0'));
    EXPECT_TRUE(ReleaseFile(path).ok()) << "releasing a released file must succeed";

    Status restored = Restore(path);
    ASSERT_TRUE(restored.ok()) << restored.ToString();
    EXPECT_TRUE(ReadFile(path) == content) << "content differs after restore";
    EXPECT_EQ(Take(path), before);
    FileState back = State(path);
    EXPECT_EQ(back.record.states, kStateExists | kStateArchived);
    EXPECT_EQ(back.record.resident, (std::vector<Extent>{{0, content.size()}}));
    EXPECT_TRUE(back.record.last_error.empty());
    Status again = ReleaseFile(path);
    EXPECT_TRUE(again.ok()) << "a restored file must be releasable: " << again.ToString();
  }

  TempDir dir_;
  std::string archive_;
  std::unique_ptr<PosixBackend> backend_;
};

TEST_F(LocalFsTest, IdentityIsFsidInodeAndGeneration) {
  std::string f = dir_ / "f";
  WriteFile(f, "x");
  FileId id = Id(f);
  struct statfs sfs;
  ASSERT_EQ(::statfs(f.c_str(), &sfs), 0);
  EXPECT_EQ(id.fsid, fmt::format("{:08x}{:08x}", static_cast<uint32_t>(sfs.f_fsid.__val[0]),
                                 static_cast<uint32_t>(sfs.f_fsid.__val[1])));
  EXPECT_EQ(id.fsid.size(), 16u);
  EXPECT_EQ(id.fid.seq, Stat(f).st_ino);
  UniqueFd fd(::open(f.c_str(), O_RDONLY));
  long gen = 0;
  ASSERT_EQ(::ioctl(fd.get(), FS_IOC_GETVERSION, &gen), 0);
  EXPECT_EQ(id.fid.oid, static_cast<uint32_t>(gen));
  EXPECT_EQ(id.fid.ver, 0u);
}

TEST_F(LocalFsTest, NonFilesAreRefusedNamingThePath) {
  std::string d = dir_ / "d", fifo = dir_ / "fifo", link = dir_ / "link", missing = dir_ / "missing";
  ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  WriteFile(dir_ / "target", "x");
  ASSERT_EQ(::symlink((dir_ / "target").c_str(), link.c_str()), 0);
  struct Case {
    std::string path;
    Code code;
    std::string says;
  } cases[] = {{d, Code::kInvalidArgument, d + " is a directory"},
               {fifo, Code::kInvalidArgument, fifo + " is a FIFO"},
               {link, Code::kInvalidArgument, link + " is a symbolic link"},
               {missing, Code::kNotFound, missing + " does not exist"}};
  for (const auto& c : cases) {
    auto id = IdentifyFile(c.path);
    ASSERT_FALSE(id.ok()) << c.path;
    EXPECT_EQ(id.status().code(), c.code) << c.path;
    EXPECT_NE(id.status().message().find(c.says), std::string::npos) << id.status().message();
    EXPECT_EQ(ReleaseFile(c.path).code(), c.code) << c.path;
    EXPECT_EQ(RecordError(c.path, Status(Code::kIo, "x")).code(), c.code) << c.path;
  }
}

TEST_F(LocalFsTest, EmptyFileRoundTrips) {
  WriteFile(dir_ / "empty", "");
  RoundTrip(dir_ / "empty");
}

TEST_F(LocalFsTest, SmallFileWithMetadataRoundTrips) {
  std::string f = dir_ / "small";
  WriteFile(f, "some bytes worth keeping");
  ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  ASSERT_EQ(::chown(f.c_str(), 4321, 8765), 0);
  SetXattr(f, "user.note", "important");
  struct timespec times[2] = {{1'400'000'000, 5}, {1'300'000'000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
  RoundTrip(f);
  struct stat copy = Stat(CopyOf(f));
  EXPECT_EQ(copy.st_uid, 4321u);
  EXPECT_EQ(copy.st_mtim.tv_nsec, 123456789);
}

TEST_F(LocalFsTest, SparseFileRoundTripsWithItsHoles) {
  std::string f = dir_ / "sparse";
  MakeSparse(f, 32 << 20, {{4096, RandomBytes(8192, 1)}, {20 << 20, RandomBytes(1 << 20, 2)}});
  blkcnt_t blocks = Stat(f).st_blocks;
  RoundTrip(f);
  Status st = Restore(f);  // the second release in RoundTrip left it released
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_LE(Stat(f).st_blocks, blocks + kXattrBlockSectors) << "restore filled holes";
}

TEST_F(LocalFsTest, LargeFileRoundTrips) {
  std::string f = dir_ / "large";
  WriteFile(f, RandomBytes(64 << 20, 3));
  RoundTrip(f);
}

TEST_F(LocalFsTest, ChangeDuringArchiveIsBusyAndLeavesTheRecordAlone) {
  std::string f = dir_ / "f";
  WriteFile(f, RandomBytes(1 << 20, 4));
  auto chunked = OpenBackend({archive_, false, 64 << 10, 0});
  bool wrote = false;
  CopyControl writer{[&](uint64_t, uint64_t) {
                       if (!wrote) WriteAt(f, 10, "changed");
                       wrote = true;
                     },
                     nullptr};
  Status st = Archive(f, writer, chunked.get());
  EXPECT_EQ(st.code(), Code::kBusy);
  EXPECT_NE(st.message().find("file changed during archive"), std::string::npos) << st.message();
  EXPECT_EQ(GetXattr(f, kRecordXattr), "<none>");

  ASSERT_TRUE(Archive(f).ok());  // now with a record in place
  WriteAt(f, 20, "again");
  std::string record = GetXattr(f, kRecordXattr);
  wrote = false;
  st = Archive(f, writer, chunked.get());
  EXPECT_EQ(st.code(), Code::kBusy);
  EXPECT_EQ(GetXattr(f, kRecordXattr), record);
}

TEST_F(LocalFsTest, ReleaseOfAnUnarchivedFileIsRefused) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  Status st = ReleaseFile(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find(f + " is not archived"), std::string::npos);
  EXPECT_EQ(ReadFile(f), "data");
}

TEST_F(LocalFsTest, ReleaseAfterAModificationMarksDirtyAndRefuses) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  WriteAt(f, 4, " and more");
  Status st = ReleaseFile(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("changed since it was archived"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("archive it again"), std::string::npos);
  EXPECT_TRUE(State(f).record.states & kStateDirty);
  EXPECT_EQ(ReadFile(f), "data and more");
  st = ReleaseFile(f);
  EXPECT_NE(st.message().find("dirty"), std::string::npos) << st.message();

  ASSERT_TRUE(Archive(f).ok());  // archiving again clears dirty
  EXPECT_FALSE(State(f).record.states & kStateDirty);
  ASSERT_TRUE(ReleaseFile(f).ok());
  ASSERT_TRUE(Restore(f).ok());
  EXPECT_EQ(ReadFile(f), "data and more");
}

TEST_F(LocalFsTest, AWriteThatPutsTheMtimeBackIsStillSeen) {
  std::string f = dir_ / "f";
  WriteFile(f, "AAAA");
  ASSERT_TRUE(Archive(f).ok());
  struct stat st = Stat(f);
  WriteAt(f, 0, "B");  // same size
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
  EXPECT_EQ(Stat(f).st_mtim.tv_nsec, st.st_mtim.tv_nsec);
  Status released = ReleaseFile(f);
  EXPECT_EQ(released.code(), Code::kFailedPrecondition);
  EXPECT_NE(released.message().find("ctime"), std::string::npos) << released.message();
  EXPECT_EQ(ReadFile(f), "BAAA");
}

TEST_F(LocalFsTest, NoReleaseIsHonouredAndFlagsKeepTheFileReleasable) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(SetHsmFlags(f, kStateNoRelease, 0).ok());
  Status st = ReleaseFile(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("norelease"), std::string::npos) << st.message();
  ASSERT_TRUE(SetHsmFlags(f, 0, kStateNoRelease).ok());
  st = ReleaseFile(f);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(LocalFsTest, SetHsmFlagsFollowsLustreRules) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  EXPECT_EQ(SetHsmFlags(f, kStateReleased, 0).code(), Code::kPermissionDenied);
  EXPECT_EQ(SetHsmFlags(f, kStateDirty, 0).code(), Code::kInvalidArgument);  // dirty needs exists
  ASSERT_TRUE(SetHsmFlags(f, kStateNoArchive, 0).ok());
  EXPECT_EQ(State(f).record.states, kStateNoArchive);
  Status st = Archive(f);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("noarchive"), std::string::npos);
}

TEST_F(LocalFsTest, ReleaseWhileOpenElsewhereIsBusy) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  {
    UniqueFd writer(::open(f.c_str(), O_WRONLY));
    ASSERT_TRUE(writer.valid());
    Status st = ReleaseFile(f);
    EXPECT_EQ(st.code(), Code::kBusy);
    EXPECT_NE(st.message().find(f + " is open"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("close it and retry"), std::string::npos);
    EXPECT_GT(Stat(f).st_blocks, 0);
    EXPECT_FALSE(State(f).record.states & kStateReleased);
  }
  Status st = ReleaseFile(f);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(LocalFsTest, ArchivingAFileOpenForWritingLeavesItUnsealed) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  {
    UniqueFd writer(::open(f.c_str(), O_WRONLY));
    ASSERT_TRUE(Archive(f).ok());
  }
  EXPECT_FALSE(State(f).record.seal.sealed());
  Status st = ReleaseFile(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("open for writing when it was archived"), std::string::npos) << st.message();
  ASSERT_TRUE(Archive(f).ok());
  EXPECT_TRUE(ReleaseFile(f).ok());
}

TEST_F(LocalFsTest, RecordErrorIsShownAndKeepsTheFileReleasable) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(RecordError(f, Status(Code::kUnavailable, "tape library offline")).ok());
  FileState s = State(f);
  EXPECT_EQ(s.record.last_error, "tape library offline");
  EXPECT_EQ(s.record.last_error_code, EAGAIN);
  EXPECT_EQ(s.record.states, kStateExists | kStateArchived);
  Status st = ReleaseFile(f);
  EXPECT_TRUE(st.ok()) << st.ToString();

  std::string fresh = dir_ / "fresh";  // a file with no record gets one holding the error
  WriteFile(fresh, "x");
  ASSERT_TRUE(RecordError(fresh, Status(Code::kIo, "disk on fire")).ok());
  EXPECT_EQ(State(fresh).record.last_error, "disk on fire");
  EXPECT_EQ(State(fresh).record.states, 0u);
  EXPECT_EQ(State(fresh).record.fid, Id(fresh).fid);
}

TEST_F(LocalFsTest, CorruptCopyFailsRestoreAndTheFileStaysReleased) {
  std::string f = dir_ / "f";
  std::string content = RandomBytes(300000, 5);
  WriteFile(f, content);
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(ReleaseFile(f).ok());
  std::string copy = CopyOf(f);
  WriteAt(copy, 1234, std::string(1, static_cast<char>(content[1234] ^ 1)));
  Status st = Restore(f);
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_NE(st.message().find("archive copy " + copy + " failed its checksum (expected "), std::string::npos)
      << st.message();
  EXPECT_TRUE(Layout(f).empty()) << "the bad data stayed in the file";
  FileState s = State(f);
  EXPECT_TRUE(s.record.states & kStateReleased);
  EXPECT_NE(s.record.last_error.find("failed its checksum"), std::string::npos) << s.record.last_error;
  EXPECT_EQ(s.record.last_error_code, EIO);

  WriteAt(copy, 1234, content.substr(1234, 1));  // repair the copy
  st = Restore(f);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(ReadFile(f) == content);
  EXPECT_TRUE(State(f).record.last_error.empty());
}

TEST_F(LocalFsTest, MissingCopyFailsRestoreAndTheFileStaysReleased) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(ReleaseFile(f).ok());
  std::string copy = CopyOf(f);
  ASSERT_EQ(::unlink(copy.c_str()), 0);
  Status st = Restore(f);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("archive copy " + copy + " is missing"), std::string::npos) << st.message();
  EXPECT_TRUE(State(f).record.states & kStateReleased);
  EXPECT_NE(State(f).record.last_error.find("is missing"), std::string::npos);
  EXPECT_EQ(State(f).record.last_error_code, ENOENT);
}

TEST_F(LocalFsTest, UnmanagedFilesCannotBeRestoredOrRemoved) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  for (const Status& st : {Restore(f), Remove(f)}) {
    EXPECT_EQ(st.code(), Code::kFailedPrecondition);
    EXPECT_EQ(st.message(), f + " is not archived");
  }
  EXPECT_EQ(GetXattr(f, kRecordXattr), "<none>");
}

// A remove run a second time (a mover killed before it could report the first) succeeds
// without touching anything.
TEST_F(LocalFsTest, RemovingTwiceSucceedsTheSecondTimeWithNothingToDo) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(Remove(f).ok());
  const std::string record = GetXattr(f, kRecordXattr);
  Status again = Remove(f);
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(GetXattr(f, kRecordXattr), record);
  EXPECT_FALSE(State(f).record.states & kStateArchived);
}

TEST_F(LocalFsTest, RestoringAResidentFileDoesNothing) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  std::string record = GetXattr(f, kRecordXattr);
  EXPECT_TRUE(Restore(f).ok());
  EXPECT_EQ(GetXattr(f, kRecordXattr), record);
}

TEST_F(LocalFsTest, LostFilesAreNotRestored) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(ReleaseFile(f).ok());
  EditRecord(f, [](HsmRecord& r) { r.states |= kStateLost; });
  Status st = Restore(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("lost"), std::string::npos) << st.message();
}

TEST_F(LocalFsTest, RemoveDeletesTheCopyAndKeepsUserFlags) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(SetHsmFlags(f, kStateNoRelease, 0).ok());
  std::string copy = CopyOf(f);
  ASSERT_TRUE(Exists(copy));
  Status st = Remove(f);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(Exists(copy));
  FileState s = State(f);
  EXPECT_EQ(s.record.states, kStateNoRelease);
  EXPECT_TRUE(s.record.object_ref.empty());
  EXPECT_EQ(ReleaseFile(f).code(), Code::kFailedPrecondition);
  EXPECT_EQ(ReadFile(f), "data");
}

// A backend whose Delete fails, standing in for an unreachable archive.
class DeleteFails final : public ArchiveBackend {
 public:
  Result<PutResult> Put(int, const FileId&, const CopyControl&) override {
    return Status(Code::kInternal, "unused");
  }
  Status Get(const std::string&, int, uint64_t, const CopyControl&) override { return Status(Code::kInternal, "unused"); }
  Status Delete(const std::string&) override { return Status(Code::kUnavailable, "archive offline"); }
};

TEST_F(LocalFsTest, AFailedDeleteLeavesTheFileUnreleasableAndRemoveCanBeRetried) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  std::string copy = CopyOf(f);
  DeleteFails offline;
  Status st = RemoveFile(f, Id(f), offline);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  FileState s = State(f);
  EXPECT_FALSE(s.record.states & (kStateArchived | kStateExists));
  EXPECT_FALSE(s.record.object_ref.empty());
  EXPECT_NE(s.record.last_error.find("archive offline"), std::string::npos);
  EXPECT_EQ(ReleaseFile(f).code(), Code::kFailedPrecondition) << "release trusted a copy being removed";
  ASSERT_TRUE(Remove(f).ok());
  EXPECT_FALSE(Exists(copy));
  EXPECT_TRUE(State(f).record.object_ref.empty());
  EXPECT_TRUE(Remove(f).ok()) << "a third remove has nothing left to do";
}

TEST_F(LocalFsTest, RemovingTheOnlyCopyOfAReleasedFileIsRefused) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(ReleaseFile(f).ok());
  Status st = Remove(f);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("released"), std::string::npos);
  EXPECT_TRUE(Exists(CopyOf(f)));
}

TEST_F(LocalFsTest, ActionsOnAnotherFileIdAreRefused) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  FileId other = Id(f);
  other.fid.seq += 1;
  Status st = ArchiveFile(f, other, 1, *backend_, {});
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("file at " + f + " is no longer " + other.ToString()), std::string::npos)
      << st.message();
  EXPECT_EQ(RestoreFile(f, other, *backend_, {}).code(), Code::kNotFound);
  EXPECT_EQ(RemoveFile(f, other, *backend_).code(), Code::kNotFound);
}

TEST_F(LocalFsTest, ArchiveToAnotherArchiveIdIsRefused) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  Status st = ArchiveFile(f, Id(f), 2, *backend_, {});
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("archived in archive 1, not 2"), std::string::npos) << st.message();
}

TEST_F(LocalFsTest, ArchivingAReleasedFileDoesNothing) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  ASSERT_TRUE(ReleaseFile(f).ok());
  ASSERT_TRUE(Archive(f).ok());
  EXPECT_EQ(ReadFile(CopyOf(f)), "data") << "the archive copy was overwritten with holes";
  ASSERT_TRUE(Restore(f).ok());
  EXPECT_EQ(ReadFile(f), "data");
}

TEST_F(LocalFsTest, CorruptRecordIsReportedNamingTheFile) {
  std::string f = dir_ / "f";
  WriteFile(f, "data");
  ASSERT_TRUE(Archive(f).ok());
  std::string bytes = GetXattr(f, kRecordXattr);
  bytes[10] ^= 0x40;
  SetXattr(f, kRecordXattr, bytes);
  auto s = GetFileState(f);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kCorrupt);
  EXPECT_NE(s.status().message().find(f), std::string::npos);
  EXPECT_NE(s.status().message().find("remove the trusted.tierflow.hsm xattr"), std::string::npos);
  EXPECT_EQ(ReleaseFile(f).code(), Code::kCorrupt);
  EXPECT_GT(Stat(f).st_blocks, 0);
}

TEST_F(LocalFsTest, TheStateNamesTheFilesOwnerAndGroup) {
  std::string f = dir_ / "owned";
  WriteFile(f, "data");
  ASSERT_EQ(::chown(f.c_str(), 1234, 5678), 0) << strerror(errno);
  FileState s = State(f);
  EXPECT_EQ(s.uid, 1234u);
  EXPECT_EQ(s.gid, 5678u);
}

TEST_F(LocalFsTest, ARecordCopiedFromAnotherFileIsIgnored) {
  std::string a = dir_ / "a", b = dir_ / "b";
  WriteFile(a, "data");
  WriteFile(b, "data");
  ASSERT_TRUE(Archive(a).ok());
  SetXattr(b, kRecordXattr, GetXattr(a, kRecordXattr));  // as cp -a by root would
  EXPECT_FALSE(State(b).has_record);
  EXPECT_EQ(ReleaseFile(b).code(), Code::kFailedPrecondition);
  EXPECT_EQ(ReadFile(b), "data");
}

}  // namespace
}  // namespace tierflow::mover
