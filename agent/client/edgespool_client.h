/* libedgespool-client C API: publish to a local edgespool agent, and
 * consume the downlink's messages from it.
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
  EDGESPOOL_ERR_CLOSED = -12
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

/* Waits for outstanding publishes (other threads') and closes. NULL is fine. */
void edgespool_close(edgespool_producer* p);

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
