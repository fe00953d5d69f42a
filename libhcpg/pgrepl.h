/*
 * pgrepl.h (private) - the logical replication stream, without libpq: the
 * CopyData messages of a walsender (XLogData 'w', primary keepalive 'k'),
 * the pgoutput (proto_version 1) messages inside XLogData, and the standby
 * status update ('r') the client sends back.  Formats: PostgreSQL
 * "Streaming Replication Protocol" and "Logical Replication Message Formats".
 *
 * The input is untrusted bytes from the network: the parser takes a length,
 * never reads past it, never allocates, and rejects truncated or unknown
 * messages with HC_ERR_INVALID.  Pure functions, thread-safe.
 */
#ifndef HC_PGREPL_H
#define HC_PGREPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

typedef enum hc_repl_kind {
    HC_REPL_KEEPALIVE = 'k', /* wal_end, send_time, reply_requested */
    HC_REPL_BEGIN = 'B',     /* lsn = final (commit) LSN, xid */
    HC_REPL_COMMIT = 'C',    /* lsn = end LSN of the commit record */
    HC_REPL_MESSAGE = 'M',   /* lsn, transactional, prefix, content */
    HC_REPL_OTHER = '?'      /* a well-formed pgoutput message this client ignores
                                (Relation, Type, Origin, Insert, Update, Delete,
                                Truncate); lsn = 0 */
} hc_repl_kind;

typedef struct hc_repl_msg {
    hc_repl_kind kind;
    char tag;              /* the pgoutput message byte ('B', 'I', ...), 'k' for keepalive */
    uint64_t wal_start;    /* XLogData dataStart (0 for keepalive) */
    uint64_t wal_end;      /* XLogData walEnd / keepalive walEnd */
    int64_t send_time;     /* server clock, microseconds since 2000-01-01 */
    bool reply_requested;  /* keepalive only */
    uint64_t lsn;
    uint32_t xid;          /* BEGIN only */
    bool transactional;    /* MESSAGE only */
    const char *prefix;    /* MESSAGE: NUL-terminated, points into the input */
    const char *content;   /* MESSAGE: content_len bytes, points into the input */
    size_t content_len;
} hc_repl_msg;

/*
 * Parse one CopyData message of a logical replication stream (buf[0..len)).
 * HC_OK and *out filled (its pointers into buf), HC_ERR_INVALID for anything
 * truncated, overlong, or unknown (the stream cannot be trusted after that).
 */
hc_status hc__repl_parse(const char *buf, size_t len, hc_repl_msg *out, hc_error *err);

#define HC_REPL_STATUS_LEN 34
/* Encode a standby status update ('r'): write/flush/apply positions, the
 * client clock in microseconds since 2000-01-01, reply requested flag. */
void hc__repl_status(char out[HC_REPL_STATUS_LEN], uint64_t written, uint64_t flushed,
                     uint64_t applied, int64_t now_pg_us, bool reply);

/* Microseconds since 2000-01-01 (the PostgreSQL epoch) on the realtime clock. */
int64_t hc__repl_now_us(void);

/* Parse a pg_lsn text ("16/B374D848"): true and *out on success. */
bool hc__repl_parse_lsn(const char *s, uint64_t *out);

#endif
