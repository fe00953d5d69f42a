/* error.c - status strings and the hc_error out-parameter. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "hydracache/cache.h"

HC_EXTERN const char *hc_status_str(hc_status st)
{
    switch (st) {
    case HC_OK: return "ok";
    case HC_MISS: return "miss";
    case HC_LAGGED: return "subscriber lagged";
    case HC_TIMEOUT: return "timed out";
    case HC_ERR_INVALID: return "invalid argument";
    case HC_ERR_NOMEM: return "out of memory";
    case HC_ERR_TOO_LARGE: return "too large";
    case HC_ERR_LOADER: return "loader failed";
    case HC_ERR_PG: return "postgresql error";
    case HC_ERR_CODEC: return "codec error";
    case HC_ERR_CLOSED: return "closed";
    case HC_ERR_BUSY: return "busy";
    case HC_ERR_STATE: return "invalid state";
    case HC_ERR_SYSTEM: return "system error";
    case HC_ERR_ROWCOUNT: return "unexpected row count";
    }
    return "unknown status";
}

HC_EXTERN hc_status hc_error_set(hc_error *err, hc_status code, const char *fmt, ...)
{
    if (err != NULL) {
        err->code = code;
        err->message[0] = '\0';
        if (fmt != NULL) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err->message, sizeof err->message, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}
