/*
 * prefix.h (private) - a store's interned key prefixes.  A key of two or
 * more segments (hc_key_build's rules: segments joined by ':', a ':' inside
 * a segment escaped with '\') starts with its entity, "user:" in
 * "user:42"; the store keeps each distinct prefix once, reference-counted by
 * the entries using it, and an entry stores a 2-byte prefix id and the rest
 * of its key only.  Ids are 1..HC_PREFIX_IDS - 1 (0: the key is stored
 * whole); when every id is taken, or the prefix is longer than
 * HC_PREFIX_MAX_LEN, keys are stored whole.
 *
 * Popular prefixes are pinned: once a prefix has HC_PREFIX_PIN_AFTER
 * references, a copy of it is kept for the store's life under an id of
 * its own (HC_PREFIX_IDS + k, k < HC_PREFIX_PINNED), found without a lock
 * and holding no count, so the puts and removals of its keys touch no shared
 * line (a put-only loop of 40-byte values with evictions on 2 threads: 0.52 M
 * puts/s with a counted reference per put, 0.85-0.91 M pinned, 0.85-0.94 M
 * for keys of one segment).  Pinned copies are
 * the store's fixed cost (at most HC_PREFIX_PINNED of them), not counted.
 *
 * Locking: interning a prefix that is not pinned, and releasing one, take
 * the dictionary's mutex (taken under no other store lock).  hc__prefix_get takes none: a prefix is immutable
 * while an entry holds it, and the entry is published to lock-free readers
 * after the prefix was made (store.c's shard protocol orders them).
 *
 * Bytes: each prefix costs hc__alloc_cost(sizeof(hc_prefix) + len + 1) in
 * the store's byte counter, paid from a reservation the caller made
 * (hc__prefix_cost); the id table (HC_PREFIX_IDS pointers) is the empty
 * store's fixed cost, not counted.
 */
#ifndef HC_PREFIX_H
#define HC_PREFIX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

#define HC_PREFIX_IDS 1024u      /* ids 1..1023 */
#define HC_PREFIX_MAX_LEN 64u    /* bytes, with the ':' */
#define HC_PREFIX_BUCKETS 64u
#define HC_PREFIX_PINNED 64u     /* popular prefixes kept for the store's life */
#define HC_PREFIX_PIN_AFTER 16u  /* references that make a prefix popular */

typedef struct hc_prefix {
    struct hc_prefix *next; /* bucket chain */
    uint64_t hash;
    uint32_t refs;          /* entries holding it, under the lock */
    uint16_t id;
    uint16_t len;
    uint8_t pinned;         /* a pinned copy of it exists */
    char s[];
} hc_prefix;

typedef struct hc_prefixes {
    pthread_mutex_t lock;
    hc_prefix *by_id[HC_PREFIX_IDS];
    hc_prefix *buckets[HC_PREFIX_BUCKETS];
    unsigned cursor; /* where the search for a free id starts */
    atomic_size_t *used;
    /* pinned copies: written once each under the lock, read without it */
    _Atomic(hc_prefix *) pinned[HC_PREFIX_PINNED];
    atomic_uint npinned;
} hc_prefixes;

hc_status hc__prefixes_init(hc_prefixes *d, atomic_size_t *used);
/* Every prefix must have been released. */
void hc__prefixes_destroy(hc_prefixes *d);

/* The length of the prefix to intern of a key whose first segment is seg
 * bytes (hc__key_first_segment): the segment and its ':', or 0 when there is
 * none worth interning (one segment, or longer than HC_PREFIX_MAX_LEN). */
static inline size_t hc__prefix_len(size_t seg)
{
    return seg < HC_PREFIX_MAX_LEN ? seg + 1 : 0;
}

/* The most hc__prefix_intern can charge for a prefix of len bytes. */
size_t hc__prefix_cost(size_t len);

/* A reference to the prefix s[0..len) (an id), made if new, its bytes added
 * to *charged (the caller counted hc__prefix_cost beforehand and releases
 * the rest); 0 when it cannot be made (no id free, no memory). */
uint16_t hc__prefix_intern(hc_prefixes *d, const char *s, size_t len, size_t *charged);

/* Drop a reference (id 0 and pinned ids are ignored); the last frees and
 * uncounts it. */
void hc__prefix_release(hc_prefixes *d, uint16_t id);

/* The prefix of a held id. */
static inline const hc_prefix *hc__prefix_get(const hc_prefixes *d, uint16_t id)
{
    if (id < HC_PREFIX_IDS)
        return d->by_id[id];
    return atomic_load_explicit(&d->pinned[id - HC_PREFIX_IDS],
                                memory_order_acquire);
}

#endif
