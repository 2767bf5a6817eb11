/*
 * tests/unit/test_windows.c: the pure parts of window_aggregate: window
 * assignment (windows/assign.c), session merging, namespaces, aggregate
 * parsing and accumulators (windows/accum.c). The operator itself runs end
 * to end in tests/integration/test_windows_basic.sh.
 */
#include "rn_check.h"
#include "windows/window_int.h"

static rn_win_t
W(int64_t s, int64_t e)
{
    rn_win_t w = {s, e};
    return w;
}

#define ck_win(w, s, e)                                                                            \
    do {                                                                                           \
        ck_assert_int_eq((w).start, (s));                                                          \
        ck_assert_int_eq((w).end, (e));                                                            \
    } while (0)

/* ---- assignment ---- */

START_TEST(test_windows_tumbling)
{
    rn_win_spec_t spec = {.kind = RN_WIN_TUMBLING, .size = 5000};
    rn_win_t w[1];
    ck_assert_uint_eq(rn__win_max_windows(&spec), 1);
    ck_assert_uint_eq(rn__win_assign(&spec, 0, w), 1);
    ck_win(w[0], 0, 5000);
    rn__win_assign(&spec, 4999, w);
    ck_win(w[0], 0, 5000);
    rn__win_assign(&spec, 5000, w);
    ck_win(w[0], 5000, 10000);
    /* Negative timestamps round down, not toward zero. */
    rn__win_assign(&spec, -1, w);
    ck_win(w[0], -5000, 0);
    rn__win_assign(&spec, -5000, w);
    ck_win(w[0], -5000, 0);
    rn__win_assign(&spec, -5001, w);
    ck_win(w[0], -10000, -5000);
    rn__win_assign(&spec, 1700000012345, w);
    ck_win(w[0], 1700000010000, 1700000015000);
    ck_assert_int_eq(rn__win_start(7, 1), 7);
    /* Near the ends of the range the end saturates rather than wraps. */
    rn__win_assign(&spec, INT64_MAX, w);
    ck_assert_int_eq(w[0].end, INT64_MAX);
    ck_assert_int_le(w[0].start, INT64_MAX);
}
END_TEST

START_TEST(test_windows_sliding)
{
    rn_win_spec_t spec = {.kind = RN_WIN_SLIDING, .size = 10, .slide = 5};
    rn_win_t w[4];
    ck_assert_uint_eq(rn__win_max_windows(&spec), 2);
    ck_assert_uint_eq(rn__win_assign(&spec, 7, w), 2);
    ck_win(w[0], 5, 15);
    ck_win(w[1], 0, 10);
    ck_assert_uint_eq(rn__win_assign(&spec, 5, w), 2);
    ck_win(w[0], 5, 15);
    ck_win(w[1], 0, 10);
    ck_assert_uint_eq(rn__win_assign(&spec, 4, w), 2);
    ck_win(w[0], 0, 10);
    ck_win(w[1], -5, 5);
    ck_assert_uint_eq(rn__win_assign(&spec, -1, w), 2);
    ck_win(w[0], -5, 5);
    ck_win(w[1], -10, 0);

    /* Size not a multiple of slide (allowed, as in Flink). */
    rn_win_spec_t odd = {.kind = RN_WIN_SLIDING, .size = 10, .slide = 4};
    ck_assert_uint_eq(rn__win_max_windows(&odd), 3);
    ck_assert_uint_eq(rn__win_assign(&odd, 8, w), 3); /* [8,18) [4,14) [0,10) */
    ck_win(w[0], 8, 18);
    ck_win(w[2], 0, 10);
    ck_assert_uint_eq(rn__win_assign(&odd, 9, w), 3);
    ck_assert_uint_eq(rn__win_assign(&odd, 10, w), 2); /* [8,18) [4,14) */
    ck_win(w[1], 4, 14);

    /* slide > size: gaps between windows, some timestamps in none. */
    rn_win_spec_t gappy = {.kind = RN_WIN_SLIDING, .size = 3, .slide = 10};
    ck_assert_uint_eq(rn__win_assign(&gappy, 12, w), 1);
    ck_win(w[0], 10, 13);
    ck_assert_uint_eq(rn__win_assign(&gappy, 13, w), 0);
}
END_TEST

