/*
 * runnel/graph.h: job graphs and running jobs.
 *
 * One graph, two ways in: a graph is a job configuration tree (the same tree
 * a YAML job file is read into), filled either by rn_graph_from_conf() or
 * component by component with rn_graph_add(). rn_job_new() checks the whole
 * graph (unknown keys, types, inputs, cycles, schemas, expressions) before
 * anything runs, and reports the first problem with its position.
 */
#ifndef RUNNEL_GRAPH_H
#define RUNNEL_GRAPH_H

#include <runnel/conf.h>

typedef struct rn_graph rn_graph_t;
typedef struct rn_job rn_job_t;

typedef enum rn_section {
    RN_SOURCE = 0,
    RN_OPERATOR = 1,
    RN_SINK = 2,
} rn_section_t;

/* @returns an empty graph named name (free with rn_graph_destroy()), or NULL. */
RN_API rn_graph_t *rn_graph_new(const char *name, rn_error_t *err);

/* @param root a whole job tree; consumed on success and failure alike.
 * @returns a graph (free with rn_graph_destroy()) or NULL. */
RN_API rn_graph_t *rn_graph_from_conf(rn_conf_t *root, rn_error_t *err);

/* Adds a component. conf holds its settings as in a job file, "inputs"
 * included; "type" is set from type.
 * @param conf consumed on success and failure alike. */
RN_API rn_code_t rn_graph_add(rn_graph_t *g, rn_section_t section, const char *name,
                              const char *type, rn_conf_t *conf, rn_error_t *err);

/* Sets a job-level value by dotted path, as --set does. */
RN_API rn_code_t rn_graph_set(rn_graph_t *g, const char *path, const char *value,
                              rn_error_t *err);

/* @returns the job tree (borrowed, valid until the graph is consumed). */
RN_API rn_conf_t *rn_graph_conf(rn_graph_t *g);

/* Accepts NULL. */
RN_API void rn_graph_destroy(rn_graph_t *g);

typedef struct rn_job_options {
    int abi;      /* RN_ABI_VERSION */
    int workers;  /* worker threads; 0: one per online CPU */
    /* Resume from this savepoint (a directory; borrowed for rn_job_new)
     * rather than from the newest checkpoint; parallelism may differ. */
    const char *from_savepoint;
    /* Drop the savepoint's state of components the job no longer has
     * (refused otherwise). */
    bool allow_non_restored_state;
    /* Resume even where an exactly-once Kafka sink's commit log shows
     * output committed after the checkpoint restored (an older one than
     * the newest): that output is sent again. Refused otherwise. */
    bool accept_duplicates;
    /* Let job files set librdkafka properties that run a command or load
     * code (sasl.kerberos.kinit.cmd, plugin.library.paths, ...): refused
     * otherwise, since a job file is configuration, not code. */
    bool allow_code_properties;
} rn_job_options_t;

#define RN_JOB_OPTIONS_INIT {RN_ABI_VERSION, 0, NULL, false, false, false}

/* Checks and plans the graph.
 * @param g consumed on success and failure alike.
 * @param opts borrowed for the call; NULL for defaults.
 * @returns a job (free with rn_job_destroy()) or NULL with err set; err's
 * flags have RN_ERR_DEFINITION when the graph itself is at fault, not
 * when the checkpoint to resume from, the state directory or another
 * file is (restore failures). */
RN_API rn_job_t *rn_job_new(rn_graph_t *g, const rn_job_options_t *opts, rn_error_t *err);

/* Checks and plans the graph as rn_job_new does, but touches nothing on
 * disk: no state backend opened, no directory made, no checkpoint looked
 * for (so what a restore would check is not checked). What
 * `runnel validate` uses. The job can be described and destroyed;
 * rn_job_run refuses it (RN_EINVAL).
 * @param g consumed on success and failure alike.
 * @param opts borrowed for the call; NULL for defaults.
 * @returns a job (free with rn_job_destroy()) or NULL with err set. */
RN_API rn_job_t *rn_job_plan(rn_graph_t *g, const rn_job_options_t *opts, rn_error_t *err);

/* Prints the planned graph: components, parallelism, schemas, edges and
 * chains. @param out borrowed. */
RN_API void rn_job_describe(const rn_job_t *job, void *out /* FILE * */);

/* Runs the job on its worker threads and blocks until it ends: all sources
 * bounded and drained (RN_OK), stopped with a final checkpoint
 * (rn_job_stop, RN_OK: stats.stopped_at says which), cancelled
 * (RN_ECANCELED) or failed (the first error of any task). A job with
 * checkpoints resumes from the newest completed one in checkpoints.dir
 * (found by rn_job_new: stats.restored_from). @thread the caller's; one
 * call per job. */
RN_API rn_code_t rn_job_run(rn_job_t *job, rn_error_t *err);

/* Asks a running job to stop. @thread any; async-signal-safe. */
RN_API void rn_job_cancel(rn_job_t *job);

/* Asks a running job to stop cleanly: sources stop, a final checkpoint is
 * taken and committed, and rn_job_run returns RN_OK, so that the next run
 * continues exactly there. A job without checkpoints is cancelled.
 * @thread any; async-signal-safe. */
RN_API void rn_job_stop(rn_job_t *job);

typedef struct rn_job_stats {
    uint64_t records_in;  /* records produced by sources */
    uint64_t records_out; /* records accepted by sinks */
    int64_t watermark;    /* lowest watermark reaching a sink; INT64_MIN before any */
    bool running;
    /* Checkpoints (0 when the job takes none). */
    int64_t checkpoints_completed; /* by this run */
    int64_t checkpoints_failed;    /* aborted: timeout, a snapshot that failed */
    int64_t last_checkpoint;       /* id of the newest completed, 0: none */
    int64_t restored_from;         /* the checkpoint this run resumed from, 0: none */
    int64_t stopped_at;            /* the final checkpoint of rn_job_stop, 0: none */
    /* How long tasks held records back for checkpoints (alignment and the
     * synchronous part), over the last 4096 task snapshots, µs. */
    int64_t checkpoint_pause_p50_us;
    int64_t checkpoint_pause_p99_us;
    int64_t checkpoint_pause_max_us;
    /* Over the checkpoints this run completed: bytes they added to the
     * store (incremental: new files only), bytes they referred to, and
     * their durations from trigger to commit, summed. */
    uint64_t checkpoint_bytes_added;
    uint64_t checkpoint_bytes_referred;
    int64_t checkpoint_duration_ms;
} rn_job_stats_t;

/* Reads the job's counters. @thread any. */
RN_API void rn_job_stats(const rn_job_t *job, rn_job_stats_t *stats);

/* Accepts NULL. Must not be called while rn_job_run() is running. */
RN_API void rn_job_destroy(rn_job_t *job);

#endif
