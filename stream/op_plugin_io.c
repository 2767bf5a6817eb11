/*
 * stream/op_plugin_io.c: sources and sinks from plugins (runnel/connector.h,
 * docs/plugins.md "Sources and sinks").
 *
 * A component whose `type:` is not built in but was registered by a
 * library of the job's `plugins:` list is an instance of one of the two
 * generic classes here, rn__src_plugin and rn__sink_plugin; their plan
 * finds the plugin's table by the component's type name in the registry
 * (stream/plugin_ext.h), whose tables outlive every plan. Instances are
 * rn_pf_t, as a process function's are (op_plugin.c): a source emits with
 * rn_pf_out_begin onto port 0, gathered into one batch emitted when full
 * and at the end of each poll, so that a checkpoint's barrier (taken
 * between polls) follows every row the position covers; a sink reads the
 * record of the batch being written with rn_pf_get_*.
 *
 * Positions: a source's snapshot fills an rn_pf_pos_t; the bytes go into
 * the instance's part of the checkpoint as {"pos": HEX} (the checkpoint
 * format is JSON, and hex is as plain as the bytes can be) and come back
 * to open(). The bytes mean nothing to runnel, so they cannot be split
 * between other instances: restoring a savepoint with another parallelism
 * of the source is refused. Sinks flush in the snapshot hook: a barrier
 * reached the sink; a failed flush declines the checkpoint.
 *
 * @thread plan: control; an instance: its task.
 */
#include "stream/component.h"
#include "stream/plugin_ext.h"
#include "stream/plugin_int.h"

#define POS_MAX ((size_t)1 << 20)

static const char *const io_keys[] = {"config", NULL};

struct rn_pf_pos {
    uint8_t *bytes; /* rn_malloc'd; NULL until set */
    size_t len;
    bool set;
};

int
rn_pf_pos_set(rn_pf_pos_t *pos, const void *bytes, size_t len, rn_error_t *err)
{
    if (pos == NULL || (bytes == NULL && len > 0))
        return rn__errf(err, RN_EINVAL, "rn_pf_pos_set: no position or no bytes");
    if (len > POS_MAX)
        return rn__errf(err, RN_EINVAL, "a source position of %zu bytes (at most %zu)", len,
                        POS_MAX);
    uint8_t *copy = rn_malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for a source position of %zu bytes", len);
    if (len > 0)
        memcpy(copy, bytes, len);
    rn_free(pos->bytes);
    pos->bytes = copy;
    pos->len = len;
    pos->set = true;
    return RN_OK;
}

/* ---- plan ---- */

/* Runs the plugin's plan: a failure is reported at `config` (or `type`). */
static rn_code_t
run_plan(rn_plan_ctx_t *pc, pplan_t *pl, int (*plan)(rn_pf_plan_t *, rn_error_t *),
         const char *what, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const rn_conf_t *at = pl->config ? pl->config : rn_conf_get(conf, "type");
    rn_error_t e = RN_ERROR_INIT;
    rn_pf_plan_t p = {.pc = pc, .plan = pl};
    int prc = plan(&p, &e);
    if (prc == RN_OK)
        return RN_OK;
    if (e.msg[0] == '\0')
        rn__errf(&e, RN_EINVAL, "its plan function failed (%d)", prc);
    return rn__conf_err(err, prc < 0 ? (rn_code_t)prc : RN_EINVAL, at, "%s: %s", what, e.msg);
}