START_TEST(test_windows_session)
{
    rn_win_spec_t spec = {.kind = RN_WIN_SESSION, .gap = 30};
    rn_win_t w[1];
    ck_assert_uint_eq(rn__win_assign(&spec, 100, w), 1);
    ck_win(w[0], 100, 130);
    rn__win_assign(&spec, -100, w);
    ck_win(w[0], -100, -70);

    ck_assert(rn__win_intersects(W(0, 10), W(10, 20))); /* touching merges */
    ck_assert(rn__win_intersects(W(0, 10), W(5, 6)));
    ck_assert(!rn__win_intersects(W(0, 10), W(11, 20)));
    ck_win(rn__win_cover(W(5, 10), W(0, 7)), 0, 10);
}
END_TEST

START_TEST(test_windows_session_merge)
{
    rn_win_t sessions[] = {W(0, 10), W(20, 30), W(40, 50), W(100, 110)};
    bool hit[4];
    rn_win_t m;

    /* Alone. */
    ck_assert_uint_eq(rn__win_session_merge(sessions, 4, W(60, 70), &m, hit), 0);
    ck_win(m, 60, 70);
    ck_assert(!hit[0] && !hit[1] && !hit[2] && !hit[3]);
    /* Inside one. */
    ck_assert_uint_eq(rn__win_session_merge(sessions, 4, W(22, 28), &m, hit), 1);
    ck_win(m, 20, 30);
    ck_assert(hit[1] && !hit[0] && !hit[2]);
    /* Extends one (touching at its end). */
    ck_assert_uint_eq(rn__win_session_merge(sessions, 4, W(110, 120), &m, hit), 1);
    ck_win(m, 100, 120);
    ck_assert(hit[3]);
    /* Bridges two and touches a third: chains are followed. */
    ck_assert_uint_eq(rn__win_session_merge(sessions, 4, W(8, 20), &m, hit), 2);
    ck_win(m, 0, 30);
    ck_assert_uint_eq(rn__win_session_merge(sessions, 4, W(10, 40), &m, hit), 3);
    ck_win(m, 0, 50);
    ck_assert(hit[0] && hit[1] && hit[2] && !hit[3]);
    /* Empty set. */
    ck_assert_uint_eq(rn__win_session_merge(NULL, 0, W(1, 2), &m, hit), 0);
    ck_win(m, 1, 2);
}
END_TEST

START_TEST(test_windows_namespace)
{
    uint8_t a[RN_WIN_NS_LEN], b[RN_WIN_NS_LEN];
    rn_win_t ws[] = {W(-10, 0), W(-1, 5), W(0, 5), W(0, 6), W(5, 10), W(INT64_MIN, INT64_MAX)};
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        rn__win_ns_encode(ws[i], a);
        rn_win_t d = rn__win_ns_decode(a);
        ck_win(d, ws[i].start, ws[i].end);
    }
    /* Namespaces order as windows (start, then end). */
    for (size_t i = 0; i + 1 < 5; i++) {
        rn__win_ns_encode(ws[i], a);
        rn__win_ns_encode(ws[i + 1], b);
        ck_assert_int_lt(memcmp(a, b, RN_WIN_NS_LEN), 0);
    }
    ck_assert_int_eq(rn__win_add_sat(INT64_MAX - 1, 5), INT64_MAX);
    ck_assert_int_eq(rn__win_add_sat(INT64_MIN + 1, -5), INT64_MIN);
    ck_assert_int_eq(rn__win_add_sat(10, -5), 5);
}
END_TEST

/* ---- aggregate parsing ---- */

static rn_schema_t *
schema(void)
{
    rn_schema_t *s = rn__schema_new();
    rn__schema_add(s, "user", RN_TYPE_STRING, NULL);
    rn__schema_add(s, "amount", RN_TYPE_INT, NULL);
    rn__schema_add(s, "price", RN_TYPE_FLOAT, NULL);
    rn__schema_add(s, "ok", RN_TYPE_BOOL, NULL);
    rn__schema_add(s, "ts", RN_TYPE_TIMESTAMP, NULL);
    return s;
}

