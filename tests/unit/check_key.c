/* check_key.c - key escaping (docs/PROTOCOL.md), table tags and hc_tagset. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hydracache/cache.h"
#include "alloc.h"
#include "core_test.h"
#include "hc_test.h"
#include "key.h"

static const char *build(char *buf, size_t cap, const char *const *segs, size_t n)
{
    hc_error err;
    ck_assert_int_eq(hc_key_build(buf, cap, NULL, segs, n, &err), HC_OK);
    return buf;
}

START_TEST(test_segments_join_with_colon)
{
    char buf[64];
    size_t len = 0;
    ck_assert_int_eq(HC_KEY(buf, sizeof buf, NULL, "order_item", "7", "3"), HC_OK);
    ck_assert_str_eq(buf, "order_item:7:3");
    const char *segs[] = {"user", "42"};
    ck_assert_int_eq(hc_key_build(buf, sizeof buf, &len, segs, 2, NULL), HC_OK);
    ck_assert_str_eq(buf, "user:42");
    ck_assert_uint_eq(len, 7);
}
END_TEST

/* The HC_KEY example of hydracache/cache.h, as it stands there. */
START_TEST(test_hc_key_header_example_compiles)
{
    int user_id = 42;
    char id[24];
    snprintf(id, sizeof id, "%d", user_id); // segments are strings
    hc_error err;
    char key[HC_MAX_KEY_LEN + 1];
    hc_status st = HC_KEY(key, sizeof key, &err, "user", id);
    // st == HC_OK, key == "user:42"
    ck_assert_int_eq(st, HC_OK);
    ck_assert_str_eq(key, "user:42");
}
END_TEST

START_TEST(test_special_bytes_are_escaped)
{
    char buf[64];
    const char *a[] = {"user", "a:b"};
    ck_assert_str_eq(build(buf, sizeof buf, a, 2), "user:a\\:b");
    const char *b[] = {"user", "*"};
    ck_assert_str_eq(build(buf, sizeof buf, b, 2), "user:\\*");
    const char *c[] = {"user", "x\\y"};
    ck_assert_str_eq(build(buf, sizeof buf, c, 2), "user:x\\\\y");
    const char *d[] = {"user", NULL};
    ck_assert_str_eq(build(buf, sizeof buf, d, 2), "user:\\N");
    const char *e[] = {"user", ""};
    ck_assert_str_eq(build(buf, sizeof buf, e, 2), "user:");
    const char *f[] = {"us:er", "N"};
    ck_assert_str_eq(build(buf, sizeof buf, f, 2), "us\\:er:N");
}
END_TEST

START_TEST(test_escaped_keys_never_collide)
{
    static const char *const pairs[][2] = {
        {"user", "a:b"}, {"user:a", "b"}, {"user", "*"},   {"user", ""},
        {"user", NULL},  {"user", "N"},   {"user", "\\N"}, {"user", "\\"},
        {"user\\", ""},  {"user", "\\:"}, {"user\\:", ""}, {"user", ":"},
        {"user:", ""},   {"user", "**"},  {"user*", ""},   {"user", "a\\"},
    };
    size_t n = sizeof pairs / sizeof pairs[0];
    char keys[sizeof pairs / sizeof pairs[0]][64];
    for (size_t i = 0; i < n; i++)
        build(keys[i], sizeof keys[i], pairs[i], 2);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            ck_assert_msg(strcmp(keys[i], keys[j]) != 0, "%zu and %zu collide: %s", i, j,
                          keys[i]);
}
END_TEST

START_TEST(test_table_tag_equals_no_entity_key)
{
    char tag[64], key[64];
    ck_assert_int_eq(hc_key_table_tag(tag, sizeof tag, "user", NULL), HC_OK);
    ck_assert_str_eq(tag, "user:*");
    static const char *const ids[] = {"*", "", NULL, "\\*", ":*", "\\", "*:", "\\\\*"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const char *segs[] = {"user", ids[i]};
        build(key, sizeof key, segs, 2);
        ck_assert_str_ne(key, tag);
        const char *segs3[] = {"user", ids[i], "*"};
        build(key, sizeof key, segs3, 3);
        ck_assert_str_ne(key, tag);
    }
    /* an entity name with special bytes is escaped as well */
    ck_assert_int_eq(hc_key_table_tag(tag, sizeof tag, "a:*", NULL), HC_OK);
    ck_assert_str_eq(tag, "a\\:\\*:*");
}
END_TEST

/* The first segment of a built key ends at its first unescaped ':' (what
 * the store interns as a key prefix and derives table tags from). */
