// The coordinator's journal on a real disk that fills up or turns read-only. The state directory
// is a small ext4 loop-mounted for the test; a real coordinator process is driven over gRPC
// (to know the ids it acknowledged) and with the tierflow command (to read what an administrator
// reads). Checks that Submits are refused with an error naming the state directory, that
// `tierflow status` still answers and shows the problem, that the coordinator resumes by itself
// when space returns, and that after kill -9 every acknowledged request is in the journal,
// which passes SQLite's integrity check.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "store/sqlite/sqlite_journal.h"
#include "support/cluster_fixture.h"
#include "tierflow.grpc.pb.h"

namespace tierflow::testing {
namespace {

using RequestStates = std::map<uint64_t, v1::RequestState>;

bool WarnsOfJournal(const std::string& status_text, const std::string& state_dir) {
  return status_text.find("journal writes are failing") != std::string::npos &&
         status_text.find(state_dir) != std::string::npos;
}

class StorageFaultTest : public ::testing::Test, protected ClusterCommands {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a loop filesystem";
    image_ = cluster_.dir() / "state.img";
    mkdir(cluster_.state().c_str(), 0755);
    // errors=remount-ro: what a production mount does, and how the read-only test turns it so.
    CommandResult made = Shell("truncate -s 16M " + image_ + " && mkfs.ext4 -q -F -m 0 " + image_ +
                               " && mount -o loop,errors=remount-ro " + image_ + " " +
                               cluster_.state());
    ASSERT_EQ(made.exit_code, 0) << "cannot mount a loop filesystem: " << made.err;
    mounted_ = true;
    StartCoordinator();
  }
  // Starts (or restarts) the coordinator, with a fresh channel to it.
  void StartCoordinator() {
    cluster_.StartCoordinator();
    stub_ = v1::Coordinator::NewStub(
        grpc::CreateChannel(cluster_.address(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    cluster_.KillCoordinator(SIGKILL);
    if (mounted_) ::umount2(cluster_.state().c_str(), MNT_DETACH);
  }

  std::string Journal() const { return cluster_.state() + "/journal.db"; }

  // Submits `n` archive requests for new files, each with `data` bytes of request data (1 KiB
  // makes the journal grow quickly). On success the acknowledged ids are added to acked_.
  grpc::Status Submit(int n, size_t data = 1024) {
    v1::SubmitRequest req;
    for (int i = 0; i < n; ++i) {
      v1::RequestSpec* s = req.add_requests();
      uint64_t seq = ++next_seq_;
      s->set_action(v1::ARCHIVE);
      s->mutable_file()->set_fsid("fs1");
      s->mutable_file()->set_seq(seq);
      s->mutable_file()->set_oid(1);
      s->mutable_file()->set_path("/data/f" + std::to_string(seq));
      s->set_archive_id(1);
      s->set_data(std::string(data, static_cast<char>('a' + seq % 26)));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::SubmitReply reply;
    grpc::Status st = stub_->Submit(&ctx, req, &reply);
    if (st.ok()) {
      EXPECT_EQ(reply.accepted_size(), n);
      for (const auto& a : reply.accepted()) acked_[a.id()] = v1::QUEUED;
    }
    return st;
  }

  // Every request the coordinator lists, with its state.
  RequestStates Listed() {
    v1::StatusRequest req;
    req.set_include_requests(true);
    req.set_limit(100'000);  // the coordinator's bound
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    ctx.set_wait_for_ready(true);
    v1::StatusReply reply;
    grpc::Status st = stub_->Status(&ctx, req, &reply);
    EXPECT_TRUE(st.ok()) << st.error_message();
    RequestStates out;
    for (const auto& r : reply.requests()) out[r.id()] = r.state();
    return out;
  }

  static CommandResult Shell(const std::string& command) {
    return testing::Run({"/bin/sh", "-c", command});
  }

  // Fills the state filesystem with the file `name`, leaving about `leave` bytes free.
  std::string Fill(off_t leave, const std::string& name = "filler") {
    std::string filler = cluster_.state() + "/" + name;
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    std::string chunk(256 << 10, 'f');
    off_t size = 0;
    for (;;) {
      ssize_t n = ::write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;
      size += n;
    }
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_EQ(::ftruncate(fd, size > leave ? size - leave : 0), 0);
    EXPECT_EQ(::fsync(fd), 0);
    ::close(fd);
    return filler;
  }

  // With the coordinator stopped: SQLite's integrity check of the journal, and the requests it
  // holds as the store loads them.
  RequestStates CheckJournalFile() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(Journal().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    std::string result;
    sqlite3_exec(
        db, "PRAGMA integrity_check",
        [](void* out, int, char** values, char**) {
          *static_cast<std::string*>(out) += values[0] ? values[0] : "(null)";
          return 0;
        },
        &result, nullptr);
    sqlite3_close(db);
    EXPECT_EQ(result, "ok") << "integrity_check of " << Journal();

    RequestStates out;
    auto journal = store::SqliteJournal::Open(Journal());
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    if (!journal.ok()) return out;
    auto contents = (*journal)->Load();
    EXPECT_TRUE(contents.ok()) << contents.status().ToString();
    if (!contents.ok()) return out;
    for (const auto& row : contents->requests) {
      out[row.id] = static_cast<v1::RequestState>(static_cast<int>(row.state));
    }
    return out;
  }

  // An archive of one real file through the tierflow command.
  CommandResult ArchiveWithCli(const std::string& name) {
    std::ofstream(P(name)) << "data of " << name;
    return cluster_.Client({"archive", P(name)});
  }

  std::string image_;
  bool mounted_ = false;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  uint64_t next_seq_ = 0;
  RequestStates acked_;
};

TEST_F(StorageFaultTest, FullDiskRefusesSubmitsAndResumesWithoutARestart) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Submit(100).ok());
  std::string filler = Fill(256 << 10);

  grpc::Status refused;
  for (int i = 0; i < 5000 && refused.ok(); ++i) refused = Submit(20);
  ASSERT_FALSE(refused.ok()) << "the journal never hit the full disk\n" << cluster_.Logs();
  EXPECT_GT(acked_.size(), 1000u) << "no submit succeeded between filling the disk and running out";
  const std::string& why = refused.error_message();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << why;
  EXPECT_NE(why.find("journal write failed"), std::string::npos) << why;
  EXPECT_NE(why.find(Journal()), std::string::npos) << "names the state directory: " << why;
  EXPECT_NE(why.find("disk is full"), std::string::npos) << why;
  EXPECT_NE(why.find("free space on the filesystem"), std::string::npos) << why;
  // The failed batch left blocks allocated at the end of the WAL, so smaller commits (and the
  // coordinator's probe every second) may still fit. Take the last free blocks, and submit the
  // smallest requests until they have been refused, with status warning, for longer than two
  // probes: what is left of the WAL's blocks then holds nothing more.
  std::string last_blocks = Fill(0, "last-blocks");
  auto refused_since = std::chrono::steady_clock::now();
  auto stuck = [&] {
    auto now = std::chrono::steady_clock::now();
    CommandResult st = cluster_.Client({"status"});
    if (Submit(1, 0).ok() || st.exit_code != 0 || !WarnsOfJournal(st.out, cluster_.state())) {
      refused_since = now;
      return false;
    }
    return now - refused_since > std::chrono::milliseconds(2500);
  };
  ASSERT_TRUE(WaitFor(stuck, std::chrono::seconds(60))) << cluster_.Logs();

  CommandResult cli = ArchiveWithCli("refused");
  EXPECT_NE(cli.exit_code, 0) << Describe(cli) << cluster_.Logs();
  EXPECT_NE(cli.err.find(Journal()), std::string::npos) << Describe(cli);
  EXPECT_NE(cli.err.find("free space on the filesystem"), std::string::npos) << Describe(cli);
  EXPECT_EQ(cli.err.find("cannot reach"), std::string::npos)
      << "a coordinator that answered is not unreachable: " << Describe(cli);

  CommandResult status = cluster_.Client({"status"});
  ASSERT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_TRUE(WarnsOfJournal(status.out, cluster_.state())) << status.out;

  // Space returns; the coordinator is not restarted.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  ASSERT_EQ(::unlink(last_blocks.c_str()), 0);
  ASSERT_TRUE(WaitFor([&] { return Submit(10).ok(); }, std::chrono::seconds(30)))
      << "submits still refused after space returned\n"
      << cluster_.Logs();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Submit(100).ok());
  CommandResult accepted = ArchiveWithCli("accepted");
  EXPECT_EQ(accepted.exit_code, 0) << Describe(accepted);
  status = cluster_.Client({"status"});
  EXPECT_FALSE(WarnsOfJournal(status.out, cluster_.state())) << status.out;

  RequestStates before = Listed();
  for (const auto& [id, state] : acked_) {
    ASSERT_EQ(before.count(id), 1u) << "acknowledged request " << id << " missing";
    EXPECT_EQ(before[id], state) << id;
  }
  EXPECT_EQ(before.size(), acked_.size() + 1) << "one more: the command's archive";

  cluster_.KillCoordinator(SIGKILL);
  EXPECT_EQ(CheckJournalFile(), before);
  StartCoordinator();
  EXPECT_EQ(Listed(), before) << "the restarted coordinator lists other requests";
  EXPECT_TRUE(Submit(10).ok());
}

// A disk error turns the filesystem read-only (errors=remount-ro). While the journal is open
// Linux cannot make it read-write again (nor remount it read-only on purpose: files are open for
// writing), so the way back is the administrator's: stop the coordinator, repair, remount, start.
TEST_F(StorageFaultTest, ReadOnlyDiskRefusesSubmitsAndARepairedOneServesEverythingAcknowledged) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Submit(100).ok());
  CommandResult dev = Shell("findmnt -no SOURCE " + cluster_.state());
  ASSERT_EQ(dev.exit_code, 0) << Describe(dev);
  std::string loop = std::filesystem::path(dev.out.substr(0, dev.out.find('\n'))).filename();
  std::ofstream("/sys/fs/ext4/" + loop + "/trigger_fs_error") << "1";

