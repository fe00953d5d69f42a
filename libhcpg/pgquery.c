/*
 * pgquery.c - the adapter's query model: the hc_query helpers (entity and
 * collection keys and tags, entity definitions, canonical ids) and resolving
 * a query into what a fetch runs and caches (key, derived key, tags, TTL).
 * No libpq calls and no cache: tests/unit/check_pgquery.c covers it whole.
 */
#include "config.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "pgquery.h"

/* ------------------------------------------------------------ helpers */

_Static_assert(HC_PG_MAX_KEY_COLUMNS <= 8, "param_in_buf has a bit per key column");
_Static_assert(HC_QUERY_BUF_MAX >= HC_ERROR_MSG_MAX && HC_QUERY_BUF_MAX <= USHRT_MAX,
               "hc_query's buffer holds an error message and is indexed by unsigned short");

/* Remember the first helper error in q: hc_pg_fetch_* reports it.  Its
 * message takes the place of the buffer's contents, which a query with an
 * error never uses again (the helpers stop at the error; so does resolve). */
static hc_status record(hc_query *q, hc_status st, const hc_error *e)
{
    struct hc_query_priv_ *p = &q->priv_;
    if (st != HC_OK && p->error == HC_OK) {
        p->error = st;
        snprintf(p->buf, HC_ERROR_MSG_MAX, "%s", e->message);
        p->used = sizeof p->buf;
    }
    return st;
}

static hc_status fail(hc_query *q, hc_status st, const char *msg)
{
    hc_error e;
    hc_error_set(&e, st, "%s", msg);
    return record(q, st, &e);
}

static hc_status add_own_tag(hc_query *q, const char *tag, size_t len)
{
    struct hc_query_priv_ *p = &q->priv_;
    if (len == 0) return fail(q, HC_ERR_INVALID, "hc_query: empty tag");
    if (p->ntags >= HC_PG_MAX_OWN_TAGS || p->used + len + 1 > sizeof p->buf)
        return fail(q, HC_ERR_TOO_LARGE, "hc_query: too many or too long entity/collection tags");
    memcpy(p->buf + p->used, tag, len + 1);
    p->tag_off[p->ntags++] = p->used;
    p->used = (unsigned short)(p->used + len + 1);
    return HC_OK;
}

HC_EXTERN hc_status hc_query_entity_n(hc_query *q, const char *entity, const char *const *ids,
                                      size_t n)
{
    if (q == NULL) return HC_ERR_INVALID;
    struct hc_query_priv_ *p = &q->priv_;
    if (p->error != HC_OK) return p->error;
    if (entity == NULL || entity[0] == '\0' || ids == NULL || n == 0 || n > HC_PG_MAX_KEY_COLUMNS)
        return fail(q, HC_ERR_INVALID, "hc_query_entity: NULL/empty entity or 0 or too many key values");
    if (p->key_is_tag) return fail(q, HC_ERR_INVALID, "hc_query_entity: query already has an entity");
    const char *segs[HC_PG_MAX_KEY_COLUMNS + 1] = {entity};
    memcpy(segs + 1, ids, n * sizeof *ids);
    hc_error e;
    size_t klen;
    /* the key goes straight into the buffer; it counts once the tag fits too */
    hc_status st = hc_key_build(p->buf + p->used, sizeof p->buf - p->used, &klen, segs, n + 1, &e);
    if (st != HC_OK) return record(q, st, &e);
    char tag[HC_MAX_KEY_LEN + 1];
    st = hc_key_table_tag(tag, sizeof tag, entity, &e);
    if (st != HC_OK) return record(q, st, &e);
    unsigned short key_off = p->used;
    p->used = (unsigned short)(p->used + klen + 1);
    st = add_own_tag(q, tag, strlen(tag));
    if (st != HC_OK) return st;
    p->key_off = key_off;
    p->key_is_tag = true;
    return HC_OK;
}

HC_EXTERN hc_status hc_query_entity(hc_query *q, const char *entity, const char *id)
{
    return hc_query_entity_n(q, entity, &id, 1);
}

