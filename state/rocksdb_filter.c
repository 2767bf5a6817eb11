/*
 * state/rocksdb_filter.c: what the RocksDB of one backend may hold, so that
 * the write-back cache can answer most misses without reading it.
 *
 * Why: every window is a new (key, ns), so its first touch misses the cache
 * and, without this, asks RocksDB (memtables, then the files' filters and
 * index) for a value that was never written: at 1 event per key per window
 * that read was a third of the task thread. The backend is the only writer
 * of its database, so it can know what the database may hold.
 *
 * Design: a blocked counting Bloom filter (rocksdb_int.h has the rules that
 * keep it safe) over the cache's hash of (state id, key, ns). The cache
 * counts a key in when it writes a put of an entry RocksDB did not hold and
 * out when a delete of it is written. The filter starts small and grows by
 * rebuilding: a scan of the database counts every value and list-head key
 * into new counters, which replace the old ones only when the scan
 * completes; the same scan fills it when a database is opened from
 * existing files (rn__rdb_open_existing). A rebuild also resets the count
 * to what the database really holds, so keys deleted since stop costing.
 *
 * @thread task.
 */
#include "state/rocksdb_int.h"

#include <xxhash.h>

/* Room for this many keys at first: 16 kB of counters. */
#define INITIAL_KEYS 4096

static size_t
blocks_for(uint64_t keys)
{
    uint64_t n = (keys * RN__RF_PER_KEY + RN__RF_BLOCK - 1) / RN__RF_BLOCK;
    return n > 0 ? (size_t)n : 1;
}

uint64_t
rn__rf_bytes_for(uint64_t keys)
{
    return (uint64_t)blocks_for(keys) * RN__RF_BLOCK;
}

static uint8_t *
counters(size_t nblocks)
{
    return rn_zalloc(nblocks, RN__RF_BLOCK);
}

rn_code_t
rn__rf_init(rn__rfilter_t *f, rn_error_t *err)
{
    memset(f, 0, sizeof(*f));
    f->nblocks = blocks_for(INITIAL_KEYS);
    f->ctr = counters(f->nblocks);
    if (f->ctr == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for the state filter");
    return RN_OK;
}

void
rn__rf_fini(rn__rfilter_t *f)
{
    rn_free(f->ctr);
    memset(f, 0, sizeof(*f));
}

static void
bump(uint8_t *b, uint64_t h, int d)
{
    /* Four probes; a key whose probes coincide bumps a counter twice, in
     * and out alike. A saturated counter stays: it may count keys whose
     * removal it can no longer tell. */
    for (int j = 0; j < 4; j++) {
        unsigned p = (unsigned)(h >> (7 * j)) & 127, sh = (p & 1) * 4;
        unsigned v = rn__rf_ctr(b, p);
        if (v != 15)
            b[p >> 1] = (uint8_t)((b[p >> 1] & ~(15u << sh)) | ((unsigned)((int)v + d) << sh));
    }
}

void
rn__rf_add(rn__rfilter_t *f, uint64_t h)
{
    f->count++;
    if (f->ctr != NULL)
        bump((uint8_t *)rn__rf_block(f, h), h, 1);
}

void
rn__rf_remove(rn__rfilter_t *f, uint64_t h)
{
    if (f->ctr == NULL)
        return;
    rn_dassert(rn__rf_maybe(f, h));
    /* A key counted in has every probe >= 1: removal keeps them >= 0. */
    if (f->count > 0)
        f->count--;
    bump((uint8_t *)rn__rf_block(f, h), h, -1);
}

/* ---- rebuilding from the database ---- */

typedef struct scan {
    rn__rfilter_t f;
} scan_t;

/* Parses kg | state | keylen | key | nslen | ns of a database key and counts
 * it in when nothing follows (a value or a list head; a map entry with an
 * empty user key also parses so, which costs only a false "maybe"). */
static bool
count_key(void *ctx, const uint8_t *key, size_t len)
{
    scan_t *s = ctx;
    if (len < 6 || key[0] == RN__RDB_TIMER_TAG)
        return true; /* too short, or a timer */
    uint32_t kg = ((uint32_t)key[0] << 8) | key[1];
    uint32_t state = ((uint32_t)key[2] << 8) | key[3];
    if (kg > RN__RDB_KG_MAX || state > RN__RDB_STATE_MAX)
        return true; /* metadata */
    size_t p = 4;
    uint64_t keylen;
    if (!rn__rdb_get_len(key, len, &p, &keylen) || keylen > len || p + keylen + 1 > len)
        return true;
    const uint8_t *k = key + p;
    p += keylen;
    size_t nslen = key[p++];
    if (p + nslen != len)
        return true; /* a list element or a map entry */
    rn__skey_t sk = {.state = state,
                     .keylen = (uint32_t)keylen,
                     .nslen = (uint32_t)nslen,
                     .keyhash = XXH3_64bits(k, keylen),
                     .ns = key + p};
    rn__rf_add(&s->f, rn__state_hash(&sk));
    return true;
}

/* Counts the database's keys into new counters of nblocks blocks. */
static rn_code_t
scan_into(rn__rdb_t *rdb, size_t nblocks, rn__rfilter_t *out, rn_error_t *err)
{
    scan_t s = {{0}};
    s.f.nblocks = nblocks;
    s.f.ctr = counters(nblocks);
    if (s.f.ctr == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for a state filter of %zu blocks",
                        nblocks);
    rn_code_t rc = rn__rdb_scan_keys(rdb, count_key, &s, err);
    if (rc != RN_OK) {
        rn_free(s.f.ctr);
        return rc;
    }
    *out = s.f;
    return RN_OK;
}

rn_code_t
rn__rf_rebuild(rn__rdb_t *rdb, uint64_t want, rn_error_t *err)
{
    rn__rfilter_t *f = &rdb->cache.filter;
    rn__rfilter_t nf;
    rn_code_t rc = scan_into(rdb, blocks_for(want > INITIAL_KEYS ? want : INITIAL_KEYS), &nf, err);
    if (rc == RN_OK && nf.count * RN__RF_PER_KEY > (uint64_t)nf.nblocks * RN__RF_BLOCK) {
        /* The database held more than asked for (opened from existing
         * files): once more at twice its size. */
        size_t nblocks = blocks_for(2 * nf.count);
        rn_free(nf.ctr);
        rc = scan_into(rdb, nblocks, &nf, err);
    }
    if (rc != RN_OK)
        return rc;
    nf.grown = f->grown + 1;
    rn_free(f->ctr);
    *f = nf;
    RN_LOG_DEBUG(rdb->owner, "state filter rebuilt: %llu keys in %zu kB",
                 (unsigned long long)f->count, f->nblocks * RN__RF_BLOCK / 1024);
    return RN_OK;
}
