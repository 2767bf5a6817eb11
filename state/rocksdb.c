/*
 * state/rocksdb.c: the RocksDB state backend ("rocksdb"): one RocksDB per
 * operator instance, in a directory of its own for this run.
 *
 * What lives where: values and list heads go through the write-back cache
 * (rocksdb_cache.c), which hands out hot accumulators in place and writes
 * RocksDB in sorted batches on eviction and flush; merging states' deltas
 * are folded by RocksDB's merge operator (rocksdb_merge.c). List elements
 * and map entries go straight to RocksDB (rocksdb_coll.c); spilled timers
 * have keys of their own (rocksdb_timers.c); TTL entries are dropped in
 * compaction (rocksdb_ttl.c). This file: the database, its options and
 * directories, and the calls into RocksDB. The key layout is in
 * rocksdb_int.h and docs/state.md.
 *
 * Durability is the checkpoint's job, not RocksDB's: no WAL, and every run
 * opens a fresh directory <dir>/<owner>-<pid>-<random> (0700), removed on
 * close. A killed process leaves its directory behind; nothing ever
 * reopens it as state (a later run makes its own), and the next open by
 * the same owner removes directories whose pid is no longer alive.
 *
 * Memory: opts->memory_bytes (64 MB when 0) is split between the write-back
 * cache and the in-memory timers (9/16, one pool), the block cache (3/16)
 * and the memtables (1/4: two write buffers of 1/8), so that the bound
 * holds for the cache and RocksDB together (index and filter blocks aside:
 * docs/state.md, options). Compaction (universal) runs on at most two
 * background jobs at lowered CPU priority, so that it cannot starve the
 * task thread.
 *
 * This is the one file that sees RocksDB's error strings: they become
 * rn_error_t (RN_EIO) here and are freed with rocksdb_free().
 *
 * @thread task (RocksDB's own background threads aside).
 */
#include "state/rocksdb_int.h"
#include "stream/fs.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MEMORY (64LL << 20)
#define MIN_PART (256LL << 10)

/* ---- errors and small helpers ---- */

/* Converts a RocksDB error string (consumed) into err. */
static rn_code_t
rdb_err(rn_error_t *err, char *rerr, const char *what, const char *path)
{
    rn_code_t rc = rn__errf(err, RN_EIO, "rocksdb %s (%s): %s", what, path, rerr);
    rocksdb_free(rerr);
    return rc;
}

uint8_t *
rn__rdb_kbuf(rn__rdb_t *rdb, size_t need)
{
    if (need > rdb->kcap) {
        size_t cap = rdb->kcap ? rdb->kcap : 256;
        while (cap < need)
            cap *= 2;
        rdb->kbuf = rn_xrealloc(rdb->kbuf, cap);
        rdb->kcap = cap;
    }
    return rdb->kbuf;
}

/* The lookup itself; the caller has passed the fence its way. */
static rn_code_t
get_past_fence(rn__rdb_t *rdb, const uint8_t *key, size_t klen, char **val, size_t *len,
               rn_error_t *err)
{
    char *rerr = NULL;
    *val = NULL;
    rn_code_t rc = rn__rdb_check(rdb, err);
    if (rc != RN_OK)
        return rc;
    *val = rocksdb_get(rdb->db, rdb->ropts, (const char *)key, klen, len, &rerr);
    if (rerr != NULL)
        return rdb_err(err, rerr, "get", rdb->path);
    return *val != NULL ? RN_OK : RN_ENOTFOUND;
}

rn_code_t
rn__rdb_get(rn__rdb_t *rdb, const uint8_t *key, size_t klen, char **val, size_t *len,
            rn_error_t *err)
{
    rn__rdb_fence(rdb);
    return get_past_fence(rdb, key, klen, val, len, err);
}

/* A frozen key before the checkpoint's writes began: its record over
 * RocksDB's value, as the writes will leave it. @returns false when it
 * cannot tell (the writes began meanwhile: RocksDB's value may have them
 * already), *rc the answer otherwise. */
