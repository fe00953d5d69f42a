/* check_bus.c - the generic bus without a database: in-process bus, a custom
 * transport through the vtable, echo suppression, bypass on transport loss. */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "bus_int.h"
#include "hc_test.h"
#include "hydracache/bus.h"
#include "wire.h"

static hc_cache *new_cache(void)
{
    hc_error err;
    hc_cache *c = hc_cache_new(NULL, &err);
    ck_assert_msg(c != NULL, "hc_cache_new: %s", err.message);
    return c;
}

static void put(hc_cache *c, const char *key, const char *tag)
{
    const hc_opts *o = tag ? HC_OPTS(.tags = HC_TAGS(tag)) : NULL;
    ck_assert_int_eq(hc_put(c, key, "v", 1, o, NULL), HC_OK);
}

static bool has(hc_cache *c, const char *key)
{
    return hc_contains(c, key, NULL) == HC_OK;
}

static hc_stats stats_of(hc_cache *c)
{
    hc_stats s;
    hc_cache_stats(c, &s);
    return s;
}

/* ------------------------------------------------------------- local bus */

START_TEST(test_local_bus_propagates_key_invalidation_to_other_caches)
{
    hc_bus *bus = hc_local_bus_new("n1", NULL);
    hc_cache *a = new_cache(), *b = new_cache(), *c = new_cache();
    ck_assert_int_eq(hc_bus_attach(bus, a, NULL), HC_OK);
    ck_assert_int_eq(hc_bus_attach(bus, b, NULL), HC_OK);
    ck_assert_int_eq(hc_bus_attach(bus, c, NULL), HC_OK);
    put(a, "user:1", NULL);
    put(b, "user:1", NULL);
    put(c, "user:1", NULL);
    put(b, "user:2", NULL);
    ck_assert_int_eq(hc_invalidate_key(a, "user:1", NULL), HC_OK);
    ck_assert(!has(a, "user:1"));
    ck_assert(!has(b, "user:1"));
    ck_assert(!has(c, "user:1"));
    ck_assert(has(b, "user:2"));
    ck_assert_uint_eq(stats_of(b).bus_applied, 1);
    ck_assert_uint_eq(stats_of(a).bus_applied, 0); /* not applied to itself twice */
    ck_assert_uint_eq(stats_of(a).bus_published, 1);
    hc_bus_free(bus);
    hc_cache_free(a);
    hc_cache_free(b);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_local_bus_propagates_tag_and_flush)
{
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    hc_cache *a = new_cache(), *b = new_cache();
    hc_bus_attach(bus, a, NULL);
    hc_bus_attach(bus, b, NULL);
    put(b, "user:1", "users");
    put(b, "user:2", "users");
    put(b, "order:1", "orders");
    ck_assert_int_eq(hc_invalidate_tag(a, "users", NULL), HC_OK);
    ck_assert(!has(b, "user:1"));
    ck_assert(!has(b, "user:2"));
    ck_assert(has(b, "order:1"));
    ck_assert_int_eq(hc_flush(a, NULL), HC_OK);
    ck_assert(!has(b, "order:1"));
    hc_bus_free(bus);
    hc_cache_free(a);
    hc_cache_free(b);
}
END_TEST

START_TEST(test_local_bus_caches_report_local_state_and_serve)
{
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    hc_cache *a = new_cache();
    hc_bus_attach(bus, a, NULL);
    hc_diagnostics d;
    hc_cache_diagnostics(a, &d);
    ck_assert_int_eq(d.bus_state, HC_BUS_LOCAL);
    ck_assert(!d.bypass);
    put(a, "k", NULL);
    ck_assert(has(a, "k"));
    ck_assert_int_eq(hc_bus_state_get(bus), HC_BUS_LOCAL);
    ck_assert_uint_eq(hc_bus_cache_count(bus), 1);
    hc_bus_free(bus);
    hc_cache_diagnostics(a, &d);
    ck_assert_int_eq(d.bus_state, HC_BUS_NONE);
    hc_cache_free(a);
}
END_TEST

START_TEST(test_attach_flushes_entries_cached_before)
{
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    hc_cache *a = new_cache();
    put(a, "old", NULL);
    ck_assert_int_eq(hc_bus_attach(bus, a, NULL), HC_OK);
    ck_assert(!has(a, "old"));
    hc_bus_free(bus);
    hc_cache_free(a);
}
END_TEST

