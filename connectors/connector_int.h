/*
 * connectors/connector_int.h: plan-time helpers shared by the connectors of
 * this directory. Private to connectors/.
 *
 * @thread control (plan time).
 */
#ifndef RN_CONNECTORS_CONNECTOR_INT_H
#define RN_CONNECTORS_CONNECTOR_INT_H

#include "connectors/encode.h"
#include "connectors/format_plugin.h"
#include "stream/component.h"

/* Reads the required `schema` key of conf (a map of field: type) into a new
 * schema. what names the component in messages ("file source 'clicks'").
 * @returns a schema (free with rn__schema_destroy()), or NULL with err set
 * at the offending node. */
rn_schema_t *rn__conn_schema(const rn_conf_t *conf, const char *what, rn_error_t *err);

/* A source's event-time field in schema (its main output): the runtime's
 * answer when it has one, else the `event_time` key looked up here (the
 * runtime may resolve it only after plan(); it checks name and type
 * itself). -1: processing time. */
int rn__conn_event_time_field(rn_plan_ctx_t *pc, const rn_schema_t *schema);
/* A decoded row whose event-time field et (>= 0) is null is a bad record:
 * RN_EDATA with the reason in errbuf. */
rn_code_t rn__conn_check_event_time(const rn_schema_t *schema, int et, const rn_value_t *row,
                                    char *errbuf, size_t errlen);

/* "<kind> '<name>'" for messages, into buf. */
void rn__conn_what(const rn_plan_ctx_t *pc, const char *kind, char *buf, size_t size);

/* What the file, stdout and Kafka sinks share at plan time: the output
 * format and a copy of each input's schema (CSV needs one schema for all
 * inputs, checked here). */
typedef struct rn_text_plan {
    rn_format_t format;
    const rn_format_fn_t *ext; /* a plugin's format (format then unused), or NULL */
    int ninputs;
    rn_schema_t **schemas; /* owned, one per input */
} rn_text_plan_t;

/* Reads `format` (json | csv, default json, or a format a plugin
 * registered with an encode) and copies the input schemas. On failure tp
 * holds nothing to free. */
rn_code_t rn__text_plan_init(rn_plan_ctx_t *pc, const char *what, rn_text_plan_t *tp,
                             rn_error_t *err);
void rn__text_plan_fini(rn_text_plan_t *tp);

/* ... and at run time: an encoder per input and the output buffer. */
typedef struct rn_text_out {
    int n;
    rn_encoder_t **enc;          /* owned, one per input (NULL each with ext) */
    const rn_format_fn_t *ext;   /* the plan's */
    rn_schema_t *const *schemas; /* the plan's, one per input */
    rn_buf_t buf;                /* encoded bytes not yet written */
    uint64_t records;
} rn_text_out_t;

/* Builds the encoders (tp borrowed; must outlive out) and puts the CSV
 * header in out->buf. A plugin's format has no encoders (enc[i] NULL). */
rn_code_t rn__text_out_init(rn_text_out_t *out, const rn_text_plan_t *tp, rn_error_t *err);
/* Accepts an out never initialised, if zeroed. */
void rn__text_out_fini(rn_text_out_t *out);
/* Encodes b (from input `input`) into out->buf, one line per row (a
 * plugin's format: its bytes and "\n"). @param b borrowed. @returns RN_OK,
 * RN_ENOMEM, or a plugin's encode error. */
rn_code_t rn__text_out_batch(rn_text_out_t *out, int input, const rn_batch_t *b,
                             rn_error_t *err);

/* A source's `on_error` (bad_record.c): fail | skip | dead-letter. */
enum { RN_ON_ERROR_FAIL, RN_ON_ERROR_SKIP, RN_ON_ERROR_DEAD_LETTER };
extern const char *const rn__on_error_names[];

/* Plan time: reads `on_error` (default fail) and, for dead-letter, adds
 * the side output "errors" (error, raw, location: strings) and gives its
 * port (else -1). */
rn_code_t rn__bad_plan(rn_plan_ctx_t *pc, int *on_error, int *errors_port, rn_error_t *err);

/* An instance's bad records: the skip count and dead letters not yet
 * emitted. */
typedef struct rn_bad_records {
    int on_error;
    int errors_port;
    uint64_t skipped;
    char first_skip[RN_ERROR_MSG_MAX];
    rn_batch_t *eb; /* owned: dead letters not emitted yet */
} rn_bad_records_t;

void rn__bad_init(rn_bad_records_t *br, int on_error, int errors_port);
/* A record that did not decode, per on_error: RN_EDATA "WHERE: REASON"
 * (fail), counted (skip) or a dead letter (emitted when a batch is full).
 * @param rec, len the raw record; where its location. All borrowed. */
rn_code_t rn__bad_record(rn_op_t *op, rn_bad_records_t *br, const char *reason, const char *rec,
                         size_t len, const char *where, rn_error_t *err);
/* Emits the dead letters gathered so far (after a poll's records). */
rn_code_t rn__bad_flush(rn_op_t *op, rn_bad_records_t *br, rn_error_t *err);
/* Frees the dead letters not emitted (a failed poll). */
void rn__bad_discard(rn_op_t *op, rn_bad_records_t *br);
/* At close: one warning with the count of skipped records and the first. */
void rn__bad_close(rn_op_t *op, const rn_bad_records_t *br);

#endif
