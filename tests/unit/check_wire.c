/* check_wire.c - wire format v1: strict parsing, exact escaping, splitting, shared vectors. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hc_test.h"
#include "hydracache/transport.h"
#include "wire.h"

/* Parse from a heap copy of exactly len bytes, so ASan catches any overread. */
static hc_status parse_exact(const char *bytes, size_t len, hc_wire_msg *m)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, bytes, len);
    hc_error err = {0};
    hc_status st = hc_wire_parse(copy, len, m, &err);
    if (st != HC_OK) ck_assert_int_eq(err.code, st);
    free(copy);
    return st;
}

static hc_status parse_str(const char *s, hc_wire_msg *m)
{
    return parse_exact(s, strlen(s), m);
}

static void assert_malformed(const char *s)
{
    hc_wire_msg m;
    ck_assert_msg(parse_str(s, &m) == HC_ERR_INVALID, "accepted malformed payload [%s]", s);
    ck_assert_uint_eq(m.nargs, 0);
    hc_wire_msg_clear(&m);
}

START_TEST(test_parse_tags_message)
{
    hc_wire_msg m;
    ck_assert_int_eq(parse_str("hc1 db t user:42 users", &m), HC_OK);
    ck_assert_str_eq(m.origin, "db");
    ck_assert_int_eq(m.op, HC_WIRE_TAGS);
    ck_assert_uint_eq(m.nargs, 2);
    ck_assert_str_eq(m.args[0], "user:42");
    ck_assert_str_eq(m.args[1], "users");
    ck_assert_uint_eq(m.arg_len[1], 5);
    hc_wire_msg_clear(&m);
    hc_wire_msg_clear(&m); /* idempotent */
}
END_TEST

START_TEST(test_parse_keys_flush_and_sync)
{
    hc_wire_msg m;
    ck_assert_int_eq(parse_str("hc1 node-A.1_x k item:1", &m), HC_OK);
    ck_assert_str_eq(m.origin, "node-A.1_x");
    ck_assert_int_eq(m.op, HC_WIRE_KEYS);
    ck_assert_uint_eq(m.nargs, 1);
    hc_wire_msg_clear(&m);

    ck_assert_int_eq(parse_str("hc1 db f", &m), HC_OK);
    ck_assert_int_eq(m.op, HC_WIRE_FLUSH);
    ck_assert_uint_eq(m.nargs, 0);
    ck_assert_ptr_null(m.args);
    hc_wire_msg_clear(&m);

    ck_assert_int_eq(parse_str("hc1 n1 s abc.7", &m), HC_OK);
    ck_assert_int_eq(m.op, HC_WIRE_SYNC);
    ck_assert_str_eq(m.args[0], "abc.7");
    hc_wire_msg_clear(&m);
}
END_TEST

START_TEST(test_parse_decodes_percent_escapes_in_either_case)
{
    hc_wire_msg m;
    ck_assert_int_eq(parse_str("hc1 db k a%20b%25c%0a%7F%7f%00z", &m), HC_OK);
    ck_assert_uint_eq(m.nargs, 1);
    ck_assert_uint_eq(m.arg_len[0], 10);
    ck_assert_int_eq(memcmp(m.args[0], "a b%c\n\x7f\x7f\0z", 10), 0);
    hc_wire_msg_clear(&m);
}
END_TEST

START_TEST(test_parse_keeps_utf8_and_key_punctuation)
{
    hc_wire_msg m;
    ck_assert_int_eq(parse_str("hc1 db t user:a\\:b user:\\* caf\xc3\xa9:\\N", &m), HC_OK);
    ck_assert_uint_eq(m.nargs, 3);
    ck_assert_str_eq(m.args[0], "user:a\\:b");
    ck_assert_str_eq(m.args[1], "user:\\*");
    ck_assert_str_eq(m.args[2], "caf\xc3\xa9:\\N");
    hc_wire_msg_clear(&m);
}
END_TEST

START_TEST(test_parse_rejects_wrong_version)
{
    assert_malformed("hc2 db t x");
    assert_malformed("HC1 db t x");
    assert_malformed("hc1");
    assert_malformed("hc");
    assert_malformed("");
    assert_malformed("hello world");
}
END_TEST

