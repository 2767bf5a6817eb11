/*
 * stream/plugin_int.h: what the plugin loader (plugin_load.c) gives the
 * plugin operator (op_plugin.c).
 */
#ifndef RN_STREAM_PLUGIN_INT_H
#define RN_STREAM_PLUGIN_INT_H

#include "stream/component.h"

#include <runnel/plugin.h>

#include <limits.h>

typedef struct rn__plugin_lib {
    void *handle;              /* dlopen's */
    rn_process_fn_t fn; /* the operator the component names (a copy) */
} rn__plugin_lib_t;

typedef struct pplan pplan_t; /* op_plugin.c */

typedef struct rn__ext rn__ext_t; /* plugin_ext.c */

/* What one library's init registers (or, for the process functions the
 * program registers itself, the program). */
struct rn_plugin {
    const char *path;
    rn_process_fn_t *fns; /* copies, members the plugin did not know zeroed */
    size_t n, cap;
    rn__ext_t *ext;       /* functions, formats, sources, sinks: a list, owned */
};

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
/* Checks, loads (dlopen) and initialises the library at path: reg gets
 * what it registered (free with rn__plugin_reg_fini), resolved its
 * realpath. @returns the dlopen handle, or NULL with err set. */
void *rn__plugin_open(const char *path, char resolved[PATH_MAX], rn_plugin_t *reg,
                      rn_error_t *err);
void rn__plugin_reg_fini(rn_plugin_t *reg);
/* Frees a list of pending registrations (plugin_ext.c). Accepts NULL. */
void rn__ext_list_free(rn__ext_t *list);

/* Accepts NULL. */
void rn__plugin_unload(rn__plugin_lib_t *lib);
/* The process function name registered by the program itself
 * (rn_process_fn_register), as a library without a handle. @returns it
 * (free with rn__plugin_unload) or NULL with err set. */
rn__plugin_lib_t *rn__plugin_builtin(const char *name, rn_error_t *err);

#endif
