#include "agent/methods/method_calls.h"

#include <algorithm>
#include <iterator>

#include "agent/protocol/request.h"

namespace edgespool::agent::methods {

Status MethodCalls::Register(uint64_t conn_id, const std::vector<std::string>& names, bool stop) {
  std::set<std::string>& mine = by_conn_[conn_id];
  for (const std::string& name : names) {
    Responders& r = by_method_[name];
    auto at = std::find(r.conns.begin(), r.conns.end(), conn_id);
    if (stop) {
      if (at != r.conns.end()) r.conns.erase(at);
      mine.erase(name);
      if (r.conns.empty()) by_method_.erase(name);
      continue;
    }
    if (at != r.conns.end()) continue;
    if (mine.size() >= protocol::kMaxMethods) {
      if (r.conns.empty()) by_method_.erase(name);
      return Status::ResourceExhausted("more than " + std::to_string(protocol::kMaxMethods) +
                                       " methods on one connection");
    }
    r.conns.push_back(conn_id);
    mine.insert(name);
  }
  if (mine.empty()) by_conn_.erase(conn_id);
  return Status::Ok();
}

MethodCalls::Dispatch MethodCalls::OnCall(const std::string& method, AnswerRoute route,
                                          int64_t deadline_ms) {
  Dispatch d;
  auto it = by_method_.find(method);
  if (it == by_method_.end() || it->second.conns.empty()) return d;
  if (calls_.size() >= max_pending_) {
    d.kind = DispatchKind::kBusy;
    return d;
  }
  Responders& r = it->second;
  if (r.next >= r.conns.size()) r.next = 0;
  PendingCall c;
  c.call = next_call_++;
  c.conn_id = r.conns[r.next++];
  c.method = method;
  c.deadline_ms = deadline_ms;
  c.route = std::move(route);
  d.kind = DispatchKind::kDeliver;
  d.call = c.call;
  d.conn_id = c.conn_id;
  deadlines_.emplace(deadline_ms, c.call);
  calls_.emplace(c.call, std::move(c));
  return d;
}

PendingCall MethodCalls::Take(std::unordered_map<uint64_t, PendingCall>::iterator it) {
  deadlines_.erase({it->second.deadline_ms, it->first});
  PendingCall out = std::move(it->second);
  calls_.erase(it);
  return out;
}

std::optional<PendingCall> MethodCalls::Answer(uint64_t conn_id, uint64_t call) {
  auto it = calls_.find(call);
  if (it == calls_.end() || it->second.conn_id != conn_id) return std::nullopt;
  return Take(it);
}

std::vector<PendingCall> MethodCalls::Expire(int64_t now_ms) {
  std::vector<PendingCall> out;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    out.push_back(Take(calls_.find(deadlines_.begin()->second)));
  }
  return out;
}

std::vector<PendingCall> MethodCalls::DropConnection(uint64_t conn_id) {
  auto mine = by_conn_.find(conn_id);
  if (mine != by_conn_.end()) {
    (void)Register(conn_id, std::vector<std::string>(mine->second.begin(), mine->second.end()),
                   /*stop=*/true);
  }
  std::vector<PendingCall> out;
  for (auto it = calls_.begin(); it != calls_.end();) {
    auto next = std::next(it);
    if (it->second.conn_id == conn_id) out.push_back(Take(it));
    it = next;
  }
  std::sort(out.begin(), out.end(),
            [](const PendingCall& a, const PendingCall& b) { return a.call < b.call; });
  return out;
}

std::optional<int64_t> MethodCalls::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

size_t MethodCalls::responders(const std::string& method) const {
  auto it = by_method_.find(method);
  return it == by_method_.end() ? 0 : it->second.conns.size();
}

}  // namespace edgespool::agent::methods
