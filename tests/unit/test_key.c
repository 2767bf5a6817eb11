/*
 * tests/unit/test_key.c: the key encoding and key groups of stream/key.c.
 *
 * The encoding is a format (key.h: "the same bytes on every machine and
 * every build of this format version"): a few exact byte sequences are
 * pinned here, so that a change to it shows up as a failing test and a
 * bump of RN_KEY_FORMAT_VERSION rather than as state that no longer reads
 * back. Order tests check that memcmp of the encodings orders as the values
 * do, for the types for which key.h promises it.
 */
#include "rn_check.h"

#include "stream/key.h"

#include <float.h>
#include <math.h>

/* A one-field key spec over a one-cell row. */
static rn_keyspec_t
spec1(rn_type_t type)
{
    rn_keyspec_t ks;
    memset(&ks, 0, sizeof(ks));
    ks.n = 1;
    ks.fields[0] = 0;
    ks.types[0] = type;
    return ks;
}

static size_t
enc1(rn_type_t type, rn_value_t v, uint8_t *buf, size_t size)
{
    rn_keyspec_t ks = spec1(type);
    return rn__key_encode(&ks, &v, buf, size);
}

/* memcmp with the shorter sequence first on a common prefix. */
static int
bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

static int
sign(int c)
{
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

/* Encodes, decodes (with and without an arena) and compares. */
static void
ck_roundtrip(const rn_keyspec_t *ks, const rn_value_t *row, size_t bufsize)
{
    uint8_t *buf = malloc(bufsize);
    rn_value_t out[RN_KEY_FIELDS_MAX];
    rn_arena_t arena;

    ck_assert_ptr_nonnull(buf);
    size_t n = rn__key_encode(ks, row, buf, bufsize);
    ck_assert_uint_gt(n, 0);
    for (int with_arena = 0; with_arena < 2; with_arena++) {
        rn__arena_init(&arena);
        memset(out, 0xa5, sizeof(out));
        ck_assert_int_eq(rn__key_decode(ks->types, ks->n, buf, n, with_arena ? &arena : NULL,
                                        out),
                         RN_OK);
        for (uint32_t i = 0; i < ks->n; i++) {
            const rn_value_t *want = &row[ks->fields[i]];
            ck_assert_msg(out[i].null == want->null, "field %u: null %d, want %d", i,
                          out[i].null, want->null);
            if (want->null)
                continue;
            switch (ks->types[i]) {
            case RN_TYPE_INT:
            case RN_TYPE_TIMESTAMP: ck_assert_int_eq(out[i].u.i, want->u.i); break;
            case RN_TYPE_FLOAT:
                /* Bit for bit: -0.0 stays -0.0, NaN payloads survive. */
                ck_assert(memcmp(&out[i].u.f, &want->u.f, sizeof(double)) == 0);
                break;
            case RN_TYPE_BOOL: ck_assert(out[i].u.b == want->u.b); break;
            case RN_TYPE_STRING:
                ck_assert_uint_eq(out[i].len, want->len);
                ck_assert(want->len == 0 || memcmp(out[i].u.s, want->u.s, want->len) == 0);
                if (with_arena) {
                    /* Copied out of the key bytes. */
                    ck_assert(out[i].len == 0 ||
                              !((const uint8_t *)out[i].u.s >= buf &&
                                (const uint8_t *)out[i].u.s < buf + n));
                } else if (out[i].len > 0) {
                    /* Borrowed from the key bytes. */
                    ck_assert((const uint8_t *)out[i].u.s > buf &&
                              (const uint8_t *)out[i].u.s + out[i].len <= buf + n);
                }
                break;
            case RN_TYPE_NULL: break;
            }
        }
        rn__arena_fini(&arena);
    }
    free(buf);
}

/* ---- round trips ---- */

START_TEST(test_key_roundtrip_ints)
{
    static const int64_t vals[] = {0, 1, -1, 42, -42, 255, 256, INT32_MAX, INT32_MIN,
                                   INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
                                   1700000000000LL};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        rn_value_t v = rn__val_int(vals[i]);
        rn_keyspec_t ks = spec1(RN_TYPE_INT);
        ck_roundtrip(&ks, &v, 64);
        ks = spec1(RN_TYPE_TIMESTAMP);
        ck_roundtrip(&ks, &v, 64);
    }
}
END_TEST

