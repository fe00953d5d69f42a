/*
 * hash.h (private) - the one byte-string hash libhcpg uses for shards,
 * buckets, tag generations and single-flight slots.
 *
 * Keyed by a random seed drawn once per process (getrandom, else
 * /dev/urandom), so it is stable within a process and differs between
 * processes: never send, store or compare it across processes (nothing
 * does: shards, buckets, ghosts, tag/key generations and flight slots all
 * live in one process's memory).  Thread-safe.
 */
#ifndef HC_HASH_H
#define HC_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hc__hash(const void *data, size_t len);

#endif
