/*
 * state/state.h: keyed state and timers of one operator instance.
 *
 * Design (Flink's keyed state backend): every access is scoped to the
 * current key, set by the runtime or the operator before it touches state
 * (rn__state_set_key), and to a namespace given per call (a window, or
 * nothing: nslen 0). States are registered by name when the operator opens
 * and then addressed by handle; names are what checkpoints and savepoints
 * will match state by. A backend is a vtable behind rn_state_t: the
 * in-memory backend and RocksDB (rocksdb.c), and no operator reaches around this
 * API. The key group of the current key travels with it, so that backends
 * can lay state out by key-group ranges.
 *
 * Timers belong to the same backend: (domain, time, key, namespace), at most
 * one timer per tuple, fired in time order. Event-time timers fire when the
 * watermark passes them; processing-time timers when the clock does.
 *
 * Borrowed bytes returned by get/ref/iterate stay valid until the next call
 * on the same rn_state_t (any state of it) or the end of the current
 * process/on_timer call, whichever comes first.
 *
 * @thread task: an rn_state_t and its handles are used by one task only.
 */
#ifndef RN_STATE_STATE_H
#define RN_STATE_STATE_H

#include "stream/core.h"

typedef struct rn_state rn_state_t;
typedef struct rn_vstate rn_vstate_t; /* value state: one value per (key, ns) */
typedef struct rn_lstate rn_lstate_t; /* list state: values appended per (key, ns) */
typedef struct rn_mstate rn_mstate_t; /* map state: user key -> value per (key, ns) */

#define RN_STATE_NS_MAX 64 /* longest namespace, bytes */

typedef enum rn_time_domain {
    RN_TIME_EVENT = 0,
    RN_TIME_PROCESSING = 1,
} rn_time_domain_t;

typedef struct rn_timer {
    int64_t time;
    rn_time_domain_t domain;
    uint32_t nslen;
    uint8_t ns[RN_STATE_NS_MAX];
} rn_timer_t;

typedef struct rn_state_options {
    const char *backend;   /* "memory" or "rocksdb" */
    const char *dir;       /* backend files, when it has any; borrowed for the call */
    int64_t memory_bytes;  /* bound on what the backend keeps in memory; 0: default */
    const char *owner;     /* "component#instance", for messages; borrowed for the call */
    /* Processing time for state TTL; NULL: the wall clock. Also called from
     * RocksDB's compaction threads (rocksdb_ttl.c): must be thread-safe. */
    int64_t (*clock_ms)(void);
    /* A snapshot directory (rn__state_snapshot) to restore from; NULL:
     * start empty. Borrowed for the call. */
    const char *restore_dir;
    /* Rescaling from a savepoint: snapshot directories of old instances
     * whose entries and timers of key groups [kg_first, kg_last] this
     * state takes, imported by rn__state_ready (once the operator has
     * registered its states). Borrowed for the call. */
    const char *const *import_dirs;
    int nimport;
    uint32_t kg_first, kg_last;
    /* RocksDB: a checkpoint's frozen values of at least this many bytes go
     * in as an SST file of their own (ingested), smaller ones through the
     * memtable; 0: the default (RN__RDB_INGEST_MIN). Tests set 1 to take
     * the ingest path with little state. */
    uint64_t ingest_min_bytes;
} rn_state_options_t;

/* @returns a backend for one operator instance (free with
 * rn__state_destroy()), or NULL with err set (unknown backend, ...). */
rn_state_t *rn__state_new(const rn_state_options_t *opts, rn_error_t *err);
void rn__state_destroy(rn_state_t *st);

/* Sets the current key. @param key copied by the backend. */
void rn__state_set_key(rn_state_t *st, const void *key, size_t len, uint32_t key_group);
/* rn__state_set_key for a caller that already has hash = XXH3_64bits(key,
 * len) (rn__key_hash()): saves hashing the key twice per record. */
void rn__state_set_key_hashed(rn_state_t *st, const void *key, size_t len, uint32_t key_group,
                              uint64_t hash);
