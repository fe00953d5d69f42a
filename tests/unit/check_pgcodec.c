/*
 * check_pgcodec.c - the PGresult codec: faithful round trips of results built
 * in memory (no server), and corrupt or truncated bytes rejected safely.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hc_pgassert.h"
#include "pgcodec.h"
#include "pgrowview.h"
#include "hc_test.h"

/* ------------------------------------------------------------ helpers */

#define OID_INT4 23
#define OID_TEXT 25
#define OID_BYTEA 17

/* An empty TUPLES_OK result with nfields columns "c<i>" of the given format. */
static PGresult *make_result(int nfields, int format)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    ck_assert_ptr_nonnull(r);
    PGresAttDesc *attrs = calloc((size_t)(nfields ? nfields : 1), sizeof *attrs);
    char (*names)[16] = calloc((size_t)(nfields ? nfields : 1), sizeof *names);
    for (int f = 0; f < nfields; f++) {
        snprintf(names[f], sizeof names[f], "c%d", f);
        attrs[f] = (PGresAttDesc){.name = names[f], .tableid = 16384 + (Oid)f, .columnid = f + 1,
                                  .format = format, .typid = f % 2 ? OID_TEXT : OID_INT4,
                                  .typlen = f % 2 ? -1 : 4, .atttypmod = f % 3 ? -1 : 68};
    }
    ck_assert(PQsetResultAttrs(r, nfields, attrs));
    free(attrs);
    free(names);
    return r;
}

static void set(PGresult *r, int t, int f, const char *v, int len)
{
    ck_assert(PQsetvalue(r, t, f, (char *)v, len));
}

static hc_value *encode_ok(const PGresult *r)
{
    hc_value *v = NULL;
    hc_error err;
    ck_assert_int_eq(hc__pgcodec_encode(r, NULL, &v, &err), HC_OK);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* Encode, decode, compare; returns nothing, frees everything. */
static void round_trip(PGresult *r)
{
    hc_value *v = encode_ok(r);
    PGresult *back = NULL;
    hc_error err;
    ck_assert_int_eq(hc__pgcodec_decode(hc_value_data(v), hc_value_len(v), NULL, &back, &err), HC_OK);
    hc_assert_same_result(r, back);
    int n = -1;
    ck_assert_int_eq(hc__pgcodec_ntuples(hc_value_data(v), hc_value_len(v), &n, &err), HC_OK);
    ck_assert_int_eq(n, PQntuples(r));
    PQclear(back);
    hc_value_release(v);
    PQclear(r);
}

/* A small mixed result: NULLs, empty strings, text. */
static PGresult *sample(void)
{
    PGresult *r = make_result(3, 0);
    set(r, 0, 0, "42", 2);
    set(r, 0, 1, "alice", 5);
    set(r, 0, 2, "", 0);
    set(r, 1, 0, "7", 1);
    set(r, 1, 1, NULL, -1);
    set(r, 1, 2, "x", 1);
    return r;
}

/* Checked fixture: the sample result and its encoding (without origin), for
 * the tests that only read them. */
static PGresult *sample_result;
static hc_value *sample_value;

static void make_sample(void)
{
    sample_result = sample();
    sample_value = encode_ok(sample_result);
}

static void free_sample(void)
{
    hc_value_release(sample_value);
    PQclear(sample_result);
}

/* The varint at p (as pgcodec.h writes them): its value, and its size. */
static size_t varint_at(const unsigned char *p, uint32_t *v)
{
    size_t n = 0;
    *v = 0;
    do *v |= (uint32_t)(p[n] & 0x7f) << (7 * n);
    while (p[n++] & 0x80);
    return n;
}

static hc__pgshape *shape_of(const hc_value *v);
static void view_matches(PGresult *r);
static void assert_view_refuses(const void *p, size_t len);

/* Where the header's fields of encoded bytes are: the ntuples varint is at 2. */
#define AT_NTUPLES 2
static size_t at_shape_id(const unsigned char *p)
{
    uint32_t v;
    return AT_NTUPLES + varint_at(p + AT_NTUPLES, &v);
}

/* Where the cells start (bytes that name their shape by id). */
static size_t at_cells(const unsigned char *p)
{
    uint32_t id;
    size_t at = at_shape_id(p);
    at += varint_at(p + at, &id);
    ck_assert_uint_ne(id, 0);
    return at;
}

/* A malloc'd copy of v's bytes with the cut bytes at `at` replaced by
 * with[0..n); its length in *len. */
static unsigned char *spliced(const hc_value *v, size_t at, size_t cut, const void *with, size_t n,
                              size_t *len)
{
    const unsigned char *d = hc_value_data(v);
    size_t vl = hc_value_len(v);
    ck_assert_uint_le(at + cut, vl);
    *len = vl - cut + n;
    unsigned char *p = malloc(*len ? *len : 1);
    memcpy(p, d, at);
    memcpy(p + at, with, n);
    memcpy(p + at + n, d + at + cut, vl - at - cut);
    return p;
}

/* Decoding these bytes is HC_ERR_CODEC and says why (a message part). */
static void assert_codec_error(const void *p, size_t len, const char *why)
{
    PGresult *back = (PGresult *)1;
    hc_error err = {HC_OK, ""};
    ck_assert_int_eq(hc__pgcodec_decode(p, len, NULL, &back, &err), HC_ERR_CODEC);
    ck_assert_ptr_null(back);
    ck_assert_msg(strstr(err.message, why) != NULL, "'%s' does not say '%s'", err.message, why);
}

/* ------------------------------------------------------------ round trips */

START_TEST(test_round_trip_keeps_nulls_apart_from_empty_strings)
{
    PGresult *r = sample();
    ck_assert(PQgetisnull(r, 1, 1));
    ck_assert(!PQgetisnull(r, 0, 2));
    round_trip(r);
}
END_TEST

START_TEST(test_round_trip_zero_rows)
{
    round_trip(make_result(4, 0));
}
END_TEST

START_TEST(test_round_trip_zero_columns)
{
    round_trip(make_result(0, 0));
}
END_TEST

START_TEST(test_rows_without_columns_are_refused)
{
    /* libpq cannot rebuild such a result (PQsetvalue needs a column), so
     * refusing to cache beats returning 0 rows on a hit */
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    hc_value *v = NULL;
    hc_error err;
    ck_assert_int_eq(hc__pgcodec_encode(r, NULL, &v, &err), HC_OK); /* 0 x 0 is fine */
    hc_value_release(v);
    PQclear(r);

    /* 3 rows, an inline shape (id 0) of 13 bytes: text, settings 0, 0 columns */
    static const unsigned char rows_no_cols[18] = {HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION, 3, 0, 13};
    assert_codec_error(rows_no_cols, sizeof rows_no_cols, "rows without columns");
}
END_TEST

START_TEST(test_round_trip_wide_row_of_200_columns)
{
    PGresult *r = make_result(200, 0);
    char buf[32];
    for (int t = 0; t < 3; t++)
        for (int f = 0; f < 200; f++) {
            int n = snprintf(buf, sizeof buf, "r%dc%d", t, f);
            set(r, t, f, (f + t) % 7 == 0 ? NULL : buf, (f + t) % 7 == 0 ? -1 : n);
        }
    round_trip(r);
}
END_TEST

START_TEST(test_round_trip_large_value_of_1_mib)
{
    size_t n = (size_t)1 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    PGresult *r = make_result(2, 0);
    set(r, 0, 0, "1", 1);
    set(r, 0, 1, big, (int)n);
    free(big);
    round_trip(r);
}
END_TEST

START_TEST(test_round_trip_binary_format_keeps_embedded_zero_bytes)
{
    PGresult *r = make_result(2, 1);
    static const char int4_42[4] = {0, 0, 0, 42};
    static const char blob[6] = {'a', 0, 'b', 0, 0, (char)0xff};
    set(r, 0, 0, int4_42, 4);
    set(r, 0, 1, blob, 6);
    set(r, 1, 0, NULL, -1);
    set(r, 1, 1, "", 0);
    ck_assert_int_eq(PQbinaryTuples(r), 1);
    round_trip(r);
}
END_TEST

START_TEST(test_round_trip_mixed_formats)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[2] = {
        {.name = "t", .format = 0, .typid = OID_TEXT, .typlen = -1, .atttypmod = -1},
        {.name = "b", .format = 1, .typid = OID_BYTEA, .typlen = -1, .atttypmod = -1},
    };
    ck_assert(PQsetResultAttrs(r, 2, attrs));
    set(r, 0, 0, "x", 1);
    set(r, 0, 1, "\0\1", 2);
    round_trip(r);
}
END_TEST

