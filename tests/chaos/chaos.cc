// tierflow_chaos: a coordinator and two movers as real processes on loopback, a seeded workload
// of archive -> release -> restore -> remove cycles over a few thousand files, and kill -9 of
// the coordinator (and now and then of a mover) at seeded moments, counted in acknowledged
// requests so that a seed replays the same workload and failure schedule. At the end every
// acknowledged request must have reached a final state exactly once, and the files and the
// archive must match the driver's model. The last line is the summary; any lost or duplicated
// request, or any mismatch, makes the exit status 1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "action_log.h"
#include "chaos_client.h"
#include "child_process.h"
#include "hsm/hsm_state.h"
#include "mover/fs/local_fs.h"
#include "verify.h"
#include "wire/convert.h"

namespace tierflow::chaos {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  uint64_t seed = 0;
  uint64_t requests = 5000;
  int coordinator_kills = 5;
  int mover_kills = 1;
  int files = 3000;
  std::string workdir;  // default: a fresh directory under /tmp
  bool keep = false;
  int batch = 64;             // requests per Submit
  int max_streams = 48;       // batches followed at once
  double cancel_percent = 3;  // of requests, canceled at once or once assigned
  int64_t drain_timeout_s = 180;
  // Also fail on actions run again after a mover was killed between finishing an action and
  // the coordinator acknowledging its result (a mover keeps that state in memory only).
  bool strict = false;
};

// A file's place in its cycle: plain -> archived -> (released ->) archived -> plain.
enum class Phase { kPlain, kArchived, kReleased };

const char* PhaseName(Phase p) {
  return p == Phase::kPlain ? "plain" : p == Phase::kArchived ? "archived" : "released";
}

struct File {
  std::string path;
  hsm::FileId id;
  Phase phase = Phase::kPlain;
  uint64_t hash = 0;
  std::mt19937_64 rng;  // this file's own decisions: same seed, same sequence per file
  bool lost_request = false;
};

enum CancelMode { kNoCancel, kCancelAtOnce, kCancelWhenAssigned };

struct Pending {
  size_t file = 0;
  v1::Action action = v1::ACTION_UNSPECIFIED;
};

// Local work on a file before its request is submitted.
struct Prep {
  enum Kind { kNone, kRewrite, kRelease } kind = kNone;
  uint64_t size = 0, seed = 0;  // kRewrite: new content from this seed
  uint64_t hash = 0;            // kRewrite: its hash, once written
  std::string release_error;    // kRelease: why it failed (the request became a REMOVE)
};

struct Batch {
  v1::SubmitRequest request;
  std::vector<size_t> files;
  std::vector<CancelMode> modes;
  std::vector<Prep> prep;
};

// What a follower thread saw: its batch acknowledged (accepted set), or one request final or
// unknown. Events of one batch arrive in that order.
struct Outcome {
  std::shared_ptr<Batch> accepted;
  v1::SubmitReply reply;
  uint64_t id = 0;
  bool unknown = false;  // the coordinator does not know it: lost
  std::string why;
  v1::RequestInfo info;
};

// Writes `size` seeded random bytes to `path` (truncating it); returns their hash.
uint64_t WriteRandomFile(const std::string& path, uint64_t size, std::mt19937_64& rng) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; i += 8) {
    uint64_t v = rng();
    std::memcpy(&data[i], &v, std::min<size_t>(8, size - i));
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data.data() + done, size - done);
    if (n <= 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return XXH3_64bits(data.data(), data.size());
}

uint64_t RandomSize(std::mt19937_64& rng) {
  if (rng() % 100 == 0) return (256 << 10) + rng() % (4 << 20);  // a few larger files
  return rng() % ((64 << 10) + 1);
}

