/*
 * pgnotify.c - the LISTEN/NOTIFY driver of the PostgreSQL bus: one libpq
 * connection that LISTENs on the channel, applies what arrives, publishes
 * this node's queued invalidations with pg_notify and probes
 * pg_notification_queue_usage().  See pgbus_int.h for who runs it and
 * docs/BUS.md for the behaviour.
 *
 * States: WAIT (not connected; next attempt at next_connect_ms) ->
 * CONNECTING (PQconnectPoll) -> LISTEN_SENT -> READY (LISTEN active).  At
 * most one statement is in flight (q); the driver never opens a transaction.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <libpq-fe.h>

#include "alloc.h"
#include "pgbus_int.h"

typedef enum phase { PH_WAIT, PH_CONNECTING, PH_LISTEN_SENT, PH_READY } phase;

typedef enum query_kind { Q_NONE, Q_LISTEN, Q_PUBLISH, Q_HEALTH } query_kind;

typedef struct pgn {
    hc_pg_attempt a; /* a.conn is the connection */
    phase ph;
    query_kind q;
    bool q_ok;
    char q_err[HC_ERROR_MSG_MAX];
    uint64_t q_started_ms, next_connect_ms, next_health_ms;
    uint64_t next_publish_ms;
    unsigned attempt, publish_attempt;
    char *listen_sql;
} pgn;

static pgn *S(hc_pg_bus *pb)
{
    return pb->drv;
}

static void close_conn(hc_pg_bus *pb)
{
    pgn *n = S(pb);
    hc__pgbus_watch(pb, 0, -1, 0, false);
    if (n->a.conn) PQfinish(n->a.conn);
    n->a.conn = NULL;
    n->q = Q_NONE;
}

/* The connection is gone (or unusable): bypass everything, then reconnect. */
static void lose(hc_pg_bus *pb, const char *why, uint64_t now)
{
    pgn *n = S(pb);
    bool was_listening = n->ph == PH_READY;
    char detail[HC_ERROR_MSG_MAX];
    snprintf(detail, sizeof detail, "%s", why ? why : ""); /* why may live in the connection */
    close_conn(pb);
    hc__pgbus_down(pb, was_listening, detail);
    n->ph = PH_WAIT;
    n->next_connect_ms = now + hc__pgbus_backoff_ms(pb, &n->attempt);
}

static void start_connect(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    if (!hc__pgbus_connect_start(pb, &n->a, false, now)) {
        lose(pb, n->a.conn ? PQerrorMessage(n->a.conn) : "out of memory connecting", now);
        return;
    }
    n->ph = PH_CONNECTING;
}

static void sent_query(hc_pg_bus *pb, query_kind k, uint64_t now)
{
    pgn *n = S(pb);
    n->q = k;
    pb->progress++;
    n->q_ok = false;
    n->q_err[0] = '\0';
    n->q_started_ms = now;
}

static void connect_step(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    const char *why = NULL;
    int r = hc__pgbus_connect_step(pb, &n->a, now, &why);
    if (r < 0) lose(pb, why, now);
    if (r <= 0) return;
    if (!PQsendQuery(n->a.conn, n->listen_sql)) {
        lose(pb, PQerrorMessage(n->a.conn), now);
        return;
    }
    hc__pgbus_set_backend(pb, PQbackendPID(n->a.conn));
    n->ph = PH_LISTEN_SENT;
    sent_query(pb, Q_LISTEN, now);
}

/* --------------------------------------------------------------- publishing */

static const char PUBLISH_SQL[] =
    "SELECT pg_catalog.pg_notify($1, p) FROM pg_catalog.unnest($2::pg_catalog.text[]) AS p";

