/*
 * hcpg-sandbox - the hands-on lab of HydraCache: a JSON API and a web console
 * (/demo/ui) over a real cache, or runs scenario files (--run).  docs/SANDBOX.md.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hcpg-sandbox [--profile memory|postgres] [--dsn CONNINFO] [--bind ADDR]\n"
            "                    [--port N] [--token TOKEN] [--run SCENARIO.json]...\n"
            "  --profile memory    no database: an in-process table and bus (default)\n"
            "  --profile postgres  a PostgreSQL database with the hydracache extension:\n"
            "                      --dsn CONNINFO, or a throwaway cluster started (and removed)\n"
            "                      by the sandbox with pgcluster.sh (needs PostgreSQL 15 binaries)\n"
            "  --bind ADDR         numeric address to listen on (default 127.0.0.1)\n"
            "  --port N            TCP port (default 8089; 0 = any free port)\n"
            "  --token TOKEN       require Authorization: Bearer TOKEN (or HCPG_SANDBOX_TOKEN)\n"
            "  --run FILE          run a scenario file instead of serving; exit 1 when an\n"
            "                      assertion fails (repeatable)\n");
}

static char cluster_dir[256];
static char cluster_script[1024];

static const char *find_pgcluster(void)
{
    const char *env = getenv("HCPG_SANDBOX_PGCLUSTER");
    if (env != NULL && access(env, R_OK) == 0)
        return env;
    if (access(SB_PGCLUSTER, R_OK) == 0)
        return SB_PGCLUSTER;
    if (access(SB_SRC_PGCLUSTER, R_OK) == 0)
        return SB_SRC_PGCLUSTER;
    return NULL;
}

/* Start a throwaway cluster; returns a malloc'd conninfo or NULL. */
static char *start_cluster(void)
{
    const char *script = find_pgcluster();
    if (script == NULL) {
        fprintf(stderr, "hcpg-sandbox: pgcluster.sh not found (looked at %s); use --dsn\n",
                SB_PGCLUSTER);
        return NULL;
    }
    snprintf(cluster_script, sizeof cluster_script, "%s", script);
    snprintf(cluster_dir, sizeof cluster_dir, "/tmp/hcpg-sandbox-pg.XXXXXX");
    if (mkdtemp(cluster_dir) == NULL) {
        perror("hcpg-sandbox: mkdtemp");
        cluster_dir[0] = '\0';
        return NULL;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash '%s' start '%s'", cluster_script, cluster_dir);
    fprintf(stderr, "hcpg-sandbox: starting a throwaway PostgreSQL cluster in %s\n", cluster_dir);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    char line[1024], *dsn = NULL;
    while (fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "HC_TEST_DSN=", 12) == 0)
            dsn = strdup(line + 12);
    }
    if (pclose(p) != 0 || dsn == NULL) {
        fprintf(stderr, "hcpg-sandbox: could not start PostgreSQL (see above)\n");
        free(dsn);
        return NULL;
    }
    return dsn;
}

static void stop_cluster(void)
{
    if (cluster_dir[0] == '\0')
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash '%s' stop '%s'", cluster_script, cluster_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "hcpg-sandbox: stopping the cluster in %s failed\n", cluster_dir);
    cluster_dir[0] = '\0';
}

