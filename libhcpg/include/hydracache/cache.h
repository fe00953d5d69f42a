/*
 * hydracache/cache.h - the local cache runtime of libhcpg.
 *
 * Threading: unless a function says otherwise, every function taking an
 * hc_cache * may be called from any thread concurrently with any other,
 * except hc_cache_free, which must be called once, after every other use of
 * the cache (and of its views, subscribers and listeners) has finished.
 *
 * Ownership: strings passed in are copied when kept; hc_value references
 * handed out must be released with hc_value_release.
 *
 * Errors: functions return hc_status; when the optional hc_error *err is not
 * NULL it receives the same code and a human message.  No function aborts,
 * exits or prints on bad input.
 */
#ifndef HYDRACACHE_CACHE_H
#define HYDRACACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HC_BUILDING_LIBRARY) && defined(__GNUC__)
#define HC_EXTERN __attribute__((visibility("default")))
#else
#define HC_EXTERN
#endif

#include <hydracache/version.h>

/* ------------------------------------------------------------------ status */

/*
 * Status codes.  Append-only: values are never renumbered or removed.
 * Non-negative values are outcomes, negative values are errors.
 */
typedef enum hc_status {
    HC_OK = 0,
    HC_MISS = 1,          /* key absent or expired */
    HC_LAGGED = 2,        /* subscriber fell behind; see hc_event.lost */
    HC_TIMEOUT = 3,       /* a wait ran out */
    HC_ERR_INVALID = -1,  /* NULL or malformed argument */
    HC_ERR_NOMEM = -2,    /* allocation failed; nothing was changed */
    HC_ERR_TOO_LARGE = -3,/* key/tag/value over its limit */
    HC_ERR_LOADER = -4,   /* a loader failed (message from the loader) */
    HC_ERR_PG = -5,       /* PostgreSQL/libpq error (message from libpq) */
    HC_ERR_CODEC = -6,    /* corrupt or undecodable cached bytes */
    HC_ERR_CLOSED = -7,   /* object was shut down */
    HC_ERR_BUSY = -8,     /* resource already in use (e.g. a second bus) */
    HC_ERR_STATE = -9,    /* call not valid in the current state */
    HC_ERR_SYSTEM = -10,  /* OS error (thread, pipe, clock) */
    HC_ERR_ROWCOUNT = -11 /* a query returned another number of rows than required */
} hc_status;

/* The status's name, e.g. "ok", as static text, never NULL: "unknown status"
 * for values not listed above.  Any thread. */
HC_EXTERN const char *hc_status_str(hc_status st);

/* The version of the loaded library, "MAJOR.MINOR.PATCH" (HC_VERSION_STRING
 * of the build that produced it).  Static, never NULL; any thread. */
HC_EXTERN const char *hc_version(void);

#define HC_ERROR_MSG_MAX 256

/* Optional error out-parameter.  Caller-owned; one per call site/thread. */
typedef struct hc_error {
    hc_status code;
    char message[HC_ERROR_MSG_MAX];
} hc_error;

/* Set err (if not NULL) to code + printf-style message (truncated to
 * HC_ERROR_MSG_MAX - 1 bytes); returns code.  Public: loaders and codecs
 * (hc_loader_fn and friends) report their failures through the hc_error *err
 * they are given, e.g. `return hc_error_set(err, HC_ERR_LOADER, "no row %s", key);`.
 * Any thread. */
