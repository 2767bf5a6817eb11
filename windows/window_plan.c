/*
 * windows/window_plan.c: plan time of the window_aggregate operator:
 * reads and checks its configuration (key, window, aggregates,
 * allowed_lateness, late_output) against the input schema and declares
 * its outputs. The run-time half is window_op.c.
 *
 * Several inputs are merged into one stream and must share one schema.
 *
 * Output schema (port 0): the key fields with their input types,
 * window_start and window_end (timestamps), then one field per aggregate
 * in the order of `aggregates`. The late_output side port carries late
 * records unchanged (a copy of the input schema).
 *
 * Every mistake is reported with the FILE:LINE:COL of the node at fault;
 * for an aggregate, of the character inside the "fn(arg)" string.
 *
 * @thread control (plan time).
 */
#include "stream/component.h"
#include "windows/window_int.h"

static const char *const win_types[] = {"tumbling", "sliding", "session", NULL};
static const char *const keys_tumbling[] = {"type", "size", NULL};
static const char *const keys_sliding[] = {"type", "size", "slide", NULL};
static const char *const keys_session[] = {"type", "gap", NULL};

void
rn__win_plan_free(void *p)
{
    rn_win_plan_t *plan = p;
    if (plan == NULL)
        return;
    rn_free(plan->aggs);
    rn_free(plan);
}

/* A required duration of window, > 0. */
static rn_code_t
positive_duration(const rn_conf_t *win, const char *key, const char *what, int64_t *out,
                  rn_error_t *err)
{
    const rn_conf_t *node = rn__conf_require(win, key, what, err);
    if (node == NULL)
        return RN_EINVAL;
    rn_code_t rc = rn__conf_duration_ms(win, key, 0, out, err);
    if (rc != RN_OK)
        return rc;
    if (*out <= 0)
        return rn__conf_err(err, RN_EINVAL, node, "%s: %s must be longer than 0", what, key);
    return RN_OK;
}

static rn_code_t
plan_window(const rn_conf_t *conf, const char *name, rn_win_spec_t *spec, rn_error_t *err)
{
    static const char *const *const keys[] = {keys_tumbling, keys_sliding, keys_session};
    char what[200];
    int kind = -1;
    rn_code_t rc;

    snprintf(what, sizeof(what), "window of operator '%s'", name);
    const rn_conf_t *win = rn__conf_require(conf, "window", what, err);
    if (win == NULL)
        return RN_EINVAL;
    if (rn_conf_kind(win) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, win,
                            "%s must be a map such as {type: tumbling, size: 1m}", what);
    if (rn__conf_require(win, "type", what, err) == NULL)
        return RN_EINVAL;
    if ((rc = rn__conf_enum(win, "type", win_types, -1, &kind, err)) != RN_OK)
        return rc;
    snprintf(what, sizeof(what), "%s window of operator '%s'", win_types[kind], name);
    if ((rc = rn__conf_check_keys(win, keys[kind], what, err)) != RN_OK)
        return rc;
    memset(spec, 0, sizeof(*spec));
    spec->kind = (rn_win_kind_t)kind;
    switch (spec->kind) {
    case RN_WIN_TUMBLING:
        return positive_duration(win, "size", what, &spec->size, err);
    case RN_WIN_SLIDING:
        /* As Flink, size need not be a multiple of slide. */
        if ((rc = positive_duration(win, "size", what, &spec->size, err)) != RN_OK)
            return rc;
        return positive_duration(win, "slide", what, &spec->slide, err);
    case RN_WIN_SESSION:
        return positive_duration(win, "gap", what, &spec->gap, err);
    }
    RN_NOTREACHED();
}

/* Reports an aggregate's parse error at the character it concerns. */
static rn_code_t
agg_err(const rn_conf_t *node, const char *what, const char *msg, size_t off, rn_error_t *err)
{
    const char *text = rn_conf_scalar(node);
    if (rn_conf_file(node) != NULL && rn_conf_line(node) > 0 && strchr(text, '\n') == NULL) {
        int col = rn_conf_col(node) + (rn_conf_quoted(node) ? 1 : 0) + (int)off;
        return rn__errf(err, RN_EINVAL, "%s:%d:%d: %s: %s", rn_conf_file(node),
                        rn_conf_line(node), col, what, msg);
    }
    return rn__conf_err(err, RN_EINVAL, node, "%s: %s (at offset %zu)", what, msg, off);
}

