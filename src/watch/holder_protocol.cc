// The holder's local socket protocol; see holder_protocol.h.
#include "watch/holder_protocol.h"

#include <cstdlib>

namespace tierflow::watch {

std::string HolderSocketPath(const std::string& fsid) {
  const char* dir = std::getenv("TIERFLOW_RUN_DIR");
  std::string base = dir != nullptr && *dir != '\0' ? dir : "/run/tierflow";
  return base + "/holder-" + fsid + ".sock";
}

}  // namespace tierflow::watch
