/* check_pgbus.c - the PostgreSQL bus against a real server: invalidation
 * across processes, the sync barrier, connection loss and server restart,
 * malformed payloads, echo suppression, event-loop mode, and a stress run.
 * Every test that is not about one transport's mechanics runs twice: over
 * LISTEN/NOTIFY (TCases "basic", "faults") and over logical replication
 * (TCases "wal", "wal-faults"); SQL that stands for the extension's trigger
 * sends the payload the way the transport under test carries it. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus_int.h"
#include "hc_test.h"
#include "hydracache/bus.h"

#define NITEMS 20
#define WAIT_MS 20000

/* ------------------------------------------------------------------ helpers */

/* The transport under test: set by each TCase's checked fixture. */
static hc_pg_bus_transport transport = HC_PG_BUS_NOTIFY;

static void use_notify(void)
{
    transport = HC_PG_BUS_NOTIFY;
}

static void use_wal(void)
{
    transport = HC_PG_BUS_WAL;
}

static bool wal(void)
{
    return transport == HC_PG_BUS_WAL;
}

/* SQL sending the payload expression `expr` on channel `ch` the way the
 * transport under test carries it (what the extension's trigger does with
 * hydracache.transport = notify / wal). */
static void emit_sql(char *buf, size_t cap, const char *ch, const char *expr)
{
    if (wal()) snprintf(buf, cap, "SELECT pg_logical_emit_message(true, '%s', %s)", ch, expr);
    else snprintf(buf, cap, "SELECT pg_notify('%s', %s)", ch, expr);
}

static void send_payload(PGconn *c, const char *ch, const char *expr)
{
    char sql[512];
    emit_sql(sql, sizeof sql, ch, expr);
    hc_test_exec(c, sql);
}

static void setup_db(void)
{
    PGconn *c = hc_test_connect();
    hc_test_exec(c, "SET client_min_messages = warning");
    hc_test_exec(c, "DROP TABLE IF EXISTS items");
    hc_test_exec(c, "CREATE TABLE items (id int PRIMARY KEY, val text NOT NULL)");
    hc_test_exec(c, "INSERT INTO items SELECT g, 'v0' FROM generate_series(1, 20) g");
    PQfinish(c);
}

static hc_pg_bus_config bus_cfg(const char *node, hc_pg_bus_mode mode)
{
    hc_pg_bus_config cfg = {
        .conninfo = hc_test_conninfo(),
        .node_id = node,
        .mode = mode,
        .backoff_initial_ms = 20,
        .backoff_max_ms = 200,
        .health_interval_ms = 100,
        .query_timeout_ms = 5000,
        .transport = transport,
    };
    return cfg;
}

static hc_pg_bus *new_bus_cfg(const hc_pg_bus_config *cfg)
{
    hc_error err;
    hc_pg_bus *b = hc_pg_bus_new(cfg, &err);
    ck_assert_msg(b != NULL, "hc_pg_bus_new: %s", err.message);
    return b;
}

static hc_pg_bus *new_bus(const char *node)
{
    hc_pg_bus_config cfg = bus_cfg(node, HC_PG_BUS_THREAD);
    return new_bus_cfg(&cfg);
}

static void wait_listening(hc_pg_bus *b)
{
    ck_assert_int_eq(hc_pg_bus_wait_state(b, HC_BUS_LISTENING, WAIT_MS), HC_OK);
}

static void sync_ok(hc_pg_bus *b)
{
    hc_error err = {0};
    hc_status st = hc_pg_bus_sync(b, WAIT_MS, &err);
    ck_assert_msg(st == HC_OK, "sync: %s (%s)", hc_status_str(st), err.message);
}

static hc_cache *new_cache(void)
{
    hc_cache *c = hc_cache_new(NULL, NULL);
    ck_assert_ptr_nonnull(c);
    return c;
}

static hc_stats stats_of(hc_cache *c)
{
    hc_stats s;
    hc_cache_stats(c, &s);
    return s;
}

static void item_key(char *buf, size_t cap, int id)
{
    snprintf(buf, cap, "item:%d", id);
}

