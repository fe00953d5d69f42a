/*
 * registry.c - the registry of named caches and buses, and the snapshot of
 * them that every output is written from (the formats are in exposition.c,
 * the text buffer in textbuf.c).
 *
 * Locking: one mutex guards the lists and the threshold.  A snapshot holds it
 * while it reads the caches and buses and while the text is formatted, so
 * hc_registry_remove returning means no snapshot still uses the removed
 * object.  Nothing called under the lock calls back into the registry.
 *
 * Bus facts come from the generic bus (hc_bus_state_get, hc_bus_queue_usage,
 * hc_bus_node_id), so any transport can be registered; a PostgreSQL bus adds
 * its own counters (hc_pg_bus_get_stats) and reports its own state.  A
 * cache's queue usage is that of the bus it is attached to
 * (hc__bus_cache_queue_usage): the cache itself keeps no PostgreSQL facts.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bus_int.h"
#include "registry_int.h"

/* ------------------------------------------------------------ the registry */

typedef struct reg_entry {
    char *name;
    void *obj;   /* hc_cache *, or the registered bus (hc_bus * or hc_pg_bus *) */
    hc_bus *bus; /* buses: the generic bus (obj itself, or hc_pg_bus_bus(obj)) */
    bool is_pg;  /* buses: obj is an hc_pg_bus * */
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
        if ((name != NULL && strcmp(l->v[i].name, name) == 0) ||
            (obj != NULL && l->v[i].obj == obj))
            return &l->v[i];
    return NULL;
}

/* Caller holds reg->mu.  Returns the new entry's index in *at. */
static hc_status list_add(reg_list *l, const char *what, const char *name, void *obj,
                          size_t *at, hc_error *err)
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
    l->v[l->n] = (reg_entry){.name = copy, .obj = obj};
    *at = l->n++;
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
    size_t at;
    pthread_mutex_lock(&reg->mu);
    hc_status st = list_add(&reg->caches, "cache", hc_cache_name(c), c, &at, err);
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

/* Registers a bus: obj is the generic bus, or the PostgreSQL bus that holds it. */
static hc_status add_bus(hc_registry *reg, const char *fn, const char *name, void *obj,
                         hc_bus *bus, bool is_pg, hc_error *err)
{
    if (reg == NULL || name == NULL || obj == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "%s: NULL argument", fn);
    size_t n = strlen(name);
    if (n == 0)
        return hc_error_set(err, HC_ERR_INVALID, "%s: empty name", fn);
    if (n > HC_MAX_KEY_LEN)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "bus name longer than %d bytes",
                            HC_MAX_KEY_LEN);
    size_t at;
    pthread_mutex_lock(&reg->mu);
    hc_status st = HC_OK;
    for (size_t i = 0; i < reg->buses.n && st == HC_OK; i++)
        if (reg->buses.v[i].bus == bus) /* the same bus, registered either way */
            st = hc_error_set(err, HC_ERR_BUSY, "this bus is already registered as '%s'",
                              reg->buses.v[i].name);
    if (st == HC_OK)
        st = list_add(&reg->buses, "bus", name, obj, &at, err);
    if (st == HC_OK) {
        reg->buses.v[at].bus = bus;
        reg->buses.v[at].is_pg = is_pg;
    }
    pthread_mutex_unlock(&reg->mu);
    return st;
}

static hc_status remove_bus(hc_registry *reg, const char *fn, const void *obj, hc_error *err)
{
    if (reg == NULL || obj == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "%s: NULL argument", fn);
    pthread_mutex_lock(&reg->mu);
    hc_status st = list_remove(&reg->buses, "bus", obj, err);
    pthread_mutex_unlock(&reg->mu);
    return st;
}

HC_EXTERN hc_status hc_registry_add_pg_bus(hc_registry *reg, const char *name, hc_pg_bus *bus,
                                           hc_error *err)
{
    return add_bus(reg, "hc_registry_add_pg_bus", name, bus,
                   bus != NULL ? hc_pg_bus_bus(bus) : NULL, true, err);
}

HC_EXTERN hc_status hc_registry_remove_pg_bus(hc_registry *reg, const hc_pg_bus *bus,
                                              hc_error *err)
{
    return remove_bus(reg, "hc_registry_remove_pg_bus", bus, err);
}

HC_EXTERN hc_status hc_registry_add_bus(hc_registry *reg, const char *name, hc_bus *bus,
                                        hc_error *err)
{
    return add_bus(reg, "hc_registry_add_bus", name, bus, bus, false, err);
}

