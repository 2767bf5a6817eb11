/*
 * tests/unit/test_decode.c: JSON-line and CSV decoding into rows
 * (connectors/decode.h): every type, RFC 3339 variants, missing fields,
 * bad records with their exact messages, CSV quoting and header mapping.
 */
#include "tests/rn_check.h"

#include "connectors/decode.h"

static rn_schema_t *schema;
static rn_arena_t arena;
static rn_value_t row[8];
static char errbuf[RN_ERROR_MSG_MAX];

static void
setup(void)
{
    schema = rn__schema_new();
    rn__schema_add(schema, "s", RN_TYPE_STRING, NULL);
    rn__schema_add(schema, "i", RN_TYPE_INT, NULL);
    rn__schema_add(schema, "f", RN_TYPE_FLOAT, NULL);
    rn__schema_add(schema, "b", RN_TYPE_BOOL, NULL);
    rn__schema_add(schema, "t", RN_TYPE_TIMESTAMP, NULL);
    rn__arena_init(&arena);
    memset(row, 0, sizeof(row));
    errbuf[0] = '\0';
}

static void
teardown(void)
{
    rn__schema_destroy(schema);
    rn__arena_fini(&arena);
}

static rn_code_t
json(const char *line)
{
    return rn__json_decode_line(schema, line, strlen(line), row, &arena, errbuf, sizeof(errbuf));
}

static void
ck_str_cell(const rn_value_t *v, const char *want, size_t len)
{
    ck_assert_int_eq(v->null, 0);
    ck_assert_uint_eq(v->len, len);
    ck_assert_mem_eq(v->u.s, want, len);
}

static int64_t
ts_of(const char *text)
{
    int64_t ms = 0;
    ck_assert_msg(rn__parse_timestamp(text, strlen(text), &ms) == RN_OK, "'%s' refused", text);
    return ms;
}

static bool
ts_refused(const char *text)
{
    int64_t ms;
    return rn__parse_timestamp(text, strlen(text), &ms) == RN_EDATA;
}

/* ---- JSON: values ---- */

START_TEST(test_decode_json_all_types)
{
    ck_assert_int_eq(json("{\"s\":\"h\\u00e9 \\\"x\\\"\",\"i\":-42,\"f\":1.5,\"b\":true,"
                          "\"t\":1700000000000}"),
                     RN_OK);
    ck_str_cell(&row[0], "h\xc3\xa9 \"x\"", 7);
    ck_assert_int_eq(row[1].null, 0);
    ck_assert_int_eq(row[1].u.i, -42);
    ck_assert_double_eq(row[2].u.f, 1.5);
    ck_assert(row[3].u.b);
    ck_assert_int_eq(row[4].u.i, 1700000000000LL);

    ck_assert_int_eq(json("{\"b\":false,\"i\":9223372036854775807}"), RN_OK);
    ck_assert(!row[3].u.b && !row[3].null);
    ck_assert_int_eq(row[1].u.i, INT64_MAX);
}
END_TEST

START_TEST(test_decode_json_number_widening)
{
    /* Ints written as floats with no fraction; ints into floats. */
    ck_assert_int_eq(json("{\"i\":3.0,\"f\":2,\"t\":1.7e12}"), RN_OK);
    ck_assert_int_eq(row[1].u.i, 3);
    ck_assert_double_eq(row[2].u.f, 2.0);
    ck_assert_int_eq(row[4].u.i, 1700000000000LL);
    ck_assert_int_eq(json("{\"i\":1e3}"), RN_OK);
    ck_assert_int_eq(row[1].u.i, 1000);
}
END_TEST

