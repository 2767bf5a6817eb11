/*
 * fuzz/json_record.c: JSON lines as the file source (and the Kafka
 * source) decode them: each line of the input is one record, decoded by
 * rn__json_decode_line into a schema with a field of every type.
 */
#include "fuzz/fuzz_util.h"
#include "fuzz/records.h"

#include "connectors/decode.h"

#include <string.h>

static rn_schema_t *schema;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (schema == NULL) {
        rn_fuzz_quiet();
        schema = records_schema();
    }
    rn_arena_t arena;
    rn_value_t row[8];
    char errbuf[512];
    rn__arena_init(&arena);
    /* Each line in a buffer of its own, so that ASan sees a read past it. */
    for (size_t off = 0; off <= size;) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl != NULL ? (size_t)(nl - (data + off)) : size - off;
        char *line = malloc(len ? len : 1);
        memcpy(line, data + off, len);
        rn__json_decode_line(schema, line, len, row, &arena, errbuf, sizeof(errbuf));
        free(line);
        off += len + 1;
    }
    rn__arena_fini(&arena);
    return 0;
}
