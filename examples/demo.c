/*
 * demo.c - the whole HydraCache story against a real PostgreSQL:
 *   miss -> hit -> UPDATE by psql (knows nothing of HydraCache) -> the
 *   extension's trigger NOTIFYs -> the bus drops the entry -> reload, with stats.
 *
 *   ./demo "host=/tmp/sock port=5432 dbname=postgres"    (or set HC_DSN)
 *
 * Needs the hydracache extension installed in the server (make extension-install)
 * and psql on PATH.  scripts/demo.sh does all of it on a throwaway cluster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hydracache/hydracache.h>

static HC_ENTITY_DEF(USER, .name = "user", .collection = "users", .table = "demo_users",
                     .key_columns = {"id"}, .select = "SELECT id, name, email FROM demo_users WHERE id = $1",
                     .ttl_ms = 60000);

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sql(PGconn *conn, const char *q)
{
    PGresult *r = PQexec(conn, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "demo: %s: %s", q, PQerrorMessage(conn));
        PQclear(r);
        exit(1);
    }
    PQclear(r);
}

static void stats_line(hc_cache *cache)
{
    hc_stats s;
    hc_cache_stats(cache, &s);
    printf("           stats: hits=%llu misses=%llu loads=%llu tag-invalidations=%llu bus-received=%llu bus-applied=%llu\n",
           (unsigned long long)s.hits, (unsigned long long)s.misses, (unsigned long long)s.loads,
           (unsigned long long)s.invalidations_tag, (unsigned long long)s.bus_received,
           (unsigned long long)s.bus_applied);
}

/* Fetch user 42 through the cache and print it with the time it took. */
static int show_user(const char *step, hc_cache *cache, PGconn *conn)
{
    hc_error err;
    hc_query q = hc_query_for_entity(&USER, "42");
    double t0 = now_ms();
    PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
    double dt = now_ms() - t0;
    if (r == NULL) {
        fprintf(stderr, "demo: fetch: %s\n", err.message);
        return -1;
    }
    printf("%-10s user:42 name=%-8s (%.3f ms)\n", step, PQgetvalue(r, 0, 1), dt);
    PQclear(r);
    stats_line(cache);
    return 0;
}

/* Wait for the invalidation event of tag user:42 coming from the database. */
static int await_invalidation(hc_subscriber *sub, double since, const char *how)
{
    hc_event ev;
    for (;;) {
        hc_status st = hc_subscriber_recv(sub, &ev, 5000);
        if (st == HC_TIMEOUT) {
            fprintf(stderr, "demo: no invalidation within 5 s\n");
            return -1;
        }
        if (st == HC_OK && ev.kind == HC_EV_INVALIDATE_TAG && strcmp(ev.subject, "user:42") == 0) {
            printf("%-10s tag user:42 invalidated, origin=%s, %.3f ms after %s\n", "notify",
                   hc_origin_str(ev.origin), now_ms() - since, how);
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    const char *dsn = argc > 1 ? argv[1] : getenv("HC_DSN");
    if (dsn == NULL) {
        fprintf(stderr, "usage: demo CONNINFO\n");
        return 2;
    }
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "demo: connect: %s", PQerrorMessage(conn));
        return 1;
    }
    PQsetNoticeProcessor(conn, quiet, NULL);
    sql(conn, "CREATE EXTENSION IF NOT EXISTS hydracache");
    sql(conn, "DROP TABLE IF EXISTS demo_users");
    sql(conn, "CREATE TABLE demo_users (id int PRIMARY KEY, name text NOT NULL, email text)");
    sql(conn, "INSERT INTO demo_users VALUES (42, 'arthur', 'arthur@example.org'), (7, 'ford', NULL)");
    sql(conn, "SELECT hydracache.watch('demo_users', 'user', collection => 'users')");
    printf("setup      table demo_users watched: writes NOTIFY tags user:<id> and users\n");

    hc_error err;
    hc_cache *cache = hc_cache_new(&(hc_config){.name = "demo", .max_bytes = 16u << 20}, &err);
    /* HC_BUS_TRANSPORT=wal: invalidations through logical replication (scripts/demo.sh --wal). */
    const char *tr = getenv("HC_BUS_TRANSPORT");
    bool wal = tr != NULL && strcmp(tr, "wal") == 0;
    hc_pg_bus_config bcfg = {.conninfo = dsn, .transport = wal ? HC_PG_BUS_WAL : HC_PG_BUS_NOTIFY};
    hc_pg_bus *bus = cache ? hc_pg_bus_new(&bcfg, &err) : NULL;
    if (bus == NULL || hc_pg_bus_attach(bus, cache, &err) != HC_OK ||
        hc_pg_bus_wait_state(bus, HC_BUS_LISTENING, 10000) != HC_OK) {
        fprintf(stderr, "demo: setup: %s\n", err.message);
        return 1;
    }
    printf("bus        %s as node %s\n", wal ? "logical replication slot (WAL transport)" : "LISTEN hydracache",
           hc_pg_bus_node_id(bus));
    hc_subscriber *sub = hc_subscribe(cache, HC_EV_INVALIDATE_TAG, 64, &err);

    int rc = 0;
    rc |= show_user("miss", cache, conn);
    rc |= show_user("hit", cache, conn);

    /* A writer that knows nothing about HydraCache. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "psql '%s' -XAtq -c \"UPDATE demo_users SET name = 'zaphod' WHERE id = 42\"", dsn);
    printf("write      psql -c \"UPDATE demo_users SET name = 'zaphod' WHERE id = 42\"\n");
    double t0 = now_ms();
    if (system(cmd) != 0) {
        fprintf(stderr, "demo: psql failed\n");
        return 1;
    }
    rc |= await_invalidation(sub, t0, "psql started");
    printf("gone       hc_contains(user:42) -> %s\n",
           hc_contains(cache, "user:42", NULL) == HC_MISS ? "miss" : "STILL CACHED");
    rc |= show_user("reload", cache, conn);
    rc |= show_user("hit", cache, conn);

    /* The same write from a plain libpq connection: COMMIT -> entry gone. */
    PGconn *writer = PQconnectdb(dsn);
    double t1 = now_ms();
    sql(writer, "UPDATE demo_users SET name = 'trillian' WHERE id = 42");
    rc |= await_invalidation(sub, t1, "COMMIT was sent");
    rc |= show_user("reload", cache, conn);
    PQfinish(writer);

    hc_pg_bus_stats bs;
    hc_pg_bus_get_stats(bus, &bs);
    hc_diagnostics d;
    hc_cache_diagnostics(cache, &d);
    printf("summary    hit ratio %.2f, %zu entries, %zu bytes; bus: received=%llu malformed=%llu reconnects=%llu\n",
           hc_stats_hit_ratio(&d.stats), d.entries, d.bytes_used, (unsigned long long)bs.received,
           (unsigned long long)bs.malformed, (unsigned long long)bs.reconnects);

    hc_subscriber_free(sub);
    hc_pg_bus_free(bus);
    hc_cache_free(cache);
    sql(conn, "DROP TABLE demo_users");
    PQfinish(conn);
    return rc == 0 ? 0 : 1;
}