/* @returns the current key (borrowed until the next set_key) and its length. */
const void *rn__state_key(const rn_state_t *st, size_t *len);
uint32_t rn__state_key_group(const rn_state_t *st);

/* Registering a state twice under one name returns the same handle; under
 * one name with another kind is RN_EINVAL. Handles are owned by st. */
rn_vstate_t *rn__state_value(rn_state_t *st, const char *name, rn_error_t *err);
rn_lstate_t *rn__state_list(rn_state_t *st, const char *name, rn_error_t *err);
rn_mstate_t *rn__state_map(rn_state_t *st, const char *name, rn_error_t *err);

/* State time-to-live (Flink's StateTtlConfig): an entry not written for
 * ttl_ms of processing time is expired and never returned again (reads
 * answer RN_ENOTFOUND, ref starts afresh, iteration skips it). Writes
 * (put, ref, list add) restart the clock; with refresh_on_read, reads do
 * too. One name has one TTL setting: registering it with another is
 * RN_EINVAL. */
typedef struct rn_state_ttl {
    int64_t ttl_ms;       /* > 0 */
    bool refresh_on_read; /* Flink's OnReadAndWrite; else OnCreateAndWrite */
} rn_state_ttl_t;

rn_vstate_t *rn__state_value_ttl(rn_state_t *st, const char *name, const rn_state_ttl_t *ttl,
                                 rn_error_t *err);
rn_lstate_t *rn__state_list_ttl(rn_state_t *st, const char *name, const rn_state_ttl_t *ttl,
                                rn_error_t *err);
rn_mstate_t *rn__state_map_ttl(rn_state_t *st, const char *name, const rn_state_ttl_t *ttl,
                               rn_error_t *err);

/* A merging value state (Flink's AggregatingState): every value has size
 * bytes, and merge folds one value into another. merge must be
 * associative, have the all-zero value as identity (folding zero changes
 * nothing) and be callable from any thread (RocksDB folds on its
 * compaction threads); it may break ties by order: dst is always the
 * older. dst and src are 8-byte aligned. Such a state can be updated
 * without reading it
 * (rn__vstate_ref_part); every other call sees whole values. */
typedef void (*rn_state_merge_fn)(const void *ctx, void *dst, const void *src);
typedef struct rn_state_merge {
    size_t size;
    rn_state_merge_fn merge;
    const void *ctx; /* passed to merge; ctxlen bytes, copied */
    size_t ctxlen;
} rn_state_merge_t;

/* Registers a merging value state (no TTL). Registering one name twice
 * returns the same handle; as a merging and a plain state, RN_EINVAL. */
rn_vstate_t *rn__state_value_merge(rn_state_t *st, const char *name, const rn_state_merge_t *m,
                                   rn_error_t *err);

/* A merging state's size and merge function (its ctx is NULL here: only
 * states registered without a ctx can be folded from outside, as the
 * plugin API does); NULL for other states. */
const rn_state_merge_t *rn__vstate_merge_of(const rn_vstate_t *vs);

/* Value state. get: RN_ENOTFOUND when absent (msg left empty). */
rn_code_t rn__vstate_get(rn_vstate_t *vs, const void *ns, size_t nslen, const void **val,
                         size_t *len, rn_error_t *err);
/* @param val copied. */
rn_code_t rn__vstate_put(rn_vstate_t *vs, const void *ns, size_t nslen, const void *val,
                         size_t len, rn_error_t *err);
/* The value in place, for hot accumulators: a pointer to size writable
 * bytes, zero-filled and *created = true when the value did not exist.
 * Writing through it updates the state (backends with caches mark it
 * dirty). An existing value of another size is RN_EINVAL.
 * @returns NULL with err set on failure. */
void *rn__vstate_ref(rn_vstate_t *vs, const void *ns, size_t nslen, size_t size, bool *created,
                     rn_error_t *err);
