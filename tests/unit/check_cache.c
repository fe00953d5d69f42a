/* check_cache.c - the single-threaded behaviour of the public cache API. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"
#include "hc_test.h"
#include "hydracache/cache.h"

static hc_fake_clock fclock;
static hc_cache *cache;
static int load_calls;  /* calls of the counting loaders below */

static hc_cache *new_cache(size_t max_bytes, uint64_t default_ttl)
{
    hc_config cfg = {.name = "t", .max_bytes = max_bytes, .default_ttl_ms = default_ttl,
                     .shards = 4, .clock = hc_fake_clock_now, .clock_ctx = &fclock};
    hc_cache *c = hc_cache_new(&cfg, NULL);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Checked fixture of every test: a 1 MiB cache on a fake clock at 1000 ms. */
static void setup(void)
{
    fclock.now_ms = 1000;
    load_calls = 0;
    cache = new_cache(1 << 20, 0);
}

static void teardown(void)
{
    hc_cache_free(cache);
    cache = NULL;
}

/* Checked fixture of the "small" tests, after setup's: a 4 KiB cache too, and
 * a value twice that size. */
static hc_cache *small;
static char big[8192];

static void small_setup(void)
{
    small = new_cache(4096, 0);
}

static void small_teardown(void)
{
    hc_cache_free(small);
    small = NULL;
}

static hc_stats stats(void)
{
    hc_stats s;
    hc_cache_stats(cache, &s);
    return s;
}

/* ------------------------------------------------------------------ values */

START_TEST(test_value_is_refcounted_and_nul_terminated)
{
    hc_value *v = hc_value_new("abc", 3);
    ck_assert_uint_eq(hc_value_len(v), 3);
    ck_assert_str_eq(hc_value_data(v), "abc");
    ck_assert_ptr_eq(hc_value_retain(v), v);
    hc_value_release(v);
    ck_assert_str_eq(hc_value_data(v), "abc");
    hc_value_release(v);
    void *data;
    hc_value *w = hc_value_alloc(2, &data);
    memcpy(data, "xy", 2);
    ck_assert_str_eq(hc_value_data(w), "xy");
    hc_value_release(w);
    ck_assert_ptr_null(hc_value_new(NULL, 1));
    ck_assert_ptr_null(hc_value_alloc(HC_MAX_VALUE_LEN + 1, &data));
    ck_assert_ptr_null(hc_value_retain(NULL));
    hc_value_release(NULL);
    ck_assert_uint_eq(hc_value_len(NULL), 0);
    hc_value *empty = hc_value_new(NULL, 0);
    ck_assert_str_eq(hc_value_data(empty), "");
    hc_value_release(empty);
}
END_TEST

/* ------------------------------------------------------------------ basics */

/* Hits share the cache's one value (no copy per hit); the put copied v's
 * bytes into the entry, so v is the caller's alone, and a value a hit
 * handed out outlives its entry's removal. */
START_TEST(test_hit_returns_a_reference_not_a_copy)
{
    hc_value *v = hc_value_new("payload", 7), *a = NULL, *b = NULL;
    ck_assert_int_eq(hc_put_value(cache, "k", v, NULL, NULL), HC_OK);
    hc_value_release(v);
    ck_assert_int_eq(hc_get(cache, "k", &a, NULL), HC_OK);
    ck_assert_int_eq(hc_get(cache, "k", &b, NULL), HC_OK);
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_ne(a, v);
    ck_assert_int_eq(hc_remove(cache, "k", NULL), HC_OK);
    ck_assert_int_eq(hc_put(cache, "k", "other", 5, NULL, NULL), HC_OK);
    ck_assert_uint_eq(hc_value_len(a), 7);
    ck_assert_str_eq(hc_value_data(a), "payload");
    hc_value_release(a);
    ck_assert_str_eq(hc_value_data(b), "payload");
    hc_value_release(b);
    ck_assert_cached(cache, "k", "other");
}
END_TEST

START_TEST(test_get_of_absent_key_misses)
{
    ck_assert_missing(cache, "absent");
    ck_assert_int_eq(hc_contains(cache, "absent", NULL), HC_MISS);
}
END_TEST

START_TEST(test_put_replaces_the_entry)
{
    put_str(cache, "k", "one", NULL);
    put_str(cache, "k", "two", NULL);
    ck_assert_cached(cache, "k", "two");
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_eq(d.entries, 1);
}
END_TEST

START_TEST(test_remove_and_invalidate_key_drop_one_key)
{
    put_str(cache, "a", "1", NULL);
    put_str(cache, "b", "2", NULL);
    ck_assert_int_eq(hc_remove(cache, "a", NULL), HC_OK);
    ck_assert_missing(cache, "a");
    ck_assert_int_eq(hc_invalidate_key(cache, "b", NULL), HC_OK);
    ck_assert_missing(cache, "b");
    ck_assert_int_eq(hc_invalidate_key(cache, "never-there", NULL), HC_OK);
    ck_assert_uint_eq(stats().invalidations_key, 3);
}
END_TEST

START_TEST(test_invalidate_tag_removes_exactly_the_tagged_entries)
{
    hc_tagset *ts = hc_tagset_new();
    hc_tagset_add(ts, "user:2", NULL);
    hc_tagset_add(ts, "users", NULL);
    put_str(cache, "u1", "1", HC_OPTS(.tags = HC_TAGS("users", "user:1")));
    put_str(cache, "u2", "2", HC_OPTS(.tagset = ts));
    put_str(cache, "o1", "3", HC_OPTS(.tags = HC_TAGS("orders")));
    put_str(cache, "plain", "4", NULL);
    ck_assert_int_eq(hc_invalidate_tag(cache, "user:1", NULL), HC_OK);
    ck_assert_missing(cache, "u1");
    ck_assert_cached(cache, "u2", "2");
    ck_assert_int_eq(hc_invalidate_tag(cache, "users", NULL), HC_OK);
    ck_assert_missing(cache, "u2");
    ck_assert_cached(cache, "o1", "3");
    ck_assert_cached(cache, "plain", "4");
    ck_assert_int_eq(hc_invalidate_tag(cache, "no-such-tag", NULL), HC_OK);
    ck_assert_uint_eq(stats().invalidations_tag, 3);
    hc_tagset_free(ts);
}
END_TEST

START_TEST(test_replaced_entry_leaves_its_old_tags)
{
    put_str(cache, "k", "old", HC_OPTS(.tags = HC_TAGS("t1")));
    put_str(cache, "k", "new", HC_OPTS(.tags = HC_TAGS("t2")));
    hc_invalidate_tag(cache, "t1", NULL);
    ck_assert_cached(cache, "k", "new");
    hc_invalidate_tag(cache, "t2", NULL);
    ck_assert_missing(cache, "k");
}
END_TEST

START_TEST(test_flush_removes_everything)
{
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        put_str(cache, k, "v", NULL);
    }
    ck_assert_int_eq(hc_flush(cache, NULL), HC_OK);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_eq(d.entries, 0);
    ck_assert_uint_eq(d.bytes_used, 0);
    ck_assert_missing(cache, "k7");
    ck_assert_uint_eq(stats().invalidations_flush, 1);
}
END_TEST

