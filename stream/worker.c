/*
 * stream/worker.c: the bounded queues between tasks and the pool of worker
 * threads that runs the tasks.
 *
 * Design: tasks are assigned to workers once, round-robin, and each worker
 * loops over its own tasks, so a task is only ever touched by one thread. A
 * worker with nothing to do sleeps on its condition variable until a queue
 * it consumes from gets a message, a queue one of its tasks is blocked on
 * gets room, or a short timeout passes (for rate-limited and idle sources).
 * Queues are mutex-protected rings of messages; every message carries a
 * whole batch or one control event, so a lock is taken per batch, not per
 * record.
 *
 * @thread see each function.
 */
#include "stream/job_int.h"

#include <errno.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

struct rn_queue {
    pthread_mutex_t lock;
    size_t cap, head, len;
    rn_msg_t *ring;
    rn_worker_t *consumer; /* set once when tasks are assigned */
    bool producers_waiting;
};

struct rn_worker {
    int id;
    rn_job_t *job;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool signaled;
    int ntasks;
    rn_task_t **tasks;
};

rn_queue_t *
rn__queue_new(size_t cap)
{
    rn_queue_t *q = rn_xcalloc(1, sizeof(*q));
    pthread_mutex_init(&q->lock, NULL);
    q->cap = cap;
    q->ring = rn_xcalloc(cap, sizeof(rn_msg_t));
    return q;
}

void
rn__queue_destroy(rn_queue_t *q)
{
    if (q == NULL)
        return;
    /* Batches still queued (a failed or cancelled job) are freed here. */
    for (size_t i = 0; i < q->len; i++) {
        rn_msg_t *m = &q->ring[(q->head + i) % q->cap];
        if (m->kind == RN_MSG_DATA)
            rn__batch_destroy(m->u.batch);
    }
    pthread_mutex_destroy(&q->lock);
    rn_free(q->ring);
    rn_free(q);
}

