/*
 * connectors/format_plugin.c: record formats from plugins (runnel/format.h,
 * format_plugin.h): the rn_fmt_* functions a plugin's decode and encode
 * call, and the three things the connectors need: `format:` at plan time,
 * one record to a row, one row to bytes.
 *
 * Design: an rn_fmt_t lives on the stack of rn__fmt_decode or
 * rn__fmt_encode for one call of the plugin, over the caller's row, arena
 * and buffer: no allocation per record beyond the strings copied into the
 * batch's arena and the bytes appended to the sink's buffer. The setters
 * cannot return an error (the public API has them void), so the first one
 * that is refused is kept in the rn_fmt_t and turned into the decode's
 * result when the plugin returns: RN_EDATA (a bad record, for on_error)
 * when the value does not fit its field, RN_EINVAL (stop the job: the
 * plugin is wrong) for a field position out of range.
 *
 * Conversions are the lossless ones: an int into a float field when the
 * double holds it exactly, an int into a timestamp field, a float without
 * fraction into an int or timestamp field (as the JSON decoder takes 3.0
 * for an int). Nothing else: a string is never parsed into a number.
 *
 * @thread plan: control; decode and encode: the calling instance's task.
 */
#include "connectors/format_plugin.h"
#include "connectors/decode.h"
#include "stream/plugin_ext.h"

#include <math.h>

_Static_assert(sizeof(rn_val_t) == sizeof(rn_value_t), "rn_val_t is rn_value_t");
_Static_assert(offsetof(rn_val_t, len) == offsetof(rn_value_t, len), "rn_val_t.len");
_Static_assert(offsetof(rn_val_t, null) == offsetof(rn_value_t, null), "rn_val_t.null");

struct rn_fmt {
    const rn_format_fn_t *fn;
    const rn_schema_t *schema;
    rn_value_t *row;        /* decode: the cells being set; else NULL */
    const rn_value_t *crow; /* encode: the row being written; else NULL */
    rn_arena_t *arena;      /* decode: receives the strings */
    rn_buf_t *out;          /* encode: receives the bytes */
    rn_code_t fault;        /* the first refused setter: RN_EDATA or RN_EINVAL */
    char msg[RN_ERROR_MSG_MAX];
};

/* ---- plan time ------------------------------------------------------------ */

/* The closest of builtins and the registered names (reg: ", "-separated;
 * cut into its words here). */
static const char *
did_you_mean(const char *name, const char *const *builtins, char *reg)
{
    const char *cand[48];
    size_t n = 0;
    char *save = NULL;
    for (int i = 0; builtins[i] != NULL && n < 16; i++)
        cand[n++] = builtins[i];
    for (char *w = strtok_r(reg, ", ", &save); w != NULL && n + 1 < sizeof(cand) / sizeof(*cand);
         w = strtok_r(NULL, ", ", &save))
        cand[n++] = w;
    cand[n] = NULL;
    return rn__did_you_mean(name, cand);
}

rn_code_t
rn__conn_format(const rn_conf_t *conf, const char *what, const char *const *builtins, int dflt,
                rn_fmt_use_t use, int *builtin, const rn_format_fn_t **ext, rn_error_t *err)
{
    const rn_conf_t *node = rn_conf_get(conf, "format");
    const char *name = node != NULL ? rn_conf_scalar(node) : NULL;
    char list[256] = "", reg[256];
    size_t o = 0;

    *builtin = dflt;
    *ext = NULL;
    if (node == NULL)
        return RN_OK;
    for (int i = 0; name != NULL && builtins[i] != NULL; i++) {
        if (strcmp(name, builtins[i]) == 0) {
            *builtin = i;
            return RN_OK;
        }
    }
    const rn_format_fn_t *fn = name != NULL ? rn__ext_format(name) : NULL;
    if (fn == NULL) {
        for (int i = 0; builtins[i] != NULL && o < sizeof(list); i++)
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", builtins[i]);
        rn__ext_names(RN_EXT_FORMAT, reg, sizeof(reg));
        char words[sizeof(reg)];
        memcpy(words, reg, sizeof(reg));
        const char *hint = name != NULL ? did_you_mean(name, builtins, words) : NULL;
        char dym[96] = "";
        if (hint != NULL)
            snprintf(dym, sizeof(dym), "; did you mean '%s'?", hint);
        return rn__conf_err(err, RN_EINVAL, node,
                            "%s: unknown format '%s': the built-in ones are %s; registered by "
                            "plugins: %s%s",
                            what, name != NULL ? name : "(not a scalar)", list,
                            reg[0] ? reg : "none (a library in the job's plugins: may add some)",
                            dym);
    }
    if (use == RN_FMT_DECODE && fn->decode == NULL)
        return rn__conf_err(err, RN_EINVAL, node,
                            "%s: format '%s' cannot decode (its plugin registered no decode), "
                            "so a source cannot read it",
                            what, name);
    if (use == RN_FMT_ENCODE && fn->encode == NULL)
        return rn__conf_err(err, RN_EINVAL, node,
                            "%s: format '%s' cannot encode (its plugin registered no encode), "
                            "so a sink cannot write it",
                            what, name);
    *ext = fn;
    return RN_OK;
}

