/*
 * check_store.c - the memory bound, eviction accounting, scan resistance and
 * the seeded hash behind the table.
 */
#include "config.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* Declared here: gcc ships no <sanitizer/allocator_interface.h> (clang does);
 * the ASan and TSan runtimes both export this function. */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HEAP_IN_USE() __sanitizer_get_current_allocated_bytes()
#elif defined(__GLIBC__)
#include <malloc.h>
static size_t heap_in_use_glibc(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
#define HEAP_IN_USE() heap_in_use_glibc()
#else
#define HEAP_IN_USE() ((size_t)0)
#endif

#include "cache_int.h"
#include "prefix.h"
#include "core_test.h"
#include "hash.h"
#include "hc_test.h"
#include "hydracache/cache.h"

static char self_path[4096]; /* this program, for the per-process hash test */

/* The cache of the running test (each test sizes its own), freed by the
 * checked fixture's teardown. */
static hc_cache *test_cache;

static hc_cache *new_cache(size_t max_bytes, size_t max_entries, unsigned shards)
{
    hc_config cfg = {.max_bytes = max_bytes, .max_entries = max_entries, .shards = shards};
    ck_assert_ptr_null(test_cache); /* one per test */
    test_cache = hc_cache_new(&cfg, NULL);
    ck_assert_ptr_nonnull(test_cache);
    return test_cache;
}

static void free_test_cache(void)
{
    hc_cache_free(test_cache);
    test_cache = NULL;
}

static hc_diagnostics diag(const hc_cache *c)
{
    hc_diagnostics d;
    hc_cache_diagnostics(c, &d);
    return d;
}

START_TEST(test_store_never_exceeds_max_bytes)
{
    const size_t limit = 64 * 1024;
    hc_cache *c = new_cache(limit, 0, 8);
    static char buf[4096];
    memset(buf, 'v', sizeof buf);
    unsigned seed = 12345;
    size_t stored = 0;
    for (int i = 0; i < 5000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key:%u", (unsigned)(rand_r(&seed) % 2000));
        size_t len = (size_t)(rand_r(&seed) % sizeof buf);
        ck_assert_int_eq(hc_put(c, key, buf, len,
                                HC_OPTS(.tags = HC_TAGS("t", key)), NULL), HC_OK);
        stored += len;
        hc_diagnostics d = diag(c);
        ck_assert_uint_le(d.bytes_used, limit);
    }
    hc_diagnostics d = diag(c);
    ck_assert_uint_gt(stored, limit * 10);
    ck_assert_uint_gt(d.stats.evictions_capacity, 0);
    ck_assert_uint_eq(d.stats.evictions_expired, 0);
    /* whatever survived is intact and the table agrees with the counters */
    ck_assert_uint_gt(d.entries, 0);
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    d = diag(c);
    ck_assert_uint_eq(d.entries, 0);
    ck_assert_uint_eq(d.bytes_used, 0);
}
END_TEST

START_TEST(test_store_never_exceeds_max_entries)
{
    hc_cache *c = new_cache(1 << 20, 10, 4);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        put_str(c, key, "v", NULL);
        ck_assert_uint_le(diag(c).entries, 10);
    }
    ck_assert_uint_eq(diag(c).entries, 10);
    ck_assert_uint_eq(diag(c).stats.evictions_capacity, 90);
}
END_TEST

START_TEST(test_bytes_count_key_value_tags_and_overhead)
{
    hc_cache *c = new_cache(1 << 20, 0, 1);
    put_str(c, "k", "v", NULL);
    size_t plain = diag(c).bytes_used;
    ck_assert_uint_gt(plain, 2); /* overhead is counted, not just the payload */
    /* allocations are counted as malloc's chunks: 16-byte steps */
    char hundred[101];
    memset(hundred, 'v', 100);
    hundred[100] = '\0';
    put_str(c, "k", hundred, NULL);
    size_t bigger = diag(c).bytes_used;
    ck_assert_uint_ge(bigger, plain + 99 - 15);
    ck_assert_uint_le(bigger, plain + 99 + 15);
    put_str(c, "kkkk", "v", NULL);
    ck_assert_uint_ge(diag(c).bytes_used, bigger + plain + 3 - 15);
    ck_assert_uint_le(diag(c).bytes_used, bigger + plain + 3 + 15);
    hc_flush(c, NULL);
    put_str(c, "k", "v", HC_OPTS(.tags = HC_TAGS("tag1")));
    ck_assert_uint_gt(diag(c).bytes_used, plain + 4);
    hc_remove(c, "k", NULL);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
}
END_TEST

START_TEST(test_capacity_evictions_emit_events)
{
    hc_cache *c = new_cache(1 << 20, 3, 1);
    hc_subscriber *sub = hc_subscribe(c, HC_EV_EVICT, 16, NULL);
    put_str(c, "a", "1", NULL);
    put_str(c, "b", "2", NULL);
    put_str(c, "c", "3", NULL);
    put_str(c, "d", "4", NULL);
    hc_event ev;
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_OK);
    ck_assert_int_eq(ev.kind, HC_EV_EVICT);
    ck_assert_int_eq(ev.reason, HC_EVICT_CAPACITY);
    ck_assert_str_eq(ev.subject, "a"); /* FIFO: the oldest cold entry goes first */
    ck_assert_int_eq(hc_subscriber_recv(sub, &ev, 0), HC_TIMEOUT);
    ck_assert_missing(c, "a");
    ck_assert_cached(c, "d", "4");
    hc_subscriber_free(sub);
}
END_TEST

