/*
 * actuator.c - the read-only HTTP actuator over a registry (libmicrohttpd,
 * built with --with-actuator; otherwise hc_actuator_start reports
 * HC_ERR_STATE).  Routes and rules are in hydracache/registry.h and
 * docs/OBSERVABILITY.md.
 *
 * Order of checks for every request: token (401), method (405), path (404),
 * so nothing about the registry leaks to an unauthenticated client.
 *
 * Slow clients: libmicrohttpd bounds the connections (in all and per client
 * address) and the idle time, but not how long one request may take, so a
 * client sending a header line every few seconds could hold a connection
 * for ever.  A watchdog thread enforces a whole-request deadline: every
 * connection has a slot (taken when it is accepted, renewed when a request
 * completes on it, freed when it closes); once a slot is older than the
 * deadline its socket is shut down, which libmicrohttpd sees as the client
 * going away.  libmicrohttpd notifies the close before it closes the socket,
 * and both the notification and the watchdog hold the slot mutex, so the
 * watchdog never shuts down a descriptor that was reused.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "hydracache/registry.h"

#ifdef HC_WITH_ACTUATOR

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "clock.h"

#if MHD_VERSION < 0x00097002
typedef int hc_mhd_result;
#else
typedef enum MHD_Result hc_mhd_result;
#endif

#define PREFIX "/actuator/hydracache"
#define JSON_TYPE "application/json"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One open connection (see the comment at the top). */
typedef struct conn_slot {
    bool used;
    bool shut;         /* the watchdog shut it down */
    int fd;
    uint64_t start_ms; /* accepted, or its last request completed */
} conn_slot;

struct hc_actuator {
    struct MHD_Daemon *daemon;
    hc_registry *reg;
    char *token; /* NULL: no authentication */
    unsigned short port;
    uint64_t deadline_ms;
    pthread_mutex_t mu; /* guards slots and stopping */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC; signalled to stop the watchdog */
    conn_slot *slots;   /* max_connections of them */
    unsigned nslots;
    bool stopping;
    pthread_t watchdog;
};

HC_EXTERN bool hc_actuator_available(void)
{
    return true;
}

/* Compares in time independent of where the strings differ (only the
 * length of the expected token can be learnt from timing). */
static bool token_equal(const char *expected, const char *given)
{
    size_t n = strlen(expected), m = strlen(given);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return diff == 0;
}

/* Exactly "Bearer <token>": the scheme case-insensitively (RFC 7235), one
 * space, then the token compared in constant time over its whole length. */
static bool authorized(const hc_actuator *a, struct MHD_Connection *conn)
{
    if (a->token == NULL)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    return token_equal(a->token, h + 7);
}

/* ------------------------------------------------------- request deadline */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    hc_actuator *a = cls;
    pthread_mutex_lock(&a->mu);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_slot *slot = NULL;
        for (unsigned i = 0; i < a->nslots && slot == NULL; i++)
            if (!a->slots[i].used)
                slot = &a->slots[i];
        if (slot == NULL || ci == NULL) {
            /* Cannot happen while libmicrohttpd keeps its connection limit;
             * never serve a connection without a deadline. */
            if (ci != NULL)
                shutdown(ci->connect_fd, SHUT_RDWR);
            *socket_context = NULL;
        } else {
            *slot = (conn_slot){.used = true, .fd = ci->connect_fd,
                                .start_ms = hc__monotonic_ms()};
            *socket_context = slot;
        }
    } else if (*socket_context != NULL) {
        ((conn_slot *)*socket_context)->used = false;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&a->mu);
}

