/*
 * hash.h (private) - the one byte-string hash libhcpg uses for shards,
 * buckets, tag generations and single-flight slots (hc__hash), and the
 * keyed SipHash the libpq adapter derives query keys with (below).
 *
 * Keyed by a random seed drawn once per process (hc__os_random), so it is stable within a process and differs between
 * processes: never send, store or compare it across processes (nothing
 * does: shards, buckets, ghosts, tag/key generations and flight slots all
 * live in one process's memory).  Thread-safe.
 */
#ifndef HC_HASH_H
#define HC_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hc__hash(const void *data, size_t len);

/*
 * Incremental SipHash-2-4 with 128-bit output (the reference test vectors
 * hold, tests/unit/check_pgquery.c), keyed by the caller's 16 bytes: the same
 * input and key give the same digest in every process and on every platform,
 * so it may be stored and sent (the adapter's derived query keys).  One state
 * per thread; the functions themselves keep no state.
 */
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
