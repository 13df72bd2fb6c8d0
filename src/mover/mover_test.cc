// Mover runtime against an in-process fake coordinator (tierflow.v1.Coordinator on 127.0.0.1),
// with real files, the real posix backend and local_fs on a filesystem with trusted.* xattrs.
//
// A "slow" action is made deterministic with a gate in front of the posix backend: the test
// holds a file's archive copy at the gate, sees that it entered, and lets it go. No sleeps.
#include "mover/mover.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <algorithm>
#include <iterator>
#include <sstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/local_fs.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::mover {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);

// ---- fake coordinator ----------------------------------------------------------------------

// What the fake saw, shared by the successive gRPC services of one FakeCoordinator.
struct FakeState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<v1::Hello> hellos;
  std::vector<v1::Result> results;
  std::vector<int> result_message;  // for each result, the number of the message that carried it
  std::vector<v1::Progress> progress;
  int messages = 0;
  std::set<std::pair<uint64_t, uint64_t>> drop;  // in-hand actions the next Welcome drops
  int refuse_hellos = 0;                         // answer this many hellos ALREADY_EXISTS
  grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::MoverMessage>* stream = nullptr;
  uint64_t sessions = 0;
  bool ack_results = true;      // acknowledge each result as the coordinator does once durable
  std::vector<uint64_t> pongs;  // seq of every Pong received
};

class FakeService final : public v1::Coordinator::Service {
 public:
  explicit FakeService(FakeState* s) : s_(s) {}

  grpc::Status MoverSession(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::MoverMessage>* stream) override {
    v1::MoverMessage m;
    if (!stream->Read(&m) || !m.has_hello())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello first");
    v1::CoordinatorMessage w;
    {
      std::lock_guard lk(s_->mu);
      s_->hellos.push_back(m.hello());
      s_->cv.notify_all();
      if (s_->refuse_hellos > 0) {
        --s_->refuse_hellos;
        return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "mover session still open");
      }
      w.mutable_welcome()->set_session(++s_->sessions);
      for (const v1::InHand& ih : m.hello().in_hand()) {
        bool drop = s_->drop.count({ih.id(), ih.epoch()}) > 0;
        *(drop ? w.mutable_welcome()->add_drop() : w.mutable_welcome()->add_keep()) = ih;
      }
    }
    if (!stream->Write(w)) return grpc::Status::OK;
    {
      std::lock_guard lk(s_->mu);
      s_->stream = stream;
      s_->cv.notify_all();
    }
    while (stream->Read(&m)) Record(m);
    std::lock_guard lk(s_->mu);
    s_->stream = nullptr;
    s_->cv.notify_all();
    return grpc::Status::OK;
  }

 private:
  void Record(const v1::MoverMessage& m) {
    std::lock_guard lk(s_->mu);
    ++s_->messages;
    if (m.has_result()) {
      s_->results.push_back(m.result());
      s_->result_message.push_back(s_->messages);
    }
    if (m.has_progress()) s_->progress.push_back(m.progress());
    v1::CoordinatorMessage acks;
    if (m.has_reports()) {
      for (const auto& r : m.reports().results()) {
        s_->results.push_back(r);
        s_->result_message.push_back(s_->messages);
        auto* a = acks.mutable_acks()->add_items();
        a->set_id(r.id());
        a->set_epoch(r.epoch());
      }
      for (const auto& p : m.reports().progress()) s_->progress.push_back(p);
    }
    if (m.has_pong()) s_->pongs.push_back(m.pong().seq());
    if (s_->ack_results && acks.acks().items_size() > 0 && s_->stream != nullptr) {
      s_->stream->Write(acks);
    }
    s_->cv.notify_all();
  }

  FakeState* s_;
};

class FakeCoordinator {
 public:
  ~FakeCoordinator() { Stop(); }

