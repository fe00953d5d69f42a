/* pgcodec.c - PGresult <-> cached bytes (format in pgcodec.h, shapes in pgshape.h). */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pgcodec.h"

#define VARINT_MAX 5u   /* bytes of a 32-bit varint */

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
    return p + 4;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
    return put32(put32(p, (uint32_t)v), (uint32_t)(v >> 32));
}

static size_t varint_len(uint32_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7) n++;
    return n;
}

static unsigned char *put_varint(unsigned char *p, uint32_t v)
{
    for (; v >= 0x80; v >>= 7) *p++ = (unsigned char)(v | 0x80);
    *p++ = (unsigned char)v;
    return p;
}

/* ------------------------------------------------------------ encoding */

static size_t shape_size(const PGresult *res, int nfields)
{
    size_t n = HC_PGSHAPE_FIXED + 4;
    for (int f = 0; f < nfields; f++) n += HC_PGSHAPE_FIELD_FIXED + strlen(PQfname(res, f));
    return n;
}

static void put_shape(unsigned char *p, const PGresult *res, int nfields,
                      const hc__pgcodec_origin *origin)
{
    *p++ = origin != NULL && origin->result_format == 1;
    p = put64(p, origin ? origin->settings : 0);
    p = put32(p, (uint32_t)nfields);
    for (int f = 0; f < nfields; f++) {
        const char *name = PQfname(res, f);
        size_t nl = strlen(name);
        p = put32(p, (uint32_t)nl);
        memcpy(p, name, nl + 1);
        p += nl + 1;
        p = put32(p, (uint32_t)PQftable(res, f));
        p = put32(p, (uint32_t)PQftablecol(res, f));
        p = put32(p, (uint32_t)PQftype(res, f));
        p = put32(p, (uint32_t)PQfsize(res, f));
        p = put32(p, (uint32_t)PQfmod(res, f));
        *p++ = (unsigned char)PQfformat(res, f);
    }
}

/* Bytes of the cells of res, or SIZE_MAX when they alone exceed HC_MAX_VALUE_LEN. */
static size_t cells_size(const PGresult *res, int ntuples, int nfields)
{
    size_t n = 0;
    /* each cell is at most 1 GiB (libpq), so no term can overflow size_t on
     * its own; check the running total after every row */
    for (int t = 0; t < ntuples; t++) {
        for (int f = 0; f < nfields; f++) {
            if (PQgetisnull(res, t, f)) {
                n++;
                continue;
            }
            uint32_t l = (uint32_t)PQgetlength(res, t, f);
            n += varint_len(l + 1) + l + 1;
        }
        if (n > HC_MAX_VALUE_LEN) return SIZE_MAX;
    }
    return n;
}

static hc_status check_encodable(const PGresult *res, hc_error *err)
{
    if (res == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL result");
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE)
        return hc_error_set(err, HC_ERR_INVALID, "pgcodec: cannot cache a result with status %s",
                            PQresStatus(st));
    int ntuples = PQntuples(res), nfields = PQnfields(res);
    if (nfields > HC_PGCODEC_MAX_FIELDS)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "pgcodec: %d columns (max %d)", nfields,
                            HC_PGCODEC_MAX_FIELDS);
    if (nfields == 0 && ntuples > 0)
        return hc_error_set(err, HC_ERR_INVALID,
                            "pgcodec: cannot cache %d rows without columns (libpq cannot rebuild them)",
                            ntuples);
    for (int f = 0; f < nfields; f++) {
        int fmt = PQfformat(res, f);
        if (strlen(PQfname(res, f)) > HC_PGCODEC_MAX_NAME || (fmt != 0 && fmt != 1))
            return hc_error_set(err, HC_ERR_INVALID, "pgcodec: column %d: name too long or format %d",
                                f, fmt);
    }
    return HC_OK;
}