/*
 * A hot working set that fits the cache is read a few times, then a scan
 * writes ten cache-fulls of cold keys once each.  Under LRU every hot key
 * would be the least recently used long before the scan ends; S3-FIFO keeps
 * the scan in its small queue and the hot keys in main.
 */
START_TEST(test_one_pass_scan_does_not_evict_the_hot_working_set)
{
    enum { CAPACITY = 200, HOT = 50, SCAN = 10 * CAPACITY };
    hc_cache *c = new_cache(1 << 20, CAPACITY, 1);
    char key[32];
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof key, "hot:%d", i);
        put_str(c, key, "h", NULL);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < HOT; i++) {
            snprintf(key, sizeof key, "hot:%d", i);
            ck_assert_cached(c, key, "h");
        }
    for (int i = 0; i < SCAN; i++) {
        snprintf(key, sizeof key, "cold:%d", i);
        put_str(c, key, "c", NULL);
        if (i % 100 == 0) /* the working set stays in use during the scan */
            for (int h = 0; h < HOT; h++) {
                snprintf(key, sizeof key, "hot:%d", h);
                ck_assert_int_eq(hc_contains(c, key, NULL), HC_OK);
            }
    }
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof key, "hot:%d", i);
        ck_assert_msg(hc_contains(c, key, NULL) == HC_OK, "%s was evicted by the scan", key);
    }
    ck_assert_uint_ge(diag(c).stats.evictions_capacity, SCAN - CAPACITY + HOT);
}
END_TEST

START_TEST(test_entries_evicted_as_cold_return_to_main_when_reused)
{
    /* a key evicted from the small queue and soon re-inserted is remembered
     * (ghost) and protected from the next scan even without a hit */
    enum { CAPACITY = 20, MIN_GHOST_SLOTS = 16 };
    /* Re-inserting it first evicts scan1:0, whose ghost is written before
     * the lookup: with the per-process hash seed their direct-mapped ghost
     * slots would sometimes be one, and the ghost of `again` overwritten
     * (a legitimate forgetting, not what this test is about).  Pick a name
     * whose slot differs from scan1:0's in every table size (>= 16 slots). */
    char again[32];
    uint64_t h0 = hc__hash("scan1:0", strlen("scan1:0"));
    for (int n = 0;; n++) {
        snprintf(again, sizeof again, "again:%d", n);
        if (((hc__hash(again, strlen(again)) ^ h0) & (MIN_GHOST_SLOTS - 1)) != 0)
            break;
    }
    hc_cache *c = new_cache(1 << 20, CAPACITY, 1);
    char key[32];
    put_str(c, again, "1", NULL);
    for (int i = 0; i < CAPACITY; i++) {
        snprintf(key, sizeof key, "scan1:%d", i);
        put_str(c, key, "c", NULL);
    }
    ck_assert_int_eq(hc_contains(c, again, NULL), HC_MISS);
    put_str(c, again, "2", NULL);
    for (int i = 0; i < 3 * CAPACITY; i++) {
        snprintf(key, sizeof key, "scan2:%d", i);
        put_str(c, key, "c", NULL);
    }
    ck_assert_cached(c, again, "2");
}
END_TEST

/*
 * The ghost table is direct-mapped by hash and grows with the bucket table.
 * Keys with distinct ghost slots (chosen here with the
 * table's own hash) are evicted as cold from a one-shard cache, the table
 * then grows, and the keys come back: the ghost must still know them, so
 * they go to the main queue and outlive a scan.
 */
START_TEST(test_ghosts_survive_table_growth)
{
    enum { VICTIMS = 4, GHOST_SLOTS = 8 /* half the 16 slots before the first grow */,
           FILLERS = 24 };
    char victims[VICTIMS][32], key[32];
    unsigned used_slots = 0;
    for (int n = 0, found = 0; found < VICTIMS; n++) {
        snprintf(key, sizeof key, "victim:%d", n);
        uint64_t h = hc__hash(key, strlen(key));
        unsigned slot = (unsigned)(h & (GHOST_SLOTS - 1));
        if (!(used_slots & (1u << slot))) {
            used_slots |= 1u << slot;
            snprintf(victims[found++], sizeof victims[0], "%s", key);
        }
    }
    const size_t limit = 64 * 1024;
    hc_cache *c = new_cache(limit, 0, 1);
    static char big[56 * 1024];
    for (int i = 0; i < VICTIMS; i++)
        ck_assert_int_eq(hc_put(c, victims[i], big, 12 * 1024, NULL, NULL), HC_OK);
    /* room for this one only once every victim is gone (oldest first) */
    ck_assert_int_eq(hc_put(c, "filler", big, sizeof big, NULL, NULL), HC_OK);
    ck_assert_uint_eq(diag(c).stats.evictions_capacity, VICTIMS);
    hc_remove(c, "filler", NULL);
    for (int i = 0; i < FILLERS; i++) { /* past the 16 buckets: the table grows */
        snprintf(key, sizeof key, "small:%d", i);
        put_str(c, key, "s", NULL);
    }
    ck_assert_uint_eq(diag(c).stats.evictions_capacity, VICTIMS);
    for (int i = 0; i < VICTIMS; i++)
        put_str(c, victims[i], "back", NULL);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "scan:%d", i);
        put_str(c, key, "c", NULL);
    }
    ck_assert_uint_gt(diag(c).stats.evictions_capacity, 1000);
    for (int i = 0; i < VICTIMS; i++)
        ck_assert_msg(hc_contains(c, victims[i], NULL) == HC_OK,
                      "%s was forgotten by the ghost table", victims[i]);
}
END_TEST

