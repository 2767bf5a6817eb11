/*
 * tests/unit/test_state.c: keyed state and timers (state/), run against
 * every backend in `backends` (tcase_add_loop_test): adding a backend is
 * adding its name to the table.
 */
#include "rn_check.h"
#include "state/state_int.h"

#include <unistd.h>
#include <xxhash.h>

static const char *const backends[] = {"memory", "rocksdb"};
#define NBACKENDS ((int)(sizeof(backends) / sizeof(backends[0])))

/* A backend with a bound on its memory (0: the default). */
static rn_state_t *
open_backend_mem(int i, int64_t memory)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_options_t opts = {
        .backend = backends[i], .dir = NULL, .memory_bytes = memory, .owner = "test#0"};
    char dir[256];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/state-%s-%d", tmp ? tmp : "/tmp", backends[i], (int)getpid());
    opts.dir = dir;
    rn_state_t *st = rn__state_new(&opts, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    return st;
}

static rn_state_t *
open_backend(int i)
{
    return open_backend_mem(i, 0);
}

/* Timer tests loop over 2 * NBACKENDS: each backend with its default
 * memory, then with a bound so small that the RocksDB backend spills its
 * timers to the database all the time (state.c, rocksdb_timers.c). */
#define TIMER_SMALL_MEMORY (64 << 10)
static rn_state_t *
open_timer_backend(int i)
{
    return open_backend_mem(i % NBACKENDS, i >= NBACKENDS ? TIMER_SMALL_MEMORY : 0);
}

/* With the small bound, the RocksDB backend must have spilled and loaded. */
static void
ck_spilled(rn_state_t *st, int i)
{
    if (i >= NBACKENDS && strcmp(backends[i % NBACKENDS], "rocksdb") == 0) {
        ck_assert_uint_gt(st->spill_writes, 0);
        ck_assert_uint_gt(st->spill_loads, 0);
    } else if (i >= NBACKENDS) {
        ck_assert_uint_eq(st->spill_writes, 0); /* memory: timers stay in memory */
    }
}

static void
key(rn_state_t *st, const char *k)
{
    rn__state_set_key(st, k, strlen(k), (uint32_t)(strlen(k) % 7));
}

static void
ck_value(rn_vstate_t *vs, const char *ns, const char *want)
{
    rn_error_t err = RN_ERROR_INIT;
    const void *v;
    size_t len;
    rn_code_t rc = rn__vstate_get(vs, ns, ns ? strlen(ns) : 0, &v, &len, &err);
    if (want == NULL) {
        ck_assert_int_eq(rc, RN_ENOTFOUND);
        ck_assert_str_eq(err.msg, "");
        return;
    }
    ck_assert_rn_ok(rc, &err);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert(memcmp(v, want, len) == 0);
}

static rn_code_t
put_str(rn_vstate_t *vs, const char *ns, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_code_t rc = rn__vstate_put(vs, ns, ns ? strlen(ns) : 0, v, strlen(v), &err);
    ck_assert_rn_ok(rc, &err);
    return rc;
}

/* ---- backends and registry ---- */

START_TEST(test_state_backend_names)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_options_t opts = {.backend = "redis"};
    ck_assert_ptr_null(rn__state_new(&opts, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_str_eq(err.msg, "unknown state backend 'redis' (expected memory or rocksdb)");
    opts.backend = "rocksdb";
    rn_state_t *st = rn__state_new(&opts, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    rn__state_destroy(st);
    rn__state_destroy(NULL);
}
END_TEST

START_TEST(test_state_registry)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_vstate_t *a = rn__state_value(st, "a", &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(rn__state_value(st, "a", &err), a);
    ck_assert_ptr_null(rn__state_map(st, "a", &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "state 'a' is a value state") != NULL, "%s", err.msg);
    ck_assert_ptr_null(rn__state_list(st, "a", &err));
    rn_lstate_t *l = rn__state_list(st, "l", &err);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_eq(rn__state_list(st, "l", &err), l);
    rn__state_destroy(st);
}
END_TEST

START_TEST(test_state_current_key)
{
    rn_state_t *st = open_backend(_i);
    size_t len;
    char big[3000];
    memset(big, 'x', sizeof(big));
    rn__state_set_key(st, big, sizeof(big), 99);
    ck_assert_uint_eq(rn__state_key_group(st), 99);
    const void *k = rn__state_key(st, &len);
    ck_assert_uint_eq(len, sizeof(big));
    ck_assert(memcmp(k, big, len) == 0);
    /* The key is copied: changing the caller's buffer changes nothing. */
    memset(big, 'y', sizeof(big));
    k = rn__state_key(st, &len);
    ck_assert_int_eq(((const char *)k)[0], 'x');
    rn__state_set_key(st, "ab", 2, 3);
    k = rn__state_key(st, &len);
    ck_assert_uint_eq(len, 2);
    ck_assert(memcmp(k, "ab", 2) == 0);

    /* A key set with its precomputed hash addresses the same state. */
    rn_error_t err = RN_ERROR_INIT;
    rn_vstate_t *vs = rn__state_value(st, "v", &err);
    ck_assert_rn_ok(rn__vstate_put(vs, NULL, 0, "x", 1, &err), &err);
    rn__state_set_key(st, "other", 5, 3);
    rn__state_set_key_hashed(st, "ab", 2, 3, XXH3_64bits("ab", 2));
    const void *v;
    ck_assert_rn_ok(rn__vstate_get(vs, NULL, 0, &v, &len, &err), &err);
    ck_assert_uint_eq(len, 1);
    rn__state_destroy(st);
}
END_TEST

/* ---- value state ---- */

START_TEST(test_state_value_isolation)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_vstate_t *a = rn__state_value(st, "a", &err);
    rn_vstate_t *b = rn__state_value(st, "b", &err);

    key(st, "k1");
    ck_value(a, NULL, NULL);
    put_str(a, NULL, "a-k1");
    put_str(a, "w1", "a-k1-w1");
    put_str(b, NULL, "b-k1");
    key(st, "k2");
    ck_value(a, NULL, NULL);
    ck_value(a, "w1", NULL);
    put_str(a, NULL, "a-k2");
    /* "k" + "1w" must not collide with "k1" + "w": lengths are part of the key. */
    key(st, "k");
    ck_value(a, "1w1", NULL);
    key(st, "k1");
    ck_value(a, NULL, "a-k1");
    ck_value(a, "w1", "a-k1-w1");
    ck_value(b, NULL, "b-k1");
    ck_value(b, "w1", NULL);
    key(st, "k2");
    ck_value(a, NULL, "a-k2");

    /* Overwrite with longer and shorter values, and an empty one. */
    put_str(a, NULL, "a much longer value than before, to force a move");
    ck_value(a, NULL, "a much longer value than before, to force a move");
    put_str(a, NULL, "s");
    ck_value(a, NULL, "s");
    put_str(a, NULL, "");
    ck_value(a, NULL, "");

    /* Clear one (key, ns); others stay. */
    key(st, "k1");
    ck_assert_rn_ok(rn__vstate_clear(a, "w1", 2, &err), &err);
    ck_value(a, "w1", NULL);
    ck_value(a, NULL, "a-k1");
    ck_assert_rn_ok(rn__vstate_clear(a, "w1", 2, &err), &err); /* absent: fine */

    char ns[RN_STATE_NS_MAX + 1] = {0};
    ck_assert_int_eq(rn__vstate_put(a, ns, sizeof(ns), "x", 1, &err), RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "namespace") != NULL, "%s", err.msg);
    ck_assert_rn_ok(rn__vstate_put(a, ns, RN_STATE_NS_MAX, "x", 1, &err), &err);
    rn__state_destroy(st);
}
END_TEST

