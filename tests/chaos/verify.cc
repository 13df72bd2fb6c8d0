// The chaos driver's end check.
#include "verify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "hsm/hsm_state.h"
#include "mover/backends/posix_backend.h"
#include "mover/fs/local_fs.h"

namespace tierflow::chaos {

Result<uint64_t> HashFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status(Code::kIo, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st(Code::kIo, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    XXH3_64bits_update(state.get(), buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return XXH3_64bits_digest(state.get());
}

namespace {

// Problems of one file, given the archive objects found; `objects` loses the file's copy.
void CheckFile(const ExpectedFile& f, mover::PosixBackend& backend, std::set<std::string>* objects,
               std::vector<std::string>* problems) {
  auto say = [&](const std::string& what) {
    problems->push_back(fmt::format("{} ({}): {}", f.path, f.id.fid.ToString(), what));
  };
  auto st = mover::GetFileState(f.path);
  if (!st.ok()) return say("cannot read its HSM state: " + st.status().ToString());
  const uint32_t s = st->has_record ? st->record.states : 0;
  const bool archived = (s & hsm::kStateArchived) != 0;
  const bool released = (s & hsm::kStateReleased) != 0;
  if (archived != f.archived || released != f.released) {
    say(fmt::format("HSM state {:#x} (archived={} released={}), expected archived={} released={}",
                    s, archived, released, f.archived, f.released));
  }
  if (s & (hsm::kStateDirty | hsm::kStateLost))
    say(fmt::format("HSM state {:#x} is dirty or lost", s));
  if (!f.released) {
    auto h = HashFile(f.path);
    if (!h.ok()) {
      say(h.status().ToString());
    } else if (*h != f.hash) {
      say(fmt::format("resident data hashes {:016x}, expected {:016x}", *h, f.hash));
    }
  }
  auto ref = backend.ObjectRefFor(f.id);
  if (!ref.ok()) return say("no object name: " + ref.status().ToString());
  const bool has_copy = objects->erase(*ref) > 0;
  if (!f.archived) {
    if (has_copy) say("not archived, yet the archive holds a copy " + *ref);
    return;
  }
  if (!has_copy) return say("archived, but the archive has no copy " + *ref);
  if (st->has_record && st->record.object_ref != *ref) {
    say(fmt::format("record names copy '{}', the archive holds '{}'", st->record.object_ref, *ref));
  }
  auto h = HashFile(backend.root() + "/" + *ref);
  if (!h.ok()) return say(h.status().ToString());
  if (*h != f.hash) say(fmt::format("archive copy hashes {:016x}, expected {:016x}", *h, f.hash));
}

}  // namespace

VerifyReport VerifyFiles(const std::vector<ExpectedFile>& files, const std::string& archive_root) {
  VerifyReport report;
  auto backend = mover::PosixBackend::Open({archive_root});
  if (!backend.ok()) {
    report.problems.push_back("cannot open the archive: " + backend.status().ToString());
    return report;
  }
  std::set<std::string> objects;
  Status listed = (*backend)->ListObjects([&](const std::string& ref) { objects.insert(ref); });
  if (!listed.ok()) report.problems.push_back("cannot list the archive: " + listed.ToString());
  for (const ExpectedFile& f : files) {
    const size_t before = report.problems.size();
    CheckFile(f, **backend, &objects, &report.problems);
    if (report.problems.size() == before) ++report.verified;
  }
  for (const std::string& ref : objects) {
    report.problems.push_back("archive copy " + ref + " belongs to no file of the workload");
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(archive_root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().find("_tmp") != std::string::npos) {
      report.problems.push_back("temporary copy left in the archive: " + it->path().string());
    }
  }
  return report;
}

}  // namespace tierflow::chaos
