/*
 * fuzz_pgcodec.c - libFuzzer target for the PGresult decoder: any bytes must
 * decode to HC_ERR_CODEC or to a result that re-encodes to the same bytes, and the
 * zero-copy view accepts the same inputs and shows the same cells.  Shapes come
 * inline (shape id 0) or by id: ids 1-3 are in the dictionary, others unknown.
 * Version 5 frames everything with varints, so the canonical re-encoding also
 * proves that no overlong or wrapped varint was accepted.
 * Not part of `make`; build by hand with clang after a normal build in $B:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I$B -Ilibhcpg/include -Ilibhcpg \
 *     -I$(pg_config --includedir) tests/fuzz/fuzz_pgcodec.c libhcpg/pgcodec.c libhcpg/pgrowview.c libhcpg/pgshape.c \
 *     $B/libhcpg/.libs/libhcpg.a -lpq -pthread -lm -o /tmp/fuzz_pgcodec
 *   /tmp/fuzz_pgcodec -max_total_time=60 -max_len=4096
 *
 * (run from the source tree; the codec, row view and shape sources are compiled again so the fuzzer
 * instruments it, the rest of the library comes from the archive.)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcodec.h"
#include "pgrowview.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The zero-copy view must accept exactly what the decoder accepts, and agree
 * with the decoded PGresult cell by cell. */
static void check_view(const uint8_t *data, size_t size, const PGresult *res)
{
    hc_value *v = hc_value_new(data, size);
    if (v == NULL) abort();
    hc_pg_view view;
    memset(&view, 0, sizeof view);
    hc_status st = hc__pgrowview_fill(v, &view, NULL);
    if ((st == HC_OK) != (res != NULL)) abort();
    if (st == HC_OK) {
        if (hc_pg_view_ntuples(&view) != PQntuples(res) || hc_pg_view_nfields(&view) != PQnfields(res))
            abort();
        for (int c = 0; c < PQnfields(res); c++) {
            if (strcmp(hc_pg_view_fname(&view, c), PQfname(res, c)) != 0) abort();
            if (hc_pg_view_ftype(&view, c) != PQftype(res, c)) abort();
        }
        for (int r = 0; r < PQntuples(res); r++)
            for (int c = 0; c < PQnfields(res); c++) {
                int len = PQgetlength(res, r, c);
                if (hc_pg_view_getisnull(&view, r, c) != PQgetisnull(res, r, c) ||
                    hc_pg_view_getlength(&view, r, c) != len ||
                    memcmp(hc_pg_view_getvalue(&view, r, c), PQgetvalue(res, r, c), (size_t)len) != 0 ||
                    hc_pg_view_getvalue(&view, r, c)[len] != '\0')
                    abort();
            }
    }
    if (st == HC_OK)
        hc_pg_view_release(&view); /* the view owns v's reference */
    else
        hc_value_release(v);
}

/* A few shapes in the dictionary (ids 1, 2, 3), so inputs that name them
 * by id decode; other ids are unknown.  Each is also a seed's shape. */
static void seed_shapes(void)
{
    static int done;
    if (done++) return;
    for (int cols = 0; cols < 3; cols++) {
        PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
        PGresAttDesc attrs[2] = {{.name = (char *)"id", .typid = 23, .typlen = 4},
                                 {.name = (char *)"name", .typid = 25, .typlen = -1, .format = 1}};
        hc_value *v = NULL;
        if (r == NULL || !PQsetResultAttrs(r, cols, attrs) ||
            hc__pgcodec_encode(r, &(hc__pgcodec_origin){.settings = (uint64_t)cols}, &v, NULL) != HC_OK)
            abort();
        hc_value_release(v);
        PQclear(r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seed_shapes();
    PGresult *res = NULL;
    if (hc__pgcodec_decode(data, size, NULL, &res, NULL) != HC_OK) {
        if (res != NULL) abort(); /* errors leave no result behind */
        check_view(data, size, NULL);
        return 0;
    }
    check_view(data, size, res);
    /* re-encoded under what its shape says, by id or inline as it was */
    hc__pgshape *shape = NULL;
    if (hc__pgcodec_shape(data, size, &shape, NULL) != HC_OK) abort();
    hc__pgcodec_origin origin = {.result_format = shape->result_format, .settings = shape->settings,
                                 .inline_shape = shape->id == 0};
    hc__pgshape_release(shape);
    hc_value *v = NULL;
    if (hc__pgcodec_encode(res, &origin, &v, NULL) != HC_OK) abort();
    /* the encoding is canonical: a valid input is its own re-encoding */
    if (hc_value_len(v) != size || memcmp(hc_value_data(v), data, size) != 0) abort();
    hc_value_release(v);
    PQclear(res);
    return 0;
}
