/* check_actuator.c - the read-only HTTP actuator, spoken to over a plain
 * HTTP/1.0 socket client on an ephemeral loopback port: routes, status codes,
 * JSON content, methods and the bearer-token rules. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bus_int.h"
#include "hc_test.h"
#include "hydracache/registry.h"
#include "json_check.h"

#define BASE "/actuator/hydracache"

typedef struct http_reply {
    int status;
    char *head; /* status line + headers, NUL-terminated */
    char *body; /* NUL-terminated */
    size_t body_len;
} http_reply;

static void reply_free(http_reply *r)
{
    free(r->head);
    free(r->body);
}

/* A TCP connection to the actuator from source address src (NULL: any);
 * receives time out after recv_timeout_s so that a test fails, not hangs. */
static int connect_from(unsigned short port, const char *src, int recv_timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {.tv_sec = recv_timeout_s};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    if (src != NULL) {
        struct sockaddr_in me = {.sin_family = AF_INET};
        ck_assert_int_eq(inet_pton(AF_INET, src, &me.sin_addr), 1);
        ck_assert_msg(bind(fd, (struct sockaddr *)&me, sizeof me) == 0, "bind %s", src);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect to %u", port);
    return fd;
}

/* One request over a fresh connection from src (NULL: any); extra_headers
 * end in \r\n each.  status 0 (and empty head and body) when the server
 * closed the connection without a reply. */
static http_reply http_from(unsigned short port, const char *src, const char *method,
                            const char *path, const char *extra_headers)
{
    int fd = connect_from(port, src, 60);
    char req[1024];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: localhost\r\n%s\r\n", method, path,
                     extra_headers ? extra_headers : "");
    ck_assert(n > 0 && (size_t)n < sizeof req);
    ssize_t w = send(fd, req, (size_t)n, MSG_NOSIGNAL);
    ck_assert(w == n || (w < 0 && (errno == EPIPE || errno == ECONNRESET)));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == ECONNRESET && len == 0)
            break; /* closed without a reply */
        ck_assert_msg(r >= 0, "read: %s", strerror(errno));
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    http_reply rep = {0};
    if (len == 0) {
        rep.head = buf;
        rep.body = strdup("");
        return rep;
    }
    char *sep = strstr(buf, "\r\n\r\n");
    ck_assert_msg(sep != NULL, "no header end in: %s", buf);
    ck_assert_int_eq(sscanf(buf, "HTTP/1.%*d %d", &rep.status), 1);
    rep.head = strndup(buf, (size_t)(sep - buf) + 2);
    rep.body_len = len - (size_t)(sep + 4 - buf);
    rep.body = malloc(rep.body_len + 1);
    memcpy(rep.body, sep + 4, rep.body_len + 1);
    free(buf);
    return rep;
}

static http_reply http(unsigned short port, const char *method, const char *path,
                       const char *extra_headers)
{
    http_reply r = http_from(port, NULL, method, path, extra_headers);
    ck_assert_msg(r.status != 0, "%s %s: connection closed without a reply", method, path);
    return r;
}

/* Value of header name (case-insensitive) copied into out, or false. */
static bool header(const http_reply *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line != NULL && line[2] != '\0';
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            const char *end = strstr(h, "\r\n");
            snprintf(out, cap, "%.*s", (int)(end - h), h);
            return true;
        }
    }
    return false;
}

#define ck_assert_contains(hay, needle) \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "missing %s in:\n%s", (needle), (hay))

/* ------------------------------------------------------------- fixture */

static hc_registry *reg;
static hc_cache *users, *odd;
static hc_actuator *act;
static unsigned short port;

/* One request to the fixture's actuator that must get status; the reply is dropped. */
static void expect_status(const char *method, const char *path, const char *extra_headers,
                          int status)
{
    http_reply r = http(port, method, path, extra_headers);
    ck_assert_msg(r.status == status, "%s %s -> %d, want %d", method, path, r.status, status);
    reply_free(&r);
}

