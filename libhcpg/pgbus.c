/*
 * pgbus.c - the PostgreSQL invalidation bus: its public API, the transport
 * ops it plugs into the generic bus, the driver thread/event-loop plumbing,
 * and the sync barrier.  The connection itself is a driver's business
 * (pgnotify.c: LISTEN/NOTIFY); this node's invalidations wait in the publish
 * queue (pubq.c).
 *
 * Design (see docs/BUS.md):
 *  - The driver owns the connection and is run by one thread at a time (the
 *    bus's own thread, or the application's hc_pg_bus_poll), always
 *    non-blocking, so it never blocks the caller.
 *  - Publishing: the cache's publisher hook only appends to the bounded
 *    publish queue and wakes the driver through an eventfd; the driver sends
 *    queued invalidations on its connection, many per statement.  Chosen over
 *    a second mutex-protected publishing connection because (a) a PGconn is
 *    not thread-safe and a synchronous pg_notify on the caller's thread would
 *    block the invalidating caller for a round trip plus the cluster-wide
 *    notify commit lock (or for a TCP timeout when the server is gone), (b)
 *    batching a burst into one statement takes that commit lock once instead
 *    of once per key, (c) sync tokens then travel the same FIFO as the
 *    invalidations before them, and (d) it costs one backend instead of two.
 *  - On connection loss every attached cache is flushed and bypassed
 *    (hc_bus_transport_down) until the listener is active again; reconnects
 *    use capped exponential backoff with jitter.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "alloc.h"
#include "clock.h"
#include "pgbus_int.h"

/* ------------------------------------------------------- driver plumbing */

void hc__pgbus_wake(hc_pg_bus *pb)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the driver will wake. */
    ssize_t w = write(pb->wakefd, &one, sizeof one);
    (void)w;
}

uint64_t hc__pgbus_backoff_ms(hc_pg_bus *pb, unsigned *attempt)
{
    unsigned shift = *attempt < 20 ? *attempt : 20;
    uint64_t d = (uint64_t)pb->backoff_initial_ms << shift;
    if (d > pb->backoff_max_ms) d = pb->backoff_max_ms;
    (*attempt)++;
    pb->rng ^= pb->rng << 13;
    pb->rng ^= pb->rng >> 7;
    pb->rng ^= pb->rng << 17;
    return d / 2 + pb->rng % (d / 2 + 1);
}

/* rearm: while connecting, PQconnectPoll may close the socket and open the
 * next host's/address's, which usually gets the same fd number: the close
 * silently removed it from epoll, so skipping the registration would leave
 * nothing to wake us until the connect deadline. */
void hc__pgbus_watch(hc_pg_bus *pb, int slot, int fd, uint32_t ev, bool rearm)
{
    int other = pb->sock[1 - slot];
    if (!rearm && pb->sock[slot] == fd && pb->sock_ev[slot] == ev) return;
    /* Never drop the other connection's registration of a reused number. */
    if (pb->sock[slot] >= 0 && pb->sock[slot] != fd && pb->sock[slot] != other)
        epoll_ctl(pb->epfd, EPOLL_CTL_DEL, pb->sock[slot], NULL);
    pb->sock[slot] = -1;
    if (fd < 0) return;
    struct epoll_event e = {.events = ev, .data.fd = fd};
    /* The fd may be new, the same, or a reused number of a closed one (which
     * epoll dropped by itself): MOD, else ADD. */
    if (epoll_ctl(pb->epfd, EPOLL_CTL_MOD, fd, &e) != 0) epoll_ctl(pb->epfd, EPOLL_CTL_ADD, fd, &e);
    pb->sock[slot] = fd;
    pb->sock_ev[slot] = ev;
}

/* Library code never prints: server notices on the bus's connections are dropped. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

bool hc__pgbus_connect_start(hc_pg_bus *pb, hc_pg_attempt *a, bool replication, uint64_t now)
{
    /* Defaults before the expanded conninfo, which may override them;
     * replication after it, so that it cannot be turned off. */
    const char *kw[] = {"keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "connect_timeout", "application_name",
                        "dbname", replication ? "replication" : NULL, NULL};
    const char *val[] = {"1", "10", "5", "3", "10", "hydracache-bus", pb->conninfo,
                         "database", NULL};
    a->conn = PQconnectStartParams(kw, val, 1);
    if (a->conn == NULL || PQstatus(a->conn) == CONNECTION_BAD) return false;
    PQsetNoticeProcessor(a->conn, quiet_notice, NULL);
    pb->progress++;
    a->cpoll = PGRES_POLLING_WRITING;
    a->deadline_ms = now + pb->query_timeout_ms;
    hc__pgbus_watch(pb, a->slot, PQsocket(a->conn), EPOLLOUT, true);
    return true;
}

