/*
 * check_singleflight.c - concurrent loads: one loader run per missing key,
 * errors shared with every joiner, and loads overtaken by invalidations.
 * Orderings are driven by condition variables and barriers, never sleeps.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"
#include "hc_test.h"
#include "hydracache/cache.h"

#define NTHREADS 16

static hc_cache *cache;

static hc_stats stats(void)
{
    hc_stats s;
    hc_cache_stats(cache, &s);
    return s;
}

/* ------------------------------------------------------------- a gated loader */

/* A loader that announces each call and, while gated, waits to be released. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;       /* loader calls started */
    bool released[4]; /* call i may return */
    bool fail;       /* return fail_status instead of a value */
    hc_status fail_status; /* HC_ERR_PG unless set */
    const char *values[4]; /* value of call i (0-based) */
} gate;

static void gate_init(gate *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->values[0] = "first";
    g->values[1] = "second";
    g->values[2] = "third";
    g->values[3] = "fourth";
}

static void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* Checked fixture of every test: a 4-shard cache and the gate gt. */
static gate gt;

static void setup(void)
{
    hc_config cfg = {.shards = 4};
    cache = hc_cache_new(&cfg, NULL);
    ck_assert_ptr_nonnull(cache);
    gate_init(&gt);
}

static void teardown(void)
{
    hc_cache_free(cache);
    gate_destroy(&gt);
}

static hc_status gated_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    (void)key;
    gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    int me = g->calls++;
    pthread_cond_broadcast(&g->cv);
    while (!g->released[me])
        pthread_cond_wait(&g->cv, &g->mu);
    bool fail = g->fail;
    hc_status fail_status = g->fail_status != HC_OK ? g->fail_status : HC_ERR_PG;
    pthread_mutex_unlock(&g->mu);
    if (fail)
        return hc_error_set(err, fail_status, "load %d failed", me);
    *out = hc_value_new(g->values[me], strlen(g->values[me]));
    return HC_OK;
}

static void gate_wait_calls(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->calls < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_release(gate *g, int call)
{
    pthread_mutex_lock(&g->mu);
    g->released[call] = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* A caller of hc_get_or_load on its own thread. */
typedef struct caller {
    pthread_t thread;
    const char *key;
    const hc_opts *opts;
    gate *g;
    pthread_barrier_t *start;
    hc_status st;
    hc_error err;
    char got[32];
} caller;

static void *caller_main(void *arg)
{
    caller *c = arg;
    hc_value *v = NULL;
    if (c->start != NULL)
        pthread_barrier_wait(c->start);
    c->st = hc_get_or_load(cache, c->key, c->opts, gated_loader, c->g, &v, &c->err);
    snprintf(c->got, sizeof c->got, "%s", v != NULL ? (const char *)hc_value_data(v) : "");
    hc_value_release(v);
    return NULL;
}

static void caller_start(caller *c, const char *key, const hc_opts *opts, gate *g,
                         pthread_barrier_t *start)
{
    c->key = key;
    c->opts = opts;
    c->g = g;
    c->start = start;
    ck_assert_int_eq(pthread_create(&c->thread, NULL, caller_main, c), 0);
}

static bool all_joined(void *ctx)
{
    (void)ctx;
    return stats().single_flight_joins == NTHREADS - 1;
}

static void join_all(caller *callers, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(callers[i].thread, NULL);
}

/*
 * NTHREADS callers of "herd" overlap (a barrier starts them together, the
 * loader holds until all but the leader joined); then meanwhile() runs (may
 * be NULL), the loader is released and every caller finishes.
 */
static void run_herd(caller *callers, gate *g, void (*meanwhile)(void))
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        caller_start(&callers[i], "herd", NULL, g, &bar);
    gate_wait_calls(g, 1);
    ck_assert(hc_test_wait_for(all_joined, NULL, 30000));
    if (meanwhile != NULL)
        meanwhile();
    gate_release(g, 0);
    join_all(callers, NTHREADS);
}

START_TEST(test_concurrent_misses_run_the_loader_once)
{
    caller callers[NTHREADS];
    run_herd(callers, &gt, NULL);
    ck_assert_int_eq(gt.calls, 1);
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(callers[i].st, HC_OK);
        ck_assert_str_eq(callers[i].got, "first");
    }
    hc_stats s = stats();
    ck_assert_uint_eq(s.loads, 1);
    ck_assert_uint_eq(s.misses, NTHREADS);
    ck_assert_uint_eq(s.single_flight_joins, NTHREADS - 1);
    ck_assert_cached(cache, "herd", "first");
}
END_TEST

