/*
 * state/rocksdb_snap.c: checkpoints of the RocksDB backend (see
 * state/snapshot.c for the handle's part).
 *
 * Snapshot: synchronously, on the task thread, the range deletes of
 * timers loaded during the last checkpoint's part are written, the
 * gathered timer writes are taken over (frozen, the task keeping a copy:
 * rocksdb_timers.c) and the write-back cache's list of dirty entries is
 * taken over. The task then copies those entries out (freezes them) and
 * marks them written a slice at a time between its batches (rn__state_
 * tick), and copies one first when something is about to change it
 * (copy on write, rocksdb_cache.c): the pause at the barrier does not
 * grow with the state that changed. (When the list overflowed, the
 * freeze walks the cache at once instead.) Asynchronously (finish(), on
 * the checkpoint coordinator's thread), once the freeze is complete, the
 * frozen values are written (many as an SST file that is ingested, a few
 * through the memtable) and a RocksDB checkpoint made in dir/db: the
 * memtable is flushed and the SST files hard-linked. Until finish() is
 * done, the task's writes to RocksDB wait at the fence (rn__rdb_fence),
 * finishing the freeze first: none may come before the frozen values or
 * into the checkpoint; so does a read of a frozen key (it must see the
 * frozen value) and a scan of state (it may meet them; timer loads merge
 * the task's copy instead), but a point read of any
 * other key goes on (rn__rdb_fence_key), and eviction takes clean
 * entries only meanwhile. A job whose state the cache holds does not
 * wait at all. Copying the files into the checkpoint store follows, also
 * asynchronously (checkpoint/).
 *
 * Restore: the files of a snapshot's db/ go into a new run directory (SST
 * files hard-linked, since RocksDB never changes one; MANIFEST, CURRENT
 * and OPTIONS copied, since RocksDB appends to its MANIFEST), the database
 * is opened with automatic compaction off, and ready() turns it on once
 * the operator registered its merging states: until then a compaction
 * would meet merge operands of a state the merge operator does not know.
 * ready() also rebuilds the filter of what RocksDB holds (its scan reads
 * merged values).
 *
 * @thread task.
 */
#include "state/rocksdb_int.h"
#include "stream/fs.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* A frozen value to sort by: its first 16 bytes inline, big-endian and
 * zero-padded, so that most comparisons never touch the key itself (a
 * cache miss each: sorting a million keys through pointers took most of
 * a second). 32 bytes in all: glibc's qsort sorts larger elements
 * through pointers. */
typedef struct skey {
    uint64_t p0, p1;
    const uint8_t *key; /* borrowed */
    uint64_t klen;
} skey_t;

static void
skey_set(skey_t *s, const uint8_t *key, size_t klen)
{
    s->key = key;
    s->klen = klen;
    s->p0 = rn__rdb_be_pad(key, klen);
    s->p1 = klen > 8 ? rn__rdb_be_pad(key + 8, klen - 8) : 0;
}

/* qsort comparator of skey_t: RocksDB's bytewise order. Equal
 * prefixes decide nothing when a key is shorter than 16 bytes (padding),
 * so ties compare the whole keys. */
static int
cmp_skey(const void *a, const void *b)
{
    const skey_t *x = a, *y = b;
    if (x->p0 != y->p0)
        return x->p0 < y->p0 ? -1 : 1;
    if (x->p1 != y->p1)
        return x->p1 < y->p1 ? -1 : 1;
    rn__rdb_kref_t kx = {x->key, x->klen}, ky = {y->key, y->klen};
    return rn__rdb_cmp_key(&kx, &ky);
}

_Static_assert(sizeof(skey_t) == 32, "sorted in place by glibc's qsort");

/* The frozen values sorted by key (rn_malloc'd; NULL when out of memory). */
static skey_t *
sort_frozen(const rn__rdb_frozen_t *fz)
{
    skey_t *w = rn_malloc((fz->n ? fz->n : 1) * sizeof(*w));
    if (w == NULL)
        return NULL;
    for (size_t i = 0; i < fz->n; i++) {
        const uint8_t *p = fz->buf + fz->off[i];
        uint32_t klen;
        memcpy(&klen, p + 1, 4);
        skey_set(&w[i], p + 9, klen);
    }
    qsort(w, fz->n, sizeof(*w), cmp_skey);
    return w;
}

