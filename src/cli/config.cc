// The settings table and its three readers: the TOML file (toml++, which keeps each node's
// line), TIERFLOW_* environment variables and command-line flags (CLI11). A value is turned
// into a Value by one check per Kind, whatever its source, and stored by the setting's Access.
#include "cli/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <variant>

extern char** environ;

namespace tierflow::cli {
namespace {

using coordinator::BatchingOptions;
using coordinator::FairShareOptions;
using coordinator::OrderOptions;
using coordinator::PlacementRule;
using coordinator::ReportingOptions;
using coordinator::ServerOptions;
using coordinator::ShareBy;
using coordinator::WorkClass;

enum class Kind {
  kString,
  kBool,
  kInteger,      // in [min, max]
  kSeconds,      // a number of seconds in [min, max], kept as integer microseconds
  kRate,         // a number of MB/s in [min, max], kept as integer bytes per second
  kChoice,       // one of `choices`
  kWeight,       // a finite positive number
  kIntegerList,  // at least one integer, each in [min, max]
  kStringList,
  kWeights,      // a table of name = weight; the names are `choices` when there are any
};

using Weights = std::map<std::string, double>;
using Value = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>,
                           std::vector<std::string>, Weights>;

// How a setting writes (and reads back, for defaults) its field of a Config.
struct Access {
  void (*set)(Config&, const Value&);
  Value (*get)(const Config&);
};

struct Setting {
  std::string_view section;
  std::string_view key;
  Kind kind;
  Access at;
  int64_t min = 0;
  int64_t max = 0;
  std::span<const std::string_view> choices = {};
  std::string_view flag = {};  // "--max-attempts"; empty: no flag
  std::string_view help = {};
  bool flag_sets = true;       // kBool: the value its flag sets (false for --no-start-holder)
  bool env = true;             // read from TIERFLOW_<SECTION>_<KEY>
  std::string_view env_alias = {};  // an older variable, read before (so below) the own one
};

struct Section {
  std::string_view name;
  // [[name]]: an array of tables, each opened (a new element) before its keys are read.
  void (*open)(Config&, int line) = nullptr;
};

constexpr std::string_view kPolicies[] = {"weighted", "fifo"};
constexpr std::string_view kShareByNames[] = {"none", "requester", "owner", "group", "project"};
constexpr ShareBy kShareByValues[] = {ShareBy::kNone, ShareBy::kRequester, ShareBy::kOwner,
                                      ShareBy::kGroup, ShareBy::kProject};
constexpr std::string_view kClassNames[] = {"blocking_restore", "restore", "remove", "archive"};
constexpr WorkClass kClassValues[] = {WorkClass::kBlockingRestore, WorkClass::kRestore,
                                      WorkClass::kRemove, WorkClass::kArchive};

size_t IndexOf(std::span<const std::string_view> names, std::string_view name) {
  return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

// ---- Values and the fields they go to ----

template <typename>
inline constexpr bool kUnsupported = false;

template <typename T>
void Assign(T& field, const Value& v) {
  if constexpr (std::is_same_v<T, bool>) {
    field = std::get<bool>(v);
  } else if constexpr (std::is_integral_v<T>) {
    field = static_cast<T>(std::get<int64_t>(v));  // range-checked on the way in
  } else if constexpr (std::is_same_v<T, double>) {
    field = std::get<double>(v);
  } else if constexpr (std::is_same_v<T, std::string> ||
                       std::is_same_v<T, std::vector<std::string>> ||
                       std::is_same_v<T, Weights>) {
    field = std::get<T>(v);
  } else if constexpr (std::is_same_v<T, std::vector<uint32_t>>) {
    field.clear();
    for (int64_t x : std::get<std::vector<int64_t>>(v)) field.push_back(static_cast<uint32_t>(x));
  } else if constexpr (std::is_same_v<T, ShareBy>) {
    field = kShareByValues[IndexOf(kShareByNames, std::get<std::string>(v))];
  } else if constexpr (std::is_same_v<T, std::array<double, coordinator::kWorkClasses>>) {
    // Classes the table leaves out keep their weight.
    for (const auto& [name, w] : std::get<Weights>(v)) {
      field[static_cast<size_t>(kClassValues[IndexOf(kClassNames, name)])] = w;
    }
  } else {
    static_assert(kUnsupported<T>, "no Value for this field type");
  }
}

template <typename T>
Value ToValue(const T& field) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, double> ||
                std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::string>> ||
                std::is_same_v<T, Weights>) {
    return field;
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<int64_t>(field);
  } else if constexpr (std::is_same_v<T, std::vector<uint32_t>>) {
    return std::vector<int64_t>(field.begin(), field.end());
  } else if constexpr (std::is_same_v<T, ShareBy>) {
    for (size_t i = 0; i < std::size(kShareByValues); ++i) {
      if (kShareByValues[i] == field) return std::string(kShareByNames[i]);
    }
    return std::string();
  } else if constexpr (std::is_same_v<T, std::array<double, coordinator::kWorkClasses>>) {
    Weights w;
    for (size_t i = 0; i < std::size(kClassNames); ++i) {
      w[std::string(kClassNames[i])] = field[static_cast<size_t>(kClassValues[i])];
    }
    return w;
  } else {
    static_assert(kUnsupported<T>, "no Value for this field type");
  }
}

// Member `Member` of the object Base(config).
template <auto Base, auto Member>
Access Field() {
  return {[](Config& c, const Value& v) { Assign(Base(c).*Member, v); },
          [](const Config& c) { return ToValue(Base(const_cast<Config&>(c)).*Member); }};
}

CoordinatorConfig& Coordinator(Config& c) { return c.coordinator; }
ServerOptions& Server(Config& c) { return c.coordinator.server; }
OrderOptions& Order(Config& c) { return c.coordinator.server.scheduling.order; }
FairShareOptions& FairShare(Config& c) { return c.coordinator.server.scheduling.fair_share; }
BatchingOptions& Batching(Config& c) { return c.coordinator.server.scheduling.batching; }
ReportingOptions& Reporting(Config& c) { return c.coordinator.server.scheduling.reporting; }
// The [[placement]] table being read (Section::open appended it).
PlacementRule& Rule(Config& c) { return c.coordinator.server.scheduling.placement.back(); }
MoverConfig& Mover(Config& c) { return c.mover; }
mover::MoverOptions& MoverOpts(Config& c) { return c.mover.options; }

void OpenRule(Config& c, int line) {
  PlacementRule rule;
  rule.line = line;
  c.coordinator.server.scheduling.placement.push_back(std::move(rule));
}

constexpr int64_t kDay = 86400;
constexpr int64_t kYear = 365 * kDay;
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// ---- The settings ----
// etc/tierflow.toml documents each of them; config_test checks that it names them all.

const Setting kSettings[] = {
    // [coordinator]
    {"coordinator", "listen", Kind::kString, Field<Server, &ServerOptions::listen>(), 0, 0, {},
     "--listen", "HOST:PORT to listen on (port 0 picks a free port)"},
    {"coordinator", "state", Kind::kString, Field<Server, &ServerOptions::state_dir>(), 0, 0, {},
     "--state", "state directory (journal); created if missing"},
    {"coordinator", "max_attempts", Kind::kInteger, Field<Server, &ServerOptions::max_attempts>(),
     1, 1000, {}, "--max-attempts",
     "attempts of a request whose failures the mover calls retryable"},
    {"coordinator", "retry_delay", Kind::kSeconds, Field<Server, &ServerOptions::retry_delay_us>(),
     0, 3600, {}, "--retry-delay",
     "seconds before the first retry; doubles per attempt, up to 60 s"},
    {"coordinator", "no_retry", Kind::kBool, Field<Server, &ServerOptions::no_retry>(), 0, 0, {},
     "--no-retry", "every failure is final (Lustre's no-retry-action)"},
    {"coordinator", "active_request_timeout", Kind::kSeconds,
     Field<Server, &ServerOptions::active_request_timeout_us>(), 0, 1'000'000'000, {},
     "--active-request-timeout",
     "seconds an assigned action may go without progress before it is taken back from its "
     "mover and requeued (0 never)"},
    {"coordinator", "mover_grace", Kind::kSeconds, Field<Server, &ServerOptions::mover_grace_us>(),
     0, kDay, {}, "--mover-grace",
     "seconds a disconnected mover keeps its actions before they are requeued"},
    {"coordinator", "final_grace", Kind::kSeconds, Field<Server, &ServerOptions::final_grace_us>(),
     0, kYear, {}, "--final-grace",
     "seconds finished requests stay listed (status, state) before they are purged"},
    {"coordinator", "heartbeat_interval", Kind::kSeconds,
     Field<Server, &ServerOptions::heartbeat_interval_us>(), 0, 3600, {}, "--heartbeat-interval",
     "seconds between heartbeats to each mover (0 none)"},
    {"coordinator", "heartbeat_timeout", Kind::kSeconds,
     Field<Server, &ServerOptions::heartbeat_timeout_us>(), 0, kDay, {}, "--heartbeat-timeout",
     "seconds without an answer before a mover is given nothing new"},
    {"coordinator", "log_level", Kind::kChoice, Field<Coordinator, &CoordinatorConfig::log_level>(),
     0, 0, kLogLevels, "--log-level", "trace, debug, info, warn, error, critical, off"},

    // [mover]
    {"mover", "coordinator", Kind::kString, Field<MoverOpts, &mover::MoverOptions::coordinator>(),
     0, 0, {}, "--coordinator", "coordinator HOST:PORT", true, true, "TIERFLOW_COORDINATOR"},
    {"mover", "id", Kind::kString, Field<MoverOpts, &mover::MoverOptions::id>(), 0, 0, {}, "--id",
     "stable mover name (default: the host name)"},
    {"mover", "archive_ids", Kind::kIntegerList,
     Field<MoverOpts, &mover::MoverOptions::archive_ids>(), 1,
     std::numeric_limits<uint32_t>::max(), {}, "--archive-id",
     "archive id served (repeatable; default 1)"},
    {"mover", "posix_root", Kind::kString, Field<MoverOpts, &mover::MoverOptions::posix_root>(), 0,
     0, {}, "--posix-root", "archive directory of the posix backend (required)"},
    {"mover", "posix_v2", Kind::kBool, Field<MoverOpts, &mover::MoverOptions::posix_v2>(), 0, 0,
     {}, "--posix-v2", "lhsmtool_posix v2 paths (ROOT/HASH/FID)"},
    {"mover", "max_archive", Kind::kInteger, Field<MoverOpts, &mover::MoverOptions::max_archive>(),
     -1, kInt32Max, {}, "--max-archive", "concurrent archives (-1 unlimited)"},
    {"mover", "max_restore", Kind::kInteger, Field<MoverOpts, &mover::MoverOptions::max_restore>(),
     -1, kInt32Max, {}, "--max-restore", "concurrent restores (-1 unlimited)"},
    {"mover", "max_remove", Kind::kInteger, Field<MoverOpts, &mover::MoverOptions::max_remove>(),
     -1, kInt32Max, {}, "--max-remove", "concurrent removes (-1 unlimited)"},
    {"mover", "max_bytes", Kind::kInteger, Field<MoverOpts, &mover::MoverOptions::max_bytes>(), 0,
     std::numeric_limits<int64_t>::max(), {}, "--max-bytes",
     "bytes in flight the coordinator may give (0 unlimited)"},
    {"mover", "action_log", Kind::kString, Field<MoverOpts, &mover::MoverOptions::action_log>(), 0,
     0, {}, "--action-log",
     "append one line per finished action to this file (an audit trail: time, mover, request "
     "id, epoch, action, FID, errno)"},
    {"mover", "bandwidth", Kind::kRate,
     Field<MoverOpts, &mover::MoverOptions::max_bytes_per_sec>(), 0, 1'000'000'000, {},
     "--bandwidth", "MB/s each copy may move (0 unlimited)"},
    {"mover", "watch", Kind::kStringList, Field<Mover, &MoverConfig::watch>(), 0, 0, {},
     "--watch",
     "mount point to watch: released files there are restored when accessed (repeatable)"},
    {"mover", "remove_archive_on_last_unlink", Kind::kBool,
     Field<Mover, &MoverConfig::remove_archive_on_last_unlink>(), 0, 0, {},
     "--remove-archive-on-last-unlink",
     "on watched filesystems, remove a file's archive copy when its last link goes"},
    {"mover", "start_holder", Kind::kBool, Field<Mover, &MoverConfig::start_holder>(), 0, 0, {},
     "--no-start-holder", "do not start a holder when none runs (systemd starts it)", false},
    {"mover", "log_level", Kind::kChoice, Field<Mover, &MoverConfig::log_level>(), 0, 0,
     kLogLevels, "--log-level", "trace, debug, info, warn, error, critical, off"},

    // [order]
    {"order", "policy", Kind::kChoice, Field<Order, &OrderOptions::policy>(), 0, 0, kPolicies},
    {"order", "weights", Kind::kWeights, Field<Order, &OrderOptions::weights>(), 0, 0,
     kClassNames, {}, {}, true, false},
    {"order", "max_wait", Kind::kSeconds, Field<Order, &OrderOptions::max_wait_us>(), 0, kYear},

    // [fair_share]
    {"fair_share", "by", Kind::kChoice, Field<FairShare, &FairShareOptions::by>(), 0, 0,
     kShareByNames},
    {"fair_share", "default_weight", Kind::kWeight,
     Field<FairShare, &FairShareOptions::default_weight>()},
    {"fair_share", "weights", Kind::kWeights, Field<FairShare, &FairShareOptions::weights>(), 0, 0,
     {}, {}, {}, true, false},

    // [[placement]]: no variables, a rule is a table of the file.
    {"placement", "tag", Kind::kString, Field<Rule, &PlacementRule::tag>(), 0, 0, {}, {}, {}, true,
     false},
    {"placement", "hash_tag", Kind::kString, Field<Rule, &PlacementRule::hash_key>(), 0, 0, {}, {},
     {}, true, false},
    {"placement", "movers", Kind::kStringList, Field<Rule, &PlacementRule::movers>(), 0, 0, {}, {},
     {}, true, false},
    {"placement", "fallback_after", Kind::kSeconds,
     Field<Rule, &PlacementRule::fallback_after_us>(), 0, kYear, {}, {}, {}, true, false},

    // [batching]
    {"batching", "tag", Kind::kString, Field<Batching, &BatchingOptions::tag>()},
    {"batching", "slots_per_mover", Kind::kInteger,
     Field<Batching, &BatchingOptions::slots_per_mover>(), 1, 1000},
    {"batching", "idle", Kind::kSeconds, Field<Batching, &BatchingOptions::idle_us>(), 0, kYear},
    {"batching", "max", Kind::kSeconds, Field<Batching, &BatchingOptions::max_us>(), 0, kYear},

    // [reporting]
    {"reporting", "dir", Kind::kString, Field<Reporting, &ReportingOptions::dir>()},
    {"reporting", "hint", Kind::kString, Field<Reporting, &ReportingOptions::hint>()},
    {"reporting", "quiet", Kind::kSeconds, Field<Reporting, &ReportingOptions::quiet_us>(), 0,
     kYear},
};

const Section kSections[] = {{"coordinator"}, {"mover"},    {"order"},    {"fair_share"},
                             {"placement", OpenRule},       {"batching"}, {"reporting"}};

const Section* FindSection(std::string_view name) {
  for (const Section& s : kSections) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Setting* FindSetting(std::string_view section, std::string_view key) {
  for (const Setting& s : kSettings) {
    if (s.section == section && s.key == key) return &s;
  }
  return nullptr;
}

std::string Path(const Setting& s) { return fmt::format("{}.{}", s.section, s.key); }

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string EnvPrefix(const Section& s) { return "TIERFLOW_" + Upper(s.name) + "_"; }
std::string EnvName(const Setting& s) {
  return "TIERFLOW_" + Upper(s.section) + "_" + Upper(s.key);
}

std::string Header(const Section& s) {
  return s.open ? fmt::format("[[{}]]", s.name) : fmt::format("[{}]", s.name);
}

std::string KnownSections() {
  std::vector<std::string> names;
  for (const Section& s : kSections) names.push_back(Header(s));
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string KnownKeys(std::string_view section) {
  std::vector<std::string_view> keys;
  for (const Setting& s : kSettings) {
    if (s.section == section) keys.push_back(s.key);
  }
  return fmt::format("{}", fmt::join(keys, ", "));
}

// ---- Checks, one per kind, shared by every source ----

std::string Expectation(const Setting& s) {
  switch (s.kind) {
    case Kind::kString: return "a string";
    case Kind::kBool: return "true or false";
    case Kind::kInteger: return fmt::format("an integer from {} to {}", s.min, s.max);
    case Kind::kSeconds: return fmt::format("a number of seconds from {} to {}", s.min, s.max);
    case Kind::kRate: return fmt::format("a number of MB/s from {} to {}", s.min, s.max);
    case Kind::kChoice: return fmt::format("one of {}", fmt::join(s.choices, ", "));
    case Kind::kWeight: return "a positive number";
    case Kind::kIntegerList:
      return fmt::format("a list of integers from {} to {} (at least one)", s.min, s.max);
    case Kind::kStringList: return "a list of strings";
    case Kind::kWeights:
      return s.choices.empty()
                 ? "a table of name = positive number"
                 : fmt::format("a table of {} = positive number", fmt::join(s.choices, " | "));
  }
  return "?";
}

std::optional<Value> Integer(const Setting& s, int64_t v) {
  if (v < s.min || v > s.max) return std::nullopt;
  return Value(v);
}

// Seconds or MB/s to integer microseconds or bytes per second. NaN fails every comparison.
std::optional<Value> Scaled(const Setting& s, double v) {
  if (!(v >= static_cast<double>(s.min) && v <= static_cast<double>(s.max))) return std::nullopt;
  return Value(static_cast<int64_t>(std::llround(v * 1e6)));
}

std::optional<Value> Weight(double v) {
  if (!(std::isfinite(v) && v > 0)) return std::nullopt;
  return Value(v);
}

std::optional<Value> Choice(const Setting& s, std::string_view v) {
  if (IndexOf(s.choices, v) == s.choices.size()) return std::nullopt;
  return Value(std::string(v));
}

// ---- Text: environment variables and flags ----

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

template <typename T>
std::optional<T> Number(std::string_view text) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<Value> FromText(const Setting& s, std::string_view text) {
  switch (s.kind) {
    case Kind::kString: return Value(std::string(text));
    case Kind::kBool:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return Value(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return Value(false);
      return std::nullopt;
    case Kind::kInteger:
      if (auto v = Number<int64_t>(text)) return Integer(s, *v);
      return std::nullopt;
    case Kind::kSeconds:
    case Kind::kRate:
      if (auto v = Number<double>(text)) return Scaled(s, *v);
      return std::nullopt;
    case Kind::kChoice: return Choice(s, text);
    case Kind::kWeight:
      if (auto v = Number<double>(text)) return Weight(*v);
      return std::nullopt;
    default: return std::nullopt;
  }
}

// A list's items, or one scalar (the last, as CLI11 keeps the last of a repeated option).
std::optional<Value> FromTexts(const Setting& s, const std::vector<std::string>& items) {
  if (s.kind == Kind::kIntegerList) {
    std::vector<int64_t> out;
    for (const std::string& item : items) {
      auto v = Number<int64_t>(Trim(item));
      if (!v || !Integer(s, *v)) return std::nullopt;
      out.push_back(*v);
    }
    if (out.empty()) return std::nullopt;
    return Value(std::move(out));
  }
  if (s.kind == Kind::kStringList) {
    std::vector<std::string> out;
    for (const std::string& item : items) out.emplace_back(Trim(item));
    return Value(std::move(out));
  }
  if (items.empty()) return std::nullopt;
  return FromText(s, items.back());
}

std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = Trim(text.substr(start, comma - start));
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

std::string Quoted(std::string_view text) { return fmt::format("\"{}\"", text); }

std::string BadText(std::string_view where, const Setting& s, std::string_view text) {
  return fmt::format("{}: expected {}, got {}", where, Expectation(s), Quoted(text));
}

// ---- TOML ----

std::optional<double> TomlNumber(const toml::node& node) {
  if (auto v = node.value_exact<int64_t>()) return static_cast<double>(*v);
  if (auto v = node.value_exact<double>()) return *v;
  return std::nullopt;
}

// Every kind but kWeights, whose entries are checked one by one (FileReader::ReadWeights).
std::optional<Value> FromToml(const Setting& s, const toml::node& node) {
  switch (s.kind) {
    case Kind::kString:
      if (auto v = node.value_exact<std::string>()) return Value(*v);
      return std::nullopt;
    case Kind::kBool:
      if (auto v = node.value_exact<bool>()) return Value(*v);
      return std::nullopt;
    case Kind::kInteger:
      if (auto v = node.value_exact<int64_t>()) return Integer(s, *v);
      return std::nullopt;
    case Kind::kSeconds:
    case Kind::kRate:
      if (auto v = TomlNumber(node)) return Scaled(s, *v);
      return std::nullopt;
    case Kind::kChoice:
      if (auto v = node.value_exact<std::string>()) return Choice(s, *v);
      return std::nullopt;
    case Kind::kWeight:
      if (auto v = TomlNumber(node)) return Weight(*v);
      return std::nullopt;
    case Kind::kIntegerList: {
      const toml::array* a = node.as_array();
      if (a == nullptr || a->empty()) return std::nullopt;
      std::vector<int64_t> out;
      for (const toml::node& e : *a) {
        auto v = e.value_exact<int64_t>();
        if (!v || !Integer(s, *v)) return std::nullopt;
        out.push_back(*v);
      }
      return Value(std::move(out));
    }
    case Kind::kStringList: {
      const toml::array* a = node.as_array();
      if (a == nullptr) return std::nullopt;
      std::vector<std::string> out;
      for (const toml::node& e : *a) {
        auto v = e.value_exact<std::string>();
        if (!v) return std::nullopt;
        out.push_back(*v);
      }
      return Value(std::move(out));
    }
    case Kind::kWeights: return std::nullopt;
  }
  return std::nullopt;
}

// A node as the administrator wrote it, for "got ..." (tables are summarised).
std::string Shown(const toml::node& node) {
  if (node.is_table()) return "a table";
  if (auto text = node.value_exact<std::string>()) return Quoted(*text);
  if (const toml::array* a = node.as_array()) {
    std::vector<std::string> items;
    for (const toml::node& e : *a) items.push_back(Shown(e));
    return fmt::format("[{}]", fmt::join(items, ", "));
  }
  std::ostringstream out;
  node.visit([&](const auto& n) { out << n; });
  return out.str();
}

// A table's entries in the order they appear in the file, so that the first error reported is
// the first in the file.
std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [k, v] : t) out.emplace_back(&k, &v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto &pa = a.first->source().begin, &pb = b.first->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

class FileReader {
 public:
  FileReader(const std::string& path, Config* config) : path_(path), config_(config) {}

  Status Read(const toml::table& root) {
    for (const auto& [key, node] : InFileOrder(root)) {
      const Section* section = FindSection(key->str());
      if (section == nullptr) {
        return Error(*key, key->str(),
                     node->is_table() || node->is_array_of_tables()
                         ? "unknown section (known sections: " + KnownSections() + ")"
                         : "a key outside any section (settings belong to the sections " +
                               KnownSections() + ")");
      }
      TF_RETURN_IF_ERROR(ReadSection(*section, *key, *node));
    }
    return Status::Ok();
  }

 private:
  Status Error(const toml::key& key, std::string_view path, const std::string& what) const {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}:{}: {}: {}", path_, key.source().begin.line, path, what));
  }

  Status ReadSection(const Section& section, const toml::key& key, const toml::node& node) {
    if (section.open == nullptr) {
      if (!node.is_table()) {
        return Error(key, section.name,
                     fmt::format("expected the section {}, got {}", Header(section),
                                 node.is_array() ? "an array of tables" : Shown(node)));
      }
      return ReadTable(section, *node.as_table());
    }
    if (!node.is_array_of_tables()) {
      return Error(key, section.name,
                   fmt::format("expected {} tables, one per rule, got {}", Header(section),
                               node.is_table() ? "[" + std::string(section.name) + "]"
                                               : Shown(node)));
    }
    for (const toml::node& element : *node.as_array()) {
      section.open(*config_, static_cast<int>(element.source().begin.line));
      TF_RETURN_IF_ERROR(ReadTable(section, *element.as_table()));
    }
    return Status::Ok();
  }

  Status ReadTable(const Section& section, const toml::table& table) {
    for (const auto& [key, node] : InFileOrder(table)) {
      const std::string path = fmt::format("{}.{}", section.name, key->str());
      const Setting* s = FindSetting(section.name, key->str());
      if (s == nullptr) {
        return Error(*key, path,
                     fmt::format("unknown key (known keys in {}: {})", Header(section),
                                 KnownKeys(section.name)));
      }
      std::optional<Value> v;
      if (s->kind == Kind::kWeights) {
        auto w = ReadWeights(*s, *key, *node);
        if (!w.ok()) return w.status();
        v = std::move(*w);
      } else {
        v = FromToml(*s, *node);
      }
      if (!v) {
        return Error(*key, path,
                     fmt::format("expected {}, got {}", Expectation(*s), Shown(*node)));
      }
      s->at.set(*config_, *v);
    }
    return Status::Ok();
  }

  Result<Value> ReadWeights(const Setting& s, const toml::key& key, const toml::node& node) {
    const std::string path = Path(s);
    if (!node.is_table()) {
      return Error(key, path, fmt::format("expected {}, got {}", Expectation(s), Shown(node)));
    }
    Weights out;
    for (const auto& [name, value] : InFileOrder(*node.as_table())) {
      const std::string entry = fmt::format("{}.{}", path, name->str());
      if (!s.choices.empty() && IndexOf(s.choices, name->str()) == s.choices.size()) {
        return Error(*name, entry,
                     fmt::format("unknown key (known keys in {}: {})", path,
                                 fmt::join(s.choices, ", ")));
      }
      std::optional<double> w = TomlNumber(*value);
      if (!w || !Weight(*w)) {
        return Error(*name, entry, "expected a positive number, got " + Shown(*value));
      }
      out[std::string(name->str())] = *w;
    }
    return Value(std::move(out));
  }

  const std::string& path_;
  Config* config_;
};

// The file's text; nullopt when it is absent and not required.
Result<std::optional<std::string>> ReadText(const std::string& path, bool required) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  int err = f == nullptr ? errno : 0;
  std::string text;
  if (f != nullptr) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    if (std::ferror(f)) err = errno != 0 ? errno : EIO;
    std::fclose(f);
  }
  if (err == ENOENT && !required) return std::optional<std::string>();
  if (err != 0) {
    return Status(Code::kInvalidArgument,
                  fmt::format("cannot read the configuration file {}: {}{}", path,
                              std::strerror(err),
                              required ? " (give --config an existing file, or leave it out to "
                                         "use " + std::string(kDefaultConfigPath) + ")"
                                       : ""));
  }
  return std::optional<std::string>(std::move(text));
}

// Returns whether the file was there.
Result<bool> ReadFile(const std::string& path, bool required, Config* config) {
  auto text = ReadText(path, required);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return false;
  toml::table root;
  try {
    root = toml::parse(std::string_view(**text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    return Status(Code::kInvalidArgument,
                  fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column,
                              e.description()));
  }
  TF_RETURN_IF_ERROR(FileReader(path, config).Read(root));
  return true;
}

Status ReadEnvironment(const std::map<std::string, std::string>& env, Config* config) {
  auto apply = [&](const Setting& s, const std::string& name) -> Status {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty()) return Status::Ok();
    const bool list = s.kind == Kind::kIntegerList || s.kind == Kind::kStringList;
    auto v = FromTexts(s, list ? SplitCommas(it->second) : std::vector<std::string>{it->second});
    if (!v) {
      std::string text = BadText(name, s, it->second);
      if (list) text += " (comma-separated)";
      return Status(Code::kInvalidArgument, text);
    }
    s.at.set(*config, *v);
    return Status::Ok();
  };
  for (const Setting& s : kSettings) {
    if (!s.env) continue;
    if (!s.env_alias.empty()) TF_RETURN_IF_ERROR(apply(s, std::string(s.env_alias)));
    TF_RETURN_IF_ERROR(apply(s, EnvName(s)));
  }
  // A misspelt variable would otherwise be ignored without a word.
  for (const auto& [name, value] : env) {
    for (const Section& section : kSections) {
      if (name.rfind(EnvPrefix(section), 0) != 0) continue;
      const Setting* match = nullptr;
      std::vector<std::string> known;
      for (const Setting& s : kSettings) {
        if (s.section != section.name) continue;
        if (EnvName(s) == name) match = &s;
        if (s.env) known.push_back(EnvName(s));
      }
      if (match != nullptr && match->env) continue;
      const std::string what =
          match != nullptr
              ? fmt::format("{} is set in the configuration file only", Path(*match))
          : known.empty()
              ? fmt::format("unknown variable ({} is set in the configuration file only)",
                            Header(section))
              : fmt::format("unknown variable (known for {}: {})", Header(section),
                            fmt::join(known, ", "));
      return Status(Code::kInvalidArgument, name + ": " + what);
    }
  }
  return Status::Ok();
}

Status ReadFlags(const std::map<std::string, std::vector<std::string>>& flags, Config* config) {
  for (const auto& [path, values] : flags) {
    const Setting* s = nullptr;
    for (const Setting& candidate : kSettings) {
      if (Path(candidate) == path) s = &candidate;
    }
    if (s == nullptr) return Status(Code::kInternal, "no setting " + path + " for a flag");
    auto v = FromTexts(*s, values);
    if (!v) {
      return Status(Code::kInvalidArgument,
                    BadText(s->flag, *s, values.empty() ? "" : values.back()));
    }
    s->at.set(*config, *v);
  }
  return Status::Ok();
}

// ---- Flags ----

std::string TypeName(const Setting& s) {
  switch (s.kind) {
    case Kind::kInteger:
    case Kind::kIntegerList: return "INT";
    case Kind::kSeconds:
    case Kind::kRate:
    case Kind::kWeight: return "FLOAT";  // fuzz/cli_fuzz checks every FLOAT option converts
    case Kind::kChoice: return "LEVEL";
    default: return "TEXT";
  }
}

std::string Text(const Setting& s, const Value& value) {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          if (s.kind == Kind::kSeconds || s.kind == Kind::kRate) {
            return fmt::format("{}", static_cast<double>(v) / 1e6);
          }
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::string>) {
          return fmt::format("{}", v);
        } else if constexpr (std::is_same_v<T, Weights>) {
          std::vector<std::string> parts;
          for (const auto& [name, w] : v) parts.push_back(fmt::format("{}={}", name, w));
          return fmt::format("{}", fmt::join(parts, ","));
        } else {
          return fmt::format("{}", fmt::join(v, ","));
        }
      },
      value);
}

