/*
 * hydracache.h: what the modules of the hydracache extension share: the escaping rules of
 * docs/PROTOCOL.md, the per-transaction invalidation set, and the GUC variables.
 */
#ifndef HYDRACACHE_H
#define HYDRACACHE_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* NOTIFY refuses payloads of 8000 bytes or more (NOTIFY_PAYLOAD_MAX_LENGTH). */
#define HC_MAX_PAYLOAD 7999
/* Every tag message starts "hc1 db t"; an arg is preceded by one space. */
#define HC_TAG_HEADER "hc1 db t"
#define HC_FLUSH_MESSAGE "hc1 db f"
#define HC_MAX_ARG (HC_MAX_PAYLOAD - (int) sizeof(HC_TAG_HEADER))

/* Longest entity or collection name watch() accepts, so that a table-wide tag always fits. */
#define HC_MAX_NAME 1024

/* GUCs (hydracache.c) */
extern char *hc_channel;
extern int	hc_bulk_threshold;
extern int	hc_xact_bulk_threshold;
extern bool hc_enabled;

/* escape.c: key segments (\ : * escaped, NULL -> \N) and wire args (% SP controls -> %XX) */
extern void hc_append_segment(StringInfo buf, const char *seg);
extern void hc_append_wire(StringInfo buf, const char *s, int len);

/* pending.c: the transaction's deduplicated invalidation set, sent at pre-commit */
extern void hc_pending_init(void);
extern bool hc_pending_add(const char *arg, int len, Oid count_rel);
extern bool hc_pending_contains(const char *arg);
extern int64 hc_pending_rel_count(Oid relid);
extern void hc_pending_flush(void);
extern List *hc_pending_messages(void);

#endif							/* HYDRACACHE_H */