static bool
batch_timer(void *ctx, const uint8_t *key, size_t len)
{
    rocksdb_writebatch_put(ctx, (const char *)key, len, "", 0);
    return true;
}

typedef struct sst_timers {
    rocksdb_sstfilewriter_t *sw;
    char **rerr;
} sst_timers_t;

static bool
sst_timer(void *ctx, const uint8_t *key, size_t len)
{
    sst_timers_t *st = ctx;
    rocksdb_sstfilewriter_put(st->sw, (const char *)key, len, "", 0, st->rerr);
    return *st->rerr == NULL;
}

/* A few: through a write batch of its own (the task may be filling
 * rdb->wb meanwhile) into the memtable, flushed by the checkpoint. The
 * timers taken after the values: their keys sort after every state
 * key. */
static rn_code_t
batch_frozen(rn__rdb_t *rdb, const skey_t *w, size_t n, char **rerr, rn_error_t *err)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = w[i].key - 9;
        uint32_t vlen;
        memcpy(&vlen, p + 5, 4);
        const char *k = (const char *)w[i].key, *v = k + w[i].klen;
        if (p[0] == RN__FZ_DEL)
            rocksdb_writebatch_delete(wb, k, w[i].klen);
        else if (p[0] == RN__FZ_MERGE)
            rocksdb_writebatch_merge(wb, k, w[i].klen, v, vlen);
        else
            rocksdb_writebatch_put(wb, k, w[i].klen, v, vlen);
    }
    rn_code_t rc = RN_OK;
    if (rdb->fz.tk != NULL)
        rc = rn__rdb_tkeys_sorted(rdb->fz.tk, batch_timer, wb, err);
    if (rc == RN_OK) {
        atomic_store(&rdb->fz_state, 1); /* rn__rdb_get_cached: RocksDB changes now */
        rocksdb_write(rdb->db, rdb->wopts, wb, rerr);
    }
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* Many: an SST file of their own, ingested. No memtable insert and no
 * flush of them: several times cheaper for the hundreds of thousands of
 * values a checkpoint of fast-changing state freezes. The file takes a
 * sequence number above everything in the database, as a write would:
 * nothing else writes meanwhile (the fence). */
static rn_code_t
ingest_frozen(rn__rdb_t *rdb, const skey_t *w, size_t n, char **rerr, rn_error_t *err)
{
    char path[4096 + 64];
    snprintf(path, sizeof(path), "%s/frozen.sst", rdb->path);
    unlink(path); /* a failed ingest's */
    rocksdb_envoptions_t *eo = rocksdb_envoptions_create();
    rocksdb_sstfilewriter_t *sw = rocksdb_sstfilewriter_create(eo, rdb->opts);
    rocksdb_sstfilewriter_open(sw, path, rerr);
    for (size_t i = 0; *rerr == NULL && i < n; i++) {
        const uint8_t *p = w[i].key - 9;
        uint32_t vlen;
        memcpy(&vlen, p + 5, 4);
        const char *k = (const char *)w[i].key, *v = k + w[i].klen;
        if (p[0] == RN__FZ_DEL)
            rocksdb_sstfilewriter_delete(sw, k, w[i].klen, rerr);
        else if (p[0] == RN__FZ_MERGE)
            rocksdb_sstfilewriter_merge(sw, k, w[i].klen, v, vlen, rerr);
        else
            rocksdb_sstfilewriter_put(sw, k, w[i].klen, v, vlen, rerr);
    }
    rn_code_t rc = RN_OK;
    if (*rerr == NULL && rdb->fz.tk != NULL) {
        sst_timers_t st = {sw, rerr};
        rc = rn__rdb_tkeys_sorted(rdb->fz.tk, sst_timer, &st, err);
    }
    if (*rerr == NULL && rc == RN_OK)
        rocksdb_sstfilewriter_finish(sw, rerr);
    rocksdb_sstfilewriter_destroy(sw);
    rocksdb_envoptions_destroy(eo);
    if (*rerr == NULL && rc == RN_OK) {
        /* The memtable goes to a file first, so that none spans an ingest.
         * RocksDB before 7.10 (Debian has 7.8) orders level 0 by largest
         * sequence number: a memtable written before one ingest and
         * flushed after a second, once an intra-L0 compaction merged
         * the two ingested files, overlaps that file's numbers and its
         * consistency check refuses every write ("VersionBuilder: L0
         * file ... with seqno ... vs. file ...", RocksDB pull request
         * 10922); a checkpoint that was given up ingests without the
         * flush a kept one makes after. */
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        rocksdb_flush_cf(rdb->db, fo, rdb->cf, rerr);
        rocksdb_flushoptions_destroy(fo);
    }
    if (*rerr == NULL && rc == RN_OK) {
        /* Moved (hard-linked, the original removed), not copied. */
        rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
        rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
        const char *files[1] = {path};
        atomic_store(&rdb->fz_state, 1); /* rn__rdb_get_cached: RocksDB changes now */
        rocksdb_ingest_external_file_cf(rdb->db, rdb->cf, files, 1, io, rerr);
        rocksdb_ingestexternalfileoptions_destroy(io);
    }
    if (*rerr != NULL || rc != RN_OK)
        unlink(path);
    return rc;
}

