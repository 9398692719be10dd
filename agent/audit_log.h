// The audit log: one structured line per message event (accepted, sent,
// dead, expired), through platform/log, for whoever must show what became of a
// message without querying the agent ([audit] in the configuration).
//
//   json:  {"ts":"...","level":"info","msg":"audit","event":"sent","seq":"42",...}
//
// Sampling is per message, not per line: whether a seq is in the sample is a
// hash of the seq, so a sampled message has all its lines and an unsampled
// one none (a 1% sample still follows whole lifecycles). Off (the default)
// a note costs one branch; the producer server does not even keep the topic
// for it.
//
// Thread: any (platform/log writes whole lines).
#pragma once

#include <cstdint>
#include <string_view>

namespace edgespool::agent {

class AuditLog {
 public:
  AuditLog(bool enabled, double sample);
  bool enabled() const { return enabled_; }
  bool Sampled(uint64_t seq) const;
  // event: "accepted" (stored: topic given), "sent", "dead" (reason),
  // "expired".
  void Note(std::string_view event, uint64_t seq, std::string_view topic = {},
            std::string_view reason = {}) const;

 private:
  bool enabled_;
  uint64_t threshold_;  // sampled iff hash(seq) < threshold_ (sample 1: all)
  bool all_;
};

}  // namespace edgespool::agent
