/*
 * bus.c - the generic invalidation bus (attached caches, echo suppression,
 * applying received messages, bypass on transport loss) and the in-process
 * bus, which is the generic bus without a transport.
 *
 * Locking: bus->mu guards the cache list and the state.  It is held while
 * calling hc_cache_apply / hc_cache_set_bypass / counters on attached caches
 * (none of which calls back into the bus), so a cache cannot be detached in
 * the middle.  It is never held while calling the transport, the sync
 * handler, or hc_cache_attach/detach_publisher: detach_publisher waits for
 * running publisher hooks, and a hook takes bus->mu to reach sibling caches.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "bus_int.h"
#include "cache_int.h"
#include "osrandom.h"
#include "wire.h"

struct hc_bus {
    pthread_mutex_t mu;
    char node_id[HC_NODE_ID_MAX + 1];
    const hc_transport_ops *ops; /* NULL: in-process bus */
    void *impl;
    hc__bus_sync_fn sync_fn;
    /* guarded by mu */
    hc_bus_state state;
    bool ever_up;
    hc_cache **caches;
    size_t ncaches, cap;
    /* atomics */
    uint64_t received, malformed, own_ignored;
    /* guarded by mu (obs, for the registry): hc_bus_queue_usage; -1 unknown */
    double queue_usage;
};

uint64_t hc__bus_random64(void)
{
    uint64_t v = 0;
    if (hc__os_random(&v, sizeof v) == 0) return v;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    static uint64_t counter;
    uint64_t c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&v ^ (c << 48);
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v;
}

hc_status hc__bus_node_id_init(char *out, const char *node_id, hc_error *err)
{
    if (node_id == NULL) {
        static const char hex[] = "0123456789abcdef";
        uint64_t r = hc__bus_random64();
        for (int i = 0; i < 16; i++) out[i] = hex[(r >> (60 - 4 * i)) & 15];
        out[16] = '\0';
        return HC_OK;
    }
    size_t n = strlen(node_id);
    if (!hc__wire_origin_valid(node_id, n))
        return hc_error_set(err, HC_ERR_INVALID,
                            "node id must be 1-%d bytes of [A-Za-z0-9._-]", HC_NODE_ID_MAX);
    if (strcmp(node_id, HC_WIRE_DB_ORIGIN) == 0)
        return hc_error_set(err, HC_ERR_INVALID, "node id \"db\" is reserved for the extension");
    memcpy(out, node_id, n + 1);
    return HC_OK;
}

static hc_bus *bus_alloc(const char *node_id, hc_error *err)
{
    char id[HC_NODE_ID_MAX + 1];
    if (hc__bus_node_id_init(id, node_id, err) != HC_OK) return NULL;
    hc_bus *bus = hc__calloc(1, sizeof *bus);
    if (bus == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating bus");
        return NULL;
    }
    if (pthread_mutex_init(&bus->mu, NULL) != 0) {
        free(bus);
        hc_error_set(err, HC_ERR_SYSTEM, "pthread_mutex_init failed");
        return NULL;
    }
    memcpy(bus->node_id, id, sizeof id);
    bus->queue_usage = -1.0;
    return bus;
}

HC_EXTERN hc_bus *hc_local_bus_new(const char *node_id, hc_error *err)
{
    hc_bus *bus = bus_alloc(node_id, err);
    if (bus != NULL) {
        bus->state = HC_BUS_LOCAL;
        bus->ever_up = true;
    }
    return bus;
}

HC_EXTERN hc_bus *hc_bus_new(const char *node_id, const hc_transport_ops *ops, void *impl,
                             hc_error *err)
{
    if (ops == NULL || ops->publish == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "transport ops with a publish function are required");
        return NULL;
    }
    hc_bus *bus = bus_alloc(node_id, err);
    if (bus == NULL) {
        if (ops->free) ops->free(impl);
        return NULL;
    }
    bus->ops = ops;
    bus->impl = impl;
    bus->state = HC_BUS_CONNECTING;
    if (ops->start != NULL) {
        hc_status st = ops->start(impl, bus, err);
        if (st != HC_OK) {
            if (ops->free) ops->free(impl);
            pthread_mutex_destroy(&bus->mu);
            free(bus);
            return NULL;
        }
    }
    return bus;
}

