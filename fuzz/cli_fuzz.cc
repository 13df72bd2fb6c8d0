// Fuzzes the `tierflow` command line: the bytes, split at NUL, are the arguments after
// "tierflow". The command is assembled as cli::Run assembles it and parsed, but no verb is
// run. Parsing may only fail with a CLI11 parse error (which Run turns into exit code 2).
// The state-name and FID parsers the verbs apply to their arguments get every argument too.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/cli_app.h"
#include "fuzz_check.h"
#include "hsm/fid.h"
#include "hsm/hsm_state.h"

using namespace tierflow;

namespace {

constexpr size_t kMaxArgs = 32;

std::vector<std::string> SplitArgs(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"tierflow"};
  std::string cur;
  for (size_t i = 0; i < size && args.size() < kMaxArgs; ++i) {
    if (data[i] == '\0') {
      args.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  if (!cur.empty() && args.size() < kMaxArgs) args.push_back(std::move(cur));
  return args;
}

// Every FLOAT option of tierflow is seconds or MB/s that a verb turns into integer
// microseconds or bytes per second (x 1e6): whatever the parser accepts must be a finite,
// non-negative number whose conversion is defined.
void CheckFloats(const CLI::App& sub) {
  for (const CLI::Option* opt : sub.get_options()) {
    if (opt->count() == 0 || opt->get_type_name().rfind("FLOAT", 0) != 0) continue;
    double v = opt->as<double>();
    if (!(std::isfinite(v) && v >= 0 && v * 1e6 < 9.2e18)) {
      std::fprintf(stderr, "%s accepted %g, which the verb cannot convert to an integer\n",
                   opt->get_name().c_str(), v);
      FUZZ_CHECK(false);
    }
  }
}

void ParseOnly(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  CLI::App app{"tierflow", "tierflow"};
  app.require_subcommand(1);
  std::vector<cli::Command> commands;
  cli::AddProcessCommands(app, &commands);
  cli::AddClientVerbs(app, &commands);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return;
  }
  int chosen = 0;
  for (const cli::Command& c : commands) {
    if (!c.app->parsed()) continue;
    ++chosen;
    CheckFloats(*c.app);
  }
  FUZZ_CHECK(chosen == 1);  // require_subcommand(1): exactly one verb to run
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args = SplitArgs(data, size);
  ParseOnly(args);
  for (size_t i = 1; i < args.size(); ++i) {
    if (auto bit = hsm::ParseStateName(args[i])) {
      FUZZ_CHECK(*bit != 0 && (*bit & (*bit - 1)) == 0 && (*bit & ~hsm::kStateAll) == 0);
      auto names = hsm::StateNames(*bit);
      FUZZ_CHECK(names.size() == 1 && hsm::ParseStateName(names[0]) == bit);
    }
    auto fid = hsm::Fid::Parse(args[i].substr(args[i].rfind('/') + 1));
    if (fid.ok()) FUZZ_CHECK(hsm::Fid::Parse(fid->ToString()).ok());
  }
  return 0;
}
