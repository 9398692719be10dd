#include "agent/methods/pending_requests.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iterator>

namespace edgespool::agent::methods {

PendingRequests::PendingRequests(PendingRequestsOptions options, uint64_t run_id)
    : options_(options) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-", run_id);
  prefix_ = buf;
}

std::string PendingRequests::CorrelationOf(uint64_t number) const {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%" PRIx64, number);
  return prefix_ + buf;
}

uint64_t PendingRequests::NumberOf(std::string_view correlation) const {
  if (correlation.size() <= prefix_.size() || correlation.size() > prefix_.size() + 16 ||
      correlation.substr(0, prefix_.size()) != prefix_) {
    return 0;
  }
  uint64_t n = 0;
  for (char c : correlation.substr(prefix_.size())) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return 0;
    }
    n = n << 4 | static_cast<uint64_t>(d);
  }
  return n;
}

Result<std::string> PendingRequests::Add(uint64_t conn_id, std::optional<int64_t> req,
                                         int64_t now_ms, int64_t timeout_ms,
                                         std::optional<int64_t> wait_ms,
                                         sync::OutboundPublish message) {
  if (entries_.size() >= options_.max_pending) {
    return Status::ResourceExhausted("too many requests pending in the agent (" +
                                     std::to_string(options_.max_pending) + ")");
  }
  size_t& mine = per_connection_[conn_id];
  if (mine >= options_.max_per_connection) {
    return Status::ResourceExhausted("too many requests pending on this connection (" +
                                     std::to_string(options_.max_per_connection) + ")");
  }
  if (wait_ms && waiting_bytes_ + message.payload.size() > options_.max_waiting_bytes) {
    if (mine == 0) per_connection_.erase(conn_id);
    return Status::ResourceExhausted("too many request bytes waiting for the uplink");
  }
  PendingRequest r;
  r.number = next_number_++;
  r.conn_id = conn_id;
  r.req = req;
  r.timeout_ms = timeout_ms;
  r.waiting = wait_ms.has_value();
  r.deadline_ms = now_ms + (r.waiting ? *wait_ms : timeout_ms);
  if (r.waiting) {
    waiting_bytes_ += message.payload.size();
    ++waiting_count_;
    r.message = std::move(message);
  }
  ++mine;
  deadlines_.emplace(r.deadline_ms, r.number);
  uint64_t number = r.number;
  entries_.emplace(number, std::move(r));
  return CorrelationOf(number);
}

PendingRequest PendingRequests::Take(std::unordered_map<uint64_t, PendingRequest>::iterator it) {
  PendingRequest& r = it->second;
  deadlines_.erase({r.deadline_ms, r.number});
  if (r.waiting) {
    --waiting_count_;
    waiting_bytes_ -= r.message.payload.size();
  }
  auto pc = per_connection_.find(r.conn_id);
  if (pc != per_connection_.end() && --pc->second == 0) per_connection_.erase(pc);
  PendingRequest out = std::move(r);
  entries_.erase(it);
  return out;
}

PendingRequests::MatchResult PendingRequests::Match(std::string_view correlation) {
  MatchResult out;
  uint64_t n = NumberOf(correlation);
  if (n == 0 || n >= next_number_) return out;  // not one of this run's ids
  auto it = entries_.find(n);
  // An answer to a request still waiting for the uplink cannot be one: it
  // was never sent (a stray or forged id) and it keeps waiting.
  if (it == entries_.end() || it->second.waiting) {
    out.kind = MatchKind::kLate;
    return out;
  }
  out.kind = MatchKind::kMatched;
  out.request = Take(it);
  return out;
}

std::vector<PendingRequest> PendingRequests::Expire(int64_t now_ms) {
  std::vector<PendingRequest> out;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    out.push_back(Take(entries_.find(deadlines_.begin()->second)));
  }
  return out;
}

std::vector<PendingRequest> PendingRequests::TakeWaiting(int64_t now_ms) {
  std::vector<PendingRequest> out;
  if (waiting_count_ == 0) return out;
  for (auto& [number, r] : entries_) {
    if (!r.waiting) continue;
    deadlines_.erase({r.deadline_ms, number});
    r.waiting = false;
    r.deadline_ms = now_ms + r.timeout_ms;
    deadlines_.emplace(r.deadline_ms, number);
    waiting_bytes_ -= r.message.payload.size();
    PendingRequest copy;
    copy.number = number;
    copy.conn_id = r.conn_id;
    copy.req = r.req;
    copy.timeout_ms = r.timeout_ms;
    copy.deadline_ms = r.deadline_ms;
    copy.message = std::move(r.message);
    r.message = sync::OutboundPublish{};
    out.push_back(std::move(copy));
  }
  waiting_count_ = 0;
  waiting_bytes_ = 0;
  // Sent in the order they were made.
  std::sort(out.begin(), out.end(),
            [](const PendingRequest& a, const PendingRequest& b) { return a.number < b.number; });
  return out;
}

bool PendingRequests::Remove(std::string_view correlation, PendingRequest* out) {
  auto it = entries_.find(NumberOf(correlation));
  if (it == entries_.end()) return false;
  *out = Take(it);
  return true;
}

size_t PendingRequests::DropConnection(uint64_t conn_id) {
  if (per_connection_.find(conn_id) == per_connection_.end()) return 0;
  size_t dropped = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (it->second.conn_id == conn_id) {
      Take(it);
      ++dropped;
    }
    it = next;
  }
  return dropped;
}

std::optional<int64_t> PendingRequests::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

size_t PendingRequests::ForConnection(uint64_t conn_id) const {
  auto it = per_connection_.find(conn_id);
  return it == per_connection_.end() ? 0 : it->second;
}

}  // namespace edgespool::agent::methods
