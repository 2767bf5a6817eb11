/*
 * tests/unit/test_rocksdb.c: the RocksDB state backend (state/rocksdb*.c),
 * driven through its vtable: the semantic cases of test_state.c (values,
 * ref, lists, maps, entry counts) plus what only this backend has: the
 * write-back cache's evictions and flush, per-run directories and the
 * format version.
 *
 * The backend is called directly (rn__state_rocksdb_backend) rather than
 * through rn__state_new, which does not know it yet; a small harness
 * plays the handle's part (current key, composite keys).
 */
#include "rn_check.h"
#include "state/rocksdb_int.h"

#include <dirent.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

static const rn__state_backend_t *const B = &rn__state_rocksdb_backend;

/* The handle's part: the current key and the states' ids and kinds. */
typedef struct tb {
    void *be;
    char key[64];
    uint32_t keylen;
    uint32_t kg;
    char dir[512];
} tb_t;

enum { S_A = 0, S_B = 1, S_ACC = 2, S_LIST = 3, S_MAP = 4 };

static void
tb_dir(char *dir, size_t size, const char *what)
{
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, size, "%s/rocksdb-%s-%d", tmp ? tmp : "/tmp", what, (int)getpid());
}

static void
tb_open_mem(tb_t *t, int64_t memory)
{
    rn_error_t err = RN_ERROR_INIT;
    memset(t, 0, sizeof(*t));
    tb_dir(t->dir, sizeof(t->dir), "unit");
    rn_state_options_t opts = {
        .backend = "rocksdb", .dir = t->dir, .memory_bytes = memory, .owner = "test#0"};
    ck_assert_rn_ok(B->open(&opts, &t->be, &err), &err);
}

static void
tb_open(tb_t *t)
{
    tb_open_mem(t, 0);
}

static void
key(tb_t *t, const char *k)
{
    t->keylen = (uint32_t)strlen(k);
    memcpy(t->key, k, t->keylen);
    t->kg = t->keylen % 7;
}

static void
key_bin(tb_t *t, const void *k, size_t len, uint32_t kg)
{
    memcpy(t->key, k, len);
    t->keylen = (uint32_t)len;
    t->kg = kg;
}

static rn__skey_t
sk(const tb_t *t, uint32_t state, const char *ns)
{
    rn__skey_t k = {.state = state,
                    .kind = state == S_LIST ? RN__SK_LIST
                            : state == S_MAP ? RN__SK_MAP
                                             : RN__SK_VALUE,
                    .kg = t->kg,
                    .keylen = t->keylen,
                    .nslen = ns ? (uint32_t)strlen(ns) : 0,
                    .keyhash = XXH3_64bits(t->key, t->keylen),
                    .key = (const uint8_t *)t->key,
                    .ns = (const uint8_t *)ns};
    return k;
}

static rn__skey_t
mk(const tb_t *t, const char *ns, const char *ukey)
{
    rn__skey_t k = sk(t, S_MAP, ns);
    k.ukey = (const uint8_t *)ukey;
    k.uklen = (uint32_t)strlen(ukey);
    return k;
}

static void
ck_value(tb_t *t, uint32_t state, const char *ns, const char *want)
{
    rn_error_t err = RN_ERROR_INIT;
    const void *v;
    size_t len;
    rn__skey_t k = sk(t, state, ns);
    rn_code_t rc = B->get(t->be, &k, &v, &len, &err);
    if (want == NULL) {
        ck_assert_int_eq(rc, RN_ENOTFOUND);
        ck_assert_str_eq(err.msg, "");
        return;
    }
    ck_assert_rn_ok(rc, &err);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert(memcmp(v, want, len) == 0);
}

static void
put_str(tb_t *t, uint32_t state, const char *ns, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    rn__skey_t k = sk(t, state, ns);
    ck_assert_rn_ok(B->put(t->be, &k, v, strlen(v), &err), &err);
}

/* Puts i (4 bytes) at key i (key group i % 64), state S_ACC, ns "w", for
 * i = 0, step, 2 * step, ... below n, and flushes them to RocksDB. */
static void
put_keys(tb_t *t, uint32_t n, uint32_t step)
{
    rn_error_t err = RN_ERROR_INIT;
    for (uint32_t i = 0; i < n; i += step) {
        key_bin(t, &i, sizeof(i), i % 64);
        rn__skey_t k = sk(t, S_ACC, "w");
        ck_assert_rn_ok(B->put(t->be, &k, &i, sizeof(i), &err), &err);
    }
    ck_assert_rn_ok(rn__rdb_flush(t->be, &err), &err);
}

static void
del(tb_t *t, uint32_t state, const char *ns)
{
    rn_error_t err = RN_ERROR_INIT;
    rn__skey_t k = sk(t, state, ns);
    ck_assert_rn_ok(B->del(t->be, &k, &err), &err);
}

static uint64_t
entries(tb_t *t)
{
    rn_state_stats_t s = {0};
    B->stats(t->be, &s);
    return s.entries;
}

/* ---- value state ---- */

START_TEST(test_rocksdb_value_isolation)
{
    tb_t t;
    tb_open(&t);
    key(&t, "k1");
    ck_value(&t, S_A, NULL, NULL);
    put_str(&t, S_A, NULL, "a-k1");
    put_str(&t, S_A, "w1", "a-k1-w1");
    put_str(&t, S_B, NULL, "b-k1");
    key(&t, "k2");
    ck_value(&t, S_A, NULL, NULL);
    ck_value(&t, S_A, "w1", NULL);
    put_str(&t, S_A, NULL, "a-k2");
    /* "k" + "1w1" must not collide with "k1" + "w1". */
    key(&t, "k");
    ck_value(&t, S_A, "1w1", NULL);
    key(&t, "k1");
    ck_value(&t, S_A, NULL, "a-k1");
    ck_value(&t, S_A, "w1", "a-k1-w1");
    ck_value(&t, S_B, NULL, "b-k1");
    ck_value(&t, S_B, "w1", NULL);
    key(&t, "k2");
    put_str(&t, S_A, NULL, "a much longer value than before, to force a move");
    ck_value(&t, S_A, NULL, "a much longer value than before, to force a move");
    put_str(&t, S_A, NULL, "s");
    ck_value(&t, S_A, NULL, "s");
    put_str(&t, S_A, NULL, "");
    ck_value(&t, S_A, NULL, "");
    key(&t, "k1");
    del(&t, S_A, "w1");
    ck_value(&t, S_A, "w1", NULL);
    ck_value(&t, S_A, NULL, "a-k1");
    del(&t, S_A, "w1"); /* absent: fine */
    ck_assert_uint_eq(entries(&t), 3);

    /* The same after everything went to RocksDB and the cache is cold. */
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    ck_value(&t, S_A, NULL, "a-k1");
    ck_value(&t, S_A, "w1", NULL);
    key(&t, "k2");
    ck_value(&t, S_A, NULL, "");
    B->close(t.be);
}
END_TEST

typedef struct acc {
    int64_t count;
    double sum;
} acc_t;

