/*
 * check_pg.c - the libpq adapter against a real PostgreSQL: hits equal the
 * server's results, row-count rules, errors pass through uncached,
 * single-flight across threads, invalidation, transactions bypassing the
 * cache, caller-supplied loaders.
 * Server round trips are counted with sequences the queries advance.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-events.h>

#include "hc_pgassert.h"
#include "hc_test.h"
#include "hydracache/bus.h"
#include "hydracache/pg.h"
#include "pgshape.h"

static HC_ENTITY_DEF(USER, .name = "user", .collection = "users", .table = "public.users",
                     .key_columns = {"id"}, .ttl_ms = 60000);

static hc_cache *cache;
static PGconn *conn;

/* Unchecked fixture: runs in the parent before the forked tests, where
 * Check's assertions cannot report, so failures are printed and exit. */
static void schema(void)
{
    const char *ci = hc_test_conninfo();
    PGconn *c = ci ? PQconnectdb(ci) : NULL;
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c,
        "SET client_min_messages = warning; DROP TABLE IF EXISTS users;"
        "CREATE TABLE users (id int PRIMARY KEY, name text, email text,"
        " score numeric(10,2), nick varchar(20), data bytea, seen timestamptz);"
        "INSERT INTO users VALUES"
        " (1, 'alice', 'alice@example.org', 12.5, 'al', '\\x00ff10', '2024-01-02 03:04:05+00'),"
        " (2, 'bob', NULL, NULL, '', '\\x', NULL),"
        " (42, 'zaphod', 'z@example.org', -1, 'zb', NULL, now())") : NULL;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "check_pg: schema: %s", c ? PQerrorMessage(c) : "no test database\n");
        exit(EXIT_FAILURE);
    }
    PQclear(r);
    PQfinish(c);
}

static void setup(void)
{
    hc_error err;
    cache = hc_cache_new(NULL, &err);
    ck_assert_msg(cache != NULL, "hc_cache_new: %s", err.message);
    conn = hc_test_connect();
    /* undo what a failed test may have left, so failures do not cascade */
    hc_test_exec(conn, "UPDATE users SET name = CASE id WHEN 1 THEN 'alice' WHEN 2 THEN 'bob' ELSE 'zaphod' END"
                       " WHERE name IS DISTINCT FROM CASE id WHEN 1 THEN 'alice' WHEN 2 THEN 'bob' ELSE 'zaphod' END");
}

static void teardown(void)
{
    PQfinish(conn);
    hc_cache_free(cache);
}

/* Checked fixture of the "extension" tests, after setup's: the extension in
 * the test database. */
static void extension_setup(void)
{
    hc_test_create_extension(conn);
}

/* A fresh sequence: each nextval() in a query is one server execution. */
static void fresh_seq(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SEQUENCE IF EXISTS %s; CREATE SEQUENCE %s", name, name);
    hc_test_exec(conn, sql);
}

static long seq_value(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s", name);
    char *v = hc_test_scalar(conn, sql);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

static const char *ALL_TYPES_SQL =
    "SELECT id, name, email, score, nick, data, seen, NULL::int AS nothing, ''::text AS empty,"
    " id::bigint * $1::int AS big FROM users ORDER BY id";

static void hit_equals_uncached(int result_format)
{
    const char *params[] = {"3"};
    PGresult *direct = PQexecParams(conn, ALL_TYPES_SQL, 1, NULL, params, NULL, NULL, result_format);
    ck_assert_int_eq(PQresultStatus(direct), PGRES_TUPLES_OK);
    hc_query q = {.sql = ALL_TYPES_SQL, HC_PARAMS("3"), .result_format = result_format};
    hc_error err;
    PGresult *miss = hc_pg_fetch_all(cache, conn, &q, &err);
    ck_assert_msg(miss != NULL, "miss: %s", err.message);
    PGresult *hit = hc_pg_fetch_all(cache, conn, &q, &err);
    ck_assert_msg(hit != NULL, "hit: %s", err.message);
    hc_assert_same_result(direct, miss);
    hc_assert_same_result(direct, hit);
    ck_assert_ptr_ne(miss, hit);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.loads, 1);
    PQclear(direct);
    PQclear(miss);
    PQclear(hit);
}

/* ------------------------------------------------------------ faithful hits */

START_TEST(test_hit_equals_uncached_result_in_text_format)
{
    hit_equals_uncached(0);
}
END_TEST

START_TEST(test_hit_equals_uncached_result_in_binary_format)
{
    hit_equals_uncached(1);
}
END_TEST

START_TEST(test_hit_does_not_reach_the_server)
{
    fresh_seq("hits");
    hc_query q = {.sql = "SELECT nextval('hits') AS n, name FROM users WHERE id = $1", HC_PARAMS("1")};
    hc_query_entity(&q, "user", "1");
    for (int i = 0; i < 3; i++) {
        PGresult *r = hc_pg_fetch_one(cache, conn, &q, NULL);
        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
        ck_assert_str_eq(PQgetvalue(r, 0, 1), "alice");
        PQclear(r);
    }
    ck_assert_int_eq(seq_value("hits"), 1);
}
END_TEST

START_TEST(test_different_params_get_different_entries)
{
    const char *sql = "SELECT name FROM users WHERE id = $1";
    hc_query q1 = {.sql = sql, HC_PARAMS("1")}, q2 = {.sql = sql, HC_PARAMS("2")};
    hc_query_collection(&q1, "users");
    hc_query_collection(&q2, "users");
    PGresult *a = hc_pg_fetch_one(cache, conn, &q1, NULL);
    PGresult *b = hc_pg_fetch_one(cache, conn, &q2, NULL);
    PGresult *a2 = hc_pg_fetch_one(cache, conn, &q1, NULL);
    ck_assert_str_eq(PQgetvalue(a, 0, 0), "alice");
    ck_assert_str_eq(PQgetvalue(b, 0, 0), "bob");
    ck_assert_str_eq(PQgetvalue(a2, 0, 0), "alice");
    PQclear(a);
    PQclear(b);
    PQclear(a2);
    char k1[HC_MAX_KEY_LEN + 1], k2[HC_MAX_KEY_LEN + 1];
    ck_assert_int_eq(hc_query_key(&q1, k1, sizeof k1, NULL), HC_OK);
    ck_assert_int_eq(hc_query_key(&q2, k2, sizeof k2, NULL), HC_OK);
    ck_assert_str_ne(k1, k2);
    ck_assert_int_eq(hc_contains(cache, k1, NULL), HC_OK);
    ck_assert_int_eq(hc_contains(cache, k2, NULL), HC_OK);
}
END_TEST

START_TEST(test_entity_definition_query_end_to_end)
{
    hc_query q = hc_query_for_entity(&USER, "42");
    hc_error err;
    PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "zaphod");
    PQclear(r);
    ck_assert_int_eq(hc_contains(cache, "user:42", NULL), HC_OK);
}
END_TEST

/* ------------------------------------------------------------ row-count rules */

/* The row count is checked per caller: the result is cached and a second
 * hc_pg_fetch_one reports the same error from the cache. */
static void assert_rowcount_error(const char *sql, const char *msg)
{
    hc_query q = {.sql = sql};
    for (int i = 0; i < 2; i++) {
        hc_error err = {HC_OK, ""};
        PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
        ck_assert_ptr_null(r);
        ck_assert_int_eq(err.code, HC_ERR_ROWCOUNT);
        ck_assert_str_eq(err.message, msg);
    }
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.loads, 1);
    ck_assert_uint_eq(st.hits, 1);
}

