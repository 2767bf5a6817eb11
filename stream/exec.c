/*
 * stream/exec.c: operator instances, tasks, the exchange between them and
 * the in-band flow of control events.
 *
 * Records and control events take one path: an operator emits a batch on
 * a port; each destination of the port is either the next operator of the
 * chain (called directly) or an exchange writer that sends the batch, or
 * its rows by key group, to the tasks of the next chain through their
 * bounded queues. Watermarks, idleness and end of input follow the same
 * destinations, after any buffered rows, so that everything stays in
 * order. A consumer keeps each input channel's watermark and advances its
 * own to the minimum over live channels (windows/watermark.h), fires the
 * event-time timers up to it, and forwards it.
 *
 * @thread task, except build/destroy (control, before and after the run).
 */
#include "stream/job_int.h"

struct rn_xwriter {
    rn_op_t *op; /* producer */
    int port;
    rn_edge_kind_t kind;
    int ntargets;
    rn_task_t **targets;
    uint32_t *chans;  /* this producer's channel at each target */
    uint16_t input;   /* the consumer's input index */
    rn_batch_t **open; /* keyed: the batch being filled per target */
    const rn_keyspec_t *ks;
    uint32_t max_parallelism;
    uint32_t rr;
};

static rn_code_t op_advance(rn_op_t *op, int64_t wm, rn_error_t *err);
static rn_code_t op_end(rn_op_t *op, rn_error_t *err);
static rn_code_t op_idle(rn_op_t *op, rn_error_t *err);
static rn_code_t deliver(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err);

/* ---- accessors for components ---- */

void *rn__op_plan(const rn_op_t *op) { return op->node->plan; }
void *rn__op_data(const rn_op_t *op) { return op->data; }
void rn__op_set_data(rn_op_t *op, void *data) { op->data = data; }
const char *rn__op_name(const rn_op_t *op) { return op->node->name; }
int rn__op_instance(const rn_op_t *op) { return op->instance; }
int rn__op_parallelism(const rn_op_t *op) { return op->node->parallelism; }
const rn_schema_t *rn__op_schema(const rn_op_t *op, int port) { return op->node->ports[port].schema; }
rn_state_t *rn__op_state(const rn_op_t *op) { return op->st; }
int64_t rn__op_watermark(const rn_op_t *op) { return op->wm; }
void rn__op_split_bound(rn_op_t *op, int64_t bound) { op->wmgen.split_bound = bound; }

void
rn__op_watermark_conf(const rn_op_t *op, int64_t *max_ooo_ms, int64_t *idle_ms)
{
    *max_ooo_ms = op->node->max_ooo_ms;
    *idle_ms = op->node->idle_ms;
}
int64_t rn__op_now(const rn_op_t *op) { return rn__now_ms(); }
void rn__op_wake(rn_op_t *op) { rn__worker_wake(op->task->worker); }
const json_t *rn__op_restored(const rn_op_t *op) { return op->restored ? op->restored->data : NULL; }
const char *rn__op_restored_file(const rn_op_t *op) { return op->restored ? op->restored->file : NULL; }
bool rn__op_restored_finished(const rn_op_t *op) { return op->restored_finished; }
const json_t *rn__op_restored_all(const rn_op_t *op) { return op->restored_all; }
bool rn__op_checkpointing(const rn_op_t *op) { return op->job->ckpt_conf.interval_ms > 0; }
bool rn__op_accept_duplicates(const rn_op_t *op) { return op->job->accept_duplicates; }
const char *rn__op_job_name(const rn_op_t *op) { return op->job->name; }
void rn__op_commit_at_end(rn_op_t *op) { op->commit_at_end = true; }

const rn_keyspec_t *
rn__op_keyspec(const rn_op_t *op, int input)
{
    return op->node->keyed ? &op->node->keyspecs[input] : NULL;
}

bool
rn__op_row_key_hash(rn_op_t *op, int input, const rn_value_t *row, uint64_t *hash)
{
    uint8_t buf[RN_KEY_MAX];
    size_t n = rn__key_encode(&op->node->keyspecs[input], row, buf, sizeof(buf));
    if (n == 0)
        return false;
    *hash = rn__key_hash(buf, n);
    return true;
}

