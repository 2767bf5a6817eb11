/*
 * state/rocksdb_cache.c: the bounded write-back cache in front of RocksDB
 * for value states and list heads.
 *
 * Why: a get-then-put per record through RocksDB costs two trips through
 * the memtable, a WriteBatch and the write path (about 140k read-modify-
 * writes per second per core). Window aggregates touch the same hot
 * accumulators over and over, so they are kept here as plain bytes that
 * rn__vstate_ref hands out in place, and RocksDB sees a key only when its
 * entry leaves the cache or a checkpoint flushes it.
 *
 * Design: an open-addressing hash table (linear probing, power-of-two
 * capacity, at most 3/4 full, backward-shift deletion) of entries keyed by
 * (state id, key, ns), in 8-byte slots (below: the entry's address, a tag
 * of its hash and its distance from home; the hash itself is computed
 * again from the entry where it is needed and not at hand). An entry is
 * one block: a 16-byte header, key | ns padded to 8, then the value, so
 * values are 8-aligned for accumulator structs. Flags say what RocksDB holds for the key:
 *
 *   DIRTY   the cache differs from RocksDB and must be written before the
 *           entry goes;
 *   ABSENT  the value does not exist (a known-absent key: a clean negative
 *           entry, or with DIRTY a pending delete);
 *   INDB    RocksDB holds a value for the key (as of the last write), so a
 *           delete must reach it; a value created and deleted while
 *           only here is dropped and never touches RocksDB;
 *   REF     the clock bit: touched since the evictor last passed;
 *   PART    a merging state's delta (rn__rc_ref_part): the value is
 *           RocksDB's, whatever it holds, folded with these bytes; written
 *           as a Merge, and made whole (one read) before anything but
 *           another fold sees it (resolve()).
 *
 * Eviction is CLOCK over the slot array, run before an insert when the
 * entries and slots pass the limit: it frees down to 15/16 of the limit in
 * one round, so that the dirty victims go to RocksDB as one WriteBatch
 * sorted by RocksDB key (memtable inserts in key order, and a few large
 * writes rather than many small ones). A miss reads RocksDB once: the
 * value, or its absence, is what the exact entry count and the created
 * flag of ref need; unless the filter of what RocksDB may hold
 * (rocksdb_filter.c) rules the key out, which answers the first touch of
 * every new window without a read. A take or delete that misses does not
 * come into the cache: it reads and deletes in RocksDB directly.
 *
 * @thread task.
 */
#include "state/rocksdb_int.h"

enum { F_DIRTY = 1, F_ABSENT = 2, F_INDB = 4, F_REF = 8, F_PART = 16, F_GEN = 32 };

struct rn__rcent {
    uint32_t state;
    uint16_t kg;
    uint8_t nslen;
    uint8_t flags;
    uint32_t keylen;
    uint32_t vlen;
    uint8_t data[]; /* key | ns | pad to 8 | value */
};

_Static_assert(sizeof(rn__rcent_t) == 16, "cache entry header keeps values 8-aligned");

static void dirty_push(rn__rcache_t *c, uint64_t h);
static void cow(rn__rcache_t *c, rn__rcent_t *e, uint64_t h);
static inline uint64_t ent_hash(const rn__rcent_t *e);

/* Remembers that entry e (hash h) is about to become dirty: in the list
 * and with the current generation (called before F_DIRTY is set, while
 * it still says whether it was). Its value does not change: no freeze
 * needs a copy first (see note_dirty). */
static inline void
mark_dirty(rn__rcache_t *c, rn__rcent_t *e, uint64_t h)
{
    if (!(e->flags & F_DIRTY)) {
        /* The list finds entries by it: the slots keep only a tag. */
        rn_dassert(ent_hash(e) == h);
        if (!c->dirty_all)
            dirty_push(c, h);
        e->flags = (uint8_t)((e->flags & ~F_GEN) | c->gen);
    }
}

/* Entry e (hash h) is about to change (its value, its flags, or it goes):
 * a freeze in progress that still wants it copies it first (copy on
 * write), then it is marked. Every change goes through here. */
static inline void
note_dirty(rn__rcache_t *c, rn__rcent_t *e, uint64_t h)
{
    if (RN_UNLIKELY(c->freezing))
        cow(c, e, h);
    mark_dirty(c, e, h);
}

#define MIN_CAP 64
#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

static inline size_t
ent_size(size_t keylen, size_t nslen, size_t vlen)
{
    return sizeof(rn__rcent_t) + ALIGN8(keylen + nslen) + vlen;
}

static inline size_t
ent_alloc(const rn__rcent_t *e)
{
    return ent_size(e->keylen, e->nslen, e->vlen);
}

static inline uint8_t *
ent_val(rn__rcent_t *e)
{
    return e->data + ALIGN8((size_t)e->keylen + e->nslen);
}

/* The key of entry e (borrowing its bytes; no hash). */
static inline rn__skey_t
ent_key(const rn__rcent_t *e)
{
    return (rn__skey_t){.state = e->state,
                        .kg = e->kg,
                        .keylen = e->keylen,
                        .nslen = e->nslen,
                        .key = e->data,
                        .ns = e->data + e->keylen};
}

/* The cache's hash of entry e, computed again: the slots keep only a
 * tag of it. */
static inline uint64_t
ent_hash(const rn__rcent_t *e)
{
    return rn__state_hash_bytes(ent_key(e));
}

/* ---- slots ----
 *
 * A slot is 8 bytes: bits 4-47 are the entry's address (entries come
 * from malloc: 16-byte aligned, and user addresses stay below 2^47 on
 * the 64-bit Linux ports), bits 0-3 and 56-63 a 12-bit tag (the hash's
 * top bits), bits 48-55 the distance from the entry's home slot (hash &
 * mask), 255 meaning "255 or more: ask the entry". A probe compares the
 * tag before it touches an entry (1 in 4096 touches one in vain); the
 * distance lets backward-shift deletion move entries without their
 * hashes. Twice the slots of hash and address fit the same bytes: 1M
 * windows took 32 MB of slots in a 144 MB pool, now 16. */
#define SLOT_ADDR 0x0000fffffffffff0ull
#define SLOT_TAG 0xff0000000000000full
#define SLOT_DIST_SHIFT 48
#define SLOT_DIST_MAX 255u

_Static_assert(sizeof(void *) == 8, "cache slots pack 64-bit addresses");

/* The tag bits of hash h, where a slot keeps them. */
static inline uint64_t
slot_tag(uint64_t h)
{
    return (h & 0xff00000000000000ull) | ((h >> 52) & 15);
}

static inline rn__rcent_t *
slot_e(rn__rcslot_t s)
{
    return (rn__rcent_t *)(uintptr_t)(s & SLOT_ADDR);
}

/* Slot s at distance dist from its home. */
static inline rn__rcslot_t
slot_dist(rn__rcslot_t s, size_t dist)
{
    uint64_t d = dist < SLOT_DIST_MAX ? dist : SLOT_DIST_MAX;
    return (s & ~((uint64_t)SLOT_DIST_MAX << SLOT_DIST_SHIFT)) | (d << SLOT_DIST_SHIFT);
}

static inline rn__rcslot_t
slot_make(const rn__rcent_t *e, uint64_t h, size_t dist)
{
    return slot_dist((uint64_t)(uintptr_t)e | slot_tag(h), dist);
}

/* The entry in slot i (NULL: empty). */
static inline rn__rcent_t *
at(const rn__rcache_t *c, size_t i)
{
    return slot_e(c->slots[i]);
}

