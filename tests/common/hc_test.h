/*
 * hc_test.h - helpers shared by the Check suites: the test database (set up
 * by tests/with-pg.sh), a fake clock, and small waiting utilities.
 */
#ifndef HC_TEST_H
#define HC_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include <check.h>
#include <libpq-fe.h>

#include "hydracache/cache.h"

/* A PostgreSQL cluster of one test's own (tests/pgcluster.sh in a mkdtemp
 * directory), for tests that stop, start or otherwise disturb the server:
 * the shared HC_TEST_DSN server is used by other suites running in parallel
 * and must never be restarted.  Start and stop it from an unchecked fixture
 * (the runner's process), so it is torn down even when a test fails; when
 * the whole run dies, tests/with-pg.sh stops what is left in HC_TEST_TMPDIR.
 * PG_BINDIR selects the PostgreSQL binaries (see pgcluster.sh). */
typedef struct hc_test_cluster {
    bool running;        /* started and not yet stopped by _stop */
    bool unavailable;    /* no PostgreSQL server binaries on this machine */
    char error[1024];    /* why the last call failed */
    char dir[512];       /* the cluster's directory (data/, sock/, server.log) */
    char dsn[1024];      /* conninfo over its unix socket, dbname=postgres */
    char tcp_dsn[512];   /* conninfo over 127.0.0.1 */
} hc_test_cluster;

/* initdb + start in a new directory; false with c->error (and
 * c->unavailable when there are no server binaries) on failure. */
bool hc_test_private_cluster_start(hc_test_cluster *c);
/* Stop the server (pg_ctl -m fast, waits) keeping its data; false + c->error on failure. */
bool hc_test_private_cluster_stop_server(hc_test_cluster *c);
/* Start the server again after hc_test_private_cluster_stop_server. */
bool hc_test_private_cluster_start_server(hc_test_cluster *c);
/* Stop the server and remove its directory; a no-op unless running. */
void hc_test_private_cluster_stop(hc_test_cluster *c);
/* Point hc_test_conninfo()/hc_test_connect()/hc_test_tcp_conninfo() of this
 * process at c, or back at the shared test server with NULL.  Not
 * thread-safe: call while no other thread uses these helpers. */
void hc_test_use_cluster(const hc_test_cluster *c);

/* Run a Check suite with the default fork mode; EXIT_SUCCESS when nothing failed. */
int hc_test_run_suite(Suite *s);

/* Full conninfo string of the test database (HC_TEST_DSN with dbname
 * HC_TEST_DB).  Static storage; NULL (and a message on stderr) when no test
 * server is configured.  Call from one thread first (e.g. a fixture). */
const char *hc_test_conninfo(void);
/* Same, for the TCP loopback address when known (HC_TEST_TCP_DSN), else NULL. */
const char *hc_test_tcp_conninfo(void);
/* New connection to the test database; ck_abort on failure. */
PGconn *hc_test_connect(void);
/* Run SQL (no params), ck_abort with the server message on failure. */
void hc_test_exec(PGconn *conn, const char *sql);
/* Run SQL returning one value; returns a malloc'd string (NULL for SQL NULL). */
char *hc_test_scalar(PGconn *conn, const char *sql);
/* CREATE EXTENSION IF NOT EXISTS hydracache in the test database. */
void hc_test_create_extension(PGconn *conn);
/* Absolute path below the source tree (HC_SRCDIR), static storage per call site. */
const char *hc_test_srcpath(const char *rel, char *buf, size_t cap);

/* A fake clock for hc_config.clock: time only moves by hc_fake_clock_advance. */
typedef struct hc_fake_clock {
    volatile uint64_t now_ms;
} hc_fake_clock;
uint64_t hc_fake_clock_now(void *ctx);
void hc_fake_clock_advance(hc_fake_clock *fc, uint64_t ms);

/* Poll cond(ctx) every millisecond until true or timeout_ms; returns the last result. */
bool hc_test_wait_for(bool (*cond)(void *ctx), void *ctx, int timeout_ms);
uint64_t hc_test_now_us(void);

#endif
