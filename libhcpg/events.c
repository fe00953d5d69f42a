/* events.c - the event hub: subscribers with bounded rings, callback listeners,
 * and the names of the event enums (hc_event_kind_str, hc_origin_str). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "events.h"

/*
 * Locking, written once:
 *  - hc_events.lock guards the subscriber list, the combined mask's
 *    recomputation and the order of seq numbers.  hc__events_emit holds it for
 *    the whole delivery so every ring sees events in seq order.
 *  - hc_subscriber.lock guards that subscriber's ring, lost count and closed
 *    flag.  It is only ever held for a few copies (recv never waits holding
 *    anything but its own condvar), which is why emit may take it under the
 *    hub lock without ever waiting on a slow reader.
 *  - Lock order: hub, then subscriber.
 * Functions named do_* expect the subscriber lock held.
 */

struct hc_events {
    pthread_mutex_t lock;
    hc_subscriber *subs;       /* doubly linked, under lock */
    _Atomic uint32_t mask;     /* union of subs' masks; read without the lock */
    uint64_t seq;              /* under lock */
    _Atomic uint64_t published;
    _Atomic uint64_t lag;
};

struct hc_subscriber {
    hc_events *hub;            /* NULL once unregistered (or orphaned by hc__events_free) */
    hc_subscriber *prev, *next;
    uint32_t mask;
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    hc_event *ring;
    size_t cap, head, count;
    uint64_t lost;             /* dropped since the last HC_LAGGED report */
    bool closed;               /* set by hc_listener_free to end the listener's wait */
};

struct hc_listener {
    hc_subscriber *sub;
    hc_listener_fn fn;
    void *ctx;
    pthread_t thread;
    bool self_freed;           /* hc_listener_free ran inside fn; the thread cleans up */
};

/* The listener whose callback is running on this thread, if any. */
static _Thread_local hc_listener *tls_listener;

hc_events *hc__events_new(void)
{
    hc_events *ev = hc__calloc(1, sizeof *ev);
    if (ev == NULL)
        return NULL;
    if (pthread_mutex_init(&ev->lock, NULL) != 0) {
        free(ev);
        return NULL;
    }
    atomic_init(&ev->mask, 0);
    atomic_init(&ev->published, 0);
    atomic_init(&ev->lag, 0);
    return ev;
}

void hc__events_free(hc_events *ev)
{
    if (ev == NULL)
        return;
    /* Subscribers should be gone; orphan any left so a later
     * hc_subscriber_free does not touch the freed hub. */
    pthread_mutex_lock(&ev->lock);
    for (hc_subscriber *s = ev->subs; s != NULL; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s->hub = NULL;
        pthread_mutex_unlock(&s->lock);
    }
    ev->subs = NULL;
    pthread_mutex_unlock(&ev->lock);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

bool hc__events_wanted(const hc_events *ev, hc_event_kind kind)
{
    return ev != NULL && (atomic_load_explicit(&ev->mask, memory_order_relaxed) & (uint32_t)kind) != 0;
}

uint64_t hc__events_published(const hc_events *ev)
{
    return ev == NULL ? 0 : atomic_load_explicit(&ev->published, memory_order_relaxed);
}

uint64_t hc__events_lag(const hc_events *ev)
{
    return ev == NULL ? 0 : atomic_load_explicit(&ev->lag, memory_order_relaxed);
}

/* Under the hub lock. */
static void recompute_mask(hc_events *ev)
{
    uint32_t m = 0;
    for (const hc_subscriber *s = ev->subs; s != NULL; s = s->next)
        m |= s->mask;
    atomic_store_explicit(&ev->mask, m, memory_order_relaxed);
}

/* Append e, overwriting the oldest event when full.  Returns events dropped (0 or 1). */
static uint64_t do_ring_push(hc_subscriber *s, const hc_event *e)
{
    uint64_t dropped = 0;
    if (s->count == s->cap) {
        s->head = (s->head + 1) % s->cap;
        s->count--;
        s->lost++;
        dropped = 1;
    }
    s->ring[(s->head + s->count) % s->cap] = *e;
    s->count++;
    return dropped;
}

void hc__events_emit(hc_events *ev, hc_event_kind kind, hc_origin origin,
                     hc_evict_reason reason, const char *subject, uint64_t time_ms)
{
    if (!hc__events_wanted(ev, kind))
        return;

    /* Built once on the stack and copied into each ring: no allocation. */
    hc_event e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.origin = origin;
    e.reason = reason;
    e.time_ms = time_ms;
    if (subject != NULL) {
        size_t n = strnlen(subject, HC_EVENT_SUBJECT_MAX);
        if (n >= HC_EVENT_SUBJECT_MAX) {
            n = HC_EVENT_SUBJECT_MAX - 1;
            e.subject_truncated = true;
        }
        memcpy(e.subject, subject, n);
        e.subject[n] = '\0';
    }

    uint64_t dropped = 0;
    bool delivered = false;
    pthread_mutex_lock(&ev->lock);
    for (hc_subscriber *s = ev->subs; s != NULL; s = s->next) {
        if ((s->mask & (uint32_t)kind) == 0)
            continue;
        if (!delivered) {
            /* Numbered only once someone takes it, so seq gaps seen by a
             * subscriber mean filtered or lost events, not unheard ones. */
            e.seq = ++ev->seq;
            delivered = true;
        }
        pthread_mutex_lock(&s->lock);
        dropped += do_ring_push(s, &e);
        pthread_cond_signal(&s->nonempty);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&ev->lock);

    if (delivered)
        atomic_fetch_add_explicit(&ev->published, 1, memory_order_relaxed);
    if (dropped != 0)
        atomic_fetch_add_explicit(&ev->lag, dropped, memory_order_relaxed);
}

/* Frees a subscriber that is no longer registered with any hub. */
static void subscriber_destroy(hc_subscriber *s)
{
    pthread_cond_destroy(&s->nonempty);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s);
}