START_TEST(test_detach_and_bus_free_flush_the_cache)
{
    /* A detached cache receives no invalidation, so it must not keep entries
     * cached while attached: detach (and hc_bus_free) flushes it. */
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    hc_cache *a = new_cache(), *b = new_cache();
    hc_bus_attach(bus, a, NULL);
    hc_bus_attach(bus, b, NULL);
    put(a, "k", NULL);
    put(b, "k", NULL);
    ck_assert(!hc_cache_bypass(a));
    hc_bus_detach(bus, a);
    ck_assert(!has(a, "k"));
    ck_assert(!hc_cache_bypass(a));
    put(a, "k", NULL);
    ck_assert(has(a, "k")); /* serves again, unattached */
    ck_assert(has(b, "k"));
    hc_bus_free(bus);
    ck_assert(!has(b, "k"));
    hc_cache_free(a);
    hc_cache_free(b);
}
END_TEST

START_TEST(test_cache_attaches_to_one_bus_only)
{
    hc_bus *b1 = hc_local_bus_new(NULL, NULL), *b2 = hc_local_bus_new(NULL, NULL);
    hc_cache *a = new_cache();
    hc_error err;
    ck_assert_int_eq(hc_bus_attach(b1, a, NULL), HC_OK);
    ck_assert_int_eq(hc_bus_attach(b1, a, &err), HC_ERR_BUSY);
    ck_assert_int_eq(hc_bus_attach(b2, a, &err), HC_ERR_BUSY);
    ck_assert_uint_eq(hc_bus_cache_count(b1), 1);
    ck_assert_uint_eq(hc_bus_cache_count(b2), 0);
    hc_bus_detach(b1, a);
    ck_assert_int_eq(hc_bus_attach(b2, a, NULL), HC_OK);
    hc_bus_free(b1);
    hc_bus_free(b2);
    hc_cache_free(a);
}
END_TEST

START_TEST(test_detached_cache_neither_sends_nor_receives)
{
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    hc_cache *a = new_cache(), *b = new_cache();
    hc_bus_attach(bus, a, NULL);
    hc_bus_attach(bus, b, NULL);
    hc_bus_detach(bus, b);
    hc_bus_detach(bus, b); /* no-op */
    put(a, "k", NULL);
    put(b, "k", NULL);
    hc_invalidate_key(a, "k", NULL);
    ck_assert(has(b, "k"));
    hc_invalidate_key(b, "k", NULL);
    put(a, "k", NULL);
    ck_assert(has(a, "k"));
    hc_bus_free(bus);
    hc_cache_free(a);
    hc_cache_free(b);
}
END_TEST

START_TEST(test_node_ids_are_random_hex_or_validated)
{
    hc_bus *b1 = hc_local_bus_new(NULL, NULL), *b2 = hc_local_bus_new(NULL, NULL);
    const char *id1 = hc_bus_node_id(b1);
    ck_assert_uint_eq(strlen(id1), 16);
    ck_assert_uint_eq(strspn(id1, "0123456789abcdef"), 16);
    ck_assert_str_ne(id1, hc_bus_node_id(b2));
    hc_bus_free(b1);
    hc_bus_free(b2);
    hc_error err;
    ck_assert_ptr_null(hc_local_bus_new("db", &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc_local_bus_new("has space", &err));
    ck_assert_ptr_null(hc_local_bus_new("", &err));
    char longid[80];
    memset(longid, 'a', 65);
    longid[65] = '\0';
    ck_assert_ptr_null(hc_local_bus_new(longid, &err));
    longid[64] = '\0';
    hc_bus *ok = hc_local_bus_new(longid, &err);
    ck_assert_ptr_nonnull(ok);
    ck_assert_str_eq(hc_bus_node_id(ok), longid);
    hc_bus_free(ok);
}
END_TEST

START_TEST(test_null_arguments_are_refused)
{
    hc_error err;
    hc_cache *a = new_cache();
    ck_assert_int_eq(hc_bus_attach(NULL, a, &err), HC_ERR_INVALID);
    hc_bus *bus = hc_local_bus_new(NULL, NULL);
    ck_assert_int_eq(hc_bus_attach(bus, NULL, &err), HC_ERR_INVALID);
    ck_assert_int_eq(hc_bus_poll(bus, &err), HC_ERR_STATE);
    ck_assert_int_eq(hc_bus_fd(bus), -1);
    ck_assert_int_eq(hc_bus_deliver(NULL, "x", 1, &err), HC_ERR_INVALID);
    ck_assert_ptr_null(hc_bus_new(NULL, NULL, NULL, &err));
    hc_bus_detach(NULL, a);
    hc_bus_free(NULL);
    hc_bus_free(bus);
    hc_cache_free(a);
}
END_TEST

/* ------------------------------------------- a custom transport: memory hub */

/* Every bus on the hub gets every payload (its own included) through a pipe,
 * read by hc_bus_poll: the shape of a real networked transport. */
#define HUB_MAX 4
typedef struct hub {
    pthread_mutex_t mu;
    struct hub_port *ports[HUB_MAX];
    int n;
} hub;

typedef struct hub_port {
    hub *h;
    hc_bus *bus;
    int rd, wr;
    int published;
} hub_port;

static hc_status hub_emit(void *ctx, const char *payload, size_t len)
{
    hub *h = ctx;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n; i++) {
        uint32_t l = (uint32_t)len;
        ck_assert_int_eq(write(h->ports[i]->wr, &l, sizeof l), (ssize_t)sizeof l);
        ck_assert_int_eq(write(h->ports[i]->wr, payload, len), (ssize_t)len);
    }
    pthread_mutex_unlock(&h->mu);
    return HC_OK;
}

