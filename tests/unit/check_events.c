/* check_events.c - the event hub (libhcpg/events.h): rings, lag, listeners. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "events.h"
#include "hc_test.h"

static hc_events *hub;

static void setup(void)
{
    hub = hc__events_new();
    ck_assert_ptr_nonnull(hub);
}

static void teardown(void)
{
    hc__events_free(hub);
    hub = NULL;
}

static hc_subscriber *subscribe(uint32_t mask, size_t capacity)
{
    hc_error err = {0};
    hc_subscriber *s = hc__events_subscribe(hub, mask, capacity, &err);
    ck_assert_msg(s != NULL, "subscribe failed: %s", err.message);
    return s;
}

/* Emit a local PUT whose subject is the decimal number i. */
static void emit_numbered(unsigned i)
{
    char subject[32];
    snprintf(subject, sizeof subject, "%u", i);
    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, subject, i);
}

static void expect_numbered(hc_subscriber *s, unsigned i)
{
    hc_event e;
    char want[32];
    snprintf(want, sizeof want, "%u", i);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert_str_eq(e.subject, want);
}

/* ------------------------------------------------------------ subscribers */

START_TEST(test_subscriber_receives_only_kinds_in_its_mask)
{
    hc_subscriber *s = subscribe(HC_EV_INVALIDATE_TAG | HC_EV_EVICT, 16);
    hc_event e;

    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "k", 1);
    hc__events_emit(hub, HC_EV_INVALIDATE_TAG, HC_ORIGIN_BUS, HC_EVICT_NONE, "t", 2);
    hc__events_emit(hub, HC_EV_HIT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "k", 3);
    hc__events_emit(hub, HC_EV_EVICT, HC_ORIGIN_LOCAL, HC_EVICT_CAPACITY, "k", 4);

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert_int_eq(e.kind, HC_EV_INVALIDATE_TAG);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert_int_eq(e.kind, HC_EV_EVICT);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_TIMEOUT);
    hc_subscriber_free(s);
}
END_TEST

START_TEST(test_events_keep_order_fields_and_increasing_seq)
{
    hc_subscriber *s = subscribe(HC_EV_ALL, 16);
    hc_event e;

    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "a", 10);
    hc__events_emit(hub, HC_EV_EVICT, HC_ORIGIN_DATABASE, HC_EVICT_EXPIRED, "b", 20);
    hc__events_emit(hub, HC_EV_FLUSH, HC_ORIGIN_BUS, HC_EVICT_NONE, NULL, 30);

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    uint64_t first = e.seq;
    ck_assert_int_eq(e.kind, HC_EV_PUT);
    ck_assert_int_eq(e.origin, HC_ORIGIN_LOCAL);
    ck_assert_str_eq(e.subject, "a");
    ck_assert_uint_eq(e.time_ms, 10);
    ck_assert_uint_eq(e.lost, 0);

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert_uint_eq(e.seq, first + 1);
    ck_assert_int_eq(e.kind, HC_EV_EVICT);
    ck_assert_int_eq(e.origin, HC_ORIGIN_DATABASE);
    ck_assert_int_eq(e.reason, HC_EVICT_EXPIRED);
    ck_assert_str_eq(e.subject, "b");

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert_uint_eq(e.seq, first + 2);
    ck_assert_int_eq(e.kind, HC_EV_FLUSH);
    ck_assert_int_eq(e.origin, HC_ORIGIN_BUS);
    ck_assert_str_eq(e.subject, "");
    hc_subscriber_free(s);
}
END_TEST

START_TEST(test_wanted_follows_subscriber_masks_and_clears_after_free)
{
    ck_assert(!hc__events_wanted(hub, HC_EV_PUT));

    hc_subscriber *a = subscribe(HC_EV_PUT, 4);
    hc_subscriber *b = subscribe(HC_EV_ACCESS, 4);
    ck_assert(hc__events_wanted(hub, HC_EV_PUT));
    ck_assert(hc__events_wanted(hub, HC_EV_HIT));
    ck_assert(!hc__events_wanted(hub, HC_EV_FLUSH));

    hc_subscriber_free(b);
    ck_assert(hc__events_wanted(hub, HC_EV_PUT));
    ck_assert(!hc__events_wanted(hub, HC_EV_HIT));

    hc_subscriber_free(a);
    ck_assert(!hc__events_wanted(hub, HC_EV_PUT));
}
END_TEST

