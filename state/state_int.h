/*
 * state/state_int.h: what the state handle (state.c), the timer service
 * (timers.c) and the backends (memory.c, rocksdb.c) share. Private to
 * state/.
 *
 * The backend contract: a backend stores bytes under a composite key
 * (state id, key group, key bytes, namespace bytes[, user key bytes]) and
 * knows nothing of operators, names or timers. The handle resolves names to
 * ids and keeps the current key, so that a backend call carries everything
 * needed to address one entry (rn__skey_t). A RocksDB backend lays the
 * composite key out as kg | state id | key | ns | user key, which makes the
 * map iteration order (user-key bytes) and key-group range scans (for
 * rescaling) come out of the sort order of the store.
 *
 * @thread task.
 */
#ifndef RN_STATE_STATE_INT_H
#define RN_STATE_STATE_INT_H

#include "state/state.h"

#include <xxhash.h>

typedef enum rn__skind {
    RN__SK_VALUE = 0,
    RN__SK_LIST = 1,
    RN__SK_MAP = 2,
} rn__skind_t;

/* One addressed entry. All pointers are borrowed for the call. */
typedef struct rn__skey {
    uint32_t state;      /* state id: index in the registry */
    uint32_t kind;       /* rn__skind_t of the state */
    uint32_t kg;         /* key group of the key */
    uint32_t keylen;
    uint32_t nslen;
    uint32_t uklen;
    uint64_t keyhash;    /* XXH3_64bits(key), computed once per set_key */
    const uint8_t *key;
    const uint8_t *ns;
    const uint8_t *ukey; /* map states: the user key, NULL to mean "all of (key, ns)" */
} rn__skey_t;

/* One timer as the spill store sees it. Pointers borrowed for the call. */
typedef struct rn__tref {
    int64_t time;
    uint32_t kg;
    uint32_t keylen;
    uint32_t nslen;
    const uint8_t *key;
    const uint8_t *ns;
} rn__tref_t;

/*
 * A backend. Every function may be called only between open and close.
 * get/put/del address a value (VALUE), a list as a whole (LIST, del only)
 * or a map entry (MAP with ukey); del of MAP without ukey removes every
 * entry of (key, ns). Borrowed results follow the rule of state.h.
 */
