/* pubq.c - the PostgreSQL bus's publish queue and batch encoding (pubq.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pubq.h"

void hc__pubq_init(hc_pubq *q, size_t max)
{
    memset(q, 0, sizeof *q);
    q->max = max;
}

static void free_list(hc_pubq_item *it)
{
    while (it) {
        hc_pubq_item *n = it->next;
        free(it);
        it = n;
    }
}

void hc__pubq_destroy(hc_pubq *q)
{
    free_list(q->inflight);
    free_list(q->head);
    q->inflight = q->head = q->tail = NULL;
    q->inval = 0;
}

static void fail_one(hc_pubq *q, hc_cache *from, bool flush)
{
    q->publish_failures++;
    if (flush) q->need_flush = true;
    if (from) hc_cache_bus_count(from, HC_BUSCTR_PUBLISH_FAILURES, 1);
}

void hc__pubq_drop(hc_pubq *q, hc_cache *from)
{
    fail_one(q, from, false);
}

static void append(hc_pubq *q, hc_pubq_item *it, bool *was_empty)
{
    if (was_empty) *was_empty = q->head == NULL;
    it->next = NULL;
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
}

hc_status hc__pubq_push(hc_pubq *q, hc_cache *from, hc_inval_kind kind, const char *arg,
                        bool *was_empty)
{
    hc_wire_op op = kind == HC_INVAL_KEY ? HC_WIRE_KEYS : kind == HC_INVAL_TAG ? HC_WIRE_TAGS
                                                                               : HC_WIRE_FLUSH;
    if (op == HC_WIRE_FLUSH || arg == NULL) arg = "";
    size_t len = strlen(arg);
    /* An empty key/tag cannot be encoded (args are never empty): flush instead. */
    if (op != HC_WIRE_FLUSH && len == 0) op = HC_WIRE_FLUSH;
    if (was_empty) *was_empty = false;
    if (q->inval >= q->max) {
        fail_one(q, from, true);
        return HC_ERR_BUSY;
    }
    hc_pubq_item *it = hc__malloc(sizeof *it + len + 1);
    if (it == NULL) {
        fail_one(q, from, true);
        return HC_ERR_NOMEM;
    }
    it->from = from;
    it->op = op;
    it->sync_seq = 0;
    memcpy(it->arg, arg, len + 1);
    append(q, it, was_empty);
    q->inval++;
    return HC_OK;
}

hc_status hc__pubq_push_sync(hc_pubq *q, uint64_t *seq, bool *was_empty)
{
    hc_pubq_item *it = hc__malloc(sizeof *it + 1);
    if (it == NULL) return HC_ERR_NOMEM;
    it->from = NULL;
    it->op = HC_WIRE_SYNC;
    it->sync_seq = *seq = ++q->sync_next;
    it->arg[0] = '\0';
    append(q, it, was_empty);
    return HC_OK;
}

void hc__pubq_forget(hc_pubq *q, hc_cache *c)
{
    for (hc_pubq_item *it = q->head; it; it = it->next)
        if (it->from == c) it->from = NULL;
    for (hc_pubq_item *it = q->inflight; it; it = it->next)
        if (it->from == c) it->from = NULL;
}

bool hc__pubq_has_work(const hc_pubq *q)
{
    return q->head != NULL || q->need_flush;
}

hc_pubq_item *hc__pubq_take(hc_pubq *q, size_t max_items, size_t max_bytes)
{
    bool flush_first = q->need_flush;
    q->need_flush = false;
    hc_pubq_item *batch = q->head, *last = NULL;
    size_t items = 0, bytes = 0;
    for (hc_pubq_item *it = q->head; it && items < max_items && bytes < max_bytes;
         it = it->next) {
        last = it;
        items++;
        bytes += strlen(it->arg) * 3 + 8;
        if (it->op != HC_WIRE_SYNC) q->inval--;
    }
    if (last != NULL) {
        q->head = last->next;
        if (q->head == NULL) q->tail = NULL;
        last->next = NULL;
    } else {
        batch = NULL;
    }
    q->inflight = batch;
    q->inflight_flush = flush_first;
    if (flush_first) q->flush_broadcasts++;
    return batch;
}

uint64_t hc__pubq_done(hc_pubq *q)
{
    uint64_t seq = 0;
    for (hc_pubq_item *it = q->inflight; it; it = it->next) {
        if (it->op == HC_WIRE_SYNC) {
            if (it->sync_seq > seq) seq = it->sync_seq;
            continue;
        }
        q->published++;
        if (it->from) hc_cache_bus_count(it->from, HC_BUSCTR_PUBLISHED, 1);
    }
    free_list(q->inflight);
    q->inflight = NULL;
    q->inflight_flush = false;
    return seq;
}

static void fail_items(hc_pubq *q, hc_pubq_item *list)
{
    for (hc_pubq_item *it = list; it; it = it->next)
        if (it->op != HC_WIRE_SYNC) fail_one(q, it->from, true);
}

