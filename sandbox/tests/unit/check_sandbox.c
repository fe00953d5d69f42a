/* check_sandbox.c - hcpg-sandbox's API over real HTTP on an ephemeral loopback
 * port (memory profile): raw operations, every demo flow, the event log
 * filters, benchmark + compare, scenarios, errors as 4xx JSON, the token rules,
 * the console's files, and the OpenAPI document against the routing table. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hc_test.h"
#include "sandbox.h"

typedef struct http_reply {
    int status;
    char *head;
    char *body;
    size_t len;
    json_t *json; /* body parsed as JSON, or NULL */
} http_reply;

static sb *S;
static sb_http *H, *HT; /* HT: the same sandbox behind a token */
static unsigned short port, tport;

static void reply_free(http_reply *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
}

/* One HTTP/1.0 request on a fresh connection. */
static http_reply http_raw(unsigned short p, const char *method, const char *path,
                           const char *body, size_t blen, const char *headers)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect %u", p);
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, path, body ? blen : 0, headers ? headers : "");
    ck_assert(n > 0 && (size_t)n < sizeof head);
    ck_assert_int_eq(write(fd, head, (size_t)n), n);
    for (size_t off = 0; body != NULL && off < blen;) {
        ssize_t w = write(fd, body + off, blen - off);
        if (w <= 0)
            break; /* the server may answer (413) and close before reading it all */
        off += (size_t)w;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - len < 4096)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    http_reply rep = {0};
    char *sep = strstr(buf, "\r\n\r\n");
    ck_assert_msg(sep != NULL, "no header end in: %s", buf);
    ck_assert_int_eq(sscanf(buf, "HTTP/1.%*d %d", &rep.status), 1);
    rep.head = strndup(buf, (size_t)(sep - buf));
    rep.len = len - (size_t)(sep + 4 - buf);
    rep.body = malloc(rep.len + 1);
    memcpy(rep.body, sep + 4, rep.len);
    rep.body[rep.len] = '\0';
    rep.json = json_loadb(rep.body, rep.len, 0, NULL);
    free(buf);
    return rep;
}

static http_reply http(const char *method, const char *path, const char *body)
{
    return http_raw(port, method, path, body, body ? strlen(body) : 0, NULL);
}

static const char *jstr(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = j;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && cur;
         seg = strtok_r(NULL, ".", &save))
        cur = isdigit((unsigned char)seg[0]) ? json_array_get(cur, (size_t)atoi(seg))
                                             : json_object_get(cur, seg);
    static __thread char out[512];
    if (cur == NULL)
        return "(absent)";
    if (json_is_string(cur))
        return json_string_value(cur);
    char *t = json_dumps(cur, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, sizeof out, "%s", t);
    free(t);
    return out;
}

#define ck_json(rep, path, want) ck_assert_str_eq(jstr((rep).json, (path)), (want))

/* Request, assert the status and then each ("dotted.path", "expected text") pair up to a
 * NULL; returns the reply for more checks (reply_free it). */
static http_reply check_req(const char *method, const char *path, const char *body, int status,
                            ...)
{
    http_reply r = http_raw(port, method, path, body, body ? strlen(body) : 0, NULL);
    ck_assert_msg(r.status == status, "%s %s: HTTP %d, expected %d: %s", method, path, r.status,
                  status, r.body);
    va_list ap;
    va_start(ap, status);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        const char *want = va_arg(ap, const char *);
        ck_assert_msg(strcmp(jstr(r.json, k), want) == 0, "%s %s: %s is %s, expected %s", method,
                      path, k, jstr(r.json, k), want);
    }
    va_end(ap);
    return r;
}
/* check_req and free the reply. */
#define EXPECT(...)                                                  \
    do {                                                             \
        http_reply r_ = check_req(__VA_ARGS__, (const char *)NULL);  \
        reply_free(&r_);                                             \
    } while (0)

