/*
 * pgbus.c - the PostgreSQL invalidation bus: one libpq connection that
 * LISTENs on the channel, applies what arrives, and publishes this node's
 * invalidations with pg_notify.
 *
 * Design (see docs/BUS.md):
 *  - One connection, driven by one thread at a time (the bus's own thread, or
 *    the application's hc_pg_bus_poll), always in non-blocking mode, so the
 *    driver never blocks: connect with PQconnectStartParams/PQconnectPoll,
 *    statements with PQsendQuery*, input with PQconsumeInput.
 *  - Publishing: the cache's publisher hook only appends to a bounded queue
 *    and wakes the driver through an eventfd; the driver sends queued
 *    invalidations on the listener connection, many per statement.  Chosen
 *    over a second mutex-protected publishing connection because (a) a PGconn
 *    is not thread-safe and a synchronous pg_notify on the caller's thread
 *    would block the invalidating caller for a round trip plus the
 *    cluster-wide notify commit lock (or for a TCP timeout when the server is
 *    gone), (b) batching a burst into one statement takes that commit lock
 *    once instead of once per key (SPEC section 10), (c) sync tokens then
 *    travel the same FIFO as the invalidations before them, and (d) it costs
 *    one backend instead of two.
 *  - A failed publish (queue full, statement error, connection lost with the
 *    statement in flight) cannot be retried precisely, so it is replaced by a
 *    flush broadcast ("hc1 <node> f") sent as soon as possible: the other
 *    nodes over-invalidate instead of keeping a stale entry.
 *  - On connection loss every attached cache is flushed and bypassed
 *    (hc_bus_transport_down) until a new LISTEN is active; reconnects use
 *    capped exponential backoff with jitter.
 *  - The driver never opens a transaction: every statement is autocommit.
 *
 * Locking: pb->mu guards the queue, sync state, state and stats (never held
 * across a libpq call or a bus call that takes bus->mu).  Fields under
 * "driver only" are touched by the driving thread alone (drive_mu makes
 * concurrent hc_pg_bus_poll calls fail instead of racing).
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

#include "bus_internal.h"
#include "clock.h"
#include "wire.h"

#define BATCH_MAX_ITEMS 1024
#define BATCH_MAX_BYTES (512 * 1024)

typedef struct pub_item {
    struct pub_item *next;
    hc_cache *from;   /* NULL once forgotten, or for bus-generated items */
    hc_wire_op op;
    uint64_t sync_seq; /* HC_WIRE_SYNC only */
    char arg[];        /* key or tag; empty for flush and sync */
} pub_item;

typedef enum phase {
    PH_WAIT,        /* not connected; next attempt at next_connect_ms */
    PH_CONNECTING,  /* PQconnectPoll in progress */
    PH_LISTEN_SENT, /* connected, LISTEN in flight */
    PH_READY        /* LISTEN active */
} phase;

typedef enum query_kind { Q_NONE, Q_LISTEN, Q_PUBLISH, Q_HEALTH } query_kind;

struct hc_pg_bus {
    hc_bus *bus;
    /* configuration (immutable after new) */
    char *conninfo;
    char channel[64];
    char node_id[HC_NODE_ID_MAX + 1];
    char epoch[17]; /* sync token prefix: unique per bus instance */
    hc_pg_bus_mode mode;
    unsigned backoff_initial_ms, backoff_max_ms, health_interval_ms, query_timeout_ms;
    size_t queue_max;
    int epfd, wakefd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t drive_mu;

    /* guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pub_item *q_head, *q_tail;
    size_t q_inval; /* queued invalidations (sync items are not bounded) */
    pub_item *inflight;
    bool inflight_flush; /* the in-flight statement carries a flush broadcast */
    bool need_flush;
    bool stopping;
    hc_bus_state state;
    uint64_t conn_gen; /* bumped on every loss of a listening connection */
    uint64_t sync_next, sync_seen;
    hc_pg_bus_stats st;

    /* driver only */
    PGconn *conn;
    int sock;          /* registered in epfd, -1 if none */
    uint32_t sock_ev;
    PostgresPollingStatusType cpoll;
    phase ph;
    query_kind q;
    bool q_ok;
    char q_err[HC_ERROR_MSG_MAX];
    uint64_t q_started_ms, next_connect_ms, connect_deadline_ms, next_health_ms;
    uint64_t next_publish_ms;
    unsigned attempt, publish_attempt;
    uint64_t rng;
    uint64_t progress; /* bumped whenever the driver moved; drive() loops on it */
    bool delivering_self; /* the payload being delivered was NOTIFYed by our backend */
    char *listen_sql;
};

static uint64_t now_ms(void)
{
    return hc__monotonic_ms();
}

static void wake(hc_pg_bus *pb)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the driver will wake. */
    ssize_t w = write(pb->wakefd, &one, sizeof one);
    (void)w;
}

