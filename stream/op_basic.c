/*
 * stream/op_basic.c: the stateless operators `filter` (keep the rows whose
 * `where` is true) and `map` (compute a new row from `select`
 * expressions).
 *
 * Both work a batch at a time. filter compacts the batch in place, so a
 * chain source -> filter -> map moves no row it does not keep; map fills a
 * new batch and keeps each row's event time.
 *
 * @thread plan: control; process: task.
 */
#include "stream/component.h"
#include "stream/expr.h"

/* Parses an expression from a conf scalar and reports errors at the
 * position of the problem inside it. */
static rn_expr_t *
parse_at(const rn_conf_t *node, const rn_schema_t *schema, const char *what, rn_error_t *err)
{
    const char *text = rn_conf_scalar(node);
    size_t off = 0;
    rn_error_t e = RN_ERROR_INIT;

    if (text == NULL) {
        rn__conf_err(err, RN_EINVAL, node, "%s must be an expression (a string)", what);
        return NULL;
    }
    rn_expr_t *x = rn__expr_parse(text, schema, &off, &e);
    if (x != NULL)
        return x;
    if (rn_conf_file(node) != NULL && rn_conf_line(node) > 0 && strchr(text, '\n') == NULL) {
        int col = rn_conf_col(node) + (rn_conf_quoted(node) ? 1 : 0) + (int)off;
        rn__errf(err, RN_EINVAL, "%s:%d:%d: %s: %s", rn_conf_file(node), rn_conf_line(node), col,
                 what, e.msg);
    } else {
        rn__conf_err(err, RN_EINVAL, node, "%s: %s (at offset %zu)", what, e.msg, off);
    }
    return NULL;
}

/* ---- filter ---- */

static const char *const filter_keys[] = {"where", NULL};

static void
expr_free(void *p)
{
    rn__expr_destroy(p);
}

static rn_code_t
filter_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    char what[200];
    const rn_conf_t *where;

    snprintf(what, sizeof(what), "operator '%s'", rn__pc_name(pc));
    if (rn__pc_ninputs(pc) != 1)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(rn__pc_conf(pc), "inputs"),
                            "%s: a filter has exactly one input", what);
    if ((where = rn__conf_require(rn__pc_conf(pc), "where", what, err)) == NULL)
        return err ? err->code : RN_EINVAL;
    snprintf(what, sizeof(what), "operator '%s' where", rn__pc_name(pc));
    rn_expr_t *x = parse_at(where, rn__pc_input_schema(pc, 0), what, err);
    if (x == NULL)
        return err ? err->code : RN_EINVAL;
    if (rn__expr_type(x) != RN_TYPE_BOOL) {
        rn_type_t t = rn__expr_type(x);
        rn__expr_destroy(x);
        return rn__conf_err(err, RN_EINVAL, where, "%s: must be a condition (bool), not %s",
                            what, rn_type_name(t));
    }
    rn__pc_set_plan(pc, x, expr_free);
    return rn__pc_add_output(pc, NULL, rn__schema_copy(rn__pc_input_schema(pc, 0)), err);
}

static rn_code_t
filter_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    const rn_expr_t *x = rn__op_plan(op);
    uint8_t keep[RN_BATCH_ROWS];
    uint32_t w = b->width, out = 0;

    rn_assert(b->n <= RN_BATCH_ROWS);
    rn__expr_eval_filter(x, b, keep);
    for (uint32_t r = 0; r < b->n; r++) {
        if (!keep[r])
            continue;
        if (out != r) {
            memcpy(RN_ROW(b, out), RN_ROW(b, r), w * sizeof(rn_value_t));
            b->ts[out] = b->ts[r];
        }
        out++;
    }
    b->n = out;
    return rn__op_emit(op, 0, b, err);
}

const rn_opclass_t rn__op_filter = {
    .type = "filter",
    .section = RN_OPERATOR,
    .keys = filter_keys,
    .plan = filter_plan,
    .process = filter_process,
};

