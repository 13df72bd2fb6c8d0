// Posix backend: lhsmtool_posix-compatible paths, sparse copies through CopySparse, metadata
// carried over to the copy, and the tmp-fsync-rename sequence that makes a copy appear whole
// or not at all.
#include "mover/backends/posix_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "mover/backends/sparse_copy.h"
#include "mover/fs/unique_fd.h"

namespace tierflow::mover {
namespace {

constexpr std::string_view kSkippedXattrPrefix = "trusted.tierflow.";
constexpr std::string_view kTmpSuffix = "_tmp";
constexpr std::string_view kProbePrefix = ".tierflow-write-probe-";

// Removes a file when it goes out of scope unless Keep() was called.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(std::string path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Keep() { path_.clear(); }
  void Reset(std::string path) { path_ = std::move(path); }

 private:
  std::string path_;
};

std::string NoSpaceHint(const Status& st) {
  return st.code() == Code::kNoSpace ? "; free space in the archive or add capacity" : "";
}

// A name no other writer uses: this process's pid and a counter.
std::string UniqueTmpName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}{}.{}.{}", path, kTmpSuffix, ::getpid(), counter.fetch_add(1));
}

Status WithHint(const Status& st) {
  if (st.ok()) return st;
  return Status(st.code(), st.message() + NoSpaceHint(st), st.sys_errno());
}

Status CheckRoot(const std::string& root) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Status(Code::kNotFound, fmt::format("archive root {} does not exist; create it (mkdir -p {}) "
                                                 "or point the posix backend at an existing directory",
                                                 root, root));
    }
    return Status::FromErrno(errno, "checking archive root " + root);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Code::kInvalidArgument,
                  fmt::format("archive root {} is not a directory; point the posix backend at a directory", root));
  }
  static std::atomic<uint64_t> probe_counter{0};
  std::string probe = fmt::format("{}/{}{}-{}", root, kProbePrefix, ::getpid(), probe_counter++);
  UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    int err = errno;
    return Status(Code::kPermissionDenied,
                  fmt::format("archive root {} is not writable ({}); mount it read-write and give the "
                              "mover write permission on it",
                              root, std::strerror(err)),
                  err);
  }
  ::unlink(probe.c_str());
  return Status::Ok();
}

// An object reference must stay inside the root: relative, without "..".
Status CheckObjectRef(const std::string& ref) {
  bool escapes = ref.empty() || ref.front() == '/';
  for (size_t start = 0; !escapes && start <= ref.size();) {
    size_t end = ref.find('/', start);
    if (end == std::string::npos) end = ref.size();
    if (std::string_view(ref).substr(start, end - start) == "..") escapes = true;
    start = end + 1;
  }
  if (escapes) {
    return Status(Code::kInvalidArgument,
                  fmt::format("object reference '{}' is not a path inside the posix archive", ref));
  }
  return Status::Ok();
}

// mkdir -p of the directories of `rel` below `root`.
Status MakeParents(const std::string& root, const std::string& rel) {
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    std::string dir = root + "/" + rel.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "creating archive directory " + dir);
    }
  }
  return Status::Ok();
}

Result<std::vector<char>> ReadXattr(int fd, const char* name) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ssize_t n = ::fgetxattr(fd, name, nullptr, 0);
    if (n < 0) return Status::FromErrno(errno, std::string("reading xattr ") + name);
    std::vector<char> value(static_cast<size_t>(n));
    n = ::fgetxattr(fd, name, value.data(), value.size());
    if (n >= 0) {
      value.resize(static_cast<size_t>(n));
      return value;
    }
    if (errno != ERANGE) return Status::FromErrno(errno, std::string("reading xattr ") + name);
  }
  return Status(Code::kBusy, std::string("xattr ") + name + " keeps changing size");
}

Result<std::vector<char>> ListXattrs(int fd) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ssize_t n = ::flistxattr(fd, nullptr, 0);
    if (n < 0) return Status::FromErrno(errno, "listing xattrs");
    std::vector<char> names(static_cast<size_t>(n));
    n = ::flistxattr(fd, names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      return names;
    }
    if (errno != ERANGE) return Status::FromErrno(errno, "listing xattrs");
  }
  return Status(Code::kBusy, "the xattr list keeps changing size");
}