START_TEST(test_rocksdb_value_ref)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open(&t);
    bool created = false;
    key(&t, "k");
    rn__skey_t k = sk(&t, S_ACC, "w");
    acc_t *a = B->ref(t.be, &k, sizeof(acc_t), &created, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert(created);
    ck_assert_int_eq(a->count, 0);
    ck_assert((uintptr_t)a % 8 == 0);
    a->count = 5;
    key(&t, "other");
    k = sk(&t, S_ACC, "w");
    acc_t *o = B->ref(t.be, &k, sizeof(acc_t), &created, &err);
    ck_assert(created);
    o->count = 1;
    key(&t, "k");
    k = sk(&t, S_ACC, "w");
    a = B->ref(t.be, &k, sizeof(acc_t), &created, &err);
    ck_assert(!created);
    ck_assert_int_eq(a->count, 5);
    a->count++;
    ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    const void *v;
    size_t len;
    ck_assert_rn_ok(B->get(t.be, &k, &v, &len, &err), &err);
    ck_assert_uint_eq(len, sizeof(acc_t));
    ck_assert_int_eq(((const acc_t *)v)->count, 6);
    ck_assert_ptr_null(B->ref(t.be, &k, sizeof(acc_t) + 8, &created, &err));
    ck_assert_int_eq(err.code, RN_EINVAL);

    /* take: copy and remove in one lookup. */
    acc_t got = {0};
    ck_assert_rn_ok(B->take(t.be, &k, &got, sizeof(got), &len, &err), &err);
    ck_assert_int_eq(got.count, 6);
    ck_assert_int_eq(B->take(t.be, &k, &got, sizeof(got), &len, &err), RN_ENOTFOUND);
    a = B->ref(t.be, &k, sizeof(acc_t), &created, &err);
    ck_assert(created);
    ck_assert_int_eq(a->count, 0);
    ck_assert_uint_eq(entries(&t), 2);
    B->close(t.be);
}
END_TEST

/* ---- list state ---- */

typedef struct collect {
    char buf[8192];
    size_t n;
    int calls;
    int stop_after;
} collect_t;

static rn_code_t
collect_fn(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    collect_t *c = ctx;
    if (k != NULL)
        c->n += (size_t)snprintf(c->buf + c->n, sizeof(c->buf) - c->n, "%.*s=", (int)klen,
                                 (const char *)k);
    c->n += (size_t)snprintf(c->buf + c->n, sizeof(c->buf) - c->n, "%.*s;", (int)vlen,
                             (const char *)v);
    return ++c->calls == c->stop_after ? RN_ECANCELED : RN_OK;
}

static void
ladd(tb_t *t, const char *ns, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    rn__skey_t k = sk(t, S_LIST, ns);
    ck_assert_rn_ok(B->list_add(t->be, &k, v, strlen(v), &err), &err);
}

static const char *
llist(tb_t *t, const char *ns, collect_t *c)
{
    rn_error_t err = RN_ERROR_INIT;
    memset(c, 0, sizeof(*c));
    rn__skey_t k = sk(t, S_LIST, ns);
    ck_assert_rn_ok(B->list_each(t->be, &k, collect_fn, c, &err), &err);
    return c->buf;
}

START_TEST(test_rocksdb_list)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    collect_t c;
    tb_open(&t);
    key(&t, "k1");
    ck_assert_str_eq(llist(&t, "", &c), "");
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        ladd(&t, "ns", v);
    }
    ladd(&t, "ns", "");
    key(&t, "k2");
    ladd(&t, "ns", "other");
    key(&t, "k1");
    llist(&t, "ns", &c);
    ck_assert_int_eq(c.calls, 101);
    ck_assert(strncmp(c.buf, "0;1;2;3;", 8) == 0);
    ck_assert(strcmp(c.buf + c.n - 4, "99;;") == 0);
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    rn__skey_t k = sk(&t, S_LIST, "ns");
    ck_assert_int_eq(B->list_each(t.be, &k, collect_fn, &c, &err), RN_ECANCELED);
    ck_assert_str_eq(c.buf, "0;1;2;");
    ck_assert_uint_eq(entries(&t), 2);

    /* Clear (a range delete: more than 64 elements), then start again. */
    del(&t, S_LIST, "ns");
    ck_assert_str_eq(llist(&t, "ns", &c), "");
    ck_assert_uint_eq(entries(&t), 1);
    ladd(&t, "ns", "again");
    ck_assert_str_eq(llist(&t, "ns", &c), "again;");
    /* A short list is cleared with point deletes; after a flush too. */
    ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    key(&t, "k2");
    ck_assert_str_eq(llist(&t, "ns", &c), "other;");
    del(&t, S_LIST, "ns");
    ck_assert_str_eq(llist(&t, "ns", &c), "");
    ck_assert_uint_eq(entries(&t), 1);
    B->close(t.be);
}
END_TEST

/* ---- map state ---- */

static void
mput(tb_t *t, const char *ns, const char *uk, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    rn__skey_t k = mk(t, ns, uk);
    ck_assert_rn_ok(B->put(t->be, &k, v, strlen(v), &err), &err);
}

static const char *
mlist(tb_t *t, const char *ns, collect_t *c)
{
    rn_error_t err = RN_ERROR_INIT;
    memset(c, 0, sizeof(*c));
    rn__skey_t k = sk(t, S_MAP, ns);
    ck_assert_rn_ok(B->map_each(t->be, &k, collect_fn, c, &err), &err);
    return c->buf;
}

START_TEST(test_rocksdb_map)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    collect_t c;
    const void *v;
    size_t len;
    tb_open(&t);
    key(&t, "k1");
    ck_assert_str_eq(mlist(&t, "w", &c), "");
    mput(&t, "w", "b", "2");
    mput(&t, "w", "a", "1");
    mput(&t, "w", "ab", "12");
    mput(&t, "w", "", "empty");
    mput(&t, "w", "\xff", "ff");
    mput(&t, "w2", "z", "other ns");
    key(&t, "k2");
    mput(&t, "w", "a", "other key");
    key(&t, "k1");
    ck_assert_str_eq(mlist(&t, "w", &c), "=empty;a=1;ab=12;b=2;\xff=ff;");
    rn__skey_t k = mk(&t, "w", "ab");
    ck_assert_rn_ok(B->get(t.be, &k, &v, &len, &err), &err);
    ck_assert_uint_eq(len, 2);
    ck_assert(memcmp(v, "12", 2) == 0);
    k = mk(&t, "w", "zz");
    ck_assert_int_eq(B->get(t.be, &k, &v, &len, &err), RN_ENOTFOUND);
    mput(&t, "w", "ab", "a longer value");
    ck_assert_uint_eq(entries(&t), 7);
    k = mk(&t, "w", "a");
    ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
    k = mk(&t, "w", "nothing");
    ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
    ck_assert_str_eq(mlist(&t, "w", &c), "=empty;ab=a longer value;b=2;\xff=ff;");
    del(&t, S_MAP, "w");
    ck_assert_str_eq(mlist(&t, "w", &c), "");
    ck_assert_str_eq(mlist(&t, "w2", &c), "z=other ns;");
    key(&t, "k2");
    ck_assert_str_eq(mlist(&t, "w", &c), "a=other key;");
    k = mk(&t, "w", "a");
    ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
    ck_assert_uint_eq(entries(&t), 1);

    for (int i = 999; i >= 0; i--) {
        char uk[8];
        snprintf(uk, sizeof(uk), "%04d", i);
        mput(&t, "big", uk, uk);
    }
    for (int i = 0; i < 1000; i += 2) {
        char uk[8];
        snprintf(uk, sizeof(uk), "%04d", i);
        k = mk(&t, "big", uk);
        ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
    }
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    k = sk(&t, S_MAP, "big");
    ck_assert_int_eq(B->map_each(t.be, &k, collect_fn, &c, &err), RN_ECANCELED);
    ck_assert_str_eq(c.buf, "0001=0001;0003=0003;0005=0005;");
    ck_assert_uint_eq(entries(&t), 501);
    B->close(t.be);
}
END_TEST

