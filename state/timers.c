/*
 * state/timers.c: the timer service of one domain (event or processing
 * time) of one operator instance.
 *
 * Design: timers are bucketed by time. Windows make most timers share a
 * few times (every key's window ends at the same instant), so a bucket per
 * distinct time, in a small binary min-heap of buckets, replaces a heap of
 * all timers: registering appends to the bucket (no sifting), and the
 * first pop of a bucket sorts it once, by (key group, key bytes, namespace
 * bytes), after which pops hand out its timers in order. A timer added to
 * a bucket that is being popped is inserted in place (binary search after
 * the cursor), so the pop order stays (time, key group, key, namespace)
 * as state.h promises. Slots carry the key group and the key's first 12
 * bytes, so that sorting compares nodes only when those tie.
 *
 * A dedup index (open addressing keyed by a hash of (time, key, ns), the
 * hash kept in the slot) makes register idempotent and lets delete find a
 * timer in O(1). Delete is lazy: the timer leaves the index and its
 * bucket's live count at once and its bucket's slots when popping passes
 * it; a bucket whose live count drops to 0 is dropped at once, so that
 * every bucket in the heap holds a live timer and next() is the top's time.
 * Buckets are found by time through a small hash (and the last one used,
 * which is the common case), and recycled with their slot arrays.
 *
 * One block per timer (the node: copies of key and namespace), recycled
 * through a free list; its dedup hash lives in its slots (index and
 * bucket) only, which keeps a node of a short key and a window in 64
 * bytes.
 *
 * @thread task.
 */
#include "state/state_int.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

struct rn__tnode {
    int64_t time;
    union {
        uint64_t keyhash;       /* of the key, handed back with it on pop */
        rn__tnode_t *held_next; /* freed while pinned (rn__timers_pin) */
    } u;
    uint32_t kg;
    uint32_t keylen;
    uint32_t nslen;
    bool deleted;   /* still in its bucket's slots, no longer in the index */
    uint8_t data[]; /* key | ns */
};

#define NO_BUCKET UINT32_MAX

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

/* The big-endian value of key bytes [off, off + 8), zero-padded. A short
 * tail is assembled in a register: bytes stored to a buffer and loaded as
 * a word stall store forwarding. */
