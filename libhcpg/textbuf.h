/*
 * textbuf.h (private) - a growable NUL-terminated text buffer with a sticky
 * failure flag, and the escaping the snapshots need (textbuf.c).
 * Not thread-safe: one buffer per writer.
 */
#ifndef HC_TEXTBUF_H
#define HC_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hydracache/cache.h"

/* Zero-initialise ({0}) to get an empty buffer. */
typedef struct hc__tbuf {
    char *p;
    size_t len, cap;
    bool failed; /* an allocation failed: appends are no-ops from then on */
} hc__tbuf;

void hc__tb_put(hc__tbuf *b, const char *s, size_t n);
void hc__tb_puts(hc__tbuf *b, const char *s);
void hc__tb_printf(hc__tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hc__tb_u64(hc__tbuf *b, uint64_t v);
/* A finite double as %.9g, with '.' whatever the C locale says. */
void hc__tb_double(hc__tbuf *b, double v);
void hc__tb_free(hc__tbuf *b);
/* Hands the text to *out (malloc'd; *len its length when len is not NULL)
 * and empties b; HC_ERR_NOMEM (b freed, *out untouched) after a failure. */
hc_status hc__tb_finish(hc__tbuf *b, char **out, size_t *len, hc_error *err);

typedef enum hc__esc_mode {
    HC__ESC_JSON, /* JSON string body (RFC 8259) */
    HC__ESC_PROM  /* Prometheus label value: only \, " and newline are escaped */
} hc__esc_mode;

/* Appends s escaped for mode; bytes that are not valid UTF-8 become U+FFFD each. */
void hc__tb_escaped(hc__tbuf *b, const char *s, hc__esc_mode mode);

/* JSON: a quoted, escaped string. */
void hc__json_str(hc__tbuf *b, const char *s);
/* JSON: "key": (key is a literal that needs no escaping), preceded by a comma
 * unless *first (which it clears). */
void hc__json_key(hc__tbuf *b, bool *first, const char *key);
/* JSON: v, or null when v is negative or not finite (unknown). */
void hc__json_num_or_null(hc__tbuf *b, double v);

#endif
