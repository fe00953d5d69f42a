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
 * hit costs one relaxed atomic store and the value's reference count, so
 * hits take no lock (store.h: reader counts and the writer flag).
 *
 * Functions named do_* expect the shard's exclusive lock held.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "key.h"
#include "stats.h"
#include "store.h"
#include "prefix.h"
#include "tags.h"
#include "value.h"

enum { Q_SMALL = 0, Q_MAIN = 1 };
#define FREQ_MAX 3
#define MIN_SLOTS 16
#define SWEEP_SLOTS_PER_PUT 4
#define READER_STRIPES 16u /* power of two */
#define KEY_IS_TAG 1u      /* entry.flags: the key is also one of its tags */
#define KEY_TABLE_TAG 2u   /* entry.flags: it carries its key's table tag (first segment ":*") */
#define HAS_TTL 4u         /* entry.flags: an expiry time precedes the key */

/*
 * An entry is one allocation holding the entry, its value and its key:
 *
 *   [expiry time: 8 bytes, only with HAS_TTL]
 *   [key, without its interned prefix, padded to 8][entry: 16 bytes]
 *   [hc_value: refs, len, data, NUL][padding to 8, tag links: ntags x hc_taglink]
 *
 * The slots point at the entry; its stored key ends right before it (on the
 * line a hit reads anyway, whatever the value's size).  A key of two or more segments ("user:42")
 * has its first segment and ':' ("user:") interned once per store
 * (prefix.h) and stores only the rest ("42"); entry.prefix names the
 * prefix (0: the key is stored whole).  A hit reads the entry's line
 * (length, prefix, frequency, the value's reference count), the prefix
 * (shared, hot) and the stored key right before the entry.  An entry that
 * never expires has no expiry field.  A hit hands out a reference to the
 * embedded value (value.h): the allocation lives until the store's
 * reference and every caller's are released (hc__store_value_free).  Byte
 * costs are listed in store.h.  The hash is not kept: the rare paths that
 * start from an entry (eviction, removal, table growth) hash the key again.
 */
typedef struct entry {
    union {
        struct {
            uint32_t qprev, qnext; /* FIFO neighbours: their slot indices, or NIL */
        };
        struct entry *dead_next; /* once removed: the dead list */
    };
    uint16_t klen;   /* key bytes stored here (without the prefix) */
    uint8_t ntags;   /* <= HC_MAX_TAGS, KEY_IS_TAG's not counted */
    atomic_uchar freq;
    uint8_t queue;   /* Q_*; the hc_evict_reason once removed */
    uint8_t flags;
    uint16_t prefix; /* interned prefix id, 0 = none */
    /* the hc_value follows */
} entry;

_Static_assert(sizeof(entry) == 16, "entries are 16 bytes before their value");
_Static_assert(HC_MAX_KEY_LEN <= UINT16_MAX && HC_MAX_TAGS <= UINT8_MAX &&
                   HC_PREFIX_IDS + HC_PREFIX_PINNED <= UINT16_MAX,
               "entry.klen, entry.ntags and entry.prefix fit");

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* Offset of the tag links from the entry. */
static inline size_t links_offset(size_t vlen)
{
    return ALIGN8(sizeof(entry) + HC__VALUE_HEADER + vlen);
}

/* Bytes before the entry for sklen stored key bytes. */
static inline size_t key_space(size_t sklen)
{
    return ALIGN8(sklen);
}

/* Bytes before the key: its expiry time, if it has one. */
static inline size_t ttl_space(bool ttl)
{
    return ttl ? sizeof(uint64_t) : 0;
}

/* Bytes of an entry storing sklen key bytes and a value of vlen. */
static inline size_t entry_size(size_t sklen, size_t vlen, size_t ntags, bool ttl)
{
    return ttl_space(ttl) + key_space(sklen) +
           (ntags > 0 ? links_offset(vlen) + ntags * sizeof(hc_taglink)
                      : sizeof(entry) + HC__VALUE_HEADER + vlen);
}

/* The key bytes stored in e (e->klen of them, right before it). */
static inline const char *skey_of(const entry *e)
{
    return (const char *)e - key_space(e->klen);
}

/* The start of e's allocation. */
static inline void *base_of(const entry *e)
{
    return (char *)skey_of(e) - ttl_space(e->flags & HAS_TTL);
}

/* Clock ms at which e expires, 0 = never. */
static inline uint64_t expires_of(const entry *e)
{
    uint64_t t = 0;
    if (e->flags & HAS_TTL)
        memcpy(&t, skey_of(e) - sizeof t, sizeof t);
    return t;
}

static inline hc_value *val_of(const entry *e)
{
    return (hc_value *)(void *)((char *)e + sizeof(entry));
}

static inline size_t vlen_of(const entry *e)
{
    return val_of(e)->len & ~HC__VALUE_EMBEDDED;
}

static inline hc_taglink *links_of(const entry *e)
{
    return (hc_taglink *)(void *)((char *)e + links_offset(vlen_of(e)));
}

void hc__store_value_free(hc_value *v)
{
    entry *e = (entry *)(void *)((char *)v - sizeof(entry));
    free(base_of(e));
}

/* What an entry is charged: its one allocation.  Tag nodes and names are
 * charged separately (they are shared), tables likewise. */
static size_t entry_cost(size_t sklen, size_t vlen, size_t ntags, bool ttl)
{
    return hc__alloc_cost(entry_size(sklen, vlen, ntags, ttl));
}

static size_t cost_of(const entry *e)
{
    return entry_cost(e->klen, vlen_of(e), e->ntags, e->flags & HAS_TTL);
}

