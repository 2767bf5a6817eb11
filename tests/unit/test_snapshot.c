/*
 * tests/unit/test_snapshot.c: a state handle's snapshot and restore
 * (state/snapshot.c, memory.c's table, rocksdb_snap.c): what a restore
 * reads back equals what was there at the snapshot, not what came after.
 */
#include "rn_check.h"
#include "checkpoint/ckpt.h"
#include "state/rocksdb_int.h"
#include "state/snapio.h"
#include "state/state_int.h"
#include "stream/fs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const backends[] = {"memory", "rocksdb"};

/* Merging state: sums of int64, read in place as the window operator
 * reads its accumulator cells: every value handed to a merge function is
 * aligned for its type, whichever path folds it (RocksDB's merge
 * operator, the cache, a read of a value frozen by a checkpoint, whose
 * delta follows a key of any length in its record). */
static void
sum_merge(const void *ctx, void *dst, const void *src)
{
    (void)ctx;
    ck_assert_msg(((uintptr_t)dst % _Alignof(int64_t)) == 0 &&
                      ((uintptr_t)src % _Alignof(int64_t)) == 0,
                  "a merge function was handed a misaligned value (%p, %p)", dst, src);
    *(int64_t *)dst += *(const int64_t *)src;
}

typedef struct handles {
    rn_vstate_t *v;
    rn_lstate_t *l;
    rn_mstate_t *m;
    rn_vstate_t *sum;
} handles_t;

static void
register_all(rn_state_t *st, handles_t *h)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_merge_t mg = {.size = 8, .merge = sum_merge};
    h->v = rn__state_value(st, "v", &err);
    h->l = rn__state_list(st, "l", &err);
    h->m = rn__state_map(st, "m", &err);
    h->sum = rn__state_value_merge(st, "sum", &mg, &err);
    ck_assert_msg(h->v && h->l && h->m && h->sum, "%s", err.msg);
}

static rn_state_t *
open_state_ingest(int b, int64_t memory, const char *restore, uint64_t ingest_min)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[256];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/snap-state-%d", tmp ? tmp : "/tmp", (int)getpid());
    rn_state_options_t opts = {.backend = backends[b], .dir = dir, .memory_bytes = memory,
                               .owner = "snap#0", .restore_dir = restore,
                               .ingest_min_bytes = ingest_min};
    rn_state_t *st = rn__state_new(&opts, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    return st;
}

static rn_state_t *
open_state(int b, int64_t memory, const char *restore)
{
    return open_state_ingest(b, memory, restore, 0);
}

static void
set_key(rn_state_t *st, int k)
{
    char key[16];
    int n = snprintf(key, sizeof(key), "k%d", k);
    rn__state_set_key(st, key, (size_t)n, (uint32_t)(k % 128));
}

#define NKEYS 3000

/* Writes round r of values for every key: r is in every value, so that a
 * restore that reads a later round is caught. */
static void
write_round(rn_state_t *st, handles_t *h, int r)
{
    rn_error_t err = RN_ERROR_INIT;
    for (int k = 0; k < NKEYS; k++) {
        set_key(st, k);
        int64_t v = (int64_t)k * 1000 + r;
        ck_assert_rn_ok(rn__vstate_put(h->v, "", 0, &v, 8, &err), &err);
        ck_assert_rn_ok(rn__lstate_add(h->l, "n", 1, &v, 8, &err), &err);
        char uk[8];
        int n = snprintf(uk, sizeof(uk), "u%d", r);
        ck_assert_rn_ok(rn__mstate_put(h->m, "", 0, uk, (size_t)n, &v, 8, &err), &err);
        bool fresh;
        int64_t *s = rn__vstate_ref_part(h->sum, "w", 1, 8, &fresh, &err);
        ck_assert_msg(s != NULL, "%s", err.msg);
        *s += k + r;
        /* One timer per key and round, times spread so that a small
         * memory bound spills the later ones. */
        ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, 1000 * r + k % 50, "t", 1, &err),
                        &err);
    }
}

typedef struct lsum {
    int n;
    int64_t last;
} lsum_t;

static rn_code_t
list_cb(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    lsum_t *ls = ctx;
    ck_assert_uint_eq(vlen, 8);
    memcpy(&ls->last, v, 8);
    ls->n++;
    return RN_OK;
}

/* State as it is after rounds 0..rounds-1. */
static void
check_rounds(rn_state_t *st, handles_t *h, int rounds)
{
    rn_error_t err = RN_ERROR_INIT;
    for (int k = 0; k < NKEYS; k++) {
        set_key(st, k);
        const void *val;
        size_t len;
        ck_assert_rn_ok(rn__vstate_get(h->v, "", 0, &val, &len, &err), &err);
        int64_t v;
        memcpy(&v, val, 8);
        ck_assert_int_eq(v, (int64_t)k * 1000 + rounds - 1);
        lsum_t ls = {0, 0};
        ck_assert_rn_ok(rn__lstate_each(h->l, "n", 1, list_cb, &ls, &err), &err);
        ck_assert_int_eq(ls.n, rounds);
        ck_assert_int_eq(ls.last, (int64_t)k * 1000 + rounds - 1);
        char uk[8];
        int n = snprintf(uk, sizeof(uk), "u%d", rounds);
        ck_assert_int_eq(rn__mstate_get(h->m, "", 0, uk, (size_t)n, &val, &len, &err),
                         RN_ENOTFOUND);
        n = snprintf(uk, sizeof(uk), "u%d", rounds - 1);
        ck_assert_rn_ok(rn__mstate_get(h->m, "", 0, uk, (size_t)n, &val, &len, &err), &err);
        int64_t sum = 0;
        ck_assert_rn_ok(rn__vstate_get(h->sum, "w", 1, &val, &len, &err), &err);
        memcpy(&sum, val, 8);
        int64_t want = 0;
        for (int r = 0; r < rounds; r++)
            want += k + r;
        ck_assert_int_eq(sum, want);
    }
    /* Timers: NKEYS per round, in time order. */
    rn_timer_t t;
    int n = 0;
    int64_t last = INT64_MIN;
    while (rn__timer_pop(st, RN_TIME_EVENT, INT64_MAX, &t, &err) == RN_OK) {
        ck_assert_int_ge(t.time, last);
        ck_assert_int_lt(t.time, 1000 * rounds);
        last = t.time;
        n++;
    }
    ck_assert_int_eq(n, NKEYS * rounds);
}

