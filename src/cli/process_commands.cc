// The long-running subcommands: `coordinator`, `mover`, and `up` (both in one process).
// SIGINT and SIGTERM shut them down cleanly (exit 0): a signal thread waits for them with
// sigwait, so the handlers run as ordinary code and may call Shutdown.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/cli_app.h"
#include "cli/file_walk.h"
#include "common/log.h"
#include "coordinator/server.h"
#include "mover/mover.h"
#include "watch/coordinator_restorer.h"
#include "watch/holder.h"
#include "watch/tracker.h"
#include "watch/unlink.h"
#include "watch/watcher.h"

namespace tierflow::cli {

namespace {

const std::vector<std::string> kLogLevels = {"trace", "debug",    "info", "warn",
                                             "error", "critical", "off"};

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Blocks SIGINT/SIGTERM; call before starting any thread so that every thread inherits the
// mask and a signal stays pending until a SignalHandler's thread takes it.
void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Runs `on_signal` on a dedicated thread for each SIGINT/SIGTERM, until destroyed. The
// destructor waits for a handler in progress, so objects the handler uses may be destroyed
// right after it (declare it after them). The thread is detached and outlives the object.
class SignalHandler {
 public:
  explicit SignalHandler(std::function<void(int)> on_signal) : gate_(std::make_shared<Gate>()) {
    gate_->fn = std::move(on_signal);
    std::thread([gate = gate_] {
      sigset_t set = TerminationSignals();
      int sig = 0;
      while (sigwait(&set, &sig) == 0) {
        std::lock_guard lk(gate->mu);
        if (gate->closed) return;
        gate->fn(sig);
      }
    }).detach();
  }
  ~SignalHandler() {
    std::lock_guard lk(gate_->mu);
    gate_->closed = true;
  }
  SignalHandler(const SignalHandler&) = delete;
  SignalHandler& operator=(const SignalHandler&) = delete;

 private:
  struct Gate {
    std::mutex mu;
    bool closed = false;
    std::function<void(int)> fn;
  };
  std::shared_ptr<Gate> gate_;
};

// HOST:PORT with the port the server really listens on (for --listen HOST:0).
std::string ListenAddress(const std::string& listen, int port) {
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  return host + ":" + std::to_string(port);
}

// Where a local process reaches a server that listens on `listen`.
std::string LocalAddress(const std::string& listen, int port) {
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]" || host == "::") host = "[::1]";
  return host + ":" + std::to_string(port);
}

void AddLogLevel(CLI::App* sub, std::string* level) {
  sub->add_option("--log-level", *level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember(kLogLevels))
      ->capture_default_str();
}

// Seconds (or MB/s) from `min` to `max`. Unlike CLI::Range it refuses NaN, which passes every
// range comparison, and its bound keeps value * 1e6 (microseconds, bytes/s) an integer.
CLI::Validator FiniteRange(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& input) -> std::string {
        double v = 0;
        if (CLI::detail::lexical_cast(input, v) && v >= min && v <= max) return {};
        return "value " + input + " is not a number from " + CLI::detail::to_string(min) +
               " to " + CLI::detail::to_string(max);
      },
      "FLOAT in [" + CLI::detail::to_string(min) + " - " + CLI::detail::to_string(max) + "]");
}

// What a coordinator is started with, for `coordinator` and `up`.
struct CoordinatorArgs {
  std::string listen = "127.0.0.1:7420";
  std::string state = "/var/lib/tierflow";
  uint32_t max_attempts = 3;
  double retry_delay_s = 1;
  bool no_retry = false;
  double active_request_timeout_s = 3600;
  double mover_grace_s = 60;
  double final_grace_s = 60;
  double heartbeat_interval_s = 10;
  double heartbeat_timeout_s = 30;
  std::string log_level = "info";
};