/* Loader: SELECT val FROM items WHERE id = <id from "item:<id>">. ctx: PGconn*. */
static hc_status load_item(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    PGconn *conn = ctx;
    const char *id = strchr(key, ':') + 1;
    const char *params[] = {id};
    PGresult *r = PQexecParams(conn, "SELECT val FROM items WHERE id = $1::int", 1, NULL, params,
                               NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        hc_error_set(err, HC_ERR_LOADER, "load %s: %s", key, PQresultErrorMessage(r));
        PQclear(r);
        return HC_ERR_LOADER;
    }
    *out = hc_value_new(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    return HC_OK;
}

/* Cached value of item id through the cache (loads on a miss), malloc'd. */
static char *get_item(hc_cache *c, PGconn *conn, int id)
{
    char key[32], tag[32];
    item_key(key, sizeof key, id);
    snprintf(tag, sizeof tag, "item:%d", id);
    hc_value *v = NULL;
    hc_error err;
    /* As the adapter tags an entity entry: its entity tag and the table-wide tag. */
    hc_status st = hc_get_or_load(c, key, HC_OPTS(.tags = HC_TAGS(tag, "item:*")),
                                  load_item, conn, &v, &err);
    if (st != HC_OK) return NULL;
    char *s = strndup(hc_value_data(v), hc_value_len(v));
    hc_value_release(v);
    return s;
}

static char *db_item(PGconn *conn, int id)
{
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT val FROM items WHERE id = %d", id);
    return hc_test_scalar(conn, sql);
}

/* What the extension's trigger does, from plain SQL: the write and its
 * invalidation commit together. */
static void update_sql(char *sql, size_t cap, int id, const char *val, const char *payload)
{
    char emit[256];
    emit_sql(emit, sizeof emit, "hydracache", payload);
    snprintf(sql, cap, "BEGIN; UPDATE items SET val = '%s' WHERE id = %d; %s; COMMIT", val, id, emit);
}

static void update_item(PGconn *conn, int id, const char *val)
{
    char sql[512], payload[64];
    snprintf(payload, sizeof payload, "'hc1 db t item:%d items'", id);
    update_sql(sql, sizeof sql, id, val, payload);
    hc_test_exec(conn, sql);
}

static bool cached(hc_cache *c, int id)
{
    char key[32];
    item_key(key, sizeof key, id);
    return hc_contains(c, key, NULL) == HC_OK;
}

/* Every cached item equals the database (or is not cached). */
static void assert_no_stale(hc_cache *c, PGconn *conn)
{
    for (int id = 1; id <= NITEMS; id++) {
        char key[32];
        item_key(key, sizeof key, id);
        hc_value *v = NULL;
        if (hc_get(c, key, &v, NULL) != HC_OK) continue;
        char *db = db_item(conn, id);
        ck_assert_msg(hc_value_len(v) == strlen(db) && memcmp(hc_value_data(v), db, strlen(db)) == 0,
                      "item %d cached as %.*s but the database has %s", id, (int)hc_value_len(v),
                      (const char *)hc_value_data(v), db);
        free(db);
        hc_value_release(v);
    }
}

typedef struct stat_wait {
    hc_cache *c;
    uint64_t disconnects;
} stat_wait;

static bool disconnected(void *ctx)
{
    stat_wait *w = ctx;
    return stats_of(w->c).bus_disconnects >= w->disconnects;
}

/* ------------------------------------------------------------ basic flows */

START_TEST(test_bad_configs_are_refused)
{
    hc_error err;
    ck_assert_ptr_null(hc_pg_bus_new(NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.conninfo = NULL;
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    cfg.conninfo = "host = = x";
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    cfg = bus_cfg("db", HC_PG_BUS_THREAD);
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.channel = "";
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    cfg.channel = "0123456789012345678901234567890123456789012345678901234567890123"; /* 64 */
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    cfg = bus_cfg(NULL, (hc_pg_bus_mode)7);
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    hc_pg_bus_free(NULL);
}
END_TEST

START_TEST(test_cache_attached_before_listen_stays_in_bypass_until_listening)
{
    hc_pg_bus_config cfg = bus_cfg("early", HC_PG_BUS_EVENT_LOOP);
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    ck_assert_int_eq(hc_pg_bus_attach(b, c, NULL), HC_OK);
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    ck_assert(d.bypass);
    ck_assert_int_eq(d.bus_state, HC_BUS_CONNECTING);
    hc_put(c, "k", "v", 1, NULL, NULL);
    ck_assert_int_eq(hc_contains(c, "k", NULL), HC_MISS);

    uint64_t deadline = hc_test_now_us() + WAIT_MS * 1000ull;
    while (hc_pg_bus_state(b) != HC_BUS_LISTENING && hc_test_now_us() < deadline) {
        struct pollfd p = {.fd = hc_pg_bus_fd(b), .events = POLLIN};
        poll(&p, 1, hc_pg_bus_next_timeout_ms(b));
        ck_assert_int_eq(hc_pg_bus_poll(b, NULL), HC_OK);
    }
    hc_cache_diagnostics(c, &d);
    ck_assert_int_eq(d.bus_state, HC_BUS_LISTENING);
    ck_assert(!d.bypass);
    hc_put(c, "k", "v", 1, NULL, NULL);
    ck_assert_int_eq(hc_contains(c, "k", NULL), HC_OK);
    hc_pg_bus_free(b);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_update_invalidates_and_sync_leaves_nothing_stale)
{
    PGconn *db = hc_test_connect(), *w = hc_test_connect();
    hc_pg_bus *b = new_bus(NULL);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    for (int id = 1; id <= NITEMS; id++) free(get_item(c, db, id));
    ck_assert(cached(c, 3));
    update_item(w, 3, "v1");
    update_item(w, 5, "v1");
    sync_ok(b);
    ck_assert(!cached(c, 3));
    ck_assert(!cached(c, 5));
    ck_assert(cached(c, 4));
    assert_no_stale(c, db);
    char *v = get_item(c, db, 3);
    ck_assert_str_eq(v, "v1");
    free(v);
    hc_stats s = stats_of(c);
    ck_assert_uint_ge(s.bus_applied, 4); /* two tags per message */
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_eq(bs.syncs, 1);
    ck_assert_int_gt(bs.backend_pid, 0);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(db);
    PQfinish(w);
}
END_TEST

START_TEST(test_local_invalidation_reaches_another_node)
{
    PGconn *db = hc_test_connect();
    hc_pg_bus *b1 = new_bus("node1"), *b2 = new_bus("node2");
    hc_cache *c1 = new_cache(), *c2 = new_cache();
    hc_pg_bus_attach(b1, c1, NULL);
    hc_pg_bus_attach(b2, c2, NULL);
    wait_listening(b1);
    wait_listening(b2);
    free(get_item(c2, db, 1));
    free(get_item(c2, db, 2));
    free(get_item(c2, db, 3));
    hc_invalidate_key(c1, "item:1", NULL);
    hc_invalidate_tag(c1, "item:2", NULL);
    sync_ok(b1); /* node1's messages are committed... */
    sync_ok(b2); /* ...and node2 has applied them */
    ck_assert(!cached(c2, 1));
    ck_assert(!cached(c2, 2));
    ck_assert(cached(c2, 3));
    hc_flush(c1, NULL);
    sync_ok(b1);
    sync_ok(b2);
    ck_assert(!cached(c2, 3));
    hc_pg_bus_free(b1);
    hc_pg_bus_free(b2);
    hc_cache_free(c1);
    hc_cache_free(c2);
    PQfinish(db);
}
END_TEST

START_TEST(test_own_invalidation_is_not_applied_twice)
{
    hc_pg_bus *b = new_bus("self");
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    hc_put(c, "item:1", "x", 1, NULL, NULL);
    hc_invalidate_key(c, "item:1", NULL);
    hc_put(c, "item:1", "y", 1, NULL, NULL);
    uint64_t applied = stats_of(c).bus_applied;
    sync_ok(b); /* the echo went out before the token, so it has arrived */
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_eq(bs.own_ignored, 1);
    ck_assert_uint_eq(stats_of(c).bus_received, 2); /* the echo and the token */
    ck_assert_uint_eq(stats_of(c).bus_applied, applied);
    ck_assert_int_eq(hc_contains(c, "item:1", NULL), HC_OK);
    hc_pg_bus_free(b);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_buses_sharing_a_node_id_apply_each_others_invalidations)
{
    /* Node ids are configured labels: two processes (here two buses) given
     * the same one must not take each other's messages for echoes. */
    hc_pg_bus *b1 = new_bus("twin"), *b2 = new_bus("twin");
    hc_cache *c1 = new_cache(), *c2 = new_cache();
    hc_pg_bus_attach(b1, c1, NULL);
    hc_pg_bus_attach(b2, c2, NULL);
    wait_listening(b1);
    wait_listening(b2);
    hc_put(c1, "k2", "x", 1, NULL, NULL);
    hc_put(c2, "k1", "x", 1, NULL, NULL);
    hc_put(c2, "k3", "x", 1, NULL, NULL);
    hc_invalidate_key(c1, "k1", NULL);
    hc_invalidate_key(c2, "k2", NULL);
    sync_ok(b1); /* each bus's publish committed before its own token */
    sync_ok(b2);
    sync_ok(b1); /* ... and b2's publish, committed before this token, is applied */
    sync_ok(b2);
    ck_assert_int_eq(hc_contains(c2, "k1", NULL), HC_MISS);
    ck_assert_int_eq(hc_contains(c1, "k2", NULL), HC_MISS);
    ck_assert_int_eq(hc_contains(c2, "k3", NULL), HC_OK);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b1, &bs);
    ck_assert_uint_eq(bs.own_ignored, 1); /* its own echo only */
    hc_pg_bus_free(b1);
    hc_pg_bus_free(b2);
    hc_cache_free(c1);
    hc_cache_free(c2);
}
END_TEST

static void poll_once(hc_pg_bus *b)
{
    struct pollfd p = {.fd = hc_pg_bus_fd(b), .events = POLLIN};
    poll(&p, 1, hc_pg_bus_next_timeout_ms(b));
    ck_assert_int_eq(hc_pg_bus_poll(b, NULL), HC_OK);
}

START_TEST(test_forged_sync_token_does_not_complete_a_barrier)
{
    /* Event loop with a long publish backoff: after one rejected publish the
     * bus holds its queue (and our sync token) back, so a token forged by
     * another connection is the only one that can arrive meanwhile. */
    PGconn *spy = hc_test_connect(), *w = hc_test_connect();
    hc_test_exec(spy, "LISTEN hydracache");
    hc_pg_bus_config cfg = bus_cfg("forged", HC_PG_BUS_EVENT_LOOP);
    cfg.backoff_initial_ms = 60000;
    cfg.backoff_max_ms = 60000;
    cfg.health_interval_ms = 60000;
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    while (hc_pg_bus_state(b) != HC_BUS_LISTENING) poll_once(b);
    /* One honest barrier: the spy learns what a token looks like. */
    uint64_t ticket;
    ck_assert_int_eq(hc_pg_bus_sync_begin(b, &ticket, NULL), HC_OK);
    while (hc_pg_bus_sync_check(b, ticket, NULL) == HC_TIMEOUT) poll_once(b);
    char token[128] = "";
    while (token[0] == '\0') {
        struct pollfd p = {.fd = PQsocket(spy), .events = POLLIN};
        poll(&p, 1, WAIT_MS);
        ck_assert(PQconsumeInput(spy));
        PGnotify *n;
        while ((n = PQnotifies(spy)) != NULL) {
            if (strncmp(n->extra, "hc1 forged s ", 13) == 0)
                snprintf(token, sizeof token, "%s", n->extra + 13);
            PQfreemem(n);
        }
    }
    char *dot = strrchr(token, '.');
    ck_assert_ptr_nonnull(dot);
    unsigned long long seq = strtoull(dot + 1, NULL, 10);
    *dot = '\0';
    /* Not valid UTF-8: the server refuses the publish; the bus backs off. */
    hc_invalidate_key(c, "item:\xff\xfe", NULL);
    hc_pg_bus_stats bs;
    do {
        poll_once(b);
        hc_pg_bus_get_stats(b, &bs);
    } while (bs.publish_failures == 0);
    ck_assert_int_eq(hc_pg_bus_sync_begin(b, &ticket, NULL), HC_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_notify('hydracache', 'hc1 forged s %s.%llu')", token,
             seq + 1);
    uint64_t received = bs.received;
    hc_test_exec(w, sql);
    do {
        poll_once(b);
        hc_pg_bus_get_stats(b, &bs);
    } while (bs.received == received);
    ck_assert_int_eq(hc_pg_bus_sync_check(b, ticket, NULL), HC_TIMEOUT);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(spy);
    PQfinish(w);
}
END_TEST

START_TEST(test_malformed_notifies_are_counted_and_ignored)
{
    PGconn *w = hc_test_connect();
    hc_pg_bus *b = new_bus(NULL);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    hc_put(c, "a", "1", 1, NULL, NULL);
    hc_put(c, "b", "1", 1, NULL, NULL);
    send_payload(w, "hydracache", "'garbage'");
    send_payload(w, "hydracache", "'hc2 db k a'");
    send_payload(w, "hydracache", "'hc1 db k a%'");
    send_payload(w, "hydracache", "'hc1 db k a  b'");
    send_payload(w, "hydracache", "'hc1 bad/origin k a'");
    send_payload(w, "hydracache", "'hc1 db z a'");
    send_payload(w, "hydracache", "''");
    send_payload(w, "hydracache", "'hc1 db t ' || repeat('x', 7990)");
    send_payload(w, "other_channel", "'hc1 db k a'");
    send_payload(w, "hydracache", "'hc1 db k b'");
    sync_ok(b);
    ck_assert_int_eq(hc_contains(c, "a", NULL), HC_OK);
    ck_assert_int_eq(hc_contains(c, "b", NULL), HC_MISS);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_eq(bs.malformed, 7);
    hc_stats s = stats_of(c);
    ck_assert_uint_eq(s.bus_malformed, 7);
    ck_assert_uint_eq(s.bus_applied, 1 + 0); /* only "b"; the 7990-byte tag names nothing */
    ck_assert_int_eq(hc_pg_bus_state(b), HC_BUS_LISTENING);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(w);
}
END_TEST

START_TEST(test_queue_usage_is_reported_to_caches)
{
    hc_pg_bus *b = new_bus(NULL);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    sync_ok(b);
    uint64_t deadline = hc_test_now_us() + WAIT_MS * 1000ull;
    double usage;
    /* what diagnostics show for the cache: its bus's probe */
    while ((usage = hc__bus_cache_queue_usage(c)) < 0 && hc_test_now_us() < deadline &&
           hc_pg_bus_sync(b, WAIT_MS, NULL) == HC_OK) {
    }
    ck_assert(usage >= 0.0 && usage <= 1.0);
    ck_assert_double_eq(hc_bus_queue_usage(hc_pg_bus_bus(b)), usage);
    hc_pg_bus_free(b);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_sync_without_a_connection_times_out_and_caches_stay_bypassed)
{
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.conninfo = "host=/nonexistent-socket-dir port=1 connect_timeout=1";
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    hc_error err;
    /* It waits for a listener that never comes, then says so. */
    ck_assert_int_eq(hc_pg_bus_sync(b, 300, &err), HC_TIMEOUT);
    ck_assert_int_eq(err.code, HC_TIMEOUT);
    uint64_t ticket;
    ck_assert_int_eq(hc_pg_bus_sync_begin(b, &ticket, NULL), HC_ERR_PG); /* poll API: at once */
    ck_assert(hc_cache_bypass(c));
    ck_assert_int_eq(hc_pg_bus_state(b), HC_BUS_CONNECTING);
    hc_pg_bus_free(b);
    ck_assert(!hc_cache_bypass(c)); /* detached: a plain local cache again */
    hc_cache_free(c);
}
END_TEST

START_TEST(test_full_publish_queue_becomes_a_flush_broadcast)
{
    PGconn *db = hc_test_connect();
    hc_pg_bus_config cfg = bus_cfg("small", HC_PG_BUS_EVENT_LOOP);
    cfg.publish_queue_max = 2;
    hc_pg_bus *b1 = new_bus_cfg(&cfg);
    hc_pg_bus *b2 = new_bus("receiver");
    hc_cache *c1 = new_cache(), *c2 = new_cache();
    hc_pg_bus_attach(b1, c1, NULL);
    hc_pg_bus_attach(b2, c2, NULL);
    wait_listening(b2);
    uint64_t ticket;
    while (hc_pg_bus_state(b1) != HC_BUS_LISTENING) {
        struct pollfd p = {.fd = hc_pg_bus_fd(b1), .events = POLLIN};
        poll(&p, 1, hc_pg_bus_next_timeout_ms(b1));
        hc_pg_bus_poll(b1, NULL);
    }
    for (int id = 1; id <= 6; id++) free(get_item(c2, db, id));
    /* Nobody polls b1 meanwhile: 2 fit in the queue, 3 are lost. */
    for (int id = 1; id <= 5; id++) {
        char key[32];
        item_key(key, sizeof key, id);
        hc_invalidate_key(c1, key, NULL);
    }
    ck_assert_uint_eq(stats_of(c1).bus_publish_failures, 3);
    ck_assert_int_eq(hc_pg_bus_sync_begin(b1, &ticket, NULL), HC_OK);
    hc_status st;
    while ((st = hc_pg_bus_sync_check(b1, ticket, NULL)) == HC_TIMEOUT) {
        struct pollfd p = {.fd = hc_pg_bus_fd(b1), .events = POLLIN};
        poll(&p, 1, hc_pg_bus_next_timeout_ms(b1));
        hc_pg_bus_poll(b1, NULL);
    }
    ck_assert_int_eq(st, HC_OK);
    sync_ok(b2);
    for (int id = 1; id <= 6; id++) ck_assert_msg(!cached(c2, id), "item %d survived", id);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b1, &bs);
    ck_assert_uint_eq(bs.flush_broadcasts, 1);
    ck_assert_uint_eq(bs.publish_failures, 3);
    hc_pg_bus_free(b1);
    hc_pg_bus_free(b2);
    hc_cache_free(c1);
    hc_cache_free(c2);
    PQfinish(db);
}
END_TEST

START_TEST(test_rejected_publish_becomes_a_flush_broadcast)
{
    PGconn *db = hc_test_connect();
    hc_pg_bus *b1 = new_bus("sender"), *b2 = new_bus("receiver");
    hc_cache *c1 = new_cache(), *c2 = new_cache();
    hc_pg_bus_attach(b1, c1, NULL);
    hc_pg_bus_attach(b2, c2, NULL);
    wait_listening(b1);
    wait_listening(b2);
    free(get_item(c2, db, 1));
    /* Not valid UTF-8: the server refuses the publishing statement. */
    ck_assert_int_eq(hc_invalidate_key(c1, "item:\xff\xfe", NULL), HC_OK);
    sync_ok(b1); /* the token is re-sent after the failed statement */
    sync_ok(b2);
    ck_assert(!cached(c2, 1)); /* flushed instead */
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b1, &bs);
    ck_assert_uint_eq(bs.publish_failures, 1);
    ck_assert_uint_eq(bs.flush_broadcasts, 1);
    ck_assert_uint_eq(stats_of(c1).bus_publish_failures, 1);
    ck_assert_int_eq(hc_pg_bus_state(b1), HC_BUS_LISTENING);
    hc_pg_bus_free(b1);
    hc_pg_bus_free(b2);
    hc_cache_free(c1);
    hc_cache_free(c2);
    PQfinish(db);
}
END_TEST

