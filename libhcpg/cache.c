/*
 * cache.c - the public cache API: argument checking, TTLs, single-flight
 * loads guarded by generations, invalidation, bypass, publisher hooks,
 * stats/diagnostics and event forwarding.  Storage lives in store.c,
 * flights in inflight.c, tags and generations in tags.c.
 *
 * Freshness: a value loaded before an invalidation (of its key, one of its
 * tags, or a flush) must not be readable once that invalidation returned,
 * else readers would get rows the database has already changed.  So every
 * invalidation first bumps a generation (key slot, tag slot or the flush
 * epoch), then removes entries under the shard locks, then detaches
 * matching flights.  A load snapshots the
 * generations before its loader runs and stores only if they are unchanged,
 * checked under the destination shard's lock (store.h guard), so a load
 * overtaken by an invalidation is either refused or removed by it.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "cache_int.h"
#include "events.h"
#include "hash.h"
#include "inflight.h"
#include "key.h"
#include "stats.h"
#include "store.h"
#include "tags.h"

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define DEFAULT_SHARDS 16u
#define MAX_SHARDS 1024u

struct hc_cache {
    char *name;
    hc_store *store;
    hc_inflight *inflight;
    hc_events *events;
    hc_counters *ctrs;
    hc_clock_fn clock;
    void *clock_ctx;
    uint64_t default_ttl_ms;
    size_t max_bytes, max_entries;
    atomic_bool bypass;
    atomic_bool access_events;
    atomic_int bus_state;
    _Atomic uint64_t flush_epoch;
    pthread_rwlock_t pub_lock; /* held shared while the publisher runs */
    hc_publish_fn pub_fn;
    void *pub_ctx;
    hc_gens tag_gens;
    hc_gens key_gens;
};

/* ------------------------------------------------------------------ helpers */

static uint64_t monotonic_ms(void *ctx)
{
    (void)ctx;
    return hc__monotonic_ms();
}

static uint64_t now_ms(const hc_cache *c)
{
    return c->clock(c->clock_ctx);
}

static void count(hc_cache *c, hc_ctr ctr)
{
    hc__counters_add(c->ctrs, ctr, 1);
}

static void emit(hc_cache *c, hc_event_kind kind, hc_origin origin, hc_evict_reason reason,
                 const char *subject)
{
    if (hc__events_wanted(c->events, kind))
        hc__events_emit(c->events, kind, origin, reason, subject, now_ms(c));
}

/* Access events are hot: gated by hc_enable_access_events first. */
static void emit_access(hc_cache *c, hc_event_kind kind, const char *key)
{
    if (atomic_load_explicit(&c->access_events, memory_order_relaxed))
        emit(c, kind, HC_ORIGIN_LOCAL, HC_EVICT_NONE, key);
}

static hc_status check_cache(const hc_cache *c, hc_error *err)
{
    return c != NULL ? HC_OK : hc_error_set(err, HC_ERR_INVALID, "cache is NULL");
}

static void on_evict(void *ctx, const char *key, uint64_t hash, hc_evict_reason reason)
{
    (void)hash;
    hc_cache *c = ctx;
    count(c, reason == HC_EVICT_EXPIRED ? HC_CTR_EVICT_EXPIRED : HC_CTR_EVICT_CAPACITY);
    emit(c, HC_EV_EVICT, HC_ORIGIN_LOCAL, reason, key);
}

static uint64_t expiry_of(const hc_cache *c, const hc_opts *opts)
{
    uint64_t ttl = opts != NULL ? opts->ttl_ms : HC_TTL_DEFAULT;
    if (ttl == HC_TTL_DEFAULT)
        ttl = c->default_ttl_ms;
    if (ttl == 0 || ttl == HC_TTL_FOREVER)
        return 0;
    uint64_t now = now_ms(c);
    return now > UINT64_MAX - ttl ? 0 : now + ttl;
}

