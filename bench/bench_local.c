/*
 * bench_local.c - scenario "local_get": hc_get throughput on 1 and 2 threads
 * (Zipf 0.99 over 100k keys, every lookup a hit) against a baseline written
 * here: one hash table behind one pthread mutex, serving the same refcounted
 * values, so the only difference is the table and its locking.  Beside them
 * the floor (common.h): an open-addressed table with the cache's hash whose
 * lookup memcpy's the value out, no locks, counts or expiry; hc_get should
 * cost at most 2x the floor.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "hydracache/cache.h"

#define NKEYS 100000u
#define TRACE_LEN (1u << 20)
#define VALUE_LEN 100
#define MAX_THREADS 2

/* ------------------------------------------------------- mutex baseline */

typedef struct mnode {
    struct mnode *next;
    uint64_t hash;
    char *key;
    hc_value *value;
} mnode;

typedef struct mtable {
    pthread_mutex_t lock;
    mnode **buckets;
    size_t mask;
} mtable;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void mtable_init(mtable *t, size_t n)
{
    size_t nb = 1;
    while (nb < 2 * n) nb <<= 1;
    pthread_mutex_init(&t->lock, NULL);
    t->buckets = calloc(nb, sizeof *t->buckets);
    if (t->buckets == NULL) bench_die("out of memory");
    t->mask = nb - 1;
}

static void mtable_put(mtable *t, const char *key, hc_value *v)
{
    mnode *n = malloc(sizeof *n);
    if (n == NULL) bench_die("out of memory");
    n->hash = fnv1a(key);
    n->key = strdup(key);
    n->value = hc_value_retain(v);
    pthread_mutex_lock(&t->lock);
    mnode **b = &t->buckets[n->hash & t->mask];
    n->next = *b;
    *b = n;
    pthread_mutex_unlock(&t->lock);
}

