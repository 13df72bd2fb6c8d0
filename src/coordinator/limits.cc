// The field-by-field checks of limits.h. Where-strings are built only on failure, so a check
// of an accepted 10000-request Submit formats nothing.
#include "coordinator/limits.h"

#include <fmt/format.h>

#include <algorithm>

namespace tierflow::coordinator {

using namespace limits;

namespace {

Status TooLong(std::string_view where, size_t size, size_t limit) {
  return Status(Code::kInvalidArgument,
                fmt::format("{} is {} bytes; the limit is {}", where, size, limit));
}

// `what_to_do` ends the message ("split them over several calls").
Status TooMany(std::string_view where, size_t count, size_t limit, std::string_view what_to_do) {
  return Status(Code::kInvalidArgument, fmt::format("{} has {} entries; the limit is {}; {}",
                                                    where, count, limit, what_to_do));
}

constexpr std::string_view kSplit = "split them over several calls";

// `call` and `field` name the message and repeated field ("Submit", "requests"), `i` the entry.
Status CheckFileRef(const v1::FileRef& f, std::string_view call, std::string_view field,
                    size_t i) {
  if (f.fsid().size() > kMaxFsidBytes) {
    return TooLong(fmt::format("{}: {}[{}].fsid", call, field, i), f.fsid().size(), kMaxFsidBytes);
  }
  const size_t path_bytes = std::max(f.path().size(), f.raw_path().size());
  if (path_bytes > kMaxPathBytes) {
    return TooLong(fmt::format("{}: {}[{}].path", call, field, i), path_bytes, kMaxPathBytes);
  }
  return Status::Ok();
}

Status CheckFiles(const google::protobuf::RepeatedPtrField<v1::FileRef>& files,
                  std::string_view call, size_t limit) {
  if (static_cast<size_t>(files.size()) > limit) {
    return TooMany(fmt::format("{}: files", call), files.size(), limit, kSplit);
  }
  for (int i = 0; i < files.size(); ++i) {
    TF_RETURN_IF_ERROR(CheckFileRef(files[i], call, "files", i));
  }
  return Status::Ok();
}

Status CheckSpec(const v1::RequestSpec& s, size_t i) {
  TF_RETURN_IF_ERROR(CheckFileRef(s.file(), "Submit", "requests", i));
  if (s.data().size() > kMaxRequestDataBytes) {
    return TooLong(fmt::format("Submit: requests[{}].data", i), s.data().size(),
                   kMaxRequestDataBytes);
  }
  if (s.user().size() > kMaxUserBytes) {
    return TooLong(fmt::format("Submit: requests[{}].user", i), s.user().size(), kMaxUserBytes);
  }
  return Status::Ok();
}

Status CheckHello(const v1::Hello& h) {
  TF_RETURN_IF_ERROR(CheckName("Hello.id", h.id(), kMaxMoverIdBytes));
  if (!h.host().empty()) TF_RETURN_IF_ERROR(CheckName("Hello.host", h.host(), kMaxHostBytes));
  if (static_cast<size_t>(h.archive_ids_size()) > kMaxArchiveIdsPerHello) {
    return TooMany("Hello.archive_ids", h.archive_ids_size(), kMaxArchiveIdsPerHello,
                   "serve fewer archive ids per mover");
  }
  if (static_cast<size_t>(h.in_hand_size()) > kMaxInHandPerHello) {
    return TooMany("Hello.in_hand", h.in_hand_size(), kMaxInHandPerHello,
                   "lower the mover's capacities");
  }
  return Status::Ok();
}

Status CheckResult(const v1::Result& r, std::string_view where) {
  if (r.error().size() > kMaxErrorBytes) {
    return TooLong(fmt::format("{}.error", where), r.error().size(), kMaxErrorBytes);
  }
  return Status::Ok();
}

Status CheckReports(const v1::Reports& r) {
  constexpr std::string_view kSend = "send them in several messages";
  if (static_cast<size_t>(r.progress_size()) > kMaxProgressPerReports) {
    return TooMany("Reports.progress", r.progress_size(), kMaxProgressPerReports, kSend);
  }
  if (static_cast<size_t>(r.results_size()) > kMaxResultsPerReports) {
    return TooMany("Reports.results", r.results_size(), kMaxResultsPerReports, kSend);
  }
  for (int i = 0; i < r.results_size(); ++i) {
    if (r.results(i).error().size() > kMaxErrorBytes) {
      return CheckResult(r.results(i), fmt::format("Reports.results[{}]", i));
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckName(std::string_view where, std::string_view value, size_t limit) {
  if (value.empty()) {
    return Status(Code::kInvalidArgument, fmt::format("{} is empty", where));
  }
  if (value.size() > limit) return TooLong(where, value.size(), limit);
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c <= 0x20 || c >= 0x7f || c == '/') {
      return Status(Code::kInvalidArgument,
                    fmt::format("{} has byte 0x{:02x} at offset {}; it must be printable ASCII "
                                "without '/' or whitespace (it names journal keys and log lines)",
                                where, c, i));
    }
  }
  return Status::Ok();
}

Status CheckSubmit(const v1::SubmitRequest& request) {
  if (request.idempotency_key().size() > kMaxIdempotencyKeyBytes) {
    return TooLong("Submit: idempotency_key", request.idempotency_key().size(),
                   kMaxIdempotencyKeyBytes);
  }
  if (static_cast<size_t>(request.requests_size()) > kMaxSpecsPerSubmit) {
    return TooMany("Submit: requests", request.requests_size(), kMaxSpecsPerSubmit, kSplit);
  }
  for (int i = 0; i < request.requests_size(); ++i) {
    TF_RETURN_IF_ERROR(CheckSpec(request.requests(i), i));
  }
  return Status::Ok();
}

Status CheckWait(const v1::WaitRequest& request) {
  if (static_cast<size_t>(request.ids_size()) > kMaxIdsPerWait) {
    return TooMany("Wait: ids", request.ids_size(), kMaxIdsPerWait, "wait on several streams");
  }
  return Status::Ok();
}

Status CheckCancel(const v1::CancelRequest& request) {
  if (static_cast<size_t>(request.ids_size()) > kMaxIdsPerCancel) {
    return TooMany("Cancel: ids", request.ids_size(), kMaxIdsPerCancel, kSplit);
  }
  return CheckFiles(request.files(), "Cancel", kMaxFilesPerCancel);
}

Status CheckState(const v1::StateRequest& request) {
  return CheckFiles(request.files(), "State", kMaxFilesPerState);
}

Status CheckStatus(const v1::StatusRequest& request) {
  if (request.limit() > kMaxStatusLimit) {
    return Status(Code::kInvalidArgument,
                  fmt::format("Status: limit is {}; the limit is {}; list fewer requests",
                              request.limit(), kMaxStatusLimit));
  }
  constexpr std::string_view kFewer = "name each value once";
  if (static_cast<size_t>(request.actions_size()) > kMaxStatusFilterValues) {
    return TooMany("Status: actions", request.actions_size(), kMaxStatusFilterValues, kFewer);
  }
  if (static_cast<size_t>(request.states_size()) > kMaxStatusFilterValues) {
    return TooMany("Status: states", request.states_size(), kMaxStatusFilterValues, kFewer);
  }
  if (request.mover().size() > kMaxMoverIdBytes) {
    return TooLong("Status: mover", request.mover().size(), kMaxMoverIdBytes);
  }
  if (request.tag().size() > kMaxRequestDataBytes) {
    return TooLong("Status: tag", request.tag().size(), kMaxRequestDataBytes);
  }
  if (request.user().size() > kMaxUserBytes) {
    return TooLong("Status: user", request.user().size(), kMaxUserBytes);
  }
  return Status::Ok();
}

Status CheckDrain(const v1::DrainRequest& request) {
  return CheckName("Drain: mover", request.mover(), kMaxMoverIdBytes);
}

Status CheckCapacity(const v1::CapacityRequest& request) {
  TF_RETURN_IF_ERROR(CheckName("Capacity: mover", request.mover(), kMaxMoverIdBytes));
  const v1::Capacities& c = request.capacities();
  for (auto [name, value] : {std::pair<std::string_view, int32_t>{"max_archive", c.max_archive()},
                             {"max_restore", c.max_restore()},
                             {"max_remove", c.max_remove()}}) {
    if (value < -1) {
      return Status(Code::kInvalidArgument,
                    fmt::format("Capacity: capacities.{} is {}; give -1 (unlimited), 0 (none) or "
                                "a positive count",
                                name, value));
    }
  }
  return Status::Ok();
}

Status CheckEvents(const v1::EventsRequest& request) {
  if (request.hint().size() > kMaxRequestDataBytes) {
    return TooLong("Events: hint", request.hint().size(), kMaxRequestDataBytes);
  }
  if (!request.mover().empty()) {
    TF_RETURN_IF_ERROR(CheckName("Events: mover", request.mover(), kMaxMoverIdBytes));
  }
  if (request.actions_size() > v1::Action_ARRAYSIZE) {
    return TooMany("Events: actions", request.actions_size(), v1::Action_ARRAYSIZE,
                   "name each action once");
  }
  for (int action : request.actions()) {
    if (!v1::Action_IsValid(action)) {
      return Status(Code::kInvalidArgument,
                    fmt::format("Events: actions holds {}, which is no action", action));
    }
  }
  return Status::Ok();
}

Status CheckMoverMessage(const v1::MoverMessage& message) {
  switch (message.msg_case()) {
    case v1::MoverMessage::kHello:
      return CheckHello(message.hello());
    case v1::MoverMessage::kResult:
      return CheckResult(message.result(), "Result");
    case v1::MoverMessage::kReports:
      return CheckReports(message.reports());
    case v1::MoverMessage::kProgress:
    case v1::MoverMessage::kPong:
    case v1::MoverMessage::kCapacities:
      return Status::Ok();  // numbers only
    case v1::MoverMessage::MSG_NOT_SET:
      break;
  }
  return Status(Code::kInvalidArgument,
                "the message has no field set (an empty message, or a kind this coordinator does "
                "not know; upgrade the coordinator)");
}

}  // namespace tierflow::coordinator
