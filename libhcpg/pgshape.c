/* pgshape.c - the process-wide dictionary of result shapes (pgshape.h). */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "pgshape.h"

#define NBUCKETS 1024u /* per index; a power of two */

static struct {
    pthread_mutex_t lock;
    hc__pgshape *by_id[NBUCKETS], *by_hash[NBUCKETS];
    hc__pgshape *lru_head, *lru_tail; /* most / least recently used */
    size_t count, bytes;
    uint64_t next_id;
} dict = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_id = 1};

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t footprint(const hc__pgshape *s)
{
    return sizeof *s + (size_t)s->nfields * sizeof *s->attrs + s->len;
}

/* Count the fields of valid shape bytes; -1 if not valid. */
static int check(const unsigned char *p, size_t len)
{
    if (p == NULL || len < HC_PGSHAPE_FIXED + 4 || p[0] > 1) return -1;
    uint32_t nfields = get32(p + HC_PGSHAPE_FIXED);
    if (nfields > HC_PGSHAPE_MAX_FIELDS) return -1;
    size_t off = HC_PGSHAPE_FIXED + 4;
    for (uint32_t f = 0; f < nfields; f++) {
        if (len - off < HC_PGSHAPE_FIELD_FIXED) return -1;
        uint32_t nl = get32(p + off);
        if (nl > HC_PGSHAPE_MAX_NAME || len - off - HC_PGSHAPE_FIELD_FIXED < nl) return -1;
        const unsigned char *name = p + off + 4;
        if (name[nl] != '\0' || memchr(name, '\0', nl) != NULL || name[nl + 21] > 1) return -1;
        off += HC_PGSHAPE_FIELD_FIXED + nl;
    }
    return off == len ? (int)nfields : -1;
}

/* A new held shape of valid bytes (nfields of them): one allocation. */
static hc__pgshape *build(const unsigned char *p, size_t len, int nfields)
{
    hc__pgshape *s = hc__malloc(sizeof *s + (size_t)nfields * sizeof *s->attrs + len);
    if (s == NULL) return NULL;
    atomic_init(&s->refs, 1);
    s->id = 0;
    s->attrs = (PGresAttDesc *)(s + 1);
    unsigned char *bytes = (unsigned char *)(s->attrs + nfields);
    memcpy(bytes, p, len);
    s->bytes = bytes;
    s->len = len;
    s->nfields = nfields;
    s->result_format = bytes[0];
    s->settings = (uint64_t)get32(bytes + 1) | (uint64_t)get32(bytes + 5) << 32;
    size_t off = HC_PGSHAPE_FIXED + 4;
    for (int f = 0; f < nfields; f++) {
        uint32_t nl = get32(bytes + off);
        const unsigned char *x = bytes + off + 4 + nl + 1;
        s->attrs[f] = (PGresAttDesc){
            .name = (char *)bytes + off + 4,
            .tableid = (Oid)get32(x),
            .columnid = (int)get32(x + 4),
            .typid = (Oid)get32(x + 8),
            .typlen = (int)get32(x + 12),
            .atttypmod = (int)get32(x + 16),
            .format = x[20],
        };
        off += HC_PGSHAPE_FIELD_FIXED + nl;
    }
    s->next_id = s->next_hash = s->lru_prev = s->lru_next = NULL;
    return s;
}

hc_status hc__pgshape_parse(const void *bytes, size_t len, hc__pgshape **out, hc_error *err)
{
    *out = NULL;
    int nfields = check(bytes, len);
    if (nfields < 0) return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (shape)");
    if ((*out = build(bytes, len, nfields)) == NULL)
        return hc_error_set(err, HC_ERR_NOMEM, "pgcodec: out of memory for a result shape");
    return HC_OK;
}

static hc__pgshape **id_slot(uint64_t id)
{
    hc__pgshape **pp = &dict.by_id[id & (NBUCKETS - 1)];
    while (*pp != NULL && (*pp)->id != id) pp = &(*pp)->next_id;
    return pp;
}

static hc__pgshape **hash_slot(hc__pgshape *s)
{
    hc__pgshape **pp = &dict.by_hash[s->hash & (NBUCKETS - 1)];
    while (*pp != s) pp = &(*pp)->next_hash;
    return pp;
}

/* Under the lock: take s off the recency list. */
static void lru_unlink(hc__pgshape *s)
{
    if (s->lru_prev != NULL) s->lru_prev->lru_next = s->lru_next;
    else dict.lru_head = s->lru_next;
    if (s->lru_next != NULL) s->lru_next->lru_prev = s->lru_prev;
    else dict.lru_tail = s->lru_prev;
}