/* ------------------------------------------------- multi-host connecting */

/* A TCP socket on 127.0.0.1, port chosen by the kernel; listening with
 * backlog `backlog` when backlog >= 0, else only bound (connects refused). */
static int loopback_socket(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (backlog >= 0) ck_assert_int_eq(listen(fd, backlog), 0);
    socklen_t al = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Kernel counter of SYNs dropped because a listen queue was full, read from
 * /proc/net/netstat opened once by the test (f): the proxy thread polls it
 * while the bus connects, and opening it anew each time would take fd numbers
 * (the one libpq just closed, say) from under the bus's sockets, which is the
 * very reuse the test stages for the bus, and a fd race TSan reports. */
static long listen_overflows(FILE *f)
{
    if (f == NULL || fseek(f, 0, SEEK_SET) != 0) return -1;
    char names[4096], vals[4096];
    long v = -1;
    while (v < 0 && fgets(names, sizeof names, f) && fgets(vals, sizeof vals, f)) {
        if (strncmp(names, "TcpExt:", 7) != 0) continue;
        char *sn, *sv;
        char *n = strtok_r(names, " \n", &sn), *x = strtok_r(vals, " \n", &sv);
        while (n && x && strcmp(n, "ListenOverflows") != 0) {
            n = strtok_r(NULL, " \n", &sn);
            x = strtok_r(NULL, " \n", &sv);
        }
        if (n && x) v = atol(x);
    }
    return v;
}

typedef struct slow_proxy {
    int lfd, filler, real_port;
    FILE *netstat;
    long overflows0;
    pthread_t t;
} slow_proxy;

static bool overflowed(void *ctx)
{
    slow_proxy *p = ctx;
    return listen_overflows(p->netstat) > p->overflows0;
}

/* Accept queue full (one un-accepted filler), so the bus's SYN is dropped;
 * once it was, make room: its retransmitted SYN then connects later, on a
 * socket that was not ready when connecting started.  Then relay the
 * connection to the real server until either side closes. */
static void *slow_proxy_main(void *arg)
{
    slow_proxy *p = arg;
    hc_test_wait_for(overflowed, p, WAIT_MS);
    close(accept(p->lfd, NULL, NULL)); /* the filler */
    int c = accept(p->lfd, NULL, NULL);
    int s = c >= 0 ? connect_loopback(p->real_port) : -1;
    char buf[8192];
    while (c >= 0 && s >= 0) {
        struct pollfd f[2] = {{.fd = c, .events = POLLIN}, {.fd = s, .events = POLLIN}};
        if (poll(f, 2, -1) < 0 && errno != EINTR) break;
        int from = (f[0].revents & (POLLIN | POLLHUP | POLLERR)) ? c : s;
        ssize_t n = read(from, buf, sizeof buf);
        if (n <= 0 || write(from == c ? s : c, buf, (size_t)n) != n) break;
    }
    if (c >= 0) close(c);
    if (s >= 0) close(s);
    return NULL;
}

START_TEST(test_multi_host_conninfo_connects_when_the_first_address_refuses)
{
    /* host=a,b: the first address refuses (asynchronously, over TCP), libpq
     * closes that socket and connects the next one, usually on the same fd
     * number.  The bus must watch the new socket: reaching LISTENING must
     * not wait for the connect deadline (query_timeout_ms, set to 30 s). */
    const char *tcp = hc_test_tcp_conninfo();
    FILE *netstat = fopen("/proc/net/netstat", "r");
    if (tcp == NULL || listen_overflows(netstat) < 0) {
        fprintf(stderr, "check_pgbus: no TCP test server or /proc/net/netstat; skipped\n");
        if (netstat != NULL) fclose(netstat);
        return;
    }
    PQconninfoOption *opts = PQconninfoParse(tcp, NULL);
    ck_assert_ptr_nonnull(opts);
    slow_proxy p = {.real_port = 0, .netstat = netstat};
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "port") == 0 && o->val) p.real_port = atoi(o->val);
    PQconninfoFree(opts);
    ck_assert_int_gt(p.real_port, 0);
    int closed_port, proxy_port;
    int closed = loopback_socket(-1, &closed_port);
    p.lfd = loopback_socket(0, &proxy_port);
    p.filler = connect_loopback(proxy_port);
    ck_assert_int_ge(p.filler, 0);
    p.overflows0 = listen_overflows(netstat);
    ck_assert_int_eq(pthread_create(&p.t, NULL, slow_proxy_main, &p), 0);

    char conninfo[1024];
    snprintf(conninfo, sizeof conninfo, "%s host=127.0.0.1,127.0.0.1 port=%d,%d", tcp,
             closed_port, proxy_port);
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.conninfo = conninfo;
    cfg.query_timeout_ms = 30000;
    hc_pg_bus *b = new_bus_cfg(&cfg);
    ck_assert_int_eq(hc_pg_bus_wait_state(b, HC_BUS_LISTENING, 10000), HC_OK);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_eq(bs.connect_failures, 0); /* one attempt, across both hosts */
    hc_pg_bus_free(b);
    pthread_join(p.t, NULL);
    close(p.filler);
    close(p.lfd);
    close(closed);
    fclose(netstat);
}
END_TEST