static hc_status hub_start(void *impl, hc_bus *bus, hc_error *err)
{
    hub_port *p = impl;
    p->bus = bus;
    return HC_OK;
}

static void hub_publish(void *impl, hc_cache *from, hc_inval_kind kind, const char *arg)
{
    hub_port *p = impl;
    hc_wire_op op = (hc_wire_op)kind;
    const char *args[] = {arg};
    hc_wire_encode(hc_bus_node_id(p->bus), op, args, arg ? 1 : 0, hub_emit, p->h, NULL);
    hc_cache_bus_count(from, HC_BUSCTR_PUBLISHED, 1);
    p->published++;
}

static int hub_fd(void *impl)
{
    return ((hub_port *)impl)->rd;
}

static hc_status hub_poll(void *impl, hc_error *err)
{
    hub_port *p = impl;
    uint32_t l;
    while (read(p->rd, &l, sizeof l) == (ssize_t)sizeof l) {
        char *buf = malloc(l + 1);
        ck_assert_int_eq(read(p->rd, buf, l), (ssize_t)l);
        hc_bus_deliver(p->bus, buf, l, NULL);
        free(buf);
    }
    return HC_OK;
}

static void hub_free(void *impl)
{
    hub_port *p = impl;
    close(p->rd);
    close(p->wr);
    free(p);
}

static const hc_transport_ops HUB_OPS = {
    .name = "hub", .start = hub_start, .publish = hub_publish, .fd = hub_fd,
    .poll = hub_poll, .free = hub_free,
};

static hc_bus *hub_join(hub *h, const char *node)
{
    hub_port *p = calloc(1, sizeof *p);
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK), 0);
    p->h = h;
    p->rd = fds[0];
    p->wr = fds[1];
    pthread_mutex_lock(&h->mu);
    h->ports[h->n++] = p;
    pthread_mutex_unlock(&h->mu);
    hc_error err;
    hc_bus *bus = hc_bus_new(node, &HUB_OPS, p, &err);
    ck_assert_msg(bus != NULL, "hc_bus_new: %s", err.message);
    return bus;
}

static hub *hub_new(void)
{
    hub *h = calloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

START_TEST(test_custom_transport_carries_invalidations_between_nodes)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1"), *n2 = hub_join(h, "n2");
    hc_cache *a = new_cache(), *b = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_attach(n2, b, NULL);
    hc_bus_transport_up(n1);
    hc_bus_transport_up(n2);
    put(a, "user:7", "users");
    put(b, "user:7", "users");
    put(b, "user:8", "users");
    ck_assert_int_eq(hc_invalidate_key(a, "user:7", NULL), HC_OK);
    ck_assert(has(b, "user:7")); /* nothing moves until the transport is polled */
    ck_assert_int_eq(hc_bus_poll(n2, NULL), HC_OK);
    ck_assert(!has(b, "user:7"));
    ck_assert(has(b, "user:8"));
    hc_invalidate_tag(a, "users", NULL);
    hc_bus_poll(n2, NULL);
    ck_assert(!has(b, "user:8"));
    ck_assert_uint_eq(stats_of(b).bus_applied, 2);
    ck_assert_uint_eq(stats_of(b).bus_received, 2);
    hc_bus_free(n1);
    hc_bus_free(n2);
    hc_cache_free(a);
    hc_cache_free(b);
    free(h);
}
END_TEST

