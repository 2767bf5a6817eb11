/*
 * state/timers.c: the timer service of one domain (event or processing
 * time) of one operator instance.
 *
 * Design: a binary min-heap of timer nodes ordered by (time, key group,
 * key bytes, namespace bytes), so that pop order is total and the same on
 * every run, plus a dedup index (open addressing over the same nodes, keyed
 * by hash of (time, key, ns)) that makes register idempotent and lets
 * delete find a node in O(1). Delete is lazy: the node leaves the index at
 * once and the heap when it reaches the top. A heap slot holds the time,
 * key group and key prefix, so sifting compares without touching nodes in
 * the common case. One block per timer, recycled through a free list: the
 * node holds copies of its key and namespace. Windows register one timer per (key, window) and
 * re-register it for every record, so the common call is a dedup hit: one
 * hash and one probe, no allocation.
 *
 * @thread task.
 */
#include "state/state_int.h"

#include <xxhash.h>

struct rn__tnode {
    int64_t time;
    uint64_t hash;    /* of (time, key, ns): the dedup index */
    uint64_t keyhash; /* of the key, handed back with it on pop */
    uint32_t kg;
    uint32_t keylen;
    uint32_t nslen;
    bool deleted; /* still in the heap, no longer in the index */
    uint8_t data[];   /* key | ns */
};

static inline size_t
node_size(const rn__tnode_t *n)
{
    return sizeof(*n) + n->keylen + n->nslen;
}

static inline uint64_t
thash(const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen)
{
    return XXH3_64bits_withSeed(ns, nslen, k->keyhash ^ rn__state_mix((uint64_t)time));
}

static inline bool
tmatch(const rn__tnode_t *n, const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen)
{
    return n->time == time && n->keylen == k->keylen && n->nslen == nslen &&
           memcmp(n->data, k->key, k->keylen) == 0 &&
           (nslen == 0 || memcmp(n->data + n->keylen, ns, nslen) == 0);
}

static inline int
bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define from_be64(x) (x)
#else
#define from_be64(x) __builtin_bswap64(x)
#endif

static inline uint64_t
key_prefix(const uint8_t *key, size_t len)
{
    uint8_t b[8] = {0};
    uint64_t v;
    memcpy(b, key, len < 8 ? len : 8);
    memcpy(&v, b, 8);
    return from_be64(v);
}

/* The pop order: time, key group, key bytes, namespace bytes. The key's
 * zero-padded prefix orders as its bytes when the prefixes differ. */
static inline bool
tless(const rn__theap_t *a, const rn__theap_t *b)
{
    if (a->time != b->time)
        return a->time < b->time;
    if (a->kg != b->kg)
        return a->kg < b->kg;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix;
    const rn__tnode_t *x = a->node, *y = b->node;
    int c = bytes_cmp(x->data, x->keylen, y->data, y->keylen);
    if (c == 0)
        c = bytes_cmp(x->data + x->keylen, x->nslen, y->data + y->keylen, y->nslen);
    return c < 0;
}

void
rn__timers_init(rn__timers_t *tm)
{
    memset(tm, 0, sizeof(*tm));
}

void
rn__timers_fini(rn__timers_t *tm)
{
    if (tm == NULL)
        return;
    /* Every node, deleted or not, is in the heap exactly once. */
    for (uint32_t i = 0; i < tm->n; i++)
        rn_free(tm->heap[i].node);
    rn_free(tm->heap);
    rn_free(tm->tab);
    rn__fc_fini(&tm->fc);
    memset(tm, 0, sizeof(*tm));
}

/* ---- heap ---- */

static void
sift_up(rn__timers_t *tm, uint32_t i)
{
    rn__theap_t x = tm->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!tless(&x, &tm->heap[parent]))
            break;
        tm->heap[i] = tm->heap[parent];
        i = parent;
    }
    tm->heap[i] = x;
}

static void
sift_down(rn__timers_t *tm, uint32_t i)
{
    rn__theap_t x = tm->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= tm->n)
            break;
        if (c + 1 < tm->n && tless(&tm->heap[c + 1], &tm->heap[c]))
            c++;
        if (!tless(&tm->heap[c], &x))
            break;
        tm->heap[i] = tm->heap[c];
        i = c;
    }
    tm->heap[i] = x;
}

/* Removes the heap's top. */
static void
heap_pop(rn__timers_t *tm)
{
    tm->heap[0] = tm->heap[--tm->n];
    if (tm->n > 1)
        sift_down(tm, 0);
}

/* ---- dedup index ---- */

static size_t
tab_find(const rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns,
         size_t nslen, uint64_t h)
{
    size_t mask = tm->tabcap - 1;
    size_t i = h & mask;
    for (;;) {
        const rn__tnode_t *n = tm->tab[i];
        if (n == NULL || (n->hash == h && tmatch(n, k, time, ns, nslen)))
            return i;
        i = (i + 1) & mask;
    }
}

static void
tab_put(rn__tnode_t **tab, size_t cap, rn__tnode_t *n)
{
    size_t mask = cap - 1;
    size_t i = n->hash & mask;
    while (tab[i] != NULL)
        i = (i + 1) & mask;
    tab[i] = n;
}