static inline uint64_t
key_word(const uint8_t *key, size_t len, size_t off)
{
    uint64_t v = 0;
    if (len >= off + 8) {
        memcpy(&v, key + off, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        return v;
#else
        return __builtin_bswap64(v);
#endif
    }
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (off + i < len ? key[off + i] : 0);
    return v;
}

/* The order within a bucket: key group, key bytes, namespace bytes. The
 * zero-padded prefixes order as the bytes do when they differ. */
static inline bool
sless(const rn__tslot_t *a, const rn__tslot_t *b)
{
    if (a->kg != b->kg)
        return a->kg < b->kg;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix;
    if (a->prefix2 != b->prefix2)
        return a->prefix2 < b->prefix2;
    const rn__tnode_t *x = a->node, *y = b->node;
    int c = bytes_cmp(x->data, x->keylen, y->data, y->keylen);
    if (c == 0)
        c = bytes_cmp(x->data + x->keylen, x->nslen, y->data + y->keylen, y->nslen);
    return c < 0;
}

/* ---- sorting a bucket: merge sort over runs sorted by insertion ---- */

static void
insertion_sort(rn__tslot_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        rn__tslot_t x = a[i];
        size_t j = i;
        while (j > 0 && sless(&x, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void
merge(const rn__tslot_t *a, size_t na, const rn__tslot_t *b, size_t nb, rn__tslot_t *out)
{
    size_t i = 0, j = 0, o = 0;
    while (i < na && j < nb)
        out[o++] = sless(&b[j], &a[i]) ? b[j++] : a[i++];
    while (i < na)
        out[o++] = a[i++];
    while (j < nb)
        out[o++] = b[j++];
}

/* Sorts a[0..n) with tmp (n slots) as the other buffer. */
static void
sort_slots(rn__tslot_t *a, size_t n, rn__tslot_t *tmp)
{
    enum { RUN = 16 };
    for (size_t i = 0; i < n; i += RUN)
        insertion_sort(a + i, n - i < RUN ? n - i : RUN);
    rn__tslot_t *src = a, *dst = tmp;
    for (size_t w = RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n;
            size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            merge(src + lo, mid - lo, src + mid, hi - mid, dst + lo);
        }
        rn__tslot_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
}

/* Sorts a[0..n) by key group first with a counting sort (key groups are
 * few, 128 by default, and spread evenly), then each group, small, by the
 * rest. @returns false, a untouched, when the key groups span too wide a
 * range for it or the counts do not fit in memory: merge sort then. */
static bool
kg_sort(rn__timers_t *tm, rn__tslot_t *a, size_t n)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = a[i].kg < lo ? a[i].kg : lo;
        hi = a[i].kg > hi ? a[i].kg : hi;
    }
    size_t range = (size_t)hi - lo + 1;
    if (n < 32 || range > 4 * n + 1024)
        return false;
    if (range + 1 > tm->countcap) {
        uint32_t *nc = rn_realloc(tm->counts, (range + 1) * sizeof(*nc));
        if (nc == NULL)
            return false;
        tm->bytes += (range + 1 - tm->countcap) * sizeof(*nc);
        tm->counts = nc;
        tm->countcap = range + 1;
    }
    uint32_t *cnt = tm->counts;
    rn__tslot_t *tmp = tm->scratch;
    memset(cnt, 0, (range + 1) * sizeof(*cnt));
    for (size_t i = 0; i < n; i++)
        cnt[a[i].kg - lo + 1]++;
    for (size_t r = 1; r <= range; r++)
        cnt[r] += cnt[r - 1];
    /* cnt[r]: where group r starts; after the scatter, where it ends. */
    for (size_t i = 0; i < n; i++)
        tmp[cnt[a[i].kg - lo]++] = a[i];
    size_t start = 0;
    for (size_t r = 0; r < range; r++) {
        size_t end = cnt[r];
        /* a is free now: the buffer for the rare large group. */
        if (end - start > 32)
            sort_slots(tmp + start, end - start, a + start);
        else if (end - start > 1)
            insertion_sort(tmp + start, end - start);
        start = end;
    }
    memcpy(a, tmp, n * sizeof(*a));
    return true;
}

/* ---- lifecycle ---- */

void
rn__timers_init(rn__timers_t *tm)
{
    memset(tm, 0, sizeof(*tm));
    tm->last = NO_BUCKET;
}

static void
node_free(rn__timers_t *tm, rn__tnode_t *n)
{
    size_t size = node_size(n);
    tm->bytes -= rn__fc_round(size);
    /* A pinned node may be being read by a snapshot's writer: kept, and
     * untouched but for the link (the writer never reads keyhash). */
    if (RN_UNLIKELY(tm->pinned)) {
        if (tm->nheld == tm->capheld) {
            size_t ncap = tm->capheld ? tm->capheld * 2 : 4096;
            struct rn__theld *nv = rn_realloc(tm->heldv, ncap * sizeof(*nv));
            if (nv == NULL) {
                n->u.held_next = tm->held;
                tm->held = n;
                return;
            }
            tm->heldv = nv;
            tm->capheld = ncap;
        }
        tm->heldv[tm->nheld].n = n;
        tm->heldv[tm->nheld++].cls = rn__fc_class(size);
        return;
    }
    rn__fc_free(&tm->fc, n, size);
}

void
rn__timers_fini(rn__timers_t *tm)
{
    if (tm == NULL)
        return;
    /* Every node not yet popped, deleted or not, is in its bucket once. */
    for (uint32_t i = 0; i < tm->nbk; i++) {
        rn__tbucket_t *b = &tm->bk[i];
        for (uint32_t j = b->next; j < b->n; j++)
            rn_free(b->slots[j].node);
        rn_free(b->slots);
    }
    rn_free(tm->bk);
    rn_free(tm->bheap);
    rn_free(tm->bfree);
    rn_free(tm->btab);
    rn_free(tm->tab);
    rn_free(tm->scratch);
    rn_free(tm->counts);
    tm->pinned = false;
    rn__timers_unpin(tm);
    rn_free(tm->heldv);
    rn__fc_fini(&tm->fc);
    memset(tm, 0, sizeof(*tm));
    tm->last = NO_BUCKET;
}

/* ---- the bucket heap ---- */

static inline void
bheap_set(rn__timers_t *tm, uint32_t pos, uint32_t b)
{
    tm->bheap[pos] = b;
    tm->bk[b].hpos = pos;
}

static void
bheap_up(rn__timers_t *tm, uint32_t i)
{
    uint32_t x = tm->bheap[i];
    int64_t t = tm->bk[x].time;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (t >= tm->bk[tm->bheap[parent]].time)
            break;
        bheap_set(tm, i, tm->bheap[parent]);
        i = parent;
    }
    bheap_set(tm, i, x);
}

static void
bheap_down(rn__timers_t *tm, uint32_t i)
{
    uint32_t x = tm->bheap[i];
    int64_t t = tm->bk[x].time;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= tm->nheap)
            break;
        if (c + 1 < tm->nheap && tm->bk[tm->bheap[c + 1]].time < tm->bk[tm->bheap[c]].time)
            c++;
        if (tm->bk[tm->bheap[c]].time >= t)
            break;
        bheap_set(tm, i, tm->bheap[c]);
        i = c;
    }
    bheap_set(tm, i, x);
}

