/*
 * stream/graph.c: graphs (job trees) and planning them into a job.
 *
 * A graph is nothing but a job configuration tree, so that the YAML path
 * and the C path are one: rn_graph_add() writes the same entries a job file
 * has. rn_job_new() checks and plans the tree in one pass over it: job-level
 * keys, components and their types, inputs, cycles, then each component's
 * own plan() in topological order so that every component sees the schemas
 * of its inputs. The first mistake stops planning and is reported with its
 * position.
 *
 * @thread control.
 */
#include "stream/job_int.h"
#include "stream/plugin_ext.h"
#include "stream/plugin_int.h"

#include <ctype.h>
#include <unistd.h>

static const char *const job_keys[] = {"name",  "parallelism", "max_parallelism", "workers",
                                       "checkpoints", "state", "rest", "sources",
                                       "operators",   "sinks", "plugins", NULL};
static const char *const section_names[] = {"sources", "operators", "sinks"};
static const char *const section_singular[] = {"source", "operator", "sink"};

rn_graph_t *
rn_graph_new(const char *name, rn_error_t *err)
{
    rn_conf_t *root = rn_conf_new_map();
    if (root == NULL || rn_conf_map_set(root, "name", rn_conf_new_scalar(name), err) != RN_OK) {
        rn_conf_destroy(root);
        rn__errf(err, RN_ENOMEM, "out of memory");
        return NULL;
    }
    return rn_graph_from_conf(root, err);
}

rn_graph_t *
rn_graph_from_conf(rn_conf_t *root, rn_error_t *err)
{
    if (root == NULL) {
        rn__errf(err, RN_EINVAL, "no job configuration");
        return NULL;
    }
    if (rn_conf_kind(root) != RN_CONF_MAP) {
        rn__conf_err(err, RN_EINVAL, root, "a job file must be a map with name, sources, ...");
        rn_conf_destroy(root);
        return NULL;
    }
    rn_graph_t *g = rn_xcalloc(1, sizeof(*g));
    g->root = root;
    return g;
}

rn_code_t
rn_graph_add(rn_graph_t *g, rn_section_t section, const char *name, const char *type,
             rn_conf_t *conf, rn_error_t *err)
{
    const char *sname = section_names[section];
    rn_conf_t *sec = (rn_conf_t *)rn_conf_get(g->root, sname);
    rn_code_t rc;

    if (conf == NULL || rn_conf_kind(conf) != RN_CONF_MAP) {
        rn_conf_destroy(conf);
        return rn__errf(err, RN_EINVAL, "%s '%s': its configuration must be a map",
                        section_singular[section], name);
    }
    if (rn_conf_get(conf, "type") == NULL &&
        (rc = rn_conf_map_set(conf, "type", rn_conf_new_scalar(type), err)) != RN_OK) {
        rn_conf_destroy(conf);
        return rc;
    }
    if (sec == NULL) {
        if ((rc = rn_conf_map_set(g->root, sname, rn_conf_new_map(), err)) != RN_OK) {
            rn_conf_destroy(conf);
            return rc;
        }
        sec = (rn_conf_t *)rn_conf_get(g->root, sname);
    }
    if (rn_conf_get(sec, name) != NULL) {
        rn_conf_destroy(conf);
        return rn__errf(err, RN_EINVAL, "%s '%s' is already in the graph",
                        section_singular[section], name);
    }
    return rn_conf_map_set(sec, name, conf, err);
}

rn_code_t
rn_graph_set(rn_graph_t *g, const char *path, const char *value, rn_error_t *err)
{
    return rn_conf_set_path(g->root, path, value, err);
}

rn_conf_t *
rn_graph_conf(rn_graph_t *g)
{
    return g->root;
}

void
rn_graph_destroy(rn_graph_t *g)
{
    if (g == NULL)
        return;
    rn_conf_destroy(g->root);
    rn_free(g);
}

/* ---- plan-time accessors for components ---- */

const rn_conf_t *rn__pc_conf(const rn_plan_ctx_t *pc) { return pc->node->conf; }
const char *rn__pc_name(const rn_plan_ctx_t *pc) { return pc->node->name; }
int rn__pc_parallelism(const rn_plan_ctx_t *pc) { return pc->node->parallelism; }
int rn__pc_ninputs(const rn_plan_ctx_t *pc) { return pc->node->ninputs; }

const rn_schema_t *
rn__pc_input_schema(const rn_plan_ctx_t *pc, int i)
{
    const rn_input_t *in = &pc->node->inputs[i];
    return pc->job->nodes[in->node].ports[in->port].schema;
}