/*
 * Open addressing with linear probing over four arrays in one allocation:
 * the entry pointers, the ghost fingerprints, a one-byte tag per slot (8
 * bits of the hash that neither the slot index nor the shard uses; 0 =
 * empty) and a one-byte distance from the entry's home slot.  A lookup scans
 * tags (64 to a cache line) and dereferences only the entries whose tag
 * matches (1 in 255 of the others), so the table runs up to 7/8 full; the
 * distance lets a removal shift its cluster back without hashing keys again
 * (DIST_FAR: 255 or more, hash the key).  11 bytes per slot: pointer 8,
 * tag 1, distance 1, ghost 1 (a 2-byte fingerprint per two slots).
 */
#define SLOT_BYTES (sizeof(entry *) + 1 + 1 + 1)
#define DIST_FAR 255u

static inline uint8_t tag_of(uint64_t hash)
{
    uint8_t t = (uint8_t)(hash >> 32);
    return t != 0 ? t : 1;
}

/* A FIFO of entries linked by slot index (4 bytes a link instead of 8): an
 * entry's neighbours are fixed up whenever it moves to another slot. */
#define NIL UINT32_MAX

typedef struct fifo {
    uint32_t head, tail; /* slot indices; insert at head, evict from tail */
    size_t bytes;
} fifo;

/* A shard's table: one allocation (table_new). */
typedef struct table {
    entry **slots;   /* nslots; NULL = empty */
    uint16_t *ghost; /* direct-mapped fingerprints of entries evicted from small; nslots / 2 */
    uint8_t *tags;   /* nslots; 0 = empty */
    uint8_t *dist;   /* nslots; distance from home, DIST_FAR if >= 255 */
} table;

typedef struct shard {
    pthread_rwlock_t lock; /* writers; readers only while a writer is in */
    atomic_int writer;     /* a writer holds or is taking the lock */
    table t;
    size_t nslots; /* power of two, at most 7/8 full (15/16 when memory is short) */
    size_t count;
    size_t bytes;
    fifo q[2];
    size_t sweep_cursor;
    size_t table_tagged; /* entries with KEY_TABLE_TAG */
    const hc_prefixes *prefixes; /* the store's */
    hc_tagindex tagix;
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
    hc_tagdict tagdict;
    hc_prefixes prefixes;
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
    unsigned stripe = hc__counters_stripe() & (READER_STRIPES - 1);
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

unsigned hc__store_shard_index(const hc_store *s, uint64_t hash)
{
    /* high bits pick the shard, low bits the bucket: independent */
    return s->nshards > 1 ? (unsigned)(hash >> s->shard_shift) : 0;
}

unsigned hc__store_shards(const hc_store *s)
{
    return s->nshards;
}

static shard *shard_of(const hc_store *s, uint64_t hash)
{
    return &s->shards[hc__store_shard_index(s, hash)];
}

/* Whether tag is the table tag (hc_key_table_tag: first segment ":*") of a
 * key whose first segment is key[0..seg). */
static bool is_table_tag(const char *tag, size_t tlen, const char *key, size_t seg)
{
    return seg != SIZE_MAX && tlen == seg + 2 && memcmp(tag, key, seg) == 0 && tag[seg] == ':' &&
           tag[seg + 1] == '*';
}

/* Tags an entry links: tags[] without the key (an entity's key is its own
 * tag and is found through the table) and without the key's table tag (an
 * entity's table-wide tag is a flag: invalidating it walks the shards).  seg
 * is the key's first segment (hc__key_first_segment).  Returns the count
 * kept in out; *flags gets KEY_IS_TAG and KEY_TABLE_TAG. */
static size_t tags_to_link(const char *key, size_t klen, size_t seg, const char *const *tags,
                           size_t ntags, const char **out, uint8_t *flags)
{
    size_t n = 0;
    *flags = 0;
    for (size_t i = 0; i < ntags; i++) {
        size_t tlen = strlen(tags[i]);
        if (!(*flags & KEY_IS_TAG) && tlen == klen && memcmp(tags[i], key, klen) == 0)
            *flags |= KEY_IS_TAG;
        else if (!(*flags & KEY_TABLE_TAG) && is_table_tag(tags[i], tlen, key, seg))
            *flags |= KEY_TABLE_TAG;
        else
            out[n++] = tags[i];
    }
    return n;
}

/* Bytes of a shard's table beyond the initial one. */
static size_t table_cost(size_t nslots)
{
    return nslots > MIN_SLOTS ? hc__alloc_cost(nslots * SLOT_BYTES) : 0;
}

/* A zeroed table of n slots in one allocation (slots, ghosts, tags,
 * distances), or 0. */
static int table_new(size_t n, table *t)
{
    char *m = hc__calloc(n, SLOT_BYTES);
    if (m == NULL)
        return 0;
    t->slots = (entry **)(void *)m;
    t->ghost = (uint16_t *)(void *)(m + n * sizeof(entry *));
    t->tags = (uint8_t *)(m + n * sizeof(entry *) + n / 2 * sizeof(uint16_t));
    t->dist = t->tags + n;
    return 1;
}

static hc_taglink *link_of(void *owner, const hc_tagnode *node)
{
    entry *e = owner;
    hc_taglink *l = links_of(e);
    while (l->node != node)
        l++;
    return l;
}

/* ------------------------------------------------------------------ setup */

static hc_status shard_init(hc_store *s, shard *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->q[Q_SMALL].head = sh->q[Q_SMALL].tail = NIL;
    sh->q[Q_MAIN].head = sh->q[Q_MAIN].tail = NIL;
    sh->nslots = MIN_SLOTS;
    sh->prefixes = &s->prefixes;
    if (!table_new(sh->nslots, &sh->t))
        return HC_ERR_NOMEM;
    if (hc__tagindex_init(&sh->tagix, &s->tagdict, link_of) != HC_OK)
        goto fail;
    atomic_init(&sh->writer, 0);
    if (pthread_rwlock_init(&sh->lock, NULL) != 0) {
        hc__tagindex_destroy(&sh->tagix);
        goto fail;
    }
    return HC_OK;
fail:
    free(sh->t.slots);
    return HC_ERR_NOMEM;
}

static void shard_destroy(hc_store *s, shard *sh)
{
    for (size_t i = 0; i < sh->nslots; i++) {
        entry *e = sh->t.slots[i];
        if (e != NULL) {
            hc__tagindex_unlink(&sh->tagix, links_of(e), e->ntags);
            hc__prefix_release(&s->prefixes, e->prefix);
            /* a caller may still hold the value: it frees the entry then */
            hc_value_release(val_of(e));
        }
    }
    hc__tagindex_destroy(&sh->tagix);
    free(sh->t.slots);
    pthread_rwlock_destroy(&sh->lock);
}

hc_store *hc__store_new(const hc_store_config *cfg)
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
    atomic_init(&s->bytes_used, 0);
    atomic_init(&s->entries_used, 0);
    atomic_init(&s->evict_cursor, 0);
    if (hc__tagdict_init(&s->tagdict, &s->bytes_used, cfg->max_bytes) != HC_OK) {
        free(s);
        return NULL;
    }
    if (hc__prefixes_init(&s->prefixes, &s->bytes_used) != HC_OK) {
        hc__tagdict_destroy(&s->tagdict);
        free(s);
        return NULL;
    }
    /* shards sit on their own cache lines: over-allocate and align by hand */
    s->shards_mem = hc__malloc(sizeof(shard) * s->nshards + 63);
    s->reader_stride = (s->nshards * sizeof(atomic_uint) + 63) / 64 * (64 / sizeof(atomic_uint));
    s->readers_mem = s->shards_mem != NULL
                         ? hc__malloc(READER_STRIPES * s->reader_stride * sizeof(atomic_uint) + 63)
                         : NULL;
    if (s->readers_mem == NULL) {
        free(s->shards_mem);
        hc__prefixes_destroy(&s->prefixes);
        hc__tagdict_destroy(&s->tagdict);
        free(s);
        return NULL;
    }
    s->shards = (shard *)(((uintptr_t)s->shards_mem + 63) & ~(uintptr_t)63);
    s->readers = (atomic_uint *)(((uintptr_t)s->readers_mem + 63) & ~(uintptr_t)63);
    for (size_t i = 0; i < READER_STRIPES * s->reader_stride; i++)
        atomic_init(&s->readers[i], 0);
    for (unsigned i = 0; i < s->nshards; i++) {
        if (shard_init(s, &s->shards[i]) != HC_OK) {
            while (i-- > 0)
                shard_destroy(s, &s->shards[i]);
            free(s->readers_mem);
            free(s->shards_mem);
            hc__prefixes_destroy(&s->prefixes);
            hc__tagdict_destroy(&s->tagdict);
            free(s);
            return NULL;
        }
    }
    return s;
}

