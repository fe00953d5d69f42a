/*
 * hydracache/registry.h - a registry of named caches (and PostgreSQL buses)
 * with JSON and Prometheus snapshots, and the optional read-only HTTP
 * actuator that serves them (docs/OBSERVABILITY.md).
 *
 * Lifetime: the registry borrows caches and buses, it never frees them.
 * Remove a cache (hc_registry_remove) before hc_cache_free, and a bus
 * (hc_registry_remove_pg_bus / hc_registry_remove_bus) before freeing it.  Removal waits for any
 * snapshot in progress, so once it returns the object may be freed.
 *
 * Threading: every function may be called from any thread concurrently with
 * any other, except hc_registry_free, which must come after every other use
 * of the registry (stop the actuator first).
 *
 * Output strings: snapshots are returned as malloc'd NUL-terminated strings
 * that the caller releases with free(); *len (when not NULL) receives the
 * length without the NUL.  On error *out is NULL.  Every snapshot function
 * returns HC_ERR_INVALID for a NULL registry or out (where out is required)
 * and HC_ERR_NOMEM when the text cannot be built.
 */
#ifndef HYDRACACHE_REGISTRY_H
#define HYDRACACHE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <hydracache/cache.h>
#include <hydracache/bus.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hc_registry hc_registry;

/* New empty registry; NULL on OOM (err says so). */
HC_EXTERN hc_registry *hc_registry_new(hc_error *err);
/* NULL-safe.  Does not free the registered caches or buses. */
HC_EXTERN void hc_registry_free(hc_registry *reg);

/*
 * Register cache c (borrowed) under hc_cache_name(c).  HC_ERR_INVALID for
 * NULL args; HC_ERR_BUSY when a cache of that name is already registered
 * (the same cache included); HC_ERR_NOMEM.
 */
HC_EXTERN hc_status hc_registry_add(hc_registry *reg, hc_cache *c, hc_error *err);
/* Unregister c (not freed): HC_OK, or HC_MISS when it is not registered;
 * HC_ERR_INVALID for NULL arguments.  Returns once no snapshot reads c. */
HC_EXTERN hc_status hc_registry_remove(hc_registry *reg, const hc_cache *c, hc_error *err);
/* Number of registered caches (buses not counted); 0 for a NULL registry. */
HC_EXTERN size_t hc_registry_cache_count(hc_registry *reg);

/*
 * Register a PostgreSQL bus (borrowed) under name (copied; 1..HC_MAX_KEY_LEN
 * bytes) for its hc_pg_bus_stats.  HC_ERR_BUSY for a duplicate name.
 */
HC_EXTERN hc_status hc_registry_add_pg_bus(hc_registry *reg, const char *name, hc_pg_bus *bus,
                                           hc_error *err);
/* Unregister bus: HC_OK, or HC_MISS when it is not registered. */
HC_EXTERN hc_status hc_registry_remove_pg_bus(hc_registry *reg, const hc_pg_bus *bus,
                                              hc_error *err);

/*
 * Register any bus (borrowed; e.g. over a custom transport, or the
 * in-process bus) under name (copied; 1..HC_MAX_KEY_LEN bytes).  It is
 * reported with what every bus knows: node id, state (hc_bus_state_get) and
 * queue usage (hc_bus_queue_usage), in the JSON snapshot and in health (down
 * unless listening or local); the Prometheus families are for PostgreSQL
 * buses only.  HC_ERR_BUSY for a duplicate name or a bus already registered
 * (also through hc_registry_add_pg_bus); HC_ERR_INVALID, HC_ERR_TOO_LARGE,
 * HC_ERR_NOMEM as hc_registry_add_pg_bus.
 */
HC_EXTERN hc_status hc_registry_add_bus(hc_registry *reg, const char *name, hc_bus *bus,
                                        hc_error *err);
