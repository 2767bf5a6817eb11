/*
 * stream/expr_eval.c: evaluation of parsed expressions (see expr.h and
 * expr_int.h for the node layout).
 *
 * Design: one recursive function, ev(), that switches on the opcode of a
 * node. Types were resolved at parse time, so each case does its work with
 * no type test beyond the null flags. Leaves (field reads and constants)
 * are fetched inline by arg() without a call, which keeps an expression
 * such as `value % 2 == 0` at two calls per row. Bulky cases (string
 * functions, conversions) live in noinline helpers so that ev()'s own stack
 * frame stays small for the recursion. Nothing here fails: runtime faults
 * (division by zero, integer overflow, a bad number in to_int) give null.
 * Nothing here calls malloc: strings made are bump-allocated in the arena
 * the caller passes in. A plugin's scalar function (RN_X_CALL, call())
 * is called a row at a time, from whichever thread evaluates, with its
 * arguments in place and rn_fn_alloc drawing from that same arena.
 *
 * @thread any: an expression is immutable once parsed.
 */
#include "stream/expr_int.h"

#include <runnel/functions.h>

#include <math.h>

static void ev(const rn_expr_t *e, const rn_xnode_t *n, const rn_value_t *row, rn_arena_t *arena,
               rn_value_t *out);

/* Leaves are read in place, without a copy or a call; anything else is
 * evaluated into tmp. */
static inline const rn_value_t *
arg(const rn_expr_t *e, int32_t i, const rn_value_t *row, rn_arena_t *arena, rn_value_t *tmp)
{
    const rn_xnode_t *n = &e->nodes[i];
    if (n->op == RN_X_FIELD)
        return &row[n->a];
    if (n->op == RN_X_CONST)
        return &n->k;
    ev(e, n, row, arena, tmp);
    return tmp;
}

/* Results are written field by field rather than as whole rn_value_t
 * copies: the parts are then read back with loads of the same width, which
 * the CPU forwards from its store buffer (a 16-byte reload of a value just
 * written in pieces stalls for many cycles). The pad bytes are left alone. */
static inline void
put_null(rn_value_t *o)
{
    o->u.i = 0;
    o->len = 0;
    o->null = 1;
}

static inline void
put_int(rn_value_t *o, int64_t i)
{
    o->u.i = i;
    o->len = 0;
    o->null = 0;
}

static inline void
put_float(rn_value_t *o, double f)
{
    o->u.f = f;
    o->len = 0;
    o->null = 0;
}

static inline void
put_bool(rn_value_t *o, bool b)
{
    o->u.i = 0;
    o->u.b = b;
    o->len = 0;
    o->null = 0;
}

static inline void
put_str(rn_value_t *o, const char *s, uint32_t len)
{
    o->u.s = s;
    o->len = len;
    o->null = 0;
}

static inline void
put_copy(rn_value_t *o, const rn_value_t *x)
{
    if (o != x) {
        o->u = x->u;
        o->len = x->len;
        o->null = x->null;
    }
}

static int
str_cmp(const rn_value_t *x, const rn_value_t *y)
{
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->u.s, y->u.s, n) : 0;
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static inline bool
str_eq(const rn_value_t *x, const rn_value_t *y)
{
    return x->len == y->len && (x->len == 0 || memcmp(x->u.s, y->u.s, x->len) == 0);
}

static __attribute__((noinline)) void
case_fold(const rn_value_t *x, bool upper, rn_arena_t *arena, rn_value_t *out)
{
    const char *s = x->u.s;
    uint32_t len = x->len;
    char *d = rn__arena_alloc(arena, len);
    char lo = upper ? 'a' : 'A';
    char delta = upper ? 'A' - 'a' : 'a' - 'A';

    for (uint32_t i = 0; i < len; i++) {
        char c = s[i];
        d[i] = (char)(c >= lo && c <= lo + 25 ? c + delta : c);
    }
    put_str(out, d, len);
}

