// HSM state names, validity rules, and Lustre's needed/compatible rules for actions.
#include "hsm/hsm_state.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>

namespace tierflow::hsm {

namespace {

struct StateName {
  uint32_t bit;
  std::string_view name;
};

// lfs hsm_state's order: "released" first, then the remaining bits in bit order.
constexpr StateName kStateNames[] = {
    {kStateReleased, "released"},   {kStateExists, "exists"},       {kStateDirty, "dirty"},
    {kStateArchived, "archived"},   {kStateNoRelease, "norelease"}, {kStateNoArchive, "noarchive"},
    {kStateLost, "lost"}};

std::string Describe(uint32_t states) {
  std::vector<std::string> names = StateNames(states);
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ","));
}

Status Denied(std::string message) { return Status(Code::kPermissionDenied, std::move(message)); }

Status CheckArchive(uint32_t states, uint32_t file_archive_id, uint32_t request_archive_id) {
  if (states & kStateNoArchive) {
    return Denied("file is noarchive; clear it with 'tierflow state --clear noarchive'");
  }
  if ((states & kStateExists) && request_archive_id != 0 && request_archive_id != file_archive_id) {
    return Denied(fmt::format(
        "file exists in archive {} and cannot be archived to archive {}; archive it with "
        "--archive-id {}, or remove it from archive {} first",
        file_archive_id, request_archive_id, file_archive_id, file_archive_id));
  }
  return Status::Ok();
}

Status CheckRestore(uint32_t states) {
  if (states & kStateLost) {
    return Denied("file is lost: its archived copy is gone, so there is nothing to restore from");
  }
  if (states & kStateDirty) {
    return Denied(
        "file is dirty: the filesystem holds data newer than the archive, and a restore would "
        "overwrite it");
  }
  if (!(states & kStateReleased)) {
    return Denied("file is not released: its data is already on the filesystem");
  }
  if (!(states & kStateArchived)) {
    return Denied("file is not archived: there is no copy to restore from");
  }
  return Status::Ok();
}

Status CheckRemove(uint32_t states) {
  if (states & kStateReleased) {
    return Denied(
        "file is released: the archive holds its only copy of the data; restore it first with "
        "'tierflow restore'");
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> StateNames(uint32_t states) {
  std::vector<std::string> out;
  for (const StateName& n : kStateNames) {
    if (states & n.bit) out.emplace_back(n.name);
  }
  return out;
}

std::optional<uint32_t> ParseStateName(std::string_view name) {
  for (const StateName& n : kStateNames) {
    if (name.size() != n.name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(name[i])) == n.name[i];
    }
    if (same) return n.bit;
  }
  return std::nullopt;
}

Status ValidateStates(uint32_t states) {
  auto invalid = [states](std::string_view why) {
    return Status(Code::kInvalidArgument,
                  fmt::format("invalid HSM states {:#x} ({}): {}", states, Describe(states), why));
  };
  if (states & ~kStateAll) {
    return invalid(fmt::format("unknown state bits {:#x}; known bits are {:#x}",
                               states & ~kStateAll, kStateAll));
  }
  if ((states & kStateDirty) && !(states & kStateExists)) {
    return invalid("dirty requires exists (only a file with an archived copy can be dirty)");
  }
  if ((states & kStateReleased) && (states & kStateDirty)) {
    return invalid("released and dirty cannot both be set");
  }
  if ((states & kStateReleased) && !(states & kStateArchived)) {
    return invalid("released requires archived");
  }
  if ((states & kStateLost) && !(states & kStateArchived)) {
    return invalid("lost requires archived");
  }
  return Status::Ok();
}

bool IsActionNeeded(Action action, uint32_t states, uint64_t flags) {
  if (flags & kHalFlagForce) return true;
  switch (action) {
    case Action::kArchive: return (states & kStateDirty) || !(states & kStateArchived);
    case Action::kRestore: return (states & (kStateReleased | kStateDirty)) != 0;
    case Action::kRemove: return (states & (kStateArchived | kStateExists)) != 0;
    case Action::kCancel: return true;
  }
  return false;
}

Status CheckActionCompatible(Action action, uint32_t states, uint32_t file_archive_id,
                             uint32_t request_archive_id) {
  switch (action) {
    case Action::kArchive: return CheckArchive(states, file_archive_id, request_archive_id);
    case Action::kRestore: return CheckRestore(states);
    case Action::kRemove: return CheckRemove(states);
    case Action::kCancel: return Status::Ok();
  }
  return Status(Code::kInvalidArgument, "unknown HSM action");
}

Result<uint32_t> ApplyUserFlags(uint32_t states, uint32_t set, uint32_t clear, bool admin) {
  uint32_t forbidden = (set | clear) & ~(admin ? kStateAdminSettable : kStateUserSettable);
  if (forbidden != 0) {
    return Status(Code::kPermissionDenied,
                  fmt::format("HSM state {} ({:#x}) cannot be set by hand; users may set or "
                              "clear norelease, noarchive and dirty, and root lost too",
                              Describe(forbidden), forbidden));
  }
  if (set & clear) {
    return Status(Code::kInvalidArgument,
                  fmt::format("HSM state {} is both set and cleared; pick one",
                              Describe(set & clear)));
  }
  uint32_t next = (states | set) & ~clear;
  Status st = ValidateStates(next);
  if (!st.ok()) return st;
  return next;
}

}  // namespace tierflow::hsm
