/*
 * bench_hitratio.c - scenario "hit_ratio": the cache's own eviction policy
 * (hc_get, hc_put on a miss, capacity set by hc_config.max_entries) against
 * LRU and Belady's MIN simulated here on the very same Zipf traces.  MIN is
 * the offline optimum with bypass (a miss whose next use is further away than
 * every cached key's is not admitted), so it bounds every online policy.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "hydracache/cache.h"

#define NONE UINT32_MAX

/* ------------------------------------------------------------ LRU */

static uint64_t lru_hits(const uint32_t *trace, size_t len, size_t nkeys, size_t cap)
{
    uint32_t *prev = malloc(nkeys * sizeof *prev), *next = malloc(nkeys * sizeof *next);
    unsigned char *in = calloc(nkeys, 1);
    if (prev == NULL || next == NULL || in == NULL) bench_die("out of memory");
    uint32_t head = NONE, tail = NONE; /* head = most recent */
    size_t size = 0;
    uint64_t hits = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t k = trace[i];
        if (in[k]) {
            hits++;
            if (head == k) continue;
            /* unlink */
            next[prev[k]] = next[k];
            if (next[k] != NONE) prev[next[k]] = prev[k];
            else tail = prev[k];
        } else {
            if (size == cap) {
                uint32_t v = tail;
                tail = prev[v];
                if (tail != NONE) next[tail] = NONE;
                else head = NONE;
                in[v] = 0;
                size--;
            }
            in[k] = 1;
            size++;
        }
        prev[k] = NONE;
        next[k] = head;
        if (head != NONE) prev[head] = k;
        head = k;
        if (tail == NONE) tail = k;
    }
    free(prev);
    free(next);
    free(in);
    return hits;
}

/* ------------------------------------------------------------ MIN */

/* Max-heap of cached keys ordered by their next use; pos[] indexes it. */
typedef struct minheap {
    uint32_t *key;
    size_t *nextuse; /* nextuse of key k, indexed by key */
    uint32_t *pos;   /* heap slot of key k, NONE if not cached */
    size_t n;
} minheap;

static void heap_swap(minheap *h, size_t a, size_t b)
{
    uint32_t t = h->key[a];
    h->key[a] = h->key[b];
    h->key[b] = t;
    h->pos[h->key[a]] = (uint32_t)a;
    h->pos[h->key[b]] = (uint32_t)b;
}

static void heap_up(minheap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->nextuse[h->key[p]] >= h->nextuse[h->key[i]]) break;
        heap_swap(h, p, i);
        i = p;
    }
}

static void heap_down(minheap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->nextuse[h->key[l]] > h->nextuse[h->key[m]]) m = l;
        if (r < h->n && h->nextuse[h->key[r]] > h->nextuse[h->key[m]]) m = r;
        if (m == i) return;
        heap_swap(h, i, m);
        i = m;
    }
}

static uint64_t min_hits(const uint32_t *trace, size_t len, size_t nkeys, size_t cap)
{
    size_t *nextpos = malloc(len * sizeof *nextpos), *last = malloc(nkeys * sizeof *last);
    minheap h = {.key = malloc(cap * sizeof(uint32_t)),
                 .nextuse = malloc(nkeys * sizeof(size_t)),
                 .pos = malloc(nkeys * sizeof(uint32_t))};
    if (nextpos == NULL || last == NULL || h.key == NULL || h.nextuse == NULL || h.pos == NULL)
        bench_die("out of memory");
    for (size_t k = 0; k < nkeys; k++) {
        last[k] = SIZE_MAX; /* never used again */
        h.pos[k] = NONE;
    }
    for (size_t i = len; i-- > 0;) {
        nextpos[i] = last[trace[i]];
        last[trace[i]] = i;
    }
    uint64_t hits = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t k = trace[i];
        if (h.pos[k] != NONE) {
            hits++;
            h.nextuse[k] = nextpos[i]; /* later than before: moves toward the root */
            heap_up(&h, h.pos[k]);
            continue;
        }
        if (nextpos[i] == SIZE_MAX) continue; /* never reused: bypass */
        if (h.n == cap) {
            uint32_t far = h.key[0];
            if (h.nextuse[far] <= nextpos[i]) continue; /* bypass k */
            h.key[0] = h.key[--h.n];
            h.pos[h.key[0]] = 0;
            h.pos[far] = NONE; /* after the move: far may have been the last slot */
            heap_down(&h, 0);
        }
        h.nextuse[k] = nextpos[i];
        h.key[h.n] = k;
        h.pos[k] = (uint32_t)h.n++;
        heap_up(&h, h.n - 1);
    }
    free(nextpos);
    free(last);
    free(h.key);
    free(h.nextuse);
    free(h.pos);
    return hits;
}

