/*
 * server.c - the sandbox context (caches, buses, connections, event log), the
 * routing table shared by HTTP and scenarios, and the libmicrohttpd server.
 */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sandbox.h"

#if MHD_VERSION < 0x00097002
typedef int sb_mhd_result;
#else
typedef enum MHD_Result sb_mhd_result;
#endif

double sb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The caches' clock: monotonic time plus the virtual offset of /cache/clock/advance. */
static uint64_t sb_clock(void *ctx)
{
    sb *s = ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
           atomic_load(&s->clock_offset_ms);
}

static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

const sb_asset *sb_asset_find(const char *name)
{
    for (unsigned i = 0; i < sb_nassets; i++)
        if (strcmp(sb_assets[i].name, name) == 0)
            return &sb_assets[i];
    return NULL;
}

/* ------------------------------------------------------------------ replies */

void sb_json(sb_reply *rep, int status, json_t *j)
{
    sb_reply_free(rep);
    rep->status = status;
    rep->json = j != NULL ? j : json_object();
}

void sb_error(sb_reply *rep, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sb_json(rep, status, json_pack("{s:s, s:i}", "error", msg, "status", status));
}

void sb_update(json_t *dst, json_t *src)
{
    json_object_update(dst, src);
    json_decref(src);
}

void sb_reply_free(sb_reply *rep)
{
    json_decref(rep->json);
    free(rep->text);
    rep->json = NULL;
    rep->text = NULL;
    rep->data = NULL;
    rep->len = 0;
    rep->type = NULL;
}