typedef struct rn__state_backend {
    const char *name;
    /* @returns the backend's handle in *be (free with close). */
    rn_code_t (*open)(const rn_state_options_t *opts, void **be, rn_error_t *err);
    void (*close)(void *be);
    /* RN_ENOTFOUND when absent, msg empty. */
    rn_code_t (*get)(void *be, const rn__skey_t *k, const void **val, size_t *len,
                     rn_error_t *err);
    rn_code_t (*put)(void *be, const rn__skey_t *k, const void *val, size_t len,
                     rn_error_t *err);
    /* VALUE only: size writable bytes in place; see rn__vstate_ref. */
    void *(*ref)(void *be, const rn__skey_t *k, size_t size, bool *created, rn_error_t *err);
    /* Absent is not an error. */
    rn_code_t (*del)(void *be, const rn__skey_t *k, rn_error_t *err);
    /* VALUE only, optional (NULL: the handle does get then del): see
     * rn__vstate_take. */
    rn_code_t (*take)(void *be, const rn__skey_t *k, void *buf, size_t size, size_t *len,
                      rn_error_t *err);
    rn_code_t (*list_add)(void *be, const rn__skey_t *k, const void *val, size_t len,
                          rn_error_t *err);
    rn_code_t (*list_each)(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx,
                           rn_error_t *err);
    /* Entries of (key, ns) in user-key byte order; k->ukey is NULL. */
    rn_code_t (*map_each)(void *be, const rn__skey_t *k, rn_state_each_fn fn, void *ctx,
                          rn_error_t *err);
    /* Adds the backend's entries and bytes to *stats. */
    void (*stats)(void *be, rn_state_stats_t *stats);
    /* Optional: state id state, of kind, has a TTL (called when it is
     * registered, before any entry of it exists), so that the backend can
     * drop its expired entries by itself (rocksdb_ttl.c). NULL: it does not. */
    rn_code_t (*ttl_state)(void *be, uint32_t state, rn__skind_t kind, rn_error_t *err);
    /* Optional, both or neither: state id state is a merging value state
     * (registered before any value of it exists), and ref_part hands out
     * its values as rn__vstate_ref_part does. NULL: the handle uses ref. */
    rn_code_t (*merge_state)(void *be, uint32_t state, const rn_state_merge_t *m,
                             rn_error_t *err);
    void *(*ref_part)(void *be, const rn__skey_t *k, size_t size, bool *fresh, rn_error_t *err);
    /* Optional: the values of keys[0..n) are about to be read (timers
     * about to fire, rn__state_read_on_timer). A hint: the backend may
     * read them in one batch; failures are left for the reads. */
    void (*prefetch)(void *be, const rn__skey_t *keys, size_t n);
    /* Optional: rn__vstate_prefetch (k's key bytes are not given: only
     * keyhash, state, ns). */
    void (*prefetch_key)(void *be, const rn__skey_t *k);
    /* With prefetch_key: the bytes of the table it prefetches into. */
    size_t (*table_bytes)(void *be);

    /* Checkpoints, optional (NULL: the backend cannot be snapshot).
     * snapshot writes into dir (exists, empty) what restores the backend
     * as it is now: the synchronous part of a checkpoint, so it must not
     * take longer than it has to. A backend opened with opts->restore_dir
     * restores from such a directory; ready() is then called once the
     * operator has registered its states (RocksDB compacts only after
     * that: merging states must be known first). */
    rn_code_t (*snapshot)(void *be, const char *dir, rn_state_finish_t *fin, rn_error_t *err);
    /* Rescaling, optional: adds the entries (and stored timers) of key
     * groups [lo, hi] of the snapshot in dir to this backend. */
    rn_code_t (*import)(void *be, const char *dir, uint32_t lo, uint32_t hi, rn_error_t *err);
    rn_code_t (*ready)(void *be, rn_error_t *err);
    /* Optional: rn__state_tick. */
    bool (*tick)(void *be, bool all);

    /* The timer spill store (timers_spill in state.c), all optional: NULL
     * for a backend that keeps timers in memory only (memory.c). */
    /* Shares the backend's memory with the handle's in-memory timers:
     * bytes[d] is the live byte count of domain d's timers, valid until
     * close, which the backend counts in its own bound (its cache gives way
     * as timers grow). @returns the bytes the timers of one domain may hold
     * before their latest times are spilled; 0: unbounded. */
    uint64_t (*timer_budget)(void *be, const uint64_t *bytes[2]);
    /* Writes the n timers of t to the store (visible to the next load or
     * delete; the backend may batch them until then). */
    rn_code_t (*timer_write)(void *be, rn_time_domain_t domain, const struct rn__tref *t,
                             size_t n, rn_error_t *err);
    /* One range scan from time from: calls fn with each stored timer of
     * time <= upto, in time order, stopping after max timers (also inside
     * a time), and deletes what fn accepted; sets *next to the earliest
     * time left in the store (INT64_MAX when none). fn's timer is borrowed
     * for the call. max 0 loads nothing (a seek for *next). */
    rn_code_t (*timer_load)(void *be, rn_time_domain_t domain, int64_t from, int64_t upto,
                            size_t max, rn_code_t (*fn)(void *ctx, const struct rn__tref *t),
                            void *ctx, int64_t *next, rn_error_t *err);
    /* Deletes a stored timer; *existed says whether it was there. */
    rn_code_t (*timer_del)(void *be, rn_time_domain_t domain, const struct rn__tref *t,
                           bool *existed, rn_error_t *err);
} rn__state_backend_t;

extern const rn__state_backend_t rn__state_memory_backend;
extern const rn__state_backend_t rn__state_rocksdb_backend;

/* ---- timer service (timers.c), embedded in rn_state_t, one per domain ---- */

/* A free list per 16-byte size class, so that the entries and timers
 * that windows create and drop all the time are recycled without going
 * through malloc. */
#define RN__FC_CLASSES 32 /* blocks up to 512 bytes */
/* Blocks kept per class by default: a bounded backend (RocksDB's cache
 * and timers) counts only live blocks in its bound, so that what its free
 * lists keep must stay small. */
#define RN__FC_KEEP 4096
/* Blocks kept per class by the memory backend, which has no bound: windows
 * free a million entries when a million keys' windows fire, and allocate
 * them again for the next ones (malloc and free were a fifth of such a
 * run). */
#define RN__FC_KEEP_UNBOUNDED (1u << 22)

typedef struct rn__fcache {
    void *head[RN__FC_CLASSES];
    uint32_t count[RN__FC_CLASSES];
    uint32_t keep; /* blocks kept per class; 0: RN__FC_KEEP */
} rn__fcache_t;

/* The size a block of size bytes is allocated with (its class size). */
static inline size_t
rn__fc_round(size_t size)
{
    return (size + 15) & ~(size_t)15;
}

/* The free list of blocks of size bytes (RN__FC_CLASSES and above: none). */
static inline size_t
rn__fc_class(size_t size)
{
    return rn__fc_round(size) / 16 - 1;
}