  void Start(int port = 0) {
    service_ = std::make_unique<FakeService>(&state_);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                       &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  // Ends every stream at once, as a killed coordinator would.
  void Stop() {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
    service_.reset();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  bool WaitUntil(const std::function<bool(FakeState&)>& pred) {
    std::unique_lock lk(state_.mu);
    return state_.cv.wait_until(lk, Clock::now() + kDeadline, [&] { return pred(state_); });
  }
  bool WaitConnected() {
    return WaitUntil([](FakeState& s) { return s.stream != nullptr; });
  }
  bool WaitResult(uint64_t id, v1::Result* out = nullptr) {
    return WaitUntil([&](FakeState& s) {
      for (const auto& r : s.results) {
        if (r.id() != id) continue;
        if (out) *out = r;
        return true;
      }
      return false;
    });
  }
  bool Send(const v1::CoordinatorMessage& m) {
    std::lock_guard lk(state_.mu);
    return state_.stream != nullptr && state_.stream->Write(m);
  }
  template <typename F>
  auto With(F f) {
    std::lock_guard lk(state_.mu);
    return f(state_);
  }

 private:
  FakeState state_;
  std::unique_ptr<FakeService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// ---- files ---------------------------------------------------------------------------------

bool SupportsTrustedXattrs(const std::string& dir) {
  std::string probe = dir + "/.xattr-probe";
  { std::ofstream(probe) << "x"; }
  int rc = ::setxattr(probe.c_str(), "trusted.tierflow.probe", "1", 1, 0);
  ::unlink(probe.c_str());
  return rc == 0;
}

void WriteFile(const std::string& path, size_t size, char seed = 'a') {
  std::string block(1 << 16, '\0');
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(seed + (i * 31) % 23);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (size_t done = 0; done < size; done += block.size())
    out.write(block.data(), static_cast<std::streamsize>(std::min(block.size(), size - done)));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The posix backend behind a gate: Put for a held file waits at the gate until the test lets
// it through, so an action stays "running" exactly as long as a test needs.
class GatedBackend final : public ArchiveBackend {
 public:
  explicit GatedBackend(std::unique_ptr<ArchiveBackend> inner) : inner_(std::move(inner)) {}

  void Hold(const hsm::Fid& fid) {
    std::lock_guard lk(mu_);
    held_.insert(fid);
  }
  void Let(const hsm::Fid& fid) {
    std::lock_guard lk(mu_);
    held_.erase(fid);
    cv_.notify_all();
  }
  void LetAll() {
    std::lock_guard lk(mu_);
    held_.clear();
    cv_.notify_all();
  }
  // True once `times` copies of `fid` have reached the gate.
  bool WaitEntered(const hsm::Fid& fid, int times = 1) {
    std::unique_lock lk(mu_);
    return cv_.wait_until(lk, Clock::now() + kDeadline,
                          [&] { return static_cast<int>(entered_.count(fid)) >= times; });
  }
  bool Entered(const hsm::Fid& fid) { return EnteredTimes(fid) > 0; }
  int EnteredTimes(const hsm::Fid& fid) {
    std::lock_guard lk(mu_);
    return static_cast<int>(entered_.count(fid));
  }

  Result<PutResult> Put(int src_fd, const hsm::FileId& file, const CopyControl& ctl) override {
    {
      std::unique_lock lk(mu_);
      entered_.insert(file.fid);
      cv_.notify_all();
      cv_.wait(lk, [&] { return held_.count(file.fid) == 0; });
    }
    return inner_->Put(src_fd, file, ctl);
  }
  Status Get(const std::string& object_ref, int dst_fd, uint64_t expected_checksum,
             const CopyControl& ctl) override {
    return inner_->Get(object_ref, dst_fd, expected_checksum, ctl);
  }
  Status Delete(const std::string& object_ref) override { return inner_->Delete(object_ref); }

 private:
  std::unique_ptr<ArchiveBackend> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<hsm::Fid> held_;
  std::multiset<hsm::Fid> entered_;
};

hsm::Fid FidOf(const v1::ActionItem& it) {
  return hsm::Fid{it.file().seq(), it.file().oid(), it.file().ver()};
}

class MoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tf_mover_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    if (!SupportsTrustedXattrs(root_)) MountExt4Image();
    files_ = root_ + "/fs";
    archive_ = root_ + "/archive";
    fs::create_directories(files_);
    fs::create_directories(archive_);
    fake_.Start();
    options_.coordinator = fake_.address();
    options_.id = "m1";
    options_.host = "host-a";
    options_.archive_ids = {1};
    options_.posix_root = archive_;
    options_.reconnect_delay_ms = 20;
    options_.progress_interval_ms = 1;
    PosixBackendOptions bo;
    bo.root = archive_;
    bo.progress_interval_ms = 1;
    auto posix = PosixBackend::Open(bo);
    ASSERT_TRUE(posix.ok()) << posix.status().ToString();
    gate_ = std::make_shared<GatedBackend>(std::move(posix).value());
    options_.backend = gate_;
  }

  void TearDown() override {
    if (gate_) gate_->LetAll();
    if (mover_) mover_->Shutdown();
    mover_.reset();
    fake_.Stop();
    if (mounted_) ::umount2(root_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(root_, ec);
    if (!image_.empty()) ::unlink(image_.c_str());
  }

  // /tmp without trusted.* xattrs (tmpfs on old kernels): a small ext4 image, loop-mounted.
  void MountExt4Image() {
    image_ = root_ + ".img";
    std::string cmd = "truncate -s 256M " + image_ + " && mkfs.ext4 -q -F " + image_ +
                      " && mount -o loop " + image_ + " " + root_;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    mounted_ = true;
    ASSERT_TRUE(SupportsTrustedXattrs(root_));
  }

  void StartMover() {
    auto m = Mover::Start(options_);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mover_ = std::move(m).value();
    ASSERT_TRUE(fake_.WaitConnected());
  }

  std::string NewFile(const std::string& name, size_t size, char seed = 'a') {
    std::string p = files_ + "/" + name;
    WriteFile(p, size, seed);
    return p;
  }

  v1::ActionItem Item(uint64_t id, v1::Action action, const std::string& path) {
    auto fid = IdentifyFile(path);
    EXPECT_TRUE(fid.ok()) << fid.status().ToString();
    v1::ActionItem it;
    it.set_id(id);
    it.set_epoch(1);
    it.set_action(action);
    it.set_archive_id(1);
    v1::FileRef* f = it.mutable_file();
    f->set_path(path);
    if (fid.ok()) {
      f->set_fsid(fid->fsid);
      f->set_seq(fid->fid.seq);
      f->set_oid(fid->fid.oid);
      f->set_ver(fid->fid.ver);
    }
    return it;
  }

  bool SendBatch(const std::vector<v1::ActionItem>& items) {
    v1::CoordinatorMessage m;
    m.mutable_batch()->set_archive_id(1);
    for (const auto& it : items) *m.mutable_batch()->add_items() = it;
    return fake_.Send(m);
  }

  bool SendCancel(uint64_t id) {
    v1::CoordinatorMessage m;
    v1::InHand* ih = m.mutable_cancel()->add_items();
    ih->set_id(id);
    ih->set_epoch(1);
    return fake_.Send(m);
  }

  uint32_t States(const std::string& path) {
    auto st = GetFileState(path);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return st.ok() ? st->record.states : 0;
  }

  bool WaitCounts(const std::function<bool(const MoverCounts&)>& pred) {
    auto end = Clock::now() + kDeadline;
    while (Clock::now() < end) {
      if (pred(mover_->Counts())) return true;
      std::this_thread::yield();
    }
    return false;
  }

  // Position of each result id in arrival order.
  std::vector<uint64_t> ResultOrder() {
    return fake_.With([](FakeState& s) {
      std::vector<uint64_t> ids;
      for (const auto& r : s.results) ids.push_back(r.id());
      return ids;
    });
  }

  std::string root_, files_, archive_, image_;
  bool mounted_ = false;
  FakeCoordinator fake_;
  std::shared_ptr<GatedBackend> gate_;
  MoverOptions options_;
  std::unique_ptr<Mover> mover_;
};

// ---- tests ---------------------------------------------------------------------------------

TEST_F(MoverTest, HelloCarriesIdentityCapacitiesAndNothingInHand) {
  options_.archive_ids = {1, 7};
  options_.max_archive = 3;
  options_.max_restore = -1;
  options_.max_remove = 2;
  options_.max_bytes = 1 << 30;
  StartMover();
  v1::Hello h = fake_.With([](FakeState& s) { return s.hellos.at(0); });
  EXPECT_EQ(h.id(), "m1");
  EXPECT_EQ(h.host(), "host-a");
  ASSERT_EQ(h.archive_ids_size(), 2);
  EXPECT_EQ(h.archive_ids(0), 1u);
  EXPECT_EQ(h.archive_ids(1), 7u);
  EXPECT_EQ(h.capacities().max_archive(), 3);
  EXPECT_EQ(h.capacities().max_restore(), -1);
  EXPECT_EQ(h.capacities().max_remove(), 2);
  EXPECT_EQ(h.capacities().max_bytes(), 1u << 30);
  EXPECT_EQ(h.in_hand_size(), 0);
  EXPECT_GE(h.protocol(), 1u);
}

TEST_F(MoverTest, StartRefusesAMissingArchiveRoot) {
  options_.posix_root = root_ + "/no-such-dir";
  options_.backend = nullptr;
  auto m = Mover::Start(options_);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("no-such-dir"), std::string::npos) << m.status().message();
}

TEST_F(MoverTest, BatchArchivesReleasedRestoreAndRemove) {
  StartMover();
  std::string a = NewFile("a", 100000, 'a');
  std::string b = NewFile("b", 5000, 'b');
  std::string c = NewFile("c", 0);
  const std::string a_data = ReadFile(a);
  ASSERT_TRUE(
      SendBatch({Item(1, v1::ARCHIVE, a), Item(2, v1::ARCHIVE, b), Item(3, v1::ARCHIVE, c)}));
  for (uint64_t id : {1, 2, 3}) {
    v1::Result r;
    ASSERT_TRUE(fake_.WaitResult(id, &r)) << id;
    EXPECT_EQ(r.error_code(), 0) << r.error();
    EXPECT_EQ(r.epoch(), 1u);
  }
  EXPECT_EQ(fake_.With([](FakeState& s) {
    return s.results.at(0).bytes() + s.results.at(1).bytes() + s.results.at(2).bytes();
  }),
            105000u);
  EXPECT_TRUE(States(a) & hsm::kStateArchived);
  EXPECT_TRUE(States(c) & hsm::kStateArchived);

  ASSERT_TRUE(ReleaseFile(a).ok());
  ASSERT_TRUE(States(a) & hsm::kStateReleased);
  ASSERT_TRUE(SendBatch({Item(4, v1::RESTORE, a)}));
  v1::Result r;
  ASSERT_TRUE(fake_.WaitResult(4, &r));
  EXPECT_EQ(r.error_code(), 0) << r.error();
  EXPECT_FALSE(States(a) & hsm::kStateReleased);
  EXPECT_EQ(ReadFile(a), a_data);

  ASSERT_TRUE(SendBatch({Item(5, v1::REMOVE, b)}));
  ASSERT_TRUE(fake_.WaitResult(5, &r));
  EXPECT_EQ(r.error_code(), 0) << r.error();
  EXPECT_FALSE(States(b) & hsm::kStateArchived);
}

TEST_F(MoverTest, FailureIsReportedWithErrnoAndMessageAndNotRetryable) {
  StartMover();
  std::string a = NewFile("a", 10);
  v1::ActionItem wrong = Item(1, v1::ARCHIVE, a);
  wrong.mutable_file()->set_seq(wrong.file().seq() + 12345);  // another file's id
  v1::ActionItem cancel_kind = Item(2, v1::CANCEL, a);
  ASSERT_TRUE(SendBatch({cancel_kind, wrong, Item(3, v1::ARCHIVE, a)}));
  v1::Result r;
  ASSERT_TRUE(fake_.WaitResult(1, &r));
  EXPECT_NE(r.error_code(), 0);
  EXPECT_FALSE(r.retryable());
  EXPECT_NE(r.error().find(a), std::string::npos) << r.error();
  ASSERT_TRUE(fake_.WaitResult(3, &r));
  EXPECT_EQ(r.error_code(), 0) << r.error();
  // A CANCEL item in a batch is ignored: no result for it.
  auto order = ResultOrder();
  EXPECT_EQ(std::count(order.begin(), order.end(), 2u), 0);
}

TEST_F(MoverTest, ArchiveCapacityOneMakesTheSecondArchiveWait) {
  options_.max_archive = 1;
  StartMover();
  v1::ActionItem ia = Item(1, v1::ARCHIVE, NewFile("a", 4096, 'a'));
  v1::ActionItem ib = Item(2, v1::ARCHIVE, NewFile("b", 4096, 'b'));
  v1::ActionItem ic = Item(3, v1::REMOVE, NewFile("c", 4096, 'c'));  // another kind
  gate_->Hold(FidOf(ia));
  gate_->Hold(FidOf(ib));
  ASSERT_TRUE(SendBatch({ia, ib, ic}));
  ASSERT_TRUE(gate_->WaitEntered(FidOf(ia)));  // the first archive runs, held at the gate
  ASSERT_TRUE(fake_.WaitResult(3));            // other kinds are not held back
  EXPECT_FALSE(gate_->Entered(FidOf(ib))) << "the second archive started while the first ran";
  MoverCounts c = mover_->Counts();
  EXPECT_EQ(c.running, 1);
  EXPECT_EQ(c.queued, 1);
  EXPECT_TRUE(c.connected);
  auto order = ResultOrder();
  EXPECT_EQ(std::count(order.begin(), order.end(), 2u), 0);
  gate_->Let(FidOf(ia));
  ASSERT_TRUE(fake_.WaitResult(1));
  ASSERT_TRUE(gate_->WaitEntered(FidOf(ib)));  // now the second runs
  gate_->Let(FidOf(ib));
  v1::Result r;
  ASSERT_TRUE(fake_.WaitResult(2, &r));
  EXPECT_EQ(r.error_code(), 0) << r.error();
  order = ResultOrder();
  EXPECT_LT(std::find(order.begin(), order.end(), 1u), std::find(order.begin(), order.end(), 2u));
}

TEST_F(MoverTest, CancelStopsQueuedAndRunningActions) {
  options_.max_archive = 1;
  StartMover();
  std::string big = NewFile("big", 24 << 20);
  std::string small = NewFile("small", 100);
  v1::ActionItem ibig = Item(1, v1::ARCHIVE, big), ismall = Item(2, v1::ARCHIVE, small);
  gate_->Hold(FidOf(ibig));
  ASSERT_TRUE(SendBatch({ibig, ismall}));
  ASSERT_TRUE(gate_->WaitEntered(FidOf(ibig)));
  ASSERT_TRUE(SendCancel(2));  // queued behind the first: ends at once
  v1::Result r;
  ASSERT_TRUE(fake_.WaitResult(2, &r));
  EXPECT_EQ(r.error_code(), ECANCELED) << r.error();
  EXPECT_FALSE(r.retryable());
  ASSERT_TRUE(SendCancel(1));  // running: the copy stops at its next chunk
  // The stream is ordered: once a later batch has a result, the mover has read the cancel.
  ASSERT_TRUE(SendBatch({Item(3, v1::REMOVE, small)}));
  ASSERT_TRUE(fake_.WaitResult(3));
  gate_->Let(FidOf(ibig));
  ASSERT_TRUE(fake_.WaitResult(1, &r));
  EXPECT_EQ(r.error_code(), ECANCELED) << r.error();
  EXPECT_FALSE(r.retryable());
  EXPECT_FALSE(States(big) & hsm::kStateArchived);
  EXPECT_FALSE(States(small) & hsm::kStateArchived);
  EXPECT_FALSE(gate_->Entered(FidOf(ismall)));
}

TEST_F(MoverTest, LongCopyReportsProgress) {
  StartMover();
  std::string big = NewFile("big", 48 << 20);
  ASSERT_TRUE(SendBatch({Item(1, v1::ARCHIVE, big)}));
  ASSERT_TRUE(fake_.WaitResult(1));
  auto progress = fake_.With([](FakeState& s) { return s.progress; });
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().id(), 1u);
  EXPECT_EQ(progress.back().bytes_total(), 48u << 20);
  EXPECT_LE(progress.back().bytes_done(), progress.back().bytes_total());
}

TEST_F(MoverTest, ReconnectsAndReportsWhatFinishedWhileTheCoordinatorWasAway) {
  options_.max_archive = 3;
  StartMover();
  std::string a = NewFile("a", 1000, 'a');
  std::string d = NewFile("d", 2000, 'd');
  v1::ActionItem ia = Item(1, v1::ARCHIVE, a);
  v1::ActionItem ib = Item(2, v1::ARCHIVE, NewFile("b", 24 << 20, 'b'));
  v1::ActionItem id = Item(4, v1::ARCHIVE, d);
  for (const auto* it : {&ia, &ib, &id}) gate_->Hold(FidOf(*it));
  ASSERT_TRUE(SendBatch({ia, ib, id}));
  for (const auto* it : {&ia, &ib, &id}) ASSERT_TRUE(gate_->WaitEntered(FidOf(*it)));
  const int port = fake_.port();
  fake_.Stop();
  gate_->Let(FidOf(ia));  // 1 and 4 finish while the coordinator is away: results are buffered
  gate_->Let(FidOf(id));
  ASSERT_TRUE(WaitCounts(
      [](const MoverCounts& c) { return !c.connected && c.running == 1 && c.unreported == 2; }));
  EXPECT_TRUE(States(a) & hsm::kStateArchived);
  EXPECT_TRUE(States(d) & hsm::kStateArchived);

  fake_.With([](FakeState& s) {
    s.drop = {{2, 1}};
    return 0;
  });  // 2 went to another mover
  fake_.Start(port);
  ASSERT_TRUE(fake_.WaitConnected());
  EXPECT_EQ(fake_.With([](FakeState& s) { return s.hellos.size(); }), 2u);
  v1::Hello h = fake_.With([](FakeState& s) { return s.hellos.back(); });
  ASSERT_EQ(h.in_hand_size(), 3);
  EXPECT_EQ(h.in_hand(0).id(), 1u);
  EXPECT_EQ(h.in_hand(1).id(), 2u);
  EXPECT_EQ(h.in_hand(2).id(), 4u);
  EXPECT_EQ(h.in_hand(0).epoch(), 1u);
  ASSERT_TRUE(fake_.WaitUntil([](FakeState& s) { return s.results.size() == 2; }));
  fake_.With([](FakeState& s) {
    EXPECT_EQ(s.results[0].id(), 1u);
    EXPECT_EQ(s.results[1].id(), 4u);
    EXPECT_EQ(s.results[0].error_code(), 0) << s.results[0].error();
    EXPECT_EQ(s.result_message[0], s.result_message[1]) << "buffered results go in one message";
    return 0;
  });

  gate_->Let(FidOf(ib));  // the dropped action was canceled: it stops, its result is never sent
  ASSERT_TRUE(SendBatch({Item(3, v1::ARCHIVE, NewFile("c", 10))}));
  ASSERT_TRUE(fake_.WaitResult(3));
  auto order = ResultOrder();
  EXPECT_EQ(std::count(order.begin(), order.end(), 2u), 0);
  EXPECT_EQ(std::count(order.begin(), order.end(), 1u), 1);
  ASSERT_TRUE(WaitCounts([](const MoverCounts& c) { return c.unreported == 0; }))
      << "results were not acknowledged";
  // A third session names nothing in hand: 1, 3 and 4 were acknowledged, 2 was dropped.
  fake_.Stop();
  fake_.Start(port);
  ASSERT_TRUE(fake_.WaitUntil([](FakeState& s) { return s.hellos.size() == 3; }));
  h = fake_.With([](FakeState& s) { return s.hellos.back(); });
  EXPECT_EQ(h.in_hand_size(), 0);
}

// A result the coordinator never acknowledged (it died before making it durable) stays in
// hand: the next Hello lists it and the result is sent again; once acknowledged it is gone.
TEST_F(MoverTest, AResultIsKeptUntilAcknowledgedAndSentAgainOnTheNextSession) {
  fake_.With([](FakeState& s) {
    s.ack_results = false;
    return 0;
  });
  StartMover();
  ASSERT_TRUE(SendBatch({Item(1, v1::ARCHIVE, NewFile("a", 1000))}));
  ASSERT_TRUE(fake_.WaitResult(1));
  ASSERT_TRUE(WaitCounts([](const MoverCounts& c) { return c.unreported == 1; }));
  const int port = fake_.port();
  fake_.Stop();
  fake_.With([](FakeState& s) {
    s.ack_results = true;
    return 0;
  });
  fake_.Start(port);
  ASSERT_TRUE(fake_.WaitUntil([](FakeState& s) { return s.results.size() == 2; }))
      << "the unacknowledged result was not sent again";
  v1::Hello h = fake_.With([](FakeState& s) { return s.hellos.back(); });
  ASSERT_EQ(h.in_hand_size(), 1);
  EXPECT_EQ(h.in_hand(0).id(), 1u);
  fake_.With([](FakeState& s) {
    EXPECT_EQ(s.results[1].id(), 1u);
    EXPECT_EQ(s.results[1].error_code(), 0);
    return 0;
  });
  ASSERT_TRUE(WaitCounts([](const MoverCounts& c) { return c.unreported == 0; }));
  fake_.Stop();
  fake_.Start(port);
  ASSERT_TRUE(fake_.WaitUntil([](FakeState& s) { return s.hellos.size() == 3; }));
  EXPECT_EQ(fake_.With([](FakeState& s) { return s.hellos.back().in_hand_size(); }), 0)
      << "an acknowledged result is forgotten";
  EXPECT_EQ(fake_.With([](FakeState& s) { return s.results.size(); }), 2u);
}

TEST_F(MoverTest, PingsAreAnsweredWithTheirSequenceNumber) {
  StartMover();
  v1::CoordinatorMessage ping;
  ping.mutable_ping()->set_seq(41);
  ASSERT_TRUE(fake_.Send(ping));
  ping.mutable_ping()->set_seq(42);
  ASSERT_TRUE(fake_.Send(ping));
  ASSERT_TRUE(fake_.WaitUntil([](FakeState& s) {
    return std::find(s.pongs.begin(), s.pongs.end(), 42u) != s.pongs.end();
  }));
}

// The action log has one line per finished action, before its result is sent.
TEST_F(MoverTest, TheActionLogHasALinePerFinishedAction) {
  const std::string log = root_ + "/actions.log";
  options_.action_log = log;
  StartMover();
  std::string a = NewFile("a", 1000);
  ASSERT_TRUE(SendBatch({Item(1, v1::ARCHIVE, a), Item(2, v1::RESTORE, NewFile("b", 10))}));
  ASSERT_TRUE(fake_.WaitResult(1));
  ASSERT_TRUE(fake_.WaitResult(2));
  std::istringstream in(ReadFile(log));
  std::map<uint64_t, std::vector<std::string>> lines;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::vector<std::string> w{std::istream_iterator<std::string>(f), {}};
    ASSERT_EQ(w.size(), 7u) << line;
    lines[std::stoull(w[2])] = w;
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1][1], options_.id);
  EXPECT_EQ(lines[1][3], "1");  // epoch
  EXPECT_EQ(lines[1][4], "ARCHIVE");
  EXPECT_EQ(lines[1][6], "0");
  EXPECT_EQ(lines[2][4], "RESTORE");
  EXPECT_NE(lines[2][6], "0") << "restoring a file never archived fails";
}