// Copies the source's xattrs except trusted.tierflow.*; a namespace the archive filesystem
// does not support (EOPNOTSUPP) is skipped, as lhsmtool_posix does.
Status CopyXattrs(int src, int dst, const std::string& dst_name) {
  auto names = ListXattrs(src);
  if (!names.ok()) return names.status().Annotate("copying xattrs to " + dst_name);
  for (const char* p = names->data(); p < names->data() + names->size(); p += std::strlen(p) + 1) {
    if (std::string_view(p).starts_with(kSkippedXattrPrefix)) continue;
    auto value = ReadXattr(src, p);
    if (!value.ok()) {
      if (value.status().sys_errno() == ENODATA) continue;  // removed since the listing
      return value.status().Annotate("copying xattrs to " + dst_name);
    }
    if (::fsetxattr(dst, p, value->data(), value->size(), 0) != 0 && errno != EOPNOTSUPP) {
      return Status::FromErrno(errno, fmt::format("copying xattr {} to {}", p, dst_name));
    }
  }
  return Status::Ok();
}

// Owner before mode (chown clears setuid bits and file capabilities), xattrs after both,
// times last because nothing after them may touch the data.
Status CopyMetadata(int src, const struct stat& st, int dst, const std::string& dst_name) {
  if (::fchown(dst, st.st_uid, st.st_gid) != 0) return Status::FromErrno(errno, "setting the owner of " + dst_name);
  if (::fchmod(dst, st.st_mode & 07777) != 0) return Status::FromErrno(errno, "setting the mode of " + dst_name);
  TF_RETURN_IF_ERROR(CopyXattrs(src, dst, dst_name));
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(dst, times) != 0) return Status::FromErrno(errno, "setting the times of " + dst_name);
  return Status::Ok();
}

Status SyncParent(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) return Status::FromErrno(errno, "syncing archive directory " + dir);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PosixBackend>> PosixBackend::Open(const PosixBackendOptions& options) {
  PosixBackendOptions opt = options;
  if (opt.root.empty()) {
    return Status(Code::kInvalidArgument, "posix backend root is not set; set it to the archive directory");
  }
  while (opt.root.size() > 1 && opt.root.back() == '/') opt.root.pop_back();
  if (opt.chunk_size == 0) return Status(Code::kInvalidArgument, "posix backend chunk_size must be > 0");
  TF_RETURN_IF_ERROR(CheckRoot(opt.root));
  return std::unique_ptr<PosixBackend>(new PosixBackend(std::move(opt)));
}

std::string PosixBackend::RelativePath(const hsm::Fid& fid) const {
  if (options_.v2_paths) {
    return fmt::format("{:04x}/{}", static_cast<unsigned>((fid.oid ^ fid.seq) & 0xffff), fid.ToBareString());
  }
  return fmt::format("{:04x}/{:04x}/{:04x}/{:04x}/{:04x}/{:04x}/{}", fid.oid & 0xffff, (fid.oid >> 16) & 0xffff,
                     fid.seq & 0xffff, (fid.seq >> 16) & 0xffff, (fid.seq >> 32) & 0xffff,
                     (fid.seq >> 48) & 0xffff, fid.ToBareString());
}

