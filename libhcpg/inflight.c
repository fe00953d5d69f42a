/*
 * inflight.c - single-flight records: per-slot lists of flights, joined by
 * key, detached by invalidations.  Locking rules are in inflight.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "inflight.h"

struct hc_flight {
    hc_flight *next; /* slot list, while attached */
    bool attached;
    bool done;
    unsigned refs; /* leader + waiting joiners; under the slot mutex */
    pthread_t leader;
    pthread_cond_t cond;
    hc_status status;
    hc_value *value;
    char *message; /* error message, NULL when none/OOM */
    uint64_t hash;
    size_t ntags;
    uint64_t *tag_hashes; /* points into this allocation */
    size_t klen;
    char key[];
};

typedef struct slot {
    pthread_mutex_t mu;
    hc_flight *head;
} __attribute__((aligned(64))) slot;

struct hc_inflight {
    unsigned nslots;
    slot *slots;
    void *slots_mem;
};

static slot *slot_of(hc_inflight *f, uint64_t hash)
{
    return &f->slots[hash & (f->nslots - 1)];
}

hc_inflight *hc__inflight_new(unsigned slots)
{
    hc_inflight *f = hc__calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->nslots = slots;
    f->slots_mem = hc__malloc(sizeof(slot) * slots + 63);
    if (f->slots_mem == NULL) {
        free(f);
        return NULL;
    }
    f->slots = (slot *)(((uintptr_t)f->slots_mem + 63) & ~(uintptr_t)63);
    for (unsigned i = 0; i < slots; i++) {
        pthread_mutex_init(&f->slots[i].mu, NULL);
        f->slots[i].head = NULL;
    }
    return f;
}

void hc__inflight_free(hc_inflight *f)
{
    if (f == NULL)
        return;
    for (unsigned i = 0; i < f->nslots; i++)
        pthread_mutex_destroy(&f->slots[i].mu);
    free(f->slots_mem);
    free(f);
}

static void flight_unref(hc_flight *fl)
{
    if (--fl->refs > 0)
        return;
    pthread_cond_destroy(&fl->cond);
    hc_value_release(fl->value);
    free(fl->message);
    free(fl);
}

/* Remove fl from its slot list (slot mutex held). */
static void do_detach(slot *sl, hc_flight *fl)
{
    for (hc_flight **pp = &sl->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == fl) {
            *pp = fl->next;
            break;
        }
    }
    fl->attached = false;
    fl->next = NULL;
}

static hc_flight *flight_new(const char *key, size_t klen, uint64_t hash,
                             const uint64_t *tag_hashes, size_t ntags)
{
    /* tag hashes first keeps them aligned; the key follows */
    size_t tag_bytes = ntags * sizeof(uint64_t);
    hc_flight *fl = hc__malloc(sizeof *fl + tag_bytes + klen + 1);
    if (fl == NULL)
        return NULL;
    memset(fl, 0, sizeof *fl);
    if (pthread_cond_init(&fl->cond, NULL) != 0) {
        free(fl);
        return NULL;
    }
    fl->attached = true;
    fl->refs = 1;
    fl->leader = pthread_self();
    fl->hash = hash;
    fl->ntags = ntags;
    fl->tag_hashes = (uint64_t *)(void *)fl->key;
    if (ntags > 0)
        memcpy(fl->tag_hashes, tag_hashes, tag_bytes);
    fl->klen = klen;
    memcpy(fl->key + tag_bytes, key, klen);
    fl->key[tag_bytes + klen] = '\0';
    return fl;
}

static const char *flight_key(const hc_flight *fl)
{
    return fl->key + fl->ntags * sizeof(uint64_t);
}

static hc_flight *do_find(slot *sl, const char *key, size_t klen, uint64_t hash)
{
    for (hc_flight *fl = sl->head; fl != NULL; fl = fl->next)
        if (fl->hash == hash && fl->klen == klen && memcmp(flight_key(fl), key, klen) == 0)
            return fl;
    return NULL;
}

