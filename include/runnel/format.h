/*
 * runnel/format.h: record formats from plugins, usable as `format:` of
 * the file and Kafka sources and of the file, stdout and Kafka sinks.
 *
 * A format turns the bytes of one record (a Kafka message's value, a line
 * of a file without its line break) into a row of the component's schema,
 * and a row into bytes. The library is named in the job file's top-level
 * `plugins:` list (runnel/functions.h shows one); a format's name must not
 * be a built-in one (json, csv, raw).
 *
 * A record that does not decode is a bad record: decode returns RN_EDATA
 * with a message, and the source's `on_error` decides (dead letter, skip
 * or stop with its offset), exactly as for JSON. Any other error from
 * decode or encode stops the job with the message (and the record's
 * FILE:LINE or TOPIC/PARTITION@OFFSET for decode).
 *
 * The file and stdout sinks write encode's bytes followed by "\n" (so a
 * format for files should not write line breaks of its own); the Kafka
 * sink sends them as the message value. The file source hands decode each
 * line without its line break, the Kafka source each message's value.
 *
 * @thread decode and encode run on the task of the source or sink
 * instance: with parallelism > 1, on several threads at once, each with
 * its own rn_fmt_t. They must not keep state between calls that is not
 * safe for that. An rn_fmt_t is borrowed for the call.
 */
#ifndef RUNNEL_FORMAT_H
#define RUNNEL_FORMAT_H

#include <runnel/error.h>
#include <runnel/functions.h>
#include <runnel/types.h>

typedef struct rn_fmt rn_fmt_t; /* one record being decoded or encoded */

typedef struct rn_format_fn {
    /* sizeof(rn_format_fn_t) as the plugin was compiled. */
    size_t size;
    const char *name; /* borrowed for the process's life */
    /* Bytes to a row: every field starts null; set them with
     * rn_fmt_set_*. @param data borrowed for the call. @returns RN_OK or
     * RN_EDATA (a bad record) with a message. NULL: not a source format. */
    int (*decode)(rn_fmt_t *r, const char *data, size_t len, rn_error_t *err);
    /* A row (rn_fmt_get) to bytes (rn_fmt_write). NULL: not a sink format. */
    int (*encode)(rn_fmt_t *r, rn_error_t *err);
} rn_format_fn_t;

/* The schema: fields by position. */
RN_API int rn_fmt_nfields(const rn_fmt_t *r);
RN_API const char *rn_fmt_field_name(const rn_fmt_t *r, int i);
RN_API rn_type_t rn_fmt_field_type(const rn_fmt_t *r, int i);
/* @returns the position of the field named name, or -1. */
RN_API int rn_fmt_field(const rn_fmt_t *r, const char *name);

/* Decoding: sets field i. A value of another type than the field's is
 * converted where that loses nothing (an int into a timestamp field, or
 * into a float field when the double holds it exactly; a float without
 * fraction into an int or timestamp field); otherwise the record is a bad
 * record (RN_EDATA naming the field: "field 'id': expected int, got
 * string \"abc\"") even when decode returns RN_OK; when decode itself
 * fails, its own code and message count.
 * Strings are never parsed into numbers. Setting a field twice keeps the
 * last value. A position out of range, or a setter called by encode,
 * stops the job (RN_EINVAL): the plugin is wrong, not the record.
 * @param s copied (into the batch's memory); NULL only with len 0. */
RN_API void rn_fmt_set_null(rn_fmt_t *r, int i);
RN_API void rn_fmt_set_int(rn_fmt_t *r, int i, int64_t v);
RN_API void rn_fmt_set_float(rn_fmt_t *r, int i, double v);
RN_API void rn_fmt_set_bool(rn_fmt_t *r, int i, bool v);
RN_API void rn_fmt_set_string(rn_fmt_t *r, int i, const char *s, size_t len);

/* Encoding: field i of the row (borrowed for the call); a null value for
 * a position out of range or when called by decode. */
RN_API const rn_val_t *rn_fmt_get(const rn_fmt_t *r, int i);
/* Appends bytes to the record's output (encode only; from decode it
 * stops the job). @param bytes copied. @returns RN_OK, RN_ENOMEM, or
 * RN_EINVAL when called by decode. If encode fails, what it wrote is
 * dropped. */
RN_API int rn_fmt_write(rn_fmt_t *r, const void *bytes, size_t len);

/* As rn_plugin_register_scalar (runnel/functions.h), for a format; at
 * least one of decode and encode. */
RN_API int rn_plugin_register_format(rn_plugin_t *p, int abi, const rn_format_fn_t *fn,
                                     rn_error_t *err);

#endif