static rn_code_t
src_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char *type = rn_conf_scalar(rn_conf_get(conf, "type"));
    const rn_source_fn_t *fn = type ? rn__ext_source(type) : NULL;
    char what[200];
    snprintf(what, sizeof(what), "source '%s' (type %s)", rn__pc_name(pc), type ? type : "?");
    if (fn == NULL) /* graph.c resolved the type to this class */
        return rn__conf_err(err, RN_EINVAL, conf, "%s: no plugin registered it", what);
    pplan_t *pl = rn_xcalloc(1, sizeof(*pl));
    pl->kind = "source";
    pl->src = fn;
    pl->config = rn_conf_get(conf, "config");
    rn_code_t rc = run_plan(pc, pl, fn->plan, what, err);
    if (rc == RN_OK && pl->nports == 0)
        rc = rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "type"),
                          "%s: its plan declared no field (a source declares its fields with "
                          "rn_pf_plan_output(p, NULL, name, type, err))",
                          what);
    if (rc != RN_OK) {
        rn__pplan_free(pl);
        return rc;
    }
    rn__pc_set_bounded(pc, fn->bounded);
    return rn__pplan_commit(pc, pl, err);
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

static rn_code_t
sink_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    const char *type = rn_conf_scalar(rn_conf_get(conf, "type"));
    const rn_sink_fn_t *fn = type ? rn__ext_sink(type) : NULL;
    char what[200];
    snprintf(what, sizeof(what), "sink '%s' (type %s)", rn__pc_name(pc), type ? type : "?");
    if (fn == NULL)
        return rn__conf_err(err, RN_EINVAL, conf, "%s: no plugin registered it", what);
    /* rn_pf_field and rn_pf_get_* know one schema: every input has it. */
    const rn_schema_t *first = rn__pc_input_schema(pc, 0);
    for (int i = 1; i < rn__pc_ninputs(pc); i++) {
        const rn_schema_t *s = rn__pc_input_schema(pc, i);
        if (!same_schema(first, s)) {
            char a[200], b[200];
            rn__schema_format(first, a, sizeof(a));
            rn__schema_format(s, b, sizeof(b));
            return rn__conf_err(err, RN_EINVAL, rn__pc_input_node(pc, i),
                                "%s: every input needs the schema of the first ({%s}), but this "
                                "one is {%s}; use a map to align them",
                                what, a, b);
        }
    }
    pplan_t *pl = rn_xcalloc(1, sizeof(*pl));
    pl->kind = "sink";
    pl->sink = fn;
    pl->config = rn_conf_get(conf, "config");
    pl->in = first;
    rn_code_t rc = fn->plan != NULL ? run_plan(pc, pl, fn->plan, what, err) : RN_OK;
    if (rc != RN_OK) {
        rn__pplan_free(pl);
        return rc;
    }
    return rn__pplan_commit(pc, pl, err);
}

extern const rn_opclass_t rn__src_plugin;
extern const rn_opclass_t rn__sink_plugin;

const rn_opclass_t *
rn__opclass_ext(rn_section_t section, const char *type)
{
    if (section == RN_SOURCE && rn__ext_source(type) != NULL)
        return &rn__src_plugin;
    if (section == RN_SINK && rn__ext_sink(type) != NULL)
        return &rn__sink_plugin;
    return NULL;
}

/* ---- the source at run time ---- */

static int
unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The position this instance's part holds, decoded into *buf (rn_malloc'd,
 * NULL when there is none). */