/* A request finished: the next one on this (keep-alive) connection gets a full deadline. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)con_cls;
    (void)toe;
    hc_actuator *a = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    pthread_mutex_lock(&a->mu);
    if (ci != NULL && ci->socket_context != NULL) {
        conn_slot *slot = ci->socket_context;
        if (slot->used && !slot->shut)
            slot->start_ms = hc__monotonic_ms();
    }
    pthread_mutex_unlock(&a->mu);
}

static void *watchdog_main(void *arg)
{
    hc_actuator *a = arg;
    /* Checks a few times per deadline, so a slow request lives at most ~1.25 deadlines. */
    int tick_ms = (int)(a->deadline_ms / 4 > 0 ? a->deadline_ms / 4 : 1);
    if (tick_ms > 1000)
        tick_ms = 1000;
    pthread_mutex_lock(&a->mu);
    while (!a->stopping) {
        uint64_t now = hc__monotonic_ms();
        for (unsigned i = 0; i < a->nslots; i++) {
            conn_slot *slot = &a->slots[i];
            if (slot->used && !slot->shut && now - slot->start_ms >= a->deadline_ms) {
                shutdown(slot->fd, SHUT_RDWR);
                slot->shut = true;
            }
        }
        struct timespec until = hc__deadline_after(tick_ms);
        pthread_cond_timedwait(&a->cv, &a->mu, &until);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Queues body (malloc'd, taken over; NULL -> a static error body). */
static hc_mhd_result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                           char *body, size_t len, const char *hname, const char *hvalue)
{
    struct MHD_Response *r;
    if (body != NULL) {
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (r == NULL)
            free(body);
    } else {
        const char *msg;
        switch (code) {
        case MHD_HTTP_UNAUTHORIZED: msg = "{\"error\":\"unauthorized\"}"; break;
        case MHD_HTTP_NOT_FOUND: msg = "{\"error\":\"not found\"}"; break;
        case MHD_HTTP_METHOD_NOT_ALLOWED: msg = "{\"error\":\"method not allowed\"}"; break;
        default: msg = "{\"error\":\"internal error\"}"; break;
        }
        r = MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
        type = JSON_TYPE;
    }
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (hname != NULL)
        MHD_add_response_header(r, hname, hvalue);
    hc_mhd_result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static hc_mhd_result reply_snapshot(struct MHD_Connection *conn, hc_status st, unsigned ok_code,
                                    const char *type, char *body, size_t len)
{
    if (st == HC_MISS)
        return reply(conn, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, NULL, NULL);
    if (st != HC_OK)
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
    return reply(conn, ok_code, type, body, len, NULL, NULL);
}

/* /caches/{name}/stats and /caches/{name}/diagnostics; the name may hold '/'. */
static hc_mhd_result route_cache(hc_actuator *a, struct MHD_Connection *conn, const char *rest)
{
    const char *slash = strrchr(rest, '/');
    if (slash == NULL || slash == rest)
        return reply(conn, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, NULL, NULL);
    hc_registry_section sec;
    if (strcmp(slash, "/stats") == 0)
        sec = HC_REGISTRY_STATS;
    else if (strcmp(slash, "/diagnostics") == 0)
        sec = HC_REGISTRY_DIAGNOSTICS;
    else
        return reply(conn, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, NULL, NULL);
    char *name = hc__strndup(rest, (size_t)(slash - rest));
    if (name == NULL)
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0, NULL, NULL);
    char *body = NULL;
    size_t len = 0;
    hc_status st = hc_registry_cache_json(a->reg, name, sec, &body, &len, NULL);
    free(name);
    return reply_snapshot(conn, st, MHD_HTTP_OK, JSON_TYPE, body, len);
}

static hc_mhd_result handle(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version, const char *upload_data,
                            size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    hc_actuator *a = cls;
    /* Any request body is ignored: the reply is queued on the first call. */
    *upload_data_size = 0;
    if (!authorized(a, conn))
        return reply(conn, MHD_HTTP_UNAUTHORIZED, NULL, NULL, 0, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                     "Bearer realm=\"hydracache\"");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, NULL, 0, MHD_HTTP_HEADER_ALLOW,
                     "GET, HEAD");
    size_t plen = strlen(PREFIX);
    if (strncmp(url, PREFIX, plen) != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, NULL, NULL);
    const char *path = url + plen;
    char *body = NULL;
    size_t len = 0;
    hc_status st;
    if (strcmp(path, "/health") == 0) {
        hc_health h = HC_HEALTH_DOWN;
        st = hc_registry_health_status(a->reg, &h, &body, &len, NULL);
        /* DEGRADED still serves correctly: 200, so load balancers keep it in. */
        return reply_snapshot(conn, st,
                              h == HC_HEALTH_DOWN ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
                              JSON_TYPE, body, len);
    }
    if (strcmp(path, "/caches") == 0) {
        st = hc_registry_caches_json(a->reg, &body, &len, NULL);
        return reply_snapshot(conn, st, MHD_HTTP_OK, JSON_TYPE, body, len);
    }
    if (strcmp(path, "/metrics") == 0) {
        st = hc_registry_prometheus(a->reg, &body, &len, NULL);
        return reply_snapshot(conn, st, MHD_HTTP_OK, PROM_TYPE, body, len);
    }
    if (strncmp(path, "/caches/", 8) == 0)
        return route_cache(a, conn, path + 8);
    return reply(conn, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, NULL, NULL);
}