const rn_conf_t *
rn__pc_input_node(const rn_plan_ctx_t *pc, int i)
{
    return pc->node->inputs[i].where;
}

rn_code_t
rn__pc_add_output(rn_plan_ctx_t *pc, const char *port, rn_schema_t *schema, rn_error_t *err)
{
    rn_node_t *node = pc->node;

    if (port == NULL && node->nports > 0 && node->ports[0].name == NULL) {
        rn__schema_destroy(schema);
        return rn__errf(err, RN_EINVAL, "component '%s' declared its main output twice",
                        node->name);
    }
    if (port != NULL && rn__pc_port(pc, port) >= 0) {
        rn__schema_destroy(schema);
        return rn__errf(err, RN_EINVAL, "component '%s' has two outputs named '%s'", node->name,
                        port);
    }
    if (port == NULL && node->section == RN_SOURCE) {
        /* Known as soon as the main output is: sources check their
         * event-time field per record (rn__pc_event_time_field). Bad names
         * are reported by plan_source_time(). */
        const char *et = rn_conf_scalar(rn_conf_get(node->conf, "event_time"));
        node->event_time_field = et ? rn__schema_find(schema, et) : -1;
    }
    if (port == NULL && node->nports > 0) {
        /* The main output is always port 0: side outputs declared before it
         * move up by one. */
        node->ports = rn_xrealloc(node->ports, (size_t)(node->nports + 1) * sizeof(rn_port_t));
        memmove(&node->ports[1], &node->ports[0], (size_t)node->nports * sizeof(rn_port_t));
        memset(&node->ports[0], 0, sizeof(rn_port_t));
        node->ports[0].schema = schema;
        node->nports++;
        return RN_OK;
    }
    node->ports = rn_xrealloc(node->ports, (size_t)(node->nports + 1) * sizeof(rn_port_t));
    memset(&node->ports[node->nports], 0, sizeof(rn_port_t));
    node->ports[node->nports].name = port ? rn_xstrdup(port) : NULL;
    node->ports[node->nports].schema = schema;
    node->nports++;
    return RN_OK;
}

int
rn__pc_port(const rn_plan_ctx_t *pc, const char *port)
{
    for (int i = 0; i < pc->node->nports; i++) {
        const char *n = pc->node->ports[i].name;
        if ((port == NULL && n == NULL) || (port && n && strcmp(port, n) == 0))
            return i;
    }
    return -1;
}

rn_code_t
rn__pc_set_key(rn_plan_ctx_t *pc, const char *const *fields, size_t n, const rn_conf_t *where,
               rn_error_t *err)
{
    rn_node_t *node = pc->node;

    if (n == 0 || n > RN_KEY_FIELDS_MAX)
        return rn__conf_err(err, RN_EINVAL, where, "component '%s': a key has 1 to %d fields",
                            node->name, RN_KEY_FIELDS_MAX);
    node->keyed = true;
    node->keyspecs = rn_xcalloc((size_t)node->ninputs, sizeof(rn_keyspec_t));
    for (int i = 0; i < node->ninputs; i++) {
        const rn_schema_t *s = rn__pc_input_schema(pc, i);
        rn_keyspec_t *ks = &node->keyspecs[i];
        ks->n = (uint32_t)n;
        for (size_t k = 0; k < n; k++) {
            int f = rn__schema_find(s, fields[k]);
            if (f < 0) {
                char buf[256];
                rn__schema_format(s, buf, sizeof(buf));
                return rn__conf_err(err, RN_EINVAL, where,
                                    "component '%s': key field '%s' is not in its input "
                                    "(fields: %s)",
                                    node->name, fields[k], buf);
            }
            ks->fields[k] = f;
            ks->types[k] = s->fields[f].type;
        }
    }
    return RN_OK;
}

const rn_keyspec_t *
rn__pc_keyspec(const rn_plan_ctx_t *pc, int i)
{
    return pc->node->keyed ? &pc->node->keyspecs[i] : NULL;
}

void rn__pc_force_parallelism(rn_plan_ctx_t *pc, int parallelism)
{
    pc->node->forced_parallelism = parallelism;
    pc->node->parallelism = parallelism;
}

void rn__pc_set_bounded(rn_plan_ctx_t *pc, bool bounded) { pc->node->bounded = bounded; }
int rn__pc_event_time_field(const rn_plan_ctx_t *pc) { return pc->node->event_time_field; }

bool
rn__pc_allow_code_properties(const rn_plan_ctx_t *pc)
{
    return pc->job->allow_code_properties;
}

