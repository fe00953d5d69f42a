/*
 * demos.c - raw cache operations and the demo flows of hcpg-sandbox (golden
 * flow, TTL, single-flight, invalidation race, negative cases, two nodes, the
 * seeded query demos of the postgres profile).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandbox.h"

/* Set by the sandbox's loaders on the thread that ran them: "source" of a read. */
static __thread bool tl_loaded;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static hc_cache *pick_node(sb *s, sb_req *req, sb_reply *rep)
{
    const char *node;
    if (sb_get_str(req, rep, "node", false, &node) != 0)
        return NULL;
    if (node == NULL || strcmp(node, "a") == 0)
        return s->a;
    if (strcmp(node, "b") == 0)
        return s->b;
    sb_error(rep, 400, "field 'node' must be \"a\" or \"b\"");
    return NULL;
}

static json_t *value_json(const hc_value *v)
{
    json_t *j = json_stringn((const char *)hc_value_data(v), hc_value_len(v));
    return j != NULL ? j : json_sprintf("<%zu bytes, not UTF-8>", hc_value_len(v));
}

static json_t *status_json(hc_status st, const hc_error *err)
{
    json_t *j = json_pack("{s:s, s:b}", "status", hc_status_str(st), "ok", st == HC_OK);
    if (st < 0 && err != NULL)
        json_object_set_new(j, "error", json_string(err->message));
    return j;
}

/* Tags from the body's "tags" array (borrowed strings) into a tagset. */
static int get_tags(sb_req *req, sb_reply *rep, hc_tagset **out)
{
    *out = NULL;
    json_t *t = req->body ? json_object_get(req->body, "tags") : NULL;
    if (t == NULL || json_is_null(t))
        return 0;
    if (!json_is_array(t)) {
        sb_error(rep, 400, "field 'tags' must be an array of strings");
        return -1;
    }
    hc_tagset *ts = hc_tagset_new();
    size_t i;
    json_t *e;
    hc_error err;
    json_array_foreach(t, i, e) {
        if (!json_is_string(e) || hc_tagset_add(ts, json_string_value(e), &err) != HC_OK) {
            sb_error(rep, 400, "tag %zu: %s", i,
                     json_is_string(e) ? err.message : "must be a string");
            hc_tagset_free(ts);
            return -1;
        }
    }
    *out = ts;
    return 0;
}

/* ------------------------------------------------------------------ loaders */

typedef struct loader_ctx {
    sb *s;
    long delay_ms;
    bool fail;
    const char *value;
    /* gate (race demo): the loader says it started, then waits to be released */
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    bool *started, *release;
    _Atomic int calls;
} loader_ctx;

/* Reads "user:<id>" from the in-memory table, any other key gets a made-up value. */
static hc_status sb_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    loader_ctx *lc = ctx;
    tl_loaded = true;
    atomic_fetch_add(&lc->calls, 1);
    uint64_t n = atomic_fetch_add(&lc->s->loads, 1) + 1;
    if (lc->mu != NULL) {
        pthread_mutex_lock(lc->mu);
        *lc->started = true;
        pthread_cond_broadcast(lc->cv);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 10;
        while (!*lc->release)
            if (pthread_cond_timedwait(lc->cv, lc->mu, &dl) != 0)
                break;
        pthread_mutex_unlock(lc->mu);
    }
    if (lc->delay_ms > 0)
        sleep_ms(lc->delay_ms);
    if (lc->fail)
        return hc_error_set(err, HC_ERR_LOADER, "the demo loader failed for %s (as asked)", key);
    char buf[128];
    const char *v = lc->value;
    int id;
    char tail;
    if (v == NULL && sscanf(key, "user:%d%c", &id, &tail) == 1 && id >= 0 && id < 100) {
        pthread_mutex_lock(&lc->s->table_lock);
        snprintf(buf, sizeof buf, "%s", lc->s->mem_users[id]);
        pthread_mutex_unlock(&lc->s->table_lock);
        v = buf;
    } else if (v == NULL) {
        snprintf(buf, sizeof buf, "loaded:%s#%llu", key, (unsigned long long)n);
        v = buf;
    }
    *out = hc_value_new(v, strlen(v));
    return *out ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "out of memory");
}

/* get-or-load through the sandbox loader; fills source/value/latency into j. */
static hc_status load_into(hc_cache *c, const char *key, const hc_opts *opts, loader_ctx *lc,
                           json_t *j)
{
    hc_error err;
    hc_value *v = NULL;
    tl_loaded = false;
    double t0 = sb_now_ms();
    hc_status st = hc_get_or_load(c, key, opts, sb_loader, lc, &v, &err);
    double dt = sb_now_ms() - t0;
    sb_update(j, json_pack("{s:s, s:s, s:s, s:f, s:b}", "key", key, "cache",
                                    hc_cache_name(c), "source",
                                    st != HC_OK ? "error" : tl_loaded ? "loader" : "cache",
                                    "latency_ms", dt, "ok", st == HC_OK));
    json_object_set_new(j, "status", json_string(hc_status_str(st)));
    if (st == HC_OK)
        json_object_set_new(j, "value", value_json(v));
    else
        json_object_set_new(j, "error", json_string(err.message));
    hc_value_release(v);
    return st;
}

/* ------------------------------------------------------------------ raw ops */

