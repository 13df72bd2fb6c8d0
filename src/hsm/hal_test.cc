// The HSM action list and kuc header codecs, checked against byte layouts written by hand from
// the offsets in reference/lustre-hsm.md (not from the encoder's own constants).
#include "hsm/hal.h"

#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <random>

#include "hsm/action.h"

namespace tierflow::hsm {
namespace {

// A zero-filled buffer of a size fixed up front, written at explicit offsets.
class ByteLayout {
 public:
  explicit ByteLayout(size_t size) : bytes_(size, '\0') {}

  void U8(size_t off, uint8_t v) { Write(off, &v, 1); }
  void U16(size_t off, uint16_t v) { Write(off, &v, 2); }
  void U32(size_t off, uint32_t v) { Write(off, &v, 4); }
  void U64(size_t off, uint64_t v) { Write(off, &v, 8); }
  void FidAt(size_t off, const Fid& f) {
    U64(off, f.seq);
    U32(off + 8, f.oid);
    U32(off + 12, f.ver);
  }
  void Str(size_t off, std::string_view s) { Write(off, s.data(), s.size()); }
  const std::string& bytes() const { return bytes_; }

 private:
  void Write(size_t off, const void* p, size_t n) {
    if (off + n > bytes_.size()) {
      ADD_FAILURE() << "hand layout writes " << n << " bytes at " << off << " past "
                    << bytes_.size();
      return;
    }
    std::memcpy(bytes_.data() + off, p, n);
  }
  std::string bytes_;
};

// hal header: version @0, count @4, compound @8, flags @16, archive_id @24, fsname @32.
void HandHeader(ByteLayout* l, const ActionList& hal) {
  l->U32(0, 1);
  l->U32(4, static_cast<uint32_t>(hal.items.size()));
  l->U64(8, hal.compound_id);
  l->U64(16, hal.flags);
  l->U32(24, hal.archive_id);
  l->Str(32, hal.fsname);  // NUL and padding stay zero
}

// hai: len @0, action @4, fid @8, dfid @24, extent @40 (offset, length), cookie @56, gid @64,
// data @72.
void HandItem(ByteLayout* l, size_t base, const ActionItem& it) {
  l->U32(base + 0, static_cast<uint32_t>(72 + it.data.size()));
  l->U32(base + 4, it.action);
  l->FidAt(base + 8, it.fid);
  l->FidAt(base + 24, it.dfid);
  l->U64(base + 40, it.extent_offset);
  l->U64(base + 48, it.extent_length);
  l->U64(base + 56, it.cookie);
  l->U64(base + 64, it.gid);
  l->Str(base + 72, it.data);
}

ActionItem Item(uint32_t n, std::string data) {
  ActionItem it;
  it.action = ToCopytoolAction(Action::kArchive);
  it.fid = {0x200000401ULL + n, 0x10 + n, 0};
  it.dfid = {0x200000401ULL + n, 0x10 + n, 1};
  it.extent_offset = 4096ULL * n;
  it.extent_length = n == 0 ? kExtentWholeFile : 1000 + n;
  it.cookie = 0x5a5a0000ULL + n;
  it.gid = 0x77 + n;
  it.data = std::move(data);
  return it;
}

ActionList List(std::string fsname, std::vector<ActionItem> items) {
  ActionList hal;
  hal.compound_id = 0x1122334455667788ULL;
  hal.flags = kHalFlagForce | kHalFlagBlocking;
  hal.archive_id = 3;
  hal.fsname = std::move(fsname);
  hal.items = std::move(items);
  return hal;
}

void ExpectRoundTrip(const ActionList& hal, const std::string& bytes) {
  Result<ActionList> back = DecodeActionList(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, hal);
}

std::string Expect(Result<ActionList> r, std::string_view text) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
  return r.status().message();
}

TEST(HalLayoutTest, EmptyList) {
  ActionList hal = List("lustre", {});
  ByteLayout l(40);  // 32 + align8(6 + 1)
  HandHeader(&l, hal);
  std::string enc = EncodeActionList(hal);
  EXPECT_EQ(enc, l.bytes());
  EXPECT_EQ(ActionListSize(hal), 40u);
  ExpectRoundTrip(hal, enc);
}

struct DataCase {
  size_t data_len;
  size_t total;  // 40 + align8(72 + data_len), by hand
};

std::ostream& operator<<(std::ostream& os, const DataCase& c) {
  return os << "data " << c.data_len << " -> total " << c.total;
}

class HalDataAlignmentTest : public ::testing::TestWithParam<DataCase> {};

TEST_P(HalDataAlignmentTest, OneItem) {
  const DataCase& c = GetParam();
  std::string data;
  for (size_t i = 0; i < c.data_len; ++i) data.push_back(static_cast<char>(0xF0 ^ i));
  if (!data.empty()) data[0] = '\0';  // data is bytes, not a C string
  ActionList hal = List("lustre", {Item(1, data)});
  ByteLayout l(c.total);
  HandHeader(&l, hal);
  HandItem(&l, 40, hal.items[0]);
  std::string enc = EncodeActionList(hal);
  EXPECT_EQ(enc.size(), c.total);
  EXPECT_EQ(enc, l.bytes());
  EXPECT_EQ(ActionListSize(hal), c.total);
  ExpectRoundTrip(hal, enc);
}

INSTANTIATE_TEST_SUITE_P(DataLengths, HalDataAlignmentTest,
                         ::testing::Values(DataCase{0, 112}, DataCase{1, 120}, DataCase{7, 120},
                                           DataCase{8, 120}, DataCase{9, 128},
                                           DataCase{16, 128}, DataCase{17, 136}));

struct FsnameCase {
  size_t fsname_len;
  size_t first_item;  // 32 + align8(len + 1), by hand
};

std::ostream& operator<<(std::ostream& os, const FsnameCase& c) {
  return os << "fsname " << c.fsname_len << " -> first item " << c.first_item;
}

class HalFsnameAlignmentTest : public ::testing::TestWithParam<FsnameCase> {};

TEST_P(HalFsnameAlignmentTest, FirstItemOffset) {
  const FsnameCase& c = GetParam();
  ActionList hal = List(std::string(c.fsname_len, 'f'), {Item(0, "")});
  ByteLayout l(c.first_item + 72);
  HandHeader(&l, hal);
  HandItem(&l, c.first_item, hal.items[0]);
  std::string enc = EncodeActionList(hal);
  EXPECT_EQ(enc, l.bytes());
  ExpectRoundTrip(hal, enc);
}

INSTANTIATE_TEST_SUITE_P(FsnameLengths, HalFsnameAlignmentTest,
                         ::testing::Values(FsnameCase{0, 40}, FsnameCase{6, 40},
                                           FsnameCase{7, 40}, FsnameCase{8, 48},
                                           FsnameCase{15, 48}, FsnameCase{16, 56}));

// Items of data length 3, 0, 16, 9 after fsname "testfs":
//   item0 @40  len 75 -> 80;  item1 @120 len 72 -> 72;  item2 @192 len 88 -> 88;
//   item3 @280 len 81 -> 88;  total 368.
ActionList FourItems() {
  ActionList hal = List("testfs", {Item(0, "abc"), Item(1, ""), Item(2, std::string(16, 'x')),
                                   Item(3, "123456789")});
  hal.items[1].action = ToCopytoolAction(Action::kRestore);
  hal.items[2].action = ToCopytoolAction(Action::kRemove);
  hal.items[3].action = kCopytoolActionNoop;
  return hal;
}

TEST(HalLayoutTest, SeveralItems) {
  ActionList hal = FourItems();
  ByteLayout l(368);
  HandHeader(&l, hal);
  HandItem(&l, 40, hal.items[0]);
  HandItem(&l, 120, hal.items[1]);
  HandItem(&l, 192, hal.items[2]);
  HandItem(&l, 280, hal.items[3]);
  std::string enc = EncodeActionList(hal);
  EXPECT_EQ(enc, l.bytes());
  EXPECT_EQ(ActionListSize(hal), 368u);
  ExpectRoundTrip(hal, enc);
}

TEST(HalLayoutTest, KernelSizedListOfDatalessItems) {
  std::vector<ActionItem> items;
  for (uint32_t i = 0; i < 70; ++i) items.push_back(Item(i, ""));
  ActionList hal = List("lustre", items);
  std::string enc = EncodeActionList(hal);
  EXPECT_EQ(enc.size(), 40u + 70u * 72u);
  EXPECT_LE(enc.size(), 5120u);
  ExpectRoundTrip(hal, enc);
}

TEST(HalDecodeTest, ReadsFromUnalignedBuffers) {
  ActionList hal = FourItems();
  std::string shifted = "?" + EncodeActionList(hal);
  Result<ActionList> back = DecodeActionList(std::string_view(shifted).substr(1));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, hal);
}

