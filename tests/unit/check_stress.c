/*
 * check_stress.c - readers, writers and invalidators on one small cache for
 * a fixed number of iterations (meant to run under TSan too).  Writers bump
 * a key's "database" version and then invalidate it; once all threads are
 * done, no cached value may be older than its version: a load that raced an
 * invalidation was never stored.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"
#include "hydracache/cache.h"
#include "stats.h"

#define NKEYS 64
#define READERS 4
#define WRITERS 2
#define NOISE 1
#define ITERS 20000

static hc_cache *cache;
static atomic_uint db_version[NKEYS];
static pthread_barrier_t start;
static atomic_ulong noise_misses;

static void key_name(char *buf, size_t cap, int k)
{
    snprintf(buf, cap, "row:%d", k);
}

/* Even keys are entities whose own tag is their key (stored as a flag, found
 * through the table); odd keys carry a separate tag. */
static void tag_name(char *buf, size_t cap, int k)
{
    if (k % 2 == 0)
        key_name(buf, cap, k);
    else
        snprintf(buf, cap, "t:%d", k);
}

static hc_status db_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    int k = (int)(intptr_t)ctx;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s=%u", key, atomic_load(&db_version[k]));
    sched_yield(); /* widen the window in which a writer can overtake this load */
    *out = hc_value_new(buf, (size_t)n);
    return *out != NULL ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "oom");
}

static void *reader(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    pthread_barrier_wait(&start);
    for (int i = 0; i < ITERS; i++) {
        int k = (int)(rand_r(&seed) % NKEYS);
        char key[32], tag[32], group[32];
        key_name(key, sizeof key, k);
        tag_name(tag, sizeof tag, k);
        snprintf(group, sizeof group, "g:%d", k % 4);
        hc_value *v = NULL;
        hc_status st = hc_get_or_load(cache, key, HC_OPTS(.tags = HC_TAGS(tag, group)),
                                      db_loader, (void *)(intptr_t)k, &v, NULL);
        ck_assert_int_eq(st, HC_OK);
        /* never another key's value */
        ck_assert(strncmp(hc_value_data(v), key, strlen(key)) == 0);
        ck_assert_int_eq(((const char *)hc_value_data(v))[strlen(key)], '=');
        hc_value_release(v);
    }
    return NULL;
}

static void *writer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    pthread_barrier_wait(&start);
    for (int i = 0; i < ITERS; i++) {
        int k = (int)(rand_r(&seed) % NKEYS);
        char name[32];
        atomic_fetch_add(&db_version[k], 1);
        switch (rand_r(&seed) % 5) {
        case 0:
            key_name(name, sizeof name, k);
            hc_invalidate_key(cache, name, NULL);
            break;
        case 1:
            tag_name(name, sizeof name, k);
            hc_invalidate_tag(cache, name, NULL);
            break;
        case 2:
            snprintf(name, sizeof name, "g:%d", k % 4);
            hc_cache_apply(cache, HC_INVAL_TAG, name, HC_ORIGIN_DATABASE, NULL);
            break;
        case 3:
            key_name(name, sizeof name, k);
            hc_cache_apply(cache, HC_INVAL_KEY, name, HC_ORIGIN_BUS, NULL);
            break;
        default:
            if (rand_r(&seed) % 50 == 0)
                hc_flush(cache, NULL);
            else {
                tag_name(name, sizeof name, k);
                hc_invalidate_tag(cache, name, NULL);
            }
        }
    }
    return NULL;
}

/* Unrelated puts with TTLs, sweeps and stats reads: pressure on the bound. */
static void *noise(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    static char blob[2048];
    pthread_barrier_wait(&start);
    for (int i = 0; i < ITERS; i++) {
        char key[32];
        snprintf(key, sizeof key, "noise:%u", rand_r(&seed) % 500);
        hc_put(cache, key, blob, rand_r(&seed) % sizeof blob, HC_OPTS(.ttl_ms = 1 + i % 3),
               NULL);
        hc_value *v = NULL;
        if (hc_get(cache, key, &v, NULL) == HC_OK)
            hc_value_release(v);
        else
            atomic_fetch_add(&noise_misses, 1);
        if (i % 500 == 0) {
            hc_cache_sweep(cache);
            hc_diagnostics d;
            hc_cache_diagnostics(cache, &d);
            ck_assert_uint_le(d.bytes_used, d.bytes_limit);
        }
    }
    return NULL;
}

START_TEST(test_concurrent_use_never_leaves_a_stale_value_cached)
{
    hc_config cfg = {.max_bytes = 256 * 1024, .shards = 8};
    cache = hc_cache_new(&cfg, NULL);
    ck_assert_ptr_nonnull(cache);
    hc_subscriber *sub = hc_subscribe(cache, HC_EV_ALL, 64, NULL); /* lags, never blocks */
    hc_enable_access_events(cache, true);
    pthread_t th[READERS + WRITERS + NOISE];
    pthread_barrier_init(&start, NULL, READERS + WRITERS + NOISE);
    int n = 0;
    for (int i = 0; i < READERS; i++)
        pthread_create(&th[n++], NULL, reader, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&th[n++], NULL, writer, (void *)(uintptr_t)(i + 100));
    for (int i = 0; i < NOISE; i++)
        pthread_create(&th[n++], NULL, noise, (void *)(uintptr_t)(i + 1000));
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);

    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_le(d.bytes_used, d.bytes_limit);
    ck_assert_uint_eq(hc_stats_total_requests(&d.stats), (uint64_t)(READERS + NOISE) * ITERS);
    /* every reader miss either led a load or joined one */
    ck_assert_uint_eq(d.stats.loads + d.stats.single_flight_joins,
                      d.stats.misses - atomic_load(&noise_misses));
    for (int k = 0; k < NKEYS; k++) {
        char key[32], want[64];
        key_name(key, sizeof key, k);
        snprintf(want, sizeof want, "%s=%u", key, atomic_load(&db_version[k]));
        hc_value *v = NULL;
        if (hc_get(cache, key, &v, NULL) == HC_OK) {
            ck_assert_str_eq(hc_value_data(v), want);
            hc_value_release(v);
        }
    }
    ck_assert_uint_gt(d.stats.subscriber_lag, 0);
    pthread_barrier_destroy(&start);
    hc_subscriber_free(sub);
}
END_TEST