void sb_h_put(sb *s, sb_req *req, sb_reply *rep)
{
    const char *key, *value;
    long long ttl;
    hc_tagset *ts;
    hc_cache *c = pick_node(s, req, rep);
    if (c == NULL || sb_get_str(req, rep, "key", true, &key) ||
        sb_get_str(req, rep, "value", true, &value) ||
        sb_get_int(req, rep, "ttl_ms", 0, INT64_MAX, 0, &ttl) || get_tags(req, rep, &ts))
        return;
    hc_error err;
    hc_status st = hc_put(c, key, value, strlen(value),
                          HC_OPTS(.ttl_ms = (uint64_t)ttl, .tagset = ts), &err);
    hc_tagset_free(ts);
    if (st == HC_ERR_INVALID || st == HC_ERR_TOO_LARGE) {
        sb_error(rep, 400, "%s", err.message);
        return;
    }
    json_t *j = status_json(st, &err);
    json_object_set_new(j, "key", json_string(key));
    sb_json(rep, 200, j);
    sb_collect_events(s);
}

void sb_h_get(sb *s, sb_req *req, sb_reply *rep)
{
    const char *key;
    hc_cache *c = pick_node(s, req, rep);
    if (c == NULL || sb_get_str(req, rep, "key", true, &key))
        return;
    hc_error err;
    hc_value *v = NULL;
    hc_status st = hc_get(c, key, &v, &err);
    if (st == HC_ERR_INVALID || st == HC_ERR_TOO_LARGE) {
        sb_error(rep, 400, "%s", err.message);
        return;
    }
    json_t *j = status_json(st, &err);
    json_object_set_new(j, "key", json_string(key));
    json_object_set_new(j, "found", json_boolean(st == HC_OK));
    if (st == HC_OK)
        json_object_set_new(j, "value", value_json(v));
    hc_value_release(v);
    sb_json(rep, 200, j);
    sb_collect_events(s);
}

void sb_h_get_or_load(sb *s, sb_req *req, sb_reply *rep)
{
    const char *key, *value;
    long long ttl, delay;
    hc_tagset *ts;
    hc_cache *c = pick_node(s, req, rep);
    if (c == NULL || sb_get_str(req, rep, "key", true, &key) ||
        sb_get_str(req, rep, "value", false, &value) ||
        sb_get_int(req, rep, "ttl_ms", 0, INT64_MAX, 0, &ttl) ||
        sb_get_int(req, rep, "delay_ms", 0, 10000, 0, &delay) || get_tags(req, rep, &ts))
        return;
    json_t *fail = req->body ? json_object_get(req->body, "fail") : NULL;
    if (fail != NULL && !json_is_boolean(fail)) {
        hc_tagset_free(ts);
        sb_error(rep, 400, "field 'fail' must be a boolean");
        return;
    }
    loader_ctx lc = {.s = s, .delay_ms = delay, .fail = json_is_true(fail), .value = value};
    json_t *j = json_object();
    hc_status st = load_into(c, key, HC_OPTS(.ttl_ms = (uint64_t)ttl, .tagset = ts), &lc, j);
    hc_tagset_free(ts);
    if (st == HC_ERR_INVALID || st == HC_ERR_TOO_LARGE) {
        sb_error(rep, 400, "%s", json_string_value(json_object_get(j, "error")));
        json_decref(j);
        return;
    }
    json_object_set_new(j, "loader_calls", json_integer(atomic_load(&lc.calls)));
    sb_json(rep, 200, j);
    sb_collect_events(s);
}

void sb_h_contains(sb *s, sb_req *req, sb_reply *rep)
{
    const char *key;
    hc_cache *c = pick_node(s, req, rep);
    if (c == NULL || sb_get_str(req, rep, "key", true, &key))
        return;
    hc_error err;
    hc_status st = hc_contains(c, key, &err);
    if (st < 0) {
        sb_error(rep, 400, "%s", err.message);
        return;
    }
    sb_json(rep, 200, json_pack("{s:s, s:b}", "key", key, "contains", st == HC_OK));
    sb_collect_events(s);
}

typedef hc_status (*key_op)(hc_cache *, const char *, hc_error *);

static void simple_op(sb *s, sb_req *req, sb_reply *rep, const char *field, key_op op)
{
    const char *arg = NULL;
    hc_cache *c = pick_node(s, req, rep);
    if (c == NULL || (field != NULL && sb_get_str(req, rep, field, true, &arg)))
        return;
    hc_error err;
    hc_status st = field != NULL ? op(c, arg, &err) : hc_flush(c, &err);
    if (st == HC_ERR_INVALID || st == HC_ERR_TOO_LARGE) {
        sb_error(rep, 400, "%s", err.message);
        return;
    }
    /* remove, invalidate-tag and flush publish over the bus: in the postgres profile
     * the other node applies them asynchronously (and its echo of an earlier one could
     * land after the next request's put), so reply only once every node has applied
     * them. Without this a flush of node b could clear a key put on node a a moment
     * later (the "ttl demo" step after "flush node b" failed that way under TSan). */
    sb_settle(s);
    json_t *j = status_json(st, &err);
    if (field != NULL)
        json_object_set_new(j, field, json_string(arg));
    sb_json(rep, 200, j);
    sb_collect_events(s);
}

void sb_h_remove(sb *s, sb_req *req, sb_reply *rep)
{
    simple_op(s, req, rep, "key", hc_remove);
}
void sb_h_invalidate_tag(sb *s, sb_req *req, sb_reply *rep)
{
    simple_op(s, req, rep, "tag", hc_invalidate_tag);
}
void sb_h_flush(sb *s, sb_req *req, sb_reply *rep)
{
    simple_op(s, req, rep, NULL, NULL);
}

