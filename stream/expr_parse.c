/*
 * stream/expr_parse.c: the expression parser and type checker (grammar in
 * expr.h, node layout in expr_int.h).
 *
 * Design: a hand-written lexer and recursive-descent parser, one function
 * per grammar rule, that builds the node array bottom-up. Each node is type
 * checked as soon as its operands are known, so the first type error is
 * reported at the operator or argument that causes it, with the byte offset
 * of that place. Field names are resolved to positions here, once. Typed
 * operators are chosen here too (ADD_I or ADD_F, with I2F conversions
 * inserted where an int meets a float), and any node whose operands are all
 * constants is evaluated at once and becomes a constant (constant folding),
 * as does any strict operator with a null constant operand. A call of a
 * plugin's scalar function (parse_ext_call) is never folded, volatile or
 * not (RN_FN_VOLATILE needs no test here): its purity is the plugin's
 * word, and a folded string would have to outlive the call's arena.
 *
 * Type rules (null is the type of the literal null and fits anywhere):
 *   + - * /     int,int -> int; int/float mixed -> float;
 *               timestamp +- int -> timestamp; int + timestamp -> timestamp;
 *               timestamp - timestamp -> int
 *   %           int,int -> int
 *   unary -     int, float
 *   == != < <= > >=  int/float mixed, timestamp with timestamp or int,
 *               string with string (bytewise); bool with bool for == != only;
 *               a comparison with the null literal is refused (it would
 *               always be null): is_null(x) is the test for null.
 *   && || !     bool
 * Functions: see the table fns[] and mk_call().
 *
 * @thread plan time. Allocates with rn_x* (expression texts are small).
 */
#include "stream/conf.h"
#include "stream/expr_int.h"
#include "stream/plugin_ext.h"

#include <errno.h>
#include <math.h>
#include <strings.h>

/* Nesting of parentheses, calls and unary operators while parsing, which
 * bounds the parser's recursion. */
#define MAX_NEST 128
/* Height of the node tree, which bounds the evaluator's recursion
 * (a + a + ... nests without parentheses). */
#define MAX_DEPTH 256
#define MAX_ARGS 64

typedef enum tk {
    T_EOF,
    T_INT,
    T_FLOAT,
    T_STR,
    T_IDENT,
    T_LP,
    T_RP,
    T_COMMA,
    T_PLUS, /* T_PLUS .. T_PCT in the order of RN_X_ADD_I .. RN_X_MOD_I */
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PCT,
    T_NOT,
    T_EQ, /* T_EQ .. T_GE in the order of RN_X_EQ_* .. RN_X_GE_* */
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
} tk_t;

typedef struct tok {
    tk_t kind;
    size_t off, len; /* bytes of the token in the text */
    uint64_t u;      /* T_INT: the magnitude, up to 2^63 */
    double f;        /* T_FLOAT */
} tok_t;

typedef struct parser {
    const char *text; /* borrowed, NUL-terminated */
    size_t pos;       /* next byte to lex */
    tok_t tok;        /* current token */
    const rn_schema_t *schema;
    rn_expr_t *e;
    rn_error_t *err;
    size_t erroff;
    bool failed;
    int nest;
} parser_t;

static const char *const op_names[] = {
    [T_PLUS] = "+", [T_MINUS] = "-", [T_STAR] = "*", [T_SLASH] = "/",  [T_PCT] = "%",
    [T_NOT] = "!",  [T_EQ] = "==",   [T_NE] = "!=",  [T_LT] = "<",     [T_LE] = "<=",
    [T_GT] = ">",   [T_GE] = ">=",   [T_AND] = "&&", [T_OR] = "||",
};

#define TY(i) ((rn_type_t)p->e->nodes[(i)].type)