START_TEST(test_own_messages_are_not_applied_again)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_transport_up(n1);
    put(a, "k", NULL);
    hc_invalidate_key(a, "k", NULL);
    uint64_t applied = stats_of(a).bus_applied;
    put(a, "k", NULL); /* re-cached after the invalidation */
    hc_bus_poll(n1, NULL); /* the echo of "hc1 n1 k k" arrives */
    ck_assert_uint_eq(stats_of(a).bus_received, 1);
    ck_assert_uint_eq(stats_of(a).bus_applied, applied);
    ck_assert(has(a, "k"));
    hc__bus_counters c;
    hc__bus_get_counters(n1, &c);
    ck_assert_uint_eq(c.own_ignored, 1);
    hc_bus_free(n1);
    hc_cache_free(a);
    free(h);
}
END_TEST

START_TEST(test_known_sender_overrides_the_origin_for_echo_suppression)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_transport_up(n1);
    put(a, "k1", NULL);
    put(a, "k2", NULL);
    put(a, "k3", NULL);
    /* Another process configured with the same id: applied. */
    ck_assert_int_eq(hc_bus_deliver_from(n1, "hc1 n1 k k1", 11, HC_SENDER_OTHER, NULL), HC_OK);
    ck_assert(!has(a, "k1"));
    /* Our own echo, whatever its label: not applied. */
    ck_assert_int_eq(hc_bus_deliver_from(n1, "hc1 n2 k k2", 11, HC_SENDER_SELF, NULL), HC_OK);
    ck_assert(has(a, "k2"));
    /* Sender unknown: the origin decides. */
    ck_assert_int_eq(hc_bus_deliver_from(n1, "hc1 n1 k k3", 11, HC_SENDER_BY_ORIGIN, NULL),
                     HC_OK);
    ck_assert(has(a, "k3"));
    hc__bus_counters c;
    hc__bus_get_counters(n1, &c);
    ck_assert_uint_eq(c.own_ignored, 2);
    hc_bus_free(n1);
    hc_cache_free(a);
    free(h);
}
END_TEST

START_TEST(test_caches_bypass_until_transport_up_and_after_loss)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_diagnostics d;
    hc_cache_diagnostics(a, &d);
    ck_assert(d.bypass);
    ck_assert_int_eq(d.bus_state, HC_BUS_CONNECTING);
    put(a, "k", NULL);
    ck_assert(!has(a, "k")); /* bypass stores nothing */

    hc_bus_transport_up(n1);
    hc_cache_diagnostics(a, &d);
    ck_assert(!d.bypass);
    ck_assert_int_eq(d.bus_state, HC_BUS_LISTENING);
    put(a, "k", NULL);
    ck_assert(has(a, "k"));

    hc_bus_transport_down(n1, "test");
    hc_cache_diagnostics(a, &d);
    ck_assert(d.bypass);
    ck_assert(!has(a, "k")); /* flushed */
    ck_assert_int_eq(d.bus_state, HC_BUS_DISCONNECTED);
    ck_assert_uint_eq(d.stats.bus_disconnects, 1);
    ck_assert_uint_eq(d.stats.bus_reconnects, 0);

    hc_bus_transport_up(n1);
    hc_cache_diagnostics(a, &d);
    ck_assert(!d.bypass);
    ck_assert_uint_eq(d.stats.bus_reconnects, 1);
    hc_bus_free(n1);
    hc_cache_free(a);
    free(h);
}
END_TEST

/* The NOTIFY queue usage a bus reports belongs to that bus: what diagnostics
 * show for a cache is its bus's, so a cache detached from it (or left by
 * hc_bus_free) does not keep the last probe, or a registry would call it
 * DEGRADED forever (review defect, issue #9). */
