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

// Found by fuzz/cli_fuzz: CLI::Range lets NaN through and NonNegativeNumber lets 1e300
// through, and either made the conversion to integer microseconds undefined.
TEST(CliArgs, SecondsAndRatesMustBeFiniteAndInRange) {
  EXPECT_EQ(RunArgs({"coordinator", "--retry-delay", "nan"}), kExitUsage);
  EXPECT_EQ(RunArgs({"coordinator", "--active-request-timeout", "1e300"}), kExitUsage);
  EXPECT_EQ(RunArgs({"coordinator", "--active-request-timeout", "inf"}), kExitUsage);
  EXPECT_EQ(RunArgs({"mover", "--posix-root", "/tmp", "--bandwidth", "nan"}), kExitUsage);
  EXPECT_EQ(RunArgs({"mover", "--posix-root", "/tmp", "--bandwidth", "-1"}), kExitUsage);
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
