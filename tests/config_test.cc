// The configuration file on a real process: `tierflow coordinator --config FILE` listens where
// the file says (unless a flag says otherwise), and a bad file stops it before it starts, with
// the file, line and key on stderr.
#include <signal.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/cluster_fixture.h"

namespace tierflow::testing {
namespace {

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

// `tierflow ARGS...` run to completion (a name of its own: gtest's Test::Run hides Run here).
CommandResult Tierflow(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), TierflowBinary());
  return Run(args, std::chrono::seconds(60), env);
}

// Whether `tierflow status` reaches a coordinator at `address`, within the deadline.
bool Answers(Process& coordinator, const std::string& address) {
  return WaitFor(
             [&] {
               return Tierflow({"status", "--coordinator", address}).exit_code == 0 ||
                      !coordinator.running();
             },
             std::chrono::seconds(30)) &&
         coordinator.running();
}

TEST(ConfigFile, CoordinatorListensAndKeepsStateWhereTheFileSays) {
  TempDir dir;
  const int port = FreePort();
  const std::string config = dir / "tierflow.toml";
  WriteText(config,
            "[coordinator]\n"
            "listen = \"" + Address(port) + "\"\n"
            "state = \"" + dir / "state" + "\"\n"
            "\n"
            "[order]\n"
            "policy = \"weighted\"\n");
  Process coordinator({TierflowBinary(), "coordinator", "--config", config},
                      dir / "coordinator.log");
  ASSERT_TRUE(Answers(coordinator, Address(port))) << coordinator.Log();
  std::ifstream journal(dir / "state/journal.db");
  EXPECT_TRUE(journal.good()) << "no journal in the state directory of the file";
  EXPECT_EQ(coordinator.Stop(SIGTERM), 0) << coordinator.Log();
}

TEST(ConfigFile, AFlagOverridesTheFile) {
  TempDir dir;
  const int file_port = FreePort(), flag_port = FreePort();
  const std::string config = dir / "tierflow.toml";
  WriteText(config, "[coordinator]\nlisten = \"" + Address(file_port) + "\"\nstate = \"" +
                        dir / "state" + "\"\n");
  Process coordinator(
      {TierflowBinary(), "coordinator", "--config", config, "--listen", Address(flag_port)},
      dir / "coordinator.log");
  ASSERT_TRUE(Answers(coordinator, Address(flag_port))) << coordinator.Log();
  EXPECT_NE(Tierflow({"status", "--coordinator", Address(file_port)}).exit_code, 0);
  EXPECT_EQ(coordinator.Stop(SIGTERM), 0) << coordinator.Log();
}

TEST(ConfigFile, ABadFileStopsTheProcessNamingKeyAndLine) {
  TempDir dir;
  const std::string config = dir / "tierflow.toml";
  WriteText(config,
            "# tierflow\n"
            "[coordinator]\n"
            "listen = \"" + Address(FreePort()) + "\"\n"
            "max_attempts = \"many\"\n");
  CommandResult r = Tierflow({"coordinator", "--config", config});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find(config + ":4: coordinator.max_attempts: expected an integer from 1 to "
                                "1000, got \"many\""),
            std::string::npos)
      << Describe(r);

  WriteText(config, "[coordinator]\nlisten = \"a:1\"\n\n[order]\narchvie = 1\n");
  r = Tierflow({"coordinator", "--config", config});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find(config + ":5: order.archvie: unknown key"), std::string::npos)
      << Describe(r);

  r = Tierflow({"coordinator", "--config", dir / "missing.toml"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find(dir / "missing.toml"), std::string::npos) << Describe(r);

  r = Tierflow({"mover", "--posix-root", dir.path()}, {"TIERFLOW_MOVER_MAX_ARCHIVE=-2"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("TIERFLOW_MOVER_MAX_ARCHIVE: expected an integer from -1 to"),
            std::string::npos)
      << Describe(r);
}

}  // namespace
}  // namespace tierflow::testing