START_TEST(test_parse_rejects_bad_origin)
{
    assert_malformed("hc1  t x");
    assert_malformed("hc1 no/de t x");
    assert_malformed("hc1 n\xc3\xa9 t x");
    assert_malformed("hc1 db");
    char buf[200];
    snprintf(buf, sizeof buf, "hc1 %065d t x", 0); /* 65 bytes */
    assert_malformed(buf);
    snprintf(buf, sizeof buf, "hc1 %064d t x", 0); /* 64 bytes: the maximum */
    hc_wire_msg m;
    ck_assert_int_eq(parse_str(buf, &m), HC_OK);
    ck_assert_uint_eq(strlen(m.origin), 64);
    hc_wire_msg_clear(&m);
}
END_TEST

START_TEST(test_parse_rejects_unknown_op)
{
    assert_malformed("hc1 db x a");
    assert_malformed("hc1 db tt a");
    assert_malformed("hc1 db T a");
    assert_malformed("hc1 db ");
}
END_TEST

START_TEST(test_parse_rejects_wrong_arg_count)
{
    assert_malformed("hc1 db t");
    assert_malformed("hc1 db k");
    assert_malformed("hc1 db f x");
    assert_malformed("hc1 db s");
    assert_malformed("hc1 db s a b");
}
END_TEST

START_TEST(test_parse_rejects_bad_escape)
{
    assert_malformed("hc1 db t a%");
    assert_malformed("hc1 db t a%4");
    assert_malformed("hc1 db t a%4 b");
    assert_malformed("hc1 db t a%G1");
    assert_malformed("hc1 db t %%41");
}
END_TEST

START_TEST(test_parse_rejects_empty_args_and_extra_spaces)
{
    assert_malformed("hc1 db t a  b");
    assert_malformed("hc1 db t a ");
    assert_malformed("hc1 db t  a");
    assert_malformed(" hc1 db t a");
    assert_malformed("hc1  db t a");
    assert_malformed("hc1 db  t a");
}
END_TEST

START_TEST(test_parse_rejects_raw_control_bytes)
{
    assert_malformed("hc1 db t a\tb");
    assert_malformed("hc1 db t a\nb");
    assert_malformed("hc1 db t a\x7f");
    hc_wire_msg m;
    ck_assert_int_eq(parse_exact("hc1 db t a\0b", 12, &m), HC_ERR_INVALID);
    hc_wire_msg_clear(&m);
}
END_TEST

/* The parser's limit (wire.c's HC_WIRE_MAX_RECEIVE): 4 x 8000 bytes, since a
 * payload re-encoded into the listener's client_encoding can outgrow 7999. */
#define RECEIVE_MAX HC_WIRE_MAX_RECEIVE

START_TEST(test_parse_accepts_payload_longer_than_the_encode_limit)
{
    /* 8500 bytes: a 7999-byte LATIN1 payload arriving in UTF8 can be this long. */
    char *p = malloc(8500);
    memcpy(p, "hc1 db t ", 9);
    memset(p + 9, 'a', 8500 - 9);
    hc_wire_msg m;
    ck_assert_int_eq(parse_exact(p, 8500, &m), HC_OK);
    ck_assert_int_eq(m.op, HC_WIRE_TAGS);
    ck_assert_uint_eq(m.nargs, 1);
    ck_assert_uint_eq(m.arg_len[0], 8500 - 9);
    hc_wire_msg_clear(&m);
    free(p);
}
END_TEST

START_TEST(test_parse_rejects_oversized_payload)
{
    char *p = malloc(RECEIVE_MAX + 2);
    memcpy(p, "hc1 db t ", 9);
    memset(p + 9, 'a', RECEIVE_MAX + 1 - 9);
    hc_wire_msg m;
    ck_assert_int_eq(parse_exact(p, RECEIVE_MAX, &m), HC_OK);
    ck_assert_uint_eq(m.arg_len[0], RECEIVE_MAX - 9);
    hc_wire_msg_clear(&m);
    ck_assert_int_eq(parse_exact(p, RECEIVE_MAX + 1, &m), HC_ERR_TOO_LARGE);
    free(p);
}
END_TEST

