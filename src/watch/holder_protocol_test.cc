// Tests for the holder protocol: the codec on hand-built and random bytes, descriptor passing
// over a real socket pair, and ConnectToHolder against missing, stale, refusing and silent
// listeners.
#include "watch/holder_protocol.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "watch/fanotify.h"
#include "watch/watch_test_support.h"

namespace tierflow::watch {
namespace {

using namespace testing;  // NOLINT: test helpers

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

TEST(HolderProtocolTest, EveryMessageRoundTrips) {
  std::vector<HolderMessage> msgs = {
      HelloMsg{Role::kWatcher},
      HelloMsg{Role::kPass},
      WelcomeMsg{"0123456789abcdef", "/data"},
      RefusedMsg{"a watcher is already connected"},
      EventMsg{7, 0x100000, 4242, true, 1ULL << 40, 4096},
      EventMsg{UINT64_MAX, 0, -1, false, 0, 0},
      AnswerMsg{9, EIO},
      AnswerMsg{10, 0},
  };
  for (const HolderMessage& m : msgs) {
    auto got = DecodeMessage(EncodeMessage(m));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->index(), m.index());
    EXPECT_EQ(EncodeMessage(*got), EncodeMessage(m));
  }
  auto ev = DecodeMessage(EncodeMessage(EventMsg{7, 0x100000, 4242, true, 1ULL << 40, 4096}));
  const auto& e = std::get<EventMsg>(*ev);
  EXPECT_EQ(e.token, 7u);
  EXPECT_EQ(e.mask, 0x100000u);
  EXPECT_EQ(e.pid, 4242);
  EXPECT_TRUE(e.has_range);
  EXPECT_EQ(e.offset, 1ULL << 40);
  EXPECT_EQ(e.count, 4096u);
  auto w = DecodeMessage(EncodeMessage(WelcomeMsg{"f", "/m"}));
  EXPECT_EQ(std::get<WelcomeMsg>(*w).mount, "/m");
}

TEST(HolderProtocolTest, TheLayoutIsLittleEndianAsDocumented) {
  EXPECT_EQ(EncodeMessage(HelloMsg{Role::kPass}), Bytes({1, 2}));
  EXPECT_EQ(EncodeMessage(AnswerMsg{0x0102, 5}), Bytes({5, 2, 1, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0}));
  EXPECT_EQ(EncodeMessage(RefusedMsg{"no"}), Bytes({3, 2, 0, 0, 0, 'n', 'o'}));
  EXPECT_EQ(EncodeMessage(EventMsg{}).size(), 38u);
}

TEST(HolderProtocolTest, DecodeRejectsGarbage) {
  std::string event = EncodeMessage(EventMsg{1, 2, 3, true, 4, 5});
  std::string bad_range = event;
  bad_range[21] = 2;  // has_range
  std::vector<std::string> garbage = {
      "",
      Bytes({0}),
      Bytes({6}),
      Bytes({0xff, 1}),
      Bytes({1}),                   // hello without a role
      Bytes({1, 3}),                // unknown role
      Bytes({1, 1, 0}),             // trailing byte
      Bytes({2, 5, 0, 0, 0, 'a'}),  // fsid longer than the packet
      Bytes({3, 0xff, 0xff, 0xff, 0xff}),
      event.substr(0, event.size() - 1),
      event + "x",
      bad_range,
      Bytes({5, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0}),  // answer one byte short
  };
  for (const std::string& g : garbage) {
    auto got = DecodeMessage(g);
    EXPECT_FALSE(got.ok()) << "accepted " << ::testing::PrintToString(g);
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
    }
  }
}

// Whatever the bytes, decoding never crashes, and what it accepts encodes back to the same bytes
// (the encoding is canonical, so a message has one meaning).
TEST(HolderProtocolTest, RandomBytesDecodeCanonicallyOrNotAtAll) {
  std::mt19937_64 rng(42);
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string s(rng() % 48, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 8 == 0 ? rng() % 6 : rng());
    if (!s.empty() && rng() % 2 == 0) s[0] = static_cast<char>(1 + rng() % 5);
    auto got = DecodeMessage(s);
    if (!got.ok()) continue;
    ++accepted;
    EXPECT_EQ(EncodeMessage(*got), s);
  }
  EXPECT_GT(accepted, 0);
}

class SocketPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a_ = UniqueFd(sv[0]);
    b_ = UniqueFd(sv[1]);
  }
  UniqueFd a_, b_;
};