static rn_code_t
plan_aggs(rn_plan_ctx_t *pc, rn_win_plan_t *plan, rn_schema_t *out, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    char what[300];

    snprintf(what, sizeof(what), "operator '%s'", rn__pc_name(pc));
    const rn_conf_t *aggs = rn__conf_require(conf, "aggregates", what, err);
    if (aggs == NULL)
        return RN_EINVAL;
    if (rn_conf_kind(aggs) != RN_CONF_MAP || rn_conf_len(aggs) == 0)
        return rn__conf_err(err, RN_EINVAL, aggs,
                            "%s: aggregates must be a map of output field: function, such as "
                            "{clicks: count(), total: sum(amount)}",
                            what);
    /* A string or distinct aggregate's index is one byte of a namespace. */
    if (rn_conf_len(aggs) > 255)
        return rn__conf_err(err, RN_EINVAL, aggs, "%s: at most 255 aggregates", what);
    plan->naggs = (uint32_t)rn_conf_len(aggs);
    plan->aggs = rn_xcalloc(plan->naggs, sizeof(rn_agg_t));
    for (uint32_t i = 0; i < plan->naggs; i++) {
        const rn_conf_t *node = rn_conf_at(aggs, i);
        const char *field = rn_conf_key_at(aggs, i);
        rn_agg_t *agg = &plan->aggs[i];
        char msg[300];
        size_t off = 0;

        snprintf(what, sizeof(what), "operator '%s' aggregate '%s'", rn__pc_name(pc), field);
        if (rn_conf_kind(node) != RN_CONF_SCALAR)
            return rn__conf_err(err, RN_EINVAL, node,
                                "%s: expected a function call such as count() or sum(field)",
                                what);
        if (rn__agg_parse(rn_conf_scalar(node), rn__pc_input_schema(pc, 0), agg, &off, msg,
                          sizeof(msg)) != RN_OK)
            return agg_err(node, what, msg, off, err);
        if (agg->fn == RN_AGG_PLUGIN && agg->ext->merge == NULL &&
            plan->spec.kind == RN_WIN_SESSION)
            return rn__conf_err(err, RN_EINVAL, node,
                                "%s: %s() has no merge function, which session windows need "
                                "(sessions that come together merge their accumulators)",
                                what, agg->ext->name);
        plan->has_strings |= agg->is_string;
        plan->has_distinct |= agg->fn == RN_AGG_COUNT_DISTINCT;
        rn_error_t e = RN_ERROR_INIT;
        if (rn__schema_add(out, field, agg->out, &e) != RN_OK)
            return rn__conf_err(err, RN_EINVAL, rn_conf_key_node_at(aggs, i),
                                "%s: the output already has a field '%s' (key fields, "
                                "window_start and window_end come first)",
                                what, field);
    }
    return RN_OK;
}

static rn_code_t
plan_key(rn_plan_ctx_t *pc, rn_win_plan_t *plan, rn_schema_t *out, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char **fields = NULL;
    size_t n = 0;
    char what[200];
    rn_code_t rc;

    snprintf(what, sizeof(what), "operator '%s'", rn__pc_name(pc));
    const rn_conf_t *node = rn__conf_require(conf, "key", what, err);
    if (node == NULL)
        return RN_EINVAL;
    if ((rc = rn__conf_strlist(conf, "key", &fields, &n, err)) != RN_OK)
        return rc;
    rc = rn__pc_set_key(pc, fields, n, node, err);
    rn_free(fields);
    if (rc != RN_OK)
        return rc;
    const rn_keyspec_t *ks = rn__pc_keyspec(pc, 0);
    const rn_schema_t *in = rn__pc_input_schema(pc, 0);
    plan->nkeys = ks->n;
    for (uint32_t i = 0; i < ks->n; i++) {
        plan->ktypes[i] = ks->types[i];
        rn_error_t e = RN_ERROR_INIT;
        if (rn__schema_add(out, in->fields[ks->fields[i]].name, ks->types[i], &e) != RN_OK)
            return rn__conf_err(err, RN_EINVAL, node, "%s: key field '%s' appears twice", what,
                                in->fields[ks->fields[i]].name);
    }
    rn_error_t e = RN_ERROR_INIT;
    if (rn__schema_add(out, "window_start", RN_TYPE_TIMESTAMP, &e) != RN_OK ||
        rn__schema_add(out, "window_end", RN_TYPE_TIMESTAMP, &e) != RN_OK)
        return rn__conf_err(err, RN_EINVAL, node,
                            "%s: a key field may not be named window_start or window_end "
                            "(rename it with a map first)",
                            what);
    return RN_OK;
}

