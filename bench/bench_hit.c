/*
 * bench_hit.c - scenario "hit_latency": a cached hc_pg_fetch_one hit (a real
 * PGresult rebuilt from the cache, then PQclear'd) against the same
 * PQexecParams sent to the server, over the unix socket and TCP loopback.
 * Zipf 0.99 over 100k ids, 1-row results; each operation is timed alone.
 * Beside the plain hc_get of the same entries, the floor (common.h: an
 * open-addressed table + memcpy of the same value bytes), timed in the same
 * loop: a hit should cost at most 2x the floor (p50); the zero-copy view is
 * timed beside the floor the same way, in a loop of its own, and should cost
 * at most 3x.
 */
#include "config.h"

#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "hydracache/cache.h"
#include "hydracache/pg.h"

#define NIDS 100000u
#define TABLE "bench_users"

typedef struct transport {
    const char *name;
    const char *env;
    PGconn *conn;
    hc_cache *cache;
    bench_samples uncached, uncached_other, cached, raw_get, view, floor;
    /* the view and the floor again, timed side by side (alternating) */
    bench_samples view_paired, floor_view;
    double uncached_ops, uncached_other_ops, cached_ops, raw_ops, view_ops;
    double build_mean_ns; /* hc_query_entity on the stack: part of every cached call */
    double build_def_mean_ns; /* the same query from an hc_entity_def (returned by value) */
    bench_summary su, su_other, sc, sr, sv, sf, svp, sfv;
} transport;

static char g_sql[256];
/* The same query declared as an entity (the HC_ENTITY_DEF form docs/ADAPTER.md
 * recommends), so the benchmark measures what applications write. */
static HC_ENTITY_DEF(BENCH_USER, .name = "bench_user", .select = g_sql);

/* The cached side of the comparison, as an application writes it: an entity
 * query (key and tag "bench_user:<id>") around the same SQL. */
static void make_query(hc_query *q, const char *const *vals)
{
    *q = (hc_query){.sql = g_sql, .nparams = 1, .param_values = vals};
    hc_query_entity(q, "bench_user", vals[0]);
}

static PGresult *cached_fetch(transport *t, const char *id, hc_error *err)
{
    const char *vals[1] = {id};
    hc_query q;
    make_query(&q, vals);
    return hc_pg_fetch_one(t->cache, t->conn, &q, err);
}

/* One hit through the zero-copy view, as an application writes it (the
 * query built on the stack, the view released); dies on anything but a hit
 * of the cached entry. */
static void view_hit(transport *t, const char *id)
{
    const char *vals[1] = {id};
    hc_query q;
    make_query(&q, vals);
    hc_pg_view view;
    hc_error err;
    if (hc_pg_fetch_one_view(t->cache, t->conn, &q, &view, &err) != HC_OK)
        bench_die("hc_pg_fetch_one_view: %s", err.message);
    hc_pg_view_release(&view);
}

/* Pin pid (0 = this process) to one CPU. */
static bool pin(pid_t pid, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(pid, sizeof set, &set) == 0;
}

static void check_row(PGresult *r, const char *what)
{
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        bench_die("%s: expected one row (%s)", what,
                  r ? PQresultErrorMessage(r) : "NULL result");
}

/* Runs trace[from..to) uncached on t into out (NULL: not recorded); returns the wall time. */
static uint64_t time_uncached(transport *t, const uint32_t *trace, size_t from, size_t to,
                              bench_samples *out)
{
    uint64_t start = bench_now_ns();
    for (size_t i = from; i < to; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        const char *vals[1] = {id};
        uint64_t t0 = bench_now_ns();
        PGresult *r = PQexecParams(t->conn, g_sql, 1, NULL, vals, NULL, NULL, 0);
        check_row(r, "PQexecParams");
        PQclear(r);
        uint64_t t1 = bench_now_ns();
        if (out != NULL && !bench_samples_add(out, t1 - t0)) bench_die("out of memory");
    }
    return bench_now_ns() - start;
}

