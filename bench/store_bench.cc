// Journal throughput: full-row upserts per second through SqliteJournal::Commit (one transaction
// and one fsync per batch) and through the JournalWriter's group commit. Records follow a steady
// coordinator's mix: a third are new requests, a third assignments of earlier ones, a third their
// final state. The journal lives in a fresh directory under TMPDIR (default /tmp).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "store/journal_writer.h"
#include "store/sqlite/sqlite_journal.h"

namespace tierflow::store {
namespace {

RequestRow Row(uint64_t id, RequestState state) {
  RequestRow r;
  r.id = id;
  r.file.fsid = "lustre0";
  r.file.fid = {0x200000400 + id / 65536, static_cast<uint32_t>(id % 65536), 0};
  r.path = "/mnt/lustre/projects/climate/run42/output/part-" + std::to_string(id) + ".nc";
  r.action = hsm::Action::kArchive;
  r.archive_id = 1;
  r.user = "alice";
  r.state = state;
  if (state != RequestState::kQueued) {
    r.mover = "mover-3";
    r.epoch = 1;
    r.attempts = 1;
  }
  r.created_us = 1'700'000'000'000'000 + static_cast<int64_t>(id);
  r.changed_us = r.created_us + (state == RequestState::kQueued ? 0 : 5000);
  return r;
}

// Batch `n` of a steady stream: new requests, assignments of batch n-1's, finals of batch n-2's.
std::vector<JournalRecord> SteadyBatch(uint64_t n, uint64_t size) {
  uint64_t third = size / 3;
  std::vector<JournalRecord> batch;
  batch.reserve(size);
  for (uint64_t i = 0; i < size - 2 * third; ++i) batch.push_back(JournalRecord::Put(Row(n * size + i, RequestState::kQueued)));
  for (uint64_t i = 0; i < third; ++i) {
    uint64_t prev = n >= 1 ? (n - 1) * size + i : n * size + i;
    batch.push_back(JournalRecord::Put(Row(prev, RequestState::kAssigned)));
  }
  for (uint64_t i = 0; i < third; ++i) {
    uint64_t older = n >= 2 ? (n - 2) * size + i : n * size + i;
    batch.push_back(JournalRecord::Put(Row(older, RequestState::kSucceeded)));
  }
  return batch;
}

class BenchDir {
 public:
  BenchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr ? tmp : "/tmp") + "/tf_store_bench.XXXXXX";
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~BenchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string File(const char* name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

std::unique_ptr<SqliteJournal> OpenJournal(benchmark::State& state, const BenchDir& dir) {
  if (!dir.ok()) {
    state.SkipWithError("cannot create a temporary directory");
    return nullptr;
  }
  Result<std::unique_ptr<SqliteJournal>> j = SqliteJournal::Open(dir.File("journal.db"));
  if (!j.ok()) {
    state.SkipWithError(j.status().ToString().c_str());
    return nullptr;
  }
  return std::move(j).value();
}

// One Commit per iteration: the journal's own ceiling, with one fsync per batch.
void BM_SqliteCommit(benchmark::State& state) {
  BenchDir dir;
  std::unique_ptr<SqliteJournal> journal = OpenJournal(state, dir);
  if (journal == nullptr) return;
  uint64_t size = state.range(0);
  uint64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<JournalRecord> batch = SteadyBatch(n++, size);
    state.ResumeTiming();
    Status st = journal->Commit(batch);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(n * size), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SqliteCommit)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// Through the store thread: 3 records per append (as the coordinator does for a request's life),
// appended as fast as one thread can; group commit picks the batch size.
void BM_WriterAppend(benchmark::State& state) {
  BenchDir dir;
  std::unique_ptr<SqliteJournal> journal = OpenJournal(state, dir);
  if (journal == nullptr) return;
  JournalWriter writer(journal.get());
  constexpr uint64_t kAppendsPerIteration = 10000;
  uint64_t n = 0;
  for (auto _ : state) {
    for (uint64_t i = 0; i < kAppendsPerIteration; ++i, ++n) {
      writer.Append({JournalRecord::Put(Row(n, RequestState::kQueued)),
                     JournalRecord::Put(Row(n > 5000 ? n - 5000 : n, RequestState::kAssigned)),
                     JournalRecord::Put(Row(n > 10000 ? n - 10000 : n, RequestState::kSucceeded))},
                    nullptr);
    }
    writer.Flush();
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(writer.committed_records()),
                                                   benchmark::Counter::kIsRate);
  state.counters["records/commit"] =
      static_cast<double>(writer.committed_records()) / static_cast<double>(std::max<uint64_t>(1, writer.commits()));
}
BENCHMARK(BM_WriterAppend)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// Start-up: Load of a journal holding 200,000 requests, in rows per second.
void BM_Load(benchmark::State& state) {
  BenchDir dir;
  std::unique_ptr<SqliteJournal> journal = OpenJournal(state, dir);
  if (journal == nullptr) return;
  constexpr uint64_t kRows = 200000;
  for (uint64_t first = 0; first < kRows; first += 10000) {
    std::vector<JournalRecord> batch;
    for (uint64_t id = first; id < first + 10000; ++id) batch.push_back(JournalRecord::Put(Row(id, RequestState::kQueued)));
    Status st = journal->Commit(batch);
    if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
  }
  uint64_t rows = 0;
  for (auto _ : state) {
    Result<JournalContents> c = journal->Load();
    if (!c.ok()) return state.SkipWithError(c.status().ToString().c_str());
    rows += c->requests.size();
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tierflow::store

BENCHMARK_MAIN();