typedef struct acc {
    int64_t count;
    double sum;
} acc_t;

START_TEST(test_state_value_ref)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_vstate_t *vs = rn__state_value(st, "acc", &err);
    bool created = false;

    key(st, "k");
    acc_t *a = rn__vstate_ref(vs, "w", 1, sizeof(acc_t), &created, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert(created);
    ck_assert_int_eq(a->count, 0);
    ck_assert((uintptr_t)a % 8 == 0);
    a->count = 5;
    a->sum = 2.5;

    key(st, "other");
    acc_t *o = rn__vstate_ref(vs, "w", 1, sizeof(acc_t), &created, &err);
    ck_assert(created);
    o->count = 1;

    key(st, "k");
    a = rn__vstate_ref(vs, "w", 1, sizeof(acc_t), &created, &err);
    ck_assert(!created);
    ck_assert_int_eq(a->count, 5);
    a->count++;
    const void *v;
    size_t len;
    ck_assert_rn_ok(rn__vstate_get(vs, "w", 1, &v, &len, &err), &err);
    ck_assert_uint_eq(len, sizeof(acc_t));
    ck_assert_int_eq(((const acc_t *)v)->count, 6);

    /* Size mismatch. */
    ck_assert_ptr_null(rn__vstate_ref(vs, "w", 1, sizeof(acc_t) + 8, &created, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "'acc'") != NULL, "%s", err.msg);

    /* After clear, ref creates a fresh zeroed value. */
    ck_assert_rn_ok(rn__vstate_clear(vs, "w", 1, &err), &err);
    a = rn__vstate_ref(vs, "w", 1, sizeof(acc_t), &created, &err);
    ck_assert(created);
    ck_assert_int_eq(a->count, 0);
    rn__state_destroy(st);
}
END_TEST

/* take: the value copied out (at most size bytes) and gone; other keys,
 * namespaces and states untouched. */
START_TEST(test_state_value_take)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_vstate_t *vs = rn__state_value(st, "v", &err);
    rn_vstate_t *other = rn__state_value(st, "o", &err);
    char buf[16];
    size_t len = 0;

    key(st, "k");
    put_str(vs, "w1", "hello");
    put_str(vs, "w2", "world");
    put_str(other, "w1", "keep");
    key(st, "j");
    put_str(vs, "w1", "jay");

    key(st, "k");
    memset(buf, 0, sizeof(buf));
    ck_assert_rn_ok(rn__vstate_take(vs, "w1", 2, buf, sizeof(buf), &len, &err), &err);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(buf, "hello");
    ck_value(vs, "w1", NULL);
    ck_assert_int_eq(rn__vstate_take(vs, "w1", 2, buf, sizeof(buf), &len, &err), RN_ENOTFOUND);
    ck_assert_str_eq(err.msg, "");

    /* A short buffer gets the first size bytes; len tells the full length. */
    memset(buf, 0, sizeof(buf));
    ck_assert_rn_ok(rn__vstate_take(vs, "w2", 2, buf, 3, &len, &err), &err);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(buf, "wor");
    ck_value(vs, "w2", NULL);

    ck_value(other, "w1", "keep");
    key(st, "j");
    ck_value(vs, "w1", "jay");
    rn_state_stats_t stats;
    rn__state_stats(st, &stats);
    ck_assert_uint_eq(stats.entries, 2);
    rn__state_destroy(st);
}
END_TEST

/* ---- merging value state ---- */

/* A merging state's value: a count, a sum and the round of the latest
 * update (the later one wins: dst is the older in merge). */
typedef struct mval {
    int64_t n;
    int64_t sum;
    int64_t last;
} mval_t;

static void
mval_merge(const void *ctx, void *dst, const void *src)
{
    const int64_t *scale = ctx; /* copied by the backend: checked below */
    mval_t *d = dst;
    const mval_t *s = src;
    ck_assert_int_eq(*scale, 1);
    if (s->n == 0)
        return; /* the identity */
    d->n += s->n;
    d->sum += s->sum;
    d->last = s->last;
}

static void
ck_mval(rn_vstate_t *vs, const char *ns, int64_t n, int64_t sum, int64_t last)
{
    rn_error_t err = RN_ERROR_INIT;
    const void *v;
    size_t len;
    ck_assert_rn_ok(rn__vstate_get(vs, ns, strlen(ns), &v, &len, &err), &err);
    ck_assert_uint_eq(len, sizeof(mval_t));
    mval_t m;
    memcpy(&m, v, sizeof(m));
    ck_assert_int_eq(m.n, n);
    ck_assert_int_eq(m.sum, sum);
    ck_assert_int_eq(m.last, last);
}

/* Updates through rn__vstate_ref_part fold into the stored value however
 * the backend splits them (RocksDB, with a bound of 64 kB, writes most of
 * them as Merges of deltas it never read); every other call sees whole
 * values; take and clear remove what is stored, deltas included. */
