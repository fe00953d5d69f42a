/*
 * pg.c - the libpq adapter's fetching: hc_pg_fetch_* and the row-view
 * fetches on top of hc_get_or_load and the PGresult codec (pgcodec.c):
 * running the query, the transaction and session-settings bypasses, and
 * rebuilding a PGresult on a hit.  Queries are resolved by pgquery.c.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <libpq-events.h>

#include "cache_int.h"
#include "hash.h"
#include "hydracache/pg.h"
#include "pgcodec.h"
#include "pgquery.h"
#include "pgrowview.h"

/* ------------------------------------------------------------ fetching */

typedef enum rows_rule { ROWS_ANY, ROWS_ONE, ROWS_OPTIONAL } rows_rule;

typedef struct load_ctx {
    const hc__pgplan *pl;
    const hc_query *q;
    PGconn *conn;           /* NULL: hc_pg_fetch_with without a connection */
    hc_pg_loader_fn fn;
    void *fn_ctx;
    PGresult *result;       /* loaded by this thread: handed back as it is */
    PGresult *error_result; /* libpq's error result from this thread's run */
    bool uncacheable;       /* result valid, but the load ended inside a transaction */
    hc__pgcodec_origin origin; /* result format and session settings of this call */
} load_ctx;

static hc_status check_rows(rows_rule rule, int n, hc_error *err)
{
    if (rule == ROWS_ONE && n != 1)
        return hc_error_set(err, HC_ERR_ROWCOUNT, "expected exactly one row, got %d", n);
    if (rule == ROWS_OPTIONAL && n > 1)
        return hc_error_set(err, HC_ERR_ROWCOUNT, "expected at most one row, got %d", n);
    return HC_OK;
}

/* libpq's message without its trailing newline. */
static hc_status pg_error(hc_error *err, const char *msg)
{
    size_t n = msg ? strlen(msg) : 0;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    if (n == 0) return hc_error_set(err, HC_ERR_PG, "postgresql error without message");
    return hc_error_set(err, HC_ERR_PG, "%.*s", (int)n, msg);
}

/*
 * Inside a transaction block the connection may see its own uncommitted
 * writes or an old snapshot (REPEATABLE READ / SERIALIZABLE), neither of
 * which other callers may be served; and a cached result may be older than
 * the transaction's own writes.  So such calls bypass the cache entirely.
 * Anything but PQTRANS_IDLE counts: INERROR and ACTIVE calls fail at the
 * server anyway, and UNKNOWN (a broken connection) reports libpq's error.
 */
static bool in_transaction(PGconn *conn)
{
    return conn != NULL && PQtransactionStatus(conn) != PQTRANS_IDLE;
}

static PGresult *run_query(load_ctx *lc, hc_status *st, hc_error *err)
{
    if (lc->fn == NULL) {
        const hc__pgplan *pl = lc->pl;
        PGresult *r = PQexecParams(lc->conn, pl->sql, pl->nparams, pl->types, pl->values,
                                   pl->lengths, pl->formats, pl->result_format);
        if (r == NULL) *st = pg_error(err, PQerrorMessage(lc->conn));
        return r;
    }
    hc_error lerr = {.code = HC_OK};
    PGresult *r = lc->fn(lc->fn_ctx, lc->q, &lerr);
    if (r == NULL) {
        if (lerr.code >= 0) *st = hc_error_set(err, HC_ERR_LOADER, "hc_pg_fetch_with: loader returned no result");
        else *st = hc_error_set(err, lerr.code, "%s", lerr.message);
    }
    return r;
}

/* Run the query; keep a PGRES_TUPLES_OK result (any row count) in
 * lc->result and a server error in lc->error_result. */
