/* alloc.c - allocation wrappers with a test-only failure injector. */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* -1: no injection.  Otherwise the number of allocations still allowed. */
static atomic_long fail_budget = -1;
static atomic_long alloc_attempts = 0;

/* True when this allocation must fail.  One relaxed load when injection is off. */
static int inject_failure(void)
{
    if (atomic_load_explicit(&fail_budget, memory_order_relaxed) < 0)
        return 0;
    atomic_fetch_add_explicit(&alloc_attempts, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_budget, memory_order_relaxed);
    while (left > 0) {
        if (atomic_compare_exchange_weak_explicit(&fail_budget, &left, left - 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
    return left == 0;
}

void hc__alloc_fail_after(long n)
{
    atomic_store(&alloc_attempts, 0);
    atomic_store(&fail_budget, n < 0 ? -1 : n);
}

long hc__alloc_count(void)
{
    return atomic_load(&alloc_attempts);
}

void *hc__malloc(size_t n)
{
    return inject_failure() ? NULL : malloc(n ? n : 1);
}

void *hc__calloc(size_t nmemb, size_t size)
{
    return inject_failure() ? NULL : calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *hc__realloc(void *p, size_t n)
{
    return inject_failure() ? NULL : realloc(p, n ? n : 1);
}

char *hc__strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = hc__malloc(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *hc__strdup(const char *s)
{
    return hc__strndup(s, strlen(s));
}
