/* check_registry.c - the registry of named caches and its JSON and Prometheus
 * snapshots: membership rules, content, escaping, health, allocation failure
 * and concurrent use. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bus_int.h"
#include "hc_test.h"
#include "hydracache/registry.h"
#include "json_check.h"

static hc_cache *new_cache(const char *name)
{
    hc_error err;
    hc_config cfg = {.name = name, .max_entries = 100};
    hc_cache *c = hc_cache_new(&cfg, &err);
    ck_assert_msg(c != NULL, "hc_cache_new: %s", err.message);
    return c;
}

/*
 * Fixture (checked: once per test): the test's registry, and the caches and
 * PostgreSQL buses it makes through kept_cache / named_cache / idle_pg_bus,
 * freed after the test in the order the registry requires (registry first,
 * then buses, then caches).
 */
#define MAX_KEPT 4
static hc_registry *reg;
static hc_cache *kept_caches[MAX_KEPT];
static hc_pg_bus *kept_buses[MAX_KEPT];
static size_t nkept_caches, nkept_buses;
static hc_bus *kept_local_buses[MAX_KEPT];
static size_t nkept_local_buses;

static void registry_setup(void)
{
    hc_error err;
    reg = hc_registry_new(&err);
    ck_assert_msg(reg != NULL, "hc_registry_new: %s", err.message);
    nkept_caches = nkept_buses = nkept_local_buses = 0;
}

static void registry_teardown(void)
{
    hc_registry_free(reg);
    reg = NULL;
    for (size_t i = 0; i < nkept_buses; i++)
        hc_pg_bus_free(kept_buses[i]);
    for (size_t i = 0; i < nkept_local_buses; i++)
        hc_bus_free(kept_local_buses[i]);
    for (size_t i = 0; i < nkept_caches; i++)
        hc_cache_free(kept_caches[i]);
}

/* c, freed by the fixture after the test (not thread-safe: test thread only). */
static hc_cache *kept_cache(hc_cache *c)
{
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_lt(nkept_caches, MAX_KEPT);
    return kept_caches[nkept_caches++] = c;
}

static hc_cache *named_cache(const char *name)
{
    return kept_cache(new_cache(name));
}

/* An in-process bus (freed by the fixture) with c attached, reporting a queue
 * usage as a transport's probe does: what the registry shows for c. */
static hc_bus *queue_bus(hc_cache *c, double usage)
{
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    ck_assert_ptr_nonnull(bus);
    ck_assert_uint_lt(nkept_local_buses, MAX_KEPT);
    kept_local_buses[nkept_local_buses++] = bus;
    ck_assert_int_eq(hc_bus_attach(bus, c, NULL), HC_OK);
    hc__bus_set_queue_usage(bus, usage);
    return bus;
}

static char *json_of(hc_registry *r)
{
    char *s = NULL;
    size_t len = 0;
    hc_error err;
    ck_assert_msg(hc_registry_json(r, &s, &len, &err) == HC_OK, "%s", err.message);
    ck_assert_uint_eq(len, strlen(s));
    ck_assert_msg(json_valid(s), "invalid JSON: %s", s);
    return s;
}

static char *prom_of(hc_registry *r)
{
    char *s = NULL;
    hc_error err;
    ck_assert_msg(hc_registry_prometheus(r, &s, NULL, &err) == HC_OK, "%s", err.message);
    return s;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

#define ck_assert_contains(hay, needle) \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "missing %s in:\n%s", (needle), (hay))

/* ------------------------------------------------------------- membership */

START_TEST(test_add_rejects_a_second_cache_with_the_same_name)
{
    hc_cache *a = named_cache("users"), *b = named_cache("users");
    hc_error err;
    ck_assert_int_eq(hc_registry_add(reg, a, &err), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, &err), HC_ERR_BUSY);
    ck_assert_int_eq(err.code, HC_ERR_BUSY);
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_ERR_BUSY);
    ck_assert_uint_eq(hc_registry_cache_count(reg), 1);
}
END_TEST

START_TEST(test_remove_frees_the_name_for_another_cache)
{
    hc_cache *a = named_cache("users"), *b = named_cache("users");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_remove(reg, a, NULL), HC_OK);
    ck_assert_uint_eq(hc_registry_cache_count(reg), 0);
    ck_assert_int_eq(hc_registry_remove(reg, a, NULL), HC_MISS);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
}
END_TEST

