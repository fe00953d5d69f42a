/* prefix.c - a store's interned key prefixes (rules in prefix.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "prefix.h"
#include "value.h"

hc_status hc__prefixes_init(hc_prefixes *d, atomic_size_t *used)
{
    memset(d, 0, sizeof *d);
    d->used = used;
    d->cursor = 1;
    for (unsigned k = 0; k < HC_PREFIX_PINNED; k++)
        atomic_init(&d->pinned[k], NULL);
    atomic_init(&d->npinned, 0);
    return pthread_mutex_init(&d->lock, NULL) == 0 ? HC_OK : HC_ERR_NOMEM;
}

void hc__prefixes_destroy(hc_prefixes *d)
{
    /* every entry has released its prefix; free what a leak would leave */
    for (unsigned i = 0; i < HC_PREFIX_IDS; i++)
        free(d->by_id[i]);
    for (unsigned k = 0; k < HC_PREFIX_PINNED; k++)
        free(atomic_load(&d->pinned[k]));
    pthread_mutex_destroy(&d->lock);
}

static hc_prefix *prefix_new(uint64_t h, const char *s, size_t len, unsigned id)
{
    hc_prefix *p = hc__malloc(sizeof *p + len + 1);
    if (p == NULL)
        return NULL;
    p->next = NULL;
    p->hash = h;
    p->refs = 1;
    p->id = (uint16_t)id;
    p->len = (uint16_t)len;
    p->pinned = 0;
    memcpy(p->s, s, len);
    p->s[len] = '\0';
    return p;
}

/* The id of the pinned copy of s[0..len), or 0 (a few short compares: no
 * hash needed). */
static uint16_t pinned_id(hc_prefixes *d, const char *s, size_t len)
{
    unsigned n = atomic_load_explicit(&d->npinned, memory_order_acquire);
    for (unsigned k = 0; k < n; k++) {
        const hc_prefix *p = atomic_load_explicit(&d->pinned[k], memory_order_acquire);
        if (p->len == len && memcmp(p->s, s, len) == 0)
            return p->id;
    }
    return 0;
}

/* p has become popular: keep a copy for the store's life, if there is room
 * (a copy that cannot be made just leaves p counted). */
static void maybe_pin(hc_prefixes *d, hc_prefix *p)
{
    unsigned n = atomic_load_explicit(&d->npinned, memory_order_relaxed);
    if (p->pinned || p->refs < HC_PREFIX_PIN_AFTER || n >= HC_PREFIX_PINNED)
        return;
    hc_prefix *q = prefix_new(p->hash, p->s, p->len, HC_PREFIX_IDS + n);
    if (q == NULL)
        return;
    p->pinned = 1;
    atomic_store_explicit(&d->pinned[n], q, memory_order_release);
    atomic_store_explicit(&d->npinned, n + 1, memory_order_release);
}

size_t hc__prefix_cost(size_t len)
{
    return hc__alloc_cost(sizeof(hc_prefix) + len + 1);
}

uint16_t hc__prefix_intern(hc_prefixes *d, const char *s, size_t len, size_t *charged)
{
    uint16_t id = pinned_id(d, s, len);
    if (id != 0)
        return id;
    uint64_t h = hc__hash(s, len);
    pthread_mutex_lock(&d->lock);
    /* pinned meanwhile? (the copy is made under this lock) */
    if ((id = pinned_id(d, s, len)) != 0)
        goto out;
    hc_prefix **b = &d->buckets[h % HC_PREFIX_BUCKETS];
    for (hc_prefix *p = *b; p != NULL; p = p->next)
        if (p->hash == h && p->len == len && memcmp(p->s, s, len) == 0) {
            p->refs++;
            id = p->id;
            maybe_pin(d, p);
            goto out;
        }
    unsigned free_id = 0;
    for (unsigned k = 0; k < HC_PREFIX_IDS - 1; k++) {
        unsigned i = (d->cursor - 1 + k) % (HC_PREFIX_IDS - 1) + 1;
        if (d->by_id[i] == NULL) {
            free_id = i;
            break;
        }
    }
    if (free_id == 0)
        goto out;
    hc_prefix *p = prefix_new(h, s, len, free_id);
    if (p == NULL)
        goto out;
    p->next = *b;
    *b = p;
    d->by_id[free_id] = p;
    d->cursor = free_id + 1;
    *charged += hc__prefix_cost(len);
    id = p->id;
out:
    pthread_mutex_unlock(&d->lock);
    return id;
}

void hc__prefix_release(hc_prefixes *d, uint16_t id)
{
    if (id == 0 || id >= HC_PREFIX_IDS)
        return;
    pthread_mutex_lock(&d->lock);
    hc_prefix *p = d->by_id[id];
    if (--p->refs == 0) {
        hc_prefix **b = &d->buckets[p->hash % HC_PREFIX_BUCKETS];
        while (*b != p)
            b = &(*b)->next;
        *b = p->next;
        d->by_id[id] = NULL;
        atomic_fetch_sub(d->used, hc__prefix_cost(p->len));
        free(p);
    }
    pthread_mutex_unlock(&d->lock);
}
