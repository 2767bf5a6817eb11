/*
 * connectors/discard_sink.c: the "discard" sink (Flink's blackhole): counts
 * the records it gets and drops them. For benchmarks and for jobs run for
 * their side effects. Runs at any parallelism.
 *
 * @thread plan: control; an instance: its task.
 */
#include "stream/component.h"

static const char *const keys[] = {NULL};

typedef struct discard {
    uint64_t records;
} discard_t;

static rn_code_t
discard_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    (void)pc;
    (void)err;
    return RN_OK;
}

static rn_code_t
discard_open(rn_op_t *op, rn_error_t *err)
{
    discard_t *d = rn_calloc(1, sizeof(*d));
    if (d == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    rn__op_set_data(op, d);
    return RN_OK;
}

static rn_code_t
discard_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    discard_t *d = rn__op_data(op);
    d->records += b->n;
    rn__op_free_batch(op, b);
    return RN_OK;
}

static void
discard_close(rn_op_t *op)
{
    discard_t *d = rn__op_data(op);
    if (d == NULL)
        return;
    RN_LOG_DEBUG(rn__op_name(op), "discarded %llu records (instance %d)",
                 (unsigned long long)d->records, rn__op_instance(op));
    rn_free(d);
    rn__op_set_data(op, NULL);
}

const rn_opclass_t rn__sink_discard = {
    .rewindable = true,
    .type = "discard",
    .section = RN_SINK,
    .keys = keys,
    .plan = discard_plan,
    .open = discard_open,
    .process = discard_process,
    .close = discard_close,
};