START_TEST(test_key_roundtrip_floats)
{
    const double vals[] = {0.0,    -0.0,     1.0,     -1.0,     0.5,       -0.5,     1e300,
                           -1e300, 5e-324,   -5e-324, DBL_MAX,  -DBL_MAX,  INFINITY, -INFINITY,
                           NAN,    3.141592653589793};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        rn_value_t v = rn__val_float(vals[i]);
        rn_keyspec_t ks = spec1(RN_TYPE_FLOAT);
        ck_roundtrip(&ks, &v, 64);
    }
}
END_TEST

START_TEST(test_key_roundtrip_bool_and_null)
{
    rn_value_t v;
    rn_keyspec_t ks;
    static const rn_type_t types[] = {RN_TYPE_INT, RN_TYPE_TIMESTAMP, RN_TYPE_FLOAT,
                                      RN_TYPE_BOOL, RN_TYPE_STRING};

    ks = spec1(RN_TYPE_BOOL);
    v = rn__val_bool(true);
    ck_roundtrip(&ks, &v, 8);
    v = rn__val_bool(false);
    ck_roundtrip(&ks, &v, 8);
    /* A null of every type is the one tag byte 0x00. */
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint8_t buf[16];
        ks = spec1(types[i]);
        v = rn__val_null();
        ck_roundtrip(&ks, &v, 16);
        ck_assert_uint_eq(rn__key_encode(&ks, &v, buf, sizeof(buf)), 1);
        ck_assert_uint_eq(buf[0], 0);
    }
}
END_TEST

START_TEST(test_key_roundtrip_strings)
{
    /* Lengths around every varint boundary (1, 2 and 3 length bytes). */
    static const size_t lens[] = {0, 1, 2, 126, 127, 128, 129, 255, 4000, 16383, 16384, 100000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *s = malloc(lens[i] + 1);
        ck_assert_ptr_nonnull(s);
        for (size_t k = 0; k < lens[i]; k++)
            s[k] = (char)(k * 7 + i); /* every byte value, NUL included */
        rn_value_t v = rn__val_str(s, (uint32_t)lens[i]);
        rn_keyspec_t ks = spec1(RN_TYPE_STRING);
        ck_roundtrip(&ks, &v, lens[i] + 16);
        free(s);
    }
}
END_TEST

START_TEST(test_key_roundtrip_composite)
{
    /* Key fields are picked out of a wider row, in key order, not row order. */
    rn_value_t row[6];
    rn_keyspec_t ks;
    row[0] = rn__val_str("user-1", 6);
    row[1] = rn__val_int(-7);
    row[2] = rn__val_float(-2.5);
    row[3] = rn__val_bool(true);
    row[4] = rn__val_null();
    row[5] = rn__val_int(1700000000123LL);
    memset(&ks, 0, sizeof(ks));
    ks.n = 6;
    const int fields[] = {5, 3, 0, 4, 2, 1};
    const rn_type_t types[] = {RN_TYPE_TIMESTAMP, RN_TYPE_BOOL, RN_TYPE_STRING,
                               RN_TYPE_STRING,    RN_TYPE_FLOAT, RN_TYPE_INT};
    for (int i = 0; i < 6; i++) {
        ks.fields[i] = fields[i];
        ks.types[i] = types[i];
    }
    ck_roundtrip(&ks, row, 128);

    /* Size: tag + 8, tag + 1, tag + 1 + 6, tag, tag + 8, tag + 8. */
    uint8_t buf[128];
    ck_assert_uint_eq(rn__key_encode(&ks, row, buf, sizeof(buf)), 9 + 2 + 8 + 1 + 9 + 9);

    /* The maximum number of fields. */
    rn_value_t many[RN_KEY_FIELDS_MAX];
    memset(&ks, 0, sizeof(ks));
    ks.n = RN_KEY_FIELDS_MAX;
    for (int i = 0; i < RN_KEY_FIELDS_MAX; i++) {
        many[i] = i % 3 == 2 ? rn__val_null() : rn__val_int(i * 1000 - 3);
        ks.fields[i] = i;
        ks.types[i] = RN_TYPE_INT;
    }
    ck_roundtrip(&ks, many, 256);
}
END_TEST

