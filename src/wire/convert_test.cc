#include "wire/convert.h"

#include <gtest/gtest.h>

namespace tierflow::wire {
namespace {

TEST(WireConvertTest, FileIdRoundTripsThroughFileRef) {
  hsm::FileId id{"00000000deadbeef", hsm::Fid{0x200000401, 0x1, 0x2}};
  v1::FileRef ref;
  FileRefToProto(id, "/data/a b", &ref);
  EXPECT_EQ(ref.path(), "/data/a b");
  EXPECT_EQ(FileIdFromProto(ref), id);
  v1::FileRef bare;
  FileRefToProto(id, "", &bare);
  EXPECT_TRUE(bare.path().empty());
}

// A Linux path is bytes; a protobuf string must be UTF-8 or the message does not parse.
TEST(WireConvertTest, APathThatIsNotUtf8TravelsAsBytesAndComesBackWhole) {
  const hsm::FileId id{"fs1", hsm::Fid{0x200000401, 7, 0}};
  for (const std::string path : {std::string("/data/caf\xc3\xa9"), std::string("/data/caf\xe9"),
                                 std::string("/data/\xff\xfe"), std::string("/data/a\xed\xa0\x80")}) {
    v1::FileRef ref;
    FileRefToProto(id, path, &ref);
    EXPECT_EQ(ref.path().empty(), !IsUtf8(path)) << path;
    std::string wire;
    ASSERT_TRUE(ref.SerializeToString(&wire));
    v1::FileRef back;
    ASSERT_TRUE(back.ParseFromString(wire)) << "the message parses: " << path;
    EXPECT_EQ(PathFromProto(back), path);
  }
}

TEST(WireConvertTest, Utf8IsCheckedStrictly) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("plain ascii"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsUtf8("caf\xe9"));                                 // Latin-1
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));                                // overlong '/'
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));                            // a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));                        // above U+10FFFF
  EXPECT_FALSE(IsUtf8("\xe2\x82"));                                // cut short
}

TEST(WireConvertTest, DisplayTextEscapesOnlyTheBytesThatAreNotUtf8) {
  EXPECT_EQ(DisplayText("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(DisplayText("open /data/caf\xe9: no such file"), "open /data/caf\\xe9: no such file");
  EXPECT_EQ(DisplayText("\xff\xc3\xa9\xe2\x82"), "\\xff\xc3\xa9\\xe2\\x82");
  EXPECT_TRUE(IsUtf8(DisplayText("\x80\x81\xfe")));
}

TEST(WireConvertTest, ActionsMapBothWaysAndUnknownIsRejected) {
  for (hsm::Action a : {hsm::Action::kArchive, hsm::Action::kRestore, hsm::Action::kRemove,
                        hsm::Action::kCancel}) {
    EXPECT_EQ(ActionFromProto(ActionToProto(a)), a);
  }
  EXPECT_EQ(ActionFromProto(v1::ACTION_UNSPECIFIED), std::nullopt);
  EXPECT_EQ(ActionFromProto(static_cast<v1::Action>(99)), std::nullopt);
}

}  // namespace
}  // namespace tierflow::wire