/* A 4xx reply with a JSON {"error": "...", "status": code}. */
static void ck_error(http_reply *r, int code)
{
    ck_assert_int_eq(r->status, code);
    ck_assert_msg(r->json != NULL && json_is_string(json_object_get(r->json, "error")),
                  "no JSON error in: %s", r->body);
    ck_assert_int_eq(json_integer_value(json_object_get(r->json, "status")), code);
    ck_assert_msg(strstr(r->head, "application/json") != NULL, "type: %s", r->head);
}

/* One request answered with a JSON error of status code. */
static void expect_error(const char *method, const char *path, const char *body, int code)
{
    http_reply r = http(method, path, body);
    ck_error(&r, code);
    reply_free(&r);
}

static void setup(void)
{
    char err[512];
    S = sb_new(&(sb_config){.profile = SB_PROFILE_MEMORY}, err, sizeof err);
    ck_assert_msg(S != NULL, "%s", err);
    H = sb_http_start(S, "127.0.0.1", 0, NULL, err, sizeof err);
    ck_assert_msg(H != NULL, "%s", err);
    HT = sb_http_start(S, "127.0.0.1", 0, "s3cret", err, sizeof err);
    ck_assert_msg(HT != NULL, "%s", err);
    port = sb_http_port(H);
    tport = sb_http_port(HT);
}

static void teardown(void)
{
    sb_http_stop(H);
    sb_http_stop(HT);
    sb_free(S);
}