/* Pinned bytes: this is key format version 1. */
START_TEST(test_key_format_pinned)
{
    uint8_t buf[32];
    size_t n;

    ck_assert_int_eq(RN_KEY_FORMAT_VERSION, 1);

    n = enc1(RN_TYPE_INT, rn__val_int(1), buf, sizeof(buf));
    static const uint8_t int1[] = {1, 0x80, 0, 0, 0, 0, 0, 0, 1};
    ck_assert_uint_eq(n, sizeof(int1));
    ck_assert(memcmp(buf, int1, n) == 0);

    n = enc1(RN_TYPE_INT, rn__val_int(-1), buf, sizeof(buf));
    static const uint8_t intm1[] = {1, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_uint_eq(n, sizeof(intm1));
    ck_assert(memcmp(buf, intm1, n) == 0);

    n = enc1(RN_TYPE_FLOAT, rn__val_float(1.0), buf, sizeof(buf));
    static const uint8_t f1[] = {1, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0};
    ck_assert_uint_eq(n, sizeof(f1));
    ck_assert(memcmp(buf, f1, n) == 0);

    n = enc1(RN_TYPE_FLOAT, rn__val_float(-1.0), buf, sizeof(buf));
    static const uint8_t fm1[] = {1, 0x40, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_uint_eq(n, sizeof(fm1));
    ck_assert(memcmp(buf, fm1, n) == 0);

    n = enc1(RN_TYPE_BOOL, rn__val_bool(true), buf, sizeof(buf));
    ck_assert_uint_eq(n, 2);
    ck_assert(buf[0] == 1 && buf[1] == 1);

    n = enc1(RN_TYPE_STRING, rn__val_str("k42", 3), buf, sizeof(buf));
    static const uint8_t k42[] = {1, 3, 'k', '4', '2'};
    ck_assert_uint_eq(n, sizeof(k42));
    ck_assert(memcmp(buf, k42, n) == 0);

    /* 300 = 0b10_0101100: varint 0xac 0x02. */
    char s300[300];
    memset(s300, 'x', sizeof(s300));
    uint8_t big[320];
    n = enc1(RN_TYPE_STRING, rn__val_str(s300, 300), big, sizeof(big));
    ck_assert_uint_eq(n, 1 + 2 + 300);
    ck_assert(big[0] == 1 && big[1] == 0xac && big[2] == 0x02 && big[3] == 'x');
}
END_TEST

/* ---- order ---- */

START_TEST(test_key_order_ints)
{
    static const int64_t vals[] = {INT64_MIN, INT64_MIN + 1, -1000000000000LL, -65536, -256,
                                   -255, -2, -1, 0, 1, 2, 255, 256, 65535, 1LL << 40,
                                   INT64_MAX - 1, INT64_MAX};
    size_t nv = sizeof(vals) / sizeof(vals[0]);
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < nv; j++) {
            uint8_t a[16], b[16];
            for (int t = 0; t < 2; t++) {
                rn_type_t type = t ? RN_TYPE_TIMESTAMP : RN_TYPE_INT;
                size_t na = enc1(type, rn__val_int(vals[i]), a, sizeof(a));
                size_t nb = enc1(type, rn__val_int(vals[j]), b, sizeof(b));
                int want = vals[i] < vals[j] ? -1 : (vals[i] > vals[j] ? 1 : 0);
                ck_assert_msg(bytes_cmp(a, na, b, nb) == want, "%lld vs %lld",
                              (long long)vals[i], (long long)vals[j]);
            }
        }
    }
}
END_TEST

