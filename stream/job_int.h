/*
 * stream/job_int.h: the planned job and its running parts, private to
 * stream/.
 *
 * Plan (graph.c, @thread control): components become rn_node_t in
 * topological order, each with its output ports and schemas, its inputs
 * resolved to (node, port), and its parallelism. Edges are forward (equal
 * parallelism, not keyed), rebalance (batches round-robin) or keyed (rows
 * by key group). A node with one forward input is chained into its
 * upstream: same task, direct calls, no queue.
 *
 * Run (exec.c, worker.c, @thread task/worker): a task is one instance of a
 * chain. Tasks are spread over a fixed pool of worker threads; a task runs
 * only on its worker, so nothing a task owns needs a lock. Tasks talk only
 * through bounded queues of messages (batches and control events, in
 * order); a producer whose queue is full parks its output in an outbox and
 * takes no new input until the outbox drains (backpressure).
 */
#ifndef RN_STREAM_JOB_INT_H
#define RN_STREAM_JOB_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "checkpoint/ckpt.h"
#include "stream/component.h"
#include "windows/watermark.h"

typedef struct rn_node rn_node_t;
typedef struct rn_task rn_task_t;
typedef struct rn_queue rn_queue_t;
typedef struct rn_worker rn_worker_t;

struct rn_graph {
    rn_conf_t *root; /* owned */
};

typedef enum { RN_EDGE_FORWARD, RN_EDGE_REBALANCE, RN_EDGE_KEYED } rn_edge_kind_t;

typedef struct rn_input {
    int node;               /* upstream node index */
    int port;               /* upstream port */
    const rn_conf_t *where; /* the `inputs` entry, for messages */
    rn_edge_kind_t edge;
    bool chained;
} rn_input_t;

typedef struct rn_consumer {
    int node;  /* consumer node index */
    int input; /* which of its inputs */
} rn_consumer_t;

typedef struct rn_port {
    char *name; /* NULL for the main output */
    rn_schema_t *schema;
    int nconsumers;
    rn_consumer_t *consumers;
} rn_port_t;

struct rn_node {
    int index;
    char *name;
    rn_section_t section;
    const rn_opclass_t *cls;
    const rn_conf_t *conf;
    int parallelism;
    int forced_parallelism; /* 0: none */
    bool bounded;

    int ninputs;
    rn_input_t *inputs;
    int nports;
    rn_port_t *ports;

    bool keyed;
    rn_keyspec_t *keyspecs; /* per input */

    void *plan;
    void (*plan_free)(void *plan);

    /* Sources: event time. */
    int event_time_field; /* -1: processing time */
    int64_t max_ooo_ms;
    int64_t idle_ms;

    bool chain_head;
    int order; /* position in topological order */
};

struct rn_plan_ctx {
    rn_job_t *job;
    rn_node_t *node;
};

/* A message between tasks. */
/* RN_MSG_BARRIER carries a checkpoint id in u.wm (barrier.c). */
typedef enum {
    RN_MSG_DATA,
    RN_MSG_WATERMARK,
    RN_MSG_IDLE,
    RN_MSG_END,
    RN_MSG_BARRIER
} rn_msg_kind_t;

typedef struct rn_msg {
    uint8_t kind;
    uint16_t input; /* consumer's input index */
    uint32_t chan;  /* consumer's channel index */
    union {
        rn_batch_t *batch;
        int64_t wm;
    } u;
} rn_msg_t;

/* Where one output port of an operator instance goes. */
typedef struct rn_xwriter rn_xwriter_t; /* exchange writer to other tasks */

typedef struct rn_dest {
    rn_op_t *chained; /* direct call, or NULL */
    int input;        /* input index at the chained op */
    rn_xwriter_t *xw; /* exchange, when not chained */
} rn_dest_t;

typedef struct rn_outport {
    int ndests;
    rn_dest_t *dests;
} rn_outport_t;

struct rn_op {
    rn_node_t *node;
    int instance;
    rn_task_t *task;
    rn_job_t *job;
    void *data;
    rn_state_t *st;
    rn_outport_t *outs; /* per port */
    int64_t wm;
    bool opened;
    bool finished;
    bool commit_at_end; /* rn__op_commit_at_end() */
    rn_wmgen_t wmgen; /* sources */
    uint64_t records_in;
    /* Restoring: this instance's part of the checkpoint (borrowed from
     * job->restore until the job runs), or NULL. */
    const rn_ckpt_part_t *restored;
    bool restored_finished; /* a source that had ended: ends at once */
    json_t *restored_all;   /* rescaled: the data of every old instance (owned) */
    uint8_t keybuf[RN_KEY_MAX];
};