void sb_h_clock_advance(sb *s, sb_req *req, sb_reply *rep)
{
    long long ms;
    if (sb_get_int(req, rep, "ms", 1, 365LL * 24 * 3600 * 1000, 0, &ms))
        return;
    if (ms == 0) {
        sb_error(rep, 400, "missing field 'ms'");
        return;
    }
    uint64_t off = atomic_fetch_add(&s->clock_offset_ms, (uint64_t)ms) + (uint64_t)ms;
    sb_json(rep, 200, json_pack("{s:I, s:I}", "advanced_ms", ms, "offset_ms", (json_int_t)off));
}

/* ------------------------------------------------------------------ helpers of the flows */

/* hc_get for its status only. */
static hc_status peek(hc_cache *c, const char *key)
{
    hc_value *v = NULL;
    hc_status st = hc_get(c, key, &v, NULL);
    hc_value_release(v);
    return st;
}

static json_t *step(json_t *steps, const char *name)
{
    json_t *j = json_pack("{s:s}", "step", name);
    json_array_append_new(steps, j);
    return j;
}

static uint64_t stat_of(hc_cache *c, size_t off)
{
    hc_stats st;
    hc_cache_stats(c, &st);
    return *(const uint64_t *)((const char *)&st + off);
}
#define STAT(c, f) stat_of((c), offsetof(hc_stats, f))

/* Wait for an invalidation of tag on sub (created before the write).  0 or -1. */
static int wait_tag(hc_subscriber *sub, const char *tag, int timeout_ms, hc_origin *origin)
{
    double end = sb_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - sb_now_ms());
        if (left <= 0)
            return -1;
        hc_event ev;
        hc_status st = hc_subscriber_recv(sub, &ev, left);
        if (st == HC_OK && ev.kind == HC_EV_INVALIDATE_TAG && strcmp(ev.subject, tag) == 0) {
            *origin = ev.origin;
            return 0;
        }
        if (st == HC_OK && ev.kind == HC_EV_FLUSH) { /* a flush also drops it */
            *origin = ev.origin;
            return 0;
        }
    }
}

/* A flow step waiting for tag's invalidation on sub (then freed): where it came from and
 * how long after the write (t_write) it arrived.  0 or -1 (timeout, or no subscriber). */
static int invalidation_step(json_t *steps, const char *name, hc_subscriber *sub,
                             const char *tag, double t_write)
{
    hc_origin o = HC_ORIGIN_LOCAL;
    int rc = sub != NULL ? wait_tag(sub, tag, 10000, &o) : -1;
    hc_subscriber_free(sub);
    sb_update(step(steps, name),
                       json_pack("{s:s, s:s, s:s, s:f, s:b}", "tag", tag, "source",
                                 rc == 0 ? "bus" : "timeout", "origin",
                                 rc == 0 ? hc_origin_str(o) : "timeout", "latency_ms",
                                 sb_now_ms() - t_write, "ok", rc == 0));
    return rc;
}

void sb_settle(sb *s)
{
    /* A's barrier: A's own queued publishes are committed; B's: B's are, and B applied
     * A's; A's again: A applied B's. */
    if (s->profile == SB_PROFILE_POSTGRES) {
        hc_pg_bus_sync(s->pbus_a, 5000, NULL);
        hc_pg_bus_sync(s->pbus_b, 5000, NULL);
        hc_pg_bus_sync(s->pbus_a, 5000, NULL);
    }
}

static const char *const USER_SQL = "SELECT id, name, email FROM sb_users WHERE id = $1";
static const char *const PRODUCT_SQL = "SELECT id, name, price, stock FROM sb_products WHERE id = $1";
static const char *const SUMMARY_SQL =
    "SELECT u.id AS user_id, u.name, count(o.id) AS orders, "
    "coalesce(sum(o.qty * p.price), 0) AS total FROM sb_users u "
    "LEFT JOIN sb_orders o ON o.user_id = u.id LEFT JOIN sb_products p ON p.id = o.product_id "
    "WHERE u.id = $1 GROUP BY u.id, u.name";

static PGresult *pg_loader(void *ctx, const hc_query *q, hc_error *err)
{
    PGconn *conn = ctx;
    tl_loaded = true;
    PGresult *r = PQexecParams(conn, q->sql, q->nparams, NULL, q->param_values, NULL, NULL, 0);
    if (r == NULL)
        hc_error_set(err, HC_ERR_PG, "%s", PQerrorMessage(conn));
    return r;
}

static json_t *rows_json(const PGresult *r)
{
    json_t *rows = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *row = json_object();
        for (int k = 0; k < PQnfields(r); k++)
            json_object_set_new(row, PQfname(r, k),
                                PQgetisnull(r, i, k) ? json_null()
                                                     : json_string(PQgetvalue(r, i, k)));
        json_array_append_new(rows, row);
    }
    return rows;
}

