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
#include <memory>
#include <mutex>
#include <thread>

#include "cli/cli_app.h"
#include "cli/config.h"
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

// ---- coordinator ----

int RunCoordinator(CoordinatorConfig c) {
  c.server.state_dir = AbsolutePath(c.server.state_dir);
  InitLogging(c.log_level, "coordinator");
  BlockTerminationSignals();
  auto server = coordinator::Server::Start(c.server);
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
              ListenAddress(c.server.listen, s->port()).c_str(), c.server.state_dir.c_str());
  std::fflush(stdout);
  s->Wait();
  s->Shutdown();
  return kExitOk;
}

// ---- holder ----

void AddLogLevel(CLI::App* sub, std::string* level) {
  const std::vector<std::string> levels(std::begin(kLogLevels), std::end(kLogLevels));
  sub->add_option("--log-level", *level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember(levels))
      ->capture_default_str();
}

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

int RunMover(MoverConfig c) {
  if (c.options.posix_root.empty()) {
    PrintError(
        "a mover needs its archive directory: give --posix-root DIR, posix_root in the [mover] "
        "section of the configuration file, or TIERFLOW_MOVER_POSIX_ROOT");
    return kExitUsage;
  }
  InitLogging(c.log_level, "mover");
  c.options.posix_root = AbsolutePath(c.options.posix_root);
  PassHolders(&c.options);
  BlockTerminationSignals();
  const WatchArgs wa{c.watch, c.remove_archive_on_last_unlink, c.start_holder};
  auto watches = WatchSet::Start(wa, c.options.coordinator, c.log_level);
  if (!watches.ok()) {
    PrintError(watches.status());
    return kExitFailed;
  }
  auto m = mover::Mover::Start(c.options);
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
  bool watch = true;
};

// The coordinator is configured as `coordinator` is; the mover takes the capacities, bandwidth,
// posix_v2 and action_log of [mover], and is named "local", serves archive id 1 in --archive.
int RunUp(UpArgs a, Config config) {
  CoordinatorConfig& c = config.coordinator;
  a.fs = AbsolutePath(a.fs);
  a.archive = AbsolutePath(a.archive);
  c.server.state_dir = AbsolutePath(c.server.state_dir);
  InitLogging(c.log_level, "tierflow");
  BlockTerminationSignals();
  std::error_code ec;
  std::filesystem::create_directories(a.archive, ec);
  if (ec) {
    PrintError("cannot create the archive directory " + a.archive + ": " + ec.message());
    return kExitFailed;
  }
  auto server = coordinator::Server::Start(c.server);
  if (!server.ok()) {
    PrintError(server.status());
    return kExitFailed;
  }
  coordinator::Server* s = server->get();
  mover::MoverOptions mo = config.mover.options;
  mo.coordinator = LocalAddress(c.server.listen, s->port());
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
  auto watches = WatchSet::Start(wa, mo.coordinator, c.log_level);
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
  const std::string addr = ListenAddress(c.server.listen, s->port());
  std::printf(
      "tierflow up: coordinator listening on %s, state in %s\n"
      "tierflow up: mover 'local' moves files of %s to the archive %s (archive id 1)\n"
      "%s"
      "tierflow up: clients: export TIERFLOW_COORDINATOR=%s\n",
      addr.c_str(), c.server.state_dir.c_str(), a.fs.c_str(), a.archive.c_str(),
      watch_note.c_str(), LocalAddress(c.server.listen, s->port()).c_str());
  std::fflush(stdout);
  s->Wait();
  mv->Shutdown();
  (*watches)->Stop();
  s->Shutdown();
  return kExitOk;
}

// Runs `run` on the configuration, or reports why there is none (a usage error: the file,
// variable or flag is named in the message).
template <typename Fn>
std::function<int()> Configured(std::shared_ptr<ConfigFlags> flags, Fn run) {
  return [flags, run] {
    auto config = flags->Load();
    if (!config.ok()) {
      PrintError(config.status());
      return kExitUsage;
    }
    return run(std::move(*config));
  };
}

}  // namespace

void AddProcessCommands(CLI::App& app, std::vector<Command>* commands) {
  CLI::App* c = app.add_subcommand("coordinator", "run the coordinator (queues, journal, movers)");
  auto cf = std::make_shared<ConfigFlags>(c, std::vector<std::string>{"coordinator"});
  commands->push_back(
      {c, Configured(cf, [](Config config) { return RunCoordinator(config.coordinator); })});

  CLI::App* m = app.add_subcommand("mover", "run a mover: copies files to and from an archive");
  auto mf = std::make_shared<ConfigFlags>(m, std::vector<std::string>{"mover"});
  commands->push_back({m, Configured(mf, [](Config config) { return RunMover(config.mover); })});

  auto ua = std::make_shared<UpArgs>();
  CLI::App* u = app.add_subcommand("up", "run a coordinator and one mover in one process");
  u->add_option("--fs", ua->fs, "the filesystem directory tierflow manages")
      ->required()
      ->check(CLI::ExistingDirectory);
  u->add_option("--archive", ua->archive, "archive directory (created if missing)")->required();
  u->add_flag("!--no-watch", ua->watch,
              "do not restore released files on access (watching needs --fs to be a mount "
              "point)");
  auto uf = std::make_shared<ConfigFlags>(u, std::vector<std::string>{"coordinator"});
  commands->push_back(
      {u, Configured(uf, [ua](Config config) { return RunUp(*ua, std::move(config)); })});

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
