/*
 * runnel/types.h: the field types of a record schema.
 */
#ifndef RUNNEL_TYPES_H
#define RUNNEL_TYPES_H

#include <runnel/common.h>

typedef enum rn_type {
    RN_TYPE_NULL = 0, /* only the type of the literal null in expressions */
    RN_TYPE_STRING = 1,
    RN_TYPE_INT = 2,       /* int64 */
    RN_TYPE_FLOAT = 3,     /* double */
    RN_TYPE_BOOL = 4,
    RN_TYPE_TIMESTAMP = 5, /* int64 epoch milliseconds */
} rn_type_t;

/* @returns "string", "int", ...; a static string. */
RN_API const char *rn_type_name(rn_type_t type);

/* Parses "string", "int", "float", "bool" or "timestamp".
 * @returns RN_OK and sets *type, or RN_ENOTFOUND. */
RN_API int rn_type_parse(const char *name, rn_type_t *type);

#endif
