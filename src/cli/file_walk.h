// Expands the PATH arguments of a client verb into the regular files it applies to.
// Directories are walked recursively in name order; symbolic links are never followed; special
// files found inside a walked tree are skipped. An explicit path that is missing, a symbolic
// link or a special file is an error naming it. Blocks on the filesystem; client thread only.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tierflow::cli {

struct WalkResult {
  std::vector<std::string> files;  // absolute, normalised, each once, in argument then walk order
  std::vector<Status> errors;      // one per path that could not be used, naming it
};

WalkResult ExpandPaths(const std::vector<std::string>& paths);

// `path` made absolute and lexically normal, without a trailing slash.
std::string AbsolutePath(const std::string& path);

}  // namespace tierflow::cli