/* ------------------------------------------------------- event-loop mode */

START_TEST(test_event_loop_mode_applies_on_poll)
{
    PGconn *db = hc_test_connect(), *w = hc_test_connect();
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_EVENT_LOOP);
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    ck_assert_int_eq(hc_pg_bus_sync(b, 10, NULL), HC_ERR_STATE);
    ck_assert_int_eq(hc_pg_bus_wait_state(b, HC_BUS_LISTENING, 10), HC_ERR_STATE);
    int fd = hc_pg_bus_fd(b);
    ck_assert_int_ge(fd, 0);
    while (hc_pg_bus_state(b) != HC_BUS_LISTENING) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, hc_pg_bus_next_timeout_ms(b));
        ck_assert_int_eq(hc_pg_bus_poll(b, NULL), HC_OK);
    }
    free(get_item(c, db, 7));
    ck_assert(cached(c, 7));
    update_item(w, 7, "v2");
    /* the fd becomes readable when the notification arrives */
    while (cached(c, 7)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, hc_pg_bus_next_timeout_ms(b));
        ck_assert_int_eq(hc_pg_bus_poll(b, NULL), HC_OK);
    }
    char *v = get_item(c, db, 7);
    ck_assert_str_eq(v, "v2");
    free(v);
    ck_assert_int_eq(hc_pg_bus_fd(b), fd); /* stable */
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(db);
    PQfinish(w);
}
END_TEST

