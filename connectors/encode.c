/*
 * connectors/encode.c: JSON-lines and CSV encoders (see encode.h).
 *
 * Design: each row reserves, up front, the most bytes it can take (every
 * string byte can become a six-byte \u escape in JSON, two bytes in CSV,
 * any other cell at most 32 bytes), so that the writers below append
 * without checking room byte by byte. Strings are escaped by hand rather
 * than through jansson's json_dumpb, which would allocate a json_t per
 * cell; runs of plain ASCII are copied with memcpy.
 *
 * @thread an encoder is immutable once built.
 */
#include "connectors/encode.h"
#include "connectors/decode.h"
#include "stream/plugin_ext.h"

#include <math.h>

const char *const rn__format_names[] = {"json", "csv", NULL};

bool
rn__format_builtin(const char *name)
{
    /* raw is the Kafka connectors' third format. */
    return strcmp(name, "json") == 0 || strcmp(name, "csv") == 0 || strcmp(name, "raw") == 0;
}

#define CELL_MAX 32 /* longest non-string cell: a float or an int64 */

static inline size_t
put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

struct rn_encoder {
    rn_format_t format;
    const rn_schema_t *schema; /* borrowed */
    /* JSON: per field, `{"name":` for the first and `,"name":` after; CSV:
     * the header line. All in one owned block. */
    char **prefix;
    size_t *prefix_len;
    size_t fixed; /* bytes of a row besides its cells (prefixes, "}\n", commas) */
    rn_buf_t header;
};

/* ---- buffers ------------------------------------------------------------ */

void
rn__buf_init(rn_buf_t *buf)
{
    memset(buf, 0, sizeof(*buf));
}

void
rn__buf_fini(rn_buf_t *buf)
{
    if (buf == NULL)
        return;
    rn_free(buf->data);
    memset(buf, 0, sizeof(*buf));
}

rn_code_t
rn__buf_reserve(rn_buf_t *buf, size_t more)
{
    if (buf->cap - buf->len >= more)
        return RN_OK;
    size_t cap = buf->cap ? buf->cap : 4096;
    while (cap - buf->len < more) {
        if (cap > SIZE_MAX / 2)
            return RN_ENOMEM;
        cap *= 2;
    }
    char *data = rn_realloc(buf->data, cap);
    if (data == NULL)
        return RN_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return RN_OK;
}

/* ---- scalars ------------------------------------------------------------ */

static size_t
fmt_i64(char *p, int64_t v)
{
    char tmp[24];
    size_t n = 0, o = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        p[o++] = '-';
    while (n > 0)
        p[o++] = tmp[--n];
    return o;
}

size_t
rn__fmt_double(char *p, double f)
{
    char buf[40];
    int n = 0;

    /* The shortest of 15, 16, 17 significant digits that reads back as f:
     * 0.1 prints as 0.1, not 0.10000000000000001. */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    memcpy(p, buf, (size_t)n);
    /* Keep it a float for readers: 3 -> 3.0, -0 -> -0.0. */
    if (strpbrk(buf, ".en") == NULL) {
        memcpy(p + n, ".0", 2);
        n += 2;
    }
    return (size_t)n;
}

/* Writes a JSON string literal; p has room for 6 * len + 2 bytes. */
static size_t
json_str(char *p, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, i = 0;

    p[o++] = '"';
    while (i < len) {
        size_t run = i;
        while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        memcpy(p + o, s + i, run - i);
        o += run - i;
        i = run;
        if (i == len)
            break;
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t n = rn__utf8_seq(s + i, len - i);
            if (n == 0) {
                memcpy(p + o, "\\ufffd", 6);
                o += 6;
                i++;
            } else {
                memcpy(p + o, s + i, n);
                o += n;
                i += n;
            }
            continue;
        }
        p[o++] = '\\';
        switch (c) {
        case '"': p[o++] = '"'; break;
        case '\\': p[o++] = '\\'; break;
        case '\n': p[o++] = 'n'; break;
        case '\r': p[o++] = 'r'; break;
        case '\t': p[o++] = 't'; break;
        case '\b': p[o++] = 'b'; break;
        case '\f': p[o++] = 'f'; break;
        default:
            memcpy(p + o, "u00", 3);
            p[o + 3] = hex[c >> 4];
            p[o + 4] = hex[c & 15];
            o += 5;
        }
        i++;
    }
    p[o++] = '"';
    return o;
}

static bool
csv_needs_quotes(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
            return true;
    return false;
}

/* Writes a CSV cell; p has room for 2 * len + 2 bytes. An empty string is
 * quoted so that it differs from a null. */
static size_t
csv_str(char *p, const char *s, size_t len)
{
    size_t o = 0;

    if (len > 0 && !csv_needs_quotes(s, len)) {
        memcpy(p, s, len);
        return len;
    }
    p[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            p[o++] = '"';
        p[o++] = s[i];
    }
    p[o++] = '"';
    return o;
}

/* ---- encoders ----------------------------------------------------------- */