TEST_F(MoverTest, ADroppedActionStillStoppingHoldsBackTheNextActionOnItsFile) {
  StartMover();
  std::string f = NewFile("f", 24 << 20);
  v1::ActionItem first = Item(1, v1::ARCHIVE, f);
  gate_->Hold(FidOf(first));
  ASSERT_TRUE(SendBatch({first}));
  ASSERT_TRUE(gate_->WaitEntered(FidOf(first)));
  const int port = fake_.port();
  fake_.Stop();
  fake_.With([](FakeState& s) {
    s.drop = {{1, 1}};
    return 0;
  });
  fake_.Start(port);
  ASSERT_TRUE(fake_.WaitConnected());
  v1::ActionItem again = first;  // the coordinator assigns the file again, in a new epoch
  again.set_epoch(2);
  ASSERT_TRUE(SendBatch({again, Item(3, v1::ARCHIVE, NewFile("other", 10))}));
  ASSERT_TRUE(fake_.WaitResult(3));  // the batch was read and the rest of it ran
  EXPECT_EQ(gate_->EnteredTimes(FidOf(first)), 1) << "two actions ran on one file at once";
  EXPECT_EQ(mover_->Counts().queued, 1);
  gate_->Let(FidOf(first));  // the dropped copy stops; then the new one runs
  v1::Result r;
  ASSERT_TRUE(fake_.WaitResult(1, &r));
  EXPECT_EQ(r.epoch(), 2u);
  EXPECT_EQ(r.error_code(), 0) << r.error();
  EXPECT_EQ(gate_->EnteredTimes(FidOf(first)), 2);
  EXPECT_EQ(fake_.With([](FakeState& s) { return s.results.size(); }), 2u);
}

