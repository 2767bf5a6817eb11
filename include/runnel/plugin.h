/*
 * runnel/plugin.h: operators written in C, loaded from a shared library.
 *
 * A job file names the library and the operator:
 *
 *   scored:
 *     type: plugin
 *     inputs: [per_user]
 *     library: ./build/libchurn.so
 *     operator: churn_score
 *     key: [user]              # optional: records of a key reach one instance
 *     config: {threshold: 0.8} # handed to the operator as it is
 *
 * The library exports one function, `runnel_plugin_init` (of type
 * rn_plugin_init_fn), which registers its operators with
 * rn_plugin_register(). Registration carries the RN_ABI_VERSION the plugin
 * was compiled with; a plugin built against another ABI is refused with
 * RN_EABI and a message, never run. Plugins are trusted code, as a jar is in
 * Flink: they run inside the job's process with all its rights. runnel
 * loads a library with RTLD_NOW | RTLD_LOCAL (a missing symbol is an error
 * at load, not a crash later) and refuses one that anybody but its owner
 * (or root) can write, or that another user owns.
 *
 * An operator is a process function, Flink's ProcessFunction in spirit:
 * process() is called once per record, with the record readable through
 * rn_pf_get_*(); it emits records to the main output or to named side
 * outputs (`component.port` in the job file) with rn_pf_out_begin(),
 * rn_pf_out_set_*() and nothing else: a row begun is emitted. Each of the
 * component's `parallelism` instances has its own rn_pf_t; one thread at a
 * time calls an instance.
 *
 * Errors: a callback returns RN_OK or a negative rn_code_t and fills err
 * (rn_pf_fail() does both); the job stops and reports it with the
 * component's name.
 */
#ifndef RUNNEL_PLUGIN_H
#define RUNNEL_PLUGIN_H

#include <runnel/conf.h>
#include <runnel/error.h>
#include <runnel/types.h>

typedef struct rn_plugin rn_plugin_t;   /* the registration of one library */
typedef struct rn_pf_plan rn_pf_plan_t; /* an operator being planned */
typedef struct rn_pf rn_pf_t;           /* one running instance */

typedef struct rn_process_fn {
    /* sizeof(rn_process_fn_t) as the plugin was compiled: later ABIs may
     * add members at the end. */
    size_t size;
    const char *name; /* what `operator:` names; borrowed for the process's life */
    /* Plan time, optional: declares the outputs (rn_pf_plan_output) and
     * checks the input and the config. Without it, or when it declares no
     * field of the main output, the main output has the input's schema. */
    int (*plan)(rn_pf_plan_t *p, rn_error_t *err);
    /* Optional: once per instance before its first record. */
    int (*open)(rn_pf_t *f, rn_error_t *err);
    /* Required: one record. */
    int (*process)(rn_pf_t *f, rn_error_t *err);
    /* Optional: once per instance after its input ended (bounded jobs),
     * before close; may still emit. */
    int (*finish)(rn_pf_t *f, rn_error_t *err);
    /* Optional: always, once open succeeded (also after a failure). */
    void (*close)(rn_pf_t *f);
    /* Keyed operators: a timer registered with rn_pf_timer_register fired
     * (time; domain RN_PF_EVENT_TIME or RN_PF_PROCESSING_TIME). Its key is
     * the current key (state, rn_pf_key_*); rows begun carry time as their
     * event time. */
    int (*on_timer)(rn_pf_t *f, int64_t time, int domain, rn_error_t *err);
} rn_process_fn_t;

/* The function a plugin defines and exports (declared here with default
 * visibility, so that a plugin built with -fvisibility=hidden exports it
 * all the same). It calls rn_plugin_register() for each operator and
 * returns RN_OK, or the first error. */
RN_API int runnel_plugin_init(rn_plugin_t *p, rn_error_t *err);
typedef int (*rn_plugin_init_fn)(rn_plugin_t *p, rn_error_t *err);
#define RN_PLUGIN_INIT_SYMBOL "runnel_plugin_init"

/* Registers an operator. abi: RN_ABI_VERSION as the plugin sees it (pass
 * the macro). @param fn borrowed for the process's life (a static).
 * @returns RN_OK, RN_EABI for another ABI, RN_EINVAL for a bad or duplicate
 * name or a missing process(). */
RN_API int rn_plugin_register(rn_plugin_t *p, int abi, const rn_process_fn_t *fn,
                              rn_error_t *err);