rn_encoder_t *
rn__encoder_new(rn_format_t format, const rn_schema_t *schema)
{
    uint32_t n = schema->nfields;
    size_t block = 0;
    rn_encoder_t *enc = rn_calloc(1, sizeof(*enc));

    if (enc == NULL)
        return NULL;
    enc->format = format;
    enc->schema = schema;
    rn__buf_init(&enc->header);
    for (uint32_t i = 0; i < n; i++)
        block += 6 * strlen(schema->fields[i].name) + 4;
    enc->prefix = rn_calloc(n ? n : 1, sizeof(char *));
    enc->prefix_len = rn_calloc(n ? n : 1, sizeof(size_t));
    char *p = rn_malloc(block ? block : 1);
    if (enc->prefix == NULL || enc->prefix_len == NULL || p == NULL) {
        rn_free(p);
        rn__encoder_destroy(enc);
        return NULL;
    }
    /* The block's address is kept in prefix[0] (it starts the block). */
    for (uint32_t i = 0; i < n; i++) {
        const char *name = schema->fields[i].name;
        size_t o = 0;
        enc->prefix[i] = p;
        if (format == RN_FORMAT_JSON) {
            p[o++] = i == 0 ? '{' : ',';
            o += json_str(p + o, name, strlen(name));
            p[o++] = ':';
        } else if (i > 0) {
            p[o++] = ',';
        }
        enc->prefix_len[i] = o;
        enc->fixed += o;
        p += o;
    }
    if (n == 0)
        rn_free(p);
    enc->fixed += 3; /* "}\n" or "{}\n" */

    if (format == RN_FORMAT_CSV) {
        size_t need = 1;
        for (uint32_t i = 0; i < n; i++)
            need += 2 * strlen(schema->fields[i].name) + 3;
        if (rn__buf_reserve(&enc->header, need) != RN_OK) {
            rn__encoder_destroy(enc);
            return NULL;
        }
        char *h = enc->header.data;
        size_t o = 0;
        for (uint32_t i = 0; i < n; i++) {
            const char *name = schema->fields[i].name;
            if (i > 0)
                h[o++] = ',';
            o += csv_str(h + o, name, strlen(name));
        }
        h[o++] = '\n';
        enc->header.len = o;
    }
    return enc;
}

void
rn__encoder_destroy(rn_encoder_t *enc)
{
    if (enc == NULL)
        return;
    if (enc->prefix != NULL && enc->schema->nfields > 0)
        rn_free(enc->prefix[0]);
    rn_free(enc->prefix);
    rn_free(enc->prefix_len);
    rn__buf_fini(&enc->header);
    rn_free(enc);
}

rn_code_t
rn__encoder_header(const rn_encoder_t *enc, rn_buf_t *out)
{
    if (enc->header.len == 0)
        return RN_OK;
    if (rn__buf_reserve(out, enc->header.len) != RN_OK)
        return RN_ENOMEM;
    memcpy(out->data + out->len, enc->header.data, enc->header.len);
    out->len += enc->header.len;
    return RN_OK;
}

/* The most bytes row can take. */
static size_t
row_bound(const rn_encoder_t *enc, const rn_value_t *row)
{
    const rn_schema_t *s = enc->schema;
    size_t mult = enc->format == RN_FORMAT_JSON ? 6 : 2;
    size_t need = enc->fixed;

    for (uint32_t i = 0; i < s->nfields; i++) {
        if (s->fields[i].type == RN_TYPE_STRING && !row[i].null)
            need += mult * row[i].len + 2;
        else
            need += CELL_MAX;
    }
    return need;
}

static size_t
json_cell(char *p, rn_type_t type, const rn_value_t *v)
{
    if (v->null)
        return put(p, "null", 4);
    switch (type) {
    case RN_TYPE_STRING: return json_str(p, v->u.s, v->len);
    case RN_TYPE_INT:
    case RN_TYPE_TIMESTAMP: return fmt_i64(p, v->u.i);
    case RN_TYPE_FLOAT:
        if (!isfinite(v->u.f))
            return put(p, "null", 4);
        return rn__fmt_double(p, v->u.f);
    case RN_TYPE_BOOL:
        if (v->u.b)
            return put(p, "true", 4);
        return put(p, "false", 5);
    case RN_TYPE_NULL: break;
    }
    return put(p, "null", 4);
}

static size_t
csv_cell(char *p, rn_type_t type, const rn_value_t *v)
{
    if (v->null)
        return 0;
    switch (type) {
    case RN_TYPE_STRING: return csv_str(p, v->u.s, v->len);
    case RN_TYPE_INT:
    case RN_TYPE_TIMESTAMP: return fmt_i64(p, v->u.i);
    case RN_TYPE_FLOAT: return isfinite(v->u.f) ? rn__fmt_double(p, v->u.f) : 0;
    case RN_TYPE_BOOL:
        if (v->u.b)
            return put(p, "true", 4);
        return put(p, "false", 5);
    case RN_TYPE_NULL: break;
    }
    return 0;
}

rn_code_t
rn__encoder_row(const rn_encoder_t *enc, const rn_value_t *row, rn_buf_t *out)
{
    const rn_schema_t *s = enc->schema;
    bool json = enc->format == RN_FORMAT_JSON;

    if (rn__buf_reserve(out, row_bound(enc, row)) != RN_OK)
        return RN_ENOMEM;
    char *p = out->data + out->len;
    for (uint32_t i = 0; i < s->nfields; i++) {
        memcpy(p, enc->prefix[i], enc->prefix_len[i]);
        p += enc->prefix_len[i];
        p += json ? json_cell(p, s->fields[i].type, &row[i])
                  : csv_cell(p, s->fields[i].type, &row[i]);
    }
    if (json && s->nfields == 0)
        *p++ = '{';
    if (json)
        *p++ = '}';
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    return RN_OK;
}

rn_code_t
rn__encoder_batch(const rn_encoder_t *enc, const rn_batch_t *b, rn_buf_t *out)
{
    for (uint32_t r = 0; r < b->n; r++) {
        rn_code_t rc = rn__encoder_row(enc, RN_ROW(b, r), out);
        if (rc != RN_OK)
            return rc;
    }
    return RN_OK;
}