START_TEST(test_state_value_merge)
{
    enum { K = 8000, ROUNDS = 5 };
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend_mem(_i, 64 << 10);
    int64_t *scale = rn_xmalloc(sizeof(*scale));
    *scale = 1;
    rn_state_merge_t m = {
        .size = sizeof(mval_t), .merge = mval_merge, .ctx = scale, .ctxlen = sizeof(*scale)};
    rn_vstate_t *vs = rn__state_value_merge(st, "m", &m, &err);
    ck_assert_msg(vs != NULL, "%s", err.msg);
    *scale = 2; /* the backend keeps its own copy */
    rn_free(scale);
    ck_assert_ptr_eq(rn__state_value_merge(st, "m", &m, &err), vs);
    ck_assert_ptr_null(rn__state_value(st, "m", &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "merge function") != NULL, "%s", err.msg);
    rn_vstate_t *plain = rn__state_value(st, "plain", &err);
    ck_assert_ptr_null(rn__state_value_merge(st, "plain", &m, &err));

    char k[32];
    size_t nfresh = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < K; i++) {
            snprintf(k, sizeof(k), "key%d", i);
            key(st, k);
            bool fresh = false;
            mval_t *p = rn__vstate_ref_part(vs, "w", 1, sizeof(mval_t), &fresh, &err);
            ck_assert_msg(p != NULL, "%s", err.msg);
            if (r == 0)
                ck_assert(fresh); /* new: whatever the backend */
            nfresh += fresh;
            p->n++;
            p->sum += i * 10 + r;
            p->last = r;
            /* Whole values in the middle of it all. */
            if (i % 997 == 5)
                ck_mval(vs, "w", r + 1, (int64_t)(r + 1) * i * 10 + r * (r + 1) / 2, r);
        }
    }
    /* The memory backend holds everything: fresh only when new. */
    if (strcmp(backends[_i], "memory") == 0)
        ck_assert_uint_eq(nfresh, K);
    int64_t rsum = ROUNDS * (ROUNDS - 1) / 2;
    for (int i = 0; i < K; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        key(st, k);
        int64_t sum = (int64_t)ROUNDS * i * 10 + rsum;
        if (i % 3 == 0) {
            ck_mval(vs, "w", ROUNDS, sum, ROUNDS - 1);
        } else if (i % 3 == 1) {
            mval_t got;
            size_t len = 0;
            ck_assert_rn_ok(rn__vstate_take(vs, "w", 1, &got, sizeof(got), &len, &err), &err);
            ck_assert_uint_eq(len, sizeof(got));
            ck_assert_int_eq(got.n, ROUNDS);
            ck_assert_int_eq(got.sum, sum);
            ck_assert_int_eq(got.last, ROUNDS - 1);
        } else {
            ck_assert_rn_ok(rn__vstate_clear(vs, "w", 1, &err), &err);
        }
    }
    /* Churn the cache (plain values), then every key again. */
    for (int i = 0; i < K; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        key(st, k);
        put_str(plain, "x", "0123456789abcdef0123456789abcdef");
    }
    for (int i = 0; i < K; i++) {
        snprintf(k, sizeof(k), "key%d", i);
        key(st, k);
        if (i % 3 == 0) {
            ck_mval(vs, "w", ROUNDS, (int64_t)ROUNDS * i * 10 + rsum, ROUNDS - 1);
            continue;
        }
        const void *v;
        size_t len;
        ck_assert_int_eq(rn__vstate_get(vs, "w", 1, &v, &len, &err), RN_ENOTFOUND);
        /* A delta over nothing is the whole value. */
        bool fresh = false;
        mval_t *p = rn__vstate_ref_part(vs, "w", 1, sizeof(mval_t), &fresh, &err);
        ck_assert_msg(p != NULL, "%s", err.msg);
        p->n = 1;
        p->sum = 7;
        p->last = 9;
        ck_mval(vs, "w", 1, 7, 9);
    }
    rn__state_destroy(st);
}
END_TEST

/* The merging state "m" of mval_t values, read on every event-time timer
 * (rn__state_read_on_timer: RocksDB reads the values of the next timers
 * in one batch). */
static rn_vstate_t *
merge_read_on_timer(rn_state_t *st)
{
    static const int64_t one = 1;
    rn_error_t err = RN_ERROR_INIT;
    rn_state_merge_t m = {
        .size = sizeof(mval_t), .merge = mval_merge, .ctx = &one, .ctxlen = sizeof(one)};
    rn_vstate_t *vs = rn__state_value_merge(st, "m", &m, &err);
    ck_assert_msg(vs != NULL, "%s", err.msg);
    rn__state_read_on_timer(vs);
    return vs;
}

/* Round r over keys "key0".."key<k-1>": folds (1, i, r) into each one's
 * value at "w"; round 0 registers its timer at 10 + i % times. */
static void
fold_round(rn_state_t *st, rn_vstate_t *vs, int k, int r, int times)
{
    rn_error_t err = RN_ERROR_INIT;
    char kb[32];
    for (int i = 0; i < k; i++) {
        snprintf(kb, sizeof(kb), "key%d", i);
        key(st, kb);
        bool fresh;
        mval_t *p = rn__vstate_ref_part(vs, "w", 1, sizeof(mval_t), &fresh, &err);
        ck_assert_msg(p != NULL, "%s", err.msg);
        p->n++;
        p->sum += i;
        p->last = r;
        if (r == 0)
            ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, 10 + i % times, "w", 1, &err),
                            &err);
    }
}

/* Fires every timer up to 9 + times and takes its value: two rounds
 * folded, or nothing for the keys cleared (every cleared_every-th; 0:
 * none). Checks that all k fired and that the batches read what the
 * takes needed: few reads one at a time. */
static void
fire_and_check(rn_state_t *st, rn_vstate_t *vs, int k, int times, int cleared_every)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_stats_t before, after;
    rn__state_stats(st, &before);
    rn_timer_t t;
    int fired = 0;
    while (rn__timer_pop(st, RN_TIME_EVENT, 9 + times, &t, &err) == RN_OK) {
        size_t len;
        char kb[32];
        const char *pk = rn__state_key(st, &len);
        ck_assert_uint_lt(len, sizeof(kb));
        memcpy(kb, pk, len); /* not terminated */
        kb[len] = '\0';
        int i = atoi(kb + 3);
        ck_assert_int_eq(t.time, 10 + i % times);
        mval_t got;
        rn_code_t rc = rn__vstate_take(vs, t.ns, t.nslen, &got, sizeof(got), &len, &err);
        if (cleared_every > 0 && i % cleared_every == 0) {
            ck_assert_int_eq(rc, RN_ENOTFOUND);
        } else {
            ck_assert_rn_ok(rc, &err);
            ck_assert_int_eq(got.n, 2);
            ck_assert_int_eq(got.sum, 2 * i);
            ck_assert_int_eq(got.last, 1);
        }
        fired++;
    }
    ck_assert_str_eq(err.msg, "");
    ck_assert_int_eq(fired, k);
    rn__state_stats(st, &after);
    ck_assert_msg(after.reads - before.reads < (uint64_t)k / 20, "%llu single reads for %d timers",
                  (unsigned long long)(after.reads - before.reads), k);
}

/* Each timer's take finds its key's value, whole, whether it was cached,
 * partial, only in RocksDB or absent (cleared), also when the batch
 * straddles the timers of two times. */
START_TEST(test_state_read_on_timer)
{
    enum { K = 6000 };
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend_mem(_i, 64 << 10);
    rn_vstate_t *vs = merge_read_on_timer(st);
    for (int r = 0; r < 2; r++)
        fold_round(st, vs, K, r, 2);
    char k[32];
    for (int i = 0; i < K; i += 7) {
        snprintf(k, sizeof(k), "key%d", i);
        key(st, k);
        ck_assert_rn_ok(rn__vstate_clear(vs, "w", 1, &err), &err);
    }
    fire_and_check(st, vs, K, 2, 7);
    rn__state_destroy(st);
}
END_TEST