/* ---- time -> bucket ---- */

static inline size_t
btab_home(const rn__timers_t *tm, int64_t time)
{
    return rn__state_mix((uint64_t)time) & (tm->btabcap - 1);
}

/* @returns the btab position of time's bucket, or of the empty slot where
 * it would go. */
static size_t
btab_find(const rn__timers_t *tm, int64_t time)
{
    size_t mask = tm->btabcap - 1;
    size_t i = btab_home(tm, time);
    while (tm->btab[i] != 0 && tm->bk[tm->btab[i] - 1].time != time)
        i = (i + 1) & mask;
    return i;
}

static rn_code_t
btab_grow(rn__timers_t *tm, rn_error_t *err)
{
    size_t ocap = tm->btabcap, ncap = ocap ? ocap * 2 : 16;
    uint32_t *nt = rn_zalloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for %zu timer times", ncap);
    uint32_t *old = tm->btab;
    tm->btab = nt;
    tm->btabcap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i] != 0)
            tm->btab[btab_find(tm, tm->bk[old[i] - 1].time)] = old[i];
    tm->bytes += (ncap - ocap) * sizeof(*nt);
    rn_free(old);
    return RN_OK;
}

/* Removes bucket b from btab (backward-shift deletion). */
static void
btab_remove(rn__timers_t *tm, uint32_t b)
{
    size_t mask = tm->btabcap - 1;
    size_t i = btab_find(tm, tm->bk[b].time);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (tm->btab[j] == 0)
            break;
        size_t home = btab_home(tm, tm->bk[tm->btab[j] - 1].time);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tm->btab[i] = tm->btab[j];
            i = j;
        }
    }
    tm->btab[i] = 0;
}

/* @returns the bucket of time, or NO_BUCKET. */
static inline uint32_t
bucket_find(rn__timers_t *tm, int64_t time)
{
    if (tm->last != NO_BUCKET && tm->bk[tm->last].time == time)
        return tm->last;
    if (tm->nheap == 0)
        return NO_BUCKET;
    uint32_t b = tm->btab[btab_find(tm, time)];
    if (b == 0)
        return NO_BUCKET;
    tm->last = b - 1;
    return b - 1;
}

/* Makes room for one more bucket in bk, bheap and bfree. */
static rn_code_t
bk_grow(rn__timers_t *tm, rn_error_t *err)
{
    uint32_t ncap = tm->capbk ? tm->capbk * 2 : 8;
    rn__tbucket_t *nb = rn_realloc(tm->bk, ncap * sizeof(*nb));
    if (nb == NULL)
        goto nomem;
    tm->bk = nb;
    uint32_t *nh = rn_realloc(tm->bheap, ncap * sizeof(*nh));
    if (nh == NULL)
        goto nomem;
    tm->bheap = nh;
    uint32_t *nf = rn_realloc(tm->bfree, ncap * sizeof(*nf));
    if (nf == NULL)
        goto nomem;
    tm->bfree = nf;
    tm->bytes += (ncap - tm->capbk) * (sizeof(*nb) + 2 * sizeof(uint32_t));
    tm->capbk = ncap;
    return RN_OK;
nomem:
    /* The arrays that did grow stay grown; capbk counts what all have. */
    return rn__errf(err, RN_ENOMEM, "out of memory for %u timer times", ncap);
}

/* Makes *b a new, empty bucket of time in the heap and btab. The caller
 * puts a timer in it or drops it. */