int hc__pgbus_connect_step(hc_pg_bus *pb, hc_pg_attempt *a, uint64_t now, const char **why)
{
    if (now >= a->deadline_ms) {
        *why = "connect timed out";
        return -1;
    }
    short want = a->cpoll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!hc__pgbus_fd_ready(PQsocket(a->conn), want)) return 0;
    a->cpoll = PQconnectPoll(a->conn);
    pb->progress++;
    switch (a->cpoll) {
    case PGRES_POLLING_FAILED:
        *why = PQerrorMessage(a->conn);
        return -1;
    case PGRES_POLLING_OK:
        break;
    default: /* READING / WRITING: the socket may have been replaced (multi-host) */
        hc__pgbus_watch(pb, a->slot, PQsocket(a->conn),
                        a->cpoll == PGRES_POLLING_READING ? EPOLLIN : EPOLLOUT, true);
        return 0;
    }
    PQsetnonblocking(a->conn, 1);
    hc__pgbus_watch(pb, a->slot, PQsocket(a->conn), EPOLLIN, true);
    return 1;
}

bool hc__pgbus_fd_ready(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, 0) > 0;
}

void hc__pgbus_up(hc_pg_bus *pb)
{
    bool reconnect = hc_bus_state_get(pb->bus) == HC_BUS_DISCONNECTED;
    hc_bus_transport_up(pb->bus);
    pthread_mutex_lock(&pb->mu);
    if (reconnect) pb->st.reconnects++;
    pthread_cond_broadcast(&pb->cond);
    pthread_mutex_unlock(&pb->mu);
    pb->progress++;
}

void hc__pgbus_down(hc_pg_bus *pb, bool was_listening, const char *why)
{
    char detail[HC_EVENT_SUBJECT_MAX];
    snprintf(detail, sizeof detail, "%s", why && *why ? why : "connection lost");
    size_t n = strlen(detail);
    while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == ' ')) detail[--n] = '\0';
    /* Bypass first: from here on invalidations may be missed. */
    if (was_listening) hc_bus_transport_down(pb->bus, detail);
    pthread_mutex_lock(&pb->mu);
    hc__pubq_fail_inflight(&pb->q);
    pb->conn_gen++;
    pb->st.backend_pid = 0;
    snprintf(pb->st.last_error, sizeof pb->st.last_error, "%s", detail);
    if (was_listening) pb->st.disconnects++;
    else pb->st.connect_failures++;
    pthread_cond_broadcast(&pb->cond);
    pthread_mutex_unlock(&pb->mu);
    pb->progress++;
}

void hc__pgbus_set_backend(hc_pg_bus *pb, int pid)
{
    pthread_mutex_lock(&pb->mu);
    pb->st.backend_pid = pid;
    pthread_mutex_unlock(&pb->mu);
}

void hc__pgbus_synced(hc_pg_bus *pb, uint64_t seq)
{
    pthread_mutex_lock(&pb->mu);
    if (seq > pb->sync_seen && seq <= pb->q.sync_next) {
        pb->sync_seen = seq;
        pthread_cond_broadcast(&pb->cond);
    }
    pthread_mutex_unlock(&pb->mu);
}

static void drain_wake(hc_pg_bus *pb)
{
    uint64_t v;
    ssize_t r = read(pb->wakefd, &v, sizeof v);
    (void)r;
}

/* All work that can be done now without blocking: repeats while a step
 * moved (e.g. a statement completed, making room for the next). */
static void drive(hc_pg_bus *pb)
{
    drain_wake(pb);
    for (int round = 0; round < 64; round++) {
        uint64_t before = pb->progress;
        pb->driver->step(pb, hc__monotonic_ms());
        if (pb->progress == before) return;
    }
}

static int next_timeout(hc_pg_bus *pb)
{
    uint64_t now = hc__monotonic_ms(), due = pb->driver->due(pb);
    if (due <= now) return 0;
    uint64_t d = due - now;
    return d > 60000 ? 60000 : (int)d;
}

static bool is_stopping(hc_pg_bus *pb)
{
    pthread_mutex_lock(&pb->mu);
    bool stop = pb->stopping;
    pthread_mutex_unlock(&pb->mu);
    return stop;
}

