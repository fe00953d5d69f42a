/*
 * pgrowview.c - row views (hc_pg_view, hydracache/pg.h): the libpq
 * accessors read straight from a cached result's encoded bytes (pgcodec.h)
 * and its shape (pgshape.h), kept alive by the view's references.  (Not the typed views of
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
    p->shape = NULL;
    p->data = NULL;
    p->ntuples = 0;
    p->nfields = 0;
    p->heap = NULL;
}

hc_status hc__pgrowview_fill_shaped(hc_value *v, hc__pgshape *shape, hc_pg_view *view,
                                    hc_error *err)
{
    struct hc_pg_view_priv_ *p = &view->priv_;
    hc__pgrowview_clear(view);
    const unsigned char *data = hc_value_data(v);
    size_t len = hc_value_len(v);
    int ntuples;
    hc_status st = hc__pgcodec_ntuples(data, len, &ntuples, err);
    if (st != HC_OK) return st;
    size_t ncells = (size_t)ntuples * (size_t)shape->nfields;
    uint32_t *cells = p->inline_cells;
    /* cells beyond the inline array need a heap array: check the count
     * against the bytes (each cell takes at least 1; index checks too)
     * before allocating for it */
    if (ncells > HC_PG_VIEW_INLINE_CELLS) {
        if (ncells > len) return hc_error_set(err, HC_ERR_CODEC, "pgcodec: corrupt cached result (row count)");
        if ((p->heap = hc__malloc(ncells * sizeof *p->heap)) == NULL)
            return hc_error_set(err, HC_ERR_NOMEM, "pg view: out of memory for a view of %zu cells", ncells);
        cells = p->heap;
    }
    st = hc__pgcodec_index(data, len, shape, cells, err);
    if (st != HC_OK) {
        free(p->heap);
        p->heap = NULL;
        return st;
    }
    p->value = v;
    p->shape = shape;
    p->data = data;
    p->ntuples = ntuples;
    p->nfields = shape->nfields;
    p->cells = cells;
    return HC_OK;
}

hc_status hc__pgrowview_fill(hc_value *v, hc_pg_view *view, hc_error *err)
{
    hc__pgrowview_clear(view);
    hc__pgshape *shape;
    hc_status st = hc__pgcodec_shape(hc_value_data(v), hc_value_len(v), &shape, err);
    if (st == HC_OK) st = hc__pgrowview_fill_shaped(v, shape, view, err);
    if (st != HC_OK) hc__pgshape_release(shape);
    return st;
}

static const PGresAttDesc *attr(const hc_pg_view *view, int col)
{
    return &((const hc__pgshape *)view->priv_.shape)->attrs[col];
}

static bool col_ok(const hc_pg_view *view, int col)
{
    return view != NULL && col >= 0 && col < view->priv_.nfields;
}

/* The offset of cell (row, col)'s length varint (0 = NULL), or UINT32_MAX
 * when out of range. */
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
    return col_ok(view, col) ? attr(view, col)->name : NULL;
}

HC_EXTERN int hc_pg_view_fnumber(const hc_pg_view *view, const char *name)
{
    for (int f = 0; name != NULL && col_ok(view, f); f++)
        if (strcmp(hc_pg_view_fname(view, f), name) == 0) return f;
    return -1;
}

HC_EXTERN Oid hc_pg_view_ftype(const hc_pg_view *view, int col)
{
    return col_ok(view, col) ? attr(view, col)->typid : 0;
}

HC_EXTERN int hc_pg_view_fformat(const hc_pg_view *view, int col)
{
    return col_ok(view, col) ? attr(view, col)->format : 0;
}

HC_EXTERN const char *hc_pg_view_getvalue(const hc_pg_view *view, int row, int col)
{
    uint32_t off = cell(view, row, col);
    if (off == UINT32_MAX) return NULL;
    int len;
    return off == 0 ? "" : hc__pgcodec_cell(view->priv_.data + off, &len);
}

HC_EXTERN int hc_pg_view_getlength(const hc_pg_view *view, int row, int col)
{
    uint32_t off = cell(view, row, col);
    int len = 0;
    if (off != UINT32_MAX && off != 0) hc__pgcodec_cell(view->priv_.data + off, &len);
    return len;
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
    hc__pgshape_release((hc__pgshape *)p->shape);
    free(p->heap);
    hc__pgrowview_clear(view);
}