START_TEST(test_key_order_floats)
{
    /* -0.0 is left out: it equals 0.0 but has its own bits (and bytes). */
    const double vals[] = {-INFINITY, -DBL_MAX, -1e300, -1000.5, -1.0,   -0.75, -1e-300,
                           -5e-324,   0.0,      5e-324, 1e-300,  0.75,   1.0,   1.5,
                           2.0,       1000.5,   1e300,  DBL_MAX, INFINITY};
    size_t nv = sizeof(vals) / sizeof(vals[0]);
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < nv; j++) {
            uint8_t a[16], b[16];
            size_t na = enc1(RN_TYPE_FLOAT, rn__val_float(vals[i]), a, sizeof(a));
            size_t nb = enc1(RN_TYPE_FLOAT, rn__val_float(vals[j]), b, sizeof(b));
            int want = vals[i] < vals[j] ? -1 : (vals[i] > vals[j] ? 1 : 0);
            ck_assert_msg(bytes_cmp(a, na, b, nb) == want, "%g vs %g", vals[i], vals[j]);
        }
    }
    /* -0.0 sorts just below 0.0 and above every negative number. */
    uint8_t mz[16], z[16], neg[16];
    size_t nmz = enc1(RN_TYPE_FLOAT, rn__val_float(-0.0), mz, sizeof(mz));
    size_t nz = enc1(RN_TYPE_FLOAT, rn__val_float(0.0), z, sizeof(z));
    size_t nneg = enc1(RN_TYPE_FLOAT, rn__val_float(-5e-324), neg, sizeof(neg));
    ck_assert_int_lt(bytes_cmp(mz, nmz, z, nz), 0);
    ck_assert_int_gt(bytes_cmp(mz, nmz, neg, nneg), 0);
}
END_TEST

START_TEST(test_key_order_strings)
{
    /* Strings of one length order bytewise as unsigned bytes. */
    static const char *const same[] = {"aaaa", "aaab", "aaba", "abaa", "b\x01zz", "bzzz",
                                       "k100", "k199", "k200", "zzzz", "\x7f\x00\x00\x00",
                                       "\x80\x00\x00\x00", "\xff\xff\xff\xff"};
    size_t nv = sizeof(same) / sizeof(same[0]);
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < nv; j++) {
            uint8_t a[16], b[16];
            size_t na = enc1(RN_TYPE_STRING, rn__val_str(same[i], 4), a, sizeof(a));
            size_t nb = enc1(RN_TYPE_STRING, rn__val_str(same[j], 4), b, sizeof(b));
            int want = sign(memcmp(same[i], same[j], 4));
            ck_assert_msg(bytes_cmp(a, na, b, nb) == want, "'%s' vs '%s'", same[i], same[j]);
        }
    }
    /* Equal strings encode equally, different ones differently (also when
     * one is a prefix of the other). */
    uint8_t a[16], b[16];
    size_t na = enc1(RN_TYPE_STRING, rn__val_str("ab", 2), a, sizeof(a));
    size_t nb = enc1(RN_TYPE_STRING, rn__val_str("abc", 3), b, sizeof(b));
    ck_assert(bytes_cmp(a, na, b, nb) != 0);
    nb = enc1(RN_TYPE_STRING, rn__val_str("ab", 2), b, sizeof(b));
    ck_assert_int_eq(bytes_cmp(a, na, b, nb), 0);
}
END_TEST