START_TEST(test_overflow_reports_exact_loss_then_retained_events_in_order)
{
    hc_subscriber *s = subscribe(HC_EV_ALL, 4);
    hc_event e;

    for (unsigned i = 1; i <= 10; i++)
        emit_numbered(i);

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_LAGGED);
    ck_assert_uint_eq(e.lost, 6);
    for (unsigned i = 7; i <= 10; i++)
        expect_numbered(s, i);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_TIMEOUT);
    ck_assert_uint_eq(hc__events_lag(hub), 6);

    /* The loss is reported once; a later overflow reports only its own. */
    for (unsigned i = 11; i <= 16; i++)
        emit_numbered(i);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_LAGGED);
    ck_assert_uint_eq(e.lost, 2);
    expect_numbered(s, 13);
    ck_assert_uint_eq(hc__events_lag(hub), 8);
    hc_subscriber_free(s);
}
END_TEST

START_TEST(test_capacity_zero_means_default_ring_size)
{
    hc_subscriber *s = subscribe(HC_EV_ALL, 0);
    hc_event e;

    for (unsigned i = 1; i <= HC_EVENTS_DEFAULT_CAPACITY + 1; i++)
        emit_numbered(i);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_LAGGED);
    ck_assert_uint_eq(e.lost, 1);
    expect_numbered(s, 2);
    hc_subscriber_free(s);
}
END_TEST

START_TEST(test_published_counts_events_that_reached_a_ring)
{
    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "nobody", 0);
    ck_assert_uint_eq(hc__events_published(hub), 0);

    hc_subscriber *a = subscribe(HC_EV_PUT, 4);
    hc_subscriber *b = subscribe(HC_EV_PUT | HC_EV_FLUSH, 4);
    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "both", 0);
    hc__events_emit(hub, HC_EV_FLUSH, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "one", 0);
    hc__events_emit(hub, HC_EV_HIT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "none", 0);
    ck_assert_uint_eq(hc__events_published(hub), 2);
    hc_subscriber_free(a);
    hc_subscriber_free(b);
}
END_TEST

START_TEST(test_recv_on_empty_ring_times_out)
{
    hc_subscriber *s = subscribe(HC_EV_ALL, 4);
    hc_event e;

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_TIMEOUT);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 20), HC_TIMEOUT);
    hc_subscriber_free(s);
}
END_TEST

struct blocked_recv {
    hc_subscriber *s;
    pthread_barrier_t started;
    hc_status st;
    hc_event e;
};

static void *blocked_recv_main(void *arg)
{
    struct blocked_recv *br = arg;
    pthread_barrier_wait(&br->started);
    br->st = hc_subscriber_recv(br->s, &br->e, -1);
    return NULL;
}

START_TEST(test_blocked_recv_wakes_on_emit_from_another_thread)
{
    struct blocked_recv br = {.s = subscribe(HC_EV_ALL, 4)};
    pthread_t t;
    pthread_barrier_init(&br.started, NULL, 2);
    ck_assert_int_eq(pthread_create(&t, NULL, blocked_recv_main, &br), 0);

    pthread_barrier_wait(&br.started);
    hc__events_emit(hub, HC_EV_INVALIDATE_KEY, HC_ORIGIN_BUS, HC_EVICT_NONE, "woken", 7);
    pthread_join(t, NULL);

    ck_assert_int_eq(br.st, HC_OK);
    ck_assert_str_eq(br.e.subject, "woken");
    pthread_barrier_destroy(&br.started);
    hc_subscriber_free(br.s);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

enum { EMITTERS = 4, CHURNERS = 2, PER_EMITTER = 2000 };

struct churn {
    atomic_bool stop;
};

static void *emitter_main(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < PER_EMITTER; i++)
        hc__events_emit(hub, (i & 1) ? HC_EV_PUT : HC_EV_HIT, HC_ORIGIN_LOCAL, HC_EVICT_NONE,
                       "concurrent", i);
    return NULL;
}