START_TEST(test_parse_never_reads_past_the_length)
{
    /* Every prefix of valid payloads is parsed from an exact-size heap block
     * (ASan reports any overread); the full ones parse. */
    const char *valid[] = {"hc1 db t user:42 users", "hc1 n s tok%20en", "hc1 db f",
                           "hc1 db k a%41"};
    for (size_t v = 0; v < sizeof valid / sizeof *valid; v++) {
        size_t n = strlen(valid[v]);
        for (size_t len = 0; len <= n; len++) {
            hc_wire_msg m;
            hc_status st = parse_exact(valid[v], len, &m);
            if (len == n) ck_assert_int_eq(st, HC_OK);
            hc_wire_msg_clear(&m);
        }
    }
}
END_TEST

START_TEST(test_parse_rejects_null_arguments)
{
    hc_wire_msg m;
    hc_error err;
    ck_assert_int_eq(hc_wire_parse(NULL, 3, &m, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_parse("hc1 db f", 8, NULL, &err), HC_ERR_INVALID);
    hc_wire_msg_clear(NULL);
}
END_TEST

/* ------------------------------------------------------------------ encoder */

typedef struct collected {
    size_t n;
    char payload[16][HC_WIRE_MAX_PAYLOAD + 1];
    size_t len[16];
    int fail_at; /* -1: never */
} collected;

static hc_status collect(void *ctx, const char *payload, size_t len)
{
    collected *c = ctx;
    ck_assert_uint_le(len, HC_WIRE_MAX_PAYLOAD);
    ck_assert_uint_eq(strlen(payload), len);
    if (c->fail_at >= 0 && (size_t)c->fail_at == c->n) return HC_ERR_PG;
    ck_assert_uint_lt(c->n, 16);
    memcpy(c->payload[c->n], payload, len + 1);
    c->len[c->n++] = len;
    return HC_OK;
}

static collected *collected_new(void)
{
    collected *c = calloc(1, sizeof *c);
    c->fail_at = -1;
    return c;
}

START_TEST(test_escape_is_exactly_per_protocol)
{
    const char in[] = "a b%c\x01\x1f\x7f:\\*\xc3\xa9~";
    char out[64];
    size_t n = hc__wire_escape(out, in, sizeof in - 1);
    ck_assert_uint_eq(n, hc__wire_escaped_len(in, sizeof in - 1));
    out[n] = '\0';
    ck_assert_str_eq(out, "a%20b%25c%01%1F%7F:\\*\xc3\xa9~");
}
END_TEST

START_TEST(test_encode_single_message)
{
    collected *c = collected_new();
    const char *args[] = {"user:42", "a b"};
    ck_assert_int_eq(hc_wire_encode("n1", HC_WIRE_TAGS, args, 2, collect, c, NULL), HC_OK);
    ck_assert_uint_eq(c->n, 1);
    ck_assert_str_eq(c->payload[0], "hc1 n1 t user:42 a%20b");
    c->n = 0;
    ck_assert_int_eq(hc_wire_encode("n1", HC_WIRE_FLUSH, NULL, 0, collect, c, NULL), HC_OK);
    ck_assert_str_eq(c->payload[0], "hc1 n1 f");
    free(c);
}
END_TEST

START_TEST(test_encode_roundtrips_every_byte)
{
    char arg[256];
    size_t n = 0;
    for (int b = 1; b < 256; b++) arg[n++] = (char)b;
    arg[n] = '\0';
    const char *args[] = {arg};
    collected *c = collected_new();
    ck_assert_int_eq(hc_wire_encode("x", HC_WIRE_KEYS, args, 1, collect, c, NULL), HC_OK);
    hc_wire_msg m;
    ck_assert_int_eq(parse_exact(c->payload[0], c->len[0], &m), HC_OK);
    ck_assert_uint_eq(m.arg_len[0], 255);
    ck_assert_int_eq(memcmp(m.args[0], arg, 255), 0);
    hc_wire_msg_clear(&m);
    free(c);
}
END_TEST

START_TEST(test_encode_splits_long_lists_with_full_headers)
{
    enum { N = 3000 };
    static char bufs[N][16];
    const char *args[N];
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof bufs[i], "tag %d", i); /* escaped: tag%20<i> */
        args[i] = bufs[i];
    }
    collected *c = collected_new();
    ck_assert_int_eq(hc_wire_encode("node7", HC_WIRE_TAGS, args, N, collect, c, NULL), HC_OK);
    ck_assert_uint_gt(c->n, 1);
    size_t next = 0;
    for (size_t p = 0; p < c->n; p++) {
        ck_assert_int_eq(strncmp(c->payload[p], "hc1 node7 t ", 12), 0);
        hc_wire_msg m;
        ck_assert_int_eq(parse_exact(c->payload[p], c->len[p], &m), HC_OK);
        for (size_t i = 0; i < m.nargs; i++) ck_assert_str_eq(m.args[i], args[next++]);
        if (p + 1 < c->n) { /* full: the next arg would not have fitted */
            size_t el = hc__wire_escaped_len(args[next], strlen(args[next]));
            ck_assert_uint_gt(c->len[p] + 1 + el, HC_WIRE_MAX_PAYLOAD);
        }
        hc_wire_msg_clear(&m);
    }
    ck_assert_uint_eq(next, N);
    free(c);
}
END_TEST

