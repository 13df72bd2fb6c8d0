// How the watch module names what it knows only by a path or a descriptor: a filesystem by its
// id, in the form hsm::FileId::fsid uses (statfs f_fsid as 16 lowercase hex digits; the holder's
// socket is named after it, so the holder, the watcher and pass clients must all derive it
// here), and a file by the path its descriptor points at.
#pragma once

#include <string>

#include "common/status.h"

namespace tierflow::watch {

// Any path on the filesystem (a mount point, a directory, a file). Only statfs: no open, no
// content access. Errors name the path.
Result<std::string> FilesystemIdOf(const std::string& path);

// readlink of /proc/self/fd/N: the file's path now, " (deleted)" appended when it has no name
// left; "<descriptor N>" when it cannot be read. For messages and restore requests.
std::string PathOfFd(int fd);

}  // namespace tierflow::watch
