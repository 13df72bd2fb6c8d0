// The REMOVE request for the archive copy of a deleted file.
#include "watch/unlink.h"

#include "mover/fs/local_fs.h"
#include "wire/convert.h"

namespace tierflow::watch {

v1::RequestSpec UnlinkedRemoveSpec(const hsm::FileId& file, const std::string& mount) {
  v1::RequestSpec spec;
  spec.set_action(v1::REMOVE);
  wire::FileRefToProto(file, mount, spec.mutable_file());
  spec.set_archive_id(0);
  spec.set_data(mover::kUnlinkedTag);
  return spec;
}

}  // namespace tierflow::watch
