#include "tests/support/netns.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace edgespool::testing {

NetNs::NetNs() {
  int n = static_cast<int>(::getpid() % 200) + 20;
  name_ = "es-nf-" + std::to_string(::getpid());
  host_ip_ = "10.213." + std::to_string(n) + ".1";
  ns_ip_ = "10.213." + std::to_string(n) + ".2";
  veth_ = "esh" + std::to_string(::getpid() % 100000);
  std::string peer = "esn" + std::to_string(::getpid() % 100000);
  ok_ = Run("ip netns add " + name_) &&
        Run("ip link add " + veth_ + " type veth peer name " + peer) &&
        Run("ip link set " + peer + " netns " + name_) &&
        Run("ip addr add " + host_ip_ + "/30 dev " + veth_) && Run("ip link set " + veth_ + " up") &&
        In("ip addr add " + ns_ip_ + "/30 dev " + peer) && In("ip link set " + peer + " up") &&
        In("ip link set lo up");
  ns_dev_ = peer;
}

NetNs::~NetNs() {
  Run("ip link del " + veth_ + " 2>/dev/null");
  Run("ip netns del " + name_ + " 2>/dev/null");
}

bool NetNs::Run(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

bool NetNs::In(const std::string& cmd) const { return Run("ip netns exec " + name_ + " " + cmd); }

uint64_t NetNs::RulePackets(const std::string& chain) const {
  std::string cmd = "ip netns exec " + name_ + " iptables -L " + chain + " -v -n -x 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return 0;
  char line[512];
  uint64_t pkts = 0;
  int row = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (++row == 3) pkts = std::strtoull(line, nullptr, 10);  // header, columns, rule 1
  }
  ::pclose(f);
  return pkts;
}

}  // namespace edgespool::testing
