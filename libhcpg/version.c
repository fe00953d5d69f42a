/* version.c - the version of the library actually loaded (hc_version). */
#include "config.h"

#include "hydracache/cache.h"

HC_EXTERN const char *hc_version(void)
{
    return HC_VERSION_STRING;
}