START_TEST(test_value_larger_than_the_limit_is_too_large)
{
    hc_error err;
    ck_assert_int_eq(hc_put(small, "k", big, sizeof big, NULL, &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(err.code, HC_ERR_TOO_LARGE);
    ck_assert_missing(small, "k");
    ck_assert_int_eq(hc_put(small, "k", big, 100, NULL, &err), HC_OK);
}
END_TEST

/* A put that stores nothing must not leave the value it was replacing readable. */
START_TEST(test_failed_put_leaves_the_key_absent)
{
    hc_error err;
    const char *null_tag = NULL;
    ck_assert_int_eq(put_str(small, "k", "old", NULL), HC_OK);
    ck_assert_int_eq(hc_put(small, "k", big, sizeof big, NULL, &err), HC_ERR_TOO_LARGE);
    ck_assert_missing(small, "k");
    ck_assert_int_eq(put_str(small, "k", "old", NULL), HC_OK);
    ck_assert_int_eq(put_str(small, "k", "new", HC_OPTS(.tags = {&null_tag, 1})),
                     HC_ERR_INVALID);
    ck_assert_missing(small, "k");
    ck_assert_int_eq(put_str(small, "k", "old", NULL), HC_OK);
    ck_assert_int_eq(hc_put(small, "k", NULL, 1, NULL, &err), HC_ERR_INVALID);
    ck_assert_missing(small, "k");
    ck_assert_int_eq(put_str(small, "k", "old", NULL), HC_OK);
    ck_assert_int_eq(hc_put_value(small, "k", NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_missing(small, "k");
}
END_TEST

START_TEST(test_cache_defaults)
{
    hc_cache *c = hc_cache_new(NULL, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(hc_cache_name(c), "default");
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    ck_assert_uint_eq(d.bytes_limit, (size_t)64 << 20);
    ck_assert_uint_eq(d.entries_limit, 0);
    ck_assert_int_eq(d.bus_state, HC_BUS_NONE);
    ck_assert(!d.bypass);
    hc_cache_free(c);
    hc_cache_free(NULL);
    ck_assert_ptr_null(hc_cache_name(NULL));
    hc_config odd = {.shards = 5000, .name = "odd"};
    c = hc_cache_new(&odd, NULL); /* shard count clamped, not rejected */
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(hc_cache_name(c), "odd");
    put_str(c, "k", "v", NULL);
    ck_assert_cached(c, "k", "v");
    hc_cache_free(c);
}
END_TEST

/* ------------------------------------------------------------------ TTL */

START_TEST(test_entry_expires_after_its_ttl)
{
    put_str(cache, "k", "v", HC_OPTS(.ttl_ms = 100));
    fclock.now_ms += 99;
    ck_assert_cached(cache, "k", "v");
    fclock.now_ms += 1;
    ck_assert_missing(cache, "k");
    hc_stats s = stats();
    ck_assert_uint_eq(s.evictions_expired, 1);
    ck_assert_uint_eq(s.hits, 1);
    ck_assert_uint_eq(s.misses, 1);
}
END_TEST

START_TEST(test_default_ttl_applies_and_forever_overrides_it)
{
    hc_cache *c = new_cache(1 << 20, 50);
    put_str(c, "default", "v", NULL);
    put_str(c, "forever", "v", HC_OPTS(.ttl_ms = HC_TTL_FOREVER));
    put_str(c, "longer", "v", HC_OPTS(.ttl_ms = 500));
    fclock.now_ms += 50;
    ck_assert_missing(c, "default");
    ck_assert_cached(c, "forever", "v");
    ck_assert_cached(c, "longer", "v");
    fclock.now_ms += 1000000;
    ck_assert_cached(c, "forever", "v");
    ck_assert_missing(c, "longer");
    hc_cache_free(c);
}
END_TEST

START_TEST(test_contains_drops_expired_entries)
{
    put_str(cache, "k", "v", HC_OPTS(.ttl_ms = 10));
    ck_assert_int_eq(hc_contains(cache, "k", NULL), HC_OK);
    fclock.now_ms += 10;
    ck_assert_int_eq(hc_contains(cache, "k", NULL), HC_MISS);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_eq(d.entries, 0);
    ck_assert_uint_eq(d.stats.evictions_expired, 1);
}
END_TEST

START_TEST(test_sweep_drops_only_expired_entries)
{
    put_str(cache, "short1", "v", HC_OPTS(.ttl_ms = 10));
    put_str(cache, "short2", "v", HC_OPTS(.ttl_ms = 10));
    put_str(cache, "long", "v", HC_OPTS(.ttl_ms = 1000));
    put_str(cache, "never", "v", NULL);
    fclock.now_ms += 10;
    ck_assert_uint_eq(hc_cache_sweep(cache), 2);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_eq(d.entries, 2);
    ck_assert_uint_eq(d.stats.evictions_expired, 2);
    ck_assert_uint_eq(hc_cache_sweep(NULL), 0);
}
END_TEST

START_TEST(test_puts_sweep_expired_entries_incrementally)
{
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "old%d", i);
        put_str(cache, k, "v", HC_OPTS(.ttl_ms = 5));
    }
    fclock.now_ms += 5;
    for (int i = 0; i < 400; i++) {
        char k[16];
        snprintf(k, sizeof k, "new%d", i);
        put_str(cache, k, "v", NULL);
    }
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    /* no get, contains or sweep touched the old keys: only puts dropped them */
    ck_assert_uint_eq(d.stats.evictions_expired, 100);
    ck_assert_uint_eq(d.entries, 400);
}
END_TEST

/* ------------------------------------------------------------------ loads */

static hc_status counting_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    load_calls++;
    return load_ctx_string(ctx, key, out, err);
}

static hc_status failing_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    (void)ctx;
    load_calls++;
    return hc_error_set(err, HC_ERR_PG, "relation \"%s\" does not exist", key);
}

static hc_status empty_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    (void)ctx, (void)key, (void)err;
    load_calls++;
    *out = NULL;
    return HC_OK;
}

