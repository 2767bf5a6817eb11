/*
 * runnel/functions.h: scalar and aggregate functions from plugins, usable
 * in job-file expressions (filter `where`, map `select`) and in
 * window_aggregate `aggregates:`.
 *
 * A plugin registers them from its runnel_plugin_init (runnel/plugin.h);
 * a job makes them visible by naming the library in the job file's
 * top-level `plugins:` list:
 *
 *   plugins: [./build/libgeo.so]
 *   operators:
 *     near:
 *       type: filter
 *       inputs: [rides]
 *       where: haversine_km(lat, lon, 52.52, 13.40) < 5
 *     stats:
 *       type: window_aggregate
 *       ...
 *       aggregates: {sd: stddev(fare)}
 *
 * Names are global to the process: a name that a built-in function, or
 * another library, already has is refused when the library is loaded.
 * Built-in names cannot be replaced.
 */
#ifndef RUNNEL_FUNCTIONS_H
#define RUNNEL_FUNCTIONS_H

#include <runnel/error.h>
#include <runnel/types.h>

typedef struct rn_plugin rn_plugin_t;

/* A value as functions see it: the same 16 bytes as a record's field. */
typedef struct rn_val {
    union {
        int64_t i;     /* int and timestamp (epoch ms) */
        double f;      /* float */
        bool b;        /* bool */
        const char *s; /* string bytes, not NUL-terminated */
    } u;
    uint32_t len;   /* string length in bytes */
    uint8_t null;   /* 1: null; u is then unspecified */
    uint8_t pad_[3];
} rn_val_t;

/* ---- scalar functions ---- */

typedef struct rn_fn_ctx rn_fn_ctx_t; /* one evaluation */

/* flags of rn_scalar_fn_t */
#define RN_FN_NULL_CALL 1u /* called with null arguments too (default: any
                              null argument gives null without a call) */
#define RN_FN_VOLATILE 2u  /* not a pure function of its arguments (a clock,
                              a random number): never folded at plan time
                              (this runnel folds no plugin call: say it all
                              the same, a later one may fold pure calls) */

typedef struct rn_scalar_fn {
    /* sizeof(rn_scalar_fn_t) as the plugin was compiled. */
    size_t size;
    const char *name; /* borrowed for the process's life */
    int min_args;     /* 0 or more */
    int max_args;     /* -1: any number */
    unsigned flags;   /* RN_FN_* */
    /* Plan time, required: the arguments' types (RN_TYPE_NULL for the
     * literal null) are args[0 .. nargs); sets *ret, the result's type
     * (not RN_TYPE_NULL). Refuses types it cannot take with RN_EINVAL and
     * a message (runnel adds the job file's position). */
    int (*plan)(const rn_type_t *args, int nargs, rn_type_t *ret, rn_error_t *err);
    /* Per row, required: sets *out (out->null = 1 for null; *out is all
     * zero on entry). A result that is not null is taken as the type plan
     * declared, unchecked: only that member of u is read (and, for a
     * string, len and the bytes). A string result points into memory from
     * rn_fn_alloc(ctx, ...) or into an argument's bytes. args are borrowed
     * for the call. eval is not told the arguments' types (an int and a
     * float are both 8 bytes): a plan should accept one type per argument
     * position, or keep what it needs to tell them apart inside the call
     * (job files convert with to_float(), to_int()). Cannot fail: a
     * runtime fault gives null, as the built-in functions do.
     * @thread any, several at once: no mutable state shared between
     * calls. */
    void (*eval)(rn_fn_ctx_t *ctx, const rn_val_t *args, int nargs, rn_val_t *out);
} rn_scalar_fn_t;

/* @returns n bytes that live as long as the row being evaluated. Never
 * NULL (aborts when out of memory, as the row's own strings do). */
RN_API void *rn_fn_alloc(rn_fn_ctx_t *ctx, size_t n);

/* Registers a scalar function. p: the rn_plugin_t handed to
 * runnel_plugin_init, or NULL for the program itself (a program that
 * links librunnel, before it plans a job). @param fn borrowed for the
 * process's life (a static). @returns RN_OK, RN_EABI, or RN_EINVAL for a
 * bad, taken or built-in name or a missing plan or eval. */
RN_API int rn_plugin_register_scalar(rn_plugin_t *p, int abi, const rn_scalar_fn_t *fn,
                                     rn_error_t *err);

/* ---- aggregate functions ----
 *
 * Flink's AggregateFunction with a fixed-size accumulator: each window
 * holds RN_AGG_ACC_SIZE bytes per aggregate, all zero when the window
 * opens, kept in keyed state (checkpoints, savepoints, RocksDB) as bytes:
 * no pointers in it. Written `name(field)` or `name()` in `aggregates:`.
 * Null values are skipped, as SQL does (add is not called for them).
 */
#define RN_AGG_ACC_SIZE 24

typedef struct rn_aggregate_fn {
    /* sizeof(rn_aggregate_fn_t) as the plugin was compiled. */
    size_t size;
    const char *name; /* borrowed for the process's life */
    /* Plan time, required: the argument's type (RN_TYPE_NULL for
     * `name()`); sets *ret: int, float, bool or timestamp. */
    int (*plan)(rn_type_t arg, rn_type_t *ret, rn_error_t *err);
    /* Required: adds a non-null value v (NULL for `name()`: a row) of
     * event time ts to acc (RN_AGG_ACC_SIZE bytes, 8-byte aligned; v
     * borrowed for the call). @thread the operator instance's task. */
    void (*add)(void *acc, const rn_val_t *v, int64_t ts);
    /* Merges src into dst (dst the earlier): when session windows merge,
     * and, with RocksDB state, to fold a window's partial accumulators
     * (a zeroed one updated with add() without reading the stored one).
     * Must be associative with the all-zero accumulator as its identity.
     * @thread any (RocksDB's compaction threads too, several at once).
     * Optional: an aggregate without it is refused in session windows, and
     * its window's accumulators are read before each add(). */
    void (*merge)(void *dst, const void *src);
    /* Required: the window's result into *out (out->null = 1 for null). */
    void (*result)(const void *acc, rn_val_t *out);
} rn_aggregate_fn_t;

/* As rn_plugin_register_scalar, for an aggregate function. */
RN_API int rn_plugin_register_aggregate(rn_plugin_t *p, int abi, const rn_aggregate_fn_t *fn,
                                        rn_error_t *err);

#endif
