/*
 * state/rocksdb_timers.c: the RocksDB backend's timer store, where the
 * handle spills the timers of the latest times (state.c, timers.c).
 *
 * Design: one key per timer, empty value, laid out (rocksdb_int.h,
 * docs/state.md) as 0xfe | domain | time | kg | keylen | key | ns with the
 * time big-endian and its sign bit flipped, so that a domain's timers sort
 * by time and "every timer up to a time" is one iterator from the first
 * stored time. A load deletes what it read with point deletes in one
 * WriteBatch (range tombstones would pile up in front of every later
 * scan). The handle keeps the store's earliest time, so that it never
 * reads the store for a timer earlier than everything in it.
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
    uint32_t n = t->keylen;
    while (n >= 0x80) {
        *p++ = (uint8_t)(n | 0x80);
        n >>= 7;
    }
    *p++ = (uint8_t)n;
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
    uint64_t keylen = 0;
    for (int shift = 0;; shift += 7) {
        if (p >= len || shift > 28)
            return false;
        uint8_t b = key[p++];
        keylen |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    if (keylen > len - p || len - p - keylen > RN_STATE_NS_MAX)
        return false;
    t->keylen = (uint32_t)keylen;
    t->key = key + p;
    t->ns = key + p + keylen;
    t->nslen = (uint32_t)(len - p - keylen);
    return true;
}

uint64_t
rn__rdb_timer_budget(void *be)
{
    return ((rn__rdb_t *)be)->tlimit;
}

rn_code_t
rn__rdb_timer_write(void *be, rn_time_domain_t domain, const rn__tref_t *t, size_t n,
                    rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    for (size_t i = 0; i < n; i++) {
        uint8_t *k = rn__rdb_kbuf(rdb, t[i].keylen + RN__RDB_TIMER_OVERHEAD);
        size_t klen = tkey_encode(k, domain, &t[i]);
        rocksdb_writebatch_put(rdb->wb, (const char *)k, klen, "", 0);
    }
    return rn__rdb_write(rdb, err);
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
rn__rdb_timer_exists(void *be, rn_time_domain_t domain, const rn__tref_t *t, rn_error_t *err)
{
    size_t klen;
    return tkey_lookup(be, domain, t, &klen, err);
}

rn_code_t
rn__rdb_timer_del(void *be, rn_time_domain_t domain, const rn__tref_t *t, bool *existed,
                  rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    size_t klen;
    *existed = false;
    rn_code_t rc = tkey_lookup(rdb, domain, t, &klen, err);
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
    int64_t last;
    rn_code_t (*fn)(void *ctx, const rn__tref_t *t);
    void *ctx;
    int64_t next;
    rn_code_t rc;
} load_t;

static bool
load_key(void *ctx, const uint8_t *key, size_t len)
{
    load_t *ld = ctx;
    rn__tref_t t;
    if (!tkey_decode(key, len, ld->domain, &t))
        return false; /* past the domain: nothing left */
    if (t.time > ld->upto || (ld->n >= ld->max && t.time != ld->last)) {
        ld->next = t.time;
        return false;
    }
    rn_code_t rc = ld->fn(ld->ctx, &t);
    if (rc != RN_OK) {
        ld->rc = rc;
        ld->next = t.time;
        return false;
    }
    rocksdb_writebatch_delete(ld->rdb->wb, (const char *)key, len);
    ld->n++;
    ld->last = t.time;
    return true;
}

rn_code_t
rn__rdb_timer_load(void *be, rn_time_domain_t domain, int64_t from, int64_t upto, size_t max,
                   rn_code_t (*fn)(void *ctx, const rn__tref_t *t), void *ctx, int64_t *next,
                   rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    uint8_t seek[10];
    load_t ld = {rdb, domain, upto, max, 0, from, fn, ctx, INT64_MAX, RN_OK};
    size_t slen = tkey_seek(seek, domain, from);
    rn_code_t rc = rn__rdb_scan_from(rdb, seek, slen, load_key, &ld, err);
    /* Delete what was loaded even when fn failed part-way: it is in memory. */
    rn_code_t wrc = ld.n > 0 ? rn__rdb_write(rdb, err) : RN_OK;
    if (rc == RN_OK)
        rc = wrc;
    if (rc == RN_OK && ld.rc != RN_OK)
        rc = rn__errf(err, ld.rc, "loading spilled timers at time %lld", (long long)ld.next);
    *next = ld.next;
    return rc;
}