START_TEST(test_loader_error_reaches_every_joined_caller_and_is_not_cached)
{
    gt.fail = true;
    caller callers[NTHREADS];
    run_herd(callers, &gt, NULL);
    ck_assert_int_eq(gt.calls, 1);
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(callers[i].st, HC_ERR_PG);
        ck_assert_int_eq(callers[i].err.code, HC_ERR_PG);
        ck_assert_str_eq(callers[i].err.message, "load 0 failed");
        ck_assert_str_eq(callers[i].got, "");
    }
    ck_assert_missing(cache, "herd");
    ck_assert_uint_eq(stats().load_errors, 1);
    /* the next caller loads again */
    gt.fail = false;
    gate_release(&gt, 1);
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_load(cache, "herd", NULL, gated_loader, &gt, &v, NULL), HC_OK);
    ck_assert_str_eq(hc_value_data(v), "second");
    hc_value_release(v);
}
END_TEST

START_TEST(test_loader_outcome_status_reaches_every_joiner_as_a_loader_error)
{
    gt.fail = true;
    gt.fail_status = HC_TIMEOUT;
    caller callers[NTHREADS];
    run_herd(callers, &gt, NULL);
    ck_assert_int_eq(gt.calls, 1);
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(callers[i].st, HC_ERR_LOADER);
        ck_assert_int_eq(callers[i].err.code, HC_ERR_LOADER);
        ck_assert_str_eq(callers[i].err.message, "load 0 failed");
        ck_assert_str_eq(callers[i].got, "");
    }
    ck_assert_missing(cache, "herd");
}
END_TEST

/*
 * A load for "k" (tagged "t") is held inside its loader while inval() runs.
 * A caller arriving after the invalidation must start its own load (call 2,
 * "second") instead of joining the stale one; the stale result ("first") is
 * still handed to its own caller, but is not stored.
 */
static void check_overtaken_load(void (*inval)(void))
{
    caller first, second;
    const hc_opts *opts = HC_OPTS(.tags = HC_TAGS("t", "u"));
    caller_start(&first, "k", opts, &gt, NULL);
    gate_wait_calls(&gt, 1);
    inval();
    caller_start(&second, "k", opts, &gt, NULL);
    gate_wait_calls(&gt, 2); /* a second loader run: the stale flight was not joined */
    gate_release(&gt, 1);    /* the fresh load finishes and is stored first */
    join_all(&second, 1);
    ck_assert_cached(cache, "k", "second");
    gate_release(&gt, 0);    /* then the stale one returns */
    ck_assert_int_eq(second.st, HC_OK);
    ck_assert_str_eq(second.got, "second");
    join_all(&first, 1);
    ck_assert_int_eq(first.st, HC_OK);
    ck_assert_str_eq(first.got, "first");
    ck_assert_cached(cache, "k", "second"); /* the stale "first" never overwrote it */
    hc_stats s = stats();
    ck_assert_uint_eq(s.loads, 2);
    ck_assert_uint_eq(s.single_flight_joins, 0);
    ck_assert_uint_eq(s.stale_load_discards, 1);
}

static void inval_tag(void)
{
    ck_assert_int_eq(hc_invalidate_tag(cache, "u", NULL), HC_OK);
}

static void inval_key(void)
{
    ck_assert_int_eq(hc_invalidate_key(cache, "k", NULL), HC_OK);
}

static void inval_flush(void)
{
    ck_assert_int_eq(hc_flush(cache, NULL), HC_OK);
}

static void inval_remote_tag(void)
{
    ck_assert_int_eq(hc_cache_apply(cache, HC_INVAL_TAG, "t", HC_ORIGIN_DATABASE, NULL), HC_OK);
}

START_TEST(test_load_overtaken_by_tag_invalidation_is_not_stored)
{
    check_overtaken_load(inval_tag);
}
END_TEST

START_TEST(test_load_overtaken_by_key_invalidation_is_not_stored)
{
    check_overtaken_load(inval_key);
}
END_TEST

