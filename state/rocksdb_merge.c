/*
 * state/rocksdb_merge.c: RocksDB's merge operator for merging value states
 * (rn__state_value_merge), so that an accumulator that left the write-back
 * cache is updated without reading it back.
 *
 * Why: with more state than state.memory, a window's accumulator is often
 * no longer cached when its next record comes, and a read-modify-write
 * costs a RocksDB Get per record (several microseconds, most of a run's
 * time). A merging state's values are folded by an associative merge
 * function whose identity is the all-zero value, so the cache starts a
 * missing key from zero without reading ("partial": a delta over whatever
 * RocksDB holds) and writes it out with WriteBatch Merge. RocksDB folds
 * the deltas into the stored value when the key is read or compacted, with
 * the function below; a window reads its accumulator once, when it fires.
 *
 * Operands and values of one state all have the state's size; folding is
 * oldest first (existing value, then operands in write order), so that a
 * merge function may break ties by order (last() keeps the later value).
 *
 * What the operator reads is published once and never taken back: a small
 * table of merging states (state id, size, function, a copy of its
 * context), appended by the task thread before any value of the state is
 * written and published with a release store of its length. An operand of
 * a state not in the table, or of the wrong size, fails the merge (RocksDB
 * reports Corruption): state written by another build, or bytes that are
 * not ours, are refused rather than folded wrongly. A database reopened
 * from a checkpoint must register its merging states before
 * compaction can meet their operands.
 *
 * @thread task for new/state; any (RocksDB's reads and compaction threads)
 * for the merge callbacks.
 */
#include "state/rocksdb_int.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Merging states per backend: an operator has a handful. */
#define MERGE_MAX 64

typedef struct mstate {
    uint32_t state;
    uint32_t size;
    rn_state_merge_fn merge;
    void *ctx; /* owned copy */
} mstate_t;

struct rn__rdb_merge {
    mstate_t tab[MERGE_MAX];
    _Atomic uint32_t n; /* published entries */
};

static const mstate_t *
find_state(const rn__rdb_merge_t *m, const char *key, size_t klen)
{
    if (klen < 4 || (uint8_t)key[0] >= 0x80)
        return NULL; /* not a state key (timers, metadata) */
    uint32_t state = ((uint32_t)(uint8_t)key[2] << 8) | (uint8_t)key[3];
    uint32_t n = atomic_load_explicit(&m->n, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++)
        if (m->tab[i].state == state)
            return &m->tab[i];
    return NULL;
}

/* Folds ops into a value that starts as base (NULL: the identity).
 * @returns a malloc'd value of the state's size, or NULL (*success 0). */
static char *
fold(const rn__rdb_merge_t *m, const char *key, size_t klen, const char *base, size_t blen,
     const char *const *ops, const size_t *oplens, int nops, unsigned char *success,
     size_t *newlen)
{
    const mstate_t *s = find_state(m, key, klen);
    /* RocksDB's C wrapper copies newlen bytes before it looks at success. */
    *success = 0;
    *newlen = 0;
    if (s == NULL || (base != NULL && blen != s->size))
        return NULL;
    for (int i = 0; i < nops; i++)
        if (oplens[i] != s->size)
            return NULL;
    /* malloc, not rn_malloc: RocksDB hands it back to merge_free. The
     * operands sit anywhere in RocksDB's buffers: each is copied to an
     * aligned one first, since merge functions take their values as
     * structs. */
    char *out = malloc(s->size);
    char *op = malloc(s->size);
    if (out == NULL || op == NULL) {
        free(out);
        free(op);
        return NULL;
    }
    if (base != NULL)
        memcpy(out, base, s->size);
    else
        memset(out, 0, s->size);
    for (int i = 0; i < nops; i++) {
        memcpy(op, ops[i], s->size);
        s->merge(s->ctx, out, op);
    }
    free(op);
    *success = 1;
    *newlen = s->size;
    return out;
}

static char *
full_merge(void *arg, const char *key, size_t klen, const char *existing, size_t elen,
           const char *const *ops, const size_t *oplens, int nops, unsigned char *success,
           size_t *newlen)
{
    return fold(arg, key, klen, existing, elen, ops, oplens, nops, success, newlen);
}

static char *
partial_merge(void *arg, const char *key, size_t klen, const char *const *ops,
              const size_t *oplens, int nops, unsigned char *success, size_t *newlen)
{
    return fold(arg, key, klen, NULL, 0, ops, oplens, nops, success, newlen);
}

static void
merge_free(void *arg, const char *val, size_t len)
{
    (void)arg;
    (void)len;
    free((void *)val);
}

