/*
 * events.h (private) - the event hub behind hc_subscribe / hc_listen.
 *
 * cache.c owns one hc_events per cache and calls hc__events_emit at each
 * mutation, invalidation, eviction and (when enabled) access.  Emitting never
 * blocks on subscribers: each subscriber has a bounded ring that overwrites
 * its oldest events and reports the loss as HC_LAGGED.
 *
 * Thread-safety: every function may be called from any thread, except
 * hc__events_free, which requires that no subscriber or listener remains.
 */
#ifndef HC_EVENTS_H
#define HC_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef struct hc_events hc_events;

/* Ring size when hc_subscribe is given capacity 0, and the largest accepted
 * (HC_ERR_TOO_LARGE above it: a ring is allocated up front, ~300 B/event). */
#define HC_EVENTS_DEFAULT_CAPACITY 1024u
#define HC_EVENTS_MAX_CAPACITY (1u << 20)

/* NULL on allocation failure. */
hc_events *hc__events_new(void);
/* NULL-safe.  Subscribers still registered are orphaned (they stop receiving
 * and may still be freed afterwards), but callers should free them first. */
void hc__events_free(hc_events *ev);

/* Cheap (one relaxed atomic load): does any live subscriber want kind?
 * Callers test this before building an event so emitting costs nothing when
 * nobody listens. */
bool hc__events_wanted(const hc_events *ev, hc_event_kind kind);

/* Deliver one event to every subscriber whose mask has kind.  subject may be
 * NULL (empty) and is truncated to HC_EVENT_SUBJECT_MAX - 1 bytes.  Only
 * events that reach some ring take a seq number, so every ring sees seq
 * strictly increasing and gaps mean filtered-out or lost events. */
void hc__events_emit(hc_events *ev, hc_event_kind kind, hc_origin origin,
                     hc_evict_reason reason, const char *subject, uint64_t time_ms);

/* Counters for hc_stats: events delivered to at least one subscriber ring,
 * and events lost by lagging subscribers. */
uint64_t hc__events_published(const hc_events *ev);
uint64_t hc__events_lag(const hc_events *ev);

/* Back ends of hc_subscribe / hc_listen (cache.c forwards to these).
 * HC_ERR_INVALID: ev NULL, mask 0, or (listen) fn NULL.  HC_ERR_TOO_LARGE:
 * capacity over HC_EVENTS_MAX_CAPACITY.  HC_ERR_NOMEM / HC_ERR_SYSTEM on
 * allocation or thread failure.  Free what these return before the hub.
 *
 * hc_listener_free may be called from any thread, including from inside
 * that listener's own callback: then it returns at once, fn is not called
 * again, and the listener thread frees itself when fn returns (so ctx must
 * stay valid until then).  From anywhere else it joins the thread, so fn is
 * never running or called once it returns. */
hc_subscriber *hc__events_subscribe(hc_events *ev, uint32_t mask, size_t capacity, hc_error *err);
hc_listener *hc__events_listen(hc_events *ev, uint32_t mask, hc_listener_fn fn, void *ctx,
                               hc_error *err);

#endif
