// HSM actions: what tierflow does to a file, and their Lustre numeric forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tierflow::hsm {

// Ordered by default dispatch priority where it matters (restore first).
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