static rn_code_t
tab_grow(rn__timers_t *tm, rn_error_t *err)
{
    size_t ncap = tm->tabcap ? tm->tabcap * 2 : 64;
    rn__tnode_t **nt = rn_calloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory growing the timer index to %zu", ncap);
    for (size_t i = 0; i < tm->tabcap; i++)
        if (tm->tab[i] != NULL)
            tab_put(nt, ncap, tm->tab[i]);
    tm->bytes += (ncap - tm->tabcap) * sizeof(*nt);
    rn_free(tm->tab);
    tm->tab = nt;
    tm->tabcap = ncap;
    return RN_OK;
}

/* Removes node n from the index (backward-shift deletion). */
static void
tab_remove(rn__timers_t *tm, const rn__tnode_t *n)
{
    size_t mask = tm->tabcap - 1;
    size_t i = n->hash & mask;
    while (tm->tab[i] != n)
        i = (i + 1) & mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (tm->tab[j] == NULL)
            break;
        size_t home = tm->tab[j]->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tm->tab[i] = tm->tab[j];
            i = j;
        }
    }
    tm->tab[i] = NULL;
}

static void
node_free(rn__timers_t *tm, rn__tnode_t *n)
{
    size_t size = node_size(n);
    tm->bytes -= rn__fc_round(size);
    rn__fc_free(&tm->fc, n, size);
}

/* Drops deleted timers from the top of the heap. */
static void
drop_deleted(rn__timers_t *tm)
{
    while (tm->n > 0 && tm->heap[0].node->deleted) {
        rn__tnode_t *n = tm->heap[0].node;
        heap_pop(tm);
        node_free(tm, n);
    }
}

/* ---- the service ---- */

rn_code_t
rn__timers_add(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen,
               rn_error_t *err)
{
    uint64_t h = thash(k, time, ns, nslen);
    if (tm->tabcap > 0 && tm->tab[tab_find(tm, k, time, ns, nslen, h)] != NULL)
        return RN_OK;
    if ((tm->live + 1) * (size_t)4 > tm->tabcap * 3) {
        rn_code_t rc = tab_grow(tm, err);
        if (rc != RN_OK)
            return rc;
    }
    if (tm->n == tm->cap) {
        uint32_t ncap = tm->cap ? tm->cap * 2 : 64;
        rn__theap_t *nh = rn_realloc(tm->heap, ncap * sizeof(*nh));
        if (nh == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory for %u timers", ncap);
        tm->bytes += (ncap - tm->cap) * sizeof(*nh);
        tm->heap = nh;
        tm->cap = ncap;
    }
    size_t size = sizeof(rn__tnode_t) + k->keylen + nslen;
    rn__tnode_t *n = rn__fc_alloc(&tm->fc, size);
    if (n == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for a timer");
    n->time = time;
    n->hash = h;
    n->keyhash = k->keyhash;
    n->kg = k->kg;
    n->keylen = k->keylen;
    n->nslen = (uint32_t)nslen;
    n->deleted = false;
    memcpy(n->data, k->key, k->keylen);
    if (nslen)
        memcpy(n->data + k->keylen, ns, nslen);
    tm->bytes += rn__fc_round(size);
    tab_put(tm->tab, tm->tabcap, n);
    tm->live++;
    rn__theap_t *e = &tm->heap[tm->n];
    e->time = time;
    e->prefix = key_prefix(k->key, k->keylen);
    e->kg = k->kg;
    e->pad = 0;
    e->node = n;
    sift_up(tm, tm->n++);
    return RN_OK;
}

void
rn__timers_del(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen)
{
    if (tm->live == 0)
        return;
    uint64_t h = thash(k, time, ns, nslen);
    rn__tnode_t *n = tm->tab[tab_find(tm, k, time, ns, nslen, h)];
    if (n == NULL)
        return;
    /* Lazy: the node leaves the index now and the heap when it reaches the
     * top, so that heap slots need not track positions. */
    tab_remove(tm, n);
    n->deleted = true;
    tm->live--;
    drop_deleted(tm);
}

rn_code_t
rn__timers_pop(rn__timers_t *tm, rn_state_t *st, int64_t upto, rn_timer_t *t)
{
    drop_deleted(tm);
    if (tm->n == 0 || tm->heap[0].time > upto)
        return RN_ENOTFOUND;
    rn__tnode_t *n = tm->heap[0].node;
    heap_pop(tm);
    tab_remove(tm, n);
    tm->live--;
    rn__state_set_key_hashed(st, n->data, n->keylen, n->kg, n->keyhash);
    t->time = n->time;
    t->nslen = n->nslen;
    if (n->nslen)
        memcpy(t->ns, n->data + n->keylen, n->nslen);
    node_free(tm, n);
    return RN_OK;
}

int64_t
rn__timers_next(rn__timers_t *tm)
{
    drop_deleted(tm);
    return tm->n > 0 ? tm->heap[0].time : INT64_MAX;
}
