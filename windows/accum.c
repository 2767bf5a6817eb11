/*
 * windows/accum.c: the aggregates of window_aggregate: parsing "fn(arg)"
 * with its type rules, and the fixed-size accumulator cell of each
 * function (see window_int.h).
 *
 * Design: incremental aggregation (Flink's AggregateFunction): a window
 * holds one cell per aggregate and never its records. A cell is 24 bytes
 * for every function, so an operator's whole accumulator is one array that
 * state hands out in place (rn__vstate_ref) and updates without
 * allocation. Strings are the exception that needs variable storage: for
 * those this file only decides, from an 8-byte prefix kept in the cell,
 * whether a candidate replaces the stored string, and the operator moves
 * the bytes. Nulls are skipped by every function but count(), which counts
 * rows, as SQL does; a function that saw no value gives null (counts give 0).
 *
 * @thread any.
 */
#include "stream/conf.h"
#include "windows/window_int.h"
#include "stream/plugin_ext.h"

#include <ctype.h>

static const char *const fn_names[] = {"count", "sum",           "min",   "max",
                                       "avg",   "count_distinct", "first", "last", NULL};

const char *
rn__agg_fn_name(rn_agg_fn_t fn)
{
    return fn == RN_AGG_PLUGIN ? "plugin" : fn_names[fn];
}

bool
rn__agg_fn_builtin(const char *name)
{
    for (int i = 0; fn_names[i] != NULL; i++)
        if (strcmp(fn_names[i], name) == 0)
            return true;
    return false;
}

/* ---- parsing ---- */

static size_t
skip_ws(const char *s, size_t i)
{
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    return i;
}

static bool
ident_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || (!first && (isdigit((unsigned char)c) ||
                                                                c == '.' || c == '-'));
}

static size_t
ident_end(const char *s, size_t i)
{
    if (!ident_char(s[i], true))
        return i;
    while (ident_char(s[i], false))
        i++;
    return i;
}

static rn_code_t
perr(size_t *off, size_t at, char *msg, size_t msgsize, const char *fmt, ...) RN_PRINTF(5, 6);

static rn_code_t
perr(size_t *off, size_t at, char *msg, size_t msgsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msgsize, fmt, ap);
    va_end(ap);
    *off = at;
    return RN_EINVAL;
}

static bool
numeric(rn_type_t t)
{
    return t == RN_TYPE_INT || t == RN_TYPE_FLOAT;
}

/* Resolves the argument and applies the type rules. */
static rn_code_t
agg_type(rn_agg_t *agg, const rn_schema_t *schema, const char *name, size_t nlen, size_t at,
         size_t *off, char *msg, size_t msgsize)
{
    const char *fname = fn_names[agg->fn];
    char field[256];

    if (nlen >= sizeof(field))
        return perr(off, at, msg, msgsize, "field name too long");
    memcpy(field, name, nlen);
    field[nlen] = '\0';
    agg->arg = rn__schema_find(schema, field);
    if (agg->arg < 0) {
        char fields[256];
        const char *cands[65];
        uint32_t n = schema->nfields < 64 ? schema->nfields : 64;
        for (uint32_t i = 0; i < n; i++)
            cands[i] = schema->fields[i].name;
        cands[n] = NULL;
        const char *dym = rn__did_you_mean(field, cands);
        rn__schema_format(schema, fields, sizeof(fields));
        if (dym != NULL)
            return perr(off, at, msg, msgsize, "unknown field '%s' in %s(); did you mean '%s'?",
                        field, fname, dym);
        return perr(off, at, msg, msgsize, "unknown field '%s' in %s() (input fields: %s)",
                    field, fname, fields);
    }
    agg->in = schema->fields[agg->arg].type;
    switch (agg->fn) {
    case RN_AGG_COUNT:
    case RN_AGG_COUNT_DISTINCT:
        agg->out = RN_TYPE_INT;
        break;
    case RN_AGG_SUM:
    case RN_AGG_AVG:
        if (!numeric(agg->in))
            return perr(off, at, msg, msgsize, "%s() needs an int or float field; '%s' is %s",
                        fname, field, rn_type_name(agg->in));
        agg->out = agg->fn == RN_AGG_AVG ? RN_TYPE_FLOAT : agg->in;
        break;
    case RN_AGG_MIN:
    case RN_AGG_MAX:
    case RN_AGG_FIRST:
    case RN_AGG_LAST:
        agg->out = agg->in;
        agg->is_string = agg->in == RN_TYPE_STRING;
        break;
    case RN_AGG_PLUGIN: RN_NOTREACHED(); /* parse_plugin */
    }
    return RN_OK;
}

