// For the command's tests: runs `tierflow ARGS...` in this process (cli_app.h's Run) and
// captures what it printed.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli_app.h"

namespace tierflow::cli {

struct Ran {
  int code;
  std::string out;
  std::string err;
};

inline Ran RunArgs(std::vector<std::string> args) {
  std::vector<const char*> argv = {"tierflow"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int code = Run(static_cast<int>(argv.size()), argv.data());
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  return {code, out, err};
}

}  // namespace tierflow::cli
