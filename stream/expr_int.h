/*
 * stream/expr_int.h: the compiled form of an expression, shared by the
 * parser (expr_parse.c) and the evaluator (expr_eval.c). Private to
 * stream/expr*.c; everyone else goes through stream/expr.h.
 *
 * Design: an expression is one flat array of nodes. Children are indices
 * into that array and always come before their parent, so the array is in
 * post-order and a parent can be folded as soon as it is built. Every
 * operator is specialised at parse time by the types of its operands (ADD_I
 * for int + int, ADD_F for float + float, with an explicit I2F node where an
 * int meets a float), so that evaluation is one switch per node without any
 * type test. Variadic functions (coalesce, concat) keep their arguments as
 * a run of indices in the args array.
 *
 * @thread plan time to build; immutable and shareable afterwards.
 */
#ifndef RN_STREAM_EXPR_INT_H
#define RN_STREAM_EXPR_INT_H

#include "stream/expr.h"

/* Opcodes. The comparison groups keep the order EQ NE LT LE GT GE. */
typedef enum rn_xop {
    RN_X_CONST,   /* k */
    RN_X_FIELD,   /* row[a] */
    RN_X_ID,      /* a, with another static type (to_int of a timestamp) */
    RN_X_I2F,     /* (double)a */
    RN_X_ADD_I,   /* int and timestamp arithmetic, null on overflow */
    RN_X_SUB_I,
    RN_X_MUL_I,
    RN_X_DIV_I,   /* truncating; null on division by zero */
    RN_X_MOD_I,   /* sign of the dividend (C); null on modulo by zero */
    RN_X_NEG_I,
    RN_X_ADD_F,
    RN_X_SUB_F,
    RN_X_MUL_F,
    RN_X_DIV_F,   /* null on division by zero */
    RN_X_NEG_F,
    RN_X_EQ_I,    /* int and timestamp */
    RN_X_NE_I,
    RN_X_LT_I,
    RN_X_LE_I,
    RN_X_GT_I,
    RN_X_GE_I,
    RN_X_EQ_F,
    RN_X_NE_F,
    RN_X_LT_F,
    RN_X_LE_F,
    RN_X_GT_F,
    RN_X_GE_F,
    RN_X_EQ_S,    /* bytewise */
    RN_X_NE_S,
    RN_X_LT_S,
    RN_X_LE_S,
    RN_X_GT_S,
    RN_X_GE_S,
    RN_X_EQ_B,
    RN_X_NE_B,
    RN_X_AND,     /* SQL three-valued logic */
    RN_X_OR,
    RN_X_NOT,
    RN_X_IS_NULL, /* is_null(a): never null */
    RN_X_COALESCE, /* args[a .. a+nargs) */
    RN_X_IF,      /* a ? b : c, null condition taken as false */
    RN_X_LOWER,   /* ASCII only */
    RN_X_UPPER,
    RN_X_LEN,     /* bytes */
    RN_X_CONCAT,  /* args[a .. a+nargs); null when any is null */
    RN_X_SUBSTR,  /* a, b (1-based start), c (length) or -1 */
    RN_X_ABS_I,
    RN_X_ABS_F,
    RN_X_ROUND,   /* float -> float, half away from zero */
    RN_X_FLOOR,
    RN_X_CEIL,
    RN_X_STR_I,   /* to_string */
    RN_X_STR_F,
    RN_X_STR_B,
    RN_X_STR_T,   /* ISO 8601 UTC with milliseconds */
    RN_X_INT_S,   /* to_int */
    RN_X_INT_F,
    RN_X_INT_B,
    RN_X_FLT_S,   /* to_float */
    RN_X_FLT_B,
    RN_X_CALL,    /* a plugin's scalar function fns[b] on args[a .. a+nargs) */
    RN_X_NOPS
} rn_xop_t;

typedef struct rn_xnode {
    uint8_t op;     /* rn_xop_t */
    uint8_t type;   /* rn_type_t of the result */
    uint16_t depth; /* height of the subtree, bounded to keep eval's recursion shallow */
    uint32_t nargs; /* variadic ops: number of args */
    int32_t a, b, c; /* children (node indices, -1 when absent), field position or args start */
    uint32_t off;   /* byte offset in the text, for parse errors */
    rn_value_t k;   /* RN_X_CONST: the value */
} rn_xnode_t;

struct rn_expr {
    rn_xnode_t *nodes; /* owned */
    uint32_t nnodes, capnodes;
    int32_t *args; /* owned */
    uint32_t nargs, capargs;
    int32_t root;
    bool makes_strings; /* some node allocates in the arena when evaluated */
    const struct rn_scalar_fn **fns; /* RN_X_CALL's functions (the registry's); array owned */
    uint32_t nfns;
    rn_arena_t lits;    /* bytes of string literals and folded constants */
};

/* Evaluates node i of e. row may be NULL when no field is reachable from i
 * (constant folding). Strings made go to arena. */
rn_value_t rn__expr_eval_node(const rn_expr_t *e, int32_t i, const rn_value_t *row,
                              rn_arena_t *arena);

#endif
