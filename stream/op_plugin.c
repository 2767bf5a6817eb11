/*
 * stream/op_plugin.c: the `plugin` operator, a process function written in
 * C and loaded from a shared library (include/runnel/plugin.h,
 * docs/plugins.md), and the rn_pf_t machinery it shares with the plugin
 * sources and sinks (op_plugin_io.c): plans, instances, the rn_pf_*
 * accessors and emitting.
 *
 * Plan time loads the library (stream/plugin_load.c), lets the function
 * declare its outputs and keeps both in the plan, shared by the
 * instances; the library is unloaded with the plan, after every instance
 * closed. Run time hands the function one record at a time out of the
 * input batch (no copy: rn_pf_get_* read the batch's cells) and gathers
 * what it emits in one batch per port, emitted when full and after each
 * input batch, so that a chain stays batch-at-a-time around the plugin.
 *
 * @thread plan: control; the rest: task.
 */
#include "stream/component.h"
#include "stream/plugin_int.h"

#include <stdarg.h>

static const char *const plugin_keys[] = {"library", "operator", "key", "config", NULL};

void
rn__pplan_free(void *p)
{
    pplan_t *pl = p;
    if (pl == NULL)
        return;
    for (int i = 0; i < pl->nports; i++) {
        rn_free(pl->ports[i].name);
        rn__schema_destroy(pl->ports[i].schema);
    }
    rn_free(pl->ports);
    rn__plugin_unload(pl->lib);
    rn_free(pl);
}

/* ---- plan time ---- */

const rn_conf_t *
rn_pf_plan_config(const rn_pf_plan_t *p)
{
    return p->plan->config;
}

int
rn_pf_plan_input_field(const rn_pf_plan_t *p, const char *name, rn_type_t *type)
{
    if (rn__pc_ninputs(p->pc) < 1) /* a source */
        return -1;
    const rn_schema_t *s = rn__pc_input_schema(p->pc, 0);
    int i = name ? rn__schema_find(s, name) : -1;
    if (i >= 0 && type != NULL)
        *type = s->fields[i].type;
    return i;
}

int
rn_pf_plan_output(rn_pf_plan_t *p, const char *port, const char *field, rn_type_t type,
                  rn_error_t *err)
{
    pplan_t *pl = p->plan;
    if (pl->sink != NULL)
        return rn__errf(err, RN_EINVAL, "a sink has no output (field '%s')", field ? field : "");
    if (pl->src != NULL && port != NULL)
        return rn__errf(err, RN_EINVAL,
                        "a source has only its main output (port NULL), not '%s'", port);
    if (field == NULL || field[0] == '\0')
        return rn__errf(err, RN_EINVAL, "an output field without a name");
    if (type < RN_TYPE_STRING || type > RN_TYPE_TIMESTAMP)
        return rn__errf(err, RN_EINVAL, "output field '%s': no such type (%d)", field, (int)type);
    if (port != NULL && (port[0] == '\0' || strcmp(port, "errors") == 0))
        return rn__errf(err, RN_EINVAL, "'%s' cannot name a side output", port);
    int i = 0;
    while (i < pl->nports && !((port == NULL && pl->ports[i].name == NULL) ||
                               (port && pl->ports[i].name && strcmp(port, pl->ports[i].name) == 0)))
        i++;
    if (i == pl->nports) {
        pl->ports = rn_xrealloc(pl->ports, (size_t)(pl->nports + 1) * sizeof(pport_t));
        pl->ports[i] = (pport_t){.name = port ? rn_xstrdup(port) : NULL, .schema = rn__schema_new()};
        pl->nports++;
    }
    return rn__schema_add(pl->ports[i].schema, field, type, err);
}