/* ---- the write-back cache ---- */

/* 200k values of 8 to 64 bytes through a 1 MB bound: most are evicted and
 * read back from RocksDB. */
START_TEST(test_rocksdb_evictions)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open_mem(&t, 1 << 20);
    enum { N = 200000 };
    bool created;
    for (uint32_t i = 0; i < N; i++) {
        key_bin(&t, &i, sizeof(i), i % 128);
        rn__skey_t k = sk(&t, S_ACC, "w");
        uint64_t *p = B->ref(t.be, &k, 8 + (i % 8) * 8, &created, &err);
        ck_assert_ptr_nonnull(p);
        ck_assert(created);
        p[0] = (uint64_t)i * 3;
    }
    uint64_t hits, misses, evicted, written;
    rn__rdb_cache_stats(t.be, &hits, &misses, &evicted, &written);
    ck_assert_uint_gt(evicted, N / 2);
    ck_assert_uint_gt(written, N / 2);
    ck_assert_uint_eq(entries(&t), N);
    rn_state_stats_t s = {0};
    B->stats(t.be, &s);
    ck_assert_uint_lt(s.bytes, 8u << 20); /* bound 1 MB, of which the cache 512 kB */

    /* Update every third through ref, delete every fifth (most of them
     * evicted, so the delete must reach RocksDB). */
    for (uint32_t i = 0; i < N; i += 3) {
        key_bin(&t, &i, sizeof(i), i % 128);
        rn__skey_t k = sk(&t, S_ACC, "w");
        uint64_t *p = B->ref(t.be, &k, 8 + (i % 8) * 8, &created, &err);
        ck_assert_ptr_nonnull(p);
        ck_assert(!created);
        ck_assert_uint_eq(p[0], (uint64_t)i * 3);
        p[0]++;
    }
    for (uint32_t i = 0; i < N; i += 5) {
        key_bin(&t, &i, sizeof(i), i % 128);
        rn__skey_t k = sk(&t, S_ACC, "w");
        ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
    }
    ck_assert_uint_eq(entries(&t), N - N / 5);
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < N; i++) {
            key_bin(&t, &i, sizeof(i), i % 128);
            rn__skey_t k = sk(&t, S_ACC, "w");
            const void *v;
            size_t len;
            rn_code_t rc = B->get(t.be, &k, &v, &len, &err);
            if (i % 5 == 0) {
                ck_assert_int_eq(rc, RN_ENOTFOUND);
                continue;
            }
            ck_assert_rn_ok(rc, &err);
            ck_assert_uint_eq(len, 8 + (i % 8) * 8);
            uint64_t x;
            memcpy(&x, v, 8);
            ck_assert_uint_eq(x, (uint64_t)i * 3 + (i % 3 == 0));
        }
        /* Second pass: everything written out, read from RocksDB and cache. */
        ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    }
    ck_assert_uint_eq(entries(&t), N - N / 5);
    B->close(t.be);
}
END_TEST

/* Values created and deleted while only in the cache never reach RocksDB. */
START_TEST(test_rocksdb_cache_only)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open(&t);
    bool created;
    for (uint32_t i = 0; i < 1000; i++) {
        key_bin(&t, &i, sizeof(i), 0);
        rn__skey_t k = sk(&t, S_ACC, "w");
        ck_assert_ptr_nonnull(B->ref(t.be, &k, 16, &created, &err));
        ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
    }
    ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    uint64_t hits, misses, evicted, written;
    rn__rdb_cache_stats(t.be, &hits, &misses, &evicted, &written);
    ck_assert_uint_eq(written, 0);
    ck_assert_uint_eq(entries(&t), 0);
    /* A flushed value deleted later is a delete that RocksDB sees. */
    key(&t, "x");
    put_str(&t, S_A, NULL, "v");
    ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    del(&t, S_A, NULL);
    ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    rn__rdb_cache_stats(t.be, &hits, &misses, &evicted, &written);
    ck_assert_uint_eq(written, 2);
    ck_value(&t, S_A, NULL, NULL);
    B->close(t.be);
}
END_TEST

/* ---- the filter of what RocksDB may hold ---- */

/* Counting: a key counted out leaves the others in; a saturated counter
 * never says "absent" again. */
START_TEST(test_rocksdb_filter_counts)
{
    rn_error_t err = RN_ERROR_INIT;
    rn__rfilter_t f;
    ck_assert_rn_ok(rn__rf_init(&f, &err), &err);
    uint64_t a = XXH3_64bits("a", 1), b = XXH3_64bits("b", 1);
    ck_assert(!rn__rf_maybe(&f, a));
    rn__rf_add(&f, a);
    rn__rf_add(&f, b);
    ck_assert(rn__rf_maybe(&f, a) && rn__rf_maybe(&f, b));
    rn__rf_remove(&f, a);
    ck_assert(rn__rf_maybe(&f, b));
    ck_assert_uint_eq(f.count, 1);
    /* Four-bit counters: 20 adds saturate b's, which then never drop. */
    for (int i = 0; i < 20; i++)
        rn__rf_add(&f, b);
    for (int i = 0; i < 21; i++)
        rn__rf_remove(&f, b);
    ck_assert(rn__rf_maybe(&f, b));
    rn__rf_fini(&f);
    ck_assert(rn__rf_maybe(&f, a)); /* off: every key may be there */
}
END_TEST

/* Sized exactly for its keys (not rounded up to a power of two): 4 bytes a
 * key, and full at that size it still rules out most absent keys (about
 * 2.4% false "maybe"s expected; the bound leaves room for hash luck). A
 * key removed again leaves no trace once its block-mates are gone too. */
START_TEST(test_rocksdb_filter_sized)
{
    enum { KEYS = 10000, PROBES = 100000 };
    ck_assert_uint_eq(rn__rf_bytes_for(KEYS), (uint64_t)KEYS * 4);
    ck_assert_uint_eq(rn__rf_bytes_for(1000), 63 * 64); /* 4000 bytes, whole blocks */
    rn__rfilter_t f = {0};
    f.nblocks = rn__rf_bytes_for(KEYS) / 64;
    ck_assert_uint_ne(f.nblocks & (f.nblocks - 1), 0); /* not a power of two */
    f.ctr = rn_zalloc(f.nblocks, 64);
    ck_assert_ptr_nonnull(f.ctr);
    for (uint64_t i = 0; i < KEYS; i++)
        rn__rf_add(&f, XXH3_64bits(&i, sizeof(i)));
    for (uint64_t i = 0; i < KEYS; i++)
        ck_assert(rn__rf_maybe(&f, XXH3_64bits(&i, sizeof(i))));
    size_t fp = 0;
    for (uint64_t i = KEYS; i < KEYS + PROBES; i++)
        fp += rn__rf_maybe(&f, XXH3_64bits(&i, sizeof(i)));
    ck_assert_msg(fp < PROBES * 4 / 100, "%zu false maybes in %d", fp, PROBES);
    ck_assert_msg(fp > 0, "a full filter of 4 bytes a key has some false maybes");
    for (uint64_t i = 0; i < KEYS; i++)
        rn__rf_remove(&f, XXH3_64bits(&i, sizeof(i)));
    ck_assert_uint_eq(f.count, 0);
    for (size_t j = 0; j < f.nblocks * 64; j++)
        ck_assert_msg(f.ctr[j] == 0, "counter byte %zu left at %u", j, f.ctr[j]);
    rn__rf_fini(&f);
}
END_TEST