// The option text of `tierflow SUBCOMMAND --help`, to use options only where the build has them.
std::string HelpOf(const std::string& subcommand) {
  std::string cmd = std::string(TIERFLOW_BINARY) + " " + subcommand + " --help 2>&1";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// The last `lines` lines of a log, indented, for error messages.
std::string LogTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> tail;
  for (std::string l; std::getline(in, l);) {
    tail.push_back(std::move(l));
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += "\n    " + l;
  return out;
}

class Driver {
 public:
  explicit Driver(Options o) : o_(std::move(o)) {}
  int Run();

 private:
  void SetUpDirectories();
  void CreateFiles();
  void StartCluster();
  void WaitForMovers();
  void RunWorkload();
  bool WantBatch(SteadyClock::time_point last_submit) const;
  void Drain();
  v1::Action NextAction(File& f, Prep* prep);
  void Prepare(Batch& batch);
  void SubmitBatch();
  void FollowBatch(int slot, std::shared_ptr<Batch> batch);
  void Accept(const Batch& batch, const v1::SubmitReply& reply);
  Status FollowRequests(const std::vector<uint64_t>& ids, const std::vector<uint64_t>& at_once,
                        std::set<uint64_t> when_assigned);
  void Cancel(const std::vector<uint64_t>& ids, std::vector<uint64_t>* records);
  void ApplyOutcomes(std::deque<Outcome> outcomes);
  void Apply(const Outcome& o);
  Result<Phase> ReadPhase(const File& f);
  void InjectCrashes();
  void KillCoordinator();
  void KillMover(size_t i);
  void CheckChildren();
  void ReapFollowers(bool all);
  void Fatal(const std::string& why);
  void Finish();
  void CheckFinalStatesKept();
  void Progress(bool force);
  void Problem(std::vector<std::string>* list, const std::string& what);
  std::string MoverLog(size_t i, int incarnation) const;

  Options o_;
  std::string work_, fs_, archive_, state_, logs_, address_;
  bool have_action_log_ = false;
  std::vector<std::string> coordinator_extra_;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::string> mover_ids_ = {"m1", "m2"};
  std::vector<std::unique_ptr<ChildProcess>> movers_;
  std::vector<int> mover_starts_;
  std::unique_ptr<ChaosClient> client_;

  std::mt19937_64 rng_;  // kill schedule, batch order
  std::vector<uint64_t> coordinator_kill_at_, mover_kill_at_;
  size_t next_coordinator_kill_ = 0, next_mover_kill_ = 0;

  std::vector<File> files_;
  std::deque<size_t> ready_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::vector<uint64_t> succeeded_ids_;
  std::map<uint64_t, v1::Action> succeeded_action_;
  std::unordered_map<uint64_t, v1::RequestState> final_state_;  // as first reported
  std::set<uint64_t> lost_ids_;
  uint64_t batches_ = 0;
  uint64_t in_transit_ = 0;  // requests in Submits not answered yet

  // Shared with the follower threads.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Outcome> outcomes_;
  std::map<int, std::thread> followers_;
  std::vector<int> finished_followers_;
  int next_slot_ = 0;
  std::string fatal_;
  std::atomic<bool> stop_{false};
  std::atomic<int> active_streams_{0};
  std::atomic<uint64_t> canceled_at_once_{0}, cancels_forwarded_{0}, cancel_records_{0},
      cancel_records_final_{0}, cancel_errors_{0};
  std::vector<std::string> cancel_record_problems_;

  // Figures.
  uint64_t submitted_ = 0, completed_ = 0, succeeded_ = 0, failed_ = 0, canceled_ = 0;
  uint64_t lost_ = 0, duplicated_ = 0, rerun_after_mover_kill_ = 0, merged_ = 0,
           release_failures_ = 0, rewrites_ = 0;
  int coordinator_kills_ = 0, mover_kills_ = 0;
  uint64_t files_verified_ = 0;
  uint64_t requests_listed_ = 0;  // by State at the end, for the final-state check
  std::vector<std::string> lost_list_, mismatches_, duplicates_, reruns_, failures_, notes_;
  SteadyClock::time_point start_ = SteadyClock::now(), last_progress_ = SteadyClock::now();
};

void Driver::Problem(std::vector<std::string>* list, const std::string& what) {
  list->push_back(what);
  if (list->size() <= 5) std::fprintf(stderr, "chaos: %s\n", what.c_str());
}

void Driver::SetUpDirectories() {
  if (o_.workdir.empty()) {
    char tmpl[] = "/tmp/tierflow-chaos-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("cannot create a directory under /tmp");
    work_ = tmpl;
  } else {
    work_ = fs::absolute(o_.workdir).string();
    if (fs::exists(work_) && !fs::is_empty(work_)) {
      throw std::runtime_error("--workdir " + work_ + " is not empty; give a new or empty one");
    }
  }
  fs_ = work_ + "/fs";
  archive_ = work_ + "/archive";
  state_ = work_ + "/state";
  logs_ = work_ + "/logs";
  for (const auto& d : {fs_, archive_, state_, logs_}) fs::create_directories(d);
}

void Driver::CreateFiles() {
  files_.resize(static_cast<size_t>(o_.files));
  for (size_t i = 0; i < files_.size(); ++i) {
    File& f = files_[i];
    f.rng.seed(o_.seed * 1'000'003 + i);
    const std::string dir = fmt::format("{}/d{:02}", fs_, i % 64);
    fs::create_directories(dir);
    f.path = fmt::format("{}/f{:05}", dir, i);
    f.hash = WriteRandomFile(f.path, RandomSize(f.rng), f.rng);
    auto id = mover::IdentifyFile(f.path);
    if (!id.ok()) throw std::runtime_error(id.status().ToString());
    f.id = *id;
    ready_.push_back(i);
  }
  std::shuffle(ready_.begin(), ready_.end(), rng_);
}

std::string Driver::MoverLog(size_t i, int incarnation) const {
  return fmt::format("{}/actions-{}.{}.log", logs_, mover_ids_[i], incarnation);
}

void Driver::StartCluster() {
  const std::string coord_help = HelpOf("coordinator");
  if (coord_help.find("--final-grace") != std::string::npos) {
    coordinator_extra_.insert(coordinator_extra_.end(), {"--final-grace", "3600"});
  }
  if (coord_help.find("--mover-grace") != std::string::npos) {
    coordinator_extra_.insert(coordinator_extra_.end(), {"--mover-grace", "2"});
  }
  have_action_log_ = HelpOf("mover").find("--action-log") != std::string::npos;
  if (!have_action_log_) {
    notes_.push_back("this tierflow has no 'mover --action-log': duplicates are not counted");
  }
  // A free port: bind port 0, read it, close. Reused at every restart.
  address_ = "127.0.0.1:" + std::to_string([] {
               int fd = ::socket(AF_INET, SOCK_STREAM, 0);
               sockaddr_in a{};
               a.sin_family = AF_INET;
               a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
               ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
               socklen_t len = sizeof a;
               ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
               ::close(fd);
               return ntohs(a.sin_port);
             }());
  std::vector<std::string> argv = {TIERFLOW_BINARY, "coordinator", "--listen",
                                   address_,        "--state",     state_};
  argv.insert(argv.end(), coordinator_extra_.begin(), coordinator_extra_.end());
  coordinator_ = std::make_unique<ChildProcess>(argv, logs_ + "/coordinator.log");
  coordinator_->Start();
  client_ = std::make_unique<ChaosClient>(address_, 120'000);
  const auto deadline = SteadyClock::now() + std::chrono::seconds(60);
  while (!client_->Answers(200)) {
    CheckChildren();
    if (SteadyClock::now() > deadline) {
      throw std::runtime_error("the coordinator did not answer within 60 s; see " +
                               coordinator_->log_path());
    }
  }
  for (size_t i = 0; i < mover_ids_.size(); ++i) {
    mover_starts_.push_back(0);
    movers_.push_back(nullptr);
    KillMover(i);  // starts it: nothing to kill yet
  }
  WaitForMovers();
}

void Driver::WaitForMovers() {
  const auto deadline = SteadyClock::now() + std::chrono::seconds(60);
  while (SteadyClock::now() < deadline) {
    auto st = client_->GetStatus();
    if (st.ok()) {
      size_t connected = 0;
      for (const auto& m : st->movers()) connected += m.connected() ? 1 : 0;
      if (connected == mover_ids_.size()) return;
    }
    CheckChildren();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling interval
  }
  throw std::runtime_error("the movers did not connect within 60 s; see " + logs_);
}

void Driver::KillCoordinator() {
  coordinator_->Kill();
  coordinator_->Start();  // on the same state directory and address, at once
  ++coordinator_kills_;
  std::fprintf(stderr, "chaos: kill -9 coordinator #%d at %llu acknowledged requests\n",
               coordinator_kills_, static_cast<unsigned long long>(submitted_));
}

// Kills (if running) and starts mover i with the same --id; its action log is a new file per
// incarnation so that a line cut by the kill stays visible as such.
void Driver::KillMover(size_t i) {
  if (movers_[i]) {
    movers_[i]->Kill();
    ++mover_kills_;
    std::fprintf(stderr, "chaos: kill -9 mover %s at %llu acknowledged requests\n",
                 mover_ids_[i].c_str(), static_cast<unsigned long long>(submitted_));
  }
  const int n = ++mover_starts_[i];
  std::vector<std::string> argv = {TIERFLOW_BINARY, "mover",       "--coordinator", address_,
                                   "--id",          mover_ids_[i], "--archive-id",  "1",
                                   "--posix-root",  archive_,      "--max-archive", "8",
                                   "--max-restore", "8",           "--max-remove",  "8"};
  if (have_action_log_) argv.insert(argv.end(), {"--action-log", MoverLog(i, n)});
  movers_[i] = std::make_unique<ChildProcess>(argv, logs_ + "/mover-" + mover_ids_[i] + ".log");
  movers_[i]->Start();
}

void Driver::CheckChildren() {
  if (!coordinator_->Running()) {
    throw std::runtime_error("the coordinator " + coordinator_->ExitDescription() +
                             " without being killed; see " + coordinator_->log_path() +
                             LogTail(coordinator_->log_path(), 10));
  }
  for (auto& m : movers_) {
    if (m && !m->Running()) {
      throw std::runtime_error("a mover " + m->ExitDescription() + " without being killed; see " +
                               m->log_path() + LogTail(m->log_path(), 10));
    }
  }
}

void Driver::Fatal(const std::string& why) {
  std::lock_guard lk(mu_);
  if (fatal_.empty()) fatal_ = why;
  stop_ = true;
  cv_.notify_all();
}

// The next request for a file, from its phase and its own random sequence. The local work it
// needs first (a rewrite of a file not archived; a release, which is local: the driver punches
// the file itself, as `tierflow release` does) is left to the follower thread, in *prep.
v1::Action Driver::NextAction(File& f, Prep* prep) {
  switch (f.phase) {
    case Phase::kPlain:
      if (f.rng() % 100 < 20) {
        prep->kind = Prep::kRewrite;
        prep->size = RandomSize(f.rng);
        prep->seed = f.rng();
      }
      return v1::ARCHIVE;
    case Phase::kArchived:
      if (f.rng() % 100 < 55) {
        prep->kind = Prep::kRelease;
        return v1::RESTORE;
      }
      return v1::REMOVE;
    case Phase::kReleased:
      return v1::RESTORE;
  }
  return v1::ARCHIVE;
}

// Runs on the follower thread before the Submit. A release that fails turns its restore into
// a remove (and is counted).
void Driver::Prepare(Batch& batch) {
  for (size_t k = 0; k < batch.files.size(); ++k) {
    Prep& p = batch.prep[k];
    const std::string& path = files_[batch.files[k]].path;  // paths never change
    if (p.kind == Prep::kRewrite) {
      std::mt19937_64 rng(p.seed);
      p.hash = WriteRandomFile(path, p.size, rng);
    } else if (p.kind == Prep::kRelease) {
      Status st = mover::ReleaseFile(path);
      if (!st.ok()) {
        p.release_error = st.ToString();
        batch.request.mutable_requests(static_cast<int>(k))->set_action(v1::REMOVE);
      }
    }
  }
}

// Takes up to --batch ready files, decides their next requests and hands the Submit to a
// follower thread: several Submits are in flight at once, as from many clients.
void Driver::SubmitBatch() {
  auto batch = std::make_shared<Batch>();
  batch->request.set_idempotency_key(fmt::format("chaos-{}-{}", o_.seed, batches_++));
  const uint64_t cut = static_cast<uint64_t>(o_.cancel_percent * 100);
  while (!ready_.empty() && batch->files.size() < static_cast<size_t>(o_.batch) &&
         submitted_ + in_transit_ < o_.requests) {
    const size_t i = ready_.front();
    ready_.pop_front();
    File& f = files_[i];
    v1::RequestSpec* spec = batch->request.add_requests();
    spec->set_action(NextAction(f, &batch->prep.emplace_back()));
    wire::FileRefToProto(f.id, f.path, spec->mutable_file());
    spec->set_user("chaos");
    const uint64_t roll = f.rng() % 10000;
    batch->modes.push_back(roll >= cut     ? kNoCancel
                           : roll % 2 == 1 ? kCancelAtOnce
                                           : kCancelWhenAssigned);
    batch->files.push_back(i);
    ++in_transit_;
  }
  std::lock_guard lk(mu_);
  const int slot = next_slot_++;
  ++active_streams_;
  followers_.emplace(slot, std::thread(&Driver::FollowBatch, this, slot, std::move(batch)));
}

// A batch's Submit was answered: its requests are acknowledged.
void Driver::Accept(const Batch& batch, const v1::SubmitReply& reply) {
  in_transit_ -= batch.files.size();
  for (size_t k = 0; k < batch.files.size(); ++k) {
    const Prep& p = batch.prep[k];
    if (p.kind == Prep::kRewrite) {
      files_[batch.files[k]].hash = p.hash;
      ++rewrites_;
    }
    if (!p.release_error.empty()) {
      ++release_failures_;
      Problem(&notes_, "release failed: " + p.release_error);
    }
  }
  for (int k = 0; k < reply.accepted_size(); ++k) {
    const v1::Accepted& a = reply.accepted(k);
    if (a.merged() || pending_.count(a.id())) {
      ++merged_;
      Problem(&mismatches_, fmt::format("request {} for {} was merged into a pending request, but "
                                        "the driver had none pending for that file",
                                        a.id(), files_[batch.files[k]].path));
      continue;
    }
    pending_[a.id()] = {batch.files[k], batch.request.requests(k).action()};
    ++submitted_;
  }
  InjectCrashes();
}

// Cancels `ids` (retried through restarts); records the CANCEL requests the coordinator made.
void Driver::Cancel(const std::vector<uint64_t>& ids, std::vector<uint64_t>* records) {
  v1::CancelRequest req;
  for (uint64_t id : ids) req.add_ids(id);
  auto reply = client_->Cancel(req);
  if (!reply.ok()) {
    // An unknown id shows up as lost when followed; anything else is only noted.
    if (reply.status().code() != Code::kNotFound) ++cancel_errors_;
    return;
  }
  canceled_at_once_ += reply->canceled_size();
  cancels_forwarded_ += reply->forwarded_size();
  for (uint64_t r : reply->cancel_requests()) records->push_back(r);
}

void Driver::FollowBatch(int slot, std::shared_ptr<Batch> batch) {
  std::vector<uint64_t> ids, at_once, records;
  std::set<uint64_t> when_assigned;
  Prepare(*batch);
  auto reply = client_->Submit(batch->request);
  Status st = reply.ok() ? Status::Ok() : reply.status();
  if (st.ok() && reply->accepted_size() != batch->request.requests_size()) {
    st = Status(Code::kInternal,
                fmt::format("a Submit of {} requests was answered with {} ids",
                            batch->request.requests_size(), reply->accepted_size()));
  }
  if (st.ok()) {
    for (int k = 0; k < reply->accepted_size(); ++k) {
      const uint64_t id = reply->accepted(k).id();
      ids.push_back(id);
      if (batch->modes[k] == kCancelAtOnce) at_once.push_back(id);
      if (batch->modes[k] == kCancelWhenAssigned) when_assigned.insert(id);
    }
    std::lock_guard lk(mu_);
    Outcome accepted;
    accepted.accepted = batch;
    accepted.reply = *reply;
    outcomes_.push_back(std::move(accepted));
    cv_.notify_all();
  }
  if (st.ok()) st = FollowRequests(ids, at_once, when_assigned);
  if (!st.ok() && st.code() != Code::kCanceled) Fatal(st.ToString());
  std::lock_guard lk(mu_);
  --active_streams_;
  finished_followers_.push_back(slot);
  cv_.notify_all();
}

// Follows acknowledged requests to their final states, canceling some at once and some once
// assigned, then follows the CANCEL requests those cancels recorded.
Status Driver::FollowRequests(const std::vector<uint64_t>& ids,
                              const std::vector<uint64_t>& at_once,
                              std::set<uint64_t> when_assigned) {
  std::vector<uint64_t> records;
  if (!at_once.empty()) Cancel(at_once, &records);
  auto on_update = [&](const v1::RequestInfo& r) {
    if (IsFinal(r.state())) {
      Outcome o;
      o.id = r.id();
      o.info = r;
      std::lock_guard lk(mu_);
      outcomes_.push_back(std::move(o));
      cv_.notify_all();
    } else if (r.state() == v1::ASSIGNED && when_assigned.erase(r.id())) {
      Cancel({r.id()}, &records);
    }
  };
  auto on_unknown = [&](uint64_t id, const std::string& why) {
    Outcome o;
    o.id = id;
    o.unknown = true;
    o.why = why;
    std::lock_guard lk(mu_);
    outcomes_.push_back(std::move(o));
    cv_.notify_all();
  };
  TF_RETURN_IF_ERROR(client_->Follow(ids, on_update, on_unknown, &stop_));
  if (records.empty()) return Status::Ok();
  cancel_records_ += records.size();
  return client_->Follow(
      records,
      [&](const v1::RequestInfo& r) {
        // SUCCEEDED, or FAILED when its target ended before the cancel reached it.
        if (IsFinal(r.state())) ++cancel_records_final_;
      },
      [&](uint64_t id, const std::string& why) {
        std::lock_guard lk(mu_);
        cancel_record_problems_.push_back(fmt::format("CANCEL request {} lost: {}", id, why));
      },
      &stop_);
}

void Driver::ReapFollowers(bool all) {
  std::vector<std::thread> done;
  {
    std::lock_guard lk(mu_);
    for (int slot : finished_followers_) {
      done.push_back(std::move(followers_[slot]));
      followers_.erase(slot);
    }
    finished_followers_.clear();
    if (all) {
      for (auto& [slot, t] : followers_) done.push_back(std::move(t));
      followers_.clear();
    }
  }
  for (auto& t : done) t.join();
}

Result<Phase> Driver::ReadPhase(const File& f) {
  auto st = mover::GetFileState(f.path);
  if (!st.ok()) return st.status();
  const uint32_t s = st->has_record ? st->record.states : 0;
  if (!(s & hsm::kStateArchived)) {
    if (s & hsm::kStateReleased) {
      return Status(Code::kCorrupt, fmt::format("HSM state {:#x}: released but not archived", s));
    }
    return Phase::kPlain;
  }
  if (s & (hsm::kStateDirty | hsm::kStateLost)) {
    return Status(Code::kCorrupt, fmt::format("HSM state {:#x}: dirty or lost", s));
  }
  return (s & hsm::kStateReleased) ? Phase::kReleased : Phase::kArchived;
}

void Driver::Apply(const Outcome& o) {
  if (o.accepted) return Accept(*o.accepted, o.reply);
  auto it = pending_.find(o.id);
  if (it == pending_.end()) {
    Problem(&mismatches_, fmt::format("request {} reported final twice or never submitted", o.id));
    return;
  }
  const Pending p = it->second;
  pending_.erase(it);
  File& f = files_[p.file];
  ready_.push_back(p.file);
  if (o.unknown) {
    ++lost_;
    lost_ids_.insert(o.id);
    f.lost_request = true;
    Problem(&lost_list_, fmt::format("request {} ({} of {}) lost: {}", o.id,
                                     v1::Action_Name(p.action), f.path, o.why));
    auto now = ReadPhase(f);
    if (now.ok()) f.phase = *now;
    return;
  }
  ++completed_;
  const v1::RequestInfo& r = o.info;
  final_state_[o.id] = r.state();
  if (r.state() == v1::SUCCEEDED) ++succeeded_;
  if (r.state() == v1::CANCELED) ++canceled_;
  if (r.state() == v1::FAILED) {
    ++failed_;
    Problem(&failures_, fmt::format("request {} ({} of {}) failed: {} {}", o.id,
                                    v1::Action_Name(p.action), f.path, r.error_code(), r.error()));
  }
  auto now = ReadPhase(f);
  if (!now.ok()) {
    Problem(&mismatches_,
            fmt::format("after request {} ({} {}): {}: {}", o.id, v1::Action_Name(p.action),
                        v1::RequestState_Name(r.state()), f.path, now.status().ToString()));
    return;
  }
  if (r.state() == v1::SUCCEEDED) {
    succeeded_action_[o.id] = p.action;
    const Phase want = p.action == v1::REMOVE ? Phase::kPlain : Phase::kArchived;
    if (*now != want) {
      Problem(&mismatches_, fmt::format("request {} ({} of {}) succeeded, but the file is {} "
                                        "(expected {})",
                                        o.id, v1::Action_Name(p.action), f.path, PhaseName(*now),
                                        PhaseName(want)));
    } else if (p.action == v1::RESTORE) {
      auto h = HashFile(f.path);
      if (!h.ok() || *h != f.hash) {
        Problem(&mismatches_,
                fmt::format("request {} restored {} with the wrong data ({})", o.id, f.path,
                            h.ok() ? fmt::format("hash {:016x}, expected {:016x}", *h, f.hash)
                                   : h.status().ToString()));
      }
    }
  }
  f.phase = *now;
}

void Driver::ApplyOutcomes(std::deque<Outcome> outcomes) {
  for (const Outcome& o : outcomes) Apply(o);
}

void Driver::InjectCrashes() {
  while (next_coordinator_kill_ < coordinator_kill_at_.size() &&
         submitted_ >= coordinator_kill_at_[next_coordinator_kill_]) {
    ++next_coordinator_kill_;
    KillCoordinator();
  }
  while (next_mover_kill_ < mover_kill_at_.size() &&
         submitted_ >= mover_kill_at_[next_mover_kill_]) {
    ++next_mover_kill_;
    KillMover(rng_() % movers_.size());
  }
}

void Driver::Progress(bool force) {
  const auto now = SteadyClock::now();
  if (!force && now - last_progress_ < std::chrono::seconds(10)) return;
  last_progress_ = now;
  std::fprintf(stderr,
               "chaos: %.0f s: %llu acknowledged, %llu completed, %zu in flight, %d/%d "
               "coordinator kills, %d/%d mover kills\n",
               std::chrono::duration<double>(now - start_).count(),
               static_cast<unsigned long long>(submitted_),
               static_cast<unsigned long long>(completed_), pending_.size(), coordinator_kills_,
               o_.coordinator_kills, mover_kills_, o_.mover_kills);
}

// Whether to send a batch now: a full one, or whatever is ready once 20 ms passed since the
// last, while requests remain to submit and a follower is free.
bool Driver::WantBatch(SteadyClock::time_point last_submit) const {
  if (ready_.empty() || submitted_ + in_transit_ >= o_.requests) return false;
  if (active_streams_ >= o_.max_streams) return false;
  return ready_.size() >= static_cast<size_t>(o_.batch) ||
         SteadyClock::now() - last_submit > std::chrono::milliseconds(20);
}

void Driver::RunWorkload() {
  auto last_submit = SteadyClock::now();
  while (submitted_ < o_.requests) {
    std::deque<Outcome> got;
    {
      std::unique_lock lk(mu_);
      if (!fatal_.empty()) throw std::runtime_error(fatal_);
      if (outcomes_.empty() && !WantBatch(last_submit)) {
        cv_.wait_for(lk, std::chrono::milliseconds(5));
      }
      got.swap(outcomes_);
    }
    ApplyOutcomes(std::move(got));
    ReapFollowers(false);
    CheckChildren();
    Progress(false);
    if (WantBatch(last_submit)) {
      SubmitBatch();
      last_submit = SteadyClock::now();
    }
  }
}

// Waits until every acknowledged request is final; requests still open after drain_timeout_s
// without any progress are lost.
void Driver::Drain() {
  auto last_change = SteadyClock::now();
  while (!pending_.empty()) {
    std::deque<Outcome> got;
    {
      std::unique_lock lk(mu_);
      if (!fatal_.empty()) throw std::runtime_error(fatal_);
      cv_.wait_for(lk, std::chrono::milliseconds(100), [&] { return !outcomes_.empty(); });
      got.swap(outcomes_);
    }
    if (!got.empty()) last_change = SteadyClock::now();
    ApplyOutcomes(std::move(got));
    ReapFollowers(false);
    CheckChildren();
    Progress(false);
    if (SteadyClock::now() - last_change > std::chrono::seconds(o_.drain_timeout_s)) {
      for (auto& [id, p] : pending_) {
        ++lost_;
        lost_ids_.insert(id);
        files_[p.file].lost_request = true;
        Problem(&lost_list_, fmt::format("request {} ({} of {}) never reached a final state", id,
                                         v1::Action_Name(p.action), files_[p.file].path));
      }
      pending_.clear();
    }
  }
  // Followers may still be following the CANCEL requests their cancels recorded.
  {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, std::chrono::seconds(o_.drain_timeout_s),
                 [&] { return active_streams_ == 0 || !fatal_.empty(); });
  }
  stop_ = true;
  ReapFollowers(true);
  std::deque<Outcome> late;
  {
    std::lock_guard lk(mu_);
    late.swap(outcomes_);
  }
  for (const Outcome& o : late) {
    Problem(&mismatches_, fmt::format("request {} reported after the drain", o.id));
  }
}

// Every request the coordinator still lists for the workload's files must be one the driver was
// answered for, in the final state first reported: a final state is never taken back, and no
// request exists that a Submit retried through a crash created a second time.
void Driver::CheckFinalStatesKept() {
  const size_t kChunk = 200;
  for (size_t i = 0; i < files_.size(); i += kChunk) {
    v1::StateRequest req;
    for (size_t k = i; k < std::min(files_.size(), i + kChunk); ++k) {
      wire::FileRefToProto(files_[k].id, files_[k].path, req.add_files());
    }
    auto reply = client_->State(req);
    if (!reply.ok()) {
      Problem(&mismatches_, "cannot list the requests of the files: " + reply.status().ToString());
      return;
    }
    for (const v1::RequestInfo& r : reply->requests()) {
      ++requests_listed_;
      if (r.action() == v1::CANCEL) continue;
      auto it = final_state_.find(r.id());
      if (it == final_state_.end()) {
        if (!lost_ids_.count(r.id())) {
          Problem(&mismatches_, fmt::format("the coordinator lists request {} ({} of {}, {}), "
                                            "which no Submit answered",
                                            r.id(), v1::Action_Name(r.action()), r.file().path(),
                                            v1::RequestState_Name(r.state())));
        }
      } else if (it->second != r.state()) {
        Problem(&mismatches_,
                fmt::format("request {} was reported {}, the coordinator now says {}", r.id(),
                            v1::RequestState_Name(it->second), v1::RequestState_Name(r.state())));
      }
    }
  }
}

void Driver::Finish() {
  // Duplicates: more than one success line per request; successes without any line.
  if (have_action_log_) {
    std::vector<std::string> paths;
    for (size_t i = 0; i < movers_.size(); ++i) {
      for (int n = 1; n <= mover_starts_[i]; ++n) paths.push_back(MoverLog(i, n));
    }
    ActionLog log = ReadActionLogs(paths);
    for (const std::string& m : log.malformed) Problem(&notes_, "malformed action log line " + m);
    // The logs of mover incarnations that were killed: a success logged there may not have
    // reached the coordinator, which then rightly gives the action out again.
    std::set<std::string> killed_logs;
    for (size_t i = 0; i < movers_.size(); ++i) {
      for (int n = 1; n < mover_starts_[i]; ++n) killed_logs.insert(MoverLog(i, n));
    }
    for (auto& [id, lines] : log.successes) {
      if (lines.size() < 2) continue;
      std::sort(lines.begin(), lines.end(),
                [](const ActionLine& a, const ActionLine& b) { return a.wall_us < b.wall_us; });
      bool explained = true;
      std::string where;
      for (size_t k = 0; k < lines.size(); ++k) {
        const ActionLine& l = lines[k];
        if (k + 1 < lines.size() && !killed_logs.count(l.file)) explained = false;
        where += fmt::format(" [{} mover {} epoch {} at {}]", l.action, l.mover, l.epoch, l.source);
      }
      if (explained && !o_.strict) {
        ++rerun_after_mover_kill_;
      } else {
        ++duplicated_;
      }
      Problem(explained && !o_.strict ? &reruns_ : &duplicates_,
              fmt::format("request {} ran {} times{}:{}", id, lines.size(),
                          explained ? " (the first run's mover was killed before its result "
                                      "was acknowledged)"
                                    : "",
                          where));
    }
    for (const auto& [id, lines] : log.successes) {
      if (!final_state_.count(id) && !lost_ids_.count(id)) {
        Problem(&mismatches_, fmt::format("request {} was run ({} at {}) but never acknowledged "
                                          "to the driver",
                                          id, lines[0].action, lines[0].source));
      }
    }
    for (const auto& [id, action] : succeeded_action_) {
      if (!log.successes.count(id)) {
        Problem(&mismatches_, fmt::format("request {} ({}) succeeded but no mover logged doing it",
                                          id, v1::Action_Name(action)));
      }
    }
  }
  CheckFinalStatesKept();
  // Files against the model; a file whose request was lost is checked against what it is.
  std::vector<ExpectedFile> expected;
  for (File& f : files_) {
    if (f.lost_request) {
      auto now = ReadPhase(f);
      if (now.ok()) f.phase = *now;
    }
    expected.push_back(
        {f.path, f.id, f.phase != Phase::kPlain, f.phase == Phase::kReleased, f.hash});
  }
  VerifyReport report = VerifyFiles(expected, archive_);
  files_verified_ = report.verified;
  for (const std::string& p : report.problems) Problem(&mismatches_, p);
  for (const std::string& p : cancel_record_problems_) Problem(&mismatches_, p);
}

int Driver::Run() {
  rng_.seed(o_.seed);
  std::uniform_int_distribution<uint64_t> at(o_.requests * 3 / 100, o_.requests * 97 / 100);
  for (int i = 0; i < o_.coordinator_kills; ++i) coordinator_kill_at_.push_back(at(rng_));
  for (int i = 0; i < o_.mover_kills; ++i) mover_kill_at_.push_back(at(rng_));
  std::sort(coordinator_kill_at_.begin(), coordinator_kill_at_.end());
  std::sort(mover_kill_at_.begin(), mover_kill_at_.end());

  std::string error;
  try {
    SetUpDirectories();
    std::fprintf(stderr, "chaos: working in %s\n", work_.c_str());
    CreateFiles();
    StartCluster();
    RunWorkload();
    Progress(true);
    Drain();
    Progress(true);
    Finish();
  } catch (const std::exception& e) {
    error = e.what();
  }
  stop_ = true;
  ReapFollowers(true);
  if (coordinator_) coordinator_->Kill();
  for (auto& m : movers_) {
    if (m) m->Kill();
  }
  for (const std::string& n : notes_) std::fprintf(stderr, "chaos: note: %s\n", n.c_str());
  auto list = [](const char* what, const std::vector<std::string>& items) {
    if (items.empty()) return;
    std::fprintf(stderr, "chaos: %zu %s:\n", items.size(), what);
    for (size_t i = 0; i < items.size() && i < 30; ++i)
      std::fprintf(stderr, "  %s\n", items[i].c_str());
  };
  list("failed requests", failures_);
  list("lost requests", lost_list_);
  list("duplicated requests", duplicates_);
  list("requests run again after a mover kill (not failing the run; --strict to fail)", reruns_);
  list("mismatches", mismatches_);
  if (!error.empty()) std::fprintf(stderr, "chaos: the run stopped: %s\n", error.c_str());
  const bool bad = !error.empty() || lost_ > 0 || duplicated_ > 0 || !mismatches_.empty();
  if (!work_.empty()) {
    if (bad || o_.keep) {
      std::fprintf(stderr, "chaos: kept %s (logs in %s)\n", work_.c_str(), logs_.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(work_, ec);
    }
  }
  std::fprintf(stderr,
               "chaos: details: %llu succeeded, %llu rewrites, %llu release failures, %llu merged "
               "answers, cancels: %llu canceled at once, %llu forwarded to movers, %llu of %llu "
               "CANCEL requests final, %llu cancel calls failed\n",
               static_cast<unsigned long long>(succeeded_),
               static_cast<unsigned long long>(rewrites_),
               static_cast<unsigned long long>(release_failures_),
               static_cast<unsigned long long>(merged_),
               static_cast<unsigned long long>(canceled_at_once_.load()),
               static_cast<unsigned long long>(cancels_forwarded_.load()),
               static_cast<unsigned long long>(cancel_records_final_.load()),
               static_cast<unsigned long long>(cancel_records_.load()),
               static_cast<unsigned long long>(cancel_errors_.load()));
  const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start_).count();
  std::printf(
      "chaos seed=%llu submitted=%llu completed=%llu lost=%llu duplicated=%llu "
      "rerun_after_mover_kill=%llu coordinator_kills=%d mover_kills=%d files_verified=%llu "
      "mismatches=%zu failed=%llu "
      "canceled=%llu cancel_records=%llu finals_rechecked=%llu retried_calls=%llu "
      "elapsed_s=%.0f%s\n",
      static_cast<unsigned long long>(o_.seed), static_cast<unsigned long long>(submitted_),
      static_cast<unsigned long long>(completed_), static_cast<unsigned long long>(lost_),
      static_cast<unsigned long long>(duplicated_),
      static_cast<unsigned long long>(rerun_after_mover_kill_), coordinator_kills_, mover_kills_,
      static_cast<unsigned long long>(files_verified_), mismatches_.size(),
      static_cast<unsigned long long>(failed_), static_cast<unsigned long long>(canceled_),
      static_cast<unsigned long long>(cancel_records_.load()),
      static_cast<unsigned long long>(requests_listed_),
      static_cast<unsigned long long>(client_ ? client_->retried_calls() : 0), elapsed,
      error.empty() ? "" : " result=error");
  std::fflush(stdout);
  return bad ? 1 : 0;
}

}  // namespace
}  // namespace tierflow::chaos

