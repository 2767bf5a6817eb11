/*
 * state/rocksdb_int.h: what the RocksDB state backend's files share
 * (rocksdb.c: the database, its options, directories and the list and map
 * states; rocksdb_cache.c: the write-back cache of values). Private to
 * state/.
 *
 * The on-disk layout (docs/state.md has the byte diagrams): every entry is
 * one RocksDB key in the default column family,
 *
 *     kg (2, BE) | state id (2, BE) | keylen (LEB128) | key | nslen (1) | ns | suffix
 *
 * where suffix is empty for values and list heads, the user key for map
 * entries and a sequence number (8, BE) for list elements. The key group
 * comes first, so one key-group range is one contiguous key range over all
 * states (what savepoints and rescaling scan or delete); the lengths make
 * the prefix before the suffix self-delimiting, so that (key, ns) pairs
 * never collide ("k" + "1w" vs "k1" + "w") and a map's entries are exactly
 * the keys that start with its prefix, in user-key byte order.
 *
 * @thread task.
 */
#ifndef RN_STATE_ROCKSDB_INT_H
#define RN_STATE_ROCKSDB_INT_H

#include "state/state_int.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <xxhash.h>

extern const rn__state_backend_t rn__state_rocksdb_backend;

/* ---- format ---- */

/* Version of the key and value layout above. A database written with
 * another version is refused with RN_ECORRUPT: there is no migration yet. */
#define RN__RDB_FORMAT_VERSION 3u
/* The metadata key: key group 0xffff (key groups stop at 32768) and state
 * id 0xffff, so it sorts after all state and never collides with it. */
#define RN__RDB_META_KEY "\xff\xff\xff\xff" "format"
#define RN__RDB_META_KEYLEN 10
/* Its value: magic "RNST", then the version as 4 bytes BE. */
#define RN__RDB_META_MAGIC "RNST"
#define RN__RDB_META_LEN 8
/* Largest key group a state key may carry: key groups stop at 32768
 * (max_parallelism's bound), so a state key's first byte is < 0x80, which
 * the timers' tag, the TTL filter and the filter's rebuild (it stops at
 * the first key from 0x80 on) rely on. */
#define RN__RDB_KG_MAX 0x7fffu
#define RN__RDB_STATE_MAX 0xfffeu /* largest state id */
/* Longest prefix beyond the key: kg, state id, 5-byte LEB128, nslen, ns. */
#define RN__RDB_PREFIX_OVERHEAD (2 + 2 + 5 + 1 + RN_STATE_NS_MAX)

_Static_assert(sizeof(RN__RDB_META_KEY) - 1 == RN__RDB_META_KEYLEN, "meta key length");
_Static_assert(sizeof(RN__RDB_META_MAGIC) - 1 + 4 == RN__RDB_META_LEN, "meta value length");
_Static_assert(RN_STATE_NS_MAX <= 255, "nslen is one byte");
_Static_assert(RN__RDB_FORMAT_VERSION == 3u, "update docs/state.md with the format");

/* ---- timers (rocksdb_timers.c) ----
 *
 * Spilled timers, one key each, empty value (format version 2):
 *
 *     0xfe | domain (1) | time (8, BE, sign bit flipped) | kg (4, BE) |
 *     keylen (LEB128) | key | ns
 *
 * The tag 0xfe sorts after every key group (< 0x8000) and before the
 * metadata (0xff), so key-group ranges never include timers; then domain
 * and time, so that the timers of a domain up to a time are one range
 * from 0xfe | domain | its first time. The order within one time (key
 * length before key bytes) is not pop order: whole times are loaded and
 * sorted in memory (timers.c). */
/* Frozen values of a checkpoint from this many bytes on are written as an
 * SST file and ingested (rocksdb_snap.c): below it a write batch costs
 * little and adds no file of its own to the checkpoint. */
#define RN__RDB_INGEST_MIN (4u << 20)

#define RN__RDB_TIMER_TAG 0xfeu
/* kg takes 4 bytes here: the timer API takes any uint32_t key group. */
#define RN__RDB_TIMER_HEAD (1 + 1 + 8 + 4)
#define RN__RDB_TIMER_OVERHEAD (RN__RDB_TIMER_HEAD + 5 + RN_STATE_NS_MAX)
/* State keys start with a key group < 32768 (first byte < 0x80), the
 * metadata with 0xff: the tag sorts between them. */
_Static_assert(RN__RDB_TIMER_TAG >= 0x80u && RN__RDB_TIMER_TAG < 0xffu,
               "timer tag apart from state and metadata");
_Static_assert(RN__RDB_TIMER_HEAD == 14, "update docs/state.md with the timer key layout");

uint64_t rn__rdb_timer_budget(void *be, const uint64_t *bytes[2]);
/* Writes the timers gathered for the store (loads and deletes do it
 * first), so that a scan of the database sees them: for tests. */
rn_code_t rn__rdb_timer_sync(void *be, rn_error_t *err);