TEST_F(SocketPairTest, ADescriptorTravelsWithItsMessage) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  ASSERT_TRUE(SendMessage(a_.get(), EventMsg{5, kFanPreAccess, 1, false, 0, 0}, wr.get()).ok());
  wr.Reset();  // only the received copy keeps the pipe open now
  auto got = ReceiveMessage(b_.get());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(std::get<EventMsg>(got->msg).token, 5u);
  ASSERT_TRUE(got->fd.valid());
  EXPECT_EQ(::fcntl(got->fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(::write(got->fd.get(), "hi", 2), 2);
  char buf[2];
  ASSERT_EQ(::read(rd.get(), buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");

  ASSERT_TRUE(SendMessage(a_.get(), AnswerMsg{5, 0}).ok());
  auto plain = ReceiveMessage(b_.get());
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->fd.valid());
}

TEST_F(SocketPairTest, AGarbagePacketIsRefusedAndItsDescriptorClosed) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  // A raw packet with an unknown type and the pipe's write end attached.
  char byte = 9;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int fd = wr.get();
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ASSERT_EQ(::sendmsg(a_.get(), &mh, 0), 1);
  wr.Reset();
  auto got = ReceiveMessage(b_.get());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
  // Every write end is closed again: the pipe reads EOF.
  char buf;
  EXPECT_EQ(::read(rd.get(), &buf, 1), 0);
}

TEST_F(SocketPairTest, AClosedPeerAndAnEmptyNonblockingSocketAreUnavailable) {
  ASSERT_EQ(::fcntl(b_.get(), F_SETFL, O_NONBLOCK), 0);
  auto empty = ReceiveMessage(b_.get());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kUnavailable);
  EXPECT_NE(empty.status().message().find("would block"), std::string::npos);
  a_.Reset();
  auto closed = ReceiveMessage(b_.get());
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.status().code(), Code::kUnavailable);
  EXPECT_NE(closed.status().message().find("closed"), std::string::npos);
  Status sent = SendMessage(b_.get(), AnswerMsg{1, 0});
  EXPECT_EQ(sent.code(), Code::kUnavailable) << sent.ToString();
}

class ConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tierflow-proto-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/holder.sock";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  UniqueFd Listen() {
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(s.get(), 4), 0);
    return s;
  }
  std::string dir_, path_;
};

TEST_F(ConnectTest, NoSocketAndAStaleSocketAreNotFound) {
  auto missing = ConnectToHolder(path_, Role::kPass, 1000);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find(path_), std::string::npos);
  { UniqueFd stale = Listen(); }  // bound, then closed: the file stays, nobody listens
  ASSERT_TRUE(std::filesystem::is_socket(path_));
  auto refused = ConnectToHolder(path_, Role::kPass, 1000);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kNotFound);
}

TEST_F(ConnectTest, WelcomeRefusalAndSilence) {
  UniqueFd listener = Listen();
  std::thread server([&] {
    // 1: welcome the watcher; 2: refuse; 3: say nothing until the client gives up.
    for (int i = 0; i < 3; ++i) {
      UniqueFd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      auto hello = ReceiveMessage(c.get());
      ASSERT_TRUE(hello.ok());
      EXPECT_EQ(std::get<HelloMsg>(hello->msg).role, i == 0 ? Role::kWatcher : Role::kPass);
      if (i == 0) {
        ASSERT_TRUE(SendMessage(c.get(), WelcomeMsg{"abc", "/data"}).ok());
      }
      if (i == 1) {
        ASSERT_TRUE(SendMessage(c.get(), RefusedMsg{"go away"}).ok());
      }
      if (i == 2) {
        pollfd p{c.get(), POLLIN, 0};
        ::poll(&p, 1, 10000);  // until the client closes
      }
    }
  });
  WelcomeMsg welcome;
  auto ok = ConnectToHolder(path_, Role::kWatcher, 5000, &welcome);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(welcome.fsid, "abc");
  EXPECT_EQ(welcome.mount, "/data");
  auto no = ConnectToHolder(path_, Role::kPass, 5000);
  ASSERT_FALSE(no.ok());
  EXPECT_EQ(no.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(no.status().message().find("go away"), std::string::npos);
  int64_t t0 = NowMs();
  auto silent = ConnectToHolder(path_, Role::kPass, 200);
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.status().code(), Code::kTimeout);
  EXPECT_GE(NowMs() - t0, 190);
  server.join();
}

TEST(HolderSocketPathTest, FollowsTheRunDirectory) {
  std::string saved = std::getenv("TIERFLOW_RUN_DIR") ? std::getenv("TIERFLOW_RUN_DIR") : "";
  ::setenv("TIERFLOW_RUN_DIR", "/x/y", 1);
  EXPECT_EQ(HolderSocketPath("00ff"), "/x/y/holder-00ff.sock");
  ::unsetenv("TIERFLOW_RUN_DIR");
  EXPECT_EQ(HolderSocketPath("00ff"), "/run/tierflow/holder-00ff.sock");
  if (!saved.empty()) ::setenv("TIERFLOW_RUN_DIR", saved.c_str(), 1);
}

}  // namespace
}  // namespace tierflow::watch