static hc_status run(load_ctx *lc, hc_error *err)
{
    hc_status st = HC_OK;
    PGresult *r = run_query(lc, &st, err);
    if (r == NULL) return st;
    ExecStatusType es = PQresultStatus(r);
    if (es == PGRES_FATAL_ERROR || es == PGRES_NONFATAL_ERROR || es == PGRES_BAD_RESPONSE) {
        st = pg_error(err, PQresultErrorMessage(r));
        PQclear(lc->error_result); /* a re-run replaces an earlier attempt */
        lc->error_result = r;
        return st;
    }
    if (es != PGRES_TUPLES_OK) {
        PQclear(r);
        return hc_error_set(err, HC_ERR_INVALID, "statement returned %s, not rows: only queries are cached",
                            PQresStatus(es));
    }
    PQclear(lc->result);
    lc->result = r;
    return HC_OK;
}

/* The hc_get_or_load loader: run the query, keep the PGresult for the
 * calling thread, hand the cache its encoding.  The row count is not
 * checked here but per caller, so a joiner's rule is its own. */
static hc_status load(void *vctx, const char *key, hc_value **out, hc_error *err)
{
    load_ctx *lc = vctx;
    (void)key;
    hc_status st = run(lc, err);
    if (st != HC_OK) return st;
    if (in_transaction(lc->conn)) {
        /* the caller's loader opened a transaction and left it open: its
         * result may hold uncommitted writes; refuse to store it */
        lc->uncacheable = true;
        return hc_error_set(err, HC_ERR_STATE,
                            "hc_pg_fetch_with_conn: the loader left the connection inside a "
                            "transaction; result not cached");
    }
    st = hc__pgcodec_encode(lc->result, &lc->origin, out, err);
    if (st != HC_OK) {
        PQclear(lc->result);
        lc->result = NULL;
    }
    return st;
}

/*
 * The session settings that change the text PostgreSQL sends for the same
 * rows (and, for standard_conforming_strings, what the same SQL means),
 * as libpq tracks them from ParameterStatus messages: no round trip.
 * search_path is not reported by the server and cannot be part of it.
 * 0 without a connection (hc_pg_fetch_with): only such calls match it.
 */
static uint64_t session_settings(PGconn *conn)
{
    static const char *const names[] = {"DateStyle", "TimeZone", "IntervalStyle",
                                        "client_encoding", "standard_conforming_strings"};
    static const unsigned char key[16] = "hydracache-s-v1";
    if (conn == NULL) return 0;
    hc__siphash h;
    hc__siphash_init(&h, key);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = PQparameterStatus(conn, names[i]);
        /* NUL-separated, NULL (not reported) distinct from "" */
        hc__siphash_update(&h, v ? v : "\xff", v ? strlen(v) + 1 : 1);
    }
    unsigned char d[16];
    hc__siphash_final128(&h, d);
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++) fp = fp << 8 | d[i];
    return fp != 0 ? fp : 1;
}

/* Run the query outside the cache (nothing read, stored or joined). */
static hc_status bypass(hc_cache *c, load_ctx *lc, hc_error *err)
{
    hc__cache_count_bypass(c);
    return run(lc, err);
}

/*
 * hc_get_or_load, and for a hit or a joined load the shape of the value
 * (held in *shape; NULL when the bytes are corrupt: decoding reports it).  A
 * value loaded in another result format or under other session settings is
 * not this caller's: it reads from the server and leaves the entry be.
 */
static hc_status get_or_load(hc_cache *c, const hc_opts *opts, load_ctx *lc, hc_value **v,
                             hc__pgshape **shape, hc_error *err)
{
    hc_status st = hc_get_or_load(c, lc->pl->key, opts, load, lc, v, err);
    if (st != HC_OK || lc->result != NULL || *v == NULL) return st;
    if (hc__pgcodec_shape(hc_value_data(*v), hc_value_len(*v), shape, NULL) != HC_OK ||
        hc__pgcodec_fits(*shape, &lc->origin))
        return HC_OK;
    hc__pgshape_release(*shape);
    *shape = NULL;
    hc_value_release(*v);
    *v = NULL;
    return bypass(c, lc, err);
}