/* Unregister a bus added with hc_registry_add_bus: HC_OK, or HC_MISS. */
HC_EXTERN hc_status hc_registry_remove_bus(hc_registry *reg, const hc_bus *bus, hc_error *err);

/*
 * Whole snapshot as JSON: {"version", "status", "caches": [{"name", "stats",
 * "diagnostics"}...], "buses": [{"name", "node_id", "state", counters...}...]}
 * (the exact shape is in docs/OBSERVABILITY.md).  Names are escaped as JSON
 * strings; bytes that are not valid UTF-8 become U+FFFD.
 */
HC_EXTERN hc_status hc_registry_json(hc_registry *reg, char **out, size_t *len, hc_error *err);

/* {"caches": [{"name", "entries", "bytes_used", "hit_ratio", "bus_state", "bypass"}...]} */
HC_EXTERN hc_status hc_registry_caches_json(hc_registry *reg, char **out, size_t *len,
                                            hc_error *err);

/* What hc_registry_cache_json reports about one cache. */
typedef enum hc_registry_section {
    HC_REGISTRY_STATS = 0,       /* {"name", "stats": {counters, "requests", "hit_ratio"}} */
    HC_REGISTRY_DIAGNOSTICS = 1  /* {"name", "diagnostics": {entries, bytes, limits, bus...}} */
} hc_registry_section;

/* One cache by name: HC_OK, HC_MISS (and *out NULL) when no such cache. */
HC_EXTERN hc_status hc_registry_cache_json(hc_registry *reg, const char *name,
                                           hc_registry_section section, char **out, size_t *len,
                                           hc_error *err);

/*
 * Health of the registered objects, worst first:
 *   HC_HEALTH_DOWN      a cache is in bypass, or a PostgreSQL bus is not
 *                       listening (connecting or disconnected): nothing is
 *                       cached (every read goes to the database);
 *   HC_HEALTH_DEGRADED  everything is up, but the PostgreSQL NOTIFY queue
 *                       (pg_notification_queue_usage(), as last probed by a
 *                       bus) is above the registry's queue usage threshold:
 *                       when the queue fills, every watched write fails at
 *                       commit (docs/OBSERVABILITY.md, EXTENSION.md);
 *   HC_HEALTH_UP        otherwise (an empty registry is up).
 * The values are ordered: a larger one is worse.
 */
typedef enum hc_health {
    HC_HEALTH_UP = 0,
    HC_HEALTH_DEGRADED = 1,
    HC_HEALTH_DOWN = 2
} hc_health;

/* "UP", "DEGRADED", "DOWN" (static strings); "unknown" for other values. */
HC_EXTERN const char *hc_health_str(hc_health h);

/* Default queue usage threshold of a new registry: DEGRADED above half full. */
#define HC_REGISTRY_DEFAULT_QUEUE_THRESHOLD 0.5

/*
 * Set the NOTIFY queue usage above which health reports DEGRADED: a fraction
 * of the queue in 0..1 (default HC_REGISTRY_DEFAULT_QUEUE_THRESHOLD; 1
 * disables, since usage never exceeds 1).  HC_ERR_INVALID for a NULL
 * registry or a threshold outside 0..1 (NaN included); the old one is kept.
 */
HC_EXTERN hc_status hc_registry_set_queue_threshold(hc_registry *reg, double threshold,
                                                    hc_error *err);

/*
 * Health: *health receives the overall hc_health.  out (may be NULL)
 * receives {"status": "UP"|"DEGRADED"|"DOWN", "caches": {name: {"status",
 * "bus_state", "bypass", "notify_queue_usage"}...}, "buses": {name:
 * {"status", "state", "notify_queue_usage"}...}, "queue_usage_threshold"}
 * with the status per object (notify_queue_usage null while unknown).
 */
HC_EXTERN hc_status hc_registry_health_status(hc_registry *reg, hc_health *health, char **out,
                                              size_t *len, hc_error *err);

