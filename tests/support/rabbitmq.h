// RabbitMQ (Debian's rabbitmq-server with its MQTT plugin, an MQTT 3.1.1
// broker) on free loopback ports, all state in a TempDir; stopped (and its
// epmd killed) on destruction. TESTING.md, "RabbitMQ as a second broker".
// Tests using it skip when RabbitMqInstalled() is false.
#pragma once

#include <cstdint>
#include <string>

#include "tests/support/test_env.h"

namespace edgespool::testing {

inline constexpr const char* kRabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server";
bool RabbitMqInstalled();

class RabbitMq {
 public:
  // extra_config: more rabbitmq.conf lines (e.g. "mqtt.prefetch = 1000").
  explicit RabbitMq(std::string extra_config = "");
  ~RabbitMq();
  // Starts and waits (up to 60 s) until the MQTT port accepts.
  bool Start();
  void Stop();
  uint16_t mqtt_port() const { return mqtt_port_; }
  std::string mqtt_url() const { return "mqtt://127.0.0.1:" + std::to_string(mqtt_port_); }
  std::string log() const;

 private:
  TempDir dir_;
  std::string extra_config_;
  uint16_t amqp_port_, mqtt_port_, dist_port_, epmd_port_;
  Process server_;
  bool started_ = false;
};

}  // namespace edgespool::testing