/*
 * Run q through the cache up to the point where the result is handed out:
 * *v is the cached or loaded value (NULL when nothing was stored) and
 * lc->result the PGresult this thread ran itself (NULL on a hit or a joined
 * load), *shape the held shape of a hit's value.  On error all are
 * released and q->error_result is handed out.
 */
static hc_status fetch_core(hc_cache *c, PGconn *conn, const hc_query *q, hc_pg_loader_fn fn,
                            void *fn_ctx, hc__pgplan *pl, load_ctx *lc, hc_value **v,
                            hc__pgshape **shape, hc_error *err)
{
    *v = NULL;
    *shape = NULL;
    *lc = (load_ctx){.pl = pl, .q = q, .conn = conn, .fn = fn, .fn_ctx = fn_ctx};
    if (q != NULL && q->error_result != NULL) *q->error_result = NULL;
    if (c == NULL || (fn == NULL && conn == NULL))
        return hc_error_set(err, HC_ERR_INVALID, c ? "PGconn is NULL" : "hc_cache is NULL");
    hc_status st = hc__pgquery_resolve(q, fn == NULL, pl, err);
    if (st != HC_OK) return st;

    hc_opts opts = {.ttl_ms = pl->ttl_ms, .tags = {pl->tags, pl->ntags}};
    lc->origin = (hc__pgcodec_origin){.result_format = pl->result_format,
                                      .settings = session_settings(conn)};
    if (in_transaction(conn)) { /* neither read nor store nor join (see in_transaction) */
        st = bypass(c, lc, err);
    } else {
        st = get_or_load(c, &opts, lc, v, shape, err);
    }
    if (st != HC_OK && !(lc->uncacheable && lc->result != NULL)) {
        PQclear(lc->result);
        lc->result = NULL;
        if (lc->error_result != NULL && q->error_result != NULL) *q->error_result = lc->error_result;
        else PQclear(lc->error_result);
        if (st > 0) st = hc_error_set(err, HC_ERR_STATE, "unexpected cache status %s", hc_status_str(st));
        hc_value_release(*v);
        *v = NULL;
        hc__pgshape_release(*shape);
        *shape = NULL;
        return st;
    }
    PQclear(lc->error_result);
    if (lc->uncacheable && err != NULL) *err = (hc_error){.code = HC_OK}; /* served, just not stored */
    return HC_OK;
}

static PGresult *fetch(hc_cache *c, PGconn *conn, const hc_query *q, rows_rule rule,
                       hc_pg_loader_fn fn, void *fn_ctx, hc_error *err)
{
    hc__pgplan pl;
    load_ctx lc;
    hc_value *v;
    hc__pgshape *shape;
    if (fetch_core(c, conn, q, fn, fn_ctx, &pl, &lc, &v, &shape, err) != HC_OK) return NULL;
    if (lc.result != NULL) { /* this thread ran the query: no need to rebuild */
        hc_value_release(v);
        if (check_rows(rule, PQntuples(lc.result), err) == HC_OK) return lc.result;
        PQclear(lc.result);
        return NULL;
    }
    /* a hit, or another thread's load we joined */
    PGresult *res = NULL;
    const void *data = hc_value_data(v);
    size_t len = hc_value_len(v);
    int n = 0;
    hc_status st = hc__pgcodec_ntuples(data, len, &n, err);
    if (st == HC_OK) st = check_rows(rule, n, err);
    if (st == HC_OK)
        st = shape ? hc__pgcodec_decode_shaped(data, len, shape, conn, &res, err)
                   : hc__pgcodec_decode(data, len, conn, &res, err);
    hc__pgshape_release(shape);
    hc_value_release(v);
    /* an ordinary PGresult: conn's event procedures (copied by
     * PQmakeEmptyPGresult) see it created, as libpq's own results */
    if (st == HC_OK && conn != NULL && !PQfireResultCreateEvents(conn, res)) {
        PQclear(res);
        res = NULL;
        hc_error_set(err, HC_ERR_PG, "a libpq event procedure failed on PGEVT_RESULTCREATE");
    }
    /* store-only removal so the next call reloads: not an invalidation
     * (nothing published to other processes, no counters, no event) */
    if (st == HC_ERR_CODEC) hc__cache_drop(c, pl.key);
    return res;
}