START_TEST(test_snapshot_restore)
{
    /* _i: backend, then a memory bound small enough to spill timers. */
    int b = _i % 2;
    int64_t memory = _i >= 2 ? (64 << 10) : 0;
    rn_error_t err = RN_ERROR_INIT;
    char snap[256];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(snap, sizeof(snap), "%s/snap-%d-%d", tmp ? tmp : "/tmp", _i, (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap);
    ck_assert_int_eq(system(cmd), 0);

    rn_state_t *st = open_state(b, memory, NULL);
    handles_t h;
    register_all(st, &h);
    for (int r = 0; r < 3; r++)
        write_round(st, &h, r);
    ck_assert_rn_ok(rn__state_snapshot(st, snap, NULL, &err), &err);
    /* What comes after the snapshot must not be in it (hard links of
     * files RocksDB goes on changing would show it). */
    write_round(st, &h, 3);
    rn__state_destroy(st);

    rn_state_t *rs = open_state(b, memory, snap);
    handles_t rh;
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    check_rounds(rs, &rh, 3);
    rn__state_destroy(rs);

    /* The snapshot restores again (a restore does not consume it). */
    rs = open_state(b, memory, snap);
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    write_round(rs, &rh, 3);
    check_rounds(rs, &rh, 4);
    rn__state_destroy(rs);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Two snapshots of one state, the second after overwrites, deletes and
 * merges of values the first one wrote to RocksDB: the later value must
 * win, a delete must hide the older value, a merge must add to it. _i:
 * backend, then RocksDB's frozen values through the memtable (default
 * threshold) or ingested as a file (threshold 1 byte). */
START_TEST(test_snapshot_twice)
{
    int b = _i == 0 ? 0 : 1;
    uint64_t ingest_min = _i == 2 ? 1 : 0;
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600];
    const char *tmp = getenv("RN_TEST_TMP");
    for (int i = 0; i < 2; i++) {
        snprintf(snap[i], sizeof(snap[i]), "%s/snap2-%d-%d-%d", tmp ? tmp : "/tmp", _i, i,
                 (int)getpid());
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
    rn_state_t *st = open_state_ingest(b, 0, NULL, ingest_min);
    handles_t h;
    register_all(st, &h);
    for (int r = 0; r < 2; r++)
        write_round(st, &h, r);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    /* Some keys only: the second freeze finds them through the cache's
     * list of entries that became dirty, not by a walk of all. */
    for (int k = 0; k < NKEYS; k++) {
        set_key(st, k);
        if (k % 3 == 0) {
            int64_t v = (int64_t)k * 1000 + 2;
            ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
        }
        if (k % 5 == 0)
            ck_assert_rn_ok(rn__vstate_clear(h.v, "", 0, &err), &err);
        if (k % 2 == 0) {
            bool fresh;
            int64_t *sp = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
            ck_assert_msg(sp != NULL, "%s", err.msg);
            *sp += k + 2;
        }
    }
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], NULL, &err), &err);
    write_round(st, &h, 3);
    rn__state_destroy(st);

    rn_state_t *rs = open_state(b, 0, snap[1]);
    handles_t rh;
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    for (int k = 0; k < NKEYS; k++) {
        set_key(rs, k);
        const void *val;
        size_t len;
        rn_code_t rc = rn__vstate_get(rh.v, "", 0, &val, &len, &err);
        if (k % 5 == 0) {
            ck_assert_int_eq(rc, RN_ENOTFOUND);
        } else {
            ck_assert_rn_ok(rc, &err);
            int64_t v;
            memcpy(&v, val, 8);
            ck_assert_int_eq(v, (int64_t)k * 1000 + (k % 3 == 0 ? 2 : 1));
        }
        ck_assert_rn_ok(rn__vstate_get(rh.sum, "w", 1, &val, &len, &err), &err);
        int64_t sum;
        memcpy(&sum, val, 8);
        ck_assert_int_eq(sum, 2 * (int64_t)k + 1 + (k % 2 == 0 ? k + 2 : 0));
    }
    rn__state_destroy(rs);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* Fills snap[0..n) with fresh snapshot directory names (tag, index,
 * pid) under RN_TEST_TMP and removes what an earlier run left there. */
static void
snap_dirs(char snap[][256], int n, const char *tag)
{
    const char *tmp = getenv("RN_TEST_TMP");
    char cmd[600];
    for (int i = 0; i < n; i++) {
        snprintf(snap[i], 256, "%s/%s-%d-%d", tmp ? tmp : "/tmp", tag, i, (int)getpid());
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}

/* A checkpoint's asynchronous part run late, on another thread: once the
 * test releases it, or after a minute (a deadline for reads that would
 * wait for it, which the test then reports). */
typedef struct late_fin {
    rn_state_finish_t fin;
    atomic_bool release;
    atomic_bool timed_out;
    atomic_bool done;
    rn_code_t rc;
} late_fin_t;

static void *
late_fin_main(void *arg)
{
    late_fin_t *lf = arg;
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 60000 && !atomic_load(&lf->release); i++)
        nanosleep(&ms, NULL);
    atomic_store(&lf->timed_out, !atomic_load(&lf->release));
    rn_error_t err = RN_ERROR_INIT;
    lf->rc = lf->fin.fn(lf->fin.ctx, true, &err);
    atomic_store(&lf->done, true);
    return NULL;
}

/* RocksDB: while a checkpoint's asynchronous part has not run, reads of
 * keys it did not freeze go on (they would wait for it otherwise: the
 * part runs only once they are done here), and the snapshot holds the
 * frozen values. */
START_TEST(test_snapshot_reads_during_finish)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600];
    snap_dirs(snap, 2, "snapr");
    /* A small cache: most of keys [0, NKEYS) leave it before they are read. */
    rn_state_t *st = open_state(1, 256 << 10, NULL);
    handles_t h;
    register_all(st, &h);
    for (int k = 0; k < 2 * NKEYS; k++) {
        set_key(st, k);
        int64_t v = k < NKEYS ? (int64_t)k : -1;
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
    }
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    for (int k = NKEYS; k < 2 * NKEYS; k++) {
        set_key(st, k);
        int64_t v = (int64_t)k;
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
    }
    late_fin_t lf = {.rc = RN_OK};
    atomic_init(&lf.release, false);
    atomic_init(&lf.timed_out, false);
    atomic_init(&lf.done, false);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], &lf.fin, &err), &err);
    ck_assert_ptr_nonnull(lf.fin.fn);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, late_fin_main, &lf), 0);
    for (int k = 0; k < NKEYS; k++) {
        set_key(st, k);
        const void *val;
        size_t len;
        ck_assert_rn_ok(rn__vstate_get(h.v, "", 0, &val, &len, &err), &err);
        int64_t v;
        memcpy(&v, val, 8);
        ck_assert_int_eq(v, k);
    }
    /* A frozen key's read sees the frozen value. */
    for (int k = 2 * NKEYS - 1; k >= NKEYS; k--) {
        set_key(st, k);
        const void *val;
        size_t len;
        ck_assert_rn_ok(rn__vstate_get(h.v, "", 0, &val, &len, &err), &err);
        int64_t v;
        memcpy(&v, val, 8);
        ck_assert_int_eq(v, k);
    }
    atomic_store(&lf.release, true);
    ck_assert_msg(!atomic_load(&lf.timed_out), "reads waited for the checkpoint");
    /* The task's part: the asynchronous one waits for it. */
    while (rn__state_tick(st, false))
        ;
    pthread_join(th, NULL);
    ck_assert_int_eq(lf.rc, RN_OK);
    rn__state_destroy(st);

    rn_state_t *rs = open_state(1, 0, snap[1]);
    handles_t rh;
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    for (int k = 0; k < 2 * NKEYS; k++) {
        set_key(rs, k);
        const void *val;
        size_t len;
        ck_assert_rn_ok(rn__vstate_get(rh.v, "", 0, &val, &len, &err), &err);
        int64_t v;
        memcpy(&v, val, 8);
        ck_assert_int_eq(v, k);
    }
    rn__state_destroy(rs);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* Pops every timer up to upto: counts them by key and round (seen[k * 6
 * + r], k < n), and checks time order and that none comes twice. Round r
 * of key k is at time 1000 * (r % 4) + k % 50, ns r. @returns how many. */
