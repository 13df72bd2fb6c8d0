// Every bound of limits.h: a message exactly at the bound passes its check, one byte or entry
// past it is refused with a message naming the field, the size and the limit.
#include "coordinator/limits.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace tierflow::coordinator {
namespace {

using namespace limits;

std::string Bytes(size_t n) { return std::string(n, 'x'); }

void SetFile(v1::FileRef* f) {
  f->set_fsid("0123456789abcdef");
  f->set_seq(1);
  f->set_oid(2);
  f->set_path("/fs/file");
}

// Four valid specs; `edit` changes the last one.
v1::SubmitRequest Submit(const std::function<void(v1::RequestSpec*)>& edit) {
  v1::SubmitRequest r;
  for (int i = 0; i < 4; ++i) {
    v1::RequestSpec* s = r.add_requests();
    s->set_action(v1::ARCHIVE);
    SetFile(s->mutable_file());
    if (i == 3) edit(s);
  }
  return r;
}

v1::MoverMessage Hello(const std::function<void(v1::Hello*)>& edit) {
  v1::MoverMessage m;
  m.mutable_hello()->set_id("mover-1");
  m.mutable_hello()->set_host("host.example.org");
  m.mutable_hello()->add_archive_ids(1);
  edit(m.mutable_hello());
  return m;
}

struct Bound {
  std::string name;
  size_t limit;
  std::string field;  // as the refusal names it
  std::function<Status(size_t)> check;  // the check of a message with this size or count
};

std::ostream& operator<<(std::ostream& os, const Bound& b) { return os << b.name; }

class LimitTest : public ::testing::TestWithParam<Bound> {};

TEST_P(LimitTest, AcceptedAtTheBoundRefusedOnePast) {
  const Bound& b = GetParam();
  Status at = b.check(b.limit);
  EXPECT_TRUE(at.ok()) << at.ToString();
  Status past = b.check(b.limit + 1);
  ASSERT_EQ(past.code(), Code::kInvalidArgument) << past.ToString();
  EXPECT_NE(past.message().find(b.field), std::string::npos) << past.message();
  EXPECT_NE(past.message().find(std::to_string(b.limit + 1)), std::string::npos) << past.message();
  EXPECT_NE(past.message().find("the limit is " + std::to_string(b.limit)), std::string::npos)
      << past.message();
}

std::vector<Bound> Bounds() {
  return {
      {"SubmitPath", kMaxPathBytes, "Submit: requests[3].path is",
       [](size_t n) {
         return CheckSubmit(Submit([&](auto* s) { s->mutable_file()->set_path(Bytes(n)); }));
       }},
      {"SubmitFsid", kMaxFsidBytes, "Submit: requests[3].fsid is",
       [](size_t n) {
         return CheckSubmit(Submit([&](auto* s) { s->mutable_file()->set_fsid(Bytes(n)); }));
       }},
      {"SubmitData", kMaxRequestDataBytes, "Submit: requests[3].data is",
       [](size_t n) { return CheckSubmit(Submit([&](auto* s) { s->set_data(Bytes(n)); })); }},
      {"SubmitUser", kMaxUserBytes, "Submit: requests[3].user is",
       [](size_t n) { return CheckSubmit(Submit([&](auto* s) { s->set_user(Bytes(n)); })); }},
      {"SubmitIdempotencyKey", kMaxIdempotencyKeyBytes, "Submit: idempotency_key is",
       [](size_t n) {
         v1::SubmitRequest r = Submit([](auto*) {});
         r.set_idempotency_key(Bytes(n));
         return CheckSubmit(r);
       }},
      {"SubmitSpecs", kMaxSpecsPerSubmit, "Submit: requests has",
       [](size_t n) {
         v1::SubmitRequest r;
         for (size_t i = 0; i < n; ++i) SetFile(r.add_requests()->mutable_file());
         return CheckSubmit(r);
       }},
      {"WaitIds", kMaxIdsPerWait, "Wait: ids has",
       [](size_t n) {
         v1::WaitRequest r;
         for (size_t i = 0; i < n; ++i) r.add_ids(i + 1);
         return CheckWait(r);
       }},
      {"CancelIds", kMaxIdsPerCancel, "Cancel: ids has",
       [](size_t n) {
         v1::CancelRequest r;
         for (size_t i = 0; i < n; ++i) r.add_ids(i + 1);
         return CheckCancel(r);
       }},
      {"CancelFiles", kMaxFilesPerCancel, "Cancel: files has",
       [](size_t n) {
         v1::CancelRequest r;
         for (size_t i = 0; i < n; ++i) SetFile(r.add_files());
         return CheckCancel(r);
       }},
      {"CancelPath", kMaxPathBytes, "Cancel: files[1].path is",
       [](size_t n) {
         v1::CancelRequest r;
         SetFile(r.add_files());
         SetFile(r.add_files());
         r.mutable_files(1)->set_path(Bytes(n));
         return CheckCancel(r);
       }},
      {"StateFiles", kMaxFilesPerState, "State: files has",
       [](size_t n) {
         v1::StateRequest r;
         for (size_t i = 0; i < n; ++i) SetFile(r.add_files());
         return CheckState(r);
       }},
      {"StateFsid", kMaxFsidBytes, "State: files[0].fsid is",
       [](size_t n) {
         v1::StateRequest r;
         SetFile(r.add_files());
         r.mutable_files(0)->set_fsid(Bytes(n));
         return CheckState(r);
       }},
      {"StatusLimit", kMaxStatusLimit, "Status: limit is",
       [](size_t n) {
         v1::StatusRequest r;
         r.set_limit(static_cast<uint32_t>(n));
         return CheckStatus(r);
       }},
      {"StatusActions", kMaxStatusFilterValues, "Status: actions has",
       [](size_t n) {
         v1::StatusRequest r;
         for (size_t i = 0; i < n; ++i) r.add_actions(v1::ARCHIVE);
         return CheckStatus(r);
       }},
      {"StatusStates", kMaxStatusFilterValues, "Status: states has",
       [](size_t n) {
         v1::StatusRequest r;
         for (size_t i = 0; i < n; ++i) r.add_states(v1::QUEUED);
         return CheckStatus(r);
       }},
      {"StatusMover", kMaxMoverIdBytes, "Status: mover is",
       [](size_t n) {
         v1::StatusRequest r;
         r.set_mover(Bytes(n));
         return CheckStatus(r);
       }},
      {"StatusTag", kMaxRequestDataBytes, "Status: tag is",
       [](size_t n) {
         v1::StatusRequest r;
         r.set_tag(Bytes(n));
         return CheckStatus(r);
       }},
      {"StatusUser", kMaxUserBytes, "Status: user is",
       [](size_t n) {
         v1::StatusRequest r;
         r.set_user(Bytes(n));
         return CheckStatus(r);
       }},
      {"CapacityMover", kMaxMoverIdBytes, "Capacity: mover is",
       [](size_t n) {
         v1::CapacityRequest r;
         r.set_mover(Bytes(n));
         return CheckCapacity(r);
       }},
      {"DrainMover", kMaxMoverIdBytes, "Drain: mover is",
       [](size_t n) {
         v1::DrainRequest r;
         r.set_mover(Bytes(n));
         return CheckDrain(r);
       }},
      {"HelloId", kMaxMoverIdBytes, "Hello.id is",
       [](size_t n) { return CheckMoverMessage(Hello([&](auto* h) { h->set_id(Bytes(n)); })); }},
      {"HelloHost", kMaxHostBytes, "Hello.host is",
       [](size_t n) {
         return CheckMoverMessage(Hello([&](auto* h) { h->set_host(Bytes(n)); }));
       }},
      {"HelloArchiveIds", kMaxArchiveIdsPerHello, "Hello.archive_ids has",
       [](size_t n) {
         return CheckMoverMessage(Hello([&](auto* h) {
           h->clear_archive_ids();
           for (size_t i = 0; i < n; ++i) h->add_archive_ids(static_cast<uint32_t>(i + 1));
         }));
       }},
      {"HelloInHand", kMaxInHandPerHello, "Hello.in_hand has",
       [](size_t n) {
         return CheckMoverMessage(Hello([&](auto* h) {
           h->mutable_in_hand()->Reserve(static_cast<int>(n));
           for (size_t i = 0; i < n; ++i) h->add_in_hand()->set_id(i + 1);
         }));
       }},
      {"ReportsProgress", kMaxProgressPerReports, "Reports.progress has",
       [](size_t n) {
         v1::MoverMessage m;
         for (size_t i = 0; i < n; ++i) m.mutable_reports()->add_progress()->set_id(i + 1);
         return CheckMoverMessage(m);
       }},
      {"ReportsResults", kMaxResultsPerReports, "Reports.results has",
       [](size_t n) {
         v1::MoverMessage m;
         for (size_t i = 0; i < n; ++i) m.mutable_reports()->add_results()->set_id(i + 1);
         return CheckMoverMessage(m);
       }},
      {"ReportsResultError", kMaxErrorBytes, "Reports.results[2].error is",
       [](size_t n) {
         v1::MoverMessage m;
         for (int i = 0; i < 3; ++i) m.mutable_reports()->add_results()->set_id(i + 1);
         m.mutable_reports()->mutable_results(2)->set_error(Bytes(n));
         return CheckMoverMessage(m);
       }},
      {"ResultError", kMaxErrorBytes, "Result.error is",
       [](size_t n) {
         v1::MoverMessage m;
         m.mutable_result()->set_error(Bytes(n));
         return CheckMoverMessage(m);
       }},
  };
}

INSTANTIATE_TEST_SUITE_P(EveryBound, LimitTest, ::testing::ValuesIn(Bounds()),
                         [](const auto& info) { return info.param.name; });

TEST(LimitNames, MoverIdsArePrintableAsciiWithoutSlashOrWhitespace) {
  EXPECT_TRUE(CheckName("Hello.id", "mover-1_a.b:c@d", kMaxMoverIdBytes).ok());
  for (std::string bad : {std::string("a b"), std::string("a/b"), std::string("a\tb"),
                          std::string("a\nb"), std::string("a\x7f"), std::string("caf\xc3\xa9"),
                          std::string("a\0b", 3)}) {
    Status st = CheckName("Hello.id", bad, kMaxMoverIdBytes);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << "accepted a mover id with a bad byte";
    EXPECT_NE(st.message().find("Hello.id has byte 0x"), std::string::npos) << st.message();
  }
  Status empty = CheckName("Hello.id", "", kMaxMoverIdBytes);
  EXPECT_EQ(empty.code(), Code::kInvalidArgument);
  EXPECT_NE(empty.message().find("Hello.id is empty"), std::string::npos) << empty.message();
}

TEST(LimitNames, HelloHostMayBeEmptyButNotSlashed) {
  EXPECT_TRUE(CheckMoverMessage(Hello([](auto* h) { h->clear_host(); })).ok());
  Status st = CheckMoverMessage(Hello([](auto* h) { h->set_host("evil/../host"); }));
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("Hello.host has byte 0x2f at offset 4"), std::string::npos)
      << st.message();
}

