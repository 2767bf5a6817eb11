/*
 * tests/unit/test_row.c: schemas, the arena and batches (stream/row.c).
 */
#include "rn_check.h"
#include "stream/row.h"

START_TEST(test_row_schema_find_and_duplicates)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_schema_t *s = rn__schema_new();
    ck_assert_rn_ok(rn__schema_add(s, "user", RN_TYPE_STRING, &err), &err);
    ck_assert_rn_ok(rn__schema_add(s, "ts", RN_TYPE_TIMESTAMP, &err), &err);
    ck_assert_int_eq(rn__schema_find(s, "user"), 0);
    ck_assert_int_eq(rn__schema_find(s, "ts"), 1);
    ck_assert_int_eq(rn__schema_find(s, "nope"), -1);
    ck_assert_int_eq(rn__schema_add(s, "user", RN_TYPE_INT, &err), RN_EINVAL);
    ck_assert_str_eq(err.msg, "field 'user' appears twice");
    char buf[128];
    rn__schema_format(s, buf, sizeof(buf));
    ck_assert_str_eq(buf, "user: string, ts: timestamp");
    rn_schema_t *c = rn__schema_copy(s);
    ck_assert_int_eq(c->nfields, 2);
    ck_assert_str_eq(c->fields[1].name, "ts");
    rn__schema_destroy(c);
    rn__schema_destroy(s);
}
END_TEST

START_TEST(test_row_type_names)
{
    rn_type_t t;
    const char *names[] = {"string", "int", "float", "bool", "timestamp"};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(rn_type_parse(names[i], &t), RN_OK);
        ck_assert_str_eq(rn_type_name(t), names[i]);
    }
    ck_assert_int_eq(rn_type_parse("integer", &t), RN_ENOTFOUND);
}
END_TEST

START_TEST(test_row_arena_alignment_and_reset)
{
    rn_arena_t a;
    rn__arena_init(&a);
    /* Many allocations across chunks stay 8-aligned and keep their bytes. */
    char *ptrs[2000];
    for (int i = 0; i < 2000; i++) {
        ptrs[i] = rn__arena_alloc(&a, (size_t)(i % 37) + 1);
        ck_assert_int_eq(((uintptr_t)ptrs[i]) % 8, 0);
        memset(ptrs[i], i & 0xff, (size_t)(i % 37) + 1);
    }
    for (int i = 0; i < 2000; i++)
        ck_assert_int_eq((unsigned char)ptrs[i][0], i & 0xff);
    /* A request larger than a chunk gets its own. */
    char *big = rn__arena_alloc(&a, 100000);
    memset(big, 1, 100000);
    const char *s = rn__arena_strdup(&a, "hello", 5);
    ck_assert_str_eq(s, "hello");
    rn__arena_reset(&a);
    ck_assert_ptr_null(a.full);
    ck_assert_uint_eq(a.used, 0);
    rn__arena_fini(&a);
}
END_TEST

START_TEST(test_row_batch_copy_owns_strings)
{
    rn_schema_t *s = rn__schema_new();
    rn__schema_add(s, "name", RN_TYPE_STRING, NULL);
    rn__schema_add(s, "n", RN_TYPE_INT, NULL);
    rn_batch_t *a = rn__batch_new(s, 4), *b = rn__batch_new(s, 4);
    char text[] = "abc";
    rn_value_t *row = rn__batch_append(a, 42);
    ck_assert(row[0].null && row[1].null);
    row[0] = rn__val_str(text, 3);
    row[1] = rn__val_int(7);
    rn__batch_copy_row(b, RN_ROW(a, 0), a->ts[0]);
    text[0] = 'X'; /* the copy must not see changes to the original bytes */
    ck_assert_int_eq(b->n, 1);
    ck_assert_int_eq(b->ts[0], 42);
    ck_assert_int_eq(RN_ROW(b, 0)[0].len, 3);
    ck_assert(memcmp(RN_ROW(b, 0)[0].u.s, "abc", 3) == 0);
    ck_assert_int_eq(RN_ROW(b, 0)[1].u.i, 7);
    rn__batch_reset(b);
    ck_assert_int_eq(b->n, 0);
    ck_assert(!rn__batch_full(b));
    for (int i = 0; i < 4; i++)
        rn__batch_append(b, i);
    ck_assert(rn__batch_full(b));
    rn__batch_destroy(a);
    rn__batch_destroy(b);
    rn__schema_destroy(s);
}
END_TEST

START_TEST(test_row_value_compare)
{
    rn_value_t a = rn__val_str("ab", 2), b = rn__val_str("abc", 3);
    ck_assert_int_lt(rn__val_compare(RN_TYPE_STRING, &a, &b), 0);
    ck_assert_int_gt(rn__val_compare(RN_TYPE_STRING, &b, &a), 0);
    rn_value_t x = rn__val_int(-5), y = rn__val_int(3);
    ck_assert_int_lt(rn__val_compare(RN_TYPE_INT, &x, &y), 0);
    rn_value_t f = rn__val_float(1.5), g = rn__val_float(1.5);
    ck_assert(rn__val_equal(RN_TYPE_FLOAT, &f, &g));
}
END_TEST

static Suite *
row_suite(void)
{
    Suite *s = suite_create("row");
    TCase *tc = tcase_create("schema");
    tcase_add_test(tc, test_row_schema_find_and_duplicates);
    tcase_add_test(tc, test_row_type_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("arena");
    tcase_add_test(tc, test_row_arena_alignment_and_reset);
    suite_add_tcase(s, tc);
    tc = tcase_create("batch");
    tcase_add_test(tc, test_row_batch_copy_owns_strings);
    tcase_add_test(tc, test_row_value_compare);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(row_suite)