/* ------------------------------------------------------- connection loss */

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

typedef struct writer {
    pthread_t t;
    volatile int stop;
    int rounds;
} writer;

static void *writer_main(void *arg)
{
    writer *wr = arg;
    PGconn *w = PQconnectdb(hc_test_conninfo());
    PQsetNoticeProcessor(w, quiet, NULL); /* the outage's FATAL is expected */
    for (int i = 0; !__atomic_load_n(&wr->stop, __ATOMIC_ACQUIRE); i++) {
        char sql[512], val[32], payload[64];
        int id = 1 + i % NITEMS;
        snprintf(val, sizeof val, "w%d", i);
        snprintf(payload, sizeof payload, "'hc1 db t item:%d'", id);
        update_sql(sql, sizeof sql, id, val, payload);
        PGresult *r = PQexec(w, sql);
        PQclear(r);
        if (PQstatus(w) != CONNECTION_OK) PQreset(w); /* the server restarted */
        wr->rounds++;
    }
    PQfinish(w);
    return NULL;
}

static void writer_start(writer *wr)
{
    memset(wr, 0, sizeof *wr);
    ck_assert_int_eq(pthread_create(&wr->t, NULL, writer_main, wr), 0);
}

static void writer_stop(writer *wr)
{
    __atomic_store_n(&wr->stop, 1, __ATOMIC_RELEASE);
    pthread_join(wr->t, NULL);
}

/* Break the bus's connection with `cut` (the server stays up when
 * server_up), check flush + bypass during the outage while writes continue,
 * then `restore`, reconnect, and check that after a sync nothing is stale. */
static void outage_test(void (*cut)(hc_pg_bus *b), void (*restore)(void), bool server_up)
{
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    /* A long first backoff (750-1500 ms with jitter) keeps the outage open
     * long enough to look at. */
    cfg.backoff_initial_ms = 1500;
    cfg.backoff_max_ms = 1500;
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    PGconn *db = hc_test_connect();
    PQsetNoticeProcessor(db, quiet, NULL);
    for (int id = 1; id <= NITEMS; id++) free(get_item(c, db, id));
    ck_assert(cached(c, 1));

    writer wr;
    writer_start(&wr);
    cut(b);
    stat_wait sw = {c, 1};
    ck_assert(hc_test_wait_for(disconnected, &sw, WAIT_MS));

    /* the outage: flushed, bypassed, loads not stored */
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    ck_assert_int_eq(d.bus_state, HC_BUS_DISCONNECTED);
    ck_assert(d.bypass);
    ck_assert(!cached(c, 1));
    if (server_up) {
        uint64_t bypassed = d.stats.bypassed_loads;
        char *v = get_item(c, db, 1);
        ck_assert_ptr_nonnull(v);
        free(v);
        ck_assert(!cached(c, 1));
        ck_assert_uint_eq(stats_of(c).bypassed_loads, bypassed + 1);
    }
    if (restore) restore();

    wait_listening(b);
    if (PQstatus(db) != CONNECTION_OK) PQreset(db);
    for (int id = 1; id <= NITEMS; id++) free(get_item(c, db, id));
    writer_stop(&wr);
    sync_ok(b);
    assert_no_stale(c, db);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_ge(bs.disconnects, 1);
    ck_assert_uint_ge(bs.reconnects, 1);
    ck_assert_uint_ge(stats_of(c).bus_reconnects, 1);
    ck_assert_int_gt(wr.rounds, 0);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(db);
}

