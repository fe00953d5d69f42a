/* check_harness.c - the throwaway-cluster harness hands a working database to the suites. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hc_test.h"

/* Checked fixture: each test's connection to the test database. */
static PGconn *c;

static void connect_db(void)
{
    c = hc_test_connect();
}

static void disconnect_db(void)
{
    PQfinish(c);
    c = NULL;
}

START_TEST(test_harness_gives_a_private_database)
{
    char *db = hc_test_scalar(c, "SELECT current_database()");
    const char *want = getenv("HC_TEST_DB");
    ck_assert_ptr_nonnull(want);
    ck_assert_str_eq(db, want);
    free(db);
}
END_TEST

START_TEST(test_harness_server_is_postgresql_15)
{
    ck_assert_int_ge(PQserverVersion(c), 150000);
    ck_assert_int_lt(PQserverVersion(c), 160000);
    char *two = hc_test_scalar(c, "SELECT 1 + 1");
    ck_assert_str_eq(two, "2");
    free(two);
}
END_TEST

START_TEST(test_harness_extension_is_available)
{
    char *n = hc_test_scalar(c, "SELECT count(*) FROM pg_available_extensions WHERE name = 'hydracache'");
    ck_assert_str_eq(n, "1");
    free(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("database");
    tcase_add_checked_fixture(tc, connect_db, disconnect_db);
    tcase_add_test(tc, test_harness_gives_a_private_database);
    tcase_add_test(tc, test_harness_server_is_postgresql_15);
    tcase_add_test(tc, test_harness_extension_is_available);
    suite_add_tcase(s, tc);
    return hc_test_run_suite(s);
}