// The check of a flag's value as it is parsed (each value of a list flag on its own): the same
// as the file's and the environment's, so a bad flag is a usage error naming the flag.
CLI::Validator CheckOf(const Setting& s) {
  std::string description;
  if (s.kind == Kind::kChoice) {
    description = fmt::format("{{{}}}", fmt::join(s.choices, ","));
  } else if (s.max > s.min) {
    description = fmt::format("{} in [{} - {}]", TypeName(s), s.min, s.max);
  }
  return CLI::Validator(
      [&s](std::string& input) -> std::string {
        if (FromTexts(s, {input})) return {};
        return fmt::format("expected {}, got {}", Expectation(s), Quoted(input));
      },
      description);
}

constexpr char kFooter[] =
    "Settings come from the built-in defaults, then the configuration file (--config FILE,\n"
    "else /etc/tierflow/tierflow.toml when it exists), then TIERFLOW_<SECTION>_<KEY>\n"
    "environment variables, then the flags given here; later sources win. A bad file or\n"
    "variable exits with code 2, naming the key and line. See docs/configuration.md.";

}  // namespace

Config DefaultConfig() {
  Config c;
  c.coordinator.server.state_dir = "/var/lib/tierflow";
  c.mover.options.coordinator = "localhost:7420";
  return c;
}

