/*
 * clock.h (private) - CLOCK_MONOTONIC helpers shared by the modules that wait
 * (events, pgbus) or time things (cache's default clock).  Thread-safe.
 */
#ifndef HC_CLOCK_H
#define HC_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t hc__monotonic_ms(void);
/* Absolute CLOCK_MONOTONIC time timeout_ms (>= 0) from now, for
 * pthread_cond_timedwait on a condvar set to CLOCK_MONOTONIC. */
struct timespec hc__deadline_after(int timeout_ms);

#endif