void
rn__pc_set_plan(rn_plan_ctx_t *pc, void *plan, void (*free_fn)(void *plan))
{
    pc->node->plan = plan;
    pc->node->plan_free = free_fn;
}

/* ---- planning ---- */

static bool
valid_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int
find_node(const rn_job_t *job, const char *name)
{
    for (int i = 0; i < job->nnodes; i++)
        if (strcmp(job->nodes[i].name, name) == 0)
            return i;
    return -1;
}

static rn_code_t
plan_job_settings(rn_job_t *job, rn_error_t *err)
{
    const rn_conf_t *root = job->root;
    const rn_conf_t *n;
    const char *name;
    int64_t v;
    rn_code_t rc;

    if ((rc = rn__conf_check_keys(root, job_keys, "the job", err)) != RN_OK)
        return rc;
    if ((n = rn__conf_require(root, "name", "the job", err)) == NULL)
        return err ? err->code : RN_EINVAL;
    if ((rc = rn__conf_str(root, "name", NULL, &name, err)) != RN_OK)
        return rc;
    if (!valid_name(name))
        return rn__conf_err(err, RN_EINVAL, n,
                            "job name '%s' must match [a-z0-9_-]+", name);
    job->name = rn_xstrdup(name);

    if ((rc = rn__conf_int(root, "parallelism", 1, &v, err)) != RN_OK)
        return rc;
    if (v < 1 || v > 4096)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(root, "parallelism"),
                            "parallelism must be between 1 and 4096, not %lld", (long long)v);
    job->parallelism = (int)v;
    if ((rc = rn__conf_int(root, "max_parallelism", RN_DEFAULT_MAX_PARALLELISM, &v, err)) != RN_OK)
        return rc;
    if (v < 1 || v > 32768)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(root, "max_parallelism"),
                            "max_parallelism must be between 1 and 32768 (key groups), not %lld",
                            (long long)v);
    job->max_parallelism = (int)v;
    if ((rc = rn__conf_int(root, "workers", 0, &v, err)) != RN_OK)
        return rc;
    if (v < 0 || v > 1024)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(root, "workers"),
                            "workers must be between 0 (one per CPU) and 1024");
    /* rn_job_options (the --workers flag) wins over the file. */
    if (v > 0 && job->nworkers == 0)
        job->nworkers = (int)v;
    return RN_OK;
}

/* The libraries of `plugins:` (a path or a list of paths), loaded before
 * any component is planned: their functions, formats, sources and sinks
 * are then known by name (stream/plugin_ext.h). */
static rn_code_t
plan_plugins(rn_job_t *job, rn_error_t *err)
{
    const rn_conf_t *list = rn_conf_get(job->root, "plugins");
    if (list == NULL)
        return RN_OK;
    size_t n = rn_conf_kind(list) == RN_CONF_SEQ ? rn_conf_len(list) : 1;
    for (size_t i = 0; i < n; i++) {
        const rn_conf_t *item = rn_conf_kind(list) == RN_CONF_SEQ ? rn_conf_at(list, i) : list;
        const char *path = rn_conf_scalar(item);
        if (path == NULL || path[0] == '\0')
            return rn__conf_err(err, RN_EINVAL, item,
                                "plugins: expected the path of a shared library, or a list of them");
        rn_error_t e = RN_ERROR_INIT;
        rn_code_t rc = rn__plugin_load_global(path, &e);
        if (rc != RN_OK)
            return rn__conf_err(err, rc, item, "%s", e.msg);
    }
    return RN_OK;
}

