/*
 * stream/barrier.c: checkpoint barriers in the runtime (docs/checkpoints.md).
 *
 * Sources: when the coordinator triggers checkpoint n, each source task,
 * between two polls, snapshots its operators (the source's position is in
 * its part) and sends barrier n on every output, after the rows it sent
 * before. A final checkpoint (stop with a checkpoint) also stops the
 * source: it polls no more and sends no end of input, so that windows do
 * not fire for a job that is only pausing.
 *
 * Tasks with inputs: barrier n arrives once per input channel. With
 * exactly-once, a channel that delivered it is blocked: what it sends next
 * is held back (the stash) until every live channel delivered n; then the
 * task snapshots its operators, forwards n and replays what it held back
 * before reading its queue again. This is Flink's aligned checkpoint: the
 * snapshot contains exactly the records before the barrier on every
 * channel. With at-least-once nothing is held back; the snapshot is taken
 * at the last barrier, and records that passed an earlier one are in it
 * and replayed after a restore (duplicates, never losses).
 *
 * A barrier newer than the one being aligned (the older one was aborted
 * and a source skipped it) ends the old alignment: what was held back is
 * released and the new one starts. Older barriers are ignored.
 *
 * The snapshot of a task's operators: for each, its watermark, whether it
 * finished, its own JSON and file (component.h: snapshot) and, for keyed
 * operators, the synchronous part of its state's snapshot in a staging
 * directory. A failure declines the checkpoint (it is aborted and
 * counted) but not the job, unless it is fatal (RN_ERR_FATAL: state
 * that can no longer be checkpointed).
 *
 * @thread task, except rn__job_* (coordinator).
 */
#include "stream/job_int.h"

#include "checkpoint/crash.h"

#include <time.h>

void
rn__ckpt_part_fini(rn_ckpt_part_t *p)
{
    /* Never finished (the checkpoint was aborted): the frozen values must
     * still reach the state's files. */
    if (p->fin.fn != NULL)
        p->fin.fn(p->fin.ctx, false, NULL);
    rn_free(p->node);
    if (p->data != NULL)
        json_decref(p->data);
    rn_free(p->file);
    rn_free(p->state);
    memset(p, 0, sizeof(*p));
}

static void
parts_free(rn_ckpt_part_t *parts, int n)
{
    for (int i = 0; i < n; i++)
        rn__ckpt_part_fini(&parts[i]);
    rn_free(parts);
}

/* Fills the parts of the task's operators for checkpoint id (0: the final
 * parts of a finished task, without state). */
static rn_code_t
snapshot_ops(rn_task_t *task, int64_t id, rn_ckpt_part_t *parts, rn_error_t *err)
{
    rn_job_t *job = task->job;
    for (int i = 0; i < task->nops; i++) {
        rn_op_t *op = task->ops[i];
        rn_ckpt_part_t *p = &parts[i];
        rn_code_t rc;
        p->node = rn_xstrdup(op->node->name);
        p->instance = op->instance;
        p->finished = op->finished || op->restored_finished || id == 0;
        p->wm = op->wm;
        p->kg_first = 1; /* none */
        if (op->node->keyed)
            rn__key_group_range((uint32_t)op->instance, (uint32_t)job->max_parallelism,
                                (uint32_t)op->node->parallelism, &p->kg_first, &p->kg_last);
        if (op->node->cls->snapshot != NULL &&
            (rc = op->node->cls->snapshot(op, id, &p->data, &p->file, err)) != RN_OK)
            return rn__errctx(err, "'%s' (instance %d): snapshot", op->node->name, op->instance);
        if (op->st != NULL && id > 0 && !p->finished) {
            char owner[300], dir[4096];
            snprintf(owner, sizeof(owner), "%s#%d", op->node->name, op->instance);
            rn__ckpt_staging(job->ckpt, id, owner, dir, sizeof(dir));
            if ((rc = rn__state_snapshot(op->st, dir, &p->fin, err)) != RN_OK)
                return rc;
            p->state = rn_xstrdup(dir);
        }
    }
    rn__crash_point("ckpt.after_snapshot");
    return RN_OK;
}

/* Snapshots the task for checkpoint id and acknowledges it; start_ns:
 * when it began to hold records back for it. */
