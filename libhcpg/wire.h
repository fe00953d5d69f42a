/*
 * wire.h (private) - wire format v1 of invalidation payloads (docs/PROTOCOL.md).
 * The codec itself (hc_wire_parse, hc_wire_encode, hc_wire_msg) is public, in
 * hydracache/transport.h; these are the pieces the library shares beyond it.
 * All are pure and thread-safe.
 */
#ifndef HC_WIRE_H
#define HC_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "hydracache/transport.h"

/* 1..HC_WIRE_ORIGIN_MAX bytes of [A-Za-z0-9._-]. */
bool hc__wire_origin_valid(const char *origin, size_t len);

/*
 * Escaped length of an arg (the bytes %, space, 0x00-0x1F and 0x7F take three
 * bytes each), and the escaping itself into dst (which needs that many bytes;
 * no NUL is written).  Returns the number of bytes written.
 */
size_t hc__wire_escaped_len(const char *arg, size_t len);
size_t hc__wire_escape(char *dst, const char *arg, size_t len);

#endif
