// One open regular file of a local filesystem together with the means to read and write its
// HSM record: identity, version stamp, leases, sealed record writes, hole punching. The
// building block of local_fs.cc; not used elsewhere. Blocks on I/O; a ManagedFile belongs to
// the thread that opened it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"
#include "hsm/fid.h"
#include "mover/fs/hsm_record.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::mover {

// The lease a ManagedFile holds while it exists; dropped by the destructor.
class FileLease {
 public:
  FileLease() = default;
  ~FileLease() { Drop(); }
  FileLease(FileLease&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileLease& operator=(FileLease&& other) noexcept {
    if (this != &other) {
      Drop();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  FileLease(const FileLease&) = delete;
  FileLease& operator=(const FileLease&) = delete;

  // F_RDLCK or F_WRLCK on `fd`. A lease break must not kill the process: the break signal is
  // set to SIGURG (ignored by default) before the lease exists and the owner cleared after, so
  // no SIGIO is ever sent. Fails with the errno (EAGAIN: the file is open in a conflicting way).
  static Result<FileLease> Take(int fd, int type);
  bool held() const { return fd_ >= 0; }
  void Drop();

 private:
  explicit FileLease(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Decides, from the file's stamp taken under the seal's lease, whether the record about to be
// written still describes the file's data.
using StampCheck = std::function<bool(const VersionStamp& now)>;

class ManagedFile {
 public:
  // Opens `path` (a regular file, not a symlink) with `flags` (O_RDONLY, O_WRONLY or O_RDWR).
  // Missing: Code::kNotFound "PATH does not exist"; a directory, symlink or special file:
  // Code::kInvalidArgument naming the path and what it is; another process's lease in the
  // way: Code::kBusy.
  static Result<ManagedFile> Open(const std::string& path, int flags);
  // Wraps a descriptor opened elsewhere (a fanotify event's file, a file opened by handle);
  // `name` is used in messages. The caller checked it is a regular file.
  static ManagedFile Adopt(UniqueFd fd, std::string name) { return ManagedFile(std::move(name), std::move(fd)); }
  // Opens the same inode again with other flags (kNotFound if the path now names another file).
  Result<UniqueFd> Reopen(int flags) const;

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

  Result<hsm::FileId> Identify() const;
  // kNotFound "file at PATH is no longer FID (it is now FID2)" when the ids differ.
  Status CheckIdentity(const hsm::FileId& expected) const;
  Result<VersionStamp> Stamp() const;

  // The record, or nullopt when the file has none; a damaged one is an error naming the path.
  // A record whose fid is not this file's is ignored (nullopt): it was copied here with the
  // xattrs (cp -a, rsync -X as root) and describes another file's archive copy.
  Result<std::optional<HsmRecord>> ReadRecord() const;
  // Writes `record` unsealed (its seal is cleared): it makes no claim about the data.
  Status WriteRecord(HsmRecord record) const;
  // Writes `record` sealed, as described at CtimeSeal in hsm_record.h: takes a read lease
  // unless `lease_held` (the caller holds one on this fd), checks `unchanged` on the stamp taken
  // under it (false: Code::kBusy, nothing written), writes, verifies the ctime landed in the
  // window and holds the lease until the clock has passed it (a few milliseconds). If the
  // file is open for writing elsewhere, the check is still made but the record is written
  // unsealed.
  Status WriteSealed(HsmRecord record, const StampCheck& unchanged, bool lease_held) const;

  Status Sync() const;
  // Punches [0, size) keeping the size, then puts mtime back to `mtime_ns` (punching moves
  // it) and fsyncs. Needs a writable fd.
  Status PunchAll(uint64_t size, int64_t mtime_ns) const;

 private:
  ManagedFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Status WriteRecordBytes(const HsmRecord& record) const;

  std::string path_;
  UniqueFd fd_;
};

// Punches `fd` over [0, size) and sets its mtime (and atime) back to `mtime_ns`; used by
// ManagedFile::PunchAll and by restore's cleanup on its own writable descriptor.
Status PunchAndKeepMtime(int fd, const std::string& path, uint64_t size, int64_t mtime_ns);

}  // namespace tierflow::mover
