// The posix backend: a directory tree archive compatible with lhsmtool_posix's paths.
// v1 (default): ROOT/(oid&0xffff)/(oid>>16&0xffff)/(seq&0xffff)/(seq>>16&0xffff)/
//               (seq>>32&0xffff)/(seq>>48&0xffff)/SEQ:OID:VER, each level %04x.
// v2:           ROOT/((oid^seq)&0xffff as %04x)/SEQ:OID:VER.
// Copies are written to an anonymous inode (O_TMPFILE) in PATH's directory, fsynced, linked as
// PATH_tmp.<pid>.<n> and renamed over PATH: a killed writer leaves nothing behind.
//
// Each copy keeps its source's holes, mode, owner, atime/mtime and xattrs (trusted.tierflow.*
// excepted, so the HSM record never travels with the data), and carries its checksum in the
// `user.tierflow.xxh3` xattr as 16 hex digits (best effort: archives without user xattrs still
// work; the authoritative checksum is the one returned in PutResult). Missing directory levels
// are created with mode 0700.
//
// Threading: a PosixBackend holds only its options; Put, Get and Delete may run concurrently
// from any threads for different files. Two concurrent Puts of one file id (a hung mover
// waking after its action went to another) each write their own inode; the last rename wins,
// and each copy is whole.
#pragma once

#include <memory>
#include <string>

#include "mover/backends/archive_backend.h"

namespace tierflow::mover {

inline constexpr char kChecksumXattr[] = "user.tierflow.xxh3";

struct PosixBackendOptions {
  std::string root;
  bool v2_paths = false;
  // Bytes per read and write, through one buffer hashed in place. Small enough to stay in L2:
  // on a 2 GiB buffered copy 256 KiB took ~25% less CPU than 4 MiB (which also lost ~30% of
  // wall time against cp); readahead and writeback sizes do not depend on it.
  size_t chunk_size = 256 << 10;
  int64_t progress_interval_ms = 2000;
};

class PosixBackend final : public ArchiveBackend {
 public:
  // Checks that root exists, is a directory and is writable (by creating and removing a probe
  // file, which also catches read-only mounts); the error says which and how to fix.
  static Result<std::unique_ptr<PosixBackend>> Open(const PosixBackendOptions& options);

  // Errors name the copy: ENOSPC is Code::kNoSpace "writing archive copy ROOT/..._tmp: ...".
  // On any failure, cancel included, PATH_tmp is removed and a previous copy stays in place.
  Result<PutResult> Put(int src_fd, const hsm::FileId& file, const CopyControl& ctl) override;
  // A missing copy is Code::kNotFound "archive copy ROOT/... is missing"; a checksum mismatch
  // is Code::kCorrupt "archive copy ROOT/... failed its checksum (expected X, got Y)". If
  // dst_fd's size differs from the copy's it is set to the copy's size first; ranges that are
  // holes in the copy are not written, so they must read as zeros in dst (a released or new
  // file). Does not fsync dst_fd: the caller orders durability against its own state.
  Status Get(const std::string& object_ref, int dst_fd, uint64_t expected_checksum,
             const CopyControl& ctl) override;
  // Also removes a PATH_tmp left by an interrupted Put.
  Status Delete(const std::string& object_ref) override;
  // RelativePath(file.fid), in this backend's layout (v1 or v2).
  Result<std::string> ObjectRefFor(const hsm::FileId& file) override;
  // Every regular file below the root, as a path relative to it, except PATH_tmp files and
  // the root's write probes. Symbolic links are not followed. An unreadable directory is an
  // error naming it (the listing would be incomplete).
  Status ListObjects(const std::function<void(const std::string& object_ref)>& fn) override;

  // Path of the copy for `fid` relative to the root; for [0x200000401:0x1:0x0] v1 gives
  // "0001/0000/0401/0000/0002/0000/0x200000401:0x1:0x0" and v2 "0400/0x200000401:0x1:0x0".
  std::string RelativePath(const hsm::Fid& fid) const;
  const std::string& root() const { return options_.root; }

 private:
  explicit PosixBackend(PosixBackendOptions options) : options_(std::move(options)) {}
  PosixBackendOptions options_;
};

}  // namespace tierflow::mover
