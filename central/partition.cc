#include "central/partition.h"

#include <algorithm>
#include <utility>

#include "central/uplink_parse.h"
#include "platform/log.h"
#include "sync/batch/batch_frame.h"

namespace edgespool::central {

bool TopicMatches(std::string_view filter, std::string_view topic) {
  // [MQTT-4.7.2-1]: wildcards at the first level do not match $ topics.
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#')) {
    return false;
  }
  size_t f = 0, t = 0;
  while (true) {
    size_t fe = filter.find('/', f), te = topic.find('/', t);
    std::string_view fl = filter.substr(f, fe == std::string_view::npos ? fe : fe - f);
    if (fl == "#") return true;
    if (t > topic.size()) return false;
    std::string_view tl = topic.substr(t, te == std::string_view::npos ? te : te - t);
    if (fl != "+" && fl != tl) return false;
    bool f_end = fe == std::string_view::npos, t_end = te == std::string_view::npos;
    if (f_end || t_end) {
      // "a/#" matches "a" too.
      if (t_end && !f_end) return filter.substr(fe + 1) == "#";
      return f_end && t_end;
    }
    f = fe + 1;
    t = te + 1;
  }
}

Partition::Partition(platform::Loop& loop, std::string status_filter, OrderingOptions ordering,
                     Callback callback)
    : loop_(loop),
      status_filter_(std::move(status_filter)),
      buffer_(ordering),
      callback_(std::move(callback)) {}

Partition::~Partition() = default;

Result<std::unique_ptr<Partition>> Partition::Create(platform::Loop& loop,
                                                     sync::mqtt::ClientOptions options,
                                                     std::string status_filter,
                                                     OrderingOptions ordering, Callback callback) {
  std::unique_ptr<Partition> p(
      new Partition(loop, std::move(status_filter), ordering, std::move(callback)));
  options.session.manual_acks = true;
  p->persistent_ = !options.session.clean_start;
  // Everything buffered waits unacked; the broker's own queue is the bound.
  options.session.receive_maximum = 65535;
  options.session.strict_receive_maximum = false;
  auto client = sync::mqtt::Client::Create(loop, std::move(options), p.get());
  if (!client.ok()) return client.status();
  p->client_ = std::move(*client);
  return p;
}

void Partition::Start() { client_->Start(); }

void Partition::Stop(std::function<void()> on_stopped) { client_->Stop(std::move(on_stopped)); }

void Partition::OnDisconnected(const Status& why) {
  // The broker sends every unacked PUBLISH again (on our next connection,
  // or to whoever resumes the session): what is buffered of them is dropped
  // and forgotten, so that it counts as new then. What was handed out
  // already comes as a duplicate, dropped and acked. The old connection's
  // ack tokens are void.
  // A clean session gets nothing again: keep what is buffered then.
  if (persistent_) buffer_.DropBuffered();
  pending_.clear();
}

void Partition::OnStatusMessage(const sync::mqtt::IncomingMessage& m) {
  ++stats_.statuses;
  if (!m.payload.empty()) {  // an empty retained message: a node removed
    auto s = ParseNodeStatus(m.payload);
    if (s.ok()) {
      WatermarkFollow follow;
      follow.lag_ms = s->follow_lag_ms;
      follow.for_ms = s->follow_for_ms;
      // How long the broker kept it (a retained copy, a queued one): the
      // expiry it went out with less what is left, to the second, so one
      // second less to be safe. Unknown (MQTT 3.1.1): taken as new, which
      // only holds the others back longer until the node's next status.
      if (s->follow_expiry_s > 0 && m.properties && m.properties->message_expiry_s) {
        int64_t left = *m.properties->message_expiry_s;
        follow.age_ms = std::max<int64_t>(0, (s->follow_expiry_s - left - 1) * 1000);
      }
      buffer_.OnStatus(s->node, s->online, s->watermark_ms, static_cast<int64_t>(loop_.NowMs()),
                       follow);
    } else {
      ++stats_.bad;
    }
  }
  if (m.ack_token) (void)client_->AckIncoming(m.ack_token);
}

void Partition::OnMessage(const sync::mqtt::IncomingMessage& m) {
  if (TopicMatches(status_filter_, m.topic)) {
    OnStatusMessage(m);
    Advance();
    return;
  }
  ++stats_.publishes;
  scratch_.clear();
  bool has_seq = false;
  if (m.properties) {
    for (const auto& p : m.properties->user_properties) has_seq |= p.key == "es-seq";
  }
  Status s;
  if (!has_seq && batch::LooksLikeFrame(m.payload)) {
    s = MessagesFromFrame(m.payload, &scratch_);
  } else {
    auto msg = MessageFromPublish(m.topic, m.payload, m.properties);
    if (msg.ok()) {
      scratch_.push_back(std::move(*msg));
    } else {
      s = msg.status();
    }
  }
  if (!s.ok()) {
    ++stats_.bad;
    ES_LOG_WARN("consume: undecodable message",
                {{"topic", std::string(m.topic)}, {"error", s.ToString()}});
    if (m.ack_token) (void)client_->AckIncoming(m.ack_token);
    return;
  }
  uint64_t tag = next_tag_++;
  pending_[tag] = Pending{m.ack_token, scratch_.size()};
  int64_t now = static_cast<int64_t>(loop_.NowMs());
  size_t dropped = 0;
  for (Message& msg : scratch_) {
    msg.tag = tag;
    if (msg.sealed && !OpenSealed(cipher_, &msg)) {
      // Handed out all the same, sealed and marked: a key missing here is
      // the operator's to fix, and dropping would lose the message.
      ++stats_.undecrypted;
      ES_LOG_WARN(
          "consume: cannot decrypt",
          {{"node", msg.node}, {"seq", std::to_string(msg.seq)}, {"error", msg.decrypt_error}});
    }
    if (!buffer_.Add(std::move(msg), now, &out_)) ++dropped;
  }
  auto it = pending_.find(tag);
  it->second.left -= dropped;
  if (it->second.left == 0) Done(tag);
  buffer_.Advance(now, &out_);
  Deliver();
}

void Partition::Advance() {
  buffer_.Advance(static_cast<int64_t>(loop_.NowMs()), &out_);
  Deliver();
}

void Partition::Deliver() {
  if (out_.empty()) return;
  for (const Message& m : out_) callback_(m);
  // Acks only after the batch is out of the process (a kill in between
  // means the broker sends it again: a duplicate, never a loss).
  if (flush_) flush_();
  for (const Message& m : out_) {
    auto it = pending_.find(m.tag);
    if (it != pending_.end() && --it->second.left == 0) Done(m.tag);
  }
  out_.clear();
}

void Partition::Done(uint64_t tag) {
  auto it = pending_.find(tag);
  if (it == pending_.end()) return;
  if (it->second.ack_token) (void)client_->AckIncoming(it->second.ack_token);
  pending_.erase(it);
}

}  // namespace edgespool::central