START_TEST(test_null_arguments_are_invalid)
{
    hc_cache *a = named_cache("a");
    char *out = (char *)1;
    bool up;
    hc_error err;
    ck_assert_int_eq(hc_registry_add(NULL, a, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_add(reg, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_remove(reg, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "b", NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_remove_pg_bus(reg, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_json(NULL, &out, NULL, &err), HC_ERR_INVALID);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(hc_registry_prometheus(reg, NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_cache_json(reg, NULL, HC_REGISTRY_STATS, &out, NULL, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_cache_json(reg, "a", (hc_registry_section)7, &out, NULL, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_health(reg, NULL, NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_health(NULL, &up, NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_uint_eq(hc_registry_cache_count(NULL), 0);
    hc_registry_free(NULL);
}
END_TEST

/* ------------------------------------------------------------- JSON */

START_TEST(test_json_reports_counters_diagnostics_and_hit_ratio)
{
    hc_cache *c = named_cache("users");
    hc_value *v = NULL;
    ck_assert_int_eq(hc_put(c, "user:1", "abc", 3, NULL, NULL), HC_OK);
    ck_assert_int_eq(hc_get(c, "user:1", &v, NULL), HC_OK);
    hc_value_release(v);
    ck_assert_int_eq(hc_get(c, "user:2", &v, NULL), HC_MISS);
    ck_assert_int_eq(hc_invalidate_tag(c, "nothing", NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);

    char *s = json_of(reg);
    ck_assert_contains(s, "\"version\":\"" HC_VERSION_STRING "\"");
    ck_assert_contains(s, "\"status\":\"UP\"");
    ck_assert_contains(s, "{\"name\":\"users\",\"stats\":{\"hits\":1,\"misses\":1,");
    ck_assert_contains(s, "\"puts\":1,");
    ck_assert_contains(s, "\"invalidations_tag\":1,");
    ck_assert_contains(s, "\"requests\":2,\"hit_ratio\":0.5}");
    ck_assert_contains(s, "\"diagnostics\":{\"entries\":1,");
    ck_assert_contains(s, "\"entries_limit\":100,");
    ck_assert_contains(s, "\"bus_state\":\"none\",\"bypass\":false,\"notify_queue_usage\":null}");
    ck_assert_contains(s, "\"buses\":[]");
    free(s);
}
END_TEST

START_TEST(test_empty_registry_snapshots_are_valid)
{
    char *s = json_of(reg);
    ck_assert_str_eq(s, "{\"version\":\"" HC_VERSION_STRING
                        "\",\"status\":\"UP\",\"caches\":[],\"buses\":[]}");
    free(s);
    s = prom_of(reg);
    ck_assert_contains(s, "# TYPE hydracache_hits_total counter\n");
    ck_assert_ptr_null(strstr(s, "hydracache_hits_total{"));
    free(s);
}
END_TEST

START_TEST(test_json_escapes_quotes_backslashes_and_control_bytes_in_names)
{
    hc_cache *c = named_cache("q\"b\\s\n\t\x01\x1f\x7f/");
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    char *s = json_of(reg);
    ck_assert_contains(s, "\"name\":\"q\\\"b\\\\s\\n\\t\\u0001\\u001f\\u007f/\"");
    free(s);
}
END_TEST

START_TEST(test_json_keeps_utf8_and_replaces_invalid_bytes)
{
    /* é and € are kept; a lone 0xff, an overlong '/', a UTF-16 surrogate and a
     * truncated sequence each become U+FFFD per byte. */
    hc_cache *c = named_cache("\xc3\xa9\xe2\x82\xac|\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82");
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    char *s = json_of(reg);
    ck_assert_contains(s, "\"name\":\"\xc3\xa9\xe2\x82\xac|\\ufffd|\\ufffd\\ufffd|"
                          "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"");
    free(s);
}
END_TEST

START_TEST(test_cache_json_reports_one_section_of_one_cache)
{
    hc_cache *a = named_cache("a"), *b = named_cache("b");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
    char *s = NULL;
    ck_assert_int_eq(hc_registry_cache_json(reg, "b", HC_REGISTRY_STATS, &s, NULL, NULL), HC_OK);
    ck_assert(json_valid(s));
    ck_assert_contains(s, "{\"name\":\"b\",\"stats\":{\"hits\":0,");
    ck_assert_ptr_null(strstr(s, "diagnostics"));
    free(s);
    ck_assert_int_eq(hc_registry_cache_json(reg, "a", HC_REGISTRY_DIAGNOSTICS, &s, NULL, NULL),
                     HC_OK);
    ck_assert(json_valid(s));
    ck_assert_contains(s, "{\"name\":\"a\",\"diagnostics\":{\"entries\":0,");
    free(s);
    hc_error err;
    s = (char *)1;
    ck_assert_int_eq(hc_registry_cache_json(reg, "c", HC_REGISTRY_STATS, &s, NULL, &err), HC_MISS);
    ck_assert_ptr_null(s);
    ck_assert_contains(err.message, "'c'");
}
END_TEST

START_TEST(test_caches_json_lists_every_cache_in_registration_order)
{
    hc_cache *a = named_cache("zeta"), *b = named_cache("alpha");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
    char *s = NULL;
    ck_assert_int_eq(hc_registry_caches_json(reg, &s, NULL, NULL), HC_OK);
    ck_assert(json_valid(s));
    char *z = strstr(s, "\"name\":\"zeta\""), *al = strstr(s, "\"name\":\"alpha\"");
    ck_assert_ptr_nonnull(z);
    ck_assert_ptr_nonnull(al);
    ck_assert(z < al);
    ck_assert_contains(s, "\"hit_ratio\":0,\"bus_state\":\"none\",\"bypass\":false}");
    free(s);
}
END_TEST

/* ------------------------------------------------------------- health */

START_TEST(test_health_is_down_while_a_cache_is_in_bypass)
{
    hc_cache *a = named_cache("a"), *b = named_cache("b");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
    bool up = false;
    char *s = NULL;
    ck_assert_int_eq(hc_registry_health(reg, &up, NULL, NULL, NULL), HC_OK);
    ck_assert(up);

    hc_cache_set_bypass(b, true, HC_ORIGIN_LOCAL);
    ck_assert_int_eq(hc_registry_health(reg, &up, &s, NULL, NULL), HC_OK);
    ck_assert(!up);
    ck_assert(json_valid(s));
    ck_assert_contains(s, "{\"status\":\"DOWN\",");
    ck_assert_contains(s, "\"a\":{\"status\":\"UP\"");
    ck_assert_contains(s, "\"b\":{\"status\":\"DOWN\",\"bus_state\":\"none\",\"bypass\":true,"
                          "\"notify_queue_usage\":null}");
    free(s);

    hc_cache_set_bypass(b, false, HC_ORIGIN_LOCAL);
    ck_assert_int_eq(hc_registry_health(reg, &up, NULL, NULL, NULL), HC_OK);
    ck_assert(up);
}
END_TEST

/* What the registry shows for a cache is the queue usage its bus last
 * reported (the cache itself keeps none). */
START_TEST(test_health_is_degraded_above_the_queue_usage_threshold)
{
    hc_cache *a = named_cache("a"), *b = named_cache("b");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
    hc_health h = HC_HEALTH_DOWN;
    bool up = false;
    char *s = NULL;

    hc_bus *bus = queue_bus(b, 0.5); /* at the default threshold: not above */
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_UP);

    hc__bus_set_queue_usage(bus, 0.75);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, &s, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_DEGRADED);
    ck_assert(json_valid(s));
    ck_assert_contains(s, "{\"status\":\"DEGRADED\",");
    ck_assert_contains(s, "\"a\":{\"status\":\"UP\",\"bus_state\":\"none\",\"bypass\":false,"
                          "\"notify_queue_usage\":null}");
    ck_assert_contains(s, "\"b\":{\"status\":\"DEGRADED\",\"bus_state\":\"local\","
                          "\"bypass\":false,\"notify_queue_usage\":0.75}");
    ck_assert_contains(s, "\"queue_usage_threshold\":0.5}");
    free(s);
    /* degraded is still up for the boolean API, and the whole snapshot says so */
    ck_assert_int_eq(hc_registry_health(reg, &up, NULL, NULL, NULL), HC_OK);
    ck_assert(up);
    s = json_of(reg);
    ck_assert_contains(s, "\"status\":\"DEGRADED\"");
    free(s);

    /* a raised threshold makes it UP again; bad thresholds are refused and change nothing */
    hc_error err;
    ck_assert_int_eq(hc_registry_set_queue_threshold(reg, 0.9, &err), HC_OK);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_UP);
    ck_assert_int_eq(hc_registry_set_queue_threshold(reg, 1.5, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_set_queue_threshold(reg, -0.1, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_set_queue_threshold(reg, 0.0 / 0.0, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_set_queue_threshold(NULL, 0.5, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_UP);
    ck_assert_int_eq(hc_registry_set_queue_threshold(reg, 0.25, &err), HC_OK);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_DEGRADED);

    /* bypass is worse than degraded */
    hc_cache_set_bypass(a, true, HC_ORIGIN_LOCAL);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_DOWN);
    ck_assert_int_eq(hc_registry_health_status(reg, NULL, NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_str_eq(hc_health_str(HC_HEALTH_DEGRADED), "DEGRADED");
    ck_assert_str_eq(hc_health_str((hc_health)9), "unknown");
}
END_TEST

/* A PostgreSQL bus in event-loop mode that is never polled stays connecting;
 * the fixture frees it. */
static hc_pg_bus *idle_pg_bus(void)
{
    hc_error err;
    hc_pg_bus_config cfg = {.conninfo = "host=/nonexistent dbname=x", .node_id = "n1",
                            .mode = HC_PG_BUS_EVENT_LOOP};
    hc_pg_bus *bus = hc_pg_bus_new(&cfg, &err);
    ck_assert_msg(bus != NULL, "hc_pg_bus_new: %s", err.message);
    ck_assert_uint_lt(nkept_buses, MAX_KEPT);
    return kept_buses[nkept_buses++] = bus;
}

START_TEST(test_pg_bus_is_reported_and_down_until_listening)
{
    hc_pg_bus *bus = idle_pg_bus();
    hc_cache *c = named_cache("users");
    ck_assert_int_eq(hc_pg_bus_attach(bus, c, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "main", bus, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "main", bus, NULL), HC_ERR_BUSY);
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "", bus, NULL), HC_ERR_INVALID);

    char *s = json_of(reg);
    ck_assert_contains(s, "\"status\":\"DOWN\"");
    ck_assert_contains(s, "\"buses\":[{\"name\":\"main\",\"node_id\":\"n1\","
                          "\"state\":\"connecting\",\"published\":0,");
    ck_assert_contains(s, "\"bus_state\":\"connecting\",\"bypass\":true");
    free(s);
    s = prom_of(reg);
    ck_assert_contains(s, "# TYPE hydracache_pg_bus_received_total counter\n");
    ck_assert_contains(s, "hydracache_pg_bus_up{bus=\"main\"} 0\n");
    ck_assert_contains(s, "hydracache_pg_bus_state{bus=\"main\",state=\"connecting\"} 1\n");
    ck_assert_contains(s, "hydracache_bus_state{cache=\"users\",state=\"connecting\"} 1\n");
    ck_assert_contains(s, "hydracache_bypass{cache=\"users\"} 1\n");
    free(s);
    bool up = true;
    ck_assert_int_eq(hc_registry_health(reg, &up, NULL, NULL, NULL), HC_OK);
    ck_assert(!up);

    ck_assert_int_eq(hc_registry_remove_pg_bus(reg, bus, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_remove_pg_bus(reg, bus, NULL), HC_MISS);
    ck_assert_int_eq(hc_registry_remove(reg, c, NULL), HC_OK);
    s = json_of(reg);
    ck_assert_contains(s, "\"caches\":[],\"buses\":[]");
    free(s);
}
END_TEST

/* A transport that does nothing: its bus stays connecting until the test says up. */
static hc_bus *started_bus;
static hc_status null_start(void *impl, hc_bus *bus, hc_error *err)
{
    (void)impl;
    (void)err;
    started_bus = bus;
    return HC_OK;
}
static void null_publish(void *impl, hc_cache *from, hc_inval_kind kind, const char *arg)
{
    (void)impl;
    (void)from;
    (void)kind;
    (void)arg;
}
static const hc_transport_ops null_ops = {.name = "null", .start = null_start,
                                          .publish = null_publish};

START_TEST(test_any_bus_is_reported_from_the_generic_bus)
{
    hc_bus *local = hc_local_bus_new("loc", NULL);
    hc_bus *custom = hc_bus_new("cus", &null_ops, NULL, NULL);
    ck_assert(local != NULL && custom != NULL);
    ck_assert_double_eq(hc_bus_queue_usage(custom), -1.0);
    ck_assert_double_eq(hc_bus_queue_usage(NULL), -1.0);
    ck_assert_int_eq(hc_registry_add_bus(reg, "local", local, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_bus(reg, "custom", custom, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_bus(reg, "again", custom, NULL), HC_ERR_BUSY);
    ck_assert_int_eq(hc_registry_add_bus(reg, "local", custom, NULL), HC_ERR_BUSY);
    ck_assert_int_eq(hc_registry_add_bus(reg, "x", NULL, NULL), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_add_bus(reg, "", local, NULL), HC_ERR_INVALID);

    char *s = json_of(reg);
    ck_assert_contains(s, "\"buses\":[{\"name\":\"local\",\"node_id\":\"loc\",\"state\":\"local\","
                          "\"notify_queue_usage\":null},{\"name\":\"custom\",\"node_id\":\"cus\","
                          "\"state\":\"connecting\",\"notify_queue_usage\":null}]");
    free(s);
    hc_health h;
    ck_assert_int_eq(hc_registry_health_status(reg, &h, &s, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_DOWN);
    ck_assert_contains(s, "\"local\":{\"status\":\"UP\",\"state\":\"local\"");
    ck_assert_contains(s, "\"custom\":{\"status\":\"DOWN\",\"state\":\"connecting\"");
    free(s);

    /* the transport comes up, then reports its queue filling: the registry asks the bus */
    hc_bus_transport_up(started_bus);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_UP);
    hc__bus_set_queue_usage(started_bus, 0.9);
    ck_assert_double_eq(hc_bus_queue_usage(custom), 0.9);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, &s, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_DEGRADED);
    ck_assert_contains(s, "\"custom\":{\"status\":\"DEGRADED\",\"state\":\"listening\","
                          "\"notify_queue_usage\":0.9}");
    free(s);
    /* no pg families without a PostgreSQL bus */
    s = prom_of(reg);
    ck_assert_ptr_null(strstr(s, "hydracache_pg_bus"));
    free(s);

    ck_assert_int_eq(hc_registry_remove_bus(reg, custom, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_remove_bus(reg, custom, NULL), HC_MISS);
    ck_assert_int_eq(hc_registry_remove_bus(reg, NULL, NULL), HC_ERR_INVALID);
    ck_assert_int_eq(hc_registry_health_status(reg, &h, NULL, NULL, NULL), HC_OK);
    ck_assert_int_eq(h, HC_HEALTH_UP);
    ck_assert_int_eq(hc_registry_remove_bus(reg, local, NULL), HC_OK);
    hc_bus_free(custom);
    hc_bus_free(local);
}
END_TEST

/* A PostgreSQL bus is one bus: it cannot be registered again as a generic one. */
START_TEST(test_a_pg_bus_cannot_be_registered_twice_through_its_generic_bus)
{
    hc_pg_bus *bus = idle_pg_bus();
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "main", bus, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_bus(reg, "other", hc_pg_bus_bus(bus), NULL), HC_ERR_BUSY);
    ck_assert_int_eq(hc_registry_remove_pg_bus(reg, bus, NULL), HC_OK);
}
END_TEST

/* ------------------------------------------------------------- golden */

/* Appends "--- title\n" + text + "\n" to *all, with the library version
 * replaced by @VERSION@ (so a version bump does not touch the golden file). */
static void golden_add(char **all, const char *title, char *text)
{
    ck_assert_ptr_nonnull(text);
    size_t vlen = strlen(HC_VERSION_STRING), n = strlen(*all);
    size_t cap = n + strlen(title) + 2 * strlen(text) + 64;
    char *out = realloc(*all, cap);
    ck_assert_ptr_nonnull(out);
    n += (size_t)sprintf(out + n, "--- %s\n", title);
    for (const char *p = text; *p;) {
        if (strncmp(p, HC_VERSION_STRING, vlen) == 0) {
            n += (size_t)sprintf(out + n, "@VERSION@");
            p += vlen;
        } else
            out[n++] = *p++;
    }
    out[n++] = '\n';
    out[n] = '\0';
    *all = out;
    free(text);
}

/* Every snapshot of one fixed state, byte for byte, against
 * tests/unit/registry_golden.txt (HC_GOLDEN_WRITE=1 rewrites the file).
 * The state covers every counter kind, a ratio, escaping, a bypassed cache,
 * a known and an unknown queue usage and a PostgreSQL bus. */
START_TEST(test_snapshots_match_the_golden_file)
{
    hc_pg_bus *bus = idle_pg_bus();
    hc_cache *users = kept_cache(hc_cache_new(
        &(hc_config){.name = "users", .max_bytes = 1 << 20, .max_entries = 100}, NULL));
    hc_cache *odd = kept_cache(hc_cache_new(
        &(hc_config){.name = "q\"b\\\n\x01\xff/\xc3\xa9", .max_bytes = 1 << 20}, NULL));
    hc_value *v = NULL;
    ck_assert_int_eq(hc_put(users, "user:1", "abc", 3, NULL, NULL), HC_OK);
    ck_assert_int_eq(hc_get(users, "user:1", &v, NULL), HC_OK);
    hc_value_release(v);
    ck_assert_int_eq(hc_get(users, "user:2", &v, NULL), HC_MISS);
    ck_assert_int_eq(hc_get(users, "user:3", &v, NULL), HC_MISS);
    ck_assert_int_eq(hc_invalidate_tag(users, "t", NULL), HC_OK);
    ck_assert_int_eq(hc_invalidate_key(users, "user:1", NULL), HC_OK);
    ck_assert_int_eq(hc_flush(users, NULL), HC_OK);
    queue_bus(users, 0.25);
    ck_assert_int_eq(hc_pg_bus_attach(bus, odd, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, users, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, odd, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add_pg_bus(reg, "main \"bus\"", bus, NULL), HC_OK);

    char *all = calloc(1, 1), *s = NULL;
    bool up;
    golden_add(&all, "json", json_of(reg));
    ck_assert_int_eq(hc_registry_caches_json(reg, &s, NULL, NULL), HC_OK);
    golden_add(&all, "caches", s);
    ck_assert_int_eq(hc_registry_cache_json(reg, "users", HC_REGISTRY_STATS, &s, NULL, NULL),
                     HC_OK);
    golden_add(&all, "stats users", s);
    ck_assert_int_eq(hc_registry_cache_json(reg, "users", HC_REGISTRY_DIAGNOSTICS, &s, NULL, NULL),
                     HC_OK);
    golden_add(&all, "diagnostics users", s);
    ck_assert_int_eq(hc_registry_health(reg, &up, &s, NULL, NULL), HC_OK);
    golden_add(&all, "health", s);
    golden_add(&all, "prometheus", prom_of(reg));

    char path[4096];
    hc_test_srcpath("tests/unit/registry_golden.txt", path, sizeof path);
    if (getenv("HC_GOLDEN_WRITE") != NULL) {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(all, f);
        fclose(f);
    }
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *want = calloc(1, 1 << 20);
    size_t n = fread(want, 1, (1 << 20) - 1, f);
    fclose(f);
    want[n] = '\0';
    if (strcmp(all, want) != 0) {
        size_t i = 0;
        while (all[i] && all[i] == want[i])
            i++;
        ck_abort_msg("snapshot differs from %s at byte %zu:\n got: %.80s\nwant: %.80s", path, i,
                     all + i, want + i);
    }
    free(want);
    free(all);
}
END_TEST

/* ------------------------------------------------------------- Prometheus */

START_TEST(test_prometheus_writes_help_and_type_once_per_family)
{
    hc_cache *a = named_cache("a"), *b = named_cache("b");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
    ck_assert_int_eq(hc_flush(b, NULL), HC_OK);
    char *s = prom_of(reg);
    ck_assert_uint_eq(count_of(s, "# TYPE hydracache_invalidations_total counter\n"), 1);
    ck_assert_uint_eq(count_of(s, "# HELP hydracache_invalidations_total "), 1);
    ck_assert_uint_eq(count_of(s, "# TYPE hydracache_entries gauge\n"), 1);
    ck_assert_contains(s, "hydracache_invalidations_total{cache=\"a\",kind=\"flush\"} 0\n");
    ck_assert_contains(s, "hydracache_invalidations_total{cache=\"b\",kind=\"flush\"} 1\n");
    ck_assert_contains(s, "hydracache_hits_total{cache=\"a\"} 0\n");
    ck_assert_contains(s, "hydracache_entries_limit{cache=\"b\"} 100\n");
    ck_assert_contains(s, "hydracache_bus_state{cache=\"a\",state=\"none\"} 1\n");
    ck_assert_contains(s, "hydracache_bus_state{cache=\"a\",state=\"listening\"} 0\n");
    /* unknown queue usage is left out, not reported as -1 */
    ck_assert_ptr_null(strstr(s, "hydracache_notify_queue_usage{"));
    free(s);
}
END_TEST

/* Every line is a comment or "name{labels} value"; every counter family ends
 * in _total; the samples of a family follow its # TYPE line without a gap. */
START_TEST(test_prometheus_output_is_well_formed)
{
    hc_cache *a = named_cache("a b"), *b = named_cache("c");
    ck_assert_int_eq(hc_registry_add(reg, a, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, b, NULL), HC_OK);
    char *s = prom_of(reg);
    ck_assert(s[strlen(s) - 1] == '\n');
    char family[128] = "";
    size_t samples = 0;
    for (char *line = strtok(s, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[128], type[16];
        if (sscanf(line, "# TYPE %127s %15s", name, type) == 2) {
            ck_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0);
            if (strcmp(type, "counter") == 0)
                ck_assert_msg(strlen(name) > 6 && strcmp(name + strlen(name) - 6, "_total") == 0,
                              "counter %s", name);
            snprintf(family, sizeof family, "%s{", name);
            continue;
        }
        if (strncmp(line, "# HELP hydracache_", 18) == 0)
            continue;
        ck_assert_msg(strncmp(line, family, strlen(family)) == 0, "sample outside %s: %s",
                      family, line);
        char *sp = strrchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        ck_assert(sp[-1] == '}');
        char *end;
        strtod(sp + 1, &end);
        ck_assert_msg(*end == '\0' && end > sp + 1, "bad value in %s", line);
        samples++;
    }
    ck_assert_uint_gt(samples, 40);
    free(s);
}
END_TEST

START_TEST(test_prometheus_escapes_label_values)
{
    hc_cache *c = named_cache("a\"b\\c\nd\xff");
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    char *s = prom_of(reg);
    ck_assert_contains(s, "hydracache_hits_total{cache=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\"} 0\n");
    free(s);
}
END_TEST

START_TEST(test_ratios_are_written_as_decimal_numbers)
{
    hc_cache *c = named_cache("c");
    hc_value *v = NULL;
    ck_assert_int_eq(hc_put(c, "k", "v", 1, NULL, NULL), HC_OK);
    ck_assert_int_eq(hc_get(c, "k", &v, NULL), HC_OK);
    hc_value_release(v);
    ck_assert_int_eq(hc_get(c, "x", &v, NULL), HC_MISS);
    ck_assert_int_eq(hc_get(c, "y", &v, NULL), HC_MISS);
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    char *s = prom_of(reg);
    ck_assert_contains(s, "hydracache_hit_ratio{cache=\"c\"} 0.333333333\n");
    free(s);
}
END_TEST

/* ------------------------------------------------------------- failures */

typedef hc_status (*snap_fn)(hc_registry *, char **, size_t *, hc_error *);

static hc_status health_snap(hc_registry *r, char **out, size_t *len, hc_error *err)
{
    bool up;
    return hc_registry_health(r, &up, out, len, err);
}

/* Failing the Nth allocation for every N: NOMEM with no output (ASan checks
 * that nothing leaks), until N is large enough to succeed. */
START_TEST(test_snapshots_report_nomem_when_allocation_fails)
{
    static const snap_fn fns[] = {hc_registry_json, hc_registry_prometheus,
                                  hc_registry_caches_json, health_snap};
    hc_cache *c = named_cache("users");
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        bool done = false;
        for (long n = 0; n < 100 && !done; n++) {
            char *s = (char *)1;
            hc_error err = {0};
            hc__alloc_fail_after(n);
            hc_status st = fns[f](reg, &s, NULL, &err);
            hc__alloc_fail_after(-1);
            if (st == HC_OK) {
                ck_assert_msg(n > 0, "snapshot %zu allocated nothing", f);
                free(s);
                done = true;
            } else {
                ck_assert_int_eq(st, HC_ERR_NOMEM);
                ck_assert_int_eq(err.code, HC_ERR_NOMEM);
                ck_assert_ptr_null(s);
            }
        }
        ck_assert(done);
    }
}
END_TEST

START_TEST(test_add_reports_nomem_and_leaves_registry_unchanged)
{
    hc_cache *c = named_cache("users");
    hc__alloc_fail_after(0);
    hc_status st = hc_registry_add(reg, c, NULL);
    hc__alloc_fail_after(-1);
    ck_assert_int_eq(st, HC_ERR_NOMEM);
    ck_assert_uint_eq(hc_registry_cache_count(reg), 0);
    hc__alloc_fail_after(1); /* the list grows, the name copy fails */
    st = hc_registry_add(reg, c, NULL);
    hc__alloc_fail_after(-1);
    ck_assert_int_eq(st, HC_ERR_NOMEM);
    ck_assert_uint_eq(hc_registry_cache_count(reg), 0);
    ck_assert_int_eq(hc_registry_add(reg, c, NULL), HC_OK);
    hc__alloc_fail_after(0);
    ck_assert_ptr_null(hc_registry_new(NULL));
    hc__alloc_fail_after(-1);
}
END_TEST

/* ------------------------------------------------------------- actuator */

START_TEST(test_actuator_availability_matches_the_build)
{
#ifdef HC_WITH_ACTUATOR
    ck_assert(hc_actuator_available());
#else
    hc_error err;
    ck_assert(!hc_actuator_available());
    ck_assert_ptr_null(hc_actuator_start(reg, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_STATE);
    ck_assert_uint_eq(hc_actuator_port(NULL), 0);
    hc_actuator_stop(NULL);
#endif
}
END_TEST

/* ------------------------------------------------------------- threads */

#define WORKERS 4
#define ROUNDS 300

typedef struct shared {
    hc_registry *reg;
    pthread_barrier_t start;
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

/* Each worker owns a cache it adds, uses and removes repeatedly. */
static void *churn(void *arg)
{
    worker *w = arg;
    char name[32];
    snprintf(name, sizeof name, "cache-%d", w->id);
    hc_cache *c = new_cache(name);
    pthread_barrier_wait(&w->sh->start);
    for (int i = 0; i < ROUNDS; i++) {
        ck_assert_int_eq(hc_registry_add(w->sh->reg, c, NULL), HC_OK);
        ck_assert_int_eq(hc_put(c, "k", "v", 1, NULL, NULL), HC_OK);
        ck_assert_int_eq(hc_registry_remove(w->sh->reg, c, NULL), HC_OK);
    }
    hc_cache_free(c); /* safe: removed, so no snapshot uses it any more */
    return NULL;
}

static void *snapshots(void *arg)
{
    worker *w = arg;
    int ok = 0;
    pthread_barrier_wait(&w->sh->start);
    for (int i = 0; i < ROUNDS / 3; i++) {
        char *s = NULL;
        if (hc_registry_json(w->sh->reg, &s, NULL, NULL) == HC_OK && json_valid(s))
            ok++;
        free(s);
        s = NULL;
        if (hc_registry_prometheus(w->sh->reg, &s, NULL, NULL) == HC_OK)
            ok++;
        free(s);
    }
    return (void *)(intptr_t)ok;
}

START_TEST(test_concurrent_registration_and_snapshots_are_safe)
{
    shared sh = {.reg = reg};
    pthread_t t[WORKERS + 2];
    worker w[WORKERS + 2];
    pthread_barrier_init(&sh.start, NULL, WORKERS + 2);
    for (int i = 0; i < WORKERS + 2; i++) {
        w[i] = (worker){&sh, i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, i < WORKERS ? churn : snapshots, &w[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < WORKERS + 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (int)(intptr_t)r;
    }
    ck_assert_int_eq(ok, 2 * 2 * (ROUNDS / 3));
    ck_assert_uint_eq(hc_registry_cache_count(sh.reg), 0);
    pthread_barrier_destroy(&sh.start);
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("membership");
    tcase_add_test(tc, test_add_rejects_a_second_cache_with_the_same_name);
    tcase_add_test(tc, test_remove_frees_the_name_for_another_cache);
    tcase_add_test(tc, test_null_arguments_are_invalid);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    tc = tcase_create("json");
    tcase_add_test(tc, test_json_reports_counters_diagnostics_and_hit_ratio);
    tcase_add_test(tc, test_empty_registry_snapshots_are_valid);
    tcase_add_test(tc, test_json_escapes_quotes_backslashes_and_control_bytes_in_names);
    tcase_add_test(tc, test_json_keeps_utf8_and_replaces_invalid_bytes);
    tcase_add_test(tc, test_cache_json_reports_one_section_of_one_cache);
    tcase_add_test(tc, test_caches_json_lists_every_cache_in_registration_order);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    tc = tcase_create("health");
    tcase_add_test(tc, test_health_is_down_while_a_cache_is_in_bypass);
    tcase_add_test(tc, test_health_is_degraded_above_the_queue_usage_threshold);
    tcase_add_test(tc, test_pg_bus_is_reported_and_down_until_listening);
    tcase_add_test(tc, test_snapshots_match_the_golden_file);
    tcase_add_test(tc, test_any_bus_is_reported_from_the_generic_bus);
    tcase_add_test(tc, test_a_pg_bus_cannot_be_registered_twice_through_its_generic_bus);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    tc = tcase_create("prometheus");
    tcase_add_test(tc, test_prometheus_writes_help_and_type_once_per_family);
    tcase_add_test(tc, test_prometheus_output_is_well_formed);
    tcase_add_test(tc, test_prometheus_escapes_label_values);
    tcase_add_test(tc, test_ratios_are_written_as_decimal_numbers);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    tc = tcase_create("failures");
    tcase_add_test(tc, test_snapshots_report_nomem_when_allocation_fails);
    tcase_add_test(tc, test_add_reports_nomem_and_leaves_registry_unchanged);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    tc = tcase_create("actuator");
    tcase_add_test(tc, test_actuator_availability_matches_the_build);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_set_timeout(tc, 50);
    tcase_add_test(tc, test_concurrent_registration_and_snapshots_are_safe);
    tcase_add_checked_fixture(tc, registry_setup, registry_teardown);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(registry_suite());
}
