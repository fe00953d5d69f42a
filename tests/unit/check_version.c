/*
 * check_version.c - the version macros, hc_version() and configure's
 * PACKAGE_VERSION (AC_INIT) agree, in the static library the tests link and
 * in the shared library a program loads.
 */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hc_test.h"
#include "hydracache/hydracache.h"

START_TEST(test_macros_match_configure)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", HC_VERSION_MAJOR, HC_VERSION_MINOR, HC_VERSION_PATCH);
    /* configure reads version.h when autoconf runs; a stale configure (autoconf's cache) shows here */
    ck_assert_msg(strcmp(want, PACKAGE_VERSION) == 0,
                  "version.h says %s, configure's AC_INIT %s: run autoreconf -fi", want, PACKAGE_VERSION);
    ck_assert_str_eq(HC_VERSION_STRING, PACKAGE_VERSION);
    int major = -1, minor = -1, patch = -1;
    ck_assert_int_eq(sscanf(PACKAGE_VERSION, "%d.%d.%d", &major, &minor, &patch), 3);
    ck_assert_int_eq(HC_VERSION_NUM, major * 10000 + minor * 100 + patch);
    ck_assert_int_lt(HC_VERSION_MINOR, 100);
    ck_assert_int_lt(HC_VERSION_PATCH, 100);
#if HC_VERSION_NUM < 100
#error "HC_VERSION_NUM must be usable in #if"
#endif
}
END_TEST

START_TEST(test_runtime_version_is_the_build_version)
{
    const char *v = hc_version();
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v, PACKAGE_VERSION);
    ck_assert_ptr_eq(hc_version(), v); /* static storage */
}
END_TEST

/* The shared object users link exports hc_version and reports the same version. */
START_TEST(test_shared_library_exports_hc_version)
{
    const char *builddir = getenv("HC_BUILDDIR");
    if (builddir == NULL) {
        fprintf(stderr, "check_version: HC_BUILDDIR unset: shared library test skipped\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/libhcpg/.libs/libhcpg.so", builddir);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", path, dlerror());
    const char *(*fn)(void) = (const char *(*)(void))dlsym(h, "hc_version");
    ck_assert_msg(fn != NULL, "hc_version not exported: %s", dlerror());
    ck_assert_str_eq(fn(), PACKAGE_VERSION);
    dlclose(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("version");
    TCase *tc = tcase_create("version");
    tcase_add_test(tc, test_macros_match_configure);
    tcase_add_test(tc, test_runtime_version_is_the_build_version);
    tcase_add_test(tc, test_shared_library_exports_hc_version);
    suite_add_tcase(s, tc);
    return hc_test_run_suite(s);
}
