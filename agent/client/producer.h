// libedgespool-client: the C++ producer SDK (the CLI uses it too).
//
//   auto p = edgespool::client::Producer::Connect({"/run/edgespool/edgespool.sock"});
//   auto result = (*p)->Publish("sensors/t1", "{\"t\":21.5}").get();
//   if (result.status.ok()) printf("stored as %llu\n", result.seq);
//
// Design: a Producer's replies are read on a background thread running its
// own platform::Loop (an IoThread: its own, or one shared by several
// Producers), so it works in programs with or without a libuv loop of
// their own. A request with nothing ahead of it is written to the socket by
// the calling thread (one send(2), no hand-over); the SDK thread writes the
// rest (window or socket full, reconnecting) and reads every reply. Replies
// complete std::futures or run callbacks on the SDK thread (callbacks must
// not block: they run on the loop that reads the socket).
//
// Reliability: every publish carries an idempotency id (generated when the
// caller gives none). Up to `window` requests are on the wire at once. When
// the connection drops, the SDK reconnects with exponential backoff and
// re-sends, in their original order, every request not yet answered; the
// journal deduplicates by id, so a publish that was stored just before the
// drop is acknowledged once (its retry reports status "duplicate" with the
// original seq, which is still reported to the caller as a success).
//
// Direct mode (docs/direct-mode.md): given an mqtt:// or mqtts:// URL as
// socket_path, the Producer talks to that broker itself, with no agent: the
// same Publish (QoS 1; the result says Receipt::kSent once the broker's
// PUBACK came), Drain and destructor, and the message looks on the wire as
// the agent's message mode sends it. Nothing is stored: while the link is
// down publishes fail with Unavailable. Query, Request, GetStatus and Reload
// need the agent and fail with InvalidArgument there.
//
// Signals: a write to an agent that just died raises SIGPIPE; unless the
// program has its own SIGPIPE handler, the SDK sets SIGPIPE to ignored.
//
// Thread-safety: every public method may be called from any thread. Publish
// blocks while `max_queued` requests are outstanding (backpressure), except
// on the SDK's own thread (from a callback), where it never blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/client/io_thread.h"
#include "agent/protocol/request.h"
#include "platform/status.h"

