// Visibility and runtime capacities on real processes: a coordinator on loopback holding
// archives of several users and tags, listed page by page with `tierflow status --tag ...
// --json`; and `tierflow capacity` changing what a live mover is given, kept over a
// coordinator restart and undone with --reset.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "support/cluster_fixture.h"
#include "support/tree.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class StatusFiltersTest : public ::testing::Test, protected ClusterCommands {
 protected:
  // `tierflow ARGS... --json` read back into the reply it prints.
  template <typename Reply>
  Reply Json(std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult r = MustRun(args);
    Reply reply;
    auto st = google::protobuf::util::JsonStringToMessage(r.out, &reply);
    EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << Describe(r);
    return reply;
  }
  v1::StatusReply Status(std::vector<std::string> args = {}) {
    args.insert(args.begin(), "status");
    return Json<v1::StatusReply>(args);
  }
  v1::MoverInfo MoverOf(const std::string& id) {
    v1::StatusReply status = Status();
    for (const v1::MoverInfo& m : status.movers()) {
      if (m.id() == id) return m;
    }
    return {};
  }
  // Submits archives of made-up files straight to the coordinator, as `user`, one per tag.
  std::vector<uint64_t> Submit(const std::string& user, const std::vector<std::string>& tags) {
    auto stub = v1::Coordinator::NewStub(
        grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials()));
    v1::SubmitRequest req;
    for (const std::string& tag : tags) {
      v1::RequestSpec* s = req.add_requests();
      s->set_action(v1::ARCHIVE);
      s->mutable_file()->set_fsid("00000000feedf00d");
      s->mutable_file()->set_seq(++seq_);
      s->mutable_file()->set_oid(1);
      s->mutable_file()->set_path("/elsewhere/" + user + "/" + std::to_string(seq_));
      s->set_data(tag);
      s->set_user(user);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::SubmitReply reply;
    grpc::Status st = stub->Submit(&ctx, req, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<uint64_t> ids;
    for (const auto& a : reply.accepted()) ids.push_back(a.id());
    return ids;
  }

  uint64_t seq_ = 1000;
};

