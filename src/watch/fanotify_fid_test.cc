// Tests for the file-id half of fanotify.h: the event parser on hand-built records (well formed
// and damaged), handles to file ids for each filesystem's handle type, and a real file-id group
// with a filesystem mark on loop-mounted ext4 and xfs images.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "mover/fs/fs_test_support.h"
#include "mover/fs/local_fs.h"
#include "mover/fs/loop_mount_test_support.h"
#include "watch/fanotify.h"

namespace tierflow::watch {
namespace {

using mover::testing::LoopMount;
using mover::testing::WriteFile;

template <typename T>
void Append(std::string* buf, const T& v) {
  buf->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// One event record as the kernel writes it for a file-id group.
std::string FidEventRecord(uint64_t mask, int32_t pid, uint32_t fsid0, uint32_t fsid1,
                           int32_t handle_type, const std::string& handle) {
  std::string info;
  fanotify_event_info_fid fid{};
  fid.hdr.info_type = FAN_EVENT_INFO_TYPE_FID;
  fid.fsid.val[0] = static_cast<int>(fsid0);
  fid.fsid.val[1] = static_cast<int>(fsid1);
  file_handle fh{};
  fh.handle_bytes = static_cast<unsigned>(handle.size());
  fh.handle_type = handle_type;
  size_t len = sizeof(fid) + sizeof(fh) + handle.size();
  len = (len + 3) & ~size_t{3};  // the kernel pads records to 4 bytes
  fid.hdr.len = static_cast<uint16_t>(len);
  Append(&info, fid);
  Append(&info, fh);
  info += handle;
  info.resize(len, '\0');
  fanotify_event_metadata md{};
  md.event_len = static_cast<uint32_t>(sizeof(md) + info.size());
  md.vers = FANOTIFY_METADATA_VERSION;
  md.metadata_len = sizeof(md);
  md.mask = mask;
  md.fd = FAN_NOFD;
  md.pid = pid;
  std::string out;
  Append(&out, md);
  return out + info;
}

std::string Handle32(uint32_t ino, uint32_t gen) {
  std::string h;
  Append(&h, ino);
  Append(&h, gen);
  return h;
}

TEST(ParseFidEvents, ReadsMaskPidFsidAndHandle) {
  std::string buf = FidEventRecord(FAN_MODIFY, 42, 0x1234abcd, 0x00ff0001, 1, Handle32(12, 7));
  buf += FidEventRecord(FAN_DELETE_SELF, 43, 1, 2, 0x81, std::string(12, 'x'));
  auto events = ParseFidEvents(buf);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  const FidEvent& a = (*events)[0];
  EXPECT_EQ(a.mask, FAN_MODIFY);
  EXPECT_EQ(a.pid, 42);
  EXPECT_EQ(a.fsid, "1234abcd00ff0001");
  EXPECT_EQ(a.handle_type, 1);
  EXPECT_EQ(a.handle, Handle32(12, 7));
  EXPECT_EQ((*events)[1].mask, FAN_DELETE_SELF);
  EXPECT_EQ((*events)[1].handle, std::string(12, 'x'));
  EXPECT_EQ((*events)[1].fsid, "0000000100000002");
}

TEST(ParseFidEvents, OverflowHasNoHandle) {
  fanotify_event_metadata md{};
  md.event_len = sizeof(md);
  md.vers = FANOTIFY_METADATA_VERSION;
  md.metadata_len = sizeof(md);
  md.mask = FAN_Q_OVERFLOW;
  md.fd = FAN_NOFD;
  std::string buf;
  Append(&buf, md);
  auto events = ParseFidEvents(buf);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].mask, FAN_Q_OVERFLOW);
  EXPECT_TRUE((*events)[0].handle.empty());
}

TEST(ParseFidEvents, OtherInfoRecordsAreSkipped) {
  std::string rec = FidEventRecord(FAN_MODIFY, 1, 1, 2, 1, Handle32(5, 6));
  // Append a record of an unknown type (8 bytes) and grow the event to hold it.
  fanotify_event_info_header other{99, 0, 8};
  Append(&rec, other);
  rec.append(4, '\0');
  auto* md = reinterpret_cast<fanotify_event_metadata*>(rec.data());
  md->event_len = static_cast<uint32_t>(rec.size());
  auto events = ParseFidEvents(rec);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].handle, Handle32(5, 6));
}

TEST(ParseFidEvents, DamagedBuffersAreErrorsNamingTheOffset) {
  std::string good = FidEventRecord(FAN_MODIFY, 1, 1, 2, 1, Handle32(5, 6));
  // Truncated second event.
  auto truncated = ParseFidEvents(good + good.substr(0, 10));
  EXPECT_EQ(truncated.status().code(), Code::kCorrupt);
  EXPECT_NE(truncated.status().message().find(std::to_string(good.size())), std::string::npos)
      << truncated.status().message();
  // Event length beyond the buffer.
  std::string too_long = good;
  reinterpret_cast<fanotify_event_metadata*>(too_long.data())->event_len += 64;
  EXPECT_EQ(ParseFidEvents(too_long).status().code(), Code::kCorrupt);
  // A handle claiming more bytes than its record has.
  std::string big_handle = good;
  auto* fh = reinterpret_cast<file_handle*>(big_handle.data() + sizeof(fanotify_event_metadata) +
                                            sizeof(fanotify_event_info_fid));
  fh->handle_bytes = 200;
  EXPECT_EQ(ParseFidEvents(big_handle).status().code(), Code::kCorrupt);
  // An info record of length zero would loop forever.
  std::string zero_len = good;
  reinterpret_cast<fanotify_event_info_header*>(zero_len.data() + sizeof(fanotify_event_metadata))
      ->len = 0;
  EXPECT_EQ(ParseFidEvents(zero_len).status().code(), Code::kCorrupt);
  // Another metadata version.
  std::string version = good;
  reinterpret_cast<fanotify_event_metadata*>(version.data())->vers = 2;
  EXPECT_EQ(ParseFidEvents(version).status().code(), Code::kCorrupt);
  EXPECT_TRUE(ParseFidEvents("").ok());
}