/* Capped exponential backoff with jitter in [d/2, d]. */
static uint64_t backoff_ms(hc_pg_bus *pb, unsigned *attempt)
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

/* ------------------------------------------------------------ socket watch */

/* rearm: register even when fd and mask look unchanged.  While connecting,
 * PQconnectPoll may close the socket and open the next host's/address's,
 * which usually gets the same fd number: the close silently removed it from
 * epoll, so skipping the registration would leave nothing to wake us until
 * the connect deadline. */
static void watch_socket(hc_pg_bus *pb, int fd, uint32_t ev, bool rearm)
{
    if (!rearm && pb->sock == fd && pb->sock_ev == ev) return;
    if (pb->sock >= 0 && pb->sock != fd) epoll_ctl(pb->epfd, EPOLL_CTL_DEL, pb->sock, NULL);
    pb->sock = -1;
    if (fd < 0) return;
    struct epoll_event e = {.events = ev, .data.fd = fd};
    /* The fd may be new, the same, or a reused number of a closed one (which
     * epoll dropped by itself): MOD, else ADD. */
    if (epoll_ctl(pb->epfd, EPOLL_CTL_MOD, fd, &e) != 0) epoll_ctl(pb->epfd, EPOLL_CTL_ADD, fd, &e);
    pb->sock = fd;
    pb->sock_ev = ev;
}

static bool fd_ready(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, 0) > 0;
}

/* --------------------------------------------------------------- the queue */

static void item_free_list(pub_item *it)
{
    while (it) {
        pub_item *n = it->next;
        free(it);
        it = n;
    }
}

/* Count invalidation items of list as failed, with mu held. */
static void do_fail_items(hc_pg_bus *pb, pub_item *list)
{
    for (pub_item *it = list; it; it = it->next) {
        if (it->op == HC_WIRE_SYNC) continue;
        pb->st.publish_failures++;
        pb->need_flush = true;
        if (it->from) hc_cache_bus_count(it->from, HC_BUSCTR_PUBLISH_FAILURES, 1);
    }
}

/* The in-flight statement failed or may not have committed: its
 * invalidations (and its flush broadcast) are replaced by a flush; mu held. */
static void do_fail_inflight(hc_pg_bus *pb)
{
    do_fail_items(pb, pb->inflight);
    if (pb->inflight_flush) pb->need_flush = true;
    /* Sync tokens go back to the head of the queue: sent later they still
     * prove everything committed before their sync call (after a connection
     * loss their waiters fail on the generation anyway). */
    pub_item *first = NULL, *last = NULL;
    for (pub_item *it = pb->inflight, *next; it; it = next) {
        next = it->next;
        if (it->op != HC_WIRE_SYNC) {
            free(it);
            continue;
        }
        it->next = NULL;
        if (last) last->next = it;
        else first = it;
        last = it;
    }
    if (first != NULL) {
        last->next = pb->q_head;
        if (pb->q_head == NULL) pb->q_tail = last;
        pb->q_head = first;
    }
    pb->inflight = NULL;
    pb->inflight_flush = false;
}

static void pg_publish(void *impl, hc_cache *from, hc_inval_kind kind, const char *arg)
{
    hc_pg_bus *pb = impl;
    hc_wire_op op = kind == HC_INVAL_KEY ? HC_WIRE_KEYS : kind == HC_INVAL_TAG ? HC_WIRE_TAGS
                                                                               : HC_WIRE_FLUSH;
    if (op == HC_WIRE_FLUSH || arg == NULL) arg = "";
    size_t len = strlen(arg);
    pub_item *it = NULL;
    /* Empty key/tag cannot be encoded (args are never empty): flush instead. */
    if (op != HC_WIRE_FLUSH && len == 0) op = HC_WIRE_FLUSH;
    pthread_mutex_lock(&pb->mu);
    if (!pb->stopping && pb->q_inval < pb->queue_max) it = malloc(sizeof *it + len + 1);
    if (it == NULL) {
        /* Stopping, full or out of memory: this invalidation is lost, so the
         * other nodes will be told to flush instead. */
        pb->st.publish_failures++;
        pb->need_flush = !pb->stopping;
        hc_cache_bus_count(from, HC_BUSCTR_PUBLISH_FAILURES, 1);
        pthread_mutex_unlock(&pb->mu);
        wake(pb);
        return;
    }
    it->next = NULL;
    it->from = from;
    it->op = op;
    it->sync_seq = 0;
    memcpy(it->arg, arg, len + 1);
    bool was_empty = pb->q_head == NULL;
    if (pb->q_tail) pb->q_tail->next = it;
    else pb->q_head = it;
    pb->q_tail = it;
    pb->q_inval++;
    pb->st.queue_len = pb->q_inval;
    pthread_mutex_unlock(&pb->mu);
    /* The driver drains the whole queue once woken; one wake per burst. */
    if (was_empty) wake(pb);
}

