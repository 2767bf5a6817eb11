/*
 * connectors/bad_record.c: what a source does with a record that does not
 * decode (`on_error`), shared by the file and Kafka sources, and the
 * event-time field they both check.
 *
 * fail stops the job with "LOCATION: reason"; skip drops the record and
 * counts it (one warning with the count and the first at close);
 * dead-letter emits a row on the side output "errors": the reason, the
 * raw record and its location ("FILE:LINE", "TOPIC/PARTITION@OFFSET").
 *
 * @thread plan: control; rn_bad_records_t: the source instance's task.
 */
#include "connectors/connector_int.h"

const char *const rn__on_error_names[] = {"fail", "skip", "dead-letter", NULL};

static rn_schema_t *
errors_schema(void)
{
    rn_schema_t *s = rn__schema_new();
    rn__schema_add(s, "error", RN_TYPE_STRING, NULL);
    rn__schema_add(s, "raw", RN_TYPE_STRING, NULL);
    rn__schema_add(s, "location", RN_TYPE_STRING, NULL);
    return s;
}

rn_code_t
rn__bad_plan(rn_plan_ctx_t *pc, int *on_error, int *errors_port, rn_error_t *err)
{
    *errors_port = -1;
    rn_code_t rc = rn__conf_enum(rn__pc_conf(pc), "on_error", rn__on_error_names,
                                 RN_ON_ERROR_FAIL, on_error, err);
    if (rc != RN_OK || *on_error != RN_ON_ERROR_DEAD_LETTER)
        return rc;
    if ((rc = rn__pc_add_output(pc, "errors", errors_schema(), err)) != RN_OK)
        return rc;
    *errors_port = rn__pc_port(pc, "errors");
    return RN_OK;
}

void
rn__bad_init(rn_bad_records_t *br, int on_error, int errors_port)
{
    memset(br, 0, sizeof(*br));
    br->on_error = on_error;
    br->errors_port = errors_port;
}

int
rn__conn_event_time_field(rn_plan_ctx_t *pc, const rn_schema_t *schema)
{
    int et = rn__pc_event_time_field(pc);
    const char *name = rn_conf_scalar(rn_conf_get(rn__pc_conf(pc), "event_time"));
    if (et < 0 && name != NULL)
        et = rn__schema_find(schema, name);
    return et;
}

rn_code_t
rn__conn_check_event_time(const rn_schema_t *schema, int et, const rn_value_t *row,
                          char *errbuf, size_t errlen)
{
    if (et < 0 || !row[et].null)
        return RN_OK;
    snprintf(errbuf, errlen, "field '%s': the event time is missing", schema->fields[et].name);
    return RN_EDATA;
}

static uint32_t
len32(size_t n)
{
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

rn_code_t
rn__bad_record(rn_op_t *op, rn_bad_records_t *br, const char *reason, const char *rec,
               size_t len, const char *where, rn_error_t *err)
{
    if (br->on_error == RN_ON_ERROR_FAIL)
        return rn__errf(err, RN_EDATA, "%s: %s", where, reason);
    if (br->on_error == RN_ON_ERROR_SKIP) {
        if (br->skipped++ == 0)
            snprintf(br->first_skip, sizeof(br->first_skip), "%s: %s", where, reason);
        return RN_OK;
    }
    if (br->eb == NULL)
        br->eb = rn__op_batch(op, br->errors_port);
    rn_batch_t *b = br->eb;
    size_t rlen = strlen(reason), wlen = strlen(where);
    rn_value_t *row = rn__batch_append(b, 0);
    row[0] = rn__val_str(rn__arena_strdup(&b->arena, reason, rlen), len32(rlen));
    row[1] = rn__val_str(rn__arena_strdup(&b->arena, rec != NULL ? rec : "", len), len32(len));
    row[2] = rn__val_str(rn__arena_strdup(&b->arena, where, wlen), len32(wlen));
    if (rn__batch_full(b))
        return rn__bad_flush(op, br, err);
    return RN_OK;
}

rn_code_t
rn__bad_flush(rn_op_t *op, rn_bad_records_t *br, rn_error_t *err)
{
    rn_batch_t *b = br->eb;
    br->eb = NULL;
    return b != NULL ? rn__op_emit(op, br->errors_port, b, err) : RN_OK;
}

void
rn__bad_discard(rn_op_t *op, rn_bad_records_t *br)
{
    if (br->eb != NULL)
        rn__op_free_batch(op, br->eb);
    br->eb = NULL;
}

void
rn__bad_close(rn_op_t *op, const rn_bad_records_t *br)
{
    if (br->skipped > 0)
        RN_LOG_WARN(rn__op_name(op), "skipped %llu bad record%s (on_error: skip); the first: %s",
                    (unsigned long long)br->skipped, br->skipped == 1 ? "" : "s",
                    br->first_skip);
}