static void
ck_parse(const rn_schema_t *s, const char *text, rn_agg_fn_t fn, int arg, rn_type_t out)
{
    rn_agg_t agg;
    char msg[256];
    size_t off;
    rn_code_t rc = rn__agg_parse(text, s, &agg, &off, msg, sizeof(msg));
    ck_assert_msg(rc == RN_OK, "%s: %s", text, msg);
    ck_assert_int_eq(agg.fn, fn);
    ck_assert_int_eq(agg.arg, arg);
    ck_assert_int_eq(agg.out, out);
}

static void
ck_parse_err(const rn_schema_t *s, const char *text, size_t want_off, const char *want)
{
    rn_agg_t agg;
    char msg[256];
    size_t off = 999;
    ck_assert_int_eq(rn__agg_parse(text, s, &agg, &off, msg, sizeof(msg)), RN_EINVAL);
    ck_assert_msg(strstr(msg, want) != NULL, "%s: got '%s', want '%s'", text, msg, want);
    ck_assert_msg(off == want_off, "%s: offset %zu, want %zu (%s)", text, off, want_off, msg);
}

START_TEST(test_windows_agg_parse)
{
    rn_schema_t *s = schema();
    ck_parse(s, "count()", RN_AGG_COUNT, -1, RN_TYPE_INT);
    ck_parse(s, "  count ( ) ", RN_AGG_COUNT, -1, RN_TYPE_INT);
    ck_parse(s, "count(user)", RN_AGG_COUNT, 0, RN_TYPE_INT);
    ck_parse(s, "sum(amount)", RN_AGG_SUM, 1, RN_TYPE_INT);
    ck_parse(s, "sum( price )", RN_AGG_SUM, 2, RN_TYPE_FLOAT);
    ck_parse(s, "avg(amount)", RN_AGG_AVG, 1, RN_TYPE_FLOAT);
    ck_parse(s, "min(user)", RN_AGG_MIN, 0, RN_TYPE_STRING);
    ck_parse(s, "max(ts)", RN_AGG_MAX, 4, RN_TYPE_TIMESTAMP);
    ck_parse(s, "first(ok)", RN_AGG_FIRST, 3, RN_TYPE_BOOL);
    ck_parse(s, "last(price)", RN_AGG_LAST, 2, RN_TYPE_FLOAT);
    ck_parse(s, "count_distinct(user)", RN_AGG_COUNT_DISTINCT, 0, RN_TYPE_INT);

    ck_parse_err(s, "", 0, "expected an aggregate");
    ck_parse_err(s, "cont()", 0, "did you mean 'count'");
    ck_parse_err(s, "median(amount)", 0, "unknown aggregate function 'median'");
    ck_parse_err(s, "sum amount", 4, "expected '(' after 'sum'");
    ck_parse_err(s, "sum()", 4, "sum() needs a field");
    ck_parse_err(s, "sum(amount", 10, "expected ')'");
    ck_parse_err(s, "sum(amount, price)", 10, "takes one field");
    ck_parse_err(s, "sum(amount) + 1", 12, "unexpected '+ 1'");
    ck_parse_err(s, "sum(amont)", 4, "did you mean 'amount'");
    ck_parse_err(s, "sum(zzzzzz)", 4, "input fields: user: string");
    ck_parse_err(s, "sum(user)", 4, "sum() needs an int or float field; 'user' is string");
    ck_parse_err(s, "avg(ts)", 4, "'ts' is timestamp");
    ck_parse_err(s, "avg(ok)", 4, "'ok' is bool");
    ck_parse_err(s, "count_distinct()", 15, "needs a field");
    rn__schema_destroy(s);
}
END_TEST

/* ---- accumulators ---- */

