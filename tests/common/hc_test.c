/* hc_test.c - shared helpers for the Check suites (see hc_test.h). */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "hc_test.h"

static char g_conninfo[4096];
static char g_tcp_conninfo[4096];

/* Connect with HC_TEST_DB overriding the dbname of dsn (which may be a URI). */
static PGconn *connect_override(const char *dsn)
{
    const char *db = getenv("HC_TEST_DB");
    const char *kw[] = {"dbname", db ? "dbname" : NULL, NULL};
    const char *val[] = {dsn, db, NULL};
    return PQconnectdbParams(kw, val, 1);
}

/* Serialise the options of a live connection as a conninfo string. */
static bool conninfo_of(PGconn *conn, char *out, size_t cap)
{
    PQconninfoOption *opts = PQconninfo(conn);
    size_t n = 0;
    out[0] = '\0';
    if (opts == NULL) return false;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || o->val[0] == '\0') continue;
        if (strcmp(o->keyword, "password") == 0 && o->val[0] == '\0') continue;
        int w = snprintf(out + n, cap - n, "%s%s='", n ? " " : "", o->keyword);
        if (w < 0 || (size_t)w >= cap - n) goto overflow;
        n += (size_t)w;
        for (const char *p = o->val; *p; p++) {
            if (n + 3 >= cap) goto overflow;
            if (*p == '\'' || *p == '\\') out[n++] = '\\';
            out[n++] = *p;
        }
        if (n + 2 >= cap) goto overflow;
        out[n++] = '\'';
        out[n] = '\0';
    }
    PQconninfoFree(opts);
    return true;
overflow:
    PQconninfoFree(opts);
    return false;
}

static const char *resolve(const char *env, char *buf, size_t cap)
{
    if (buf[0]) return buf;
    const char *dsn = getenv(env);
    if (dsn == NULL || dsn[0] == '\0') return NULL;
    PGconn *c = connect_override(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "hc_test: cannot connect to %s: %s", env, PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    bool ok = conninfo_of(c, buf, cap);
    PQfinish(c);
    return ok ? buf : NULL;
}

/* Run tests/pgcluster.sh with args (already shell-quoted); its output (stdout
 * and stderr) goes to out.  Returns the script's exit status, -1 if it could
 * not run. */
static int pgcluster(char *out, size_t cap, const char *fmt, ...)
{
    char script[1024], args[1024], cmd[2560];
    hc_test_srcpath("tests/pgcluster.sh", script, sizeof script);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "bash '%s' %s 2>&1", script, args);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (p == NULL) return -1;
    size_t n = 0;
    char line[1024];
    while (fgets(line, sizeof line, p) != NULL) {
        size_t len = strlen(line);
        if (n + len < cap) {
            memcpy(out + n, line, len + 1);
            n += len;
        }
    }
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Copy the value of the line "NAME=value" in text to buf; false if absent. */
static bool env_line(const char *text, const char *name, char *buf, size_t cap)
{
    size_t len = strlen(name);
    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, len) == 0 && l[len] == '=') {
            const char *v = l + len + 1;
            size_t vlen = strcspn(v, "\n");
            if (vlen >= cap) return false;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return true;
        }
    }
    return false;
}

/* c->error = the formatted message, truncated to fit. */
static void cluster_error(hc_test_cluster *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
}

bool hc_test_private_cluster_start(hc_test_cluster *c)
{
    memset(c, 0, sizeof *c);
    const char *base = getenv("HC_TEST_TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    snprintf(c->dir, sizeof c->dir, "%s/hc-pg.XXXXXX", base);
    if (strchr(c->dir, '\'') != NULL || mkdtemp(c->dir) == NULL) {
        cluster_error(c, "cannot create a directory in %s", base);
        return false;
    }
    char out[8192];
    int rc = pgcluster(out, sizeof out, "start '%s'", c->dir);
    if (rc != 0 || !env_line(out, "HC_TEST_DSN", c->dsn, sizeof c->dsn) ||
        !env_line(out, "HC_TEST_TCP_DSN", c->tcp_dsn, sizeof c->tcp_dsn)) {
        c->unavailable = rc == 3;
        cluster_error(c, "pgcluster.sh start %s (exit %d): %s", c->dir, rc, out);
        char ignored[256];
        pgcluster(ignored, sizeof ignored, "stop '%s'", c->dir);
        return false;
    }
    c->running = true;
    return true;
}

static bool cluster_ctl(hc_test_cluster *c, const char *action)
{
    char out[4096];
    int rc = pgcluster(out, sizeof out, "ctl '%s' %s", c->dir, action);
    if (rc != 0) cluster_error(c, "pg_ctl %s in %s (exit %d): %s", action, c->dir, rc, out);
    return rc == 0;
}

bool hc_test_private_cluster_stop_server(hc_test_cluster *c)
{
    return cluster_ctl(c, "stop");
}

bool hc_test_private_cluster_start_server(hc_test_cluster *c)
{
    return cluster_ctl(c, "start");
}

void hc_test_private_cluster_stop(hc_test_cluster *c)
{
    if (!c->running) return;
    char out[1024];
    pgcluster(out, sizeof out, "stop '%s'", c->dir);
    c->running = false;
}

void hc_test_use_cluster(const hc_test_cluster *c)
{
    /* back to the shared server: resolve() looks HC_TEST_DSN up again */
    g_conninfo[0] = '\0';
    g_tcp_conninfo[0] = '\0';
    if (c == NULL) return;
    snprintf(g_conninfo, sizeof g_conninfo, "%s", c->dsn);
    snprintf(g_tcp_conninfo, sizeof g_tcp_conninfo, "%s", c->tcp_dsn);
}

int hc_test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *hc_test_conninfo(void)
{
    const char *s = resolve("HC_TEST_DSN", g_conninfo, sizeof g_conninfo);
    if (s == NULL) fprintf(stderr, "hc_test: HC_TEST_DSN is not set (run through tests/with-pg.sh)\n");
    return s;
}

const char *hc_test_tcp_conninfo(void)
{
    return resolve("HC_TEST_TCP_DSN", g_tcp_conninfo, sizeof g_tcp_conninfo);
}

PGconn *hc_test_connect(void)
{
    const char *ci = hc_test_conninfo();
    ck_assert_msg(ci != NULL, "no test database configured");
    PGconn *c = PQconnectdb(ci);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect failed: %s", PQerrorMessage(c));
    return c;
}

void hc_test_exec(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s -> %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        ck_abort_msg("%s", msg);
    }
    PQclear(r);
}

char *hc_test_scalar(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) < 1) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s -> %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        ck_abort_msg("%s", msg);
    }
    char *out = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

void hc_test_create_extension(PGconn *conn)
{
    hc_test_exec(conn, "CREATE EXTENSION IF NOT EXISTS hydracache");
}

const char *hc_test_srcpath(const char *rel, char *buf, size_t cap)
{
    const char *src = getenv("HC_SRCDIR");
    snprintf(buf, cap, "%s/%s", src ? src : ".", rel);
    return buf;
}

uint64_t hc_fake_clock_now(void *ctx)
{
    return __atomic_load_n(&((hc_fake_clock *)ctx)->now_ms, __ATOMIC_ACQUIRE);
}

void hc_fake_clock_advance(hc_fake_clock *fc, uint64_t ms)
{
    __atomic_add_fetch(&fc->now_ms, ms, __ATOMIC_ACQ_REL);
}

uint64_t hc_test_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool hc_test_wait_for(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    uint64_t deadline = hc_test_now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        if (cond(ctx)) return true;
        if (hc_test_now_us() >= deadline) return cond(ctx);
        usleep(1000);
    }
}