START_TEST(ready_and_reset)
{
    http_reply r = http("GET", "/ready", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_json(r, "ready", "true");
    ck_json(r, "profile", "memory");
    reply_free(&r);
    r = http("POST", "/demo/reset", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
}
END_TEST

START_TEST(raw_operations)
{
    EXPECT("POST", "/cache/put", "{\"key\":\"k\",\"value\":\"v\",\"tags\":[\"t\"]}", 200, "ok", "true");
    EXPECT("POST", "/cache/get", "{\"key\":\"k\"}", 200, "found", "true", "value", "v");
    EXPECT("POST", "/cache/contains", "{\"key\":\"k\"}", 200, "contains", "true");
    EXPECT("POST", "/cache/invalidate-tag", "{\"tag\":\"t\"}", 200, "ok", "true");
    EXPECT("POST", "/cache/get", "{\"key\":\"k\"}", 200, "found", "false", "status", "miss");
    /* get-or-load: the loader once, then the cache */
    EXPECT("POST", "/cache/get-or-load", "{\"key\":\"g\",\"value\":\"L\"}", 200, "source", "loader",
           "value", "L");
    EXPECT("POST", "/cache/get-or-load", "{\"key\":\"g\",\"value\":\"other\"}", 200, "source",
           "cache", "value", "L", "loader_calls", "0");
    EXPECT("POST", "/cache/remove", "{\"key\":\"g\"}", 200, "ok", "true");
    EXPECT("POST", "/cache/contains", "{\"key\":\"g\"}", 200, "contains", "false");
    /* a failing loader: an error reply (not a 4xx: the request was fine), not cached */
    EXPECT("POST", "/cache/get-or-load", "{\"key\":\"f\",\"fail\":true}", 200, "ok", "false",
           "source", "error", "status", hc_status_str(HC_ERR_LOADER));
    EXPECT("POST", "/cache/contains", "{\"key\":\"f\"}", 200, "contains", "false");
    /* node b and flush */
    EXPECT("POST", "/cache/put", "{\"key\":\"b1\",\"value\":\"x\",\"node\":\"b\"}", 200, "ok", "true");
    EXPECT("POST", "/cache/flush", "{\"node\":\"b\"}", 200, "ok", "true");
    EXPECT("POST", "/cache/get", "{\"key\":\"b1\",\"node\":\"b\"}", 200, "found", "false");
    /* TTL through the virtual clock */
    EXPECT("POST", "/cache/put", "{\"key\":\"t1\",\"value\":\"x\",\"ttl_ms\":5000}", 200, "ok", "true");
    EXPECT("POST", "/cache/clock/advance", "{\"ms\":5001}", 200, "advanced_ms", "5001");
    EXPECT("POST", "/cache/get", "{\"key\":\"t1\"}", 200, "found", "false");
    http_reply r = check_req("GET", "/cache/stats", NULL, 200, "a.cache", "sandbox", NULL);
    ck_assert_int_ge(atoi(jstr(r.json, "a.hits")), 1);
    reply_free(&r);
}
END_TEST

START_TEST(bad_requests_get_json_4xx)
{
    expect_error("POST", "/cache/put", "{not json", 400);
    expect_error("POST", "/cache/put", "[1,2]", 400);
    http_reply r = http("POST", "/cache/put", "{\"key\":\"k\"}");
    ck_error(&r, 400);
    ck_assert_msg(strstr(jstr(r.json, "error"), "value") != NULL, "%s", r.body);
    reply_free(&r);
    expect_error("POST", "/cache/put", "{\"key\":7,\"value\":\"v\"}", 400);
    expect_error("POST", "/cache/put", "{\"key\":\"\",\"value\":\"v\"}", 400);
    expect_error("POST", "/cache/put", "{\"key\":\"k\",\"value\":\"v\",\"tags\":\"t\"}", 400);
    expect_error("POST", "/cache/put", "{\"key\":\"k\",\"value\":\"v\",\"ttl_ms\":\"soon\"}", 400);
    expect_error("POST", "/cache/put", "{\"key\":\"k\",\"value\":\"v\",\"node\":\"c\"}", 400);
    char big[HC_MAX_KEY_LEN + 64];
    memset(big, 'x', sizeof big);
    char body[sizeof big + 64];
    snprintf(body, sizeof body, "{\"key\":\"%.*s\",\"value\":\"v\"}", (int)sizeof big - 1, big);
    expect_error("POST", "/cache/put", body, 400);
    expect_error("POST", "/demo/single-flight", "{\"loaders\":100000}", 400);
    expect_error("POST", "/demo/bench", "{\"distribution\":\"gauss\"}", 400);
    expect_error("GET", "/events?limit=0", NULL, 404);
    expect_error("GET", "/demo/events?limit=0", NULL, 400);
    expect_error("GET", "/nope", NULL, 404);
    expect_error("DELETE", "/cache/put", NULL, 405);
    r = http("POST", "/demo/query", "{\"table\":\"users\",\"id\":1}");
    ck_error(&r, 409); /* memory profile */
    reply_free(&r);
    size_t n = SB_BODY_MAX + 10;
    char *huge = malloc(n);
    memset(huge, ' ', n);
    r = http_raw(port, "POST", "/cache/put", huge, n, NULL);
    ck_error(&r, 413);
    reply_free(&r);
    free(huge);
    /* and the server still answers */
    r = http("GET", "/ready", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
}
END_TEST

START_TEST(golden_flow_memory)
{
    http_reply r = check_req("POST", "/demo/golden", "{\"id\":42}", 200, "ok", "true",
                             "steps.0.source", "database", "steps.0.value", "zaphod",
                             "steps.1.source", "cache", "steps.2.value", "trillian",
                             "steps.3.source", "bus", "steps.3.origin", "bus",
                             "steps.3.contains_after", "false", "steps.4.source", "database",
                             "steps.4.value", "trillian", NULL);
    long flow = (long)json_integer_value(json_object_get(r.json, "flow"));
    reply_free(&r);
    /* the flow's events carry its id */
    char path[128];
    snprintf(path, sizeof path, "/demo/events?flow=%ld&kind=invalidate_tag", flow);
    r = http("GET", path, NULL);
    json_t *ev = json_object_get(r.json, "events");
    ck_assert_int_ge(json_array_size(ev), 2); /* published by B, applied on A */
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        ck_assert_int_eq(json_integer_value(json_object_get(e, "flow")), flow);
        ck_assert_str_eq(json_string_value(json_object_get(e, "subject")), "user:42");
    }
    reply_free(&r);
}
END_TEST

START_TEST(demos_memory)
{
    EXPECT("POST", "/demo/single-flight", "{\"loaders\":16,\"delay_ms\":50}", 200, "ok", "true",
           "loader_calls", "1", "steps.0.same_value", "true");
    EXPECT("POST", "/demo/race", NULL, 200, "ok", "true", "stored", "false",
           "steps.3.stale_load_discards", "1", "steps.2.caller_got", "value-read-before-the-write",
           "steps.4.value", "value-read-after-the-write");
    EXPECT("POST", "/demo/ttl", "{\"ttl_ms\":1000}", 200, "ok", "true", "steps.1.found", "true",
           "steps.3.found", "false");
    EXPECT("POST", "/demo/negative", NULL, 200, "ok", "true", "steps.0.found", "false",
           "steps.1.cached", "false", "steps.2.loader_calls", "2", "steps.3.found", "false");
    EXPECT("POST", "/demo/two-node", "{\"id\":7,\"name\":\"slartibartfast\"}", 200, "ok", "true",
           "steps.2.a", "true", "steps.2.b", "true", "steps.6.a", "false", "steps.6.b", "false",
           "steps.8.value", "slartibartfast");
}
END_TEST

START_TEST(event_filters)
{
    http_reply r = http("POST", "/demo/reset", NULL);
    reply_free(&r);
    r = http("POST", "/cache/put", "{\"key\":\"e1\",\"value\":\"v\",\"tags\":[\"grp\"]}");
    reply_free(&r);
    r = http("POST", "/cache/put", "{\"key\":\"e2\",\"value\":\"v\"}");
    reply_free(&r);
    r = http("POST", "/cache/get", "{\"key\":\"e1\"}");
    reply_free(&r);
    r = http("POST", "/cache/invalidate-tag", "{\"tag\":\"grp\"}");
    reply_free(&r);
    r = http("GET", "/demo/events?kind=put", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "events")), 2);
    ck_json(r, "events.0.subject", "e1");
    ck_json(r, "events.1.subject", "e2");
    reply_free(&r);
    r = http("GET", "/demo/events?key=e1", NULL);
    json_t *ev = json_object_get(r.json, "events");
    ck_assert_int_ge(json_array_size(ev), 2); /* put, hit (and the tag's removal) */
    ck_json(r, "events.0.kind", "put");
    ck_json(r, "events.1.kind", "hit");
    reply_free(&r);
    r = http("GET", "/demo/events?tag=grp", NULL);
    ck_assert_int_ge(json_array_size(json_object_get(r.json, "events")), 1);
    ck_json(r, "events.0.kind", "invalidate_tag");
    reply_free(&r);
    r = http("GET", "/demo/events?limit=1", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "events")), 1);
    reply_free(&r);
    r = http("GET", "/demo/events?flow=999999", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "events")), 0);
    reply_free(&r);
    /* report and export */
    r = http("GET", "/demo/report", NULL);
    ck_json(r, "profile", "memory");
    ck_json(r, "events_by_kind.put", "2");
    reply_free(&r);
    r = http("GET", "/demo/export", NULL);
    ck_json(r, "format", "hcpg-sandbox-export/1");
    ck_json(r, "events.0.subject", "e1");
    reply_free(&r);
}
END_TEST

