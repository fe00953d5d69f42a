/*
 * store.c - sharded entry table, global byte/entry bound, S3-FIFO eviction
 * and TTL expiry.  Locking rules are written once, in store.h.
 *
 * S3-FIFO (Yang et al., SOSP'23), per shard: new entries enter a small FIFO;
 * an entry reaching the small queue's tail is promoted to the main FIFO if
 * it was hit meanwhile, else evicted and its hash remembered in a ghost
 * table; a re-inserted ghost goes straight to main.  Main is a FIFO with
 * "second chance" via a 2-bit frequency.  A one-pass scan therefore washes
 * through the small queue without displacing the hot entries in main, and a
 * hit costs one relaxed atomic store, so hits only need the shared lock.
 *
 * Functions named do_* expect the shard's exclusive lock held.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "store.h"
#include "tags.h"
#include "value.h"

enum { Q_SMALL = 0, Q_MAIN = 1 };
#define FREQ_MAX 3
#define MIN_BUCKETS 16
#define SWEEP_BUCKETS_PER_PUT 2

typedef struct entry {
    struct entry *chain; /* bucket chain; the dead list once removed */
    struct entry *qprev, *qnext;
    uint64_t hash;
    hc_value *value;
    uint64_t expires; /* clock ms, 0 = never */
    size_t footprint;
    atomic_uchar freq;
    unsigned char queue;
    unsigned char dead_reason; /* hc_evict_reason once removed */
    uint16_t ntags;
    uint32_t klen;
    hc_taglink links[]; /* ntags, then the key and its NUL */
} entry;

static inline char *entry_key(entry *e)
{
    return (char *)(e->links + e->ntags);
}

typedef struct fifo {
    entry *head, *tail; /* insert at head, evict from tail */
    size_t bytes;
} fifo;

typedef struct shard {
    pthread_rwlock_t lock;
    entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t bytes;
    fifo q[2];
    uint64_t *ghost; /* direct-mapped hashes of entries evicted from small */
    size_t nghost;   /* power of two */
    size_t sweep_cursor;
    hc_tagindex tags;
} __attribute__((aligned(64))) shard;

struct hc_store {
    hc_store_config cfg;
    unsigned nshards;
    unsigned shard_shift;
    shard *shards;
    void *shards_mem;
    /* global reservations; written on puts and removals only, never on hits */
    char pad[64]; /* keep the shared counters off the read-mostly fields' line */
    atomic_size_t bytes_used;
    atomic_size_t entries_used;
    atomic_uint evict_cursor;
};

/* Entries removed under a lock, freed (and reported) after it is released. */
typedef struct dead_list {
    entry *head;
} dead_list;

static uint64_t now_ms(const hc_store *s)
{
    return s->cfg.clock(s->cfg.clock_ctx);
}

unsigned hc_store_shard_index(const hc_store *s, uint64_t hash)
{
    /* high bits pick the shard, low bits the bucket: independent */
    return s->nshards > 1 ? (unsigned)(hash >> s->shard_shift) : 0;
}

unsigned hc_store_shards(const hc_store *s)
{
    return s->nshards;
}

static shard *shard_of(const hc_store *s, uint64_t hash)
{
    return &s->shards[hc_store_shard_index(s, hash)];
}

size_t hc_store_footprint(size_t klen, const hc_value *v, const char *const *tags, size_t ntags)
{
    size_t n = sizeof(entry) + ntags * sizeof(hc_taglink) + klen + 1 + hc__value_footprint(v);
    for (size_t i = 0; i < ntags; i++)
        n += strlen(tags[i]) + 1;
    return n;
}

/* ------------------------------------------------------------------ setup */

static hc_status shard_init(shard *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->nbuckets = MIN_BUCKETS;
    sh->nghost = MIN_BUCKETS;
    sh->buckets = hc__calloc(sh->nbuckets, sizeof *sh->buckets);
    sh->ghost = hc__calloc(sh->nghost, sizeof *sh->ghost);
    if (sh->buckets == NULL || sh->ghost == NULL || hc_tagindex_init(&sh->tags) != HC_OK)
        goto fail;
    if (pthread_rwlock_init(&sh->lock, NULL) != 0) {
        hc_tagindex_destroy(&sh->tags);
        goto fail;
    }
    return HC_OK;
fail:
    free(sh->buckets);
    free(sh->ghost);
    return HC_ERR_NOMEM;
}

