/*
 * sandbox.h - hcpg-sandbox internals (not installed): the sandbox context, its
 * routing table, the demos and the scenario runner.  docs/SANDBOX.md describes
 * the program; sandbox/openapi.json its HTTP API.
 *
 * Threading: sb_dispatch may be called from any number of threads at once (the
 * HTTP server runs one thread per connection).  Demo flows (POST /demo/...) are
 * serialized by sb->flow_lock so that their steps and event attribution stay
 * readable; raw cache operations are not.
 */
#ifndef HC_SANDBOX_H
#define HC_SANDBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include <hydracache/hydracache.h>

#define SB_EVENT_LOG_MAX 2000 /* bounded event log: oldest entries dropped */
#define SB_BENCH_RUNS_MAX 20  /* benchmark runs kept for compare */
#define SB_BODY_MAX (1u << 20)

typedef enum sb_profile { SB_PROFILE_MEMORY = 0, SB_PROFILE_POSTGRES = 1 } sb_profile;

typedef struct sb_config {
    sb_profile profile;
    const char *dsn;   /* postgres profile: the database (required by sb_new) */
} sb_config;

typedef struct sb_event {
    uint64_t id;         /* log sequence, 1, 2, ... */
    uint64_t flow;       /* demo flow collecting it, 0 = none */
    double t_ms;         /* cache clock, ms since the sandbox started */
    char cache[32];
    char kind[24];
    char origin[12];
    char subject[HC_EVENT_SUBJECT_MAX];
} sb_event;

typedef struct sb_bench_run sb_bench_run;

typedef struct sb {
    sb_profile profile;
    char *dsn;
    double t0_ms;
    uint64_t clock0_ms; /* the caches' clock at start */
    _Atomic uint64_t clock_offset_ms; /* virtual time added to the caches' clock */
    hc_registry *reg;
    hc_cache *a;       /* node A: "sandbox" */
    hc_cache *b;       /* node B: "sandbox-b" */
    hc_cache *bench;   /* "bench": benchmark runs only, not in the event log */
    hc_bus *local_bus; /* memory profile: A and B on one in-process bus */
    hc_pg_bus *pbus_a, *pbus_b; /* postgres profile: one PostgreSQL bus per node */
    hc_subscriber *sub_a, *sub_b;
    PGconn *conn;      /* reader connection of the query demos (under pg_lock) */
    PGconn *writer;    /* the "application that knows nothing of the cache" */
    pthread_mutex_t pg_lock;
    pthread_mutex_t flow_lock;
    /* memory profile: the in-process "users table" the loaders read */
    pthread_mutex_t table_lock;
    char mem_users[100][64];
    /* event log */
    pthread_mutex_t log_lock;
    sb_event *log;     /* ring of SB_EVENT_LOG_MAX */
    uint64_t log_next; /* id of the next event */
    uint64_t log_lost; /* subscriber lag reported by the library */
    _Atomic uint64_t flow_seq;
    uint64_t cur_flow; /* under log_lock */
    /* benchmark runs */
    pthread_mutex_t bench_lock;
    sb_bench_run *runs[SB_BENCH_RUNS_MAX];
    unsigned nruns;
    uint64_t run_seq;
    _Atomic uint64_t key_seq;
    _Atomic uint64_t loads; /* sandbox loader executions */
} sb;

/* A request as the routing table sees it (HTTP and scenarios alike). */
typedef struct sb_req {
    const char *method;
    const char *path;   /* without query string */
    json_t *query;      /* object of string values (never NULL) */
    json_t *body;       /* parsed JSON body or NULL when empty */
    char param[256];    /* the {name} segment of the route, if any */
} sb_req;

typedef struct sb_reply {
    int status;
    json_t *json;               /* JSON reply (owned), or */
    char *text;                 /* malloc'd text reply, or */
    const unsigned char *data;  /* static data (embedded asset) */
    size_t len;
    const char *type;           /* content type for text/data */
} sb_reply;

typedef void (*sb_handler)(sb *s, sb_req *req, sb_reply *rep);

typedef struct sb_route {
    const char *method;
    const char *path; /* may hold one "{name}" segment */
    sb_handler fn;
} sb_route;

extern const sb_route sb_routes[];
extern const unsigned sb_nroutes;

