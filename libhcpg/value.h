/* value.h (private) - what the store needs to know about hc_value. */
#ifndef HC_VALUE_H
#define HC_VALUE_H

#include <stddef.h>

#include "hydracache/cache.h"

/* Bytes one value occupies (header + data + NUL), for the byte bound. */
size_t hc__value_footprint(const hc_value *v);

#endif
