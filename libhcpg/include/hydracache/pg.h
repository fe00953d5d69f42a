/*
 * hydracache/pg.h - the libpq adapter: cache the results of PostgreSQL
 * queries in an hc_cache and hand back ordinary PGresults.
 *
 *     hc_query q = {.sql = "SELECT id, name FROM users WHERE id = $1", HC_PARAMS(id)};
 *     hc_query_entity(&q, "user", id);            // key + tag "user:<id>", tag "user:*"
 *     PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
 *     ...                                          // use r as any PGresult
 *     PQclear(r);
 *
 * Ownership: every PGresult returned here is new and belongs to the caller,
 * who PQclear()s it, on a hit as on a miss.  An hc_query only borrows the
 * strings and arrays it points to; they must live for the duration of each
 * call.  Everything inside an hc_query (keys, tags, generated SQL) is stored
 * in the struct itself (about 1.8 KiB, HC_QUERY_BUF_MAX bytes of it for the
 * helpers' key, tags and SQL together), so queries can live on the stack and
 * be copied.
 *
 * Threading: the cache may be shared by any number of threads; a PGconn may
 * not (libpq rule): use one connection per thread or serialise its use.  An
 * hc_query may be read by several threads at once once built; the hc_query_*
 * helpers that modify one must not run concurrently with other uses of it.
 *
 * Errors: functions returning PGresult * return NULL on error and fill the
 * optional hc_error.  Only results with status PGRES_TUPLES_OK are cached;
 * server errors are never cached (see hc_query.error_result).
 *
 * What a hit matches: one entry per key, stored with the result_format it
 * was asked for and a fingerprint of the loading session's DateStyle,
 * TimeZone, IntervalStyle, client_encoding and standard_conforming_strings
 * (as libpq tracks them from the server's ParameterStatus messages: no round
 * trip).  A call asking for another result format, or on a connection whose
 * settings differ, is served from the server, never from that entry: it runs
 * the query on conn (as inside a transaction, below), returns its result and
 * leaves the entry as it is (not replaced, so connections with different
 * settings cannot evict each other's entries in turn).  Such calls count as a
 * hit and as bypassed_loads in hc_stats.  Calls without a conn
 * (hc_pg_fetch_with) match only entries loaded without one.
 * search_path is NOT part of it: PostgreSQL does not report it to the
 * client.  Queries whose result depends on it (unqualified names resolved
 * differently per session) must qualify their names, or use a key or label
 * per search_path.  Other settings that change text output without being
 * reported (lc_monetary for money, extra_float_digits, bytea_output) must
 * likewise be the same on every connection sharing a cache, or be pinned
 * with SET in the connection string (options='-c bytea_output=hex').
 *
 * Transactions: a call whose conn is inside a transaction block
 * (PQtransactionStatus(conn) != PQTRANS_IDLE) bypasses the cache: it runs the
 * query on conn and returns the result, but neither reads the cache (a cached
 * result may predate the transaction's own writes), nor stores (the result may
 * show uncommitted writes or an old REPEATABLE READ snapshot), nor joins
 * another thread's load.  Such calls count as bypassed_loads in hc_stats
 * (neither hit, miss nor load).  hc_pg_fetch_with has no conn and cannot tell: use
 * hc_pg_fetch_with_conn for loaders that may run inside a transaction.
 */
#ifndef HYDRACACHE_PG_H
#define HYDRACACHE_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <hydracache/cache.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HC_PG_MAX_KEY_COLUMNS 8   /* key columns of one entity */
#define HC_PG_MAX_OWN_TAGS 6      /* tags the hc_query_* helpers may attach */
#define HC_POLICY_MAX_TAGS 8      /* literal tags in an hc_policy */
#define HC_QUERY_SQL_MAX 512      /* SQL generated from an hc_entity_def */
/* Room in an hc_query for its entity key, entity/collection tags and generated
 * SQL together (NULs included): an entity key of HC_MAX_KEY_LEN bytes still
 * fits beside a short entity name's table tag. */
#define HC_QUERY_BUF_MAX 1536

/* ------------------------------------------------------------ policies */

/*
 * A reusable caching policy: label, explicit key, tags and TTL shared by many
 * queries.  A query's own non-empty fields win over its policy's; tags are
 * merged.  Immutable once built, so one policy may be used by many threads.
 *
 *     static const hc_policy *const ACTIVE_USERS =
 *         HC_POLICY(.label = "users.active", .tags = {"users"}, .ttl_ms = 30000);
 */