rn_code_t
rn__op_set_key_from_row(rn_op_t *op, int input, const rn_value_t *row, const uint8_t **key,
                        size_t *len, rn_error_t *err)
{
    const rn_keyspec_t *ks = &op->node->keyspecs[input];
    size_t n = rn__key_encode(ks, row, op->keybuf, sizeof(op->keybuf));

    if (n == 0)
        return rn__errf(err, RN_EDATA, "operator '%s': a record's key is longer than %d bytes",
                        op->node->name, RN_KEY_MAX);
    uint64_t hash = rn__key_hash(op->keybuf, n);
    uint32_t kg = rn__key_group(hash, (uint32_t)op->job->max_parallelism);
    rn__state_set_key_hashed(op->st, op->keybuf, n, kg, hash);
    if (key)
        *key = op->keybuf;
    if (len)
        *len = n;
    return RN_OK;
}

/* ---- batch pools ---- */

static rn_batch_t *
pool_get(rn_task_t *task, const rn_schema_t *schema)
{
    for (int i = 0; i < task->npools; i++) {
        if (task->pools[i].schema == schema && task->pools[i].free != NULL) {
            rn_batch_t *b = task->pools[i].free;
            task->pools[i].free = b->next;
            task->pools[i].count--;
            b->next = NULL;
            return b;
        }
    }
    return rn__batch_new(schema, RN_BATCH_ROWS);
}

static void
pool_put(rn_task_t *task, rn_batch_t *b)
{
    int i;
    for (i = 0; i < task->npools; i++)
        if (task->pools[i].schema == b->schema)
            break;
    if (i == task->npools) {
        if (task->npools == (int)(sizeof(task->pools) / sizeof(task->pools[0]))) {
            rn__batch_destroy(b);
            return;
        }
        task->pools[i].schema = b->schema;
        task->pools[i].free = NULL;
        task->pools[i].count = 0;
        task->npools++;
    }
    /* Bounded: batches that cross tasks one way would pile up here. */
    if (task->pools[i].count >= 16 || b->cap != RN_BATCH_ROWS) {
        rn__batch_destroy(b);
        return;
    }
    rn__batch_reset(b);
    b->next = task->pools[i].free;
    task->pools[i].free = b;
    task->pools[i].count++;
}

rn_batch_t *
rn__op_batch(rn_op_t *op, int port)
{
    return pool_get(op->task, op->node->ports[port].schema);
}

void
rn__op_free_batch(rn_op_t *op, rn_batch_t *b)
{
    if (b != NULL)
        pool_put(op->task, b);
}

/* ---- sending to other tasks ---- */

static void
outbox_add(rn_task_t *task, rn_task_t *to, const rn_msg_t *msg)
{
    if (task->outbox_len == task->outbox_cap) {
        size_t ncap = task->outbox_cap ? task->outbox_cap * 2 : 16;
        rn_outbox_item_t *n = rn_xmalloc(ncap * sizeof(*n));
        for (size_t i = 0; i < task->outbox_len; i++)
            n[i] = task->outbox[(task->outbox_head + i) % task->outbox_cap];
        rn_free(task->outbox);
        task->outbox = n;
        task->outbox_cap = ncap;
        task->outbox_head = 0;
    }
    task->outbox[(task->outbox_head + task->outbox_len) % task->outbox_cap] =
        (rn_outbox_item_t){to, *msg};
    task->outbox_len++;
}

/* Sends what waits in the outbox, oldest first; stops at the first full
 * queue so that no target sees its messages out of order.
 * @returns true when something was sent. */
static bool
outbox_flush(rn_task_t *task)
{
    bool sent = false;
    while (task->outbox_len > 0) {
        rn_outbox_item_t *it = &task->outbox[task->outbox_head];
        if (!rn__queue_push(it->to->queue, &it->msg, task))
            break;
        task->outbox_head = (task->outbox_head + 1) % task->outbox_cap;
        task->outbox_len--;
        sent = true;
    }
    return sent;
}