/* An entity's own tag (equal to its key) costs nothing beyond the entry, yet
 * invalidating that tag still removes it, and only it. */
START_TEST(test_entity_key_that_is_its_tag_is_stored_once)
{
    hc_cache *c = new_cache(1 << 20, 0, 4);
    put_str(c, "user:1", "alice", NULL);
    size_t untagged = diag(c).bytes_used;
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    put_str(c, "user:1", "alice", HC_OPTS(.tags = HC_TAGS("user:1")));
    ck_assert_uint_eq(diag(c).bytes_used, untagged);
    /* a plain entry whose key merely looks like a tag is not tagged by it */
    put_str(c, "user:2", "bob", NULL);
    ck_assert_int_eq(hc_invalidate_tag(c, "user:2", NULL), HC_OK);
    ck_assert_cached(c, "user:2", "bob");
    ck_assert_int_eq(hc_invalidate_tag(c, "user:1", NULL), HC_OK);
    ck_assert_missing(c, "user:1");
    ck_assert_cached(c, "user:2", "bob");
    /* the own tag beside a shared one: each removes it */
    put_str(c, "user:3", "carol", HC_OPTS(.tags = HC_TAGS("user:3", "user:*")));
    ck_assert_int_eq(hc_invalidate_tag(c, "user:*", NULL), HC_OK);
    ck_assert_missing(c, "user:3");
    put_str(c, "user:3", "carol", HC_OPTS(.tags = HC_TAGS("user:*", "user:3")));
    ck_assert_int_eq(hc_invalidate_tag(c, "user:3", NULL), HC_OK);
    ck_assert_missing(c, "user:3");
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
}
END_TEST

/* A tag shared by many entries is stored once per store (and one small node
 * per shard): each further entry pays only its 24-byte link. */
START_TEST(test_shared_tags_are_interned)
{
    enum { N = 2000 };
    char key[32];
    const char *tag = "a-rather-long-table-wide-tag-name-for-this-test:*";
    hc_cache *c = new_cache(64 << 20, 0, 16);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "row:%d", i);
        put_str(c, key, "v", NULL);
    }
    size_t untagged = diag(c).bytes_used;
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "row:%d", i);
        put_str(c, key, "v", HC_OPTS(.tags = HC_TAGS(tag)));
    }
    size_t tagged = diag(c).bytes_used;
    /* 24 bytes of link per entry (which may cross a 16-byte malloc step),
     * plus one name and at most 16 nodes */
    ck_assert_uint_le(tagged - untagged, N * 32 + 16 * 32 + 128);
    ck_assert_int_eq(hc_invalidate_tag(c, tag, NULL), HC_OK);
    ck_assert_uint_eq(diag(c).entries, 0);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
}
END_TEST

/*
 * An entity's table tag (its key's first segment ":*", hc_key_table_tag)
 * costs nothing beyond the entry: it is a flag, and invalidating the tag
 * walks the shards for the flagged entries of that table, beside the ones
 * that carry the tag as an ordinary (linked) tag.  Escaped colons in the
 * entity, a key of one segment, a table whose name extends another's and an
 * entry carrying another table's tag are told apart.
 */
