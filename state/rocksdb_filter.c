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
 * rebuilding: a scan of the database collects the hashes of its value and
 * list-head keys, and new counters sized for them replace the old ones
 * only when the scan completes; the same scan fills it when a database is opened from
 * existing files (rn__rdb_open_existing). A rebuild also resets the count
 * to what the database really holds, so keys deleted since stop costing.
 *
 * @thread task.
 */
#include "state/rocksdb_int.h"

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

/* A rebuild scans the database once, collecting the hashes of its keys,
 * and only then sizes the counters: the count it is asked to make room
 * for overstates what RocksDB holds (a window evicted and touched again
 * is written as a delta and counted again; 4M counted against 1M held),
 * and counters sized by it pushed windows out of the pool. The hashes
 * take 8 bytes a key for the length of the scan, at most as many as the
 * cap allows the counters (so at most the cap again, briefly). */
typedef struct scan {
    uint64_t *h;
    size_t n, cap;
    size_t max;  /* more keys than this: stop (the filter goes off) */
    bool over;   /* stopped at max */
    bool nomem;
} scan_t;

/* Parses kg | state | keylen | key | nslen | ns of a database key and
 * collects its hash when nothing follows (a value or a list head; a map
 * entry with an empty user key also parses so, which costs only a false
 * "maybe"). */
static bool
count_key(void *ctx, const uint8_t *key, size_t len)
{
    scan_t *s = ctx;
    /* State keys start with a key group < 32768; the timers and the
     * metadata sort after them all: the scan ends at the first of them
     * (a million spilled timers took a tenth of a second). */
    if (len > 0 && key[0] >= 0x80)
        return false;
    if (len < 6)
        return true;
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
    if (s->n == s->max) {
        s->over = true;
        return false;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : INITIAL_KEYS;
        uint64_t *nh = rn_realloc(s->h, ncap * sizeof(*nh));
        if (nh == NULL) {
            s->nomem = true;
            return false;
        }
        s->h = nh;
        s->cap = ncap;
    }
    rn__skey_t sk = {
        .state = state, .keylen = (uint32_t)keylen, .nslen = (uint32_t)nslen, .key = k, .ns = key + p};
    s->h[s->n++] = rn__state_hash_bytes(sk);
    return true;
}

rn_code_t
rn__rf_rebuild(rn__rdb_t *rdb, uint64_t extra, uint64_t cap, rn_error_t *err)
{
    rn__rfilter_t *f = &rdb->cache.filter;
    int64_t t0 = rn__mono_ns();
    uint64_t w0 = rdb->fence_wait_ns;
    scan_t s = {.max = SIZE_MAX};
    if (cap > 0) {
        /* The most keys whose counters, at twice their number with the
         * extra ones, stay within cap. */
        uint64_t most = cap / (2 * RN__RF_PER_KEY);
        s.max = most > extra ? (size_t)(most - extra) : 0;
    }
    rn_code_t rc = rn__rdb_scan_keys(rdb, count_key, &s, err);
    if (rc == RN_OK && s.nomem)
        rc = rn__errf(err, RN_ENOMEM, "out of memory rebuilding the state filter (%zu keys)",
                      s.n);
    if (rc != RN_OK) {
        rn_free(s.h);
        return rc;
    }
    /* Counted more than twice what RocksDB holds: most of the count is
     * values evicted and touched again, written as deltas (and counted)
     * once more; the cache is thrashing, and the counters' bytes are
     * better spent on values (1M windows with a checkpoint a second in
     * 256 MB: two rebuilds of a second each on the task, then the
     * counters at 8 MB kept pushing windows out). */
    bool thrash = f->ctr != NULL && s.n >= INITIAL_KEYS && f->count > 2 * (uint64_t)s.n;
    if (s.over || thrash) {
        /* Past the cap it would squeeze the cache (and every rebuild
         * scans the database): misses ask RocksDB, whose own Bloom
         * filters answer for absent keys. */
        if (thrash)
            /* Said once (the filter stays off): a job sized so that its
             * hot values just fit without checkpoints falls off a cliff
             * with them (docs/state.md, memory). */
            RN_LOG_INFO(rdb->owner,
                        "state cache thrashing: values are evicted and written again "
                        "(%llu writes of new keys counted, %zu keys in RocksDB); the state "
                        "filter is off; a larger state.memory keeps them in memory",
                        (unsigned long long)f->count, s.n);
        else
            RN_LOG_DEBUG(rdb->owner, "state filter off: more than %zu keys in RocksDB", s.n);
        rn_free(s.h);
        uint64_t grown = f->grown;
        rn__rf_fini(f);
        f->grown = grown;
        return RN_OK;
    }
    /* Twice the keys, so that growth does not rebuild at once. */
    uint64_t keys = 2 * ((uint64_t)s.n + extra);
    rn__rfilter_t nf = {.nblocks = blocks_for(keys > INITIAL_KEYS ? keys : INITIAL_KEYS)};
    nf.ctr = counters(nf.nblocks);
    if (nf.ctr == NULL) {
        rn_free(s.h);
        return rn__errf(err, RN_ENOMEM, "out of memory for a state filter of %zu blocks",
                        nf.nblocks);
    }
    for (size_t i = 0; i < s.n; i++)
        rn__rf_add(&nf, s.h[i]);
    rn_free(s.h);
    nf.grown = f->grown + 1;
    rn_free(f->ctr);
    *f = nf;
    RN_LOG_DEBUG(rdb->owner,
                 "state filter rebuilt: %llu keys in %zu kB, in %.1f ms (%.1f ms of them "
                 "waiting for a checkpoint's writes)",
                 (unsigned long long)f->count, f->nblocks * RN__RF_BLOCK / 1024,
                 (double)(rn__mono_ns() - t0) / 1e6, (double)(rdb->fence_wait_ns - w0) / 1e6);
    return RN_OK;
}
