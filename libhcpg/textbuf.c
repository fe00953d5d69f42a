/*
 * textbuf.c - the growable text buffer the snapshots are written into, and
 * the escaping of names for JSON strings and Prometheus label values.
 *
 * The buffer has a sticky failure flag: every append after an allocation
 * failure is a no-op and hc__tb_finish reports HC_ERR_NOMEM.  No JSON
 * library: the output is a fixed, flat shape that these helpers cover, and a
 * library would be a new dependency for every user of libhcpg.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "textbuf.h"

/* ------------------------------------------------------------ text buffer */

static bool tb_reserve(hc__tbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra < b->cap - b->len)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (extra >= cap - b->len) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = hc__realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void hc__tb_put(hc__tbuf *b, const char *s, size_t n)
{
    if (!tb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hc__tb_puts(hc__tbuf *b, const char *s)
{
    hc__tb_put(b, s, strlen(s));
}

void hc__tb_printf(hc__tbuf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        hc__tb_put(b, small, (size_t)n);
        return;
    }
    if (!tb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void hc__tb_u64(hc__tbuf *b, uint64_t v)
{
    hc__tb_printf(b, "%" PRIu64, v);
}

/* A finite double, locale-independent (printf may use ',' as the decimal point). */
void hc__tb_double(hc__tbuf *b, double v)
{
    char s[64];
    snprintf(s, sizeof s, "%.9g", v);
    for (char *q = s; *q; q++)
        if (*q == ',')
            *q = '.';
    hc__tb_puts(b, s);
}

void hc__tb_free(hc__tbuf *b)
{
    free(b->p);
    b->p = NULL;
}

hc_status hc__tb_finish(hc__tbuf *b, char **out, size_t *len, hc_error *err)
{
    if (!b->failed && b->p == NULL)
        hc__tb_put(b, "", 0);
    if (b->failed) {
        hc__tb_free(b);
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory building a snapshot");
    }
    *out = b->p;
    if (len != NULL)
        *len = b->len;
    b->p = NULL;
    return HC_OK;
}

/* ------------------------------------------------------------ escaping */

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 when it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return need;
}


/* Appends s escaped for mode; invalid UTF-8 bytes become U+FFFD each. */
void hc__tb_escaped(hc__tbuf *b, const char *s, hc__esc_mode mode)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, run = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *rep = NULL;
        char hex[8];
        size_t k = 1;
        if (c == '\\')
            rep = "\\\\";
        else if (c == '"')
            rep = "\\\"";
        else if (c == '\n')
            rep = "\\n";
        else if (mode == HC__ESC_JSON && (c < 0x20 || c == 0x7F)) {
            switch (c) {
            case '\b': rep = "\\b"; break;
            case '\f': rep = "\\f"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            default:
                snprintf(hex, sizeof hex, "\\u%04x", c);
                rep = hex;
            }
        } else if (c >= 0x80) {
            k = utf8_seq_len(p + i, n - i);
            if (k == 0) {
                rep = mode == HC__ESC_JSON ? "\\ufffd" : "\xEF\xBF\xBD";
                k = 1;
            }
        }
        if (rep == NULL) {
            run += k;
        } else {
            hc__tb_put(b, s + i - run, run);
            run = 0;
            hc__tb_puts(b, rep);
        }
        i += k;
    }
    hc__tb_put(b, s + i - run, run);
}

void hc__json_str(hc__tbuf *b, const char *s)
{
    hc__tb_puts(b, "\"");
    hc__tb_escaped(b, s, HC__ESC_JSON);
    hc__tb_puts(b, "\"");
}

/* "key": (the key is a literal, never needs escaping); a comma before all but the first. */
void hc__json_key(hc__tbuf *b, bool *first, const char *key)
{
    hc__tb_printf(b, "%s\"%s\":", *first ? "" : ",", key);
    *first = false;
}

void hc__json_num_or_null(hc__tbuf *b, double v)
{
    if (v < 0 || !isfinite(v))
        hc__tb_puts(b, "null");
    else
        hc__tb_double(b, v);
}