static double time_cached(transport *t, const uint32_t *trace, size_t len)
{
    hc_error err;
    /* Warm pass: loads every id of the trace (misses), untimed. */
    for (size_t i = 0; i < len; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        PGresult *r = cached_fetch(t, id, &err);
        if (r == NULL) bench_die("hc_pg_fetch_one: %s", err.message);
        check_row(r, "hc_pg_fetch_one");
        PQclear(r);
    }
    hc_stats before, after;
    hc_cache_stats(t->cache, &before);
    uint64_t start = bench_now_ns();
    for (size_t i = 0; i < len; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        uint64_t t0 = bench_now_ns();
        PGresult *r = cached_fetch(t, id, &err);
        if (r == NULL) bench_die("hc_pg_fetch_one: %s", err.message);
        PQclear(r);
        uint64_t t1 = bench_now_ns();
        if (!bench_samples_add(&t->cached, t1 - t0)) bench_die("out of memory");
    }
    double ops = (double)len * 1e9 / (double)(bench_now_ns() - start);
    /* The same hits through the zero-copy view: no PGresult built. */
    start = bench_now_ns();
    for (size_t i = 0; i < len; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        uint64_t t0 = bench_now_ns();
        view_hit(t, id);
        uint64_t t1 = bench_now_ns();
        if (!bench_samples_add(&t->view, t1 - t0)) bench_die("out of memory");
    }
    t->view_ops = (double)len * 1e9 / (double)(bench_now_ns() - start);
    /* The floor holds the same keys and value bytes as the cache. */
    bench_floor *floor = bench_floor_new(NIDS);
    size_t max_value = 0;
    for (size_t i = 0; i < len; i++) {
        char id[16], key[HC_MAX_KEY_LEN + 1];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        const char *vals[1] = {id};
        hc_query q;
        make_query(&q, vals);
        hc_value *v = NULL;
        if (hc_query_key(&q, key, sizeof key, &err) != HC_OK || hc_get(t->cache, key, &v, &err) != HC_OK)
            bench_die("entry %s is not cached", id);
        bench_floor_put(floor, key, hc_value_data(v), hc_value_len(v));
        if (hc_value_len(v) > max_value) max_value = hc_value_len(v);
        hc_value_release(v);
    }
    char *copy = malloc(max_value + 1);
    if (copy == NULL) bench_die("out of memory");
    /* The same entries through plain hc_get: what the PGresult rebuild costs;
     * the floor's lookup of the same key in the same iteration, order alternating. */
    uint64_t raw_ns = 0, build_ns = 0, build_def_ns = 0;
    for (size_t i = 0; i < len; i++) {
        char id[16], key[HC_MAX_KEY_LEN + 1];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        const char *vals[1] = {id};
        hc_query q;
        uint64_t tb = bench_now_ns();
        make_query(&q, vals);
        build_ns += bench_now_ns() - tb;
        tb = bench_now_ns();
        hc_query qd = hc_query_for_entity(&BENCH_USER, id);
        build_def_ns += bench_now_ns() - tb;
        if (hc_query_key(&qd, key, sizeof key, &err) != HC_OK) bench_die("hc_query_key: %s", err.message);
        if (hc_query_key(&q, key, sizeof key, &err) != HC_OK) bench_die("hc_query_key: %s", err.message);
        for (int k = 0; k < 2; k++) {
            if ((k ^ (int)(i & 1)) == 1) {
                uint64_t t0 = bench_now_ns();
                size_t got = bench_floor_get(floor, key, copy, max_value);
                uint64_t t1 = bench_now_ns();
                if (got == SIZE_MAX) bench_die("floor lost %s", key);
                if (!bench_samples_add(&t->floor, t1 - t0)) bench_die("out of memory");
                continue;
            }
            hc_value *v = NULL;
            uint64_t t0 = bench_now_ns();
            hc_status st = hc_get(t->cache, key, &v, &err);
            hc_value_release(v);
            uint64_t t1 = bench_now_ns();
            if (st != HC_OK) bench_die("hc_get of a cached key: %s", hc_status_str(st));
            raw_ns += t1 - t0;
            if (!bench_samples_add(&t->raw_get, t1 - t0)) bench_die("out of memory");
        }
    }
    /* The view against the floor the same way: the same key in the same
     * iteration, order alternating (its own pass above gives its throughput;
     * this gives the ratio, from samples taken side by side). */
    for (size_t i = 0; i < len; i++) {
        char id[16], key[HC_MAX_KEY_LEN + 1];
        snprintf(id, sizeof id, "%u", trace[i] + 1);
        const char *vals[1] = {id};
        hc_query q;
        make_query(&q, vals);
        if (hc_query_key(&q, key, sizeof key, &err) != HC_OK) bench_die("hc_query_key: %s", err.message);
        for (int k = 0; k < 2; k++) {
            uint64_t t0 = bench_now_ns();
            if ((k ^ (int)(i & 1)) == 1) {
                size_t got = bench_floor_get(floor, key, copy, max_value);
                uint64_t t1 = bench_now_ns();
                if (got == SIZE_MAX) bench_die("floor lost %s", key);
                if (!bench_samples_add(&t->floor_view, t1 - t0)) bench_die("out of memory");
                continue;
            }
            view_hit(t, id);
            uint64_t t1 = bench_now_ns();
            if (!bench_samples_add(&t->view_paired, t1 - t0)) bench_die("out of memory");
        }
    }
    free(copy);
    bench_floor_free(floor);
    t->raw_ops = (double)len * 1e9 / (double)raw_ns;
    t->build_mean_ns = (double)build_ns / (double)len;
    t->build_def_mean_ns = (double)build_def_ns / (double)len;
    hc_cache_stats(t->cache, &after);
    if (after.misses != before.misses)
        bench_die("timed pass missed %llu times: the cache did not keep the warm set",
                  (unsigned long long)(after.misses - before.misses));
    return ops;
}

