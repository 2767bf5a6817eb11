/*
 * tests/unit/test_expr.c: the expression language (stream/expr.h): parsing
 * and precedence, type rules, null semantics, functions, error messages
 * with their offsets, string literals and batch filtering.
 *
 * Every test evaluates against one row of a fixed schema that has a field
 * of each type and a null field of each type.
 */
#include "rn_check.h"
#include "stream/expr.h"
#include "stream/expr_int.h"

#include <math.h>

enum { F_ID, F_VALUE, F_PRICE, F_NAME, F_USER, F_T, F_F, F_TS, F_NI, F_NS, F_NB, F_NF, F_NTS, NF };

static rn_schema_t *schema;
static rn_value_t row[NF];
static rn_arena_t arena;

static void
setup(void)
{
    static const struct {
        const char *name;
        rn_type_t type;
    } fields[NF] = {
        {"id", RN_TYPE_INT},         {"value", RN_TYPE_INT},   {"price", RN_TYPE_FLOAT},
        {"name", RN_TYPE_STRING},    {"user", RN_TYPE_STRING}, {"t", RN_TYPE_BOOL},
        {"f", RN_TYPE_BOOL},         {"ts", RN_TYPE_TIMESTAMP}, {"ni", RN_TYPE_INT},
        {"ns", RN_TYPE_STRING},      {"nb", RN_TYPE_BOOL},     {"nf", RN_TYPE_FLOAT},
        {"nts", RN_TYPE_TIMESTAMP},
    };
    rn_error_t err = RN_ERROR_INIT;

    schema = rn__schema_new();
    for (int i = 0; i < NF; i++)
        ck_assert_rn_ok(rn__schema_add(schema, fields[i].name, fields[i].type, &err), &err);
    row[F_ID] = rn__val_int(7);
    row[F_VALUE] = rn__val_int(10);
    row[F_PRICE] = rn__val_float(2.5);
    row[F_NAME] = rn__val_str("Alice", 5);
    row[F_USER] = rn__val_str("bob", 3);
    row[F_T] = rn__val_bool(true);
    row[F_F] = rn__val_bool(false);
    row[F_TS] = rn__val_int(1700000000123);
    for (int i = F_NI; i < NF; i++)
        row[i] = rn__val_null();
    rn__arena_init(&arena);
}

static void
teardown(void)
{
    rn__schema_destroy(schema);
    rn__arena_fini(&arena);
}

static rn_expr_t *
parse_ok(const char *text)
{
    rn_error_t err = RN_ERROR_INIT;
    size_t off = 0;
    rn_expr_t *e = rn__expr_parse(text, schema, &off, &err);
    ck_assert_msg(e != NULL, "parse of \"%s\" failed at %zu: %s", text, off, err.msg);
    return e;
}

/* Evaluates text on row; strings are copied into the test arena so that
 * they outlive the expression (literals live in the expression). */
static rn_value_t
eval(const char *text, rn_type_t *type)
{
    rn_expr_t *e = parse_ok(text);
    rn_value_t v;

    rn__expr_eval(e, row, &arena, &v);
    *type = rn__expr_type(e);
    if (*type == RN_TYPE_STRING && !v.null)
        v.u.s = rn__arena_strdup(&arena, v.u.s, v.len);
    rn__expr_destroy(e);
    return v;
}

static void
expect_int(const char *text, int64_t want)
{
    rn_type_t t;
    rn_value_t v = eval(text, &t);
    ck_assert_msg(t == RN_TYPE_INT, "\"%s\": type %s, want int", text, rn_type_name(t));
    ck_assert_msg(!v.null, "\"%s\": null, want %lld", text, (long long)want);
    ck_assert_msg(v.u.i == want, "\"%s\": %lld, want %lld", text, (long long)v.u.i,
                  (long long)want);
}

static void
expect_ts(const char *text, int64_t want)
{
    rn_type_t t;
    rn_value_t v = eval(text, &t);
    ck_assert_msg(t == RN_TYPE_TIMESTAMP, "\"%s\": type %s, want timestamp", text,
                  rn_type_name(t));
    ck_assert_msg(!v.null && v.u.i == want, "\"%s\": %lld, want %lld", text, (long long)v.u.i,
                  (long long)want);
}

static void
expect_float(const char *text, double want)
{
    rn_type_t t;
    rn_value_t v = eval(text, &t);
    ck_assert_msg(t == RN_TYPE_FLOAT, "\"%s\": type %s, want float", text, rn_type_name(t));
    ck_assert_msg(!v.null && v.u.f == want, "\"%s\": %g, want %g", text, v.u.f, want);
}

