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
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "stats.h"
#include "store.h"
#include "tags.h"
#include "value.h"

enum { Q_SMALL = 0, Q_MAIN = 1 };
#define FREQ_MAX 3
#define MIN_SLOTS 16
#define SWEEP_SLOTS_PER_PUT 4
#define READER_STRIPES 16u /* power of two */

/*
 * An entry is one allocation: the hot header (all a hit reads), the key and
 * its NUL right behind it so that the key compare stays on the entry's first
 * cache line, then the cold part (queues, accounting, tag links) that only
 * writers touch.
 */
typedef struct entry {
    uint64_t expires; /* clock ms, 0 = never */
    uint32_t klen;
    uint16_t ntags;
    atomic_uchar freq;
    unsigned char queue;
    char key[]; /* klen bytes and a NUL, then the entry_cold */
} entry;

typedef struct entry_cold {
    hc_value *value; /* also in the entry's slot */
    struct entry *qprev, *qnext;
    struct entry *dead_next; /* the dead list once removed */
    uint64_t hash;
    size_t footprint;
    unsigned char dead_reason; /* hc_evict_reason once removed */
    hc_taglink links[];        /* ntags */
} entry_cold;

#define COLD_ALIGN _Alignof(entry_cold)

static inline size_t cold_offset(size_t klen)
{
    return (sizeof(entry) + klen + 1 + COLD_ALIGN - 1) & ~(COLD_ALIGN - 1);
}

static inline size_t entry_size(size_t klen, size_t ntags)
{
    return cold_offset(klen) + sizeof(entry_cold) + ntags * sizeof(hc_taglink);
}

static inline entry_cold *cold(const entry *e)
{
    return (entry_cold *)((char *)e + cold_offset(e->klen));
}

/* Open addressing with linear probing: a lookup scans the full hashes in
 * one or two slot lines and dereferences only the entry whose hash matches.
 * The slot repeats the entry's value pointer so that a hit can fetch the
 * value's line (its reference count) while it compares the key. */
typedef struct slot {
    uint64_t hash;
    entry *e; /* NULL = empty */
    hc_value *v;
} slot;

typedef struct fifo {
    entry *head, *tail; /* insert at head, evict from tail */
    size_t bytes;
} fifo;

typedef struct shard {
    pthread_rwlock_t lock; /* writers; readers only while a writer is in */
    atomic_int writer;     /* a writer holds or is taking the lock */
    slot *slots;
    size_t nslots; /* power of two, at most 3/4 full */
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
    /* reader counts: readers[stripe * reader_stride + shard], each stripe's
     * counts on lines of their own, so readers in different threads write
     * different lines */
    atomic_uint *readers;
    void *readers_mem;
    size_t reader_stride;
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

/*
 * Shard locking.  A reader announces itself in its thread's stripe of the
 * reader counts and then checks the shard's writer flag; a writer takes the
 * rwlock exclusively, raises the flag and then waits for the shard's counts
 * to drain.  Both sides write before they read (sequentially consistent), so
 * either the reader sees the flag or the writer sees the reader's count.  A
 * reader that sees the flag withdraws and waits on the rwlock (shared), so
 * readers never spin and never share a written cache line with each other.
 * read_lock returns the count it raised (fast path) or NULL when it holds the
 * rwlock shared instead.
 */
static atomic_uint *reader_count(const hc_store *s, const shard *sh)
{
    unsigned stripe = hc_counters_stripe() & (READER_STRIPES - 1);
    return &s->readers[stripe * s->reader_stride + (size_t)(sh - s->shards)];
}

static atomic_uint *read_lock(const hc_store *s, shard *sh)
{
    atomic_uint *cnt = reader_count(s, sh);
    atomic_fetch_add(cnt, 1);
    if (atomic_load(&sh->writer) == 0)
        return cnt;
    atomic_fetch_sub_explicit(cnt, 1, memory_order_release);
    pthread_rwlock_rdlock(&sh->lock);
    return NULL;
}

static void read_unlock(shard *sh, atomic_uint *cnt)
{
    if (cnt != NULL)
        atomic_fetch_sub_explicit(cnt, 1, memory_order_release);
    else
        pthread_rwlock_unlock(&sh->lock);
}

static void write_lock(const hc_store *s, shard *sh)
{
    pthread_rwlock_wrlock(&sh->lock);
    atomic_store(&sh->writer, 1);
    size_t idx = (size_t)(sh - s->shards);
    for (unsigned k = 0; k < READER_STRIPES; k++) {
        /* fast readers hold the shard for one lookup: a short wait, but one
         * of them may be preempted, so give the CPU away while waiting.
         * seq_cst: this load must not pass the store of the flag */
        for (unsigned spins = 0; atomic_load(&s->readers[k * s->reader_stride + idx]) != 0;
             spins++)
            if (spins >= 64)
                sched_yield();
    }
}

static void write_unlock(shard *sh)
{
    atomic_store_explicit(&sh->writer, 0, memory_order_release);
    pthread_rwlock_unlock(&sh->lock);
}

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
    /* the padding before the cold part (< 8 bytes) is left out, like the
     * allocator's rounding, so that the count grows by one per key byte */
    size_t n = sizeof(entry) + klen + 1 + sizeof(entry_cold) + ntags * sizeof(hc_taglink) +
               hc__value_footprint(v);
    for (size_t i = 0; i < ntags; i++)
        n += strlen(tags[i]) + 1;
    return n;
}