/* Take a batch off the queue and send it in one autocommit statement. */
static void send_batch(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    pthread_mutex_lock(&pb->mu);
    hc_pubq_item *batch =
        hc__pubq_take(&pb->q, HC_PGBUS_BATCH_MAX_ITEMS, HC_PGBUS_BATCH_MAX_BYTES);
    bool flush_first = pb->q.inflight_flush;
    pthread_mutex_unlock(&pb->mu);

    /* Only this thread touches the batch's op/arg (forget only clears from). */
    char *literal = NULL;
    if (hc__pubq_encode(batch, flush_first, pb->node_id, pb->epoch, &literal) == HC_OK) {
        const char *vals[2] = {pb->channel, literal};
        bool sent = PQsendQueryParams(n->a.conn, PUBLISH_SQL, 2, NULL, vals, NULL, NULL, 0);
        free(literal);
        if (!sent) {
            lose(pb, PQerrorMessage(n->a.conn), now);
            return;
        }
        sent_query(pb, Q_PUBLISH, now);
    } else {
        /* Out of memory encoding: these are lost; a flush replaces them. */
        pthread_mutex_lock(&pb->mu);
        hc__pubq_fail_inflight(&pb->q);
        pthread_mutex_unlock(&pb->mu);
        n->next_publish_ms = now + hc__pgbus_backoff_ms(pb, &n->publish_attempt);
    }
}

static void publish_done(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    pthread_mutex_lock(&pb->mu);
    if (n->q_ok) {
        hc__pubq_done(&pb->q);
        n->publish_attempt = 0;
    } else {
        /* Statement error on a live connection (invalid UTF-8 in a key, the
         * notify queue full, ...): a flush replaces the batch; back off so a
         * persistent error does not spin. */
        hc__pubq_fail_inflight(&pb->q);
        pb->q.need_flush = true;
    }
    pthread_mutex_unlock(&pb->mu);
    if (!n->q_ok) n->next_publish_ms = now + hc__pgbus_backoff_ms(pb, &n->publish_attempt);
}

/* -------------------------------------------------------------- receiving */

/* A sync message delivered by the generic bus.  Only a token NOTIFYed by our
 * own backend counts: anyone who LISTENs sees the token text and could send
 * the next one, ending a barrier early. */
static void on_sync(void *impl, const char *origin, const char *token, hc_bus_sender sender)
{
    hc_pg_bus *pb = impl;
    size_t el = strlen(pb->epoch);
    if (sender != HC_SENDER_SELF || strcmp(origin, pb->node_id) != 0 ||
        strncmp(token, pb->epoch, el) != 0 || token[el] != '.')
        return;
    char *end;
    errno = 0;
    uint64_t seq = strtoull(token + el + 1, &end, 10);
    if (errno != 0 || *end != '\0') return;
    hc__pgbus_synced(pb, seq);
}

static void query_done(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    query_kind k = n->q;
    n->q = Q_NONE;
    pb->progress++;
    switch (k) {
    case Q_LISTEN:
        if (!n->q_ok) {
            lose(pb, n->q_err, now);
            return;
        }
        n->ph = PH_READY;
        n->attempt = 0;
        n->next_health_ms = now; /* learn the queue usage at once */
        hc__pgbus_up(pb);        /* LISTEN is active: flush and serve again */
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
    pgn *n = S(pb);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        n->q_ok = true;
        if (n->q == Q_HEALTH && s == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
            !PQgetisnull(r, 0, 0)) {
            double usage = strtod(PQgetvalue(r, 0, 0), NULL);
            hc__bus_set_queue_usage(pb->bus, usage);
            pthread_mutex_lock(&pb->mu);
            pb->st.notify_queue_usage = usage;
            pthread_mutex_unlock(&pb->mu);
        }
    } else {
        n->q_ok = false;
        snprintf(n->q_err, sizeof n->q_err, "%s", PQresultErrorMessage(r));
    }
}

