// Command-line assembly, parsing and exit codes.
#include "cli/cli_app.h"

#include <cstdio>
#include <cstdlib>

namespace tierflow::cli {

namespace {

constexpr char kFooter[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  a request or a file failed (each failure is printed with its file)\n"
    "  2  usage error: unknown command or option, missing or bad value\n"
    "  3  the coordinator cannot be reached\n"
    "\n"
    "Client verbs talk to the coordinator at --coordinator HOST:PORT, by default\n"
    "$TIERFLOW_COORDINATOR or localhost:7420. 'release' and 'state' work on local files only.";

}  // namespace

std::string DefaultCoordinator() {
  const char* env = std::getenv("TIERFLOW_COORDINATOR");
  return (env != nullptr && *env != '\0') ? env : "localhost:7420";
}

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == Code::kUnavailable ? kExitUnreachable : kExitFailed;
}

void PrintError(const std::string& message) {
  std::fprintf(stderr, "tierflow: %s\n", message.c_str());
}

void PrintError(const Status& status) { PrintError(status.ToString()); }

int Run(int argc, const char* const* argv) {
  CLI::App app{"tierflow: hierarchical storage management for Linux filesystems", "tierflow"};
  app.require_subcommand(1);
  app.footer(kFooter);
  std::vector<Command> commands;
  AddProcessCommands(app, &commands);
  AddClientVerbs(app, &commands);
  AddWatchVerb(app, &commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return kExitUsage;
}

}  // namespace tierflow::cli
