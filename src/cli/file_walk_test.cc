// PATH expansion: recursion, name order, links never followed, special files.
#include "cli/file_walk.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace tierflow::cli {
namespace {

namespace fs = std::filesystem;

class FileWalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tf_cli_walk.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Touch(const std::string& rel) {
    std::string p = root_ + "/" + rel;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << "x";
    return p;
  }

  std::string root_;
};

TEST_F(FileWalkTest, WalksDirectoriesInNameOrderSkippingLinksAndSpecialFiles) {
  std::string b = Touch("d/b");
  std::string a = Touch("d/a");
  std::string deep = Touch("d/sub/z");
  std::string out = Touch("outside/o");
  fs::create_symlink(out, root_ + "/d/link-to-file");
  fs::create_symlink(root_ + "/outside", root_ + "/d/link-to-dir");
  ASSERT_EQ(::mkfifo((root_ + "/d/fifo").c_str(), 0600), 0);
  WalkResult r = ExpandPaths({root_ + "/d"});
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.files, (std::vector<std::string>{a, b, deep}));
}

TEST_F(FileWalkTest, ExplicitFilesComeFirstAndOnce) {
  std::string a = Touch("d/a");
  std::string b = Touch("d/b");
  WalkResult r = ExpandPaths({b, root_ + "/d/", b});
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.files, (std::vector<std::string>{b, a}));
}

TEST_F(FileWalkTest, RelativePathsBecomeAbsolute) {
  std::string a = Touch("a");
  std::string cwd = fs::current_path();
  fs::current_path(root_);
  WalkResult r = ExpandPaths({"./a"});
  fs::current_path(cwd);
  EXPECT_EQ(r.files, (std::vector<std::string>{a}));
}

TEST_F(FileWalkTest, ExplicitMissingLinkOrSpecialPathIsAnErrorNamingIt) {
  std::string a = Touch("a");
  fs::create_symlink(a, root_ + "/link");
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  WalkResult r = ExpandPaths({root_ + "/missing", root_ + "/link", root_ + "/fifo", a});
  EXPECT_EQ(r.files, (std::vector<std::string>{a}));
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].code(), Code::kNotFound);
  EXPECT_NE(r.errors[0].message().find(root_ + "/missing"), std::string::npos);
  EXPECT_NE(r.errors[1].message().find("symbolic link"), std::string::npos);
  EXPECT_NE(r.errors[1].message().find(root_ + "/link"), std::string::npos);
  EXPECT_NE(r.errors[2].message().find(root_ + "/fifo: is not a regular file"), std::string::npos)
      << r.errors[2].message();
}

}  // namespace
}  // namespace tierflow::cli