  grpc::Status refused = Submit(10);
  ASSERT_FALSE(refused.ok()) << "a submit was acknowledged on a read-only disk";
  const std::string& why = refused.error_message();
  EXPECT_NE(why.find(Journal()), std::string::npos) << why;
  EXPECT_NE(why.find("Read-only file system"), std::string::npos) << why;
  EXPECT_NE(why.find("mount it read-write"), std::string::npos) << why;
  EXPECT_FALSE(Submit(1).ok());
  CommandResult status = cluster_.Client({"status"});
  ASSERT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_TRUE(WarnsOfJournal(status.out, cluster_.state())) << status.out;
  RequestStates before = Listed();
  EXPECT_EQ(before, acked_);

  cluster_.KillCoordinator(SIGKILL);
  ASSERT_EQ(::umount2(cluster_.state().c_str(), 0), 0) << std::strerror(errno);
  mounted_ = false;
  CommandResult fsck = Shell("e2fsck -fy " + image_);
  EXPECT_LE(fsck.exit_code, 1) << Describe(fsck);  // 1: errors corrected
  CommandResult mount = Shell("mount -o loop,errors=remount-ro " + image_ + " " + cluster_.state());
  ASSERT_EQ(mount.exit_code, 0) << Describe(mount);
  mounted_ = true;

  EXPECT_EQ(CheckJournalFile(), before);
  StartCoordinator();
  EXPECT_EQ(Listed(), before);
  EXPECT_TRUE(Submit(10).ok());
  status = cluster_.Client({"status"});
  EXPECT_FALSE(WarnsOfJournal(status.out, cluster_.state())) << status.out;
}

}  // namespace
}  // namespace tierflow::testing