static void *churner_main(void *arg)
{
    struct churn *c = arg;
    hc_event e;
    while (!atomic_load(&c->stop)) {
        hc_subscriber *s = hc__events_subscribe(hub, HC_EV_PUT, 8, NULL);
        ck_assert_ptr_nonnull(s);
        while (hc_subscriber_recv(s, &e, 0) != HC_TIMEOUT)
            ;
        hc_subscriber_free(s);
    }
    return NULL;
}

START_TEST(test_concurrent_emit_subscribe_and_free_lose_nothing_for_steady_subscriber)
{
    hc_subscriber *steady = subscribe(HC_EV_ALL, EMITTERS * PER_EMITTER);
    struct churn c;
    pthread_t emitters[EMITTERS], churners[CHURNERS];
    atomic_init(&c.stop, false);

    for (int i = 0; i < CHURNERS; i++)
        ck_assert_int_eq(pthread_create(&churners[i], NULL, churner_main, &c), 0);
    for (int i = 0; i < EMITTERS; i++)
        ck_assert_int_eq(pthread_create(&emitters[i], NULL, emitter_main, NULL), 0);
    for (int i = 0; i < EMITTERS; i++)
        pthread_join(emitters[i], NULL);
    atomic_store(&c.stop, true);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(churners[i], NULL);

    hc_event e;
    uint64_t prev = 0;
    unsigned n = 0;
    while (hc_subscriber_recv(steady, &e, 0) == HC_OK) {
        ck_assert_uint_gt(e.seq, prev);
        prev = e.seq;
        n++;
    }
    ck_assert_uint_eq(n, EMITTERS * PER_EMITTER);
    ck_assert_uint_eq(hc__events_published(hub), EMITTERS * PER_EMITTER);
    hc_subscriber_free(steady);
    ck_assert(!hc__events_wanted(hub, HC_EV_PUT));
}
END_TEST

/* ------------------------------------------------------------ listeners */

struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned calls;
    unsigned lagged;
    uint64_t lost;
    char last[HC_EVENT_SUBJECT_MAX];
    pthread_t thread;
    atomic_bool freed;          /* set once hc_listener_free returned */
    atomic_int calls_after_free;
    bool gate_closed;           /* fn blocks on the first event while true */
    hc_listener *self;          /* when set, fn frees this listener on its first call */
};

static void recorder_init(struct recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
    atomic_init(&r->freed, false);
    atomic_init(&r->calls_after_free, 0);
}

static void recorder_destroy(struct recorder *r)
{
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
}

/* Checked fixture of the "listeners" tests (after the hub's): the recorder rec. */
static struct recorder rec;

static void recorder_setup(void)
{
    recorder_init(&rec);
}

static void recorder_teardown(void)
{
    recorder_destroy(&rec);
}

static void record(void *ctx, hc_status st, const hc_event *ev)
{
    struct recorder *r = ctx;
    if (atomic_load(&r->freed))
        atomic_fetch_add(&r->calls_after_free, 1);

    pthread_mutex_lock(&r->lock);
    r->thread = pthread_self();
    r->calls++;
    if (st == HC_LAGGED) {
        r->lagged++;
        r->lost += ev->lost;
    } else {
        snprintf(r->last, sizeof r->last, "%s", ev->subject);
    }
    pthread_cond_broadcast(&r->changed);
    while (r->gate_closed)
        pthread_cond_wait(&r->changed, &r->lock);
    hc_listener *self = r->self;
    r->self = NULL;
    pthread_mutex_unlock(&r->lock);

    if (self != NULL) {
        hc_listener_free(self);
        pthread_mutex_lock(&r->lock);
        atomic_store(&r->freed, true);
        pthread_cond_broadcast(&r->changed);
        pthread_mutex_unlock(&r->lock);
    }
}

