/*
 * tests/plugins/ext_functions.c: scalar functions for
 * integration.plugin_functions (runnel/functions.h).
 *
 *   haversine_km(lat1, lon1, lat2, lon2)  float: great-circle distance
 *                                         (floats: its plan refuses ints)
 *   initials(s)                           string: first letter of each word,
 *                                         upper-cased (rn_fn_alloc)
 *   nz(x, d)                              int: d when x is null
 *                                         (RN_FN_NULL_CALL)
 *   twice(x)                              int: 2x; its plan refuses
 *                                         anything but an int
 *   vowels(s)                             int: vowels, counted in
 *                                         scratch from rn_fn_alloc
 *   stddev(x)                             aggregate, float: population
 *                                         standard deviation, with merge
 *   spread(x)                             aggregate, float: max - min,
 *                                         without merge
 *   nrows()                               aggregate, int: rows (add with
 *                                         NULL), with merge
 *   longest(s)                            aggregate whose plan declares a
 *                                         string result (refused)
 *
 * Built again with TEST_DUP (libext_functions_dup.so: registers twice
 * only, which clashes with this library) and TEST_BUILTIN
 * (libext_functions_builtin.so: also takes the built-in name lower) by
 * tests/CMakeLists.txt. All functions keep no state between calls: eval
 * and merge run on several threads at once.
 */
#include <runnel/plugin.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Floats only: eval is not told the argument types (an int's 8 bytes are
 * not a double's), and remembering them from plan in a static would be
 * shared by every call of the process, plan after plan. Job files write
 * to_float(x) for an int. */
static int
hv_plan(const rn_type_t *args, int n, rn_type_t *ret, rn_error_t *err)
{
    for (int i = 0; i < n; i++) {
        if (args[i] != RN_TYPE_FLOAT) {
            err->code = RN_EINVAL;
            snprintf(err->msg, sizeof(err->msg),
                     "argument %d must be a float, got %s (to_float() converts)", i + 1,
                     rn_type_name(args[i]));
            return RN_EINVAL;
        }
    }
    *ret = RN_TYPE_FLOAT;
    return RN_OK;
}

static void
hv_eval(rn_fn_ctx_t *ctx, const rn_val_t *a, int n, rn_val_t *out)
{
    (void)ctx;
    (void)n;
    const double r = M_PI / 180.0;
    double la1 = a[0].u.f * r, lo1 = a[1].u.f * r;
    double la2 = a[2].u.f * r, lo2 = a[3].u.f * r;
    double h = pow(sin((la2 - la1) / 2), 2) + cos(la1) * cos(la2) * pow(sin((lo2 - lo1) / 2), 2);
    out->u.f = 2 * 6371.0 * asin(sqrt(h));
}

static int
str_plan(const rn_type_t *args, int n, rn_type_t *ret, rn_error_t *err)
{
    (void)n;
    if (args[0] != RN_TYPE_STRING) {
        err->code = RN_EINVAL;
        snprintf(err->msg, sizeof(err->msg), "takes a string, got %s", rn_type_name(args[0]));
        return RN_EINVAL;
    }
    *ret = RN_TYPE_STRING;
    return RN_OK;
}

static void
initials_eval(rn_fn_ctx_t *ctx, const rn_val_t *a, int n, rn_val_t *out)
{
    (void)n;
    char *buf = rn_fn_alloc(ctx, a[0].len + 1);
    uint32_t k = 0;
    for (uint32_t i = 0; i < a[0].len; i++)
        if (a[0].u.s[i] != ' ' && (i == 0 || a[0].u.s[i - 1] == ' '))
            buf[k++] = (char)toupper((unsigned char)a[0].u.s[i]);
    out->u.s = buf;
    out->len = k;
}

/* vowels(s): int, the ASCII vowels of s, counted in a lower-cased copy
 * from rn_fn_alloc (scratch for a result that is not a string). */
static int
vowels_plan(const rn_type_t *args, int n, rn_type_t *ret, rn_error_t *err)
{
    int rc = str_plan(args, n, ret, err);
    *ret = RN_TYPE_INT;
    return rc;
}

static void
vowels_eval(rn_fn_ctx_t *ctx, const rn_val_t *a, int n, rn_val_t *out)
{
    (void)n;
    char *low = rn_fn_alloc(ctx, a[0].len);
    int64_t k = 0;
    for (uint32_t i = 0; i < a[0].len; i++) {
        low[i] = (char)tolower((unsigned char)a[0].u.s[i]);
        k += strchr("aeiou", low[i]) != NULL && low[i] != '\0';
    }
    out->u.i = k;
}

static int
int_plan(const rn_type_t *args, int n, rn_type_t *ret, rn_error_t *err)
{
    for (int i = 0; i < n; i++)
        if (args[i] != RN_TYPE_INT && args[i] != RN_TYPE_NULL) {
            err->code = RN_EINVAL;
            snprintf(err->msg, sizeof(err->msg), "argument %d must be an int, got %s", i + 1,
                     rn_type_name(args[i]));
            return RN_EINVAL;
        }
    *ret = RN_TYPE_INT;
    return RN_OK;
}

static void
nz_eval(rn_fn_ctx_t *ctx, const rn_val_t *a, int n, rn_val_t *out)
{
    (void)ctx;
    (void)n;
    *out = a[0].null ? a[1] : a[0];
}

static void
twice_eval(rn_fn_ctx_t *ctx, const rn_val_t *a, int n, rn_val_t *out)
{
    (void)ctx;
    (void)n;
    out->u.i = 2 * a[0].u.i;
}