static int
pop_all(rn_state_t *st, int64_t upto, int *seen, int n)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_timer_t t;
    int got = 0;
    int64_t last = INT64_MIN;
    rn_code_t rc;
    while ((rc = rn__timer_pop(st, RN_TIME_EVENT, upto, &t, &err)) == RN_OK) {
        ck_assert_int_ge(t.time, last);
        last = t.time;
        size_t len;
        const char *key = rn__state_key(st, &len);
        char kb[16];
        ck_assert_uint_lt(len, sizeof(kb));
        memcpy(kb, key, len);
        kb[len] = '\0';
        int k = atoi(kb + 1);
        ck_assert_int_lt(k, n);
        ck_assert_uint_eq(t.nslen, 1);
        int r = t.ns[0] - '0';
        ck_assert(r >= 0 && r < 6);
        ck_assert_int_eq(t.time, 1000 * (r % 4) + k % 50);
        seen[k * 6 + r]++;
        ck_assert_int_eq(seen[k * 6 + r], 1);
        got++;
    }
    ck_assert_int_eq(rc, RN_ENOTFOUND);
    return got;
}

static void
register_round(rn_state_t *st, int r, int from, int to)
{
    rn_error_t err = RN_ERROR_INIT;
    char ns[2] = {(char)('0' + r), 0};
    for (int k = from; k < to; k++) {
        set_key(st, k);
        ck_assert_rn_ok(
            rn__timer_register(st, RN_TIME_EVENT, 1000 * (r % 4) + k % 50, ns, 1, &err), &err);
    }
}

/* Counts the timer keys RocksDB holds of times before `before`. */
typedef struct tcount {
    int64_t before;
    int n;
} tcount_t;

static bool
count_timer_key(void *ctx, const uint8_t *key, size_t len)
{
    tcount_t *c = ctx;
    if (len < RN__RDB_TIMER_HEAD || key[0] != RN__RDB_TIMER_TAG)
        return true;
    int64_t time = (int64_t)(rn__rdb_load_be64(key + 2) ^ (1ULL << 63));
    c->n += time < c->before;
    return true;
}

/* RocksDB: timers spilled to RocksDB load while a checkpoint's part has
 * not run (it runs only once they are loaded), without waiting for it: those the
 * checkpoint took over (gathered, not in RocksDB yet) merge with
 * RocksDB's, and due ones gathered after the barrier come too, each timer
 * once and in time order; once the part is done, the deferred range
 * deletes take the loaded ones out of RocksDB and the gathered ones that
 * were loaded are never written; the first snapshot holds what was there
 * at its barrier, a second one what was left. */
START_TEST(test_snapshot_timer_loads_during_finish)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600];
    snap_dirs(snap, 2, "snapt");
    enum { N = 20000 };
    int *seen = calloc(N * 6, sizeof(int));
    ck_assert_ptr_nonnull(seen);
    rn_state_t *st = open_state(1, 64 << 10, NULL);
    handles_t h;
    register_all(st, &h);
    /* Round 1 (times 1000..1049): most spill; the last ones are still
     * gathered when the snapshot takes them. */
    register_round(st, 1, 0, N);
    uint64_t spilled = st->spill_writes;
    ck_assert_uint_gt(spilled, N / 2);
    late_fin_t lf = {.rc = RN_OK};
    atomic_init(&lf.release, false);
    atomic_init(&lf.timed_out, false);
    atomic_init(&lf.done, false);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], &lf.fin, &err), &err);
    ck_assert_ptr_nonnull(lf.fin.fn);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, late_fin_main, &lf), 0);
    /* After the barrier: round 2 (times 2000..2049), and round 5 (times
     * of round 1) for some keys, due with round 1 and gathered: neither
     * is in RocksDB. */
    register_round(st, 2, 0, N);
    register_round(st, 5, 0, N / 4);
    ck_assert_uint_ge(st->spill_writes, spilled + N + N / 4);
    int got = pop_all(st, 1999, seen, N);
    atomic_store(&lf.release, true);
    ck_assert_msg(!atomic_load(&lf.timed_out), "timer loads waited for the checkpoint");
    ck_assert_int_eq(got, N + N / 4);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(seen[k * 6 + 1], 1);
        ck_assert_int_eq(seen[k * 6 + 5], k < N / 4);
        ck_assert_int_eq(seen[k * 6 + 2], 0);
    }
    while (rn__state_tick(st, false))
        ;
    pthread_join(th, NULL);
    ck_assert_int_eq(lf.rc, RN_OK);
    /* The second snapshot writes what is deferred first. */
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], NULL, &err), &err);
    tcount_t c = {2000, 0};
    ck_assert_rn_ok(rn__rdb_scan_keys(st->be, count_timer_key, &c, &err), &err);
    ck_assert_msg(c.n == 0, "%d loaded timers left in RocksDB", c.n);
    c.before = INT64_MAX;
    ck_assert_rn_ok(rn__rdb_scan_keys(st->be, count_timer_key, &c, &err), &err);
    ck_assert_int_gt(c.n, N / 2); /* round 2, spilled */
    register_round(st, 3, 0, N / 2);
    memset(seen, 0, N * 6 * sizeof(int));
    ck_assert_int_eq(pop_all(st, INT64_MAX, seen, N), N + N / 2);
    rn__state_destroy(st);

    /* The first snapshot: round 1 alone, as at its barrier; the second:
     * round 2. */
    for (int i = 0; i < 2; i++) {
        rn_state_t *rs = open_state(1, 64 << 10, snap[i]);
        handles_t rh;
        register_all(rs, &rh);
        ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
        memset(seen, 0, N * 6 * sizeof(int));
        ck_assert_int_eq(pop_all(rs, INT64_MAX, seen, N), N);
        for (int k = 0; k < N; k++)
            ck_assert_int_eq(seen[k * 6 + (i == 0 ? 1 : 2)], 1);
        rn__state_destroy(rs);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
    free(seen);
}
END_TEST

/* Counts the timer keys RocksDB holds with times in [lo, hi). */
static int
timers_in_db(rn_state_t *st, int64_t lo, int64_t hi)
{
    rn_error_t err = RN_ERROR_INIT;
    tcount_t a = {lo, 0}, b = {hi, 0};
    ck_assert_rn_ok(rn__rdb_scan_keys(st->be, count_timer_key, &a, &err), &err);
    ck_assert_rn_ok(rn__rdb_scan_keys(st->be, count_timer_key, &b, &err), &err);
    return b.n - a.n;
}

/* RocksDB: once a job takes checkpoints, spilled timers gather until the
 * next checkpoint, which writes them (not the task, at every 8192); a
 * load of timers before it writes them first and finds them; a restore
 * of that checkpoint has them. */
START_TEST(test_snapshot_timers_wait_for_checkpoint)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600];
    snap_dirs(snap, 2, "snapw");
    enum { N = 40000, M = 10000 };
    int *seen = calloc(N * 6, sizeof(int));
    ck_assert_ptr_nonnull(seen);
    rn_state_t *st = open_state(1, 16 << 20, NULL);
    handles_t h;
    register_all(st, &h);
    /* Round 1 (times 1000..1049) spills: later times go to the store. */
    register_round(st, 1, 0, N);
    ck_assert_uint_gt(st->spill_writes, 0);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    /* Round 2 (2000..2049), more than a batch of 8192: gathered, not
     * written. */
    uint64_t w0 = st->spill_writes;
    register_round(st, 2, 0, M);
    ck_assert_uint_ge(st->spill_writes, w0 + M);
    ck_assert_int_eq(timers_in_db(st, 2000, 3000), 0);
    /* The next checkpoint writes them. */
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], NULL, &err), &err);
    ck_assert_int_eq(timers_in_db(st, 2000, 3000), M);
    /* Round 3 (3000..3049) gathers again; a load writes it first and
     * finds every timer once, in time order. */
    register_round(st, 3, 0, M);
    ck_assert_int_eq(timers_in_db(st, 3000, 4000), 0);
    ck_assert_int_eq(pop_all(st, INT64_MAX, seen, N), N + 2 * M);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(seen[k * 6 + 1], 1);
        ck_assert_int_eq(seen[k * 6 + 2], k < M);
        ck_assert_int_eq(seen[k * 6 + 3], k < M);
    }
    rn__state_destroy(st);
    /* The second checkpoint holds rounds 1 and 2. */
    rn_state_t *rs = open_state(1, 16 << 20, snap[1]);
    handles_t rh;
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    memset(seen, 0, N * 6 * sizeof(int));
    ck_assert_int_eq(pop_all(rs, INT64_MAX, seen, N), N + M);
    for (int k = 0; k < N; k++)
        ck_assert_int_eq(seen[k * 6 + 2], k < M);
    rn__state_destroy(rs);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
    free(seen);
}
END_TEST