START_TEST(test_load_overtaken_by_flush_is_not_stored)
{
    check_overtaken_load(inval_flush);
}
END_TEST

START_TEST(test_load_overtaken_by_applied_invalidation_is_not_stored)
{
    check_overtaken_load(inval_remote_tag);
}
END_TEST

typedef struct second_arrival {
    gate *g;
    hc_stats before;
} second_arrival;

/* The second caller either started its own loader run or joined the first. */
static bool second_started_or_joined(void *ctx)
{
    second_arrival *a = ctx;
    pthread_mutex_lock(&a->g->mu);
    int calls = a->g->calls;
    pthread_mutex_unlock(&a->g->mu);
    return calls >= 2 || stats().single_flight_joins > a->before.single_flight_joins;
}

/*
 * A load of "k" is held in its loader while put() stores a newer value that
 * does not stay in the cache.  A caller arriving after the put misses; it
 * must run its own load ("second") rather than join the older one ("first").
 */
static void check_put_detaches_older_load(void (*put)(void))
{
    caller first, second;
    caller_start(&first, "k", NULL, &gt, NULL);
    gate_wait_calls(&gt, 1);
    put();
    ck_assert_missing(cache, "k");
    second_arrival a = {&gt, stats()};
    caller_start(&second, "k", NULL, &gt, NULL);
    ck_assert(hc_test_wait_for(second_started_or_joined, &a, 30000));
    gate_release(&gt, 0);
    gate_release(&gt, 1);
    join_all(&first, 1);
    join_all(&second, 1);
    ck_assert_str_eq(first.got, "first");
    ck_assert_int_eq(second.st, HC_OK);
    ck_assert_str_eq(second.got, "second");
    ck_assert_int_eq(gt.calls, 2);
    ck_assert_uint_eq(stats().single_flight_joins, 0);
}

static void put_in_bypass(void)
{
    ck_assert_int_eq(put_str(cache, "k", "put", NULL), HC_OK); /* dropped */
}

static void put_then_evict(void)
{
    ck_assert_int_eq(put_str(cache, "k", "put", NULL), HC_OK);
    ck_assert_cached(cache, "k", "put");
    ck_assert_int_eq(put_str(cache, "other", "x", NULL), HC_OK); /* evicts "k" */
}

START_TEST(test_put_dropped_in_bypass_detaches_an_older_load)
{
    hc_cache_set_bypass(cache, true, HC_ORIGIN_BUS); /* before the load starts */
    check_put_detaches_older_load(put_in_bypass);
}
END_TEST

START_TEST(test_put_evicted_at_once_detaches_an_older_load)
{
    hc_cache_free(cache);
    hc_config cfg = {.shards = 4, .max_entries = 1};
    cache = hc_cache_new(&cfg, NULL);
    ck_assert_ptr_nonnull(cache);
    check_put_detaches_older_load(put_then_evict);
}
END_TEST

static void invalidate_herd(void)
{
    hc_invalidate_key(cache, "herd", NULL);
}

START_TEST(test_joiners_before_an_invalidation_share_the_stale_result)
{
    caller callers[NTHREADS];
    run_herd(callers, &gt, invalidate_herd);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_str_eq(callers[i].got, "first");
    ck_assert_missing(cache, "herd");
    ck_assert_uint_eq(stats().stale_load_discards, 1);
}
END_TEST

START_TEST(test_bypass_during_a_load_keeps_it_out_of_the_cache)
{
    caller first;
    caller_start(&first, "k", NULL, &gt, NULL);
    gate_wait_calls(&gt, 1);
    hc_cache_set_bypass(cache, true, HC_ORIGIN_BUS);
    hc_cache_set_bypass(cache, false, HC_ORIGIN_BUS);
    gate_release(&gt, 0);
    join_all(&first, 1);
    ck_assert_str_eq(first.got, "first");
    ck_assert_missing(cache, "k");
    ck_assert_uint_eq(stats().stale_load_discards, 1);
}
END_TEST

