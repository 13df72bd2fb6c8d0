// State lines, state JSON (odd file names), status warnings, sizes and the progress bar.
#include "cli/output.h"

#include <gtest/gtest.h>

#include "cli/json_writer.h"
#include "hsm/hsm_state.h"

namespace tierflow::cli {
namespace {

mover::FileState ManagedState(uint32_t states, uint32_t archive_id) {
  mover::FileState s;
  s.id.fsid = "00000000deadbeef";
  s.id.fid = hsm::Fid{0x200000401, 0x1, 0x0};
  s.has_record = true;
  s.record.states = states;
  s.record.archive_id = archive_id;
  return s;
}

TEST(StateLine, LooksLikeLfsHsmState) {
  const uint32_t s = hsm::kStateExists | hsm::kStateArchived | hsm::kStateReleased;
  EXPECT_EQ(FormatStateLine("/fs/a", s, 1),
            "/fs/a: (0x0000000d) released exists archived, archive_id:1");
}

TEST(StateLine, UnmanagedFileShowsOnlyZeroBits) {
  EXPECT_EQ(FormatStateLine("/fs/b c", 0, 0), "/fs/b c: (0x00000000)");
  EXPECT_EQ(FormatStateLine("/removed", 0, 2), "/removed: (0x00000000)");
  EXPECT_EQ(FormatStateLine("/n", hsm::kStateNoRelease, 2), "/n: (0x00000010) norelease");
}

TEST(StateLine, DirtyAndFlags) {
  const uint32_t s =
      hsm::kStateExists | hsm::kStateDirty | hsm::kStateArchived | hsm::kStateNoRelease;
  EXPECT_EQ(FormatStateLine("/x", s, 3),
            "/x: (0x0000001b) exists dirty archived norelease, archive_id:3");
}

TEST(StateLine, LastErrorLineOnlyWhenRecorded) {
  mover::FileState s = ManagedState(hsm::kStateExists | hsm::kStateArchived, 1);
  EXPECT_EQ(FormatLastErrorLine("/x", s), "");
  s.record.last_error = "restore failed: checksum mismatch";
  s.record.last_error_code = 74;
  EXPECT_EQ(FormatLastErrorLine("/x", s),
            "/x: last error: restore failed: checksum mismatch (errno 74)");
}

TEST(StateJson, HasEveryFieldAndEscapesOddNames) {
  mover::FileState s =
      ManagedState(hsm::kStateExists | hsm::kStateArchived | hsm::kStateReleased, 1);
  std::string line = FormatStateJson("/fs/a \"b\"\n\\c\td", s, s.record.states);
  EXPECT_EQ(
      line,
      R"({"path":"/fs/a \"b\"\n\\c\td","fsid":"00000000deadbeef","fid":"[0x200000401:0x1:0x0]",)"
      R"("states":["released","exists","archived"],"state_bits":13,"archive_id":1,)"
      R"("last_error":null,"last_error_code":0})");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(StateJson, LastErrorIsAString) {
  mover::FileState s = ManagedState(hsm::kStateExists, 2);
  s.record.last_error = "copy \"x\" failed";
  s.record.last_error_code = 5;
  std::string line = FormatStateJson("/p", s, s.record.states);
  EXPECT_NE(line.find(R"("last_error":"copy \"x\" failed","last_error_code":5)"), std::string::npos)
      << line;
}

TEST(Json, QuotesControlAndInvalidUtf8Bytes) {
  EXPECT_EQ(JsonQuote("a\x01z"), "\"a\\u0001z\"");
  EXPECT_EQ(JsonQuote("\x7f"), "\"\\u007f\"");
  EXPECT_EQ(JsonQuote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");             // valid UTF-8 kept
  EXPECT_EQ(JsonQuote("bad\xff\xc3"), "\"bad\\u00ff\\u00c3\"");       // invalid bytes escaped
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // a surrogate is invalid
  EXPECT_EQ(JsonQuote("\xc0\xaf"), "\"\\u00c0\\u00af\"");             // overlong
}

TEST(Json, WriterPlacesCommas) {
  JsonWriter w;
  w.BeginObject().Key("a").BeginArray().Int(-1).Uint(2).Bool(true).Null().EndArray();
  w.Key("b").BeginObject().EndObject().Key("c").String("x").EndObject();
  EXPECT_EQ(w.str(), R"({"a":[-1,2,true,null],"b":{},"c":"x"})");
}

v1::StatusReply StatusWithQueued(uint32_t archive_id, bool mover_connected) {
  v1::StatusReply s;
  v1::MoverInfo* m = s.add_movers();
  m->set_id("m1");
  m->set_host("h");
  m->add_archive_ids(1);
  m->set_connected(mover_connected);
  v1::RequestInfo* r = s.add_requests();
  r->set_id(9);
  r->set_action(v1::ARCHIVE);
  r->set_archive_id(archive_id);
  r->set_state(v1::QUEUED);
  r->mutable_file()->set_path("/fs/x");
  r->set_waiting_reason("no mover serves archive id " + std::to_string(archive_id));
  return s;
}

TEST(Status, WarnsAboutArchiveIdsNoConnectedMoverServes) {
  auto w = StatusWarnings(StatusWithQueued(7, true));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0],
            "archive id 7 is not served by any connected mover; start a mover with --archive-id 7");
  EXPECT_TRUE(StatusWarnings(StatusWithQueued(1, true)).empty());
  EXPECT_EQ(StatusWarnings(StatusWithQueued(1, false)).size(), 1u);
}

TEST(Status, DoesNotRepeatTheCoordinatorsWarning) {
  v1::StatusReply s = StatusWithQueued(7, true);
  s.add_warnings("archive id 7 has 1 queued request and no mover");
  auto w = StatusWarnings(s);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], s.warnings(0));
}