static unsigned round_shards(unsigned n)
{
    if (n == 0)
        n = DEFAULT_SHARDS;
    if (n > MAX_SHARDS)
        n = MAX_SHARDS;
    unsigned p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* ------------------------------------------------------------------ lifecycle */

/* Free c and its parts (any of which may be missing); NULL-safe. */
static void free_parts(hc_cache *c)
{
    if (c == NULL)
        return;
    hc__events_free(c->events);
    hc__counters_free(c->ctrs);
    hc__inflight_free(c->inflight);
    hc__store_free(c->store);
    free(c->name);
    free(c);
}

HC_EXTERN hc_cache *hc_cache_new(const hc_config *cfg, hc_error *err)
{
    hc_config def = {0};
    if (cfg == NULL)
        cfg = &def;
    hc_cache *c = hc__calloc(1, sizeof *c);
    if (c == NULL)
        goto nomem;
    c->name = hc__strdup(cfg->name != NULL ? cfg->name : "default");
    c->clock = cfg->clock != NULL ? cfg->clock : monotonic_ms;
    c->clock_ctx = cfg->clock != NULL ? cfg->clock_ctx : NULL;
    c->default_ttl_ms = cfg->default_ttl_ms;
    c->max_bytes = cfg->max_bytes != 0 ? cfg->max_bytes : DEFAULT_MAX_BYTES;
    c->max_entries = cfg->max_entries;
    unsigned shards = round_shards(cfg->shards);
    hc_store_config sc = {
        .max_bytes = c->max_bytes,
        .max_entries = c->max_entries,
        .shards = shards,
        .clock = c->clock,
        .clock_ctx = c->clock_ctx,
        .on_evict = on_evict,
        .evict_ctx = c,
    };
    c->store = c->name != NULL ? hc__store_new(&sc) : NULL;
    c->inflight = c->store != NULL ? hc__inflight_new(shards) : NULL;
    c->ctrs = c->inflight != NULL ? hc__counters_new() : NULL;
    c->events = c->ctrs != NULL ? hc__events_new() : NULL;
    if (c->events == NULL)
        goto nomem;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* a detach must not starve behind a stream of publishes */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&c->pub_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        goto nomem;
    atomic_init(&c->bypass, false);
    atomic_init(&c->access_events, false);
    atomic_init(&c->bus_state, HC_BUS_NONE);
    atomic_init(&c->flush_epoch, 0);
    hc__gens_init(&c->tag_gens);
    hc__gens_init(&c->key_gens);
    return c;

nomem:
    free_parts(c);
    hc_error_set(err, HC_ERR_NOMEM, "out of memory creating a cache");
    return NULL;
}

HC_EXTERN void hc_cache_free(hc_cache *c)
{
    if (c == NULL)
        return;
    pthread_rwlock_destroy(&c->pub_lock);
    free_parts(c);
}

HC_EXTERN const char *hc_cache_name(const hc_cache *c)
{
    return c != NULL ? c->name : NULL;
}

/* ------------------------------------------------------------------ lookups */

HC_EXTERN hc_status hc_get(hc_cache *c, const char *key, hc_value **out, hc_error *err)
{
    size_t klen;
    if (out != NULL)
        *out = NULL;
    hc_status st = check_cache(c, err);
    if (st == HC_OK && out == NULL)
        st = hc_error_set(err, HC_ERR_INVALID, "out is NULL");
    if (st == HC_OK)
        st = hc__key_check(key, &klen, "key", err);
    if (st != HC_OK)
        return st;
    uint64_t hash = hc__hash(key, klen);
    st = atomic_load_explicit(&c->bypass, memory_order_relaxed)
             ? HC_MISS
             : hc__store_get(c->store, key, klen, hash, out);
    count(c, st == HC_OK ? HC_CTR_HITS : HC_CTR_MISSES);
    emit_access(c, st == HC_OK ? HC_EV_HIT : HC_EV_MISS, key);
    return st;
}

HC_EXTERN hc_status hc_contains(hc_cache *c, const char *key, hc_error *err)
{
    size_t klen;
    hc_status st = check_cache(c, err);
    if (st == HC_OK)
        st = hc__key_check(key, &klen, "key", err);
    if (st != HC_OK)
        return st;
    hc_value *v = NULL;
    if (atomic_load_explicit(&c->bypass, memory_order_relaxed))
        return HC_MISS;
    st = hc__store_get(c->store, key, klen, hc__hash(key, klen), &v);
    hc_value_release(v);
    return st;
}

/* ------------------------------------------------------------------ puts */

static bool not_bypassed(void *ctx)
{
    hc_cache *c = ctx;
    return !atomic_load(&c->bypass);
}

/*
 * The put of data[0..len) under a valid key (the store keeps a copy); st
 * already says when the put failed.  Whatever the outcome, loads of key that began before the put are
 * neither stored (key generation) nor joined by later callers (flight
 * detached), and a put that stores nothing (it failed, bypass is on, or no
 * room was left) removes the key's entry instead of leaving an older value
 * readable.
 */
static hc_status put_checked(hc_cache *c, const char *key, size_t klen, const void *data,
                             size_t len, const hc_opts *opts, hc_status st, hc_error *err)
{
    size_t ntags = 0;
    const char *tags[HC_MAX_TAGS];
    bool stored = false;
    uint64_t hash = hc__hash(key, klen);
    /* bump, store or remove, detach: the order the freshness argument at the top needs */
    hc__gens_bump(&c->key_gens, hash);
    if (st == HC_OK)
        st = hc__opts_tags(opts, tags, &ntags, err);
    if (st == HC_OK)
        st = hc__store_put(c->store, key, klen, hash, data, len, tags, ntags, expiry_of(c, opts),
                           not_bypassed, c, &stored, err);
    if (stored) {
        count(c, HC_CTR_PUTS);
        emit(c, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, key);
    } else if (hc__store_remove(c->store, key, klen, hash) > 0) {
        emit(c, HC_EV_INVALIDATE_KEY, HC_ORIGIN_LOCAL, HC_EVICT_NONE, key);
    }
    hc__inflight_detach_key(c->inflight, key, klen, hash);
    return st;
}

HC_EXTERN hc_status hc_put_value(hc_cache *c, const char *key, hc_value *v,
                                 const hc_opts *opts, hc_error *err)
{
    size_t klen;
    hc_status st = check_cache(c, err);
    if (st == HC_OK)
        st = hc__key_check(key, &klen, "key", err);
    if (st != HC_OK)
        return st;
    if (v == NULL)
        st = hc_error_set(err, HC_ERR_INVALID, "value is NULL");
    return put_checked(c, key, klen, hc_value_data(v), hc_value_len(v), opts, st, err);
}

HC_EXTERN hc_status hc_put(hc_cache *c, const char *key, const void *data, size_t len,
                           const hc_opts *opts, hc_error *err)
{
    size_t klen;
    hc_status st = check_cache(c, err);
    if (st == HC_OK)
        st = hc__key_check(key, &klen, "key", err);
    if (st != HC_OK)
        return st;
    if (data == NULL && len > 0)
        st = hc_error_set(err, HC_ERR_INVALID, "data is NULL");
    else if (len > HC_MAX_VALUE_LEN)
        st = hc_error_set(err, HC_ERR_TOO_LARGE, "value longer than %zu bytes",
                          HC_MAX_VALUE_LEN);
    return put_checked(c, key, klen, data, len, opts, st, err);
}

/* ------------------------------------------------------------------ invalidation */

static void publish(hc_cache *c, hc_inval_kind kind, const char *arg)
{
    pthread_rwlock_rdlock(&c->pub_lock);
    if (c->pub_fn != NULL)
        c->pub_fn(c->pub_ctx, c, kind, arg);
    pthread_rwlock_unlock(&c->pub_lock);
}

/* Bump, remove, detach: the order the freshness argument at the top needs. */
static void flush_all(hc_cache *c)
{
    atomic_fetch_add(&c->flush_epoch, 1);
    hc__store_clear(c->store);
    hc__inflight_detach_all(c->inflight);
}

/* Apply one validated invalidation locally; no publishing. */
static void invalidate(hc_cache *c, hc_inval_kind kind, const char *arg, size_t len,
                       hc_origin origin)
{
    uint64_t hash = arg != NULL ? hc__hash(arg, len) : 0;
    switch (kind) {
    case HC_INVAL_KEY:
        hc__gens_bump(&c->key_gens, hash);
        hc__store_remove(c->store, arg, len, hash);
        hc__inflight_detach_key(c->inflight, arg, len, hash);
        count(c, HC_CTR_INVAL_KEY);
        emit(c, HC_EV_INVALIDATE_KEY, origin, HC_EVICT_NONE, arg);
        break;
    case HC_INVAL_TAG:
        hc__gens_bump(&c->tag_gens, hash);
        hc__store_remove_tag(c->store, arg, len, hash);
        hc__inflight_detach_tag(c->inflight, hash);
        count(c, HC_CTR_INVAL_TAG);
        emit(c, HC_EV_INVALIDATE_TAG, origin, HC_EVICT_NONE, arg);
        break;
    case HC_INVAL_FLUSH:
        flush_all(c);
        count(c, HC_CTR_INVAL_FLUSH);
        emit(c, HC_EV_FLUSH, origin, HC_EVICT_NONE, NULL);
        break;
    }
}

/* Validate kind/arg; *len_out receives the arg length (0 for flush). */
static hc_status check_inval(const hc_cache *c, hc_inval_kind kind, const char *arg,
                             size_t *len_out, hc_error *err)
{
    hc_status st = check_cache(c, err);
    if (st != HC_OK)
        return st;
    *len_out = 0;
    switch (kind) {
    case HC_INVAL_KEY: return hc__key_check(arg, len_out, "key", err);
    case HC_INVAL_TAG: return hc__key_check(arg, len_out, "tag", err);
    case HC_INVAL_FLUSH: return HC_OK;
    }
    return hc_error_set(err, HC_ERR_INVALID, "unknown invalidation kind %d", (int)kind);
}

static hc_status invalidate_local(hc_cache *c, hc_inval_kind kind, const char *arg,
                                  hc_error *err)
{
    size_t len;
    hc_status st = check_inval(c, kind, arg, &len, err);
    if (st != HC_OK)
        return st;
    invalidate(c, kind, arg, len, HC_ORIGIN_LOCAL);
    publish(c, kind, kind == HC_INVAL_FLUSH ? NULL : arg);
    return HC_OK;
}

HC_EXTERN hc_status hc_invalidate_key(hc_cache *c, const char *key, hc_error *err)
{
    return invalidate_local(c, HC_INVAL_KEY, key, err);
}

HC_EXTERN hc_status hc_remove(hc_cache *c, const char *key, hc_error *err)
{
    return invalidate_local(c, HC_INVAL_KEY, key, err);
}

HC_EXTERN hc_status hc_invalidate_tag(hc_cache *c, const char *tag, hc_error *err)
{
    return invalidate_local(c, HC_INVAL_TAG, tag, err);
}

HC_EXTERN hc_status hc_flush(hc_cache *c, hc_error *err)
{
    return invalidate_local(c, HC_INVAL_FLUSH, NULL, err);
}

HC_EXTERN hc_status hc_cache_apply(hc_cache *c, hc_inval_kind kind, const char *arg,
                                   hc_origin origin, hc_error *err)
{
    size_t len;
    hc_status st = check_inval(c, kind, arg, &len, err);
    if (st != HC_OK)
        return st;
    invalidate(c, kind, kind == HC_INVAL_FLUSH ? NULL : arg, len, origin);
    hc__counters_add(c->ctrs, HC_CTR_BUS_APPLIED, 1);
    return HC_OK;
}

void hc__cache_put_failed(hc_cache *c, const char *key)
{
    put_checked(c, key, strlen(key), NULL, 0, NULL, HC_ERR_INVALID, NULL);
}

void hc__cache_drop(hc_cache *c, const char *key)
{
    size_t len = strlen(key);
    hc__store_remove(c->store, key, len, hc__hash(key, len));
}

void hc__cache_bytes_split(hc_cache *c, hc_store_bytes *out)
{
    hc__store_bytes_split(c->store, out);
}

bool hc__cache_check(hc_cache *c, char *why, size_t cap)
{
    return hc__store_check(c->store, why, cap);
}

void hc__cache_count_bypass(hc_cache *c)
{
    count(c, HC_CTR_BYPASSED_LOADS);
}

HC_EXTERN size_t hc_cache_sweep(hc_cache *c)
{
    return c != NULL ? hc__store_sweep(c->store) : 0;
}

/* ------------------------------------------------------------------ loads */

/* Generations a load recorded before its loader ran. */
typedef struct snapshot {
    hc_cache *c;
    uint64_t epoch;
    uint64_t key_hash, key_gen;
    size_t ntags;
    uint64_t tag_hash[HC_MAX_TAGS];
    uint64_t tag_gen[HC_MAX_TAGS];
} snapshot;

static void take_snapshot(snapshot *s)
{
    s->epoch = atomic_load(&s->c->flush_epoch);
    s->key_gen = hc__gens_get(&s->c->key_gens, s->key_hash);
    for (size_t i = 0; i < s->ntags; i++)
        s->tag_gen[i] = hc__gens_get(&s->c->tag_gens, s->tag_hash[i]);
}

/* Store guard: still fresh (runs under the shard lock). */
static bool snapshot_current(void *ctx)
{
    snapshot *s = ctx;
    hc_cache *c = s->c;
    if (atomic_load(&c->bypass) || atomic_load(&c->flush_epoch) != s->epoch ||
        hc__gens_get(&c->key_gens, s->key_hash) != s->key_gen)
        return false;
    for (size_t i = 0; i < s->ntags; i++)
        if (hc__gens_get(&c->tag_gens, s->tag_hash[i]) != s->tag_gen[i])
            return false;
    return true;
}

typedef struct lookup {
    hc_cache *c;
    const char *key;
    size_t klen;
    uint64_t hash;
} lookup;

static hc_value *recheck_store(void *ctx)
{
    lookup *l = ctx;
    hc_value *v = NULL;
    if (atomic_load(&l->c->bypass))
        return NULL;
    hc__store_get(l->c->store, l->key, l->klen, l->hash, &v);
    return v;
}

/* Store a freshly loaded value unless the load went stale or bypass is on. */
static void store_loaded(hc_cache *c, const char *key, size_t klen, snapshot *snap,
                         const char *const *tags, const hc_opts *opts, hc_value *v)
{
    if (atomic_load(&c->bypass)) {
        count(c, HC_CTR_BYPASSED_LOADS);
        return;
    }
    bool stored = false;
    hc_error ignored;
    /* a failure to store (no memory, too large) still hands the value out */
    hc_status st = hc__store_put(c->store, key, klen, snap->key_hash, hc_value_data(v),
                                 hc_value_len(v), tags, snap->ntags,
                                 expiry_of(c, opts), snapshot_current, snap, &stored, &ignored);
    if (stored) {
        emit(c, HC_EV_PUT, HC_ORIGIN_LOCAL, HC_EVICT_NONE, key);
    } else if (st == HC_OK && !snapshot_current(snap)) {
        count(c, HC_CTR_STALE_DISCARDS);
        emit(c, HC_EV_STALE_DISCARD, HC_ORIGIN_LOCAL, HC_EVICT_NONE, key);
    }
}

/* Run the loader as the flight's leader and publish its result. */
static hc_status lead_load(hc_cache *c, const char *key, size_t klen, const char *const *tags,
                           snapshot *snap, const hc_opts *opts, hc_flight *fl,
                           hc_loader_fn loader, void *ctx, hc_value **out, hc_error *err)
{
    take_snapshot(snap);
    count(c, HC_CTR_LOADS);
    emit_access(c, HC_EV_LOAD, key);
    hc_error lerr = {.code = HC_OK, .message = ""};
    hc_value *v = NULL;
    hc_status st = loader(ctx, key, &v, &lerr);
    if (st == HC_OK && v == NULL) {
        hc_error_set(&lerr, st = HC_ERR_LOADER, "loader returned no value");
    } else if (st > HC_OK) {
        /* an outcome (HC_MISS, HC_TIMEOUT...) would reach callers as a status with
         * neither a value nor an error: it is the loader failing */
        if (lerr.message[0] == '\0')
            hc_error_set(&lerr, HC_ERR_LOADER, "loader returned '%s'", hc_status_str(st));
        st = HC_ERR_LOADER;
    }
    if (st != HC_OK) {
        hc_value_release(v);
        v = NULL;
        if (lerr.message[0] == '\0')
            hc_error_set(&lerr, st, "loader failed: %s", hc_status_str(st));
        lerr.code = st;
        count(c, HC_CTR_LOAD_ERRORS);
        emit_access(c, HC_EV_LOAD_ERROR, key);
        if (err != NULL)
            *err = lerr;
    } else {
        store_loaded(c, key, klen, snap, tags, opts, v);
    }
    hc__inflight_finish(c->inflight, fl, st, v, &lerr);
    *out = v;
    return st;
}

/* The miss path of hc_get_or_load: validate the tags, then lead or join a load. */
static hc_status miss(hc_cache *c, lookup *l, const hc_opts *opts, hc_loader_fn loader,
                      void *ctx, hc_value **out, hc_error *err)
{
    const char *tags[HC_MAX_TAGS];
    snapshot snap = {.c = c, .key_hash = l->hash};
    hc_status st = hc__opts_tags(opts, tags, &snap.ntags, err);
    if (st != HC_OK)
        return st;
    for (size_t i = 0; i < snap.ntags; i++)
        snap.tag_hash[i] = hc__hash(tags[i], strlen(tags[i]));
    hc_flight_role role;
    hc_flight *fl;
    hc_value *hit;
    st = hc__inflight_begin(c->inflight, l->key, l->klen, l->hash, snap.tag_hash, snap.ntags,
                            recheck_store, l, &role, &fl, &hit);
    if (st != HC_OK)
        return hc_error_set(err, st, st == HC_ERR_STATE ? "loader of '%s' asked for its own key"
                                                        : "out of memory starting a load of '%s'",
                            l->key);
    if (role == HC_FLIGHT_HIT) {
        count(c, HC_CTR_HITS);
        emit_access(c, HC_EV_HIT, l->key);
        *out = hit;
        return HC_OK;
    }
    count(c, HC_CTR_MISSES);
    emit_access(c, HC_EV_MISS, l->key);
    if (role == HC_FLIGHT_JOINER) {
        count(c, HC_CTR_JOINS);
        return hc__inflight_wait(c->inflight, fl, out, err);
    }
    return lead_load(c, l->key, l->klen, tags, &snap, opts, fl, loader, ctx, out, err);
}

HC_EXTERN hc_status hc_get_or_load(hc_cache *c, const char *key, const hc_opts *opts,
                                   hc_loader_fn loader, void *ctx, hc_value **out,
                                   hc_error *err)
{
    size_t klen;
    if (out != NULL)
        *out = NULL;
    hc_status st = check_cache(c, err);
    if (st == HC_OK && (out == NULL || loader == NULL))
        st = hc_error_set(err, HC_ERR_INVALID, "out or loader is NULL");
    if (st == HC_OK)
        st = hc__key_check(key, &klen, "key", err);
    /* hits pay only for the cheap tag checks; the full ones run on a miss */
    if (st == HC_OK)
        st = hc__opts_tags_quick(opts, err);
    if (st != HC_OK)
        return st;
    lookup l = {c, key, klen, hc__hash(key, klen)};
    /* hits never touch single-flight */
    hc_value *hit = recheck_store(&l);
    if (hit == NULL)
        return miss(c, &l, opts, loader, ctx, out, err);
    count(c, HC_CTR_HITS);
    emit_access(c, HC_EV_HIT, key);
    *out = hit;
    return HC_OK;
}

HC_EXTERN hc_status hc_try_get_or_insert_with(hc_cache *c, const char *key, const hc_opts *opts,
                                              hc_loader_fn loader, void *ctx, hc_value **out,
                                              hc_error *err)
{
    return hc_get_or_load(c, key, opts, loader, ctx, out, err);
}

typedef struct infallible {
    hc_infallible_loader_fn fn;
    void *ctx;
} infallible;

static hc_status call_infallible(void *ctx, const char *key, hc_value **out, hc_error *err)
{
    infallible *inf = ctx;
    *out = inf->fn(inf->ctx, key);
    return *out != NULL ? HC_OK
                        : hc_error_set(err, HC_ERR_NOMEM, "loader ran out of memory");
}

HC_EXTERN hc_status hc_get_or_insert_with(hc_cache *c, const char *key, const hc_opts *opts,
                                          hc_infallible_loader_fn loader, void *ctx,
                                          hc_value **out, hc_error *err)
{
    if (loader == NULL) {
        if (out != NULL)
            *out = NULL;
        return hc_error_set(err, HC_ERR_INVALID, "loader is NULL");
    }
    infallible inf = {loader, ctx};
    return hc_get_or_load(c, key, opts, call_infallible, &inf, out, err);
}

/* ------------------------------------------------------------------ stats */

HC_EXTERN void hc_cache_stats(const hc_cache *c, hc_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    hc__counters_sum(c->ctrs, out);
    out->events_published = hc__events_published(c->events);
    out->subscriber_lag = hc__events_lag(c->events);
}

HC_EXTERN void hc_cache_diagnostics(const hc_cache *c, hc_diagnostics *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (c == NULL)
        return;
    hc_cache_stats(c, &out->stats);
    hc__store_usage(c->store, &out->entries, &out->bytes_used);
    out->bytes_limit = c->max_bytes;
    out->entries_limit = c->max_entries;
    out->bus_state = (hc_bus_state)atomic_load(&((hc_cache *)c)->bus_state);
    out->bypass = atomic_load(&((hc_cache *)c)->bypass);
}

/* ------------------------------------------------------------------ events */

HC_EXTERN void hc_enable_access_events(hc_cache *c, bool on)
{
    if (c != NULL)
        atomic_store(&c->access_events, on);
}

HC_EXTERN hc_subscriber *hc_subscribe(hc_cache *c, uint32_t mask, size_t capacity,
                                      hc_error *err)
{
    if (check_cache(c, err) != HC_OK)
        return NULL;
    return hc__events_subscribe(c->events, mask, capacity, err);
}

HC_EXTERN hc_listener *hc_listen(hc_cache *c, uint32_t mask, hc_listener_fn fn, void *ctx,
                                 hc_error *err)
{
    if (check_cache(c, err) != HC_OK)
        return NULL;
    if (fn == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "listener function is NULL");
        return NULL;
    }
    return hc__events_listen(c->events, mask, fn, ctx, err);
}

