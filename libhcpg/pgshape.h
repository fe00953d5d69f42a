/*
 * pgshape.h (private) - result shapes stored once: the column metadata of a
 * cached query result (the result format and session settings it was loaded
 * under, then per column its name, table OID, column number, type OID,
 * size, typmod and format) lives in one process-wide dictionary, keyed by
 * its bytes, and an encoded result (pgcodec.h) stores only the shape's id
 * and its cells.
 *
 * Shape bytes, all integers little-endian:
 *   u8 result_format(0|1) u64 settings u32 nfields
 *   nfields x { u32 namelen, name bytes, NUL, u32 tableid, i32 columnid,
 *               u32 typid, i32 typlen, i32 typmod, u8 format(0|1) }
 *
 * An entry names its shape by id without holding it (a cached hc_value has
 * no destructor through which it could give a reference back), so shapes
 * are never removed: the dictionary holds at most HC_PGSHAPE_MAX_SHAPES
 * shapes and HC_PGSHAPE_MAX_BYTES bytes of them for the life of the process,
 * and a result whose shape no longer fits stores it inline instead.  Ids
 * (1..HC_PGSHAPE_MAX_SHAPES) are never reused.  A shape parsed from inline
 * bytes is private and reference-counted: its holders release it.
 *
 * Thread-safety: every function is thread-safe.  Lookups by id take no lock
 * (hits read shapes concurrently without contention); adding a shape takes
 * the dictionary's mutex.
 */
#ifndef HC_PGSHAPE_H
#define HC_PGSHAPE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "hydracache/cache.h"

#define HC_PGSHAPE_MAX_SHAPES 4096
#define HC_PGSHAPE_MAX_BYTES ((size_t)4 << 20)
#define HC_PGSHAPE_MAX_FIELDS 1664   /* PostgreSQL's MaxTupleAttributeNumber */
#define HC_PGSHAPE_MAX_NAME 1024     /* column name bytes */
#define HC_PGSHAPE_FIXED 9u          /* result_format, settings */
#define HC_PGSHAPE_FIELD_FIXED 26u   /* namelen, NUL, 5 x 4 bytes, format */

typedef struct hc__pgshape {
    atomic_size_t refs;         /* holders of a private shape (unused in the dictionary) */
    uint64_t id;                /* 0: a private shape (not in the dictionary) */
    int result_format;
    uint64_t settings;
    int nfields;
    PGresAttDesc *attrs;        /* nfields; names point into bytes */
    size_t len;
    const unsigned char *bytes; /* the shape bytes (in the same allocation) */
    /* dictionary bookkeeping, under its lock */
    uint64_t hash;
    struct hc__pgshape *next_hash;
} hc__pgshape;

/*
 * Check shape bytes as strictly as any cached input and make a private,
 * held shape of them (release it).  HC_ERR_CODEC, HC_ERR_NOMEM.
 */
hc_status hc__pgshape_parse(const void *bytes, size_t len, hc__pgshape **out, hc_error *err);

/*
 * The id of the shape with these bytes (valid shape bytes, as the encoder
 * builds them), adding it to the dictionary when new.  0 when it cannot be
 * added (not shape bytes, out of memory, or the dictionary full): the caller
 * then stores the shape inline.
 */
uint64_t hc__pgshape_intern(const void *bytes, size_t len);

/* The dictionary's shape id: NULL if unknown (never added).  Valid for the
 * life of the process; releasing it is allowed and does nothing. */
hc__pgshape *hc__pgshape_get(uint64_t id);

/* Give back a held shape (NULL-safe): frees a private one with its last holder. */
void hc__pgshape_release(hc__pgshape *s);

/* Dictionary size now, for tests and benchmarks. */
void hc__pgshape_usage(size_t *shapes, size_t *bytes);

#endif