static rn_code_t
plan_state_settings(rn_job_t *job, rn_error_t *err)
{
    static const char *const state_keys[] = {"backend", "dir", "memory", NULL};
    static const char *const ckpt_keys[] = {"interval", "dir",         "mode",       "retain",
                                            "timeout",  "incremental", "savepoints", NULL};
    static const char *const rest_keys[] = {"listen", NULL};
    static const char *const backends[] = {"memory", "rocksdb", NULL};
    const rn_conf_t *st = rn_conf_get(job->root, "state");
    const rn_conf_t *ck = rn_conf_get(job->root, "checkpoints");
    const rn_conf_t *rest = rn_conf_get(job->root, "rest");
    const char *dir;
    int backend = 1; /* rocksdb, as Flink users run production jobs */
    int64_t mem = 0, interval = 0;
    rn_code_t rc;

    if (st != NULL) {
        if ((rc = rn__conf_check_keys(st, state_keys, "state", err)) != RN_OK ||
            (rc = rn__conf_enum(st, "backend", backends, 1, &backend, err)) != RN_OK ||
            (rc = rn__conf_str(st, "dir", "", &dir, err)) != RN_OK ||
            (rc = rn__conf_size(st, "memory", 0, &mem, err)) != RN_OK)
            return rc;
        job->state_opts.dir = dir;
        job->state_opts.memory_bytes = mem;
    }
    job->state_backend = rn_xstrdup(backends[backend]);
    job->state_opts.backend = job->state_backend;
    if (ck != NULL) {
        static const char *const modes[] = {"exactly-once", "at-least-once", NULL};
        const char *cdir = NULL, *spdir = NULL;
        int mode = 0;
        int64_t retain = 3, timeout = 0;
        bool incremental = true;
        if ((rc = rn__conf_check_keys(ck, ckpt_keys, "checkpoints", err)) != RN_OK ||
            (rc = rn__conf_duration_ms(ck, "interval", 0, &interval, err)) != RN_OK ||
            (rc = rn__conf_str(ck, "dir", NULL, &cdir, err)) != RN_OK ||
            (rc = rn__conf_enum(ck, "mode", modes, 0, &mode, err)) != RN_OK ||
            (rc = rn__conf_int(ck, "retain", 3, &retain, err)) != RN_OK ||
            (rc = rn__conf_duration_ms(ck, "timeout", 10 * 60 * 1000, &timeout, err)) != RN_OK ||
            (rc = rn__conf_bool(ck, "incremental", true, &incremental, err)) != RN_OK ||
            (rc = rn__conf_str(ck, "savepoints", NULL, &spdir, err)) != RN_OK)
            return rc;
        if (interval < 0)
            return rn__conf_err(err, RN_EINVAL, rn_conf_get(ck, "interval"),
                                "checkpoints.interval must not be negative");
        if (retain < 1 || retain > 1000)
            return rn__conf_err(err, RN_EINVAL, rn_conf_get(ck, "retain"),
                                "checkpoints.retain must be between 1 and 1000, not %lld",
                                (long long)retain);
        if (timeout <= 0)
            return rn__conf_err(err, RN_EINVAL, rn_conf_get(ck, "timeout"),
                                "checkpoints.timeout must be positive");
        if (interval > 0 && (cdir == NULL || cdir[0] == '\0'))
            return rn__conf_err(err, RN_EINVAL, ck,
                                "checkpoints need a dir, such as dir: ./run/%s/checkpoints",
                                job->name);
        job->ckpt_conf.interval_ms = interval;
        job->ckpt_conf.dir = cdir != NULL ? rn_xstrdup(cdir) : NULL;
        if (spdir != NULL && spdir[0] != '\0') {
            job->ckpt_conf.savepoints = rn_xstrdup(spdir);
        } else if (cdir != NULL) {
            size_t n = strlen(cdir) + 16;
            job->ckpt_conf.savepoints = rn_xmalloc(n);
            snprintf(job->ckpt_conf.savepoints, n, "%s/savepoints", cdir);
        }
        job->ckpt_conf.exactly_once = mode == 0;
        job->ckpt_conf.retain = (int)retain;
        job->ckpt_conf.timeout_ms = timeout;
        job->ckpt_conf.full = !incremental;
    }
    if (rest != NULL) {
        const char *listen = NULL;
        if ((rc = rn__conf_check_keys(rest, rest_keys, "rest", err)) != RN_OK ||
            (rc = rn__conf_listen(rest, "listen", "127.0.0.1:8081", &listen, err)) != RN_OK)
            return rc;
        job->rest_listen = rn_xstrdup(listen);
        if (strncmp(listen, "127.", 4) != 0 && strncmp(listen, "[::1]", 5) != 0 &&
            strncmp(listen, "::1", 3) != 0)
            RN_LOG_WARN(job->name,
                        "rest.listen %s is not a loopback address: anyone who reaches it can "
                        "stop the job and write savepoints under its directories",
                        listen);
    }
    return RN_OK;
}

