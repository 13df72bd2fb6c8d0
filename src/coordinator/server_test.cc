// The coordinator over real gRPC on loopback with its SQLite journal: a raw mover stream and
// a client, as the mover runtime and the CLI use them.
#include "coordinator/server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "tierflow.grpc.pb.h"

namespace tierflow::coordinator {
namespace {

using MoverStream = grpc::ClientReaderWriter<v1::MoverMessage, v1::CoordinatorMessage>;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tf_coord_server_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    StartServer();
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartServer(const std::function<void(ServerOptions*)>& tweak = {}) {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.state_dir = dir_;
    o.mover_grace_us = 60'000'000;
    if (tweak) tweak(&o);
    auto s = Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    ASSERT_GT(server_->port(), 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = v1::Coordinator::NewStub(channel);
  }
  void StopServer() {
    server_->Shutdown();
    server_.reset();
  }
  static void SetDeadline(grpc::ClientContext* ctx, int seconds = 30) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  }
  static v1::MoverMessage HelloMsg(const std::string& id,
                                   std::vector<std::pair<uint64_t, uint64_t>> in_hand = {}) {
    v1::MoverMessage m;
    auto* h = m.mutable_hello();
    h->set_id(id);
    h->set_host("localhost");
    h->add_archive_ids(1);
    h->mutable_capacities()->set_max_archive(16);
    h->mutable_capacities()->set_max_restore(16);
    h->mutable_capacities()->set_max_remove(16);
    for (auto [id, epoch] : in_hand) {
      auto* ih = h->add_in_hand();
      ih->set_id(id);
      ih->set_epoch(epoch);
    }
    return m;
  }
  std::vector<uint64_t> Submit(int n, int first_seq = 1) {
    v1::SubmitRequest req;
    for (int i = 0; i < n; ++i) {
      auto* s = req.add_requests();
      s->set_action(v1::ARCHIVE);
      s->mutable_file()->set_fsid("fs");
      s->mutable_file()->set_seq(first_seq + i);
      s->mutable_file()->set_oid(1);
      s->mutable_file()->set_path("/f" + std::to_string(first_seq + i));
    }
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::SubmitReply reply;
    grpc::Status st = stub_->Submit(&ctx, req, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<uint64_t> ids;
    for (const auto& a : reply.accepted()) ids.push_back(a.id());
    return ids;
  }
  // Waits for `ids`; returns the last state seen for each, in order.
  std::vector<v1::RequestState> WaitFor(const std::vector<uint64_t>& ids, grpc::Status* end) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::WaitRequest req;
    for (uint64_t id : ids) req.add_ids(id);
    auto reader = stub_->Wait(&ctx, req);
    std::map<uint64_t, v1::RequestState> last;
    v1::WaitUpdate u;
    while (reader->Read(&u)) {
      for (const auto& info : u.requests()) last[info.id()] = info.state();
    }
    *end = reader->Finish();
    std::vector<v1::RequestState> out;
    for (uint64_t id : ids) out.push_back(last.count(id) ? last[id] : v1::STATE_UNSPECIFIED);
    return out;
  }