START_TEST(test_fetch_one_with_no_row_is_an_error)
{
    assert_rowcount_error("SELECT name FROM users WHERE id = -1", "expected exactly one row, got 0");
}
END_TEST

START_TEST(test_fetch_one_with_two_rows_is_an_error)
{
    assert_rowcount_error("SELECT name FROM users WHERE id IN (1, 2)", "expected exactly one row, got 2");
}
END_TEST

START_TEST(test_no_row_loaded_by_fetch_one_serves_fetch_optional_from_the_cache)
{
    fresh_seq("zero");
    hc_query q = {.sql = "SELECT n FROM (SELECT nextval('zero') AS n) s WHERE n < 0"};
    hc_error err = {HC_OK, ""};
    ck_assert_ptr_null(hc_pg_fetch_one(cache, conn, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_ROWCOUNT);
    PGresult *r = hc_pg_fetch_optional(cache, conn, &q, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_int_eq(PQntuples(r), 0);
    ck_assert_str_eq(PQfname(r, 0), "n");
    PQclear(r);
    ck_assert_int_eq(seq_value("zero"), 1); /* no second round trip */
}
END_TEST

START_TEST(test_fetch_optional_caches_no_row)
{
    fresh_seq("opt");
    hc_query q = {.sql = "SELECT n FROM (SELECT nextval('opt') AS n) s WHERE n < 0"};
    for (int i = 0; i < 2; i++) {
        hc_error err;
        PGresult *r = hc_pg_fetch_optional(cache, conn, &q, &err);
        ck_assert_msg(r != NULL, "%s", err.message);
        ck_assert_int_eq(PQntuples(r), 0);
        ck_assert_int_eq(PQnfields(r), 1);
        PQclear(r);
    }
    ck_assert_int_eq(seq_value("opt"), 1);
}
END_TEST

START_TEST(test_fetch_optional_with_two_rows_is_an_error)
{
    hc_query q = {.sql = "SELECT name FROM users WHERE id IN (1, 2)"};
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_optional(cache, conn, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_ROWCOUNT);
    ck_assert_str_eq(err.message, "expected at most one row, got 2");
}
END_TEST

START_TEST(test_fetch_all_caches_empty_results)
{
    fresh_seq("empty");
    hc_query q = {.sql = "SELECT n, 'x' AS s FROM (SELECT nextval('empty') AS n) s WHERE n < 0"};
    for (int i = 0; i < 2; i++) {
        PGresult *r = hc_pg_fetch_all(cache, conn, &q, NULL);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(PQntuples(r), 0);
        ck_assert_str_eq(PQfname(r, 1), "s");
        PQclear(r);
    }
    ck_assert_int_eq(seq_value("empty"), 1);
}
END_TEST

/* A corrupt entry is dropped from the store only: not an invalidation. */
static void count_publish(void *ctx, hc_cache *c, hc_inval_kind kind, const char *arg)
{
    (void)c;
    (void)kind;
    (void)arg;
    ++*(int *)ctx;
}

START_TEST(test_corrupt_entry_is_dropped_without_an_invalidation)
{
    ck_assert_int_eq(hc_put(cache, "user:1", "garbage", 7, NULL, NULL), HC_OK);
    int published = 0;
    ck_assert_int_eq(hc_cache_attach_publisher(cache, count_publish, &published, NULL), HC_OK);
    hc_query q = hc_query_for_entity(&USER, "1");
    hc_error err = {HC_OK, ""};
    ck_assert_ptr_null(hc_pg_fetch_one(cache, conn, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_CODEC);
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_MISS);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.invalidations_key, 0);
    ck_assert_int_eq(published, 0);
    PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err); /* reloads */
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "alice");
    PQclear(r);
    hc_cache_detach_publisher(cache);
}
END_TEST

/* ------------------------------------------------------------ views */

static void assert_view_equals(const PGresult *want, const hc_pg_view *v)
{
    ck_assert_int_eq(hc_pg_view_ntuples(v), PQntuples(want));
    ck_assert_int_eq(hc_pg_view_nfields(v), PQnfields(want));
    for (int f = 0; f < PQnfields(want); f++) {
        ck_assert_str_eq(hc_pg_view_fname(v, f), PQfname(want, f));
        ck_assert_uint_eq(hc_pg_view_ftype(v, f), PQftype(want, f));
        ck_assert_int_eq(hc_pg_view_fformat(v, f), PQfformat(want, f));
        for (int t = 0; t < PQntuples(want); t++) {
            ck_assert_int_eq(hc_pg_view_getisnull(v, t, f), PQgetisnull(want, t, f));
            ck_assert_int_eq(hc_pg_view_getlength(v, t, f), PQgetlength(want, t, f));
            ck_assert(memcmp(hc_pg_view_getvalue(v, t, f), PQgetvalue(want, t, f),
                             (size_t)PQgetlength(want, t, f) + 1) == 0); /* NUL too */
        }
    }
}

static void view_equals_uncached(int result_format)
{
    const char *params[] = {"3"};
    PGresult *direct = PQexecParams(conn, ALL_TYPES_SQL, 1, NULL, params, NULL, NULL, result_format);
    ck_assert_int_eq(PQresultStatus(direct), PGRES_TUPLES_OK);
    hc_query q = {.sql = ALL_TYPES_SQL, HC_PARAMS("3"), .result_format = result_format};
    hc_error err;
    hc_pg_view miss, hit;
    ck_assert_msg(hc_pg_fetch_all_view(cache, conn, &q, &miss, &err) == HC_OK, "miss: %s", err.message);
    ck_assert_msg(hc_pg_fetch_all_view(cache, conn, &q, &hit, &err) == HC_OK, "hit: %s", err.message);
    assert_view_equals(direct, &miss);
    assert_view_equals(direct, &hit);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.loads, 1);
    hc_pg_view_release(&miss);
    hc_pg_view_release(&hit);
    PQclear(direct);
}

START_TEST(test_view_equals_uncached_result_in_text_format)
{
    view_equals_uncached(0);
}
END_TEST

START_TEST(test_view_equals_uncached_result_in_binary_format)
{
    view_equals_uncached(1);
}
END_TEST

START_TEST(test_view_and_pgresult_share_one_cached_entry)
{
    hc_query q = hc_query_for_entity(&USER, "1");
    PGresult *r = hc_pg_fetch_one(cache, conn, &q, NULL);
    ck_assert_ptr_nonnull(r);
    hc_pg_view v;
    hc_error err;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, &err), HC_OK);
    assert_view_equals(r, &v);
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, hc_pg_view_fnumber(&v, "name")), "alice");
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 1);
    hc_pg_view_release(&v);
    PQclear(r);
}
END_TEST

