// The persistent HSM record each managed file carries in the `trusted.tierflow.hsm` xattr:
// its stable id, archive id, state bits, the version stamp of the archived data, the archive
// object reference and checksum, the resident ranges, and the last error seen on it.
// The encoding is versioned and self-checking (a corrupt xattr decodes to an error, never
// to a wrong record).
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

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const Extent&) const = default;
};

struct HsmRecord {
  hsm::Fid fid;
  uint32_t archive_id = 0;
  uint32_t states = 0;          // hsm::kState* bits
  VersionStamp stamp;           // of the data in the archive copy
  std::string object_ref;       // backend's reference to the archive copy
  uint64_t checksum = 0;        // XXH3-64 of the file's logical content (holes read as zeros)
  std::vector<Extent> resident; // ranges whose data is on the filesystem; whole file = {0,size}
  int32_t last_error_code = 0;  // errno-like; 0 = none
  std::string last_error;
  bool operator==(const HsmRecord&) const = default;
};

std::string EncodeRecord(const HsmRecord& record);
Result<HsmRecord> DecodeRecord(std::string_view bytes);

}  // namespace tierflow::mover
