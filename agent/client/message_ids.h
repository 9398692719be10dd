// MessageIds: the idempotency ids a Producer generates when the caller gives
// none, through the agent or in direct mode alike (so a central consumer
// sees the same kind of es-id either way).
//
// Thread-safety: Next() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace edgespool::client {

class MessageIds {
 public:
  // prefix empty: the time-ordered form (see Next()).
  explicit MessageIds(std::string prefix);
  std::string Next();

 private:
  std::string prefix_;
  bool time_ordered_ = false;
  std::atomic<uint64_t> next_{1};
};

}  // namespace edgespool::client