/* Records the first error only: later ones are consequences of it. */
static int32_t RN_PRINTF(3, 4)
fail(parser_t *p, size_t off, const char *fmt, ...)
{
    va_list ap;
    if (p->failed)
        return -1;
    p->failed = true;
    p->erroff = off;
    va_start(ap, fmt);
    rn__verrf(p->err, RN_EINVAL, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- did you mean ---- */

/* The candidate closest to name[0..len), by the job file's rule
 * (rn__did_you_mean), or NULL. @param cands NULL-terminated. */
static const char *
nearest(const char *name, size_t len, const char *const *cands)
{
    char word[65];
    if (len >= sizeof(word))
        return NULL;
    memcpy(word, name, len);
    word[len] = '\0';
    return rn__did_you_mean(word, cands);
}

/* ---- lexer ---- */

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_ident(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && is_digit(c));
}

static bool
lex_number(parser_t *p, size_t i)
{
    const char *t = p->text;
    size_t j = i;
    bool isf = false;

    while (is_digit(t[j]))
        j++;
    if (t[j] == '.') {
        isf = true;
        j++;
        while (is_digit(t[j]))
            j++;
    }
    if ((t[j] == 'e' || t[j] == 'E') &&
        (is_digit(t[j + 1]) || ((t[j + 1] == '+' || t[j + 1] == '-') && is_digit(t[j + 2])))) {
        isf = true;
        j += 2;
        while (is_digit(t[j]))
            j++;
    }
    if (is_ident(t[j], false) || t[j] == '.') {
        while (is_ident(t[j], false) || t[j] == '.')
            j++;
        return fail(p, i, "malformed number '%.*s'", (int)(j - i), t + i), false;
    }
    p->tok.kind = isf ? T_FLOAT : T_INT;
    p->tok.len = j - i;
    p->pos = j;
    if (isf) {
        char *s = rn_xstrndup(t + i, j - i);
        errno = 0;
        p->tok.f = strtod(s, NULL);
        rn_free(s);
        if (errno == ERANGE && isinf(p->tok.f))
            return fail(p, i, "number '%.*s' is out of range", (int)(j - i), t + i), false;
        return true;
    }
    /* Up to 2^63, which only the unary minus accepts (INT64_MIN). */
    for (size_t k = i; k < j; k++) {
        unsigned d = (unsigned)(t[k] - '0');
        if (p->tok.u > ((uint64_t)INT64_MAX + 1 - d) / 10)
            return fail(p, i, "integer %.*s is out of range", (int)(j - i), t + i), false;
        p->tok.u = p->tok.u * 10 + d;
    }
    return true;
}

static bool
lex_string(parser_t *p, size_t i)
{
    const char *t = p->text;
    size_t j = i + 1;

    for (;;) {
        if (t[j] == '\0')
            return fail(p, i, "unterminated string"), false;
        if (t[j] == '\'') {
            if (t[j + 1] != '\'')
                break;
            j++; /* '' is a quote */
        }
        j++;
    }
    p->tok.kind = T_STR;
    p->tok.len = j + 1 - i;
    p->pos = j + 1;
    return true;
}

static bool
lex_punct(parser_t *p, size_t i)
{
    static const struct {
        char s[3];
        tk_t kind;
    } ops[] = {{"==", T_EQ}, {"!=", T_NE},   {"<=", T_LE},    {">=", T_GE},   {"&&", T_AND},
               {"||", T_OR}, {"(", T_LP},    {")", T_RP},     {",", T_COMMA}, {"+", T_PLUS},
               {"-", T_MINUS}, {"*", T_STAR}, {"/", T_SLASH}, {"%", T_PCT},   {"!", T_NOT},
               {"<", T_LT},  {">", T_GT}};
    const char *t = p->text + i;

    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        size_t n = strlen(ops[k].s);
        if (strncmp(t, ops[k].s, n) == 0) {
            p->tok.kind = ops[k].kind;
            p->tok.len = n;
            p->pos = i + n;
            return true;
        }
    }
    switch (t[0]) {
    case '=': return fail(p, i, "unexpected '='; did you mean '=='?"), false;
    case '&': return fail(p, i, "unexpected '&'; did you mean '&&'?"), false;
    case '|': return fail(p, i, "unexpected '|'; did you mean '||'?"), false;
    case '"': return fail(p, i, "strings are quoted with single quotes: 'text'"), false;
    }
    if (t[0] > ' ' && t[0] < 127)
        return fail(p, i, "unexpected character '%c'", t[0]), false;
    return fail(p, i, "unexpected byte 0x%02x", (unsigned)(unsigned char)t[0]), false;
}

