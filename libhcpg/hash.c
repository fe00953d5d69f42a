/*
 * hash.c - a fast 64-bit hash of byte strings (8 bytes per round, strong
 * final mix), keyed by a per-process random seed so that keys chosen by an
 * outsider (ids in keys and tags) cannot be made to pile into one chain;
 * and SipHash-2-4-128 with a caller-chosen key, for hashes that must be the
 * same in every process (the libpq adapter's derived query keys).
 */
#include "config.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "osrandom.h"

static inline uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser: full avalanche, so low bits are good bucket/shard indexes */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static pthread_once_t seed_once = PTHREAD_ONCE_INIT;
static uint64_t seed; /* written once under seed_once, read-only afterwards */

static void init_seed(void)
{
    uint64_t s = 0;
    if (hc__os_random(&s, sizeof s) != 0) {
        /* no entropy source (early boot, sandbox): still differs per process
         * and run through the clock, the pid and address-space layout */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30)) ^
            mix64((uint64_t)getpid()) ^ mix64((uint64_t)(uintptr_t)&s);
    }
    seed = s;
}

uint64_t hc__hash(const void *data, size_t len)
{
    pthread_once(&seed_once, init_seed);
    const uint64_t k = seed;
    const unsigned char *p = data;
    uint64_t h = (0x9e3779b97f4a7c15ULL ^ k) ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        /* the seed enters every block, so colliding blocks cannot be chosen offline */
        h = (h ^ mix64(w ^ k)) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    /* the last 0-7 bytes without a byte loop: two overlapping 4-byte loads,
     * or three single bytes; with len mixed in below, distinct tails of one
     * length still give distinct words */
    uint64_t w = 0;
    if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        w = lo | ((uint64_t)hi << 32);
    } else if (len > 0) {
        w = p[0] | ((uint64_t)p[len / 2] << 8) | ((uint64_t)p[len - 1] << 16);
    }
    h ^= mix64((w ^ k) ^ ((uint64_t)len << 56));
    return mix64(h);
}

/* ------------------------------------------------------------ SipHash-2-4-128
 *
 * Keyed by the caller, not by the process seed: derived query keys must agree
 * across processes and machines. */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(hc__siphash *s)
{
    s->v0 += s->v1; s->v1 = ROTL(s->v1, 13); s->v1 ^= s->v0; s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3; s->v3 = ROTL(s->v3, 16); s->v3 ^= s->v2;
    s->v0 += s->v3; s->v3 = ROTL(s->v3, 21); s->v3 ^= s->v0;
    s->v2 += s->v1; s->v1 = ROTL(s->v1, 17); s->v1 ^= s->v2; s->v2 = ROTL(s->v2, 32);
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void sip_block(hc__siphash *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

void hc__siphash_init(hc__siphash *s, const unsigned char key[16])
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    s->v0 = k0 ^ 0x736f6d6570736575ULL;
    s->v1 = k1 ^ 0x646f72616e646f6dULL ^ 0xee; /* 0xee: 128-bit output variant */
    s->v2 = k0 ^ 0x6c7967656e657261ULL;
    s->v3 = k1 ^ 0x7465646279746573ULL;
    s->tail = 0;
    s->ntail = 0;
    s->len = 0;
}

void hc__siphash_update(hc__siphash *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->len += len;
    while (len > 0 && s->ntail != 0) {
        s->tail |= (uint64_t)*p++ << (8 * s->ntail);
        len--;
        if (++s->ntail == 8) {
            sip_block(s, s->tail);
            s->tail = 0;
            s->ntail = 0;
        }
    }
    for (; len >= 8; p += 8, len -= 8) sip_block(s, le64(p));
    for (; len > 0; len--) s->tail |= (uint64_t)*p++ << (8 * s->ntail++);
}

void hc__siphash_final128(hc__siphash *s, unsigned char out[16])
{
    sip_block(s, s->tail | s->len << 56);
    s->v2 ^= 0xee;
    for (int i = 0; i < 4; i++) sip_round(s);
    uint64_t h0 = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
    s->v1 ^= 0xdd;
    for (int i = 0; i < 4; i++) sip_round(s);
    uint64_t h1 = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
    for (int i = 0; i < 8; i++) {
        out[i] = (unsigned char)(h0 >> (8 * i));
        out[8 + i] = (unsigned char)(h1 >> (8 * i));
    }
}