void AddCoordinatorOptions(CLI::App* sub, CoordinatorArgs* a) {
  sub->add_option("--listen", a->listen, "HOST:PORT to listen on (port 0 picks a free port)")
      ->capture_default_str();
  sub->add_option("--state", a->state, "state directory (journal); created if missing")
      ->capture_default_str();
  sub->add_option("--max-attempts", a->max_attempts,
                  "attempts of a request whose failures the mover calls retryable")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  sub->add_option("--retry-delay", a->retry_delay_s,
                  "seconds before the first retry; doubles per attempt, up to 60 s")
      ->check(FiniteRange(0.0, 3600.0))
      ->capture_default_str();
  sub->add_flag("--no-retry", a->no_retry, "every failure is final (Lustre's no-retry-action)");
  sub->add_option("--active-request-timeout", a->active_request_timeout_s,
                  "seconds an assigned action may go without progress before it is taken back "
                  "from its mover and requeued (0 never)")
      ->check(FiniteRange(0.0, 1e9))
      ->capture_default_str();
  sub->add_option("--mover-grace", a->mover_grace_s,
                  "seconds a disconnected mover keeps its actions before they are requeued")
      ->check(FiniteRange(0.0, 86400.0))
      ->capture_default_str();
  sub->add_option("--final-grace", a->final_grace_s,
                  "seconds finished requests stay listed (status, state) before they are purged")
      ->check(FiniteRange(0.0, 365.0 * 86400))
      ->capture_default_str();
  sub->add_option("--heartbeat-interval", a->heartbeat_interval_s,
                  "seconds between heartbeats to each mover (0 none)")
      ->check(FiniteRange(0.0, 3600.0))
      ->capture_default_str();
  sub->add_option("--heartbeat-timeout", a->heartbeat_timeout_s,
                  "seconds without an answer before a mover is given nothing new")
      ->check(FiniteRange(0.0, 86400.0))
      ->capture_default_str();
}

// ---- coordinator ----

Result<std::unique_ptr<coordinator::Server>> StartServer(const CoordinatorArgs& a) {
  coordinator::ServerOptions o;
  o.listen = a.listen;
  o.state_dir = a.state;
  o.max_attempts = a.max_attempts;
  o.retry_delay_us = static_cast<int64_t>(a.retry_delay_s * 1e6);
  o.no_retry = a.no_retry;
  o.active_request_timeout_us = static_cast<int64_t>(a.active_request_timeout_s * 1e6);
  o.mover_grace_us = static_cast<int64_t>(a.mover_grace_s * 1e6);
  o.final_grace_us = static_cast<int64_t>(a.final_grace_s * 1e6);
  o.heartbeat_interval_us = static_cast<int64_t>(a.heartbeat_interval_s * 1e6);
  o.heartbeat_timeout_us = static_cast<int64_t>(a.heartbeat_timeout_s * 1e6);
  return coordinator::Server::Start(o);
}

int RunCoordinator(CoordinatorArgs a) {
  a.state = AbsolutePath(a.state);
  InitLogging(a.log_level, "coordinator");
  BlockTerminationSignals();
  auto server = StartServer(a);
  if (!server.ok()) {
    PrintError(server.status());
    return kExitFailed;
  }
  coordinator::Server* s = server->get();
  SignalHandler on_signal([s](int sig) {
    spdlog::info("signal {}: shutting down", sig);
    s->Shutdown();
  });
  std::printf("tierflow coordinator listening on %s, state in %s\n",
              ListenAddress(a.listen, s->port()).c_str(), a.state.c_str());
  std::fflush(stdout);
  s->Wait();
  s->Shutdown();
  return kExitOk;
}

// ---- holder ----

struct HolderArgs {
  std::string fs;
  std::string socket;
  std::string log_level = "info";
};

int RunHolder(HolderArgs a) {
  InitLogging(a.log_level, "holder");
  BlockTerminationSignals();
  auto holder = watch::Holder::Start({AbsolutePath(a.fs), a.socket});
  if (!holder.ok()) {
    PrintError(holder.status());
    return kExitFailed;
  }
  watch::Holder* h = holder->get();
  SignalHandler on_signal([h](int sig) {
    spdlog::info("signal {}: stopping; pending readers get EIO", sig);
    h->Stop();
  });
  std::printf("tierflow holder: watching the filesystem of %s (fsid %s), socket %s\n",
              AbsolutePath(a.fs).c_str(), h->fsid().c_str(), h->socket_path().c_str());
  std::fflush(stdout);
  h->Run();
  return kExitOk;
}