static __attribute__((noinline)) void
concat(const rn_expr_t *e, const rn_xnode_t *n, const rn_value_t *row, rn_arena_t *arena,
       rn_value_t *out)
{
    /* The parser caps variadic calls at 64 arguments. */
    rn_value_t tmp[64];
    const rn_value_t *parts[64];
    uint64_t total = 0;

    rn_dassert(n->nargs <= 64);
    for (uint32_t i = 0; i < n->nargs; i++) {
        parts[i] = arg(e, e->args[n->a + (int32_t)i], row, arena, &tmp[i]);
        if (parts[i]->null) {
            put_null(out);
            return;
        }
        total += parts[i]->len;
    }
    if (total > UINT32_MAX) {
        put_null(out);
        return;
    }
    char *d = rn__arena_alloc(arena, (size_t)total);
    size_t off = 0;
    for (uint32_t i = 0; i < n->nargs; i++) {
        if (parts[i]->len) {
            memcpy(d + off, parts[i]->u.s, parts[i]->len);
            off += parts[i]->len;
        }
    }
    put_str(out, d, (uint32_t)total);
}

/* What rn_fn_alloc allocates from: the arena of the row's batch (a map's
 * output batch, a filter's scratch arena of the chunk). */
struct rn_fn_ctx {
    rn_arena_t *arena;
};

void *
rn_fn_alloc(rn_fn_ctx_t *ctx, size_t n)
{
    return rn__arena_alloc(ctx->arena, n ? n : 1);
}

/* A plugin's scalar function. Arguments are passed as they are (rn_val_t
 * has rn_value_t's layout); with a null one and without RN_FN_NULL_CALL,
 * the result is null without a call. A result not null is taken as the
 * type the function's plan declared, the node's type: only the union
 * member of that type is read, so the value can never be of another type
 * downstream (a string's bytes and length are trusted as they come). len
 * and pad are zeroed where they mean nothing, whatever the plugin left. */
static __attribute__((noinline)) void
call(const rn_expr_t *e, const rn_xnode_t *n, const rn_value_t *row, rn_arena_t *arena,
     rn_value_t *out)
{
    const rn_scalar_fn_t *fn = e->fns[n->b];
    rn_value_t args[64]; /* the parser's MAX_ARGS */
    rn_dassert(n->nargs <= 64);
    for (uint32_t i = 0; i < n->nargs; i++) {
        rn_value_t t;
        args[i] = *arg(e, e->args[n->a + (int32_t)i], row, arena, &t);
        if (args[i].null && !(fn->flags & RN_FN_NULL_CALL)) {
            put_null(out);
            return;
        }
    }
    struct rn_fn_ctx ctx = {arena};
    rn_value_t r;
    memset(&r, 0, sizeof(r));
    fn->eval(&ctx, (const rn_val_t *)args, (int)n->nargs, (rn_val_t *)&r);
    if (r.null)
        put_null(out);
    else if (n->type == RN_TYPE_STRING)
        put_str(out, r.u.s, r.len);
    else if (n->type == RN_TYPE_FLOAT)
        put_float(out, r.u.f);
    else if (n->type == RN_TYPE_BOOL)
        put_bool(out, r.u.b);
    else
        put_int(out, r.u.i);
}

/* substr(s, start, len) with SQL's 1-based start: the bytes at positions
 * [start, start + len) that exist, so substr('hello', 0, 3) is 'he'. */
static __attribute__((noinline)) void
substr(const rn_expr_t *e, const rn_xnode_t *n, const rn_value_t *row, rn_arena_t *arena,
       rn_value_t *out)
{
    rn_value_t ts, tst, tln;
    const rn_value_t *s = arg(e, n->a, row, arena, &ts);
    const rn_value_t *st = arg(e, n->b, row, arena, &tst);
    int64_t from, to = INT64_MAX;

    if (s->null || st->null) {
        put_null(out);
        return;
    }
    from = st->u.i > INT64_MIN ? st->u.i - 1 : INT64_MIN;
    if (n->c >= 0) {
        const rn_value_t *ln = arg(e, n->c, row, arena, &tln);
        if (ln->null || ln->u.i < 0) {
            put_null(out);
            return;
        }
        if (__builtin_add_overflow(from, ln->u.i, &to))
            to = INT64_MAX;
    }
    if (from < 0)
        from = 0;
    if (from > (int64_t)s->len)
        from = s->len;
    if (to > (int64_t)s->len)
        to = s->len;
    if (to < from)
        to = from;
    const char *d = rn__arena_strdup(arena, s->u.s + from, (size_t)(to - from));
    put_str(out, d, (uint32_t)(to - from));
}

