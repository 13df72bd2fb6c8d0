// Hostile peers at the coordinator's door: a real `tierflow coordinator` on loopback, raw gRPC
// mover streams that break the protocol, oversized messages, garbage bytes on its port, and a
// mover forging reports for another's work. After each, the offending stream ends with the
// right status and the coordinator still serves a client and a real `tierflow mover`.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "support/cluster_fixture.h"
#include "support/tree.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::testing {
namespace {

using namespace std::chrono_literals;

auto Deadline(std::chrono::seconds s = 60s) { return std::chrono::system_clock::now() + s; }

v1::MoverMessage HelloMsg(const std::string& id, uint32_t archive_id,
                          std::vector<std::pair<uint64_t, uint64_t>> in_hand = {}) {
  v1::MoverMessage m;
  auto* h = m.mutable_hello();
  h->set_id(id);
  h->set_host("localhost");
  h->add_archive_ids(archive_id);
  h->mutable_capacities()->set_max_archive(16);
  h->mutable_capacities()->set_max_restore(16);
  h->mutable_capacities()->set_max_remove(16);
  h->set_protocol(1);
  for (auto [rid, epoch] : in_hand) {
    auto* ih = h->add_in_hand();
    ih->set_id(rid);
    ih->set_epoch(epoch);
  }
  return m;
}

v1::MoverMessage ResultMsg(uint64_t id, uint64_t epoch, int32_t error_code = 0) {
  v1::MoverMessage m;
  m.mutable_result()->set_id(id);
  m.mutable_result()->set_epoch(epoch);
  m.mutable_result()->set_error_code(error_code);
  return m;
}

// A raw mover stream whose reader thread keeps everything the coordinator sends.
class RawMover {
 public:
  explicit RawMover(v1::Coordinator::Stub* stub) {
    ctx_.set_deadline(Deadline(120s));
    stream_ = stub->MoverSession(&ctx_);
    reader_ = std::thread([this] {
      v1::CoordinatorMessage m;
      while (stream_->Read(&m)) {
        std::lock_guard lock(mu_);
        got_.push_back(m);
        cv_.notify_all();
      }
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~RawMover() {
    ctx_.TryCancel();
    if (reader_.joinable()) reader_.join();
  }

  bool Write(const v1::MoverMessage& m) { return stream_->Write(m); }

  // Waits (up to a deadline) until some message satisfies `pred`; returns it.
  std::optional<v1::CoordinatorMessage> WaitFor(
      const std::function<bool(const v1::CoordinatorMessage&)>& pred) {
    std::unique_lock lock(mu_);
    std::optional<v1::CoordinatorMessage> found;
    cv_.wait_for(lock, 30s, [&] {
      for (const auto& m : got_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return ended_;
    });
    return found;
  }
  std::optional<v1::CoordinatorMessage> WaitWelcome() {
    return WaitFor([](const auto& m) { return m.has_welcome(); });
  }
  // The batch item for request `id`, once it arrives.
  std::optional<v1::ActionItem> WaitItem(uint64_t id) {
    auto m = WaitFor([id](const auto& m) {
      if (!m.has_batch()) return false;
      for (const auto& i : m.batch().items()) {
        if (i.id() == id) return true;
      }
      return false;
    });
    if (!m) return std::nullopt;
    for (const auto& i : m->batch().items()) {
      if (i.id() == id) return i;
    }
    return std::nullopt;
  }

  // Waits for the coordinator to end the stream; its status.
  grpc::Status Finish() {
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, 30s, [&] { return ended_; })) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the stream did not end");
      }
    }
    reader_.join();
    return stream_->Finish();
  }
  std::vector<v1::CoordinatorMessage> Messages() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::MoverMessage, v1::CoordinatorMessage>> stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::CoordinatorMessage> got_;
  bool ended_ = false;
  std::thread reader_;
};

void ExpectEnded(const grpc::Status& st, grpc::StatusCode code, const std::string& text) {
  EXPECT_EQ(st.error_code(), code) << st.error_message();
  EXPECT_NE(st.error_message().find(text), std::string::npos) << st.error_message();
}

class HostileTest : public ::testing::Test, protected ClusterCommands {
 protected:
  void SetUp() override {
    cluster_.StartCoordinator();
    stub_ = NewStub();
  }

