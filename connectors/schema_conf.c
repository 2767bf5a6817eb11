/*
 * connectors/schema_conf.c: the `schema:` key of sources that read
 * self-describing text (file now, Kafka later): a map of field name to
 * type, in the order the fields get in rows.
 *
 * @thread control (plan time).
 */
#include "connectors/connector_int.h"

/* The widest schema a job file may declare. A row holds a cell per field
 * and a batch a thousand rows, so a wider one would not be usable anyway;
 * the bound also keeps the by-name checks of fields (duplicates, CSV
 * header mapping), which scan the fields, cheap. */
#define MAX_FIELDS 4096

static const char *const type_names[] = {"string", "int", "float", "bool", "timestamp", NULL};

rn_schema_t *
rn__conn_schema(const rn_conf_t *conf, const char *what, rn_error_t *err)
{
    const rn_conf_t *map = rn__conf_require(conf, "schema", what, err);
    rn_schema_t *schema;

    if (map == NULL)
        return NULL;
    if (rn_conf_kind(map) != RN_CONF_MAP) {
        rn__conf_err(err, RN_EINVAL, map,
                     "schema of %s must be a map of field: type (string, int, float, bool, "
                     "timestamp)",
                     what);
        return NULL;
    }
    if (rn_conf_len(map) == 0) {
        rn__conf_err(err, RN_EINVAL, map, "schema of %s has no fields", what);
        return NULL;
    }
    if (rn_conf_len(map) > MAX_FIELDS) {
        rn__conf_err(err, RN_EINVAL, map, "schema of %s has %zu fields; at most %d are supported",
                     what, rn_conf_len(map), MAX_FIELDS);
        return NULL;
    }
    schema = rn__schema_new();
    for (size_t i = 0; i < rn_conf_len(map); i++) {
        const char *name = rn_conf_key_at(map, i);
        const rn_conf_t *node = rn_conf_at(map, i);
        const char *text = rn_conf_scalar(node);
        rn_type_t type;

        if (text == NULL || rn_type_parse(text, &type) != RN_OK) {
            const char *guess = text != NULL ? rn__did_you_mean(text, type_names) : NULL;
            char hint[64] = "";
            if (guess != NULL)
                snprintf(hint, sizeof(hint), "; did you mean '%s'?", guess);
            rn__conf_err(err, RN_EINVAL, node,
                         "field '%s' of %s: unknown type '%s'%s (types: string, int, float, "
                         "bool, timestamp)",
                         name, what, text != NULL ? text : "(not a scalar)", hint);
            rn__schema_destroy(schema);
            return NULL;
        }
        rn_error_t dup = RN_ERROR_INIT;
        if (rn__schema_add(schema, name, type, &dup) != RN_OK) {
            rn__conf_err(err, RN_EINVAL, rn_conf_key_node_at(map, i), "schema of %s: %s", what,
                         dup.msg);
            rn__schema_destroy(schema);
            return NULL;
        }
    }
    return schema;
}

void
rn__conn_what(const rn_plan_ctx_t *pc, const char *kind, char *buf, size_t size)
{
    snprintf(buf, size, "%s '%s'", kind, rn__pc_name(pc));
}
