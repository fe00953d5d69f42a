/*
 * hydracache/hydracache.h - umbrella header of libhcpg.
 *
 * #include <hydracache/hydracache.h> and link with `pkg-config --libs hcpg`.
 *   cache.h    the local cache runtime (values, keys, tags, single-flight, stats, events)
 *   pg.h       the libpq adapter (hc_pg_fetch_one/optional/all/with, hc_query, entities)
 *   bus.h      invalidation buses (in-process, PostgreSQL LISTEN/NOTIFY)
 *   transport.h  custom bus transports and the wire format v1 codec (included by bus.h)
 *   registry.h named caches, JSON / Prometheus snapshots, read-only HTTP actuator
 */
#ifndef HYDRACACHE_H
#define HYDRACACHE_H

#include <hydracache/cache.h>
#include <hydracache/pg.h>
#include <hydracache/transport.h>
#include <hydracache/bus.h>
#include <hydracache/registry.h>

#endif /* HYDRACACHE_H */
