/*
 * stream/component.h: how sources, operators and sinks plug into the
 * runtime.
 *
 * A component type is an rn_opclass_t registered by name. Its life has two
 * halves:
 *
 *  - Plan time (@thread control, before the job starts): plan() reads the
 *    component's conf through rn__pc_*(), checks it against the schemas of
 *    its inputs, declares its output ports and their schemas, its key (for
 *    keyed components) and an immutable plan object shared by all its
 *    instances. Every mistake a user can make in a job file is found here
 *    and reported with its FILE:LINE:COL (rn__conf_err).
 *
 *  - Run time (@thread task): each of the `parallelism` instances is an
 *    rn_op_t, opened, fed batches (process), control events (watermarks,
 *    timers, end of input) and closed, always by the same worker thread at
 *    a time. Output goes through rn__op_emit(), which calls the next
 *    operator of the chain directly or hands the batch to the exchange.
 *
 * Event time is the runtime's business, not the source's: after a source
 * emits a batch, the runtime stamps each row's ts from the `event_time`
 * field (or the clock) and advances the source instance's watermark
 * (windows/watermark.h). Sources only guarantee that the event-time field
 * is not null in what they emit (a record without one is a bad record,
 * handled by on_error).
 */
#ifndef RN_STREAM_COMPONENT_H
#define RN_STREAM_COMPONENT_H

#include "stream/conf.h"
#include "stream/key.h"
#include "stream/row.h"
#include "state/state.h"

#include <jansson.h>

typedef struct rn_plan_ctx rn_plan_ctx_t;
typedef struct rn_op rn_op_t;

typedef struct rn_opclass {
    const char *type;     /* "filter", "file", ... */
    rn_section_t section; /* RN_SOURCE, RN_OPERATOR or RN_SINK */
    /* Conf keys of this type, NULL-terminated, besides the common ones the
     * runtime reads itself: type, inputs, parallelism (all), event_time and
     * watermark (sources). Unknown keys are refused with did-you-mean. */
    const char *const *keys;

    /* Plan time. Required. */
    rn_code_t (*plan)(rn_plan_ctx_t *pc, rn_error_t *err);

    /* Run time; any may be NULL. */
    rn_code_t (*open)(rn_op_t *op, rn_error_t *err);
    /* Sources: produce at most about one batch. RN_OK after progress,
     * RN_EAGAIN when nothing is available now; *done = true once the source
     * is exhausted (bounded sources). */
    rn_code_t (*poll)(rn_op_t *op, bool *done, rn_error_t *err);
    /* Operators and sinks: one batch from input `input` (index into the
     * component's inputs). @param b consumed: emit it onward, or free it with
     * rn__op_free_batch(). */
    rn_code_t (*process)(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err);
    /* An event-time or processing-time timer fired; its key is the state's
     * current key. */
    rn_code_t (*on_timer)(rn_op_t *op, const rn_timer_t *t, rn_error_t *err);
    /* The input watermark advanced to wm, after the timers up to wm fired
     * and before wm is forwarded downstream. */
    rn_code_t (*on_watermark)(rn_op_t *op, int64_t wm, rn_error_t *err);
    /* Every input ended (after the final watermark). Sinks make their
     * output final here. */
    rn_code_t (*finish)(rn_op_t *op, rn_error_t *err);
    /* Always called once open() succeeded, also after a failure: a sink
     * that did not finish removes what it wrote. */
    void (*close)(rn_op_t *op);

    /* Checkpoints (docs/checkpoints.md), all optional. snapshot: the
     * instance's own part of checkpoint id, taken when the barrier reaches
     * it (a source: before it sends the barrier; id 0: the instance has
     * finished, for the checkpoints taken after that): *data a JSON object
     * (owned by the caller; NULL: nothing), *file a path (rn_malloc'd) of a
     * file the checkpoint must hold, which the instance keeps until
     * complete() of id or later (id 0's: until complete() of
     * RN_JOB_END or close()). Restoring, open() finds the part again
     * with rn__op_restored(). */
    rn_code_t (*snapshot)(rn_op_t *op, int64_t id, json_t **data, char **file, rn_error_t *err);
    /* Checkpoint id is durable: make visible what it covers (sinks). Ids
     * only grow; an id may be skipped (aborted ones are never told). A
     * finished instance is told no more, except RN_JOB_END when it asked
     * for it (rn__op_commit_at_end). */
    rn_code_t (*complete)(rn_op_t *op, int64_t id, rn_error_t *err);
    /* Sinks: what the sink made visible after a checkpoint can be taken
     * back on recovery (the file sink truncates), so recovery may go back
     * past a damaged checkpoint. */
    bool rewindable;
} rn_opclass_t;