static void
expect_bool(const char *text, bool want)
{
    rn_type_t t;
    rn_value_t v = eval(text, &t);
    ck_assert_msg(t == RN_TYPE_BOOL, "\"%s\": type %s, want bool", text, rn_type_name(t));
    ck_assert_msg(!v.null, "\"%s\": null, want %d", text, want);
    ck_assert_msg(v.u.b == want, "\"%s\": %d, want %d", text, v.u.b, want);
}

static void
expect_str(const char *text, const char *want)
{
    rn_type_t t;
    rn_value_t v = eval(text, &t);
    ck_assert_msg(t == RN_TYPE_STRING, "\"%s\": type %s, want string", text, rn_type_name(t));
    ck_assert_msg(!v.null, "\"%s\": null, want '%s'", text, want);
    ck_assert_msg(v.len == strlen(want) && memcmp(v.u.s, want, v.len) == 0,
                  "\"%s\": '%.*s', want '%s'", text, (int)v.len, v.u.s, want);
}

static void
expect_null(const char *text, rn_type_t want)
{
    rn_type_t t;
    rn_value_t v = eval(text, &t);
    ck_assert_msg(t == want, "\"%s\": type %s, want %s", text, rn_type_name(t),
                  rn_type_name(want));
    ck_assert_msg(v.null, "\"%s\": not null", text);
}

static void
expect_err(const char *text, const char *msg, size_t off)
{
    rn_error_t err = RN_ERROR_INIT;
    size_t got = 9999;
    rn_expr_t *e = rn__expr_parse(text, schema, &got, &err);
    ck_assert_msg(e == NULL, "\"%s\" parsed, want error \"%s\"", text, msg);
    ck_assert_int_eq(err.code, RN_EINVAL);
    ck_assert_msg(strcmp(err.msg, msg) == 0, "\"%s\": message \"%s\", want \"%s\"", text, err.msg,
                  msg);
    ck_assert_msg(got == off, "\"%s\": offset %zu, want %zu", text, got, off);
}

/* ---- precedence ---- */

START_TEST(test_expr_precedence)
{
    expect_int("1 + 2 * 3", 7);
    expect_int("(1 + 2) * 3", 9);
    expect_int("10 - 4 - 3", 3);
    expect_int("100 / 10 / 5", 2);
    expect_int("2 * 3 % 4", 2);
    expect_int("-2 * 3", -6);
    expect_int("1 - -2", 3);
    expect_int("- - 3", 3);
    expect_int("-value + id", -3);
    expect_bool("!t && f", false); /* (!t) && f, not !(t && f) */
    expect_bool("!t || t", true);  /* (!t) || t, not !(t || t) */
    expect_bool("f && f || t", true);
    expect_bool("t || t && f", true);
    expect_bool("1 + 2 == 3", true);
    expect_bool("value > 5 && id < 8", true);
    /* '!' binds looser than comparisons (as SQL's NOT). */
    expect_bool("!1 > 2", true);
    expect_bool("(1 < 2) == true", true);
    expect_bool("((((t))))", true);
}
END_TEST

START_TEST(test_expr_chained_comparison)
{
    expect_err("1 < 2 < 3", "comparisons cannot be chained; combine them with &&", 6);
    expect_err("value == id == t", "comparisons cannot be chained; combine them with &&", 12);
    expect_err("1 < 2 == t", "comparisons cannot be chained; combine them with &&", 6);
}
END_TEST

/* ---- types ---- */

START_TEST(test_expr_arithmetic_types)
{
    expect_int("value + id", 17);
    expect_int("value * 2", 20);
    expect_float("value + 0.5", 10.5);
    expect_float("price * 2", 5.0);
    expect_float("2 * price", 5.0);
    expect_float("1.5 + 1.5", 3.0);
    expect_float("1e3 + .5", 1000.5);
    expect_int("7 / 2", 3);
    expect_int("-7 / 2", -3);
    expect_float("7.0 / 2", 3.5);
    expect_float("7 / 2.0", 3.5);
    expect_int("7 % 3", 1);
    expect_int("-7 % 3", -1);
    expect_float("-price", -2.5);
    expect_err("price % 2", "operator '%' cannot combine float and int", 6);
    expect_err("'a' + 'b'", "operator '+' cannot combine string and string; use concat()", 4);
    expect_err("name + 1", "operator '+' cannot combine string and int", 5);
    expect_err("t + 1", "operator '+' cannot combine bool and int", 2);
    expect_err("-name", "operator '-' cannot be applied to string", 0);
    expect_err("-t", "operator '-' cannot be applied to bool", 0);
}
END_TEST