/* Writes the frozen values in key order: sorted, the memtable inserts
 * next to the previous key and the SST writer takes them. */
static rn_code_t
write_frozen(rn__rdb_t *rdb, rn__rdb_frozen_t *fz, rn_error_t *err)
{
    if (fz->n == 0 && fz->tk == NULL)
        return RN_OK;
    skey_t *w = sort_frozen(fz);
    if (w == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory writing %zu frozen values", fz->n);
    char *rerr = NULL;
    uint64_t bytes = fz->len + (fz->tk != NULL ? rn__rdb_tkeys_used(fz->tk) : 0);
    rn_code_t rc = bytes >= rdb->ingest_min ? ingest_frozen(rdb, w, fz->n, &rerr, err)
                                            : batch_frozen(rdb, w, fz->n, &rerr, err);
    rn_free(w);
    if (rc != RN_OK) {
        rocksdb_free(rerr);
        return rc;
    }
    if (rerr != NULL) {
        rc = rn__errf(err, RN_EIO, "%s: frozen values: %s", rdb->path, rerr);
        rocksdb_free(rerr);
    }
    return rc;
}

/* The frozen values could not be written (err says why): the cache
 * handed them over as written and RocksDB lacks them, so the backend is
 * broken from now on (rn__rdb_check) and err fatal to the job. Not
 * retried: the entries may have left the cache already, and the values
 * alone, without the RocksDB they were taken over, make no checkpoint;
 * the job's last completed checkpoint holds everything, and the next run
 * resumes from it. Before the fence opens, so that no access after it
 * misses the flag. */
static void
set_broken(rn__rdb_t *rdb, rn_error_t *err)
{
    rn__errctx(err, "state of %s: the values a checkpoint took were not written, the job "
                    "cannot go on",
               rdb->owner);
    err->flags |= RN_ERR_FATAL;
    rdb->broken_err = *err;
    atomic_store_explicit(&rdb->broken, true, memory_order_release);
}

/* The asynchronous part: once the task has frozen everything, the frozen
 * values into RocksDB, then (keep) the RocksDB checkpoint; the fence
 * opens. Nothing else writes meanwhile: the task's accesses wait at the
 * fence. Called on the task's own thread (a snapshot finished at once,
 * or given up), it finishes the freeze itself. */
static rn_code_t
finish(void *ctx, bool keep, rn_error_t *err)
{
    rn__rdb_t *rdb = ctx;
    rn_free(rdb->fz_old);
    rdb->fz_old = NULL;
    if (pthread_equal(pthread_self(), rdb->fz_thread)) {
        (void)rn__rdb_freeze_step(rdb, SIZE_MAX);
    } else {
        pthread_mutex_lock(&rdb->fence_lock);
        while (rdb->cache.freezing)
            pthread_cond_wait(&rdb->fence_cond, &rdb->fence_lock);
        pthread_mutex_unlock(&rdb->fence_lock);
    }
    int64_t t0 = rn__mono_ns();
    rn_error_t local = RN_ERROR_INIT;
    if (err == NULL)
        err = &local; /* a checkpoint given up: the error is kept all the same */
    rn_code_t rc = write_frozen(rdb, &rdb->fz, err);
    atomic_store(&rdb->fz_state, 2);
    if (rc != RN_OK)
        set_broken(rdb, err);
    int64_t t1 = rn__mono_ns();
    if (rc == RN_OK && keep) {
        char *rerr = NULL;
        rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(rdb->db, &rerr);
        if (rerr == NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/db", rdb->fz_dir);
            /* log_size_for_flush 0: always flush, since there is no WAL. */
            rocksdb_checkpoint_create(cp, path, 0, &rerr);
            rocksdb_checkpoint_object_destroy(cp);
        }
        if (rerr != NULL) {
            rc = rn__errf(err, RN_EIO, "RocksDB checkpoint of %s: %s", rdb->path, rerr);
            rocksdb_free(rerr);
        }
    }
    RN_LOG_DEBUG(rdb->owner, "checkpoint: %zu frozen values and %zu timers written in %.1f ms, "
                             "RocksDB checkpoint in %.1f ms",
                 rdb->fz.n, rdb->fz.tk != NULL ? rdb->fz.tk->n : 0, (double)(t1 - t0) / 1e6,
                 (double)(rn__mono_ns() - t1) / 1e6);
    if (rc != RN_OK && !keep)
        RN_LOG_ERROR(rdb->owner, "%s", err->msg);
    /* The buffers stay for the next checkpoint's freeze (the task may be
     * reading them meanwhile: rn__rdb_get_cached). */
    rn_free(rdb->fz_dir);
    rdb->fz_dir = NULL;
    pthread_mutex_lock(&rdb->fence_lock);
    atomic_store_explicit(&rdb->fence_busy, false, memory_order_release);
    pthread_cond_broadcast(&rdb->fence_cond);
    pthread_mutex_unlock(&rdb->fence_lock);
    return rc;
}

void
rn__rdb_frozen_free(rn__rdb_frozen_t *fz)
{
    rn_free(fz->buf);
    rn_free(fz->off);
    rn_free(fz->hash);
    rn_free(fz->set);
    memset(fz, 0, sizeof(*fz));
}

/* Adds hash h of record i to fz's set (which has room: at most half
 * full); a hash met again keeps its last record. */
static void
set_put(rn__rdb_frozen_t *fz, uint64_t h, size_t i)
{
    if (h == 0) {
        fz->has_zero = true;
        return;
    }
    size_t j = h & fz->mask;
    while (fz->set[j].hash != 0 && fz->set[j].hash != h)
        j = (j + 1) & fz->mask;
    fz->set[j].hash = h;
    fz->set[j].i = i;
}

void
rn__rdb_frozen_note(rn__rdb_frozen_t *fz, uint64_t h, size_t i)
{
    if (!fz->set_on)
        return;
    if (2 * fz->n > fz->mask + 1) {
        /* Too full: rebuilt larger when next asked. */
        fz->set_on = false;
        fz->has_zero = false;
        return;
    }
    set_put(fz, h, i);
}

bool
rn__rdb_frozen_has(rn__rdb_t *rdb, uint64_t h)
{
    rn__rdb_frozen_t *fz = &rdb->fz;
    if (fz->n == 0)
        return false;
    if (!fz->set_on) {
        /* The last checkpoint's set when it is large enough: its pages
         * are there already (a fresh one faults each in). */
        size_t cap = 16;
        while (cap < 2 * fz->n)
            cap *= 2;
        if (fz->set != NULL && fz->mask + 1 >= cap) {
            memset(fz->set, 0, (fz->mask + 1) * sizeof(*fz->set));
        } else {
            /* Outgrown (the changes of a checkpoint grew): freed here,
             * on the task, but only when the set must grow. */
            rn_free(fz->set);
            fz->set = rn_zalloc(cap, sizeof(*fz->set));
            if (fz->set == NULL)
                return true; /* no set: wait, as for every key */
            fz->mask = cap - 1;
        }
        fz->has_zero = false;
        fz->set_on = true;
        for (size_t i = 0; i < fz->n; i++)
            set_put(fz, fz->hash[i], i);
    }
    if (h == 0)
        return fz->has_zero;
    for (size_t j = h & fz->mask; fz->set[j].hash != 0; j = (j + 1) & fz->mask)
        if (fz->set[j].hash == h)
            return true;
    return false;
}

const uint8_t *
rn__rdb_frozen_find(rn__rdb_t *rdb, uint64_t h, const uint8_t *key, size_t klen)
{
    rn__rdb_frozen_t *fz = &rdb->fz;
    if (h == 0 || !rn__rdb_frozen_has(rdb, h) || !fz->set_on)
        return NULL;
    for (size_t j = h & fz->mask; fz->set[j].hash != 0; j = (j + 1) & fz->mask) {
        if (fz->set[j].hash != h)
            continue;
        const uint8_t *r = fz->buf + fz->off[fz->set[j].i];
        uint32_t rk;
        memcpy(&rk, r + 1, 4);
        /* Another key of the same hash: not known here. */
        return rk == klen && memcmp(r + 9, key, klen) == 0 ? r : NULL;
    }
    return NULL;
}

/*
 * Freezes owed by a thread. A worker thread runs several tasks, and the
 * checkpoint coordinator runs the finishes of a checkpoint one after the
 * other, each waiting for its state's freeze, which only that state's
 * task thread does (in slices, between batches). A task that waits at its
 * fence (its own finish not run yet) blocks its thread, and with it the
 * freezes of the other tasks on that thread: when the coordinator is in
 * one of their finishes, neither moves again (seen at parallelism 3 on
 * two workers). So a thread that is about to wait at a fence first ends
 * every freeze it owes: the states that snapshot on it are its own, and
 * none of their tasks is in a step meanwhile. The registry is the one
 * mutable global here: which thread owes which freeze is known to no
 * object that both the thread and the states reach.
 */
typedef struct owed {
    rn__rdb_t *rdb;
    pthread_t thread;
} owed_t;

static pthread_mutex_t owed_lock = PTHREAD_MUTEX_INITIALIZER;
static owed_t *owed;
static size_t nowed, capowed;

/* Notes that this thread owes rdb's freeze. On no memory, not noted: the
 * freeze goes on in slices as it did. */
static void
owed_add(rn__rdb_t *rdb)
{
    pthread_mutex_lock(&owed_lock);
    if (nowed == capowed) {
        size_t ncap = capowed ? capowed * 2 : 16;
        owed_t *nv = rn_realloc(owed, ncap * sizeof(*nv));
        if (nv != NULL) {
            owed = nv;
            capowed = ncap;
        }
    }
    if (nowed < capowed)
        owed[nowed++] = (owed_t){rdb, pthread_self()};
    pthread_mutex_unlock(&owed_lock);
}

/* Ends the freezes this thread owes (besides rdb's, which the caller
 * ends) and forgets them. Under the lock, so that a state closed on
 * another thread (rn__rdb_freeze_forget) is not stepped meanwhile. */
static void
owed_settle(rn__rdb_t *rdb)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&owed_lock);
    size_t k = 0;
    for (size_t i = 0; i < nowed; i++) {
        if (!pthread_equal(owed[i].thread, self)) {
            owed[k++] = owed[i];
            continue;
        }
        if (owed[i].rdb != rdb && owed[i].rdb->cache.freezing)
            (void)rn__rdb_freeze_step(owed[i].rdb, SIZE_MAX);
    }
    nowed = k;
    pthread_mutex_unlock(&owed_lock);
}

