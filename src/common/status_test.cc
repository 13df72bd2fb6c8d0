#include "common/status.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace tierflow {
namespace {

TEST(StatusTest, ErrnoMapsToCodeAndKeepsErrno) {
  Status st = Status::FromErrno(ENOSPC, "writing /archive/x");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_EQ(st.AsErrno(), ENOSPC);
  EXPECT_NE(st.message().find("writing /archive/x"), std::string::npos);
}

TEST(StatusTest, AnnotatePrefixesContext) {
  Status st = Status(Code::kCorrupt, "checksum mismatch").Annotate("restoring /a");
  EXPECT_EQ(st.message(), "restoring /a: checksum mismatch");
  EXPECT_EQ(st.AsErrno(), EIO);
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Status(Code::kNotFound, "no such request"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
}

TEST(ClockTest, ManualClockMovesOnlyWhenAdvanced) {
  ManualClock clock(100);
  EXPECT_EQ(clock.NowMicros(), 100);
  clock.Advance(50);
  EXPECT_EQ(clock.NowMicros(), 150);
}

}  // namespace
}  // namespace tierflow