/* A program that links librunnel registers its own process functions
 * here, with no library: a `plugin` component without `library:` (or
 * rn_process() of runnel/datastream.h) names them by `operator:`. The
 * same table again is a no-op; another under a taken name, RN_EINVAL.
 * @param fn borrowed for the process's life. @thread any. */
RN_API int rn_process_fn_register(const rn_process_fn_t *fn, rn_error_t *err);

/* ---- plan time ---- */

/* The component's `config` (borrowed; NULL when absent). */
RN_API const rn_conf_t *rn_pf_plan_config(const rn_pf_plan_t *p);
/* The input field named name: its position, and its type in *type (may be
 * NULL). @returns -1 when the input has no such field. */
RN_API int rn_pf_plan_input_field(const rn_pf_plan_t *p, const char *name, rn_type_t *type);
/* Adds a field to an output: port NULL is the main output, another name
 * the side output `component.port`. Fields come in the order added. */
RN_API int rn_pf_plan_output(rn_pf_plan_t *p, const char *port, const char *field,
                             rn_type_t type, rn_error_t *err);

/* ---- run time ---- */

RN_API const rn_conf_t *rn_pf_config(const rn_pf_t *f);
/* Per-instance data of the plugin's (not freed by runnel). */
RN_API void *rn_pf_data(const rn_pf_t *f);
RN_API void rn_pf_set_data(rn_pf_t *f, void *data);
RN_API int rn_pf_instance(const rn_pf_t *f);
RN_API int rn_pf_parallelism(const rn_pf_t *f);
RN_API const char *rn_pf_name(const rn_pf_t *f); /* the component's */
/* The instance's input watermark (INT64_MIN before the first). */
RN_API int64_t rn_pf_watermark(const rn_pf_t *f);
/* Processing time: the clock, epoch ms (for RN_PF_PROCESSING_TIME timers). */
RN_API int64_t rn_pf_now(const rn_pf_t *f);

/* The position of an input field (-1: none); look it up in open(). */
RN_API int rn_pf_field(const rn_pf_t *f, const char *name);
/* The current record, field by position. A getter of the wrong type or a
 * null field gives 0, 0.0, false or NULL. */
RN_API int64_t rn_pf_timestamp(const rn_pf_t *f); /* its event time, epoch ms */
RN_API bool rn_pf_is_null(const rn_pf_t *f, int field);
RN_API int64_t rn_pf_get_int(const rn_pf_t *f, int field); /* int and timestamp */
RN_API double rn_pf_get_float(const rn_pf_t *f, int field); /* also an int's value */
RN_API bool rn_pf_get_bool(const rn_pf_t *f, int field);
/* @returns the bytes (not NUL-terminated, valid during the call) and their
 * length in *len. */
RN_API const char *rn_pf_get_string(const rn_pf_t *f, int field, size_t *len);

/* The port of an output: 0 the main one, a side output by name; -1: none. */
RN_API int rn_pf_port(const rn_pf_t *f, const char *name);
/* The position of a field of an output port (-1: none). */
RN_API int rn_pf_out_field(const rn_pf_t *f, int port, const char *name);
/* Begins a record on port, every field null, with the current record's
 * event time (in on_timer: the timer's; in finish: the latest record time
 * the instance saw); where the port has the input's schema, a copy of the
 * current record. It is emitted by itself. Not in open(). A failed emit
 * (the job is failing) is returned here and fails the callback whatever
 * it returns. */
RN_API int rn_pf_out_begin(rn_pf_t *f, int port, rn_error_t *err);
RN_API void rn_pf_out_set_null(rn_pf_t *f, int field);
RN_API void rn_pf_out_set_int(rn_pf_t *f, int field, int64_t v); /* int and timestamp */
RN_API void rn_pf_out_set_float(rn_pf_t *f, int field, double v);
RN_API void rn_pf_out_set_bool(rn_pf_t *f, int field, bool v);
/* @param s copied. */
RN_API void rn_pf_out_set_string(rn_pf_t *f, int field, const char *s, size_t len);

/* ---- keyed state and timers (operators with `key:` only) ----
 *
 * State belongs to the current key: the key of the record in process(),
 * of the timer in on_timer(). Read and write state and set timers only
 * there (in open() there is no key; in finish() the last one lingers). It goes into checkpoints and savepoints and
 * is restored, also with another parallelism (by key group), as every
 * operator's state is; data kept with rn_pf_set_data is not. Register
 * states in open() (a restored job matches them by name); a name has one
 * kind. Values are bytes, copied in; what get and each hand out is valid
 * until the next call on the state. Handles belong to the instance. */
