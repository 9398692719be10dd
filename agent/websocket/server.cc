#include "agent/websocket/server.h"

#include <libwebsockets.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "agent/websocket/page.h"
#include "agent/websocket/session.h"
#include "agent/websocket/session_message.h"
#include "platform/clock.h"
#include "platform/log.h"

namespace edgespool::agent::websocket {

namespace {

constexpr char kProtocolName[] = "edgespool.v1";
constexpr char kBearerPrefix[] = "bearer.";
// Frames written per writable callback: a session with a deep queue yields
// the loop to the others between batches.
constexpr int kFramesPerWritable = 64;
// The libwebsockets rx buffer, allocated per connection: session messages
// are small (acks, a subscribe), and a larger one arrives in several
// callbacks anyway. Measured with 1,000 idle sessions: 4 KiB cost 7.0 KiB
// of agent RSS per session, 1 KiB 4.2 KiB (websocket_bench).
constexpr size_t kRxBufferBytes = 1024;
constexpr int64_t kAuthTimeoutMs = 10000;
constexpr auto kWriteClose = static_cast<enum lws_write_protocol>(4);
// Resumable uplink: rows per journal read (all topics: the filter applies
// here), and how often acked positions are saved.
constexpr size_t kUplinkReadRows = 256;
constexpr size_t kUplinkReadBytes = 1u << 20;
constexpr int64_t kCursorPersistMs = 1000;

void LogFromLws(int level, const char* line) {
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (level & LLL_ERR) {
    ES_LOG_ERROR("libwebsockets", {{"detail", text}});
  } else {
    ES_LOG_WARN("libwebsockets", {{"detail", text}});
  }
}

std::string Header(struct lws* wsi, enum lws_token_indexes token) {
  int len = lws_hdr_total_length(wsi, token);
  if (len <= 0) return {};
  std::string out(static_cast<size_t>(len) + 1, '\0');
  int n = lws_hdr_copy(wsi, out.data(), len + 1, token);
  if (n < 0) return {};
  out.resize(static_cast<size_t>(n));
  return out;
}

// Constant time in the token's length: the comparison does not tell a
// remote client how much of its guess was right.
bool SameToken(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The token offered as "bearer.<token>" among the subprotocols, if any.
bool BearerFromProtocols(std::string_view header, std::string* token) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = Trim(header.substr(0, comma));
    if (item.substr(0, sizeof(kBearerPrefix) - 1) == kBearerPrefix) {
      *token = std::string(item.substr(sizeof(kBearerPrefix) - 1));
      return true;
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

downlink::From ToHubFrom(FromKind f) {
  switch (f) {
    case FromKind::kNew:
      return downlink::From::kNew;
    case FromKind::kOldest:
      return downlink::From::kOldest;
    case FromKind::kSeq:
      return downlink::From::kSeq;
    case FromKind::kDefault:
      return downlink::From::kDefault;
  }
  return downlink::From::kDefault;
}

}  // namespace

// What the library keeps pointers to until the very end of its destruction,
// which with a foreign loop finishes on later loop turns, after ~Impl: the
// protocol table, and the way back to the server, cleared by ~Impl so that a
// late callback finds nobody. Plain C memory, because the library frees it
// itself once it is done (external_baggage_free_on_destroy).
struct Baggage {
  struct lws_protocols protocols[2];
  WebSocketServer::Impl* impl;
};

class WebSocketServer::Impl {
 public:
  Impl(platform::Loop& loop, WebSocketOptions options, WebSocketHooks hooks)
      : loop_(loop),
        options_(std::move(options)),
        hooks_(std::move(hooks)),
        clock_(platform::SystemClock::Get()),
        sweep_timer_(loop),
        status_timer_(loop),
        close_timer_(loop),
        persist_timer_(loop) {}
  ~Impl();

  Status Start();
  uint16_t port() const { return port_; }
  bool WantsUplink(std::string_view topic) const;
  void OnUplinkStored(uint64_t seq, const store::Message& m);
  void OnUplinkUntapped(uint64_t seq, std::string_view topic);
  void CloseAll(int64_t timeout_ms, std::function<void()> done);
  WebSocketStats Stats() const;
  void FinishClose();

  static int Callback(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                      size_t len);

 private:
  struct Conn {
    std::unique_ptr<Session> session;
    struct lws* wsi = nullptr;
  };

  int OnEvent(struct lws* wsi, enum lws_callback_reasons reason, void* in, size_t len);
  int ServePage(struct lws* wsi, const char* path);
  int WritePage(struct lws* wsi);
  void Admit(struct lws* wsi);
  int OnReceive(struct lws* wsi, Session& s, const char* data, size_t len);
  int OnMessage(struct lws* wsi, Session& s);
  void Subscribe(Session& s, ClientMessage m);
  void SubscribeRest(Session& s, ClientMessage m, uint64_t head);
  void Unsubscribe(Session& s, bool end);
  // The resumable uplink (uplink_cursor.h).
  void AttachCursor(Session& s, const ClientMessage& m, uint64_t head, bool* resumed);
  void DetachCursor(Session& s, bool end);
  void SaveCursor(Session& s);
  void PumpUplink(Session& s);
  void PersistCursors();
  Session* Find(uint64_t id) {
    auto it = conns_.find(id);
    return it == conns_.end() ? nullptr : it->second.session.get();
  }
  int OnWritable(struct lws* wsi, Session& s);
  // Closes at once with code (the frames still queued are not sent).
  int CloseNow(struct lws* wsi, uint16_t code, std::string_view reason);
  // Closes on the next writable callback (from outside a callback of wsi).
  void CloseLater(Session& s, uint16_t code, std::string reason);
  void Reply(Session& s, std::string frame);
  void Forget(struct lws* wsi);
  void Sweep();
  void PushStatus();
  int64_t MonoMs() const { return clock_.MonotonicNs() / 1000000; }
  Session* SessionOf(struct lws* wsi) const {
    return static_cast<Session*>(lws_get_opaque_user_data(wsi));
  }

  platform::Loop& loop_;
  WebSocketOptions options_;
  WebSocketHooks hooks_;
  const platform::Clock& clock_;
  struct lws_context* context_ = nullptr;
  Baggage* baggage_ = nullptr;  // owned by the context once it exists
  uint16_t port_ = 0;
  std::unordered_map<uint64_t, Conn> conns_;
  uint64_t next_id_ = 1;
  size_t admitted_ = 0;      // sessions not refused at admission
  size_t uplink_users_ = 0;  // sessions with uplink filters
  bool closing_ = false;
  std::function<void()> close_done_;
  std::vector<unsigned char> scratch_;  // LWS_PRE + one frame, for lws_write
  platform::TimerHandle sweep_timer_;
  platform::TimerHandle status_timer_;
  platform::TimerHandle close_timer_;
  platform::TimerHandle persist_timer_;
  WebSocketStats stats_;
  // Resumable uplink cursors: the persisted ones by session name (loaded
  // from the journal once, then kept here: this map is what a reconnect
  // reads), which session holds each, and the largest seq the tap offered.
  struct SavedCursor {
    uint64_t position = 0;
    uint64_t missed = 0;
  };
  std::unordered_map<std::string, SavedCursor> saved_cursors_;
  std::unordered_map<std::string, uint64_t> cursor_owner_;
  bool cursors_loaded_ = false;
  uint64_t tap_head_ = 0;
  uint64_t cursor_serial_ = 0;
  // Journal callbacks may outlive the server: they hold this weakly.
  std::shared_ptr<Impl*> self_ = std::make_shared<Impl*>(this);
};

// --- Start and stop -------------------------------------------------------------

Status WebSocketServer::Impl::Start() {
  lws_set_log_level(LLL_ERR | LLL_WARN, &LogFromLws);
  baggage_ = static_cast<Baggage*>(std::calloc(1, sizeof(Baggage)));
  if (!baggage_) return Status::ResourceExhausted("websocket: out of memory");
  baggage_->impl = this;
  baggage_->protocols[0].name = kProtocolName;
  baggage_->protocols[0].callback = &Impl::Callback;
  baggage_->protocols[0].rx_buffer_size = kRxBufferBytes;
  struct lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = options_.port;
  bool any = options_.host == "0.0.0.0" || options_.host == "::";
  info.iface = any ? nullptr : options_.host.c_str();
  info.protocols = baggage_->protocols;
  info.user = baggage_;
  info.external_baggage_free_on_destroy = baggage_;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                 LWS_SERVER_OPTION_VALIDATE_UTF8;
  if (options_.host.find(':') == std::string::npos) {
    info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  }
  void* loops[1] = {loop_.raw()};
  info.foreign_loops = loops;
  // Handshakes and HTTP requests that do not complete in this time are cut.
  info.timeout_secs = 10;
  context_ = lws_create_context(&info);
  if (!context_) {
    std::free(baggage_);
    baggage_ = nullptr;
    return Status::Unavailable(
        "websocket.listen " + options_.host + ":" + std::to_string(options_.port) +
        ": libwebsockets could not start (address in use, or its libuv plugin, package "
        "libwebsockets-evlib-uv, missing; see the log)");
  }
  struct lws_vhost* vh = lws_get_vhost_by_name(context_, "default");
  int port = vh ? lws_get_vhost_listen_port(vh) : -1;
  if (port <= 0) return Status::Unavailable("websocket.listen: no listening socket");
  port_ = static_cast<uint16_t>(port);
  int64_t sweep_ms = std::clamp<int64_t>(options_.idle_timeout_ms / 4, 20, 1000);
  sweep_timer_.Start(static_cast<uint64_t>(sweep_ms), static_cast<uint64_t>(sweep_ms),
                     [this] { Sweep(); });
  sweep_timer_.Unref();
  status_timer_.Start(static_cast<uint64_t>(options_.status_interval_ms),
                      static_cast<uint64_t>(options_.status_interval_ms), [this] { PushStatus(); });
  status_timer_.Unref();
  persist_timer_.Start(kCursorPersistMs, kCursorPersistMs, [this] { PersistCursors(); });
  persist_timer_.Unref();
  return Status::Ok();
}

WebSocketServer::Impl::~Impl() {
  self_.reset();
  for (auto& [id, c] : conns_) {
    if (hooks_.hub) hooks_.hub->DetachAll(c.session.get());
    if (c.wsi) lws_set_opaque_user_data(c.wsi, nullptr);
  }
  if (baggage_) baggage_->impl = nullptr;
  // With a foreign loop the library closes its handles on the loop; the
  // Loop's destructor (or the agent's remaining run) completes that.
  if (context_) lws_context_destroy(context_);
}

void WebSocketServer::Impl::CloseAll(int64_t timeout_ms, std::function<void()> done) {
  closing_ = true;
  close_done_ = std::move(done);
  for (auto& [id, c] : conns_) {
    Session& s = *c.session;
    if (hooks_.hub) hooks_.hub->DetachAll(&s);
    s.hub_name.clear();
    DetachCursor(s, /*end=*/false);
    if (c.wsi && s.established) CloseLater(s, kCloseGoingAway, "agent stopping");
  }
  if (admitted_ == 0) return FinishClose();
  close_timer_.Start(static_cast<uint64_t>(timeout_ms), 0, [this] { FinishClose(); });
}

void WebSocketServer::Impl::FinishClose() {
  close_timer_.Stop();
  if (auto d = std::move(close_done_)) {
    close_done_ = nullptr;
    d();
  }
}

// --- The library's callback ---------------------------------------------------------

int WebSocketServer::Impl::Callback(struct lws* wsi, enum lws_callback_reasons reason, void* user,
                                    void* in, size_t len) {
  struct lws_context* ctx = lws_get_context(wsi);
  auto* baggage = ctx ? static_cast<Baggage*>(lws_context_user(ctx)) : nullptr;
  if (!baggage || !baggage->impl) return 0;  // the server is gone: only closing is left
  return baggage->impl->OnEvent(wsi, reason, in, len);
}

int WebSocketServer::Impl::OnEvent(struct lws* wsi, enum lws_callback_reasons reason, void* in,
                                   size_t len) {
  assert(loop_.InLoopThread());
  switch (reason) {
    case LWS_CALLBACK_HTTP:
      return ServePage(wsi, static_cast<const char*>(in));
    case LWS_CALLBACK_HTTP_WRITEABLE:
      return WritePage(wsi);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
      Admit(wsi);
      return 0;
    case LWS_CALLBACK_ESTABLISHED: {
      Session* s = SessionOf(wsi);
      if (!s) return -1;
      s->established = true;
      s->last_rx_ms = MonoMs();
      if (s->close_code) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
      Session* s = SessionOf(wsi);
      if (!s) return -1;
      return OnReceive(wsi, *s, static_cast<const char*>(in), len);
    }
    case LWS_CALLBACK_RECEIVE_PONG: {
      if (Session* s = SessionOf(wsi)) {
        s->last_rx_ms = MonoMs();
        s->ping_sent = false;
      }
      return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      Session* s = SessionOf(wsi);
      if (!s) return -1;
      return OnWritable(wsi, *s);
    }
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
      Forget(wsi);
      return 0;
    default:
      return 0;
  }
}

// --- The page ---------------------------------------------------------------------------

int WebSocketServer::Impl::ServePage(struct lws* wsi, const char* path) {
  std::string_view p = path ? path : "";
  if (p != "/" && p != "/index.html") {
    lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, "not found");
    return lws_http_transaction_completed(wsi) ? -1 : 0;
  }
  std::string_view page = PageHtml();
  unsigned char head[LWS_PRE + 1024];
  unsigned char* start = head + LWS_PRE;
  unsigned char* pos = start;
  unsigned char* end = head + sizeof(head) - 1;
  if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/html; charset=utf-8", page.size(),
                                  &pos, end)) {
    return 1;
  }
  static const char kNoStore[] = "no-store";
  static const char kNoSniff[] = "nosniff";
  // The page loads nothing from elsewhere; its socket is on this origin.
  static const char kCsp[] =
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
      "connect-src 'self'";
  if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>("cache-control:"),
                                  reinterpret_cast<const unsigned char*>(kNoStore),
                                  sizeof(kNoStore) - 1, &pos, end) ||
      lws_add_http_header_by_name(
          wsi, reinterpret_cast<const unsigned char*>("x-content-type-options:"),
          reinterpret_cast<const unsigned char*>(kNoSniff), sizeof(kNoSniff) - 1, &pos, end) ||
      lws_add_http_header_by_name(
          wsi, reinterpret_cast<const unsigned char*>("content-security-policy:"),
          reinterpret_cast<const unsigned char*>(kCsp), sizeof(kCsp) - 1, &pos, end)) {
    return 1;
  }
  if (lws_finalize_write_http_header(wsi, start, &pos, end)) return 1;
  ++stats_.pages_served;
  lws_callback_on_writable(wsi);
  return 0;
}