static void
task_snapshot(rn_task_t *task, int64_t id, int64_t start_ns)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_ckpt_part_t *parts = rn_xcalloc((size_t)task->nops, sizeof(*parts));
    if (snapshot_ops(task, id, parts, &err) != RN_OK) {
        /* A fatal error (state that cannot be checkpointed again, such
         * as a backend whose writes failed) fails the job as well. */
        if (err.flags & RN_ERR_FATAL)
            rn__job_fail(task->job, &err);
        RN_LOG_WARN(task->job->name, "checkpoint %lld declined: %s", (long long)id, err.msg);
        rn__ckpt_decline(task->job->ckpt, id, &err);
        parts_free(parts, task->nops);
        return;
    }
    rn__ckpt_ack(task->job->ckpt, id, task->id, parts, task->nops,
                 (rn__mono_ns() - start_ns) / 1000);
}

bool
rn__barrier_source(rn_task_t *task)
{
    rn_job_t *job = task->job;
    if (job->ckpt == NULL)
        return true;
    int64_t id = atomic_load_explicit(&job->ckpt_trigger, memory_order_acquire);
    if (id > task->ckpt_injected && !task->stopped) {
        task->ckpt_injected = id;
        task_snapshot(task, id, rn__mono_ns());
        rn__task_broadcast(task, RN_MSG_BARRIER, id);
        if (id == atomic_load(&job->ckpt_final))
            task->stopped = true;
    }
    return !task->stopped;
}

static void
stash_push(rn_task_t *task, const rn_msg_t *m)
{
    if (task->stash_len == task->stash_cap) {
        task->stash_cap = task->stash_cap ? task->stash_cap * 2 : 16;
        task->stash = rn_xrealloc(task->stash, task->stash_cap * sizeof(*task->stash));
    }
    task->stash[task->stash_len++] = *m;
}

/* Ends the alignment: channels unblocked, what they held back replayed
 * first (ahead of what an earlier replay had left). */
static void
release(rn_task_t *task)
{
    uint32_t nchan = task->wmmin.n;
    if (task->blocked != NULL)
        memset(task->blocked, 0, nchan * sizeof(bool));
    task->ckpt_aligning = 0;
    task->nbarriers = 0;
    if (task->stash_len == 0)
        return;
    size_t left = task->replay_len - task->replay_pos;
    rn_msg_t *r = rn_xmalloc((task->stash_len + left + 1) * sizeof(*r));
    memcpy(r, task->stash, task->stash_len * sizeof(*r));
    if (left > 0)
        memcpy(r + task->stash_len, task->replay + task->replay_pos, left * sizeof(*r));
    rn_free(task->replay);
    task->replay = r;
    task->replay_len = task->stash_len + left;
    task->replay_pos = 0;
    task->stash_len = 0;
}

static uint32_t
live_channels(const rn_task_t *task)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < task->wmmin.n; c++)
        n += !task->wmmin.chans[c].ended;
    return n;
}

/* Every live channel delivered the barrier: snapshot, forward, release. */
static rn_code_t
maybe_aligned(rn_task_t *task, rn_error_t *err)
{
    if (task->ckpt_aligning == 0 || task->nbarriers < live_channels(task))
        return RN_OK;
    int64_t id = task->ckpt_aligning;
    /* The previous checkpoint's completion may not have been seen yet: a
     * sink commits it first, so that it pre-commits only what is new. */
    (void)rn__barrier_notify(task);
    task_snapshot(task, id, task->align_start_ns);
    rn__task_broadcast(task, RN_MSG_BARRIER, id);
    release(task);
    return RN_OK;
}

rn_code_t
rn__barrier_dispatch(rn_task_t *task, const rn_msg_t *m, rn_error_t *err)
{
    if (task->blocked != NULL && task->blocked[m->chan]) {
        stash_push(task, m);
        return RN_OK;
    }
    if (m->kind != RN_MSG_BARRIER)
        return rn__task_handle_msg(task, m, err);
    int64_t id = m->u.wm;
    if (id < task->ckpt_aligning || task->job->ckpt == NULL)
        return RN_OK; /* an aborted checkpoint's: ignored */
    if (id > task->ckpt_aligning) {
        if (task->ckpt_aligning != 0)
            release(task);
        task->ckpt_aligning = id;
        task->nbarriers = 0;
        task->align_start_ns = rn__mono_ns();
    }
    task->nbarriers++;
    if (task->job->ckpt_conf.exactly_once) {
        if (task->blocked == NULL)
            task->blocked = rn_xcalloc(task->wmmin.n, sizeof(bool));
        task->blocked[m->chan] = true;
    }
    return maybe_aligned(task, err);
}

