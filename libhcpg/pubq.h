/*
 * pubq.h (private) - the PostgreSQL bus's publish queue: this node's
 * invalidations and sync tokens waiting to be sent, the batch in flight, the
 * "a publish was lost, broadcast a flush" flag, and the encoding of a batch
 * into one text[] literal of wire v1 payloads.  No libpq: the transports
 * (NOTIFY, WAL) send the literal in one statement of their own.
 *
 * A failed publish cannot be retried precisely, so it is replaced by a flush
 * broadcast (need_flush): the other nodes over-invalidate instead of keeping
 * a stale entry.  Sync tokens are never lost: a failed batch puts them back
 * at the head of the queue.
 *
 * Thread-safety: none; the owner serialises every call (the pg bus holds its
 * mutex).  hc__pubq_encode reads only a detached batch and may run unlocked
 * while the owner keeps the queue itself locked elsewhere.  Allocation goes
 * through alloc.h.
 */
#ifndef HC_PUBQ_H
#define HC_PUBQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef struct hc_pubq_item {
    struct hc_pubq_item *next;
    hc_cache *from;    /* NULL once forgotten, or for sync tokens */
    hc_wire_op op;
    uint64_t sync_seq; /* HC_WIRE_SYNC only */
    char arg[];        /* key or tag; empty for flush and sync */
} hc_pubq_item;

typedef struct hc_pubq {
    size_t max;                /* bound on queued invalidations (syncs are not bounded) */
    hc_pubq_item *head, *tail; /* waiting */
    size_t inval;              /* queued invalidations */
    hc_pubq_item *inflight;    /* taken by hc__pubq_take, not yet done/failed */
    bool inflight_flush;       /* the batch in flight carries a flush broadcast */
    bool need_flush;           /* a publish was lost: the next batch starts with a flush */
    uint64_t sync_next;        /* last sync sequence number handed out */
    uint64_t published, publish_failures, flush_broadcasts;
} hc_pubq;

void hc__pubq_init(hc_pubq *q, size_t max);
/* Frees every item (nothing counted). */
void hc__pubq_destroy(hc_pubq *q);

/*
 * Queue one invalidation of `from` (flush when kind is HC_INVAL_FLUSH or arg
 * is NULL/empty).  HC_OK, *was_empty telling whether the queue was empty
 * before; when full or out of memory the invalidation is counted as a publish
 * failure (on q and on `from`), a flush broadcast is scheduled and
 * HC_ERR_BUSY / HC_ERR_NOMEM is returned.
 */
hc_status hc__pubq_push(hc_pubq *q, hc_cache *from, hc_inval_kind kind, const char *arg,
                        bool *was_empty);
/* Count one invalidation of `from` as lost without scheduling a flush (the bus is stopping). */
void hc__pubq_drop(hc_pubq *q, hc_cache *from);
/* Queue a sync token; *seq receives its sequence number.  HC_ERR_NOMEM. */
hc_status hc__pubq_push_sync(hc_pubq *q, uint64_t *seq, bool *was_empty);
/* Cache c is being detached: forget every reference to it. */
void hc__pubq_forget(hc_pubq *q, hc_cache *c);
/* Something to send: queued items or a pending flush broadcast. */
bool hc__pubq_has_work(const hc_pubq *q);

/*
 * Move the next batch (at most max_items items and about max_bytes of args)
 * into q->inflight, with the pending flush broadcast if any (counted).
 * Returns q->inflight (may be NULL with q->inflight_flush set).
 */
hc_pubq_item *hc__pubq_take(hc_pubq *q, size_t max_items, size_t max_bytes);
/* The batch in flight committed: count it published; returns its highest sync seq (0: none). */
uint64_t hc__pubq_done(hc_pubq *q);
/* The batch in flight failed or may not have committed: its invalidations
 * (and flush) become a flush broadcast, its sync tokens go back to the head. */
void hc__pubq_fail_inflight(hc_pubq *q);
/* Stopping: count everything queued or in flight as failed and free it. */
void hc__pubq_clear(hc_pubq *q);

/*
 * Encode a batch (a flush first when flush_first) as wire v1 payloads from
 * origin node_id, sync tokens as "<epoch>.<seq>", into a PostgreSQL text[]
 * literal ("{\"hc1 ...\",...}"), malloc'd into *out.  Consecutive keys/tags
 * of one kind share payloads; consecutive flushes collapse into one; an arg
 * too long for a payload becomes a flush (never truncated).  HC_OK or
 * HC_ERR_NOMEM (nothing in *out).
 */
hc_status hc__pubq_encode(const hc_pubq_item *batch, bool flush_first, const char *node_id,
                          const char *epoch, char **out);

#endif
