/*
 * check_pgquery.c - hc_query without a server: entity/collection keys and
 * tags as docs/PROTOCOL.md defines them, derived keys, entity definitions,
 * policies, and the SipHash behind derived keys.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hydracache/pg.h"
#include "hash.h"
#include "hc_test.h"

static HC_ENTITY_DEF(USER, .name = "user", .collection = "users", .table = "public.users",
                     .key_columns = {"id"}, .ttl_ms = 60000);
static HC_ENTITY_DEF(ORDER_ITEM, .name = "order_item", .table = "shop.order_items",
                     .key_columns = {"order_id", "line"});
static const hc_policy *const ACTIVE =
    HC_POLICY(.label = "users.active", .tags = {"users", "teams"}, .ttl_ms = 30000);

static char *key_of(const hc_query *q)
{
    static char buf[HC_MAX_KEY_LEN + 1];
    hc_error err = {HC_OK, ""};
    hc_status st = hc_query_key(q, buf, sizeof buf, &err);
    ck_assert_msg(st == HC_OK, "hc_query_key: %s", err.message);
    return buf;
}

static hc_status key_status(const hc_query *q)
{
    char buf[HC_MAX_KEY_LEN + 1];
    return hc_query_key(q, buf, sizeof buf, NULL);
}

static void assert_tags(const hc_query *q, size_t n, const char *const *want)
{
    const char *got[HC_MAX_TAGS];
    ck_assert_uint_eq(hc_query_tags(q, got, HC_MAX_TAGS), n);
    for (size_t i = 0; i < n; i++) ck_assert_str_eq(got[i], want[i]);
}

/* ------------------------------------------------------------ siphash */

START_TEST(test_siphash128_matches_reference_vectors)
{
    /* veorq/SipHash vectors.h: key 00..0f, message 00..(len-1) */
    static const struct { size_t len; unsigned char out[16]; } v[] = {
        {0, {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93}},
        {1, {0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45}},
        {7, {0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39}},
        {8, {0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4}},
        {15, {0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9}},
        {63, {0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c}},
    };
    unsigned char key[16], msg[64], out[16];
    for (int i = 0; i < 16; i++) key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++) msg[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hc__siphash h;
        hc__siphash_init(&h, key);
        hc__siphash_update(&h, msg, v[i].len);
        hc__siphash_final128(&h, out);
        ck_assert_msg(memcmp(out, v[i].out, 16) == 0, "length %zu", v[i].len);
        /* fed one byte at a time: same digest */
        hc__siphash_init(&h, key);
        for (size_t k = 0; k < v[i].len; k++) hc__siphash_update(&h, msg + k, 1);
        hc__siphash_final128(&h, out);
        ck_assert_msg(memcmp(out, v[i].out, 16) == 0, "bytewise, length %zu", v[i].len);
    }
}
END_TEST

/* ------------------------------------------------------------ entities */

START_TEST(test_entity_query_key_and_tags_follow_the_protocol)
{
    hc_query q = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_entity(&q, "user", "42"), HC_OK);
    ck_assert_str_eq(key_of(&q), "user:42");
    assert_tags(&q, 2, (const char *const[]){"user:42", "user:*"});
}
END_TEST

START_TEST(test_entity_key_values_are_escaped)
{
    static const struct { const char *id, *key; } cases[] = {
        {"a:b", "user:a\\:b"}, {"*", "user:\\*"}, {"", "user:"}, {NULL, "user:\\N"}, {"a\\b", "user:a\\\\b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hc_query q = {.sql = "SELECT 1"};
        ck_assert_int_eq(hc_query_entity(&q, "user", cases[i].id), HC_OK);
        ck_assert_str_eq(key_of(&q), cases[i].key);
        /* the table-wide tag never equals an entity key */
        assert_tags(&q, 2, (const char *const[]){cases[i].key, "user:*"});
    }
}
END_TEST

START_TEST(test_multi_column_entity_key)
{
    hc_query q = {.sql = "SELECT 1"};
    ck_assert_int_eq(HC_QUERY_ENTITY(&q, "order_item", "7", "3"), HC_OK);
    ck_assert_str_eq(key_of(&q), "order_item:7:3");
    assert_tags(&q, 2, (const char *const[]){"order_item:7:3", "order_item:*"});
}
END_TEST

START_TEST(test_entity_twice_or_without_values_is_an_error_reported_later)
{
    hc_query q = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_entity(&q, "user", "1"), HC_OK);
    ck_assert_int_eq(hc_query_entity(&q, "user", "2"), HC_ERR_INVALID);
    ck_assert_int_eq(key_status(&q), HC_ERR_INVALID);

    hc_query q2 = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_entity_n(&q2, "user", NULL, 0), HC_ERR_INVALID);
    ck_assert_int_eq(hc_query_entity(&q2, NULL, "1"), HC_ERR_INVALID);
    ck_assert_int_eq(hc_query_entity(NULL, "user", "1"), HC_ERR_INVALID);
    ck_assert_int_eq(key_status(&q2), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_oversized_entity_key_is_too_large)
{
    char *id = malloc(HC_MAX_KEY_LEN + 1);
    memset(id, 'x', HC_MAX_KEY_LEN);
    id[HC_MAX_KEY_LEN] = '\0';
    hc_query q = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_entity(&q, "user", id), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(key_status(&q), HC_ERR_TOO_LARGE);
    free(id);
}
END_TEST

