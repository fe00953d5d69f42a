/*
 * exposition.c - the registry's snapshot (registry_int.h) written out: JSON
 * documents and the Prometheus text exposition format 0.0.4.  Pure
 * formatting: everything, health included, was decided when the snapshot
 * was taken.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "registry_int.h"
#include "stats.h"


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

/* ------------------------------------------------------------ JSON */

static void json_stats(hc__tbuf *b, const hc_stats *st)
{
    bool first = true;
    hc__tb_puts(b, "{");
    for (size_t i = 0; i < NELEM(cache_counters); i++) {
        hc__json_key(b, &first, cache_counters[i].json);
        hc__tb_u64(b, ctr_get(&cache_counters[i], st));
    }
    hc__json_key(b, &first, "requests");
    hc__tb_u64(b, hc_stats_total_requests(st));
    hc__json_key(b, &first, "hit_ratio");
    hc__tb_double(b, hc_stats_hit_ratio(st));
    hc__tb_puts(b, "}");
}

/* The cache's diagnostics and the queue usage of its bus (c->queue_usage). */
static void json_diagnostics(hc__tbuf *b, const hc__cache_snap *c)
{
    const hc_diagnostics *d = &c->d;
    bool first = true;
    hc__tb_puts(b, "{");
    hc__json_key(b, &first, "entries");
    hc__tb_u64(b, d->entries);
    hc__json_key(b, &first, "bytes_used");
    hc__tb_u64(b, d->bytes_used);
    hc__json_key(b, &first, "bytes_limit");
    hc__tb_u64(b, d->bytes_limit);
    hc__json_key(b, &first, "entries_limit");
    hc__tb_u64(b, d->entries_limit);
    hc__json_key(b, &first, "bus_state");
    hc__json_str(b, hc_bus_state_str(d->bus_state));
    hc__json_key(b, &first, "bypass");
    hc__tb_puts(b, d->bypass ? "true" : "false");
    hc__json_key(b, &first, "notify_queue_usage");
    hc__json_num_or_null(b, c->queue_usage);
    hc__tb_puts(b, "}");
}

/* A PostgreSQL bus with its counters; any other bus with what every bus knows. */
static void json_bus(hc__tbuf *b, const hc__bus_snap *bs)
{
    bool first = true;
    hc__tb_puts(b, "{");
    hc__json_key(b, &first, "name");
    hc__json_str(b, bs->name);
    hc__json_key(b, &first, "node_id");
    hc__json_str(b, bs->node_id != NULL ? bs->node_id : "");
    hc__json_key(b, &first, "state");
    hc__json_str(b, hc_bus_state_str(bs->state));
    if (bs->is_pg) {
        for (size_t i = 0; i < NELEM(bus_counters); i++) {
            hc__json_key(b, &first, bus_counters[i].json);
            hc__tb_u64(b, ctr_get(&bus_counters[i], &bs->pg));
        }
        hc__json_key(b, &first, "queue_len");
        hc__tb_u64(b, bs->pg.queue_len);
    }
    hc__json_key(b, &first, "notify_queue_usage");
    hc__json_num_or_null(b, bs->queue_usage);
    if (bs->is_pg) {
        hc__json_key(b, &first, "backend_pid");
        hc__tb_printf(b, "%d", bs->pg.backend_pid);
    }
    hc__tb_puts(b, "}");
}

void hc__expo_json(hc__tbuf *b, const hc__snapshot *s)
{
    hc__tb_puts(b, "{\"version\":\"" HC_VERSION_STRING "\",\"status\":");
    hc__json_str(b, hc_health_str(s->health));
    hc__tb_puts(b, ",\"caches\":[");
    for (size_t i = 0; i < s->nc; i++) {
        hc__tb_puts(b, i ? ",{\"name\":" : "{\"name\":");
        hc__json_str(b, s->c[i].name);
        hc__tb_puts(b, ",\"stats\":");
        json_stats(b, &s->c[i].d.stats);
        hc__tb_puts(b, ",\"diagnostics\":");
        json_diagnostics(b, &s->c[i]);
        hc__tb_puts(b, "}");
    }
    hc__tb_puts(b, "],\"buses\":[");
    for (size_t i = 0; i < s->nb; i++) {
        if (i)
            hc__tb_puts(b, ",");
        json_bus(b, &s->b[i]);
    }
    hc__tb_puts(b, "]}");
}