/* Random refs, puts, takes, deletes and gets over 20k values in a 1 MB
 * bound (most evicted, the filter rebuilt as it grows), checked against a
 * model after every call: the filter never turns a stored value into
 * "absent". Debug builds also check each of its answers against RocksDB. */
START_TEST(test_rocksdb_filter_model)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open_mem(&t, 1 << 20);
    enum { N = 20000, OPS = 300000 };
    uint64_t *model = calloc(N, sizeof(*model)); /* 0: absent, else the value */
    ck_assert_ptr_nonnull(model);
    uint64_t rnd = 42, live = 0;
    for (uint32_t op = 0; op < OPS; op++) {
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t i = (uint32_t)(rnd >> 33) % N;
        uint32_t what = (uint32_t)(rnd >> 20) % 8;
        key_bin(&t, &i, sizeof(i), i % 64);
        rn__skey_t k = sk(&t, (i & 1) ? S_ACC : S_A, "w");
        if (what < 3) {
            bool created;
            uint64_t *p = B->ref(t.be, &k, 16, &created, &err);
            ck_assert_ptr_nonnull(p);
            ck_assert_int_eq(created, model[i] == 0);
            ck_assert_uint_eq(p[0], model[i]);
            live += created;
            p[0] = model[i] = op + 1;
        } else if (what < 5) {
            const void *v;
            size_t len;
            rn_code_t rc = B->get(t.be, &k, &v, &len, &err);
            if (model[i] == 0) {
                ck_assert_int_eq(rc, RN_ENOTFOUND);
                continue;
            }
            ck_assert_rn_ok(rc, &err);
            uint64_t x;
            memcpy(&x, v, 8);
            ck_assert_uint_eq(x, model[i]);
        } else if (what == 5) {
            uint64_t buf[2];
            size_t len;
            rn_code_t rc = B->take(t.be, &k, buf, sizeof(buf), &len, &err);
            if (model[i] == 0) {
                ck_assert_int_eq(rc, RN_ENOTFOUND);
                continue;
            }
            ck_assert_rn_ok(rc, &err);
            ck_assert_uint_eq(buf[0], model[i]);
            model[i] = 0;
            live--;
        } else if (what == 6) {
            ck_assert_rn_ok(B->del(t.be, &k, &err), &err);
            live -= model[i] != 0;
            model[i] = 0;
        } else {
            uint64_t v[2] = {op + 1, 0};
            ck_assert_rn_ok(B->put(t.be, &k, v, sizeof(v), &err), &err);
            live += model[i] == 0;
            model[i] = op + 1;
        }
        if (op % 50000 == 0)
            ck_assert_rn_ok(rn__rdb_flush(t.be, &err), &err);
    }
    ck_assert_uint_eq(entries(&t), live);
    uint64_t skipped, rebuilt, hits, misses, evicted, written;
    rn__rdb_filter_stats(t.be, &skipped, &rebuilt);
    rn__rdb_cache_stats(t.be, &hits, &misses, &evicted, &written);
    ck_assert_uint_gt(evicted, 0);
    ck_assert_uint_gt(skipped, 0);
    ck_assert_uint_gt(rebuilt, 0); /* grew past its first 4096 keys */
    ck_assert_uint_lt(skipped, misses);
    free(model);
    B->close(t.be);
}
END_TEST

/* A rebuild sizes the counters by the keys RocksDB holds (twice them),
 * not by the count it was asked to make room for; a count more than
 * twice what RocksDB holds (values written again as deltas after an
 * eviction: the cache thrashes) or keys past the cap switch it off. */
START_TEST(test_rocksdb_filter_rebuild_sized)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open(&t);
    enum { N = 20000 };
    put_keys(&t, N, 1);
    rn__rdb_t *rdb = t.be;
    rn__rfilter_t *f = &rdb->cache.filter;
    ck_assert_ptr_nonnull(f->ctr);
    uint64_t grown = f->grown;
    /* Asked to make room for N more: twice the N held and the N more. */
    f->count = N + N / 2; /* overstated, but under twice what is held */
    ck_assert_rn_ok(rn__rf_rebuild(rdb, N, 0, &err), &err);
    ck_assert_uint_eq(f->count, N);
    ck_assert_uint_eq(rn__rf_bytes(f), rn__rf_bytes_for(4 * N));
    ck_assert_uint_eq(f->grown, grown + 1);
    for (uint32_t i = 0; i < N; i++) {
        key_bin(&t, &i, sizeof(i), i % 64);
        rn__skey_t k = sk(&t, S_ACC, "w");
        ck_assert(rn__rf_maybe(f, rn__state_hash(&k)));
    }
    /* Past the cap: off (every key "maybe"). At the cap: on. */
    ck_assert_rn_ok(rn__rf_rebuild(rdb, 0, rn__rf_bytes_for(2 * N), &err), &err);
    ck_assert_uint_eq(rn__rf_bytes(f), rn__rf_bytes_for(2 * N));
    ck_assert_rn_ok(rn__rf_rebuild(rdb, 0, rn__rf_bytes_for(2 * N) - 64, &err), &err);
    ck_assert_ptr_null(f->ctr);
    ck_assert(rn__rf_maybe(f, 12345));
    /* A key group from 32768 on would sort among the timers and past
     * the rebuild's end: refused (a key not cached, so that the check
     * is reached). */
    uint32_t big = 2 * N;
    key_bin(&t, &big, sizeof(big), 0x8000);
    rn__skey_t kb = sk(&t, S_ACC, "w");
    ck_assert_int_eq(B->put(t.be, &kb, &big, sizeof(big), &err), RN_EINVAL);
    B->close(t.be);

    /* Counted more than twice over: off. */
    tb_open(&t);
    put_keys(&t, N, 1);
    rdb = t.be;
    f = &rdb->cache.filter;
    f->count = 2 * N + 1;
    ck_assert_rn_ok(rn__rf_rebuild(rdb, 0, 0, &err), &err);
    ck_assert_ptr_null(f->ctr);
    B->close(t.be);
}
END_TEST

/* A database opened from existing files: the filter is rebuilt from them
 * before it answers, so every value written before is found. */