HC_EXTERN hc_status hc_error_set(hc_error *err, hc_status code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------------ limits */

#define HC_MAX_KEY_LEN 1024        /* bytes, excluding NUL; keys and tags */
#define HC_MAX_TAGS 64             /* tags per entry */
#define HC_MAX_VALUE_LEN ((size_t)1 << 30)
#define HC_TTL_DEFAULT ((uint64_t)0)          /* use hc_config.default_ttl_ms */
#define HC_TTL_FOREVER ((uint64_t)UINT64_MAX) /* never expires */

/* ------------------------------------------------------------------ values */

/*
 * Immutable, reference-counted byte blob.  A cache hit hands out a new
 * reference, never a copy.  Thread-safe: references may be retained and
 * released from any thread.  Data is always followed by a NUL byte that is
 * not counted in hc_value_len (convenient for text).
 */
typedef struct hc_value hc_value;

/* Copy len bytes of data into a new value; the caller owns its one reference
 * (hc_value_release).  data may be NULL only when len is 0.  NULL on OOM, on
 * len > HC_MAX_VALUE_LEN, or for NULL data with len > 0.  Any thread. */
HC_EXTERN hc_value *hc_value_new(const void *data, size_t len);
/* New value of len bytes (plus the trailing NUL, already written), owned by
 * the caller like hc_value_new's; *data_out (data_out may be NULL) receives
 * its writable bytes, which the caller fills before sharing the value with
 * another thread or the cache and never writes afterwards.  NULL on OOM or
 * len > HC_MAX_VALUE_LEN.  Any thread. */
HC_EXTERN hc_value *hc_value_alloc(size_t len, void **data_out);
/* The value's bytes, borrowed: valid while the caller holds a reference, and
 * followed by a NUL.  NULL for a NULL v.  Any thread. */
HC_EXTERN const void *hc_value_data(const hc_value *v);
/* Length in bytes, without the trailing NUL; 0 for a NULL v.  Any thread. */
HC_EXTERN size_t hc_value_len(const hc_value *v);
/* Returns v with one more reference, which the caller now owns and releases
 * (hc_value_release).  NULL for a NULL v.  Any thread. */
HC_EXTERN hc_value *hc_value_retain(hc_value *v);
/* Drops one reference the caller owns; frees the value at zero (data pointers
 * from it are then invalid).  NULL-safe.  Any thread. */
HC_EXTERN void hc_value_release(hc_value *v);

/* ------------------------------------------------------------------ keys */

/*
 * Build a key from segments joined by ':'.  Inside a segment '\', ':' and
 * '*' are escaped with a backslash; a NULL segment stands for SQL NULL and is
 * written "\N" (see docs/PROTOCOL.md).  So ("user","a:b") and ("user:a","b")
 * never collide.  Writes a NUL-terminated key into buf (capacity cap) and its
 * length into *len_out (may be NULL).
 * HC_ERR_INVALID: buf/segs NULL or nsegs == 0.  HC_ERR_TOO_LARGE: the key
 * would exceed HC_MAX_KEY_LEN or cap - 1.  Thread-safe (pure function).
 */
HC_EXTERN hc_status hc_key_build(char *buf, size_t cap, size_t *len_out,
                                 const char *const *segs, size_t nsegs, hc_error *err);

/* hc_key_build over a list of segments (each a const char *, NULL for SQL
 * NULL), without the length out-parameter; same results and rules:
 *     int user_id = 42;
 *     char id[24];
 *     snprintf(id, sizeof id, "%d", user_id);  // segments are strings
 *     hc_error err;
 *     char key[HC_MAX_KEY_LEN + 1];
 *     hc_status st = HC_KEY(key, sizeof key, &err, "user", id);
 *     // st == HC_OK, key == "user:42"
 * (err may be NULL; tests/unit/check_key.c compiles this example). */
#define HC_KEY(buf, cap, err, ...)                                                   \
    hc_key_build((buf), (cap), NULL, (const char *const[]){__VA_ARGS__},             \
                 sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), (err))

/* The table-wide tag of an entity, esc(entity) ":*" (docs/PROTOCOL.md), as a
 * NUL-terminated string into buf (capacity cap).  HC_ERR_INVALID: buf or
 * entity NULL.  HC_ERR_TOO_LARGE: cap is 0 or the tag would exceed
 * HC_MAX_KEY_LEN or cap - 1 (buf then holds "").  Thread-safe (pure function). */
HC_EXTERN hc_status hc_key_table_tag(char *buf, size_t cap, const char *entity, hc_error *err);

/* ------------------------------------------------------------------ tags */

/* A borrowed list of tags (the strings must live for the duration of the call). */
typedef struct hc_tags {
    const char *const *v;
    size_t n;
} hc_tags;

#define HC_TAGS(...)                                                                  \
    ((hc_tags){(const char *const[]){__VA_ARGS__},                                    \
               sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)})

/*
 * Reusable owned set of tags (deduplicated, insertion order kept, at most
 * HC_MAX_TAGS).  Not thread-safe for writers: hc_tagset_add must not run
 * concurrently with any other use of the set; once built it may be read
 * (count/get, or used in hc_opts, hc_policy, hc_query) from many threads at
 * once.  The set owns copies of its tags.
 */
typedef struct hc_tagset hc_tagset;
/* New empty set, owned by the caller (hc_tagset_free).  NULL on OOM. */
HC_EXTERN hc_tagset *hc_tagset_new(void);
/* Frees the set and its tags; nothing may use it any more.  NULL-safe. */
HC_EXTERN void hc_tagset_free(hc_tagset *ts);
/* Copies tag into the set; adding a tag already present is HC_OK and changes
 * nothing.  HC_ERR_INVALID (NULL ts, NULL/empty tag), HC_ERR_TOO_LARGE (tag
 * over HC_MAX_KEY_LEN, or an HC_MAX_TAGS + 1st tag), HC_ERR_NOMEM; on error
 * the set is unchanged. */
HC_EXTERN hc_status hc_tagset_add(hc_tagset *ts, const char *tag, hc_error *err);
/* Number of tags; 0 for a NULL set. */
HC_EXTERN size_t hc_tagset_count(const hc_tagset *ts);
/* Tag i (0-based, insertion order), borrowed from the set: valid until
 * hc_tagset_free.  NULL for a NULL set or i >= count. */
