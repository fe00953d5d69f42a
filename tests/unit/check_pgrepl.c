/* check_pgrepl.c - the logical replication stream parser (pgrepl.c): every
 * message kind the walsender and pgoutput send, truncation at every byte,
 * trailing bytes, unknown kinds, the standby status update, LSN text. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hc_test.h"
#include "pgrepl.h"

typedef struct buf {
    char b[512];
    size_t n;
} buf;

static void put8(buf *b, uint8_t v)
{
    b->b[b->n++] = (char)v;
}

static void put16(buf *b, uint16_t v)
{
    put8(b, (uint8_t)(v >> 8));
    put8(b, (uint8_t)v);
}

static void put32(buf *b, uint32_t v)
{
    put16(b, (uint16_t)(v >> 16));
    put16(b, (uint16_t)v);
}

static void put64(buf *b, uint64_t v)
{
    put32(b, (uint32_t)(v >> 32));
    put32(b, (uint32_t)v);
}

static void puts_(buf *b, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(b->b + b->n, s, n);
    b->n += n;
}

/* XLogData header: 'w', start, end, time. */
static buf xlog(uint64_t start, uint64_t end)
{
    buf b = {.n = 0};
    put8(&b, 'w');
    put64(&b, start);
    put64(&b, end);
    put64(&b, 123456);
    return b;
}

static buf message(bool transactional, const char *prefix, const char *content)
{
    buf b = xlog(0x10, 0x20);
    put8(&b, 'M');
    put8(&b, transactional ? 1 : 0);
    put64(&b, UINT64_C(0x1600000028));
    puts_(&b, prefix);
    put32(&b, (uint32_t)strlen(content));
    memcpy(b.b + b.n, content, strlen(content));
    b.n += strlen(content);
    return b;
}

/* Every strict prefix of a valid message is refused, and so is one extra byte. */
static void assert_exact(const buf *b)
{
    hc_repl_msg m;
    for (size_t n = 0; n < b->n; n++) {
        char *copy = malloc(n ? n : 1); /* exact size: ASan catches any overread */
        memcpy(copy, b->b, n);
        ck_assert_msg(hc__repl_parse(copy, n, &m, NULL) == HC_ERR_INVALID, "prefix %zu of %zu parsed", n,
                      b->n);
        free(copy);
    }
    buf longer = *b;
    put8(&longer, 0);
    ck_assert_int_eq(hc__repl_parse(longer.b, longer.n, &m, NULL), HC_ERR_INVALID);
}

START_TEST(test_keepalive)
{
    buf b = {.n = 0};
    put8(&b, 'k');
    put64(&b, UINT64_C(0xAB00000010));
    put64(&b, 99);
    put8(&b, 1);
    hc_repl_msg m;
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_OK);
    ck_assert_int_eq(m.kind, HC_REPL_KEEPALIVE);
    ck_assert_uint_eq(m.wal_end, UINT64_C(0xAB00000010));
    ck_assert_int_eq(m.send_time, 99);
    ck_assert(m.reply_requested);
    assert_exact(&b);
    b.b[b.n - 1] = 2; /* a boolean byte must be 0 or 1 */
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_message_transactional_and_not)
{
    buf b = message(true, "hydracache", "hc1 db t a b");
    hc_repl_msg m;
    hc_error err;
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, &err), HC_OK);
    ck_assert_int_eq(m.kind, HC_REPL_MESSAGE);
    ck_assert(m.transactional);
    ck_assert_uint_eq(m.lsn, UINT64_C(0x1600000028));
    ck_assert_uint_eq(m.wal_end, 0x20);
    ck_assert_str_eq(m.prefix, "hydracache");
    ck_assert_uint_eq(m.content_len, 12);
    ck_assert(memcmp(m.content, "hc1 db t a b", 12) == 0);
    assert_exact(&b);
    b = message(false, "x", "");
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_OK);
    ck_assert(!m.transactional);
    ck_assert_uint_eq(m.content_len, 0);
    b.b[25 + 1] = 7; /* flags byte after 'w' header (25) and 'M' */
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_ERR_INVALID);
    /* a content length beyond the message */
    b = message(true, "p", "abc");
    b.b[b.n - 4] = 9;
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_begin_and_commit)
{
    buf b = xlog(1, 2);
    put8(&b, 'B');
    put64(&b, 0x500);
    put64(&b, 77);
    put32(&b, 4242);
    hc_repl_msg m;
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_OK);
    ck_assert_int_eq(m.kind, HC_REPL_BEGIN);
    ck_assert_uint_eq(m.lsn, 0x500);
    ck_assert_uint_eq(m.xid, 4242);
    assert_exact(&b);
    b = xlog(1, 2);
    put8(&b, 'C');
    put8(&b, 0);
    put64(&b, 0x500);
    put64(&b, 0x530);
    put64(&b, 77);
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, NULL), HC_OK);
    ck_assert_int_eq(m.kind, HC_REPL_COMMIT);
    ck_assert_uint_eq(m.lsn, 0x530);
    assert_exact(&b);
}
END_TEST

