/* hash.c - a fast 64-bit hash of byte strings (8 bytes per round, strong final mix). */
#include "config.h"

#include <string.h>

#include "hash.h"

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

uint64_t hc__hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len > 0)
        memcpy(&w, p, len);
    h ^= mix64(w ^ ((uint64_t)len << 56));
    return mix64(h);
}