START_TEST(test_encode_fills_payload_to_exactly_7999_bytes)
{
    /* header "hc1 n k" is 7 bytes; one arg of 7991 bytes + its space = 7999. */
    char *a = malloc(7992);
    memset(a, 'k', 7991);
    a[7991] = '\0';
    const char *args[] = {a, "z"};
    collected *c = collected_new();
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, args, 1, collect, c, NULL), HC_OK);
    ck_assert_uint_eq(c->n, 1);
    ck_assert_uint_eq(c->len[0], 7999);
    c->n = 0;
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, args, 2, collect, c, NULL), HC_OK);
    ck_assert_uint_eq(c->n, 2);
    ck_assert_str_eq(c->payload[1], "hc1 n k z");
    free(a);
    free(c);
}
END_TEST

START_TEST(test_encode_refuses_an_arg_that_cannot_fit_and_emits_nothing)
{
    char *a = malloc(7993);
    memset(a, 'k', 7992); /* 7 + 1 + 7992 = 8000 */
    a[7992] = '\0';
    const char *args[] = {"fine", a};
    collected *c = collected_new();
    hc_error err;
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, args, 2, collect, c, &err),
                     HC_ERR_TOO_LARGE);
    ck_assert_uint_eq(c->n, 0);
    /* escaping counts: 3000 spaces escape to 9000 bytes */
    memset(a, ' ', 3000);
    a[3000] = '\0';
    const char *one[] = {a};
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, one, 1, collect, c, &err),
                     HC_ERR_TOO_LARGE);
    ck_assert_uint_eq(c->n, 0);
    free(a);
    free(c);
}
END_TEST

START_TEST(test_encode_rejects_bad_origin_op_and_arity)
{
    collected *c = collected_new();
    const char *args[] = {"a", "b"};
    const char *empty[] = {""};
    const char *null[] = {NULL};
    ck_assert_int_eq(hc_wire_encode("bad origin", HC_WIRE_KEYS, args, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode(NULL, HC_WIRE_KEYS, args, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", (hc_wire_op)'x', args, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, args, 0, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_FLUSH, args, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_SYNC, args, 2, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_TAGS, empty, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_TAGS, null, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_TAGS, args, 1, NULL, c, NULL), HC_ERR_INVALID);
    ck_assert_uint_eq(c->n, 0);
    free(c);
}
END_TEST

START_TEST(test_encode_propagates_emit_failure)
{
    enum { N = 2000 };
    static char bufs[N][16];
    const char *args[N];
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof bufs[i], "tag:%d", i);
        args[i] = bufs[i];
    }
    collected *c = collected_new();
    c->fail_at = 1;
    hc_error err;
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_TAGS, args, N, collect, c, &err), HC_ERR_PG);
    ck_assert_uint_eq(c->n, 1);
    free(c);
}
END_TEST

/* ------------------------------------------------------------ shared vectors */

/* Undo COPY text-format escapes in place; returns false for \N (NULL). */
static bool copy_unescape(char *s, size_t *len_out)
{
    if (strcmp(s, "\\N") == 0) return false;
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '\\' || r[1] == '\0') {
            *w++ = *r;
            continue;
        }
        r++;
        switch (*r) {
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'v': *w++ = '\v'; break;
        case 'x': {
            int v = 0, k = 0;
            while (k < 2 && strchr("0123456789abcdefABCDEF", r[1]) && r[1]) {
                char h = *++r;
                v = v * 16 + (h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
                k++;
            }
            *w++ = (char)v;
            break;
        }
        default:
            if (*r >= '0' && *r <= '7') {
                int v = *r - '0', k = 1;
                while (k < 3 && r[1] >= '0' && r[1] <= '7') v = v * 8 + (*++r - '0'), k++;
                *w++ = (char)v;
            } else {
                *w++ = *r;
            }
        }
    }
    *len_out = (size_t)(w - s);
    *w = '\0';
    return true;
}

