/*
 * fuzz/expr.c: expressions of job files (a filter's `where`, a map's
 * `select`), parsed and type-checked by rn__expr_parse against a schema of
 * every type; one that parses is then evaluated row by row, as a filter
 * over a batch and column-wise, on rows with values and with nulls, as the
 * map and filter operators do.
 */
#include "fuzz/fuzz_util.h"

#include "stream/expr.h"

#include <stdlib.h>
#include <string.h>

/* The fields of the expression unit tests (tests/unit/test_expr.c), so that
 * its expressions are seeds that parse. */
static const struct {
    const char *name;
    rn_type_t type;
} fields[] = {
    {"id", RN_TYPE_INT},       {"value", RN_TYPE_INT},   {"price", RN_TYPE_FLOAT},
    {"name", RN_TYPE_STRING},  {"user", RN_TYPE_STRING}, {"t", RN_TYPE_BOOL},
    {"f", RN_TYPE_BOOL},       {"ts", RN_TYPE_TIMESTAMP}, {"ni", RN_TYPE_INT},
    {"ns", RN_TYPE_STRING},    {"nb", RN_TYPE_BOOL},     {"nf", RN_TYPE_FLOAT},
    {"nts", RN_TYPE_TIMESTAMP},
};
#define NF (sizeof(fields) / sizeof(fields[0]))

static rn_schema_t *schema;
static rn_batch_t *batch;

static void
setup(void)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_fuzz_quiet();
    schema = rn__schema_new();
    for (size_t i = 0; i < NF; i++)
        if (rn__schema_add(schema, fields[i].name, fields[i].type, &err) != RN_OK)
            abort();
    batch = rn__batch_new(schema, 4);
    /* Row 0: ordinary values; row 1: the extremes; row 2: nulls. */
    rn_value_t rows[3][NF] = {
        {rn__val_int(7), rn__val_int(10), rn__val_float(2.5), rn__val_str("Alice", 5),
         rn__val_str("bob", 3), rn__val_bool(true), rn__val_bool(false),
         rn__val_int(1700000000123), rn__val_null(), rn__val_null(), rn__val_null(),
         rn__val_null(), rn__val_null()},
        {rn__val_int(INT64_MIN), rn__val_int(-1), rn__val_float(-0.0), rn__val_str("\xff\xfe", 2),
         rn__val_str("%s%n", 4), rn__val_bool(false), rn__val_bool(true), rn__val_int(INT64_MAX),
         rn__val_int(INT64_MAX), rn__val_str("", 0), rn__val_bool(true), rn__val_float(1e308),
         rn__val_int(INT64_MIN)},
    };
    for (size_t i = 0; i < NF; i++)
        rows[2][i] = rn__val_null();
    for (int r = 0; r < 3; r++) {
        memcpy(&batch->vals[(size_t)r * batch->width], rows[r], sizeof(rows[r]));
        batch->n++;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (schema == NULL)
        setup();
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    rn_error_t err = RN_ERROR_INIT;
    size_t off = 0;
    rn_expr_t *e = rn__expr_parse(text, schema, &off, &err);
    if (e != NULL) {
        rn_arena_t arena;
        rn__arena_init(&arena);
        rn_value_t out[4];
        uint8_t keep[4];
        for (uint32_t r = 0; r < batch->n; r++)
            rn__expr_eval(e, &batch->vals[(size_t)r * batch->width], &arena, &out[r]);
        if (rn__expr_type(e) == RN_TYPE_BOOL)
            rn__expr_eval_filter(e, batch, keep);
        rn__expr_eval_batch(e, batch, &arena, out, 1);
        rn__arena_fini(&arena);
        rn__expr_destroy(e);
    }
    free(text);
    return 0;
}