static rn_code_t
plugin_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    char what[200];
    snprintf(what, sizeof(what), "operator '%s'", rn__pc_name(pc));
    if (rn__pc_ninputs(pc) != 1)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "inputs"),
                            "%s: a plugin operator has exactly one input", what);
    /* Without a library: a function the program registered itself. */
    const rn_conf_t *libnode = rn_conf_get(conf, "library");
    const rn_conf_t *opnode = rn__conf_require(conf, "operator", what, err);
    if (opnode == NULL)
        return err ? err->code : RN_EINVAL;
    const char *path = libnode ? rn_conf_scalar(libnode) : NULL, *name = rn_conf_scalar(opnode);
    if (libnode != NULL && path == NULL)
        return rn__conf_err(err, RN_EINVAL, libnode, "%s: library must be a path", what);
    if (name == NULL)
        return rn__conf_err(err, RN_EINVAL, opnode, "%s: operator must be a name", what);
    rn_code_t rc;
    if (rn_conf_get(conf, "key") != NULL) {
        const char **fields = NULL;
        size_t n = 0;
        if ((rc = rn__conf_strlist(conf, "key", &fields, &n, err)) != RN_OK)
            return rc;
        rc = rn__pc_set_key(pc, fields, n, rn_conf_get(conf, "key"), err);
        rn_free(fields);
        if (rc != RN_OK)
            return rc;
    }

    rn_error_t e = RN_ERROR_INIT;
    pplan_t *pl = rn_xcalloc(1, sizeof(*pl));
    pl->kind = "operator";
    pl->config = rn_conf_get(conf, "config");
    pl->in = rn__pc_input_schema(pc, 0);
    pl->lib = path ? rn__plugin_load(path, name, &e) : rn__plugin_builtin(name, &e);
    if (pl->lib == NULL) {
        rn__pplan_free(pl);
        return rn__conf_err(err, e.code, libnode ? libnode : opnode, "%s: %s", what, e.msg);
    }
    pl->fn = &pl->lib->fn;
    if (pl->fn->plan != NULL) {
        rn_pf_plan_t p = {.pc = pc, .plan = pl};
        int prc = pl->fn->plan(&p, &e);
        if (prc != RN_OK) {
            if (e.msg[0] == '\0')
                rn__errf(&e, RN_EINVAL, "its plan function failed (%d)", prc);
            rn__pplan_free(pl);
            const rn_conf_t *at = rn_conf_get(conf, "config") ? rn_conf_get(conf, "config") : opnode;
            return rn__conf_err(err, prc < 0 ? (rn_code_t)prc : RN_EINVAL, at, "%s: %s", what,
                                e.msg);
        }
    }
    return rn__pplan_commit(pc, pl, err);
}

rn_code_t
rn__pplan_commit(rn_plan_ctx_t *pc, pplan_t *pl, rn_error_t *err)
{
    rn_code_t rc;
    /* The main output first (port 0), then the side outputs in the order
     * declared; the main one is the input's when nothing was declared. */
    int main = -1;
    for (int i = 0; i < pl->nports; i++)
        if (pl->ports[i].name == NULL)
            main = i;
    if (pl->sink != NULL) {
        rn__pc_set_plan(pc, pl, rn__pplan_free);
        return RN_OK; /* a sink has no output */
    }
    if (main < 0) {
        pl->ports = rn_xrealloc(pl->ports, (size_t)(pl->nports + 1) * sizeof(pport_t));
        main = pl->nports++;
        pl->ports[main] = (pport_t){.schema = rn__schema_copy(rn__pc_input_schema(pc, 0)),
                                    .as_input = true};
    }
    pport_t m = pl->ports[main];
    memmove(&pl->ports[1], &pl->ports[0], (size_t)main * sizeof(pport_t));
    pl->ports[0] = m;
    rn__pc_set_plan(pc, pl, rn__pplan_free);
    for (int i = 0; i < pl->nports; i++) {
        rn_schema_t *s = pl->ports[i].schema;
        pl->ports[i].schema = NULL; /* the graph's now */
        if ((rc = rn__pc_add_output(pc, pl->ports[i].name, s, err)) != RN_OK)
            return rc;
    }
    return RN_OK;
}

/* ---- run time ---- */

rn_pf_t *
rn__pf_new(rn_op_t *op, const pplan_t *pl)
{
    rn_pf_t *f = rn_xcalloc(1, sizeof(*f));
    f->op = op;
    f->plan = pl;
    f->out = rn_xcalloc(pl->nports > 0 ? (size_t)pl->nports : 1, sizeof(*f->out));
    rn__arena_init(&f->key_arena);
    f->max_ts = INT64_MIN;
    return f;
}

void
rn__pf_free(rn_pf_t *f)
{
    if (f == NULL)
        return;
    for (int p = 0; p < f->plan->nports; p++)
        if (f->out[p] != NULL)
            rn__op_free_batch(f->op, f->out[p]);
    rn_free(f->out);
    rn__arena_fini(&f->key_arena);
    rn_free(f);
}

