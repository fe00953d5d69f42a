/*
 * typedview.c - typed views (hc_view, hydracache/cache.h): namespaced views
 * over a cache whose keys get the prefix "<esc(ns)>:" and whose values pass
 * through the view's codec.  (Not the row views of pgrowview.c, hc_pg_view,
 * which read one cached query result.)  Built only on the
 * public cache API (plus hc__cache_drop for corrupt entries and
 * hc__cache_put_failed when encoding a put fails).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cache_int.h"
#include "key.h"

struct hc_view {
    hc_cache *cache;
    hc_codec codec;
    size_t plen;
    char prefix[]; /* "<esc(ns)>:" */
};

HC_EXTERN hc_view *hc_cache_view(hc_cache *c, const char *ns, const hc_codec *codec,
                                 hc_error *err)
{
    if (c == NULL || ns == NULL || codec == NULL || codec->encode == NULL ||
        codec->decode == NULL || codec->free == NULL) {
        hc_error_set(err, HC_ERR_INVALID, "hc_cache_view: NULL cache, namespace or codec");
        return NULL;
    }
    if (hc__key_check(ns, NULL, "namespace", err) != HC_OK)
        return NULL;
    char buf[HC_MAX_KEY_LEN + 1];
    size_t pos = 0;
    /* leave room for the ':' and at least one key byte */
    if (hc__key_escape(buf, HC_MAX_KEY_LEN - 2, &pos, ns, err) != HC_OK)
        return NULL;
    buf[pos++] = ':';
    hc_view *v = hc__malloc(sizeof *v + pos + 1);
    if (v == NULL) {
        hc_error_set(err, HC_ERR_NOMEM, "out of memory creating a view");
        return NULL;
    }
    v->cache = c;
    v->codec = *codec;
    v->plen = pos;
    memcpy(v->prefix, buf, pos);
    v->prefix[pos] = '\0';
    return v;
}

HC_EXTERN void hc_view_free(hc_view *v)
{
    free(v);
}

HC_EXTERN hc_status hc_view_key(const hc_view *v, const char *key, char *buf, size_t cap,
                                hc_error *err)
{
    size_t klen;
    if (v == NULL || buf == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_view_key: NULL view or buffer");
    hc_status st = hc__key_check(key, &klen, "key", err);
    if (st != HC_OK)
        return st;
    if (v->plen + klen > HC_MAX_KEY_LEN || v->plen + klen >= cap)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "view key longer than %d bytes",
                            HC_MAX_KEY_LEN);
    memcpy(buf, v->prefix, v->plen);
    memcpy(buf + v->plen, key, klen + 1);
    return HC_OK;
}

/* Decode a cached value.  Only bytes the codec calls corrupt (HC_ERR_CODEC)
 * drop the entry, so it is reloaded next time; any other failure (no memory,
 * say) leaves a valid entry in place and passes the codec's status through. */
static hc_status decode(hc_view *v, const char *full, hc_value *val, void **obj_out,
                        hc_error *err)
{
    void *obj = NULL;
    hc_error derr = {.code = HC_OK, .message = ""};
    hc_status st = v->codec.decode(v->codec.ctx, hc_value_data(val), hc_value_len(val), &obj,
                                   &derr);
    hc_value_release(val);
    if (st == HC_OK) {
        *obj_out = obj;
        return HC_OK;
    }
    if (obj != NULL)
        v->codec.free(v->codec.ctx, obj);
    if (st > HC_OK) /* an outcome without an object: the codec broke its contract */
        return hc_error_set(err, HC_ERR_CODEC, "decoding the entry of '%s' returned '%s'",
                            full, hc_status_str(st));
    if (st == HC_ERR_CODEC)
        hc__cache_drop(v->cache, full);
    if (derr.code == st && derr.message[0] != '\0')
        return hc_error_set(err, st, "%s", derr.message);
    return hc_error_set(err, st, "cannot decode the entry of '%s': %s", full, hc_status_str(st));
}

