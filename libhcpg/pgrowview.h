/*
 * pgrowview.h (private) - filling row views (hc_pg_view) from cached
 * results; the accessors are public (hydracache/pg.h).
 */
#ifndef HC_PGROWVIEW_H
#define HC_PGROWVIEW_H

#include "hydracache/pg.h"
#include "pgshape.h"

/*
 * Point view at the result encoded in v, which the view takes over (its
 * reference) on success; on failure v is left to the caller and the view is
 * empty.  Walks the bytes once, as strictly as decoding, noting where each
 * column name and cell starts (in the view's own arrays, or one malloc for
 * large results), and holding its shape.  HC_ERR_CODEC, HC_ERR_NOMEM.
 */
hc_status hc__pgrowview_fill(hc_value *v, hc_pg_view *view, hc_error *err);
/* The same, for v's shape, which the caller holds and the view takes over
 * on success (released with the view). */
hc_status hc__pgrowview_fill_shaped(hc_value *v, hc__pgshape *shape, hc_pg_view *view,
                                    hc_error *err);

/* Make view empty (no reference, no rows, no columns) without freeing anything. */
void hc__pgrowview_clear(hc_pg_view *view);

#endif
