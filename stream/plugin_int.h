/*
 * stream/plugin_int.h: what the plugin loader (plugin_load.c) gives the
 * plugin operator (op_plugin.c), and what op_plugin.c shares with the
 * plugin sources and sinks (op_plugin_io.c): the plan, the instance
 * (rn_pf_t) and the emit machinery.
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

/* An output port of a plugin component, as planned. */
typedef struct pport {
    char *name;          /* NULL: the main output */
    rn_schema_t *schema; /* until handed to rn__pc_add_output */
    bool as_input;       /* the input's schema: a begun row copies the record */
} pport_t;

/* The plan of a plugin component, shared by its instances: a process
 * function (op_plugin.c) or a source or sink (op_plugin_io.c). Exactly
 * one of fn, src and sink is set. */
typedef struct pplan {
    const char *kind;            /* "operator", "source", "sink": for messages */
    rn__plugin_lib_t *lib;       /* operators: the library (owned), or NULL */
    const rn_process_fn_t *fn;   /* operators */
    const rn_source_fn_t *src;   /* sources: the registry's (never freed) */
    const rn_sink_fn_t *sink;    /* sinks: the registry's (never freed) */
    const rn_conf_t *config;     /* borrowed from the job's tree */
    const rn_schema_t *in;       /* the input's schema (graph's); NULL: a source */
    int nports;                  /* port i of the component is ports[i] */
    pport_t *ports;
} pplan_t;

/* What rn_pf_plan_* see. */
struct rn_pf_plan {
    rn_plan_ctx_t *pc;
    pplan_t *plan;
};

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
    bool opened;          /* sources, sinks: the plugin's open succeeded */
    /* An emit that failed inside rn_pf_out_begin: the callback fails with
     * it whatever the function returns (it may ignore the code). */
    rn_code_t emit_rc;
    rn_error_t emit_err;
    /* The current key decoded (rn_pf_key_*), when key_ok. */
    bool key_ok;
    rn_value_t key[RN_KEY_FIELDS_MAX];
    rn_arena_t key_arena;
};

/* ---- shared by the plugin component classes (op_plugin.c) ---- */

/* Frees a plan (rn__pc_set_plan's free_fn). Accepts NULL. */
void rn__pplan_free(void *plan);
/* Moves the main output to port 0 (adding the input's schema as it when
 * none was declared; a sink has none), hands pl to pc
 * (consumed: freed with the job, also on failure) and declares the
 * ports. @thread control. */
rn_code_t rn__pplan_commit(rn_plan_ctx_t *pc, pplan_t *pl, rn_error_t *err);
/* An instance of op (free with rn__pf_free). @thread task. */
rn_pf_t *rn__pf_new(rn_op_t *op, const pplan_t *pl);
/* Frees f and the rows it did not emit. Accepts NULL. */
void rn__pf_free(rn_pf_t *f);
/* Emits every port's pending rows. */
rn_code_t rn__pf_flush(rn_pf_t *f, rn_error_t *err);
/* What a callback returned (rc and its e), with a failed emit taking
 * precedence: RN_OK, or err filled (prefixed with "KIND 'NAME' (instance
 * I): " when prefix) and the code. which: the message when e has none. */
rn_code_t rn__pf_outcome(rn_pf_t *f, int rc, const rn_error_t *e, const char *which, bool prefix,
                         rn_error_t *err);

/* The generic class of a source or sink type a plugin registered (by
 * the component's `type:`), or NULL (op_plugin_io.c). */
const rn_opclass_t *rn__opclass_ext(rn_section_t section, const char *type);

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
