/*
 * events.h (private) - the event hub behind hc_subscribe / hc_listen.
 *
 * cache.c owns one hc_events per cache and calls hc_events_emit at each
 * mutation, invalidation, eviction and (when enabled) access.  Emitting never
 * blocks on subscribers: each subscriber has a bounded ring that overwrites
 * its oldest events and reports the loss as HC_LAGGED.
 *
 * Thread-safety: every function may be called from any thread, except
 * hc_events_free, which requires that no subscriber or listener remains.
 */
#ifndef HC_EVENTS_H
#define HC_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef struct hc_events hc_events;

hc_events *hc_events_new(void);
void hc_events_free(hc_events *ev);

/* Cheap (one relaxed atomic load): does any live subscriber want kind?
 * Callers test this before building an event so emitting costs nothing when
 * nobody listens. */
bool hc_events_wanted(const hc_events *ev, hc_event_kind kind);

/* Deliver one event to every subscriber whose mask has kind.  subject may be
 * NULL (empty) and is truncated to HC_EVENT_SUBJECT_MAX - 1 bytes. */
void hc_events_emit(hc_events *ev, hc_event_kind kind, hc_origin origin,
                    hc_evict_reason reason, const char *subject, uint64_t time_ms);

/* Counters for hc_stats: events delivered to at least one subscriber ring,
 * and events lost by lagging subscribers. */
uint64_t hc_events_published(const hc_events *ev);
uint64_t hc_events_lag(const hc_events *ev);

/* Back ends of hc_subscribe / hc_listen (cache.c forwards to these). */
hc_subscriber *hc_events_subscribe(hc_events *ev, uint32_t mask, size_t capacity, hc_error *err);
hc_listener *hc_events_listen(hc_events *ev, uint32_t mask, hc_listener_fn fn, void *ctx,
                              hc_error *err);

#endif