START_TEST(test_view_row_count_rules_match_the_pgresult_functions)
{
    hc_query none = hc_query_for_entity(&USER, "999");
    hc_query two = {.sql = "SELECT name FROM users WHERE id IN (1, 2)"};
    hc_pg_view v;
    hc_error err;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &none, &v, &err), HC_ERR_ROWCOUNT);
    ck_assert_str_eq(err.message, "expected exactly one row, got 0");
    ck_assert_int_eq(hc_pg_view_ntuples(&v), 0);
    ck_assert_int_eq(hc_pg_fetch_optional_view(cache, conn, &none, &v, &err), HC_OK); /* cached no row */
    ck_assert_int_eq(hc_pg_view_ntuples(&v), 0);
    ck_assert_int_eq(hc_pg_view_nfields(&v), 7);
    hc_pg_view_release(&v);
    ck_assert_int_eq(hc_pg_fetch_optional_view(cache, conn, &two, &v, &err), HC_ERR_ROWCOUNT);
    ck_assert_str_eq(err.message, "expected at most one row, got 2");
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &two, &v, &err), HC_ERR_ROWCOUNT); /* from the cache */
    ck_assert_int_eq(hc_pg_fetch_all_view(cache, conn, &two, &v, &err), HC_OK);
    ck_assert_int_eq(hc_pg_view_ntuples(&v), 2);
    hc_pg_view_release(&v);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.loads, 2);
}
END_TEST

START_TEST(test_view_of_corrupt_entry_is_codec_error_and_dropped)
{
    ck_assert_int_eq(hc_put(cache, "user:1", "garbage", 7, NULL, NULL), HC_OK);
    hc_query q = hc_query_for_entity(&USER, "1");
    hc_pg_view v;
    hc_error err;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, &err), HC_ERR_CODEC);
    ck_assert_int_eq(hc_pg_view_ntuples(&v), 0);
    hc_pg_view_release(&v); /* harmless after an error */
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_MISS);
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, &err), HC_OK); /* reloads */
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, hc_pg_view_fnumber(&v, "name")), "alice");
    hc_pg_view_release(&v);
}
END_TEST

START_TEST(test_view_inside_a_transaction_sees_its_writes_and_stores_nothing)
{
    hc_query q = hc_query_for_entity(&USER, "1");
    hc_pg_view v;
    hc_error err;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, &err), HC_OK); /* cached: alice */
    hc_pg_view_release(&v);
    hc_test_exec(conn, "BEGIN; UPDATE users SET name = 'mallory' WHERE id = 1");
    ck_assert_msg(hc_pg_fetch_one_view(cache, conn, &q, &v, &err) == HC_OK, "%s", err.message);
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, hc_pg_view_fnumber(&v, "name")), "mallory");
    hc_pg_view_release(&v);
    hc_test_exec(conn, "ROLLBACK");
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, &err), HC_OK);
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, hc_pg_view_fnumber(&v, "name")), "alice");
    hc_pg_view_release(&v);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.loads, 1);
    ck_assert_uint_eq(st.bypassed_loads, 1);
}
END_TEST

START_TEST(test_view_outlives_an_invalidation_until_released)
{
    hc_query q = hc_query_for_entity(&USER, "42");
    hc_pg_view v;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, NULL), HC_OK);
    ck_assert_int_eq(hc_invalidate_key(cache, "user:42", NULL), HC_OK);
    ck_assert_int_eq(hc_contains(cache, "user:42", NULL), HC_MISS);
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, hc_pg_view_fnumber(&v, "name")), "zaphod");
    hc_pg_view_release(&v);
    ck_assert_ptr_null(hc_pg_view_getvalue(&v, 0, 0));
}
END_TEST

START_TEST(test_view_null_arguments_are_invalid)
{
    hc_query q = hc_query_for_entity(&USER, "1");
    hc_pg_view v;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, NULL, NULL), HC_ERR_INVALID);
    ck_assert_int_eq(hc_pg_fetch_one_view(NULL, conn, &q, &v, NULL), HC_ERR_INVALID);
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, NULL, &q, &v, NULL), HC_ERR_INVALID);
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, NULL, &v, NULL), HC_ERR_INVALID);
    ck_assert_int_eq(hc_pg_view_ntuples(&v), 0);
}
END_TEST

START_TEST(test_two_row_result_cached_by_fetch_all_fails_fetch_one_on_hit)
{
    hc_query q = {.sql = "SELECT name FROM users WHERE id IN (1, 2)"};
    PGresult *r = hc_pg_fetch_all(cache, conn, &q, NULL);
    ck_assert_int_eq(PQntuples(r), 2);
    PQclear(r);
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_one(cache, conn, &q, &err));
    ck_assert_str_eq(err.message, "expected exactly one row, got 2");
}
END_TEST

/* ------------------------------------------------------------ errors */

START_TEST(test_failing_query_is_not_cached_and_returns_libpq_message)
{
    fresh_seq("fail");
    PGresult *eres = NULL;
    hc_query q = {.sql = "SELECT 1 / (nextval('fail') * 0)::int", .error_result = &eres};
    for (int i = 1; i <= 2; i++) {
        hc_error err = {HC_OK, ""};
        ck_assert_ptr_null(hc_pg_fetch_all(cache, conn, &q, &err));
        ck_assert_int_eq(err.code, HC_ERR_PG);
        ck_assert_msg(strstr(err.message, "division by zero") != NULL, "message: %s", err.message);
        ck_assert_ptr_nonnull(eres);
        ck_assert_int_eq(PQresultStatus(eres), PGRES_FATAL_ERROR);
        ck_assert_str_eq(PQresultErrorField(eres, PG_DIAG_SQLSTATE), "22012");
        PQclear(eres);
        ck_assert_int_eq(seq_value("fail"), i); /* each call reached the server */
    }
}
END_TEST

START_TEST(test_syntax_error_passes_through)
{
    hc_query q = {.sql = "SELEC 1"};
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_all(cache, conn, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_PG);
    ck_assert_msg(strstr(err.message, "syntax error") != NULL, "message: %s", err.message);
}
END_TEST

