/*
 * key.c - key building and escaping (docs/PROTOCOL.md), validation of keys
 * and tags entering the library, and hc_tagset.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "key.h"

hc_status hc__key_check(const char *key, size_t *len_out, const char *what, hc_error *err)
{
    if (key == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "%s is NULL", what);
    size_t len = strnlen(key, HC_MAX_KEY_LEN + 1);
    if (len == 0)
        return hc_error_set(err, HC_ERR_INVALID, "%s is empty", what);
    if (len > HC_MAX_KEY_LEN)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "%s longer than %d bytes", what,
                            HC_MAX_KEY_LEN);
    if (len_out != NULL)
        *len_out = len;
    return HC_OK;
}

hc_status hc__key_escape(char *buf, size_t limit, size_t *pos, const char *seg, hc_error *err)
{
    size_t p = *pos;
    if (seg == NULL) {
        if (limit - p < 2)
            goto too_large;
        buf[p++] = '\\';
        buf[p++] = 'N';
    } else {
        for (const char *s = seg; *s != '\0'; s++) {
            int esc = (*s == '\\' || *s == ':' || *s == '*');
            if (limit - p < (size_t)(1 + esc))
                goto too_large;
            if (esc)
                buf[p++] = '\\';
            buf[p++] = *s;
        }
    }
    buf[p] = '\0';
    *pos = p;
    return HC_OK;
too_large:
    return hc_error_set(err, HC_ERR_TOO_LARGE, "key longer than %zu bytes", limit);
}

/* Longest key that fits both the library limit and the caller's buffer. */
static size_t key_limit(size_t cap)
{
    return cap - 1 < HC_MAX_KEY_LEN ? cap - 1 : HC_MAX_KEY_LEN;
}

HC_EXTERN hc_status hc_key_build(char *buf, size_t cap, size_t *len_out,
                                 const char *const *segs, size_t nsegs, hc_error *err)
{
    if (buf == NULL || segs == NULL || nsegs == 0)
        return hc_error_set(err, HC_ERR_INVALID, "hc_key_build: NULL buffer or no segments");
    if (cap == 0)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "hc_key_build: zero-sized buffer");
    size_t limit = key_limit(cap), pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nsegs; i++) {
        if (i > 0) {
            if (pos >= limit) {
                buf[0] = '\0';
                return hc_error_set(err, HC_ERR_TOO_LARGE, "key longer than %zu bytes", limit);
            }
            buf[pos++] = ':';
        }
        if (hc__key_escape(buf, limit, &pos, segs[i], err) != HC_OK) {
            buf[0] = '\0';
            return HC_ERR_TOO_LARGE;
        }
    }
    buf[pos] = '\0';
    if (len_out != NULL)
        *len_out = pos;
    return HC_OK;
}

size_t hc__key_first_segment(const char *key, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (key[i] == '\\')
            i++;
        else if (key[i] == ':')
            return i;
    }
    return SIZE_MAX;
}

HC_EXTERN hc_status hc_key_table_tag(char *buf, size_t cap, const char *entity, hc_error *err)
{
    if (buf == NULL || entity == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_key_table_tag: NULL argument");
    if (cap == 0)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "hc_key_table_tag: zero-sized buffer");
    size_t limit = key_limit(cap), pos = 0;
    buf[0] = '\0';
    /* the bare '*' is what no escaped segment can contain */
    if (hc__key_escape(buf, limit, &pos, entity, err) != HC_OK || limit - pos < 2) {
        buf[0] = '\0';
        return hc_error_set(err, HC_ERR_TOO_LARGE, "table tag longer than %zu bytes", limit);
    }
    buf[pos++] = ':';
    buf[pos++] = '*';
    buf[pos] = '\0';
    return HC_OK;
}

/* ------------------------------------------------------------------ tag lists */

static int tag_listed(const char *const *v, size_t n, const char *tag)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], tag) == 0)
            return 1;
    return 0;
}

/* Validate tag and append it to out[*n] unless already there. */
static hc_status add_tag(const char **out, size_t *n, const char *tag, hc_error *err)
{
    hc_status st = hc__key_check(tag, NULL, "tag", err);
    if (st != HC_OK || tag_listed(out, *n, tag))
        return st;
    if (*n >= HC_MAX_TAGS)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "more than %d tags", HC_MAX_TAGS);
    out[(*n)++] = tag;
    return HC_OK;
}

hc_status hc__opts_tags(const hc_opts *opts, const char **out, size_t *n_out, hc_error *err)
{
    *n_out = 0;
    if (opts == NULL)
        return HC_OK;
    if (opts->tags.v == NULL && opts->tags.n > 0)
        return hc_error_set(err, HC_ERR_INVALID, "hc_opts.tags.v is NULL");
    size_t n = 0;
    for (size_t i = 0; i < opts->tags.n; i++) {
        hc_status st = add_tag(out, &n, opts->tags.v[i], err);
        if (st != HC_OK)
            return st;
    }
    for (size_t i = 0; i < hc_tagset_count(opts->tagset); i++) {
        hc_status st = add_tag(out, &n, hc_tagset_get(opts->tagset, i), err);
        if (st != HC_OK)
            return st;
    }
    *n_out = n;
    return HC_OK;
}

static hc_status quick_tag(const char *tag, hc_error *err)
{
    return tag != NULL && tag[0] != '\0' ? HC_OK : hc__key_check(tag, NULL, "tag", err);
}

hc_status hc__opts_tags_quick(const hc_opts *opts, hc_error *err)
{
    if (opts == NULL)
        return HC_OK;
    if (opts->tags.v == NULL && opts->tags.n > 0)
        return hc_error_set(err, HC_ERR_INVALID, "hc_opts.tags.v is NULL");
    for (size_t i = 0; i < opts->tags.n; i++)
        if (quick_tag(opts->tags.v[i], err) != HC_OK)
            return HC_ERR_INVALID;
    return HC_OK; /* an hc_tagset holds only valid tags */
}

/* ------------------------------------------------------------------ hc_tagset */

struct hc_tagset {
    size_t n;
    char *v[HC_MAX_TAGS];
};

HC_EXTERN hc_tagset *hc_tagset_new(void)
{
    return hc__calloc(1, sizeof(hc_tagset));
}

HC_EXTERN void hc_tagset_free(hc_tagset *ts)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < ts->n; i++)
        free(ts->v[i]);
    free(ts);
}

HC_EXTERN hc_status hc_tagset_add(hc_tagset *ts, const char *tag, hc_error *err)
{
    if (ts == NULL)
        return hc_error_set(err, HC_ERR_INVALID, "hc_tagset_add: NULL tagset");
    hc_status st = hc__key_check(tag, NULL, "tag", err);
    if (st != HC_OK || tag_listed((const char *const *)ts->v, ts->n, tag))
        return st;
    if (ts->n >= HC_MAX_TAGS)
        return hc_error_set(err, HC_ERR_TOO_LARGE, "more than %d tags", HC_MAX_TAGS);
    char *copy = hc__strdup(tag);
    if (copy == NULL)
        return hc_error_set(err, HC_ERR_NOMEM, "out of memory copying a tag");
    ts->v[ts->n++] = copy;
    return HC_OK;
}

HC_EXTERN size_t hc_tagset_count(const hc_tagset *ts)
{
    return ts != NULL ? ts->n : 0;
}

HC_EXTERN const char *hc_tagset_get(const hc_tagset *ts, size_t i)
{
    return ts != NULL && i < ts->n ? ts->v[i] : NULL;
}