static int64_t
get_i64(rn_vstate_t *v, const char *ns, int k, rn_code_t *rcp)
{
    rn_error_t err = RN_ERROR_INIT;
    const void *val;
    size_t len;
    int64_t x = INT64_MIN;
    rn_code_t rc = rn__vstate_get(v, ns, strlen(ns), &val, &len, &err);
    ck_assert_msg(rc == RN_OK || rc == RN_ENOTFOUND, "key %d: %s", k, err.msg);
    if (rc == RN_OK)
        memcpy(&x, val, 8);
    *rcp = rc;
    return x;
}

/* RocksDB: keys frozen by a checkpoint whose freeze is not over yet,
 * then evicted (clean, since the checkpoint took them): B new ones
 * (frozen as puts), A merging deltas over values RocksDB holds (frozen
 * as merges). They read back their values without waiting for the
 * checkpoint's part (its writes have not begun: a frozen key reads as
 * its record over RocksDB's value), also the B keys the filter of what
 * RocksDB holds had no room for (they go in when the freeze ends: a read
 * that trusted the filter lost their values); and the snapshot holds
 * them. */
START_TEST(test_snapshot_evicted_while_freezing)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600];
    snap_dirs(snap, 2, "snape");
    /* A: in RocksDB; B: new, more than the filter has room for (its adds
     * past that wait for the end of the freeze); C: new, to make room
     * for. */
    enum { NA = 10000, NB = 50000, NC = 200000, C0 = NA + NB };
    rn_state_t *st = open_state(1, 16 << 20, NULL);
    rn__rdb_t *rdb = st->be;
    handles_t h;
    register_all(st, &h);
    for (int k = 0; k < NA; k++) {
        set_key(st, k);
        int64_t v = k;
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
        bool fresh;
        int64_t *s = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
        ck_assert_ptr_nonnull(s);
        *s += k;
    }
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    /* Restored from it, the cache is empty. */
    rn__state_destroy(st);
    st = open_state(1, 16 << 20, snap[0]);
    rdb = st->be;
    register_all(st, &h);
    ck_assert_rn_ok(rn__state_ready(st, &err), &err);
    /* A's sums: deltas over RocksDB's values (A left the cache). */
    for (int k = 0; k < NA; k++) {
        set_key(st, k);
        bool fresh;
        int64_t *s = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
        ck_assert_ptr_nonnull(s);
        *s += 1000;
    }
    for (int k = NA; k < NA + NB; k++) {
        set_key(st, k);
        int64_t v = k;
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
    }
    late_fin_t lf = {.rc = RN_OK};
    atomic_init(&lf.release, false);
    atomic_init(&lf.timed_out, false);
    atomic_init(&lf.done, false);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], &lf.fin, &err), &err);
    ck_assert_ptr_nonnull(lf.fin.fn);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, late_fin_main, &lf), 0);
    /* Slices of the freeze until the filter ran out of room and a few
     * more: enough clean entries for a round of eviction, and more are
     * left. */
    while (rdb->cache.frz.nnew < 4000)
        ck_assert(rn__state_tick(st, false));
    /* C until a round of eviction ran: clean entries went, the freeze
     * goes on (past that, eviction would wait for the checkpoint). C's
     * values are large, so that the pool fills before the table would
     * grow (a table that doubles first asks for more than the clean
     * entries give). */
    uint64_t ev0 = rdb->cache.evicted;
    int nc = 0;
    for (; nc < NC && rdb->cache.evicted == ev0; nc++) {
        set_key(st, C0 + nc);
        int64_t v[8] = {C0 + nc};
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, v, sizeof(v), &err), &err);
    }
    ck_assert_msg(rdb->cache.evicted > ev0, "nothing was evicted");
    ck_assert_msg(rdb->cache.freezing && rdb->cache.filter.ctr != NULL && rdb->cache.frz.nnew > 0,
                  "the freeze is over or the filter off: the case is not there");
    rn_code_t rc;
    for (int k = 0; k < NA + NB; k++) {
        set_key(st, k);
        int64_t v = get_i64(h.v, "", k, &rc);
        ck_assert_msg(rc == RN_OK && v == k, "key %d: %s %lld", k,
                      rc == RN_OK ? "value" : "lost", (long long)v);
        if (k < NA) {
            int64_t s = get_i64(h.sum, "w", k, &rc);
            ck_assert_msg(rc == RN_OK && s == k + 1000, "key %d: sum %lld", k, (long long)s);
        }
    }
    atomic_store(&lf.release, true);
    ck_assert_msg(!atomic_load(&lf.timed_out), "reads of frozen keys waited for the checkpoint");
    while (rn__state_tick(st, false))
        ;
    pthread_join(th, NULL);
    ck_assert_int_eq(lf.rc, RN_OK);
    rn__state_destroy(st);
    rn_state_t *rs = open_state(1, 16 << 20, snap[1]);
    handles_t rh;
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    for (int k = 0; k < C0 + nc; k += 7) {
        set_key(rs, k);
        int64_t v = get_i64(rh.v, "", k, &rc);
        ck_assert_int_eq(rc, k < NA + NB ? RN_OK : RN_ENOTFOUND);
        if (rc == RN_OK)
            ck_assert_int_eq(v, k);
        if (k < NA)
            ck_assert_int_eq(get_i64(rh.sum, "w", k, &rc), k + 1000);
    }
    rn__state_destroy(rs);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* RocksDB: windows that a checkpoint wrote and that were then taken
 * (fired) leave the cache once the next checkpoint has taken their
 * deletes, rather than stay as known-absent entries: after ten rounds of
 * a thousand windows the cache holds about one round's, and a taken
 * window reads as absent. */
