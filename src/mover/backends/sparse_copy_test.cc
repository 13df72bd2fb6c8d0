#include "mover/backends/sparse_copy.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "mover/fs/fs_test_support.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::mover {
namespace {

using Steady = std::chrono::steady_clock;

struct Pair {
  UniqueFd src, dst;
};

Pair MakePair(const std::string& dir, size_t bytes) {
  Pair p;
  p.src = UniqueFd(::open((dir + "/src").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  p.dst = UniqueFd(::open((dir + "/dst").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  std::string data(bytes, 'q');
  EXPECT_EQ(::pwrite(p.src.get(), data.data(), data.size(), 0), static_cast<ssize_t>(bytes));
  EXPECT_EQ(::ftruncate(p.dst.get(), static_cast<off_t>(bytes)), 0);
  return p;
}

TEST(SparseCopy, BandwidthLimitHoldsTheRateDown) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const size_t bytes = 2 << 20;
  Pair p = MakePair(dir.path(), bytes);
  CopyControl ctl;
  ctl.max_bytes_per_sec = 4 << 20;  // 2 MiB at 4 MiB/s: at least 0.5 s
  SparseCopyOptions opt;
  opt.chunk_size = 64 << 10;
  const auto start = Steady::now();
  auto sum = CopySparse({p.src.get(), "src"}, {p.dst.get(), "dst"}, bytes, opt, ctl);
  const auto elapsed = Steady::now() - start;
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  // Sleeping never wakes early, so this lower bound cannot flake.
  EXPECT_GE(elapsed, std::chrono::milliseconds(480));
}

TEST(SparseCopy, CancelStopsAThrottledCopy) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const size_t bytes = 4 << 20;
  Pair p = MakePair(dir.path(), bytes);
  std::atomic<bool> cancel{false};
  CopyControl ctl;
  ctl.cancel = &cancel;
  ctl.max_bytes_per_sec = 64 << 10;  // would take a minute
  bool canceled_once = false;
  ctl.progress = [&](uint64_t done, uint64_t) {
    if (done > 0 && !canceled_once) {
      canceled_once = true;
      cancel = true;
    }
  };
  SparseCopyOptions opt;
  opt.chunk_size = 64 << 10;
  opt.progress_interval_ms = 0;
  auto sum = CopySparse({p.src.get(), "src"}, {p.dst.get(), "dst"}, bytes, opt, ctl);
  ASSERT_FALSE(sum.ok());
  EXPECT_EQ(sum.status().code(), Code::kCanceled);
}

}  // namespace
}  // namespace tierflow::mover
