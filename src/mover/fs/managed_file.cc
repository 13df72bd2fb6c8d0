// ManagedFile: opening a regular file safely, its identity and stamp, leases that cannot kill
// the process, and the sealed record write that lets release trust a stamp across our own
// xattr writes.
#include "mover/fs/managed_file.h"
#include "mover/fs/local_fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <vector>

#include "hsm/hsm_state.h"

namespace tierflow::mover {
namespace {

// How long after we read the clock a record write may take to land and still be sealed.
constexpr int64_t kSealSlackNs = 2'000'000;
constexpr int kSealAttempts = 3;

int64_t NowNs(clockid_t clock) {
  struct timespec ts;
  ::clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t ToNs(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec; }

struct timespec ToTimespec(int64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// The ctime a write made now will get lies in the window: the kernel stamps it from the coarse
// clock (or a finer one), possibly truncated to whole seconds by the filesystem.
CtimeSeal ChooseWindow() {
  int64_t coarse = NowNs(CLOCK_REALTIME_COARSE);
  return {coarse - coarse % 1'000'000'000, NowNs(CLOCK_REALTIME) + kSealSlackNs};
}

// Returns once the coarse clock, which stamps later changes by others, has passed `hi_ns`.
void WaitCoarseClockPast(int64_t hi_ns) {
  struct timespec res;
  ::clock_getres(CLOCK_REALTIME_COARSE, &res);
  int64_t step = std::max<int64_t>(ToNs(res) / 4, 100'000);
  struct timespec until = ToTimespec(hi_ns + 1);
  while (::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, nullptr) == EINTR) {
  }
  while (NowNs(CLOCK_REALTIME_COARSE) <= hi_ns) {
    struct timespec nap = ToTimespec(step);
    ::nanosleep(&nap, nullptr);
  }
}

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISCHR(mode)) return "a character device";
  return "not a regular file";
}

Status NotRegular(const std::string& path, mode_t mode) {
  std::string hint = S_ISLNK(mode) ? "give the path of the file it points to" : "HSM actions apply to regular files";
  return Status(Code::kInvalidArgument, fmt::format("{} is {}; {}", path, KindOf(mode), hint));
}

uint32_t Generation(int fd, Status* error) {
  long v = 0;  // FS_IOC_GETVERSION is declared with a long but filesystems store an int
  if (::ioctl(fd, FS_IOC_GETVERSION, &v) == 0) return static_cast<uint32_t>(v);
  if (errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS) {
    *error = Status::FromErrno(errno, "reading the inode generation");
  }
  return 0;  // the filesystem has no generation (tmpfs and others)
}

}  // namespace

Result<FileLease> FileLease::Take(int fd, int type) {
  ::fcntl(fd, F_SETSIG, SIGURG);
  if (::fcntl(fd, F_SETLEASE, type) != 0) return Status::FromErrno(errno, "taking a lease");
  ::fcntl(fd, F_SETOWN, 0);
  return FileLease(fd);
}

void FileLease::Drop() {
  if (fd_ >= 0) ::fcntl(fd_, F_SETLEASE, F_UNLCK);
  fd_ = -1;
}

Result<ManagedFile> ManagedFile::Open(const std::string& path, int flags) {
  struct stat lst;
  if (::lstat(path.c_str(), &lst) != 0) {
    if (errno == ENOENT) return Status(Code::kNotFound, path + " does not exist", ENOENT);
    return Status::FromErrno(errno, "looking up " + path);
  }
  if (!S_ISREG(lst.st_mode)) return NotRegular(path, lst.st_mode);
  // O_NONBLOCK: never hang on a FIFO swapped in after lstat, nor on another process's lease.
  UniqueFd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == EWOULDBLOCK) {
      return Status(Code::kBusy, path + " is leased by another HSM operation in progress; retry", errno);
    }
    return Status::FromErrno(errno, "opening " + path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "reading the attributes of " + path);
  if (!S_ISREG(st.st_mode)) return NotRegular(path, st.st_mode);
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return ManagedFile(path, std::move(fd));
}

Result<UniqueFd> ManagedFile::Reopen(int flags) const {
  auto other = Open(path_, flags);
  if (!other.ok()) return other.status();
  struct stat a, b;
  if (::fstat(fd(), &a) != 0 || ::fstat(other->fd(), &b) != 0) {
    return Status::FromErrno(errno, "reading the attributes of " + path_);
  }
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    return Status(Code::kNotFound, path_ + " was replaced by another file during the operation");
  }
  return std::move(other->fd_);
}

Result<hsm::FileId> ManagedFile::Identify() const {
  struct statfs sfs;
  struct stat st;
  if (::fstatfs(fd(), &sfs) != 0 || ::fstat(fd(), &st) != 0) {
    return Status::FromErrno(errno, "identifying " + path_);
  }
  Status error;
  uint32_t gen = Generation(fd(), &error);
  if (!error.ok()) return error.Annotate("identifying " + path_);
  hsm::FileId id;
  id.fsid = FsidString(static_cast<uint32_t>(sfs.f_fsid.__val[0]),
                       static_cast<uint32_t>(sfs.f_fsid.__val[1]));
  id.fid = {static_cast<uint64_t>(st.st_ino), gen, 0};
  return id;
}