/* One seeded query through hc_pg_fetch_with_conn; fills j (source, rows, latency). */
static hc_status pg_query(sb *s, hc_cache *c, const char *table, const char *id, json_t *j)
{
    hc_query q = {.nparams = 1, .param_values = (const char *const[]){id}};
    char usertag[64];
    snprintf(usertag, sizeof usertag, "user:%s", id);
    const char *const own_tags[1] = {usertag}; /* must outlive the fetch */
    if (strcmp(table, "users") == 0) {
        q.sql = USER_SQL;
        hc_query_entity(&q, "user", id);
        hc_query_add_collection(&q, "users");
    } else if (strcmp(table, "products") == 0) {
        q.sql = PRODUCT_SQL;
        hc_query_entity(&q, "product", id);
        hc_query_add_collection(&q, "products");
    } else {
        q.sql = SUMMARY_SQL;
        q.label = "order_summary";
        q.tags = (hc_tags){own_tags, 1};
        hc_query_collection(&q, "orders");
        hc_query_add_collection(&q, "products");
    }
    char key[HC_MAX_KEY_LEN + 1];
    hc_query_key(&q, key, sizeof key, NULL);
    hc_error err;
    pthread_mutex_lock(&s->pg_lock);
    tl_loaded = false;
    double t0 = sb_now_ms();
    PGresult *r = hc_pg_fetch_with_conn(c, s->conn, &q, pg_loader, s->conn, &err);
    double dt = sb_now_ms() - t0;
    pthread_mutex_unlock(&s->pg_lock);
    sb_update(j, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:b}", "table", table, "id",
                                    id, "key", key, "cache", hc_cache_name(c), "source",
                                    r == NULL ? "error" : tl_loaded ? "database" : "cache",
                                    "latency_ms", dt, "ok", r != NULL));
    if (hc_cache_bypass(c)) /* no bus: reads go to the database and are not stored */
        json_object_set_new(j, "bypass", json_true());
    if (r == NULL) {
        json_object_set_new(j, "error", json_string(err.message));
        return err.code;
    }
    json_object_set_new(j, "rows", rows_json(r));
    PQclear(r);
    return HC_OK;
}

/* Read user id through node c: the memory table or sb_users.  Sets source/value. */
static hc_status load_user(sb *s, hc_cache *c, int id, json_t *j)
{
    char key[32], ids[16];
    snprintf(key, sizeof key, "user:%d", id);
    snprintf(ids, sizeof ids, "%d", id);
    if (s->profile == SB_PROFILE_MEMORY) {
        loader_ctx lc = {.s = s};
        hc_status st = load_into(c, key, HC_OPTS(.tags = HC_TAGS(key, "users")), &lc, j);
        if (st == HC_OK && strcmp(json_string_value(json_object_get(j, "source")), "loader") == 0)
            json_object_set_new(j, "source", json_string("database"));
        return st;
    }
    hc_status st = pg_query(s, c, "users", ids, j);
    json_t *rows = json_object_get(j, "rows");
    if (st == HC_OK && json_array_size(rows) == 1)
        json_object_set(j, "value", json_object_get(json_array_get(rows, 0), "name"));
    json_object_set_new(j, "key", json_string(key));
    return st;
}

/* The write "by another application": memory table + an invalidation published by
 * node `via` over the in-process bus, or a plain SQL UPDATE on the writer connection. */
static int write_user(sb *s, hc_cache *via, int id, const char *name, json_t *j)
{
    double t0 = sb_now_ms();
    int rc = 0;
    if (s->profile == SB_PROFILE_MEMORY) {
        pthread_mutex_lock(&s->table_lock);
        snprintf(s->mem_users[id], sizeof s->mem_users[id], "%s", name);
        pthread_mutex_unlock(&s->table_lock);
        char tag[32];
        snprintf(tag, sizeof tag, "user:%d", id);
        hc_invalidate_tag(via, tag, NULL);
        json_object_set_new(j, "how", json_sprintf("in-memory table updated; node %s published "
                                                   "invalidate_tag %s on the in-process bus",
                                                   hc_cache_name(via), tag));
    } else {
        char ids[16];
        snprintf(ids, sizeof ids, "%d", id);
        const char *sql = "UPDATE sb_users SET name = $1 WHERE id = $2";
        pthread_mutex_lock(&s->pg_lock);
        PGresult *r = PQexecParams(s->writer, sql, 2, NULL, (const char *const[]){name, ids},
                                   NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            json_object_set_new(j, "error", json_string(PQerrorMessage(s->writer)));
            rc = -1;
        }
        PQclear(r);
        pthread_mutex_unlock(&s->pg_lock);
        json_object_set_new(j, "how", json_sprintf("UPDATE sb_users SET name = '%s' WHERE id = %d "
                                                   "(a plain libpq connection; the hydracache "
                                                   "trigger NOTIFYs)", name, id));
    }
    json_object_set_new(j, "source", json_string(s->profile == SB_PROFILE_MEMORY ? "writer" : "sql"));
    json_object_set_new(j, "value", json_string(name));
    json_object_set_new(j, "latency_ms", json_real(sb_now_ms() - t0));
    json_object_set_new(j, "ok", json_boolean(rc == 0));
    return rc;
}

/* The name to write: the body's "name", else one that differs from the current row
 * (read from the table directly, not through a cache). */
