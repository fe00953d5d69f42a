/*
 * registry.c - the registry of named caches and PostgreSQL buses, and its
 * snapshots: JSON and the Prometheus text exposition format 0.0.4.
 *
 * The writer is a growable buffer with a sticky failure flag (every append
 * after an allocation failure is a no-op and the snapshot reports
 * HC_ERR_NOMEM).  No JSON library: the output is a fixed, flat shape that a
 * 100-line emitter covers, and a library would be a new dependency for every
 * user of libhcpg.
 *
 * Locking: one mutex guards the lists.  Snapshots hold it while they read
 * the caches and buses and format the text, so hc_registry_remove returning
 * means no snapshot still uses the removed object.  Nothing called under the
 * lock calls back into the registry.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hydracache/registry.h"
#include "stats.h"

/* ------------------------------------------------------------ text buffer */

typedef struct tbuf {
    char *p;
    size_t len, cap;
    bool failed;
} tbuf;

static bool tb_reserve(tbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra < b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (extra >= cap - b->len) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = hc__realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void tb_put(tbuf *b, const char *s, size_t n)
{
    if (!tb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb_puts(tbuf *b, const char *s)
{
    tb_put(b, s, strlen(s));
}

static void tb_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(tbuf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        tb_put(b, small, (size_t)n);
        return;
    }
    if (!tb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void tb_u64(tbuf *b, uint64_t v)
{
    tb_printf(b, "%" PRIu64, v);
}

/* A finite double, locale-independent (printf may use ',' as the decimal point). */
static void tb_double(tbuf *b, double v)
{
    char s[64];
    snprintf(s, sizeof s, "%.9g", v);
    for (char *q = s; *q; q++)
        if (*q == ',')
            *q = '.';
    tb_puts(b, s);
}

static void tb_free(tbuf *b)
{
    free(b->p);
    b->p = NULL;
}

static hc_status tb_finish(tbuf *b, char **out, size_t *len, hc_error *err)
{
    if (!b->failed && b->p == NULL)
        tb_put(b, "", 0);
    if (b->failed) {
        tb_free(b);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory building a snapshot");
    }
    *out = b->p;
    if (len != NULL)
        *len = b->len;
    b->p = NULL;
    return HC_OK;
}

/* ------------------------------------------------------------ escaping */

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 when it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

typedef enum esc_mode {
    ESC_JSON, /* JSON string body (RFC 8259) */
    ESC_PROM  /* Prometheus label value: only \, " and newline are escaped */
} esc_mode;

/* Appends s escaped for mode; invalid UTF-8 bytes become U+FFFD each. */
static void tb_escaped(tbuf *b, const char *s, esc_mode mode)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, run = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *rep = NULL;
        char hex[8];
        size_t k = 1;
        if (c == '\\')
            rep = "\\\\";
        else if (c == '"')
            rep = "\\\"";
        else if (c == '\n')
            rep = "\\n";
        else if (mode == ESC_JSON && (c < 0x20 || c == 0x7F)) {
            switch (c) {
            case '\b': rep = "\\b"; break;
            case '\f': rep = "\\f"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            default:
                snprintf(hex, sizeof hex, "\\u%04x", c);
                rep = hex;
            }
        } else if (c >= 0x80) {
            k = utf8_seq_len(p + i, n - i);
            if (k == 0) {
                rep = mode == ESC_JSON ? "\\ufffd" : "\xEF\xBF\xBD";
                k = 1;
            }
        }
        if (rep == NULL) {
            run += k;
        } else {
            tb_put(b, s + i - run, run);
            run = 0;
            tb_puts(b, rep);
        }
        i += k;
    }
    tb_put(b, s + i - run, run);
}

static void json_str(tbuf *b, const char *s)
{
    tb_puts(b, "\"");
    tb_escaped(b, s, ESC_JSON);
    tb_puts(b, "\"");
}

/* "key": (the key is a literal, never needs escaping); a comma before all but the first. */
static void json_key(tbuf *b, bool *first, const char *key)
{
    tb_printf(b, "%s\"%s\":", *first ? "" : ",", key);
    *first = false;
}

static void json_num_or_null(tbuf *b, double v)
{
    if (v < 0 || !isfinite(v))
        tb_puts(b, "null");
    else
        tb_double(b, v);
}

/* ------------------------------------------------------------ counter tables */

/*
 * One row per counter: its key in JSON, and its Prometheus family (without
 * the hydracache_ prefix) plus an optional extra label.  Rows of one family
 * are adjacent; the first carries the family's help text (so # HELP and
 * # TYPE are written once per family), the others NULL.
 */
typedef struct counter_def {
    const char *json;
    const char *family;
    const char *label;
    const char *help;
    size_t off;
} counter_def;

#define CCTR(src, field, CTR, family, label, help) \
    {#field, family, label, help, offsetof(hc_stats, field)},
static const counter_def cache_counters[] = {HC_CACHE_COUNTERS(CCTR)};
#undef CCTR

#define BCTR(field, help) {#field, "pg_bus_" #field "_total", NULL, help, \
                           offsetof(hc_pg_bus_stats, field)}
static const counter_def bus_counters[] = {
    BCTR(published, "Invalidations sent (committed pg_notify)."),
    BCTR(publish_failures, "Invalidations not sent (replaced by a flush broadcast)."),
    BCTR(flush_broadcasts, "Flushes sent to cover failed publishes."),
    BCTR(received, "Notifications received on the channel."),
    BCTR(malformed, "Notifications ignored as malformed or foreign."),
    BCTR(own_ignored, "Notifications ignored as echoes of this node."),
    BCTR(disconnects, "Connection losses."),
    BCTR(reconnects, "Reconnections."),
    BCTR(connect_failures, "Failed connection attempts."),
    BCTR(syncs, "Completed sync barriers."),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t ctr_get(const counter_def *d, const void *base)
{
    uint64_t v;
    memcpy(&v, (const char *)base + d->off, sizeof v);
    return v;
}

/* ------------------------------------------------------------ the registry */

typedef struct reg_entry {
    char *name;
    void *obj; /* hc_cache * or hc_pg_bus * */
} reg_entry;

typedef struct reg_list {
    reg_entry *v;
    size_t n, cap;
} reg_list;

struct hc_registry {
    pthread_mutex_t mu; /* guards caches, buses and queue_threshold */
    reg_list caches;
    reg_list buses;
    double queue_threshold; /* notify_queue_usage above it: DEGRADED */
};

HC_EXTERN hc_registry *hc_registry_new(hc_error *err)
{
    hc_registry *reg = hc__calloc(1, sizeof *reg);
    if (reg == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory creating a registry");
        return NULL;
    }
    if (pthread_mutex_init(&reg->mu, NULL) != 0) {
        free(reg);
        hc_error_set(err, HC_ERR_SYSTEM, "cannot create the registry mutex");
        return NULL;
    }
    reg->queue_threshold = HC_REGISTRY_DEFAULT_QUEUE_THRESHOLD;
    return reg;
}

static void list_clear(reg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

HC_EXTERN void hc_registry_free(hc_registry *reg)
{
    if (reg == NULL)
        return;
    list_clear(&reg->caches);
    list_clear(&reg->buses);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static const reg_entry *list_find(const reg_list *l, const char *name, const void *obj)
{
    for (size_t i = 0; i < l->n; i++)
        if ((name != NULL && strcmp(l->v[i].name, name) == 0) || (obj != NULL && l->v[i].obj == obj))
            return &l->v[i];
    return NULL;
}

/* Caller holds reg->mu. */
static hc_status list_add(reg_list *l, const char *what, const char *name, void *obj,
                          hc_error *err)
{
    if (list_find(l, name, obj) != NULL)
        return hc_error_set(err, HC_ERR_BUSY, "a %s named '%s' (or this %s) is already registered",
                            what, name, what);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        reg_entry *v = hc__realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory registering %s '%s'", what, name);
        l->v = v;
        l->cap = cap;
    }
    char *copy = hc__strdup(name);
    if (copy == NULL)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory registering %s '%s'", what, name);
    l->v[l->n].name = copy;
    l->v[l->n].obj = obj;
    l->n++;
    return HC_OK;
}

/* Caller holds reg->mu.  Keeps registration order. */
static hc_status list_remove(reg_list *l, const char *what, const void *obj, hc_error *err)
{
    const reg_entry *e = list_find(l, NULL, obj);
    if (e == NULL)
        return hc_error_set(err, HC_MISS, "%s is not registered", what);
    size_t i = (size_t)(e - l->v);
    free(l->v[i].name);
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof l->v[0]);
    l->n--;
    return HC_OK;
}

HC_EXTERN hc_status hc_registry_add(hc_registry *reg, hc_cache *c, hc_error *err)
{
    if (reg == NULL || c == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_add: NULL %s",
                            reg == NULL ? "registry" : "cache");
    pthread_mutex_lock(&reg->mu);
    hc_status st = list_add(&reg->caches, "cache", hc_cache_name(c), c, err);
    pthread_mutex_unlock(&reg->mu);
    return st;
}

HC_EXTERN hc_status hc_registry_remove(hc_registry *reg, const hc_cache *c, hc_error *err)
{
    if (reg == NULL || c == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_remove: NULL argument");
    pthread_mutex_lock(&reg->mu);
    hc_status st = list_remove(&reg->caches, "cache", c, err);
    pthread_mutex_unlock(&reg->mu);
    return st;
}

HC_EXTERN size_t hc_registry_cache_count(hc_registry *reg)
{
    if (reg == NULL)
        return 0;
    pthread_mutex_lock(&reg->mu);
    size_t n = reg->caches.n;
    pthread_mutex_unlock(&reg->mu);
    return n;
}

HC_EXTERN hc_status hc_registry_add_pg_bus(hc_registry *reg, const char *name, hc_pg_bus *bus,
                                           hc_error *err)
{
    if (reg == NULL || name == NULL || bus == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_add_pg_bus: NULL argument");
    size_t n = strlen(name);
    if (n == 0)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_add_pg_bus: empty name");
    if (n > HC_MAX_KEY_LEN)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "bus name longer than %d bytes",
                            HC_MAX_KEY_LEN);
    pthread_mutex_lock(&reg->mu);
    hc_status st = list_add(&reg->buses, "bus", name, bus, err);
    pthread_mutex_unlock(&reg->mu);
    return st;
}

HC_EXTERN hc_status hc_registry_remove_pg_bus(hc_registry *reg, const hc_pg_bus *bus,
                                              hc_error *err)
{
    if (reg == NULL || bus == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_remove_pg_bus: NULL argument");
    pthread_mutex_lock(&reg->mu);
    hc_status st = list_remove(&reg->buses, "bus", bus, err);
    pthread_mutex_unlock(&reg->mu);
    return st;
}

HC_EXTERN hc_status hc_registry_set_queue_threshold(hc_registry *reg, double threshold,
                                                   hc_error *err)
{
    if (reg == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_set_queue_threshold: NULL registry");
    if (!(threshold >= 0.0 && threshold <= 1.0))
        return hc_error_set(err, HC_ERR_INVALID,
                            "queue usage threshold must be within 0..1 (a fraction of the queue)");
    pthread_mutex_lock(&reg->mu);
    reg->queue_threshold = threshold;
    pthread_mutex_unlock(&reg->mu);
    return HC_OK;
}

/* ------------------------------------------------------------ snapshots */

/* Everything a snapshot reports, read once under reg->mu (names borrowed from the registry). */
typedef struct cache_snap {
    const char *name;
    hc_diagnostics d;
} cache_snap;

typedef struct bus_snap {
    const char *name;
    const char *node_id;
    hc_pg_bus_stats s;
} bus_snap;

typedef struct snapshot {
    cache_snap *c;
    size_t nc;
    bus_snap *b;
    size_t nb;
    double queue_threshold;
} snapshot;

static void snap_free(snapshot *s)
{
    free(s->c);
    free(s->b);
}

/* Caller holds reg->mu for as long as it uses *s. */
static hc_status snap_take(hc_registry *reg, snapshot *s, hc_error *err)
{
    memset(s, 0, sizeof *s);
    s->c = hc__calloc(reg->caches.n + 1, sizeof *s->c);
    s->b = hc__calloc(reg->buses.n + 1, sizeof *s->b);
    if (s->c == NULL || s->b == NULL) {
        snap_free(s);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory taking a snapshot");
    }
    for (size_t i = 0; i < reg->caches.n; i++) {
        s->c[i].name = reg->caches.v[i].name;
        hc_cache_diagnostics(reg->caches.v[i].obj, &s->c[i].d);
    }
    s->nc = reg->caches.n;
    for (size_t i = 0; i < reg->buses.n; i++) {
        s->b[i].name = reg->buses.v[i].name;
        s->b[i].node_id = hc_pg_bus_node_id(reg->buses.v[i].obj);
        hc_pg_bus_get_stats(reg->buses.v[i].obj, &s->b[i].s);
    }
    s->nb = reg->buses.n;
    s->queue_threshold = reg->queue_threshold;
    return HC_OK;
}

/* usage is -1 (or not finite) while unknown: never degraded then. */
static bool queue_over(const snapshot *s, double usage)
{
    return isfinite(usage) && usage > s->queue_threshold;
}

static hc_health cache_health(const snapshot *s, const cache_snap *c)
{
    if (c->d.bypass)
        return HC_HEALTH_DOWN;
    return queue_over(s, c->d.notify_queue_usage) ? HC_HEALTH_DEGRADED : HC_HEALTH_UP;
}

static hc_health bus_health(const snapshot *s, const bus_snap *b)
{
    if (b->s.state != HC_BUS_LISTENING)
        return HC_HEALTH_DOWN;
    return queue_over(s, b->s.notify_queue_usage) ? HC_HEALTH_DEGRADED : HC_HEALTH_UP;
}

static bool bus_up(const bus_snap *b)
{
    return b->s.state == HC_BUS_LISTENING;
}

/* The worst health of any object (HC_HEALTH_* are ordered UP < DEGRADED < DOWN). */
static hc_health snap_health(const snapshot *s)
{
    hc_health h = HC_HEALTH_UP;
    for (size_t i = 0; i < s->nc; i++) {
        hc_health x = cache_health(s, &s->c[i]);
        h = x > h ? x : h;
    }
    for (size_t i = 0; i < s->nb; i++) {
        hc_health x = bus_health(s, &s->b[i]);
        h = x > h ? x : h;
    }
    return h;
}

static void json_stats(tbuf *b, const hc_stats *st)
{
    bool first = true;
    tb_puts(b, "{");
    for (size_t i = 0; i < NELEM(cache_counters); i++) {
        json_key(b, &first, cache_counters[i].json);
        tb_u64(b, ctr_get(&cache_counters[i], st));
    }
    json_key(b, &first, "requests");
    tb_u64(b, hc_stats_total_requests(st));
    json_key(b, &first, "hit_ratio");
    tb_double(b, hc_stats_hit_ratio(st));
    tb_puts(b, "}");
}

static void json_diagnostics(tbuf *b, const hc_diagnostics *d)
{
    bool first = true;
    tb_puts(b, "{");
    json_key(b, &first, "entries");
    tb_u64(b, d->entries);
    json_key(b, &first, "bytes_used");
    tb_u64(b, d->bytes_used);
    json_key(b, &first, "bytes_limit");
    tb_u64(b, d->bytes_limit);
    json_key(b, &first, "entries_limit");
    tb_u64(b, d->entries_limit);
    json_key(b, &first, "bus_state");
    json_str(b, hc_bus_state_str(d->bus_state));
    json_key(b, &first, "bypass");
    tb_puts(b, d->bypass ? "true" : "false");
    json_key(b, &first, "notify_queue_usage");
    json_num_or_null(b, d->notify_queue_usage);
    tb_puts(b, "}");
}

static void json_bus(tbuf *b, const bus_snap *bs)
{
    bool first = true;
    tb_puts(b, "{");
    json_key(b, &first, "name");
    json_str(b, bs->name);
    json_key(b, &first, "node_id");
    json_str(b, bs->node_id != NULL ? bs->node_id : "");
    json_key(b, &first, "state");
    json_str(b, hc_bus_state_str(bs->s.state));
    for (size_t i = 0; i < NELEM(bus_counters); i++) {
        json_key(b, &first, bus_counters[i].json);
        tb_u64(b, ctr_get(&bus_counters[i], &bs->s));
    }
    json_key(b, &first, "queue_len");
    tb_u64(b, bs->s.queue_len);
    json_key(b, &first, "notify_queue_usage");
    json_num_or_null(b, bs->s.notify_queue_usage);
    json_key(b, &first, "backend_pid");
    tb_printf(b, "%d", bs->s.backend_pid);
    tb_puts(b, "}");
}

/* Runs fmt over a fresh snapshot with the registry locked. */
typedef void (*snap_fmt_fn)(tbuf *b, const snapshot *s, const void *arg);

static hc_status with_snapshot(hc_registry *reg, snap_fmt_fn fmt, const void *arg, char **out,
                               size_t *len, hc_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (reg == NULL || out == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "snapshot: NULL registry or output");
    tbuf b = {0};
    snapshot s;
    pthread_mutex_lock(&reg->mu);
    hc_status st = snap_take(reg, &s, err);
    if (st == HC_OK) {
        fmt(&b, &s, arg);
        snap_free(&s);
    }
    pthread_mutex_unlock(&reg->mu);
    if (st != HC_OK)
        return st;
    return tb_finish(&b, out, len, err);
}

static void fmt_all(tbuf *b, const snapshot *s, const void *arg)
{
    (void)arg;
    tb_puts(b, "{\"version\":\"" HC_VERSION_STRING "\",\"status\":");
    json_str(b, hc_health_str(snap_health(s)));
    tb_puts(b, ",\"caches\":[");
    for (size_t i = 0; i < s->nc; i++) {
        tb_puts(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, s->c[i].name);
        tb_puts(b, ",\"stats\":");
        json_stats(b, &s->c[i].d.stats);
        tb_puts(b, ",\"diagnostics\":");
        json_diagnostics(b, &s->c[i].d);
        tb_puts(b, "}");
    }
    tb_puts(b, "],\"buses\":[");
    for (size_t i = 0; i < s->nb; i++) {
        if (i)
            tb_puts(b, ",");
        json_bus(b, &s->b[i]);
    }
    tb_puts(b, "]}");
}

HC_EXTERN hc_status hc_registry_json(hc_registry *reg, char **out, size_t *len, hc_error *err)
{
    return with_snapshot(reg, fmt_all, NULL, out, len, err);
}

static void fmt_caches(tbuf *b, const snapshot *s, const void *arg)
{
    (void)arg;
    tb_puts(b, "{\"caches\":[");
    for (size_t i = 0; i < s->nc; i++) {
        const hc_diagnostics *d = &s->c[i].d;
        tb_puts(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, s->c[i].name);
        tb_puts(b, ",\"entries\":");
        tb_u64(b, d->entries);
        tb_puts(b, ",\"bytes_used\":");
        tb_u64(b, d->bytes_used);
        tb_puts(b, ",\"hit_ratio\":");
        tb_double(b, hc_stats_hit_ratio(&d->stats));
        tb_puts(b, ",\"bus_state\":");
        json_str(b, hc_bus_state_str(d->bus_state));
        tb_puts(b, d->bypass ? ",\"bypass\":true}" : ",\"bypass\":false}");
    }
    tb_puts(b, "]}");
}

HC_EXTERN hc_status hc_registry_caches_json(hc_registry *reg, char **out, size_t *len,
                                            hc_error *err)
{
    return with_snapshot(reg, fmt_caches, NULL, out, len, err);
}

typedef struct one_cache_arg {
    const char *name;
    hc_registry_section section;
    bool found;
} one_cache_arg;

static void fmt_one_cache(tbuf *b, const snapshot *s, const void *arg)
{
    one_cache_arg *a = (one_cache_arg *)arg;
    for (size_t i = 0; i < s->nc; i++) {
        if (strcmp(s->c[i].name, a->name) != 0)
            continue;
        a->found = true;
        tb_puts(b, "{\"name\":");
        json_str(b, s->c[i].name);
        if (a->section == HC_REGISTRY_STATS) {
            tb_puts(b, ",\"stats\":");
            json_stats(b, &s->c[i].d.stats);
        } else {
            tb_puts(b, ",\"diagnostics\":");
            json_diagnostics(b, &s->c[i].d);
        }
        tb_puts(b, "}");
        return;
    }
}

HC_EXTERN hc_status hc_registry_cache_json(hc_registry *reg, const char *name,
                                           hc_registry_section section, char **out, size_t *len,
                                           hc_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (name == NULL || (section != HC_REGISTRY_STATS && section != HC_REGISTRY_DIAGNOSTICS))
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_cache_json: %s",
                            name == NULL ? "NULL name" : "unknown section");
    one_cache_arg a = {name, section, false};
    hc_status st = with_snapshot(reg, fmt_one_cache, &a, out, len, err);
    if (st == HC_OK && !a.found) {
        free(*out);
        *out = NULL;
        return hc_error_set(err, HC_MISS, "no cache named '%s'", name);
    }
    return st;
}

static void fmt_health(tbuf *b, const snapshot *s, const void *arg)
{
    hc_health *h = (hc_health *)arg;
    *h = snap_health(s);
    tb_puts(b, "{\"status\":");
    json_str(b, hc_health_str(*h));
    tb_puts(b, ",\"caches\":{");
    for (size_t i = 0; i < s->nc; i++) {
        if (i)
            tb_puts(b, ",");
        json_str(b, s->c[i].name);
        tb_puts(b, ":{\"status\":");
        json_str(b, hc_health_str(cache_health(s, &s->c[i])));
        tb_puts(b, ",\"bus_state\":");
        json_str(b, hc_bus_state_str(s->c[i].d.bus_state));
        tb_puts(b, s->c[i].d.bypass ? ",\"bypass\":true" : ",\"bypass\":false");
        tb_puts(b, ",\"notify_queue_usage\":");
        json_num_or_null(b, s->c[i].d.notify_queue_usage);
        tb_puts(b, "}");
    }
    tb_puts(b, "},\"buses\":{");
    for (size_t i = 0; i < s->nb; i++) {
        if (i)
            tb_puts(b, ",");
        json_str(b, s->b[i].name);
        tb_puts(b, ":{\"status\":");
        json_str(b, hc_health_str(bus_health(s, &s->b[i])));
        tb_puts(b, ",\"state\":");
        json_str(b, hc_bus_state_str(s->b[i].s.state));
        tb_puts(b, ",\"notify_queue_usage\":");
        json_num_or_null(b, s->b[i].s.notify_queue_usage);
        tb_puts(b, "}");
    }
    tb_puts(b, "},\"queue_usage_threshold\":");
    tb_double(b, s->queue_threshold);
    tb_puts(b, "}");
}

HC_EXTERN hc_status hc_registry_health_status(hc_registry *reg, hc_health *health, char **out,
                                              size_t *len, hc_error *err)
{
    if (health == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_health: NULL result");
    char *tmp = NULL;
    hc_status st = with_snapshot(reg, fmt_health, health, &tmp, len, err);
    if (st != HC_OK) {
        if (out != NULL)
            *out = NULL;
        return st;
    }
    if (out != NULL)
        *out = tmp;
    else
        free(tmp);
    return HC_OK;
}

HC_EXTERN hc_status hc_registry_health(hc_registry *reg, bool *up, char **out, size_t *len,
                                       hc_error *err)
{
    if (up == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_health: NULL up");
    hc_health h = HC_HEALTH_DOWN;
    hc_status st = hc_registry_health_status(reg, &h, out, len, err);
    *up = st == HC_OK && h != HC_HEALTH_DOWN;
    return st;
}

HC_EXTERN const char *hc_health_str(hc_health h)
{
    switch (h) {
    case HC_HEALTH_UP: return "UP";
    case HC_HEALTH_DEGRADED: return "DEGRADED";
    case HC_HEALTH_DOWN: return "DOWN";
    }
    return "unknown";
}

/* ------------------------------------------------------------ Prometheus */

static void prom_family(tbuf *b, const char *family, const char *type, const char *help)
{
    tb_printf(b, "# HELP hydracache_%s %s\n# TYPE hydracache_%s %s\n", family, help, family, type);
}

/* hydracache_<family>{<lname>="<lvalue>"[,<extra>]} (value follows) */
static void prom_series(tbuf *b, const char *family, const char *lname, const char *lvalue,
                        const char *extra)
{
    tb_printf(b, "hydracache_%s{%s=\"", family, lname);
    tb_escaped(b, lvalue, ESC_PROM);
    tb_puts(b, "\"");
    if (extra != NULL) {
        tb_puts(b, ",");
        tb_puts(b, extra);
    }
    tb_puts(b, "} ");
}

static void prom_counters(tbuf *b, const counter_def *defs, size_t ndefs, const char *lname,
                          const void *objs, size_t nobj, size_t obj_size, size_t name_off,
                          size_t data_off)
{
    for (size_t i = 0; i < ndefs; i++) {
        if (defs[i].help != NULL)
            prom_family(b, defs[i].family, "counter", defs[i].help);
        for (size_t j = 0; j < nobj; j++) {
            const char *obj = (const char *)objs + j * obj_size;
            const char *name;
            memcpy(&name, obj + name_off, sizeof name);
            prom_series(b, defs[i].family, lname, name, defs[i].label);
            tb_u64(b, ctr_get(&defs[i], obj + data_off));
            tb_puts(b, "\n");
        }
    }
}

typedef struct gauge_def {
    const char *family;
    const char *help;
    double (*get)(const hc_diagnostics *d); /* < 0: no sample for this cache */
} gauge_def;

static double g_entries(const hc_diagnostics *d) { return (double)d->entries; }
static double g_bytes(const hc_diagnostics *d) { return (double)d->bytes_used; }
static double g_bytes_limit(const hc_diagnostics *d) { return (double)d->bytes_limit; }
static double g_entries_limit(const hc_diagnostics *d) { return (double)d->entries_limit; }
static double g_bypass(const hc_diagnostics *d) { return d->bypass ? 1 : 0; }
static double g_hit_ratio(const hc_diagnostics *d) { return hc_stats_hit_ratio(&d->stats); }
static double g_queue(const hc_diagnostics *d) { return d->notify_queue_usage; }

static const gauge_def cache_gauges[] = {
    {"entries", "Live entries.", g_entries},
    {"bytes", "Bytes used (keys, values, tags, overhead).", g_bytes},
    {"bytes_limit", "Byte capacity.", g_bytes_limit},
    {"entries_limit", "Entry capacity (0 = unlimited).", g_entries_limit},
    {"bypass", "1 while the cache is in bypass (bus not listening).", g_bypass},
    {"hit_ratio", "hits / (hits + misses); 0 without requests.", g_hit_ratio},
    {"notify_queue_usage",
     "PostgreSQL pg_notification_queue_usage() seen by the bus (absent when unknown).", g_queue},
};

static const hc_bus_state all_states[] = {HC_BUS_NONE, HC_BUS_CONNECTING, HC_BUS_LISTENING,
                                          HC_BUS_DISCONNECTED, HC_BUS_LOCAL};

/* A state set: one sample per state, 1 for the current one. */
static void prom_state_set(tbuf *b, const char *family, const char *lname, const char *name,
                           hc_bus_state cur)
{
    for (size_t k = 0; k < NELEM(all_states); k++) {
        char extra[48];
        snprintf(extra, sizeof extra, "state=\"%s\"", hc_bus_state_str(all_states[k]));
        prom_series(b, family, lname, name, extra);
        tb_puts(b, all_states[k] == cur ? "1\n" : "0\n");
    }
}

static void fmt_prometheus(tbuf *b, const snapshot *s, const void *arg)
{
    (void)arg;
    prom_counters(b, cache_counters, NELEM(cache_counters), "cache", s->c, s->nc, sizeof s->c[0],
                  offsetof(cache_snap, name), offsetof(cache_snap, d.stats));
    for (size_t i = 0; i < NELEM(cache_gauges); i++) {
        prom_family(b, cache_gauges[i].family, "gauge", cache_gauges[i].help);
        for (size_t j = 0; j < s->nc; j++) {
            double v = cache_gauges[i].get(&s->c[j].d);
            if (v < 0 || !isfinite(v))
                continue;
            prom_series(b, cache_gauges[i].family, "cache", s->c[j].name, NULL);
            tb_double(b, v);
            tb_puts(b, "\n");
        }
    }
    prom_family(b, "bus_state", "gauge", "Bus state of the cache (1 for the current state).");
    for (size_t j = 0; j < s->nc; j++)
        prom_state_set(b, "bus_state", "cache", s->c[j].name, s->c[j].d.bus_state);
    if (s->nb == 0)
        return;
    prom_counters(b, bus_counters, NELEM(bus_counters), "bus", s->b, s->nb, sizeof s->b[0],
                  offsetof(bus_snap, name), offsetof(bus_snap, s));
    prom_family(b, "pg_bus_up", "gauge", "1 while the PostgreSQL bus is listening.");
    for (size_t j = 0; j < s->nb; j++) {
        prom_series(b, "pg_bus_up", "bus", s->b[j].name, NULL);
        tb_puts(b, bus_up(&s->b[j]) ? "1\n" : "0\n");
    }
    prom_family(b, "pg_bus_state", "gauge", "PostgreSQL bus state (1 for the current state).");
    for (size_t j = 0; j < s->nb; j++)
        prom_state_set(b, "pg_bus_state", "bus", s->b[j].name, s->b[j].s.state);
    prom_family(b, "pg_bus_queue_length", "gauge", "Invalidations waiting to be sent.");
    for (size_t j = 0; j < s->nb; j++) {
        prom_series(b, "pg_bus_queue_length", "bus", s->b[j].name, NULL);
        tb_u64(b, s->b[j].s.queue_len);
        tb_puts(b, "\n");
    }
    prom_family(b, "pg_bus_notify_queue_usage", "gauge",
                "Last pg_notification_queue_usage() (absent when unknown).");
    for (size_t j = 0; j < s->nb; j++) {
        double v = s->b[j].s.notify_queue_usage;
        if (v < 0 || !isfinite(v))
            continue;
        prom_series(b, "pg_bus_notify_queue_usage", "bus", s->b[j].name, NULL);
        tb_double(b, v);
        tb_puts(b, "\n");
    }
}

HC_EXTERN hc_status hc_registry_prometheus(hc_registry *reg, char **out, size_t *len,
                                           hc_error *err)
{
    return with_snapshot(reg, fmt_prometheus, NULL, out, len, err);
}