START_TEST(test_first_segment_of_built_keys)
{
    char key[64];
    ck_assert_int_eq(HC_KEY(key, sizeof key, NULL, "user", "42"), HC_OK);
    ck_assert_uint_eq(hc__key_first_segment(key, strlen(key)), 4);
    ck_assert_int_eq(HC_KEY(key, sizeof key, NULL, "a:b", "1"), HC_OK); /* a\:b:1 */
    ck_assert_uint_eq(hc__key_first_segment(key, strlen(key)), 4);
    ck_assert_int_eq(HC_KEY(key, sizeof key, NULL, "a\\", "1"), HC_OK); /* a\\:1 */
    ck_assert_uint_eq(hc__key_first_segment(key, strlen(key)), 3);
    ck_assert_int_eq(HC_KEY(key, sizeof key, NULL, "solo"), HC_OK);
    ck_assert_uint_eq(hc__key_first_segment(key, strlen(key)), SIZE_MAX);
    ck_assert_uint_eq(hc__key_first_segment("x\\:", 3), SIZE_MAX); /* escaped ':' only */
    ck_assert_uint_eq(hc__key_first_segment(":x", 2), 0);
}
END_TEST

START_TEST(test_key_build_rejects_bad_arguments)
{
    char buf[16];
    hc_error err;
    const char *segs[] = {"a"};
    ck_assert_int_eq(hc_key_build(NULL, 16, NULL, segs, 1, &err), HC_ERR_INVALID);
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_int_eq(hc_key_build(buf, sizeof buf, NULL, NULL, 1, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_key_build(buf, sizeof buf, NULL, segs, 0, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_key_build(buf, 0, NULL, segs, 1, &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_key_table_tag(NULL, 16, "a", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_key_table_tag(buf, 16, NULL, &err), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_key_build_enforces_buffer_and_max_length)
{
    char small[8];
    hc_error err;
    /* "abc:de\:" is 8 bytes: one too many for an 8-byte buffer */
    ck_assert_int_eq(HC_KEY(small, sizeof small, &err, "abc", "de:"), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(err.code, HC_ERR_TOO_LARGE);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(HC_KEY(small, sizeof small, &err, "abc", "d:"), HC_OK);
    ck_assert_str_eq(small, "abc:d\\:");
    ck_assert_int_eq(hc_key_table_tag(small, sizeof small, "abcdef", &err), HC_ERR_TOO_LARGE);

    static char big[HC_MAX_KEY_LEN * 3];
    static char seg[HC_MAX_KEY_LEN + 1];
    memset(seg, 'x', HC_MAX_KEY_LEN - 2);
    seg[HC_MAX_KEY_LEN - 2] = '\0';
    ck_assert_int_eq(HC_KEY(big, sizeof big, NULL, "a", seg), HC_OK); /* exactly the max */
    ck_assert_uint_eq(strlen(big), HC_MAX_KEY_LEN);
    ck_assert_int_eq(HC_KEY(big, sizeof big, NULL, "ab", seg), HC_ERR_TOO_LARGE);
    seg[0] = ':'; /* escaping counts towards the limit */
    ck_assert_int_eq(HC_KEY(big, sizeof big, NULL, "a", seg), HC_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_key_check_validates_keys)
{
    static char big[HC_MAX_KEY_LEN + 2];
    size_t len = 0;
    hc_error err;
    ck_assert_int_eq(hc__key_check(NULL, NULL, "key", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc__key_check("", NULL, "key", &err), HC_ERR_INVALID);
    memset(big, 'k', HC_MAX_KEY_LEN);
    ck_assert_int_eq(hc__key_check(big, &len, "key", &err), HC_OK);
    ck_assert_uint_eq(len, HC_MAX_KEY_LEN);
    big[HC_MAX_KEY_LEN] = 'k';
    ck_assert_int_eq(hc__key_check(big, NULL, "key", &err), HC_ERR_TOO_LARGE);
}
END_TEST

/* Checked fixture of the tagset tests: an empty set. */
static hc_tagset *ts;

static void tagset_setup(void)
{
    ts = hc_tagset_new();
    ck_assert_ptr_nonnull(ts);
}

static void tagset_teardown(void)
{
    hc_tagset_free(ts);
    ts = NULL;
}

START_TEST(test_tagset_dedups_in_insertion_order)
{
    ck_assert_int_eq(hc_tagset_add(ts, "users", NULL), HC_OK);
    ck_assert_int_eq(hc_tagset_add(ts, "user:42", NULL), HC_OK);
    ck_assert_int_eq(hc_tagset_add(ts, "users", NULL), HC_OK);
    ck_assert_uint_eq(hc_tagset_count(ts), 2);
    ck_assert_str_eq(hc_tagset_get(ts, 0), "users");
    ck_assert_str_eq(hc_tagset_get(ts, 1), "user:42");
    ck_assert_ptr_null(hc_tagset_get(ts, 2));
    hc_tagset_free(NULL);
    ck_assert_uint_eq(hc_tagset_count(NULL), 0);
}
END_TEST

START_TEST(test_tagset_enforces_limits)
{
    hc_error err;
    static char big[HC_MAX_KEY_LEN + 2];
    memset(big, 't', HC_MAX_KEY_LEN + 1);
    ck_assert_int_eq(hc_tagset_add(NULL, "a", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_tagset_add(ts, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_tagset_add(ts, "", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_tagset_add(ts, big, &err), HC_ERR_TOO_LARGE);
    char tag[16];
    for (int i = 0; i < HC_MAX_TAGS; i++) {
        snprintf(tag, sizeof tag, "t%d", i);
        ck_assert_int_eq(hc_tagset_add(ts, tag, NULL), HC_OK);
    }
    ck_assert_int_eq(hc_tagset_add(ts, "one-more", &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_tagset_add(ts, "t0", &err), HC_OK); /* duplicates still fine */
    ck_assert_uint_eq(hc_tagset_count(ts), HC_MAX_TAGS);
}
END_TEST

START_TEST(test_tagset_add_survives_allocation_failure)
{
    hc_error err;
    hc__alloc_fail_after(0);
    ck_assert_int_eq(hc_tagset_add(ts, "a", &err), HC_ERR_NOMEM);
    ck_assert_ptr_null(hc_tagset_new());
    hc__alloc_fail_after(-1);
    ck_assert_uint_eq(hc_tagset_count(ts), 0);
    ck_assert_int_eq(hc_tagset_add(ts, "a", &err), HC_OK);
}
END_TEST

START_TEST(test_opts_tags_merges_and_validates)
{
    const char *out[HC_MAX_TAGS];
    size_t n = 99;
    hc_error err;
    hc_tagset_add(ts, "b", NULL);
    hc_tagset_add(ts, "c", NULL);
    ck_assert_int_eq(hc__opts_tags(HC_OPTS(.tags = HC_TAGS("a", "b"), .tagset = ts), out, &n,
                                   &err), HC_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(out[0], "a");
    ck_assert_str_eq(out[2], "c");
    ck_assert_int_eq(hc__opts_tags(NULL, out, &n, &err), HC_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(hc__opts_tags(HC_OPTS(.tags = HC_TAGS("a", "")), out, &n, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc__opts_tags(HC_OPTS(.tags = {NULL, 2}), out, &n, &err), HC_ERR_INVALID);
}
END_TEST

/* Split line at tabs in place; returns the field count. */
static size_t split_tabs(char *line, char **fields, size_t max)
{
    size_t n = 0;
    line[strcspn(line, "\n")] = '\0';
    for (char *p = line; n < max; p++) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p = '\0';
    }
    return n;
}

START_TEST(test_shared_key_vectors)
{
    char path[4096], line[512], buf[256];
    FILE *f = fopen(hc_test_srcpath("tests/vectors/keys_core.tsv", path, sizeof path), "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    int checked = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *fields[16];
        size_t n = split_tabs(line, fields, 16);
        ck_assert_uint_ge(n, 3);
        const char *segs[14];
        for (size_t i = 2; i < n; i++)
            segs[i - 2] = strcmp(fields[i], "<NULL>") == 0 ? NULL : fields[i];
        if (strcmp(fields[0], "table") == 0)
            ck_assert_int_eq(hc_key_table_tag(buf, sizeof buf, segs[0], NULL), HC_OK);
        else
            ck_assert_int_eq(hc_key_build(buf, sizeof buf, NULL, segs, n - 2, NULL), HC_OK);
        ck_assert_str_eq(buf, fields[1]);
        checked++;
    }
    fclose(f);
    ck_assert_int_ge(checked, 19);
}
END_TEST

static Suite *key_suite(void)
{
    Suite *s = suite_create("key");
    TCase *tc = tcase_create("key");
    tcase_add_test(tc, test_segments_join_with_colon);
    tcase_add_test(tc, test_hc_key_header_example_compiles);
    tcase_add_test(tc, test_special_bytes_are_escaped);
    tcase_add_test(tc, test_shared_key_vectors);
    tcase_add_test(tc, test_escaped_keys_never_collide);
    tcase_add_test(tc, test_table_tag_equals_no_entity_key);
    tcase_add_test(tc, test_first_segment_of_built_keys);
    tcase_add_test(tc, test_key_build_rejects_bad_arguments);
    tcase_add_test(tc, test_key_build_enforces_buffer_and_max_length);
    tcase_add_test(tc, test_key_check_validates_keys);
    suite_add_tcase(s, tc);
    tc = tcase_create("tagset");
    tcase_add_checked_fixture(tc, tagset_setup, tagset_teardown);
    tcase_add_test(tc, test_tagset_dedups_in_insertion_order);
    tcase_add_test(tc, test_tagset_enforces_limits);
    tcase_add_test(tc, test_tagset_add_survives_allocation_failure);
    tcase_add_test(tc, test_opts_tags_merges_and_validates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(key_suite());
}