static const char *next_name(sb *s, int id, sb_req *req, char *buf, size_t cap)
{
    json_t *jn = req->body != NULL ? json_object_get(req->body, "name") : NULL;
    if (json_is_string(jn) && json_string_length(jn) > 0 && json_string_length(jn) < 64 &&
        strlen(json_string_value(jn)) == json_string_length(jn))
        return json_string_value(jn);
    char cur[64] = "";
    if (s->profile == SB_PROFILE_MEMORY) {
        pthread_mutex_lock(&s->table_lock);
        snprintf(cur, sizeof cur, "%s", s->mem_users[id]);
        pthread_mutex_unlock(&s->table_lock);
    } else {
        char ids[16];
        snprintf(ids, sizeof ids, "%d", id);
        pthread_mutex_lock(&s->pg_lock);
        PGresult *r = PQexecParams(s->writer, "SELECT name FROM sb_users WHERE id = $1", 1, NULL,
                                   (const char *const[]){ids}, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            snprintf(cur, sizeof cur, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        pthread_mutex_unlock(&s->pg_lock);
    }
    snprintf(buf, cap, "%s", strcmp(cur, "zaphod") == 0 ? "trillian" : "zaphod");
    return buf;
}

static json_t *flow_reply(uint64_t flow, json_t *steps, bool ok)
{
    return json_pack("{s:I, s:o, s:b}", "flow", (json_int_t)flow, "steps", steps, "ok", ok);
}

/* ------------------------------------------------------------------ golden flow */

/* Start a flow about user "id" (body, default 42): its tag in tag[32], the entry
 * removed from both nodes (settled over the bus) so that the flow starts cold. */
static bool user_flow_begin(sb *s, sb_req *req, sb_reply *rep, long long *id, char *tag,
                            uint64_t *flow)
{
    if (sb_get_int(req, rep, "id", 1, 99, 42, id))
        return false;
    *flow = sb_flow_begin(s);
    snprintf(tag, 32, "user:%lld", *id);
    hc_remove(s->a, tag, NULL);
    hc_remove(s->b, tag, NULL);
    sb_settle(s);
    return true;
}

void sb_h_golden(sb *s, sb_req *req, sb_reply *rep)
{
    long long id;
    char tag[32], namebuf[32];
    uint64_t flow;
    if (!user_flow_begin(s, req, rep, &id, tag, &flow))
        return;
    json_t *steps = json_array();
    bool ok = true;
    json_t *l1 = step(steps, "load"), *l2 = step(steps, "load again");
    ok &= load_user(s, s->a, (int)id, l1) == HC_OK && load_user(s, s->a, (int)id, l2) == HC_OK;
    ok &= strcmp(json_string_value(json_object_get(l1, "source")), "database") == 0 &&
          strcmp(json_string_value(json_object_get(l2, "source")), "cache") == 0;
    const char *name = next_name(s, (int)id, req, namebuf, sizeof namebuf);
    hc_error err;
    hc_subscriber *sub = hc_subscribe(s->a, HC_EV_INVALIDATE_TAG | HC_EV_FLUSH, 64, &err);
    double t_write = sb_now_ms();
    ok &= write_user(s, s->b, (int)id, name, step(steps, "write")) == 0;
    int rc = invalidation_step(steps, "invalidation", sub, tag, t_write);
    json_object_set_new(json_array_get(steps, json_array_size(steps) - 1), "contains_after",
                        json_boolean(hc_contains(s->a, tag, NULL) == HC_OK));
    ok &= rc == 0;
    sb_settle(s);
    json_t *re = step(steps, "reload");
    ok &= load_user(s, s->a, (int)id, re) == HC_OK;
    const char *nv = json_string_value(json_object_get(re, "value"));
    bool fresh = nv != NULL && strcmp(nv, name) == 0;
    json_object_set_new(re, "fresh", json_boolean(fresh));
    ok &= fresh;
    json_t *out = flow_reply(flow, steps, ok);
    json_object_set_new(out, "written", json_string(name));
    sb_flow_end(s);
    sb_json(rep, 200, out);
}

/* ------------------------------------------------------------------ TTL */

void sb_h_ttl(sb *s, sb_req *req, sb_reply *rep)
{
    long long ttl;
    if (sb_get_int(req, rep, "ttl_ms", 1, 86400000, 5000, &ttl))
        return;
    uint64_t flow = sb_flow_begin(s);
    json_t *steps = json_array();
    char key[64];
    snprintf(key, sizeof key, "ttl:%llu", (unsigned long long)atomic_fetch_add(&s->key_seq, 1));
    bool ok = true;
    hc_status st = hc_put(s->a, key, "short-lived", 11, HC_OPTS(.ttl_ms = (uint64_t)ttl), NULL);
    sb_update(step(steps, "put"), json_pack("{s:s, s:I, s:s}", "key", key, "ttl_ms", ttl,
                                                     "status", hc_status_str(st)));
    st = peek(s->a, key);
    sb_update(step(steps, "get before expiry"),
                       json_pack("{s:s, s:b}", "status", hc_status_str(st), "found", st == HC_OK));
    ok &= st == HC_OK;
    uint64_t exp0 = STAT(s->a, evictions_expired);
    atomic_fetch_add(&s->clock_offset_ms, (uint64_t)ttl + 1);
    sb_update(step(steps, "advance clock"),
                       json_pack("{s:I, s:s}", "advanced_ms", ttl + 1, "note",
                                 "the sandbox caches run on a clock with a virtual offset"));
    st = peek(s->a, key);
    sb_update(step(steps, "get after expiry"),
                       json_pack("{s:s, s:b}", "status", hc_status_str(st), "found", st == HC_OK));
    ok &= st == HC_MISS;
    bool has = hc_contains(s->a, key, NULL) == HC_OK;
    sb_update(step(steps, "contains"),
                       json_pack("{s:b, s:I}", "contains", has, "evictions_expired_delta",
                                 (json_int_t)(STAT(s->a, evictions_expired) - exp0)));
    ok &= !has;
    sb_flow_end(s);
    sb_json(rep, 200, flow_reply(flow, steps, ok));
}

/* ------------------------------------------------------------------ single-flight */

typedef struct sf_arg {
    sb *s;
    const char *key;
    loader_ctx *lc;
    pthread_barrier_t *bar;
    hc_status st;
    char value[128];
    bool loaded;
} sf_arg;

static void *sf_thread(void *p)
{
    sf_arg *a = p;
    pthread_barrier_wait(a->bar);
    hc_value *v = NULL;
    tl_loaded = false;
    a->st = hc_get_or_load(a->s->a, a->key, HC_OPTS(.tags = HC_TAGS("single-flight")), sb_loader,
                           a->lc, &v, NULL);
    a->loaded = tl_loaded;
    if (v != NULL)
        snprintf(a->value, sizeof a->value, "%.*s", (int)hc_value_len(v),
                 (const char *)hc_value_data(v));
    hc_value_release(v);
    return NULL;
}

void sb_h_single_flight(sb *s, sb_req *req, sb_reply *rep)
{
    long long n, delay;
    if (sb_get_int(req, rep, "loaders", 2, 64, 8, &n) ||
        sb_get_int(req, rep, "delay_ms", 0, 5000, 200, &delay))
        return;
    uint64_t flow = sb_flow_begin(s);
    char key[64];
    snprintf(key, sizeof key, "sf:%llu", (unsigned long long)atomic_fetch_add(&s->key_seq, 1));
    loader_ctx lc = {.s = s, .delay_ms = delay};
    sf_arg args[64];
    pthread_t th[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    uint64_t j0 = STAT(s->a, single_flight_joins), h0 = STAT(s->a, hits);
    double t0 = sb_now_ms();
    int started = 0;
    for (int i = 0; i < n; i++) {
        args[i] = (sf_arg){.s = s, .key = key, .lc = &lc, .bar = &bar};
        if (pthread_create(&th[i], NULL, sf_thread, &args[i]) != 0)
            break;
        started++;
    }
    if (started < n) { /* cannot happen normally; unblock the barrier by hand */
        for (int i = started; i < n; i++)
            pthread_barrier_wait(&bar);
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double dt = sb_now_ms() - t0;
    pthread_barrier_destroy(&bar);
    bool same = true, all_ok = true;
    for (int i = 0; i < started; i++) {
        all_ok &= args[i].st == HC_OK;
        same &= strcmp(args[i].value, args[0].value) == 0;
    }
    int calls = atomic_load(&lc.calls);
    json_t *steps = json_array();
    sb_update(step(steps, "concurrent get_or_load"),
                       json_pack("{s:s, s:I, s:I, s:i, s:I, s:I, s:b, s:s, s:f}", "key", key,
                                 "callers", n, "delay_ms", delay, "loader_calls", calls,
                                 "single_flight_joins",
                                 (json_int_t)(STAT(s->a, single_flight_joins) - j0), "hits",
                                 (json_int_t)(STAT(s->a, hits) - h0), "same_value", same, "value",
                                 args[0].value, "latency_ms", dt));
    json_t *out = flow_reply(flow, steps, all_ok && same && calls == 1);
    json_object_set_new(out, "loader_calls", json_integer(calls));
    sb_flow_end(s);
    sb_json(rep, 200, out);
}

/* ------------------------------------------------------------------ invalidation race */

typedef struct race_arg {
    sb *s;
    const char *key;
    loader_ctx *lc;
    hc_status st;
    char value[128];
} race_arg;

static void *race_thread(void *p)
{
    race_arg *a = p;
    hc_value *v = NULL;
    a->st = hc_get_or_load(a->s->a, a->key, HC_OPTS(.tags = HC_TAGS("race")), sb_loader, a->lc,
                           &v, NULL);
    if (v != NULL)
        snprintf(a->value, sizeof a->value, "%.*s", (int)hc_value_len(v),
                 (const char *)hc_value_data(v));
    hc_value_release(v);
    return NULL;
}

void sb_h_race(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    uint64_t flow = sb_flow_begin(s);
    json_t *steps = json_array();
    char key[64];
    snprintf(key, sizeof key, "race:%llu", (unsigned long long)atomic_fetch_add(&s->key_seq, 1));
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    bool started = false, release = false;
    loader_ctx lc = {.s = s, .value = "value-read-before-the-write", .mu = &mu, .cv = &cv,
                     .started = &started, .release = &release};
    race_arg a = {.s = s, .key = key, .lc = &lc};
    uint64_t d0 = STAT(s->a, stale_load_discards);
    pthread_t th;
    bool ok = pthread_create(&th, NULL, race_thread, &a) == 0;
    if (ok) {
        pthread_mutex_lock(&mu);
        while (!started)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        sb_update(step(steps, "slow load started"),
                           json_pack("{s:s, s:s}", "key", key, "tag", "race"));
        /* the write: the data changed while the loader held the old version */
        hc_invalidate_tag(s->a, "race", NULL);
        sb_update(step(steps, "write during the load"),
                           json_pack("{s:s}", "action", "invalidate_tag race"));
        pthread_mutex_lock(&mu);
        release = true;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(th, NULL);
    }
    sb_update(step(steps, "load finished"),
                       json_pack("{s:s, s:s}", "status", hc_status_str(a.st), "caller_got",
                                 a.value));
    bool stored = hc_contains(s->a, key, NULL) == HC_OK;
    uint64_t discards = STAT(s->a, stale_load_discards) - d0;
    sb_update(step(steps, "stored?"),
                       json_pack("{s:b, s:I}", "stored", stored, "stale_load_discards",
                                 (json_int_t)discards));
    loader_ctx fresh = {.s = s, .value = "value-read-after-the-write"};
    json_t *re = step(steps, "next read");
    load_into(s->a, key, HC_OPTS(.tags = HC_TAGS("race")), &fresh, re);
    ok &= !stored && discards == 1 &&
          strcmp(json_string_value(json_object_get(re, "source")), "loader") == 0;
    json_t *out = flow_reply(flow, steps, ok);
    json_object_set_new(out, "stored", json_boolean(stored));
    sb_flow_end(s);
    sb_json(rep, 200, out);
}

/* ------------------------------------------------------------------ negative cases */

void sb_h_negative(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    uint64_t flow = sb_flow_begin(s);
    json_t *steps = json_array();
    unsigned long long n = (unsigned long long)atomic_fetch_add(&s->key_seq, 1);
    char k1[64], k2[64], k3[64];
    snprintf(k1, sizeof k1, "missing:%llu", n);
    snprintf(k2, sizeof k2, "failing:%llu", n);
    snprintf(k3, sizeof k3, "expiring:%llu", n);
    bool ok = true;
    hc_status st = peek(s->a, k1);
    sb_update(step(steps, "missing key"),
                       json_pack("{s:s, s:s, s:b}", "key", k1, "status", hc_status_str(st),
                                 "found", st == HC_OK));
    ok &= st == HC_MISS;
    loader_ctx lc = {.s = s, .fail = true};
    json_t *e1 = step(steps, "loader error");
    st = load_into(s->a, k2, NULL, &lc, e1);
    ok &= st == HC_ERR_LOADER;
    bool cached = hc_contains(s->a, k2, NULL) == HC_OK;
    json_object_set_new(e1, "cached", json_boolean(cached));
    ok &= !cached;
    json_t *e2 = step(steps, "loader error again (errors are not cached)");
    st = load_into(s->a, k2, NULL, &lc, e2);
    json_object_set_new(e2, "loader_calls", json_integer(atomic_load(&lc.calls)));
    ok &= st == HC_ERR_LOADER && atomic_load(&lc.calls) == 2;
    hc_put(s->a, k3, "soon gone", 9, HC_OPTS(.ttl_ms = 1000), NULL);
    atomic_fetch_add(&s->clock_offset_ms, 1001);
    st = peek(s->a, k3);
    sb_update(step(steps, "expired entry"),
                       json_pack("{s:s, s:I, s:I, s:s, s:b}", "key", k3, "ttl_ms", 1000,
                                 "advanced_ms", 1001, "status", hc_status_str(st), "found",
                                 st == HC_OK));
    ok &= st == HC_MISS;
    sb_flow_end(s);
    sb_json(rep, 200, flow_reply(flow, steps, ok));
}

/* ------------------------------------------------------------------ two nodes */

void sb_h_two_node(sb *s, sb_req *req, sb_reply *rep)
{
    long long id;
    char tag[32], namebuf[32];
    uint64_t flow;
    if (!user_flow_begin(s, req, rep, &id, tag, &flow))
        return;
    json_t *steps = json_array();
    bool ok = true;
    ok &= load_user(s, s->a, (int)id, step(steps, "node A load")) == HC_OK;
    ok &= load_user(s, s->b, (int)id, step(steps, "node B load")) == HC_OK;
    bool ca = hc_contains(s->a, tag, NULL) == HC_OK, cb = hc_contains(s->b, tag, NULL) == HC_OK;
    sb_update(step(steps, "both cached"), json_pack("{s:b, s:b}", "a", ca, "b", cb));
    ok &= ca && cb;
    const char *name = next_name(s, (int)id, req, namebuf, sizeof namebuf);
    hc_subscriber *sa = hc_subscribe(s->a, HC_EV_INVALIDATE_TAG | HC_EV_FLUSH, 64, NULL);
    hc_subscriber *sbb = hc_subscribe(s->b, HC_EV_INVALIDATE_TAG | HC_EV_FLUSH, 64, NULL);
    double tw = sb_now_ms();
    /* memory: node A writes and publishes; postgres: an UPDATE that no node makes */
    ok &= write_user(s, s->a, (int)id, name, step(steps, "write")) == 0;
    hc_subscriber *subs[2] = {sa, sbb};
    const char *names[2] = {"node A invalidated", "node B invalidated"};
    for (int i = 0; i < 2; i++)
        ok &= invalidation_step(steps, names[i], subs[i], tag, tw) == 0;
    sb_settle(s);
    ca = hc_contains(s->a, tag, NULL) == HC_OK;
    cb = hc_contains(s->b, tag, NULL) == HC_OK;
    sb_update(step(steps, "both dropped"), json_pack("{s:b, s:b}", "a", ca, "b", cb));
    ok &= !ca && !cb;
    json_t *ra = step(steps, "node A reload"), *rb = step(steps, "node B reload");
    ok &= load_user(s, s->a, (int)id, ra) == HC_OK && load_user(s, s->b, (int)id, rb) == HC_OK;
    ok &= json_equal(json_object_get(ra, "value"), json_object_get(rb, "value")) &&
          strcmp(json_string_value(json_object_get(ra, "value")) ?: "", name) == 0;
    json_t *out = flow_reply(flow, steps, ok);
    json_object_set_new(out, "written", json_string(name));
    sb_flow_end(s);
    sb_json(rep, 200, out);
}

/* ------------------------------------------------------------------ seeded query demos */

static bool need_pg(sb *s, sb_reply *rep)
{
    if (s->profile == SB_PROFILE_POSTGRES)
        return true;
    sb_error(rep, 409, "the query demos need the postgres profile (hcpg-sandbox --profile postgres)");
    return false;
}

static bool valid_table(const char *t)
{
    return strcmp(t, "users") == 0 || strcmp(t, "products") == 0 ||
           strcmp(t, "order_summary") == 0;
}

void sb_h_query(sb *s, sb_req *req, sb_reply *rep)
{
    const char *table;
    long long id;
    if (!need_pg(s, rep) || sb_get_str(req, rep, "table", true, &table) ||
        sb_get_int(req, rep, "id", 1, 1000000, 1, &id))
        return;
    if (!valid_table(table)) {
        sb_error(rep, 400, "field 'table' must be users, products or order_summary");
        return;
    }
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    hc_cache *c = pick_node(s, req, rep);
    if (c == NULL)
        return;
    json_t *j = json_object();
    pg_query(s, c, table, ids, j);
    sb_json(rep, 200, j);
    sb_collect_events(s);
}

void sb_h_queries(sb *s, sb_req *req, sb_reply *rep)
{
    long long uid;
    if (!need_pg(s, rep) || sb_get_int(req, rep, "user_id", 1, 100, 7, &uid))
        return;
    char ids[16];
    snprintf(ids, sizeof ids, "%lld", uid);
    uint64_t flow = sb_flow_begin(s);
    json_t *steps = json_array();
    hc_invalidate_tag(s->a, "orders", NULL); /* cold start for the summary */
    char utag[32];
    snprintf(utag, sizeof utag, "user:%lld", uid);
    hc_invalidate_tag(s->a, utag, NULL);
    sb_settle(s);
    bool ok = true;
    ok &= pg_query(s, s->a, "users", ids, step(steps, "user")) == HC_OK;
    ok &= pg_query(s, s->a, "users", ids, step(steps, "user again")) == HC_OK;
    ok &= pg_query(s, s->a, "products", "3", step(steps, "product 3")) == HC_OK;
    json_t *s1 = step(steps, "order summary");
    ok &= pg_query(s, s->a, "order_summary", ids, s1) == HC_OK;
    ok &= pg_query(s, s->a, "order_summary", ids, step(steps, "order summary again")) == HC_OK;
    hc_subscriber *sub = hc_subscribe(s->a, HC_EV_INVALIDATE_TAG | HC_EV_FLUSH, 64, NULL);
    json_t *w = step(steps, "insert an order");
    double tw = sb_now_ms();
    pthread_mutex_lock(&s->pg_lock);
    PGresult *r = PQexecParams(s->writer,
                               "INSERT INTO sb_orders (user_id, product_id, qty) VALUES ($1, 3, 2)",
                               1, NULL, (const char *const[]){ids}, NULL, NULL, 0);
    bool wok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    pthread_mutex_unlock(&s->pg_lock);
    sb_update(w, json_pack("{s:s, s:s, s:f, s:b}", "source", "sql", "how",
                                    "INSERT INTO sb_orders (user_id, product_id, qty) VALUES "
                                    "(<user>, 3, 2)",
                                    "latency_ms", sb_now_ms() - tw, "ok", wok));
    int rc = invalidation_step(steps, "invalidation", sub, "orders", tw);
    sb_settle(s);
    json_t *s2 = step(steps, "order summary after the insert");
    ok &= wok && rc == 0 && pg_query(s, s->a, "order_summary", ids, s2) == HC_OK;
    const char *before = json_string_value(
        json_object_get(json_array_get(json_object_get(s1, "rows"), 0), "orders"));
    const char *after = json_string_value(
        json_object_get(json_array_get(json_object_get(s2, "rows"), 0), "orders"));
    ok &= before != NULL && after != NULL && atol(after) == atol(before) + 1;
    json_t *out = flow_reply(flow, steps, ok);
    sb_flow_end(s);
    sb_json(rep, 200, out);
}

/* (Re)create and fill the demo tables, watched by the hydracache extension. */
int sb_pg_seed(sb *s, char *err, size_t errcap)
{
    static const char *sql =
        "CREATE EXTENSION IF NOT EXISTS hydracache;"
        "DROP TABLE IF EXISTS sb_orders, sb_products, sb_users;"
        "CREATE TABLE sb_users (id int PRIMARY KEY, name text NOT NULL, email text);"
        "INSERT INTO sb_users SELECT g, (ARRAY['arthur','ford','zaphod','trillian','marvin'])"
        "[1 + g % 5], 'u' || g || '@example.org' FROM generate_series(0, 99) g;"
        "CREATE TABLE sb_products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) "
        "NOT NULL, stock int NOT NULL);"
        "INSERT INTO sb_products SELECT g, 'product-' || g, g * 1.5, 100 - g "
        "FROM generate_series(1, 20) g;"
        "CREATE TABLE sb_orders (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES sb_users,"
        " product_id int NOT NULL REFERENCES sb_products, qty int NOT NULL);"
        "INSERT INTO sb_orders (user_id, product_id, qty) SELECT g % 100, 1 + g % 20, 1 + g % 3 "
        "FROM generate_series(1, 300) g;"
        "SELECT hydracache.watch('sb_users', 'user', collection => 'users');"
        "SELECT hydracache.watch('sb_products', 'product', collection => 'products');"
        "SELECT hydracache.watch('sb_orders', 'order', collection => 'orders');";
    PGresult *r = PQexec(s->conn, sql);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errcap, "seeding the demo tables: %s", PQerrorMessage(s->conn));
        rc = -1;
    }
    PQclear(r);
    return rc;
}