void
rn__state_settle_freezes(void)
{
    owed_settle(NULL);
}

void
rn__rdb_freeze_forget(rn__rdb_t *rdb)
{
    pthread_mutex_lock(&owed_lock);
    size_t k = 0;
    for (size_t i = 0; i < nowed; i++)
        if (owed[i].rdb != rdb)
            owed[k++] = owed[i];
    nowed = k;
    if (nowed == 0) {
        rn_free(owed);
        owed = NULL;
        capowed = 0;
    }
    pthread_mutex_unlock(&owed_lock);
}

void
rn__rdb_fence_wait(rn__rdb_t *rdb)
{
    if (rdb->fence_pass)
        return;
    int64_t t0 = rn__mono_ns();
    /* finish() waits for the freeze, which only this thread can do; and
     * the coordinator may be waiting in the finish of another state of
     * this thread, before it comes to this one's. */
    if (rdb->cache.freezing)
        (void)rn__rdb_freeze_step(rdb, SIZE_MAX);
    owed_settle(rdb);
    pthread_mutex_lock(&rdb->fence_lock);
    while (atomic_load_explicit(&rdb->fence_busy, memory_order_acquire))
        pthread_cond_wait(&rdb->fence_cond, &rdb->fence_lock);
    pthread_mutex_unlock(&rdb->fence_lock);
    rdb->fence_waits++;
    rdb->fence_wait_ns += (uint64_t)(rn__mono_ns() - t0);
}