HC_EXTERN void hc_cache_emit(hc_cache *c, hc_event_kind kind, hc_origin origin,
                             const char *subject)
{
    if (c != NULL)
        emit(c, kind, origin, HC_EVICT_NONE, subject);
}

/* ------------------------------------------------------------------ transport hooks */

HC_EXTERN hc_status hc_cache_attach_publisher(hc_cache *c, hc_publish_fn fn, void *ctx,
                                              hc_error *err)
{
    hc_status st = check_cache(c, err);
    if (st == HC_OK && fn == NULL)
        st = hc_error_set(err, HC_ERR_INVALID, "publisher function is NULL");
    if (st != HC_OK)
        return st;
    pthread_rwlock_wrlock(&c->pub_lock);
    if (c->pub_fn != NULL) {
        st = hc_error_set(err, HC_ERR_BUSY, "cache '%s' already has a publisher", c->name);
    } else {
        c->pub_fn = fn;
        c->pub_ctx = ctx;
    }
    pthread_rwlock_unlock(&c->pub_lock);
    return st;
}

HC_EXTERN void hc_cache_detach_publisher(hc_cache *c)
{
    if (c == NULL)
        return;
    /* the exclusive lock waits for every publish call in progress */
    pthread_rwlock_wrlock(&c->pub_lock);
    c->pub_fn = NULL;
    c->pub_ctx = NULL;
    pthread_rwlock_unlock(&c->pub_lock);
}

