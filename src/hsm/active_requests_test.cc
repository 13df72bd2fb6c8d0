// active_requests lines: the exact Lustre text, parsing back, and rejections.
#include "hsm/active_requests.h"

#include <gtest/gtest.h>

#include "hsm/action.h"

namespace tierflow::hsm {
namespace {

constexpr std::string_view kLustreLine =
    "fid=[0x200000401:0x1:0x0] dfid=[0x200000401:0x1:0x0] compound/cookie=0x0/0x5d0a2b3c "
    "action=ARCHIVE archive#=1 flags=0x0 extent=0x0-0xffffffffffffffff gid=0x0 data=[] "
    "canceled=0 uuid=a1b2c3d4-e5f6 done=0";

ActiveRequest Sample() {
  ActiveRequest r;
  r.item.action = ToCopytoolAction(Action::kArchive);
  r.item.fid = {0x200000401, 0x1, 0x0};
  r.item.dfid = {0x200000401, 0x1, 0x0};
  r.item.cookie = 0x5d0a2b3c;
  r.archive_id = 1;
  r.agent_uuid = "a1b2c3d4-e5f6";
  return r;
}

TEST(ActiveRequestsTest, FormatsLikeTheKernel) {
  EXPECT_EQ(FormatActiveRequest(Sample()), kLustreLine);
}

TEST(ActiveRequestsTest, ParsesTheKernelLine) {
  Result<ActiveRequest> r = ParseActiveRequest(kLustreLine);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Sample());
  EXPECT_EQ(r->item.extent_length, kExtentWholeFile);
}

TEST(ActiveRequestsTest, FormatsEveryField) {
  ActiveRequest r = Sample();
  r.item.action = ToCopytoolAction(Action::kRestore);
  r.item.dfid = {0x200000402, 0x2a, 0x3};
  r.item.extent_offset = 0x1000;
  r.item.extent_length = 0x2000;
  r.item.gid = 0x10;
  r.item.data = std::string("\x01\xab\x00\x7f\xff", 5);
  r.compound_id = 0x9;
  r.archive_id = 12;
  r.flags = kHalFlagBlocking;
  r.canceled = true;
  r.done_bytes = 123456;
  EXPECT_EQ(FormatActiveRequest(r),
            "fid=[0x200000401:0x1:0x0] dfid=[0x200000402:0x2a:0x3] compound/cookie=0x9/0x5d0a2b3c "
            "action=RESTORE archive#=12 flags=0x4 extent=0x1000-0x2000 gid=0x10 "
            "data=[01AB007FFF] canceled=1 uuid=a1b2c3d4-e5f6 done=123456");
  Result<ActiveRequest> back = ParseActiveRequest(FormatActiveRequest(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
}

TEST(ActiveRequestsTest, DataIsTruncatedToFiveBytes) {
  ActiveRequest r = Sample();
  r.item.data = "tag=hot";
  std::string line = FormatActiveRequest(r);
  EXPECT_NE(line.find("data=[7461673D68]"), std::string::npos) << line;
  Result<ActiveRequest> back = ParseActiveRequest(line);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->item.data, "tag=h");
}

// Found by fuzz/active_requests_fuzz: a longer data field than the kernel prints gave a
// request holding more than kActiveRequestDataBytes bytes of data.
TEST(ActiveRequestsTest, ParsedDataKeepsAtMostFiveBytes) {
  std::string line(kLustreLine);
  line.replace(line.find("data=[]"), 7, "data=[0102030405060708090A]");
  Result<ActiveRequest> r = ParseActiveRequest(line);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->item.data, "\x01\x02\x03\x04\x05");
  line.replace(line.find("data=["), 27, "data=[01020304050607080Z]");
  EXPECT_FALSE(ParseActiveRequest(line).ok());  // every digit is still checked
}

TEST(ActiveRequestsTest, RoundTripsEveryAction) {
  for (uint32_t action : {10u, 20u, 21u, 22u, 23u}) {
    ActiveRequest r = Sample();
    r.item.action = action;
    Result<ActiveRequest> back = ParseActiveRequest(FormatActiveRequest(r));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->item.action, action);
  }
}

TEST(ActiveRequestsTest, ToleratesOlderAndNewerKernels) {
  // Fewer fields, glibc-style zeros, lowercase data hex, an odd nibble, an unknown key.
  Result<ActiveRequest> r = ParseActiveRequest(
      "fid=[0x1:0x2:0x0] dfid=[0x1:0x2:0x0] compound/cookie=0/0x7 action=remove archive#=2 "
      "flags=0 extent=0-0xffffffffffffffff data=[abc] newfield=xyz\r");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->item.action, 22u);
  EXPECT_EQ(r->item.cookie, 7u);
  EXPECT_EQ(r->archive_id, 2u);
  EXPECT_EQ(r->item.data, "\xab");
  EXPECT_EQ(r->item.gid, 0u);
  EXPECT_FALSE(r->canceled);
  EXPECT_EQ(r->agent_uuid, "");
  EXPECT_EQ(r->done_bytes, 0u);
}

