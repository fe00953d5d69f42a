/* wire.c - wire format v1 (docs/PROTOCOL.md): strict payload parser and splitting encoder. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "wire.h"

#define HDR_VERSION "hc1"

/* What the parser accepts (HC_WIRE_MAX_RECEIVE, transport.h).  HC_WIRE_MAX_PAYLOAD
 * (7999) bounds what is *encoded*, in the sender's encoding; the server
 * re-encodes a payload into each listener's client_encoding, where it can grow
 * (LATIN1 -> UTF8 doubles high bytes; no conversion makes a character more
 * than 4 times longer).
 * Refusing such a payload would drop a genuine invalidation, so the receive
 * limit is 4 x 8000 bytes. */

static bool must_escape(unsigned char b)
{
    return b == '%' || b == ' ' || b < 0x20 || b == 0x7f;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static bool origin_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool hc__wire_origin_valid(const char *origin, size_t len)
{
    if (origin == NULL || len == 0 || len > HC_WIRE_ORIGIN_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if (!origin_byte((unsigned char)origin[i])) return false;
    return true;
}

size_t hc__wire_escaped_len(const char *arg, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++)
        if (must_escape((unsigned char)arg[i])) n += 2;
    return n;
}

size_t hc__wire_escape(char *dst, const char *arg, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)arg[i];
        if (must_escape(b)) {
            dst[n++] = '%';
            dst[n++] = hex[b >> 4];
            dst[n++] = hex[b & 15];
        } else {
            dst[n++] = (char)b;
        }
    }
    return n;
}

HC_EXTERN void hc_wire_msg_clear(hc_wire_msg *m)
{
    if (m == NULL) return;
    free(m->storage_);
    memset(m, 0, sizeof *m);
}

static hc_status malformed(hc_error *err, const char *why)
{
    return hc_error_set(err, HC_ERR_INVALID, "malformed payload: %s", why);
}

static bool op_known(unsigned char c)
{
    return c == HC_WIRE_TAGS || c == HC_WIRE_KEYS || c == HC_WIRE_FLUSH || c == HC_WIRE_SYNC;
}