typedef struct hc_policy {
    const char *label;                        /* diagnostics and derived-key namespace */
    const char *key;                          /* explicit key; NULL -> derived */
    const char *tags[HC_POLICY_MAX_TAGS];     /* NULL-terminated unless full */
    const hc_tagset *tagset;                  /* borrowed, optional */
    uint64_t ttl_ms;                          /* HC_TTL_DEFAULT (0) -> cache default */
} hc_policy;

/* Pointer to a constant policy; valid at file scope (static storage) too. */
#define HC_POLICY(...) (&(const hc_policy){__VA_ARGS__})

/* ------------------------------------------------------------ entities */

/*
 * An entity: rows of one table addressed by their key columns.  Entity
 * queries are keyed and tagged `esc(name):esc(k1)[:esc(k2)...]` and also
 * carry the table-wide tag `esc(name):*`, exactly as the hydracache extension
 * emits them for hydracache.watch(table, name, key_columns, collection)
 * (docs/PROTOCOL.md).  Declare once, e.g. at file scope:
 *
 *     static HC_ENTITY_DEF(USER, .name = "user", .collection = "users",
 *                          .table = "public.users", .key_columns = {"id"},
 *                          .ttl_ms = 60000);
 *
 * table and key_columns are pasted into the generated SQL verbatim: they come
 * from your code, never from user input; quote them yourself if needed
 * (.table = "\"Users\"").  An entity key names one row shape: every query that
 * uses the key "user:42" must select the same columns (use .select).
 */
/*
 * The type of a key column, so that every spelling of one value gets one key:
 * the key must be the column's text output, which is what the extension's
 * trigger sends ("42", never "0042").
 *   HC_PG_KEY_TEXT  (default) the id is used as given: pass it exactly as
 *                   PostgreSQL prints the column (text, varchar, or any type
 *                   you already print canonically);
 *   HC_PG_KEY_INT   smallint/integer/bigint: leading/trailing blanks, a '+'
 *                   sign and leading zeros are removed ("0042", "+42" and
 *                   " 42 " are "42"; "-0" is "0"); anything but an optional
 *                   sign and 1..19 digits fitting in a bigint is
 *                   HC_ERR_INVALID ("id ... is not an integer");
 *   HC_PG_KEY_UUID  uuid: upper-case, braces and hyphens between groups of four
 *                   digits as PostgreSQL accepts them become the lower-case
 *                   8-4-4-4-12 form; anything else is HC_ERR_INVALID.
 * The canonical text is both the key and the parameter sent to the server.
 */
typedef enum hc_pg_key_type {
    HC_PG_KEY_TEXT = 0,
    HC_PG_KEY_INT,
    HC_PG_KEY_UUID,
} hc_pg_key_type;

typedef struct hc_entity_def {
    const char *name;                                 /* entity name, e.g. "user" (required) */
    const char *collection;                           /* collection tag; NULL -> table name without schema */
    const char *table;                                /* table for the generated SQL */
    const char *key_columns[HC_PG_MAX_KEY_COLUMNS];   /* NULL-terminated; empty -> {"id"} */
    const char *select;                               /* SQL with $1..$n for the key values; NULL ->
                                                         "SELECT * FROM <table> WHERE <k1> = $1 AND ..." */
    uint64_t ttl_ms;                                  /* HC_TTL_DEFAULT (0) -> cache default */
    const char *label;                                /* NULL -> name */
    hc_pg_key_type key_types[HC_PG_MAX_KEY_COLUMNS];  /* per key column; default HC_PG_KEY_TEXT */
} hc_entity_def;

#define HC_ENTITY_DEF(var, ...) const hc_entity_def var = {__VA_ARGS__}

/* ------------------------------------------------------------ queries */

/*
 * One cacheable query: what to run (the PQexecParams arguments) and how to
 * cache it.  Zero-initialise it (designated initialisers do) and set what you
 * need; the fields below `priv_` are managed by the hc_query_* helpers.
 *
 * The cache key is, in order of precedence: .key; the entity key set by
 * hc_query_entity/hc_query_for_entity; .policy->key; otherwise derived as
 * `q:<esc(label)>:<32 hex digits>`, the label being .label, the policy's
 * label, the collection name or "sql", and the digits a SipHash-2-4-128 of
 * the SQL, the result format and every parameter's type, format and value
 * (NULL distinct from empty).  The same query with the same parameters
 * always gets the same key, in every process and on every platform.
 *
 * Tags: those attached by the helpers, then .tags, .tagset and the policy's
 * (deduplicated; at most HC_MAX_TAGS).  TTL: .ttl_ms, else the policy's,
 * else the entity's, else the cache default.
 */
