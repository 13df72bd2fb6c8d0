// A compact binary encoding of a RequestRow's fields, for journals that store a request as a few
// indexed columns plus one opaque value (SQLite BLOB, PostgreSQL bytea). One encoded row costs the
// database one value instead of twenty columns, which is most of the journal's write throughput.
// Format (version 1): a version byte, then the fields in declaration order, skipping id, action and
// state (kept as columns): integers as LEB128 varints (signed ones zigzag-encoded, `length` stored
// as length+1 so UINT64_MAX is one byte, changed_us as a delta from created_us), strings as a
// varint length followed by the bytes.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "store/journal.h"

namespace tierflow::store {

// Appends the encoding of `row` (all fields but id, action and state) to `*out`. Pure; thread-safe.
void EncodeRequestBody(const RequestRow& row, std::string* out);

// Fills every field of `*row` but id, action and state from `body`. Returns kCorrupt, saying what
// is wrong, when `body` is truncated, has trailing bytes, or has an unknown version.
Status DecodeRequestBody(std::string_view body, RequestRow* row);

}  // namespace tierflow::store
