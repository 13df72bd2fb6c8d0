// Tests for the holder on a loop-mounted ext4 image: the holder runs on a thread of this
// process (so this process's own I/O is trusted, as the holder's is), readers are `cat`
// children, and the tests play the watcher by hand over the real socket protocol.
#include "watch/holder.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "watch/fanotify.h"
#include "watch/holder_protocol.h"
#include "watch/watch_test_support.h"

namespace tierflow::watch {
namespace {

using namespace testing;  // NOLINT: test helpers

class HolderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.ok()) << "cannot make a loop-mounted ext4 image"; }

  std::unique_ptr<HolderThread> StartHolder() {
    auto h = std::make_unique<HolderThread>(fs_.mnt());
    EXPECT_TRUE(h->ok()) << h->status().ToString();
    return h;
  }
  // Connects as the watcher and receives one event.
  static UniqueFd ConnectWatcher(Holder& h) {
    auto sock = ConnectToHolder(h.socket_path(), Role::kWatcher, 5000);
    EXPECT_TRUE(sock.ok()) << sock.status().ToString();
    return sock.ok() ? std::move(*sock) : UniqueFd();
  }
  static Received NextEvent(int sock) {
    pollfd p{sock, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 10000), 1) << "no event within 10 s";
    auto got = ReceiveMessage(sock);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return Received{RefusedMsg{"none"}, UniqueFd()};
    EXPECT_TRUE(std::holds_alternative<EventMsg>(got->msg));
    return std::move(*got);
  }
  // Restores `path` for real (this process is trusted by the holder).
  void Restore(const std::string& path) {
    auto id = mover::IdentifyFile(path);
    ASSERT_TRUE(id.ok());
    Status st = mover::RestoreFile(path, *id, fs_.backend(), {});
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  LoopFs fs_;
};

TEST_F(HolderTest, TmpfsIsRefusedByName) {
  std::string dir = fs_.run_dir() + "-tmpfs";
  ASSERT_TRUE(std::filesystem::create_directories(dir));
  ASSERT_EQ(::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m"), 0);
  auto h = Holder::Start({dir, ""});
  ::umount2(dir.c_str(), MNT_DETACH);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(h.status().message().find("tmpfs"), std::string::npos) << h.status().message();
}

TEST_F(HolderTest, AResidentFileIsAllowedAndThenIgnored) {
  std::string path = fs_ / "resident";
  std::string content = Pattern(100000, 1);
  WriteFile(path, content);
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  EXPECT_EQ((*h)->fsid(), fs_.fsid());
  EXPECT_EQ((*h)->socket_path(), HolderSocketPath(fs_.fsid()));

  auto first = Cat(path);
  ASSERT_TRUE(first->Wait());
  EXPECT_EQ(first->out(), content);
  HolderStats s1 = (*h)->Stats();
  EXPECT_GE(s1.events, 1u);
  EXPECT_EQ(s1.allowed_resident, s1.events);
  EXPECT_EQ(s1.ignore_marks, 1u);
  EXPECT_EQ(s1.pending, 0u);

  auto second = Cat(path);
  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(second->out(), content);
  EXPECT_EQ((*h)->Stats().events, s1.events) << "the ignore mark should keep reads in the kernel";

  // A write passes under the mark too, and clears it: the next reader is looked at again.
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_EQ(::pwrite(fd, "Z", 1, 0), 1);
  ::close(fd);
  HolderStats s2 = (*h)->Stats();
  EXPECT_EQ(s2.events, s1.events);
  auto third = Cat(path);
  ASSERT_TRUE(third->Wait());
  EXPECT_EQ(third->out(), "Z" + content.substr(1));
  HolderStats s3 = (*h)->Stats();
  EXPECT_GT(s3.events, s2.events);
  EXPECT_EQ(s3.ignore_marks, 2u);
}

TEST_F(HolderTest, AReaderOfAReleasedFileWaitsForTheWatcher) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  std::string path = fs_ / "released";
  std::string content = Pattern(300000, 2);
  MakeReleased(fs_, path, content);

  auto reader = Cat(path);
  ASSERT_TRUE(WaitFor([&] { return (*h)->Stats().pending == 1; }));
  EXPECT_FALSE(reader->Exited());
  EXPECT_FALSE((*h)->Stats().watcher_connected);

  WelcomeMsg welcome;
  auto sock = ConnectToHolder((*h)->socket_path(), Role::kWatcher, 5000, &welcome);
  ASSERT_TRUE(sock.ok()) << sock.status().ToString();
  EXPECT_EQ(welcome.fsid, fs_.fsid());
  EXPECT_EQ(welcome.mount, std::filesystem::canonical(fs_.mnt()).string());
  Received got = NextEvent(sock->get());
  const EventMsg& ev = std::get<EventMsg>(got.msg);
  EXPECT_EQ(ev.pid, reader->pid());
  // The reader is held at its open (a released file is restored before anyone other than
  // tierflow opens it).
  EXPECT_EQ(ev.mask, kFanOpenPerm);
  EXPECT_FALSE(ev.has_range);
  ASSERT_TRUE(got.fd.valid());
  struct stat a {
  }, b{};
  ASSERT_EQ(::fstat(got.fd.get(), &a), 0);
  ASSERT_EQ(::stat(path.c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_TRUE((*h)->Stats().watcher_connected);
  EXPECT_FALSE(reader->Exited());

  Restore(path);
  ASSERT_TRUE(SendMessage(sock->get(), AnswerMsg{ev.token, 0}).ok());
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 0);
  EXPECT_EQ(reader->out(), content);
  HolderStats s = (*h)->Stats();
  EXPECT_EQ(s.forwarded, 1u);
  EXPECT_EQ(s.answered, 1u);
  EXPECT_EQ(s.pending, 0u);
}

TEST_F(HolderTest, AWatcherDenialReachesTheReader) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  std::string path = fs_ / "denied";
  MakeReleased(fs_, path, Pattern(5000, 3));
  UniqueFd sock = ConnectWatcher(**h);
  auto reader = Cat(path);
  Received got = NextEvent(sock.get());
  ASSERT_TRUE(SendMessage(sock.get(), AnswerMsg{std::get<EventMsg>(got.msg).token, EIO}).ok());
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 1);
  EXPECT_NE(reader->err().find("Input/output error"), std::string::npos) << reader->err();
  EXPECT_EQ(reader->out(), "");
  EXPECT_TRUE(IsReleased(path));
}