TEST(Status, MoverStateSaysDrainedSilentOrDisconnected) {
  v1::StatusReply s;
  auto* a = s.add_movers();
  a->set_id("a");
  a->set_connected(true);
  a->set_draining(true);
  auto* b = s.add_movers();
  b->set_id("b");
  b->set_connected(true);
  b->set_silent_us(42'000'000);
  auto* c = s.add_movers();
  c->set_id("c");
  std::string text = FormatStatus(s, "h:1");
  EXPECT_NE(text.find("drained"), std::string::npos) << text;
  EXPECT_NE(text.find("silent 42 s"), std::string::npos) << text;
  EXPECT_NE(text.find("disconnected"), std::string::npos) << text;
}

TEST(Status, TextNamesMoversLockWarningsAndQueuedRequests) {
  v1::StatusReply s = StatusWithQueued(7, true);
  s.set_lock(1);
  v1::ActionCounters* c = s.add_counters();
  c->set_action(v1::ARCHIVE);
  c->set_queued(1);
  c->set_succeeded(12);
  std::string text = FormatStatus(s, "127.0.0.1:7420");
  EXPECT_NE(text.find("coordinator 127.0.0.1:7420: locked"), std::string::npos) << text;
  EXPECT_NE(text.find("archive"), std::string::npos);
  EXPECT_NE(text.find("12"), std::string::npos);
  EXPECT_NE(text.find("m1"), std::string::npos);
  EXPECT_NE(text.find("connected"), std::string::npos) << text;
  EXPECT_NE(text.find("start a mover with --archive-id 7"), std::string::npos);
  EXPECT_NE(text.find("/fs/x  (no mover serves archive id 7)"), std::string::npos) << text;
}

TEST(Status, TextWithoutMoversSaysHowToStartOne) {
  v1::StatusReply s;
  std::string text = FormatStatus(s, "h:1");
  EXPECT_NE(text.find("movers: none; start one with 'tierflow mover --coordinator h:1"),
            std::string::npos)
      << text;
}

TEST(Status, JsonIsOneDocumentWithProtoFieldNames) {
  std::string json = FormatStatusJson(StatusWithQueued(7, true));
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find("\"archive_ids\":[1]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"waiting_reason\":\"no mover serves archive id 7\""), std::string::npos);
  EXPECT_NE(json.find("start a mover with --archive-id 7"), std::string::npos);
  EXPECT_NE(json.find("\"lock\":0"), std::string::npos) << json;
}

TEST(Sizes, HumanBytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3ull << 30), "3.0 GiB");
}

TEST(Progress, RenderShowsFilesAndBytes) {
  EXPECT_EQ(ProgressBar::Render("archive", 1, 4, 512, 512, 1024, 10),
            "archive [#####.....] 1/4 files, 512 B / 1.0 KiB");
  EXPECT_EQ(ProgressBar::Render("restore", 2, 2, 0, 0, 0, 4),
            "restore [####] 2/2 files, 0 B / 0 B");
  // Failed files fill the bar without counting as moved bytes.
  EXPECT_EQ(ProgressBar::Render("restore", 2, 2, 24, 1024, 1024, 4),
            "restore [####] 2/2 files, 24 B / 1.0 KiB");
}

}  // namespace
}  // namespace tierflow::cli
