/*
 * alloc.h (private) - the allocation wrappers every libhcpg module uses.
 *
 * All library allocations go through these so that tests can make the Nth
 * allocation (and every later one) fail and check that each error path
 * reports HC_ERR_NOMEM, leaks nothing and leaves the cache consistent.
 * Memory from these wrappers is released with plain free().
 *
 * Thread-safety: the wrappers are thread-safe.  hc__alloc_fail_after is a
 * test hook: set it from one thread while no other thread allocates.
 */
#ifndef HC_ALLOC_H
#define HC_ALLOC_H

#include <stddef.h>

void *hc__malloc(size_t n);
void *hc__calloc(size_t nmemb, size_t size);
void *hc__realloc(void *p, size_t n);
char *hc__strdup(const char *s);
/* Copies at most n bytes of s and NUL-terminates. */
char *hc__strndup(const char *s, size_t n);

/*
 * Test hook: let the next n allocations succeed and fail every one after
 * them; n < 0 turns injection off (the default).
 */
void hc__alloc_fail_after(long n);
/* Number of allocations attempted since the last hc__alloc_fail_after call. */
long hc__alloc_count(void);

#endif
