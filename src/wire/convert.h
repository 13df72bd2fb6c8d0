// Conversions between the wire contracts (tierflow::v1, generated from proto/) and the HSM
// domain values (hsm::FileId, hsm::Action). The one home for them, shared by the coordinator,
// the mover and the command, so a field added to either side is mapped once.
#pragma once

#include <optional>
#include <string>

#include "hsm/action.h"
#include "hsm/fid.h"
#include "tierflow.pb.h"

namespace tierflow::wire {

hsm::FileId FileIdFromProto(const v1::FileRef& ref);
// Sets fsid and fid; sets path only when it is not empty.
void FileRefToProto(const hsm::FileId& file, const std::string& path, v1::FileRef* out);

// ARCHIVE/RESTORE/REMOVE/CANCEL; nullopt for ACTION_UNSPECIFIED and unknown values.
std::optional<hsm::Action> ActionFromProto(v1::Action action);
v1::Action ActionToProto(hsm::Action action);

}  // namespace tierflow::wire