START_TEST(test_expr_timestamp_types)
{
    expect_ts("ts", 1700000000123);
    expect_ts("ts + 1000", 1700000001123);
    expect_ts("1000 + ts", 1700000001123);
    expect_ts("ts - 123", 1700000000000);
    expect_int("ts - ts", 0);
    expect_int("(ts + 5) - ts", 5);
    expect_bool("ts > 1700000000000", true);
    expect_bool("1700000000000 < ts", true);
    expect_bool("ts == ts", true);
    expect_err("ts + ts", "operator '+' cannot combine timestamp and timestamp", 3);
    expect_err("ts * 2", "operator '*' cannot combine timestamp and int", 3);
    expect_err("1 - ts", "operator '-' cannot combine int and timestamp", 2);
    expect_err("ts + 1.5", "operator '+' cannot combine timestamp and float", 3);
    expect_err("ts < 1.5", "operator '<' cannot compare timestamp and float", 3);
    expect_err("-ts", "operator '-' cannot be applied to timestamp", 0);
}
END_TEST

START_TEST(test_expr_comparison_types)
{
    expect_bool("value == 10", true);
    expect_bool("value != 10", false);
    expect_bool("value < 10", false);
    expect_bool("value <= 10", true);
    expect_bool("value > 9", true);
    expect_bool("value >= 11", false);
    expect_bool("1 < 1.5", true);
    expect_bool("price == 2.5", true);
    expect_bool("price > value", false);
    expect_bool("name == 'Alice'", true);
    expect_bool("name != 'alice'", true);
    expect_bool("'abc' < 'abd'", true);
    expect_bool("'ab' < 'abc'", true);
    expect_bool("'b' > 'abc'", true);
    expect_bool("'' <= ''", true);
    expect_bool("'Z' < 'a'", true); /* bytewise */
    expect_bool("t == true", true);
    expect_bool("t != f", true);
    expect_err("t < f", "operator '<' cannot compare bool and bool", 2);
    expect_err("name == 1", "operator '==' cannot compare string and int", 5);
    expect_err("value >= 'x'", "operator '>=' cannot compare int and string", 6);
    expect_err("t == 1", "operator '==' cannot compare bool and int", 2);
}
END_TEST

START_TEST(test_expr_logic_types)
{
    expect_bool("t && !f", true);
    expect_bool("!(value > 3)", false);
    expect_err("value && t", "operator '&&' needs bool operands, got int and bool", 6);
    expect_err("t || 'x'", "operator '||' needs bool operands, got bool and string", 2);
    expect_err("!value", "operator '!' needs a bool operand, got int", 0);
}
END_TEST

/* ---- null ---- */

START_TEST(test_expr_null_operators)
{
    expect_null("null", RN_TYPE_NULL);
    expect_null("ni + 1", RN_TYPE_INT);
    expect_null("null + 1", RN_TYPE_INT);
    expect_null("1.5 * null", RN_TYPE_FLOAT);
    expect_null("null + null", RN_TYPE_NULL);
    expect_null("-ni", RN_TYPE_INT);
    expect_null("nf / 2", RN_TYPE_FLOAT);
    expect_null("nts + 1", RN_TYPE_TIMESTAMP);
    expect_null("ni == 1", RN_TYPE_BOOL);
    expect_null("ns < 'a'", RN_TYPE_BOOL);
    expect_null("!nb", RN_TYPE_BOOL);
    expect_err("value == null", "comparison with null is always null; use is_null(x)", 6);
    expect_err("null != ns", "comparison with null is always null; use is_null(x)", 5);
    expect_err("null + 'a'", "operator '+' cannot combine null and string", 5);
}
END_TEST

START_TEST(test_expr_null_logic)
{
    /* SQL: false wins over null in &&, true wins over null in ||. */
    expect_bool("f && nb", false);
    expect_bool("nb && f", false);
    expect_null("t && nb", RN_TYPE_BOOL);
    expect_null("nb && t", RN_TYPE_BOOL);
    expect_null("nb && nb", RN_TYPE_BOOL);
    expect_bool("t || nb", true);
    expect_bool("nb || t", true);
    expect_null("f || nb", RN_TYPE_BOOL);
    expect_null("nb || f", RN_TYPE_BOOL);
    expect_bool("null || true", true);
    expect_bool("false && null", false);
    expect_null("true && null", RN_TYPE_BOOL);
    expect_bool("is_null(ni > 3) || t", true);
}
END_TEST

