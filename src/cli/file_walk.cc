// Recursive, link-free expansion of client PATH arguments.
#include "cli/file_walk.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace tierflow::cli {

namespace fs = std::filesystem;

namespace {

class Walker {
 public:
  explicit Walker(WalkResult* out) : out_(out) {}

  void Explicit(const std::string& arg) {
    const std::string path = AbsolutePath(arg);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      out_->errors.push_back(Status::FromErrno(errno, arg));
      return;
    }
    if (S_ISREG(st.st_mode)) return Add(path);
    if (S_ISDIR(st.st_mode)) return Directory(path);
    const char* what = S_ISLNK(st.st_mode) ? "is a symbolic link; name the file it points to"
                                           : "is not a regular file or a directory";
    out_->errors.push_back(Status(Code::kInvalidArgument, arg + ": " + what));
  }

 private:
  void Add(const std::string& path) {
    if (seen_.insert(path).second) out_->files.push_back(path);
  }

  void Directory(const std::string& dir) {
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      entries.push_back(*it);
    if (ec) {
      out_->errors.push_back(Status::FromErrno(ec.value(), "cannot read directory " + dir));
      return;
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.path().filename() < b.path().filename();
    });
    for (const auto& e : entries) {
      const fs::file_status st = e.symlink_status(ec);
      if (ec) continue;  // vanished while we walked
      if (fs::is_regular_file(st))
        Add(e.path().string());
      else if (fs::is_directory(st))
        Directory(e.path().string());
    }
  }

  WalkResult* out_;
  std::set<std::string> seen_;
};

}  // namespace

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = path;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

WalkResult ExpandPaths(const std::vector<std::string>& paths) {
  WalkResult out;
  Walker w(&out);
  for (const std::string& p : paths) w.Explicit(p);
  return out;
}

}  // namespace tierflow::cli
