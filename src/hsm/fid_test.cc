// Fid printing and parsing, FileId identity and hashing.
#include "hsm/fid.h"

#include <gtest/gtest.h>

#include <unordered_set>

namespace tierflow::hsm {
namespace {

TEST(FidTest, PrintsLikeLustre) {
  EXPECT_EQ(Fid({0x200000401, 0x1, 0x0}).ToString(), "[0x200000401:0x1:0x0]");
  EXPECT_EQ(Fid({0x200000401, 0x1, 0x0}).ToBareString(), "0x200000401:0x1:0x0");
  EXPECT_EQ(Fid().ToString(), "[0x0:0x0:0x0]");
  EXPECT_EQ(Fid({UINT64_MAX, UINT32_MAX, UINT32_MAX}).ToString(),
            "[0xffffffffffffffff:0xffffffff:0xffffffff]");
}

TEST(FidTest, ParsesBracketedAndBareForms) {
  Result<Fid> a = Fid::Parse("[0x200000401:0x1:0x0]");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, Fid({0x200000401, 0x1, 0x0}));
  Result<Fid> b = Fid::Parse("0x200000401:0x1:0x0");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*b, *a);
  Result<Fid> c = Fid::Parse("[0XABC:0XdEf:0x2]");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*c, Fid({0xabc, 0xdef, 0x2}));
}

TEST(FidTest, RoundTrips) {
  const Fid fids[] = {{0, 0, 0},
                      {0x200000401, 0x1, 0x0},
                      {1, 2, 3},
                      {UINT64_MAX, UINT32_MAX, UINT32_MAX},
                      {0x8000000000000000ULL, 0x80000000U, 0x1}};
  for (const Fid& f : fids) {
    Result<Fid> bracketed = Fid::Parse(f.ToString());
    ASSERT_TRUE(bracketed.ok()) << f.ToString();
    EXPECT_EQ(*bracketed, f);
    Result<Fid> bare = Fid::Parse(f.ToBareString());
    ASSERT_TRUE(bare.ok()) << f.ToBareString();
    EXPECT_EQ(*bare, f);
  }
}

TEST(FidTest, RejectsMalformedText) {
  const char* bad[] = {
      "",
      "[",
      "]",
      "[]",
      "[0x1:0x2]",
      "[0x1:0x2:0x3:0x4]",
      "[0x1:0x2:0x3",
      "0x1:0x2:0x3]",
      "[[0x1:0x2:0x3]]",
      "[1:0x2:0x3]",           // no 0x
      "[0x:0x2:0x3]",          // no digits
      "[0x1::0x3]",
      "[0xg:0x2:0x3]",
      "[0x-1:0x2:0x3]",
      "[0x+1:0x2:0x3]",
      "[-0x1:0x2:0x3]",
      "[ 0x1:0x2:0x3]",
      "[0x1 :0x2:0x3]",
      "[0x1:0x2:0x3 ]",
      "[0x10000000000000000:0x1:0x1]",  // seq above 64 bits
      "[0x1:0x100000000:0x1]",          // oid above 32 bits
      "[0x1:0x1:0x100000000]",          // ver above 32 bits
  };
  for (const char* text : bad) {
    Result<Fid> f = Fid::Parse(text);
    EXPECT_FALSE(f.ok()) << "accepted '" << text << "'";
    if (!f.ok()) {
      EXPECT_EQ(f.status().code(), Code::kInvalidArgument);
      EXPECT_NE(f.status().message().find("fid"), std::string::npos) << f.status().message();
    }
  }
}

TEST(FidTest, IsZero) {
  EXPECT_TRUE(Fid().IsZero());
  EXPECT_FALSE(Fid({0, 0, 1}).IsZero());
  EXPECT_FALSE(Fid({0, 1, 0}).IsZero());
  EXPECT_FALSE(Fid({1, 0, 0}).IsZero());
}

TEST(FidTest, OrdersBySeqThenOidThenVer) {
  EXPECT_LT(Fid({1, 9, 9}), Fid({2, 0, 0}));
  EXPECT_LT(Fid({1, 1, 9}), Fid({1, 2, 0}));
  EXPECT_LT(Fid({1, 1, 1}), Fid({1, 1, 2}));
}

TEST(FileIdTest, PrintsFsidAndFid) {
  FileId id{"lustre", {0x200000401, 0x1, 0x0}};
  EXPECT_EQ(id.ToString(), "lustre:[0x200000401:0x1:0x0]");
}

TEST(FileIdTest, IdentityNeedsBothParts) {
  FileId a{"fs1", {1, 2, 3}};
  EXPECT_EQ(a, (FileId{"fs1", {1, 2, 3}}));
  EXPECT_NE(a, (FileId{"fs2", {1, 2, 3}}));
  EXPECT_NE(a, (FileId{"fs1", {1, 2, 4}}));
}

TEST(FileIdTest, HashesWorkInSets) {
  EXPECT_EQ(FidHash()({1, 2, 3}), FidHash()({1, 2, 3}));
  EXPECT_EQ(FileIdHash()({"fs", {1, 2, 3}}), FileIdHash()({"fs", {1, 2, 3}}));
  std::unordered_set<FileId, FileIdHash> set;
  for (uint64_t seq = 0; seq < 50; ++seq) {
    for (uint32_t oid = 0; oid < 20; ++oid) {
      set.insert({"fs", {seq, oid, 0}});
      set.insert({"other", {seq, oid, 0}});
    }
  }
  EXPECT_EQ(set.size(), 2000u);
  EXPECT_EQ(set.count({"fs", {7, 3, 0}}), 1u);
  EXPECT_EQ(set.count({"fs", {7, 3, 1}}), 0u);
  std::unordered_set<size_t> hashes;
  for (uint64_t seq = 0; seq < 100; ++seq) hashes.insert(FidHash()({seq, 1, 0}));
  EXPECT_GT(hashes.size(), 95u);  // no systematic collisions
}

}  // namespace
}  // namespace tierflow::hsm