static void pg_forget(void *impl, hc_cache *c)
{
    hc_pg_bus *pb = impl;
    pthread_mutex_lock(&pb->mu);
    for (pub_item *it = pb->q_head; it; it = it->next)
        if (it->from == c) it->from = NULL;
    for (pub_item *it = pb->inflight; it; it = it->next)
        if (it->from == c) it->from = NULL;
    pthread_mutex_unlock(&pb->mu);
}

/* ------------------------------------------------------ state transitions */

static void set_state(hc_pg_bus *pb, hc_bus_state st)
{
    pthread_mutex_lock(&pb->mu);
    pb->state = st;
    pb->st.state = st;
    pthread_cond_broadcast(&pb->cond);
    pthread_mutex_unlock(&pb->mu);
}

static void schedule_connect(hc_pg_bus *pb, uint64_t now)
{
    pb->ph = PH_WAIT;
    pb->next_connect_ms = now + backoff_ms(pb, &pb->attempt);
}

static void close_conn(hc_pg_bus *pb)
{
    watch_socket(pb, -1, 0, false);
    if (pb->conn) PQfinish(pb->conn);
    pb->conn = NULL;
    pb->q = Q_NONE;
}

/* The connection is gone (or unusable): bypass everything, then reconnect. */
static void lose(hc_pg_bus *pb, const char *why, uint64_t now)
{
    char detail[HC_EVENT_SUBJECT_MAX];
    snprintf(detail, sizeof detail, "%s", why && *why ? why : "connection lost");
    size_t n = strlen(detail);
    while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == ' ')) detail[--n] = '\0';

    bool was_listening = pb->ph == PH_READY;
    close_conn(pb);
    /* Bypass first: from here on notifications may be missed. */
    if (was_listening) hc_bus_transport_down(pb->bus, detail);

    pthread_mutex_lock(&pb->mu);
    do_fail_inflight(pb);
    pb->conn_gen++;
    pb->st.backend_pid = 0;
    if (was_listening) {
        pb->st.disconnects++;
        pb->state = pb->st.state = HC_BUS_DISCONNECTED;
    } else {
        pb->st.connect_failures++;
    }
    pthread_cond_broadcast(&pb->cond);
    pthread_mutex_unlock(&pb->mu);
    schedule_connect(pb, now);
    pb->progress++;
}

/* --------------------------------------------------------------- connecting */

/* Library code never prints: server notices on the bus connection are dropped. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void start_connect(hc_pg_bus *pb, uint64_t now)
{
    /* Defaults before the expanded conninfo, which may override them. */
    const char *kw[] = {"keepalives", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "connect_timeout", "application_name",
                        "dbname", NULL};
    const char *val[] = {"1", "10", "5", "3", "10", "hydracache-bus", pb->conninfo, NULL};
    pb->conn = PQconnectStartParams(kw, val, 1);
    if (pb->conn == NULL) {
        lose(pb, "out of memory connecting", now);
        return;
    }
    if (PQstatus(pb->conn) == CONNECTION_BAD) {
        lose(pb, PQerrorMessage(pb->conn), now);
        return;
    }
    PQsetNoticeProcessor(pb->conn, quiet_notice, NULL);
    pb->ph = PH_CONNECTING;
    pb->progress++;
    pb->cpoll = PGRES_POLLING_WRITING;
    pb->connect_deadline_ms = now + pb->query_timeout_ms;
    watch_socket(pb, PQsocket(pb->conn), EPOLLOUT, true);
}

static void send_query(hc_pg_bus *pb, query_kind k, uint64_t now)
{
    pb->q = k;
    pb->progress++;
    pb->q_ok = false;
    pb->q_err[0] = '\0';
    pb->q_started_ms = now;
}

static void connect_step(hc_pg_bus *pb, uint64_t now)
{
    if (now >= pb->connect_deadline_ms) {
        lose(pb, "connect timed out", now);
        return;
    }
    short want = pb->cpoll == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!fd_ready(PQsocket(pb->conn), want)) return;
    pb->cpoll = PQconnectPoll(pb->conn);
    pb->progress++;
    switch (pb->cpoll) {
    case PGRES_POLLING_FAILED:
        lose(pb, PQerrorMessage(pb->conn), now);
        return;
    case PGRES_POLLING_OK:
        break;
    default: /* READING / WRITING: the socket may have been replaced (multi-host) */
        watch_socket(pb, PQsocket(pb->conn),
                     pb->cpoll == PGRES_POLLING_READING ? EPOLLIN : EPOLLOUT, true);
        return;
    }
    PQsetnonblocking(pb->conn, 1);
    watch_socket(pb, PQsocket(pb->conn), EPOLLIN, true);
    if (!PQsendQuery(pb->conn, pb->listen_sql)) {
        lose(pb, PQerrorMessage(pb->conn), now);
        return;
    }
    pthread_mutex_lock(&pb->mu);
    pb->st.backend_pid = PQbackendPID(pb->conn);
    pthread_mutex_unlock(&pb->mu);
    pb->ph = PH_LISTEN_SENT;
    send_query(pb, Q_LISTEN, now);
}