/* ---- registry ---- */

/* @returns the class of type in section, or NULL. */
const rn_opclass_t *rn__opclass_find(rn_section_t section, const char *type);
/* NULL-terminated list of the type names of a section (static). */
const char *const *rn__opclass_names(rn_section_t section);

/* ---- plan time ---- */

const rn_conf_t *rn__pc_conf(const rn_plan_ctx_t *pc);
const char *rn__pc_name(const rn_plan_ctx_t *pc);
int rn__pc_parallelism(const rn_plan_ctx_t *pc);
int rn__pc_ninputs(const rn_plan_ctx_t *pc);
const rn_schema_t *rn__pc_input_schema(const rn_plan_ctx_t *pc, int i);
/* The node that names input i in `inputs`, for error positions. */
const rn_conf_t *rn__pc_input_node(const rn_plan_ctx_t *pc, int i);

/* Declares an output port with its schema. port NULL is the main output;
 * a named port is the side output "component.port".
 * @param schema consumed. */
rn_code_t rn__pc_add_output(rn_plan_ctx_t *pc, const char *port, rn_schema_t *schema,
                            rn_error_t *err);
/* @returns the port index of the side output named port (1, 2, ...). The
 * main output is port 0. */
int rn__pc_port(const rn_plan_ctx_t *pc, const char *port);

/* Keyed components: records reach instances by key group of these fields
 * (resolved in every input's schema; a missing field is an error at node)
 * and each instance gets a keyed state backend. */
rn_code_t rn__pc_set_key(rn_plan_ctx_t *pc, const char *const *fields, size_t n,
                         const rn_conf_t *node, rn_error_t *err);
/* The key spec of input i (after rn__pc_set_key). */
const rn_keyspec_t *rn__pc_keyspec(const rn_plan_ctx_t *pc, int i);

/* Sinks that must run as one instance (a file sink writes one file). */
void rn__pc_force_parallelism(rn_plan_ctx_t *pc, int parallelism);
/* Sources: whether the source ends by itself. */
void rn__pc_set_bounded(rn_plan_ctx_t *pc, bool bounded);
/* rn_job_options_t.allow_code_properties. */
bool rn__pc_allow_code_properties(const rn_plan_ctx_t *pc);
/* Sources: the position of the event-time field in the main output, or -1
 * for processing time. Valid after rn__pc_add_output(pc, NULL, ...). */
int rn__pc_event_time_field(const rn_plan_ctx_t *pc);

/* The component's plan object, shared by its instances; freed with
 * free_fn when the job is destroyed. @param plan consumed. */
void rn__pc_set_plan(rn_plan_ctx_t *pc, void *plan, void (*free_fn)(void *plan));

/* ---- run time (@thread task) ---- */

void *rn__op_plan(const rn_op_t *op);
void *rn__op_data(const rn_op_t *op);
void rn__op_set_data(rn_op_t *op, void *data);
const char *rn__op_name(const rn_op_t *op);
int rn__op_instance(const rn_op_t *op);
int rn__op_parallelism(const rn_op_t *op);
const rn_schema_t *rn__op_schema(const rn_op_t *op, int port);
/* The keyed state backend (keyed components only, else NULL). */
rn_state_t *rn__op_state(const rn_op_t *op);
const rn_keyspec_t *rn__op_keyspec(const rn_op_t *op, int input);
/* Encodes row's key (row of input `input`), sets it as the state's current
 * key and returns its bytes (borrowed until the next call) in *key and *len. */