/* Reads the next token into p->tok. @returns false on a lexical error. */
static bool
lex(parser_t *p)
{
    const char *t = p->text;
    size_t i = p->pos;

    while (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')
        i++;
    memset(&p->tok, 0, sizeof(p->tok));
    p->tok.off = i;
    if (t[i] == '\0') {
        p->tok.kind = T_EOF;
        p->pos = i;
        return true;
    }
    if (is_digit(t[i]) || (t[i] == '.' && is_digit(t[i + 1])))
        return lex_number(p, i);
    if (t[i] == '\'')
        return lex_string(p, i);
    if (is_ident(t[i], true)) {
        size_t j = i + 1;
        while (is_ident(t[j], false))
            j++;
        p->tok.kind = T_IDENT;
        p->tok.len = j - i;
        p->pos = j;
        return true;
    }
    return lex_punct(p, i);
}

/* ---- nodes ---- */

static int32_t
node_add(parser_t *p, rn_xop_t op, rn_type_t type, int32_t a, int32_t b, int32_t c, size_t off)
{
    rn_expr_t *e = p->e;
    if (e->nnodes == e->capnodes) {
        e->capnodes = e->capnodes ? e->capnodes * 2 : 16;
        e->nodes = rn_xrealloc(e->nodes, e->capnodes * sizeof(*e->nodes));
    }
    rn_xnode_t *n = &e->nodes[e->nnodes];
    memset(n, 0, sizeof(*n));
    n->op = (uint8_t)op;
    n->type = (uint8_t)type;
    n->depth = 1;
    n->a = a;
    n->b = b;
    n->c = c;
    n->off = off > UINT32_MAX ? UINT32_MAX : (uint32_t)off;
    return (int32_t)e->nnodes++;
}

static int32_t
mk_const(parser_t *p, rn_type_t type, rn_value_t v, size_t off)
{
    int32_t i = node_add(p, RN_X_CONST, type, -1, -1, -1, off);
    p->e->nodes[i].k = v;
    return i;
}

static bool
is_variadic(rn_xop_t op)
{
    return op == RN_X_COALESCE || op == RN_X_CONCAT || op == RN_X_CALL;
}

/* Operators that give null when any operand is null. */
static bool
is_strict(rn_xop_t op)
{
    return op != RN_X_AND && op != RN_X_OR && op != RN_X_IS_NULL && op != RN_X_COALESCE &&
           op != RN_X_IF;
}

/* Completes node i: its depth, and folding when its operands allow. */
static int32_t
finish(parser_t *p, int32_t i)
{
    rn_expr_t *e = p->e;
    rn_xnode_t *n = &e->nodes[i];
    int32_t kids[MAX_ARGS];
    uint32_t nk = 0, depth = 0;
    bool all_const = true, some_null = false;

    if (is_variadic((rn_xop_t)n->op)) {
        for (uint32_t k = 0; k < n->nargs; k++)
            kids[nk++] = e->args[n->a + (int32_t)k];
    } else {
        int32_t abc[3] = {n->a, n->b, n->c};
        for (int k = 0; k < 3; k++)
            if (abc[k] >= 0)
                kids[nk++] = abc[k];
    }
    for (uint32_t k = 0; k < nk; k++) {
        const rn_xnode_t *c = &e->nodes[kids[k]];
        if (c->depth > depth)
            depth = c->depth;
        if (c->op != RN_X_CONST)
            all_const = false;
        else if (c->k.null)
            some_null = true;
    }
    n->depth = (uint16_t)(depth + 1 > MAX_DEPTH + 1 ? MAX_DEPTH + 1 : depth + 1);
    if (n->depth > MAX_DEPTH)
        return fail(p, n->off, "expression nested too deeply (more than %d levels)", MAX_DEPTH);
    /* A plugin's function is never folded: it may not be pure, and its
     * strings would have to outlive the call's arena. */
    if (n->op == RN_X_CALL)
        return i;
    if (some_null && is_strict((rn_xop_t)n->op)) {
        n->k = rn__val_null();
    } else if (all_const) {
        /* Strings made by folding live as long as the expression. */
        n->k = rn__expr_eval_node(e, i, NULL, &e->lits);
    } else {
        return i;
    }
    n->op = RN_X_CONST;
    n->a = n->b = n->c = -1;
    n->nargs = 0;
    n->depth = 1;
    return i;
}

static int32_t
mk1(parser_t *p, rn_xop_t op, rn_type_t type, int32_t a, size_t off)
{
    return finish(p, node_add(p, op, type, a, -1, -1, off));
}

static int32_t
mk2(parser_t *p, rn_xop_t op, rn_type_t type, int32_t a, int32_t b, size_t off)
{
    return finish(p, node_add(p, op, type, a, b, -1, off));
}

static int32_t
as_float(parser_t *p, int32_t i)
{
    if (TY(i) != RN_TYPE_INT)
        return i;
    return mk1(p, RN_X_I2F, RN_TYPE_FLOAT, i, p->e->nodes[i].off);
}

static bool
is_num(rn_type_t t)
{
    return t == RN_TYPE_INT || t == RN_TYPE_FLOAT;
}

static bool
is_intlike(rn_type_t t)
{
    return t == RN_TYPE_INT || t == RN_TYPE_TIMESTAMP;
}

static bool
fits(rn_type_t t, rn_type_t want)
{
    return t == want || t == RN_TYPE_NULL;
}

/* + - * / %. A null operand takes the other operand's type. */
static int32_t
mk_arith(parser_t *p, tk_t op, int32_t l, int32_t r, size_t off)
{
    rn_type_t tl = TY(l), tr = TY(r);
    rn_type_t a = tl == RN_TYPE_NULL ? tr : tl;
    rn_type_t b = tr == RN_TYPE_NULL ? tl : tr;
    rn_type_t rt;
    bool flt;

    if (a == RN_TYPE_NULL)
        rt = RN_TYPE_NULL;
    else if (a == RN_TYPE_INT && b == RN_TYPE_INT)
        rt = RN_TYPE_INT;
    else if (op != T_PCT && is_num(a) && is_num(b))
        rt = RN_TYPE_FLOAT;
    else if (a == RN_TYPE_TIMESTAMP && b == RN_TYPE_INT && (op == T_PLUS || op == T_MINUS))
        rt = RN_TYPE_TIMESTAMP;
    else if (a == RN_TYPE_INT && b == RN_TYPE_TIMESTAMP && op == T_PLUS)
        rt = RN_TYPE_TIMESTAMP;
    else if (a == RN_TYPE_TIMESTAMP && b == RN_TYPE_TIMESTAMP && op == T_MINUS)
        rt = RN_TYPE_INT;
    else
        return fail(p, off, "operator '%s' cannot combine %s and %s%s", op_names[op],
                    rn_type_name(tl), rn_type_name(tr),
                    op == T_PLUS && tl == RN_TYPE_STRING && tr == RN_TYPE_STRING ? "; use concat()"
                                                                                : "");
    flt = rt == RN_TYPE_FLOAT;
    if (flt) {
        if ((l = as_float(p, l)) < 0 || (r = as_float(p, r)) < 0)
            return -1;
        return mk2(p, (rn_xop_t)(RN_X_ADD_F + (op - T_PLUS)), rt, l, r, off);
    }
    return mk2(p, (rn_xop_t)(RN_X_ADD_I + (op - T_PLUS)), rt, l, r, off);
}

static int32_t
mk_cmp(parser_t *p, tk_t op, int32_t l, int32_t r, size_t off)
{
    rn_type_t tl = TY(l), tr = TY(r);
    int k = (int)(op - T_EQ);

    if (tl == RN_TYPE_NULL || tr == RN_TYPE_NULL)
        return fail(p, off, "comparison with null is always null; use is_null(x)");
    if (is_intlike(tl) && is_intlike(tr))
        return mk2(p, (rn_xop_t)(RN_X_EQ_I + k), RN_TYPE_BOOL, l, r, off);
    if (is_num(tl) && is_num(tr)) {
        if ((l = as_float(p, l)) < 0 || (r = as_float(p, r)) < 0)
            return -1;
        return mk2(p, (rn_xop_t)(RN_X_EQ_F + k), RN_TYPE_BOOL, l, r, off);
    }
    if (tl == RN_TYPE_STRING && tr == RN_TYPE_STRING)
        return mk2(p, (rn_xop_t)(RN_X_EQ_S + k), RN_TYPE_BOOL, l, r, off);
    if (tl == RN_TYPE_BOOL && tr == RN_TYPE_BOOL && (op == T_EQ || op == T_NE))
        return mk2(p, (rn_xop_t)(RN_X_EQ_B + k), RN_TYPE_BOOL, l, r, off);
    return fail(p, off, "operator '%s' cannot compare %s and %s", op_names[op], rn_type_name(tl),
                rn_type_name(tr));
}

static int32_t
mk_logic(parser_t *p, tk_t op, int32_t l, int32_t r, size_t off)
{
    if (!fits(TY(l), RN_TYPE_BOOL) || !fits(TY(r), RN_TYPE_BOOL))
        return fail(p, off, "operator '%s' needs bool operands, got %s and %s", op_names[op],
                    rn_type_name(TY(l)), rn_type_name(TY(r)));
    return mk2(p, op == T_AND ? RN_X_AND : RN_X_OR, RN_TYPE_BOOL, l, r, off);
}

/* ---- functions ---- */

typedef enum fid {
    F_ABS,
    F_CEIL,
    F_COALESCE,
    F_CONCAT,
    F_FLOOR,
    F_IF,
    F_IS_NULL,
    F_LEN,
    F_LOWER,
    F_ROUND,
    F_SUBSTR,
    F_TO_FLOAT,
    F_TO_INT,
    F_TO_STRING,
    F_TO_TIMESTAMP,
    F_UPPER,
    F_COUNT
} fid_t;

/* Indexed by fid_t; max -1 is any number. */
static const struct fn {
    const char *name;
    int min, max;
} fns[F_COUNT] = {
    [F_ABS] = {"abs", 1, 1},
    [F_CEIL] = {"ceil", 1, 1},
    [F_COALESCE] = {"coalesce", 1, -1},
    [F_CONCAT] = {"concat", 1, -1},
    [F_FLOOR] = {"floor", 1, 1},
    [F_IF] = {"if", 3, 3},
    [F_IS_NULL] = {"is_null", 1, 1},
    [F_LEN] = {"len", 1, 1},
    [F_LOWER] = {"lower", 1, 1},
    [F_ROUND] = {"round", 1, 1},
    [F_SUBSTR] = {"substr", 2, 3},
    [F_TO_FLOAT] = {"to_float", 1, 1},
    [F_TO_INT] = {"to_int", 1, 1},
    [F_TO_STRING] = {"to_string", 1, 1},
    [F_TO_TIMESTAMP] = {"to_timestamp", 1, 1},
    [F_UPPER] = {"upper", 1, 1},
};

static int
fn_find(const char *name, size_t len)
{
    for (int f = 0; f < F_COUNT; f++)
        if (strlen(fns[f].name) == len && memcmp(fns[f].name, name, len) == 0)
            return f;
    return -1;
}

bool
rn__expr_fn_builtin(const char *name)
{
    return fn_find(name, strlen(name)) >= 0;
}

/* The arguments of one call while it is checked. */
typedef struct call {
    fid_t f;
    size_t off; /* of the function's name */
    int n;
    int32_t args[MAX_ARGS];
    size_t argoff[MAX_ARGS];
} call_t;

static int32_t
arg_fail(parser_t *p, const call_t *c, int k, const char *want)
{
    return fail(p, c->argoff[k], "function '%s': argument %d must be %s, got %s", fns[c->f].name,
                k + 1, want, rn_type_name(TY(c->args[k])));
}

/* Gives args[first ..] one type (int and float mixed make float; nulls fit
 * anything). @returns false after an error. */
static bool
unify(parser_t *p, call_t *c, int first, rn_type_t *out)
{
    rn_type_t t = RN_TYPE_NULL;
    int tk = -1;

    for (int k = first; k < c->n; k++) {
        rn_type_t ak = TY(c->args[k]);
        if (ak == RN_TYPE_NULL || ak == t)
            continue;
        if (t == RN_TYPE_NULL) {
            t = ak;
            tk = k;
        } else if (is_num(t) && is_num(ak)) {
            t = RN_TYPE_FLOAT;
        } else {
            fail(p, c->argoff[k], "function '%s': argument %d is %s but argument %d is %s",
                 fns[c->f].name, k + 1, rn_type_name(ak), tk + 1, rn_type_name(t));
            return false;
        }
    }
    for (int k = first; k < c->n && t == RN_TYPE_FLOAT; k++)
        if ((c->args[k] = as_float(p, c->args[k])) < 0)
            return false;
    *out = t;
    return true;
}

static int32_t
mk_variadic(parser_t *p, const call_t *c, rn_xop_t op, rn_type_t type)
{
    rn_expr_t *e = p->e;
    if (e->nargs + (uint32_t)c->n > e->capargs) {
        while (e->nargs + (uint32_t)c->n > e->capargs)
            e->capargs = e->capargs ? e->capargs * 2 : 16;
        e->args = rn_xrealloc(e->args, e->capargs * sizeof(*e->args));
    }
    int32_t start = (int32_t)e->nargs;
    memcpy(e->args + start, c->args, (size_t)c->n * sizeof(int32_t));
    e->nargs += (uint32_t)c->n;
    int32_t i = node_add(p, op, type, start, -1, -1, c->off);
    e->nodes[i].nargs = (uint32_t)c->n;
    return finish(p, i);
}

/* Conversions: to_string, to_int, to_float, to_timestamp. */
static int32_t
mk_convert(parser_t *p, call_t *c)
{
    static const struct {
        rn_type_t out;
        const char *want;
        int8_t op[6]; /* by argument type; -1: identity, -2: refused */
    } conv[] = {
        [F_TO_STRING] = {RN_TYPE_STRING, "", {RN_X_ID, -1, RN_X_STR_I, RN_X_STR_F, RN_X_STR_B,
                                              RN_X_STR_T}},
        [F_TO_INT] = {RN_TYPE_INT, "", {RN_X_ID, RN_X_INT_S, -1, RN_X_INT_F, RN_X_INT_B, RN_X_ID}},
        [F_TO_FLOAT] = {RN_TYPE_FLOAT, "", {RN_X_ID, RN_X_FLT_S, RN_X_I2F, -1, RN_X_FLT_B,
                                            RN_X_I2F}},
        [F_TO_TIMESTAMP] = {RN_TYPE_TIMESTAMP, "int or timestamp", {RN_X_ID, -2, RN_X_ID, -2, -2,
                                                                   -1}},
    };
    rn_type_t t = TY(c->args[0]);
    int op = conv[c->f].op[t];

    if (op == -1)
        return c->args[0];
    if (op == -2)
        return arg_fail(p, c, 0, conv[c->f].want);
    return mk1(p, (rn_xop_t)op, conv[c->f].out, c->args[0], c->off);
}

/* Functions of one argument of a fixed type. */
static int32_t
mk_simple(parser_t *p, call_t *c)
{
    int32_t a = c->args[0];
    rn_type_t t = TY(a);

    switch (c->f) {
    case F_LOWER:
    case F_UPPER:
    case F_LEN:
        if (!fits(t, RN_TYPE_STRING))
            return arg_fail(p, c, 0, "string");
        if (c->f == F_LEN)
            return mk1(p, RN_X_LEN, RN_TYPE_INT, a, c->off);
        return mk1(p, c->f == F_LOWER ? RN_X_LOWER : RN_X_UPPER, RN_TYPE_STRING, a, c->off);
    case F_ABS:
        if (t != RN_TYPE_FLOAT && !fits(t, RN_TYPE_INT))
            return arg_fail(p, c, 0, "int or float");
        return mk1(p, t == RN_TYPE_FLOAT ? RN_X_ABS_F : RN_X_ABS_I, t, a, c->off);
    case F_ROUND:
    case F_FLOOR:
    case F_CEIL:
        /* The result has the argument's type: rounding an int is the int. */
        if (t == RN_TYPE_INT)
            return a;
        if (!fits(t, RN_TYPE_FLOAT))
            return arg_fail(p, c, 0, "float or int");
        return mk1(p, c->f == F_ROUND ? RN_X_ROUND : c->f == F_FLOOR ? RN_X_FLOOR : RN_X_CEIL, t,
                   a, c->off);
    case F_IS_NULL: return mk1(p, RN_X_IS_NULL, RN_TYPE_BOOL, a, c->off);
    default: return mk_convert(p, c);
    }
}

static int32_t
mk_call(parser_t *p, call_t *c)
{
    const struct fn *fn = &fns[c->f];
    rn_type_t t;

    if (c->n < fn->min || (fn->max >= 0 && c->n > fn->max)) {
        if (fn->max < 0)
            return fail(p, c->off, "function '%s' takes at least %d argument%s, got %d", fn->name,
                        fn->min, fn->min == 1 ? "" : "s", c->n);
        if (fn->min == fn->max)
            return fail(p, c->off, "function '%s' takes %d argument%s, got %d", fn->name, fn->min,
                        fn->min == 1 ? "" : "s", c->n);
        return fail(p, c->off, "function '%s' takes %d to %d arguments, got %d", fn->name, fn->min,
                    fn->max, c->n);
    }
    switch (c->f) {
    case F_COALESCE:
        if (!unify(p, c, 0, &t))
            return -1;
        return mk_variadic(p, c, RN_X_COALESCE, t);
    case F_CONCAT:
        for (int k = 0; k < c->n; k++)
            if (!fits(TY(c->args[k]), RN_TYPE_STRING))
                return arg_fail(p, c, k, "string");
        return mk_variadic(p, c, RN_X_CONCAT, RN_TYPE_STRING);
    case F_IF:
        if (!fits(TY(c->args[0]), RN_TYPE_BOOL))
            return arg_fail(p, c, 0, "bool");
        if (!unify(p, c, 1, &t))
            return -1;
        return finish(p, node_add(p, RN_X_IF, t, c->args[0], c->args[1], c->args[2], c->off));
    case F_SUBSTR:
        if (!fits(TY(c->args[0]), RN_TYPE_STRING))
            return arg_fail(p, c, 0, "string");
        for (int k = 1; k < c->n; k++)
            if (!fits(TY(c->args[k]), RN_TYPE_INT))
                return arg_fail(p, c, k, "int");
        return finish(p, node_add(p, RN_X_SUBSTR, RN_TYPE_STRING, c->args[0], c->args[1],
                                  c->n == 3 ? c->args[2] : -1, c->off));
    default: return mk_simple(p, c);
    }
}

/* ---- parser ---- */

static int32_t parse_expr(parser_t *p);

static bool
enter(parser_t *p)
{
    if (++p->nest > MAX_NEST) {
        fail(p, p->tok.off, "expression nested too deeply (more than %d levels)", MAX_NEST);
        return false;
    }
    return true;
}

static bool
word_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* A call of a plugin's scalar function (the current token is the '(');
 * checked by its own plan(). */
static int32_t
parse_ext_call(parser_t *p, size_t off, const rn_scalar_fn_t *fn)
{
    rn_expr_t *e = p->e;
    int32_t args[MAX_ARGS];
    rn_type_t types[MAX_ARGS];
    int n = 0;

    if (!lex(p))
        return -1;
    while (p->tok.kind != T_RP || n > 0) {
        if (n == MAX_ARGS)
            return fail(p, p->tok.off, "too many arguments to '%s' (at most %d)", fn->name,
                        MAX_ARGS);
        if ((args[n] = parse_expr(p)) < 0)
            return -1;
        types[n] = TY(args[n]);
        n++;
        if (p->tok.kind == T_RP)
            break;
        if (p->tok.kind != T_COMMA)
            return fail(p, p->tok.off, "expected ',' or ')' in call to '%s'", fn->name);
        if (!lex(p))
            return -1;
    }
    if (!lex(p))
        return -1;
    if (n < fn->min_args || (fn->max_args >= 0 && n > fn->max_args)) {
        if (fn->max_args < 0)
            return fail(p, off, "function '%s' takes at least %d argument%s, got %d", fn->name,
                        fn->min_args, fn->min_args == 1 ? "" : "s", n);
        if (fn->min_args == fn->max_args)
            return fail(p, off, "function '%s' takes %d argument%s, got %d", fn->name,
                        fn->min_args, fn->min_args == 1 ? "" : "s", n);
        return fail(p, off, "function '%s' takes %d to %d arguments, got %d", fn->name,
                    fn->min_args, fn->max_args, n);
    }
    rn_type_t ret = RN_TYPE_NULL;
    rn_error_t perr = RN_ERROR_INIT;
    if (fn->plan(types, n, &ret, &perr) != RN_OK)
        return fail(p, off, "function '%s': %s", fn->name,
                    perr.msg[0] ? perr.msg : "its plan refused the arguments");
    if (ret < RN_TYPE_STRING || ret > RN_TYPE_TIMESTAMP)
        return fail(p, off, "function '%s': its plan gave no result type", fn->name);

    e->fns = rn_xrealloc(e->fns, (e->nfns + 1) * sizeof(*e->fns));
    int32_t fi = (int32_t)e->nfns;
    e->fns[e->nfns++] = fn;
    if (e->nargs + (uint32_t)n > e->capargs) {
        while (e->nargs + (uint32_t)n > e->capargs)
            e->capargs = e->capargs ? e->capargs * 2 : 16;
        e->args = rn_xrealloc(e->args, e->capargs * sizeof(*e->args));
    }
    int32_t start = (int32_t)e->nargs;
    memcpy(e->args + start, args, (size_t)n * sizeof(int32_t));
    e->nargs += (uint32_t)n;
    int32_t i = node_add(p, RN_X_CALL, ret, start, fi, -1, off);
    e->nodes[i].nargs = (uint32_t)n;
    return finish(p, i);
}

/* Refuses a call of a function that is neither built in nor registered:
 * the nearest name of either kind, and the plugins' functions (which the
 * user may not know are loaded, or not). */
static int32_t
unknown_fn(parser_t *p, size_t off, size_t len)
{
    const char *name = p->text + off;
    char more[512];
    const char *names[F_COUNT + 1 + 64];
    int n = 0;

    for (int k = 0; k < F_COUNT; k++)
        names[n++] = fns[k].name;
    rn__ext_names(RN_EXT_SCALAR, more, sizeof(more));
    /* "a, b, c" into candidates, on a copy: more is printed whole. */
    char split[sizeof(more)];
    n += (int)rn__ext_names_split(more, split, sizeof(split), names + n,
                                  sizeof(names) / sizeof(names[0]) - 1 - (size_t)n);
    names[n] = NULL;
    const char *best = nearest(name, len, names);
    return fail(p, off, "unknown function '%.*s'%s%s%s%s%s%s", (int)len, name,
                best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "",
                more[0] ? " (functions from plugins: " : "", more, more[0] ? ")" : "");
}

/* The current token is the '(' after the function's name. */
static int32_t
parse_call(parser_t *p, size_t off, size_t len)
{
    const char *name = p->text + off;
    call_t c;
    int f = fn_find(name, len);
    const rn_scalar_fn_t *xf = f < 0 ? rn__ext_scalar(name, len) : NULL;

    if (xf != NULL)
        return parse_ext_call(p, off, xf);
    if (f < 0)
        return unknown_fn(p, off, len);
    c.f = (fid_t)f;
    c.off = off;
    c.n = 0;
    if (!lex(p))
        return -1;
    while (p->tok.kind != T_RP || c.n > 0) {
        if (c.n == MAX_ARGS)
            return fail(p, p->tok.off, "too many arguments to '%s' (at most %d)", fns[f].name,
                        MAX_ARGS);
        c.argoff[c.n] = p->tok.off;
        if ((c.args[c.n] = parse_expr(p)) < 0)
            return -1;
        c.n++;
        if (p->tok.kind == T_RP)
            break;
        if (p->tok.kind != T_COMMA)
            return fail(p, p->tok.off, "expected ',' or ')' in call to '%s'", fns[f].name);
        if (!lex(p))
            return -1;
    }
    if (!lex(p))
        return -1;
    return mk_call(p, &c);
}

static int32_t
parse_field(parser_t *p, size_t off, size_t len)
{
    const char *name = p->text + off;
    const rn_schema_t *s = p->schema;

    for (uint32_t k = 0; k < s->nfields; k++) {
        const rn_field_t *fd = &s->fields[k];
        if (strlen(fd->name) == len && memcmp(fd->name, name, len) == 0)
            return node_add(p, RN_X_FIELD, fd->type, (int32_t)k, -1, -1, off);
    }
    const char **names = rn_xcalloc(s->nfields + 1, sizeof(char *));
    for (uint32_t k = 0; k < s->nfields; k++)
        names[k] = s->fields[k].name;
    const char *best = nearest(name, len, names);
    rn_free(names);
    if (best != NULL)
        return fail(p, off, "unknown field '%.*s'; did you mean '%s'?", (int)len, name, best);
    if (word_is(name, len, "and") || word_is(name, len, "or") || word_is(name, len, "not"))
        return fail(p, off, "unknown field '%.*s'; use '%s' for %.*s", (int)len, name,
                    word_is(name, len, "and") ? "&&" : word_is(name, len, "or") ? "||" : "!",
                    (int)len, name);
    if (fn_find(name, len) >= 0)
        return fail(p, off, "unknown field '%.*s'; to call the function write %.*s(...)", (int)len,
                    name, (int)len, name);
    return fail(p, off, "unknown field '%.*s'", (int)len, name);
}

static int32_t
parse_ident(parser_t *p)
{
    size_t off = p->tok.off, len = p->tok.len;
    const char *s = p->text + off;

    if (!lex(p))
        return -1;
    if (p->tok.kind == T_LP)
        return parse_call(p, off, len);
    if (word_is(s, len, "true") || word_is(s, len, "false"))
        return mk_const(p, RN_TYPE_BOOL, rn__val_bool(s[0] == 't' || s[0] == 'T'), off);
    if (word_is(s, len, "null"))
        return mk_const(p, RN_TYPE_NULL, rn__val_null(), off);
    return parse_field(p, off, len);
}

/* 'it''s' -> it's, kept in the expression's arena. */
static int32_t
parse_string(parser_t *p)
{
    const char *src = p->text + p->tok.off + 1;
    size_t n = p->tok.len - 2, len = 0, off = p->tok.off;
    char *dst = rn__arena_alloc(&p->e->lits, n + 1);

    for (size_t k = 0; k < n; k++) {
        dst[len++] = src[k];
        if (src[k] == '\'')
            k++;
    }
    dst[len] = '\0';
    if (!lex(p))
        return -1;
    return mk_const(p, RN_TYPE_STRING, rn__val_str(dst, (uint32_t)len), off);
}

static int32_t
parse_primary(parser_t *p)
{
    tok_t t = p->tok;
    int32_t x;

    switch (t.kind) {
    case T_INT:
        if (t.u > INT64_MAX)
            return fail(p, t.off, "integer %.*s is out of range", (int)t.len, p->text + t.off);
        if (!lex(p))
            return -1;
        return mk_const(p, RN_TYPE_INT, rn__val_int((int64_t)t.u), t.off);
    case T_FLOAT:
        if (!lex(p))
            return -1;
        return mk_const(p, RN_TYPE_FLOAT, rn__val_float(t.f), t.off);
    case T_STR: return parse_string(p);
    case T_IDENT: return parse_ident(p);
    case T_LP:
        if (!lex(p) || (x = parse_expr(p)) < 0)
            return -1;
        if (p->tok.kind != T_RP)
            return fail(p, p->tok.off, "expected ')'");
        return lex(p) ? x : -1;
    case T_EOF: return fail(p, t.off, "unexpected end of expression");
    default: return fail(p, t.off, "unexpected '%.*s'", (int)t.len, p->text + t.off);
    }
}

static int32_t
parse_unary(parser_t *p)
{
    size_t off = p->tok.off;
    int32_t x;
    rn_type_t t;

    if (p->tok.kind != T_MINUS)
        return parse_primary(p);
    if (!lex(p))
        return -1;
    if (p->tok.kind == T_INT && p->tok.u == (uint64_t)INT64_MAX + 1) {
        /* -9223372036854775808: the one literal whose magnitude is not an int64. */
        return lex(p) ? mk_const(p, RN_TYPE_INT, rn__val_int(INT64_MIN), off) : -1;
    }
    if (!enter(p) || (x = parse_unary(p)) < 0)
        return -1;
    p->nest--;
    t = TY(x);
    if (t != RN_TYPE_INT && t != RN_TYPE_FLOAT && t != RN_TYPE_NULL)
        return fail(p, off, "operator '-' cannot be applied to %s", rn_type_name(t));
    return mk1(p, t == RN_TYPE_FLOAT ? RN_X_NEG_F : RN_X_NEG_I, t, x, off);
}

static int32_t
parse_mul(parser_t *p)
{
    int32_t l = parse_unary(p), r;

    while (l >= 0 && (p->tok.kind == T_STAR || p->tok.kind == T_SLASH || p->tok.kind == T_PCT)) {
        tk_t op = p->tok.kind;
        size_t off = p->tok.off;
        if (!lex(p) || (r = parse_unary(p)) < 0)
            return -1;
        l = mk_arith(p, op, l, r, off);
    }
    return l;
}

static int32_t
parse_add(parser_t *p)
{
    int32_t l = parse_mul(p), r;

    while (l >= 0 && (p->tok.kind == T_PLUS || p->tok.kind == T_MINUS)) {
        tk_t op = p->tok.kind;
        size_t off = p->tok.off;
        if (!lex(p) || (r = parse_mul(p)) < 0)
            return -1;
        l = mk_arith(p, op, l, r, off);
    }
    return l;
}

static bool
is_cmp(tk_t k)
{
    return k >= T_EQ && k <= T_GE;
}

static int32_t
parse_cmp(parser_t *p)
{
    int32_t l = parse_add(p), r;

    if (l < 0 || !is_cmp(p->tok.kind))
        return l;
    tk_t op = p->tok.kind;
    size_t off = p->tok.off;
    if (!lex(p) || (r = parse_add(p)) < 0)
        return -1;
    if (is_cmp(p->tok.kind))
        return fail(p, p->tok.off, "comparisons cannot be chained; combine them with &&");
    return mk_cmp(p, op, l, r, off);
}

static int32_t
parse_not(parser_t *p)
{
    size_t off = p->tok.off;
    int32_t x;

    if (p->tok.kind != T_NOT)
        return parse_cmp(p);
    if (!enter(p) || !lex(p) || (x = parse_not(p)) < 0)
        return -1;
    p->nest--;
    if (!fits(TY(x), RN_TYPE_BOOL))
        return fail(p, off, "operator '!' needs a bool operand, got %s", rn_type_name(TY(x)));
    return mk1(p, RN_X_NOT, RN_TYPE_BOOL, x, off);
}

static int32_t
parse_and(parser_t *p)
{
    int32_t l = parse_not(p), r;

    while (l >= 0 && p->tok.kind == T_AND) {
        size_t off = p->tok.off;
        if (!lex(p) || (r = parse_not(p)) < 0)
            return -1;
        l = mk_logic(p, T_AND, l, r, off);
    }
    return l;
}

static int32_t
parse_or(parser_t *p)
{
    int32_t l = parse_and(p), r;

    while (l >= 0 && p->tok.kind == T_OR) {
        size_t off = p->tok.off;
        if (!lex(p) || (r = parse_and(p)) < 0)
            return -1;
        l = mk_logic(p, T_OR, l, r, off);
    }
    return l;
}

static int32_t
parse_expr(parser_t *p)
{
    int32_t x;

    if (!enter(p))
        return -1;
    x = parse_or(p);
    p->nest--;
    return x;
}

/* After a whole expression, anything but the end is a mistake. */
static int32_t
trailing(parser_t *p)
{
    const tok_t *t = &p->tok;
    const char *s = p->text + t->off;

    if (t->kind == T_RP)
        return fail(p, t->off, "unmatched ')'");
    if (t->kind == T_IDENT && (word_is(s, t->len, "and") || word_is(s, t->len, "or")))
        return fail(p, t->off, "unexpected '%.*s'; use '%s'", (int)t->len, s,
                    word_is(s, t->len, "and") ? "&&" : "||");
    return fail(p, t->off, "unexpected '%.*s'", (int)(t->len > 32 ? 32 : t->len), s);
}

rn_expr_t *
rn__expr_parse(const char *text, const rn_schema_t *schema, size_t *erroff, rn_error_t *err)
{
    parser_t p;
    rn_expr_t *e = rn_xcalloc(1, sizeof(*e));
    int32_t root = -1;

    memset(&p, 0, sizeof(p));
    p.text = text;
    p.schema = schema;
    p.e = e;
    p.err = err;
    rn__arena_init(&e->lits);
    if (lex(&p)) {
        if (p.tok.kind == T_EOF)
            fail(&p, p.tok.off, "empty expression");
        else if ((root = parse_expr(&p)) >= 0 && p.tok.kind != T_EOF)
            root = trailing(&p);
    }
    if (root < 0 || p.failed) {
        if (erroff != NULL)
            *erroff = p.erroff;
        rn__expr_destroy(e);
        return NULL;
    }
    e->root = root;
    for (uint32_t k = 0; k < e->nnodes; k++) {
        switch ((rn_xop_t)e->nodes[k].op) {
        case RN_X_LOWER:
        case RN_X_UPPER:
        case RN_X_CONCAT:
        case RN_X_SUBSTR:
        case RN_X_STR_I:
        case RN_X_STR_F:
        case RN_X_STR_T: e->makes_strings = true; break;
        case RN_X_CALL:
            /* Whatever its type: eval may take scratch from rn_fn_alloc,
             * which needs an arena (a filter's is made for makes_strings). */
            e->makes_strings = true;
            break;
        default: break;
        }
    }
    return e;
}

void
rn__expr_destroy(rn_expr_t *e)
{
    if (e == NULL)
        return;
    rn_free(e->nodes);
    rn_free(e->args);
    rn_free(e->fns);
    rn__arena_fini(&e->lits);
    rn_free(e);
}

rn_type_t
rn__expr_type(const rn_expr_t *e)
{
    return (rn_type_t)e->nodes[e->root].type;
}

int
rn__expr_field(const rn_expr_t *e)
{
    return e->nodes[e->root].op == RN_X_FIELD ? e->nodes[e->root].a : -1;
}