START_TEST(test_hits_do_not_wait_for_a_load_in_flight)
{
    put_str(cache, "cached", "yes", NULL);
    caller slow;
    caller_start(&slow, "slow", NULL, &gt, NULL);
    gate_wait_calls(&gt, 1);
    /* the loader for "slow" is blocked: a hit must not queue behind it */
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get_or_load(cache, "cached", NULL, gated_loader, &gt, &v, NULL), HC_OK);
    ck_assert_str_eq(hc_value_data(v), "yes");
    hc_value_release(v);
    ck_assert_int_eq(hc_get_or_load(cache, "other", NULL, load_ctx_string, "o", &v, NULL),
                     HC_OK);
    hc_value_release(v);
    gate_release(&gt, 0);
    join_all(&slow, 1);
    ck_assert_int_eq(gt.calls, 1);
    ck_assert_uint_eq(stats().single_flight_joins, 0);
}
END_TEST

START_TEST(test_bypass_loads_still_share_one_run)
{
    hc_cache_set_bypass(cache, true, HC_ORIGIN_BUS);
    caller callers[NTHREADS];
    run_herd(callers, &gt, NULL);
    ck_assert_int_eq(gt.calls, 1);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_str_eq(callers[i].got, "first");
    hc_stats s = stats();
    ck_assert_uint_eq(s.bypassed_loads, 1);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    ck_assert_uint_eq(d.entries, 0);
}
END_TEST

/* ------------------------------------------------------------- detach vs publish */

typedef struct slow_pub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool inside, leave, done;
} slow_pub;

static void blocking_publish(void *ctx, hc_cache *c, hc_inval_kind kind, const char *arg)
{
    (void)c, (void)kind, (void)arg;
    slow_pub *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->inside = true;
    pthread_cond_broadcast(&p->cv);
    while (!p->leave)
        pthread_cond_wait(&p->cv, &p->mu);
    p->done = true;
    pthread_mutex_unlock(&p->mu);
}

static void *flush_thread(void *arg)
{
    (void)arg;
    hc_flush(cache, NULL);
    return NULL;
}

static void *detach_thread(void *arg)
{
    slow_pub *p = arg;
    hc_cache_detach_publisher(cache);
    pthread_mutex_lock(&p->mu);
    bool publish_finished = p->done; /* detach returned only after the publish ended */
    pthread_mutex_unlock(&p->mu);
    return publish_finished ? p : NULL;
}

START_TEST(test_detach_waits_for_a_publish_in_progress)
{
    slow_pub p = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    hc_cache_attach_publisher(cache, blocking_publish, &p, NULL);
    pthread_t f, d;
    pthread_create(&f, NULL, flush_thread, NULL);
    pthread_mutex_lock(&p.mu);
    while (!p.inside)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    pthread_create(&d, NULL, detach_thread, &p);
    pthread_mutex_lock(&p.mu);
    p.leave = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    void *res;
    pthread_join(d, &res);
    pthread_join(f, NULL);
    ck_assert_ptr_eq(res, &p);
}
END_TEST

static Suite *singleflight_suite(void)
{
    Suite *s = suite_create("singleflight");
    TCase *tc = tcase_create("singleflight");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_concurrent_misses_run_the_loader_once);
    tcase_add_test(tc, test_loader_error_reaches_every_joined_caller_and_is_not_cached);
    tcase_add_test(tc, test_loader_outcome_status_reaches_every_joiner_as_a_loader_error);
    tcase_add_test(tc, test_load_overtaken_by_tag_invalidation_is_not_stored);
    tcase_add_test(tc, test_load_overtaken_by_key_invalidation_is_not_stored);
    tcase_add_test(tc, test_load_overtaken_by_flush_is_not_stored);
    tcase_add_test(tc, test_load_overtaken_by_applied_invalidation_is_not_stored);
    tcase_add_test(tc, test_joiners_before_an_invalidation_share_the_stale_result);
    tcase_add_test(tc, test_put_dropped_in_bypass_detaches_an_older_load);
    tcase_add_test(tc, test_put_evicted_at_once_detaches_an_older_load);
    tcase_add_test(tc, test_bypass_during_a_load_keeps_it_out_of_the_cache);
    tcase_add_test(tc, test_hits_do_not_wait_for_a_load_in_flight);
    tcase_add_test(tc, test_bypass_loads_still_share_one_run);
    tcase_add_test(tc, test_detach_waits_for_a_publish_in_progress);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(singleflight_suite());
}