START_TEST(test_entity_key_of_max_length_fits)
{
    char id[HC_MAX_KEY_LEN + 1];
    size_t n = HC_MAX_KEY_LEN - strlen("user:");
    memset(id, 'x', n);
    id[n] = '\0';
    hc_query q = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_entity(&q, "user", id), HC_OK);
    ck_assert_uint_eq(strlen(key_of(&q)), HC_MAX_KEY_LEN);
    assert_tags(&q, 2, (const char *const[]){key_of(&q), "user:*"});
}
END_TEST

START_TEST(test_helper_after_an_error_keeps_the_first_error)
{
    hc_query q = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_entity(&q, "", "1"), HC_ERR_INVALID);
    ck_assert_int_eq(hc_query_collection(&q, "users"), HC_ERR_INVALID);
    char buf[HC_MAX_KEY_LEN + 1];
    hc_error err;
    ck_assert_int_eq(hc_query_key(&q, buf, sizeof buf, &err), HC_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "hc_query_entity"));
    ck_assert_uint_eq(hc_query_tags(&q, NULL, 0), 0);
}
END_TEST

START_TEST(test_entity_query_survives_a_copy)
{
    hc_query q = hc_query_for_entity(&USER, "42");
    hc_query copy = q;
    memset(&q, 0x5a, sizeof q);
    ck_assert_str_eq(key_of(&copy), "user:42");
    assert_tags(&copy, 2, (const char *const[]){"user:42", "user:*"});
}
END_TEST

START_TEST(test_entity_def_builds_sql_params_key_and_ttl)
{
    hc_query q = hc_query_for_entity(&USER, "42");
    ck_assert_str_eq(key_of(&q), "user:42");
    ck_assert_ptr_null(q.sql);
    ck_assert_str_eq(q.priv_.buf + q.priv_.sql_off, "SELECT * FROM public.users WHERE id = $1");
    ck_assert_int_eq(q.priv_.nparams, 1);
    ck_assert_str_eq(q.priv_.params[0], "42");
    ck_assert_uint_eq(q.priv_.ttl_ms, 60000);
    assert_tags(&q, 2, (const char *const[]){"user:42", "user:*"});

    hc_query q2 = hc_query_for_entity_n(&ORDER_ITEM, (const char *const[]){"7", "3"}, 2);
    ck_assert_str_eq(key_of(&q2), "order_item:7:3");
    ck_assert_str_eq(q2.priv_.buf + q2.priv_.sql_off, "SELECT * FROM shop.order_items WHERE order_id = $1 AND line = $2");
}
END_TEST

