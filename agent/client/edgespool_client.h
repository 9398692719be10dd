/* libedgespool-client C API: publish to a local edgespool agent, and
 * consume the downlink's messages from it.
 *
 * Threading: every function may be called from any thread. Each producer
 * and consumer has an SDK I/O thread that reads the agent's replies;
 * callbacks (edgespool_delivery_cb, edgespool_message_cb) run on it, one at
 * a time, and must not block: a callback that waits for the agent waits for
 * itself. A callback may publish (never blocks there) or ack; it must not
 * call edgespool_flush, edgespool_close or edgespool_consumer_close.
 *
 *   edgespool_producer* p;
 *   if (edgespool_connect("/run/edgespool/edgespool.sock", &p) != 0) ...;
 *   int64_t seq = edgespool_publish(p, "sensors/t1", "21.5", 4);
 *   if (seq < 0) fprintf(stderr, "%s\n", edgespool_strerror((int)seq));
 *   edgespool_close(p);
 *
 * Calls block until the agent answered (the message is durable when
 * edgespool_publish returns a seq). A producer reconnects by itself and
 * re-sends unanswered publishes; it may be used from several threads.
 *
 *   static void on_msg(const edgespool_message* m, void* user) {
 *     printf("%s %.*s\n", m->topic, (int)m->payload_len, (const char*)m->payload);
 *     edgespool_consumer_ack((edgespool_consumer*)user, m->seq);
 *   }
 *   const char* filters[] = {"down/#"};
 *   edgespool_consumer* c;
 *   edgespool_consumer_open(sock, "hmi", filters, 1, EDGESPOOL_FROM_DEFAULT, on_msg, NULL, &c);
 *
 * A consumer's callback runs on the SDK's thread, one message at a time, in
 * inbox order; it must not block, and may ack. At most 100 messages are
 * delivered and not acked (the window); a durable session (a name) keeps
 * its position across reconnects and agent restarts, an anonymous one (NULL
 * or "") ends with the connection. Delivery is at least once.
 */
#ifndef EDGESPOOL_CLIENT_H_
#define EDGESPOOL_CLIENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edgespool_producer edgespool_producer;
typedef struct edgespool_consumer edgespool_consumer;

/* Error codes: negative, so that edgespool_publish can return seq or error. */
enum {
  EDGESPOOL_OK = 0,
  EDGESPOOL_ERR_UNAVAILABLE = -1,   /* agent not reachable */
  EDGESPOOL_ERR_BAD_FRAME = -2,
  EDGESPOOL_ERR_BAD_REQUEST = -3,
  EDGESPOOL_ERR_BAD_TOPIC = -4,
  EDGESPOOL_ERR_TOO_LARGE = -5,
  EDGESPOOL_ERR_FORBIDDEN = -6,
  EDGESPOOL_ERR_RATE_LIMITED = -7,  /* retry later */
  EDGESPOOL_ERR_BUSY = -8,          /* retry later */
  EDGESPOOL_ERR_JOURNAL_FULL = -9,  /* retry later */
  EDGESPOOL_ERR_INTERNAL = -10,
  EDGESPOOL_ERR_INVALID_ARGUMENT = -11, /* NULL pointer and the like */
  EDGESPOOL_ERR_CLOSED = -12,
  EDGESPOOL_ERR_TIMEOUT = -13, /* edgespool_flush: not settled in time */
  /* -14, -15: taken by request/response (h/reqresp) */
  EDGESPOOL_ERR_DEAD = -16,    /* never delivered: a dead letter (the report's reason says why) */
  EDGESPOOL_ERR_EXPIRED = -17  /* its ttl ran out before it was uploaded */
};

/* Connects (retrying for up to 2 s while the agent starts). 0 or a negative error code. */
int edgespool_connect(const char* socket_path, edgespool_producer** out);

/* Publishes one message with default options (ts = receipt time, priority
 * normal, a generated idempotency id). Returns the journal seq (>= 1) once
 * the message is durable, or a negative error code. */
int64_t edgespool_publish(edgespool_producer* p, const char* topic, const void* payload,
                          size_t len);

/* The same with options: id may be NULL (generated), ts_ms < 0 means the time
 * of receipt, priority may be NULL or "high" | "normal" | "low". */
int64_t edgespool_publish_ex(edgespool_producer* p, const char* topic, const void* payload,
                             size_t len, const char* id, int64_t ts_ms, const char* priority);

/* Waits for outstanding publishes (other threads') and closes. NULL is fine.
 * Asynchronous publishes still unsettled after 5 s get their callback with
 * EDGESPOOL_ERR_CLOSED before it returns. */
void edgespool_close(edgespool_producer* p);