/* Parse a text[] literal ("{a,\"b c\"}") into up to cap malloc'd strings. */
static size_t array_parse(const char *s, char **out, size_t cap)
{
    size_t n = 0;
    ck_assert_msg(s[0] == '{', "bad array literal %s", s);
    const char *p = s + 1;
    if (*p == '}') return 0;
    for (;;) {
        char *e = malloc(strlen(s) + 1);
        size_t k = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1]) p++;
                e[k++] = *p;
            }
            ck_assert_int_eq(*p, '"');
            p++;
        } else {
            for (; *p && *p != ',' && *p != '}'; p++) {
                if (*p == '\\' && p[1]) p++;
                e[k++] = *p;
            }
        }
        e[k] = '\0';
        ck_assert_uint_lt(n, cap);
        out[n++] = e;
        if (*p == ',') {
            p++;
            continue;
        }
        ck_assert_int_eq(*p, '}');
        return n;
    }
}

START_TEST(test_shared_vectors_pass)
{
    char path[4096];
    hc_test_srcpath("tests/vectors/wire_v1.tsv", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "check_wire: %s not present yet; shared vectors not checked\n", path);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rows = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n') line[--got] = '\0';
        if (got == 0 || line[0] == '#') continue;
        char *field[5] = {0};
        int nf = 0;
        char *save = line;
        for (; nf < 5; nf++) {
            field[nf] = save;
            char *tab = strchr(save, '\t');
            if (tab == NULL) {
                nf++;
                break;
            }
            *tab = '\0';
            save = tab + 1;
        }
        ck_assert_msg(nf == 5, "vector row %d has %d fields", rows + 1, nf);
        bool valid = strcmp(field[0], "t") == 0 || strcmp(field[0], "true") == 0;
        size_t plen = 0;
        ck_assert(copy_unescape(field[1], &plen));
        hc_wire_msg m;
        hc_status st = parse_exact(field[1], plen, &m);
        if (!valid && plen > HC_WIRE_MAX_PAYLOAD && plen <= RECEIVE_MAX) {
            /* Invalid only by length: 7999 bounds what a sender may emit
             * (the encoder tests check that); a listener accepts longer
             * payloads, which re-encoding to its client_encoding produces. */
            hc_wire_msg_clear(&m);
        } else if (!valid) {
            ck_assert_msg(st != HC_OK, "vector row %d: accepted invalid payload [%s]", rows + 1,
                          field[1]);
        } else {
            ck_assert_msg(st == HC_OK, "vector row %d: rejected valid payload [%s]", rows + 1,
                          field[1]);
            size_t l;
            ck_assert(copy_unescape(field[2], &l));
            ck_assert_str_eq(m.origin, field[2]);
            ck_assert(copy_unescape(field[3], &l));
            ck_assert_int_eq(m.op, field[3][0]);
            if (copy_unescape(field[4], &l)) {
                char *want[4096];
                size_t nw = array_parse(field[4], want, 4096);
                ck_assert_uint_eq(m.nargs, nw);
                for (size_t i = 0; i < nw; i++) {
                    ck_assert_str_eq(m.args[i], want[i]);
                    free(want[i]);
                }
            }
        }
        hc_wire_msg_clear(&m);
        rows++;
    }
    free(line);
    fclose(f);
    ck_assert_int_gt(rows, 0);
}
END_TEST

/* ------------------------------------------- the public codec (transport.h) */

/* A mixed message goes out through hc_wire_encode and comes back through
 * hc_wire_parse unchanged: origin, op, every arg and its length, in order. */