static rn_agg_t
agg_of(const char *text)
{
    rn_schema_t *s = schema();
    rn_agg_t agg;
    char msg[256];
    size_t off;
    ck_assert_msg(rn__agg_parse(text, s, &agg, &off, msg, sizeof(msg)) == RN_OK, "%s", msg);
    rn__schema_destroy(s);
    return agg;
}

/* Folds (value, ts) pairs into a fresh cell. */
static rn_acc_cell_t
fold(const rn_agg_t *agg, const rn_value_t *vals, const int64_t *ts, size_t n)
{
    rn_acc_cell_t c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < n; i++)
        rn__acc_add(agg, &c, &vals[i], ts[i]);
    return c;
}

START_TEST(test_windows_acc_numeric)
{
    rn_value_t ints[] = {rn__val_int(5), rn__val_null(), rn__val_int(-3), rn__val_int(9)};
    rn_value_t flts[] = {rn__val_float(1.5), rn__val_float(-2.25), rn__val_null(),
                         rn__val_float(4.0)};
    rn_value_t bools[] = {rn__val_bool(true), rn__val_bool(false), rn__val_null(),
                          rn__val_bool(true)};
    int64_t ts[] = {30, 10, 5, 20};
    rn_agg_t a;
    rn_acc_cell_t c;
    rn_value_t r;

    a = agg_of("count()");
    c = fold(&a, ints, ts, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, 4); /* rows, nulls included */
    a = agg_of("count(amount)");
    c = fold(&a, ints, ts, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, 3);

    a = agg_of("sum(amount)");
    c = fold(&a, ints, ts, 4);
    r = rn__acc_result(&a, &c);
    ck_assert(!r.null);
    ck_assert_int_eq(r.u.i, 11);
    a = agg_of("sum(price)");
    c = fold(&a, flts, ts, 4);
    ck_assert_double_eq(rn__acc_result(&a, &c).u.f, 3.25);
    a = agg_of("avg(amount)");
    c = fold(&a, ints, ts, 4);
    ck_assert_double_eq_tol(rn__acc_result(&a, &c).u.f, 11.0 / 3.0, 1e-12);
    a = agg_of("avg(price)");
    c = fold(&a, flts, ts, 4);
    ck_assert_double_eq_tol(rn__acc_result(&a, &c).u.f, 3.25 / 3.0, 1e-12);

    a = agg_of("min(amount)");
    c = fold(&a, ints, ts, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, -3);
    a = agg_of("max(amount)");
    c = fold(&a, ints, ts, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, 9);
    a = agg_of("min(price)");
    c = fold(&a, flts, ts, 4);
    ck_assert_double_eq(rn__acc_result(&a, &c).u.f, -2.25);
    a = agg_of("max(price)");
    c = fold(&a, flts, ts, 4);
    ck_assert_double_eq(rn__acc_result(&a, &c).u.f, 4.0);
    a = agg_of("min(ok)");
    c = fold(&a, bools, ts, 4);
    r = rn__acc_result(&a, &c);
    ck_assert(!r.null && r.u.b == false);

    /* first/last go by event time, not arrival: ts 10 is first, 30 last. */
    a = agg_of("first(amount)");
    c = fold(&a, ints, ts, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, -3);
    a = agg_of("last(amount)");
    c = fold(&a, ints, ts, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, 5);
    a = agg_of("last(ok)");
    c = fold(&a, bools, ts, 4);
    r = rn__acc_result(&a, &c);
    ck_assert(!r.null && r.u.b == true);
    /* Equal times: last takes the later arrival, first keeps the earlier. */
    int64_t same[] = {7, 7, 7, 7};
    a = agg_of("last(amount)");
    c = fold(&a, ints, same, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, 9);
    a = agg_of("first(amount)");
    c = fold(&a, ints, same, 4);
    ck_assert_int_eq(rn__acc_result(&a, &c).u.i, 5);

    /* Nothing seen: null, but counts are 0. */
    rn_value_t nulls[] = {rn__val_null()};
    const char *fns[] = {"sum(amount)", "avg(price)", "min(amount)", "max(ts)", "first(ok)",
                         "last(price)"};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        a = agg_of(fns[i]);
        c = fold(&a, nulls, ts, 1);
        ck_assert_msg(rn__acc_result(&a, &c).null, "%s", fns[i]);
    }
    a = agg_of("count(amount)");
    c = fold(&a, nulls, ts, 1);
    r = rn__acc_result(&a, &c);
    ck_assert(!r.null && r.u.i == 0);
    a = agg_of("count_distinct(amount)");
    memset(&c, 0, sizeof(c));
    r = rn__acc_result(&a, &c);
    ck_assert(!r.null && r.u.i == 0);
}
END_TEST