typedef struct hc_query {
    /* what to run */
    const char *sql;                    /* SQL with $1..$n; NULL only with hc_pg_fetch_with */
    int nparams;                        /* 0..65535 */
    const char *const *param_values;    /* NULL entries are SQL NULL */
    const int *param_lengths;           /* byte lengths of binary params; NULL if all text */
    const int *param_formats;           /* 0 text / 1 binary per param; NULL -> all text */
    const Oid *param_types;             /* NULL -> server infers */
    int result_format;                  /* 0 text (default), 1 binary */

    /* how to cache */
    const char *key;                    /* explicit cache key; NULL -> see above */
    const char *label;                  /* diagnostics and derived-key namespace */
    hc_tags tags;                       /* borrowed extra tags */
    const hc_tagset *tagset;            /* borrowed extra tags */
    uint64_t ttl_ms;                    /* HC_TTL_DEFAULT (0), HC_TTL_FOREVER or ms */
    const hc_policy *policy;            /* borrowed, optional */

    /*
     * Optional out-parameter: when this call itself sent the query and the
     * server answered with an error, *error_result receives libpq's error
     * PGresult (PQresultErrorField(..., PG_DIAG_SQLSTATE) etc.), which the
     * caller PQclear()s.  Left NULL otherwise (also for callers that joined
     * another thread's failed load: they only get the message in hc_error).
     */
    PGresult **error_result;

    /*
     * Managed by the hc_query_* helpers; do not touch.  Only the bytes of buf
     * in use are ever read, so buf may stay uninitialised (the helpers that
     * return a query by value only zero what precedes it).
     */
    struct hc_query_priv_ {
        hc_status error;                                /* first helper error; message at buf[0] */
        int nparams;                                    /* key values as params (entity defs) */
        uint64_t ttl_ms;                                /* from an entity def */
        const char *params[HC_PG_MAX_KEY_COLUMNS];
        unsigned short param_off[HC_PG_MAX_KEY_COLUMNS]; /* canonical id in buf, if in param_in_buf */
        unsigned char param_in_buf;                     /* bit i: params[i] is buf + param_off[i] */
        const char *label;                              /* borrowed collection name: default label */
        unsigned short used;                            /* bytes of buf in use */
        unsigned short key_off;                         /* entity key, if key_is_tag */
        unsigned short sql_off;                         /* generated SQL, if has_sql */
        unsigned short ntags;                           /* own tags in buf */
        unsigned short tag_off[HC_PG_MAX_OWN_TAGS];
        bool key_is_tag;                                /* entity key set (doubles as tag) */
        bool has_sql;                                   /* SQL generated from an entity def */
        char buf[HC_QUERY_BUF_MAX];                     /* entity key, own tags, generated SQL */
    } priv_;
} hc_query;

/* .nparams and .param_values from a list of strings: {.sql = "...", HC_PARAMS(a, b)} */
#define HC_PARAMS(...)                                                                 \
    .nparams = (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)), \
    .param_values = (const char *const[]){__VA_ARGS__}

/*
 * Make q an entity query: key and tag esc(entity):esc(id) (hc_key_build) and
 * the table-wide tag esc(entity):* (hc_key_table_tag).  Call once per query.
 * id NULL stands for SQL NULL ("\N").  The id must be the key column's value
 * exactly as PostgreSQL prints it (what the extension's trigger sends): "42",
 * not "0042" or "+42", whose key "user:0042" no write would ever invalidate.
 * hc_query_for_entity canonicalises ids for columns declared in
 * hc_entity_def.key_types; these helpers cannot know the column's type.  The helpers record their first error in
 * q and every hc_pg_fetch_* of q reports it, so checking here is optional;
 * once q holds an error, the helpers leave it unchanged and return that error.
 * HC_ERR_INVALID (NULL q/entity, called twice, n out of range),
 * HC_ERR_TOO_LARGE (key or tags over their limits, or the key, tags and
 * generated SQL of q together over HC_QUERY_BUF_MAX bytes).
 */
HC_EXTERN hc_status hc_query_entity(hc_query *q, const char *entity, const char *id);
/* Multi-column key: esc(entity):esc(ids[0]):esc(ids[1])... (1..HC_PG_MAX_KEY_COLUMNS
 * ids; ids NULL or n out of range: HC_ERR_INVALID).  Same rules as hc_query_entity. */
