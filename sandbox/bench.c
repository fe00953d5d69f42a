/*
 * bench.c - the manual benchmark of hcpg-sandbox: N get-or-load requests from
 * C threads over K keys (uniform, zipf or hot-set), latency percentiles, and a
 * compare of two runs.  Runs on the cache "bench" (flushed first), so demo
 * flows and the event log are not disturbed.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandbox.h"

struct sb_bench_run {
    uint64_t id;
    json_t *json;
};

typedef struct bench_thread {
    sb *s;
    long requests;
    long keys;
    int dist; /* 0 uniform, 1 zipf, 2 hot */
    const double *zipf_cdf;
    uint64_t seed;
    double *lat_us;
    long errors;
} bench_thread;

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static double unit(uint64_t *x)
{
    return (double)(xorshift(x) >> 11) / 9007199254740992.0;
}

static long pick_key(bench_thread *t)
{
    double u = unit(&t->seed);
    switch (t->dist) {
    case 1: { /* zipf(s = 1): binary search in the CDF */
        long lo = 0, hi = t->keys - 1;
        while (lo < hi) {
            long mid = (lo + hi) / 2;
            if (t->zipf_cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
    case 2: { /* hot: 90% of requests on the first 10% of keys */
        long hot = t->keys / 10 > 0 ? t->keys / 10 : 1;
        double v = unit(&t->seed);
        return u < 0.9 ? (long)(v * (double)hot) % hot : (long)(v * (double)t->keys) % t->keys;
    }
    default:
        return (long)(u * (double)t->keys) % t->keys;
    }
}

static hc_status bench_loader(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    (void)ctx;
    *out = hc_value_new(key, strlen(key));
    return *out ? HC_OK : hc_error_set(err, HC_ERR_NOMEM, "out of memory");
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *bench_main(void *p)
{
    bench_thread *t = p;
    char key[48];
    for (long i = 0; i < t->requests; i++) {
        snprintf(key, sizeof key, "bench:%ld", pick_key(t));
        hc_value *v = NULL;
        double t0 = now_us();
        hc_status st = hc_get_or_load(t->s->bench, key, NULL, bench_loader, NULL, &v, NULL);
        t->lat_us[i] = now_us() - t0;
        if (st != HC_OK)
            t->errors++;
        hc_value_release(v);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[i == 0 ? 0 : i - 1];
}

void sb_h_bench(sb *s, sb_req *req, sb_reply *rep)
{
    long long requests, conc, keys;
    const char *dist_s, *label;
    if (sb_get_int(req, rep, "requests", 1, 2000000, 10000, &requests) ||
        sb_get_int(req, rep, "concurrency", 1, 64, 4, &conc) ||
        sb_get_int(req, rep, "keys", 1, 1000000, 1000, &keys) ||
        sb_get_str(req, rep, "distribution", false, &dist_s) ||
        sb_get_str(req, rep, "label", false, &label))
        return;
    int dist = 0;
    if (dist_s == NULL || strcmp(dist_s, "uniform") == 0)
        dist = 0, dist_s = "uniform";
    else if (strcmp(dist_s, "zipf") == 0)
        dist = 1;
    else if (strcmp(dist_s, "hot") == 0)
        dist = 2;
    else {
        sb_error(rep, 400, "field 'distribution' must be uniform, zipf or hot");
        return;
    }
    if (requests < conc)
        conc = requests;
    double *lat = malloc((size_t)requests * sizeof *lat);
    double *cdf = dist == 1 ? malloc((size_t)keys * sizeof *cdf) : NULL;
    bench_thread *ts = calloc((size_t)conc, sizeof *ts);
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    if (lat == NULL || (dist == 1 && cdf == NULL) || ts == NULL || th == NULL) {
        free(lat), free(cdf), free(ts), free(th);
        sb_error(rep, 503, "out of memory for %lld requests", requests);
        return;
    }
    if (cdf != NULL) {
        double sum = 0;
        for (long long i = 0; i < keys; i++)
            sum += 1.0 / (double)(i + 1);
        double acc = 0;
        for (long long i = 0; i < keys; i++)
            cdf[i] = (acc += 1.0 / (double)(i + 1) / sum);
    }
    pthread_mutex_lock(&s->bench_lock); /* one run at a time: they share the cache */
    hc_flush(s->bench, NULL);
    hc_stats st0;
    hc_cache_stats(s->bench, &st0);
    long per = (long)(requests / conc), extra = (long)(requests % conc), off = 0;
    double t0 = now_us();
    int started = 0;
    for (long i = 0; i < conc; i++) {
        long n = per + (i < extra);
        ts[i] = (bench_thread){.s = s, .requests = n, .keys = (long)keys, .dist = dist,
                               .zipf_cdf = cdf, .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1),
                               .lat_us = lat + off};
        off += n;
        if (pthread_create(&th[i], NULL, bench_main, &ts[i]) != 0) {
            bench_main(&ts[i]); /* run it here instead */
            th[i] = 0;
        } else {
            started++;
        }
    }
    for (long i = 0; i < conc; i++)
        if (th[i] != 0)
            pthread_join(th[i], NULL);
    double wall_us = now_us() - t0;
    hc_stats st1;
    hc_cache_stats(s->bench, &st1);
    long errors = 0;
    for (long i = 0; i < conc; i++)
        errors += ts[i].errors;
    qsort(lat, (size_t)requests, sizeof *lat, cmp_double);
    double sum = 0;
    for (long long i = 0; i < requests; i++)
        sum += lat[i];
    uint64_t hits = st1.hits - st0.hits, misses = st1.misses - st0.misses;
    s->run_seq++;
    json_t *run = json_pack(
        "{s:I, s:s, s:{s:I, s:I, s:I, s:s}, s:{s:f, s:f, s:f, s:f, s:f}, s:f, s:f, s:I, s:I, "
        "s:I, s:f, s:i}",
        "id", (json_int_t)s->run_seq, "label", label ? label : "", "params", "requests", requests,
        "concurrency", conc, "keys", keys, "distribution", dist_s, "latency_us", "p50",
        pct(lat, (size_t)requests, 50), "p95", pct(lat, (size_t)requests, 95), "p99",
        pct(lat, (size_t)requests, 99), "mean", sum / (double)requests, "max",
        lat[requests - 1], "wall_ms", wall_us / 1000.0, "throughput_per_s",
        (double)requests / (wall_us / 1e6), "hits", (json_int_t)hits, "misses",
        (json_int_t)misses, "loads", (json_int_t)(st1.loads - st0.loads), "hit_ratio",
        hits + misses ? (double)hits / (double)(hits + misses) : 0.0, "errors", (int)errors);
    (void)started;
    sb_bench_run *r = malloc(sizeof *r);
    if (r != NULL) {
        r->id = s->run_seq;
        r->json = json_incref(run);
        if (s->nruns == SB_BENCH_RUNS_MAX) {
            json_decref(s->runs[0]->json);
            free(s->runs[0]);
            memmove(s->runs, s->runs + 1, (SB_BENCH_RUNS_MAX - 1) * sizeof *s->runs);
            s->nruns--;
        }
        s->runs[s->nruns++] = r;
    }
    pthread_mutex_unlock(&s->bench_lock);
    free(lat), free(cdf), free(ts), free(th);
    sb_json(rep, 200, run);
}

json_t *sb_bench_runs_json(sb *s)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&s->bench_lock);
    for (unsigned i = 0; i < s->nruns; i++)
        json_array_append(arr, s->runs[i]->json);
    pthread_mutex_unlock(&s->bench_lock);
    return arr;
}

void sb_h_bench_list(sb *s, sb_req *req, sb_reply *rep)
{
    (void)req;
    sb_json(rep, 200, json_pack("{s:o}", "runs", sb_bench_runs_json(s)));
}

static json_t *find_run(sb *s, long long id)
{
    for (unsigned i = 0; i < s->nruns; i++)
        if (s->runs[i]->id == (uint64_t)id)
            return json_incref(s->runs[i]->json);
    return NULL;
}

/* Relative change of b against a, in percent (positive = b larger). */
static double rel(json_t *a, json_t *b, const char *sect, const char *field)
{
    json_t *ja = sect ? json_object_get(json_object_get(a, sect), field) : json_object_get(a, field);
    json_t *jb = sect ? json_object_get(json_object_get(b, sect), field) : json_object_get(b, field);
    double x = json_number_value(ja), y = json_number_value(jb);
    return x > 0 ? (y - x) / x * 100.0 : 0.0;
}

void sb_h_bench_compare(sb *s, sb_req *req, sb_reply *rep)
{
    long long ia, ib, thr;
    if (sb_get_int(req, rep, "a", 0, INT64_MAX, 0, &ia) ||
        sb_get_int(req, rep, "b", 0, INT64_MAX, 0, &ib) ||
        sb_get_int(req, rep, "threshold_pct", 1, 100, 10, &thr))
        return;
    pthread_mutex_lock(&s->bench_lock);
    if (ia == 0 && ib == 0 && s->nruns >= 2) { /* default: the last two runs */
        ia = (long long)s->runs[s->nruns - 2]->id;
        ib = (long long)s->runs[s->nruns - 1]->id;
    }
    json_t *a = find_run(s, ia), *b = find_run(s, ib);
    pthread_mutex_unlock(&s->bench_lock);
    if (a == NULL || b == NULL) {
        json_decref(a), json_decref(b);
        sb_error(rep, 404, "benchmark run %lld or %lld not found (run two benchmarks first)", ia,
                 ib);
        return;
    }
    double d50 = rel(a, b, "latency_us", "p50"), d95 = rel(a, b, "latency_us", "p95");
    double d99 = rel(a, b, "latency_us", "p99"), dtp = rel(a, b, NULL, "throughput_per_s");
    const char *verdict;
    double t = (double)thr;
    if (d50 <= -t && d95 <= -t)
        verdict = "b faster";
    else if (d50 >= t && d95 >= t)
        verdict = "b slower";
    else
        verdict = "no clear difference";
    sb_json(rep, 200,
            json_pack("{s:I, s:I, s:{s:f, s:f, s:f, s:f}, s:s, s:I, s:s, s:o, s:o}", "a", ia, "b",
                      ib, "delta_pct", "p50", d50, "p95", d95, "p99", d99, "throughput", dtp,
                      "verdict", verdict, "threshold_pct", thr, "note",
                      "one run each: p50 and p95 must both move by the threshold for a verdict; "
                      "repeat interleaved runs before trusting it on a busy machine",
                      "run_a", a, "run_b", b));
}

void sb_bench_free_all(sb *s)
{
    for (unsigned i = 0; i < s->nruns; i++) {
        json_decref(s->runs[i]->json);
        free(s->runs[i]);
    }
    s->nruns = 0;
}