void hc__pubq_fail_inflight(hc_pubq *q)
{
    fail_items(q, q->inflight);
    if (q->inflight_flush) q->need_flush = true;
    /* Sync tokens go back to the head of the queue: sent later they still
     * prove everything committed before their sync call. */
    hc_pubq_item *first = NULL, *last = NULL;
    for (hc_pubq_item *it = q->inflight, *next; it; it = next) {
        next = it->next;
        if (it->op != HC_WIRE_SYNC) {
            free(it);
            continue;
        }
        it->next = NULL;
        if (last) last->next = it;
        else first = it;
        last = it;
    }
    if (first != NULL) {
        last->next = q->head;
        if (q->head == NULL) q->tail = last;
        q->head = first;
    }
    q->inflight = NULL;
    q->inflight_flush = false;
}

void hc__pubq_clear(hc_pubq *q)
{
    fail_items(q, q->inflight);
    fail_items(q, q->head);
    hc__pubq_destroy(q);
    q->need_flush = false;
    q->inflight_flush = false;
}

/* ----------------------------------------------------------- encoding */

typedef struct arraybuf {
    char *p;
    size_t n, cap;
    size_t count;
    bool oom;
} arraybuf;

static void ab_put(arraybuf *ab, const char *s, size_t len)
{
    if (ab->oom) return;
    if (ab->n + len + 1 > ab->cap) {
        size_t ncap = ab->cap ? ab->cap : 1024;
        while (ab->n + len + 1 > ncap) ncap *= 2;
        char *np = hc__realloc(ab->p, ncap);
        if (np == NULL) {
            ab->oom = true;
            return;
        }
        ab->p = np;
        ab->cap = ncap;
    }
    memcpy(ab->p + ab->n, s, len);
    ab->n += len;
    ab->p[ab->n] = '\0';
}

/* Append one payload as a quoted text[] element. */
static hc_status ab_payload(void *ctx, const char *payload, size_t len)
{
    arraybuf *ab = ctx;
    ab_put(ab, ab->count ? ",\"" : "\"", ab->count ? 2 : 1);
    for (size_t i = 0; i < len; i++) {
        if (payload[i] == '"' || payload[i] == '\\') ab_put(ab, "\\", 1);
        ab_put(ab, payload + i, 1);
    }
    ab_put(ab, "\"", 1);
    ab->count++;
    return ab->oom ? HC_ERR_NOMEM : HC_OK;
}

/* Encode a run of n same-op items starting at first. */
static hc_status encode_run(const char *node_id, arraybuf *ab, const hc_pubq_item *first, size_t n)
{
    const char *stackv[64];
    const char **v = n <= 64 ? stackv : hc__malloc(n * sizeof *v);
    if (v == NULL) return HC_ERR_NOMEM;
    const hc_pubq_item *it = first;
    for (size_t i = 0; i < n; i++, it = it->next) v[i] = it->arg;
    hc_status st = hc_wire_encode(node_id, first->op, v, n, ab_payload, ab, NULL);
    if (v != stackv) free(v);
    return st;
}

static hc_status encode_flush(const char *node_id, arraybuf *ab)
{
    return hc_wire_encode(node_id, HC_WIRE_FLUSH, NULL, 0, ab_payload, ab, NULL);
}

hc_status hc__pubq_encode(const hc_pubq_item *batch, bool flush_first, const char *node_id,
                          const char *epoch, char **out)
{
    arraybuf ab = {0};
    *out = NULL;
    ab_put(&ab, "{", 1);
    hc_status st = flush_first ? encode_flush(node_id, &ab) : HC_OK;
    const hc_pubq_item *it = batch;
    while (st == HC_OK && it != NULL) {
        if (it->op == HC_WIRE_SYNC) {
            char tok[64];
            snprintf(tok, sizeof tok, "%s.%" PRIu64, epoch, it->sync_seq);
            const char *args[] = {tok};
            st = hc_wire_encode(node_id, HC_WIRE_SYNC, args, 1, ab_payload, &ab, NULL);
            it = it->next;
        } else if (it->op == HC_WIRE_FLUSH) {
            st = encode_flush(node_id, &ab);
            while (it != NULL && it->op == HC_WIRE_FLUSH) it = it->next; /* collapse */
        } else {
            size_t n = 0;
            const hc_pubq_item *e = it;
            while (e != NULL && e->op == it->op) e = e->next, n++;
            st = encode_run(node_id, &ab, it, n);
            it = e;
        }
        /* Cannot happen for keys/tags within HC_MAX_KEY_LEN; never
         * truncate: over-invalidate. */
        if (st == HC_ERR_TOO_LARGE) st = encode_flush(node_id, &ab);
    }
    ab_put(&ab, "}", 1);
    if (st == HC_OK && ab.oom) st = HC_ERR_NOMEM;
    if (st != HC_OK) {
        free(ab.p);
        return HC_ERR_NOMEM;
    }
    *out = ab.p;
    return HC_OK;
}