START_TEST(test_get_or_load_loads_once_then_hits)
{
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, counting_loader, "loaded", &v, NULL),
                     HC_OK);
    ck_assert_str_eq(hc_value_data(v), "loaded");
    hc_value_release(v);
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, counting_loader, "other", &v, NULL),
                     HC_OK);
    ck_assert_str_eq(hc_value_data(v), "loaded");
    hc_value_release(v);
    ck_assert_int_eq(load_calls, 1);
    ck_assert_int_eq(hc_try_get_or_insert_with(cache, "k", NULL, counting_loader, "x", &v, NULL),
                     HC_OK);
    hc_value_release(v);
    ck_assert_int_eq(load_calls, 1);
}
END_TEST

START_TEST(test_loaded_entry_carries_opts_tags_and_ttl)
{
    hc_value *v = NULL;
    hc_get_or_load(cache, "a", HC_OPTS(.tags = HC_TAGS("t")), counting_loader, "A", &v, NULL);
    hc_value_release(v);
    hc_get_or_load(cache, "b", HC_OPTS(.ttl_ms = 10), counting_loader, "B", &v, NULL);
    hc_value_release(v);
    hc_invalidate_tag(cache, "t", NULL);
    ck_assert_missing(cache, "a");
    ck_assert_cached(cache, "b", "B");
    fclock.now_ms += 10;
    ck_assert_missing(cache, "b");
}
END_TEST

START_TEST(test_loader_error_is_returned_and_not_cached)
{
    hc_value *v = (hc_value *)1;
    hc_error err;
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, failing_loader, NULL, &v, &err),
                     HC_ERR_PG);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(err.code, HC_ERR_PG);
    ck_assert_str_eq(err.message, "relation \"k\" does not exist");
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, failing_loader, NULL, &v, &err),
                     HC_ERR_PG);
    ck_assert_int_eq(load_calls, 2);
    ck_assert_missing(cache, "k");
    ck_assert_uint_eq(stats().load_errors, 2);
}
END_TEST

START_TEST(test_loader_without_value_is_a_loader_error)
{
    hc_value *v = NULL;
    hc_error err;
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, empty_loader, NULL, &v, &err),
                     HC_ERR_LOADER);
    ck_assert_int_eq(err.code, HC_ERR_LOADER);
    ck_assert_ptr_null(v);
    ck_assert_missing(cache, "k");
}
END_TEST

static hc_value *infallible(void *ctx, const char *key)
{
    (void)key;
    return ctx != NULL ? hc_value_new(ctx, strlen(ctx)) : NULL;
}

static hc_status outcome_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    (void)key;
    (void)out;
    hc_status st = *(const hc_status *)ctx;
    return st == HC_MISS ? hc_error_set(err, st, "no such row") : st;
}

/* HC_MISS/HC_TIMEOUT from a loader is no value and no error: a loader error. */
START_TEST(test_loader_returning_an_outcome_status_is_a_loader_error)
{
    hc_value *v = (hc_value *)1;
    hc_error err;
    hc_status ret = HC_MISS;
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, outcome_loader, &ret, &v, &err),
                     HC_ERR_LOADER);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(err.code, HC_ERR_LOADER);
    ck_assert_str_eq(err.message, "no such row"); /* the loader's message is kept */
    ret = HC_TIMEOUT;
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, outcome_loader, &ret, &v, &err),
                     HC_ERR_LOADER);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(err.code, HC_ERR_LOADER);
    ck_assert_ptr_nonnull(strstr(err.message, hc_status_str(HC_TIMEOUT)));
    ck_assert_missing(cache, "k");
    ck_assert_uint_eq(stats().load_errors, 2);
}
END_TEST

START_TEST(test_get_or_insert_with_uses_an_infallible_loader)
{
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_insert_with(cache, "k", NULL, infallible, "made", &v, NULL),
                     HC_OK);
    ck_assert_str_eq(hc_value_data(v), "made");
    hc_value_release(v);
    ck_assert_cached(cache, "k", "made");
    ck_assert_int_eq(hc_get_or_insert_with(cache, "j", NULL, infallible, NULL, &v, NULL),
                     HC_ERR_NOMEM);
    ck_assert_int_eq(hc_get_or_insert_with(cache, "j", NULL, NULL, NULL, &v, NULL),
                     HC_ERR_INVALID);
}
END_TEST

static hc_status reentrant_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    hc_cache *c = ctx;
    hc_value *inner = NULL;
    /* the loader may use the cache for other keys, loads included */
    hc_status st = hc_get_or_load(c, "inner", NULL, load_ctx_string, "in", &inner, err);
    if (st != HC_OK)
        return st;
    put_str(c, "side", "effect", NULL);
    *out = hc_value_new("outer+in", 8);
    hc_value_release(inner);
    return HC_OK;
}

START_TEST(test_loader_may_call_the_cache_for_other_keys)
{
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_load(cache, "outer", NULL, reentrant_loader, cache, &v, NULL),
                     HC_OK);
    ck_assert_str_eq(hc_value_data(v), "outer+in");
    hc_value_release(v);
    ck_assert_cached(cache, "inner", "in");
    ck_assert_cached(cache, "side", "effect");
    ck_assert_cached(cache, "outer", "outer+in");
}
END_TEST

static hc_status self_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    hc_cache *c = ctx;
    hc_status st = hc_get_or_load(c, key, NULL, self_loader, c, out, err);
    ck_assert_int_eq(st, HC_ERR_STATE);
    return st;
}

START_TEST(test_loader_asking_for_its_own_key_fails_instead_of_deadlocking)
{
    hc_value *v = NULL;
    hc_error err;
    ck_assert_int_eq(hc_get_or_load(cache, "self", NULL, self_loader, cache, &v, &err),
                     HC_ERR_STATE);
    ck_assert_ptr_null(v);
    ck_assert_missing(cache, "self");
}
END_TEST

/* ------------------------------------------------------------------ stats */