START_TEST(test_table_tag_is_a_flag)
{
    enum { N = 300 };
    char key[64], ent[64];
    hc_cache *c = new_cache(16 << 20, 0, 8);
    size_t untagged = 0;
    /* twice: the first pass makes "user:" a pinned prefix (prefix.h), whose
     * bytes are not counted, so only the second compares like with like */
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof key, "user:%d", i);
            put_str(c, key, "v", NULL);
        }
        untagged = diag(c).bytes_used;
    }
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "user:%d", i);
        put_str(c, key, "v", HC_OPTS(.tags = HC_TAGS(key, "user:*")));
    }
    ck_assert_uint_eq(diag(c).bytes_used, untagged);

    ck_assert_int_eq(hc_key_table_tag(ent, sizeof ent, "a:b", NULL), HC_OK); /* "a\\:b:*" */
    put_str(c, "a\\:b:1", "ab", HC_OPTS(.tags = HC_TAGS(ent)));
    put_str(c, "a:b:1", "a", HC_OPTS(.tags = HC_TAGS("a:*")));
    put_str(c, "users:1", "us", HC_OPTS(.tags = HC_TAGS("users:*")));
    put_str(c, "user", "one segment", HC_OPTS(.tags = HC_TAGS("user:*")));
    put_str(c, "order:7", "linked", HC_OPTS(.tags = HC_TAGS("user:*", "order:*")));
    put_str(c, "user:x", "other table's tag", HC_OPTS(.tags = HC_TAGS("order:*")));

    ck_assert_int_eq(hc_invalidate_tag(c, "user:*", NULL), HC_OK);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "user:%d", i);
        ck_assert_missing(c, key);
    }
    ck_assert_missing(c, "user");
    ck_assert_missing(c, "order:7");
    ck_assert_cached(c, "user:x", "other table's tag");
    ck_assert_cached(c, "users:1", "us");
    ck_assert_cached(c, "a\\:b:1", "ab");
    ck_assert_cached(c, "a:b:1", "a");
    ck_assert_uint_eq(diag(c).entries, 4);

    ck_assert_int_eq(hc_invalidate_tag(c, "a:*", NULL), HC_OK);
    ck_assert_missing(c, "a:b:1");
    ck_assert_cached(c, "a\\:b:1", "ab");
    ck_assert_int_eq(hc_invalidate_tag(c, ent, NULL), HC_OK);
    ck_assert_missing(c, "a\\:b:1");
    ck_assert_int_eq(hc_invalidate_tag(c, "order:*", NULL), HC_OK);
    ck_assert_missing(c, "user:x");
    ck_assert_int_eq(hc_invalidate_tag(c, "users:*", NULL), HC_OK);
    ck_assert_uint_eq(diag(c).entries, 0);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
}
END_TEST

static uint64_t fake_now(void *ctx)
{
    return *(const uint64_t *)ctx;
}

#define ck_assert_store_consistent(c)                                                    \
    do {                                                                                 \
        char why_[256] = "";                                                             \
        ck_assert_msg(hc__cache_check((c), why_, sizeof why_), "store broken: %s", why_); \
    } while (0)

/* Keys whose hashes share their low bits pile up in one probe run longer than
 * the 255 slots a distance byte holds (DIST_FAR): removals in any order must
 * shift the run back correctly, keep the FIFOs linked and every other key
 * reachable, also when the run wraps around the end of the slot array. */
START_TEST(test_probe_runs_longer_than_dist_far)
{
    enum { N = 420, BITS = 12 };
    hc_cache *c = new_cache(64u << 20, 0, 1);
    static char keys[N][24];
    for (int pass = 0; pass < 2; pass++) {
        uint64_t want = pass == 0 ? 5 : ((uint64_t)1 << BITS) - 3; /* second run wraps */
        int n = 0;
        for (unsigned i = 0; n < N; i++) {
            char k[24];
            snprintf(k, sizeof k, "p%d:%u", pass, i);
            if ((hc__hash(k, strlen(k)) & (((uint64_t)1 << BITS) - 1)) == want)
                memcpy(keys[n++], k, sizeof k);
        }
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(hc_put(c, keys[i], keys[i], strlen(keys[i]),
                                    i % 3 ? HC_OPTS(.ttl_ms = 1000000) : NULL, NULL), HC_OK);
        ck_assert_store_consistent(c);
        for (int i = 0; i < N; i++)
            ck_assert_cached(c, keys[i], keys[i]);
        /* remove from the front, the middle and the back of the run */
        unsigned seed = 99;
        char gone[N] = {0};
        for (int r = 0; r < N / 2; r++) {
            int i = r % 3 == 0 ? r / 3 : r % 3 == 1 ? N - 1 - r / 3 : (int)(rand_r(&seed) % N);
            ck_assert_int_eq(hc_remove(c, keys[i], NULL), HC_OK);
            gone[i] = 1;
            if (r % 16 == 0)
                ck_assert_store_consistent(c);
        }
        ck_assert_store_consistent(c);
        for (int i = 0; i < N; i++) {
            if (gone[i])
                ck_assert_missing(c, keys[i]);
            else
                ck_assert_cached(c, keys[i], keys[i]);
        }
        ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
        ck_assert_store_consistent(c);
    }
}
END_TEST

/* Every key length up to HC_MAX_KEY_LEN (the key's padding), with and
 * without a TTL and linked tags, and values of every small length: each
 * entry's parts must not overlap (run under ASan/valgrind), read back, and
 * leave nothing counted once removed. */