static rn_code_t
bucket_new(rn__timers_t *tm, int64_t time, uint32_t *out, rn_error_t *err)
{
    rn_code_t rc;
    if ((tm->nheap + 1) * (size_t)2 > tm->btabcap && (rc = btab_grow(tm, err)) != RN_OK)
        return rc;
    uint32_t b;
    if (tm->nfree > 0) {
        b = tm->bfree[--tm->nfree];
    } else {
        if (tm->nbk == tm->capbk && (rc = bk_grow(tm, err)) != RN_OK)
            return rc;
        b = tm->nbk++;
        tm->bk[b].slots = NULL;
        tm->bk[b].cap = 0;
    }
    rn__tbucket_t *bk = &tm->bk[b];
    bk->time = time;
    bk->n = bk->next = bk->live = 0;
    bk->sorted = false;
    tm->btab[btab_find(tm, time)] = b + 1;
    tm->bheap[tm->nheap] = b;
    bheap_up(tm, tm->nheap++);
    tm->last = b;
    *out = b;
    return RN_OK;
}

/* Takes bucket b out of the heap and btab, frees the nodes it still holds
 * (deleted ones: it has no live timer) and recycles it. */
static void
bucket_drop(rn__timers_t *tm, uint32_t b)
{
    rn__tbucket_t *bk = &tm->bk[b];
    rn_assert(bk->live == 0);
    for (uint32_t j = bk->next; j < bk->n; j++)
        node_free(tm, bk->slots[j].node);
    bk->n = bk->next = 0;
    btab_remove(tm, b);
    uint32_t pos = bk->hpos, lastb = tm->bheap[--tm->nheap];
    if (pos < tm->nheap) {
        bheap_set(tm, pos, lastb);
        bheap_down(tm, pos);
        bheap_up(tm, tm->bk[lastb].hpos);
    }
    bk->hpos = NO_BUCKET;
    tm->bfree[tm->nfree++] = b;
    if (tm->last == b)
        tm->last = NO_BUCKET;
}

/* Makes room for one more slot in bucket b, and as much in scratch. */
static rn_code_t
bucket_reserve(rn__timers_t *tm, uint32_t b, rn_error_t *err)
{
    rn__tbucket_t *bk = &tm->bk[b];
    if (bk->n == bk->cap) {
        if (bk->next > 0 && bk->next >= bk->n / 2) {
            /* Mostly popped: reuse the front rather than grow. */
            memmove(bk->slots, bk->slots + bk->next, (bk->n - bk->next) * sizeof(*bk->slots));
            bk->n -= bk->next;
            bk->next = 0;
        } else {
            uint32_t ncap = bk->cap ? bk->cap * 2 : 16;
            rn__tslot_t *ns = rn_realloc(bk->slots, ncap * sizeof(*ns));
            if (ns == NULL)
                return rn__errf(err, RN_ENOMEM, "out of memory for %u timers at one time", ncap);
            tm->bytes += (ncap - bk->cap) * sizeof(*ns);
            bk->slots = ns;
            bk->cap = ncap;
        }
    }
    if (bk->cap > tm->scratchcap) {
        rn__tslot_t *ns = rn_realloc(tm->scratch, bk->cap * sizeof(*ns));
        if (ns == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory for %u timers at one time", bk->cap);
        tm->bytes += (bk->cap - tm->scratchcap) * sizeof(*ns);
        tm->scratch = ns;
        tm->scratchcap = bk->cap;
    }
    return RN_OK;
}

/* Puts s into bucket b (room reserved): appended while the bucket is
 * unsorted, in order after the cursor once it pops. */
static void
bucket_put(rn__timers_t *tm, uint32_t b, const rn__tslot_t *s)
{
    rn__tbucket_t *bk = &tm->bk[b];
    uint32_t at = bk->n;
    if (bk->sorted) {
        uint32_t lo = bk->next, hi = bk->n;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (sless(s, &bk->slots[mid]))
                hi = mid;
            else
                lo = mid + 1;
        }
        at = lo;
        memmove(&bk->slots[at + 1], &bk->slots[at], (bk->n - at) * sizeof(*s));
    }
    bk->slots[at] = *s;
    bk->n++;
    bk->live++;
}

/* ---- dedup index ---- */

static size_t
tab_find(const rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns,
         size_t nslen, uint64_t h)
{
    size_t mask = tm->tabcap - 1;
    size_t i = h & mask;
    for (;;) {
        const rn__ttab_t *s = &tm->tab[i];
        if (s->node == NULL || (s->hash == h && tmatch(s->node, k, time, ns, nslen)))
            return i;
        i = (i + 1) & mask;
    }
}

