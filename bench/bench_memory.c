/*
 * bench_memory.c - scenario "memory": what one cached 1-row result costs,
 * against its payload (the sum of the row's cell bytes as libpq returns
 * them), at 100k entries filled through hc_pg_fetch_one entity queries.  Two
 * measures: the cache's own accounting (hc_cache_diagnostics bytes_used) and
 * the process's resident set growth (/proc/self/statm), for a narrow row and
 * a wider one.  The bookkeeping (bytes_used beyond key and cell bytes) is
 * split by what holds it, from the store's own walk of its entries
 * (hc__cache_bytes_split): entry header, slot tables, tags, value header and
 * the codec's metadata (encoded value beyond the cells), less the key bytes
 * the store keeps once (interned key prefixes, "bench_user:").
 */
#include "config.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cache_int.h"
#include "common.h"
#include "hydracache/cache.h"
#include "hydracache/pg.h"

/* libhcpg's private pgshape.h: bytes of result shapes stored once per process */
void hc__pgshape_usage(size_t *shapes, size_t *bytes);

typedef struct shape {
    const char *name;
    const char *table;
    size_t bio_len;
    double payload, bytes_used, rss; /* per entry */
    double value_len, key_len;       /* per entry: encoded PGresult, cache key */
    size_t shape_bytes;              /* the adapter's shape dictionary (whole process), not per entry */
    size_t entries;
    /* bookkeeping per entry: bytes_used - key - payload, and its parts */
    double bookkeeping, entry_header, slots, tags, value_header, codec_meta;
    double key_prefixes; /* key bytes held once per store (interned prefixes), not per entry */
} shape;

#define BOOKKEEPING_TARGET 64.0

/* The entity query of one id; idbuf must outlive q. */
static void make_query(hc_query *q, const char *sql, size_t id, char *idbuf, size_t cap,
                       const char **vals)
{
    snprintf(idbuf, cap, "%zu", id);
    vals[0] = idbuf;
    *q = (hc_query){.sql = sql, .nparams = 1, .param_values = vals};
    hc_query_entity(q, "bench_user", idbuf);
}

static PGresult *fetch(hc_cache *c, PGconn *conn, const char *sql, size_t id, hc_error *err)
{
    char idbuf[24];
    const char *vals[1];
    hc_query q;
    make_query(&q, sql, id, idbuf, sizeof idbuf, vals);
    return hc_pg_fetch_one(c, conn, &q, err);
}

/* Mean encoded value and key length of a sample of the cached entries. */
static void entry_sizes(hc_cache *c, const char *sql, size_t n, double *value_len, double *key_len)
{
    size_t step = n > 1000 ? n / 1000 : 1, count = 0;
    double v = 0, k = 0;
    for (size_t id = 1; id <= n; id += step) {
        char idbuf[24], key[HC_MAX_KEY_LEN + 1];
        const char *vals[1];
        hc_query q;
        make_query(&q, sql, id, idbuf, sizeof idbuf, vals);
        hc_value *val = NULL;
        if (hc_query_key(&q, key, sizeof key, NULL) != HC_OK || hc_get(c, key, &val, NULL) != HC_OK)
            bench_die("entry %zu is not cached", id);
        v += (double)hc_value_len(val);
        k += (double)strlen(key);
        hc_value_release(val);
        count++;
    }
    *value_len = v / (double)count;
    *key_len = k / (double)count;
}

