// Tests for the watcher with a real holder (a thread of this process, or a process the watcher
// starts itself), real released files, `cat` readers in child processes and a requester that
// restores for real with the mover's RestoreFile.
#include "watch/watcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "watch/fanotify.h"
#include "watch/holder_protocol.h"
#include "watch/watch_test_support.h"

namespace tierflow::watch {
namespace {

using namespace testing;  // NOLINT: test helpers

// Restores with mover::RestoreFile, at once or when the test opens the gate; or fails.
class FakeRequester : public RestoreRequester {
 public:
  enum class Mode { kRestore, kRestoreOnAnotherThread, kGate, kFail };
  FakeRequester(mover::ArchiveBackend& backend, Mode mode) : backend_(backend), mode_(mode) {}
  ~FakeRequester() override {
    for (std::thread& t : threads_) t.join();
  }

  void RequestRestore(const hsm::FileId& file, const std::string& path, uint32_t archive_id,
                      std::function<void(Status)> done) override {
    std::unique_lock<std::mutex> lock(mu_);
    calls_.push_back({file, path, archive_id});
    switch (mode_) {
      case Mode::kRestore:
        lock.unlock();
        done(mover::RestoreFile(path, file, backend_, {}));  // before RequestRestore returns
        return;
      case Mode::kRestoreOnAnotherThread:
        threads_.emplace_back(
            [this, file, path, done] { done(mover::RestoreFile(path, file, backend_, {})); });
        return;
      case Mode::kGate:
        gated_.push_back({file, path, std::move(done)});
        cv_.notify_all();
        return;
      case Mode::kFail:
        lock.unlock();
        done(Status(Code::kUnavailable, "archive 1 is not served by any mover"));
        return;
    }
  }
  // Restores every gated file on another thread and reports success.
  void OpenGate() {
    std::lock_guard<std::mutex> lock(mu_);
    for (Gated& g : gated_) {
      threads_.emplace_back(
          [this, g = std::move(g)] { g.done(mover::RestoreFile(g.path, g.file, backend_, {})); });
    }
    gated_.clear();
  }
  // Reports `st` for every gated file without restoring anything.
  void EndGated(const Status& st) {
    std::vector<Gated> gated;
    {
      std::lock_guard<std::mutex> lock(mu_);
      gated.swap(gated_);
    }
    for (Gated& g : gated) g.done(st);
  }
  struct Call {
    hsm::FileId file;
    std::string path;
    uint32_t archive_id;
  };
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  struct Gated {
    hsm::FileId file;
    std::string path;
    std::function<void(Status)> done;
  };
  mover::ArchiveBackend& backend_;
  const Mode mode_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call> calls_;
  std::vector<Gated> gated_;
  std::vector<std::thread> threads_;
};

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.ok()) << "cannot make a loop-mounted ext4 image"; }
  void StartHolder() {
    holder_ = std::make_unique<HolderThread>(fs_.mnt());
    ASSERT_TRUE(holder_->ok()) << holder_->status().ToString();
  }
  std::unique_ptr<Watcher> StartWatcher(RestoreRequester& req,
                                        std::vector<std::string> holder_command = {},
                                        int64_t wait_ms = 10000) {
    WatcherOptions opt;
    opt.mount = fs_.mnt();
    opt.requester = &req;
    opt.holder_command = std::move(holder_command);
    opt.reconnect_delay_ms = 20;
    auto w = Watcher::Start(opt, wait_ms);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? std::move(*w) : nullptr;
  }

  LoopFs fs_;
  std::unique_ptr<HolderThread> holder_;
};

TEST_F(WatcherTest, AReaderOfAReleasedFileGetsItsDataBack) {
  StartHolder();
  std::string path = fs_ / "big";
  std::string content = Pattern(3 << 20, 11);
  MakeReleased(fs_, path, content);
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kRestore);
  auto w = StartWatcher(req);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->Stats().connected);

  auto reader = Cat(path);
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 0) << reader->err();
  EXPECT_TRUE(reader->out() == content) << "the reader got other bytes than the file's";
  auto calls = req.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, path);
  EXPECT_EQ(calls[0].archive_id, 1u);
  EXPECT_EQ(calls[0].file, *mover::IdentifyFile(path));
  EXPECT_FALSE(IsReleased(path));
  WatcherStats s = w->Stats();
  EXPECT_EQ(s.events, 1u);
  EXPECT_EQ(s.restores, 1u);
  EXPECT_EQ(s.allowed, 1u);
  EXPECT_EQ(s.denied, 0u);

  // Restored on demand, the file is as releasable as after an explicit restore.
  Status again = RetryBusy([&] { return mover::ReleaseFile(path); });
  EXPECT_TRUE(again.ok()) << again.ToString();
}