TEST(HalDecodeTest, IgnoresTrailingBytesAndMissingFinalPadding) {
  ActionList hal = List("lustre", {Item(0, "a")});  // item len 73, padded to 80
  std::string enc = EncodeActionList(hal);
  ExpectRoundTrip(hal, enc + std::string(100, '\xee'));
  ExpectRoundTrip(hal, enc.substr(0, enc.size() - 7));
}

TEST(HalDecodeTest, RejectsShortBuffers) {
  std::string enc = EncodeActionList(List("lustre", {}));
  for (size_t n = 0; n < 32; ++n) Expect(DecodeActionList(enc.substr(0, n)), "shorter than");
}

TEST(HalDecodeTest, RejectsBuffersAboveOneMebibyte) {
  std::string enc = EncodeActionList(List("lustre", {}));
  std::string at_limit = enc + std::string(kHalMaxSize - enc.size(), '\0');
  EXPECT_TRUE(DecodeActionList(at_limit).ok());
  Expect(DecodeActionList(at_limit + '\0'), "limit");
}

TEST(HalDecodeTest, RejectsOtherVersions) {
  for (uint32_t v : {0u, 2u, 0x01000000u}) {
    std::string enc = EncodeActionList(List("lustre", {}));
    std::memcpy(enc.data(), &v, 4);
    Expect(DecodeActionList(enc), "hal_version");
  }
}