START_TEST(test_stats_are_exact_for_a_scripted_sequence)
{
    hc_value *v = NULL;
    put_str(cache, "a", "1", NULL);                                      /* put */
    ck_assert_cached(cache, "a", "1");                                   /* hit */
    ck_assert_missing(cache, "b");                                       /* miss */
    hc_get_or_load(cache, "b", NULL, load_ctx_string, "2", &v, NULL);    /* miss, load */
    hc_value_release(v);
    hc_get_or_load(cache, "b", NULL, load_ctx_string, "2", &v, NULL);    /* hit */
    hc_value_release(v);
    hc_get_or_load(cache, "c", NULL, failing_loader, NULL, &v, NULL);    /* miss, load error */
    hc_invalidate_key(cache, "a", NULL);
    hc_invalidate_tag(cache, "x", NULL);
    hc_flush(cache, NULL);
    put_str(cache, "t", "v", HC_OPTS(.ttl_ms = 1));
    fclock.now_ms += 1;
    ck_assert_missing(cache, "t");                                       /* miss, expired */
    hc_stats s = stats();
    ck_assert_uint_eq(s.hits, 2);
    ck_assert_uint_eq(s.misses, 4);
    ck_assert_uint_eq(s.loads, 2);
    ck_assert_uint_eq(s.load_errors, 1);
    ck_assert_uint_eq(s.puts, 2);
    ck_assert_uint_eq(s.invalidations_key, 1);
    ck_assert_uint_eq(s.invalidations_tag, 1);
    ck_assert_uint_eq(s.invalidations_flush, 1);
    ck_assert_uint_eq(s.evictions_expired, 1);
    ck_assert_uint_eq(s.evictions_capacity, 0);
    ck_assert_uint_eq(s.single_flight_joins, 0);
    ck_assert_uint_eq(s.stale_load_discards, 0);
    ck_assert_uint_eq(s.bypassed_loads, 0);
    ck_assert_uint_eq(hc_stats_total_requests(&s), 6);
    ck_assert(hc_stats_hit_ratio(&s) > 0.333 && hc_stats_hit_ratio(&s) < 0.334);
}
END_TEST

START_TEST(test_stats_helpers_handle_empty_and_null)
{
    hc_stats s = {0};
    ck_assert_uint_eq(hc_stats_total_requests(&s), 0);
    ck_assert(hc_stats_hit_ratio(&s) == 0.0);
    ck_assert_uint_eq(hc_stats_total_requests(NULL), 0);
    ck_assert(hc_stats_hit_ratio(NULL) == 0.0);
    hc_cache_stats(NULL, &s);
    ck_assert_uint_eq(s.hits, 0);
    hc_cache_stats(cache, NULL);
    hc_cache_diagnostics(cache, NULL);
}
END_TEST

START_TEST(test_enum_names)
{
    ck_assert_str_eq(hc_bus_state_str(HC_BUS_LISTENING), "listening");
    ck_assert_str_eq(hc_bus_state_str(HC_BUS_DISCONNECTED), "disconnected");
    ck_assert_str_eq(hc_bus_state_str((hc_bus_state)99), "unknown");
    ck_assert_str_eq(hc_origin_str(HC_ORIGIN_DATABASE), "database");
    ck_assert_str_eq(hc_origin_str((hc_origin)7), "unknown");
    ck_assert_str_eq(hc_event_kind_str(HC_EV_STALE_DISCARD), "stale_discard");
    ck_assert_str_eq(hc_event_kind_str(HC_EV_LOAD_ERROR), "load_error");
    ck_assert_str_eq(hc_event_kind_str((hc_event_kind)3), "unknown");
}
END_TEST

START_TEST(test_bus_counters_and_state_reach_diagnostics)
{
    hc_cache_bus_count(cache, HC_BUSCTR_PUBLISHED, 3);
    hc_cache_bus_count(cache, HC_BUSCTR_RECEIVED, 5);
    hc_cache_bus_count(cache, HC_BUSCTR_MALFORMED, 1);
    hc_cache_bus_count(cache, HC_BUSCTR_PUBLISH_FAILURES, 2);
    hc_cache_bus_count(cache, HC_BUSCTR_DISCONNECTS, 1);
    hc_cache_bus_count(cache, HC_BUSCTR_RECONNECTS, 1);
    hc_cache_bus_count(cache, (hc_bus_counter)99, 1);
    hc_cache_set_bus_state(cache, HC_BUS_LISTENING);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_eq(d.stats.bus_published, 3);
    ck_assert_uint_eq(d.stats.bus_received, 5);
    ck_assert_uint_eq(d.stats.bus_malformed, 1);
    ck_assert_uint_eq(d.stats.bus_publish_failures, 2);
    ck_assert_uint_eq(d.stats.bus_disconnects, 1);
    ck_assert_uint_eq(d.stats.bus_reconnects, 1);
    ck_assert_int_eq(d.bus_state, HC_BUS_LISTENING);
}
END_TEST

/* ------------------------------------------------------------------ bypass */

START_TEST(test_bypass_stores_nothing_and_flushes_on_each_change)
{
    put_str(cache, "k", "v", NULL);
    hc_cache_set_bypass(cache, true, HC_ORIGIN_BUS);
    ck_assert(hc_cache_bypass(cache));
    ck_assert_missing(cache, "k"); /* flushed */
    ck_assert_int_eq(put_str(cache, "p", "v", NULL), HC_OK);
    ck_assert_int_eq(hc_contains(cache, "p", NULL), HC_MISS);
    load_calls = 0;
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_load(cache, "l", NULL, counting_loader, "L", &v, NULL), HC_OK);
    ck_assert_str_eq(hc_value_data(v), "L");
    hc_value_release(v);
    hc_get_or_load(cache, "l", NULL, counting_loader, "L", &v, NULL);
    hc_value_release(v);
    ck_assert_int_eq(load_calls, 2);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert(d.bypass);
    ck_assert_uint_eq(d.entries, 0);
    ck_assert_uint_eq(d.stats.bypassed_loads, 2);
    ck_assert_uint_eq(d.stats.stale_load_discards, 0);

    hc_cache_set_bypass(cache, false, HC_ORIGIN_BUS);
    ck_assert(!hc_cache_bypass(cache));
    put_str(cache, "p", "v", NULL);
    ck_assert_cached(cache, "p", "v");
    ck_assert(!hc_cache_bypass(NULL));
}
END_TEST