/* ---- decode and encode ------------------------------------------------------ */

static void
fmt_init(rn_fmt_t *r, const rn_format_fn_t *fn, const rn_schema_t *schema)
{
    memset(r, 0, sizeof(*r));
    r->fn = fn;
    r->schema = schema;
}

rn_code_t
rn__fmt_decode(const rn_format_fn_t *fn, const rn_schema_t *schema, const char *data, size_t len,
               rn_value_t *row, rn_arena_t *arena, char *errbuf, size_t errlen, rn_error_t *err)
{
    rn_error_t perr = RN_ERROR_INIT;
    rn_fmt_t r;

    fmt_init(&r, fn, schema);
    r.row = row;
    r.arena = arena;
    for (uint32_t i = 0; i < schema->nfields; i++)
        row[i] = rn__val_null();
    int rc = fn->decode(&r, data != NULL ? data : "", len, &perr);
    if (rc == RN_EDATA) {
        snprintf(errbuf, errlen, "%s", perr.msg[0] ? perr.msg : "the format refused the record");
        return RN_EDATA;
    }
    if (rc != RN_OK) {
        rn_code_t code = rc < 0 ? (rn_code_t)rc : RN_EINVAL;
        return rn__errf(err, code, "format '%s': decode failed: %s", fn->name,
                        perr.msg[0] ? perr.msg : rn_strerror(code));
    }
    if (r.fault == RN_EDATA) {
        snprintf(errbuf, errlen, "%s", r.msg);
        return RN_EDATA;
    }
    if (r.fault != RN_OK)
        return rn__errf(err, r.fault, "format '%s': %s", fn->name, r.msg);
    return RN_OK;
}

rn_code_t
rn__fmt_encode(const rn_format_fn_t *fn, const rn_schema_t *schema, const rn_value_t *row,
               rn_buf_t *out, rn_error_t *err)
{
    rn_error_t perr = RN_ERROR_INIT;
    size_t start = out->len;
    rn_fmt_t r;

    fmt_init(&r, fn, schema);
    r.crow = row;
    r.out = out;
    int rc = fn->encode(&r, &perr);
    if (rc == RN_OK && r.fault != RN_OK) {
        rc = r.fault;
        snprintf(perr.msg, sizeof(perr.msg), "%s", r.msg);
    }
    if (rc == RN_OK)
        return RN_OK;
    out->len = start;
    rn_code_t code = rc < 0 ? (rn_code_t)rc : RN_EINVAL;
    return rn__errf(err, code, "format '%s': encode failed: %s", fn->name,
                    perr.msg[0] ? perr.msg : rn_strerror(code));
}

/* ---- the schema --------------------------------------------------------------- */

int
rn_fmt_nfields(const rn_fmt_t *r)
{
    return (int)r->schema->nfields;
}

static bool
in_range(const rn_fmt_t *r, int i)
{
    return i >= 0 && (uint32_t)i < r->schema->nfields;
}

const char *
rn_fmt_field_name(const rn_fmt_t *r, int i)
{
    return in_range(r, i) ? r->schema->fields[i].name : NULL;
}

rn_type_t
rn_fmt_field_type(const rn_fmt_t *r, int i)
{
    return in_range(r, i) ? r->schema->fields[i].type : RN_TYPE_NULL;
}

int
rn_fmt_field(const rn_fmt_t *r, const char *name)
{
    return name != NULL ? rn__schema_find(r->schema, name) : -1;
}

/* ---- setters ------------------------------------------------------------------ */

static void
fault(rn_fmt_t *r, rn_code_t code, const char *fmt, ...) RN_PRINTF(3, 4);

