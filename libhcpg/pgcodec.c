/* pgcodec.c - PGresult <-> cached bytes (format in pgcodec.h, shapes in pgshape.h). */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pgcodec.h"

#define HDR_LEN 12u     /* magic, version, flags, reserved, ntuples */
#define NULL_LEN32 UINT32_MAX

static const unsigned char magic[4] = {'H', 'C', 'P', 'G'};

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

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
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
            n += 4;
            if (!PQgetisnull(res, t, f)) n += (size_t)PQgetlength(res, t, f) + 1;
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
    size_t size = HDR_LEN + (id != 0 ? 8 : 4 + slen) + cells;
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
    memcpy(p, magic, 4);
    p[4] = HC_PGCODEC_VERSION;
    p[5] = id != 0 ? 0 : HC_PGCODEC_FLAG_INLINE;
    p[6] = 0;
    p[7] = 0;
    p = put32(p + 8, (uint32_t)ntuples);
    if (id != 0) {
        p = put64(p, id);
    } else {
        p = put32(p, (uint32_t)slen);
        memcpy(p, shape, slen);
        p += slen;
    }
    if (shape != stack_shape) free(shape);
    for (int t = 0; t < ntuples; t++) {
        for (int f = 0; f < nfields; f++) {
            if (PQgetisnull(res, t, f)) {
                p = put32(p, NULL_LEN32);
                continue;
            }
            uint32_t l = (uint32_t)PQgetlength(res, t, f);
            p = put32(p, l);
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

static bool rd32(reader *r, uint32_t *v)
{
    if (r->left < 4) return false;
    *v = get32(r->p);
    r->p += 4;
    r->left -= 4;
    return true;
}

static hc_status corrupt(hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (%s)", what);
}

/* The fixed header; r is left at the shape (id or inline). */
static bool rd_header(reader *r, uint32_t *ntuples)
{
    if (r->p == NULL || r->left < HDR_LEN || memcmp(r->p, magic, 4) != 0 ||
        r->p[4] != HC_PGCODEC_VERSION || (r->p[5] & ~HC_PGCODEC_FLAG_INLINE) != 0 || r->p[6] != 0 ||
        r->p[7] != 0)
        return false;
    *ntuples = get32(r->p + 8);
    r->p += HDR_LEN;
    r->left -= HDR_LEN;
    return *ntuples <= INT_MAX;
}

/* Past the header and the shape: r at the first cell. */
static bool rd_to_cells(reader *r, uint32_t *ntuples)
{
    bool inl = r->left >= HDR_LEN && r->p != NULL && (r->p[5] & HC_PGCODEC_FLAG_INLINE);
    uint32_t skip = 8;
    if (!rd_header(r, ntuples) || (inl && !rd32(r, &skip)) || r->left < skip) return false;
    r->p += skip;
    r->left -= skip;
    return true;
}

hc_status hc__pgcodec_ntuples(const void *data, size_t len, int *ntuples, hc_error *err)
{
    reader r = {data, data ? len : 0};
    uint32_t nt;
    if (ntuples == NULL || !rd_header(&r, &nt)) return hc_error_set(err, HC_ERR_CODEC, "pgcodec: bad header");
    *ntuples = (int)nt;
    return HC_OK;
}

hc_status hc__pgcodec_shape(const void *data, size_t len, hc__pgshape **shape, hc_error *err)
{
    *shape = NULL;
    reader r = {data, data ? len : 0};
    uint32_t nt;
    if (!rd_header(&r, &nt)) return corrupt(err, "header");
    if (((const unsigned char *)data)[5] & HC_PGCODEC_FLAG_INLINE) {
        uint32_t slen;
        if (!rd32(&r, &slen) || r.left < slen) return corrupt(err, "shape");
        return hc__pgshape_parse(r.p, slen, shape, err);
    }
    if (r.left < 8) return corrupt(err, "shape id");
    uint64_t id = (uint64_t)get32(r.p) | (uint64_t)get32(r.p + 4) << 32;
    if ((*shape = hc__pgshape_get(id)) == NULL)
        return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (unknown shape %llu)",
                            (unsigned long long)id);
    return HC_OK;
}

/* One cell: *val is NULL for SQL NULL, else its l bytes followed by a NUL. */
static hc_status rd_cell(reader *r, const unsigned char **val, uint32_t *len, hc_error *err)
{
    uint32_t l;
    if (!rd32(r, &l)) return corrupt(err, "truncated row");
    *len = l;
    *val = NULL;
    if (l == NULL_LEN32) return HC_OK;
    if (l > (uint32_t)INT_MAX || l >= r->left || r->p[l] != '\0') return corrupt(err, "value length");
    *val = r->p;
    r->p += (size_t)l + 1;
    r->left -= (size_t)l + 1;
    return HC_OK;
}

/* r at the first cell of a result of ntuples rows of shape: every cell
 * takes at least its 4-byte length, so impossible counts are rejected before
 * anything is allocated for them. */
static hc_status check_counts(const reader *r, uint32_t ntuples, const hc__pgshape *shape,
                              hc_error *err)
{
    if (shape->nfields == 0 && ntuples > 0) return corrupt(err, "rows without columns");
    if ((uint64_t)ntuples * (uint32_t)shape->nfields > r->left / 4) return corrupt(err, "row count");
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
    uint32_t ntuples;
    if (!rd_to_cells(&r, &ntuples)) return corrupt(err, "header");
    hc_status st = check_counts(&r, ntuples, shape, err);
    if (st != HC_OK) return st;
    PGresult *res = PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
    /* PQsetResultAttrs copies the names into the result */
    if (res == NULL || !PQsetResultAttrs(res, shape->nfields, shape->attrs))
        st = hc_error_set(err, HC_ERR_NOMEM, "pgcodec: libpq cannot allocate a result");
    if (st == HC_OK) st = rd_rows(&r, res, ntuples, (uint32_t)shape->nfields, err);
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
    uint32_t ntuples;
    if (!rd_to_cells(&r, &ntuples)) return corrupt(err, "header");
    hc_status st = check_counts(&r, ntuples, shape, err);
    size_t ncells = (size_t)ntuples * (size_t)shape->nfields;
    for (size_t i = 0; i < ncells && st == HC_OK; i++) {
        const unsigned char *val;
        uint32_t l;
        st = rd_cell(&r, &val, &l, err);
        /* 0 marks NULL: no value starts at offset 0, the header is there */
        cells[i] = val ? (uint32_t)(val - (const unsigned char *)data) : 0;
    }
    if (st == HC_OK && r.left != 0) st = corrupt(err, "trailing bytes");
    return st;
}
