// Status: code names and errno mapping.
#include "common/status.h"

#include <cstring>

namespace tierflow {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kFailedPrecondition: return "failed precondition";
    case Code::kBusy: return "busy";
    case Code::kIo: return "I/O error";
    case Code::kNoSpace: return "no space";
    case Code::kCorrupt: return "corrupt";
    case Code::kCanceled: return "canceled";
    case Code::kUnavailable: return "unavailable";
    case Code::kTimeout: return "timeout";
    case Code::kInternal: return "internal error";
  }
  return "unknown";
}

Status Status::FromErrno(int err, const std::string& what) {
  Code code = Code::kIo;
  switch (err) {
    case ENOENT: code = Code::kNotFound; break;
    case EEXIST: code = Code::kAlreadyExists; break;
    case EACCES:
    case EPERM:
    case EROFS: code = Code::kPermissionDenied; break;
    case EINVAL:
    case EISDIR:
    case ENOTDIR:
    case ENAMETOOLONG: code = Code::kInvalidArgument; break;
    case EBUSY:
    case ETXTBSY:
    case EAGAIN: code = Code::kBusy; break;
    case ENOSPC:
    case EDQUOT: code = Code::kNoSpace; break;
    case ECANCELED: code = Code::kCanceled; break;
    case ETIMEDOUT: code = Code::kTimeout; break;
    default: break;
  }
  return Status(code, what + ": " + std::strerror(err), err);
}

int Status::AsErrno() const {
  if (sys_errno_ != 0) return sys_errno_;
  switch (code_) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kPermissionDenied: return EPERM;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kBusy: return EBUSY;
    case Code::kNoSpace: return ENOSPC;
    case Code::kCanceled: return ECANCELED;
    case Code::kTimeout: return ETIMEDOUT;
    case Code::kUnavailable: return EAGAIN;
    default: return EIO;
  }
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return message_.empty() ? CodeName(code_) : message_;
}

Status Status::Annotate(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_, sys_errno_);
}

}  // namespace tierflow