/* Collects the components of the three sections into job->nodes. */
static rn_code_t
collect_nodes(rn_job_t *job, rn_error_t *err)
{
    size_t total = 0;

    for (int s = 0; s < 3; s++) {
        const rn_conf_t *sec = rn_conf_get(job->root, section_names[s]);
        if (sec == NULL)
            continue;
        if (rn_conf_kind(sec) != RN_CONF_MAP)
            return rn__conf_err(err, RN_EINVAL, sec, "'%s' must be a map of named %ss",
                                section_names[s], section_singular[s]);
        total += rn_conf_len(sec);
    }
    if (rn_conf_get(job->root, "sources") == NULL || rn_conf_len(rn_conf_get(job->root, "sources")) == 0)
        return rn__conf_err(err, RN_EINVAL, job->root, "the job has no sources");
    if (rn_conf_get(job->root, "sinks") == NULL || rn_conf_len(rn_conf_get(job->root, "sinks")) == 0)
        return rn__conf_err(err, RN_EINVAL, job->root, "the job has no sinks");

    job->nodes = rn_xcalloc(total, sizeof(rn_node_t));
    for (int s = 0; s < 3; s++) {
        const rn_conf_t *sec = rn_conf_get(job->root, section_names[s]);
        size_t n = sec ? rn_conf_len(sec) : 0;
        for (size_t i = 0; i < n; i++) {
            const char *name = rn_conf_key_at(sec, i);
            const rn_conf_t *keynode = rn_conf_key_node_at(sec, i);
            const rn_conf_t *conf = rn_conf_at(sec, i);
            const char *type;
            rn_code_t rc;

            if (!valid_name(name))
                return rn__conf_err(err, RN_EINVAL, keynode,
                                    "%s name '%s' must match [a-z0-9_-]+", section_singular[s],
                                    name);
            if (find_node(job, name) >= 0)
                return rn__conf_err(err, RN_EINVAL, keynode,
                                    "the name '%s' is used twice; names are unique across "
                                    "sources, operators and sinks",
                                    name);
            if (rn_conf_kind(conf) != RN_CONF_MAP)
                return rn__conf_err(err, RN_EINVAL, conf, "%s '%s' must be a map",
                                    section_singular[s], name);
            char what[160];
            snprintf(what, sizeof(what), "%s '%s'", section_singular[s], name);
            if (rn__conf_require(conf, "type", what, err) == NULL)
                return err ? err->code : RN_EINVAL;
            if ((rc = rn__conf_str(conf, "type", NULL, &type, err)) != RN_OK)
                return rc;
            /* Built in, else a source or sink a library of `plugins:`
             * registered (a generic class that finds it by this name). */
            const rn_opclass_t *cls = rn__opclass_find((rn_section_t)s, type);
            if (cls == NULL)
                cls = rn__opclass_ext((rn_section_t)s, type);
            if (cls == NULL) {
                const char *const *builtin = rn__opclass_names((rn_section_t)s);
                char ext[512] = "";
                if (s != RN_OPERATOR)
                    rn__ext_names(s == RN_SOURCE ? RN_EXT_SOURCE : RN_EXT_SINK, ext,
                                  sizeof(ext));
                /* Candidates: the built-in names, then the registered ones
                 * (ext split at its ", " in place). */
                const char *names[64];
                size_t nn = 0;
                for (size_t k = 0; builtin[k] && nn < 63; k++)
                    names[nn++] = builtin[k];
                for (char *p = ext[0] ? ext : NULL; p != NULL && nn < 63;) {
                    names[nn++] = p;
                    char *sep = strstr(p, ", ");
                    if (sep != NULL) {
                        *sep = '\0';
                        sep += 2;
                    }
                    p = sep;
                }
                names[nn] = NULL;
                const char *dym = rn__did_you_mean(type, names);
                char list[768] = "";
                for (size_t k = 0; names[k]; k++) {
                    strncat(list, k ? ", " : "", sizeof(list) - strlen(list) - 1);
                    strncat(list, names[k], sizeof(list) - strlen(list) - 1);
                }
                if (dym)
                    return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "type"),
                                        "%s: unknown %s type '%s'; did you mean '%s'? (known: %s)",
                                        what, section_singular[s], type, dym, list);
                return rn__conf_err(err, RN_EINVAL, rn_conf_get(conf, "type"),
                                    "%s: unknown %s type '%s' (known: %s)", what,
                                    section_singular[s], type, list);
            }
            rn_node_t *node = &job->nodes[job->nnodes];
            node->index = job->nnodes++;
            node->name = rn_xstrdup(name);
            node->section = (rn_section_t)s;
            node->cls = cls;
            node->conf = conf;
            node->event_time_field = -1;
        }
    }
    return RN_OK;
}

