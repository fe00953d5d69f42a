/*
 * pgwal.c - the logical replication driver of the PostgreSQL bus: the
 * invalidations arrive through the WAL instead of NOTIFY (docs/BUS.md,
 * "Transports").
 *
 * Two connections:
 *  - an ordinary one ("sql") that sets the session up (synchronous_commit =
 *    local, checks wal_level, creates the empty publication when missing),
 *    publishes this node's queued invalidations as transactional logical
 *    decoding messages (pg_logical_emit_message, prefix "<channel>/<epoch>",
 *    one autocommit statement per batch) and runs the health probe;
 *  - a replication connection ("repl", replication=database) that creates a
 *    TEMPORARY logical slot (it dies with the connection, so a dead consumer
 *    never retains WAL) and streams it with pgoutput (proto_version 1,
 *    messages on): messages whose prefix is the channel (the extension's
 *    triggers with hydracache.transport = wal) or "<channel>/..." (other
 *    buses) are delivered; everything else in the stream is skipped.
 *
 * States: WAIT -> SQL_CONNECTING -> SETUP -> REPL_CONNECTING -> SLOT ->
 * START -> READY (streaming: the transport is up).  Losing either connection,
 * a malformed stream, or a failed setup drops both, flushes and bypasses the
 * caches, and reconnects with backoff (a new slot).
 *
 * Positions: applied_lsn is the stream position up to which everything has
 * been applied (a COMMIT's end, a keepalive's walEnd once all before it was
 * read).  It is reported as written/flushed/applied in standby status
 * updates, on request, at most every STATUS_MS when it moved, and every
 * health_interval_ms anyway, so confirmed_flush follows also on an idle
 * database.  The sync barrier is an LSN barrier: the batch statement
 * returns the LSN of its messages; the tokens in it are synced once
 * applied_lsn reaches that LSN (nothing anyone else writes can forge that).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <libpq-fe.h>

#include "alloc.h"
#include "pgbus_int.h"
#include "pgrepl.h"

#define STATUS_MS 200 /* at most this often when the position moved */
#define MAX_WAITS 16

typedef enum phase {
    W_WAIT,
    W_SQL_CONNECTING,
    W_SETUP,
    W_REPL_CONNECTING,
    W_SLOT,
    W_START,
    W_READY
} phase;

typedef enum query_kind { Q_NONE, Q_SETUP, Q_PUBLISH, Q_HEALTH } query_kind;

typedef struct sync_wait {
    uint64_t seq, lsn;
} sync_wait;

typedef struct pgw {
    hc_pg_attempt sql, repl; /* .conn: the connections */
    phase ph;
    /* the statement in flight on sql */
    query_kind q;
    bool q_ok;
    char q_err[HC_ERROR_MSG_MAX];
    char q_val[64]; /* first value of the last row */
    uint64_t q_started_ms;
    /* the replication command in flight (slot, start) */
    uint64_t r_started_ms;
    uint64_t next_connect_ms, next_health_ms, next_publish_ms, next_status_ms, last_status_ms;
    unsigned attempt, publish_attempt, slot_n;
    char slot[64];
    char own_prefix[96];
    char setup_sql[512];
    uint64_t applied_lsn, reported_lsn;
    bool reply_now;
    sync_wait waits[MAX_WAITS];
    size_t nwaits;
} pgw;

static pgw *S(hc_pg_bus *pb)
{
    return pb->drv;
}

static void close_conns(hc_pg_bus *pb)
{
    pgw *w = S(pb);
    hc__pgbus_watch(pb, 0, -1, 0, false);
    hc__pgbus_watch(pb, 1, -1, 0, false);
    if (w->sql.conn) PQfinish(w->sql.conn);
    if (w->repl.conn) PQfinish(w->repl.conn);
    w->sql.conn = w->repl.conn = NULL;
    w->q = Q_NONE;
    w->nwaits = 0;
}

