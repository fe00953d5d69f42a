/* common.c - helpers shared by the benchmark programs (see common.h). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "hash.h"

/* ------------------------------------------------------------ clock */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ random */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bench_rng_unit(bench_rng *r)
{
    return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

bool bench_zipf_init(bench_zipf *z, size_t n, double theta)
{
    z->n = n;
    z->theta = theta;
    z->cdf = malloc(n * sizeof *z->cdf);
    if (z->cdf == NULL) return false;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += 1.0 / pow((double)(i + 1), theta);
        z->cdf[i] = sum;
    }
    for (size_t i = 0; i < n; i++) z->cdf[i] /= sum;
    z->cdf[n - 1] = 1.0;
    return true;
}

void bench_zipf_free(bench_zipf *z)
{
    free(z->cdf);
    z->cdf = NULL;
}

size_t bench_zipf_next(const bench_zipf *z, bench_rng *r)
{
    double u = bench_rng_unit(r);
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

uint32_t *bench_zipf_trace(size_t n, double theta, size_t len, uint64_t seed)
{
    bench_zipf z;
    if (!bench_zipf_init(&z, n, theta)) return NULL;
    uint32_t *t = malloc(len * sizeof *t);
    if (t != NULL) {
        bench_rng r;
        bench_rng_seed(&r, seed);
        for (size_t i = 0; i < len; i++) t[i] = (uint32_t)bench_zipf_next(&z, &r);
    }
    bench_zipf_free(&z);
    return t;
}

/* ------------------------------------------------------------ latency */

bool bench_samples_add(bench_samples *s, uint64_t x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

double bench_quantile(const bench_samples *sorted, double q)
{
    if (sorted->n == 0) return 0;
    size_t rank = (size_t)ceil(q * (double)sorted->n);
    if (rank < 1) rank = 1;
    if (rank > sorted->n) rank = sorted->n;
    return (double)sorted->v[rank - 1];
}

bench_summary bench_summarise(bench_samples *s)
{
    bench_summary r = {0};
    if (s->n == 0) return r;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += (double)s->v[i];
    r.count = s->n;
    r.mean = sum / (double)s->n;
    r.p50 = bench_quantile(s, 0.50);
    r.p90 = bench_quantile(s, 0.90);
    r.p99 = bench_quantile(s, 0.99);
    r.p999 = bench_quantile(s, 0.999);
    r.min = (double)s->v[0];
    r.max = (double)s->v[s->n - 1];
    return r;
}

/* ------------------------------------------------------------ JSON */

static void json_key(bench_json *j, const char *key)
{
    if (!j->first[j->depth]) fputc(',', j->f);
    j->first[j->depth] = false;
    fprintf(j->f, "\n%*s", 2 * j->depth, "");
    if (!j->in_array[j->depth] && key != NULL) {
        fputc('"', j->f);
        for (const char *p = key; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', j->f);
            fputc(*p, j->f);
        }
        fputs("\": ", j->f);
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_open_nested(bench_json *j, const char *key, char c, bool array)
{
    json_key(j, key);
    fputc(c, j->f);
    if (j->depth + 1 < (int)(sizeof j->first / sizeof j->first[0])) j->depth++;
    j->first[j->depth] = true;
    j->in_array[j->depth] = array;
}

bool bench_json_open(bench_json *j, const char *path)
{
    memset(j, 0, sizeof *j);
    j->f = fopen(path, "w");
    if (j->f == NULL) return false;
    fputc('{', j->f);
    j->first[0] = true;
    return true;
}

bool bench_json_close(bench_json *j)
{
    while (j->depth > 0) bench_json_end(j);
    fputs("\n}\n", j->f);
    return fclose(j->f) == 0;
}

void bench_json_obj(bench_json *j, const char *key)
{
    json_open_nested(j, key, '{', false);
}

void bench_json_arr(bench_json *j, const char *key)
{
    json_open_nested(j, key, '[', true);
}

void bench_json_end(bench_json *j)
{
    bool arr = j->in_array[j->depth];
    bool empty = j->first[j->depth];
    j->depth--;
    if (!empty) fprintf(j->f, "\n%*s", 2 * j->depth, "");
    fputc(arr ? ']' : '}', j->f);
}

void bench_json_num(bench_json *j, const char *key, double v)
{
    json_key(j, key);
    if (isfinite(v)) fprintf(j->f, "%.6g", v);
    else fputs("null", j->f);
}

void bench_json_int(bench_json *j, const char *key, long long v)
{
    json_key(j, key);
    fprintf(j->f, "%lld", v);
}

void bench_json_str(bench_json *j, const char *key, const char *v)
{
    json_key(j, key);
    if (v == NULL) fputs("null", j->f);
    else json_string(j->f, v);
}

void bench_json_bool(bench_json *j, const char *key, bool v)
{
    json_key(j, key);
    fputs(v ? "true" : "false", j->f);
}

void bench_json_summary(bench_json *j, const char *key, const bench_summary *s, double div)
{
    bench_json_obj(j, key);
    bench_json_int(j, "count", (long long)s->count);
    bench_json_num(j, "mean", s->mean / div);
    bench_json_num(j, "p50", s->p50 / div);
    bench_json_num(j, "p90", s->p90 / div);
    bench_json_num(j, "p99", s->p99 / div);
    bench_json_num(j, "p999", s->p999 / div);
    bench_json_num(j, "min", s->min / div);
    bench_json_num(j, "max", s->max / div);
    bench_json_end(j);
}

static void cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (v == NULL) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(buf, cap, "%s", v);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

void bench_json_machine(bench_json *j)
{
    char cpu[256];
    struct utsname u;
    char kernel[400] = "unknown";
    if (uname(&u) == 0) snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    cpu_model(cpu, sizeof cpu);
    char when[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) != NULL) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);

    bench_json_obj(j, "machine");
    bench_json_int(j, "nproc", sysconf(_SC_NPROCESSORS_ONLN));
    bench_json_str(j, "cpu_model", cpu);
    bench_json_str(j, "kernel", kernel);
#ifdef __VERSION__
    bench_json_str(j, "compiler", "gcc-compatible " __VERSION__);
#else
    bench_json_str(j, "compiler", "unknown");
#endif
#ifdef __OPTIMIZE__
    bench_json_bool(j, "optimized", true);
#else
    bench_json_bool(j, "optimized", false);
#endif
    bench_json_int(j, "libpq_version", PQlibVersion());
    bench_json_str(j, "utc_time", when);
    /* Other work on the machine skews everything: record how busy it was. */
    double load[3] = {-1, -1, -1};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf != NULL) {
        if (fscanf(lf, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(lf);
    }
    bench_json_num(j, "loadavg_1min_at_end", load[0]);
    bench_json_end(j);
}

/* ------------------------------------------------------------ options */

bool bench_parse_args(int argc, char **argv, bench_opts *o, const char *about)
{
    o->quick = false;
    o->out_dir = ".";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            o->out_dir = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--out DIR]\n  %s\n", argv[0], about);
            return false;
        }
    }
    return true;
}