TEST_F(WatcherTest, TenReadersOfOneFileCauseOneRestore) {
  StartHolder();
  std::string path = fs_ / "shared";
  std::string content = Pattern(1 << 20, 12);
  MakeReleased(fs_, path, content);
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kGate);
  auto w = StartWatcher(req);
  ASSERT_NE(w, nullptr);

  std::vector<std::unique_ptr<Child>> readers;
  for (int i = 0; i < 10; ++i) readers.push_back(Cat(path));
  ASSERT_TRUE(WaitFor([&] { return w->Stats().events == 10; }))
      << "events seen: " << w->Stats().events;
  EXPECT_EQ(req.calls().size(), 1u);
  for (auto& r : readers) EXPECT_FALSE(r->Exited());
  req.OpenGate();
  for (auto& r : readers) {
    ASSERT_TRUE(r->Wait());
    EXPECT_EQ(r->exit_code(), 0) << r->err();
    EXPECT_TRUE(r->out() == content);
  }
  EXPECT_EQ(req.calls().size(), 1u);
  EXPECT_EQ(w->Stats().restores, 1u);
  EXPECT_EQ(w->Stats().allowed, 10u);
}

TEST_F(WatcherTest, AFailedRestoreGivesEioAndTheFileStaysReleased) {
  StartHolder();
  std::string path = fs_ / "unreachable";
  MakeReleased(fs_, path, Pattern(20000, 13));
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kFail);
  auto w = StartWatcher(req);
  ASSERT_NE(w, nullptr);
  auto a = Cat(path);
  ASSERT_TRUE(a->Wait());
  EXPECT_EQ(a->exit_code(), 1);
  EXPECT_NE(a->err().find("Input/output error"), std::string::npos) << a->err();
  EXPECT_EQ(a->out(), "");
  EXPECT_TRUE(IsReleased(path));
  // A later reader asks again: a failure is not remembered as an answer.
  auto b = Cat(path);
  ASSERT_TRUE(b->Wait());
  EXPECT_EQ(b->exit_code(), 1);
  EXPECT_EQ(req.calls().size(), 2u);
  EXPECT_EQ(w->Stats().denied, 2u);
}

TEST_F(WatcherTest, ARestoreOnAnotherThreadAnswersTooAndSeveralFilesRestoreApart) {
  StartHolder();
  std::string p1 = fs_ / "one", p2 = fs_ / "two";
  std::string c1 = Pattern(40000, 14), c2 = Pattern(50000, 15);
  MakeReleased(fs_, p1, c1);
  MakeReleased(fs_, p2, c2);
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kRestoreOnAnotherThread);
  auto w = StartWatcher(req);
  ASSERT_NE(w, nullptr);
  auto r1 = Cat(p1);
  auto r2 = Cat(p2);
  ASSERT_TRUE(r1->Wait());
  ASSERT_TRUE(r2->Wait());
  EXPECT_TRUE(r1->out() == c1);
  EXPECT_TRUE(r2->out() == c2);
  EXPECT_EQ(req.calls().size(), 2u);
}

TEST_F(WatcherTest, AReaderWaitsThroughAWatcherCrashAndGetsItsDataFromTheNextOne) {
  StartHolder();
  std::string path = fs_ / "survivor";
  std::string content = Pattern(200000, 16);
  MakeReleased(fs_, path, content);
  FakeRequester stuck(fs_.backend(), FakeRequester::Mode::kGate);
  auto first = StartWatcher(stuck);
  ASSERT_NE(first, nullptr);
  auto reader = Cat(path);
  ASSERT_TRUE(WaitFor([&] { return stuck.calls().size() == 1; }));
  first->Stop();
  first.reset();
  ASSERT_TRUE(WaitFor([&] { return !(*holder_)->Stats().watcher_connected; }));
  EXPECT_FALSE(reader->Exited()) << "the reader must wait, not read zeros";
  EXPECT_EQ((*holder_)->Stats().pending, 1u);

  FakeRequester req(fs_.backend(), FakeRequester::Mode::kRestore);
  auto second = StartWatcher(req);
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 0) << reader->err();
  EXPECT_TRUE(reader->out() == content) << "the reader got other bytes (zeros?)";
  EXPECT_EQ(req.calls().size(), 1u);
  // The first watcher's restore ends late, after the watcher is gone: nothing breaks.
  stuck.EndGated(Status::Ok());
  EXPECT_EQ(second->Stats().allowed, 1u);
}

TEST_F(WatcherTest, AReleasedFileDeletedWhileItsReaderWaitsIsDenied) {
  StartHolder();
  std::string path = fs_ / "doomed";
  MakeReleased(fs_, path, Pattern(8000, 17));
  auto reader = Cat(path);
  ASSERT_TRUE(WaitFor([&] { return (*holder_)->Stats().pending == 1; }));
  ASSERT_EQ(::unlink(path.c_str()), 0);
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kRestore);
  auto w = StartWatcher(req);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 1);
  EXPECT_NE(reader->err().find("Input/output error"), std::string::npos) << reader->err();
  EXPECT_TRUE(req.calls().empty());
}

