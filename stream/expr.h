/*
 * stream/expr.h: typed expressions of job files (filter `where`, map
 * `select`).
 *
 * Grammar (lowest precedence first):
 *   expr    := or
 *   or      := and ( '||' and )*
 *   and     := not ( '&&' not )*
 *   not     := '!' not | cmp
 *   cmp     := add ( ('=='|'!='|'<'|'<='|'>'|'>=') add )?
 *   add     := mul ( ('+'|'-') mul )*
 *   mul     := unary ( ('*'|'/'|'%') unary )*
 *   unary   := '-' unary | primary
 *   primary := INT | FLOAT | STRING ('...' with '' as a quote) | true | false
 *            | null | IDENT | IDENT '(' args ')' | '(' expr ')'
 * Types are checked when parsed, against the input schema; an expression
 * that does not type-check is refused before the job starts. Null follows
 * SQL: operators on null give null, a filter treats null as false.
 *
 * @thread plan time for parse; any thread for eval (an expression is
 * immutable once parsed).
 */
#ifndef RN_STREAM_EXPR_H
#define RN_STREAM_EXPR_H

#include "stream/row.h"

typedef struct rn_expr rn_expr_t;

/* Parses and type-checks text against schema (borrowed; must outlive the
 * expression). On failure err->msg is the message without position and
 * *erroff (when not NULL) the byte offset in text where the problem is.
 * @returns an expression to free with rn__expr_destroy(), or NULL. */
rn_expr_t *rn__expr_parse(const char *text, const rn_schema_t *schema, size_t *erroff,
                          rn_error_t *err);

void rn__expr_destroy(rn_expr_t *e);

rn_type_t rn__expr_type(const rn_expr_t *e);

/* If the expression is a bare field reference, its position, else -1. */
int rn__expr_field(const rn_expr_t *e);

/* Evaluates e on row. Strings it creates are allocated in arena (the
 * output batch's); strings it passes through keep pointing where they were.
 * Never fails: runtime faults (division by zero, overflow of a cast) give
 * null. */
void rn__expr_eval(const rn_expr_t *e, const rn_value_t *row, rn_arena_t *arena, rn_value_t *out);

/* Evaluates a boolean e on each of the n rows of b and writes 1 (true) or 0
 * (false or null) to keep[i]. */
void rn__expr_eval_filter(const rn_expr_t *e, const rn_batch_t *b, uint8_t *keep);

/* Evaluates e on each of the n rows of b and writes row i's value to
 * out[i * stride] (a column of the output batch when stride is its width;
 * out must not overlap b). Strings as rn__expr_eval(). Several times faster
 * than rn__expr_eval() row by row: the work is done a node at a time over
 * chunks of rows. */
void rn__expr_eval_batch(const rn_expr_t *e, const rn_batch_t *b, rn_arena_t *arena,
                         rn_value_t *out, size_t stride);

#endif