HC_EXTERN const char *hc_tagset_get(const hc_tagset *ts, size_t i);

/* ------------------------------------------------------------------ options */

/* Per-call options.  All fields optional; a NULL hc_opts * means defaults. */
typedef struct hc_opts {
    uint64_t ttl_ms;          /* HC_TTL_DEFAULT, HC_TTL_FOREVER or milliseconds */
    hc_tags tags;             /* borrowed */
    const hc_tagset *tagset;  /* borrowed, merged with tags */
} hc_opts;

/* HC_OPTS(.ttl_ms = 30000, .tags = HC_TAGS("users", "user:42")) -> const hc_opts * */
#define HC_OPTS(...) (&(const hc_opts){__VA_ARGS__})

/* ------------------------------------------------------------------ cache */

typedef struct hc_cache hc_cache;

/* Monotonic clock in milliseconds.  Must be thread-safe. */
typedef uint64_t (*hc_clock_fn)(void *ctx);

typedef struct hc_config {
    const char *name;         /* copied; NULL -> "default" */
    size_t max_bytes;         /* 0 -> 64 MiB; counts keys, values, tags, overhead */
    size_t max_entries;       /* 0 -> unlimited */
    uint64_t default_ttl_ms;  /* 0 -> entries never expire unless given a TTL */
    unsigned shards;          /* 0 -> 16; rounded up to a power of two, max 1024 */
    hc_clock_fn clock;        /* NULL -> CLOCK_MONOTONIC */
    void *clock_ctx;
} hc_config;

/* New cache owned by the caller (hc_cache_free).  cfg may be NULL (all
 * defaults) and is only read during the call (clock_ctx is borrowed for the
 * cache's life).  NULL with HC_ERR_NOMEM on error.  Any thread. */
HC_EXTERN hc_cache *hc_cache_new(const hc_config *cfg, hc_error *err);
/* Frees the cache and its entries (values still referenced by callers stay
 * valid until released).  NULL-safe.  Detach buses, remove it from
 * registries and free its views/subscribers/listeners first; no other call
 * on c may be in progress or follow. */
HC_EXTERN void hc_cache_free(hc_cache *c);
/* The cache's name (a copy of hc_config.name, or "default"), borrowed: valid
 * until hc_cache_free.  NULL for a NULL c.  Any thread. */
HC_EXTERN const char *hc_cache_name(const hc_cache *c);

/*
 * Lookup.  HC_OK and *out = a new reference the caller releases
 * (hc_value_release) on a hit; HC_MISS (and *out = NULL) when absent, expired
 * (an expired entry is dropped) or in bypass.  Counted as a hit or a miss.
 * HC_ERR_INVALID for a NULL c/out or a NULL/empty key, HC_ERR_TOO_LARGE for a
 * key over HC_MAX_KEY_LEN (*out is NULL on every error).
 */
HC_EXTERN hc_status hc_get(hc_cache *c, const char *key, hc_value **out, hc_error *err);
/*
 * Store a copy of data (len bytes; data may be NULL only when len is 0) under
 * key, replacing any entry; opts (may be NULL) gives TTL and tags, both
 * copied.  HC_ERR_INVALID for a NULL c, NULL/empty key, NULL data with len
 * > 0 or a bad tag; HC_ERR_TOO_LARGE for len > HC_MAX_VALUE_LEN or a key/tag
 * over its limit; HC_ERR_NOMEM.  A put also makes any
 * in-flight load of the same key stale, so an older load never overwrites it,
 * and callers arriving after the put never join such a load.  A put that
 * stores nothing (it fails with any status once the cache and key are valid:
 * HC_ERR_TOO_LARGE, HC_ERR_NOMEM, a bad tag...; or bypass is on; or no room
 * could be made) removes the key's entry, so a failed put never leaves the
 * older value readable.
 */
HC_EXTERN hc_status hc_put(hc_cache *c, const char *key, const void *data, size_t len,
                           const hc_opts *opts, hc_error *err);
/* Store a copy of v's bytes, as hc_put (the cache keeps its value inside its
 * entry, one allocation per entry; v stays the caller's, who still releases
 * it).  Hits then hand out references to the cache's value, never a copy.
 * HC_ERR_INVALID for a NULL v.  Same rules as hc_put. */
HC_EXTERN hc_status hc_put_value(hc_cache *c, const char *key, hc_value *v,
                                 const hc_opts *opts, hc_error *err);
/* HC_OK if key maps to a live value, HC_MISS otherwise (expired entries are
 * dropped; always HC_MISS in bypass).  Not counted as a hit or miss.
 * HC_ERR_INVALID / HC_ERR_TOO_LARGE for a bad c or key, as hc_get. */
