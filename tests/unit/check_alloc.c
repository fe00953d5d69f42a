/*
 * check_alloc.c - allocation failure: every allocation of each operation is
 * made to fail in turn; the operation must report HC_ERR_NOMEM (or succeed
 * without caching), leak nothing (ASan) and leave the cache working.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cache_int.h"
#include "core_test.h"
#include "hydracache/cache.h"

#define MAX_STEPS 200

/* Run op with allocation n failing (and all after it), for n = 0, 1, ...
 * until op needs fewer than n + 1 allocations. */
static void fail_each_allocation(hc_cache *c, void (*op)(hc_cache *c, long n))
{
    long n;
    for (n = 0; n < MAX_STEPS; n++) {
        hc__alloc_fail_after(n);
        op(c, n);
        long used = hc__alloc_count();
        hc__alloc_fail_after(-1);
        {
            char why_[256] = "";
            ck_assert_msg(hc__cache_check(c, why_, sizeof why_), "store broken after failure %ld: %s", n, why_);
        }
        if (used <= n)
            break;
    }
    ck_assert_int_lt(n, MAX_STEPS);
    ck_assert_int_gt(n, 0); /* the operation did allocate */
}

/* The cache still stores, finds, tags and invalidates; counters agree. */
static void check_still_works(hc_cache *c)
{
    ck_assert_int_eq(put_str(c, "probe", "ok", HC_OPTS(.tags = HC_TAGS("probe-tag"))), HC_OK);
    ck_assert_cached(c, "probe", "ok");
    ck_assert_int_eq(hc_invalidate_tag(c, "probe-tag", NULL), HC_OK);
    ck_assert_missing(c, "probe");
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_load(c, "probe2", NULL, load_ctx_string, "ok", &v, NULL), HC_OK);
    hc_value_release(v);
    ck_assert_cached(c, "probe2", "ok");
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    ck_assert_uint_eq(d.entries, 0);
    ck_assert_uint_eq(d.bytes_used, 0);
}

static void op_put(hc_cache *c, long n)
{
    char key[32], tag[32];
    snprintf(key, sizeof key, "put:%ld", n);
    snprintf(tag, sizeof tag, "fresh-tag:%ld", n); /* a new tag node every time */
    hc_error err;
    hc_status st = hc_put(c, key, "value", 5, HC_OPTS(.tags = HC_TAGS("shared", tag)), &err);
    if (st != HC_OK) {
        ck_assert_int_eq(st, HC_ERR_NOMEM);
        ck_assert_int_eq(err.code, HC_ERR_NOMEM);
        ck_assert_int_eq(hc_contains(c, key, NULL), HC_MISS);
    } else {
        ck_assert_int_eq(hc_contains(c, key, NULL), HC_OK);
    }
}

static hc_status oom_aware_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    (void)ctx;
    *out = hc_value_new(key, strlen(key));
    return *out != NULL ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "loader out of memory");
}

static void op_get_or_load(hc_cache *c, long n)
{
    char key[32], tag[32];
    snprintf(key, sizeof key, "load:%ld", n);
    snprintf(tag, sizeof tag, "load-tag:%ld", n);
    hc_value *v = NULL;
    hc_error err;
    hc_status st = hc_get_or_load(c, key, HC_OPTS(.tags = HC_TAGS(tag)), oom_aware_loader, NULL,
                                  &v, &err);
    if (st == HC_OK) {
        /* the value reaches the caller even when storing it ran out of memory */
        ck_assert_str_eq(hc_value_data(v), key);
        hc_value_release(v);
    } else {
        ck_assert_int_eq(st, HC_ERR_NOMEM);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(hc_contains(c, key, NULL), HC_MISS);
    }
}

static void op_many_puts(hc_cache *c, long n)
{
    /* enough entries and tags to grow the shard tables and tag index */
    for (int i = 0; i < 64; i++) {
        char key[32];
        snprintf(key, sizeof key, "many:%ld:%d", n, i);
        hc_status st = put_str(c, key, "v", HC_OPTS(.tags = HC_TAGS(key)));
        ck_assert(st == HC_OK || st == HC_ERR_NOMEM);
    }
}

START_TEST(test_put_survives_each_allocation_failure)
{
    hc_cache *c = hc_cache_new(NULL, NULL);
    fail_each_allocation(c, op_put);
    check_still_works(c);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_get_or_load_survives_each_allocation_failure)
{
    hc_cache *c = hc_cache_new(NULL, NULL);
    fail_each_allocation(c, op_get_or_load);
    check_still_works(c);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_table_growth_survives_allocation_failure)
{
    hc_config cfg = {.shards = 1};
    hc_cache *c = hc_cache_new(&cfg, NULL);
    fail_each_allocation(c, op_many_puts);
    check_still_works(c);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_cache_new_survives_each_allocation_failure)
{
    long n;
    for (n = 0; n < MAX_STEPS; n++) {
        hc_error err = {0};
        hc__alloc_fail_after(n);
        hc_cache *c = hc_cache_new(NULL, &err);
        long used = hc__alloc_count();
        hc__alloc_fail_after(-1);
        if (c == NULL) {
            ck_assert_int_eq(err.code, HC_ERR_NOMEM);
            continue;
        }
        check_still_works(c);
        hc_cache_free(c);
        if (used <= n)
            break;
    }
    ck_assert_int_lt(n, MAX_STEPS);
}
END_TEST

static hc_status enc(void *ctx, const void *obj, hc_value **out, hc_error *err)
{
    (void)ctx, (void)err;
    *out = hc_value_new(obj, strlen(obj));
    return *out != NULL ? HC_OK : HC_ERR_NOMEM;
}

static hc_status dec(void *ctx, const void *data, size_t len, void **obj, hc_error *err)
{
    (void)ctx, (void)len, (void)err;
    *obj = strdup(data);
    return HC_OK;
}

static void dec_free(void *ctx, void *obj)
{
    (void)ctx;
    free(obj);
}

START_TEST(test_view_and_tagset_creation_report_nomem)
{
    hc_cache *c = hc_cache_new(NULL, NULL);
    hc_codec codec = {enc, dec, dec_free, NULL};
    hc_error err;
    hc__alloc_fail_after(0);
    ck_assert_ptr_null(hc_cache_view(c, "ns", &codec, &err));
    ck_assert_int_eq(err.code, HC_ERR_NOMEM);
    ck_assert_ptr_null(hc_tagset_new());
    ck_assert_ptr_null(hc_value_new("x", 1));
    ck_assert_int_eq(hc_view_put(NULL, "k", "x", NULL, &err), HC_ERR_INVALID);
    hc__alloc_fail_after(-1);
    hc_view *v = hc_cache_view(c, "ns", &codec, &err);
    ck_assert_ptr_nonnull(v);
    hc__alloc_fail_after(0);
    ck_assert_int_eq(hc_view_put(v, "k", "x", NULL, &err), HC_ERR_NOMEM);
    hc__alloc_fail_after(-1);
    ck_assert_int_eq(hc_view_put(v, "k", "x", NULL, &err), HC_OK);
    hc_view_free(v);
    hc_cache_free(c);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_put_survives_each_allocation_failure);
    tcase_add_test(tc, test_get_or_load_survives_each_allocation_failure);
    tcase_add_test(tc, test_table_growth_survives_allocation_failure);
    tcase_add_test(tc, test_cache_new_survives_each_allocation_failure);
    tcase_add_test(tc, test_view_and_tagset_creation_report_nomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(alloc_suite());
}