static void terminate_listener(hc_pg_bus *b)
{
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    PGconn *k = hc_test_connect();
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", bs.backend_pid);
    char *r = hc_test_scalar(k, sql);
    ck_assert_str_eq(r, "t");
    free(r);
    PQfinish(k);
}

START_TEST(test_terminated_listener_flushes_bypasses_and_reconnects)
{
    outage_test(terminate_listener, NULL, true);
}
END_TEST

/* Sync while the listener is down: it waits (within its timeout) for the
 * reconnect and then completes the barrier; an update committed during the
 * outage is gone from the cache afterwards. */
START_TEST(test_sync_during_an_outage_waits_for_the_listener_and_completes)
{
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.backoff_initial_ms = 1500; /* the reconnect comes 750-1500 ms after the loss */
    cfg.backoff_max_ms = 1500;
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    PGconn *db = hc_test_connect(), *w = hc_test_connect();
    terminate_listener(b);
    stat_wait sw = {c, 1};
    ck_assert(hc_test_wait_for(disconnected, &sw, WAIT_MS));
    update_item(w, 13, "outage");
    hc_error err = {0};
    hc_status st = hc_pg_bus_sync(b, WAIT_MS, &err);
    ck_assert_msg(st == HC_OK, "sync: %s (%s)", hc_status_str(st), err.message);
    ck_assert_int_eq(hc_pg_bus_state(b), HC_BUS_LISTENING);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_eq(bs.syncs, 1);
    ck_assert_uint_ge(bs.reconnects, 1);
    char *v = get_item(c, db, 13);
    ck_assert_str_eq(v, "outage");
    free(v);
    assert_no_stale(c, db);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(db);
    PQfinish(w);
}
END_TEST

/* ... and when the listener cannot be back within the timeout, sync says
 * HC_TIMEOUT (here the next attempt is 30-60 s away). */
START_TEST(test_sync_during_a_long_outage_times_out)
{
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.backoff_initial_ms = 60000;
    cfg.backoff_max_ms = 60000;
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    terminate_listener(b);
    stat_wait sw = {c, 1};
    ck_assert(hc_test_wait_for(disconnected, &sw, WAIT_MS));
    hc_error err = {0};
    ck_assert_int_eq(hc_pg_bus_sync(b, 200, &err), HC_TIMEOUT);
    ck_assert_int_eq(err.code, HC_TIMEOUT);
    ck_assert(hc_cache_bypass(c));
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_eq(bs.syncs, 0);
    hc_pg_bus_free(b);
    hc_cache_free(c);
}
END_TEST

/* The restart test stops and starts a server: a cluster of its own, never
 * the shared one other suites are using in parallel (started and stopped by
 * the runner's process, so it goes away even when the test fails). */
static hc_test_cluster g_restart_cluster;

static void restart_cluster_setup(void)
{
    if (hc_test_private_cluster_start(&g_restart_cluster)) {
        hc_test_use_cluster(&g_restart_cluster);
        setup_db();
    }
}

static void restart_cluster_teardown(void)
{
    hc_test_use_cluster(NULL);
    hc_test_private_cluster_stop(&g_restart_cluster);
}

static void stop_server(hc_pg_bus *b)
{
    (void)b;
    ck_assert_msg(hc_test_private_cluster_stop_server(&g_restart_cluster), "%s", g_restart_cluster.error);
}

static void start_server(void)
{
    ck_assert_msg(hc_test_private_cluster_start_server(&g_restart_cluster), "%s", g_restart_cluster.error);
}

START_TEST(test_server_restart_flushes_bypasses_and_reconnects)
{
    if (g_restart_cluster.unavailable) {
        fprintf(stderr, "check_pgbus: server restart test skipped: %s", g_restart_cluster.error);
        return;
    }
    ck_assert_msg(g_restart_cluster.running, "%s", g_restart_cluster.error);
    outage_test(stop_server, start_server, false);
}
END_TEST

/* ------------------------------------------- several processes (fork) */

/* A child process: its own cache, bus and connection, driven by line
 * commands from the parent: "load <id>", "has <id>", "sync", "applied", "quit". */
static void child_main(int in, int out)
{
    FILE *fin = fdopen(in, "r"), *fout = fdopen(out, "w");
    setvbuf(fout, NULL, _IONBF, 0);
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    hc_pg_bus *b = hc_pg_bus_new(&cfg, NULL);
    hc_cache *c = hc_cache_new(NULL, NULL);
    PGconn *db = PQconnectdb(hc_test_conninfo());
    if (b == NULL || c == NULL || PQstatus(db) != CONNECTION_OK) _exit(2);
    hc_pg_bus_attach(b, c, NULL);
    fprintf(fout, "%s\n", hc_pg_bus_wait_state(b, HC_BUS_LISTENING, WAIT_MS) == HC_OK ? "ready" : "fail");
    char line[128];
    while (fgets(line, sizeof line, fin) != NULL) {
        int id = 0;
        if (sscanf(line, "load %d", &id) == 1) {
            char *v = get_item(c, db, id);
            fprintf(fout, "%s\n", v ? v : "(error)");
            free(v);
        } else if (sscanf(line, "has %d", &id) == 1) {
            fprintf(fout, "%d\n", cached(c, id));
        } else if (strncmp(line, "sync", 4) == 0) {
            fprintf(fout, "%s\n", hc_status_str(hc_pg_bus_sync(b, WAIT_MS, NULL)));
        } else if (strncmp(line, "applied", 7) == 0) {
            fprintf(fout, "%llu\n", (unsigned long long)stats_of(c).bus_applied);
        } else {
            break;
        }
    }
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(db);
    _exit(0);
}

typedef struct child {
    pid_t pid;
    FILE *to, *from;
} child;