/* ---- map ---- */

static const char *const map_keys[] = {"select", NULL};

typedef struct map_plan {
    uint32_t n;
    rn_expr_t **exprs;
    bool *is_string;
} map_plan_t;

static void
map_plan_free(void *p)
{
    map_plan_t *mp = p;
    if (mp == NULL)
        return;
    for (uint32_t i = 0; i < mp->n; i++)
        rn__expr_destroy(mp->exprs[i]);
    rn_free(mp->exprs);
    rn_free(mp->is_string);
    rn_free(mp);
}

static rn_code_t
map_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const rn_conf_t *select;
    char what[200];
    rn_code_t rc;

    snprintf(what, sizeof(what), "operator '%s'", rn__pc_name(pc));
    if (rn__pc_ninputs(pc) != 1)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "inputs"),
                            "%s: a map has exactly one input", what);
    if ((select = rn__conf_require(conf, "select", what, err)) == NULL)
        return err ? err->code : RN_EINVAL;
    if (rn_conf_kind(select) != RN_CONF_MAP || rn_conf_len(select) == 0)
        return rn__conf_err(err, RN_EINVAL, select,
                            "%s: select must be a map of output field: expression", what);
    map_plan_t *mp = rn_xcalloc(1, sizeof(*mp));
    size_t n = rn_conf_len(select);
    mp->exprs = rn_xcalloc(n, sizeof(rn_expr_t *));
    mp->is_string = rn_xcalloc(n, sizeof(bool));
    rn_schema_t *out = rn__schema_new();
    for (size_t i = 0; i < n; i++) {
        const char *field = rn_conf_key_at(select, i);
        snprintf(what, sizeof(what), "operator '%s' select '%s'", rn__pc_name(pc), field);
        rn_expr_t *x = parse_at(rn_conf_at(select, i), rn__pc_input_schema(pc, 0), what, err);
        if (x == NULL) {
            rn__schema_destroy(out);
            map_plan_free(mp);
            return err ? err->code : RN_EINVAL;
        }
        mp->exprs[mp->n++] = x;
        rn_type_t t = rn__expr_type(x);
        if (t == RN_TYPE_NULL) {
            rn__schema_destroy(out);
            map_plan_free(mp);
            return rn__conf_err(err, RN_EINVAL, rn_conf_at(select, i),
                                "%s: the expression is always null, so its type is unknown",
                                what);
        }
        mp->is_string[i] = t == RN_TYPE_STRING;
        if ((rc = rn__schema_add(out, field, t, err)) != RN_OK) {
            rn__schema_destroy(out);
            map_plan_free(mp);
            return rn__conf_err(err, rc, rn_conf_key_node_at(select, i),
                                "%s: field appears twice", what);
        }
    }
    rn__pc_set_plan(pc, mp, map_plan_free);
    return rn__pc_add_output(pc, NULL, out, err);
}

static rn_code_t
map_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    const map_plan_t *mp = rn__op_plan(op);
    rn_batch_t *ob = rn__op_batch(op, 0);

    for (uint32_t r = 0; r < b->n; r++) {
        const rn_value_t *row = RN_ROW(b, r);
        rn_value_t *orow = RN_ROW(ob, r);
        for (uint32_t i = 0; i < mp->n; i++) {
            rn__expr_eval(mp->exprs[i], row, &ob->arena, &orow[i]);
            /* A string passed through still points into the input batch,
             * which is freed below: copy it. */
            if (mp->is_string[i])
                rn__batch_own_string(ob, &orow[i]);
        }
        ob->ts[r] = b->ts[r];
    }
    ob->n = b->n;
    rn__op_free_batch(op, b);
    return rn__op_emit(op, 0, ob, err);
}

const rn_opclass_t rn__op_map = {
    .type = "map",
    .section = RN_OPERATOR,
    .keys = map_keys,
    .plan = map_plan,
    .process = map_process,
};
