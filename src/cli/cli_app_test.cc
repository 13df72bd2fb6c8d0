// The command line's exit codes: usage errors are 2, an unreachable coordinator is 3.
#include "cli/cli_app.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

namespace tierflow::cli {
namespace {

int RunArgs(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"tierflow"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(static_cast<int>(argv.size()), argv.data());
}

// A loopback port nothing listens on (connections are refused at once).
constexpr const char* kNobody = "127.0.0.1:1";

TEST(CliArgs, UsageErrorsExitWithTwo) {
  EXPECT_EQ(RunArgs({}), kExitUsage);
  EXPECT_EQ(RunArgs({"no-such-verb"}), kExitUsage);
  EXPECT_EQ(RunArgs({"archive"}), kExitUsage);                               // no PATH
  EXPECT_EQ(RunArgs({"archive", "--archive-id", "0", "/tmp"}), kExitUsage);  // ids start at 1
  EXPECT_EQ(RunArgs({"archive", "--archive-id", "x", "/tmp"}), kExitUsage);
  EXPECT_EQ(RunArgs({"mover", "--max-archive", "-2", "--posix-root", "/tmp"}), kExitUsage);
  EXPECT_EQ(RunArgs({"mover", "--max-restore", "many", "--posix-root", "/tmp"}), kExitUsage);
  EXPECT_EQ(RunArgs({"mover"}), kExitUsage);  // --posix-root is required
  EXPECT_EQ(RunArgs({"up", "--fs", "/no/such/dir", "--archive", "/tmp"}), kExitUsage);
  EXPECT_EQ(RunArgs({"coordinator", "--log-level", "loud"}), kExitUsage);
  EXPECT_EQ(RunArgs({"status", "--bogus"}), kExitUsage);
}

TEST(CliArgs, HelpExitsWithZero) {
  EXPECT_EQ(RunArgs({"--help"}), kExitOk);
  EXPECT_EQ(RunArgs({"archive", "--help"}), kExitOk);
}

TEST(CliArgs, UnreachableCoordinatorExitsWithThree) {
  EXPECT_EQ(RunArgs({"status", "--coordinator", kNobody}), kExitUnreachable);
  EXPECT_EQ(RunArgs({"lock", "--coordinator", kNobody}), kExitUnreachable);
  EXPECT_EQ(RunArgs({"unlock", "--coordinator", kNobody}), kExitUnreachable);
}

TEST(CliArgs, ExitCodeForStatus) {
  EXPECT_EQ(ExitCodeFor(Status::Ok()), kExitOk);
  EXPECT_EQ(ExitCodeFor(Status(Code::kUnavailable, "x")), kExitUnreachable);
  EXPECT_EQ(ExitCodeFor(Status(Code::kIo, "x")), kExitFailed);
}

TEST(CliArgs, LocalVerbsAcceptCoordinatorLikeTheOthers) {
  EXPECT_EQ(RunArgs({"state", "/no/such/file", "--coordinator", kNobody}), kExitFailed);
  EXPECT_EQ(RunArgs({"release", "/no/such/file", "--coordinator", kNobody}), kExitFailed);
}

TEST(CliArgs, MissingFileIsAFailureNotAUsageError) {
  EXPECT_EQ(RunArgs({"state", "/no/such/file"}), kExitFailed);
  EXPECT_EQ(RunArgs({"archive", "--coordinator", kNobody, "/no/such/file"}), kExitFailed);
}

}  // namespace
}  // namespace tierflow::cli
