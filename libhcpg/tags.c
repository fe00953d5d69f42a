/*
 * tags.c - the store's interned tag names, the per-shard tag index (tag ->
 * entries) and the bounded generation table.  Locking rules are in tags.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "tags.h"
#include "value.h"

struct hc_tagname {
    hc_tagname *next; /* dictionary chain; first, like hc_tagnode's */
    uint64_t hash;
    uint32_t refs; /* index nodes naming it; under the dictionary lock */
    uint32_t len;
    char s[];
};

struct hc_tagnode {
    hc_tagnode *next; /* bucket chain */
    hc_tagname *name;
    void *head; /* first entry carrying this tag */
};

#define MIN_BUCKETS 16

static size_t node_cost(void)
{
    return hc__alloc_cost(sizeof(hc_tagnode));
}

static size_t name_cost(size_t len)
{
    return hc__alloc_cost(sizeof(hc_tagname) + len + 1);
}

static size_t buckets_cost(size_t nb)
{
    return nb > MIN_BUCKETS ? hc__alloc_cost(nb * sizeof(void *)) : 0;
}

/* ------------------------------------------------------------------ buckets */

/* Chained tables of nodes whose first member is the chain pointer. */
typedef struct chained {
    void *next;
} chained;

typedef uint64_t (*hash_of_fn)(const void *node);

/* Double the bucket array once it holds more nodes than buckets, if the
 * growth fits the byte bound; failing only costs speed. */
static void maybe_grow(void ***buckets, size_t *nb, size_t count, hash_of_fn hash_of,
                       atomic_size_t *used, size_t limit)
{
    if (count <= *nb)
        return;
    size_t n2 = *nb * 2, extra = buckets_cost(n2) - buckets_cost(*nb);
    if (!hc__bytes_try_add(used, extra, limit))
        return;
    void **b = hc__calloc(n2, sizeof *b);
    if (b == NULL) {
        atomic_fetch_sub(used, extra);
        return;
    }
    for (size_t i = 0; i < *nb; i++) {
        chained *n = (*buckets)[i];
        while (n != NULL) {
            chained *next = n->next;
            size_t j = hash_of(n) & (n2 - 1);
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    free(*buckets);
    *buckets = b;
    *nb = n2;
}

/* An emptied table goes back to its initial size (and uncounts the rest).
 * A shrinking realloc does not move data that matters (every bucket is
 * NULL); if it fails (glibc's shrinking realloc does not, the failure
 * injector of alloc.h can) the larger array stays, still counted. */
static void shrink_if_empty(void ***buckets, size_t *nb, size_t count, atomic_size_t *used)
{
    if (count != 0 || *nb <= MIN_BUCKETS)
        return;
    void **b = hc__realloc(*buckets, MIN_BUCKETS * sizeof *b);
    if (b == NULL)
        return;
    atomic_fetch_sub(used, buckets_cost(*nb));
    *buckets = b;
    *nb = MIN_BUCKETS;
}

/* ------------------------------------------------------------------ interned names */

static uint64_t name_hash(const void *n)
{
    return ((const hc_tagname *)n)->hash;
}

hc_status hc__tagdict_init(hc_tagdict *d, atomic_size_t *used, size_t limit)
{
    d->nbuckets = MIN_BUCKETS;
    d->count = 0;
    d->used = used;
    d->limit = limit;
    d->buckets = hc__calloc(d->nbuckets, sizeof *d->buckets);
    if (d->buckets == NULL)
        return HC_ERR_NOMEM;
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d->buckets);
        return HC_ERR_NOMEM;
    }
    return HC_OK;
}

void hc__tagdict_destroy(hc_tagdict *d)
{
    free(d->buckets); /* empty: every node released its name */
    pthread_mutex_destroy(&d->lock);
}

/* A reference to the interned tag, created when new (its bytes added to
 * *charged); NULL on OOM. */
static hc_tagname *name_acquire(hc_tagdict *d, const char *tag, size_t len, uint64_t hash,
                                size_t *charged)
{
    pthread_mutex_lock(&d->lock);
    hc_tagname **pp = &d->buckets[hash & (d->nbuckets - 1)];
    while (*pp != NULL && !((*pp)->hash == hash && (*pp)->len == len &&
                            memcmp((*pp)->s, tag, len) == 0))
        pp = &(*pp)->next;
    hc_tagname *nm = *pp;
    if (nm == NULL && (nm = hc__malloc(sizeof *nm + len + 1)) != NULL) {
        nm->next = NULL;
        nm->hash = hash;
        nm->refs = 0;
        nm->len = (uint32_t)len;
        memcpy(nm->s, tag, len);
        nm->s[len] = '\0';
        *pp = nm;
        d->count++;
        *charged += name_cost(len);
        maybe_grow((void ***)&d->buckets, &d->nbuckets, d->count, name_hash, d->used, d->limit);
    }
    if (nm != NULL)
        nm->refs++;
    pthread_mutex_unlock(&d->lock);
    return nm;
}