START_TEST(test_expr_runtime_faults)
{
    expect_null("value / 0", RN_TYPE_INT);
    expect_null("value % 0", RN_TYPE_INT);
    expect_null("value / (id - 7)", RN_TYPE_INT);
    expect_null("price / 0", RN_TYPE_FLOAT);
    expect_null("price / 0.0", RN_TYPE_FLOAT);
    expect_int("-9223372036854775808", INT64_MIN);
    expect_int("9223372036854775807", INT64_MAX);
    expect_null("9223372036854775807 + 1", RN_TYPE_INT);
    expect_null("-9223372036854775807 - 2", RN_TYPE_INT);
    expect_null("4611686018427387904 * 2", RN_TYPE_INT);
    expect_null("-(-9223372036854775808)", RN_TYPE_INT);
    expect_null("-9223372036854775808 / -1", RN_TYPE_INT);
    expect_int("-9223372036854775808 % -1", 0);
    expect_null("abs(-9223372036854775808)", RN_TYPE_INT);
    expect_err("9223372036854775808", "integer 9223372036854775808 is out of range", 0);
    expect_err("1 + 99999999999999999999", "integer 99999999999999999999 is out of range", 4);
    expect_err("1e999", "number '1e999' is out of range", 0);
}
END_TEST

/* ---- functions ---- */

START_TEST(test_expr_string_functions)
{
    expect_str("lower('AbC 1')", "abc 1");
    expect_str("upper(name)", "ALICE");
    expect_str("lower(name)", "alice");
    expect_str("upper('h\xc3\xa9')", "H\xc3\xa9"); /* ASCII only */
    expect_null("lower(ns)", RN_TYPE_STRING);
    expect_null("upper(null)", RN_TYPE_STRING);
    expect_int("len(name)", 5);
    expect_int("len('')", 0);
    expect_int("len('h\xc3\xa9')", 3); /* bytes */
    expect_null("len(ns)", RN_TYPE_INT);
    expect_str("concat('a', name, 'c')", "aAlicec");
    expect_str("concat(user)", "bob");
    expect_str("concat('', '')", "");
    expect_null("concat('a', ns)", RN_TYPE_STRING);
    expect_str("substr('hello', 2, 3)", "ell");
    expect_str("substr('hello', 2)", "ello");
    expect_str("substr('hello', 1, 100)", "hello");
    expect_str("substr('hello', 0, 3)", "he");
    expect_str("substr('hello', 10)", "");
    expect_str("substr('hello', -5, 2)", "");
    expect_str("substr(name, id - 6, 3)", "Ali");
    expect_null("substr('hello', 1, -1)", RN_TYPE_STRING);
    expect_null("substr(ns, 1)", RN_TYPE_STRING);
    expect_null("substr('abc', ni)", RN_TYPE_STRING);
    expect_err("lower(1)", "function 'lower': argument 1 must be string, got int", 6);
    expect_err("len(t)", "function 'len': argument 1 must be string, got bool", 4);
    expect_err("concat('a', 1)", "function 'concat': argument 2 must be string, got int", 12);
    expect_err("substr('a', '1')", "function 'substr': argument 2 must be int, got string", 12);
    expect_err("substr(1, 1)", "function 'substr': argument 1 must be string, got int", 7);
}
END_TEST

START_TEST(test_expr_numeric_functions)
{
    expect_int("abs(-3)", 3);
    expect_int("abs(value)", 10);
    expect_float("abs(-2.5)", 2.5);
    expect_null("abs(ni)", RN_TYPE_INT);
    expect_float("round(2.5)", 3.0);
    expect_float("round(-2.5)", -3.0);
    expect_float("round(2.4)", 2.0);
    expect_float("floor(-1.5)", -2.0);
    expect_float("floor(price)", 2.0);
    expect_float("ceil(1.2)", 2.0);
    expect_float("ceil(-1.2)", -1.0);
    expect_int("round(3)", 3); /* rounding keeps the argument's type */
    expect_int("floor(value)", 10);
    expect_null("ceil(nf)", RN_TYPE_FLOAT);
    expect_err("abs('x')", "function 'abs': argument 1 must be int or float, got string", 4);
    expect_err("round(ts)", "function 'round': argument 1 must be float or int, got timestamp", 6);
}
END_TEST

