// Transparent restore, measured on real processes: `tierflow up` watching a loop-mounted ext4
// filesystem, its archive a directory on the same disk, and this process as an ordinary reader.
//  1. Time from open+read of a released 1 MiB file to its first byte (the whole file is
//     restored before the read returns), against reading the archive copy itself cold (first
//     byte, and all of it), in the same run.
//  2. Reading 10,000 resident 4 KiB files on the watched filesystem against the same files on
//     an identical unwatched one, in alternating rounds of the same run: the first round pays a
//     trip to the holder per file (which then leaves an ignore mark), later rounds should not.
//     A third side shows the kernel's own floor: the unwatched files under a pre-content group
//     of this process with an ignore mark on every file, so no event ever reaches userspace;
//     what the kernel charges for a watched filesystem whatever the daemon does.
// Usage: watch_bench [files_for_latency=100] [small_files=10000] [rounds=5]
#include <fcntl.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "watch/fanotify.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

int Sh(const std::string& cmd) { return std::system(cmd.c_str()); }

// Undone on the way out when the bench fails halfway.
pid_t g_up = 0;                    // the tierflow up process
std::vector<std::string> g_mounts;  // loop mounts made so far

void Die(const std::string& what) {
  std::fprintf(stderr, "watch_bench: %s\n", what.c_str());
  if (g_up > 0) ::kill(g_up, SIGTERM);
  for (const std::string& m : g_mounts) std::system(("umount -l " + m).c_str());
  std::exit(1);
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void WriteFile(const std::string& path, size_t size, unsigned seed) {
  std::string data(size, '\0');
  unsigned x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    data[i] = static_cast<char>(x >> 16);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::write(fd, data.data(), size) != static_cast<ssize_t>(size)) Die("write " + path);
  ::close(fd);
}

void DropCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// open + read of `len` bytes (1: the first byte); returns the time it took.
double TimedRead(const std::string& path, size_t len) {
  static std::vector<char> buf(1 << 20);
  const auto t0 = Clock::now();
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) Die("open " + path);
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::read(fd, buf.data(), std::min(buf.size(), len - got));
    if (n < 0) Die("read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  const auto t1 = Clock::now();
  ::close(fd);
  if (got == 0) Die("nothing read from " + path);
  return Us(t1 - t0);
}

double ReadAll(const std::vector<std::string>& files) {
  char buf[4096];
  const auto t0 = Clock::now();
  for (const std::string& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0 || ::read(fd, buf, sizeof buf) <= 0) Die("read " + f);
    ::close(fd);
  }
  return Us(Clock::now() - t0) / 1e6;
}

struct LoopFs {
  std::string img, mnt;
  LoopFs(const std::string& base, const std::string& name) : img(base + "/" + name + ".img"), mnt(base + "/" + name) {
    fs::create_directories(mnt);
    if (Sh("truncate -s 512M " + img + " && mkfs.ext4 -q -F -I 256 " + img + " && mount -o loop " +
           img + " " + mnt) != 0) {
      Die("cannot make a loop-mounted ext4 at " + mnt);
    }
    g_mounts.push_back(mnt);
  }
  ~LoopFs() { Sh("umount -l " + mnt); }
};

}  // namespace