/* ------------------------------------------------------------------ publisher */

typedef struct pubrec {
    int calls;
    hc_inval_kind kind[8];
    char arg[8][32];
} pubrec;

static void record_publish(void *ctx, hc_cache *c, hc_inval_kind kind, const char *arg)
{
    pubrec *r = ctx;
    (void)c;
    if (r->calls < 8) {
        r->kind[r->calls] = kind;
        snprintf(r->arg[r->calls], sizeof r->arg[0], "%s", arg != NULL ? arg : "(null)");
    }
    r->calls++;
}

START_TEST(test_publisher_sees_local_invalidations_only)
{
    pubrec r = {0};
    ck_assert_int_eq(hc_cache_attach_publisher(cache, record_publish, &r, NULL), HC_OK);
    hc_invalidate_key(cache, "k1", NULL);
    hc_remove(cache, "k2", NULL);
    hc_invalidate_tag(cache, "t", NULL);
    hc_flush(cache, NULL);
    ck_assert_int_eq(r.calls, 4);
    ck_assert_int_eq(r.kind[0], HC_INVAL_KEY);
    ck_assert_str_eq(r.arg[0], "k1");
    ck_assert_str_eq(r.arg[1], "k2");
    ck_assert_int_eq(r.kind[2], HC_INVAL_TAG);
    ck_assert_str_eq(r.arg[2], "t");
    ck_assert_int_eq(r.kind[3], HC_INVAL_FLUSH);
    ck_assert_str_eq(r.arg[3], "(null)");

    put_str(cache, "k", "v", HC_OPTS(.tags = HC_TAGS("t")));
    ck_assert_int_eq(hc_cache_apply(cache, HC_INVAL_TAG, "t", HC_ORIGIN_DATABASE, NULL), HC_OK);
    ck_assert_missing(cache, "k");
    hc_cache_apply(cache, HC_INVAL_KEY, "k", HC_ORIGIN_BUS, NULL);
    hc_cache_apply(cache, HC_INVAL_FLUSH, NULL, HC_ORIGIN_BUS, NULL);
    ck_assert_int_eq(r.calls, 4); /* applied ones are never re-published */
    hc_stats s = stats();
    ck_assert_uint_eq(s.bus_applied, 3);
    ck_assert_uint_eq(s.invalidations_tag, 2);

    hc_cache_detach_publisher(cache);
    hc_flush(cache, NULL);
    ck_assert_int_eq(r.calls, 4);
}
END_TEST

START_TEST(test_second_publisher_is_refused)
{
    pubrec r = {0};
    hc_error err;
    ck_assert_int_eq(hc_cache_attach_publisher(cache, record_publish, &r, NULL), HC_OK);
    ck_assert_int_eq(hc_cache_attach_publisher(cache, record_publish, &r, &err), HC_ERR_BUSY);
    ck_assert_int_eq(err.code, HC_ERR_BUSY);
    hc_cache_detach_publisher(cache);
    ck_assert_int_eq(hc_cache_attach_publisher(cache, record_publish, &r, NULL), HC_OK);
    hc_cache_detach_publisher(cache);
    hc_cache_detach_publisher(NULL);
}
END_TEST

/* ------------------------------------------------------------------ events */

static hc_event next_event(hc_subscriber *sub)
{
    hc_event ev;
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_OK);
    return ev;
}

START_TEST(test_mutations_emit_events_with_origin)
{
    hc_subscriber *sub = hc_subscribe(cache, HC_EV_ALL, 64, NULL);
    ck_assert_ptr_nonnull(sub);
    put_str(cache, "k", "v", NULL);
    hc_invalidate_key(cache, "k", NULL);
    hc_cache_apply(cache, HC_INVAL_TAG, "users", HC_ORIGIN_DATABASE, NULL);
    hc_cache_apply(cache, HC_INVAL_FLUSH, NULL, HC_ORIGIN_BUS, NULL);
    put_str(cache, "t", "v", HC_OPTS(.ttl_ms = 1));
    fclock.now_ms += 1;
    hc_cache_sweep(cache);
    hc_cache_set_bypass(cache, true, HC_ORIGIN_BUS);
    hc_cache_emit(cache, HC_EV_BUS_DISCONNECT, HC_ORIGIN_BUS, "connection lost");

    hc_event ev = next_event(sub);
    ck_assert_int_eq(ev.kind, HC_EV_PUT);
    ck_assert_str_eq(ev.subject, "k");
    ev = next_event(sub);
    ck_assert_int_eq(ev.kind, HC_EV_INVALIDATE_KEY);
    ck_assert_int_eq(ev.origin, HC_ORIGIN_LOCAL);
    ev = next_event(sub);
    ck_assert_int_eq(ev.kind, HC_EV_INVALIDATE_TAG);
    ck_assert_int_eq(ev.origin, HC_ORIGIN_DATABASE);
    ck_assert_str_eq(ev.subject, "users");
    ev = next_event(sub);
    ck_assert_int_eq(ev.kind, HC_EV_FLUSH);
    ck_assert_int_eq(ev.origin, HC_ORIGIN_BUS);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_PUT);
    ev = next_event(sub);
    ck_assert_int_eq(ev.kind, HC_EV_EVICT);
    ck_assert_int_eq(ev.reason, HC_EVICT_EXPIRED);
    ck_assert_str_eq(ev.subject, "t");
    ck_assert_uint_eq(ev.time_ms, fclock.now_ms);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_BYPASS_ON);
    ev = next_event(sub);
    ck_assert_int_eq(ev.kind, HC_EV_BUS_DISCONNECT);
    ck_assert_str_eq(ev.subject, "connection lost");
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_TIMEOUT);
    ck_assert_uint_gt(stats().events_published, 0);
    hc_subscriber_free(sub);
}
END_TEST