hc_status hc__inflight_begin(hc_inflight *f, const char *key, size_t klen, uint64_t hash,
                             const uint64_t *tag_hashes, size_t ntags,
                             hc_inflight_recheck_fn recheck, void *rctx, hc_flight_role *role,
                             hc_flight **out, hc_value **hit)
{
    slot *sl = slot_of(f, hash);
    hc_status st = HC_OK;
    *out = NULL;
    *hit = NULL;
    pthread_mutex_lock(&sl->mu);
    hc_flight *fl = do_find(sl, key, klen, hash);
    if (fl != NULL && pthread_equal(fl->leader, pthread_self())) {
        st = HC_ERR_STATE; /* joining our own flight would wait forever */
        goto unlock;
    }
    if (fl != NULL) {
        fl->refs++;
        *role = HC_FLIGHT_JOINER;
        *out = fl;
        goto unlock;
    }
    /* A leader stores before it detaches, so a value stored by a flight that
     * just finished is visible here and no second load starts. */
    if (recheck != NULL && (*hit = recheck(rctx)) != NULL) {
        *role = HC_FLIGHT_HIT;
        goto unlock;
    }
    fl = flight_new(key, klen, hash, tag_hashes, ntags);
    if (fl == NULL) {
        st = HC_ERR_NOMEM;
        goto unlock;
    }
    fl->refs = 1;
    fl->next = sl->head;
    sl->head = fl;
    *role = HC_FLIGHT_LEADER;
    *out = fl;
unlock:
    pthread_mutex_unlock(&sl->mu);
    return st;
}

hc_status hc__inflight_wait(hc_inflight *f, hc_flight *fl, hc_value **out, hc_error *err)
{
    slot *sl = slot_of(f, fl->hash);
    pthread_mutex_lock(&sl->mu);
    while (!fl->done)
        pthread_cond_wait(&fl->cond, &sl->mu);
    hc_status st = fl->status;
    *out = hc_value_retain(fl->value);
    if (st != HC_OK)
        hc_error_set(err, st, "%s", fl->message != NULL ? fl->message : hc_status_str(st));
    flight_unref(fl);
    pthread_mutex_unlock(&sl->mu);
    return st;
}

void hc__inflight_finish(hc_inflight *f, hc_flight *fl, hc_status st, hc_value *v,
                         const hc_error *err)
{
    /* copied before the lock: allocation may be slow, and failure only loses the text */
    char *msg = (st != HC_OK && err != NULL) ? hc__strdup(err->message) : NULL;
    slot *sl = slot_of(f, fl->hash);
    pthread_mutex_lock(&sl->mu);
    if (fl->attached)
        do_detach(sl, fl);
    fl->done = true;
    fl->status = st;
    fl->value = st == HC_OK ? hc_value_retain(v) : NULL;
    fl->message = msg;
    pthread_cond_broadcast(&fl->cond);
    flight_unref(fl);
    pthread_mutex_unlock(&sl->mu);
}

void hc__inflight_detach_key(hc_inflight *f, const char *key, size_t klen, uint64_t hash)
{
    slot *sl = slot_of(f, hash);
    pthread_mutex_lock(&sl->mu);
    hc_flight *fl = do_find(sl, key, klen, hash);
    if (fl != NULL)
        do_detach(sl, fl);
    pthread_mutex_unlock(&sl->mu);
}

static bool has_tag(const hc_flight *fl, uint64_t tag_hash)
{
    for (size_t i = 0; i < fl->ntags; i++)
        if (fl->tag_hashes[i] == tag_hash)
            return true;
    return false;
}

/* Detach every flight with the tag (all flights when all is true). */
static void detach_matching(hc_inflight *f, bool all, uint64_t tag_hash)
{
    for (unsigned i = 0; i < f->nslots; i++) {
        slot *sl = &f->slots[i];
        pthread_mutex_lock(&sl->mu);
        hc_flight **pp = &sl->head;
        while (*pp != NULL) {
            hc_flight *fl = *pp;
            if (all || has_tag(fl, tag_hash)) {
                *pp = fl->next;
                fl->attached = false;
                fl->next = NULL;
            } else {
                pp = &fl->next;
            }
        }
        pthread_mutex_unlock(&sl->mu);
    }
}

void hc__inflight_detach_tag(hc_inflight *f, uint64_t tag_hash)
{
    detach_matching(f, false, tag_hash);
}

void hc__inflight_detach_all(hc_inflight *f)
{
    detach_matching(f, true, 0);
}