/* Flush c and leave it serving (up) or bypassed (down); called with mu held. */
static void do_settle_cache(hc_bus *bus, hc_cache *c)
{
    hc_cache_set_bus_state(c, bus->state);
    bool up = bus->state == HC_BUS_LOCAL || bus->state == HC_BUS_LISTENING;
    /* Each change of the flag flushes, so true-then-false is a flush that
     * also makes in-flight loads stale. */
    hc_cache_set_bypass(c, true, HC_ORIGIN_BUS);
    if (up) hc_cache_set_bypass(c, false, HC_ORIGIN_BUS);
}

/* Local invalidation on an attached cache: siblings first, then the transport. */
static void on_publish(void *ctx, hc_cache *from, hc_inval_kind kind, const char *arg)
{
    hc_bus *bus = ctx;
    pthread_mutex_lock(&bus->mu);
    for (size_t i = 0; i < bus->ncaches; i++) {
        hc_cache *c = bus->caches[i];
        if (c == from) continue;
        hc_cache_bus_count(c, HC_BUSCTR_RECEIVED, 1);
        hc_cache_apply(c, kind, arg, HC_ORIGIN_BUS, NULL);
    }
    pthread_mutex_unlock(&bus->mu);
    if (bus->ops != NULL)
        bus->ops->publish(bus->impl, from, kind, arg);
    else
        hc_cache_bus_count(from, HC_BUSCTR_PUBLISHED, 1);
}