START_TEST(test_entry_layout_for_every_key_length)
{
    hc_cache *c = new_cache(64u << 20, 0, 2);
    static char key[HC_MAX_KEY_LEN + 1], tag[HC_MAX_KEY_LEN + 1], val[64];
    for (size_t klen = 1; klen <= HC_MAX_KEY_LEN; klen += klen < 40 ? 1 : 97) {
        for (size_t vlen = 0; vlen < sizeof val; vlen += 7) {
            memset(key, 'k', klen);
            key[klen] = '\0';
            if (klen > 2)
                key[1] = ':';
            key[0] = (char)('a' + vlen % 26);
            memset(val, (int)('0' + klen % 10), vlen);
            size_t tlen = klen < HC_MAX_KEY_LEN ? klen + 1 : klen;
            memset(tag, 't', tlen);
            tag[tlen] = '\0';
            char ttag[4] = {key[0], ':', '*', '\0'};
            hc_opts o = {.ttl_ms = vlen % 2 ? 100000 : HC_TTL_DEFAULT,
                         .tags = vlen % 3 == 0   ? HC_TAGS(key, ttag)
                                 : vlen % 3 == 1 ? HC_TAGS(tag, "x", ttag)
                                                 : HC_TAGS("y")};
            ck_assert_int_eq(hc_put(c, key, val, vlen, &o, NULL), HC_OK);
            hc_value *v = NULL;
            ck_assert_int_eq(hc_get(c, key, &v, NULL), HC_OK);
            ck_assert_uint_eq(hc_value_len(v), vlen);
            ck_assert(memcmp(hc_value_data(v), val, vlen) == 0);
            ck_assert_int_eq(((const char *)hc_value_data(v))[vlen], '\0');
            ck_assert_int_eq(hc_invalidate_tag(c, vlen % 3 == 2 ? "y" : ttag, NULL), HC_OK);
            ck_assert_missing(c, key);
            ck_assert(memcmp(hc_value_data(v), val, vlen) == 0); /* outlives its entry */
            hc_value_release(v);
            ck_assert_uint_eq(diag(c).bytes_used, 0);
        }
    }
}
END_TEST

/*
 * A popular prefix is pinned (prefix.h): keys put before and after the pin
 * (the first ones hold a counted reference, the later ones the pinned id)
 * all read back, and so do those of more popular prefixes than can be
 * pinned; the counted prefixes go with their last entry, so a flush brings
 * bytes_used back to 0.
 */
START_TEST(test_popular_prefixes_are_pinned)
{
    enum { PREFIXES = HC_PREFIX_PINNED + 6, KEYS = HC_PREFIX_PIN_AFTER + 4 };
    char key[64], val[64];
    hc_cache *c = new_cache(64 << 20, 0, 4);
    for (int round = 0; round < 2; round++) {
        for (int p = 0; p < PREFIXES; p++)
            for (int i = 0; i < KEYS; i++) {
                snprintf(key, sizeof key, "e%d:%d", p, i);
                snprintf(val, sizeof val, "%d/%d/%d", round, p, i);
                put_str(c, key, val, NULL);
            }
        for (int p = 0; p < PREFIXES; p++)
            for (int i = 0; i < KEYS; i++) {
                snprintf(key, sizeof key, "e%d:%d", p, i);
                snprintf(val, sizeof val, "%d/%d/%d", round, p, i);
                ck_assert_cached(c, key, val);
                snprintf(key, sizeof key, "e%d:%d", p, i + KEYS);
                ck_assert_missing(c, key);
            }
        ck_assert_store_consistent(c);
        /* the first keys of each prefix (counted references) go first */
        for (int p = 0; p < PREFIXES; p++)
            for (int i = 0; i < (int)HC_PREFIX_PIN_AFTER; i++) {
                snprintf(key, sizeof key, "e%d:%d", p, i);
                ck_assert_int_eq(hc_remove(c, key, NULL), HC_OK);
            }
        for (int p = 0; p < PREFIXES; p++) {
            snprintf(key, sizeof key, "e%d:%d", p, KEYS - 1);
            snprintf(val, sizeof val, "%d/%d/%d", round, p, KEYS - 1);
            ck_assert_cached(c, key, val);
        }
        ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
        ck_assert_uint_eq(diag(c).bytes_used, 0);
        ck_assert_store_consistent(c);
    }
}
END_TEST

/*
 * A key's first segment and ':' is stored once per store: keys sharing it
 * cost less than keys of one segment of the same length.  Keys that differ
 * only in their prefix, an escaped ':' inside the first segment, an empty
 * rest, a prefix too long to intern, and more distinct prefixes than the
 * dictionary holds (the rest stored whole) all read back as themselves; the
 * prefixes go with their last entry.
 */