static int run_file(sb *s, const char *path)
{
    json_error_t je;
    json_t *scen = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (scen == NULL) {
        fprintf(stderr, "hcpg-sandbox: %s: %s (line %d)\n", path, je.text, je.line);
        return 1;
    }
    int failed;
    json_t *rep = sb_run_scenario(s, scen, &failed);
    printf("scenario %s (%s)\n", json_string_value(json_object_get(rep, "name")), path);
    if (json_is_string(json_object_get(rep, "error")))
        printf("  ERROR %s\n", json_string_value(json_object_get(rep, "error")));
    if (json_is_true(json_object_get(rep, "skipped")))
        printf("  SKIP (not for this profile)\n");
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(rep, "steps"), i, st) {
        const char *tag = json_is_true(json_object_get(st, "skipped")) ? "SKIP"
                          : json_is_true(json_object_get(st, "ok"))   ? "PASS"
                                                                      : "FAIL";
        printf("  %s %s %s %s\n", tag, json_string_value(json_object_get(st, "name")),
               json_string_value(json_object_get(st, "method")) ?: "",
               json_string_value(json_object_get(st, "path")) ?: "");
        size_t k;
        json_t *f;
        json_array_foreach(json_object_get(st, "failures"), k, f)
            printf("       %s\n", json_string_value(f));
        json_t *reply = json_object_get(st, "reply");
        if (json_array_size(json_object_get(st, "failures")) > 0 && reply != NULL) {
            char *t = json_dumps(reply, JSON_COMPACT);
            printf("       reply: %.3000s\n", t ? t : "?");
            free(t);
        }
    }
    printf("  %lld passed, %lld failed, %lld skipped\n",
           (long long)json_integer_value(json_object_get(rep, "passed")),
           (long long)json_integer_value(json_object_get(rep, "failed")),
           (long long)json_integer_value(json_object_get(rep, "skipped")));
    json_decref(rep);
    json_decref(scen);
    return failed != 0;
}

int main(int argc, char **argv)
{
    const char *profile = "memory", *dsn = NULL, *bind = "127.0.0.1";
    const char *token = getenv("HCPG_SANDBOX_TOKEN");
    long port = 8089;
    const char *runs[64];
    int nruns = 0;
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'P'}, {"dsn", required_argument, NULL, 'd'},
        {"bind", required_argument, NULL, 'b'},    {"port", required_argument, NULL, 'p'},
        {"token", required_argument, NULL, 't'},   {"run", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'P': profile = optarg; break;
        case 'd': dsn = optarg; break;
        case 'b': bind = optarg; break;
        case 't': token = optarg; break;
        case 'p': {
            char *end;
            port = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "hcpg-sandbox: --port must be 0..65535\n");
                return 2;
            }
            break;
        }
        case 'r':
            if (nruns == 64) {
                fprintf(stderr, "hcpg-sandbox: at most 64 --run files\n");
                return 2;
            }
            runs[nruns++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    sb_config cfg = {0};
    if (strcmp(profile, "memory") == 0) {
        cfg.profile = SB_PROFILE_MEMORY;
        if (dsn != NULL) {
            fprintf(stderr, "hcpg-sandbox: --dsn needs --profile postgres\n");
            return 2;
        }
    } else if (strcmp(profile, "postgres") == 0) {
        cfg.profile = SB_PROFILE_POSTGRES;
    } else {
        fprintf(stderr, "hcpg-sandbox: unknown profile '%s' (memory or postgres)\n", profile);
        return 2;
    }
    /* Block the stop signals in every thread; main waits for them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char *owned_dsn = NULL;
    if (cfg.profile == SB_PROFILE_POSTGRES && dsn == NULL) {
        if ((owned_dsn = start_cluster()) == NULL) {
            stop_cluster();
            return 1;
        }
        dsn = owned_dsn;
    }
    cfg.dsn = dsn;
    char err[1024];
    sb *s = sb_new(&cfg, err, sizeof err);
    if (s == NULL) {
        fprintf(stderr, "hcpg-sandbox: %s\n", err);
        stop_cluster();
        free(owned_dsn);
        return 1;
    }
    int rc = 0;
    if (nruns > 0) {
        for (int i = 0; i < nruns; i++)
            rc |= run_file(s, runs[i]);
    } else {
        sb_http *h = sb_http_start(s, bind, (unsigned short)port, token, err, sizeof err);
        if (h == NULL) {
            fprintf(stderr, "hcpg-sandbox: %s\n", err);
            rc = 1;
        } else {
            const char *host = strchr(bind, ':') ? "[::1]" : bind;
            printf("hcpg-sandbox: profile %s, listening on %s port %u\n", profile, bind,
                   (unsigned)sb_http_port(h));
            printf("hcpg-sandbox: console http://%s:%u/demo/ui  (Ctrl-C stops)\n", host,
                   (unsigned)sb_http_port(h));
            fflush(stdout);
            int sig;
            sigwait(&set, &sig);
            fprintf(stderr, "hcpg-sandbox: stopping\n");
            sb_http_stop(h);
        }
    }
    sb_free(s);
    stop_cluster();
    free(owned_dsn);
    return rc;
}