/* Synchronous: the gathered timer writes go in (small), the write-back
 * cache's dirty list is taken over (its values are copied out by the
 * task later, in slices; at once when the list overflowed), and the rest
 * is left to finish(): the values are written there and the checkpoint
 * made, off the task's thread. */
rn_code_t
rn__rdb_snapshot(void *be, const char *dir, rn_state_finish_t *fin, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    rn_code_t rc;
    rn__rdb_fence(rdb); /* the previous checkpoint's part is done */
    if ((rc = rn__rdb_check(rdb, err)) != RN_OK)
        return rc;
    /* Timers loaded meanwhile leave RocksDB before this checkpoint. */
    if ((rc = rn__rdb_timer_settle(rdb, err)) != RN_OK)
        return rc;
    /* A buffer of values four times larger than the last checkpoint
     * needed is given back, by this checkpoint's part (off the task:
     * returning a hundred MB to the system took the task 50 ms in a
     * pause). */
    if (rdb->fz.len < rdb->fz.cap / 4) {
        rn_free(rdb->fz_old); /* NULL unless a part never ran */
        rdb->fz_old = rdb->fz.buf;
        rdb->fz.buf = NULL;
        rdb->fz.cap = 0;
    }
    atomic_store(&rdb->fz_state, 0);
    int64_t t0 = rn__mono_ns();
    rdb->fz_thread = pthread_self();
    rn__rdb_freeze_init(rdb, &rdb->fz);
    /* The gathered timer writes go with the frozen values. */
    rn__rdb_timer_freeze(rdb);
    size_t ntimers = rdb->fz.tk != NULL ? rdb->fz.tk->n : 0;
    if (!rn__rdb_freeze_begin(rdb) && (rc = rn__rdb_freeze(rdb, err)) != RN_OK)
        return rc;
    RN_LOG_DEBUG(rdb->owner, "snapshot: %zu timer writes taken, freeze %s in %.1f ms", ntimers,
                 rdb->cache.freezing ? "begun" : "done", (double)(rn__mono_ns() - t0) / 1e6);
    rdb->fz_dir = rn_xstrdup(dir);
    if (rdb->cache.freezing)
        owed_add(rdb);
    atomic_store_explicit(&rdb->fence_busy, true, memory_order_release);
    fin->fn = finish;
    fin->ctx = rdb;
    return RN_OK;
}