HC_EXTERN hc_status hc_query_add_collection(hc_query *q, const char *collection)
{
    if (q == NULL) return HC_ERR_INVALID;
    if (q->priv_.error != HC_OK) return q->priv_.error;
    if (collection == NULL || collection[0] == '\0')
        return fail(q, HC_ERR_INVALID, "hc_query_collection: NULL or empty collection");
    char tag[HC_MAX_KEY_LEN + 1];
    size_t len;
    hc_error e;
    hc_status st = hc_key_build(tag, sizeof tag, &len, &collection, 1, &e);
    return st != HC_OK ? record(q, st, &e) : add_own_tag(q, tag, len);
}

HC_EXTERN hc_status hc_query_collection(hc_query *q, const char *collection)
{
    hc_status st = hc_query_add_collection(q, collection);
    if (st == HC_OK) q->priv_.label = collection;
    return st;
}

/* The collection of def: its .collection, else its table without schema. */
static const char *def_collection(const hc_entity_def *def)
{
    if (def->collection != NULL) return def->collection;
    if (def->table == NULL) return NULL;
    const char *dot = strrchr(def->table, '.');
    return dot ? dot + 1 : def->table;
}

static size_t def_nkeys(const hc_entity_def *def)
{
    size_t n = 0;
    while (n < HC_PG_MAX_KEY_COLUMNS && def->key_columns[n] != NULL) n++;
    return n;
}

/* "SELECT * FROM <table> WHERE <k1> = $1 AND ..." into q's SQL buffer. */
static hc_status generate_sql(hc_query *q, const hc_entity_def *def, size_t n)
{
    static const char *const default_key[] = {"id"};
    const char *const *cols = def_nkeys(def) ? def->key_columns : default_key;
    struct hc_query_priv_ *p = &q->priv_;
    char *buf = p->buf + p->used;
    size_t room = sizeof p->buf - p->used, cap = room < HC_QUERY_SQL_MAX ? room : HC_QUERY_SQL_MAX;
    int w = snprintf(buf, cap, "SELECT * FROM %s WHERE ", def->table);
    for (size_t i = 0; i < n && w >= 0 && (size_t)w < cap; i++) {
        int more = snprintf(buf + w, cap - (size_t)w, "%s%s = $%zu", i ? " AND " : "", cols[i], i + 1);
        w = more < 0 ? more : w + more;
    }
    if (w < 0 || (size_t)w >= cap)
        return fail(q, HC_ERR_TOO_LARGE, "hc_query_for_entity: generated SQL too long");
    p->sql_off = p->used;
    p->used = (unsigned short)(p->used + (size_t)w + 1);
    p->has_sql = true;
    return HC_OK;
}

/*
 * An empty query whose buffer is left uninitialised: queries are returned by
 * value on every cached call, and zeroing the whole struct cost as much as
 * the cache lookup.  (One local returned everywhere lets the compiler build it
 * in the caller's storage.)
 */
static void init_query(hc_query *q)
{
    memset(q, 0, offsetof(hc_query, priv_.buf));
}

/* PostgreSQL's integer input (pg_strtoint64): blanks, a sign, digits,
 * blanks; printed as int8out prints it.  false unless it fits a bigint. */
