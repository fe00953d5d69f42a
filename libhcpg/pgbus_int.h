/*
 * pgbus_int.h (private) - the PostgreSQL bus object shared by its API
 * (pgbus.c) and its connection drivers (pgnotify.c: LISTEN/NOTIFY).
 *
 * One driver owns the connection(s); it is run by one thread at a time (the
 * bus's thread, or the application's hc_pg_bus_poll under drive_mu), always
 * non-blocking.  The bus state (connecting / listening / disconnected) lives
 * in the generic bus only (hc_bus_state_get); pb->cond is broadcast after
 * every change so that waiters re-read it.
 *
 * Locking: pb->mu guards the fields under "guarded by mu" and is never held
 * across a libpq call or a call that takes the generic bus's lock except
 * hc_bus_state_get (lock order: pb->mu, then bus->mu).
 */
#ifndef HC_PGBUS_INT_H
#define HC_PGBUS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "bus_int.h"
#include "pubq.h"

#define HC_PGBUS_BATCH_MAX_ITEMS 1024
#define HC_PGBUS_BATCH_MAX_BYTES (512 * 1024)

typedef struct hc_pg_driver {
    const char *name;
    /* Allocate/free the driver's state (pb->drv). */
    hc_status (*init)(hc_pg_bus *pb, hc_error *err);
    void (*free)(hc_pg_bus *pb);
    /* One non-blocking step; bumps pb->progress whenever it moved. */
    void (*step)(hc_pg_bus *pb, uint64_t now);
    /* Absolute time (hc__monotonic_ms) at which step is due without I/O. */
    uint64_t (*due)(hc_pg_bus *pb);
    /* Close every connection (the bus is stopping); no reconnect. */
    void (*close)(hc_pg_bus *pb);
    /* Sync messages delivered by the generic bus (NULL: not token-based). */
    hc__bus_sync_fn on_sync;
} hc_pg_driver;

extern const hc_pg_driver hc__pg_notify_driver;
extern const hc_pg_driver hc__pg_wal_driver;

struct hc_pg_bus {
    hc_bus *bus;
    /* configuration (immutable after new) */
    char *conninfo;
    char channel[64];
    char publication[64]; /* WAL driver */
    char node_id[HC_NODE_ID_MAX + 1];
    char epoch[17]; /* sync token prefix: unique per bus instance */
    hc_pg_bus_mode mode;
    unsigned backoff_initial_ms, backoff_max_ms, health_interval_ms, query_timeout_ms;
    const hc_pg_driver *driver;
    int epfd, wakefd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t drive_mu;

    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    hc_pubq q;
    bool stopping;
    uint64_t conn_gen; /* bumped on every loss of a listening connection */
    uint64_t sync_seen;
    hc_pg_bus_stats st; /* disconnects, reconnects, connect_failures, syncs,
                           notify_queue_usage, backend_pid (the rest is derived) */

    /* driver only */
    void *drv;       /* the driver's own state */
    int sock[2];     /* registered in epfd, -1 if none (one per connection) */
    uint32_t sock_ev[2];
    uint64_t rng;
    uint64_t progress; /* bumped whenever the driver moved; drive() loops on it */
};

/* Wake the driver (eventfd). */
void hc__pgbus_wake(hc_pg_bus *pb);
/* Capped exponential backoff with jitter in [d/2, d]; bumps *attempt.  Driver only. */
uint64_t hc__pgbus_backoff_ms(hc_pg_bus *pb, unsigned *attempt);
/* Watch fd for ev in the bus's epoll set as connection `slot` (0 or 1; fd < 0:
 * nothing).  rearm: register even when fd and mask look unchanged (a closed
 * and reopened fd number). */
void hc__pgbus_watch(hc_pg_bus *pb, int slot, int fd, uint32_t ev, bool rearm);

/* A non-blocking connection attempt (PQconnectStartParams + PQconnectPoll)
 * whose socket is watched as `slot`. */
typedef struct hc_pg_attempt {
    PGconn *conn;
    PostgresPollingStatusType cpoll;
    uint64_t deadline_ms;
    int slot;
} hc_pg_attempt;
/* Start connecting with the bus's conninfo and its defaults (replication:
 * a logical replication connection, replication=database).  false when it
 * failed at once (a->conn may hold the error, or be NULL: out of memory). */
bool hc__pgbus_connect_start(hc_pg_bus *pb, hc_pg_attempt *a, bool replication, uint64_t now);
/* One step: 1 connected (non-blocking mode, socket watched for input), 0 in
 * progress, -1 failed or timed out (*why set). */
int hc__pgbus_connect_step(hc_pg_bus *pb, hc_pg_attempt *a, uint64_t now, const char **why);
/* Nonzero when fd is ready for ev now (poll with a zero timeout). */
bool hc__pgbus_fd_ready(int fd, short ev);

/* The listener is active: caches leave bypass, waiters wake.  Driver only. */
void hc__pgbus_up(hc_pg_bus *pb);
/* The listening connection was lost (was_listening) or an attempt failed:
 * bypass (first), fail the batch in flight, count, wake waiters. */
void hc__pgbus_down(hc_pg_bus *pb, bool was_listening, const char *why);
/* Record the listener's backend pid (0: none). */
void hc__pgbus_set_backend(hc_pg_bus *pb, int pid);
/* Sync barrier completed up to seq (tokens <= seq have been received). */
void hc__pgbus_synced(hc_pg_bus *pb, uint64_t seq);

#endif