static bool
get_frozen(rn__rdb_t *rdb, uint64_t h, uint32_t state, const uint8_t *key, size_t klen,
           char **val, size_t *len, rn_code_t *rc, rn_error_t *err)
{
    if (atomic_load(&rdb->fz_state) != 0)
        return false;
    const uint8_t *r = rn__rdb_frozen_find(rdb, h, key, klen);
    if (r == NULL)
        return false;
    uint32_t vlen;
    memcpy(&vlen, r + 5, 4);
    const uint8_t *v = r + 9 + klen;
    if (r[0] == RN__FZ_DEL) {
        *rc = RN_ENOTFOUND;
        return true;
    }
    if (r[0] == RN__FZ_PUT) { /* RocksDB's value does not matter */
        /* malloc: the caller frees with rocksdb_free, which is free. */
        *val = malloc(vlen ? vlen : 1);
        if (*val == NULL) {
            *rc = rn__errf(err, RN_ENOMEM, "out of memory reading a frozen value");
            return true;
        }
        memcpy(*val, v, vlen);
        *len = vlen;
        *rc = RN_OK;
        return true;
    }
    /* A merging state's delta: RocksDB's value read before the writes
     * began (the ingest or write that follows the store of 1 is atomic to
     * a reader, and a read that saw it would see 1 after), then the
     * delta folded into it, as the merge operator will. */
    rn_code_t grc = get_past_fence(rdb, key, klen, val, len, err);
    if (atomic_load(&rdb->fz_state) != 0) {
        if (grc == RN_OK)
            rocksdb_free(*val);
        *val = NULL;
        return false;
    }
    if (grc == RN_ENOTFOUND) {
        *val = malloc(vlen ? vlen : 1);
        if (*val == NULL) {
            *rc = rn__errf(err, RN_ENOMEM, "out of memory reading a frozen value");
            return true;
        }
        memcpy(*val, v, vlen);
        *len = vlen;
        *rc = RN_OK;
        return true;
    }
    if (grc == RN_OK && (*len != vlen || !rn__rdb_merge_fold(rdb->merge, state, *val, v, vlen))) {
        rocksdb_free(*val);
        *val = NULL;
        grc = rn__errf(err, RN_ECORRUPT, "state id %u: stored value of %zu bytes, a delta of %u",
                       state, *len, vlen);
    }
    *rc = grc;
    return true;
}

rn_code_t
rn__rdb_get_cached(rn__rdb_t *rdb, uint64_t h, uint32_t state, const uint8_t *key, size_t klen,
                   char **val, size_t *len, rn_error_t *err)
{
    if (RN_UNLIKELY(rn__rdb_fence_busy(rdb)) && rn__rdb_frozen_has(rdb, h)) {
        rn_code_t rc;
        if (get_frozen(rdb, h, state, key, klen, val, len, &rc, err))
            return rc;
        rn__rdb_fence_wait(rdb);
    }
    return get_past_fence(rdb, key, klen, val, len, err);
}

rn_code_t
rn__rdb_multi_get(rn__rdb_t *rdb, size_t n, const char *const *keys, const size_t *lens,
                  rocksdb_pinnableslice_t **vals, char **errs, rn_error_t *err)
{
    /* No fence: the caller asks for keys not among the frozen ones
     * (rn__rc_prefetch). */
    if (rn__rdb_check(rdb, err) != RN_OK) {
        for (size_t i = 0; i < n; i++)
            vals[i] = NULL;
        return err != NULL ? err->code : RN_EIO;
    }
    rocksdb_batched_multi_get_cf(rdb->db, rdb->ropts, rdb->cf, n, keys, lens, vals, errs, true);
    rn_code_t rc = RN_OK;
    for (size_t i = 0; i < n; i++) {
        if (errs[i] == NULL)
            continue;
        if (rc == RN_OK)
            rc = rn__errf(err, RN_EIO, "rocksdb multiget (%s): %s", rdb->path, errs[i]);
        rocksdb_free(errs[i]);
        if (vals[i] != NULL)
            rocksdb_pinnableslice_destroy(vals[i]);
    }
    if (rc != RN_OK) {
        for (size_t i = 0; i < n; i++) {
            if (errs[i] == NULL && vals[i] != NULL)
                rocksdb_pinnableslice_destroy(vals[i]);
            vals[i] = NULL;
        }
    }
    return rc;
}