START_TEST(event_log_is_bounded)
{
    char body[96];
    for (int i = 0; i < SB_EVENT_LOG_MAX / 2 + 10; i++) {
        snprintf(body, sizeof body, "{\"key\":\"b%d\",\"value\":\"v\"}", i);
        sb_reply rep;
        json_t *j = json_loads(body, 0, NULL);
        sb_dispatch(S, "POST", "/cache/put", j, NULL, &rep); /* one event: put */
        sb_reply_free(&rep);
        sb_dispatch(S, "POST", "/cache/get", j, NULL, &rep); /* one event: hit */
        sb_reply_free(&rep);
        json_decref(j);
    }
    http_reply r = http("GET", "/demo/events?limit=2000", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "events")), SB_EVENT_LOG_MAX);
    ck_assert_int_gt(atoi(jstr(r.json, "total")), SB_EVENT_LOG_MAX);
    reply_free(&r);
}
END_TEST

START_TEST(bench_and_compare)
{
    http_reply r = http("POST", "/demo/bench/compare", NULL);
    ck_error(&r, 404); /* no runs yet */
    reply_free(&r);
    r = http("POST", "/demo/bench",
             "{\"requests\":3000,\"concurrency\":3,\"keys\":50,\"distribution\":\"hot\",\"label\":\"x\"}");
    ck_assert_int_eq(r.status, 200);
    ck_json(r, "errors", "0");
    ck_json(r, "loads", "50");
    /* a caller joining another's load counts as a miss too: only the sum is exact */
    ck_assert_int_eq(atoi(jstr(r.json, "hits")) + atoi(jstr(r.json, "misses")), 3000);
    ck_assert_int_ge(atoi(jstr(r.json, "misses")), 50);
    double p50 = json_number_value(json_object_get(json_object_get(r.json, "latency_us"), "p50"));
    double p99 = json_number_value(json_object_get(json_object_get(r.json, "latency_us"), "p99"));
    ck_assert(p50 > 0 && p50 <= p99);
    reply_free(&r);
    r = http("POST", "/demo/bench", "{\"requests\":1000,\"concurrency\":2,\"keys\":1000,\"distribution\":\"zipf\"}");
    ck_json(r, "errors", "0");
    ck_json(r, "id", "2");
    reply_free(&r);
    r = http("POST", "/demo/bench/compare", "{\"a\":1,\"b\":2}");
    ck_assert_int_eq(r.status, 200);
    const char *v = jstr(r.json, "verdict");
    ck_assert_msg(strcmp(v, "b faster") == 0 || strcmp(v, "b slower") == 0 ||
                  strcmp(v, "no clear difference") == 0, "%s", v);
    ck_assert_str_ne(jstr(r.json, "delta_pct.p95"), "(absent)");
    reply_free(&r);
    expect_error("POST", "/demo/bench/compare", "{\"a\":1,\"b\":77}", 404);
    r = http("GET", "/demo/bench", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "runs")), 2);
    reply_free(&r);
}
END_TEST

