// Wire <-> coordinator value conversions.
#include "coordinator/convert.h"

#include <fmt/format.h>

namespace tierflow::coordinator {

v1::RequestState StateToProto(store::RequestState state) {
  switch (state) {
    case store::RequestState::kQueued:
      return v1::QUEUED;
    case store::RequestState::kAssigned:
      return v1::ASSIGNED;
    case store::RequestState::kSucceeded:
      return v1::SUCCEEDED;
    case store::RequestState::kFailed:
      return v1::FAILED;
    case store::RequestState::kCanceled:
      return v1::CANCELED;
  }
  return v1::STATE_UNSPECIFIED;
}

Status ValidateSpec(const v1::RequestSpec& spec, size_t index) {
  auto action = ActionFromProto(spec.action());
  if (!action || *action == hsm::Action::kCancel) {
    return Status(Code::kInvalidArgument,
                  fmt::format("request {}: action {} cannot be submitted; use ARCHIVE, RESTORE or "
                              "REMOVE (cancel with the Cancel call)",
                              index, v1::Action_Name(spec.action())));
  }
  const v1::FileRef& f = spec.file();
  if (f.fsid().empty() || (f.seq() == 0 && f.oid() == 0 && f.ver() == 0)) {
    return Status(Code::kInvalidArgument,
                  fmt::format("request {}: file '{}' has no filesystem id or file id; give both "
                              "(fsid and a non-zero fid)",
                              index, wire::PathFromProto(f)));
  }
  return Status::Ok();
}

void RowFromSpec(const v1::RequestSpec& spec, store::RequestRow* row) {
  row->file = FileIdFromProto(spec.file());
  row->path = wire::PathFromProto(spec.file());
  row->action = *ActionFromProto(spec.action());
  row->archive_id = spec.archive_id();
  row->flags = spec.flags();
  row->data = spec.data();
  row->offset = spec.offset();
  row->length = spec.length() == 0 ? UINT64_MAX : spec.length();
  row->user = spec.user();
  row->has_owner = spec.has_owner();
  if (row->has_owner) {
    row->owner_uid = spec.owner().uid();
    row->owner_gid = spec.owner().gid();
    row->projid = spec.owner().projid();
  }
  row->state = store::RequestState::kQueued;
}

void RowToInfo(const store::RequestRow& row, v1::RequestInfo* out) {
  out->set_id(row.id);
  out->set_action(ActionToProto(row.action));
  FileRefToProto(row.file, row.path, out->mutable_file());
  out->set_archive_id(row.archive_id);
  out->set_flags(row.flags);
  out->set_state(StateToProto(row.state));
  // Unset strings cost nothing; setting even an empty one allocates.
  if (!row.mover.empty()) out->set_mover(row.mover);
  out->set_epoch(row.epoch);
  out->set_error_code(row.error_code);
  if (!row.error.empty()) out->set_error(wire::DisplayText(row.error));
  out->set_created_us(row.created_us);
  out->set_changed_us(row.changed_us);
  out->set_attempts(row.attempts);
}

void RowToItem(const store::RequestRow& row, v1::ActionItem* out) {
  out->set_id(row.id);
  out->set_epoch(row.epoch);
  out->set_action(ActionToProto(row.action));
  FileRefToProto(row.file, row.path, out->mutable_file());
  out->set_archive_id(row.archive_id);
  out->set_flags(row.flags);
  if (!row.data.empty()) out->set_data(row.data);
  out->set_offset(row.offset);
  out->set_length(row.length);
}

}  // namespace tierflow::coordinator
