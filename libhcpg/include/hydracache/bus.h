/*
 * hydracache/bus.h - the invalidation bus: caches in one process or in many
 * processes tell each other which keys, tags or whole caches became invalid.
 * Values never travel; only invalidations do (wire format v1,
 * docs/PROTOCOL.md).
 *
 * Model.  A bus is one *node* with a node id (1-64 bytes of [A-Za-z0-9._-],
 * random 64-bit hex unless given).  Caches attach to a bus (a cache to at
 * most one bus at a time).  A local hc_invalidate_key / hc_remove /
 * hc_invalidate_tag / hc_flush on an attached cache is applied at once to the
 * other caches attached to the same bus (origin HC_ORIGIN_BUS) and handed to
 * the bus's transport, which carries it to other nodes.  Messages a node
 * receives are applied to every cache attached to it, except its own echoes
 * (the sending process already applied them).  The PostgreSQL bus recognises
 * its echoes by the sending backend (its own connection), so node ids are
 * labels and two processes sharing one still hear each other; transports
 * that cannot tell the sender fall back to the origin: a message carrying
 * this node's id is taken as its own.
 *
 * Two buses come with the library:
 *  - the in-process bus (hc_local_bus_new): several caches in one process;
 *  - the PostgreSQL bus (hc_pg_bus_new): LISTEN/NOTIFY through the database,
 *    which also delivers the invalidations emitted by the hydracache extension's
 *    triggers.  See docs/BUS.md for its guarantees and failure behaviour.
 * Further transports plug into the generic bus through hc_transport_ops.
 *
 * Threading: every function may be called from any thread, except the *_free
 * functions (once, after every other call on that bus has returned) and where
 * a function says otherwise.  See docs/BUS.md.
 */
#ifndef HYDRACACHE_BUS_H
#define HYDRACACHE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hydracache/cache.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HC_NODE_ID_MAX 64
#define HC_PG_BUS_DEFAULT_CHANNEL "hydracache"

/* ------------------------------------------------------------- generic bus */

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

/*
 * The in-process bus: caches attached to it invalidate each other; nothing
 * leaves the process.  Attached caches report bus state HC_BUS_LOCAL and are
 * never in bypass.
 */
HC_EXTERN hc_bus *hc_local_bus_new(const char *node_id, hc_error *err);

/*
 * Stops the transport, detaches every cache (as hc_bus_detach: each is
 * flushed), frees.
 * NULL-safe.  Must not race with other calls on this bus.
 */
HC_EXTERN void hc_bus_free(hc_bus *bus);

/*
 * Attach cache c (borrowed; must outlive its attachment).  Installs the
 * cache's publisher hook (HC_ERR_BUSY when the cache already has one, e.g. it
 * is attached to another bus) and flushes c, since it may hold entries that
 * missed invalidations ("listen first, then flush, then serve").  While the
 * transport is not up (e.g. PostgreSQL LISTEN not yet active) c is put in
 * bypass: loads go to the source and nothing is stored.
 */
HC_EXTERN hc_status hc_bus_attach(hc_bus *bus, hc_cache *c, hc_error *err);

/*
 * Detach c: its invalidations are no longer published and it receives none.
 * Returns once no bus callback uses c.  c is always flushed (loads in flight
 * are not stored either), since no invalidation can reach what it holds from
 * now on; it leaves bypass and reports HC_BUS_NONE, serving as an unattached
 * cache.  No-op when c is not attached.  Call before hc_cache_free.
 */
HC_EXTERN void hc_bus_detach(hc_bus *bus, hc_cache *c);

/* Node id of this bus (static for the bus's lifetime). */
HC_EXTERN const char *hc_bus_node_id(const hc_bus *bus);
/* Number of attached caches. */
HC_EXTERN size_t hc_bus_cache_count(hc_bus *bus);
/* HC_BUS_LOCAL, HC_BUS_CONNECTING, HC_BUS_LISTENING or HC_BUS_DISCONNECTED. */
HC_EXTERN hc_bus_state hc_bus_state_get(hc_bus *bus);

/*
 * How full the transport's notification queue is, 0..1, as it last reported
 * (the PostgreSQL bus: pg_notification_queue_usage(), probed every
 * health_interval_ms); -1 when unknown (no probe yet, a transport without
 * such a queue, NULL bus).  Thread-safe.
 */