static void
send(rn_task_t *task, rn_task_t *to, const rn_msg_t *msg)
{
    if (task->outbox_len > 0 || !rn__queue_push(to->queue, msg, task))
        outbox_add(task, to, msg);
}

static void
xw_send(rn_xwriter_t *xw, int t, uint8_t kind, rn_batch_t *b, int64_t wm)
{
    rn_msg_t m;
    memset(&m, 0, sizeof(m));
    m.kind = kind;
    m.input = xw->input;
    m.chan = xw->chans[t];
    if (kind == RN_MSG_DATA)
        m.u.batch = b;
    else
        m.u.wm = wm;
    send(xw->op->task, xw->targets[t], &m);
}

/* Sends the partly filled keyed batches; before any control event and at
 * the end of each step. */
static void
xw_flush(rn_xwriter_t *xw)
{
    if (xw->open == NULL)
        return;
    for (int t = 0; t < xw->ntargets; t++) {
        if (xw->open[t] != NULL && xw->open[t]->n > 0) {
            xw_send(xw, t, RN_MSG_DATA, xw->open[t], 0);
            xw->open[t] = NULL;
        }
    }
}

static void
xw_broadcast(rn_xwriter_t *xw, uint8_t kind, int64_t wm)
{
    xw_flush(xw);
    for (int t = 0; t < xw->ntargets; t++)
        xw_send(xw, t, kind, NULL, wm);
}

void
rn__task_broadcast(rn_task_t *task, uint8_t kind, int64_t value)
{
    for (int i = 0; i < task->nops; i++) {
        rn_op_t *op = task->ops[i];
        for (int p = 0; p < op->node->nports; p++)
            for (int d = 0; d < op->outs[p].ndests; d++)
                if (op->outs[p].dests[d].xw != NULL)
                    xw_broadcast(op->outs[p].dests[d].xw, kind, value);
    }
}

static rn_code_t
xw_write(rn_xwriter_t *xw, rn_batch_t *b, rn_error_t *err)
{
    rn_task_t *task = xw->op->task;

    if (xw->kind != RN_EDGE_KEYED) {
        int t = xw->kind == RN_EDGE_FORWARD ? 0 : (int)(xw->rr++ % (uint32_t)xw->ntargets);
        xw_send(xw, t, RN_MSG_DATA, b, 0);
        return RN_OK;
    }
    uint8_t key[RN_KEY_MAX];
    for (uint32_t r = 0; r < b->n; r++) {
        const rn_value_t *row = RN_ROW(b, r);
        size_t n = rn__key_encode(xw->ks, row, key, sizeof(key));
        if (n == 0) {
            pool_put(task, b);
            return rn__errf(err, RN_EDATA, "'%s': a record's key is longer than %d bytes",
                            xw->op->node->name, RN_KEY_MAX);
        }
        uint32_t kg = rn__key_group(rn__key_hash(key, n), xw->max_parallelism);
        int t = (int)rn__key_group_instance(kg, xw->max_parallelism, (uint32_t)xw->ntargets);
        rn_batch_t *ob = xw->open[t];
        if (ob == NULL)
            ob = xw->open[t] = pool_get(task, b->schema);
        rn__batch_copy_row(ob, row, b->ts[r]);
        if (rn__batch_full(ob)) {
            xw_send(xw, t, RN_MSG_DATA, ob, 0);
            xw->open[t] = NULL;
        }
    }
    pool_put(task, b);
    return RN_OK;
}

/* ---- emitting ---- */

static rn_batch_t *
batch_clone(rn_task_t *task, const rn_batch_t *b)
{
    rn_batch_t *c = pool_get(task, b->schema);
    for (uint32_t r = 0; r < b->n; r++)
        rn__batch_copy_row(c, RN_ROW(b, r), b->ts[r]);
    return c;
}