  // A stub on a connection of its own (a private subchannel pool), as a separate peer would
  // have: what the coordinator does to a hostile connection does not touch the others.
  std::unique_ptr<v1::Coordinator::Stub> NewStub() {
    return v1::Coordinator::NewStub(NewChannel());
  }
  std::shared_ptr<grpc::Channel> NewChannel() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxSendMessageSize(-1);
    args.SetMaxReceiveMessageSize(-1);
    return grpc::CreateCustomChannel(cluster_.address(), grpc::InsecureChannelCredentials(), args);
  }

  // Submits one archive request for a made-up file; its id.
  uint64_t Submit(uint32_t archive_id) {
    v1::SubmitRequest req;
    auto* s = req.add_requests();
    s->set_action(v1::ARCHIVE);
    s->set_archive_id(archive_id);
    s->mutable_file()->set_fsid("00000000deadbeef");
    s->mutable_file()->set_seq(++next_seq_);
    s->mutable_file()->set_oid(1);
    s->mutable_file()->set_path("/made/up/" + std::to_string(next_seq_));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::SubmitReply reply;
    grpc::Status st = stub_->Submit(&ctx, req, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return reply.accepted_size() == 1 ? reply.accepted(0).id() : 0;
  }

  // The request as Status lists it.
  v1::RequestInfo Info(uint64_t id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::StatusRequest req;
    req.set_include_requests(true);
    v1::StatusReply reply;
    grpc::Status st = stub_->Status(&ctx, req, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    for (const auto& r : reply.requests()) {
      if (r.id() == id) return r;
    }
    ADD_FAILURE() << "request " << id << " is not listed";
    return {};
  }

  // Waits until request `id` is final; its last state.
  v1::RequestState WaitFinal(uint64_t id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::WaitRequest req;
    req.add_ids(id);
    auto reader = stub_->Wait(&ctx, req);
    v1::RequestState last = v1::STATE_UNSPECIFIED;
    v1::WaitUpdate u;
    while (reader->Read(&u)) {
      for (const auto& r : u.requests()) last = r.state();
    }
    grpc::Status st = reader->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    return last;
  }

  // The coordinator still answers a client and runs a real mover's archive to the end.
  void ExpectHealthy() {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::StatusReply reply;
    grpc::Status st = NewStub()->Status(&ctx, v1::StatusRequest(), &reply);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << cluster_.Logs();
    cluster_.StartMover("healthy");
    WriteFile(P("healthy"), 4096, 1);
    MustRun({"archive", "--wait", P("healthy")});
    EXPECT_NE(MustRun({"state", P("healthy")}).out.find("archived"), std::string::npos)
        << cluster_.Logs();
  }

  std::unique_ptr<v1::Coordinator::Stub> stub_;
  uint64_t next_seq_ = 0;
};

TEST_F(HostileTest, AStreamWhoseFirstMessageIsNotAHelloIsEnded) {
  RawMover m(stub_.get());
  ASSERT_TRUE(m.Write(ResultMsg(1, 1)));
  ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT,
              "the first message of a mover stream must be a Hello, got a Result");
  ExpectHealthy();
}

// The session a second Hello ends is gone for the coordinator too: its work waits out the
// grace delay, and the same mover reconnecting keeps it and completes it.
TEST_F(HostileTest, ASecondHelloEndsThatSessionAndItsWorkFollowsTheGraceRules) {
  uint64_t id = 0, epoch = 0;
  {
    RawMover m(stub_.get());
    ASSERT_TRUE(m.Write(HelloMsg("twice", 1)));
    ASSERT_TRUE(m.WaitWelcome());
    id = Submit(1);
    auto item = m.WaitItem(id);
    ASSERT_TRUE(item);
    epoch = item->epoch();
    ASSERT_TRUE(m.Write(HelloMsg("twice", 1)));
    ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT, "a second Hello");
  }
  EXPECT_EQ(Info(id).state(), v1::ASSIGNED);
  {
    RawMover again(stub_.get());
    ASSERT_TRUE(again.Write(HelloMsg("twice", 1, {{id, epoch}})));
    auto welcome = again.WaitWelcome();
    ASSERT_TRUE(welcome) << "the same mover id could not reconnect: the old session is not gone";
    ASSERT_EQ(welcome->welcome().keep_size(), 1);
    EXPECT_EQ(welcome->welcome().keep(0).id(), id);
    ASSERT_TRUE(again.Write(ResultMsg(id, epoch)));
    EXPECT_EQ(WaitFinal(id), v1::SUCCEEDED);
    ASSERT_TRUE(again.Write(v1::MoverMessage()));  // ends it, so it takes no more work
    ExpectEnded(again.Finish(), grpc::StatusCode::INVALID_ARGUMENT, "no field set");
  }
  ExpectHealthy();
}