START_TEST(test_snapshot_deleted_leave_cache)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[256], cmd[600];
    const char *tmp = getenv("RN_TEST_TMP");
    enum { K = 1000, ROUNDS = 10 };
    rn_state_t *st = open_state(1, 64 << 20, NULL);
    rn__rdb_t *rdb = st->be;
    handles_t h;
    register_all(st, &h);
    for (int r = 0; r < ROUNDS; r++) {
        char ns[8];
        int nl = snprintf(ns, sizeof(ns), "w%d", r);
        for (int k = 0; k < K; k++) {
            set_key(st, k);
            bool fresh;
            int64_t *v = rn__vstate_ref_part(h.sum, ns, (size_t)nl, 8, &fresh, &err);
            ck_assert_ptr_nonnull(v);
            *v += k;
        }
        /* The windows reach RocksDB; then they fire. */
        snprintf(snap, sizeof(snap), "%s/snapd-%d-%d", tmp ? tmp : "/tmp", r, (int)getpid());
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_rn_ok(rn__state_snapshot(st, snap, NULL, &err), &err);
        ck_assert_int_eq(system(cmd), 0);
        for (int k = 0; k < K; k++) {
            set_key(st, k);
            int64_t v;
            size_t len;
            ck_assert_rn_ok(rn__vstate_take(h.sum, ns, (size_t)nl, &v, 8, &len, &err), &err);
            ck_assert_int_eq(v, k);
        }
    }
    ck_assert_msg(rdb->cache.count <= 2 * K, "%zu entries cached after %d rounds of %d windows",
                  rdb->cache.count, ROUNDS, K);
    for (int k = 0; k < K; k++) {
        set_key(st, k);
        rn_code_t rc;
        (void)get_i64(h.sum, "w0", k, &rc);
        ck_assert_int_eq(rc, RN_ENOTFOUND);
        (void)get_i64(h.sum, "w9", k, &rc);
        ck_assert_int_eq(rc, RN_ENOTFOUND);
    }
    rn__state_destroy(st);
}
END_TEST

static void *
fin_main(void *arg)
{
    late_fin_t *lf = arg;
    rn_error_t err = RN_ERROR_INIT;
    lf->rc = lf->fin.fn(lf->fin.ctx, true, &err);
    atomic_store(&lf->done, true);
    return NULL;
}

/* The in-memory timers of a snapshot are written by its finish from the
 * nodes as they were: timers popped, deleted and added after the
 * snapshot and before the finish (whose memory a free list would hand to
 * the new ones) leave the restored timers as they were at the snapshot. */
START_TEST(test_snapshot_timers_pinned)
{
    int b = _i;
    rn_error_t err = RN_ERROR_INIT;
    char snap[256], cmd[600];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(snap, sizeof(snap), "%s/snapt-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap);
    ck_assert_int_eq(system(cmd), 0);
    rn_state_t *st = open_state(b, 64 << 20, NULL);
    handles_t h;
    register_all(st, &h);
    for (int k = 0; k < NKEYS; k++) {
        set_key(st, k);
        ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, k % 50, "t", 1, &err), &err);
        ck_assert_rn_ok(rn__timer_register(st, RN_TIME_PROCESSING, 100 + k % 7, "p", 1, &err),
                        &err);
    }
    late_fin_t lf = {.rc = RN_OK};
    atomic_init(&lf.release, false);
    atomic_init(&lf.timed_out, false);
    atomic_init(&lf.done, false);
    ck_assert_rn_ok(rn__state_snapshot(st, snap, &lf.fin, &err), &err);
    ck_assert_ptr_nonnull(lf.fin.fn);
    /* After the snapshot: pops, deletes, and new timers of other times. */
    rn_timer_t t;
    int popped = 0;
    while (rn__timer_pop(st, RN_TIME_EVENT, 24, &t, &err) == RN_OK)
        popped++;
    ck_assert_int_eq(popped, NKEYS / 2);
    for (int k = 0; k < NKEYS; k += 3) {
        set_key(st, k);
        ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_PROCESSING, 100 + k % 7, "p", 1, &err),
                        &err);
    }
    for (int k = 0; k < NKEYS; k++) {
        set_key(st, k + NKEYS);
        ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, 5000 + k, "x", 1, &err), &err);
    }
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fin_main, &lf), 0);
    while (!atomic_load(&lf.done))
        (void)rn__state_tick(st, false);
    pthread_join(th, NULL);
    ck_assert_int_eq(lf.rc, RN_OK);
    rn__state_destroy(st);

    rn_state_t *rs = open_state(b, 64 << 20, snap);
    handles_t rh;
    register_all(rs, &rh);
    ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
    for (int d = 0; d < 2; d++) {
        int n = 0;
        while (rn__timer_pop(rs, (rn_time_domain_t)d, INT64_MAX, &t, &err) == RN_OK) {
            size_t len;
            const char *key = rn__state_key(rs, &len);
            char buf[16];
            ck_assert_uint_lt(len, sizeof(buf));
            memcpy(buf, key, len);
            buf[len] = '\0';
            int k = atoi(buf + 1);
            ck_assert_int_lt(k, NKEYS);
            ck_assert_int_eq(t.time, d == RN_TIME_EVENT ? k % 50 : 100 + k % 7);
            ck_assert_int_eq(t.nslen, 1);
            ck_assert_int_eq(t.ns[0], d == RN_TIME_EVENT ? 't' : 'p');
            n++;
        }
        ck_assert_int_eq(n, NKEYS);
    }
    rn__state_destroy(rs);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_snapshot_mismatch)
{
    int b = _i;
    rn_error_t err = RN_ERROR_INIT;
    char snap[256];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(snap, sizeof(snap), "%s/snapm-%d-%d", tmp ? tmp : "/tmp", _i, (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap);
    ck_assert_int_eq(system(cmd), 0);
    rn_state_t *st = open_state(b, 0, NULL);
    handles_t h;
    register_all(st, &h);
    write_round(st, &h, 0);
    ck_assert_rn_ok(rn__state_snapshot(st, snap, NULL, &err), &err);
    rn__state_destroy(st);

    /* Registered under other names: refused, naming both. */
    rn_state_t *rs = open_state(b, 0, snap);
    ck_assert_ptr_nonnull(rn__state_value(rs, "other", &err));
    ck_assert_int_eq(rn__state_ready(rs, &err), RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "'v'") && strstr(err.msg, "'other'"), "%s", err.msg);
    rn__state_destroy(rs);

    /* A damaged handle file: refused with its name, before any use. */
    char path[300];
    snprintf(path, sizeof(path), "%s/handle", snap);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 12, SEEK_SET); /* the first state's... registry count bytes */
    fputc(0x7f, f);
    fclose(f);
    rn_state_options_t opts = {.backend = backends[b], .owner = "snap#0", .restore_dir = snap};
    ck_assert_ptr_null(rn__state_new(&opts, &err));
    ck_assert_msg(strstr(err.msg, "handle"), "%s", err.msg);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

#define NCOW 10000 /* more than one tick freezes */

static void
cow_get(rn_state_t *st, handles_t *h, int k, bool *present, int64_t *v, int64_t *sum)
{
    rn_error_t err = RN_ERROR_INIT;
    set_key(st, k);
    const void *val;
    size_t len;
    rn_code_t rc = rn__vstate_get(h->v, "", 0, &val, &len, &err);
    ck_assert_msg(rc == RN_OK || rc == RN_ENOTFOUND, "%s", err.msg);
    *present = rc == RN_OK;
    if (rc == RN_OK)
        memcpy(v, val, 8);
    ck_assert_rn_ok(rn__vstate_get(h->sum, "w", 1, &val, &len, &err), &err);
    memcpy(sum, val, 8);
}

/* What state holds after the changes of the test below up to the
 * barrier (after false) or after it (true). */
static void
cow_want(int k, bool after, bool *present, int64_t *v, int64_t *sum)
{
    *present = k % 7 != 0;
    *v = (int64_t)k * 1000 + 1;
    *sum = k + (k % 2 == 0);
    if (!after)
        return;
    if (k % 3 == 0) {
        *present = true;
        *v = (int64_t)k * 1000 + 2;
    }
    if (k % 5 == 0)
        *present = false;
    *sum += k % 4 == 0 ? 100 : 0;
}

