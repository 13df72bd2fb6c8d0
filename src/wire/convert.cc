// Wire <-> HSM domain conversions.
#include "wire/convert.h"

namespace tierflow::wire {

hsm::FileId FileIdFromProto(const v1::FileRef& ref) {
  return hsm::FileId{ref.fsid(), hsm::Fid{ref.seq(), ref.oid(), ref.ver()}};
}

void FileRefToProto(const hsm::FileId& file, const std::string& path, v1::FileRef* out) {
  out->set_fsid(file.fsid);
  out->set_seq(file.fid.seq);
  out->set_oid(file.fid.oid);
  out->set_ver(file.fid.ver);
  if (!path.empty()) out->set_path(path);
}

std::optional<hsm::Action> ActionFromProto(v1::Action action) {
  switch (action) {
    case v1::ARCHIVE:
      return hsm::Action::kArchive;
    case v1::RESTORE:
      return hsm::Action::kRestore;
    case v1::REMOVE:
      return hsm::Action::kRemove;
    case v1::CANCEL:
      return hsm::Action::kCancel;
    default:
      return std::nullopt;
  }
}

v1::Action ActionToProto(hsm::Action action) {
  switch (action) {
    case hsm::Action::kArchive:
      return v1::ARCHIVE;
    case hsm::Action::kRestore:
      return v1::RESTORE;
    case hsm::Action::kRemove:
      return v1::REMOVE;
    case hsm::Action::kCancel:
      return v1::CANCEL;
  }
  return v1::ACTION_UNSPECIFIED;
}

}  // namespace tierflow::wire