static const rn_scalar_fn_t fns[] = {
    {sizeof(rn_scalar_fn_t), "twice", 1, 1, 0, int_plan, twice_eval},
    {sizeof(rn_scalar_fn_t), "haversine_km", 4, 4, 0, hv_plan, hv_eval},
    {sizeof(rn_scalar_fn_t), "initials", 1, 1, 0, str_plan, initials_eval},
    {sizeof(rn_scalar_fn_t), "nz", 2, 2, RN_FN_NULL_CALL, int_plan, nz_eval},
    {sizeof(rn_scalar_fn_t), "vowels", 1, 1, 0, vowels_plan, vowels_eval},
};

/* ---- aggregates: 24-byte accumulators, all zero to begin with ---- */

typedef struct sd_acc {
    double n, sum, sumsq;
} sd_acc_t;

static int
agg_plan(rn_type_t arg, rn_type_t *ret, rn_error_t *err)
{
    if (arg != RN_TYPE_FLOAT) {
        err->code = RN_EINVAL;
        snprintf(err->msg, sizeof(err->msg), "needs a float field, got %s", rn_type_name(arg));
        return RN_EINVAL;
    }
    *ret = RN_TYPE_FLOAT;
    return RN_OK;
}

static void
sd_add(void *acc, const rn_val_t *v, int64_t ts)
{
    (void)ts;
    sd_acc_t *a = acc;
    a->n += 1;
    a->sum += v->u.f;
    a->sumsq += v->u.f * v->u.f;
}

static void
sd_merge(void *dst, const void *src)
{
    sd_acc_t *d = dst;
    const sd_acc_t *s = src;
    d->n += s->n;
    d->sum += s->sum;
    d->sumsq += s->sumsq;
}

static void
sd_result(const void *acc, rn_val_t *out)
{
    const sd_acc_t *a = acc;
    if (a->n == 0) {
        out->null = 1;
        return;
    }
    double m = a->sum / a->n, var = a->sumsq / a->n - m * m;
    out->u.f = sqrt(var > 0 ? var : 0);
}

typedef struct sp_acc {
    double lo, hi, n;
} sp_acc_t;

static void
sp_add(void *acc, const rn_val_t *v, int64_t ts)
{
    (void)ts;
    sp_acc_t *a = acc;
    if (a->n == 0 || v->u.f < a->lo)
        a->lo = v->u.f;
    if (a->n == 0 || v->u.f > a->hi)
        a->hi = v->u.f;
    a->n += 1;
}

static void
sp_result(const void *acc, rn_val_t *out)
{
    const sp_acc_t *a = acc;
    if (a->n == 0)
        out->null = 1;
    else
        out->u.f = a->hi - a->lo;
}

/* nrows(): rows of the window, through add(acc, NULL, ts). */
static int
nrows_plan(rn_type_t arg, rn_type_t *ret, rn_error_t *err)
{
    if (arg != RN_TYPE_NULL) {
        err->code = RN_EINVAL;
        snprintf(err->msg, sizeof(err->msg), "takes no argument");
        return RN_EINVAL;
    }
    *ret = RN_TYPE_INT;
    return RN_OK;
}

static void
nrows_add(void *acc, const rn_val_t *v, int64_t ts)
{
    (void)ts;
    if (v == NULL)
        ++*(int64_t *)acc;
    else
        *(int64_t *)acc += 1000000; /* a value where there should be none: visible */
}

static void
nrows_merge(void *dst, const void *src)
{
    *(int64_t *)dst += *(const int64_t *)src;
}

static void
nrows_result(const void *acc, rn_val_t *out)
{
    out->u.i = *(const int64_t *)acc;
}

/* longest(s): declares a string result, which runnel refuses. */
static int
longest_plan(rn_type_t arg, rn_type_t *ret, rn_error_t *err)
{
    (void)arg;
    (void)err;
    *ret = RN_TYPE_STRING;
    return RN_OK;
}

static const rn_aggregate_fn_t aggs[] = {
    {sizeof(rn_aggregate_fn_t), "stddev", agg_plan, sd_add, sd_merge, sd_result},
    {sizeof(rn_aggregate_fn_t), "spread", agg_plan, sp_add, NULL, sp_result},
    {sizeof(rn_aggregate_fn_t), "nrows", nrows_plan, nrows_add, nrows_merge, nrows_result},
    {sizeof(rn_aggregate_fn_t), "longest", longest_plan, nrows_add, NULL, nrows_result},
};

/* The duplicate registers twice only; the others all. */
#ifdef TEST_DUP
#define NFNS 1
#else
#define NFNS (sizeof(fns) / sizeof(fns[0]))
#endif

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    for (size_t i = 0; i < NFNS; i++) {
        int rc = rn_plugin_register_scalar(p, RN_ABI_VERSION, &fns[i], err);
        if (rc != RN_OK)
            return rc;
    }
#ifdef TEST_DUP
    (void)aggs;
#else
    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++) {
        int rc = rn_plugin_register_aggregate(p, RN_ABI_VERSION, &aggs[i], err);
        if (rc != RN_OK)
            return rc;
    }
#endif
#ifdef TEST_BUILTIN
    static const rn_scalar_fn_t lower = {sizeof(rn_scalar_fn_t), "lower", 1, 1, 0, str_plan,
                                         initials_eval};
    return rn_plugin_register_scalar(p, RN_ABI_VERSION, &lower, err);
#endif
    return RN_OK;
}
