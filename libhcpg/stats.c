/*
 * stats.c - per-thread counter stripes, the hc_stats helpers and
 * hc_bus_state_str (hc_bus_state is the diagnostics' view of a bus; the event
 * enums' names are in events.c, hc_status's in error.c).
 */
#include "config.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "stats.h"

#define STRIPES 64u /* power of two */

/* HC_CACHE_COUNTERS lists every hc_stats field, in order (so the JSON and
 * Prometheus outputs cover them all). */
#define ROW(src, field, CTR, family, label, help) ROW_##field,
enum { HC_CACHE_COUNTERS(ROW) ROW_COUNT };
#undef ROW
#define ROW(src, field, CTR, family, label, help)                                   \
    _Static_assert(offsetof(hc_stats, field) == ROW_##field * sizeof(uint64_t),     \
                   "HC_CACHE_COUNTERS is not in hc_stats order at " #field);
HC_CACHE_COUNTERS(ROW)
#undef ROW
_Static_assert(sizeof(hc_stats) == ROW_COUNT * sizeof(uint64_t),
               "an hc_stats field is missing from HC_CACHE_COUNTERS");

typedef struct stripe {
    atomic_uint_fast64_t v[HC_CTR_COUNT];
} __attribute__((aligned(64))) stripe;

struct hc_counters {
    stripe *stripes;
    void *mem;
};

/* Threads take stripes in turn, so up to STRIPES threads never share one. */
static atomic_uint next_stripe;
static _Thread_local unsigned my_stripe = STRIPES; /* STRIPES = not yet assigned */

unsigned hc__counters_stripe(void)
{
    unsigned i = my_stripe;
    if (i == STRIPES)
        my_stripe = i =
            atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) % STRIPES;
    return i;
}

hc_counters *hc__counters_new(void)
{
    hc_counters *k = hc__calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->mem = hc__calloc(1, sizeof(stripe) * STRIPES + 63);
    if (k->mem == NULL) {
        free(k);
        return NULL;
    }
    k->stripes = (stripe *)(((uintptr_t)k->mem + 63) & ~(uintptr_t)63);
    for (unsigned b = 0; b < STRIPES; b++)
        for (int i = 0; i < HC_CTR_COUNT; i++)
            atomic_init(&k->stripes[b].v[i], 0);
    return k;
}

void hc__counters_free(hc_counters *k)
{
    if (k != NULL) {
        free(k->mem);
        free(k);
    }
}

void hc__counters_add(hc_counters *k, hc_ctr ctr, uint64_t n)
{
    atomic_fetch_add_explicit(&k->stripes[hc__counters_stripe()].v[ctr], n,
                              memory_order_relaxed);
}

void hc__counters_sum(const hc_counters *k, hc_stats *out)
{
    uint64_t sum[HC_CTR_COUNT] = {0};
    for (unsigned b = 0; b < STRIPES; b++)
        for (int i = 0; i < HC_CTR_COUNT; i++)
            sum[i] += atomic_load_explicit(&k->stripes[b].v[i], memory_order_relaxed);
#define SUM_STRIPED(field, CTR) out->field = sum[HC_CTR_##CTR];
#define SUM_EVENTS(field, CTR)
#define SUM(src, field, CTR, family, label, help) SUM_##src(field, CTR)
    HC_CACHE_COUNTERS(SUM)
#undef SUM
#undef SUM_EVENTS
#undef SUM_STRIPED
}

HC_EXTERN uint64_t hc_stats_total_requests(const hc_stats *s)
{
    return s != NULL ? s->hits + s->misses : 0;
}

HC_EXTERN double hc_stats_hit_ratio(const hc_stats *s)
{
    uint64_t total = hc_stats_total_requests(s);
    return total == 0 ? 0.0 : (double)s->hits / (double)total;
}

HC_EXTERN const char *hc_bus_state_str(hc_bus_state st)
{
    switch (st) {
    case HC_BUS_NONE: return "none";
    case HC_BUS_CONNECTING: return "connecting";
    case HC_BUS_LISTENING: return "listening";
    case HC_BUS_DISCONNECTED: return "disconnected";
    case HC_BUS_LOCAL: return "local";
    }
    return "unknown";
}