static bool
is_sst(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".sst") == 0;
}

rn_code_t
rn__rdb_restore_files(rn__rdb_t *rdb, const char *restore_dir, rn_error_t *err)
{
    char from[4096];
    snprintf(from, sizeof(from), "%s/db", restore_dir);
    DIR *d = opendir(from);
    if (d == NULL)
        return rn__errf(err, RN_EIO, "restore %s: open '%s': %s", rdb->owner, from,
                        strerror(errno));
    struct dirent *de;
    rn_code_t rc = RN_OK;
    int n = 0;
    while (rc == RN_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char src[4096 + 256], dst[4096 + 256];
        snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", rdb->path, de->d_name);
        rc = is_sst(de->d_name) ? rn__fs_link_or_copy(src, dst, err)
                                : rn__fs_copy(src, dst, NULL, NULL, err);
        n++;
    }
    closedir(d);
    if (rc == RN_OK && n == 0)
        rc = rn__errf(err, RN_ECORRUPT, "restore %s: '%s' is empty", rdb->owner, from);
    /* Compaction waits for ready(). */
    rocksdb_options_set_disable_auto_compactions(rdb->opts, 1);
    return rc;
}

rn_code_t
rn__rdb_ready(void *be, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    /* The filter of what RocksDB may hold starts from the files. */
    rn_code_t rc = rn__rf_rebuild(rdb, 0, rdb->cache.limit / 8, err);
    if (rc != RN_OK)
        return rc;
    const char *keys[1] = {"disable_auto_compactions"};
    const char *vals[1] = {"false"};
    char *rerr = NULL;
    rocksdb_set_options(rdb->db, 1, keys, vals, &rerr);
    if (rerr != NULL) {
        /* Not fatal: the job runs, its files are not compacted. */
        RN_LOG_WARN(rdb->owner, "cannot turn compaction back on after a restore: %s", rerr);
        rocksdb_free(rerr);
    }
    return RN_OK;
}