static void lose(hc_pg_bus *pb, const char *why, uint64_t now)
{
    pgw *w = S(pb);
    bool was_streaming = w->ph == W_READY;
    char detail[HC_ERROR_MSG_MAX];
    snprintf(detail, sizeof detail, "%s", why ? why : ""); /* why may live in a connection */
    close_conns(pb);
    hc__pgbus_down(pb, was_streaming, detail);
    w->ph = W_WAIT;
    w->next_connect_ms = now + hc__pgbus_backoff_ms(pb, &w->attempt);
}

static void lose_conn(hc_pg_bus *pb, PGconn *c, const char *what, uint64_t now)
{
    char why[HC_ERROR_MSG_MAX];
    snprintf(why, sizeof why, "%s: %s", what, c ? PQerrorMessage(c) : "out of memory");
    lose(pb, why, now);
}

/* ------------------------------------------------------------- the sql side */

static void sent_query(hc_pg_bus *pb, query_kind k, uint64_t now)
{
    pgw *w = S(pb);
    w->q = k;
    w->q_ok = false;
    w->q_err[0] = w->q_val[0] = '\0';
    w->q_started_ms = now;
    pb->progress++;
}

static void take_result(pgw *w, PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        /* A multi-statement query is ok only if every result is. */
        if (w->q_err[0] == '\0') w->q_ok = true;
        if (s == PGRES_TUPLES_OK && PQntuples(r) >= 1 && PQnfields(r) >= 1 && !PQgetisnull(r, 0, 0))
            snprintf(w->q_val, sizeof w->q_val, "%s", PQgetvalue(r, 0, 0));
    } else {
        w->q_ok = false;
        snprintf(w->q_err, sizeof w->q_err, "%s", PQresultErrorMessage(r));
    }
}

static void check_waits(hc_pg_bus *pb)
{
    pgw *w = S(pb);
    uint64_t done = 0;
    size_t keep = 0;
    for (size_t i = 0; i < w->nwaits; i++) {
        if (w->waits[i].lsn <= w->applied_lsn) {
            if (w->waits[i].seq > done) done = w->waits[i].seq;
        } else {
            w->waits[keep++] = w->waits[i];
        }
    }
    w->nwaits = keep;
    if (done) hc__pgbus_synced(pb, done);
}

static void add_wait(hc_pg_bus *pb, uint64_t seq, uint64_t lsn)
{
    pgw *w = S(pb);
    if (w->nwaits == MAX_WAITS) {
        /* Merge into the newest: a later LSN also covers the earlier token. */
        sync_wait *last = &w->waits[MAX_WAITS - 1];
        if (seq > last->seq) last->seq = seq;
        if (lsn > last->lsn) last->lsn = lsn;
    } else {
        w->waits[w->nwaits++] = (sync_wait){seq, lsn};
    }
    check_waits(pb);
}

static void publish_done(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    uint64_t lsn = 0;
    bool ok = w->q_ok && hc__repl_parse_lsn(w->q_val, &lsn);
    uint64_t seq = 0;
    pthread_mutex_lock(&pb->mu);
    if (ok) {
        seq = hc__pubq_done(&pb->q);
    } else {
        hc__pubq_fail_inflight(&pb->q);
        pb->q.need_flush = true;
    }
    pthread_mutex_unlock(&pb->mu);
    if (ok) {
        w->publish_attempt = 0;
        if (seq) add_wait(pb, seq, lsn);
    } else {
        w->next_publish_ms = now + hc__pgbus_backoff_ms(pb, &w->publish_attempt);
    }
}

static const char PUBLISH_SQL[] =
    "SELECT pg_catalog.max(pg_catalog.pg_logical_emit_message(true, $1, p)) "
    "FROM pg_catalog.unnest($2::pg_catalog.text[]) AS p";

