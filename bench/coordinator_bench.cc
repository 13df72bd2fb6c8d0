// Coordinator throughput, end to end: a Server with its SQLite journal and real gRPC on
// loopback, one in-process mover that answers every batch at once with one Reports message,
// and several submitters sending archive requests in batches. Measures requests/s from the
// first submit until every request is SUCCEEDED and durable (seen through Wait).
//
// Runs the weighted scheduling policy and the plain fifo one side by side (policy=both), or
// one of them (policy=weighted|fifo).
//
// Usage: coordinator_bench [requests=1000000] [submitters=4] [batch=1000] [capacity=10000]
//                          [policy=both]
#include <dlfcn.h>
#include <grpcpp/grpcpp.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "coordinator/server.h"
#include "tierflow.grpc.pb.h"

using namespace tierflow;

namespace {

const auto kStart = std::chrono::steady_clock::now();
double Elapsed() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - kStart).count();
}

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds used so far per thread name (from /proc).
std::map<std::string, double> CpuByThreadName() {
  std::map<std::string, double> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string c;
    std::getline(comm, c);
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream in(line.substr(line.rfind(')') + 2));
    std::string field;
    unsigned long long ut = 0, st = 0;
    for (int i = 3; i <= 15; ++i) {
      in >> field;
      if (i == 14) ut = std::stoull(field);
      if (i == 15) st = std::stoull(field);
    }
    out[c] += static_cast<double>(ut + st) / sysconf(_SC_CLK_TCK);
  }
  return out;
}

double ThreadCpuSeconds(const std::string& name) { return CpuByThreadName()[name]; }

// The malloc this process runs on: the bench links jemalloc like the tierflow command does,
// and says so, since the allocator is a third of the CPU per request.
const char* Allocator() {
  return dlsym(RTLD_DEFAULT, "mallctl") != nullptr ? "jemalloc" : "glibc";
}

struct Args {
  uint64_t requests = 1'000'000;
  int submitters = 4;
  int batch = 1000;
  int capacity = 10'000;
  std::string policy = "both";
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto eq = s.find('=');
    if (eq == std::string::npos) continue;
    std::string k = s.substr(0, eq);
    if (k == "policy") {
      a.policy = s.substr(eq + 1);
      continue;
    }
    uint64_t v = std::stoull(s.substr(eq + 1));
    if (k == "requests") a.requests = v;
    if (k == "submitters") a.submitters = static_cast<int>(v);
    if (k == "batch") a.batch = static_cast<int>(v);
    if (k == "capacity") a.capacity = static_cast<int>(v);
  }
  return a;
}

