// Archive and restore throughput of one large file through the posix backend, against `cp` of
// the same file in the same run (and `cp` followed by fsync, since an archive copy is made
// durable before it counts). Usage: archive_bench [SIZE_MIB=2048] [ROUNDS=3] [DIR=/var/tmp]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "mover/backends/posix_backend.h"
#include "mover/fs/local_fs.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void WriteData(const std::string& path, uint64_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<uint64_t> buf((4 << 20) / 8);
  uint64_t s = 88172645463325252ull;
  for (uint64_t off = 0; off < size; off += buf.size() * 8) {
    for (auto& w : buf) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      w = s;
    }
    if (pwrite(fd, buf.data(), buf.size() * 8, off) < 0) std::abort();
  }
  fsync(fd);
  close(fd);
}

double TimeCommand(const std::string& cmd) {
  auto t0 = Clock::now();
  if (std::system(cmd.c_str()) != 0) std::abort();
  return Seconds(t0, Clock::now());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tierflow;
  uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2048;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  std::string base = argc > 3 ? argv[3] : "/var/tmp";
  uint64_t size = mib << 20;
  std::string dir = base + "/tierflow-archive-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/archive");
  std::string src = dir + "/file";
  WriteData(src, size);

  auto backend = mover::PosixBackend::Open({.root = dir + "/archive"});
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().ToString().c_str());
    return 1;
  }
  auto id = mover::IdentifyFile(src);
  if (!id.ok()) return 1;

  std::vector<double> cp_t, cp_sync_t, archive_t, restore_t, cp_back_t;
  for (int r = 0; r < rounds; ++r) {
    cp_t.push_back(TimeCommand("cp " + src + " " + dir + "/cp-copy"));
    std::filesystem::remove(dir + "/cp-copy");
    cp_sync_t.push_back(TimeCommand("cp " + src + " " + dir + "/cp-copy && sync -f " + dir + "/cp-copy"));
    std::filesystem::remove(dir + "/cp-copy");

    auto t0 = Clock::now();
    Status st = mover::ArchiveFile(src, *id, 1, **backend, {});
    archive_t.push_back(Seconds(t0, Clock::now()));
    if (!st.ok()) {
      std::fprintf(stderr, "archive: %s\n", st.ToString().c_str());
      return 1;
    }
    st = mover::ReleaseFile(src);
    if (!st.ok()) {
      std::fprintf(stderr, "release: %s\n", st.ToString().c_str());
      return 1;
    }
    std::string copy = dir + "/archive/" + (*backend)->RelativePath(id->fid);
    cp_back_t.push_back(TimeCommand("cp " + copy + " " + dir + "/cp-back && sync -f " + dir + "/cp-back"));
    std::filesystem::remove(dir + "/cp-back");
    t0 = Clock::now();
    st = mover::RestoreFile(src, *id, **backend, {});
    restore_t.push_back(Seconds(t0, Clock::now()));
    if (!st.ok()) {
      std::fprintf(stderr, "restore: %s\n", st.ToString().c_str());
      return 1;
    }
    // Make the next round archive again.
    st = mover::RemoveFile(src, *id, **backend);
    if (!st.ok()) return 1;
  }
  double gib = double(size) / (1 << 30);
  auto rate = [&](double s) { return gib / s; };
  double cp = Median(cp_t), cps = Median(cp_sync_t), ar = Median(archive_t), rs = Median(restore_t),
         cpb = Median(cp_back_t);
  std::printf("file %.2f GiB, %d rounds, medians\n", gib, rounds);
  std::printf("cp            %.2fs  %.2f GiB/s\n", cp, rate(cp));
  std::printf("cp+fsync      %.2fs  %.2f GiB/s\n", cps, rate(cps));
  std::printf("archive       %.2fs  %.2f GiB/s  ratio vs cp %.2fx, vs cp+fsync %.2fx\n", ar, rate(ar),
              cp / ar, cps / ar);
  std::printf("cp back+fsync %.2fs  %.2f GiB/s\n", cpb, rate(cpb));
  std::printf("restore       %.2fs  %.2f GiB/s  ratio vs cp %.2fx, vs cp back+fsync %.2fx\n", rs,
              rate(rs), cp / rs, cpb / rs);
  std::filesystem::remove_all(dir);
  return 0;
}