int main(int argc, char** argv) {
  const int latency_files = argc > 1 ? std::atoi(argv[1]) : 100;
  const int small_files = argc > 2 ? std::atoi(argv[2]) : 10000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  char tmpl[] = "/var/tmp/tierflow-watch-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  const std::string base = tmpl;
  const std::string bin = TIERFLOW_BINARY;
  const std::string port = std::to_string(20000 + ::getpid() % 20000);
  const std::string addr = "127.0.0.1:" + port;
  ::setenv("TIERFLOW_COORDINATOR", addr.c_str(), 1);
  ::setenv("TIERFLOW_RUN_DIR", (base + "/run").c_str(), 1);
  {
    LoopFs watched(base, "watched");
    LoopFs plain(base, "plain");
    LoopFs floor(base, "floor");
    const std::string archive = base + "/archive";
    pid_t up = ::fork();
    if (up == 0) {
      std::string log = base + "/up.log";
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(bin.c_str(), bin.c_str(), "up", "--fs", watched.mnt.c_str(), "--archive",
              archive.c_str(), "--listen", addr.c_str(), "--state", (base + "/state").c_str(),
              "--log-level", "warn", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    g_up = up;
    bool ready = false;
    for (int i = 0; i < 300 && !ready; ++i) {
      ready = Sh(bin + " status >/dev/null 2>&1") == 0;
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // startup poll
    }
    if (!ready) Die("tierflow up did not start; see " + base + "/up.log");

    // 1. First byte of a released 1 MiB file.
    const std::string dir = watched.mnt + "/lat";
    fs::create_directories(dir);
    std::vector<std::string> files;
    for (int i = 0; i < latency_files; ++i) {
      files.push_back(dir + "/f" + std::to_string(i));
      WriteFile(files.back(), 1 << 20, static_cast<unsigned>(i));
    }
    if (Sh(bin + " archive --wait " + dir + " >/dev/null") != 0) Die("archive failed");
    if (Sh(bin + " release " + dir + " >/dev/null") != 0) Die("release failed");
    std::vector<std::string> copies;
    for (const auto& e : fs::recursive_directory_iterator(archive)) {
      if (e.is_regular_file()) copies.push_back(e.path().string());
    }
    std::vector<double> restore_us, copy_first_us, copy_all_us;
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string& copy = copies[i % copies.size()];
      DropCache(copy);
      copy_first_us.push_back(TimedRead(copy, 1));
      DropCache(copy);
      copy_all_us.push_back(TimedRead(copy, 1 << 20));
      DropCache(copies[(i + 1) % copies.size()]);
      restore_us.push_back(TimedRead(files[i], 1));
    }
    std::printf("released 1 MiB file, open+read to first byte (%d files):\n", latency_files);
    std::printf("  transparent restore   p50 %8.0f us   p99 %8.0f us\n",
                Percentile(restore_us, 0.5), Percentile(restore_us, 0.99));
    std::printf("  archive copy, 1 byte  p50 %8.0f us   p99 %8.0f us   (restore/copy p50 %.1fx)\n",
                Percentile(copy_first_us, 0.5), Percentile(copy_first_us, 0.99),
                Percentile(restore_us, 0.5) / Percentile(copy_first_us, 0.5));
    std::printf("  archive copy, 1 MiB   p50 %8.0f us   p99 %8.0f us   (restore/copy p50 %.1fx)\n",
                Percentile(copy_all_us, 0.5), Percentile(copy_all_us, 0.99),
                Percentile(restore_us, 0.5) / Percentile(copy_all_us, 0.5));

    // 2. Resident small files, watched vs unwatched.
    std::vector<std::string> w, u, k;
    for (const LoopFs* side : {&watched, &plain, &floor}) fs::create_directories(side->mnt + "/small");
    for (int i = 0; i < small_files; ++i) {
      const std::string name = "/small/s" + std::to_string(i);
      w.push_back(watched.mnt + name);
      u.push_back(plain.mnt + name);
      k.push_back(floor.mnt + name);
      for (const std::string* f : {&w.back(), &u.back(), &k.back()}) {
        WriteFile(*f, 4096, static_cast<unsigned>(i));
      }
    }
    // The kernel's floor: a pre-content group of this process on the third filesystem with an
    // ignore mark on every file, so no event ever reaches userspace. Marked by path: opening
    // the files here would raise events for this very group.
    auto group = tierflow::watch::InitPreContentGroup(false);
    if (!group.ok()) Die(group.status().ToString());
    if (!tierflow::watch::MarkFilesystemPreAccess(group->get(), floor.mnt).ok()) Die("mark");
    using tierflow::watch::kFanMarkEvictable;
    using tierflow::watch::kWatchedEvents;
    for (const std::string& f : k) {
      if (::fanotify_mark(group->get(), FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | kFanMarkEvictable,
                          kWatchedEvents, AT_FDCWD, f.c_str()) != 0) {
        Die("ignore mark on " + f + ": " + std::strerror(errno));
      }
    }
    // Rounds rotate the order of the three sides so that none always runs first.
    std::vector<double> times[3];
    const std::vector<std::string>* sides[3] = {&w, &u, &k};
    for (int r = 0; r < rounds; ++r) {
      for (int j = 0; j < 3; ++j) {
        int side = (r + j) % 3;
        times[side].push_back(ReadAll(*sides[side]));
      }
    }
    std::printf("reading %d resident 4 KiB files (open+read+close), ext4, same run:\n", small_files);
    std::printf("  first round   watched %.3f s   unwatched %.3f s   overhead %+.1f%%\n",
                times[0][0], times[1][0], (times[0][0] / times[1][0] - 1) * 100);
    if (rounds > 1) {
      double med[3];
      for (int j = 0; j < 3; ++j) {
        med[j] = Percentile(std::vector<double>(times[j].begin() + 1, times[j].end()), 0.5);
      }
      std::printf("  later rounds (median of %d): watched %.3f s, unwatched %.3f s, kernel floor %.3f s\n",
                  rounds - 1, med[0], med[1], med[2]);
      std::printf("  overhead vs unwatched: watched %+.1f%%, kernel floor %+.1f%%; watched vs floor %+.1f%%\n",
                  (med[0] / med[1] - 1) * 100, (med[2] / med[1] - 1) * 100,
                  (med[0] / med[2] - 1) * 100);
    }
    ::kill(up, SIGTERM);
    ::waitpid(up, nullptr, 0);
  }
  fs::remove_all(base);
  return 0;
}