TEST_F(MoverTest, HelloRefusedAsAlreadyExistsIsRetried) {
  fake_.With([](FakeState& s) {
    s.refuse_hellos = 2;
    return 0;
  });
  StartMover();
  EXPECT_EQ(fake_.With([](FakeState& s) { return s.hellos.size(); }), 3u);
  std::string a = NewFile("a", 10);
  ASSERT_TRUE(SendBatch({Item(1, v1::ARCHIVE, a)}));
  ASSERT_TRUE(fake_.WaitResult(1));
}

TEST_F(MoverTest, ShutdownReportsRunningAndQueuedActionsAsRetryable) {
  options_.max_archive = 1;
  StartMover();
  std::string big = NewFile("big", 24 << 20);
  v1::ActionItem ibig = Item(1, v1::ARCHIVE, big);
  gate_->Hold(FidOf(ibig));
  ASSERT_TRUE(SendBatch({ibig, Item(2, v1::ARCHIVE, NewFile("small", 10))}));
  ASSERT_TRUE(gate_->WaitEntered(FidOf(ibig)));
  std::thread stopper([&] { mover_->Shutdown(); });
  // The queued action is given back at once, in the same step that cancels the running one.
  v1::Result r;
  ASSERT_TRUE(fake_.WaitResult(2, &r));
  EXPECT_TRUE(r.retryable());
  gate_->Let(FidOf(ibig));  // Shutdown waits for the worker; the copy now sees the cancel
  stopper.join();
  ASSERT_TRUE(fake_.WaitResult(1, &r));
  EXPECT_TRUE(r.retryable());
  EXPECT_NE(r.error_code(), ECANCELED);
  EXPECT_FALSE(States(big) & hsm::kStateArchived);
}

}  // namespace
}  // namespace tierflow::mover
