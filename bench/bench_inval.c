/*
 * bench_inval.c - scenario "invalidation": COMMIT of an UPDATE on a watched
 * table -> the cached entry is gone in another process.  The other process is
 * a forked child with its own cache and PostgreSQL bus; it caches the probe
 * entry, then waits on an event subscriber (hc_subscribe) for the entry's
 * invalidation, checks the entry is gone and reports the CLOCK_MONOTONIC time
 * (shared by both processes) through a pipe.  Measured at idle and while a
 * writer thread commits ~1,000 UPDATEs/s on other rows of the same table, for
 * each transport: LISTEN/NOTIFY (hydracache.transport = notify) and logical
 * replication (the bus's WAL transport, hydracache.transport = wal; skipped
 * when wal_level is not logical).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "hydracache/bus.h"
#include "hydracache/cache.h"

#define TABLE "bench_inval"
#define ENTITY "binv"
#define PROBE_IDS 10000u     /* probes use ids 1..PROBE_IDS */
#define LOAD_IDS 10000u      /* the writer uses ids PROBE_IDS+1..PROBE_IDS+LOAD_IDS */
#define REPORT_TIMEOUT_MS 3000
#define WRITE_RATE 1000.0
#define PROBE_GAP_NS 2000000L /* 2 ms between probes */

/* Parent -> child: probe id (0 = exit).  Child -> parent: one report per command. */
typedef struct report {
    uint32_t id;
    int32_t status;   /* 0 = entry gone, 1 = timed out, 2 = entry cached (ack of a put) */
    uint64_t t_ns;    /* CLOCK_MONOTONIC when the child saw the entry gone */
} report;

static bool write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* ------------------------------------------------------------ the child */

static void probe_key(uint32_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, ENTITY ":%u", id);
}

/* Waits for the invalidation of key; returns the time it was seen gone, 0 on timeout. */
static uint64_t await_gone(hc_cache *c, hc_subscriber *sub, const char *key)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)REPORT_TIMEOUT_MS * 1000000u;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= deadline) return 0;
        hc_event ev;
        hc_status st = hc_subscriber_recv(sub, &ev, (int)((deadline - now) / 1000000u) + 1);
        if (st == HC_TIMEOUT) continue;
        /* Any event (or a lag, which may have lost ours) may be the one: the
         * entry itself tells, whatever subject the bus gave the event. */
        if (hc_contains(c, key, NULL) == HC_MISS) return bench_now_ns();
    }
}

/* The child's PostgreSQL bus, listening and synced before any probe. */
static hc_pg_bus *bus_start(hc_cache *c, const char *conninfo, hc_pg_bus_transport t)
{
    hc_error err;
    hc_pg_bus_config cfg = {.conninfo = conninfo, .node_id = "bench-inval-child", .transport = t};
    hc_pg_bus *bus = hc_pg_bus_new(&cfg, &err);
    if (bus == NULL) bench_die("child: hc_pg_bus_new: %s", err.message);
    if (hc_pg_bus_attach(bus, c, &err) != HC_OK) bench_die("child: hc_pg_bus_attach: %s", err.message);
    if (hc_pg_bus_wait_state(bus, HC_BUS_LISTENING, 10000) != HC_OK)
        bench_die("child: the bus did not reach LISTENING");
    if (hc_pg_bus_sync(bus, 10000, &err) != HC_OK) bench_die("child: hc_pg_bus_sync: %s", err.message);
    return bus;
}