Result<PutResult> PosixBackend::Put(int src_fd, const hsm::FileId& file, const CopyControl& ctl) {
  struct stat st;
  if (::fstat(src_fd, &st) != 0) return Status::FromErrno(errno, "reading the attributes of " + file.ToString());
  if (!S_ISREG(st.st_mode)) return Status(Code::kInvalidArgument, file.ToString() + " is not a regular file");
  std::string rel = RelativePath(file.fid);
  std::string path = options_.root + "/" + rel;
  TF_RETURN_IF_ERROR(MakeParents(options_.root, rel));
  // The copy is written to an anonymous inode in its directory (O_TMPFILE): a mover killed
  // mid-copy leaves nothing behind, and one that hangs and wakes after its action was given
  // to another mover only ever writes its own inode. It is named once whole and synced, by
  // a name no other writer uses, at once renamed over PATH. Filesystems without O_TMPFILE
  // get that unique name from the start (and a kill leaves it behind).
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::string tmp = UniqueTmpName(path);
  UniqueFd dst(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600));
  const bool anonymous = dst.valid();
  RemoveOnExit remove_tmp("");
  if (!anonymous) {
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      return WithHint(Status::FromErrno(errno, "creating archive copy " + path));
    }
    dst = UniqueFd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!dst.valid()) return WithHint(Status::FromErrno(errno, "creating archive copy " + tmp));
    remove_tmp.Reset(tmp);
  }

  SparseCopyOptions copy_opt{options_.chunk_size, options_.progress_interval_ms, /*start_writeback=*/true};
  CopyEnd src_end{src_fd, file.ToString()};
  CopyEnd dst_end{dst.get(), "archive copy " + path + " (being written)"};
  auto sum = CopySparse(src_end, dst_end, static_cast<uint64_t>(st.st_size), copy_opt, ctl);
  if (!sum.ok()) return WithHint(sum.status());
  if (::ftruncate(dst.get(), st.st_size) != 0) return WithHint(Status::FromErrno(errno, "sizing " + dst_end.name));
  TF_RETURN_IF_ERROR(CopyMetadata(src_fd, st, dst.get(), dst_end.name));
  std::string hex = fmt::format("{:016x}", *sum);
  ::fsetxattr(dst.get(), kChecksumXattr, hex.data(), hex.size(), 0);  // best effort, see header
  if (::fsync(dst.get()) != 0) return WithHint(Status::FromErrno(errno, "syncing " + dst_end.name));
  if (anonymous) {
    const std::string self = fmt::format("/proc/self/fd/{}", dst.get());
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return WithHint(Status::FromErrno(errno, "naming archive copy " + tmp));
    }
    remove_tmp.Reset(tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::FromErrno(errno, fmt::format("renaming archive copy {} to {}", tmp, path));
  }
  remove_tmp.Keep();
  TF_RETURN_IF_ERROR(SyncParent(path));
  return PutResult{rel, *sum, static_cast<uint64_t>(st.st_size)};
}

Status PosixBackend::Get(const std::string& object_ref, int dst_fd, uint64_t expected_checksum,
                         const CopyControl& ctl) {
  TF_RETURN_IF_ERROR(CheckObjectRef(object_ref));
  std::string path = options_.root + "/" + object_ref;
  UniqueFd src(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!src.valid()) {
    if (errno == ENOENT) {
      return Status(Code::kNotFound, fmt::format("archive copy {} is missing; check that the archive is "
                                                 "mounted at {}",
                                                 path, options_.root),
                    ENOENT);
    }
    return Status::FromErrno(errno, "opening archive copy " + path);
  }
  struct stat st, dst_st;
  if (::fstat(src.get(), &st) != 0) return Status::FromErrno(errno, "reading the attributes of archive copy " + path);
  if (::fstat(dst_fd, &dst_st) != 0) return Status::FromErrno(errno, "reading the attributes of the file to restore");
  if (dst_st.st_size != st.st_size && ::ftruncate(dst_fd, st.st_size) != 0) {
    return WithHint(Status::FromErrno(errno, "sizing the file restored from " + path));
  }
  SparseCopyOptions copy_opt{options_.chunk_size, options_.progress_interval_ms, /*start_writeback=*/true};
  CopyEnd src_end{src.get(), "archive copy " + path};
  CopyEnd dst_end{dst_fd, "the file restored from " + path};
  auto sum = CopySparse(src_end, dst_end, static_cast<uint64_t>(st.st_size), copy_opt, ctl);
  if (!sum.ok()) return WithHint(sum.status());
  if (*sum != expected_checksum) {
    return Status(Code::kCorrupt, fmt::format("archive copy {} failed its checksum (expected {:016x}, got {:016x})",
                                              path, expected_checksum, *sum));
  }
  return Status::Ok();
}

Status PosixBackend::Delete(const std::string& object_ref) {
  TF_RETURN_IF_ERROR(CheckObjectRef(object_ref));
  std::string path = options_.root + "/" + object_ref;
  ::unlink((path + std::string(kTmpSuffix)).c_str());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "removing archive copy " + path);
  }
  return Status::Ok();
}

Result<std::string> PosixBackend::ObjectRefFor(const hsm::FileId& file) { return RelativePath(file.fid); }

Status PosixBackend::ListObjects(const std::function<void(const std::string& object_ref)>& fn) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(options_.root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    std::error_code type_ec;
    if (!e.is_regular_file(type_ec) || e.is_symlink(type_ec)) continue;
    const std::string name = e.path().filename().string();
    if (name.find(kTmpSuffix) != std::string::npos || name.starts_with(kProbePrefix)) continue;
    fn(e.path().lexically_relative(options_.root).string());
  }
  if (ec) return Status::FromErrno(ec.value(), "listing the posix archive " + options_.root);
  return Status::Ok();
}

}  // namespace tierflow::mover
