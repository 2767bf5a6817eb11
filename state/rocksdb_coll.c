/*
 * state/rocksdb_coll.c: the RocksDB backend's list and map states, which
 * go straight to RocksDB, one WriteBatch per call: they are read by range
 * (list_each in insertion order, map_each in user-key order), and a range
 * read over RocksDB alone needs no merge with the write-back cache. Only a
 * list's head (its next sequence number) lives in the cache. The key
 * layout is in rocksdb_int.h and docs/state.md.
 *
 * @thread task.
 */
#include "state/rocksdb_int.h"

/* Lists of at most this many elements are cleared with point deletes;
 * longer ones with one range delete, which costs reads more. */
#define LIST_POINT_DELETES 64

/* ---- map state: straight to RocksDB ---- */

/* Encodes the prefix of (k's key, ns) into the key buffer, with room for
 * extra more bytes. @returns its length. */
static size_t
enc_prefix(rn__rdb_t *rdb, const rn__skey_t *k, size_t extra, rn_error_t *err)
{
    if (RN_UNLIKELY(k->kg > RN__RDB_KG_MAX || k->state > RN__RDB_STATE_MAX)) {
        rn__errf(err, RN_EINVAL, "key group %u or state id %u out of range", k->kg, k->state);
        return 0;
    }
    uint8_t *kb = rn__rdb_kbuf(rdb, k->keylen + RN__RDB_PREFIX_OVERHEAD + extra);
    return rn__rdb_prefix(kb, k->kg, k->state, k->key, k->keylen, k->ns, k->nslen);
}

/* Encodes the map entry key of k. @returns its length, 0 on error. */
static size_t
enc_map(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err)
{
    size_t n = enc_prefix(rdb, k, k->uklen, err);
    if (n > 0 && k->uklen > 0)
        memcpy(rdb->kbuf + n, k->ukey, k->uklen);
    return n > 0 ? n + k->uklen : 0;
}

rn_code_t
rn__rdb_map_get(rn__rdb_t *rdb, const rn__skey_t *k, const void **val, size_t *len, rn_error_t *err)
{
    size_t n = enc_map(rdb, k, err);
    if (n == 0)
        return RN_EINVAL;
    /* The previous result's borrow ends with this call. */
    rocksdb_free(rdb->lastval);
    rdb->lastval = NULL;
    rn_code_t rc = rn__rdb_get(rdb, rdb->kbuf, n, &rdb->lastval, len, err);
    if (rc == RN_OK)
        *val = rdb->lastval;
    return rc;
}

/* Whether the encoded key kb[0..n) exists. @returns RN_OK or RN_ENOTFOUND. */
static rn_code_t
exists(rn__rdb_t *rdb, size_t n, rn_error_t *err)
{
    char *v = NULL;
    size_t len;
    rn_code_t rc = rn__rdb_get(rdb, rdb->kbuf, n, &v, &len, err);
    rocksdb_free(v);
    return rc;
}

rn_code_t
rn__rdb_map_put(rn__rdb_t *rdb, const rn__skey_t *k, const void *val, size_t len, rn_error_t *err)
{
    size_t n = enc_map(rdb, k, err);
    if (n == 0)
        return RN_EINVAL;
    /* The lookup keeps the entry count exact. */
    rn_code_t rc = exists(rdb, n, err);
    if (rc != RN_OK && rc != RN_ENOTFOUND)
        return rc;
    rocksdb_writebatch_put(rdb->wb, (const char *)rdb->kbuf, n, val, len);
    rn_code_t wrc = rn__rdb_write(rdb, err);
    if (wrc == RN_OK && rc == RN_ENOTFOUND)
        rdb->live++;
    return wrc;
}

rn_code_t
rn__rdb_map_remove(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err)
{
    size_t n = enc_map(rdb, k, err);
    if (n == 0)
        return RN_EINVAL;
    rn_code_t rc = exists(rdb, n, err);
    if (rc == RN_ENOTFOUND)
        return RN_OK;
    if (rc != RN_OK)
        return rc;
    rocksdb_writebatch_delete(rdb->wb, (const char *)rdb->kbuf, n);
    rc = rn__rdb_write(rdb, err);
    if (rc == RN_OK)
        rdb->live--;
    return rc;
}

/* Fills hi with the smallest key above every key that starts with
 * prefix[0..n): the prefix with its last byte below 0xff incremented. */
static size_t
prefix_end(const uint8_t *prefix, size_t n, uint8_t *hi)
{
    memcpy(hi, prefix, n);
    while (n > 0 && hi[n - 1] == 0xff)
        n--;
    /* The first byte is a key group's high byte (< 0x80): never all 0xff. */
    rn_assert(n > 0);
    hi[n - 1]++;
    return n;
}

