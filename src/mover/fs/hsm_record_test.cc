// Tests for the HSM record encoding: round trips, and that every kind of damage is refused.
#include "mover/fs/hsm_record.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include "hsm/hsm_state.h"

namespace tierflow::mover {
namespace {

HsmRecord FullRecord() {
  HsmRecord r;
  r.fid = {0x200000401, 0x1, 0x2};
  r.archive_id = 7;
  r.states = hsm::kStateExists | hsm::kStateArchived | hsm::kStateReleased | hsm::kStateNoRelease;
  r.stamp = {123456789, 1'700'000'000'123'456'789, 1'700'000'001'000'000'001, 0xdeadbeef};
  r.seal = {1'700'000'002'000'000'000, 1'700'000'002'005'000'000};
  r.object_ref = "0001/0000/0401/0000/0002/0000/0x200000401:0x1:0x2";
  r.checksum = 0x0123456789abcdefULL;
  r.resident = {{0, 4096}, {1 << 20, 8192}, {~0ULL - 1, 1}};
  r.last_error_code = 5;
  r.last_error = std::string("restore failed: \xff\x00 binary", 25);
  return r;
}

// Re-frames `body` (everything before the trailing checksum) with a valid checksum, to build
// records that pass the checksum but are malformed inside.
std::string Reframe(std::string body) {
  uint64_t h = XXH3_64bits(body.data(), body.size());
  for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>((h >> (8 * i)) & 0xff));
  return body;
}

TEST(HsmRecordTest, DefaultRecordRoundTrips) {
  HsmRecord r;
  std::string bytes = EncodeRecord(r);
  EXPECT_EQ(bytes.substr(0, 5), std::string("TFHR\x01", 5));
  EXPECT_EQ(bytes.size(), 105u);
  auto back = DecodeRecord(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
}

TEST(HsmRecordTest, FullRecordRoundTrips) {
  HsmRecord r = FullRecord();
  auto back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  EXPECT_EQ(back->last_error.size(), 25u);
}

TEST(HsmRecordTest, FieldsAreLittleEndianAtFixedOffsets) {
  HsmRecord r;
  r.fid.seq = 0x0102030405060708ULL;
  r.archive_id = 0x0a0b0c0d;
  std::string b = EncodeRecord(r);
  EXPECT_EQ(std::string(b.data() + 5, 8), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  EXPECT_EQ(std::string(b.data() + 21, 4), std::string("\x0d\x0c\x0b\x0a", 4));
}

TEST(HsmRecordTest, EveryBitFlipIsDetected) {
  std::string good = EncodeRecord(FullRecord());
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      auto r = DecodeRecord(bad);
      ASSERT_FALSE(r.ok()) << "flip of bit " << bit << " in byte " << i << " was accepted";
      EXPECT_EQ(r.status().code(), Code::kCorrupt) << r.status().ToString();
    }
  }
}

TEST(HsmRecordTest, EveryTruncationIsDetected) {
  std::string good = EncodeRecord(FullRecord());
  for (size_t n = 0; n < good.size(); ++n) {
    auto r = DecodeRecord(std::string_view(good).substr(0, n));
    ASSERT_FALSE(r.ok()) << "truncation to " << n << " bytes was accepted";
    EXPECT_EQ(r.status().code(), Code::kCorrupt);
  }
}

TEST(HsmRecordTest, TrailingBytesWithValidChecksumAreRefused) {
  std::string good = EncodeRecord(FullRecord());
  std::string body = good.substr(0, good.size() - 8) + "junk";
  auto r = DecodeRecord(Reframe(body));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
  EXPECT_NE(r.status().message().find("unexpected bytes"), std::string::npos) << r.status().message();
}

TEST(HsmRecordTest, HugeExtentCountWithValidChecksumIsRefusedWithoutAllocating) {
  HsmRecord rec;
  std::string good = EncodeRecord(rec);
  // Default record: object_ref length at offset 81, extent count at 85.
  std::string body = good.substr(0, good.size() - 8);
  body[85] = body[86] = body[87] = body[88] = '\xff';
  auto r = DecodeRecord(Reframe(body));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
}

TEST(HsmRecordTest, UnknownVersionIsRefusedWithUpgradeHint) {
  std::string good = EncodeRecord(FullRecord());
  std::string body = good.substr(0, good.size() - 8);
  body[4] = 2;
  auto r = DecodeRecord(Reframe(body));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos);
  EXPECT_NE(r.status().message().find("upgrade"), std::string::npos);
}

TEST(HsmRecordTest, BadMagicIsRefused) {
  std::string bad = EncodeRecord(FullRecord());
  bad[0] = 'X';
  auto r = DecodeRecord(Reframe(bad.substr(0, bad.size() - 8)));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("magic"), std::string::npos);
}

TEST(HsmRecordTest, UnchangedSinceSealComparesStampAndCtimeWindow) {
  HsmRecord r = FullRecord();
  VersionStamp now = r.stamp;
  now.ctime_ns = r.seal.lo_ns + 1000;
  EXPECT_TRUE(UnchangedSinceSeal(r, now));
  now.ctime_ns = r.seal.hi_ns;
  EXPECT_TRUE(UnchangedSinceSeal(r, now));
  now.ctime_ns = r.seal.hi_ns + 1;  // someone changed the inode after the seal
  EXPECT_FALSE(UnchangedSinceSeal(r, now));
  now.ctime_ns = r.seal.lo_ns - 1;
  EXPECT_FALSE(UnchangedSinceSeal(r, now));
  now.ctime_ns = r.seal.lo_ns;
  now.mtime_ns += 1;
  EXPECT_FALSE(UnchangedSinceSeal(r, now));
  now = r.stamp;
  now.ctime_ns = r.seal.lo_ns;
  now.size += 1;
  EXPECT_FALSE(UnchangedSinceSeal(r, now));
  now.size -= 1;
  now.generation += 1;
  EXPECT_FALSE(UnchangedSinceSeal(r, now));
  r.seal = {};  // unsealed: never proves anything
  now = r.stamp;
  now.ctime_ns = 0;
  EXPECT_FALSE(UnchangedSinceSeal(r, now));
}

}  // namespace
}  // namespace tierflow::mover