void hc__store_free(hc_store *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < s->nshards; i++)
        shard_destroy(s, &s->shards[i]);
    hc__prefixes_destroy(&s->prefixes);
    hc__tagdict_destroy(&s->tagdict);
    free(s->readers_mem);
    free(s->shards_mem);
    free(s);
}

/* ------------------------------------------------------------------ queues */

/* The entry in slot i, NULL for NIL. */
static entry *at(const shard *sh, uint32_t i)
{
    return i != NIL ? sh->t.slots[i] : NULL;
}

/* Push the entry in slot i at the head of q. */
static void fifo_push(shard *sh, fifo *q, uint32_t i)
{
    entry *e = sh->t.slots[i];
    e->qprev = NIL;
    e->qnext = q->head;
    if (q->head != NIL)
        sh->t.slots[q->head]->qprev = i;
    else
        q->tail = i;
    q->head = i;
    q->bytes += cost_of(e);
}

static void fifo_unlink(shard *sh, fifo *q, entry *e)
{
    if (e->qprev != NIL)
        sh->t.slots[e->qprev]->qnext = e->qnext;
    else
        q->head = e->qnext;
    if (e->qnext != NIL)
        sh->t.slots[e->qnext]->qprev = e->qprev;
    else
        q->tail = e->qprev;
    q->bytes -= cost_of(e);
}

/* e, in the table and its FIFO, now sits in slot i: point its neighbours
 * (or its queue's ends) there. */
static void fifo_moved(shard *sh, entry *e, uint32_t i)
{
    fifo *q = &sh->q[e->queue];
    if (e->qprev != NIL)
        sh->t.slots[e->qprev]->qnext = i;
    else
        q->head = i;
    if (e->qnext != NIL)
        sh->t.slots[e->qnext]->qprev = i;
    else
        q->tail = i;
}

/* Ghosts: a direct-mapped table of nslots / 2 two-byte fingerprints (hash
 * bits 40-54, bit 0 set: 0 marks an empty slot), indexed by the low bits of
 * the hash.  When the table grows, each ghost is copied to both slots it may
 * belong to (the index bit it lacks is not in the print).  A false match only
 * sends a new entry to main early. */
