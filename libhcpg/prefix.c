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
    return pthread_mutex_init(&d->lock, NULL) == 0 ? HC_OK : HC_ERR_NOMEM;
}

void hc__prefixes_destroy(hc_prefixes *d)
{
    /* every entry has released its prefix; free what a leak would leave */
    for (unsigned i = 0; i < HC_PREFIX_IDS; i++)
        free(d->by_id[i]);
    pthread_mutex_destroy(&d->lock);
}

size_t hc__prefix_len(const char *key, size_t klen)
{
    size_t n = klen < HC_PREFIX_MAX_LEN ? klen : HC_PREFIX_MAX_LEN;
    for (size_t i = 0; i < n; i++) {
        if (key[i] == '\\')
            i++;
        else if (key[i] == ':')
            return i + 1;
    }
    return 0;
}

size_t hc__prefix_cost(size_t len)
{
    return hc__alloc_cost(sizeof(hc_prefix) + len + 1);
}

uint16_t hc__prefix_intern(hc_prefixes *d, const char *s, size_t len, size_t *charged)
{
    uint64_t h = hc__hash(s, len);
    uint16_t id = 0;
    pthread_mutex_lock(&d->lock);
    hc_prefix **b = &d->buckets[h % HC_PREFIX_BUCKETS];
    for (hc_prefix *p = *b; p != NULL; p = p->next)
        if (p->hash == h && p->len == len && memcmp(p->s, s, len) == 0) {
            p->refs++;
            id = p->id;
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
    hc_prefix *p = hc__malloc(sizeof *p + len + 1);
    if (p == NULL)
        goto out;
    p->hash = h;
    p->refs = 1;
    p->id = (uint16_t)free_id;
    p->len = (uint16_t)len;
    memcpy(p->s, s, len);
    p->s[len] = '\0';
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
    if (id == 0)
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
