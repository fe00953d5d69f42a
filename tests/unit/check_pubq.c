/* check_pubq.c - the PostgreSQL bus's publish queue (pubq.c) without a
 * server: bounding, flush broadcasts for lost publishes, sync tokens kept
 * across failures, forgetting a cache, batch encoding, and every allocation
 * failure. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hc_test.h"
#include "pubq.h"

static hc_cache *new_cache(void)
{
    hc_cache *c = hc_cache_new(NULL, NULL);
    ck_assert_ptr_nonnull(c);
    return c;
}

static uint64_t cache_stat(hc_cache *c, int which)
{
    hc_stats s;
    hc_cache_stats(c, &s);
    return which == 0 ? s.bus_published : s.bus_publish_failures;
}

static char *encode(hc_pubq *q)
{
    char *lit = NULL;
    ck_assert_int_eq(hc__pubq_encode(q->inflight, q->inflight_flush, "n1", "e", &lit), HC_OK);
    return lit;
}

START_TEST(test_batch_is_encoded_in_order_with_runs_and_collapsed_flushes)
{
    hc_pubq q;
    hc__pubq_init(&q, 100);
    hc_cache *c = new_cache();
    bool empty = false;
    ck_assert_int_eq(hc__pubq_push(&q, c, HC_INVAL_KEY, "a", &empty), HC_OK);
    ck_assert(empty);
    ck_assert_int_eq(hc__pubq_push(&q, c, HC_INVAL_KEY, "b \"q\\", &empty), HC_OK);
    ck_assert(!empty);
    hc__pubq_push(&q, c, HC_INVAL_TAG, "t", NULL);
    hc__pubq_push(&q, c, HC_INVAL_FLUSH, NULL, NULL);
    hc__pubq_push(&q, c, HC_INVAL_FLUSH, "ignored", NULL);
    hc__pubq_push(&q, c, HC_INVAL_KEY, "", NULL); /* empty key: a flush */
    uint64_t seq = 0;
    ck_assert_int_eq(hc__pubq_push_sync(&q, &seq, NULL), HC_OK);
    ck_assert_uint_eq(seq, 1);
    ck_assert_uint_eq(q.inval, 6);
    ck_assert(hc__pubq_has_work(&q));
    ck_assert_ptr_nonnull(hc__pubq_take(&q, 100, 1 << 20));
    ck_assert_uint_eq(q.inval, 0);
    ck_assert(!hc__pubq_has_work(&q));
    char *lit = encode(&q);
    ck_assert_str_eq(lit, "{\"hc1 n1 k a b%20\\\"q\\\\\",\"hc1 n1 t t\",\"hc1 n1 f\",\"hc1 n1 s e.1\"}");
    free(lit);
    ck_assert_uint_eq(hc__pubq_done(&q), 1);
    ck_assert_uint_eq(q.published, 6);
    ck_assert_uint_eq(cache_stat(c, 0), 6);
    ck_assert_ptr_null(q.inflight);
    hc__pubq_destroy(&q);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_full_queue_counts_a_failure_and_schedules_one_flush)
{
    hc_pubq q;
    hc__pubq_init(&q, 2);
    hc_cache *c = new_cache();
    ck_assert_int_eq(hc__pubq_push(&q, c, HC_INVAL_KEY, "a", NULL), HC_OK);
    ck_assert_int_eq(hc__pubq_push(&q, c, HC_INVAL_KEY, "b", NULL), HC_OK);
    ck_assert_int_eq(hc__pubq_push(&q, c, HC_INVAL_KEY, "c", NULL), HC_ERR_BUSY);
    ck_assert_int_eq(hc__pubq_push(&q, c, HC_INVAL_KEY, "d", NULL), HC_ERR_BUSY);
    uint64_t seq;
    ck_assert_int_eq(hc__pubq_push_sync(&q, &seq, NULL), HC_OK); /* syncs are not bounded */
    ck_assert_uint_eq(q.publish_failures, 2);
    ck_assert_uint_eq(cache_stat(c, 1), 2);
    ck_assert(q.need_flush);
    hc__pubq_take(&q, 100, 1 << 20);
    ck_assert(q.inflight_flush);
    ck_assert(!q.need_flush);
    ck_assert_uint_eq(q.flush_broadcasts, 1);
    char *lit = encode(&q);
    ck_assert_str_eq(lit, "{\"hc1 n1 f\",\"hc1 n1 k a b\",\"hc1 n1 s e.1\"}");
    free(lit);
    hc__pubq_done(&q);
    ck_assert_uint_eq(q.published, 2);
    hc__pubq_drop(&q, c); /* stopping: counted, no flush */
    ck_assert_uint_eq(q.publish_failures, 3);
    ck_assert(!q.need_flush);
    hc__pubq_destroy(&q);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_failed_batch_becomes_a_flush_and_keeps_its_sync_tokens_first)
{
    hc_pubq q;
    hc__pubq_init(&q, 100);
    hc_cache *c = new_cache();
    uint64_t s1, s2;
    hc__pubq_push(&q, c, HC_INVAL_KEY, "a", NULL);
    hc__pubq_push_sync(&q, &s1, NULL);
    hc__pubq_push(&q, c, HC_INVAL_TAG, "b", NULL);
    hc__pubq_take(&q, 3, 1 << 20); /* a, s1, b */
    hc__pubq_push_sync(&q, &s2, NULL);
    hc__pubq_fail_inflight(&q);
    ck_assert_uint_eq(q.publish_failures, 2);
    ck_assert_uint_eq(cache_stat(c, 1), 2);
    ck_assert(q.need_flush);
    ck_assert_ptr_null(q.inflight);
    /* s1 back at the head, before s2 */
    ck_assert_int_eq(q.head->op, HC_WIRE_SYNC);
    ck_assert_uint_eq(q.head->sync_seq, s1);
    ck_assert_uint_eq(q.head->next->sync_seq, s2);
    ck_assert_ptr_eq(q.tail, q.head->next);
    hc__pubq_take(&q, 100, 1 << 20);
    char *lit = encode(&q);
    ck_assert_str_eq(lit, "{\"hc1 n1 f\",\"hc1 n1 s e.1\",\"hc1 n1 s e.2\"}");
    free(lit);
    ck_assert_uint_eq(hc__pubq_done(&q), 2);
    hc__pubq_destroy(&q);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_take_respects_item_and_byte_limits)
{
    hc_pubq q;
    hc__pubq_init(&q, 100);
    for (int i = 0; i < 10; i++) hc__pubq_push(&q, NULL, HC_INVAL_KEY, "key", NULL);
    hc__pubq_take(&q, 4, 1 << 20);
    ck_assert_uint_eq(q.inval, 6);
    hc__pubq_done(&q);
    hc__pubq_take(&q, 100, 1); /* at least one item always goes */
    ck_assert_uint_eq(q.inval, 5);
    hc__pubq_done(&q);
    ck_assert_uint_eq(q.published, 5);
    hc__pubq_clear(&q);
    ck_assert_uint_eq(q.publish_failures, 5);
    ck_assert(!hc__pubq_has_work(&q));
}
END_TEST