static void *driver_thread(void *arg)
{
    hc_pg_bus *pb = arg;
    while (!is_stopping(pb)) {
        drive(pb);
        struct epoll_event ev[4];
        int n = epoll_wait(pb->epfd, ev, 4, next_timeout(pb));
        (void)n; /* EINTR or events: either way, drive again */
    }
    return NULL;
}

/* ------------------------------------------------------------ transport ops */

static void pg_publish(void *impl, hc_cache *from, hc_inval_kind kind, const char *arg)
{
    hc_pg_bus *pb = impl;
    bool was_empty = false;
    pthread_mutex_lock(&pb->mu);
    hc_status st = HC_OK;
    if (pb->stopping) hc__pubq_drop(&pb->q, from);
    else st = hc__pubq_push(&pb->q, from, kind, arg, &was_empty);
    pthread_mutex_unlock(&pb->mu);
    /* The driver drains the whole queue once woken: one wake per burst, and
     * one after a lost invalidation so that the flush broadcast goes out. */
    if (was_empty || st != HC_OK) hc__pgbus_wake(pb);
}

static void pg_forget(void *impl, hc_cache *c)
{
    hc_pg_bus *pb = impl;
    pthread_mutex_lock(&pb->mu);
    hc__pubq_forget(&pb->q, c);
    pthread_mutex_unlock(&pb->mu);
}

static hc_status pg_start(void *impl, hc_bus *bus, hc_error *err)
{
    hc_pg_bus *pb = impl;
    pb->bus = bus;
    memcpy(pb->node_id, hc_bus_node_id(bus), strlen(hc_bus_node_id(bus)) + 1);
    if (pb->driver->on_sync) hc__bus_set_sync_handler(bus, pb->driver->on_sync);
    if (pb->mode == HC_PG_BUS_THREAD) {
        if (pthread_create(&pb->thread, NULL, driver_thread, pb) != 0)
            return hc_error_set(err, HC_ERR_SYSTEM, "cannot start the bus thread");
        pb->thread_started = true;
    } else {
        hc__pgbus_wake(pb); /* the first poll connects */
    }
    return HC_OK;
}

static void pg_stop(void *impl)
{
    hc_pg_bus *pb = impl;
    pthread_mutex_lock(&pb->mu);
    pb->stopping = true;
    pthread_cond_broadcast(&pb->cond);
    pthread_mutex_unlock(&pb->mu);
    hc__pgbus_wake(pb);
    if (pb->thread_started) {
        pthread_join(pb->thread, NULL);
        pb->thread_started = false;
    }
    /* No driver runs from here on (hc_pg_bus_poll checks stopping). */
    pthread_mutex_lock(&pb->drive_mu);
    pb->driver->close(pb);
    pthread_mutex_unlock(&pb->drive_mu);
    pthread_mutex_lock(&pb->mu);
    hc__pubq_clear(&pb->q);
    pthread_mutex_unlock(&pb->mu);
}

static int pg_fd(void *impl)
{
    return ((hc_pg_bus *)impl)->epfd;
}

static void pg_free(void *impl)
{
    hc_pg_bus *pb = impl;
    if (pb == NULL) return;
    if (pb->drv != NULL) pb->driver->free(pb);
    hc__pubq_destroy(&pb->q);
    if (pb->epfd >= 0) close(pb->epfd);
    if (pb->wakefd >= 0) close(pb->wakefd);
    pthread_mutex_destroy(&pb->mu);
    pthread_mutex_destroy(&pb->drive_mu);
    pthread_cond_destroy(&pb->cond);
    free(pb->conninfo);
    free(pb);
}

static hc_status pg_poll_op(void *impl, hc_error *err)
{
    return hc_pg_bus_poll(impl, err);
}

static const hc_transport_ops PG_OPS = {
    .name = "postgresql",
    .start = pg_start,
    .publish = pg_publish,
    .forget = pg_forget,
    .stop = pg_stop,
    .fd = pg_fd,
    .poll = pg_poll_op,
    .free = pg_free,
};

/* -------------------------------------------------------------- public API */