static void
fault(rn_fmt_t *r, rn_code_t code, const char *fmt, ...)
{
    va_list ap;
    if (r->fault != RN_OK)
        return; /* the first one is the one to report */
    r->fault = code;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

/* The cell of field i, or NULL (the call refused) when there is none or
 * the record is not being decoded. */
static rn_value_t *
cell(rn_fmt_t *r, int i, const char *fn)
{
    if (r->row == NULL) {
        fault(r, RN_EINVAL, "%s called while encoding: the setters are for decode", fn);
        return NULL;
    }
    if (!in_range(r, i)) {
        fault(r, RN_EINVAL, "%s: no field %d (the schema has %u)", fn, i, r->schema->nfields);
        return NULL;
    }
    return &r->row[i];
}

static void
mismatch(rn_fmt_t *r, int i, const char *got)
{
    fault(r, RN_EDATA, "field '%s': expected %s, got %s", r->schema->fields[i].name,
          rn_type_name(r->schema->fields[i].type), got);
}

void
rn_fmt_set_null(rn_fmt_t *r, int i)
{
    rn_value_t *c = cell(r, i, "rn_fmt_set_null");
    if (c != NULL)
        *c = rn__val_null();
}

void
rn_fmt_set_int(rn_fmt_t *r, int i, int64_t v)
{
    rn_value_t *c = cell(r, i, "rn_fmt_set_int");
    char got[96];
    if (c == NULL)
        return;
    switch (r->schema->fields[i].type) {
    case RN_TYPE_INT:
    case RN_TYPE_TIMESTAMP: *c = rn__val_int(v); return;
    case RN_TYPE_FLOAT: {
        double d = (double)v;
        /* Exact when converting back gives v: beyond 2^53 most ints are not. */
        if (d >= -0x1p63 && d < 0x1p63 && (int64_t)d == v) {
            *c = rn__val_float(d);
            return;
        }
        snprintf(got, sizeof(got), "int %lld, which a float cannot hold exactly", (long long)v);
        break;
    }
    default: snprintf(got, sizeof(got), "int %lld", (long long)v); break;
    }
    mismatch(r, i, got);
}

void
rn_fmt_set_float(rn_fmt_t *r, int i, double v)
{
    rn_value_t *c = cell(r, i, "rn_fmt_set_float");
    char got[64];
    if (c == NULL)
        return;
    rn_type_t t = r->schema->fields[i].type;
    if (t == RN_TYPE_FLOAT) {
        *c = rn__val_float(v);
        return;
    }
    if ((t == RN_TYPE_INT || t == RN_TYPE_TIMESTAMP) && isfinite(v) && v == trunc(v) &&
        v >= -0x1p63 && v < 0x1p63) {
        *c = rn__val_int((int64_t)v);
        return;
    }
    if (isfinite(v)) {
        size_t n = (size_t)snprintf(got, sizeof(got), "float ");
        got[n + rn__fmt_double(got + n, v)] = '\0';
    } else {
        snprintf(got, sizeof(got), "float %g", v);
    }
    mismatch(r, i, got);
}

void
rn_fmt_set_bool(rn_fmt_t *r, int i, bool v)
{
    rn_value_t *c = cell(r, i, "rn_fmt_set_bool");
    if (c == NULL)
        return;
    if (r->schema->fields[i].type == RN_TYPE_BOOL)
        *c = rn__val_bool(v);
    else
        mismatch(r, i, v ? "bool true" : "bool false");
}

void
rn_fmt_set_string(rn_fmt_t *r, int i, const char *s, size_t len)
{
    rn_value_t *c = cell(r, i, "rn_fmt_set_string");
    char got[RN_DECODE_GOT_MAX + 32];
    if (c == NULL)
        return;
    if (s == NULL && len > 0) {
        fault(r, RN_EINVAL, "rn_fmt_set_string: field '%s': NULL with length %zu",
              r->schema->fields[i].name, len);
        return;
    }
    if (r->schema->fields[i].type != RN_TYPE_STRING) {
        size_t n = (size_t)snprintf(got, sizeof(got), "string ");
        rn__decode_quote(got + n, sizeof(got) - n, s != NULL ? s : "", len);
        mismatch(r, i, got);
        return;
    }
    if (len > UINT32_MAX) {
        fault(r, RN_EDATA, "field '%s': a string of %zu bytes (at most %u)",
              r->schema->fields[i].name, len, UINT32_MAX);
        return;
    }
    *c = rn__val_str(rn__arena_strdup(r->arena, s != NULL ? s : "", len), (uint32_t)len);
}

/* ---- encoding ----------------------------------------------------------------- */

const rn_val_t *
rn_fmt_get(const rn_fmt_t *r, int i)
{
    static const rn_val_t null_val = {.null = 1};
    if (r->crow == NULL || !in_range(r, i))
        return &null_val;
    return (const rn_val_t *)&r->crow[i];
}

int
rn_fmt_write(rn_fmt_t *r, const void *bytes, size_t len)
{
    if (r->out == NULL) {
        fault(r, RN_EINVAL, "rn_fmt_write called while decoding: it is for encode");
        return RN_EINVAL;
    }
    if (len == 0)
        return RN_OK;
    if (rn__buf_reserve(r->out, len) != RN_OK)
        return RN_ENOMEM;
    memcpy(r->out->data + r->out->len, bytes, len);
    r->out->len += len;
    return RN_OK;
}
