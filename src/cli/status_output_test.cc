// What `status` and `capacity` print: the movers table with running against capacity per kind,
// the id-ordered listing with its next-page hint, the overview's hint when it was cut, the
// capacity change text; and the command-line rules of their flags (usage errors exit 2, every
// client verb takes --json).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli_app.h"
#include "cli/run_args.h"
#include "cli/output.h"
#include "wire/convert.h"

namespace tierflow::cli {
namespace {

v1::MoverInfo Mover(const std::string& id) {
  v1::MoverInfo m;
  m.set_id(id);
  m.set_host(id + ".example");
  m.add_archive_ids(1);
  m.set_connected(true);
  v1::Capacities* c = m.mutable_capacities();
  c->set_max_archive(8);
  c->set_max_restore(4);
  c->set_max_remove(-1);
  m.set_running_archive(3);
  m.set_running_restore(1);
  m.set_running(4);
  return m;
}

v1::RequestInfo Request(uint64_t id, v1::RequestState state, const std::string& path) {
  v1::RequestInfo r;
  r.set_id(id);
  r.set_action(v1::ARCHIVE);
  r.set_state(state);
  r.set_archive_id(1);
  r.mutable_file()->set_path(path);
  return r;
}

TEST(StatusMovers, RunningAgainstCapacityPerKind) {
  v1::MoverInfo m = Mover("m1");
  EXPECT_EQ(FormatRunning(m), "A 3/8 R 1/4 D 0/*");
  m.mutable_capacities()->set_max_total(10);
  EXPECT_EQ(FormatRunning(m), "A 3/8 R 1/4 D 0/* T 4/10");
}

TEST(StatusMovers, TableShowsDoneFailedBatchesOverrideAndSlots) {
  v1::StatusReply s;
  v1::MoverInfo* m = s.add_movers();
  *m = Mover("m1");
  m->set_done(1234);
  m->set_failed(56);
  m->set_batches(789);
  m->set_capacity_override(true);
  v1::BatchSlot* slot = m->add_slots();
  slot->set_value("proj=a");
  slot->set_running(2);
  slot->set_taken(14);
  slot->set_held_us(35'000'000);
  slot->set_idle_us(1'000'000);
  *s.add_movers() = Mover("m2");
  std::string text = FormatStatus(s, "h:1");
  EXPECT_NE(text.find("RUNNING/CAPACITY"), std::string::npos) << text;
  EXPECT_NE(text.find("A 3/8 R 1/4 D 0/*"), std::string::npos) << text;
  for (const char* n : {"1234", "56", "789", "BATCHES"}) {
    EXPECT_NE(text.find(n), std::string::npos) << n << " in\n" << text;
  }
  EXPECT_NE(text.find("connected, capacity set by 'tierflow capacity'"), std::string::npos)
      << text;
  EXPECT_NE(text.find("slots: proj=a 2 running, 14 taken, held 35 s, idle 1 s"),
            std::string::npos)
      << text;
  // m2 has neither an override nor slots.
  size_t m2 = text.find("m2 ");
  ASSERT_NE(m2, std::string::npos);
  EXPECT_EQ(text.find("capacity set", m2), std::string::npos) << text;
  EXPECT_EQ(text.find("slots:", m2), std::string::npos) << text;
}

TEST(StatusListing, IdOrderShowsEveryStateDataUserAndTheNextPage) {
  v1::StatusReply s;
  v1::RequestInfo* q = s.add_requests();
  *q = Request(40, v1::QUEUED, "/fs/q");
  q->set_data("proj=a");
  q->set_user("alice");
  q->set_waiting_reason("the coordinator is locked");
  v1::RequestInfo* a = s.add_requests();
  *a = Request(41, v1::ASSIGNED, "/fs/a");
  a->set_mover("m1");
  a->set_bytes_done(1024);
  a->set_bytes_total(2048);
  v1::RequestInfo* f = s.add_requests();
  *f = Request(42, v1::FAILED, "/fs/f");
  f->set_error("archive full");
  *s.add_requests() = Request(43, v1::SUCCEEDED, "/fs/s");
  s.set_next_after_id(43);
  std::string text = FormatStatus(s, "h:1", {/*id_order=*/true, 4});
  EXPECT_NE(text.find("/fs/q  [proj=a]  (the coordinator is locked)"), std::string::npos) << text;
  EXPECT_NE(text.find("alice"), std::string::npos) << text;
  EXPECT_NE(text.find("/fs/a  (1.0 KiB/2.0 KiB)"), std::string::npos) << text;
  EXPECT_NE(text.find("/fs/f  (archive full)"), std::string::npos) << text;
  EXPECT_NE(text.find("succeeded"), std::string::npos) << text;
  EXPECT_LT(text.find("/fs/q"), text.find("/fs/s")) << "in the order listed";
  EXPECT_NE(text.find("more: --after 43\n"), std::string::npos) << text;

  s.set_next_after_id(0);
  EXPECT_EQ(FormatStatus(s, "h:1", {true, 4}).find("more:"), std::string::npos);
  s.clear_requests();
  EXPECT_NE(FormatStatus(s, "h:1", {true, 4}).find("requests: none match"), std::string::npos);
}

TEST(StatusListing, ACutOverviewSaysHowToSeeTheRest) {
  v1::StatusReply s;
  v1::ActionCounters* c = s.add_counters();
  c->set_action(v1::ARCHIVE);
  c->set_queued(5);
  *s.add_requests() = Request(1, v1::QUEUED, "/fs/1");
  *s.add_requests() = Request(2, v1::QUEUED, "/fs/2");
  std::string text = FormatStatus(s, "h:1", {false, 2});
  EXPECT_NE(text.find("listed 2 of 5 requests; see them all in id order with --after 0"),
            std::string::npos)
      << text;
  EXPECT_EQ(FormatStatus(s, "h:1", {false, 3}).find("listed"), std::string::npos)
      << "not cut: under the limit";
  c->set_queued(2);
  EXPECT_EQ(FormatStatus(s, "h:1", {false, 2}).find("listed"), std::string::npos)
      << "not cut: everything known is listed";
}

TEST(StatusListing, JsonCarriesTheNextPageAndTheListingFields) {
  v1::StatusReply s;
  v1::RequestInfo* r = s.add_requests();
  *r = Request(7, v1::QUEUED, "/fs/x");
  r->set_user("bob");
  s.set_next_after_id(7);
  *s.add_movers() = Mover("m1");
  std::string json = FormatStatusJson(s);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find("\"next_after_id\":\"7\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"user\":\"bob\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"running_archive\":\"3\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"capacity_override\":false"), std::string::npos) << json;
}

TEST(StatusListing, JsonShowsAPathThatIsNotUtf8AsTextAndKeepsItsBytes) {
  v1::StatusReply s;
  *s.add_requests() = Request(7, v1::QUEUED, "");
  wire::FileRefToProto(hsm::FileId{"fs1", hsm::Fid{1, 2, 0}}, "/fs/caf\xe9",
                       s.mutable_requests(0)->mutable_file());
  ASSERT_FALSE(s.requests(0).file().raw_path().empty());
  std::string json = FormatStatusJson(s);
  EXPECT_NE(json.find("\"path\":\"/fs/caf\\\\xe9\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"raw_path\":\"L2ZzL2NhZuk=\""), std::string::npos) << json;  // base64
}

TEST(CapacityText, SaysWhoSetTheBoundsAndWhatHappensToWorkAboveThem) {
  v1::MoverInfo m = Mover("m1");
  m.mutable_capacities()->set_max_archive(2);  // 3 running
  m.set_capacity_override(true);
  std::string text = FormatCapacityChange(m);
  EXPECT_NE(text.find("mover m1 capacities: archive 2, restore 4, remove unlimited, no total "
                      "bound (set here; they stay until 'tierflow capacity m1 --reset')"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("running now: A 3/2 R 1/4 D 0/*; it keeps what it holds and is given "
                      "nothing new until under its bounds"),
            std::string::npos)
      << text;

  m.mutable_capacities()->set_max_archive(8);
  m.mutable_capacities()->set_max_total(3);  // 4 running
  m.set_capacity_override(false);
  m.set_connected(false);
  text = FormatCapacityChange(m);
  EXPECT_NE(text.find("total 3 (the mover's own)"), std::string::npos) << text;
  EXPECT_NE(text.find("given nothing new"), std::string::npos) << "over its total: " << text;
  EXPECT_NE(text.find("not connected"), std::string::npos) << text;
  m.mutable_capacities()->set_max_total(0);
  EXPECT_EQ(FormatCapacityChange(m).find("given nothing new"), std::string::npos);
}

// ---- command line ----

// A loopback port nothing listens on: usage errors must be found before any connection.
constexpr const char* kNobody = "127.0.0.1:1";

TEST(StatusFlags, UnknownNamesAreUsageErrorsListingTheKnownOnes) {
  Ran r = RunArgs({"status", "--coordinator", kNobody, "--action", "copy"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("unknown action 'copy'; the actions are archive, restore, remove, cancel"),
            std::string::npos)
      << r.err;
  r = RunArgs({"status", "--coordinator", kNobody, "--state", "done"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("the states are queued, assigned, succeeded, failed, canceled"),
            std::string::npos)
      << r.err;
  r = RunArgs({"status", "--coordinator", kNobody, "--tag", "climate"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("key=value"), std::string::npos) << r.err;
  EXPECT_EQ(RunArgs({"status", "--coordinator", kNobody, "--after", "x"}).code, kExitUsage);
  // Valid filters reach the (absent) coordinator.
  EXPECT_EQ(RunArgs({"status", "--coordinator", kNobody, "--action", "archive", "--action",
                     "remove", "--state", "queued", "--tag", "a=b", "--user", "u", "--mover",
                     "m", "--after", "0", "--limit", "5"})
                .code,
            kExitUnreachable);
}

TEST(CapacityFlags, NeedBoundsOrResetButNotBoth) {
  EXPECT_EQ(RunArgs({"capacity", "--coordinator", kNobody}).code, kExitUsage);  // no mover
  Ran r = RunArgs({"capacity", "--coordinator", kNobody, "m1"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--reset"), std::string::npos) << r.err;
  r = RunArgs({"capacity", "--coordinator", kNobody, "m1", "--reset", "--archive", "2"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(RunArgs({"capacity", "--coordinator", kNobody, "m1", "--archive", "-2"}).code,
            kExitUsage);
  EXPECT_EQ(RunArgs({"capacity", "--coordinator", kNobody, "m1", "--total", "-1"}).code,
            kExitUsage);
  EXPECT_EQ(RunArgs({"capacity", "--coordinator", kNobody, "m1", "--archive", "-1"}).code,
            kExitUnreachable);
  EXPECT_EQ(RunArgs({"capacity", "--coordinator", kNobody, "m1", "--reset"}).code,
            kExitUnreachable);
}

TEST(JsonFlag, EveryClientVerbTakesIt) {
  for (const char* verb : {"archive", "restore", "remove", "release", "cancel", "state", "orphans",
                           "status", "lock", "unlock", "drain", "capacity", "watch"}) {
    Ran r = RunArgs({verb, "--help"});
    EXPECT_EQ(r.code, kExitOk) << verb;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << verb << " has no --json:\n" << r.out;
  }
}

}  // namespace
}  // namespace tierflow::cli