START_TEST(test_rocksdb_filter_reopen)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open(&t);
    enum { N = 20000 };
    put_keys(&t, N, 2);
    char path[1024];
    snprintf(path, sizeof(path), "%s", rn__rdb_path(t.be));
    ((rn__rdb_t *)t.be)->remove_on_close = false;
    B->close(t.be);

    rn_state_options_t opts = {.owner = "test#0"};
    ck_assert_rn_ok(rn__rdb_open_existing(path, &opts, &t.be, &err), &err);
    for (uint32_t i = 0; i < N; i++) {
        key_bin(&t, &i, sizeof(i), i % 64);
        rn__skey_t k = sk(&t, S_ACC, "w");
        const void *v;
        size_t len;
        rn_code_t rc = B->get(t.be, &k, &v, &len, &err);
        if (i % 2) {
            ck_assert_int_eq(rc, RN_ENOTFOUND);
            continue;
        }
        ck_assert_rn_ok(rc, &err);
        ck_assert_uint_eq(len, sizeof(i));
        ck_assert(memcmp(v, &i, sizeof(i)) == 0);
    }
    uint64_t skipped, rebuilt;
    rn__rdb_filter_stats(t.be, &skipped, &rebuilt);
    ck_assert_uint_ge(rebuilt, 1);
    ck_assert_uint_gt(skipped, N / 2 * 9 / 10); /* most absent keys: no read */
    B->close(t.be);
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- directories ---- */

static bool
exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

START_TEST(test_rocksdb_run_dir)
{
    tb_t t;
    tb_open(&t);
    char path[1024];
    snprintf(path, sizeof(path), "%s", rn__rdb_path(t.be));
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    char want[600];
    snprintf(want, sizeof(want), "%s/test#0-%d-", t.dir, (int)getpid());
    ck_assert_msg(strncmp(path, want, strlen(want)) == 0, "%s", path);
    /* A second instance of the same owner gets its own directory. */
    tb_t t2;
    tb_open(&t2);
    ck_assert_str_ne(rn__rdb_path(t2.be), path);
    B->close(t2.be);
    B->close(t.be);
    ck_assert(!exists(path));
}
END_TEST

START_TEST(test_rocksdb_stale_dir)
{
    char dir[512], dead[1024], live[1024], other[1024];
    tb_dir(dir, sizeof(dir), "unit");
    /* A pid that is certainly dead: a child that has been reaped. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    ck_assert_int_gt(pid, 0);
    waitpid(pid, NULL, 0);
    mkdir(dir, 0700);
    snprintf(dead, sizeof(dead), "%s/test#0-%d-0badc0de", dir, (int)pid);
    snprintf(live, sizeof(live), "%s/test#0-%d-0badc0de", dir, (int)getppid());
    snprintf(other, sizeof(other), "%s/test#01-%d-0badc0de", dir, (int)pid);
    ck_assert_int_eq(mkdir(dead, 0700), 0);
    ck_assert_int_eq(mkdir(live, 0700), 0);
    ck_assert_int_eq(mkdir(other, 0700), 0);
    char file[1100];
    snprintf(file, sizeof(file), "%s/CURRENT", dead);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("MANIFEST-000001\n", f);
    fclose(f);
    tb_t t;
    tb_open(&t);
    ck_assert(!exists(dead));
    ck_assert(exists(live));  /* its process is alive */
    ck_assert(exists(other)); /* another owner's */
    B->close(t.be);
    rmdir(live);
    rmdir(other);
}
END_TEST

/* ---- format version ---- */

static void
make_db(const char *path, const void *meta, size_t len)
{
    char *rerr = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_t *db = rocksdb_open(o, path, &rerr);
    ck_assert_msg(rerr == NULL, "%s", rerr);
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    if (meta != NULL)
        rocksdb_put(db, w, RN__RDB_META_KEY, RN__RDB_META_KEYLEN, meta, len, &rerr);
    ck_assert_msg(rerr == NULL, "%s", rerr);
    rocksdb_writeoptions_destroy(w);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

START_TEST(test_rocksdb_format_version)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512], path[600];
    tb_dir(dir, sizeof(dir), "format");
    mkdir(dir, 0700);
    rn_state_options_t opts = {.owner = "test#0"};
    void *be = NULL;

    snprintf(path, sizeof(path), "%s/v99", dir);
    make_db(path, "RNST\0\0\0\x63", 8);
    ck_assert_int_eq(rn__rdb_open_existing(path, &opts, &be, &err), RN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "format version 99") != NULL, "%s", err.msg);

    snprintf(path, sizeof(path), "%s/none", dir);
    make_db(path, NULL, 0);
    ck_assert_int_eq(rn__rdb_open_existing(path, &opts, &be, &err), RN_ECORRUPT);

    /* Version 2 had no merge operands: refused like any other. */
    snprintf(path, sizeof(path), "%s/v2", dir);
    make_db(path, "RNST\0\0\0\x02", 8);
    ck_assert_int_eq(rn__rdb_open_existing(path, &opts, &be, &err), RN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, "format version 2, this build reads version 3") != NULL, "%s",
                  err.msg);

    snprintf(path, sizeof(path), "%s/v3", dir);
    make_db(path, "RNST\0\0\0\x03", 8);
    ck_assert_rn_ok(rn__rdb_open_existing(path, &opts, &be, &err), &err);
    B->close(be);
    ck_assert(exists(path)); /* not a per-run directory: kept */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- timers spilled to RocksDB ---- */

typedef struct rtm {
    int64_t time;
    uint32_t kg;
    uint32_t k;  /* key "t<k>" */
    uint32_t ns; /* namespace: 4 bytes */
    bool live;
} rtm_t;

static int
rtm_cmp(const rtm_t *a, const rtm_t *b)
{
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    if (a->kg != b->kg)
        return a->kg < b->kg ? -1 : 1;
    char x[16], y[16];
    int xl = snprintf(x, sizeof(x), "t%u", a->k), yl = snprintf(y, sizeof(y), "t%u", b->k);
    int c = memcmp(x, y, (size_t)(xl < yl ? xl : yl));
    if (c == 0)
        c = (xl > yl) - (xl < yl);
    return c != 0 ? c : memcmp(&a->ns, &b->ns, 4);
}

static void
rtm_key(rn_state_t *st, const rtm_t *t)
{
    char k[16];
    int n = snprintf(k, sizeof(k), "t%u", t->k);
    rn__state_set_key(st, k, (size_t)n, t->kg);
}

static bool
count_timer_key(void *ctx, const uint8_t *key, size_t len)
{
    if (len > 0 && key[0] == RN__RDB_TIMER_TAG)
        (*(uint64_t *)ctx)++;
    return true;
}

/* A bound so small that timers spill to RocksDB all the time: random
 * register, delete and pop against a reference, with identical pop order
 * and next(); the spilled timers are in RocksDB and the in-memory timers
 * stay under their share of the bound. */
