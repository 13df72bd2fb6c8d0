// Conversions between the wire contracts (tierflow::v1, generated from proto/) and the HSM
// domain values (hsm::FileId, hsm::Action). The one home for them, shared by the coordinator,
// the mover and the command, so a field added to either side is mapped once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "hsm/action.h"
#include "hsm/fid.h"
#include "tierflow.pb.h"

namespace tierflow::wire {

hsm::FileId FileIdFromProto(const v1::FileRef& ref);
// Sets fsid and fid, and the path when it is not empty: in `path`, or in `raw_path` when it
// is not valid UTF-8 (a protobuf string must be).
void FileRefToProto(const hsm::FileId& file, const std::string& path, v1::FileRef* out);
// The path, wherever it travels.
const std::string& PathFromProto(const v1::FileRef& ref);

// Whether `s` is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsUtf8(std::string_view s);
// `s` fit for a protobuf string shown to people (an error that names a file): each byte that is
// not part of valid UTF-8 becomes the four characters \xNN.
std::string DisplayText(std::string_view s);

// ARCHIVE/RESTORE/REMOVE/CANCEL; nullopt for ACTION_UNSPECIFIED and unknown values.
std::optional<hsm::Action> ActionFromProto(v1::Action action);
v1::Action ActionToProto(hsm::Action action);

}  // namespace tierflow::wire
