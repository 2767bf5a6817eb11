/*
 * fuzz/records.h: the schema the record targets (json_record.c,
 * csv_record.c) decode into: one field of every type, so that every value
 * rule of connectors/decode.h is reached.
 */
#ifndef RN_FUZZ_RECORDS_H
#define RN_FUZZ_RECORDS_H

#include "stream/row.h"

#include <stdlib.h>

static rn_schema_t *
records_schema(void)
{
    static const struct {
        const char *name;
        rn_type_t type;
    } fields[] = {
        {"id", RN_TYPE_INT},  {"price", RN_TYPE_FLOAT}, {"name", RN_TYPE_STRING},
        {"ok", RN_TYPE_BOOL}, {"ts", RN_TYPE_TIMESTAMP},
    };
    rn_error_t err = RN_ERROR_INIT;
    rn_schema_t *s = rn__schema_new();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (rn__schema_add(s, fields[i].name, fields[i].type, &err) != RN_OK)
            abort();
    return s;
}

#endif