static void name_release(hc_tagdict *d, hc_tagname *nm)
{
    pthread_mutex_lock(&d->lock);
    if (--nm->refs == 0) {
        hc_tagname **pp = &d->buckets[nm->hash & (d->nbuckets - 1)];
        while (*pp != nm)
            pp = &(*pp)->next;
        *pp = nm->next;
        d->count--;
        atomic_fetch_sub(d->used, name_cost(nm->len));
        free(nm);
        shrink_if_empty((void ***)&d->buckets, &d->nbuckets, d->count, d->used);
    }
    pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------ index */

static uint64_t node_hash(const void *n)
{
    return ((const hc_tagnode *)n)->name->hash;
}

hc_status hc__tagindex_init(hc_tagindex *ix, hc_tagdict *dict, hc_taglink_of_fn link_of)
{
    ix->nbuckets = MIN_BUCKETS;
    ix->ntags = 0;
    ix->dict = dict;
    ix->link_of = link_of;
    ix->buckets = hc__calloc(ix->nbuckets, sizeof *ix->buckets);
    return ix->buckets != NULL ? HC_OK : HC_ERR_NOMEM;
}

void hc__tagindex_destroy(hc_tagindex *ix)
{
    if (ix->buckets == NULL)
        return;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        hc_tagnode *n = ix->buckets[i];
        while (n != NULL) {
            hc_tagnode *next = n->next;
            name_release(ix->dict, n->name);
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
    while (*pp != NULL && !((*pp)->name->hash == hash && (*pp)->name->len == len &&
                            memcmp((*pp)->name->s, tag, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void drop_node_if_empty(hc_tagindex *ix, hc_tagnode *node)
{
    if (node->head != NULL)
        return;
    hc_tagnode **pp = &ix->buckets[node->name->hash & (ix->nbuckets - 1)];
    while (*pp != node)
        pp = &(*pp)->next;
    *pp = node->next;
    ix->ntags--;
    name_release(ix->dict, node->name);
    free(node);
    atomic_fetch_sub(ix->dict->used, node_cost());
    shrink_if_empty((void ***)&ix->buckets, &ix->nbuckets, ix->ntags, ix->dict->used);
}

void hc__tagindex_unlink(hc_tagindex *ix, hc_taglink *links, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hc_taglink *l = &links[i];
        if (l->prev != NULL)
            ix->link_of(l->prev, l->node)->next = l->next;
        else
            l->node->head = l->next;
        if (l->next != NULL)
            ix->link_of(l->next, l->node)->prev = l->prev;
        drop_node_if_empty(ix, l->node);
        l->node = NULL;
    }
}

size_t hc__tagindex_cost(const char *const *tags, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += node_cost() + name_cost(strlen(tags[i]));
    return c;
}

hc_status hc__tagindex_link(hc_tagindex *ix, hc_taglink *links, const char *const *tags, size_t n,
                            void *owner, size_t *charged)
{
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(tags[i]);
        uint64_t hash = hc__hash(tags[i], len);
        hc_tagnode **pp = find_slot(ix, tags[i], len, hash);
        hc_tagnode *node = *pp;
        if (node == NULL) {
            node = hc__malloc(sizeof *node);
            hc_tagname *nm = node != NULL ? name_acquire(ix->dict, tags[i], len, hash, &got) : NULL;
            if (nm == NULL) {
                free(node);
                /* unlinking frees and uncounts the nodes and names made so far */
                hc__tagindex_unlink(ix, links, i);
                *charged += got;
                return HC_ERR_NOMEM;
            }
            node->next = NULL;
            node->name = nm;
            node->head = NULL;
            *pp = node;
            ix->ntags++;
            got += node_cost();
        }
        hc_taglink *l = &links[i];
        l->node = node;
        l->prev = NULL;
        l->next = node->head;
        if (node->head != NULL)
            ix->link_of(node->head, node)->prev = owner;
        node->head = owner;
    }
    *charged += got;
    maybe_grow((void ***)&ix->buckets, &ix->nbuckets, ix->ntags, node_hash, ix->dict->used,
               ix->dict->limit);
    return HC_OK;
}

void *hc__tagindex_any(const hc_tagindex *ix, const char *tag, size_t len, uint64_t hash)
{
    hc_tagnode *node = *find_slot(ix, tag, len, hash);
    return node != NULL ? node->head : NULL;
}

/* ------------------------------------------------------------------ generations */

void hc__gens_init(hc_gens *g)
{
    for (size_t i = 0; i < HC_GEN_SLOTS; i++)
        atomic_init(&g->slot[i], 0);
}

/* seq_cst on both sides: a bump that precedes a shard-locked removal must be
 * visible to a loader checking under that shard lock afterwards. */
uint64_t hc__gens_get(const hc_gens *g, uint64_t hash)
{
    return atomic_load((_Atomic uint64_t *)&g->slot[hash & (HC_GEN_SLOTS - 1)]);
}

void hc__gens_bump(hc_gens *g, uint64_t hash)
{
    atomic_fetch_add(&g->slot[hash & (HC_GEN_SLOTS - 1)], 1);
}
