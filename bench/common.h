/*
 * common.h - helpers shared by every benchmark program: clock, random and
 * Zipf generators, latency summaries, a small JSON writer, machine facts,
 * command-line options and the benchmark database connection.
 */
#ifndef HC_BENCH_COMMON_H
#define HC_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

/* ------------------------------------------------------------ clock */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* ------------------------------------------------------------ random */

/* xoshiro256** state; one per thread. */
typedef struct bench_rng {
    uint64_t s[4];
} bench_rng;

void bench_rng_seed(bench_rng *r, uint64_t seed);
uint64_t bench_rng_next(bench_rng *r);
/* Uniform double in [0, 1). */
double bench_rng_unit(bench_rng *r);

/*
 * Zipf(theta) over ranks 0..n-1 (rank 0 the most popular) by inversion of the
 * exact cumulative distribution (binary search): exact for any theta > 0, and
 * the cost does not matter because traces are generated before timing.
 */
typedef struct bench_zipf {
    size_t n;
    double theta;
    double *cdf;
} bench_zipf;

bool bench_zipf_init(bench_zipf *z, size_t n, double theta);
void bench_zipf_free(bench_zipf *z);
size_t bench_zipf_next(const bench_zipf *z, bench_rng *r);
/* A malloc'd trace of len ranks; NULL on OOM. */
uint32_t *bench_zipf_trace(size_t n, double theta, size_t len, uint64_t seed);

/* ------------------------------------------------------------ latency */

/* Growable array of samples (nanoseconds, or any unit). */
typedef struct bench_samples {
    uint64_t *v;
    size_t n, cap;
} bench_samples;

bool bench_samples_add(bench_samples *s, uint64_t x);
void bench_samples_free(bench_samples *s);

typedef struct bench_summary {
    size_t count;
    double mean, p50, p90, p99, p999, min, max; /* same unit as the samples */
} bench_summary;

/* Sorts the samples in place and summarises them. */
bench_summary bench_summarise(bench_samples *s);
/* q-quantile (0..1) of sorted samples (nearest rank). */
double bench_quantile(const bench_samples *sorted, double q);

/* ------------------------------------------------------------ floor */

/*
 * The hit-latency floor: an open-addressed (linear probing, at most half
 * full) table of key -> value bytes with the cache's own hash, whose lookup
 * hashes the key, compares it and memcpy's the value out.  No locks, no
 * counters, no reference counts, no expiry: what any in-process hash cache
 * must at least do.  Filled from one thread, then read from any.
 */
typedef struct bench_floor bench_floor;

bench_floor *bench_floor_new(size_t n); /* room for n keys; exits on OOM */
void bench_floor_free(bench_floor *f);
/* Copies key and len bytes of val. */
void bench_floor_put(bench_floor *f, const char *key, const void *val, size_t len);
/* Copies key's value into out (cap bytes); its length, or SIZE_MAX if absent. */
size_t bench_floor_get(const bench_floor *f, const char *key, void *out, size_t cap);

/* ------------------------------------------------------------ JSON */

/*
 * Streaming JSON writer: objects and arrays nest; keys are ignored inside
 * arrays (pass NULL).  Output is pretty enough to diff.
 */
typedef struct bench_json {
    FILE *f;
    int depth;
    bool first[32];
    bool in_array[32];
} bench_json;

bool bench_json_open(bench_json *j, const char *path);
bool bench_json_close(bench_json *j); /* closes the root object and the file */
void bench_json_obj(bench_json *j, const char *key);
void bench_json_arr(bench_json *j, const char *key);
void bench_json_end(bench_json *j);
void bench_json_num(bench_json *j, const char *key, double v);
void bench_json_int(bench_json *j, const char *key, long long v);
void bench_json_str(bench_json *j, const char *key, const char *v);
void bench_json_bool(bench_json *j, const char *key, bool v);
/* "key": {"count", "mean", "p50", "p90", "p99", "p999", "min", "max"} scaled by 1/div. */
void bench_json_summary(bench_json *j, const char *key, const bench_summary *s, double div);
/* Writes the "machine" object: nproc, CPU model, kernel, compiler, time. */
void bench_json_machine(bench_json *j);

/* ------------------------------------------------------------ options */

typedef struct bench_opts {
    bool quick;           /* --quick: about a second per scenario, smoke only */
    const char *out_dir;  /* --out DIR: where <scenario>.json goes (default ".") */
} bench_opts;

/* Parses argv; prints usage and returns false on bad arguments. */
bool bench_parse_args(int argc, char **argv, bench_opts *o, const char *about);
/* "<out_dir>/<name>" into buf. */
const char *bench_out_path(const bench_opts *o, const char *name, char *buf, size_t cap);

/* Opens <out_dir>/<scenario>.json and writes scenario, mode and machine. */
bool bench_json_start(bench_json *j, const bench_opts *o, const char *scenario,
                      const char *description);

/*
 * Markdown summary rows for docs/BENCHMARKS.md: <out_dir>/<scenario>.md gets
 * one "| scenario | measured | ratio | target | met |" row per call (met is
 * shown as "-" when target is "-").
 */
FILE *bench_md_open(const bench_opts *o, const char *scenario);
void bench_md_row(FILE *f, const char *scenario, const char *ratio, const char *target, bool met,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ------------------------------------------------------------ database */

/*
 * Conninfo of the benchmark database: the conninfo in environment variable
 * env (HC_TEST_DSN or HC_TEST_TCP_DSN, keyword=value or URI) with its dbname
 * replaced by HC_TEST_DB when set.  Returns a malloc'd keyword='value'
 * string, or NULL (with a message on stderr) when env is unset or invalid.
 */
char *bench_conninfo(const char *env);
/* Connects to conninfo; NULL (message on stderr) on failure. */
PGconn *bench_connect(const char *conninfo);
/* Connects to bench_conninfo(env) or exits; *conninfo_out (optional) keeps the string. */
PGconn *bench_connect_env(const char *env, char **conninfo_out);
/* Runs SQL without parameters; false (message on stderr) on failure. */
bool bench_exec(PGconn *conn, const char *sql);

/*
 * Ensures table `name` (id int primary key, name text, email text, score int
 * [, bio text of bio_len bytes]) holds ids 1..n, creating and filling it when
 * it does not.  false (message on stderr) on failure.
 */
bool bench_users_table(PGconn *conn, const char *name, size_t n, size_t bio_len);
/* SQL selecting the row of id $1 from table `name` into buf. */
const char *bench_users_sql(const char *name, char *buf, size_t cap);

/* Resident set size of this process in bytes (/proc/self/statm). */
size_t bench_rss_bytes(void);

/* printf to stderr with a "bench: " prefix, then exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* HC_BENCH_COMMON_H */
