/*
 * hash.h (private) - the one byte-string hash libhcpg uses for shards,
 * buckets, tag generations and single-flight slots.
 *
 * Stable within a process only (not a wire or disk format).  Pure function,
 * thread-safe.
 */
#ifndef HC_HASH_H
#define HC_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hc__hash(const void *data, size_t len);

#endif