HC_EXTERN double hc_bus_queue_usage(hc_bus *bus);

/* The transport's fd / poll (-1 / HC_ERR_STATE when it has none). */
HC_EXTERN int hc_bus_fd(hc_bus *bus);
HC_EXTERN hc_status hc_bus_poll(hc_bus *bus, hc_error *err);

/* ------------------------------------------------ for transport authors */

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

/* ---------------------------------------------------------- PostgreSQL bus */

typedef struct hc_pg_bus hc_pg_bus;

typedef enum hc_pg_bus_mode {
    HC_PG_BUS_THREAD = 0,    /* the bus runs its own listener thread */
    HC_PG_BUS_EVENT_LOOP = 1 /* the application calls hc_pg_bus_poll (see below) */
} hc_pg_bus_mode;

typedef struct hc_pg_bus_config {
    /* libpq conninfo (key=value or URI) of the bus's own connection; required.
     * Not a transaction-mode pooler: LISTEN needs a session.  keepalives=1,
     * keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
     * connect_timeout=10 and application_name=hydracache-bus are defaults the
     * conninfo may override.  Multi-host conninfos (host=a,b, several addresses
     * of one name) are one attempt bounded by query_timeout_ms as a whole.
     * Host names are resolved with a blocking getaddrinfo on the thread that
     * connects (the bus thread, or the caller of hc_pg_bus_poll in event-loop
     * mode); use hostaddr= or a local resolver where a slow DNS matters. */
    const char *conninfo;
    const char *channel;          /* NULL -> "hydracache" (1-63 bytes) */
    const char *node_id;          /* NULL -> random 64-bit hex; "db" is reserved */
    hc_pg_bus_mode mode;
    unsigned backoff_initial_ms;  /* 0 -> 50: first reconnect delay */
    unsigned backoff_max_ms;      /* 0 -> 5000: cap of the doubling delay */
    unsigned health_interval_ms;  /* 0 -> 5000: pg_notification_queue_usage() probe */
    unsigned query_timeout_ms;    /* 0 -> 10000: a statement (or a connection attempt,
                                     all hosts of a multi-host conninfo together) taking
                                     longer means the connection is dead */
    size_t publish_queue_max;     /* 0 -> 65536 queued invalidations */
} hc_pg_bus_config;

typedef struct hc_pg_bus_stats {
    hc_bus_state state;
    uint64_t published;          /* invalidations sent (committed pg_notify) */
    uint64_t publish_failures;   /* invalidations not sent (replaced by a flush broadcast) */
    uint64_t flush_broadcasts;   /* flushes sent to cover failed publishes */
    uint64_t received;           /* notifications on the channel */
    uint64_t malformed;          /* ... of which malformed/foreign (ignored) */
    uint64_t own_ignored;        /* ... of which echoes of this node (ignored) */
    uint64_t disconnects;
    uint64_t reconnects;
    uint64_t connect_failures;   /* failed connection attempts */
    uint64_t syncs;              /* completed hc_pg_bus_sync barriers */
    size_t queue_len;            /* invalidations waiting to be sent */
    double notify_queue_usage;   /* last pg_notification_queue_usage(), -1 unknown */
    int backend_pid;             /* listener's backend, 0 when not connected */
} hc_pg_bus_stats;

/*
 * Create a PostgreSQL bus.  cfg and its strings are copied.  The connection
 * is made asynchronously: in thread mode by the bus's thread, started here;
 * in event-loop mode by hc_pg_bus_poll (which may block in getaddrinfo while
 * it starts a connection to a host name: see conninfo).  Until LISTEN is active attached
 * caches are in bypass.  NULL on error: HC_ERR_INVALID (NULL cfg/conninfo,
 * unparsable conninfo, bad channel or node id), HC_ERR_NOMEM, HC_ERR_SYSTEM.
 */
HC_EXTERN hc_pg_bus *hc_pg_bus_new(const hc_pg_bus_config *cfg, hc_error *err);

/* Stop (joins the thread), detach every cache (each is flushed, as
 * hc_bus_detach), close the connection.  Pending
 * invalidations not yet sent are dropped (counted as publish failures).
 * NULL-safe; must not race with other calls on this bus. */
