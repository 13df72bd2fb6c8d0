// The client verbs: archive, restore, remove (submitted to the coordinator, optionally waited
// for), release, state and orphans (local only), cancel, status, lock, unlock, drain and
// capacity. Every verb takes --json: one JSON document on stdout instead of the text.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "cli/cli_app.h"
#include "cli/coordinator_client.h"
#include "cli/file_walk.h"
#include "cli/json_writer.h"
#include "cli/output.h"
#include "cli/request_plan.h"
#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/local_fs.h"
#include "watch/filesystem_id.h"
#include "watch/watcher.h"
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
  std::vector<std::string> set_flags;    // state --set
  std::vector<std::string> clear_flags;  // state --clear
};

// status: the filters of the request listing.
struct StatusFilters {
  std::vector<v1::Action> actions;
  std::vector<v1::RequestState> states;
  std::string mover;
  std::string tag;
  std::string user;
  uint64_t after = 0;
  CLI::Option* after_option = nullptr;  // given (even as 0): list in id order
};

// capacity: the new bounds; unset ones keep the value in force.
struct CapacityArgs {
  std::string mover;
  std::optional<int32_t> archive, restore, remove;
  std::optional<uint32_t> total;
  bool reset = false;
};

struct OrphanArgs {
  std::string fs;
  std::string archive;
  bool v2 = false;
  uint32_t archive_id = 1;
  bool json = false;
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

// Lets this process's own accesses pass the fanotify holder of each filesystem it works on:
// opening a file to read its record, a release's punch. Without a pass the holder would hold
// an open of a released file for a restore. One pass per filesystem; a filesystem whose holder
// refuses the pass is reported once and its files are skipped.
class HolderPasses {
 public:
  Status For(const std::string& path) {
    auto fsid = watch::FilesystemIdOf(path);
    if (!fsid.ok()) return fsid.status();
    auto it = passes_.find(*fsid);
    if (it == passes_.end()) {
      Status pass = watch::EnsureHolderPass(*fsid);
      if (!pass.ok()) {
        pass = Status(pass.code(),
                      fmt::format("no trusted passage through the fanotify holder of filesystem {} "
                                  "({}); its files are skipped, since the holder would hold this "
                                  "command's own accesses",
                                  *fsid, pass.message()),
                      pass.sys_errno());
        PrintError(pass);
      }
      it = passes_.emplace(*fsid, pass).first;
    }
    if (it->second.ok()) return it->second;
    return Status(it->second.code(), "no holder pass for its filesystem " + *fsid);
  }

