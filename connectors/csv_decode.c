/*
 * connectors/csv_decode.c: CSV records into rows (see decode.h), on top of
 * libcsv.
 *
 * Design: the caller splits a file into records (a record goes on over
 * line breaks while a quoted cell is open, rn__csv_record_open) and hands
 * them over one at a time; this file feeds each record to a libcsv parser
 * and finishes it with csv_fini, so that the parser never carries state
 * from one record to the next and an error in one record cannot spill into
 * the following ones. libcsv calls back once per cell with bytes that are
 * valid only during the call, so each cell is converted to its field's type
 * right there, strings copied into the batch arena.
 *
 * A record must be valid UTF-8 (checked before parsing, as jansson checks a
 * JSON line). rn__csv_dec_misframed tells a record that failed on its shape
 * (syntax, cell count) from one that failed on a value, which the file
 * source needs to recover from a stray quote.
 *
 * Options: strict quoting (a quote inside an unquoted cell is an error),
 * spaces kept as they are (RFC 4180: they are part of the cell), line
 * breaks never end a record here (the caller has already cut it), and
 * empty unquoted cells reported as NULL, which is how a null is told from
 * a quoted empty string.
 *
 * @thread one decoder per task.
 */
#include "connectors/decode.h"

#include <csv.h>

#define CSV_OPTS (CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL)

struct rn_csv_dec {
    const rn_schema_t *schema; /* borrowed */
    struct csv_parser parser;
    bool parser_ok; /* csv_init succeeded */
    int *colmap;    /* column -> schema field, or -1 to ignore */
    size_t ncols;   /* columns of the header */

    /* Header reading: the column names, owned, NULL outside header(). */
    char **names;
    size_t nnames, capnames;

    /* The record being decoded (borrowed for the call). */
    rn_value_t *row;
    rn_arena_t *arena;
    char *errbuf;
    size_t errlen;
    size_t col;      /* cells seen */
    bool failed;     /* a cell did not decode; errbuf says why */
    bool misframed;  /* the last record failed on syntax or cell count */
};

static int
never(unsigned char c)
{
    (void)c;
    return 0;
}

static bool
parser_reset(rn_csv_dec_t *dec)
{
    if (dec->parser_ok)
        csv_free(&dec->parser);
    dec->parser_ok = csv_init(&dec->parser, CSV_OPTS) == 0;
    if (!dec->parser_ok)
        return false;
    csv_set_space_func(&dec->parser, never);
    csv_set_term_func(&dec->parser, never);
    csv_set_realloc_func(&dec->parser, rn_realloc);
    csv_set_free_func(&dec->parser, rn_free);
    return true;
}

rn_csv_dec_t *
rn__csv_dec_new(const rn_schema_t *schema)
{
    rn_csv_dec_t *dec = rn_calloc(1, sizeof(*dec));
    if (dec == NULL)
        return NULL;
    dec->schema = schema;
    if (!parser_reset(dec)) {
        rn_free(dec);
        return NULL;
    }
    return dec;
}

static void
names_free(rn_csv_dec_t *dec)
{
    for (size_t i = 0; i < dec->nnames; i++)
        rn_free(dec->names[i]);
    rn_free(dec->names);
    dec->names = NULL;
    dec->nnames = dec->capnames = 0;
}

void
rn__csv_dec_destroy(rn_csv_dec_t *dec)
{
    if (dec == NULL)
        return;
    if (dec->parser_ok)
        csv_free(&dec->parser);
    names_free(dec);
    rn_free(dec->colmap);
    rn_free(dec);
}

/* Feeds one whole record. @returns false on a CSV syntax error (message in
 * errbuf), leaving the parser reset for the next record. */
static bool
parse_record(rn_csv_dec_t *dec, const char *rec, size_t len, void (*cell)(void *, size_t, void *),
             char *errbuf, size_t errlen)
{
    size_t bad = rn__utf8_check(rec, len);
    if (bad < len) {
        /* Refused before libcsv sees it, as jansson refuses such a JSON line:
         * a cell must not carry bytes no text sink could write back. */
        snprintf(errbuf, errlen, "invalid CSV: not UTF-8 (byte 0x%02x at offset %zu)",
                 (unsigned)(unsigned char)rec[bad], bad);
        return false;
    }
    size_t used = csv_parse(&dec->parser, rec, len, cell, NULL, dec);
    int status = used == len ? csv_fini(&dec->parser, cell, NULL, dec) : -1;

    if (status != 0) {
        int code = csv_error(&dec->parser);
        snprintf(errbuf, errlen, "invalid CSV: %s",
                 code == CSV_EPARSE ? "misplaced or unclosed quote" : csv_strerror(code));
        /* libcsv keeps its error state; start afresh for the next record. */
        parser_reset(dec);
        return false;
    }
    return true;
}