static inline bool
matches(const rn__rcent_t *e, const rn__skey_t *k)
{
    if (e->state != k->state || e->keylen != k->keylen || e->nslen != k->nslen)
        return false;
    if (k->keylen > 0 && memcmp(e->data, k->key, k->keylen) != 0)
        return false;
    return k->nslen == 0 || memcmp(e->data + k->keylen, k->ns, k->nslen) == 0;
}

/* The cache's own bytes: entries and slots. */
static inline uint64_t
own(const rn__rcache_t *c)
{
    return c->bytes + c->cap * sizeof(rn__rcslot_t);
}

static inline uint64_t
total(const rn__rcache_t *c)
{
    uint64_t t = own(c) + rn__rf_bytes(&c->filter);
    uint64_t timers = 0;
    for (int d = 0; d < 2; d++)
        if (c->shared[d] != NULL)
            timers += *c->shared[d];
    if (c->gathered != NULL)
        timers += rn__rdb_tkeys_used(c->gathered);
    /* The timers spill at half the limit (rn__rdb_timer_budget); counting
     * no more than that keeps the cache's half even between a timer's
     * registration and its spill, so that eviction never empties it. */
    return t + (timers < c->limit / 2 ? timers : c->limit / 2);
}

bool
rn__rc_roomy(const rn__rcache_t *c)
{
    return total(c) < c->limit - c->limit / 8;
}

/* ---- the table ---- */

rn_code_t
rn__rc_init(rn__rcache_t *c, uint64_t limit, rn_error_t *err)
{
    memset(c, 0, sizeof(*c));
    c->cap = MIN_CAP;
    c->limit = limit;
    c->slots = rn_zalloc(c->cap, sizeof(rn__rcslot_t));
    if (c->slots == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for the state cache");
    return rn__rf_init(&c->filter, err);
}

void
rn__rc_fini(rn__rcache_t *c)
{
    if (c->slots != NULL) {
        for (size_t i = 0; i < c->cap; i++) {
            rn__rcent_t *e = at(c, i);
            if (e != NULL)
                rn__fc_free(&c->fc, e, ent_alloc(e));
        }
    }
    rn__fc_fini(&c->fc);
    rn__rf_fini(&c->filter);
    rn_free(c->slots);
    rn_free(c->victims);
    rn_free(c->dirty);
    rn_free(c->pend);
    rn_free(c->frz.hs);
    memset(c, 0, sizeof(*c));
}

static void
dirty_push(rn__rcache_t *c, uint64_t h)
{
    if (c->ndirty == c->capdirty) {
        size_t ncap = c->capdirty ? c->capdirty * 2 : 4096;
        uint64_t *nd = ncap <= c->cap ? rn_realloc(c->dirty, ncap * sizeof(*nd)) : NULL;
        if (nd == NULL) {
            /* Past half the slots (or out of memory): a walk of the table
             * costs no more than the list would. */
            c->dirty_all = true;
            return;
        }
        c->dirty = nd;
        c->capdirty = ncap;
    }
    c->dirty[c->ndirty++] = h;
}

/* After a walk of the whole table, every entry clean: the list restarts. */
static void
dirty_reset(rn__rcache_t *c)
{
    c->ndirty = 0;
    c->dirty_all = false;
}

/* @returns the slot of k, or the empty slot where it would go. */
static inline size_t
find(const rn__rcache_t *c, const rn__skey_t *k, uint64_t h)
{
    size_t mask = c->cap - 1;
    size_t i = h & mask;
    uint64_t tag = slot_tag(h);
    for (;;) {
        rn__rcslot_t s = c->slots[i];
        if (s == 0 || ((s & SLOT_TAG) == tag && matches(slot_e(s), k)))
            return i;
        i = (i + 1) & mask;
    }
}

/* Whether one more entry calls for a larger table: at half full while
 * the slots take at most 1 MB, else at three quarters. A small table
 * lives in the CPU's caches, where the probes themselves are the cost (a
 * checkpoint keeps the deletes of fired windows until the next freeze,
 * which took a 1k-key table to 3/4 full and cost a lookup 7 ns); in a
 * large one the first probe is a memory miss and the next ones share its
 * line, and memory counts more. */
static inline bool
too_full(const rn__rcache_t *c)
{
    size_t n = c->count + 1;
    return c->cap * sizeof(rn__rcslot_t) <= ((size_t)1 << 20) ? n * 2 > c->cap
                                                               : n * 4 > c->cap * 3;
}

/* Places e (hash h, not present) without growing: the caller made room. */
static size_t
place(rn__rcache_t *c, rn__rcent_t *e, uint64_t h)
{
    rn_dassert(ent_hash(e) == h);
    size_t mask = c->cap - 1;
    size_t i = h & mask, dist = 0;
    while (c->slots[i] != 0) {
        i = (i + 1) & mask;
        dist++;
    }
    c->slots[i] = slot_make(e, h, dist);
    c->count++;
    return i;
}

static rn_code_t
grow(rn__rcache_t *c, rn_error_t *err)
{
    size_t ncap = c->cap * 2;
    rn__rcslot_t *ns = rn_zalloc(ncap, sizeof(rn__rcslot_t));
    if (ns == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory growing the state cache to %zu slots",
                        ncap);
    rn__rcslot_t *old = c->slots;
    size_t ocap = c->cap;
    c->slots = ns;
    c->cap = ncap;
    c->count = 0;
    c->hand = 0;
    /* A list that overflowed while the table was smaller starts again
     * from the dirty entries met here (they are all visited anyway): the
     * next freeze can then go in slices rather than walk the table. */
    bool relist = c->dirty_all;
    if (relist)
        dirty_reset(c);
    for (size_t i = 0; i < ocap; i++) {
        rn__rcent_t *e = slot_e(old[i]);
        if (e == NULL)
            continue;
        /* The one pass that needs every hash: the entries are read
         * anyway (a tenth of a second at a million). */
        if (i + 8 < ocap && old[i + 8] != 0)
            __builtin_prefetch(slot_e(old[i + 8]));
        uint64_t h = ent_hash(e);
        place(c, e, h);
        if (relist && (e->flags & F_DIRTY) && !c->dirty_all)
            dirty_push(c, h);
    }
    rn_free(old);
    return RN_OK;
}

/* Empties slot i, shifting back the entries of its probe run. */
static void
remove_at(rn__rcache_t *c, size_t i)
{
    size_t mask = c->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        rn__rcslot_t s = c->slots[j];
        if (s == 0)
            break;
        size_t dist = (size_t)(s >> SLOT_DIST_SHIFT) & SLOT_DIST_MAX;
        if (dist == SLOT_DIST_MAX) /* or more: its home from its hash */
            dist = (j - (ent_hash(slot_e(s)) & mask)) & mask;
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        size_t back = (j - i) & mask;
        if (dist >= back) {
            c->slots[i] = slot_dist(s, dist - back);
            i = j;
        }
    }
    c->slots[i] = 0;
    c->count--;
}

static void
ent_free(rn__rcache_t *c, rn__rcent_t *e)
{
    size_t size = ent_alloc(e);
    c->bytes -= rn__fc_round(size);
    rn__fc_free(&c->fc, e, size);
}

/* @returns a new entry for k with vlen zeroed value bytes, or NULL. */
static rn__rcent_t *
ent_new(rn__rcache_t *c, const rn__skey_t *k, size_t vlen)
{
    size_t size = ent_size(k->keylen, k->nslen, vlen);
    rn__rcent_t *e = rn__fc_alloc(&c->fc, size);
    if (e == NULL)
        return NULL;
    rn_assert(((uintptr_t)e & ~(uintptr_t)SLOT_ADDR) == 0); /* a slot can hold it */
    e->state = k->state;
    e->kg = (uint16_t)k->kg;
    e->nslen = (uint8_t)k->nslen;
    e->flags = 0;
    e->keylen = k->keylen;
    e->vlen = (uint32_t)vlen;
    if (k->keylen > 0)
        memcpy(e->data, k->key, k->keylen);
    if (k->nslen > 0)
        memcpy(e->data + k->keylen, k->ns, k->nslen);
    size_t used = (size_t)k->keylen + k->nslen;
    memset(e->data + used, 0, size - sizeof(*e) - used);
    c->bytes += rn__fc_round(size);
    return e;
}