TEST(FidFromHandle, EachFilesystemsHandleType) {
  auto ext = FidFromHandle(1, Handle32(4242, 99));
  ASSERT_TRUE(ext.ok());
  EXPECT_EQ(*ext, (hsm::Fid{4242, 99, 0}));

  std::string xfs64;
  Append(&xfs64, uint64_t{0x1'0000'0081});
  Append(&xfs64, uint32_t{5});
  auto big = FidFromHandle(0x81, xfs64);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(*big, (hsm::Fid{0x1'0000'0081, 5, 0}));

  std::string btrfs;
  Append(&btrfs, uint64_t{257});  // objectid
  Append(&btrfs, uint64_t{5});    // root
  Append(&btrfs, uint32_t{8});    // gen
  auto b = FidFromHandle(0x4d, btrfs);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (hsm::Fid{257, 8, 0}));

  EXPECT_EQ(FidFromHandle(1, "short").status().code(), Code::kCorrupt);
  auto unknown = FidFromHandle(0x97, std::string(16, '\0'));
  EXPECT_EQ(unknown.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(unknown.status().message().find("0x97"), std::string::npos);
}

class FidGroupTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!LoopMount::HaveMkfs(GetParam())) GTEST_SKIP() << "mkfs." << GetParam() << " missing";
    fs_ = std::make_unique<LoopMount>(GetParam());
    ASSERT_TRUE(fs_->ok()) << "cannot loop-mount a " << GetParam() << " image";
  }
  std::unique_ptr<LoopMount> fs_;
};

// The kernel's own handle of a file (name_to_handle_at) maps to the id IdentifyFile gives it.
TEST_P(FidGroupTest, KernelHandlesMapToTheFileIdAndOpenUntilTheFileIsGone) {
  std::string path = *fs_ / "f";
  WriteFile(path, "hello");
  std::vector<char> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  ASSERT_EQ(::name_to_handle_at(AT_FDCWD, path.c_str(), fh, &mount_id, 0), 0);
  std::string handle(buf.data() + sizeof(file_handle), fh->handle_bytes);
  auto fid = FidFromHandle(fh->handle_type, handle);
  ASSERT_TRUE(fid.ok()) << fid.status().ToString();
  auto id = mover::IdentifyFile(path);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*fid, id->fid);

  UniqueFd mount_fd(::open(fs_->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto opened = OpenByHandle(mount_fd.get(), fh->handle_type, handle, O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  char data[8] = {};
  EXPECT_EQ(::read(opened->get(), data, sizeof(data)), 5);
  EXPECT_STREQ(data, "hello");
  opened->Reset();

  ASSERT_EQ(::unlink(path.c_str()), 0);
  Status gone = Status::Ok();
  for (int i = 0; i < 200; ++i) {  // xfs frees unlinked inodes in the background
    auto again = OpenByHandle(mount_fd.get(), fh->handle_type, handle, O_RDONLY);
    gone = again.status();
    if (!again.ok()) break;
    ::usleep(10'000);
  }
  EXPECT_EQ(gone.code(), Code::kNotFound) << gone.ToString();
}

TEST_P(FidGroupTest, AFilesystemMarkReportsModifyAndDeleteWithTheFilesId) {
  auto group = InitFidGroup(/*nonblocking=*/true);
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  Status marked =
      MarkFilesystemFid(group->get(), fs_->path(), FAN_MODIFY | FAN_CLOSE_WRITE | FAN_DELETE_SELF);
  ASSERT_TRUE(marked.ok()) << marked.ToString();
  std::string path = *fs_ / "sub-dir-file";
  WriteFile(path, "data");
  auto id = mover::IdentifyFile(path);
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(::unlink(path.c_str()), 0);

  uint64_t seen = 0;
  std::vector<char> buf(64 << 10);
  for (;;) {
    pollfd p{group->get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    ssize_t n = ::read(group->get(), buf.data(), buf.size());
    if (n <= 0) break;
    auto events = ParseFidEvents(std::string_view(buf.data(), static_cast<size_t>(n)));
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    for (const FidEvent& ev : *events) {
      auto fid = FidFromHandle(ev.handle_type, ev.handle);
      ASSERT_TRUE(fid.ok()) << fid.status().ToString();
      EXPECT_EQ(hsm::FileId({ev.fsid, *fid}), *id);
      EXPECT_EQ(ev.pid, ::getpid());
      seen |= ev.mask;
    }
    if ((seen & FAN_DELETE_SELF) != 0) break;
  }
  EXPECT_NE(seen & FAN_MODIFY, 0u);
  EXPECT_NE(seen & FAN_CLOSE_WRITE, 0u);
  EXPECT_NE(seen & FAN_DELETE_SELF, 0u);
}

INSTANTIATE_TEST_SUITE_P(Filesystems, FidGroupTest, ::testing::Values("ext4", "xfs"));

TEST(FidGroup, MarkingAMissingPathNamesIt) {
  auto group = InitFidGroup(/*nonblocking=*/true);
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  Status st = MarkFilesystemFid(group->get(), "/no/such/mount", FAN_MODIFY);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("/no/such/mount"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace tierflow::watch
