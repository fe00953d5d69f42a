/*
 * tags.h (private) - the tag structures of the cache:
 *
 *  - hc_tagdict: the store's interned tag names, one reference-counted copy
 *    per distinct tag (the references are the shards' index nodes, so a
 *    table-wide tag carried by a million entries is stored once).  Its own
 *    mutex makes it thread-safe; it is taken under a shard lock, never the
 *    other way round.
 *
 *  - hc_tagindex: tag -> entries of one store shard, so hc_invalidate_tag
 *    removes exactly the entries carrying a tag.  Entries embed one
 *    hc_taglink per tag; a node (24 bytes: chain, interned name, first
 *    entry) is created on first use and freed with its last entry.  Not
 *    thread-safe: the owning shard's lock protects it.
 *
 *  - hc_gens: a fixed array of generation counters indexed by hash, for tag
 *    and key generations: a load records them before its loader runs and is
 *    not stored if one changed (cache.c, "Freshness").  Bounded whatever tags
 *    arrive; two tags sharing a slot only cost a harmless extra discard.
 *    Lock-free and thread-safe.
 *
 * Bytes: every node, name and bucket array beyond the initial one is counted
 * in the store's byte counter (*used, at hc__alloc_cost).  Nodes and names
 * are paid from a reservation the caller made beforehand (hc__tagindex_cost);
 * a bucket array grows only when its growth fits under limit (else chains
 * just get longer), so the counter never passes limit.
 */
#ifndef HC_TAGS_H
#define HC_TAGS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef struct hc_tagnode hc_tagnode;
typedef struct hc_tagname hc_tagname;

/* One entry's membership in one tag's list: 24 bytes.  prev/next are the
 * neighbouring owners (entries); their link for the same node is found with
 * the index's link_of. */
typedef struct hc_taglink {
    hc_tagnode *node;
    void *prev, *next;
} hc_taglink;

typedef struct hc_tagdict {
    pthread_mutex_t lock;
    hc_tagname **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    atomic_size_t *used; /* the store's byte counter */
    size_t limit;
} hc_tagdict;

/* owner's link for node (owner carries node's tag). */
typedef hc_taglink *(*hc_taglink_of_fn)(void *owner, const hc_tagnode *node);

typedef struct hc_tagindex {
    hc_tagnode **buckets;
    size_t nbuckets; /* power of two */
    size_t ntags;
    hc_tagdict *dict;
    hc_taglink_of_fn link_of;
} hc_tagindex;

/* HC_ERR_NOMEM or HC_OK. */
hc_status hc__tagdict_init(hc_tagdict *d, atomic_size_t *used, size_t limit);
/* Every index using d must have been destroyed. */
void hc__tagdict_destroy(hc_tagdict *d);

hc_status hc__tagindex_init(hc_tagindex *ix, hc_tagdict *dict, hc_taglink_of_fn link_of);
/* Frees the tag nodes; every link must have been unlinked. */
void hc__tagindex_destroy(hc_tagindex *ix);
/* The most hc__tagindex_link can charge for these tags (all nodes and names new). */
size_t hc__tagindex_cost(const char *const *tags, size_t n);
/* Link owner under tags[0..n) using links[0..n).  The bytes of the nodes and
 * names it creates are added to *charged: the caller has already counted
 * them in *used (see hc__tagindex_cost) and releases the rest of what it
 * counted.  All or nothing: HC_ERR_NOMEM leaves the index as it was, the
 * nodes and names it made freed and uncounted again, and *charged grown by
 * their bytes all the same (the caller releases the rest). */
hc_status hc__tagindex_link(hc_tagindex *ix, hc_taglink *links, const char *const *tags, size_t n,
                            void *owner, size_t *charged);
/* Undo hc__tagindex_link; frees (and uncounts) nodes and names left unused. */
void hc__tagindex_unlink(hc_tagindex *ix, hc_taglink *links, size_t n);
/* Some entry (its owner) carrying tag, or NULL. */
void *hc__tagindex_any(const hc_tagindex *ix, const char *tag, size_t len, uint64_t hash);

#define HC_GEN_SLOTS 4096

typedef struct hc_gens {
    _Atomic uint64_t slot[HC_GEN_SLOTS];
} hc_gens;

void hc__gens_init(hc_gens *g);
uint64_t hc__gens_get(const hc_gens *g, uint64_t hash);
void hc__gens_bump(hc_gens *g, uint64_t hash);

#endif
