/*
 * connectors/text_sink.c: what the file, stdout and Kafka sinks share: reading
 * `format`, keeping the input schemas, and encoding batches of any input
 * into one buffer (see connector_int.h).
 *
 * Design: a sink may have several inputs. JSON lines carry their field
 * names, so inputs with different schemas can share one output; a CSV file
 * has one header, so every input must have the first input's schema (names
 * and types, in order), which plan time checks. A plugin's format
 * (format_plugin.c) encodes each row alone, with its input's schema, into
 * bytes that end with the line break added here. Schemas are copied at
 * plan time so that the encoders do not depend on how long the upstream's
 * plan keeps its own.
 *
 * @thread plan: control; rn_text_out_t: the sink's task.
 */
#include "connectors/connector_int.h"

static bool
same_schema(const rn_schema_t *a, const rn_schema_t *b)
{
    if (a->nfields != b->nfields)
        return false;
    for (uint32_t i = 0; i < a->nfields; i++)
        if (a->fields[i].type != b->fields[i].type ||
            strcmp(a->fields[i].name, b->fields[i].name) != 0)
            return false;
    return true;
}

rn_code_t
rn__text_plan_init(rn_plan_ctx_t *pc, const char *what, rn_text_plan_t *tp, rn_error_t *err)
{
    const rn_conf_t *conf = rn__pc_conf(pc);
    int format;
    rn_code_t rc;

    memset(tp, 0, sizeof(*tp));
    if ((rc = rn__conn_format(conf, what, rn__format_names, RN_FORMAT_JSON, RN_FMT_ENCODE,
                              &format, &tp->ext, err)) != RN_OK)
        return rc;
    int n = rn__pc_ninputs(pc);
    const rn_schema_t *first = n > 0 ? rn__pc_input_schema(pc, 0) : NULL;
    for (int i = 1; i < n && tp->ext == NULL && format == RN_FORMAT_CSV; i++) {
        const rn_schema_t *s = rn__pc_input_schema(pc, i);
        if (!same_schema(first, s)) {
            char a[200], b[200];
            rn__schema_format(first, a, sizeof(a));
            rn__schema_format(s, b, sizeof(b));
            return rn__conf_err(err, RN_EINVAL, rn__pc_input_node(pc, i),
                                "%s: CSV output has one header, so every input needs the "
                                "schema of the first ({%s}), but this one is {%s}; use "
                                "format: json or a map to align them",
                                what, a, b);
        }
    }
    tp->format = (rn_format_t)format;
    tp->ninputs = n;
    tp->schemas = rn_xcalloc(n > 0 ? (size_t)n : 1, sizeof(rn_schema_t *));
    for (int i = 0; i < n; i++)
        tp->schemas[i] = rn__schema_copy(rn__pc_input_schema(pc, i));
    return RN_OK;
}

void
rn__text_plan_fini(rn_text_plan_t *tp)
{
    if (tp == NULL)
        return;
    for (int i = 0; i < tp->ninputs && tp->schemas != NULL; i++)
        rn__schema_destroy(tp->schemas[i]);
    rn_free(tp->schemas);
    memset(tp, 0, sizeof(*tp));
}

rn_code_t
rn__text_out_init(rn_text_out_t *out, const rn_text_plan_t *tp, rn_error_t *err)
{
    memset(out, 0, sizeof(*out));
    rn__buf_init(&out->buf);
    out->enc = rn_calloc(tp->ninputs > 0 ? (size_t)tp->ninputs : 1, sizeof(rn_encoder_t *));
    if (out->enc == NULL)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    out->n = tp->ninputs;
    out->ext = tp->ext;
    out->schemas = tp->schemas;
    if (tp->ext != NULL)
        return RN_OK; /* the plugin encodes; there is no header */
    for (int i = 0; i < tp->ninputs; i++)
        if ((out->enc[i] = rn__encoder_new(tp->format, tp->schemas[i])) == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory");
    if (out->n > 0 && rn__encoder_header(out->enc[0], &out->buf) != RN_OK)
        return rn__errf(err, RN_ENOMEM, "out of memory");
    return RN_OK;
}

void
rn__text_out_fini(rn_text_out_t *out)
{
    if (out == NULL)
        return;
    for (int i = 0; i < out->n && out->enc != NULL; i++)
        rn__encoder_destroy(out->enc[i]);
    rn_free(out->enc);
    rn__buf_fini(&out->buf);
    memset(out, 0, sizeof(*out));
}

/* A plugin's format: each row's bytes and a line break. */
static rn_code_t
ext_batch(rn_text_out_t *out, int input, const rn_batch_t *b, rn_error_t *err)
{
    for (uint32_t r = 0; r < b->n; r++) {
        rn_code_t rc = rn__fmt_encode(out->ext, out->schemas[input], RN_ROW(b, r), &out->buf, err);
        if (rc != RN_OK)
            return rc;
        if (rn__buf_reserve(&out->buf, 1) != RN_OK)
            return rn__errf(err, RN_ENOMEM, "out of memory encoding %u records", b->n);
        out->buf.data[out->buf.len++] = '\n';
    }
    out->records += b->n;
    return RN_OK;
}

rn_code_t
rn__text_out_batch(rn_text_out_t *out, int input, const rn_batch_t *b, rn_error_t *err)
{
    rn_assert(input >= 0 && input < out->n);
    if (out->ext != NULL)
        return ext_batch(out, input, b, err);
    if (rn__encoder_batch(out->enc[input], b, &out->buf) != RN_OK)
        return rn__errf(err, RN_ENOMEM, "out of memory encoding %u records", b->n);
    out->records += b->n;
    return RN_OK;
}
