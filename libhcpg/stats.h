/*
 * stats.h (private) - the cache's counters, striped over cache-line-aligned
 * blocks, one per thread (a thread takes the next stripe at its first count,
 * modulo the stripe count), so threads hitting the same hot key do not share
 * a counter cache line.  hc_counters_sum adds the stripes up for
 * hc_cache_stats.  Relaxed atomic adds (stripes may be shared once there are
 * more threads than stripes): each counter is exact, a snapshot is only
 * "consistent enough".
 * Thread-safe except hc_counters_free.
 */
#ifndef HC_STATS_H
#define HC_STATS_H

#include <stdint.h>

#include "hydracache/cache.h"

typedef enum hc_ctr {
    HC_CTR_HITS,
    HC_CTR_MISSES,
    HC_CTR_LOADS,
    HC_CTR_LOAD_ERRORS,
    HC_CTR_JOINS,
    HC_CTR_STALE_DISCARDS,
    HC_CTR_PUTS,
    HC_CTR_INVAL_KEY,
    HC_CTR_INVAL_TAG,
    HC_CTR_INVAL_FLUSH,
    HC_CTR_EVICT_CAPACITY,
    HC_CTR_EVICT_EXPIRED,
    HC_CTR_BUS_PUBLISHED,
    HC_CTR_BUS_RECEIVED,
    HC_CTR_BUS_APPLIED,
    HC_CTR_BUS_MALFORMED,
    HC_CTR_BUS_PUBLISH_FAILURES,
    HC_CTR_BUS_DISCONNECTS,
    HC_CTR_BUS_RECONNECTS,
    HC_CTR_BYPASSED_LOADS,
    HC_CTR_COUNT
} hc_ctr;

typedef struct hc_counters hc_counters;

hc_counters *hc_counters_new(void);
void hc_counters_free(hc_counters *k);
/* Add n to counter ctr in the calling thread's stripe. */
void hc_counters_add(hc_counters *k, hc_ctr ctr, uint64_t n);
/* The calling thread's stripe: assigned at its first use (threads take
 * stripes in turn), the same for every cache and for the thread's life. */
unsigned hc_counters_stripe(void);
/* Fill every counter field of out (events_* and subscriber_lag excluded). */
void hc_counters_sum(const hc_counters *k, hc_stats *out);

#endif