static bool canon_int(const char *id, char out[21])
{
    while (*id == ' ' || (*id >= '\t' && *id <= '\r')) id++;
    bool neg = *id == '-';
    if (*id == '-' || *id == '+') id++;
    const char *digits = id;
    while (*id >= '0' && *id <= '9') id++;
    size_t nd = (size_t)(id - digits);
    while (*id == ' ' || (*id >= '\t' && *id <= '\r')) id++;
    if (nd == 0 || *id != '\0') return false;
    while (nd > 1 && *digits == '0') digits++, nd--;
    static const char max[] = "9223372036854775807", min[] = "9223372036854775808";
    if (nd > 19 || (nd == 19 && memcmp(digits, neg ? min : max, 19) > 0)) return false;
    neg = neg && !(nd == 1 && *digits == '0');
    out[0] = '-';
    memcpy(out + neg, digits, nd);
    out[neg + nd] = '\0';
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* PostgreSQL's uuid input (string_to_uuid): optional braces, 32 hex digits,
 * a hyphen allowed after any group of four; printed as uuid_out prints it. */
static bool canon_uuid(const char *id, char out[37])
{
    static const char digits[] = "0123456789abcdef";
    bool braces = *id == '{';
    id += braces;
    char *o = out;
    for (int i = 0; i < 16; i++) {
        int hi = hexval(id[0]), lo = hi < 0 ? -1 : hexval(id[1]);
        if (lo < 0) return false;
        id += 2;
        if (*id == '-' && i % 2 == 1 && i < 15) id++;
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = digits[hi];
        *o++ = digits[lo];
    }
    *o = '\0';
    if (braces && *id++ != '}') return false;
    return *id == '\0';
}

/* ids in the canonical text of their key types (HC_PG_KEY_TEXT as given),
 * written into q's buffer; *canon points at them. */
static hc_status canonical_ids(hc_query *q, const hc_entity_def *def, const char *const *ids,
                               size_t n, const char **canon)
{
    struct hc_query_priv_ *p = &q->priv_;
    for (size_t i = 0; i < n; i++) {
        hc_pg_key_type t = def->key_types[i];
        canon[i] = ids[i];
        if (t == HC_PG_KEY_TEXT || ids[i] == NULL) continue;
        char buf[37];
        if (t != HC_PG_KEY_INT && t != HC_PG_KEY_UUID) return fail(q, HC_ERR_INVALID, "hc_query_for_entity: unknown key type");
        if (!(t == HC_PG_KEY_INT ? canon_int(ids[i], buf) : canon_uuid(ids[i], buf))) {
            hc_error e;
            hc_error_set(&e, HC_ERR_INVALID, "hc_query_for_entity: entity %s: id \"%.64s\" is not %s",
                         def->name, ids[i], t == HC_PG_KEY_INT ? "an integer (bigint range)" : "a uuid");
            return record(q, HC_ERR_INVALID, &e);
        }
        size_t len = strlen(buf);
        if (p->used + len + 1 > sizeof p->buf) return fail(q, HC_ERR_TOO_LARGE, "hc_query_for_entity: ids too long");
        memcpy(p->buf + p->used, buf, len + 1);
        canon[i] = p->buf + p->used;
        /* the query is returned by value: resolve finds it by offset */
        p->param_off[i] = p->used;
        p->param_in_buf |= (unsigned char)(1u << i);
        p->used = (unsigned short)(p->used + len + 1);
    }
    return HC_OK;
}

HC_EXTERN hc_query hc_query_for_entity_n(const hc_entity_def *def, const char *const *ids,
                                         size_t n)
{
    hc_query q;
    init_query(&q);
    if (def == NULL || def->name == NULL || (def->select == NULL && def->table == NULL)) {
        fail(&q, HC_ERR_INVALID, "hc_query_for_entity: entity definition without name, or without table and select");
        return q;
    }
    size_t want = def_nkeys(def) ? def_nkeys(def) : 1;
    if (ids == NULL || n != want) {
        hc_error e;
        hc_error_set(&e, HC_ERR_INVALID, "hc_query_for_entity: entity %s has %zu key column(s), got %zu values",
                     def->name, want, ids ? n : 0);
        record(&q, HC_ERR_INVALID, &e);
        return q;
    }
    const char *canon[HC_PG_MAX_KEY_COLUMNS];
    if (canonical_ids(&q, def, ids, n, canon) != HC_OK) return q;
    if (hc_query_entity_n(&q, def->name, canon, n) != HC_OK) return q;
    if (def->select == NULL && generate_sql(&q, def, n) != HC_OK) return q;
    q.sql = def->select;  /* NULL -> the generated SQL in priv_.buf */
    memcpy(q.priv_.params, canon, n * sizeof *canon);
    q.priv_.nparams = (int)n;
    q.priv_.ttl_ms = def->ttl_ms;
    q.priv_.label = def->label ? def->label : def->name;
    return q;
}

HC_EXTERN hc_query hc_query_for_entity(const hc_entity_def *def, const char *id)
{
    return hc_query_for_entity_n(def, &id, 1);
}

HC_EXTERN hc_query hc_query_for_collection(const hc_entity_def *def, const char *sql)
{
    hc_query q;
    init_query(&q);
    q.sql = sql;
    const char *coll = def ? def_collection(def) : NULL;
    if (coll == NULL) {
        fail(&q, HC_ERR_INVALID, "hc_query_for_collection: entity definition without collection or table");
        return q;
    }
    hc_query_collection(&q, coll);
    q.priv_.ttl_ms = def->ttl_ms;
    return q;
}

/* ------------------------------------------------------------ resolving */


static hc_status push_tag(hc__pgplan *pl, const char *tag, hc_error *err)
{
    if (tag == NULL) return HC_OK;
    if (tag[0] == '\0') return hc_error_set(err, HC_ERR_INVALID, "hc_query: empty tag");
    for (size_t i = 0; i < pl->ntags; i++)
        if (strcmp(pl->tags[i], tag) == 0) return HC_OK;
    if (pl->ntags >= HC_MAX_TAGS)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "hc_query: more than %d tags", HC_MAX_TAGS);
    pl->tags[pl->ntags++] = tag;
    return HC_OK;
}