/* RocksDB: the freeze runs in slices after the barrier, and changes that
 * come before it reached an entry (puts, deletes, folds of a merging
 * state) must copy the entry's value first: the snapshot holds the values
 * of the barrier, the state goes on with the new ones. _i: 0 the cache
 * holds all (the changes copy entries first: fails without that), 1 it
 * evicts (eviction finds no clean entry and finishes the freeze first). */
START_TEST(test_snapshot_copy_on_write)
{
    int64_t memory = _i == 0 ? 0 : (1 << 20);
    rn_error_t err = RN_ERROR_INIT;
    char snap[3][256], cmd[600];
    const char *tmp = getenv("RN_TEST_TMP");
    for (int i = 0; i < 3; i++) {
        snprintf(snap[i], sizeof(snap[i]), "%s/snapc-%d-%d-%d", tmp ? tmp : "/tmp", _i, i,
                 (int)getpid());
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
    rn_state_t *st = open_state(1, memory, NULL);
    handles_t h;
    register_all(st, &h);
    for (int k = 0; k < NCOW; k++) {
        set_key(st, k);
        int64_t v = (int64_t)k * 1000;
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
        bool fresh;
        int64_t *sp = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
        ck_assert_msg(sp != NULL, "%s", err.msg);
        *sp += k;
    }
    /* Finished at once, on this thread. */
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    for (int k = 0; k < NCOW; k++) {
        set_key(st, k);
        int64_t v = (int64_t)k * 1000 + 1;
        ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
        if (k % 7 == 0)
            ck_assert_rn_ok(rn__vstate_clear(h.v, "", 0, &err), &err);
        if (k % 2 == 0) {
            bool fresh;
            int64_t *sp = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
            ck_assert_msg(sp != NULL, "%s", err.msg);
            *sp += 1;
        }
    }
    late_fin_t lf = {.rc = RN_OK};
    atomic_init(&lf.release, false);
    atomic_init(&lf.timed_out, false);
    atomic_init(&lf.done, false);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], &lf.fin, &err), &err);
    ck_assert_ptr_nonnull(lf.fin.fn);
    pthread_t th;
    /* The asynchronous part waits for the freeze's slices on this thread
     * (and eviction, _i 1, may wait for it): it runs beside the changes. */
    ck_assert_int_eq(pthread_create(&th, NULL, fin_main, &lf), 0);
    ck_assert(rn__state_tick(st, false)); /* a slice, not all */
    for (int k = 0; k < NCOW; k++) {
        set_key(st, k);
        if (k % 3 == 0) {
            int64_t v = (int64_t)k * 1000 + 2;
            ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
        }
        if (k % 5 == 0)
            ck_assert_rn_ok(rn__vstate_clear(h.v, "", 0, &err), &err);
        if (k % 4 == 0) {
            bool fresh;
            int64_t *sp = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
            ck_assert_msg(sp != NULL, "%s", err.msg);
            *sp += 100;
        }
    }
    for (int k = 0; k < NCOW; k++) {
        bool p, wp;
        int64_t v = 0, sum, wv, wsum;
        cow_get(st, &h, k, &p, &v, &sum);
        cow_want(k, true, &wp, &wv, &wsum);
        ck_assert_int_eq(p, wp);
        if (p)
            ck_assert_int_eq(v, wv);
        ck_assert_int_eq(sum, wsum);
    }
    while (rn__state_tick(st, false))
        ;
    pthread_join(th, NULL);
    ck_assert_int_eq(lf.rc, RN_OK);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[2], NULL, &err), &err);
    rn__state_destroy(st);

    for (int i = 1; i < 3; i++) {
        rn_state_t *rs = open_state(1, 0, snap[i]);
        handles_t rh;
        register_all(rs, &rh);
        ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
        for (int k = 0; k < NCOW; k++) {
            bool p, wp;
            int64_t v = 0, sum, wv, wsum;
            cow_get(rs, &rh, k, &p, &v, &sum);
            cow_want(k, i == 2, &wp, &wv, &wsum);
            ck_assert_msg(p == wp, "snapshot %d, key %d: present %d, want %d", i, k, p, wp);
            if (p)
                ck_assert_msg(v == wv, "snapshot %d, key %d: %lld, want %lld", i, k,
                              (long long)v, (long long)wv);
            ck_assert_msg(sum == wsum, "snapshot %d, key %d: sum %lld, want %lld", i, k,
                          (long long)sum, (long long)wsum);
        }
        rn__state_destroy(rs);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* RocksDB: a merging state's delta frozen by a checkpoint whose writes
 * have not begun, read through the path a key that left the cache takes
 * (rn__rdb_get_cached: RocksDB's value, the frozen delta folded into it).
 * The delta sits after its key in the frozen record, at any byte: the
 * merge function (sum_merge, which reads in place and checks) is handed
 * aligned values all the same, and the sums are right. */
START_TEST(test_snapshot_frozen_delta_read)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600];
    snap_dirs(snap, 2, "snapfd");
    enum { N = 2000 };
    rn_state_t *st = open_state(1, 16 << 20, NULL);
    handles_t h;
    register_all(st, &h);
    for (int k = 0; k < N; k++) {
        set_key(st, k);
        bool fresh;
        int64_t *s = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
        ck_assert_ptr_nonnull(s);
        *s += k;
    }
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    rn__state_destroy(st);
    /* Restored: RocksDB holds the sums, the cache nothing. */
    st = open_state(1, 16 << 20, snap[0]);
    rn__rdb_t *rdb = st->be;
    register_all(st, &h);
    ck_assert_rn_ok(rn__state_ready(st, &err), &err);
    for (int k = 0; k < N; k++) {
        set_key(st, k);
        bool fresh;
        int64_t *s = rn__vstate_ref_part(h.sum, "w", 1, 8, &fresh, &err);
        ck_assert_ptr_nonnull(s);
        *s += 1000;
    }
    rn_state_finish_t fin;
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], &fin, &err), &err);
    ck_assert_ptr_nonnull(fin.fn);
    while (rn__state_tick(st, false))
        ;
    ck_assert_msg(atomic_load(&rdb->fz_state) == 0, "the checkpoint's writes began");
    int misaligned = 0;
    for (int k = 0; k < N; k++) {
        char key[16];
        int n = snprintf(key, sizeof(key), "k%d", k);
        rn__skey_t sk = {.state = h.sum->id, .kind = RN__SK_VALUE, .kg = (uint32_t)(k % 128),
                         .keylen = (uint32_t)n, .nslen = 1, .key = (const uint8_t *)key,
                         .ns = (const uint8_t *)"w"};
        uint8_t kb[64];
        size_t klen = rn__rdb_prefix(kb, sk.kg, sk.state, sk.key, sk.keylen, sk.ns, sk.nslen);
        uint64_t hash = rn__state_hash_bytes(sk);
        const uint8_t *r = rn__rdb_frozen_find(rdb, hash, kb, klen);
        ck_assert_msg(r != NULL, "key %d was not frozen", k);
        misaligned += ((uintptr_t)(r + 9 + klen) % _Alignof(int64_t)) != 0;
        char *val = NULL;
        size_t len = 0;
        ck_assert_rn_ok(rn__rdb_get_cached(rdb, hash, sk.state, kb, klen, &val, &len, &err),
                        &err);
        ck_assert_uint_eq(len, 8);
        int64_t sum;
        memcpy(&sum, val, 8);
        ck_assert_int_eq(sum, k + 1000);
        rocksdb_free(val);
    }
    ck_assert_msg(misaligned > 0, "no frozen delta was misaligned: the case is not there");
    ck_assert_rn_ok(fin.fn(fin.ctx, true, &err), &err);
    rn__state_destroy(st);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* The coordinator's side of two checkpoint parts: finishes them in the
 * order given, as it finishes the parts of one checkpoint one at a time. */