/* --------------------------------------------------------------- publishing */

typedef struct arraybuf {
    char *p;
    size_t n, cap;
    size_t count;
    bool oom;
} arraybuf;

static void ab_put(arraybuf *ab, const char *s, size_t len)
{
    if (ab->oom) return;
    if (ab->n + len + 1 > ab->cap) {
        size_t ncap = ab->cap ? ab->cap : 1024;
        while (ab->n + len + 1 > ncap) ncap *= 2;
        char *np = realloc(ab->p, ncap);
        if (np == NULL) {
            ab->oom = true;
            return;
        }
        ab->p = np;
        ab->cap = ncap;
    }
    memcpy(ab->p + ab->n, s, len);
    ab->n += len;
    ab->p[ab->n] = '\0';
}

/* Append one payload as a quoted text[] element. */
static hc_status ab_payload(void *ctx, const char *payload, size_t len)
{
    arraybuf *ab = ctx;
    ab_put(ab, ab->count ? ",\"" : "\"", ab->count ? 2 : 1);
    for (size_t i = 0; i < len; i++) {
        if (payload[i] == '"' || payload[i] == '\\') ab_put(ab, "\\", 1);
        ab_put(ab, payload + i, 1);
    }
    ab_put(ab, "\"", 1);
    ab->count++;
    return ab->oom ? HC_ERR_NOMEM : HC_OK;
}

/* Encode a run of same-op items. */
static hc_status encode_run(hc_pg_bus *pb, arraybuf *ab, pub_item *first, size_t n)
{
    const char *stackv[64];
    const char **v = n <= 64 ? stackv : malloc(n * sizeof *v);
    if (v == NULL) return HC_ERR_NOMEM;
    pub_item *it = first;
    for (size_t i = 0; i < n; i++, it = it->next) v[i] = it->arg;
    hc_status st = hc_wire_encode(pb->node_id, first->op, v, n, ab_payload, ab, NULL);
    if (v != stackv) free(v);
    return st;
}

/* Build the text[] literal of every payload for the batch. */
static hc_status encode_batch(hc_pg_bus *pb, pub_item *batch, bool flush_first, arraybuf *ab)
{
    ab_put(ab, "{", 1);
    if (flush_first && hc_wire_encode(pb->node_id, HC_WIRE_FLUSH, NULL, 0, ab_payload, ab, NULL) != HC_OK)
        return HC_ERR_NOMEM;
    pub_item *it = batch;
    while (it != NULL) {
        hc_status st;
        if (it->op == HC_WIRE_SYNC) {
            char tok[64];
            snprintf(tok, sizeof tok, "%s.%" PRIu64, pb->epoch, it->sync_seq);
            const char *args[] = {tok};
            st = hc_wire_encode(pb->node_id, HC_WIRE_SYNC, args, 1, ab_payload, ab, NULL);
            it = it->next;
        } else if (it->op == HC_WIRE_FLUSH) {
            st = hc_wire_encode(pb->node_id, HC_WIRE_FLUSH, NULL, 0, ab_payload, ab, NULL);
            while (it != NULL && it->op == HC_WIRE_FLUSH) it = it->next; /* collapse */
        } else {
            size_t n = 0;
            pub_item *e = it;
            while (e != NULL && e->op == it->op) e = e->next, n++;
            st = encode_run(pb, ab, it, n);
            it = e;
        }
        if (st == HC_ERR_TOO_LARGE) {
            /* Cannot happen for keys/tags within HC_MAX_KEY_LEN; never
             * truncate: over-invalidate. */
            st = hc_wire_encode(pb->node_id, HC_WIRE_FLUSH, NULL, 0, ab_payload, ab, NULL);
        }
        if (st != HC_OK) return st;
    }
    ab_put(ab, "}", 1);
    return ab->oom ? HC_ERR_NOMEM : HC_OK;
}

static const char PUBLISH_SQL[] =
    "SELECT pg_catalog.pg_notify($1, p) FROM pg_catalog.unnest($2::pg_catalog.text[]) AS p";