typedef struct rn_outbox_item {
    rn_task_t *to;
    rn_msg_t msg;
} rn_outbox_item_t;

struct rn_task {
    int id;
    rn_job_t *job;
    rn_worker_t *worker;
    rn_op_t *head;
    int nops;
    rn_op_t **ops; /* head first, then chained ops */
    rn_queue_t *queue; /* NULL for source tasks */
    rn_wmmin_t wmmin;  /* per input channel */
    bool idle_sent;
    bool done;
    bool source_done;
    int64_t last_idle_check_ms;
    /* Messages that did not fit their queue, oldest first. */
    rn_outbox_item_t *outbox;
    size_t outbox_len, outbox_head, outbox_cap;
    /* Batch free lists, by schema. */
    struct {
        const rn_schema_t *schema;
        rn_batch_t *free;
        int count;
    } pools[8];
    int npools;
    /* Checkpoints (barrier.c). */
    int64_t ckpt_injected; /* sources: the last barrier sent */
    int64_t ckpt_aligning; /* the barrier being aligned, 0: none */
    uint32_t nbarriers;    /* channels that delivered it */
    int64_t align_start_ns; /* when its first barrier came */
    bool *blocked;         /* per channel: delivered it, held back (exactly-once) */
    rn_msg_t *stash;       /* messages of blocked channels, in arrival order */
    size_t stash_len, stash_cap;
    rn_msg_t *replay;      /* messages released by the last alignment */
    size_t replay_len, replay_pos;
    rn_msg_t inbuf[4];     /* popped from the queue, not yet handled */
    size_t inbuf_len, inbuf_pos;
    int64_t ckpt_notified; /* the last completed checkpoint its ops were told */
    bool stopped;          /* sources: a final checkpoint stopped it */
    rn_ckpt_part_t *final_parts; /* set when done (under job->lock) */
    int nfinal;
    _Atomic uint64_t records_in;  /* sources: records emitted */
    _Atomic uint64_t records_out; /* sinks: records accepted */
    _Atomic int64_t sink_wm;
};

struct rn_job {
    char *name;
    rn_conf_t *root; /* owned; nodes point into it */
    int parallelism;
    int max_parallelism;
    int nworkers;
    int nnodes;
    rn_node_t *nodes;
    int *topo; /* node indices in topological order */
    rn_state_options_t state_opts;
    char *state_backend;
    bool plan_only; /* made by rn_job_plan: describe and destroy only */

    int ntasks;
    rn_task_t **tasks;
    rn_worker_t *workers;
    int ntasks_done; /* guarded by lock */
    pthread_mutex_t lock;
    _Atomic int cancel;
    _Atomic int running;
    rn_error_t error; /* first fatal error; guarded by lock */
    bool failed;

    /* Checkpoints: the coordinator (NULL: none), what tasks act on, and
     * what was restored. */
    rn_ckpt_conf_t ckpt_conf;
    rn_ckpt_t *ckpt;
    _Atomic int64_t ckpt_trigger;  /* the newest checkpoint sources must take */
    _Atomic int64_t ckpt_complete; /* the newest completed checkpoint */
    _Atomic int64_t ckpt_final;    /* a checkpoint after which the job stops, 0: none */
    rn_restore_t *restore;
    char *from_savepoint; /* owned, or NULL */
    char *rest_listen;    /* rest.listen, owned, or NULL */
    struct rest *rest;    /* the REST endpoint while the job runs (rest.c) */
    bool allow_non_restored;
    bool accept_duplicates; /* rn_job_options_t's */
    bool allow_code_properties; /* rn_job_options_t's */
    int64_t ckpt_next_id;
    _Atomic int stop_requested; /* rn_job_stop: a final checkpoint, then stop */
    int64_t restored_from;
    int64_t stopped_at; /* the final checkpoint the job stopped at, 0: none */
    bool end_ckpt;      /* rn__job_end_checkpoint() took one */
};

/* graph.c */
rn_code_t rn__job_plan(rn_job_t *job, rn_error_t *err);