/* ------------------------------------------------------------------ setup */

static hc_status shard_init(shard *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->nslots = MIN_SLOTS;
    sh->nghost = MIN_SLOTS;
    sh->slots = hc__calloc(sh->nslots, sizeof *sh->slots);
    sh->ghost = hc__calloc(sh->nghost, sizeof *sh->ghost);
    if (sh->slots == NULL || sh->ghost == NULL || hc_tagindex_init(&sh->tags) != HC_OK)
        goto fail;
    atomic_init(&sh->writer, 0);
    if (pthread_rwlock_init(&sh->lock, NULL) != 0) {
        hc_tagindex_destroy(&sh->tags);
        goto fail;
    }
    return HC_OK;
fail:
    free(sh->slots);
    free(sh->ghost);
    return HC_ERR_NOMEM;
}

static void shard_destroy(shard *sh)
{
    for (size_t i = 0; i < sh->nslots; i++) {
        entry *e = sh->slots[i].e;
        if (e != NULL) {
            hc_tagindex_unlink(&sh->tags, cold(e)->links, e->ntags);
            hc_value_release(cold(e)->value);
            free(e);
        }
    }
    hc_tagindex_destroy(&sh->tags);
    free(sh->slots);
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
    s->reader_stride = (s->nshards * sizeof(atomic_uint) + 63) / 64 * (64 / sizeof(atomic_uint));
    s->readers_mem = hc__malloc(READER_STRIPES * s->reader_stride * sizeof(atomic_uint) + 63);
    if (s->readers_mem == NULL) {
        free(s->shards_mem);
        free(s);
        return NULL;
    }
    s->readers = (atomic_uint *)(((uintptr_t)s->readers_mem + 63) & ~(uintptr_t)63);
    for (size_t i = 0; i < READER_STRIPES * s->reader_stride; i++)
        atomic_init(&s->readers[i], 0);
    atomic_init(&s->bytes_used, 0);
    atomic_init(&s->entries_used, 0);
    atomic_init(&s->evict_cursor, 0);
    for (unsigned i = 0; i < s->nshards; i++) {
        if (shard_init(&s->shards[i]) != HC_OK) {
            while (i-- > 0)
                shard_destroy(&s->shards[i]);
            free(s->readers_mem);
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
    free(s->readers_mem);
    free(s->shards_mem);
    free(s);
}

/* ------------------------------------------------------------------ queues */

static void fifo_push(fifo *q, entry *e)
{
    entry_cold *c = cold(e);
    c->qprev = NULL;
    c->qnext = q->head;
    if (q->head != NULL)
        cold(q->head)->qprev = e;
    else
        q->tail = e;
    q->head = e;
    q->bytes += c->footprint;
}

static void fifo_unlink(fifo *q, entry *e)
{
    entry_cold *c = cold(e);
    if (c->qprev != NULL)
        cold(c->qprev)->qnext = c->qnext;
    else
        q->head = c->qnext;
    if (c->qnext != NULL)
        cold(c->qnext)->qprev = c->qprev;
    else
        q->tail = c->qprev;
    q->bytes -= c->footprint;
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

#define NOT_FOUND SIZE_MAX

/* The slot holding key, or NOT_FOUND. */
static size_t do_find(const shard *sh, const char *key, size_t klen, uint64_t hash)
{
    size_t mask = sh->nslots - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const slot *sl = &sh->slots[i];
        if (sl->e == NULL)
            return NOT_FOUND;
        if (sl->hash != hash)
            continue;
        __builtin_prefetch(sl->v, 1);
        if (sl->e->klen == klen && memcmp(sl->e->key, key, klen) == 0)
            return i;
    }
}

/* The slot holding e (which is in the table). */
static size_t do_find_entry(const shard *sh, const entry *e)
{
    size_t mask = sh->nslots - 1;
    size_t i = cold(e)->hash & mask;
    while (sh->slots[i].e != e)
        i = (i + 1) & mask;
    return i;
}

/* Put e in the first free slot of its probe sequence (there is one: the
 * table is never full). */
static void slots_place(slot *slots, size_t nslots, slot sl)
{
    size_t mask = nslots - 1;
    size_t i = sl.hash & mask;
    while (slots[i].e != NULL)
        i = (i + 1) & mask;
    slots[i] = sl;
}

/* Empty slot i, shifting later members of its cluster back so that every
 * probe sequence stays unbroken (no tombstones). */
static void do_slot_clear(shard *sh, size_t i)
{
    size_t mask = sh->nslots - 1;
    for (size_t j = (i + 1) & mask; sh->slots[j].e != NULL; j = (j + 1) & mask) {
        size_t home = sh->slots[j].hash & mask;
        /* j's entry may fill the hole at i unless its home lies in (i, j] */
        int home_after_hole = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!home_after_hole) {
            sh->slots[i] = sh->slots[j];
            i = j;
        }
    }
    sh->slots[i] = (slot){0, NULL, NULL};
}

/* Double slots and ghost table once a new entry would pass 3/4 load.
 * 0 only when the table is full and could not grow. */
static int do_make_room(shard *sh)
{
    if ((sh->count + 1) * 4 <= sh->nslots * 3)
        return 1;
    size_t nb = sh->nslots * 2;
    slot *b = hc__calloc(nb, sizeof *b);
    uint64_t *g = b != NULL ? hc__calloc(nb, sizeof *g) : NULL;
    if (g == NULL) {
        free(b);
        /* a fuller table is only slower, but one free slot must remain */
        return sh->count + 1 < sh->nslots;
    }
    for (size_t i = 0; i < sh->nslots; i++)
        if (sh->slots[i].e != NULL)
            slots_place(b, nb, sh->slots[i]);
    /* slot i holds (hash | 1) of a hash whose low bits are i: the new slot
     * takes its low bits from i (bit 0 of the stored value is the marker) and
     * the next bits from the stored value */
    for (size_t i = 0; i < sh->nghost; i++)
        if (sh->ghost[i] != 0)
            g[(sh->ghost[i] & (nb - 1) & ~(sh->nghost - 1)) | i] = sh->ghost[i];
    free(sh->slots);
    free(sh->ghost);
    sh->slots = b;
    sh->nslots = nb;
    sh->ghost = g;
    sh->nghost = nb;
    return 1;
}

/* Unlink the entry in slot i from table, queue and tag index; queue it for freeing. */
static void do_remove_at(hc_store *s, shard *sh, size_t i, dead_list *dead,
                         hc_evict_reason reason)
{
    entry *e = sh->slots[i].e;
    entry_cold *c = cold(e);
    do_slot_clear(sh, i);
    fifo_unlink(&sh->q[e->queue], e);
    hc_tagindex_unlink(&sh->tags, c->links, e->ntags);
    sh->count--;
    sh->bytes -= c->footprint;
    atomic_fetch_sub(&s->bytes_used, c->footprint);
    atomic_fetch_sub(&s->entries_used, 1);
    c->dead_reason = (unsigned char)reason;
    c->dead_next = dead->head;
    dead->head = e;
}

static void do_remove(hc_store *s, shard *sh, entry *e, dead_list *dead, hc_evict_reason reason)
{
    do_remove_at(s, sh, do_find_entry(sh, e), dead, reason);
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
        entry_cold *c = cold(e);
        entry *next = c->dead_next;
        if (c->dead_reason != HC_EVICT_NONE && s->cfg.on_evict != NULL)
            s->cfg.on_evict(s->cfg.evict_ctx, e->key, c->hash, (hc_evict_reason)c->dead_reason);
        hc_value_release(cold(e)->value);
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
                ghost_add(sh, cold(e)->hash);
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
        write_lock(s, sh);
        int got = do_evict_one(s, sh, &dead, now);
        write_unlock(sh);
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
    write_lock(s, sh);
    size_t i = do_find(sh, key, klen, hash);
    if (i != NOT_FOUND && is_expired(sh->slots[i].e, now_ms(s)))
        do_remove_at(s, sh, i, &dead, HC_EVICT_EXPIRED);
    write_unlock(sh);
    bury(s, &dead);
}

hc_status hc_store_get(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value **out)
{
    shard *sh = shard_of(s, hash);
    atomic_uint *rd = read_lock(s, sh);
    size_t i = do_find(sh, key, klen, hash);
    if (i == NOT_FOUND) {
        read_unlock(sh, rd);
        return HC_MISS;
    }
    entry *e = sh->slots[i].e;
    /* the clock is read only for entries that can expire */
    if (e->expires != 0 && now_ms(s) >= e->expires) {
        read_unlock(sh, rd);
        drop_expired(s, sh, key, klen, hash);
        return HC_MISS;
    }
    unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
    if (f < FREQ_MAX) /* racing readers may lose a bump: it is only a hint */
        atomic_store_explicit(&e->freq, f + 1, memory_order_relaxed);
    *out = hc_value_retain(sh->slots[i].v);
    read_unlock(sh, rd);
    return HC_OK;
}

/* Examine a few slots for expired entries: amortised expiry on writes.  A
 * removal may shift an unexamined entry backwards past the cursor: it is
 * only examined on the cursor's next round. */
static void do_incremental_sweep(hc_store *s, shard *sh, dead_list *dead)
{
    uint64_t now = 0;
    int have_now = 0;
    for (int k = 0; k < SWEEP_SLOTS_PER_PUT; k++) {
        size_t i = sh->sweep_cursor++ & (sh->nslots - 1);
        entry *e = sh->slots[i].e;
        if (e == NULL || e->expires == 0)
            continue;
        if (!have_now) {
            now = now_ms(s);
            have_now = 1;
        }
        if (is_expired(e, now))
            do_remove_at(s, sh, i, dead, HC_EVICT_EXPIRED);
    }
}

static entry *entry_new(const char *key, size_t klen, uint64_t hash, size_t ntags,
                        uint64_t expires_at, size_t fp)
{
    entry *e = hc__malloc(entry_size(klen, ntags));
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof *e);
    e->expires = expires_at;
    atomic_init(&e->freq, 0);
    e->ntags = (uint16_t)ntags;
    e->klen = (uint32_t)klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    entry_cold *c = cold(e);
    memset(c, 0, sizeof *c);
    c->hash = hash;
    c->footprint = fp;
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
            s->cfg.on_evict(s->cfg.evict_ctx, e->key, hash, HC_EVICT_CAPACITY);
        free(e);
        return HC_OK;
    }

    shard *sh = shard_of(s, hash);
    dead_list dead = {NULL};
    hc_status st = HC_OK;
    write_lock(s, sh);
    if (guard != NULL && !guard(guard_ctx))
        goto refused;
    if (hc_tagindex_link(&sh->tags, cold(e)->links, tags, ntags, e) != HC_OK) {
        st = hc_error_set(err, HC_ERR_NOMEM, "out of memory indexing tags");
        goto refused;
    }
    if (!do_make_room(sh)) {
        hc_tagindex_unlink(&sh->tags, cold(e)->links, ntags);
        st = hc_error_set(err, HC_ERR_NOMEM, "out of memory growing the table");
        goto refused;
    }
    size_t old = do_find(sh, key, klen, hash);
    if (old != NOT_FOUND)
        do_remove_at(s, sh, old, &dead, HC_EVICT_NONE); /* replaced, not evicted */
    slots_place(sh->slots, sh->nslots, (slot){hash, e, v});
    cold(e)->value = hc_value_retain(v);
    e->queue = ghost_take(sh, hash) ? Q_MAIN : Q_SMALL;
    fifo_push(&sh->q[e->queue], e);
    sh->count++;
    sh->bytes += fp;
    do_incremental_sweep(s, sh, &dead);
    write_unlock(sh);
    bury(s, &dead);
    *stored = true;
    return HC_OK;