START_TEST(test_rocksdb_timers_spill)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512];
    tb_dir(dir, sizeof(dir), "timers");
    rn_state_options_t opts = {
        .backend = "rocksdb", .dir = dir, .memory_bytes = 16 << 10, .owner = "timers#0"};
    rn_state_t *st = rn__state_new(&opts, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    ck_assert_uint_gt(st->spill_budget, 0);
    ck_assert_uint_le(st->spill_budget, 16 << 10);
    enum { MAXT = 4000 };
    rtm_t *m = calloc(MAXT, sizeof(*m));
    ck_assert_ptr_nonnull(m);
    size_t n = 0, live = 0, pops = 0, maxmem = 0;
    uint64_t seed = 7;
    int64_t wm = 0;
    for (int op = 0; op < 60000; op++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(seed >> 33);
        rn_time_domain_t d = RN_TIME_EVENT;
        if (r % 100 < 60 || n == 0) {
            /* Register: mostly soon, some far ahead, some duplicates. */
            rtm_t t = {0};
            t.time = wm + 1 + (r % 7 == 0 ? (int64_t)(r >> 8) % 2000 : (int64_t)(r >> 8) % 20);
            t.k = (r >> 3) % 500;
            t.kg = t.k % 37;
            t.ns = (r >> 20) % 3;
            if (r % 11 == 0 && n > 0 && m[(r >> 4) % n].live)
                t = m[(r >> 4) % n];
            rtm_key(st, &t);
            ck_assert_rn_ok(rn__timer_register(st, d, t.time, &t.ns, 4, &err), &err);
            size_t at = n;
            for (size_t j = 0; j < n; j++)
                if (m[j].live && rtm_cmp(&m[j], &t) == 0)
                    at = j;
            if (at == n) {
                ck_assert_uint_lt(n, MAXT);
                t.live = true;
                m[n++] = t;
                live++;
            }
            const rn__timers_t *tm = &st->timers[d];
            ck_assert(tm->bytes <= st->spill_budget || tm->nheap <= 1);
            maxmem = tm->live > maxmem ? tm->live : maxmem;
        } else if (r % 100 < 75) {
            rtm_t *t = &m[(r >> 4) % n];
            rtm_key(st, t);
            ck_assert_rn_ok(rn__timer_delete(st, d, t->time, &t->ns, 4, &err), &err);
            if (t->live) {
                t->live = false;
                live--;
            }
        } else {
            /* Advance the watermark and pop up to it. */
            wm += r % 5 == 0 ? 50 : 3;
            for (;;) {
                size_t best = n;
                for (size_t j = 0; j < n; j++)
                    if (m[j].live && (best == n || rtm_cmp(&m[j], &m[best]) < 0))
                        best = j;
                ck_assert_int_eq(rn__timer_next(st, d), best == n ? INT64_MAX : m[best].time);
                rn_timer_t got;
                rn_code_t rc = rn__timer_pop(st, d, wm, &got, &err);
                if (best == n || m[best].time > wm) {
                    ck_assert_int_eq(rc, RN_ENOTFOUND);
                    break;
                }
                ck_assert_rn_ok(rc, &err);
                /* Time order is exact; within a time spilled in part, the
                 * in-memory timers pop first (state.h): find the popped one
                 * among the live timers of that time. */
                size_t klen;
                const char *k = rn__state_key(st, &klen);
                ck_assert_int_eq(got.time, m[best].time);
                ck_assert_uint_eq(got.nslen, 4);
                size_t hit = n;
                for (size_t j = 0; j < n && hit == n; j++) {
                    char want[16];
                    int wl = snprintf(want, sizeof(want), "t%u", m[j].k);
                    if (m[j].live && m[j].time == got.time &&
                        m[j].kg == rn__state_key_group(st) && klen == (size_t)wl &&
                        memcmp(k, want, klen) == 0 && memcmp(got.ns, &m[j].ns, 4) == 0)
                        hit = j;
                }
                ck_assert_msg(hit < n, "popped a timer the model does not have");
                m[hit].live = false;
                live--;
                pops++;
            }
            size_t w = 0;
            for (size_t j = 0; j < n; j++)
                if (m[j].live)
                    m[w++] = m[j];
            n = w;
        }
        if (op % 5000 == 0) {
            rn_state_stats_t stats;
            rn__state_stats(st, &stats);
            ck_assert_uint_ge(stats.timers, live); /* a spilled timer may count twice */
            /* RocksDB holds exactly the live timers memory does not. */
            uint64_t indb = 0;
            ck_assert_rn_ok(rn__rdb_timer_sync(st->be, &err), &err);
            ck_assert_rn_ok(rn__rdb_scan_keys(st->be, count_timer_key, &indb, &err), &err);
            ck_assert_uint_eq(indb + st->timers[d].live, live);
        }
    }
    ck_assert_uint_gt(pops, 10000);
    ck_assert_uint_gt(st->spill_writes, 1000);
    ck_assert_uint_gt(st->spill_loads, 1000);
    ck_assert_uint_lt(maxmem, live + pops); /* memory never held them all */
    free(m);
    rn__state_destroy(st);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- TTL: expired entries dropped in compaction (rocksdb_ttl.c) ---- */

/* The injected processing-time clock. Atomic: the compaction filter reads
 * it on RocksDB's threads. */
static _Atomic int64_t ttl_now = 1000;

static int64_t
ttl_clock(void)
{
    return atomic_load(&ttl_now);
}

/* One raw RocksDB key. */
typedef struct rawkey {
    size_t len;
    uint8_t b[96];
} rawkey_t;

typedef struct rawkeys {
    rawkey_t k[64];
    size_t n;
} rawkeys_t;

static int
rawkey_cmp(const void *a, const void *b)
{
    const rawkey_t *x = a, *y = b;
    int c = memcmp(x->b, y->b, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static bool
rawkeys_add_fn(void *ctx, const uint8_t *key, size_t len)
{
    rawkeys_t *r = ctx;
    ck_assert_uint_lt(r->n, 64);
    ck_assert_uint_le(len, sizeof(r->k[0].b));
    r->k[r->n].len = len;
    memcpy(r->k[r->n].b, key, len);
    r->n++;
    return true;
}

/* Adds the state key (kg 3, key "a") of state sid, namespace ns and the
 * suffix (a user key, or a list sequence number when seq >= 0). */
static void
rawkeys_expect(rawkeys_t *r, uint32_t sid, const char *ns, const char *ukey, int seq)
{
    ck_assert_uint_lt(r->n, 64);
    rawkey_t *k = &r->k[r->n++];
    k->len = rn__rdb_prefix(k->b, 3, sid, (const uint8_t *)"a", 1, (const uint8_t *)ns,
                            (uint32_t)strlen(ns));
    if (ukey != NULL) {
        memcpy(k->b + k->len, ukey, strlen(ukey));
        k->len += strlen(ukey);
    } else if (seq >= 0) {
        rn__rdb_be64(k->b + k->len, (uint64_t)seq);
        k->len += 8;
    }
}

static void
lstr(rn_lstate_t *ls, const char *ns, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn__lstate_add(ls, ns, strlen(ns), v, strlen(v), &err), &err);
}

static void
mstr(rn_mstate_t *ms, const char *ns, const char *uk, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn__mstate_put(ms, ns, strlen(ns), uk, strlen(uk), v, strlen(v), &err),
                    &err);
}

static void
vstr(rn_vstate_t *vs, const char *ns, const char *v)
{
    rn_error_t err = RN_ERROR_INIT;
    ck_assert_rn_ok(rn__vstate_put(vs, ns, strlen(ns), v, strlen(v), &err), &err);
}

static rn_code_t
count_fn(void *ctx, const void *k, size_t klen, const void *v, size_t vlen)
{
    (void)k;
    (void)klen;
    (void)v;
    (void)vlen;
    (*(int *)ctx)++;
    return RN_OK;
}

static rn_state_t *
ttl_open(char *dir, size_t size)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_dir(dir, size, "ttl");
    rn_state_options_t opts = {
        .backend = "rocksdb", .dir = dir, .owner = "ttl#0", .clock_ms = ttl_clock};
    atomic_store(&ttl_now, 1000);
    rn_state_t *st = rn__state_new(&opts, &err);
    ck_assert_msg(st != NULL, "%s", err.msg);
    return st;
}