static void
tab_put(rn__ttab_t *tab, size_t cap, uint64_t h, rn__tnode_t *n)
{
    size_t mask = cap - 1;
    size_t i = h & mask;
    while (tab[i].node != NULL)
        i = (i + 1) & mask;
    tab[i].hash = h;
    tab[i].node = n;
}

/* Rehashes the index into ncap slots (a power of two, more than twice the
 * live timers). */
static rn_code_t
tab_resize(rn__timers_t *tm, size_t ncap, rn_error_t *err)
{
    rn__ttab_t *nt = rn_zalloc(ncap, sizeof(*nt));
    if (nt == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory resizing the timer index to %zu", ncap);
    for (size_t i = 0; i < tm->tabcap; i++)
        if (tm->tab[i].node != NULL)
            tab_put(nt, ncap, tm->tab[i].hash, tm->tab[i].node);
    tm->bytes = tm->bytes - tm->tabcap * sizeof(*nt) + ncap * sizeof(*nt);
    rn_free(tm->tab);
    tm->tab = nt;
    tm->tabcap = ncap;
    return RN_OK;
}

static rn_code_t
tab_grow(rn__timers_t *tm, rn_error_t *err)
{
    return tab_resize(tm, tm->tabcap ? tm->tabcap * 2 : 64, err);
}

/* Removes node n (hash h) from the index (backward-shift deletion). */
static void
tab_remove(rn__timers_t *tm, const rn__tnode_t *n, uint64_t h)
{
    size_t mask = tm->tabcap - 1;
    size_t i = h & mask;
    while (tm->tab[i].node != n)
        i = (i + 1) & mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (tm->tab[j].node == NULL)
            break;
        size_t home = tm->tab[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tm->tab[i] = tm->tab[j];
            i = j;
        }
    }
    tm->tab[i].node = NULL;
}

/* ---- the service ---- */

rn_code_t
rn__timers_add(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen,
               rn_error_t *err)
{
    uint64_t h = thash(k, time, ns, nslen);
    if (tm->tabcap > 0 && tm->tab[tab_find(tm, k, time, ns, nslen, h)].node != NULL)
        return RN_OK;
    /* At most half full: pop removes from it in random order, and
     * backward shifts walk the whole probe run. */
    if ((tm->live + 1) * (size_t)2 > tm->tabcap) {
        rn_code_t rc = tab_grow(tm, err);
        if (rc != RN_OK)
            return rc;
    }
    uint32_t b = bucket_find(tm, time);
    rn_code_t rc = RN_OK;
    if (b == NO_BUCKET && (rc = bucket_new(tm, time, &b, err)) != RN_OK)
        return rc;
    size_t size = sizeof(rn__tnode_t) + k->keylen + nslen;
    rn__tnode_t *n = NULL;
    if ((rc = bucket_reserve(tm, b, err)) == RN_OK &&
        (n = rn__fc_alloc(&tm->fc, size)) == NULL)
        rc = rn__errf(err, RN_ENOMEM, "out of memory for a timer");
    if (rc != RN_OK) {
        /* A new bucket must not stay empty in the heap. */
        if (tm->bk[b].live == 0)
            bucket_drop(tm, b);
        return rc;
    }
    n->time = time;
    n->u.keyhash = k->keyhash;
    n->kg = k->kg;
    n->keylen = k->keylen;
    n->nslen = (uint32_t)nslen;
    n->deleted = false;
    memcpy(n->data, k->key, k->keylen);
    if (nslen)
        memcpy(n->data + k->keylen, ns, nslen);
    tm->bytes += rn__fc_round(size);
    tab_put(tm->tab, tm->tabcap, h, n);
    tm->live++;
    rn__tslot_t s = {key_word(k->key, k->keylen, 0), k->kg,
                     (uint32_t)(key_word(k->key, k->keylen, 8) >> 32), n, h};
    bucket_put(tm, b, &s);
    return RN_OK;
}

