/* pgrepl.c - logical replication CopyData / pgoutput parsing and the standby status update (pgrepl.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgrepl.h"

typedef struct rd {
    const unsigned char *p;
    size_t n, off;
    bool bad;
} rd;

static bool need(rd *r, size_t k)
{
    if (r->bad || r->n - r->off < k) {
        r->bad = true;
        return false;
    }
    return true;
}

static uint8_t u8(rd *r)
{
    if (!need(r, 1)) return 0;
    return r->p[r->off++];
}

static uint16_t u16(rd *r)
{
    if (!need(r, 2)) return 0;
    uint16_t v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return v;
}

static uint32_t u32(rd *r)
{
    if (!need(r, 4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = (v << 8) | r->p[r->off++];
    return v;
}

static uint64_t u64(rd *r)
{
    if (!need(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | r->p[r->off++];
    return v;
}

/* A NUL-terminated string inside the message. */
static const char *cstr(rd *r)
{
    if (r->bad) return NULL;
    const unsigned char *s = r->p + r->off;
    const unsigned char *z = memchr(s, '\0', r->n - r->off);
    if (z == NULL) {
        r->bad = true;
        return NULL;
    }
    r->off += (size_t)(z - s) + 1;
    return (const char *)s;
}

static void skip(rd *r, size_t k)
{
    if (need(r, k)) r->off += k;
}

static hc_status bad(hc_error *err, const char *what)
{
    return hc_error_set(err, HC_ERR_INVALID, "malformed replication message: %s", what);
}

/* pgoutput's TupleData: int16 columns, each 'n' | 'u' | 't' Int32 len bytes | 'b' ... */
static void tuple(rd *r)
{
    uint16_t ncols = u16(r);
    for (uint32_t i = 0; i < ncols && !r->bad; i++) {
        uint8_t k = u8(r);
        if (k == 't' || k == 'b') skip(r, u32(r));
        else if (k != 'n' && k != 'u') r->bad = true;
    }
}

static hc_status parse_pgoutput(rd *r, hc_repl_msg *m, hc_error *err)
{
    m->tag = (char)u8(r);
    m->kind = HC_REPL_OTHER;
    switch (m->tag) {
    case 'B':
        m->kind = HC_REPL_BEGIN;
        m->lsn = u64(r);
        skip(r, 8); /* commit timestamp */
        m->xid = u32(r);
        break;
    case 'C':
        m->kind = HC_REPL_COMMIT;
        skip(r, 1 + 8); /* flags, commit LSN */
        m->lsn = u64(r);
        skip(r, 8);
        break;
    case 'M': {
        m->kind = HC_REPL_MESSAGE;
        uint8_t flags = u8(r);
        if (flags > 1) r->bad = true;
        m->transactional = flags == 1;
        m->lsn = u64(r);
        m->prefix = cstr(r);
        uint32_t len = u32(r);
        if (!need(r, len)) break;
        m->content = (const char *)r->p + r->off;
        m->content_len = len;
        r->off += len;
        break;
    }
    case 'O': /* Origin: LSN, name */
        skip(r, 8);
        cstr(r);
        break;
    case 'R': { /* Relation: oid, namespace, name, replident, columns */
        skip(r, 4);
        cstr(r);
        cstr(r);
        skip(r, 1);
        uint16_t ncols = u16(r);
        for (uint32_t i = 0; i < ncols && !r->bad; i++) {
            skip(r, 1);
            cstr(r);
            skip(r, 8); /* type oid, typmod */
        }
        break;
    }
    case 'Y': /* Type: oid, namespace, name */
        skip(r, 4);
        cstr(r);
        cstr(r);
        break;
    case 'I': /* Insert: relid, 'N', tuple */
        skip(r, 4);
        if (u8(r) != 'N') r->bad = true;
        tuple(r);
        break;
    case 'U': { /* Update: relid, ['K'|'O' tuple], 'N' tuple */
        skip(r, 4);
        uint8_t k = u8(r);
        if (k == 'K' || k == 'O') {
            tuple(r);
            k = u8(r);
        }
        if (k != 'N') r->bad = true;
        tuple(r);
        break;
    }
    case 'D': { /* Delete: relid, 'K'|'O' tuple */
        skip(r, 4);
        uint8_t k = u8(r);
        if (k != 'K' && k != 'O') r->bad = true;
        tuple(r);
        break;
    }
    case 'T': { /* Truncate: nrels, options, relids */
        uint32_t n = u32(r);
        skip(r, 1);
        if (n > (r->n - r->off) / 4) r->bad = true;
        else skip(r, (size_t)n * 4);
        break;
    }
    default:
        return bad(err, "unknown pgoutput message");
    }
    if (r->bad) return bad(err, "truncated pgoutput message");
    if (r->off != r->n) return bad(err, "trailing bytes after a pgoutput message");
    return HC_OK;
}

hc_status hc__repl_parse(const char *buf, size_t len, hc_repl_msg *out, hc_error *err)
{
    memset(out, 0, sizeof *out);
    if (buf == NULL || len == 0) return bad(err, "empty");
    rd r = {.p = (const unsigned char *)buf, .n = len};
    switch (u8(&r)) {
    case 'k':
        out->kind = HC_REPL_KEEPALIVE;
        out->tag = 'k';
        out->wal_end = u64(&r);
        out->send_time = (int64_t)u64(&r);
        {
            uint8_t rr = u8(&r);
            if (rr > 1) r.bad = true;
            out->reply_requested = rr == 1;
        }
        if (r.bad) return bad(err, "truncated keepalive");
        if (r.off != r.n) return bad(err, "trailing bytes after a keepalive");
        return HC_OK;
    case 'w':
        out->wal_start = u64(&r);
        out->wal_end = u64(&r);
        out->send_time = (int64_t)u64(&r);
        if (r.bad || r.off == r.n) return bad(err, "truncated XLogData");
        return parse_pgoutput(&r, out, err);
    default:
        return bad(err, "unknown CopyData message");
    }
}

static void put64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

void hc__repl_status(char out[HC_REPL_STATUS_LEN], uint64_t written, uint64_t flushed,
                     uint64_t applied, int64_t now_pg_us, bool reply)
{
    out[0] = 'r';
    put64(out + 1, written);
    put64(out + 9, flushed);
    put64(out + 17, applied);
    put64(out + 25, (uint64_t)now_pg_us);
    out[33] = reply ? 1 : 0;
}

int64_t hc__repl_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - INT64_C(946684800)) * 1000000 + ts.tv_nsec / 1000;
}

bool hc__repl_parse_lsn(const char *s, uint64_t *out)
{
    unsigned int hi, lo;
    int used = 0;
    if (s == NULL || sscanf(s, "%X/%X%n", &hi, &lo, &used) != 2 || s[used] != '\0') return false;
    *out = ((uint64_t)hi << 32) | lo;
    return true;
}
