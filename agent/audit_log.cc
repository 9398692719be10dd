#include "agent/audit_log.h"

#include <cmath>
#include <string>

#include "platform/log.h"

namespace edgespool::agent {
namespace {

// splitmix64's finalizer: consecutive seqs spread over the whole range, so
// a sample of arrival-ordered seqs is not a run of them.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

AuditLog::AuditLog(bool enabled, double sample) : enabled_(enabled && sample > 0) {
  all_ = sample >= 1.0;
  threshold_ = all_ ? UINT64_MAX : static_cast<uint64_t>(std::ldexp(sample, 64));
}

bool AuditLog::Sampled(uint64_t seq) const { return all_ || Mix(seq) < threshold_; }

void AuditLog::Note(std::string_view event, uint64_t seq, std::string_view topic,
                    std::string_view reason) const {
  if (!enabled_ || !Sampled(seq)) return;
  std::string s = std::to_string(seq);
  // Written whatever log.level says: the operator asked for these lines.
  if (!reason.empty()) {
    platform::Logger::Write(platform::LogLevel::kInfo, "audit",
                            {{"event", event}, {"seq", s}, {"reason", reason}});
  } else if (!topic.empty()) {
    platform::Logger::Write(platform::LogLevel::kInfo, "audit",
                            {{"event", event}, {"seq", s}, {"topic", topic}});
  } else {
    platform::Logger::Write(platform::LogLevel::kInfo, "audit", {{"event", event}, {"seq", s}});
  }
}

}  // namespace edgespool::agent
