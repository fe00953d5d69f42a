/*
 * pgcodec.h - private: PGresult <-> compact versioned bytes (the cached form
 * of a query result).  Layout; a varint is unsigned LEB128 (7 bits a byte,
 * least significant first, high bit set on all but the last byte), at most
 * 5 bytes and 32 bits, in its shortest form:
 *
 *   u8 magic 'H'  u8 version(5)  varint ntuples  varint shape id
 *   shape id 0: varint shape length, the shape bytes (pgshape.h) inline;
 *               otherwise the dictionary's id (1..HC_PGSHAPE_MAX_SHAPES)
 *   ntuples x nfields x { varint len + 1 (0 = SQL NULL), len bytes, NUL (non-NULL only) }
 *
 * The shape (result format and session settings the result was loaded
 * under, and the columns' metadata) is stored once per process in the shape
 * dictionary and named by its id, so an entry holds little beyond its
 * cells; it is inline only when the dictionary is full.  A 1-row result of
 * n cells shorter than 127 bytes costs 4 + 2n bytes beyond its cell bytes
 * (5 + 2n for shape ids past 127; version 4: 20 + 5n).
 * History: version 2 added the NUL after each value (so a row view hands the
 * cached bytes out as C strings, as PQgetvalue does); version 3 the result
 * format and settings; version 4 moved the column metadata, format and
 * settings into the shape; version 5: varint framing (the 12-byte "HCPG"
 * header, 8-byte shape id and 4-byte cell lengths became varints, and the
 * inline flag became shape id 0).  Only the current version is read: a
 * cached value lives in process memory only, so no older bytes can reach a
 * decoder, and any are HC_ERR_CODEC.
 *
 * Decoding checks every count and length against the buffer and the caps
 * below (a cell at most HC_MAX_VALUE_LEN bytes, ntuples at most INT_MAX),
 * rejects overlong or overflowing varints and trailing bytes, so a valid
 * input is its own re-encoding: corrupt input, a shape id the dictionary
 * does not know included, gives HC_ERR_CODEC.
 */
#ifndef HC_PGCODEC_H
#define HC_PGCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "hydracache/cache.h"
#include "pgshape.h"

#define HC_PGCODEC_VERSION 5
#define HC_PGCODEC_MAGIC 0x48u  /* 'H' */
#define HC_PGCODEC_MAX_FIELDS HC_PGSHAPE_MAX_FIELDS
#define HC_PGCODEC_MAX_NAME HC_PGSHAPE_MAX_NAME

/* What a result was loaded under: a cached result serves only callers that
 * ask for the same (see hc__pgcodec_fits). */
typedef struct hc__pgcodec_origin {
    int result_format;  /* the result_format asked for: 0 text, 1 binary */
    uint64_t settings;  /* fingerprint of the session settings that shape text output */
    bool inline_shape;  /* store the shape inline, not in the dictionary (tests) */
} hc__pgcodec_origin;

/*
 * Encode a PGRES_TUPLES_OK (or PGRES_SINGLE_TUPLE) result loaded under
 * origin (NULL: text, settings 0) into a new value, its shape into the
 * dictionary.  HC_ERR_INVALID (NULL, other status, rows without columns:
 * libpq cannot rebuild those), HC_ERR_TOO_LARGE, HC_ERR_NOMEM.  Thread-safe.
 */
hc_status hc__pgcodec_encode(const PGresult *res, const hc__pgcodec_origin *origin, hc_value **out,
                             hc_error *err);

/*
 * Hold the shape of encoded bytes (release it with hc__pgshape_release):
 * HC_OK; HC_ERR_CODEC (corrupt, or an id unknown to the dictionary),
 * HC_ERR_NOMEM (an inline shape).
 */
hc_status hc__pgcodec_shape(const void *data, size_t len, hc__pgshape **shape, hc_error *err);

/* Whether a result of shape was loaded under want. */
static inline bool hc__pgcodec_fits(const hc__pgshape *shape, const hc__pgcodec_origin *want)
{
    return shape->result_format == want->result_format && shape->settings == want->settings;
}

/*
 * Build a new PGRES_TUPLES_OK result (caller PQclear()s) straight from the
 * bytes, whose shape the caller holds (hc__pgcodec_decode finds it itself).
 * conn (may be NULL) only lends its client encoding and event hooks, as with
 * PQmakeEmptyPGresult.  HC_ERR_CODEC on any inconsistency (or an unknown
 * shape), HC_ERR_NOMEM when libpq cannot allocate.  Never reads outside
 * data[0..len).
 */
hc_status hc__pgcodec_decode_shaped(const void *data, size_t len, const hc__pgshape *shape,
                                    PGconn *conn, PGresult **out, hc_error *err);
hc_status hc__pgcodec_decode(const void *data, size_t len, PGconn *conn, PGresult **out,
                             hc_error *err);

/* The row count from a valid header, without decoding (HC_ERR_CODEC if bad). */
hc_status hc__pgcodec_ntuples(const void *data, size_t len, int *ntuples, hc_error *err);

/*
 * The cells of encoded bytes of the held shape, for the zero-copy row views
 * (pgrowview.c): checks the header (and that the row count fits the bytes),
 * then walks all cells as strictly as decoding, noting in
 * cells[ntuples * shape->nfields] the offset from data of each cell's length
 * varint (0 = SQL NULL: no cell starts at 0, the header is there);
 * hc__pgcodec_ntuples gives the count first.  HC_ERR_CODEC.
 */
hc_status hc__pgcodec_index(const void *data, size_t len, const hc__pgshape *shape,
                            uint32_t *cells, hc_error *err);

/*
 * The bytes of the non-NULL cell at an offset hc__pgcodec_index gave (data +
 * offset), and their length.  O(1): the varint was checked by the index
 * (canonical, at most 5 bytes, len + 1 >= 1), so it is read without checks.
 */
static inline const char *hc__pgcodec_cell(const unsigned char *cell, int *len)
{
    uint32_t v = cell[0];
    const unsigned char *p = cell + 1;
    if (v >= 0x80) {
        v &= 0x7f;
        for (unsigned shift = 7; ; shift += 7) {
            uint32_t b = *p++;
            v |= (b & 0x7f) << shift;
            if (b < 0x80) break;
        }
    }
    *len = (int)(v - 1);
    return (const char *)p;
}

#endif
