/*
 * stats.h (private) - the cache's counters, striped over cache-line-aligned
 * blocks, one per thread (a thread takes the next stripe at its first count,
 * modulo the stripe count), so threads hitting the same hot key do not share
 * a counter cache line.  hc__counters_sum adds the stripes up for
 * hc_cache_stats.  Relaxed atomic adds (stripes may be shared once there are
 * more threads than stripes): each counter is exact, a snapshot is only
 * "consistent enough".
 * Thread-safe except hc__counters_free.
 */
#ifndef HC_STATS_H
#define HC_STATS_H

#include <stdint.h>

#include "hydracache/cache.h"

/*
 * THE list of a cache's counters, in hc_stats order (which is also the order
 * of the JSON keys and Prometheus families).  Adding a counter is one line
 * here plus its field appended to hc_stats in hydracache/cache.h (public
 * ABI: append only, so a new counter goes at the end here too).  Columns:
 *
 *   X(src, field, CTR, family, label, help)
 *     src     STRIPED: counted with hc__counters_add(HC_CTR_<CTR>);
 *             EVENTS: filled by hc_cache_stats from the event ring (no HC_CTR_)
 *     field   the hc_stats field, also the JSON key
 *     family  Prometheus family without the hydracache_ prefix
 *     label   extra Prometheus label (NULL for none)
 *     help    # HELP text, or NULL for the further rows of a family (rows of
 *             one family are adjacent; # HELP/# TYPE are written once)
 *
 * Generated from it: enum hc_ctr (below), the stripe sums to hc_stats
 * (stats.c), and the JSON and Prometheus counter table (exposition.c).
 */
#define HC_CACHE_COUNTERS(X)                                                                  \
    X(STRIPED, hits, HITS, "hits_total", NULL, "Lookups that found a live entry.")            \
    X(STRIPED, misses, MISSES, "misses_total", NULL, "Lookups that found no live entry.")     \
    X(STRIPED, loads, LOADS, "loads_total", NULL, "Loader runs.")                             \
    X(STRIPED, load_errors, LOAD_ERRORS, "load_errors_total", NULL, "Loader runs that failed.") \
    X(STRIPED, single_flight_joins, JOINS, "single_flight_joins_total", NULL,                 \
      "Callers that waited for a load already in flight.")                                    \
    X(STRIPED, stale_load_discards, STALE_DISCARDS, "stale_load_discards_total", NULL,        \
      "Loaded values not stored because an invalidation raced the load.")                     \
    X(STRIPED, puts, PUTS, "puts_total", NULL, "Entries stored by put.")                      \
    X(STRIPED, invalidations_key, INVAL_KEY, "invalidations_total", "kind=\"key\"",           \
      "Invalidations, by kind.")                                                              \
    X(STRIPED, invalidations_tag, INVAL_TAG, "invalidations_total", "kind=\"tag\"", NULL)     \
    X(STRIPED, invalidations_flush, INVAL_FLUSH, "invalidations_total", "kind=\"flush\"", NULL) \
    X(STRIPED, evictions_capacity, EVICT_CAPACITY, "evictions_total", "reason=\"capacity\"",  \
      "Entries evicted, by reason.")                                                          \
    X(STRIPED, evictions_expired, EVICT_EXPIRED, "evictions_total", "reason=\"expired\"", NULL) \
    X(EVENTS, events_published, EVENTS_PUBLISHED, "events_published_total", NULL,             \
      "Events published to subscribers.")                                                     \
    X(EVENTS, subscriber_lag, SUBSCRIBER_LAG, "subscriber_lost_events_total", NULL,           \
      "Events lost by subscribers that fell behind.")                                         \
    X(STRIPED, bus_published, BUS_PUBLISHED, "bus_published_total", NULL,                     \
      "Invalidations handed to the bus.")                                                     \
    X(STRIPED, bus_received, BUS_RECEIVED, "bus_received_total", NULL, "Bus messages received.") \
    X(STRIPED, bus_applied, BUS_APPLIED, "bus_applied_total", NULL,                           \
      "Remote invalidations applied.")                                                        \
    X(STRIPED, bus_malformed, BUS_MALFORMED, "bus_malformed_total", NULL,                     \
      "Malformed or foreign bus messages ignored.")                                           \
    X(STRIPED, bus_publish_failures, BUS_PUBLISH_FAILURES, "bus_publish_failures_total", NULL, \
      "Invalidations the bus could not send.")                                                \
    X(STRIPED, bus_disconnects, BUS_DISCONNECTS, "bus_disconnects_total", NULL,               \
      "Bus connection losses.")                                                               \
    X(STRIPED, bus_reconnects, BUS_RECONNECTS, "bus_reconnects_total", NULL, "Bus reconnections.") \
    X(STRIPED, bypassed_loads, BYPASSED_LOADS, "bypassed_loads_total", NULL,                  \
      "Loads served from the source without storing (bypass).")

/* Per-src helpers for generating from HC_CACHE_COUNTERS. */
#define HC__CTR_ENUM_STRIPED(CTR) HC_CTR_##CTR,
#define HC__CTR_ENUM_EVENTS(CTR)
#define HC__CTR_ENUM(src, field, CTR, family, label, help) HC__CTR_ENUM_##src(CTR)

/* The striped counters. */
typedef enum hc_ctr {
    HC_CACHE_COUNTERS(HC__CTR_ENUM)
    HC_CTR_COUNT
} hc_ctr;

typedef struct hc_counters hc_counters;

hc_counters *hc__counters_new(void);
void hc__counters_free(hc_counters *k);
/* Add n to counter ctr in the calling thread's stripe. */
void hc__counters_add(hc_counters *k, hc_ctr ctr, uint64_t n);
/* The calling thread's stripe: assigned at its first use (threads take
 * stripes in turn), the same for every cache and for the thread's life. */
unsigned hc__counters_stripe(void);
/* Fill every counter field of out (events_* and subscriber_lag excluded). */
void hc__counters_sum(const hc_counters *k, hc_stats *out);

#endif
