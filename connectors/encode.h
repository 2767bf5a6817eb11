/*
 * connectors/encode.h: rows to text (JSON lines, CSV), shared by the file
 * and stdout sinks (and the Kafka sink later).
 *
 * Design: an encoder is made once per (format, schema) when a sink opens,
 * with everything that does not depend on the record precomputed (the
 * escaped "name": prefixes of JSON, the CSV header). Rows are appended to
 * an rn_buf_t, a growable byte buffer the sink writes out in large pieces,
 * so that there is no write call and no allocation per record once the
 * buffer has grown to its working size.
 *
 * Output, JSON: one object per line, "\n"-terminated, with the schema's
 * fields in order; null as null; timestamps as integer epoch ms; floats in
 * the shortest form that reads back to the same double, always with a '.'
 * or an exponent so that they read back as floats (3 -> 3.0); NaN and
 * infinities as null (JSON has no spelling for them); strings escaped per
 * RFC 8259, with bytes that are not valid UTF-8 replaced by \ufffd so that
 * the output is always valid JSON.
 *
 * Output, CSV (RFC 4180): a header line of field names, then one line per
 * row, "\n"-terminated (not CRLF: the files are for Unix tools, and
 * readers accept both). A cell is quoted when it contains a comma, a quote,
 * CR or LF, with quotes doubled. A null is an empty cell and an empty
 * string is "" (PostgreSQL's convention, which the CSV decoder reads back).
 * Numbers, booleans and timestamps as in JSON; NaN and infinities empty.
 *
 * @thread an encoder is immutable after rn__encoder_new(): any thread.
 */
#ifndef RN_CONNECTORS_ENCODE_H
#define RN_CONNECTORS_ENCODE_H

#include "stream/row.h"

typedef enum rn_format {
    RN_FORMAT_JSON = 0,
    RN_FORMAT_CSV = 1,
} rn_format_t;

/* {"json", "csv", NULL}, in rn_format_t order: for rn__conf_enum. */
extern const char *const rn__format_names[];

typedef struct rn_buf {
    char *data; /* owned; NULL when cap == 0 */
    size_t len;
    size_t cap;
} rn_buf_t;

void rn__buf_init(rn_buf_t *buf);
void rn__buf_fini(rn_buf_t *buf);
/* Makes room for more bytes after len. @returns RN_OK or RN_ENOMEM. */
rn_code_t rn__buf_reserve(rn_buf_t *buf, size_t more);

typedef struct rn_encoder rn_encoder_t;

/* @param schema borrowed; must outlive the encoder. @returns an encoder
 * (free with rn__encoder_destroy()), or NULL when out of memory. */
rn_encoder_t *rn__encoder_new(rn_format_t format, const rn_schema_t *schema);
/* Accepts NULL. */
void rn__encoder_destroy(rn_encoder_t *enc);

/* Appends what goes before the first row: the CSV header line; nothing for
 * JSON. @returns RN_OK or RN_ENOMEM. */
rn_code_t rn__encoder_header(const rn_encoder_t *enc, rn_buf_t *out);
/* Appends one row (cells of the encoder's schema), line break included.
 * @returns RN_OK or RN_ENOMEM. */
rn_code_t rn__encoder_row(const rn_encoder_t *enc, const rn_value_t *row, rn_buf_t *out);
/* Appends every row of b, whose schema has the encoder's layout. */
rn_code_t rn__encoder_batch(const rn_encoder_t *enc, const rn_batch_t *b, rn_buf_t *out);

/* Writes f as JSON would print it (see above; NaN and infinities are the
 * caller's business) into p, which has room for 32 bytes. @returns the
 * length written (no NUL). */
size_t rn__fmt_double(char *p, double f);

#endif