static void child_spawn(child *ch)
{
    int down[2], up[2];
    ck_assert_int_eq(pipe(down), 0);
    ck_assert_int_eq(pipe(up), 0);
    ch->pid = fork();
    ck_assert_int_ge(ch->pid, 0);
    if (ch->pid == 0) {
        close(down[1]);
        close(up[0]);
        child_main(down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    ch->to = fdopen(down[1], "w");
    ch->from = fdopen(up[0], "r");
    setvbuf(ch->to, NULL, _IONBF, 0);
}

static char *child_ask(child *ch, const char *cmd)
{
    static char line[256];
    fprintf(ch->to, "%s\n", cmd);
    ck_assert_msg(fgets(line, sizeof line, ch->from) != NULL, "child %d died", (int)ch->pid);
    line[strcspn(line, "\n")] = '\0';
    return line;
}

static void child_end(child *ch)
{
    fprintf(ch->to, "quit\n");
    fclose(ch->to);
    fclose(ch->from);
    int status = 0;
    ck_assert_int_eq(waitpid(ch->pid, &status, 0), ch->pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_update_invalidates_in_two_processes)
{
    hc_test_conninfo();
    child ch[2];
    for (int i = 0; i < 2; i++) child_spawn(&ch[i]);
    char line[256];
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(fgets(line, sizeof line, ch[i].from) != NULL, "child died");
        ck_assert_str_eq(line, "ready\n");
        ck_assert_str_eq(child_ask(&ch[i], "load 9"), "v0");
        ck_assert_str_eq(child_ask(&ch[i], "has 9"), "1");
    }
    PGconn *w = hc_test_connect();
    update_item(w, 9, "v9");
    for (int i = 0; i < 2; i++) {
        ck_assert_str_eq(child_ask(&ch[i], "sync"), "ok");
        ck_assert_str_eq(child_ask(&ch[i], "has 9"), "0");
        ck_assert_str_eq(child_ask(&ch[i], "load 9"), "v9");
        ck_assert_str_ne(child_ask(&ch[i], "applied"), "0");
        child_end(&ch[i]);
    }
    PQfinish(w);
}
END_TEST

/* --------------------------------------------------------------- stress */

typedef struct stress {
    hc_cache *c;
    volatile int stop;
    int loads;
} stress;

static void *reader_main(void *arg)
{
    stress *s = arg;
    PGconn *db = PQconnectdb(hc_test_conninfo());
    for (int i = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); i++) {
        free(get_item(s->c, db, 1 + (i * 7) % NITEMS));
        __atomic_add_fetch(&s->loads, 1, __ATOMIC_RELAXED);
    }
    PQfinish(db);
    return NULL;
}

START_TEST(test_stress_readers_and_writer_then_sync_leaves_nothing_stale)
{
    hc_pg_bus *b = new_bus(NULL);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    stress s = {.c = c};
    pthread_t r[3];
    for (int i = 0; i < 3; i++) pthread_create(&r[i], NULL, reader_main, &s);
    PGconn *w = hc_test_connect();
    for (int i = 0; i < 300; i++) {
        char val[32];
        snprintf(val, sizeof val, "s%d", i);
        update_item(w, 1 + (i * 3) % NITEMS, val);
    }
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) pthread_join(r[i], NULL);
    sync_ok(b);
    assert_no_stale(c, w);
    ck_assert_int_gt(s.loads, 0);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(w);
}
END_TEST

/* ------------------------------------------------- extension, when present */

START_TEST(test_watched_table_update_invalidates_through_the_extension)
{
    PGconn *w = hc_test_connect();
    PGresult *r = PQexec(w, "CREATE EXTENSION IF NOT EXISTS hydracache");
    bool have = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!have) {
        fprintf(stderr, "check_pgbus: hydracache extension not installed: watched-table test skipped\n");
        PQfinish(w);
        return;
    }
    hc_test_exec(w, "SELECT hydracache.watch('items', 'item')");
    if (wal()) hc_test_exec(w, "SET hydracache.transport = wal");
    hc_pg_bus *b = new_bus(NULL);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    wait_listening(b);
    PGconn *db = hc_test_connect();
    free(get_item(c, db, 11));
    free(get_item(c, db, 12));
    hc_test_exec(w, "UPDATE items SET val = 'ext' WHERE id = 11");
    sync_ok(b);
    ck_assert(!cached(c, 11));
    assert_no_stale(c, db);
    hc_pg_bus_free(b);
    hc_cache_free(c);
    PQfinish(db);
    PQfinish(w);
}
END_TEST

/* ------------------------------------------------------- WAL transport only */

typedef struct slot_wait {
    PGconn *db;
    int pid;
    char lsn[32];
} slot_wait;

/* The bus's slot has confirmed_flush_lsn >= lsn. */
static bool slot_flushed(void *ctx)
{
    slot_wait *sw = ctx;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(bool_or(confirmed_flush_lsn >= '%s'), false) FROM pg_replication_slots"
             " WHERE active_pid = %d",
             sw->lsn, sw->pid);
    char *r = hc_test_scalar(sw->db, sql);
    bool ok = strcmp(r, "t") == 0;
    free(r);
    return ok;
}

START_TEST(test_wal_slot_is_temporary_and_confirmed_flush_follows_an_idle_database)
{
    PGconn *db = hc_test_connect();
    hc_pg_bus *b = new_bus(NULL);
    wait_listening(b);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_int_gt(bs.backend_pid, 0);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT slot_name || ' ' || temporary || ' ' || plugin FROM pg_replication_slots"
             " WHERE active_pid = %d",
             bs.backend_pid);
    char *slot = hc_test_scalar(db, sql);
    ck_assert_msg(strstr(slot, " true pgoutput") != NULL, "slot: %s", slot);
    *strchr(slot, ' ') = '\0';
    /* WAL that carries no invalidation (no message, a table in no
     * publication): the slot's confirmed position must still pass it. */
    hc_test_exec(db, "UPDATE items SET val = val WHERE id = 1");
    slot_wait sw = {.db = db, .pid = bs.backend_pid};
    char *lsn = hc_test_scalar(db, "SELECT pg_current_wal_lsn()");
    snprintf(sw.lsn, sizeof sw.lsn, "%s", lsn);
    free(lsn);
    ck_assert_msg(hc_test_wait_for(slot_flushed, &sw, WAIT_MS), "confirmed_flush_lsn stayed below %s",
                  sw.lsn);
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_gt(bs.wal_applied_lsn, 0);
    hc_pg_bus_free(b);
    /* Temporary: gone with the connection, so it cannot retain WAL. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", slot);
    char *n = hc_test_scalar(db, sql);
    int tries = 0;
    while (strcmp(n, "0") != 0 && tries++ < 200) { /* the walsender exits asynchronously */
        free(n);
        usleep(50 * 1000);
        n = hc_test_scalar(db, sql);
    }
    ck_assert_str_eq(n, "0");
    free(n);
    free(slot);
    PQfinish(db);
}
END_TEST

