// Status and Result<T>: the one error type of edgespool.
//
// No exceptions cross a libuv callback frame, so every fallible call returns a
// [[nodiscard]] Status (an OK status is one byte and no allocation) or a
// Result<T>. Each C library's error domain (uv, SQLite, mbedTLS, zstd, cJSON)
// is translated once, at the edge, into a Code plus a message that keeps the
// detail ("fsync failed: EIO on journal.db-wal").
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace edgespool {

enum class Code : unsigned char {
  kOk = 0,
  kInvalidArgument,   // bad input from outside: a frame, a topic, a config value
  kNotFound,
  kAlreadyExists,
  kResourceExhausted, // journal full, queue full, rate limited
  kUnavailable,       // peer down, try again later
  kIoError,           // the disk or the network failed
  kCorruption,        // persisted or received bytes are not what they must be
  kPermissionDenied,
  kCancelled,
  kTimeout,
  kProtocolError,     // a peer broke the protocol
  kInternal,
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string_view message)
      : state_(code == Code::kOk ? nullptr : new State{code, std::string(message)}) {}
  Status(const Status& other) : state_(other.state_ ? new State(*other.state_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) state_.reset(other.state_ ? new State(*other.state_) : nullptr);
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status NotFound(std::string_view m) { return Status(Code::kNotFound, m); }
  static Status ResourceExhausted(std::string_view m) {
    return Status(Code::kResourceExhausted, m);
  }
  static Status Unavailable(std::string_view m) { return Status(Code::kUnavailable, m); }
  static Status IoError(std::string_view m) { return Status(Code::kIoError, m); }
  static Status Corruption(std::string_view m) { return Status(Code::kCorruption, m); }
  static Status PermissionDenied(std::string_view m) {
    return Status(Code::kPermissionDenied, m);
  }
  static Status Cancelled(std::string_view m) { return Status(Code::kCancelled, m); }
  static Status Timeout(std::string_view m) { return Status(Code::kTimeout, m); }
  static Status ProtocolError(std::string_view m) { return Status(Code::kProtocolError, m); }
  static Status Internal(std::string_view m) { return Status(Code::kInternal, m); }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  const std::string& message() const;
  // "io_error: fsync failed: EIO on journal.db-wal"
  std::string ToString() const;
  // Prefixes context: Status::IoError("EIO").Annotate("fsync journal.db")
  Status Annotate(std::string_view context) const;

 private:
  struct State {
    Code code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

// Result<T>: a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result built from an OK status has no value");
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace edgespool

// Returns early from a function returning Status (or Result) when expr fails.
#define ES_RETURN_IF_ERROR(expr)            \
  do {                                      \
    ::edgespool::Status es_status_ = (expr); \
    if (!es_status_.ok()) return es_status_; \
  } while (0)
