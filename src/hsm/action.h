// HSM actions: what tierflow does to a file, and their Lustre numeric forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tierflow::hsm {

// Values equal tierflow.v1.Action in proto/tierflow.proto and may be persisted: never
// renumber. They are not Lustre's numbers; use the To/From functions below for those.
enum class Action : uint8_t {
  kArchive = 1,
  kRestore = 2,
  kRemove = 3,
  kCancel = 4,
};

// "ARCHIVE", "RESTORE", "REMOVE", "CANCEL".
std::string_view ActionName(Action a);
std::optional<Action> ParseActionName(std::string_view name);  // case-insensitive

// Lustre copytool action values (hsm_action_item.hai_action): ARCHIVE 20, RESTORE 21,
// REMOVE 22, CANCEL 23 (NOOP 10 has no tierflow action).
uint32_t ToCopytoolAction(Action a);
std::optional<Action> FromCopytoolAction(uint32_t v);

// Lustre's hsm_copytool_action2name() for a raw hai_action value: "NOOP", "ARCHIVE",
// "RESTORE", "REMOVE", "CANCEL", and "UNKNOWN" for anything else. The text formats
// (active_requests, actions) print these; ParseCopytoolActionName is the inverse
// (case-insensitive; "UNKNOWN" does not parse).
inline constexpr uint32_t kCopytoolActionNoop = 10;
std::string_view CopytoolActionName(uint32_t v);
std::optional<uint32_t> ParseCopytoolActionName(std::string_view name);

// Lustre user request values (hsm_user_request): ARCHIVE 10, RESTORE 11, RELEASE 12,
// REMOVE 13, CANCEL 14. RELEASE has no coordinator action.
inline constexpr uint32_t kUserActionRelease = 12;
uint32_t ToUserAction(Action a);
std::optional<Action> FromUserAction(uint32_t v);

// hal_flags.
inline constexpr uint64_t kHalFlagForce = 0x1;
inline constexpr uint64_t kHalFlagGhostCopy = 0x2;
inline constexpr uint64_t kHalFlagBlocking = 0x4;  // implicit restore on access

}  // namespace tierflow::hsm
