// HSM state bits of a file, with Lustre's values (hsm_user_state.hus_states) and rules.
#pragma once

#include <cstdint>
#include <string>
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
inline constexpr uint32_t kStateAll = 0x7f;

// Names of the set bits in lfs hsm_state order: "released", "exists", "dirty", "archived",
// "never_release"... tierflow prints: exists dirty released archived norelease noarchive lost.
std::vector<std::string> StateNames(uint32_t states);

// Rejects Lustre's invalid combinations (EINVAL there): DIRTY without EXISTS, RELEASED with
// DIRTY, RELEASED without ARCHIVED, LOST without ARCHIVED.
Status ValidateStates(uint32_t states);

}  // namespace tierflow::hsm