/* Checks the common and class keys and resolves `inputs` names. */
static rn_code_t
check_node(rn_job_t *job, rn_node_t *node, rn_error_t *err)
{
    static const char *const common[] = {"type", "inputs", "parallelism", "event_time",
                                         "watermark"};
    const char *allowed[96];
    size_t na = 0;
    char what[160];
    int64_t par;
    rn_code_t rc;

    snprintf(what, sizeof(what), "%s '%s'", section_singular[node->section], node->name);
    allowed[na++] = common[0];
    allowed[na++] = common[2];
    if (node->section != RN_SOURCE)
        allowed[na++] = common[1];
    else {
        allowed[na++] = common[3];
        allowed[na++] = common[4];
    }
    for (size_t i = 0; node->cls->keys && node->cls->keys[i] && na < 95; i++)
        allowed[na++] = node->cls->keys[i];
    allowed[na] = NULL;
    if ((rc = rn__conf_check_keys(node->conf, allowed, what, err)) != RN_OK)
        return rc;

    if ((rc = rn__conf_int(node->conf, "parallelism", job->parallelism, &par, err)) != RN_OK)
        return rc;
    if (par < 1 || par > job->max_parallelism)
        return rn__conf_err(err, RN_EINVAL, rn_conf_get(node->conf, "parallelism"),
                            "%s: parallelism must be between 1 and max_parallelism (%d)", what,
                            job->max_parallelism);
    node->parallelism = (int)par;

    if (node->section == RN_SOURCE)
        return RN_OK;
    const rn_conf_t *inputs = rn__conf_require(node->conf, "inputs", what, err);
    if (inputs == NULL)
        return err ? err->code : RN_EINVAL;
    if (rn_conf_kind(inputs) == RN_CONF_MAP ||
        (rn_conf_kind(inputs) == RN_CONF_SEQ && rn_conf_len(inputs) == 0))
        return rn__conf_err(err, RN_EINVAL, inputs,
                            "%s: inputs must be a non-empty list of component names", what);
    size_t n = rn_conf_kind(inputs) == RN_CONF_SEQ ? rn_conf_len(inputs) : 1;
    node->inputs = rn_xcalloc(n, sizeof(rn_input_t));
    for (size_t i = 0; i < n; i++) {
        const rn_conf_t *in = rn_conf_kind(inputs) == RN_CONF_SEQ ? rn_conf_at(inputs, i) : inputs;
        const char *ref = rn_conf_scalar(in);
        if (ref == NULL)
            return rn__conf_err(err, RN_EINVAL, in, "%s: an input is a component name", what);
        char base[256];
        snprintf(base, sizeof(base), "%s", ref);
        char *dot = strchr(base, '.');
        if (dot)
            *dot = '\0';
        int up = find_node(job, base);
        if (up < 0) {
            const char *names[512];
            int k;
            for (k = 0; k < job->nnodes && k < 511; k++)
                names[k] = job->nodes[k].name;
            names[k] = NULL;
            const char *dym = rn__did_you_mean(base, names);
            return rn__conf_err(err, RN_EINVAL, in, "%s: unknown input '%s'%s%s%s", what, base,
                                dym ? "; did you mean '" : "", dym ? dym : "", dym ? "'?" : "");
        }
        if (job->nodes[up].section == RN_SINK)
            return rn__conf_err(err, RN_EINVAL, in, "%s: input '%s' is a sink; sinks have no output",
                                what, base);
        node->inputs[i].node = up;
        node->inputs[i].port = -1; /* resolved when the upstream is planned */
        node->inputs[i].where = in;
        node->ninputs++;
    }
    return RN_OK;
}

/* Kahn's algorithm; a leftover node is on a cycle, reported with its path. */
static rn_code_t
topo_sort(rn_job_t *job, rn_error_t *err)
{
    int n = job->nnodes;
    int *indeg = rn_xcalloc((size_t)n, sizeof(int));
    int *order = rn_xcalloc((size_t)n, sizeof(int));
    int head = 0, tail = 0;

    for (int i = 0; i < n; i++)
        indeg[i] = job->nodes[i].ninputs;
    for (int i = 0; i < n; i++)
        if (indeg[i] == 0)
            order[tail++] = i;
    while (head < tail) {
        int u = order[head++];
        for (int v = 0; v < n; v++)
            for (int k = 0; k < job->nodes[v].ninputs; k++)
                if (job->nodes[v].inputs[k].node == u && --indeg[v] == 0)
                    order[tail++] = v;
    }
    if (tail < n) {
        /* Walk back along inputs from a node left over until one repeats. */
        int start = -1;
        for (int i = 0; i < n && start < 0; i++)
            if (indeg[i] > 0)
                start = i;
        int *seen = rn_xcalloc((size_t)n, sizeof(int));
        int cur = start;
        while (!seen[cur]) {
            seen[cur] = 1;
            for (int k = 0; k < job->nodes[cur].ninputs; k++) {
                int up = job->nodes[cur].inputs[k].node;
                if (indeg[up] > 0) {
                    cur = up;
                    break;
                }
            }
        }
        char path[400] = "";
        int c = cur;
        do {
            strncat(path, job->nodes[c].name, sizeof(path) - strlen(path) - 1);
            strncat(path, " <- ", sizeof(path) - strlen(path) - 1);
            for (int k = 0; k < job->nodes[c].ninputs; k++) {
                int up = job->nodes[c].inputs[k].node;
                if (indeg[up] > 0) {
                    c = up;
                    break;
                }
            }
        } while (c != cur);
        strncat(path, job->nodes[cur].name, sizeof(path) - strlen(path) - 1);
        const rn_conf_t *where = rn_conf_get(job->nodes[cur].conf, "inputs");
        rn_free(seen);
        rn_free(indeg);
        rn_free(order);
        return rn__conf_err(err, RN_EINVAL, where,
                            "the graph has a cycle: %s (each reads the next)", path);
    }
    for (int i = 0; i < n; i++)
        job->nodes[order[i]].order = i;
    job->topo = order;
    rn_free(indeg);
    return RN_OK;
}