/* Gives the entry in slot i a value of vlen zeroed bytes, moving it when
 * its block class changes. @returns the entry, or NULL (slot intact). */
static rn__rcent_t *
ent_resize(rn__rcache_t *c, size_t i, size_t vlen)
{
    rn__rcent_t *e = at(c, i);
    if (rn__fc_round(ent_alloc(e)) == rn__fc_round(ent_size(e->keylen, e->nslen, vlen))) {
        e->vlen = (uint32_t)vlen;
        memset(ent_val(e), 0, vlen);
        return e;
    }
    rn__skey_t k = ent_key(e);
    rn__rcent_t *ne = ent_new(c, &k, vlen);
    if (ne == NULL)
        return NULL;
    ne->flags = e->flags;
    c->slots[i] = (c->slots[i] & ~SLOT_ADDR) | (uint64_t)(uintptr_t)ne;
    ent_free(c, e);
    return ne;
}

/* ---- writing to RocksDB ---- */

typedef struct wkey {
    rn__rdb_kref_t k; /* first: rn__rdb_cmp_key sorts by it */
    rn__rcent_t *e;
    uint64_t hash;
} wkey_t;

/* Whether the filter has room for nnew more keys; when not, filter_room
 * rebuilds it from the database, sized by the keys found there. A failed
 * rebuild keeps the old filter, which stays correct (more false
 * "maybe"s). */
static bool
filter_has_room(const rn__rfilter_t *f, size_t nnew)
{
    return (f->count + nnew) * RN__RF_PER_KEY <= (uint64_t)f->nblocks * RN__RF_BLOCK;
}

/* @returns whether the filter was rebuilt (from RocksDB alone) or
 * switched off. Its counters stay within an eighth of the bound: past it
 * they would squeeze the cache. */
static bool
filter_room(rn__rdb_t *rdb, size_t nnew)
{
    rn__rfilter_t *f = &rdb->cache.filter;
    if (f->ctr == NULL || filter_has_room(f, nnew))
        return false;
    rn_error_t err = RN_ERROR_INIT;
    if (rn__rf_rebuild(rdb, nnew, rdb->cache.limit / 8, &err) != RN_OK) {
        RN_LOG_WARN(rdb->owner, "state filter not rebuilt: %s", err.msg);
        return false;
    }
    return true;
}

/* Writes the dirty entries among ents[0..n) in one WriteBatch sorted by
 * RocksDB key: puts for values, merges for partial values, deletes for
 * values deleted here that RocksDB holds. Entries are left as they are;
 * the filter counts the puts of keys RocksDB did not hold, and every
 * merge (RocksDB may or may not hold its key: counting a key twice errs
 * towards "maybe"), in before the write and the deletes out after it. */
static rn_code_t
write_sorted(rn__rdb_t *rdb, const rn__rcvic_t *ents, size_t n, rn_error_t *err)
{
    size_t ndirty = 0, kbytes = 0, nnew = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t fl = ents[i].e->flags;
        if (fl & F_DIRTY) {
            ndirty++;
            kbytes += ents[i].e->keylen + RN__RDB_PREFIX_OVERHEAD;
            nnew += !(fl & (F_INDB | F_ABSENT));
        }
    }
    if (ndirty == 0)
        return RN_OK;
    filter_room(rdb, nnew);
    wkey_t *w = rn_malloc(ndirty * sizeof(*w));
    uint8_t *buf = rn_malloc(kbytes);
    if (w == NULL || buf == NULL) {
        rn_free(w);
        rn_free(buf);
        return rn__errf(err, RN_ENOMEM, "out of memory writing %zu cached values", ndirty);
    }
    size_t m = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        rn__rcent_t *e = ents[i].e;
        if (!(e->flags & F_DIRTY))
            continue;
        w[m].k.key = buf + off;
        w[m].k.len = rn__rdb_prefix(buf + off, e->kg, e->state, e->data, e->keylen,
                                  e->data + e->keylen, e->nslen);
        w[m].e = e;
        w[m].hash = ents[i].hash;
        off += w[m].k.len;
        m++;
        if (!(e->flags & (F_INDB | F_ABSENT)))
            rn__rf_add(&rdb->cache.filter, ents[i].hash);
    }
    qsort(w, m, sizeof(*w), rn__rdb_cmp_key);
    for (size_t i = 0; i < m; i++) {
        rn__rcent_t *e = w[i].e;
        if (e->flags & F_ABSENT) {
            /* Created and deleted here only: dropped, never written. */
            rn_dassert(e->flags & F_INDB);
            rocksdb_writebatch_delete(rdb->wb, (const char *)w[i].k.key, w[i].k.len);
        } else if (e->flags & F_PART) {
            rocksdb_writebatch_merge(rdb->wb, (const char *)w[i].k.key, w[i].k.len,
                                     (const char *)ent_val(e), e->vlen);
        } else {
            rocksdb_writebatch_put(rdb->wb, (const char *)w[i].k.key, w[i].k.len,
                                   (const char *)ent_val(e), e->vlen);
        }
    }
    rn_code_t rc = rn__rdb_write(rdb, err);
    if (rc == RN_OK) {
        rdb->cache.written += m;
        for (size_t i = 0; i < m; i++)
            if (w[i].e->flags & F_ABSENT)
                rn__rf_remove(&rdb->cache.filter, w[i].hash);
    }
    rn_free(w);
    rn_free(buf);
    return rc;
}

/* Evicts entries with the clock until the cache is under 15/16 of its limit
 * less need bytes, writing the dirty ones first. On a write failure the
 * victims go back into the table and the cache stays over its limit. */
static rn_code_t
evict(rn__rdb_t *rdb, size_t need, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    uint64_t target = c->limit - c->limit / 16;
    target = target > need ? target - need : 0;
    /* The cache's own bytes never go below a quarter of the limit, what
     * the timers (at most half) and the filter (an eighth) leave it: an
     * emptied cache would evict on every miss with a walk of its whole
     * slot table. */
    uint64_t others = total(c) - own(c);
    if (target < others + c->limit / 4)
        target = others + c->limit / 4;
    c->nvictims = 0;
    /* While a checkpoint's part runs, dirty entries stay (their write
     * would wait at the fence): after the freeze most entries are clean.
     * Past two turns of the clock without enough of them, wait after all. */
    bool clean_only = rn__rdb_fence_busy(rdb);
    size_t passed = 0;
    while (total(c) > target && c->count > 0) {
        if (c->hand >= c->cap)
            c->hand = 0;
        rn__rcent_t *e = at(c, c->hand);
        if (e == NULL) {
            c->hand++;
            continue;
        }
        if (e->flags & F_REF) {
            e->flags &= (uint8_t)~F_REF;
            c->hand++;
            continue;
        }
        if (clean_only && (e->flags & F_DIRTY)) {
            if (++passed > 2 * c->count) {
                rn__rdb_fence(rdb);
                clean_only = false;
            }
            c->hand++;
            continue;
        }
        if (c->nvictims == c->capvictims) {
            size_t ncap = c->capvictims ? c->capvictims * 2 : 1024;
            rn__rcvic_t *nv = rn_realloc(c->victims, ncap * sizeof(*nv));
            if (nv == NULL)
                break; /* evict what we have */
            c->victims = nv;
            c->capvictims = ncap;
        }
        c->victims[c->nvictims].e = e;
        c->victims[c->nvictims++].hash = ent_hash(e);
        /* Bytes leave the count now so the loop ends; they are freed below. */
        c->bytes -= rn__fc_round(ent_alloc(e));
        remove_at(c, c->hand); /* the hand now looks at the entry shifted in */
    }
    rn_code_t rc = write_sorted(rdb, c->victims, c->nvictims, err);
    for (size_t i = 0; i < c->nvictims; i++) {
        rn__rcent_t *e = c->victims[i].e;
        c->bytes += rn__fc_round(ent_alloc(e));
        if (rc == RN_OK)
            ent_free(c, e);
        else
            place(c, e, c->victims[i].hash);
    }
    if (rc == RN_OK)
        c->evicted += c->nvictims;
    c->nvictims = 0;
    return rc;
}