/* Timers fire over partial values (a delta over a value only RocksDB
 * holds: windows written, pushed out by other state, then updated again):
 * the batch read makes them whole, so that no take reads on its own
 * (1M such windows took 12 us a read, most of a firing). */
START_TEST(test_state_read_on_timer_partial)
{
    enum { K = 2000, CHURN = 20000 };
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend_mem(_i, 1 << 20);
    rn_vstate_t *vs = merge_read_on_timer(st);
    rn_vstate_t *plain = rn__state_value(st, "plain", &err);
    ck_assert_msg(plain != NULL, "%s", err.msg);
    fold_round(st, vs, K, 0, 1);
    /* Other state pushes the windows out of the cache (written). */
    char k[32];
    for (int i = 0; i < CHURN; i++) {
        snprintf(k, sizeof(k), "other%d", i);
        key(st, k);
        put_str(plain, "x", "0123456789abcdef0123456789abcdef");
    }
    fold_round(st, vs, K, 1, 1);
    fire_and_check(st, vs, K, 1, 0);
    rn__state_destroy(st);
}
END_TEST

/* ---- list state ---- */

typedef struct collect {
    char buf[4096];
    size_t n;
    int calls;
    int stop_after;
} collect_t;

static rn_code_t
collect_fn(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    collect_t *c = ctx;
    if (k != NULL) {
        c->n += (size_t)snprintf(c->buf + c->n, sizeof(c->buf) - c->n, "%.*s=", (int)klen,
                                 (const char *)k);
    }
    c->n += (size_t)snprintf(c->buf + c->n, sizeof(c->buf) - c->n, "%.*s;", (int)vlen,
                             (const char *)v);
    if (++c->calls == c->stop_after)
        return RN_ECANCELED;
    return RN_OK;
}

START_TEST(test_state_list)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_lstate_t *ls = rn__state_list(st, "l", &err);
    collect_t c = {.n = 0};

    key(st, "k1");
    ck_assert_rn_ok(rn__lstate_each(ls, "", 0, collect_fn, &c, &err), &err);
    ck_assert_int_eq(c.calls, 0);
    for (int i = 0; i < 100; i++) {
        char v[16];
        int n = snprintf(v, sizeof(v), "%d", i);
        ck_assert_rn_ok(rn__lstate_add(ls, "ns", 2, v, (size_t)n, &err), &err);
    }
    ck_assert_rn_ok(rn__lstate_add(ls, "ns", 2, "", 0, &err), &err);
    key(st, "k2");
    ck_assert_rn_ok(rn__lstate_add(ls, "ns", 2, "other", 5, &err), &err);
    key(st, "k1");
    ck_assert_rn_ok(rn__lstate_each(ls, "ns", 2, collect_fn, &c, &err), &err);
    ck_assert_int_eq(c.calls, 101);
    ck_assert(strncmp(c.buf, "0;1;2;3;", 8) == 0);
    ck_assert(strcmp(c.buf + c.n - 4, "99;;") == 0);

    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    ck_assert_int_eq(rn__lstate_each(ls, "ns", 2, collect_fn, &c, &err), RN_ECANCELED);
    ck_assert_str_eq(c.buf, "0;1;2;");

    ck_assert_rn_ok(rn__lstate_clear(ls, "ns", 2, &err), &err);
    memset(&c, 0, sizeof(c));
    ck_assert_rn_ok(rn__lstate_each(ls, "ns", 2, collect_fn, &c, &err), &err);
    ck_assert_int_eq(c.calls, 0);
    key(st, "k2");
    ck_assert_rn_ok(rn__lstate_each(ls, "ns", 2, collect_fn, &c, &err), &err);
    ck_assert_str_eq(c.buf, "other;");
    rn__state_destroy(st);
}
END_TEST

/* ---- map state ---- */

static void
mput(rn_mstate_t *ms, const char *ns, const char *k, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn__mstate_put(ms, ns, strlen(ns), k, strlen(k), v, strlen(v), &err), &err);
}

static const char *
mlist(rn_mstate_t *ms, const char *ns, collect_t *c)
{
    rn_error_t err = RN_ERROR_INIT;
    memset(c, 0, sizeof(*c));
    ck_assert_rn_ok(rn__mstate_each(ms, ns, strlen(ns), collect_fn, c, &err), &err);
    return c->buf;
}

START_TEST(test_state_map)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_mstate_t *ms = rn__state_map(st, "m", &err);
    collect_t c;
    const void *v;
    size_t len;

    key(st, "k1");
    ck_assert_str_eq(mlist(ms, "w", &c), "");
    mput(ms, "w", "b", "2");
    mput(ms, "w", "a", "1");
    mput(ms, "w", "ab", "12");
    mput(ms, "w", "", "empty");
    mput(ms, "w", "\xff", "ff");
    mput(ms, "w2", "z", "other ns");
    key(st, "k2");
    mput(ms, "w", "a", "other key");
    key(st, "k1");
    /* User-key byte order; the empty key first, 0xff last. */
    ck_assert_str_eq(mlist(ms, "w", &c), "=empty;a=1;ab=12;b=2;\xff=ff;");
    ck_assert_rn_ok(rn__mstate_get(ms, "w", 1, "ab", 2, &v, &len, &err), &err);
    ck_assert_uint_eq(len, 2);
    ck_assert(memcmp(v, "12", 2) == 0);
    ck_assert_int_eq(rn__mstate_get(ms, "w", 1, "zz", 2, &v, &len, &err), RN_ENOTFOUND);

    /* Overwrite with a longer value (the entry moves) keeps the order. */
    mput(ms, "w", "ab", "a longer value that no longer fits in place");
    ck_assert_str_eq(mlist(ms, "w", &c),
                     "=empty;a=1;ab=a longer value that no longer fits in place;b=2;\xff=ff;");
    ck_assert_rn_ok(rn__mstate_remove(ms, "w", 1, "a", 1, &err), &err);
    ck_assert_rn_ok(rn__mstate_remove(ms, "w", 1, "nothing", 7, &err), &err);
    ck_assert_str_eq(mlist(ms, "w", &c),
                     "=empty;ab=a longer value that no longer fits in place;b=2;\xff=ff;");

    ck_assert_rn_ok(rn__mstate_clear(ms, "w", 1, &err), &err);
    ck_assert_str_eq(mlist(ms, "w", &c), "");
    ck_assert_str_eq(mlist(ms, "w2", &c), "z=other ns;");
    key(st, "k2");
    ck_assert_str_eq(mlist(ms, "w", &c), "a=other key;");
    /* Removing the last entry leaves nothing behind. */
    ck_assert_rn_ok(rn__mstate_remove(ms, "w", 1, "a", 1, &err), &err);
    ck_assert_str_eq(mlist(ms, "w", &c), "");
    rn_state_stats_t stats;
    rn__state_stats(st, &stats);
    ck_assert_uint_eq(stats.entries, 1); /* k1/w2/z */

    /* Many entries, inserted in reverse: each() sorts them. */
    for (int i = 999; i >= 0; i--) {
        char k[8];
        snprintf(k, sizeof(k), "%04d", i);
        ck_assert_rn_ok(rn__mstate_put(ms, "big", 3, k, 4, &i, sizeof(i), &err), &err);
    }
    for (int i = 0; i < 1000; i += 2) {
        char k[8];
        snprintf(k, sizeof(k), "%04d", i);
        ck_assert_rn_ok(rn__mstate_remove(ms, "big", 3, k, 4, &err), &err);
    }
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    ck_assert_int_eq(rn__mstate_each(ms, "big", 3, collect_fn, &c, &err), RN_ECANCELED);
    ck_assert_int_eq(c.calls, 3);
    rn__state_stats(st, &stats);
    ck_assert_uint_eq(stats.entries, 501);
    rn__state_destroy(st);
}
END_TEST