START_TEST(test_key_prefixes_are_stored_once)
{
    enum { N = 2000 };
    char key[128];
    hc_cache *c = new_cache(64 << 20, 0, 4);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "customer_order_item_x%05d", i); /* one segment */
        put_str(c, key, "v", NULL);
    }
    size_t whole = diag(c).bytes_used;
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "customer_order_item:%05d", i); /* same length */
        put_str(c, key, "v", NULL);
    }
    ck_assert_uint_lt(diag(c).bytes_used, whole - N * 8);
    ck_assert_store_consistent(c);
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    ck_assert_uint_eq(diag(c).bytes_used, 0);

    put_str(c, "a:1", "a1", NULL);
    put_str(c, "b:1", "b1", NULL);
    put_str(c, "a\\:b:1", "ab1", NULL);
    put_str(c, "a:b:1", "a-b1", NULL);
    put_str(c, "user:", "empty rest", NULL);
    put_str(c, "user", "one segment", NULL);
    memset(key, 'p', 80);
    strcpy(key + 80, ":1");
    put_str(c, key, "long prefix", NULL);
    ck_assert_cached(c, "a:1", "a1");
    ck_assert_cached(c, "b:1", "b1");
    ck_assert_cached(c, "a\\:b:1", "ab1");
    ck_assert_cached(c, "a:b:1", "a-b1");
    ck_assert_cached(c, "user:", "empty rest");
    ck_assert_cached(c, "user", "one segment");
    ck_assert_cached(c, key, "long prefix");
    ck_assert_missing(c, "c:1");
    ck_assert_missing(c, "a:2");
    ck_assert_missing(c, "a:");
    ck_assert_store_consistent(c);
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);

    /* more distinct prefixes than ids: the rest are stored whole */
    for (int i = 0; i < 1500; i++) {
        snprintf(key, sizeof key, "e%d:%d", i, i);
        put_str(c, key, "x", NULL);
    }
    for (int i = 0; i < 1500; i++) {
        snprintf(key, sizeof key, "e%d:%d", i, i);
        ck_assert_cached(c, key, "x");
        snprintf(key, sizeof key, "e%d:%d", i, i + 1);
        ck_assert_missing(c, key);
    }
    ck_assert_store_consistent(c);
    for (int i = 0; i < 1500; i += 2) {
        snprintf(key, sizeof key, "e%d:%d", i, i);
        ck_assert_int_eq(hc_remove(c, key, NULL), HC_OK);
    }
    for (int i = 0; i < 1500; i++) { /* freed ids are taken again */
        snprintf(key, sizeof key, "f%d:%d", i, i);
        put_str(c, key, "y", NULL);
    }
    for (int i = 0; i < 1500; i++) {
        snprintf(key, sizeof key, "f%d:%d", i, i);
        ck_assert_cached(c, key, "y");
        snprintf(key, sizeof key, "e%d:%d", i, i);
        if (i % 2)
            ck_assert_cached(c, key, "x");
        else
            ck_assert_missing(c, key);
    }
    ck_assert_store_consistent(c);
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
}
END_TEST


/*
 * The store's structures stay consistent through every kind of change, mixed
 * at random: puts of every size (table growth, eviction under a byte bound
 * that keeps it busy, replacement), removals and tag invalidations (entries
 * shifting in the table while their FIFO neighbours follow them), table-tag
 * invalidations (queue walks), expiry through a fake clock and flushes (the
 * table shrinking back).  hc__cache_check walks the table and both FIFOs of
 * every shard: links, tags, home distances, counts and bytes.  Values must
 * read back as written.
 */
START_TEST(test_store_stays_consistent_under_random_changes)
{
    enum { OPS = 30000, KEYS = 3000 };
    uint64_t now = 1000;
    for (unsigned shards = 1; shards <= 4; shards *= 4) {
        hc_config cfg = {.max_bytes = 96 * 1024, .shards = shards, .clock = fake_now,
                         .clock_ctx = &now};
        hc_cache *c = hc_cache_new(&cfg, NULL);
        ck_assert_ptr_nonnull(c);
        unsigned seed = 777 + shards;
        static char val[600];
        char key[48], tag[32];
        for (int op = 0; op < OPS; op++) {
            unsigned r = (unsigned)rand_r(&seed), k = (unsigned)rand_r(&seed) % KEYS;
            snprintf(key, sizeof key, "t%u:%u", k % 7, k);
            snprintf(tag, sizeof tag, "t%u:*", k % 7);
            switch (r % 64) {
            case 0:
            case 1:
                ck_assert_int_eq(hc_remove(c, key, NULL), HC_OK);
                break;
            case 2:
                snprintf(tag, sizeof tag, "g%u", k % 50);
                ck_assert_int_eq(hc_invalidate_tag(c, tag, NULL), HC_OK);
                break;
            case 3:
                if (r % 512 == 3) {
                    ck_assert_int_eq(hc_invalidate_tag(c, tag, NULL), HC_OK);
                    ck_assert_missing(c, key);
                }
                break;
            case 4:
                now += r % 5;
                break;
            case 5:
                if (r % 8192 == 5) {
                    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
                    ck_assert_uint_eq(diag(c).bytes_used, 0);
                }
                break;
            default: {
                size_t len = (size_t)(r >> 8) % (r % 3 == 0 ? sizeof val : 40);
                memset(val, 'a' + (int)(k % 26), len);
                char g[16];
                snprintf(g, sizeof g, "g%u", k % 50);
                hc_opts o = {.ttl_ms = r % 10 == 0 ? 3 : HC_TTL_DEFAULT,
                             .tags = r % 2 ? HC_TAGS(key, tag, g) : HC_TAGS(tag)};
                ck_assert_int_eq(hc_put(c, key, val, len, &o, NULL), HC_OK);
                hc_value *v = NULL;
                if (hc_get(c, key, &v, NULL) == HC_OK) {
                    ck_assert_uint_eq(hc_value_len(v), len);
                    ck_assert(len == 0 || memcmp(hc_value_data(v), val, len) == 0);
                    hc_value_release(v);
                }
            }
            }
            ck_assert_uint_le(diag(c).bytes_used, cfg.max_bytes);
            if (op % 500 == 0)
                ck_assert_store_consistent(c);
        }
        ck_assert_store_consistent(c);
        ck_assert_uint_gt(diag(c).stats.evictions_capacity, 1000);
        ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
        ck_assert_store_consistent(c);
        ck_assert_uint_eq(diag(c).bytes_used, 0);
        hc_cache_free(c);
    }
}
END_TEST