HC_EXTERN hc_status hc_contains(hc_cache *c, const char *key, hc_error *err);
/*
 * Invalidation.  Each call makes the in-flight loads it concerns stale (their
 * result is not stored), removes the entries, counts the matching
 * invalidations_* counter, emits the matching event (origin local) and then
 * hands the invalidation to the attached publisher (a bus), if any, on the
 * calling thread.  HC_OK whether or not anything was present; HC_ERR_INVALID
 * for a NULL c or a NULL/empty key or tag, HC_ERR_TOO_LARGE for one over
 * HC_MAX_KEY_LEN (then nothing is removed or published).  Any thread.
 */
/* Remove key's entry (if any) and make an in-flight load of key stale, so its
 * result is handed to its waiting callers but not stored.  key is borrowed,
 * only read during the call (the publisher receives it as arg, also only for
 * the call); err may be NULL and is filled on an error.  Counts
 * invalidations_key and emits HC_EV_INVALIDATE_KEY whether or not the key was
 * present.  Returns HC_OK, or HC_ERR_INVALID (NULL c, NULL or empty key) /
 * HC_ERR_TOO_LARGE (key over HC_MAX_KEY_LEN), which change nothing.  Any
 * thread, concurrently with every other call on c. */
HC_EXTERN hc_status hc_invalidate_key(hc_cache *c, const char *key, hc_error *err);
/* Another name for hc_invalidate_key: the same behaviour, arguments,
 * ownership, return values, counters (invalidations_key), event
 * (HC_EV_INVALIDATE_KEY) and publishing.  Any thread. */
HC_EXTERN hc_status hc_remove(hc_cache *c, const char *key, hc_error *err);
/* Remove every entry carrying tag and make every in-flight load whose opts
 * carry tag stale.  tag is borrowed, only read during the call; err may be
 * NULL.  Counts invalidations_tag and emits HC_EV_INVALIDATE_TAG (once, not
 * per entry) even when no entry carried the tag.  Returns HC_OK, or
 * HC_ERR_INVALID (NULL c, NULL or empty tag) / HC_ERR_TOO_LARGE (tag over
 * HC_MAX_KEY_LEN), which change nothing.  Any thread. */
HC_EXTERN hc_status hc_invalidate_tag(hc_cache *c, const char *tag, hc_error *err);
/* Remove every entry and make every in-flight load stale (bumps the flush
 * epoch); the publisher receives a NULL arg.  err may be NULL.  Counts
 * invalidations_flush and emits HC_EV_FLUSH.  Returns HC_OK, or
 * HC_ERR_INVALID for a NULL c (nothing changes).  Any thread. */
HC_EXTERN hc_status hc_flush(hc_cache *c, hc_error *err);

/*
 * Loader: produce the value for key into *out (a new reference the runtime
 * takes over) and return HC_OK, or return an error status with err filled.
 * Called without any cache lock held; may call the cache (other keys).
 */
typedef hc_status (*hc_loader_fn)(void *ctx, const char *key, hc_value **out, hc_error *err);

/*
 * Return the cached value, or run loader once per key under single-flight:
 * concurrent callers for the same missing key wait for that one run and get
 * its value (counted as joins).  Tag generations (and the flush epoch, and the
 * key's own invalidation count) are recorded before the loader starts; if any
 * changed by the time it returns, the value is handed to the waiting callers
 * but not stored (stale_load_discards), and callers arriving after the
 * invalidation start or join a fresh load.  Loader errors reach every joined
 * caller with the loader's status and message and are never cached.  A loader
 * that returns HC_OK with *out NULL, or a non-error status other than HC_OK
 * (HC_MISS, HC_TIMEOUT...), yields HC_ERR_LOADER (with the loader's message
 * when it gave one), so HC_OK always comes with a value and any other status
 * with none.  A loader asking
 * for its own key gets HC_ERR_STATE (instead of a deadlock).  A loaded value
 * that cannot be stored (too large for the cache, out of memory) is still
 * returned with HC_OK.
 * In bypass mode (see hc_cache_set_bypass) the loader runs and nothing is stored.
 * Tags in opts only matter to a load: a hit checks them cheaply (HC_ERR_INVALID
 * for a NULL tags.v with n > 0 or a NULL/empty tag) and a miss in full (lengths,
 * HC_MAX_TAGS distinct tags) before the loader runs.
 * On HC_OK *out receives a new reference the caller releases; on any other
 * status *out is NULL.  HC_ERR_INVALID for a NULL c, out or loader, and keys
 * as hc_get.  ctx is borrowed for the call; the loader runs on the calling
 * thread of the one caller that starts the load.  Any thread.
 */
