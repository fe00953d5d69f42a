/*
 * hcpg.c - the HydraCache command-line tool:
 *   hcpg listen  print the invalidations on a channel, decoded, as they come
 *   hcpg stats   server-side facts: extension, watched tables, notify queue
 *   hcpg keys    an entity key and table tag, computed offline
 * Payloads are decoded by libhcpg's public wire parser (hc_wire_parse,
 * <hydracache/transport.h>), the one the bus uses, so what this prints is
 * exactly what the bus would apply.
 *
 * Exit codes: 0 success, 1 runtime failure (connection, query), 2 usage.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <hydracache/cache.h>
#include <hydracache/transport.h>

#define EXIT_USAGE 2
#define DEFAULT_CHANNEL "hydracache"

static const char usage_text[] =
    "usage: hcpg listen [--channel C] [--count N] CONNINFO\n"
    "       hcpg stats CONNINFO\n"
    "       hcpg keys ENTITY VALUE...\n"
    "       hcpg --help | --version\n"
    "\n"
    "listen  LISTEN on channel C (default " DEFAULT_CHANNEL ") and print each notification\n"
    "        decoded, one line each:  origin=<o> op=<tags|keys|flush|sync> <arg>...\n"
    "        (args are unescaped; an arg with spaces, quotes or control bytes is printed\n"
    "        in double quotes with C escapes), or  malformed: <reason>: <payload>.\n"
    "        Stops on SIGINT/SIGTERM, or after N notifications with --count.\n"
    "stats   print the hydracache extension version, its watched tables,\n"
    "        pg_notification_queue_usage() and the number of hydracache bus connections.\n"
    "keys    print the entity key and the table-wide tag of ENTITY with key VALUE...\n"
    "        (the same escaping as hc_key_build, docs/PROTOCOL.md).\n"
    "CONNINFO is a libpq connection string or URI.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "hcpg: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage_text);
    return EXIT_USAGE;
}

/* ------------------------------------------------------------- printing */

/* Prints arg as is when it is plain, else quoted with C escapes, so that a
 * notification always stays on one line. */
static void print_arg(const char *s, size_t len)
{
    bool plain = len > 0;
    for (size_t i = 0; i < len && plain; i++) {
        unsigned char c = (unsigned char)s[i];
        plain = c > 0x20 && c != 0x7F && c != '"';
    }
    if (plain) {
        fwrite(s, 1, len, stdout);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        default:
            if (c < 0x20 || c == 0x7F)
                printf("\\x%02x", c);
            else
                putchar(c);
        }
    }
    putchar('"');
}

static const char *op_name(hc_wire_op op)
{
    switch (op) {
    case HC_WIRE_TAGS: return "tags";
    case HC_WIRE_KEYS: return "keys";
    case HC_WIRE_FLUSH: return "flush";
    case HC_WIRE_SYNC: return "sync";
    }
    return "?";
}

static void print_notification(const char *payload)
{
    hc_wire_msg m;
    hc_error err;
    size_t len = strlen(payload);
    if (hc_wire_parse(payload, len, &m, &err) != HC_OK) {
        /* the parser's messages say "malformed payload: <why>"; keep the why */
        const char *why = err.message, *prefix = "malformed payload: ";
        if (strncmp(why, prefix, strlen(prefix)) == 0)
            why += strlen(prefix);
        printf("malformed: %s: ", why);
        print_arg(payload, len);
        putchar('\n');
        hc_wire_msg_clear(&m);
        return;
    }
    printf("origin=%s op=%s", m.origin, op_name(m.op));
    for (size_t i = 0; i < m.nargs; i++) {
        putchar(' ');
        print_arg(m.args[i], m.arg_len[i]);
    }
    putchar('\n');
    hc_wire_msg_clear(&m);
}

/* ------------------------------------------------------------- listen */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static PGconn *connect_or_report(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "hcpg: cannot connect: %s", conn ? PQerrorMessage(conn) : "out of memory\n");
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static bool channel_valid(const char *ch)
{
    size_t n = strlen(ch);
    return n >= 1 && n <= 63;
}

static int cmd_listen(const char *conninfo, const char *channel, long count)
{
    /* The signals stay blocked except inside ppoll, so one arriving between
     * the stop check and the wait cannot be missed. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);

    PGconn *conn = connect_or_report(conninfo);
    if (conn == NULL)
        return EXIT_FAILURE;
    char *ident = PQescapeIdentifier(conn, channel, strlen(channel));
    char sql[160];
    snprintf(sql, sizeof sql, "LISTEN %s", ident ? ident : "\"\"");
    PQfreemem(ident);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "hcpg: %s failed: %s", sql, PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return EXIT_FAILURE;
    }
    PQclear(res);
    /* stderr, so stdout holds only notifications; scripts wait for this line */
    fprintf(stderr, "hcpg: listening on channel %s\n", channel);

    int rc = EXIT_SUCCESS;
    long seen = 0;
    while (!stop_signal && (count < 0 || seen < count)) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (ppoll(&pfd, 1, NULL, &waitmask) < 0) {
            if (errno == EINTR)
                continue;
            perror("hcpg: ppoll");
            rc = EXIT_FAILURE;
            break;
        }
        if (!PQconsumeInput(conn)) {
            fprintf(stderr, "hcpg: connection lost: %s", PQerrorMessage(conn));
            rc = EXIT_FAILURE;
            break;
        }
        PGnotify *n;
        while ((count < 0 || seen < count) && (n = PQnotifies(conn)) != NULL) {
            print_notification(n->extra);
            PQfreemem(n);
            seen++;
        }
        fflush(stdout);
    }
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------- stats */

