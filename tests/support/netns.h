// A network namespace holding one end of a veth pair, the other end left in
// the test's namespace, for faults that need the kernel's help (packet loss
// with iptables statistic, a slow link with tc tbf, a black hole with DROP).
// Root only; ok() says whether the environment allowed it.
// Addresses: 10.213.<n>.1 here, .2 inside (n from the pid).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgespool::testing {

class NetNs {
 public:
  NetNs();
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  bool ok() const { return ok_; }
  // Runs a shell command here / inside the namespace; true on exit status 0.
  static bool Run(const std::string& cmd);
  bool In(const std::string& cmd) const;
  // Packets the first rule of an iptables chain inside the namespace matched.
  uint64_t RulePackets(const std::string& chain) const;
  // A command prefix that runs a program inside the namespace.
  std::vector<std::string> prefix() const { return {"ip", "netns", "exec", name_}; }
  const std::string& host_ip() const { return host_ip_; }
  const std::string& dev() const { return ns_dev_; }

 private:
  std::string name_, host_ip_, ns_ip_, veth_, ns_dev_;
  bool ok_ = false;
};

}  // namespace edgespool::testing
