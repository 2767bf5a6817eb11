/*
 * fuzz/csv_record.c: CSV files as the file source reads them: the first
 * record is the header (columns mapped to a schema with a field of every
 * type), then records framed as connectors/file_source.c frames them (a
 * record goes on past a line break while a quote is open:
 * rn__csv_record_open), each decoded by rn__csv_dec_record.
 */
#include "fuzz/fuzz_util.h"
#include "fuzz/records.h"

#include "connectors/decode.h"

#include <string.h>

static rn_schema_t *schema;

/* The next record from data[*off..size): its lines joined by '\n', in a
 * buffer of its own (malloc'd) so that ASan sees a read past it. */
static char *
next_record(const uint8_t *data, size_t size, size_t *off, size_t *len)
{
    size_t start = *off, quotes = 0;
    for (;;) {
        const uint8_t *nl = memchr(data + *off, '\n', size - *off);
        size_t n = nl != NULL ? (size_t)(nl - (data + *off)) : size - *off;
        bool open = rn__csv_record_open((const char *)data + *off, n, &quotes);
        *off += n + 1;
        if (!open || *off > size)
            break;
    }
    size_t end = *off > size ? size : *off - 1;
    *len = end - start;
    char *rec = malloc(*len ? *len : 1);
    memcpy(rec, data + start, *len);
    return rec;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (schema == NULL) {
        rn_fuzz_quiet();
        schema = records_schema();
    }
    rn_csv_dec_t *dec = rn__csv_dec_new(schema);
    rn_arena_t arena;
    rn_value_t row[8];
    char errbuf[512];
    size_t off = 0, len;
    rn__arena_init(&arena);
    char *rec = next_record(data, size, &off, &len);
    rn_code_t rc = rn__csv_dec_header(dec, rec, len, errbuf, sizeof(errbuf));
    free(rec);
    while (rc == RN_OK && off <= size) {
        rec = next_record(data, size, &off, &len);
        rn__csv_dec_record(dec, rec, len, row, &arena, errbuf, sizeof(errbuf));
        free(rec);
    }
    rn__arena_fini(&arena);
    rn__csv_dec_destroy(dec);
    return 0;
}