hc_status hc__pgcodec_encode(const PGresult *res, const hc__pgcodec_origin *origin, hc_value **out,
                             hc_error *err)
{
    if (out == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL out");
    *out = NULL;
    hc_status st = check_encodable(res, err);
    if (st != HC_OK) return st;
    int ntuples = PQntuples(res), nfields = PQnfields(res);
    size_t cells = cells_size(res, ntuples, nfields);
    if (cells == SIZE_MAX)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "pgcodec: result larger than %zu bytes",
                            (size_t)HC_MAX_VALUE_LEN);

    /* the shape: into the dictionary, or inline when it cannot be there */
    size_t slen = shape_size(res, nfields);
    unsigned char stack_shape[512];
    unsigned char *shape = slen <= sizeof stack_shape ? stack_shape : hc__malloc(slen);
    if (shape == NULL) return hc_error_set(err, HC_ERR_NOMEM, "pgcodec: out of memory");
    put_shape(shape, res, nfields, origin);
    uint64_t id = origin != NULL && origin->inline_shape ? 0 : hc__pgshape_intern(shape, slen);
    size_t size = 2 + varint_len((uint32_t)ntuples) + varint_len((uint32_t)id) +
                  (id != 0 ? 0 : varint_len((uint32_t)slen) + slen) + cells;
    void *buf;
    hc_value *v = size > HC_MAX_VALUE_LEN ? NULL : hc_value_alloc(size, &buf);
    if (v == NULL) {
        if (shape != stack_shape) free(shape);
        return size > HC_MAX_VALUE_LEN
                   ? hc_error_set(err, HC_ERR_TOO_LARGE, "pgcodec: result larger than %zu bytes",
                                  (size_t)HC_MAX_VALUE_LEN)
                   : hc_error_set(err, HC_ERR_NOMEM, "pgcodec: cannot allocate %zu bytes", size);
    }
    unsigned char *p = buf;
    *p++ = HC_PGCODEC_MAGIC;
    *p++ = HC_PGCODEC_VERSION;
    p = put_varint(p, (uint32_t)ntuples);
    p = put_varint(p, (uint32_t)id); /* 0: the shape follows inline */
    if (id == 0) {
        p = put_varint(p, (uint32_t)slen);
        memcpy(p, shape, slen);
        p += slen;
    }
    if (shape != stack_shape) free(shape);
    for (int t = 0; t < ntuples; t++) {
        for (int f = 0; f < nfields; f++) {
            if (PQgetisnull(res, t, f)) {
                *p++ = 0;
                continue;
            }
            uint32_t l = (uint32_t)PQgetlength(res, t, f);
            p = put_varint(p, l + 1);
            memcpy(p, PQgetvalue(res, t, f), l);
            p += l;
            *p++ = '\0'; /* a view hands the cached bytes out as C strings, as libpq does */
        }
    }
    *out = v;
    return HC_OK;
}

/* ------------------------------------------------------------ decoding */

/* A bounds-checked reader over the encoded bytes. */
typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

static hc_status corrupt(hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (%s)", what);
}

/* A varint in its shortest form, at most 32 bits: NULL, or what is wrong. */
static const char *rd_varint(reader *r, uint32_t *v)
{
    uint32_t x = 0;
    for (unsigned i = 0; i < VARINT_MAX; i++) {
        if (r->left == 0) return "truncated";
        uint32_t b = *r->p++;
        r->left--;
        if (i == VARINT_MAX - 1 && b > 0x0f) return "varint overflow"; /* past 32 bits */
        x |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            /* a final 0 after continuation bytes: the value had a shorter form */
            if (b == 0 && i > 0) return "overlong varint";
            *v = x;
            return NULL;
        }
    }
    return "varint overflow"; /* not reached: the fifth byte stops above */
}

/* What the header says; the reader is left at the first cell. */
typedef struct header {
    uint32_t ntuples;
    uint32_t id;                 /* 0: inline */
    const unsigned char *shape;  /* inline shape bytes */
    uint32_t shape_len;
} header;

static hc_status rd_header(reader *r, header *h, hc_error *err)
{
    const char *why;
    if (r->p == NULL || r->left < 2) return corrupt(err, "truncated header");
    if (r->p[0] != HC_PGCODEC_MAGIC || r->p[1] != HC_PGCODEC_VERSION) {
        /* versions 1-4 began "HCPG", then the version byte */
        bool hcpg = r->left >= 5 && memcmp(r->p, "HCPG", 4) == 0;
        if (!hcpg && r->p[0] != HC_PGCODEC_MAGIC) return corrupt(err, "bad magic");
        return hc_error_set(err, HC_ERR_CODEC,
                            "pgcodec: cached result in format version %u; this library reads only "
                            "version %u",
                            hcpg ? r->p[4] : r->p[1], HC_PGCODEC_VERSION);
    }
    r->p += 2;
    r->left -= 2;
    if ((why = rd_varint(r, &h->ntuples)) != NULL) return corrupt(err, why);
    if (h->ntuples > INT_MAX) return corrupt(err, "row count");
    if ((why = rd_varint(r, &h->id)) != NULL) return corrupt(err, why);
    h->shape = NULL;
    h->shape_len = 0;
    if (h->id != 0) return HC_OK;
    if ((why = rd_varint(r, &h->shape_len)) != NULL) return corrupt(err, why);
    if (h->shape_len > r->left) return corrupt(err, "shape length");
    h->shape = r->p;
    r->p += h->shape_len;
    r->left -= h->shape_len;
    return HC_OK;
}

hc_status hc__pgcodec_ntuples(const void *data, size_t len, int *ntuples, hc_error *err)
{
    if (ntuples == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL ntuples");
    reader r = {data, data ? len : 0};
    header h;
    hc_status st = rd_header(&r, &h, err);
    if (st != HC_OK) return st;
    *ntuples = (int)h.ntuples;
    return HC_OK;
}

hc_status hc__pgcodec_shape(const void *data, size_t len, hc__pgshape **shape, hc_error *err)
{
    *shape = NULL;
    reader r = {data, data ? len : 0};
    header h;
    hc_status st = rd_header(&r, &h, err);
    if (st != HC_OK) return st;
    if (h.id == 0) return hc__pgshape_parse(h.shape, h.shape_len, shape, err);
    if ((*shape = hc__pgshape_get(h.id)) == NULL)
        return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (unknown shape %lu)",
                            (unsigned long)h.id);
    return HC_OK;
}

