/*
 * cache_int.h (private) - cache operations for other libhcpg modules that
 * the public API does not offer.  Thread-safe like the public functions.
 */
#ifndef HC_CACHE_INT_H
#define HC_CACHE_INT_H

#include "hydracache/cache.h"

/* Drop key from the store only: no invalidation counted, no event, nothing
 * published (used to discard an entry found corrupt).  key must be valid. */
void hc__cache_drop(hc_cache *c, const char *key);

#endif