static hc_status push_tagset(hc__pgplan *pl, const hc_tagset *ts, hc_error *err)
{
    size_t n = ts ? hc_tagset_count(ts) : 0;
    hc_status st = HC_OK;
    for (size_t i = 0; i < n && st == HC_OK; i++) st = push_tag(pl, hc_tagset_get(ts, i), err);
    return st;
}

static hc_status collect_tags(const hc_query *q, hc__pgplan *pl, hc_error *err)
{
    const struct hc_query_priv_ *p = &q->priv_;
    const hc_policy *pol = q->policy;
    hc_status st = HC_OK;
    pl->ntags = 0;
    if (p->key_is_tag) st = push_tag(pl, p->buf + p->key_off, err);
    for (unsigned i = 0; i < p->ntags && st == HC_OK; i++) st = push_tag(pl, p->buf + p->tag_off[i], err);
    if (q->tags.n > 0 && q->tags.v == NULL) return hc_error_set(err, HC_ERR_INVALID, "hc_query: tags.v is NULL");
    for (size_t i = 0; i < q->tags.n && st == HC_OK; i++) st = push_tag(pl, q->tags.v[i], err);
    if (st == HC_OK) st = push_tagset(pl, q->tagset, err);
    for (size_t i = 0; pol != NULL && i < HC_POLICY_MAX_TAGS && pol->tags[i] && st == HC_OK; i++)
        st = push_tag(pl, pol->tags[i], err);
    if (st == HC_OK && pol != NULL) st = push_tagset(pl, pol->tagset, err);
    return st;
}