/* The rest of "name(arg)" for a plugin's aggregate (agg->ext set): one
 * field or none, checked by the function's plan. */
static rn_code_t
parse_plugin(const char *text, size_t i, const rn_schema_t *schema, rn_agg_t *agg, size_t *off,
             char *msg, size_t msgsize)
{
    const char *name = agg->ext->name;
    agg->fn = RN_AGG_PLUGIN;
    i = skip_ws(text, i);
    if (text[i] != '(')
        return perr(off, i, msg, msgsize, "expected '(' after '%s'", name);
    i = skip_ws(text, i + 1);
    size_t as = i, ae = ident_end(text, i);
    i = skip_ws(text, ae);
    if (text[i] != ')')
        return perr(off, i, msg, msgsize, "%s() takes no argument or one field", name);
    size_t close = i;
    i = skip_ws(text, i + 1);
    if (text[i] != '\0')
        return perr(off, i, msg, msgsize, "unexpected '%s' after %s(...)", text + i, name);
    if (ae > as) {
        char field[256];
        if (ae - as >= sizeof(field))
            return perr(off, as, msg, msgsize, "field name too long");
        memcpy(field, text + as, ae - as);
        field[ae - as] = '\0';
        if ((agg->arg = rn__schema_find(schema, field)) < 0) {
            char fields[256];
            rn__schema_format(schema, fields, sizeof(fields));
            return perr(off, as, msg, msgsize, "unknown field '%s' in %s() (input fields: %s)",
                        field, name, fields);
        }
        agg->in = schema->fields[agg->arg].type;
    }
    rn_error_t e = RN_ERROR_INIT;
    rn_type_t out = RN_TYPE_NULL;
    if (agg->ext->plan(agg->in, &out, &e) != RN_OK)
        return perr(off, ae > as ? as : close, msg, msgsize, "%s(): %s", name,
                    e.msg[0] ? e.msg : "its plan refused the argument");
    if (out != RN_TYPE_INT && out != RN_TYPE_FLOAT && out != RN_TYPE_BOOL &&
        out != RN_TYPE_TIMESTAMP)
        return perr(off, close, msg, msgsize,
                    "%s(): an aggregate's result must be int, float, bool or timestamp, not %s",
                    name, rn_type_name(out));
    agg->out = out;
    return RN_OK;
}

/* Refuses an aggregate neither built in nor registered: the nearest
 * name of either kind, and the plugins' aggregates. */
static rn_code_t
unknown_fn(const char *name, size_t len, size_t at, size_t *off, char *msg, size_t msgsize)
{
    char word[64], more[300], split[300];
    const char *cands[sizeof(fn_names) / sizeof(fn_names[0]) + 64];
    size_t n = 0;

    snprintf(word, sizeof(word), "%.*s", (int)len, name);
    for (; fn_names[n] != NULL; n++)
        cands[n] = fn_names[n];
    rn__ext_names(RN_EXT_AGGREGATE, more, sizeof(more));
    /* "a, b, c" into candidates, on a copy: more is printed whole. */
    n += rn__ext_names_split(more, split, sizeof(split), cands + n,
                             sizeof(cands) / sizeof(cands[0]) - 1 - n);
    cands[n] = NULL;
    const char *dym = rn__did_you_mean(word, cands);
    return perr(off, at, msg, msgsize,
                "unknown aggregate function '%s'%s%s%s (expected count, sum, min, max, avg, "
                "count_distinct, first or last%s%s)",
                word, dym ? "; did you mean '" : "", dym ? dym : "", dym ? "'?" : "",
                more[0] ? ", or from plugins: " : "", more);
}