Result<Config> LoadConfig(const ConfigSources& sources) {
  Config config = DefaultConfig();
  bool from_file = false;
  if (!sources.file.empty() || sources.file_required) {
    auto read = ReadFile(sources.file, sources.file_required, &config);
    if (!read.ok()) return read.status();
    from_file = *read;
  }
  TF_RETURN_IF_ERROR(ReadEnvironment(sources.env, &config));
  TF_RETURN_IF_ERROR(ReadFlags(sources.flags, &config));
  Status policy = coordinator::ValidatePolicy(config.coordinator.server.scheduling);
  if (!policy.ok()) {
    return Status(Code::kInvalidArgument,
                  (from_file ? sources.file : std::string("scheduling settings")) + ": " +
                      policy.message());
  }
  return config;
}

std::map<std::string, std::string> SettingValues(const Config& config) {
  std::map<std::string, std::string> out;
  for (const Setting& s : kSettings) {
    if (FindSection(s.section)->open != nullptr) continue;  // per rule, not per config
    out[Path(s)] = Text(s, s.at.get(config));
  }
  return out;
}

std::map<std::string, std::string> TierflowEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || entry.rfind("TIERFLOW_", 0) != 0) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

struct ConfigFlags::Bound {
  const Setting* setting;
  CLI::Option* option = nullptr;
  std::string one;                // a scalar option's value
  std::vector<std::string> many;  // a list option's values
};