START_TEST(test_expr_null_functions)
{
    expect_int("coalesce(ni, value)", 10);
    expect_int("coalesce(ni, null, 5)", 5);
    expect_int("coalesce(value, 5)", 10);
    expect_float("coalesce(nf, value)", 10.0);
    expect_str("coalesce(ns, 'none')", "none");
    expect_null("coalesce(ni, ni)", RN_TYPE_INT);
    expect_null("coalesce(null, null)", RN_TYPE_NULL);
    expect_int("coalesce(7)", 7);
    expect_bool("is_null(ni)", true);
    expect_bool("is_null(value)", false);
    expect_bool("is_null(null)", true);
    expect_bool("is_null(value / 0)", true);
    expect_int("if(t, 1, 2)", 1);
    expect_int("if(f, 1, 2)", 2);
    expect_int("if(nb, 1, 2)", 2); /* a null condition is false */
    expect_float("if(value > 5, price, 0)", 2.5);
    expect_float("if(f, price, 1)", 1.0);
    expect_str("if(t, name, user)", "Alice");
    expect_null("if(t, null, 1)", RN_TYPE_INT);
    expect_err("coalesce(1, 'a')", "function 'coalesce': argument 2 is string but argument 1 is int",
               12);
    expect_err("if(1, 2, 3)", "function 'if': argument 1 must be bool, got int", 3);
    expect_err("if(t, 'a', 2)", "function 'if': argument 3 is int but argument 2 is string", 11);
}
END_TEST

START_TEST(test_expr_conversions)
{
    expect_str("to_string(42)", "42");
    expect_str("to_string(-7)", "-7");
    expect_str("to_string(-9223372036854775808)", "-9223372036854775808");
    expect_str("to_string(value * 3)", "30");
    expect_str("to_string(1.5)", "1.5");
    expect_str("to_string(2.0)", "2.0");
    expect_str("to_string(0.1)", "0.1");
    expect_str("to_string(1e100)", "1e+100");
    expect_str("to_string(t)", "true");
    expect_str("to_string(f)", "false");
    expect_str("to_string(name)", "Alice");
    expect_str("to_string(ts)", "2023-11-14T22:13:20.123Z");
    expect_str("to_string(to_timestamp(0))", "1970-01-01T00:00:00.000Z");
    expect_str("to_string(to_timestamp(-1))", "1969-12-31T23:59:59.999Z");
    expect_str("to_string(to_timestamp(951782400000))", "2000-02-29T00:00:00.000Z");
    expect_null("to_string(ni)", RN_TYPE_STRING);
    expect_int("to_int('42')", 42);
    expect_int("to_int(' -17 ')", -17);
    expect_int("to_int('-9223372036854775808')", INT64_MIN);
    expect_null("to_int('9223372036854775808')", RN_TYPE_INT);
    expect_null("to_int('4x')", RN_TYPE_INT);
    expect_null("to_int('')", RN_TYPE_INT);
    expect_null("to_int('-')", RN_TYPE_INT);
    expect_int("to_int(3.9)", 3);
    expect_int("to_int(-3.9)", -3);
    expect_null("to_int(1e300)", RN_TYPE_INT);
    expect_int("to_int(t)", 1);
    expect_int("to_int(ts)", 1700000000123);
    expect_int("to_int(value)", 10);
    expect_float("to_float('2.5')", 2.5);
    expect_float("to_float(' 1e3')", 1000.0);
    expect_null("to_float('abc')", RN_TYPE_FLOAT);
    expect_null("to_float('')", RN_TYPE_FLOAT);
    expect_float("to_float(3)", 3.0);
    expect_float("to_float(f)", 0.0);
    expect_float("to_float(price)", 2.5);
    expect_ts("to_timestamp(5)", 5);
    expect_ts("to_timestamp(ts)", 1700000000123);
    expect_err("to_timestamp('x')",
               "function 'to_timestamp': argument 1 must be int or timestamp, got string", 13);
}
END_TEST

START_TEST(test_expr_function_errors)
{
    expect_err("lowr(name)", "unknown function 'lowr'; did you mean 'lower'?", 0);
    expect_err("1 + frobnicate(2)", "unknown function 'frobnicate'", 4);
    expect_err("lower()", "function 'lower' takes 1 argument, got 0", 0);
    expect_err("lower(name, name)", "function 'lower' takes 1 argument, got 2", 0);
    expect_err("if(t, 1)", "function 'if' takes 3 arguments, got 2", 0);
    expect_err("substr('a')", "function 'substr' takes 2 to 3 arguments, got 1", 0);
    expect_err("concat()", "function 'concat' takes at least 1 argument, got 0", 0);
    expect_err("lower(name", "expected ',' or ')' in call to 'lower'", 10);
    expect_err("lower(name name)", "expected ',' or ')' in call to 'lower'", 11);
    expect_err("lower(name,)", "unexpected ')'", 11);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_expr_unknown_field)
{
    expect_err("usr == 'bob'", "unknown field 'usr'; did you mean 'user'?", 0);
    expect_err("value + valeu", "unknown field 'valeu'; did you mean 'value'?", 8);
    expect_err("zzzzz > 1", "unknown field 'zzzzz'", 0);
    expect_err("Name", "unknown field 'Name'; did you mean 'name'?", 0);
    expect_err("t and f", "unexpected 'and'; use '&&'", 2);
    expect_err("not t", "unknown field 'not'; use '!' for not", 0);
    expect_err("lower", "unknown field 'lower'; to call the function write lower(...)", 0);
}
END_TEST

