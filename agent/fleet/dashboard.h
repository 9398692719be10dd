// The fleet dashboard (`edgespool fleet --http ADDR`): the agent's HTTP
// server (agent/http/server.h) with the fleet's routes.
//
//   GET /            the page (dashboard_page.h: one static file, no build
//                    step, no CDN, compiled into the binary)
//   GET /events      Server-Sent Events:
//                      event: snapshot   data: {"now_ms","stale_ms","broker",
//                                         "connected","nodes":[row...]}
//                        (first, to every new client: the whole fleet, worst first)
//                      event: update     data: {"now_ms","connected",
//                                         "nodes":[row...],"removed":[name...]}
//                        (what changed, coalesced per loop turn)
//                    rows as in render.h. A client that falls more than
//                    HttpServerOptions::max_stream_buffer_bytes behind is
//                    closed; its EventSource reconnects and gets a snapshot.
//   GET /api/fleet   the rows as JSON, worst first (as `edgespool fleet --json`)
//   GET /metrics     the fleet's Prometheus exposition, when a registry is given
//   GET /healthz, /readyz (ready while connected to the broker)
//
// Loop-thread-only; the watcher (and its model) must outlive the dashboard.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "agent/fleet/fleet_watcher.h"
#include "agent/http/server.h"
#include "platform/clock.h"
#include "platform/loop.h"

namespace edgespool::agent::fleet {

class Dashboard final : public FleetObserver {
 public:
  // broker: shown on the page (without credentials).
  static Result<std::unique_ptr<Dashboard>> Create(platform::Loop& loop,
                                                   const ListenAddress& address,
                                                   const FleetWatcher* watcher,
                                                   const platform::Clock& clock, std::string broker,
                                                   MetricsRegistry* metrics = nullptr,
                                                   HttpServerOptions options = {});
  ~Dashboard() override;

  uint16_t port() const { return server_->port(); }
  const HttpServer& server() const { return *server_; }
  // Bytes of the last update event written (a bench figure).
  uint64_t events_sent() const { return events_sent_; }

  // FleetObserver
  void OnNodeChanged(const NodeView& view) override;
  void OnNodeRemoved(const std::string& node) override;
  void OnLinkChanged(bool connected) override;

 private:
  Dashboard(platform::Loop& loop, const FleetWatcher* watcher, const platform::Clock& clock,
            std::string broker);
  std::string Snapshot() const;
  void ScheduleFlush();
  void Flush();

  const FleetWatcher* watcher_;
  const platform::Clock& clock_;
  std::string broker_;
  std::unique_ptr<HttpServer> server_;
  // Changes since the last flush: node -> its row ("" = removed). Keyed so
  // that a node updated twice in one turn is sent once.
  std::map<std::string, std::string> pending_;
  bool link_changed_ = false;
  platform::CheckHandle flusher_;
  bool flush_scheduled_ = false;
  uint64_t events_sent_ = 0;
};

}  // namespace edgespool::agent::fleet