/* Embedded assets (generated at build time by sandbox/embed.sh). */
typedef struct sb_asset {
    const char *name;
    const unsigned char *data;
    size_t len;
} sb_asset;
extern const sb_asset sb_assets[];
extern const unsigned sb_nassets;
const sb_asset *sb_asset_find(const char *name);

/* Lifecycle.  NULL with a message in err on failure. */
sb *sb_new(const sb_config *cfg, char *err, size_t errcap);
void sb_free(sb *s);
/* Reset: flush caches, clear the event log, reseed the data. 0 or -1 (err). */
int sb_reset(sb *s, char *err, size_t errcap);

/* Route one request.  rep is filled (status + body); never fails. */
void sb_dispatch(sb *s, const char *method, const char *target, json_t *body, json_t *query,
                 sb_reply *rep);
void sb_reply_free(sb_reply *rep);

/* HTTP server (libmicrohttpd, a thread per connection). */
typedef struct sb_http sb_http;
sb_http *sb_http_start(sb *s, const char *bind, unsigned short port, const char *token,
                       char *err, size_t errcap);
unsigned short sb_http_port(const sb_http *h);
void sb_http_stop(sb_http *h);

/* Replies. */
void sb_json(sb_reply *rep, int status, json_t *j);              /* steals j */
void sb_error(sb_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* json_object_update(dst, src) that also drops src (a new reference: json_pack). */
void sb_update(json_t *dst, json_t *src);

/* Request helpers: 0 and the value, or -1 after setting a 400 reply. */
int sb_get_str(sb_req *req, sb_reply *rep, const char *name, bool required, const char **out);
int sb_get_int(sb_req *req, sb_reply *rep, const char *name, long long lo, long long hi,
               long long dflt, long long *out);

/* Events: move what the caches' subscribers hold into the log, tagged with flow. */
void sb_collect_events(sb *s);
uint64_t sb_flow_begin(sb *s);
void sb_flow_end(sb *s);
json_t *sb_events_json(sb *s, const char *kind, const char *key, const char *tag,
                       uint64_t flow, size_t limit);
double sb_now_ms(void);
json_t *sb_stats_json(hc_cache *c);

/* Demo handlers live in demos.c, bench.c, scenario.c. */
void sb_h_put(sb *, sb_req *, sb_reply *);
void sb_h_get(sb *, sb_req *, sb_reply *);
void sb_h_get_or_load(sb *, sb_req *, sb_reply *);
void sb_h_contains(sb *, sb_req *, sb_reply *);
void sb_h_remove(sb *, sb_req *, sb_reply *);
void sb_h_invalidate_tag(sb *, sb_req *, sb_reply *);
void sb_h_flush(sb *, sb_req *, sb_reply *);
void sb_h_clock_advance(sb *, sb_req *, sb_reply *);
void sb_h_golden(sb *, sb_req *, sb_reply *);
void sb_h_ttl(sb *, sb_req *, sb_reply *);
void sb_h_single_flight(sb *, sb_req *, sb_reply *);
void sb_h_race(sb *, sb_req *, sb_reply *);
void sb_h_negative(sb *, sb_req *, sb_reply *);
void sb_h_two_node(sb *, sb_req *, sb_reply *);
void sb_h_query(sb *, sb_req *, sb_reply *);
void sb_h_queries(sb *, sb_req *, sb_reply *);
void sb_h_bench(sb *, sb_req *, sb_reply *);
void sb_h_bench_list(sb *, sb_req *, sb_reply *);
void sb_h_bench_compare(sb *, sb_req *, sb_reply *);
void sb_bench_free_all(sb *s);
json_t *sb_bench_runs_json(sb *s);
void sb_h_scenarios(sb *, sb_req *, sb_reply *);
void sb_h_scenario_run(sb *, sb_req *, sb_reply *);

/* postgres profile: wait until both nodes applied every invalidation committed or
 * published so far (hc_pg_bus_sync on both buses); nothing in the memory profile,
 * whose in-process bus delivers synchronously. */
void sb_settle(sb *s);

/* Pg seeding (demos.c). */
int sb_pg_seed(sb *s, char *err, size_t errcap);

/* Run a scenario (a parsed JSON recipe); returns the report, *failed = failed steps. */
json_t *sb_run_scenario(sb *s, json_t *scenario, int *failed);

#endif