START_TEST(test_expr_syntax_errors)
{
    expect_err("", "empty expression", 0);
    expect_err("   ", "empty expression", 3);
    expect_err("(1 + 2", "expected ')'", 6);
    expect_err("(1 + 2 3", "expected ')'", 7);
    expect_err("1 +", "unexpected end of expression", 3);
    expect_err("1 + * 2", "unexpected '*'", 4);
    expect_err("1 2", "unexpected '2'", 2);
    expect_err("(1))", "unmatched ')'", 3);
    expect_err("value = 1", "unexpected '='; did you mean '=='?", 6);
    expect_err("t & f", "unexpected '&'; did you mean '&&'?", 2);
    expect_err("t | f", "unexpected '|'; did you mean '||'?", 2);
    expect_err("name == \"x\"", "strings are quoted with single quotes: 'text'", 8);
    expect_err("1 # 2", "unexpected character '#'", 2);
    expect_err("1 + \x01", "unexpected byte 0x01", 4);
    expect_err("12abc", "malformed number '12abc'", 0);
    expect_err("1.2.3", "malformed number '1.2.3'", 0);
    expect_err("name == 'abc", "unterminated string", 8);
    expect_err("'it''s", "unterminated string", 0);
}
END_TEST

START_TEST(test_expr_nesting_limit)
{
    char text[4096];
    size_t n = 0;

    for (int i = 0; i < 1000; i++)
        text[n++] = '(';
    text[n++] = '1';
    for (int i = 0; i < 1000; i++)
        text[n++] = ')';
    text[n] = '\0';
    expect_err(text, "expression nested too deeply (more than 128 levels)", 128);

    /* A long chain nests without parentheses; eval's recursion is bounded too. */
    n = 0;
    memcpy(text, "value", 5);
    n = 5;
    for (int i = 0; i < 300; i++) {
        memcpy(text + n, " + value", 8);
        n += 8;
    }
    text[n] = '\0';
    expect_err(text, "expression nested too deeply (more than 256 levels)", 5 + 255 * 8 + 1);

    /* Constant chains fold as they are built, so they never get deep. */
    n = 1;
    text[0] = '1';
    for (int i = 0; i < 300; i++) {
        memcpy(text + n, " + 1", 4);
        n += 4;
    }
    text[n] = '\0';
    expect_int(text, 301);
}
END_TEST

/* ---- literals ---- */

START_TEST(test_expr_string_literals)
{
    expect_str("'abc'", "abc");
    expect_str("''", "");
    expect_str("'it''s'", "it's");
    expect_str("''''", "'");
    expect_str("'a'''", "a'");
    expect_str("'''a'", "'a");
    expect_str("'  spaced  out '", "  spaced  out ");
    expect_str("'h\xc3\xa9llo'", "h\xc3\xa9llo");
    expect_bool("'it''s' == concat('it', '''s')", true);
    expect_int("len('''')", 1);
}
END_TEST

START_TEST(test_expr_other_literals)
{
    expect_bool("true", true);
    expect_bool("FALSE", false);
    expect_null("NULL", RN_TYPE_NULL);
    expect_int("0", 0);
    expect_float("0.25", 0.25);
    expect_float(".5", 0.5);
    expect_float("1.", 1.0);
    expect_float("2.5e-1", 0.25);
    expect_float("1E2", 100.0);
    expect_int("  1\n+\t2 ", 3);
}
END_TEST

/* ---- the handle ---- */

START_TEST(test_expr_field_and_type)
{
    rn_expr_t *e = parse_ok("value");
    ck_assert_int_eq(rn__expr_field(e), F_VALUE);
    ck_assert_int_eq(rn__expr_type(e), RN_TYPE_INT);
    rn__expr_destroy(e);

    e = parse_ok("(name)");
    ck_assert_int_eq(rn__expr_field(e), F_NAME);
    ck_assert_int_eq(rn__expr_type(e), RN_TYPE_STRING);
    rn__expr_destroy(e);

    e = parse_ok("value + 1");
    ck_assert_int_eq(rn__expr_field(e), -1);
    rn__expr_destroy(e);

    e = parse_ok("to_int(ts)");
    ck_assert_int_eq(rn__expr_field(e), -1);
    ck_assert_int_eq(rn__expr_type(e), RN_TYPE_INT);
    rn__expr_destroy(e);

    rn__expr_destroy(NULL);
}
END_TEST

