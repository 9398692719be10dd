#include "agent/fleet/dashboard.h"

#include <cassert>

#include "agent/fleet/dashboard_page.h"
#include "agent/fleet/render.h"
#include "agent/protocol/json_writer.h"
#include "platform/json_escape.h"

namespace edgespool::agent::fleet {

namespace {

constexpr const char* kEventsPath = "/events";

std::string Event(std::string_view name, const std::string& data) {
  // data holds no newline (JSON from our writer escapes them), so one
  // data: line carries it.
  std::string out;
  out.reserve(data.size() + name.size() + 16);
  out.append("event: ").append(name).append("\ndata: ").append(data).append("\n\n");
  return out;
}

}  // namespace

Dashboard::Dashboard(platform::Loop& loop, const FleetWatcher* watcher,
                     const platform::Clock& clock, std::string broker)
    : watcher_(watcher), clock_(clock), broker_(std::move(broker)), flusher_(loop) {}

Dashboard::~Dashboard() = default;

Result<std::unique_ptr<Dashboard>> Dashboard::Create(platform::Loop& loop,
                                                     const ListenAddress& address,
                                                     const FleetWatcher* watcher,
                                                     const platform::Clock& clock,
                                                     std::string broker, MetricsRegistry* metrics,
                                                     HttpServerOptions options) {
  std::unique_ptr<Dashboard> d(new Dashboard(loop, watcher, clock, std::move(broker)));
  Dashboard* self = d.get();
  HttpServerHandlers h;
  h.metrics = metrics;
  h.readiness = [watcher] {
    return watcher->connected() ? Readiness{true, "broker connected"}
                                : Readiness{false, "broker not connected"};
  };
  auto page = [](const HttpRequest&) {
    return HttpResponse{200, "text/html; charset=utf-8", std::string(DashboardPage())};
  };
  h.routes["/"] = page;
  h.routes["/index.html"] = page;
  h.routes["/api/fleet"] = [watcher](const HttpRequest&) {
    return HttpResponse{200, "application/json", FleetJson(watcher->model().Ranked())};
  };
  h.event_streams[kEventsPath] = [self] { return self->Snapshot(); };
  auto server = HttpServer::Create(loop, address, std::move(h), options);
  if (!server.ok()) return server.status();
  d->server_ = std::move(*server);
  return d;
}

std::string Dashboard::Snapshot() const {
  std::string nodes = "[";
  bool first = true;
  for (const NodeView* v : watcher_->model().Ranked()) {
    if (!first) nodes.push_back(',');
    first = false;
    nodes += NodeJson(*v);
  }
  nodes.push_back(']');
  std::string data = protocol::JsonObjectWriter()
                         .Int("now_ms", clock_.WallMs())
                         .Int("stale_ms", watcher_->model().options().stale_ms)
                         .Str("broker", broker_)
                         .Bool("connected", watcher_->connected())
                         .Raw("nodes", nodes)
                         .Finish();
  // retry: how soon a dropped EventSource comes back (ms).
  return "retry: 2000\n" + Event("snapshot", data);
}

void Dashboard::OnNodeChanged(const NodeView& view) {
  pending_[view.status.node] = NodeJson(view);
  ScheduleFlush();
}

void Dashboard::OnNodeRemoved(const std::string& node) {
  pending_[node] = "";
  ScheduleFlush();
}

void Dashboard::OnLinkChanged(bool) {
  link_changed_ = true;
  ScheduleFlush();
}

// Coalesces what changed during one loop turn (one TCP read may hold many
// status documents) into one event, written after the turn's I/O: no delay
// is added, and a burst of 1,000 documents costs one write per client.
void Dashboard::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  flusher_.Start([this] { Flush(); });
}

void Dashboard::Flush() {
  flusher_.Stop();
  flush_scheduled_ = false;
  if (server_->stream_clients(kEventsPath) == 0) {
    pending_.clear();
    link_changed_ = false;
    return;
  }
  std::string rows = "[", removed = "[";
  for (const auto& [node, row] : pending_) {
    if (row.empty()) {
      if (removed.size() > 1) removed.push_back(',');
      platform::AppendJsonString(&removed, node);
    } else {
      if (rows.size() > 1) rows.push_back(',');
      rows += row;
    }
  }
  rows.push_back(']');
  removed.push_back(']');
  pending_.clear();
  link_changed_ = false;
  std::string data = protocol::JsonObjectWriter()
                         .Int("now_ms", clock_.WallMs())
                         .Bool("connected", watcher_->connected())
                         .Raw("nodes", rows)
                         .Raw("removed", removed)
                         .Finish();
  server_->Broadcast(kEventsPath, Event("update", data));
  ++events_sent_;
}

}  // namespace edgespool::agent::fleet