static rn_code_t
plan_source_time(rn_job_t *job, rn_node_t *node, rn_error_t *err)
{
    static const char *const wm_keys[] = {"max_out_of_orderness", "idle_timeout", NULL};
    const rn_conf_t *wm = rn_conf_get(node->conf, "watermark");
    const rn_conf_t *et = rn_conf_get(node->conf, "event_time");
    char what[160];
    rn_code_t rc;

    snprintf(what, sizeof(what), "source '%s' watermark", node->name);
    if (wm != NULL) {
        if ((rc = rn__conf_check_keys(wm, wm_keys, what, err)) != RN_OK ||
            (rc = rn__conf_duration_ms(wm, "max_out_of_orderness", 0, &node->max_ooo_ms, err)) != RN_OK ||
            (rc = rn__conf_duration_ms(wm, "idle_timeout", 0, &node->idle_ms, err)) != RN_OK)
            return rc;
    }
    if (et == NULL)
        return RN_OK;
    const char *field = rn_conf_scalar(et);
    const rn_schema_t *s = node->nports ? node->ports[0].schema : NULL;
    if (field == NULL || s == NULL)
        return rn__conf_err(err, RN_EINVAL, et, "source '%s': event_time names a field",
                            node->name);
    int f = rn__schema_find(s, field);
    if (f < 0) {
        const char *names[64];
        uint32_t k;
        for (k = 0; k < s->nfields && k < 63; k++)
            names[k] = s->fields[k].name;
        names[k] = NULL;
        const char *dym = rn__did_you_mean(field, names);
        return rn__conf_err(err, RN_EINVAL, et, "source '%s': event_time field '%s' is not in "
                            "its schema%s%s%s", node->name, field,
                            dym ? "; did you mean '" : "", dym ? dym : "", dym ? "'?" : "");
    }
    if (s->fields[f].type != RN_TYPE_TIMESTAMP && s->fields[f].type != RN_TYPE_INT)
        return rn__conf_err(err, RN_EINVAL, et,
                            "source '%s': event_time field '%s' is %s; it must be a timestamp "
                            "(or an int of epoch milliseconds)",
                            node->name, field, rn_type_name(s->fields[f].type));
    node->event_time_field = f;
    return RN_OK;
}

static rn_code_t
resolve_input_ports(rn_job_t *job, rn_node_t *node, rn_error_t *err)
{
    for (int i = 0; i < node->ninputs; i++) {
        rn_input_t *in = &node->inputs[i];
        rn_node_t *up = &job->nodes[in->node];
        const char *ref = rn_conf_scalar(in->where);
        const char *dot = strchr(ref, '.');
        int port = -1;

        if (dot == NULL) {
            if (up->nports > 0 && up->ports[0].name == NULL)
                port = 0;
            else
                return rn__conf_err(err, RN_EINVAL, in->where, "'%s' has no main output",
                                    up->name);
        } else {
            for (int p = 0; p < up->nports; p++)
                if (up->ports[p].name && strcmp(up->ports[p].name, dot + 1) == 0)
                    port = p;
            if (port < 0) {
                char list[256] = "";
                for (int p = 0; p < up->nports; p++) {
                    if (up->ports[p].name == NULL)
                        continue;
                    strncat(list, *list ? ", " : "", sizeof(list) - strlen(list) - 1);
                    strncat(list, up->ports[p].name, sizeof(list) - strlen(list) - 1);
                }
                return rn__conf_err(err, RN_EINVAL, in->where,
                                    "'%s' has no side output '%s' (%s%s)", up->name, dot + 1,
                                    *list ? "it has: " : "it has none", list);
            }
        }
        in->port = port;
        rn_port_t *pt = &up->ports[port];
        pt->consumers = rn_xrealloc(pt->consumers, (size_t)(pt->nconsumers + 1) * sizeof(rn_consumer_t));
        pt->consumers[pt->nconsumers].node = node->index;
        pt->consumers[pt->nconsumers].input = i;
        pt->nconsumers++;
    }
    return RN_OK;
}