static void send_batch(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    pthread_mutex_lock(&pb->mu);
    hc_pubq_item *batch =
        hc__pubq_take(&pb->q, HC_PGBUS_BATCH_MAX_ITEMS, HC_PGBUS_BATCH_MAX_BYTES);
    bool flush_first = pb->q.inflight_flush;
    pthread_mutex_unlock(&pb->mu);
    char *literal = NULL;
    if (hc__pubq_encode(batch, flush_first, pb->node_id, pb->epoch, &literal) != HC_OK) {
        pthread_mutex_lock(&pb->mu);
        hc__pubq_fail_inflight(&pb->q);
        pthread_mutex_unlock(&pb->mu);
        w->next_publish_ms = now + hc__pgbus_backoff_ms(pb, &w->publish_attempt);
        return;
    }
    const char *vals[2] = {w->own_prefix, literal};
    bool sent = PQsendQueryParams(w->sql.conn, PUBLISH_SQL, 2, NULL, vals, NULL, NULL, 0);
    free(literal);
    if (!sent) {
        lose_conn(pb, w->sql.conn, "publish", now);
        return;
    }
    sent_query(pb, Q_PUBLISH, now);
}

static void start_repl(hc_pg_bus *pb, uint64_t now);

static void query_done(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    query_kind k = w->q;
    w->q = Q_NONE;
    pb->progress++;
    switch (k) {
    case Q_SETUP:
        if (!w->q_ok) {
            lose(pb, w->q_err, now);
            return;
        }
        if (strcmp(w->q_val, "logical") != 0) {
            char why[128];
            snprintf(why, sizeof why, "the WAL transport needs wal_level = logical (it is %s)",
                     w->q_val);
            lose(pb, why, now);
            return;
        }
        start_repl(pb, now);
        break;
    case Q_PUBLISH:
        publish_done(pb, now);
        break;
    case Q_HEALTH:
        if (!w->q_ok) lose(pb, w->q_err, now);
        break;
    case Q_NONE:
        break;
    }
}

/* Read results on the sql connection; false when the connection was lost. */
static bool sql_input(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    if (!PQconsumeInput(w->sql.conn)) {
        lose_conn(pb, w->sql.conn, "bus connection", now);
        return false;
    }
    while (w->q != Q_NONE && !PQisBusy(w->sql.conn)) {
        PGresult *r = PQgetResult(w->sql.conn);
        if (r == NULL) {
            query_done(pb, now);
            if (w->sql.conn == NULL) return false;
            continue;
        }
        take_result(w, r);
        PQclear(r);
    }
    PGnotify *n;
    while ((n = PQnotifies(w->sql.conn)) != NULL) PQfreemem(n);
    if (PQstatus(w->sql.conn) != CONNECTION_OK) {
        lose_conn(pb, w->sql.conn, "bus connection", now);
        return false;
    }
    if (w->q != Q_NONE && now - w->q_started_ms >= pb->query_timeout_ms) {
        lose(pb, "statement timed out: server unreachable", now);
        return false;
    }
    return true;
}

static bool flush_out(hc_pg_bus *pb, hc_pg_attempt *a, uint64_t now)
{
    int f = PQflush(a->conn);
    if (f < 0) {
        lose_conn(pb, a->conn, a->slot ? "replication connection" : "bus connection", now);
        return false;
    }
    hc__pgbus_watch(pb, a->slot, PQsocket(a->conn), f == 1 ? (EPOLLIN | EPOLLOUT) : EPOLLIN,
                    false);
    return true;
}

/* ------------------------------------------------------ the replication side */

static void start_repl(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    if (!hc__pgbus_connect_start(pb, &w->repl, true, now)) {
        lose_conn(pb, w->repl.conn, "replication connection", now);
        return;
    }
    w->ph = W_REPL_CONNECTING;
}

static bool repl_command(hc_pg_bus *pb, const char *cmd, phase next, uint64_t now)
{
    pgw *w = S(pb);
    if (!PQsendQuery(w->repl.conn, cmd)) {
        lose_conn(pb, w->repl.conn, "replication connection", now);
        return false;
    }
    w->ph = next;
    w->r_started_ms = now;
    pb->progress++;
    return true;
}