static void wait_calls(struct recorder *r, unsigned n)
{
    pthread_mutex_lock(&r->lock);
    while (r->calls < n)
        pthread_cond_wait(&r->changed, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

static hc_listener *listen_recorder(struct recorder *r, uint32_t mask)
{
    hc_error err = {0};
    hc_listener *l = hc__events_listen(hub, mask, record, r, &err);
    ck_assert_msg(l != NULL, "listen failed: %s", err.message);
    return l;
}

START_TEST(test_listener_calls_back_on_its_own_thread_in_order)
{
    hc_listener *l = listen_recorder(&rec, HC_EV_PUT);

    hc__events_emit(hub, HC_EV_FLUSH, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "filtered", 0);
    for (unsigned i = 1; i <= 50; i++)
        emit_numbered(i);
    wait_calls(&rec, 50);

    pthread_mutex_lock(&rec.lock);
    ck_assert(!pthread_equal(rec.thread, pthread_self()));
    ck_assert_str_eq(rec.last, "50");
    ck_assert_uint_eq(rec.lagged, 0);
    pthread_mutex_unlock(&rec.lock);
    hc_listener_free(l);
}
END_TEST

struct free_race {
    atomic_bool stop;
};

static void *steady_emitter_main(void *arg)
{
    struct free_race *fr = arg;
    unsigned i = 0;
    while (!atomic_load(&fr->stop))
        emit_numbered(i++);
    return NULL;
}

START_TEST(test_listener_is_never_called_after_free)
{
    struct free_race fr;
    pthread_t t;
    atomic_init(&fr.stop, false);
    hc_listener *l = listen_recorder(&rec, HC_EV_ALL);

    ck_assert_int_eq(pthread_create(&t, NULL, steady_emitter_main, &fr), 0);
    wait_calls(&rec, 100);
    hc_listener_free(l);
    atomic_store(&rec.freed, true);
    for (unsigned i = 0; i < 100; i++)
        emit_numbered(i);
    atomic_store(&fr.stop, true);
    pthread_join(t, NULL);

    ck_assert_int_eq(atomic_load(&rec.calls_after_free), 0);
    ck_assert(!hc__events_wanted(hub, HC_EV_PUT));
}
END_TEST

START_TEST(test_listener_reports_lag_with_lost_count)
{
    rec.gate_closed = true;
    hc_listener *l = listen_recorder(&rec, HC_EV_ALL);

    emit_numbered(0);
    wait_calls(&rec, 1); /* fn now holds the first event; the ring is empty */
    for (unsigned i = 1; i <= HC_EVENTS_DEFAULT_CAPACITY + 5; i++)
        emit_numbered(i);

    pthread_mutex_lock(&rec.lock);
    rec.gate_closed = false;
    pthread_cond_broadcast(&rec.changed);
    pthread_mutex_unlock(&rec.lock);
    wait_calls(&rec, 2 + HC_EVENTS_DEFAULT_CAPACITY);

    pthread_mutex_lock(&rec.lock);
    ck_assert_uint_eq(rec.lagged, 1);
    ck_assert_uint_eq(rec.lost, 5);
    ck_assert_str_eq(rec.last, "1029");
    pthread_mutex_unlock(&rec.lock);
    hc_listener_free(l);
}
END_TEST

START_TEST(test_listener_may_free_itself_from_its_callback)
{
    /* Static: the detached listener thread may still be leaving the callback
     * (unlocking r.lock) when this test returns. */
    static struct recorder r;
    recorder_init(&r);
    pthread_mutex_lock(&r.lock);
    r.self = listen_recorder(&r, HC_EV_ALL);
    pthread_mutex_unlock(&r.lock);

    emit_numbered(1);
    pthread_mutex_lock(&r.lock);
    while (!atomic_load(&r.freed))
        pthread_cond_wait(&r.changed, &r.lock);
    pthread_mutex_unlock(&r.lock);

    /* Unregistered before the callback returned: later events reach no ring. */
    ck_assert(!hc__events_wanted(hub, HC_EV_PUT));
    emit_numbered(2);
    ck_assert_uint_eq(hc__events_published(hub), 1);
}
END_TEST

/* ------------------------------------------------------------ subjects, bad input */

START_TEST(test_long_subject_is_truncated_and_flagged)
{
    hc_subscriber *s = subscribe(HC_EV_ALL, 4);
    char longsub[HC_EVENT_SUBJECT_MAX + 50];
    char exact[HC_EVENT_SUBJECT_MAX];
    hc_event e;
    memset(longsub, 'x', sizeof longsub - 1);
    longsub[sizeof longsub - 1] = '\0';
    memset(exact, 'y', sizeof exact - 1);
    exact[sizeof exact - 1] = '\0';

    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, longsub, 0);
    hc__events_emit(hub, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, exact, 0);

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert(e.subject_truncated);
    ck_assert_uint_eq(strlen(e.subject), HC_EVENT_SUBJECT_MAX - 1);
    ck_assert_int_eq(strncmp(e.subject, longsub, HC_EVENT_SUBJECT_MAX - 1), 0);

    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    ck_assert(!e.subject_truncated);
    ck_assert_str_eq(e.subject, exact);
    hc_subscriber_free(s);
}
END_TEST

static void never_called(void *ctx, hc_status st, const hc_event *ev)
{
    (void)ctx; (void)st; (void)ev;
    ck_abort_msg("callback of a listener that was never created");
}

START_TEST(test_bad_arguments_are_rejected_with_a_status)
{
    hc_error err = {0};
    hc_event e;
    hc_subscriber *s = subscribe(HC_EV_ALL, 4);

    ck_assert_int_eq(hc_subscriber_recv(NULL, &e, 0), HC_ERR_INVALID);
    ck_assert_int_eq(hc_subscriber_recv(s, NULL, 0), HC_ERR_INVALID);

    ck_assert_ptr_null(hc__events_subscribe(NULL, HC_EV_ALL, 4, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc__events_subscribe(hub, 0, 4, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc__events_subscribe(hub, HC_EV_ALL, (size_t)HC_EVENTS_MAX_CAPACITY + 1, &err));
    ck_assert_int_eq(err.code, HC_ERR_TOO_LARGE);
    ck_assert_ptr_null(hc__events_subscribe(hub, HC_EV_ALL, SIZE_MAX, NULL));
    ck_assert_ptr_null(hc__events_listen(hub, HC_EV_ALL, NULL, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc__events_listen(NULL, HC_EV_ALL, never_called, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_ptr_null(hc__events_listen(hub, 0, never_called, NULL, &err));
    ck_assert_int_eq(err.code, HC_ERR_INVALID);
    ck_assert_str_ne(err.message, "");

    hc__events_emit(NULL, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "x", 0);
    ck_assert(!hc__events_wanted(NULL, HC_EV_PUT));
    ck_assert_uint_eq(hc__events_published(NULL), 0);
    ck_assert_uint_eq(hc__events_lag(NULL), 0);
    hc_subscriber_free(NULL);
    hc_listener_free(NULL);
    hc__events_free(NULL);
    hc_subscriber_free(s);
}
END_TEST

static void noop_listener(void *ctx, hc_status st, const hc_event *e)
{
    (void)ctx; (void)st; (void)e;
}

START_TEST(test_allocation_failure_in_subscribe_and_listen_reports_nomem)
{
    hc_events *ev = hub;
    /* fail each allocation of subscribe/listen in turn: NOMEM, nothing registered */
    for (long n = 0; n < 8; n++) {
        hc_error err = {0};
        hc__alloc_fail_after(n);
        hc_subscriber *s = hc__events_subscribe(ev, HC_EV_PUT, 4, &err);
        hc__alloc_fail_after(-1);
        if (s == NULL) {
            ck_assert_int_eq(err.code, HC_ERR_NOMEM);
            ck_assert(!hc__events_wanted(ev, HC_EV_PUT));
        } else {
            hc_subscriber_free(s);
        }
        hc__alloc_fail_after(n);
        hc_listener *l = hc__events_listen(ev, HC_EV_PUT, noop_listener, NULL, &err);
        hc__alloc_fail_after(-1);
        if (l == NULL) {
            ck_assert_int_eq(err.code, HC_ERR_NOMEM);
            ck_assert(!hc__events_wanted(ev, HC_EV_PUT));
        } else {
            hc_listener_free(l);
        }
    }
    /* and the hub still works */
    hc_subscriber *s = hc__events_subscribe(ev, HC_EV_PUT, 4, NULL);
    ck_assert_ptr_nonnull(s);
    hc__events_emit(ev, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, "k", 1);
    hc_event e;
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_OK);
    hc_subscriber_free(s);
}
END_TEST

START_TEST(test_subscriber_left_when_hub_is_freed_can_still_be_freed)
{
    hc_subscriber *s = subscribe(HC_EV_ALL, 4);
    hc_event e;
    emit_numbered(1);
    hc__events_free(hub);
    hub = NULL;

    expect_numbered(s, 1);
    ck_assert_int_eq(hc_subscriber_recv(s, &e, 0), HC_TIMEOUT);
    hc_subscriber_free(s);
}
END_TEST

/* A test case whose tests each get a fresh hub (checked fixture). */
static TCase *hub_tcase(const char *name, double timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    if (timeout_s > 0)
        tcase_set_timeout(tc, timeout_s);
    return tc;
}

static Suite *events_suite(void)
{
    Suite *su = suite_create("events");
    TCase *tc;

    tc = hub_tcase("subscribers", 0);
    tcase_add_test(tc, test_subscriber_receives_only_kinds_in_its_mask);
    tcase_add_test(tc, test_events_keep_order_fields_and_increasing_seq);
    tcase_add_test(tc, test_wanted_follows_subscriber_masks_and_clears_after_free);
    tcase_add_test(tc, test_overflow_reports_exact_loss_then_retained_events_in_order);
    tcase_add_test(tc, test_capacity_zero_means_default_ring_size);
    tcase_add_test(tc, test_published_counts_events_that_reached_a_ring);
    tcase_add_test(tc, test_recv_on_empty_ring_times_out);
    tcase_add_test(tc, test_blocked_recv_wakes_on_emit_from_another_thread);
    suite_add_tcase(su, tc);

    tc = hub_tcase("concurrency", 30);
    tcase_add_test(tc, test_concurrent_emit_subscribe_and_free_lose_nothing_for_steady_subscriber);
    suite_add_tcase(su, tc);

    tc = hub_tcase("listeners", 30);
    tcase_add_checked_fixture(tc, recorder_setup, recorder_teardown);
    tcase_add_test(tc, test_listener_calls_back_on_its_own_thread_in_order);
    tcase_add_test(tc, test_listener_is_never_called_after_free);
    tcase_add_test(tc, test_listener_reports_lag_with_lost_count);
    suite_add_tcase(su, tc);

    /* its recorder outlives the test (the detached listener thread may still
     * use it), so it is not the fixture's */
    tc = hub_tcase("listener freeing itself", 30);
    tcase_add_test(tc, test_listener_may_free_itself_from_its_callback);
    suite_add_tcase(su, tc);

    tc = hub_tcase("input", 0);
    tcase_add_test(tc, test_long_subject_is_truncated_and_flagged);
    tcase_add_test(tc, test_bad_arguments_are_rejected_with_a_status);
    tcase_add_test(tc, test_subscriber_left_when_hub_is_freed_can_still_be_freed);
    tcase_add_test(tc, test_allocation_failure_in_subscribe_and_listen_reports_nomem);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    return hc_test_run_suite(events_suite());
}