START_TEST(test_statement_without_rows_is_invalid_and_not_cached)
{
    hc_query q = {.sql = "UPDATE users SET name = name WHERE id = -1"};
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_all(cache, conn, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_msg(strstr(err.message, "PGRES_COMMAND_OK") != NULL, "message: %s", err.message);
}
END_TEST

START_TEST(test_broken_connection_gives_pg_error)
{
    PGconn *bad = PQconnectdb("host=/nonexistent-hc-dir port=1 connect_timeout=1");
    ck_assert_int_eq(PQstatus(bad), CONNECTION_BAD);
    hc_query q = {.sql = "SELECT 1"};
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_all(cache, bad, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_PG);
    ck_assert_str_ne(err.message, "");
    PQfinish(bad);
}
END_TEST

START_TEST(test_null_arguments_are_invalid)
{
    hc_query q = {.sql = "SELECT 1"}, nosql = {.key = "k"};
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_all(cache, NULL, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_pg_fetch_one(cache, conn, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_pg_fetch_optional(cache, conn, &nosql, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_pg_fetch_all(NULL, conn, &q, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_pg_fetch_with(cache, &q, NULL, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    hc_query broken = {.sql = "SELECT 1"};
    hc_query_entity(&broken, "", "1"); /* recorded, reported by the fetch */
    ck_assert_ptr_null(hc_pg_fetch_all(cache, conn, &broken, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
}
END_TEST

/* ------------------------------------------------------------ invalidation */

START_TEST(test_update_then_tag_invalidation_reads_the_new_row)
{
    hc_query q = hc_query_for_entity(&USER, "2");
    PGresult *r = hc_pg_fetch_one(cache, conn, &q, NULL);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "bob");
    PQclear(r);
    hc_test_exec(conn, "UPDATE users SET name = 'robert' WHERE id = 2");
    r = hc_pg_fetch_one(cache, conn, &q, NULL);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "bob"); /* not told yet */
    PQclear(r);
    ck_assert_int_eq(hc_invalidate_tag(cache, "user:2", NULL), HC_OK);
    r = hc_pg_fetch_one(cache, conn, &q, NULL);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "robert");
    PQclear(r);
    hc_test_exec(conn, "UPDATE users SET name = 'bob' WHERE id = 2");
}
END_TEST

START_TEST(test_table_wide_tag_reaches_entity_entries)
{
    hc_query q = hc_query_for_entity(&USER, "1");
    PQclear(hc_pg_fetch_one(cache, conn, &q, NULL));
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_OK);
    hc_invalidate_tag(cache, "user:*", NULL);
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_MISS);
}
END_TEST

START_TEST(test_collection_tag_reaches_collection_queries)
{
    hc_query q = {.sql = "SELECT id FROM users ORDER BY id"};
    hc_query_collection(&q, "users");
    char key[HC_MAX_KEY_LEN + 1];
    hc_query_key(&q, key, sizeof key, NULL);
    PQclear(hc_pg_fetch_all(cache, conn, &q, NULL));
    ck_assert_int_eq(hc_contains(cache, key, NULL), HC_OK);
    hc_invalidate_tag(cache, "users", NULL);
    ck_assert_int_eq(hc_contains(cache, key, NULL), HC_MISS);
}
END_TEST

/* ------------------------------------------------------------ transactions */

static void assert_name(PGresult *r, const char *name)
{
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), name);
    PQclear(r);
}

START_TEST(test_repeatable_read_snapshot_is_not_stored)
{
    /* the snapshot predates a committed write whose invalidation already
     * arrived: the generation guard cannot see that, so nothing may be stored */
    hc_query q = hc_query_for_entity(&USER, "2");
    hc_test_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    free(hc_test_scalar(conn, "SELECT 1")); /* takes the snapshot */
    PGconn *other = hc_test_connect();
    hc_test_exec(other, "UPDATE users SET name = 'new' WHERE id = 2");
    hc_invalidate_key(cache, "user:2", NULL); /* as the bus would */
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "bob"); /* the snapshot's row */
    ck_assert_int_eq(hc_contains(cache, "user:2", NULL), HC_MISS);
    hc_test_exec(conn, "COMMIT");
    assert_name(hc_pg_fetch_one(cache, other, &q, NULL), "new");
    hc_test_exec(other, "UPDATE users SET name = 'bob' WHERE id = 2");
    PQfinish(other);
}
END_TEST

START_TEST(test_uncommitted_write_read_in_a_transaction_is_not_stored)
{
    hc_query q = hc_query_for_entity(&USER, "2");
    hc_test_exec(conn, "BEGIN");
    hc_test_exec(conn, "UPDATE users SET name = 'uncommitted' WHERE id = 2");
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "uncommitted");
    ck_assert_int_eq(hc_contains(cache, "user:2", NULL), HC_MISS);
    hc_test_exec(conn, "ROLLBACK"); /* no NOTIFY for a rollback */
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "bob");
}
END_TEST

START_TEST(test_cached_entry_is_not_served_inside_a_transaction)
{
    hc_query q = hc_query_for_entity(&USER, "2");
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "bob");
    hc_test_exec(conn, "BEGIN");
    hc_test_exec(conn, "UPDATE users SET name = 'mine' WHERE id = 2");
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "mine"); /* own write */
    hc_test_exec(conn, "ROLLBACK");
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.loads, 1);
    ck_assert_uint_eq(st.bypassed_loads, 1);
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "bob"); /* the entry is intact */
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 1);
}
END_TEST

START_TEST(test_failed_transaction_passes_the_server_error_through)
{
    hc_query q = hc_query_for_entity(&USER, "2");
    assert_name(hc_pg_fetch_one(cache, conn, &q, NULL), "bob");
    hc_test_exec(conn, "BEGIN");
    PQclear(PQexec(conn, "SELECT 1/0"));
    ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_INERROR);
    hc_error err = {HC_OK, ""};
    ck_assert_ptr_null(hc_pg_fetch_one(cache, conn, &q, &err)); /* not the cached row */
    ck_assert_int_eq(err.code, HC_ERR_PG);
    ck_assert_msg(strstr(err.message, "aborted") != NULL, "message: %s", err.message);
    hc_test_exec(conn, "ROLLBACK");
}
END_TEST

/* ------------------------------------------------------------ caller's loader */

typedef struct prep_ctx {
    PGconn *conn;
    int calls;
    hc_cache *invalidate_during_load; /* if set: invalidate user:1 mid-load */
} prep_ctx;

static PGresult *prepared_loader(void *vctx, const hc_query *q, hc_error *err)
{
    prep_ctx *ctx = vctx;
    ctx->calls++;
    if (ctx->invalidate_during_load) hc_invalidate_tag(ctx->invalidate_during_load, "user:1", NULL);
    return PQexecPrepared(ctx->conn, "user_by_id", q->nparams, q->param_values, NULL, NULL, 0);
}

static void prepare_user_by_id(void)
{
    PGresult *p = PQprepare(conn, "user_by_id", "SELECT id, name FROM users WHERE id = $1", 1, NULL);
    ck_assert_int_eq(PQresultStatus(p), PGRES_COMMAND_OK);
    PQclear(p);
}

START_TEST(test_fetch_with_runs_a_prepared_statement_once)
{
    prepare_user_by_id();
    prep_ctx ctx = {.conn = conn};
    hc_query q = {.sql = "user_by_id", HC_PARAMS("1")};
    hc_query_entity(&q, "user", "1");
    for (int i = 0; i < 2; i++) {
        hc_error err;
        PGresult *r = hc_pg_fetch_with(cache, &q, prepared_loader, &ctx, &err);
        ck_assert_msg(r != NULL, "%s", err.message);
        ck_assert_str_eq(PQgetvalue(r, 0, 1), "alice");
        PQclear(r);
    }
    ck_assert_int_eq(ctx.calls, 1);
}
END_TEST

START_TEST(test_fetch_with_conn_inside_a_transaction_bypasses_the_cache)
{
    prepare_user_by_id();
    prep_ctx ctx = {.conn = conn};
    hc_query q = {.sql = "user_by_id", HC_PARAMS("1")};
    hc_query_entity(&q, "user", "1");
    PQclear(hc_pg_fetch_with_conn(cache, conn, &q, prepared_loader, &ctx, NULL)); /* cached */
    hc_test_exec(conn, "BEGIN");
    hc_test_exec(conn, "UPDATE users SET name = 'mine' WHERE id = 1");
    for (int i = 0; i < 2; i++) {
        hc_error err;
        PGresult *r = hc_pg_fetch_with_conn(cache, conn, &q, prepared_loader, &ctx, &err);
        ck_assert_msg(r != NULL, "%s", err.message);
        ck_assert_str_eq(PQgetvalue(r, 0, 1), "mine"); /* own write, not the cached row */
        PQclear(r);
    }
    hc_test_exec(conn, "ROLLBACK");
    ck_assert_int_eq(ctx.calls, 3);
    PGresult *r = hc_pg_fetch_with_conn(cache, conn, &q, prepared_loader, &ctx, NULL);
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "alice"); /* the entry from before, untouched */
    PQclear(r);
    ck_assert_int_eq(ctx.calls, 3);
}
END_TEST

