/*
 * value.c - hc_value: an immutable byte blob in one allocation (header,
 * data, trailing NUL) with an atomic reference count.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "alloc.h"
#include "value.h"

/* The layout (struct hc_value) is in value.h: the store embeds values in
 * its entries. */

HC_EXTERN hc_value *hc_value_alloc(size_t len, void **data_out)
{
    if (len > HC_MAX_VALUE_LEN)
        return NULL;
    hc_value *v = hc__malloc(sizeof *v + len + 1);
    if (v == NULL)
        return NULL;
    atomic_init(&v->refs, 1);
    v->len = (uint32_t)len;
    v->data[len] = '\0';
    if (data_out != NULL)
        *data_out = v->data;
    return v;
}

HC_EXTERN hc_value *hc_value_new(const void *data, size_t len)
{
    if (data == NULL && len > 0)
        return NULL;
    void *dst;
    hc_value *v = hc_value_alloc(len, &dst);
    if (v != NULL && len > 0)
        memcpy(dst, data, len);
    return v;
}

HC_EXTERN const void *hc_value_data(const hc_value *v)
{
    return v != NULL ? v->data : NULL;
}

HC_EXTERN size_t hc_value_len(const hc_value *v)
{
    return v != NULL ? v->len & ~HC__VALUE_EMBEDDED : 0;
}

HC_EXTERN hc_value *hc_value_retain(hc_value *v)
{
    if (v != NULL)
        atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}

HC_EXTERN void hc_value_release(hc_value *v)
{
    /* acq_rel: the freeing thread must see every other holder's reads finished */
    if (v != NULL && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
        if (v->len & HC__VALUE_EMBEDDED)
            hc__store_value_free(v);
        else
            free(v);
    }
}

void hc__value_embed(hc_value *v, const void *data, size_t len)
{
    atomic_init(&v->refs, 1);
    v->len = (uint32_t)len | HC__VALUE_EMBEDDED;
    if (len > 0)
        memcpy(v->data, data, len);
    v->data[len] = '\0';
}