typedef struct fin_pair {
    rn_state_finish_t fin[2];
    rn_code_t rc[2];
} fin_pair_t;

static void *
fin_pair_main(void *arg)
{
    fin_pair_t *fp = arg;
    for (int i = 0; i < 2; i++) {
        rn_error_t err = RN_ERROR_INIT;
        fp->rc[i] = fp->fin[i].fn(fp->fin[i].ctx, true, &err);
    }
    return NULL;
}

/* RocksDB: two states whose tasks share one thread (fewer workers than
 * instances), both with a freeze in progress; the coordinator finishes
 * b's part first (it waits for b's freeze), and the thread blocks at a's
 * fence (it opens when the coordinator comes to a). b's freeze, which only
 * this thread may do, is done before the thread blocks: without that the
 * wait never ends (the case's timeout reports the hang). Both snapshots
 * then restore the values of their barrier. */
START_TEST(test_snapshot_shared_thread)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600], dir[256];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/snap-state-%d", tmp ? tmp : "/tmp", (int)getpid());
    snap_dirs(snap, 2, "snaps");
    static const char *const owners[2] = {"snap#0", "snap#1"};
    rn_state_t *st[2];
    handles_t h[2];
    fin_pair_t fp = {.rc = {RN_OK, RN_OK}};
    for (int s = 0; s < 2; s++) {
        rn_state_options_t opts = {.backend = "rocksdb", .dir = dir, .owner = owners[s]};
        st[s] = rn__state_new(&opts, &err);
        ck_assert_msg(st[s] != NULL, "%s", err.msg);
        register_all(st[s], &h[s]);
        for (int k = 0; k < NCOW; k++) {
            set_key(st[s], k);
            int64_t v = (int64_t)k * 10 + s;
            ck_assert_rn_ok(rn__vstate_put(h[s].v, "", 0, &v, 8, &err), &err);
        }
        /* fin[0] is b's (st[1]), finished first. */
        ck_assert_rn_ok(rn__state_snapshot(st[s], snap[s], &fp.fin[1 - s], &err), &err);
        ck_assert_ptr_nonnull(fp.fin[1 - s].fn);
        ck_assert(((rn__rdb_t *)st[s]->be)->cache.freezing);
    }
    /* Changes after the barrier, which the snapshots must not hold. */
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < NCOW; k += 3) {
            set_key(st[s], k);
            int64_t v = -1;
            ck_assert_rn_ok(rn__vstate_put(h[s].v, "", 0, &v, 8, &err), &err);
        }
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fin_pair_main, &fp), 0);
    /* What every access of a's task to RocksDB does meanwhile. */
    rn__rdb_fence((rn__rdb_t *)st[0]->be);
    ck_assert(!((rn__rdb_t *)st[1]->be)->cache.freezing);
    pthread_join(th, NULL);
    ck_assert_int_eq(fp.rc[0], RN_OK);
    ck_assert_int_eq(fp.rc[1], RN_OK);
    for (int s = 0; s < 2; s++) {
        while (rn__state_tick(st[s], false))
            ;
        rn__state_destroy(st[s]);
    }

    for (int s = 0; s < 2; s++) {
        rn_state_t *rs = open_state(1, 0, snap[s]);
        handles_t rh;
        register_all(rs, &rh);
        ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
        for (int k = 0; k < NCOW; k++) {
            set_key(rs, k);
            const void *val;
            size_t len;
            ck_assert_rn_ok(rn__vstate_get(rh.v, "", 0, &val, &len, &err), &err);
            int64_t v;
            memcpy(&v, val, 8);
            ck_assert_msg(v == (int64_t)k * 10 + s, "snapshot %d, key %d: %lld", s, k,
                          (long long)v);
        }
        rn__state_destroy(rs);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[s]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* The latest time of the in-memory timers of domain d. */
static int64_t
mem_timers_max(rn_state_t *st, int d)
{
    int64_t m = INT64_MIN;
    for (uint32_t i = 0; i < st->timers[d].nheap; i++) {
        int64_t t = st->timers[d].bk[st->timers[d].bheap[i]].time;
        m = t > m ? t : m;
    }
    return m;
}

/* RocksDB: a time whose timers alone pass the memory bound is spilled in
 * part (a tumbling window's keys all end at once): memory keeps some of
 * its timers, the store the rest. A snapshot taken so restores (the
 * restore refused it: "an in-memory timer at or after the spilled ones"),
 * its handle passes the check `checkpoints --verify` runs, and the
 * restored state pops every timer once, in time order; likewise after a
 * pop that loaded part of the stored ones back. */
START_TEST(test_snapshot_spilled_in_part)
{
    rn_error_t err = RN_ERROR_INIT;
    char snap[2][256], cmd[600], path[300];
    snap_dirs(snap, 2, "snapsp");
    enum { N = 40000, EARLY = 500 };
    rn_state_t *st = open_state(1, 4 << 20, NULL);
    handles_t h;
    register_all(st, &h);
    /* N keys at time 5000 (one bucket: the spill cuts it), then EARLY of
     * them at 4000 as well (before the stored ones: memory). */
    for (int k = 0; k < N; k++) {
        set_key(st, k);
        ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, 5000, "w", 1, &err), &err);
    }
    ck_assert_msg(mem_timers_max(st, 0) == 5000, "time 5000 was not spilled in part");
    for (int k = 0; k < EARLY; k++) {
        set_key(st, k);
        ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, 4000, "e", 1, &err), &err);
    }
    ck_assert_msg(st->spilled[0] > 0 && st->spill_min[0] == 5000,
                  "nothing spilled: the case is not there (%llu spilled)",
                  (unsigned long long)st->spilled[0]);
    ck_assert_msg(mem_timers_max(st, 0) == 5000, "time 5000 left memory whole");
    ck_assert_rn_ok(rn__state_snapshot(st, snap[0], NULL, &err), &err);
    /* Pops that load part of the store back, then a second snapshot. */
    rn_timer_t t;
    for (int i = 0; i < EARLY + 100; i++)
        ck_assert_rn_ok(rn__timer_pop(st, RN_TIME_EVENT, INT64_MAX, &t, &err), &err);
    ck_assert_rn_ok(rn__state_snapshot(st, snap[1], NULL, &err), &err);
    rn__state_destroy(st);

    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/handle", snap[i]);
        ck_assert_rn_ok(rn__state_check_file(path, "handle", &err), &err);
        rn_state_t *rs = open_state(1, 4 << 20, snap[i]);
        handles_t rh;
        register_all(rs, &rh);
        ck_assert_rn_ok(rn__state_ready(rs, &err), &err);
        char *seen = rn_xcalloc(2 * N, 1);
        int n = 0;
        int64_t last = INT64_MIN;
        rn_code_t rc;
        while ((rc = rn__timer_pop(rs, RN_TIME_EVENT, INT64_MAX, &t, &err)) == RN_OK) {
            size_t len;
            const char *key = rn__state_key(rs, &len);
            char kb[16];
            ck_assert_uint_lt(len, sizeof(kb));
            memcpy(kb, key, len);
            kb[len] = '\0';
            int k = atoi(kb + 1);
            ck_assert(k >= 0 && k < N);
            ck_assert_int_ge(t.time, last);
            last = t.time;
            ck_assert_int_eq(t.time, t.ns[0] == 'e' ? 4000 : 5000);
            int slot = 2 * k + (t.ns[0] == 'e');
            ck_assert_msg(seen[slot] == 0, "key %d's timer at %lld popped twice", k,
                          (long long)t.time);
            seen[slot] = 1;
            n++;
        }
        ck_assert_int_eq(rc, RN_ENOTFOUND);
        ck_assert_int_eq(n, i == 0 ? N + EARLY : N - 100);
        rn_free(seen);
        rn__state_destroy(rs);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* Writes a handle file of no states whose domain 0 has one in-memory
 * timer at time and a spilled one from spill_min on (INT64_MAX: none). */
