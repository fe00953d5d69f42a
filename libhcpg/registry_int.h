/*
 * registry_int.h (private) - the registry's data model: a snapshot of every
 * registered cache and bus, read once under the registry lock
 * (registry.c), and the exposition formats that write it (exposition.c).
 */
#ifndef HC_REGISTRY_INT_H
#define HC_REGISTRY_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "hydracache/registry.h"
#include "textbuf.h"

typedef struct hc__cache_snap {
    const char *name;   /* borrowed from the registry */
    hc_diagnostics d;
    double queue_usage; /* of the bus the cache is attached to: -1 unknown or none */
    hc_health health;
} hc__cache_snap;

typedef struct hc__bus_snap {
    const char *name;    /* borrowed from the registry */
    const char *node_id; /* static for the bus's lifetime */
    hc_bus_state state;  /* the PostgreSQL bus's own state for a pg bus, else hc_bus_state_get */
    double queue_usage;  /* hc_bus_queue_usage: -1 unknown */
    hc_health health;
    bool is_pg;          /* registered with hc_registry_add_pg_bus: pg is filled */
    hc_pg_bus_stats pg;
} hc__bus_snap;

typedef struct hc__snapshot {
    hc__cache_snap *c;
    size_t nc;
    hc__bus_snap *b;
    size_t nb;
    double queue_threshold;
    hc_health health; /* the worst of all */
} hc__snapshot;

/* The exposition formats (exposition.c); the shapes are in registry.h and
 * docs/OBSERVABILITY.md.  Each appends to b. */
void hc__expo_json(hc__tbuf *b, const hc__snapshot *s);
void hc__expo_caches_json(hc__tbuf *b, const hc__snapshot *s);
/* One section of the cache named name; false (nothing written) when there is none. */
bool hc__expo_cache_json(hc__tbuf *b, const hc__snapshot *s, const char *name,
                         hc_registry_section section);
void hc__expo_health_json(hc__tbuf *b, const hc__snapshot *s);
void hc__expo_prometheus(hc__tbuf *b, const hc__snapshot *s);

#endif
