// Helpers shared by the store module's tests: a temporary directory and fully populated rows.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "store/journal.h"

namespace tierflow::store::test_support {

// A fresh directory under /tmp, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tf_store_test.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A row with every field set to something that depends on `id`, so mix-ups show.
inline RequestRow MakeRow(uint64_t id, RequestState state = RequestState::kQueued) {
  RequestRow r;
  r.id = id;
  r.file.fsid = "fs" + std::to_string(id % 3);
  r.file.fid = {0x200000400 + id, static_cast<uint32_t>(id * 7), static_cast<uint32_t>(id % 2)};
  r.path = "/mnt/lustre/project/dir" + std::to_string(id % 100) + "/file" + std::to_string(id);
  r.action = static_cast<hsm::Action>(1 + id % 3);
  r.archive_id = static_cast<uint32_t>(1 + id % 4);
  r.flags = id % 5;
  r.data = "tag=" + std::to_string(id);
  r.offset = 0;
  r.length = UINT64_MAX;
  r.user = "user" + std::to_string(id % 10);
  r.state = state;
  r.mover = state == RequestState::kQueued ? "" : "mover-" + std::to_string(id % 4);
  r.epoch = state == RequestState::kQueued ? 0 : 1;
  r.attempts = state == RequestState::kQueued ? 0 : 1;
  r.error_code = state == RequestState::kFailed ? 5 : 0;
  r.error = state == RequestState::kFailed ? "copy failed: Input/output error" : "";
  r.created_us = 1'700'000'000'000'000 + static_cast<int64_t>(id);
  r.changed_us = r.created_us + (state == RequestState::kQueued ? 0 : 1000);
  return r;
}

}  // namespace tierflow::store::test_support