  std::string dir_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(ServerTest, MoverStreamRunsSubmittedRequestsAndWaitSeesSuccess) {
  grpc::ClientContext mctx;
  SetDeadline(&mctx);
  auto stream = stub_->MoverSession(&mctx);
  ASSERT_TRUE(stream->Write(HelloMsg("m1")));
  v1::CoordinatorMessage msg;
  ASSERT_TRUE(stream->Read(&msg));
  ASSERT_TRUE(msg.has_welcome());

  auto ids = Submit(3);
  ASSERT_EQ(ids.size(), 3u);
  std::set<uint64_t> got;
  v1::MoverMessage reports;
  while (got.size() < 3) {
    ASSERT_TRUE(stream->Read(&msg));
    ASSERT_TRUE(msg.has_batch());
    EXPECT_EQ(msg.batch().archive_id(), 1u);
    for (const auto& item : msg.batch().items()) {
      got.insert(item.id());
      auto* r = reports.mutable_reports()->add_results();
      r->set_id(item.id());
      r->set_epoch(item.epoch());
    }
  }
  ASSERT_TRUE(stream->Write(reports));

  grpc::Status end;
  auto states = WaitFor(ids, &end);
  EXPECT_TRUE(end.ok()) << end.error_message();
  for (auto s : states) EXPECT_EQ(s, v1::SUCCEEDED);

  v1::StatusRequest sreq;
  v1::StatusReply sreply;
  grpc::ClientContext sctx;
  ASSERT_TRUE(stub_->Status(&sctx, sreq, &sreply).ok());
  ASSERT_EQ(sreply.movers_size(), 1);
  EXPECT_TRUE(sreply.movers(0).connected());
  EXPECT_EQ(sreply.movers(0).done(), 3u);
  EXPECT_GT(sreply.journal_records(), 0u);
  stream->WritesDone();
}

TEST_F(ServerTest, DuplicateMoverIdAndMissingHelloAreRefused) {
  grpc::ClientContext c1;
  SetDeadline(&c1);
  auto s1 = stub_->MoverSession(&c1);
  ASSERT_TRUE(s1->Write(HelloMsg("m1")));
  v1::CoordinatorMessage msg;
  ASSERT_TRUE(s1->Read(&msg));

  grpc::ClientContext c2;
  SetDeadline(&c2);
  auto s2 = stub_->MoverSession(&c2);
  ASSERT_TRUE(s2->Write(HelloMsg("m1")));
  EXPECT_FALSE(s2->Read(&msg));
  grpc::Status st = s2->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();

  grpc::ClientContext c3;
  SetDeadline(&c3);
  auto s3 = stub_->MoverSession(&c3);
  v1::MoverMessage progress;
  progress.mutable_progress()->set_id(1);
  ASSERT_TRUE(s3->Write(progress));
  EXPECT_FALSE(s3->Read(&msg));
  st = s3->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  s1->WritesDone();
}

TEST_F(ServerTest, RestartKeepsAssignmentsForTheReconnectingMover) {
  std::vector<uint64_t> ids;
  uint64_t epoch = 0;
  {
    grpc::ClientContext mctx;
    SetDeadline(&mctx);
    auto stream = stub_->MoverSession(&mctx);
    ASSERT_TRUE(stream->Write(HelloMsg("m1")));
    v1::CoordinatorMessage msg;
    ASSERT_TRUE(stream->Read(&msg));
    ids = Submit(1);
    ASSERT_TRUE(stream->Read(&msg));
    ASSERT_TRUE(msg.has_batch());
    epoch = msg.batch().items(0).epoch();
    // The coordinator stops while the mover holds the action.
    StopServer();
    EXPECT_FALSE(stream->Read(&msg));
  }
  StartServer();
  grpc::ClientContext mctx;
  SetDeadline(&mctx);
  auto stream = stub_->MoverSession(&mctx);
  ASSERT_TRUE(stream->Write(HelloMsg("m1", {{ids[0], epoch}})));
  v1::CoordinatorMessage msg;
  ASSERT_TRUE(stream->Read(&msg));
  ASSERT_TRUE(msg.has_welcome());
  ASSERT_EQ(msg.welcome().keep_size(), 1);
  EXPECT_EQ(msg.welcome().keep(0).id(), ids[0]);
  v1::MoverMessage done;
  done.mutable_result()->set_id(ids[0]);
  done.mutable_result()->set_epoch(epoch);
  ASSERT_TRUE(stream->Write(done));
  grpc::Status end;
  auto states = WaitFor(ids, &end);
  EXPECT_TRUE(end.ok());
  EXPECT_EQ(states[0], v1::SUCCEEDED);
  stream->WritesDone();
}

TEST_F(ServerTest, SecondServerOnTheSameStateDirIsRefused) {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.state_dir = dir_;
  auto s = Server::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("in use"), std::string::npos) << s.status().ToString();
}

TEST_F(ServerTest, LockTwoMakesWaitReturn) {
  std::thread waiter([&] { server_->Wait(); });
  grpc::ClientContext ctx;
  v1::LockRequest req;
  req.set_lock(2);
  v1::LockReply reply;
  ASSERT_TRUE(stub_->Lock(&ctx, req, &reply).ok());
  EXPECT_EQ(reply.lock(), 2u);
  waiter.join();  // returns because nothing is assigned
}

// Limits are checked before anything reaches the loop: the call is refused whole.
TEST_F(ServerTest, AClientCallPastALimitIsRefusedWholeNamingTheField) {
  v1::SubmitRequest req;
  for (int i = 0; i < 4; ++i) {
    auto* s = req.add_requests();
    s->set_action(v1::ARCHIVE);
    s->mutable_file()->set_fsid("fs");
    s->mutable_file()->set_seq(i + 1);
    s->mutable_file()->set_path("/f");
  }
  req.mutable_requests(3)->mutable_file()->set_path(std::string(5000, 'p'));
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::SubmitReply reply;
  grpc::Status st = stub_->Submit(&ctx, req, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "Submit: requests[3].path is 5000 bytes; the limit is 4096");

  grpc::ClientContext sctx;
  SetDeadline(&sctx);
  v1::StatusReply status;
  ASSERT_TRUE(stub_->Status(&sctx, v1::StatusRequest(), &status).ok());
  for (const auto& c : status.counters()) {
    EXPECT_EQ(c.queued(), 0u) << "a spec of the refused call was queued";
  }

  grpc::ClientContext dctx;
  SetDeadline(&dctx);
  v1::DrainRequest drain;
  drain.set_mover("../etc");
  v1::DrainReply dreply;
  st = stub_->Drain(&dctx, drain, &dreply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("Drain: mover has byte 0x2f"), std::string::npos)
      << st.error_message();
}

TEST_F(ServerTest, WaitStreamsPastTheCapAreRefusedUntilOneEnds) {
  StopServer();
  StartServer([](ServerOptions* o) { o->max_wait_streams = 2; });
  auto ids = Submit(1);  // no mover: stays queued, so waits on it stay open
  ASSERT_EQ(ids.size(), 1u);
  v1::WaitRequest req;
  req.add_ids(ids[0]);
  // Open streams, each known to the server once its first update has arrived.
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WaitUpdate>>> waits;
  for (int i = 0; i < 2; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    SetDeadline(ctxs.back().get());
    waits.push_back(stub_->Wait(ctxs.back().get(), req));
    v1::WaitUpdate u;
    ASSERT_TRUE(waits.back()->Read(&u));
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto third = stub_->Wait(&ctx, req);
    v1::WaitUpdate u;
    EXPECT_FALSE(third->Read(&u));
    grpc::Status st = third->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_NE(st.error_message().find("2 Wait streams open"), std::string::npos)
        << st.error_message();
  }
  // One ends (the client goes away); its slot is free again once the server notices.
  ctxs[0]->TryCancel();
  waits[0]->Finish();
  bool reopened = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!reopened && std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto again = stub_->Wait(&ctx, req);
    v1::WaitUpdate u;
    reopened = again->Read(&u);
    ctx.TryCancel();
    again->Finish();
  }
  EXPECT_TRUE(reopened) << "the slot of an ended Wait stream was never freed";
  ctxs[1]->TryCancel();
  waits[1]->Finish();
}