START_TEST(test_access_events_only_when_enabled)
{
    hc_subscriber *sub = hc_subscribe(cache, HC_EV_ACCESS, 64, NULL);
    hc_event ev;
    put_str(cache, "k", "v", NULL);
    ck_assert_cached(cache, "k", "v");
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_TIMEOUT);
    hc_enable_access_events(cache, true);
    ck_assert_cached(cache, "k", "v");
    ck_assert_missing(cache, "nope");
    hc_value *v = NULL;
    hc_get_or_load(cache, "l", NULL, load_ctx_string, "x", &v, NULL);
    hc_value_release(v);
    hc_get_or_load(cache, "e", NULL, failing_loader, NULL, &v, NULL);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_HIT);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_MISS);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_MISS);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_LOAD);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_MISS);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_LOAD);
    ck_assert_int_eq(next_event(sub).kind, HC_EV_LOAD_ERROR);
    hc_enable_access_events(cache, false);
    ck_assert_cached(cache, "k", "v");
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_TIMEOUT);
    hc_subscriber_free(sub);
}
END_TEST

/* Tags are only stored by a load, so a hit checks them cheaply (NULL array,
 * NULL or empty tag) and leaves lengths and the distinct-tag count to a miss. */
START_TEST(test_hit_checks_tags_cheaply_and_a_miss_in_full)
{
    const char *many[HC_MAX_TAGS + 1];
    char names[HC_MAX_TAGS + 1][8];
    for (int i = 0; i <= HC_MAX_TAGS; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        many[i] = names[i];
    }
    const hc_opts *too_many = HC_OPTS(.tags = {many, HC_MAX_TAGS + 1});
    const char *null_tag = NULL;
    hc_value *v = NULL;
    hc_error err;
    put_str(cache, "k", "v", NULL);
    ck_assert_int_eq(hc_get_or_load(cache, "k", too_many, load_ctx_string, "x", &v, &err),
                     HC_OK);
    ck_assert_str_eq(hc_value_data(v), "v");
    hc_value_release(v);
    ck_assert_int_eq(hc_get_or_load(cache, "k", HC_OPTS(.tags = {&null_tag, 1}),
                                    load_ctx_string, "x", &v, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_get_or_load(cache, "k", HC_OPTS(.tags = {NULL, 1}), load_ctx_string,
                                    "x", &v, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_get_or_load(cache, "absent", too_many, load_ctx_string, "x", &v, &err),
                     HC_ERR_TOO_LARGE);
    ck_assert_ptr_null(v);
    hc_stats s = stats();
    ck_assert_uint_eq(s.hits, 1);
    ck_assert_uint_eq(s.misses, 0);
    ck_assert_uint_eq(s.loads, 0);
}
END_TEST

/* ------------------------------------------------------------------ views */

/* Codec for ints stored as decimal text; "bad" bytes fail to decode. */
static hc_status int_encode(void *ctx, const void *obj, hc_value **out, hc_error *err)
{
    (void)ctx;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d", *(const int *)obj);
    *out = hc_value_new(buf, (size_t)n);
    return *out != NULL ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "oom");
}

static hc_status int_decode(void *ctx, const void *data, size_t len, void **obj, hc_error *err)
{
    (void)ctx;
    char *end;
    long x = strtol(data, &end, 10);
    if (len == 0 || *end != '\0')
        return hc_error_set(err, HC_ERR_CODEC, "not an int");
    int *p = malloc(sizeof *p);
    *p = (int)x;
    *obj = p;
    return HC_OK;
}

static void int_free(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

static const hc_codec int_codec = {int_encode, int_decode, int_free, NULL};

static hc_status int_loader(void *ctx, const char *key, void **obj, hc_error *err)
{
    (void)err;
    load_calls++;
    int *p = malloc(sizeof *p);
    *p = (int)strlen(key) + *(int *)ctx;
    *obj = p;
    return HC_OK;
}

START_TEST(test_view_prefixes_keys_and_shares_invalidation)
{
    hc_view *users = hc_cache_view(cache, "us:ers", &int_codec, NULL);
    ck_assert_ptr_nonnull(users);
    char full[64];
    ck_assert_int_eq(hc_view_key(users, "42", full, sizeof full, NULL), HC_OK);
    ck_assert_str_eq(full, "us\\:ers:42");
    int x = 7;
    ck_assert_int_eq(hc_view_put(users, "42", &x, HC_OPTS(.tags = HC_TAGS("users")), NULL),
                     HC_OK);
    ck_assert_cached(cache, "us\\:ers:42", "7");
    int *got = NULL;
    ck_assert_int_eq(hc_view_get(users, "42", (void **)&got, NULL), HC_OK);
    ck_assert_int_eq(*got, 7);
    free(got);
    ck_assert_int_eq(hc_view_contains(users, "42", NULL), HC_OK);
    ck_assert_int_eq(hc_contains(cache, "42", NULL), HC_MISS);
    hc_invalidate_tag(cache, "users", NULL); /* invalidation through the cache */
    ck_assert_int_eq(hc_view_get(users, "42", (void **)&got, NULL), HC_MISS);
    ck_assert_ptr_null(got);
    hc_view_put(users, "42", &x, NULL, NULL);
    ck_assert_int_eq(hc_view_invalidate_key(users, "42", NULL), HC_OK);
    ck_assert_missing(cache, "us\\:ers:42");
    hc_view_put(users, "43", &x, NULL, NULL);
    ck_assert_int_eq(hc_view_remove(users, "43", NULL), HC_OK);
    ck_assert_int_eq(hc_view_contains(users, "43", NULL), HC_MISS);
    hc_stats s = stats();
    ck_assert_uint_eq(s.hits, 2);
    ck_assert_uint_eq(s.puts, 3);
    hc_view_free(users);
    hc_view_free(NULL);
}
END_TEST

START_TEST(test_view_get_or_load_encodes_and_decodes)
{
    hc_view *v = hc_cache_view(cache, "n", &int_codec, NULL);
    int base = 100, *got = NULL;
    ck_assert_int_eq(hc_view_get_or_load(v, "abc", NULL, int_loader, &base, (void **)&got, NULL),
                     HC_OK);
    ck_assert_int_eq(*got, 103);
    free(got);
    ck_assert_int_eq(hc_view_get_or_load(v, "abc", NULL, int_loader, &base, (void **)&got, NULL),
                     HC_OK);
    ck_assert_int_eq(*got, 103);
    free(got);
    ck_assert_int_eq(load_calls, 1);
    ck_assert_cached(cache, "n:abc", "103");
    hc_view_free(v);
}
END_TEST

START_TEST(test_view_decode_failure_is_a_codec_error_and_drops_the_entry)
{
    hc_view *v = hc_cache_view(cache, "n", &int_codec, NULL);
    put_str(cache, "n:k", "garbage", NULL);
    int *got = NULL;
    hc_error err;
    ck_assert_int_eq(hc_view_get(v, "k", (void **)&got, &err), HC_ERR_CODEC);
    ck_assert_int_eq(err.code, HC_ERR_CODEC);
    ck_assert_ptr_null(got);
    ck_assert_missing(cache, "n:k");
    hc_view_free(v);
}
END_TEST

/* A codec failing for another reason than corrupt bytes. */
static hc_status decode_status; /* what flaky_decode returns */

static hc_status flaky_decode(void *ctx, const void *data, size_t len, void **obj,
                              hc_error *err)
{
    if (decode_status == HC_OK)
        return int_decode(ctx, data, len, obj, err);
    return decode_status < HC_OK ? hc_error_set(err, decode_status, "decoder failed")
                                 : decode_status;
}

static const hc_codec flaky_codec = {int_encode, flaky_decode, int_free, NULL};

START_TEST(test_view_decode_failure_other_than_codec_keeps_the_entry)
{
    hc_view *v = hc_cache_view(cache, "n", &flaky_codec, NULL);
    int x = 5, *got = NULL;
    hc_error err;
    ck_assert_int_eq(hc_view_put(v, "k", &x, NULL, NULL), HC_OK);
    decode_status = HC_ERR_NOMEM;
    ck_assert_int_eq(hc_view_get(v, "k", (void **)&got, &err), HC_ERR_NOMEM);
    ck_assert_int_eq(err.code, HC_ERR_NOMEM);
    ck_assert_str_eq(err.message, "decoder failed");
    ck_assert_ptr_null(got);
    ck_assert_cached(cache, "n:k", "5");
    decode_status = HC_MISS; /* not a decode result: reported, entry kept */
    ck_assert_int_eq(hc_view_get(v, "k", (void **)&got, &err), HC_ERR_CODEC);
    ck_assert_ptr_null(got);
    ck_assert_cached(cache, "n:k", "5");
    decode_status = HC_OK;
    ck_assert_int_eq(hc_view_get(v, "k", (void **)&got, &err), HC_OK);
    ck_assert_int_eq(*got, 5);
    free(got);
    hc_view_free(v);
}
END_TEST

static hc_status failing_encode(void *ctx, const void *obj, hc_value **out, hc_error *err)
{
    (void)ctx, (void)obj, (void)out;
    return hc_error_set(err, HC_ERR_NOMEM, "encoder failed");
}

START_TEST(test_view_put_failing_to_encode_leaves_the_key_absent)
{
    hc_codec codec = int_codec;
    codec.encode = failing_encode;
    hc_view *v = hc_cache_view(cache, "n", &codec, NULL);
    int x = 5;
    put_str(cache, "n:k", "4", NULL);
    ck_assert_int_eq(hc_view_put(v, "k", &x, NULL, NULL), HC_ERR_NOMEM);
    ck_assert_missing(cache, "n:k");
    hc_view_free(v);
}
END_TEST

/* ------------------------------------------------------------------ bad input */

static char long_key[HC_MAX_KEY_LEN + 2];

START_TEST(test_null_and_oversized_arguments_are_rejected)
{
    hc_value *v = NULL;
    hc_value *val = hc_value_new("x", 1);
    hc_error err;
    memset(long_key, 'k', HC_MAX_KEY_LEN + 1);
    const char *bad_keys[] = {NULL, "", long_key};
    const hc_status want[] = {HC_ERR_INVALID, HC_ERR_INVALID, HC_ERR_TOO_LARGE};
    for (int i = 0; i < 3; i++) {
        const char *k = bad_keys[i];
        hc_status w = want[i];
        ck_assert_int_eq(hc_get(cache, k, &v, &err), w);
        ck_assert_int_eq(err.code, w);
        ck_assert_int_eq(hc_put(cache, k, "x", 1, NULL, &err), w);
        ck_assert_int_eq(hc_put_value(cache, k, val, NULL, &err), w);
        ck_assert_int_eq(hc_contains(cache, k, &err), w);
        ck_assert_int_eq(hc_invalidate_key(cache, k, &err), w);
        ck_assert_int_eq(hc_remove(cache, k, &err), w);
        ck_assert_int_eq(hc_invalidate_tag(cache, k, &err), w);
        ck_assert_int_eq(hc_get_or_load(cache, k, NULL, load_ctx_string, "x", &v, &err), w);
        ck_assert_int_eq(hc_get_or_insert_with(cache, k, NULL, infallible, "x", &v, &err), w);
        ck_assert_int_eq(hc_cache_apply(cache, HC_INVAL_KEY, k, HC_ORIGIN_BUS, &err), w);
        ck_assert_int_eq(hc_cache_apply(cache, HC_INVAL_TAG, k, HC_ORIGIN_BUS, &err), w);
        ck_assert_int_eq(put_str(cache, "ok", "x", HC_OPTS(.tags = {&k, 1})), w);
        ck_assert_int_eq(hc_get_or_load(cache, "ok", HC_OPTS(.tags = {&k, 1}), load_ctx_string,
                                        "x", &v, &err), w);
    }
    /* NULL cache */
    ck_assert_int_eq(hc_get(NULL, "k", &v, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_put(NULL, "k", "x", 1, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_put_value(NULL, "k", val, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_contains(NULL, "k", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_invalidate_key(NULL, "k", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_invalidate_tag(NULL, "k", &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_flush(NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_get_or_load(NULL, "k", NULL, load_ctx_string, "x", &v, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_cache_apply(NULL, HC_INVAL_FLUSH, NULL, HC_ORIGIN_BUS, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_cache_attach_publisher(NULL, record_publish, NULL, &err),
                     HC_ERR_INVALID);
    ck_assert_ptr_null(hc_subscribe(NULL, HC_EV_ALL, 8, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_listen(NULL, HC_EV_ALL, NULL, NULL, &err));
    ck_assert_ptr_null(hc_listen(cache, HC_EV_ALL, NULL, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_cache_view(NULL, "n", &int_codec, &err));
    /* NULL out-parameters, values, loaders, publishers and kinds */
    ck_assert_int_eq(hc_get(cache, "k", NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_put(cache, "k", NULL, 1, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_put(cache, "k", "x", HC_MAX_VALUE_LEN + 1, NULL, &err),
                     HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_put_value(cache, "k", NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, NULL, NULL, &v, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_get_or_load(cache, "k", NULL, load_ctx_string, "x", NULL, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_cache_attach_publisher(cache, NULL, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_cache_apply(cache, (hc_inval_kind)'x', "k", HC_ORIGIN_BUS, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(put_str(cache, "k", "x", HC_OPTS(.tags = {NULL, 1})), HC_ERR_INVALID);
    /* too many distinct tags */
    const char *many[HC_MAX_TAGS + 1];
    char names[HC_MAX_TAGS + 1][8];
    for (int i = 0; i <= HC_MAX_TAGS; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        many[i] = names[i];
    }
    ck_assert_int_eq(put_str(cache, "k", "x", HC_OPTS(.tags = {many, HC_MAX_TAGS + 1})),
                     HC_ERR_TOO_LARGE);
    ck_assert_int_eq(put_str(cache, "k", "x", HC_OPTS(.tags = {many, HC_MAX_TAGS})), HC_OK);
    /* views */
    hc_codec no_decode = int_codec;
    no_decode.decode = NULL;
    ck_assert_ptr_null(hc_cache_view(cache, NULL, &int_codec, &err));
    ck_assert_ptr_null(hc_cache_view(cache, "", &int_codec, &err));
    ck_assert_ptr_null(hc_cache_view(cache, "n", NULL, &err));
    ck_assert_ptr_null(hc_cache_view(cache, "n", &no_decode, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_cache_view(cache, long_key, &int_codec, &err));
    ck_assert_int_eq(err.code, HC_ERR_TOO_LARGE);
    hc_view *view = hc_cache_view(cache, "n", &int_codec, NULL);
    char buf[8];
    void *obj = NULL;
    int x = 1;
    long_key[HC_MAX_KEY_LEN - 1] = '\0'; /* fits a bare key, not with the "n:" prefix */
    ck_assert_int_eq(hc_view_key(view, long_key, NULL, 8, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_key(NULL, "k", buf, sizeof buf, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_key(view, "toolongforbuf", buf, sizeof buf, &err),
                     HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_view_get(view, long_key, &obj, &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_view_get(view, NULL, &obj, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_get(view, "k", NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_put(view, long_key, &x, NULL, &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_view_put(NULL, "k", &x, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_get_or_load(view, "k", NULL, NULL, NULL, &obj, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_get_or_load(view, "", NULL, int_loader, &x, &obj, &err),
                     HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_contains(view, long_key, &err), HC_ERR_TOO_LARGE);
    ck_assert_int_eq(hc_view_invalidate_key(view, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_view_remove(NULL, "k", &err), HC_ERR_INVALID);
    hc_view_free(view);
    /* the NULL-safe setters do nothing */
    hc_cache_set_bypass(NULL, true, HC_ORIGIN_LOCAL);
    hc_cache_bus_count(NULL, HC_BUSCTR_PUBLISHED, 1);
    hc_cache_set_bus_state(NULL, HC_BUS_LOCAL);
    hc_cache_emit(NULL, HC_EV_BUS_RECONNECT, HC_ORIGIN_BUS, "x");
    hc_enable_access_events(NULL, true);
    hc_value_release(val);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_value_is_refcounted_and_nul_terminated);
    tcase_add_test(tc, test_hit_returns_a_reference_not_a_copy);
    tcase_add_test(tc, test_get_of_absent_key_misses);
    tcase_add_test(tc, test_put_replaces_the_entry);
    tcase_add_test(tc, test_remove_and_invalidate_key_drop_one_key);
    tcase_add_test(tc, test_invalidate_tag_removes_exactly_the_tagged_entries);
    tcase_add_test(tc, test_replaced_entry_leaves_its_old_tags);
    tcase_add_test(tc, test_flush_removes_everything);
    tcase_add_test(tc, test_cache_defaults);
    tcase_add_test(tc, test_entry_expires_after_its_ttl);
    tcase_add_test(tc, test_default_ttl_applies_and_forever_overrides_it);
    tcase_add_test(tc, test_contains_drops_expired_entries);
    tcase_add_test(tc, test_sweep_drops_only_expired_entries);
    tcase_add_test(tc, test_puts_sweep_expired_entries_incrementally);
    tcase_add_test(tc, test_get_or_load_loads_once_then_hits);
    tcase_add_test(tc, test_loaded_entry_carries_opts_tags_and_ttl);
    tcase_add_test(tc, test_loader_error_is_returned_and_not_cached);
    tcase_add_test(tc, test_loader_without_value_is_a_loader_error);
    tcase_add_test(tc, test_loader_returning_an_outcome_status_is_a_loader_error);
    tcase_add_test(tc, test_get_or_insert_with_uses_an_infallible_loader);
    tcase_add_test(tc, test_loader_may_call_the_cache_for_other_keys);
    tcase_add_test(tc, test_loader_asking_for_its_own_key_fails_instead_of_deadlocking);
    tcase_add_test(tc, test_stats_are_exact_for_a_scripted_sequence);
    tcase_add_test(tc, test_stats_helpers_handle_empty_and_null);
    tcase_add_test(tc, test_enum_names);
    tcase_add_test(tc, test_bus_counters_and_state_reach_diagnostics);
    tcase_add_test(tc, test_bypass_stores_nothing_and_flushes_on_each_change);
    tcase_add_test(tc, test_publisher_sees_local_invalidations_only);
    tcase_add_test(tc, test_second_publisher_is_refused);
    tcase_add_test(tc, test_mutations_emit_events_with_origin);
    tcase_add_test(tc, test_access_events_only_when_enabled);
    tcase_add_test(tc, test_hit_checks_tags_cheaply_and_a_miss_in_full);
    tcase_add_test(tc, test_view_prefixes_keys_and_shares_invalidation);
    tcase_add_test(tc, test_view_get_or_load_encodes_and_decodes);
    tcase_add_test(tc, test_view_decode_failure_is_a_codec_error_and_drops_the_entry);
    tcase_add_test(tc, test_view_decode_failure_other_than_codec_keeps_the_entry);
    tcase_add_test(tc, test_view_put_failing_to_encode_leaves_the_key_absent);
    tcase_add_test(tc, test_null_and_oversized_arguments_are_rejected);
    suite_add_tcase(s, tc);
    tc = tcase_create("small");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, small_setup, small_teardown);
    tcase_add_test(tc, test_value_larger_than_the_limit_is_too_large);
    tcase_add_test(tc, test_failed_put_leaves_the_key_absent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(cache_suite());
}
