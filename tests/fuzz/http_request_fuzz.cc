// libFuzzer: the metrics endpoint's request-head parser (agent/http/request.h)
// must accept or refuse any bytes without crashing or reading past them, and
// its answers must be consistent with how bytes arrive on a socket:
//  - a complete head is complete on its own, and every shorter prefix of it
//    is incomplete (never an error, never a different request);
//  - an error other than 431 stays an error whatever bytes follow;
//  - what it accepts satisfies the grammar in the header comment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/http/request.h"

namespace {

using edgespool::agent::HttpParseLimits;
using edgespool::agent::HttpParseResult;
using edgespool::agent::ParseHttpRequest;
using State = HttpParseResult::State;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckAccepted(const HttpParseResult& r, std::string_view data, const HttpParseLimits& limits) {
  const auto& req = r.request;
  Check(r.head_bytes > 0 && r.head_bytes <= data.size() && r.head_bytes <= limits.max_head_bytes);
  Check(data[r.head_bytes - 1] == '\n');
  Check(!req.method.empty() && req.method.find_first_of(" \t\r\n:/") == std::string::npos);
  Check(!req.path.empty() && req.path[0] == '/');
  Check(req.target.compare(0, req.path.size(), req.path) == 0);
  Check(req.version_minor == 0 || req.version_minor == 1);
  Check(req.headers.size() <= limits.max_headers);
  for (const auto& [name, value] : req.headers) {
    Check(!name.empty() &&
          name.find_first_of(" \t\r\n:ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos);
    Check(value.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    Check(value.empty() || (value.front() != ' ' && value.back() != ' '));
  }
  if (req.version_minor == 1) Check(req.Header("host") != nullptr);
}

void Run(std::string_view data, const HttpParseLimits& limits) {
  HttpParseResult r = ParseHttpRequest(data, limits);
  // Deterministic.
  HttpParseResult again = ParseHttpRequest(data, limits);
  Check(again.state == r.state && again.error_status == r.error_status &&
        again.head_bytes == r.head_bytes);
  switch (r.state) {
    case State::kComplete: {
      CheckAccepted(r, data, limits);
      std::string_view head = data.substr(0, r.head_bytes);
      HttpParseResult alone = ParseHttpRequest(head, limits);
      Check(alone.state == State::kComplete && alone.head_bytes == r.head_bytes &&
            alone.request.target == r.request.target && alone.request.headers == r.request.headers);
      for (size_t k : {r.head_bytes - 1, r.head_bytes / 2, size_t{0}}) {
        Check(ParseHttpRequest(head.substr(0, k), limits).state == State::kIncomplete);
      }
      break;
    }
    case State::kError: {
      Check(r.error_status == 400 || r.error_status == 431 || r.error_status == 505);
      Check(!r.error.empty());
      if (r.error_status != 431) {
        std::string more(data);
        more += "\r\nHost: x\r\n\r\n";
        Check(ParseHttpRequest(more, limits).state == State::kError);
      }
      break;
    }
    case State::kIncomplete:
      Check(data.size() < limits.max_head_bytes);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Run(input, HttpParseLimits{});  // the server's defaults: 8 KiB, 64 fields
  HttpParseLimits small;
  small.max_head_bytes = 64;
  small.max_headers = 3;
  Run(input, small);
  return 0;
}