TEST_F(ServerTest, MoverSessionsPastTheCapAreRefused) {
  StopServer();
  StartServer([](ServerOptions* o) { o->max_mover_sessions = 2; });
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<MoverStream>> streams;
  v1::CoordinatorMessage msg;
  for (int i = 0; i < 2; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    SetDeadline(ctxs.back().get());
    streams.push_back(stub_->MoverSession(ctxs.back().get()));
    ASSERT_TRUE(streams.back()->Write(HelloMsg("m" + std::to_string(i))));
    ASSERT_TRUE(streams.back()->Read(&msg));
    ASSERT_TRUE(msg.has_welcome());
  }
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  auto third = stub_->MoverSession(&ctx);
  third->Write(HelloMsg("m2"));
  EXPECT_FALSE(third->Read(&msg));
  grpc::Status st = third->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("2 mover streams open"), std::string::npos)
      << st.error_message();
  for (auto& s : streams) {
    s->WritesDone();
    s->Finish();
  }
}

// A stream that never says Hello would hold its session slot forever; it is ended instead.
TEST_F(ServerTest, AMoverStreamSilentPastTheHelloTimeoutIsEndedAndFreesItsSlot) {
  StopServer();
  StartServer([](ServerOptions* o) {
    o->max_mover_sessions = 1;
    o->hello_timeout_us = 200'000;
  });
  grpc::ClientContext silent_ctx;
  SetDeadline(&silent_ctx);
  auto silent = stub_->MoverSession(&silent_ctx);
  v1::CoordinatorMessage msg;
  EXPECT_FALSE(silent->Read(&msg));  // ends without our writing anything
  grpc::Status st = silent->Finish();
  EXPECT_FALSE(st.ok());

  // The client may hear of the end just before the handler has returned its slot.
  bool welcomed = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!welcomed && std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto mover = stub_->MoverSession(&ctx);
    mover->Write(HelloMsg("m1"));
    welcomed = mover->Read(&msg) && msg.has_welcome();
    if (welcomed) mover->WritesDone();
    st = mover->Finish();
    if (!welcomed) {
      ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    }
  }
  EXPECT_TRUE(welcomed) << "the silent stream's slot was never freed";
}

}  // namespace
}  // namespace tierflow::coordinator
