/*
 * state/rocksdb_timers.c: the RocksDB backend's timer store, where the
 * handle spills the timers of the latest times (state.c, timers.c).
 *
 * Design: one key per timer, empty value, laid out (rocksdb_int.h,
 * docs/state.md) as 0xfe | domain | time | kg | keylen | key | ns with the
 * time big-endian and its sign bit flipped, so that a domain's timers sort
 * by time and "every timer up to a time" is one iterator from the first
 * stored time. A load deletes what it read with one range tombstone and
 * remembers where it stopped (tres), so that the next load of the same
 * time starts there rather than stepping again over every key the
 * earlier loads deleted: a tumbling window of 2M keys has 2M timers of one
 * time, loaded a few thousand at a time, and scans from the time's start
 * made that quadratic (most of such a run). A write below the remembered
 * key forgets it. The handle keeps the store's earliest time, so that it
 * never reads the store for a timer earlier than everything in it.
 *
 * @thread task.
 */
#include "state/rocksdb_int.h"

/* Encodes t of domain into out (room for keylen + RN__RDB_TIMER_OVERHEAD).
 * @returns its length. */
static size_t
tkey_encode(uint8_t *out, rn_time_domain_t domain, const rn__tref_t *t)
{
    uint8_t *p = out;
    *p++ = (uint8_t)RN__RDB_TIMER_TAG;
    *p++ = (uint8_t)domain;
    rn__rdb_be64(p, (uint64_t)t->time ^ (1ULL << 63));
    p += 8;
    *p++ = (uint8_t)(t->kg >> 24);
    *p++ = (uint8_t)(t->kg >> 16);
    *p++ = (uint8_t)(t->kg >> 8);
    *p++ = (uint8_t)t->kg;
    p = rn__rdb_put_len(p, t->keylen);
    if (t->keylen > 0)
        memcpy(p, t->key, t->keylen);
    p += t->keylen;
    if (t->nslen > 0)
        memcpy(p, t->ns, t->nslen);
    p += t->nslen;
    return (size_t)(p - out);
}

/* The seek key of domain's first time >= time. */
static size_t
tkey_seek(uint8_t *out, rn_time_domain_t domain, int64_t time)
{
    out[0] = (uint8_t)RN__RDB_TIMER_TAG;
    out[1] = (uint8_t)domain;
    rn__rdb_be64(out + 2, (uint64_t)time ^ (1ULL << 63));
    return 10;
}

/* Decodes a stored timer key of domain. @returns false when key is not
 * one (another domain, state or metadata). */
static bool
tkey_decode(const uint8_t *key, size_t len, rn_time_domain_t domain, rn__tref_t *t)
{
    if (len < RN__RDB_TIMER_HEAD + 1 || key[0] != RN__RDB_TIMER_TAG || key[1] != (uint8_t)domain)
        return false;
    t->time = (int64_t)(rn__rdb_load_be64(key + 2) ^ (1ULL << 63));
    t->kg = ((uint32_t)key[10] << 24) | ((uint32_t)key[11] << 16) | ((uint32_t)key[12] << 8) |
            key[13];
    size_t p = RN__RDB_TIMER_HEAD;
    uint64_t keylen;
    if (!rn__rdb_get_len(key, len, &p, &keylen))
        return false;
    if (keylen > len - p || len - p - keylen > RN_STATE_NS_MAX)
        return false;
    t->keylen = (uint32_t)keylen;
    t->key = key + p;
    t->ns = key + p + keylen;
    t->nslen = (uint32_t)(len - p - keylen);
    return true;
}

uint64_t
rn__rdb_timer_budget(void *be, const uint64_t *bytes[2])
{
    rn__rdb_t *rdb = be;
    rdb->cache.shared[0] = bytes[0];
    rdb->cache.shared[1] = bytes[1];
    rdb->cache.gathered = &rdb->tg;
    return rdb->tlimit;
}

/* Timers gathered in rdb->tg before they are written: a RocksDB write
 * per registration costs a memtable insert each, with cache misses all
 * the way down its skiplist; a batch sorted by key inserts each key next
 * to the last (the memtable keeps the last insert's position), which
 * measured several times cheaper. */
#define TBUF_MAX 8192