static void measure(shape *s, PGconn *conn, size_t n)
{
    char sql[256];
    bench_users_sql(s->table, sql, sizeof sql);
    if (!bench_users_table(conn, s->table, n, s->bio_len)) bench_die("cannot create %s", s->table);
    hc_error err;
    hc_config cfg = {.name = s->name, .max_bytes = (size_t)2 << 30};
    hc_cache *c = hc_cache_new(&cfg, &err);
    if (c == NULL) bench_die("hc_cache_new: %s", err.message);

    /* Warm libpq's buffers and malloc's arenas on a scratch cache first. */
    hc_cache *scratch = hc_cache_new(&cfg, &err);
    if (scratch == NULL) bench_die("hc_cache_new: %s", err.message);
    for (size_t id = 1; id <= 100 && id <= n; id++) PQclear(fetch(scratch, conn, sql, id, &err));
    hc_cache_free(scratch);
    malloc_trim(0);

    hc_diagnostics d0, d1;
    hc_cache_diagnostics(c, &d0);
    size_t rss0 = bench_rss_bytes();
    double payload = 0;
    for (size_t id = 1; id <= n; id++) {
        PGresult *r = fetch(c, conn, sql, id, &err);
        if (r == NULL) bench_die("hc_pg_fetch_one: %s", err.message);
        for (int col = 0; col < PQnfields(r); col++) payload += PQgetlength(r, 0, col);
        PQclear(r);
    }
    malloc_trim(0);
    size_t rss1 = bench_rss_bytes();
    hc_cache_diagnostics(c, &d1);
    s->entries = d1.entries - d0.entries;
    if (s->entries != n)
        bench_die("%s: %zu of %zu entries cached (bytes limit %zu)", s->name, s->entries, n,
                  d1.bytes_limit);
    s->payload = payload / (double)n;
    s->bytes_used = (double)(d1.bytes_used - d0.bytes_used) / (double)n;
    s->rss = ((double)rss1 - (double)rss0) / (double)n;
    entry_sizes(c, sql, n, &s->value_len, &s->key_len);
    hc__pgshape_usage(NULL, &s->shape_bytes);
    hc_store_bytes b;
    hc__cache_bytes_split(c, &b);
    if (b.entries != n) bench_die("%s: split saw %zu of %zu entries", s->name, b.entries, n);
    double per = (double)b.entries;
    s->bookkeeping = s->bytes_used - (double)b.key / per - s->payload;
    s->entry_header = (double)b.entry_header / per;
    s->slots = (double)b.tables / per;
    s->tags = (double)(b.tag_links + b.tag_shared) / per;
    s->value_header = (double)b.value_header / per;
    s->codec_meta = (double)b.value_data / per - s->payload;
    s->key_prefixes = (double)b.key_prefixes / per;
    printf("memory %s: bookkeeping %.1f B/entry = entry header %.1f + slots %.1f + tags %.1f + "
           "value header %.1f + codec metadata %.1f - key prefixes stored once %.1f\n",
           s->name, s->bookkeeping, s->entry_header, s->slots, s->tags, s->value_header,
           s->codec_meta, s->key_prefixes);
    printf("memory %s: payload %.1f B/row, bytes_used %.1f B/entry (%.2fx), RSS %.1f B/entry "
           "(%.2fx); encoded value %.1f B, key %.1f B\n",
           s->name, s->payload, s->bytes_used, s->bytes_used / s->payload, s->rss,
           s->rss / s->payload, s->value_len, s->key_len);
    hc_cache_free(c);
    malloc_trim(0);
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (!bench_parse_args(argc, argv, &o, "memory per cached 1-row result vs payload"))
        return 2;
    const size_t n = o.quick ? 5000 : 100000;
    PGconn *conn = bench_connect_env("HC_TEST_DSN", NULL);

    shape shapes[2] = {{.name = "narrow", .table = "bench_users", .bio_len = 0},
                       {.name = "wide", .table = "bench_users_wide", .bio_len = 200}};
    for (int i = 0; i < 2; i++) measure(&shapes[i], conn, n);

    bench_json j;
    if (!bench_json_start(&j, &o, "memory",
                          "bytes per cached 1-row result (entity query via hc_pg_fetch_one) vs "
                          "payload bytes (sum of the row's cell lengths, text format)"))
        return 1;
    bench_json_obj(&j, "parameters");
    bench_json_int(&j, "entries", (long long)n);
    bench_json_str(&j, "query", "SELECT * FROM <table> WHERE id = $1, entity key/tag bench_user:<id>"
                                " + table-wide tag bench_user:*");
    bench_json_str(&j, "narrow_row", "id int, name text, email text, score int");
    bench_json_str(&j, "wide_row", "narrow + bio text of 200 bytes");
    bench_json_str(&j, "cache", "default shards, max_bytes 2 GiB");
    bench_json_end(&j);
    bench_json_obj(&j, "results");
    for (int i = 0; i < 2; i++) {
        bench_json_obj(&j, shapes[i].name);
        bench_json_num(&j, "payload_bytes_per_row", shapes[i].payload);
        bench_json_num(&j, "bytes_used_per_entry", shapes[i].bytes_used);
        bench_json_num(&j, "rss_bytes_per_entry", shapes[i].rss);
        bench_json_num(&j, "encoded_value_bytes_per_entry", shapes[i].value_len);
        bench_json_num(&j, "key_bytes_per_entry", shapes[i].key_len);
        bench_json_int(&j, "shape_dictionary_bytes_total", (long long)shapes[i].shape_bytes);
        bench_json_num(&j, "other_bytes_used_per_entry",
                       shapes[i].bytes_used - shapes[i].value_len - shapes[i].key_len);
        bench_json_num(&j, "bytes_used_over_payload", shapes[i].bytes_used / shapes[i].payload);
        bench_json_num(&j, "rss_over_payload", shapes[i].rss / shapes[i].payload);
        bench_json_obj(&j, "bookkeeping_bytes_per_entry");
        bench_json_num(&j, "total", shapes[i].bookkeeping);
        bench_json_num(&j, "entry_header", shapes[i].entry_header);
        bench_json_num(&j, "slot_tables", shapes[i].slots);
        bench_json_num(&j, "tags", shapes[i].tags);
        bench_json_num(&j, "value_header", shapes[i].value_header);
        bench_json_num(&j, "codec_metadata", shapes[i].codec_meta);
        bench_json_num(&j, "minus_key_prefixes_stored_once", shapes[i].key_prefixes);
        bench_json_end(&j);
        bench_json_end(&j);
    }
    bench_json_end(&j);
    const double limit_over_payload[2] = {3.0, 1.5};
    bool met = true;
    for (int i = 0; i < 2; i++)
        met = met && shapes[i].bytes_used / shapes[i].payload <= limit_over_payload[i] &&
              shapes[i].bookkeeping <= BOOKKEEPING_TARGET;
    bench_json_obj(&j, "ratio");
    bench_json_num(&j, "narrow_bytes_used_over_payload", shapes[0].bytes_used / shapes[0].payload);
    bench_json_num(&j, "narrow_rss_over_payload", shapes[0].rss / shapes[0].payload);
    bench_json_num(&j, "wide_bytes_used_over_payload", shapes[1].bytes_used / shapes[1].payload);
    bench_json_num(&j, "wide_rss_over_payload", shapes[1].rss / shapes[1].payload);
    bench_json_num(&j, "narrow_bookkeeping_bytes", shapes[0].bookkeeping);
    bench_json_num(&j, "wide_bookkeeping_bytes", shapes[1].bookkeeping);
    bench_json_num(&j, "target_narrow_bytes_used_over_payload", limit_over_payload[0]);
    bench_json_num(&j, "target_wide_bytes_used_over_payload", limit_over_payload[1]);
    bench_json_num(&j, "target_bookkeeping_bytes", BOOKKEEPING_TARGET);
    bench_json_bool(&j, "meets_target", met);
    bench_json_end(&j);
    if (!bench_json_close(&j)) bench_die("cannot write memory.json");

    FILE *md = bench_md_open(&o, "memory");
    for (int i = 0; i < 2; i++) {
        const shape *sh = &shapes[i];
        char what[96], ratio[96], target[64];
        double r = sh->bytes_used / sh->payload;
        snprintf(what, sizeof what, "memory per cached row, %s row (%.0f B payload)", sh->name,
                 sh->payload);
        snprintf(ratio, sizeof ratio, "%.2fx (bytes_used), %.2fx (RSS); bookkeeping %.0f B", r,
                 sh->rss / sh->payload, sh->bookkeeping);
        snprintf(target, sizeof target, "<= %.1fx, bookkeeping <= %.0f B", limit_over_payload[i],
                 BOOKKEEPING_TARGET);
        bench_md_row(md, what, ratio, target,
                     r <= limit_over_payload[i] && sh->bookkeeping <= BOOKKEEPING_TARGET,
                     "bytes_used %.0f B/entry, RSS %.0f B/entry; key %.0f B; bookkeeping %.0f B = "
                     "entry header %.0f + slots %.0f + tags %.0f + value header %.0f + codec "
                     "metadata %.0f - key prefix stored once %.0f",
                     sh->bytes_used, sh->rss, sh->key_len, sh->bookkeeping, sh->entry_header,
                     sh->slots, sh->tags, sh->value_header, sh->codec_meta, sh->key_prefixes);
    }
    fclose(md);
    PQfinish(conn);
    return 0;
}
