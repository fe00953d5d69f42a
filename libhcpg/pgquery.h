/*
 * pgquery.h (private) - an hc_query resolved into what a fetch runs and
 * caches (pgquery.c; pg.c fetches with it).
 */
#ifndef HC_PGQUERY_H
#define HC_PGQUERY_H

#include <stdbool.h>

#include "hydracache/pg.h"

/* Everything a fetch needs, resolved from a query, its policy and helpers. */
typedef struct hc__pgplan {
    const char *sql;
    int nparams;
    const char *const *values;
    const int *lengths;
    const int *formats;
    const Oid *types;
    int result_format;
    const char *key;
    uint64_t ttl_ms;
    size_t ntags;
    const char *tags[HC_MAX_TAGS];
    const char *key_values[HC_PG_MAX_KEY_COLUMNS]; /* an entity def's ids, canonical ones in q */
    char keybuf[HC_MAX_KEY_LEN + 1];
} hc__pgplan;

/*
 * Resolve q (with its policy and helper state) into pl: SQL and parameters,
 * tags (deduplicated), TTL and key (explicit, entity, policy, else derived).
 * need_sql: an SQL text is required (not for caller-supplied loaders).
 * pl points into q, its policy and their strings: use it while they live.
 * HC_ERR_INVALID, HC_ERR_TOO_LARGE, or the error recorded in q.  Pure.
 */
hc_status hc__pgquery_resolve(const hc_query *q, bool need_sql, hc__pgplan *pl, hc_error *err);

#endif
