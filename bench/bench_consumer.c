/*
 * bench_consumer.c - N PostgreSQL bus consumers (each its own hc_pg_bus with
 * one cache attached) that run until SIGTERM or SIGINT; the load other
 * benchmarks put on the server: bench/write_overhead.sh runs one while it
 * measures a transport, and for the server CPU per WAL consumer.
 *   bench_consumer notify|wal N    (conninfo from HC_TEST_DSN)
 * Prints "ready" on stdout once every bus is listening; on exit, the
 * invalidations each received, on stderr.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "hydracache/bus.h"

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "notify") != 0 && strcmp(argv[1], "wal") != 0)) {
        fprintf(stderr, "usage: bench_consumer notify|wal N   (conninfo from HC_TEST_DSN)\n");
        return 2;
    }
    int n = atoi(argv[2]);
    if (n < 1 || n > 64) bench_die("N must be 1-64");
    char *ci = bench_conninfo("HC_TEST_DSN");
    if (ci == NULL) return 1;
    hc_pg_bus **bus = calloc((size_t)n, sizeof *bus);
    hc_cache **cache = calloc((size_t)n, sizeof *cache);
    if (bus == NULL || cache == NULL) bench_die("out of memory");
    /* Blocked here, so also in every bus thread: sigwait below takes them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    for (int i = 0; i < n; i++) {
        hc_error err;
        hc_pg_bus_config cfg = {
            .conninfo = ci,
            .transport = strcmp(argv[1], "wal") == 0 ? HC_PG_BUS_WAL : HC_PG_BUS_NOTIFY,
        };
        bus[i] = hc_pg_bus_new(&cfg, &err);
        cache[i] = hc_cache_new(NULL, &err);
        if (bus[i] == NULL || cache[i] == NULL) bench_die("bus %d: %s", i, err.message);
        if (hc_pg_bus_attach(bus[i], cache[i], &err) != HC_OK) bench_die("attach: %s", err.message);
    }
    for (int i = 0; i < n; i++)
        if (hc_pg_bus_wait_state(bus[i], HC_BUS_LISTENING, 30000) != HC_OK)
            bench_die("bus %d did not start listening", i);
    printf("ready\n");
    fflush(stdout);
    int sig;
    sigwait(&sigs, &sig);
    for (int i = 0; i < n; i++) {
        hc_pg_bus_stats st;
        hc_pg_bus_get_stats(bus[i], &st);
        fprintf(stderr, "bench_consumer %s %d: received %llu, disconnects %llu\n", argv[1], i,
                (unsigned long long)st.received, (unsigned long long)st.disconnects);
        hc_pg_bus_free(bus[i]);
        hc_cache_free(cache[i]);
    }
    free(bus);
    free(cache);
    free(ci);
    return 0;
}