static void start_with_token(const char *token)
{
    hc_error err;
    reg = hc_registry_new(&err);
    ck_assert_ptr_nonnull(reg);
    users = hc_cache_new(&(hc_config){.name = "users"}, &err);
    odd = hc_cache_new(&(hc_config){.name = "a/b c"}, &err);
    ck_assert_ptr_nonnull(users);
    ck_assert_ptr_nonnull(odd);
    ck_assert_int_eq(hc_registry_add(reg, users, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_add(reg, odd, NULL), HC_OK);
    hc_actuator_config cfg = {.bearer_token = token};
    act = hc_actuator_start(reg, &cfg, &err);
    ck_assert_msg(act != NULL, "hc_actuator_start: %s", err.message);
    port = hc_actuator_port(act);
    ck_assert_uint_ne(port, 0);
}

static void setup(void)
{
    start_with_token(NULL);
}

static void setup_token(void)
{
    start_with_token("s3cret-token");
}

static void teardown(void)
{
    hc_actuator_stop(act);
    ck_assert_int_eq(hc_registry_remove(reg, users, NULL), HC_OK);
    ck_assert_int_eq(hc_registry_remove(reg, odd, NULL), HC_OK);
    hc_registry_free(reg);
    hc_cache_free(users);
    hc_cache_free(odd);
}

/* For the tests that start their own actuators: an empty registry. */
static hc_registry *bare;

static void setup_bare(void)
{
    bare = hc_registry_new(NULL);
    ck_assert_ptr_nonnull(bare);
}

static void teardown_bare(void)
{
    hc_registry_free(bare);
    bare = NULL;
}

/* ------------------------------------------------------------- routes */

START_TEST(test_health_is_200_up_when_no_cache_is_in_bypass)
{
    http_reply r = http(port, "GET", BASE "/health", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_valid(r.body));
    ck_assert_contains(r.body, "{\"status\":\"UP\"");
    char ct[128];
    ck_assert(header(&r, "Content-Type", ct, sizeof ct));
    ck_assert_str_eq(ct, "application/json");
    reply_free(&r);
}
END_TEST

START_TEST(test_health_is_503_down_while_a_cache_is_in_bypass)
{
    hc_cache_set_bypass(odd, true, HC_ORIGIN_LOCAL);
    http_reply r = http(port, "GET", BASE "/health", NULL);
    ck_assert_int_eq(r.status, 503);
    ck_assert(json_valid(r.body));
    ck_assert_contains(r.body, "{\"status\":\"DOWN\"");
    ck_assert_contains(r.body, "\"a/b c\":{\"status\":\"DOWN\"");
    reply_free(&r);
}
END_TEST

START_TEST(test_health_is_200_degraded_while_the_notify_queue_is_filling)
{
    hc_bus *bus = hc_local_bus_new("n1", NULL);
    ck_assert_int_eq(hc_bus_attach(bus, users, NULL), HC_OK);
    hc__bus_set_queue_usage(bus, 0.8); /* as a transport reports it */
    http_reply r = http(port, "GET", BASE "/health", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_valid(r.body));
    ck_assert_contains(r.body, "{\"status\":\"DEGRADED\"");
    ck_assert_contains(r.body, "\"users\":{\"status\":\"DEGRADED\"");
    reply_free(&r);
    hc_cache_set_bypass(odd, true, HC_ORIGIN_LOCAL);
    r = http(port, "GET", BASE "/health", NULL);
    ck_assert_int_eq(r.status, 503);
    ck_assert_contains(r.body, "{\"status\":\"DOWN\"");
    reply_free(&r);
    hc_bus_free(bus);
}
END_TEST

START_TEST(test_caches_lists_the_registered_caches)
{
    http_reply r = http(port, "GET", BASE "/caches", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_valid(r.body));
    ck_assert_contains(r.body, "{\"name\":\"users\",");
    ck_assert_contains(r.body, "{\"name\":\"a/b c\",");
    reply_free(&r);
}
END_TEST

START_TEST(test_cache_stats_report_the_counters_of_that_cache)
{
    hc_value *v = NULL;
    ck_assert_int_eq(hc_get(users, "user:1", &v, NULL), HC_MISS);
    http_reply r = http(port, "GET", BASE "/caches/users/stats", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_valid(r.body));
    ck_assert_contains(r.body, "{\"name\":\"users\",\"stats\":{\"hits\":0,\"misses\":1,");
    reply_free(&r);
}
END_TEST

START_TEST(test_cache_diagnostics_report_entries_and_bus_state)
{
    ck_assert_int_eq(hc_put(users, "user:1", "x", 1, NULL, NULL), HC_OK);
    http_reply r = http(port, "GET", BASE "/caches/users/diagnostics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_valid(r.body));
    ck_assert_contains(r.body, "{\"name\":\"users\",\"diagnostics\":{\"entries\":1,");
    ck_assert_contains(r.body, "\"bus_state\":\"none\",\"bypass\":false");
    reply_free(&r);
}
END_TEST

START_TEST(test_cache_names_are_percent_decoded_and_may_hold_slashes)
{
    http_reply r = http(port, "GET", BASE "/caches/a%2Fb%20c/stats", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_contains(r.body, "{\"name\":\"a/b c\",");
    reply_free(&r);
    expect_status("GET", BASE "/caches/a/b%20c/diagnostics", NULL, 200);
}
END_TEST

START_TEST(test_metrics_are_prometheus_text)
{
    http_reply r = http(port, "GET", BASE "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    char ct[128];
    ck_assert(header(&r, "Content-Type", ct, sizeof ct));
    ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_contains(r.body, "# TYPE hydracache_hits_total counter\n");
    ck_assert_contains(r.body, "hydracache_hits_total{cache=\"users\"} 0\n");
    ck_assert_contains(r.body, "hydracache_entries{cache=\"a/b c\"} 0\n");
    reply_free(&r);
}
END_TEST

START_TEST(test_unknown_cache_is_404)
{
    http_reply r = http(port, "GET", BASE "/caches/nope/stats", NULL);
    ck_assert_int_eq(r.status, 404);
    ck_assert(json_valid(r.body));
    reply_free(&r);
}
END_TEST

START_TEST(test_unknown_paths_are_404)
{
    static const char *paths[] = {"/", "/actuator", BASE, BASE "/", BASE "/healthz",
                                  BASE "/caches/", BASE "/caches/users", BASE "/caches/users/",
                                  BASE "/caches/users/keys", BASE "/caches//stats",
                                  BASE "/metrics/x", "/actuator/hydracachex/health"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        http_reply r = http(port, "GET", paths[i], NULL);
        ck_assert_msg(r.status == 404, "%s -> %d", paths[i], r.status);
        reply_free(&r);
    }
}
END_TEST

START_TEST(test_other_methods_are_405_with_allow_header)
{
    static const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        http_reply r = http(port, methods[i], BASE "/caches/users/stats", NULL);
        ck_assert_msg(r.status == 405, "%s -> %d", methods[i], r.status);
        char allow[64];
        ck_assert(header(&r, "Allow", allow, sizeof allow));
        ck_assert_str_eq(allow, "GET, HEAD");
        reply_free(&r);
    }
    /* a POST with a body changes nothing either */
    ck_assert_int_eq(hc_put(users, "user:1", "x", 1, NULL, NULL), HC_OK);
    http_reply r = http(port, "POST", BASE "/caches/users/stats",
                        "Content-Length: 5\r\n\r\nflush");
    ck_assert_int_eq(r.status, 405);
    reply_free(&r);
    ck_assert_int_eq(hc_contains(users, "user:1", NULL), HC_OK);
}
END_TEST

START_TEST(test_head_gets_headers_without_a_body)
{
    http_reply r = http(port, "HEAD", BASE "/caches", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    reply_free(&r);
}
END_TEST

/* ------------------------------------------------------------- token */

START_TEST(test_missing_token_is_401_with_challenge)
{
    http_reply r = http(port, "GET", BASE "/health", NULL);
    ck_assert_int_eq(r.status, 401);
    char h[128];
    ck_assert(header(&r, "WWW-Authenticate", h, sizeof h));
    ck_assert_str_eq(h, "Bearer realm=\"hydracache\"");
    ck_assert_ptr_null(strstr(r.body, "users"));
    reply_free(&r);
}
END_TEST

START_TEST(test_wrong_token_is_401)
{
    static const char *bad[] = {
        "Authorization: Bearer wrong\r\n",          "Authorization: Bearer s3cret-toke\r\n",
        "Authorization: Bearer s3cret-token2\r\n",  "Authorization: Basic s3cret-token\r\n",
        "Authorization: s3cret-token\r\n",          "Authorization: Bearer \r\n",
        /* exactly "Bearer <token>": no second space, no prefix, no suffix */
        "Authorization: Bearer  s3cret-token\r\n", "Authorization: xBearer s3cret-token\r\n",
        "Authorization: Bearer s3cret-tokenx\r\n", "Authorization: Bearers3cret-token\r\n",
        "Authorization: Bearer\ts3cret-token\r\n",  "Authorization: Bearer x s3cret-token\r\n",
        "Authorization: Bearer s3cret-token s3cret-token\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_reply r = http(port, "GET", BASE "/metrics", bad[i]);
        ck_assert_msg(r.status == 401, "%s -> %d", bad[i], r.status);
        reply_free(&r);
    }
}
END_TEST

START_TEST(test_right_token_is_accepted)
{
    http_reply r = http(port, "GET", BASE "/caches/users/stats",
                        "Authorization: Bearer s3cret-token\r\n");
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_valid(r.body));
    reply_free(&r);
    expect_status("GET", BASE "/metrics", "authorization: bearer s3cret-token\r\n", 200);
    expect_status("GET", BASE "/metrics", "Authorization: BEARER s3cret-token\r\n", 200);
}
END_TEST

START_TEST(test_token_is_checked_before_method_and_path)
{
    expect_status("DELETE", BASE "/nope", NULL, 401);
    expect_status("DELETE", BASE "/caches", "Authorization: Bearer s3cret-token\r\n", 405);
}
END_TEST

/* ------------------------------------------------------------- lifecycle */

START_TEST(test_start_rejects_bad_arguments)
{
    hc_error err;
    ck_assert(hc_actuator_available());
    ck_assert_ptr_null(hc_actuator_start(NULL, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    hc_actuator_config cfg = {.bind_address = "localhost"};
    ck_assert_ptr_null(hc_actuator_start(bare, &cfg, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_uint_eq(hc_actuator_port(NULL), 0);
    hc_actuator_stop(NULL);
}
END_TEST

START_TEST(test_start_fails_on_a_port_in_use)
{
    hc_error err;
    hc_actuator *a = hc_actuator_start(bare, NULL, &err);
    ck_assert_ptr_nonnull(a);
    hc_actuator_config cfg = {.port = hc_actuator_port(a)};
    ck_assert_ptr_null(hc_actuator_start(bare, &cfg, &err));
    ck_assert_int_eq(err.code, HC_ERR_SYSTEM);
    hc_actuator_stop(a);
}
END_TEST

START_TEST(test_ipv6_loopback_can_be_bound)
{
    hc_error err;
    hc_actuator_config cfg = {.bind_address = "::1"};
    hc_actuator *a = hc_actuator_start(bare, &cfg, &err);
    if (a == NULL) /* no IPv6 in this container: then it must say so as a system error */
        ck_assert_int_eq(err.code, HC_ERR_SYSTEM);
    else
        ck_assert_uint_ne(hc_actuator_port(a), 0);
    hc_actuator_stop(a);
}
END_TEST

/* Clients in parallel with cache traffic (for TSan). */
#define CLIENTS 4

static void *client(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        http_reply r = http(port, "GET", i % 2 ? BASE "/metrics" : BASE "/caches/users/stats",
                            NULL);
        ck_assert_int_eq(r.status, 200);
        reply_free(&r);
    }
    return NULL;
}

START_TEST(test_parallel_requests_during_cache_traffic)
{
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, client, NULL), 0);
    for (int i = 0; i < 500; i++) {
        char key[32];
        snprintf(key, sizeof key, "user:%d", i % 50);
        ck_assert_int_eq(hc_put(users, key, "v", 1, NULL, NULL), HC_OK);
    }
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    http_reply r = http(port, "GET", BASE "/caches/users/stats", NULL);
    ck_assert_contains(r.body, "\"puts\":500,");
    reply_free(&r);
}
END_TEST

/* ------------------------------------------------------------- slow clients */

/* A request that has sent its request line and one header, and stalls. */
static int slow_request(unsigned short p, const char *src)
{
    int fd = connect_from(p, src, 60);
    static const char part[] = "GET " BASE "/health HTTP/1.1\r\nHost: localhost\r\n";
    ssize_t w = send(fd, part, sizeof part - 1, MSG_NOSIGNAL);
    ck_assert(w == (ssize_t)(sizeof part - 1) ||
              (w < 0 && (errno == EPIPE || errno == ECONNRESET)));
    return fd;
}

static hc_actuator *start_cfg(hc_registry *r, hc_actuator_config cfg)
{
    hc_error err;
    hc_actuator *a = hc_actuator_start(r, &cfg, &err);
    ck_assert_msg(a != NULL, "hc_actuator_start: %s", err.message);
    return a;
}

#define SLOW 40

/* 40 stalled requests from 127.0.0.1 (over the 32-connection limit) used to
 * hold every connection; with 4 per address, a probe from 127.0.0.2 gets in,
 * and a 41st connection from 127.0.0.1 is closed without a reply. */
START_TEST(test_per_address_limit_keeps_probes_from_other_addresses_in)
{
    hc_actuator *a = start_cfg(bare, (hc_actuator_config){.max_connections = 32,
                                                           .per_ip_connections = 4,
                                                           .timeout_s = 120,
                                                           .request_timeout_s = 120});
    unsigned short p = hc_actuator_port(a);
    int fds[SLOW];
    for (int i = 0; i < SLOW; i++)
        fds[i] = slow_request(p, "127.0.0.1");
    http_reply rep = http_from(p, "127.0.0.2", "GET", BASE "/health", NULL);
    ck_assert_int_eq(rep.status, 200);
    ck_assert_contains(rep.body, "{\"status\":\"UP\"");
    reply_free(&rep);
    /* accepted after the 40 (the listen queue is FIFO): over its address's limit */
    rep = http_from(p, "127.0.0.1", "GET", BASE "/health", NULL);
    ck_assert_int_eq(rep.status, 0);
    reply_free(&rep);
    for (int i = 0; i < SLOW; i++)
        close(fds[i]);
    hc_actuator_stop(a);
}
END_TEST

/* True when the server closed fd (EOF or reset), false when it sent bytes. */
static bool closed_by_server(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    ck_assert_msg(n >= 0 || errno == ECONNRESET, "recv: %s", strerror(errno));
    return n <= 0;
}

/* A client that keeps sending a header line (so the idle timeout never
 * fires) is cut off by the whole-request deadline without a reply, and its
 * address's only connection slot is free again for a probe. */
START_TEST(test_a_request_that_never_finishes_is_closed_at_its_deadline)
{
    hc_actuator *a = start_cfg(bare, (hc_actuator_config){.per_ip_connections = 1,
                                                           .timeout_s = 120,
                                                           .request_timeout_s = 1});
    unsigned short p = hc_actuator_port(a);
    int fd = slow_request(p, "127.0.0.1");
    bool closed = false;
    /* generous bound (the deadline is 1 s, the idle timeout 120 s) */
    uint64_t give_up = hc_test_now_us() + 60 * 1000000ull;
    while (!closed && hc_test_now_us() < give_up) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) > 0) {
            ck_assert_msg(closed_by_server(fd), "the server answered a request it never got");
            closed = true;
        } else if (send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) < 0) {
            ck_assert(errno == EPIPE || errno == ECONNRESET);
            closed = true;
        }
    }
    ck_assert_msg(closed, "the slow request was not closed");
    close(fd);
    /* the slot is released once the server has cleaned up: retry for a while */
    http_reply rep = {0};
    for (int i = 0; i < 600 && rep.status == 0; i++) {
        reply_free(&rep);
        rep = http_from(p, "127.0.0.1", "GET", BASE "/health", NULL);
        if (rep.status == 0)
            usleep(100 * 1000);
    }
    ck_assert_int_eq(rep.status, 200);
    reply_free(&rep);
    hc_actuator_stop(a);
}
END_TEST