HC_EXTERN hc_status hc_bus_attach(hc_bus *bus, hc_cache *c, hc_error *err)
{
    if (bus == NULL || c == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus or cache");
    /* One publisher per cache: this also refuses a second attach. */
    hc_status st = hc_cache_attach_publisher(c, on_publish, bus, err);
    if (st != HC_OK) return st;

    pthread_mutex_lock(&bus->mu);
    if (bus->ncaches == bus->cap) {
        size_t ncap = bus->cap ? bus->cap * 2 : 4;
        hc_cache **nc = hc__realloc(bus->caches, ncap * sizeof *nc);
        if (nc == NULL) {
            pthread_mutex_unlock(&bus->mu);
            hc_cache_detach_publisher(c);
            return hc_error_set(err, HC_ERR_NOMEM, "out of memory attaching cache");
        }
        bus->caches = nc;
        bus->cap = ncap;
    }
    bus->caches[bus->ncaches++] = c;
    do_settle_cache(bus, c);
    pthread_mutex_unlock(&bus->mu);
    return HC_OK;
}

HC_EXTERN void hc_bus_detach(hc_bus *bus, hc_cache *c)
{
    if (bus == NULL || c == NULL) return;
    pthread_mutex_lock(&bus->mu);
    size_t i = 0;
    while (i < bus->ncaches && bus->caches[i] != c) i++;
    bool found = i < bus->ncaches;
    if (found) bus->caches[i] = bus->caches[--bus->ncaches];
    pthread_mutex_unlock(&bus->mu);
    if (!found) return;
    /* Out of the list first (nothing more is applied to it), then no hook
     * can still be running, then the transport drops queued references. */
    hc_cache_detach_publisher(c);
    if (bus->ops != NULL && bus->ops->forget != NULL) bus->ops->forget(bus->impl, c);
    hc_cache_set_bus_state(c, HC_BUS_NONE);
    /* Always flush (bypass on then off, which also makes loads in flight
     * stale): from here on no invalidation reaches c, so nothing it holds
     * now could ever be invalidated by another node. */
    hc_cache_set_bypass(c, true, HC_ORIGIN_BUS);
    hc_cache_set_bypass(c, false, HC_ORIGIN_BUS);
}

HC_EXTERN void hc_bus_free(hc_bus *bus)
{
    if (bus == NULL) return;
    if (bus->ops != NULL && bus->ops->stop != NULL) bus->ops->stop(bus->impl);
    for (;;) {
        pthread_mutex_lock(&bus->mu);
        hc_cache *c = bus->ncaches ? bus->caches[bus->ncaches - 1] : NULL;
        pthread_mutex_unlock(&bus->mu);
        if (c == NULL) break;
        hc_bus_detach(bus, c);
    }
    if (bus->ops != NULL && bus->ops->free != NULL) bus->ops->free(bus->impl);
    free(bus->caches);
    pthread_mutex_destroy(&bus->mu);
    free(bus);
}

HC_EXTERN const char *hc_bus_node_id(const hc_bus *bus)
{
    return bus ? bus->node_id : NULL;
}

HC_EXTERN size_t hc_bus_cache_count(hc_bus *bus)
{
    if (bus == NULL) return 0;
    pthread_mutex_lock(&bus->mu);
    size_t n = bus->ncaches;
    pthread_mutex_unlock(&bus->mu);
    return n;
}

HC_EXTERN hc_bus_state hc_bus_state_get(hc_bus *bus)
{
    if (bus == NULL) return HC_BUS_NONE;
    pthread_mutex_lock(&bus->mu);
    hc_bus_state st = bus->state;
    pthread_mutex_unlock(&bus->mu);
    return st;
}

HC_EXTERN int hc_bus_fd(hc_bus *bus)
{
    if (bus == NULL || bus->ops == NULL || bus->ops->fd == NULL) return -1;
    return bus->ops->fd(bus->impl);
}

HC_EXTERN hc_status hc_bus_poll(hc_bus *bus, hc_error *err)
{
    if (bus == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    if (bus->ops == NULL || bus->ops->poll == NULL)
        return hc_error_set(err, HC_ERR_STATE, "this bus has nothing to poll");
    return bus->ops->poll(bus->impl, err);
}

/* ------------------------------------------------------- transport side */

static void do_count_all(hc_bus *bus, hc_bus_counter ctr)
{
    for (size_t i = 0; i < bus->ncaches; i++) hc_cache_bus_count(bus->caches[i], ctr, 1);
}

/* An arg that holds NUL or exceeds the key limit cannot name any entry. */
static bool arg_usable(const hc_wire_msg *m, size_t i)
{
    return m->arg_len[i] <= HC_MAX_KEY_LEN && strlen(m->args[i]) == m->arg_len[i];
}

HC_EXTERN hc_status hc_bus_deliver(hc_bus *bus, const char *payload, size_t len, hc_error *err)
{
    return hc_bus_deliver_from(bus, payload, len, HC_SENDER_BY_ORIGIN, err);
}

HC_EXTERN hc_status hc_bus_deliver_from(hc_bus *bus, const char *payload, size_t len,
                                        hc_bus_sender sender, hc_error *err)
{
    if (bus == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL bus");
    hc_wire_msg m;
    hc_status st = hc_wire_parse(payload, len, &m, err);
    __atomic_add_fetch(&bus->received, 1, __ATOMIC_RELAXED);
    if (st == HC_ERR_NOMEM) {
        /* Could not even look at it: it may have been an invalidation, so
         * flush rather than risk serving a stale entry. */
        pthread_mutex_lock(&bus->mu);
        do_count_all(bus, HC_BUSCTR_RECEIVED);
        for (size_t i = 0; i < bus->ncaches; i++)
            hc_cache_apply(bus->caches[i], HC_INVAL_FLUSH, NULL, HC_ORIGIN_BUS, NULL);
        pthread_mutex_unlock(&bus->mu);
        return st;
    }
    if (st != HC_OK) {
        __atomic_add_fetch(&bus->malformed, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&bus->mu);
        do_count_all(bus, HC_BUSCTR_RECEIVED);
        do_count_all(bus, HC_BUSCTR_MALFORMED);
        pthread_mutex_unlock(&bus->mu);
        return st;
    }
    if (m.op == HC_WIRE_SYNC) {
        pthread_mutex_lock(&bus->mu);
        do_count_all(bus, HC_BUSCTR_RECEIVED);
        pthread_mutex_unlock(&bus->mu);
        if (bus->sync_fn != NULL) bus->sync_fn(bus->impl, m.origin, m.args[0], sender);
        hc_wire_msg_clear(&m);
        return HC_OK;
    }
    /* A transport that knows the sender decides: two processes configured
     * with the same node id must still apply each other's messages. */
    bool own = sender == HC_SENDER_SELF ||
               (sender == HC_SENDER_BY_ORIGIN && strcmp(m.origin, bus->node_id) == 0);
    if (own) __atomic_add_fetch(&bus->own_ignored, 1, __ATOMIC_RELAXED);
    hc_origin origin = strcmp(m.origin, HC_WIRE_DB_ORIGIN) == 0 ? HC_ORIGIN_DATABASE : HC_ORIGIN_BUS;
    hc_inval_kind kind = m.op == HC_WIRE_TAGS   ? HC_INVAL_TAG
                         : m.op == HC_WIRE_KEYS ? HC_INVAL_KEY
                                                : HC_INVAL_FLUSH;
    pthread_mutex_lock(&bus->mu);
    do_count_all(bus, HC_BUSCTR_RECEIVED);
    /* Own messages were applied locally (and to siblings) when published. */
    for (size_t c = 0; !own && c < bus->ncaches; c++) {
        if (kind == HC_INVAL_FLUSH) {
            hc_cache_apply(bus->caches[c], kind, NULL, origin, NULL);
            continue;
        }
        for (size_t i = 0; i < m.nargs; i++)
            if (arg_usable(&m, i)) hc_cache_apply(bus->caches[c], kind, m.args[i], origin, NULL);
    }
    pthread_mutex_unlock(&bus->mu);
    hc_wire_msg_clear(&m);
    return HC_OK;
}

HC_EXTERN void hc_bus_transport_up(hc_bus *bus)
{
    if (bus == NULL || bus->ops == NULL) return;
    pthread_mutex_lock(&bus->mu);
    if (bus->state != HC_BUS_LISTENING) {
        bool reconnect = bus->ever_up;
        bus->state = HC_BUS_LISTENING;
        bus->ever_up = true;
        for (size_t i = 0; i < bus->ncaches; i++) {
            hc_cache *c = bus->caches[i];
            hc_cache_set_bus_state(c, HC_BUS_LISTENING);
            if (reconnect) {
                hc_cache_bus_count(c, HC_BUSCTR_RECONNECTS, 1);
                hc_cache_emit(c, HC_EV_BUS_RECONNECT, HC_ORIGIN_BUS, bus->node_id);
            }
            /* Leaving bypass flushes: listen first, then flush, then serve. */
            hc_cache_set_bypass(c, false, HC_ORIGIN_BUS);
        }
    }
    pthread_mutex_unlock(&bus->mu);
}

HC_EXTERN void hc_bus_transport_down(hc_bus *bus, const char *detail)
{
    if (bus == NULL || bus->ops == NULL) return;
    pthread_mutex_lock(&bus->mu);
    if (bus->state == HC_BUS_LISTENING) {
        bus->state = HC_BUS_DISCONNECTED;
        for (size_t i = 0; i < bus->ncaches; i++) {
            hc_cache *c = bus->caches[i];
            /* Flush + bypass before anything else: from now on messages may
             * be lost, so nothing cached may be served or stored. */
            hc_cache_set_bypass(c, true, HC_ORIGIN_BUS);
            hc_cache_set_bus_state(c, HC_BUS_DISCONNECTED);
            hc_cache_bus_count(c, HC_BUSCTR_DISCONNECTS, 1);
            hc_cache_emit(c, HC_EV_BUS_DISCONNECT, HC_ORIGIN_BUS, detail ? detail : "lost");
        }
    }
    pthread_mutex_unlock(&bus->mu);
}

void hc__bus_set_sync_handler(hc_bus *bus, hc__bus_sync_fn fn)
{
    bus->sync_fn = fn;
}

void hc__bus_set_queue_usage(hc_bus *bus, double usage)
{
    pthread_mutex_lock(&bus->mu);
    bus->queue_usage = usage;
    pthread_mutex_unlock(&bus->mu);
}

void hc__bus_get_counters(hc_bus *bus, hc__bus_counters *out)
{
    out->received = __atomic_load_n(&bus->received, __ATOMIC_RELAXED);
    out->malformed = __atomic_load_n(&bus->malformed, __ATOMIC_RELAXED);
    out->own_ignored = __atomic_load_n(&bus->own_ignored, __ATOMIC_RELAXED);
}

/* ---- obs (issue #10 item 2): the registry asks the bus, not the caches, for
 * the transport's queue usage. */
HC_EXTERN double hc_bus_queue_usage(hc_bus *bus)
{
    if (bus == NULL) return -1.0;
    pthread_mutex_lock(&bus->mu);
    double usage = bus->queue_usage;
    pthread_mutex_unlock(&bus->mu);
    return usage;
}

/* A cache's bus is its publisher when that is this module's on_publish. */
static void publisher_queue_usage(hc_publish_fn fn, void *ctx, void *arg)
{
    if (fn == on_publish) *(double *)arg = hc_bus_queue_usage(ctx);
}

double hc__bus_cache_queue_usage(hc_cache *c)
{
    double usage = -1.0;
    if (c != NULL) hc__cache_with_publisher(c, publisher_queue_usage, &usage);
    return usage;
}