/* ------------------------------------------------------------ the cache */

static uint64_t policy_hits(const uint32_t *trace, size_t len, char **keys, size_t cap,
                            unsigned shards, uint64_t *evictions)
{
    hc_error err;
    hc_config cfg = {.name = "bench-hitratio", .max_bytes = (size_t)1 << 30, .max_entries = cap,
                     .shards = shards};
    hc_cache *c = hc_cache_new(&cfg, &err);
    if (c == NULL) bench_die("hc_cache_new: %s", err.message);
    static const char payload[64] = {0};
    uint64_t hits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *key = keys[trace[i]];
        hc_value *v = NULL;
        hc_status st = hc_get(c, key, &v, &err);
        if (st == HC_OK) {
            hits++;
            hc_value_release(v);
        } else if (st == HC_MISS) {
            if (hc_put(c, key, payload, sizeof payload, NULL, &err) != HC_OK)
                bench_die("hc_put: %s", err.message);
        } else {
            bench_die("hc_get: %s", err.message);
        }
    }
    hc_stats s;
    hc_cache_stats(c, &s);
    *evictions = s.evictions_capacity;
    hc_cache_free(c);
    return hits;
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (!bench_parse_args(argc, argv, &o, "hit ratio: eviction policy vs LRU vs Belady MIN"))
        return 2;
    const size_t nkeys = 100000;
    const size_t len = o.quick ? 200000 : 2000000;
    const double thetas[] = {0.8, 0.99, 1.2};
    const double fractions[] = {0.001, 0.01, 0.1};
    /* The default shard count splits max_entries per shard; measured too in full mode. */
    const unsigned shard_counts[] = {1, 0};
    const int nshards = o.quick ? 1 : 2;

    char **keys = malloc(nkeys * sizeof *keys);
    if (keys == NULL) bench_die("out of memory");
    for (size_t i = 0; i < nkeys; i++) {
        char k[32];
        snprintf(k, sizeof k, "item:%zu", i);
        keys[i] = strdup(k);
    }

    bench_json j;
    if (!bench_json_start(&j, &o, "hit_ratio",
                          "hit ratio of the cache's eviction policy (hc_get, hc_put on miss) vs "
                          "LRU vs Belady's MIN (with bypass) simulated on the same traces"))
        return 1;
    bench_json_obj(&j, "parameters");
    bench_json_int(&j, "keys", (long long)nkeys);
    bench_json_int(&j, "trace_len", (long long)len);
    bench_json_str(&j, "capacity", "hc_config.max_entries = fraction * keys; max_bytes 1 GiB");
    bench_json_str(&j, "counted", "every request of the trace, cold start included");
    bench_json_str(&j, "shards", nshards == 2 ? "1 (policy) and default 16 (policy_default_shards)"
                                              : "1");
    bench_json_end(&j);

    char dat[4096];
    FILE *df = fopen(bench_out_path(&o, "hit_ratio.dat", dat, sizeof dat), "w");
    if (df == NULL) bench_die("cannot write %s", dat);
    fprintf(df, "# theta cache_fraction policy policy_default_shards lru min\n");

    double policy_099_1 = 0, lru_099_1 = 0, min_099_1 = 0;
    bench_json_arr(&j, "results");
    for (size_t ti = 0; ti < sizeof thetas / sizeof thetas[0]; ti++) {
        uint32_t *trace = bench_zipf_trace(nkeys, thetas[ti], len, 1000 + ti);
        if (trace == NULL) bench_die("out of memory");
        for (size_t fi = 0; fi < sizeof fractions / sizeof fractions[0]; fi++) {
            size_t cap = (size_t)((double)nkeys * fractions[fi]);
            double ratio[2] = {-1, -1};
            uint64_t ev[2] = {0, 0};
            double secs[2] = {0, 0};
            for (int s = 0; s < nshards; s++) {
                uint64_t t0 = bench_now_ns();
                ratio[s] = (double)policy_hits(trace, len, keys, cap, shard_counts[s], &ev[s]) /
                           (double)len;
                secs[s] = (double)(bench_now_ns() - t0) / 1e9;
            }
            double lru = (double)lru_hits(trace, len, nkeys, cap) / (double)len;
            double opt = (double)min_hits(trace, len, nkeys, cap) / (double)len;
            bench_json_obj(&j, NULL);
            bench_json_num(&j, "zipf_theta", thetas[ti]);
            bench_json_num(&j, "cache_fraction", fractions[fi]);
            bench_json_int(&j, "cache_entries", (long long)cap);
            bench_json_num(&j, "policy", ratio[0]);
            if (nshards == 2) bench_json_num(&j, "policy_default_shards", ratio[1]);
            bench_json_num(&j, "lru", lru);
            bench_json_num(&j, "min", opt);
            bench_json_num(&j, "policy_minus_lru_points", 100 * (ratio[0] - lru));
            bench_json_num(&j, "policy_share_of_min", opt > 0 ? ratio[0] / opt : 0);
            bench_json_int(&j, "policy_capacity_evictions", (long long)ev[0]);
            bench_json_num(&j, "policy_seconds", secs[0]);
            bench_json_end(&j);
            fprintf(df, "%g %g %.5f %.5f %.5f %.5f\n", thetas[ti], fractions[fi], ratio[0],
                    nshards == 2 ? ratio[1] : ratio[0], lru, opt);
            printf("hit_ratio: zipf %.2f cache %5.1f%%: policy %.4f", thetas[ti],
                   100 * fractions[fi], ratio[0]);
            if (nshards == 2) printf(" (default shards %.4f)", ratio[1]);
            printf(" lru %.4f min %.4f\n", lru, opt);
            if (ti == 1 && fi == 1) {
                policy_099_1 = ratio[0];
                lru_099_1 = lru;
                min_099_1 = opt;
            }
        }
        fprintf(df, "\n\n"); /* gnuplot index per theta */
        free(trace);
    }
    bench_json_end(&j);
    fclose(df);
    bench_json_obj(&j, "ratio");
    bench_json_num(&j, "policy_minus_lru_points_zipf099_1pct", 100 * (policy_099_1 - lru_099_1));
    bench_json_num(&j, "target_points", 5.0);
    bench_json_bool(&j, "meets_target", 100 * (policy_099_1 - lru_099_1) >= 5.0);
    bench_json_end(&j);
    if (!bench_json_close(&j)) bench_die("cannot write hit_ratio.json");

    FILE *md = bench_md_open(&o, "hit_ratio");
    char ratio[64];
    double pts = 100 * (policy_099_1 - lru_099_1);
    snprintf(ratio, sizeof ratio, "%+.1f points", pts);
    bench_md_row(md, "hit ratio, Zipf 0.99, cache 1% (1 shard)", ratio, ">= LRU + 5 points",
                 pts >= 5.0, "policy %.1f%% vs LRU %.1f%% (MIN %.1f%%)", 100 * policy_099_1,
                 100 * lru_099_1, 100 * min_099_1);
    fclose(md);
    for (size_t i = 0; i < nkeys; i++) free(keys[i]);
    free(keys);
    return 0;
}