static hc_subscriber *subscriber_create(uint32_t mask, size_t capacity, hc_error *err)
{
    hc_subscriber *s = hc__calloc(1, sizeof *s);
    if (s == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating an event subscriber");
        return NULL;
    }
    s->ring = hc__calloc(capacity, sizeof *s->ring);
    if (s->ring == NULL) {
        free(s);
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating a ring of %zu events", capacity);
        return NULL;
    }
    pthread_condattr_t ca;
    bool cond_ok = false;
    if (pthread_condattr_init(&ca) == 0) {
        /* Timed recv must not jump when the wall clock is set. */
        cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&s->nonempty, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond_ok) {
        free(s->ring);
        free(s);
        hc_error_set(err, HC_ERR_SYSTEM, "cannot create a subscriber condition variable");
        return NULL;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pthread_cond_destroy(&s->nonempty);
        free(s->ring);
        free(s);
        hc_error_set(err, HC_ERR_SYSTEM, "cannot create a subscriber mutex");
        return NULL;
    }
    s->mask = mask;
    s->cap = capacity;
    return s;
}

hc_subscriber *hc__events_subscribe(hc_events *ev, uint32_t mask, size_t capacity, hc_error *err)
{
    if (ev == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "event hub is NULL");
        return NULL;
    }
    if (mask == 0) {
        hc_error_set(err, HC_ERR_INVALID, "subscriber mask selects no event kinds");
        return NULL;
    }
    if (capacity == 0)
        capacity = HC_EVENTS_DEFAULT_CAPACITY;
    if (capacity > HC_EVENTS_MAX_CAPACITY) {
        hc_error_set(err, HC_ERR_TOO_LARGE, "subscriber capacity %zu exceeds %u events",
                     capacity, (unsigned)HC_EVENTS_MAX_CAPACITY);
        return NULL;
    }
    hc_subscriber *s = subscriber_create(mask, capacity, err);
    if (s == NULL)
        return NULL;

    pthread_mutex_lock(&ev->lock);
    s->hub = ev;
    s->next = ev->subs;
    if (ev->subs != NULL)
        ev->subs->prev = s;
    ev->subs = s;
    recompute_mask(ev);
    pthread_mutex_unlock(&ev->lock);
    return s;
}

/* Take s off its hub's list so emit stops reaching it.  The hub must still
 * be alive unless hc__events_free orphaned s (then hub is NULL). */
static void subscriber_unregister(hc_subscriber *s)
{
    pthread_mutex_lock(&s->lock);
    hc_events *ev = s->hub;
    pthread_mutex_unlock(&s->lock);
    if (ev == NULL)
        return;

    pthread_mutex_lock(&ev->lock);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        ev->subs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    recompute_mask(ev);
    pthread_mutex_lock(&s->lock);
    s->hub = NULL;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&ev->lock);
}

HC_EXTERN void hc_subscriber_free(hc_subscriber *s)
{
    if (s == NULL)
        return;
    subscriber_unregister(s);
    subscriber_destroy(s);
}

