// Request planning for archive, restore and remove.
#include "cli/request_plan.h"

#include <fmt/format.h>

#include <map>
#include <random>

#include "hsm/hsm_state.h"
#include "wire/convert.h"

namespace tierflow::cli {

namespace {

std::string SkipNote(hsm::Action action, const std::string& path) {
  switch (action) {
    case hsm::Action::kArchive:
      return path + ": already archived and unchanged; skipped";
    case hsm::Action::kRestore:
      return path + ": not released; nothing to restore";
    case hsm::Action::kRemove:
      return path + ": not archived; nothing to remove";
    default:
      return path + ": nothing to do";
  }
}

uint32_t TargetArchiveId(const PlanOptions& o, const mover::FileState& st, uint32_t states) {
  if (o.action != hsm::Action::kArchive) return st.record.archive_id;
  if (o.archive_id != 0) return o.archive_id;
  return (states & hsm::kStateExists) ? st.record.archive_id : 0;
}

v1::RequestSpec MakeSpec(const PlanOptions& o, const LocalFile& f, uint32_t archive_id) {
  v1::RequestSpec spec;
  spec.set_action(wire::ActionToProto(o.action));
  wire::FileRefToProto(f.state.id, f.path, spec.mutable_file());
  spec.set_archive_id(archive_id);
  if (o.action == hsm::Action::kArchive) spec.set_data(o.data);
  spec.set_user(o.user);
  spec.mutable_owner()->set_uid(f.state.uid);
  spec.mutable_owner()->set_gid(f.state.gid);
  spec.mutable_owner()->set_projid(f.state.projid);
  return spec;
}

}  // namespace

uint32_t EffectiveStates(const mover::FileState& state) {
  uint32_t s = state.has_record ? state.record.states : 0;
  const bool resident_archive = (s & hsm::kStateArchived) && !(s & hsm::kStateReleased);
  if (resident_archive && !mover::UnchangedSinceSeal(state.record, state.current)) {
    s |= hsm::kStateDirty;
  }
  return s;
}

Plan PlanRequests(const PlanOptions& options, const std::vector<LocalFile>& files) {
  Plan plan;
  std::map<hsm::FileId, std::string> seen;
  for (const LocalFile& f : files) {
    auto [it, fresh] = seen.emplace(f.state.id, f.path);
    if (!fresh) {
      plan.notes.push_back(f.path + ": same file as " + it->second + "; requested once");
      continue;
    }
    const uint32_t states = EffectiveStates(f.state);
    if (!hsm::IsActionNeeded(options.action, states, 0)) {
      plan.notes.push_back(SkipNote(options.action, f.path));
      continue;
    }
    const uint32_t archive_id = TargetArchiveId(options, f.state, states);
    Status ok =
        hsm::CheckActionCompatible(options.action, states, f.state.record.archive_id, archive_id);
    if (!ok.ok()) {
      plan.errors.push_back(ok.Annotate(f.path + ": cannot " + VerbName(options.action)));
      continue;
    }
    plan.requests.push_back({f.path, MakeSpec(options, f, archive_id), f.state.current.size});
  }
  return plan;
}

std::vector<v1::SubmitRequest> SplitBatches(const std::vector<PlannedRequest>& requests,
                                            size_t batch_size) {
  std::vector<v1::SubmitRequest> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i % batch_size == 0) {
      out.emplace_back();
      out.back().set_idempotency_key(NewIdempotencyKey());
    }
    *out.back().add_requests() = requests[i].spec;
  }
  return out;
}

std::string NewIdempotencyKey() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

std::string VerbName(hsm::Action action) {
  switch (action) {
    case hsm::Action::kArchive:
      return "archive";
    case hsm::Action::kRestore:
      return "restore";
    case hsm::Action::kRemove:
      return "remove";
    case hsm::Action::kCancel:
      return "cancel";
  }
  return "?";
}

}  // namespace tierflow::cli
