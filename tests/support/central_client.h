// A client on the central broker for request/response tests and the
// request benchmark: libmosquitto (an independent MQTT implementation), MQTT
// 5 or 3.1.1, its loop run on a thread of its own (mosquitto_loop with a 1 ms
// select, as the downlink benchmark does: the threaded mode measured ~100
// msg/s there). Header-only: only the targets that link libmosquitto
// include it (tests/CMakeLists.txt, tests/bench/CMakeLists.txt).
//
// EchoResponder answers every request it sees the way a cloud service
// would: MQTT 5 to the response topic with the correlation data, 3.1.1 in
// the envelope (agent/protocol/envelope.h); the answer is "re:" + payload.
#pragma once

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/protocol/envelope.h"

namespace edgespool::testing {

struct CentralMessage {
  std::string topic, payload;
  std::string response_topic, correlation;  // MQTT 5 properties
  uint32_t message_expiry_s = 0;             // 0: none (what is left of it)
  std::vector<std::pair<std::string, std::string>> user_properties;
};

class CentralClient {
 public:
  using Handler = std::function<void(CentralClient&, const CentralMessage&)>;

  CentralClient(uint16_t port, int protocol, const std::string& id, Handler on_message)
      : port_(port), protocol_(protocol), on_message_(std::move(on_message)) {
    static std::once_flag init;
    std::call_once(init, [] { mosquitto_lib_init(); });
    m_ = mosquitto_new(id.c_str(), true, this);
    mosquitto_int_option(m_, MOSQ_OPT_PROTOCOL_VERSION,
                         protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m_, 0);
    mosquitto_int_option(m_, MOSQ_OPT_TCP_NODELAY, 1);  // latency figures: no Nagle
    mosquitto_subscribe_v5_callback_set(
        m_, [](mosquitto*, void* self, int, int, const int*, const mosquitto_property*) {
          auto* c = static_cast<CentralClient*>(self);
          std::lock_guard<std::mutex> lock(c->mu_);
          ++c->subacks_;
          c->cv_.notify_all();
        });
    mosquitto_message_v5_callback_set(m_, [](mosquitto*, void* self, const mosquitto_message* msg,
                                             const mosquitto_property* props) {
      auto* c = static_cast<CentralClient*>(self);
      CentralMessage m;
      m.topic = msg->topic;
      m.payload.assign(static_cast<const char*>(msg->payload), msg->payloadlen);
      char* rt = nullptr;
      if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &rt, false)) {
        m.response_topic = rt;
        std::free(rt);
      }
      uint32_t expiry = 0;
      if (mosquitto_property_read_int32(props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &expiry, false)) {
        m.message_expiry_s = expiry;
      }
      void* cd = nullptr;
      uint16_t cd_len = 0;
      if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &cd, &cd_len, false)) {
        m.correlation.assign(static_cast<const char*>(cd), cd_len);
        std::free(cd);
      }
      for (const mosquitto_property* p = props; p != nullptr;) {
        char* k = nullptr;
        char* v = nullptr;
        p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &k, &v, false);
        if (!p) break;
        m.user_properties.emplace_back(k, v);
        std::free(k);
        std::free(v);
        p = mosquitto_property_next(p);
      }
      if (c->on_message_) c->on_message_(*c, m);
    });
  }

  ~CentralClient() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
    mosquitto_disconnect(m_);
    mosquitto_destroy(m_);
  }

  // Connects, subscribes to each filter (QoS 1) and waits for the SUBACKs.
  bool Start(const std::vector<std::string>& filters, int timeout_ms = 5000) {
    if (mosquitto_connect(m_, "127.0.0.1", port_, 60) != MOSQ_ERR_SUCCESS) return false;
    running_ = true;
    thread_ = std::thread([this] {
      while (running_) {
        if (mosquitto_loop(m_, 1, 1) != MOSQ_ERR_SUCCESS && running_) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          mosquitto_reconnect(m_);  // the broker stays up in these tests
        }
      }
    });
    for (const std::string& f : filters) {
      if (mosquitto_subscribe(m_, nullptr, f.c_str(), 1) != MOSQ_ERR_SUCCESS) return false;
    }
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return subacks_ >= filters.size(); });
  }

  // QoS 1. MQTT 5 properties only when this client speaks 5.
  bool Publish(const std::string& topic, const std::string& payload,
               const std::string& response_topic = "", const std::string& correlation = "",
               const std::vector<std::pair<std::string, std::string>>& user_properties = {}) {
    mosquitto_property* props = nullptr;
    if (protocol_ == 5) {
      if (!response_topic.empty()) {
        mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, response_topic.c_str());
      }
      if (!correlation.empty()) {
        mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, correlation.data(),
                                      static_cast<uint16_t>(correlation.size()));
      }
      for (const auto& [k, v] : user_properties) {
        mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, k.c_str(), v.c_str());
      }
    }
    int rc = mosquitto_publish_v5(m_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                  payload.data(), 1, false, props);
    mosquitto_property_free_all(&props);
    return rc == MOSQ_ERR_SUCCESS;
  }

  int protocol() const { return protocol_; }

 private:
  mosquitto* m_ = nullptr;
  uint16_t port_;
  int protocol_;
  Handler on_message_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t subacks_ = 0;
};

// The cloud service of the tests: answers "re:" + payload to every request.
inline void EchoResponder(CentralClient& c, const CentralMessage& m) {
  if (c.protocol() == 5) {
    c.Publish(m.response_topic, "re:" + m.payload, "", m.correlation);
    return;
  }
  protocol::Envelope e;
  std::string_view body;
  std::string error;
  if (!protocol::ParseEnvelope(m.payload, &e, &body, &error)) return;
  protocol::Envelope answer;
  answer.correlation = e.correlation;
  c.Publish(e.response_topic, protocol::EncodeEnvelope(answer, "re:" + std::string(body)));
}

}  // namespace edgespool::testing
