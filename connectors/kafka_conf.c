/*
 * connectors/kafka_conf.c: a job file's Kafka settings as a librdkafka
 * configuration, for the Kafka connectors.
 *
 * `properties` is a map handed to librdkafka as it is, after ${NAME} in a
 * value is replaced by the environment variable NAME (so that secrets stay
 * out of job files; an unset variable is an error, not an empty value).
 * Properties that make librdkafka run a command or load code are refused
 * in job files: a job file is configuration, a plugin is code (docs).
 *
 * @thread control (plan time) for rn__kafka_props_read; any for the rest.
 */
#include "connectors/kafka_int.h"

#include <stdlib.h>
#include <string.h>

/* librdkafka properties that run a program or load a library. */
static const char *const code_props[] = {"sasl.kerberos.kinit.cmd", "plugin.library.paths",
                                         "ssl.engine.location", "ssl.providers", NULL};

/* Appends n bytes of p to *out (length *len, capacity *cap). */
static void
append(char **out, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 64;
        while (*len + n + 1 > nc)
            nc *= 2;
        *out = rn_xrealloc(*out, nc);
        *cap = nc;
    }
    memcpy(*out + *len, p, n);
    *len += n;
    (*out)[*len] = '\0';
}

/* Replaces each ${NAME} of s by NAME's value. @returns a new string
 * (rn_free), or NULL with err set at node. */
static char *
expand_env(const char *s, const rn_conf_t *node, const char *what, const char *key,
           rn_error_t *err)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    append(&out, &len, &cap, "", 0);
    const char *p = s;
    while (*p != '\0') {
        const char *open = strstr(p, "${");
        if (open == NULL) {
            append(&out, &len, &cap, p, strlen(p));
            break;
        }
        append(&out, &len, &cap, p, (size_t)(open - p));
        const char *close = strchr(open + 2, '}');
        size_t n = close != NULL ? (size_t)(close - open - 2) : 0;
        char name[256];
        if (close == NULL || n == 0 || n >= sizeof(name)) {
            rn_free(out);
            rn__conf_err(err, RN_EINVAL, node,
                         "%s: property '%s': '${' must be followed by a variable name and '}'",
                         what, key);
            return NULL;
        }
        memcpy(name, open + 2, n);
        name[n] = '\0';
        const char *v = getenv(name);
        if (v == NULL) {
            rn_free(out);
            rn__conf_err(err, RN_EINVAL, node,
                         "%s: property '%s' needs the environment variable %s, which is not set",
                         what, key, name);
            return NULL;
        }
        append(&out, &len, &cap, v, strlen(v));
        p = close + 1;
    }
    return out;
}

rn_code_t
rn__kafka_props_read(const rn_conf_t *conf, const char *what, bool allow_code,
                     rn_kafka_props_t *props, rn_error_t *err)
{
    memset(props, 0, sizeof(*props));
    const rn_conf_t *map = rn_conf_get(conf, "properties");
    if (map == NULL)
        return RN_OK;
    if (rn_conf_kind(map) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, map, "%s: properties must be a map of name: value",
                            what);
    size_t n = rn_conf_len(map);
    props->names = rn_xcalloc(n ? n : 1, sizeof(char *));
    props->values = rn_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *key = rn_conf_key_at(map, i);
        const rn_conf_t *v = rn_conf_at(map, i);
        const char *s = rn_conf_scalar(v);
        if (s == NULL) {
            rn__kafka_props_fini(props);
            return rn__conf_err(err, RN_EINVAL, v, "%s: property '%s' must be a scalar", what,
                                key);
        }
        for (int k = 0; !allow_code && code_props[k] != NULL; k++) {
            if (strcmp(key, code_props[k]) == 0) {
                rn__kafka_props_fini(props);
                return rn__conf_err(err, RN_EINVAL, rn_conf_key_node_at(map, i),
                                    "%s: property '%s' makes librdkafka run a command or load "
                                    "code, which a job file may not do unless the operator "
                                    "allows it (runnel run --allow-code-properties)",
                                    what, key);
            }
        }
        char *val = expand_env(s, v, what, key, err);
        if (val == NULL) {
            rn__kafka_props_fini(props);
            return err ? err->code : RN_EINVAL;
        }
        props->names[props->n] = rn_xstrdup(key);
        props->values[props->n++] = val;
    }
    return RN_OK;
}

void
rn__kafka_props_fini(rn_kafka_props_t *props)
{
    for (size_t i = 0; i < props->n; i++) {
        rn_free(props->names[i]);
        rn_free(props->values[i]);
    }
    rn_free(props->names);
    rn_free(props->values);
    memset(props, 0, sizeof(*props));
}

/* librdkafka's log lines through runnel's log (they went to stderr in
 * librdkafka's own format): errors and warnings as warnings, notices as
 * info, the rest as debug. */
static void
log_line(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const char *name = rd_kafka_name(rk);
    if (level <= 4)
        RN_LOG_WARN("kafka", "%s: %s: %s", name, fac, buf);
    else if (level <= 5)
        RN_LOG_INFO("kafka", "%s: %s: %s", name, fac, buf);
    else
        RN_LOG_DEBUG("kafka", "%s: %s: %s", name, fac, buf);
}

rd_kafka_conf_t *
rn__kafka_conf_new(const char *brokers, const rn_kafka_props_t *props, const char *what,
                   rn_error_t *err)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, log_line);
    char errstr[512];
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        rn__errf(err, RN_EINVAL, "%s: brokers: %s", what, errstr);
        return NULL;
    }
    for (size_t i = 0; props != NULL && i < props->n; i++) {
        if (rd_kafka_conf_set(c, props->names[i], props->values[i], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(c);
            rn__errf(err, RN_EINVAL, "%s: property '%s': %s", what, props->names[i], errstr);
            return NULL;
        }
    }
    return c;
}

rn_code_t
rn__kafka_set(rd_kafka_conf_t *c, const char *name, const char *value, const char *what,
              rn_error_t *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(c, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return rn__errf(err, RN_EINVAL, "%s: %s: %s", what, name, errstr);
    return RN_OK;
}
