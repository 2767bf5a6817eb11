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

/* Checks that the checkpoint being restored fits the job: the same
 * parallelism per component (a savepoint changes it), and no state of a
 * component the job no longer has. */
static rn_code_t
check_restore(rn_job_t *job, rn_error_t *err)
{
    rn_restore_t *r = job->restore;
    const char *what = r->savepoint ? "savepoint" : "checkpoint";
    for (int i = 0; i < job->nnodes; i++) {
        rn_node_t *node = &job->nodes[i];
        int p = rn__restore_parallelism(r, node->name);
        if (p != 0 && p != node->parallelism && !r->savepoint)
            return rn__errf(err, RN_EINVAL,
                            "checkpoint %lld (%s) ran '%s' with parallelism %d, the job now "
                            "has %d: a checkpoint resumes only the same parallelism; take a "
                            "savepoint (runnel stop ADDR --savepoint DIR) to change it",
                            (long long)r->id, r->path, node->name, p, node->parallelism);
        if (p != 0 && r->max_parallelism != job->max_parallelism)
            return rn__errf(err, RN_EINVAL,
                            "%s %s was taken with max_parallelism %d, the job has %d: key "
                            "groups cannot be split again",
                            what, r->path, r->max_parallelism, job->max_parallelism);
    }
    for (int k = 0; k < r->nparts; k++) {
        bool found = false;
        for (int i = 0; i < job->nnodes && !found; i++)
            found = strcmp(job->nodes[i].name, r->parts[k].node) == 0;
        if (!found && r->parts[k].state != NULL && !job->allow_non_restored)
            return rn__errf(err, RN_EINVAL,
                            "%s %s has state of component '%s', which the job no longer has: "
                            "rename the component back, or run with "
                            "--allow-non-restored-state to drop that state",
                            what, r->path, r->parts[k].node);
    }
    return RN_OK;
}

/* The parts of a checkpoint's metadata against the job's graph, before
 * the checkpoint is chosen (a failure makes it damaged: recovery goes
 * back where the sinks allow). With aligned barriers (exactly-once) a
 * watermark comes from upstream before the barrier, so an
 * instance's is at most the greatest of its inputs' instances' (a
 * finished one's the end of time); an instance finishes only after every
 * input instance did. Forged metadata that breaks this would fire windows
 * early and drop the records that follow as late. */
static rn_code_t
check_against_graph(void *ctx, const json_t *meta, rn_error_t *err)
{
    rn_job_t *job = ctx;
    const json_t *parts = json_object_get(meta, "parts");
    /* Without alignment (at-least-once) a task snapshots at the last
     * barrier, after what channels sent past theirs: nothing to compare. */
    const char *mode = json_string_value(json_object_get(meta, "mode"));
    if (!job->ckpt_conf.exactly_once || mode == NULL || strcmp(mode, "exactly-once") != 0)
        return RN_OK;
    for (int i = 0; i < job->nnodes; i++) {
        const rn_node_t *n = &job->nodes[i];
        int64_t up = RN_TS_MIN;
        bool any = false, all_finished = true;
        size_t k;
        const json_t *pj;
        for (int j = 0; j < n->ninputs; j++) {
            const char *in = job->nodes[n->inputs[j].node].name;
            json_array_foreach(parts, k, pj)
            {
                if (strcmp(json_string_value(json_object_get(pj, "node")), in) != 0)
                    continue;
                bool fin = json_is_true(json_object_get(pj, "finished"));
                int64_t wm = fin ? RN_TS_MAX : json_integer_value(json_object_get(pj, "wm"));
                any = true;
                all_finished = all_finished && fin;
                up = wm > up ? wm : up;
            }
        }
        if (!any)
            continue; /* a source, or inputs new since the checkpoint */
        json_array_foreach(parts, k, pj)
        {
            if (strcmp(json_string_value(json_object_get(pj, "node")), n->name) != 0)
                continue;
            int inst = (int)json_integer_value(json_object_get(pj, "instance"));
            int64_t wm = json_integer_value(json_object_get(pj, "wm"));
            if (wm > up)
                return rn__errf(err, RN_ECORRUPT,
                                "part '%s' #%d: wm %lld is ahead of its inputs' (at most %lld)",
                                n->name, inst, (long long)wm, (long long)up);
            if (json_is_true(json_object_get(pj, "finished")) && !all_finished)
                return rn__errf(err, RN_ECORRUPT,
                                "part '%s' #%d: finished, but not every instance of its inputs",
                                n->name, inst);
        }
    }
    return RN_OK;
}