TEST_F(HostileTest, AnEmptyMessageEndsThatStream) {
  RawMover m(stub_.get());
  ASSERT_TRUE(m.Write(HelloMsg("empty", 1)));
  ASSERT_TRUE(m.WaitWelcome());
  ASSERT_TRUE(m.Write(v1::MoverMessage()));
  ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT, "no field set");
  ExpectHealthy();
}

TEST_F(HostileTest, AnOversizedHelloIsRefused) {
  {
    RawMover m(stub_.get());
    ASSERT_TRUE(m.Write(HelloMsg(std::string(1000, 'm'), 1)));
    ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT,
                "Hello.id is 1000 bytes; the limit is 128");
  }
  {
    v1::MoverMessage hello = HelloMsg("many", 1);
    for (uint32_t a = 2; a <= 1000; ++a) hello.mutable_hello()->add_archive_ids(a);
    RawMover m(stub_.get());
    ASSERT_TRUE(m.Write(hello));
    ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT,
                "Hello.archive_ids has 1000 entries; the limit is 256");
  }
  {
    RawMover m(stub_.get());
    ASSERT_TRUE(m.Write(HelloMsg("bad id\n", 1)));
    ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT, "Hello.id has byte 0x20");
  }
  {
    RawMover m(stub_.get());
    ASSERT_TRUE(m.Write(HelloMsg("ok", 1)));
    ASSERT_TRUE(m.WaitWelcome());
    v1::MoverMessage result = ResultMsg(1, 1, EIO);
    result.mutable_result()->set_error(std::string(20000, 'e'));
    ASSERT_TRUE(m.Write(result));
    ExpectEnded(m.Finish(), grpc::StatusCode::INVALID_ARGUMENT,
                "Result.error is 20000 bytes; the limit is 16384");
  }
  ExpectHealthy();
}

TEST_F(HostileTest, AMessagePastTheTransportBoundIsRefused) {
  {
    v1::MoverMessage hello = HelloMsg("huge", 1);
    hello.mutable_hello()->set_host(std::string(17 << 20, 'h'));
    auto hostile = NewStub();
    RawMover m(hostile.get());
    m.Write(hello);  // may fail once the coordinator has reset the stream
    grpc::Status st = m.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  }
  {
    v1::SubmitRequest req;
    req.set_idempotency_key(std::string(17 << 20, 'k'));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::SubmitReply reply;
    grpc::Status st = NewStub()->Submit(&ctx, req, &reply);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  }
  ExpectHealthy();
}

