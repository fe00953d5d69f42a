/*
 * hydracache/hydracache.h - umbrella header of libhcpg.
 *
 * #include <hydracache/hydracache.h> and link with `pkg-config --libs hcpg`.
 */
#ifndef HYDRACACHE_H
#define HYDRACACHE_H

#include <hydracache/cache.h>
#if __has_include(<hydracache/pg.h>)
#include <hydracache/pg.h>
#endif
#if __has_include(<hydracache/bus.h>)
#include <hydracache/bus.h>
#endif

#endif /* HYDRACACHE_H */