/* Finds the checkpoint to resume from (checkpoint/recover.c). */
static rn_code_t
recover(rn_job_t *job, rn_error_t *err)
{
    if (job->ckpt_conf.interval_ms <= 0) {
        if (job->from_savepoint != NULL)
            return rn__errf(err, RN_EINVAL,
                            "--from-savepoint needs checkpoints in the job file "
                            "(checkpoints: {interval: 10s, dir: ...})");
        return RN_OK;
    }
    bool rewind = true;
    for (int i = 0; i < job->nnodes; i++)
        if (job->nodes[i].section == RN_SINK && !job->nodes[i].cls->rewindable)
            rewind = false;
    rn_restore_t *cr = NULL;
    rn_code_t rc = rn__ckpt_recover(&job->ckpt_conf, job->name, rewind, check_against_graph,
                                    job, &cr, &job->ckpt_next_id, err);
    if (rc == RN_OK && job->from_savepoint != NULL) {
        /* An explicit savepoint wins over the newest checkpoint. */
        rn__restore_free(cr);
        cr = NULL;
        rc = rn__savepoint_recover(job->from_savepoint, job->ckpt_conf.dir, check_against_graph,
                                   job, &cr, err);
    }
    job->restore = cr;
    /* Numbering goes on after the restored checkpoint, also when it is a
     * savepoint elsewhere: a number used twice would name two epochs of
     * the same transactional sink alike (docs/kafka.md). */
    if (rc == RN_OK && cr != NULL && cr->id >= job->ckpt_next_id)
        job->ckpt_next_id = cr->id + 1;
    if (rc == RN_OK && job->restore != NULL) {
        rc = check_restore(job, err);
        if (rc == RN_OK)
            RN_LOG_INFO(job->name, "resuming from %s %lld (%s)",
                        job->restore->savepoint ? "savepoint" : "checkpoint",
                        (long long)job->restore->id, job->restore->path);
    }
    return rc;
}

/* The job up to its plan: every check of the graph and of each
 * component's configuration, nothing on disk (no state, no checkpoint
 * directories, no recovery). */
static rn_job_t *
job_plan(rn_graph_t *g, const rn_job_options_t *opts, rn_error_t *err)
{
    rn_job_t *job;

    if (g == NULL) {
        rn__errf(err, RN_EINVAL, "no graph");
        return NULL;
    }
    /* RUNNEL_LOG=debug|info|warn|error: how much goes to stderr. */
    const char *lv = getenv("RUNNEL_LOG");
    if (lv != NULL) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++)
            if (strcmp(lv, names[i]) == 0)
                rn__log_level = i;
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
    atomic_init(&job->ckpt_trigger, 0);
    atomic_init(&job->ckpt_complete, 0);
    atomic_init(&job->ckpt_final, 0);
    atomic_init(&job->stop_requested, 0);
    job->nworkers = opts ? opts->workers : 0;
    if (opts != NULL && opts->from_savepoint != NULL)
        job->from_savepoint = rn_xstrdup(opts->from_savepoint);
    job->allow_non_restored = opts != NULL && opts->allow_non_restored_state;
    job->accept_duplicates = opts != NULL && opts->accept_duplicates;
    job->allow_code_properties = opts != NULL && opts->allow_code_properties;
    job->plan_only = true;
    if (rn__job_plan(job, err) != RN_OK) {
        if (err != NULL)
            err->flags |= RN_ERR_DEFINITION;
        rn_job_destroy(job);
        return NULL;
    }
    return job;
}