static rn_code_t
plugin_open(rn_op_t *op, rn_error_t *err)
{
    const pplan_t *pl = rn__op_plan(op);
    rn_pf_t *f = rn__pf_new(op, pl);
    if (pl->fn->open != NULL) {
        rn_error_t e = RN_ERROR_INIT;
        f->opening = true;
        int rc = pl->fn->open(f, &e);
        f->opening = false;
        if (rc != RN_OK) {
            /* Neither close() is called: the function's open cleans up
             * after itself. */
            rn__pf_free(f);
            /* The runtime adds which operator and instance. */
            return rn__errf(err, rc < 0 ? (rn_code_t)rc : RN_EINVAL, "%s",
                            e.msg[0] ? e.msg : "its open function failed");
        }
    }
    rn__op_set_data(op, f);
    return RN_OK;
}

rn_code_t
rn__pf_flush(rn_pf_t *f, rn_error_t *err)
{
    f->orow = NULL; /* whatever happens, the rows are not the function's now */
    f->obatch = NULL;
    for (int p = 0; p < f->plan->nports; p++) {
        if (f->out[p] == NULL)
            continue;
        rn_batch_t *b = f->out[p];
        f->out[p] = NULL;
        rn_code_t rc = rn__op_emit(f->op, p, b, err);
        if (rc != RN_OK)
            return rc;
    }
    f->orow = NULL;
    f->obatch = NULL;
    return RN_OK;
}

rn_code_t
rn__pf_outcome(rn_pf_t *f, int rc, const rn_error_t *e, const char *which, bool prefix,
               rn_error_t *err)
{
    f->orow = NULL;
    f->obatch = NULL;
    if (f->emit_rc != RN_OK) {
        if (err != NULL)
            *err = f->emit_err;
        return f->emit_rc;
    }
    if (rc == RN_OK)
        return RN_OK;
    rn_code_t code = rc < 0 ? (rn_code_t)rc : RN_EINVAL;
    const char *msg = e->msg[0] ? e->msg : which;
    if (!prefix)
        return rn__errf(err, code, "%s", msg);
    return rn__errf(err, code, "%s '%s' (instance %d): %s", f->plan->kind, rn__op_name(f->op),
                    rn__op_instance(f->op), msg);
}

/* Runs a callback of the function and turns its failure into err. */
static rn_code_t
call(rn_pf_t *f, int (*cb)(rn_pf_t *, rn_error_t *), const char *which, rn_error_t *err)
{
    rn_error_t e = RN_ERROR_INIT;
    f->orow = NULL;
    f->obatch = NULL;
    int rc = cb(f, &e);
    return rn__pf_outcome(f, rc, &e, which, true, err);
}

static rn_code_t
plugin_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    rn_pf_t *f = rn__op_data(op);
    rn_code_t rc = RN_OK;
    bool keyed = rn__op_state(op) != NULL;
    f->in = b;
    for (uint32_t r = 0; r < b->n && rc == RN_OK; r++) {
        f->row = r;
        f->key_ok = false;
        if (b->ts[r] > f->max_ts)
            f->max_ts = b->ts[r];
        if (keyed) {
            const uint8_t *k;
            size_t klen;
            if ((rc = rn__op_set_key_from_row(op, input, RN_ROW(b, r), &k, &klen, err)) != RN_OK)
                break;
        }
        rc = call(f, f->plan->fn->process, "its process function failed", err);
    }
    /* Output rows own their strings (copied into their batch's arena), so
     * they could wait for more input; they go now to keep latency low. */
    if (rc == RN_OK)
        rc = rn__pf_flush(f, err);
    f->in = NULL;
    rn__op_free_batch(op, b);
    return rc;
}

static rn_code_t
plugin_on_timer(rn_op_t *op, const rn_timer_t *t, rn_error_t *err)
{
    rn_pf_t *f = rn__op_data(op);
    if (f->plan->fn->on_timer == NULL)
        return RN_OK;
    f->in = NULL;
    f->ts = t->time;
    f->key_ok = false;
    rn_error_t e = RN_ERROR_INIT;
    f->orow = NULL;
    f->obatch = NULL;
    int rc = f->plan->fn->on_timer(f, t->time, (int)t->domain, &e);
    rn_code_t orc = rn__pf_outcome(f, rc, &e, "its on_timer function failed", true, err);
    if (orc != RN_OK)
        return orc;
    /* Event-time timers fire in a row before the watermark moves on
     * (on_watermark emits what they produced, batched); processing-time
     * ones have no such end. */
    return t->domain == RN_TIME_PROCESSING ? rn__pf_flush(f, err) : RN_OK;
}

