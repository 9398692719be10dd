// Keeps a FleetModel current: subscribes to the status topic on the central
// broker (the retained documents arrive right after the SUBACK, then every
// node's republishing), applies each message, re-judges the fleet once a
// second (silence and lag grow with time alone) and tells its observers what
// changed. Reconnects with backoff like every MQTT client here; the model
// keeps its last picture while the link is down.
//
// Loop-thread-only. The model and observers must outlive the watcher.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/fleet/fleet_model.h"
#include "platform/clock.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "sync/mqtt/client.h"

namespace edgespool::agent::fleet {

class FleetObserver {
 public:
  virtual ~FleetObserver() = default;
  // A node's view changed (a document arrived, or its health moved).
  virtual void OnNodeChanged(const NodeView& view) {}
  virtual void OnNodeRemoved(const std::string& node) {}
  // The watcher's own link to the broker came or went.
  virtual void OnLinkChanged(bool connected) {}
};

struct FleetWatcherOptions {
  // url, credentials, TLS, backoff; the subscription is added from `topic`.
  sync::mqtt::ClientOptions client;
  std::string topic = "edgespool/+/status";
  uint64_t refresh_ms = 1000;
};

class FleetWatcher final : private sync::mqtt::ClientListener {
 public:
  static Result<std::unique_ptr<FleetWatcher>> Create(platform::Loop& loop,
                                                      FleetWatcherOptions options,
                                                      FleetModel* model,
                                                      const platform::Clock& clock);
  ~FleetWatcher() override;

  void AddObserver(FleetObserver* observer) { observers_.push_back(observer); }
  void Start();

  bool connected() const { return connected_; }
  // Whether the subscription has been granted at least once, and when
  // (monotonic ms): the retained documents have arrived shortly after.
  bool subscribed() const { return subscribed_; }
  int64_t subscribed_mono_ms() const { return subscribed_mono_ms_; }
  const std::string& last_error() const { return last_error_; }
  const FleetModel& model() const { return *model_; }

 private:
  FleetWatcher(platform::Loop& loop, FleetModel* model, const platform::Clock& clock,
               uint64_t refresh_ms);
  void OnRefresh();

  // sync::mqtt::ClientListener
  void OnConnected(const sync::mqtt::ConnectInfo& info) override;
  void OnDisconnected(const Status& why) override;
  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}
  void OnSubscribed(const std::vector<uint8_t>& codes) override;
  void OnMessage(const sync::mqtt::IncomingMessage& m) override;

  platform::Loop& loop_;
  FleetModel* model_;
  const platform::Clock& clock_;
  uint64_t refresh_ms_;
  std::unique_ptr<sync::mqtt::Client> client_;
  platform::TimerHandle refresh_timer_;
  std::vector<FleetObserver*> observers_;
  bool connected_ = false;
  bool subscribed_ = false;
  int64_t subscribed_mono_ms_ = 0;
  std::string last_error_;
};

}  // namespace edgespool::agent::fleet