rn_job_t *
rn_job_plan(rn_graph_t *g, const rn_job_options_t *opts, rn_error_t *err)
{
    return job_plan(g, opts, err);
}

rn_job_t *
rn_job_new(rn_graph_t *g, const rn_job_options_t *opts, rn_error_t *err)
{
    rn_job_t *job = job_plan(g, opts, err);
    rn_code_t rc;

    if (job == NULL)
        return NULL;
    job->plan_only = false;
    if ((rc = recover(job, err)) != RN_OK || (rc = rn__exec_build(job, err)) != RN_OK) {
        rn_job_destroy(job);
        return NULL;
    }
    if (job->ckpt_conf.interval_ms > 0 &&
        (job->ckpt = rn__ckpt_new(job, &job->ckpt_conf, job->ckpt_next_id, err)) == NULL) {
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

    if (job->plan_only)
        return rn__errf(err, RN_EINVAL, "job '%s' was only planned (rn_job_plan); make it "
                                        "with rn_job_new to run it",
                        job->name);

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
    /* Restored state: every state registered again (in open), so the
     * registry can be checked and compaction can start. */
    for (int t = 0; t < job->ntasks && rc == RN_OK; t++) {
        rn_task_t *task = job->tasks[t];
        for (int i = 0; i < task->nops && rc == RN_OK; i++)
            if (task->ops[i]->st != NULL)
                rc = rn__state_ready(task->ops[i]->st, err);
    }
    if (job->restore != NULL) {
        job->restored_from = job->restore->id;
        for (int t = 0; t < job->ntasks; t++)
            for (int i = 0; i < job->tasks[t]->nops; i++) {
                rn_op_t *op = job->tasks[t]->ops[i];
                op->restored = NULL;
                json_decref(op->restored_all);
                op->restored_all = NULL;
            }
        rn__restore_free(job->restore);
        job->restore = NULL;
    }
    if (rc == RN_OK && job->rest_listen != NULL &&
        (job->rest = rn__rest_start(job, job->rest_listen, err)) == NULL)
        rc = err != NULL ? err->code : RN_EIO;
    if (rc == RN_OK) {
        atomic_store(&job->running, 1);
        rc = rn__workers_run(job, err);
        atomic_store(&job->running, 0);
    }
    /* The coordinator first: it answers savepoints through the endpoint. */
    rn__ckpt_stop(job->ckpt);
    rn__rest_stop(job->rest);
    job->rest = NULL;
    close_all(job);
    rn__workers_free(job);
    return rc;
}

void
rn_job_cancel(rn_job_t *job)
{
    atomic_store(&job->cancel, 1);
}

void
rn_job_stop(rn_job_t *job)
{
    if (job->ckpt == NULL)
        atomic_store(&job->cancel, 1);
    else
        atomic_store(&job->stop_requested, 1);
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
    if (job->ckpt != NULL) {
        rn_ckpt_stats_t cs;
        rn__ckpt_stats(job->ckpt, &cs);
        stats->checkpoints_completed = cs.completed;
        stats->checkpoints_failed = cs.failed;
        stats->last_checkpoint = cs.last_id;
        stats->checkpoint_pause_p50_us = cs.pause_p50_us;
        stats->checkpoint_pause_p99_us = cs.pause_p99_us;
        stats->checkpoint_pause_max_us = cs.pause_max_us;
        stats->checkpoint_bytes_added = cs.total_added;
        stats->checkpoint_bytes_referred = cs.total_size;
        stats->checkpoint_duration_ms = cs.total_duration_ms;
    }
    stats->restored_from = job->restore != NULL ? job->restore->id : job->restored_from;
    stats->stopped_at = job->stopped_at;
}

void
rn_job_destroy(rn_job_t *job)
{
    if (job == NULL)
        return;
    rn__ckpt_destroy(job->ckpt);
    rn__exec_destroy(job);
    rn__workers_free(job);
    rn__restore_free(job->restore);
    rn_free(job->ckpt_conf.dir);
    rn_free(job->from_savepoint);
    rn_free(job->rest_listen);
    rn_free(job->ckpt_conf.savepoints);
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