static uint16_t ghost_print(uint64_t hash)
{
    return (uint16_t)(hash >> 40) | 1;
}

static uint16_t *ghost_slot(shard *sh, uint64_t hash)
{
    return &sh->t.ghost[hash & (sh->nslots / 2 - 1)];
}

static void ghost_add(shard *sh, uint64_t hash)
{
    *ghost_slot(sh, hash) = ghost_print(hash);
}

static int ghost_take(shard *sh, uint64_t hash)
{
    uint16_t *g = ghost_slot(sh, hash);
    if (*g != ghost_print(hash))
        return 0;
    *g = 0;
    return 1;
}

/* ------------------------------------------------------------------ table */

#define NOT_FOUND SIZE_MAX

/* The slot holding key, or NOT_FOUND. */
/* Whether e's key is key[0..klen). */
static inline bool key_eq(const shard *sh, const entry *e, const char *key, size_t klen)
{
    if (e->prefix == 0)
        return e->klen == klen && memcmp(skey_of(e), key, klen) == 0;
    const hc_prefix *p = hc__prefix_get(sh->prefixes, e->prefix);
    return (size_t)p->len + e->klen == klen && memcmp(p->s, key, p->len) == 0 &&
           memcmp(skey_of(e), key + p->len, e->klen) == 0;
}

/* e's whole key, NUL-terminated, into buf (HC_MAX_KEY_LEN + 1 bytes); its length. */
static size_t key_copy(const hc_prefixes *d, const entry *e, char *buf)
{
    size_t n = 0;
    if (e->prefix != 0) {
        const hc_prefix *p = hc__prefix_get(d, e->prefix);
        memcpy(buf, p->s, p->len);
        n = p->len;
    }
    memcpy(buf + n, skey_of(e), e->klen);
    n += e->klen;
    buf[n] = '\0';
    return n;
}

static uint64_t hash_of(const shard *sh, const entry *e)
{
    if (e->prefix == 0)
        return hc__hash(skey_of(e), e->klen);
    char buf[HC_MAX_KEY_LEN + 1];
    return hc__hash(buf, key_copy(sh->prefixes, e, buf));
}

static size_t do_find(const shard *sh, const char *key, size_t klen, uint64_t hash)
{
    size_t mask = sh->nslots - 1;
    uint8_t want = tag_of(hash);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint8_t t = sh->t.tags[i];
        if (t == 0)
            return NOT_FOUND;
        if (t != want)
            continue;
        if (key_eq(sh, sh->t.slots[i], key, klen))
            return i;
    }
}

/* The slot holding e (which is in the table, so in a FIFO): its
 * neighbour's link to it, or its queue's head. */
static size_t do_find_entry(const shard *sh, const entry *e)
{
    return e->qprev != NIL ? sh->t.slots[e->qprev]->qnext : sh->q[e->queue].head;
}

/* Put e (of hash) in the first free slot of its probe sequence (there is
 * one: the table is never full). */
static uint32_t slots_place(const table *t, size_t nslots, entry *e, uint64_t hash)
{
    size_t mask = nslots - 1, home = hash & mask, i = home;
    while (t->tags[i] != 0)
        i = (i + 1) & mask;
    size_t d = (i - home) & mask;
    t->slots[i] = e;
    t->tags[i] = tag_of(hash);
    t->dist[i] = d < DIST_FAR ? (uint8_t)d : DIST_FAR;
    return (uint32_t)i;
}

/* Empty slot i, shifting later members of its cluster back so that every
 * probe sequence stays unbroken (no tombstones).  The entry that was in slot
 * i is out of its FIFO already; each entry shifted has its FIFO neighbours
 * pointed at its new slot. */
static void do_slot_clear(shard *sh, size_t i)
{
    size_t mask = sh->nslots - 1;
    for (size_t j = (i + 1) & mask; sh->t.tags[j] != 0; j = (j + 1) & mask) {
        size_t home = sh->t.dist[j] != DIST_FAR ? (j - sh->t.dist[j]) & mask
                                              : hash_of(sh, sh->t.slots[j]) & mask;
        /* j's entry may fill the hole at i unless its home lies in (i, j] */
        int home_after_hole = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!home_after_hole) {
            size_t d = (i - home) & mask;
            sh->t.slots[i] = sh->t.slots[j];
            sh->t.tags[i] = sh->t.tags[j];
            sh->t.dist[i] = d < DIST_FAR ? (uint8_t)d : DIST_FAR;
            fifo_moved(sh, sh->t.slots[i], (uint32_t)i);
            i = j;
        }
    }
    sh->t.slots[i] = NULL;
    sh->t.tags[i] = 0;
    sh->t.dist[i] = 0;
}

enum room { ROOM_NONE, ROOM_OK, ROOM_NEEDS_BYTES };

/*
 * Make room for one more entry: double the table once it would pass 7/8
 * load.  The growth is counted in bytes_used and must fit under max_bytes;
 * when it does not, the table fills up to 15/16 first and then asks the
 * caller to evict (ROOM_NEEDS_BYTES).  ROOM_NONE when no free slot would
 * remain and nothing can be done (no memory, or allow_full and no bytes).
 * allow_full: nothing is left to evict, take the last free slots.
 */