/* ------------------------------------------------------------- counter stripes */

#define HOT_THREADS 80 /* more than the counter stripes: some threads share one */
#define HOT_GETS 500

static void *hot_reader(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    for (int i = 0; i < HOT_GETS; i++) {
        hc_value *v = NULL;
        ck_assert_int_eq(hc_get(cache, "hot", &v, NULL), HC_OK);
        hc_value_release(v);
        ck_assert_int_eq(hc_get(cache, "cold", &v, NULL), HC_MISS);
    }
    return NULL;
}

START_TEST(test_counts_stay_exact_when_threads_hit_one_hot_key)
{
    put_str(cache, "hot", "v", NULL);
    pthread_t th[HOT_THREADS];
    pthread_barrier_init(&start, NULL, HOT_THREADS);
    for (int i = 0; i < HOT_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hot_reader, NULL), 0);
    for (int i = 0; i < HOT_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    hc_stats s;
    hc_cache_stats(cache, &s);
    ck_assert_uint_eq(s.hits, (uint64_t)HOT_THREADS * HOT_GETS);
    ck_assert_uint_eq(s.misses, (uint64_t)HOT_THREADS * HOT_GETS);
}
END_TEST

/* Hits read the table without the shard's rwlock: a get that starts after
 * a replacing put returned must see that put (or a later one), and the
 * replaced values must not be freed under a reader (ASan/TSan runs). */
#define REPLACES 20000
#define FRESH_READERS 2
static atomic_uint published;

static void *fresh_writer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    for (unsigned i = 1; i <= REPLACES; i++) {
        char buf[16];
        int n = snprintf(buf, sizeof buf, "%u", i);
        ck_assert_int_eq(hc_put(cache, "fresh", buf, (size_t)n, NULL, NULL), HC_OK);
        atomic_store(&published, i);
    }
    return NULL;
}

static void *fresh_reader(void *arg)
{
    unsigned *stale = arg;
    pthread_barrier_wait(&start);
    unsigned seen;
    do {
        seen = atomic_load(&published);
        hc_value *v = NULL;
        ck_assert_int_eq(hc_get(cache, "fresh", &v, NULL), HC_OK);
        if ((unsigned)strtoul(hc_value_data(v), NULL, 10) < seen)
            (*stale)++;
        hc_value_release(v);
    } while (seen < REPLACES);
    return NULL;
}

START_TEST(test_get_after_a_replace_returned_sees_the_new_value)
{
    put_str(cache, "fresh", "0", NULL);
    atomic_store(&published, 0);
    pthread_t w, r[FRESH_READERS];
    unsigned stale[FRESH_READERS] = {0};
    pthread_barrier_init(&start, NULL, FRESH_READERS + 1);
    for (int i = 0; i < FRESH_READERS; i++)
        ck_assert_int_eq(pthread_create(&r[i], NULL, fresh_reader, &stale[i]), 0);
    ck_assert_int_eq(pthread_create(&w, NULL, fresh_writer, NULL), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < FRESH_READERS; i++) {
        pthread_join(r[i], NULL);
        ck_assert_uint_eq(stale[i], 0);
    }
    pthread_barrier_destroy(&start);
}
END_TEST

static void *report_stripe(void *arg)
{
    *(unsigned *)arg = hc__counters_stripe();
    return NULL;
}

/* Counters of a hot key must not be one cache line that every thread writes. */
START_TEST(test_threads_count_in_their_own_stripes)
{
    unsigned mine = hc__counters_stripe(), theirs;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, report_stripe, &theirs), 0);
    pthread_join(t, NULL);
    ck_assert_uint_ne(mine, theirs);
    ck_assert_uint_eq(hc__counters_stripe(), mine); /* fixed for the thread's life */
}
END_TEST

/* Checked fixture: every test's cache (if it made one) is freed after it; the
 * "default cache" tests get an hc_cache_new(NULL) one made for them. */
static void default_cache_setup(void)
{
    cache = hc_cache_new(NULL, NULL);
    ck_assert_ptr_nonnull(cache);
}

static void cache_teardown(void)
{
    hc_cache_free(cache);
    cache = NULL;
}

static Suite *stress_suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, cache_teardown);
    tcase_add_test(tc, test_concurrent_use_never_leaves_a_stale_value_cached);
    tcase_add_test(tc, test_threads_count_in_their_own_stripes);
    suite_add_tcase(s, tc);
    tc = tcase_create("default cache");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, default_cache_setup, cache_teardown);
    tcase_add_test(tc, test_counts_stay_exact_when_threads_hit_one_hot_key);
    tcase_add_test(tc, test_get_after_a_replace_returned_sees_the_new_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(stress_suite());
}