/* Also returns HC_ERR_CLOSED once a listener is stopping (internal use). */
HC_EXTERN hc_status hc_subscriber_recv(hc_subscriber *s, hc_event *out, int timeout_ms)
{
    if (s == NULL || out == NULL)
        return HC_ERR_INVALID;

    struct timespec deadline = {0, 0};
    if (timeout_ms > 0)
        deadline = hc__deadline_after(timeout_ms);

    hc_status st;
    pthread_mutex_lock(&s->lock);
    while (!s->closed && s->count == 0 && s->lost == 0) {
        if (timeout_ms == 0)
            break;
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->nonempty, &s->lock);
        } else if (pthread_cond_timedwait(&s->nonempty, &s->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    if (s->closed) {
        st = HC_ERR_CLOSED;
    } else if (s->lost != 0) {
        /* Lost events are always older than the retained ones, so the loss
         * is reported first and the ring is read on the following calls. */
        memset(out, 0, sizeof *out);
        out->lost = s->lost;
        s->lost = 0;
        st = HC_LAGGED;
    } else if (s->count != 0) {
        *out = s->ring[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        st = HC_OK;
    } else {
        st = HC_TIMEOUT;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

static void listener_destroy(hc_listener *l)
{
    subscriber_destroy(l->sub);
    free(l);
}

static void *listener_main(void *arg)
{
    hc_listener *l = arg;
    hc_event e;
    hc_status st;

    tls_listener = l;
    while ((st = hc_subscriber_recv(l->sub, &e, -1)) != HC_ERR_CLOSED)
        l->fn(l->ctx, st, &e);
    tls_listener = NULL;

    /* Written by this very thread inside fn, so no lock is needed to read it. */
    if (l->self_freed)
        listener_destroy(l);
    return NULL;
}

hc_listener *hc__events_listen(hc_events *ev, uint32_t mask, hc_listener_fn fn, void *ctx,
                               hc_error *err)
{
    if (fn == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "listener callback is NULL");
        return NULL;
    }
    hc_listener *l = hc__calloc(1, sizeof *l);
    if (l == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory allocating an event listener");
        return NULL;
    }
    l->fn = fn;
    l->ctx = ctx;
    l->sub = hc__events_subscribe(ev, mask, 0, err);
    if (l->sub == NULL) {
        free(l);
        return NULL;
    }
    int rc = pthread_create(&l->thread, NULL, listener_main, l);
    if (rc != 0) {
        hc_subscriber_free(l->sub);
        free(l);
        hc_error_set(err, HC_ERR_SYSTEM, "cannot start listener thread: %s", strerror(rc));
        return NULL;
    }
    return l;
}

HC_EXTERN void hc_listener_free(hc_listener *l)
{
    if (l == NULL)
        return;

    /* Stop deliveries first: after this no new event reaches the ring. */
    subscriber_unregister(l->sub);

    bool inside_fn = tls_listener == l;
    pthread_mutex_lock(&l->sub->lock);
    l->sub->closed = true;
    pthread_cond_signal(&l->sub->nonempty);
    pthread_mutex_unlock(&l->sub->lock);

    if (inside_fn) {
        /* Joining ourselves would deadlock: the thread finishes the current
         * callback, sees closed, and frees everything itself. */
        l->self_freed = true;
        pthread_detach(pthread_self());
        return;
    }
    pthread_join(l->thread, NULL);
    listener_destroy(l);
}

/* ------------------------------------------------------------------ names */

HC_EXTERN const char *hc_origin_str(hc_origin o)
{
    switch (o) {
    case HC_ORIGIN_LOCAL: return "local";
    case HC_ORIGIN_BUS: return "bus";
    case HC_ORIGIN_DATABASE: return "database";
    }
    return "unknown";
}

HC_EXTERN const char *hc_event_kind_str(hc_event_kind k)
{
    switch (k) {
    case HC_EV_PUT: return "put";
    case HC_EV_INVALIDATE_KEY: return "invalidate_key";
    case HC_EV_INVALIDATE_TAG: return "invalidate_tag";
    case HC_EV_FLUSH: return "flush";
    case HC_EV_EVICT: return "evict";
    case HC_EV_STALE_DISCARD: return "stale_discard";
    case HC_EV_BUS_DISCONNECT: return "bus_disconnect";
    case HC_EV_BUS_RECONNECT: return "bus_reconnect";
    case HC_EV_BYPASS_ON: return "bypass_on";
    case HC_EV_BYPASS_OFF: return "bypass_off";
    case HC_EV_HIT: return "hit";
    case HC_EV_MISS: return "miss";
    case HC_EV_LOAD: return "load";
    case HC_EV_LOAD_ERROR: return "load_error";
    }
    return "unknown";
}
