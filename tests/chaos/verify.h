// The chaos driver's end check: each file's HSM state against the driver's model, and the
// archive against the files: exactly one copy per archived file, with the file's bytes, no copy
// of any other file, no temporary copies left behind.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "hsm/fid.h"

namespace tierflow::chaos {

// What the driver believes about one file once every request has ended.
struct ExpectedFile {
  std::string path;
  hsm::FileId id;
  bool archived = false;
  bool released = false;  // implies archived
  uint64_t hash = 0;      // XXH3-64 of the content the driver wrote
};

struct VerifyReport {
  uint64_t verified = 0;              // files with no problem
  std::vector<std::string> problems;  // one line each, naming the file and what differs
};

// XXH3-64 of a file's bytes (holes read as zeros).
Result<uint64_t> HashFile(const std::string& path);

// Reads each file's record, hashes resident data and archive copies, lists the archive.
VerifyReport VerifyFiles(const std::vector<ExpectedFile>& files, const std::string& archive_root);

}  // namespace tierflow::chaos