START_TEST(test_public_codec_round_trip)
{
    const char *args[] = {"user:42", "a b%c", "t\x01\x7f", "caf\xc3\xa9", "order:*"};
    const size_t nargs = sizeof args / sizeof args[0];
    static const hc_wire_op ops[] = {HC_WIRE_TAGS, HC_WIRE_KEYS};
    for (size_t o = 0; o < 2; o++) {
        collected *c = collected_new();
        hc_error err;
        ck_assert_int_eq(hc_wire_encode("node-1.a_b", ops[o], args, nargs, collect, c, &err),
                         HC_OK);
        ck_assert_uint_eq(c->n, 1);
        hc_wire_msg m;
        ck_assert_int_eq(hc_wire_parse(c->payload[0], c->len[0], &m, &err), HC_OK);
        ck_assert_str_eq(m.origin, "node-1.a_b");
        ck_assert_int_eq(m.op, ops[o]);
        ck_assert_uint_eq(m.nargs, nargs);
        for (size_t i = 0; i < nargs; i++) {
            ck_assert_uint_eq(m.arg_len[i], strlen(args[i]));
            ck_assert_str_eq(m.args[i], args[i]);
        }
        hc_wire_msg_clear(&m);
        free(c);
    }
    /* flush and sync: no args, one token */
    collected *c = collected_new();
    const char *token[] = {"0123abcd:7"};
    ck_assert_int_eq(hc_wire_encode(HC_WIRE_DB_ORIGIN, HC_WIRE_FLUSH, NULL, 0, collect, c, NULL),
                     HC_OK);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_SYNC, token, 1, collect, c, NULL), HC_OK);
    ck_assert_uint_eq(c->n, 2);
    hc_wire_msg m;
    ck_assert_int_eq(hc_wire_parse(c->payload[0], c->len[0], &m, NULL), HC_OK);
    ck_assert_str_eq(m.origin, "db");
    ck_assert_int_eq(m.op, HC_WIRE_FLUSH);
    ck_assert_uint_eq(m.nargs, 0);
    ck_assert_ptr_null(m.args);
    ck_assert_ptr_null(m.arg_len);
    hc_wire_msg_clear(&m);
    ck_assert_int_eq(hc_wire_parse(c->payload[1], c->len[1], &m, NULL), HC_OK);
    ck_assert_int_eq(m.op, HC_WIRE_SYNC);
    ck_assert_uint_eq(m.nargs, 1);
    ck_assert_str_eq(m.args[0], token[0]);
    hc_wire_msg_clear(&m);
    free(c);
}
END_TEST

/* Malformed input is refused with HC_ERR_INVALID and a message that says why,
 * and leaves the message empty. */
