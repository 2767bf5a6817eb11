/*
 * stream/datastream.c: the DataStream-like builder (runnel/datastream.h)
 * on top of the graph API: each call turns its arguments into the
 * component's configuration tree, as a job file would give it, and adds
 * the component with rn_graph_add. Settings given as YAML text are read
 * with the job-file reader, so a mistake in them is reported with the
 * component's name and the position in the text.
 *
 * @thread the caller's (one env, one thread).
 */
#include "stream/core.h"

#include <runnel/datastream.h>

#include <stdarg.h>
#include <stdio.h>

struct rn_stream {
    rn_env_t *env;
    char *ref;          /* what `inputs:` names: "comp" or "comp.port" */
    char *key;          /* key_by's fields as YAML text, or NULL */
    struct rn_stream *next; /* the env's list, for freeing */
};

struct rn_env {
    rn_graph_t *g;
    rn_error_t err; /* the first mistake; RN_OK while none */
    rn_stream_t *streams;
};

rn_env_t *
rn_env_new(const char *job_name)
{
    rn_env_t *env = rn_calloc(1, sizeof(*env));
    if (env == NULL)
        return NULL;
    if ((env->g = rn_graph_new(job_name ? job_name : "job", &env->err)) == NULL &&
        env->err.code == RN_OK)
        rn__errf(&env->err, RN_ENOMEM, "out of memory");
    return env;
}

void
rn_env_destroy(rn_env_t *env)
{
    if (env == NULL)
        return;
    rn_graph_destroy(env->g);
    while (env->streams != NULL) {
        rn_stream_t *s = env->streams;
        env->streams = s->next;
        rn_free(s->ref);
        rn_free(s->key);
        rn_free(s);
    }
    rn_free(env);
}

static bool
ok(const rn_env_t *env)
{
    return env != NULL && env->err.code == RN_OK;
}

void
rn_env_set(rn_env_t *env, const char *path, const char *value)
{
    if (ok(env))
        rn_graph_set(env->g, path, value, &env->err);
}

/* A stream of env named ref (and key); NULL on a mistake recorded in env. */
static rn_stream_t *
stream_new(rn_env_t *env, const char *ref, const char *key)
{
    rn_stream_t *s = rn_xcalloc(1, sizeof(*s));
    s->env = env;
    s->ref = rn_xstrdup(ref);
    s->key = key ? rn_xstrdup(key) : NULL;
    s->next = env->streams;
    env->streams = s;
    return s;
}

/* Reads YAML text (NULL: an empty map) for component name's key what.
 * @returns the tree (owned by the caller) or NULL with env's error set. */
static rn_conf_t *
parse(rn_env_t *env, const char *name, const char *what, const char *text)
{
    if (text == NULL)
        return rn_conf_new_map();
    char label[256];
    snprintf(label, sizeof(label), "%s %s", name, what);
    return rn_conf_load_string(text, strlen(text), label, &env->err);
}

/* Sets key of map to the YAML text (a scalar when it is one). */
static bool
set_text(rn_env_t *env, rn_conf_t *map, const char *name, const char *key, const char *text)
{
    rn_conf_t *v = parse(env, name, key, text);
    return v != NULL && rn_conf_map_set(map, key, v, &env->err) == RN_OK;
}

/* Adds component name of type to env's graph with settings (YAML text),
 * input in (may be NULL: a source) and, when in is keyed, its key.
 * extra(key, text) pairs follow, NULL-terminated. */
static rn_stream_t *
add(rn_env_t *env, rn_section_t section, const char *name, const char *type,
    const char *settings, const rn_stream_t *in, ...)
{
    if (!ok(env))
        return NULL;
    if (name == NULL || type == NULL) {
        rn__errf(&env->err, RN_EINVAL, "a component needs a name and a type");
        return NULL;
    }
    rn_conf_t *conf = parse(env, name, "settings", settings);
    if (conf == NULL)
        return NULL;
    if (rn_conf_kind(conf) != RN_CONF_MAP) {
        rn_conf_destroy(conf);
        rn__errf(&env->err, RN_EINVAL, "%s: settings must be a map ({key: value, ...})", name);
        return NULL;
    }
    bool good = true;
    if (in != NULL) {
        rn_conf_t *inputs = rn_conf_new_seq();
        good = rn_conf_seq_append(inputs, rn_conf_new_scalar(in->ref), &env->err) == RN_OK &&
               rn_conf_map_set(conf, "inputs", inputs, &env->err) == RN_OK;
        /* The key is for what takes a keyed stream; another operator
         * after key_by reads it unkeyed, as in Flink. */
        if (good && in->key != NULL &&
            (strcmp(type, "window_aggregate") == 0 || strcmp(type, "plugin") == 0))
            good = set_text(env, conf, name, "key", in->key);
    }
    va_list ap;
    va_start(ap, in);
    for (const char *k; good && (k = va_arg(ap, const char *)) != NULL;) {
        const char *text = va_arg(ap, const char *);
        good = set_text(env, conf, name, k, text);
    }
    va_end(ap);
    if (!good) {
        rn_conf_destroy(conf);
        return NULL;
    }
    /* rn_graph_add consumes conf either way. */
    if (rn_graph_add(env->g, section, name, type, conf, &env->err) != RN_OK)
        return NULL;
    return section == RN_SINK ? NULL : stream_new(env, name, NULL);
}