/* After the dirty entries' writes are handed over (written, or frozen
 * to be written before anything else reaches RocksDB): what flush leaves. */
static void
mark_written(rn__rcent_t *e)
{
    if (e->flags & F_PART) {
        /* RocksDB has (or will have first) the delta: the entry restarts
         * from the identity, and RocksDB holds the key (a delete must
         * reach it; and the next write of a delta is not a new key to
         * the filter: counted at every checkpoint, the keys of a million
         * windows counted ten times each pushed it past its share). */
        memset(ent_val(e), 0, e->vlen);
        e->flags = (uint8_t)((e->flags & ~F_DIRTY) | F_INDB);
        return;
    }
    /* A written delete leaves a clean known-absent entry. */
    e->flags &= (uint8_t) ~(F_DIRTY | F_INDB);
    if (!(e->flags & F_ABSENT))
        e->flags |= F_INDB;
}

/* Room for one more record of need bytes in fz. Aborts when out of
 * memory: entries already marked written are only in fz, there is no way
 * back (as for the other allocations that must not fail, rn_xrealloc). */
static void
fz_room(rn__rdb_frozen_t *fz, size_t need)
{
    if (fz->len + need > fz->cap) {
        size_t ncap = fz->cap ? fz->cap * 2 : (1u << 20);
        while (ncap < fz->len + need)
            ncap *= 2;
        fz->buf = rn_xrealloc(fz->buf, ncap);
        fz->cap = ncap;
        rn_huge_hint(fz->buf, ncap);
    }
    if (fz->n == fz->offcap) {
        fz->offcap = fz->offcap ? fz->offcap * 2 : 4096;
        fz->off = rn_xrealloc(fz->off, fz->offcap * sizeof(*fz->off));
        fz->hash = rn_xrealloc(fz->hash, fz->offcap * sizeof(*fz->hash));
        rn_huge_hint(fz->off, fz->offcap * sizeof(*fz->off));
        rn_huge_hint(fz->hash, fz->offcap * sizeof(*fz->hash));
    }
}

/* Copies dirty entry e (hash h) into the freeze and marks it written. */
static void
freeze_one(rn__rcache_t *c, rn__rcent_t *e, uint64_t h)
{
    rn__rcfreeze_t *f = &c->frz;
    rn__rdb_frozen_t *fz = f->fz;
    fz_room(fz, 9 + e->keylen + RN__RDB_PREFIX_OVERHEAD + e->vlen);
    uint8_t *p = fz->buf + fz->len;
    uint8_t op = (e->flags & F_ABSENT) ? RN__FZ_DEL : (e->flags & F_PART) ? RN__FZ_MERGE
                                                                       : RN__FZ_PUT;
    uint32_t klen = (uint32_t)rn__rdb_prefix(p + 9, e->kg, e->state, e->data, e->keylen,
                                             e->data + e->keylen, e->nslen);
    uint32_t vlen = op == RN__FZ_DEL ? 0 : e->vlen;
    p[0] = op;
    memcpy(p + 1, &klen, 4);
    memcpy(p + 5, &vlen, 4);
    if (vlen > 0)
        memcpy(p + 9 + klen, ent_val(e), vlen);
    fz->hash[fz->n] = h;
    fz->off[fz->n++] = fz->len;
    fz->len += 9 + klen + vlen;
    rn__rdb_frozen_note(fz, h, fz->n - 1);
    /* A key new to RocksDB goes into the filter at once when it has room
     * (else at the end: making room rebuilds it from RocksDB, which does
     * not have these yet, and a rebuild at the end adds them all again);
     * a delete's removal waits for the end, as a written delete's does. */
    if (op == RN__FZ_DEL || !(e->flags & (F_INDB | F_ABSENT))) {
        if (f->nh == f->caph) {
            f->caph = f->caph ? f->caph * 2 : 4096;
            f->hs = rn_xrealloc(f->hs, f->caph * sizeof(*f->hs));
        }
        rn__rfilter_t *flt = &c->filter;
        bool add = op != RN__FZ_DEL;
        bool now = add && flt->ctr != NULL && filter_has_room(flt, f->nnew + 1);
        if (now)
            rn__rf_add(flt, h);
        f->hs[f->nh].hash = h;
        f->hs[f->nh].add = add;
        f->hs[f->nh++].done = now;
        f->nnew += add && !now;
    }
    mark_written(e);
}

/* Dirty, and of the generation before the freeze's barrier: the freeze
 * still wants it. */
static inline bool
pending(const rn__rcache_t *c, const rn__rcent_t *e)
{
    return (e->flags & F_DIRTY) && (e->flags & F_GEN) != c->gen;
}

static void
cow(rn__rcache_t *c, rn__rcent_t *e, uint64_t h)
{
    if (pending(c, e)) {
        c->frz.ncow++;
        freeze_one(c, e, h);
    }
}

/* The filter's changes the freeze gathered; the freeze is over. */
static void
freeze_end(rn__rdb_t *rdb)
{
    rn__rcache_t *c = &rdb->cache;
    rn__rcfreeze_t *f = &c->frz;
    bool rebuilt = filter_room(rdb, f->nnew);
    for (size_t i = 0; i < f->nh; i++)
        if (f->hs[i].add && (rebuilt || !f->hs[i].done))
            rn__rf_add(&c->filter, f->hs[i].hash);
    for (size_t i = 0; i < f->nh; i++)
        if (!f->hs[i].add)
            rn__rf_remove(&c->filter, f->hs[i].hash);
    rn_free(f->hs);
    c->written += f->fz->n;
    memset(f, 0, sizeof(*f));
}

/* Freezes the entries of hash h in the dirty list that the freeze wants
 * (want: pending ones only; else every dirty one). The entries some
 * places ahead in list[] are fetched while this one is copied: each is a
 * cache miss or two (its slot, the entry). */
