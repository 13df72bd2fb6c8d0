// The client verbs: archive, restore, remove (submitted to the coordinator, optionally waited
// for), release and state (local only), cancel, status, lock and unlock.
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <map>
#include <memory>

#include "cli/cli_app.h"
#include "cli/coordinator_client.h"
#include "cli/file_walk.h"
#include "cli/output.h"
#include "cli/request_plan.h"
#include "mover/fs/local_fs.h"
#include "wire/convert.h"

namespace tierflow::cli {

namespace {

constexpr size_t kBatchSize = 1000;   // requests per Submit
constexpr size_t kWaitChunk = 50000;  // ids per Wait stream

struct ClientArgs {
  std::string coordinator = DefaultCoordinator();
  std::vector<std::string> paths;
  bool wait = false;
  bool json = false;
  bool quit = false;
  uint32_t archive_id = 0;
  std::string data;
  uint32_t limit = 50;
};

std::string UserName() {
  if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return std::to_string(::getuid());
}

// `status` with the file named in front unless its message already names it.
Status NameFile(const std::string& path, const Status& status) {
  if (status.message().find(path) != std::string::npos) return status;
  return status.Annotate(path);
}

// The files behind the PATH arguments, with their local HSM state. Problems are printed and
// counted in *failures.
std::vector<LocalFile> LoadFiles(const std::vector<std::string>& paths, int* failures) {
  WalkResult walk = ExpandPaths(paths);
  for (const Status& e : walk.errors) PrintError(e);
  *failures += static_cast<int>(walk.errors.size());
  std::vector<LocalFile> files;
  for (const std::string& p : walk.files) {
    auto st = mover::GetFileState(p);
    if (!st.ok()) {
      PrintError(NameFile(p, st.status()));
      ++*failures;
      continue;
    }
    files.push_back({p, std::move(st).value()});
  }
  return files;
}

// ---- archive / restore / remove ----

// Submitted requests: which paths each coordinator request id stands for.
struct Submitted {
  std::map<uint64_t, std::vector<const PlannedRequest*>> by_id;
  size_t merged = 0;
};

Status SubmitAll(CoordinatorClient& client, const Plan& plan, Submitted* out) {
  std::vector<v1::SubmitRequest> batches = SplitBatches(plan.requests, kBatchSize);
  size_t next = 0;
  for (const v1::SubmitRequest& batch : batches) {
    auto reply = client.Submit(batch);
    if (!reply.ok()) {
      if (next == 0) return reply.status();
      return reply.status().Annotate(
          fmt::format("{} of {} requests were submitted before", next, plan.requests.size()));
    }
    for (const v1::Accepted& a : reply->accepted()) {
      if (next >= plan.requests.size()) break;
      out->by_id[a.id()].push_back(&plan.requests[next++]);
      out->merged += a.merged() ? 1 : 0;
    }
  }
  return Status::Ok();
}

std::string FailureText(const v1::RequestInfo& r) {
  if (!r.error().empty()) return r.error();
  if (r.error_code() != 0) return std::strerror(r.error_code());
  return "unknown error";
}

// Follows the submitted requests to their end; prints each failure. Returns the failures.
int FollowRequests(CoordinatorClient& client, hsm::Action action, const Submitted& sub,
                   int* exit_code) {
  const std::string verb = VerbName(action);
  uint64_t files_total = 0, bytes_total = 0;
  for (const auto& [id, reqs] : sub.by_id) {
    files_total += reqs.size();
    for (const PlannedRequest* r : reqs) bytes_total += r->size;
  }
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  ProgressBar bar(stderr, verb, files_total, bytes_total);
  std::map<uint64_t, uint64_t> bytes_done;
  uint64_t files_done = 0, moved = 0, settled = 0;
  int failed = 0, succeeded = 0, canceled = 0;
  auto on_update = [&](const v1::RequestInfo& r) {
    auto it = sub.by_id.find(r.id());
    if (it == sub.by_id.end()) return;
    uint64_t size = 0;
    for (const PlannedRequest* p : it->second) size += p->size;
    uint64_t& done = bytes_done[r.id()];
    const uint64_t now = r.state() == v1::SUCCEEDED ? size : std::min(r.bytes_done(), size);
    if (now > done) {
      moved += now - done;
      settled += now - done;
      done = now;
    }
    if (IsFinal(r.state())) {
      files_done += it->second.size();
      settled += size - done;
      if (r.state() == v1::SUCCEEDED)
        succeeded += static_cast<int>(it->second.size());
      else if (tty)
        bar.Clear();
      for (const PlannedRequest* p : it->second) {
        if (r.state() == v1::CANCELED) {
          std::fprintf(stderr, "%s: %s canceled\n", p->path.c_str(), verb.c_str());
          ++canceled;
        } else if (r.state() == v1::FAILED) {
          std::fprintf(stderr, "%s: %s failed: %s\n", p->path.c_str(), verb.c_str(),
                       FailureText(r).c_str());
          ++failed;
        }
      }
    }
    if (tty) bar.Update(files_done, moved, settled, files_done == files_total);
  };
  // One Wait stream per chunk keeps each request well under the message size limit.
  Status st;
  std::vector<uint64_t> ids;
  for (auto it = sub.by_id.begin(); st.ok() && it != sub.by_id.end();) {
    ids.clear();
    for (; it != sub.by_id.end() && ids.size() < kWaitChunk; ++it) ids.push_back(it->first);
    st = client.Wait(ids, on_update);
  }
  if (tty) bar.Finish(files_done, moved, settled);
  if (!st.ok()) {
    PrintError(st.Annotate("waiting for the " + verb + " requests"));
    *exit_code = ExitCodeFor(st);
  }
  std::printf("%s: %d succeeded, %d failed, %d canceled\n", verb.c_str(), succeeded, failed,
              canceled);
  return failed + canceled;
}

int RunSubmitVerb(hsm::Action action, const ClientArgs& a) {
  int failures = 0;
  std::vector<LocalFile> files = LoadFiles(a.paths, &failures);
  PlanOptions po;
  po.action = action;
  po.archive_id = a.archive_id;
  po.data = a.data;
  po.user = UserName();
  Plan plan = PlanRequests(po, files);
  for (const std::string& n : plan.notes) std::fprintf(stderr, "tierflow: %s\n", n.c_str());
  for (const Status& e : plan.errors) PrintError(e);
  failures += static_cast<int>(plan.errors.size());
  if (plan.requests.empty()) return failures > 0 ? kExitFailed : kExitOk;

  CoordinatorClient client(a.coordinator);
  Submitted sub;
  Status st = SubmitAll(client, plan, &sub);
  if (!st.ok()) {
    PrintError(st);
    return ExitCodeFor(st);
  }
  const std::string verb = VerbName(action);
  if (!a.wait) {
    std::printf("%s: %zu requests submitted (%zu already pending)\n", verb.c_str(),
                plan.requests.size(), sub.merged);
    return failures > 0 ? kExitFailed : kExitOk;
  }
  int exit_code = kExitOk;
  failures += FollowRequests(client, action, sub, &exit_code);
  if (exit_code != kExitOk) return exit_code;
  return failures > 0 ? kExitFailed : kExitOk;
}

// ---- release / state (local) ----

int RunRelease(const ClientArgs& a) {
  int failures = 0;
  WalkResult walk = ExpandPaths(a.paths);
  for (const Status& e : walk.errors) PrintError(e);
  failures += static_cast<int>(walk.errors.size());
  int released = 0;
  for (const std::string& p : walk.files) {
    Status st = mover::ReleaseFile(p);
    if (st.ok()) {
      ++released;
      continue;
    }
    PrintError(NameFile(p, st).Annotate("cannot release"));
    ++failures;
  }
  std::printf("release: %d released, %d failed\n", released, failures);
  return failures > 0 ? kExitFailed : kExitOk;
}

int RunState(const ClientArgs& a) {
  int failures = 0;
  std::vector<LocalFile> files = LoadFiles(a.paths, &failures);
  for (const LocalFile& f : files) {
    const uint32_t states = EffectiveStates(f.state);
    if (a.json) {
      std::printf("%s\n", FormatStateJson(f.path, f.state, states).c_str());
      continue;
    }
    const uint32_t archive_id = f.state.has_record ? f.state.record.archive_id : 0;
    std::printf("%s\n", FormatStateLine(f.path, states, archive_id).c_str());
    std::string err = FormatLastErrorLine(f.path, f.state);
    if (!err.empty()) std::printf("%s\n", err.c_str());
  }
  return failures > 0 ? kExitFailed : kExitOk;
}

// ---- cancel / status / lock ----

int RunCancel(const ClientArgs& a) {
  int failures = 0;
  WalkResult walk = ExpandPaths(a.paths);
  for (const Status& e : walk.errors) PrintError(e);
  failures += static_cast<int>(walk.errors.size());
  v1::CancelRequest req;
  for (const std::string& p : walk.files) {
    auto id = mover::IdentifyFile(p);
    if (!id.ok()) {
      PrintError(NameFile(p, id.status()));
      ++failures;
      continue;
    }
    wire::FileRefToProto(*id, p, req.add_files());
  }
  if (req.files().empty()) return failures > 0 ? kExitFailed : kExitOk;
  CoordinatorClient client(a.coordinator);
  auto reply = client.Cancel(req);
  if (!reply.ok()) {
    PrintError(reply.status());
    return ExitCodeFor(reply.status());
  }
  std::printf(
      "cancel: %d queued requests canceled, %d running ones being stopped by their movers\n",
      reply->canceled_size(), reply->forwarded_size());
  return failures > 0 ? kExitFailed : kExitOk;
}

int RunStatus(const ClientArgs& a) {
  CoordinatorClient client(a.coordinator);
  v1::StatusRequest req;
  req.set_include_requests(true);
  req.set_limit(a.limit);
  auto reply = client.GetStatus(req);
  if (!reply.ok()) {
    PrintError(reply.status());
    return ExitCodeFor(reply.status());
  }
  if (a.json) {
    std::printf("%s\n", FormatStatusJson(*reply).c_str());
  } else {
    std::printf("%s", FormatStatus(*reply, a.coordinator).c_str());
  }
  return kExitOk;
}

int RunLock(const ClientArgs& a, uint32_t lock) {
  CoordinatorClient client(a.coordinator);
  auto reply = client.Lock(lock);
  if (!reply.ok()) {
    PrintError(reply.status());
    return ExitCodeFor(reply.status());
  }
  static const char* kText[] = {
      "unlocked: dispatching requests again",
      "locked: requests are accepted but none is dispatched; 'tierflow unlock' resumes",
      "locked and quitting: running actions finish, then the coordinator exits"};
  const uint32_t l = reply->lock();
  std::printf("coordinator %s %s\n", a.coordinator.c_str(),
              l < 3 ? kText[l] : fmt::format("lock state {}", l).c_str());
  return kExitOk;
}

// ---- registration ----

void AddCoordinatorOption(CLI::App* sub, ClientArgs* a) {
  sub->add_option("--coordinator", a->coordinator,
                  "coordinator HOST:PORT (default $TIERFLOW_COORDINATOR or localhost:7420)");
}

// release and state work locally; they accept --coordinator so that scripts can pass the
// same flags to every verb.
void AddUnusedCoordinatorOption(CLI::App* sub, ClientArgs* a) {
  sub->add_option("--coordinator", a->coordinator, "accepted for uniformity; not used (local)");
}

void AddPaths(CLI::App* sub, ClientArgs* a) {
  sub->add_option("PATH", a->paths, "files or directories (walked recursively)")->required();
}

CLI::App* AddSubmitVerb(CLI::App& app, std::vector<Command>* commands, hsm::Action action,
                        const std::string& help) {
  auto a = std::make_shared<ClientArgs>();
  CLI::App* sub = app.add_subcommand(VerbName(action), help);
  AddCoordinatorOption(sub, a.get());
  if (action == hsm::Action::kArchive) {
    sub->add_option("--archive-id", a->archive_id,
                    "archive id (default: the file's archive, else the coordinator's default)")
        ->check(CLI::Range(1u, std::numeric_limits<uint32_t>::max()));
    sub->add_option("--data", a->data, "request data, e.g. tags as key=value");
  }
  sub->add_flag("--wait", a->wait, "wait until every request ends; exit 1 if any failed");
  AddPaths(sub, a.get());
  commands->push_back({sub, [a, action] { return RunSubmitVerb(action, *a); }});
  return sub;
}

}  // namespace

void AddClientVerbs(CLI::App& app, std::vector<Command>* commands) {
  AddSubmitVerb(app, commands, hsm::Action::kArchive, "copy files to the archive");
  AddSubmitVerb(app, commands, hsm::Action::kRestore, "bring released files back");
  AddSubmitVerb(app, commands, hsm::Action::kRemove, "delete the archive copies of files");

  auto rel = std::make_shared<ClientArgs>();
  CLI::App* r = app.add_subcommand("release", "free the space of archived files (local)");
  AddUnusedCoordinatorOption(r, rel.get());
  AddPaths(r, rel.get());
  commands->push_back({r, [rel] { return RunRelease(*rel); }});

  auto can = std::make_shared<ClientArgs>();
  CLI::App* c = app.add_subcommand("cancel", "cancel the pending requests of files");
  AddCoordinatorOption(c, can.get());
  AddPaths(c, can.get());
  commands->push_back({c, [can] { return RunCancel(*can); }});

  auto sta = std::make_shared<ClientArgs>();
  CLI::App* s = app.add_subcommand("state", "show the HSM state of files (local)");
  s->add_flag("--json", sta->json, "one JSON object per file and line");
  AddUnusedCoordinatorOption(s, sta.get());
  AddPaths(s, sta.get());
  commands->push_back({s, [sta] { return RunState(*sta); }});

  auto stu = std::make_shared<ClientArgs>();
  CLI::App* st = app.add_subcommand("status", "show the coordinator's queues, movers and warnings");
  AddCoordinatorOption(st, stu.get());
  st->add_flag("--json", stu->json, "one JSON document");
  st->add_option("--limit", stu->limit, "at most this many requests listed")->capture_default_str();
  commands->push_back({st, [stu] { return RunStatus(*stu); }});

  auto lk = std::make_shared<ClientArgs>();
  CLI::App* l = app.add_subcommand("lock", "stop dispatching (requests are still accepted)");
  AddCoordinatorOption(l, lk.get());
  l->add_flag("--quit", lk->quit, "let running actions finish, then stop the coordinator");
  commands->push_back({l, [lk] { return RunLock(*lk, lk->quit ? 2 : 1); }});

  auto ul = std::make_shared<ClientArgs>();
  CLI::App* u = app.add_subcommand("unlock", "resume dispatching");
  AddCoordinatorOption(u, ul.get());
  commands->push_back({u, [ul] { return RunLock(*ul, 0); }});
}

}  // namespace tierflow::cli
