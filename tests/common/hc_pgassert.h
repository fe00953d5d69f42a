/*
 * hc_pgassert.h - Check assertion shared by the adapter suites: two
 * PGresults carry the same columns, rows, values and NULLs.
 */
#ifndef HC_PGASSERT_H
#define HC_PGASSERT_H

#include <check.h>
#include <string.h>

#include <libpq-fe.h>

/* b (a rebuilt or cached result) equals a in everything a query returns. */
static inline void hc_assert_same_result(const PGresult *a, const PGresult *b)
{
    ck_assert_int_eq(PQresultStatus(b), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(a), PQntuples(b));
    ck_assert_int_eq(PQnfields(a), PQnfields(b));
    ck_assert_int_eq(PQbinaryTuples(a), PQbinaryTuples(b));
    for (int f = 0; f < PQnfields(a); f++) {
        ck_assert_str_eq(PQfname(a, f), PQfname(b, f));
        ck_assert_uint_eq(PQftable(a, f), PQftable(b, f));
        ck_assert_int_eq(PQftablecol(a, f), PQftablecol(b, f));
        ck_assert_int_eq(PQfformat(a, f), PQfformat(b, f));
        ck_assert_uint_eq(PQftype(a, f), PQftype(b, f));
        ck_assert_int_eq(PQfsize(a, f), PQfsize(b, f));
        ck_assert_int_eq(PQfmod(a, f), PQfmod(b, f));
    }
    for (int t = 0; t < PQntuples(a); t++)
        for (int f = 0; f < PQnfields(a); f++) {
            ck_assert_int_eq(PQgetisnull(a, t, f), PQgetisnull(b, t, f));
            ck_assert_int_eq(PQgetlength(a, t, f), PQgetlength(b, t, f));
            ck_assert(memcmp(PQgetvalue(a, t, f), PQgetvalue(b, t, f),
                             (size_t)PQgetlength(a, t, f)) == 0);
        }
}

#endif
