// The tierflow command line: one CLI11 app, a subcommand per process and client verb.
// Each group of subcommands registers itself (process_commands.cc, client_verbs.cc); Run parses
// and runs the chosen one and maps the outcome to the documented exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace tierflow::cli {

// Exit codes, also printed in `tierflow --help`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // a request or a file failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // the coordinator cannot be reached

// A subcommand and the function that runs it once the command line is parsed.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

void AddProcessCommands(CLI::App& app, std::vector<Command>* commands);
void AddClientVerbs(CLI::App& app, std::vector<Command>* commands);
void AddWatchVerb(CLI::App& app, std::vector<Command>* commands);  // watch_verb.cc

// Parses argv and runs the subcommand; returns the exit code.
int Run(int argc, const char* const* argv);

// kExitUnreachable for kUnavailable, kExitFailed for any other error, kExitOk for ok.
int ExitCodeFor(const Status& status);

// "tierflow: MESSAGE" on stderr.
void PrintError(const Status& status);
void PrintError(const std::string& message);

// The coordinator address a client uses when --coordinator is not given:
// $TIERFLOW_COORDINATOR, else localhost:7420.
std::string DefaultCoordinator();

}  // namespace tierflow::cli