static int child_main(const char *conninfo, hc_pg_bus_transport transport, int cmd_fd, int rep_fd)
{
    hc_error err;
    hc_config cfg = {.name = "bench-inval-child"};
    hc_cache *c = hc_cache_new(&cfg, &err);
    if (c == NULL) bench_die("child: hc_cache_new: %s", err.message);
    hc_pg_bus *bus = bus_start(c, conninfo, transport);
    hc_subscriber *sub = hc_subscribe(c, HC_EV_INVALIDATE_TAG | HC_EV_INVALIDATE_KEY | HC_EV_FLUSH,
                                      65536, &err);
    if (sub == NULL) bench_die("child: hc_subscribe: %s", err.message);
    report ready = {.status = 2};
    if (!write_full(rep_fd, &ready, sizeof ready)) return 1;

    uint32_t id;
    while (read_full(cmd_fd, &id, sizeof id) && id != 0) {
        char key[64];
        probe_key(id, key, sizeof key);
        /* Cache the probe entry tagged as the adapter tags entity rows. */
        if (hc_put(c, key, "row", 3, HC_OPTS(.tags = HC_TAGS(key)), &err) != HC_OK)
            bench_die("child: hc_put: %s", err.message);
        if (hc_contains(c, key, NULL) != HC_OK) bench_die("child: probe entry not cached (bypass?)");
        report ack = {.id = id, .status = 2};
        if (!write_full(rep_fd, &ack, sizeof ack)) break;
        uint64_t t = await_gone(c, sub, key);
        report r = {.id = id, .status = t ? 0 : 1, .t_ns = t};
        if (!write_full(rep_fd, &r, sizeof r)) break;
    }
    hc_subscriber_free(sub);
    hc_pg_bus_detach(bus, c);
    hc_pg_bus_free(bus);
    hc_cache_free(c);
    return 0;
}

/* ------------------------------------------------------------ the writer */