static void shard_destroy(shard *sh)
{
    for (size_t i = 0; i < sh->nbuckets; i++) {
        entry *e = sh->buckets[i];
        while (e != NULL) {
            entry *next = e->chain;
            hc_tagindex_unlink(&sh->tags, e->links, e->ntags);
            hc_value_release(e->value);
            free(e);
            e = next;
        }
    }
    hc_tagindex_destroy(&sh->tags);
    free(sh->buckets);
    free(sh->ghost);
    pthread_rwlock_destroy(&sh->lock);
}

hc_store *hc_store_new(const hc_store_config *cfg)
{
    hc_store *s = hc__calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->cfg = *cfg;
    s->nshards = cfg->shards;
    unsigned bits = 0;
    while ((1u << bits) < s->nshards)
        bits++;
    s->shard_shift = 64 - (bits ? bits : 1);
    /* shards sit on their own cache lines: over-allocate and align by hand */
    s->shards_mem = hc__malloc(sizeof(shard) * s->nshards + 63);
    if (s->shards_mem == NULL) {
        free(s);
        return NULL;
    }
    s->shards = (shard *)(((uintptr_t)s->shards_mem + 63) & ~(uintptr_t)63);
    atomic_init(&s->bytes_used, 0);
    atomic_init(&s->entries_used, 0);
    atomic_init(&s->evict_cursor, 0);
    for (unsigned i = 0; i < s->nshards; i++) {
        if (shard_init(&s->shards[i]) != HC_OK) {
            while (i-- > 0)
                shard_destroy(&s->shards[i]);
            free(s->shards_mem);
            free(s);
            return NULL;
        }
    }
    return s;
}

void hc_store_free(hc_store *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < s->nshards; i++)
        shard_destroy(&s->shards[i]);
    free(s->shards_mem);
    free(s);
}

/* ------------------------------------------------------------------ queues */

static void fifo_push(fifo *q, entry *e)
{
    e->qprev = NULL;
    e->qnext = q->head;
    if (q->head != NULL)
        q->head->qprev = e;
    else
        q->tail = e;
    q->head = e;
    q->bytes += e->footprint;
}

static void fifo_unlink(fifo *q, entry *e)
{
    if (e->qprev != NULL)
        e->qprev->qnext = e->qnext;
    else
        q->head = e->qnext;
    if (e->qnext != NULL)
        e->qnext->qprev = e->qprev;
    else
        q->tail = e->qprev;
    q->bytes -= e->footprint;
}

static void ghost_add(shard *sh, uint64_t hash)
{
    sh->ghost[hash & (sh->nghost - 1)] = hash | 1; /* 0 marks an empty slot */
}

static int ghost_take(shard *sh, uint64_t hash)
{
    uint64_t *g = &sh->ghost[hash & (sh->nghost - 1)];
    if (*g != (hash | 1))
        return 0;
    *g = 0;
    return 1;
}

/* ------------------------------------------------------------------ table */

static entry **do_find_slot(shard *sh, const char *key, size_t klen, uint64_t hash)
{
    entry **pp = &sh->buckets[hash & (sh->nbuckets - 1)];
    while (*pp != NULL && !((*pp)->hash == hash && (*pp)->klen == klen &&
                            memcmp(entry_key(*pp), key, klen) == 0))
        pp = &(*pp)->chain;
    return pp;
}