/* Runs the string protocol of the operator against a plain buffer. */
typedef struct sacc {
    rn_acc_cell_t c;
    char stored[64];
    size_t len;
} sacc_t;

static void
sadd(const rn_agg_t *a, sacc_t *s, const char *v, int64_t ts)
{
    rn_acc_str_t d = rn__acc_str_decide(a, &s->c, v, strlen(v), ts);
    if (d == RN_ACC_COMPARE)
        d = rn__acc_str_beats(a, v, strlen(v), s->stored, s->len) ? RN_ACC_REPLACE : RN_ACC_KEEP;
    if (d == RN_ACC_REPLACE) {
        s->len = strlen(v);
        memcpy(s->stored, v, s->len);
        rn__acc_str_set(&s->c, v, s->len, ts);
    }
    s->c.n++;
}

static const char *
sres(sacc_t *s)
{
    s->stored[s->len] = '\0';
    return s->stored;
}

START_TEST(test_windows_acc_string)
{
    const char *vals[] = {"pear", "apple", "applesauce-long", "apple\x01", "zebra-and-more", "b"};
    int64_t ts[] = {50, 20, 40, 10, 30, 60};
    rn_agg_t a;
    sacc_t s;

    a = agg_of("min(user)");
    ck_assert(a.is_string);
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 6; i++)
        sadd(&a, &s, vals[i], ts[i]);
    ck_assert_str_eq(sres(&s), "apple");
    ck_assert_int_eq(s.c.n, 6);

    a = agg_of("max(user)");
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 6; i++)
        sadd(&a, &s, vals[i], ts[i]);
    ck_assert_str_eq(sres(&s), "zebra-and-more");

    /* Same 8-byte prefix: decided on the full bytes. */
    const char *longs[] = {"prefix00-b", "prefix00-a", "prefix00-c", "prefix00"};
    a = agg_of("min(user)");
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 4; i++)
        sadd(&a, &s, longs[i], i);
    ck_assert_str_eq(sres(&s), "prefix00");
    a = agg_of("max(user)");
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 4; i++)
        sadd(&a, &s, longs[i], i);
    ck_assert_str_eq(sres(&s), "prefix00-c");

    a = agg_of("first(user)");
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 6; i++)
        sadd(&a, &s, vals[i], ts[i]);
    ck_assert_str_eq(sres(&s), "apple\x01");
    a = agg_of("last(user)");
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 6; i++)
        sadd(&a, &s, vals[i], ts[i]);
    ck_assert_str_eq(sres(&s), "b");
}
END_TEST

