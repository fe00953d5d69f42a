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
 * so the store never holds more than max_bytes / max_entries.  The store's
 * tag dictionary has a mutex of its own, taken under a shard lock, never
 * the other way round.
 * Removed entries are released (freed with the last reference to their
 * value), and evictions reported through on_evict, after
 * the shard lock is released.  Every function is thread-safe except
 * hc__store_free.
 *
 * Bytes (bytes_used counts all of it, each allocation at hc__alloc_cost:
 * glibc's chunk, the request + 8 rounded up to 16, at least 32; 64-bit).
 * An entry is ONE allocation: expiry, key, entry header, value, tag links.
 *
 *   part            field                          bytes   read by a hit
 *   before entry    expiry (clock ms), only for an     8   yes (if present)
 *                   entry with a TTL (HAS_TTL)
 *                   the key after its prefix,   klen - p   yes (compare)
 *                   padded to 8 (no NUL: whole   + 0..7
 *                   keys are copied out for
 *                   on_evict)
 *   entry header    qprev, qnext (FIFO neighbours'      8
 *                   slot indices; the dead list's
 *                   pointer once removed)
 *                   klen (key bytes stored here)       2   yes
 *                   ntags (linked tags)                1
 *                   freq (2-bit S3-FIFO counter)       1   yes (bumped)
 *                   queue / reason once removed        1
 *                   flags (KEY_IS_TAG, KEY_TABLE_TAG,  1
 *                   HAS_TTL)
 *                   prefix (interned key prefix id)    2   yes
 *   value           refs 4 + len 4 (a hit retains      8   yes (retained)
 *                   the entry's own value)
 *                   data + NUL                   len + 1
 *   tag links       padding to 8, then per linked  0-7 +
 *                   tag: node, prev, next entry   24 each
 *   allocation      malloc's size word + rounding   8-23
 *   table           entry pointer 8, hash tag 1,      11 / slot
 *                   distance from home 1, ghost
 *                   fingerprint 2 per 2 slots
 *                   (load 7/16..7/8: 12.6-25 B per entry)
 *   tag node        chain, name, first entry      24 (32) per tag per shard
 *   tag name        chain 8, hash 8, refs 4,  24 + len + 1 per distinct tag
 *                   len 4, text + NUL
 *   key prefix      chain 8, hash 8, refs 4,  32 + len + 1 per distinct prefix
 *                   id 2, len 2, pinned 1,    (prefix.h); a popular prefix's
 *                   text + NUL                pinned copy is fixed cost
 *                                             (at most 64 per store)
 *   bucket arrays   8 per node or name, counted once grown past 16
 *
 * A key of two or more segments keeps its first segment and ':' ("user:")
 * once per store (prefix.h): the entry stores the rest and a 2-byte id.
 * Two tags cost no link at all.  An entity's own tag (the tag equal to its
 * key) is the KEY_IS_TAG flag: hc__store_remove_tag finds it in the table.
 * An entity's table tag (its key's first segment followed by ":*", what
 * hc_key_table_tag builds, and what the PostgreSQL adapter attaches to
 * every entity entry) is the KEY_TABLE_TAG flag: removing such a tag walks
 * the shards that hold flagged entries (a table-wide invalidation: TRUNCATE
 * or a bulk write).  The hash is not stored in the entry (the cold paths
 * that start from an entry hash the key again).  Each shard's first 16 slots
 * and buckets, and the prefix id table (HC_PREFIX_IDS pointers, 8 KiB), are
 * the empty store's fixed cost, not counted.
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

hc_store *hc__store_new(const hc_store_config *cfg);
void hc__store_free(hc_store *s);

/* The shard a hash maps to. */
unsigned hc__store_shard_index(const hc_store *s, uint64_t hash);
unsigned hc__store_shards(const hc_store *s);

/* HC_OK + new reference in *out, or HC_MISS (an expired entry is dropped). */
hc_status hc__store_get(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value **out);

/*
 * Store a copy of data[0..vlen) under key, replacing any entry: the entry
 * holds its value (a hit hands out a reference to it, see store.c).
 * expires_at is a clock time in ms (0 = never).  *stored says whether it was
 * stored: false when guard refused or when no room could be made (then it
 * is reported as a capacity eviction).  HC_ERR_TOO_LARGE when the entry alone
 * exceeds max_bytes, HC_ERR_NOMEM (store unchanged).
 */
hc_status hc__store_put(hc_store *s, const char *key, size_t klen, uint64_t hash,
                        const void *data, size_t vlen, const char *const *tags, size_t ntags,
                        uint64_t expires_at, hc_store_guard_fn guard, void *guard_ctx,
                        bool *stored, hc_error *err);

/* Each returns the number of entries removed. */
size_t hc__store_remove(hc_store *s, const char *key, size_t klen, uint64_t hash);
size_t hc__store_remove_tag(hc_store *s, const char *tag, size_t tlen, uint64_t hash);
size_t hc__store_clear(hc_store *s);
/* Drop every expired entry (reported as expiry evictions). */
size_t hc__store_sweep(hc_store *s);

void hc__store_usage(const hc_store *s, size_t *entries, size_t *bytes);
/* Where the bytes go, summed over every entry (for benchmarks and tests). */
typedef struct hc_store_bytes {
    size_t entries;
    size_t key;          /* key bytes (no NUL), whole */
    size_t key_prefixes; /* of which interned prefixes, not stored in the entries */
    size_t value_data;   /* hc_value_len */
    size_t value_header; /* value headers and NULs inside the entries */
    size_t entry_header; /* entry allocations beyond stored key, value and tag links */
    size_t tag_links;    /* hc_taglink bytes inside entries */
    size_t tables;       /* grown slot and ghost tables */
    size_t counted;      /* bytes_used */
    size_t tag_shared;   /* the rest of counted: tag nodes and names, interned key
                          * prefixes, grown bucket arrays */
} hc_store_bytes;

/* Walks every shard under its lock; a consistent total when no other thread
 * writes meanwhile. */
void hc__store_bytes_split(hc_store *s, hc_store_bytes *out);

/* Check every shard's table, FIFOs and counters against each other (for
 * tests): false with the first broken invariant in why.  Takes each shard's
 * lock in turn. */
bool hc__store_check(hc_store *s, char *why, size_t cap);

#endif
