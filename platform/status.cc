#include "platform/status.h"

namespace edgespool {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kResourceExhausted: return "resource_exhausted";
    case Code::kUnavailable: return "unavailable";
    case Code::kIoError: return "io_error";
    case Code::kCorruption: return "corruption";
    case Code::kPermissionDenied: return "permission_denied";
    case Code::kCancelled: return "cancelled";
    case Code::kTimeout: return "timeout";
    case Code::kProtocolError: return "protocol_error";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(state_->code)) + ": " + state_->message;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return Status();
  return Status(state_->code, std::string(context) + ": " + state_->message);
}

}  // namespace edgespool