void
rn__timers_del(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen)
{
    if (tm->live == 0)
        return;
    uint64_t h = thash(k, time, ns, nslen);
    rn__tnode_t *n = tm->tab[tab_find(tm, k, time, ns, nslen, h)].node;
    if (n == NULL)
        return;
    /* Lazy: the node leaves the index now and its bucket's slots when
     * popping passes it or the bucket empties, so that slots need not
     * track positions. */
    tab_remove(tm, n, h);
    n->deleted = true;
    tm->live--;
    uint32_t b = bucket_find(tm, time);
    rn_assert(b != NO_BUCKET);
    if (--tm->bk[b].live == 0)
        bucket_drop(tm, b);
}

/* Sorts bk's slots ahead of its cursor for popping, once. */
static void
bucket_sort(rn__timers_t *tm, rn__tbucket_t *bk)
{
    if (bk->sorted)
        return;
    rn__tslot_t *a = bk->slots + bk->next;
    size_t n = bk->n - bk->next;
    if (!kg_sort(tm, a, n))
        sort_slots(a, n, tm->scratch);
    bk->sorted = true;
}

size_t
rn__timers_peek(rn__timers_t *tm, int64_t upto, size_t max, rn__skey_t *out)
{
    if (tm->nheap == 0)
        return 0;
    rn__tbucket_t *bk = &tm->bk[tm->bheap[0]];
    if (bk->time > upto)
        return 0;
    bucket_sort(tm, bk);
    size_t n = 0;
    for (uint32_t i = bk->next; i < bk->n && n < max; i++) {
        const rn__tnode_t *node = bk->slots[i].node;
        if (node->deleted)
            continue;
        out[n++] = (rn__skey_t){.kg = node->kg,
                                .keylen = node->keylen,
                                .nslen = node->nslen,
                                .keyhash = node->u.keyhash,
                                .key = node->data,
                                .ns = node->data + node->keylen};
    }
    return n;
}

rn_code_t
rn__timers_pop(rn__timers_t *tm, rn_state_t *st, int64_t upto, rn_timer_t *t)
{
    if (tm->nheap == 0)
        return RN_ENOTFOUND;
    uint32_t b = tm->bheap[0];
    rn__tbucket_t *bk = &tm->bk[b];
    if (bk->time > upto)
        return RN_ENOTFOUND;
    bucket_sort(tm, bk);
    /* live > 0: a live timer lies ahead of the cursor. */
    rn__tnode_t *n;
    while ((n = bk->slots[bk->next++].node)->deleted)
        node_free(tm, n);
    /* Sorted order is random in memory: fetch what the pop after next
     * touches while the operator handles this timer. */
    if (bk->next + 1 < bk->n) {
        const rn__tslot_t *ahead = &bk->slots[bk->next + 1];
        __builtin_prefetch(ahead->node);
        __builtin_prefetch(&tm->tab[ahead->hash & (tm->tabcap - 1)]);
    }
    tab_remove(tm, n, bk->slots[bk->next - 1].hash);
    tm->live--;
    rn__state_set_key_hashed(st, n->data, n->keylen, n->kg, n->u.keyhash);
    t->time = n->time;
    t->nslen = n->nslen;
    if (n->nslen)
        memcpy(t->ns, n->data + n->keylen, n->nslen);
    node_free(tm, n);
    if (--bk->live == 0)
        bucket_drop(tm, b);
    return RN_OK;
}

int64_t
rn__timers_next(rn__timers_t *tm)
{
    return tm->nheap > 0 ? tm->bk[tm->bheap[0]].time : INT64_MAX;
}

/* ---- spilling the latest times (state.c hands them to the store) ---- */

typedef struct bsel {
    int64_t time;
    uint32_t b;
} bsel_t;

static int
bsel_later_first(const void *a, const void *b)
{
    int64_t x = ((const bsel_t *)a)->time, y = ((const bsel_t *)b)->time;
    return (x < y) - (x > y);
}

/* After a spill: gives back what the spilled timers' arrays held (the
 * index, the slot arrays of dropped and cut buckets, the sort buffer),
 * since the bound counts capacity, and arrays sized for a peak would keep
 * the timers over their budget with nothing left to spill. Best effort: a
 * failed shrink keeps the larger array. */