rn_code_t
rn__barrier_chan_ended(rn_task_t *task, rn_error_t *err)
{
    return maybe_aligned(task, err);
}

bool
rn__barrier_next(rn_task_t *task, rn_msg_t *m)
{
    /* Replayed messages are older than anything still in inbuf or the
     * queue (release() puts them there only from the stash). */
    if (task->replay_pos < task->replay_len) {
        *m = task->replay[task->replay_pos++];
        if (task->replay_pos == task->replay_len)
            task->replay_pos = task->replay_len = 0;
        return true;
    }
    if (task->inbuf_pos == task->inbuf_len) {
        task->inbuf_pos = 0;
        task->inbuf_len = rn__queue_pop(task->queue, task->inbuf, 4);
        if (task->inbuf_len == 0)
            return false;
    }
    *m = task->inbuf[task->inbuf_pos++];
    return true;
}

bool
rn__barrier_notify(rn_task_t *task)
{
    rn_job_t *job = task->job;
    if (job->ckpt == NULL)
        return false;
    int64_t id = atomic_load_explicit(&job->ckpt_complete, memory_order_acquire);
    if (id <= task->ckpt_notified)
        return false;
    task->ckpt_notified = id;
    for (int i = 0; i < task->nops; i++) {
        rn_op_t *op = task->ops[i];
        rn_error_t err = RN_ERROR_INIT;
        if (op->node->cls->complete != NULL && op->node->cls->complete(op, id, &err) != RN_OK) {
            rn__errctx(&err, "'%s' (instance %d): commit of checkpoint %lld", op->node->name,
                       op->instance, (long long)id);
            rn__job_fail(job, &err);
            return false;
        }
    }
    int64_t final = atomic_load(&job->ckpt_final);
    return final != 0 && id >= final;
}

void
rn__barrier_final_parts(rn_task_t *task)
{
    rn_job_t *job = task->job;
    if (job->ckpt == NULL)
        return;
    rn_error_t err = RN_ERROR_INIT;
    rn_ckpt_part_t *parts = rn_xcalloc((size_t)task->nops, sizeof(*parts));
    if (snapshot_ops(task, 0, parts, &err) != RN_OK) {
        /* Later checkpoints cannot include this task: they will be
         * declined by the coordinator. */
        RN_LOG_WARN(job->name, "finished task: %s", err.msg);
        parts_free(parts, task->nops);
        return;
    }
    pthread_mutex_lock(&job->lock);
    task->final_parts = parts;
    task->nfinal = task->nops;
    pthread_mutex_unlock(&job->lock);
}

bool
rn__job_done_parts(rn_job_t *job, int t, rn_ckpt_part_t **out, int *n)
{
    bool done = false;
    pthread_mutex_lock(&job->lock);
    rn_task_t *task = job->tasks[t];
    if (task->done && task->final_parts != NULL) {
        done = true;
        rn_ckpt_part_t *p = rn_xcalloc((size_t)task->nfinal, sizeof(*p));
        for (int i = 0; i < task->nfinal; i++) {
            const rn_ckpt_part_t *f = &task->final_parts[i];
            p[i].node = rn_xstrdup(f->node);
            p[i].instance = f->instance;
            p[i].finished = true;
            p[i].wm = f->wm;
            p[i].kg_first = f->kg_first;
            p[i].kg_last = f->kg_last;
            p[i].data = f->data != NULL ? json_deep_copy(f->data) : NULL;
            /* What a finished instance has not committed yet (the final
             * epochs of an exactly-once sink): every later checkpoint
             * holds it, so that a restart from one sends it. */
            p[i].file = f->file != NULL ? rn_xstrdup(f->file) : NULL;
        }
        *out = p;
        *n = task->nfinal;
    }
    pthread_mutex_unlock(&job->lock);
    return done;
}