/* @returns rn__fc_round(size) bytes, or NULL when out of memory. */
static inline void *
rn__fc_alloc(rn__fcache_t *fc, size_t size)
{
    size_t c = rn__fc_class(size);
    if (c < RN__FC_CLASSES && fc->head[c] != NULL) {
        void *p = fc->head[c];
        fc->head[c] = *(void **)p;
        fc->count[c]--;
        return p;
    }
    return rn_malloc(rn__fc_round(size));
}

/* Whether a block of size bytes would be kept by rn__fc_free (rather
 * than given back to malloc). */
static inline bool
rn__fc_keeps(const rn__fcache_t *fc, size_t size)
{
    size_t c = rn__fc_class(size);
    return c < RN__FC_CLASSES && fc->count[c] < (fc->keep ? fc->keep : RN__FC_KEEP);
}

/* Puts block p of class c into its free list whatever the list's bound
 * (to malloc when there is no list for c). */
static inline void
rn__fc_put(rn__fcache_t *fc, void *p, size_t c)
{
    if (c < RN__FC_CLASSES) {
        *(void **)p = fc->head[c];
        fc->head[c] = p;
        fc->count[c]++;
        return;
    }
    rn_free(p);
}

/* Frees a block of size bytes (the size it was asked for). */
static inline void
rn__fc_free(rn__fcache_t *fc, void *p, size_t size)
{
    if (rn__fc_keeps(fc, size))
        rn__fc_put(fc, p, rn__fc_class(size));
    else
        rn_free(p);
}

static inline void
rn__fc_fini(rn__fcache_t *fc)
{
    for (int c = 0; c < RN__FC_CLASSES; c++) {
        while (fc->head[c] != NULL) {
            void *p = fc->head[c];
            fc->head[c] = *(void **)p;
            rn_free(p);
        }
        fc->count[c] = 0;
    }
}

typedef struct rn__tnode rn__tnode_t;

/* A timer in its time bucket carries what orders it among the bucket's
 * timers, so that sorting rarely touches the nodes: key group and the
 * key's first 12 bytes (zero-padded, big-endian, so that they compare as
 * the bytes do). */
typedef struct rn__tslot {
    uint64_t prefix;  /* key bytes 0..7 */
    uint32_t kg;
    uint32_t prefix2; /* key bytes 8..11 */
    rn__tnode_t *node;
    uint64_t hash; /* the node's dedup hash: pop prefetches its index slot */
} rn__tslot_t;

/* The timers of one time. Unsorted (registration order) until it first
 * pops; then sorted, popped from next on, and kept sorted by inserting in
 * place. */
typedef struct rn__tbucket {
    int64_t time;
    rn__tslot_t *slots; /* slots[next..n): live and deleted timers */
    uint32_t n;
    uint32_t cap;
    uint32_t next; /* slots before it have popped (nodes freed) */
    uint32_t live; /* timers not deleted, not popped; > 0 while in the heap */
    uint32_t hpos; /* position in the bucket heap, UINT32_MAX when free */
    bool sorted;
} rn__tbucket_t;

/* A dedup index slot: the hash beside the node, so that probing does not
 * touch nodes. */
typedef struct rn__ttab {
    uint64_t hash;
    rn__tnode_t *node; /* NULL: empty */
} rn__ttab_t;

typedef struct rn__timers {
    rn__tbucket_t *bk; /* bucket storage, addressed by index */
    uint32_t nbk;      /* buckets ever created (in use or free) */
    uint32_t capbk;
    uint32_t *bheap;   /* min-heap of bucket indices by time, capbk long */
    uint32_t nheap;
    uint32_t *bfree;   /* free bucket indices (their slot arrays kept), capbk long */
    uint32_t nfree;
    uint32_t *btab;    /* time -> bucket index + 1: linear probing, 0 = empty */
    size_t btabcap;    /* power of two, or 0 */
    uint32_t last;     /* the bucket of the last add, or UINT32_MAX */
    uint32_t live;     /* timers not deleted */
    rn__ttab_t *tab;   /* dedup index of live timers */
    size_t tabcap;     /* power of two, or 0 */
    rn__tslot_t *scratch; /* sort buffer, as long as the largest bucket */
    uint32_t scratchcap;
    uint32_t *counts; /* counting sort by key group */
    size_t countcap;
    uint64_t bytes;
    rn__fcache_t fc; /* recycled nodes */
    bool pinned;       /* rn__timers_pin: frees are held back */
    /* Nodes freed while pinned, with their size classes: an array, so
     * that unpin fetches them ahead (a linked list of a million nodes
     * freed at a window's firing was a cache miss each, 50 ms), kept
     * for the next; linked instead when the array cannot grow. */
    struct rn__theld {
        rn__tnode_t *n;
        size_t cls;
    } *heldv;
    size_t nheld, capheld;
    rn__tnode_t *held;
} rn__timers_t;