void hc__expo_caches_json(hc__tbuf *b, const hc__snapshot *s)
{
    hc__tb_puts(b, "{\"caches\":[");
    for (size_t i = 0; i < s->nc; i++) {
        const hc_diagnostics *d = &s->c[i].d;
        hc__tb_puts(b, i ? ",{\"name\":" : "{\"name\":");
        hc__json_str(b, s->c[i].name);
        hc__tb_puts(b, ",\"entries\":");
        hc__tb_u64(b, d->entries);
        hc__tb_puts(b, ",\"bytes_used\":");
        hc__tb_u64(b, d->bytes_used);
        hc__tb_puts(b, ",\"hit_ratio\":");
        hc__tb_double(b, hc_stats_hit_ratio(&d->stats));
        hc__tb_puts(b, ",\"bus_state\":");
        hc__json_str(b, hc_bus_state_str(d->bus_state));
        hc__tb_puts(b, d->bypass ? ",\"bypass\":true}" : ",\"bypass\":false}");
    }
    hc__tb_puts(b, "]}");
}

bool hc__expo_cache_json(hc__tbuf *b, const hc__snapshot *s, const char *name,
                         hc_registry_section section)
{
    for (size_t i = 0; i < s->nc; i++) {
        if (strcmp(s->c[i].name, name) != 0)
            continue;
        hc__tb_puts(b, "{\"name\":");
        hc__json_str(b, s->c[i].name);
        if (section == HC_REGISTRY_STATS) {
            hc__tb_puts(b, ",\"stats\":");
            json_stats(b, &s->c[i].d.stats);
        } else {
            hc__tb_puts(b, ",\"diagnostics\":");
            json_diagnostics(b, &s->c[i]);
        }
        hc__tb_puts(b, "}");
        return true;
    }
    return false;
}

void hc__expo_health_json(hc__tbuf *b, const hc__snapshot *s)
{
    hc__tb_puts(b, "{\"status\":");
    hc__json_str(b, hc_health_str(s->health));
    hc__tb_puts(b, ",\"caches\":{");
    for (size_t i = 0; i < s->nc; i++) {
        if (i)
            hc__tb_puts(b, ",");
        hc__json_str(b, s->c[i].name);
        hc__tb_puts(b, ":{\"status\":");
        hc__json_str(b, hc_health_str(s->c[i].health));
        hc__tb_puts(b, ",\"bus_state\":");
        hc__json_str(b, hc_bus_state_str(s->c[i].d.bus_state));
        hc__tb_puts(b, s->c[i].d.bypass ? ",\"bypass\":true" : ",\"bypass\":false");
        hc__tb_puts(b, ",\"notify_queue_usage\":");
        hc__json_num_or_null(b, s->c[i].queue_usage);
        hc__tb_puts(b, "}");
    }
    hc__tb_puts(b, "},\"buses\":{");
    for (size_t i = 0; i < s->nb; i++) {
        if (i)
            hc__tb_puts(b, ",");
        hc__json_str(b, s->b[i].name);
        hc__tb_puts(b, ":{\"status\":");
        hc__json_str(b, hc_health_str(s->b[i].health));
        hc__tb_puts(b, ",\"state\":");
        hc__json_str(b, hc_bus_state_str(s->b[i].state));
        hc__tb_puts(b, ",\"notify_queue_usage\":");
        hc__json_num_or_null(b, s->b[i].queue_usage);
        hc__tb_puts(b, "}");
    }
    hc__tb_puts(b, "},\"queue_usage_threshold\":");
    hc__tb_double(b, s->queue_threshold);
    hc__tb_puts(b, "}");
}

/* ------------------------------------------------------------ Prometheus */

static void prom_family(hc__tbuf *b, const char *family, const char *type, const char *help)
{
    hc__tb_printf(b, "# HELP hydracache_%s %s\n# TYPE hydracache_%s %s\n", family, help, family,
                  type);
}

/* hydracache_<family>{<lname>="<lvalue>"[,<extra>]} (value follows) */
static void prom_series(hc__tbuf *b, const char *family, const char *lname, const char *lvalue,
                        const char *extra)
{
    hc__tb_printf(b, "hydracache_%s{%s=\"", family, lname);
    hc__tb_escaped(b, lvalue, HC__ESC_PROM);
    hc__tb_puts(b, "\"");
    if (extra != NULL) {
        hc__tb_puts(b, ",");
        hc__tb_puts(b, extra);
    }
    hc__tb_puts(b, "} ");
}

/* The j-th object of a counter table: its label value and its counters (NULL: skip it). */
typedef const void *(*obj_fn)(const hc__snapshot *s, size_t j, const char **name);

static const void *cache_obj(const hc__snapshot *s, size_t j, const char **name)
{
    *name = s->c[j].name;
    return &s->c[j].d.stats;
}

static const void *pg_bus_obj(const hc__snapshot *s, size_t j, const char **name)
{
    *name = s->b[j].name;
    return s->b[j].is_pg ? &s->b[j].pg : NULL;
}

static void prom_counters(hc__tbuf *b, const hc__snapshot *s, const counter_def *defs, size_t ndefs,
                          const char *lname, size_t nobj, obj_fn obj)
{
    for (size_t i = 0; i < ndefs; i++) {
        if (defs[i].help != NULL)
            prom_family(b, defs[i].family, "counter", defs[i].help);
        for (size_t j = 0; j < nobj; j++) {
            const char *name;
            const void *base = obj(s, j, &name);
            if (base == NULL)
                continue;
            prom_series(b, defs[i].family, lname, name, defs[i].label);
            hc__tb_u64(b, ctr_get(&defs[i], base));
            hc__tb_puts(b, "\n");
        }
    }
}

