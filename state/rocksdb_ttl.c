/*
 * state/rocksdb_ttl.c: expired TTL entries dropped in compaction (Flink's
 * compaction-filter cleanup) for the RocksDB state backend.
 *
 * ttl.c stores, in front of every value, list element and map entry of a
 * state registered with a TTL, its expiry time: 8 bytes, big-endian epoch
 * ms of processing time. Reads hide expired entries, but an entry nobody
 * reads again would stay forever; this RocksDB compaction filter drops
 * each one whose expiry has passed when compaction rewrites it, so that
 * the database shrinks back without the task thread doing anything.
 *
 * What the filter may drop, by the key (layout in rocksdb_int.h):
 *
 *   - only state keys (first byte < 0x80: a key group), never timers
 *     (0xfe) or the metadata (0xff);
 *   - only keys of a state id published here as a TTL state, and only by
 *     the kind published with it:
 *       value state:  every key (value: expiry | bytes);
 *       map state:    every key (one entry each: expiry | bytes);
 *       list state:   elements only (key ends in an 8-byte sequence
 *                     number; value: expiry | bytes). The list head (key
 *                     with no suffix; value: the next sequence number,
 *                     no expiry) always stays: dropping it while any
 *                     element is alive would restart the numbering over
 *                     live elements.
 *   - only when the value is at least 8 bytes and its expiry <= now, the
 *     rule ttl.c reads by.
 *
 * Lists are stored one element per key, so the filter drops elements one
 * by one and never rewrites a value: a list whose elements all expired
 * becomes its head alone, which reads as an empty list.
 *
 * Threads: the filter runs on RocksDB's compaction threads, concurrently
 * with the task thread. What it reads is published once and never taken
 * back: a table of one atomic byte per state id (0: no TTL, else 1 + kind),
 * allocated on the first TTL registration and published with a release
 * store; entries are written before any entry of their state exists. The
 * clock is the backend's processing-time clock (options.clock_ms, else the
 * wall clock), so it must be callable from any thread. Nothing in the
 * filter allocates, locks or logs.
 *
 * Entry counts: a dropped value or map entry stays counted in the
 * backend's live entries (rn__state_stats), which cannot tell a dropped
 * entry from one still cached; the count is high by the entries dropped
 * and not read again until the count is rebuilt (docs/state.md, TTL).
 *
 * @thread task for new/state/destroy; any (RocksDB compaction threads) for
 * the filter itself.
 */
#include "state/rocksdb_int.h"

#include <stdatomic.h>

/* Table entries: 0 for a state without TTL, else 1 + its rn__skind_t. */
#define KINDS (RN__RDB_STATE_MAX + 1u)

struct rn__rdb_ttl {
    rocksdb_compactionfilter_t *filter; /* owned; holds this struct as its state */
    int64_t (*clock_ms)(void);          /* NULL: the wall clock */
    _Atomic(_Atomic uint8_t *) kinds;   /* NULL until the first TTL state; owned */
    _Atomic uint64_t dropped;           /* entries dropped, for tests and stats */
};

_Static_assert(RN__RDB_TIMER_TAG >= 0x80u, "state keys (first byte < 0x80) apart from timers");

/* Whether key (a state key of a list state) is a list element: its prefix
 * (keylen, key, nslen, ns) is followed by exactly an 8-byte sequence
 * number. A malformed key is not one, and stays. */
static bool
list_element(const uint8_t *key, size_t klen)
{
    size_t p = 4;
    uint64_t keylen;
    if (!rn__rdb_get_len(key, klen, &p, &keylen) || keylen >= klen - p)
        return false;
    p += (size_t)keylen;
    size_t nslen = key[p++];
    if (nslen > klen - p)
        return false;
    p += nslen;
    return klen - p == 8;
}

bool
rn__rdb_ttl_expiry(const rn__rdb_ttl_t *ttl, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen, int64_t *expiry)
{
    if (klen < 5 || key[0] >= 0x80 || vlen < 8)
        return false;
    _Atomic uint8_t *kinds = atomic_load_explicit(&ttl->kinds, memory_order_acquire);
    if (kinds == NULL)
        return false;
    uint32_t state = ((uint32_t)key[2] << 8) | key[3];
    if (state >= KINDS)
        return false;
    uint8_t kind = atomic_load_explicit(&kinds[state], memory_order_acquire);
    if (kind == 0)
        return false;
    if (kind == 1 + RN__SK_LIST && !list_element(key, klen))
        return false;
    *expiry = (int64_t)rn__rdb_load_be64(val);
    return true;
}

