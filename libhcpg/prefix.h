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
 * Locking: adding and releasing take the dictionary's mutex (taken under
 * no other store lock).  Every put of a prefixed key interns and every
 * removal releases, so a put-only loop on 2 threads pays for the mutex's
 * line moving between them (a microbenchmark of 40-byte puts with
 * evictions: 0.90 M puts/s with one-segment keys, 0.52 M with "user:" keys;
 * 1 thread: 1.25-1.31 vs 1.09-1.21 M).  Puts that follow a database query
 * do not come near that rate; per-shard references (the global one taken
 * once per shard) would remove it, with a lock-free lookup for the id.  hc__prefix_get takes none: a prefix is immutable
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

typedef struct hc_prefix {
    struct hc_prefix *next; /* bucket chain */
    uint64_t hash;
    uint32_t refs;          /* entries holding it, under the lock */
    uint16_t id;
    uint16_t len;
    char s[];
} hc_prefix;

typedef struct hc_prefixes {
    pthread_mutex_t lock;
    hc_prefix *by_id[HC_PREFIX_IDS];
    hc_prefix *buckets[HC_PREFIX_BUCKETS];
    unsigned cursor; /* where the search for a free id starts */
    atomic_size_t *used;
} hc_prefixes;

hc_status hc__prefixes_init(hc_prefixes *d, atomic_size_t *used);
/* Every prefix must have been released. */
void hc__prefixes_destroy(hc_prefixes *d);

/* The length of key's prefix to intern (its first segment and the ':'), or 0
 * when it has none worth interning (one segment, or longer than
 * HC_PREFIX_MAX_LEN). */
size_t hc__prefix_len(const char *key, size_t klen);

/* The most hc__prefix_intern can charge for a prefix of len bytes. */
size_t hc__prefix_cost(size_t len);

/* A reference to the prefix s[0..len) (an id), made if new, its bytes added
 * to *charged (the caller counted hc__prefix_cost beforehand and releases
 * the rest); 0 when it cannot be made (no id free, no memory). */
uint16_t hc__prefix_intern(hc_prefixes *d, const char *s, size_t len, size_t *charged);

/* Drop a reference (id 0 is ignored); the last frees and uncounts it. */
void hc__prefix_release(hc_prefixes *d, uint16_t id);

/* The prefix of a held id. */
static inline const hc_prefix *hc__prefix_get(const hc_prefixes *d, uint16_t id)
{
    return d->by_id[id];
}

#endif
