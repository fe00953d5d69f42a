/* value.h (private) - what the store needs to know about hc_value, and the
 * allocation cost model of the cache's byte accounting. */
#ifndef HC_VALUE_H
#define HC_VALUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/*
 * A value is 8 bytes of header (a 32-bit count and length; HC_MAX_VALUE_LEN
 * < 2^31), its data and a NUL.  A value the caller allocates
 * (hc_value_alloc/hc_value_new) is one allocation of its own; a value the
 * store holds lives inside its entry's allocation (store.c), with
 * HC__VALUE_EMBEDDED set in len, so a hit hands out a reference to the entry
 * itself and the entry's memory lives until its last reference is released.
 * 2^32 references to one value at once would wrap the count; no cache holds
 * that many (each reference is a live caller or entry).
 */
struct hc_value {
    atomic_uint refs;
    uint32_t len; /* | HC__VALUE_EMBEDDED */
    char data[];
};

#define HC__VALUE_EMBEDDED 0x80000000u
#define HC__VALUE_HEADER (sizeof(struct hc_value) + 1) /* header and the NUL */

_Static_assert(HC_MAX_VALUE_LEN < HC__VALUE_EMBEDDED, "hc_value.len has a spare bit");

/* Make the value at v (room for HC__VALUE_HEADER + len bytes) an embedded
 * value holding len bytes of data, with one reference. */
void hc__value_embed(hc_value *v, const void *data, size_t len);

/* Free an embedded value's allocation (its last reference is gone): the store's. */
void hc__store_value_free(hc_value *v);

#endif
