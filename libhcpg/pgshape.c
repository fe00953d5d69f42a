/* pgshape.c - the process-wide dictionary of result shapes (pgshape.h). */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"
#include "pgshape.h"

#define NBUCKETS 1024u /* content index buckets; a power of two */

/*
 * Shapes are never removed: an entry names its shape by id without holding
 * it, so a shape must outlive every entry that could name it.  Lookups by id
 * are lock-free (one acquire load from by_id, published after the shape is
 * complete); the content index and counters are under the lock.
 */
static struct {
    pthread_mutex_t lock;
    _Atomic(hc__pgshape *) by_id[HC_PGSHAPE_MAX_SHAPES + 1]; /* id = index, 0 unused */
    hc__pgshape *by_hash[NBUCKETS];
    size_t count, bytes;
} dict = {.lock = PTHREAD_MUTEX_INITIALIZER};

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
    s->next_hash = NULL;
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

uint64_t hc__pgshape_intern(const void *bytes, size_t len)
{
    int nfields = check(bytes, len);
    if (nfields < 0) return 0;
    uint64_t h = hc__hash(bytes, len), id = 0;
    pthread_mutex_lock(&dict.lock);
    for (hc__pgshape *s = dict.by_hash[h & (NBUCKETS - 1)]; s != NULL; s = s->next_hash)
        if (s->hash == h && s->len == len && memcmp(s->bytes, bytes, len) == 0) {
            id = s->id;
            break;
        }
    size_t need = sizeof(hc__pgshape) + (size_t)nfields * sizeof(PGresAttDesc) + len;
    hc__pgshape *s = NULL;
    /* built under the lock, so one set of bytes gets one id; only loads
     * (cache misses) come here, and only until their shape is known */
    if (id == 0 && dict.count < HC_PGSHAPE_MAX_SHAPES && dict.bytes + need <= HC_PGSHAPE_MAX_BYTES &&
        (s = build(bytes, len, nfields)) != NULL) {
        s->id = id = ++dict.count;
        s->hash = h;
        s->next_hash = dict.by_hash[h & (NBUCKETS - 1)];
        dict.by_hash[h & (NBUCKETS - 1)] = s;
        dict.bytes += footprint(s);
        atomic_store_explicit(&dict.by_id[id], s, memory_order_release);
    }
    pthread_mutex_unlock(&dict.lock);
    return id;
}

hc__pgshape *hc__pgshape_get(uint64_t id)
{
    if (id == 0 || id > HC_PGSHAPE_MAX_SHAPES) return NULL;
    return atomic_load_explicit(&dict.by_id[id], memory_order_acquire);
}

void hc__pgshape_release(hc__pgshape *s)
{
    /* dictionary shapes live as long as the process; a private one is
     * freed by its last holder */
    if (s != NULL && s->id == 0 && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        free(s);
}

void hc__pgshape_usage(size_t *shapes, size_t *bytes)
{
    pthread_mutex_lock(&dict.lock);
    if (shapes != NULL) *shapes = dict.count;
    if (bytes != NULL) *bytes = dict.bytes;
    pthread_mutex_unlock(&dict.lock);
}