TEST(ActiveRequestsTest, EmptyUuid) {
  ActiveRequest r = Sample();
  r.agent_uuid.clear();
  std::string line = FormatActiveRequest(r);
  EXPECT_NE(line.find(" uuid= done=0"), std::string::npos) << line;
  Result<ActiveRequest> back = ParseActiveRequest(line);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
}

TEST(ActiveRequestsTest, ParsesLctlOutput) {
  std::string second = std::string(kLustreLine);
  second.replace(second.find("0x5d0a2b3c"), 10, "0x5d0a2b3d");
  std::string text = "mdt.lustre-MDT0000.hsm.active_requests=\n" + std::string(kLustreLine) +
                     "\n\n" + second + "\n";
  Result<std::vector<ActiveRequest>> all = ParseActiveRequests(text);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].item.cookie, 0x5d0a2b3cu);
  EXPECT_EQ((*all)[1].item.cookie, 0x5d0a2b3du);
}

TEST(ActiveRequestsTest, ParsesARequestOnTheHeaderLine) {
  std::string text = "mdt.lustre-MDT0001.hsm.active_requests=" + std::string(kLustreLine);
  Result<std::vector<ActiveRequest>> all = ParseActiveRequests(text);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0], Sample());
}

TEST(ActiveRequestsTest, EmptyInputHasNoRequests) {
  for (std::string_view text : {"", "\n", "mdt.fs-MDT0000.hsm.active_requests=\n", "  \r\n"}) {
    Result<std::vector<ActiveRequest>> all = ParseActiveRequests(text);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_TRUE(all->empty());
  }
}

TEST(ActiveRequestsTest, ErrorsNameTheLine) {
  std::string text = std::string(kLustreLine) + "\nfid=[0x1:0x2:0x3] garbage\n";
  Result<std::vector<ActiveRequest>> all = ParseActiveRequests(text);
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.status().message().find("line 2"), std::string::npos) << all.status().message();
}

std::string Replace(std::string_view from, std::string_view to) {
  std::string line(kLustreLine);
  size_t at = line.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) line.replace(at, from.size(), to);
  return line;
}

TEST(ActiveRequestsTest, RejectsMalformedLines) {
  struct Case {
    std::string line;
    std::string_view names;
  } cases[] = {
      {Replace("fid=[0x200000401:0x1:0x0] ", ""), "'fid=' is missing"},
      {Replace(" dfid=[0x200000401:0x1:0x0]", ""), "'dfid=' is missing"},
      {Replace(" action=ARCHIVE", ""), "'action=' is missing"},
      {Replace(" archive#=1", ""), "'archive#=' is missing"},
      {Replace(" flags=0x0", ""), "'flags=' is missing"},
      {Replace(" extent=0x0-0xffffffffffffffff", ""), "'extent=' is missing"},
      {Replace(" compound/cookie=0x0/0x5d0a2b3c", ""), "'compound/cookie=' is missing"},
      {Replace("gid=0x0", "gid=0x0 gid=0x1"), "appears twice"},
      {Replace("flags=0x0", "flags=0x0 oops"), "not key=value"},
      {Replace("fid=[0x200000401:0x1:0x0] ", "fid=0x200000401:0x1:0x0 "), "fid="},
      {Replace("dfid=[0x200000401:0x1:0x0]", "dfid=[0x1:0x2]"), "dfid="},
      {Replace("0x0/0x5d0a2b3c", "0x0-0x5d0a2b3c"), "compound/cookie="},
      {Replace("0x0/0x5d0a2b3c", "0x0/5d0a2b3c"), "compound/cookie="},
      {Replace("action=ARCHIVE", "action=UNKNOWN"), "action="},
      {Replace("archive#=1", "archive#=0x1"), "archive#="},
      {Replace("archive#=1", "archive#=4294967296"), "archive#="},
      {Replace("flags=0x0", "flags=0xz"), "flags="},
      {Replace("extent=0x0-0xffffffffffffffff", "extent=0x0"), "extent="},
      {Replace("extent=0x0-0xffffffffffffffff", "extent=0x0-0x1ffffffffffffffff"), "extent="},
      {Replace("gid=0x0", "gid=zero"), "gid="},
      {Replace("data=[]", "data=[0G]"), "data="},
      {Replace("data=[]", "data=00"), "data="},
      {Replace("canceled=0", "canceled=no"), "canceled="},
      {Replace("done=0", "done=-1"), "done="},
  };
  for (const Case& c : cases) {
    Result<ActiveRequest> r = ParseActiveRequest(c.line);
    EXPECT_FALSE(r.ok()) << c.line;
    if (r.ok()) continue;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.names), std::string::npos)
        << c.line << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace tierflow::hsm