/* Stamps event time on a source's batch and feeds the watermark generator. */
static rn_code_t
stamp_source_batch(rn_op_t *op, rn_batch_t *b, rn_error_t *err)
{
    int f = op->node->event_time_field;
    int64_t now = rn__now_ms();
    int64_t max = RN_TS_MIN;

    if (f < 0) {
        for (uint32_t r = 0; r < b->n; r++)
            b->ts[r] = now;
        max = now;
    } else {
        for (uint32_t r = 0; r < b->n; r++) {
            const rn_value_t *v = &RN_ROW(b, r)[f];
            if (RN_UNLIKELY(v->null))
                return rn__errf(err, RN_EDATA,
                                "source '%s': a record has no event time (field '%s' is null)",
                                op->node->name, op->node->ports[0].schema->fields[f].name);
            b->ts[r] = v->u.i;
            if (v->u.i > max)
                max = v->u.i;
        }
    }
    rn__wmgen_observe(&op->wmgen, max, now);
    atomic_fetch_add_explicit(&op->task->records_in, b->n, memory_order_relaxed);
    return RN_OK;
}

rn_code_t
rn__op_emit(rn_op_t *op, int port, rn_batch_t *b, rn_error_t *err)
{
    rn_outport_t *out = &op->outs[port];
    rn_code_t rc;

    if (b->n == 0) {
        pool_put(op->task, b);
        return RN_OK;
    }
    if (op->node->section == RN_SOURCE && port == 0 &&
        (rc = stamp_source_batch(op, b, err)) != RN_OK) {
        pool_put(op->task, b);
        return rc;
    }
    if (out->ndests == 0) {
        pool_put(op->task, b);
        return RN_OK;
    }
    for (int d = 0; d < out->ndests; d++) {
        rn_dest_t *dest = &out->dests[d];
        rn_batch_t *mine = d == out->ndests - 1 ? b : batch_clone(op->task, b);
        if (dest->chained != NULL)
            rc = deliver(dest->chained, dest->input, mine, err);
        else
            rc = xw_write(dest->xw, mine, err);
        if (rc != RN_OK) {
            if (d != out->ndests - 1)
                pool_put(op->task, b);
            return rc;
        }
    }
    return RN_OK;
}

static rn_code_t
deliver(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    op->records_in += b->n;
    if (op->node->section == RN_SINK)
        atomic_fetch_add_explicit(&op->task->records_out, b->n, memory_order_relaxed);
    return op->node->cls->process(op, input, b, err);
}

/* ---- control events ---- */

static rn_code_t
forward(rn_op_t *op, uint8_t kind, int64_t wm, rn_error_t *err)
{
    rn_code_t rc;
    for (int p = 0; p < op->node->nports; p++) {
        rn_outport_t *out = &op->outs[p];
        for (int d = 0; d < out->ndests; d++) {
            rn_dest_t *dest = &out->dests[d];
            if (dest->xw != NULL) {
                xw_broadcast(dest->xw, kind, wm);
                continue;
            }
            if (kind == RN_MSG_WATERMARK)
                rc = op_advance(dest->chained, wm, err);
            else if (kind == RN_MSG_IDLE)
                rc = op_idle(dest->chained, err);
            else
                rc = op_end(dest->chained, err);
            if (rc != RN_OK)
                return rc;
        }
    }
    return RN_OK;
}

static rn_code_t
fire_timers(rn_op_t *op, rn_time_domain_t domain, int64_t upto, rn_error_t *err)
{
    rn_timer_t t;
    rn_code_t rc;

    if (op->st == NULL || op->node->cls->on_timer == NULL)
        return RN_OK;
    while ((rc = rn__timer_pop(op->st, domain, upto, &t, err)) == RN_OK)
        if ((rc = op->node->cls->on_timer(op, &t, err)) != RN_OK)
            return rc;
    return rc == RN_ENOTFOUND ? RN_OK : rc;
}

static rn_code_t
op_advance(rn_op_t *op, int64_t wm, rn_error_t *err)
{
    rn_code_t rc;

    if (wm <= op->wm)
        return RN_OK;
    op->wm = wm;
    if ((rc = fire_timers(op, RN_TIME_EVENT, wm, err)) != RN_OK)
        return rc;
    if (op->node->cls->on_watermark && (rc = op->node->cls->on_watermark(op, wm, err)) != RN_OK)
        return rc;
    if (op->node->section == RN_SINK)
        atomic_store_explicit(&op->task->sink_wm, wm, memory_order_relaxed);
    return forward(op, RN_MSG_WATERMARK, wm, err);
}