TEST_F(HostileTest, OversizedMetadataIsRefused) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  ctx.AddMetadata("x-junk", std::string(64 << 10, 'j'));
  v1::StatusReply reply;
  grpc::Status st = NewStub()->Status(&ctx, v1::StatusRequest(), &reply);
  EXPECT_FALSE(st.ok()) << "a call with 64 KiB of metadata was served";
  ExpectHealthy();
}

// Sends `messages` as raw gRPC messages on a mover stream (bytes that need not parse), reading
// one answer after the first when more follow, then reads until the stream ends; its status.
// `*answered` counts the messages received.
grpc::Status SendRawMessages(const std::shared_ptr<grpc::Channel>& channel,
                             const std::vector<std::string>& messages, int* answered) {
  grpc::GenericStub generic(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(&ctx, "/tierflow.v1.Coordinator/MoverSession", &cq);
  auto next = [&] {
    void* tag;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  *answered = 0;
  grpc::ByteBuffer in;
  auto read = [&] {
    call->Read(&in, nullptr);
    if (!next()) return false;
    ++*answered;
    return true;
  };
  call->StartCall(nullptr);
  next();
  for (size_t i = 0; i < messages.size(); ++i) {
    grpc::Slice slice(messages[i].data(), messages[i].size());
    grpc::ByteBuffer bytes(&slice, 1);
    call->Write(bytes, nullptr);
    next();
    if (i == 0 && messages.size() > 1) read();
  }
  while (read()) {
  }
  grpc::Status st;
  call->Finish(&st, nullptr);
  next();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return st;
}

// Bytes that do not parse as a MoverMessage, in well-framed gRPC messages: first, and after a
// good Hello. Either way that stream ends and the mover's session is gone.
TEST_F(HostileTest, AnUnparseableMessageEndsThatStream) {
  const std::string junk = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x0f";
  int answered = 0;
  ExpectEnded(SendRawMessages(NewChannel(), {junk}, &answered),
              grpc::StatusCode::INVALID_ARGUMENT, "is not a MoverMessage");
  EXPECT_EQ(answered, 0);

  std::string hello;
  ASSERT_TRUE(HelloMsg("junk", 1).SerializeToString(&hello));
  SendRawMessages(NewChannel(), {hello, junk}, &answered);
  EXPECT_GE(answered, 1) << "no Welcome for the good Hello";
  RawMover again(stub_.get());
  ASSERT_TRUE(again.Write(HelloMsg("junk", 1)));
  EXPECT_TRUE(again.WaitWelcome()) << "the session that sent junk is not gone";
  ASSERT_TRUE(again.Write(v1::MoverMessage()));
  ExpectEnded(again.Finish(), grpc::StatusCode::INVALID_ARGUMENT, "no field set");
  ExpectHealthy();
}

// Not HTTP/2 at all: the coordinator drops the connection and nothing else notices.
TEST_F(HostileTest, GarbageBytesOnThePortCloseThatConnection) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = std::stoi(cluster_.address().substr(cluster_.address().rfind(':') + 1));
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << errno;
  std::mt19937 rng(42);
  std::string garbage(64 << 10, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  garbage.replace(0, 18, "GET / HTTP/1.1\r\n\r\n");
  // The coordinator may close before reading everything; a failed send is fine.
  (void)::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
  bool closed = false;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    closed = n == 0 || (n < 0 && errno == ECONNRESET);
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "the coordinator kept a connection that sent garbage";
  ExpectHealthy();
}

// A mover cannot complete, cancel or see work assigned to another: A serves archive id 2 and B
// archive id 1; A forges reports for B's request. Requests A is given for archive id 2 serve as
// barriers: A's stream and A's reports are handled in order.
TEST_F(HostileTest, AMoverCannotCompleteCancelOrSeeAnothersRequests) {
  RawMover a(stub_.get()), b(stub_.get());
  ASSERT_TRUE(a.Write(HelloMsg("A", 2)));
  ASSERT_TRUE(b.Write(HelloMsg("B", 1)));
  ASSERT_TRUE(a.WaitWelcome());
  ASSERT_TRUE(b.WaitWelcome());

  uint64_t r1 = Submit(1);
  auto item1 = b.WaitItem(r1);
  ASSERT_TRUE(item1);
  // A forges progress, success and a cancellation of B's request, one by one and in Reports.
  v1::MoverMessage progress;
  progress.mutable_progress()->set_id(r1);
  progress.mutable_progress()->set_epoch(item1->epoch());
  progress.mutable_progress()->set_bytes_done(999);
  progress.mutable_progress()->set_bytes_total(1000);
  ASSERT_TRUE(a.Write(progress));
  ASSERT_TRUE(a.Write(ResultMsg(r1, item1->epoch())));
  ASSERT_TRUE(a.Write(ResultMsg(r1, item1->epoch(), ECANCELED)));
  v1::MoverMessage reports;
  *reports.mutable_reports()->add_progress() = progress.progress();
  *reports.mutable_reports()->add_results() = ResultMsg(r1, item1->epoch(), EIO).result();
  ASSERT_TRUE(a.Write(reports));
  // Barrier: A completes its own request; everything A sent before it has been handled.
  uint64_t r2 = Submit(2);
  auto item2 = a.WaitItem(r2);
  ASSERT_TRUE(item2);
  ASSERT_TRUE(a.Write(ResultMsg(r2, item2->epoch())));
  EXPECT_EQ(WaitFinal(r2), v1::SUCCEEDED);

  v1::RequestInfo info = Info(r1);
  EXPECT_EQ(info.state(), v1::ASSIGNED);
  EXPECT_EQ(info.mover(), "B");
  EXPECT_EQ(info.epoch(), item1->epoch());
  EXPECT_EQ(info.bytes_done(), 0u) << "A's forged progress was applied";
  ASSERT_TRUE(b.Write(ResultMsg(r1, item1->epoch())));
  EXPECT_EQ(WaitFinal(r1), v1::SUCCEEDED);

  // A client's cancel of B's running request goes to B alone.
  uint64_t r3 = Submit(1);
  auto item3 = b.WaitItem(r3);
  ASSERT_TRUE(item3);
  grpc::ClientContext cctx;
  cctx.set_deadline(Deadline());
  v1::CancelRequest cancel;
  cancel.add_ids(r3);
  v1::CancelReply creply;
  grpc::Status st = stub_->Cancel(&cctx, cancel, &creply);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(creply.forwarded_size(), 1);
  auto got_cancel = b.WaitFor([r3](const auto& m) {
    return m.has_cancel() && m.cancel().items_size() > 0 && m.cancel().items(0).id() == r3;
  });
  ASSERT_TRUE(got_cancel) << "B never received the cancel of its request";
  ASSERT_TRUE(b.Write(ResultMsg(r3, item3->epoch(), ECANCELED)));
  EXPECT_EQ(WaitFinal(r3), v1::CANCELED);

  // Barrier: whatever the coordinator sent A before this batch, A has it now.
  uint64_t r4 = Submit(2);
  ASSERT_TRUE(a.WaitItem(r4));
  for (const auto& m : a.Messages()) {
    EXPECT_FALSE(m.has_cancel()) << "A received a cancel: " << m.ShortDebugString();
    if (!m.has_batch()) continue;
    EXPECT_EQ(m.batch().archive_id(), 2u);
    for (const auto& i : m.batch().items()) {
      EXPECT_TRUE(i.id() == r2 || i.id() == r4) << "A received request " << i.id();
    }
  }
  for (const auto& m : b.Messages()) {
    if (!m.has_batch()) continue;
    for (const auto& i : m.batch().items()) {
      EXPECT_TRUE(i.id() == r1 || i.id() == r3) << "B received request " << i.id();
    }
  }
}

}  // namespace
}  // namespace tierflow::testing
