/* libedgespool-client C API: publish to a local edgespool agent.
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
 */
#ifndef EDGESPOOL_CLIENT_H_
#define EDGESPOOL_CLIENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edgespool_producer edgespool_producer;

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

#ifdef __cplusplus
}
#endif

#endif /* EDGESPOOL_CLIENT_H_ */