/* Take a batch off the queue and send it in one autocommit statement. */
static void send_batch(hc_pg_bus *pb, uint64_t now)
{
    pthread_mutex_lock(&pb->mu);
    bool flush_first = pb->need_flush;
    pb->need_flush = false;
    pub_item *batch = pb->q_head, *last = NULL;
    size_t items = 0, bytes = 0;
    for (pub_item *it = pb->q_head; it && items < BATCH_MAX_ITEMS && bytes < BATCH_MAX_BYTES;
         it = it->next) {
        last = it;
        items++;
        bytes += strlen(it->arg) * 3 + 8;
        if (it->op != HC_WIRE_SYNC) pb->q_inval--;
    }
    if (last != NULL) {
        pb->q_head = last->next;
        if (pb->q_head == NULL) pb->q_tail = NULL;
        last->next = NULL;
    } else {
        batch = NULL;
    }
    pb->inflight = batch;
    pb->inflight_flush = flush_first;
    pb->st.queue_len = pb->q_inval;
    if (flush_first) pb->st.flush_broadcasts++;
    pthread_mutex_unlock(&pb->mu);

    arraybuf ab = {0};
    hc_status st = encode_batch(pb, batch, flush_first, &ab);
    if (st == HC_OK) {
        const char *vals[2] = {pb->channel, ab.p};
        if (!PQsendQueryParams(pb->conn, PUBLISH_SQL, 2, NULL, vals, NULL, NULL, 0)) {
            free(ab.p);
            lose(pb, PQerrorMessage(pb->conn), now);
            return;
        }
        send_query(pb, Q_PUBLISH, now);
    } else {
        /* Out of memory encoding: these are lost; a flush replaces them. */
        pthread_mutex_lock(&pb->mu);
        do_fail_inflight(pb);
        pb->next_publish_ms = now + backoff_ms(pb, &pb->publish_attempt);
        pthread_mutex_unlock(&pb->mu);
    }
    free(ab.p);
}

static void publish_done(hc_pg_bus *pb, uint64_t now)
{
    pthread_mutex_lock(&pb->mu);
    if (pb->q_ok) {
        for (pub_item *it = pb->inflight; it; it = it->next) {
            if (it->op == HC_WIRE_SYNC) continue;
            pb->st.published++;
            if (it->from) hc_cache_bus_count(it->from, HC_BUSCTR_PUBLISHED, 1);
        }
        pb->publish_attempt = 0;
        item_free_list(pb->inflight);
        pb->inflight = NULL;
        pb->inflight_flush = false;
    } else {
        /* Statement error on a live connection (invalid UTF-8 in a key, the
         * notify queue full, ...): a flush replaces the batch; back off so a
         * persistent error does not spin. */
        do_fail_inflight(pb);
        pb->need_flush = true;
        pb->next_publish_ms = now + backoff_ms(pb, &pb->publish_attempt);
    }
    pthread_mutex_unlock(&pb->mu);
}

/* -------------------------------------------------------------- receiving */

/* Called from hc_bus_deliver_from on the driver thread (io_step).  Only a
 * token NOTIFYed by our own backend counts: anyone who LISTENs sees the
 * token text and could send the next one, ending a barrier early. */
static void on_sync(void *impl, const char *origin, const char *token)
{
    hc_pg_bus *pb = impl;
    size_t el = strlen(pb->epoch);
    if (!pb->delivering_self || strcmp(origin, pb->node_id) != 0 ||
        strncmp(token, pb->epoch, el) != 0 || token[el] != '.')
        return;
    char *end;
    errno = 0;
    uint64_t seq = strtoull(token + el + 1, &end, 10);
    if (errno != 0 || *end != '\0') return;
    pthread_mutex_lock(&pb->mu);
    if (seq > pb->sync_seen && seq <= pb->sync_next) {
        pb->sync_seen = seq;
        pthread_cond_broadcast(&pb->cond);
    }
    pthread_mutex_unlock(&pb->mu);
}

static void query_done(hc_pg_bus *pb, uint64_t now)
{
    query_kind k = pb->q;
    pb->q = Q_NONE;
    pb->progress++;
    switch (k) {
    case Q_LISTEN:
        if (!pb->q_ok) {
            lose(pb, pb->q_err, now);
            return;
        }
        pb->ph = PH_READY;
        pb->attempt = 0;
        pb->next_health_ms = now; /* learn the queue usage at once */
        /* LISTEN is active: flush and serve again. */
        hc_bus_transport_up(pb->bus);
        pthread_mutex_lock(&pb->mu);
        if (pb->state == HC_BUS_DISCONNECTED) pb->st.reconnects++;
        pthread_mutex_unlock(&pb->mu);
        set_state(pb, HC_BUS_LISTENING);
        break;
    case Q_PUBLISH:
        publish_done(pb, now);
        break;
    case Q_HEALTH:
    case Q_NONE:
        break;
    }
}