/* A merging state's value to update in place, possibly partial: a
 * backend that would have to read it (RocksDB, when it is not cached)
 * hands out a zeroed delta instead, which it folds into the stored value
 * later with the state's merge function. Only updates by folding (as
 * merge does) may be written through it: its bytes are not the value.
 * *fresh is true when the backend did not hold the value in memory: the
 * value is new, or may be (a caller that registers a timer for a new
 * value registers it again then; registering is idempotent). On a plain
 * value state, or a backend without partial values, it is
 * rn__vstate_ref with *fresh = *created. @returns NULL with err set on
 * failure. */
void *rn__vstate_ref_part(rn_vstate_t *vs, const void *ns, size_t nslen, size_t size,
                          bool *fresh, rn_error_t *err);
rn_code_t rn__vstate_clear(rn_vstate_t *vs, const void *ns, size_t nslen, rn_error_t *err);
/* A hint that the value of vs for the key of hash keyhash (rn__key_hash)
 * and ns is about to be used: a backend may start loading its memory, so
 * that an operator looking a few records ahead in a batch hides the cache
 * misses of a large table. Does nothing else. */
void rn__vstate_prefetch(rn_vstate_t *vs, uint64_t keyhash, const void *ns, size_t nslen);
/* Whether rn__vstate_prefetch can pay for itself now: the backend's
 * tables are past what CPU caches hold (at a thousand keys, computing
 * the hints cost a fifth of a window job and saved nothing). */
bool rn__state_prefetch_pays(rn_state_t *st);
/* get, copy and clear in one lookup (a window firing its accumulator for
 * the last time): copies at most size bytes of the value into buf, sets
 * *len to its full length and removes it. RN_ENOTFOUND when absent (msg
 * left empty, buf untouched). @param buf owned by the caller. */
rn_code_t rn__vstate_take(rn_vstate_t *vs, const void *ns, size_t nslen, void *buf, size_t size,
                          size_t *len, rn_error_t *err);

/* List state. @param val copied. */
rn_code_t rn__lstate_add(rn_lstate_t *ls, const void *ns, size_t nslen, const void *val,
                         size_t len, rn_error_t *err);
typedef rn_code_t (*rn_state_each_fn)(void *ctx, const void *k, size_t klen, const void *v,
                                      size_t vlen);
/* Calls fn for each element in insertion order (k NULL); stops at the first
 * non-OK return of fn and returns it. */
rn_code_t rn__lstate_each(rn_lstate_t *ls, const void *ns, size_t nslen, rn_state_each_fn fn,
                          void *ctx, rn_error_t *err);
rn_code_t rn__lstate_clear(rn_lstate_t *ls, const void *ns, size_t nslen, rn_error_t *err);

/* Map state. */
rn_code_t rn__mstate_put(rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey,
                         size_t uklen, const void *val, size_t vlen, rn_error_t *err);
rn_code_t rn__mstate_get(rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey,
                         size_t uklen, const void **val, size_t *vlen, rn_error_t *err);
rn_code_t rn__mstate_remove(rn_mstate_t *ms, const void *ns, size_t nslen, const void *ukey,
                            size_t uklen, rn_error_t *err);
/* Calls fn for each entry of (current key, ns) in user-key byte order. */
rn_code_t rn__mstate_each(rn_mstate_t *ms, const void *ns, size_t nslen, rn_state_each_fn fn,
                          void *ctx, rn_error_t *err);
rn_code_t rn__mstate_clear(rn_mstate_t *ms, const void *ns, size_t nslen, rn_error_t *err);

/* Timers of the current key. Registering an existing timer is a no-op. */
rn_code_t rn__timer_register(rn_state_t *st, rn_time_domain_t domain, int64_t time,
                             const void *ns, size_t nslen, rn_error_t *err);
rn_code_t rn__timer_delete(rn_state_t *st, rn_time_domain_t domain, int64_t time,
                           const void *ns, size_t nslen, rn_error_t *err);
/* Removes the earliest timer of domain with time <= upto, makes its key the
 * current key and fills *t. Ties are broken by key group, key and
 * namespace bytes, so the order is deterministic; but a time whose timers
 * outgrew the backend's memory (RocksDB spills them) pops the part still
 * in memory first, in that order, then the spilled part, in key group
 * order (as Flink, which promises nothing within a time).
 * @returns RN_OK, or RN_ENOTFOUND when there is none. */