rn_code_t
rn__agg_parse(const char *text, const rn_schema_t *schema, rn_agg_t *agg, size_t *off, char *msg,
              size_t msgsize)
{
    size_t i = skip_ws(text, 0);
    size_t fs = i, fe = ident_end(text, i);
    int fn = -1;

    memset(agg, 0, sizeof(*agg));
    agg->arg = -1;
    agg->in = RN_TYPE_NULL;
    if (fe == fs)
        return perr(off, i, msg, msgsize,
                    "expected an aggregate such as count() or sum(field)");
    for (int k = 0; fn_names[k] != NULL; k++)
        if (strlen(fn_names[k]) == fe - fs && strncmp(fn_names[k], text + fs, fe - fs) == 0)
            fn = k;
    if (fn < 0 && (agg->ext = rn__ext_aggregate(text + fs, fe - fs)) != NULL)
        return parse_plugin(text, fe, schema, agg, off, msg, msgsize);
    if (fn < 0)
        return unknown_fn(text + fs, fe - fs, fs, off, msg, msgsize);
    agg->fn = (rn_agg_fn_t)fn;
    i = skip_ws(text, fe);
    if (text[i] != '(')
        return perr(off, i, msg, msgsize, "expected '(' after '%s'", fn_names[fn]);
    i = skip_ws(text, i + 1);
    size_t as = i, ae = ident_end(text, i);
    i = skip_ws(text, ae);
    if (text[i] == ',')
        return perr(off, i, msg, msgsize, "%s() takes %s", fn_names[fn],
                    fn == RN_AGG_COUNT ? "no argument or one field" : "one field");
    if (text[i] != ')')
        return perr(off, i, msg, msgsize, "expected %s')'", ae == as ? "a field name or " : "");
    size_t close = i;
    i = skip_ws(text, i + 1);
    if (text[i] != '\0')
        return perr(off, i, msg, msgsize, "unexpected '%s' after %s(...)", text + i,
                    fn_names[fn]);
    if (ae == as) {
        if (fn != RN_AGG_COUNT)
            return perr(off, close, msg, msgsize, "%s() needs a field: %s(field)", fn_names[fn],
                        fn_names[fn]);
        agg->out = RN_TYPE_INT;
        return RN_OK;
    }
    return agg_type(agg, schema, text + as, ae - as, as, off, msg, msgsize);
}

/* ---- accumulators ---- */

/* The value as the cell keeps it: ints, timestamps and bools in i. */
static inline int64_t
as_int(rn_type_t t, const rn_value_t *v)
{
    return t == RN_TYPE_BOOL ? (int64_t)v->u.b : v->u.i;
}

/* true when value (a, cell-encoded) is better than b for min (less) or max
 * (greater). */
static inline bool
better(const rn_agg_t *agg, const rn_acc_cell_t *a, const rn_acc_cell_t *b)
{
    bool min = agg->fn == RN_AGG_MIN;
    if (agg->in == RN_TYPE_FLOAT)
        return min ? a->v.f < b->v.f : a->v.f > b->v.f;
    return min ? a->v.i < b->v.i : a->v.i > b->v.i;
}