/* ---- timers ---- */

static void
treg(rn_state_t *st, const char *k, int64_t t, const char *ns)
{
    rn_error_t err = RN_ERROR_INIT;
    key(st, k);
    ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, t, ns, strlen(ns), &err), &err);
}

/* Pops every timer up to upto as "key@time/ns," into buf. */
static const char *
tpop_all(rn_state_t *st, int64_t upto, char *buf, size_t size)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_timer_t t;
    size_t n = 0;
    buf[0] = '\0';
    while (rn__timer_pop(st, RN_TIME_EVENT, upto, &t, &err) == RN_OK) {
        size_t klen;
        const char *k = rn__state_key(st, &klen);
        ck_assert_int_eq(t.domain, RN_TIME_EVENT);
        ck_assert_uint_eq(rn__state_key_group(st), klen % 7);
        n += (size_t)snprintf(buf + n, size - n, "%.*s@%lld/%.*s,", (int)klen, k,
                              (long long)t.time, (int)t.nslen, (const char *)t.ns);
    }
    return buf;
}

START_TEST(test_state_timers)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    char buf[1024];
    rn_state_stats_t stats;

    ck_assert(rn__timer_next(st, RN_TIME_EVENT) == INT64_MAX);
    treg(st, "b", 20, "x");
    treg(st, "b", 20, "x"); /* idempotent */
    treg(st, "a", 20, "x");
    treg(st, "a", 20, "w");
    treg(st, "a", 10, "x");
    treg(st, "c", 30, "");
    treg(st, "bb", 20, "x"); /* key group 2 (len % 7): after "a" and "b" (kg 1) */
    treg(st, "a", -5, "neg");
    rn__state_stats(st, &stats);
    ck_assert_uint_eq(stats.timers, 7);
    ck_assert_int_eq(rn__timer_next(st, RN_TIME_EVENT), -5);
    ck_assert_int_eq(rn__timer_next(st, RN_TIME_PROCESSING), INT64_MAX);

    /* Delete one, and one that does not exist. */
    key(st, "c");
    ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_EVENT, 30, "", 0, &err), &err);
    ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_EVENT, 31, "", 0, &err), &err);
    ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_PROCESSING, 30, "", 0, &err), &err);

    ck_assert_str_eq(tpop_all(st, 9, buf, sizeof(buf)), "a@-5/neg,");
    ck_assert_str_eq(tpop_all(st, 20, buf, sizeof(buf)), "a@10/x,a@20/w,a@20/x,b@20/x,bb@20/x,");
    ck_assert_str_eq(tpop_all(st, INT64_MAX, buf, sizeof(buf)), "");
    ck_assert_int_eq(rn__timer_next(st, RN_TIME_EVENT), INT64_MAX);

    /* A timer at the end of time (INT64_MAX) registers, deletes and pops
     * like any other (INT64_MAX also means "none stored" to the spill). */
    treg(st, "z", INT64_MAX, "end");
    treg(st, "y", INT64_MAX, "end");
    key(st, "y");
    ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_EVENT, INT64_MAX, "end", 3, &err), &err);
    ck_assert_str_eq(tpop_all(st, INT64_MAX - 1, buf, sizeof(buf)), "");
    ck_assert_str_eq(tpop_all(st, INT64_MAX, buf, sizeof(buf)), "z@9223372036854775807/end,");

    /* Domains are separate; a popped timer can be registered again. */
    key(st, "p");
    ck_assert_rn_ok(rn__timer_register(st, RN_TIME_PROCESSING, 5, NULL, 0, &err), &err);
    treg(st, "p", 5, "");
    ck_assert_int_eq(rn__timer_next(st, RN_TIME_PROCESSING), 5);
    ck_assert_str_eq(tpop_all(st, 5, buf, sizeof(buf)), "p@5/,");
    rn_timer_t t;
    ck_assert_rn_ok(rn__timer_pop(st, RN_TIME_PROCESSING, 5, &t, &err), &err);
    ck_assert_int_eq(t.domain, RN_TIME_PROCESSING);
    ck_assert_int_eq(rn__timer_pop(st, RN_TIME_PROCESSING, 5, &t, &err), RN_ENOTFOUND);
    rn__state_destroy(st);
}
END_TEST

/* Many timers of one time, loaded back from the store a part at a time
 * (each load starts where the last stopped); a timer registered at that
 * time between loads, with a key that sorts before where the last load
 * stopped, still fires, and every timer fires exactly once. */
START_TEST(test_state_timers_one_time)
{
    enum { N = 20000, LATE = 500 };
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_timer_backend(_i);
    char k[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "k%05d", i);
        treg(st, k, 100, "w");
    }
    uint8_t *seen = rn_xcalloc(N + LATE, 1);
    rn_timer_t t;
    int popped = 0;
    for (; popped < N / 2; popped++) {
        ck_assert_rn_ok(rn__timer_pop(st, RN_TIME_EVENT, 100, &t, &err), &err);
        size_t len;
        const char *pk = rn__state_key(st, &len);
        ck_assert_uint_eq(len, 6);
        ck_assert_int_eq(pk[0], 'k');
        memcpy(k, pk, len); /* not terminated */
        k[len] = '\0';
        int i = atoi(k + 1);
        ck_assert_int_eq(seen[i], 0);
        seen[i] = 1;
    }
    /* "a" sorts before every "k" key (same key group: same length). */
    for (int i = 0; i < LATE; i++) {
        snprintf(k, sizeof(k), "a%05d", i);
        treg(st, k, 100, "w");
    }
    while (rn__timer_pop(st, RN_TIME_EVENT, 100, &t, &err) == RN_OK) {
        size_t len;
        const char *pk = rn__state_key(st, &len);
        ck_assert_uint_eq(len, 6);
        memcpy(k, pk, len);
        k[len] = '\0';
        int i = atoi(k + 1) + (k[0] == 'a' ? N : 0);
        ck_assert_int_eq(t.time, 100);
        ck_assert_int_eq(seen[i], 0);
        seen[i] = 1;
        popped++;
    }
    ck_assert_str_eq(err.msg, "");
    ck_assert_int_eq(popped, N + LATE);
    ck_spilled(st, _i);
    rn_free(seen);
    rn__state_destroy(st);
}
END_TEST

