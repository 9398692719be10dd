// The request-head parser of the metrics/health endpoint: a pure function
// over bytes, so that it is fuzzed on its own (tests/fuzz/http_request_fuzz.cc)
// and the server only moves bytes.
//
// Accepted (RFC 9112 request head, the subset a scraper or a probe sends):
//
//   request-line = method SP origin-form SP "HTTP/1." ("0" | "1") CRLF
//   *( field-name ":" OWS field-value OWS CRLF )
//   CRLF
//
// A bare LF is accepted where CRLF is expected (RFC 9112 section 2.2 allows
// it); a bare CR is not. Anything else is an error with the status to answer:
// 400 (bad syntax: whitespace before a colon, obs-fold, control bytes, a
// target that is not origin-form, a missing or repeated Host in HTTP/1.1,
// a repeated Content-Length), 431 (the head, or the number of fields, is over
// the limit), 505 (an HTTP version other than 1.0/1.1). Lines are checked as
// soon as they are complete, so garbage is refused without waiting for the
// end of a head that will never come.
//
// The body, if any, is not parsed: the server answers one request per
// connection and closes it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgespool::agent {

struct HttpRequest {
  std::string method;     // case-sensitive token: "GET"
  std::string target;     // as sent: "/metrics?name[]=x"
  std::string path;       // target up to '?': "/metrics"
  std::string query;      // after '?', or ""
  int version_minor = 1;  // HTTP/1.<minor>
  // Field names lower-cased; values with surrounding whitespace removed.
  std::vector<std::pair<std::string, std::string>> headers;

  // First value of a header (name in lower case), or nullptr.
  const std::string* Header(std::string_view lower_name) const;
};

struct HttpParseResult {
  enum class State { kIncomplete, kComplete, kError };
  State state = State::kIncomplete;
  int error_status = 0;   // 400, 431 or 505 when state == kError
  std::string error;      // why, for the log and the response body
  size_t head_bytes = 0;  // bytes of the head, blank line included (kComplete)
  HttpRequest request;    // filled when kComplete
};

struct HttpParseLimits {
  size_t max_head_bytes = 8192;
  size_t max_headers = 64;
};

// Parses the request head at the start of `data` (which may hold only part
// of it, or more than it). Deterministic and allocation-bounded by
// limits.max_head_bytes; never reads past data.size().
HttpParseResult ParseHttpRequest(std::string_view data, const HttpParseLimits& limits = {});

}  // namespace edgespool::agent