HC_EXTERN void hc_pg_bus_free(hc_pg_bus *bus);

/* The generic bus inside (for hc_bus_* calls); owned by the pg bus. */
HC_EXTERN hc_bus *hc_pg_bus_bus(hc_pg_bus *bus);

/* hc_bus_attach / hc_bus_detach on the pg bus.  Several caches per bus. */
HC_EXTERN hc_status hc_pg_bus_attach(hc_pg_bus *bus, hc_cache *c, hc_error *err);
HC_EXTERN void hc_pg_bus_detach(hc_pg_bus *bus, hc_cache *c);

/*
 * Event-loop mode (like PQsocket / PQconsumeInput): wait until hc_pg_bus_fd
 * is readable (POLLIN) or hc_pg_bus_next_timeout_ms has elapsed, then call
 * hc_pg_bus_poll, which does all pending work without blocking: connecting,
 * LISTEN, reading notifications and applying them, sending queued
 * invalidations, the health probe, reconnecting.  The fd is stable for the
 * bus's lifetime (an epoll fd watching the connection's socket and a wake-up
 * eventfd), so it need not be re-registered after a reconnect.
 * hc_pg_bus_poll must not be called from two threads at once (HC_ERR_BUSY);
 * in thread mode it returns HC_ERR_STATE.  It returns HC_OK even when the
 * connection was lost (that is handled: bypass + reconnect); errors are only
 * misuse.  next_timeout_ms: milliseconds until poll is due without I/O, -1 for
 * none, 0 for now.
 */
HC_EXTERN int hc_pg_bus_fd(hc_pg_bus *bus);
HC_EXTERN hc_status hc_pg_bus_poll(hc_pg_bus *bus, hc_error *err);
HC_EXTERN int hc_pg_bus_next_timeout_ms(hc_pg_bus *bus);

/*
 * Barrier: publish a sync token ("hc1 <node> s <token>", its own autocommit
 * statement) and wait until this bus's listener has received it from its own
 * backend (a token NOTIFYed by another connection is ignored).  PostgreSQL
 * delivers notifications in commit order, so every invalidation committed
 * before this call (by any process, trigger or pg_notify) has then been
 * applied to every attached cache: read-your-writes across processes.  Cost:
 * one round trip plus one commit (which takes the cluster-wide notify lock).
 * HC_OK; HC_TIMEOUT when timeout_ms (< 0: forever) ran out; HC_ERR_PG when
 * the bus is not listening or the connection was lost meanwhile (the caches
 * are then in bypass, so nothing stale is served either); HC_ERR_CLOSED when
 * the bus is being freed; HC_ERR_STATE in event-loop mode (use
 * hc_pg_bus_sync_begin / hc_pg_bus_sync_check there).  Thread mode only.
 */
HC_EXTERN hc_status hc_pg_bus_sync(hc_pg_bus *bus, int timeout_ms, hc_error *err);

/*
 * The poll-driven barrier: begin queues a token and returns its ticket;
 * check returns HC_OK once the listener received it, HC_TIMEOUT while it has
 * not yet, HC_ERR_PG if the connection was lost in between.  Any mode.
 */
HC_EXTERN hc_status hc_pg_bus_sync_begin(hc_pg_bus *bus, uint64_t *ticket, hc_error *err);
HC_EXTERN hc_status hc_pg_bus_sync_check(hc_pg_bus *bus, uint64_t ticket, hc_error *err);

/*
 * Wait until the bus reaches state st (e.g. HC_BUS_LISTENING) or timeout_ms
 * (< 0: forever) runs out: HC_OK or HC_TIMEOUT.  Thread mode only
 * (HC_ERR_STATE otherwise).
 */
HC_EXTERN hc_status hc_pg_bus_wait_state(hc_pg_bus *bus, hc_bus_state st, int timeout_ms);

HC_EXTERN hc_bus_state hc_pg_bus_state(hc_pg_bus *bus);
/* Snapshot of the counters; each is exact. */
HC_EXTERN void hc_pg_bus_get_stats(hc_pg_bus *bus, hc_pg_bus_stats *out);
HC_EXTERN const char *hc_pg_bus_node_id(const hc_pg_bus *bus);

#ifdef __cplusplus
}
#endif

#endif /* HYDRACACHE_BUS_H */