START_TEST(test_expr_constant_folding)
{
    static const char *const folded[] = {"1 + 2 * 3",       "concat('a', upper('b'))",
                                         "-(-(-1))",        "to_string(1.5) == '1.5'",
                                         "ni + null",       "if(true, 1, 2)",
                                         "substr('abc', 2)", "coalesce(null, 3)"};
    for (size_t i = 0; i < sizeof(folded) / sizeof(folded[0]); i++) {
        rn_expr_t *e = parse_ok(folded[i]);
        ck_assert_msg(e->nodes[e->root].op == RN_X_CONST, "\"%s\" not folded", folded[i]);
        rn__expr_destroy(e);
    }
    /* A folded string lives in the expression, not in the eval arena. */
    rn_expr_t *e = parse_ok("concat('a', upper('b'))");
    rn_value_t v;
    rn__expr_eval(e, row, NULL, &v);
    ck_assert_int_eq(v.len, 2);
    ck_assert_mem_eq(v.u.s, "aB", 2);
    ck_assert(!e->makes_strings);
    rn__expr_destroy(e);
}
END_TEST

/* ---- filter ---- */

static rn_batch_t *
make_batch(uint32_t n)
{
    rn_batch_t *b = rn__batch_new(schema, n);
    static const char *const names[] = {"Bob", "alice", "BOB", "carol"};
    for (uint32_t i = 0; i < n; i++) {
        rn_value_t *r = rn__batch_append(b, (int64_t)i);
        memcpy(r, row, sizeof(row));
        r[F_VALUE] = i % 5 == 4 ? rn__val_null() : rn__val_int((int64_t)i);
        r[F_NAME] = rn__val_str(names[i % 4], (uint32_t)strlen(names[i % 4]));
        r[F_T] = rn__val_bool(i % 3 == 0);
    }
    return b;
}

START_TEST(test_expr_filter_batch)
{
    rn_batch_t *b = make_batch(RN_BATCH_ROWS);
    uint8_t keep[RN_BATCH_ROWS];
    rn_expr_t *e = parse_ok("value % 2 == 0");

    memset(keep, 7, sizeof(keep));
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], i % 5 != 4 && i % 2 == 0);
    rn__expr_destroy(e);

    e = parse_ok("t");
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], i % 3 == 0);
    rn__expr_destroy(e);

    /* Makes strings: evaluated with the filter's scratch arena. */
    e = parse_ok("lower(name) == 'bob' && value > 100");
    ck_assert(e->makes_strings);
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], i % 4 != 1 && i % 4 != 3 && i % 5 != 4 && i > 100);
    rn__expr_destroy(e);

    /* Null is false: value is null on every fifth row. */
    e = parse_ok("is_null(value) || value < 0");
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], i % 5 == 4);
    rn__expr_destroy(e);

    e = parse_ok("!(value < 10)");
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], i % 5 != 4 && i >= 10);
    rn__expr_destroy(e);
    rn__batch_destroy(b);
}
END_TEST

START_TEST(test_expr_filter_empty_and_null)
{
    rn_batch_t *b = make_batch(8);
    uint8_t keep[8];
    rn_expr_t *e = parse_ok("null");

    memset(keep, 7, sizeof(keep));
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], 0);
    rn__expr_destroy(e);

    rn__batch_reset(b);
    e = parse_ok("value > 1");
    memset(keep, 7, sizeof(keep));
    rn__expr_eval_filter(e, b, keep);
    ck_assert_int_eq(keep[0], 7);
    rn__expr_destroy(e);
    rn__batch_destroy(b);
}
END_TEST

START_TEST(test_expr_map_strings_in_arena)
{
    rn_expr_t *e = parse_ok("concat(upper(name), '-', to_string(value))");
    rn_arena_t out;
    rn_value_t v;

    rn__arena_init(&out);
    rn__expr_eval(e, row, &out, &v);
    ck_assert(!v.null);
    ck_assert_int_eq(v.len, 8);
    ck_assert_mem_eq(v.u.s, "ALICE-10", 8);
    /* The bytes are in the arena passed in. */
    ck_assert(out.head != NULL && v.u.s >= (const char *)out.head &&
              v.u.s < (const char *)out.head + 16384 + 64);
    rn__arena_fini(&out);
    rn__expr_destroy(e);
}
END_TEST

/* Batch evaluation (chunked, node at a time) agrees with rn__expr_eval row
 * by row, for shallow trees (chunked) and deep ones (row by row). */