TEST_F(WatcherTest, NoHolderAndNoCommandMeansUnavailable) {
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kRestore);
  WatcherOptions opt;
  opt.mount = fs_.mnt();
  opt.requester = &req;
  auto w = Watcher::Start(opt, 300);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kUnavailable);
  EXPECT_NE(w.status().message().find(HolderSocketPath(fs_.fsid())), std::string::npos);
}

// Kills the holder process named by a pass connection's peer at scope exit.
struct HolderProcess {
  pid_t pid = 0;
  std::string socket;
  ~HolderProcess() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    WaitFor([&] { return !std::filesystem::exists(socket); });
  }
};

TEST_F(WatcherTest, TheWatcherStartsAHolderProcessWhenNoneRuns) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  FakeRequester req(fs_.backend(), FakeRequester::Mode::kRestore);
  HolderProcess holder;  // stopped after the watcher (which would start another one)
  holder.socket = HolderSocketPath(fs_.fsid());
  auto w = StartWatcher(req, {self, "--tf-watch-child", "holder", fs_.mnt()}, 20000);
  ASSERT_NE(w, nullptr);
  auto probe = ConnectToHolder(holder.socket, Role::kPass, 5000);
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  ucred cred{};
  socklen_t len = sizeof(cred);
  ASSERT_EQ(::getsockopt(probe->get(), SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
  holder.pid = cred.pid;
  EXPECT_NE(holder.pid, ::getpid());

  // The holder is another process now: our own I/O needs a pass.
  ASSERT_TRUE(EnsureHolderPass(fs_.fsid()).ok());
  std::string path = fs_ / "far";
  std::string content = Pattern(100000, 18);
  MakeReleased(fs_, path, content);
  auto reader = Cat(path);
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 0) << reader->err();
  EXPECT_TRUE(reader->out() == content);
  EXPECT_EQ(req.calls().size(), 1u);
  w->Stop();
}

TEST(WatcherOnXfsTest, AReaderOfAReleasedFileGetsItsDataBack) {
  LoopFs fs("xfs");
  if (!fs.ok() && !mover::testing::LoopMount::HaveMkfs("xfs")) {
    GTEST_SKIP() << "mkfs.xfs is not installed";
  }
  ASSERT_TRUE(fs.ok()) << "cannot make a loop-mounted xfs image";
  EXPECT_EQ(*CheckWatchableFilesystem(fs.mnt()), "xfs");
  HolderThread holder(fs.mnt());
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  std::string path = fs / "x";
  std::string content = Pattern(1 << 20, 20);
  MakeReleased(fs, path, content);
  FakeRequester req(fs.backend(), FakeRequester::Mode::kRestore);
  WatcherOptions opt;
  opt.mount = fs.mnt();
  opt.requester = &req;
  auto w = Watcher::Start(opt, 10000);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto reader = Cat(path);
  ASSERT_TRUE(reader->Wait());
  EXPECT_EQ(reader->exit_code(), 0) << reader->err();
  EXPECT_TRUE(reader->out() == content);
  EXPECT_EQ(req.calls().size(), 1u);
  EXPECT_FALSE(IsReleased(path));
}

size_t OpenFds() {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                           std::filesystem::directory_iterator()));
}

TEST(EnsureHolderPassTest, NoHolderIsFineAndABrokenPassIsDropped) {
  LoopFs fs;
  ASSERT_TRUE(fs.ok());
  EXPECT_TRUE(EnsureHolderPass(fs.fsid()).ok()) << "no socket: nothing watches";
  size_t before = OpenFds();
  {
    auto h = std::make_unique<HolderThread>(fs.mnt());
    ASSERT_TRUE(h->ok());
    ASSERT_TRUE(EnsureHolderPass(fs.fsid()).ok());
    size_t with_pass = OpenFds();
    ASSERT_TRUE(EnsureHolderPass(fs.fsid()).ok());
    EXPECT_EQ(OpenFds(), with_pass) << "the pass is cached";
  }
  EXPECT_EQ(OpenFds(), before + 1) << "the cached pass outlives its holder";
  EXPECT_TRUE(EnsureHolderPass(fs.fsid()).ok()) << "holder gone, socket gone: nothing to do";
  EXPECT_EQ(OpenFds(), before) << "the broken pass is closed";

  // A socket file nobody listens on (a crashed holder) is no holder either.
  std::string socket = HolderSocketPath(fs.fsid());
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket.c_str());
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  EXPECT_TRUE(EnsureHolderPass(fs.fsid()).ok());
  EXPECT_EQ(OpenFds(), before);
}

}  // namespace
}  // namespace tierflow::watch