refused:
    write_unlock(sh);
    unreserve(s, fp);
    free(e);
    return st;
}

size_t hc_store_remove(hc_store *s, const char *key, size_t klen, uint64_t hash)
{
    shard *sh = shard_of(s, hash);
    dead_list dead = {NULL};
    size_t n = 0;
    write_lock(s, sh);
    size_t i = do_find(sh, key, klen, hash);
    if (i != NOT_FOUND) {
        do_remove_at(s, sh, i, &dead, HC_EVICT_NONE);
        n = 1;
    }
    write_unlock(sh);
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
        write_lock(s, sh);
        while ((e = hc_tagindex_any(&sh->tags, tag, tlen, hash)) != NULL) {
            do_remove(s, sh, e, &dead, HC_EVICT_NONE);
            n++;
        }
        write_unlock(sh);
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
        write_lock(s, sh);
        uint64_t now = expired_only ? now_ms(s) : 0;
        /* walk the queues: removals reshuffle the slots, not the queues */
        for (int q = Q_SMALL; q <= Q_MAIN; q++) {
            entry *e = sh->q[q].tail;
            while (e != NULL) {
                entry *prev = cold(e)->qprev;
                if (!expired_only || is_expired(e, now)) {
                    do_remove(s, sh, e, &dead, reason);
                    n++;
                }
                e = prev;
            }
        }
        write_unlock(sh);
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