START_TEST(test_expr_eval_batch)
{
    static const char *const texts[] = {
        "value % 4",
        "-value % 8",
        "value % 3 - value / 4",
        "value * 2 + id",
        "to_float(value) / 2 - price",
        "(value > 3 && nb) || (value < 2 && t)",
        "!(value > 3) || nb",
        "is_null(value)",
        "coalesce(value, -1) * 10",
        "concat(lower(name), to_string(value))",
        "if(t, value, 0) + 0",
        "value",
        "-(value + 1) * (value - 1) + ((((value + 1) + 2) + 3) + 4 + 5 + 6 + 7 + 8 + 9)",
    };
    rn_batch_t *b = make_batch(200);
    rn_value_t out[200 * 2];
    rn_arena_t a;

    rn__arena_init(&a);
    for (uint32_t i = 0; i < b->n; i++)
        RN_ROW(b, i)[F_VALUE] = i % 5 == 4 ? rn__val_null() : rn__val_int((int64_t)i - 100);
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        rn_expr_t *e = parse_ok(texts[t]);
        rn_type_t type = rn__expr_type(e);
        memset(out, 0, sizeof(out));
        rn__expr_eval_batch(e, b, &a, out, 2);
        for (uint32_t i = 0; i < b->n; i++) {
            rn_value_t want;
            rn__expr_eval(e, RN_ROW(b, i), &a, &want);
            const rn_value_t *got = &out[i * 2];
            ck_assert_msg(got->null == want.null, "\"%s\" row %u: null %d, want %d", texts[t], i,
                          got->null, want.null);
            if (want.null)
                continue;
            if (type == RN_TYPE_STRING)
                ck_assert_msg(got->len == want.len && memcmp(got->u.s, want.u.s, want.len) == 0,
                              "\"%s\" row %u", texts[t], i);
            else if (type == RN_TYPE_BOOL)
                ck_assert_msg(got->u.b == want.u.b, "\"%s\" row %u", texts[t], i);
            else
                ck_assert_msg(got->u.i == want.u.i, "\"%s\" row %u: %lld, want %lld", texts[t],
                              i, (long long)got->u.i, (long long)want.u.i);
        }
        rn__expr_destroy(e);
    }
    /* Spot checks of the power-of-two modulo, whose sign follows the dividend. */
    rn_expr_t *e = parse_ok("value % 4");
    rn__expr_eval_batch(e, b, &a, out, 1);
    ck_assert_int_eq(out[0].u.i, 0);   /* -100 % 4 */
    ck_assert_int_eq(out[1].u.i, -3);  /* -99 % 4 */
    ck_assert_int_eq(out[103].u.i, 3); /* 3 % 4 */
    ck_assert(out[4].null);
    rn__expr_destroy(e);
    rn__arena_fini(&a);
    rn__batch_destroy(b);
}
END_TEST

START_TEST(test_expr_filter_deep)
{
    /* Deeper than the chunked evaluator takes: evaluated row by row. */
    rn_batch_t *b = make_batch(100);
    uint8_t keep[100];
    rn_expr_t *e =
        parse_ok("((((((((((value + 1) + 1) + 1) + 1) + 1) + 1) + 1) + 1) + 1) + 1) % 2 == 0");

    ck_assert_int_gt(e->nodes[e->root].depth, 8);
    rn__expr_eval_filter(e, b, keep);
    for (uint32_t i = 0; i < b->n; i++)
        ck_assert_int_eq(keep[i], i % 5 != 4 && i % 2 == 0);
    rn__expr_destroy(e);
    rn__batch_destroy(b);
}
END_TEST

static Suite *
expr_suite(void)
{
    Suite *s = suite_create("expr");
    struct {
        const char *name;
        const TTest *tests[8];
    } groups[] = {
        {"precedence", {test_expr_precedence, test_expr_chained_comparison}},
        {"types",
         {test_expr_arithmetic_types, test_expr_timestamp_types, test_expr_comparison_types,
          test_expr_logic_types}},
        {"null", {test_expr_null_operators, test_expr_null_logic, test_expr_runtime_faults}},
        {"functions",
         {test_expr_string_functions, test_expr_numeric_functions, test_expr_null_functions,
          test_expr_conversions, test_expr_function_errors}},
        {"errors", {test_expr_unknown_field, test_expr_syntax_errors, test_expr_nesting_limit}},
        {"literals", {test_expr_string_literals, test_expr_other_literals}},
        {"handle", {test_expr_field_and_type, test_expr_constant_folding}},
        {"eval",
         {test_expr_filter_batch, test_expr_filter_empty_and_null, test_expr_filter_deep,
          test_expr_map_strings_in_arena, test_expr_eval_batch}},
    };

    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        for (int i = 0; i < 8 && groups[g].tests[i] != NULL; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

RN_CHECK_MAIN(expr_suite)
