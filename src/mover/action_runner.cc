// One action, from the wire item to the wire result, through local_fs and a backend.
#include "mover/action_runner.h"

#include <sys/stat.h>

#include <string_view>

#include "mover/fs/local_fs.h"
#include "wire/convert.h"

namespace tierflow::mover {

namespace {

uint64_t LogicalSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

Status Canceled(const v1::ActionItem& item) {
  return Status(Code::kCanceled, "action " + std::to_string(item.id()) + " on " +
                                     wire::PathFromProto(item.file()) + " was canceled");
}

// Whether the request data holds `tag` as one of its tags (separated by spaces, commas,
// semicolons or newlines).
bool HasTag(std::string_view data, std::string_view tag) {
  constexpr std::string_view kSeparators = " \t\n,;";
  for (size_t start = 0; start < data.size();) {
    size_t end = data.find_first_of(kSeparators, start);
    if (end == std::string_view::npos) end = data.size();
    if (data.substr(start, end - start) == tag) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

ActionOutcome RunAction(const v1::ActionItem& item, ArchiveBackend& backend,
                        const CopyControl& ctl) {
  if (ctl.cancel != nullptr && ctl.cancel->load()) return {Canceled(item), 0};
  const std::string& path = wire::PathFromProto(item.file());
  const hsm::FileId id = wire::FileIdFromProto(item.file());
  ActionOutcome out;
  switch (item.action()) {
    case v1::ARCHIVE:
      out.status = ArchiveFile(path, id, item.archive_id(), backend, ctl);
      break;
    case v1::RESTORE:
      out.status = RestoreFile(path, id, backend, ctl);
      break;
    case v1::REMOVE:
      // A deleted file's cleanup names the mount point, not the file (it has no path left).
      out.status = HasTag(item.data(), kUnlinkedTag) ? RemoveCopyOfDeletedFile(path, id, backend)
                                                      : RemoveFile(path, id, backend);
      break;
    default:
      out.status = Status(Code::kInvalidArgument,
                          "action " + std::to_string(item.id()) + " has kind " +
                              v1::Action_Name(item.action()) + ", which a mover does not run");
      return out;
  }
  if (out.status.ok() && item.action() != v1::REMOVE) out.bytes = LogicalSize(path);
  return out;
}

v1::Result MakeResult(const v1::ActionItem& item, const ActionOutcome& outcome) {
  v1::Result r;
  r.set_id(item.id());
  r.set_epoch(item.epoch());
  r.set_bytes(outcome.bytes);
  const Status& st = outcome.status;
  if (st.ok()) return r;
  r.set_error_code(st.code() == Code::kCanceled ? ECANCELED : st.AsErrno());
  r.set_error(wire::DisplayText(st.ToString()));
  r.set_retryable(st.code() == Code::kUnavailable || st.code() == Code::kTimeout);
  return r;
}

}  // namespace tierflow::mover