static void take_result(hc_pg_bus *pb, PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        pb->q_ok = true;
        if (pb->q == Q_HEALTH && s == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
            !PQgetisnull(r, 0, 0)) {
            double usage = strtod(PQgetvalue(r, 0, 0), NULL);
            hc_bus_set_queue_usage(pb->bus, usage);
            pthread_mutex_lock(&pb->mu);
            pb->st.notify_queue_usage = usage;
            pthread_mutex_unlock(&pb->mu);
        }
    } else {
        pb->q_ok = false;
        snprintf(pb->q_err, sizeof pb->q_err, "%s", PQresultErrorMessage(r));
    }
}

/* Connected: read, process results and notifications, then send work. */
static void io_step(hc_pg_bus *pb, uint64_t now)
{
    if (!PQconsumeInput(pb->conn)) {
        lose(pb, PQerrorMessage(pb->conn), now);
        return;
    }
    while (pb->q != Q_NONE && !PQisBusy(pb->conn)) {
        PGresult *r = PQgetResult(pb->conn);
        if (r == NULL) {
            query_done(pb, now);
            if (pb->conn == NULL) return;
            continue;
        }
        take_result(pb, r);
        PQclear(r);
    }
    /* Everything this node publishes goes out on this connection, so its
     * echoes are exactly the notifications from our own backend.  The node
     * id is only a label (two processes may be configured with the same one)
     * and a sync token's text is visible to every listener, so neither
     * identifies us. */
    int own_pid = PQbackendPID(pb->conn);
    PGnotify *n;
    while ((n = PQnotifies(pb->conn)) != NULL) {
        if (strcmp(n->relname, pb->channel) == 0) {
            pb->delivering_self = n->be_pid == own_pid;
            hc_bus_deliver_from(pb->bus, n->extra, strlen(n->extra),
                                pb->delivering_self ? HC_SENDER_SELF : HC_SENDER_OTHER, NULL);
            pb->delivering_self = false;
        }
        PQfreemem(n);
    }
    if (PQstatus(pb->conn) != CONNECTION_OK) {
        lose(pb, PQerrorMessage(pb->conn), now);
        return;
    }
    if (pb->q != Q_NONE && now - pb->q_started_ms >= pb->query_timeout_ms) {
        lose(pb, "statement timed out: server unreachable", now);
        return;
    }
    if (pb->ph == PH_READY && pb->q == Q_NONE) {
        pthread_mutex_lock(&pb->mu);
        bool work = pb->q_head != NULL || pb->need_flush;
        pthread_mutex_unlock(&pb->mu);
        if (now >= pb->next_health_ms) {
            if (!PQsendQuery(pb->conn, "SELECT pg_catalog.pg_notification_queue_usage()")) {
                lose(pb, PQerrorMessage(pb->conn), now);
                return;
            }
            send_query(pb, Q_HEALTH, now);
            pb->next_health_ms = now + pb->health_interval_ms;
        } else if (work && now >= pb->next_publish_ms) {
            send_batch(pb, now);
            if (pb->conn == NULL) return;
        }
    }
    int f = PQflush(pb->conn);
    if (f < 0) {
        lose(pb, PQerrorMessage(pb->conn), now);
        return;
    }
    watch_socket(pb, PQsocket(pb->conn), f == 1 ? (EPOLLIN | EPOLLOUT) : EPOLLIN, false);
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
        uint64_t now = now_ms(), before = pb->progress;
        switch (pb->ph) {
        case PH_WAIT:
            if (now >= pb->next_connect_ms) start_connect(pb, now);
            break;
        case PH_CONNECTING:
            connect_step(pb, now);
            break;
        case PH_LISTEN_SENT:
        case PH_READY:
            io_step(pb, now);
            break;
        }
        if (pb->progress == before) return;
    }
}

static int next_timeout(hc_pg_bus *pb)
{
    uint64_t now = now_ms(), due = UINT64_MAX;
    switch (pb->ph) {
    case PH_WAIT: due = pb->next_connect_ms; break;
    case PH_CONNECTING: due = pb->connect_deadline_ms; break;
    case PH_LISTEN_SENT:
    case PH_READY:
        if (pb->q != Q_NONE) {
            due = pb->q_started_ms + pb->query_timeout_ms;
        } else {
            due = pb->next_health_ms;
            pthread_mutex_lock(&pb->mu);
            bool work = pb->q_head != NULL || pb->need_flush;
            pthread_mutex_unlock(&pb->mu);
            if (work && pb->next_publish_ms < due) due = pb->next_publish_ms;
        }
        break;
    }
    if (due <= now) return 0;
    uint64_t d = due - now;
    return d > 60000 ? 60000 : (int)d;
}

static void *driver_thread(void *arg)
{
    hc_pg_bus *pb = arg;
    for (;;) {
        pthread_mutex_lock(&pb->mu);
        bool stop = pb->stopping;
        pthread_mutex_unlock(&pb->mu);
        if (stop) break;
        drive(pb);
        struct epoll_event ev[4];
        int n = epoll_wait(pb->epfd, ev, 4, next_timeout(pb));
        (void)n; /* EINTR or events: either way, drive again */
    }
    return NULL;
}

