// The REMOVE request built for a deleted file carries what the mover needs to find and prove
// the deletion: the id, the mount point as path, and the unlinked tag.
#include "watch/unlink.h"

#include <gtest/gtest.h>

#include "mover/fs/local_fs.h"
#include "wire/convert.h"

namespace tierflow::watch {
namespace {

TEST(UnlinkedRemoveSpec, IsATaggedRemoveOfTheIdAtTheMountPoint) {
  hsm::FileId id{"0123456789abcdef", {1234, 56, 0}};
  v1::RequestSpec spec = UnlinkedRemoveSpec(id, "/data");
  EXPECT_EQ(spec.action(), v1::REMOVE);
  EXPECT_EQ(wire::FileIdFromProto(spec.file()), id);
  EXPECT_EQ(spec.file().path(), "/data");
  EXPECT_EQ(spec.data(), mover::kUnlinkedTag);
  EXPECT_EQ(spec.archive_id(), 0u);
  EXPECT_EQ(spec.flags(), 0u);
}

}  // namespace
}  // namespace tierflow::watch