static void
ttl_close(rn_state_t *st, const char *dir)
{
    rn__state_destroy(st);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Values, list elements and map entries of TTL states and of states
 * without TTL, a spilled timer and the format marker; the clock passes
 * the TTL of some; a full compaction then drops exactly the expired TTL
 * entries (the expiry == now one included, as ttl.c reads it), and keeps
 * list heads, live entries, other states, the timer and the metadata. */
START_TEST(test_rocksdb_ttl_compaction)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512];
    rn_state_t *st = ttl_open(dir, sizeof(dir));
    rn_state_ttl_t ttl = {.ttl_ms = 100};
    /* Ids 0..5 in registration order. */
    rn_vstate_t *v = rn__state_value_ttl(st, "v", &ttl, &err);
    rn_lstate_t *l = rn__state_list_ttl(st, "l", &ttl, &err);
    rn_mstate_t *m = rn__state_map_ttl(st, "m", &ttl, &err);
    rn_vstate_t *pv = rn__state_value(st, "pv", &err);
    rn_lstate_t *pl = rn__state_list(st, "pl", &err);
    rn_mstate_t *pm = rn__state_map(st, "pm", &err);
    ck_assert_msg(v && l && m && pv && pl && pm, "%s", err.msg);
    rn__state_set_key(st, "a", 1, 3);

    /* t = 1000: expires at 1100. */
    vstr(v, "old", "v1");
    lstr(l, "old", "l1");
    lstr(l, "old", "l2");
    mstr(m, "old", "x", "m1");
    mstr(m, "old", "y", "m2");
    vstr(pv, "old", "p1");
    lstr(pl, "old", "p2");
    lstr(pl, "old", "p3");
    mstr(pm, "old", "x", "p4");
    /* t = 1020: expires at 1120, the time of the compaction. */
    atomic_store(&ttl_now, 1020);
    mstr(m, "old", "w", "m3");
    /* t = 1050: expires at 1150, alive at 1120. */
    atomic_store(&ttl_now, 1050);
    vstr(v, "new", "v2");
    lstr(l, "old", "l3");
    lstr(l, "new", "l4");
    mstr(m, "old", "z", "m4");
    /* A stored timer (processing time INT64_MIN + 5, kg 3, key "a"), whose
     * bytes 2..3 read as state id 0 (v, TTL). Written as raw bytes, so
     * that it is in RocksDB however the timer store batches its writes. */
    static const char tkey[] = "\xfe\x01\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x03\x01"
                               "a";
    rn__rdb_t *rdb = st->be;
    rocksdb_writebatch_put(rdb->wb, tkey, sizeof(tkey) - 1, "", 0);
    ck_assert_rn_ok(rn__rdb_write(rdb, &err), &err);
    ck_assert_rn_ok(rn__rdb_flush(st->be, &err), &err);

    rawkeys_t want = {0}, got = {0};
    rawkeys_expect(&want, 0, "new", NULL, -1);
    rawkeys_expect(&want, 1, "old", NULL, -1); /* list heads stay */
    rawkeys_expect(&want, 1, "old", NULL, 2);
    rawkeys_expect(&want, 1, "new", NULL, -1);
    rawkeys_expect(&want, 1, "new", NULL, 0);
    rawkeys_expect(&want, 2, "old", "z", -1);
    rawkeys_expect(&want, 3, "old", NULL, -1);
    rawkeys_expect(&want, 4, "old", NULL, -1);
    rawkeys_expect(&want, 4, "old", NULL, 0);
    rawkeys_expect(&want, 4, "old", NULL, 1);
    rawkeys_expect(&want, 5, "old", "x", -1);
    rawkey_t *tk = &want.k[want.n++];
    tk->len = sizeof(tkey) - 1;
    memcpy(tk->b, tkey, tk->len);
    rawkey_t *mk_ = &want.k[want.n++];
    mk_->len = RN__RDB_META_KEYLEN;
    memcpy(mk_->b, RN__RDB_META_KEY, RN__RDB_META_KEYLEN);
    qsort(want.k, want.n, sizeof(want.k[0]), rawkey_cmp);

    /* Before: everything is there, expired or not (6 entries more). */
    atomic_store(&ttl_now, 1120);
    ck_assert_rn_ok(rn__rdb_scan_keys(st->be, rawkeys_add_fn, &got, &err), &err);
    ck_assert_uint_eq(got.n, want.n + 6);

    /* After a flush and a full compaction: exactly want. */
    ck_assert_rn_ok(rn__rdb_compact_all(st->be, &err), &err);
    got.n = 0;
    ck_assert_rn_ok(rn__rdb_scan_keys(st->be, rawkeys_add_fn, &got, &err), &err);
    ck_assert_uint_eq(got.n, want.n);
    for (size_t i = 0; i < want.n; i++)
        ck_assert_msg(got.k[i].len == want.k[i].len &&
                          memcmp(got.k[i].b, want.k[i].b, want.k[i].len) == 0,
                      "key %zu differs", i);
    ck_assert_uint_eq(rn__rdb_ttl_dropped(st->be), 6);

    /* What reads see is unchanged (they hid the expired entries anyway). */
    const void *val;
    size_t len;
    int n = 0;
    ck_assert_int_eq(rn__vstate_get(v, "old", 3, &val, &len, &err), RN_ENOTFOUND);
    ck_assert_rn_ok(rn__vstate_get(v, "new", 3, &val, &len, &err), &err);
    ck_assert(len == 2 && memcmp(val, "v2", 2) == 0);
    ck_assert_rn_ok(rn__lstate_each(l, "old", 3, count_fn, &n, &err), &err);
    ck_assert_int_eq(n, 1);
    n = 0;
    ck_assert_rn_ok(rn__mstate_each(m, "old", 3, count_fn, &n, &err), &err);
    ck_assert_int_eq(n, 1);
    n = 0;
    ck_assert_rn_ok(rn__lstate_each(pl, "old", 3, count_fn, &n, &err), &err);
    ck_assert_int_eq(n, 2);
    ck_assert_rn_ok(rn__vstate_get(pv, "old", 3, &val, &len, &err), &err);
    ck_assert(len == 2 && memcmp(val, "p1", 2) == 0);
    /* A list whose elements were dropped takes new ones after them. */
    lstr(l, "old", "l5");
    n = 0;
    ck_assert_rn_ok(rn__lstate_each(l, "old", 3, count_fn, &n, &err), &err);
    ck_assert_int_eq(n, 2);
    ttl_close(st, dir);
}
END_TEST

/* What the filter decides by, on keys the backend would not write:
 * timers and metadata with 8-byte values, malformed list keys, short
 * values, unregistered ids. */