/* Edges and chains: a node is chained into its upstream when it has one
 * input, on a forward edge (same parallelism, not keyed), or on a keyed
 * edge from one instance to one instance. */
static void
plan_edges(rn_job_t *job)
{
    for (int i = 0; i < job->nnodes; i++) {
        rn_node_t *node = &job->nodes[i];
        node->chain_head = true;
        for (int k = 0; k < node->ninputs; k++) {
            rn_input_t *in = &node->inputs[k];
            rn_node_t *up = &job->nodes[in->node];
            if (node->keyed)
                in->edge = RN_EDGE_KEYED;
            else if (up->parallelism == node->parallelism)
                in->edge = RN_EDGE_FORWARD;
            else
                in->edge = RN_EDGE_REBALANCE;
        }
        /* A keyed edge between two single instances routes every key to
         * the one instance there is: chained too, the exchange would only
         * copy rows. */
        bool single = node->ninputs == 1 && node->parallelism == 1 &&
                      job->nodes[node->inputs[0].node].parallelism == 1;
        if (node->ninputs == 1 && (node->inputs[0].edge == RN_EDGE_FORWARD || single)) {
            node->inputs[0].chained = true;
            node->chain_head = false;
        }
    }
}

rn_code_t
rn__job_plan(rn_job_t *job, rn_error_t *err)
{
    rn_code_t rc;

    if ((rc = plan_job_settings(job, err)) != RN_OK || (rc = plan_plugins(job, err)) != RN_OK ||
        (rc = plan_state_settings(job, err)) != RN_OK ||
        (rc = collect_nodes(job, err)) != RN_OK)
        return rc;
    for (int i = 0; i < job->nnodes; i++)
        if ((rc = check_node(job, &job->nodes[i], err)) != RN_OK)
            return rc;
    if ((rc = topo_sort(job, err)) != RN_OK)
        return rc;
    for (int i = 0; i < job->nnodes; i++) {
        rn_node_t *node = &job->nodes[job->topo[i]];
        rn_plan_ctx_t pc = {job, node};

        if ((rc = resolve_input_ports(job, node, err)) != RN_OK)
            return rc;
        if ((rc = node->cls->plan(&pc, err)) != RN_OK)
            return rc;
        if (node->section != RN_SINK && (node->nports == 0 || node->ports[0].name != NULL))
            return rn__errf(err, RN_EINVAL, "component '%s' (type %s) declared no main output",
                            node->name, node->cls->type);
        if (node->section == RN_SOURCE && (rc = plan_source_time(job, node, err)) != RN_OK)
            return rc;
    }
    plan_edges(job);
    return RN_OK;
}

void
rn_job_describe(const rn_job_t *job, void *out)
{
    FILE *f = out;
    static const char *const edge_names[] = {"forward", "rebalance", "keyed"};

    fprintf(f, "job %s: %d components, default parallelism %d, %d key groups, state %s\n",
            job->name, job->nnodes, job->parallelism, job->max_parallelism, job->state_backend);
    for (int i = 0; i < job->nnodes; i++) {
        const rn_node_t *node = &job->nodes[job->topo[i]];
        fprintf(f, "  %s %s (%s) x%d%s%s\n", section_singular[node->section], node->name,
                node->cls->type, node->parallelism, node->keyed ? " keyed" : "",
                node->section == RN_SOURCE ? (node->bounded ? " bounded" : " unbounded") : "");
        for (int k = 0; k < node->ninputs; k++) {
            const rn_input_t *in = &node->inputs[k];
            const rn_node_t *up = &job->nodes[in->node];
            fprintf(f, "    <- %s%s%s (%s%s)\n", up->name, up->ports[in->port].name ? "." : "",
                    up->ports[in->port].name ? up->ports[in->port].name : "",
                    edge_names[in->edge], in->chained ? ", chained" : "");
        }
        for (int p = 0; p < node->nports; p++) {
            char buf[512];
            rn__schema_format(node->ports[p].schema, buf, sizeof(buf));
            fprintf(f, "    %s%s: {%s}\n", node->ports[p].name ? "side output " : "output",
                    node->ports[p].name ? node->ports[p].name : "", buf);
        }
    }
}