static hc_status check_params(const hc__pgplan *pl, hc_error *err)
{
    if (pl->nparams < 0 || pl->nparams > 65535)
        return hc_error_set(err, HC_ERR_INVALID, "hc_query: nparams %d out of range", pl->nparams);
    if (pl->nparams > 0 && pl->values == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_query: nparams %d but param_values is NULL", pl->nparams);
    if (pl->result_format != 0 && pl->result_format != 1)
        return hc_error_set(err, HC_ERR_INVALID, "hc_query: result_format must be 0 or 1");
    for (int i = 0; pl->formats != NULL && i < pl->nparams; i++) {
        if (pl->formats[i] != 0 && pl->formats[i] != 1)
            return hc_error_set(err, HC_ERR_INVALID, "hc_query: param %d: format must be 0 or 1", i + 1);
        if (pl->formats[i] == 1 && pl->values[i] != NULL && (pl->lengths == NULL || pl->lengths[i] < 0))
            return hc_error_set(err, HC_ERR_INVALID, "hc_query: binary param %d needs a length", i + 1);
    }
    return HC_OK;
}

static void hash_u64(hc__siphash *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    hc__siphash_update(h, b, sizeof b);
}

/* Fixed key: derived keys must agree across processes and machines. */
static const unsigned char query_hash_key[16] = "hydracache-q-v1";

/* q:<esc(label)>:<hex of SipHash-128 over an unambiguous encoding of the query> */
static hc_status derive_key(hc__pgplan *pl, const char *label, hc_error *err)
{
    hc__siphash h;
    hc__siphash_init(&h, query_hash_key);
    size_t sl = strlen(pl->sql);
    hash_u64(&h, sl);
    hc__siphash_update(&h, pl->sql, sl);
    hash_u64(&h, (uint64_t)pl->result_format);
    hash_u64(&h, (uint64_t)pl->nparams);
    for (int i = 0; i < pl->nparams; i++) {
        const char *v = pl->values[i];
        int fmt = pl->formats ? pl->formats[i] : 0;
        hash_u64(&h, pl->types ? pl->types[i] : 0);
        hash_u64(&h, (uint64_t)fmt);
        if (v == NULL) {
            hash_u64(&h, UINT64_MAX);
            continue;
        }
        size_t vl = fmt == 1 ? (size_t)pl->lengths[i] : strlen(v);
        hash_u64(&h, vl);
        hc__siphash_update(&h, v, vl);
    }
    unsigned char d[16];
    hc__siphash_final128(&h, d);
    static const char digits[] = "0123456789abcdef";
    char hex[33];
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[32] = '\0';
    const char *segs[] = {"q", label, hex};
    pl->key = pl->keybuf;
    return hc_key_build(pl->keybuf, sizeof pl->keybuf, NULL, segs, 3, err);
}

hc_status hc__pgquery_resolve(const hc_query *q, bool need_sql, hc__pgplan *pl, hc_error *err)
{
    if (q == NULL) return hc_error_set(err, HC_ERR_INVALID, "hc_query is NULL");
    const struct hc_query_priv_ *p = &q->priv_;
    if (p->error != HC_OK) return hc_error_set(err, p->error, "%s", p->buf);
    const hc_policy *pol = q->policy;
    pl->sql = q->sql ? q->sql : (p->has_sql ? p->buf + p->sql_off : NULL);
    if (q->nparams == 0 && p->nparams > 0) {
        pl->nparams = p->nparams;
        for (int i = 0; i < p->nparams; i++)
            pl->key_values[i] = p->param_in_buf & 1u << i ? p->buf + p->param_off[i] : p->params[i];
        pl->values = pl->key_values;
        pl->lengths = NULL;
        pl->formats = NULL;
        pl->types = NULL;
    } else {
        pl->nparams = q->nparams;
        pl->values = q->param_values;
        pl->lengths = q->param_lengths;
        pl->formats = q->param_formats;
        pl->types = q->param_types;
    }
    pl->result_format = q->result_format;
    if (need_sql && pl->sql == NULL) return hc_error_set(err, HC_ERR_INVALID, "hc_query: sql is NULL");
    hc_status st = check_params(pl, err);
    if (st != HC_OK) return st;
    st = collect_tags(q, pl, err);
    if (st != HC_OK) return st;
    pl->ttl_ms = q->ttl_ms ? q->ttl_ms : pol && pol->ttl_ms ? pol->ttl_ms : p->ttl_ms;

    pl->key = q->key ? q->key : p->key_is_tag ? p->buf + p->key_off : pol ? pol->key : NULL;
    if (pl->key != NULL) {
        if (pl->key[0] == '\0') return hc_error_set(err, HC_ERR_INVALID, "hc_query: empty key");
        return HC_OK;
    }
    if (pl->sql == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_query: no key (set .key, an entity, a policy key or .sql)");
    const char *label = q->label ? q->label : pol && pol->label ? pol->label : p->label ? p->label : "sql";
    return derive_key(pl, label, err);
}

HC_EXTERN hc_status hc_query_key(const hc_query *q, char *buf, size_t cap, hc_error *err)
{
    hc__pgplan pl;
    if (buf == NULL) return hc_error_set(err, HC_ERR_INVALID, "hc_query_key: NULL buf");
    hc_status st = hc__pgquery_resolve(q, false, &pl, err);
    if (st != HC_OK) return st;
    size_t len = strlen(pl.key);
    if (len >= cap) return hc_error_set(err, HC_ERR_TOO_LARGE, "hc_query_key: key of %zu bytes does not fit", len);
    memcpy(buf, pl.key, len + 1);
    return HC_OK;
}

HC_EXTERN size_t hc_query_tags(const hc_query *q, const char **out, size_t cap)
{
    hc__pgplan pl;
    if (q == NULL || q->priv_.error != HC_OK || collect_tags(q, &pl, NULL) != HC_OK) return 0;
    for (size_t i = 0; i < pl.ntags && i < cap && out != NULL; i++) out[i] = pl.tags[i];
    return pl.ntags;
}