/*
 * hc_registry_health_status with a boolean: *up is false only when the
 * health is HC_HEALTH_DOWN (DEGRADED still serves correctly, so it is up).
 */
HC_EXTERN hc_status hc_registry_health(hc_registry *reg, bool *up, char **out, size_t *len,
                                       hc_error *err);

/*
 * Prometheus text exposition format 0.0.4: hydracache_* families with one
 * # HELP and # TYPE line each, label cache="<name>" (or bus="<name>"),
 * label values escaped (\\, \", \n; invalid UTF-8 -> U+FFFD).  Counters end
 * in _total.  The metric list is in docs/OBSERVABILITY.md.
 */
HC_EXTERN hc_status hc_registry_prometheus(hc_registry *reg, char **out, size_t *len,
                                           hc_error *err);

/* ------------------------------------------------------------ actuator */

/*
 * Read-only HTTP endpoints over a registry (libmicrohttpd).  Served only
 * when libhcpg was configured --with-actuator (see hc_actuator_available);
 * otherwise the functions exist and hc_actuator_start returns NULL with
 * HC_ERR_STATE.
 *
 *   GET /actuator/hydracache/health                     200 UP or DEGRADED / 503 DOWN
 *   GET /actuator/hydracache/caches                     summary list
 *   GET /actuator/hydracache/caches/{name}/stats        404 for an unknown cache
 *   GET /actuator/hydracache/caches/{name}/diagnostics
 *   GET /actuator/hydracache/metrics                    Prometheus text
 * HEAD is accepted wherever GET is; any other method gets 405 (Allow: GET,
 * HEAD); any other path 404; with a token, a request without exactly
 * "Authorization: Bearer <token>" (scheme case-insensitive, one space, the
 * whole token and nothing more) gets 401 before anything else is looked at.
 * Slow clients cannot lock out probes: connections are limited in all and
 * per client address, and a request that takes longer than
 * request_timeout_s is cut off (its connection closed without a reply).
 */
typedef struct hc_actuator hc_actuator;

typedef struct hc_actuator_config {
    const char *bind_address;  /* numeric IPv4/IPv6 address; NULL -> "127.0.0.1" */
    unsigned short port;       /* 0 -> ephemeral (see hc_actuator_port) */
    const char *bearer_token;  /* copied; NULL or "" -> no authentication */
    unsigned max_connections;  /* 0 -> 32 */
    unsigned timeout_s;        /* idle connection timeout; 0 -> 10 */
    /* appended in 0.1.x (zero-initialise the struct to get the defaults): */
    unsigned per_ip_connections; /* connections per client address; 0 -> 8 */
    unsigned request_timeout_s;  /* deadline for a whole request, from the connection's
                                    accept (or the previous request's end on it) to the
                                    end of the reply; then the connection is closed
                                    (within a quarter of it); 0 -> 10 */
} hc_actuator_config;

/* true when the library was built with the actuator.  Any thread. */
HC_EXTERN bool hc_actuator_available(void);

/*
 * Start serving reg (borrowed; must outlive the actuator) on its own thread.
 * cfg may be NULL (defaults).  NULL on error: HC_ERR_INVALID (bad address),
 * HC_ERR_SYSTEM (cannot bind/listen), HC_ERR_NOMEM, HC_ERR_STATE (built
 * without the actuator).
 */
HC_EXTERN hc_actuator *hc_actuator_start(hc_registry *reg, const hc_actuator_config *cfg,
                                         hc_error *err);
/* The bound TCP port (useful with port 0); 0 for NULL. */
HC_EXTERN unsigned short hc_actuator_port(const hc_actuator *a);
/* Stop serving (waits for requests in progress) and free.  NULL-safe.
 * Must not race with other calls on this actuator. */
HC_EXTERN void hc_actuator_stop(hc_actuator *a);

#ifdef __cplusplus
}
#endif

#endif /* HYDRACACHE_REGISTRY_H */
