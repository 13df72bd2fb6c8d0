// The configuration: precedence of file, environment and flags; every error naming its key and
// line (or variable, or flag); the scheduling sections; and the sample etc/tierflow.toml, which
// must parse, validate and hold the built-in defaults.
#include "cli/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tierflow::cli {
namespace {

using ::testing::HasSubstr;

// A file under a fresh temporary directory, removed with it.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/tf-config-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/tierflow.toml";
    std::ofstream(path_) << text;
  }
  ~TempFile() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

Result<Config> LoadText(const std::string& text, std::map<std::string, std::string> env = {}) {
  TempFile f(text);
  return LoadConfig({f.path(), true, std::move(env), {}});
}

// The error of loading `text`, with the temporary file's path replaced by FILE.
std::string ErrorOf(const std::string& text, std::map<std::string, std::string> env = {}) {
  TempFile f(text);
  auto c = LoadConfig({f.path(), true, std::move(env), {}});
  if (c.ok()) return "(loaded)";
  std::string msg = c.status().message();
  for (size_t at; (at = msg.find(f.path())) != std::string::npos;) {
    msg.replace(at, f.path().size(), "FILE");
  }
  return msg;
}

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  void Set(const std::string& name, const std::string& value) {
    const char* old = ::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Parses `args` for a `coordinator`-like subcommand and loads its configuration.
Result<Config> LoadCoordinatorArgs(std::vector<std::string> args) {
  CLI::App app{"t", "t"};
  CLI::App* sub = app.add_subcommand("coordinator");
  ConfigFlags flags(sub, {"coordinator"});
  std::vector<const char*> argv = {"t", "coordinator"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return flags.Load();
}

TEST(Config, DefaultsWithoutAFile) {
  auto c = LoadConfig({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->coordinator.server.listen, "127.0.0.1:7420");
  EXPECT_EQ(c->coordinator.server.state_dir, "/var/lib/tierflow");
  EXPECT_EQ(c->coordinator.server.max_attempts, 3u);
  EXPECT_EQ(c->mover.options.coordinator, "localhost:7420");
  EXPECT_EQ(c->mover.options.archive_ids, std::vector<uint32_t>{1});
  EXPECT_EQ(c->coordinator.server.scheduling.order.policy, "weighted");
}

TEST(Config, AMissingDefaultFileIsFineAMissingGivenFileIsNot) {
  EXPECT_TRUE(LoadConfig({"/no/such/dir/tierflow.toml", false, {}, {}}).ok());
  auto c = LoadConfig({"/no/such/dir/tierflow.toml", true, {}, {}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("/no/such/dir/tierflow.toml"));
  EXPECT_THAT(c.status().message(), HasSubstr("No such file or directory"));
}

TEST(Config, FileThenEnvironmentThenFlags) {
  TempFile f(
      "[coordinator]\n"
      "max_attempts = 5\n"
      "retry_delay = 2\n"
      "heartbeat_interval = 7\n");
  ScopedEnv env;
  env.Set("TIERFLOW_COORDINATOR_MAX_ATTEMPTS", "6");
  env.Set("TIERFLOW_COORDINATOR_RETRY_DELAY", "3.5");
  auto c = LoadCoordinatorArgs({"--config", f.path(), "--max-attempts", "7"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const coordinator::ServerOptions& s = c->coordinator.server;
  EXPECT_EQ(s.max_attempts, 7u);                    // flag over environment over file
  EXPECT_EQ(s.retry_delay_us, 3'500'000);           // environment over file
  EXPECT_EQ(s.heartbeat_interval_us, 7'000'000);    // file over default
  EXPECT_EQ(s.mover_grace_us, 60'000'000);          // default

  // Without the flag the environment decides; without both, the file.
  c = LoadCoordinatorArgs({"--config", f.path()});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->coordinator.server.max_attempts, 6u);
}

TEST(Config, TierflowCoordinatorStillSetsTheMoversCoordinator) {
  auto c = LoadConfig({"", false, {{"TIERFLOW_COORDINATOR", "a:1"}}, {}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->mover.options.coordinator, "a:1");
  c = LoadConfig(
      {"", false, {{"TIERFLOW_COORDINATOR", "a:1"}, {"TIERFLOW_MOVER_COORDINATOR", "b:2"}}, {}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->mover.options.coordinator, "b:2");
  c = LoadText("[mover]\ncoordinator = \"c:3\"\n", {{"TIERFLOW_COORDINATOR", "a:1"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->mover.options.coordinator, "a:1");
}

TEST(Config, MoverSectionFillsMoverOptions) {
  auto c = LoadText(
      "[mover]\n"
      "id = \"m7\"\n"
      "archive_ids = [2, 3]\n"
      "posix_root = \"/archive\"\n"
      "max_archive = -1\n"
      "bandwidth = 2.5\n"
      "watch = [\"/data\"]\n"
      "start_holder = false\n",
      {{"TIERFLOW_MOVER_MAX_RESTORE", "9"}, {"TIERFLOW_MOVER_ARCHIVE_IDS", "4, 5"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const mover::MoverOptions& o = c->mover.options;
  EXPECT_EQ(o.id, "m7");
  EXPECT_EQ(o.archive_ids, (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(o.posix_root, "/archive");
  EXPECT_EQ(o.max_archive, -1);
  EXPECT_EQ(o.max_restore, 9);
  EXPECT_EQ(o.max_bytes_per_sec, 2'500'000u);
  EXPECT_EQ(c->mover.watch, std::vector<std::string>{"/data"});
  EXPECT_FALSE(c->mover.start_holder);
}

TEST(Config, SchedulingSectionsFillSchedulingOptions) {
  auto c = LoadText(
      "[order]\n"
      "policy = \"weighted\"\n"
      "weights = { blocking_restore = 1000, restore = 50, remove = 10, archive = 2 }\n"
      "max_wait = 30\n"
      "[fair_share]\n"
      "by = \"owner\"\n"
      "default_weight = 1\n"
      "weights = { alice = 3, \"1001\" = 2 }\n"
      "[[placement]]\n"                 // line 9
      "tag = \"project=climate\"\n"
      "movers = [\"m1\", \"m2\"]\n"
      "fallback_after = 600\n"
      "[[placement]]\n"                 // line 13
      "hash_tag = \"dataset\"\n"
      "movers = [\"m1\", \"m2\", \"m3\"]\n"
      "[batching]\n"
      "tag = \"batch\"\n"
      "slots_per_mover = 2\n"
      "idle = 5\n"
      "max = 60\n"
      "[reporting]\n"
      "dir = \"/var/lib/tierflow/reports\"\n"
      "hint = \"job\"\n"
      "quiet = 90\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const coordinator::SchedulingOptions& s = c->coordinator.server.scheduling;
  EXPECT_EQ(s.order.weights[static_cast<int>(coordinator::WorkClass::kRestore)], 50);
  EXPECT_EQ(s.order.weights[static_cast<int>(coordinator::WorkClass::kArchive)], 2);
  EXPECT_EQ(s.order.max_wait_us, 30'000'000);
  EXPECT_EQ(s.fair_share.by, coordinator::ShareBy::kOwner);
  EXPECT_EQ(s.fair_share.weights.at("alice"), 3);
  EXPECT_EQ(s.fair_share.weights.at("1001"), 2);
  ASSERT_EQ(s.placement.size(), 2u);
  EXPECT_EQ(s.placement[0].tag, "project=climate");
  EXPECT_EQ(s.placement[0].movers, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(s.placement[0].fallback_after_us, 600'000'000);
  EXPECT_EQ(s.placement[0].line, 9);
  EXPECT_EQ(s.placement[1].hash_key, "dataset");
  EXPECT_EQ(s.placement[1].fallback_after_us, 0);
  EXPECT_EQ(s.placement[1].line, 13);
  EXPECT_EQ(s.batching.tag, "batch");
  EXPECT_EQ(s.batching.slots_per_mover, 2u);
  EXPECT_EQ(s.batching.idle_us, 5'000'000);
  EXPECT_EQ(s.batching.max_us, 60'000'000);
  EXPECT_EQ(s.reporting.dir, "/var/lib/tierflow/reports");
  EXPECT_EQ(s.reporting.hint, "job");
  EXPECT_EQ(s.reporting.quiet_us, 90'000'000);
}

TEST(Config, AWeightsTableChangesOnlyTheClassesItNames) {
  auto c = LoadText("[order]\nweights = { archive = 5 }\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto& w = c->coordinator.server.scheduling.order.weights;
  EXPECT_EQ(w[static_cast<int>(coordinator::WorkClass::kArchive)], 5);
  EXPECT_EQ(w[static_cast<int>(coordinator::WorkClass::kBlockingRestore)], 1000);
}

TEST(Config, FileErrorsNameTheKeyAndLine) {
  EXPECT_EQ(ErrorOf("# x\n[order]\npolicy = \"fifo\"\narchvie = 1\n"),
            "FILE:4: order.archvie: unknown key (known keys in [order]: policy, weights, "
            "max_wait)");
  EXPECT_THAT(ErrorOf("[coordinator]\nlisten = \"a:1\"\n\n[ordre]\npolicy = \"fifo\"\n"),
              HasSubstr("FILE:4: ordre: unknown section (known sections: [coordinator], "
                        "[mover], [order], [fair_share], [[placement]], [batching], "
                        "[reporting])"));
  EXPECT_THAT(ErrorOf("listen = \"a:1\"\n"),
              HasSubstr("FILE:1: listen: a key outside any section"));
  EXPECT_EQ(ErrorOf("\n\n\n\n\n[coordinator]\nmax_attempts = \"x\"\n"),
            "FILE:7: coordinator.max_attempts: expected an integer from 1 to 1000, got \"x\"");
  EXPECT_EQ(ErrorOf("[coordinator]\nmax_attempts = 0\n"),
            "FILE:2: coordinator.max_attempts: expected an integer from 1 to 1000, got 0");
  EXPECT_EQ(ErrorOf("[coordinator]\nmax_attempts = 2.5\n"),
            "FILE:2: coordinator.max_attempts: expected an integer from 1 to 1000, got 2.5");
  EXPECT_EQ(ErrorOf("[coordinator]\nretry_delay = 3601\n"),
            "FILE:2: coordinator.retry_delay: expected a number of seconds from 0 to 3600, got "
            "3601");
  EXPECT_EQ(ErrorOf("[coordinator]\nno_retry = \"yes\"\n"),
            "FILE:2: coordinator.no_retry: expected true or false, got \"yes\"");
  EXPECT_EQ(ErrorOf("[fair_share]\nby = \"user\"\n"),
            "FILE:2: fair_share.by: expected one of none, requester, owner, group, project, got "
            "\"user\"");
  EXPECT_EQ(ErrorOf("[order]\npolicy = \"lifo\"\n"),
            "FILE:2: order.policy: expected one of weighted, fifo, got \"lifo\"");
  EXPECT_EQ(ErrorOf("[mover]\narchive_ids = [1, 0]\n"),
            "FILE:2: mover.archive_ids: expected a list of integers from 1 to 4294967295 (at "
            "least one), got [1, 0]");
  EXPECT_EQ(ErrorOf("[mover]\nmovers = 1\n"),
            "FILE:2: mover.movers: unknown key (known keys in [mover]: coordinator, id, "
            "archive_ids, posix_root, posix_v2, max_archive, max_restore, max_remove, "
            "max_bytes, action_log, bandwidth, watch, remove_archive_on_last_unlink, "
            "start_holder, log_level)");
  EXPECT_EQ(ErrorOf("[order]\npolicy = \"fifo\"\nweights = { restore = 2, archvie = 1 }\n"),
            "FILE:3: order.weights.archvie: unknown key (known keys in order.weights: "
            "blocking_restore, restore, remove, archive)");
  EXPECT_EQ(ErrorOf("[fair_share]\nweights = { alice = 0 }\n"),
            "FILE:2: fair_share.weights.alice: expected a positive number, got 0");
  EXPECT_EQ(ErrorOf("coordinator = 5\n"),
            "FILE:1: coordinator: expected the section [coordinator], got 5");
  EXPECT_EQ(ErrorOf("[placement]\ntag = \"a=b\"\n"),
            "FILE:1: placement: expected [[placement]] tables, one per rule, got [placement]");
  EXPECT_EQ(ErrorOf("[[placement]]\ntag = \"a=b\"\nmovers = [\"m1\"]\nfalback_after = 5\n"),
            "FILE:4: placement.falback_after: unknown key (known keys in [[placement]]: tag, "
            "hash_tag, movers, fallback_after)");
}

TEST(Config, TheFirstErrorInTheFileIsReported) {
  // toml++ keeps keys sorted; the report follows the file.
  EXPECT_THAT(ErrorOf("[coordinator]\nzzz = 1\naaa = 2\n"), HasSubstr("FILE:2: coordinator.zzz"));
  EXPECT_THAT(ErrorOf("[reporting]\nquiet = -1\n[coordinator]\nlisten = 1\n"),
              HasSubstr("FILE:2: reporting.quiet"));
}

TEST(Config, SyntaxErrorsNameLineAndColumn) {
  std::string e = ErrorOf("[coordinator]\nlisten = \"a:1\"\nmax_attempts = = 3\n");
  EXPECT_THAT(e, HasSubstr("FILE:3:16: ")) << e;
  e = ErrorOf("[coordinator]\nlisten = \"a:1\"\nlisten = \"b:2\"\n");
  EXPECT_THAT(e, HasSubstr("FILE:3:")) << e;
}

TEST(Config, PolicyErrorsNameTheFileAndTheRuleLine) {
  std::string e = ErrorOf(
      "[order]\npolicy = \"fifo\"\n\n"
      "[[placement]]\ntag = \"project=a\"\n");  // no movers
  EXPECT_THAT(e, HasSubstr("FILE: ")) << e;
  EXPECT_THAT(e, HasSubstr("names no movers")) << e;
  EXPECT_THAT(e, HasSubstr("line 4")) << e;
  e = ErrorOf("[batching]\ntag = \"batch\"\n");  // neither idle nor max
  EXPECT_THAT(e, HasSubstr("FILE: batching needs idle or max")) << e;
}

TEST(Config, EnvironmentErrorsNameTheVariable) {
  auto c = LoadConfig({"", false, {{"TIERFLOW_COORDINATOR_MAX_ATTEMPTS", "x"}}, {}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "TIERFLOW_COORDINATOR_MAX_ATTEMPTS: expected an integer from 1 to 1000, got \"x\"");
  c = LoadConfig({"", false, {{"TIERFLOW_COORDINATOR_RETRY_DELAY", "nan"}}, {}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("TIERFLOW_COORDINATOR_RETRY_DELAY: expected"));
  c = LoadConfig({"", false, {{"TIERFLOW_MOVER_ARCHIVE_IDS", "1,x"}}, {}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("TIERFLOW_MOVER_ARCHIVE_IDS: expected a list"));
  c = LoadConfig({"", false, {{"TIERFLOW_COORDINATOR_MAX_ATTEMPT", "3"}}, {}});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr("TIERFLOW_COORDINATOR_MAX_ATTEMPT: unknown variable (known for "
                        "[coordinator]: TIERFLOW_COORDINATOR_LISTEN"));
  c = LoadConfig({"", false, {{"TIERFLOW_ORDER_WEIGHTS", "1"}}, {}});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "TIERFLOW_ORDER_WEIGHTS: order.weights is set in the configuration file only");
  // Variables of no section are not tierflow settings (TIERFLOW_RUN_DIR, TIERFLOW_CONFIG...).
  EXPECT_TRUE(LoadConfig({"", false, {{"TIERFLOW_RUN_DIR", "/x"}}, {}}).ok());
}

TEST(Config, EnvironmentSetsSchedulingScalars) {
  auto c = LoadConfig({"",
                       false,
                       {{"TIERFLOW_ORDER_POLICY", "fifo"},
                        {"TIERFLOW_FAIR_SHARE_BY", "requester"},
                        {"TIERFLOW_ORDER_MAX_WAIT", "10"}},
                       {}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->coordinator.server.scheduling.order.policy, "fifo");
  EXPECT_EQ(c->coordinator.server.scheduling.fair_share.by, coordinator::ShareBy::kRequester);
  EXPECT_EQ(c->coordinator.server.scheduling.order.max_wait_us, 10'000'000);
}

TEST(Config, FlagErrorsNameTheFlagWhenParsed) {
  try {
    (void)LoadCoordinatorArgs({"--max-attempts", "x"});
    FAIL() << "--max-attempts x was accepted";
  } catch (const CLI::ValidationError& e) {
    EXPECT_THAT(std::string(e.what()),
                HasSubstr("--max-attempts: expected an integer from 1 to 1000, got \"x\""));
  }
  EXPECT_THROW((void)LoadCoordinatorArgs({"--retry-delay", "nan"}), CLI::ValidationError);
  EXPECT_THROW((void)LoadCoordinatorArgs({"--log-level", "loud"}), CLI::ValidationError);
}

TEST(Config, BoolFlagsSetTheirValue) {
  CLI::App app{"t", "t"};
  CLI::App* sub = app.add_subcommand("mover");
  ConfigFlags flags(sub, {"mover"});
  const char* argv[] = {"t", "mover", "--no-start-holder", "--posix-v2", "--archive-id", "2",
                        "--archive-id", "3"};
  app.parse(static_cast<int>(std::size(argv)), argv);
  auto c = flags.Load();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->mover.start_holder);
  EXPECT_TRUE(c->mover.options.posix_v2);
  EXPECT_EQ(c->mover.options.archive_ids, (std::vector<uint32_t>{2, 3}));
}

// ---- The sample etc/tierflow.toml ----

std::string SamplePath() { return std::string(TIERFLOW_SOURCE_DIR) + "/etc/tierflow.toml"; }

std::string SampleText() {
  std::ifstream in(SamplePath());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SampleConfig, ParsesValidatesAndHoldsTheBuiltInDefaults) {
  auto c = LoadConfig({SamplePath(), true, {}, {}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // It says: "Each key set below has its built-in default".
  EXPECT_EQ(SettingValues(*c), SettingValues(DefaultConfig()));
  EXPECT_TRUE(c->coordinator.server.scheduling.placement.empty());
}

// Each setting is documented: set, or shown as a commented example, in its own section.
TEST(SampleConfig, NamesEverySettingInItsSection) {
  const std::string text = SampleText();
  ASSERT_FALSE(text.empty()) << SamplePath();
  std::vector<std::string> paths;
  for (const auto& [path, value] : SettingValues(DefaultConfig())) paths.push_back(path);
  for (const char* key : {"tag", "hash_tag", "movers", "fallback_after"}) {
    paths.push_back(std::string("placement.") + key);
  }
  for (const std::string& path : paths) {
    const std::string section = path.substr(0, path.find('.'));
    const std::string key = path.substr(path.find('.') + 1);
    size_t begin = text.find("\n[" + section + "]");
    if (begin == std::string::npos) begin = text.find("\n# [[" + section + "]]");
    ASSERT_NE(begin, std::string::npos) << "no [" << section << "] in the sample";
    // The section runs to the next section header ([[placement]] examples are commented out).
    const size_t end = text.find("\n[", begin + 1);
    const std::string body = text.substr(begin, end - begin);
    EXPECT_TRUE(body.find("\n" + key + " = ") != std::string::npos ||
                body.find("\n# " + key + " = ") != std::string::npos)
        << path << " is not in the sample's [" << section << "] section";
  }
}

}  // namespace
}  // namespace tierflow::cli