HC_EXTERN hc_status hc_view_get(hc_view *v, const char *key, void **obj_out, hc_error *err)
{
    char full[HC_MAX_KEY_LEN + 1];
    if (obj_out != NULL)
        *obj_out = NULL;
    if (obj_out == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "obj_out is NULL");
    hc_status st = hc_view_key(v, key, full, sizeof full, err);
    hc_value *val = NULL;
    if (st == HC_OK)
        st = hc_get(v->cache, full, &val, err);
    return st == HC_OK ? decode(v, full, val, obj_out, err) : st;
}

HC_EXTERN hc_status hc_view_put(hc_view *v, const char *key, const void *obj,
                                const hc_opts *opts, hc_error *err)
{
    char full[HC_MAX_KEY_LEN + 1];
    hc_status st = hc_view_key(v, key, full, sizeof full, err);
    if (st != HC_OK)
        return st;
    hc_value *val = NULL;
    st = v->codec.encode(v->codec.ctx, obj, &val, err);
    if (st == HC_OK && val == NULL)
        st = hc_error_set(err, HC_ERR_CODEC, "encode returned no value");
    if (st == HC_OK)
        st = hc_put_value(v->cache, full, val, opts, err);
    else
        hc__cache_put_failed(v->cache, full);
    hc_value_release(val);
    return st;
}

typedef struct obj_load {
    hc_view *view;
    hc_obj_loader_fn fn;
    void *ctx;
    const char *key; /* the view key the caller asked for */
} obj_load;

/* Loader adapter: load an object, encode it for the cache. */
static hc_status load_encoded(void *ctx, const char *full, hc_value **out, hc_error *err)
{
    (void)full;
    obj_load *ol = ctx;
    void *obj = NULL;
    hc_status st = ol->fn(ol->ctx, ol->key, &obj, err);
    if (st != HC_OK) {
        if (obj != NULL)
            ol->view->codec.free(ol->view->codec.ctx, obj);
        return st;
    }
    st = ol->view->codec.encode(ol->view->codec.ctx, obj, out, err);
    if (obj != NULL)
        ol->view->codec.free(ol->view->codec.ctx, obj);
    return st;
}

HC_EXTERN hc_status hc_view_get_or_load(hc_view *v, const char *key, const hc_opts *opts,
                                        hc_obj_loader_fn loader, void *ctx, void **obj_out,
                                        hc_error *err)
{
    char full[HC_MAX_KEY_LEN + 1];
    if (obj_out != NULL)
        *obj_out = NULL;
    if (obj_out == NULL || loader == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "obj_out or loader is NULL");
    hc_status st = hc_view_key(v, key, full, sizeof full, err);
    if (st != HC_OK)
        return st;
    obj_load ol = {v, loader, ctx, key};
    hc_value *val = NULL;
    st = hc_get_or_load(v->cache, full, opts, load_encoded, &ol, &val, err);
    return st == HC_OK ? decode(v, full, val, obj_out, err) : st;
}

HC_EXTERN hc_status hc_view_contains(hc_view *v, const char *key, hc_error *err)
{
    char full[HC_MAX_KEY_LEN + 1];
    hc_status st = hc_view_key(v, key, full, sizeof full, err);
    return st == HC_OK ? hc_contains(v->cache, full, err) : st;
}

HC_EXTERN hc_status hc_view_invalidate_key(hc_view *v, const char *key, hc_error *err)
{
    char full[HC_MAX_KEY_LEN + 1];
    hc_status st = hc_view_key(v, key, full, sizeof full, err);
    return st == HC_OK ? hc_invalidate_key(v->cache, full, err) : st;
}

HC_EXTERN hc_status hc_view_remove(hc_view *v, const char *key, hc_error *err)
{
    return hc_view_invalidate_key(v, key, err);
}