static void send_status(hc_pg_bus *pb, uint64_t now, bool reply)
{
    pgw *w = S(pb);
    char msg[HC_REPL_STATUS_LEN];
    uint64_t lsn = w->applied_lsn;
    hc__repl_status(msg, lsn, lsn, lsn, hc__repl_now_us(), reply);
    int r = PQputCopyData(w->repl.conn, msg, sizeof msg);
    if (r < 0) {
        lose_conn(pb, w->repl.conn, "replication connection", now);
        return;
    }
    if (r == 0) return; /* output buffer full (non-blocking): again on the next step */
    w->reported_lsn = lsn;
    pthread_mutex_lock(&pb->mu);
    pb->st.wal_applied_lsn = lsn;
    pthread_mutex_unlock(&pb->mu);
    w->last_status_ms = now;
    w->next_status_ms = now + pb->health_interval_ms;
    w->reply_now = false;
    pb->progress++;
}

/* Who sent a message, from its prefix: the channel itself (the extension's
 * triggers, hydracache.invalidate(), pg_logical_emit_message by hand), or
 * "<channel>/<epoch>" (a bus; ours when the epoch is ours).  -1: not ours
 * to read. */
static int message_sender(hc_pg_bus *pb, const char *prefix)
{
    pgw *w = S(pb);
    size_t cl = strlen(pb->channel);
    if (strncmp(prefix, pb->channel, cl) != 0) return -1;
    if (prefix[cl] == '\0') return HC_SENDER_OTHER;
    if (prefix[cl] != '/') return -1;
    return strcmp(prefix, w->own_prefix) == 0 ? HC_SENDER_SELF : HC_SENDER_OTHER;
}

static void advance(hc_pg_bus *pb, uint64_t lsn)
{
    pgw *w = S(pb);
    if (lsn <= w->applied_lsn) return;
    w->applied_lsn = lsn;
    if (w->nwaits) check_waits(pb);
}

/* One CopyData message; false when the stream cannot be trusted any more. */
static bool on_copy_data(hc_pg_bus *pb, const char *buf, size_t len, hc_error *err)
{
    hc_repl_msg m;
    if (hc__repl_parse(buf, len, &m, err) != HC_OK) return false;
    switch (m.kind) {
    case HC_REPL_KEEPALIVE:
        /* Everything before it in the stream has been read and applied. */
        advance(pb, m.wal_end);
        if (m.reply_requested) S(pb)->reply_now = true;
        break;
    case HC_REPL_MESSAGE: {
        int sender = message_sender(pb, m.prefix);
        if (sender >= 0)
            hc_bus_deliver_from(pb->bus, m.content, m.content_len, (hc_bus_sender)sender, NULL);
        if (!m.transactional) advance(pb, m.lsn);
        break;
    }
    case HC_REPL_COMMIT:
        advance(pb, m.lsn);
        break;
    case HC_REPL_BEGIN:
    case HC_REPL_OTHER:
        break;
    }
    return true;
}

static void repl_stream(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    if (!PQconsumeInput(w->repl.conn)) {
        lose_conn(pb, w->repl.conn, "replication connection", now);
        return;
    }
    for (int i = 0; i < 4096; i++) {
        char *buf = NULL;
        int n = PQgetCopyData(w->repl.conn, &buf, 1);
        if (n == 0) break;
        if (n < 0) {
            /* -1: the server ended the stream (its error follows); -2: error. */
            char why[HC_ERROR_MSG_MAX] = "replication stream ended";
            PGresult *r = n == -1 ? PQgetResult(w->repl.conn) : NULL;
            const char *e = r ? PQresultErrorMessage(r) : PQerrorMessage(w->repl.conn);
            if (e && *e) snprintf(why, sizeof why, "replication stream: %s", e);
            PQclear(r);
            lose(pb, why, now);
            return;
        }
        hc_error err = {0};
        bool ok = on_copy_data(pb, buf, (size_t)n, &err);
        PQfreemem(buf);
        pb->progress++;
        if (!ok) {
            lose(pb, err.message, now);
            return;
        }
    }
    if (w->reply_now || (w->applied_lsn > w->reported_lsn && now >= w->last_status_ms + STATUS_MS) ||
        now >= w->next_status_ms) {
        send_status(pb, now, false);
        if (w->repl.conn == NULL) return;
    }
    flush_out(pb, &w->repl, now);
}