static PGresult *begin_then_write_loader(void *vctx, const hc_query *q, hc_error *err)
{
    (void)err;
    prep_ctx *ctx = vctx;
    ctx->calls++;
    hc_test_exec(ctx->conn, "BEGIN");
    hc_test_exec(ctx->conn, "UPDATE users SET name = 'uncommitted' WHERE id = 1");
    return PQexecPrepared(ctx->conn, "user_by_id", q->nparams, q->param_values, NULL, NULL, 0);
}

START_TEST(test_fetch_with_conn_loader_leaving_a_transaction_open_is_not_stored)
{
    prepare_user_by_id();
    prep_ctx ctx = {.conn = conn};
    hc_query q = {.sql = "user_by_id", HC_PARAMS("1")};
    hc_query_entity(&q, "user", "1");
    hc_error err = {HC_OK, ""};
    PGresult *r = hc_pg_fetch_with_conn(cache, conn, &q, begin_then_write_loader, &ctx, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_int_eq(err.code, HC_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "uncommitted");
    PQclear(r);
    hc_test_exec(conn, "ROLLBACK");
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_MISS);
}
END_TEST

static PGresult *failing_loader(void *vctx, const hc_query *q, hc_error *err)
{
    (void)vctx;
    (void)q;
    hc_error_set(err, HC_ERR_SYSTEM, "repository unavailable");
    return NULL;
}

START_TEST(test_fetch_with_loader_error_passes_through)
{
    hc_query q = {.key = "repo:1"};
    hc_error err;
    ck_assert_ptr_null(hc_pg_fetch_with(cache, &q, failing_loader, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_SYSTEM);
    ck_assert_str_eq(err.message, "repository unavailable");
    ck_assert_int_eq(hc_contains(cache, "repo:1", NULL), HC_MISS);
}
END_TEST

START_TEST(test_invalidation_during_load_is_not_stored)
{
    /* generations are recorded before the query is sent: a write reported
     * while it runs must keep its (possibly old) result out of the cache */
    PGresult *p = PQprepare(conn, "user_by_id", "SELECT id, name FROM users WHERE id = $1", 1, NULL);
    PQclear(p);
    prep_ctx ctx = {.conn = conn, .invalidate_during_load = cache};
    hc_query q = {.sql = "user_by_id", HC_PARAMS("1")};
    hc_query_entity(&q, "user", "1");
    PGresult *r = hc_pg_fetch_with(cache, &q, prepared_loader, &ctx, NULL);
    ck_assert_ptr_nonnull(r); /* the caller still gets it */
    PQclear(r);
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_MISS);
}
END_TEST

/* ------------------------------------------------------------ the extension */

/* One value from the server: hydracache.<fn>(...) with text params. */
static char *server_text(const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

START_TEST(test_adapter_keys_and_tags_equal_the_extension_functions)
{
    static const char *const ids[] = {"42", "a:b", "*", "", "a\\b", "\xc3\xbc:*\\", "\\N", NULL};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        hc_query q = {.sql = "SELECT 1"};
        ck_assert_int_eq(hc_query_entity(&q, "us:er", ids[i]), HC_OK);
        const char *tags[HC_MAX_TAGS];
        ck_assert_uint_eq(hc_query_tags(&q, tags, HC_MAX_TAGS), 2);
        char *key = server_text("SELECT hydracache.entity_key($1, $2)", 2,
                                (const char *const[]){"us:er", ids[i]});
        char *table = server_text("SELECT hydracache.table_tag($1)", 1, (const char *const[]){"us:er"});
        ck_assert_str_eq(tags[0], key);
        ck_assert_str_eq(tags[1], table);
        char mine[HC_MAX_KEY_LEN + 1];
        ck_assert_int_eq(hc_query_key(&q, mine, sizeof mine, NULL), HC_OK);
        ck_assert_str_eq(mine, key);
        free(key);
        free(table);
    }
    hc_query m = {.sql = "SELECT 1"};
    HC_QUERY_ENTITY(&m, "order_item", "7", "a:3");
    char *key = server_text("SELECT hydracache.entity_key('order_item', $1, $2)", 2,
                            (const char *const[]){"7", "a:3"});
    char mine[HC_MAX_KEY_LEN + 1];
    hc_query_key(&m, mine, sizeof mine, NULL);
    ck_assert_str_eq(mine, key);
    free(key);
    hc_query c = {.sql = "SELECT 1"};
    hc_query_collection(&c, "te:a*ms");
    const char *tag;
    ck_assert_uint_eq(hc_query_tags(&c, &tag, 1), 1);
    char *coll = server_text("SELECT hydracache.collection_tag($1)", 1, (const char *const[]){"te:a*ms"});
    ck_assert_str_eq(tag, coll);
    free(coll);
}
END_TEST

/* Decode one %-escaped payload argument in place (docs/PROTOCOL.md). */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

typedef struct listen_ctx {
    PGconn *listener;
    int applied;
} listen_ctx;

/* Apply every "hc1 db t <tags...>" notification received so far. */
static bool apply_notifications(void *vctx)
{
    listen_ctx *lc = vctx;
    PQconsumeInput(lc->listener);
    PGnotify *n;
    while ((n = PQnotifies(lc->listener)) != NULL) {
        char *save = NULL;
        char *ver = strtok_r(n->extra, " ", &save);
        char *origin = strtok_r(NULL, " ", &save);
        char *op = strtok_r(NULL, " ", &save);
        if (ver && origin && op && strcmp(ver, "hc1") == 0 && strcmp(op, "t") == 0) {
            for (char *arg; (arg = strtok_r(NULL, " ", &save)) != NULL;) {
                unescape(arg);
                hc_invalidate_tag(cache, arg, NULL);
            }
            lc->applied++;
        }
        PQfreemem(n);
    }
    return lc->applied > 0;
}

START_TEST(test_trigger_invalidates_exactly_the_dependent_entries)
{
    listen_ctx lc = {.listener = hc_test_connect()};
    hc_test_exec(lc.listener, "LISTEN hydracache");
    hc_test_exec(conn, "SELECT hydracache.watch('users', 'user')");

    hc_query one = hc_query_for_entity(&USER, "1"), two = hc_query_for_entity(&USER, "2");
    hc_query list = hc_query_for_collection(&USER, "SELECT id, name FROM users ORDER BY id");
    char list_key[HC_MAX_KEY_LEN + 1];
    hc_query_key(&list, list_key, sizeof list_key, NULL);
    PQclear(hc_pg_fetch_one(cache, conn, &one, NULL));
    PQclear(hc_pg_fetch_one(cache, conn, &two, NULL));
    PQclear(hc_pg_fetch_all(cache, conn, &list, NULL));

    hc_test_exec(conn, "UPDATE users SET email = 'b@example.org' WHERE id = 2");
    ck_assert_msg(hc_test_wait_for(apply_notifications, &lc, 10000), "no notification from the trigger");
    ck_assert_int_eq(hc_contains(cache, "user:2", NULL), HC_MISS);
    ck_assert_int_eq(hc_contains(cache, list_key, NULL), HC_MISS);
    ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_OK); /* another row: kept */

    PGresult *r = hc_pg_fetch_one(cache, conn, &two, NULL);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "email")), "b@example.org");
    PQclear(r);
    PQfinish(lc.listener);
}
END_TEST