void
rn__worker_wake(rn_worker_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->signaled = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void
wake_all(rn_job_t *job)
{
    for (int i = 0; i < job->nworkers; i++)
        rn__worker_wake(&job->workers[i]);
}

bool
rn__queue_push(rn_queue_t *q, const rn_msg_t *msg, rn_task_t *producer)
{
    bool was_empty;

    pthread_mutex_lock(&q->lock);
    if (q->len == q->cap) {
        q->producers_waiting = true;
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    q->ring[(q->head + q->len) % q->cap] = *msg;
    was_empty = q->len == 0;
    q->len++;
    pthread_mutex_unlock(&q->lock);
    /* Only a transition from empty can find the consumer asleep waiting for
     * this queue; a producer on the consumer's own worker needs no wake-up. */
    if (was_empty && q->consumer != NULL && (producer == NULL || producer->worker != q->consumer))
        rn__worker_wake(q->consumer);
    return true;
}

size_t
rn__queue_pop(rn_queue_t *q, rn_msg_t *out, size_t max)
{
    size_t n = 0;
    bool waiting;

    pthread_mutex_lock(&q->lock);
    while (n < max && q->len > 0) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    waiting = q->producers_waiting && n > 0;
    if (waiting)
        q->producers_waiting = false;
    pthread_mutex_unlock(&q->lock);
    /* Producers of this queue may sit on any worker. */
    if (waiting)
        wake_all(q->consumer->job);
    return n;
}

static void *
worker_main(void *arg)
{
    rn_worker_t *w = arg;
    rn_job_t *job = w->job;

    for (;;) {
        bool progress = false, all_done = true;
        int64_t now = rn__now_ms();

        if (atomic_load_explicit(&job->cancel, memory_order_relaxed))
            break;
        for (int i = 0; i < w->ntasks; i++) {
            rn_task_t *task = w->tasks[i];
            if (task->done)
                continue;
            all_done = false;
            if (rn__task_step(task, now))
                progress = true;
        }
        if (all_done)
            break;
        if (progress)
            continue;
        /* Nothing moved: sleep until woken, or 10 ms for timers, rates and
         * idleness to be checked again. */
        pthread_mutex_lock(&w->lock);
        if (!w->signaled && !atomic_load(&job->cancel)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        }
        w->signaled = false;
        pthread_mutex_unlock(&w->lock);
    }
    /* Someone else may be waiting on this worker's tasks to finish. */
    wake_all(job);
    return NULL;
}

rn_code_t
rn__workers_run(rn_job_t *job, rn_error_t *err)
{
    int nw = job->nworkers;

    if (nw <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        nw = cpus > 0 ? (int)cpus : 1;
    }
    if (nw > job->ntasks)
        nw = job->ntasks;
    job->nworkers = nw;
    job->workers = rn_xcalloc((size_t)nw, sizeof(rn_worker_t));
    for (int i = 0; i < nw; i++) {
        rn_worker_t *w = &job->workers[i];
        w->id = i;
        w->job = job;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->tasks = rn_xcalloc((size_t)job->ntasks, sizeof(rn_task_t *));
    }
    for (int t = 0; t < job->ntasks; t++) {
        rn_worker_t *w = &job->workers[t % nw];
        rn_task_t *task = job->tasks[t];
        task->worker = w;
        w->tasks[w->ntasks++] = task;
        if (task->queue != NULL)
            task->queue->consumer = w;
    }
    int started = 0;
    for (int i = 0; i < nw; i++) {
        char name[16];
        if (pthread_create(&job->workers[i].thread, NULL, worker_main, &job->workers[i]) != 0) {
            rn_error_t e = RN_ERROR_INIT;
            rn__errf(&e, RN_EIO, "cannot start worker thread %d: %s", i, strerror(errno));
            rn__job_fail(job, &e);
            break;
        }
        snprintf(name, sizeof(name), "rn-worker-%d", i);
        pthread_setname_np(job->workers[i].thread, name);
        started++;
    }
    /* The coordinator wakes workers: it starts once they exist. */
    rn_error_t cerr = RN_ERROR_INIT;
    if (started == nw && job->ckpt != NULL && rn__ckpt_start(job->ckpt, &cerr) != RN_OK)
        rn__job_fail(job, &cerr);
    for (int i = 0; i < started; i++)
        pthread_join(job->workers[i].thread, NULL);
    /* A checkpoint's part that waits for a task that stopped stepping
     * (the job failed or was cancelled): done here, so that the
     * coordinator can end. */
    for (int i = 0; i < job->ntasks; i++)
        rn__task_settle(job->tasks[i]);
    rn_error_t eerr = RN_ERROR_INIT;
    bool ended = !job->failed && !atomic_load(&job->cancel);
    if (ended && rn__job_end_checkpoint(job, &eerr) != RN_OK)
        rn__job_fail(job, &eerr);
    /* The coordinator wakes workers: stopped before they go. The workers
     * themselves go after the operators closed (rn__workers_free): a
     * client thread (librdkafka's) may wake one until its source closes. */
    rn__ckpt_stop(job->ckpt);
    if (ended && !job->failed && rn__job_end_commit(job, &eerr) != RN_OK)
        rn__job_fail(job, &eerr);
    if (job->failed) {
        if (err)
            *err = job->error;
        return job->error.code;
    }
    if (atomic_load(&job->cancel))
        return rn__errf(err, RN_ECANCELED, "job '%s' was stopped", job->name);
    return RN_OK;
}

void
rn__workers_free(rn_job_t *job)
{
    for (int i = 0; job->workers != NULL && i < job->nworkers; i++) {
        pthread_mutex_destroy(&job->workers[i].lock);
        pthread_cond_destroy(&job->workers[i].cond);
        rn_free(job->workers[i].tasks);
    }
    rn_free(job->workers);
    job->workers = NULL;
}

void
rn__job_wake(rn_job_t *job)
{
    if (job->workers != NULL)
        wake_all(job);
}
