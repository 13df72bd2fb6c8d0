// HSM state names and validity rules.
#include "hsm/hsm_state.h"

namespace tierflow::hsm {

std::vector<std::string> StateNames(uint32_t states) {
  static const struct {
    uint32_t bit;
    const char* name;
  } kNames[] = {{kStateReleased, "released"},   {kStateExists, "exists"},
                {kStateDirty, "dirty"},         {kStateArchived, "archived"},
                {kStateNoRelease, "norelease"}, {kStateNoArchive, "noarchive"},
                {kStateLost, "lost"}};
  std::vector<std::string> out;
  for (const auto& n : kNames) {
    if (states & n.bit) out.emplace_back(n.name);
  }
  return out;
}

Status ValidateStates(uint32_t states) {
  if (states & ~kStateAll) return Status(Code::kInvalidArgument, "unknown HSM state bits");
  if ((states & kStateDirty) && !(states & kStateExists))
    return Status(Code::kInvalidArgument, "dirty requires exists");
  if ((states & kStateReleased) && (states & kStateDirty))
    return Status(Code::kInvalidArgument, "released and dirty cannot both be set");
  if ((states & kStateReleased) && !(states & kStateArchived))
    return Status(Code::kInvalidArgument, "released requires archived");
  if ((states & kStateLost) && !(states & kStateArchived))
    return Status(Code::kInvalidArgument, "lost requires archived");
  return Status::Ok();
}

}  // namespace tierflow::hsm
