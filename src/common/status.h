// Errors as values. A Status carries a code, the errno behind it when there is one,
// and a message that says what failed, on which object, and what to do about it.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

namespace tierflow {

enum class Code {
  kOk = 0,
  kInvalidArgument,    // the caller asked for something malformed
  kNotFound,           // the named object does not exist
  kAlreadyExists,
  kPermissionDenied,
  kFailedPrecondition, // the object is not in a state that allows the operation
  kBusy,               // the object is in use or changed underneath; retry may work
  kIo,                 // an I/O error from the system
  kNoSpace,
  kCorrupt,            // stored data failed a check (checksum, format)
  kCanceled,
  kUnavailable,        // a peer (coordinator, mover, disk) cannot be reached now
  kTimeout,
  kInternal,
};

const char* CodeName(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message, int sys_errno = 0)
      : code_(code), sys_errno_(sys_errno), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // Maps an errno to a Code; `what` says which operation on which object failed.
  static Status FromErrno(int err, const std::string& what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int sys_errno() const { return sys_errno_; }
  const std::string& message() const { return message_; }
  // The errno to hand to a kernel interface (EIO when the status has none).
  int AsErrno() const;
  std::string ToString() const;

  // Prefixes the message with context: "restoring /a/b: " + message.
  Status Annotate(const std::string& context) const;

 private:
  Code code_ = Code::kOk;
  int sys_errno_ = 0;
  std::string message_;
};

// A value or the Status saying why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}              // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}      // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tierflow

#define TF_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::tierflow::Status _tf_st = (expr);       \
    if (!_tf_st.ok()) return _tf_st;         \
  } while (0)