rn_code_t rn__timer_pop(rn_state_t *st, rn_time_domain_t domain, int64_t upto, rn_timer_t *t,
                        rn_error_t *err);
/* Tells the backend that each event-time timer, when it fires, reads the
 * value of vs at the timer's key and namespace (a window's accumulator),
 * so that it can read those values ahead, a batch at a time, in key
 * order (RocksDB: one MultiGet rather than a Get per timer). A hint: any
 * state may be read on a timer. One state per handle; the last call
 * wins. */
void rn__state_read_on_timer(rn_vstate_t *vs);

/* @returns the earliest timer time of domain, or INT64_MAX. */
int64_t rn__timer_next(rn_state_t *st, rn_time_domain_t domain);

/* Counters for tests and metrics. */
typedef struct rn_state_stats {
    uint64_t entries; /* live (key, ns[, user key]) entries over all states */
    uint64_t timers;
    uint64_t bytes;   /* approximate memory held */
    uint64_t reads;   /* values read from the store one at a time (RocksDB) */
} rn_state_stats_t;
void rn__state_stats(rn_state_t *st, rn_state_stats_t *stats);

/* ---- checkpoints (snapshot.c) ---- */

/* The directory under which backends make their run directories (state.dir,
 * or a per-user one under $TMPDIR): out holds size bytes. */
void rn__state_base_dir(const rn_state_options_t *opts, char *out, size_t size);

/* What a snapshot leaves to be done off the task's thread: fn(ctx, keep)
 * finishes it (RocksDB: writes the values frozen at the snapshot, then,
 * with keep, makes the RocksDB checkpoint in the snapshot directory).
 * Called exactly once, from any thread; until then the state's accesses
 * to its files wait. fn NULL: nothing to finish. On another thread than
 * the task's, fn waits for the task's part (rn__state_tick): the task
 * must go on stepping, or settle the state, until fn returns. */
typedef struct rn_state_finish {
    rn_code_t (*fn)(void *ctx, bool keep, rn_error_t *err);
    void *ctx;
} rn_state_finish_t;

/* The synchronous part of a checkpoint: writes into dir (created 0700;
 * must not exist) what restores this state as it is now: the backend's
 * files (a RocksDB checkpoint of hard links, or the memory table), the
 * in-memory timers and the registry of states. A backend that cannot be
 * snapshot gives RN_EINVAL. fin NULL: finished before returning; else
 * *fin is what the caller must run (see rn_state_finish_t). */
rn_code_t rn__state_snapshot(rn_state_t *st, const char *dir, rn_state_finish_t *fin,
                             rn_error_t *err);
/* The task's part of a snapshot that it does between its batches
 * (RocksDB: copying out the values that changed before the barrier), a
 * slice of it, or with all everything left (a task that stops stepping
 * settles its states so). @returns whether there was anything to do.
 * @thread the state's task, or any once that task stopped for good. */
bool rn__state_tick(rn_state_t *st, bool all);

/* Parses and checks one file of a snapshot, read-only, with the code a
 * restore reads it with: path is where it is, as its name in the snapshot
 * directory ("handle": the registry and in-memory timers, "handle:memory"
 * the same of a state whose backend keeps every timer in memory; "mem": the
 * memory backend's table; others, RocksDB's files, are left to the
 * checksums of the checkpoint store and of RocksDB). For `runnel
 * checkpoints --verify`, so that a snapshot it passes restores.
 * @returns RN_OK, or RN_ECORRUPT / RN_EIO with err naming the file, the
 * offset and what is wrong. @thread any. */
rn_code_t rn__state_check_file(const char *path, const char *as, rn_error_t *err);

/* After a restore (opts.restore_dir), once the operator registered its
 * states: checks that every state of the snapshot was registered again
 * under the same name and kind, and lets the backend compact again.
 * Without a restore, does nothing. */
rn_code_t rn__state_ready(rn_state_t *st, rn_error_t *err);

#endif