TEST(HalDecodeTest, RejectsUnterminatedFsname) {
  ByteLayout l(36);
  l.U32(0, 1);
  l.Str(32, "abcd");
  Expect(DecodeActionList(l.bytes()), "not NUL-terminated");
  ByteLayout bare(32);  // header only: no room for even the NUL
  bare.U32(0, 1);
  Expect(DecodeActionList(bare.bytes()), "not NUL-terminated");
}

TEST(HalDecodeTest, RejectsCountLargerThanBuffer) {
  ActionList hal = List("lustre", {Item(0, "")});
  std::string enc = EncodeActionList(hal);  // 40 + 72
  for (uint32_t count : {2u, 1000u, 0xFFFFFFFFu}) {
    std::string bad = enc;
    std::memcpy(bad.data() + 4, &count, 4);
    Expect(DecodeActionList(bad), "hal_count");
  }
  // Count 1 but no item bytes at all, not even after the fsname padding.
  std::string header = EncodeActionList(List("lustre", {}));
  uint32_t one = 1;
  std::memcpy(header.data() + 4, &one, 4);
  Expect(DecodeActionList(header), "hal_count");
  Expect(DecodeActionList(header.substr(0, 39)), "hal_count");
}

TEST(HalDecodeTest, RejectsCountThatOverrunsLongItems) {
  // One item with 100 data bytes: len 172, padded 176; a count of 2 passes the 72-byte
  // estimate (176 / 72 = 2) but the second item is missing.
  std::string enc = EncodeActionList(List("lustre", {Item(0, std::string(100, 'd'))}));
  ASSERT_EQ(enc.size(), 216u);
  uint32_t two = 2;
  std::memcpy(enc.data() + 4, &two, 4);
  Expect(DecodeActionList(enc), "item 1 at offset 216");
}

TEST(HalDecodeTest, RejectsItemLengthBelowFixedPart) {
  for (uint32_t len : {0u, 1u, 8u, 71u}) {
    std::string enc = EncodeActionList(FourItems());
    std::memcpy(enc.data() + 120, &len, 4);  // item 1
    Expect(DecodeActionList(enc), "below the minimum 72");
  }
}

TEST(HalDecodeTest, RejectsItemLengthPastTheEnd) {
  for (uint32_t len : {73u, 1000u, 0xFFFFFFFFu}) {
    std::string enc = EncodeActionList(List("lustre", {Item(0, "")}));
    std::memcpy(enc.data() + 40, &len, 4);
    Expect(DecodeActionList(enc), "past the end");
  }
}

TEST(HalDecodeTest, EveryTruncationInsideAnItemIsRejected) {
  ActionList hal = FourItems();
  std::string enc = EncodeActionList(hal);
  const size_t last_item_end = 280 + 81;
  for (size_t n = 0; n < last_item_end; ++n) {
    EXPECT_FALSE(DecodeActionList(enc.substr(0, n)).ok()) << "prefix " << n;
  }
  for (size_t n = last_item_end; n <= enc.size(); ++n) {
    Result<ActionList> r = DecodeActionList(enc.substr(0, n));
    ASSERT_TRUE(r.ok()) << "prefix " << n << ": " << r.status().ToString();
    EXPECT_EQ(*r, hal);
  }
}

TEST(HalDecodeTest, SurvivesRandomCorruption) {
  std::string enc = EncodeActionList(FourItems());
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    std::string bad = enc;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) bad[rng() % bad.size()] = static_cast<char>(rng());
    bad.resize(rng() % (bad.size() + 1));
    Result<ActionList> r = DecodeActionList(bad);
    if (!r.ok()) continue;
    size_t data = 0;
    for (const ActionItem& it : r->items) data += it.data.size();
    EXPECT_LE(data + 72 * r->items.size(), bad.size());
  }
}

