// Writes the seed corpus of every fuzz target (fuzz/corpus/<target>/) from tierflow's own
// encoders, so each fuzzer starts from valid inputs and mutates its way into the parsers.
//   build-fuzz/seed_corpus fuzz/corpus
// The files are committed; rerun after a format changes.
#include <xxhash.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hsm/action.h"
#include "hsm/active_requests.h"
#include "hsm/hal.h"
#include "mover/fs/hsm_record.h"
#include "store/request_codec.h"
#include "tierflow.pb.h"
#include "watch/holder_protocol.h"

namespace fs = std::filesystem;
using namespace tierflow;

namespace {

fs::path g_root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

hsm::ActionList SampleList(int items) {
  hsm::ActionList hal;
  hal.compound_id = 7;
  hal.flags = hsm::kHalFlagBlocking;
  hal.archive_id = 2;
  hal.fsname = "lustre";
  for (int i = 0; i < items; ++i) {
    hsm::ActionItem it;
    it.action = hsm::ToCopytoolAction(i % 2 ? hsm::Action::kRestore : hsm::Action::kArchive);
    it.fid = {0x200000401, static_cast<uint32_t>(i + 1), 0};
    it.dfid = it.fid;
    it.cookie = 100 + i;
    it.extent_length = i ? 4096 : hsm::kExtentWholeFile;
    it.data = std::string(i * 3, 'd');
    hal.items.push_back(it);
  }
  return hal;
}

void Hal() {
  Write("hal_fuzz", "one_item", hsm::EncodeActionList(SampleList(1)));
  Write("hal_fuzz", "three_items", hsm::EncodeActionList(SampleList(3)));
  Write("hal_fuzz", "kuc_message",
        *hsm::EncodeKucMessage(hsm::kKucMsgHal, hsm::EncodeActionList(SampleList(2))));
  Write("hal_fuzz", "kuc_shutdown", *hsm::EncodeKucMessage(hsm::kKucMsgShutdown, ""));
}

void ActiveRequests() {
  hsm::ActiveRequest r;
  r.item = SampleList(2).items[1];
  r.compound_id = 3;
  r.archive_id = 1;
  r.agent_uuid = "6c4fbad2-ct1";
  r.done_bytes = 1 << 20;
  std::string line = hsm::FormatActiveRequest(r);
  Write("active_requests_fuzz", "one_line", line + "\n");
  r.canceled = true;
  r.item.data = "\x01\x02\xff";
  Write("active_requests_fuzz", "lctl_output",
        "mdt.lustre-MDT0000.hsm.active_requests=\n" + line + "\n" + hsm::FormatActiveRequest(r) +
            "\n");
  Write("active_requests_fuzz", "older_kernel",
        "fid=[0x200000401:0x2:0x0] dfid=[0x200000401:0x2:0x0] compound/cookie=0x0/0x5 "
        "action=ARCHIVE archive#=1 flags=0x0 extent=0x0-0xffffffffffffffff\n");
}

void RequestCodec() {
  store::RequestRow row;
  row.file = {"fs1", {0x200000401, 1, 0}};
  row.path = "/data/f1";
  row.archive_id = 1;
  std::string body;
  store::EncodeRequestBody(row, &body);
  Write("request_codec_fuzz", "queued", body);
  row.mover = "m1";
  row.epoch = 3;
  row.attempts = 2;
  row.error_code = -5;
  row.error = "copy failed";
  row.data = "tag=x";
  row.offset = 4096;
  row.length = 8192;
  row.created_us = 1'700'000'000'000'000;
  row.changed_us = row.created_us + 5'000'000;
  body.clear();
  store::EncodeRequestBody(row, &body);
  Write("request_codec_fuzz", "failed", body);
}

void HsmRecord() {
  mover::HsmRecord rec;
  rec.fid = {1234, 5, 0};
  rec.archive_id = 1;
  rec.states = 0x9;
  rec.stamp = {4096, 1'700'000'000'000'000'000, 1'700'000'000'000'000'001, 7};
  rec.seal = {1'700'000'000'000'000'000, 1'700'000'000'010'000'000};
  rec.object_ref = "0x4d2:0x5:0x0";
  rec.checksum = 0x1234567890abcdef;
  rec.resident = {{0, 4096}};
  Write("hsm_record_fuzz", "archived", mover::EncodeRecord(rec));
  rec.states = 0xd;
  rec.resident = {{0, 512}, {8192, 512}};
  rec.last_error_code = 5;
  rec.last_error = "restore failed: archive copy missing";
  Write("hsm_record_fuzz", "released", mover::EncodeRecord(rec));
}

void HolderProtocol() {
  using namespace watch;
  Write("holder_protocol_fuzz", "hello", EncodeMessage(HelloMsg{Role::kWatcher}));
  Write("holder_protocol_fuzz", "welcome", EncodeMessage(WelcomeMsg{"fsid-0a1b", "/mnt/fs"}));
  Write("holder_protocol_fuzz", "refused", EncodeMessage(RefusedMsg{"a watcher is connected"}));
  Write("holder_protocol_fuzz", "event", EncodeMessage(EventMsg{9, 0x10000, 1234, true, 0, 4096}));
  Write("holder_protocol_fuzz", "answer", EncodeMessage(AnswerMsg{9, EIO}));
}

// fid_fuzz reads, with FuzzedDataProvider: an int from the end, a string from the front (ended
// by a backslash and one other byte), the rest as a FileRef.
void Fid() {
  v1::FileRef ref;
  ref.set_fsid("fs1");
  ref.set_seq(0x200000401);
  ref.set_oid(1);
  ref.set_path("/data/f1");
  std::string action("\x01\x00\x00\x00", 4);
  Write("fid_fuzz", "bracketed",
        "[0x200000401:0x1:0x0]\\;" + ref.SerializeAsString() + action);
  Write("fid_fuzz", "bare", "0x200000401:0x1:0x0\\;" + ref.SerializeAsString() + action);
}

// coordinator_fuzz scripts (see the op table in coordinator_fuzz.cc).
class Script {
 public:
  Script& Op(uint8_t op) {
    s_.push_back(static_cast<char>(op));
    return *this;
  }
  Script& Byte(uint8_t b) { return Op(b); }
  Script& Msg(uint8_t op, const google::protobuf::Message& m) {
    std::string bytes = m.SerializeAsString();
    if (bytes.size() > 255) std::abort();
    Op(op).Byte(static_cast<uint8_t>(bytes.size()));
    s_ += bytes;
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

v1::RequestSpec Spec(v1::Action action, uint64_t seq, uint64_t flags = 0) {
  v1::RequestSpec s;
  s.set_action(action);
  s.mutable_file()->set_fsid("fs1");
  s.mutable_file()->set_seq(seq);
  s.mutable_file()->set_oid(1);
  s.set_archive_id(1);
  s.set_flags(flags);
  return s;
}

void Coordinator() {
  v1::Hello hello;
  hello.set_id("m1");
  hello.set_host("h1");
  hello.add_archive_ids(1);
  hello.mutable_capacities()->set_max_archive(2);
  hello.mutable_capacities()->set_max_restore(2);
  hello.mutable_capacities()->set_max_remove(2);
  v1::SubmitRequest submit;
  submit.set_idempotency_key("k1");
  *submit.add_requests() = Spec(v1::ARCHIVE, 10);
  *submit.add_requests() = Spec(v1::ARCHIVE, 11);
  *submit.add_requests() = Spec(v1::RESTORE, 12, hsm::kHalFlagBlocking);
  v1::StatusRequest status;
  status.set_include_requests(true);
  v1::CancelRequest cancel;
  cancel.add_ids(2);
  *cancel.add_files() = Spec(v1::ARCHIVE, 11).file();
  v1::StateRequest state;
  *state.add_files() = Spec(v1::ARCHIVE, 10).file();
  v1::LockRequest lock;
  lock.set_lock(1);
  v1::LockRequest unlock;
  v1::DrainRequest drain;
  drain.set_mover("m1");
  v1::WaitRequest wait;
  wait.add_ids(1);
  wait.add_ids(3);

  // Dispatch, success, a retryable failure, progress, then the timers.
  Write("coordinator_fuzz", "dispatch_and_results",
        Script()
            .Msg(6, hello).Msg(0, submit).Msg(15, wait).Op(10)
            .Op(8).Byte(0).Byte(0).Byte(0)
            .Op(8).Byte(0).Byte(1).Byte(1)
            .Op(8).Byte(0).Byte(2).Byte(4)
            .Op(9).Byte(2).Op(8).Byte(0).Byte(3).Byte(2)
            .Msg(3, status).Msg(2, state).Op(9).Byte(255).Msg(3, status)
            .str());
  // Cancel, lock, drain, a stream that ends, a restart over the journal.
  Write("coordinator_fuzz", "cancel_lock_restart",
        Script()
            .Msg(0, submit).Msg(6, hello).Msg(1, cancel).Msg(4, lock).Msg(5, drain)
            .Op(11).Byte(0).Op(17).Msg(4, unlock).Msg(6, hello).Op(10).Msg(3, status)
            .Op(9).Byte(20).Msg(3, status)
            .str());
  // Journal appends held, then failing.
  Write("coordinator_fuzz", "journal_failures",
        Script()
            .Msg(6, hello).Op(12).Msg(0, submit).Op(13).Byte(1).Op(14).Byte(1).Msg(0, submit)
            .Op(13).Byte(255).Op(9).Byte(1).Msg(4, lock).Msg(3, status)
            .str());
}

void Cli() {
  auto args = [](std::vector<std::string> v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) s.push_back('\0');
      s += v[i];
    }
    return s;
  };
  Write("cli_fuzz", "archive", args({"archive", "--coordinator", "localhost:7420", "--archive-id",
                                     "2", "--data", "k=v", "--wait", "/tmp"}));
  Write("cli_fuzz", "coordinator", args({"coordinator", "--listen", "127.0.0.1:0", "--state",
                                         "/tmp", "--max-attempts", "5", "--retry-delay", "0.5",
                                         "--active-request-timeout", "60", "--log-level", "warn"}));
  Write("cli_fuzz", "mover", args({"mover", "--id", "m1", "--archive-id", "1", "--archive-id", "3",
                                   "--posix-root", "/tmp", "--max-archive", "-1",
                                   "--max-bytes", "1048576", "--bandwidth", "100"}));
  Write("cli_fuzz", "state", args({"state", "--set", "norelease,noarchive", "--json", "/tmp"}));
  Write("cli_fuzz", "status", args({"status", "--limit", "10", "--json"}));
  Write("cli_fuzz", "cancel_fid", args({"cancel", "/tmp/[0x200000401:0x1:0x0]"}));
  Write("cli_fuzz", "lock", args({"lock", "--quit"}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  Hal();
  ActiveRequests();
  RequestCodec();
  HsmRecord();
  HolderProtocol();
  Fid();
  Coordinator();
  Cli();
  return 0;
}