static rn_code_t
op_idle(rn_op_t *op, rn_error_t *err)
{
    return forward(op, RN_MSG_IDLE, 0, err);
}

static rn_code_t
op_end(rn_op_t *op, rn_error_t *err)
{
    rn_code_t rc;

    if (op->finished)
        return RN_OK;
    if ((rc = op_advance(op, RN_TS_MAX, err)) != RN_OK)
        return rc;
    if (op->node->cls->finish && (rc = op->node->cls->finish(op, err)) != RN_OK)
        return rc;
    op->finished = true;
    return forward(op, RN_MSG_END, 0, err);
}

/* ---- task steps ---- */

void
rn__job_fail(rn_job_t *job, const rn_error_t *err)
{
    pthread_mutex_lock(&job->lock);
    if (!job->failed) {
        job->failed = true;
        job->error = *err;
    }
    pthread_mutex_unlock(&job->lock);
    atomic_store(&job->cancel, 1);
}

static void
flush_writers(rn_task_t *task)
{
    for (int i = 0; i < task->nops; i++) {
        rn_op_t *op = task->ops[i];
        for (int p = 0; p < op->node->nports; p++)
            for (int d = 0; d < op->outs[p].ndests; d++)
                if (op->outs[p].dests[d].xw != NULL)
                    xw_flush(op->outs[p].dests[d].xw);
    }
}

static rn_code_t
source_step(rn_task_t *task, int64_t now, bool *progress, rn_error_t *err)
{
    rn_op_t *op = task->head;
    bool done = op->restored_finished;
    rn_code_t rc = RN_EAGAIN;

    /* Stopped by a final checkpoint: nothing more, not even the end. */
    if (!rn__barrier_source(task))
        return RN_OK;
    if (!done)
        rc = op->node->cls->poll(op, &done, err);
    if (rc == RN_OK)
        *progress = true;
    else if (rc != RN_EAGAIN)
        return rn__errctx(err, "source '%s' (instance %d)", op->node->name, op->instance);
    if (op->node->event_time_field < 0) {
        /* Processing time: every record is stamped with the clock, so
         * nothing older can follow; the watermark follows the clock. */
        if ((rc = op_advance(op, now - 1, err)) != RN_OK)
            return rc;
    } else {
        int64_t wm = rn__wmgen_next(&op->wmgen);
        if (wm != RN_TS_MIN && (rc = op_advance(op, wm, err)) != RN_OK)
            return rc;
        if (!*progress && !done && rn__wmgen_check_idle(&op->wmgen, now) &&
            (rc = op_idle(op, err)) != RN_OK)
            return rc;
    }
    if (done) {
        if ((rc = op_end(op, err)) != RN_OK)
            return rc;
        task->source_done = true;
        *progress = true;
    }
    return RN_OK;
}

rn_code_t
rn__task_handle_msg(rn_task_t *task, const rn_msg_t *m, rn_error_t *err)
{
    rn_op_t *op = task->head;
    rn_wmmin_t *wmm = &task->wmmin;

    switch (m->kind) {
    case RN_MSG_DATA:
        if (wmm->chans[m->chan].idle)
            rn__wmmin_set_idle(wmm, m->chan, false);
        return deliver(op, m->input, m->u.batch, err);
    case RN_MSG_WATERMARK:
        if (rn__wmmin_update(wmm, m->chan, m->u.wm))
            return op_advance(op, wmm->current, err);
        return RN_OK;
    case RN_MSG_IDLE:
        if (rn__wmmin_set_idle(wmm, m->chan, true))
            return op_advance(op, wmm->current, err);
        if (rn__wmmin_all_idle(wmm))
            return op_idle(op, err);
        return RN_OK;
    case RN_MSG_END: {
        rn_code_t rc;
        if (rn__wmmin_end(wmm, m->chan) && (rc = op_advance(op, wmm->current, err)) != RN_OK)
            return rc;
        /* A barrier may have waited only for this channel. */
        if ((rc = rn__barrier_chan_ended(task, err)) != RN_OK)
            return rc;
        if (rn__wmmin_all_ended(wmm))
            return op_end(op, err);
        return RN_OK;
    }
    case RN_MSG_BARRIER:
        return RN_OK; /* rn__barrier_dispatch's */
    }
    return RN_OK;
}

