/*
 * stats.h (private) - the cache's counters, spread over one cache-line-
 * padded block per shard so that hot counters (hits, misses) written by
 * different threads for different keys do not share a cache line.
 * hc_counters_sum adds the blocks up for hc_cache_stats.  Relaxed atomics:
 * each counter is exact, a snapshot is only "consistent enough".
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

hc_counters *hc_counters_new(unsigned blocks); /* blocks: power of two */
void hc_counters_free(hc_counters *k);
/* Add n to counter ctr in the block chosen by spread (e.g. a shard index). */
void hc_counters_add(hc_counters *k, unsigned spread, hc_ctr ctr, uint64_t n);
/* Fill every counter field of out (events_* and subscriber_lag excluded). */
void hc_counters_sum(const hc_counters *k, hc_stats *out);

#endif