void rn__timers_init(rn__timers_t *tm);
void rn__timers_fini(rn__timers_t *tm);

/* The current key as timers.c needs it; key borrowed for the call. */
typedef struct rn__tkey {
    const uint8_t *key;
    uint32_t keylen;
    uint32_t kg;
    uint64_t keyhash;
} rn__tkey_t;

rn_code_t rn__timers_add(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns,
                         size_t nslen, rn_error_t *err);
void rn__timers_del(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns,
                    size_t nslen);
/* Removes the earliest timer if its time <= upto, sets it as st's current
 * key and fills *t. @returns RN_OK or RN_ENOTFOUND. */
rn_code_t rn__timers_pop(rn__timers_t *tm, rn_state_t *st, int64_t upto, rn_timer_t *t);
int64_t rn__timers_next(rn__timers_t *tm);
/* Fills out with up to max of the timers that pop next (of the earliest
 * time, when it is <= upto), in pop order: key group, key, keyhash and
 * namespace (borrowed until tm changes); state and kind left zero.
 * @returns how many. */
size_t rn__timers_peek(rn__timers_t *tm, int64_t upto, size_t max, rn__skey_t *out);
/* A snapshot of the timers in memory without copying them: @returns the
 * live timers' nodes (in no order; the caller owns the array), and until
 * rn__timers_unpin, nodes that pop, are deleted or spilled are kept as
 * they are, so that another thread may read the returned ones with
 * rn__timers_node_ref while tm goes on changing. NULL with *n 0: out of
 * memory (err set). One pin at a time. */
rn__tnode_t **rn__timers_pin(rn__timers_t *tm, size_t *n, rn_error_t *err);
/* Frees the nodes kept since rn__timers_pin. @thread tm's, once no other
 * thread reads pinned nodes. */
void rn__timers_unpin(rn__timers_t *tm);
/* Fills *t with a pinned node's timer (pointers into the node). */
void rn__timers_node_ref(const rn__tnode_t *n, rn__tref_t *t);
/* @returns whether the timer (k, time, ns) is in memory. */
bool rn__timers_has(rn__timers_t *tm, const rn__tkey_t *k, int64_t time, const void *ns,
                    size_t nslen);
/* Spill: takes the buckets of the latest times out of memory, then the
 * tail of the earliest one's slots, until tm->bytes is at most target,
 * hands their live timers to write in one call, and frees them once write
 * succeeded. Sets *first to the earliest time spilled, when earlier than
 * it was. On failure nothing leaves memory. */
rn_code_t rn__timers_spill(rn__timers_t *tm, uint64_t target,
                           rn_code_t (*write)(void *ctx, const rn__tref_t *t, size_t n,
                                              rn_error_t *err),
                           void *ctx, int64_t *first, rn_error_t *err);

typedef struct rn__hsnap rn__hsnap_t;
/* Waits for the snapshot in flight (its handle file) and frees it.
 * @thread task. */
void rn__state_snap_release(rn_state_t *st);