/* One cell: *val is NULL for SQL NULL, else its l bytes followed by a NUL. */
static hc_status rd_cell(reader *r, const unsigned char **val, uint32_t *len, hc_error *err)
{
    uint32_t n;
    const char *why = rd_varint(r, &n);
    *val = NULL; /* also on error: callers may look before checking */
    *len = 0;
    if (why != NULL) return corrupt(err, why);
    if (n == 0) return HC_OK; /* SQL NULL; else the length + 1 */
    uint32_t l = n - 1;
    if (l > HC_MAX_VALUE_LEN || l >= r->left || r->p[l] != '\0') return corrupt(err, "value length");
    *len = l;
    *val = r->p;
    r->p += (size_t)l + 1;
    r->left -= (size_t)l + 1;
    return HC_OK;
}

/* r at the first cell of a result of ntuples rows of shape: every cell
 * takes at least its 1-byte length, so impossible counts are rejected before
 * anything is allocated for them. */
static hc_status check_counts(const reader *r, uint32_t ntuples, const hc__pgshape *shape,
                              hc_error *err)
{
    if (shape->nfields == 0 && ntuples > 0) return corrupt(err, "rows without columns");
    if ((uint64_t)ntuples * (uint32_t)shape->nfields > r->left) return corrupt(err, "row count");
    return HC_OK;
}

/* Append the rows to res: every length is checked before libpq sees it. */
static hc_status rd_rows(reader *r, PGresult *res, uint32_t ntuples, uint32_t nfields,
                         hc_error *err)
{
    for (uint32_t t = 0; t < ntuples; t++) {
        for (uint32_t f = 0; f < nfields; f++) {
            const unsigned char *val;
            uint32_t l;
            hc_status st = rd_cell(r, &val, &l, err);
            if (st != HC_OK) return st;
            if (val == NULL) {
                /* new rows start all-NULL: only the first cell must be set
                 * to create the row */
                if (f == 0 && !PQsetvalue(res, (int)t, 0, NULL, -1))
                    return hc_error_set(err, HC_ERR_NOMEM, "pgcodec: libpq cannot add a row");
                continue;
            }
            if (!PQsetvalue(res, (int)t, (int)f, (char *)val, (int)l))
                return hc_error_set(err, HC_ERR_NOMEM, "pgcodec: libpq cannot store a value");
        }
    }
    return r->left == 0 ? HC_OK : corrupt(err, "trailing bytes");
}

hc_status hc__pgcodec_decode_shaped(const void *data, size_t len, const hc__pgshape *shape,
                                    PGconn *conn, PGresult **out, hc_error *err)
{
    if (out == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL out");
    *out = NULL;
    reader r = {data, data ? len : 0};
    header h;
    hc_status st = rd_header(&r, &h, err);
    if (st == HC_OK) st = check_counts(&r, h.ntuples, shape, err);
    if (st != HC_OK) return st;
    PGresult *res = PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
    /* PQsetResultAttrs copies the names into the result */
    if (res == NULL || !PQsetResultAttrs(res, shape->nfields, shape->attrs))
        st = hc_error_set(err, HC_ERR_NOMEM, "pgcodec: libpq cannot allocate a result");
    if (st == HC_OK) st = rd_rows(&r, res, h.ntuples, (uint32_t)shape->nfields, err);
    if (st != HC_OK) {
        PQclear(res);
        return st;
    }
    *out = res;
    return HC_OK;
}

hc_status hc__pgcodec_decode(const void *data, size_t len, PGconn *conn, PGresult **out,
                             hc_error *err)
{
    if (out == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL out");
    *out = NULL;
    hc__pgshape *shape;
    hc_status st = hc__pgcodec_shape(data, len, &shape, err);
    if (st != HC_OK) return st;
    st = hc__pgcodec_decode_shaped(data, len, shape, conn, out, err);
    hc__pgshape_release(shape);
    return st;
}

/* ------------------------------------------------------------ layout, for row views */

hc_status hc__pgcodec_index(const void *data, size_t len, const hc__pgshape *shape,
                            uint32_t *cells, hc_error *err)
{
    reader r = {data, data ? len : 0};
    header h;
    hc_status st = rd_header(&r, &h, err);
    if (st == HC_OK) st = check_counts(&r, h.ntuples, shape, err);
    size_t ncells = st == HC_OK ? (size_t)h.ntuples * (size_t)shape->nfields : 0;
    for (size_t i = 0; i < ncells && st == HC_OK; i++) {
        uint32_t at = (uint32_t)(r.p - (const unsigned char *)data);
        const unsigned char *val;
        uint32_t l;
        if ((st = rd_cell(&r, &val, &l, err)) != HC_OK) break;
        /* the cell's varint, which hc__pgcodec_cell reads; 0 marks NULL (no
         * cell starts at offset 0, the header is there) */
        cells[i] = val ? at : 0;
    }
    if (st == HC_OK && r.left != 0) st = corrupt(err, "trailing bytes");
    return st;
}