START_TEST(scenarios_from_the_api)
{
    http_reply r = http("GET", "/demo/scenarios", NULL);
    ck_assert_int_ge(json_array_size(json_object_get(r.json, "scenarios")), 3);
    reply_free(&r);
    r = http("POST", "/demo/scenario/run", "{\"file\":\"scenarios/golden.json\"}");
    ck_assert_int_eq(r.status, 200);
    ck_json(r, "ok", "true");
    ck_json(r, "failed", "0");
    reply_free(&r);
    /* a failing assertion is reported, with the reason */
    r = http("POST", "/demo/scenario/run",
             "{\"scenario\":{\"name\":\"f\",\"steps\":[{\"method\":\"POST\",\"path\":\"/cache/get\","
             "\"body\":{\"key\":\"nope\"},\"expect\":{\"json\":{\"found\":true}}},"
             "{\"method\":\"GET\",\"path\":\"/ready\",\"expect\":{\"status\":200,"
             "\"json\":{\"profile\":{\"$ne\":\"postgres\"}}}}]}}");
    ck_assert_int_eq(r.status, 200);
    ck_json(r, "ok", "false");
    ck_json(r, "failed", "1");
    ck_json(r, "passed", "1");
    ck_json(r, "steps.0.failures.0", "found: expected true, got false");
    reply_free(&r);
    expect_error("POST", "/demo/scenario/run", "{\"scenario\":{\"steps\":5}}", 400);
    expect_error("POST", "/demo/scenario/run", "{\"file\":\"ui/app.js\"}", 404);
}
END_TEST

