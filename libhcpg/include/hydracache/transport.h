/*
 * hydracache/transport.h - what a custom bus transport and a tool that reads or
 * writes invalidations need: the transport interface of the generic bus
 * (hc_transport_ops, hc_bus_new, hc_bus_deliver, hc_bus_transport_up/_down) and
 * the codec of wire format v1 (docs/PROTOCOL.md), the one the built-in buses
 * and the hydracache extension speak:
 *
 *   hc1 SP <origin> SP <op> [SP <arg>]*      at most 7999 bytes
 *
 * bus.h includes this header; a program that only decodes or encodes payloads
 * (e.g. the hcpg tool) may include it alone.
 */
#ifndef HYDRACACHE_TRANSPORT_H
#define HYDRACACHE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <hydracache/cache.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------- transport interface */

/* A bus (bus.h): caches attached to it share invalidations through its transport. */
typedef struct hc_bus hc_bus;

/*
 * A transport moves invalidations between nodes.  The bus calls these
 * functions; impl is the transport's own object.  Every pointer may be NULL
 * except publish.
 *
 *  start(impl, bus)   called once by hc_bus_new; the transport keeps bus to
 *                     report what it receives (hc_bus_deliver) and its state
 *                     (hc_bus_transport_up / _down).  Until it reports up,
 *                     attached caches stay in bypass.
 *  publish(impl, from, kind, arg)
 *                     send one local invalidation (arg NULL for flush) of
 *                     cache `from`.  Called on the invalidating thread with no
 *                     lock held: must not block for long (queue and return).
 *                     The transport counts HC_BUSCTR_PUBLISHED /
 *                     HC_BUSCTR_PUBLISH_FAILURES on `from` while it is
 *                     attached.
 *  forget(impl, c)    cache c is being detached: drop every reference to it.
 *  stop(impl)         stop delivering; called by hc_bus_free before detaching.
 *  fd / poll          event-loop integration (see hc_bus_fd).
 *  free(impl)         release impl; called last by hc_bus_free.
 */
typedef struct hc_transport_ops {
    const char *name;
    hc_status (*start)(void *impl, hc_bus *bus, hc_error *err);
    void (*publish)(void *impl, hc_cache *from, hc_inval_kind kind, const char *arg);
    void (*forget)(void *impl, hc_cache *c);
    void (*stop)(void *impl);
    int (*fd)(void *impl);
    hc_status (*poll)(void *impl, hc_error *err);
    void (*free)(void *impl);
} hc_transport_ops;

/*
 * A bus over a custom transport.  node_id NULL -> random 64-bit hex.  ops is
 * borrowed (usually static); impl is owned by the bus from then on (released
 * through ops->free, also when hc_bus_new fails after validating ops).
 * NULL on error (bad node id, NULL ops/publish, OOM, start failed).
 */
HC_EXTERN hc_bus *hc_bus_new(const char *node_id, const hc_transport_ops *ops, void *impl,
                             hc_error *err);

/* -------------------------------------------------- delivering to the bus */

/*
 * Deliver one received payload (wire format v1, any bytes, len bytes).
 * Counts HC_BUSCTR_RECEIVED on every attached cache and HC_BUSCTR_MALFORMED
 * when the payload is malformed, foreign or oversized (more than 32000
 * bytes: 7999 bounds only what is encoded, and a payload re-encoded into a
 * listener's client_encoding may be longer; then nothing is
 * applied).  Messages whose origin is this node's id and sync tokens are not
 * applied (see hc_bus_deliver_from for transports that know the sender); other
 * t/k/f messages are applied to every attached cache, with origin
 * HC_ORIGIN_DATABASE for origin "db" and HC_ORIGIN_BUS otherwise.
 * Returns HC_OK when applied or ignored as allowed, HC_ERR_INVALID/TOO_LARGE
 * for a malformed payload.  Call from one thread at a time per bus.
 */
HC_EXTERN hc_status hc_bus_deliver(hc_bus *bus, const char *payload, size_t len, hc_error *err);

/* Who sent a delivered payload, as far as the transport knows. */
typedef enum hc_bus_sender {
    HC_SENDER_BY_ORIGIN = 0, /* unknown: the payload's origin decides (== node id: own) */
    HC_SENDER_SELF = 1,      /* this node sent it: an echo, not applied */
    HC_SENDER_OTHER = 2      /* someone else sent it: applied even if its origin is this
                                node's id (two processes configured with the same id) */
} hc_bus_sender;

/*
 * hc_bus_deliver for transports that can identify the sender (the PostgreSQL
 * bus compares the notifying backend's pid with its own connection's), which
 * is more reliable than the origin label: node ids are configured, so two
 * processes may share one.  hc_bus_deliver is this with HC_SENDER_BY_ORIGIN.
 * Same counting, return values and threading as hc_bus_deliver.
 */
HC_EXTERN hc_status hc_bus_deliver_from(hc_bus *bus, const char *payload, size_t len,
                                        hc_bus_sender sender, hc_error *err);