TEST(HalValidateTest, AcceptsWhatTheDecoderAccepts) {
  EXPECT_TRUE(ValidateActionList(FourItems()).ok());
}

TEST(HalValidateTest, RejectsUnrepresentableLists) {
  ActionList v2 = FourItems();
  v2.version = 2;
  EXPECT_EQ(ValidateActionList(v2).code(), Code::kInvalidArgument);
  ActionList nul = FourItems();
  nul.fsname = std::string("ab\0cd", 5);
  Status st = ValidateActionList(nul);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("NUL"), std::string::npos);
  ActionList big = List("lustre", {Item(0, std::string(kHalMaxSize, 'b'))});
  st = ValidateActionList(big);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("split"), std::string::npos) << st.message();
  // The largest list that fits: 40 + 72 + data == 1 MiB.
  ActionList fits = List("lustre", {Item(0, std::string(kHalMaxSize - 112, 'b'))});
  EXPECT_TRUE(ValidateActionList(fits).ok());
  ExpectRoundTrip(fits, EncodeActionList(fits));
}

// kuc_hdr: magic u16 @0, transport u8 @2, flags u8 @3, msgtype u16 @4, msglen u16 @6.
TEST(KucHeaderTest, LayoutByHand) {
  ByteLayout l(8);
  l.U16(0, 0x191C);
  l.U8(2, 2);
  l.U8(3, 0x5);
  l.U16(4, 100);
  l.U16(6, 0x1234);
  KucHeader h;
  h.flags = 0x5;
  h.msglen = 0x1234;
  EXPECT_EQ(EncodeKucHeader(h), l.bytes());
  std::string buf = l.bytes() + std::string(0x1234 - 8, '\0');
  Result<KucHeader> back = DecodeKucHeader(buf);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, h);
}

TEST(KucHeaderTest, WrapsAnActionList) {
  ActionList hal = FourItems();
  Result<std::string> msg = EncodeKucMessage(kKucMsgHal, EncodeActionList(hal));
  ASSERT_TRUE(msg.ok()) << msg.status().ToString();
  ASSERT_EQ(msg->size(), 8u + 368u);
  Result<KucHeader> h = DecodeKucHeader(*msg);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->magic, 0x191C);
  EXPECT_EQ(h->transport, 2);
  EXPECT_EQ(h->msgtype, 100);
  EXPECT_EQ(h->msglen, 376);
  Result<ActionList> back =
      DecodeActionList(std::string_view(*msg).substr(kKucHeaderSize, h->msglen - kKucHeaderSize));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, hal);
}

TEST(KucHeaderTest, ShutdownIsHeaderOnly) {
  Result<std::string> msg = EncodeKucMessage(kKucMsgShutdown, "");
  ASSERT_TRUE(msg.ok());
  ByteLayout l(8);
  l.U16(0, 0x191C);
  l.U8(2, 2);
  l.U16(4, 1);
  l.U16(6, 8);
  EXPECT_EQ(*msg, l.bytes());
}

TEST(KucHeaderTest, MsglenIsSixteenBits) {
  EXPECT_TRUE(EncodeKucMessage(kKucMsgHal, std::string(0xFFFF - 8, 'p')).ok());
  Result<std::string> big = EncodeKucMessage(kKucMsgHal, std::string(0xFFFF - 7, 'p'));
  EXPECT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kInvalidArgument);
}

TEST(KucHeaderTest, RejectsMalformedHeaders) {
  std::string good = EncodeKucHeader(KucHeader{});
  for (size_t n = 0; n < 8; ++n) {
    Result<KucHeader> r = DecodeKucHeader(good.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_NE(r.status().message().find("shorter"), std::string::npos);
  }
  std::string swapped = good;
  std::swap(swapped[0], swapped[1]);
  EXPECT_NE(DecodeKucHeader(swapped).status().message().find("byte-swapped"), std::string::npos);
  std::string wrong = good;
  wrong[0] = 0x34;
  wrong[1] = 0x12;
  EXPECT_NE(DecodeKucHeader(wrong).status().message().find("magic"), std::string::npos);
  for (uint16_t len : {0, 7, 9, 0xFFFF}) {
    std::string bad = good;
    std::memcpy(bad.data() + 6, &len, 2);
    Result<KucHeader> r = DecodeKucHeader(bad);
    EXPECT_FALSE(r.ok()) << len;
    EXPECT_NE(r.status().message().find("msglen"), std::string::npos);
  }
}

}  // namespace
}  // namespace tierflow::hsm
