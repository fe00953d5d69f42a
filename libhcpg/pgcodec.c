/* pgcodec.c - PGresult <-> cached bytes (format in pgcodec.h). */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pgcodec.h"

#define HDR_LEN 24u
#define FLAG_BINARY 1u /* the result was asked for in binary (result_format 1) */
#define FIELD_FIXED 26u /* namelen, NUL, tableid, columnid, typid, typlen, typmod (4 each), format (1) */
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

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Bytes of the encoding of res, or 0 when it exceeds HC_MAX_VALUE_LEN. */
static size_t encoded_size(const PGresult *res, int ntuples, int nfields)
{
    size_t n = HDR_LEN;
    for (int f = 0; f < nfields; f++) n += FIELD_FIXED + strlen(PQfname(res, f));
    /* each cell is at most 1 GiB (libpq), so no term can overflow size_t on
     * its own; check the running total after every row */
    for (int t = 0; t < ntuples; t++) {
        for (int f = 0; f < nfields; f++) {
            n += 4;
            if (!PQgetisnull(res, t, f)) n += (size_t)PQgetlength(res, t, f) + 1;
        }
        if (n > HC_MAX_VALUE_LEN) return 0;
    }
    return n > HC_MAX_VALUE_LEN ? 0 : n;
}

hc_status hc__pgcodec_encode(const PGresult *res, const hc__pgcodec_origin *origin, hc_value **out,
                             hc_error *err)
{
    if (out == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL out");
    *out = NULL;
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
    size_t size = encoded_size(res, ntuples, nfields);
    if (size == 0)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "pgcodec: result larger than %zu bytes",
                            (size_t)HC_MAX_VALUE_LEN);

    void *buf;
    hc_value *v = hc_value_alloc(size, &buf);
    if (v == NULL) return hc_error_set(err, HC_ERR_NOMEM, "pgcodec: cannot allocate %zu bytes", size);
    unsigned char *p = buf;
    memcpy(p, magic, 4);
    p[4] = HC_PGCODEC_VERSION;
    p[5] = origin != NULL && origin->result_format == 1 ? FLAG_BINARY : 0;
    p[6] = 0;
    p[7] = 0;
    p = put32(p + 8, (uint32_t)ntuples);
    p = put32(p, (uint32_t)nfields);
    uint64_t settings = origin ? origin->settings : 0;
    p = put32(p, (uint32_t)settings);
    p = put32(p, (uint32_t)(settings >> 32));
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

static bool rd_header(reader *r, uint32_t *ntuples, uint32_t *nfields)
{
    if (r->left < HDR_LEN || memcmp(r->p, magic, 4) != 0 || r->p[4] != HC_PGCODEC_VERSION ||
        (r->p[5] & ~FLAG_BINARY) != 0 || r->p[6] != 0 || r->p[7] != 0)
        return false;
    r->p += 8;
    r->left -= 8;
    uint32_t lo, hi;
    return rd32(r, ntuples) && rd32(r, nfields) && rd32(r, &lo) && rd32(r, &hi) &&
           *ntuples <= INT_MAX && *nfields <= HC_PGCODEC_MAX_FIELDS && !(*nfields == 0 && *ntuples > 0);
}

bool hc__pgcodec_fits(const void *data, size_t len, const hc__pgcodec_origin *want)
{
    const unsigned char *p = data;
    if (p == NULL || len < HDR_LEN || p[4] != HC_PGCODEC_VERSION) return true; /* decoding says why */
    uint64_t settings = (uint64_t)get32(p + 16) | (uint64_t)get32(p + 20) << 32;
    return (p[5] & FLAG_BINARY) == (want->result_format == 1 ? FLAG_BINARY : 0) &&
           settings == want->settings;
}

hc_status hc__pgcodec_ntuples(const void *data, size_t len, int *ntuples, hc_error *err)
{
    reader r = {data, data ? len : 0};
    uint32_t nt, nf;
    if (ntuples == NULL || !rd_header(&r, &nt, &nf))
        return hc_error_set(err, HC_ERR_CODEC, "pgcodec: bad header");
    *ntuples = (int)nt;
    return HC_OK;
}

static hc_status corrupt(hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (%s)", what);
}

/* Read the column descriptions into attrs (names point into the buffer),
 * or, with attrs NULL, only check them and note each name's offset from base
 * in name_off. */
static hc_status rd_fields(reader *r, PGresAttDesc *attrs, uint32_t nfields, hc_error *err,
                           const unsigned char *base, uint32_t *name_off)
{
    for (uint32_t f = 0; f < nfields; f++) {
        uint32_t nl;
        if (!rd32(r, &nl) || nl > HC_PGCODEC_MAX_NAME || r->left < (size_t)nl + FIELD_FIXED - 4)
            return corrupt(err, "column name");
        const char *name = (const char *)r->p;
        if (name[nl] != '\0' || memchr(name, '\0', nl) != NULL) return corrupt(err, "column name");
        const unsigned char *x = r->p + nl + 1; /* the fixed part, length checked above */
        if (x[20] > 1) return corrupt(err, "column format");
        if (attrs == NULL) name_off[f] = (uint32_t)(r->p - base);
        else attrs[f] = (PGresAttDesc){
            .name = (char *)name,
            .tableid = (Oid)get32(x),
            .columnid = (int)get32(x + 4),
            .typid = (Oid)get32(x + 8),
            .typlen = (int)get32(x + 12),
            .atttypmod = (int)get32(x + 16),
            .format = x[20],
        };
        r->p += nl + FIELD_FIXED - 4;
        r->left -= nl + FIELD_FIXED - 4;
    }
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

hc_status hc__pgcodec_decode(const void *data, size_t len, PGconn *conn, PGresult **out,
                             hc_error *err)
{
    if (out == NULL) return hc_error_set(err, HC_ERR_INVALID, "pgcodec: NULL out");
    *out = NULL;
    reader r = {data, data ? len : 0};
    uint32_t ntuples, nfields;
    if (!rd_header(&r, &ntuples, &nfields)) return corrupt(err, "header");
    /* every cell takes at least its 4-byte length: reject impossible counts
     * before allocating anything for them */
    if ((uint64_t)ntuples * nfields > r.left / 4) return corrupt(err, "row count");

    PGresAttDesc stack_attrs[16];
    PGresAttDesc *attrs = stack_attrs;
    if (nfields > 16 && (attrs = hc__malloc(nfields * sizeof *attrs)) == NULL)
        return hc_error_set(err, HC_ERR_NOMEM, "pgcodec: out of memory");
    hc_status st = rd_fields(&r, attrs, nfields, err, NULL, NULL);
    PGresult *res = NULL;
    if (st == HC_OK) {
        res = PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
        if (res == NULL || !PQsetResultAttrs(res, (int)nfields, attrs))
            st = hc_error_set(err, HC_ERR_NOMEM, "pgcodec: libpq cannot allocate a result");
    }
    if (attrs != stack_attrs) free(attrs);
    if (st == HC_OK) st = rd_rows(&r, res, ntuples, nfields, err);
    if (st != HC_OK) {
        PQclear(res);
        return st;
    }
    *out = res;
    return HC_OK;
}

/* ------------------------------------------------------------ layout, for row views */

hc_status hc__pgcodec_counts(const void *data, size_t len, uint32_t *ntuples, uint32_t *nfields,
                             hc_error *err)
{
    reader r = {data, data ? len : 0};
    if (!rd_header(&r, ntuples, nfields)) return corrupt(err, "header");
    /* every cell takes at least its 4-byte length */
    if ((uint64_t)*ntuples * *nfields > r.left / 4) return corrupt(err, "row count");
    return HC_OK;
}

hc_status hc__pgcodec_index(const void *data, size_t len, uint32_t *fields, uint32_t *cells,
                            hc_error *err)
{
    uint32_t ntuples, nfields;
    hc_status st = hc__pgcodec_counts(data, len, &ntuples, &nfields, err);
    if (st != HC_OK) return st;
    reader r = {data, len};
    r.p += HDR_LEN;
    r.left -= HDR_LEN;
    st = rd_fields(&r, NULL, nfields, err, data, fields);
    size_t ncells = (size_t)ntuples * nfields;
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
