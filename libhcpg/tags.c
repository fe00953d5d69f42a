/*
 * tags.c - the per-shard tag index (tag -> entries) and the bounded
 * generation table.  Locking rules are in tags.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "tags.h"

struct hc_tagnode {
    hc_tagnode *next; /* bucket chain */
    uint64_t hash;
    hc_taglink *head; /* entries carrying this tag */
    size_t len;
    char name[];
};

#define TAGINDEX_MIN_BUCKETS 16

hc_status hc_tagindex_init(hc_tagindex *ix)
{
    ix->nbuckets = TAGINDEX_MIN_BUCKETS;
    ix->ntags = 0;
    ix->buckets = hc__calloc(ix->nbuckets, sizeof *ix->buckets);
    return ix->buckets != NULL ? HC_OK : HC_ERR_NOMEM;
}

void hc_tagindex_destroy(hc_tagindex *ix)
{
    if (ix->buckets == NULL)
        return;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        hc_tagnode *n = ix->buckets[i];
        while (n != NULL) {
            hc_tagnode *next = n->next;
            free(n);
            n = next;
        }
    }
    free(ix->buckets);
    ix->buckets = NULL;
}

static hc_tagnode **find_slot(const hc_tagindex *ix, const char *tag, size_t len, uint64_t hash)
{
    hc_tagnode **pp = &ix->buckets[hash & (ix->nbuckets - 1)];
    while (*pp != NULL &&
           !((*pp)->hash == hash && (*pp)->len == len && memcmp((*pp)->name, tag, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

/* Doubling keeps chains short; failure to grow only costs speed. */
static void maybe_grow(hc_tagindex *ix)
{
    if (ix->ntags <= ix->nbuckets)
        return;
    size_t nb = ix->nbuckets * 2;
    hc_tagnode **b = hc__calloc(nb, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        hc_tagnode *n = ix->buckets[i];
        while (n != NULL) {
            hc_tagnode *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->nbuckets = nb;
}

static void drop_node_if_empty(hc_tagindex *ix, hc_tagnode *node)
{
    if (node->head != NULL)
        return;
    hc_tagnode **pp = find_slot(ix, node->name, node->len, node->hash);
    *pp = node->next;
    ix->ntags--;
    free(node);
}

void hc_tagindex_unlink(hc_tagindex *ix, hc_taglink *links, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hc_taglink *l = &links[i];
        if (l->prev != NULL)
            l->prev->next = l->next;
        else
            l->node->head = l->next;
        if (l->next != NULL)
            l->next->prev = l->prev;
        drop_node_if_empty(ix, l->node);
        l->node = NULL;
    }
}

hc_status hc_tagindex_link(hc_tagindex *ix, hc_taglink *links, const char *const *tags,
                           size_t n, void *owner)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tags[i]);
        uint64_t hash = hc__hash(tags[i], len);
        hc_tagnode **pp = find_slot(ix, tags[i], len, hash);
        hc_tagnode *node = *pp;
        if (node == NULL) {
            node = hc__malloc(sizeof *node + len + 1);
            if (node == NULL) {
                hc_tagindex_unlink(ix, links, i);
                return HC_ERR_NOMEM;
            }
            node->next = NULL;
            node->hash = hash;
            node->head = NULL;
            node->len = len;
            memcpy(node->name, tags[i], len + 1);
            *pp = node;
            ix->ntags++;
        }
        hc_taglink *l = &links[i];
        l->node = node;
        l->owner = owner;
        l->prev = NULL;
        l->next = node->head;
        if (node->head != NULL)
            node->head->prev = l;
        node->head = l;
    }
    maybe_grow(ix);
    return HC_OK;
}

void *hc_tagindex_any(const hc_tagindex *ix, const char *tag, size_t len, uint64_t hash)
{
    hc_tagnode *node = *find_slot(ix, tag, len, hash);
    return node != NULL ? node->head->owner : NULL;
}

/* ------------------------------------------------------------------ generations */

void hc_gens_init(hc_gens *g)
{
    for (size_t i = 0; i < HC_GEN_SLOTS; i++)
        atomic_init(&g->slot[i], 0);
}

/* seq_cst on both sides: a bump that precedes a shard-locked removal must be
 * visible to a loader checking under that shard lock afterwards. */
uint64_t hc_gens_get(const hc_gens *g, uint64_t hash)
{
    return atomic_load((_Atomic uint64_t *)&g->slot[hash & (HC_GEN_SLOTS - 1)]);
}

void hc_gens_bump(hc_gens *g, uint64_t hash)
{
    atomic_fetch_add(&g->slot[hash & (HC_GEN_SLOTS - 1)], 1);
}