rn_code_t
rn__rdb_scan_keys(rn__rdb_t *rdb, bool (*fn)(void *ctx, const uint8_t *key, size_t len),
                  void *ctx, rn_error_t *err)
{
    return rn__rdb_scan_from(rdb, NULL, 0, fn, ctx, err);
}

rn_code_t
rn__rdb_scan_from(rn__rdb_t *rdb, const uint8_t *from, size_t fromlen,
                  bool (*fn)(void *ctx, const uint8_t *key, size_t len), void *ctx,
                  rn_error_t *err)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    /* A one-off pass (the filter's rebuild, or timers read once and
     * deleted): keep it out of the block cache. */
    rocksdb_readoptions_set_fill_cache(ro, 0);
    /* Timers (from a timer key on) are frozen only as the timer writes a
     * checkpoint took over, which their loads take from the task's copy
     * or wait for themselves (rn__rdb_timer_load). Anything else may meet
     * frozen keys. */
    if (from == NULL || fromlen == 0 || from[0] < RN__RDB_TIMER_TAG)
        rn__rdb_fence(rdb);
    rn_code_t rc = rn__rdb_check(rdb, err);
    if (rc != RN_OK) {
        rocksdb_readoptions_destroy(ro);
        return rc;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator(rdb->db, ro);
    if (from != NULL)
        rocksdb_iter_seek(it, (const char *)from, fromlen);
    else
        rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *key = rocksdb_iter_key(it, &klen);
        if (!fn(ctx, (const uint8_t *)key, klen))
            break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (rerr != NULL)
        return rdb_err(err, rerr, "scan", rdb->path);
    return RN_OK;
}

rn_code_t
rn__rdb_write(rn__rdb_t *rdb, rn_error_t *err)
{
    return rn__rdb_write_batch(rdb, rdb->wb, err);
}

rn_code_t
rn__rdb_write_batch(rn__rdb_t *rdb, rocksdb_writebatch_t *wb, rn_error_t *err)
{
    char *rerr = NULL;
    rn__rdb_fence(rdb);
    rn_code_t rc = rn__rdb_check(rdb, err);
    if (rc != RN_OK) {
        rocksdb_writebatch_clear(wb);
        return rc;
    }
    rocksdb_write(rdb->db, rdb->wopts, wb, &rerr);
    rocksdb_writebatch_clear(wb);
    if (rerr != NULL)
        return rdb_err(err, rerr, "write", rdb->path);
    return RN_OK;
}

/* ---- directories ---- */

/* The owner as a file name: [A-Za-z0-9._#] kept, anything else '_'. */
static void
owner_file_name(const char *owner, char *out, size_t size)
{
    size_t i = 0;
    for (; owner[i] != '\0' && i + 1 < size; i++) {
        char ch = owner[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '#';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

/* @returns the pid of a run directory name "<owner>-<pid>-<hex>" of this
 * owner, or -1 when name is not one. */
static long
run_dir_pid(const char *name, const char *owner)
{
    size_t n = strlen(owner);
    if (strncmp(name, owner, n) != 0 || name[n] != '-')
        return -1;
    const char *p = name + n + 1;
    long pid = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9' && pid < 100000000)
        pid = pid * 10 + (*p++ - '0');
    if (*p++ != '-' || *p == '\0')
        return -1;
    for (; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return -1;
    return pid;
}

/* Removes the run directories of owner under base whose process is gone:
 * what a killed run left. Directories of live processes stay, this
 * process's included (another instance may be using them). */
static void
remove_stale(const char *base, const char *owner, const char *ctx)
{
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid = run_dir_pid(de->d_name, owner);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
        if (rn__fs_rm_tree(path) == 0)
            RN_LOG_INFO(ctx, "removed state directory %s left by dead process %ld", path, pid);
        else
            RN_LOG_WARN(ctx, "cannot remove stale state directory %s: %s", path,
                        strerror(errno));
    }
    closedir(d);
}

/* Makes <base>/<owner>-<pid>-<random>, 0700, that did not exist. */
static char *
make_run_dir(const char *base, const char *owner, rn_error_t *err)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        uint32_t r;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (uint32_t)rn__mono_ns() ^ ((uint32_t)attempt << 24);
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s-%ld-%08x", base, owner, (long)getpid(), r);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            rn__errf(err, RN_EINVAL, "state directory under '%s': path too long", base);
            return NULL;
        }
        if (mkdir(path, 0700) == 0)
            return rn_xstrdup(path);
        if (errno != EEXIST) {
            rn__errf(err, RN_EIO, "state directory '%s': mkdir: %s", path, strerror(errno));
            return NULL;
        }
    }
    rn__errf(err, RN_EIO, "state directory under '%s': no unused name", base);
    return NULL;
}

