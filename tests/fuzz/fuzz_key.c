/*
 * fuzz_key.c - libFuzzer target for key escaping (hc_key_build, hc_key_table_tag).
 * Built and run by tests/fuzz/run.sh (scripts/test.sh runs it briefly).
 *
 * Input: segments separated by 0xFF bytes; a segment consisting of the single
 * byte 0xFE stands for SQL NULL.  Properties:
 *  - building never crashes and never writes past the buffer, whatever the sizes;
 *  - a built key splits back (on unescaped ':') into exactly the input segments,
 *    so two different segment lists never give the same key;
 *  - the table-wide tag of the first segment never equals a key with that entity.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hydracache/cache.h"

#define MAXSEG 16

/* Split key on unescaped ':' and unescape each segment; NULL "\N" -> flag. */
static int unescape(const char *key, char segs[MAXSEG][HC_MAX_KEY_LEN + 1], int isnull[MAXSEG])
{
    int n = 0;
    size_t len = 0;
    isnull[0] = 0;
    for (const char *p = key;; p++) {
        if (*p == '\0' || *p == ':') {
            if (n >= MAXSEG) abort();
            segs[n][len] = '\0';
            n++;
            if (*p == '\0') return n;
            len = 0;
            isnull[n < MAXSEG ? n : 0] = 0;
            continue;
        }
        if (*p == '\\') {
            p++;
            if (*p == 'N' && len == 0 && (p[1] == ':' || p[1] == '\0')) {
                isnull[n] = 1;
                continue;
            }
            if (*p != '\\' && *p != ':' && *p != '*') abort(); /* escaping never makes this */
        } else if (*p == '*') {
            abort(); /* a bare '*' would collide with table tags */
        }
        segs[n][len++] = *p;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char segbuf[MAXSEG][HC_MAX_KEY_LEN + 1];
    static char back[MAXSEG][HC_MAX_KEY_LEN + 1];
    const char *segs[MAXSEG];
    int backnull[MAXSEG];
    size_t n = 0, len = 0;
    for (size_t i = 0; i <= size && n < MAXSEG; i++) {
        if (i == size || data[i] == 0xFF) {
            segbuf[n][len] = '\0';
            segs[n] = (len == 1 && (uint8_t)segbuf[n][0] == 0xFE) ? NULL : segbuf[n];
            n++;
            len = 0;
            continue;
        }
        if (data[i] == 0 || len >= HC_MAX_KEY_LEN) continue; /* C strings: no NUL inside */
        segbuf[n][len++] = (char)data[i];
    }
    if (n < 2 || segs[0] == NULL) return 0;

    char key[HC_MAX_KEY_LEN + 1], tag[HC_MAX_KEY_LEN + 1];
    size_t klen = 0;
    size_t cap = 1 + (size % sizeof key); /* exercise small buffers too */
    hc_status st = hc_key_build(key, cap, &klen, segs, n, NULL);
    if (st != HC_OK) {
        if (st != HC_ERR_TOO_LARGE) abort();
        return 0;
    }
    if (strlen(key) != klen || klen >= cap) abort();
    int m = unescape(key, back, backnull);
    if ((size_t)m != n) abort();
    for (size_t i = 0; i < n; i++) {
        if (segs[i] == NULL) {
            if (!backnull[i]) abort();
        } else if (backnull[i] || strcmp(segs[i], back[i]) != 0) {
            abort();
        }
    }
    if (hc_key_table_tag(tag, sizeof tag, segs[0], NULL) == HC_OK && strcmp(tag, key) == 0) abort();
    return 0;
}
