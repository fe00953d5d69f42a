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
 *  - the PostgreSQL bus (hc_pg_bus_new): LISTEN/NOTIFY through the database
 *    (or, with HC_PG_BUS_WAL, logical replication of the WAL), which also
 *    delivers the invalidations emitted by the hydracache extension's triggers.
 *    See docs/BUS.md for its guarantees and failure behaviour.
 * Further transports plug into the generic bus through hc_transport_ops
 * (transport.h, which this header includes).
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
#include <hydracache/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HC_NODE_ID_MAX 64
#define HC_PG_BUS_DEFAULT_CHANNEL "hydracache"

/* ------------------------------------------------------------- generic bus */

/* hc_bus, the transport interface (hc_transport_ops, hc_bus_new, hc_bus_deliver,
 * hc_bus_transport_up/_down) and the wire codec are in transport.h. */

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

/* ---------------------------------------------------------- PostgreSQL bus */

typedef struct hc_pg_bus hc_pg_bus;

typedef enum hc_pg_bus_mode {
    HC_PG_BUS_THREAD = 0,    /* the bus runs its own listener thread */
    HC_PG_BUS_EVENT_LOOP = 1 /* the application calls hc_pg_bus_poll (see below) */
} hc_pg_bus_mode;

/* How the PostgreSQL bus receives invalidations (docs/BUS.md, "Transports"). */
typedef enum hc_pg_bus_transport {
    HC_PG_BUS_NOTIFY = 0, /* LISTEN/NOTIFY on the channel (default; any wal_level) */
    HC_PG_BUS_WAL = 1     /* logical replication: a temporary slot streamed with pgoutput;
                             needs wal_level = logical, a free replication slot and wal
                             sender, and a role with REPLICATION; the extension must run
                             with hydracache.transport = wal or both */
} hc_pg_bus_transport;

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
    hc_pg_bus_transport transport; /* HC_PG_BUS_NOTIFY unless set */
    /* WAL transport: the publication named to pgoutput (NULL -> "hydracache",
     * 1-63 bytes of [a-z0-9_]).  Invalidations travel as logical decoding
     * messages, which need no table in it; the bus creates it, empty, when it
     * does not exist (that needs CREATE on the database; create it beforehand
     * otherwise).  The channel is the messages' prefix. */
    const char *publication;
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
    int backend_pid;             /* listener's backend (WAL: the walsender), 0 when not connected */
    uint64_t wal_applied_lsn;    /* WAL: stream position applied (and reported flushed) */
    char last_error[256];        /* why the last connection attempt failed or the last
                                    connection was lost ("" if never), e.g. "the WAL
                                    transport needs wal_level = logical (it is replica)" */
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
 * With the WAL transport the token travels as a logical decoding message and
 * the barrier is the LSN its statement returned: complete once the
 * replication stream has been applied up to it (nothing another session
 * writes can complete it early).
 * Synced or timed out: while the bus is not listening (still connecting, or
 * reconnecting after a loss, including one that happens while the token is
 * on its way) it waits for the listener to be back and then (re)issues the
 * token, all within timeout_ms.  HC_OK; HC_TIMEOUT when timeout_ms (< 0:
 * forever) ran out, listening or not (the caches of a bus that is not
 * listening are in bypass, so nothing stale is served meanwhile);
 * HC_ERR_CLOSED when the bus is being freed; HC_ERR_NOMEM; HC_ERR_STATE in
 * event-loop mode (use hc_pg_bus_sync_begin / hc_pg_bus_sync_check there).
 * Thread mode only.
 */
HC_EXTERN hc_status hc_pg_bus_sync(hc_pg_bus *bus, int timeout_ms, hc_error *err);

/*
 * The poll-driven barrier: begin queues a token and returns its ticket
 * (HC_ERR_PG at once when the bus is not listening: retry after it is);
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
