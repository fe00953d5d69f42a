/*
 * pgcodec.h - private: PGresult <-> compact versioned bytes (the cached form
 * of a query result).  Layout, all integers little-endian:
 *
 *   "HCPG" u8 version(3) u8 flags u16 reserved(0) u32 ntuples u32 nfields
 *   u64 settings
 *   nfields x { u32 namelen, name bytes, NUL, u32 tableid, i32 columnid,
 *               u32 typid, i32 typlen, i32 typmod, u8 format(0|1) }
 *   ntuples x nfields x { u32 len (0xFFFFFFFF = NULL), len bytes, NUL (non-NULL only) }
 *
 * Version 2 added the NUL after each value, so a view (hc_pg_view) can hand
 * the cached bytes out as C strings, as PQgetvalue does.  Version 3 added
 * what the result was loaded under (hc__pgcodec_origin): flags bit 0 = the
 * result format asked for was binary (other bits 0), settings = the loading
 * session's fingerprint; a hit serves only callers asking the same.
 *
 * Decoding checks every count and length against the buffer and the caps
 * below, and rejects trailing bytes: corrupt input gives HC_ERR_CODEC.
 */
#ifndef HC_PGCODEC_H
#define HC_PGCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "hydracache/cache.h"

#define HC_PGCODEC_VERSION 3
#define HC_PGCODEC_MAX_FIELDS 1664    /* PostgreSQL's MaxTupleAttributeNumber */
#define HC_PGCODEC_MAX_NAME 1024      /* column name bytes */

/* What a result was loaded under: a cached result serves only callers that
 * ask for the same (see hc__pgcodec_fits). */
typedef struct hc__pgcodec_origin {
    int result_format;  /* the result_format asked for: 0 text, 1 binary */
    uint64_t settings;  /* fingerprint of the session settings that shape text output */
} hc__pgcodec_origin;

/*
 * Encode a PGRES_TUPLES_OK (or PGRES_SINGLE_TUPLE) result into a new value.
 * HC_ERR_INVALID (NULL, other status, rows without columns: libpq cannot
 * rebuild those), HC_ERR_TOO_LARGE, HC_ERR_NOMEM.  Thread-safe.
 */
hc_status hc__pgcodec_encode(const PGresult *res, const hc__pgcodec_origin *origin, hc_value **out,
                             hc_error *err);

/* Whether the encoded result was loaded under want (origin NULL at encoding
 * counts as text and settings 0).  true for bytes too short or of another
 * version to tell: decoding them reports HC_ERR_CODEC. */
bool hc__pgcodec_fits(const void *data, size_t len, const hc__pgcodec_origin *want);

/*
 * Build a new PGRES_TUPLES_OK result (caller PQclear()s) straight from the
 * bytes.  conn (may be NULL) only lends its client encoding and event hooks,
 * as with PQmakeEmptyPGresult.  HC_ERR_CODEC on any inconsistency,
 * HC_ERR_NOMEM when libpq cannot allocate.  Never reads outside data[0..len).
 */
hc_status hc__pgcodec_decode(const void *data, size_t len, PGconn *conn, PGresult **out,
                             hc_error *err);

/* The row count from a valid header, without decoding (HC_ERR_CODEC if bad). */
hc_status hc__pgcodec_ntuples(const void *data, size_t len, int *ntuples, hc_error *err);

/*
 * The layout of encoded bytes, for the zero-copy row views (pgrowview.c).
 * hc__pgcodec_counts checks the header (and that the counts fit the bytes);
 * hc__pgcodec_index then walks all of it as strictly as decoding, noting in
 * fields[nfields] the offset from data of each column's name and in
 * cells[ntuples * nfields] that of each cell's bytes (0 = SQL NULL).
 * HC_ERR_CODEC on any inconsistency.  Pure; thread-safe.
 */
hc_status hc__pgcodec_counts(const void *data, size_t len, uint32_t *ntuples, uint32_t *nfields,
                             hc_error *err);
hc_status hc__pgcodec_index(const void *data, size_t len, uint32_t *fields, uint32_t *cells,
                            hc_error *err);

static inline uint32_t hc__pgcodec_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Column facts and cell lengths at the offsets hc__pgcodec_index gave
 * (valid bytes only). */
static inline Oid hc__pgcodec_col_type(const unsigned char *name)
{
    return (Oid)hc__pgcodec_get32(name + hc__pgcodec_get32(name - 4) + 1 + 8);
}

static inline int hc__pgcodec_col_format(const unsigned char *name)
{
    return name[hc__pgcodec_get32(name - 4) + 1 + 20];
}

static inline int hc__pgcodec_cell_len(const unsigned char *cell)
{
    return (int)hc__pgcodec_get32(cell - 4);
}

#endif