/* ------------------------------------------------------------ #9 items 8-11 */

/* A libpq event procedure such as libpqtypes registers: instance data on
 * every result created for the connection, freed when the result is. */
static int ev_created, ev_destroyed;

static int event_proc(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_RESULTCREATE) {
        PGEventResultCreate *e = info;
        int *data = malloc(sizeof *data);
        *data = 4711;
        ev_created++;
        return PQresultSetInstanceData(e->result, event_proc, data);
    }
    if (id == PGEVT_RESULTDESTROY) {
        PGEventResultDestroy *e = info;
        free(PQresultInstanceData(e->result, event_proc));
        ev_destroyed++;
    }
    return 1;
}

START_TEST(test_hit_fires_result_create_and_destroy_events)
{
    ck_assert(PQregisterEventProc(conn, event_proc, "hc-test", NULL));
    hc_query q = hc_query_for_entity(&USER, "1");
    PGresult *miss = hc_pg_fetch_one(cache, conn, &q, NULL);
    PGresult *hit = hc_pg_fetch_one(cache, conn, &q, NULL);
    ck_assert_ptr_nonnull(miss);
    ck_assert_ptr_nonnull(hit);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_int_eq(ev_created, 2);
    int *m = PQresultInstanceData(miss, event_proc), *h = PQresultInstanceData(hit, event_proc);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(*h, 4711);
    PQclear(miss);
    PQclear(hit);
    ck_assert_int_eq(ev_destroyed, 2);
}
END_TEST

static void assert_loads_and_bypasses(uint64_t loads, uint64_t bypassed)
{
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.loads, loads);
    ck_assert_uint_eq(st.bypassed_loads, bypassed);
}

START_TEST(test_binary_fetch_after_text_fetch_of_an_entity_is_binary)
{
    for (int first = 0; first < 2; first++) {
        hc_cache_free(cache);
        cache = hc_cache_new(NULL, NULL);
        hc_query a = hc_query_for_entity(&USER, "1"), b = hc_query_for_entity(&USER, "1");
        a.result_format = first;
        b.result_format = !first;
        PGresult *ra = hc_pg_fetch_one(cache, conn, &a, NULL);
        PGresult *rb = hc_pg_fetch_one(cache, conn, &b, NULL);
        PGresult *ra2 = hc_pg_fetch_one(cache, conn, &a, NULL);
        ck_assert_ptr_nonnull(ra);
        ck_assert_ptr_nonnull(rb);
        ck_assert_ptr_nonnull(ra2);
        int id = PQfnumber(ra, "id");
        ck_assert_int_eq(PQfformat(ra, id), first);
        ck_assert_int_eq(PQfformat(rb, id), !first);
        ck_assert_int_eq(PQfformat(ra2, id), first);
        ck_assert_int_eq(PQgetlength(first ? rb : ra, 0, id), 1);      /* "1" */
        ck_assert_int_eq(PQgetlength(first ? ra : rb, 0, id), 4);      /* int4 */
        hc_pg_view v;
        ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &b, &v, NULL), HC_OK);
        ck_assert_int_eq(hc_pg_view_fformat(&v, id), !first);
        hc_pg_view_release(&v);
        assert_loads_and_bypasses(1, 2); /* one entry, the first format's; the other from the server */
        ck_assert_int_eq(hc_contains(cache, "user:1", NULL), HC_OK);
        PQclear(ra);
        PQclear(rb);
        PQclear(ra2);
    }
}
END_TEST

/* A second connection with other session settings sees its own text. */
static void assert_setting_not_shared(const char *set, int col, const char *sql)
{
    hc_query q = {.sql = sql, HC_PARAMS("1")};
    hc_query_entity(&q, "user", "1");
    PGresult *mine = hc_pg_fetch_one(cache, conn, &q, NULL);
    PGconn *other = hc_test_connect();
    hc_test_exec(other, set);
    PGresult *direct = PQexecParams(other, sql, 1, NULL, (const char *const[]){"1"}, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(direct), PGRES_TUPLES_OK);
    ck_assert_str_ne(PQgetvalue(direct, 0, col), PQgetvalue(mine, 0, col)); /* the setting matters */
    hc_error err;
    PGresult *theirs = hc_pg_fetch_one(cache, other, &q, &err);
    ck_assert_msg(theirs != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(theirs, 0, col), PQgetvalue(direct, 0, col));
    hc_pg_view v;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, other, &q, &v, &err), HC_OK);
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, col), PQgetvalue(direct, 0, col));
    hc_pg_view_release(&v);
    PGresult *again = hc_pg_fetch_one(cache, conn, &q, NULL); /* the entry is still the loader's */
    ck_assert_str_eq(PQgetvalue(again, 0, col), PQgetvalue(mine, 0, col));
    assert_loads_and_bypasses(1, 2);
    PQclear(mine);
    PQclear(direct);
    PQclear(theirs);
    PQclear(again);
    PQfinish(other);
}

START_TEST(test_hit_is_not_served_to_a_connection_with_other_datestyle)
{
    assert_setting_not_shared("SET DateStyle = 'German, DMY'", 1,
                              "SELECT id, seen FROM users WHERE id = $1");
}
END_TEST

START_TEST(test_hit_is_not_served_to_a_connection_with_other_timezone)
{
    hc_test_exec(conn, "SET TimeZone = 'UTC'");
    assert_setting_not_shared("SET TimeZone = 'Asia/Tokyo'", 1,
                              "SELECT id, seen FROM users WHERE id = $1");
}
END_TEST

START_TEST(test_hit_is_not_served_to_a_connection_with_other_intervalstyle)
{
    assert_setting_not_shared("SET IntervalStyle = 'sql_standard'", 1,
                              "SELECT id, interval '1 day 2 hours' AS i FROM users WHERE id = $1");
}
END_TEST

START_TEST(test_hit_is_not_served_to_a_connection_with_other_client_encoding)
{
    assert_setting_not_shared("SET client_encoding = 'LATIN1'", 1,
                              "SELECT id, U&'\\00FC' AS u FROM users WHERE id = $1");
}
END_TEST

START_TEST(test_hit_is_not_served_to_a_connection_with_other_standard_conforming_strings)
{
    /* the same query text means something else under the other setting */
    assert_setting_not_shared("SET standard_conforming_strings = off", 1,
                              "SELECT id, 'a\\tb' AS s FROM users WHERE id = $1");
}
END_TEST

static HC_ENTITY_DEF(USER_INT, .name = "user", .table = "public.users", .key_columns = {"id"},
                     .key_types = {HC_PG_KEY_INT});

