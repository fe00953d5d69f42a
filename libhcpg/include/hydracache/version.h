/*
 * hydracache/version.h - the libhcpg version, at compile time.
 *
 * The one place the version is written: configure.ac reads it from here
 * (scripts/version.sh), so PACKAGE_VERSION and hcpg.pc always agree.  At
 * run time hc_version() (cache.h) returns the version of the library
 * actually loaded, which may be newer than the header a program was built
 * with.  Compatibility of the shared library itself (its soname) follows
 * the libtool -version-info rules described in README.md ("Versions and ABI").
 */
#ifndef HYDRACACHE_VERSION_H
#define HYDRACACHE_VERSION_H

#define HC_VERSION_MAJOR 0
#define HC_VERSION_MINOR 4
#define HC_VERSION_PATCH 0

/* MAJOR * 10000 + MINOR * 100 + PATCH (0.1.0 -> 100), for #if comparisons */
#define HC_VERSION_NUM (HC_VERSION_MAJOR * 10000 + HC_VERSION_MINOR * 100 + HC_VERSION_PATCH)

#define HC__VERSION_STR(x) #x
#define HC__VERSION_XSTR(a, b, c) HC__VERSION_STR(a) "." HC__VERSION_STR(b) "." HC__VERSION_STR(c)
/* "MAJOR.MINOR.PATCH" */
#define HC_VERSION_STRING HC__VERSION_XSTR(HC_VERSION_MAJOR, HC_VERSION_MINOR, HC_VERSION_PATCH)

#endif /* HYDRACACHE_VERSION_H */