/* The key group of a raw key: state keys start with it (2 bytes), timers
 * carry it after tag, domain and time (4 bytes); -1: neither (the format
 * marker). */
static int64_t
raw_kg(const char *k, size_t len)
{
    const uint8_t *u = (const uint8_t *)k;
    if (len >= 2 && u[0] < 0x80)
        return (int64_t)u[0] << 8 | u[1];
    if (len >= RN__RDB_TIMER_HEAD && u[0] == RN__RDB_TIMER_TAG)
        return (int64_t)u[10] << 24 | (int64_t)u[11] << 16 | (int64_t)u[12] << 8 | u[13];
    return -1;
}

rn_code_t
rn__rdb_import(void *be, const char *dir, uint32_t lo, uint32_t hi, rn_error_t *err)
{
    rn__rdb_t *rdb = be;
    char path[4096];
    snprintf(path, sizeof(path), "%s/db", dir);
    rocksdb_options_t *o = rocksdb_options_create();
    /* Merged values are read through the states this operator registered. */
    rn__rdb_merge_share(o, rdb->merge);
    rocksdb_options_set_info_log_level(o, 4 /* HEADER: no LOG lines */);
    char *rerr = NULL;
    rocksdb_t *src = rocksdb_open_for_read_only(o, path, 0, &rerr);
    rn_code_t rc = RN_OK;
    if (rerr != NULL) {
        rc = rn__errf(err, RN_EIO, "rescaling %s: open %s: %s", rdb->owner, path, rerr);
        rocksdb_free(rerr);
        rocksdb_options_destroy(o);
        return rc;
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator(src, ro);
    uint64_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rc == RN_OK && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        int64_t kg = raw_kg(k, klen);
        if (kg < (int64_t)lo || kg > (int64_t)hi)
            continue;
        const char *v = rocksdb_iter_value(it, &vlen);
        rocksdb_writebatch_put(rdb->wb, k, klen, v, vlen);
        if (++n % 4096 == 0)
            rc = rn__rdb_write(rdb, err);
    }
    rocksdb_iter_get_error(it, &rerr);
    if (rc == RN_OK && rerr != NULL)
        rc = rn__errf(err, RN_EIO, "rescaling %s: read %s: %s", rdb->owner, path, rerr);
    rocksdb_free(rerr);
    if (rc == RN_OK)
        rc = rn__rdb_write(rdb, err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_close(src);
    rocksdb_options_destroy(o);
    return rc;
}