/* A query returning rows; NULL (after a message on stderr) on failure. */
static PGresult *query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "hcpg: query failed: %s", PQerrorMessage(conn));
        PQclear(res);
        return NULL;
    }
    return res;
}

static int cmd_stats(const char *conninfo)
{
    PGconn *conn = connect_or_report(conninfo);
    if (conn == NULL)
        return EXIT_FAILURE;
    int rc = EXIT_FAILURE;
    PGresult *res = query(conn, "SELECT extversion FROM pg_catalog.pg_extension "
                                "WHERE extname = 'hydracache'", 0, NULL);
    if (res == NULL)
        goto out;
    bool have_ext = PQntuples(res) == 1;
    printf("extension hydracache %s\n", have_ext ? PQgetvalue(res, 0, 0) : "not installed");
    PQclear(res);

    if (have_ext) {
        res = query(conn,
                    "SELECT tbl::pg_catalog.text, entity, "
                    "pg_catalog.array_to_string(key_columns, ','), "
                    "coalesce(collection, '-'), "
                    "coalesce(pg_catalog.array_to_string(columns, ','), '*') "
                    "FROM hydracache.watched ORDER BY 1", 0, NULL);
        if (res == NULL)
            goto out;
        printf("watched_tables %d\n", PQntuples(res));
        for (int i = 0; i < PQntuples(res); i++)
            printf("watched %s entity=%s key=%s collection=%s columns=%s\n", PQgetvalue(res, i, 0),
                   PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                   PQgetvalue(res, i, 4));
        PQclear(res);
    }

    res = query(conn, "SELECT pg_catalog.pg_notification_queue_usage()", 0, NULL);
    if (res == NULL)
        goto out;
    printf("notify_queue_usage %s\n", PQgetvalue(res, 0, 0));
    PQclear(res);

    /* Listeners of another session are not visible in SQL; libhcpg buses
     * connect with application_name hydracache-bus by default, so count those
     * (a heuristic: an application may override the name). */
    res = query(conn, "SELECT count(*) FROM pg_catalog.pg_stat_activity "
                      "WHERE application_name = 'hydracache-bus' AND datname = current_database()",
                0, NULL);
    if (res == NULL)
        goto out;
    printf("bus_connections %s (backends named hydracache-bus; a heuristic)\n",
           PQgetvalue(res, 0, 0));
    PQclear(res);
    rc = EXIT_SUCCESS;
out:
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------- keys */

static int cmd_keys(int nsegs, char **segs)
{
    char key[HC_MAX_KEY_LEN + 1], tag[HC_MAX_KEY_LEN + 1];
    hc_error err;
    if (hc_key_build(key, sizeof key, NULL, (const char *const *)segs, (size_t)nsegs, &err) != HC_OK ||
        hc_key_table_tag(tag, sizeof tag, segs[0], &err) != HC_OK) {
        fprintf(stderr, "hcpg: %s\n", err.message);
        return EXIT_FAILURE;
    }
    printf("key %s\ntable_tag %s\n", key, tag);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("%s", "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("hcpg " HC_VERSION_STRING);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "keys") == 0) {
        if (argc < 4)
            return usage_error("%s", "keys needs ENTITY and at least one VALUE");
        return cmd_keys(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "listen") != 0 && strcmp(cmd, "stats") != 0)
        return usage_error("unknown command '%s'", cmd);

    const char *channel = DEFAULT_CHANNEL, *conninfo = NULL;
    long count = -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--channel") == 0 || strcmp(a, "--count") == 0) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", a);
            if (strcmp(cmd, "listen") != 0)
                return usage_error("%s is an option of listen only", a);
            const char *v = argv[++i];
            if (strcmp(a, "--channel") == 0) {
                if (!channel_valid(v))
                    return usage_error("bad channel '%s' (1 to 63 bytes)", v);
                channel = v;
            } else {
                char *end;
                errno = 0;
                count = strtol(v, &end, 10);
                if (errno || *end || end == v || count < 1)
                    return usage_error("bad --count '%s' (a positive number)", v);
            }
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("unknown option '%s'", a);
        } else if (conninfo == NULL) {
            conninfo = a;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (conninfo == NULL)
        return usage_error("%s needs CONNINFO", cmd);
    return strcmp(cmd, "listen") == 0 ? cmd_listen(conninfo, channel, count)
                                      : cmd_stats(conninfo);
}
