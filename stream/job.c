/*
 * stream/job.c: the life of a job: plan, open, run, close.
 *
 * Operators are opened on the calling thread before the workers start and
 * closed after they have been joined, so that open() and close() never race
 * with the task that runs the operator (pthread_create and pthread_join
 * order the memory).
 *
 * @thread control, except rn_job_cancel() and rn_job_stats() (any).
 */
#include "stream/job_int.h"

rn_job_t *
rn_job_new(rn_graph_t *g, const rn_job_options_t *opts, rn_error_t *err)
{
    rn_job_t *job;
    rn_code_t rc;

    if (g == NULL) {
        rn__errf(err, RN_EINVAL, "no graph");
        return NULL;
    }
    if (opts != NULL && opts->abi != RN_ABI_VERSION) {
        rn__errf(err, RN_EABI, "rn_job_options built for ABI %d, this librunnel has ABI %d",
                 opts->abi, RN_ABI_VERSION);
        rn_graph_destroy(g);
        return NULL;
    }
    job = rn_xcalloc(1, sizeof(*job));
    job->root = g->root;
    g->root = NULL;
    rn_graph_destroy(g);
    pthread_mutex_init(&job->lock, NULL);
    atomic_init(&job->cancel, 0);
    atomic_init(&job->running, 0);
    job->nworkers = opts ? opts->workers : 0;
    if ((rc = rn__job_plan(job, err)) != RN_OK || (rc = rn__exec_build(job, err)) != RN_OK) {
        rn_job_destroy(job);
        return NULL;
    }
    return job;
}

static void
close_all(rn_job_t *job)
{
    /* Downstream first is not needed: close() only releases what the
     * operator holds (a sink that did not finish removes its output). */
    for (int t = 0; t < job->ntasks; t++) {
        rn_task_t *task = job->tasks[t];
        for (int i = 0; i < task->nops; i++) {
            rn_op_t *op = task->ops[i];
            if (op->opened && op->node->cls->close)
                op->node->cls->close(op);
            op->opened = false;
        }
    }
}

rn_code_t
rn_job_run(rn_job_t *job, rn_error_t *err)
{
    rn_code_t rc = RN_OK;

    for (int t = 0; t < job->ntasks && rc == RN_OK; t++) {
        rn_task_t *task = job->tasks[t];
        for (int i = 0; i < task->nops && rc == RN_OK; i++) {
            rn_op_t *op = task->ops[i];
            if (op->node->cls->open && (rc = op->node->cls->open(op, err)) != RN_OK) {
                rn__errctx(err, "%s '%s' (instance %d)",
                           op->node->section == RN_SOURCE  ? "source"
                           : op->node->section == RN_SINK ? "sink"
                                                          : "operator",
                           op->node->name, op->instance);
                break;
            }
            op->opened = true;
        }
    }
    if (rc == RN_OK) {
        atomic_store(&job->running, 1);
        rc = rn__workers_run(job, err);
        atomic_store(&job->running, 0);
    }
    close_all(job);
    return rc;
}

void
rn_job_cancel(rn_job_t *job)
{
    atomic_store(&job->cancel, 1);
}

void
rn_job_stats(const rn_job_t *job, rn_job_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    stats->watermark = RN_TS_MAX;
    bool any_sink = false;
    for (int t = 0; t < job->ntasks; t++) {
        rn_task_t *task = job->tasks[t];
        stats->records_in += atomic_load_explicit(&task->records_in, memory_order_relaxed);
        stats->records_out += atomic_load_explicit(&task->records_out, memory_order_relaxed);
        for (int i = 0; i < task->nops; i++) {
            if (task->ops[i]->node->section == RN_SINK) {
                int64_t wm = atomic_load_explicit(&task->sink_wm, memory_order_relaxed);
                any_sink = true;
                if (wm < stats->watermark)
                    stats->watermark = wm;
                break;
            }
        }
    }
    if (!any_sink)
        stats->watermark = RN_TS_MIN;
    stats->running = atomic_load(&job->running) != 0;
}

void
rn_job_destroy(rn_job_t *job)
{
    if (job == NULL)
        return;
    rn__exec_destroy(job);
    for (int i = 0; i < job->nnodes; i++) {
        rn_node_t *node = &job->nodes[i];
        if (node->plan_free)
            node->plan_free(node->plan);
        for (int p = 0; p < node->nports; p++) {
            rn_free(node->ports[p].name);
            rn__schema_destroy(node->ports[p].schema);
            rn_free(node->ports[p].consumers);
        }
        rn_free(node->ports);
        rn_free(node->inputs);
        rn_free(node->keyspecs);
        rn_free(node->name);
    }
    rn_free(job->nodes);
    rn_free(job->topo);
    rn_free(job->name);
    rn_free(job->state_backend);
    rn_conf_destroy(job->root);
    pthread_mutex_destroy(&job->lock);
    rn_free(job);
}