ConfigFlags::ConfigFlags(CLI::App* app, const std::vector<std::string>& sections) {
  config_option_ =
      app->add_option("--config", config_path_,
                      fmt::format("configuration file (TOML; default {}, skipped when absent)",
                                  kDefaultConfigPath))
          ->envname("TIERFLOW_CONFIG");
  const Config defaults = DefaultConfig();
  for (const Setting& s : kSettings) {
    if (s.flag.empty() ||
        std::find(sections.begin(), sections.end(), s.section) == sections.end()) {
      continue;
    }
    auto b = std::make_unique<Bound>();
    b->setting = &s;
    const std::string flag(s.flag);
    const std::string help =
        fmt::format("{} (env {}{}{})", s.help, EnvName(s), s.env_alias.empty() ? "" : " or ",
                    s.env_alias);
    if (s.kind == Kind::kBool) {
      b->option = app->add_flag(flag, help);
    } else if (s.kind == Kind::kIntegerList || s.kind == Kind::kStringList) {
      b->option = app->add_option(flag, b->many, help)
                      ->expected(1)
                      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    } else {
      b->option = app->add_option(flag, b->one, help);
    }
    if (s.kind != Kind::kBool) {
      if (s.kind != Kind::kString && s.kind != Kind::kStringList) b->option->check(CheckOf(s));
      b->option->type_name(TypeName(s));
      b->option->default_str(Text(s, s.at.get(defaults)));
    }
    bound_.push_back(std::move(b));
  }
  app->footer(kFooter);
}

ConfigFlags::~ConfigFlags() = default;

Result<Config> ConfigFlags::Load() const {
  ConfigSources sources;
  sources.file_required = config_option_->count() > 0;
  sources.file = sources.file_required ? config_path_ : kDefaultConfigPath;
  sources.env = TierflowEnvironment();
  for (const auto& b : bound_) {
    if (b->option->count() == 0) continue;
    const Setting& s = *b->setting;
    std::vector<std::string> values;
    if (s.kind == Kind::kBool) {
      values = {s.flag_sets ? "true" : "false"};
    } else if (s.kind == Kind::kIntegerList || s.kind == Kind::kStringList) {
      values = b->many;
    } else {
      values = {b->one};
    }
    sources.flags[Path(s)] = std::move(values);
  }
  return LoadConfig(sources);
}

}  // namespace tierflow::cli
