/*
 * inflight.h (private) - single-flight: at most one loader run per missing
 * key; later callers join it and wait for its result.
 *
 * A flight is found by key among the *attached* flights.  Invalidations
 * detach matching flights, so callers arriving afterwards start a fresh load
 * instead of joining one that began before the invalidation; the detached
 * flight still completes and hands its result to those already waiting.
 *
 * Locking: one mutex per slot (slot = key hash); joiners wait on the
 * flight's condition variable under that mutex.  The recheck callback of
 * hc__inflight_begin runs under the slot mutex, so the lock order is
 * inflight slot -> store shard, never the reverse.  All functions are
 * thread-safe except hc__inflight_free.
 */
#ifndef HC_INFLIGHT_H
#define HC_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef struct hc_inflight hc_inflight;
typedef struct hc_flight hc_flight;

hc_inflight *hc__inflight_new(unsigned slots); /* slots: power of two */
void hc__inflight_free(hc_inflight *f);

/* Looks the key up once more (e.g. in the store) before a new flight is
 * created: returns a new value reference for a hit, NULL otherwise. */
typedef hc_value *(*hc_inflight_recheck_fn)(void *ctx);

typedef enum hc_flight_role {
    HC_FLIGHT_HIT,    /* recheck found the value: *hit set, no flight */
    HC_FLIGHT_LEADER, /* caller runs the loader, then hc__inflight_finish */
    HC_FLIGHT_JOINER  /* caller waits with hc__inflight_wait */
} hc_flight_role;

/*
 * Join the attached flight for key, or (after recheck misses) create one
 * whose tags hash to tag_hashes[0..ntags) (used by hc__inflight_detach_tag).
 * HC_ERR_NOMEM when a new flight cannot be allocated; HC_ERR_STATE when the
 * calling thread leads the flight for key itself (a loader asking for its
 * own key), which could only deadlock.
 */
hc_status hc__inflight_begin(hc_inflight *f, const char *key, size_t klen, uint64_t hash,
                             const uint64_t *tag_hashes, size_t ntags,
                             hc_inflight_recheck_fn recheck, void *rctx, hc_flight_role *role,
                             hc_flight **out, hc_value **hit);

/* Joiner: wait for the leader, then take its result (a new value reference,
 * or its status and message). */
hc_status hc__inflight_wait(hc_inflight *f, hc_flight *fl, hc_value **out, hc_error *err);

/* Leader: publish the result (v borrowed; joiners get their own references)
 * and wake the joiners.  err carries the message for an error status. */
void hc__inflight_finish(hc_inflight *f, hc_flight *fl, hc_status st, hc_value *v,
                         const hc_error *err);

void hc__inflight_detach_key(hc_inflight *f, const char *key, size_t klen, uint64_t hash);
void hc__inflight_detach_tag(hc_inflight *f, uint64_t tag_hash);
void hc__inflight_detach_all(hc_inflight *f);

#endif
