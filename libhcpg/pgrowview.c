/*
 * pgrowview.c - row views (hc_pg_view, hydracache/pg.h): the libpq
 * accessors read straight from a cached result's encoded bytes (pgcodec.h),
 * kept alive by the view's reference.  (Not the typed views of
 * typedview.c, hc_view, which wrap a whole cache with a codec.)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pgcodec.h"
#include "pgrowview.h"

/* Only the header: the inline arrays are read only where the header says. */
void hc__pgrowview_clear(hc_pg_view *view)
{
    struct hc_pg_view_priv_ *p = &view->priv_;
    p->value = NULL;
    p->data = NULL;
    p->ntuples = 0;
    p->nfields = 0;
    p->heap = NULL;
}

hc_status hc__pgrowview_fill(hc_value *v, hc_pg_view *view, hc_error *err)
{
    struct hc_pg_view_priv_ *p = &view->priv_;
    hc__pgrowview_clear(view);
    const unsigned char *data = hc_value_data(v);
    size_t len = hc_value_len(v);
    uint32_t ntuples, nfields;
    hc_status st = hc__pgcodec_counts(data, len, &ntuples, &nfields, err);
    if (st != HC_OK) return st;
    size_t ncells = (size_t)ntuples * nfields;
    uint32_t *fields = p->inline_fields, *cells = p->inline_cells;
    if (nfields > HC_PG_VIEW_INLINE_FIELDS || ncells > HC_PG_VIEW_INLINE_CELLS) {
        /* one array for both: fields first, then the cells */
        if ((p->heap = hc__malloc((nfields + ncells) * sizeof *p->heap)) == NULL)
            return hc_error_set(err, HC_ERR_NOMEM, "pg view: out of memory for a view of %zu cells", ncells);
        fields = p->heap;
        cells = p->heap + nfields;
    }
    st = hc__pgcodec_index(data, len, fields, cells, err);
    if (st != HC_OK) {
        free(p->heap);
        p->heap = NULL;
        return st;
    }
    p->value = v;
    p->data = data;
    p->ntuples = (int)ntuples;
    p->nfields = (int)nfields;
    p->fields = fields;
    p->cells = cells;
    return HC_OK;
}

static bool col_ok(const hc_pg_view *view, int col)
{
    return view != NULL && col >= 0 && col < view->priv_.nfields;
}

/* The offset of cell (row, col) (0 = NULL), or UINT32_MAX when out of range. */
static uint32_t cell(const hc_pg_view *view, int row, int col)
{
    if (!col_ok(view, col) || row < 0 || row >= view->priv_.ntuples) return UINT32_MAX;
    return view->priv_.cells[(size_t)row * (size_t)view->priv_.nfields + (size_t)col];
}

HC_EXTERN int hc_pg_view_ntuples(const hc_pg_view *view)
{
    return view ? view->priv_.ntuples : 0;
}

HC_EXTERN int hc_pg_view_nfields(const hc_pg_view *view)
{
    return view ? view->priv_.nfields : 0;
}

HC_EXTERN const char *hc_pg_view_fname(const hc_pg_view *view, int col)
{
    return col_ok(view, col) ? (const char *)view->priv_.data + view->priv_.fields[col] : NULL;
}

HC_EXTERN int hc_pg_view_fnumber(const hc_pg_view *view, const char *name)
{
    for (int f = 0; name != NULL && col_ok(view, f); f++)
        if (strcmp(hc_pg_view_fname(view, f), name) == 0) return f;
    return -1;
}

HC_EXTERN Oid hc_pg_view_ftype(const hc_pg_view *view, int col)
{
    return col_ok(view, col) ? hc__pgcodec_col_type(view->priv_.data + view->priv_.fields[col]) : 0;
}

HC_EXTERN int hc_pg_view_fformat(const hc_pg_view *view, int col)
{
    return col_ok(view, col) ? hc__pgcodec_col_format(view->priv_.data + view->priv_.fields[col]) : 0;
}

HC_EXTERN const char *hc_pg_view_getvalue(const hc_pg_view *view, int row, int col)
{
    uint32_t off = cell(view, row, col);
    if (off == UINT32_MAX) return NULL;
    return off == 0 ? "" : (const char *)view->priv_.data + off;
}

HC_EXTERN int hc_pg_view_getlength(const hc_pg_view *view, int row, int col)
{
    uint32_t off = cell(view, row, col);
    return off == UINT32_MAX || off == 0 ? 0 : hc__pgcodec_cell_len(view->priv_.data + off);
}

HC_EXTERN int hc_pg_view_getisnull(const hc_pg_view *view, int row, int col)
{
    uint32_t off = cell(view, row, col);
    return off == UINT32_MAX || off == 0;
}

HC_EXTERN void hc_pg_view_release(hc_pg_view *view)
{
    if (view == NULL) return;
    struct hc_pg_view_priv_ *p = &view->priv_;
    hc_value_release(p->value);
    free(p->heap);
    hc__pgrowview_clear(view);
}