/* Connected: read, process results and notifications, then send work. */
static void io_step(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    if (!PQconsumeInput(n->a.conn)) {
        lose(pb, PQerrorMessage(n->a.conn), now);
        return;
    }
    while (n->q != Q_NONE && !PQisBusy(n->a.conn)) {
        PGresult *r = PQgetResult(n->a.conn);
        if (r == NULL) {
            query_done(pb, now);
            if (n->a.conn == NULL) return;
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
    int own_pid = PQbackendPID(n->a.conn);
    PGnotify *nt;
    while ((nt = PQnotifies(n->a.conn)) != NULL) {
        if (strcmp(nt->relname, pb->channel) == 0)
            hc_bus_deliver_from(pb->bus, nt->extra, strlen(nt->extra),
                                nt->be_pid == own_pid ? HC_SENDER_SELF : HC_SENDER_OTHER, NULL);
        PQfreemem(nt);
    }
    if (PQstatus(n->a.conn) != CONNECTION_OK) {
        lose(pb, PQerrorMessage(n->a.conn), now);
        return;
    }
    if (n->q != Q_NONE && now - n->q_started_ms >= pb->query_timeout_ms) {
        lose(pb, "statement timed out: server unreachable", now);
        return;
    }
    if (n->ph == PH_READY && n->q == Q_NONE) {
        pthread_mutex_lock(&pb->mu);
        bool work = hc__pubq_has_work(&pb->q);
        pthread_mutex_unlock(&pb->mu);
        if (now >= n->next_health_ms) {
            if (!PQsendQuery(n->a.conn, "SELECT pg_catalog.pg_notification_queue_usage()")) {
                lose(pb, PQerrorMessage(n->a.conn), now);
                return;
            }
            sent_query(pb, Q_HEALTH, now);
            n->next_health_ms = now + pb->health_interval_ms;
        } else if (work && now >= n->next_publish_ms) {
            send_batch(pb, now);
            if (n->a.conn == NULL) return;
        }
    }
    int f = PQflush(n->a.conn);
    if (f < 0) {
        lose(pb, PQerrorMessage(n->a.conn), now);
        return;
    }
    hc__pgbus_watch(pb, 0, PQsocket(n->a.conn), f == 1 ? (EPOLLIN | EPOLLOUT) : EPOLLIN, false);
}

/* ------------------------------------------------------------ driver ops */

static void notify_step(hc_pg_bus *pb, uint64_t now)
{
    pgn *n = S(pb);
    switch (n->ph) {
    case PH_WAIT:
        if (now >= n->next_connect_ms) start_connect(pb, now);
        break;
    case PH_CONNECTING:
        connect_step(pb, now);
        break;
    case PH_LISTEN_SENT:
    case PH_READY:
        io_step(pb, now);
        break;
    }
}

static uint64_t notify_due(hc_pg_bus *pb)
{
    pgn *n = S(pb);
    switch (n->ph) {
    case PH_WAIT: return n->next_connect_ms;
    case PH_CONNECTING: return n->a.deadline_ms;
    case PH_LISTEN_SENT:
    case PH_READY:
        break;
    }
    if (n->q != Q_NONE) return n->q_started_ms + pb->query_timeout_ms;
    uint64_t due = n->next_health_ms;
    pthread_mutex_lock(&pb->mu);
    bool work = hc__pubq_has_work(&pb->q);
    pthread_mutex_unlock(&pb->mu);
    if (work && n->next_publish_ms < due) due = n->next_publish_ms;
    return due;
}

static void notify_close(hc_pg_bus *pb)
{
    close_conn(pb);
    S(pb)->ph = PH_WAIT;
}

static hc_status notify_init(hc_pg_bus *pb, hc_error *err)
{
    pgn *n = hc__calloc(1, sizeof *n);
    /* LISTEN takes an identifier: quote it (the channel is case-sensitive). */
    size_t cl = strlen(pb->channel), qn = 0;
    char *sql = hc__malloc(2 * cl + 16);
    if (n == NULL || sql == NULL) {
        free(n);
        free(sql);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
    }
    qn = (size_t)sprintf(sql, "LISTEN \"");
    for (size_t i = 0; i < cl; i++) {
        if (pb->channel[i] == '"') sql[qn++] = '"';
        sql[qn++] = pb->channel[i];
    }
    memcpy(sql + qn, "\"", 2);
    n->listen_sql = sql;
    n->ph = PH_WAIT;
    pb->drv = n;
    return HC_OK;
}

static void notify_free(hc_pg_bus *pb)
{
    pgn *n = S(pb);
    if (n == NULL) return;
    if (n->a.conn) PQfinish(n->a.conn);
    free(n->listen_sql);
    free(n);
    pb->drv = NULL;
}

const hc_pg_driver hc__pg_notify_driver = {
    .name = "notify",
    .init = notify_init,
    .free = notify_free,
    .step = notify_step,
    .due = notify_due,
    .close = notify_close,
    .on_sync = on_sync,
};