/* A 64-bit mix (murmur3 finalizer), for combining hashes of parts. */
static inline uint64_t
rn__state_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The hash of (state id, key, ns) that both backends' tables address a
 * value or list head by (and RocksDB's filter of what it may hold).
 * k->keyhash must be XXH3_64bits(key), as rn__key_hash() makes it: the
 * filter's rebuild computes it so from the database's keys. */
static inline uint64_t
rn__state_hash(const rn__skey_t *k)
{
    uint64_t seed = k->keyhash ^ rn__state_mix(((uint64_t)k->state << 1) | 1u);
    return XXH3_64bits_withSeed(k->ns, k->nslen, seed);
}

/* rn__state_hash of k whose keyhash is not at hand: made from the key
 * bytes as every key hash is (XXH3, rn__key_hash). For keys read back
 * from an entry or from RocksDB. */
static inline uint64_t
rn__state_hash_bytes(rn__skey_t k)
{
    k.keyhash = XXH3_64bits(k.key, k.keylen);
    return rn__state_hash(&k);
}

/* ---- the handle (state.c) and TTL (ttl.c) ---- */

/* A registered state. rn_vstate/rn_lstate/rn_mstate are this struct under
 * three names, so that the compiler keeps the kinds apart in operators. */
struct rn_vstate {
    rn_state_t *st;
    uint32_t id;
    rn__skind_t kind;
    char *name;
    int64_t ttl_ms;   /* 0: no TTL (ttl.c) */
    bool ttl_on_read; /* reads refresh the expiry too */
    bool merging;     /* registered with rn__state_value_merge */
    rn_state_merge_t merge; /* then its size and function (ctx not kept) */
};
struct rn_lstate {
    struct rn_vstate h;
};
struct rn_mstate {
    struct rn_vstate h;
};

struct rn_state {
    const rn__state_backend_t *ops;
    void *be;
    char *owner; /* "component#instance" or "state", for messages */

    uint8_t *key; /* current key, owned */
    uint32_t keylen;
    uint32_t keycap;
    uint32_t kg;
    uint64_t keyhash;

    struct rn_vstate **states; /* registry, index = state id */
    uint32_t nstates;
    uint32_t capstates;

    rn__timers_t timers[2]; /* by rn_time_domain_t */
    /* Timers spilled to the backend's store (ops->timer_write), by domain:
     * every in-memory timer is at or before spill_min, every stored one at
     * or after it (a time spilled in part is in both, each timer in one);
     * INT64_MAX when the store holds none. */
    int64_t spill_min[2];
    uint64_t spilled[2];    /* timers in the store */
    uint64_t spill_budget;  /* ops->timer_budget, 0: never spill */
    uint64_t spill_writes;  /* timers ever written to the store, for tests */
    uint64_t spill_loads;   /* timers ever loaded back, for tests */

    /* rn__state_read_on_timer: the state read when an event-time timer
     * fires (UINT32_MAX: none), and how many pops the last prefetch
     * covered. */
    uint32_t pf_state;
    uint32_t pf_left;
    rn__skey_t *pf_keys;

    /* The snapshot whose handle file is being written (snapshot.c), or
     * NULL. */
    struct rn__hsnap *hsnap;

    /* A restored snapshot's registry (snapshot.c), checked against what
     * the operator registers by rn__state_ready; NULL when none. */
    struct rn__snapreg *restored;
    bool restoring; /* restored, rn__state_ready not called yet */
    char **imports; /* rescaling: old instances' snapshot directories, owned */
    int nimport;
    uint32_t kg_lo, kg_hi;

    int64_t (*clock_ms)(void); /* processing time for TTL */
    uint8_t *scratch;          /* TTL: a value with its expiry, being written */
    size_t scratchcap;
};

/* Ends every checkpoint freeze of a RocksDB state that this thread
 * began and has not ended (rocksdb_snap.c): called before a task blocks on
 * the coordinator, which may be waiting for one of them. @thread task. */
void rn__state_settle_freezes(void);
/* Spills the latest timers of domain when memory holds more than the
 * budget (state.c). */
rn_code_t rn__state_spill_maybe(rn_state_t *st, rn_time_domain_t domain, rn_error_t *err);
/* Loads the in-memory timers and the registry a snapshot saved
 * (snapshot.c), after the backend restored. */
rn_code_t rn__state_restore_handle(rn_state_t *st, const char *dir, rn_error_t *err);
/* Parses and checks the memory backend's snapshot file path ("mem") as a
 * restore does, loading nothing. @thread any. */
rn_code_t rn__state_mem_check(const char *path, rn_error_t *err);
void rn__state_restored_free(rn_state_t *st);
/* Rescaling (opts->import_dirs): remembers what to import at ready. */
rn_code_t rn__state_import_prepare(rn_state_t *st, const rn_state_options_t *opts,
                                   rn_error_t *err);

/* State TTL (Flink's StateTtlConfig with NeverReturnExpired): a value,
 * list element or map entry of a state with a TTL is stored as its expiry
 * time (8 bytes, big-endian epoch ms of processing time) followed by its
 * bytes; expired ones read as absent and are removed when met. These run
 * in place of the plain calls when h->ttl_ms > 0. */
rn_code_t rn__ttl_get(struct rn_vstate *h, const rn__skey_t *k, const void **val, size_t *len,
                      rn_error_t *err);
rn_code_t rn__ttl_put(struct rn_vstate *h, const rn__skey_t *k, const void *val, size_t len,
                      rn_error_t *err);
void *rn__ttl_ref(struct rn_vstate *h, const rn__skey_t *k, size_t size, bool *created,
                  rn_error_t *err);
rn_code_t rn__ttl_list_add(struct rn_vstate *h, const rn__skey_t *k, const void *val, size_t len,
                           rn_error_t *err);
rn_code_t rn__ttl_each(struct rn_vstate *h, const rn__skey_t *k, rn_state_each_fn fn, void *ctx,
                       rn_error_t *err);

#endif