static enum room do_make_room(hc_store *s, shard *sh, int allow_full)
{
    if ((sh->count + 1) * 8 <= sh->nslots * 7)
        return ROOM_OK;
    size_t nb = sh->nslots * 2, extra = table_cost(nb) - table_cost(sh->nslots);
    if (!hc__bytes_try_add(&s->bytes_used, extra, s->cfg.max_bytes)) {
        if ((sh->count + 1) * 16 <= sh->nslots * 15)
            return ROOM_OK;
        if (!allow_full)
            return ROOM_NEEDS_BYTES;
        return sh->count + 1 < sh->nslots ? ROOM_OK : ROOM_NONE;
    }
    table t;
    /* where each slot's entry goes, to relink the FIFOs (freed at once) */
    uint32_t *moved = hc__malloc(sh->nslots * sizeof *moved);
    if (moved == NULL || !table_new(nb, &t)) {
        free(moved);
        atomic_fetch_sub(&s->bytes_used, extra);
        /* a fuller table is only slower, but one free slot must remain */
        return sh->count + 1 < sh->nslots ? ROOM_OK : ROOM_NONE;
    }
    for (size_t i = 0; i < sh->nslots; i++)
        if (sh->t.tags[i] != 0)
            moved[i] = slots_place(&t, nb, sh->t.slots[i], hash_of(sh, sh->t.slots[i]));
    for (size_t i = 0; i < sh->nslots; i++) {
        if (sh->t.tags[i] == 0)
            continue;
        entry *e = sh->t.slots[i];
        e->qprev = e->qprev != NIL ? moved[e->qprev] : NIL;
        e->qnext = e->qnext != NIL ? moved[e->qnext] : NIL;
    }
    for (int q = Q_SMALL; q <= Q_MAIN; q++) {
        fifo *f = &sh->q[q];
        f->head = f->head != NIL ? moved[f->head] : NIL;
        f->tail = f->tail != NIL ? moved[f->tail] : NIL;
    }
    free(moved);
    size_t ng = sh->nslots / 2;
    for (size_t i = 0; i < ng; i++)
        t.ghost[i] = t.ghost[i + ng] = sh->t.ghost[i];
    free(sh->t.slots);
    sh->t = t;
    sh->nslots = nb;
    return ROOM_OK;
}

/* An emptied shard gives its grown table back (uncounting it).  If the
 * small table cannot be allocated, the grown one stays, still counted. */
static void do_shrink_if_empty(hc_store *s, shard *sh)
{
    if (sh->count != 0 || sh->nslots <= MIN_SLOTS)
        return;
    table t;
    if (!table_new(MIN_SLOTS, &t))
        return;
    free(sh->t.slots);
    sh->t = t;
    atomic_fetch_sub(&s->bytes_used, table_cost(sh->nslots));
    sh->nslots = MIN_SLOTS;
    sh->sweep_cursor = 0;
}

/* Unlink the entry in slot i from table, queue and tag index; queue it for freeing. */
static void do_remove_at(hc_store *s, shard *sh, size_t i, dead_list *dead,
                         hc_evict_reason reason)
{
    entry *e = sh->t.slots[i];
    size_t cost = cost_of(e);
    fifo_unlink(sh, &sh->q[e->queue], e);
    do_slot_clear(sh, i);
    hc__tagindex_unlink(&sh->tagix, links_of(e), e->ntags);
    sh->count--;
    sh->table_tagged -= (e->flags & KEY_TABLE_TAG) != 0;
    sh->bytes -= cost;
    atomic_fetch_sub(&s->bytes_used, cost);
    atomic_fetch_sub(&s->entries_used, 1);
    e->queue = (uint8_t)reason;
    e->dead_next = dead->head;
    dead->head = e;
    do_shrink_if_empty(s, sh);
}

static void do_remove(hc_store *s, shard *sh, entry *e, dead_list *dead, hc_evict_reason reason)
{
    do_remove_at(s, sh, do_find_entry(sh, e), dead, reason);
}

static int is_expired(const entry *e, uint64_t now)
{
    return (e->flags & HAS_TTL) && now >= expires_of(e);
}

/* Drop the store's reference to removed entries (a caller holding the
 * value frees the entry later), reporting evictions; no lock held. */
