// Conversions between the wire contracts (tierflow::v1, generated from proto/) and the
// coordinator's own values (store::RequestRow, hsm::FileId, Status). The one place where the
// two meet, so a field added to either side is mapped once.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "hsm/action.h"
#include "hsm/fid.h"
#include "store/journal.h"
#include "tierflow.pb.h"
#include "wire/convert.h"

namespace tierflow::coordinator {

using wire::ActionFromProto;
using wire::ActionToProto;
using wire::FileIdFromProto;
using wire::FileRefToProto;
v1::RequestState StateToProto(store::RequestState state);

// Rejects a submitted spec no mover could run (no file id, CANCEL, unknown action), with a
// message naming the spec by its index.
Status ValidateSpec(const v1::RequestSpec& spec, size_t index);
// Fills a new queued request from a validated spec. `id`, times and the default archive id
// are the caller's. Writes in place: a row is large, and submits come by the thousand.
void RowFromSpec(const v1::RequestSpec& spec, store::RequestRow* row);

void RowToInfo(const store::RequestRow& row, v1::RequestInfo* out);
void RowToItem(const store::RequestRow& row, v1::ActionItem* out);

}  // namespace tierflow::coordinator