/* ------------------------------------------------------------ transport ops */

static hc_status pg_start(void *impl, hc_bus *bus, hc_error *err)
{
    hc_pg_bus *pb = impl;
    pb->bus = bus;
    memcpy(pb->node_id, hc_bus_node_id(bus), strlen(hc_bus_node_id(bus)) + 1);
    hc_bus_set_sync_handler(bus, on_sync);
    if (pb->mode == HC_PG_BUS_THREAD) {
        if (pthread_create(&pb->thread, NULL, driver_thread, pb) != 0)
            return hc_error_set(err, HC_ERR_SYSTEM, "cannot start the bus thread");
        pb->thread_started = true;
    } else {
        wake(pb); /* the first poll connects */
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
    wake(pb);
    if (pb->thread_started) {
        pthread_join(pb->thread, NULL);
        pb->thread_started = false;
    }
    /* No driver runs from here on (hc_pg_bus_poll checks stopping). */
    pthread_mutex_lock(&pb->drive_mu);
    close_conn(pb);
    pb->ph = PH_WAIT;
    pthread_mutex_unlock(&pb->drive_mu);
    pthread_mutex_lock(&pb->mu);
    do_fail_items(pb, pb->inflight);
    do_fail_items(pb, pb->q_head);
    item_free_list(pb->inflight);
    item_free_list(pb->q_head);
    pb->inflight = pb->q_head = pb->q_tail = NULL;
    pb->q_inval = pb->st.queue_len = 0;
    pb->need_flush = false;
    pb->state = pb->st.state = HC_BUS_DISCONNECTED;
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
    if (pb->conn) PQfinish(pb->conn);
    item_free_list(pb->inflight);
    item_free_list(pb->q_head);
    if (pb->epfd >= 0) close(pb->epfd);
    if (pb->wakefd >= 0) close(pb->wakefd);
    pthread_mutex_destroy(&pb->mu);
    pthread_mutex_destroy(&pb->drive_mu);
    pthread_cond_destroy(&pb->cond);
    free(pb->conninfo);
    free(pb->listen_sql);
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
    return HC_OK;
}

HC_EXTERN hc_pg_bus *hc_pg_bus_new(const hc_pg_bus_config *cfg, hc_error *err)
{
    if (check_config(cfg, err) != HC_OK) return NULL;
    char id[HC_NODE_ID_MAX + 1];
    if (hc_bus_node_id_init(id, cfg->node_id, err) != HC_OK) return NULL;

    hc_pg_bus *pb = calloc(1, sizeof *pb);
    if (pb == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
        return NULL;
    }
    pb->epfd = pb->wakefd = pb->sock = -1;
    pthread_mutex_init(&pb->mu, NULL);
    pthread_mutex_init(&pb->drive_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pb->cond, &ca);
    pthread_condattr_destroy(&ca);

    snprintf(pb->channel, sizeof pb->channel, "%s",
             cfg->channel ? cfg->channel : HC_PG_BUS_DEFAULT_CHANNEL);
    pb->mode = cfg->mode;
    pb->backoff_initial_ms = cfg->backoff_initial_ms ? cfg->backoff_initial_ms : 50;
    pb->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000;
    if (pb->backoff_max_ms < pb->backoff_initial_ms) pb->backoff_max_ms = pb->backoff_initial_ms;
    pb->health_interval_ms = cfg->health_interval_ms ? cfg->health_interval_ms : 5000;
    pb->query_timeout_ms = cfg->query_timeout_ms ? cfg->query_timeout_ms : 10000;
    pb->queue_max = cfg->publish_queue_max ? cfg->publish_queue_max : 65536;
    pb->state = pb->st.state = HC_BUS_CONNECTING;
    pb->st.notify_queue_usage = -1.0;
    pb->rng = hc_bus_random64() | 1;
    snprintf(pb->epoch, sizeof pb->epoch, "%016" PRIx64, hc_bus_random64());
    pb->ph = PH_WAIT;
    pb->conninfo = strdup(cfg->conninfo);
    pb->epfd = epoll_create1(EPOLL_CLOEXEC);
    pb->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    /* LISTEN takes an identifier: quote it (the channel is case-sensitive). */
    size_t cl = strlen(pb->channel), qn = 0;
    pb->listen_sql = malloc(2 * cl + 16);
    if (pb->listen_sql != NULL) {
        qn = (size_t)sprintf(pb->listen_sql, "LISTEN \"");
        for (size_t i = 0; i < cl; i++) {
            if (pb->channel[i] == '"') pb->listen_sql[qn++] = '"';
            pb->listen_sql[qn++] = pb->channel[i];
        }
        memcpy(pb->listen_sql + qn, "\"", 2);
    }
    if (pb->conninfo == NULL || pb->listen_sql == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
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
    pthread_mutex_lock(&pb->mu);
    bool stop = pb->stopping;
    pthread_mutex_unlock(&pb->mu);
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

HC_EXTERN hc_status hc_pg_bus_sync_begin(hc_pg_bus *pb, uint64_t *ticket, hc_error *err)
{
    if (pb == NULL || ticket == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL argument");
    pub_item *it = malloc(sizeof *it + 1);
    if (it == NULL) return hc_error_set(err, HC_ERR_NOMEM, "out of memory queueing sync token");
    pthread_mutex_lock(&pb->mu);
    hc_status st = HC_OK;
    if (pb->stopping) st = hc_error_set(err, HC_ERR_CLOSED, "bus is stopping");
    else if (pb->state != HC_BUS_LISTENING)
        st = hc_error_set(err, HC_ERR_PG, "bus is not listening (%s)", hc_bus_state_str(pb->state));
    if (st != HC_OK) {
        pthread_mutex_unlock(&pb->mu);
        free(it);
        return st;
    }
    it->next = NULL;
    it->from = NULL;
    it->op = HC_WIRE_SYNC;
    it->sync_seq = ++pb->sync_next;
    it->arg[0] = '\0';
    bool was_empty = pb->q_head == NULL;
    if (pb->q_tail) pb->q_tail->next = it;
    else pb->q_head = it;
    pb->q_tail = it;
    /* The ticket carries the connection generation: a loss fails the wait. */
    *ticket = (pb->conn_gen << 40) | it->sync_seq;
    pthread_mutex_unlock(&pb->mu);
    if (was_empty) wake(pb);
    return HC_OK;
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

HC_EXTERN hc_status hc_pg_bus_sync(hc_pg_bus *pb, int timeout_ms, hc_error *err)
{
    if (pb == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    if (pb->mode != HC_PG_BUS_THREAD)
        return hc_error_set(err, HC_ERR_STATE,
                            "hc_pg_bus_sync needs thread mode; use hc_pg_bus_sync_begin/check");
    uint64_t ticket;
    hc_status st = hc_pg_bus_sync_begin(pb, &ticket, err);
    if (st != HC_OK) return st;
    struct timespec dl = hc__deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&pb->mu);
    while ((st = do_sync_check(pb, ticket, err)) == HC_TIMEOUT) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&pb->cond, &pb->mu);
        } else if (pthread_cond_timedwait(&pb->cond, &pb->mu, &dl) == ETIMEDOUT) {
            st = do_sync_check(pb, ticket, err);
            break;
        }
    }
    if (st == HC_OK) pb->st.syncs++;
    pthread_mutex_unlock(&pb->mu);
    if (st == HC_TIMEOUT) hc_error_set(err, HC_TIMEOUT, "sync token not received in %d ms", timeout_ms);
    return st;
}

HC_EXTERN hc_status hc_pg_bus_wait_state(hc_pg_bus *pb, hc_bus_state want, int timeout_ms)
{
    if (pb == NULL) return HC_ERR_INVALID;
    if (pb->mode != HC_PG_BUS_THREAD) return HC_ERR_STATE;
    struct timespec dl = hc__deadline_after(timeout_ms > 0 ? timeout_ms : 0);
    hc_status st = HC_OK;
    pthread_mutex_lock(&pb->mu);
    while (pb->state != want && !pb->stopping) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&pb->cond, &pb->mu);
        } else if (pthread_cond_timedwait(&pb->cond, &pb->mu, &dl) == ETIMEDOUT) {
            break;
        }
    }
    if (pb->state != want) st = pb->stopping ? HC_ERR_CLOSED : HC_TIMEOUT;
    pthread_mutex_unlock(&pb->mu);
    return st;
}

HC_EXTERN hc_bus_state hc_pg_bus_state(hc_pg_bus *pb)
{
    if (pb == NULL) return HC_BUS_NONE;
    pthread_mutex_lock(&pb->mu);
    hc_bus_state st = pb->state;
    pthread_mutex_unlock(&pb->mu);
    return st;
}

HC_EXTERN void hc_pg_bus_get_stats(hc_pg_bus *pb, hc_pg_bus_stats *out)
{
    if (out == NULL) return;
    memset(out, 0, sizeof *out);
    if (pb == NULL) return;
    pthread_mutex_lock(&pb->mu);
    *out = pb->st;
    pthread_mutex_unlock(&pb->mu);
    hc_bus_counters c;
    hc_bus_get_counters(pb->bus, &c);
    out->received = c.received;
    out->malformed = c.malformed;
    out->own_ignored = c.own_ignored;
}

HC_EXTERN const char *hc_pg_bus_node_id(const hc_pg_bus *pb)
{
    return pb ? pb->node_id : NULL;
}