static void bury(hc_store *s, dead_list *dead)
{
    entry *e = dead->head;
    while (e != NULL) {
        entry *next = e->dead_next;
        if (e->queue != HC_EVICT_NONE && s->cfg.on_evict != NULL) {
            char key[HC_MAX_KEY_LEN + 1];
            size_t klen = key_copy(&s->prefixes, e, key);
            s->cfg.on_evict(s->cfg.evict_ctx, key, hc__hash(key, klen), (hc_evict_reason)e->queue);
        }
        hc__prefix_release(&s->prefixes, e->prefix);
        hc_value_release(val_of(e));
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
        if (small->tail != NIL && (small->bytes * 10 >= sh->bytes || mainq->tail == NIL)) {
            uint32_t i = small->tail;
            entry *e = sh->t.slots[i];
            unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
            if (f > 0 && !is_expired(e, now)) {
                fifo_unlink(sh, small, e);
                atomic_store_explicit(&e->freq, 0, memory_order_relaxed);
                e->queue = Q_MAIN;
                fifo_push(sh, mainq, i);
                continue;
            }
            int expired = is_expired(e, now);
            if (!expired)
                ghost_add(sh, hash_of(sh, e));
            do_remove(s, sh, e, dead, expired ? HC_EVICT_EXPIRED : HC_EVICT_CAPACITY);
            return 1;
        }
        if (mainq->tail == NIL)
            return 0;
        uint32_t i = mainq->tail;
        entry *e = sh->t.slots[i];
        unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
        if (f > 0 && !is_expired(e, now)) {
            fifo_unlink(sh, mainq, e);
            atomic_store_explicit(&e->freq, f - 1, memory_order_relaxed);
            fifo_push(sh, mainq, i);
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

/* Reserve room for one entry of fp bytes, evicting as needed.  0 when
 * nothing is left to evict (the rest is reserved by concurrent puts). */
static int reserve(hc_store *s, size_t fp)
{
    for (;;) {
        if (hc__bytes_try_add(&s->bytes_used, fp, s->cfg.max_bytes)) {
            if (hc__bytes_try_add(&s->entries_used, 1, s->cfg.max_entries))
                return 1;
            atomic_fetch_sub(&s->bytes_used, fp);
        }
        if (!evict_somewhere(s))
            return 0;
    }
}

/* ------------------------------------------------------------------ operations */

/* Drop key if it is (still) expired. */
static void drop_expired(hc_store *s, shard *sh, const char *key, size_t klen, uint64_t hash)
{
    dead_list dead = {NULL};
    write_lock(s, sh);
    size_t i = do_find(sh, key, klen, hash);
    if (i != NOT_FOUND && is_expired(sh->t.slots[i], now_ms(s)))
        do_remove_at(s, sh, i, &dead, HC_EVICT_EXPIRED);
    write_unlock(sh);
    bury(s, &dead);
}

hc_status hc__store_get(hc_store *s, const char *key, size_t klen, uint64_t hash, hc_value **out)
{
    shard *sh = shard_of(s, hash);
    atomic_uint *rd = read_lock(s, sh);
    size_t i = do_find(sh, key, klen, hash);
    if (i == NOT_FOUND) {
        read_unlock(sh, rd);
        return HC_MISS;
    }
    entry *e = sh->t.slots[i];
    /* the clock is read only for entries that can expire */
    if ((e->flags & HAS_TTL) && now_ms(s) >= expires_of(e)) {
        read_unlock(sh, rd);
        drop_expired(s, sh, key, klen, hash);
        return HC_MISS;
    }
    unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
    if (f < FREQ_MAX) /* racing readers may lose a bump: it is only a hint */
        atomic_store_explicit(&e->freq, f + 1, memory_order_relaxed);
    *out = hc_value_retain(val_of(e));
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
        entry *e = sh->t.slots[i];
        if (e == NULL || !(e->flags & HAS_TTL))
            continue;
        if (!have_now) {
            now = now_ms(s);
            have_now = 1;
        }
        if (is_expired(e, now))
            do_remove_at(s, sh, i, dead, HC_EVICT_EXPIRED);
    }
}

/* A new entry holding a copy of the value's bytes, with the store's one reference. */
/* A new entry holding the key after its prefix (prefix: the interned id of
 * key[0..plen), or 0 and plen 0) and a copy of the value's bytes, with the
 * store's one reference. */
static entry *entry_new(const char *key, size_t klen, uint16_t prefix, size_t plen, size_t ntags,
                        uint8_t flags, uint64_t expires_at, const void *data, size_t vlen)
{
    bool ttl = expires_at != 0;
    size_t sklen = klen - plen;
    char *m = hc__malloc(entry_size(sklen, vlen, ntags, ttl));
    if (m == NULL)
        return NULL;
    if (ttl) {
        memcpy(m, &expires_at, sizeof expires_at);
        m += sizeof expires_at;
    }
    memcpy(m, key + plen, sklen);
    memset(m + sklen, 0, key_space(sklen) - sklen);
    entry *e = (entry *)(void *)(m + key_space(sklen));
    e->qprev = e->qnext = NIL;
    e->klen = (uint16_t)sklen;
    e->ntags = (uint8_t)ntags;
    atomic_init(&e->freq, 0);
    e->queue = Q_SMALL;
    e->flags = (uint8_t)(flags | (ttl ? HAS_TTL : 0));
    e->prefix = prefix;
    hc__value_embed(val_of(e), data, vlen);
    return e;
}

/* Free an entry no one else has seen. */
static void entry_free(entry *e)
{
    free(base_of(e));
}

/* Report a put of key refused for want of room as a capacity eviction. */
static void no_room(hc_store *s, const char *key, uint64_t hash)
{
    if (s->cfg.on_evict != NULL)
        s->cfg.on_evict(s->cfg.evict_ctx, key, hash, HC_EVICT_CAPACITY);
}

/*
 * Bytes: the put reserves its entry, its value and the most its tags could
 * cost (every node and name new) before taking the shard lock, so the bound
 * holds whatever happens under it; linking the tags returns what they did
 * not need.  held is what this put still holds of its reservation.
 */
hc_status hc__store_put(hc_store *s, const char *key, size_t klen, uint64_t hash,
                        const void *data, size_t vlen, const char *const *tags, size_t ntags,
                        uint64_t expires_at, hc_store_guard_fn guard, void *guard_ctx,
                        bool *stored, hc_error *err)
{
    *stored = false;
    const char *linked[HC_MAX_TAGS];
    uint8_t flags;
    size_t seg = hc__key_first_segment(key, klen);
    size_t nlinked = tags_to_link(key, klen, seg, tags, ntags, linked, &flags);
    if (vlen > HC_MAX_VALUE_LEN)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "value longer than %zu bytes",
                            HC_MAX_VALUE_LEN);
    size_t whole = entry_cost(klen, vlen, nlinked, expires_at != 0);
    size_t tag_max = hc__tagindex_cost(linked, nlinked);
    size_t held = whole + tag_max;
    if (held > s->cfg.max_bytes)
        return hc_error_set(err, HC_ERR_TOO_LARGE,
                            "entry of %zu bytes exceeds the cache limit of %zu bytes", held,
                            s->cfg.max_bytes);
    /* the key's prefix, interned (when the bound leaves room for a new one) */
    size_t plen = hc__prefix_len(seg);
    size_t pre_max = plen > 0 ? hc__prefix_cost(plen) : 0;
    if (held + pre_max > s->cfg.max_bytes)
        plen = pre_max = 0;
    if (!reserve(s, held + pre_max)) {
        no_room(s, key, hash);
        return HC_OK;
    }
    size_t charged = 0;
    uint16_t prefix = plen > 0 ? hc__prefix_intern(&s->prefixes, key, plen, &charged) : 0;
    if (prefix == 0)
        plen = 0;
    atomic_fetch_sub(&s->bytes_used, pre_max - charged); /* the prefix keeps what it took */
    entry *e = entry_new(key, klen, prefix, plen, nlinked, flags, expires_at, data, vlen);
    if (e == NULL) {
        hc__prefix_release(&s->prefixes, prefix);
        atomic_fetch_sub(&s->bytes_used, held);
        atomic_fetch_sub(&s->entries_used, 1);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory storing an entry");
    }
    size_t own = cost_of(e);
    atomic_fetch_sub(&s->bytes_used, whole - own);
    held = own + tag_max;

    shard *sh = shard_of(s, hash);
    dead_list dead = {NULL};
    hc_status st = HC_OK;
    int allow_full = 0;
    bool report = false; /* refused for want of room: report it once unlocked */
    write_lock(s, sh);
    for (;;) {
        if (guard != NULL && !guard(guard_ctx))
            goto refused;
        enum room r = do_make_room(s, sh, allow_full);
        if (r == ROOM_OK)
            break;
        if (r == ROOM_NONE) {
            if (allow_full)
                report = true;
            else
                st = hc_error_set(err, HC_ERR_NOMEM, "out of memory growing the table");
            goto refused;
        }
        /* the table's growth needs bytes: evict (no lock held) and look again */
        write_unlock(sh);
        allow_full = !evict_somewhere(s);
        write_lock(s, sh);
    }
    charged = 0;
    if (hc__tagindex_link(&sh->tagix, links_of(e), linked, nlinked, e, &charged) != HC_OK) {
        held -= charged; /* the index uncounted what it made */
        st = hc_error_set(err, HC_ERR_NOMEM, "out of memory indexing tags");
        goto refused;
    }
    atomic_fetch_sub(&s->bytes_used, tag_max - charged);
    size_t old = do_find(sh, key, klen, hash);
    if (old != NOT_FOUND)
        do_remove_at(s, sh, old, &dead, HC_EVICT_NONE); /* replaced, not evicted */
    uint32_t at_slot =
        slots_place(&sh->t, sh->nslots, e, hash);
    e->queue = ghost_take(sh, hash) ? Q_MAIN : Q_SMALL;
    fifo_push(sh, &sh->q[e->queue], at_slot);
    sh->count++;
    sh->table_tagged += (e->flags & KEY_TABLE_TAG) != 0;
    sh->bytes += own;
    do_incremental_sweep(s, sh, &dead);
    write_unlock(sh);
    bury(s, &dead);
    *stored = true;
    return HC_OK;

refused:
    write_unlock(sh);
    if (report)
        no_room(s, key, hash);
    atomic_fetch_sub(&s->bytes_used, held);
    atomic_fetch_sub(&s->entries_used, 1);
    entry_free(e);
    hc__prefix_release(&s->prefixes, prefix);
    return st;
}

size_t hc__store_remove(hc_store *s, const char *key, size_t klen, uint64_t hash)
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

/* Remove the entries of sh that carry tag as their table tag (KEY_TABLE_TAG). */
static size_t do_remove_table_tagged(hc_store *s, shard *sh, const char *tag, size_t tlen,
                                     dead_list *dead)
{
    size_t n = 0;
    for (int q = Q_SMALL; q <= Q_MAIN && sh->table_tagged > 0; q++) {
        entry *e = at(sh, sh->q[q].tail);
        while (e != NULL) {
            entry *prev = at(sh, e->qprev); /* its links follow it when slots shift */
            char key[HC_MAX_KEY_LEN + 1];
            size_t klen = (e->flags & KEY_TABLE_TAG) ? key_copy(sh->prefixes, e, key) : 0;
            if ((e->flags & KEY_TABLE_TAG) &&
                is_table_tag(tag, tlen, key, hc__key_first_segment(key, klen))) {
                do_remove(s, sh, e, dead, HC_EVICT_NONE);
                n++;
            }
            e = prev;
        }
    }
    return n;
}

size_t hc__store_remove_tag(hc_store *s, const char *tag, size_t tlen, uint64_t hash)
{
    size_t n = 0;
    bool table_tag = tlen >= 2 && tag[tlen - 2] == ':' && tag[tlen - 1] == '*';
    shard *own = shard_of(s, hash);
    for (unsigned i = 0; i < s->nshards; i++) {
        shard *sh = &s->shards[i];
        dead_list dead = {NULL};
        entry *e;
        write_lock(s, sh);
        while ((e = hc__tagindex_any(&sh->tagix, tag, tlen, hash)) != NULL) {
            do_remove(s, sh, e, &dead, HC_EVICT_NONE);
            n++;
        }
        /* an entity whose key is the tag is not in the index: the table finds it */
        size_t k = sh == own ? do_find(sh, tag, tlen, hash) : NOT_FOUND;
        if (k != NOT_FOUND && (sh->t.slots[k]->flags & KEY_IS_TAG)) {
            do_remove_at(s, sh, k, &dead, HC_EVICT_NONE);
            n++;
        }
        /* entities carrying their table tag as a flag: walk the queues
         * (removals reshuffle the slots, not the queues) */
        if (table_tag && sh->table_tagged > 0)
            n += do_remove_table_tagged(s, sh, tag, tlen, &dead);
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
            entry *e = at(sh, sh->q[q].tail);
            while (e != NULL) {
                entry *prev = at(sh, e->qprev); /* its links follow it when slots shift */
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

size_t hc__store_clear(hc_store *s)
{
    return remove_where(s, 0, HC_EVICT_NONE);
}

size_t hc__store_sweep(hc_store *s)
{
    return remove_where(s, 1, HC_EVICT_EXPIRED);
}

void hc__store_usage(const hc_store *s, size_t *entries, size_t *bytes)
{
    hc_store *m = (hc_store *)s;
    *entries = atomic_load(&m->entries_used);
    *bytes = atomic_load(&m->bytes_used);
}

void hc__store_bytes_split(hc_store *s, hc_store_bytes *out)
{
    memset(out, 0, sizeof *out);
    size_t entries_cost = 0;
    for (unsigned i = 0; i < s->nshards; i++) {
        shard *sh = &s->shards[i];
        write_lock(s, sh);
        for (size_t k = 0; k < sh->nslots; k++) {
            const entry *e = sh->t.slots[k];
            if (e == NULL)
                continue;
            size_t vlen = vlen_of(e), links = e->ntags * sizeof(hc_taglink);
            size_t ecost = cost_of(e);
            size_t plen = e->prefix != 0 ? hc__prefix_get(sh->prefixes, e->prefix)->len : 0;
            out->entries++;
            out->key += plen + e->klen;
            out->key_prefixes += plen;
            out->value_data += vlen;
            out->value_header += HC__VALUE_HEADER;
            out->tag_links += links;
            out->entry_header += ecost - e->klen - links - vlen - HC__VALUE_HEADER;
            entries_cost += cost_of(e);
        }
        out->tables += table_cost(sh->nslots);
        write_unlock(sh);
    }
    out->counted = atomic_load(&s->bytes_used);
    size_t known = entries_cost + out->tables;
    out->tag_shared = out->counted > known ? out->counted - known : 0;
}

/* One shard's invariants; the first broken one is written to why. */
static bool do_check_shard(const shard *sh, char *why, size_t cap)
{
    size_t mask = sh->nslots - 1, in_table = 0, in_fifos = 0, bytes = 0, table_tagged = 0;
    for (size_t i = 0; i < sh->nslots; i++) {
        entry *e = sh->t.slots[i];
        if ((e == NULL) != (sh->t.tags[i] == 0)) {
            snprintf(why, cap, "slot %zu: entry and tag disagree", i);
            return false;
        }
        if (e == NULL)
            continue;
        uint64_t h = hash_of(sh, e);
        size_t home = h & mask, d = (i - home) & mask;
        if (sh->t.tags[i] != tag_of(h) || sh->t.dist[i] != (d < DIST_FAR ? d : DIST_FAR)) {
            snprintf(why, cap, "slot %zu: tag or distance wrong", i);
            return false;
        }
        for (size_t k = home; k != i; k = (k + 1) & mask)
            if (sh->t.tags[k] == 0) {
                snprintf(why, cap, "slot %zu: probe sequence broken at %zu", i, k);
                return false;
            }
        in_table++;
        table_tagged += (e->flags & KEY_TABLE_TAG) != 0;
    }
    for (int q = Q_SMALL; q <= Q_MAIN; q++) {
        const fifo *f = &sh->q[q];
        uint32_t prev = NIL;
        size_t qbytes = 0;
        for (uint32_t i = f->head; i != NIL; i = sh->t.slots[i]->qnext) {
            if (i >= sh->nslots || sh->t.slots[i] == NULL || in_fifos > in_table) {
                snprintf(why, cap, "queue %d: link to slot %u is not an entry", q, i);
                return false;
            }
            const entry *e = sh->t.slots[i];
            if (e->qprev != prev || e->queue != q) {
                snprintf(why, cap, "queue %d: slot %u has prev %u (want %u), queue %u", q, i,
                         e->qprev, prev, e->queue);
                return false;
            }
            prev = i;
            qbytes += cost_of(e);
            in_fifos++;
        }
        if (f->tail != prev || f->bytes != qbytes) {
            snprintf(why, cap, "queue %d: tail %u (want %u), bytes %zu (want %zu)", q, f->tail,
                     prev, f->bytes, qbytes);
            return false;
        }
        bytes += qbytes;
    }
    if (in_table != sh->count || in_fifos != sh->count || bytes != sh->bytes ||
        table_tagged != sh->table_tagged) {
        snprintf(why, cap, "count %zu: %zu in the table, %zu in the queues; bytes %zu vs %zu",
                 sh->count, in_table, in_fifos, sh->bytes, bytes);
        return false;
    }
    return true;
}

bool hc__store_check(hc_store *s, char *why, size_t cap)
{
    bool ok = true;
    size_t entries = 0;
    for (unsigned i = 0; i < s->nshards && ok; i++) {
        shard *sh = &s->shards[i];
        write_lock(s, sh);
        ok = do_check_shard(sh, why, cap);
        entries += sh->count;
        write_unlock(sh);
    }
    if (ok && entries != atomic_load(&s->entries_used)) {
        snprintf(why, cap, "%zu entries in the shards, entries_used %zu", entries,
                 atomic_load(&s->entries_used));
        ok = false;
    }
    return ok;
}