static rn_code_t
processing_timers(rn_task_t *task, int64_t now, rn_error_t *err)
{
    rn_code_t rc;
    for (int i = 0; i < task->nops; i++) {
        rn_op_t *op = task->ops[i];
        if (op->st != NULL && rn__timer_next(op->st, RN_TIME_PROCESSING) <= now &&
            (rc = fire_timers(op, RN_TIME_PROCESSING, now, err)) != RN_OK)
            return rc;
    }
    return RN_OK;
}

/* The state's part of a checkpoint between batches (rn__state_tick).
 * @returns whether there was any. */
static bool
tick_states(rn_task_t *task, bool all)
{
    bool any = false;
    for (int i = 0; i < task->nops; i++)
        if (task->ops[i]->st != NULL && rn__state_tick(task->ops[i]->st, all))
            any = true;
    return any;
}

void
rn__task_settle(rn_task_t *task)
{
    (void)tick_states(task, true);
}

void
rn__task_mark_done(rn_task_t *task)
{
    rn_job_t *job = task->job;
    /* No more steps: what the checkpoint coordinator waits for is done now. */
    rn__task_settle(task);
    rn__barrier_final_parts(task);
    pthread_mutex_lock(&job->lock);
    task->done = true;
    job->ntasks_done++;
    pthread_mutex_unlock(&job->lock);
}

bool
rn__task_step(rn_task_t *task, int64_t now)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_code_t rc = RN_OK;
    /* First, so that a task held up by a full queue downstream goes on
     * with it too. */
    bool progress = tick_states(task, false);

    if (task->outbox_len > 0) {
        progress = outbox_flush(task) || progress;
        if (task->outbox_len > 0)
            return progress;
    }
    if (task->head->finished) {
        rn__task_mark_done(task);
        return true;
    }
    if (rn__barrier_notify(task)) {
        rn__task_mark_done(task);
        return true;
    }
    if (task->queue == NULL) {
        rc = source_step(task, now, &progress, &err);
    } else {
        /* One message at a time: an alignment that ends releases what it
         * held back, which comes before anything not yet handled. */
        rn_msg_t m;
        for (int i = 0; i < 4 && rc == RN_OK && rn__barrier_next(task, &m); i++) {
            rc = rn__barrier_dispatch(task, &m, &err);
            progress = true;
        }
    }
    if (rc == RN_OK)
        rc = processing_timers(task, now, &err);
    flush_writers(task);
    if (rc != RN_OK) {
        rn__job_fail(task->job, &err);
        return true;
    }
    if (task->outbox_len > 0)
        outbox_flush(task);
    return progress;
}

/* ---- building ---- */

static rn_task_t **
tasks_of_node(rn_job_t *job, const rn_node_t *node)
{
    /* Tasks are created in node order, instance by instance; find the first
     * task whose head is this node. Only chain heads have tasks. */
    for (int t = 0; t < job->ntasks; t++)
        if (job->tasks[t]->head->node == node)
            return &job->tasks[t];
    return NULL;
}