/* Threads hit, put (TTLs, table tags, replacement), remove, invalidate table
 * tags and flush one small cache at once, holding values across other
 * threads' removals: meant for TSan and ASan (readers take no lock, values
 * live inside entries freed by whoever releases last). */
enum { CONC_KEYS = 400, CONC_ITERS = 20000 };

static void *conc_worker(void *arg)
{
    hc_cache *c = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    hc_value *held[8] = {NULL};
    uintptr_t bad = 0; /* asserted by the main thread */
    char key[32], tag[16], val[300];
    for (int it = 0; it < CONC_ITERS; it++) {
        unsigned r = (unsigned)rand_r(&seed), k = (unsigned)rand_r(&seed) % CONC_KEYS;
        snprintf(key, sizeof key, "t%u:%u", k % 5, k);
        snprintf(tag, sizeof tag, "t%u:*", k % 5);
        switch (r % 16) {
        case 0:
            hc_remove(c, key, NULL);
            break;
        case 1:
            if (r % 64 == 1)
                hc_invalidate_tag(c, tag, NULL);
            break;
        case 2:
            if (r % 4096 == 2)
                hc_flush(c, NULL);
            break;
        case 3:
        case 4:
        case 5: {
            size_t len = (r >> 8) % sizeof val;
            memset(val, 'a' + (int)(k % 26), len);
            hc_opts o = {.ttl_ms = r % 3 == 0 ? 1 : HC_TTL_DEFAULT,
                         .tags = r % 2 ? HC_TAGS(key, tag) : HC_TAGS(tag)};
            hc_put(c, key, val, len, &o, NULL);
            break;
        }
        default: {
            hc_value *v = NULL;
            if (hc_get(c, key, &v, NULL) == HC_OK) {
                const char *d = hc_value_data(v);
                for (size_t i = 0; i < hc_value_len(v); i++)
                    bad += d[i] != 'a' + (int)(k % 26);
                bad += d[hc_value_len(v)] != '\0';
                hc_value_release(held[r % 8]);
                held[r % 8] = v;
            }
        }
        }
    }
    for (int i = 0; i < 8; i++)
        hc_value_release(held[i]);
    return (void *)bad;
}

START_TEST(test_concurrent_hits_puts_and_invalidations)
{
    for (unsigned shards = 1; shards <= 8; shards *= 8) {
        hc_config cfg = {.max_bytes = 48 * 1024, .max_entries = 150, .shards = shards};
        hc_cache *c = hc_cache_new(&cfg, NULL);
        ck_assert_ptr_nonnull(c);
        pthread_t th[4];
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, conc_worker, c), 0);
        for (int i = 0; i < 4; i++) {
            void *bad = NULL;
            pthread_join(th[i], &bad);
            ck_assert_ptr_null(bad); /* every hit read back what was put */
        }
        ck_assert_store_consistent(c);
        ck_assert_uint_le(diag(c).bytes_used, cfg.max_bytes);
        ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
        ck_assert_uint_eq(diag(c).bytes_used, 0);
        hc_cache_free(c);
    }
}
END_TEST

/* Whether HEAP_IN_USE sees this process's allocations (valgrind's malloc,
 * for one, is not glibc's). */
static int heap_measurable(void)
{
    enum { BLOCKS = 256, SIZE = 4000 };
    static void *p[BLOCKS];
    size_t h0 = HEAP_IN_USE();
    for (int i = 0; i < BLOCKS; i++)
        p[i] = malloc(SIZE);
    size_t h1 = HEAP_IN_USE();
    for (int i = 0; i < BLOCKS; i++)
        free(p[i]);
    return h1 >= h0 + BLOCKS * SIZE && h1 - h0 < 2 * BLOCKS * SIZE;
}

/*
 * bytes_used counts everything the cache stores: entries, values, tag nodes
 * and names, grown tables.  Measured from outside: the heap the process
 * holds beyond the empty cache's never exceeds bytes_used (plus the few
 * freed chunks malloc keeps in its per-thread cache, which it reports as in
 * use), and bytes_used never exceeds max_bytes, through fills, evictions and
 * invalidations with many distinct keys and tags.
 */