static void write_summary(bench_json *j, const char *key, const bench_summary *s, double ops)
{
    bench_json_obj(j, key);
    bench_json_num(j, "ops_per_s", ops);
    bench_json_summary(j, "latency_us", s, 1000.0);
    bench_json_end(j);
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (!bench_parse_args(argc, argv, &o, "hit latency: hc_pg_fetch_one hit vs uncached PQexecParams"))
        return 2;
    const size_t n_uncached = o.quick ? 1000 : 20000, n_cached = o.quick ? 20000 : 200000;
    const size_t warm = o.quick ? 100 : 2000;
    bench_users_sql(TABLE, g_sql, sizeof g_sql);

    /* Setup on a connection of its own: a session that just created and filled
     * the table was measured markedly slower afterwards. */
    PGconn *setup = bench_connect_env("HC_TEST_DSN", NULL);
    if (!bench_users_table(setup, TABLE, NIDS, 0)) bench_die("cannot create %s", TABLE);
    PQfinish(setup);

    transport ts[2] = {{.name = "unix", .env = "HC_TEST_DSN"},
                       {.name = "tcp", .env = "HC_TEST_TCP_DSN"}};
    int nt = 0;
    for (int i = 0; i < 2; i++) {
        if (i == 1 && getenv("HC_TEST_TCP_DSN") == NULL) {
            fprintf(stderr, "bench: HC_TEST_TCP_DSN unset: TCP loopback not measured\n");
            break;
        }
        ts[i].conn = bench_connect_env(ts[i].env, NULL);
        hc_error err;
        hc_config cfg = {.name = ts[i].name, .max_bytes = (size_t)512 << 20};
        if ((ts[i].cache = hc_cache_new(&cfg, &err)) == NULL) bench_die("hc_cache_new: %s", err.message);
        nt++;
    }

    uint32_t *tu = bench_zipf_trace(NIDS, 0.99, n_uncached, 7);
    uint32_t *tc = bench_zipf_trace(NIDS, 0.99, n_cached, 8);
    if (tu == NULL || tc == NULL) bench_die("out of memory");
    /*
     * A round trip's cost depends on whether the server backend runs on the
     * client's CPU (this VM's idle-CPU wake-ups cost ~70 us, so an unpinned
     * run measured 25 or 100 us at random).  So the client and each backend
     * are pinned: same CPU (the fast, conservative baseline) and, with two or
     * more CPUs, the backends on another CPU.  Needs the right to set the
     * backends' affinity (root); otherwise one unpinned run.
     */
    bool pinned = sysconf(_SC_NPROCESSORS_ONLN) >= 2 && pin(0, 0);
    for (int i = 0; pinned && i < nt; i++) pinned = pin(PQbackendPID(ts[i].conn), 0);
    int placements = pinned ? 2 : 1;
    for (int pl = 0; pl < placements; pl++) {
        for (int i = 0; pinned && i < nt; i++) pin(PQbackendPID(ts[i].conn), pl);
        /* Transports take turns in chunks, so drift in machine load hits both alike. */
        const size_t chunk = 500;
        uint64_t wall[2] = {0, 0};
        for (int i = 0; i < nt; i++) time_uncached(&ts[i], tu, 0, warm, NULL);
        for (size_t from = 0; from < n_uncached; from += chunk) {
            size_t to = from + chunk < n_uncached ? from + chunk : n_uncached;
            for (int i = 0; i < nt; i++)
                wall[i] += time_uncached(&ts[i], tu, from, to,
                                         pl ? &ts[i].uncached_other : &ts[i].uncached);
        }
        for (int i = 0; i < nt; i++) {
            double ops = (double)n_uncached * 1e9 / (double)wall[i];
            if (pl) ts[i].uncached_other_ops = ops;
            else ts[i].uncached_ops = ops;
        }
    }
    for (int i = 0; i < nt; i++) ts[i].cached_ops = time_cached(&ts[i], tc, n_cached);
    for (int i = 0; i < nt; i++) {
        ts[i].su = bench_summarise(&ts[i].uncached);
        ts[i].su_other = bench_summarise(&ts[i].uncached_other);
        ts[i].sc = bench_summarise(&ts[i].cached);
        ts[i].sr = bench_summarise(&ts[i].raw_get);
        ts[i].sv = bench_summarise(&ts[i].view);
        ts[i].sf = bench_summarise(&ts[i].floor);
        ts[i].svp = bench_summarise(&ts[i].view_paired);
        ts[i].sfv = bench_summarise(&ts[i].floor_view);
    }

    bench_json j;
    if (!bench_json_start(&j, &o, "hit_latency",
                          "cached hc_pg_fetch_one hit (PGresult rebuilt and PQclear'd) vs the same "
                          "uncached PQexecParams, unix socket and TCP loopback"))
        return 1;
    bench_json_obj(&j, "parameters");
    bench_json_int(&j, "ids", NIDS);
    bench_json_num(&j, "zipf_theta", 0.99);
    bench_json_str(&j, "sql", g_sql);
    bench_json_str(&j, "row", "id int, name text, email text, score int (1 row)");
    bench_json_int(&j, "uncached_samples", (long long)n_uncached);
    bench_json_int(&j, "uncached_warmup", (long long)warm);
    bench_json_str(&j, "uncached_order", "transports take turns in chunks of 500 queries");
    bench_json_str(&j, "placement",
                   pinned ? "client and backends pinned to CPU 0 (uncached); "
                            "uncached_backend_other_cpu: backends on CPU 1"
                          : "unpinned (could not set CPU affinity)");
    bench_json_int(&j, "cached_samples", (long long)n_cached);
    bench_json_str(&j, "cached_warmup", "one untimed pass over the same trace (loads)");
    bench_json_int(&j, "sizeof_hc_query", (long long)sizeof(hc_query));
    bench_json_end(&j);
    bench_json_obj(&j, "results");
    for (int i = 0; i < nt; i++) {
        bench_json_obj(&j, ts[i].name);
        write_summary(&j, "uncached", &ts[i].su, ts[i].uncached_ops);
        if (placements == 2)
            write_summary(&j, "uncached_backend_other_cpu", &ts[i].su_other, ts[i].uncached_other_ops);
        write_summary(&j, "cached_hit", &ts[i].sc, ts[i].cached_ops);
        write_summary(&j, "raw_hc_get_same_entry", &ts[i].sr, ts[i].raw_ops);
        write_summary(&j, "cached_hit_view", &ts[i].sv, ts[i].view_ops);
        bench_json_obj(&j, "floor_open_addressing_memcpy");
        bench_json_summary(&j, "latency_us", &ts[i].sf, 1000.0);
        bench_json_end(&j);
        bench_json_obj(&j, "cached_hit_view_beside_floor");
        bench_json_summary(&j, "latency_us", &ts[i].svp, 1000.0);
        bench_json_end(&j);
        bench_json_obj(&j, "floor_beside_view");
        bench_json_summary(&j, "latency_us", &ts[i].sfv, 1000.0);
        bench_json_end(&j);
        bench_json_num(&j, "entity_query_build_mean_us", ts[i].build_mean_ns / 1000.0);
        bench_json_num(&j, "entity_def_query_build_mean_us", ts[i].build_def_mean_ns / 1000.0);
        bench_json_end(&j);
    }
    bench_json_end(&j);
    bench_json_obj(&j, "ratio");
    for (int i = 0; i < nt; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s_p50_uncached_over_cached", ts[i].name);
        bench_json_num(&j, k, ts[i].su.p50 / ts[i].sc.p50);
        snprintf(k, sizeof k, "%s_p99_uncached_over_cached", ts[i].name);
        bench_json_num(&j, k, ts[i].su.p99 / ts[i].sc.p99);
        snprintf(k, sizeof k, "%s_p50_uncached_over_cached_view", ts[i].name);
        bench_json_num(&j, k, ts[i].su.p50 / ts[i].sv.p50);
        snprintf(k, sizeof k, "%s_p99_uncached_over_cached_view", ts[i].name);
        bench_json_num(&j, k, ts[i].su.p99 / ts[i].sv.p99);
        snprintf(k, sizeof k, "%s_p50_hc_get_over_floor", ts[i].name);
        bench_json_num(&j, k, ts[i].sr.p50 / ts[i].sf.p50);
        snprintf(k, sizeof k, "%s_p50_view_over_floor", ts[i].name);
        bench_json_num(&j, k, ts[i].svp.p50 / ts[i].sfv.p50);
        snprintf(k, sizeof k, "%s_ops_cached_over_uncached", ts[i].name);
        bench_json_num(&j, k, ts[i].cached_ops / ts[i].uncached_ops);
        if (placements == 2) {
            snprintf(k, sizeof k, "%s_p50_uncached_other_cpu_over_cached", ts[i].name);
            bench_json_num(&j, k, ts[i].su_other.p50 / ts[i].sc.p50);
        }
    }
    bench_json_num(&j, "target_hc_get_over_floor", 2.0);
    bench_json_num(&j, "target_view_over_floor", 3.0);
    bench_json_num(&j, "target", 300);
    bench_json_str(&j, "target_on", "p50 latency ratio, every transport");
    bool met = true;
    for (int i = 0; i < nt; i++) met = met && ts[i].su.p50 / ts[i].sc.p50 >= 300;
    bench_json_bool(&j, "meets_target", met);
    bench_json_end(&j);
    if (!bench_json_close(&j)) bench_die("cannot write hit_latency.json");

    char path[4096];
    FILE *df = fopen(bench_out_path(&o, "hit_latency.dat", path, sizeof path), "w");
    if (df == NULL) bench_die("cannot write %s", path);
    fprintf(df, "# percentile uncached_unix_us uncached_tcp_us cached_unix_us cached_tcp_us\n");
    for (double p = 1; p <= 99.91; p += p < 99 ? 1 : 0.1) {
        fprintf(df, "%g", p);
        for (int i = 0; i < 2; i++)
            fprintf(df, " %g", i < nt ? bench_quantile(&ts[i].uncached, p / 100) / 1000 : NAN);
        for (int i = 0; i < 2; i++)
            fprintf(df, " %g", i < nt ? bench_quantile(&ts[i].cached, p / 100) / 1000 : NAN);
        fprintf(df, "\n");
    }
    fclose(df);

    FILE *md = bench_md_open(&o, "hit_latency");
    for (int i = 0; i < nt; i++) {
        char ratio[64], what[64];
        double r = ts[i].su.p50 / ts[i].sc.p50;
        snprintf(ratio, sizeof ratio, "%.0fx (p50), %.0fx (p99)", r, ts[i].su.p99 / ts[i].sc.p99);
        snprintf(what, sizeof what, "hit latency vs uncached, %s", ts[i].name);
        char other[96] = "";
        if (placements == 2)
            snprintf(other, sizeof other, "; backend on another CPU: p50 %.1f us (%.0fx)",
                     ts[i].su_other.p50 / 1e3, ts[i].su_other.p50 / ts[i].sc.p50);
        bench_md_row(md, what, ratio, ">= 300x", r >= 300,
                     "hit p50 %.2f us / p99 %.2f us (plain hc_get of the entry: p50 %.2f us); "
                     "uncached p50 %.1f us / p99 %.1f us%s",
                     ts[i].sc.p50 / 1e3, ts[i].sc.p99 / 1e3, ts[i].sr.p50 / 1e3,
                     ts[i].su.p50 / 1e3, ts[i].su.p99 / 1e3, other);
        double fr = ts[i].sr.p50 / ts[i].sf.p50, vr = ts[i].svp.p50 / ts[i].sfv.p50;
        snprintf(ratio, sizeof ratio, "%.2fx (hc_get), %.2fx (view)", fr, vr);
        snprintf(what, sizeof what, "hit vs hash+memcpy floor, %s", ts[i].name);
        bench_md_row(md, what, ratio, "<= 2x (hc_get), <= 3x (view)", fr <= 2.0 && vr <= 3.0,
                     "p50, each beside the floor: hc_get %.3f us (floor %.3f us), "
                     "hc_pg_fetch_one_view %.3f us (floor %.3f us)",
                     ts[i].sr.p50 / 1e3, ts[i].sf.p50 / 1e3, ts[i].svp.p50 / 1e3,
                     ts[i].sfv.p50 / 1e3);
        printf("hit_latency %s: p50 hc_get %.3f us / floor %.3f us, view %.3f us / floor %.3f us: "
               "%.2fx / %.2fx\n",
               ts[i].name, ts[i].sr.p50 / 1e3, ts[i].sf.p50 / 1e3, ts[i].svp.p50 / 1e3,
               ts[i].sfv.p50 / 1e3, fr, vr);
        printf("hit_latency %s: hit p50 %.2f us, uncached p50 %.1f us: %.0fx%s; "
               "view hit p50 %.2f us: %.0fx\n", ts[i].name, ts[i].sc.p50 / 1e3, ts[i].su.p50 / 1e3, r,
               other, ts[i].sv.p50 / 1e3, ts[i].su.p50 / ts[i].sv.p50);
    }
    fclose(md);

    for (int i = 0; i < nt; i++) {
        bench_samples_free(&ts[i].uncached);
        bench_samples_free(&ts[i].uncached_other);
        bench_samples_free(&ts[i].cached);
        bench_samples_free(&ts[i].raw_get);
        bench_samples_free(&ts[i].view);
        bench_samples_free(&ts[i].floor);
        bench_samples_free(&ts[i].view_paired);
        bench_samples_free(&ts[i].floor_view);
        hc_cache_free(ts[i].cache);
        PQfinish(ts[i].conn);
    }
    free(tu);
    free(tc);
    return 0;
}