START_TEST(test_wal_bad_publication_names_are_refused)
{
    hc_error err;
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.publication = "Bad-Name";
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    cfg.publication = "";
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    cfg.publication = "x; DROP TABLE items";
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    cfg.publication = NULL;
    cfg.transport = (hc_pg_bus_transport)9;
    ck_assert_ptr_null(hc_pg_bus_new(&cfg, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
}
END_TEST

/* A cluster of its own with wal_level = replica (restarted once). */
static hc_test_cluster g_replica_cluster;
static bool g_replica_ok; /* restarted with wal_level = replica */

static void replica_cluster_setup(void)
{
    if (!hc_test_private_cluster_start(&g_replica_cluster)) return;
    hc_test_use_cluster(&g_replica_cluster);
    PGconn *c = PQconnectdb(hc_test_conninfo());
    PGresult *r = PQexec(c, "ALTER SYSTEM SET wal_level = replica");
    bool set = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(c);
    g_replica_ok = set && hc_test_private_cluster_stop_server(&g_replica_cluster) &&
                   hc_test_private_cluster_start_server(&g_replica_cluster);
}

static void replica_cluster_teardown(void)
{
    hc_test_use_cluster(NULL);
    hc_test_private_cluster_stop(&g_replica_cluster);
}

START_TEST(test_wal_transport_without_logical_wal_level_says_why_and_stays_bypassed)
{
    if (g_replica_cluster.unavailable) {
        fprintf(stderr, "check_pgbus: wal_level test skipped: %s", g_replica_cluster.error);
        return;
    }
    ck_assert_msg(g_replica_ok, "cluster with wal_level = replica: %s", g_replica_cluster.error);
    hc_pg_bus_config cfg = bus_cfg(NULL, HC_PG_BUS_THREAD);
    cfg.transport = HC_PG_BUS_WAL;
    hc_pg_bus *b = new_bus_cfg(&cfg);
    hc_cache *c = new_cache();
    hc_pg_bus_attach(b, c, NULL);
    hc_error err;
    ck_assert_int_eq(hc_pg_bus_sync(b, 500, &err), HC_TIMEOUT);
    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(b, &bs);
    ck_assert_uint_ge(bs.connect_failures, 1);
    ck_assert_msg(strstr(bs.last_error, "wal_level = logical") != NULL, "last_error: %s", bs.last_error);
    ck_assert_int_eq(hc_pg_bus_state(b), HC_BUS_CONNECTING);
    ck_assert(hc_cache_bypass(c));
    hc_pg_bus_free(b);
    hc_cache_free(c);
    /* The NOTIFY transport works on the same server. */
    cfg.transport = HC_PG_BUS_NOTIFY;
    b = new_bus_cfg(&cfg);
    wait_listening(b);
    sync_ok(b);
    hc_pg_bus_free(b);
}
END_TEST

/* The tests every transport must pass. */
static void add_common(TCase *t)
{
    tcase_add_test(t, test_bad_configs_are_refused);
    tcase_add_test(t, test_cache_attached_before_listen_stays_in_bypass_until_listening);
    tcase_add_test(t, test_update_invalidates_and_sync_leaves_nothing_stale);
    tcase_add_test(t, test_local_invalidation_reaches_another_node);
    tcase_add_test(t, test_own_invalidation_is_not_applied_twice);
    tcase_add_test(t, test_buses_sharing_a_node_id_apply_each_others_invalidations);
    tcase_add_test(t, test_malformed_notifies_are_counted_and_ignored);
    tcase_add_test(t, test_sync_without_a_connection_times_out_and_caches_stay_bypassed);
    tcase_add_test(t, test_full_publish_queue_becomes_a_flush_broadcast);
    tcase_add_test(t, test_rejected_publish_becomes_a_flush_broadcast);
    tcase_add_test(t, test_event_loop_mode_applies_on_poll);
    tcase_add_test(t, test_update_invalidates_in_two_processes);
    tcase_add_test(t, test_stress_readers_and_writer_then_sync_leaves_nothing_stale);
    tcase_add_test(t, test_watched_table_update_invalidates_through_the_extension);
}

static void add_faults(TCase *t)
{
    tcase_add_test(t, test_terminated_listener_flushes_bypasses_and_reconnects);
    tcase_add_test(t, test_sync_during_an_outage_waits_for_the_listener_and_completes);
    tcase_add_test(t, test_sync_during_a_long_outage_times_out);
}

/* The restart test on a private cluster (see restart_cluster_setup). */
static void add_restart(Suite *s, const char *name, void (*use)(void))
{
    TCase *t = tcase_create(name);
    tcase_add_unchecked_fixture(t, restart_cluster_setup, restart_cluster_teardown);
    tcase_add_checked_fixture(t, use, NULL);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_server_restart_flushes_bypasses_and_reconnects);
    suite_add_tcase(s, t);
}

static TCase *tcase(Suite *s, const char *name, void (*use)(void))
{
    TCase *t = tcase_create(name);
    tcase_add_unchecked_fixture(t, setup_db, NULL);
    tcase_add_checked_fixture(t, use, NULL);
    tcase_set_timeout(t, 60);
    suite_add_tcase(s, t);
    return t;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("pgbus");
    TCase *tb = tcase(s, "basic", use_notify);
    add_common(tb);
    /* NOTIFY mechanics: forged tokens seen by a LISTENing spy, the notify
     * queue probe, one connection through a single-connection proxy. */
    tcase_add_test(tb, test_forged_sync_token_does_not_complete_a_barrier);
    tcase_add_test(tb, test_queue_usage_is_reported_to_caches);
    tcase_add_test(tb, test_multi_host_conninfo_connects_when_the_first_address_refuses);
    add_faults(tcase(s, "faults", use_notify));
    TCase *tw = tcase(s, "wal", use_wal);
    add_common(tw);
    tcase_add_test(tw, test_wal_slot_is_temporary_and_confirmed_flush_follows_an_idle_database);
    tcase_add_test(tw, test_wal_bad_publication_names_are_refused);
    add_faults(tcase(s, "wal-faults", use_wal));
    add_restart(s, "restart", use_notify);
    add_restart(s, "wal-restart", use_wal);
    TCase *tl = tcase_create("wal-level");
    tcase_add_unchecked_fixture(tl, replica_cluster_setup, replica_cluster_teardown);
    tcase_set_timeout(tl, 60);
    tcase_add_test(tl, test_wal_transport_without_logical_wal_level_says_why_and_stays_bypassed);
    suite_add_tcase(s, tl);
    return hc_test_run_suite(s);
}