START_TEST(test_windows_acc_merge)
{
    rn_value_t v1[] = {rn__val_int(5), rn__val_int(1)};
    rn_value_t v2[] = {rn__val_int(-2), rn__val_null(), rn__val_int(8)};
    int64_t t1[] = {100, 110};
    int64_t t2[] = {50, 60, 200};
    struct {
        const char *fn;
        int64_t want;
    } cases[] = {{"count()", 5},       {"count(amount)", 4}, {"sum(amount)", 12},
                 {"min(amount)", -2},  {"max(amount)", 8},   {"first(amount)", -2},
                 {"last(amount)", 8}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rn_agg_t a = agg_of(cases[i].fn);
        rn_acc_cell_t d = fold(&a, v1, t1, 2), s = fold(&a, v2, t2, 3);
        rn__acc_merge(&a, &d, &s);
        ck_assert_msg(rn__acc_result(&a, &d).u.i == cases[i].want, "%s: %lld", cases[i].fn,
                      (long long)rn__acc_result(&a, &d).u.i);
        /* Merging an empty cell changes nothing; into an empty one copies. */
        rn_acc_cell_t e;
        memset(&e, 0, sizeof(e));
        rn_acc_cell_t before = d;
        rn__acc_merge(&a, &d, &e);
        ck_assert(memcmp(&before, &d, sizeof(d)) == 0);
        rn__acc_merge(&a, &e, &d);
        ck_assert_int_eq(rn__acc_result(&a, &e).u.i, cases[i].want);
    }
    rn_agg_t a = agg_of("avg(amount)");
    rn_acc_cell_t d = fold(&a, v1, t1, 2), s = fold(&a, v2, t2, 3);
    rn__acc_merge(&a, &d, &s);
    ck_assert_double_eq(rn__acc_result(&a, &d).u.f, 12.0 / 4.0);

    /* Strings: decided from the cells, with COMPARE on equal prefixes. */
    a = agg_of("min(user)");
    sacc_t x, y;
    memset(&x, 0, sizeof(x));
    memset(&y, 0, sizeof(y));
    sadd(&a, &x, "melon", 1);
    sadd(&a, &y, "kiwi", 2);
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &x.c, &y.c), RN_ACC_REPLACE);
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &y.c, &x.c), RN_ACC_KEEP);
    sacc_t z;
    memset(&z, 0, sizeof(z));
    sadd(&a, &z, "melon-2", 3);
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &z.c, &x.c), RN_ACC_REPLACE);
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &x.c, &z.c), RN_ACC_KEEP);
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &z.c, &x.c), RN_ACC_REPLACE);
    a = agg_of("first(user)");
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &y.c, &x.c), RN_ACC_REPLACE); /* ts 1 < 2 */
    a = agg_of("last(user)");
    ck_assert_int_eq(rn__acc_merge_str_decide(&a, &y.c, &x.c), RN_ACC_KEEP);
}
END_TEST

START_TEST(test_windows_acc_distinct_bytes)
{
    uint8_t b1[8], b2[8];
    const uint8_t *p1, *p2;
    rn_value_t pz = rn__val_float(0.0), nz = rn__val_float(-0.0);
    size_t n1 = rn__acc_distinct_bytes(RN_TYPE_FLOAT, &pz, b1, &p1);
    size_t n2 = rn__acc_distinct_bytes(RN_TYPE_FLOAT, &nz, b2, &p2);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(p1, p2, n1) == 0);
    rn_value_t s = rn__val_str("abc", 3);
    ck_assert_uint_eq(rn__acc_distinct_bytes(RN_TYPE_STRING, &s, b1, &p1), 3);
    ck_assert(memcmp(p1, "abc", 3) == 0);
    rn_value_t t = rn__val_bool(true);
    ck_assert_uint_eq(rn__acc_distinct_bytes(RN_TYPE_BOOL, &t, b1, &p1), 1);
    rn_value_t i1 = rn__val_int(1), i2 = rn__val_int(256);
    n1 = rn__acc_distinct_bytes(RN_TYPE_INT, &i1, b1, &p1);
    n2 = rn__acc_distinct_bytes(RN_TYPE_INT, &i2, b2, &p2);
    ck_assert(memcmp(p1, p2, 8) != 0);
}
END_TEST

static Suite *
windows_suite(void)
{
    Suite *s = suite_create("windows");
    TCase *tc;

    tc = tcase_create("assign");
    tcase_add_test(tc, test_windows_tumbling);
    tcase_add_test(tc, test_windows_sliding);
    tcase_add_test(tc, test_windows_session);
    tcase_add_test(tc, test_windows_session_merge);
    tcase_add_test(tc, test_windows_namespace);
    suite_add_tcase(s, tc);

    tc = tcase_create("aggregates");
    tcase_add_test(tc, test_windows_agg_parse);
    tcase_add_test(tc, test_windows_acc_numeric);
    tcase_add_test(tc, test_windows_acc_string);
    tcase_add_test(tc, test_windows_acc_merge);
    tcase_add_test(tc, test_windows_acc_distinct_bytes);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(windows_suite)
