/*
 * core_test.h - small helpers shared by the core unit suites (cache, store,
 * single-flight, allocation failure, stress): string values and a suite
 * runner.
 */
#ifndef HC_CORE_TEST_H
#define HC_CORE_TEST_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hc_test.h"
#include "hydracache/cache.h"

/* Put a NUL-terminated string value. */
static inline hc_status put_str(hc_cache *c, const char *key, const char *val,
                                const hc_opts *opts)
{
    return hc_put(c, key, val, strlen(val), opts, NULL);
}

/* Assert key maps to exactly val. */
#define ck_assert_cached(c, key, val)                                                   \
    do {                                                                                \
        hc_value *v_ = NULL;                                                            \
        ck_assert_int_eq(hc_get((c), (key), &v_, NULL), HC_OK);                         \
        ck_assert_str_eq((const char *)hc_value_data(v_), (val));                       \
        hc_value_release(v_);                                                           \
    } while (0)

#define ck_assert_missing(c, key)                                                       \
    do {                                                                                \
        hc_value *v_ = (hc_value *)1;                                                   \
        ck_assert_int_eq(hc_get((c), (key), &v_, NULL), HC_MISS);                       \
        ck_assert_ptr_null(v_);                                                         \
    } while (0)

/* A loader returning the string in ctx (a const char *). */
static inline hc_status load_ctx_string(void *ctx, const char *key, hc_value **out,
                                        hc_error *err)
{
    (void)key;
    (void)err;
    *out = hc_value_new(ctx, strlen(ctx));
    return *out != NULL ? HC_OK : HC_ERR_NOMEM;
}

#endif