static __attribute__((noinline)) void
int_to_string(int64_t i, rn_arena_t *arena, rn_value_t *out)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    /* Work on the magnitude as unsigned so that INT64_MIN needs no special case. */
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (i < 0)
        *--p = '-';
    size_t len = (size_t)(buf + sizeof(buf) - p);
    put_str(out, rn__arena_strdup(arena, p, len), (uint32_t)len);
}

/* The shorter of %.15g and %.17g that reads back as the same double, with
 * ".0" added to integral values so that the text still reads as a float. */
static __attribute__((noinline)) void
float_to_string(double f, rn_arena_t *arena, rn_value_t *out)
{
    char buf[40];
    int len;

    if (isnan(f)) {
        put_str(out, "nan", 3);
        return;
    }
    if (isinf(f)) {
        put_str(out, f > 0 ? "inf" : "-inf", f > 0 ? 3 : 4);
        return;
    }
    len = snprintf(buf, sizeof(buf), "%.15g", f);
    if (strtod(buf, NULL) != f)
        len = snprintf(buf, sizeof(buf), "%.17g", f);
    if (strpbrk(buf, ".e") == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    put_str(out, rn__arena_strdup(arena, buf, (size_t)len), (uint32_t)len);
}

/* Epoch milliseconds as 2024-01-31T12:34:56.789Z, by the civil-from-days
 * algorithm (proleptic Gregorian), so that no libc time function with its
 * TZ and locale is involved. */
static __attribute__((noinline)) void
ts_to_string(int64_t ms, rn_arena_t *arena, rn_value_t *out)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    char buf[64];

    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    int len = snprintf(buf, sizeof(buf), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ",
                       (long long)y, (long long)m, (long long)d, (long long)(rem / 3600000),
                       (long long)(rem / 60000 % 60), (long long)(rem / 1000 % 60),
                       (long long)(rem % 1000));
    put_str(out, rn__arena_strdup(arena, buf, (size_t)len), (uint32_t)len);
}

/* Trims ASCII blanks, which CSV and JSON producers leave around numbers. */
static void
trim(const char **s, uint32_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static __attribute__((noinline)) void
string_to_int(const rn_value_t *x, rn_value_t *out)
{
    const char *s = x->u.s;
    uint32_t len = x->len, i = 0;
    bool neg = false;
    uint64_t u = 0, limit;

    trim(&s, &len);
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len) {
        put_null(out);
        return;
    }
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned dgt = (unsigned)(s[i] - '0');
        if (dgt > 9 || u > (limit - dgt) / 10) {
            put_null(out);
            return;
        }
        u = u * 10 + dgt;
    }
    put_int(out, neg ? (int64_t)(0 - u) : (int64_t)u);
}