/* --- Options, asynchronous publish, flush (since 0.2) ---------------------
 *
 *   edgespool_connect_options co;
 *   edgespool_connect_options_init(&co);
 *   co.connect_timeout_ms = 500;
 *   edgespool_connect_opts(sock, &co, &p);
 *
 *   edgespool_header h[] = {{"unit", "C"}};
 *   edgespool_publish_options o;
 *   edgespool_publish_options_init(&o);
 *   o.headers = h; o.header_count = 1; o.ttl_ms = 600000;
 *   o.priority = EDGESPOOL_PRIORITY_HIGH; o.ack = EDGESPOOL_ACK_DELIVERED;
 *   edgespool_publish_async(p, "sensors/t1", "21.5", 4, &o, on_report, ctx);
 *   ...
 *   if (edgespool_flush(p, 5000) == EDGESPOOL_ERR_TIMEOUT) ...;
 *
 * The option structs start with their own size, filled in by the _init
 * functions, so that later versions can add fields without breaking
 * programs built against this header. */

typedef struct edgespool_connect_options {
  size_t struct_size;         /* sizeof(edgespool_connect_options), set by _init */
  int64_t connect_timeout_ms; /* how long edgespool_connect_opts waits for the agent (2000) */
  size_t window;              /* requests on the wire awaiting a reply (256) */
  size_t max_queued;          /* outstanding requests before a publish blocks (10000) */
  /* Direct mode (added later: programs built before leave them NULL): when
   * socket_path is an mqtt:// or mqtts:// URL the producer publishes to that
   * broker itself, with no agent (docs/direct-mode.md). Every NULL: none. */
  const char* ca_file;   /* mqtts://: CA bundle (PEM); NULL: the system's */
  const char* cert_file; /* mqtts://: client certificate (PEM) */
  const char* key_file;  /* mqtts://: its key (PEM) */
  const char* username;
  const char* password;
} edgespool_connect_options;

void edgespool_connect_options_init(edgespool_connect_options* o);
/* edgespool_connect with options (NULL: the defaults). 0 or a negative error
 * code: EDGESPOOL_ERR_UNAVAILABLE when no connection was made within
 * connect_timeout_ms. socket_path may be a broker's URL, mqtt://HOST[:PORT]
 * or mqtts://HOST[:PORT] (edgespool_connect too): direct mode, where a
 * publish succeeds on the broker's PUBACK, returns 0 instead of a journal
 * seq and its report has sent = 1; nothing is stored, and while the broker
 * is unreachable publishes fail with EDGESPOOL_ERR_UNAVAILABLE. */
int edgespool_connect_opts(const char* socket_path, const edgespool_connect_options* options,
                           edgespool_producer** out);

typedef struct edgespool_header {
  const char* key;
  const char* value;
} edgespool_header;

enum { EDGESPOOL_PRIORITY_HIGH = 0, EDGESPOOL_PRIORITY_NORMAL = 1, EDGESPOOL_PRIORITY_LOW = 2 };
enum {
  EDGESPOOL_ACK_STORED = 0,    /* one report: stored (durable in the journal) or error */
  EDGESPOOL_ACK_DELIVERED = 1  /* then a second: delivered (the broker's PUBACK) or error */
};

typedef struct edgespool_publish_options {
  size_t struct_size;     /* sizeof(edgespool_publish_options), set by _init */
  const char* id;         /* idempotency id; NULL: generated */
  int64_t ts_ms;          /* original time (ms since the epoch); < 0: time of receipt */
  int priority;           /* EDGESPOOL_PRIORITY_*; default NORMAL */
  int64_t ttl_ms;         /* expire if not uploaded within this; 0: the route's ttl, or never */
  const edgespool_header* headers; /* MQTT 5 user properties upstream; copied */
  size_t header_count;
  int ack;                /* EDGESPOOL_ACK_*; default STORED */
  /* Scheduled delivery (added later: programs built before keep 0 here).
   * Stored at once, not uploaded before this time; at most one of the two. */
  int64_t deliver_at_ms;  /* ms since the epoch; 0: none */
  int64_t delay_ms;       /* from receipt; 0: none */
} edgespool_publish_options;

void edgespool_publish_options_init(edgespool_publish_options* o);

/* The same as edgespool_publish_ex with every option (NULL: the defaults):
 * blocks until stored; the journal seq or a negative error code. With ack
 * DELIVERED it still returns once stored. */
int64_t edgespool_publish_opts(edgespool_producer* p, const char* topic, const void* payload,
                               size_t len, const edgespool_publish_options* options);

