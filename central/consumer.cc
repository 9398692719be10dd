#include "central/consumer.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "platform/log.h"
#include "sync/mqtt/wire.h"

namespace edgespool::central {

namespace {
constexpr uint64_t kTickMs = 50;
}  // namespace

std::string PartitionFilter(const std::string& filter, uint32_t partition) {
  std::string out = filter;
  size_t at;
  while ((at = out.find("{part}")) != std::string::npos) {
    out.replace(at, 6, std::to_string(partition));
  }
  return out;
}

Consumer::Consumer(platform::Loop& loop, ConsumerOptions options, Callback callback)
    : loop_(loop),
      options_(std::move(options)),
      callback_(std::move(callback)),
      tick_timer_(loop),
      settle_timer_(loop) {
  if (options_.keys) cipher_ = std::make_unique<crypto::Cipher>(options_.keys);
}

Consumer::~Consumer() = default;

Result<std::unique_ptr<Consumer>> Consumer::Create(platform::Loop& loop, ConsumerOptions options,
                                                   Callback callback) {
  if (options.partitions == 0 || options.partitions > 100000) {
    return Status::InvalidArgument("partitions must be 1..100000");
  }
  if (options.topics.empty()) return Status::InvalidArgument("no topic to consume");
  for (const std::string& t : options.topics) {
    bool has_part = t.find("{part}") != std::string::npos;
    if (options.partitions > 1 && !has_part) {
      return Status::InvalidArgument("with partitions > 1 every topic needs {part}: " + t);
    }
    if (!sync::mqtt::IsValidTopicFilter(PartitionFilter(t, 0))) {
      return Status::InvalidArgument("not a topic filter: " + t);
    }
  }
  if (!sync::mqtt::IsValidTopicFilter(options.status_topic)) {
    return Status::InvalidArgument("not a topic filter: " + options.status_topic);
  }
  if (options.group.find_first_of("/+#") != std::string::npos) {
    return Status::InvalidArgument("a group name cannot contain / + #");
  }
  if (options.instance.empty()) {
    char host[256] = {};
    (void)::gethostname(host, sizeof host - 1);
    options.instance = std::string(host) + "-" + std::to_string(::getpid());
  }
  if (options.instance.find_first_of("/+#") != std::string::npos) {
    return Status::InvalidArgument("an instance name cannot contain / + #");
  }
  std::unique_ptr<Consumer> c(new Consumer(loop, std::move(options), std::move(callback)));
  if (!c->options_.group.empty()) {
    sync::mqtt::ClientOptions o;
    o.url = c->options_.url;
    o.tls = c->options_.tls;
    o.session.username = c->options_.username;
    o.session.password = c->options_.password;
    o.session.keepalive_s = c->options_.keepalive_s;
    o.session.client_id = c->options_.group + "-member-" + c->options_.instance;
    o.backoff_max_ms = 5000;
    // The last will removes this member (an empty retained message) as soon
    // as the broker sees the connection die.
    sync::mqtt::WillMessage will;
    will.topic = c->MemberTopic(c->options_.instance);
    will.retain = true;
    o.session.will = will;
    o.subscriptions.emplace_back(c->MemberTopic("+"), 1);
    auto client = sync::mqtt::Client::Create(loop, std::move(o), c.get());
    if (!client.ok()) return client.status();
    c->members_client_ = std::move(*client);
  }
  return c;
}

std::string Consumer::MemberTopic(const std::string& instance) const {
  return "edgespool/consume/" + options_.group + "/members/" + instance;
}

void Consumer::Start() {
  assert(loop_.InLoopThread());
  tick_timer_.Start(kTickMs, kTickMs, [this] {
    // A snapshot: a callback may Stop() us, which empties partitions_ (the
    // partitions themselves are deleted on a later turn).
    std::vector<Partition*> live;
    for (auto& [k, p] : partitions_) live.push_back(p.get());
    for (Partition* p : live) p->Advance();
  });
  if (!members_client_) {
    for (uint32_t k = 0; k < options_.partitions; ++k) {
      Status s = OpenPartition(k);
      if (!s.ok()) ES_LOG_ERROR("consume: partition", {{"error", s.ToString()}});
    }
    return;
  }
  members_client_->Start();
}

void Consumer::OnConnected(const sync::mqtt::ConnectInfo&) {
  // The list is rebuilt from the retained memberships that follow the
  // SUBSCRIBE: while we were away members may have left unseen (and our
  // own will has removed us).
  members_.clear();
  sync::mqtt::OutgoingMessage m;
  m.topic = MemberTopic(options_.instance);
  m.payload = "1";
  m.retain = true;
  (void)members_client_->Publish(std::move(m));
}

void Consumer::OnMessage(const sync::mqtt::IncomingMessage& m) {
  std::string_view topic = m.topic;
  std::string prefix = MemberTopic("");
  if (topic.substr(0, prefix.size()) != prefix) return;
  std::string name(topic.substr(prefix.size()));
  bool changed = m.payload.empty() ? members_.erase(name) > 0 : members_.insert(name).second;
  if (changed && !stopping_) {
    ES_LOG_INFO("consume: group members", {{"members", std::to_string(members_.size())},
                                           {"change", (m.payload.empty() ? "-" : "+") + name}});
    Rebalance();
  }
}

bool Consumer::Owns(uint32_t k) const {
  if (!members_client_) return true;
  auto me = members_.find(options_.instance);
  if (me == members_.end()) return false;
  size_t index = static_cast<size_t>(std::distance(members_.begin(), me));
  return k % members_.size() == index;
}

void Consumer::Rebalance() {
  std::vector<uint32_t> release;
  for (const auto& [k, p] : partitions_) {
    if (!Owns(k)) release.push_back(k);
  }
  for (uint32_t k : release) ClosePartition(k);
  settle_timer_.Start(options_.settle_ms, 0, [this] { TakeOwned(); });
}

void Consumer::TakeOwned() {
  if (stopping_) return;
  for (uint32_t k = 0; k < options_.partitions; ++k) {
    if (Owns(k) && partitions_.count(k) == 0) {
      Status s = OpenPartition(k);
      if (!s.ok()) ES_LOG_ERROR("consume: partition", {{"error", s.ToString()}});
    }
  }
}

Status Consumer::OpenPartition(uint32_t k) {
  sync::mqtt::ClientOptions o;
  o.url = options_.url;
  o.tls = options_.tls;
  o.session.username = options_.username;
  o.session.password = options_.password;
  o.session.keepalive_s = options_.keepalive_s;
  o.backoff_max_ms = 5000;
  if (options_.group.empty()) {
    o.session.client_id =
        options_.client_id_prefix + "-" + std::to_string(::getpid()) + "-p" + std::to_string(k);
  } else {
    // The same id whoever runs it: the member taking over resumes the session.
    o.session.client_id = options_.group + "-p" + std::to_string(k);
    o.session.clean_start = false;
    o.session.session_expiry_s = options_.session_expiry_s;
  }
  // The status first: the retained statuses arrive before any message.
  o.subscriptions.emplace_back(options_.status_topic, 1);
  for (const std::string& t : options_.topics) {
    o.subscriptions.emplace_back(PartitionFilter(t, k), 1);
  }
  auto p =
      Partition::Create(loop_, std::move(o), options_.status_topic, options_.ordering, callback_);
  if (!p.ok()) return p.status();
  (*p)->SetFlush(flush_);
  (*p)->SetCipher(cipher_.get());
  (*p)->Start();
  partitions_[k] = std::move(*p);
  ES_LOG_INFO("consume: partition taken", {{"partition", std::to_string(k)}});
  return Status::Ok();
}

void Consumer::ClosePartition(uint32_t k) {
  auto it = partitions_.find(k);
  if (it == partitions_.end()) return;
  const OrderingStats& s = it->second->buffer().stats();
  closed_.delivered += s.released;
  closed_.late += s.late;
  closed_.duplicates += s.duplicates;
  closed_.unordered += s.unordered;
  closed_.forced += s.forced;
  closed_.bad += it->second->stats().bad;
  closed_.undecrypted += it->second->stats().undecrypted;
  Partition* p = it->second.get();
  closing_[p] = std::move(it->second);
  partitions_.erase(it);
  ES_LOG_INFO("consume: partition released", {{"partition", std::to_string(k)}});
  // Owned by closing_ until its DISCONNECT is out (destroying the Consumer
  // first destroys it, and its client, callback and all); then deleted on a
  // later turn, since this callback runs inside its client.
  p->Stop([this, p] {
    auto c = closing_.find(p);
    if (c == closing_.end()) return;
    loop_.DeferDelete(std::move(c->second));
    closing_.erase(c);
    if (stopping_ && closing_.empty() && on_stopped_) loop_.Post(std::move(on_stopped_));
  });
}

void Consumer::Stop(std::function<void()> on_stopped) {
  stopping_ = true;
  tick_timer_.Stop();
  settle_timer_.Stop();
  // Leave the group: closing the connection without a DISCONNECT makes the
  // broker publish the last will, which removes the membership at once.
  members_client_.reset();
  std::vector<uint32_t> all;
  for (const auto& [k, p] : partitions_) all.push_back(k);
  on_stopped_ = std::move(on_stopped);
  for (uint32_t k : all) ClosePartition(k);
  if (closing_.empty() && on_stopped_) loop_.Post(std::move(on_stopped_));
}

ConsumerStats Consumer::stats() const {
  ConsumerStats s = closed_;
  for (const auto& [k, p] : partitions_) {
    const OrderingStats& o = p->buffer().stats();
    s.delivered += o.released;
    s.late += o.late;
    s.duplicates += o.duplicates;
    s.unordered += o.unordered;
    s.forced += o.forced;
    s.bad += p->stats().bad;
    s.undecrypted += p->stats().undecrypted;
    s.buffered += p->buffer().buffered();
  }
  s.partitions_owned = partitions_.size();
  s.members = members_.size();
  return s;
}

std::vector<uint32_t> Consumer::owned() const {
  std::vector<uint32_t> out;
  for (const auto& [k, p] : partitions_) out.push_back(k);
  return out;
}

}  // namespace edgespool::central