/* The cells' framing, byte for byte: SQL NULL is varint 0 with no NUL, an
 * empty string varint 1 and its NUL. */
START_TEST(test_null_and_empty_cells_encode_apart)
{
    PGresult *r = make_result(3, 0);
    set(r, 0, 0, NULL, -1);
    set(r, 0, 1, "", 0);
    set(r, 0, 2, "ab", 2);
    hc_value *v = encode_ok(r);
    const unsigned char *d = hc_value_data(v);
    size_t at = at_cells(d);
    static const unsigned char cells[] = {0, 1, 0, 3, 'a', 'b', 0};
    ck_assert_uint_eq(hc_value_len(v), at + sizeof cells);
    ck_assert(memcmp(d + at, cells, sizeof cells) == 0);
    hc_value_release(v);
    round_trip(r);
}
END_TEST

/* Beyond its cell bytes, a 1-row result of 4 short columns costs magic,
 * version, ntuples, the shape id and 2 bytes a cell (issue #12: was 40). */
START_TEST(test_one_short_row_costs_a_few_bytes_beyond_its_cells)
{
    PGresult *r = make_result(4, 0);
    set(r, 0, 0, "1", 1);
    set(r, 0, 1, "alice", 5);
    set(r, 0, 2, "alice@example.com", 17);
    set(r, 0, 3, NULL, -1);
    hc_value *v = encode_ok(r);
    hc__pgshape *sh = shape_of(v);
    size_t meta = hc_value_len(v) - (1 + 5 + 17);
    ck_assert_uint_eq(meta, 2 + 1 + (sh->id < 128 ? 1 : 2) + 3 * 2 + 1);
    ck_assert_uint_le(meta, 15);
    hc__pgshape_release(sh);
    hc_value_release(v);
    round_trip(r);
}
END_TEST

/* Lengths around each varint size boundary (len + 1 = 127, 128, 129,
 * 16383, 16384, 16385), with NUL bytes inside, binary, through decode and
 * the view. */