static void
freeze_list(rn__rcache_t *c, const uint64_t *list, size_t from, size_t to, bool want)
{
    size_t mask = c->cap - 1;
    for (size_t j = from; j < to; j++) {
        if (j + 16 < to)
            __builtin_prefetch(&c->slots[list[j + 16] & mask]);
        if (j + 8 < to) {
            uint64_t ph = list[j + 8];
            rn__rcent_t *pe = at(c, ph & mask);
            if (pe != NULL) {
                /* Both lines: an entry of 50-100 bytes mostly straddles
                 * two, and the value's copy stalled on the second. */
                __builtin_prefetch(pe);
                __builtin_prefetch((const char *)pe + 64);
            }
            /* freeze_one's other misses: the frozen set's slot and the
             * filter's block (a new key), both where the hash says. */
            const rn__rdb_frozen_t *fz = c->frz.fz;
            if (fz->set_on)
                __builtin_prefetch(&fz->set[ph & fz->mask], 1);
            if (c->filter.ctr != NULL)
                __builtin_prefetch(rn__rf_block(&c->filter, ph), 1);
        }
        uint64_t h = list[j], tag = slot_tag(h);
        for (size_t i = h & mask; at(c, i) != NULL;) {
            rn__rcent_t *e = at(c, i);
            /* The tag, then the flags, then (one in 4096 tags a false
             * match) the whole hash: the record's hash must be the
             * entry's, the frozen set answers reads by it. */
            if ((c->slots[i] & SLOT_TAG) == tag &&
                (want ? pending(c, e) : (e->flags & F_DIRTY) != 0) && ent_hash(e) == h) {
                freeze_one(c, e, h);
                if (e->flags & F_ABSENT) {
                    /* Its delete taken (a window fired), the entry goes
                     * now, while it is at hand, rather than stay as a
                     * known-absent one: nobody reads an old window
                     * again, and kept they filled the table (ten
                     * thousand after ten checkpoints of 1k keys'
                     * windows, every lookup a third slower; a million
                     * at each firing of 1M keys' windows, which grew the
                     * table to 8M slots) until eviction had to clear
                     * them. The block goes to its free list while that
                     * takes it, else to malloc (a free list of a
                     * million handed the next windows' entries out
                     * scattered, where malloc's come in the order of
                     * their first touch: every access of a run of 1M
                     * keys in order missed the processor's cache, five
                     * times as costly). Whatever a
                     * read of the key meets meanwhile says absent: the
                     * filter (its removal comes at the end, "maybe"
                     * until then), the frozen delete, RocksDB once it is
                     * written. The slot then holds the next of the run. */
                    remove_at(c, i);
                    ent_free(c, e);
                    continue;
                }
            }
            i = (i + 1) & mask;
        }
    }
}

void
rn__rdb_freeze_init(rn__rdb_t *rdb, rn__rdb_frozen_t *fz)
{
    rn__rcache_t *c = &rdb->cache;
    fz->len = 0;
    fz->n = 0;
    fz->tk = NULL;
    fz->has_zero = false;
    fz->set_on = false;
    memset(&c->frz, 0, sizeof(c->frz));
    c->frz.fz = fz;
    c->frz.t0 = rn__mono_ns();
}

rn_code_t
rn__rdb_freeze(rn__rdb_t *rdb, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    if (!c->dirty_all) {
        freeze_list(c, c->dirty, 0, c->ndirty, false);
    } else {
        /* One pass over the table: each entry is a cache miss, so the
         * entry some slots ahead is fetched while this one is copied. */
        for (size_t i = 0; i < c->cap; i++) {
            if (i + 16 < c->cap && at(c, i + 16) != NULL)
                __builtin_prefetch(at(c, i + 16));
            rn__rcent_t *e = at(c, i);
            if (e != NULL && (e->flags & F_DIRTY))
                freeze_one(c, e, ent_hash(e));
        }
    }
    dirty_reset(c);
    freeze_end(rdb);
    return RN_OK;
}

bool
rn__rdb_freeze_begin(rn__rdb_t *rdb)
{
    rn__rcache_t *c = &rdb->cache;
    if (c->dirty_all)
        return false;
    /* The list becomes the freeze's; a new one starts (in the previous
     * freeze's array, to spare the allocator). */
    uint64_t *t = c->pend;
    c->pend = c->dirty;
    c->dirty = t;
    size_t tc = c->cappend;
    c->cappend = c->capdirty;
    c->capdirty = tc;
    c->npend = c->ndirty;
    c->pendpos = 0;
    c->ndirty = 0;
    /* What is dirty now is the freeze's; what becomes dirty from now on
     * is not. */
    c->gen ^= F_GEN;
    c->freezing = c->npend > 0;
    if (!c->freezing)
        freeze_end(rdb);
    return true;
}

bool
rn__rdb_freeze_step(rn__rdb_t *rdb, size_t budget)
{
    rn__rcache_t *c = &rdb->cache;
    if (!c->freezing)
        return false;
    /* From the end of the list: the entries that became dirty last are
     * those the input changes last again (keys recur in about the same
     * order), while those it changes first are frozen as they change,
     * with the entry at hand (cow), at a fraction of a cold one's cost. */
    size_t left = c->npend - c->pendpos;
    size_t n = left > budget ? budget : left;
    freeze_list(c, c->pend, left - n, left, true);
    c->pendpos += n;
    if (c->pendpos < c->npend)
        return true;
    RN_LOG_DEBUG(rdb->owner,
                 "checkpoint: %zu values frozen (%zu as they changed), in slices over %.1f "
                 "ms; pool: %zu entries (%.1f MB), slots %.1f MB, filter %.1f MB, all %.1f MB "
                 "of %.1f MB",
                 c->frz.fz->n, c->frz.ncow,
                 (double)(rn__mono_ns() - c->frz.t0) / 1e6,
                 c->count, (double)c->bytes / 1048576,
                 (double)(c->cap * sizeof(rn__rcslot_t)) / 1048576,
                 (double)rn__rf_bytes(&c->filter) / 1048576, (double)total(c) / 1048576,
                 (double)c->limit / 1048576);
    /* The filter's rebuild, if it needs one, reads RocksDB past the
     * fence: it still holds what it held at the barrier, since the
     * checkpoint's part (finish() in rocksdb_snap.c) waits for this. */
    rdb->fence_pass = true;
    freeze_end(rdb);
    rdb->fence_pass = false;
    pthread_mutex_lock(&rdb->fence_lock);
    c->freezing = false;
    pthread_cond_broadcast(&rdb->fence_cond);
    pthread_mutex_unlock(&rdb->fence_lock);
    return true;
}

