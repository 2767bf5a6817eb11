/*
 * tests/unit/test_encode.c: JSON-lines and CSV encoding of rows
 * (connectors/encode.h): every type, escaping, floats that read back
 * exactly, nulls, and round trips through the decoders.
 */
#include "tests/rn_check.h"

#include <jansson.h>
#include <math.h>

#include "connectors/decode.h"
#include "connectors/encode.h"

static rn_schema_t *schema;
static rn_buf_t out;
static rn_value_t row[8];

static void
setup(void)
{
    schema = rn__schema_new();
    rn__schema_add(schema, "s", RN_TYPE_STRING, NULL);
    rn__schema_add(schema, "i", RN_TYPE_INT, NULL);
    rn__schema_add(schema, "f", RN_TYPE_FLOAT, NULL);
    rn__schema_add(schema, "b", RN_TYPE_BOOL, NULL);
    rn__schema_add(schema, "t", RN_TYPE_TIMESTAMP, NULL);
    rn__buf_init(&out);
    row[0] = rn__val_str("a", 1);
    row[1] = rn__val_int(-42);
    row[2] = rn__val_float(1.5);
    row[3] = rn__val_bool(true);
    row[4] = rn__val_int(1700000000000LL);
}

static void
teardown(void)
{
    rn__schema_destroy(schema);
    rn__buf_fini(&out);
}

/* Encodes row with a fresh encoder and returns the text (NUL-terminated in
 * a static buffer). */
static const char *
encode(rn_format_t format, bool with_header)
{
    static char text[4096];
    rn_encoder_t *enc = rn__encoder_new(format, schema);
    ck_assert_ptr_nonnull(enc);
    out.len = 0;
    if (with_header)
        ck_assert_int_eq(rn__encoder_header(enc, &out), RN_OK);
    ck_assert_int_eq(rn__encoder_row(enc, row, &out), RN_OK);
    rn__encoder_destroy(enc);
    ck_assert_uint_lt(out.len, sizeof(text));
    memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    return text;
}

static const char *
fmt_double(double f)
{
    static char buf[40];
    size_t n = rn__fmt_double(buf, f);
    buf[n] = '\0';
    return buf;
}

/* ---- JSON ---- */

START_TEST(test_encode_json_all_types)
{
    ck_assert_str_eq(encode(RN_FORMAT_JSON, true),
                     "{\"s\":\"a\",\"i\":-42,\"f\":1.5,\"b\":true,\"t\":1700000000000}\n");
    row[1] = rn__val_int(INT64_MIN);
    row[3] = rn__val_bool(false);
    ck_assert_str_eq(encode(RN_FORMAT_JSON, false),
                     "{\"s\":\"a\",\"i\":-9223372036854775808,\"f\":1.5,\"b\":false,"
                     "\"t\":1700000000000}\n");
}
END_TEST

START_TEST(test_encode_json_nulls)
{
    for (int i = 0; i < 5; i++)
        row[i] = rn__val_null();
    ck_assert_str_eq(encode(RN_FORMAT_JSON, false),
                     "{\"s\":null,\"i\":null,\"f\":null,\"b\":null,\"t\":null}\n");
    row[2] = rn__val_float(NAN);
    ck_assert_str_eq(encode(RN_FORMAT_JSON, false),
                     "{\"s\":null,\"i\":null,\"f\":null,\"b\":null,\"t\":null}\n");
    row[2] = rn__val_float(-INFINITY);
    ck_assert_str_eq(encode(RN_FORMAT_JSON, false),
                     "{\"s\":null,\"i\":null,\"f\":null,\"b\":null,\"t\":null}\n");
}
END_TEST