START_TEST(test_detach_and_bus_free_forget_the_queue_usage)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache(), *b = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_attach(n1, b, NULL);
    hc_bus_transport_up(n1);
    hc__bus_set_queue_usage(n1, 0.8);
    ck_assert_double_eq(hc_bus_queue_usage(n1), 0.8);
    ck_assert_double_eq(hc__bus_cache_queue_usage(a), 0.8);
    ck_assert_double_eq(hc__bus_cache_queue_usage(b), 0.8);

    hc_bus_detach(n1, a);
    ck_assert(hc__bus_cache_queue_usage(a) < 0); /* unknown again */
    ck_assert_double_eq(hc__bus_cache_queue_usage(b), 0.8); /* still attached: still reported */

    hc__bus_set_queue_usage(n1, 0.9); /* a later probe reaches b only */
    ck_assert(hc__bus_cache_queue_usage(a) < 0);
    ck_assert_double_eq(hc__bus_cache_queue_usage(b), 0.9);

    hc_bus_free(n1);
    ck_assert(hc__bus_cache_queue_usage(b) < 0);
    ck_assert(hc__bus_cache_queue_usage(NULL) < 0);
    hc_cache_free(a);
    hc_cache_free(b);
    free(h);
}
END_TEST

START_TEST(test_malformed_payloads_are_counted_and_ignored)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_transport_up(n1);
    put(a, "k", NULL);
    const char *bad[] = {"hc2 db k k", "hc1 db k", "hc1 db k k%", "garbage", "hc1 db k  k",
                         "hc1 db f extra", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_int_ne(hc_bus_deliver(n1, bad[i], strlen(bad[i]), NULL), HC_OK);
    ck_assert_int_ne(hc_bus_deliver(n1, "hc1 db k k\0x", 12, NULL), HC_OK);
    ck_assert(has(a, "k"));
    hc_stats s = stats_of(a);
    ck_assert_uint_eq(s.bus_malformed, 8);
    ck_assert_uint_eq(s.bus_received, 8);
    ck_assert_uint_eq(s.bus_applied, 0);
    hc_bus_free(n1);
    hc_cache_free(a);
    free(h);
}
END_TEST

START_TEST(test_database_messages_apply_and_sync_tokens_do_not)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_transport_up(n1);
    put(a, "user:1", "users");
    /* a sync token applies nothing, whoever sent it */
    ck_assert_int_eq(hc_bus_deliver(n1, "hc1 other s tok", 15, NULL), HC_OK);
    ck_assert(has(a, "user:1"));
    ck_assert_int_eq(hc_bus_deliver(n1, "hc1 db t users", 14, NULL), HC_OK);
    ck_assert(!has(a, "user:1"));
    ck_assert_uint_eq(stats_of(a).bus_applied, 1);
    hc_bus_free(n1);
    hc_cache_free(a);
    free(h);
}
END_TEST

START_TEST(test_args_that_cannot_name_an_entry_are_skipped)
{
    hub *h = hub_new();
    hc_bus *n1 = hub_join(h, "n1");
    hc_cache *a = new_cache();
    hc_bus_attach(n1, a, NULL);
    hc_bus_transport_up(n1);
    put(a, "k", NULL);
    /* "k%00x" decodes to a NUL-holding arg: applying "k" would be wrong. */
    ck_assert_int_eq(hc_bus_deliver(n1, "hc1 db k k%00x", 14, NULL), HC_OK);
    ck_assert(has(a, "k"));
    ck_assert_uint_eq(stats_of(a).bus_applied, 0);
    hc_bus_free(n1);
    hc_cache_free(a);
    free(h);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

typedef struct race {
    hc_bus *bus;
    hc_cache *caches[3];
    volatile int stop;
} race;

static void *invalidator(void *arg)
{
    race *r = arg;
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k:%d", i % 50);
        hc_cache *c = r->caches[i % 3];
        put(c, key, "t");
        if (i % 7 == 0) hc_invalidate_tag(c, "t", NULL);
        else hc_invalidate_key(c, key, NULL);
    }
    return NULL;
}

static void *attacher(void *arg)
{
    race *r = arg;
    for (int i = 0; i < 300; i++) {
        hc_bus_detach(r->bus, r->caches[2]);
        hc_bus_attach(r->bus, r->caches[2], NULL);
    }
    return NULL;
}

