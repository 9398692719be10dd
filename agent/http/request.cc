#include "agent/http/request.h"

#include <algorithm>

namespace edgespool::agent {

namespace {

using State = HttpParseResult::State;

// RFC 9110 tchar.
bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
}

// field-value bytes: HTAB, SP, VCHAR, obs-text. Excludes NUL, CR, LF, DEL.
bool IsFieldValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool IsTargetChar(unsigned char c) { return c > 0x20 && c < 0x7f; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

HttpParseResult Error(int status, std::string why) {
  HttpParseResult r;
  r.state = State::kError;
  r.error_status = status;
  r.error = std::move(why);
  return r;
}

// "GET /metrics HTTP/1.1" -> fields of req; an error result otherwise.
bool ParseRequestLine(std::string_view line, HttpRequest* req, HttpParseResult* err) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    *err = Error(400, "malformed request line");
    return false;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) {
    *err = Error(400, "malformed method");
    return false;
  }
  if (target.empty() || target[0] != '/' || !std::all_of(target.begin(), target.end(), [](char c) {
        return IsTargetChar(static_cast<unsigned char>(c));
      })) {
    *err = Error(400, "request target must be an absolute path");
    return false;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    *err = Error(400, "malformed HTTP version");
    return false;
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    *err = Error(505, "HTTP version not supported");
    return false;
  }
  req->method = std::string(method);
  req->target = std::string(target);
  size_t q = target.find('?');
  req->path = std::string(target.substr(0, q));
  req->query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  req->version_minor = version[7] - '0';
  return true;
}

bool ParseHeaderLine(std::string_view line, HttpRequest* req, HttpParseResult* err) {
  if (line[0] == ' ' || line[0] == '\t') {
    *err = Error(400, "obsolete line folding in header");
    return false;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    *err = Error(400, "header line without a colon");
    return false;
  }
  std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) {  // also refuses whitespace before the colon (RFC 9112 5.1)
    *err = Error(400, "malformed header name");
    return false;
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (!std::all_of(value.begin(), value.end(),
                   [](char c) { return IsFieldValueChar(static_cast<unsigned char>(c)); })) {
    *err = Error(400, "control character in header value");
    return false;
  }
  req->headers.emplace_back(Lower(name), std::string(value));
  return true;
}

// Checks that need the whole head.
bool ValidateHead(const HttpRequest& req, HttpParseResult* err) {
  size_t hosts = 0, lengths = 0;
  for (const auto& [name, value] : req.headers) {
    if (name == "host") ++hosts;
    if (name == "content-length") {
      ++lengths;
      if (value.empty() ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        *err = Error(400, "malformed Content-Length");
        return false;
      }
    }
  }
  if (hosts > 1 || (req.version_minor == 1 && hosts == 0)) {
    *err = Error(400, hosts ? "more than one Host header" : "HTTP/1.1 request without Host");
    return false;
  }
  if (lengths > 1) {
    *err = Error(400, "more than one Content-Length");
    return false;
  }
  return true;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

HttpParseResult ParseHttpRequest(std::string_view data, const HttpParseLimits& limits) {
  HttpParseResult result;
  HttpRequest req;
  // Only the first max_head_bytes can hold the head: never look further.
  std::string_view window = data.substr(0, std::min(data.size(), limits.max_head_bytes));
  size_t pos = 0;
  bool first = true;
  while (true) {
    size_t nl = window.find('\n', pos);
    if (nl == std::string_view::npos) {
      if (data.size() >= limits.max_head_bytes) {
        return Error(431, "request head over " + std::to_string(limits.max_head_bytes) + " bytes");
      }
      return result;  // kIncomplete
    }
    std::string_view line = window.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return Error(400, "bare CR in request head");
    if (first) {
      if (!ParseRequestLine(line, &req, &result)) return result;
      first = false;
      continue;
    }
    if (line.empty()) break;
    if (req.headers.size() >= limits.max_headers) {
      return Error(431, "more than " + std::to_string(limits.max_headers) + " header fields");
    }
    if (!ParseHeaderLine(line, &req, &result)) return result;
  }
  if (!ValidateHead(req, &result)) return result;
  result.state = State::kComplete;
  result.head_bytes = pos;
  result.request = std::move(req);
  return result;
}

}  // namespace edgespool::agent