/* Many timers, registered twice and in scrambled order, deleted in part:
 * pop order must be sorted and complete. */
START_TEST(test_state_timers_many)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_timer_backend(_i);
    enum { N = 20000 };
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < N; i++) {
            uint32_t x = (i * 7919u) % N;
            char k[16];
            int n = snprintf(k, sizeof(k), "k%u", x % 97);
            rn__state_set_key(st, k, (size_t)n, x % 5);
            int64_t time = (int64_t)(x / 10);
            ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, time, &x, sizeof(x), &err),
                            &err);
        }
    }
    for (uint32_t x = 0; x < N; x += 3) {
        char k[16];
        int n = snprintf(k, sizeof(k), "k%u", x % 97);
        rn__state_set_key(st, k, (size_t)n, x % 5);
        ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_EVENT, x / 10, &x, sizeof(x), &err), &err);
    }
    rn_timer_t t;
    int64_t last = INT64_MIN;
    uint32_t popped = 0, lastkg = 0;
    while (rn__timer_pop(st, RN_TIME_EVENT, INT64_MAX, &t, &err) == RN_OK) {
        uint32_t x;
        memcpy(&x, t.ns, sizeof(x));
        ck_assert(x % 3 != 0);
        ck_assert_int_eq(t.time, x / 10);
        ck_assert(t.time >= last);
        if (t.time == last)
            ck_assert_uint_ge(rn__state_key_group(st), lastkg);
        last = t.time;
        lastkg = rn__state_key_group(st);
        popped++;
    }
    ck_assert_uint_eq(popped, N - (N + 2) / 3);
    ck_spilled(st, _i);
    rn__state_destroy(st);
}
END_TEST

/* ---- timers against a model ---- */

/* A timer as the model keeps it. */
typedef struct tmodel {
    int64_t time;
    uint32_t kg;
    uint32_t keylen;
    uint32_t nslen;
    bool live;
    uint8_t key[32];
    uint8_t ns[4];
} tmodel_t;

static int
tbytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* The pop order state.h promises: time, key group, key, namespace. */
static int
tmodel_cmp(const tmodel_t *a, const tmodel_t *b)
{
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    if (a->kg != b->kg)
        return a->kg < b->kg ? -1 : 1;
    int c = tbytes_cmp(a->key, a->keylen, b->key, b->keylen);
    return c != 0 ? c : tbytes_cmp(a->ns, a->nslen, b->ns, b->nslen);
}

/* The model entry pop returned: m[best] (the earliest by tmodel_cmp) when
 * the order within a time is exact, else whichever live entry of best's
 * time has the popped key and namespace (a time spilled in part to RocksDB
 * pops its in-memory timers first: state.h). Fails when there is none. */
static size_t
tmodel_popped(tmodel_t *m, size_t n, size_t best, bool exact, rn_state_t *st,
              const rn_timer_t *got)
{
    size_t klen;
    const void *k = rn__state_key(st, &klen);
    ck_assert_int_eq(got->time, m[best].time);
    for (size_t j = exact ? best : 0; j < n; j++) {
        if (!m[j].live || m[j].time != got->time || m[j].kg != rn__state_key_group(st) ||
            tbytes_cmp(k, klen, m[j].key, m[j].keylen) != 0 ||
            tbytes_cmp(got->ns, got->nslen, m[j].ns, m[j].nslen) != 0) {
            /* Asserted only on failure: each Check assertion writes to its
             * pipe, which the model's loops would pay for every entry. */
            if (exact)
                ck_abort_msg("pop order: not the earliest timer");
            continue;
        }
        return j;
    }
    ck_abort_msg("popped a timer the model does not have");
    return n;
}

static uint32_t
trand(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*seed >> 33);
}

/* Key i of a shape: key groups spread over 128 (the default), over a range
 * far wider than the timers (shape 1), few key groups with keys that
 * differ only past byte 8 (shape 2) or past the 12 bytes a timer slot
 * keeps (shape 3); some keys are prefixes of others. */
static void
tmodel_key(int shape, uint32_t i, tmodel_t *t)
{
    static const char *const pre[] = {"k", "k", "a-shared", "a-shared-prefix-"};
    t->keylen = (uint32_t)snprintf((char *)t->key, sizeof(t->key), "%s%u", pre[shape], i % 300);
    if (shape == 0)
        t->kg = (uint32_t)(XXH3_64bits(t->key, t->keylen) % 128);
    else if (shape == 1)
        t->kg = (uint32_t)(XXH3_64bits(t->key, t->keylen) % 100000007u);
    else
        t->kg = (i % 300) % 3;
}

/* Registers, deletes and pops timers in random order, many at each time, a
 * part of them while their time is being popped, and checks every pop and
 * next() against the model. */