START_TEST(test_bytes_used_covers_the_heap_and_stays_bounded)
{
    enum { PUTS = 30000 };
    const size_t limit = 2 << 20, slack = 64 << 10;
    int measurable = heap_measurable();
    if (!measurable)
        fprintf(stderr, "check_store: this malloc's heap cannot be measured here: "
                        "only the bound is checked\n");
    hc_cache *c = new_cache(limit, 0, 8);
    put_str(c, "warm", "up", HC_OPTS(.tags = HC_TAGS("warm-tag")));
    hc_remove(c, "warm", NULL);
    size_t h0 = HEAP_IN_USE();
    static char buf[400];
    memset(buf, 'v', sizeof buf);
    size_t peak_heap = 0, peak_used = 0;
    for (int i = 0; i < PUTS; i++) {
        char key[32], own[32], shared[32], distinct[32];
        snprintf(key, sizeof key, "entity:%d", i);
        snprintf(own, sizeof own, "entity:%d", i);
        snprintf(shared, sizeof shared, "collection:%d", i % 97);
        snprintf(distinct, sizeof distinct, "distinct-tag-number:%d", i);
        size_t len = (size_t)(i * 7919) % sizeof buf;
        ck_assert_int_eq(hc_put(c, key, buf, len,
                                HC_OPTS(.tags = HC_TAGS(own, shared, distinct, "table:*")), NULL),
                         HC_OK);
        if (i % 1000 == 999)
            ck_assert_int_eq(hc_invalidate_tag(c, shared, NULL), HC_OK);
        if (i % 250 == 0 || i == PUTS - 1) {
            hc_diagnostics d = diag(c);
            ck_assert_uint_le(d.bytes_used, limit);
            size_t h = HEAP_IN_USE();
            size_t grown = h > h0 ? h - h0 : 0;
            if (measurable)
                ck_assert_msg(grown <= d.bytes_used + slack,
                              "heap grew %zu bytes, bytes_used %zu (%zu entries)", grown,
                              d.bytes_used, d.entries);
            if (grown > peak_heap)
                peak_heap = grown;
            if (d.bytes_used > peak_used)
                peak_used = d.bytes_used;
        }
    }
    hc_diagnostics d = diag(c);
    ck_assert_uint_gt(d.stats.evictions_capacity, 0); /* the bound was reached */
    ck_assert_uint_gt(peak_used, limit - limit / 8);
    if (measurable)
        ck_assert_uint_gt(peak_heap, limit / 2); /* the measure saw the cache */
    ck_assert_int_eq(hc_flush(c, NULL), HC_OK);
    ck_assert_uint_eq(diag(c).bytes_used, 0);
}
END_TEST

/* Run this program to print hc__hash of a fixed key; the value it printed. */
static uint64_t hash_in_new_process(void)
{
    char cmd[sizeof self_path + 32];
    snprintf(cmd, sizeof cmd, "'%s' --print-hash", self_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    uint64_t h = 0;
    ck_assert_int_eq(fscanf(p, "%" SCNx64, &h), 1);
    ck_assert_int_eq(pclose(p), 0);
    return h;
}

/* Keys carry user-chosen ids: a per-process seed keeps collisions unpredictable. */
START_TEST(test_removals_keep_every_other_key_reachable)
{
    /* one shard, so removals shift entries across long probe runs and
     * around the end of the slot array; remove every third key, then each
     * survivor must still be found and each removed key must miss */
    hc_cache *c = new_cache(64u << 20, 0, 1);
    enum { N = 3000 };
    char key[16];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "r%d", i);
        ck_assert_int_eq(hc_put(c, key, "v", 1, NULL, NULL), HC_OK);
    }
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof key, "r%d", i);
        ck_assert_int_eq(hc_remove(c, key, NULL), HC_OK);
    }
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "r%d", i);
        ck_assert_int_eq(hc_contains(c, key, NULL), i % 3 == 0 ? HC_MISS : HC_OK);
    }
    ck_assert_uint_eq(diag(c).entries, N - (N + 2) / 3);
}
END_TEST

START_TEST(test_hash_is_stable_in_a_process_and_seeded_per_process)
{
    ck_assert_uint_eq(hc__hash("user:42", 7), hc__hash("user:42", 7));
    ck_assert_uint_ne(hc__hash("user:42", 7), hc__hash("user:43", 7));
    uint64_t a = hash_in_new_process(), b = hash_in_new_process();
    ck_assert_msg(a != b, "two processes hashed \"user:42\" alike: %" PRIx64, a);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, NULL, free_test_cache);
    tcase_add_test(tc, test_store_never_exceeds_max_bytes);
    tcase_add_test(tc, test_store_never_exceeds_max_entries);
    tcase_add_test(tc, test_bytes_count_key_value_tags_and_overhead);
    tcase_add_test(tc, test_capacity_evictions_emit_events);
    tcase_add_test(tc, test_one_pass_scan_does_not_evict_the_hot_working_set);
    tcase_add_test(tc, test_entries_evicted_as_cold_return_to_main_when_reused);
    tcase_add_test(tc, test_ghosts_survive_table_growth);
    tcase_add_test(tc, test_removals_keep_every_other_key_reachable);
    tcase_add_test(tc, test_hash_is_stable_in_a_process_and_seeded_per_process);
    tcase_add_test(tc, test_entity_key_that_is_its_tag_is_stored_once);
    tcase_add_test(tc, test_shared_tags_are_interned);
    tcase_add_test(tc, test_table_tag_is_a_flag);
    tcase_add_test(tc, test_key_prefixes_are_stored_once);
    tcase_add_test(tc, test_popular_prefixes_are_pinned);
    tcase_add_test(tc, test_probe_runs_longer_than_dist_far);
    tcase_add_test(tc, test_entry_layout_for_every_key_length);
    tcase_add_test(tc, test_concurrent_hits_puts_and_invalidations);
    tcase_add_test(tc, test_store_stays_consistent_under_random_changes);
    tcase_add_test(tc, test_bytes_used_covers_the_heap_and_stays_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--print-hash") == 0) {
        printf("%" PRIx64 "\n", hc__hash("user:42", 7));
        return 0;
    }
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n > 0)
        self_path[n] = '\0';
    else
        snprintf(self_path, sizeof self_path, "%s", argv[0]);
    return hc_test_run_suite(store_suite());
}