HC_EXTERN hc_status hc_registry_remove_bus(hc_registry *reg, const hc_bus *bus, hc_error *err)
{
    return remove_bus(reg, "hc_registry_remove_bus", bus, err);
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

static void snap_free(hc__snapshot *s)
{
    free(s->c);
    free(s->b);
}

/* usage is -1 (or not finite) while unknown: never degraded then. */
static hc_health queue_health(const hc__snapshot *s, double usage)
{
    return isfinite(usage) && usage > s->queue_threshold ? HC_HEALTH_DEGRADED : HC_HEALTH_UP;
}

static hc_health worse(hc_health a, hc_health b)
{
    return a > b ? a : b;
}

/* Caller holds reg->mu for as long as it uses *s (names are borrowed). */
static hc_status snap_take(hc_registry *reg, hc__snapshot *s, hc_error *err)
{
    memset(s, 0, sizeof *s);
    s->c = hc__calloc(reg->caches.n + 1, sizeof *s->c);
    s->b = hc__calloc(reg->buses.n + 1, sizeof *s->b);
    if (s->c == NULL || s->b == NULL) {
        snap_free(s);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory taking a snapshot");
    }
    s->queue_threshold = reg->queue_threshold;
    s->health = HC_HEALTH_UP;
    for (size_t i = 0; i < reg->caches.n; i++) {
        hc__cache_snap *c = &s->c[i];
        c->name = reg->caches.v[i].name;
        hc_cache_diagnostics(reg->caches.v[i].obj, &c->d);
        c->queue_usage = hc__bus_cache_queue_usage(reg->caches.v[i].obj);
        c->health = c->d.bypass ? HC_HEALTH_DOWN : queue_health(s, c->queue_usage);
        s->health = worse(s->health, c->health);
    }
    s->nc = reg->caches.n;
    for (size_t i = 0; i < reg->buses.n; i++) {
        const reg_entry *e = &reg->buses.v[i];
        hc__bus_snap *b = &s->b[i];
        b->name = e->name;
        b->node_id = hc_bus_node_id(e->bus);
        b->queue_usage = hc_bus_queue_usage(e->bus);
        b->is_pg = e->is_pg;
        if (e->is_pg) {
            hc_pg_bus_get_stats(e->obj, &b->pg);
            b->state = b->pg.state;
        } else {
            b->state = hc_bus_state_get(e->bus);
        }
        bool up = b->state == HC_BUS_LISTENING || b->state == HC_BUS_LOCAL;
        b->health = up ? queue_health(s, b->queue_usage) : HC_HEALTH_DOWN;
        s->health = worse(s->health, b->health);
    }
    s->nb = reg->buses.n;
    return HC_OK;
}

/* Writes a fresh snapshot with fmt (which returns false for "nothing to
 * write": then HC_MISS) with the registry locked. */
typedef bool (*snap_fmt_fn)(hc__tbuf *b, const hc__snapshot *s, const void *arg,
                            hc_health *health);

static hc_status with_snapshot(hc_registry *reg, snap_fmt_fn fmt, const void *arg,
                               hc_health *health, char **out, size_t *len, hc_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (reg == NULL || out == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "snapshot: NULL registry or output");
    hc__tbuf b = {0};
    hc__snapshot s;
    bool found = false;
    pthread_mutex_lock(&reg->mu);
    hc_status st = snap_take(reg, &s, err);
    if (st == HC_OK) {
        found = fmt(&b, &s, arg, health);
        snap_free(&s);
    }
    pthread_mutex_unlock(&reg->mu);
    if (st != HC_OK)
        return st;
    if (!found) {
        hc__tb_free(&b);
        return hc_error_set(err, HC_MISS, "no cache named '%s'", (const char *)arg);
    }
    return hc__tb_finish(&b, out, len, err);
}

static bool fmt_json(hc__tbuf *b, const hc__snapshot *s, const void *arg, hc_health *h)
{
    (void)arg;
    (void)h;
    hc__expo_json(b, s);
    return true;
}

static bool fmt_caches(hc__tbuf *b, const hc__snapshot *s, const void *arg, hc_health *h)
{
    (void)arg;
    (void)h;
    hc__expo_caches_json(b, s);
    return true;
}

static bool fmt_stats(hc__tbuf *b, const hc__snapshot *s, const void *arg, hc_health *h)
{
    (void)h;
    return hc__expo_cache_json(b, s, arg, HC_REGISTRY_STATS);
}

static bool fmt_diagnostics(hc__tbuf *b, const hc__snapshot *s, const void *arg, hc_health *h)
{
    (void)h;
    return hc__expo_cache_json(b, s, arg, HC_REGISTRY_DIAGNOSTICS);
}

static bool fmt_health(hc__tbuf *b, const hc__snapshot *s, const void *arg, hc_health *h)
{
    (void)arg;
    *h = s->health;
    hc__expo_health_json(b, s);
    return true;
}

static bool fmt_prometheus(hc__tbuf *b, const hc__snapshot *s, const void *arg, hc_health *h)
{
    (void)arg;
    (void)h;
    hc__expo_prometheus(b, s);
    return true;
}

HC_EXTERN hc_status hc_registry_json(hc_registry *reg, char **out, size_t *len, hc_error *err)
{
    return with_snapshot(reg, fmt_json, NULL, NULL, out, len, err);
}

HC_EXTERN hc_status hc_registry_caches_json(hc_registry *reg, char **out, size_t *len,
                                            hc_error *err)
{
    return with_snapshot(reg, fmt_caches, NULL, NULL, out, len, err);
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
    return with_snapshot(reg, section == HC_REGISTRY_STATS ? fmt_stats : fmt_diagnostics, name,
                         NULL, out, len, err);
}

HC_EXTERN hc_status hc_registry_health_status(hc_registry *reg, hc_health *health, char **out,
                                              size_t *len, hc_error *err)
{
    if (health == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_registry_health: NULL result");
    char *tmp = NULL;
    hc_status st = with_snapshot(reg, fmt_health, NULL, health, &tmp, len, err);
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

HC_EXTERN hc_status hc_registry_prometheus(hc_registry *reg, char **out, size_t *len,
                                           hc_error *err)
{
    return with_snapshot(reg, fmt_prometheus, NULL, NULL, out, len, err);
}
