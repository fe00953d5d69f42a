/*
 * bus_int.h (private) - what the built-in transports (pgbus.c and its
 * drivers) need from the generic bus (bus.c) beyond the public
 * transport-author API.
 */
#ifndef HC_BUS_INT_H
#define HC_BUS_INT_H

#include <stdint.h>

#include "hydracache/bus.h"

/* Called by hc_bus_deliver_from (on the delivering thread, no bus lock held)
 * for every well-formed sync message, whatever its origin; sender is what
 * the transport said about who sent it. */
typedef void (*hc__bus_sync_fn)(void *impl, const char *origin, const char *token,
                                hc_bus_sender sender);
void hc__bus_set_sync_handler(hc_bus *bus, hc__bus_sync_fn fn);

/* Record the transport's queue usage (pg_notification_queue_usage(), 0..1;
 * -1 unknown) for hc_bus_queue_usage. */
void hc__bus_set_queue_usage(hc_bus *bus, double usage);
/* The queue usage of the bus c is attached to (hc_bus_queue_usage), -1 when c
 * is attached to none (or NULL): what diagnostics show for a cache.  Any
 * thread; c's bus is its publisher, read under the cache's publisher lock
 * and then the bus's lock (the order every publish takes them in). */
double hc__bus_cache_queue_usage(hc_cache *c);

/* Bus-wide delivery counters (notifications, not per cache). */
typedef struct hc__bus_counters {
    uint64_t received;
    uint64_t malformed;
    uint64_t own_ignored;
} hc__bus_counters;
void hc__bus_get_counters(hc_bus *bus, hc__bus_counters *out);

/* Random bits from the OS (hc__os_random), falling back to time and address. */
uint64_t hc__bus_random64(void);
/* Validate a node id (NULL -> write a random 16-hex one) into out[HC_NODE_ID_MAX + 1]. */
hc_status hc__bus_node_id_init(char *out, const char *node_id, hc_error *err);

#endif