TEST_F(StatusFiltersTest, PagingThroughATagListsEachRequestOnce) {
  cluster_.StartCoordinator();  // no mover: everything stays queued
  std::set<uint64_t> tagged;
  for (const std::string user : {"alice", "bob", "carol"}) {
    std::vector<std::string> tags;
    for (int i = 0; i < 20; ++i) {
      tags.push_back(i % 2 == 0   ? "proj=climate,tier=1"
                     : i % 3 == 0 ? "proj=climatex"
                                  : "tier=2 proj=ocean");
    }
    std::vector<uint64_t> ids = Submit(user, tags);
    ASSERT_EQ(ids.size(), tags.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i % 2 == 0) tagged.insert(ids[i]);
    }
  }
  // And two through the command, tagged with --data (requested by this process's user).
  WriteFile(P("a"), 1000, 1);
  WriteFile(P("b"), 1000, 2);
  MustRun({"archive", "--data", "proj=climate", P("a"), P("b")});
  ASSERT_EQ(tagged.size(), 30u);

  std::vector<uint64_t> listed;
  std::vector<std::string> args = {"status", "--tag", "proj=climate", "--limit", "7"};
  int pages = 0;
  for (uint64_t after = 0;;) {
    ++pages;
    std::vector<std::string> page_args = args;
    if (after != 0) page_args.insert(page_args.end(), {"--after", std::to_string(after)});
    v1::StatusReply page = Json<v1::StatusReply>(page_args);
    ASSERT_LE(page.requests_size(), 7);
    for (const v1::RequestInfo& r : page.requests()) {
      listed.push_back(r.id());
      EXPECT_NE(r.data().find("proj=climate"), std::string::npos) << r.data();
      EXPECT_NE(r.data(), "proj=climatex") << "a tag is matched whole";
    }
    if (page.next_after_id() == 0) break;
    ASSERT_EQ(page.next_after_id(), listed.back());
    after = page.next_after_id();
    ASSERT_LT(pages, 100) << "paging does not end";
  }
  EXPECT_EQ(pages, 5) << "32 requests in pages of 7";
  ASSERT_EQ(listed.size(), 32u);
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end()));
  std::set<uint64_t> once(listed.begin(), listed.end());
  EXPECT_EQ(once.size(), listed.size()) << "a request listed twice";
  for (uint64_t id : tagged) EXPECT_TRUE(once.count(id)) << id << " was never listed";

  // Filters combine; the text listing says where the next page starts.
  v1::StatusReply bob = Status({"--tag", "proj=climate", "--user", "bob", "--limit", "100"});
  EXPECT_EQ(bob.requests_size(), 10);
  for (const auto& r : bob.requests()) EXPECT_EQ(r.user(), "bob");
  CommandResult text = MustRun({"status", "--user", "carol", "--state", "queued", "--limit", "3"});
  EXPECT_NE(text.out.find("more: --after "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("/elsewhere/carol/"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("/elsewhere/bob/"), std::string::npos) << text.out;
  EXPECT_EQ(Status({"--action", "restore"}).requests_size(), 0);
}

TEST_F(StatusFiltersTest, CapacityChangesWhatALiveMoverIsGiven) {
  cluster_.StartCoordinator();
  // Copies at 0.02 MB/s: each 1 MiB archive runs for about 50 s, long enough to be counted.
  cluster_.StartMover("m1", {"--max-archive", "1", "--bandwidth", "0.02"});
  std::vector<std::string> files;
  for (int i = 0; i < 5; ++i) {
    files.push_back(P("f" + std::to_string(i)));
    WriteFile(files.back(), kMiB, 10 + i);
  }
  std::vector<std::string> archive = {"archive"};
  archive.insert(archive.end(), files.begin(), files.end());
  MustRun(archive);
  ASSERT_TRUE(WaitFor([&] { return MoverOf("m1").running_archive() == 1; }))
      << cluster_.Logs();
  v1::StatusReply before = Status({"--state", "queued"});
  EXPECT_EQ(before.requests_size(), 4);

  auto set = Json<v1::CapacityReply>({"capacity", "m1", "--archive", "3"});
  EXPECT_TRUE(set.mover().capacity_override());
  EXPECT_EQ(set.mover().capacities().max_archive(), 3);
  EXPECT_EQ(set.mover().capacities().max_restore(), 4) << "bounds not given are kept";
  ASSERT_TRUE(WaitFor([&] { return MoverOf("m1").running_archive() == 3; })) << cluster_.Logs();
  EXPECT_EQ(Status({"--state", "queued"}).requests_size(), 2);
  EXPECT_EQ(Status({"--state", "assigned", "--mover", "m1"}).requests_size(), 3);

  // A restarted coordinator keeps the override; the reconnecting mover's own 1 does not win.
  cluster_.KillCoordinator(SIGTERM);
  cluster_.StartCoordinator();
  ASSERT_TRUE(WaitFor([&] { return MoverOf("m1").connected(); })) << cluster_.Logs();
  v1::MoverInfo m = MoverOf("m1");
  EXPECT_TRUE(m.capacity_override());
  EXPECT_EQ(m.capacities().max_archive(), 3);
  EXPECT_EQ(m.running_archive(), 3u) << cluster_.Logs();

  // Reset: back to the mover's own 1. Nothing is taken back.
  auto reset = Json<v1::CapacityReply>({"capacity", "m1", "--reset"});
  EXPECT_FALSE(reset.mover().capacity_override());
  EXPECT_EQ(reset.mover().capacities().max_archive(), 1);
  EXPECT_EQ(reset.mover().running_archive(), 3u);
  CommandResult text = MustRun({"status"});
  EXPECT_NE(text.out.find("A 3/1 R 0/4 D 0/4"), std::string::npos) << text.out;
  EXPECT_NE(cluster_.Client({"capacity", "nobody", "--archive", "1"}).exit_code, 0);
}

}  // namespace
}  // namespace tierflow::testing