/* New reference to key's value, or NULL. */
static hc_value *mtable_get(mtable *t, const char *key)
{
    uint64_t h = fnv1a(key);
    hc_value *v = NULL;
    pthread_mutex_lock(&t->lock);
    for (mnode *n = t->buckets[h & t->mask]; n != NULL; n = n->next) {
        if (n->hash == h && strcmp(n->key, key) == 0) {
            v = hc_value_retain(n->value);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return v;
}

static void mtable_free(mtable *t)
{
    for (size_t i = 0; i <= t->mask; i++) {
        for (mnode *n = t->buckets[i], *next; n != NULL; n = next) {
            next = n->next;
            free(n->key);
            hc_value_release(n->value);
            free(n);
        }
    }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
}

/* ------------------------------------------------------- the runs */

typedef enum impl { IMPL_HC, IMPL_MUTEX, IMPL_FLOOR, NIMPL } impl;

typedef struct run_ctx {
    impl which;
    hc_cache *cache;
    mtable *table;
    bench_floor *floor;
    char **keys;
    const uint32_t *trace;
    uint64_t duration_ns;
    pthread_barrier_t *start;
} run_ctx;

typedef struct worker {
    pthread_t tid;
    const run_ctx *ctx;
    size_t offset;
    uint64_t ops, misses, elapsed_ns;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    const run_ctx *c = w->ctx;
    size_t pos = w->offset;
    uint64_t ops = 0, misses = 0;
    char copy[VALUE_LEN];
    unsigned sink = 0;
    pthread_barrier_wait(c->start);
    uint64_t t0 = bench_now_ns(), deadline = t0 + c->duration_ns, now = t0;
    for (;;) {
        for (int i = 0; i < 1024; i++) {
            const char *key = c->keys[c->trace[pos]];
            pos = (pos + 1) & (TRACE_LEN - 1);
            hc_value *v = NULL;
            if (c->which == IMPL_FLOOR) {
                if (bench_floor_get(c->floor, key, copy, sizeof copy) == SIZE_MAX) misses++;
                sink += (unsigned char)copy[0];
                continue;
            }
            if (c->which == IMPL_HC) {
                if (hc_get(c->cache, key, &v, NULL) != HC_OK) v = NULL;
            } else {
                v = mtable_get(c->table, key);
            }
            if (v == NULL) misses++;
            hc_value_release(v);
        }
        ops += 1024;
        now = bench_now_ns();
        if (now >= deadline) break;
    }
    w->ops = ops;
    w->misses = misses + (sink == 1); /* keeps the floor's copies observable */
    w->elapsed_ns = now - t0;
    return NULL;
}

/* ops/s summed over threads; *misses gets the lookups that missed. */
static double run_once(run_ctx *ctx, int nthreads, uint64_t *misses)
{
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, (unsigned)nthreads);
    ctx->start = &b;
    worker w[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker){.ctx = ctx, .offset = (size_t)i * (TRACE_LEN / MAX_THREADS)};
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) bench_die("pthread_create");
    }
    double rate = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].tid, NULL);
        rate += (double)w[i].ops * 1e9 / (double)w[i].elapsed_ns;
        *misses += w[i].misses;
    }
    pthread_barrier_destroy(&b);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (!bench_parse_args(argc, argv, &o, "local hc_get throughput vs a single-mutex hash table"))
        return 2;
    const int reps = o.quick ? 1 : 5;
    const uint64_t duration_ns = o.quick ? 100000000ull : 1000000000ull;

    char **keys = malloc(NKEYS * sizeof *keys);
    uint32_t *trace = bench_zipf_trace(NKEYS, 0.99, TRACE_LEN, 42);
    if (keys == NULL || trace == NULL) bench_die("out of memory");
    for (uint32_t i = 0; i < NKEYS; i++) {
        char k[32];
        snprintf(k, sizeof k, "user:%u", i + 1);
        keys[i] = strdup(k);
    }

    hc_error err;
    hc_config cfg = {.name = "bench-local", .max_bytes = (size_t)256 << 20};
    hc_cache *cache = hc_cache_new(&cfg, &err);
    if (cache == NULL) bench_die("hc_cache_new: %s", err.message);
    mtable table;
    mtable_init(&table, NKEYS);
    bench_floor *floor = bench_floor_new(NKEYS);
    char payload[VALUE_LEN];
    memset(payload, 'x', sizeof payload);
    for (uint32_t i = 0; i < NKEYS; i++) {
        hc_value *v = hc_value_new(payload, sizeof payload);
        if (v == NULL) bench_die("out of memory");
        if (hc_put_value(cache, keys[i], v, NULL, &err) != HC_OK) bench_die("hc_put: %s", err.message);
        mtable_put(&table, keys[i], v);
        bench_floor_put(floor, keys[i], payload, sizeof payload);
        hc_value_release(v);
    }
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);

    /* Interleave the configurations so drift (frequency, neighbours) hits all alike. */
    double rates[NIMPL][MAX_THREADS][5];
    uint64_t misses[NIMPL][MAX_THREADS] = {{0}};
    run_ctx ctx = {.cache = cache, .table = &table, .floor = floor, .keys = keys, .trace = trace,
                   .duration_ns = duration_ns / 4};
    for (int t = 1; t <= MAX_THREADS; t++) { /* warm-up, not recorded */
        uint64_t m = 0;
        for (int which = 0; which < NIMPL; which++) {
            ctx.which = (impl)which;
            run_once(&ctx, t, &m);
        }
    }
    ctx.duration_ns = duration_ns;
    for (int r = 0; r < reps; r++) {
        for (int which = 0; which < NIMPL; which++) {
            for (int t = 1; t <= MAX_THREADS; t++) {
                ctx.which = (impl)which;
                rates[which][t - 1][r] = run_once(&ctx, t, &misses[which][t - 1]);
            }
        }
    }

    double med[NIMPL][MAX_THREADS];
    for (int which = 0; which < NIMPL; which++)
        for (int t = 0; t < MAX_THREADS; t++) med[which][t] = median(rates[which][t], reps);

    bench_json j;
    if (!bench_json_start(&j, &o, "local_get",
                          "hc_get throughput (hit, value reference taken and released) vs a "
                          "single-mutex chained hash table holding the same refcounted values"))
        return 1;
    bench_json_obj(&j, "parameters");
    bench_json_int(&j, "keys", NKEYS);
    bench_json_num(&j, "zipf_theta", 0.99);
    bench_json_int(&j, "trace_len", TRACE_LEN);
    bench_json_int(&j, "value_bytes", VALUE_LEN);
    bench_json_int(&j, "repetitions", reps);
    bench_json_num(&j, "seconds_per_run", (double)duration_ns / 1e9);
    bench_json_int(&j, "cache_shards", 16);
    bench_json_int(&j, "cache_entries", (long long)d.entries);
    bench_json_str(&j, "statistic", "median ops/s over the repetitions, summed over threads");
    bench_json_end(&j);
    bench_json_obj(&j, "results");
    const char *names[NIMPL] = {"hc_get", "mutex_table", "floor_open_addressing_memcpy"};
    for (int which = 0; which < NIMPL; which++) {
        bench_json_obj(&j, names[which]);
        for (int t = 0; t < MAX_THREADS; t++) {
            char k[32];
            snprintf(k, sizeof k, "threads_%d", t + 1);
            bench_json_obj(&j, k);
            bench_json_num(&j, "ops_per_s", med[which][t]);
            bench_json_num(&j, "ns_per_op_per_thread", 1e9 * (t + 1) / med[which][t]);
            bench_json_int(&j, "misses", (long long)misses[which][t]);
            bench_json_arr(&j, "runs_ops_per_s");
            for (int r = 0; r < reps; r++) bench_json_num(&j, NULL, rates[which][t][r]);
            bench_json_end(&j);
            bench_json_end(&j);
        }
        bench_json_end(&j);
    }
    bench_json_end(&j);
    double r1 = med[0][0] / med[1][0], r2 = med[0][1] / med[1][1];
    bench_json_obj(&j, "ratio");
    bench_json_num(&j, "hc_vs_mutex_1_thread", r1);
    bench_json_num(&j, "hc_vs_mutex_2_threads", r2);
    bench_json_num(&j, "hc_2_threads_vs_1_thread", med[0][1] / med[0][0]);
    bench_json_num(&j, "mutex_2_threads_vs_1_thread", med[1][1] / med[1][0]);
    /* per-op cost over the floor's: the floor's throughput over hc_get's */
    double f1 = med[IMPL_FLOOR][0] / med[0][0], f2 = med[IMPL_FLOOR][1] / med[0][1];
    bench_json_num(&j, "hc_cost_over_floor_1_thread", f1);
    bench_json_num(&j, "hc_cost_over_floor_2_threads", f2);
    bench_json_num(&j, "target_hc_vs_mutex_2_threads", 3.0);
    bench_json_num(&j, "target_hc_cost_over_floor", 2.0);
    bench_json_bool(&j, "meets_target", r2 >= 3.0 && f1 <= 2.0);
    bench_json_end(&j);
    if (!bench_json_close(&j)) bench_die("cannot write local_get.json");

    FILE *md = bench_md_open(&o, "local_get");
    char ratio[64];
    snprintf(ratio, sizeof ratio, "%.2fx", r2);
    bench_md_row(md, "local hc_get, 2 threads vs mutex table", ratio, ">= 3x", r2 >= 3.0,
                 "%.2f M ops/s vs %.2f M ops/s", med[0][1] / 1e6, med[1][1] / 1e6);
    snprintf(ratio, sizeof ratio, "%.2fx", r1);
    bench_md_row(md, "local hc_get, 1 thread vs mutex table", ratio, "-", true,
                 "%.2f M ops/s vs %.2f M ops/s", med[0][0] / 1e6, med[1][0] / 1e6);
    snprintf(ratio, sizeof ratio, "%.2fx", f1);
    bench_md_row(md, "local hc_get cost vs hash+memcpy floor, 1 thread", ratio, "<= 2x", f1 <= 2.0,
                 "%.1f ns vs %.1f ns per get (2 threads: %.2fx)", 1e9 / med[0][0],
                 1e9 / med[IMPL_FLOOR][0], f2);
    fclose(md);

    printf("local_get: hc %.3g / %.3g ops/s (1/2 threads), mutex %.3g / %.3g; ratio %.2fx / %.2fx; "
           "floor %.3g / %.3g: hc costs %.2fx / %.2fx the floor\n",
           med[0][0], med[0][1], med[1][0], med[1][1], r1, r2, med[IMPL_FLOOR][0],
           med[IMPL_FLOOR][1], f1, f2);
    bench_floor_free(floor);

    mtable_free(&table);
    hc_cache_free(cache);
    for (uint32_t i = 0; i < NKEYS; i++) free(keys[i]);
    free(keys);
    free(trace);
    return 0;
}
