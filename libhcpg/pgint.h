/*
 * pgint.h - private: the pieces of pg.c that tests reach directly
 * (the SipHash-2-4-128 behind derived query keys).
 */
#ifndef HC_PGINT_H
#define HC_PGINT_H

#include <stddef.h>
#include <stdint.h>

/* Incremental SipHash-2-4 with 128-bit output (reference test vectors hold). */
typedef struct hc__siphash {
    uint64_t v0, v1, v2, v3;
    uint64_t tail;   /* pending bytes, little-endian */
    unsigned ntail;  /* 0..7 */
    uint64_t len;    /* total bytes */
} hc__siphash;

void hc__siphash_init(hc__siphash *s, const unsigned char key[16]);
void hc__siphash_update(hc__siphash *s, const void *data, size_t len);
void hc__siphash_final128(hc__siphash *s, unsigned char out[16]);

#endif