static bool
same_schema(const rn_schema_t *a, const rn_schema_t *b)
{
    if (a->nfields != b->nfields)
        return false;
    for (uint32_t i = 0; i < a->nfields; i++)
        if (a->fields[i].type != b->fields[i].type ||
            strcmp(a->fields[i].name, b->fields[i].name) != 0)
            return false;
    return true;
}

/* Several inputs are one stream (a union), so they must have one schema:
 * aggregates and late_output address fields by position. */
static rn_code_t
check_inputs(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_schema_t *first = rn__pc_input_schema(pc, 0);
    for (int i = 1; i < rn__pc_ninputs(pc); i++) {
        const rn_schema_t *s = rn__pc_input_schema(pc, i);
        char a[200], b[200];
        if (same_schema(first, s))
            continue;
        rn__schema_format(first, a, sizeof(a));
        rn__schema_format(s, b, sizeof(b));
        return rn__conf_err(err, RN_EINVAL, rn__pc_input_node(pc, i),
                            "operator '%s': its inputs must have the same fields in the same "
                            "order; input 1 has {%s}, input %d has {%s} (align them with a map)",
                            rn__pc_name(pc), a, i + 1, b);
    }
    return RN_OK;
}

static rn_code_t
win_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char *late = NULL;
    rn_code_t rc;

    if ((rc = check_inputs(pc, err)) != RN_OK)
        return rc;
    rn_win_plan_t *plan = rn_xcalloc(1, sizeof(*plan));
    rn_schema_t *out = rn__schema_new();
    plan->late_port = -1;
    if ((rc = plan_key(pc, plan, out, err)) != RN_OK ||
        (rc = plan_window(conf, rn__pc_name(pc), &plan->spec, err)) != RN_OK ||
        (rc = plan_aggs(pc, plan, out, err)) != RN_OK ||
        (rc = rn__conf_duration_ms(conf, "allowed_lateness", 0, &plan->lateness, err)) != RN_OK ||
        (rc = rn__conf_str(conf, "late_output", NULL, &late, err)) != RN_OK)
        goto fail;
    if (late != NULL && late[0] == '\0') {
        rc = rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "late_output"),
                          "operator '%s': late_output must name a side output, such as 'late'",
                          rn__pc_name(pc));
        goto fail;
    }
    rc = rn__pc_add_output(pc, NULL, out, err);
    out = NULL;
    if (rc != RN_OK)
        goto fail;
    if (late != NULL) {
        rc = rn__pc_add_output(pc, late, rn__schema_copy(rn__pc_input_schema(pc, 0)), err);
        if (rc != RN_OK)
            goto fail;
        plan->late_port = rn__pc_port(pc, late);
    }
    rn__pc_set_plan(pc, plan, rn__win_plan_free);
    return RN_OK;
fail:
    rn__schema_destroy(out);
    rn__win_plan_free(plan);
    return rc;
}

static const char *const win_keys[] = {"key",        "window",           "aggregates",
                                       "allowed_lateness", "late_output", NULL};

const rn_opclass_t rn__op_window_aggregate = {
    .type = "window_aggregate",
    .section = RN_OPERATOR,
    .keys = win_keys,
    .plan = win_plan,
    .open = rn__win_open,
    .process = rn__win_process,
    .on_timer = rn__win_on_timer,
    .on_watermark = rn__win_on_watermark,
    .close = rn__win_close,
};