rn_code_t rn__op_set_key_from_row(rn_op_t *op, int input, const rn_value_t *row,
                                  const uint8_t **key, size_t *len, rn_error_t *err);
/* The hash of row's key (rn__key_hash of its encoding), without making it
 * the current key: for operators that look ahead in a batch.
 * @returns false when the key is too long (set_key_from_row says why). */
bool rn__op_row_key_hash(rn_op_t *op, int input, const rn_value_t *row, uint64_t *hash);
/* The current input watermark (RN_TS_MIN before the first). */
int64_t rn__op_watermark(const rn_op_t *op);
/* Processing time, epoch ms. */
int64_t rn__op_now(const rn_op_t *op);
/* Wakes the worker that runs op's task (asleep for want of work: up to
 * 10 ms otherwise), for a source whose client receives data on a thread
 * of its own. Call it only from the op's own poll on, once the task
 * runs. @thread any. */
void rn__op_wake(rn_op_t *op);
/* Sources that read several splits (Kafka partitions): the least, over
 * the splits that are neither idle nor finished, of the highest event
 * time each has seen (RN_TS_MIN while an active split has none;
 * RN_TS_MAX when no split is active). The instance's watermark follows
 * it instead of the highest event time of all its records. */
void rn__op_split_bound(rn_op_t *op, int64_t bound);
/* The source's watermark settings: max_out_of_orderness and idle_timeout
 * in ms (0: never idle). */
void rn__op_watermark_conf(const rn_op_t *op, int64_t *max_ooo_ms, int64_t *idle_ms);

/* Restoring from a checkpoint: this instance's part (its JSON data and
 * the path of its file, both valid during open()), or NULL when the job
 * starts without one or the instance had no part. */
const json_t *rn__op_restored(const rn_op_t *op);
const char *rn__op_restored_file(const rn_op_t *op);
/* A source restored as having ended (it ends at once): its position must
 * say it had read everything. */
bool rn__op_restored_finished(const rn_op_t *op);
/* Restoring a savepoint taken with another parallelism of this
 * component: a JSON array with every old instance's {"instance": i,
 * "data": its object or null, "file": the path of its file, when it had
 * one}, valid during open(); NULL otherwise. A component that cannot
 * redistribute its data refuses it in open(). */
const json_t *rn__op_restored_all(const rn_op_t *op);
/* Whether the job takes checkpoints (sinks commit on complete()). */
bool rn__op_checkpointing(const rn_op_t *op);
/* rn_job_options_t.accept_duplicates. */
bool rn__op_accept_duplicates(const rn_op_t *op);
/* The job's name (borrowed for the job's life). */
const char *rn__op_job_name(const rn_op_t *op);
/* complete()'s id when the job has ended with every task finished its
 * input: nothing can fail and be replayed any more. */
#define RN_JOB_END INT64_MAX
/* Called in finish(): what the instance has not made visible yet waits
 * for the end of the job rather than going out now, since another
 * instance may still fail and the job restart from a checkpoint that
 * precedes this end (Flink's sinks commit on the final checkpoint for the
 * same reason). When every task has finished, the job takes one more
 * checkpoint, which holds every finished instance's part (snapshot id 0),
 * and then calls complete(op, RN_JOB_END, err) on the thread that runs the
 * job; an error there fails the job. @thread task. */
void rn__op_commit_at_end(rn_op_t *op);

/* @returns an empty batch for port's schema (owned by the caller until
 * emitted or freed). */
rn_batch_t *rn__op_batch(rn_op_t *op, int port);
/* @param b consumed. Empty batches are dropped. */
rn_code_t rn__op_emit(rn_op_t *op, int port, rn_batch_t *b, rn_error_t *err);
/* Frees a batch (returns it to the task's pool). @param b consumed. */
void rn__op_free_batch(rn_op_t *op, rn_batch_t *b);

#endif