START_TEST(test_encode_json_escaping)
{
    row[0] = rn__val_str("q\"b\\n\n\t\r\x01\x1f/\x7f", 12);
    ck_assert_str_eq(encode(RN_FORMAT_JSON, false),
                     "{\"s\":\"q\\\"b\\\\n\\n\\t\\r\\u0001\\u001f/\x7f\",\"i\":-42,\"f\":1.5,"
                     "\"b\":true,\"t\":1700000000000}\n");
    /* Valid UTF-8 stays as it is; invalid bytes become U+FFFD. */
    row[0] = rn__val_str("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    ck_assert(strstr(encode(RN_FORMAT_JSON, false),
                     "\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"") != NULL);
    row[0] = rn__val_str("a\xff" "b\xc3" "c\xed\xa0\x80" "d\xc0\xaf", 11);
    ck_assert(strstr(encode(RN_FORMAT_JSON, false),
                     "\"s\":\"a\\ufffdb\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffd\"") != NULL);
    /* A NUL inside a string. */
    row[0] = rn__val_str("a\0b", 3);
    ck_assert(strstr(encode(RN_FORMAT_JSON, false), "\"s\":\"a\\u0000b\"") != NULL);
}
END_TEST

START_TEST(test_encode_json_field_names_escaped)
{
    rn__schema_destroy(schema);
    schema = rn__schema_new();
    rn__schema_add(schema, "we\"ird", RN_TYPE_INT, NULL);
    row[0] = rn__val_int(1);
    ck_assert_str_eq(encode(RN_FORMAT_JSON, false), "{\"we\\\"ird\":1}\n");
}
END_TEST

START_TEST(test_encode_json_valid_for_jansson)
{
    /* Whatever the bytes, the output parses and reads back the same. */
    char bytes[64];
    for (int i = 0; i < 64; i++)
        bytes[i] = (char)((i * 7 + 1) & 0x7f);
    row[0] = rn__val_str(bytes, 64);
    row[2] = rn__val_float(0.1);
    const char *text = encode(RN_FORMAT_JSON, false);
    json_error_t jerr;
    json_t *obj = json_loads(text, JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(obj != NULL, "%s: %s", text, jerr.text);
    ck_assert_int_eq(json_string_length(json_object_get(obj, "s")), 64);
    ck_assert_mem_eq(json_string_value(json_object_get(obj, "s")), bytes, 64);
    ck_assert(json_is_real(json_object_get(obj, "f")));
    ck_assert_double_eq(json_real_value(json_object_get(obj, "f")), 0.1);
    json_decref(obj);
}
END_TEST

/* ---- floats ---- */

START_TEST(test_encode_float_text)
{
    ck_assert_str_eq(fmt_double(3.0), "3.0");
    ck_assert_str_eq(fmt_double(-0.0), "-0.0");
    ck_assert_str_eq(fmt_double(0.1), "0.1");
    ck_assert_str_eq(fmt_double(1.5), "1.5");
    ck_assert_str_eq(fmt_double(1e300), "1e+300");
    ck_assert_str_eq(fmt_double(123456789012.0), "123456789012.0");
    ck_assert_str_eq(fmt_double(5e-324), "4.94065645841247e-324");
    ck_assert_str_eq(fmt_double(1.0 / 3.0), "0.3333333333333333");
}
END_TEST

START_TEST(test_encode_float_round_trip)
{
    /* Doubles from a fixed pseudo-random walk over many magnitudes. */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 20000; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double f;
        memcpy(&f, &x, sizeof(f));
        if (!isfinite(f))
            continue;
        char buf[40];
        size_t n = rn__fmt_double(buf, f);
        buf[n] = '\0';
        ck_assert_msg(strtod(buf, NULL) == f, "%s does not read back", buf);
        ck_assert_msg(strpbrk(buf, ".e") != NULL, "%s reads back as an int", buf);
    }
}
END_TEST

/* ---- CSV ---- */

START_TEST(test_encode_csv_header_and_row)
{
    ck_assert_str_eq(encode(RN_FORMAT_CSV, true), "s,i,f,b,t\na,-42,1.5,true,1700000000000\n");
}
END_TEST

START_TEST(test_encode_csv_quoting)
{
    row[0] = rn__val_str("x,y", 3);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false), "\"x,y\",-42,1.5,true,1700000000000\n");
    row[0] = rn__val_str("say \"hi\"", 8);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false),
                     "\"say \"\"hi\"\"\",-42,1.5,true,1700000000000\n");
    row[0] = rn__val_str("a\nb", 3);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false), "\"a\nb\",-42,1.5,true,1700000000000\n");
    row[0] = rn__val_str("a\rb", 3);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false), "\"a\rb\",-42,1.5,true,1700000000000\n");
    row[0] = rn__val_str(" plain; text ", 13);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false), " plain; text ,-42,1.5,true,1700000000000\n");
}
END_TEST

START_TEST(test_encode_csv_nulls)
{
    row[0] = rn__val_str("", 0);
    for (int i = 1; i < 5; i++)
        row[i] = rn__val_null();
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false), "\"\",,,,\n");
    row[0] = rn__val_null();
    row[2] = rn__val_float(NAN);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, false), ",,,,\n");
}
END_TEST