static const char *
merge_name(void *arg)
{
    (void)arg;
    return "runnel.merge.v1";
}

/* Called when RocksDB drops the operator (options destroyed, database
 * closed): it owns the struct. */
static void
merge_destroy(void *arg)
{
    rn__rdb_merge_t *m = arg;
    uint32_t n = atomic_load_explicit(&m->n, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        rn_free(m->tab[i].ctx);
    rn_free(m);
}

rn__rdb_merge_t *
rn__rdb_merge_new(rocksdb_options_t *opts)
{
    rn__rdb_merge_t *m = rn_xcalloc(1, sizeof(*m));
    atomic_init(&m->n, 0);
    rocksdb_mergeoperator_t *op = rocksdb_mergeoperator_create(
        m, merge_destroy, full_merge, partial_merge, merge_free, merge_name);
    rocksdb_options_set_merge_operator(opts, op);
    return m;
}

static void
merge_keep(void *arg)
{
    (void)arg; /* the table belongs to the database it was made for */
}

void
rn__rdb_merge_share(rocksdb_options_t *opts, rn__rdb_merge_t *m)
{
    rocksdb_mergeoperator_t *op = rocksdb_mergeoperator_create(
        m, merge_keep, full_merge, partial_merge, merge_free, merge_name);
    rocksdb_options_set_merge_operator(opts, op);
}

rn_code_t
rn__rdb_merge_state(void *be, uint32_t state, const rn_state_merge_t *sm, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    rn__rdb_merge_t *m = rdb->merge;
    uint32_t n = atomic_load_explicit(&m->n, memory_order_relaxed);
    if (state > RN__RDB_STATE_MAX)
        return rn__errf(err, RN_EINVAL, "%s: state id %u out of range (at most %u)", rdb->owner,
                        state, RN__RDB_STATE_MAX);
    if (n == MERGE_MAX)
        return rn__errf(err, RN_EINVAL, "%s: more than %d merging states", rdb->owner,
                        MERGE_MAX);
    if (sm->size == 0 || sm->size > UINT32_MAX / 2)
        return rn__errf(err, RN_EINVAL, "%s: merging state of %zu bytes", rdb->owner, sm->size);
    mstate_t *s = &m->tab[n];
    s->ctx = rn_malloc(sm->ctxlen > 0 ? sm->ctxlen : 1);
    if (s->ctx == NULL)
        return rn__errf(err, RN_ENOMEM, "%s: out of memory for a merging state", rdb->owner);
    if (sm->ctxlen > 0)
        memcpy(s->ctx, sm->ctx, sm->ctxlen);
    s->state = state;
    s->size = (uint32_t)sm->size;
    s->merge = sm->merge;
    atomic_store_explicit(&m->n, n + 1, memory_order_release);
    return RN_OK;
}

/* Merge functions take their values as arrays of the operator's structs
 * (rn_acc_cell_t for windows: int64 and double members), which need 8-byte
 * alignment; the cache keeps values at 8 (rocksdb_cache.c's ALIGN8). */
#define VAL_ALIGN 8u
_Static_assert(_Alignof(int64_t) <= VAL_ALIGN && _Alignof(double) <= VAL_ALIGN,
               "merging values are 8-aligned");

static inline bool
aligned(const void *p)
{
    return ((uintptr_t)p & (VAL_ALIGN - 1)) == 0;
}

bool
rn__rdb_merge_fold(const rn__rdb_merge_t *m, uint32_t state, void *dst, const void *src,
                   size_t size)
{
    uint32_t n = atomic_load_explicit(&m->n, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        if (m->tab[i].state != state)
            continue;
        if (m->tab[i].size != size)
            return false;
        if (aligned(dst) && aligned(src)) {
            m->tab[i].merge(m->tab[i].ctx, dst, src);
            return true;
        }
        /* Values may sit at any byte: a frozen record's delta follows its
         * key (rocksdb_snap.c), RocksDB's buffers are bytes. Folded in
         * aligned copies: reading them in place as structs is undefined
         * (and traps on some machines). */
        _Alignas(VAL_ALIGN) char small[2][256];
        bool big = size > sizeof(small[0]);
        char *d = big ? rn_xmalloc(size) : small[0];
        char *s = big ? rn_xmalloc(size) : small[1];
        memcpy(d, dst, size);
        memcpy(s, src, size);
        m->tab[i].merge(m->tab[i].ctx, d, s);
        memcpy(dst, d, size);
        if (big) {
            rn_free(d);
            rn_free(s);
        }
        return true;
    }
    return false;
}
