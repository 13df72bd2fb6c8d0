// Tests for the posix backend on real files: lhsmtool_posix paths, sparse round trips,
// metadata on the copy, checksums, and every failure leaving no PATH_tmp behind.
#include "mover/backends/posix_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <set>

#include "mover/fs/fs_test_support.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::mover {
namespace {

using namespace testing;  // NOLINT: test helpers

class PosixBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "no scratch filesystem with trusted xattrs";
    archive_ = dir_ / "archive";
    ASSERT_EQ(::mkdir(archive_.c_str(), 0755), 0);
    backend_ = Open({archive_});
    ASSERT_NE(backend_, nullptr);
  }

  std::unique_ptr<PosixBackend> Open(PosixBackendOptions opt) {
    auto b = PosixBackend::Open(opt);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }

  Result<PutResult> PutFile(PosixBackend& b, const std::string& path, const CopyControl& ctl = {}) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid()) << path;
    return b.Put(fd.get(), file_, ctl);
  }

  Status GetInto(PosixBackend& b, const std::string& ref, const std::string& path, uint64_t sum,
                 const CopyControl& ctl = {}) {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    EXPECT_TRUE(fd.valid()) << path;
    return b.Get(ref, fd.get(), sum, ctl);
  }

  std::string CopyPath() const { return archive_ + "/" + backend_->RelativePath(file_.fid); }

  TempDir dir_;
  std::string archive_;
  std::unique_ptr<PosixBackend> backend_;
  hsm::FileId file_{"0123456789abcdef", {0x200000401, 0x1, 0x0}};
};

TEST_F(PosixBackendTest, V1AndV2PathsMatchLhsmtoolPosix) {
  hsm::Fid sample{0x200000401, 0x1, 0x0};
  // By hand: oid 0x1 -> 0001/0000; seq 0x0000_0002_0000_0401 low to high -> 0401/0000/0002/0000.
  EXPECT_EQ(backend_->RelativePath(sample), "0001/0000/0401/0000/0002/0000/0x200000401:0x1:0x0");
  hsm::Fid wide{0x123456789abcdef0, 0x87654321, 0x5};
  EXPECT_EQ(backend_->RelativePath(wide),
            "4321/8765/def0/9abc/5678/1234/0x123456789abcdef0:0x87654321:0x5");
  auto v2 = Open({archive_, /*v2_paths=*/true});
  ASSERT_NE(v2, nullptr);
  // (0x1 ^ 0x200000401) & 0xffff = 0x0400; (0x87654321 ^ 0x...def0) & 0xffff = 0x4321 ^ 0xdef0 = 0x9dd1.
  EXPECT_EQ(v2->RelativePath(sample), "0400/0x200000401:0x1:0x0");
  EXPECT_EQ(v2->RelativePath(wide), "9dd1/0x123456789abcdef0:0x87654321:0x5");
}

TEST_F(PosixBackendTest, OpenRejectsMissingRootNamingIt) {
  auto b = PosixBackend::Open({dir_ / "nope"});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kNotFound);
  EXPECT_NE(b.status().message().find(dir_ / "nope"), std::string::npos);
  EXPECT_NE(b.status().message().find("mkdir -p"), std::string::npos);
}

TEST_F(PosixBackendTest, OpenRejectsFileAsRoot) {
  WriteFile(dir_ / "plain", "x");
  auto b = PosixBackend::Open({dir_ / "plain"});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kInvalidArgument);
  EXPECT_NE(b.status().message().find("is not a directory"), std::string::npos);
  auto under = PosixBackend::Open({dir_ / "plain/sub"});  // a file where a directory is expected
  ASSERT_FALSE(under.ok());
}

TEST_F(PosixBackendTest, OpenRejectsReadOnlyRoot) {
  std::string ro = dir_ / "ro";
  ASSERT_EQ(::mkdir(ro.c_str(), 0755), 0);
  auto mount = ScopedMount::ReadOnlyBind(archive_, ro);
  ASSERT_TRUE(mount.ok());
  auto b = PosixBackend::Open({ro});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kPermissionDenied);
  EXPECT_NE(b.status().message().find(ro + " is not writable"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("read-write"), std::string::npos);
}

TEST_F(PosixBackendTest, OpenRejectsEmptyRoot) {
  auto b = PosixBackend::Open({""});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kInvalidArgument);
}

