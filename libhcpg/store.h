/*
 * store.h (private) - the sharded, byte-bounded entry table with S3-FIFO
 * eviction and TTL expiry, used by cache.c.
 *
 * Locking: one rwlock per shard, taken exclusively by writers.  Lookups do
 * not touch it unless a writer is in the shard: a reader raises a count in
 * its thread's stripe (lines no other reader writes) and checks the shard's
 * writer flag, a writer raises the flag and waits for the counts to drain
 * (details in store.c).  A hit only bumps a 2-bit frequency counter and
 * retains the value, so concurrent hits write no shared line but the value's
 * reference count.  The byte/entry bound is global: a put first reserves its
 * footprint in two global atomic counters, evicting from shards in turn
 * (each under its own lock, never two at once) until the reservation fits,
 * so the store never holds more than max_bytes / max_entries.
 * Removed entries are freed, and evictions reported through on_evict, after
 * the shard lock is released.  Every function is thread-safe except
 * hc_store_free.
 */
#ifndef HC_STORE_H
#define HC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef struct hc_store hc_store;

/* Called (no lock held) for each entry evicted for capacity or expiry. */
typedef void (*hc_store_evict_fn)(void *ctx, const char *key, uint64_t hash,
                                  hc_evict_reason reason);
/* Called under the shard's exclusive lock just before an insert: false
 * cancels it.  Invalidations change what it checks before they take the
 * shard lock, so an insert is either refused or removed by them. */
typedef bool (*hc_store_guard_fn)(void *ctx);

typedef struct hc_store_config {
    size_t max_bytes;   /* > 0 */
    size_t max_entries; /* 0 = unlimited */
    unsigned shards;    /* power of two */
    hc_clock_fn clock;
    void *clock_ctx;
    hc_store_evict_fn on_evict;
    void *evict_ctx;
} hc_store_config;

hc_store *hc_store_new(const hc_store_config *cfg);
void hc_store_free(hc_store *s);

/* The shard a hash maps to. */
unsigned hc_store_shard_index(const hc_store *s, uint64_t hash);
unsigned hc_store_shards(const hc_store *s);

/* HC_OK + new reference in *out, or HC_MISS (an expired entry is dropped). */
hc_status hc_store_get(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value **out);

/*
 * Store v (the store takes its own reference) under key, replacing any entry.
 * expires_at is a clock time in ms (0 = never).  *stored says whether it was
 * stored: false when guard refused or when no room could be made (then it
 * is reported as a capacity eviction).  HC_ERR_TOO_LARGE when the entry alone
 * exceeds max_bytes, HC_ERR_NOMEM (store unchanged).
 */
hc_status hc_store_put(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value *v,
                       const char *const *tags, size_t ntags, uint64_t expires_at,
                       hc_store_guard_fn guard, void *guard_ctx, bool *stored, hc_error *err);

/* Each returns the number of entries removed. */
size_t hc_store_remove(hc_store *s, const char *key, size_t klen, uint64_t hash);
size_t hc_store_remove_tag(hc_store *s, const char *tag, size_t tlen, uint64_t hash);
size_t hc_store_clear(hc_store *s);
/* Drop every expired entry (reported as expiry evictions). */
size_t hc_store_sweep(hc_store *s);

void hc_store_usage(const hc_store *s, size_t *entries, size_t *bytes);
/* Bytes an entry would occupy (key, value, tags, overhead). */
size_t hc_store_footprint(size_t klen, const hc_value *v, const char *const *tags, size_t ntags);

#endif