static rn_code_t
plugin_on_watermark(rn_op_t *op, int64_t wm, rn_error_t *err)
{
    (void)wm;
    return rn__pf_flush(rn__op_data(op), err);
}

static rn_code_t
plugin_finish(rn_op_t *op, rn_error_t *err)
{
    rn_pf_t *f = rn__op_data(op);
    rn_code_t rc = RN_OK;
    f->in = NULL;
    /* The final watermark (+infinity) has gone by already: rows made here
     * carry the latest record time the instance saw instead. */
    f->ts = f->max_ts != INT64_MIN ? f->max_ts : 0;
    f->key_ok = false;
    if (f->plan->fn->finish != NULL)
        rc = call(f, f->plan->fn->finish, "its finish function failed", err);
    if (rc == RN_OK)
        rc = rn__pf_flush(f, err);
    return rc;
}

static void
plugin_close(rn_op_t *op)
{
    rn_pf_t *f = rn__op_data(op);
    if (f == NULL)
        return;
    if (f->plan != NULL && f->plan->fn->close != NULL)
        f->plan->fn->close(f);
    rn__pf_free(f);
    rn__op_set_data(op, NULL);
}

const rn_opclass_t rn__op_plugin = {
    .type = "plugin",
    .section = RN_OPERATOR,
    .keys = plugin_keys,
    .plan = plugin_plan,
    .open = plugin_open,
    .process = plugin_process,
    .on_timer = plugin_on_timer,
    .on_watermark = plugin_on_watermark,
    .finish = plugin_finish,
    .close = plugin_close,
};

/* ---- the run-time API ---- */

const rn_conf_t *rn_pf_config(const rn_pf_t *f) { return f->plan->config; }
void *rn_pf_data(const rn_pf_t *f) { return f->data; }
void rn_pf_set_data(rn_pf_t *f, void *data) { f->data = data; }
int rn_pf_instance(const rn_pf_t *f) { return rn__op_instance(f->op); }
int rn_pf_parallelism(const rn_pf_t *f) { return rn__op_parallelism(f->op); }
const char *rn_pf_name(const rn_pf_t *f) { return rn__op_name(f->op); }
int64_t rn_pf_watermark(const rn_pf_t *f) { return rn__op_watermark(f->op); }
int64_t rn_pf_now(const rn_pf_t *f) { return rn__op_now(f->op); }

int
rn_pf_field(const rn_pf_t *f, const char *name)
{
    return name && f->plan->in ? rn__schema_find(f->plan->in, name) : -1;
}

/* The current record's cell of field, or NULL (no record, no such field,
 * not of type t, or null). */
static const rn_value_t *
cell(const rn_pf_t *f, int field, rn_type_t t1, rn_type_t t2)
{
    if (f->in == NULL || field < 0 || (uint32_t)field >= f->in->width ||
        (uint32_t)field >= f->in->schema->nfields)
        return NULL;
    rn_type_t t = f->in->schema->fields[field].type;
    if (t != t1 && t != t2)
        return NULL;
    const rn_value_t *v = &RN_ROW(f->in, f->row)[field];
    return v->null ? NULL : v;
}

int64_t
rn_pf_timestamp(const rn_pf_t *f)
{
    return f->in != NULL ? f->in->ts[f->row] : f->ts;
}

bool
rn_pf_is_null(const rn_pf_t *f, int field)
{
    if (f->in == NULL || field < 0 || (uint32_t)field >= f->in->schema->nfields)
        return true;
    return RN_ROW(f->in, f->row)[field].null != 0;
}

int64_t
rn_pf_get_int(const rn_pf_t *f, int field)
{
    const rn_value_t *v = cell(f, field, RN_TYPE_INT, RN_TYPE_TIMESTAMP);
    return v ? v->u.i : 0;
}

double
rn_pf_get_float(const rn_pf_t *f, int field)
{
    const rn_value_t *v = cell(f, field, RN_TYPE_FLOAT, RN_TYPE_INT);
    if (v == NULL)
        return 0.0;
    return f->in->schema->fields[field].type == RN_TYPE_INT ? (double)v->u.i : v->u.f;
}

bool
rn_pf_get_bool(const rn_pf_t *f, int field)
{
    const rn_value_t *v = cell(f, field, RN_TYPE_BOOL, RN_TYPE_BOOL);
    return v ? v->u.b : false;
}

const char *
rn_pf_get_string(const rn_pf_t *f, int field, size_t *len)
{
    const rn_value_t *v = cell(f, field, RN_TYPE_STRING, RN_TYPE_STRING);
    if (len != NULL)
        *len = v ? v->len : 0;
    return v ? v->u.s : NULL;
}