START_TEST(metrics_and_actuator)
{
    http_reply r = http("GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.head, "text/plain; version=0.0.4") != NULL, "%s", r.head);
    ck_assert_msg(strstr(r.body, "hydracache_") != NULL && strstr(r.body, "sandbox") != NULL,
                  "%s", r.body);
    reply_free(&r);
    r = http("GET", "/actuator/hydracache/health", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_json(r, "status", "UP");
    reply_free(&r);
    r = http("GET", "/actuator/hydracache/caches", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "sandbox-b") != NULL, "%s", r.body);
    reply_free(&r);
    r = http("GET", "/actuator/hydracache/caches/sandbox-b/diagnostics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_json(r, "name", "sandbox-b");
    reply_free(&r);
    expect_error("GET", "/actuator/hydracache/caches/none/stats", NULL, 404);
    r = http("GET", "/actuator/hydracache/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
}
END_TEST

START_TEST(token_rules)
{
    http_reply r = http_raw(tport, "GET", "/ready", NULL, 0, NULL);
    ck_error(&r, 401);
    ck_assert_msg(strstr(r.head, "WWW-Authenticate: Bearer") != NULL, "%s", r.head);
    reply_free(&r);
    r = http_raw(tport, "GET", "/ready", NULL, 0, "Authorization: Bearer s3cre\r\n");
    ck_error(&r, 401);
    reply_free(&r);
    r = http_raw(tport, "GET", "/ready", NULL, 0, "Authorization: Bearer s3cret2\r\n");
    ck_error(&r, 401);
    reply_free(&r);
    r = http_raw(tport, "GET", "/ready", NULL, 0, "Authorization: Bearer s3cret\r\n");
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    /* the console's static files hold no data and load without it */
    r = http_raw(tport, "GET", "/demo/ui", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    r = http_raw(tport, "POST", "/demo/ui", NULL, 0, NULL);
    ck_error(&r, 401);
    reply_free(&r);
}
END_TEST

START_TEST(console_files)
{
    http_reply r = http("GET", "/demo/ui", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.head, "text/html") != NULL, "%s", r.head);
    ck_assert_msg(strstr(r.body, "<canvas id=\"chart\"") != NULL, "no chart");
    ck_assert_msg(strstr(r.body, "id=\"btn-golden\"") != NULL, "no golden button");
    ck_assert_msg(strstr(r.body, "http://") == NULL && strstr(r.body, "https://") == NULL,
                  "the console must not load anything from elsewhere");
    reply_free(&r);
    r = http("GET", "/demo/ui/app.js", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.head, "text/javascript") != NULL, "%s", r.head);
    ck_assert_msg(strstr(r.body, "button[data-demo]") != NULL, "app.js drives the demo buttons");
    reply_free(&r);
    r = http("GET", "/demo/ui/style.css", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
}
END_TEST

/* Every route is in /openapi.json with its method, and the document has no other. */
START_TEST(openapi_matches_routes)
{
    http_reply r = http("GET", "/openapi.json", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(r.json);
    ck_assert_str_eq(jstr(r.json, "openapi"), "3.0.3");
    json_t *paths = json_object_get(r.json, "paths");
    unsigned documented = 0;
    const char *p;
    json_t *item;
    json_object_foreach(paths, p, item) {
        const char *m;
        json_t *op;
        json_object_foreach(item, m, op) {
            documented++;
            bool found = false;
            for (unsigned i = 0; i < sb_nroutes; i++) {
                char lower[8];
                size_t k = 0;
                for (; sb_routes[i].method[k] && k < 7; k++)
                    lower[k] = (char)tolower((unsigned char)sb_routes[i].method[k]);
                lower[k] = '\0';
                found |= strcmp(sb_routes[i].path, p) == 0 && strcmp(lower, m) == 0;
            }
            ck_assert_msg(found, "%s %s is documented but not routed", m, p);
            ck_assert_msg(json_is_object(json_object_get(op, "responses")), "%s %s: no responses", m, p);
        }
    }
    for (unsigned i = 0; i < sb_nroutes; i++) {
        char m[8];
        size_t k = 0;
        for (; sb_routes[i].method[k] && k < 7; k++)
            m[k] = (char)tolower((unsigned char)sb_routes[i].method[k]);
        m[k] = '\0';
        ck_assert_msg(json_object_get(json_object_get(paths, sb_routes[i].path), m) != NULL,
                      "%s %s is routed but not documented", sb_routes[i].method, sb_routes[i].path);
    }
    ck_assert_int_eq(documented, sb_nroutes);
    reply_free(&r);
}
END_TEST

/* Every route with odd bodies: a reply below 500 (JSON for the API), never a crash. */
START_TEST(odd_bodies_on_every_route)
{
    static const char *bodies[] = {
        NULL, "{}", "{\"key\":null}", "{\"key\":{}}", "{\"key\":[]}", "{\"key\":\"k\",\"value\":1}",
        "{\"key\":\"a\\u0000b\",\"value\":\"v\"}", "{\"id\":-1}", "{\"id\":1e308}",
        "{\"ms\":9223372036854775807}", "{\"tags\":[1]}", "{\"tag\":\"\"}", "{\"requests\":\"10\"}",
        "{\"loaders\":true}", "{\"scenario\":[]}", "{\"scenario\":{\"steps\":[{}, 3]}}",
        "{\"file\":\"../../etc/passwd\"}", "{\"a\":1.5,\"b\":\"x\"}", "{\"table\":\"users\",\"id\":\"x\"}",
        "{\"delay_ms\":-5}", "{\"node\":7}", "{\"name\":{\"x\":1}}", "{\"fail\":\"yes\"}", "nul\x01l", "\"str\"",
    };
    for (unsigned i = 0; i < sb_nroutes; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s", sb_routes[i].path);
        char *brace = strstr(path, "{name}");
        if (brace != NULL) /* a cache name that does not exist */
            memcpy(brace, "nope..", 6);
        for (size_t k = 0; k < sizeof bodies / sizeof *bodies; k++) {
            http_reply r = http(sb_routes[i].method, path, bodies[k]);
            ck_assert_msg(r.status >= 200 && r.status < 500, "%s %s %s: HTTP %d %s",
                          sb_routes[i].method, path, bodies[k] ? bodies[k] : "(none)", r.status,
                          r.body);
            if (strstr(r.head, "application/json") != NULL)
                ck_assert_msg(r.json != NULL, "%s %s: not JSON: %s", sb_routes[i].method, path,
                              r.body);
            reply_free(&r);
        }
    }
    http_reply r = http("GET", "/ready", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
}
END_TEST

static void *client(void *arg)
{
    long id = (long)arg;
    char body[128];
    for (int i = 0; i < 30; i++) {
        snprintf(body, sizeof body, "{\"key\":\"c%ld-%d\",\"value\":\"v\",\"delay_ms\":1}", id, i % 5);
        http_reply r = http("POST", "/cache/get-or-load", body);
        if (r.status != 200 || strcmp(jstr(r.json, "ok"), "true") != 0) {
            reply_free(&r);
            return (void *)1;
        }
        reply_free(&r);
    }
    return NULL;
}

START_TEST(parallel_clients)
{
    pthread_t th[8];
    for (long i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, client, (void *)i), 0);
    for (int i = 0; i < 8; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        ck_assert_ptr_null(rv);
    }
    http_reply r = http("GET", "/cache/stats", NULL);
    ck_assert_int_eq(atoi(jstr(r.json, "a.loads")), 8 * 5); /* 5 keys per client */
    reply_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ready_and_reset);
    tcase_add_test(tc, raw_operations);
    tcase_add_test(tc, bad_requests_get_json_4xx);
    tcase_add_test(tc, golden_flow_memory);
    tcase_add_test(tc, demos_memory);
    tcase_add_test(tc, event_filters);
    tcase_add_test(tc, event_log_is_bounded);
    tcase_add_test(tc, bench_and_compare);
    tcase_add_test(tc, scenarios_from_the_api);
    tcase_add_test(tc, metrics_and_actuator);
    tcase_add_test(tc, token_rules);
    tcase_add_test(tc, console_files);
    tcase_add_test(tc, openapi_matches_routes);
    tcase_add_test(tc, parallel_clients);
    tcase_add_test(tc, odd_bodies_on_every_route);
    suite_add_tcase(s, tc);
    return hc_test_run_suite(s);
}