HC_EXTERN hc_status hc_get_or_load(hc_cache *c, const char *key, const hc_opts *opts,
                                   hc_loader_fn loader, void *ctx, hc_value **out,
                                   hc_error *err);
/* Another name for hc_get_or_load: the same behaviour, arguments, ownership
 * (*out a new reference on HC_OK, NULL otherwise), return values and
 * threading. */
HC_EXTERN hc_status hc_try_get_or_insert_with(hc_cache *c, const char *key, const hc_opts *opts,
                                              hc_loader_fn loader, void *ctx, hc_value **out,
                                              hc_error *err);
/* Loader that cannot fail: returns a new reference the runtime takes over;
 * NULL only on OOM. */
typedef hc_value *(*hc_infallible_loader_fn)(void *ctx, const char *key);
/* hc_get_or_load with an infallible loader (NULL loader: HC_ERR_INVALID); a
 * NULL from the loader is HC_ERR_NOMEM.  Same single-flight, freshness,
 * ownership and threading rules. */
HC_EXTERN hc_status hc_get_or_insert_with(hc_cache *c, const char *key, const hc_opts *opts,
                                          hc_infallible_loader_fn loader, void *ctx,
                                          hc_value **out, hc_error *err);

/* Drop expired entries now (also done lazily and by a cheap incremental
 * sweep); returns how many were dropped (counted as evictions_expired, each
 * with its HC_EV_EVICT event).  0 for a NULL c.  Any thread. */
HC_EXTERN size_t hc_cache_sweep(hc_cache *c);

/* ------------------------------------------------------------------ views */

/*
 * Codec for typed views.  encode turns an object into a new hc_value; decode
 * builds a new object from bytes (HC_ERR_CODEC on bad bytes); free releases an
 * object returned by decode.  Must be thread-safe.  Only HC_ERR_CODEC from
 * decode drops the cached entry (so it is reloaded); other errors (e.g.
 * HC_ERR_NOMEM) are returned as they are and keep the entry; a non-error
 * status other than HC_OK from decode is reported as HC_ERR_CODEC.  A failed
 * encode in hc_view_put leaves the key absent, like a failed hc_put.
 */
typedef struct hc_codec {
    hc_status (*encode)(void *ctx, const void *obj, hc_value **out, hc_error *err);
    hc_status (*decode)(void *ctx, const void *data, size_t len, void **obj_out, hc_error *err);
    void (*free)(void *ctx, void *obj);
    void *ctx;
} hc_codec;

/*
 * A typed view: keys are prefixed "<esc(ns)>:" and values pass through the
 * codec.  Same storage, stats, single-flight and invalidation as the cache.
 * Thread-safe: every hc_view_* call may run from any thread concurrently
 * (the codec functions are then called concurrently too).  Every hc_view_*
 * function taking a key returns HC_ERR_INVALID for a NULL view or a
 * NULL/empty key, and HC_ERR_TOO_LARGE when the full key would exceed
 * HC_MAX_KEY_LEN.
 */
typedef struct hc_view hc_view;
/* New view of c (borrowed: free the view before the cache) under namespace ns
 * (copied, escaped); the codec struct is copied, its ctx borrowed.  The
 * caller owns the view (hc_view_free).  NULL with HC_ERR_INVALID for NULL
 * c/ns/codec or a codec without encode, decode or free; HC_ERR_TOO_LARGE for
 * a namespace leaving no room for a key; HC_ERR_NOMEM. */
HC_EXTERN hc_view *hc_cache_view(hc_cache *c, const char *ns, const hc_codec *codec,
                                 hc_error *err);
/* Frees the view (not the cache, not its entries).  NULL-safe; no other call
 * on v may be in progress or follow. */
HC_EXTERN void hc_view_free(hc_view *v);
/* hc_get through the codec: on HC_OK *obj_out receives a new decoded object
 * the caller frees with codec.free; on any other status *obj_out is NULL
 * (obj_out NULL: HC_ERR_INVALID).  Decode errors as described for hc_codec. */
HC_EXTERN hc_status hc_view_get(hc_view *v, const char *key, void **obj_out, hc_error *err);
/* Encode obj (borrowed, only read) and hc_put_value the result under the view
 * key, with hc_put's rules; an encode that fails (or returns HC_OK without a
 * value: HC_ERR_CODEC) leaves the key absent. */
HC_EXTERN hc_status hc_view_put(hc_view *v, const char *key, const void *obj,
                                const hc_opts *opts, hc_error *err);
/* Object loader for hc_view_get_or_load: key is the view key (without the
 * namespace); on HC_OK *obj_out receives a new object that the view encodes
 * and then frees with codec.free.  Errors as for hc_loader_fn. */