START_TEST(test_concurrent_invalidations_and_attach_detach)
{
    race r = {0};
    r.bus = hc_local_bus_new(NULL, NULL);
    for (int i = 0; i < 3; i++) {
        r.caches[i] = new_cache();
        hc_bus_attach(r.bus, r.caches[i], NULL);
    }
    pthread_t t[3];
    pthread_create(&t[0], NULL, invalidator, &r);
    pthread_create(&t[1], NULL, invalidator, &r);
    pthread_create(&t[2], NULL, attacher, &r);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    ck_assert_uint_eq(hc_bus_cache_count(r.bus), 3);
    /* still wired: an invalidation reaches every other cache */
    for (int i = 0; i < 3; i++) put(r.caches[i], "last", NULL);
    hc_invalidate_key(r.caches[0], "last", NULL);
    for (int i = 0; i < 3; i++) ck_assert(!has(r.caches[i], "last"));
    hc_bus_free(r.bus);
    for (int i = 0; i < 3; i++) hc_cache_free(r.caches[i]);
}
END_TEST

/* The bus allocates through alloc.h, so the failure injector reaches it: each
 * failure is reported as HC_ERR_NOMEM and leaves nothing half done. */
START_TEST(test_allocation_failures_are_reported)
{
    hc_error err;
    hc__alloc_fail_after(0);
    ck_assert_ptr_null(hc_local_bus_new("n1", &err));
    hc__alloc_fail_after(-1);
    ck_assert_int_eq(err.code, HC_ERR_NOMEM);

    hc_bus *bus = hc_local_bus_new("n1", NULL);
    hc_cache *a = new_cache(), *b = new_cache();
    hc__alloc_fail_after(0); /* the cache list cannot grow */
    ck_assert_int_eq(hc_bus_attach(bus, a, &err), HC_ERR_NOMEM);
    hc__alloc_fail_after(-1);
    ck_assert_uint_eq(hc_bus_cache_count(bus), 0);
    ck_assert_int_eq(hc_bus_attach(bus, a, NULL), HC_OK); /* not left half attached */
    ck_assert_int_eq(hc_bus_attach(bus, b, NULL), HC_OK);

    /* a payload that cannot even be parsed flushes rather than risk a stale entry */
    put(a, "k", NULL);
    static const char payload[] = "hc1 n2 k other";
    hc__alloc_fail_after(0);
    ck_assert_int_eq(hc_bus_deliver(bus, payload, sizeof payload - 1, &err), HC_ERR_NOMEM);
    hc__alloc_fail_after(-1);
    ck_assert(!has(a, "k"));
    hc_bus_free(bus);
    hc_cache_free(a);
    hc_cache_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bus");
    TCase *tl = tcase_create("local");
    tcase_add_test(tl, test_local_bus_propagates_key_invalidation_to_other_caches);
    tcase_add_test(tl, test_local_bus_propagates_tag_and_flush);
    tcase_add_test(tl, test_local_bus_caches_report_local_state_and_serve);
    tcase_add_test(tl, test_attach_flushes_entries_cached_before);
    tcase_add_test(tl, test_detach_and_bus_free_flush_the_cache);
    tcase_add_test(tl, test_cache_attaches_to_one_bus_only);
    tcase_add_test(tl, test_detached_cache_neither_sends_nor_receives);
    tcase_add_test(tl, test_node_ids_are_random_hex_or_validated);
    tcase_add_test(tl, test_null_arguments_are_refused);
    tcase_add_test(tl, test_allocation_failures_are_reported);
    suite_add_tcase(s, tl);
    TCase *tt = tcase_create("transport");
    tcase_add_test(tt, test_custom_transport_carries_invalidations_between_nodes);
    tcase_add_test(tt, test_own_messages_are_not_applied_again);
    tcase_add_test(tt, test_known_sender_overrides_the_origin_for_echo_suppression);
    tcase_add_test(tt, test_caches_bypass_until_transport_up_and_after_loss);
    tcase_add_test(tt, test_detach_and_bus_free_forget_the_queue_usage);
    tcase_add_test(tt, test_malformed_payloads_are_counted_and_ignored);
    tcase_add_test(tt, test_database_messages_apply_and_sync_tokens_do_not);
    tcase_add_test(tt, test_args_that_cannot_name_an_entry_are_skipped);
    suite_add_tcase(s, tt);
    TCase *tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_concurrent_invalidations_and_attach_detach);
    suite_add_tcase(s, tc);
    return hc_test_run_suite(s);
}
