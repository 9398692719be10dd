#include "tests/support/rabbitmq.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <utility>

namespace edgespool::testing {

bool RabbitMqInstalled() { return ::access(kRabbitServer, X_OK) == 0; }

RabbitMq::RabbitMq(std::string extra_config)
    : extra_config_(std::move(extra_config)),
      amqp_port_(FreePort()),
      mqtt_port_(FreePort()),
      dist_port_(FreePort()),
      epmd_port_(FreePort()) {}

RabbitMq::~RabbitMq() { Stop(); }

bool RabbitMq::Start() {
  const std::string& t = dir_.path();
  WriteFile(dir_.File("rabbitmq.conf"),
            "listeners.tcp.default = 127.0.0.1:" + std::to_string(amqp_port_) +
                "\nmqtt.listeners.tcp.default = 127.0.0.1:" + std::to_string(mqtt_port_) + "\n" +
                extra_config_ + "\n");
  std::map<std::string, std::string> env = {
      {"HOME", t + "/home"},
      {"RABBITMQ_NODENAME", "interop" + std::to_string(getpid()) + "@localhost"},
      {"RABBITMQ_CONFIG_FILE", t + "/rabbitmq.conf"},
      {"RABBITMQ_CONF_ENV_FILE", t + "/none"},
      {"RABBITMQ_MNESIA_BASE", t + "/mnesia"},
      {"RABBITMQ_LOG_BASE", t + "/log"},
      {"RABBITMQ_PID_FILE", t + "/rabbit.pid"},
      {"RABBITMQ_ENABLED_PLUGINS_FILE", t + "/enabled_plugins"},
      {"RABBITMQ_ENABLED_PLUGINS", "rabbitmq_mqtt"},
      {"RABBITMQ_DIST_PORT", std::to_string(dist_port_)},
      {"ERL_EPMD_PORT", std::to_string(epmd_port_)},
      {"ERL_EPMD_ADDRESS", "127.0.0.1"},
      {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"},
  };
  ::mkdir((t + "/home").c_str(), 0755);
  if (!server_.Start({kRabbitServer}, dir_.File("server.log"), env)) return false;
  started_ = true;
  return WaitForPort(mqtt_port_, 60000);
}

void RabbitMq::Stop() {
  if (!started_) return;
  started_ = false;
  server_.Signal(SIGTERM);
  if (server_.Wait(15000) == -1) {
    server_.Signal(SIGKILL);
    server_.Wait(5000);
  }
  // epmd outlives the node; it was started on our private port.
  Process epmd;
  if (epmd.Start({"epmd", "-kill"}, dir_.File("epmd.log"),
                 {{"ERL_EPMD_PORT", std::to_string(epmd_port_)}})) {
    epmd.Wait(5000);
  }
}

std::string RabbitMq::log() const { return ReadFile(dir_.File("server.log")); }

}  // namespace edgespool::testing