static hc_status check_config(const hc_pg_bus_config *cfg, hc_error *err)
{
    if (cfg == NULL || cfg->conninfo == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "config with a conninfo is required");
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->conninfo, &msg);
    if (opts == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "bad conninfo: %s", msg ? msg : "out of memory");
        PQfreemem(msg);
        return HC_ERR_INVALID;
    }
    PQconninfoFree(opts);
    const char *ch = cfg->channel ? cfg->channel : HC_PG_BUS_DEFAULT_CHANNEL;
    if (ch[0] == '\0' || strlen(ch) > 63)
        return hc_error_set(err, HC_ERR_INVALID, "channel must be 1-63 bytes");
    if (cfg->mode != HC_PG_BUS_THREAD && cfg->mode != HC_PG_BUS_EVENT_LOOP)
        return hc_error_set(err, HC_ERR_INVALID, "unknown bus mode");
    if (cfg->transport != HC_PG_BUS_NOTIFY && cfg->transport != HC_PG_BUS_WAL)
        return hc_error_set(err, HC_ERR_INVALID, "unknown bus transport");
    const char *pub = cfg->publication ? cfg->publication : HC_PG_BUS_DEFAULT_CHANNEL;
    size_t pl = strlen(pub);
    bool pub_ok = pl >= 1 && pl <= 63;
    for (size_t i = 0; i < pl; i++)
        pub_ok = pub_ok && ((pub[i] >= 'a' && pub[i] <= 'z') || (pub[i] >= '0' && pub[i] <= '9') ||
                            pub[i] == '_');
    if (!pub_ok) return hc_error_set(err, HC_ERR_INVALID, "publication must be 1-63 bytes of [a-z0-9_]");
    return HC_OK;
}

HC_EXTERN hc_pg_bus *hc_pg_bus_new(const hc_pg_bus_config *cfg, hc_error *err)
{
    if (check_config(cfg, err) != HC_OK) return NULL;
    char id[HC_NODE_ID_MAX + 1];
    if (hc__bus_node_id_init(id, cfg->node_id, err) != HC_OK) return NULL;

    hc_pg_bus *pb = hc__calloc(1, sizeof *pb);
    if (pb == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
        return NULL;
    }
    pb->epfd = pb->wakefd = pb->sock[0] = pb->sock[1] = -1;
    pthread_mutex_init(&pb->mu, NULL);
    pthread_mutex_init(&pb->drive_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pb->cond, &ca);
    pthread_condattr_destroy(&ca);

    snprintf(pb->channel, sizeof pb->channel, "%s",
             cfg->channel ? cfg->channel : HC_PG_BUS_DEFAULT_CHANNEL);
    snprintf(pb->publication, sizeof pb->publication, "%s",
             cfg->publication ? cfg->publication : HC_PG_BUS_DEFAULT_CHANNEL);
    pb->mode = cfg->mode;
    pb->driver = cfg->transport == HC_PG_BUS_WAL ? &hc__pg_wal_driver : &hc__pg_notify_driver;
    pb->backoff_initial_ms = cfg->backoff_initial_ms ? cfg->backoff_initial_ms : 50;
    pb->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000;
    if (pb->backoff_max_ms < pb->backoff_initial_ms) pb->backoff_max_ms = pb->backoff_initial_ms;
    pb->health_interval_ms = cfg->health_interval_ms ? cfg->health_interval_ms : 5000;
    pb->query_timeout_ms = cfg->query_timeout_ms ? cfg->query_timeout_ms : 10000;
    hc__pubq_init(&pb->q, cfg->publish_queue_max ? cfg->publish_queue_max : 65536);
    pb->st.notify_queue_usage = -1.0;
    pb->rng = hc__bus_random64() | 1;
    snprintf(pb->epoch, sizeof pb->epoch, "%016" PRIx64, hc__bus_random64());
    pb->conninfo = hc__strdup(cfg->conninfo);
    pb->epfd = epoll_create1(EPOLL_CLOEXEC);
    pb->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pb->conninfo == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
        pg_free(pb);
        return NULL;
    }
    if (pb->driver->init(pb, err) != HC_OK) {
        pg_free(pb);
        return NULL;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.fd = pb->wakefd};
    if (pb->epfd < 0 || pb->wakefd < 0 || epoll_ctl(pb->epfd, EPOLL_CTL_ADD, pb->wakefd, &e) != 0) {
        hc_error_set(err, HC_ERR_SYSTEM, "cannot create the bus's epoll/eventfd: %s",
                     strerror(errno));
        pg_free(pb);
        return NULL;
    }
    /* hc_bus_new calls pg_start (which starts the thread) and, on failure,
     * pg_free. */
    if (hc_bus_new(id, &PG_OPS, pb, err) == NULL) return NULL;
    return pb;
}

HC_EXTERN void hc_pg_bus_free(hc_pg_bus *pb)
{
    if (pb != NULL) hc_bus_free(pb->bus); /* stops, detaches, then pg_free */
}