rn_code_t
rn__rdb_flush(void *be, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    rn__rcache_t *c = &rdb->cache;
    rn__rdb_fence(rdb); /* a freeze in progress takes what is dirty first */
    size_t n = 0;
    for (size_t i = 0; i < c->cap; i++)
        n += at(c, i) != NULL && (at(c, i)->flags & F_DIRTY);
    if (n == 0) {
        dirty_reset(c);
        return RN_OK;
    }
    rn__rcvic_t *ents = rn_malloc(n * sizeof(*ents));
    if (ents == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory flushing %zu cached values", n);
    n = 0;
    for (size_t i = 0; i < c->cap; i++) {
        rn__rcent_t *e = at(c, i);
        if (e != NULL && (e->flags & F_DIRTY))
            ents[n++] = (rn__rcvic_t){e, ent_hash(e)};
    }
    rn_code_t rc = write_sorted(rdb, ents, n, err);
    if (rc == RN_OK) {
        for (size_t i = 0; i < n; i++)
            mark_written(ents[i].e);
        dirty_reset(c);
    }
    rn_free(ents);
    return rc;
}

/* ---- lookups ---- */

/* Whether the key of hash h is surely absent from RocksDB: the filter
 * says so, and no freeze in progress took it when the filter had no room
 * for it (such keys go in when the freeze ends, and one may have left
 * the cache meanwhile: clean, since the checkpoint took it). */
static inline bool
known_absent(rn__rdb_t *rdb, uint64_t h)
{
    return !rn__rf_maybe(&rdb->cache.filter, h) &&
           !(rdb->cache.frz.nnew > 0 && rn__rdb_frozen_has(rdb, h));
}

/* Reads the value of k from RocksDB, unless the filter rules it out.
 * @returns RN_OK with *val (free with rocksdb_free()), RN_ENOTFOUND or an
 * error. */
static rn_code_t
read_db(rn__rdb_t *rdb, const rn__skey_t *k, uint64_t h, char **val, size_t *vlen,
        size_t *keylen, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    uint8_t *kb = rn__rdb_kbuf(rdb, k->keylen + RN__RDB_PREFIX_OVERHEAD);
    size_t klen = rn__rdb_prefix(kb, k->kg, k->state, k->key, k->keylen, k->ns, k->nslen);
    *keylen = klen;
    *val = NULL;
    *vlen = 0;
    if (known_absent(rdb, h)) {
        c->skipped++;
#ifndef NDEBUG
        /* Debug builds check every answer of the filter against RocksDB:
         * a wrong "absent" would lose state. Not while a checkpoint's
         * part runs: the read would wait for it, which a release build
         * does not (and the frozen keys are not in RocksDB yet). */
        if (!rn__rdb_fence_busy(rdb)) {
            char *v = NULL;
            size_t n;
            rn_code_t drc = rn__rdb_get(rdb, kb, klen, &v, &n, NULL);
            rocksdb_free(v);
            rn_assert(drc != RN_OK);
        }
#endif
        return RN_ENOTFOUND;
    }
    c->reads++;
    return rn__rdb_get_cached(rdb, h, k->state, kb, klen, val, vlen, err);
}

/* Puts a new entry for k (hash h, not cached) with flags and vlen bytes
 * of val (NULL: zeroed), evicting first, so that no entry handed out
 * before moves. @returns its slot, or SIZE_MAX with err set. */
static size_t
insert(rn__rdb_t *rdb, const rn__skey_t *k, uint64_t h, const void *val, size_t vlen,
       uint8_t flags, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    size_t need = rn__fc_round(ent_size(k->keylen, k->nslen, vlen));
    if (total(c) + need > c->limit && evict(rdb, need, err) != RN_OK)
        return SIZE_MAX;
    if (too_full(c) && grow(c, err) != RN_OK)
        return SIZE_MAX;
    rn__rcent_t *e = ent_new(c, k, vlen);
    if (e == NULL) {
        rn__errf(err, RN_ENOMEM, "out of memory for a cached value of %zu bytes", vlen);
        return SIZE_MAX;
    }
    if (val != NULL && vlen > 0)
        memcpy(ent_val(e), val, vlen);
    e->flags = 0;
    if (flags & F_DIRTY)
        mark_dirty(c, e, h); /* new: no freeze wants it */
    e->flags = (uint8_t)(flags | (e->flags & F_GEN));
    return place(c, e, h);
}

/* Makes the partial entry in slot i whole from RocksDB's value for it:
 * rc RN_OK with val, vlen (borrowed), or RN_ENOTFOUND. The entry's delta
 * is folded into that value, and it is dirty. @returns RN_OK or an error
 * (the entry stays partial). */
static rn_code_t
resolve_with(rn__rdb_t *rdb, size_t i, uint64_t h, rn_code_t rc, const char *val, size_t vlen,
             rn_error_t *err)
{
    rn__rcent_t *e = at(&rdb->cache, i);
    /* The value stays what it was (the delta over RocksDB's, made
     * whole): a freeze that still wants the entry takes the whole value
     * later, so no copy now (mark_dirty, not note_dirty). RocksDB's value
     * is the one of the freeze's barrier: nothing writes meanwhile. */
    if (rc == RN_ENOTFOUND) {
        /* The delta is all there is: a new value. */
        mark_dirty(&rdb->cache, e, h);
        e->flags = (uint8_t)((e->flags & ~F_PART) | F_DIRTY);
        rdb->live++;
        return RN_OK;
    }
    /* Oldest first: the stored value, then the delta folded into it; in
     * a copy, since val may be RocksDB's own (a pinned block), and the
     * entry keeps its delta if the fold fails. Aligned: merge functions
     * take their values as structs. */
    _Alignas(16) char small[256];
    char *sum = vlen <= sizeof(small) ? small : rn_malloc(vlen);
    if (sum == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory folding a value of %zu bytes", vlen);
    if (vlen > 0)
        memcpy(sum, val, vlen);
    bool ok = vlen == e->vlen && rn__rdb_merge_fold(rdb->merge, e->state, sum, ent_val(e), vlen);
    if (ok)
        memcpy(ent_val(e), sum, vlen);
    if (sum != small)
        rn_free(sum);
    if (!ok)
        return rn__errf(err, RN_ECORRUPT,
                        "state id %u: stored value of %zu bytes, a merging state of %u", e->state,
                        vlen, e->vlen);
    mark_dirty(&rdb->cache, e, h);
    e->flags = (uint8_t)((e->flags & ~F_PART) | F_DIRTY | F_INDB);
    return RN_OK;
}

/* Makes the partial entry in slot i whole: RocksDB's value (if any) with
 * the entry's delta folded into it, dirty. @returns RN_OK or an error
 * (the entry stays partial). */
static rn_code_t
resolve(rn__rdb_t *rdb, size_t i, uint64_t h, rn_error_t *err)
{
    rn__rcent_t *e = at(&rdb->cache, i);
    rn__skey_t k = ent_key(e);
    char *val;
    size_t vlen, klen;
    rn_code_t rc = read_db(rdb, &k, h, &val, &vlen, &klen, err);
    if (rc != RN_OK && rc != RN_ENOTFOUND)
        return rc;
    rc = resolve_with(rdb, i, h, rc, val, vlen, err);
    rocksdb_free(val);
    return rc;
}

/* The slot of k, loading it from RocksDB on a miss (a clean copy, or a
 * clean known-absent entry, whose value is absent_vlen zeroed bytes so
 * that ref can fill it without moving it) and making a partial entry
 * whole. Evicts first, so that no entry handed out by this call moves.
 * @returns the slot index, or SIZE_MAX with err set. */
static size_t
lookup(rn__rdb_t *rdb, const rn__skey_t *k, uint64_t h, size_t absent_vlen, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    size_t i = find(c, k, h);
    if (RN_LIKELY(at(c, i) != NULL)) {
        c->hits++;
        if (RN_UNLIKELY(at(c, i)->flags & F_PART) && resolve(rdb, i, h, err) != RN_OK)
            return SIZE_MAX;
        return i;
    }
    c->misses++;
    if (RN_UNLIKELY(k->kg > RN__RDB_KG_MAX || k->state > RN__RDB_STATE_MAX)) {
        rn__errf(err, RN_EINVAL, "key group %u or state id %u out of range", k->kg, k->state);
        return SIZE_MAX;
    }
    char *val;
    size_t vlen, klen;
    rn_code_t rc = read_db(rdb, k, h, &val, &vlen, &klen, err);
    if (rc == RN_ENOTFOUND) {
        val = NULL;
        vlen = absent_vlen;
    } else if (rc != RN_OK) {
        return SIZE_MAX;
    }
    rn_dassert(rc != RN_OK || !known_absent(rdb, h));
    i = insert(rdb, k, h, val, vlen, rc == RN_OK ? F_INDB | F_REF : F_ABSENT | F_REF, err);
    rocksdb_free(val);
    return i;
}

rn_code_t
rn__rc_get(rn__rdb_t *rdb, const rn__skey_t *k, const void **val, size_t *len, rn_error_t *err)
{
    size_t i = lookup(rdb, k, rn__state_hash(k), 0, err);
    if (i == SIZE_MAX)
        return err != NULL ? err->code : RN_EIO;
    rn__rcent_t *e = at(&rdb->cache, i);
    e->flags |= F_REF;
    if (e->flags & F_ABSENT)
        return RN_ENOTFOUND;
    *val = ent_val(e);
    *len = e->vlen;
    return RN_OK;
}

/* Makes the entry in slot i present with size bytes (zeroed when it was
 * absent or of another size) and dirty. @returns it, or NULL. */
static rn__rcent_t *
make_present(rn__rdb_t *rdb, size_t i, uint64_t h, size_t size, rn_error_t *err)
{
    rn__rcent_t *e = at(&rdb->cache, i);
    note_dirty(&rdb->cache, e, h); /* before the resize zeroes it */
    if ((e->flags & F_ABSENT) || e->vlen != size) {
        e = ent_resize(&rdb->cache, i, size);
        if (e == NULL) {
            rn__errf(err, RN_ENOMEM, "out of memory for a cached value of %zu bytes", size);
            return NULL;
        }
    }
    if (e->flags & F_ABSENT)
        rdb->live++;
    e->flags = (uint8_t)((e->flags & ~F_ABSENT) | F_DIRTY | F_REF);
    return e;
}

rn_code_t
rn__rc_put(rn__rdb_t *rdb, const rn__skey_t *k, const void *val, size_t len, rn_error_t *err)
{
    if (len > UINT32_MAX / 2)
        return rn__errf(err, RN_EINVAL, "value of %zu bytes is too large", len);
    uint64_t h = rn__state_hash(k);
    size_t i = lookup(rdb, k, h, len, err);
    if (i == SIZE_MAX)
        return err != NULL ? err->code : RN_EIO;
    rn__rcent_t *e = make_present(rdb, i, h, len, err);
    if (e == NULL)
        return RN_ENOMEM;
    if (len > 0)
        memcpy(ent_val(e), val, len);
    return RN_OK;
}

/* A ref that found its value in the cache: the per-record path. */
static inline void *
ref_hit(rn__rcache_t *c, rn__rcent_t *e, uint64_t h, bool *created)
{
    c->hits++;
    note_dirty(c, e, h);
    e->flags |= F_DIRTY | F_REF;
    *created = false;
    return ent_val(e);
}

void *
rn__rc_ref(rn__rdb_t *rdb, const rn__skey_t *k, size_t size, bool *created, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    uint64_t h = rn__state_hash(k);
    /* The hit path first, inline: it is the per-record cost. */
    size_t i = find(c, k, h);
    rn__rcent_t *e = at(c, i);
    if (RN_LIKELY(e != NULL && !(e->flags & (F_ABSENT | F_PART)) && e->vlen == size))
        return ref_hit(c, e, h, created);
    if (size > UINT32_MAX / 2) {
        rn__errf(err, RN_EINVAL, "value of %zu bytes is too large", size);
        return NULL;
    }
    if (e == NULL || (e->flags & F_PART)) {
        i = lookup(rdb, k, h, size, err);
        if (i == SIZE_MAX)
            return NULL;
        e = at(c, i);
    }
    if (!(e->flags & F_ABSENT) && e->vlen != size) {
        rn__errf(err, RN_EINVAL, "value of %u bytes referenced as %zu bytes", e->vlen, size);
        return NULL;
    }
    *created = (e->flags & F_ABSENT) != 0;
    e = make_present(rdb, i, h, size, err);
    return e != NULL ? ent_val(e) : NULL;
}

void *
rn__rc_ref_part(rn__rdb_t *rdb, const rn__skey_t *k, size_t size, bool *fresh, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    uint64_t h = rn__state_hash(k);
    size_t i = find(c, k, h);
    rn__rcent_t *e = at(c, i);
    /* A partial entry takes folds as it is. */
    if (RN_LIKELY(e != NULL && !(e->flags & F_ABSENT) && e->vlen == size))
        return ref_hit(c, e, h, fresh);
    if (e != NULL)
        return rn__rc_ref(rdb, k, size, fresh, err); /* absent or of another size */
    if (size > UINT32_MAX / 2) {
        rn__errf(err, RN_EINVAL, "value of %zu bytes is too large", size);
        return NULL;
    }
    c->misses++;
    if (RN_UNLIKELY(k->kg > RN__RDB_KG_MAX || k->state > RN__RDB_STATE_MAX)) {
        rn__errf(err, RN_EINVAL, "key group %u or state id %u out of range", k->kg, k->state);
        return NULL;
    }
    *fresh = true;
    if (known_absent(rdb, h)) {
        /* Known absent: a whole new value, as ref makes it. read_db
         * answers from the filter (and checks it in debug builds). */
        char *val;
        size_t vlen, klen;
        rn_code_t rc = read_db(rdb, k, h, &val, &vlen, &klen, err);
        rn_assert(rc == RN_ENOTFOUND);
        i = insert(rdb, k, h, NULL, size, F_DIRTY | F_REF, err);
        if (i != SIZE_MAX)
            rdb->live++;
    } else {
        i = insert(rdb, k, h, NULL, size, F_PART | F_DIRTY | F_REF, err);
    }
    return i != SIZE_MAX ? ent_val(at(c, i)) : NULL;
}

void
rn__rc_prefetch_key(rn__rdb_t *rdb, const rn__skey_t *k)
{
    const rn__rcache_t *c = &rdb->cache;
    __builtin_prefetch(&c->slots[rn__state_hash(k) & (c->cap - 1)]);
}

/* A key of a prefetch batch: its encoding, then where it came from. */
typedef struct pfkey {
    rn__rdb_kref_t k; /* first: rn__rdb_cmp_key sorts by it */
    const rn__skey_t *sk;
    uint64_t hash;
    bool part; /* cached partial when the batch was made */
} pfkey_t;

void
rn__rc_prefetch(rn__rdb_t *rdb, const rn__skey_t *keys, size_t n)
{
    rn__rcache_t *c = &rdb->cache;
    size_t kbytes = 0;
    for (size_t i = 0; i < n; i++)
        kbytes += keys[i].keylen + RN__RDB_PREFIX_OVERHEAD;
    pfkey_t *w = rn_malloc(n * sizeof(*w));
    uint8_t *buf = rn_malloc(kbytes);
    const char **kp = rn_malloc(n * sizeof(*kp));
    size_t *kl = rn_malloc(n * sizeof(*kl));
    rocksdb_pinnableslice_t **vals = rn_malloc(n * sizeof(*vals));
    char **errs = rn_malloc(n * sizeof(*errs));
    size_t m = 0, off = 0;
    if (w == NULL || buf == NULL || kp == NULL || kl == NULL || vals == NULL || errs == NULL)
        goto done; /* a hint: the reads will come one by one */
    for (size_t i = 0; i < n; i++) {
        const rn__skey_t *k = &keys[i];
        if (k->kg > RN__RDB_KG_MAX || k->state > RN__RDB_STATE_MAX)
            continue;
        uint64_t h = rn__state_hash(k);
        /* Cached whole, or known absent: nothing to read. A partial
         * entry (a window touched again after its value was written and
         * evicted, or whose first touch the filter could not rule out) is
         * read here too and made whole below: one by one, its take's read
         * was most of a firing when the cache was short (1M windows, 1M
         * reads, 12 us each). */
        const rn__rcent_t *ce = at(c, find(c, k, h));
        if ((ce != NULL && !(ce->flags & F_PART)) || !rn__rf_maybe(&c->filter, h))
            continue;
        /* A frozen key waits for the checkpoint's writes: left to its
         * read, so that the others need not wait (rn__rdb_multi_get). */
        if (rn__rdb_fence_busy(rdb) && rn__rdb_frozen_has(rdb, h))
            continue;
        w[m].k.key = buf + off;
        w[m].k.len = rn__rdb_prefix(buf + off, k->kg, k->state, k->key, k->keylen, k->ns,
                                    k->nslen);
        w[m].sk = k;
        w[m].hash = h;
        w[m].part = ce != NULL;
        off += w[m].k.len;
        m++;
    }
    if (m == 0)
        goto done;
    qsort(w, m, sizeof(*w), rn__rdb_cmp_key);
    size_t u = 0; /* without duplicates: MultiGet wants distinct keys */
    for (size_t i = 0; i < m; i++)
        if (u == 0 || rn__rdb_cmp_key(&w[u - 1], &w[i]) != 0)
            w[u++] = w[i];
    m = u;
    for (size_t i = 0; i < m; i++) {
        kp[i] = (const char *)w[i].k.key;
        kl[i] = w[i].k.len;
    }
    rn_error_t err = RN_ERROR_INIT;
    if (rn__rdb_multi_get(rdb, m, kp, kl, vals, errs, &err) != RN_OK) {
        /* Nothing is known: the reads will ask again, and fail. */
        RN_LOG_DEBUG(rdb->owner, "state prefetch: %s", err.msg);
        goto done;
    }
    /* An insert below may evict, and an eviction that waits at the fence
     * finishes a freeze in progress and lets its writes in: a partial
     * entry frozen then has its delta in RocksDB and zeroed here, and the
     * value read before would lose it. After such a wait, partial entries
     * are left to their takes. */
    uint64_t waits = rdb->fence_waits;
    for (size_t i = 0; i < m; i++) {
        size_t vlen = 0;
        const char *v = vals[i] != NULL ? rocksdb_pinnableslice_value(vals[i], &vlen) : NULL;
        /* Found again: an insert before may have evicted a partial one
         * (its delta written, so the value read no longer is RocksDB's:
         * left to its take). */
        size_t j = find(c, w[i].sk, w[i].hash);
        if (w[i].part) {
            /* A failure (a stored value of another size) leaves it
             * partial: its take reads again and reports it. */
            if (at(c, j) != NULL && (at(c, j)->flags & F_PART) &&
                rdb->fence_waits == waits)
                (void)resolve_with(rdb, j, w[i].hash, v != NULL ? RN_OK : RN_ENOTFOUND, v, vlen,
                                   &err);
        } else if (at(c, j) == NULL) {
            /* Clean entries, as a miss would load them. A failed insert
             * (out of memory, a failed eviction) leaves the key to its
             * read. */
            c->misses++;
            (void)insert(rdb, w[i].sk, w[i].hash, v, v != NULL ? vlen : 0,
                         v != NULL ? F_INDB | F_REF : F_ABSENT | F_REF, &err);
        }
        if (vals[i] != NULL)
            rocksdb_pinnableslice_destroy(vals[i]);
    }
done:
    rn_free(w);
    rn_free(buf);
    rn_free(kp);
    rn_free(kl);
    rn_free(vals);
    rn_free(errs);
}

/* Deletes the present entry in slot i. */
static void
del_at(rn__rdb_t *rdb, size_t i, uint64_t h)
{
    rn__rcache_t *c = &rdb->cache;
    rn__rcent_t *e = at(c, i);
    /* First: a freeze that wants the value copies it before it goes. */
    note_dirty(c, e, h);
    /* Merged values that never were read are not counted: see
     * rn__rc_ref_part. */
    if (rdb->live > 0)
        rdb->live--;
    if (!(e->flags & F_INDB)) {
        /* Only ever here: nothing to tell RocksDB. */
        remove_at(c, i);
        ent_free(c, e);
        return;
    }
    /* A pending delete, in its block (the stale bytes stay, ABSENT says
     * they are gone) until the next freeze or flush takes it. */
    e->flags = (uint8_t)(F_ABSENT | F_DIRTY | F_INDB | F_REF | (e->flags & F_GEN));
}

/* A delete or take of k (hash h) that missed the cache: reads RocksDB and,
 * when it holds the value, deletes it there at once rather than caching a
 * pending delete. When a window fires, most of the windows taken are
 * no longer cached (at 1M keys in 64 MB, 70%); their pending deletes took
 * the cache's room from the next window's live accumulators, which were
 * then written out and read back. Copies up to size bytes of the value
 * to buf (borrowed; NULL: none). @returns RN_OK, RN_ENOTFOUND or an error. */
static rn_code_t
del_uncached(rn__rdb_t *rdb, const rn__skey_t *k, uint64_t h, void *buf, size_t size,
             size_t *len, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    c->misses++;
    if (RN_UNLIKELY(k->kg > RN__RDB_KG_MAX || k->state > RN__RDB_STATE_MAX))
        return rn__errf(err, RN_EINVAL, "key group %u or state id %u out of range", k->kg,
                        k->state);
    char *val;
    size_t vlen, klen;
    rn_code_t rc = read_db(rdb, k, h, &val, &vlen, &klen, err);
    if (rc != RN_OK)
        return rc;
    *len = vlen;
    if (buf != NULL && vlen > 0)
        memcpy(buf, val, vlen < size ? vlen : size);
    rocksdb_free(val);
    /* read_db left the encoded key in kbuf. */
    rocksdb_writebatch_delete(rdb->wb, (const char *)rdb->kbuf, klen);
    if ((rc = rn__rdb_write(rdb, err)) != RN_OK)
        return rc;
    c->written++;
    rn__rf_remove(&c->filter, h);
    if (rdb->live > 0)
        rdb->live--;
    return RN_OK;
}

rn_code_t
rn__rc_del(rn__rdb_t *rdb, const rn__skey_t *k, bool *existed, rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    uint64_t h = rn__state_hash(k);
    size_t i = find(c, k, h);
    rn__rcent_t *e = at(c, i);
    if (e == NULL) {
        size_t len;
        rn_code_t rc = del_uncached(rdb, k, h, NULL, 0, &len, err);
        *existed = rc == RN_OK;
        return rc == RN_ENOTFOUND ? RN_OK : rc;
    }
    c->hits++;
    if (e->flags & F_PART) {
        /* Whatever RocksDB holds goes too: a pending delete, no read
         * (after a freeze that wants the delta has it). */
        note_dirty(c, e, h);
        e->flags = (uint8_t)((e->flags & ~F_PART) | F_INDB);
        *existed = true;
        del_at(rdb, i, h);
        return RN_OK;
    }
    *existed = !(e->flags & F_ABSENT);
    if (*existed)
        del_at(rdb, i, h);
    return RN_OK;
}

rn_code_t
rn__rc_take(rn__rdb_t *rdb, const rn__skey_t *k, void *buf, size_t size, size_t *len,
            rn_error_t *err)
{
    rn__rcache_t *c = &rdb->cache;
    uint64_t h = rn__state_hash(k);
    size_t i = find(c, k, h);
    if (at(c, i) == NULL)
        return del_uncached(rdb, k, h, buf, size, len, err);
    c->hits++;
    if ((at(c, i)->flags & F_PART) && resolve(rdb, i, h, err) != RN_OK)
        return err != NULL ? err->code : RN_EIO;
    rn__rcent_t *e = at(c, i);
    if (e->flags & F_ABSENT)
        return RN_ENOTFOUND;
    *len = e->vlen;
    if (e->vlen > 0)
        memcpy(buf, ent_val(e), e->vlen < size ? e->vlen : size);
    del_at(rdb, i, h);
    return RN_OK;
}

void
rn__rdb_cache_stats(void *be, uint64_t *hits, uint64_t *misses, uint64_t *evicted,
                    uint64_t *written)
{
    const rn__rdb_t *rdb = be;
    *hits = rdb->cache.hits;
    *misses = rdb->cache.misses;
    *evicted = rdb->cache.evicted;
    *written = rdb->cache.written;
}

void
rn__rdb_filter_stats(void *be, uint64_t *skipped, uint64_t *rebuilt)
{
    const rn__rdb_t *rdb = be;
    *skipped = rdb->cache.skipped;
    *rebuilt = rdb->cache.filter.grown;
}
