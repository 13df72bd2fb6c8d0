// The posix backend: a directory tree archive compatible with lhsmtool_posix's paths.
// v1 (default): ROOT/(oid&0xffff)/(oid>>16&0xffff)/(seq&0xffff)/(seq>>16&0xffff)/
//               (seq>>32&0xffff)/(seq>>48&0xffff)/SEQ:OID:VER, each level %04x.
// v2:           ROOT/((oid^seq)&0xffff as %04x)/SEQ:OID:VER.
// Copies are written to PATH_tmp, fsynced, then renamed over PATH.
#pragma once

#include <memory>
#include <string>

#include "mover/backends/archive_backend.h"

namespace tierflow::mover {

struct PosixBackendOptions {
  std::string root;
  bool v2_paths = false;
  size_t chunk_size = 4 << 20;
  int64_t progress_interval_ms = 2000;
};

class PosixBackend final : public ArchiveBackend {
 public:
  // Checks that root exists, is a directory and is writable; the error says which and how to fix.
  static Result<std::unique_ptr<PosixBackend>> Open(const PosixBackendOptions& options);

  Result<PutResult> Put(int src_fd, const hsm::FileId& file, const CopyControl& ctl) override;
  Status Get(const std::string& object_ref, int dst_fd, uint64_t expected_checksum,
             const CopyControl& ctl) override;
  Status Delete(const std::string& object_ref) override;

  // Path of the copy for `fid` relative to the root ("0001/0000/0401/0002/0000/0000/0x200000401:0x1:0x0").
  std::string RelativePath(const hsm::Fid& fid) const;
  const std::string& root() const { return options_.root; }

 private:
  explicit PosixBackend(PosixBackendOptions options) : options_(std::move(options)) {}
  PosixBackendOptions options_;
};

}  // namespace tierflow::mover