TEST_F(HolderTest, PendingEventsGoToTheNextWatcher) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  std::string path = fs_ / "resent";
  std::string content = Pattern(70000, 4);
  MakeReleased(fs_, path, content);
  auto reader = Cat(path);

  UniqueFd first = ConnectWatcher(**h);
  Received got = NextEvent(first.get());
  uint64_t token = std::get<EventMsg>(got.msg).token;
  got.fd.Reset();
  first.Reset();  // the watcher dies without answering
  ASSERT_TRUE(WaitFor([&] { return !(*h)->Stats().watcher_connected; }));
  EXPECT_FALSE(reader->Exited());
  EXPECT_EQ((*h)->Stats().pending, 1u);

  UniqueFd second = ConnectWatcher(**h);
  Received again = NextEvent(second.get());
  EXPECT_EQ(std::get<EventMsg>(again.msg).token, token);
  EXPECT_EQ(std::get<EventMsg>(again.msg).pid, reader->pid());
  EXPECT_TRUE(WaitFor([&] { return (*h)->Stats().forwarded == 2; }));
  Restore(path);
  ASSERT_TRUE(SendMessage(second.get(), AnswerMsg{token, 0}).ok());
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->out(), content);
}

TEST_F(HolderTest, OnlyOneWatcherAtATime) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  UniqueFd first = ConnectWatcher(**h);
  auto second = ConnectToHolder((*h)->socket_path(), Role::kWatcher, 5000);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("a watcher is already connected"), std::string::npos)
      << second.status().message();
  // A pass is not a watcher: it is welcome meanwhile.
  EXPECT_TRUE(ConnectToHolder((*h)->socket_path(), Role::kPass, 5000).ok());
  first.Reset();
  Result<UniqueFd> third = Status(Code::kInternal, "not tried");
  ASSERT_TRUE(WaitFor([&] {
    third = ConnectToHolder((*h)->socket_path(), Role::kWatcher, 5000);
    return third.ok();
  })) << third.status().ToString();
}

TEST_F(HolderTest, StopDeniesWaitingReadersWithEio) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  std::string path = fs_ / "stopped";
  MakeReleased(fs_, path, Pattern(5000, 5));
  std::string socket = (*h)->socket_path();
  auto a = Cat(path);
  auto b = Cat(path);
  ASSERT_TRUE(WaitFor([&] { return (*h)->Stats().pending == 2; }));
  h->Stop();
  for (auto* r : {a.get(), b.get()}) {
    ASSERT_TRUE(r->Wait());
    EXPECT_EQ(r->exit_code(), 1);
    EXPECT_NE(r->err().find("Input/output error"), std::string::npos) << r->err();
  }
  HolderStats s = (*h)->Stats();
  EXPECT_EQ(s.denied, 2u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_FALSE(std::filesystem::exists(socket)) << "the socket goes with the holder";
}