HC_EXTERN hc_actuator *hc_actuator_start(hc_registry *reg, const hc_actuator_config *cfg,
                                         hc_error *err)
{
    static const hc_actuator_config defaults = {0};
    if (reg == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "hc_actuator_start: NULL registry");
        return NULL;
    }
    if (cfg == NULL)
        cfg = &defaults;
    const char *addr = cfg->bind_address != NULL ? cfg->bind_address : "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(cfg->port);
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        hc_error_set(err, HC_ERR_INVALID, "bind address '%s' is not a numeric IP address", addr);
        return NULL;
    }
    unsigned max_conn = cfg->max_connections ? cfg->max_connections : 32;
    unsigned per_ip = cfg->per_ip_connections ? cfg->per_ip_connections : 8;
    hc_actuator *a = hc__calloc(1, sizeof *a);
    if (a == NULL || (cfg->bearer_token != NULL && cfg->bearer_token[0] != '\0' &&
                      (a->token = hc__strdup(cfg->bearer_token)) == NULL) ||
        (a->slots = hc__calloc(max_conn, sizeof *a->slots)) == NULL) {
        if (a != NULL)
            free(a->token);
        free(a);
        hc_error_set(err, HC_ERR_NOMEM, "out of memory starting the actuator");
        return NULL;
    }
    a->reg = reg;
    a->nslots = max_conn;
    a->deadline_ms = 1000u * (uint64_t)(cfg->request_timeout_s ? cfg->request_timeout_s : 10);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool sync_ok = pthread_mutex_init(&a->mu, NULL) == 0;
    if (sync_ok && pthread_cond_init(&a->cv, &ca) != 0) {
        pthread_mutex_destroy(&a->mu);
        sync_ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (!sync_ok || pthread_create(&a->watchdog, NULL, watchdog_main, a) != 0) {
        if (sync_ok) {
            pthread_cond_destroy(&a->cv);
            pthread_mutex_destroy(&a->mu);
        }
        hc_error_set(err, HC_ERR_SYSTEM, "cannot start the actuator's watchdog thread");
        free(a->slots);
        free(a->token);
        free(a);
        return NULL;
    }
    a->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, handle, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->timeout_s ? cfg->timeout_s : 10),
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, a, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, a, MHD_OPTION_END);
    if (a->daemon == NULL) {
        hc_error_set(err, HC_ERR_SYSTEM, "cannot serve HTTP on %s port %u (address in use?)",
                     addr, (unsigned)cfg->port);
        hc_actuator_stop(a);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info != NULL ? info->port : cfg->port;
    return a;
}

HC_EXTERN unsigned short hc_actuator_port(const hc_actuator *a)
{
    return a != NULL ? a->port : 0;
}

HC_EXTERN void hc_actuator_stop(hc_actuator *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->watchdog, NULL);
    if (a->daemon != NULL)
        MHD_stop_daemon(a->daemon); /* closes the connections: their slots are released */
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->slots);
    free(a->token);
    free(a);
}

#else /* !HC_WITH_ACTUATOR */

struct hc_actuator {
    int unused;
};

HC_EXTERN bool hc_actuator_available(void)
{
    return false;
}

HC_EXTERN hc_actuator *hc_actuator_start(hc_registry *reg, const hc_actuator_config *cfg,
                                         hc_error *err)
{
    (void)reg;
    (void)cfg;
    hc_error_set(err, HC_ERR_STATE, "libhcpg was built without the actuator (--with-actuator)");
    return NULL;
}

HC_EXTERN unsigned short hc_actuator_port(const hc_actuator *a)
{
    (void)a;
    return 0;
}

HC_EXTERN void hc_actuator_stop(hc_actuator *a)
{
    (void)a;
}

#endif
