/*
 * runnel/connector.h: sources and sinks from plugins.
 *
 * A registered source or sink is a component type of its own: the job
 * file names the library in its top-level `plugins:` list and uses the
 * name as `type:`, with the component's settings under `config:`:
 *
 *   plugins: [./build/libticks.so]
 *   sources:
 *     ticks:
 *       type: ticker               # registered by the library
 *       event_time: ts             # as for every source
 *       config: {count: 1000}
 *
 * Instances are rn_pf_t, as process functions' are (runnel/plugin.h):
 * rn_pf_config, rn_pf_instance, rn_pf_parallelism, rn_pf_data... work the
 * same. A source emits with rn_pf_out_begin(f, 0, ...) and rn_pf_out_set_*
 * (its rows get their event time from `event_time`, as every source's);
 * a sink reads the current record with rn_pf_get_*.
 *
 * Guarantees: a source's position goes into checkpoints and savepoints
 * (snapshot) and comes back in open(), so that with a replayable position
 * the job is exactly-once up to its sinks. Positions are opaque bytes
 * that runnel cannot split: resuming a savepoint with another parallelism
 * of a plugin source is refused. A plugin sink is at-least-once:
 * flush() is called when a checkpoint's barrier reaches it, and must make
 * everything written before durable; a checkpoint completes only after
 * every flush succeeded (a failed flush declines the checkpoint).
 */
#ifndef RUNNEL_CONNECTOR_H
#define RUNNEL_CONNECTOR_H

#include <runnel/plugin.h>

/* Where a source's snapshot writes its position. */
typedef struct rn_pf_pos rn_pf_pos_t;
/* Sets the position (copied; at most 1 MiB). @returns RN_OK, RN_EINVAL
 * when too long, RN_ENOMEM. */
RN_API int rn_pf_pos_set(rn_pf_pos_t *pos, const void *bytes, size_t len, rn_error_t *err);

typedef struct rn_source_fn {
    /* sizeof(rn_source_fn_t) as the plugin was compiled. */
    size_t size;
    const char *name; /* the component type; borrowed for the process's life */
    /* Plan time, required: declares the fields with rn_pf_plan_output(p,
     * NULL, ...) and checks rn_pf_plan_config(p). */
    int (*plan)(rn_pf_plan_t *p, rn_error_t *err);
    /* Optional: once per instance before its first poll. restored: the
     * position this instance's snapshot set in the checkpoint or
     * savepoint the job resumes from, else NULL (len 0). */
    int (*open)(rn_pf_t *f, const void *restored, size_t len, rn_error_t *err);
    /* Required: emits up to about a thousand rows. @returns RN_OK after
     * progress, RN_EAGAIN when nothing is available now (runnel polls
     * again soon); sets *done once the source has no more (a bounded
     * source), after which it is not called again. */
    int (*poll)(rn_pf_t *f, bool *done, rn_error_t *err);
    /* Optional (without it nothing is restored): the position after the
     * rows emitted so far, at a checkpoint's barrier. */
    int (*snapshot)(rn_pf_t *f, rn_pf_pos_t *pos, rn_error_t *err);
    /* Optional: always, once open succeeded. */
    void (*close)(rn_pf_t *f);
    /* Whether the source ends by itself (a bounded job ends when its
     * sources have). */
    bool bounded;
} rn_source_fn_t;

typedef struct rn_sink_fn {
    /* sizeof(rn_sink_fn_t) as the plugin was compiled. */
    size_t size;
    const char *name; /* the component type; borrowed for the process's life */
    /* Optional, plan time: checks the input (rn_pf_plan_input_field) and
     * rn_pf_plan_config(p). */
    int (*plan)(rn_pf_plan_t *p, rn_error_t *err);
    int (*open)(rn_pf_t *f, rn_error_t *err); /* optional */
    /* Required: one record, read with rn_pf_get_*. */
    int (*write)(rn_pf_t *f, rn_error_t *err);
    /* Optional: a checkpoint's barrier arrived: make durable all written. */
    int (*flush)(rn_pf_t *f, rn_error_t *err);
    /* Optional: the input ended (bounded jobs), before close. */
    int (*finish)(rn_pf_t *f, rn_error_t *err);
    void (*close)(rn_pf_t *f); /* optional: always, once open succeeded */
} rn_sink_fn_t;

/* As rn_plugin_register_scalar (runnel/functions.h), for a source or a
 * sink; the name must not be a built-in type of its section. */
RN_API int rn_plugin_register_source(rn_plugin_t *p, int abi, const rn_source_fn_t *fn,
                                     rn_error_t *err);
RN_API int rn_plugin_register_sink(rn_plugin_t *p, int abi, const rn_sink_fn_t *fn,
                                   rn_error_t *err);

#endif
