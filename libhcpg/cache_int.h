/*
 * cache_int.h (private) - cache operations for other libhcpg modules that
 * the public API does not offer.  Thread-safe like the public functions.
 */
#ifndef HC_CACHE_INT_H
#define HC_CACHE_INT_H

#include "hydracache/cache.h"
#include "store.h"

/* Drop key from the store only: no invalidation counted, no event, nothing
 * published (used to discard an entry found corrupt).  key must be valid. */
void hc__cache_drop(hc_cache *c, const char *key);

/* A put of key failed before it reached the cache (a view's encoder failed):
 * leave key absent, as a failed hc_put does.  key must be valid. */
void hc__cache_put_failed(hc_cache *c, const char *key);

/* A load ran outside the cache because its result must not be stored (the
 * libpq adapter's calls inside a transaction): counted as bypassed_loads. */
void hc__cache_count_bypass(hc_cache *c);

/* Call visit(fn, ctx, arg) with c's publisher (both NULL when it has none)
 * while holding c's publisher lock shared, as a publish does: the publisher
 * cannot be detached, nor so a bus freed, before visit returns.  visit must
 * not attach or detach publishers. */
typedef void (*hc__publisher_visit_fn)(hc_publish_fn fn, void *ctx, void *arg);
void hc__cache_with_publisher(hc_cache *c, hc__publisher_visit_fn visit, void *arg);

/* Where the cache's bytes go (store.h), for the memory benchmark. */
void hc__cache_bytes_split(hc_cache *c, hc_store_bytes *out);
/* hc__store_check of the cache's store (tests). */
bool hc__cache_check(hc_cache *c, char *why, size_t cap);

#endif