typedef struct rn_vstate rn_pf_value_t; /* one value per key */
typedef struct rn_lstate rn_pf_list_t;  /* values appended per key */
typedef struct rn_mstate rn_pf_map_t;   /* user key -> value per key */

RN_API rn_pf_value_t *rn_pf_value_state(rn_pf_t *f, const char *name, rn_error_t *err);
RN_API rn_pf_list_t *rn_pf_list_state(rn_pf_t *f, const char *name, rn_error_t *err);
RN_API rn_pf_map_t *rn_pf_map_state(rn_pf_t *f, const char *name, rn_error_t *err);
/* A reducing (aggregating) state: values of size bytes, folded with merge,
 * which must be associative, take the all-zero value as its identity and
 * be callable from any thread (RocksDB folds during compaction); dst is
 * the older value. Added to with rn_pf_reduce, read with rn_pf_value_get. */
typedef void (*rn_pf_merge_fn)(const void *ctx, void *dst, const void *src);
RN_API rn_pf_value_t *rn_pf_reducing_state(rn_pf_t *f, const char *name, size_t size,
                                           rn_pf_merge_fn merge, rn_error_t *err);

/* @returns RN_OK, or RN_ENOTFOUND when the key has no value. */
RN_API int rn_pf_value_get(rn_pf_value_t *s, const void **val, size_t *len, rn_error_t *err);
RN_API int rn_pf_value_put(rn_pf_value_t *s, const void *val, size_t len, rn_error_t *err);
RN_API int rn_pf_value_clear(rn_pf_value_t *s, rn_error_t *err);
/* Folds v (the state's size bytes) into the key's value without reading it. */
RN_API int rn_pf_reduce(rn_pf_value_t *s, const void *v, rn_error_t *err);

/* Called per element or entry (k NULL for lists); a non-zero return stops
 * the walk and is returned. Do not change the state during the walk. */
typedef int (*rn_pf_each_fn)(void *ctx, const void *k, size_t klen, const void *v, size_t vlen);
RN_API int rn_pf_list_add(rn_pf_list_t *s, const void *val, size_t len, rn_error_t *err);
RN_API int rn_pf_list_each(rn_pf_list_t *s, rn_pf_each_fn fn, void *ctx, rn_error_t *err);
RN_API int rn_pf_list_clear(rn_pf_list_t *s, rn_error_t *err);
RN_API int rn_pf_map_put(rn_pf_map_t *s, const void *k, size_t klen, const void *v, size_t vlen,
                         rn_error_t *err);
/* @returns RN_OK, or RN_ENOTFOUND. */
RN_API int rn_pf_map_get(rn_pf_map_t *s, const void *k, size_t klen, const void **v, size_t *vlen,
                         rn_error_t *err);
RN_API int rn_pf_map_remove(rn_pf_map_t *s, const void *k, size_t klen, rn_error_t *err);
/* In user-key byte order. */
RN_API int rn_pf_map_each(rn_pf_map_t *s, rn_pf_each_fn fn, void *ctx, rn_error_t *err);
RN_API int rn_pf_map_clear(rn_pf_map_t *s, rn_error_t *err);

#define RN_PF_EVENT_TIME 0      /* fires when the watermark reaches time */
#define RN_PF_PROCESSING_TIME 1 /* fires when the clock (epoch ms) does */
/* Timers of the current key; registering one twice is one timer. */
RN_API int rn_pf_timer_register(rn_pf_t *f, int domain, int64_t time, rn_error_t *err);
RN_API int rn_pf_timer_delete(rn_pf_t *f, int domain, int64_t time, rn_error_t *err);

/* The current key's fields (the `key:` fields, in order), as for
 * rn_pf_get_*: in process() and in on_timer(). */
RN_API int64_t rn_pf_key_int(rn_pf_t *f, int i);
RN_API const char *rn_pf_key_string(rn_pf_t *f, int i, size_t *len);

/* Fills err (code RN_EINVAL unless code says otherwise) and returns code:
 * `return rn_pf_fail(f, err, RN_EDATA, "bad weight %d", w);`. */
RN_API int rn_pf_fail(const rn_pf_t *f, rn_error_t *err, int code, const char *fmt, ...)
    RN_PRINTF(4, 5);

/* What else a plugin may register: scalar and aggregate functions,
 * formats, sources and sinks. */
#include <runnel/connector.h>
#include <runnel/format.h>
#include <runnel/functions.h>

#endif
