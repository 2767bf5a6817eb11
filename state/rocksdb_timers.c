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
    return rdb->tlimit;
}

/* Timers gathered in rdb->tbuf before they are written: a RocksDB write
 * per registration costs a memtable insert each, with cache misses all
 * the way down its skiplist; a batch sorted by key inserts each key next
 * to the last (the memtable keeps the last insert's position), which
 * measured several times cheaper. */
#define TBUF_MAX 8192

/* Writes the gathered timers in key order (rn__rdb_cmp_key), so that
 * reads see them. */
static rn_code_t
tbuf_flush(rn__rdb_t *rdb, rn_error_t *err)
{
    size_t n = rdb->ntoff;
    if (n == 0)
        return RN_OK;
    rn__rdb_kref_t *keys = rn_malloc(n * sizeof(*keys));
    if (keys == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory writing %zu timers", n);
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? rdb->toff[i + 1] : rdb->tlen;
        keys[i] = (rn__rdb_kref_t){rdb->tbuf + rdb->toff[i], end - rdb->toff[i]};
    }
    qsort(keys, n, sizeof(*keys), rn__rdb_cmp_key);
    for (size_t i = 0; i < n; i++)
        rocksdb_writebatch_put(rdb->wb, (const char *)keys[i].key, keys[i].len, "", 0);
    rn_free(keys);
    rdb->ntoff = 0;
    rdb->tlen = 0;
    return rn__rdb_write(rdb, err);
}

rn_code_t
rn__rdb_timer_sync(void *be, rn_error_t *err)
{
    return tbuf_flush(be, err);
}

void
rn__rdb_timer_freeze(rn__rdb_t *rdb)
{
    for (size_t i = 0; i < rdb->ntoff; i++) {
        size_t end = i + 1 < rdb->ntoff ? rdb->toff[i + 1] : rdb->tlen;
        rn__rdb_freeze_raw(rdb, rdb->tbuf + rdb->toff[i], end - rdb->toff[i]);
    }
    rdb->fz.ntimers += rdb->ntoff;
    rdb->ntoff = 0;
    rdb->tlen = 0;
}

rn_code_t
rn__rdb_timer_write(void *be, rn_time_domain_t domain, const rn__tref_t *t, size_t n,
                    rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    for (size_t i = 0; i < n; i++) {
        size_t need = rdb->tlen + t[i].keylen + RN__RDB_TIMER_OVERHEAD;
        if (need > rdb->tcap) {
            size_t ncap = rdb->tcap ? rdb->tcap * 2 : 64 << 10;
            while (ncap < need)
                ncap *= 2;
            uint8_t *nb = rn_realloc(rdb->tbuf, ncap);
            if (nb == NULL)
                return rn__errf(err, RN_ENOMEM, "out of memory for %zu timers", rdb->ntoff);
            rdb->tbuf = nb;
            rdb->tcap = ncap;
        }
        if (rdb->ntoff == rdb->captoff) {
            size_t ncap = rdb->captoff ? rdb->captoff * 2 : 1024;
            size_t *no = rn_realloc(rdb->toff, ncap * sizeof(*no));
            if (no == NULL)
                return rn__errf(err, RN_ENOMEM, "out of memory for %zu timers", rdb->ntoff);
            rdb->toff = no;
            rdb->captoff = ncap;
        }
        rdb->toff[rdb->ntoff++] = rdb->tlen;
        uint8_t *k = rdb->tbuf + rdb->tlen;
        size_t klen = tkey_encode(k, domain, &t[i]);
        rdb->tlen += klen;
        if (rdb->tres[domain] != NULL) {
            rn__rdb_kref_t a = {k, klen}, b = {rdb->tres[domain], rdb->treslen[domain]};
            if (rn__rdb_cmp_key(&a, &b) < 0) {
                /* Where the last load stopped is no longer the first key
                 * left. */
                rn_free(rdb->tres[domain]);
                rdb->tres[domain] = NULL;
            }
        }
        /* While a checkpoint's part runs, the write would wait at the
         * fence (a second, with a million changed windows a checkpoint):
         * the batch grows meanwhile up to a quarter of the timers' own
         * bound (docs/state.md: outside the memory bound, like RocksDB's
         * index blocks). */
        if (rdb->ntoff >= TBUF_MAX &&
            (!rn__rdb_fence_busy(rdb) ||
             (rdb->ntoff >= 16 * TBUF_MAX && rdb->tlen >= rdb->tlimit / 4))) {
            rn_code_t rc = tbuf_flush(rdb, err);
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
    rn_code_t rc = tbuf_flush(rdb, err);
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
        ld->next = t.time;
        ld->stop = rn_malloc(len);
        if (ld->stop == NULL)
            ld->rc = RN_ENOMEM;
        else
            memcpy(ld->stop, key, len);
        ld->stoplen = len;
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

rn_code_t
rn__rdb_timer_load(void *be, rn_time_domain_t domain, int64_t from, int64_t upto, size_t max,
                   rn_code_t (*fn)(void *ctx, const rn__tref_t *t), void *ctx, int64_t *next,
                   rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    uint8_t seek[10];
    load_t ld = {rdb, domain, upto, max, 0, fn, ctx, INT64_MAX, NULL, 0, RN_OK};
    size_t slen = tkey_seek(seek, domain, from);
    /* Timers a checkpoint took over are not in RocksDB before its part is
     * done (rn__rdb_timer_freeze). */
    if (rdb->fz.ntimers > 0)
        rn__rdb_fence(rdb);
    rn_code_t rc = tbuf_flush(rdb, err);
    if (rc != RN_OK)
        return rc;
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
    rc = rn__rdb_scan_from(rdb, start, startlen, load_key, &ld, err);
    if (rc == RN_OK && ld.rc != RN_OK)
        rc = rn__errf(err, ld.rc, "loading spilled timers at time %lld", (long long)ld.next);
    if (rc == RN_OK && ld.n > 0) {
        /* Everything from `from` up to the first key not loaded went to
         * memory: one range tombstone rather than a delete per timer
         * (point deletes were a memtable insert each, a third of a
         * spilling run). The store never receives a time below what it
         * holds (state.c), so the range covers exactly what was loaded. On
         * failure nothing is deleted: the error stops the job. */
        uint8_t end[2] = {(uint8_t)RN__RDB_TIMER_TAG, (uint8_t)(domain + 1)};
        if (ld.stop != NULL)
            rocksdb_writebatch_delete_range(rdb->wb, (const char *)start, startlen,
                                            (const char *)ld.stop, ld.stoplen);
        else /* to the end of the domain */
            rocksdb_writebatch_delete_range(rdb->wb, (const char *)start, startlen,
                                            (const char *)end, sizeof(end));
        rc = rn__rdb_write(rdb, err);
    }
    rn_free(res);
    if (rc == RN_OK && ld.stop != NULL) {
        rdb->tres[domain] = ld.stop;
        rdb->treslen[domain] = ld.stoplen;
    } else {
        rn_free(ld.stop);
    }
    *next = ld.next;
    return rc;
}