static rn_code_t
restored_pos(rn_op_t *op, uint8_t **buf, size_t *len, rn_error_t *err)
{
    *buf = NULL;
    *len = 0;
    const json_t *all = rn__op_restored_all(op);
    size_t i;
    const json_t *e;
    json_array_foreach(all, i, e)
    {
        if (json_object_get(json_object_get(e, "data"), "pos") != NULL)
            return rn__errf(err, RN_EINVAL,
                            "the savepoint has the positions of %zu instances of source '%s', "
                            "which cannot be split between %d: resume it with its old "
                            "parallelism (parallelism: %zu under it)",
                            json_array_size(all), rn__op_name(op), rn__op_parallelism(op),
                            json_array_size(all));
    }
    const json_t *pos = json_object_get(rn__op_restored(op), "pos");
    if (pos == NULL)
        return RN_OK;
    const char *hex = json_string_value(pos);
    size_t n = hex ? strlen(hex) : 1;
    if (n % 2 != 0 || n / 2 > POS_MAX)
        return rn__errf(err, RN_ECORRUPT, "the checkpoint's position of this source is not "
                                          "hexadecimal bytes");
    *buf = rn_malloc(n / 2 + 1);
    if (*buf == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory for a position of %zu bytes", n / 2);
    for (size_t k = 0; k < n / 2; k++) {
        int hi = unhex(hex[2 * k]), lo = unhex(hex[2 * k + 1]);
        if (hi < 0 || lo < 0) {
            rn_free(*buf);
            *buf = NULL;
            return rn__errf(err, RN_ECORRUPT, "the checkpoint's position of this source is not "
                                              "hexadecimal bytes");
        }
        (*buf)[k] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return RN_OK;
}

static rn_code_t
src_open(rn_op_t *op, rn_error_t *err)
{
    const pplan_t *pl = rn__op_plan(op);
    uint8_t *pos;
    size_t len;
    rn_code_t rc = restored_pos(op, &pos, &len, err);
    if (rc != RN_OK)
        return rc;
    rn_pf_t *f = rn__pf_new(op, pl);
    if (pl->src->open != NULL) {
        rn_error_t e = RN_ERROR_INIT;
        f->opening = true;
        int orc = pl->src->open(f, pos ? (const void *)pos : NULL, len, &e);
        f->opening = false;
        if (orc != RN_OK) {
            rn_free(pos);
            rn__pf_free(f);
            /* The runtime adds which source and instance. */
            return rn__errf(err, orc < 0 ? (rn_code_t)orc : RN_EINVAL, "%s",
                            e.msg[0] ? e.msg : "its open function failed");
        }
    }
    rn_free(pos);
    f->opened = true;
    rn__op_set_data(op, f);
    return RN_OK;
}

static rn_code_t
src_poll(rn_op_t *op, bool *done, rn_error_t *err)
{
    rn_pf_t *f = rn__op_data(op);
    rn_error_t e = RN_ERROR_INIT;
    f->in = NULL;
    f->ts = rn__op_now(op); /* the runtime stamps each row from event_time */
    f->orow = NULL;
    f->obatch = NULL;
    bool fdone = false;
    int rc = f->plan->src->poll(f, &fdone, &e);
    bool pending = f->out[0] != NULL && f->out[0]->n > 0;
    /* The source's own message: the runtime adds which source and instance. */
    rn_code_t orc =
        rn__pf_outcome(f, rc == RN_EAGAIN ? RN_OK : rc, &e, "its poll function failed", false, err);
    if (orc == RN_OK)
        orc = rn__pf_flush(f, err);
    if (orc != RN_OK)
        return orc;
    *done = fdone;
    return rc == RN_EAGAIN && !pending && !fdone ? RN_EAGAIN : RN_OK;
}

static void
hex_of(const uint8_t *b, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
}

static rn_code_t
src_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    (void)id;
    (void)file;
    rn_pf_t *f = rn__op_data(op);
    *data = NULL;
    if (f == NULL || f->plan->src->snapshot == NULL)
        return RN_OK;
    rn_pf_pos_t pos = {0};
    rn_error_t e = RN_ERROR_INIT;
    int rc = f->plan->src->snapshot(f, &pos, &e);
    if (rc != RN_OK) {
        rn_free(pos.bytes);
        return rn__errf(err, rc < 0 ? (rn_code_t)rc : RN_EINVAL, "%s",
                        e.msg[0] ? e.msg : "its snapshot function failed");
    }
    if (!pos.set)
        return RN_OK;
    char *hex = rn_malloc(2 * pos.len + 1);
    if (hex == NULL) {
        rn_free(pos.bytes);
        return rn__errf(err, RN_ENOMEM, "out of memory for a position of %zu bytes", pos.len);
    }
    hex_of(pos.bytes, pos.len, hex);
    rn_free(pos.bytes);
    *data = json_pack("{s:s}", "pos", hex);
    rn_free(hex);
    return *data != NULL ? RN_OK : rn__errf(err, RN_ENOMEM, "out of memory");
}

static void
pf_close(rn_op_t *op)
{
    rn_pf_t *f = rn__op_data(op);
    if (f == NULL)
        return;
    void (*close_fn)(rn_pf_t *) =
        f->plan->src != NULL ? f->plan->src->close : f->plan->sink->close;
    if (f->opened && close_fn != NULL)
        close_fn(f);
    rn__pf_free(f);
    rn__op_set_data(op, NULL);
}

const rn_opclass_t rn__src_plugin = {
    .type = "plugin source",
    .section = RN_SOURCE,
    .keys = io_keys,
    .plan = src_plan,
    .open = src_open,
    .poll = src_poll,
    .snapshot = src_snapshot,
    .close = pf_close,
};

/* ---- the sink at run time ---- */

static rn_code_t
sink_open(rn_op_t *op, rn_error_t *err)
{
    const pplan_t *pl = rn__op_plan(op);
    rn_pf_t *f = rn__pf_new(op, pl);
    if (pl->sink->open != NULL) {
        rn_error_t e = RN_ERROR_INIT;
        f->opening = true;
        int rc = pl->sink->open(f, &e);
        f->opening = false;
        if (rc != RN_OK) {
            rn__pf_free(f);
            return rn__errf(err, rc < 0 ? (rn_code_t)rc : RN_EINVAL, "%s",
                            e.msg[0] ? e.msg : "its open function failed");
        }
    }
    f->opened = true;
    rn__op_set_data(op, f);
    return RN_OK;
}

static rn_code_t
sink_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    (void)input;
    rn_pf_t *f = rn__op_data(op);
    rn_code_t rc = RN_OK;
    f->in = b;
    for (uint32_t r = 0; r < b->n && rc == RN_OK; r++) {
        rn_error_t e = RN_ERROR_INIT;
        f->row = r;
        if (b->ts[r] > f->max_ts)
            f->max_ts = b->ts[r];
        int wrc = f->plan->sink->write(f, &e);
        rc = rn__pf_outcome(f, wrc, &e, "its write function failed", true, err);
    }
    f->in = NULL;
    rn__op_free_batch(op, b);
    return rc;
}