rn_code_t rn__rdb_timer_write(void *be, rn_time_domain_t domain, const rn__tref_t *t, size_t n,
                              rn_error_t *err);
rn_code_t rn__rdb_timer_load(void *be, rn_time_domain_t domain, int64_t from, int64_t upto,
                             size_t max, rn_code_t (*fn)(void *ctx, const rn__tref_t *t),
                             void *ctx, int64_t *next, rn_error_t *err);
rn_code_t rn__rdb_timer_del(void *be, rn_time_domain_t domain, const rn__tref_t *t,
                            bool *existed, rn_error_t *err);

/* Writes n as LEB128, the key length in state and timer keys. @returns
 * the byte after it (at most 5 written). */
static inline uint8_t *
rn__rdb_put_len(uint8_t *p, uint32_t n)
{
    while (n >= 0x80) {
        *p++ = (uint8_t)(n | 0x80);
        n >>= 7;
    }
    *p++ = (uint8_t)n;
    return p;
}

/* Reads a LEB128 length written by rn__rdb_put_len at key[*pos] (key is
 * len bytes) into *out and moves *pos past it. @returns false when it is
 * truncated or longer than 5 bytes (not a key of ours). */
static inline bool
rn__rdb_get_len(const uint8_t *key, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        if (*pos >= len || shift > 28)
            return false;
        uint8_t b = key[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *out = v;
    return true;
}

/* An encoded RocksDB key, borrowed; the first member of the structs that
 * batches of writes are sorted by, so that rn__rdb_cmp_key orders them. */
typedef struct rn__rdb_kref {
    const uint8_t *key;
    size_t len;
} rn__rdb_kref_t;

/* qsort comparator: RocksDB's order (bytes, then shorter first) of structs
 * that start with an rn__rdb_kref_t. Batches written in key order insert
 * next to the previous key in the memtable, which measured several times
 * cheaper than random order. */
static inline int
rn__rdb_cmp_key(const void *a, const void *b)
{
    const rn__rdb_kref_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = n > 0 ? memcmp(x->key, y->key, n) : 0;
    if (r != 0)
        return r;
    return (x->len > y->len) - (x->len < y->len);
}

/* The 8 bytes of p (len of them, zero-padded past len) as a big-endian
 * number: an inline prefix that sorts as the bytes do. */
static inline uint64_t
rn__rdb_be_pad(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (i < len ? p[i] : 0);
    return v;
}

/* Writes the (kg, state, key, ns) prefix to out (room for keylen +
 * RN__RDB_PREFIX_OVERHEAD bytes). @returns its length. */
static inline size_t
rn__rdb_prefix(uint8_t *out, uint32_t kg, uint32_t state, const uint8_t *key, uint32_t keylen,
               const uint8_t *ns, uint32_t nslen)
{
    uint8_t *p = out;
    *p++ = (uint8_t)(kg >> 8);
    *p++ = (uint8_t)kg;
    *p++ = (uint8_t)(state >> 8);
    *p++ = (uint8_t)state;
    p = rn__rdb_put_len(p, keylen);
    if (keylen > 0)
        memcpy(p, key, keylen);
    p += keylen;
    *p++ = (uint8_t)nslen;
    if (nslen > 0)
        memcpy(p, ns, nslen);
    p += nslen;
    return (size_t)(p - out);
}

static inline void
rn__rdb_be64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t
rn__rdb_load_be64(const uint8_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

/* ---- what RocksDB may hold (rocksdb_filter.c) ---- */

/*
 * A counting Bloom filter of the value and list-head keys in RocksDB,
 * addressed by the cache's hash of (state id, key, ns). The backend is the
 * only writer of its database, so it counts a key in when the cache first
 * writes it (a put of an entry RocksDB did not hold) and out when a delete
 * of it has been written. A miss whose key the filter rules out is known
 * absent without a RocksDB read: the first touch of every new window.
 *
 * Safety: "absent" must never be wrong. Keys are counted in before their
 * write and out only after their delete is written; a counter that reaches
 * 15 stays there; a rebuild (a scan of the database) replaces the counters
 * only when it completes. Anything else errs towards "maybe", which costs
 * a read. Blocked: the probes of one key fall in one 64-byte block, so a
 * query is one cache miss.
 *
 * Four-bit counters, 128 to a block, sized at 4 bytes a key: 16 keys fill
 * a block, 64 increments over 128 counters, about 2.4% false "maybe"s
 * when full (as 8-bit counters at 8 bytes a key gave). A counter passes
 * 15 only in a block far fuller than its share. Half the bytes, and no
 * rounding up to a power of two, mattered: 1M windows' filter took 32 MB
 * of a 144 MB pool and pushed windows out (1M keys with a checkpoint a
 * second in 320 MB: 1.28 M events/s, then 1.68 M).
 */
typedef struct rn__rfilter {
    uint8_t *ctr;    /* nblocks * 128 four-bit counters, NULL when off */
    size_t nblocks;  /* any count: a block is chosen by multiply-shift */
    uint64_t count;  /* keys counted in (>= the keys RocksDB holds) */
    uint64_t grown;  /* rebuilds, for tests */
} rn__rfilter_t;

#define RN__RF_BLOCK 64
/* Bytes per key the filter is sized for; it grows (rebuilding from the
 * database) when count passes nblocks * RN__RF_BLOCK / RN__RF_PER_KEY. */
#define RN__RF_PER_KEY 4

static inline const uint8_t *
rn__rf_block(const rn__rfilter_t *f, uint64_t h)
{
    /* The high half picks the block, the low 28 bits the probes. Any
     * nblocks, not only a power of two: rounding up to one nearly
     * doubled the filter. */
    return f->ctr + (((h >> 32) * (uint64_t)f->nblocks) >> 32) * RN__RF_BLOCK;
}

/* Counter j (0..127) of block b. */
static inline unsigned
rn__rf_ctr(const uint8_t *b, unsigned j)
{
    return (b[j >> 1] >> ((j & 1) * 4)) & 15;
}

/* @returns false when RocksDB certainly does not hold the key of hash h. */
static inline bool
rn__rf_maybe(const rn__rfilter_t *f, uint64_t h)
{
    if (f->ctr == NULL)
        return true;
    const uint8_t *b = rn__rf_block(f, h);
    return rn__rf_ctr(b, h & 127) && rn__rf_ctr(b, (h >> 7) & 127) &&
           rn__rf_ctr(b, (h >> 14) & 127) && rn__rf_ctr(b, (h >> 21) & 127);
}

rn_code_t rn__rf_init(rn__rfilter_t *f, rn_error_t *err);
void rn__rf_fini(rn__rfilter_t *f);
void rn__rf_add(rn__rfilter_t *f, uint64_t h);
void rn__rf_remove(rn__rfilter_t *f, uint64_t h);
/* Bytes of counters a filter sized for keys keys takes. */
uint64_t rn__rf_bytes_for(uint64_t keys);
/* Bytes of counters. */
static inline uint64_t
rn__rf_bytes(const rn__rfilter_t *f)
{
    return f->ctr != NULL ? (uint64_t)f->nblocks * RN__RF_BLOCK : 0;
}

/* ---- expired TTL entries dropped in compaction (rocksdb_ttl.c) ---- */

/*
 * A RocksDB compaction filter that drops the values, list elements and map
 * entries of TTL states whose expiry (ttl.c's 8-byte header) has passed.
 * It runs on RocksDB's compaction threads; the TTL state ids reach it
 * through atomics, written when a TTL state is registered.
 */
typedef struct rn__rdb_ttl rn__rdb_ttl_t;

/* Creates the filter and installs it in opts (before the database opens).
 * @param clock_ms the processing-time clock (NULL: the wall clock), called
 * from compaction threads. @returns the filter, free with
 * rn__rdb_ttl_destroy() after the database is closed. Aborts when out of
 * memory (a small fixed size). @thread task. */
rn__rdb_ttl_t *rn__rdb_ttl_new(rocksdb_options_t *opts, int64_t (*clock_ms)(void));
/* Accepts NULL. @thread task. */
void rn__rdb_ttl_destroy(rn__rdb_ttl_t *ttl);
/* The backend's ttl_state hook (state_int.h): state id state, of kind,
 * has a TTL from now on. @returns RN_OK, RN_ENOMEM or RN_EINVAL (id out of
 * range). @thread task. */
rn_code_t rn__rdb_ttl_state(void *be, uint32_t state, rn__skind_t kind, rn_error_t *err);
/* Whether key/val is an entry of a TTL state with an expiry, and the
 * expiry in *expiry: what the filter decides by (it drops the entry when
 * *expiry <= now). Timers, metadata, list heads, states without TTL and
 * malformed entries answer false. @thread any. */
bool rn__rdb_ttl_expiry(const rn__rdb_ttl_t *ttl, const uint8_t *key, size_t klen,
                        const uint8_t *val, size_t vlen, int64_t *expiry);
/* Entries the filter dropped so far. @thread any. */
uint64_t rn__rdb_ttl_dropped(void *be);
/* For tests: flushes the memtables and compacts the whole key space, so
 * that every entry RocksDB holds passes the filter (call rn__rdb_flush
 * first for what the write-back cache holds). @returns RN_OK or RN_EIO.
 * @thread task. */
rn_code_t rn__rdb_compact_all(void *be, rn_error_t *err);

/* ---- merging states (rocksdb_merge.c) ---- */

/*
 * RocksDB's merge operator for merging value states: the cache writes a
 * value it did not read as a Merge of its delta, and RocksDB folds deltas
 * into the stored value with the state's merge function when it reads or
 * compacts the key. Runs on any thread; the states reach it through a
 * table published by the task thread.
 */
typedef struct rn__rdb_merge rn__rdb_merge_t;

/* Creates the operator and installs it in opts (before the database
 * opens); the options own it and free it with themselves. Aborts when out
 * of memory (a small fixed size). @thread task. */
rn__rdb_merge_t *rn__rdb_merge_new(rocksdb_options_t *opts);
/* The same operator, table m shared (not owned): for reading another
 * database whose values fold as this one's (rescaling imports). */
void rn__rdb_merge_share(rocksdb_options_t *opts, rn__rdb_merge_t *m);
/* The backend's merge_state hook (state_int.h). @thread task. */
rn_code_t rn__rdb_merge_state(void *be, uint32_t state, const rn_state_merge_t *m,
                              rn_error_t *err);
/* Folds src into dst (size bytes each) with the function of state id
 * state. @returns false when state is not a merging state of that size.
 * @thread task. */
bool rn__rdb_merge_fold(const rn__rdb_merge_t *m, uint32_t state, void *dst, const void *src,
                        size_t size);

/* ---- the write-back cache (rocksdb_cache.c) ---- */

/*
 * Cached values and list heads, keyed by (state id, key, ns). The cache is
 * the truth for every key it holds; RocksDB is the truth for the others.
 */
typedef struct rn__rcent rn__rcent_t;

/* A slot of the table, 8 bytes (rocksdb_cache.c has the layout): the
 * entry's address, a 12-bit tag of its hash and how far it sits from its
 * home slot; 0: empty. Half of 16-byte slots of hash and address: 16 MB
 * less at 1M cached values. */
typedef uint64_t rn__rcslot_t;

/* An entry on its way to RocksDB, with its hash (for the filter). */
typedef struct rn__rcvic {
    rn__rcent_t *e;
    uint64_t hash;
} rn__rcvic_t;

/* A freeze in progress: what it gathered so far (rocksdb_cache.c). */
typedef struct rn__rcfreeze {
    struct rn__rdb_frozen *fz;
    /* The filter's changes, left for the end (rn__rdb_freeze). */
    struct rn__rcfh {
        uint64_t hash;
        bool add;
        bool done; /* added at once (the filter had room) */
    } *hs;
    size_t nh, caph;
    size_t ncow; /* values frozen as they were about to change */
    size_t nnew; /* adds not done at once: until the end, the filter may
                  * call a frozen key absent (rocksdb_cache.c, known_absent) */
    int64_t t0;       /* when it began, for the debug log */
    pthread_t thread; /* the task's, which alone may go on with it */
} rn__rcfreeze_t;

typedef struct rn__rcache {
    rn__rcslot_t *slots;
    size_t cap;     /* power of two */
    size_t count;   /* entries */
    size_t hand;    /* clock hand: next slot the evictor looks at */
    uint64_t bytes; /* entry blocks (class sizes) */
    uint64_t limit; /* bound on bytes + slots */
    rn__fcache_t fc;
    rn__rfilter_t filter; /* what RocksDB may hold; its bytes count in limit */
    /* The handle's in-memory timers by domain (rn__rdb_timer_budget): they
     * share limit with the cache, which gives way as they grow. */
    const uint64_t *shared[2];
    /* And the timers gathered for the store (rn__rdb_t.tg), once
     * checkpoints run as large as the timers' share allows. */
    const struct rn__rdb_tkeys *gathered;
    /* Eviction scratch, kept between rounds to spare the allocator. */
    rn__rcvic_t *victims;
    size_t nvictims;
    size_t capvictims;
    /* Hashes of entries that became dirty since the last freeze or flush,
     * so that a checkpoint's freeze visits those alone rather than every
     * entry (most of a large cache is clean between checkpoints), and
     * so that the freeze can go in slices (a walk of the table cannot:
     * entries move). Stale and repeated hashes are harmless; past cap of
     * them (half the slots' bytes) the list stops (dirty_all) and the
     * next freeze walks the whole table at once. */
    uint64_t *dirty;
    size_t ndirty, capdirty;
    bool dirty_all;
    /* An incremental freeze (rn__rdb_freeze_begin): the dirty list as
     * the barrier found it (pend), worked through a slice at a time
     * between the task's batches; an entry still to be frozen is copied
     * first when something is about to change it. Entries carry the
     * generation (gen) in which they became dirty: at the barrier gen
     * flips, so that "dirty and of the other generation" says "still to
     * be frozen" without a pass over the entries. */
    bool freezing;
    uint8_t gen;
    uint64_t *pend;
    size_t npend, pendpos, cappend; /* pendpos: how many of pend[] (from its end) are done */
    rn__rcfreeze_t frz;
    /* Counters, for stats and the benchmark. */
    uint64_t hits;
    uint64_t misses;
    uint64_t evicted;
    uint64_t written; /* puts and deletes written to RocksDB by eviction and flush */
    uint64_t skipped; /* misses the filter answered without a RocksDB read */
    uint64_t reads;   /* values read from RocksDB one at a time (not by prefetch) */
} rn__rcache_t;

/* The dirty entries as a checkpoint takes them (rocksdb_snap.c): records
 * op (1) | key length (4) | value length (4) | RocksDB key | value, in
 * cache order; off[i] is where record i starts. */
enum { RN__FZ_PUT = 1, RN__FZ_MERGE = 2, RN__FZ_DEL = 3 };
typedef struct rn__rdb_frozen {
    uint8_t *buf;
    size_t len;
    size_t *off;
    uint64_t *hash; /* hash[i]: record i's cache hash (rn__state_hash); 0 for a timer */
    size_t n;
    /* Capacities of buf, and of off and hash. The buffers go from one
     * checkpoint to the next: fresh pages cost a fault each (a sixth of
     * the task's extra work for a checkpoint of a million values). */
    size_t cap, offcap;
    /* The timer writes taken (rn__rdb_timer_freeze): the task's copy of
     * them, read in place, written after the records (timer keys sort
     * after every state key); NULL: none. */
    const struct rn__rdb_tkeys *tk;
    /* The hashes as a set (open addressing, 0 for empty, mask + 1 slots),
     * built by the task the first time it needs RocksDB while the
     * checkpoint's part runs: a read of a key not in it need not wait. */
    struct rn__fzslot {
        uint64_t hash; /* 0: empty */
        size_t i;      /* its record */
    } *set;        /* hash and record side by side: one miss a probe */
    size_t mask;
    bool set_on;   /* set holds this freeze's hashes (else it is memory kept) */
    bool has_zero; /* a record's hash is 0 */
} rn__rdb_frozen_t;

/* Encoded timer keys in one buffer (rocksdb_timers.c). */
typedef struct rn__rdb_tkpos {
    size_t off;    /* in buf */
    uint32_t len;
    uint32_t dead; /* loaded already: neither written nor loaded again */
} rn__rdb_tkpos_t;

typedef struct rn__rdb_tkeys {
    uint8_t *buf;
    size_t len, cap;
    rn__rdb_tkpos_t *pos;
    size_t n, cappos;
    size_t sorted; /* pos[0, sorted) is in key order */
} rn__rdb_tkeys_t;

/* Bytes the keys of ks use. */
static inline uint64_t
rn__rdb_tkeys_used(const rn__rdb_tkeys_t *ks)
{
    return ks->len + ks->n * sizeof(*ks->pos);
}

/* A range of timer keys [lo, hi) to delete; lo and hi in one malloc'd
 * block. */
typedef struct rn__rdb_tdel {
    uint8_t *lo;
    size_t lolen;
    const uint8_t *hi; /* lo + lolen */
    size_t hilen;
} rn__rdb_tdel_t;

typedef struct rn__rdb rn__rdb_t;

/* The database of one operator instance. */
struct rn__rdb {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf; /* the default (only) column family */
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_cache_t *bcache;
    rocksdb_env_t *env;
    rocksdb_writebatch_t *wb; /* reused by every write */
    /* Spilled timers not yet written (rocksdb_timers.c): registrations in
     * the store's range gather here, encoded, and go to RocksDB a sorted
     * batch at a time, before any read of the timers. */
    rn__rdb_tkeys_t tg;
    size_t tgmin[2]; /* by domain: index in tg of its smallest key; SIZE_MAX: none */
    bool tg_hold;    /* checkpoints are taken: tg waits for the next one */
    /* The gathered timers the running checkpoint took over (they reach
     * RocksDB with its frozen values): the task's own copy, since the
     * checkpoint's part frees fz's when done. A load meanwhile merges
     * them with RocksDB's rather than wait (rocksdb_timers.c). */
    rn__rdb_tkeys_t tfz;
    rn__rdb_kref_t *tfzsort; /* tfz's keys in key order, no duplicates; NULL: not made */
    size_t ntfzsort;
    /* Range deletes of timers loaded while a checkpoint's part ran:
     * written once it is done, before any other timer write. */
    rn__rdb_tdel_t *tdel;
    size_t ntdel, captdel;
    /* By domain: the first key the last load left (malloc'd), while every
     * stored timer is at or after it; NULL: unknown. */
    uint8_t *tres[2];
    size_t treslen[2];
    char *path;  /* the per-run directory, owned; removed on close when remove_on_close */
    char *owner; /* "component#instance", owned */
    bool remove_on_close;
    uint64_t live; /* values, list heads and map entries */
    uint8_t *kbuf; /* scratch for encoded keys, owned */
    size_t kcap;
    char *lastval; /* value returned by the last map get, malloc'd by RocksDB */
    rn__rcache_t cache;
    uint64_t tlimit; /* bytes of in-memory timers per domain (rocksdb_timers.c) */
    rn__rdb_ttl_t *ttl; /* the compaction filter (rocksdb_ttl.c), owned */
    rn__rdb_merge_t *merge; /* the merge operator (rocksdb_merge.c), owned by opts */
    /* A checkpoint's asynchronous part (rocksdb_snap.c): frozen writes
     * not yet in RocksDB, and the checkpoint not yet made. */
    _Atomic bool fence_busy;
    pthread_mutex_t fence_lock;
    pthread_cond_t fence_cond;
    uint64_t fence_waits, fence_wait_ns; /* the task's waits there (debug log, rn__rc_prefetch) */
    rn__rdb_frozen_t fz;
    /* Where the checkpoint's part is: 0 RocksDB not changed yet (the
     * frozen values being sorted, their SST file written: a frozen key
     * reads as its record over RocksDB's value, rn__rdb_get_cached), 1
     * being written or ingested, 2 written. */
    _Atomic int fz_state;
    uint8_t *fz_old; /* a buffer of values outgrown, freed by the next part */
    pthread_t fz_thread; /* the task that took the snapshot */
    bool fence_pass;     /* the task's RocksDB reads need not wait (rn__rdb_freeze_step) */
    uint64_t ingest_min; /* rn_state_options_t.ingest_min_bytes */
    char *fz_dir; /* where the RocksDB checkpoint goes, owned */
    /* Set once, by a checkpoint's part whose frozen values could not be
     * written (a full or failing disk): the cache had handed them over
     * as written, so RocksDB lacks state the job has, and nothing may
     * read it or checkpoint it again. Every later access that reaches
     * RocksDB and every snapshot fails with broken_err (RN_ERR_FATAL:
     * the job fails; its last completed checkpoint is intact). Written
     * before fence_busy is cleared (release), read after an acquire. */
    _Atomic bool broken;
    rn_error_t broken_err;
};

/* RN_OK, or the error that broke rdb (see rn__rdb_t.broken) into err.
 * @thread any. */
static inline rn_code_t
rn__rdb_check(rn__rdb_t *rdb, rn_error_t *err)
{
    if (RN_LIKELY(!atomic_load_explicit(&rdb->broken, memory_order_acquire)))
        return RN_OK;
    if (err != NULL)
        *err = rdb->broken_err;
    return rdb->broken_err.code;
}

rn_code_t rn__rc_init(rn__rcache_t *c, uint64_t limit, rn_error_t *err);
/* Whether the cache, the filter and the timers (gathered ones included)
 * leave an eighth of the limit free: below, eviction is near. */
bool rn__rc_roomy(const rn__rcache_t *c);
void rn__rc_fini(rn__rcache_t *c);

/* Value-state operations through the cache (k->kind VALUE, or LIST for list
 * heads), with the semantics of state_int.h. Borrowed results stay valid
 * until the next call on rdb. */
rn_code_t rn__rc_get(rn__rdb_t *rdb, const rn__skey_t *k, const void **val, size_t *len,
                     rn_error_t *err);
rn_code_t rn__rc_put(rn__rdb_t *rdb, const rn__skey_t *k, const void *val, size_t len,
                     rn_error_t *err);
void *rn__rc_ref(rn__rdb_t *rdb, const rn__skey_t *k, size_t size, bool *created,
                 rn_error_t *err);
/* rn__vstate_ref_part for a merging state: on a miss, a zeroed partial
 * entry (a delta, written as a Merge) without reading RocksDB. */
void *rn__rc_ref_part(rn__rdb_t *rdb, const rn__skey_t *k, size_t size, bool *fresh,
                      rn_error_t *err);
/* Reads the values of keys[0..n) that are neither cached nor ruled out by
 * the filter into the cache, in one batched MultiGet sorted by RocksDB
 * key: the windows a batch of timers is about to fire. A hint: errors
 * are left for the reads that follow. */
void rn__rc_prefetch(rn__rdb_t *rdb, const rn__skey_t *keys, size_t n);
/* Prefetches the table slot of k (only its keyhash, state and ns count). */
void rn__rc_prefetch_key(rn__rdb_t *rdb, const rn__skey_t *k);
/* Deletes the value of k. @param existed set to whether it existed. */
rn_code_t rn__rc_del(rn__rdb_t *rdb, const rn__skey_t *k, bool *existed, rn_error_t *err);
/* get, copy and del in one lookup: see rn__vstate_take. @param buf owned by
 * the caller. */
rn_code_t rn__rc_take(rn__rdb_t *rdb, const rn__skey_t *k, void *buf, size_t size, size_t *len,
                      rn_error_t *err);

/* Writes every dirty entry to RocksDB in one WriteBatch sorted by RocksDB
 * key, and keeps the entries as clean copies. For checkpoints: after it,
 * the database alone holds all state. */
rn_code_t rn__rdb_flush(void *be, rn_error_t *err);

/* Copies every dirty entry into fz (rn_malloc'd buffers; aborts when out
 * of memory) and leaves the
 * cache as rn__rdb_flush would, without writing to RocksDB: the caller
 * writes fz before anything else reaches RocksDB (the fence,
 * rocksdb_snap.c). */
rn_code_t rn__rdb_freeze(rn__rdb_t *rdb, rn_error_t *err);
/* Starts a freeze into fz (emptied, its buffers kept): then
 * rn__rdb_timer_freeze, then rn__rdb_freeze or rn__rdb_freeze_begin. */
void rn__rdb_freeze_init(rn__rdb_t *rdb, rn__rdb_frozen_t *fz);
/* Calls fn with each live key of ks in key order, once each, until fn
 * returns false. @returns RN_OK or RN_ENOMEM. @thread any, while ks does
 * not change. */
rn_code_t rn__rdb_tkeys_sorted(const struct rn__rdb_tkeys *ks,
                               bool (*fn)(void *ctx, const uint8_t *key, size_t len), void *ctx,
                               rn_error_t *err);
/* Hands the gathered timers to the freeze begun by rn__rdb_freeze_init
 * (a checkpoint: they reach RocksDB with its frozen values, off the
 * task's thread; loads of timers meanwhile merge the task's copy). */
void rn__rdb_timer_freeze(rn__rdb_t *rdb);
/* Writes the range deletes of the timers loaded while the last
 * checkpoint's part ran (waits for that part when it still runs). Before
 * a snapshot, so that the checkpoint does not hold them. */
rn_code_t rn__rdb_timer_settle(rn__rdb_t *rdb, rn_error_t *err);
/* Frees the timer store's buffers (on close). */
void rn__rdb_timer_fini(rn__rdb_t *rdb);
/* rn__rdb_freeze in slices: begin takes the list of entries that became
 * dirty (O(1)) and returns false when there is none to take (the list
 * overflowed: the caller freezes at once); rn__rdb_freeze_step freezes
 * up to budget of them (SIZE_MAX: all) and @returns whether it did any
 * work. Until the last step, a change to an entry not yet frozen
 * freezes it first, and a wait at the fence (rn__rdb_fence_wait)
 * finishes the freeze. @thread task (the one that began it). */
bool rn__rdb_freeze_begin(rn__rdb_t *rdb);
bool rn__rdb_freeze_step(rn__rdb_t *rdb, size_t budget);
/* Adds hash h of a newly frozen record to fz's set, when it has one. */
void rn__rdb_frozen_note(rn__rdb_frozen_t *fz, uint64_t h, size_t i);
/* The frozen record of key (klen bytes, hash h) in fz, or NULL. The task
 * alone (it grows fz). */
const uint8_t *rn__rdb_frozen_find(rn__rdb_t *rdb, uint64_t h, const uint8_t *key, size_t klen);
/* Waits until a checkpoint's frozen writes are in RocksDB: every access
 * to the database from the task goes through it (or rn__rdb_fence_key). */
void rn__rdb_fence_wait(rn__rdb_t *rdb);
/* Forgets rdb among the freezes a thread owes (rn__rdb_fence_wait ends
 * them before it waits): before rdb is freed. @thread any. */
void rn__rdb_freeze_forget(rn__rdb_t *rdb);
static inline void
rn__rdb_fence(rn__rdb_t *rdb)
{
    if (RN_UNLIKELY(atomic_load_explicit(&rdb->fence_busy, memory_order_acquire)))
        rn__rdb_fence_wait(rdb);
}
/* @returns whether the checkpoint's part is still running (no wait). */
static inline bool
rn__rdb_fence_busy(rn__rdb_t *rdb)
{
    return atomic_load_explicit(&rdb->fence_busy, memory_order_acquire);
}
/* For a read of one cache key (hash h): waits only when the key is among
 * the frozen ones. Reading any other key meanwhile is safe: RocksDB's
 * value for it is the one the frozen writes leave. */
bool rn__rdb_frozen_has(rn__rdb_t *rdb, uint64_t h);
static inline void
rn__rdb_fence_key(rn__rdb_t *rdb, uint64_t h)
{
    if (RN_UNLIKELY(rn__rdb_fence_busy(rdb)) && rn__rdb_frozen_has(rdb, h))
        rn__rdb_fence_wait(rdb);
}
/* Frees what the last checkpoint froze (the task, once the fence is open). */
void rn__rdb_frozen_free(rn__rdb_frozen_t *fz);

/* ---- RocksDB access (rocksdb.c, the one file that sees its errors) ---- */

/* Point lookup of an encoded key. @returns RN_OK with *val (malloc'd by
 * RocksDB: free with rocksdb_free()) and *len, RN_ENOTFOUND, or RN_EIO. */
rn_code_t rn__rdb_get(rn__rdb_t *rdb, const uint8_t *key, size_t klen, char **val, size_t *len,
                      rn_error_t *err);
/* rn__rdb_get of a cache key of hash h and state id state: waits only
 * for a frozen key, and not even then before the checkpoint's writes
 * began (its value is then its frozen record's over RocksDB's). */
rn_code_t rn__rdb_get_cached(rn__rdb_t *rdb, uint64_t h, uint32_t state, const uint8_t *key,
                             size_t klen, char **val, size_t *len, rn_error_t *err);
/* Batched MultiGet of n encoded keys sorted in RocksDB's order: vals[i]
 * is the value (destroy with rocksdb_pinnableslice_destroy) or NULL when
 * absent. errs is caller scratch of n pointers. @returns RN_OK, or RN_EIO
 * with the first key's error, when any key failed: then every vals[i] is
 * NULL (absence unknown). Does not wait at the fence: none of the keys
 * may be frozen (rn__rdb_frozen_has). */
rn_code_t rn__rdb_multi_get(rn__rdb_t *rdb, size_t n, const char *const *keys,
                            const size_t *lens, rocksdb_pinnableslice_t **vals, char **errs,
                            rn_error_t *err);
/* Writes rdb->wb (without WAL) and clears it, on success and failure. */
rn_code_t rn__rdb_write(rn__rdb_t *rdb, rn_error_t *err);
/* Writes wb (without WAL) and clears it, on success and failure. */
rn_code_t rn__rdb_write_batch(rn__rdb_t *rdb, rocksdb_writebatch_t *wb, rn_error_t *err);
/* @returns rdb->kbuf grown to at least need bytes (aborts when out of
 * memory: keys are bounded by RN_KEY_MAX). */
uint8_t *rn__rdb_kbuf(rn__rdb_t *rdb, size_t need);

/* Iterates the keys in [lo, hi), calling fn with each key past skip bytes
 * (with_key false: NULL) and its value, and counts them in *n; a NULL fn
 * deletes them (into rdb->wb) instead. Both bounds are copied.
 * @returns RN_OK, fn's first non-OK return, RN_ENOMEM or RN_EIO. */
rn_code_t rn__rdb_range_each(rn__rdb_t *rdb, const uint8_t *lo, size_t lolen, const uint8_t *hi,
                             size_t hilen, size_t skip, bool with_key, rn_state_each_fn fn,
                             void *ctx, uint64_t *n, rn_error_t *err);

/* ---- list and map states (rocksdb_coll.c): the backend's hooks for
 * them, with the semantics of state_int.h ---- */

rn_code_t rn__rdb_map_get(rn__rdb_t *rdb, const rn__skey_t *k, const void **val, size_t *len,
                          rn_error_t *err);
rn_code_t rn__rdb_map_put(rn__rdb_t *rdb, const rn__skey_t *k, const void *val, size_t len,
                          rn_error_t *err);
rn_code_t rn__rdb_map_remove(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err);
/* Removes every entry of (k's key, ns). */
rn_code_t rn__rdb_map_clear(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err);
rn_code_t rn__rdb_map_each(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx,
                           rn_error_t *err);
rn_code_t rn__rdb_list_add(void *be, const rn__skey_t *k, const void *val, size_t len,
                           rn_error_t *err);
rn_code_t rn__rdb_list_each(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx,
                            rn_error_t *err);
rn_code_t rn__rdb_list_clear(rn__rdb_t *rdb, const rn__skey_t *k, rn_error_t *err);

/* Opens the database at path, which must exist and hold a database of this
 * format (a restored checkpoint, later). Does not remove path on close.
 * @returns RN_ECORRUPT when the format version differs. */
rn_code_t rn__rdb_open_existing(const char *path, const rn_state_options_t *opts, void **be,
                                rn_error_t *err);
/* Checkpoints (rocksdb_snap.c): the backend's snapshot and ready hooks,
 * and the copy of a snapshot's files into rdb->path before it opens. */
rn_code_t rn__rdb_snapshot(void *be, const char *dir, rn_state_finish_t *fin, rn_error_t *err);
rn_code_t rn__rdb_ready(void *be, rn_error_t *err);
rn_code_t rn__rdb_restore_files(rn__rdb_t *rdb, const char *restore_dir, rn_error_t *err);
rn_code_t rn__rdb_import(void *be, const char *dir, uint32_t lo, uint32_t hi, rn_error_t *err);
/* @returns the directory of an open backend (borrowed until close). */
const char *rn__rdb_path(void *be);
/* Fills the cache counters, for tests and the benchmark. */
void rn__rdb_cache_stats(void *be, uint64_t *hits, uint64_t *misses, uint64_t *evicted,
                         uint64_t *written);
/* Misses answered by the filter alone, and the filter's rebuilds. */
void rn__rdb_filter_stats(void *be, uint64_t *skipped, uint64_t *rebuilt);

/* Calls fn with every key in the database, in key order; stops at the
 * first fn that returns false. Keys are borrowed for the call.
 * @returns RN_OK, or RN_EIO when the iterator fails. */
rn_code_t rn__rdb_scan_keys(rn__rdb_t *rdb, bool (*fn)(void *ctx, const uint8_t *key, size_t len),
                            void *ctx, rn_error_t *err);
/* rn__rdb_scan_keys from the first key >= from (fromlen bytes; NULL: the
 * first key). */
rn_code_t rn__rdb_scan_from(rn__rdb_t *rdb, const uint8_t *from, size_t fromlen,
                            bool (*fn)(void *ctx, const uint8_t *key, size_t len), void *ctx,
                            rn_error_t *err);
/* Rebuilds the filter from the database, sized for twice the keys it
 * holds and extra more. When those would take more than cap bytes of
 * counters (0: no cap) the filter is switched off (ctr NULL) instead.
 * On failure the filter stays as it was (still safe). */
rn_code_t rn__rf_rebuild(rn__rdb_t *rdb, uint64_t extra, uint64_t cap, rn_error_t *err);

#endif