int sb_get_str(sb_req *req, sb_reply *rep, const char *name, bool required, const char **out)
{
    json_t *v = req->body != NULL ? json_object_get(req->body, name) : NULL;
    if (v == NULL)
        v = json_object_get(req->query, name);
    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        if (!required)
            return 0;
        sb_error(rep, 400, "missing field '%s'", name);
        return -1;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        sb_error(rep, 400, "field '%s' must be a non-empty string without NUL", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int sb_get_int(sb_req *req, sb_reply *rep, const char *name, long long lo, long long hi,
               long long dflt, long long *out)
{
    json_t *v = req->body != NULL ? json_object_get(req->body, name) : NULL;
    long long x;
    if (v == NULL) {
        json_t *q = json_object_get(req->query, name);
        if (q == NULL) {
            *out = dflt;
            return 0;
        }
        char *end;
        const char *t = json_string_value(q);
        x = strtoll(t, &end, 10);
        if (*t == '\0' || *end != '\0') {
            sb_error(rep, 400, "field '%s' must be an integer", name);
            return -1;
        }
    } else if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_null(v)) {
        *out = dflt;
        return 0;
    } else {
        sb_error(rep, 400, "field '%s' must be an integer", name);
        return -1;
    }
    if (x < lo || x > hi) {
        sb_error(rep, 400, "field '%s' must be between %lld and %lld", name, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* ------------------------------------------------------------------ events */

static void log_add(sb *s, const char *cache, const hc_event *ev, hc_status st)
{
    sb_event *e = &s->log[s->log_next % SB_EVENT_LOG_MAX];
    memset(e, 0, sizeof *e);
    e->id = ++s->log_next;
    e->flow = s->cur_flow;
    /* the event's own time on the caches' clock (virtual TTL jumps included) */
    e->t_ms = (double)(ev->time_ms >= s->clock0_ms ? ev->time_ms - s->clock0_ms : 0);
    snprintf(e->cache, sizeof e->cache, "%s", cache);
    if (st == HC_LAGGED) {
        snprintf(e->kind, sizeof e->kind, "lagged");
        snprintf(e->subject, sizeof e->subject, "%llu events lost", (unsigned long long)ev->lost);
        s->log_lost += ev->lost;
        return;
    }
    snprintf(e->kind, sizeof e->kind, "%s", hc_event_kind_str(ev->kind));
    snprintf(e->origin, sizeof e->origin, "%s", hc_origin_str(ev->origin));
    snprintf(e->subject, sizeof e->subject, "%s", ev->subject);
}

typedef struct pending_ev {
    hc_event ev;
    hc_status st;
    const char *cache;
    size_t order; /* arrival order: ties keep it */
} pending_ev;

static int by_time(const void *a, const void *b)
{
    const pending_ev *x = a, *y = b;
    if (x->ev.time_ms != y->ev.time_ms)
        return x->ev.time_ms < y->ev.time_ms ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Move the subscribers' events into the log, both nodes merged in time order. */
void sb_collect_events(sb *s)
{
    struct { hc_subscriber *sub; const char *name; } subs[2] = {
        {s->sub_a, hc_cache_name(s->a)}, {s->sub_b, hc_cache_name(s->b)}};
    pthread_mutex_lock(&s->log_lock);
    for (;;) {
        pending_ev batch[512];
        size_t n = 0;
        for (int i = 0; i < 2; i++) {
            hc_status st;
            while (n < 256 * (size_t)(i + 1) &&
                   ((st = hc_subscriber_recv(subs[i].sub, &batch[n].ev, 0)) == HC_OK ||
                    st == HC_LAGGED)) {
                batch[n].st = st;
                batch[n].order = n;
                batch[n++].cache = subs[i].name;
            }
        }
        if (n == 0)
            break;
        qsort(batch, n, sizeof *batch, by_time);
        for (size_t i = 0; i < n; i++)
            log_add(s, batch[i].cache, &batch[i].ev, batch[i].st);
    }
    pthread_mutex_unlock(&s->log_lock);
}

uint64_t sb_flow_begin(sb *s)
{
    pthread_mutex_lock(&s->flow_lock);
    sb_collect_events(s); /* what happened before belongs to no flow */
    uint64_t id = atomic_fetch_add(&s->flow_seq, 1) + 1;
    pthread_mutex_lock(&s->log_lock);
    s->cur_flow = id;
    pthread_mutex_unlock(&s->log_lock);
    return id;
}

void sb_flow_end(sb *s)
{
    sb_collect_events(s);
    pthread_mutex_lock(&s->log_lock);
    s->cur_flow = 0;
    pthread_mutex_unlock(&s->log_lock);
    pthread_mutex_unlock(&s->flow_lock);
}

static bool kind_is_tag(const char *kind)
{
    return strcmp(kind, "invalidate_tag") == 0;
}

json_t *sb_events_json(sb *s, const char *kind, const char *key, const char *tag, uint64_t flow,
                       size_t limit)
{
    sb_collect_events(s);
    json_t *arr = json_array();
    pthread_mutex_lock(&s->log_lock);
    uint64_t n = s->log_next < SB_EVENT_LOG_MAX ? s->log_next : SB_EVENT_LOG_MAX;
    /* newest first, then reversed so the reply is in time order */
    for (uint64_t i = 0; i < n && json_array_size(arr) < limit; i++) {
        const sb_event *e = &s->log[(s->log_next - 1 - i) % SB_EVENT_LOG_MAX];
        if (kind != NULL && strcmp(e->kind, kind) != 0)
            continue;
        if (key != NULL && (kind_is_tag(e->kind) || strcmp(e->subject, key) != 0))
            continue;
        if (tag != NULL && (!kind_is_tag(e->kind) || strcmp(e->subject, tag) != 0))
            continue;
        if (flow != 0 && e->flow != flow)
            continue;
        json_array_insert_new(arr, 0,
                              json_pack("{s:I, s:I, s:f, s:s, s:s, s:s, s:s}", "id",
                                        (json_int_t)e->id, "flow", (json_int_t)e->flow, "t_ms",
                                        e->t_ms, "cache", e->cache, "kind", e->kind, "origin",
                                        e->origin, "subject", e->subject));
    }
    json_t *out = json_pack("{s:o, s:I, s:I, s:i}", "events", arr, "total",
                            (json_int_t)s->log_next, "lost", (json_int_t)s->log_lost, "capacity",
                            SB_EVENT_LOG_MAX);
    pthread_mutex_unlock(&s->log_lock);
    return out;
}

json_t *sb_stats_json(hc_cache *c)
{
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    const hc_stats *t = &d.stats;
    return json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:s}",
        "cache", hc_cache_name(c), "hits", (json_int_t)t->hits, "misses", (json_int_t)t->misses,
        "loads", (json_int_t)t->loads, "load_errors", (json_int_t)t->load_errors,
        "single_flight_joins", (json_int_t)t->single_flight_joins, "stale_load_discards",
        (json_int_t)t->stale_load_discards, "puts", (json_int_t)t->puts, "invalidations_key",
        (json_int_t)t->invalidations_key, "invalidations_tag", (json_int_t)t->invalidations_tag,
        "invalidations_flush", (json_int_t)t->invalidations_flush, "evictions_expired",
        (json_int_t)t->evictions_expired, "bus_received", (json_int_t)t->bus_received,
        "bus_applied", (json_int_t)t->bus_applied, "bypassed_loads",
        (json_int_t)t->bypassed_loads, "hit_ratio", hc_stats_hit_ratio(t), "entries",
        (json_int_t)d.entries, "bus_state", hc_bus_state_str(d.bus_state));
}

/* ------------------------------------------------------------------ lifecycle */

static hc_cache *new_cache(sb *s, const char *name, char *err, size_t errcap)
{
    hc_error e;
    hc_cache *c = hc_cache_new(&(hc_config){.name = name, .max_bytes = 32u << 20,
                                            .clock = sb_clock, .clock_ctx = s},
                               &e);
    if (c == NULL) {
        snprintf(err, errcap, "cache %s: %s", name, e.message);
        return NULL;
    }
    if (hc_registry_add(s->reg, c, &e) != HC_OK) {
        snprintf(err, errcap, "registry: %s", e.message);
        hc_cache_free(c);
        return NULL;
    }
    return c;
}

static PGconn *pg_connect(const char *dsn, char *err, size_t errcap)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errcap, "cannot connect to %s: %s", dsn, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    return c;
}

static hc_pg_bus *pg_bus(sb *s, hc_cache *c, const char *node, char *err, size_t errcap)
{
    hc_error e;
    hc_pg_bus *bus = hc_pg_bus_new(&(hc_pg_bus_config){.conninfo = s->dsn, .node_id = node}, &e);
    if (bus == NULL || hc_pg_bus_attach(bus, c, &e) != HC_OK) {
        snprintf(err, errcap, "bus %s: %s", node, e.message);
        hc_pg_bus_free(bus);
        return NULL;
    }
    if (hc_pg_bus_wait_state(bus, HC_BUS_LISTENING, 15000) != HC_OK) {
        snprintf(err, errcap, "bus %s: not listening after 15 s", node);
        hc_pg_bus_free(bus);
        return NULL;
    }
    hc_registry_add_pg_bus(s->reg, node, bus, NULL);
    return bus;
}

static void mem_seed(sb *s)
{
    static const char *names[] = {"arthur", "ford", "zaphod", "trillian", "marvin"};
    pthread_mutex_lock(&s->table_lock);
    for (int i = 0; i < 100; i++)
        snprintf(s->mem_users[i], sizeof s->mem_users[i], "%s", names[i % 5]);
    pthread_mutex_unlock(&s->table_lock);
}

sb *sb_new(const sb_config *cfg, char *err, size_t errcap)
{
    sb *s = calloc(1, sizeof *s);
    hc_error e;
    if (s == NULL || (s->log = calloc(SB_EVENT_LOG_MAX, sizeof *s->log)) == NULL) {
        snprintf(err, errcap, "out of memory");
        free(s);
        return NULL;
    }
    s->profile = cfg->profile;
    s->t0_ms = sb_now_ms();
    s->clock0_ms = sb_clock(s);
    pthread_mutex_init(&s->pg_lock, NULL);
    pthread_mutex_init(&s->flow_lock, NULL);
    pthread_mutex_init(&s->table_lock, NULL);
    pthread_mutex_init(&s->log_lock, NULL);
    pthread_mutex_init(&s->bench_lock, NULL);
    mem_seed(s);
    if ((s->reg = hc_registry_new(&e)) == NULL) {
        snprintf(err, errcap, "registry: %s", e.message);
        goto fail;
    }
    if ((s->a = new_cache(s, "sandbox", err, errcap)) == NULL ||
        (s->b = new_cache(s, "sandbox-b", err, errcap)) == NULL ||
        (s->bench = new_cache(s, "bench", err, errcap)) == NULL)
        goto fail;
    hc_enable_access_events(s->a, true);
    hc_enable_access_events(s->b, true);
    if ((s->sub_a = hc_subscribe(s->a, HC_EV_ALL, 4096, &e)) == NULL ||
        (s->sub_b = hc_subscribe(s->b, HC_EV_ALL, 4096, &e)) == NULL) {
        snprintf(err, errcap, "subscribe: %s", e.message);
        goto fail;
    }
    if (s->profile == SB_PROFILE_MEMORY) {
        if ((s->local_bus = hc_local_bus_new("sandbox", &e)) == NULL ||
            hc_bus_attach(s->local_bus, s->a, &e) != HC_OK ||
            hc_bus_attach(s->local_bus, s->b, &e) != HC_OK) {
            snprintf(err, errcap, "local bus: %s", e.message);
            goto fail;
        }
    } else {
        if (cfg->dsn == NULL || (s->dsn = strdup(cfg->dsn)) == NULL) {
            snprintf(err, errcap, "the postgres profile needs a DSN");
            goto fail;
        }
        if ((s->conn = pg_connect(s->dsn, err, errcap)) == NULL ||
            (s->writer = pg_connect(s->dsn, err, errcap)) == NULL)
            goto fail;
        if (sb_pg_seed(s, err, errcap) != 0)
            goto fail;
        if ((s->pbus_a = pg_bus(s, s->a, "sandbox-a", err, errcap)) == NULL ||
            (s->pbus_b = pg_bus(s, s->b, "sandbox-b", err, errcap)) == NULL)
            goto fail;
    }
    sb_collect_events(s);
    return s;
fail:
    sb_free(s);
    return NULL;
}

void sb_free(sb *s)
{
    if (s == NULL)
        return;
    if (s->pbus_a != NULL)
        hc_registry_remove_pg_bus(s->reg, s->pbus_a, NULL);
    if (s->pbus_b != NULL)
        hc_registry_remove_pg_bus(s->reg, s->pbus_b, NULL);
    hc_pg_bus_free(s->pbus_a);
    hc_pg_bus_free(s->pbus_b);
    hc_bus_free(s->local_bus);
    hc_subscriber_free(s->sub_a);
    hc_subscriber_free(s->sub_b);
    hc_cache *cs[3] = {s->a, s->b, s->bench};
    for (int i = 0; i < 3; i++) {
        if (cs[i] != NULL)
            hc_registry_remove(s->reg, cs[i], NULL);
        hc_cache_free(cs[i]);
    }
    hc_registry_free(s->reg);
    if (s->conn != NULL)
        PQfinish(s->conn);
    if (s->writer != NULL)
        PQfinish(s->writer);
    sb_bench_free_all(s);
    free(s->dsn);
    free(s->log);
    pthread_mutex_destroy(&s->pg_lock);
    pthread_mutex_destroy(&s->flow_lock);
    pthread_mutex_destroy(&s->table_lock);
    pthread_mutex_destroy(&s->log_lock);
    pthread_mutex_destroy(&s->bench_lock);
    free(s);
}

int sb_reset(sb *s, char *err, size_t errcap)
{
    pthread_mutex_lock(&s->flow_lock);
    int rc = 0;
    mem_seed(s);
    if (s->profile == SB_PROFILE_POSTGRES) {
        pthread_mutex_lock(&s->pg_lock);
        rc = sb_pg_seed(s, err, errcap);
        pthread_mutex_unlock(&s->pg_lock);
    }
    hc_flush(s->a, NULL);
    hc_flush(s->b, NULL);
    hc_flush(s->bench, NULL);
    /* the reseed's invalidations and each node's flush (published to the other node)
     * travel over the buses: wait until both nodes applied them */
    sb_settle(s);
    /* the virtual clock offset stays: a clock must not go backwards */
    sb_collect_events(s);
    pthread_mutex_lock(&s->log_lock);
    s->log_next = 0;
    s->log_lost = 0;
    pthread_mutex_unlock(&s->log_lock);
    pthread_mutex_unlock(&s->flow_lock);
    return rc;
}

/* ------------------------------------------------------------------ generic routes */

static void h_ready(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    bool up = true;
    if (s->profile == SB_PROFILE_POSTGRES)
        up = hc_pg_bus_state(s->pbus_a) == HC_BUS_LISTENING &&
             hc_pg_bus_state(s->pbus_b) == HC_BUS_LISTENING;
    sb_json(rep, up ? 200 : 503,
            json_pack("{s:b, s:s, s:s, s:[s,s]}", "ready", up, "profile",
                      s->profile == SB_PROFILE_MEMORY ? "memory" : "postgres", "version",
                      HC_VERSION_STRING, "caches", hc_cache_name(s->a), hc_cache_name(s->b)));
}

static void h_reset(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    char err[512];
    if (sb_reset(s, err, sizeof err) != 0)
        sb_error(rep, 500, "reset: %s", err);
    else
        sb_json(rep, 200, json_pack("{s:b}", "reset", 1));
}

static void h_asset(sb_reply *rep, const char *name, const char *type)
{
    const sb_asset *a = sb_asset_find(name);
    if (a == NULL) {
        sb_error(rep, 404, "asset %s not built in", name);
        return;
    }
    rep->status = 200;
    rep->data = a->data;
    rep->len = a->len;
    rep->type = type;
}

static void h_openapi(sb *s, sb_req *req, sb_reply *rep)
{
    (void)s, (void)req;
    h_asset(rep, "openapi.json", "application/json");
}
static void h_ui(sb *s, sb_req *req, sb_reply *rep)
{
    (void)s, (void)req;
    h_asset(rep, "ui/index.html", "text/html; charset=utf-8");
}
static void h_ui_js(sb *s, sb_req *req, sb_reply *rep)
{
    (void)s, (void)req;
    h_asset(rep, "ui/app.js", "text/javascript; charset=utf-8");
}
static void h_ui_css(sb *s, sb_req *req, sb_reply *rep)
{
    (void)s, (void)req;
    h_asset(rep, "ui/style.css", "text/css; charset=utf-8");
}

static void h_stats(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    sb_json(rep, 200, json_pack("{s:o, s:o, s:I}", "a", sb_stats_json(s->a), "b",
                                sb_stats_json(s->b), "loader_calls",
                                (json_int_t)atomic_load(&s->loads)));
}

static void h_events(sb *s, sb_req *req, sb_reply *rep)
{
    const char *kind, *key, *tag;
    long long flow, limit;
    if (sb_get_str(req, rep, "kind", false, &kind) || sb_get_str(req, rep, "key", false, &key) ||
        sb_get_str(req, rep, "tag", false, &tag) ||
        sb_get_int(req, rep, "flow", 0, INT64_MAX, 0, &flow) ||
        sb_get_int(req, rep, "limit", 1, SB_EVENT_LOG_MAX, 200, &limit))
        return;
    sb_json(rep, 200, sb_events_json(s, kind, key, tag, (uint64_t)flow, (size_t)limit));
}

static json_t *report_json(sb *s)
{
    json_t *ev = sb_events_json(s, NULL, NULL, NULL, 0, SB_EVENT_LOG_MAX);
    json_t *kinds = json_object();
    json_t *arr = json_object_get(ev, "events");
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *k = json_string_value(json_object_get(e, "kind"));
        json_t *n = json_object_get(kinds, k);
        json_object_set_new(kinds, k, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    json_t *r = json_pack("{s:s, s:f, s:o, s:o, s:o, s:I, s:o}", "profile",
                          s->profile == SB_PROFILE_MEMORY ? "memory" : "postgres", "uptime_ms",
                          sb_now_ms() - s->t0_ms, "a", sb_stats_json(s->a), "b",
                          sb_stats_json(s->b), "events_by_kind", kinds, "events_total",
                          (json_int_t)json_integer_value(json_object_get(ev, "total")),
                          "bench_runs", sb_bench_runs_json(s));
    json_decref(ev);
    return r;
}

static void h_report(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    sb_json(rep, 200, report_json(s));
}

static void h_export(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    json_t *r = report_json(s);
    json_t *ev = sb_events_json(s, NULL, NULL, NULL, 0, SB_EVENT_LOG_MAX);
    json_object_set(r, "events", json_object_get(ev, "events"));
    json_decref(ev);
    json_object_set_new(r, "format", json_string("hcpg-sandbox-export/1"));
    sb_json(rep, 200, r);
}

static void text_reply(sb_reply *rep, hc_status st, char *body, size_t len, const char *type,
                       int ok_code)
{
    if (st == HC_MISS) {
        sb_error(rep, 404, "no such cache");
        return;
    }
    if (st != HC_OK) {
        sb_error(rep, 500, "snapshot failed: %s", hc_status_str(st));
        return;
    }
    rep->status = ok_code;
    rep->text = body;
    rep->len = len;
    rep->type = type;
}

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define JSON_TYPE "application/json"

static void h_metrics(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    char *body = NULL;
    size_t len = 0;
    hc_status st = hc_registry_prometheus(s->reg, &body, &len, NULL);
    text_reply(rep, st, body, len, PROM_TYPE, 200);
}

static void h_act_health(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    char *body = NULL;
    size_t len = 0;
    bool up = false;
    hc_status st = hc_registry_health(s->reg, &up, &body, &len, NULL);
    text_reply(rep, st, body, len, JSON_TYPE, up ? 200 : 503);
}

static void h_act_caches(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    char *body = NULL;
    size_t len = 0;
    hc_status st = hc_registry_caches_json(s->reg, &body, &len, NULL);
    text_reply(rep, st, body, len, JSON_TYPE, 200);
}

static void act_cache(sb *s, sb_req *req, sb_reply *rep, hc_registry_section sec)
{
    char *body = NULL;
    size_t len = 0;
    hc_status st = hc_registry_cache_json(s->reg, req->param, sec, &body, &len, NULL);
    text_reply(rep, st, body, len, JSON_TYPE, 200);
}
static void h_act_stats(sb *s, sb_req *req, sb_reply *rep)
{
    act_cache(s, req, rep, HC_REGISTRY_STATS);
}
static void h_act_diag(sb *s, sb_req *req, sb_reply *rep)
{
    act_cache(s, req, rep, HC_REGISTRY_DIAGNOSTICS);
}

const sb_route sb_routes[] = {
    {"GET", "/ready", h_ready},
    {"GET", "/openapi.json", h_openapi},
    {"GET", "/demo/ui", h_ui},
    {"GET", "/demo/ui/app.js", h_ui_js},
    {"GET", "/demo/ui/style.css", h_ui_css},
    {"POST", "/demo/reset", h_reset},
    {"POST", "/cache/put", sb_h_put},
    {"POST", "/cache/get", sb_h_get},
    {"POST", "/cache/get-or-load", sb_h_get_or_load},
    {"POST", "/cache/contains", sb_h_contains},
    {"POST", "/cache/remove", sb_h_remove},
    {"POST", "/cache/invalidate-tag", sb_h_invalidate_tag},
    {"POST", "/cache/flush", sb_h_flush},
    {"POST", "/cache/clock/advance", sb_h_clock_advance},
    {"GET", "/cache/stats", h_stats},
    {"POST", "/demo/golden", sb_h_golden},
    {"POST", "/demo/ttl", sb_h_ttl},
    {"POST", "/demo/single-flight", sb_h_single_flight},
    {"POST", "/demo/race", sb_h_race},
    {"POST", "/demo/negative", sb_h_negative},
    {"POST", "/demo/two-node", sb_h_two_node},
    {"POST", "/demo/query", sb_h_query},
    {"POST", "/demo/queries", sb_h_queries},
    {"POST", "/demo/bench", sb_h_bench},
    {"GET", "/demo/bench", sb_h_bench_list},
    {"POST", "/demo/bench/compare", sb_h_bench_compare},
    {"GET", "/demo/events", h_events},
    {"GET", "/demo/report", h_report},
    {"GET", "/demo/export", h_export},
    {"GET", "/demo/scenarios", sb_h_scenarios},
    {"POST", "/demo/scenario/run", sb_h_scenario_run},
    {"GET", "/metrics", h_metrics},
    {"GET", "/actuator/hydracache/health", h_act_health},
    {"GET", "/actuator/hydracache/caches", h_act_caches},
    {"GET", "/actuator/hydracache/caches/{name}/stats", h_act_stats},
    {"GET", "/actuator/hydracache/caches/{name}/diagnostics", h_act_diag},
    {"GET", "/actuator/hydracache/metrics", h_metrics},
};
const unsigned sb_nroutes = sizeof sb_routes / sizeof sb_routes[0];

/* Does path match pattern?  A "{x}" segment matches one or more bytes (even '/'). */
static bool route_match(const char *pattern, const char *path, char *param, size_t cap)
{
    const char *open = strchr(pattern, '{');
    if (open == NULL)
        return strcmp(pattern, path) == 0;
    const char *close = strchr(open, '}');
    size_t pre = (size_t)(open - pattern), suf = strlen(close + 1), plen = strlen(path);
    if (plen <= pre + suf || strncmp(pattern, path, pre) != 0 ||
        strcmp(path + plen - suf, close + 1) != 0)
        return false;
    size_t n = plen - pre - suf;
    if (n >= cap)
        return false;
    memcpy(param, path + pre, n);
    param[n] = '\0';
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode (and '+' -> ' ') in place. */
static void url_decode(char *t)
{
    char *o = t;
    for (char *p = t; *p; p++) {
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *o++ = *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
}

void sb_dispatch(sb *s, const char *method, const char *target, json_t *body, json_t *query,
                 sb_reply *rep)
{
    memset(rep, 0, sizeof *rep);
    sb_req req = {.method = method, .body = body};
    char path[1024];
    snprintf(path, sizeof path, "%s", target);
    json_t *q = query != NULL ? json_incref(query) : json_object();
    char *qs = strchr(path, '?');
    if (qs != NULL) {
        *qs++ = '\0';
        for (char *save = NULL, *kv = strtok_r(qs, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            if (eq == NULL)
                continue;
            *eq = '\0';
            url_decode(kv);
            url_decode(eq + 1);
            json_object_set_new(q, kv, json_string(eq + 1));
        }
    }
    req.path = path;
    req.query = q;
    if (body != NULL && !json_is_object(body)) {
        sb_error(rep, 400, "the request body must be a JSON object");
        json_decref(q);
        return;
    }
    bool path_known = false;
    for (unsigned i = 0; i < sb_nroutes; i++) {
        if (!route_match(sb_routes[i].path, path, req.param, sizeof req.param))
            continue;
        path_known = true;
        if (strcmp(sb_routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(sb_routes[i].method, "GET") == 0)) {
            sb_routes[i].fn(s, &req, rep);
            if (rep->status == 0)
                sb_error(rep, 500, "handler set no reply");
            json_decref(q);
            return;
        }
    }
    if (path_known)
        sb_error(rep, 405, "method %s not allowed on %s", method, path);
    else
        sb_error(rep, 404, "no route %s", path);
    json_decref(q);
}

/* ------------------------------------------------------------------ HTTP */

struct sb_http {
    sb *s;
    struct MHD_Daemon *daemon;
    char *token;
    unsigned short port;
};

typedef struct conn_state {
    char *buf;
    size_t len;
    bool too_big;
} conn_state;

static sb_mhd_result send_reply(struct MHD_Connection *conn, sb_reply *rep)
{
    struct MHD_Response *r;
    const char *type = rep->type;
    if (rep->json != NULL) {
        char *t = json_dumps(rep->json, JSON_COMPACT);
        if (t == NULL)
            return MHD_NO;
        r = MHD_create_response_from_buffer(strlen(t), t, MHD_RESPMEM_MUST_FREE);
        type = "application/json";
    } else if (rep->text != NULL) {
        r = MHD_create_response_from_buffer(rep->len, rep->text, MHD_RESPMEM_MUST_FREE);
        rep->text = NULL;
    } else {
        r = MHD_create_response_from_buffer(rep->len, (void *)rep->data, MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rep->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"hcpg-sandbox\"");
    sb_mhd_result ret = MHD_queue_response(conn, (unsigned)rep->status, r);
    MHD_destroy_response(r);
    return ret;
}

static sb_mhd_result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    if (key != NULL && value != NULL)
        json_object_set_new(cls, key, json_string(value));
    return MHD_YES;
}

static bool authorized(const sb_http *h, struct MHD_Connection *conn)
{
    if (h->token == NULL)
        return true;
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (v == NULL || strncmp(v, "Bearer ", 7) != 0)
        return false;
    /* length-independent compare of the token */
    const char *g = v + 7;
    size_t n = strlen(h->token), m = strlen(g);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(h->token[i] ^ (i < m ? g[i] : 0));
    return diff == 0;
}

static sb_mhd_result handle(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
    (void)version;
    sb_http *h = cls;
    conn_state *cs = *con_cls;
    if (cs == NULL) {
        if ((cs = calloc(1, sizeof *cs)) == NULL)
            return MHD_NO;
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!cs->too_big && cs->len + *upload_data_size <= SB_BODY_MAX) {
            char *nb = realloc(cs->buf, cs->len + *upload_data_size + 1);
            if (nb == NULL) {
                cs->too_big = true;
            } else {
                cs->buf = nb;
                memcpy(cs->buf + cs->len, upload_data, *upload_data_size);
                cs->len += *upload_data_size;
                cs->buf[cs->len] = '\0';
            }
        } else {
            cs->too_big = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    sb_reply rep = {0};
    /* the console's static files hold no data: served without the token, which the
     * console then asks for (a browser cannot send a bearer token for a page load) */
    bool open_asset = strncmp(url, "/demo/ui", 8) == 0 && strcmp(method, "GET") == 0;
    if (!open_asset && !authorized(h, conn)) {
        sb_error(&rep, 401, "unauthorized: send Authorization: Bearer <token>");
    } else if (cs->too_big) {
        sb_error(&rep, 413, "request body over %u bytes", SB_BODY_MAX);
    } else {
        json_t *body = NULL;
        bool bad = false;
        if (cs->len > 0) {
            json_error_t je;
            body = json_loadb(cs->buf, cs->len, JSON_REJECT_DUPLICATES, &je);
            if (body == NULL) {
                sb_error(&rep, 400, "invalid JSON body: %s (line %d, column %d)", je.text,
                         je.line, je.column);
                bad = true;
            }
        }
        if (!bad) {
            json_t *q = json_object();
            MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, q);
            sb_dispatch(h->s, method, url, body, q, &rep);
            json_decref(q);
        }
        json_decref(body);
    }
    sb_mhd_result ret = send_reply(conn, &rep);
    sb_reply_free(&rep);
    return ret;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    conn_state *cs = *con_cls;
    if (cs != NULL) {
        free(cs->buf);
        free(cs);
        *con_cls = NULL;
    }
}

sb_http *sb_http_start(sb *s, const char *bind, unsigned short port, const char *token,
                       char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (bind == NULL)
        bind = "127.0.0.1";
    if (inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errcap, "--bind '%s' is not a numeric IP address", bind);
        return NULL;
    }
    sb_http *h = calloc(1, sizeof *h);
    if (h == NULL || (token != NULL && token[0] != '\0' && (h->token = strdup(token)) == NULL)) {
        free(h);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    h->s = s;
    h->daemon = MHD_start_daemon(flags, port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED,
                                 request_done, NULL, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errcap, "cannot serve HTTP on %s port %u (address in use?)", bind,
                 (unsigned)port);
        free(h->token);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? info->port : port;
    return h;
}

unsigned short sb_http_port(const sb_http *h)
{
    return h->port;
}

void sb_http_stop(sb_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    free(h->token);
    free(h);
}
