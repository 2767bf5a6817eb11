/*
 * connectors/json_decode.c: one JSON line into one row (see decode.h).
 *
 * Design: jansson parses the line into a tree (json_loadb), then each
 * schema field is looked up by name in the object. Parsing a whole tree per
 * line costs more than a streaming tokenizer would, but it is simple,
 * strict about JSON and fast enough for a file source; a hand-written
 * scanner can replace this function without touching its callers.
 *
 * jansson allocates with malloc, not rn_malloc: its tree lives only for
 * the call.
 *
 * @thread any; no state.
 */
#include "connectors/decode.h"

#include <jansson.h>
#include <math.h>

static const char *
json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* The "got" part of a message: the value as JSON, cut when long. */
static void
json_got(char *buf, size_t size, const json_t *v)
{
    if (json_is_string(v)) {
        rn__decode_quote(buf, size, json_string_value(v), json_string_length(v));
        return;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL) {
        snprintf(buf, size, "a JSON %s", json_kind(v));
        return;
    }
    if (strlen(text) > RN_DECODE_GOT_MAX)
        snprintf(buf, size, "%.*s...", RN_DECODE_GOT_MAX, text);
    else
        snprintf(buf, size, "%s", text);
    free(text);
}

static bool
real_as_i64(double f, int64_t *out)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f))
        return false;
    *out = (int64_t)f;
    return true;
}

/* One field. @returns false when v has the wrong type for the field. */
static bool
decode_value(rn_type_t type, const json_t *v, rn_value_t *out, rn_arena_t *arena)
{
    switch (type) {
    case RN_TYPE_STRING: {
        size_t len = json_string_length(v);
        if (!json_is_string(v) || len > UINT32_MAX)
            return false;
        *out = rn__val_str(rn__arena_strdup(arena, json_string_value(v), len), (uint32_t)len);
        return true;
    }
    case RN_TYPE_INT:
        *out = rn__val_int(0);
        if (json_is_integer(v)) {
            out->u.i = json_integer_value(v);
            return true;
        }
        return json_is_real(v) && real_as_i64(json_real_value(v), &out->u.i);
    case RN_TYPE_FLOAT:
        if (!json_is_number(v))
            return false;
        *out = rn__val_float(json_number_value(v));
        return true;
    case RN_TYPE_BOOL:
        if (!json_is_boolean(v))
            return false;
        *out = rn__val_bool(json_is_true(v));
        return true;
    case RN_TYPE_TIMESTAMP:
        *out = rn__val_int(0);
        if (json_is_integer(v)) {
            out->u.i = json_integer_value(v);
            return true;
        }
        if (json_is_real(v))
            return real_as_i64(json_real_value(v), &out->u.i);
        return json_is_string(v) &&
               rn__parse_timestamp(json_string_value(v), json_string_length(v), &out->u.i) ==
                   RN_OK;
    case RN_TYPE_NULL: break;
    }
    return false;
}

rn_code_t
rn__json_decode_line(const rn_schema_t *schema, const char *line, size_t len, rn_value_t *row,
                     rn_arena_t *arena, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    rn_code_t rc = RN_OK;

    if (root == NULL) {
        snprintf(errbuf, errlen, "invalid JSON: %s", jerr.text);
        return RN_EDATA;
    }
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "expected a JSON object, got %s", json_kind(root));
        json_decref(root);
        return RN_EDATA;
    }
    for (uint32_t i = 0; i < schema->nfields; i++) {
        const rn_field_t *f = &schema->fields[i];
        json_t *v = json_object_get(root, f->name);

        if (v == NULL || json_is_null(v)) {
            row[i] = rn__val_null();
            continue;
        }
        if (!decode_value(f->type, v, &row[i], arena)) {
            char got[RN_DECODE_GOT_MAX * 6 + 16];
            json_got(got, sizeof(got), v);
            snprintf(errbuf, errlen, "field '%s': expected %s, got %s", f->name,
                     rn_type_name(f->type), got);
            rc = RN_EDATA;
            break;
        }
    }
    json_decref(root);
    return rc;
}