 private:
  std::map<std::string, Status> passes_;
};

// ExpandPaths, with a holder pass taken for the filesystem of every file found; files whose
// filesystem's holder refuses one are moved to the errors.
WalkResult WalkManaged(const std::vector<std::string>& paths) {
  WalkResult walk = ExpandPaths(paths);
  HolderPasses passes;
  std::vector<std::string> files;
  files.reserve(walk.files.size());
  for (std::string& p : walk.files) {
    Status st = passes.For(p);
    if (st.ok()) {
      files.push_back(std::move(p));
    } else {
      walk.errors.push_back(NameFile(p, st));
    }
  }
  walk.files = std::move(files);
  return walk;
}

// The files behind the PATH arguments, with their local HSM state. Problems are printed and
// counted in *failures.
std::vector<LocalFile> LoadFiles(const std::vector<std::string>& paths, int* failures) {
  WalkResult walk = WalkManaged(paths);
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

struct Outcome {
  int succeeded = 0;
  int failed = 0;
  int canceled = 0;
};

// Follows the submitted requests to their end; prints each failure (stderr).
Outcome FollowRequests(CoordinatorClient& client, hsm::Action action, const Submitted& sub,
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
  return {succeeded, failed, canceled};
}

// archive/restore/remove --json: {"action", "submitted", "already_pending", "ids", "errors"},
// and with --wait the "succeeded", "failed" and "canceled" counts of files.
void PrintSubmitJson(const std::string& verb, size_t submitted, const Submitted& sub,
                     int errors, const Outcome* outcome) {
  JsonWriter w;
  w.BeginObject().Key("action").String(verb).Key("submitted").Uint(submitted);
  w.Key("already_pending").Uint(sub.merged).Key("ids").BeginArray();
  for (const auto& [id, reqs] : sub.by_id) w.Uint(id);
  w.EndArray().Key("errors").Int(errors);
  if (outcome != nullptr) {
    w.Key("succeeded").Int(outcome->succeeded).Key("failed").Int(outcome->failed);
    w.Key("canceled").Int(outcome->canceled);
  }
  w.EndObject();
  std::printf("%s\n", w.str().c_str());
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
  const std::string verb = VerbName(action);
  Submitted sub;
  if (plan.requests.empty()) {
    if (a.json) PrintSubmitJson(verb, 0, sub, failures, nullptr);
    return failures > 0 ? kExitFailed : kExitOk;
  }

  CoordinatorClient client(a.coordinator);
  Status st = SubmitAll(client, plan, &sub);
  if (!st.ok()) {
    PrintError(st);
    return ExitCodeFor(st);
  }
  if (!a.wait) {
    if (a.json) {
      PrintSubmitJson(verb, plan.requests.size(), sub, failures, nullptr);
    } else {
      std::printf("%s: %zu requests submitted (%zu already pending)\n", verb.c_str(),
                  plan.requests.size(), sub.merged);
    }
    return failures > 0 ? kExitFailed : kExitOk;
  }
  int exit_code = kExitOk;
  Outcome outcome = FollowRequests(client, action, sub, &exit_code);
  if (a.json) {
    PrintSubmitJson(verb, plan.requests.size(), sub, failures, &outcome);
  } else {
    std::printf("%s: %d succeeded, %d failed, %d canceled\n", verb.c_str(), outcome.succeeded,
                outcome.failed, outcome.canceled);
  }
  failures += outcome.failed + outcome.canceled;
  if (exit_code != kExitOk) return exit_code;
  return failures > 0 ? kExitFailed : kExitOk;
}

// ---- release / state (local) ----

int RunRelease(const ClientArgs& a) {
  int failures = 0;
  WalkResult walk = WalkManaged(a.paths);
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
  if (a.json) {
    JsonWriter w;
    w.BeginObject().Key("released").Int(released).Key("failed").Int(failures).EndObject();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("release: %d released, %d failed\n", released, failures);
  }
  return failures > 0 ? kExitFailed : kExitOk;
}

void PrintState(const LocalFile& f, bool json) {
  const uint32_t states = EffectiveStates(f.state);
  if (json) {
    std::printf("%s\n", FormatStateJson(f.path, f.state, states).c_str());
    return;
  }
  const uint32_t archive_id = f.state.has_record ? f.state.record.archive_id : 0;
  std::printf("%s\n", FormatStateLine(f.path, states, archive_id).c_str());
  std::string err = FormatLastErrorLine(f.path, f.state);
  if (!err.empty()) std::printf("%s\n", err.c_str());
}

// The state bits named in `names` (already split at commas). An unknown name is a usage error.
Result<uint32_t> ParseFlagNames(const std::vector<std::string>& names, const char* option) {
  uint32_t bits = 0;
  for (const std::string& n : names) {
    auto bit = hsm::ParseStateName(n);
    if (!bit) {
      return Status(Code::kInvalidArgument,
                    fmt::format("{}: unknown HSM flag '{}'; the flags are norelease, noarchive and "
                                "dirty",
                                option, n));
    }
    bits |= *bit;
  }
  return bits;
}

// state --set/--clear: lfs hsm_set/hsm_clear. Prints each file's state after the change.
int RunSetFlags(const ClientArgs& a) {
  auto set = ParseFlagNames(a.set_flags, "--set");
  auto clear = ParseFlagNames(a.clear_flags, "--clear");
  for (const auto* r : {&set, &clear}) {
    if (!r->ok()) {
      PrintError(r->status());
      return kExitUsage;
    }
  }
  // Bits a user may never change, or a bit both set and cleared, are refused before any file
  // is touched: from exists|archived every user-settable change is a valid state, so only
  // those rules can fail here.
  const bool admin = ::geteuid() == 0;
  auto allowed = hsm::ApplyUserFlags(hsm::kStateExists | hsm::kStateArchived, *set, *clear, admin);
  if (!allowed.ok()) {
    PrintError(allowed.status());
    return kExitFailed;
  }
  int failures = 0;
  WalkResult walk = WalkManaged(a.paths);
  for (const Status& e : walk.errors) PrintError(e);
  failures += static_cast<int>(walk.errors.size());
  for (const std::string& p : walk.files) {
    Status st = mover::SetHsmFlags(p, *set, *clear, admin);
    if (!st.ok()) {
      PrintError(NameFile(p, st).Annotate("cannot change the HSM flags"));
      ++failures;
      continue;
    }
    auto now = mover::GetFileState(p);
    if (now.ok()) PrintState({p, std::move(now).value()}, a.json);
  }
  return failures > 0 ? kExitFailed : kExitOk;
}

int RunState(const ClientArgs& a) {
  if (!a.set_flags.empty() || !a.clear_flags.empty()) return RunSetFlags(a);
  int failures = 0;
  std::vector<LocalFile> files = LoadFiles(a.paths, &failures);
  for (const LocalFile& f : files) PrintState(f, a.json);
  return failures > 0 ? kExitFailed : kExitOk;
}

// ---- orphans (local) ----

// The archive copies of `a.archive` that no file under `a.fs` refers to in archive id
// `a.archive_id`. Fails if any file could not be examined: it might refer to a listed copy.
int RunOrphans(const OrphanArgs& a) {
  auto backend = mover::PosixBackend::Open({AbsolutePath(a.archive), a.v2});
  if (!backend.ok()) {
    PrintError(backend.status());
    return kExitFailed;
  }
  int failures = 0;
  std::vector<LocalFile> files = LoadFiles({a.fs}, &failures);
  std::set<std::string> referenced;
  for (const LocalFile& f : files) {
    const mover::HsmRecord& r = f.state.record;
    if (f.state.has_record && r.archive_id == a.archive_id && !r.object_ref.empty()) {
      referenced.insert(r.object_ref);
    }
  }
  if (failures > 0) {
    PrintError(
        fmt::format("{} files under {} could not be examined; not listing orphans, since "
                    "one of them may refer to a copy",
                    failures, a.fs));
    return kExitFailed;
  }
  std::vector<std::string> orphans;
  uint64_t copies = 0;
  Status listed = (*backend)->ListObjects([&](const std::string& ref) {
    ++copies;
    if (!referenced.contains(ref)) orphans.push_back(ref);
  });
  if (!listed.ok()) {
    PrintError(listed);
    return kExitFailed;
  }
  std::sort(orphans.begin(), orphans.end());
  auto fid_of = [](const std::string& ref) -> std::string {
    auto fid = hsm::Fid::Parse(ref.substr(ref.rfind('/') + 1));
    return fid.ok() ? fid->ToString() : "";
  };
  if (a.json) {
    JsonWriter w;
    w.BeginObject().Key("fs").String(a.fs).Key("archive").String(a.archive);
    w.Key("archive_id").Uint(a.archive_id).Key("copies").Uint(copies);
    w.Key("orphans").BeginArray();
    for (const std::string& ref : orphans) {
      w.BeginObject().Key("object_ref").String(ref).Key("fid");
      std::string fid = fid_of(ref);
      if (fid.empty()) {
        w.Null();
      } else {
        w.String(fid);
      }
      w.EndObject();
    }
    w.EndArray().EndObject();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  for (const std::string& ref : orphans) {
    std::string fid = fid_of(ref);
    std::printf("%s%s%s\n", ref.c_str(), fid.empty() ? "" : " ", fid.c_str());
  }
  std::printf(
      "orphans: %zu of %llu archive copies in %s are referred to by no file under %s in archive "
      "id %u (copies of files on other filesystems sharing this archive are listed too)\n",
      orphans.size(), static_cast<unsigned long long>(copies), a.archive.c_str(), a.fs.c_str(),
      a.archive_id);
  return kExitOk;
}

// ---- cancel / status / lock ----

int RunCancel(const ClientArgs& a) {
  int failures = 0;
  WalkResult walk = WalkManaged(a.paths);
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
  // The coordinator takes at most 100,000 files per call: send a large tree in parts.
  constexpr int kFilesPerCall = 10000;
  CoordinatorClient client(a.coordinator);
  int canceled = 0, forwarded = 0, recorded = 0;
  for (int start = 0; start < req.files_size(); start += kFilesPerCall) {
    v1::CancelRequest part;
    const int end = std::min(req.files_size(), start + kFilesPerCall);
    for (int i = start; i < end; ++i) *part.add_files() = req.files(i);
    auto reply = client.Cancel(part);
    if (!reply.ok()) {
      PrintError(reply.status());
      return ExitCodeFor(reply.status());
    }
    canceled += reply->canceled_size();
    forwarded += reply->forwarded_size();
    recorded += reply->cancel_requests_size();
  }
  if (a.json) {
    JsonWriter w;
    w.BeginObject().Key("canceled").Int(canceled).Key("forwarded").Int(forwarded);
    w.Key("cancel_requests").Int(recorded).Key("errors").Int(failures).EndObject();
    std::printf("%s\n", w.str().c_str());
  } else if (!req.files().empty()) {
    std::printf(
        "cancel: %d queued requests canceled, %d running ones being stopped by their movers "
        "(%d cancel requests recorded)\n",
        canceled, forwarded, recorded);
  }
  return failures > 0 ? kExitFailed : kExitOk;
}

int RunStatus(const ClientArgs& a, const StatusFilters& f) {
  CoordinatorClient client(a.coordinator);
  v1::StatusRequest req;
  req.set_include_requests(true);
  req.set_limit(a.limit);
  for (v1::Action action : f.actions) req.add_actions(action);
  for (v1::RequestState state : f.states) req.add_states(state);
  req.set_mover(f.mover);
  req.set_tag(f.tag);
  req.set_user(f.user);
  req.set_after_id(f.after);
  const bool after_given = f.after_option != nullptr && f.after_option->count() > 0;
  const bool filtered = !f.actions.empty() || !f.states.empty() || !f.mover.empty() ||
                        !f.tag.empty() || !f.user.empty();
  const bool id_order = filtered || after_given;
  // The coordinator lists in id order when a filter or a start id is given. `--after 0` alone
  // names every state: that asks for the order and filters nothing.
  if (after_given && f.after == 0 && !filtered) {
    for (v1::RequestState s : {v1::QUEUED, v1::ASSIGNED, v1::SUCCEEDED, v1::FAILED, v1::CANCELED}) {
      req.add_states(s);
    }
  }
  auto reply = client.GetStatus(req);
  if (!reply.ok()) {
    PrintError(reply.status());
    return ExitCodeFor(reply.status());
  }
  if (a.json) {
    std::printf("%s\n", FormatStatusJson(*reply).c_str());
  } else {
    std::printf("%s", FormatStatus(*reply, a.coordinator, {id_order, a.limit}).c_str());
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
  if (a.json) {
    JsonWriter w;
    w.BeginObject().Key("coordinator").String(a.coordinator).Key("lock").Uint(l).EndObject();
    std::printf("%s\n", w.str().c_str());
    return kExitOk;
  }
  std::printf("coordinator %s %s\n", a.coordinator.c_str(),
              l < 3 ? kText[l] : fmt::format("lock state {}", l).c_str());
  return kExitOk;
}

int RunDrain(const ClientArgs& a, const std::string& mover, bool undo) {
  CoordinatorClient client(a.coordinator);
  v1::DrainRequest req;
  req.set_mover(mover);
  req.set_undo(undo);
  auto reply = client.Drain(req);
  if (!reply.ok()) {
    PrintError(reply.status());
    return ExitCodeFor(reply.status());
  }
  const v1::MoverInfo& m = reply->mover();
  if (a.json) {
    JsonWriter w;
    w.BeginObject().Key("mover").String(m.id()).Key("draining").Bool(m.draining());
    w.Key("running").Uint(m.running()).EndObject();
    std::printf("%s\n", w.str().c_str());
  } else if (m.draining()) {
    std::printf("mover %s drained: it is given nothing new; it still holds %llu actions\n",
                m.id().c_str(), static_cast<unsigned long long>(m.running()));
  } else {
    std::printf("mover %s undrained: it is given work again\n", m.id().c_str());
  }
  return kExitOk;
}

// The bounds in force for `c.mover` with the ones given replaced. A bound not given keeps its
// current value (read from status just before: a change made by someone else in between is
// overwritten, as with any read-modify-write of an admin setting).
Result<v1::Capacities> NewCapacities(CoordinatorClient& client, const CapacityArgs& c) {
  v1::Capacities caps;
  if (!c.archive || !c.restore || !c.remove || !c.total) {
    auto status = client.GetStatus(v1::StatusRequest());
    if (!status.ok()) return status.status();
    const v1::MoverInfo* found = nullptr;
    for (const v1::MoverInfo& m : status->movers()) {
      if (m.id() == c.mover) found = &m;
    }
    if (found == nullptr) {
      return Status(Code::kNotFound,
                    fmt::format("mover '{}' is not known to the coordinator at {} (it never "
                                "connected); `tierflow status` lists the movers",
                                c.mover, client.address()));
    }
    caps = found->capacities();
  }
  if (c.archive) caps.set_max_archive(*c.archive);
  if (c.restore) caps.set_max_restore(*c.restore);
  if (c.remove) caps.set_max_remove(*c.remove);
  if (c.total) caps.set_max_total(*c.total);
  return caps;
}

int RunCapacity(const ClientArgs& a, const CapacityArgs& c) {
  if (c.reset && (c.archive || c.restore || c.remove || c.total)) {
    PrintError(Status(Code::kInvalidArgument,
                      "--reset goes back to the mover's own capacities; give it alone, or give "
                      "--archive/--restore/--remove/--total without it"));
    return kExitUsage;
  }
  if (!c.reset && !c.archive && !c.restore && !c.remove && !c.total) {
    PrintError(Status(Code::kInvalidArgument,
                      "give the new bounds (--archive, --restore, --remove, --total) or --reset"));
    return kExitUsage;
  }
  CoordinatorClient client(a.coordinator);
  v1::CapacityRequest req;
  req.set_mover(c.mover);
  req.set_reset(c.reset);
  if (!c.reset) {
    auto caps = NewCapacities(client, c);
    if (!caps.ok()) {
      PrintError(caps.status());
      return ExitCodeFor(caps.status());
    }
    *req.mutable_capacities() = *caps;
  }
  auto reply = client.SetCapacity(req);
  if (!reply.ok()) {
    PrintError(reply.status());
    return ExitCodeFor(reply.status());
  }
  if (a.json) {
    std::printf("%s\n", ProtoJson(*reply).c_str());
  } else {
    std::printf("%s", FormatCapacityChange(reply->mover()).c_str());
  }
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

void AddJson(CLI::App* sub, ClientArgs* a) {
  sub->add_flag("--json", a->json, "one JSON document on stdout");
}

// Turns a name given on the command line into its enum value; an unknown name is a usage
// error listing the names ("unknown state 'done'; the states are queued, assigned, ...").
template <typename Enum>
CLI::Validator NamedValue(std::vector<std::pair<std::string, Enum>> names, std::string what) {
  return CLI::Validator(
      [names = std::move(names), what = std::move(what)](std::string& value) -> std::string {
        std::vector<std::string> known;
        for (const auto& [name, e] : names) {
          if (name == value) {
            value = std::to_string(static_cast<int>(e));
            return "";
          }
          known.push_back(name);
        }
        return fmt::format("unknown {} '{}'; the {}s are {}", what, value, what,
                           fmt::join(known, ", "));
      },
      "", "");
}

void AddStatusFilters(CLI::App* sub, StatusFilters* f) {
  auto actions = NamedValue<v1::Action>({{"archive", v1::ARCHIVE},
                                         {"restore", v1::RESTORE},
                                         {"remove", v1::REMOVE},
                                         {"cancel", v1::CANCEL}},
                                        "action");
  auto states = NamedValue<v1::RequestState>({{"queued", v1::QUEUED},
                                              {"assigned", v1::ASSIGNED},
                                              {"succeeded", v1::SUCCEEDED},
                                              {"failed", v1::FAILED},
                                              {"canceled", v1::CANCELED}},
                                             "state");
  sub->add_option("--action", f->actions,
                  "list only requests of this action: archive, restore, remove, cancel "
                  "(repeatable)")
      ->transform(actions)
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--state", f->states,
                  "list only requests in this state: queued, assigned, succeeded, failed, "
                  "canceled (repeatable)")
      ->transform(states)
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--mover", f->mover, "list only requests assigned to (or run by) this mover");
  sub->add_option("--tag", f->tag, "list only requests whose data holds this key=value tag")
      ->check([](const std::string& t) -> std::string {
        size_t eq = t.find('=');
        return eq == std::string::npos || eq == 0 ? "a tag is key=value, e.g. project=climate"
                                                  : "";
      });
  sub->add_option("--user", f->user,
                  "list only requests submitted by this user, or (a number) of files this uid "
                  "owns");
  f->after_option = sub->add_option(
      "--after", f->after,
      "list requests with ids above this one, in id order (the next page of a listing: "
      "status prints 'more: --after N')");
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
  AddJson(sub, a.get());
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
  AddJson(r, rel.get());
  AddPaths(r, rel.get());
  commands->push_back({r, [rel] { return RunRelease(*rel); }});

  auto can = std::make_shared<ClientArgs>();
  CLI::App* c = app.add_subcommand("cancel", "cancel the pending requests of files");
  AddCoordinatorOption(c, can.get());
  AddJson(c, can.get());
  AddPaths(c, can.get());
  commands->push_back({c, [can] { return RunCancel(*can); }});

  auto sta = std::make_shared<ClientArgs>();
  CLI::App* s = app.add_subcommand("state", "show (or set) the HSM state of files (local)");
  s->add_flag("--json", sta->json, "one JSON object per file and line");
  s->add_option("--set", sta->set_flags,
                "set flags (lfs hsm_set): norelease, noarchive, dirty; comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  s->add_option("--clear", sta->clear_flags, "clear flags (lfs hsm_clear); comma-separated")
      ->delimiter(',')
      ->allow_extra_args(false);
  AddUnusedCoordinatorOption(s, sta.get());
  AddPaths(s, sta.get());
  commands->push_back({s, [sta] { return RunState(*sta); }});

  auto orp = std::make_shared<OrphanArgs>();
  CLI::App* o = app.add_subcommand(
      "orphans", "list archive copies that no file of a filesystem refers to (local)");
  o->add_option("--fs", orp->fs, "mount point (or directory) whose files are walked")
      ->required()
      ->check(CLI::ExistingDirectory);
  o->add_option("--archive", orp->archive, "root of the posix archive")
      ->required()
      ->check(CLI::ExistingDirectory);
  o->add_flag("--v2", orp->v2, "the archive uses lhsmtool_posix v2 paths");
  o->add_option("--archive-id", orp->archive_id, "archive id the archive serves")
      ->capture_default_str()
      ->check(CLI::Range(1u, std::numeric_limits<uint32_t>::max()));
  o->add_flag("--json", orp->json, "one JSON document");
  commands->push_back({o, [orp] { return RunOrphans(*orp); }});

  auto stu = std::make_shared<ClientArgs>();
  auto stf = std::make_shared<StatusFilters>();
  CLI::App* st = app.add_subcommand("status", "show the coordinator's queues, movers and warnings");
  AddCoordinatorOption(st, stu.get());
  st->add_flag("--json", stu->json, "one JSON document");
  st->add_option("--limit", stu->limit, "at most this many requests listed")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  AddStatusFilters(st, stf.get());
  commands->push_back({st, [stu, stf] { return RunStatus(*stu, *stf); }});

  auto lk = std::make_shared<ClientArgs>();
  CLI::App* l = app.add_subcommand("lock", "stop dispatching (requests are still accepted)");
  AddCoordinatorOption(l, lk.get());
  l->add_flag("--quit", lk->quit, "let running actions finish, then stop the coordinator");
  AddJson(l, lk.get());
  commands->push_back({l, [lk] { return RunLock(*lk, lk->quit ? 2 : 1); }});

  auto dr = std::make_shared<ClientArgs>();
  auto dr_mover = std::make_shared<std::string>();
  auto dr_undo = std::make_shared<bool>(false);
  CLI::App* d = app.add_subcommand(
      "drain", "give one mover nothing new (it finishes what it holds); journaled");
  AddCoordinatorOption(d, dr.get());
  d->add_option("mover", *dr_mover, "mover id, as `tierflow status` lists it")->required();
  d->add_flag("--undo", *dr_undo, "give the mover work again");
  d->add_flag("--json", dr->json, "one JSON document");
  commands->push_back({d, [dr, dr_mover, dr_undo] { return RunDrain(*dr, *dr_mover, *dr_undo); }});

  auto ul = std::make_shared<ClientArgs>();
  CLI::App* u = app.add_subcommand("unlock", "resume dispatching");
  AddCoordinatorOption(u, ul.get());
  AddJson(u, ul.get());
  commands->push_back({u, [ul] { return RunLock(*ul, 0); }});

  auto ca = std::make_shared<ClientArgs>();
  auto cap = std::make_shared<CapacityArgs>();
  CLI::App* k = app.add_subcommand(
      "capacity",
      "change how many actions the coordinator gives one mover, while it runs; journaled, and "
      "kept over the mover's reconnects until --reset");
  AddCoordinatorOption(k, ca.get());
  k->add_option("mover", cap->mover, "mover id, as `tierflow status` lists it")->required();
  const auto bound = CLI::Range(-1, std::numeric_limits<int32_t>::max());
  k->add_option("--archive", cap->archive, "concurrent archives (-1 unlimited, 0 none)")
      ->check(bound);
  k->add_option("--restore", cap->restore, "concurrent restores (-1 unlimited, 0 none)")
      ->check(bound);
  k->add_option("--remove", cap->remove, "concurrent removes (-1 unlimited, 0 none)")
      ->check(bound);
  k->add_option("--total", cap->total, "actions of any kind at once (0: only the per-kind bounds)")
      ->check(CLI::Range(0u, std::numeric_limits<uint32_t>::max()));
  k->add_flag("--reset", cap->reset, "go back to the capacities the mover itself announced");
  AddJson(k, ca.get());
  commands->push_back({k, [ca, cap] { return RunCapacity(*ca, *cap); }});
}

}  // namespace tierflow::cli
