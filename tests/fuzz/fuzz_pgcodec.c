/*
 * fuzz_pgcodec.c - libFuzzer target for the PGresult decoder: any bytes must
 * decode to HC_ERR_CODEC or to a result that re-encodes to the same bytes.
 * Not part of `make`; build by hand with clang after a normal build in $B:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I$B -Ilibhcpg/include -Ilibhcpg \
 *     -I$(pg_config --includedir) tests/fuzz/fuzz_pgcodec.c libhcpg/pgcodec.c \
 *     $B/libhcpg/.libs/libhcpg.a -lpq -pthread -lm -o /tmp/fuzz_pgcodec
 *   /tmp/fuzz_pgcodec -max_total_time=60 -max_len=4096
 *
 * (run from the source tree; pgcodec.c is compiled again so the fuzzer
 * instruments it, the rest of the library comes from the archive.)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PGresult *res = NULL;
    if (hc__pgcodec_decode(data, size, NULL, &res, NULL) != HC_OK) {
        if (res != NULL) abort(); /* errors leave no result behind */
        return 0;
    }
    hc_value *v = NULL;
    if (hc__pgcodec_encode(res, &v, NULL) != HC_OK) abort();
    /* the encoding is canonical: a valid input is its own re-encoding */
    if (hc_value_len(v) != size || memcmp(hc_value_data(v), data, size) != 0) abort();
    hc_value_release(v);
    PQclear(res);
    return 0;
}