TEST_F(PosixBackendTest, SmallFileRoundTripsWithChecksum) {
  std::string src = dir_ / "small";
  WriteFile(src, "hello, tape");
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->object_ref, backend_->RelativePath(file_.fid));
  EXPECT_EQ(put->checksum, Xxh3("hello, tape"));
  EXPECT_EQ(put->bytes, 11u);
  EXPECT_EQ(ReadFile(CopyPath()), "hello, tape");
  EXPECT_FALSE(Exists(CopyPath() + "_tmp"));
  EXPECT_EQ(GetXattr(CopyPath(), kChecksumXattr), fmt::format("{:016x}", put->checksum));

  std::string dst = dir_ / "back";
  ASSERT_TRUE(GetInto(*backend_, put->object_ref, dst, put->checksum).ok());
  EXPECT_EQ(ReadFile(dst), "hello, tape");
}

TEST_F(PosixBackendTest, EmptyFileRoundTrips) {
  std::string src = dir_ / "empty";
  WriteFile(src, "");
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->checksum, Xxh3(""));
  EXPECT_EQ(Stat(CopyPath()).st_size, 0);
  std::string dst = dir_ / "back";
  ASSERT_TRUE(GetInto(*backend_, put->object_ref, dst, put->checksum).ok());
  EXPECT_EQ(Stat(dst).st_size, 0);
}

TEST_F(PosixBackendTest, SparseFileStaysSparseBothWays) {
  std::string src = dir_ / "sparse";
  const uint64_t size = 64ull << 20;
  std::string content = MakeSparse(src, size, {{0, RandomBytes(4096, 1)},
                                               {16ull << 20, RandomBytes(1 << 20, 2)},
                                               {size - 4096, RandomBytes(4096, 3)}});
  auto put = PutFile(*backend_, src, {});
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->checksum, Xxh3(content));
  EXPECT_EQ(put->bytes, size);
  struct stat copy = Stat(CopyPath());
  EXPECT_EQ(static_cast<uint64_t>(copy.st_size), size);
  EXPECT_LE(copy.st_blocks * 512, 2 << 20) << "holes were written into the archive copy";
  EXPECT_EQ(Layout(CopyPath()), Layout(src));

  std::string dst = dir_ / "back";
  ASSERT_TRUE(GetInto(*backend_, put->object_ref, dst, put->checksum).ok());
  EXPECT_EQ(static_cast<uint64_t>(Stat(dst).st_size), size);
  EXPECT_LE(Stat(dst).st_blocks * 512, 2 << 20) << "holes were written into the restored file";
  EXPECT_EQ(Layout(dst), Layout(src));
  EXPECT_TRUE(ReadFile(dst) == content);
}

TEST_F(PosixBackendTest, CopyKeepsModeOwnerTimesAndXattrsButNotTheHsmRecord) {
  std::string src = dir_ / "meta";
  WriteFile(src, "data");
  ASSERT_EQ(::chmod(src.c_str(), 0640), 0);
  ASSERT_EQ(::chown(src.c_str(), 1234, 5678), 0);
  SetXattr(src, "user.project", "apollo");
  SetXattr(src, "trusted.other", "kept");
  SetXattr(src, "trusted.tierflow.hsm", "not copied");
  struct timespec times[2] = {{1'600'000'000, 111}, {1'500'000'000, 222}};
  ASSERT_EQ(::utimensat(AT_FDCWD, src.c_str(), times, 0), 0);

  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  struct stat st = Stat(CopyPath());
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_atim.tv_sec, 1'600'000'000);
  EXPECT_EQ(st.st_atim.tv_nsec, 111);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'500'000'000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 222);
  EXPECT_EQ(GetXattr(CopyPath(), "user.project"), "apollo");
  EXPECT_EQ(GetXattr(CopyPath(), "trusted.other"), "kept");
  EXPECT_EQ(GetXattr(CopyPath(), "trusted.tierflow.hsm"), "<none>");
}

TEST_F(PosixBackendTest, CorruptCopyFailsItsChecksumNamingIt) {
  std::string src = dir_ / "f";
  WriteFile(src, RandomBytes(100000, 4));
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok());
  WriteAt(CopyPath(), 5000, "\x42");
  uint64_t actual = Xxh3(ReadFile(CopyPath()));
  Status st = GetInto(*backend_, put->object_ref, dir_ / "back", put->checksum);
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_EQ(st.message(), fmt::format("archive copy {} failed its checksum (expected {:016x}, got {:016x})",
                                      CopyPath(), put->checksum, actual));
}