/* A replication command's result arrived (slot created, streaming started). */
static void repl_command_step(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    if (!PQconsumeInput(w->repl.conn)) {
        lose_conn(pb, w->repl.conn, "replication connection", now);
        return;
    }
    if (now - w->r_started_ms >= pb->query_timeout_ms) {
        lose(pb, w->ph == W_SLOT ? "creating the replication slot timed out"
                                 : "starting replication timed out",
             now);
        return;
    }
    while (!PQisBusy(w->repl.conn)) {
        PGresult *r = PQgetResult(w->repl.conn);
        if (r == NULL) break;
        ExecStatusType s = PQresultStatus(r);
        char why[HC_ERROR_MSG_MAX];
        snprintf(why, sizeof why, "%s: %s",
                 w->ph == W_SLOT ? "creating the replication slot" : "starting replication",
                 PQresultErrorMessage(r));
        PQclear(r);
        if (w->ph == W_SLOT && s == PGRES_TUPLES_OK) {
            continue; /* then NULL: the command is complete */
        } else if (w->ph == W_START && s == PGRES_COPY_BOTH) {
            w->ph = W_READY;
            w->attempt = 0;
            w->applied_lsn = w->reported_lsn = 0;
            w->next_health_ms = now + pb->health_interval_ms;
            w->next_status_ms = now + pb->health_interval_ms;
            hc__pgbus_set_backend(pb, PQbackendPID(w->repl.conn));
            hc__pgbus_up(pb); /* streaming: flush and serve again */
            return;
        }
        lose(pb, why, now);
        return;
    }
    if (w->ph == W_SLOT && !PQisBusy(w->repl.conn)) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "START_REPLICATION SLOT \"%s\" LOGICAL 0/0 (proto_version '1', "
                 "publication_names '\"%s\"', messages 'true')",
                 w->slot, pb->publication);
        repl_command(pb, cmd, W_START, now);
    }
}

static void connected_step(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    if (!sql_input(pb, now)) return;
    if (w->ph == W_SLOT || w->ph == W_START) {
        repl_command_step(pb, now);
        if (w->sql.conn == NULL) return;
    } else if (w->ph == W_READY) {
        repl_stream(pb, now);
        if (w->repl.conn == NULL) return;
        if (w->q == Q_NONE) {
            pthread_mutex_lock(&pb->mu);
            bool work = hc__pubq_has_work(&pb->q);
            pthread_mutex_unlock(&pb->mu);
            if (now >= w->next_health_ms) {
                if (!PQsendQuery(w->sql.conn, "SELECT 1")) {
                    lose_conn(pb, w->sql.conn, "bus connection", now);
                    return;
                }
                sent_query(pb, Q_HEALTH, now);
                w->next_health_ms = now + pb->health_interval_ms;
            } else if (work && now >= w->next_publish_ms) {
                send_batch(pb, now);
                if (w->sql.conn == NULL) return;
            }
        }
    }
    flush_out(pb, &w->sql, now);
}

/* ------------------------------------------------------------ driver ops */

