/*
 * quickstart.c - cache an existing libpq query with HydraCache.
 *
 *   ./quickstart "host=/tmp dbname=app"      (or set HC_DSN)
 *
 * Creates a small `users` table if missing, then: miss, hit, UPDATE +
 * invalidation, reload.  The only change to the libpq code is the line that
 * used to call PQexecParams.
 */
#include <stdio.h>
#include <stdlib.h>

#include <hydracache/hydracache.h>

static void show(const char *step, hc_cache *cache, PGresult *r)
{
    hc_stats s;
    hc_cache_stats(cache, &s);
    printf("%-10s name=%-8s hits=%llu misses=%llu loads=%llu invalidations=%llu\n", step,
           r ? PQgetvalue(r, 0, 1) : "(error)", (unsigned long long)s.hits,
           (unsigned long long)s.misses, (unsigned long long)s.loads,
           (unsigned long long)s.invalidations_tag);
}

/* Before: PQexecParams(conn, "SELECT ... WHERE id = $1", 1, NULL, params, NULL, NULL, 0) */
static PGresult *find_user(hc_cache *cache, PGconn *conn, const char *id, hc_error *err)
{
    hc_query q = {.sql = "SELECT id, name, email FROM users WHERE id = $1", HC_PARAMS(id)};
    hc_query_entity(&q, "user", id); /* key and tag "user:<id>", tag "user:*" */
    return hc_pg_fetch_one(cache, conn, &q, err);
}

int main(int argc, char **argv)
{
    const char *dsn = argc > 1 ? argv[1] : getenv("HC_DSN");
    PGconn *conn = PQconnectdb(dsn ? dsn : "");
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    PQclear(PQexec(conn, "CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text, email text);"
                         "INSERT INTO users VALUES (42, 'arthur', 'arthur@example.org'),"
                         " (7, 'ford', 'ford@example.org') ON CONFLICT (id) DO NOTHING;"
                         "UPDATE users SET name = 'arthur' WHERE id = 42")); /* same story every run */

    hc_error err;
    hc_cache *cache = hc_cache_new(&(hc_config){.name = "quickstart"}, &err);
    if (cache == NULL) {
        fprintf(stderr, "cache: %s\n", err.message);
        PQfinish(conn);
        return 1;
    }

    PGresult *r = find_user(cache, conn, "42", &err); /* miss: runs the query */
    show("miss", cache, r);
    PQclear(r);

    r = find_user(cache, conn, "42", &err);           /* hit: no server round trip */
    show("hit", cache, r);
    PQclear(r);

    PQclear(PQexec(conn, "UPDATE users SET name = 'zaphod' WHERE id = 42"));
    hc_invalidate_tag(cache, "user:42", NULL);        /* the bus will do this for you */
    r = find_user(cache, conn, "42", &err);           /* reload: the new value */
    show("reload", cache, r);
    int ok = r != NULL;
    if (!ok) fprintf(stderr, "fetch: %s\n", err.message);
    PQclear(r);

    hc_cache_free(cache);
    PQfinish(conn);
    return ok ? 0 : 1;
}