START_TEST(test_integer_key_ids_are_canonicalised)
{
    static const char *const forms[] = {"0042", "+42", " 42 ", "042", "42"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        hc_query q = hc_query_for_entity(&USER_INT, forms[i]);
        char key[HC_MAX_KEY_LEN + 1];
        ck_assert_int_eq(hc_query_key(&q, key, sizeof key, NULL), HC_OK);
        ck_assert_str_eq(key, "user:42");
    }
    static const char *const zeros[] = {"0", "-0", "000", "+0"};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++) {
        hc_query q = hc_query_for_entity(&USER_INT, zeros[i]);
        char key[HC_MAX_KEY_LEN + 1];
        ck_assert_int_eq(hc_query_key(&q, key, sizeof key, NULL), HC_OK);
        ck_assert_str_eq(key, "user:0");
    }
    hc_query neg = hc_query_for_entity(&USER_INT, "-007");
    char key[HC_MAX_KEY_LEN + 1];
    ck_assert_int_eq(hc_query_key(&neg, key, sizeof key, NULL), HC_OK);
    ck_assert_str_eq(key, "user:-7");
    static const char *const bad[] = {"", "4 2", "42x", "0x2a", "-", "1e3", "99999999999999999999", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hc_query q = hc_query_for_entity(&USER_INT, bad[i]);
        hc_error err;
        ck_assert_int_eq(hc_query_key(&q, key, sizeof key, &err), HC_ERR_INVALID);
        ck_assert_ptr_null(hc_pg_fetch_optional(cache, conn, &q, &err));
        ck_assert_int_eq(err.code, HC_ERR_INVALID);
        ck_assert_msg(strstr(err.message, "integer") != NULL, "%s", err.message);
    }
}
END_TEST

static HC_ENTITY_DEF(ITEM_UUID, .name = "item", .select = "SELECT $1::uuid AS id",
                     .key_types = {HC_PG_KEY_UUID});

START_TEST(test_uuid_key_ids_are_canonicalised)
{
    static const char *const forms[] = {
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        hc_query q = hc_query_for_entity(&ITEM_UUID, forms[i]);
        char key[HC_MAX_KEY_LEN + 1];
        ck_assert_int_eq(hc_query_key(&q, key, sizeof key, NULL), HC_OK);
        ck_assert_str_eq(key, "item:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        /* the server reads the same value and prints it as the key says */
        PGresult *r = hc_pg_fetch_one(cache, conn, &q, NULL);
        ck_assert_str_eq(PQgetvalue(r, 0, 0), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        PQclear(r);
    }
    static const char *const bad[] = {"a0eebc99", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
                                      "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "-a0eebc999c0b4ef8bb6d6bb9bd380a11"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hc_query q = hc_query_for_entity(&ITEM_UUID, bad[i]);
        char key[HC_MAX_KEY_LEN + 1];
        ck_assert_int_eq(hc_query_key(&q, key, sizeof key, NULL), HC_ERR_INVALID);
    }
}
END_TEST

/* "0042" read through the real trigger and bus: the UPDATE's tag user:42
 * reaches the entry, so nothing stale is served after the sync. */
START_TEST(test_non_canonical_integer_id_is_invalidated_by_the_trigger)
{
    hc_test_exec(conn, "SELECT hydracache.watch('users', 'user')");
    hc_error err;
    hc_pg_bus *bus = hc_pg_bus_new(&(hc_pg_bus_config){.conninfo = hc_test_conninfo(),
                                                       .mode = HC_PG_BUS_THREAD}, &err);
    ck_assert_msg(bus != NULL, "%s", err.message);
    ck_assert_int_eq(hc_pg_bus_attach(bus, cache, &err), HC_OK);
    ck_assert_int_eq(hc_pg_bus_wait_state(bus, HC_BUS_LISTENING, 10000), HC_OK);
    hc_query q = hc_query_for_entity(&USER_INT, "0042");
    PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "zaphod");
    PQclear(r);
    hc_test_exec(conn, "UPDATE users SET name = 'beeblebrox' WHERE id = 42");
    ck_assert_int_eq(hc_pg_bus_sync(bus, 10000, &err), HC_OK);
    r = hc_pg_fetch_one(cache, conn, &q, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "beeblebrox");
    PQclear(r);
    hc_pg_bus_free(bus);
}
END_TEST

/* With the shape dictionary full, results keep their shapes inline: hits and
 * views read them as before. */
START_TEST(test_results_are_served_when_the_shape_dictionary_is_full)
{
    unsigned char p[HC_PGSHAPE_FIXED + 4] = {0};
    for (uint64_t i = 0; i < HC_PGSHAPE_MAX_SHAPES; i++) {
        memcpy(p + 1, &i, sizeof i); /* distinct settings: distinct shapes */
        hc__pgshape_intern(p, sizeof p);
    }
    size_t shapes;
    hc__pgshape_usage(&shapes, NULL);
    ck_assert_uint_eq(shapes, HC_PGSHAPE_MAX_SHAPES);
    hc_query q = hc_query_for_entity(&USER, "1");
    hc_error err;
    for (int i = 0; i < 2; i++) {
        PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
        ck_assert_msg(r != NULL, "%s", err.message);
        ck_assert_str_eq(PQgetvalue(r, 0, PQfnumber(r, "name")), "alice");
        PQclear(r);
    }
    hc_pg_view v;
    ck_assert_int_eq(hc_pg_fetch_one_view(cache, conn, &q, &v, &err), HC_OK);
    ck_assert_str_eq(hc_pg_view_getvalue(&v, 0, hc_pg_view_fnumber(&v, "name")), "alice");
    hc_pg_view_release(&v);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.hits, 2);
    assert_loads_and_bypasses(1, 0);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

#define NTHREADS 4

typedef struct worker {
    pthread_t tid;
    PGconn *conn;
    const hc_query *q;
    char value[32];
    hc_status st;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    hc_error err = {HC_OK, ""};
    PGresult *r = hc_pg_fetch_one(cache, w->conn, w->q, &err);
    w->st = err.code;
    if (r != NULL) {
        snprintf(w->value, sizeof w->value, "%s", PQgetvalue(r, 0, 0));
        w->st = HC_OK;
    }
    PQclear(r);
    return NULL;
}

static bool all_joined(void *ctx)
{
    (void)ctx;
    hc_stats st;
    hc_cache_stats(cache, &st);
    return st.single_flight_joins >= NTHREADS - 1;
}

START_TEST(test_concurrent_misses_run_the_query_once)
{
    fresh_seq("conc");
    /* the leader's query blocks on this lock until every other thread has
     * joined its load: no timing assumptions */
    hc_test_exec(conn, "SELECT pg_advisory_lock(4242)");
    hc_query q = {.sql = "SELECT nextval('conc') AS n FROM (SELECT pg_advisory_xact_lock_shared(4242)) l"};
    worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){.conn = hc_test_connect(), .q = &q};
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL, worker_main, &w[i]), 0);
    }
    bool joined = hc_test_wait_for(all_joined, NULL, 20000);
    hc_test_exec(conn, "SELECT pg_advisory_unlock(4242)");
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(w[i].tid, NULL);
        PQfinish(w[i].conn);
    }
    ck_assert_msg(joined, "the other threads never joined the load");
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(w[i].st, HC_OK);
        ck_assert_str_eq(w[i].value, "1");
    }
    ck_assert_int_eq(seq_value("conc"), 1);
    hc_stats st;
    hc_cache_stats(cache, &st);
    ck_assert_uint_eq(st.loads, 1);
}
END_TEST

typedef struct rule_worker {
    pthread_t tid;
    PGconn *conn;
    const hc_query *q;
    PGresult *(*fetch)(hc_cache *, PGconn *, const hc_query *, hc_error *);
    PGresult *result;
    hc_error err;
} rule_worker;

static void *rule_worker_main(void *arg)
{
    rule_worker *w = arg;
    w->result = w->fetch(cache, w->conn, w->q, &w->err);
    return NULL;
}