START_TEST(test_rocksdb_ttl_keys)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512];
    rn_state_t *st = ttl_open(dir, sizeof(dir));
    const rn__rdb_ttl_t *f = ((rn__rdb_t *)st->be)->ttl;
    const uint8_t exp8[8] = {0, 0, 0, 0, 0, 0, 0x04, 0x4c}; /* 1100 */
    uint8_t k[96];
    int64_t e = 0;

    /* No TTL state yet: nothing is an entry with an expiry. */
    size_t n = rn__rdb_prefix(k, 3, 0, (const uint8_t *)"a", 1, NULL, 0);
    ck_assert(!rn__rdb_ttl_expiry(f, k, n, exp8, 8, &e));

    rn_state_ttl_t ttl = {.ttl_ms = 100};
    ck_assert_ptr_nonnull(rn__state_value_ttl(st, "v", &ttl, &err)); /* id 0 */
    ck_assert_ptr_nonnull(rn__state_list_ttl(st, "l", &ttl, &err));  /* id 1 */
    ck_assert_ptr_nonnull(rn__state_value(st, "p", &err));           /* id 2 */
    ck_assert_ptr_nonnull(rn__state_map_ttl(st, "m", &ttl, &err));   /* id 3 */

    ck_assert(rn__rdb_ttl_expiry(f, k, n, exp8, 8, &e));
    ck_assert_int_eq(e, 1100);
    ck_assert(!rn__rdb_ttl_expiry(f, k, n, exp8, 7, &e)); /* short: kept */
    /* Map: any user key, the empty one included. */
    n = rn__rdb_prefix(k, 3, 3, (const uint8_t *)"a", 1, (const uint8_t *)"w", 1);
    ck_assert(rn__rdb_ttl_expiry(f, k, n, exp8, 8, &e));
    memcpy(k + n, "uk", 2);
    ck_assert(rn__rdb_ttl_expiry(f, k, n + 2, exp8, 8, &e));
    /* No TTL. */
    n = rn__rdb_prefix(k, 3, 2, (const uint8_t *)"a", 1, NULL, 0);
    ck_assert(!rn__rdb_ttl_expiry(f, k, n, exp8, 8, &e));
    /* List: the head (no suffix) stays, elements (8-byte suffix) do not;
     * other suffixes and truncated prefixes are malformed and stay. */
    n = rn__rdb_prefix(k, 3, 1, (const uint8_t *)"abc", 3, (const uint8_t *)"ns", 2);
    ck_assert(!rn__rdb_ttl_expiry(f, k, n, exp8, 8, &e));
    memset(k + n, 0, 8);
    ck_assert(rn__rdb_ttl_expiry(f, k, n + 8, exp8, 8, &e));
    ck_assert(!rn__rdb_ttl_expiry(f, k, n + 7, exp8, 8, &e));
    ck_assert(!rn__rdb_ttl_expiry(f, k, n + 9, exp8, 8, &e));
    ck_assert(!rn__rdb_ttl_expiry(f, k, 6, exp8, 8, &e)); /* inside the key */
    k[4] = 0xff;                                           /* keylen runs off the end */
    ck_assert(!rn__rdb_ttl_expiry(f, k, n + 8, exp8, 8, &e));
    /* A key group >= 0x8000, a timer, the metadata: never. */
    uint8_t t[16] = {RN__RDB_TIMER_TAG, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 3, 1, 'a'};
    ck_assert(!rn__rdb_ttl_expiry(f, t, sizeof(t), exp8, 8, &e));
    t[0] = 0x80;
    ck_assert(!rn__rdb_ttl_expiry(f, t, sizeof(t), exp8, 8, &e));
    ck_assert(!rn__rdb_ttl_expiry(f, (const uint8_t *)RN__RDB_META_KEY, RN__RDB_META_KEYLEN,
                                  exp8, 8, &e));
    ttl_close(st, dir);
}
END_TEST

/* Merging states: a merge function reads its values in place, as the
 * window operator reads its accumulator cells (structs of int64 and
 * double): each must be aligned for them. */
static void
cells_merge(const void *ctx, void *dst, const void *src)
{
    ck_assert_msg(((uintptr_t)dst % _Alignof(int64_t)) == 0 &&
                      ((uintptr_t)src % _Alignof(int64_t)) == 0,
                  "a merge function was handed a misaligned value (%p, %p)", dst, src);
    size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++)
        ((int64_t *)dst)[i] += ((const int64_t *)src)[i];
}

/* rn__rdb_merge_fold, given values at any byte (a checkpoint's frozen
 * delta follows its key in its record, and the read of a frozen key folds
 * it in place), hands the merge function aligned copies and leaves the
 * sum at dst: small values and ones past its stack buffer alike. */
START_TEST(test_rocksdb_merge_fold_unaligned)
{
    rn_error_t err = RN_ERROR_INIT;
    tb_t t;
    tb_open(&t);
    rn__rdb_t *rdb = t.be;
    static const size_t ncells[] = {3, 3 * 20};
    for (uint32_t i = 0; i < 2; i++) {
        size_t n = ncells[i], size = n * 8;
        rn_state_merge_t m = {.size = size, .merge = cells_merge, .ctx = &ncells[i],
                              .ctxlen = sizeof(size_t)};
        ck_assert_rn_ok(rn__rdb_merge_state(t.be, S_ACC + i, &m, &err), &err);
        for (size_t off = 0; off < 8; off++) {
            _Alignas(8) uint8_t dbuf[8 + 3 * 20 * 8], sbuf[8 + 3 * 20 * 8];
            for (size_t c = 0; c < n; c++) {
                int64_t d = (int64_t)c, v = 1000 + (int64_t)c;
                memcpy(dbuf + off + 8 * c, &d, 8);
                memcpy(sbuf + 7 - off + 8 * c, &v, 8);
            }
            ck_assert(rn__rdb_merge_fold(rdb->merge, S_ACC + i, dbuf + off, sbuf + 7 - off, size));
            for (size_t c = 0; c < n; c++) {
                int64_t got;
                memcpy(&got, dbuf + off + 8 * c, 8);
                ck_assert_int_eq(got, 1000 + 2 * (int64_t)c);
            }
        }
        /* Another size is not this state's: refused, dst untouched. */
        uint8_t x[8] = {0};
        ck_assert(!rn__rdb_merge_fold(rdb->merge, S_ACC + i, x, x, size - 8));
    }
    B->close(t.be);
}
END_TEST

static Suite *
rocksdb_suite(void)
{
    Suite *s = suite_create("rocksdb");
    TCase *tc;

    tc = tcase_create("value");
    tcase_add_test(tc, test_rocksdb_value_isolation);
    tcase_add_test(tc, test_rocksdb_value_ref);
    suite_add_tcase(s, tc);

    tc = tcase_create("list");
    tcase_add_test(tc, test_rocksdb_list);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_add_test(tc, test_rocksdb_map);
    suite_add_tcase(s, tc);

    tc = tcase_create("merge");
    tcase_add_test(tc, test_rocksdb_merge_fold_unaligned);
    suite_add_tcase(s, tc);

    tc = tcase_create("cache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rocksdb_evictions);
    tcase_add_test(tc, test_rocksdb_cache_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("filter");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rocksdb_filter_counts);
    tcase_add_test(tc, test_rocksdb_filter_sized);
    tcase_add_test(tc, test_rocksdb_filter_model);
    tcase_add_test(tc, test_rocksdb_filter_rebuild_sized);
    tcase_add_test(tc, test_rocksdb_filter_reopen);
    suite_add_tcase(s, tc);

    tc = tcase_create("dirs");
    tcase_add_test(tc, test_rocksdb_run_dir);
    tcase_add_test(tc, test_rocksdb_stale_dir);
    tcase_add_test(tc, test_rocksdb_format_version);
    suite_add_tcase(s, tc);

    tc = tcase_create("ttl");
    tcase_add_test(tc, test_rocksdb_ttl_compaction);
    tcase_add_test(tc, test_rocksdb_ttl_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("timers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rocksdb_timers_spill);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(rocksdb_suite)