START_TEST(test_entity_def_with_wrong_number_of_values_is_invalid)
{
    hc_query q = hc_query_for_entity(&ORDER_ITEM, "7");
    ck_assert_int_eq(key_status(&q), HC_ERR_INVALID);
    hc_query q2 = hc_query_for_entity(NULL, "7");
    ck_assert_int_eq(key_status(&q2), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_collection_of_entity_def_defaults_to_table_name)
{
    hc_query q = hc_query_for_collection(&ORDER_ITEM, "SELECT * FROM shop.order_items");
    assert_tags(&q, 1, (const char *const[]){"order_items"});
    ck_assert(strncmp(key_of(&q), "q:order_items:", 14) == 0);
    hc_query q2 = hc_query_for_collection(&USER, "SELECT * FROM public.users");
    assert_tags(&q2, 1, (const char *const[]){"users"});
}
END_TEST

/* ------------------------------------------------------------ collections and derived keys */

START_TEST(test_collection_query_gets_collection_tag_and_derived_key)
{
    hc_query q = {.sql = "SELECT * FROM users WHERE active"};
    ck_assert_int_eq(hc_query_collection(&q, "users"), HC_OK);
    ck_assert_int_eq(hc_query_add_collection(&q, "te:ams"), HC_OK);
    assert_tags(&q, 2, (const char *const[]){"users", "te\\:ams"});
    const char *k = key_of(&q);
    ck_assert_uint_eq(strlen(k), strlen("q:users:") + 32);
    ck_assert(strncmp(k, "q:users:", 8) == 0);
    ck_assert_int_eq(hc_query_collection(&q, ""), HC_ERR_INVALID);
}
END_TEST

START_TEST(test_derived_key_is_stable)
{
    /* the key is part of the cross-process contract: it must not change */
    hc_query q = {.sql = "SELECT $1::int", HC_PARAMS("42")};
    ck_assert_str_eq(key_of(&q), "q:sql:2a38beb4e02591f95b172eb964a1acf3");
}
END_TEST

START_TEST(test_derived_key_same_for_same_query_and_params)
{
    char a[HC_MAX_KEY_LEN + 1];
    hc_query q1 = {.sql = "SELECT * FROM t WHERE a = $1 AND b = $2", HC_PARAMS("1", "x")};
    strcpy(a, key_of(&q1));
    char one[] = "1", x[] = "x"; /* equal values at other addresses */
    hc_query q2 = {.sql = "SELECT * FROM t WHERE a = $1 AND b = $2", HC_PARAMS(one, x)};
    ck_assert_str_eq(a, key_of(&q2));
}
END_TEST

START_TEST(test_derived_key_differs_for_different_params)
{
    const char *sql = "SELECT * FROM t WHERE a = $1 AND b = $2";
    hc_query base = {.sql = sql, HC_PARAMS("1", "x")};
    char k0[HC_MAX_KEY_LEN + 1];
    strcpy(k0, key_of(&base));
    hc_query variants[] = {
        {.sql = sql, HC_PARAMS("2", "x")},
        {.sql = sql, HC_PARAMS("1", "")},
        {.sql = sql, HC_PARAMS("1", NULL)},
        {.sql = sql, HC_PARAMS("1x", "")},            /* same bytes, other split */
        {.sql = sql, HC_PARAMS("1", "x"), .result_format = 1},
        {.sql = sql, HC_PARAMS("1", "x"), .param_types = (const Oid[]){23, 25}},
        {.sql = "SELECT * FROM t WHERE a = $1 AND b = $2 ", HC_PARAMS("1", "x")},
        {.sql = sql, HC_PARAMS("1", "x"), .label = "other"},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        ck_assert_msg(strcmp(k0, key_of(&variants[i])) != 0, "variant %zu has the base key", i);
    hc_query nul = {.sql = sql, HC_PARAMS("1", NULL)};
    hc_query empty = {.sql = sql, HC_PARAMS("1", "")};
    char kn[HC_MAX_KEY_LEN + 1];
    strcpy(kn, key_of(&nul));
    ck_assert_str_ne(kn, key_of(&empty));
}
END_TEST

START_TEST(test_binary_params_hash_by_length)
{
    static const char a[] = {1, 0, 2}, b[] = {1, 0, 3};
    hc_query qa = {.sql = "SELECT $1::bytea", .nparams = 1, .param_values = (const char *const[]){a},
                   .param_lengths = (const int[]){3}, .param_formats = (const int[]){1}};
    hc_query qb = qa;
    qb.param_values = (const char *const[]){b};
    char ka[HC_MAX_KEY_LEN + 1];
    strcpy(ka, key_of(&qa));
    ck_assert_str_ne(ka, key_of(&qb));
    hc_query nolen = qa;
    nolen.param_lengths = NULL;
    ck_assert_int_eq(key_status(&nolen), HC_ERR_INVALID);
}
END_TEST

/* ------------------------------------------------------------ precedence and policies */

START_TEST(test_explicit_key_wins_and_policy_supplies_defaults)
{
    hc_query q = {.sql = "SELECT * FROM users WHERE active", .policy = ACTIVE};
    ck_assert(strncmp(key_of(&q), "q:users.active:", 15) == 0);
    assert_tags(&q, 2, (const char *const[]){"users", "teams"});

    const hc_policy *keyed = HC_POLICY(.key = "users:active", .tags = {"users"});
    hc_query q2 = {.sql = "SELECT 1", .policy = keyed, .tags = HC_TAGS("extra", "users")};
    ck_assert_str_eq(key_of(&q2), "users:active");
    assert_tags(&q2, 2, (const char *const[]){"extra", "users"});

    q2.key = "mine";
    ck_assert_str_eq(key_of(&q2), "mine");
    hc_query q3 = {.sql = "SELECT 1", .key = "mine"};
    ck_assert_int_eq(hc_query_entity(&q3, "user", "1"), HC_OK);
    ck_assert_str_eq(key_of(&q3), "mine"); /* entity tags stay */
    assert_tags(&q3, 2, (const char *const[]){"user:1", "user:*"});
}
END_TEST

START_TEST(test_too_many_tags_is_too_large)
{
    const char *many[HC_MAX_TAGS + 1];
    char names[HC_MAX_TAGS + 1][8];
    for (int i = 0; i <= HC_MAX_TAGS; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        many[i] = names[i];
    }
    hc_query q = {.sql = "SELECT 1", .tags = {many, HC_MAX_TAGS + 1}};
    ck_assert_int_eq(key_status(&q), HC_ERR_TOO_LARGE);
    ck_assert_uint_eq(hc_query_tags(&q, NULL, 0), 0);
}
END_TEST

START_TEST(test_bad_queries_are_invalid)
{
    char buf[64];
    ck_assert_int_eq(hc_query_key(NULL, buf, sizeof buf, NULL), HC_ERR_INVALID);
    hc_query none = {.nparams = 0};
    ck_assert_int_eq(key_status(&none), HC_ERR_INVALID); /* no sql, no key */
    hc_query neg = {.sql = "SELECT 1", .nparams = -1};
    ck_assert_int_eq(key_status(&neg), HC_ERR_INVALID);
    hc_query novals = {.sql = "SELECT $1", .nparams = 1};
    ck_assert_int_eq(key_status(&novals), HC_ERR_INVALID);
    hc_query fmt = {.sql = "SELECT 1", .result_format = 2};
    ck_assert_int_eq(key_status(&fmt), HC_ERR_INVALID);
    hc_query ok = {.sql = "SELECT 1"};
    ck_assert_int_eq(hc_query_key(&ok, buf, 4, NULL), HC_ERR_TOO_LARGE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pgquery");
    TCase *tc = tcase_create("query");
    tcase_add_test(tc, test_siphash128_matches_reference_vectors);
    tcase_add_test(tc, test_entity_query_key_and_tags_follow_the_protocol);
    tcase_add_test(tc, test_entity_key_values_are_escaped);
    tcase_add_test(tc, test_multi_column_entity_key);
    tcase_add_test(tc, test_entity_twice_or_without_values_is_an_error_reported_later);
    tcase_add_test(tc, test_oversized_entity_key_is_too_large);
    tcase_add_test(tc, test_entity_key_of_max_length_fits);
    tcase_add_test(tc, test_helper_after_an_error_keeps_the_first_error);
    tcase_add_test(tc, test_entity_query_survives_a_copy);
    tcase_add_test(tc, test_entity_def_builds_sql_params_key_and_ttl);
    tcase_add_test(tc, test_entity_def_with_wrong_number_of_values_is_invalid);
    tcase_add_test(tc, test_collection_of_entity_def_defaults_to_table_name);
    tcase_add_test(tc, test_collection_query_gets_collection_tag_and_derived_key);
    tcase_add_test(tc, test_derived_key_is_stable);
    tcase_add_test(tc, test_derived_key_same_for_same_query_and_params);
    tcase_add_test(tc, test_derived_key_differs_for_different_params);
    tcase_add_test(tc, test_binary_params_hash_by_length);
    tcase_add_test(tc, test_explicit_key_wins_and_policy_supplies_defaults);
    tcase_add_test(tc, test_too_many_tags_is_too_large);
    tcase_add_test(tc, test_bad_queries_are_invalid);
    suite_add_tcase(s, tc);
    return hc_test_run_suite(s);
}
