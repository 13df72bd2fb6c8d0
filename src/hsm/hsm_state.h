// HSM state bits of a file, with Lustre's values (hsm_user_state.hus_states), and Lustre's
// rules over them: which combinations are valid, which actions a state needs or forbids, and
// which bits a user may change. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "hsm/action.h"

namespace tierflow::hsm {

inline constexpr uint32_t kStateExists = 0x1;
inline constexpr uint32_t kStateDirty = 0x2;
inline constexpr uint32_t kStateReleased = 0x4;
inline constexpr uint32_t kStateArchived = 0x8;
inline constexpr uint32_t kStateNoRelease = 0x10;
inline constexpr uint32_t kStateNoArchive = 0x20;
inline constexpr uint32_t kStateLost = 0x40;
inline constexpr uint32_t kStateUserSettable = kStateNoRelease | kStateNoArchive | kStateDirty;
// What root may also set or clear (lfs hsm_set --lost needs CAP_SYS_ADMIN on Lustre). Root may
// not set exists or archived by hand here: a file marked archived without a copy could be
// released and its data lost.
inline constexpr uint32_t kStateAdminSettable = kStateUserSettable | kStateLost;
inline constexpr uint32_t kStateAll = 0x7f;

// tierflow's names of the set bits in lfs hsm_state's order, "released" first: "released",
// "exists", "dirty", "archived", "norelease", "noarchive", "lost" (so `tierflow state` reads like
// `lfs hsm_state`: "(0x0000000d) released exists archived"). lfs's longer names
// ("never_release", "never_archive", "lost_from_hsm") are not copied.
// Unknown bits are left out.
std::vector<std::string> StateNames(uint32_t states);

// The bit named by one of the names above (case-insensitive); nullopt for anything else.
std::optional<uint32_t> ParseStateName(std::string_view name);

// Rejects unknown bits and Lustre's invalid combinations (EINVAL there): DIRTY without
// EXISTS, RELEASED with DIRTY, RELEASED without ARCHIVED, LOST without ARCHIVED.
// Errors are kInvalidArgument.
Status ValidateStates(uint32_t states);

// Whether `action` would change anything for a file in `states` (Lustre's
// hsm_action_is_needed). Callers skip unneeded requests silently, without an error.
//   ARCHIVE: DIRTY or not ARCHIVED.
//   RESTORE: RELEASED, or DIRTY (so that CheckActionCompatible, not silence, tells the
//            user why a dirty file cannot be restored).
//   REMOVE:  ARCHIVED or EXISTS.
//   CANCEL:  always.
// kHalFlagForce in `flags` makes every action needed.
bool IsActionNeeded(Action action, uint32_t states, uint64_t flags);

// Whether `action` is allowed on a file in `states` (Lustre's mdt_hsm_is_action_compat,
// EPERM there). Errors are kPermissionDenied and name the state that forbids the action.
//   ARCHIVE: not NOARCHIVE; if EXISTS, the request's archive id must be the file's.
//            request_archive_id 0 means "the file's own archive" and always matches; callers
//            that substitute a default archive id must pass the substituted value.
//   RESTORE: RELEASED, ARCHIVED, not DIRTY, not LOST.
//   REMOVE:  not RELEASED (the archive holds the only copy of the data).
//   CANCEL:  always.
// FORCE does not bypass these checks.
Status CheckActionCompatible(Action action, uint32_t states, uint32_t file_archive_id,
                             uint32_t request_archive_id);

// The states after a user sets `set` and clears `clear` (lfs hsm_set/hsm_clear).
// Only kStateUserSettable bits (kStateAdminSettable when `admin`) may appear in either mask
// (kPermissionDenied otherwise); a
// bit in both masks is kInvalidArgument; the result must pass ValidateStates (e.g. setting
// DIRTY on a released file fails with kInvalidArgument).
Result<uint32_t> ApplyUserFlags(uint32_t states, uint32_t set, uint32_t clear, bool admin = false);

}  // namespace tierflow::hsm