// ---- watching (mover --watch, up) ----

struct WatchArgs {
  std::vector<std::string> mounts;
  bool remove_archive_on_last_unlink = false;
  bool start_holder = true;
};

// True when `path` is the root of a mounted filesystem (its parent is on another device).
bool IsMountRoot(const std::string& path) {
  struct stat self, parent;
  if (::stat(path.c_str(), &self) != 0) return false;
  if (::stat((path + "/..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "tierflow";
}

// The watchers and trackers of one mover process, and the restorer they share. Started
// before the mover runtime, so that the filesystems are watched before it moves anything.
class WatchSet {
 public:
  static Result<std::unique_ptr<WatchSet>> Start(const WatchArgs& args,
                                                 const std::string& coordinator,
                                                 const std::string& log_level) {
    auto set = std::unique_ptr<WatchSet>(new WatchSet);
    if (args.mounts.empty()) return set;
    set->restorer_ = std::make_unique<watch::CoordinatorRestorer>(coordinator);
    for (const std::string& raw : args.mounts) {
      const std::string mount = AbsolutePath(raw);
      if (!IsMountRoot(mount)) {
        return Status(Code::kInvalidArgument,
                      mount + " is not the root of a mounted filesystem; a watch covers a whole "
                              "filesystem, so give its mount point");
      }
      watch::WatcherOptions wo;
      wo.mount = mount;
      wo.requester = set->restorer_.get();
      if (args.start_holder) {
        wo.holder_command = {SelfExe(), "holder", "--fs", mount, "--log-level", log_level};
      }
      auto w = watch::Watcher::Start(wo, /*wait_connected_ms=*/15000);
      if (!w.ok()) return w.status().Annotate("watching " + mount);
      set->watchers_.push_back(std::move(*w));
      watch::TrackerOptions to;
      to.mount = mount;
      to.remove_archive_on_last_unlink = args.remove_archive_on_last_unlink;
      watch::CoordinatorRestorer* restorer = set->restorer_.get();
      to.on_deleted = [restorer, mount](const hsm::FileId& id) {
        restorer->SubmitInBackground(watch::UnlinkedRemoveSpec(id, mount));
      };
      auto t = watch::Tracker::Start(to);
      if (!t.ok()) return t.status().Annotate("tracking changes on " + mount);
      set->trackers_.push_back(std::move(*t));
      spdlog::info("watching {}: released files are restored on access{}", mount,
                   args.remove_archive_on_last_unlink
                       ? "; the archive copy of a file is removed with its last link"
                       : "");
    }
    return set;
  }
  ~WatchSet() { Stop(); }
  void Stop() {
    for (auto& t : trackers_) t->Stop();
    for (auto& w : watchers_) w->Stop();
    if (restorer_) restorer_->Stop();
  }

 private:
  WatchSet() = default;
  std::unique_ptr<watch::CoordinatorRestorer> restorer_;
  std::vector<std::unique_ptr<watch::Watcher>> watchers_;
  std::vector<std::unique_ptr<watch::Tracker>> trackers_;
};

// Every mover makes its own I/O pass the holder of the filesystem it works on, if one runs.
void PassHolders(mover::MoverOptions* o) {
  o->prepare_filesystem = [](const std::string& fsid) { return watch::EnsureHolderPass(fsid); };
}

// ---- mover ----

struct MoverArgs {
  mover::MoverOptions options;
  WatchArgs watch;
  double bandwidth_mb = 0;
  std::string log_level = "info";
};

void AddMoverOptions(CLI::App* sub, MoverArgs* a) {
  mover::MoverOptions& o = a->options;
  o.coordinator = DefaultCoordinator();
  o.archive_ids.clear();
  sub->add_option("--coordinator", o.coordinator, "coordinator HOST:PORT")
      ->envname("TIERFLOW_COORDINATOR")
      ->capture_default_str();
  sub->add_option("--id", o.id, "stable mover name (default: the host name)");
  sub->add_option("--archive-id", o.archive_ids, "archive id served (repeatable; default 1)")
      ->check(CLI::Range(1u, std::numeric_limits<uint32_t>::max()))
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--posix-root", o.posix_root, "archive directory of the posix backend")
      ->required();
  sub->add_flag("--posix-v2", o.posix_v2, "lhsmtool_posix v2 paths (ROOT/HASH/FID)");
  const auto slots = CLI::Range(-1, std::numeric_limits<int32_t>::max());
  sub->add_option("--max-archive", o.max_archive, "concurrent archives (-1 unlimited)")
      ->check(slots)
      ->capture_default_str();
  sub->add_option("--max-restore", o.max_restore, "concurrent restores (-1 unlimited)")
      ->check(slots)
      ->capture_default_str();
  sub->add_option("--max-remove", o.max_remove, "concurrent removes (-1 unlimited)")
      ->check(slots)
      ->capture_default_str();
  sub->add_option("--max-bytes", o.max_bytes,
                  "bytes in flight the coordinator may give (0 unlimited)")
      ->capture_default_str();
  sub->add_option("--action-log", o.action_log,
                  "append one line per finished action to this file (an audit trail: time, "
                  "mover, request id, epoch, action, FID, errno)");
  sub->add_option("--bandwidth", a->bandwidth_mb, "MB/s each copy may move (0 unlimited)")
      ->check(FiniteRange(0.0, 1e9))
      ->capture_default_str();
  sub->add_option("--watch", a->watch.mounts,
                  "mount point to watch: released files there are restored when accessed "
                  "(repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_flag("--remove-archive-on-last-unlink", a->watch.remove_archive_on_last_unlink,
                "on watched filesystems, remove a file's archive copy when its last link goes");
  sub->add_flag("!--no-start-holder", a->watch.start_holder,
                "do not start a holder when none runs (systemd starts it)");
  AddLogLevel(sub, &a->log_level);
}

int RunMover(MoverArgs a) {
  InitLogging(a.log_level, "mover");
  if (a.options.archive_ids.empty()) a.options.archive_ids = {1};
  a.options.posix_root = AbsolutePath(a.options.posix_root);
  a.options.max_bytes_per_sec = static_cast<uint64_t>(a.bandwidth_mb * 1e6);
  PassHolders(&a.options);
  BlockTerminationSignals();
  auto watches = WatchSet::Start(a.watch, a.options.coordinator, a.log_level);
  if (!watches.ok()) {
    PrintError(watches.status());
    return kExitFailed;
  }
  auto m = mover::Mover::Start(a.options);
  if (!m.ok()) {
    PrintError(m.status());
    return kExitFailed;
  }
  mover::Mover* mv = m->get();
  SignalHandler on_signal([mv](int sig) {
    spdlog::info("signal {}: shutting down", sig);
    mv->Shutdown();
  });
  mv->Wait();
  (*watches)->Stop();
  return kExitOk;
}

// ---- up ----

struct UpArgs {
  std::string fs;
  std::string archive;
  CoordinatorArgs coord;
  bool watch = true;
};

int RunUp(UpArgs a) {
  a.fs = AbsolutePath(a.fs);
  a.archive = AbsolutePath(a.archive);
  a.coord.state = AbsolutePath(a.coord.state);
  InitLogging(a.coord.log_level, "tierflow");
  BlockTerminationSignals();
  std::error_code ec;
  std::filesystem::create_directories(a.archive, ec);
  if (ec) {
    PrintError("cannot create the archive directory " + a.archive + ": " + ec.message());
    return kExitFailed;
  }
  auto server = StartServer(a.coord);
  if (!server.ok()) {
    PrintError(server.status());
    return kExitFailed;
  }
  coordinator::Server* s = server->get();
  mover::MoverOptions mo;
  mo.coordinator = LocalAddress(a.coord.listen, s->port());
  mo.id = "local";
  mo.archive_ids = {1};
  mo.posix_root = a.archive;
  PassHolders(&mo);
  WatchArgs wa;
  std::string watch_note;
  if (a.watch && IsMountRoot(a.fs)) {
    wa.mounts = {a.fs};
    watch_note = "tierflow up: released files of " + a.fs + " come back when they are accessed\n";
  } else if (a.watch) {
    watch_note = "tierflow up: not watching " + a.fs +
                 ": it is not the root of a mounted filesystem (a watch covers a whole "
                 "filesystem); released files come back with 'tierflow restore'\n";
  }
  auto watches = WatchSet::Start(wa, mo.coordinator, a.coord.log_level);
  if (!watches.ok()) {
    PrintError(watches.status());
    s->Shutdown();
    return kExitFailed;
  }
  auto m = mover::Mover::Start(mo);
  if (!m.ok()) {
    PrintError(m.status());
    s->Shutdown();
    return kExitFailed;
  }
  mover::Mover* mv = m->get();
  SignalHandler on_signal([s, mv](int sig) {
    spdlog::info("signal {}: shutting down", sig);
    mv->Shutdown();
    s->Shutdown();
  });
  const std::string addr = ListenAddress(a.coord.listen, s->port());
  std::printf(
      "tierflow up: coordinator listening on %s, state in %s\n"
      "tierflow up: mover 'local' moves files of %s to the archive %s (archive id 1)\n"
      "%s"
      "tierflow up: clients: export TIERFLOW_COORDINATOR=%s\n",
      addr.c_str(), a.coord.state.c_str(), a.fs.c_str(), a.archive.c_str(), watch_note.c_str(),
      LocalAddress(a.coord.listen, s->port()).c_str());
  std::fflush(stdout);
  s->Wait();
  mv->Shutdown();
  (*watches)->Stop();
  s->Shutdown();
  return kExitOk;
}

}  // namespace

void AddProcessCommands(CLI::App& app, std::vector<Command>* commands) {
  auto ca = std::make_shared<CoordinatorArgs>();
  CLI::App* c = app.add_subcommand("coordinator", "run the coordinator (queues, journal, movers)");
  AddCoordinatorOptions(c, ca.get());
  AddLogLevel(c, &ca->log_level);
  commands->push_back({c, [ca] { return RunCoordinator(*ca); }});

  auto ma = std::make_shared<MoverArgs>();
  CLI::App* m = app.add_subcommand("mover", "run a mover: copies files to and from an archive");
  AddMoverOptions(m, ma.get());
  commands->push_back({m, [ma] { return RunMover(*ma); }});

  auto ua = std::make_shared<UpArgs>();
  CLI::App* u = app.add_subcommand("up", "run a coordinator and one mover in one process");
  u->add_option("--fs", ua->fs, "the filesystem directory tierflow manages")
      ->required()
      ->check(CLI::ExistingDirectory);
  u->add_option("--archive", ua->archive, "archive directory (created if missing)")->required();
  u->add_flag("!--no-watch", ua->watch,
              "do not restore released files on access (watching needs --fs to be a mount "
              "point)");
  AddCoordinatorOptions(u, &ua->coord);
  AddLogLevel(u, &ua->coord.log_level);
  commands->push_back({u, [ua] { return RunUp(*ua); }});

  auto ha = std::make_shared<HolderArgs>();
  CLI::App* h = app.add_subcommand(
      "holder", "keep a filesystem's fanotify group alive across mover restarts (one per filesystem)");
  h->add_option("--fs", ha->fs, "mount point of the filesystem to watch")
      ->required()
      ->check(CLI::ExistingDirectory);
  h->add_option("--socket", ha->socket, "socket path (default /run/tierflow/holder-FSID.sock)");
  AddLogLevel(h, &ha->log_level);
  commands->push_back({h, [ha] { return RunHolder(*ha); }});
}

}  // namespace tierflow::cli