START_TEST(test_key_order_null_first)
{
    /* A null sorts below every value of its type. */
    uint8_t n[16], v[16];
    size_t nn = enc1(RN_TYPE_INT, rn__val_null(), n, sizeof(n));
    size_t nv = enc1(RN_TYPE_INT, rn__val_int(INT64_MIN), v, sizeof(v));
    ck_assert_int_lt(bytes_cmp(n, nn, v, nv), 0);
    nv = enc1(RN_TYPE_STRING, rn__val_str("", 0), v, sizeof(v));
    nn = enc1(RN_TYPE_STRING, rn__val_null(), n, sizeof(n));
    ck_assert_int_lt(bytes_cmp(n, nn, v, nv), 0);
}
END_TEST

/* ---- buffer too small ---- */

START_TEST(test_key_buffer_too_small)
{
    char long_s[200];
    memset(long_s, 'q', sizeof(long_s));
    const struct {
        rn_type_t type;
        rn_value_t v;
        size_t need;
    } cases[] = {
        {RN_TYPE_INT, rn__val_int(5), 9},
        {RN_TYPE_TIMESTAMP, rn__val_int(-5), 9},
        {RN_TYPE_FLOAT, rn__val_float(2.5), 9},
        {RN_TYPE_BOOL, rn__val_bool(false), 2},
        {RN_TYPE_STRING, rn__val_str("", 0), 2},
        {RN_TYPE_STRING, rn__val_str("hello", 5), 7},
        {RN_TYPE_STRING, rn__val_str(long_s, 200), 203},
        {RN_TYPE_INT, rn__val_null(), 1},
    };
    uint8_t buf[256];
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t size = 0; size < cases[c].need; size++) {
            /* Canary past the end: nothing may be written beyond size. */
            memset(buf, 0xee, sizeof(buf));
            ck_assert_msg(enc1(cases[c].type, cases[c].v, buf, size) == 0,
                          "case %zu: size %zu of %zu did not fail", c, size, cases[c].need);
            for (size_t k = size; k < sizeof(buf); k++)
                ck_assert_msg(buf[k] == 0xee, "case %zu: byte %zu written with size %zu", c,
                              k, size);
        }
        ck_assert_uint_eq(enc1(cases[c].type, cases[c].v, buf, cases[c].need), cases[c].need);
    }

    /* Composite: room for the first field only. */
    rn_value_t row[2] = {rn__val_int(1), rn__val_str("abc", 3)};
    rn_keyspec_t ks;
    memset(&ks, 0, sizeof(ks));
    ks.n = 2;
    ks.fields[1] = 1;
    ks.types[0] = RN_TYPE_INT;
    ks.types[1] = RN_TYPE_STRING;
    ck_assert_uint_eq(rn__key_encode(&ks, row, buf, 9), 0);
    ck_assert_uint_eq(rn__key_encode(&ks, row, buf, 13), 0);
    ck_assert_uint_eq(rn__key_encode(&ks, row, buf, 14), 14);
}
END_TEST

/* ---- corrupt input ---- */

static rn_code_t
dec1(rn_type_t type, const uint8_t *key, size_t len)
{
    rn_value_t out[2];
    return rn__key_decode(&type, 1, key, len, NULL, out);
}