TEST_F(PosixBackendTest, MissingCopyIsNotFound) {
  Status st = GetInto(*backend_, backend_->RelativePath(file_.fid), dir_ / "back", 0);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("archive copy " + CopyPath() + " is missing"), std::string::npos) << st.message();
}

TEST_F(PosixBackendTest, CancelStopsBetweenChunksAndKeepsThePreviousCopy) {
  std::string src = dir_ / "f";
  WriteFile(src, "old");
  ASSERT_TRUE(PutFile(*backend_, src).ok());
  WriteFile(src, RandomBytes(1 << 20, 5));
  auto small = Open({archive_, false, /*chunk_size=*/64 << 10, /*progress_interval_ms=*/0});
  std::atomic<bool> cancel{false};
  int calls = 0;
  CopyControl ctl{[&](uint64_t, uint64_t) {
                    ++calls;
                    cancel = true;
                  },
                  &cancel};
  auto put = PutFile(*small, src, ctl);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kCanceled);
  EXPECT_EQ(calls, 1) << "the copy went on after the cancel";
  EXPECT_FALSE(Exists(CopyPath() + "_tmp"));
  EXPECT_EQ(ReadFile(CopyPath()), "old");
}

// A mover killed mid-copy must leave nothing in the archive: while the data is being written,
// the copy's directory holds no name for it (the copy is an anonymous inode until whole).
TEST_F(PosixBackendTest, ACopyUnderWayHasNoNameInTheArchive) {
  std::string src = dir_ / "f";
  WriteFile(src, RandomBytes(1 << 20, 9));
  auto small = Open({archive_, false, /*chunk_size=*/64 << 10, /*progress_interval_ms=*/0});
  const std::filesystem::path dir = std::filesystem::path(CopyPath()).parent_path();
  std::vector<std::string> seen_during;
  CopyControl ctl{[&](uint64_t, uint64_t) {
                    if (!seen_during.empty()) return;
                    for (const auto& e : std::filesystem::directory_iterator(dir)) {
                      seen_during.push_back(e.path().filename());
                    }
                    if (seen_during.empty()) seen_during.push_back("(empty)");
                  },
                  nullptr};
  ASSERT_TRUE(PutFile(*small, src, ctl).ok());
  EXPECT_EQ(seen_during, std::vector<std::string>{"(empty)"});
  std::vector<std::string> after;
  for (const auto& e : std::filesystem::directory_iterator(dir)) after.push_back(e.path().filename());
  EXPECT_EQ(after, std::vector<std::string>{std::filesystem::path(CopyPath()).filename()});
}

TEST_F(PosixBackendTest, ProgressIsReportedPerIntervalAndAtTheEnd) {
  std::string src = dir_ / "f";
  WriteFile(src, RandomBytes(1 << 20, 6));
  auto small = Open({archive_, false, 64 << 10, 0});
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  CopyControl ctl{[&](uint64_t done, uint64_t total) { seen.emplace_back(done, total); }, nullptr};
  ASSERT_TRUE(PutFile(*small, src, ctl).ok());
  ASSERT_GE(seen.size(), 16u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LE(seen[i - 1].first, seen[i].first);
  EXPECT_EQ(seen.back(), std::make_pair(uint64_t{1} << 20, uint64_t{1} << 20));

  seen.clear();
  auto quiet = Open({archive_, false, 64 << 10, 3'600'000});  // an hour: only the final report
  ASSERT_TRUE(PutFile(*quiet, src, ctl).ok());
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(PosixBackendTest, NoSpaceIsReportedNamingTheCopyAndLeavesNoTmp) {
  std::string small_fs = dir_ / "small-fs";
  ASSERT_EQ(::mkdir(small_fs.c_str(), 0755), 0);
  ScopedMount tmpfs("tmpfs", small_fs, "tmpfs", 0, "size=1m");
  ASSERT_TRUE(tmpfs.ok());
  auto full = Open({small_fs});
  ASSERT_NE(full, nullptr);
  std::string src = dir_ / "big";
  WriteFile(src, RandomBytes(4 << 20, 7));
  auto put = PutFile(*full, src);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kNoSpace);
  std::string copy = small_fs + "/" + full->RelativePath(file_.fid);
  EXPECT_NE(put.status().message().find(copy), std::string::npos) << put.status().message();
  EXPECT_FALSE(Exists(copy + "_tmp"));
  EXPECT_FALSE(Exists(copy));
}

TEST_F(PosixBackendTest, DeleteRemovesTheCopyAndIsIdempotent) {
  std::string src = dir_ / "f";
  WriteFile(src, "x");
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok());
  WriteFile(CopyPath() + "_tmp", "leftover");
  ASSERT_TRUE(backend_->Delete(put->object_ref).ok());
  EXPECT_FALSE(Exists(CopyPath()));
  EXPECT_FALSE(Exists(CopyPath() + "_tmp"));
  EXPECT_TRUE(backend_->Delete(put->object_ref).ok());
}