typedef struct gauge_def {
    const char *family;
    const char *help;
    double (*get)(const hc__cache_snap *c); /* < 0: no sample for this cache */
} gauge_def;

static double g_entries(const hc__cache_snap *c) { return (double)c->d.entries; }
static double g_bytes(const hc__cache_snap *c) { return (double)c->d.bytes_used; }
static double g_bytes_limit(const hc__cache_snap *c) { return (double)c->d.bytes_limit; }
static double g_entries_limit(const hc__cache_snap *c) { return (double)c->d.entries_limit; }
static double g_bypass(const hc__cache_snap *c) { return c->d.bypass ? 1 : 0; }
static double g_hit_ratio(const hc__cache_snap *c) { return hc_stats_hit_ratio(&c->d.stats); }
static double g_queue(const hc__cache_snap *c) { return c->queue_usage; }

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
static void prom_state_set(hc__tbuf *b, const char *family, const char *lname, const char *name,
                           hc_bus_state cur)
{
    for (size_t k = 0; k < NELEM(all_states); k++) {
        char extra[48];
        snprintf(extra, sizeof extra, "state=\"%s\"", hc_bus_state_str(all_states[k]));
        prom_series(b, family, lname, name, extra);
        hc__tb_puts(b, all_states[k] == cur ? "1\n" : "0\n");
    }
}

/* A gauge sample; nothing when v is unknown (negative or not finite). */
static void prom_gauge_sample(hc__tbuf *b, const char *family, const char *lname, const char *name,
                              double v)
{
    if (v < 0 || !isfinite(v))
        return;
    prom_series(b, family, lname, name, NULL);
    hc__tb_double(b, v);
    hc__tb_puts(b, "\n");
}

/* The PostgreSQL bus families (other buses are in the JSON only). */
static void prom_pg_buses(hc__tbuf *b, const hc__snapshot *s)
{
    size_t npg = 0;
    for (size_t j = 0; j < s->nb; j++)
        npg += s->b[j].is_pg;
    if (npg == 0)
        return;
    prom_counters(b, s, bus_counters, NELEM(bus_counters), "bus", s->nb, pg_bus_obj);
    prom_family(b, "pg_bus_up", "gauge", "1 while the PostgreSQL bus is listening.");
    for (size_t j = 0; j < s->nb; j++) {
        if (!s->b[j].is_pg)
            continue;
        prom_series(b, "pg_bus_up", "bus", s->b[j].name, NULL);
        hc__tb_puts(b, s->b[j].state == HC_BUS_LISTENING ? "1\n" : "0\n");
    }
    prom_family(b, "pg_bus_state", "gauge", "PostgreSQL bus state (1 for the current state).");
    for (size_t j = 0; j < s->nb; j++)
        if (s->b[j].is_pg)
            prom_state_set(b, "pg_bus_state", "bus", s->b[j].name, s->b[j].state);
    prom_family(b, "pg_bus_queue_length", "gauge", "Invalidations waiting to be sent.");
    for (size_t j = 0; j < s->nb; j++) {
        if (!s->b[j].is_pg)
            continue;
        prom_series(b, "pg_bus_queue_length", "bus", s->b[j].name, NULL);
        hc__tb_u64(b, s->b[j].pg.queue_len);
        hc__tb_puts(b, "\n");
    }
    prom_family(b, "pg_bus_notify_queue_usage", "gauge",
                "Last pg_notification_queue_usage() (absent when unknown).");
    for (size_t j = 0; j < s->nb; j++)
        if (s->b[j].is_pg)
            prom_gauge_sample(b, "pg_bus_notify_queue_usage", "bus", s->b[j].name,
                              s->b[j].queue_usage);
}

void hc__expo_prometheus(hc__tbuf *b, const hc__snapshot *s)
{
    prom_counters(b, s, cache_counters, NELEM(cache_counters), "cache", s->nc, cache_obj);
    for (size_t i = 0; i < NELEM(cache_gauges); i++) {
        prom_family(b, cache_gauges[i].family, "gauge", cache_gauges[i].help);
        for (size_t j = 0; j < s->nc; j++)
            prom_gauge_sample(b, cache_gauges[i].family, "cache", s->c[j].name,
                              cache_gauges[i].get(&s->c[j]));
    }
    prom_family(b, "bus_state", "gauge", "Bus state of the cache (1 for the current state).");
    for (size_t j = 0; j < s->nc; j++)
        prom_state_set(b, "bus_state", "cache", s->c[j].name, s->c[j].d.bus_state);
    prom_pg_buses(b, s);
}
