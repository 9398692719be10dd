#include "tests/support/e2e.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <unistd.h>
#include <map>
#include <sstream>
#include <thread>

#include "sync/batch/batch_frame.h"

namespace edgespool::testing {

namespace {

std::string Bin() {
  const char* b = std::getenv("EDGESPOOL_BIN");
  return b ? b : "edgespool";
}

bool WaitFor(const std::function<bool()>& pred, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

// Byte by byte without substr/stoi: the soak decodes millions of lines.
std::string Unhex(const std::string& hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(HexDigit(hex[i]) << 4 | HexDigit(hex[i + 1])));
  }
  return out;
}

// One "topic<TAB>hexpayload" line; false for the probe and malformed lines.
bool ParseSubscriberLine(const std::string& line, Subscriber::Message* m) {
  auto tab = line.find('\t');
  if (tab == std::string::npos) return false;
  m->topic = line.substr(0, tab);
  if (m->topic == "edgespool-test/probe") return false;
  m->payload = Unhex(line.substr(tab + 1));
  return true;
}

}  // namespace

// --- AgentProcess ------------------------------------------------------------

AgentProcess::AgentProcess(std::string dir, std::string broker_url,
                           std::multimap<std::string, std::string> settings)
    : dir_(std::move(dir)) {
  Rewrite(broker_url, settings);
}

void AgentProcess::Rewrite(const std::string& broker_url,
                           const std::multimap<std::string, std::string>& settings) {
  // Sections that are arrays of tables: one [[table]] per setting.
  auto is_array = [](const std::string& section) {
    return section == "route" || section == "subscription" || section == "acl" ||
           section == "rate_limit";
  };
  std::map<std::string, std::vector<std::string>> sections;
  sections["node"].push_back("id = \"test-node\"");
  sections["producer"].push_back("socket = \"" + socket() + "\"");
  sections["store"].push_back("path = \"" + journal() + "\"");
  sections["store"].push_back("durability = \"normal\"");
  sections["uplink"].push_back("url = \"" + broker_url + "\"");
  sections["uplink"].push_back("keepalive = \"5s\"");
  sections["sync"].push_back("backoff_initial = \"100ms\"");
  sections["sync"].push_back("backoff_max = \"1s\"");
  sections["status"].push_back("interval = \"1s\"");
  for (const auto& [section, line] : settings) {
    // A later setting of the same key replaces the default above.
    auto& lines = sections[section];
    if (is_array(section)) {  // one [[table]] per entry
      lines.push_back(line);
      continue;
    }
    std::string key = line.substr(0, line.find('='));
    lines.erase(std::remove_if(lines.begin(), lines.end(),
                               [&](const std::string& l) { return l.substr(0, l.find('=')) == key; }),
                lines.end());
    lines.push_back(line);
  }
  std::ostringstream out;
  for (const auto& [section, lines] : sections) {
    if (is_array(section)) continue;
    out << "[" << section << "]\n";
    for (const auto& l : lines) out << l << "\n";
  }
  for (const char* table : {"route", "subscription", "acl", "rate_limit"}) {
    if (!sections.count(table)) continue;
    for (const auto& l : sections[table]) out << "[[" << table << "]]\n" << l << "\n";
  }
  WriteFile(config_path(), out.str());
}

AgentProcess::~AgentProcess() {
  if (process_.running()) Kill();
}

bool AgentProcess::Start() {
  ++starts_;
  std::string path = socket();
  ::unlink(path.c_str());
  std::vector<std::string> argv = prefix_;
  argv.insert(argv.end(), {Bin(), "run", "--config", config_path()});
  if (!process_.Start(argv, dir_ + "/agent.log")) return false;
  return WaitFor(
      [&] {
        if (!process_.running()) return true;
        return ReadFile(dir_ + "/agent.log").find("edgespool running") != std::string::npos;
      },
      20000) &&
         process_.running();
}

int AgentProcess::Stop() {
  process_.Signal(SIGTERM);
  return process_.Wait(30000);
}

void AgentProcess::Signal(int sig) { process_.Signal(sig); }

void AgentProcess::Kill() {
  process_.Signal(SIGKILL);
  process_.Wait(10000);
}

std::string AgentProcess::log() const { return ReadFile(dir_ + "/agent.log"); }

// --- Subscriber --------------------------------------------------------------

Subscriber::Subscriber(std::string dir, uint16_t port, std::string topic, std::string client_id)
    : dir_(std::move(dir)), topic_(std::move(topic)), client_id_(std::move(client_id)), port_(port) {}

Subscriber::~Subscriber() { Stop(); }