/* The compaction filter: @returns 1 to drop the entry. */
static unsigned char
ttl_filter(void *arg, int level, const char *key, size_t klen, const char *val, size_t vlen,
           char **new_val, size_t *new_len, unsigned char *changed)
{
    rn__rdb_ttl_t *ttl = arg;
    int64_t expiry;
    (void)level;
    (void)new_val;
    (void)new_len;
    (void)changed;
    if (!rn__rdb_ttl_expiry(ttl, (const uint8_t *)key, klen, (const uint8_t *)val, vlen,
                            &expiry))
        return 0;
    /* The clock only for entries of TTL states: others cost no call. */
    int64_t now = ttl->clock_ms != NULL ? ttl->clock_ms() : rn__now_ms();
    if (expiry > now)
        return 0;
    atomic_fetch_add_explicit(&ttl->dropped, 1, memory_order_relaxed);
    return 1;
}

static const char *
ttl_name(void *arg)
{
    (void)arg;
    return "runnel.ttl";
}

/* Called by rocksdb_compactionfilter_destroy: the filter owns the struct. */
static void
ttl_free(void *arg)
{
    rn__rdb_ttl_t *ttl = arg;
    rn_free((void *)atomic_load_explicit(&ttl->kinds, memory_order_relaxed));
    rn_free(ttl);
}

rn__rdb_ttl_t *
rn__rdb_ttl_new(rocksdb_options_t *opts, int64_t (*clock_ms)(void))
{
    rn__rdb_ttl_t *ttl = rn_xcalloc(1, sizeof(*ttl));
    ttl->clock_ms = clock_ms;
    atomic_init(&ttl->kinds, NULL);
    atomic_init(&ttl->dropped, 0);
    ttl->filter = rocksdb_compactionfilter_create(ttl, ttl_free, ttl_filter, ttl_name);
    rocksdb_options_set_compaction_filter(opts, ttl->filter);
    return ttl;
}

void
rn__rdb_ttl_destroy(rn__rdb_ttl_t *ttl)
{
    if (ttl == NULL)
        return;
    /* Frees ttl through ttl_free. */
    rocksdb_compactionfilter_destroy(ttl->filter);
}

rn_code_t
rn__rdb_ttl_state(void *be, uint32_t state, rn__skind_t kind, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    rn__rdb_ttl_t *ttl = rdb->ttl;
    if (state >= KINDS)
        return rn__errf(err, RN_EINVAL, "%s: state id %u out of range (at most %u)", rdb->owner,
                        state, RN__RDB_STATE_MAX);
    /* Only the task thread writes the pointer: a relaxed load suffices. */
    _Atomic uint8_t *kinds = atomic_load_explicit(&ttl->kinds, memory_order_relaxed);
    if (kinds == NULL) {
        /* 64 kB, only for instances with a TTL state. Zeroed memory is a
         * valid initial value of a lock-free atomic byte. */
        kinds = rn_calloc(KINDS, sizeof(*kinds));
        if (kinds == NULL)
            return rn__errf(err, RN_ENOMEM, "%s: out of memory for the TTL compaction filter",
                            rdb->owner);
        atomic_store_explicit(&kinds[state], (uint8_t)(1 + kind), memory_order_relaxed);
        atomic_store_explicit(&ttl->kinds, kinds, memory_order_release);
        return RN_OK;
    }
    atomic_store_explicit(&kinds[state], (uint8_t)(1 + kind), memory_order_release);
    return RN_OK;
}

uint64_t
rn__rdb_ttl_dropped(void *be)
{
    return atomic_load_explicit(&((rn__rdb_t *)be)->ttl->dropped, memory_order_relaxed);
}

rn_code_t
rn__rdb_compact_all(void *be, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    char *rerr = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(rdb->db, fo, &rerr);
    rocksdb_flushoptions_destroy(fo);
    if (rerr != NULL) {
        rn_code_t rc = rn__errf(err, RN_EIO, "rocksdb flush (%s): %s", rdb->path, rerr);
        rocksdb_free(rerr);
        return rc;
    }
    /* NULL bounds: the whole key space. Compactions with a compaction
     * filter rewrite the bottommost level too (RocksDB's default
     * kIfHaveCompactionFilter), so every entry passes the filter. */
    rocksdb_compact_range(rdb->db, NULL, 0, NULL, 0);
    return RN_OK;
}
