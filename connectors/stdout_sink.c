/*
 * connectors/stdout_sink.c: the "stdout" sink: JSON lines, CSV or the
 * lines of a plugin's format on the standard output, for demos and pipes.
 * One instance, so that lines from different instances never interleave.
 *
 * Design: the same encoders as the file sink fill a buffer that goes to
 * stdout through stdio (so that it keeps its order with anything else the
 * program prints there) after every batch: stdout is a stream someone reads
 * as the job runs, not a file committed at the end.
 *
 * @thread plan: control; the instance: its task.
 */
#include "connectors/connector_int.h"

#include <errno.h>
#include <unistd.h>

static const char *const keys[] = {"format", NULL};

typedef struct stdout_plan {
    rn_text_plan_t text;
} stdout_plan_t;

typedef struct stdout_sink {
    rn_text_out_t out;
} stdout_sink_t;

static void
stdout_plan_free(void *p)
{
    stdout_plan_t *plan = p;
    if (plan == NULL)
        return;
    rn__text_plan_fini(&plan->text);
    rn_free(plan);
}

static rn_code_t
stdout_plan(rn_plan_ctx_t *pc, rn_error_t *err)
{
    stdout_plan_t *plan = rn_xcalloc(1, sizeof(*plan));
    char what[160];
    rn_code_t rc;

    rn__conn_what(pc, "stdout sink", what, sizeof(what));
    if ((rc = rn__text_plan_init(pc, what, &plan->text, err)) != RN_OK) {
        rn_free(plan);
        return rc;
    }
    rn__pc_set_plan(pc, plan, stdout_plan_free);
    rn__pc_force_parallelism(pc, 1);
    return RN_OK;
}

static rn_code_t
write_out(stdout_sink_t *s, bool flush, rn_error_t *err)
{
    rn_buf_t *buf = &s->out.buf;
    if (buf->len > 0 && fwrite(buf->data, 1, buf->len, stdout) != buf->len)
        return rn__errf(err, RN_EIO, "cannot write to stdout: %s", strerror(errno));
    buf->len = 0;
    if (flush && fflush(stdout) != 0)
        return rn__errf(err, RN_EIO, "cannot write to stdout: %s", strerror(errno));
    return RN_OK;
}

static void
stdout_close(rn_op_t *op)
{
    stdout_sink_t *s = rn__op_data(op);
    if (s == NULL)
        return;
    rn__text_out_fini(&s->out);
    rn_free(s);
    rn__op_set_data(op, NULL);
}

static rn_code_t
stdout_open(rn_op_t *op, rn_error_t *err)
{
    const stdout_plan_t *plan = rn__op_plan(op);
    stdout_sink_t *s = rn_calloc(1, sizeof(*s));
    rn_code_t rc;

    if (s == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    rn__op_set_data(op, s);
    if ((rc = rn__text_out_init(&s->out, &plan->text, err)) != RN_OK) {
        /* close() is not called after a failed open(). */
        stdout_close(op);
        return rc;
    }
    return RN_OK;
}

static rn_code_t
stdout_process(rn_op_t *op, int input, rn_batch_t *b, rn_error_t *err)
{
    stdout_sink_t *s = rn__op_data(op);
    rn_code_t rc = rn__text_out_batch(&s->out, input, b, err);

    rn__op_free_batch(op, b);
    /* stdout is a stream, not a committed file: what a batch produced goes
     * out now, so that a reader of a pipe sees windows as they fire. */
    if (rc == RN_OK)
        rc = write_out(s, true, err);
    return rc;
}

static rn_code_t
stdout_finish(rn_op_t *op, rn_error_t *err)
{
    return write_out(rn__op_data(op), true, err);
}

const rn_opclass_t rn__sink_stdout = {
    .type = "stdout",
    .section = RN_SINK,
    .keys = keys,
    .plan = stdout_plan,
    .open = stdout_open,
    .process = stdout_process,
    .finish = stdout_finish,
    .close = stdout_close,
};