static rn_op_t *
op_new(rn_job_t *job, rn_node_t *node, int instance, rn_task_t *task, rn_error_t *err)
{
    rn_op_t *op = rn_xcalloc(1, sizeof(*op));
    op->node = node;
    op->instance = instance;
    op->task = task;
    op->job = job;
    op->wm = RN_TS_MIN;
    op->outs = rn_xcalloc((size_t)(node->nports ? node->nports : 1), sizeof(rn_outport_t));
    rn_state_options_t so = job->state_opts;
    const char *imports[RN_RESTORE_IMPORTS_MAX];
    if (job->restore != NULL && rn__op_restore_setup(job, op, &so, imports, err) != RN_OK) {
        json_decref(op->restored_all);
        rn_free(op->outs);
        rn_free(op);
        return NULL;
    }
    if (node->keyed) {
        char owner[300];
        snprintf(owner, sizeof(owner), "%s#%d", node->name, instance);
        so.owner = owner;
        op->st = rn__state_new(&so, err);
        if (op->st == NULL) {
            json_decref(op->restored_all);
            rn_free(op->outs);
            rn_free(op);
            return NULL;
        }
    }
    if (node->section == RN_SOURCE) {
        rn__wmgen_init(&op->wmgen, node->max_ooo_ms, node->idle_ms, rn__now_ms());
        if (op->restored != NULL || op->restored_all != NULL)
            op->wmgen.emitted = op->wm;
    }
    task->ops = rn_xrealloc(task->ops, (size_t)(task->nops + 1) * sizeof(rn_op_t *));
    task->ops[task->nops++] = op;
    return op;
}

/* Adds to task the ops chained below op, depth first. */
static rn_code_t
build_chain(rn_job_t *job, rn_task_t *task, rn_op_t *op, rn_error_t *err)
{
    rn_node_t *node = op->node;
    for (int p = 0; p < node->nports; p++) {
        rn_port_t *port = &node->ports[p];
        for (int c = 0; c < port->nconsumers; c++) {
            rn_node_t *cn = &job->nodes[port->consumers[c].node];
            if (!cn->inputs[port->consumers[c].input].chained)
                continue;
            rn_op_t *child = op_new(job, cn, op->instance, task, err);
            if (child == NULL)
                return err ? err->code : RN_ENOMEM;
            rn_outport_t *out = &op->outs[p];
            out->dests = rn_xrealloc(out->dests, (size_t)(out->ndests + 1) * sizeof(rn_dest_t));
            out->dests[out->ndests++] = (rn_dest_t){child, port->consumers[c].input, NULL};
            rn_code_t rc = build_chain(job, task, child, err);
            if (rc != RN_OK)
                return rc;
        }
    }
    return RN_OK;
}

/* Channel numbering at a consumer: inputs in order, each with one channel
 * per upstream instance that sends to it (one for a forward edge). */
static uint32_t
input_chan_base(const rn_job_t *job, const rn_node_t *node, int input)
{
    uint32_t base = 0;
    for (int k = 0; k < input; k++)
        base += node->inputs[k].edge == RN_EDGE_FORWARD
                    ? 1
                    : (uint32_t)job->nodes[node->inputs[k].node].parallelism;
    return base;
}

static void
connect_exchanges(rn_job_t *job, rn_op_t *op)
{
    rn_node_t *node = op->node;
    for (int p = 0; p < node->nports; p++) {
        rn_port_t *port = &node->ports[p];
        for (int c = 0; c < port->nconsumers; c++) {
            rn_node_t *cn = &job->nodes[port->consumers[c].node];
            int input = port->consumers[c].input;
            rn_input_t *in = &cn->inputs[input];
            if (in->chained)
                continue;
            rn_task_t **ctasks = tasks_of_node(job, cn);
            rn_xwriter_t *xw = rn_xcalloc(1, sizeof(*xw));
            uint32_t base = input_chan_base(job, cn, input);
            xw->op = op;
            xw->port = p;
            xw->kind = in->edge;
            xw->input = (uint16_t)input;
            xw->max_parallelism = (uint32_t)job->max_parallelism;
            if (in->edge == RN_EDGE_FORWARD) {
                xw->ntargets = 1;
                xw->targets = rn_xcalloc(1, sizeof(rn_task_t *));
                xw->chans = rn_xcalloc(1, sizeof(uint32_t));
                xw->targets[0] = ctasks[op->instance];
                xw->chans[0] = base;
            } else {
                xw->ntargets = cn->parallelism;
                xw->targets = rn_xcalloc((size_t)cn->parallelism, sizeof(rn_task_t *));
                xw->chans = rn_xcalloc((size_t)cn->parallelism, sizeof(uint32_t));
                for (int t = 0; t < cn->parallelism; t++) {
                    xw->targets[t] = ctasks[t];
                    xw->chans[t] = base + (uint32_t)op->instance;
                }
            }
            if (in->edge == RN_EDGE_KEYED) {
                xw->ks = &cn->keyspecs[input];
                xw->open = rn_xcalloc((size_t)xw->ntargets, sizeof(rn_batch_t *));
            }
            rn_outport_t *out = &op->outs[p];
            out->dests = rn_xrealloc(out->dests, (size_t)(out->ndests + 1) * sizeof(rn_dest_t));
            out->dests[out->ndests++] = (rn_dest_t){NULL, 0, xw};
        }
    }
}

