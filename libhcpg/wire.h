/*
 * wire.h (private) - wire format v1 of invalidation payloads (docs/PROTOCOL.md):
 * a strict parser and a splitting encoder.
 *
 *   hc1 SP <origin> SP <op> [SP <arg>]*      at most 7999 bytes
 *
 * Payloads are untrusted input (anyone who can connect can NOTIFY), so the
 * parser takes a length, never reads past it, accepts any bytes and rejects
 * every form the protocol calls malformed.  All functions are pure and
 * thread-safe.
 */
#ifndef HC_WIRE_H
#define HC_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "hydracache/cache.h"

#define HC_WIRE_MAX_PAYLOAD 7999 /* bytes; PostgreSQL's NOTIFY limit is < 8000 */
/* What a listener accepts: the server counts the limit in its encoding, and a
 * client_encoding conversion can make a character up to 4x longer. */
#define HC_WIRE_MAX_RECEIVE 32000
#define HC_WIRE_ORIGIN_MAX 64
#define HC_WIRE_DB_ORIGIN "db"   /* reserved for the extension */

typedef enum hc_wire_op {
    HC_WIRE_TAGS = 't',  /* at least one arg */
    HC_WIRE_KEYS = 'k',  /* at least one arg */
    HC_WIRE_FLUSH = 'f', /* no args */
    HC_WIRE_SYNC = 's'   /* exactly one arg: a token */
} hc_wire_op;

/*
 * A parsed message.  Owns its storage: args[i] points at a NUL-terminated
 * decoded arg of arg_len[i] bytes (an arg may decode to bytes that include
 * NUL, hence the lengths).  Release with hc_wire_msg_clear.
 */
typedef struct hc_wire_msg {
    char origin[HC_WIRE_ORIGIN_MAX + 1];
    hc_wire_op op;
    size_t nargs;
    char **args;
    size_t *arg_len;
    void *storage_; /* one block holding args, arg_len and the decoded bytes */
} hc_wire_msg;

/*
 * Parse payload[0..len) (need not be NUL-terminated; any bytes).  On HC_OK
 * *out owns the message.  Malformed input (docs/PROTOCOL.md) -> HC_ERR_INVALID,
 * longer than HC_WIRE_MAX_RECEIVE -> HC_ERR_TOO_LARGE, allocation failure ->
 * HC_ERR_NOMEM; on error *out is left empty (clearing it is harmless).
 */
hc_status hc_wire_parse(const char *payload, size_t len, hc_wire_msg *out, hc_error *err);
void hc_wire_msg_clear(hc_wire_msg *m); /* NULL-safe, idempotent */

/* 1..64 bytes of [A-Za-z0-9._-]. */
bool hc__wire_origin_valid(const char *origin, size_t len);

/*
 * Escaped length of an arg (the bytes %, space, 0x00-0x1F and 0x7F take three
 * bytes each), and the escaping itself into dst (which needs that many bytes;
 * no NUL is written).  Returns the number of bytes written.
 */
size_t hc__wire_escaped_len(const char *arg, size_t len);
size_t hc__wire_escape(char *dst, const char *arg, size_t len);

/* Receives each encoded payload (NUL-terminated, len <= HC_WIRE_MAX_PAYLOAD,
 * valid until the callback returns).  A non-HC_OK return stops encoding and is
 * returned by hc_wire_encode. */
typedef hc_status (*hc_wire_emit_fn)(void *ctx, const char *payload, size_t len);

/*
 * Encode op with args (C strings) from origin into as few payloads as
 * possible, each at most HC_WIRE_MAX_PAYLOAD bytes with the full header, args
 * kept in order and never split.  HC_ERR_INVALID: bad origin/op, wrong arg
 * count for op, NULL or empty arg.  HC_ERR_TOO_LARGE: one arg does not fit in
 * a payload on its own (nothing is emitted then: the caller must fall back to
 * a coarser invalidation, never truncate).
 */
hc_status hc_wire_encode(const char *origin, hc_wire_op op, const char *const *args, size_t nargs,
                         hc_wire_emit_fn emit, void *ctx, hc_error *err);

#endif