void
rn__barrier_task_fini(rn_task_t *task)
{
    for (size_t i = 0; i < task->stash_len; i++)
        if (task->stash[i].kind == RN_MSG_DATA)
            rn__batch_destroy(task->stash[i].u.batch);
    for (size_t i = task->replay_pos; i < task->replay_len; i++)
        if (task->replay[i].kind == RN_MSG_DATA)
            rn__batch_destroy(task->replay[i].u.batch);
    for (size_t i = task->inbuf_pos; i < task->inbuf_len; i++)
        if (task->inbuf[i].kind == RN_MSG_DATA)
            rn__batch_destroy(task->inbuf[i].u.batch);
    rn_free(task->stash);
    rn_free(task->replay);
    rn_free(task->blocked);
    parts_free(task->final_parts, task->nfinal);
}

void
rn__job_trigger(rn_job_t *job, int64_t id, bool final)
{
    if (final)
        atomic_store(&job->ckpt_final, id);
    atomic_store_explicit(&job->ckpt_trigger, id, memory_order_release);
    rn__job_wake(job);
}

void
rn__job_complete(rn_job_t *job, int64_t id)
{
    atomic_store_explicit(&job->ckpt_complete, id, memory_order_release);
    if (id == atomic_load(&job->ckpt_final))
        job->stopped_at = id;
    rn__job_wake(job);
}

int
rn__job_ntasks(const rn_job_t *job)
{
    return job->ntasks;
}

/* Whether an operator asked for complete(RN_JOB_END). */
static bool
wants_end_commit(const rn_job_t *job)
{
    for (int t = 0; t < job->ntasks; t++)
        for (int i = 0; i < job->tasks[t]->nops; i++)
            if (job->tasks[t]->ops[i]->commit_at_end)
                return true;
    return false;
}

rn_code_t
rn__job_end_checkpoint(rn_job_t *job, rn_error_t *err)
{
    if (job->ckpt == NULL || !wants_end_commit(job))
        return RN_OK;
    /* Stopped by a final checkpoint (runnel stop): the tasks that had
     * finished before it gave it their final parts; it is the last. */
    int64_t fin = atomic_load(&job->ckpt_final);
    if (fin != 0 && atomic_load(&job->ckpt_complete) >= fin)
        return RN_OK;
    /* Any checkpoint triggered from now on is acknowledged with the final
     * parts of the tasks, all done. A stop makes the coordinator take one
     * at once (and again after a failed one): up to three tries, each
     * within the checkpoint timeout. */
    int64_t after = atomic_load(&job->ckpt_trigger);
    rn_ckpt_stats_t st0, st;
    rn__ckpt_stats(job->ckpt, &st0);
    rn__ckpt_request_stop(job->ckpt);
    job->end_ckpt = true;
    int64_t deadline = rn__now_ms() + 3 * job->ckpt_conf.timeout_ms + 10000;
    for (;;) {
        if (atomic_load_explicit(&job->ckpt_complete, memory_order_acquire) > after)
            return RN_OK;
        rn__ckpt_stats(job->ckpt, &st);
        if (st.failed >= st0.failed + 3 || rn__now_ms() > deadline)
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return rn__errf(err, RN_EIO,
                    "job '%s': every task finished, but the checkpoint that records it did not "
                    "complete (%lld failed; see above): the output that waits for it (an "
                    "exactly-once Kafka sink's last records) is not committed, and the next run "
                    "resumes from the last checkpoint",
                    job->name, (long long)(st.failed - st0.failed));
}

rn_code_t
rn__job_end_commit(rn_job_t *job, rn_error_t *err)
{
    /* Not a stop the user asked for: the end checkpoint was taken as one. */
    if (job->end_ckpt)
        job->stopped_at = 0;
    for (int t = 0; t < job->ntasks; t++) {
        rn_task_t *task = job->tasks[t];
        for (int i = 0; i < task->nops; i++) {
            rn_op_t *op = task->ops[i];
            if (!op->commit_at_end || op->node->cls->complete == NULL)
                continue;
            rn_code_t rc = op->node->cls->complete(op, RN_JOB_END, err);
            if (rc != RN_OK)
                return rn__errctx(err, "'%s' (instance %d): commit at the end of the job",
                                  op->node->name, op->instance);
        }
    }
    return RN_OK;
}