rn_code_t
rn__exec_build(rn_job_t *job, rn_error_t *err)
{
    int maxpar = 0;
    rn_code_t rc;

    for (int i = 0; i < job->nnodes; i++)
        if (job->nodes[i].parallelism > maxpar)
            maxpar = job->nodes[i].parallelism;
    job->tasks = rn_xcalloc((size_t)job->nnodes * (size_t)maxpar, sizeof(rn_task_t *));
    /* Node by node so that a node's tasks are contiguous (tasks_of_node). */
    for (int k = 0; k < job->nnodes; k++) {
        rn_node_t *node = &job->nodes[job->topo[k]];
        if (!node->chain_head)
            continue;
        for (int i = 0; i < node->parallelism; i++) {
            rn_task_t *task = rn_xcalloc(1, sizeof(*task));
            task->id = job->ntasks;
            task->job = job;
            atomic_init(&task->sink_wm, RN_TS_MIN);
            job->tasks[job->ntasks++] = task;
            task->head = op_new(job, node, i, task, err);
            if (task->head == NULL)
                return err ? err->code : RN_ENOMEM;
            if ((rc = build_chain(job, task, task->head, err)) != RN_OK)
                return rc;
            if (node->section != RN_SOURCE) {
                uint32_t nchan = input_chan_base(job, node, node->ninputs);
                rn__wmmin_init(&task->wmmin, nchan);
                task->queue = rn__queue_new(8 + 4 * (size_t)nchan);
            }
        }
    }
    for (int t = 0; t < job->ntasks; t++)
        for (int i = 0; i < job->tasks[t]->nops; i++)
            connect_exchanges(job, job->tasks[t]->ops[i]);
    return RN_OK;
}

static void
xw_destroy(rn_xwriter_t *xw)
{
    if (xw->open)
        for (int t = 0; t < xw->ntargets; t++)
            rn__batch_destroy(xw->open[t]);
    rn_free(xw->open);
    rn_free(xw->targets);
    rn_free(xw->chans);
    rn_free(xw);
}

void
rn__exec_destroy(rn_job_t *job)
{
    for (int t = 0; t < job->ntasks; t++) {
        rn_task_t *task = job->tasks[t];
        for (int i = 0; i < task->nops; i++) {
            rn_op_t *op = task->ops[i];
            for (int p = 0; p < op->node->nports; p++) {
                for (int d = 0; d < op->outs[p].ndests; d++)
                    if (op->outs[p].dests[d].xw)
                        xw_destroy(op->outs[p].dests[d].xw);
                rn_free(op->outs[p].dests);
            }
            rn_free(op->outs);
            rn__state_destroy(op->st);
            json_decref(op->restored_all);
            rn_free(op);
        }
        for (size_t i = 0; i < task->outbox_len; i++) {
            rn_outbox_item_t *it = &task->outbox[(task->outbox_head + i) % task->outbox_cap];
            if (it->msg.kind == RN_MSG_DATA)
                rn__batch_destroy(it->msg.u.batch);
        }
        rn_free(task->outbox);
        rn__barrier_task_fini(task);
        for (int i = 0; i < task->npools; i++) {
            rn_batch_t *b, *next;
            for (b = task->pools[i].free; b; b = next) {
                next = b->next;
                rn__batch_destroy(b);
            }
        }
        rn__queue_destroy(task->queue);
        if (task->queue != NULL || task->wmmin.chans)
            rn__wmmin_fini(&task->wmmin);
        rn_free(task->ops);
        rn_free(task);
    }
    rn_free(job->tasks);
    job->tasks = NULL;
    job->ntasks = 0;
}
