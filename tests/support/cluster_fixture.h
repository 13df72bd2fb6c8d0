// What every cross-process test fixture shares: a Cluster, paths in its managed tree, and
// commands that must succeed (failing the test with the command's output and every process's
// log otherwise).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/cluster.h"

namespace tierflow::testing {

inline std::string Describe(const CommandResult& r) {
  return "exit=" + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// Mixed into a fixture next to ::testing::Test (or TestWithParam).
class ClusterCommands {
 protected:
  std::string P(const std::string& rel) const { return cluster_.fs() + "/" + rel; }
  CommandResult MustRun(std::vector<std::string> args) {
    CommandResult r = cluster_.Client(args);
    EXPECT_EQ(r.exit_code, 0) << Describe(r) << "\n" << cluster_.Logs();
    return r;
  }

  Cluster cluster_;
};

}  // namespace tierflow::testing
