#include "tests/support/rabbitmq.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <utility>

namespace edgespool::testing {

namespace {

// FreePort() finds a port nobody listens on now; the nodes of a cluster take
// a dozen before any of them listens, so the same number could come back
// twice (seen: epmd's port given again as a node's AMQP port). Ports handed
// out here are never handed out again in this process.
uint16_t UniquePort() {
  static std::set<uint16_t> given;
  for (;;) {
    uint16_t p = FreePort();
    if (given.insert(p).second) return p;
  }
}

void KillEpmd(uint16_t port, const std::string& log) {
  // epmd outlives the nodes; it was started on our private port.
  Process epmd;
  if (epmd.Start({"epmd", "-kill"}, log, {{"ERL_EPMD_PORT", std::to_string(port)}})) epmd.Wait(5000);
}

}  // namespace

bool RabbitMqInstalled() { return ::access(kRabbitServer, X_OK) == 0; }

RabbitMq::RabbitMq(std::string extra_config)
    : RabbitMq(Node{"interop" + std::to_string(getpid()) + "@localhost", UniquePort(), ""},
               std::move(extra_config)) {
  own_epmd_ = true;
}

RabbitMq::RabbitMq(Node node, std::string extra_config)
    : node_(std::move(node)),
      extra_config_(std::move(extra_config)),
      amqp_port_(UniquePort()),
      mqtt_port_(UniquePort()),
      dist_port_(UniquePort()),
      own_epmd_(false) {
  if (node_.home.empty()) node_.home = dir_.File("home");
}

RabbitMq::~RabbitMq() { Stop(); }

bool RabbitMq::Launch() {
  const std::string& t = dir_.path();
  WriteFile(dir_.File("rabbitmq.conf"),
            "listeners.tcp.default = 127.0.0.1:" + std::to_string(amqp_port_) +
                "\nmqtt.listeners.tcp.default = 127.0.0.1:" + std::to_string(mqtt_port_) + "\n" +
                extra_config_ + "\n");
  std::map<std::string, std::string> env = {
      {"HOME", node_.home},
      {"RABBITMQ_NODENAME", node_.name},
      {"RABBITMQ_CONFIG_FILE", t + "/rabbitmq.conf"},
      {"RABBITMQ_CONF_ENV_FILE", t + "/none"},
      {"RABBITMQ_MNESIA_BASE", t + "/mnesia"},
      {"RABBITMQ_LOG_BASE", t + "/log"},
      {"RABBITMQ_PID_FILE", t + "/rabbit.pid"},
      {"RABBITMQ_ENABLED_PLUGINS_FILE", t + "/enabled_plugins"},
      {"RABBITMQ_ENABLED_PLUGINS", "rabbitmq_mqtt"},
      {"RABBITMQ_DIST_PORT", std::to_string(dist_port_)},
      {"ERL_EPMD_PORT", std::to_string(node_.epmd_port)},
      {"ERL_EPMD_ADDRESS", "127.0.0.1"},
      {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"},
  };
  ::mkdir(node_.home.c_str(), 0755);
  if (!server_.Start({kRabbitServer}, dir_.File("server.log"), env)) return false;
  started_ = true;
  return true;
}

bool RabbitMq::WaitStarted(int timeout_ms) { return started_ && WaitForPort(mqtt_port_, timeout_ms); }

bool RabbitMq::Start() { return Launch() && WaitStarted(60000); }

void RabbitMq::Stop() {
  if (!started_) return;
  started_ = false;
  server_.Signal(SIGTERM);
  if (server_.Wait(15000) == -1) {
    server_.Signal(SIGKILL);
    server_.Wait(5000);
  }
  if (own_epmd_) KillEpmd(node_.epmd_port, dir_.File("epmd.log"));
}

bool RabbitMq::Ctl(const std::vector<std::string>& args, std::string* output,
                   int timeout_ms) const {
  std::vector<std::string> argv = {kRabbitCtl, "-n", node_.name};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out = dir_.File("ctl-" + std::to_string(++ctl_runs_) + ".out");
  Process ctl;
  bool ok = ctl.Start(argv, out,
                      {{"HOME", node_.home},
                       {"ERL_EPMD_PORT", std::to_string(node_.epmd_port)},
                       {"RABBITMQ_CONF_ENV_FILE", dir_.File("none")}});
  int status = ok ? ctl.Wait(timeout_ms) : -1;
  if (status == -1 && ok) ctl.Signal(SIGKILL), ctl.Wait(5000);
  if (output) *output = ReadFile(out);
  return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string RabbitMq::log() const { return ReadFile(dir_.File("server.log")); }

RabbitMqCluster::RabbitMqCluster(int nodes, std::string extra_config) : epmd_port_(UniquePort()) {
  std::string home = dir_.File("home");
  ::mkdir(home.c_str(), 0700);
  // One cookie for every node and rabbitmqctl, written before any of them
  // boots (each would otherwise make its own, racing for the file).
  std::string cookie = home + "/.erlang.cookie";
  WriteFile(cookie, "EDGESPOOLCLUSTERTEST" + std::to_string(getpid()));
  ::chmod(cookie.c_str(), 0400);
  for (int i = 1; i <= nodes; ++i) {
    RabbitMq::Node n{"c" + std::to_string(i) + "-" + std::to_string(getpid()) + "@localhost",
                     epmd_port_, home};
    nodes_.push_back(std::make_unique<RabbitMq>(n, extra_config));
  }
}

RabbitMqCluster::~RabbitMqCluster() {
  for (auto& n : nodes_) n->Stop();
  KillEpmd(epmd_port_, dir_.File("epmd.log"));
}

bool RabbitMqCluster::Start() {
  for (auto& n : nodes_) {
    if (!n->Launch()) return error_ = "could not start " + n->node_name(), false;
  }
  for (auto& n : nodes_) {
    if (!n->WaitStarted(120000)) return error_ = n->node_name() + " did not open its MQTT port", false;
  }
  const std::string& first = nodes_[0]->node_name();
  for (size_t i = 1; i < nodes_.size(); ++i) {
    RabbitMq& n = *nodes_[i];
    std::string out;
    for (const std::vector<std::string>& step :
         {std::vector<std::string>{"stop_app"}, {"join_cluster", first}, {"start_app"}}) {
      if (!n.Ctl(step, &out, 120000)) {
        return error_ = n.node_name() + ": rabbitmqctl " + step[0] + " failed: " + out, false;
      }
    }
    if (!n.WaitStarted(60000)) return error_ = n.node_name() + " did not come back", false;
  }
  return true;
}

std::string RabbitMqCluster::logs() const {
  std::string all;
  for (const auto& n : nodes_) all += "---- " + n->node_name() + "\n" + n->log();
  return all;
}

}  // namespace edgespool::testing
