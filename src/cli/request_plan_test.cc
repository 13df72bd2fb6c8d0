// Which requests a client verb submits, which files it skips with a note, which it refuses.
#include "cli/request_plan.h"

#include <gtest/gtest.h>

#include <set>

#include "hsm/hsm_state.h"

namespace tierflow::cli {
namespace {

using hsm::Action;

LocalFile File(const std::string& path, uint64_t inode, uint32_t states, uint32_t archive_id = 1) {
  LocalFile f;
  f.path = path;
  f.state.id = {"fs1", hsm::Fid{inode, 7, 0}};
  f.state.has_record = states != 0;
  f.state.record.fid = f.state.id.fid;
  f.state.record.states = states;
  f.state.record.archive_id = states != 0 ? archive_id : 0;
  f.state.current = {100, 5, 6, 7};
  f.state.record.stamp = f.state.current;
  f.state.record.seal = {f.state.current.ctime_ns - 1, f.state.current.ctime_ns + 1};
  f.state.uid = 1001;
  f.state.gid = 2002;
  f.state.projid = 42;
  return f;
}

constexpr uint32_t kArchived = hsm::kStateExists | hsm::kStateArchived;
constexpr uint32_t kReleased = kArchived | hsm::kStateReleased;

PlanOptions Opts(Action a, uint32_t archive_id = 0) {
  PlanOptions o;
  o.action = a;
  o.archive_id = archive_id;
  o.data = "tag=x";
  o.user = "alice";
  return o;
}

TEST(Plan, ArchiveSkipsArchivedCleanFilesAndKeepsTheRest) {
  Plan p = PlanRequests(Opts(Action::kArchive), {File("/a", 1, 0), File("/b", 2, kArchived)});
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0].path, "/a");
  const v1::RequestSpec& s = p.requests[0].spec;
  EXPECT_EQ(s.action(), v1::ARCHIVE);
  EXPECT_EQ(s.file().path(), "/a");
  EXPECT_EQ(s.file().fsid(), "fs1");
  EXPECT_EQ(s.file().seq(), 1u);
  EXPECT_EQ(s.file().oid(), 7u);
  EXPECT_EQ(s.archive_id(), 0u);  // the coordinator's default
  EXPECT_EQ(s.data(), "tag=x");
  EXPECT_EQ(s.user(), "alice");
  // Who owns the file goes along, for fair share by owner, group or project.
  EXPECT_EQ(s.owner().uid(), 1001u);
  EXPECT_EQ(s.owner().gid(), 2002u);
  EXPECT_EQ(s.owner().projid(), 42u);
  EXPECT_EQ(p.requests[0].size, 100u);
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0], "/b: already archived and unchanged; skipped");
  EXPECT_TRUE(p.errors.empty());
}

TEST(Plan, ArchiveOfAChangedFileIsNeededAndGoesToItsOwnArchive) {
  LocalFile f = File("/a", 1, kArchived, 3);
  f.state.current.mtime_ns += 1;
  EXPECT_TRUE(EffectiveStates(f.state) & hsm::kStateDirty);
  Plan p = PlanRequests(Opts(Action::kArchive), {f});
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0].spec.archive_id(), 3u);
}

TEST(Plan, AnUnsealedOrCtimeMovedArchiveCountsAsChanged) {
  LocalFile f = File("/a", 1, kArchived);
  EXPECT_EQ(EffectiveStates(f.state), kArchived);
  f.state.current.ctime_ns += 5;
  EXPECT_EQ(EffectiveStates(f.state), kArchived | hsm::kStateDirty);
  f = File("/a", 1, kArchived);
  f.state.record.seal = {};
  EXPECT_EQ(EffectiveStates(f.state), kArchived | hsm::kStateDirty);
}

TEST(Plan, ReleasedFilesAreNotDirtyEvenIfTheirStampMoved) {
  LocalFile f = File("/a", 1, kReleased);
  f.state.current.ctime_ns += 1;
  EXPECT_EQ(EffectiveStates(f.state), kReleased);
}

TEST(Plan, ArchiveToAnotherArchiveIdIsRefusedNamingTheFile) {
  LocalFile f = File("/a", 1, kArchived, 1);
  f.state.current.size = 5;  // dirty, so needed
  Plan p = PlanRequests(Opts(Action::kArchive, 2), {f});
  EXPECT_TRUE(p.requests.empty());
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].code(), Code::kPermissionDenied);
  EXPECT_EQ(p.errors[0].message().rfind("/a: cannot archive: ", 0), 0u) << p.errors[0].message();
}

TEST(Plan, NoArchiveIsRefused) {
  Plan p = PlanRequests(Opts(Action::kArchive), {File("/a", 1, hsm::kStateNoArchive)});
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_NE(p.errors[0].message().find("noarchive"), std::string::npos);
}

TEST(Plan, RestoreOnlyReleasedFilesFromTheirArchive) {
  Plan p = PlanRequests(Opts(Action::kRestore),
                        {File("/r", 1, kReleased, 4), File("/a", 2, kArchived), File("/n", 3, 0)});
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0].spec.action(), v1::RESTORE);
  EXPECT_EQ(p.requests[0].spec.archive_id(), 4u);
  EXPECT_EQ(p.requests[0].spec.data(), "");
  EXPECT_EQ(p.notes, (std::vector<std::string>{"/a: not released; nothing to restore",
                                               "/n: not released; nothing to restore"}));
}

TEST(Plan, RemoveSkipsUnarchivedAndRefusesReleased) {
  Plan p = PlanRequests(Opts(Action::kRemove),
                        {File("/a", 1, kArchived, 2), File("/n", 2, 0), File("/r", 3, kReleased)});
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0].spec.archive_id(), 2u);
  EXPECT_EQ(p.notes, (std::vector<std::string>{"/n: not archived; nothing to remove"}));
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].message().rfind("/r: cannot remove: ", 0), 0u);
}

TEST(Plan, HardLinksAreRequestedOnce) {
  Plan p = PlanRequests(Opts(Action::kArchive), {File("/a", 1, 0), File("/b", 1, 0)});
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.notes, (std::vector<std::string>{"/b: same file as /a; requested once"}));
}

TEST(Batches, AtMostBatchSizeEachWithItsOwnKey) {
  std::vector<LocalFile> files;
  for (uint64_t i = 1; i <= 2501; ++i) files.push_back(File("/f" + std::to_string(i), i, 0));
  Plan p = PlanRequests(Opts(Action::kArchive), files);
  auto batches = SplitBatches(p.requests, 1000);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].requests_size(), 1000);
  EXPECT_EQ(batches[2].requests_size(), 501);
  EXPECT_EQ(batches[2].requests(500).file().path(), "/f2501");
  std::set<std::string> keys;
  for (const auto& b : batches) {
    EXPECT_EQ(b.idempotency_key().size(), 32u);
    keys.insert(b.idempotency_key());
  }
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_TRUE(SplitBatches({}, 1000).empty());
}

}  // namespace
}  // namespace tierflow::cli