void
rn__acc_add(const rn_agg_t *agg, rn_acc_cell_t *c, const rn_value_t *v, int64_t ts)
{
    rn_acc_cell_t x;

    if (agg->fn == RN_AGG_PLUGIN) {
        if (agg->arg < 0)
            agg->ext->add(c, NULL, ts);
        else if (!v->null)
            agg->ext->add(c, (const rn_val_t *)v, ts);
        return;
    }
    if (agg->fn == RN_AGG_COUNT) {
        if (agg->arg < 0 || !v->null)
            c->n++;
        return;
    }
    rn_dassert(!agg->is_string && agg->fn != RN_AGG_COUNT_DISTINCT);
    if (v->null)
        return;
    if (agg->in == RN_TYPE_FLOAT)
        x.v.f = v->u.f;
    else
        x.v.i = as_int(agg->in, v);
    switch (agg->fn) {
    case RN_AGG_SUM:
        if (agg->in == RN_TYPE_FLOAT)
            c->v.f += x.v.f;
        else /* wraps on overflow, as Java's long does, rather than UB */
            c->v.i = (int64_t)((uint64_t)c->v.i + (uint64_t)x.v.i);
        break;
    case RN_AGG_AVG:
        c->v.f += agg->in == RN_TYPE_FLOAT ? x.v.f : (double)x.v.i;
        break;
    case RN_AGG_MIN:
    case RN_AGG_MAX:
        if (c->n == 0 || better(agg, &x, c))
            c->v = x.v;
        break;
    case RN_AGG_FIRST:
        if (c->n == 0 || ts < c->ts) {
            c->v = x.v;
            c->ts = ts;
        }
        break;
    case RN_AGG_LAST:
        if (c->n == 0 || ts >= c->ts) {
            c->v = x.v;
            c->ts = ts;
        }
        break;
    case RN_AGG_COUNT:
    case RN_AGG_COUNT_DISTINCT:
    case RN_AGG_PLUGIN:
        RN_NOTREACHED();
    }
    c->n++;
}

static inline void
prefix_of(const char *s, size_t len, uint8_t p[8])
{
    memset(p, 0, 8);
    memcpy(p, s, len < 8 ? len : 8);
}

static rn_acc_str_t
decide_prefix(const rn_agg_t *agg, const uint8_t cand[8], const uint8_t stored[8])
{
    int c = memcmp(cand, stored, 8);
    if (c == 0)
        return RN_ACC_COMPARE;
    /* Zero-padded prefixes that differ order as the strings do. */
    if (agg->fn == RN_AGG_MIN)
        return c < 0 ? RN_ACC_REPLACE : RN_ACC_KEEP;
    return c > 0 ? RN_ACC_REPLACE : RN_ACC_KEEP;
}

rn_acc_str_t
rn__acc_str_decide(const rn_agg_t *agg, const rn_acc_cell_t *c, const char *s, size_t len,
                   int64_t ts)
{
    uint8_t p[8];

    if (c->n == 0)
        return RN_ACC_REPLACE;
    switch (agg->fn) {
    case RN_AGG_FIRST:
        return ts < c->ts ? RN_ACC_REPLACE : RN_ACC_KEEP;
    case RN_AGG_LAST:
        return ts >= c->ts ? RN_ACC_REPLACE : RN_ACC_KEEP;
    default:
        prefix_of(s, len, p);
        return decide_prefix(agg, p, c->v.prefix);
    }
}

bool
rn__acc_str_beats(const rn_agg_t *agg, const char *s, size_t len, const char *stored,
                  size_t stored_len)
{
    size_t n = len < stored_len ? len : stored_len;
    int c = n ? memcmp(s, stored, n) : 0;
    if (c == 0)
        c = (len > stored_len) - (len < stored_len);
    return agg->fn == RN_AGG_MIN ? c < 0 : c > 0;
}

void
rn__acc_str_set(rn_acc_cell_t *c, const char *s, size_t len, int64_t ts)
{
    prefix_of(s, len, c->v.prefix);
    c->ts = ts;
}

void
rn__acc_merge(const rn_agg_t *agg, rn_acc_cell_t *dst, const rn_acc_cell_t *src)
{
    rn_dassert(!agg->is_string);
    if (agg->fn == RN_AGG_PLUGIN) {
        /* Without merge, never called: the plan refuses session windows
         * and the operator reads whole accumulators (window_op.c). */
        if (agg->ext->merge != NULL)
            agg->ext->merge(dst, src);
        return;
    }
    if (src->n == 0)
        return;
    switch (agg->fn) {
    case RN_AGG_COUNT:
    case RN_AGG_COUNT_DISTINCT:
    case RN_AGG_PLUGIN:
        break;
    case RN_AGG_SUM:
        if (agg->in == RN_TYPE_FLOAT)
            dst->v.f += src->v.f;
        else
            dst->v.i = (int64_t)((uint64_t)dst->v.i + (uint64_t)src->v.i);
        break;
    case RN_AGG_AVG:
        dst->v.f += src->v.f;
        break;
    case RN_AGG_MIN:
    case RN_AGG_MAX:
        if (dst->n == 0 || better(agg, src, dst))
            dst->v = src->v;
        break;
    case RN_AGG_FIRST:
        if (dst->n == 0 || src->ts < dst->ts) {
            dst->v = src->v;
            dst->ts = src->ts;
        }
        break;
    case RN_AGG_LAST:
        if (dst->n == 0 || src->ts >= dst->ts) {
            dst->v = src->v;
            dst->ts = src->ts;
        }
        break;
    }
    /* count_distinct's n is recounted by the operator as it merges sets. */
    if (agg->fn != RN_AGG_COUNT_DISTINCT)
        dst->n += src->n;
}

