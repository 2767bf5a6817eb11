/*
 * stream/plugin_int.h: what the plugin loader (plugin_load.c) gives the
 * plugin operator (op_plugin.c).
 */
#ifndef RN_STREAM_PLUGIN_INT_H
#define RN_STREAM_PLUGIN_INT_H

#include "stream/component.h"

#include <runnel/plugin.h>

typedef struct rn__plugin_lib {
    void *handle;              /* dlopen's */
    rn_process_fn_t fn; /* the operator the component names (a copy) */
} rn__plugin_lib_t;

typedef struct pplan pplan_t; /* op_plugin.c */

/* One running instance of a plugin operator. */
struct rn_pf {
    rn_op_t *op;
    const pplan_t *plan;
    void *data;
    const rn_batch_t *in; /* the batch being processed; NULL in on_timer, finish */
    uint32_t row;
    int64_t ts;           /* in on_timer: the timer's time */
    rn_batch_t **out;     /* a batch per port, or NULL */
    rn_value_t *orow;     /* the row begun last, NULL between callbacks */
    rn_batch_t *obatch;   /* and its batch */
    bool opening;         /* in open(): nothing may be emitted yet */
    int64_t max_ts;       /* the latest record time seen (finish's rows) */
    /* An emit that failed inside rn_pf_out_begin: the callback fails with
     * it whatever the function returns (it may ignore the code). */
    rn_code_t emit_rc;
    rn_error_t emit_err;
    /* The current key decoded (rn_pf_key_*), when key_ok. */
    bool key_ok;
    rn_value_t key[RN_KEY_FIELDS_MAX];
    rn_arena_t key_arena;
};

/* Checks, loads and initialises the library at path and finds operator
 * name in it. @returns the loaded library (free with rn__plugin_unload)
 * or NULL with err set. */
rn__plugin_lib_t *rn__plugin_load(const char *path, const char *name, rn_error_t *err);
/* Accepts NULL. */
void rn__plugin_unload(rn__plugin_lib_t *lib);
/* The process function name registered by the program itself
 * (rn_process_fn_register), as a library without a handle. @returns it
 * (free with rn__plugin_unload) or NULL with err set. */
rn__plugin_lib_t *rn__plugin_builtin(const char *name, rn_error_t *err);

#endif