void hc__cache_with_publisher(hc_cache *c, hc__publisher_visit_fn visit, void *arg)
{
    pthread_rwlock_rdlock(&c->pub_lock);
    visit(c->pub_fn, c->pub_ctx, arg);
    pthread_rwlock_unlock(&c->pub_lock);
}

HC_EXTERN void hc_cache_set_bypass(hc_cache *c, bool on, hc_origin origin)
{
    if (c == NULL || atomic_exchange(&c->bypass, on) == on)
        return;
    flush_all(c);
    emit(c, on ? HC_EV_BYPASS_ON : HC_EV_BYPASS_OFF, origin, HC_EVICT_NONE, NULL);
}

HC_EXTERN bool hc_cache_bypass(const hc_cache *c)
{
    return c != NULL && atomic_load(&((hc_cache *)c)->bypass);
}

HC_EXTERN void hc_cache_bus_count(hc_cache *c, hc_bus_counter ctr, uint64_t n)
{
    static const hc_ctr map[] = {
        [HC_BUSCTR_PUBLISHED] = HC_CTR_BUS_PUBLISHED,
        [HC_BUSCTR_RECEIVED] = HC_CTR_BUS_RECEIVED,
        [HC_BUSCTR_MALFORMED] = HC_CTR_BUS_MALFORMED,
        [HC_BUSCTR_PUBLISH_FAILURES] = HC_CTR_BUS_PUBLISH_FAILURES,
        [HC_BUSCTR_DISCONNECTS] = HC_CTR_BUS_DISCONNECTS,
        [HC_BUSCTR_RECONNECTS] = HC_CTR_BUS_RECONNECTS,
    };
    if (c != NULL && (unsigned)ctr < sizeof map / sizeof map[0])
        hc__counters_add(c->ctrs, map[ctr], n);
}

HC_EXTERN void hc_cache_set_bus_state(hc_cache *c, hc_bus_state st)
{
    if (c != NULL)
        atomic_store(&c->bus_state, (int)st);
}