START_TEST(test_encode_csv_header_quoted)
{
    rn__schema_destroy(schema);
    schema = rn__schema_new();
    rn__schema_add(schema, "a,b", RN_TYPE_INT, NULL);
    rn__schema_add(schema, "c", RN_TYPE_FLOAT, NULL);
    row[0] = rn__val_int(1);
    row[1] = rn__val_float(2.0);
    ck_assert_str_eq(encode(RN_FORMAT_CSV, true), "\"a,b\",c\n1,2.0\n");
}
END_TEST

/* ---- round trips ---- */

static void
ck_rows_equal(const rn_value_t *a, const rn_value_t *b)
{
    for (uint32_t i = 0; i < schema->nfields; i++) {
        ck_assert_int_eq(a[i].null, b[i].null);
        if (!a[i].null)
            ck_assert_msg(rn__val_equal(schema->fields[i].type, &a[i], &b[i]), "field %s",
                          schema->fields[i].name);
    }
}

START_TEST(test_encode_round_trip_json)
{
    rn_arena_t arena;
    rn_value_t back[8];
    char err[256];
    rn__arena_init(&arena);
    row[0] = rn__val_str("tab\there \"q\" \xc3\xa9", 16);
    row[2] = rn__val_float(-1.0 / 7.0);
    row[3] = rn__val_null();
    const char *text = encode(RN_FORMAT_JSON, false);
    ck_assert_int_eq(rn__json_decode_line(schema, text, strlen(text) - 1, back, &arena, err,
                                          sizeof(err)),
                     RN_OK);
    ck_rows_equal(row, back);
    rn__arena_fini(&arena);
}
END_TEST

START_TEST(test_encode_round_trip_csv)
{
    rn_arena_t arena;
    rn_value_t back[8];
    char err[256];
    rn__arena_init(&arena);
    rn_csv_dec_t *dec = rn__csv_dec_new(schema);
    ck_assert_int_eq(rn__csv_dec_header(dec, "s,i,f,b,t", 9, err, sizeof(err)), RN_OK);

    const char *strings[] = {"", "x,\"y\"\nz", " spaced ", "plain"};
    for (size_t k = 0; k < 4; k++) {
        row[0] = rn__val_str(strings[k], (uint32_t)strlen(strings[k]));
        row[2] = rn__val_float(k * 0.1);
        row[3] = k % 2 ? rn__val_null() : rn__val_bool(true);
        const char *text = encode(RN_FORMAT_CSV, false);
        ck_assert_int_eq(rn__csv_dec_record(dec, text, strlen(text) - 1, back, &arena, err,
                                            sizeof(err)),
                         RN_OK);
        ck_rows_equal(row, back);
    }
    rn__csv_dec_destroy(dec);
    rn__arena_fini(&arena);
}
END_TEST

START_TEST(test_encode_batch)
{
    rn_batch_t *b = rn__batch_new(schema, 4);
    rn_encoder_t *enc = rn__encoder_new(RN_FORMAT_CSV, schema);
    for (int r = 0; r < 3; r++) {
        rn_value_t *cells = rn__batch_append(b, 0);
        cells[1] = rn__val_int(r);
    }
    ck_assert_int_eq(rn__encoder_batch(enc, b, &out), RN_OK);
    ck_assert_uint_eq(out.len, 18);
    ck_assert_mem_eq(out.data, ",0,,,\n,1,,,\n,2,,,\n", 18);
    rn__encoder_destroy(enc);
    rn__batch_destroy(b);
}
END_TEST

static Suite *
encode_suite(void)
{
    Suite *s = suite_create("encode");
    TCase *tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_json_all_types);
    tcase_add_test(tc, test_encode_json_nulls);
    tcase_add_test(tc, test_encode_json_escaping);
    tcase_add_test(tc, test_encode_json_field_names_escaped);
    tcase_add_test(tc, test_encode_json_valid_for_jansson);
    suite_add_tcase(s, tc);

    tc = tcase_create("float");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_float_text);
    tcase_add_test(tc, test_encode_float_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_csv_header_and_row);
    tcase_add_test(tc, test_encode_csv_quoting);
    tcase_add_test(tc, test_encode_csv_nulls);
    tcase_add_test(tc, test_encode_csv_header_quoted);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_encode_round_trip_json);
    tcase_add_test(tc, test_encode_round_trip_csv);
    tcase_add_test(tc, test_encode_batch);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(encode_suite)