/* Key i of ks. */
static rn__rdb_kref_t
tk_at(const rn__rdb_tkeys_t *ks, size_t i)
{
    return (rn__rdb_kref_t){ks->buf + ks->pos[i].off, ks->pos[i].len};
}

/* Room for one more key of up to need bytes. @returns false when out of
 * memory. */
static bool
tk_room(rn__rdb_tkeys_t *ks, size_t need)
{
    if (ks->len + need > ks->cap) {
        size_t ncap = ks->cap ? ks->cap * 2 : 64 << 10;
        while (ncap < ks->len + need)
            ncap *= 2;
        uint8_t *nb = rn_realloc(ks->buf, ncap);
        if (nb == NULL)
            return false;
        ks->buf = nb;
        ks->cap = ncap;
    }
    if (ks->n == ks->cappos) {
        size_t ncap = ks->cappos ? ks->cappos * 2 : 1024;
        rn__rdb_tkpos_t *np = rn_realloc(ks->pos, ncap * sizeof(*np));
        if (np == NULL)
            return false;
        ks->pos = np;
        ks->cappos = ncap;
    }
    return true;
}

static int
cmp_pos(const void *a, const void *b, void *buf)
{
    const rn__rdb_tkpos_t *x = a, *y = b;
    rn__rdb_kref_t kx = {(const uint8_t *)buf + x->off, x->len};
    rn__rdb_kref_t ky = {(const uint8_t *)buf + y->off, y->len};
    return rn__rdb_cmp_key(&kx, &ky);
}

