// RabbitMQ (Debian's rabbitmq-server with its MQTT plugin, an MQTT 3.1.1
// broker) on free loopback ports, all state in a TempDir; stopped (and its
// epmd killed) on destruction. TESTING.md, "RabbitMQ as a second broker".
// Tests using it skip when RabbitMqInstalled() is false.
//
// RabbitMqCluster: N such nodes sharing one epmd port and one Erlang cookie
// (a HOME of their own), joined with `rabbitmqctl join_cluster`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace edgespool::testing {

inline constexpr const char* kRabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";
inline constexpr const char* kRabbitCtl = "/usr/lib/rabbitmq/bin/rabbitmqctl";
bool RabbitMqInstalled();

class RabbitMq {
 public:
  // A node of a cluster: its name, and the epmd port and HOME (which holds
  // .erlang.cookie) it shares with the others.
  struct Node {
    std::string name;  // "c1-1234@localhost"
    uint16_t epmd_port = 0;
    std::string home;
  };

  // extra_config: more rabbitmq.conf lines (e.g. "mqtt.prefetch = 1000").
  explicit RabbitMq(std::string extra_config = "");
  RabbitMq(Node node, std::string extra_config);
  ~RabbitMq();
  // Starts and waits (up to 60 s) until the MQTT port accepts.
  bool Start();
  // Starts without waiting; WaitStarted() waits (nodes of a cluster boot
  // side by side).
  bool Launch();
  bool WaitStarted(int timeout_ms = 60000);
  void Stop();
  bool running() const { return started_; }
  uint16_t mqtt_port() const { return mqtt_port_; }
  std::string mqtt_url() const { return "mqtt://127.0.0.1:" + std::to_string(mqtt_port_); }
  const std::string& node_name() const { return node_.name; }
  std::string log() const;
  // `rabbitmqctl -n NODE ARGS...` with this node's environment; its output
  // (stdout and stderr) in *output. True on exit 0.
  bool Ctl(const std::vector<std::string>& args, std::string* output = nullptr,
           int timeout_ms = 60000) const;

 private:
  TempDir dir_;
  Node node_;
  std::string extra_config_;
  uint16_t amqp_port_, mqtt_port_, dist_port_;
  Process server_;
  bool started_ = false;
  bool own_epmd_;
  mutable int ctl_runs_ = 0;  // each rabbitmqctl run writes a file of its own
};

class RabbitMqCluster {
 public:
  RabbitMqCluster(int nodes, std::string extra_config);
  ~RabbitMqCluster();
  // Boots every node side by side, then joins the 2nd.. to the 1st (stop_app,
  // join_cluster, start_app) and waits until the MQTT ports accept. False
  // with the reason in error().
  bool Start();
  RabbitMq& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  const std::string& error() const { return error_; }
  std::string logs() const;

 private:
  TempDir dir_;  // HOME with the shared cookie
  uint16_t epmd_port_;
  std::vector<std::unique_ptr<RabbitMq>> nodes_;
  std::string error_;
};

}  // namespace edgespool::testing