/* exec.c: building and running tasks. */
rn_code_t rn__exec_build(rn_job_t *job, rn_error_t *err);
void rn__exec_destroy(rn_job_t *job);
/* Runs one step of task; @returns true when it made progress. */
bool rn__task_step(rn_task_t *task, int64_t now_ms);
void rn__job_fail(rn_job_t *job, const rn_error_t *err);

/* exec.c, for barrier.c: sends a control message on every exchange of the
 * task's operators (after their buffered rows). */
void rn__task_broadcast(rn_task_t *task, uint8_t kind, int64_t value);
rn_code_t rn__task_handle_msg(rn_task_t *task, const rn_msg_t *m, rn_error_t *err);
void rn__task_mark_done(rn_task_t *task);
/* Finishes the task's part of a checkpoint in progress (rn__state_tick
 * with all): for a task that will not step again. @thread the task's, or
 * any once the workers stopped. */
void rn__task_settle(rn_task_t *task);

/* restore.c: what an operator instance takes from a checkpoint or
 * savepoint being restored (job->restore): op->restored (same
 * parallelism) or op->restored_all and key-group imports (rescaling), its
 * watermark, and so's restore fields (imports: caller's array of
 * RN_RESTORE_IMPORTS_MAX, borrowed by so until the state is made). */
#define RN_RESTORE_IMPORTS_MAX 64
rn_code_t rn__op_restore_setup(rn_job_t *job, rn_op_t *op, rn_state_options_t *so,
                               const char **imports, rn_error_t *err);

/* barrier.c: checkpoints in the runtime. */
/* Sources: injects the triggered barrier; @returns false when the source
 * must not poll (stopped by a final checkpoint). */
bool rn__barrier_source(rn_task_t *task);
/* A message taken from the queue or the replay, in order: barriers align,
 * messages of blocked channels are held back, others are handled. */
rn_code_t rn__barrier_dispatch(rn_task_t *task, const rn_msg_t *m, rn_error_t *err);
/* A channel ended: alignment may be complete now. */
rn_code_t rn__barrier_chan_ended(rn_task_t *task, rn_error_t *err);
/* The next input message: what the last alignment released first, then
 * the queue. @returns false when there is none now. */
bool rn__barrier_next(rn_task_t *task, rn_msg_t *m);
/* Tells the task's operators about completed checkpoints; @returns true
 * when the task stops here (final checkpoint). */
bool rn__barrier_notify(rn_task_t *task);
/* What a finished task contributes to later checkpoints (task thread,
 * when it becomes done). */
void rn__barrier_final_parts(rn_task_t *task);
/* For the coordinator: copies of a done task's parts (under job->lock).
 * @returns false when the task is not done. */
bool rn__job_done_parts(rn_job_t *job, int task, rn_ckpt_part_t **parts, int *nparts);
/* After every task finished (workers joined, the coordinator still up):
 * when an operator asked for rn__op_commit_at_end(), takes one more
 * checkpoint, which holds every task's final part, and waits for it.
 * @thread the job's. */
rn_code_t rn__job_end_checkpoint(rn_job_t *job, rn_error_t *err);
/* Then, the coordinator stopped: complete(op, RN_JOB_END) for those
 * operators. @thread the job's. */
rn_code_t rn__job_end_commit(rn_job_t *job, rn_error_t *err);
void rn__barrier_task_fini(rn_task_t *task);
/* For the coordinator (any thread). */
void rn__job_trigger(rn_job_t *job, int64_t id, bool final);
void rn__job_complete(rn_job_t *job, int64_t id);
int rn__job_ntasks(const rn_job_t *job);
void rn__job_wake(rn_job_t *job);

/* rest.c: the REST endpoint. */
struct rest *rn__rest_start(rn_job_t *job, const char *listen, rn_error_t *err);
void rn__rest_stop(struct rest *r);

/* worker.c: the queue and the pool. */
rn_queue_t *rn__queue_new(size_t cap);
void rn__queue_destroy(rn_queue_t *q);
/* @returns false when full (the message is not taken). @thread any */
bool rn__queue_push(rn_queue_t *q, const rn_msg_t *msg, rn_task_t *producer);
/* Pops up to max messages. @returns how many. @thread the consumer's worker */
size_t rn__queue_pop(rn_queue_t *q, rn_msg_t *out, size_t max);
void rn__worker_wake(rn_worker_t *w);
rn_code_t rn__workers_run(rn_job_t *job, rn_error_t *err);
/* Frees the pool, after the operators closed. */
void rn__workers_free(rn_job_t *job);

#endif
