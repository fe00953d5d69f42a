/* check_store.c - the memory bound, eviction accounting and scan resistance. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"
#include "hc_test.h"
#include "hydracache/cache.h"

static hc_cache *new_cache(size_t max_bytes, size_t max_entries, unsigned shards)
{
    hc_config cfg = {.max_bytes = max_bytes, .max_entries = max_entries, .shards = shards};
    hc_cache *c = hc_cache_new(&cfg, NULL);
    ck_assert_ptr_nonnull(c);
    return c;
}

static hc_diagnostics diag(const hc_cache *c)
{
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    return d;
}

START_TEST(test_store_never_exceeds_max_bytes)
{
    const size_t limit = 64 * 1024;
    hc_cache *c = new_cache(limit, 0, 8);
    static char buf[4096];
    memset(buf, 'v', sizeof buf);
    unsigned seed = 12345;
    size_t stored = 0;
    for (int i = 0; i < 5000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key:%u", (unsigned)(rand_r(&seed) % 2000));
        size_t len = (size_t)(rand_r(&seed) % sizeof buf);
        ck_assert_int_eq(hc_put(c, key, buf, len,
                                HC_OPTS(.tags = HC_TAGS("t", key)), NULL), HC_OK);
        stored += len;
        hc_diagnostics d = diag(c);
        ck_assert_uint_le(d.bytes_used, limit);
    }
    hc_diagnostics d = diag(c);
    ck_assert_uint_gt(stored, limit * 10);
    ck_assert_uint_gt(d.stats.evictions_capacity, 0);
    ck_assert_uint_eq(d.stats.evictions_expired, 0);
    /* whatever survived is intact and the table agrees with the counters */
    ck_assert_uint_gt(d.entries, 0);
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    d = diag(c);
    ck_assert_uint_eq(d.entries, 0);
    ck_assert_uint_eq(d.bytes_used, 0);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_store_never_exceeds_max_entries)
{
    hc_cache *c = new_cache(1 << 20, 10, 4);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        put_str(c, key, "v", NULL);
        ck_assert_uint_le(diag(c).entries, 10);
    }
    ck_assert_uint_eq(diag(c).entries, 10);
    ck_assert_uint_eq(diag(c).stats.evictions_capacity, 90);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_bytes_count_key_value_tags_and_overhead)
{
    hc_cache *c = new_cache(1 << 20, 0, 1);
    put_str(c, "k", "v", NULL);
    size_t plain = diag(c).bytes_used;
    ck_assert_uint_gt(plain, 2); /* overhead is counted, not just the payload */
    put_str(c, "k", "vvvvvvvvvv", NULL);
    ck_assert_uint_eq(diag(c).bytes_used, plain + 9);
    put_str(c, "kkkk", "v", NULL);
    ck_assert_uint_eq(diag(c).bytes_used, plain + 9 + plain + 3);
    hc_flush(c, NULL);
    put_str(c, "k", "v", HC_OPTS(.tags = HC_TAGS("tag1")));
    ck_assert_uint_gt(diag(c).bytes_used, plain + 4);
    hc_remove(c, "k", NULL);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_capacity_evictions_emit_events)
{
    hc_cache *c = new_cache(1 << 20, 3, 1);
    hc_subscriber *sub = hc_subscribe(c, HC_EV_EVICT, 16, NULL);
    put_str(c, "a", "1", NULL);
    put_str(c, "b", "2", NULL);
    put_str(c, "c", "3", NULL);
    put_str(c, "d", "4", NULL);
    hc_event ev;
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_OK);
    ck_assert_int_eq(ev.kind, HC_EV_EVICT);
    ck_assert_int_eq(ev.reason, HC_EVICT_CAPACITY);
    ck_assert_str_eq(ev.subject, "a"); /* FIFO: the oldest cold entry goes first */
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_TIMEOUT);
    ck_assert_missing(c, "a");
    ck_assert_cached(c, "d", "4");
    hc_subscriber_free(sub);
    hc_cache_free(c);
}
END_TEST

/*
 * A hot working set that fits the cache is read a few times, then a scan
 * writes ten cache-fulls of cold keys once each.  Under LRU every hot key
 * would be the least recently used long before the scan ends; S3-FIFO keeps
 * the scan in its small queue and the hot keys in main.
 */
START_TEST(test_one_pass_scan_does_not_evict_the_hot_working_set)
{
    enum { CAPACITY = 200, HOT = 50, SCAN = 10 * CAPACITY };
    hc_cache *c = new_cache(1 << 20, CAPACITY, 1);
    char key[32];
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof key, "hot:%d", i);
        put_str(c, key, "h", NULL);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < HOT; i++) {
            snprintf(key, sizeof key, "hot:%d", i);
            ck_assert_cached(c, key, "h");
        }
    for (int i = 0; i < SCAN; i++) {
        snprintf(key, sizeof key, "cold:%d", i);
        put_str(c, key, "c", NULL);
        if (i % 100 == 0) /* the working set stays in use during the scan */
            for (int h = 0; h < HOT; h++) {
                snprintf(key, sizeof key, "hot:%d", h);
                ck_assert_int_eq(hc_contains(c, key, NULL), HC_OK);
            }
    }
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof key, "hot:%d", i);
        ck_assert_msg(hc_contains(c, key, NULL) == HC_OK, "%s was evicted by the scan", key);
    }
    ck_assert_uint_ge(diag(c).stats.evictions_capacity, SCAN - CAPACITY + HOT);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_entries_evicted_as_cold_return_to_main_when_reused)
{
    /* a key evicted from the small queue and soon re-inserted is remembered
     * (ghost) and protected from the next scan even without a hit */
    enum { CAPACITY = 20 };
    hc_cache *c = new_cache(1 << 20, CAPACITY, 1);
    char key[32];
    put_str(c, "again", "1", NULL);
    for (int i = 0; i < CAPACITY; i++) {
        snprintf(key, sizeof key, "scan1:%d", i);
        put_str(c, key, "c", NULL);
    }
    ck_assert_int_eq(hc_contains(c, "again", NULL), HC_MISS);
    put_str(c, "again", "2", NULL);
    for (int i = 0; i < 3 * CAPACITY; i++) {
        snprintf(key, sizeof key, "scan2:%d", i);
        put_str(c, key, "c", NULL);
    }
    ck_assert_cached(c, "again", "2");
    hc_cache_free(c);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_store_never_exceeds_max_bytes);
    tcase_add_test(tc, test_store_never_exceeds_max_entries);
    tcase_add_test(tc, test_bytes_count_key_value_tags_and_overhead);
    tcase_add_test(tc, test_capacity_evictions_emit_events);
    tcase_add_test(tc, test_one_pass_scan_does_not_evict_the_hot_working_set);
    tcase_add_test(tc, test_entries_evicted_as_cold_return_to_main_when_reused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(store_suite());
}