/* The index in sorted ks of its first key at or after k. */
static size_t
tk_lower(const rn__rdb_tkeys_t *ks, const rn__rdb_kref_t *k)
{
    size_t lo = 0, hi = ks->sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rn__rdb_kref_t m = tk_at(ks, mid);
        if (rn__rdb_cmp_key(&m, k) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* tgmin[domain] of a sorted tg: its first live key of the domain. */
static void
tg_min_sorted(rn__rdb_t *rdb, rn_time_domain_t domain, size_t from)
{
    rn__rdb_tkeys_t *tg = &rdb->tg;
    size_t i = from;
    while (i < tg->n && tg->pos[i].dead)
        i++;
    rn__rdb_kref_t k;
    rdb->tgmin[domain] = i < tg->n && (k = tk_at(tg, i), k.len > 1 && k.key[1] == (uint8_t)domain)
                             ? i
                             : SIZE_MAX;
}

/* Sorts the gathered timers by key (a load that needs them while a
 * checkpoint's part runs): only what was added since the last sort is
 * new, a sort a firing at most. */
static void
tg_sort(rn__rdb_t *rdb)
{
    rn__rdb_tkeys_t *tg = &rdb->tg;
    if (tg->sorted == tg->n)
        return;
    qsort_r(tg->pos, tg->n, sizeof(*tg->pos), cmp_pos, tg->buf);
    tg->sorted = tg->n;
    for (int d = 0; d < 2; d++) {
        uint8_t first[2] = {(uint8_t)RN__RDB_TIMER_TAG, (uint8_t)d};
        rn__rdb_kref_t k = {first, 2};
        tg_min_sorted(rdb, (rn_time_domain_t)d, tk_lower(tg, &k));
    }
}

/* Empties the gathered timers (keeping their buffers). */
static void
tg_clear(rn__rdb_t *rdb)
{
    rdb->tg.n = 0;
    rdb->tg.len = 0;
    rdb->tg.sorted = 0;
    rdb->tgmin[0] = rdb->tgmin[1] = SIZE_MAX;
}

/* Forgets the task's copy of a checkpoint's timers (its part is done). */
static void
tfz_clear(rn__rdb_t *rdb)
{
    rdb->tfz.n = 0;
    rdb->tfz.len = 0;
    rdb->tfz.sorted = 0;
    rn_free(rdb->tfzsort);
    rdb->tfzsort = NULL;
    rdb->ntfzsort = 0;
}

/* Adds the deferred range deletes to rdb->wb, first in the batch (the
 * write waits at the fence: the checkpoint's timers are in RocksDB
 * before, and the ranges delete them too; a timer written after them,
 * in the same batch or later, stays). @returns whether there were any. */
static bool
tdel_take(rn__rdb_t *rdb)
{
    for (size_t i = 0; i < rdb->ntdel; i++) {
        rn__rdb_tdel_t *d = &rdb->tdel[i];
        rocksdb_writebatch_delete_range(rdb->wb, (const char *)d->lo, d->lolen,
                                        (const char *)d->hi, d->hilen);
        rn_free(d->lo);
    }
    bool any = rdb->ntdel > 0;
    rdb->ntdel = 0;
    return any;
}

rn_code_t
rn__rdb_timer_settle(rn__rdb_t *rdb, rn_error_t *err)
{
    return tdel_take(rdb) ? rn__rdb_write(rdb, err) : RN_OK;
}

/* Defers the delete of [lo, hi); a range that starts where the last one
 * ends extends it (loads follow each other). */
static rn_code_t
tdel_add(rn__rdb_t *rdb, const uint8_t *lo, size_t lolen, const uint8_t *hi, size_t hilen,
         rn_error_t *err)
{
    rn__rdb_tdel_t *last = rdb->ntdel > 0 ? &rdb->tdel[rdb->ntdel - 1] : NULL;
    if (last != NULL && last->hilen == lolen && memcmp(last->hi, lo, lolen) == 0) {
        uint8_t *b = rn_malloc(last->lolen + hilen);
        if (b == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory deferring a timer delete");
        memcpy(b, last->lo, last->lolen);
        memcpy(b + last->lolen, hi, hilen);
        rn_free(last->lo);
        last->lo = b;
        last->hi = b + last->lolen;
        last->hilen = hilen;
        return RN_OK;
    }
    if (rdb->ntdel == rdb->captdel) {
        size_t ncap = rdb->captdel ? rdb->captdel * 2 : 8;
        rn__rdb_tdel_t *nd = rn_realloc(rdb->tdel, ncap * sizeof(*nd));
        if (nd == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory deferring a timer delete");
        rdb->tdel = nd;
        rdb->captdel = ncap;
    }
    uint8_t *b = rn_malloc(lolen + hilen);
    if (b == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory deferring a timer delete");
    memcpy(b, lo, lolen);
    memcpy(b + lolen, hi, hilen);
    rdb->tdel[rdb->ntdel++] = (rn__rdb_tdel_t){b, lolen, b + lolen, hilen};
    return RN_OK;
}

/* A gathered timer to sort: bytes 1 to 24 of its key inline (after the
 * tag, the same for all), big-endian and zero-padded, which hold domain,
 * time, key group, key length and the key's first bytes. Window timers
 * mostly share time and key group, and keys their first bytes: with 16
 * bytes inline most comparisons still read both keys (a cache miss each
 * in a buffer of tens of MB). 32 bytes: glibc's qsort sorts them in
 * place. */
typedef struct tsort {
    uint64_t p[3];
    uint32_t i; /* in tg */
    uint32_t len;
} tsort_t;

_Static_assert(sizeof(tsort_t) == 32, "sorted in place by glibc's qsort");

static void
tsort_set(tsort_t *t, const rn__rdb_tkeys_t *ks, size_t i)
{
    rn__rdb_kref_t k = tk_at(ks, i);
    for (size_t w = 0; w < 3; w++) {
        size_t from = 1 + 8 * w;
        t->p[w] = k.len > from ? rn__rdb_be_pad(k.key + from, k.len - from) : 0;
    }
    t->i = (uint32_t)i;
    t->len = (uint32_t)k.len;
}

/* RocksDB's order of tsort_t (ks is the rn__rdb_tkeys_t they index): the
 * inline bytes first; ties (padding, or keys that share 25 bytes) compare
 * the whole keys. */
static int
cmp_tsort(const void *a, const void *b, void *ks)
{
    const tsort_t *x = a, *y = b;
    for (int w = 0; w < 3; w++)
        if (x->p[w] != y->p[w])
            return x->p[w] < y->p[w] ? -1 : 1;
    rn__rdb_kref_t kx = tk_at(ks, x->i), ky = tk_at(ks, y->i);
    return rn__rdb_cmp_key(&kx, &ky);
}

/* The live keys of ks as sort items (rn_malloc'd, *k of them), or NULL
 * when out of memory. */
static tsort_t *
tsort_live(const rn__rdb_tkeys_t *ks, size_t *k)
{
    rn_assert(ks->n <= UINT32_MAX);
    tsort_t *w = rn_malloc((ks->n ? ks->n : 1) * sizeof(*w));
    *k = 0;
    if (w == NULL)
        return NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (!ks->pos[i].dead)
            tsort_set(&w[(*k)++], ks, i);
    return w;
}

/* Writes the gathered timers in key order (rn__rdb_cmp_key), so that
 * reads see them, after the deferred deletes in the same batch. */
static rn_code_t
tg_flush(rn__rdb_t *rdb, rn_error_t *err)
{
    size_t n = rdb->tg.n;
    bool any = tdel_take(rdb);
    if (n == 0)
        return any ? rn__rdb_write(rdb, err) : RN_OK;
    size_t k;
    tsort_t *keys = tsort_live(&rdb->tg, &k);
    if (keys == NULL) {
        rocksdb_writebatch_clear(rdb->wb);
        return rn__errf(err, RN_ENOMEM, "out of memory writing %zu timers", n);
    }
    /* A large batch (gathered while checkpoints ran) is written as sorted
     * runs of TBUF_MAX: each run inserts key by key next to the last, as
     * a small batch does, and sorts within the processor's cache. */
    if (rdb->tg.sorted < n)
        for (size_t from = 0; from < k; from += TBUF_MAX)
            qsort_r(keys + from, k - from < TBUF_MAX ? k - from : TBUF_MAX, sizeof(*keys),
                    cmp_tsort, &rdb->tg);
    for (size_t i = 0; i < k; i++) {
        rn__rdb_kref_t t = tk_at(&rdb->tg, keys[i].i);
        rocksdb_writebatch_put(rdb->wb, (const char *)t.key, t.len, "", 0);
    }
    rn_free(keys);
    tg_clear(rdb);
    return rn__rdb_write(rdb, err);
}

rn_code_t
rn__rdb_timer_sync(void *be, rn_error_t *err)
{
    return tg_flush(be, err);
}

void
rn__rdb_timer_freeze(rn__rdb_t *rdb)
{
    rdb->tg_hold = true;
    /* The checkpoint's part reads them where they are, in the task's copy
     * (tfz), which nothing changes until that part is done (loads mark
     * only tg's keys dead, and the next snapshot or a load clears tfz
     * after the fence): copied here, a million timers held the task up
     * 50 ms. The gathering starts again in the previous copy's buffers. */
    tfz_clear(rdb);
    rn__rdb_tkeys_t t = rdb->tfz;
    rdb->tfz = rdb->tg;
    rdb->tg = t;
    tg_clear(rdb);
    rdb->fz.tk = rdb->tfz.n > 0 ? &rdb->tfz : NULL;
}

rn_code_t
rn__rdb_tkeys_sorted(const rn__rdb_tkeys_t *ks,
                     bool (*fn)(void *ctx, const uint8_t *key, size_t len), void *ctx,
                     rn_error_t *err)
{
    if (ks->n == 0)
        return RN_OK;
    size_t k;
    tsort_t *w = tsort_live(ks, &k);
    if (w == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory sorting %zu timers", ks->n);
    qsort_r(w, k, sizeof(*w), cmp_tsort, (void *)ks);
    for (size_t i = 0; i < k; i++) {
        /* A timer registered twice: written once. */
        if (i > 0 && cmp_tsort(&w[i - 1], &w[i], (void *)ks) == 0)
            continue;
        rn__rdb_kref_t t = tk_at(ks, w[i].i);
        if (!fn(ctx, t.key, t.len))
            break;
    }
    rn_free(w);
    return RN_OK;
}

void
rn__rdb_timer_fini(rn__rdb_t *rdb)
{
    tfz_clear(rdb);
    rn_free(rdb->tg.buf);
    rn_free(rdb->tg.pos);
    rn_free(rdb->tfz.buf);
    rn_free(rdb->tfz.pos);
    for (size_t i = 0; i < rdb->ntdel; i++)
        rn_free(rdb->tdel[i].lo);
    rn_free(rdb->tdel);
    rn_free(rdb->tres[0]);
    rn_free(rdb->tres[1]);
}

/* Whether the gathered timers and those in memory fill the timers' share
 * of the bound, or the pool is nearly full. */
static bool
timers_full(const rn__rdb_t *rdb)
{
    uint64_t used = rn__rdb_tkeys_used(&rdb->tg);
    for (int d = 0; d < 2; d++)
        if (rdb->cache.shared[d] != NULL)
            used += *rdb->cache.shared[d];
    return used >= rdb->tlimit || !rn__rc_roomy(&rdb->cache);
}

rn_code_t
rn__rdb_timer_write(void *be, rn_time_domain_t domain, const rn__tref_t *t, size_t n,
                    rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    rn__rdb_tkeys_t *tg = &rdb->tg;
    for (size_t i = 0; i < n; i++) {
        if (!tk_room(tg, t[i].keylen + RN__RDB_TIMER_OVERHEAD))
            return rn__errf(err, RN_ENOMEM, "out of memory for %zu timers", tg->n);
        uint8_t *k = tg->buf + tg->len;
        size_t klen = tkey_encode(k, domain, &t[i]);
        tg->pos[tg->n++] = (rn__rdb_tkpos_t){tg->len, (uint32_t)klen, 0};
        tg->len += klen;
        rn__rdb_kref_t a = {k, klen};
        if (rdb->tgmin[domain] == SIZE_MAX) {
            rdb->tgmin[domain] = tg->n - 1;
        } else {
            rn__rdb_kref_t m = tk_at(tg, rdb->tgmin[domain]);
            if (rn__rdb_cmp_key(&a, &m) < 0)
                rdb->tgmin[domain] = tg->n - 1;
        }
        if (rdb->tres[domain] != NULL) {
            rn__rdb_kref_t b = {rdb->tres[domain], rdb->treslen[domain]};
            if (rn__rdb_cmp_key(&a, &b) < 0) {
                /* Where the last load stopped is no longer the first key
                 * left. */
                rn_free(rdb->tres[domain]);
                rdb->tres[domain] = NULL;
            }
        }
        /* While a checkpoint's part runs, the write would wait at the
         * fence (a second, with a million changed windows a checkpoint);
         * and once the job takes checkpoints, the next one takes the
         * batch with its frozen values (rn__rdb_timer_freeze), sorted
         * and ingested off the task: with 1M windows, whose timers all
         * spill, the task's sorts and memtable inserts of them were
         * several percent of its time. The batch counts in the
         * timers' share of the bound (the cache gives way to it, total()
         * in rocksdb_cache.c) and grows meanwhile until it and the
         * timers in memory fill that share, or (between checkpoints)
         * while the pool has room: held in a full one, the timers
         * pushed out cached values, written and read back again (1M
         * windows in 256 MB ran at half the speed); a load writes it
         * first. */
        bool flush = tg->n % TBUF_MAX == 0; /* asked once a batch */
        if (flush && rn__rdb_fence_busy(rdb)) /* the write would wait */
            flush = tg->n >= 16 * TBUF_MAX && timers_full(rdb);
        else if (flush && rdb->tg_hold) /* nor push out cached values */
            flush = timers_full(rdb);
        if (flush) {
            rn_code_t rc = tg_flush(rdb, err);
            if (rc != RN_OK)
                return rc;
        }
    }
    return RN_OK;
}

/* Encodes t into rdb->kbuf and looks it up. @returns RN_OK, RN_ENOTFOUND
 * or RN_EIO; *klen the encoded length. */
static rn_code_t
tkey_lookup(rn__rdb_t *rdb, rn_time_domain_t domain, const rn__tref_t *t, size_t *klen,
            rn_error_t *err)
{
    uint8_t *k = rn__rdb_kbuf(rdb, t->keylen + RN__RDB_TIMER_OVERHEAD);
    *klen = tkey_encode(k, domain, t);
    char *val = NULL;
    size_t vlen = 0;
    rn_code_t rc = rn__rdb_get(rdb, k, *klen, &val, &vlen, err);
    if (val != NULL)
        rocksdb_free(val);
    return rc;
}

rn_code_t
rn__rdb_timer_del(void *be, rn_time_domain_t domain, const rn__tref_t *t, bool *existed,
                  rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    size_t klen;
    *existed = false;
    rn_code_t rc = tg_flush(rdb, err);
    if (rc != RN_OK)
        return rc;
    rc = tkey_lookup(rdb, domain, t, &klen, err);
    if (rc == RN_ENOTFOUND)
        return RN_OK;
    if (rc != RN_OK)
        return rc;
    *existed = true;
    rocksdb_writebatch_delete(rdb->wb, (const char *)rdb->kbuf, klen);
    return rn__rdb_write(rdb, err);
}

typedef struct load {
    rn__rdb_t *rdb;
    rn_time_domain_t domain;
    int64_t upto;
    size_t max;
    size_t n;
    rn_code_t (*fn)(void *ctx, const rn__tref_t *t);
    void *ctx;
    int64_t next;
    uint8_t *stop;  /* the first key not loaded (malloc'd), the end of what to delete */
    size_t stoplen;
    rn_code_t rc;
} load_t;

/* Stops the load at key (of time): the first key not loaded. */
static void
load_stop(load_t *ld, const uint8_t *key, size_t len, int64_t time)
{
    ld->next = time;
    ld->stop = rn_malloc(len);
    if (ld->stop == NULL)
        ld->rc = RN_ENOMEM;
    else
        memcpy(ld->stop, key, len);
    ld->stoplen = len;
}

static bool
load_key(void *ctx, const uint8_t *key, size_t len)
{
    load_t *ld = ctx;
    rn__tref_t t;
    if (!tkey_decode(key, len, ld->domain, &t))
        return false; /* past the domain: nothing left */
    if (t.time > ld->upto || ld->n >= ld->max) {
        /* A load may stop inside a time (one time may hold millions of
         * timers); the next one seeks to the same time and finds the rest
         * past the range tombstone of this one. */
        load_stop(ld, key, len, t.time);
        return false;
    }
    rn_code_t rc = ld->fn(ld->ctx, &t);
    if (rc != RN_OK) {
        ld->rc = rc;
        ld->next = t.time;
        return false;
    }
    ld->n++;
    return true;
}

/* ---- loads while a checkpoint's part runs ----
 *
 * Until the part is done, the timers the checkpoint took over are not
 * in RocksDB (they go with its frozen values) and no write of the task
 * may reach RocksDB (the fence). A load then merges RocksDB's timers
 * with the task's copy of the taken ones (tfz) and, when it wants any of
 * them, the gathered ones (tg, marked dead once loaded), and defers its
 * range delete (tdel), written before any other timer write once the
 * part is done: at the firing of a window of a million keys the task
 * used to wait a second there. It still waits when where loads resume is
 * unknown while a deferred delete is not written (it would read what an
 * earlier load took). */

/* tfz's live keys in key order (duplicates stay: the merge loads a key
 * once). @returns false when out of memory. */
static bool
tfz_sort(rn__rdb_t *rdb)
{
    size_t n = rdb->tfz.n;
    if (rdb->tfzsort != NULL || n == 0)
        return true;
    rn__rdb_kref_t *w = rn_malloc(n * sizeof(*w));
    if (w == NULL)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!rdb->tfz.pos[i].dead)
            w[k++] = tk_at(&rdb->tfz, i);
    qsort(w, k, sizeof(*w), rn__rdb_cmp_key);
    rdb->tfzsort = w;
    rdb->ntfzsort = k;
    return true;
}

/* Whether a load may go on without waiting (see above). */
static bool
busy_ok(rn__rdb_t *rdb, rn_time_domain_t domain)
{
    /* Every deferred range ends at or before where loads resume. */
    if (rdb->tres[domain] == NULL)
        for (size_t i = 0; i < rdb->ntdel; i++)
            if (rdb->tdel[i].lo[1] == (uint8_t)domain)
                return false;
    return tfz_sort(rdb);
}

typedef struct merge {
    load_t *ld;
    const rn__rdb_kref_t *fz; /* rdb->tfzsort */
    size_t ja, na;            /* the next of fz, and its length */
    rn__rdb_tkeys_t *tg;      /* sorted; NULL: not wanted */
    size_t jb;                /* the next of tg */
    rn__rdb_kref_t bound;     /* tg not wanted: its smallest key of the domain; len 0: none */
    uint8_t *last;            /* the last key loaded (a key in two sources loads once) */
    size_t lastlen, lastcap;
    bool halt;                /* the load stopped */
} merge_t;

static bool
feed(merge_t *m, const uint8_t *key, size_t len)
{
    rn__rdb_kref_t k = {key, len};
    if (m->lastlen > 0) {
        rn__rdb_kref_t l = {m->last, m->lastlen};
        if (rn__rdb_cmp_key(&k, &l) == 0)
            return true;
    }
    if (m->bound.len > 0 && rn__rdb_cmp_key(&k, &m->bound) >= 0) {
        /* A gathered key comes first: the load stops there (after upto),
         * as it would have had the key been written. */
        rn__tref_t t;
        (void)tkey_decode(m->bound.key, m->bound.len, m->ld->domain, &t);
        load_stop(m->ld, m->bound.key, m->bound.len, t.time);
        m->halt = true;
        return false;
    }
    if (!load_key(m->ld, key, len)) {
        m->halt = true;
        return false;
    }
    if (len > m->lastcap) {
        uint8_t *nl = rn_realloc(m->last, len);
        if (nl == NULL) {
            m->ld->rc = RN_ENOMEM;
            m->halt = true;
            return false;
        }
        m->last = nl;
        m->lastcap = len;
    }
    memcpy(m->last, key, len);
    m->lastlen = len;
    return true;
}

/* The smaller of the two copies' next keys, in *k. @returns 0 when both
 * are done, 1 for fz, 2 for tg. */
static int
head(merge_t *m, rn__rdb_kref_t *k)
{
    if (m->tg != NULL)
        while (m->jb < m->tg->n && m->tg->pos[m->jb].dead)
            m->jb++;
    bool a = m->ja < m->na, b = m->tg != NULL && m->jb < m->tg->n;
    rn__rdb_kref_t kb = b ? tk_at(m->tg, m->jb) : (rn__rdb_kref_t){NULL, 0};
    if (a && (!b || rn__rdb_cmp_key(&m->fz[m->ja], &kb) <= 0)) {
        *k = m->fz[m->ja];
        return 1;
    }
    if (b) {
        *k = kb;
        return 2;
    }
    return 0;
}

/* Feeds the copies' keys up to upto (NULL: all). @returns false when the
 * load stopped. */
static bool
feed_heads(merge_t *m, const rn__rdb_kref_t *upto)
{
    rn__rdb_kref_t k;
    int w;
    while ((w = head(m, &k)) != 0 && (upto == NULL || rn__rdb_cmp_key(&k, upto) <= 0)) {
        if (!feed(m, k.key, k.len))
            return false;
        if (w == 1)
            m->ja++;
        else
            m->jb++;
    }
    return true;
}

/* RocksDB's next key, after the copies' keys before it. */
static bool
merge_key(void *ctx, const uint8_t *key, size_t len)
{
    merge_t *m = ctx;
    rn__rdb_kref_t k = {key, len};
    return feed_heads(m, &k) && feed(m, key, len);
}

/* The first index of sorted refs w (n of them) at or after k. */
static size_t
kref_lower(const rn__rdb_kref_t *w, size_t n, const rn__rdb_kref_t *k)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rn__rdb_cmp_key(&w[mid], k) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The merged scan from start (busy_ok holds). The gathered timers of the
 * domain are a source when the first of them is due (at or before upto);
 * loaded, they are marked dead. */
static rn_code_t
scan_busy(rn__rdb_t *rdb, load_t *ld, const uint8_t *start, size_t startlen, rn_error_t *err)
{
    rn_time_domain_t domain = ld->domain;
    rn__rdb_kref_t s = {start, startlen};
    merge_t m = {.ld = ld, .fz = rdb->tfzsort, .na = rdb->ntfzsort};
    m.ja = kref_lower(m.fz, m.na, &s);
    size_t jb0 = 0;
    if (rdb->tgmin[domain] != SIZE_MAX) {
        rn__rdb_kref_t b = tk_at(&rdb->tg, rdb->tgmin[domain]);
        rn__tref_t t;
        if (tkey_decode(b.key, b.len, domain, &t) && t.time > ld->upto) {
            m.bound = b;
        } else {
            tg_sort(rdb);
            m.tg = &rdb->tg;
            m.jb = jb0 = tk_lower(&rdb->tg, &s);
        }
    }
    rn_code_t rc = rn__rdb_scan_from(rdb, start, startlen, merge_key, &m, err);
    if (rc == RN_OK && !m.halt)
        (void)feed_heads(&m, NULL);
    if (rc == RN_OK && !m.halt && m.bound.len > 0) {
        rn__tref_t t;
        (void)tkey_decode(m.bound.key, m.bound.len, domain, &t);
        load_stop(ld, m.bound.key, m.bound.len, t.time);
    }
    rn_free(m.last);
    if (rc != RN_OK || ld->rc != RN_OK || m.tg == NULL)
        return rc;
    /* The gathered keys from start up to the stop (or the domain's end)
     * are loaded: never written nor loaded again. */
    rn__rdb_tkeys_t *tg = &rdb->tg;
    rn__rdb_kref_t stop = {ld->stop, ld->stoplen};
    size_t i = jb0;
    for (; i < tg->n; i++) {
        rn__rdb_kref_t k = tk_at(tg, i);
        if (ld->stop != NULL ? rn__rdb_cmp_key(&k, &stop) >= 0
                             : k.len < 2 || k.key[1] != (uint8_t)domain)
            break;
        tg->pos[i].dead = 1;
    }
    tg_min_sorted(rdb, domain, i);
    return rc;
}

rn_code_t
rn__rdb_timer_load(void *be, rn_time_domain_t domain, int64_t from, int64_t upto, size_t max,
                   rn_code_t (*fn)(void *ctx, const rn__tref_t *t), void *ctx, int64_t *next,
                   rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    uint8_t seek[10];
    load_t ld = {rdb, domain, upto, max, 0, fn, ctx, INT64_MAX, NULL, 0, RN_OK};
    size_t slen = tkey_seek(seek, domain, from);
    bool busy = rn__rdb_fence_busy(rdb) && busy_ok(rdb, domain);
    rn_code_t rc = RN_OK;
    if (!busy) {
        /* Timers a checkpoint took over are in RocksDB once its part is
         * done (rn__rdb_timer_freeze); the copy is of no more use. */
        rn__rdb_fence(rdb);
        tfz_clear(rdb);
        rc = tg_flush(rdb, err);
        if (rc != RN_OK)
            return rc;
    }
    /* Start where the last load stopped when that is past from: every key
     * before it is loaded (and deleted) or was never there. */
    const uint8_t *start = seek;
    size_t startlen = slen;
    uint8_t *res = rdb->tres[domain];
    rdb->tres[domain] = NULL;
    if (res != NULL) {
        rn__rdb_kref_t a = {res, rdb->treslen[domain]}, b = {seek, slen};
        if (rn__rdb_cmp_key(&a, &b) > 0) {
            start = res;
            startlen = rdb->treslen[domain];
        }
    }
    if (busy)
        rc = scan_busy(rdb, &ld, start, startlen, err);
    else
        rc = rn__rdb_scan_from(rdb, start, startlen, load_key, &ld, err);
    if (rc == RN_OK && ld.rc != RN_OK)
        rc = rn__errf(err, ld.rc, "loading spilled timers at time %lld", (long long)ld.next);
    uint8_t end[2] = {(uint8_t)RN__RDB_TIMER_TAG, (uint8_t)(domain + 1)};
    if (rc == RN_OK && ld.n > 0) {
        /* Everything from `from` up to the first key not loaded went to
         * memory: one range tombstone rather than a delete per timer
         * (point deletes were a memtable insert each, a third of a
         * spilling run). The store never receives a time below what it
         * holds (state.c), so the range covers exactly what was loaded. On
         * failure nothing is deleted: the error stops the job. */
        const uint8_t *to = ld.stop != NULL ? ld.stop : end; /* else to the domain's end */
        size_t tolen = ld.stop != NULL ? ld.stoplen : sizeof(end);
        if (busy) {
            rc = tdel_add(rdb, start, startlen, to, tolen, err);
        } else {
            rocksdb_writebatch_delete_range(rdb->wb, (const char *)start, startlen,
                                            (const char *)to, tolen);
            rc = rn__rdb_write(rdb, err);
        }
    }
    rn_free(res);
    if (rc == RN_OK && ld.stop != NULL) {
        rdb->tres[domain] = ld.stop;
        rdb->treslen[domain] = ld.stoplen;
    } else {
        rn_free(ld.stop);
        /* Loaded to the domain's end while the delete waits: loads resume
         * there (nothing of the domain is left before it), not at from. */
        if (rc == RN_OK && busy && ld.n > 0 && (rdb->tres[domain] = rn_malloc(sizeof(end))) != NULL) {
            memcpy(rdb->tres[domain], end, sizeof(end));
            rdb->treslen[domain] = sizeof(end);
        }
    }
    *next = ld.next;
    return rc;
}