static void
header_cell(void *s, size_t len, void *data)
{
    rn_csv_dec_t *dec = data;
    if (dec->nnames == dec->capnames) {
        dec->capnames = dec->capnames ? dec->capnames * 2 : 16;
        dec->names = rn_xrealloc(dec->names, dec->capnames * sizeof(char *));
    }
    dec->names[dec->nnames++] = s != NULL ? rn_xstrndup(s, len) : rn_xstrdup("");
}

/* "a, b, c", cut to fit. */
static void
list_names(const rn_csv_dec_t *dec, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < dec->nnames && o + 1 < size; i++) {
        int n = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", dec->names[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

rn_code_t
rn__csv_dec_header(rn_csv_dec_t *dec, const char *rec, size_t len, char *errbuf, size_t errlen)
{
    const rn_schema_t *s = dec->schema;
    rn_code_t rc = RN_OK;
    char have[256];

    names_free(dec);
    rn_free(dec->colmap);
    dec->colmap = NULL;
    dec->ncols = 0;
    if (!parse_record(dec, rec, len, header_cell, errbuf, errlen)) {
        names_free(dec);
        return RN_EDATA;
    }
    dec->colmap = rn_xmalloc((dec->nnames ? dec->nnames : 1) * sizeof(int));
    dec->ncols = dec->nnames;
    for (size_t c = 0; c < dec->nnames; c++) {
        dec->colmap[c] = rn__schema_find(s, dec->names[c]);
        for (size_t d = 0; d < c && dec->colmap[c] >= 0; d++) {
            if (dec->colmap[d] == dec->colmap[c]) {
                snprintf(errbuf, errlen, "column '%s' appears twice in the header",
                         dec->names[c]);
                rc = RN_EDATA;
                goto out;
            }
        }
    }
    for (uint32_t f = 0; f < s->nfields; f++) {
        bool found = false;
        for (size_t c = 0; c < dec->ncols && !found; c++)
            found = dec->colmap[c] == (int)f;
        if (!found) {
            list_names(dec, have, sizeof(have));
            snprintf(errbuf, errlen, "missing column '%s' (the header has: %s)", s->fields[f].name,
                     have);
            rc = RN_EDATA;
            goto out;
        }
    }
out:
    if (rc != RN_OK)
        dec->ncols = 0;
    names_free(dec);
    return rc;
}

static void
record_cell(void *s, size_t len, void *data)
{
    rn_csv_dec_t *dec = data;
    size_t c = dec->col++;
    int f;

    if (dec->failed || c >= dec->ncols || (f = dec->colmap[c]) < 0)
        return;
    if (s == NULL) {
        dec->row[f] = rn__val_null();
        return;
    }
    const rn_field_t *field = &dec->schema->fields[f];
    if (rn__decode_text(field->type, field->name, s, len, &dec->row[f], dec->arena, dec->errbuf,
                        dec->errlen) != RN_OK)
        dec->failed = true;
}

rn_code_t
rn__csv_dec_record(rn_csv_dec_t *dec, const char *rec, size_t len, rn_value_t *row,
                   rn_arena_t *arena, char *errbuf, size_t errlen)
{
    for (uint32_t f = 0; f < dec->schema->nfields; f++)
        row[f] = rn__val_null();
    dec->misframed = false;
    if (dec->ncols == 0) {
        snprintf(errbuf, errlen, "no CSV header read");
        return RN_EDATA;
    }
    dec->row = row;
    dec->arena = arena;
    dec->errbuf = errbuf;
    dec->errlen = errlen;
    dec->col = 0;
    dec->failed = false;
    bool parsed = parse_record(dec, rec, len, record_cell, errbuf, errlen);
    dec->row = NULL;
    dec->arena = NULL;
    if (!parsed) {
        dec->misframed = true;
        return RN_EDATA;
    }
    if (dec->col != dec->ncols) {
        snprintf(errbuf, errlen, "expected %zu columns, got %zu", dec->ncols, dec->col);
        dec->misframed = true;
        return RN_EDATA;
    }
    return dec->failed ? RN_EDATA : RN_OK;
}

bool
rn__csv_dec_misframed(const rn_csv_dec_t *dec)
{
    return dec->misframed;
}

bool
rn__csv_record_open(const char *line, size_t len, size_t *quotes)
{
    const char *p = line, *end = line + len;
    while ((p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        (*quotes)++;
        p++;
    }
    return (*quotes & 1) != 0;
}