START_TEST(test_key_decode_corrupt)
{
    static const uint8_t empty[1] = {0};
    static const uint8_t int_short[] = {1, 0x80, 0, 0, 0, 0, 0, 0};
    static const uint8_t int_long[] = {1, 0x80, 0, 0, 0, 0, 0, 0, 1, 9};
    static const uint8_t float_short[] = {1, 0xbf, 0xf0};
    static const uint8_t bool_short[] = {1};
    static const uint8_t null_trailing[] = {0, 0};
    static const uint8_t str_no_len[] = {1};
    static const uint8_t str_len_open[] = {1, 0x85};
    static const uint8_t str_short[] = {1, 5, 'a', 'b'};
    static const uint8_t str_long[] = {1, 1, 'a', 'b'};
    static const uint8_t str_varint_huge[] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    static const uint8_t str_len_2g[] = {1, 0xff, 0xff, 0xff, 0xff, 0x07, 'a'};

    ck_assert_int_eq(dec1(RN_TYPE_INT, empty, 0), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, empty, 0), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_INT, int_short, sizeof(int_short)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_TIMESTAMP, int_short, sizeof(int_short)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_INT, int_long, sizeof(int_long)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_FLOAT, float_short, sizeof(float_short)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_BOOL, bool_short, sizeof(bool_short)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_INT, null_trailing, sizeof(null_trailing)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, str_no_len, sizeof(str_no_len)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, str_len_open, sizeof(str_len_open)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, str_short, sizeof(str_short)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, str_long, sizeof(str_long)), RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, str_varint_huge, sizeof(str_varint_huge)),
                     RN_ECORRUPT);
    ck_assert_int_eq(dec1(RN_TYPE_STRING, str_len_2g, sizeof(str_len_2g)), RN_ECORRUPT);

    /* Two fields expected, one present. */
    rn_type_t two[2] = {RN_TYPE_INT, RN_TYPE_INT};
    rn_value_t out[2];
    uint8_t one[9];
    ck_assert_uint_eq(enc1(RN_TYPE_INT, rn__val_int(3), one, sizeof(one)), 9);
    ck_assert_int_eq(rn__key_decode(two, 2, one, sizeof(one), NULL, out), RN_ECORRUPT);
    ck_assert_int_eq(rn__key_decode(two, 1, one, sizeof(one), NULL, out), RN_OK);
    ck_assert_int_eq(out[0].u.i, 3);

    /* Every truncation of a valid composite key is refused. */
    rn_value_t row[3] = {rn__val_str("abcdef", 6), rn__val_float(-3.25), rn__val_bool(true)};
    rn_keyspec_t ks;
    uint8_t key[64];
    memset(&ks, 0, sizeof(ks));
    ks.n = 3;
    for (int i = 0; i < 3; i++)
        ks.fields[i] = i;
    ks.types[0] = RN_TYPE_STRING;
    ks.types[1] = RN_TYPE_FLOAT;
    ks.types[2] = RN_TYPE_BOOL;
    size_t n = rn__key_encode(&ks, row, key, sizeof(key));
    ck_assert_uint_gt(n, 0);
    rn_value_t out3[3];
    for (size_t len = 0; len < n; len++)
        ck_assert_msg(rn__key_decode(ks.types, 3, key, len, NULL, out3) == RN_ECORRUPT,
                      "truncated to %zu of %zu bytes was accepted", len, n);
    ck_assert_int_eq(rn__key_decode(ks.types, 3, key, n, NULL, out3), RN_OK);
}
END_TEST

/* ---- hashing and key groups ---- */

START_TEST(test_key_hash_and_group)
{
    uint8_t a[16], b[16];
    size_t na = enc1(RN_TYPE_STRING, rn__val_str("k1", 2), a, sizeof(a));
    size_t nb = enc1(RN_TYPE_STRING, rn__val_str("k1", 2), b, sizeof(b));
    ck_assert_uint_eq(rn__key_hash(a, na), rn__key_hash(b, nb));
    nb = enc1(RN_TYPE_STRING, rn__val_str("k2", 2), b, sizeof(b));
    ck_assert_uint_ne(rn__key_hash(a, na), rn__key_hash(b, nb));

    /* Groups are in range and every group gets some of 10,000 keys. */
    uint32_t max = 128;
    int hits[128];
    memset(hits, 0, sizeof(hits));
    for (int64_t k = 0; k < 10000; k++) {
        na = enc1(RN_TYPE_INT, rn__val_int(k), a, sizeof(a));
        uint32_t kg = rn__key_group(rn__key_hash(a, na), max);
        ck_assert_uint_lt(kg, max);
        hits[kg]++;
    }
    for (uint32_t kg = 0; kg < max; kg++)
        ck_assert_msg(hits[kg] > 0, "key group %u got no key of 10000", kg);
    ck_assert_uint_eq(rn__key_group(UINT64_MAX, 1), 0);
    ck_assert_uint_eq(rn__key_group(1000, 128), 1000 % 128);
}
END_TEST

