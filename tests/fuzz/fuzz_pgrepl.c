/*
 * fuzz_pgrepl.c - libFuzzer target for the logical replication stream parser
 * (CopyData 'w'/'k' messages and pgoutput inside them), built by
 * tests/fuzz/run.sh.
 *
 * Properties: parsing never crashes or overreads whatever the bytes (the
 * input is copied to an exact-size buffer); what it returns points inside
 * the input; a message that parses is refused once a byte is cut off.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgrepl.h"

static void inside(const char *p, size_t n, const char *buf, size_t len)
{
    if (p == NULL) return;
    if (p < buf || p + n > buf + len) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) return 0;
    memcpy(buf, data, size);
    hc_repl_msg m;
    if (hc__repl_parse(buf, size, &m, NULL) == HC_OK) {
        if (m.kind == HC_REPL_MESSAGE) {
            inside(m.prefix, strlen(m.prefix) + 1, buf, size);
            inside(m.content, m.content_len, buf, size);
        }
        hc_repl_msg m2;
        if (size > 0 && hc__repl_parse(buf, size - 1, &m2, NULL) == HC_OK) abort();
    }
    uint64_t lsn;
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
        (void)hc__repl_parse_lsn(s, &lsn);
        free(s);
    }
    free(buf);
    return 0;
}
