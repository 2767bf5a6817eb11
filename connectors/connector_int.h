/*
 * connectors/connector_int.h: plan-time helpers shared by the connectors of
 * this directory. Private to connectors/.
 *
 * @thread control (plan time).
 */
#ifndef RN_CONNECTORS_CONNECTOR_INT_H
#define RN_CONNECTORS_CONNECTOR_INT_H

#include "connectors/encode.h"
#include "stream/component.h"

/* Reads the required `schema` key of conf (a map of field: type) into a new
 * schema. what names the component in messages ("file source 'clicks'").
 * @returns a schema (free with rn__schema_destroy()), or NULL with err set
 * at the offending node. */
rn_schema_t *rn__conn_schema(const rn_conf_t *conf, const char *what, rn_error_t *err);

/* "<kind> '<name>'" for messages, into buf. */
void rn__conn_what(const rn_plan_ctx_t *pc, const char *kind, char *buf, size_t size);

/* What the file and stdout sinks share at plan time: the output format
 * and a copy of each input's schema (CSV needs one schema for all inputs,
 * checked here). */
typedef struct rn_text_plan {
    rn_format_t format;
    int ninputs;
    rn_schema_t **schemas; /* owned, one per input */
} rn_text_plan_t;

/* Reads `format` (json | csv, default json) and copies the input schemas.
 * On failure tp holds nothing to free. */
rn_code_t rn__text_plan_init(rn_plan_ctx_t *pc, const char *what, rn_text_plan_t *tp,
                             rn_error_t *err);
void rn__text_plan_fini(rn_text_plan_t *tp);

/* ... and at run time: an encoder per input and the output buffer. */
typedef struct rn_text_out {
    int n;
    rn_encoder_t **enc; /* owned, one per input */
    rn_buf_t buf;       /* encoded bytes not yet written */
    uint64_t records;
} rn_text_out_t;

/* Builds the encoders (tp borrowed; must outlive out) and puts the CSV
 * header in out->buf. */
rn_code_t rn__text_out_init(rn_text_out_t *out, const rn_text_plan_t *tp, rn_error_t *err);
/* Accepts an out never initialised, if zeroed. */
void rn__text_out_fini(rn_text_out_t *out);
/* Encodes b (from input `input`) into out->buf. @param b borrowed. */
rn_code_t rn__text_out_batch(rn_text_out_t *out, int input, const rn_batch_t *b,
                             rn_error_t *err);

#endif