static void
write_handle(const char *path, int64_t spill_min, int64_t time)
{
    rn__snapio_t io;
    rn_error_t err = RN_ERROR_INIT;
    unlink(path);
    ck_assert_rn_ok(rn__snapio_open(&io, path, true, "RNSH", 1, NULL, &err), &err);
    rn__snapio_u32(&io, 0);
    rn__snapio_u64(&io, (uint64_t)spill_min);
    rn__snapio_u64(&io, spill_min == INT64_MAX ? 0 : 1);
    rn__snapio_u64(&io, (uint64_t)INT64_MAX);
    rn__snapio_u64(&io, 0);
    uint8_t rec[18 + 1];
    rec[0] = 0;
    rn__snapio_le64(rec + 1, (uint64_t)time);
    rn__snapio_le32(rec + 9, 3);
    rn__snapio_le32(rec + 13, 1);
    rec[17] = 0;
    rec[18] = 'a';
    rn__snapio_bytes(&io, rec, sizeof(rec));
    rn__snapio_u8(&io, 0xff);
    rn__snapio_u64(&io, 1);
    ck_assert_rn_ok(rn__snapio_close(&io, &err), &err);
}

/* Makes meta name the snapshot files of dir (relative to root: rel) as
 * the checkpoint store does, each with its size and XXH3-128. */
static json_t *
meta_of(const char *root, const char *rel, const char *const *files, int n)
{
    json_t *state = json_array();
    for (int i = 0; i < n; i++) {
        char full[600], relpath[300], hex[33];
        snprintf(relpath, sizeof(relpath), "%s/%s", rel, files[i]);
        snprintf(full, sizeof(full), "%s/%s", root, relpath);
        XXH128_hash_t hash;
        uint64_t size;
        rn_error_t err = RN_ERROR_INIT;
        ck_assert_rn_ok(rn__fs_hash_file(full, &hash, &size, &err), &err);
        rn__fs_hash_hex(hash, hex);
        json_array_append_new(state, json_pack("{s:s, s:s, s:I, s:s}", "as", files[i], "path",
                                               relpath, "size", (json_int_t)size, "xxh3", hex));
    }
    return json_pack("{s:[{s:s, s:i, s:o}]}", "parts", "node", "w", "instance", 0, "state",
                     state);
}

/* A checkpoint whose files all match their sizes and checksums but that
 * restore refuses (a handle with an in-memory timer after the earliest
 * spilled one; a memory table cut short) is refused by the deep check of
 * `checkpoints --verify` as well, with restore's message; the same
 * checkpoint with a timer at the earliest spilled time passes both. */
START_TEST(test_snapshot_verify_as_restore)
{
    rn_error_t err = RN_ERROR_INIT;
    char root[256], dir[300], path[400], cmd[600];
    snap_dirs(&root, 1, "snapv");
    ck_assert_int_eq(mkdir(root, 0700), 0);
    snprintf(dir, sizeof(dir), "%s/w#0", root);
    /* A memory snapshot of one value, its handle replaced. */
    rn_state_t *st = open_state(0, 0, NULL);
    handles_t h;
    register_all(st, &h);
    set_key(st, 1);
    int64_t v = 7;
    ck_assert_rn_ok(rn__vstate_put(h.v, "", 0, &v, 8, &err), &err);
    ck_assert_rn_ok(rn__state_snapshot(st, dir, NULL, &err), &err);
    rn__state_destroy(st);
    static const char *const files[] = {"handle", "mem"};
    snprintf(path, sizeof(path), "%s/handle", dir);
    /* Case 0: no spilled timers, a timer in memory: both accept. Case 1:
     * a timer after the earliest spilled one; case 2: spilled timers,
     * which the memory backend never has: both refuse. */
    static const int64_t smins[] = {INT64_MAX, 100, 100};
    static const int64_t times[] = {100, 101, 100};
    static const char *const why[] = {NULL, "after the earliest spilled", "never has"};
    for (int c = 0; c < 3; c++) {
        write_handle(path, smins[c], times[c]);
        json_t *meta = meta_of(root, "w#0", files, 2);
        rn_error_t e1 = RN_ERROR_INIT, e2 = RN_ERROR_INIT;
        ck_assert_rn_ok(rn__ckpt_verify(root, meta, &e1), &e1);
        rn_code_t vrc = rn__ckpt_verify_deep(root, meta, &e1);
        rn_state_options_t opts = {.backend = "memory", .owner = "w#0", .restore_dir = dir};
        rn_state_t *rs = rn__state_new(&opts, &e2);
        if (c > 0) {
            ck_assert_ptr_null(rs);
            ck_assert_int_eq(vrc, RN_ECORRUPT);
            ck_assert_msg(strstr(e1.msg, "w#0") && strstr(e1.msg, why[c]), "%s", e1.msg);
            ck_assert_int_eq(e2.code, RN_ECORRUPT);
        } else {
            ck_assert_msg(vrc == RN_OK, "%s", e1.msg);
            ck_assert_msg(rs != NULL, "%s", e2.msg);
            rn__state_destroy(rs);
        }
        json_decref(meta);
    }
    /* The memory table one byte short, its checksum recomputed. */
    write_handle(path, INT64_MAX, 100);
    snprintf(path, sizeof(path), "%s/mem", dir);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size - 1), 0);
    json_t *meta = meta_of(root, "w#0", files, 2);
    rn_error_t e1 = RN_ERROR_INIT, e2 = RN_ERROR_INIT;
    ck_assert_rn_ok(rn__ckpt_verify(root, meta, &e1), &e1);
    ck_assert_int_eq(rn__ckpt_verify_deep(root, meta, &e1), RN_ECORRUPT);
    ck_assert_msg(strstr(e1.msg, "/mem"), "%s", e1.msg);
    rn_state_options_t opts = {.backend = "memory", .owner = "w#0", .restore_dir = dir};
    ck_assert_ptr_null(rn__state_new(&opts, &e2));
    json_decref(meta);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *
snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_snapshot_restore, 0, 4);
    tcase_add_loop_test(tc, test_snapshot_mismatch, 0, 2);
    tcase_add_loop_test(tc, test_snapshot_twice, 0, 3);
    tcase_add_test(tc, test_snapshot_reads_during_finish);
    tcase_add_test(tc, test_snapshot_timers_wait_for_checkpoint);
    tcase_add_test(tc, test_snapshot_timer_loads_during_finish);
    tcase_add_test(tc, test_snapshot_evicted_while_freezing);
    tcase_add_test(tc, test_snapshot_deleted_leave_cache);
    tcase_add_loop_test(tc, test_snapshot_timers_pinned, 0, 2);
    tcase_add_loop_test(tc, test_snapshot_copy_on_write, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("shared");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_snapshot_shared_thread);
    suite_add_tcase(s, tc);

    tc = tcase_create("spill");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_snapshot_spilled_in_part);
    tcase_add_test(tc, test_snapshot_frozen_delta_read);
    tcase_add_test(tc, test_snapshot_verify_as_restore);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(snapshot_suite)
