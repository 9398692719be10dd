#include "agent/fleet/fleet_watcher.h"

#include <cassert>

#include "platform/log.h"

namespace edgespool::agent::fleet {

FleetWatcher::FleetWatcher(platform::Loop& loop, FleetModel* model, const platform::Clock& clock,
                           uint64_t refresh_ms)
    : loop_(loop), model_(model), clock_(clock), refresh_ms_(refresh_ms), refresh_timer_(loop) {}

FleetWatcher::~FleetWatcher() = default;

Result<std::unique_ptr<FleetWatcher>> FleetWatcher::Create(platform::Loop& loop,
                                                           FleetWatcherOptions options,
                                                           FleetModel* model,
                                                           const platform::Clock& clock) {
  std::unique_ptr<FleetWatcher> w(new FleetWatcher(loop, model, clock, options.refresh_ms));
  // QoS 1: a status change (an offline will above all) must not be lost
  // to a busy broker's QoS 0 shedding.
  options.client.subscriptions.emplace_back(options.topic, 1);
  auto client = sync::mqtt::Client::Create(loop, std::move(options.client), w.get());
  if (!client.ok()) return client.status();
  w->client_ = std::move(*client);
  return w;
}

void FleetWatcher::Start() {
  assert(loop_.InLoopThread());
  client_->Start();
  refresh_timer_.Start(refresh_ms_, refresh_ms_, [this] { OnRefresh(); });
}

void FleetWatcher::OnRefresh() {
  for (const std::string& node : model_->Refresh(clock_.WallMs())) {
    const NodeView* v = model_->Find(node);
    for (FleetObserver* o : observers_) o->OnNodeChanged(*v);
  }
}

void FleetWatcher::OnConnected(const sync::mqtt::ConnectInfo&) {
  connected_ = true;
  for (FleetObserver* o : observers_) o->OnLinkChanged(true);
}

void FleetWatcher::OnDisconnected(const Status& why) {
  last_error_ = why.ToString();
  if (!connected_) return;
  connected_ = false;
  for (FleetObserver* o : observers_) o->OnLinkChanged(false);
}

void FleetWatcher::OnSubscribed(const std::vector<uint8_t>& codes) {
  if (!codes.empty() && codes[0] >= 0x80) {
    last_error_ = "subscription refused by the broker";
    return;
  }
  if (!subscribed_) subscribed_mono_ms_ = clock_.MonotonicMs();
  subscribed_ = true;
}

void FleetWatcher::OnMessage(const sync::mqtt::IncomingMessage& m) {
  std::string node;
  switch (model_->Apply(m.topic, m.payload, m.retain, clock_.WallMs(), &node)) {
    case FleetModel::Change::kNone:
      return;
    case FleetModel::Change::kUpdated: {
      const NodeView* v = model_->Find(node);
      for (FleetObserver* o : observers_) o->OnNodeChanged(*v);
      return;
    }
    case FleetModel::Change::kRemoved:
      for (FleetObserver* o : observers_) o->OnNodeRemoved(node);
      return;
  }
}

}  // namespace edgespool::agent::fleet