HC_EXTERN hc_status hc_query_entity_n(hc_query *q, const char *entity, const char *const *ids,
                                      size_t n);
/* HC_QUERY_ENTITY(&q, "order_item", "7", "3") */
#define HC_QUERY_ENTITY(q, entity, ...)                                                  \
    hc_query_entity_n((q), (entity), (const char *const[]){__VA_ARGS__},                \
                      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/*
 * Make q a collection query: attach the collection tag esc(collection) (one
 * segment, as the extension emits it on every write to the table) and use
 * the collection as default label; the key stays derived from SQL + params.
 * collection is copied into q as a tag but borrowed as the label: it must
 * outlive q's use.  Errors are recorded in q as for hc_query_entity:
 * HC_ERR_INVALID (NULL q, NULL/empty collection), HC_ERR_TOO_LARGE.
 */
HC_EXTERN hc_status hc_query_collection(hc_query *q, const char *collection);
/* Attach one more collection tag (a query reading several tables), label
 * unchanged; collection is copied.  Errors as hc_query_collection. */
HC_EXTERN hc_status hc_query_add_collection(hc_query *q, const char *collection);

/*
 * The query of one entity row: SQL (.select or generated), the key values as
 * text parameters $1..$n (borrowed: they must outlive the returned query's
 * use; ids of HC_PG_KEY_INT/HC_PG_KEY_UUID columns are canonicalised into
 * the query itself, and an id not of its type is HC_ERR_INVALID), entity key
 * and tags, TTL and label from def.  Errors are recorded in
 * the returned query and reported by the fetch.
 *
 *     hc_query q = hc_query_for_entity(&USER, "42");
 *     PGresult *r = hc_pg_fetch_one(cache, conn, &q, &err);
 */
HC_EXTERN hc_query hc_query_for_entity(const hc_entity_def *def, const char *id);
/* As hc_query_for_entity for a multi-column key: n must equal the number of
 * def's key columns (ids borrowed like id).  A NULL def, or one without a
 * name or without both table and select, is an HC_ERR_INVALID recorded in
 * the returned query.  Pure functions of their arguments; any thread. */
HC_EXTERN hc_query hc_query_for_entity_n(const hc_entity_def *def, const char *const *ids,
                                         size_t n);
/* A query over def's whole collection: sql as given (borrowed), the
 * collection tag and TTL of def (def borrowed: its collection or table name
 * serves as the query's label).  A NULL def or one without collection and
 * table is an HC_ERR_INVALID recorded in the returned query. */
HC_EXTERN hc_query hc_query_for_collection(const hc_entity_def *def, const char *sql);

/*
 * The cache key q resolves to (see hc_query), NUL-terminated into buf.
 * HC_ERR_INVALID (bad query or a recorded helper error), HC_ERR_TOO_LARGE.
 * Pure function of q; thread-safe.
 */
HC_EXTERN hc_status hc_query_key(const hc_query *q, char *buf, size_t cap, hc_error *err);
/*
 * The tags q attaches to its entry, deduplicated, into out[0..cap) (out may
 * be NULL to only count).  Returns the count (which may exceed cap: then only
 * cap were written), or 0 on error (NULL q, a recorded helper error, bad
 * tags).  The strings are borrowed from q, its policy, tags and tagset: valid
 * while those are unchanged.  Pure function of q; thread-safe.
 */
HC_EXTERN size_t hc_query_tags(const hc_query *q, const char **out, size_t cap);

/* ------------------------------------------------------------ fetching */

/*
 * Run q on conn through the cache: a hit rebuilds a PGresult from the cached
 * bytes without contacting the server; a miss runs PQexecParams once under
 * single-flight (concurrent callers of the same key wait and share it; tag
 * generations are recorded before the query is sent, so a write invalidated
 * meanwhile is never stored) and caches a PGRES_TUPLES_OK result, whatever its
 * row count (empty ones included).  Inside a transaction the cache is
 * bypassed (see the top of this file).  Returns a new PGresult (caller PQclear()s) or NULL with err:
 *   HC_ERR_INVALID  NULL cache/conn/q/sql, bad params, a recorded helper
 *                   error, a statement that returns no rows (PGRES_COMMAND_OK);
 *   HC_ERR_PG       libpq's message (connection failure, server error;
 *                   see hc_query.error_result); nothing is cached;
 *   HC_ERR_CODEC    corrupt cached bytes; HC_ERR_NOMEM; HC_ERR_TOO_LARGE.
 * A hit's PGresult has the same columns (name, table OID, column number, type
 * OID, typmod, size, format), rows, values and NULLs as the server's, but no
 * command status (PQcmdStatus/PQcmdTuples are empty).  It is made for conn as
 * libpq makes its own: conn's event procedures (PQregisterEventProc) are
 * copied to it and receive PGEVT_RESULTCREATE (and PGEVT_RESULTDESTROY on
 * PQclear); a procedure failing PGEVT_RESULTCREATE makes the call fail with
 * HC_ERR_PG.
 * Thread-safe for the cache; conn must not be used by another thread meanwhile.
 */
HC_EXTERN PGresult *hc_pg_fetch_all(hc_cache *c, PGconn *conn, const hc_query *q, hc_error *err);

/*
 * As hc_pg_fetch_all for a query that must return exactly one row.  0 or
 * several rows: NULL with HC_ERR_ROWCOUNT and the message "expected exactly
 * one row, got N".  The row count is checked per caller, after the cache:
 * the result itself is cached like any other, so a later hc_pg_fetch_one of
 * the key reports HC_ERR_ROWCOUNT again from the cache, and an
 * hc_pg_fetch_optional / hc_pg_fetch_all of the same key (or a caller of
 * those joining this load) gets the result without a server round trip.
 */
HC_EXTERN PGresult *hc_pg_fetch_one(hc_cache *c, PGconn *conn, const hc_query *q, hc_error *err);

/*
 * As hc_pg_fetch_all for a query returning 0 or 1 row.  "No row" is cached
 * too and returned as a PGresult with PQntuples() == 0 (never NULL); two rows
 * or more: NULL with HC_ERR_ROWCOUNT ("expected at most one row, got N").
 */
HC_EXTERN PGresult *hc_pg_fetch_optional(hc_cache *c, PGconn *conn, const hc_query *q,
                                         hc_error *err);

/*
 * Caller-supplied loader for hc_pg_fetch_with: run whatever produces the
 * result (a prepared statement, a query inside the caller's transaction,
 * repository code) and return a new PGresult, which the adapter takes over
 * (it PQclear()s it or hands it back).  Return NULL and fill err (optional)
 * on a failure that is not a PGresult; an error PGresult is fine.
 */
typedef PGresult *(*hc_pg_loader_fn)(void *ctx, const hc_query *q, hc_error *err);

/*
 * As hc_pg_fetch_all with the caller's loader instead of PQexecParams.  q
 * supplies key (explicit, entity, or derived from q->sql + params: then sql
 * must be set), tags and TTL; the loader runs at most once per miss under
 * single-flight, from the calling thread.  The loader's own errors come back
 * with its status (HC_ERR_LOADER when it set none) and are not cached.
 *
 * Hazard: without a conn this function cannot see a transaction, so a loader
 * reading inside one (its own uncommitted writes, an old snapshot) has its
 * result cached for everyone, and a hit may predate the transaction's own
 * writes.  Use hc_pg_fetch_with_conn when the loader's connection may be in a
 * transaction; keep hc_pg_fetch_with for loaders that are not (or that read
 * from elsewhere than PostgreSQL).
 */
HC_EXTERN PGresult *hc_pg_fetch_with(hc_cache *c, const hc_query *q, hc_pg_loader_fn loader,
                                     void *ctx, hc_error *err);

/*
 * hc_pg_fetch_with, told the connection the loader uses (conn may be NULL:
 * then it is exactly hc_pg_fetch_with).  When conn is inside a transaction
 * block the cache is bypassed (see the top of this file): the loader runs and
 * its result is returned, not stored.  If the loader itself leaves conn inside
 * a transaction, its result is returned to this caller but not stored, and
 * callers that joined this load get HC_ERR_STATE.  A hit's PGresult is made
 * for conn (as by hc_pg_fetch_all).  Same threading rules as hc_pg_fetch_all.
 */
HC_EXTERN PGresult *hc_pg_fetch_with_conn(hc_cache *c, PGconn *conn, const hc_query *q,
                                          hc_pg_loader_fn loader, void *ctx, hc_error *err);

/* ------------------------------------------------------------ row views */

#define HC_PG_VIEW_INLINE_FIELDS 16  /* (unused since column metadata is shared) */
#define HC_PG_VIEW_INLINE_CELLS 32   /* cells (rows x columns) a view indexes without malloc */

/*
 * A zero-copy, read-only view of a query result: the accessors read straight
 * from the cached bytes, which the view keeps alive by holding a reference to
 * the cached value (an invalidation or eviction meanwhile does not affect it),
 * and from the result's column metadata, shared by all results of its shape.
 * No PGresult is built, so a hit costs little more than hc_get.  A result of
 * at most HC_PG_VIEW_INLINE_CELLS cells needs no allocation at all.
 *
 *     hc_pg_view v;
 *     if (hc_pg_fetch_one_view(cache, conn, &q, &v, &err) == HC_OK) {
 *         printf("%s\n", hc_pg_view_getvalue(&v, 0, 1));
 *         hc_pg_view_release(&v);
 *     }
 *
 * The struct is the caller's (usually on the stack); its fields are private.
 * After HC_OK the caller must call hc_pg_view_release once; after an error
 * the view holds nothing (releasing it anyway is harmless).  A view must not
 * be copied (release the one that was filled).  Once filled it is immutable:
 * any number of threads may read it until it is released.
 */
typedef struct hc_pg_view {
    struct hc_pg_view_priv_ {
        hc_value *value;                                /* the reference held; NULL: empty */
        const void *shape;                              /* its column metadata, held */
        const unsigned char *data;                      /* value's bytes */
        int ntuples, nfields;
        const uint32_t *cells;                          /* offset of each cell (its length), 0 = NULL */
        uint32_t *heap;                                 /* the cells' offsets, for large results */
        uint32_t inline_cells[HC_PG_VIEW_INLINE_CELLS];
    } priv_;
} hc_pg_view;

/*
 * As hc_pg_fetch_all / hc_pg_fetch_one / hc_pg_fetch_optional, with the same
 * caching, single-flight, row-count rules, errors and transaction bypass, but
 * filling *view instead of returning a PGresult.  On a miss the thread that
 * ran the query views the encoding it cached; inside a transaction the result
 * is encoded for this view alone and not stored.  Returns HC_OK, or an error
 * as listed for hc_pg_fetch_all (and HC_ERR_ROWCOUNT) with view empty;
 * HC_ERR_INVALID for a NULL view.  q->error_result works as there.
 */
HC_EXTERN hc_status hc_pg_fetch_all_view(hc_cache *c, PGconn *conn, const hc_query *q,
                                         hc_pg_view *view, hc_error *err);
HC_EXTERN hc_status hc_pg_fetch_one_view(hc_cache *c, PGconn *conn, const hc_query *q,
                                         hc_pg_view *view, hc_error *err);
HC_EXTERN hc_status hc_pg_fetch_optional_view(hc_cache *c, PGconn *conn, const hc_query *q,
                                              hc_pg_view *view, hc_error *err);

/*
 * The libpq accessors, over a view (row and column numbers from 0).  Out of
 * range arguments (or an empty or NULL view) give what libpq gives for them: NULL
 * from getvalue/fname, 0 from getlength/ftype/fformat, 1 from getisnull, -1
 * from fnumber.  A value is NUL-terminated (binary ones too) and "" for SQL
 * NULL; pointers stay valid until hc_pg_view_release.  fnumber matches names
 * exactly (no case folding or quotes, unlike PQfnumber).
 */
HC_EXTERN int hc_pg_view_ntuples(const hc_pg_view *view);
HC_EXTERN int hc_pg_view_nfields(const hc_pg_view *view);
HC_EXTERN const char *hc_pg_view_fname(const hc_pg_view *view, int col);
HC_EXTERN int hc_pg_view_fnumber(const hc_pg_view *view, const char *name);
HC_EXTERN Oid hc_pg_view_ftype(const hc_pg_view *view, int col);
HC_EXTERN int hc_pg_view_fformat(const hc_pg_view *view, int col);
HC_EXTERN const char *hc_pg_view_getvalue(const hc_pg_view *view, int row, int col);
HC_EXTERN int hc_pg_view_getlength(const hc_pg_view *view, int row, int col);
HC_EXTERN int hc_pg_view_getisnull(const hc_pg_view *view, int row, int col);

/* Drop the view's reference to the cached bytes; the view becomes empty.
 * NULL-safe and idempotent. */
HC_EXTERN void hc_pg_view_release(hc_pg_view *view);

#ifdef __cplusplus
}
#endif

#endif /* HYDRACACHE_PG_H */