int WebSocketServer::Impl::WritePage(struct lws* wsi) {
  std::string_view page = PageHtml();
  scratch_.resize(LWS_PRE + page.size());
  std::memcpy(scratch_.data() + LWS_PRE, page.data(), page.size());
  if (lws_write(wsi, scratch_.data() + LWS_PRE, page.size(), LWS_WRITE_HTTP_FINAL) !=
      static_cast<int>(page.size())) {
    return 1;
  }
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

// --- Admission ---------------------------------------------------------------------------

void WebSocketServer::Impl::Admit(struct lws* wsi) {
  auto session = std::make_unique<Session>(
      next_id_++, SessionLimits{options_.max_uplink_messages, options_.max_uplink_bytes});
  Session& s = *session;
  s.opened_ms = MonoMs();
  s.last_rx_ms = s.opened_ms;
  s.authenticated = options_.token.empty();
  s.wake = [wsi] { lws_callback_on_writable(wsi); };
  std::string origin = Header(wsi, WSI_TOKEN_ORIGIN);
  std::string host = Header(wsi, WSI_TOKEN_HOST);
  std::string protocols = Header(wsi, WSI_TOKEN_PROTOCOL);
  std::string token;
  bool origin_ok = origin.empty() || origin == "http://" + host || origin == "https://" + host;
  for (const std::string& allowed : options_.allowed_origins) {
    origin_ok = origin_ok || allowed == "*" || allowed == origin;
  }
  if (closing_) {
    s.close_code = kCloseGoingAway;
    s.close_reason = "agent stopping";
  } else if (admitted_ >= options_.max_sessions) {
    s.close_code = kCloseTooMany;
    s.close_reason = "too many sessions";
    ++stats_.refused_too_many;
  } else if (!origin_ok) {
    s.close_code = kCloseOriginRefused;
    s.close_reason = "origin not allowed";
    ++stats_.refused_origin;
    ES_LOG_WARN("websocket origin refused", {{"origin", origin}});
  } else if (BearerFromProtocols(protocols, &token)) {
    if (!options_.token.empty() && !SameToken(token, options_.token)) {
      s.close_code = kCloseUnauthorized;
      s.close_reason = "unauthorized";
      ++stats_.refused_unauthorized;
    } else {
      s.authenticated = true;
    }
  }
  if (!s.close_code) {
    s.admitted = true;
    ++admitted_;
    ++stats_.sessions_total;
  }
  lws_set_opaque_user_data(wsi, &s);
  conns_[s.id()] = Conn{std::move(session), wsi};
}

void WebSocketServer::Impl::Forget(struct lws* wsi) {
  Session* s = SessionOf(wsi);
  if (!s) return;
  lws_set_opaque_user_data(wsi, nullptr);
  if (hooks_.hub) hooks_.hub->DetachAll(s);
  DetachCursor(*s, /*end=*/false);
  if (!s->uplink_filters.empty()) --uplink_users_;
  stats_.downlink_delivered += s->downlink_delivered;
  stats_.uplink_delivered += s->uplink_delivered;
  stats_.uplink_dropped += s->uplink_dropped;
  bool was_admitted = s->admitted;
  conns_.erase(s->id());
  if (was_admitted) --admitted_;
  if (closing_ && admitted_ == 0 && close_done_) {
    // On a later turn, not inside the library's callback; a timer of ours,
    // so nothing runs if the server is gone by then.
    close_timer_.Start(0, 0, [this] { FinishClose(); });
  }
}

// --- Receiving -----------------------------------------------------------------------------

int WebSocketServer::Impl::OnReceive(struct lws* wsi, Session& s, const char* data, size_t len) {
  s.last_rx_ms = MonoMs();
  s.ping_sent = false;
  if (s.close_code) return 0;  // closing: what it still sends is ignored
  if (lws_is_first_fragment(wsi)) {
    s.partial.clear();
    s.partial_binary = lws_frame_is_binary(wsi) != 0;
  }
  if (s.partial_binary) {
    ++stats_.closed_bad_message;
    return CloseNow(wsi, kCloseUnsupported, "binary frames are not session messages");
  }
  size_t remaining = lws_remaining_packet_payload(wsi);
  if (s.partial.size() + len + remaining > options_.max_frame_bytes) {
    ++stats_.closed_bad_message;
    return CloseNow(wsi, kCloseTooBig, "message over max_frame_bytes");
  }
  s.partial.append(data, len);
  if (!lws_is_final_fragment(wsi) || remaining > 0) return 0;
  int rc = OnMessage(wsi, s);
  s.partial.clear();
  if (s.partial.capacity() > kRxBufferBytes) s.partial.shrink_to_fit();
  return rc;
}

int WebSocketServer::Impl::OnMessage(struct lws* wsi, Session& s) {
  ClientMessage m;
  std::string error;
  ParseOutcome parsed = ParseClientMessage(s.partial, &m, &error);
  if (parsed == ParseOutcome::kGarbage) {
    ++stats_.closed_bad_message;
    return CloseNow(wsi, kCloseBadMessage, error);
  }
  if (!s.authenticated) {
    if (parsed != ParseOutcome::kOk) m.type = ClientType::kSubscribe;  // not an auth
    if (m.type != ClientType::kAuth || !SameToken(m.token, options_.token)) {
      ++stats_.refused_unauthorized;
      return CloseNow(wsi, kCloseUnauthorized, "unauthorized");
    }
    s.authenticated = true;
    return 0;
  }
  if (parsed == ParseOutcome::kBadRequest) {
    Reply(s, RenderError("bad_request", error));
    return 0;
  }
  switch (m.type) {
    case ClientType::kAuth:
      return 0;  // already authenticated
    case ClientType::kSubscribe:
      Subscribe(s, std::move(m));
      return 0;
    case ClientType::kAck: {
      if (m.ack_uplink) {
        if (!s.uplink_cursor) {
          Reply(s, RenderError("bad_request", "no resumable uplink on this connection"));
          return 0;
        }
        Status st = s.uplink_cursor->Ack(m.seq, m.cumulative);
        if (!st.ok()) Reply(s, RenderError("bad_request", st.message()));
        PumpUplink(s);
        return 0;
      }
      if (s.hub_name.empty() || !hooks_.hub) {
        Reply(s, RenderError("bad_request", "no downlink subscription on this connection"));
        return 0;
      }
      Status st = hooks_.hub->Ack(&s, s.hub_name, m.seq, m.cumulative);
      if (!st.ok()) Reply(s, RenderError("bad_request", st.message()));
      return 0;
    }
    case ClientType::kUnsubscribe:
      Unsubscribe(s, m.end);
      Reply(s, RenderUnsubscribed());
      return 0;
  }
  return 0;
}

void WebSocketServer::Impl::Unsubscribe(Session& s, bool end) {
  if (!s.hub_name.empty() && hooks_.hub) {
    (void)hooks_.hub->Unsubscribe(&s, s.hub_name, end || s.anonymous);
  }
  s.hub_name.clear();
  DetachCursor(s, end);
  if (!s.uplink_filters.empty()) --uplink_users_;
  s.uplink_filters.clear();
  s.wants_status = false;
}

void WebSocketServer::Impl::Subscribe(Session& s, ClientMessage m) {
  if (!m.filters.empty() && !hooks_.hub) {
    Reply(s, RenderError("bad_request", "the downlink is off"));
    return;
  }
  bool resumable = !m.session.empty() && !m.uplink.empty();
  if (resumable && !hooks_.journal) {
    Reply(s, RenderError("bad_request", "no journal for a resumable uplink"));
    return;
  }
  if (!resumable) return SubscribeRest(s, std::move(m), 0);
  auto owner = cursor_owner_.find(m.session);
  if (owner != cursor_owner_.end() && owner->second != s.id()) {
    Reply(s, RenderError("busy",
                         "uplink session " + m.session + " is attached to another connection"));
    return;
  }
  // Two reads before the subscription stands, both on the store thread:
  // the persisted cursors (once), and the journal's head, where "new"
  // starts. The session may be gone when they return: looked up by id.
  std::weak_ptr<Impl*> w = self_;
  if (!cursors_loaded_) {
    hooks_.journal->LoadConsumerSessions(
        [w, id = s.id(), m](Result<std::vector<store::ConsumerSessionRecord>> res) mutable {
          auto p = w.lock();
          if (!p) return;
          Impl* self = *p;
          if (!self->cursors_loaded_) {
            if (!res.ok()) {
              ES_LOG_ERROR("websocket uplink cursors could not be loaded",
                           {{"error", res.status().ToString()}});
            } else {
              for (const store::ConsumerSessionRecord& r : *res) {
                if (r.name.compare(0, kUplinkCursorPrefix.size(), kUplinkCursorPrefix) != 0) {
                  continue;
                }
                self->saved_cursors_[r.name.substr(kUplinkCursorPrefix.size())] =
                    SavedCursor{r.acked, r.dropped};
              }
            }
            self->cursors_loaded_ = true;
          }
          if (Session* ss = self->Find(id)) self->Subscribe(*ss, std::move(m));
        });
    return;
  }
  store::StoredReadSpec head_only;
  head_only.after_seq = static_cast<uint64_t>(INT64_MAX);
  hooks_.journal->ReadStored(head_only, [w, id = s.id(), m](Result<store::StoredRead> res) mutable {
    auto p = w.lock();
    if (!p) return;
    Impl* self = *p;
    Session* ss = self->Find(id);
    if (!ss) return;
    if (!res.ok()) {
      self->Reply(*ss, RenderError("bad_request", "journal: " + res.status().message()));
      return;
    }
    auto again = self->cursor_owner_.find(m.session);
    if (again != self->cursor_owner_.end() && again->second != id) {
      self->Reply(*ss, RenderError("busy", "uplink session " + m.session +
                                               " is attached to another connection"));
      return;
    }
    self->SubscribeRest(*ss, std::move(m), res->head_seq);
  });
}

void WebSocketServer::Impl::SubscribeRest(Session& s, ClientMessage m, uint64_t head) {
  Unsubscribe(s, /*end=*/false);
  bool uplink_resumed = false;
  if (!m.session.empty() && !m.uplink.empty()) AttachCursor(s, m, head, &uplink_resumed);
  s.uplink_filters = std::move(m.uplink);
  if (!s.uplink_filters.empty()) ++uplink_users_;
  s.wants_status = m.status;
  auto subscribed = [](Session& ss, const std::string& name, uint64_t position, bool resumed,
                       bool up_resumed) {
    if (!ss.uplink_cursor) return RenderSubscribed(name, position, resumed);
    return RenderSubscribed(name, position, resumed, ss.uplink_cursor->position(), up_resumed);
  };
  if (m.filters.empty()) {
    Reply(s, subscribed(s, m.session, 0, false, uplink_resumed));
    if (s.wants_status && hooks_.status_json) {
      s.QueueStatus(std::make_shared<const std::string>(RenderStatus(hooks_.status_json())));
    }
    PumpUplink(s);
    return;
  }
  downlink::SubscribeArgs args;
  args.session = m.session;
  args.filters = std::move(m.filters);
  args.from = ToHubFrom(m.from);
  args.from_seq = m.from_seq;
  args.window = m.window;
  s.anonymous = m.session.empty();
  hooks_.hub->Subscribe(
      &s, std::move(args),
      [this, id = s.id(), anonymous = s.anonymous, subscribed,
       uplink_resumed](Result<downlink::SubscribeOutcome> out) {
        auto it = conns_.find(id);
        if (it == conns_.end()) return;
        Session& ss = *it->second.session;
        if (!out.ok()) {
          bool busy = out.status().code() == Code::kResourceExhausted;
          Reply(ss, RenderError(busy ? "busy" : "bad_request", out.status().message()));
          Unsubscribe(ss, /*end=*/false);  // the uplink cursor too: nothing stands
          return;
        }
        ss.hub_name = out->session;
        Reply(ss, subscribed(ss, anonymous ? std::string() : out->session, out->position,
                             out->resumed, uplink_resumed));
        if (ss.wants_status && hooks_.status_json) {
          ss.QueueStatus(std::make_shared<const std::string>(RenderStatus(hooks_.status_json())));
        }
        PumpUplink(ss);
      });
}

void WebSocketServer::Impl::Reply(Session& s, std::string frame) {
  if (s.QueueControl(std::move(frame))) return;
  auto it = conns_.find(s.id());
  if (it != conns_.end()) CloseLater(s, kClosePolicy, "replies not read");
}

// --- Sending and closing ------------------------------------------------------------------

int WebSocketServer::Impl::OnWritable(struct lws* wsi, Session& s) {
  if (s.close_code) {
    // Returning -1 here after lws_close_reason closes without the frame
    // (libwebsockets 4.1 sends it only when the close starts from a receive
    // callback), so the close frame is written here, then the connection
    // dropped. Opcode 4 is the library's own LWS_WRITE_CLOSE (private in
    // its headers, stable since 1.x), which frames opcode 0x8.
    unsigned char frame[LWS_PRE + 125];
    size_t n = 0;
    frame[LWS_PRE + n++] = static_cast<unsigned char>(s.close_code >> 8);
    frame[LWS_PRE + n++] = static_cast<unsigned char>(s.close_code & 0xff);
    size_t reason = std::min<size_t>(s.close_reason.size(), 123);
    std::memcpy(frame + LWS_PRE + n, s.close_reason.data(), reason);
    n += reason;
    (void)lws_write(wsi, frame + LWS_PRE, n, kWriteClose);
    return -1;
  }
  if (s.ping_due) {
    s.ping_due = false;
    // A payload of its own: libwebsockets 4.1 does not report an empty
    // pong to the protocol (LWS_CALLBACK_RECEIVE_PONG), so the answer to an
    // empty ping would go unseen.
    unsigned char ping[LWS_PRE + 2];
    ping[LWS_PRE] = 'e';
    ping[LWS_PRE + 1] = 's';
    if (lws_write(wsi, ping + LWS_PRE, 2, LWS_WRITE_PING) < 0) return -1;
    if (lws_send_pipe_choked(wsi)) {
      if (s.HasOutput()) lws_callback_on_writable(wsi);
      return 0;
    }
  }
  for (int i = 0; i < kFramesPerWritable && s.HasOutput(); ++i) {
    const std::string& f = s.Front();
    scratch_.resize(LWS_PRE + f.size());
    std::memcpy(scratch_.data() + LWS_PRE, f.data(), f.size());
    if (lws_write(wsi, scratch_.data() + LWS_PRE, f.size(), LWS_WRITE_TEXT) < 0) return -1;
    s.PopFront();
    if (lws_send_pipe_choked(wsi)) break;
  }
  if (s.HasOutput()) lws_callback_on_writable(wsi);
  return 0;
}

int WebSocketServer::Impl::CloseNow(struct lws* wsi, uint16_t code, std::string_view reason) {
  // A close frame's reason is at most 123 bytes (125 minus the code).
  std::string r(reason.substr(0, 123));
  lws_close_reason(wsi, static_cast<enum lws_close_status>(code),
                   reinterpret_cast<unsigned char*>(r.data()), r.size());
  return -1;
}

void WebSocketServer::Impl::CloseLater(Session& s, uint16_t code, std::string reason) {
  if (s.close_code) return;
  s.close_code = code;
  s.close_reason = std::move(reason);
  auto it = conns_.find(s.id());
  if (it != conns_.end() && it->second.wsi) lws_callback_on_writable(it->second.wsi);
}

// --- Timers ------------------------------------------------------------------------------------

void WebSocketServer::Impl::Sweep() {
  int64_t now = MonoMs();
  // Unauthenticated sessions count against max_sessions: they get less time,
  // so that a handful of silent connections cannot hold the HMI out long.
  int64_t auth_timeout_ms = std::min(options_.idle_timeout_ms, kAuthTimeoutMs);
  for (auto& [id, c] : conns_) {
    Session& s = *c.session;
    if (!s.established || s.close_code) continue;
    int64_t quiet = now - s.last_rx_ms;
    if (!s.authenticated && now - s.opened_ms > auth_timeout_ms) {
      ++stats_.refused_unauthorized;
      CloseLater(s, kCloseUnauthorized, "no auth message in time");
    } else if (quiet > options_.idle_timeout_ms) {
      ++stats_.closed_idle;
      CloseLater(s, kCloseIdle, "idle");
    } else if (quiet > options_.idle_timeout_ms / 2 && !s.ping_sent) {
      // Browsers and most clients answer pings by themselves: an open page
      // that only listens is not idle.
      s.ping_sent = true;
      s.ping_due = true;
      lws_callback_on_writable(c.wsi);
    }
  }
}

void WebSocketServer::Impl::PushStatus() {
  if (!hooks_.status_json) return;
  std::shared_ptr<const std::string> frame;
  for (auto& [id, c] : conns_) {
    Session& s = *c.session;
    if (!s.wants_status || s.close_code) continue;
    if (!frame) frame = std::make_shared<const std::string>(RenderStatus(hooks_.status_json()));
    s.QueueStatus(frame);
  }
}

// --- The uplink tap ------------------------------------------------------------------------------

bool WebSocketServer::Impl::WantsUplink(std::string_view topic) const {
  if (uplink_users_ == 0) return false;
  for (const auto& [id, c] : conns_) {
    if (c.session->MatchesUplink(topic)) return true;
  }
  return false;
}

void WebSocketServer::Impl::OnUplinkStored(uint64_t seq, const store::Message& m) {
  tap_head_ = std::max(tap_head_, seq);
  if (uplink_users_ == 0) return;
  std::shared_ptr<std::string> frame;
  for (auto& [id, c] : conns_) {
    Session& s = *c.session;
    if (s.close_code) continue;
    if (!s.MatchesUplink(m.topic)) {
      if (s.uplink_cursor) s.uplink_cursor->Pass(seq);
      continue;
    }
    if (!frame) {
      frame = std::make_shared<std::string>();
      AppendUplinkMessage(frame.get(), seq, m);
    }
    if (s.uplink_cursor) {
      if (s.uplink_cursor->OfferLive(seq)) {
        s.QueueUplinkInFlight(frame);
      } else {
        PumpUplink(s);  // the window filled (now catching up), or already reading
      }
      continue;
    }
    s.QueueUplink(frame);
  }
}

void WebSocketServer::Impl::OnUplinkUntapped(uint64_t seq, std::string_view topic) {
  tap_head_ = std::max(tap_head_, seq);
  if (cursor_owner_.empty()) return;
  for (auto& [id, c] : conns_) {
    Session& s = *c.session;
    if (!s.uplink_cursor || s.close_code) continue;
    s.uplink_cursor->OfferUntapped(seq, topic);
    PumpUplink(s);
  }
}

// --- The resumable uplink ----------------------------------------------------------------------

void WebSocketServer::Impl::AttachCursor(Session& s, const ClientMessage& m, uint64_t head,
                                         bool* resumed) {
  auto saved = saved_cursors_.find(m.session);
  uint64_t position = head;  // "new", and the default the first time
  uint64_t missed = 0;
  bool skip_first_gap = false;
  switch (m.uplink_from) {
    case FromKind::kDefault:
      if (saved != saved_cursors_.end()) {
        position = saved->second.position;
        missed = saved->second.missed;
        *resumed = true;
      }
      break;
    case FromKind::kNew:
      break;
    case FromKind::kOldest:
      position = 0;
      skip_first_gap = true;
      break;
    case FromKind::kSeq:
      position = m.uplink_from_seq > 0 ? m.uplink_from_seq - 1 : 0;
      break;
  }
  uint32_t window = m.window ? m.window : options_.uplink_window;
  s.uplink_cursor = std::make_unique<UplinkCursor>(m.session, m.uplink, window, position);
  s.uplink_cursor->serial = ++cursor_serial_;
  s.uplink_cursor->missed_total = missed;
  if (skip_first_gap) s.uplink_cursor->SkipFirstGap();
  cursor_owner_[m.session] = s.id();
  SaveCursor(s);  // the session exists from now on, even if it never acks
}

void WebSocketServer::Impl::SaveCursor(Session& s) {
  UplinkCursor& c = *s.uplink_cursor;
  c.dirty = false;
  saved_cursors_[c.name()] = SavedCursor{c.position(), c.missed_total};
  store::ConsumerSessionRecord r;
  r.name = UplinkCursorRow(c.name());
  r.filters = c.filters();
  r.acked = c.position();
  r.last_seen_ms = clock_.WallMs();
  r.dropped = c.missed_total;
  hooks_.journal->SaveConsumerSession(std::move(r), [name = c.name()](Status st) {
    if (!st.ok()) {
      ES_LOG_WARN("websocket uplink position not saved",
                  {{"session", name}, {"error", st.ToString()}});
    }
  });
}

void WebSocketServer::Impl::DetachCursor(Session& s, bool end) {
  if (!s.uplink_cursor) return;
  const std::string& name = s.uplink_cursor->name();
  if (end) {
    saved_cursors_.erase(name);
    hooks_.journal->DeleteConsumerSession(UplinkCursorRow(name), [](Status) {});
  } else {
    SaveCursor(s);
  }
  cursor_owner_.erase(name);
  s.uplink_cursor.reset();
}

void WebSocketServer::Impl::PersistCursors() {
  for (auto& [id, c] : conns_) {
    Session& s = *c.session;
    if (!s.uplink_cursor) continue;
    if (s.uplink_cursor->dirty) SaveCursor(s);
    PumpUplink(s);  // a read that failed is retried here
  }
}

void WebSocketServer::Impl::PumpUplink(Session& s) {
  UplinkCursor* c = s.uplink_cursor.get();
  if (!c || s.close_code || !c->WantsRead()) return;
  c->set_reading(true);
  store::StoredReadSpec spec;
  spec.after_seq = c->read_after();
  spec.max_messages = kUplinkReadRows;
  spec.max_bytes = kUplinkReadBytes;
  std::weak_ptr<Impl*> w = self_;
  hooks_.journal->ReadStored(
      spec, [w, id = s.id(), serial = c->serial](Result<store::StoredRead> res) {
        auto p = w.lock();
        if (!p) return;
        Impl* self = *p;
        Session* ss = self->Find(id);
        if (!ss || !ss->uplink_cursor || ss->uplink_cursor->serial != serial) return;
        UplinkCursor& cur = *ss->uplink_cursor;
        if (!res.ok()) {
          // Retried by the persist timer; the position does not move meanwhile.
          cur.set_reading(false);
          ES_LOG_WARN("websocket uplink read failed", {{"error", res.status().ToString()}});
          return;
        }
        std::string frame;
        uint64_t tail = cur.ApplyRead(
            *res, self->tap_head_, [&](uint64_t missed, const store::StoredMessage& row) {
              ss->QueueMissed(missed);
              frame.clear();
              AppendUplinkMessage(&frame, row.seq, row.message);
              ss->QueueUplinkInFlight(std::make_shared<const std::string>(frame));
            });
        ss->QueueMissed(tail);
        self->PumpUplink(*ss);
      });
}

WebSocketStats WebSocketServer::Impl::Stats() const {
  WebSocketStats out = stats_;
  out.sessions = admitted_;
  for (const auto& [id, c] : conns_) {
    out.downlink_delivered += c.session->downlink_delivered;
    out.uplink_delivered += c.session->uplink_delivered;
    out.uplink_dropped += c.session->uplink_dropped;
  }
  return out;
}

// --- The door ---------------------------------------------------------------------------------

Result<std::unique_ptr<WebSocketServer>> WebSocketServer::Create(platform::Loop& loop,
                                                                 WebSocketOptions options,
                                                                 WebSocketHooks hooks) {
  auto impl = std::make_unique<Impl>(loop, std::move(options), std::move(hooks));
  ES_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<WebSocketServer>(new WebSocketServer(std::move(impl)));
}

WebSocketServer::WebSocketServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebSocketServer::~WebSocketServer() = default;
uint16_t WebSocketServer::port() const { return impl_->port(); }
bool WebSocketServer::WantsUplink(std::string_view topic) const {
  return impl_->WantsUplink(topic);
}
void WebSocketServer::OnUplinkStored(uint64_t seq, const store::Message& message) {
  impl_->OnUplinkStored(seq, message);
}
void WebSocketServer::OnUplinkUntapped(uint64_t seq, std::string_view topic) {
  impl_->OnUplinkUntapped(seq, topic);
}
void WebSocketServer::CloseAll(int64_t timeout_ms, std::function<void()> done) {
  impl_->CloseAll(timeout_ms, std::move(done));
}
WebSocketStats WebSocketServer::stats() const { return impl_->Stats(); }

}  // namespace edgespool::agent::websocket
