/*
 * tags.h (private) - the two tag structures of the cache:
 *
 *  - hc_tagindex: tag -> entries of one store shard, so hc_invalidate_tag
 *    removes exactly the entries carrying a tag.  Entries embed one
 *    hc_taglink per tag; tag nodes are created on first use and freed when
 *    their last entry goes.  Not thread-safe: the owning shard's lock
 *    protects it (every function expects that lock held).
 *
 *  - hc_gens: a fixed array of generation counters indexed by hash, for tag
 *    and key generations (section 2 of the spec).  Bounded whatever tags
 *    arrive; two tags sharing a slot only cost a harmless extra discard.
 *    Lock-free and thread-safe.
 */
#ifndef HC_TAGS_H
#define HC_TAGS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef struct hc_tagnode hc_tagnode;

typedef struct hc_taglink {
    hc_tagnode *node;
    struct hc_taglink *prev, *next;
    void *owner; /* the entry embedding this link */
} hc_taglink;

typedef struct hc_tagindex {
    hc_tagnode **buckets;
    size_t nbuckets; /* power of two */
    size_t ntags;
} hc_tagindex;

/* HC_ERR_NOMEM or HC_OK. */
hc_status hc_tagindex_init(hc_tagindex *ix);
/* Frees the tag nodes; every link must have been unlinked. */
void hc_tagindex_destroy(hc_tagindex *ix);
/* Link owner under tags[0..n) using links[0..n).  All or nothing:
 * HC_ERR_NOMEM leaves the index as it was. */
hc_status hc_tagindex_link(hc_tagindex *ix, hc_taglink *links, const char *const *tags,
                           size_t n, void *owner);
/* Undo hc_tagindex_link; frees tag nodes left without entries. */
void hc_tagindex_unlink(hc_tagindex *ix, hc_taglink *links, size_t n);
/* Some entry (its owner) carrying tag, or NULL. */
void *hc_tagindex_any(const hc_tagindex *ix, const char *tag, size_t len, uint64_t hash);

#define HC_GEN_SLOTS 4096

typedef struct hc_gens {
    _Atomic uint64_t slot[HC_GEN_SLOTS];
} hc_gens;

void hc_gens_init(hc_gens *g);
uint64_t hc_gens_get(const hc_gens *g, uint64_t hash);
void hc_gens_bump(hc_gens *g, uint64_t hash);

#endif