const char *bench_out_path(const bench_opts *o, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", o->out_dir, name);
    return buf;
}

bool bench_json_start(bench_json *j, const bench_opts *o, const char *scenario,
                      const char *description)
{
    char path[4096], file[256];
    snprintf(file, sizeof file, "%s.json", scenario);
    if (!bench_json_open(j, bench_out_path(o, file, path, sizeof path))) {
        fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    bench_json_str(j, "scenario", scenario);
    bench_json_str(j, "description", description);
    bench_json_str(j, "mode", o->quick ? "quick" : "full");
    bench_json_machine(j);
    return true;
}

FILE *bench_md_open(const bench_opts *o, const char *scenario)
{
    char path[4096], file[256];
    snprintf(file, sizeof file, "%s.md", scenario);
    FILE *f = fopen(bench_out_path(o, file, path, sizeof path), "w");
    if (f == NULL) bench_die("cannot write %s: %s", path, strerror(errno));
    return f;
}

void bench_md_row(FILE *f, const char *scenario, const char *ratio, const char *target, bool met,
                  const char *fmt, ...)
{
    va_list ap;
    fprintf(f, "| %s | ", scenario);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    /* A row without a target ("-") has no verdict either. */
    bool none = strcmp(target, "-") == 0;
    fprintf(f, " | %s | %s | %s |\n", ratio, target, none ? "-" : met ? "yes" : "**no**");
}

/* ------------------------------------------------------------ database */

/* Appends keyword='value' (libpq quoting) to buf. */
static bool append_kv(char *buf, size_t cap, size_t *n, const char *kw, const char *val)
{
    int w = snprintf(buf + *n, cap - *n, "%s%s='", *n ? " " : "", kw);
    if (w < 0 || (size_t)w >= cap - *n) return false;
    *n += (size_t)w;
    for (const char *p = val; *p; p++) {
        if (*n + 3 >= cap) return false;
        if (*p == '\'' || *p == '\\') buf[(*n)++] = '\\';
        buf[(*n)++] = *p;
    }
    if (*n + 2 >= cap) return false;
    buf[(*n)++] = '\'';
    buf[*n] = '\0';
    return true;
}

char *bench_conninfo(const char *env)
{
    const char *dsn = getenv(env);
    if (dsn == NULL || dsn[0] == '\0') {
        fprintf(stderr, "bench: %s is not set (run through bench/run.sh)\n", env);
        return NULL;
    }
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    if (opts == NULL) {
        fprintf(stderr, "bench: bad %s: %s\n", env, errmsg ? errmsg : "out of memory");
        PQfreemem(errmsg);
        return NULL;
    }
    const char *db = getenv("HC_TEST_DB");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    bool ok = buf != NULL;
    if (ok) buf[0] = '\0';
    for (PQconninfoOption *p = opts; ok && p->keyword != NULL; p++) {
        const char *val = p->val;
        if (strcmp(p->keyword, "dbname") == 0 && db != NULL && db[0] != '\0') val = db;
        if (val == NULL || val[0] == '\0') continue;
        ok = append_kv(buf, cap, &n, p->keyword, val);
    }
    bool has_db = false;
    for (PQconninfoOption *p = opts; p->keyword != NULL; p++)
        if (strcmp(p->keyword, "dbname") == 0 && p->val != NULL && p->val[0] != '\0') has_db = true;
    if (ok && !has_db && db != NULL && db[0] != '\0') ok = append_kv(buf, cap, &n, "dbname", db);
    PQconninfoFree(opts);
    if (!ok) {
        fprintf(stderr, "bench: %s too long\n", env);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Setup statements (DROP ... IF EXISTS) raise NOTICEs nobody needs to read. */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *bench_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench: connect failed: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    return c;
}

PGconn *bench_connect_env(const char *env, char **conninfo_out)
{
    char *ci = bench_conninfo(env);
    PGconn *conn = ci ? bench_connect(ci) : NULL;
    if (conn == NULL) bench_die("no benchmark database (%s)", env);
    if (conninfo_out != NULL) *conninfo_out = ci;
    else free(ci);
    return conn;
}

bool bench_exec(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "bench: %s -> %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

bool bench_users_table(PGconn *conn, const char *name, size_t n, size_t bio_len)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", name);
    PGresult *r = PQexec(conn, sql);
    bool ready = PQresultStatus(r) == PGRES_TUPLES_OK && strtoull(PQgetvalue(r, 0, 0), NULL, 10) >= n;
    PQclear(r);
    if (ready) return true;
    snprintf(sql, sizeof sql,
             "DROP TABLE IF EXISTS %s; "
             "CREATE TABLE %s (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, "
             "score int NOT NULL%s)",
             name, name, bio_len ? ", bio text NOT NULL" : "");
    if (!bench_exec(conn, sql)) return false;
    snprintf(sql, sizeof sql,
             "INSERT INTO %s SELECT g, 'user ' || g, 'user' || g || '@example.com', g %% 1000%s "
             "FROM generate_series(1, %zu) g",
             name, bio_len ? ", rpad('bio of ' || g, $1::int, ' lorem ipsum')" : "", n);
    char len[32];
    snprintf(len, sizeof len, "%zu", bio_len);
    const char *vals[1] = {len};
    r = PQexecParams(conn, sql, bio_len ? 1 : 0, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "bench: %s -> %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    snprintf(sql, sizeof sql, "VACUUM ANALYZE %s", name);
    return ok && bench_exec(conn, sql);
}

const char *bench_users_sql(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "SELECT * FROM %s WHERE id = $1", name);
    return buf;
}

/* ------------------------------------------------------------ floor */

typedef struct floor_slot {
    uint64_t hash;
    char *key; /* NULL = empty */
    size_t klen, vlen;
    char *val;
} floor_slot;

struct bench_floor {
    floor_slot *slots;
    size_t mask;
};

bench_floor *bench_floor_new(size_t n)
{
    bench_floor *f = malloc(sizeof *f);
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (f == NULL || (f->slots = calloc(cap, sizeof *f->slots)) == NULL) bench_die("out of memory");
    f->mask = cap - 1;
    return f;
}

void bench_floor_free(bench_floor *f)
{
    if (f == NULL) return;
    for (size_t i = 0; i <= f->mask; i++) {
        free(f->slots[i].key);
        free(f->slots[i].val);
    }
    free(f->slots);
    free(f);
}

void bench_floor_put(bench_floor *f, const char *key, const void *val, size_t len)
{
    size_t klen = strlen(key);
    uint64_t h = hc__hash(key, klen);
    size_t i = h & f->mask;
    while (f->slots[i].key != NULL && !(f->slots[i].klen == klen && memcmp(f->slots[i].key, key, klen) == 0))
        i = (i + 1) & f->mask;
    floor_slot *s = &f->slots[i];
    free(s->key);
    free(s->val);
    s->key = strdup(key);
    s->val = malloc(len ? len : 1);
    if (s->key == NULL || s->val == NULL) bench_die("out of memory");
    memcpy(s->val, val, len);
    s->hash = h;
    s->klen = klen;
    s->vlen = len;
}

size_t bench_floor_get(const bench_floor *f, const char *key, void *out, size_t cap)
{
    size_t klen = strlen(key);
    uint64_t h = hc__hash(key, klen);
    for (size_t i = h & f->mask;; i = (i + 1) & f->mask) {
        const floor_slot *s = &f->slots[i];
        if (s->key == NULL) return SIZE_MAX;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0) {
            size_t n = s->vlen < cap ? s->vlen : cap;
            memcpy(out, s->val, n);
            return s->vlen;
        }
    }
}

size_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long size = 0, resident = 0;
    int got = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (got != 2) return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    fputs("bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