std::shared_ptr<grpc::Channel> Connect(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

// Answers every batch at once with one Reports message.
void RunMover(int port, int capacity, std::atomic<uint64_t>* done) {
  auto stub = v1::Coordinator::NewStub(Connect(port));
  grpc::ClientContext ctx;
  auto stream = stub->MoverSession(&ctx);
  v1::MoverMessage hello;
  auto* h = hello.mutable_hello();
  h->set_id("bench-mover");
  h->set_host("localhost");
  h->add_archive_ids(1);
  h->mutable_capacities()->set_max_archive(capacity);
  h->mutable_capacities()->set_max_restore(capacity);
  h->mutable_capacities()->set_max_remove(capacity);
  if (!stream->Write(hello)) return;
  v1::CoordinatorMessage msg;
  v1::MoverMessage reports;
  while (stream->Read(&msg)) {
    if (msg.has_ping()) {
      v1::MoverMessage pong;
      pong.mutable_pong()->set_seq(msg.ping().seq());
      if (!stream->Write(pong)) break;
      continue;
    }
    if (!msg.has_batch()) continue;
    uint64_t items_size = msg.batch().items_size();
    reports.Clear();
    auto* results = reports.mutable_reports()->mutable_results();
    results->Reserve(msg.batch().items_size());
    for (const auto& item : msg.batch().items()) {
      auto* r = results->Add();
      r->set_id(item.id());
      r->set_epoch(item.epoch());
    }
    uint64_t moved = done->fetch_add(msg.batch().items_size(), std::memory_order_relaxed);
    if (getenv("TF_BENCH_VERBOSE") && moved / 100000 != (moved + items_size) / 100000) {
      std::fprintf(stderr, "%.3f mover: %llu moved\n", Elapsed(),
                   static_cast<unsigned long long>(moved + items_size));
    }
    if (!stream->Write(reports)) break;
  }
  stream->Finish();
}

// Submits its share, then waits for all of it. Returns the number seen SUCCEEDED.
uint64_t RunSubmitter(int port, int index, uint64_t first, uint64_t count, int batch,
                      std::atomic<bool>* failed) {
  auto stub = v1::Coordinator::NewStub(Connect(port));
  std::vector<uint64_t> ids;
  ids.reserve(count);
  for (uint64_t done = 0; done < count;) {
    v1::SubmitRequest req;
    uint64_t n = std::min<uint64_t>(batch, count - done);
    for (uint64_t i = 0; i < n; ++i) {
      auto* s = req.add_requests();
      s->set_action(v1::ARCHIVE);
      auto* f = s->mutable_file();
      f->set_fsid("benchfs");
      f->set_seq(first + done + i + 1);
      f->set_oid(1);
      f->set_path("/bench/file" + std::to_string(first + done + i));
    }
    grpc::ClientContext ctx;
    v1::SubmitReply reply;
    grpc::Status st = stub->Submit(&ctx, req, &reply);
    if (!st.ok()) {
      std::fprintf(stderr, "submitter %d: Submit failed: %s\n", index, st.error_message().c_str());
      failed->store(true);
      return 0;
    }
    for (const auto& a : reply.accepted()) ids.push_back(a.id());
    done += n;
  }
  if (getenv("TF_BENCH_VERBOSE")) {
    std::fprintf(stderr, "%.3f submitter %d: all %llu submitted\n", Elapsed(), index,
                 static_cast<unsigned long long>(count));
  }
  // One Wait per 100,000 ids (the coordinator's limit per call), one after the other.
  uint64_t succeeded = 0;
  for (size_t from = 0; from < ids.size(); from += 100'000) {
    size_t to = std::min(ids.size(), from + 100'000);
    grpc::ClientContext ctx;
    v1::WaitRequest wreq;
    wreq.mutable_ids()->Add(ids.begin() + static_cast<std::ptrdiff_t>(from),
                            ids.begin() + static_cast<std::ptrdiff_t>(to));
    auto reader = stub->Wait(&ctx, wreq);
    v1::WaitUpdate u;
    while (reader->Read(&u)) {
      for (const auto& info : u.requests()) {
        if (info.state() == v1::SUCCEEDED) ++succeeded;
      }
    }
    grpc::Status st = reader->Finish();
    if (!st.ok()) {
      std::fprintf(stderr, "submitter %d: Wait failed: %s\n", index, st.error_message().c_str());
      failed->store(true);
      break;
    }
  }
  return succeeded;
}

// One run with `policy`; 0 when every request succeeded.
int RunPolicy(const Args& args, const std::string& policy) {
  char tmpl[] = "/tmp/tf_coord_bench_XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string dir = tmpl;
  int rc = 0;
  {
    coordinator::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.state_dir = dir;
    options.final_grace_us = 600'000'000;  // keep every record for the run
    options.scheduling.order.policy = policy;
    auto server = coordinator::Server::Start(options);
    if (!server.ok()) {
      std::fprintf(stderr, "cannot start the coordinator: %s\n",
                   server.status().ToString().c_str());
      std::filesystem::remove_all(dir);
      return 1;
    }
    int port = (*server)->port();
    std::atomic<uint64_t> moved{0};
    std::thread mover(RunMover, port, args.capacity, &moved);

    std::atomic<bool> failed{false};
    std::vector<uint64_t> succeeded(args.submitters, 0);
    double cpu0 = ProcessCpuSeconds();
    double loop0 = ThreadCpuSeconds("tf-loop");
    auto threads0 = CpuByThreadName();
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> submitters;
    uint64_t per = args.requests / args.submitters;
    for (int i = 0; i < args.submitters; ++i) {
      uint64_t count = i + 1 == args.submitters ? args.requests - per * i : per;
      submitters.emplace_back([&, i, count] {
        succeeded[i] = RunSubmitter(port, i, per * i, count, args.batch, &failed);
      });
    }
    for (auto& t : submitters) t.join();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t total = 0;
    for (uint64_t s : succeeded) total += s;
    double cpu = ProcessCpuSeconds() - cpu0;
    double loop_cpu = ThreadCpuSeconds("tf-loop") - loop0;
    auto threads1 = CpuByThreadName();

    auto stub = v1::Coordinator::NewStub(Connect(port));
    grpc::ClientContext ctx;
    v1::StatusReply status;
    stub->Status(&ctx, v1::StatusRequest(), &status);
    (*server)->Shutdown();
    mover.join();

    std::printf(
        "coordinator_throughput policy=%s requests=%llu seconds=%.3f rate=%.0f/s allocator=%s\n",
        policy.c_str(), static_cast<unsigned long long>(total), seconds, total / seconds,
        Allocator());
    std::printf(
        "  submitted=%llu moved=%llu journal_records=%llu batches=%llu\n",
        static_cast<unsigned long long>(args.requests),
        static_cast<unsigned long long>(moved.load()),
        static_cast<unsigned long long>(status.journal_records()),
        static_cast<unsigned long long>(status.movers_size() > 0 ? status.movers(0).batches() : 0));
    std::printf("  cpu_us_per_request=%.1f (loop thread %.1f; clients and mover included)\n",
                cpu * 1e6 / std::max<uint64_t>(total, 1),
                loop_cpu * 1e6 / std::max<uint64_t>(total, 1));
    if (getenv("TF_BENCH_VERBOSE")) {
      for (const auto& [name, secs] : threads1) {
        std::printf("    %-16s %.1f us/request\n", name.c_str(),
                    (secs - threads0[name]) * 1e6 / std::max<uint64_t>(total, 1));
      }
    }
    if (failed.load() || total != args.requests) {
      std::fprintf(stderr, "FAILED: %llu of %llu requests seen SUCCEEDED\n",
                   static_cast<unsigned long long>(total),
                   static_cast<unsigned long long>(args.requests));
      rc = 1;
    }
  }
  std::filesystem::remove_all(dir);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = Parse(argc, argv);
  InitLogging("warn", "coordinator_bench");
  int rc = 0;
  for (const std::string policy : {"weighted", "fifo"}) {
    if (args.policy == "both" || args.policy == policy) rc |= RunPolicy(args, policy);
  }
  return rc;
}