rn_stream_t *
rn_source(rn_env_t *env, const char *name, const char *type, const char *settings)
{
    return add(env, RN_SOURCE, name, type, settings, NULL, NULL);
}

rn_stream_t *
rn_filter(rn_stream_t *in, const char *name, const char *where)
{
    if (in == NULL)
        return NULL;
    if (!ok(in->env))
        return NULL;
    /* An expression is a scalar: quoted so that YAML reads it as it is. */
    rn_conf_t *conf = rn_conf_new_map();
    rn_conf_t *inputs = rn_conf_new_seq();
    rn_env_t *env = in->env;
    if (rn_conf_seq_append(inputs, rn_conf_new_scalar(in->ref), &env->err) != RN_OK ||
        rn_conf_map_set(conf, "inputs", inputs, &env->err) != RN_OK ||
        rn_conf_map_set(conf, "where", rn_conf_new_scalar(where ? where : ""), &env->err) != RN_OK) {
        rn_conf_destroy(conf);
        return NULL;
    }
    if (rn_graph_add(env->g, RN_OPERATOR, name, "filter", conf, &env->err) != RN_OK)
        return NULL;
    return stream_new(env, name, NULL);
}

rn_stream_t *
rn_map(rn_stream_t *in, const char *name, const char *select)
{
    return in ? add(in->env, RN_OPERATOR, name, "map", NULL, in, "select", select, NULL) : NULL;
}

rn_stream_t *
rn_key_by(rn_stream_t *in, const char *fields)
{
    if (in == NULL || !ok(in->env))
        return NULL;
    return stream_new(in->env, in->ref, fields);
}

rn_stream_t *
rn_window(rn_stream_t *keyed, const char *name, const char *window, const char *aggregates)
{
    if (keyed == NULL || !ok(keyed->env))
        return NULL;
    if (keyed->key == NULL) {
        rn__errf(&keyed->env->err, RN_EINVAL, "%s: a window needs a keyed stream (rn_key_by)",
                 name ? name : "window");
        return NULL;
    }
    return add(keyed->env, RN_OPERATOR, name, "window_aggregate", NULL, keyed, "window", window,
               "aggregates", aggregates, NULL);
}

rn_stream_t *
rn_process(rn_stream_t *in, const char *name, const rn_process_fn_t *fn, const char *config)
{
    if (in == NULL || !ok(in->env))
        return NULL;
    if (fn == NULL || rn_process_fn_register(fn, &in->env->err) != RN_OK) {
        if (fn == NULL)
            rn__errf(&in->env->err, RN_EINVAL, "%s: no process function", name ? name : "?");
        return NULL;
    }
    if (config != NULL)
        return add(in->env, RN_OPERATOR, name, "plugin", NULL, in, "operator", fn->name,
                   "config", config, NULL);
    return add(in->env, RN_OPERATOR, name, "plugin", NULL, in, "operator", fn->name, NULL);
}

rn_stream_t *
rn_operator(rn_stream_t *in, const char *name, const char *type, const char *settings)
{
    return in ? add(in->env, RN_OPERATOR, name, type, settings, in, NULL) : NULL;
}

rn_stream_t *
rn_side_output(rn_stream_t *s, const char *port)
{
    if (s == NULL || !ok(s->env))
        return NULL;
    char ref[512];
    snprintf(ref, sizeof(ref), "%s.%s", s->ref, port ? port : "");
    return stream_new(s->env, ref, NULL);
}

void
rn_sink(rn_stream_t *in, const char *name, const char *type, const char *settings)
{
    if (in != NULL)
        add(in->env, RN_SINK, name, type, settings, in, NULL);
}

rn_job_t *
rn_env_job(rn_env_t *env, const rn_job_options_t *opts, rn_error_t *err)
{
    if (env == NULL) {
        rn__errf(err, RN_ENOMEM, "out of memory");
        return NULL;
    }
    if (env->err.code != RN_OK) {
        if (err != NULL)
            *err = env->err;
        rn_env_destroy(env);
        return NULL;
    }
    rn_graph_t *g = env->g;
    env->g = NULL;
    rn_env_destroy(env);
    return rn_job_new(g, opts, err); /* consumes g */
}