START_TEST(test_key_group_ranges)
{
    static const uint32_t maxes[] = {1, 2, 3, 4, 7, 10, 100, 128, 129, 1000, 4096, 32768};
    for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
        uint32_t max = maxes[m];
        for (uint32_t par = 1; par <= max && par <= 300; par++) {
            uint32_t next = 0;
            for (uint32_t i = 0; i < par; i++) {
                uint32_t first = 0, last = 0;
                rn__key_group_range(i, max, par, &first, &last);
                ck_assert_msg(first == next, "max %u par %u instance %u: first %u, want %u",
                              max, par, i, first, next);
                ck_assert_msg(first <= last, "max %u par %u instance %u: empty [%u, %u]", max,
                              par, i, first, last);
                ck_assert_msg(last < max, "max %u par %u instance %u: last %u", max, par, i,
                              last);
                /* Balanced: range sizes differ by at most one. */
                uint32_t size = last - first + 1;
                ck_assert_msg(size == max / par || size == max / par + 1,
                              "max %u par %u instance %u: %u groups", max, par, i, size);
                next = last + 1;
            }
            ck_assert_msg(next == max, "max %u par %u: ranges end at %u", max, par, next);
        }
    }
}
END_TEST

START_TEST(test_key_group_instance_agrees)
{
    static const uint32_t maxes[] = {1, 2, 3, 7, 128, 129, 1000, 32768};
    for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
        uint32_t max = maxes[m];
        for (uint32_t par = 1; par <= max && par <= 130; par++) {
            for (uint32_t i = 0; i < par; i++) {
                uint32_t first = 0, last = 0;
                rn__key_group_range(i, max, par, &first, &last);
                /* Every group of the range, for small maxes; the ends and
                 * a few inside for large ones. */
                uint32_t stride = max > 2000 ? (last - first) / 16 + 1 : 1;
                for (uint32_t kg = first; kg <= last; kg += stride)
                    ck_assert_msg(rn__key_group_instance(kg, max, par) == i,
                                  "max %u par %u: group %u goes to %u, its range is %u's", max,
                                  par, kg, rn__key_group_instance(kg, max, par), i);
                ck_assert_uint_eq(rn__key_group_instance(last, max, par), i);
                ck_assert_uint_eq(rn__key_group_instance(first, max, par), i);
            }
        }
    }
    /* The largest values do not overflow. */
    ck_assert_uint_eq(rn__key_group_instance(32767, 32768, 32768), 32767);
    uint32_t first, last;
    rn__key_group_range(32767, 32768, 32768, &first, &last);
    ck_assert_uint_eq(first, 32767);
    ck_assert_uint_eq(last, 32767);
}
END_TEST

static Suite *
key_suite(void)
{
    Suite *s = suite_create("key");
    TCase *tc;

    tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_key_roundtrip_ints);
    tcase_add_test(tc, test_key_roundtrip_floats);
    tcase_add_test(tc, test_key_roundtrip_bool_and_null);
    tcase_add_test(tc, test_key_roundtrip_strings);
    tcase_add_test(tc, test_key_roundtrip_composite);
    tcase_add_test(tc, test_key_format_pinned);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_add_test(tc, test_key_order_ints);
    tcase_add_test(tc, test_key_order_floats);
    tcase_add_test(tc, test_key_order_strings);
    tcase_add_test(tc, test_key_order_null_first);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_key_buffer_too_small);
    tcase_add_test(tc, test_key_decode_corrupt);
    suite_add_tcase(s, tc);

    tc = tcase_create("groups");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_key_hash_and_group);
    tcase_add_test(tc, test_key_group_ranges);
    tcase_add_test(tc, test_key_group_instance_agrees);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(key_suite)