/* Grow buckets and ghost table together; a failed allocation only costs speed. */
static void do_maybe_grow(shard *sh)
{
    if (sh->count <= sh->nbuckets)
        return;
    size_t nb = sh->nbuckets * 2;
    entry **b = hc__calloc(nb, sizeof *b);
    uint64_t *g = b != NULL ? hc__calloc(nb, sizeof *g) : NULL;
    if (g == NULL) {
        free(b);
        return;
    }
    for (size_t i = 0; i < sh->nbuckets; i++) {
        entry *e = sh->buckets[i];
        while (e != NULL) {
            entry *next = e->chain;
            e->chain = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    /* slot i holds (hash | 1) of a hash whose low bits are i: the new slot
     * takes its low bits from i (bit 0 of the stored value is the marker) and
     * the next bits from the stored value */
    for (size_t i = 0; i < sh->nghost; i++)
        if (sh->ghost[i] != 0)
            g[(sh->ghost[i] & (nb - 1) & ~(sh->nghost - 1)) | i] = sh->ghost[i];
    free(sh->buckets);
    free(sh->ghost);
    sh->buckets = b;
    sh->nbuckets = nb;
    sh->ghost = g;
    sh->nghost = nb;
}

/* Unlink e (found at *pp) from table, queue and tag index; queue it for freeing. */
static void do_remove_at(hc_store *s, shard *sh, entry **pp, dead_list *dead,
                         hc_evict_reason reason)
{
    entry *e = *pp;
    *pp = e->chain;
    fifo_unlink(&sh->q[e->queue], e);
    hc_tagindex_unlink(&sh->tags, e->links, e->ntags);
    sh->count--;
    sh->bytes -= e->footprint;
    atomic_fetch_sub(&s->bytes_used, e->footprint);
    atomic_fetch_sub(&s->entries_used, 1);
    e->dead_reason = (unsigned char)reason;
    e->chain = dead->head;
    dead->head = e;
}

static void do_remove(hc_store *s, shard *sh, entry *e, dead_list *dead, hc_evict_reason reason)
{
    do_remove_at(s, sh, do_find_slot(sh, entry_key(e), e->klen, e->hash), dead, reason);
}

static int is_expired(const entry *e, uint64_t now)
{
    return e->expires != 0 && now >= e->expires;
}

/* Free removed entries, reporting evictions; no lock held. */
static void bury(hc_store *s, dead_list *dead)
{
    entry *e = dead->head;
    while (e != NULL) {
        entry *next = e->chain;
        if (e->dead_reason != HC_EVICT_NONE && s->cfg.on_evict != NULL)
            s->cfg.on_evict(s->cfg.evict_ctx, entry_key(e), e->hash,
                            (hc_evict_reason)e->dead_reason);
        hc_value_release(e->value);
        free(e);
        e = next;
    }
    dead->head = NULL;
}

/* ------------------------------------------------------------------ eviction */

/*
 * One S3-FIFO eviction in this shard: returns 1 if an entry was evicted.
 * Terminates: each step evicts, promotes (small -> main, freq reset) or
 * spends one unit of a 2-bit frequency.
 */
static int do_evict_one(hc_store *s, shard *sh, dead_list *dead, uint64_t now)
{
    for (;;) {
        fifo *small = &sh->q[Q_SMALL], *mainq = &sh->q[Q_MAIN];
        if (small->tail != NULL && (small->bytes * 10 >= sh->bytes || mainq->tail == NULL)) {
            entry *e = small->tail;
            unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
            if (f > 0 && !is_expired(e, now)) {
                fifo_unlink(small, e);
                atomic_store_explicit(&e->freq, 0, memory_order_relaxed);
                e->queue = Q_MAIN;
                fifo_push(mainq, e);
                continue;
            }
            int expired = is_expired(e, now);
            if (!expired)
                ghost_add(sh, e->hash);
            do_remove(s, sh, e, dead, expired ? HC_EVICT_EXPIRED : HC_EVICT_CAPACITY);
            return 1;
        }
        if (mainq->tail == NULL)
            return 0;
        entry *e = mainq->tail;
        unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
        if (f > 0 && !is_expired(e, now)) {
            fifo_unlink(mainq, e);
            atomic_store_explicit(&e->freq, f - 1, memory_order_relaxed);
            fifo_push(mainq, e);
            continue;
        }
        do_remove(s, sh, e, dead, is_expired(e, now) ? HC_EVICT_EXPIRED : HC_EVICT_CAPACITY);
        return 1;
    }
}

/* Evict one entry from some shard, taking shards in turn; 0 if all are empty. */
static int evict_somewhere(hc_store *s)
{
    uint64_t now = now_ms(s);
    for (unsigned tries = 0; tries < s->nshards; tries++) {
        unsigned i = atomic_fetch_add_explicit(&s->evict_cursor, 1, memory_order_relaxed);
        shard *sh = &s->shards[i & (s->nshards - 1)];
        dead_list dead = {NULL};
        pthread_rwlock_wrlock(&sh->lock);
        int got = do_evict_one(s, sh, &dead, now);
        pthread_rwlock_unlock(&sh->lock);
        bury(s, &dead);
        if (got)
            return 1;
    }
    return 0;
}

/* Add n to *ctr unless that passes limit (0 = no limit). */
static int try_add(atomic_size_t *ctr, size_t n, size_t limit)
{
    size_t cur = atomic_load(ctr);
    do {
        if (limit != 0 && (cur > limit || limit - cur < n))
            return 0;
    } while (!atomic_compare_exchange_weak(ctr, &cur, cur + n));
    return 1;
}

/* Reserve room for one entry of fp bytes, evicting as needed.  0 when
 * nothing is left to evict (the rest is reserved by concurrent puts). */
static int reserve(hc_store *s, size_t fp)
{
    for (;;) {
        if (try_add(&s->bytes_used, fp, s->cfg.max_bytes)) {
            if (try_add(&s->entries_used, 1, s->cfg.max_entries))
                return 1;
            atomic_fetch_sub(&s->bytes_used, fp);
        }
        if (!evict_somewhere(s))
            return 0;
    }
}

static void unreserve(hc_store *s, size_t fp)
{
    atomic_fetch_sub(&s->bytes_used, fp);
    atomic_fetch_sub(&s->entries_used, 1);
}

/* ------------------------------------------------------------------ operations */

/* Drop key if it is (still) expired. */
static void drop_expired(hc_store *s, shard *sh, const char *key, size_t klen, uint64_t hash)
{
    dead_list dead = {NULL};
    pthread_rwlock_wrlock(&sh->lock);
    entry **pp = do_find_slot(sh, key, klen, hash);
    if (*pp != NULL && is_expired(*pp, now_ms(s)))
        do_remove_at(s, sh, pp, &dead, HC_EVICT_EXPIRED);
    pthread_rwlock_unlock(&sh->lock);
    bury(s, &dead);
}

hc_status hc_store_get(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value **out)
{
    shard *sh = shard_of(s, hash);
    pthread_rwlock_rdlock(&sh->lock);
    entry *e = *do_find_slot(sh, key, klen, hash);
    if (e == NULL) {
        pthread_rwlock_unlock(&sh->lock);
        return HC_MISS;
    }
    /* the clock is read only for entries that can expire */
    if (e->expires != 0 && now_ms(s) >= e->expires) {
        pthread_rwlock_unlock(&sh->lock);
        drop_expired(s, sh, key, klen, hash);
        return HC_MISS;
    }
    unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
    if (f < FREQ_MAX) /* racing readers may lose a bump: it is only a hint */
        atomic_store_explicit(&e->freq, f + 1, memory_order_relaxed);
    *out = hc_value_retain(e->value);
    pthread_rwlock_unlock(&sh->lock);
    return HC_OK;
}

/* Examine a few buckets for expired entries: amortised expiry on writes. */
static void do_incremental_sweep(hc_store *s, shard *sh, dead_list *dead)
{
    uint64_t now = 0;
    int have_now = 0;
    for (int i = 0; i < SWEEP_BUCKETS_PER_PUT; i++) {
        size_t b = sh->sweep_cursor++ & (sh->nbuckets - 1);
        entry **pp = &sh->buckets[b];
        while (*pp != NULL) {
            if ((*pp)->expires != 0) {
                if (!have_now) {
                    now = now_ms(s);
                    have_now = 1;
                }
                if (is_expired(*pp, now)) {
                    do_remove_at(s, sh, pp, dead, HC_EVICT_EXPIRED);
                    continue;
                }
            }
            pp = &(*pp)->chain;
        }
    }
}

static entry *entry_new(const char *key, size_t klen, uint64_t hash, size_t ntags,
                        uint64_t expires_at, size_t fp)
{
    entry *e = hc__malloc(sizeof *e + ntags * sizeof(hc_taglink) + klen + 1);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof *e);
    e->hash = hash;
    e->expires = expires_at;
    e->footprint = fp;
    atomic_init(&e->freq, 0);
    e->ntags = (uint16_t)ntags;
    e->klen = (uint32_t)klen;
    memcpy(entry_key(e), key, klen);
    entry_key(e)[klen] = '\0';
    return e;
}

hc_status hc_store_put(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value *v,
                       const char *const *tags, size_t ntags, uint64_t expires_at,
                       hc_store_guard_fn guard, void *guard_ctx, bool *stored, hc_error *err)
{
    *stored = false;
    size_t fp = hc_store_footprint(klen, v, tags, ntags);
    if (fp > s->cfg.max_bytes)
        return hc_error_set(err, HC_ERR_TOO_LARGE,
                            "entry of %zu bytes exceeds the cache limit of %zu bytes", fp,
                            s->cfg.max_bytes);
    entry *e = entry_new(key, klen, hash, ntags, expires_at, fp);
    if (e == NULL)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory storing an entry");
    if (!reserve(s, fp)) {
        if (s->cfg.on_evict != NULL)
            s->cfg.on_evict(s->cfg.evict_ctx, entry_key(e), hash, HC_EVICT_CAPACITY);
        free(e);
        return HC_OK;
    }

    shard *sh = shard_of(s, hash);
    dead_list dead = {NULL};
    hc_status st = HC_OK;
    pthread_rwlock_wrlock(&sh->lock);
    if (guard != NULL && !guard(guard_ctx))
        goto refused;
    if (hc_tagindex_link(&sh->tags, e->links, tags, ntags, e) != HC_OK) {
        st = hc_error_set(err, HC_ERR_NOMEM, "out of memory indexing tags");
        goto refused;
    }
    entry **pp = do_find_slot(sh, key, klen, hash);
    if (*pp != NULL)
        do_remove_at(s, sh, pp, &dead, HC_EVICT_NONE); /* replaced, not evicted */
    pp = &sh->buckets[hash & (sh->nbuckets - 1)];
    e->chain = *pp;
    *pp = e;
    e->value = hc_value_retain(v);
    e->queue = ghost_take(sh, hash) ? Q_MAIN : Q_SMALL;
    fifo_push(&sh->q[e->queue], e);
    sh->count++;
    sh->bytes += fp;
    do_incremental_sweep(s, sh, &dead);
    do_maybe_grow(sh);
    pthread_rwlock_unlock(&sh->lock);
    bury(s, &dead);
    *stored = true;
    return HC_OK;

refused:
    pthread_rwlock_unlock(&sh->lock);
    unreserve(s, fp);
    free(e);
    return st;
}

size_t hc_store_remove(hc_store *s, const char *key, size_t klen, uint64_t hash)
{
    shard *sh = shard_of(s, hash);
    dead_list dead = {NULL};
    size_t n = 0;
    pthread_rwlock_wrlock(&sh->lock);
    entry **pp = do_find_slot(sh, key, klen, hash);
    if (*pp != NULL) {
        do_remove_at(s, sh, pp, &dead, HC_EVICT_NONE);
        n = 1;
    }
    pthread_rwlock_unlock(&sh->lock);
    bury(s, &dead);
    return n;
}

size_t hc_store_remove_tag(hc_store *s, const char *tag, size_t tlen, uint64_t hash)
{
    size_t n = 0;
    for (unsigned i = 0; i < s->nshards; i++) {
        shard *sh = &s->shards[i];
        dead_list dead = {NULL};
        entry *e;
        pthread_rwlock_wrlock(&sh->lock);
        while ((e = hc_tagindex_any(&sh->tags, tag, tlen, hash)) != NULL) {
            do_remove(s, sh, e, &dead, HC_EVICT_NONE);
            n++;
        }
        pthread_rwlock_unlock(&sh->lock);
        bury(s, &dead);
    }
    return n;
}

/* Remove every entry of every shard for which drop(e, now) holds. */
static size_t remove_where(hc_store *s, int expired_only, hc_evict_reason reason)
{
    size_t n = 0;
    for (unsigned i = 0; i < s->nshards; i++) {
        shard *sh = &s->shards[i];
        dead_list dead = {NULL};
        pthread_rwlock_wrlock(&sh->lock);
        uint64_t now = expired_only ? now_ms(s) : 0;
        for (size_t b = 0; b < sh->nbuckets; b++) {
            entry **pp = &sh->buckets[b];
            while (*pp != NULL) {
                if (!expired_only || is_expired(*pp, now)) {
                    do_remove_at(s, sh, pp, &dead, reason);
                    n++;
                } else {
                    pp = &(*pp)->chain;
                }
            }
        }
        pthread_rwlock_unlock(&sh->lock);
        bury(s, &dead);
    }
    return n;
}

size_t hc_store_clear(hc_store *s)
{
    return remove_where(s, 0, HC_EVICT_NONE);
}

size_t hc_store_sweep(hc_store *s)
{
    return remove_where(s, 1, HC_EVICT_EXPIRED);
}

void hc_store_usage(const hc_store *s, size_t *entries, size_t *bytes)
{
    hc_store *m = (hc_store *)s;
    *entries = atomic_load(&m->entries_used);
    *bytes = atomic_load(&m->bytes_used);
}