static __attribute__((noinline)) void
string_to_float(const rn_value_t *x, rn_value_t *out)
{
    /* strtod wants a terminated string; longer text is not a number anyone writes. */
    char buf[256];
    const char *s = x->u.s;
    uint32_t len = x->len;
    char *end;

    trim(&s, &len);
    if (len == 0 || len >= sizeof(buf)) {
        put_null(out);
        return;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    double f = strtod(buf, &end);
    if (end != buf + len)
        put_null(out);
    else
        put_float(out, f);
}

static void
float_to_int(double f, rn_value_t *out)
{
    /* The range test also refuses NaN. 2^63 is exact as a double. */
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
        put_null(out);
    else
        put_int(out, (int64_t)f);
}

/* Operand fetches for the cases of ev(); tx and ty are the case's scratch. */
#define A (arg(e, n->a, row, arena, &tx))
#define B (arg(e, n->b, row, arena, &ty))

/* Strict operators: null out when an operand is null. */
#define UN(x)                                                                                      \
    const rn_value_t *x = A;                                                                       \
    if (x->null) {                                                                                 \
        put_null(out);                                                                             \
        return;                                                                                    \
    }
#define BIN(x, y)                                                                                  \
    UN(x);                                                                                         \
    const rn_value_t *y = B;                                                                       \
    if (y->null) {                                                                                 \
        put_null(out);                                                                             \
        return;                                                                                    \
    }

#define ARITH_I(OP, fn)                                                                            \
    case OP: {                                                                                     \
        BIN(x, y);                                                                                 \
        int64_t r;                                                                                 \
        if (fn(x->u.i, y->u.i, &r))                                                                \
            put_null(out);                                                                         \
        else                                                                                       \
            put_int(out, r);                                                                       \
        return;                                                                                    \
    }
#define ARITH_F(OP, cop)                                                                           \
    case OP: {                                                                                     \
        BIN(x, y);                                                                                 \
        put_float(out, x->u.f cop y->u.f);                                                         \
        return;                                                                                    \
    }
#define CMP(OP, expr)                                                                              \
    case OP: {                                                                                     \
        BIN(x, y);                                                                                 \
        put_bool(out, expr);                                                                       \
        return;                                                                                    \
    }
#define FLOAT_FN(OP, fn)                                                                           \
    case OP: {                                                                                     \
        UN(x);                                                                                     \
        put_float(out, fn(x->u.f));                                                                \
        return;                                                                                    \
    }

/* Evaluates node n into out. out may be an operand's own cell: every case
 * reads all it needs before it writes. */
static void
ev(const rn_expr_t *e, const rn_xnode_t *n, const rn_value_t *row, rn_arena_t *arena,
   rn_value_t *out)
{
    rn_value_t tx, ty;

    switch ((rn_xop_t)n->op) {
    case RN_X_CONST: put_copy(out, &n->k); return;
    case RN_X_FIELD: put_copy(out, &row[n->a]); return;
    case RN_X_ID: put_copy(out, A); return;
    case RN_X_I2F: {
        UN(x);
        put_float(out, (double)x->u.i);
        return;
    }
    ARITH_I(RN_X_ADD_I, __builtin_add_overflow)
    ARITH_I(RN_X_SUB_I, __builtin_sub_overflow)
    ARITH_I(RN_X_MUL_I, __builtin_mul_overflow)
    case RN_X_DIV_I: {
        BIN(x, y);
        if (y->u.i == 0 || (y->u.i == -1 && x->u.i == INT64_MIN))
            put_null(out);
        else
            put_int(out, x->u.i / y->u.i);
        return;
    }
    case RN_X_MOD_I: {
        BIN(x, y);
        if (y->u.i == 0)
            put_null(out);
        else /* INT64_MIN % -1 traps on x86 although the answer is 0. */
            put_int(out, y->u.i == -1 ? 0 : x->u.i % y->u.i);
        return;
    }
    case RN_X_NEG_I: {
        UN(x);
        if (x->u.i == INT64_MIN)
            put_null(out);
        else
            put_int(out, -x->u.i);
        return;
    }
    ARITH_F(RN_X_ADD_F, +)
    ARITH_F(RN_X_SUB_F, -)
    ARITH_F(RN_X_MUL_F, *)
    case RN_X_DIV_F: {
        BIN(x, y);
        if (y->u.f == 0.0)
            put_null(out);
        else
            put_float(out, x->u.f / y->u.f);
        return;
    }
    case RN_X_NEG_F: {
        UN(x);
        put_float(out, -x->u.f);
        return;
    }
    CMP(RN_X_EQ_I, x->u.i == y->u.i)
    CMP(RN_X_NE_I, x->u.i != y->u.i)
    CMP(RN_X_LT_I, x->u.i < y->u.i)
    CMP(RN_X_LE_I, x->u.i <= y->u.i)
    CMP(RN_X_GT_I, x->u.i > y->u.i)
    CMP(RN_X_GE_I, x->u.i >= y->u.i)
    CMP(RN_X_EQ_F, x->u.f == y->u.f)
    CMP(RN_X_NE_F, x->u.f != y->u.f)
    CMP(RN_X_LT_F, x->u.f < y->u.f)
    CMP(RN_X_LE_F, x->u.f <= y->u.f)
    CMP(RN_X_GT_F, x->u.f > y->u.f)
    CMP(RN_X_GE_F, x->u.f >= y->u.f)
    CMP(RN_X_EQ_S, str_eq(x, y))
    CMP(RN_X_NE_S, !str_eq(x, y))
    CMP(RN_X_LT_S, str_cmp(x, y) < 0)
    CMP(RN_X_LE_S, str_cmp(x, y) <= 0)
    CMP(RN_X_GT_S, str_cmp(x, y) > 0)
    CMP(RN_X_GE_S, str_cmp(x, y) >= 0)
    CMP(RN_X_EQ_B, x->u.b == y->u.b)
    CMP(RN_X_NE_B, x->u.b != y->u.b)
    case RN_X_AND: {
        /* false wins over null, which wins over true. */
        const rn_value_t *x = A;
        bool xnull = x->null;
        if (!xnull && !x->u.b) {
            put_bool(out, false);
            return;
        }
        const rn_value_t *y = B;
        if (!y->null && !y->u.b)
            put_bool(out, false);
        else if (xnull || y->null)
            put_null(out);
        else
            put_bool(out, true);
        return;
    }
    case RN_X_OR: {
        /* true wins over null, which wins over false. */
        const rn_value_t *x = A;
        bool xnull = x->null;
        if (!xnull && x->u.b) {
            put_bool(out, true);
            return;
        }
        const rn_value_t *y = B;
        if (!y->null && y->u.b)
            put_bool(out, true);
        else if (xnull || y->null)
            put_null(out);
        else
            put_bool(out, false);
        return;
    }
    case RN_X_NOT: {
        UN(x);
        put_bool(out, !x->u.b);
        return;
    }
    case RN_X_IS_NULL: put_bool(out, A->null); return;
    case RN_X_COALESCE:
        for (uint32_t i = 0; i < n->nargs; i++) {
            const rn_value_t *x = arg(e, e->args[n->a + (int32_t)i], row, arena, &tx);
            if (!x->null) {
                put_copy(out, x);
                return;
            }
        }
        put_null(out);
        return;
    case RN_X_IF: {
        const rn_value_t *c = A;
        put_copy(out, !c->null && c->u.b ? B : arg(e, n->c, row, arena, &ty));
        return;
    }
    case RN_X_LOWER:
    case RN_X_UPPER: {
        UN(x);
        case_fold(x, n->op == RN_X_UPPER, arena, out);
        return;
    }
    case RN_X_LEN: {
        UN(x);
        put_int(out, x->len);
        return;
    }
    case RN_X_CONCAT: concat(e, n, row, arena, out); return;
    case RN_X_CALL: call(e, n, row, arena, out); return;
    case RN_X_SUBSTR: substr(e, n, row, arena, out); return;
    case RN_X_ABS_I: {
        UN(x);
        if (x->u.i == INT64_MIN)
            put_null(out);
        else
            put_int(out, x->u.i < 0 ? -x->u.i : x->u.i);
        return;
    }
    FLOAT_FN(RN_X_ABS_F, fabs)
    FLOAT_FN(RN_X_ROUND, round)
    FLOAT_FN(RN_X_FLOOR, floor)
    FLOAT_FN(RN_X_CEIL, ceil)
    case RN_X_STR_I: {
        UN(x);
        int_to_string(x->u.i, arena, out);
        return;
    }
    case RN_X_STR_F: {
        UN(x);
        float_to_string(x->u.f, arena, out);
        return;
    }
    case RN_X_STR_B: {
        UN(x);
        /* Static bytes outlive any batch, so they need no copy. */
        if (x->u.b)
            put_str(out, "true", 4);
        else
            put_str(out, "false", 5);
        return;
    }
    case RN_X_STR_T: {
        UN(x);
        ts_to_string(x->u.i, arena, out);
        return;
    }
    case RN_X_INT_S: {
        UN(x);
        string_to_int(x, out);
        return;
    }
    case RN_X_INT_F: {
        UN(x);
        float_to_int(x->u.f, out);
        return;
    }
    case RN_X_INT_B: {
        UN(x);
        put_int(out, x->u.b ? 1 : 0);
        return;
    }
    case RN_X_FLT_S: {
        UN(x);
        string_to_float(x, out);
        return;
    }
    case RN_X_FLT_B: {
        UN(x);
        put_float(out, x->u.b ? 1.0 : 0.0);
        return;
    }
    case RN_X_NOPS: break;
    }
    RN_NOTREACHED();
}

rn_value_t
rn__expr_eval_node(const rn_expr_t *e, int32_t i, const rn_value_t *row, rn_arena_t *arena)
{
    rn_value_t v = rn__val_null();
    ev(e, &e->nodes[i], row, arena, &v);
    return v;
}

void
rn__expr_eval(const rn_expr_t *e, const rn_value_t *row, rn_arena_t *arena, rn_value_t *out)
{
    ev(e, &e->nodes[e->root], row, arena, out);
}

/* ---- chunked evaluation ---- */

/* Filters and batch maps evaluate an expression a node at a time over
 * chunks of CHUNK rows instead of a row at a time, so that the cost of
 * dispatch (a call and a switch per node) is paid once per chunk and the
 * work per row is a tight typed loop. Results of leaves are not copied:
 * a field is read in place with the batch's width as stride, a constant
 * with stride 0. Each level keeps two chunk buffers on the stack, so only
 * trees of at most VEC_DEPTH levels go this way; deeper ones (rare) go a
 * row at a time through ev(). Nodes without a chunk loop below (string
 * functions, conversions, plugin calls) are evaluated by ev() for each row
 * of the chunk. */
#define CHUNK 64
#define VEC_DEPTH 8

typedef struct vrows {
    const rn_value_t *rows; /* first row of the chunk */
    uint32_t width;
    uint32_t n; /* rows in the chunk, at most CHUNK */
    rn_arena_t *arena;
} vrows_t;

#define VLOOP2(body)                                                                               \
    for (uint32_t k = 0; k < v->n; k++) {                                                          \
        const rn_value_t *X = &x[k * xs], *Y = &y[k * ys];                                         \
        rn_value_t *O = &buf[k];                                                                   \
        if (X->null | Y->null)                                                                     \
            put_null(O);                                                                           \
        else {                                                                                     \
            body;                                                                                  \
        }                                                                                          \
    }                                                                                              \
    return buf
#define VLOOP1(body)                                                                               \
    for (uint32_t k = 0; k < v->n; k++) {                                                          \
        const rn_value_t *X = &x[k * xs];                                                          \
        rn_value_t *O = &buf[k];                                                                   \
        if (X->null)                                                                               \
            put_null(O);                                                                           \
        else {                                                                                     \
            body;                                                                                  \
        }                                                                                          \
    }                                                                                              \
    return buf
#define VARITH_I(OP, fn)                                                                           \
    case OP:                                                                                       \
        VLOOP2(int64_t r; if (fn(X->u.i, Y->u.i, &r)) put_null(O); else put_int(O, r))
#define VCMP(OP, expr)                                                                             \
    case OP:                                                                                       \
        VLOOP2(put_bool(O, expr))

static bool
vectorized(rn_xop_t op)
{
    return op <= RN_X_NOT || op == RN_X_IS_NULL;
}

static const rn_value_t *
evv_binary(const rn_xnode_t *n, const rn_value_t *x, size_t xs, const rn_value_t *y, size_t ys,
           const vrows_t *v, rn_value_t *buf)
{
    switch ((rn_xop_t)n->op) {
    VARITH_I(RN_X_ADD_I, __builtin_add_overflow);
    VARITH_I(RN_X_SUB_I, __builtin_sub_overflow);
    VARITH_I(RN_X_MUL_I, __builtin_mul_overflow);
    case RN_X_DIV_I:
        VLOOP2(if (Y->u.i == 0 || (Y->u.i == -1 && X->u.i == INT64_MIN)) put_null(O);
               else put_int(O, X->u.i / Y->u.i));
    case RN_X_MOD_I:
        if (ys == 0 && !y->null && y->u.i > 0 && (y->u.i & (y->u.i - 1)) == 0) {
            /* x % 2^k by a mask: value % 2 == 0 is a common filter and a
             * division costs tens of cycles. The sign follows x, as in C. */
            int64_t d = y->u.i, m = d - 1;
            VLOOP1(int64_t r = X->u.i & m; put_int(O, X->u.i < 0 && r != 0 ? r - d : r));
        }
        VLOOP2(if (Y->u.i == 0) put_null(O); else put_int(O, Y->u.i == -1 ? 0 : X->u.i % Y->u.i));
    case RN_X_ADD_F: VLOOP2(put_float(O, X->u.f + Y->u.f));
    case RN_X_SUB_F: VLOOP2(put_float(O, X->u.f - Y->u.f));
    case RN_X_MUL_F: VLOOP2(put_float(O, X->u.f * Y->u.f));
    case RN_X_DIV_F: VLOOP2(if (Y->u.f == 0.0) put_null(O); else put_float(O, X->u.f / Y->u.f));
    VCMP(RN_X_EQ_I, X->u.i == Y->u.i);
    VCMP(RN_X_NE_I, X->u.i != Y->u.i);
    VCMP(RN_X_LT_I, X->u.i < Y->u.i);
    VCMP(RN_X_LE_I, X->u.i <= Y->u.i);
    VCMP(RN_X_GT_I, X->u.i > Y->u.i);
    VCMP(RN_X_GE_I, X->u.i >= Y->u.i);
    VCMP(RN_X_EQ_F, X->u.f == Y->u.f);
    VCMP(RN_X_NE_F, X->u.f != Y->u.f);
    VCMP(RN_X_LT_F, X->u.f < Y->u.f);
    VCMP(RN_X_LE_F, X->u.f <= Y->u.f);
    VCMP(RN_X_GT_F, X->u.f > Y->u.f);
    VCMP(RN_X_GE_F, X->u.f >= Y->u.f);
    VCMP(RN_X_EQ_S, str_eq(X, Y));
    VCMP(RN_X_NE_S, !str_eq(X, Y));
    VCMP(RN_X_LT_S, str_cmp(X, Y) < 0);
    VCMP(RN_X_LE_S, str_cmp(X, Y) <= 0);
    VCMP(RN_X_GT_S, str_cmp(X, Y) > 0);
    VCMP(RN_X_GE_S, str_cmp(X, Y) >= 0);
    VCMP(RN_X_EQ_B, X->u.b == Y->u.b);
    VCMP(RN_X_NE_B, X->u.b != Y->u.b);
    case RN_X_AND:
    case RN_X_OR: {
        /* Both sides are evaluated (nothing here can fault); the result
         * is the three-valued one. */
        bool dominant = n->op == RN_X_OR; /* the value that wins over null */
        for (uint32_t k = 0; k < v->n; k++) {
            const rn_value_t *X = &x[k * xs], *Y = &y[k * ys];
            if ((!X->null && X->u.b == dominant) || (!Y->null && Y->u.b == dominant))
                put_bool(&buf[k], dominant);
            else if (X->null || Y->null)
                put_null(&buf[k]);
            else
                put_bool(&buf[k], !dominant);
        }
        return buf;
    }
    default: break;
    }
    RN_NOTREACHED();
}

/* Evaluates node i over the rows of v. @returns the results, the k-th at
 * [k * *stride]: inside the rows, at the constant, or in buf (CHUNK cells). */
static const rn_value_t *
evv(const rn_expr_t *e, int32_t i, const vrows_t *v, rn_value_t *buf, size_t *stride)
{
    const rn_xnode_t *n = &e->nodes[i];
    rn_value_t lb[CHUNK], rb[CHUNK];
    size_t xs, ys;
    const rn_value_t *x, *y;

    if (n->op == RN_X_FIELD) {
        *stride = v->width;
        return v->rows + n->a;
    }
    if (n->op == RN_X_CONST) {
        *stride = 0;
        return &n->k;
    }
    *stride = 1;
    if (!vectorized((rn_xop_t)n->op)) {
        for (uint32_t k = 0; k < v->n; k++)
            ev(e, n, v->rows + (size_t)k * v->width, v->arena, &buf[k]);
        return buf;
    }
    x = evv(e, n->a, v, lb, &xs);
    switch ((rn_xop_t)n->op) {
    case RN_X_ID:
        for (uint32_t k = 0; k < v->n; k++)
            put_copy(&buf[k], &x[k * xs]);
        return buf;
    case RN_X_I2F: VLOOP1(put_float(O, (double)X->u.i));
    case RN_X_NEG_I: VLOOP1(if (X->u.i == INT64_MIN) put_null(O); else put_int(O, -X->u.i));
    case RN_X_NEG_F: VLOOP1(put_float(O, -X->u.f));
    case RN_X_NOT: VLOOP1(put_bool(O, !X->u.b));
    case RN_X_IS_NULL:
        for (uint32_t k = 0; k < v->n; k++)
            put_bool(&buf[k], x[k * xs].null);
        return buf;
    default: break;
    }
    y = evv(e, n->b, v, rb, &ys);
    return evv_binary(n, x, xs, y, ys, v, buf);
}

/* Calls fn(ctx, first row index, results, stride, count) for each chunk of
 * b's rows. */
typedef void (*chunk_fn)(void *ctx, uint32_t first, const rn_value_t *r, size_t stride,
                         uint32_t n);

static void
eval_chunks(const rn_expr_t *e, const rn_batch_t *b, rn_arena_t *arena, chunk_fn fn, void *ctx)
{
    rn_value_t buf[CHUNK];
    size_t stride;

    if (e->nodes[e->root].depth > VEC_DEPTH) {
        for (uint32_t i = 0; i < b->n; i++) {
            ev(e, &e->nodes[e->root], RN_ROW(b, i), arena, &buf[0]);
            fn(ctx, i, buf, 1, 1);
        }
        return;
    }
    for (uint32_t first = 0; first < b->n; first += CHUNK) {
        vrows_t v = {RN_ROW(b, first), b->width, b->n - first < CHUNK ? b->n - first : CHUNK,
                     arena};
        const rn_value_t *r = evv(e, e->root, &v, buf, &stride);
        fn(ctx, first, r, stride, v.n);
    }
}

typedef struct filter_ctx {
    uint8_t *keep;
    rn_arena_t *scratch; /* NULL when the expression makes no strings */
} filter_ctx_t;

static void
filter_chunk(void *ctx, uint32_t first, const rn_value_t *r, size_t stride, uint32_t n)
{
    filter_ctx_t *fc = ctx;
    uint8_t *keep = fc->keep + first;

    for (uint32_t k = 0; k < n; k++, r += stride)
        keep[k] = !r->null && r->u.b;
    if (fc->scratch != NULL)
        rn__arena_reset(fc->scratch);
}

void
rn__expr_eval_filter(const rn_expr_t *e, const rn_batch_t *b, uint8_t *keep)
{
    filter_ctx_t fc = {keep, NULL};
    rn_arena_t scratch;

    rn_dassert(rn__expr_type(e) == RN_TYPE_BOOL || rn__expr_type(e) == RN_TYPE_NULL);
    if (!e->makes_strings) {
        eval_chunks(e, b, NULL, filter_chunk, &fc);
        return;
    }
    /* Strings made while filtering (lower(name) == 'x') die with their
     * chunk. The filter has no output arena, so it uses a scratch one: one
     * chunk allocation per batch, reused across chunks. */
    rn__arena_init(&scratch);
    fc.scratch = &scratch;
    eval_chunks(e, b, &scratch, filter_chunk, &fc);
    rn__arena_fini(&scratch);
}

typedef struct map_ctx {
    rn_value_t *out;
    size_t stride;
} map_ctx_t;

static void
map_chunk(void *ctx, uint32_t first, const rn_value_t *r, size_t stride, uint32_t n)
{
    map_ctx_t *mc = ctx;
    rn_value_t *o = mc->out + (size_t)first * mc->stride;

    for (uint32_t k = 0; k < n; k++, r += stride, o += mc->stride)
        put_copy(o, r);
}

void
rn__expr_eval_batch(const rn_expr_t *e, const rn_batch_t *b, rn_arena_t *arena, rn_value_t *out,
                    size_t stride)
{
    map_ctx_t mc = {out, stride};
    eval_chunks(e, b, arena, map_chunk, &mc);
}
