/* check_registry_pg.c - registry health against a real PostgreSQL server:
 * a session that LISTENs and sits idle in a transaction pins the NOTIFY
 * queue (issue #9 item 16); the bus's probe of pg_notification_queue_usage()
 * turns health DEGRADED above the threshold, and UP again once the session
 * lets go.  On a private cluster: pinning the queue of the shared test server
 * would disturb the suites running beside this one. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hc_test.h"
#include "hydracache/registry.h"
#include "json_check.h"

#define WAIT_MS 60000

static hc_test_cluster g_cluster;

static void cluster_setup(void)
{
    if (hc_test_private_cluster_start(&g_cluster))
        hc_test_use_cluster(&g_cluster);
}

static void cluster_teardown(void)
{
    hc_test_use_cluster(NULL);
    hc_test_private_cluster_stop(&g_cluster);
}

/* Polls the registry's health until it is want (or WAIT_MS passes). */
static hc_health wait_health(hc_registry *reg, hc_health want)
{
    uint64_t deadline = hc_test_now_us() + WAIT_MS * 1000ull;
    hc_health h = HC_HEALTH_DOWN;
    do {
        ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
        if (h == want)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    } while (hc_test_now_us() < deadline);
    return h;
}

START_TEST(test_a_pinned_notify_queue_degrades_health_until_released)
{
    if (g_cluster.unavailable) {
        fprintf(stderr, "check_registry_pg: skipped: %s", g_cluster.error);
        return;
    }
    ck_assert_msg(g_cluster.running, "%s", g_cluster.error);
    hc_error err;
    hc_pg_bus_config cfg = {.conninfo = hc_test_conninfo(), .health_interval_ms = 50};
    hc_pg_bus *bus = hc_pg_bus_new(&cfg, &err);
    ck_assert_msg(bus != NULL, "hc_pg_bus_new: %s", err.message);
    ck_assert_int_eq(hc_pg_bus_wait_state(bus, HC_BUS_LISTENING, WAIT_MS), HC_OK);
    hc_cache *c = hc_cache_new(&(hc_config){.name = "users"}, &err);
    ck_assert_int_eq(hc_pg_bus_attach(bus, c, NULL), HC_OK);
    hc_registry *reg = hc_registry_new(&err);
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "main", bus, NULL), HC_OK);
    /* any usage above zero counts, so a few pages of notifications suffice */
    ck_assert_int_eq(hc_registry_set_queue_threshold(reg, 0.0, NULL), HC_OK);
    ck_assert_int_eq(wait_health(reg, HC_HEALTH_UP), HC_HEALTH_UP);

    /* the attack: LISTEN, BEGIN, stay idle; others keep notifying */
    PGconn *pin = hc_test_connect(), *writer = hc_test_connect();
    hc_test_exec(pin, "LISTEN registry_pin");
    hc_test_exec(pin, "BEGIN");
    hc_test_exec(pin, "SELECT 1");
    for (int i = 0; i < 64; i++)
        hc_test_exec(writer, "SELECT pg_notify('registry_pin', repeat('x', 1000))");
    ck_assert_int_eq(wait_health(reg, HC_HEALTH_DEGRADED), HC_HEALTH_DEGRADED);
    char *s = NULL;
    hc_health h;
    ck_assert_int_eq(hc_registry_health_status(reg, &h, &s, NULL, NULL), HC_OK);
    ck_assert(json_valid(s));
    ck_assert_msg(strstr(s, "\"main\":{\"status\":\"DEGRADED\",\"state\":\"listening\"") != NULL,
                  "%s", s);
    free(s);

    /* the session lets go: the queue drains and health is UP again */
    hc_test_exec(pin, "COMMIT");
    PQfinish(pin);
    ck_assert_int_eq(wait_health(reg, HC_HEALTH_UP), HC_HEALTH_UP);

    PQfinish(writer);
    hc_registry_free(reg);
    hc_pg_bus_free(bus);
    hc_cache_free(c);
}
END_TEST

static Suite *registry_pg_suite(void)
{
    Suite *s = suite_create("registry_pg");
    TCase *tc = tcase_create("notify queue");
    tcase_add_unchecked_fixture(tc, cluster_setup, cluster_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_a_pinned_notify_queue_degrades_health_until_released);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(registry_pg_suite());
}