START_TEST(test_state_timers_model)
{
    rn_error_t err = RN_ERROR_INIT;
    enum { MAXT = 6000 };
    tmodel_t *m = calloc(MAXT, sizeof(*m));
    ck_assert_ptr_nonnull(m);
    for (int shape = 0; shape < 4; shape++) {
        rn_state_t *st = open_timer_backend(_i);
        /* Exact order within a time unless timers spill (state.h). */
        bool exact = st->spill_budget == 0 || _i < NBACKENDS;
        uint64_t seed = 42 + (uint64_t)shape;
        size_t n = 0, live = 0, pops = 0;
        int64_t base = 1000;
        for (int round = 0; round < 6; round++) {
            for (int op = 0; op < 1500; op++) {
                tmodel_t t = {0};
                uint32_t r = trand(&seed);
                tmodel_key(shape, trand(&seed), &t);
                /* Mostly a few shared times, sometimes the one being popped
                 * (base - 1) or a time of its own. */
                t.time = r % 10 == 0 ? base - 1 : r % 10 == 1 ? base + 100 + op : base + r % 3;
                t.nslen = trand(&seed) % 3;
                memset(t.ns, 'x', t.nslen);
                t.ns[0] = (uint8_t)(t.nslen ? 'a' + trand(&seed) % 2 : 0);
                bool del = trand(&seed) % 5 == 0;
                size_t at = n;
                for (size_t j = 0; j < n; j++)
                    if (m[j].live && tmodel_cmp(&m[j], &t) == 0)
                        at = j;
                rn__state_set_key(st, t.key, t.keylen, t.kg);
                if (del) {
                    ck_assert_rn_ok(rn__timer_delete(st, RN_TIME_EVENT, t.time, t.ns, t.nslen,
                                                     &err),
                                    &err);
                    if (at < n) {
                        m[at].live = false;
                        live--;
                    }
                    continue;
                }
                ck_assert_rn_ok(
                    rn__timer_register(st, RN_TIME_EVENT, t.time, t.ns, t.nslen, &err), &err);
                if (at == n && n < MAXT) {
                    t.live = true;
                    m[n++] = t;
                    live++;
                }
                /* Pop some of the time being popped in between. */
                if (op % 7 == 0) {
                    int64_t upto = base - 1;
                    size_t best = n;
                    for (size_t j = 0; j < n; j++)
                        if (m[j].live && m[j].time <= upto &&
                            (best == n || tmodel_cmp(&m[j], &m[best]) < 0))
                            best = j;
                    rn_timer_t got;
                    rn_code_t rc = rn__timer_pop(st, RN_TIME_EVENT, upto, &got, &err);
                    if (best == n) {
                        ck_assert_int_eq(rc, RN_ENOTFOUND);
                        continue;
                    }
                    ck_assert_rn_ok(rc, &err);
                    m[tmodel_popped(m, n, best, exact, st, &got)].live = false;
                    live--;
                    pops++;
                }
            }
            /* Pop everything up to the next round's base, one at a time,
             * checking next() too. */
            int64_t upto = base + 2;
            for (;;) {
                size_t best = n;
                for (size_t j = 0; j < n; j++)
                    if (m[j].live && (best == n || tmodel_cmp(&m[j], &m[best]) < 0))
                        best = j;
                ck_assert_int_eq(rn__timer_next(st, RN_TIME_EVENT),
                                 best == n ? INT64_MAX : m[best].time);
                rn_state_stats_t stats;
                rn__state_stats(st, &stats);
                /* Spilled timers registered again may count twice. */
                if (exact)
                    ck_assert_uint_eq(stats.timers, live);
                else
                    ck_assert_uint_ge(stats.timers, live);
                rn_timer_t got;
                rn_code_t rc = rn__timer_pop(st, RN_TIME_EVENT, upto, &got, &err);
                if (best == n || m[best].time > upto) {
                    ck_assert_int_eq(rc, RN_ENOTFOUND);
                    break;
                }
                ck_assert_rn_ok(rc, &err);
                m[tmodel_popped(m, n, best, exact, st, &got)].live = false;
                live--;
                pops++;
            }
            /* Compact the model. */
            size_t w = 0;
            for (size_t j = 0; j < n; j++)
                if (m[j].live)
                    m[w++] = m[j];
            n = w;
            base += 3;
        }
        ck_assert_uint_gt(pops, 3000);
        ck_spilled(st, _i);
        rn__state_destroy(st); /* with timers left: no leak under ASan */
    }
    free(m);
}
END_TEST

/* ---- growth and stats ---- */

START_TEST(test_state_growth)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_vstate_t *vs = rn__state_value(st, "v", &err);
    enum { N = 1000000 };
    bool created;
    for (uint32_t i = 0; i < N; i++) {
        rn__state_set_key(st, &i, sizeof(i), i % 128);
        uint64_t *p = rn__vstate_ref(vs, "w", 1, sizeof(uint64_t), &created, &err);
        ck_assert_ptr_nonnull(p);
        *p = (uint64_t)i * 3;
    }
    rn_state_stats_t stats;
    rn__state_stats(st, &stats);
    ck_assert_uint_eq(stats.entries, N);
    ck_assert_uint_ge(stats.bytes, (uint64_t)N * 8);
    for (uint32_t i = 0; i < N; i++) {
        rn__state_set_key(st, &i, sizeof(i), i % 128);
        uint64_t *p = rn__vstate_ref(vs, "w", 1, sizeof(uint64_t), &created, &err);
        ck_assert(!created);
        ck_assert_uint_eq(*p, (uint64_t)i * 3);
    }
    /* Remove every other key: the rest must stay reachable (backward shift). */
    for (uint32_t i = 0; i < N; i += 2) {
        rn__state_set_key(st, &i, sizeof(i), i % 128);
        ck_assert_rn_ok(rn__vstate_clear(vs, "w", 1, &err), &err);
    }
    for (uint32_t i = 0; i < N; i++) {
        rn__state_set_key(st, &i, sizeof(i), i % 128);
        const void *v;
        size_t len;
        rn_code_t rc = rn__vstate_get(vs, "w", 1, &v, &len, &err);
        if (i % 2 == 0) {
            ck_assert_int_eq(rc, RN_ENOTFOUND);
        } else {
            ck_assert_rn_ok(rc, &err);
            ck_assert_uint_eq(*(const uint64_t *)v, (uint64_t)i * 3);
        }
    }
    uint64_t before = stats.bytes;
    rn__state_stats(st, &stats);
    ck_assert_uint_eq(stats.entries, N / 2);
    /* A bounded cache stays full after deletes; only the memory backend
     * gives memory back. */
    if (strcmp(backends[_i], "memory") == 0)
        ck_assert_uint_lt(stats.bytes, before);
    rn__state_destroy(st);
}
END_TEST

START_TEST(test_state_stats)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_t *st = open_backend(_i);
    rn_state_stats_t s0, s1;
    rn__state_stats(st, &s0);
    ck_assert_uint_eq(s0.entries, 0);
    ck_assert_uint_eq(s0.timers, 0);
    rn_vstate_t *vs = rn__state_value(st, "v", &err);
    rn_lstate_t *ls = rn__state_list(st, "l", &err);
    rn_mstate_t *ms = rn__state_map(st, "m", &err);
    key(st, "k");
    put_str(vs, NULL, "value");
    ck_assert_rn_ok(rn__lstate_add(ls, NULL, 0, "x", 1, &err), &err);
    ck_assert_rn_ok(rn__lstate_add(ls, NULL, 0, "y", 1, &err), &err);
    mput(ms, "", "a", "1");
    mput(ms, "", "b", "1");
    ck_assert_rn_ok(rn__timer_register(st, RN_TIME_EVENT, 1, NULL, 0, &err), &err);
    rn__state_stats(st, &s1);
    ck_assert_uint_eq(s1.entries, 4); /* value, list, two map entries */
    ck_assert_uint_eq(s1.timers, 1);
    ck_assert_uint_gt(s1.bytes, s0.bytes);
    ck_assert_rn_ok(rn__vstate_clear(vs, NULL, 0, &err), &err);
    ck_assert_rn_ok(rn__lstate_clear(ls, NULL, 0, &err), &err);
    ck_assert_rn_ok(rn__mstate_clear(ms, "", 0, &err), &err);
    rn_timer_t t;
    ck_assert_rn_ok(rn__timer_pop(st, RN_TIME_EVENT, 1, &t, &err), &err);
    rn__state_stats(st, &s1);
    ck_assert_uint_eq(s1.entries, 0);
    ck_assert_uint_eq(s1.timers, 0);
    rn__state_destroy(st);
}
END_TEST

/* ---- TTL ---- */

static int64_t fake_now = 1000;
static int64_t
fake_clock(void)
{
    return fake_now;
}