Status ManagedFile::CheckIdentity(const hsm::FileId& expected) const {
  auto id = Identify();
  if (!id.ok()) return id.status();
  if (*id != expected) {
    return Status(Code::kNotFound, fmt::format("file at {} is no longer {} (it is now {})", path_,
                                               expected.ToString(), id->ToString()));
  }
  return Status::Ok();
}

Result<VersionStamp> ManagedFile::Stamp() const {
  struct stat st;
  if (::fstat(fd(), &st) != 0) return Status::FromErrno(errno, "reading the attributes of " + path_);
  Status error;
  uint32_t gen = Generation(fd(), &error);
  if (!error.ok()) return error.Annotate(path_);
  return VersionStamp{static_cast<uint64_t>(st.st_size), ToNs(st.st_mtim), ToNs(st.st_ctim), gen};
}

Result<std::optional<HsmRecord>> ManagedFile::ReadRecord() const {
  std::vector<char> buf(4096);
  ssize_t n = ::fgetxattr(fd(), kRecordXattr, buf.data(), buf.size());
  if (n < 0 && errno == ERANGE) {
    ssize_t need = ::fgetxattr(fd(), kRecordXattr, nullptr, 0);
    if (need > 0) {
      buf.resize(static_cast<size_t>(need));
      n = ::fgetxattr(fd(), kRecordXattr, buf.data(), buf.size());
    }
  }
  if (n < 0) {
    if (errno == ENODATA) return std::optional<HsmRecord>();
    return Status::FromErrno(errno, fmt::format("reading the HSM record ({}) of {}", kRecordXattr, path_));
  }
  auto rec = DecodeRecord(std::string_view(buf.data(), static_cast<size_t>(n)));
  if (!rec.ok()) {
    return Status(rec.status().code(),
                  fmt::format("{}: {}; remove the {} xattr to forget the file's HSM state", path_,
                              rec.status().message(), kRecordXattr));
  }
  auto id = Identify();
  if (!id.ok()) return id.status();
  if (rec->fid != id->fid) return std::optional<HsmRecord>();
  return std::optional<HsmRecord>(std::move(*rec));
}

Status ManagedFile::WriteRecordBytes(const HsmRecord& record) const {
  Status valid = hsm::ValidateStates(record.states);
  if (!valid.ok()) return Status(Code::kInternal, "refusing to write an HSM record on " + path_ + ": " + valid.message());
  std::string bytes = EncodeRecord(record);
  if (::fsetxattr(fd(), kRecordXattr, bytes.data(), bytes.size(), 0) != 0) {
    return Status::FromErrno(errno, fmt::format("writing the HSM record ({}) of {}", kRecordXattr, path_));
  }
  return Status::Ok();
}

Status ManagedFile::WriteRecord(HsmRecord record) const {
  record.seal = {};
  return WriteRecordBytes(record);
}

Status ManagedFile::WriteSealed(HsmRecord record, const StampCheck& unchanged, bool lease_held) const {
  FileLease lease;
  if (!lease_held) {
    auto taken = FileLease::Take(fd(), F_RDLCK);
    if (taken.ok()) lease = std::move(*taken);
  }
  auto now = Stamp();
  if (!now.ok()) return now.status();
  if (!unchanged(*now)) return Status(Code::kBusy, path_ + " changed");
  if (!lease_held && !lease.held()) return WriteRecord(std::move(record));  // open for writing elsewhere
  for (int attempt = 0; attempt < kSealAttempts; ++attempt) {
    record.seal = ChooseWindow();
    TF_RETURN_IF_ERROR(WriteRecordBytes(record));
    auto after = Stamp();
    if (!after.ok()) return after.status();
    if (record.seal.Contains(after->ctime_ns)) {
      WaitCoarseClockPast(record.seal.hi_ns);
      return Status::Ok();
    }
  }
  return WriteRecord(std::move(record));  // the writes kept landing late: claim nothing
}

Status ManagedFile::Sync() const {
  if (::fsync(fd()) != 0) return Status::FromErrno(errno, "syncing " + path_);
  return Status::Ok();
}

Status ManagedFile::PunchAll(uint64_t size, int64_t mtime_ns) const {
  return PunchAndKeepMtime(fd(), path_, size, mtime_ns);
}

Status PunchAndKeepMtime(int fd, const std::string& path, uint64_t size, int64_t mtime_ns) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "reading the attributes of " + path);
  // Up to the end of the last block: a punch ending mid-block zeroes that block but keeps it.
  uint64_t block = st.st_blksize > 0 ? static_cast<uint64_t>(st.st_blksize) : 4096;
  uint64_t length = (size + block - 1) / block * block;
  if (length > 0 && ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(length)) != 0) {
    return Status::FromErrno(errno, "punching the data of " + path);
  }
  struct timespec times[2] = {{0, UTIME_OMIT}, ToTimespec(mtime_ns)};
  if (::futimens(fd, times) != 0) return Status::FromErrno(errno, "setting the mtime of " + path);
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "syncing " + path);
  return Status::Ok();
}

}  // namespace tierflow::mover
