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