typedef struct writer {
    const char *conninfo;
    const char *transport; /* hydracache.transport of the writer's session */
    const char *sync;      /* its synchronous_commit */
    volatile int stop;
    uint64_t writes, elapsed_ns;
    pthread_t tid;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    PGconn *conn = bench_connect(w->conninfo);
    if (conn == NULL) bench_die("writer: no database");
    char set[128];
    snprintf(set, sizeof set, "SET hydracache.transport = %s; SET synchronous_commit = %s",
             w->transport, w->sync);
    if (!bench_exec(conn, set)) bench_die("writer: %s failed", set);
    const uint64_t period = (uint64_t)(1e9 / WRITE_RATE);
    uint64_t start = bench_now_ns(), next = start;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        char id[16];
        snprintf(id, sizeof id, "%u", PROBE_IDS + 1 + (unsigned)(w->writes % LOAD_IDS));
        const char *vals[1] = {id};
        PGresult *r = PQexecParams(conn, "UPDATE " TABLE " SET v = v + 1 WHERE id = $1", 1, NULL,
                                   vals, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) bench_die("writer: %s", PQresultErrorMessage(r));
        PQclear(r);
        w->writes++;
        next += period;
        uint64_t now = bench_now_ns();
        if (next + 100000000u < now) next = now; /* fell far behind: do not burst */
        if (next > now) {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                                  .tv_nsec = (long)(next % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
    }
    w->elapsed_ns = bench_now_ns() - start;
    PQfinish(conn);
    return NULL;
}

/* ------------------------------------------------------------ the parent */

typedef struct phase {
    const char *name;
    bench_samples from_sent, from_ack; /* ns; from_ack clamps negatives to 0 */
    size_t ack_negative, timeouts;
    double write_rate;
    bench_summary s_sent, s_ack;
} phase;

static void exec_or_die(PGconn *conn, const char *sql)
{
    if (!bench_exec(conn, sql)) bench_die("setup failed");
}

static void run_phase(phase *ph, PGconn *conn, int cmd_fd, int rep_fd, size_t probes, bench_rng *rng)
{
    for (size_t i = 0; i < probes; i++) {
        uint32_t id = 1 + (uint32_t)(bench_rng_next(rng) % PROBE_IDS);
        report r;
        if (!write_full(cmd_fd, &id, sizeof id) || !read_full(rep_fd, &r, sizeof r) || r.status != 2)
            bench_die("child did not cache the probe");
        char idbuf[16];
        snprintf(idbuf, sizeof idbuf, "%u", id);
        const char *vals[1] = {idbuf};
        exec_or_die(conn, "BEGIN");
        PGresult *u = PQexecParams(conn, "UPDATE " TABLE " SET v = v + 1 WHERE id = $1", 1, NULL,
                                   vals, NULL, NULL, 0);
        if (PQresultStatus(u) != PGRES_COMMAND_OK) bench_die("UPDATE: %s", PQresultErrorMessage(u));
        PQclear(u);
        uint64_t t0 = bench_now_ns();
        exec_or_die(conn, "COMMIT");
        uint64_t t1 = bench_now_ns();
        if (!read_full(rep_fd, &r, sizeof r) || r.id != id) bench_die("lost the child's report");
        if (r.status != 0) {
            ph->timeouts++;
            continue;
        }
        bench_samples_add(&ph->from_sent, r.t_ns - t0);
        if (r.t_ns < t1) ph->ack_negative++;
        bench_samples_add(&ph->from_ack, r.t_ns > t1 ? r.t_ns - t1 : 0);
        /* Space the probes out: the load phase then lasts seconds, and one
         * probe's tail never overlaps the next. */
        struct timespec gap = {.tv_sec = 0, .tv_nsec = PROBE_GAP_NS};
        nanosleep(&gap, NULL);
    }
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (!bench_parse_args(argc, argv, &o, "invalidation latency: COMMIT -> entry gone elsewhere"))
        return 2;
    const size_t probes = o.quick ? 30 : 1000;
    char *ci = NULL;
    PGconn *conn = bench_connect_env("HC_TEST_DSN", &ci);

    char sql[512];
    exec_or_die(conn, "CREATE EXTENSION IF NOT EXISTS hydracache");
    exec_or_die(conn, "DROP TABLE IF EXISTS " TABLE);
    exec_or_die(conn, "CREATE TABLE " TABLE " (id int PRIMARY KEY, v int NOT NULL)");
    snprintf(sql, sizeof sql, "INSERT INTO " TABLE " SELECT g, 0 FROM generate_series(1, %u) g",
             PROBE_IDS + LOAD_IDS);
    exec_or_die(conn, sql);
    exec_or_die(conn, "SELECT hydracache.watch('" TABLE "', '" ENTITY "')");

    /* Each transport with synchronous_commit on (the default) and off: the
     * WAL transport only sees a commit once its WAL is flushed, which with
     * synchronous_commit = off is the WAL writer's business (wal_writer_delay,
     * 200 ms by default), so that case gets fewer probes. */
    enum { NCONF = 4 };
    static const char *const TNAME[NCONF] = {"notify_sync_on", "wal_sync_on", "notify_sync_off",
                                             "wal_sync_off"};
    static const char *const TRANSPORT[NCONF] = {"notify", "wal", "notify", "wal"};
    static const char *const SYNC[NCONF] = {"on", "on", "off", "off"};
    static const size_t DIV[NCONF] = {1, 1, 1, 10};
    PGresult *wl = PQexec(conn, "SELECT current_setting('wal_level')");
    bool logical = PQresultStatus(wl) == PGRES_TUPLES_OK && strcmp(PQgetvalue(wl, 0, 0), "logical") == 0;
    PQclear(wl);
    if (!logical) fprintf(stderr, "bench_inval: wal_level is not logical: WAL transport skipped\n");
    int ntransports = NCONF;
    phase phases[NCONF][2];
    memset(phases, 0, sizeof phases);
    for (int t = 0; t < ntransports; t++) {
        phases[t][0].name = "idle";
        phases[t][1].name = "under_load";
        if (!logical && strcmp(TRANSPORT[t], "wal") == 0) continue;
        snprintf(sql, sizeof sql, "SET hydracache.transport = %s; SET synchronous_commit = %s",
                 TRANSPORT[t], SYNC[t]);
        exec_or_die(conn, sql);
        int cmd[2], rep[2];
        if (pipe(cmd) != 0 || pipe(rep) != 0) bench_die("pipe: %s", strerror(errno));
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) bench_die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(cmd[1]);
            close(rep[0]);
            /* conn belongs to the parent: no PQfinish here, it would end the parent's session. */
            _exit(child_main(ci, strcmp(TRANSPORT[t], "wal") == 0 ? HC_PG_BUS_WAL : HC_PG_BUS_NOTIFY,
                             cmd[0], rep[1]));
        }
        close(cmd[0]);
        close(rep[1]);
        report ready;
        if (!read_full(rep[0], &ready, sizeof ready)) bench_die("child failed to start");

        phase *ph = phases[t];
        bench_rng rng;
        bench_rng_seed(&rng, 99);
        size_t n = probes / DIV[t] + 1;
        run_phase(&ph[0], conn, cmd[1], rep[0], n / 10 + 1, &rng); /* warm-up */
        bench_samples_free(&ph[0].from_sent);
        bench_samples_free(&ph[0].from_ack);
        ph[0].timeouts = ph[0].ack_negative = 0;
        run_phase(&ph[0], conn, cmd[1], rep[0], n, &rng);

        writer w = {.conninfo = ci, .transport = TRANSPORT[t], .sync = SYNC[t]};
        if (pthread_create(&w.tid, NULL, writer_main, &w) != 0) bench_die("pthread_create");
        struct timespec settle = {.tv_sec = 0, .tv_nsec = 200000000};
        nanosleep(&settle, NULL);
        run_phase(&ph[1], conn, cmd[1], rep[0], n, &rng);
        __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
        pthread_join(w.tid, NULL);
        ph[1].write_rate = (double)w.writes * 1e9 / (double)w.elapsed_ns;

        uint32_t bye = 0;
        write_full(cmd[1], &bye, sizeof bye);
        int wst = 0;
        waitpid(pid, &wst, 0);
        if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) bench_die("child failed");
        close(cmd[1]);
        close(rep[0]);

        for (int i = 0; i < 2; i++) {
            ph[i].s_sent = bench_summarise(&ph[i].from_sent);
            ph[i].s_ack = bench_summarise(&ph[i].from_ack);
            printf("invalidation %s %s: p50 %.0f us, p99 %.0f us (from COMMIT sent), %zu timeouts\n",
                   TNAME[t], ph[i].name, ph[i].s_sent.p50 / 1e3, ph[i].s_sent.p99 / 1e3,
                   ph[i].timeouts);
        }
    }

    bench_json j;
    if (!bench_json_start(&j, &o, "invalidation",
                          "COMMIT of an UPDATE on a watched table -> entry gone in another process "
                          "(forked child with its own cache + PostgreSQL bus, event subscriber)"))
        return 1;
    bench_json_obj(&j, "parameters");
    bench_json_int(&j, "probes_per_phase", (long long)probes);
    bench_json_num(&j, "gap_between_probes_ms", PROBE_GAP_NS / 1e6);
    bench_json_str(&j, "clock", "CLOCK_MONOTONIC, same machine, both processes");
    bench_json_str(&j, "from_commit_sent", "from just before COMMIT is sent to the child seeing the entry gone");
    bench_json_str(&j, "from_commit_ack", "from COMMIT returning to the writer (negative clamped to 0)");
    bench_json_num(&j, "load_target_writes_per_s", WRITE_RATE);
    bench_json_str(&j, "load", "one writer thread, autocommit UPDATE of other rows of the same watched table");
    bench_json_end(&j);
    bench_json_obj(&j, "results");
    for (int t = 0; t < ntransports; t++) {
        if (phases[t][0].from_sent.n == 0) continue;
        bench_json_obj(&j, TNAME[t]);
        for (int i = 0; i < 2; i++) {
            phase *ph = &phases[t][i];
            bench_json_obj(&j, ph->name);
            bench_json_summary(&j, "from_commit_sent_us", &ph->s_sent, 1000.0);
            bench_json_summary(&j, "from_commit_ack_us", &ph->s_ack, 1000.0);
            bench_json_int(&j, "seen_before_commit_returned", (long long)ph->ack_negative);
            bench_json_int(&j, "timeouts", (long long)ph->timeouts);
            if (i == 1) bench_json_num(&j, "achieved_writes_per_s", ph->write_rate);
            bench_json_end(&j);
        }
        bench_json_end(&j);
    }
    bench_json_end(&j);
    bench_json_obj(&j, "ratio");
    bool met = true;
    for (int t = 0; t < ntransports; t++) {
        if (phases[t][0].from_sent.n == 0) continue;
        char k[64];
        snprintf(k, sizeof k, "%s_idle_p99_ms", TNAME[t]);
        bench_json_num(&j, k, phases[t][0].s_sent.p99 / 1e6);
        snprintf(k, sizeof k, "%s_under_load_p99_ms", TNAME[t]);
        bench_json_num(&j, k, phases[t][1].s_sent.p99 / 1e6);
        if (t == 3) continue; /* WAL with asynchronous commit: see above, not a target */
        met = met && phases[t][0].s_sent.p99 <= 2e6 && phases[t][1].s_sent.p99 <= 2e6 &&
              phases[t][0].timeouts + phases[t][1].timeouts == 0;
    }
    bench_json_num(&j, "target_p99_ms", 2.0);
    bench_json_bool(&j, "meets_target", met);
    bench_json_end(&j);
    if (!bench_json_close(&j)) bench_die("cannot write invalidation.json");

    char path[4096];
    FILE *df = fopen(bench_out_path(&o, "invalidation.dat", path, sizeof path), "w");
    if (df == NULL) bench_die("cannot write %s", path);
    fprintf(df, "# percentile then idle_us under_load_us (from COMMIT sent) of notify and wal with "
                "synchronous_commit on\n");
    for (double p = 1; p <= 99.91; p += p < 99 ? 1 : 0.1) {
        fprintf(df, "%g", p);
        for (int t = 0; t < 2 && phases[t][0].from_sent.n > 0; t++)
            fprintf(df, " %g %g", bench_quantile(&phases[t][0].from_sent, p / 100) / 1000,
                    bench_quantile(&phases[t][1].from_sent, p / 100) / 1000);
        fprintf(df, "\n");
    }
    fclose(df);

    FILE *md = bench_md_open(&o, "invalidation");
    for (int t = 0; t < ntransports; t++) {
        for (int i = 0; i < 2 && phases[t][0].from_sent.n > 0; i++) {
            phase *ph = &phases[t][i];
            char what[96], ratio[64];
            snprintf(what, sizeof what, "invalidation latency (%s), %s", TNAME[t],
                     i ? "under load" : "idle");
            snprintf(ratio, sizeof ratio, "p99 %.2f ms", ph->s_sent.p99 / 1e6);
            char load[64] = "";
            if (i) snprintf(load, sizeof load, " at %.0f writes/s", ph->write_rate);
            bench_md_row(md, what, ratio, "p99 <= 2 ms", ph->s_sent.p99 <= 2e6 && ph->timeouts == 0,
                         "p50 %.0f us, p99 %.0f us%s, %zu lost", ph->s_sent.p50 / 1e3,
                         ph->s_sent.p99 / 1e3, load, ph->timeouts);
        }
    }
    fclose(md);

    for (int t = 0; t < ntransports; t++) {
        for (int i = 0; i < 2; i++) {
            bench_samples_free(&phases[t][i].from_sent);
            bench_samples_free(&phases[t][i].from_ack);
        }
    }
    PQfinish(conn);
    free(ci);
    return 0;
}