typedef hc_status (*hc_obj_loader_fn)(void *ctx, const char *key, void **obj_out, hc_error *err);
/* hc_get_or_load through the codec (same single-flight and freshness rules):
 * on a miss the loader's object is encoded and stored, and a decoded copy is
 * returned in *obj_out, a new object the caller frees with codec.free.
 * HC_ERR_INVALID for a NULL obj_out or loader. */
HC_EXTERN hc_status hc_view_get_or_load(hc_view *v, const char *key, const hc_opts *opts,
                                        hc_obj_loader_fn loader, void *ctx, void **obj_out,
                                        hc_error *err);
/* hc_contains of the view key (nothing is decoded): HC_OK if present,
 * HC_MISS if not; key borrowed for the call; errors as for every view key. */
HC_EXTERN hc_status hc_view_contains(hc_view *v, const char *key, hc_error *err);
/* hc_invalidate_key of the view key (counted, emitted and published to an
 * attached bus like it, with the full cache key); key borrowed for the call.
 * HC_OK whether or not it was present; errors as for every view key. */
HC_EXTERN hc_status hc_view_invalidate_key(hc_view *v, const char *key, hc_error *err);
/* Another name for hc_view_invalidate_key (same behaviour and return values). */
HC_EXTERN hc_status hc_view_remove(hc_view *v, const char *key, hc_error *err);
/* Full cache key of a view key ("<esc(ns)>:<key>", the key itself not
 * escaped) NUL-terminated into buf (capacity cap): what hc_get or
 * hc_invalidate_key on the cache would use.  HC_ERR_INVALID for a NULL buf;
 * HC_ERR_TOO_LARGE when it exceeds HC_MAX_KEY_LEN or cap - 1.  Pure. */
HC_EXTERN hc_status hc_view_key(const hc_view *v, const char *key, char *buf, size_t cap,
                                hc_error *err);

/* ------------------------------------------------------------------ stats */

typedef enum hc_bus_state {
    HC_BUS_NONE = 0,         /* no bus attached */
    HC_BUS_CONNECTING = 1,   /* attached, LISTEN not yet active: bypass */
    HC_BUS_LISTENING = 2,    /* LISTEN active */
    HC_BUS_DISCONNECTED = 3, /* lost, reconnecting: bypass */
    HC_BUS_LOCAL = 4         /* in-process bus */
} hc_bus_state;

/* "none", "connecting", "listening", "disconnected", "local" (static);
 * "unknown" for other values.  Any thread. */
HC_EXTERN const char *hc_bus_state_str(hc_bus_state st);

/* A consistent-enough snapshot of the counters (each counter is exact).
 * All fields are uint64_t; new ones are only appended (ABI), each with its
 * row in HC_CACHE_COUNTERS (libhcpg/stats.h; a build check enforces it). */
typedef struct hc_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t loads;
    uint64_t load_errors;
    uint64_t single_flight_joins;
    uint64_t stale_load_discards;
    uint64_t puts;                 /* entries stored by hc_put/hc_put_value/hc_view_put */
    uint64_t invalidations_key;
    uint64_t invalidations_tag;
    uint64_t invalidations_flush;
    uint64_t evictions_capacity;
    uint64_t evictions_expired;
    uint64_t events_published;
    uint64_t subscriber_lag;       /* events lost by slow subscribers */
    uint64_t bus_published;
    uint64_t bus_received;
    uint64_t bus_applied;
    uint64_t bus_malformed;
    uint64_t bus_publish_failures;
    uint64_t bus_disconnects;
    uint64_t bus_reconnects;
    uint64_t bypassed_loads;
} hc_stats;

/* Fill *out (caller-owned) with c's counters; all zero for a NULL c; does
 * nothing for a NULL out.  Any thread, concurrently with cache use. */
HC_EXTERN void hc_cache_stats(const hc_cache *c, hc_stats *out);
/* hits + misses; 0 for a NULL s.  Pure function. */
HC_EXTERN uint64_t hc_stats_total_requests(const hc_stats *s);
/* hits / (hits + misses); 0.0 when there were no requests or s is NULL. */
HC_EXTERN double hc_stats_hit_ratio(const hc_stats *s);

typedef struct hc_diagnostics {
    hc_stats stats;
    size_t entries;
    size_t bytes_used;
    size_t bytes_limit;
    size_t entries_limit;       /* 0 = unlimited */
    hc_bus_state bus_state;
    bool bypass;
} hc_diagnostics;

/* Fill *out (caller-owned) with c's stats, usage, limits, bus state and
 * bypass flag; for a NULL c all zero; does nothing for a NULL out.  Any
 * thread, concurrently with cache use.  (The NOTIFY queue usage is the
 * bus's: hc_bus_queue_usage.) */
HC_EXTERN void hc_cache_diagnostics(const hc_cache *c, hc_diagnostics *out);

/* ------------------------------------------------------------------ events */