START_TEST(test_binary_cells_across_varint_sizes_keep_their_zero_bytes)
{
    static const int lens[] = {0, 125, 126, 127, 128, 16381, 16382, 16383, 16384, 200000};
    const int n = (int)(sizeof lens / sizeof lens[0]);
    char *buf = malloc(200000);
    for (int i = 0; i < 200000; i++) buf[i] = (char)(i % 3 == 0 ? 0 : i % 251);
    PGresult *r = make_result(2, 1);
    for (int t = 0; t < n; t++) {
        set(r, t, 0, buf, lens[t]);
        set(r, t, 1, buf + 1, lens[n - 1 - t] - (lens[n - 1 - t] > 0));
    }
    free(buf);
    PGresult *copy = PQcopyResult(r, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    view_matches(copy);
    round_trip(r);
}
END_TEST

START_TEST(test_round_trip_many_rows)
{
    enum { ROWS = 20000 };
    PGresult *r = make_result(3, 0);
    char b[200];
    memset(b, 'x', sizeof b);
    for (int t = 0; t < ROWS; t++) {
        int k = snprintf(b, sizeof b, "%d", t);
        b[k] = 'x';
        set(r, t, 0, b, k);
        set(r, t, 1, t % 5 == 0 ? NULL : b, t % 5 == 0 ? -1 : t % 200);
        set(r, t, 2, "", 0);
    }
    PGresult *copy = PQcopyResult(r, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    view_matches(copy);
    round_trip(r);
}
END_TEST

START_TEST(test_decoded_result_without_connection_supports_column_lookup)
{
    hc_value *v = sample_value;
    PGresult *back = NULL;
    ck_assert_int_eq(hc__pgcodec_decode(hc_value_data(v), hc_value_len(v), NULL, &back, NULL), HC_OK);
    ck_assert_int_eq(PQfnumber(back, "alice"), -1);
    ck_assert_int_eq(PQfnumber(back, "c1"), 1);
    ck_assert_str_eq(PQgetvalue(back, 0, 1), "alice");
    PQclear(back);
}
END_TEST

/* ------------------------------------------------------------ bad input */

START_TEST(test_encode_refuses_error_results_and_null)
{
    hc_value *v = (hc_value *)1;
    hc_error err;
    PGresult *e = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
    ck_assert_int_eq(hc__pgcodec_encode(e, NULL, &v, &err), HC_ERR_INVALID);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(hc__pgcodec_encode(NULL, NULL, &v, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc__pgcodec_encode(e, NULL, NULL, &err), HC_ERR_INVALID);
    PQclear(e);
}
END_TEST

START_TEST(test_every_truncation_is_rejected)
{
    hc_value *v = sample_value;
    const unsigned char *d = hc_value_data(v);
    size_t len = hc_value_len(v);
    for (size_t cut = 0; cut < len; cut++) {
        /* a private copy of exactly cut bytes, so ASan sees any over-read */
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, d, cut);
        PGresult *back = (PGresult *)1;
        hc_error err = {HC_OK, ""};
        ck_assert_int_eq(hc__pgcodec_decode(p, cut, NULL, &back, &err), HC_ERR_CODEC);
        ck_assert_ptr_null(back);
        ck_assert_int_eq(err.code, HC_ERR_CODEC);
        free(p);
    }
}
END_TEST

START_TEST(test_trailing_bytes_are_rejected)
{
    hc_value *v = sample_value;
    size_t len = hc_value_len(v);
    unsigned char *p = malloc(len + 1);
    memcpy(p, hc_value_data(v), len);
    p[len] = 0;
    PGresult *back = NULL;
    ck_assert_int_eq(hc__pgcodec_decode(p, len + 1, NULL, &back, NULL), HC_ERR_CODEC);
    free(p);
}
END_TEST

static hc__pgshape *shape_of(const hc_value *v)
{
    hc__pgshape *sh = NULL;
    ck_assert_int_eq(hc__pgcodec_shape(hc_value_data(v), hc_value_len(v), &sh, NULL), HC_OK);
    return sh;
}

START_TEST(test_origin_is_recorded_and_matched)
{
    PGresult *r = sample_result;
    hc__pgcodec_origin bin = {.result_format = 1, .settings = 0x0123456789abcdefULL};
    hc_value *v = NULL;
    ck_assert_int_eq(hc__pgcodec_encode(r, &bin, &v, NULL), HC_OK);
    hc__pgshape *sh = shape_of(v);
    ck_assert(hc__pgcodec_fits(sh, &bin));
    ck_assert(!hc__pgcodec_fits(sh, &(hc__pgcodec_origin){.result_format = 0, .settings = bin.settings}));
    ck_assert(!hc__pgcodec_fits(sh, &(hc__pgcodec_origin){.result_format = 1, .settings = bin.settings ^ 1}));
    ck_assert(!hc__pgcodec_fits(sh, &(hc__pgcodec_origin){.result_format = 1, .settings = bin.settings ^ (1ULL << 63)}));
    hc__pgshape_release(sh);
    PGresult *back = NULL;
    ck_assert_int_eq(hc__pgcodec_decode(hc_value_data(v), hc_value_len(v), NULL, &back, NULL), HC_OK);
    PQclear(back);
    hc_value_release(v);
    v = encode_ok(r); /* no origin: text, settings 0 */
    sh = shape_of(v);
    ck_assert(hc__pgcodec_fits(sh, &(hc__pgcodec_origin){0}));
    ck_assert(!hc__pgcodec_fits(sh, &bin));
    hc__pgshape_release(sh);
    hc_value_release(v);
}
END_TEST

/* ------------------------------------------------------------ shapes */

START_TEST(test_results_of_one_shape_store_it_once)
{
    PGresult *b = make_result(3, 0);
    set(b, 0, 0, "1", 1);
    set(b, 0, 1, "b", 1);
    set(b, 0, 2, "c", 1);
    hc_value *va = sample_value;
    size_t shapes0, bytes0, shapes1, bytes1;
    hc__pgshape_usage(&shapes0, &bytes0);
    hc_value *vb = encode_ok(b);
    hc__pgshape_usage(&shapes1, &bytes1);
    ck_assert_uint_eq(shapes1, shapes0); /* the same columns: no new shape */
    ck_assert_uint_eq(bytes1, bytes0);
    hc__pgshape *sa = shape_of(va), *sb = shape_of(vb);
    ck_assert_uint_ne(sa->id, 0);                  /* by id */
    ck_assert_uint_eq(sa->id, sb->id);             /* the same id */
    /* magic, version, ntuples, the id, then only the cells: 3 x (1 + len + 1) */
    ck_assert_uint_eq(hc_value_len(vb), 2 + 1 + (sb->id < 128 ? 1 : 2) + 3 * 3);
    hc__pgshape_release(sa);
    hc__pgshape_release(sb);
    hc_value_release(vb);
    PQclear(b);
}
END_TEST

START_TEST(test_inline_shape_round_trips)
{
    PGresult *r = sample_result;
    hc_value *v = NULL;
    ck_assert_int_eq(hc__pgcodec_encode(r, &(hc__pgcodec_origin){.inline_shape = true}, &v, NULL), HC_OK);
    const unsigned char *d = hc_value_data(v);
    ck_assert_int_eq(d[at_shape_id(d)], 0); /* shape id 0: inline */
    hc__pgshape *sh = shape_of(v);
    ck_assert_uint_eq(sh->id, 0);
    hc__pgshape_release(sh);
    PGresult *back = NULL;
    ck_assert_int_eq(hc__pgcodec_decode(hc_value_data(v), hc_value_len(v), NULL, &back, NULL), HC_OK);
    hc_assert_same_result(r, back);
    PQclear(back);
    hc_pg_view view;
    ck_assert_int_eq(hc__pgrowview_fill(v, &view, NULL), HC_OK);
    ck_assert_str_eq(hc_pg_view_fname(&view, 1), PQfname(r, 1));
    ck_assert_str_eq(hc_pg_view_getvalue(&view, 0, 1), "alice");
    hc_pg_view_release(&view);
}
END_TEST

/* A row view of these bytes is HC_ERR_CODEC, empty, and leaves the value alone. */
static void assert_view_refuses(const void *p, size_t len)
{
    hc_value *bad = hc_value_new(p, len);
    hc_pg_view view;
    ck_assert_int_eq(hc__pgrowview_fill(bad, &view, NULL), HC_ERR_CODEC);
    ck_assert_int_eq(hc_pg_view_nfields(&view), 0);
    hc_value_release(bad);
}

START_TEST(test_unknown_shape_id_is_a_codec_error)
{
    hc_value *v = sample_value;
    const unsigned char *d = hc_value_data(v);
    size_t at = at_shape_id(d), cut = at_cells(d) - at, len;
    /* ids never handed out: one past the dictionary's bound, the largest varint */
    static const unsigned char past[2] = {0x81, 0x20}, largest[5] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    const unsigned char *ids[2] = {past, largest};
    size_t sizes[2] = {sizeof past, sizeof largest};
    ck_assert_uint_eq(0x01 | 0x20 << 7, HC_PGSHAPE_MAX_SHAPES + 1);
    for (int i = 0; i < 2; i++) {
        unsigned char *p = spliced(v, at, cut, ids[i], sizes[i], &len);
        assert_codec_error(p, len, "unknown shape");
        hc__pgshape *sh = (hc__pgshape *)1;
        ck_assert_int_eq(hc__pgcodec_shape(p, len, &sh, NULL), HC_ERR_CODEC);
        ck_assert_ptr_null(sh);
        assert_view_refuses(p, len);
        free(p);
    }
}
END_TEST

/* Shape bytes of nfields 1 column named name, loaded under settings. */
static size_t shape_bytes(unsigned char *p, uint64_t settings, const char *name)
{
    size_t nl = strlen(name), n = 0;
    p[n++] = 0;
    for (int i = 0; i < 8; i++) p[n++] = (unsigned char)(settings >> (8 * i));
    p[n++] = 1, p[n++] = 0, p[n++] = 0, p[n++] = 0;
    p[n++] = (unsigned char)nl, p[n++] = (unsigned char)(nl >> 8), p[n++] = 0, p[n++] = 0;
    memcpy(p + n, name, nl + 1);
    n += nl + 1;
    memset(p + n, 0, 21);
    return n + 21;
}

/* Written for any prior state of the dictionary: the suite also runs
 * without forking (valgrind), after other tests added shapes. */
START_TEST(test_the_dictionary_is_bounded_in_shapes)
{
    static unsigned char p[64];
    const uint64_t base = 0x5eed000000ULL;
    uint64_t added = 0, first = 0, id;
    while ((id = hc__pgshape_intern(p, shape_bytes(p, base + added, "c"))) != 0) {
        if (first == 0) first = id;
        ck_assert_uint_le(++added, HC_PGSHAPE_MAX_SHAPES);
    }
    size_t shapes, bytes;
    hc__pgshape_usage(&shapes, &bytes);
    ck_assert_uint_eq(shapes, HC_PGSHAPE_MAX_SHAPES); /* these shapes are small: the count filled up */
    ck_assert_uint_le(bytes, HC_PGSHAPE_MAX_BYTES);
    if (first != 0) {
        ck_assert_uint_eq(hc__pgshape_intern(p, shape_bytes(p, base, "c")), first); /* known ones still are */
        ck_assert_ptr_nonnull(hc__pgshape_get(first));
    }
    ck_assert_uint_eq(hc__pgshape_intern(p, 3), 0); /* not shape bytes */
    /* a full dictionary: results of a new shape store it inline and lose nothing */
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attr = {.name = (char *)"a_column_no_other_test_uses", .typid = 25, .typlen = -1};
    ck_assert(PQsetResultAttrs(r, 1, &attr));
    set(r, 0, 0, "v", 1);
    hc_value *v = encode_ok(r);
    hc__pgshape *sh = shape_of(v);
    ck_assert_uint_eq(sh->id, 0); /* inline */
    hc__pgshape_release(sh);
    PGresult *back = NULL;
    ck_assert_int_eq(hc__pgcodec_decode(hc_value_data(v), hc_value_len(v), NULL, &back, NULL), HC_OK);
    hc_assert_same_result(r, back);
    PQclear(back);
    hc_value_release(v);
    PQclear(r);
}
END_TEST

START_TEST(test_the_dictionary_is_bounded_in_bytes)
{
    static unsigned char p[1200];
    char name[1001];
    memset(name, 'n', 1000);
    name[1000] = '\0';
    uint64_t i = 0;
    while (hc__pgshape_intern(p, shape_bytes(p, i, name)) != 0) i++;
    size_t shapes, bytes;
    hc__pgshape_usage(&shapes, &bytes);
    ck_assert_uint_le(bytes, HC_PGSHAPE_MAX_BYTES);
    /* full: by bytes (the next shape did not fit), or by count already */
    ck_assert(bytes > HC_PGSHAPE_MAX_BYTES - 2000 || shapes == HC_PGSHAPE_MAX_SHAPES);
}
END_TEST

static void *shape_worker(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg;
    unsigned char p[64];
    for (uint64_t i = 0; i < 3000; i++) {
        uint64_t id = hc__pgshape_intern(p, shape_bytes(p, base + i % 50, "col"));
        hc__pgshape *s = hc__pgshape_get(id);
        if (s != NULL) {
            ck_assert_str_eq(s->attrs[0].name, "col");
            ck_assert_uint_eq(s->settings, base + i % 50);
            hc__pgshape_release(s);
        }
    }
    return NULL;
}

START_TEST(test_the_dictionary_is_shared_by_threads)
{
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, shape_worker, (void *)(i * 1000 + 7));
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
}
END_TEST

START_TEST(test_bad_magic_and_version_are_rejected)
{
    hc_value *v = sample_value;
    size_t len = hc_value_len(v);
    unsigned char *p = malloc(len);
    memcpy(p, hc_value_data(v), len);
    p[0] ^= 0x40;
    assert_codec_error(p, len, "bad magic");
    assert_view_refuses(p, len);
    memcpy(p, hc_value_data(v), len);
    p[1] = HC_PGCODEC_VERSION + 1;
    assert_codec_error(p, len, "format version 6");
    assert_view_refuses(p, len);
    free(p);
}
END_TEST

/* Versions 1-4 began "HCPG" and a version byte.  A cached value lives in
 * process memory only, so none can reach the decoder; if one did it must be
 * refused, saying which version it is, rather than misread. */
START_TEST(test_version_4_bytes_are_refused_saying_so)
{
    /* version 4, by id 1, 1 row of one cell "7": header, u64 id, u32 len, "7", NUL */
    static const unsigned char v4[] = {'H', 'C', 'P', 'G', 4, 0, 0, 0, 1, 0, 0, 0,
                                       1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, '7', 0};
    assert_codec_error(v4, sizeof v4, "format version 4; this library reads only version 5");
    int n;
    hc_error err;
    ck_assert_int_eq(hc__pgcodec_ntuples(v4, sizeof v4, &n, &err), HC_ERR_CODEC);
    hc__pgshape *sh = (hc__pgshape *)1;
    ck_assert_int_eq(hc__pgcodec_shape(v4, sizeof v4, &sh, NULL), HC_ERR_CODEC);
    ck_assert_ptr_null(sh);
    assert_view_refuses(v4, sizeof v4);
}
END_TEST

START_TEST(test_truncated_headers_are_rejected)
{
    static const struct {
        unsigned char b[4];
        size_t len;
        const char *why;
    } cases[] = {
        {{0}, 0, "truncated header"},
        {{HC_PGCODEC_MAGIC}, 1, "truncated header"},
        {{HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION}, 2, "truncated"},              /* no ntuples */
        {{HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION, 0x81}, 3, "truncated"},        /* ntuples cut */
        {{HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION, 1}, 3, "truncated"},           /* no shape id */
        {{HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION, 1, 0x81}, 4, "truncated"},     /* id cut */
        {{HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION, 1, 0}, 4, "truncated"},        /* no shape length */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* exactly len bytes, so ASan sees any over-read */
        unsigned char *p = malloc(cases[i].len ? cases[i].len : 1);
        memcpy(p, cases[i].b, cases[i].len);
        assert_codec_error(p, cases[i].len, cases[i].why);
        int n = -1;
        ck_assert_int_eq(hc__pgcodec_ntuples(p, cases[i].len, &n, NULL), HC_ERR_CODEC);
        ck_assert_int_eq(n, -1);
        assert_view_refuses(p, cases[i].len);
        free(p);
    }
    /* an inline shape longer than the bytes left */
    static const unsigned char shape_cut[] = {HC_PGCODEC_MAGIC, HC_PGCODEC_VERSION, 0, 0, 13, 0, 0};
    assert_codec_error(shape_cut, sizeof shape_cut, "shape length");
}
END_TEST

/* A varint with a shorter form is refused wherever it is (ntuples, shape id,
 * a cell's length): accepted, the same result would have two encodings. */
START_TEST(test_overlong_varints_are_rejected)
{
    hc_value *v = sample_value;
    const unsigned char *d = hc_value_data(v);
    size_t len, cells = at_cells(d);
    uint32_t x;
    ck_assert_uint_eq(varint_at(d + AT_NTUPLES, &x), 1);
    unsigned char two[2] = {(unsigned char)(x | 0x80), 0}; /* 2 rows, in 2 bytes */
    unsigned char *p = spliced(v, AT_NTUPLES, 1, two, 2, &len);
    assert_codec_error(p, len, "overlong varint");
    assert_view_refuses(p, len);
    free(p);
    size_t at = at_shape_id(d), idlen = varint_at(d + at, &x);
    unsigned char id[3] = {(unsigned char)(x | 0x80), (unsigned char)(x >> 7 | 0x80), 0};
    p = spliced(v, at, idlen, id, 3, &len);                /* the id, a byte longer */
    assert_codec_error(p, len, "overlong varint");
    assert_view_refuses(p, len);
    free(p);
    ck_assert_uint_eq(varint_at(d + cells, &x), 1);         /* "42": 3 */
    unsigned char cell[5] = {(unsigned char)(x | 0x80), 0x80, 0x80, 0x80, 0};
    p = spliced(v, cells, 1, cell, 5, &len);
    assert_codec_error(p, len, "overlong varint");
    assert_view_refuses(p, len);
    free(p);
}
END_TEST

/* Varints past 32 bits are refused, not wrapped: 2 + 2^32 rows must not
 * read as 2. */
START_TEST(test_varint_overflow_is_rejected)
{
    hc_value *v = sample_value;
    const unsigned char *d = hc_value_data(v);
    size_t len, cells = at_cells(d);
    static const unsigned char wraps_to_2[5] = {0x82, 0x80, 0x80, 0x80, 0x10};
    unsigned char *p = spliced(v, AT_NTUPLES, 1, wraps_to_2, 5, &len);
    assert_codec_error(p, len, "varint overflow");
    assert_view_refuses(p, len);
    free(p);
    static const unsigned char six[6] = {0x82, 0x80, 0x80, 0x80, 0x80, 0x00};
    p = spliced(v, AT_NTUPLES, 1, six, 6, &len);
    assert_codec_error(p, len, "varint overflow");
    free(p);
    /* a cell length of 3 + 2^32 */
    static const unsigned char cell[5] = {0x83, 0x80, 0x80, 0x80, 0x10};
    p = spliced(v, cells, 1, cell, 5, &len);
    assert_codec_error(p, len, "varint overflow");
    assert_view_refuses(p, len);
    free(p);
}
END_TEST

START_TEST(test_cell_lengths_past_the_end_or_the_cap_are_rejected)
{
    hc_value *v = sample_value;
    const unsigned char *d = hc_value_data(v);
    size_t len, cells = at_cells(d), vl = hc_value_len(v);
    /* the first cell ("42") claims every byte after its length: no room for its NUL */
    uint32_t claim = (uint32_t)(vl - cells - 1);
    unsigned char n[5];
    size_t nl = 0;
    for (uint32_t x = claim + 1; ; x >>= 7) {
        n[nl++] = (unsigned char)(x < 0x80 ? x : (x & 0x7f) | 0x80);
        if (x < 0x80) break;
    }
    unsigned char *p = spliced(v, cells, 1, n, nl, &len);
    assert_codec_error(p, len, "value length");
    assert_view_refuses(p, len);
    free(p);
    /* the largest length, and one past HC_MAX_VALUE_LEN (2^30): len + 1 = 2^30 + 2 */
    static const unsigned char huge[2][5] = {{0xff, 0xff, 0xff, 0xff, 0x0f}, {0x82, 0x80, 0x80, 0x80, 0x04}};
    for (int i = 0; i < 2; i++) {
        p = spliced(v, cells, 1, huge[i], 5, &len);
        assert_codec_error(p, len, "value length");
        assert_view_refuses(p, len);
        free(p);
    }
}
END_TEST

/* ------------------------------------------------------------ views */

/* The view of r's encoding reads the same cells as r. */
static void view_matches(PGresult *r)
{
    hc_value *v = encode_ok(r);
    hc_pg_view view;
    hc_error err;
    ck_assert_int_eq(hc__pgrowview_fill(v, &view, &err), HC_OK);
    ck_assert_int_eq(hc_pg_view_ntuples(&view), PQntuples(r));
    ck_assert_int_eq(hc_pg_view_nfields(&view), PQnfields(r));
    for (int f = 0; f < PQnfields(r); f++) {
        ck_assert_str_eq(hc_pg_view_fname(&view, f), PQfname(r, f));
        ck_assert_int_eq(hc_pg_view_fnumber(&view, PQfname(r, f)), f);
        ck_assert_uint_eq(hc_pg_view_ftype(&view, f), PQftype(r, f));
        ck_assert_int_eq(hc_pg_view_fformat(&view, f), PQfformat(r, f));
    }
    for (int t = 0; t < PQntuples(r); t++)
        for (int f = 0; f < PQnfields(r); f++) {
            int len = PQgetlength(r, t, f);
            const char *val = hc_pg_view_getvalue(&view, t, f);
            ck_assert_int_eq(hc_pg_view_getisnull(&view, t, f), PQgetisnull(r, t, f));
            ck_assert_int_eq(hc_pg_view_getlength(&view, t, f), len);
            ck_assert(memcmp(val, PQgetvalue(r, t, f), (size_t)len) == 0);
            ck_assert_int_eq(val[len], '\0');
        }
    hc_pg_view_release(&view); /* drops the reference encode_ok gave */
    PQclear(r);
}

START_TEST(test_view_reads_the_cells_nulls_and_empty_strings)
{
    view_matches(sample());
}
END_TEST

START_TEST(test_view_reads_binary_values_with_zero_bytes)
{
    PGresult *r = make_result(2, 1);
    set(r, 0, 0, "\0\0\0\x2a", 4);
    set(r, 0, 1, "a\0b", 3);
    view_matches(r);
}
END_TEST

START_TEST(test_view_of_many_cells_indexes_them_all)
{
    PGresult *r = make_result(HC_PG_VIEW_INLINE_FIELDS + 4, 0); /* past the inline arrays */
    for (int t = 0; t < 5; t++)
        for (int f = 0; f < HC_PG_VIEW_INLINE_FIELDS + 4; f++) {
            char b[16];
            int n = snprintf(b, sizeof b, "%d.%d", t, f);
            if ((t + f) % 7 != 3) set(r, t, f, b, n);
        }
    view_matches(r);
}
END_TEST

START_TEST(test_view_of_zero_rows)
{
    view_matches(make_result(3, 0));
}
END_TEST

START_TEST(test_view_accessors_out_of_range_answer_like_libpq)
{
    hc_value *v = hc_value_retain(sample_value); /* the view takes this reference */
    hc_pg_view view;
    ck_assert_int_eq(hc__pgrowview_fill(v, &view, NULL), HC_OK);
    ck_assert_ptr_null(hc_pg_view_getvalue(&view, 2, 0));
    ck_assert_ptr_null(hc_pg_view_getvalue(&view, 0, -1));
    ck_assert_int_eq(hc_pg_view_getlength(&view, -1, 0), 0);
    ck_assert_int_eq(hc_pg_view_getisnull(&view, 0, 3), 1);
    ck_assert_ptr_null(hc_pg_view_fname(&view, 3));
    ck_assert_uint_eq(hc_pg_view_ftype(&view, 3), 0);
    ck_assert_int_eq(hc_pg_view_fnumber(&view, "nope"), -1);
    ck_assert_str_eq(hc_pg_view_getvalue(&view, 1, 1), ""); /* NULL reads as "" */
    hc_pg_view_release(&view);
    hc_pg_view_release(&view); /* idempotent */
    hc_pg_view_release(NULL);
    ck_assert_int_eq(hc_pg_view_ntuples(&view), 0);
    ck_assert_ptr_null(hc_pg_view_getvalue(&view, 0, 0));
    ck_assert_int_eq(hc_pg_view_nfields(NULL), 0);
}
END_TEST

START_TEST(test_view_rejects_every_truncation_and_flip_in_the_cells)
{
    hc_value *v = sample_value;
    size_t len = hc_value_len(v);
    for (size_t cut = 0; cut < len; cut++) {
        hc_value *t = hc_value_new(hc_value_data(v), cut);
        hc_pg_view view;
        ck_assert_int_eq(hc__pgrowview_fill(t, &view, NULL), HC_ERR_CODEC);
        ck_assert_int_eq(hc_pg_view_ntuples(&view), 0);
        hc_value_release(t); /* a failed view leaves the value to the caller */
    }
    unsigned char *p = malloc(len + 1);
    memcpy(p, hc_value_data(v), len);
    p[len - 1] = 'x'; /* the last value's NUL */
    hc_value *bad = hc_value_new(p, len);
    hc_pg_view view;
    ck_assert_int_eq(hc__pgrowview_fill(bad, &view, NULL), HC_ERR_CODEC);
    p[len - 1] = '\0';
    p[len] = 0;
    hc_value *longer = hc_value_new(p, len + 1);
    ck_assert_int_eq(hc__pgrowview_fill(longer, &view, NULL), HC_ERR_CODEC); /* trailing byte */
    free(p);
    hc_value_release(bad);
    hc_value_release(longer);
}
END_TEST

START_TEST(test_impossible_counts_are_rejected_before_allocating)
{
    PGresult *r = make_result(3, 0);
    set(r, 0, 0, "1", 1);
    hc_value *v = encode_ok(r);
    size_t len;
    static const unsigned char int_max[5] = {0xff, 0xff, 0xff, 0xff, 0x07};
    unsigned char *p = spliced(v, AT_NTUPLES, 1, int_max, 5, &len); /* 2^31-1 rows of 3 columns in a few bytes */
    PGresult *back = NULL;
    hc_error err;
    assert_codec_error(p, len, "row count");
    assert_view_refuses(p, len);
    int n;
    ck_assert_int_eq(hc__pgcodec_ntuples(p, len, &n, &err), HC_OK);
    ck_assert_int_eq(n, INT32_MAX);
    p[AT_NTUPLES + 4] = 0x08; /* ntuples > INT_MAX */
    assert_codec_error(p, len, "row count");
    ck_assert_int_eq(hc__pgcodec_ntuples(p, len, &n, &err), HC_ERR_CODEC);
    ck_assert_int_eq(hc__pgcodec_decode(NULL, 0, NULL, &back, &err), HC_ERR_CODEC);
    ck_assert_int_eq(hc__pgcodec_decode(p, len, NULL, NULL, &err), HC_ERR_INVALID);
    free(p);
    hc_value_release(v);
    PQclear(r);
}
END_TEST

START_TEST(test_allocation_failure_while_decoding_is_nomem)
{
    /* an inline shape is parsed into an allocation of its own */
    PGresult *r = make_result(40, 0);
    set(r, 0, 0, "1", 1);
    hc_value *v = NULL;
    ck_assert_int_eq(hc__pgcodec_encode(r, &(hc__pgcodec_origin){.inline_shape = true}, &v, NULL), HC_OK);
    PGresult *back = (PGresult *)1;
    hc_error err;
    hc__alloc_fail_after(0);
    hc_status st = hc__pgcodec_decode(hc_value_data(v), hc_value_len(v), NULL, &back, &err);
    hc__alloc_fail_after(-1);
    ck_assert_int_eq(st, HC_ERR_NOMEM);
    ck_assert_int_eq(err.code, HC_ERR_NOMEM);
    ck_assert_ptr_null(back);
    hc_pg_view view;
    hc__alloc_fail_after(0);
    st = hc__pgrowview_fill(v, &view, &err);
    hc__alloc_fail_after(-1);
    ck_assert_int_eq(st, HC_ERR_NOMEM);
    hc_value_release(v);
    PQclear(r);
}
END_TEST

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_random_byte_flips_give_codec_error_or_a_valid_result)
{
    PGresult *r = make_result(3, 1);
    set(r, 0, 0, "\0\0\0\1", 4);
    set(r, 0, 1, "hello", 5);
    set(r, 0, 2, NULL, -1);
    set(r, 1, 0, "\0\0\0\2", 4);
    set(r, 1, 1, "", 0);
    set(r, 1, 2, "z", 1);
    hc_value *v = encode_ok(r);
    size_t len = hc_value_len(v);
    unsigned char *p = malloc(len);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int ok = 0, bad = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(p, hc_value_data(v), len);
        int flips = 1 + (int)(xorshift(&seed) % 3);
        for (int k = 0; k < flips; k++) p[xorshift(&seed) % len] ^= (unsigned char)(1u << (xorshift(&seed) % 8));
        PGresult *back = NULL;
        hc_error err;
        hc_status st = hc__pgcodec_decode(p, len, NULL, &back, &err);
        if (st == HC_OK) {
            /* whatever it decoded to must itself round-trip */
            ck_assert_ptr_nonnull(back);
            round_trip(back);
            ok++;
        } else {
            ck_assert_int_eq(st, HC_ERR_CODEC);
            ck_assert_ptr_null(back);
            bad++;
        }
    }
    ck_assert_int_gt(bad, 0);
    ck_assert_int_gt(ok, 0); /* flips inside values decode fine */
    free(p);
    hc_value_release(v);
    PQclear(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pgcodec");
    TCase *rt = tcase_create("round_trip");
    tcase_set_timeout(rt, 30);
    tcase_add_checked_fixture(rt, make_sample, free_sample);
    tcase_add_test(rt, test_round_trip_keeps_nulls_apart_from_empty_strings);
    tcase_add_test(rt, test_round_trip_zero_rows);
    tcase_add_test(rt, test_round_trip_zero_columns);
    tcase_add_test(rt, test_rows_without_columns_are_refused);
    tcase_add_test(rt, test_round_trip_wide_row_of_200_columns);
    tcase_add_test(rt, test_round_trip_large_value_of_1_mib);
    tcase_add_test(rt, test_round_trip_binary_format_keeps_embedded_zero_bytes);
    tcase_add_test(rt, test_round_trip_mixed_formats);
    tcase_add_test(rt, test_decoded_result_without_connection_supports_column_lookup);
    tcase_add_test(rt, test_null_and_empty_cells_encode_apart);
    tcase_add_test(rt, test_one_short_row_costs_a_few_bytes_beyond_its_cells);
    tcase_add_test(rt, test_binary_cells_across_varint_sizes_keep_their_zero_bytes);
    tcase_add_test(rt, test_round_trip_many_rows);
    suite_add_tcase(s, rt);
    TCase *view = tcase_create("view");
    tcase_add_checked_fixture(view, make_sample, free_sample);
    tcase_add_test(view, test_view_reads_the_cells_nulls_and_empty_strings);
    tcase_add_test(view, test_view_reads_binary_values_with_zero_bytes);
    tcase_add_test(view, test_view_of_many_cells_indexes_them_all);
    tcase_add_test(view, test_view_of_zero_rows);
    tcase_add_test(view, test_view_accessors_out_of_range_answer_like_libpq);
    tcase_add_test(view, test_view_rejects_every_truncation_and_flip_in_the_cells);
    suite_add_tcase(s, view);
    TCase *bad = tcase_create("bad_input");
    tcase_set_timeout(bad, 60);
    tcase_add_checked_fixture(bad, make_sample, free_sample);
    tcase_add_test(bad, test_encode_refuses_error_results_and_null);
    tcase_add_test(bad, test_every_truncation_is_rejected);
    tcase_add_test(bad, test_trailing_bytes_are_rejected);
    tcase_add_test(bad, test_bad_magic_and_version_are_rejected);
    tcase_add_test(bad, test_version_4_bytes_are_refused_saying_so);
    tcase_add_test(bad, test_truncated_headers_are_rejected);
    tcase_add_test(bad, test_overlong_varints_are_rejected);
    tcase_add_test(bad, test_varint_overflow_is_rejected);
    tcase_add_test(bad, test_cell_lengths_past_the_end_or_the_cap_are_rejected);
    tcase_add_test(bad, test_origin_is_recorded_and_matched);
    TCase *shapes = tcase_create("shapes");
    tcase_add_checked_fixture(shapes, make_sample, free_sample);
    tcase_add_test(shapes, test_results_of_one_shape_store_it_once);
    tcase_add_test(shapes, test_inline_shape_round_trips);
    tcase_add_test(shapes, test_unknown_shape_id_is_a_codec_error);
    tcase_add_test(shapes, test_the_dictionary_is_bounded_in_shapes);
    tcase_add_test(shapes, test_the_dictionary_is_bounded_in_bytes);
    tcase_add_test(shapes, test_the_dictionary_is_shared_by_threads);
    suite_add_tcase(s, shapes);
    tcase_add_test(bad, test_impossible_counts_are_rejected_before_allocating);
    tcase_add_test(bad, test_allocation_failure_while_decoding_is_nomem);
    tcase_add_test(bad, test_random_byte_flips_give_codec_error_or_a_valid_result);
    suite_add_tcase(s, bad);
    return hc_test_run_suite(s);
}