namespace edgespool::client {

using protocol::AckMode;
using protocol::ErrorCode;
using protocol::HeaderList;
using protocol::Priority;

// Direct mode only (socket_path an mqtt:// or mqtts:// URL): how to reach
// and log in to the broker. The agent's equivalents are uplink.* keys.
struct DirectOptions {
  std::string client_id;  // default: "es-direct-" and random hex
  std::string username;   // empty: none
  std::string password;   // the secret itself (read it from a file yourself)
  // mqtts://: PEM files; an empty ca_file means the system's CA store.
  std::string ca_file;
  std::string cert_file;  // client certificate (mutual TLS)
  std::string key_file;
  std::string server_name;  // SNI and host name check; default: the URL's host
  bool verify = true;
  uint8_t protocol = 5;  // MQTT 5, falling back to 3.1.1 once (no properties then)
  uint16_t keepalive_s = 30;
};

// True for what selects direct mode in ProducerOptions::socket_path:
// mqtt:// and mqtts:// URLs (any case).
bool IsBrokerUrl(std::string_view socket_path_or_url);

struct ProducerOptions {
  // The agent's socket, or a broker's URL (mqtt://host[:1883],
  // mqtts://host[:8883]) for direct mode: the one setting that switches.
  std::string socket_path = "/run/edgespool/edgespool.sock";
  DirectOptions direct;               // direct mode only
  size_t window = 256;                // requests on the wire awaiting a reply
  size_t max_queued = 10000;          // outstanding requests before Publish blocks
  int64_t connect_timeout_ms = 5000;  // Connect(): the first connection
  int64_t backoff_initial_ms = 50;
  int64_t backoff_max_ms = 2000;
  // Generated ids: prefix + counter. Empty (the default): the time in ms
  // (12 hex digits), a random prefix and the counter, so that ids sort by
  // time and the journal's id index takes them at one place.
  std::string id_prefix;
  // The thread that reads this Producer's replies and runs its callbacks.
  // Empty (the default): the Producer starts its own. Producers of one
  // process may share one (see io_thread.h).
  std::shared_ptr<IoThread> io;
};

// What an OK PublishResult means: how far the message got.
enum class Receipt : uint8_t {
  kStored,   // durable in the agent's journal (the agent's ack)
  kSent,     // direct mode: the broker's PUBACK (nothing is kept anywhere else)
  kWritten,  // ack kNone: handed over, nothing more is known
};
const char* ReceiptName(Receipt r);  // "stored", "sent", "written"

struct PublishResult {
  Status status;                       // OK, or why not (the agent's message)
  Receipt receipt = Receipt::kStored;  // with an OK status
  std::optional<ErrorCode> code;       // the agent's error code, when it sent one
  uint64_t seq = 0;                    // the journal's; 0 in direct mode (no journal)
  bool duplicate = false;              // the id was already stored: seq is the original
  bool uplink_connected = false;       // direct mode: the link to the broker
  int64_t retry_after_ms = 0;          // busy, rate_limited, journal_full
  std::string id;                      // the idempotency id the publish carried
  std::string delivery;                // on_delivered: delivered | dead | expired
  std::string reason;
};

struct PublishOptions {
  std::optional<int64_t> ts_ms;  // default: the agent's time of receipt
  std::string id;                // default: generated
  Priority priority = Priority::kNormal;
  std::optional<int64_t> ttl_ms;
  // Scheduled delivery: stored at once (acked as stored), not uploaded
  // before deliver_at (ms since epoch) or receipt + delay_ms; at most one.
  // A headers entry "traceparent" must be a W3C traceparent (else
  // bad_request); it travels upstream with the message.
  std::optional<int64_t> deliver_at_ms;
  std::optional<int64_t> delay_ms;
  HeaderList headers;
  AckMode ack = AckMode::kStored;  // kNone: completes once written, seq 0
  // ack kDelivered: runs (on the SDK thread) when the broker acknowledged the
  // message, or it went dead/expired; or with status Unavailable when the
  // connection dropped before that (the agent cannot tell a new connection).
  std::function<void(const PublishResult&)> on_delivered;
};

struct QueryInfo {
  Status status;
  std::string state;  // pending | scheduled | sent | dead | expired | unknown
  uint64_t seq = 0;
  int64_t ts_ms = 0;
  std::string topic;
  uint64_t attempts = 0;
  std::string reason;
  int64_t sent_at_ms = 0;
  int64_t deliver_at_ms = 0;  // scheduled: when it becomes due
};

// Request/response (docs/request-response.md): a request to the cloud,
// answered once.
struct RequestOptions {
  int64_t timeout_ms = 5000;  // 1..600000: then the agent answers timeout
  // While the uplink is down the request fails at once (unavailable) unless
  // a ttl lets it wait that long (in the agent's memory) for the uplink.
  std::optional<int64_t> ttl_ms;
  HeaderList headers;  // MQTT 5 user properties of the request
};

struct RequestResult {
  // OK: answered. Otherwise Unavailable (uplink down, broker refused, the
  // connection to the agent lost), Timeout, NotFound (no_handler), Internal
  // (handler_error: the responder's own error, in the message),
  // ResourceExhausted (busy), InvalidArgument, PermissionDenied.
  Status status;
  std::optional<ErrorCode> code;  // the agent's error code, when it sent one
  std::string payload;            // the answer
  std::string topic;              // the topic the answer came on
};

// The agent's answer to a reload (`edgespool reload`).
struct ReloadResult {
  Status status;        // OK: applied or unchanged; else refused, forbidden or unreachable
  std::string outcome;  // reloaded | unchanged | refused ("" when unreachable)
  std::string message;  // one line: what changed, or why it was refused
  std::string json;     // the whole outcome (the reply's body)
};

class DirectProducer;  // direct mode (agent/client/direct_producer.h)

class Producer {
 public:
  // Starts the SDK thread and waits for the first connection (up to
  // connect_timeout_ms): Unavailable if the agent (direct mode: the broker)
  // cannot be reached; in direct mode InvalidArgument for a bad URL or a TLS
  // file that cannot be loaded. Later drops are handled by reconnecting.
  static Result<std::unique_ptr<Producer>> Connect(ProducerOptions options);
  // Closes the connection (and stops its IoThread if no other Producer
  // shares it); requests still outstanding fail with Cancelled.
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  std::future<PublishResult> Publish(std::string topic, std::string payload,
                                     PublishOptions options = {});
  void Publish(std::string topic, std::string payload, PublishOptions options,
               std::function<void(PublishResult)> done);
  // A request to the cloud on `topic`, answered by whoever serves it there
  // (MQTT 5 response topic + correlation data, or the 3.1.1 envelope: the
  // agent does both). Not stored: it fails at once with Unavailable while
  // the agent or its uplink is down (see RequestOptions::ttl_ms), and with
  // Unavailable if the connection to the agent drops before the answer (it
  // is not sent again: the cloud may have acted on it). Answers may come in
  // any order; each goes to its own request.
  std::future<RequestResult> Request(std::string topic, std::string payload,
                                     RequestOptions options = {});
  void Request(std::string topic, std::string payload, RequestOptions options,
               std::function<void(RequestResult)> done);
  std::future<QueryInfo> Query(uint64_t seq);
  std::future<QueryInfo> QueryById(std::string id);
  // The agent's status document (JSON).
  std::future<Result<std::string>> GetStatus();
  std::future<Status> Ping();
  // Asks the agent to reload its configuration file (root or the agent's
  // user only).
  std::future<ReloadResult> Reload();

  // Waits until every request made so far is answered or failed.
  bool Drain(int64_t timeout_ms);
  bool connected() const;
  uint64_t reconnects() const;

  class Impl;

 private:
  explicit Producer(std::unique_ptr<Impl> impl);
  explicit Producer(std::unique_ptr<DirectProducer> direct);
  std::unique_ptr<Impl> impl_;              // through the agent, or
  std::unique_ptr<DirectProducer> direct_;  // straight to the broker
};

}  // namespace edgespool::client