void
rn__state_base_dir(const rn_state_options_t *opts, char *out, size_t size)
{
    if (opts->dir != NULL && opts->dir[0] != '\0') {
        snprintf(out, size, "%s", opts->dir);
    } else {
        /* Per user, so that users of one machine do not share a directory. */
        const char *tmp = getenv("TMPDIR");
        snprintf(out, size, "%s/runnel-%ld/state", tmp != NULL && tmp[0] ? tmp : "/tmp",
                 (long)getuid());
    }
}

/* ---- open and close ---- */

static void
rdb_free(rn__rdb_t *rdb)
{
    if (rdb == NULL)
        return;
    /* A snapshot's finish runs on the coordinator, which ends first. */
    rn__rdb_fence(rdb);
    rn__rdb_freeze_forget(rdb);
    rn__rdb_frozen_free(&rdb->fz);
    rn_free(rdb->fz_old);
    pthread_mutex_destroy(&rdb->fence_lock);
    pthread_cond_destroy(&rdb->fence_cond);
    if (rdb->db != NULL) {
        RN_LOG_DEBUG(rdb->owner,
                     "state cache: %llu hits, %llu misses (%llu answered by the filter), "
                     "%llu single reads, %llu evicted, %llu written; filter rebuilt %llu "
                     "times; waited for checkpoints %llu times, %.1f ms",
                     (unsigned long long)rdb->cache.hits, (unsigned long long)rdb->cache.misses,
                     (unsigned long long)rdb->cache.skipped, (unsigned long long)rdb->cache.reads,
                     (unsigned long long)rdb->cache.evicted,
                     (unsigned long long)rdb->cache.written,
                     (unsigned long long)rdb->cache.filter.grown,
                     (unsigned long long)rdb->fence_waits, (double)rdb->fence_wait_ns / 1e6);
        /* Background compactions of a database that is going away are
         * wasted work: stop them rather than wait. */
        rocksdb_cancel_all_background_work(rdb->db, 1);
        if (rdb->cf != NULL)
            rocksdb_column_family_handle_destroy(rdb->cf);
        rocksdb_close(rdb->db);
    }
    rn__rc_fini(&rdb->cache);
    if (rdb->wb != NULL)
        rocksdb_writebatch_destroy(rdb->wb);
    rn__rdb_timer_fini(rdb);
    if (rdb->wopts != NULL)
        rocksdb_writeoptions_destroy(rdb->wopts);
    if (rdb->ropts != NULL)
        rocksdb_readoptions_destroy(rdb->ropts);
    if (rdb->opts != NULL)
        rocksdb_options_destroy(rdb->opts);
    rn__rdb_ttl_destroy(rdb->ttl);
    if (rdb->bbto != NULL)
        rocksdb_block_based_options_destroy(rdb->bbto);
    if (rdb->bcache != NULL)
        rocksdb_cache_destroy(rdb->bcache);
    if (rdb->env != NULL)
        rocksdb_env_destroy(rdb->env);
    if (rdb->remove_on_close && rdb->path != NULL && rn__fs_rm_tree(rdb->path) != 0)
        RN_LOG_WARN(rdb->owner, "cannot remove state directory %s: %s", rdb->path,
                    strerror(errno));
    rocksdb_free(rdb->lastval);
    rn_free(rdb->kbuf);
    rn_free(rdb->path);
    rn_free(rdb->owner);
    rn_free(rdb);
}