/* Prompt requests still get their full reply with a short deadline (a few
 * seconds: a loaded machine must not fail it), and stopping with a stalled
 * connection open returns. */
START_TEST(test_prompt_requests_are_served_under_a_short_deadline)
{
    hc_actuator *a = start_cfg(bare, (hc_actuator_config){.request_timeout_s = 5});
    unsigned short p = hc_actuator_port(a);
    int fd = slow_request(p, "127.0.0.1");
    for (int i = 0; i < 5; i++) {
        http_reply rep = http_from(p, "127.0.0.2", "GET", BASE "/metrics", NULL);
        ck_assert_int_eq(rep.status, 200);
        reply_free(&rep);
    }
    hc_actuator_stop(a);
    close(fd);
}
END_TEST

static Suite *actuator_suite(void)
{
    Suite *s = suite_create("actuator");
    TCase *tc = tcase_create("routes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_health_is_200_up_when_no_cache_is_in_bypass);
    tcase_add_test(tc, test_health_is_503_down_while_a_cache_is_in_bypass);
    tcase_add_test(tc, test_health_is_200_degraded_while_the_notify_queue_is_filling);
    tcase_add_test(tc, test_caches_lists_the_registered_caches);
    tcase_add_test(tc, test_cache_stats_report_the_counters_of_that_cache);
    tcase_add_test(tc, test_cache_diagnostics_report_entries_and_bus_state);
    tcase_add_test(tc, test_cache_names_are_percent_decoded_and_may_hold_slashes);
    tcase_add_test(tc, test_metrics_are_prometheus_text);
    tcase_add_test(tc, test_unknown_cache_is_404);
    tcase_add_test(tc, test_unknown_paths_are_404);
    tcase_add_test(tc, test_other_methods_are_405_with_allow_header);
    tcase_add_test(tc, test_head_gets_headers_without_a_body);
    tcase_add_test(tc, test_parallel_requests_during_cache_traffic);
    suite_add_tcase(s, tc);
    tc = tcase_create("token");
    tcase_add_checked_fixture(tc, setup_token, teardown);
    tcase_add_test(tc, test_missing_token_is_401_with_challenge);
    tcase_add_test(tc, test_wrong_token_is_401);
    tcase_add_test(tc, test_right_token_is_accepted);
    tcase_add_test(tc, test_token_is_checked_before_method_and_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("slow clients");
    tcase_add_checked_fixture(tc, setup_bare, teardown_bare);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_per_address_limit_keeps_probes_from_other_addresses_in);
    tcase_add_test(tc, test_a_request_that_never_finishes_is_closed_at_its_deadline);
    tcase_add_test(tc, test_prompt_requests_are_served_under_a_short_deadline);
    suite_add_tcase(s, tc);
    tc = tcase_create("lifecycle");
    tcase_add_checked_fixture(tc, setup_bare, teardown_bare);
    tcase_add_test(tc, test_start_rejects_bad_arguments);
    tcase_add_test(tc, test_start_fails_on_a_port_in_use);
    tcase_add_test(tc, test_ipv6_loopback_can_be_bound);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return hc_test_run_suite(actuator_suite());
}