START_TEST(test_decode_json_missing_and_null)
{
    ck_assert_int_eq(json("{\"i\":1,\"s\":null,\"other\":[1,2]}"), RN_OK);
    ck_assert_int_eq(row[0].null, 1);
    ck_assert_int_eq(row[1].null, 0);
    ck_assert_int_eq(row[2].null, 1);
    ck_assert_int_eq(row[3].null, 1);
    ck_assert_int_eq(row[4].null, 1);
    ck_assert_int_eq(json("{}"), RN_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(row[i].null, 1);
}
END_TEST

START_TEST(test_decode_json_strings_copied)
{
    char line[] = "{\"s\":\"abc\"}";
    ck_assert_int_eq(json(line), RN_OK);
    memset(line, 'x', sizeof(line) - 1);
    ck_str_cell(&row[0], "abc", 3);
    /* NUL inside a string is kept with its length. */
    ck_assert_int_eq(json("{\"s\":\"a\\u0000b\"}"), RN_OK);
    ck_str_cell(&row[0], "a\0b", 3);
}
END_TEST

START_TEST(test_decode_json_timestamp_strings)
{
    ck_assert_int_eq(json("{\"t\":\"2023-11-14T22:13:20Z\"}"), RN_OK);
    ck_assert_int_eq(row[4].u.i, 1700000000000LL);
    ck_assert_int_eq(json("{\"t\":\"2023-11-14T23:13:20.250+01:00\"}"), RN_OK);
    ck_assert_int_eq(row[4].u.i, 1700000000250LL);
}
END_TEST

/* ---- JSON: bad records ---- */

START_TEST(test_decode_json_wrong_types)
{
    ck_assert_int_eq(json("{\"t\":\"yesterday\"}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 't': expected timestamp, got \"yesterday\"");
    ck_assert_int_eq(json("{\"i\":1.5}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'i': expected int, got 1.5");
    ck_assert_int_eq(json("{\"s\":12}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 's': expected string, got 12");
    ck_assert_int_eq(json("{\"b\":\"true\"}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'b': expected bool, got \"true\"");
    ck_assert_int_eq(json("{\"f\":\"1.5\"}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'f': expected float, got \"1.5\"");
    ck_assert_int_eq(json("{\"s\":{\"a\":1}}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 's': expected string, got {\"a\":1}");
    ck_assert_int_eq(json("{\"i\":true}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'i': expected int, got true");
    ck_assert_int_eq(json("{\"t\":1.5}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 't': expected timestamp, got 1.5");
}
END_TEST

START_TEST(test_decode_json_long_value_cut)
{
    ck_assert_int_eq(json("{\"t\":\"0123456789012345678901234567890123456789TAIL\"}"), RN_EDATA);
    ck_assert_str_eq(errbuf,
                     "field 't': expected timestamp, got \"0123456789012345678901234567890123456789...\"");
    ck_assert_int_eq(json("{\"t\":\"a\\nb\"}"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 't': expected timestamp, got \"a\\nb\"");
}
END_TEST

START_TEST(test_decode_json_not_json)
{
    ck_assert_int_eq(json("{\"s\":"), RN_EDATA);
    ck_assert_str_eq(errbuf, "invalid JSON: unexpected token near end of file");
    ck_assert_int_eq(json("[1,2]"), RN_EDATA);
    ck_assert_str_eq(errbuf, "expected a JSON object, got array");
    ck_assert_int_eq(json("{\"i\":1} {\"i\":2}"), RN_EDATA);
}
END_TEST

/* ---- timestamps ---- */

START_TEST(test_decode_rfc3339_variants)
{
    ck_assert_int_eq(ts_of("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(ts_of("2023-11-14T22:13:20Z"), 1700000000000LL);
    ck_assert_int_eq(ts_of("2023-11-14t22:13:20z"), 1700000000000LL);
    ck_assert_int_eq(ts_of("2023-11-14 22:13:20Z"), 1700000000000LL);
    ck_assert_int_eq(ts_of("2023-11-14T22:13:20.5Z"), 1700000000500LL);
    ck_assert_int_eq(ts_of("2023-11-14T22:13:20.123Z"), 1700000000123LL);
    ck_assert_int_eq(ts_of("2023-11-14T22:13:20.123999999Z"), 1700000000123LL);
    ck_assert_int_eq(ts_of("2023-11-15T00:13:20+02:00"), 1700000000000LL);
    ck_assert_int_eq(ts_of("2023-11-14T16:43:20-05:30"), 1700000000000LL);
    ck_assert_int_eq(ts_of("2023-11-14T22:13:20+00:00"), 1700000000000LL);
    ck_assert_int_eq(ts_of("1969-12-31T23:59:59.999Z"), -1);
    ck_assert_int_eq(ts_of("2024-02-29T00:00:00Z"), 1709164800000LL);
    ck_assert_int_eq(ts_of("2000-03-01T00:00:00Z"), 951868800000LL);
    ck_assert_int_eq(ts_of("1700000000000"), 1700000000000LL);
    ck_assert_int_eq(ts_of("-5"), -5);

    ck_assert(ts_refused("2023-02-29T00:00:00Z"));
    ck_assert(ts_refused("2023-13-01T00:00:00Z"));
    ck_assert(ts_refused("2023-11-14T24:00:00Z"));
    ck_assert(ts_refused("2023-11-14T22:13:20"));    /* no offset */
    ck_assert(ts_refused("2023-11-14"));             /* no time */
    ck_assert(ts_refused("2023-11-14T22:13:20.Z"));  /* empty fraction */
    ck_assert(ts_refused("2023-11-14T22:13:20+0100")); /* offset without colon */
    ck_assert(ts_refused("2023-11-14T22:13:20Zjunk"));
    ck_assert(ts_refused(""));
    ck_assert(ts_refused("yesterday"));
}
END_TEST

/* ---- text cells ---- */

START_TEST(test_decode_text_cells)
{
    rn_value_t v;
    ck_assert_int_eq(rn__decode_text(RN_TYPE_INT, "n", " 12 ", 4, &v, &arena, errbuf,
                                     sizeof(errbuf)),
                     RN_OK);
    ck_assert_int_eq(v.u.i, 12);
    ck_assert_int_eq(rn__decode_text(RN_TYPE_INT, "n", "-9223372036854775808", 20, &v, &arena,
                                     errbuf, sizeof(errbuf)),
                     RN_OK);
    ck_assert_int_eq(v.u.i, INT64_MIN);
    ck_assert_int_eq(rn__decode_text(RN_TYPE_INT, "n", "9223372036854775808", 19, &v, &arena,
                                     errbuf, sizeof(errbuf)),
                     RN_EDATA);
    ck_assert_int_eq(rn__decode_text(RN_TYPE_BOOL, "ok", "TRUE", 4, &v, &arena, errbuf,
                                     sizeof(errbuf)),
                     RN_OK);
    ck_assert(v.u.b);
    ck_assert_int_eq(rn__decode_text(RN_TYPE_BOOL, "ok", "yes", 3, &v, &arena, errbuf,
                                     sizeof(errbuf)),
                     RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'ok': expected bool, got \"yes\"");
    ck_assert_int_eq(rn__decode_text(RN_TYPE_FLOAT, "x", "0x10", 4, &v, &arena, errbuf,
                                     sizeof(errbuf)),
                     RN_EDATA);
    ck_assert_int_eq(rn__decode_text(RN_TYPE_FLOAT, "x", "-2.5e-3", 7, &v, &arena, errbuf,
                                     sizeof(errbuf)),
                     RN_OK);
    ck_assert_double_eq(v.u.f, -2.5e-3);
}
END_TEST

/* ---- CSV ---- */

static rn_csv_dec_t *dec;

static void
csv_setup(void)
{
    setup();
    dec = rn__csv_dec_new(schema);
    ck_assert_ptr_nonnull(dec);
}

static void
csv_teardown(void)
{
    rn__csv_dec_destroy(dec);
    teardown();
}

static rn_code_t
header(const char *rec)
{
    return rn__csv_dec_header(dec, rec, strlen(rec), errbuf, sizeof(errbuf));
}

static rn_code_t
csv(const char *rec)
{
    return rn__csv_dec_record(dec, rec, strlen(rec), row, &arena, errbuf, sizeof(errbuf));
}

START_TEST(test_decode_csv_header_mapping)
{
    /* Columns in another order than the schema, one extra ignored. */
    ck_assert_int_eq(header("t,extra,b,f,i,s"), RN_OK);
    ck_assert_int_eq(csv("2023-11-14T22:13:20Z,zzz,false,0.25,7,hello"), RN_OK);
    ck_str_cell(&row[0], "hello", 5);
    ck_assert_int_eq(row[1].u.i, 7);
    ck_assert_double_eq(row[2].u.f, 0.25);
    ck_assert(!row[3].u.b && !row[3].null);
    ck_assert_int_eq(row[4].u.i, 1700000000000LL);
}
END_TEST

START_TEST(test_decode_csv_header_errors)
{
    ck_assert_int_eq(header("s,i,f,b"), RN_EDATA);
    ck_assert_str_eq(errbuf, "missing column 't' (the header has: s, i, f, b)");
    ck_assert_int_eq(csv("a,1,1,true"), RN_EDATA);
    ck_assert_int_eq(header("s,i,f,b,t,i"), RN_EDATA);
    ck_assert_str_eq(errbuf, "column 'i' appears twice in the header");
    /* A quoted header name works like any cell. */
    ck_assert_int_eq(header("\"s\",i,f,b,\"t\""), RN_OK);
}
END_TEST

START_TEST(test_decode_csv_quoting)
{
    ck_assert_int_eq(header("s,i,f,b,t"), RN_OK);
    ck_assert_int_eq(csv("\"x,y \"\"q\"\"\",1,,,0"), RN_OK);
    ck_str_cell(&row[0], "x,y \"q\"", 7);
    ck_assert_int_eq(row[2].null, 1);
    ck_assert_int_eq(row[3].null, 1);
    /* A quoted cell over two lines; spaces are part of a cell. */
    ck_assert_int_eq(csv("\"line1\nline2\",2,,, 5"), RN_OK);
    ck_str_cell(&row[0], "line1\nline2", 11);
    ck_assert_int_eq(row[4].u.i, 5);
    ck_assert_int_eq(csv(" a b ,2,,,5"), RN_OK);
    ck_str_cell(&row[0], " a b ", 5);
}
END_TEST

START_TEST(test_decode_csv_null_and_empty)
{
    ck_assert_int_eq(header("s,i,f,b,t"), RN_OK);
    ck_assert_int_eq(csv(",,,,"), RN_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(row[i].null, 1);
    ck_assert_int_eq(csv("\"\",,,,"), RN_OK);
    ck_str_cell(&row[0], "", 0);
}
END_TEST

START_TEST(test_decode_csv_bad_records)
{
    ck_assert_int_eq(header("s,i,f,b,t"), RN_OK);
    ck_assert_int_eq(csv("a,abc,1,true,0"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'i': expected int, got \"abc\"");
    ck_assert_int_eq(csv("a,1,1,true,yesterday"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 't': expected timestamp, got \"yesterday\"");
    ck_assert_int_eq(csv("a,1,1"), RN_EDATA);
    ck_assert_str_eq(errbuf, "expected 5 columns, got 3");
    ck_assert_int_eq(csv("a,1,1,true,0,extra"), RN_EDATA);
    ck_assert_str_eq(errbuf, "expected 5 columns, got 6");
    ck_assert_int_eq(csv("a\"b,1,1,true,0"), RN_EDATA);
    ck_assert_str_eq(errbuf, "invalid CSV: misplaced or unclosed quote");
    ck_assert_int_eq(csv("\"open,1,1,true,0"), RN_EDATA);
    ck_assert_str_eq(errbuf, "invalid CSV: misplaced or unclosed quote");
    /* The decoder recovers for the next record. */
    ck_assert_int_eq(csv("ok,1,1.5,true,0"), RN_OK);
    ck_str_cell(&row[0], "ok", 2);
}
END_TEST

START_TEST(test_decode_csv_misframed)
{
    /* Shape failures (syntax, cell count) are told from value failures:
     * the file source reads a multi-line record again line by line only
     * for the former. */
    ck_assert_int_eq(header("s,i,f,b,t"), RN_OK);
    ck_assert_int_eq(csv("\"open,1,1,true,0\nnext,2,2,true,0"), RN_EDATA);
    ck_assert(rn__csv_dec_misframed(dec));
    ck_assert_int_eq(csv("\"a\nb,c\",1,1,true"), RN_EDATA);
    ck_assert_str_eq(errbuf, "expected 5 columns, got 4");
    ck_assert(rn__csv_dec_misframed(dec));
    ck_assert_int_eq(csv("\"a\nb\",x,1,true,0"), RN_EDATA);
    ck_assert_str_eq(errbuf, "field 'i': expected int, got \"x\"");
    ck_assert(!rn__csv_dec_misframed(dec));
    ck_assert_int_eq(csv("\"a\nb\",1,1,true,0"), RN_OK);
    ck_assert(!rn__csv_dec_misframed(dec));
    ck_str_cell(&row[0], "a\nb", 3);
    ck_assert_int_eq(csv("bad\xff,1,1,true,0"), RN_EDATA);
    ck_assert(rn__csv_dec_misframed(dec));
}
END_TEST

START_TEST(test_decode_csv_utf8)
{
    /* Not UTF-8: a bad record, as a JSON line with the same bytes is. */
    static const char *const bad[] = {
        "k\x80,1,1,true,0",             /* a lone continuation byte */
        "k\xc0\xaf,1,1,true,0",         /* an overlong '/' */
        "\"k\xed\xa0\x80\",1,1,true,0", /* a UTF-16 surrogate */
        "k\xf4\x90\x80\x80,1,1,true,0", /* above U+10FFFF */
        "k\xe2\x82,1,1,true,0",         /* a cut sequence */
        "k,1,1,true,0\xc3",             /* cut at the very end */
        "k\xff,1,1,true,0",
    };
    char line[64];

    ck_assert_int_eq(header("s,i,f,b,t"), RN_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(csv(bad[i]) == RN_EDATA, "case %zu decoded", i);
        ck_assert_msg(strstr(errbuf, "invalid CSV: not UTF-8 (byte 0x") == errbuf, "case %zu: %s", i,
                      errbuf);
        snprintf(line, sizeof(line), "{\"s\": \"%s\"}", bad[i]);
        ck_assert_int_eq(rn__json_decode_line(schema, line, strlen(line), row, &arena, errbuf,
                                              sizeof(errbuf)),
                         RN_EDATA);
    }
    ck_assert_int_eq(csv("k\x80,1,1,true,0"), RN_EDATA);
    ck_assert_str_eq(errbuf, "invalid CSV: not UTF-8 (byte 0x80 at offset 1)");
    /* Valid text of every length is kept as it is. */
    ck_assert_int_eq(csv("k\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf,1,1,true,0"), RN_OK);
    ck_str_cell(&row[0], "k\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 14);
    /* The header too. */
    ck_assert_int_eq(header("s\xff,i,f,b,t"), RN_EDATA);
    ck_assert_str_eq(errbuf, "invalid CSV: not UTF-8 (byte 0xff at offset 1)");
}
END_TEST

START_TEST(test_decode_utf8_check)
{
    ck_assert_uint_eq(rn__utf8_check("", 0), 0);
    ck_assert_uint_eq(rn__utf8_check("abc", 3), 3);
    ck_assert_uint_eq(rn__utf8_check("a\0b", 3), 3);
    ck_assert_uint_eq(rn__utf8_check("\xc2\x80\xdf\xbf", 4), 4);
    ck_assert_uint_eq(rn__utf8_check("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80", 9), 9);
    ck_assert_uint_eq(rn__utf8_check("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8), 8);
    ck_assert_uint_eq(rn__utf8_check("ab\xc1\xbf", 4), 2);   /* overlong */
    ck_assert_uint_eq(rn__utf8_check("a\xe0\x9f\xbf", 4), 1); /* overlong */
    ck_assert_uint_eq(rn__utf8_check("\xf0\x8f\xbf\xbf", 4), 0);
    ck_assert_uint_eq(rn__utf8_check("ab\xed\xa0\x80", 5), 2); /* surrogate */
    ck_assert_uint_eq(rn__utf8_check("\xf5\x80\x80\x80", 4), 0);
    ck_assert_uint_eq(rn__utf8_check("\xc3\xa9\xc3", 3), 2); /* cut at the end */
    ck_assert_uint_eq(rn__utf8_check("\xe2\x28\xa1", 3), 0); /* bad continuation */
}
END_TEST

START_TEST(test_decode_csv_record_open)
{
    size_t q = 0;
    ck_assert(!rn__csv_record_open("a,b", 3, &q));
    q = 0;
    ck_assert(rn__csv_record_open("\"a,b", 4, &q));
    ck_assert(rn__csv_record_open("still", 5, &q));
    ck_assert(!rn__csv_record_open("end\",1", 6, &q));
    q = 0;
    ck_assert(!rn__csv_record_open("\"he said \"\"hi\"\"\",1", 18, &q));
}
END_TEST

static Suite *
decode_suite(void)
{
    Suite *s = suite_create("decode");
    TCase *tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_decode_json_all_types);
    tcase_add_test(tc, test_decode_json_number_widening);
    tcase_add_test(tc, test_decode_json_missing_and_null);
    tcase_add_test(tc, test_decode_json_strings_copied);
    tcase_add_test(tc, test_decode_json_timestamp_strings);
    tcase_add_test(tc, test_decode_json_wrong_types);
    tcase_add_test(tc, test_decode_json_long_value_cut);
    tcase_add_test(tc, test_decode_json_not_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("text");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_decode_rfc3339_variants);
    tcase_add_test(tc, test_decode_text_cells);
    tcase_add_test(tc, test_decode_utf8_check);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_add_checked_fixture(tc, csv_setup, csv_teardown);
    tcase_add_test(tc, test_decode_csv_header_mapping);
    tcase_add_test(tc, test_decode_csv_header_errors);
    tcase_add_test(tc, test_decode_csv_quoting);
    tcase_add_test(tc, test_decode_csv_null_and_empty);
    tcase_add_test(tc, test_decode_csv_bad_records);
    tcase_add_test(tc, test_decode_csv_record_open);
    tcase_add_test(tc, test_decode_csv_misframed);
    tcase_add_test(tc, test_decode_csv_utf8);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(decode_suite)