bool Subscriber::Start() {
  std::string out = dir_ + "/sub-" + client_id_ + ".out";
  // -c: persistent session (clean session off) so a broker restart loses
  // nothing queued for us; -F: one line per message, payload as hex.
  if (!process_.Start({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port_), "-t",
                       topic_, "-t", "edgespool-test/probe", "-q", "1", "-c", "-i", client_id_,
                       "-F", "%t\t%x"},
                      out)) {
    return false;
  }
  // Subscribed once a probe published after it arrives.
  return WaitFor(
      [&] {
        std::string cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(port_) +
                          " -q 1 -t edgespool-test/probe -m probe >/dev/null 2>&1";
        if (std::system(cmd.c_str()) != 0) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return ReadFile(out).find("edgespool-test/probe") != std::string::npos;
      },
      10000);
}

void Subscriber::Stop() {
  if (!process_.running()) return;
  process_.Signal(SIGTERM);
  process_.Wait(5000);
}

std::vector<Subscriber::Message> Subscriber::Read() const {
  std::vector<Message> msgs;
  std::ifstream in(dir_ + "/sub-" + client_id_ + ".out");
  std::string line;
  Message m;
  while (std::getline(in, line)) {
    if (ParseSubscriberLine(line, &m)) msgs.push_back(std::move(m));
  }
  return msgs;
}

std::vector<Subscriber::Message> Subscriber::ReadNew(uint64_t* offset) const {
  std::vector<Message> msgs;
  std::ifstream in(dir_ + "/sub-" + client_id_ + ".out", std::ios::binary);
  if (!in) return msgs;
  in.seekg(static_cast<std::streamoff>(*offset));
  std::string line;
  Message m;
  // A line without its newline is still being written: leave it for later.
  while (std::getline(in, line) && !in.eof()) {
    *offset += line.size() + 1;
    if (ParseSubscriberLine(line, &m)) msgs.push_back(std::move(m));
  }
  return msgs;
}

size_t Subscriber::Count() const { return Read().size(); }

// --- QueueChecker ------------------------------------------------------------

std::string QueueChecker::Counts::ToString() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "acked=%zu delivered=%zu lost=%zu unexpected=%zu duplicated=%zu recovered=%zu "
                "reordered=%zu",
                acked, delivered, lost, unexpected, duplicated, recovered, reordered);
  return buf;
}

QueueChecker::Counts QueueChecker::Check(bool check_order) const {
  Counts c;
  c.acked = acked_.size();
  c.delivered = delivered_.size();
  std::map<std::string, int> seen;
  for (const auto& d : delivered_) ++seen[d.id];
  for (const auto& id : acked_) {
    if (!seen.count(id)) ++c.lost;
  }
  for (const auto& [id, n] : seen) {
    if (n > 1) c.duplicated += static_cast<size_t>(n - 1);
    if (!acked_.count(id)) {
      if (unacked_.count(id)) {
        ++c.recovered;
      } else {
        ++c.unexpected;
      }
    }
  }
  if (check_order) {
    // First deliveries only: a resend after a reconnect is a duplicate, not
    // a reordering.
    std::map<std::string, int64_t> last_ts;
    std::set<std::string> first;
    for (const auto& d : delivered_) {
      if (!first.insert(d.id).second) continue;
      auto it = last_ts.find(d.topic);
      if (it != last_ts.end() && d.ts < it->second) ++c.reordered;
      last_ts[d.topic] = std::max(d.ts, it == last_ts.end() ? d.ts : it->second);
    }
  }
  return c;
}

std::string TelemetryPayload(const std::string& id, int64_t ts, int i) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "{\"id\":\"%s\",\"ts\":%lld,\"sensor\":\"press-%d\",\"temp_c\":%d.%d,"
                "\"vib_mm_s\":%d.%03d,\"status\":\"ok\"}",
                id.c_str(), static_cast<long long>(ts), i % 16, 20 + i % 7, i % 10, i % 3,
                (i * 37) % 1000);
  return buf;
}

bool ParseTelemetry(const std::string& payload, std::string* id, int64_t* ts) {
  auto a = payload.find("{\"id\":\"");
  if (a != 0) return false;
  auto b = payload.find('"', 7);
  auto t = payload.find("\"ts\":", b);
  if (b == std::string::npos || t == std::string::npos) return false;
  *id = payload.substr(7, b - 7);
  *ts = std::stoll(payload.substr(t + 5));
  return true;
}

std::vector<Delivered> ToDeliveries(const std::vector<Subscriber::Message>& msgs) {
  std::vector<Delivered> out;
  for (const auto& m : msgs) {
    if (m.topic.size() >= 6 && m.topic.compare(m.topic.size() - 6, 6, "/batch") == 0) {
      auto frame = batch::DecodeFrame(m.payload);
      if (!frame.ok()) continue;
      for (const auto& r : frame->records) {
        Delivered d;
        if (!ParseTelemetry(r.payload, &d.id, &d.ts)) d.id = "undecodable:" + r.payload;
        d.topic = r.topic;
        d.seq = r.seq;
        out.push_back(d);
      }
      continue;
    }
    Delivered d;
    if (!ParseTelemetry(m.payload, &d.id, &d.ts)) continue;  // e.g. the status topic
    d.topic = m.topic;
    out.push_back(d);
  }
  return out;
}

}  // namespace edgespool::testing