static bool stat_reached(void *ctx)
{
    const char *which = ctx;
    hc_stats st;
    hc_cache_stats(cache, &st);
    return strcmp(which, "loads") == 0 ? st.loads >= 1 : st.single_flight_joins >= 1;
}

START_TEST(test_joiner_applies_its_own_row_rule)
{
    /* a fetch_optional caller joining a fetch_one load of no row gets the
     * empty result, not the leader's HC_ERR_ROWCOUNT */
    hc_test_exec(conn, "SELECT pg_advisory_lock(4343)");
    /* random() < 0 is never true, but volatile: the planner cannot skip the lock */
    hc_query q = {.sql = "SELECT n FROM (SELECT pg_advisory_xact_lock_shared(4343), random() AS n) l WHERE n < 0"};
    rule_worker one = {.conn = hc_test_connect(), .q = &q, .fetch = hc_pg_fetch_one};
    rule_worker opt = {.conn = hc_test_connect(), .q = &q, .fetch = hc_pg_fetch_optional};
    ck_assert_int_eq(pthread_create(&one.tid, NULL, rule_worker_main, &one), 0);
    bool led = hc_test_wait_for(stat_reached, "loads", 20000);
    ck_assert_int_eq(pthread_create(&opt.tid, NULL, rule_worker_main, &opt), 0);
    bool joined = led && hc_test_wait_for(stat_reached, "joins", 20000);
    hc_test_exec(conn, "SELECT pg_advisory_unlock(4343)");
    pthread_join(one.tid, NULL);
    pthread_join(opt.tid, NULL);
    PQfinish(one.conn);
    PQfinish(opt.conn);
    ck_assert_msg(joined, "fetch_optional never joined the fetch_one load");
    ck_assert_ptr_null(one.result);
    ck_assert_int_eq(one.err.code, HC_ERR_ROWCOUNT);
    ck_assert_msg(opt.result != NULL, "%s", opt.err.message);
    ck_assert_int_eq(PQntuples(opt.result), 0);
    PQclear(opt.result);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pg");
    TCase *hits = tcase_create("hits");
    TCase *rows = tcase_create("row_counts");
    TCase *errs = tcase_create("errors");
    TCase *inval = tcase_create("invalidation");
    TCase *txn = tcase_create("transactions");
    TCase *with = tcase_create("fetch_with");
    TCase *conc = tcase_create("concurrency");
    TCase *ext = tcase_create("extension");
    TCase *view = tcase_create("views");
    TCase *all[] = {hits, rows, errs, inval, txn, with, conc, ext, view};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        tcase_add_unchecked_fixture(all[i], schema, NULL);
        tcase_add_checked_fixture(all[i], setup, teardown);
        tcase_set_timeout(all[i], 30);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_checked_fixture(ext, extension_setup, NULL);
    tcase_add_test(hits, test_hit_equals_uncached_result_in_text_format);
    tcase_add_test(hits, test_hit_equals_uncached_result_in_binary_format);
    tcase_add_test(hits, test_hit_does_not_reach_the_server);
    tcase_add_test(hits, test_different_params_get_different_entries);
    tcase_add_test(hits, test_entity_definition_query_end_to_end);
    tcase_add_test(rows, test_fetch_one_with_no_row_is_an_error);
    tcase_add_test(rows, test_fetch_one_with_two_rows_is_an_error);
    tcase_add_test(rows, test_no_row_loaded_by_fetch_one_serves_fetch_optional_from_the_cache);
    tcase_add_test(rows, test_fetch_optional_caches_no_row);
    tcase_add_test(rows, test_fetch_optional_with_two_rows_is_an_error);
    tcase_add_test(rows, test_fetch_all_caches_empty_results);
    tcase_add_test(rows, test_two_row_result_cached_by_fetch_all_fails_fetch_one_on_hit);
    tcase_add_test(errs, test_failing_query_is_not_cached_and_returns_libpq_message);
    tcase_add_test(errs, test_syntax_error_passes_through);
    tcase_add_test(errs, test_statement_without_rows_is_invalid_and_not_cached);
    tcase_add_test(errs, test_broken_connection_gives_pg_error);
    tcase_add_test(errs, test_null_arguments_are_invalid);
    tcase_add_test(errs, test_corrupt_entry_is_dropped_without_an_invalidation);
    tcase_add_test(txn, test_repeatable_read_snapshot_is_not_stored);
    tcase_add_test(txn, test_uncommitted_write_read_in_a_transaction_is_not_stored);
    tcase_add_test(txn, test_cached_entry_is_not_served_inside_a_transaction);
    tcase_add_test(txn, test_failed_transaction_passes_the_server_error_through);
    tcase_add_test(inval, test_update_then_tag_invalidation_reads_the_new_row);
    tcase_add_test(inval, test_table_wide_tag_reaches_entity_entries);
    tcase_add_test(inval, test_collection_tag_reaches_collection_queries);
    tcase_add_test(with, test_fetch_with_runs_a_prepared_statement_once);
    tcase_add_test(with, test_fetch_with_conn_inside_a_transaction_bypasses_the_cache);
    tcase_add_test(with, test_fetch_with_conn_loader_leaving_a_transaction_open_is_not_stored);
    tcase_add_test(with, test_fetch_with_loader_error_passes_through);
    tcase_add_test(with, test_invalidation_during_load_is_not_stored);
    tcase_add_test(conc, test_concurrent_misses_run_the_query_once);
    tcase_add_test(conc, test_joiner_applies_its_own_row_rule);
    tcase_add_test(view, test_view_equals_uncached_result_in_text_format);
    tcase_add_test(view, test_view_equals_uncached_result_in_binary_format);
    tcase_add_test(view, test_view_and_pgresult_share_one_cached_entry);
    tcase_add_test(view, test_view_row_count_rules_match_the_pgresult_functions);
    tcase_add_test(view, test_view_of_corrupt_entry_is_codec_error_and_dropped);
    tcase_add_test(view, test_view_inside_a_transaction_sees_its_writes_and_stores_nothing);
    tcase_add_test(view, test_view_outlives_an_invalidation_until_released);
    tcase_add_test(view, test_view_null_arguments_are_invalid);
    tcase_add_test(ext, test_adapter_keys_and_tags_equal_the_extension_functions);
    tcase_add_test(ext, test_trigger_invalidates_exactly_the_dependent_entries);
    tcase_add_test(hits, test_hit_fires_result_create_and_destroy_events);
    tcase_add_test(hits, test_binary_fetch_after_text_fetch_of_an_entity_is_binary);
    tcase_add_test(hits, test_hit_is_not_served_to_a_connection_with_other_datestyle);
    tcase_add_test(hits, test_hit_is_not_served_to_a_connection_with_other_timezone);
    tcase_add_test(hits, test_hit_is_not_served_to_a_connection_with_other_intervalstyle);
    tcase_add_test(hits, test_hit_is_not_served_to_a_connection_with_other_client_encoding);
    tcase_add_test(hits, test_hit_is_not_served_to_a_connection_with_other_standard_conforming_strings);
    tcase_add_test(hits, test_integer_key_ids_are_canonicalised);
    tcase_add_test(hits, test_uuid_key_ids_are_canonicalised);
    tcase_add_test(ext, test_non_canonical_integer_id_is_invalidated_by_the_trigger);
    tcase_add_test(errs, test_results_are_served_when_the_shape_dictionary_is_full);
    return hc_test_run_suite(s);
}