/*
 * Report the transport listening (every attached cache leaves bypass, which
 * flushes it: entries cached before now may have missed messages) or lost
 * (every attached cache is flushed and enters bypass until the next up;
 * counted as a disconnect and emitted as HC_EV_BUS_DISCONNECT with detail).
 * An up after a down is counted as a reconnect (HC_EV_BUS_RECONNECT).
 */
HC_EXTERN void hc_bus_transport_up(hc_bus *bus);
HC_EXTERN void hc_bus_transport_down(hc_bus *bus, const char *detail);

/* ------------------------------------------------------------ wire format v1 */

/* Bytes an encoded payload may have (PostgreSQL's NOTIFY limit is < 8000). */
#define HC_WIRE_MAX_PAYLOAD 7999
/* Bytes the parser accepts: the server counts the limit in its own encoding,
 * and a client_encoding conversion can make a character up to 4x longer. */
#define HC_WIRE_MAX_RECEIVE 32000
/* An origin is 1-64 bytes of [A-Za-z0-9._-]. */
#define HC_WIRE_ORIGIN_MAX 64
/* The origin of the extension's messages (reserved: no node may use it). */
#define HC_WIRE_DB_ORIGIN "db"

/* The op of a message (its byte on the wire). */
typedef enum hc_wire_op {
    HC_WIRE_TAGS = 't',  /* invalidate tags: at least one arg */
    HC_WIRE_KEYS = 'k',  /* invalidate keys: at least one arg */
    HC_WIRE_FLUSH = 'f', /* flush: no args */
    HC_WIRE_SYNC = 's'   /* a sync token: exactly one arg */
} hc_wire_op;

/*
 * A parsed message.  args[i] points at the NUL-terminated, decoded (%XX
 * unescaped) arg i of arg_len[i] bytes; an arg may decode to bytes that
 * include NUL, hence the lengths.  args and arg_len are NULL when nargs is 0.
 * Filled by hc_wire_parse, which allocates one block for everything
 * (storage_: not for callers); the caller owns it and releases it with
 * hc_wire_msg_clear.  The fields are read-only.
 */
typedef struct hc_wire_msg {
    char origin[HC_WIRE_ORIGIN_MAX + 1];
    hc_wire_op op;
    size_t nargs;
    char **args;
    size_t *arg_len;
    void *storage_;
} hc_wire_msg;

/*
 * Parse payload[0..len): any bytes, not necessarily NUL-terminated (a
 * payload is untrusted input: the parser never reads past len).  HC_OK: *out
 * holds the message (release it with hc_wire_msg_clear).  Otherwise *out is
 * left empty (clearing it is harmless) and err says why:
 *   HC_ERR_INVALID   malformed (docs/PROTOCOL.md), message "malformed payload:
 *                    <why>" (e.g. "not an hc payload", "unknown version",
 *                    "bad origin", "unknown op", "bad % escape", "empty arg");
 *                    also for a NULL payload or a NULL out
 *   HC_ERR_TOO_LARGE longer than HC_WIRE_MAX_RECEIVE
 *   HC_ERR_NOMEM     out of memory.
 * err may be NULL.  Pure and thread-safe (no shared state).
 */
HC_EXTERN hc_status hc_wire_parse(const char *payload, size_t len, hc_wire_msg *out,
                                  hc_error *err);

/* Release what hc_wire_parse allocated and empty *m.  NULL-safe and
 * idempotent; harmless on a message whose parse failed. */
HC_EXTERN void hc_wire_msg_clear(hc_wire_msg *m);

/* Receives each payload hc_wire_encode produces: NUL-terminated, len <=
 * HC_WIRE_MAX_PAYLOAD bytes, valid only until the callback returns.  A
 * return other than HC_OK stops the encoding, which then returns it. */
typedef hc_status (*hc_wire_emit_fn)(void *ctx, const char *payload, size_t len);

/*
 * Encode op with args (C strings, borrowed; escaped as docs/PROTOCOL.md says)
 * from origin into as few payloads as possible, each at most
 * HC_WIRE_MAX_PAYLOAD bytes with the full header, args kept in order and never
 * split, and call emit(ctx, payload, len) for each in order.  args may be NULL
 * when nargs is 0.  Errors (err may be NULL):
 *   HC_ERR_INVALID   NULL emit; origin NULL or not 1-64 bytes of
 *                    [A-Za-z0-9._-]; unknown op; wrong number of args for op
 *                    (t/k: at least 1, f: 0, s: exactly 1); a NULL or empty arg
 *   HC_ERR_TOO_LARGE one arg does not fit in a payload on its own (the caller
 *                    must fall back to a coarser invalidation, e.g. a tag or a
 *                    flush, never truncate)
 *   what emit returned, when it failed.
 * Arguments are all checked first: on HC_ERR_INVALID or HC_ERR_TOO_LARGE
 * nothing was emitted.  Allocates nothing; thread-safe (no shared state).
 */
HC_EXTERN hc_status hc_wire_encode(const char *origin, hc_wire_op op, const char *const *args,
                                   size_t nargs, hc_wire_emit_fn emit, void *ctx, hc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* HYDRACACHE_TRANSPORT_H */