HC_EXTERN hc_status hc_wire_parse(const char *payload, size_t len, hc_wire_msg *out,
                                  hc_error *err)
{
    if (out == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL message");
    memset(out, 0, sizeof *out);
    if (payload == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL payload");
    if (len > HC_WIRE_MAX_RECEIVE)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "payload of %zu bytes exceeds %d", len,
                            HC_WIRE_MAX_RECEIVE);

    const unsigned char *p = (const unsigned char *)payload;
    const unsigned char *end = p + len;

    /* "hc1 " */
    if (len < 4 || memcmp(p, HDR_VERSION " ", 4) != 0) {
        if (len >= 2 && p[0] == 'h' && p[1] == 'c')
            return malformed(err, "unknown version");
        return malformed(err, "not an hc payload");
    }
    p += 4;

    /* origin, up to the next space */
    const unsigned char *o = p;
    while (p < end && *p != ' ') p++;
    size_t olen = (size_t)(p - o);
    if (!hc__wire_origin_valid((const char *)o, olen)) return malformed(err, "bad origin");
    if (p == end) return malformed(err, "missing op");
    p++; /* the space */

    /* op: one byte, then end or a space */
    if (p == end || !op_known(*p)) return malformed(err, "unknown op");
    hc_wire_op op = (hc_wire_op)*p++;
    if (p < end && *p != ' ') return malformed(err, "unknown op");

    /* Count args: every remaining space starts one (args are never empty, so
     * "x  y", a trailing space and an empty arg are all caught below). */
    size_t nargs = 0;
    for (const unsigned char *q = p; q < end; q++)
        if (*q == ' ') nargs++;

    switch (op) {
    case HC_WIRE_TAGS:
    case HC_WIRE_KEYS:
        if (nargs == 0) return malformed(err, "op needs at least one arg");
        break;
    case HC_WIRE_FLUSH:
        if (nargs != 0) return malformed(err, "flush takes no args");
        break;
    case HC_WIRE_SYNC:
        if (nargs != 1) return malformed(err, "sync takes exactly one arg");
        break;
    }

    /* One block: arg pointers, lengths, then the decoded bytes (never longer
     * than the encoded ones) each followed by a NUL. */
    size_t data_cap = (size_t)(end - p) + 1;
    size_t ptrs = nargs * sizeof(char *);
    size_t lens = nargs * sizeof(size_t);
    char *block = hc__malloc(ptrs + lens + data_cap + 1);
    if (block == NULL) return hc_error_set(err, HC_ERR_NOMEM, "out of memory parsing payload");
    char **args = (char **)(void *)block;
    size_t *arg_len = (size_t *)(void *)(block + ptrs);
    char *data = block + ptrs + lens;
    size_t dn = 0;

    for (size_t i = 0; i < nargs; i++) {
        p++; /* the separating space */
        const unsigned char *a = p;
        args[i] = data + dn;
        size_t start = dn;
        while (p < end && *p != ' ') {
            unsigned char b = *p;
            if (b == '%') {
                int hi = (end - p > 2) ? hexval(p[1]) : -1;
                int lo = (end - p > 2) ? hexval(p[2]) : -1;
                if (hi < 0 || lo < 0) {
                    free(block);
                    return malformed(err, "bad % escape");
                }
                data[dn++] = (char)(hi << 4 | lo);
                p += 3;
            } else if (b < 0x20 || b == 0x7f) {
                free(block);
                return malformed(err, "unescaped control byte");
            } else {
                data[dn++] = (char)b;
                p++;
            }
        }
        if (p == a) {
            free(block);
            return malformed(err, "empty arg");
        }
        arg_len[i] = dn - start;
        data[dn++] = '\0';
    }

    memcpy(out->origin, o, olen);
    out->origin[olen] = '\0';
    out->op = op;
    out->nargs = nargs;
    out->args = nargs ? args : NULL;
    out->arg_len = nargs ? arg_len : NULL;
    out->storage_ = block;
    return HC_OK;
}

/* ------------------------------------------------------------------ encoder */

static bool op_arity_ok(hc_wire_op op, size_t nargs)
{
    switch (op) {
    case HC_WIRE_TAGS:
    case HC_WIRE_KEYS: return nargs >= 1;
    case HC_WIRE_FLUSH: return nargs == 0;
    case HC_WIRE_SYNC: return nargs == 1;
    }
    return false;
}

HC_EXTERN hc_status hc_wire_encode(const char *origin, hc_wire_op op, const char *const *args,
                                   size_t nargs, hc_wire_emit_fn emit, void *ctx, hc_error *err)
{
    if (emit == NULL) return hc_error_set(err, HC_ERR_INVALID, "NULL emit callback");
    size_t olen = origin ? strlen(origin) : 0;
    if (!hc__wire_origin_valid(origin, olen))
        return hc_error_set(err, HC_ERR_INVALID, "origin must be 1-%d bytes of [A-Za-z0-9._-]",
                            HC_WIRE_ORIGIN_MAX);
    if (!op_known((unsigned char)op)) return hc_error_set(err, HC_ERR_INVALID, "unknown op");
    if (!op_arity_ok(op, nargs) || (nargs > 0 && args == NULL))
        return hc_error_set(err, HC_ERR_INVALID, "wrong number of args for op '%c'", (char)op);

    char buf[HC_WIRE_MAX_PAYLOAD + 1];
    /* header: "hc1 " origin " " op */
    size_t hlen = 4 + olen + 2;

    /* Validate everything first so that an error emits nothing. */
    for (size_t i = 0; i < nargs; i++) {
        if (args[i] == NULL || args[i][0] == '\0')
            return hc_error_set(err, HC_ERR_INVALID, "arg %zu is NULL or empty", i);
        size_t el = hc__wire_escaped_len(args[i], strlen(args[i]));
        if (el > HC_WIRE_MAX_PAYLOAD - hlen - 1)
            return hc_error_set(err, HC_ERR_TOO_LARGE,
                                "arg %zu (%zu bytes escaped) does not fit in one payload", i, el);
    }

    memcpy(buf, HDR_VERSION " ", 4);
    memcpy(buf + 4, origin, olen);
    buf[4 + olen] = ' ';
    buf[5 + olen] = (char)op;

    size_t n = hlen;
    size_t in_msg = 0;
    for (size_t i = 0; i < nargs; i++) {
        size_t alen = strlen(args[i]);
        size_t el = hc__wire_escaped_len(args[i], alen);
        if (in_msg > 0 && n + 1 + el > HC_WIRE_MAX_PAYLOAD) {
            buf[n] = '\0';
            hc_status st = emit(ctx, buf, n);
            if (st != HC_OK) return hc_error_set(err, st, "emit callback failed");
            n = hlen;
            in_msg = 0;
        }
        buf[n++] = ' ';
        n += hc__wire_escape(buf + n, args[i], alen);
        in_msg++;
    }
    buf[n] = '\0';
    hc_status st = emit(ctx, buf, n);
    if (st != HC_OK) return hc_error_set(err, st, "emit callback failed");
    return HC_OK;
}