int
rn_pf_port(const rn_pf_t *f, const char *name)
{
    if (name == NULL)
        return 0;
    for (int p = 1; p < f->plan->nports; p++)
        if (strcmp(f->plan->ports[p].name, name) == 0)
            return p;
    return -1;
}

int
rn_pf_out_field(const rn_pf_t *f, int port, const char *name)
{
    if (port < 0 || port >= f->plan->nports || name == NULL)
        return -1;
    return rn__schema_find(rn__op_schema(f->op, port), name);
}

int
rn_pf_out_begin(rn_pf_t *f, int port, rn_error_t *err)
{
    if (port < 0 || port >= f->plan->nports)
        return rn__errf(err, RN_EINVAL, "%s '%s': no output port %d", f->plan->kind,
                        rn__op_name(f->op), port);
    if (f->opening)
        return rn__errf(err, RN_EINVAL, "%s '%s': nothing can be emitted in open()",
                        f->plan->kind, rn__op_name(f->op));
    if (f->emit_rc != RN_OK) {
        if (err != NULL)
            *err = f->emit_err;
        return f->emit_rc;
    }
    rn_batch_t *b = f->out[port];
    if (b != NULL && rn__batch_full(b)) {
        f->out[port] = NULL;
        f->orow = NULL;
        f->obatch = NULL;
        rn_code_t rc = rn__op_emit(f->op, port, b, &f->emit_err);
        if (rc != RN_OK) {
            f->emit_rc = rc;
            if (err != NULL)
                *err = f->emit_err;
            return rc;
        }
        b = NULL;
    }
    if (b == NULL)
        b = f->out[port] = rn__op_batch(f->op, port);
    int64_t ts = rn_pf_timestamp(f);
    if (f->plan->ports[port].as_input && f->in != NULL) {
        rn__batch_copy_row(b, RN_ROW(f->in, f->row), ts);
        f->orow = RN_ROW(b, b->n - 1);
    } else {
        f->orow = rn__batch_append(b, ts);
    }
    f->obatch = b;
    return RN_OK;
}

/* The begun row's cell of field if it is of type t1 or t2, else NULL. */
static rn_value_t *
ocell(rn_pf_t *f, int field, rn_type_t t1, rn_type_t t2)
{
    if (f->orow == NULL || field < 0 || (uint32_t)field >= f->obatch->schema->nfields)
        return NULL;
    rn_type_t t = f->obatch->schema->fields[field].type;
    return t == t1 || t == t2 ? &f->orow[field] : NULL;
}

void
rn_pf_out_set_null(rn_pf_t *f, int field)
{
    if (f->orow != NULL && field >= 0 && (uint32_t)field < f->obatch->schema->nfields)
        f->orow[field] = rn__val_null();
}

void
rn_pf_out_set_int(rn_pf_t *f, int field, int64_t v)
{
    rn_value_t *c = ocell(f, field, RN_TYPE_INT, RN_TYPE_TIMESTAMP);
    if (c != NULL)
        *c = rn__val_int(v);
}

void
rn_pf_out_set_float(rn_pf_t *f, int field, double v)
{
    rn_value_t *c = ocell(f, field, RN_TYPE_FLOAT, RN_TYPE_FLOAT);
    if (c != NULL)
        *c = rn__val_float(v);
}

void
rn_pf_out_set_bool(rn_pf_t *f, int field, bool v)
{
    rn_value_t *c = ocell(f, field, RN_TYPE_BOOL, RN_TYPE_BOOL);
    if (c != NULL)
        *c = rn__val_bool(v);
}

void
rn_pf_out_set_string(rn_pf_t *f, int field, const char *s, size_t len)
{
    rn_value_t *c = ocell(f, field, RN_TYPE_STRING, RN_TYPE_STRING);
    if (c == NULL || (s == NULL && len > 0) || len > UINT32_MAX)
        return;
    *c = rn__val_str(rn__arena_strdup(&f->obatch->arena, s ? s : "", len), (uint32_t)len);
}

int
rn_pf_fail(const rn_pf_t *f, rn_error_t *err, int code, const char *fmt, ...)
{
    (void)f;
    va_list ap;
    va_start(ap, fmt);
    rn_code_t rc = rn__verrf(err, code < 0 ? (rn_code_t)code : RN_EINVAL, fmt, ap);
    va_end(ap);
    return rc;
}
