// The persistent HSM record each managed file carries in the `trusted.tierflow.hsm` xattr:
// its stable id, archive id, state bits, the version stamp of the archived data, the archive
// object reference and checksum, the resident ranges, and the last error seen on it.
// The encoding is versioned and self-checking (a corrupt xattr decodes to an error, never
// to a wrong record).
//
// Encoding, version 1 (all integers little-endian, fixed width):
//   "TFHR" | u8 version=1 | fid seq u64, oid u32, ver u32 | archive_id u32 | states u32 |
//   stamp: size u64, mtime_ns i64, ctime_ns i64, generation u32 | seal lo_ns i64, hi_ns i64 |
//   checksum u64 | object_ref: u32 length + bytes | resident: u32 count + count x (offset u64,
//   length u64) | last_error_code i32 | last_error: u32 length + bytes | XXH3-64 of all the
//   bytes before it, u64.
// A later version appends fields before the checksum and bumps the version byte; a decoder
// refuses versions it does not know rather than guessing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "hsm/fid.h"

namespace tierflow::mover {

inline constexpr char kRecordXattr[] = "trusted.tierflow.hsm";

// What identifies one version of a file's data. If any field differs, the data may differ.
struct VersionStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t generation = 0;
  bool operator==(const VersionStamp&) const = default;
};

// Why a record carries a ctime window (the "seal") and not just the stamp:
// writing the record xattr itself moves the file's ctime, so no record can contain the exact
// ctime the file has once the record is on it. Instead every sealed write (managed_file.cc):
//   1. takes a read lease on the file (no one can open it for writing while it is held; if the
//      file is already open for writing the record is written unsealed instead),
//   2. checks under the lease that the file still holds the data the record describes,
//   3. picks [lo_ns, hi_ns] around "now", writes the record, checks that the ctime the write
//      gave the file lies inside (else rewrites with a fresh window),
//   4. keeps the lease until the coarse clock has passed hi_ns, so that any later change by
//      anyone gets a ctime > hi_ns.
// So "size, mtime and generation equal `stamp` and lo_ns <= ctime <= hi_ns" proves the data
// was not touched since the sealed write (a write that then resets mtime still moves ctime).
// {0, 0} means unsealed: the record makes no claim and release treats the file as changed.
// The check is exact on kernels with multigrain timestamps (6.13+: ext4, xfs, btrfs); on older
// kernels a change in the same clock tick as the stamp taken before an archive may go unseen.
struct CtimeSeal {
  int64_t lo_ns = 0;
  int64_t hi_ns = 0;
  bool sealed() const { return hi_ns != 0; }
  bool Contains(int64_t ctime_ns) const { return sealed() && ctime_ns >= lo_ns && ctime_ns <= hi_ns; }
  bool operator==(const CtimeSeal&) const = default;
};

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const Extent&) const = default;
};

struct HsmRecord {
  hsm::Fid fid;
  uint32_t archive_id = 0;
  uint32_t states = 0;          // hsm::kState* bits
  VersionStamp stamp;           // of the data in the archive copy (taken before the copy, or
                                // after a restore); ctime is informational, `seal` checks it
  CtimeSeal seal;               // window holding the ctime our last sealed write produced
  std::string object_ref;       // backend's reference to the archive copy
  uint64_t checksum = 0;        // XXH3-64 of the file's logical content (holes read as zeros)
  std::vector<Extent> resident; // ranges whose data is on the filesystem; whole file = {0,size}
  int32_t last_error_code = 0;  // errno-like; 0 = none
  std::string last_error;
  bool operator==(const HsmRecord&) const = default;
};

// True when `now` (the file's stamp at this moment) shows that the file's data has not changed
// since `record` was written with a seal: size, mtime and generation equal, ctime in the seal.
bool UnchangedSinceSeal(const HsmRecord& record, const VersionStamp& now);

// Writers cut last_error to this many bytes so a record stays well inside one xattr block
// (4 KiB on ext4); EncodeRecord itself encodes what it is given.
inline constexpr size_t kMaxLastErrorBytes = 1024;

std::string EncodeRecord(const HsmRecord& record);
// Code::kCorrupt when the bytes are truncated, have trailing garbage or fail the checksum;
// Code::kFailedPrecondition for a version this build does not know.
Result<HsmRecord> DecodeRecord(std::string_view bytes);

}  // namespace tierflow::mover