TEST_F(HolderTest, APassClientsProcessIsTrusted) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  std::string path = fs_ / "passed";
  MakeReleased(fs_, path, Pattern(6000, 6));
  uint64_t trusted = (*h)->Stats().allowed_trusted;
  // Without a watcher a reader would wait; the pass lets its process read at once (the holes
  // of the released file: a pass is for tierflow's own I/O).
  auto child = SelfChild({"pass-read", fs_.fsid(), path});
  ASSERT_TRUE(child->Wait());
  EXPECT_EQ(child->exit_code(), 0) << child->err();
  EXPECT_EQ(child->out(), std::string(6000, '\0'));
  HolderStats s = (*h)->Stats();
  EXPECT_GT(s.allowed_trusted, trusted);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.forwarded, 0u);
}

TEST_F(HolderTest, OneHolderPerFilesystemAndStaleSocketsAreReplaced) {
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  std::string socket = (*h)->socket_path();
  auto again = Holder::Start({fs_.mnt(), ""});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  EXPECT_NE(again.status().message().find("a holder already watches"), std::string::npos);
  h.reset();
  ASSERT_FALSE(std::filesystem::exists(socket));

  {  // a socket file left by a crashed holder: bound, never unlinked
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket.c_str());
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_TRUE(std::filesystem::is_socket(socket));
  auto fresh = StartHolder();
  ASSERT_TRUE(fresh->ok());
  struct stat st {};
  ASSERT_EQ(::stat(socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(fs_.run_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(ConnectToHolder(socket, Role::kPass, 5000).ok());
}

// A release punches under its own exclusive write lease. An event raised then would make the
// kernel open the event's descriptor against that lease: the holder must not stall on it.
// Once the releasing process has touched the file (as a trusted process), the file carries an
// ignore mark and the punch raises no event at all.
TEST_F(HolderTest, AReleaseUnderItsWriteLeaseNeverStallsTheHolder) {
  std::string cold = fs_ / "cold", warm = fs_ / "warm";
  std::string content = Pattern(50000, 8);
  for (const std::string& p : {cold, warm}) {
    WriteFile(p, content);
    auto id = mover::IdentifyFile(p);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(mover::ArchiveFile(p, *id, 1, fs_.backend(), {}).ok());
  }
  auto h = StartHolder();  // after the archive: neither file has an ignore mark
  ASSERT_TRUE(h->ok());

  // Untouched since the holder started: the punch raises an event whose descriptor the kernel
  // cannot open while the lease is held. The punch fails at once (EPERM) instead of waiting
  // for the lease to break (45 s) with the holder stuck in read() meanwhile.
  int64_t t0 = NowMs();
  Status st = mover::ReleaseFile(cold);
  EXPECT_LT(NowMs() - t0, 10000) << "the release waited for its own lease to break";
  if (!st.ok()) std::fprintf(stderr, "release of an unmarked file: %s\n", st.ToString().c_str());
  // The holder is not stuck either: a reader of a resident file goes through.
  std::string other = fs_ / "other";
  WriteFile(other, "still served");
  auto reader = Cat(other);
  ASSERT_TRUE(reader->Wait(5000));
  EXPECT_EQ(reader->out(), "still served");

  // Touched first (one byte, as the releasing process): marked, so the punch raises no event.
  int fd = ::open(warm.c_str(), O_RDONLY | O_CLOEXEC);
  char byte;
  ASSERT_EQ(::pread(fd, &byte, 1, 0), 1);
  ::close(fd);
  uint64_t events = (*h)->Stats().events;
  t0 = NowMs();
  st = RetryBusy([&] { return mover::ReleaseFile(warm); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_LT(NowMs() - t0, 10000);
  EXPECT_EQ((*h)->Stats().events, events) << "the punch of a marked file raises no event";
  EXPECT_TRUE(IsReleased(warm));
  // The punch cleared the mark: a reader of the released file is held again.
  auto waiting = Cat(warm);
  ASSERT_TRUE(WaitFor([&] { return (*h)->Stats().pending == 1; }));
  EXPECT_FALSE(waiting->Exited());
}

// The holder keeps nothing open on the filesystem (its marks pin nothing either), so the
// filesystem unmounts, and the holder notices and ends.
TEST_F(HolderTest, TheFilesystemUnmountsUnderAHolderWhichThenEnds) {
  std::string path = fs_ / "marked";
  WriteFile(path, Pattern(1000, 7));
  auto h = StartHolder();
  ASSERT_TRUE(h->ok());
  auto reader = Cat(path);
  ASSERT_TRUE(reader->Wait());
  ASSERT_EQ((*h)->Stats().ignore_marks, 1u);
  ASSERT_TRUE(fs_.Unmount()) << "umount failed: " << std::strerror(errno);
  EXPECT_TRUE(WaitFor([&] { return h->done(); })) << "Run() should return after the unmount";
}

}  // namespace
}  // namespace tierflow::watch
