// tierflow's configuration: tierflow.toml (etc/tierflow.toml documents every key), TIERFLOW_*
// environment variables and the flags of `coordinator`, `mover` and `up`, all read through one
// table of settings (config.cc), so a setting has one name, one check and one destination.
// Later sources win: built-in defaults < file < environment < flags given on the command line.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/server.h"
#include "mover/mover.h"

namespace tierflow::cli {

// The levels of log_level and --log-level (common/log.h).
inline constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};

// Read when no --config is given; its absence is not an error.
inline constexpr char kDefaultConfigPath[] = "/etc/tierflow/tierflow.toml";

// [coordinator] and the scheduling sections ([order], [fair_share], [[placement]], [batching],
// [reporting]), which fill server.scheduling.
struct CoordinatorConfig {
  coordinator::ServerOptions server;
  std::string log_level = "info";
};

// [mover].
struct MoverConfig {
  mover::MoverOptions options;     // max_bytes_per_sec is the `bandwidth` key (MB/s) x 1e6
  std::vector<std::string> watch;  // mount points whose released files come back on access
  bool remove_archive_on_last_unlink = false;
  bool start_holder = true;
  std::string log_level = "info";
};

struct Config {
  CoordinatorConfig coordinator;
  MoverConfig mover;
};

// The built-in defaults: what an empty file gives.
Config DefaultConfig();

// Where settings come from, besides the built-in defaults.
struct ConfigSources {
  std::string file;            // TOML file; empty = none
  bool file_required = false;  // false: a missing file is skipped (the default path)
  // Environment variables by name (TierflowEnvironment() in a process). Only TIERFLOW_* ones
  // are read; an unknown TIERFLOW_<SECTION>_* name is an error, like an unknown key.
  std::map<std::string, std::string> env;
  // Flags given on the command line: "section.key" -> the values given, as typed.
  std::map<std::string, std::vector<std::string>> flags;
};

// Defaults, then the file, the environment and the flags; then the scheduling sections are
// checked as a whole (coordinator::ValidatePolicy). Errors are kInvalidArgument and name where
// the bad value came from: "FILE:LINE: section.key: ...", "TIERFLOW_X: ..." or "--flag: ...".
Result<Config> LoadConfig(const ConfigSources& sources);

// "section.key" -> its value in `config` as text (durations in seconds, bandwidth in MB/s), for
// every setting outside the [[placement]] rules: what a configuration amounts to.
std::map<std::string, std::string> SettingValues(const Config& config);

// The TIERFLOW_* variables of this process's environment.
std::map<std::string, std::string> TierflowEnvironment();

// `--config FILE` and the flags of one subcommand, bound to the settings table.
class ConfigFlags {
 public:
  // Adds --config (env TIERFLOW_CONFIG) and a flag for each setting of `sections` that has
  // one, each checked while the command line is parsed with the same check as the file's.
  ConfigFlags(CLI::App* app, const std::vector<std::string>& sections);
  ~ConfigFlags();
  ConfigFlags(const ConfigFlags&) = delete;  // CLI11 holds pointers into it
  ConfigFlags& operator=(const ConfigFlags&) = delete;

  // After parsing: the settings from every source (see LoadConfig).
  Result<Config> Load() const;

 private:
  struct Bound;
  CLI::Option* config_option_ = nullptr;
  std::string config_path_;
  std::vector<std::unique_ptr<Bound>> bound_;
};

}  // namespace tierflow::cli