int main(int argc, char** argv) {
  using tierflow::chaos::Options;
  Options o;
  o.seed = std::random_device{}();
  CLI::App app{"tierflow chaos driver: kill -9 the coordinator and movers under a seeded workload"};
  app.add_option("--seed", o.seed,
                 "seed of the workload and the failure schedule (default random)");
  app.add_option("--requests", o.requests, "requests to submit")->capture_default_str();
  app.add_option("--coordinator-kills", o.coordinator_kills, "kill -9 of the coordinator")
      ->capture_default_str();
  app.add_option("--mover-kills", o.mover_kills, "kill -9 of a mover")->capture_default_str();
  app.add_option("--files", o.files, "files in the workload")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--workdir", o.workdir, "new or empty directory to work in (default under /tmp)");
  app.add_flag("--keep", o.keep, "keep the work directory (it is always kept after a failure)");
  app.add_option("--batch", o.batch, "requests per Submit")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app.add_option("--cancel-percent", o.cancel_percent, "requests canceled")->capture_default_str();
  app.add_flag("--strict", o.strict,
               "fail on actions run again after a mover kill too (see rerun_after_mover_kill)");
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "seconds without progress after which open requests count as lost")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  tierflow::chaos::KillChildrenOnTerminationSignals();
  std::printf(
      "chaos seed=%llu; replay: %s --seed %llu --requests %llu --coordinator-kills %d "
      "--mover-kills %d --files %d --batch %d --cancel-percent %g%s\n",
      static_cast<unsigned long long>(o.seed), argv[0], static_cast<unsigned long long>(o.seed),
      static_cast<unsigned long long>(o.requests), o.coordinator_kills, o.mover_kills, o.files,
      o.batch, o.cancel_percent, o.strict ? " --strict" : "");
  std::fflush(stdout);
  return tierflow::chaos::Driver(o).Run();
}
