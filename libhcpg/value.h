/* value.h (private) - what the store needs to know about hc_value, and the
 * allocation cost model of the cache's byte accounting. */
#ifndef HC_VALUE_H
#define HC_VALUE_H

#include <stdatomic.h>
#include <stddef.h>

#include "hydracache/cache.h"

/*
 * Bytes a malloc(n) really takes from the heap: glibc's chunk, n plus an
 * 8-byte size word rounded up to 16, at least 32 (other allocators round
 * alike).  bytes_used counts every allocation the store holds at this cost,
 * so the byte bound bounds the heap, not only the payload.
 */
static inline size_t hc__alloc_cost(size_t n)
{
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

/* Add n to the byte or entry counter *ctr unless that passes limit (0 = no
 * limit): how every reservation against the cache's bounds is made. */
static inline int hc__bytes_try_add(atomic_size_t *ctr, size_t n, size_t limit)
{
    size_t cur = atomic_load(ctr);
    do {
        if (limit != 0 && (cur > limit || limit - cur < n))
            return 0;
    } while (!atomic_compare_exchange_weak(ctr, &cur, cur + n));
    return 1;
}

/* Bytes one value occupies (header + data + NUL, at hc__alloc_cost). */
size_t hc__value_footprint(const hc_value *v);

#endif
