// What `tierflow watch` prints for an event: text in the report files' words, or JSON.
#include "cli/watch_verb.h"

#include <gtest/gtest.h>

namespace tierflow::cli {
namespace {

v1::Event AssignEvent() {
  v1::Event e;
  e.set_kind(v1::Event::ASSIGN);
  e.set_id(17);
  e.set_action(v1::ARCHIVE);
  e.mutable_file()->set_fsid("a1b2");
  e.mutable_file()->set_seq(0x200000401);
  e.mutable_file()->set_oid(0x1);
  e.mutable_file()->set_path("/data/x");
  e.set_mover("m1");
  e.set_host("node3");
  e.set_hint("J1");
  e.set_time_us(1'748'772'000'123'456);
  return e;
}

TEST(WatchOutputTest, TextIsTimeIdAndTheReportLine) {
  EXPECT_EQ(FormatEventText(AssignEvent()),
            "2025-06-01T10:00:00.123456Z 17 assign [0x200000401:0x1:0x0] node3");
  v1::Event done = AssignEvent();
  done.set_kind(v1::Event::DONE);
  done.set_status(125);
  done.set_time_us(5);
  EXPECT_EQ(FormatEventText(done), "1970-01-01T00:00:00.000005Z 17 done [0x200000401:0x1:0x0] 125");
}

TEST(WatchOutputTest, JsonHasEveryFieldOnOneLine) {
  EXPECT_EQ(FormatEventJson(AssignEvent()),
            "{\"time\":\"2025-06-01T10:00:00.123456Z\",\"time_us\":1748772000123456,"
            "\"kind\":\"assign\",\"id\":17,\"action\":\"archive\","
            "\"fid\":\"[0x200000401:0x1:0x0]\",\"fsid\":\"a1b2\",\"path\":\"/data/x\","
            "\"mover\":\"m1\",\"host\":\"node3\",\"bytes_done\":0,\"bytes_total\":0,"
            "\"status\":0,\"hint\":\"J1\"}");
}

TEST(WatchOutputTest, JsonEscapesOddPaths) {
  v1::Event e = AssignEvent();
  e.mutable_file()->set_path("/data/new\nline \"q\"");
  const std::string json = FormatEventJson(e);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find("\"path\":\"/data/new\\nline \\\"q\\\"\""), std::string::npos) << json;
}

TEST(WatchOutputTest, DroppedIsItsOwnJsonLine) {
  EXPECT_EQ(FormatDroppedJson(42), "{\"kind\":\"dropped\",\"dropped\":42}");
}

}  // namespace
}  // namespace tierflow::cli
