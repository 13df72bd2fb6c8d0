// Bounds on every field of every message the coordinator accepts, and the checks that apply
// them. The service (service.cc) runs a check on each request and mover message before anything
// reaches the coordinator loop, so a hostile or broken peer costs the loop nothing: a client
// call is refused whole, a mover stream is ended. A refusal is kInvalidArgument naming the
// field, its size and the limit ("Submit: requests[3].file.path is 5000 bytes; the limit is
// 4096").
//
// The gRPC transport bounds one message at ServerOptions::max_message_bytes (16 MiB); these
// bounds are tighter and per field, so that one accepted message costs the loop a bounded
// amount of work and the journal a bounded row.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status.h"
#include "tierflow.pb.h"

namespace tierflow::coordinator {
namespace limits {

// ---- strings ----

// Linux PATH_MAX (the terminating NUL included): any path a system call accepts fits.
inline constexpr size_t kMaxPathBytes = 4096;
// A filesystem id is the mover's 16 hex digits; 64 leaves room for UUID-style ids from other
// frontends while keeping it cheap as a hash key.
inline constexpr size_t kMaxFsidBytes = 64;
// Request data is "key=value" tags carried in the journal row and in every ActionBatch item of
// the request; Lustre's HSM request data is of this order too.
inline constexpr size_t kMaxRequestDataBytes = 4096;
// A user name: Linux LOGIN_NAME_MAX is 256.
inline constexpr size_t kMaxUserBytes = 256;
// Idempotency keys are kept (and journaled) for a day; the watcher's keys ("watch:HOST:PID:
// TIME:SEQ") use about 300 bytes with the longest host name.
inline constexpr size_t kMaxIdempotencyKeyBytes = 1024;
// A mover id names journal keys ("drain/<id>") and every log line about the mover.
inline constexpr size_t kMaxMoverIdBytes = 128;
// A fully qualified host name is at most 253 bytes (RFC 1035).
inline constexpr size_t kMaxHostBytes = 255;
// A Result's error text becomes the request's error in the journal and in status: room for a
// message naming two PATH_MAX paths, and no more.
inline constexpr size_t kMaxErrorBytes = 16384;

// ---- counts ----

// Requests per Submit: all of them are inserted in one loop turn and journaled in one append;
// the command sends 1000 per call.
inline constexpr size_t kMaxSpecsPerSubmit = 10000;
// Ids per Wait: the coordinator registers and reports each; the command sends 50000 per stream.
inline constexpr size_t kMaxIdsPerWait = 100000;
// Ids and files per Cancel: each is looked up and may become a CANCEL request, in one turn.
inline constexpr size_t kMaxIdsPerCancel = 100000;
inline constexpr size_t kMaxFilesPerCancel = 100000;
// Files per State: each is looked up and listed, in one turn.
inline constexpr size_t kMaxFilesPerState = 100000;
// Requests listed by one Status: the listing is built in one turn and must fit one reply.
inline constexpr size_t kMaxStatusLimit = 100000;
// Values of the action and state filters of one Status: there are five of each; repeats are
// harmless, a flood is not.
inline constexpr size_t kMaxStatusFilterValues = 16;
// Archive ids a mover serves: Lustre counts archive ids in the tens; each id is a dispatch queue
// the mover's turn visits.
inline constexpr size_t kMaxArchiveIdsPerHello = 256;
// Actions a reconnecting mover says it still holds. Reconciled in one turn (a hash insert each,
// about 0.1 s for the bound); a 16 MiB Hello could carry about as many.
inline constexpr size_t kMaxInHandPerHello = 1000000;
// Progress reports and results per Reports message: the mover sends at most 1000 results per
// message and one progress per running action.
inline constexpr size_t kMaxProgressPerReports = 100000;
inline constexpr size_t kMaxResultsPerReports = 100000;

// ---- transport ----

// Bytes of one mover session's messages read but not yet applied by the loop: past it the
// session's reader stops reading, so a flooding mover waits on HTTP/2 flow control instead of
// growing the loop's queue. Several full 1000-result Reports fit.
inline constexpr size_t kMaxPendingReportBytes = 64 << 20;

// Request metadata (headers) of one call. Ours carry none beyond gRPC's own (a few hundred
// bytes); this is gRPC's default, set explicitly so it is a decision and not an accident.
inline constexpr size_t kMaxMetadataBytes = 8192;

}  // namespace limits

// Each check returns Ok or the first field past its bound (kInvalidArgument).
Status CheckSubmit(const v1::SubmitRequest& request);
Status CheckWait(const v1::WaitRequest& request);
Status CheckCancel(const v1::CancelRequest& request);
Status CheckState(const v1::StateRequest& request);
Status CheckStatus(const v1::StatusRequest& request);
Status CheckDrain(const v1::DrainRequest& request);
Status CheckEvents(const v1::EventsRequest& request);
// The mover id as Drain's; each per-kind capacity -1 (unlimited) or more.
Status CheckCapacity(const v1::CapacityRequest& request);
// Any message of a mover stream, Hello included. An empty message (no field set) is refused.
Status CheckMoverMessage(const v1::MoverMessage& message);

// A mover id or host name: 1 to `limit` bytes of printable ASCII without '/' (ids name journal
// keys and appear in logs). `where` names the field in the error ("Hello.id").
Status CheckName(std::string_view where, std::string_view value, size_t limit);

}  // namespace tierflow::coordinator
