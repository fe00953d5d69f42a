/*
 * key.h (private) - key/tag validation and escaping shared by the cache,
 * views and the adapters.  All functions are pure and thread-safe.
 */
#ifndef HC_KEY_H
#define HC_KEY_H

#include <stddef.h>

#include "hydracache/cache.h"

/*
 * Validate a key or tag entering the library: HC_ERR_INVALID when NULL or
 * empty, HC_ERR_TOO_LARGE over HC_MAX_KEY_LEN.  what names it in the message
 * ("key", "tag").  *len_out (may be NULL) receives its length.
 */
hc_status hc__key_check(const char *key, size_t *len_out, const char *what, hc_error *err);

/*
 * Append the escaped form of seg (NULL -> "\N") to buf at *pos, keeping the
 * result below limit bytes (limit <= cap - 1).  HC_ERR_TOO_LARGE when it does
 * not fit; buf is NUL-terminated at the new *pos on success.
 */
hc_status hc__key_escape(char *buf, size_t limit, size_t *pos, const char *seg, hc_error *err);

/*
 * Length of key[0..len)'s first segment: up to its first ':' not escaped by
 * a backslash (hc__key_escape's rule), or SIZE_MAX for a key of one segment.
 */
size_t hc__key_first_segment(const char *key, size_t len);

/*
 * The tags of opts (opts->tags then opts->tagset), validated and
 * deduplicated, borrowed into out[HC_MAX_TAGS]; *n_out receives the count.
 * HC_ERR_INVALID for a NULL/empty tag or tags.v NULL with n > 0,
 * HC_ERR_TOO_LARGE for a long tag or more than HC_MAX_TAGS distinct tags.
 */
hc_status hc__opts_tags(const hc_opts *opts, const char **out, size_t *n_out, hc_error *err);

/*
 * The constant-time-per-tag part of hc__opts_tags, for paths (cache hits)
 * that do not use the tags: HC_ERR_INVALID for tags.v NULL with n > 0 or a
 * NULL/empty tag.  Lengths and the distinct-tag count are left to
 * hc__opts_tags.
 */
hc_status hc__opts_tags_quick(const hc_opts *opts, hc_error *err);

#endif