static rn_code_t
map_scan(rn__rdb_t *rdb, const rn__skey_t *k, rn_state_each_fn fn, void *ctx, uint64_t *n,
         rn_error_t *err)
{
    size_t plen = enc_prefix(rdb, k, 0, err);
    if (plen == 0)
        return RN_EINVAL;
    uint8_t hi[RN__RDB_PREFIX_OVERHEAD + 4096];
    uint8_t *hp = plen <= sizeof(hi) ? hi : rn_malloc(plen);
    if (hp == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for an iterator");
    size_t hlen = prefix_end(rdb->kbuf, plen, hp);
    rn_code_t rc = rn__rdb_range_each(rdb, rdb->kbuf, plen, hp, hlen, plen, true, fn, ctx, n, err);
    if (hp != hi)
        rn_free(hp);
    return rc;
}

rn_code_t
rn__rdb_map_clear(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err)
{
    uint64_t n = 0;
    rn_code_t rc = map_scan(rdb, k, NULL, NULL, &n, err);
    if (rc != RN_OK) {
        rocksdb_writebatch_clear(rdb->wb);
        return rc;
    }
    if (n == 0)
        return RN_OK;
    rc = rn__rdb_write(rdb, err);
    if (rc == RN_OK)
        rdb->live -= n;
    return rc;
}

rn_code_t
rn__rdb_map_each(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx, rn_error_t *err)
{
    uint64_t n;
    return map_scan(be, k, fn, ctx, &n, err);
}

/* ---- list state: head in the cache, elements in RocksDB ---- */

/* A list of (key, ns) is a head, a value in the cache under the list's
 * state id holding the next sequence number (8 bytes BE), and its elements
 * at prefix | seq (8 bytes BE), so that they sort in insertion order. */

rn_code_t
rn__rdb_list_add(void *be, const rn__skey_t *k, const void *val, size_t len, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    bool created;
    uint8_t *head = rn__rc_ref(rdb, k, 8, &created, err);
    if (head == NULL)
        return err != NULL ? err->code : RN_EIO;
    uint64_t seq = rn__rdb_load_be64(head);
    size_t n = enc_prefix(rdb, k, 8, err);
    if (n == 0)
        return RN_EINVAL;
    rn__rdb_be64(rdb->kbuf + n, seq);
    rocksdb_writebatch_put(rdb->wb, (const char *)rdb->kbuf, n + 8, val, len);
    rn_code_t rc = rn__rdb_write(rdb, err);
    if (rc == RN_OK)
        rn__rdb_be64(head, seq + 1);
    return rc;
}

/* The next sequence number of k's list. @returns RN_OK, RN_ENOTFOUND (no
 * list) or an error. */
static rn_code_t
list_next(rn__rdb_t *rdb, const rn__skey_t *k, uint64_t *next, rn_error_t *err)
{
    const void *v;
    size_t len;
    rn_code_t rc = rn__rc_get(rdb, k, &v, &len, err);
    if (rc != RN_OK)
        return rc;
    if (len != 8)
        return rn__errf(err, RN_ECORRUPT, "list head of %zu bytes", len);
    *next = rn__rdb_load_be64(v);
    return RN_OK;
}

/* What reading or clearing a list needs: its next sequence number and
 * its elements' prefix, encoded in rdb->kbuf with room for two sequence
 * numbers after it. @returns RN_OK, RN_ENOTFOUND (no list) or an error. */
static rn_code_t
list_range(rn__rdb_t *rdb, const rn__skey_t *k, uint64_t *next, size_t *plen, rn_error_t *err)
{
    rn_code_t rc = list_next(rdb, k, next, err);
    if (rc != RN_OK)
        return rc;
    *plen = enc_prefix(rdb, k, 16, err);
    return *plen > 0 ? RN_OK : RN_EINVAL;
}

rn_code_t
rn__rdb_list_each(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    uint64_t next = 0, n;
    size_t plen = 0;
    rn_code_t rc = list_range(rdb, k, &next, &plen, err);
    if (rc != RN_OK)
        return rc == RN_ENOTFOUND ? RN_OK : rc;
    uint8_t *lo = rdb->kbuf;
    rn__rdb_be64(lo + plen, 0);
    uint8_t *hi = rn_malloc(plen + 8);
    if (hi == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for an iterator");
    memcpy(hi, lo, plen);
    rn__rdb_be64(hi + plen, next);
    rc = rn__rdb_range_each(rdb, lo, plen + 8, hi, plen + 8, 0, false, fn, ctx, &n, err);
    rn_free(hi);
    return rc;
}

rn_code_t
rn__rdb_list_clear(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err)
{
    uint64_t next = 0;
    size_t plen = 0;
    rn_code_t rc = list_range(rdb, k, &next, &plen, err);
    if (rc != RN_OK)
        return rc == RN_ENOTFOUND ? RN_OK : rc;
    uint8_t *kb = rdb->kbuf;
    if (next <= LIST_POINT_DELETES) {
        for (uint64_t i = 0; i < next; i++) {
            rn__rdb_be64(kb + plen, i);
            rocksdb_writebatch_delete(rdb->wb, (const char *)kb, plen + 8);
        }
    } else {
        uint8_t *hi = rn_malloc(plen + 8);
        if (hi == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory clearing a list");
        memcpy(hi, kb, plen);
        rn__rdb_be64(hi + plen, next);
        rn__rdb_be64(kb + plen, 0);
        rocksdb_writebatch_delete_range(rdb->wb, (const char *)kb, plen + 8, (const char *)hi,
                                        plen + 8);
        rn_free(hi);
    }
    rc = rn__rdb_write(rdb, err);
    if (rc != RN_OK)
        return rc;
    bool existed;
    return rn__rc_del(rdb, k, &existed, err);
}
