/*
 * osrandom.h (private) - the one place libhcpg asks the OS for random bytes
 * (hash seed, bus node ids, reconnect jitter).  Thread-safe, no state.
 */
#ifndef HC_OSRANDOM_H
#define HC_OSRANDOM_H

#include <stddef.h>

/* Fill buf with n bytes from the kernel's random source: getrandom() without
 * blocking (never waits for the entropy pool at early boot), else
 * /dev/urandom.  0 on success; -1 when neither delivered n bytes (sandboxes
 * without the syscall or /dev): then buf's content is unspecified and the
 * caller falls back to what it can mix from clock, pid and addresses. */
int hc__os_random(void *buf, size_t n);

#endif