START_TEST(test_row_messages_are_recognised_and_skipped)
{
    hc_repl_msg m;
    buf r = xlog(1, 2); /* Relation with two columns */
    put8(&r, 'R');
    put32(&r, 16384);
    puts_(&r, "public");
    puts_(&r, "items");
    put8(&r, 'd');
    put16(&r, 2);
    put8(&r, 1);
    puts_(&r, "id");
    put32(&r, 23);
    put32(&r, (uint32_t)-1);
    put8(&r, 0);
    puts_(&r, "val");
    put32(&r, 25);
    put32(&r, (uint32_t)-1);
    ck_assert_int_eq(hc__repl_parse(r.b, r.n, &m, NULL), HC_OK);
    ck_assert_int_eq(m.kind, HC_REPL_OTHER);
    ck_assert_int_eq(m.tag, 'R');
    assert_exact(&r);

    buf u = xlog(1, 2); /* Update with old key and new tuple (null, unchanged toast, text) */
    put8(&u, 'U');
    put32(&u, 16384);
    put8(&u, 'K');
    put16(&u, 1);
    put8(&u, 't');
    put32(&u, 1);
    put8(&u, '7');
    put8(&u, 'N');
    put16(&u, 3);
    put8(&u, 'n');
    put8(&u, 'u');
    put8(&u, 't');
    put32(&u, 2);
    put8(&u, 'h');
    put8(&u, 'i');
    ck_assert_int_eq(hc__repl_parse(u.b, u.n, &m, NULL), HC_OK);
    ck_assert_int_eq(m.tag, 'U');
    assert_exact(&u);

    buf t = xlog(1, 2); /* Truncate of two relations */
    put8(&t, 'T');
    put32(&t, 2);
    put8(&t, 0);
    put32(&t, 1);
    put32(&t, 2);
    ck_assert_int_eq(hc__repl_parse(t.b, t.n, &m, NULL), HC_OK);
    assert_exact(&t);
    t.b[26 + 3] = (char)0xff; /* a huge relation count */
    ck_assert_int_eq(hc__repl_parse(t.b, t.n, &m, NULL), HC_ERR_INVALID);

    buf bad_col = xlog(1, 2); /* Insert with an unknown column kind */
    put8(&bad_col, 'I');
    put32(&bad_col, 1);
    put8(&bad_col, 'N');
    put16(&bad_col, 1);
    put8(&bad_col, 'x');
    ck_assert_int_eq(hc__repl_parse(bad_col.b, bad_col.n, &m, NULL), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_unknown_messages_are_refused)
{
    hc_repl_msg m;
    hc_error err;
    ck_assert_int_eq(hc__repl_parse(NULL, 0, &m, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc__repl_parse("z", 1, &m, &err), HC_ERR_INVALID);
    buf b = xlog(1, 2);
    put8(&b, 'Z');
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, &err), HC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "unknown pgoutput message"));
    b = xlog(1, 2); /* no pgoutput message at all */
    ck_assert_int_eq(hc__repl_parse(b.b, b.n, &m, &err), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_status_update_and_lsn_text)
{
    char out[HC_REPL_STATUS_LEN];
    hc__repl_status(out, UINT64_C(0x0102030405060708), 2, 3, 4, true);
    ck_assert_int_eq(out[0], 'r');
    const unsigned char want_written[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert(memcmp(out + 1, want_written, 8) == 0);
    ck_assert_int_eq(out[16], 2);
    ck_assert_int_eq(out[24], 3);
    ck_assert_int_eq(out[32], 4);
    ck_assert_int_eq(out[33], 1);
    ck_assert(hc__repl_now_us() > INT64_C(700000000000000)); /* after 2022 */
    uint64_t lsn;
    ck_assert(hc__repl_parse_lsn("16/B374D848", &lsn));
    ck_assert_uint_eq(lsn, UINT64_C(0x16B374D848));
    ck_assert(hc__repl_parse_lsn("0/0", &lsn));
    ck_assert_uint_eq(lsn, 0);
    ck_assert(!hc__repl_parse_lsn("", &lsn));
    ck_assert(!hc__repl_parse_lsn("1/2x", &lsn));
    ck_assert(!hc__repl_parse_lsn(NULL, &lsn));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pgrepl");
    TCase *t = tcase_create("parse");
    tcase_add_test(t, test_keepalive);
    tcase_add_test(t, test_message_transactional_and_not);
    tcase_add_test(t, test_begin_and_commit);
    tcase_add_test(t, test_row_messages_are_recognised_and_skipped);
    tcase_add_test(t, test_unknown_messages_are_refused);
    tcase_add_test(t, test_status_update_and_lsn_text);
    suite_add_tcase(s, t);
    return hc_test_run_suite(s);
}