static void
timers_shrink(rn__timers_t *tm)
{
    for (uint32_t i = 0; i < tm->nfree; i++) {
        rn__tbucket_t *bk = &tm->bk[tm->bfree[i]];
        tm->bytes -= (uint64_t)bk->cap * sizeof(*bk->slots);
        rn_free(bk->slots);
        bk->slots = NULL;
        bk->cap = 0;
        bk->n = bk->next = 0;
    }
    uint32_t maxcap = 0;
    for (uint32_t i = 0; i < tm->nheap; i++) {
        rn__tbucket_t *bk = &tm->bk[tm->bheap[i]];
        if (bk->next > 0) { /* drop what popped */
            memmove(bk->slots, bk->slots + bk->next, (bk->n - bk->next) * sizeof(*bk->slots));
            bk->n -= bk->next;
            bk->next = 0;
        }
        uint32_t want = 16;
        while (want < bk->n)
            want *= 2;
        if (want * 4 <= bk->cap) {
            rn__tslot_t *ns = rn_realloc(bk->slots, want * sizeof(*ns));
            if (ns != NULL) {
                tm->bytes -= (uint64_t)(bk->cap - want) * sizeof(*ns);
                bk->slots = ns;
                bk->cap = want;
            }
        }
        maxcap = bk->cap > maxcap ? bk->cap : maxcap;
    }
    if (tm->scratchcap > maxcap) { /* it must stay as long as the largest bucket */
        rn__tslot_t *ns = maxcap ? rn_realloc(tm->scratch, maxcap * sizeof(*ns)) : NULL;
        if (ns != NULL || maxcap == 0) {
            if (maxcap == 0)
                rn_free(tm->scratch);
            tm->bytes -= (uint64_t)(tm->scratchcap - maxcap) * sizeof(*ns);
            tm->scratch = ns;
            tm->scratchcap = maxcap;
        }
    }
    size_t want = 64;
    while (want < (size_t)tm->live * 2 + 2)
        want *= 2;
    if (want * 4 <= tm->tabcap)
        (void)tab_resize(tm, want, NULL);
}

