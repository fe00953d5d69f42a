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