static rn_state_t *
open_backend_clock(int i)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[256];
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/state-ttl-%s-%d", tmp ? tmp : "/tmp", backends[i],
             (int)getpid());
    rn_state_options_t opts = {.backend = backends[i], .dir = dir, .owner = "ttl#0",
                               .clock_ms = fake_clock};
    rn_state_t *st = rn__state_new(&opts, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    return st;
}

static rn_code_t
count_each(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    (*(int *)ctx)++;
    return RN_OK;
}

START_TEST(test_state_ttl_value)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_ttl_t ttl = {.ttl_ms = 100};
    fake_now = 1000;
    rn_state_t *st = open_backend_clock(_i);
    rn_vstate_t *vs = rn__state_value_ttl(st, "v", &ttl, &err);
    ck_assert_msg(vs != NULL, "%s", err.msg);

    key(st, "a");
    put_str(vs, "n", "hello");
    fake_now = 1099;
    ck_value(vs, "n", "hello");   /* alive until written + ttl */
    fake_now = 1100;
    ck_value(vs, "n", NULL);      /* expired: invisible */
    fake_now = 1000;
    ck_value(vs, "n", NULL);      /* and removed, not just hidden */

    /* A write restarts the clock; a read does not (OnCreateAndWrite). */
    put_str(vs, "n", "x");
    fake_now = 1090;
    ck_value(vs, "n", "x");
    put_str(vs, "n", "y");
    fake_now = 1150;
    ck_value(vs, "n", "y");
    fake_now = 1190;
    ck_value(vs, "n", NULL);

    /* ref: an expired value comes back as new and zeroed. */
    bool created;
    int64_t *c = rn__vstate_ref(vs, "r", 1, sizeof(int64_t), &created, &err);
    ck_assert(c != NULL && created);
    *c = 41;
    fake_now = 1250;
    c = rn__vstate_ref(vs, "r", 1, sizeof(int64_t), &created, &err);
    ck_assert(c != NULL && !created && *c == 41);
    (*c)++;
    fake_now = 1349; /* the ref at 1250 was a write */
    c = rn__vstate_ref(vs, "r", 1, sizeof(int64_t), &created, &err);
    ck_assert(c != NULL && !created && *c == 42);
    fake_now = 1500;
    c = rn__vstate_ref(vs, "r", 1, sizeof(int64_t), &created, &err);
    ck_assert(c != NULL && created && *c == 0);

    /* One name, one TTL; a state without TTL is untouched by the clock. */
    rn_state_ttl_t other = {.ttl_ms = 5};
    ck_assert_ptr_null(rn__state_value_ttl(st, "v", &other, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_ptr_null(rn__state_value(st, "v", &err));
    rn_vstate_t *plain = rn__state_value(st, "plain", &err);
    put_str(plain, NULL, "forever");
    fake_now = 1000000;
    ck_value(plain, NULL, "forever");
    rn__state_destroy(st);
}
END_TEST

START_TEST(test_state_ttl_refresh_on_read)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_ttl_t ttl = {.ttl_ms = 100, .refresh_on_read = true};
    fake_now = 1000;
    rn_state_t *st = open_backend_clock(_i);
    rn_vstate_t *vs = rn__state_value_ttl(st, "v", &ttl, &err);
    key(st, "a");
    put_str(vs, NULL, "v");
    for (int i = 0; i < 5; i++) {
        fake_now += 90;
        ck_value(vs, NULL, "v"); /* each read keeps it alive */
    }
    fake_now += 100;
    ck_value(vs, NULL, NULL);
    rn__state_destroy(st);
}
END_TEST

START_TEST(test_state_ttl_list_and_map)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_ttl_t ttl = {.ttl_ms = 100};
    fake_now = 1000;
    rn_state_t *st = open_backend_clock(_i);
    rn_lstate_t *ls = rn__state_list_ttl(st, "l", &ttl, &err);
    rn_mstate_t *ms = rn__state_map_ttl(st, "m", &ttl, &err);
    ck_assert(ls != NULL && ms != NULL);
    key(st, "k");
    ck_assert_rn_ok(rn__lstate_add(ls, NULL, 0, "old", 3, &err), &err);
    ck_assert_rn_ok(rn__mstate_put(ms, NULL, 0, "a", 1, "1", 1, &err), &err);
    fake_now = 1050;
    ck_assert_rn_ok(rn__lstate_add(ls, NULL, 0, "new", 3, &err), &err);
    ck_assert_rn_ok(rn__mstate_put(ms, NULL, 0, "b", 1, "2", 1, &err), &err);
    int n = 0;
    ck_assert_rn_ok(rn__lstate_each(ls, NULL, 0, count_each, &n, &err), &err);
    ck_assert_int_eq(n, 2);
    fake_now = 1120; /* "old" and "a" expired, "new" and "b" not */
    n = 0;
    ck_assert_rn_ok(rn__lstate_each(ls, NULL, 0, count_each, &n, &err), &err);
    ck_assert_int_eq(n, 1);
    n = 0;
    ck_assert_rn_ok(rn__mstate_each(ms, NULL, 0, count_each, &n, &err), &err);
    ck_assert_int_eq(n, 1);
    const void *v;
    size_t len;
    ck_assert_int_eq(rn__mstate_get(ms, NULL, 0, "a", 1, &v, &len, &err), RN_ENOTFOUND);
    ck_assert_rn_ok(rn__mstate_get(ms, NULL, 0, "b", 1, &v, &len, &err), &err);
    ck_assert(len == 1 && memcmp(v, "2", 1) == 0);
    rn__state_destroy(st);
}
END_TEST

static Suite *
state_suite(void)
{
    Suite *s = suite_create("state");
    TCase *tc;

    tc = tcase_create("backends");
    tcase_add_test(tc, test_state_backend_names);
    tcase_add_loop_test(tc, test_state_registry, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_current_key, 0, NBACKENDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("value");
    tcase_add_loop_test(tc, test_state_value_isolation, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_value_ref, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_value_take, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_value_merge, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_read_on_timer, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_read_on_timer_partial, 0, NBACKENDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("list");
    tcase_add_loop_test(tc, test_state_list, 0, NBACKENDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_add_loop_test(tc, test_state_map, 0, NBACKENDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("ttl");
    tcase_add_loop_test(tc, test_state_ttl_value, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_ttl_refresh_on_read, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_ttl_list_and_map, 0, NBACKENDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("timers");
    tcase_add_loop_test(tc, test_state_timers, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_timers_many, 0, 2 * NBACKENDS);
    tcase_add_loop_test(tc, test_state_timers_one_time, 0, 2 * NBACKENDS);
    tcase_add_loop_test(tc, test_state_timers_model, 0, 2 * NBACKENDS);
    suite_add_tcase(s, tc);

    tc = tcase_create("growth");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_state_growth, 0, NBACKENDS);
    tcase_add_loop_test(tc, test_state_stats, 0, NBACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(state_suite)
