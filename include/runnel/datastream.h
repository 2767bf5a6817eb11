/*
 * runnel/datastream.h: building a job in C the way a Flink DataStream
 * program does, source -> filter / map / key_by / window / process -> sink,
 * on top of runnel/graph.h. Each call adds one component; its settings are
 * the keys a job file gives it, as YAML flow text ("{path: out.jsonl}"),
 * so everything in docs/job-file.md is available and checked the same way.
 *
 *   rn_env_t *env = rn_env_new("clicks");
 *   rn_stream_t *s = rn_source(env, "gen", "datagen", "{events: 10000, keys: 4, event_time: ts}");
 *   s = rn_filter(s, "odd", "value % 2 == 1");
 *   s = rn_window(rn_key_by(s, "key"), "per_key", "{type: tumbling, size: 1s}", "{n: count()}");
 *   rn_sink(s, "out", "file", "{path: out.jsonl}");
 *   rn_job_t *job = rn_env_job(env, NULL, &err);   (then rn_job_run)
 *
 * Errors are kept, not returned per call: after the first mistake every
 * call does nothing and returns NULL or nothing, and rn_env_job reports
 * that first mistake (with its component and position). Streams belong to
 * their env; a NULL stream is accepted everywhere, so a chain needs no
 * checks in between.
 */
#ifndef RUNNEL_DATASTREAM_H
#define RUNNEL_DATASTREAM_H

#include <runnel/graph.h>
#include <runnel/plugin.h>

typedef struct rn_env rn_env_t;
typedef struct rn_stream rn_stream_t;

/* @returns an empty job named job_name (free with rn_env_destroy, or hand
 * it to rn_env_job), NULL when out of memory. */
RN_API rn_env_t *rn_env_new(const char *job_name);
/* Accepts NULL. */
RN_API void rn_env_destroy(rn_env_t *env);
/* A job-level setting by dotted path, as `runnel run --set` does:
 * "parallelism", "state.backend", "checkpoints.interval", ... */
RN_API void rn_env_set(rn_env_t *env, const char *path, const char *value);

/* A source of type ("datagen", "file", "kafka"). */
RN_API rn_stream_t *rn_source(rn_env_t *env, const char *name, const char *type,
                              const char *settings);
/* Rows for which the expression `where` is true. */
RN_API rn_stream_t *rn_filter(rn_stream_t *in, const char *name, const char *where);
/* New rows from expressions: select is a YAML map of field -> expression. */
RN_API rn_stream_t *rn_map(rn_stream_t *in, const char *name, const char *select);
/* The same stream, keyed by fields ("user" or "[user, page]") for the
 * window or process function that takes it. */
RN_API rn_stream_t *rn_key_by(rn_stream_t *in, const char *fields);
/* Windows per key of a keyed stream: window and aggregates as in a job
 * file ("{type: tumbling, size: 1m}", "{clicks: count()}"). */
RN_API rn_stream_t *rn_window(rn_stream_t *keyed, const char *name, const char *window,
                              const char *aggregates);
/* A process function of this program (runnel/plugin.h), keyed when the
 * stream is; config: YAML handed to it, or NULL. fn is registered with
 * rn_process_fn_register and borrowed for the process's life. */
RN_API rn_stream_t *rn_process(rn_stream_t *in, const char *name, const rn_process_fn_t *fn,
                               const char *config);
/* Any operator type by name with its settings ("plugin" with a library,
 * or a built-in). */
RN_API rn_stream_t *rn_operator(rn_stream_t *in, const char *name, const char *type,
                                const char *settings);
/* The side output port of the component behind s ("late", "errors", a
 * process function's port). */
RN_API rn_stream_t *rn_side_output(rn_stream_t *s, const char *port);
/* A sink of type ("file", "stdout", "kafka", "discard"). */
RN_API void rn_sink(rn_stream_t *in, const char *name, const char *type, const char *settings);

/* Checks and plans the job (rn_job_new). @param env consumed, also on
 * failure. @returns the job (free with rn_job_destroy) or NULL with err
 * set: the first mistake made while building, or the plan's. */
RN_API rn_job_t *rn_env_job(rn_env_t *env, const rn_job_options_t *opts, rn_error_t *err);

#endif