rn_acc_str_t
rn__acc_merge_str_decide(const rn_agg_t *agg, const rn_acc_cell_t *dst, const rn_acc_cell_t *src)
{
    if (src->n == 0)
        return RN_ACC_KEEP;
    if (dst->n == 0)
        return RN_ACC_REPLACE;
    switch (agg->fn) {
    case RN_AGG_FIRST:
        return src->ts < dst->ts ? RN_ACC_REPLACE : RN_ACC_KEEP;
    case RN_AGG_LAST:
        return src->ts >= dst->ts ? RN_ACC_REPLACE : RN_ACC_KEEP;
    default:
        return decide_prefix(agg, src->v.prefix, dst->v.prefix);
    }
}

void
rn__acc_result_to(const rn_agg_t *agg, const rn_acc_cell_t *c, rn_value_t *out)
{
    if (agg->fn == RN_AGG_PLUGIN) {
        rn_value_t r;
        memset(&r, 0, sizeof(r));
        agg->ext->result(c, (rn_val_t *)&r);
        bool null = r.null != 0;
        memset(out, 0, sizeof(*out));
        out->null = null;
        if (!null && agg->out == RN_TYPE_FLOAT)
            out->u.f = r.u.f;
        else if (!null && agg->out == RN_TYPE_BOOL)
            out->u.b = r.u.b;
        else if (!null)
            out->u.i = r.u.i;
        return;
    }
    /* Union first, then the rest, which is all zero but for null. */
    if (agg->fn == RN_AGG_COUNT || agg->fn == RN_AGG_COUNT_DISTINCT) {
        out->u.i = c->n;
    } else if (c->n == 0) {
        out->u.i = 0;
    } else if (agg->fn == RN_AGG_AVG) {
        out->u.f = c->v.f / (double)c->n;
    } else {
        switch (agg->out) {
        case RN_TYPE_FLOAT:
            out->u.f = c->v.f;
            break;
        case RN_TYPE_BOOL:
            out->u.i = 0;
            out->u.b = c->v.i != 0;
            break;
        default:
            out->u.i = c->v.i;
            break;
        }
    }
    out->len = 0;
    out->null = c->n == 0 && agg->fn != RN_AGG_COUNT && agg->fn != RN_AGG_COUNT_DISTINCT;
    memset(out->pad, 0, sizeof(out->pad));
}

rn_value_t
rn__acc_result(const rn_agg_t *agg, const rn_acc_cell_t *c)
{
    rn_value_t v;
    rn__acc_result_to(agg, c, &v);
    return v;
}

size_t
rn__acc_distinct_bytes(rn_type_t type, const rn_value_t *v, uint8_t buf[8], const uint8_t **p)
{
    uint64_t u;
    switch (type) {
    case RN_TYPE_STRING:
        *p = (const uint8_t *)v->u.s;
        return v->len;
    case RN_TYPE_BOOL:
        buf[0] = v->u.b ? 1 : 0;
        *p = buf;
        return 1;
    case RN_TYPE_FLOAT: {
        double f = v->u.f == 0.0 ? 0.0 : v->u.f;
        memcpy(&u, &f, 8);
        break;
    }
    default:
        u = (uint64_t)v->u.i;
        break;
    }
    memcpy(buf, &u, 8);
    *p = buf;
    return 8;
}