TEST_F(PosixBackendTest, ObjectRefsOutsideTheRootAreRefused) {
  WriteFile(dir_ / "victim", "keep me");
  EXPECT_EQ(backend_->Delete("../victim").code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Delete(dir_ / "victim").code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Delete("").code(), Code::kInvalidArgument);
  EXPECT_EQ(GetInto(*backend_, "a/../../victim", dir_ / "back", 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadFile(dir_ / "victim"), "keep me");
}

TEST_F(PosixBackendTest, PutReplacesThePreviousCopy) {
  std::string src = dir_ / "f";
  WriteFile(src, "first version, longer");
  ASSERT_TRUE(PutFile(*backend_, src).ok());
  WriteFile(src, "second");
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(ReadFile(CopyPath()), "second");
  EXPECT_EQ(put->checksum, Xxh3("second"));
}

TEST_F(PosixBackendTest, GetSizesTheDestinationToTheCopy) {
  std::string src = dir_ / "f";
  WriteFile(src, "twelve bytes");
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok());
  std::string dst = dir_ / "back";
  WriteFile(dst, std::string(100, '\0'));
  ASSERT_TRUE(GetInto(*backend_, put->object_ref, dst, put->checksum).ok());
  EXPECT_EQ(ReadFile(dst), "twelve bytes");
}

TEST_F(PosixBackendTest, ObjectRefForIsWherePutPutsTheCopyInBothLayouts) {
  std::string src = dir_ / "f";
  WriteFile(src, "x");
  auto put = PutFile(*backend_, src);
  ASSERT_TRUE(put.ok());
  auto ref = backend_->ObjectRefFor(file_);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(*ref, put->object_ref);
  EXPECT_EQ(*ref, "0001/0000/0401/0000/0002/0000/0x200000401:0x1:0x0");

  auto v2 = Open({archive_, /*v2_paths=*/true});
  ASSERT_NE(v2, nullptr);
  auto put2 = PutFile(*v2, src);
  ASSERT_TRUE(put2.ok());
  auto ref2 = v2->ObjectRefFor(file_);
  ASSERT_TRUE(ref2.ok());
  EXPECT_EQ(*ref2, put2->object_ref);
  EXPECT_EQ(*ref2, "0400/0x200000401:0x1:0x0");
}

TEST_F(PosixBackendTest, ListObjectsNamesEveryWholeCopyButNoTmpOrProbe) {
  std::string src = dir_ / "f";
  WriteFile(src, "x");
  std::set<std::string> expected;
  for (uint32_t oid = 1; oid <= 3; ++oid) {
    hsm::FileId id{file_.fsid, {0x1000 + oid, oid, 0}};
    UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    auto put = backend_->Put(fd.get(), id, {});
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    expected.insert(put->object_ref);
  }
  WriteFile(archive_ + "/" + *expected.begin() + "_tmp", "a Put under way");
  WriteFile(archive_ + "/.tierflow-write-probe-1-0", "");
  ASSERT_EQ(::mkdir((archive_ + "/empty-dir").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(src.c_str(), (archive_ + "/link").c_str()), 0);
  WriteFile(archive_ + "/stray", "not a copy, but a file in the archive");
  expected.insert("stray");

  std::set<std::string> listed;
  Status st = backend_->ListObjects([&](const std::string& ref) { listed.insert(ref); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(listed, expected);
}

TEST_F(PosixBackendTest, ListingAnArchiveThatWentAwayFailsNamingIt) {
  ASSERT_EQ(::mkdir((archive_ + "/0001").c_str(), 0755), 0);
  std::filesystem::remove_all(archive_);
  Status st = backend_->ListObjects([](const std::string&) {});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(archive_), std::string::npos) << st.message();
}

}  // namespace
}  // namespace tierflow::mover
