// One action, from the wire item to the wire result, through local_fs and a backend.
#include "mover/action_runner.h"

#include <sys/stat.h>

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
                                     item.file().path() + " was canceled");
}

}  // namespace

ActionOutcome RunAction(const v1::ActionItem& item, ArchiveBackend& backend,
                        const CopyControl& ctl) {
  if (ctl.cancel != nullptr && ctl.cancel->load()) return {Canceled(item), 0};
  const std::string& path = item.file().path();
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
      out.status = RemoveFile(path, id, backend);
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
  r.set_error(st.ToString());
  r.set_retryable(st.code() == Code::kUnavailable || st.code() == Code::kTimeout);
  return r;
}

}  // namespace tierflow::mover