START_TEST(test_forgotten_cache_is_not_counted)
{
    hc_pubq q;
    hc__pubq_init(&q, 100);
    hc_cache *c = new_cache();
    hc__pubq_push(&q, c, HC_INVAL_KEY, "a", NULL);
    hc__pubq_push(&q, c, HC_INVAL_KEY, "b", NULL);
    hc__pubq_take(&q, 1, 1 << 20);
    hc__pubq_forget(&q, c);
    hc__pubq_done(&q);
    hc__pubq_clear(&q);
    ck_assert_uint_eq(q.published, 1);
    ck_assert_uint_eq(q.publish_failures, 1);
    ck_assert_uint_eq(cache_stat(c, 0), 0);
    ck_assert_uint_eq(cache_stat(c, 1), 0);
    hc_cache_free(c);
}
END_TEST

START_TEST(test_long_runs_split_and_oversized_args_become_a_flush)
{
    hc_pubq q;
    hc__pubq_init(&q, 1000);
    char key[101];
    memset(key, 'k', 100);
    key[100] = '\0';
    for (int i = 0; i < 200; i++) hc__pubq_push(&q, NULL, HC_INVAL_KEY, key, NULL); /* 20 KB */
    char *big = malloc(9000);
    memset(big, 'x', 8999);
    big[8999] = '\0';
    hc__pubq_push(&q, NULL, HC_INVAL_TAG, big, NULL);
    free(big);
    hc__pubq_take(&q, 1000, 1 << 20);
    char *lit = encode(&q);
    size_t payloads = 0;
    for (char *p = lit; (p = strstr(p, "\"hc1 ")) != NULL; p++) payloads++;
    ck_assert_uint_ge(payloads, 4); /* 20 KB of keys do not fit in two 7999-byte payloads */
    ck_assert_ptr_nonnull(strstr(lit, "\"hc1 n1 f\"}"));
    free(lit);
    hc__pubq_done(&q);
    hc__pubq_destroy(&q);
}
END_TEST

START_TEST(test_every_allocation_failure_is_reported_and_leaks_nothing)
{
    for (long n = 0; n < 40; n++) {
        hc_pubq q;
        hc__pubq_init(&q, 100);
        hc__alloc_fail_after(n);
        hc_status a = hc__pubq_push(&q, NULL, HC_INVAL_KEY, "a", NULL);
        uint64_t seq = 0;
        hc_status s = hc__pubq_push_sync(&q, &seq, NULL);
        hc__pubq_take(&q, 100, 1 << 20);
        char *lit = NULL;
        hc_status e = hc__pubq_encode(q.inflight, q.inflight_flush, "n1", "e", &lit);
        long used = hc__alloc_count();
        hc__alloc_fail_after(-1);
        ck_assert(a == HC_OK || a == HC_ERR_NOMEM);
        if (a == HC_ERR_NOMEM) {
            ck_assert(q.inflight_flush); /* a lost publish becomes a flush broadcast */
            ck_assert_uint_eq(q.publish_failures, 1);
        }
        ck_assert(s == HC_OK || s == HC_ERR_NOMEM);
        ck_assert(e == HC_OK || e == HC_ERR_NOMEM);
        ck_assert(e == HC_OK ? lit != NULL : lit == NULL);
        if (e != HC_OK) hc__pubq_fail_inflight(&q);
        free(lit);
        hc__pubq_clear(&q);
        if (used <= n) {
            ck_assert(a == HC_OK && s == HC_OK && e == HC_OK);
            return;
        }
    }
    ck_abort_msg("allocation count did not converge");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pubq");
    TCase *t = tcase_create("queue");
    tcase_add_test(t, test_batch_is_encoded_in_order_with_runs_and_collapsed_flushes);
    tcase_add_test(t, test_full_queue_counts_a_failure_and_schedules_one_flush);
    tcase_add_test(t, test_failed_batch_becomes_a_flush_and_keeps_its_sync_tokens_first);
    tcase_add_test(t, test_take_respects_item_and_byte_limits);
    tcase_add_test(t, test_forgotten_cache_is_not_counted);
    tcase_add_test(t, test_long_runs_split_and_oversized_args_become_a_flush);
    tcase_add_test(t, test_every_allocation_failure_is_reported_and_leaks_nothing);
    suite_add_tcase(s, t);
    return hc_test_run_suite(s);
}