static void wal_step(hc_pg_bus *pb, uint64_t now)
{
    pgw *w = S(pb);
    const char *why = NULL;
    int r;
    switch (w->ph) {
    case W_WAIT:
        if (now < w->next_connect_ms) return;
        if (!hc__pgbus_connect_start(pb, &w->sql, false, now)) {
            lose_conn(pb, w->sql.conn, "bus connection", now);
            return;
        }
        w->ph = W_SQL_CONNECTING;
        return;
    case W_SQL_CONNECTING:
        r = hc__pgbus_connect_step(pb, &w->sql, now, &why);
        if (r < 0) lose(pb, why, now);
        if (r <= 0) return;
        if (!PQsendQuery(w->sql.conn, w->setup_sql)) {
            lose_conn(pb, w->sql.conn, "bus connection", now);
            return;
        }
        w->ph = W_SETUP;
        sent_query(pb, Q_SETUP, now);
        return;
    case W_SETUP:
        sql_input(pb, now);
        return;
    case W_REPL_CONNECTING:
        if (!sql_input(pb, now)) return;
        r = hc__pgbus_connect_step(pb, &w->repl, now, &why);
        if (r < 0) lose(pb, why, now);
        if (r <= 0) return;
        {
            char cmd[160];
            snprintf(w->slot, sizeof w->slot, "hc_%s_%u", pb->epoch, ++w->slot_n);
            snprintf(cmd, sizeof cmd,
                     "CREATE_REPLICATION_SLOT \"%s\" TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                     w->slot);
            if (repl_command(pb, cmd, W_SLOT, now)) flush_out(pb, &w->repl, now);
        }
        return;
    case W_SLOT:
    case W_START:
    case W_READY:
        connected_step(pb, now);
        return;
    }
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t wal_due(hc_pg_bus *pb)
{
    pgw *w = S(pb);
    uint64_t due = UINT64_MAX;
    switch (w->ph) {
    case W_WAIT: return w->next_connect_ms;
    case W_SQL_CONNECTING: return w->sql.deadline_ms;
    case W_REPL_CONNECTING: due = w->repl.deadline_ms; break;
    case W_SLOT:
    case W_START: due = w->r_started_ms + pb->query_timeout_ms; break;
    case W_SETUP:
    case W_READY: break;
    }
    if (w->q != Q_NONE) due = min_u64(due, w->q_started_ms + pb->query_timeout_ms);
    if (w->ph != W_READY) return due;
    due = min_u64(due, w->next_status_ms);
    if (w->applied_lsn > w->reported_lsn) due = min_u64(due, w->last_status_ms + STATUS_MS);
    if (w->q == Q_NONE) {
        due = min_u64(due, w->next_health_ms);
        pthread_mutex_lock(&pb->mu);
        bool work = hc__pubq_has_work(&pb->q);
        pthread_mutex_unlock(&pb->mu);
        if (work) due = min_u64(due, w->next_publish_ms);
    }
    return due;
}

static void wal_close(hc_pg_bus *pb)
{
    close_conns(pb);
    S(pb)->ph = W_WAIT;
}

static hc_status wal_init(hc_pg_bus *pb, hc_error *err)
{
    pgw *w = hc__calloc(1, sizeof *w);
    if (w == NULL) return hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
    w->sql.slot = 0;
    w->repl.slot = 1;
    w->ph = W_WAIT;
    snprintf(w->own_prefix, sizeof w->own_prefix, "%s/%s", pb->channel, pb->epoch);
    /* The publication name is [a-z0-9_] (checked by hc_pg_bus_new): safe to
     * splice.  Creating it races with other buses: a duplicate is fine. */
    snprintf(w->setup_sql, sizeof w->setup_sql,
             "SET synchronous_commit = local;"
             " DO $hc$ BEGIN"
             " IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = '%s')"
             " THEN CREATE PUBLICATION %s; END IF;"
             " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $hc$;"
             " SELECT pg_catalog.current_setting('wal_level')",
             pb->publication, pb->publication);
    pb->drv = w;
    return HC_OK;
}

static void wal_free(hc_pg_bus *pb)
{
    pgw *w = S(pb);
    if (w == NULL) return;
    if (w->sql.conn) PQfinish(w->sql.conn);
    if (w->repl.conn) PQfinish(w->repl.conn);
    free(w);
    pb->drv = NULL;
}

const hc_pg_driver hc__pg_wal_driver = {
    .name = "wal",
    .init = wal_init,
    .free = wal_free,
    .step = wal_step,
    .due = wal_due,
    .close = wal_close,
    .on_sync = NULL, /* an LSN barrier, not a token */
};