START_TEST(test_public_codec_rejects_malformed_input_with_a_reason)
{
    static const struct {
        const char *payload, *message;
    } cases[] = {
        {"", "malformed payload: not an hc payload"},
        {"hello world", "malformed payload: not an hc payload"},
        {"hc2 n k a", "malformed payload: unknown version"},
        {"hc1 bad/origin k a", "malformed payload: bad origin"},
        {"hc1 n", "malformed payload: missing op"},
        {"hc1 n x a", "malformed payload: unknown op"},
        {"hc1 n k", "malformed payload: op needs at least one arg"},
        {"hc1 n f a", "malformed payload: flush takes no args"},
        {"hc1 n s a b", "malformed payload: sync takes exactly one arg"},
        {"hc1 n k a%4", "malformed payload: bad % escape"},
        {"hc1 n k a\tb", "malformed payload: unescaped control byte"},
        {"hc1 n k a  b", "malformed payload: empty arg"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hc_wire_msg m;
        memset(&m, 0x5a, sizeof m);
        hc_error err = {0};
        hc_status st = hc_wire_parse(cases[i].payload, strlen(cases[i].payload), &m, &err);
        ck_assert_msg(st == HC_ERR_INVALID, "[%s] gave %d", cases[i].payload, st);
        ck_assert_int_eq(err.code, HC_ERR_INVALID);
        ck_assert_str_eq(err.message, cases[i].message);
        ck_assert_uint_eq(m.nargs, 0);
        ck_assert_ptr_null(m.args);
        ck_assert_ptr_null(m.storage_);
        hc_wire_msg_clear(&m); /* harmless */
        ck_assert_int_eq(hc_wire_parse(cases[i].payload, strlen(cases[i].payload), &m, NULL),
                         HC_ERR_INVALID); /* err may be NULL */
    }
    hc_wire_msg m;
    hc_error err;
    char *big = malloc(HC_WIRE_MAX_RECEIVE + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', HC_WIRE_MAX_RECEIVE + 1);
    memcpy(big, "hc1 n k ", 8);
    ck_assert_int_eq(hc_wire_parse(big, HC_WIRE_MAX_RECEIVE + 1, &m, &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(err.code, HC_ERR_TOO_LARGE);
    ck_assert_ptr_null(m.storage_);
    free(big);
}
END_TEST

/* NULL arguments are refused (or, for hc_wire_msg_clear, ignored), never
 * dereferenced; nothing is emitted for a refused encoding. */
START_TEST(test_public_codec_null_arguments)
{
    hc_wire_msg m;
    hc_error err;
    ck_assert_int_eq(hc_wire_parse(NULL, 0, &m, &err), HC_ERR_INVALID);
    ck_assert_str_eq(err.message, "NULL payload");
    ck_assert_uint_eq(m.nargs, 0);
    ck_assert_int_eq(hc_wire_parse("hc1 n f", 7, NULL, &err), HC_ERR_INVALID);
    ck_assert_str_eq(err.message, "NULL message");
    ck_assert_int_eq(hc_wire_parse(NULL, 0, NULL, NULL), HC_ERR_INVALID);
    hc_wire_msg_clear(NULL);

    collected *c = collected_new();
    const char *args[] = {"a"}, *null_arg[] = {NULL};
    ck_assert_int_eq(hc_wire_encode(NULL, HC_WIRE_KEYS, args, 1, collect, c, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, args, 1, NULL, c, &err), HC_ERR_INVALID);
    ck_assert_str_eq(err.message, "NULL emit callback");
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, NULL, 1, collect, c, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_wire_encode("n", HC_WIRE_KEYS, null_arg, 1, collect, c, NULL),
                     HC_ERR_INVALID);
    ck_assert_uint_eq(c->n, 0);
    free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wire");
    TCase *tp = tcase_create("parse");
    tcase_add_test(tp, test_parse_tags_message);
    tcase_add_test(tp, test_parse_keys_flush_and_sync);
    tcase_add_test(tp, test_parse_decodes_percent_escapes_in_either_case);
    tcase_add_test(tp, test_parse_keeps_utf8_and_key_punctuation);
    tcase_add_test(tp, test_parse_rejects_wrong_version);
    tcase_add_test(tp, test_parse_rejects_bad_origin);
    tcase_add_test(tp, test_parse_rejects_unknown_op);
    tcase_add_test(tp, test_parse_rejects_wrong_arg_count);
    tcase_add_test(tp, test_parse_rejects_bad_escape);
    tcase_add_test(tp, test_parse_rejects_empty_args_and_extra_spaces);
    tcase_add_test(tp, test_parse_rejects_raw_control_bytes);
    tcase_add_test(tp, test_parse_accepts_payload_longer_than_the_encode_limit);
    tcase_add_test(tp, test_parse_rejects_oversized_payload);
    tcase_add_test(tp, test_parse_never_reads_past_the_length);
    tcase_add_test(tp, test_parse_rejects_null_arguments);
    suite_add_tcase(s, tp);
    TCase *te = tcase_create("encode");
    tcase_add_test(te, test_escape_is_exactly_per_protocol);
    tcase_add_test(te, test_encode_single_message);
    tcase_add_test(te, test_encode_roundtrips_every_byte);
    tcase_add_test(te, test_encode_splits_long_lists_with_full_headers);
    tcase_add_test(te, test_encode_fills_payload_to_exactly_7999_bytes);
    tcase_add_test(te, test_encode_refuses_an_arg_that_cannot_fit_and_emits_nothing);
    tcase_add_test(te, test_encode_rejects_bad_origin_op_and_arity);
    tcase_add_test(te, test_encode_propagates_emit_failure);
    suite_add_tcase(s, te);
    TCase *tc = tcase_create("public");
    tcase_add_test(tc, test_public_codec_round_trip);
    tcase_add_test(tc, test_public_codec_rejects_malformed_input_with_a_reason);
    tcase_add_test(tc, test_public_codec_null_arguments);
    suite_add_tcase(s, tc);
    TCase *tv = tcase_create("vectors");
    tcase_add_test(tv, test_shared_vectors_pass);
    suite_add_tcase(s, tv);
    return hc_test_run_suite(s);
}