/* A checkpoint's barrier reached the sink (id > 0): everything written
 * before it is made durable, or the checkpoint is declined. */
static rn_code_t
sink_snapshot(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err)
{
    (void)file;
    rn_pf_t *f = rn__op_data(op);
    *data = NULL;
    if (id == 0 || f == NULL || f->plan->sink->flush == NULL)
        return RN_OK;
    rn_error_t e = RN_ERROR_INIT;
    f->in = NULL;
    int rc = f->plan->sink->flush(f, &e);
    if (rc == RN_OK)
        return RN_OK;
    return rn__errf(err, rc < 0 ? (rn_code_t)rc : RN_EINVAL, "flush failed: %s",
                    e.msg[0] ? e.msg : "its flush function failed");
}

static rn_code_t
sink_finish(rn_op_t *op, rn_error_t *err)
{
    rn_pf_t *f = rn__op_data(op);
    if (f->plan->sink->finish == NULL)
        return RN_OK;
    rn_error_t e = RN_ERROR_INIT;
    f->in = NULL;
    f->ts = f->max_ts != INT64_MIN ? f->max_ts : 0;
    int rc = f->plan->sink->finish(f, &e);
    return rn__pf_outcome(f, rc, &e, "its finish function failed", true, err);
}

const rn_opclass_t rn__sink_plugin = {
    .type = "plugin sink",
    .section = RN_SINK,
    .keys = io_keys,
    .plan = sink_plan,
    .open = sink_open,
    .process = sink_process,
    .snapshot = sink_snapshot,
    .finish = sink_finish,
    .close = pf_close,
};