typedef enum hc_event_kind {
    HC_EV_PUT = 1u << 0,
    HC_EV_INVALIDATE_KEY = 1u << 1,
    HC_EV_INVALIDATE_TAG = 1u << 2,
    HC_EV_FLUSH = 1u << 3,
    HC_EV_EVICT = 1u << 4,
    HC_EV_STALE_DISCARD = 1u << 5,
    HC_EV_BUS_DISCONNECT = 1u << 6,
    HC_EV_BUS_RECONNECT = 1u << 7,
    HC_EV_BYPASS_ON = 1u << 8,
    HC_EV_BYPASS_OFF = 1u << 9,
    /* access events: only after hc_enable_access_events(c, true) */
    HC_EV_HIT = 1u << 16,
    HC_EV_MISS = 1u << 17,
    HC_EV_LOAD = 1u << 18,
    HC_EV_LOAD_ERROR = 1u << 19
} hc_event_kind;

#define HC_EV_MUTATIONS 0x0000ffffu
#define HC_EV_ACCESS 0xffff0000u
#define HC_EV_ALL 0xffffffffu

typedef enum hc_origin {
    HC_ORIGIN_LOCAL = 0,    /* this process's call */
    HC_ORIGIN_BUS = 1,      /* another libhcpg node */
    HC_ORIGIN_DATABASE = 2  /* the hydracache extension (trigger / SQL) */
} hc_origin;

/* "local", "bus", "database" (static); "unknown" for other values.  Any thread. */
HC_EXTERN const char *hc_origin_str(hc_origin o);

typedef enum hc_evict_reason {
    HC_EVICT_NONE = 0,
    HC_EVICT_CAPACITY = 1,
    HC_EVICT_EXPIRED = 2
} hc_evict_reason;

#define HC_EVENT_SUBJECT_MAX 256

typedef struct hc_event {
    hc_event_kind kind;
    hc_origin origin;
    hc_evict_reason reason;       /* HC_EV_EVICT only */
    uint64_t seq;                 /* per-cache sequence number */
    uint64_t time_ms;             /* cache clock */
    uint64_t lost;                /* with HC_LAGGED: events dropped */
    bool subject_truncated;
    char subject[HC_EVENT_SUBJECT_MAX]; /* key, tag or detail; NUL-terminated */
} hc_event;

/* Name of one kind, e.g. "put", "invalidate_key", "hit" (static); "unknown"
 * for other values (also for masks of several kinds).  Any thread. */
HC_EXTERN const char *hc_event_kind_str(hc_event_kind k);

/* Turn hit/miss/load events on or off (off by default: they are hot).
 * No-op for a NULL c.  Any thread; applies to later operations. */
HC_EXTERN void hc_enable_access_events(hc_cache *c, bool on);

/*
 * Subscriber with a bounded ring of capacity events (0 -> 1024) for the kinds
 * in mask.  Cache operations never wait for it: when full, oldest events are
 * overwritten and the next recv returns HC_LAGGED with event->lost set.
 * One subscriber is read by one thread at a time; free before the cache.
 * HC_ERR_INVALID for mask 0; HC_ERR_TOO_LARGE for capacity > 1<<20.
 */
typedef struct hc_subscriber hc_subscriber;
/* The subscriber belongs to the caller (hc_subscriber_free); NULL on error
 * (also HC_ERR_INVALID for a NULL c, HC_ERR_NOMEM).  Any thread. */
HC_EXTERN hc_subscriber *hc_subscribe(hc_cache *c, uint32_t mask, size_t capacity,
                                      hc_error *err);
/* Copy the oldest event into *out (caller-owned).  timeout_ms: 0 = poll,
 * < 0 = wait forever.  HC_OK (*out filled), HC_LAGGED (events were lost:
 * *out zeroed but for out->lost; the retained events follow on the next
 * calls), HC_TIMEOUT (nothing arrived), HC_ERR_INVALID (NULL s or out).
 * One thread at a time per subscriber. */
HC_EXTERN hc_status hc_subscriber_recv(hc_subscriber *s, hc_event *out, int timeout_ms);
/* Unsubscribe and free.  NULL-safe; no hc_subscriber_recv on s may be in
 * progress or follow.  Call it before hc_cache_free. */
HC_EXTERN void hc_subscriber_free(hc_subscriber *s);

/*
 * Callback listener: fn is called on a dedicated thread for each matching
 * event (and with HC_LAGGED status events when it falls behind).  Freeing the
 * handle stops it and joins the thread; fn is never called after that.
 * Freeing it from inside fn is allowed: it stops at once and the thread
 * frees itself when fn returns (ctx must stay valid until then).
 */