/* What a delivery callback is told. Valid only during the callback. */
typedef enum edgespool_event {
  EDGESPOOL_EVENT_STORED = 1,    /* durable in the journal: seq is set */
  EDGESPOOL_EVENT_DELIVERED = 2, /* the broker acknowledged it (ack DELIVERED) */
  EDGESPOOL_EVENT_ERROR = 3      /* refused, dead, expired, or the connection dropped */
} edgespool_event;

typedef struct edgespool_delivery_report {
  edgespool_event event;
  int error;          /* 0, or the negative error code of an EVENT_ERROR */
  uint64_t seq;       /* journal seq (0 if never stored) */
  const char* id;     /* the idempotency id the publish carried */
  int duplicate;      /* 1: the id was already stored; seq is the original */
  const char* reason; /* why, for an error ("" otherwise) */
  int sent;           /* 1: direct mode: STORED here means the broker's PUBACK (seq 0) */
} edgespool_delivery_report;

typedef void (*edgespool_delivery_cb)(const edgespool_delivery_report* report, void* user);

/* Publishes without waiting. callback (may be NULL) runs on the SDK thread:
 * once with STORED or ERROR; with ack DELIVERED, after STORED once more with
 * DELIVERED or ERROR (dead, expired, or the connection dropped before the
 * agent could tell: EDGESPOOL_ERR_UNAVAILABLE, the message itself is safe in
 * the journal). A message whose ttl runs out before it was uploaded gets
 * ERROR with EDGESPOOL_ERR_EXPIRED once the journal's cleanup deletes it
 * (every store.cleanup_interval, default 1m). Returns 0 when the publish was
 * queued (the callback will run), or a negative error code (it will not). Blocks only while max_queued
 * publishes are outstanding, and never when called from a callback. */
int edgespool_publish_async(edgespool_producer* p, const char* topic, const void* payload,
                            size_t len, const edgespool_publish_options* options,
                            edgespool_delivery_cb callback, void* user);

/* Waits until every asynchronous publish made so far has had its last
 * callback (stored, or delivered with ack DELIVERED), or timeout_ms passed:
 * 0 or EDGESPOOL_ERR_TIMEOUT. Not from a callback. */
int edgespool_flush(edgespool_producer* p, int64_t timeout_ms);

const char* edgespool_strerror(int code);

/* One downlink message, valid only during the callback. */
typedef struct edgespool_message {
  uint64_t seq;             /* inbox seq: what edgespool_consumer_ack takes */
  const char* session;      /* "" for an anonymous session */
  const char* topic;        /* the local topic */
  const char* broker_topic; /* the topic on the broker */
  int64_t ts_ms;            /* when the agent received it */
  const void* payload;
  size_t payload_len;
  size_t header_count;       /* MQTT 5 user properties, in order */
  const char* const* header_keys;
  const char* const* header_values;
  const char* response_topic; /* "" if none */
  const void* correlation;    /* MQTT 5 correlation data, correlation_len bytes */
  size_t correlation_len;
} edgespool_message;

typedef void (*edgespool_message_cb)(const edgespool_message* message, void* user);

/* `from` of edgespool_consumer_open: one of these, or an inbox seq >= 0
 * (deliver seq >= it). DEFAULT: a durable session resumes after its acked
 * position, a new one starts with new messages. */
#define EDGESPOOL_FROM_DEFAULT (-1)
#define EDGESPOOL_FROM_NEW (-2)
#define EDGESPOOL_FROM_OLDEST (-3)

/* Subscribes session (NULL or "": anonymous) to n filters (1..64 MQTT
 * filters over local topics) and calls callback for every message. Waits up
 * to 5 s for the agent's answer: 0, EDGESPOOL_ERR_UNAVAILABLE,
 * EDGESPOOL_ERR_BAD_REQUEST (a bad filter or session name) or
 * EDGESPOOL_ERR_BUSY (the session is attached to another connection). */
int edgespool_consumer_open(const char* socket_path, const char* session,
                            const char* const* filters, size_t n, int64_t from,
                            edgespool_message_cb callback, void* user, edgespool_consumer** out);

/* Acknowledges one message / every delivered message with seq <= up_to.
 * Never blocks (the ack is written by the SDK thread); callable from the
 * callback. 0 or a negative error code. */
int edgespool_consumer_ack(edgespool_consumer* c, uint64_t seq);
int edgespool_consumer_ack_up_to(edgespool_consumer* c, uint64_t up_to);

/* Every message delivered with seq <= this is acked. */
uint64_t edgespool_consumer_position(const edgespool_consumer* c);

/* Detaches (a durable session keeps its position), waits up to 2 s for the
 * agent and frees c. Not from the callback. NULL is fine. 0 or an error. */
int edgespool_consumer_close(edgespool_consumer* c);

#ifdef __cplusplus
}
#endif

#endif /* EDGESPOOL_CLIENT_H_ */