/* Under the lock: put s first on the recency list. */
static void lru_push(hc__pgshape *s)
{
    s->lru_prev = NULL;
    s->lru_next = dict.lru_head;
    if (dict.lru_head != NULL) dict.lru_head->lru_prev = s;
    else dict.lru_tail = s;
    dict.lru_head = s;
}

/* Under the lock: s was just used. */
static void touch(hc__pgshape *s)
{
    if (dict.lru_head == s) return;
    lru_unlink(s);
    lru_push(s);
}

/* Under the lock: drop s (nobody holds it). */
static void unlink_shape(hc__pgshape *s)
{
    lru_unlink(s);
    *id_slot(s->id) = s->next_id;
    *hash_slot(s) = s->next_hash;
    dict.count--;
    dict.bytes -= footprint(s);
    free(s);
}

/* Under the lock: make room for need more bytes and one more shape by
 * dropping the least recently used shapes nobody holds.  From the tail of the
 * recency list, skipping held shapes (few: held only while a result is
 * decoded or a row view lives), not a scan of the whole dictionary per
 * eviction, which made a full dictionary quadratic. */
static bool make_room(size_t need)
{
    while (dict.count >= HC_PGSHAPE_MAX_SHAPES || dict.bytes + need > HC_PGSHAPE_MAX_BYTES) {
        hc__pgshape *victim = dict.lru_tail;
        while (victim != NULL && atomic_load(&victim->refs) != 0) victim = victim->lru_prev;
        if (victim == NULL) return false;
        unlink_shape(victim);
    }
    return true;
}

uint64_t hc__pgshape_intern(const void *bytes, size_t len)
{
    int nfields = check(bytes, len);
    if (nfields < 0) return 0;
    uint64_t h = hc__hash(bytes, len), id = 0;
    pthread_mutex_lock(&dict.lock);
    for (hc__pgshape *s = dict.by_hash[h & (NBUCKETS - 1)]; s != NULL; s = s->next_hash)
        if (s->hash == h && s->len == len && memcmp(s->bytes, bytes, len) == 0) {
            touch(s);
            id = s->id;
            break;
        }
    pthread_mutex_unlock(&dict.lock);
    if (id != 0) return id;

    /* built outside the lock; another thread may add the same bytes meanwhile:
     * then two ids name equal shapes, which is harmless */
    hc__pgshape *s = build(bytes, len, nfields);
    if (s == NULL) return 0;
    atomic_store(&s->refs, 0);
    s->hash = h;
    pthread_mutex_lock(&dict.lock);
    if (footprint(s) > HC_PGSHAPE_MAX_BYTES || !make_room(footprint(s))) {
        pthread_mutex_unlock(&dict.lock);
        free(s);
        return 0;
    }
    s->id = id = dict.next_id++;
    lru_push(s);
    hc__pgshape **slot = &dict.by_id[id & (NBUCKETS - 1)];
    s->next_id = *slot;
    *slot = s;
    slot = &dict.by_hash[h & (NBUCKETS - 1)];
    s->next_hash = *slot;
    *slot = s;
    dict.count++;
    dict.bytes += footprint(s);
    pthread_mutex_unlock(&dict.lock);
    return id;
}

hc__pgshape *hc__pgshape_get(uint64_t id)
{
    if (id == 0) return NULL;
    pthread_mutex_lock(&dict.lock);
    hc__pgshape *s = *id_slot(id);
    if (s != NULL) {
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
        touch(s);
    }
    pthread_mutex_unlock(&dict.lock);
    return s;
}

void hc__pgshape_release(hc__pgshape *s)
{
    if (s == NULL) return;
    /* a dictionary shape is freed by the dictionary (under its lock, once
     * nobody holds it); a private one by its last holder */
    bool private_shape = s->id == 0; /* read first: once released, the dictionary may free s */
    size_t was = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel);
    if (private_shape && was == 1) free(s);
}

void hc__pgshape_usage(size_t *shapes, size_t *bytes)
{
    pthread_mutex_lock(&dict.lock);
    if (shapes != NULL) *shapes = dict.count;
    if (bytes != NULL) *bytes = dict.bytes;
    pthread_mutex_unlock(&dict.lock);
}

void hc__pgshape_drop_unused(void)
{
    pthread_mutex_lock(&dict.lock);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (hc__pgshape *s = dict.by_id[b], *next; s != NULL; s = next) {
            next = s->next_id;
            if (atomic_load(&s->refs) == 0) unlink_shape(s);
        }
    pthread_mutex_unlock(&dict.lock);
}