typedef void (*hc_listener_fn)(void *ctx, hc_status st, const hc_event *ev);
typedef struct hc_listener hc_listener;
/* Start a listener for the kinds in mask (ring of 1024 events), owned by the
 * caller (hc_listener_free, before hc_cache_free); ctx is borrowed.  NULL on
 * error: HC_ERR_INVALID (NULL c or fn, mask 0), HC_ERR_NOMEM, HC_ERR_SYSTEM
 * (thread creation).  Any thread.  ev is only valid during the call of fn. */
HC_EXTERN hc_listener *hc_listen(hc_cache *c, uint32_t mask, hc_listener_fn fn, void *ctx,
                                 hc_error *err);
/* Stop and free (see above).  NULL-safe; call it once, from any thread. */
HC_EXTERN void hc_listener_free(hc_listener *l);

/* ------------------------------------------------------- transport hooks */
/*
 * For invalidation transports (hydracache/bus.h).  Applications normally do
 * not call these directly.
 */

typedef enum hc_inval_kind {
    HC_INVAL_KEY = 'k',
    HC_INVAL_TAG = 't',
    HC_INVAL_FLUSH = 'f'
} hc_inval_kind;

/*
 * Called after a local hc_invalidate_key/hc_remove/hc_invalidate_tag/hc_flush
 * (origin local only) with arg = key or tag (NULL for flush).  Called on the
 * invalidating thread with no cache lock held; must not block for long.
 */
typedef void (*hc_publish_fn)(void *ctx, hc_cache *c, hc_inval_kind kind, const char *arg);

/* Attach fn (ctx borrowed until detached) as c's publisher.  At most one
 * publisher per cache: HC_ERR_BUSY if one is attached; HC_ERR_INVALID for a
 * NULL c or fn.  Any thread. */
HC_EXTERN hc_status hc_cache_attach_publisher(hc_cache *c, hc_publish_fn fn, void *ctx,
                                              hc_error *err);
/* Detach the publisher (no-op if none, or for a NULL c).  Returns once no
 * call of it is in progress, so its ctx may then be freed.  Must not be
 * called from inside the publisher. */
HC_EXTERN void hc_cache_detach_publisher(hc_cache *c);

/* Apply a remote invalidation (never re-published): kind with arg = key or tag
 * (ignored for HC_INVAL_FLUSH), with the same staleness rules as the local
 * calls; counts bus_applied and the matching invalidations_* counter, and
 * emits its event with origin.  HC_ERR_INVALID for a NULL c, an unknown kind,
 * or a NULL/empty arg; HC_ERR_TOO_LARGE for one over HC_MAX_KEY_LEN.  Any
 * thread (transports call it from their receiving thread). */
HC_EXTERN hc_status hc_cache_apply(hc_cache *c, hc_inval_kind kind, const char *arg,
                                   hc_origin origin, hc_error *err);

/*
 * Bypass: while on, nothing is stored (puts are dropped, loads run and are
 * not stored, counted as bypassed_loads) and hc_get misses.  Each change of
 * the flag also flushes the cache and bumps the flush epoch, so a load that
 * began before the change is never stored after it (that flush is not
 * counted in invalidations_flush).  Setting the current value is a no-op.
 */
/* A change emits HC_EV_BYPASS_ON/OFF with origin.  No-op for a NULL c.  Any
 * thread. */
HC_EXTERN void hc_cache_set_bypass(hc_cache *c, bool on, hc_origin origin);
/* The current bypass flag; false for a NULL c.  Any thread. */
HC_EXTERN bool hc_cache_bypass(const hc_cache *c);

/*
 * Bus bookkeeping, called by transports: each is a no-op for a NULL c (or an
 * unknown counter), never fails and may be called from any thread.
 */

typedef enum hc_bus_counter {
    HC_BUSCTR_PUBLISHED,
    HC_BUSCTR_RECEIVED,
    HC_BUSCTR_MALFORMED,
    HC_BUSCTR_PUBLISH_FAILURES,
    HC_BUSCTR_DISCONNECTS,
    HC_BUSCTR_RECONNECTS
} hc_bus_counter;

/* Add n to the bus_* counter ctr of c's stats. */
HC_EXTERN void hc_cache_bus_count(hc_cache *c, hc_bus_counter ctr, uint64_t n);
/* Record the state shown in hc_diagnostics.bus_state (bypass is separate:
 * hc_cache_set_bypass). */
HC_EXTERN void hc_cache_set_bus_state(hc_cache *c, hc_bus_state st);
/* Emit a bus event (HC_EV_BUS_DISCONNECT/RECONNECT) with a detail text
 * (subject may be NULL; copied, truncated to HC_EVENT_SUBJECT_MAX - 1). */
HC_EXTERN void hc_cache_emit(hc_cache *c, hc_event_kind kind, hc_origin origin,
                             const char *subject);

#ifdef __cplusplus
}
#endif

#endif /* HYDRACACHE_CACHE_H */