/* fetch, handing out a view of the cached bytes instead of a PGresult. */
static hc_status fetch_view(hc_cache *c, PGconn *conn, const hc_query *q, rows_rule rule,
                            hc_pg_view *view, hc_error *err)
{
    if (view == NULL) return hc_error_set(err, HC_ERR_INVALID, "hc_pg_view is NULL");
    hc__pgrowview_clear(view);
    hc__pgplan pl;
    load_ctx lc;
    hc_value *v;
    hc__pgshape *shape;
    hc_status st = fetch_core(c, conn, q, NULL, NULL, &pl, &lc, &v, &shape, err);
    if (st != HC_OK) return st;
    bool cached = lc.result == NULL; /* a hit or a joined load: bytes from the store */
    if (lc.result != NULL) {
        /* this thread ran it: view what it stored; when nothing was stored
         * (a transaction), an encoding for this view alone */
        if (v == NULL) st = hc__pgcodec_encode(lc.result, &lc.origin, &v, err);
        PQclear(lc.result);
    }
    if (st == HC_OK)
        st = shape ? hc__pgrowview_fill_shaped(v, shape, view, err) : hc__pgrowview_fill(v, view, err);
    if (st != HC_OK) {
        hc__pgshape_release(shape); /* the view took it over on success */
        hc_value_release(v);
        if (st == HC_ERR_CODEC && cached) hc__cache_drop(c, pl.key); /* as in fetch */
        return st;
    }
    st = check_rows(rule, view->priv_.ntuples, err);
    if (st != HC_OK) hc_pg_view_release(view);
    return st;
}

HC_EXTERN hc_status hc_pg_fetch_all_view(hc_cache *c, PGconn *conn, const hc_query *q,
                                         hc_pg_view *view, hc_error *err)
{
    return fetch_view(c, conn, q, ROWS_ANY, view, err);
}

HC_EXTERN hc_status hc_pg_fetch_one_view(hc_cache *c, PGconn *conn, const hc_query *q,
                                         hc_pg_view *view, hc_error *err)
{
    return fetch_view(c, conn, q, ROWS_ONE, view, err);
}

HC_EXTERN hc_status hc_pg_fetch_optional_view(hc_cache *c, PGconn *conn, const hc_query *q,
                                              hc_pg_view *view, hc_error *err)
{
    return fetch_view(c, conn, q, ROWS_OPTIONAL, view, err);
}

HC_EXTERN PGresult *hc_pg_fetch_all(hc_cache *c, PGconn *conn, const hc_query *q, hc_error *err)
{
    return fetch(c, conn, q, ROWS_ANY, NULL, NULL, err);
}

HC_EXTERN PGresult *hc_pg_fetch_one(hc_cache *c, PGconn *conn, const hc_query *q, hc_error *err)
{
    return fetch(c, conn, q, ROWS_ONE, NULL, NULL, err);
}

HC_EXTERN PGresult *hc_pg_fetch_optional(hc_cache *c, PGconn *conn, const hc_query *q,
                                         hc_error *err)
{
    return fetch(c, conn, q, ROWS_OPTIONAL, NULL, NULL, err);
}

HC_EXTERN PGresult *hc_pg_fetch_with_conn(hc_cache *c, PGconn *conn, const hc_query *q,
                                          hc_pg_loader_fn loader, void *ctx, hc_error *err)
{
    if (loader == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "hc_pg_fetch_with: loader is NULL");
        return NULL;
    }
    return fetch(c, conn, q, ROWS_ANY, loader, ctx, err);
}

HC_EXTERN PGresult *hc_pg_fetch_with(hc_cache *c, const hc_query *q, hc_pg_loader_fn loader,
                                     void *ctx, hc_error *err)
{
    return hc_pg_fetch_with_conn(c, NULL, q, loader, ctx, err);
}