/* A backend with its options set from opts, not yet opened. */
static rn__rdb_t *
rdb_new(const rn_state_options_t *opts, rn_error_t *err)
{
    rn__rdb_t *rdb = rn_calloc(1, sizeof(*rdb));
    if (rdb == NULL) {
        rn__errf(err, RN_ENOMEM, "out of memory for the rocksdb state backend");
        return NULL;
    }
    rdb->owner = rn_xstrdup(opts->owner != NULL ? opts->owner : "state");
    pthread_mutex_init(&rdb->fence_lock, NULL);
    pthread_cond_init(&rdb->fence_cond, NULL);
    atomic_init(&rdb->fence_busy, false);
    atomic_init(&rdb->fz_state, 0);
    atomic_init(&rdb->broken, false);
    rdb->tgmin[0] = rdb->tgmin[1] = SIZE_MAX;
    rdb->ingest_min = opts->ingest_min_bytes > 0 ? opts->ingest_min_bytes : RN__RDB_INGEST_MIN;
    long long mem = opts->memory_bytes > 0 ? opts->memory_bytes : DEFAULT_MEMORY;
    long long part = mem / 4 > MIN_PART ? mem / 4 : MIN_PART;
    /* The write-back cache and the in-memory timers share 9/16 of the
     * bound: half of it plus a sixteenth taken from the block cache's
     * quarter. The timers of both domains together may take half of that
     * pool before their latest times spill; the cache gives way to them
     * (total() in rocksdb_cache.c), so that a window job's timers, about
     * as large as its accumulators, stay in memory as long as the
     * accumulators do (docs/state.md, options). */
    long long pool = mem / 2 + mem / 16 > MIN_PART ? mem / 2 + mem / 16 : MIN_PART;
    /* From the bound itself, not the pool's floor, so that a tiny bound
     * (tests) spills. */
    long long tl = (mem / 2 + mem / 16) / 2;
    rdb->tlimit = (uint64_t)(tl > 4096 ? tl : 4096);
    long long bpart = part - mem / 16 > MIN_PART ? part - mem / 16 : MIN_PART;
    if (rn__rc_init(&rdb->cache, (uint64_t)pool, err) != RN_OK) {
        rdb_free(rdb);
        return NULL;
    }

    rdb->bcache = rocksdb_cache_create_lru((size_t)bpart);
    rdb->bbto = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(rdb->bbto, rdb->bcache);
    rocksdb_block_based_options_set_filter_policy(rdb->bbto,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    /* Index and filter blocks are partitioned and charged to the block
     * cache, so that they count in the bound: left in the table readers
     * they cost about 2 bytes per key outside it (150 MB at 20M windows
     * under a 32 MB bound). Whole-file filters charged to the cache were
     * evicted and re-read on nearly every miss (40% of a miss-heavy run);
     * partitions are loaded one at a time. The top-level index and the
     * flushed (L0) files' partitions stay pinned: without the L0 pinning,
     * 1M keys at 256 MB ran 15% slower (1.43 M events/s against 1.68 M). */
    rocksdb_block_based_options_set_index_type(
        rdb->bbto, rocksdb_block_based_table_index_type_two_level_index_search);
    rocksdb_block_based_options_set_partition_filters(rdb->bbto, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(rdb->bbto, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(rdb->bbto, 1);
    rocksdb_block_based_options_set_pin_top_level_index_and_filter(rdb->bbto, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(rdb->bbto, 1);

    rdb->opts = rocksdb_options_create();
    rdb->ttl = rn__rdb_ttl_new(rdb->opts, opts->clock_ms);
    rdb->merge = rn__rdb_merge_new(rdb->opts);
    rocksdb_options_set_block_based_table_factory(rdb->opts, rdb->bbto);
    rocksdb_options_set_create_if_missing(rdb->opts, 1);
    rocksdb_options_set_compression(rdb->opts, rocksdb_lz4_compression);
    rocksdb_options_set_write_buffer_size(rdb->opts, (size_t)(part / 2));
    rocksdb_options_set_max_write_buffer_number(rdb->opts, 2);
    /* A memtable bloom filter: a new window's first touch looks up a key
     * that does not exist yet, and this answers from memory. */
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(rdb->opts, 0.1);
    rocksdb_options_set_memtable_whole_key_filtering(rdb->opts, 1);
    rocksdb_options_set_max_background_jobs(rdb->opts, 2);
    /* Fatal messages only in RocksDB's LOG file: a write to it that
     * failed once (a full disk) makes the next one abort the process in
     * builds with assertions (Debian's: WritableFileWriter's "sync without
     * flush" check), and the file goes with the run directory anyway.
     * Every error that matters comes back through the calls' status. */
    rocksdb_options_set_info_log_level(rdb->opts, 4 /* FATAL */);
    rocksdb_options_set_keep_log_file_num(rdb->opts, 1);
    /* Universal (size-tiered) compaction: window state is written all
     * over the key space (every key group's windows) and deleted when the
     * windows fire, so leveled compaction rewrote the whole of level 1 for
     * each few MB of small memtables; measured on 2M windows under 16 MB
     * (tests/integration/test_state_big.sh): 108 s leveled, 48 s universal,
     * 43 s with up to 8 sorted runs before a compaction (more runs cost
     * reads a Bloom filter probe each) and write stalls later. */
    rocksdb_options_set_compaction_style(rdb->opts, rocksdb_universal_compaction);
    rocksdb_options_set_level0_file_num_compaction_trigger(rdb->opts, 8);
    rocksdb_options_set_level0_slowdown_writes_trigger(rdb->opts, 40);
    rocksdb_options_set_level0_stop_writes_trigger(rdb->opts, 64);
    rdb->env = rocksdb_create_default_env();
    rocksdb_env_lower_thread_pool_cpu_priority(rdb->env);
    rocksdb_options_set_env(rdb->opts, rdb->env);

    rdb->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(rdb->wopts, 1);
    rdb->ropts = rocksdb_readoptions_create();
    rdb->wb = rocksdb_writebatch_create();
    return rdb;
}

static rn_code_t
write_format(rn__rdb_t *rdb, rn_error_t *err)
{
    uint8_t v[RN__RDB_META_LEN];
    memcpy(v, RN__RDB_META_MAGIC, 4);
    for (int i = 0; i < 4; i++)
        v[4 + i] = (uint8_t)(RN__RDB_FORMAT_VERSION >> (24 - 8 * i));
    rocksdb_writebatch_put(rdb->wb, RN__RDB_META_KEY, RN__RDB_META_KEYLEN, (const char *)v,
                           sizeof(v));
    return rn__rdb_write(rdb, err);
}

static rn_code_t
check_format(rn__rdb_t *rdb, rn_error_t *err)
{
    char *v = NULL;
    size_t len = 0;
    rn_code_t rc =
        rn__rdb_get(rdb, (const uint8_t *)RN__RDB_META_KEY, RN__RDB_META_KEYLEN, &v, &len, err);
    if (rc == RN_ENOTFOUND)
        return rn__errf(err, RN_ECORRUPT, "state in %s: no format marker (not runnel state?)",
                        rdb->path);
    if (rc != RN_OK)
        return rc;
    uint32_t ver = 0;
    bool magic = len == RN__RDB_META_LEN && memcmp(v, RN__RDB_META_MAGIC, 4) == 0;
    if (magic)
        for (int i = 0; i < 4; i++)
            ver = (ver << 8) | (uint8_t)v[4 + i];
    rocksdb_free(v);
    if (!magic)
        return rn__errf(err, RN_ECORRUPT, "state in %s: bad format marker", rdb->path);
    if (ver != RN__RDB_FORMAT_VERSION)
        return rn__errf(err, RN_ECORRUPT,
                        "state in %s: format version %u, this build reads version %u", rdb->path,
                        ver, RN__RDB_FORMAT_VERSION);
    return RN_OK;
}

static rn_code_t
rdb_open_db(rn__rdb_t *rdb, bool create, rn_error_t *err)
{
    char *rerr = NULL;
    rocksdb_options_set_create_if_missing(rdb->opts, create);
    rocksdb_options_set_error_if_exists(rdb->opts, create);
    /* Opened with its one column family named, for the handle that
     * batched MultiGet (rn__rdb_multi_get) takes. */
    const char *names[1] = {"default"};
    const rocksdb_options_t *cfopts[1] = {rdb->opts};
    rocksdb_column_family_handle_t *cfs[1] = {NULL};
    rdb->db = rocksdb_open_column_families(rdb->opts, rdb->path, 1, names, cfopts, cfs, &rerr);
    if (rerr != NULL)
        return rdb_err(err, rerr, "open", rdb->path);
    rdb->cf = cfs[0];
    return create ? write_format(rdb, err) : check_format(rdb, err);
}

static rn_code_t
rdb_open(const rn_state_options_t *opts, void **be, rn_error_t *err)
{
    char base[4096];
    rn__state_base_dir(opts, base, sizeof(base));
    rn_code_t rc = rn__fs_mkdir_p(base, err);
    if (rc == RN_OK)
        rc = rn__fs_check_private(base, "state directory", err);
    if (rc != RN_OK)
        return rc;
    char owner[256];
    owner_file_name(opts->owner != NULL ? opts->owner : "state", owner, sizeof(owner));
    rn__rdb_t *rdb = rdb_new(opts, err);
    if (rdb == NULL)
        return err != NULL ? err->code : RN_ENOMEM;
    remove_stale(base, owner, rdb->owner);
    rdb->path = make_run_dir(base, owner, err);
    if (rdb->path == NULL) {
        rdb_free(rdb);
        return err != NULL ? err->code : RN_EIO;
    }
    rdb->remove_on_close = true;
    if (opts->restore_dir != NULL) {
        rc = rn__rdb_restore_files(rdb, opts->restore_dir, err);
        /* The filter of what RocksDB may hold is rebuilt by ready(): its
         * scan reads merged values, which needs the merging states. */
        if (rc == RN_OK)
            rc = rdb_open_db(rdb, false, err);
    } else {
        rc = rdb_open_db(rdb, true, err);
    }
    if (rc != RN_OK) {
        rdb_free(rdb);
        return rc;
    }
    *be = rdb;
    return RN_OK;
}

rn_code_t
rn__rdb_open_existing(const char *path, const rn_state_options_t *opts, void **be,
                      rn_error_t *err)
{
    rn__rdb_t *rdb = rdb_new(opts, err);
    if (rdb == NULL)
        return err != NULL ? err->code : RN_ENOMEM;
    rdb->path = rn_xstrdup(path);
    rn_code_t rc = rdb_open_db(rdb, false, err);
    /* The filter knows only what this backend wrote: count in what the
     * files hold before anything trusts it. */
    if (rc == RN_OK)
        rc = rn__rf_rebuild(rdb, 0, rdb->cache.limit / 8, err);
    if (rc != RN_OK) {
        rdb_free(rdb);
        return rc;
    }
    *be = rdb;
    return RN_OK;
}

static void
rdb_close(void *be)
{
    rdb_free(be);
}

const char *
rn__rdb_path(void *be)
{
    return ((rn__rdb_t *)be)->path;
}

/* ---- range reads (for rocksdb_coll.c) ---- */

/* Iterates the keys in [lo, hi), calling fn with each key past skip bytes
 * (or NULL for lists) and its value; counts them in *n. A NULL fn deletes
 * them instead. Both bounds are copied. */
rn_code_t
rn__rdb_range_each(rn__rdb_t *rdb, const uint8_t *lo, size_t lolen, const uint8_t *hi, size_t hilen,
           size_t skip, bool with_key, rn_state_each_fn fn, void *ctx, uint64_t *n,
           rn_error_t *err)
{
    uint8_t *bounds = rn_malloc(lolen + hilen);
    if (bounds == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for an iterator");
    memcpy(bounds, lo, lolen);
    memcpy(bounds + lolen, hi, hilen);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)bounds + lolen, hilen);
    rn__rdb_fence(rdb);
    *n = 0;
    rn_code_t rc = rn__rdb_check(rdb, err);
    if (rc != RN_OK) {
        rocksdb_readoptions_destroy(ro);
        rn_free(bounds);
        return rc;
    }
    rocksdb_iterator_t *it = rocksdb_create_iterator(rdb->db, ro);
    for (rocksdb_iter_seek(it, (const char *)bounds, lolen); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *key = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        (*n)++;
        if (fn == NULL) {
            rocksdb_writebatch_delete(rdb->wb, key, klen);
            continue;
        }
        rc = fn(ctx, with_key ? key + skip : NULL, with_key ? klen - skip : 0, val, vlen);
        if (rc != RN_OK)
            break;
    }
    if (rc == RN_OK) {
        char *rerr = NULL;
        rocksdb_iter_get_error(it, &rerr);
        if (rerr != NULL)
            rc = rdb_err(err, rerr, "iterate", rdb->path);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rn_free(bounds);
    return rc;
}

/* ---- the vtable ---- */

static rn_code_t
rdb_get(void *be, const rn__skey_t *k, const void **val, size_t *len, rn_error_t *err)
{
    if (k->ukey != NULL)
        return rn__rdb_map_get(be, k, val, len, err);
    return rn__rc_get(be, k, val, len, err);
}

static rn_code_t
rdb_put(void *be, const rn__skey_t *k, const void *val, size_t len, rn_error_t *err)
{
    if (k->ukey != NULL)
        return rn__rdb_map_put(be, k, val, len, err);
    return rn__rc_put(be, k, val, len, err);
}

static void *
rdb_ref(void *be, const rn__skey_t *k, size_t size, bool *created, rn_error_t *err)
{
    return rn__rc_ref(be, k, size, created, err);
}

static void *
rdb_ref_part(void *be, const rn__skey_t *k, size_t size, bool *fresh, rn_error_t *err)
{
    return rn__rc_ref_part(be, k, size, fresh, err);
}

static void
rdb_prefetch(void *be, const rn__skey_t *keys, size_t n)
{
    rn__rc_prefetch(be, keys, n);
}

static void
rdb_prefetch_key(void *be, const rn__skey_t *k)
{
    rn__rc_prefetch_key(be, k);
}

/* Entries a tick freezes: about a millisecond's copying, so that a
 * freeze of a few hundred thousand values ends well within a checkpoint
 * interval and no slice holds the task up long. */
#define FREEZE_SLICE 4096

static bool
rdb_tick(void *be, bool all)
{
    return rn__rdb_freeze_step(be, all ? SIZE_MAX : FREEZE_SLICE);
}

static size_t
rdb_table_bytes(void *be)
{
    return ((const rn__rdb_t *)be)->cache.cap * sizeof(rn__rcslot_t);
}

static rn_code_t
rdb_del(void *be, const rn__skey_t *k, rn_error_t *err)
{
    if (k->kind == RN__SK_MAP)
        return k->ukey != NULL ? rn__rdb_map_remove(be, k, err) : rn__rdb_map_clear(be, k, err);
    if (k->kind == RN__SK_LIST)
        return rn__rdb_list_clear(be, k, err);
    bool existed;
    return rn__rc_del(be, k, &existed, err);
}

static rn_code_t
rdb_take(void *be, const rn__skey_t *k, void *buf, size_t size, size_t *len, rn_error_t *err)
{
    return rn__rc_take(be, k, buf, size, len, err);
}

static void
rdb_stats(void *be, rn_state_stats_t *stats)
{
    rn__rdb_t *rdb = be;
    uint64_t mem = 0;
    stats->entries += rdb->live;
    stats->reads += rdb->cache.reads;
    if (rocksdb_property_int(rdb->db, "rocksdb.cur-size-all-mem-tables", &mem) == 0)
        stats->bytes += mem;
    stats->bytes += rocksdb_cache_get_usage(rdb->bcache);
    stats->bytes += rdb->cache.bytes + rdb->cache.cap * sizeof(rn__rcslot_t) + sizeof(*rdb) +
                    rdb->kcap;
}

const rn__state_backend_t rn__state_rocksdb_backend = {
    .name = "rocksdb",
    .open = rdb_open,
    .close = rdb_close,
    .get = rdb_get,
    .put = rdb_put,
    .ref = rdb_ref,
    .del = rdb_del,
    .take = rdb_take,
    .list_add = rn__rdb_list_add,
    .list_each = rn__rdb_list_each,
    .map_each = rn__rdb_map_each,
    .stats = rdb_stats,
    .ttl_state = rn__rdb_ttl_state,
    .merge_state = rn__rdb_merge_state,
    .ref_part = rdb_ref_part,
    .prefetch = rdb_prefetch,
    .prefetch_key = rdb_prefetch_key,
    .table_bytes = rdb_table_bytes,
    .timer_budget = rn__rdb_timer_budget,
    .timer_write = rn__rdb_timer_write,
    .timer_load = rn__rdb_timer_load,
    .timer_del = rn__rdb_timer_del,
    .snapshot = rn__rdb_snapshot,
    .import = rn__rdb_import,
    .ready = rn__rdb_ready,
    .tick = rdb_tick,
};