HC_EXTERN hc_bus *hc_pg_bus_bus(hc_pg_bus *pb)
{
    return pb ? pb->bus : NULL;
}

HC_EXTERN hc_status hc_pg_bus_attach(hc_pg_bus *pb, hc_cache *c, hc_error *err)
{
    if (pb == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    return hc_bus_attach(pb->bus, c, err);
}

HC_EXTERN void hc_pg_bus_detach(hc_pg_bus *pb, hc_cache *c)
{
    if (pb != NULL) hc_bus_detach(pb->bus, c);
}

HC_EXTERN int hc_pg_bus_fd(hc_pg_bus *pb)
{
    return pb ? pb->epfd : -1;
}

HC_EXTERN hc_status hc_pg_bus_poll(hc_pg_bus *pb, hc_error *err)
{
    if (pb == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    if (pb->mode != HC_PG_BUS_EVENT_LOOP)
        return hc_error_set(err, HC_ERR_STATE, "the bus runs its own thread");
    if (pthread_mutex_trylock(&pb->drive_mu) != 0)
        return hc_error_set(err, HC_ERR_BUSY, "hc_pg_bus_poll is running on another thread");
    bool stop = is_stopping(pb);
    if (!stop) drive(pb);
    pthread_mutex_unlock(&pb->drive_mu);
    return stop ? hc_error_set(err, HC_ERR_CLOSED, "bus is stopping") : HC_OK;
}

HC_EXTERN int hc_pg_bus_next_timeout_ms(hc_pg_bus *pb)
{
    if (pb == NULL || pb->mode != HC_PG_BUS_EVENT_LOOP) return -1;
    if (pthread_mutex_trylock(&pb->drive_mu) != 0) return 0;
    int t = next_timeout(pb);
    pthread_mutex_unlock(&pb->drive_mu);
    return t;
}

/* ------------------------------------------------------------ sync barrier */

/* With mu held: queue a token, or fail (stopping, not listening). */
static hc_status do_sync_begin(hc_pg_bus *pb, uint64_t *ticket, bool *was_empty, hc_error *err)
{
    if (pb->stopping) return hc_error_set(err, HC_ERR_CLOSED, "bus is stopping");
    hc_bus_state state = hc_bus_state_get(pb->bus);
    if (state != HC_BUS_LISTENING)
        return hc_error_set(err, HC_ERR_PG, "bus is not listening (%s)", hc_bus_state_str(state));
    uint64_t seq;
    if (hc__pubq_push_sync(&pb->q, &seq, was_empty) != HC_OK)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory queueing sync token");
    /* The ticket carries the connection generation: a loss fails the wait. */
    *ticket = (pb->conn_gen << 40) | seq;
    return HC_OK;
}

HC_EXTERN hc_status hc_pg_bus_sync_begin(hc_pg_bus *pb, uint64_t *ticket, hc_error *err)
{
    if (pb == NULL || ticket == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL argument");
    bool was_empty = false;
    pthread_mutex_lock(&pb->mu);
    hc_status st = do_sync_begin(pb, ticket, &was_empty, err);
    pthread_mutex_unlock(&pb->mu);
    if (was_empty) hc__pgbus_wake(pb);
    return st;
}

/* With mu held. */
static hc_status do_sync_check(hc_pg_bus *pb, uint64_t ticket, hc_error *err)
{
    uint64_t seq = ticket & ((UINT64_C(1) << 40) - 1), gen = ticket >> 40;
    if (pb->sync_seen >= seq && gen == (pb->conn_gen & 0xffffff)) return HC_OK;
    if (pb->stopping) return hc_error_set(err, HC_ERR_CLOSED, "bus is stopping");
    if (gen != (pb->conn_gen & 0xffffff))
        return hc_error_set(err, HC_ERR_PG, "bus connection lost before the sync token arrived");
    return HC_TIMEOUT;
}

HC_EXTERN hc_status hc_pg_bus_sync_check(hc_pg_bus *pb, uint64_t ticket, hc_error *err)
{
    if (pb == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    pthread_mutex_lock(&pb->mu);
    hc_status st = do_sync_check(pb, ticket, err);
    if (st == HC_OK) pb->st.syncs++;
    pthread_mutex_unlock(&pb->mu);
    if (st == HC_TIMEOUT) hc_error_set(err, HC_TIMEOUT, "sync token not received yet");
    return st;
}

/* With mu held: wait for a broadcast or the deadline; false when it passed. */
static bool wait_until(hc_pg_bus *pb, int timeout_ms, const struct timespec *dl)
{
    if (timeout_ms < 0) {
        pthread_cond_wait(&pb->cond, &pb->mu);
        return true;
    }
    return pthread_cond_timedwait(&pb->cond, &pb->mu, dl) != ETIMEDOUT;
}

/* Synced or timed out: while the bus is not listening (connecting, or
 * reconnecting after a loss, also one that happens while a token is on its
 * way) wait for the listener to be back, then (re)issue the token. */
HC_EXTERN hc_status hc_pg_bus_sync(hc_pg_bus *pb, int timeout_ms, hc_error *err)
{
    if (pb == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    if (pb->mode != HC_PG_BUS_THREAD)
        return hc_error_set(err, HC_ERR_STATE,
                            "hc_pg_bus_sync needs thread mode; use hc_pg_bus_sync_begin/check");
    struct timespec dl = hc__deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    hc_status st = HC_TIMEOUT;
    bool have_ticket = false, was_empty = false, expired = false;
    uint64_t ticket = 0;
    pthread_mutex_lock(&pb->mu);
    while (!expired) {
        if (pb->stopping) {
            st = hc_error_set(err, HC_ERR_CLOSED, "bus is stopping");
            break;
        }
        if (!have_ticket && hc_bus_state_get(pb->bus) == HC_BUS_LISTENING) {
            st = do_sync_begin(pb, &ticket, &was_empty, err);
            if (st != HC_OK) break;
            have_ticket = true;
            if (was_empty) hc__pgbus_wake(pb);
        }
        if (have_ticket) {
            st = do_sync_check(pb, ticket, err);
            if (st == HC_OK || st == HC_ERR_CLOSED) break;
            if (st == HC_ERR_PG) {
                have_ticket = false; /* lost on the way: wait for the listener again */
                continue;
            }
        }
        expired = !wait_until(pb, timeout_ms, &dl);
    }
    if (expired && have_ticket) st = do_sync_check(pb, ticket, err);
    if (st == HC_OK) pb->st.syncs++;
    pthread_mutex_unlock(&pb->mu);
    if (st != HC_OK && st != HC_ERR_CLOSED && st != HC_ERR_NOMEM) {
        st = HC_TIMEOUT;
        hc_error_set(err, HC_TIMEOUT, "not synced in %d ms (bus %s)", timeout_ms,
                     hc_bus_state_str(hc_pg_bus_state(pb)));
    }
    return st;
}

HC_EXTERN hc_status hc_pg_bus_wait_state(hc_pg_bus *pb, hc_bus_state want, int timeout_ms)
{
    if (pb == NULL) return HC_ERR_INVALID;
    if (pb->mode != HC_PG_BUS_THREAD) return HC_ERR_STATE;
    struct timespec dl = hc__deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&pb->mu);
    hc_bus_state now;
    while ((now = hc_bus_state_get(pb->bus)) != want && !pb->stopping)
        if (!wait_until(pb, timeout_ms, &dl)) break;
    now = hc_bus_state_get(pb->bus);
    hc_status st = now == want ? HC_OK : pb->stopping ? HC_ERR_CLOSED : HC_TIMEOUT;
    pthread_mutex_unlock(&pb->mu);
    return st;
}

HC_EXTERN hc_bus_state hc_pg_bus_state(hc_pg_bus *pb)
{
    return pb ? hc_bus_state_get(pb->bus) : HC_BUS_NONE;
}

HC_EXTERN void hc_pg_bus_get_stats(hc_pg_bus *pb, hc_pg_bus_stats *out)
{
    if (out == NULL) return;
    memset(out, 0, sizeof *out);
    if (pb == NULL) return;
    pthread_mutex_lock(&pb->mu);
    *out = pb->st;
    out->published = pb->q.published;
    out->publish_failures = pb->q.publish_failures;
    out->flush_broadcasts = pb->q.flush_broadcasts;
    out->queue_len = pb->q.inval;
    pthread_mutex_unlock(&pb->mu);
    out->state = hc_bus_state_get(pb->bus);
    hc__bus_counters c;
    hc__bus_get_counters(pb->bus, &c);
    out->received = c.received;
    out->malformed = c.malformed;
    out->own_ignored = c.own_ignored;
}

HC_EXTERN const char *hc_pg_bus_node_id(const hc_pg_bus *pb)
{
    return pb ? pb->node_id : NULL;
}