TEST(LimitMessages, AnEmptyMoverMessageIsRefusedAndAPongAccepted) {
  Status st = CheckMoverMessage(v1::MoverMessage());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("no field set"), std::string::npos) << st.message();
  v1::MoverMessage pong;
  pong.mutable_pong()->set_seq(7);
  EXPECT_TRUE(CheckMoverMessage(pong).ok());
}

TEST(LimitMessages, TheFirstFieldPastItsBoundIsTheOneNamed) {
  v1::SubmitRequest r = Submit([](auto* s) {
    s->mutable_file()->set_path(Bytes(5000));
    s->set_user(Bytes(5000));
  });
  Status st = CheckSubmit(r);
  EXPECT_EQ(st.message(), "Submit: requests[3].path is 5000 bytes; the limit is 4096");
}

TEST(LimitCapacity, EachKindIsMinusOneOrMore) {
  v1::CapacityRequest r;
  r.set_mover("m1");
  r.mutable_capacities()->set_max_archive(-1);
  r.mutable_capacities()->set_max_restore(0);
  r.mutable_capacities()->set_max_remove(7);
  EXPECT_TRUE(CheckCapacity(r).ok());
  r.mutable_capacities()->set_max_remove(-2);
  Status st = CheckCapacity(r);
  ASSERT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("max_remove is -2"), std::string::npos) << st.message();
  r.mutable_capacities()->set_max_remove(1);
  r.set_mover("a/b");
  EXPECT_EQ(CheckCapacity(r).code(), Code::kInvalidArgument) << "mover ids name journal keys";
}

}  // namespace
}  // namespace tierflow::coordinator