rn_code_t
rn__timers_spill(rn__timers_t *tm, uint64_t target,
                 rn_code_t (*write)(void *ctx, const rn__tref_t *t, size_t n, rn_error_t *err),
                 void *ctx, int64_t *first, rn_error_t *err)
{
    if (tm->bytes <= target || tm->nheap == 0)
        return RN_OK;
    bsel_t *sel = rn_malloc(tm->nheap * sizeof(*sel));
    if (sel == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory spilling %u timer times", tm->nheap);
    for (uint32_t i = 0; i < tm->nheap; i++) {
        sel[i].b = tm->bheap[i];
        sel[i].time = tm->bk[sel[i].b].time;
    }
    qsort(sel, tm->nheap, sizeof(*sel), bsel_later_first);
    /* Timers at INT64_MAX stay in memory: the store's earliest time must be
     * below INT64_MAX, which means "the store is empty" (state.c). */
    size_t skip = 0;
    while (skip < tm->nheap && sel[skip].time == INT64_MAX)
        skip++;
    uint32_t nb = tm->nheap - (uint32_t)skip;
    memmove(sel, sel + skip, nb * sizeof(*sel));
    if (nb == 0) {
        rn_free(sel);
        return RN_OK;
    }
    /* Whole buckets, the latest first, but the earliest (it is the one
     * popping)... */
    uint64_t need = tm->bytes - target, freed = 0;
    size_t nsel = 0, ntimers = 0;
    while (nsel + 1 < nb && freed < need) {
        const rn__tbucket_t *bk = &tm->bk[sel[nsel].b];
        for (uint32_t j = bk->next; j < bk->n; j++)
            freed += rn__fc_round(node_size(bk->slots[j].node));
        ntimers += bk->live;
        nsel++;
    }
    /* ...then the tail of the earliest one's slots, when it alone is too
     * large: a tumbling window of a few million keys has all its timers at
     * one time. Memory then keeps part of that time, the store the rest;
     * state.c looks in both for it. */
    uint32_t eb = NO_BUCKET, cut = 0;
    if (freed < need && nsel + 1 == nb) {
        eb = sel[nsel].b;
        const rn__tbucket_t *bk = &tm->bk[eb];
        for (cut = bk->n; cut > bk->next && freed < need;) {
            const rn__tnode_t *nd = bk->slots[--cut].node;
            freed += rn__fc_round(node_size(nd));
            ntimers += !nd->deleted;
        }
    }
    rn__tref_t *refs = rn_malloc((ntimers ? ntimers : 1) * sizeof(*refs));
    if (refs == NULL) {
        rn_free(sel);
        return rn__errf(err, RN_ENOMEM, "out of memory spilling %zu timers", ntimers);
    }
    size_t n = 0;
    for (size_t i = 0; i <= nsel; i++) {
        if (i == nsel && eb == NO_BUCKET)
            break;
        const rn__tbucket_t *bk = &tm->bk[sel[i].b];
        for (uint32_t j = i == nsel ? cut : bk->next; j < bk->n; j++) {
            const rn__tnode_t *nd = bk->slots[j].node;
            if (nd->deleted)
                continue;
            refs[n++] = (rn__tref_t){nd->time, nd->kg,      nd->keylen,
                                     nd->nslen, nd->data, nd->data + nd->keylen};
        }
    }
    rn_assert(n == ntimers);
    rn_code_t rc = write(ctx, refs, n, err);
    if (rc == RN_OK) {
        int64_t earliest = INT64_MAX;
        for (size_t i = 0; i < nsel; i++) {
            rn__tbucket_t *bk = &tm->bk[sel[i].b];
            for (uint32_t j = bk->next; j < bk->n; j++) {
                rn__tnode_t *nd = bk->slots[j].node;
                if (nd->deleted)
                    continue;
                tab_remove(tm, nd, bk->slots[j].hash);
                nd->deleted = true;
                tm->live--;
            }
            bk->live = 0;
            earliest = sel[i].time;
            bucket_drop(tm, sel[i].b);
        }
        if (eb != NO_BUCKET) {
            rn__tbucket_t *bk = &tm->bk[eb];
            for (uint32_t j = cut; j < bk->n; j++) {
                rn__tnode_t *nd = bk->slots[j].node;
                if (!nd->deleted) {
                    tab_remove(tm, nd, bk->slots[j].hash);
                    tm->live--;
                    bk->live--;
                }
                node_free(tm, nd);
            }
            bk->n = cut;
            earliest = bk->time;
            if (bk->live == 0)
                bucket_drop(tm, eb);
        }
        if (earliest < *first)
            *first = earliest;
        timers_shrink(tm);
    }
    rn_free(refs);
    rn_free(sel);
    return rc;
}

bool
rn__timers_has(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns, size_t nslen)
{
    if (tm->live == 0)
        return false;
    uint64_t h = thash(k, time, ns, nslen);
    return tm->tab[tab_find(tm, k, time, ns, nslen, h)].node != NULL;
}

rn__tnode_t **
rn__timers_pin(rn__timers_t *tm, size_t *n, rn_error_t *err)
{
    rn_assert(!tm->pinned);
    *n = 0;
    /* The index holds every live timer: a sequential walk, where the
     * buckets' slots would need each node read for its deleted mark. */
    rn__tnode_t **out = rn_malloc((tm->live > 0 ? tm->live : 1) * sizeof(*out));
    if (out == NULL) {
        rn__errf(err, RN_ENOMEM, "out of memory for a snapshot of %u timers", tm->live);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < tm->tabcap; i++)
        if (tm->tab[i].node != NULL)
            out[k++] = tm->tab[i].node;
    rn_assert(k == tm->live);
    *n = k;
    tm->pinned = true;
    return out;
}

void
rn__timers_unpin(rn__timers_t *tm)
{
    tm->pinned = false;
    /* Into the free lists whatever their bound: given back to malloc at
     * once, a few hundred thousand small blocks made glibc's next large
     * allocation consolidate them all (50 ms, in the next checkpoint's
     * pause). New timers take them (timers come and go at about the same
     * rate); they are no more than were live a checkpoint ago. The
     * array's nodes are fetched ahead; the list's (when the array could
     * not grow) one by one. */
    for (size_t i = 0; i < tm->nheld; i++) {
        if (i + 16 < tm->nheld)
            __builtin_prefetch(tm->heldv[i + 16].n, 1);
        rn__fc_put(&tm->fc, tm->heldv[i].n, tm->heldv[i].cls);
    }
    tm->nheld = 0;
    rn__tnode_t *n = tm->held;
    tm->held = NULL;
    while (n != NULL) {
        rn__tnode_t *next = n->u.held_next;
        rn__fc_put(&tm->fc, n, rn__fc_class(node_size(n)));
        n = next;
    }
}

void
rn__timers_node_ref(const rn__tnode_t *n, rn__tref_t *t)
{
    *t = (rn__tref_t){n->time, n->kg, n->keylen, n->nslen, n->data, n->data + n->keylen};
}
