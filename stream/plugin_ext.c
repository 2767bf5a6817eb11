/*
 * stream/plugin_ext.c: the registry of plugin functions, formats, sources
 * and sinks (stream/plugin_ext.h), and the job file's `plugins:` loader.
 *
 * A library's init registers into its rn_plugin_t: a pending list, checked
 * entry by entry as it comes (ABI, table size, name, required members).
 * Only after init succeeded and no pending name clashes with a built-in or
 * with what another library registered is the list moved into the
 * registry, so that a refused library leaves nothing behind. The program
 * itself (p == NULL) registers straight into the registry; the same table
 * again is a no-op, as rn_process_fn_register's.
 *
 * @thread any: one lock around the registry. It is not held while a
 * library's init runs (init may register for the program too).
 */
#include "stream/plugin_ext.h"
#include "stream/plugin_int.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>

struct rn__ext {
    rn_ext_kind_t kind;
    const void *orig; /* the table registered (identity for the program's) */
    char *origin;     /* the library's path or "this program"; owned */
    union {
        rn_scalar_fn_t scalar;
        rn_aggregate_fn_t aggregate;
        rn_format_fn_t format;
        rn_source_fn_t source;
        rn_sink_fn_t sink;
    } t;
    rn__ext_t *next;
};

/* Loaded by rn__plugin_load_global: realpaths, never unloaded. */
typedef struct loaded {
    char *path;
    struct loaded *next;
} loaded_t;

static pthread_mutex_t ext_lock = PTHREAD_MUTEX_INITIALIZER;
static rn__ext_t *registry; /* guarded by ext_lock; entries never freed */
static loaded_t *libs;      /* guarded by ext_lock */

_Static_assert(sizeof(rn_val_t) == 16, "rn_val_t has the layout of a record's field");

static const char *const kind_names[RN_EXT_NKINDS] = {
    "scalar function", "aggregate function", "format", "source", "sink",
};

const char *
rn__ext_kind_name(rn_ext_kind_t kind)
{
    return kind_names[kind];
}

static const char *
ext_name(const rn__ext_t *x)
{
    /* name is the second member of every table. */
    switch (x->kind) {
    case RN_EXT_SCALAR: return x->t.scalar.name;
    case RN_EXT_AGGREGATE: return x->t.aggregate.name;
    case RN_EXT_FORMAT: return x->t.format.name;
    case RN_EXT_SOURCE: return x->t.source.name;
    default: return x->t.sink.name;
    }
}

void
rn__ext_list_free(rn__ext_t *list)
{
    while (list != NULL) {
        rn__ext_t *next = list->next;
        rn_free(list->origin);
        rn_free(list);
        list = next;
    }
}

/* ---- checks ---- */

/* The smallest table of each kind accepted: up to its last required
 * member, which every ABI has. */
static size_t
min_size(rn_ext_kind_t kind)
{
    switch (kind) {
    case RN_EXT_SCALAR: return offsetof(rn_scalar_fn_t, eval) + sizeof(void (*)(void));
    case RN_EXT_AGGREGATE: return offsetof(rn_aggregate_fn_t, result) + sizeof(void (*)(void));
    case RN_EXT_FORMAT: return offsetof(rn_format_fn_t, encode) + sizeof(void (*)(void));
    case RN_EXT_SOURCE: return offsetof(rn_source_fn_t, poll) + sizeof(void (*)(void));
    default: return offsetof(rn_sink_fn_t, write) + sizeof(void (*)(void));
    }
}

static size_t
full_size(rn_ext_kind_t kind)
{
    static const size_t sizes[RN_EXT_NKINDS] = {
        sizeof(rn_scalar_fn_t), sizeof(rn_aggregate_fn_t), sizeof(rn_format_fn_t),
        sizeof(rn_source_fn_t), sizeof(rn_sink_fn_t),
    };
    return sizes[kind];
}

/* Names are identifiers, so that expressions, `aggregates:`, `format:`
 * and `type:` can all spell them. */
static bool
valid_name(const char *s)
{
    if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; s[i]; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return strlen(s) <= 64;
}

static bool
builtin(rn_ext_kind_t kind, const char *name)
{
    switch (kind) {
    case RN_EXT_SCALAR: return rn__expr_fn_builtin(name);
    case RN_EXT_AGGREGATE: return rn__agg_fn_builtin(name);
    case RN_EXT_FORMAT: return rn__format_builtin(name);
    case RN_EXT_SOURCE: return rn__opclass_find(RN_SOURCE, name) != NULL;
    default: return rn__opclass_find(RN_SINK, name) != NULL;
    }
}

/* Checks the members a kind requires. @returns the missing one's name. */
static const char *
missing_member(const rn__ext_t *x)
{
    switch (x->kind) {
    case RN_EXT_SCALAR:
        if (x->t.scalar.plan == NULL)
            return "plan";
        if (x->t.scalar.eval == NULL)
            return "eval";
        return NULL;
    case RN_EXT_AGGREGATE:
        if (x->t.aggregate.plan == NULL)
            return "plan";
        if (x->t.aggregate.add == NULL)
            return "add";
        if (x->t.aggregate.result == NULL)
            return "result";
        return NULL;
    case RN_EXT_FORMAT:
        return x->t.format.decode == NULL && x->t.format.encode == NULL ? "decode or encode"
                                                                        : NULL;
    case RN_EXT_SOURCE:
        if (x->t.source.plan == NULL)
            return "plan";
        return x->t.source.poll == NULL ? "poll" : NULL;
    default: return x->t.sink.write == NULL ? "write" : NULL;
    }
}

static rn__ext_t *
find_locked(const rn__ext_t *list, rn_ext_kind_t kind, const char *name, size_t len)
{
    for (const rn__ext_t *x = list; x != NULL; x = x->next)
        if (x->kind == kind && strncmp(ext_name(x), name, len) == 0 && ext_name(x)[len] == '\0')
            return (rn__ext_t *)x;
    return NULL;
}

/* Makes the checked copy of a table. @returns it, or NULL with err set. */
static rn__ext_t *
ext_new(const char *origin, int abi, rn_ext_kind_t kind, const void *table, rn_error_t *err)
{
    const char *what = kind_names[kind];
    if (table == NULL) {
        rn__errf(err, RN_EINVAL, "%s: registering a %s without a table", origin, what);
        return NULL;
    }
    if (abi != RN_ABI_VERSION) {
        rn__errf(err, RN_EABI,
                 "%s was built against runnel ABI %d, this runnel has ABI %d: rebuild it "
                 "against this runnel's headers",
                 origin, abi, RN_ABI_VERSION);
        return NULL;
    }
    size_t size = *(const size_t *)table; /* size is the first member of every table */
    if (size < min_size(kind)) {
        rn__errf(err, RN_EABI,
                 "%s: a %s's table has %zu bytes, fewer than any runnel's: is .size set to "
                 "its sizeof?",
                 origin, what, size);
        return NULL;
    }
    rn__ext_t *x = rn_xcalloc(1, sizeof(*x));
    x->kind = kind;
    x->orig = table;
    /* A plugin built with an older header has a shorter table: the members
     * added since are absent, that is zero. */
    memcpy(&x->t, table, size < full_size(kind) ? size : full_size(kind));
    *(size_t *)&x->t = full_size(kind);
    const char *name = ext_name(x), *missing;
    if (!valid_name(name))
        rn__errf(err, RN_EINVAL, "%s: a %s's name must be an identifier ([A-Za-z_][A-Za-z0-9_]*, "
                 "at most 64 bytes), not '%s'", origin, what, name ? name : "(null)");
    else if (builtin(kind, name))
        rn__errf(err, RN_EINVAL, "%s: '%s' is runnel's own %s: a plugin cannot replace it",
                 origin, name, what);
    else if ((missing = missing_member(x)) != NULL)
        rn__errf(err, RN_EINVAL, "%s: %s '%s' has no %s", origin, what, name, missing);
    else if (kind == RN_EXT_SCALAR &&
             (x->t.scalar.min_args < 0 ||
              (x->t.scalar.max_args != -1 && x->t.scalar.max_args < x->t.scalar.min_args)))
        rn__errf(err, RN_EINVAL, "%s: scalar function '%s' has min_args %d, max_args %d", origin,
                 name, x->t.scalar.min_args, x->t.scalar.max_args);
    else {
        x->origin = rn_xstrdup(origin);
        return x;
    }
    rn_free(x);
    return NULL;
}

static int
reg(rn_plugin_t *p, int abi, rn_ext_kind_t kind, const void *table, rn_error_t *err)
{
    rn__ext_t *x = ext_new(p ? p->path : "this program", abi, kind, table, err);
    if (x == NULL)
        return err ? err->code : RN_EINVAL;
    const char *name = ext_name(x);
    if (p != NULL) {
        if (find_locked(p->ext, kind, name, strlen(name)) != NULL) {
            rn__errf(err, RN_EINVAL, "%s: %s '%s' registered twice", p->path, kind_names[kind],
                     name);
            rn__ext_list_free(x);
            return RN_EINVAL;
        }
        x->next = p->ext;
        p->ext = x;
        return RN_OK;
    }
    pthread_mutex_lock(&ext_lock);
    int rc = RN_OK;
    rn__ext_t *had = find_locked(registry, kind, name, strlen(name));
    if (had == NULL) {
        x->next = registry;
        registry = x;
        x = NULL;
    } else if (had->orig != table) {
        rc = rn__errf(err, RN_EINVAL, "%s '%s' is already registered by %s", kind_names[kind],
                      name, had->origin);
    }
    pthread_mutex_unlock(&ext_lock);
    rn__ext_list_free(x);
    return rc;
}

int
rn_plugin_register_scalar(rn_plugin_t *p, int abi, const rn_scalar_fn_t *fn, rn_error_t *err)
{
    return reg(p, abi, RN_EXT_SCALAR, fn, err);
}

int
rn_plugin_register_aggregate(rn_plugin_t *p, int abi, const rn_aggregate_fn_t *fn,
                             rn_error_t *err)
{
    return reg(p, abi, RN_EXT_AGGREGATE, fn, err);
}

int
rn_plugin_register_format(rn_plugin_t *p, int abi, const rn_format_fn_t *fn, rn_error_t *err)
{
    return reg(p, abi, RN_EXT_FORMAT, fn, err);
}

int
rn_plugin_register_source(rn_plugin_t *p, int abi, const rn_source_fn_t *fn, rn_error_t *err)
{
    return reg(p, abi, RN_EXT_SOURCE, fn, err);
}

int
rn_plugin_register_sink(rn_plugin_t *p, int abi, const rn_sink_fn_t *fn, rn_error_t *err)
{
    return reg(p, abi, RN_EXT_SINK, fn, err);
}

/* ---- loading a job's `plugins:` ---- */

static bool
loaded_locked(const char *resolved)
{
    for (const loaded_t *l = libs; l != NULL; l = l->next)
        if (strcmp(l->path, resolved) == 0)
            return true;
    return false;
}

rn_code_t
rn__plugin_load_global(const char *path, rn_error_t *err)
{
    char resolved[PATH_MAX];
    if (realpath(path, resolved) != NULL) {
        pthread_mutex_lock(&ext_lock);
        bool had = loaded_locked(resolved);
        pthread_mutex_unlock(&ext_lock);
        if (had)
            return RN_OK;
    }
    rn_plugin_t r;
    void *h = rn__plugin_open(path, resolved, &r, err);
    if (h == NULL)
        return err ? err->code : RN_EINVAL;

    rn_code_t rc = RN_OK;
    bool committed = false;
    pthread_mutex_lock(&ext_lock);
    if (loaded_locked(resolved)) {
        /* Another thread loaded it meanwhile: dlopen counted us twice. */
        pthread_mutex_unlock(&ext_lock);
        rn__plugin_reg_fini(&r);
        dlclose(h);
        return RN_OK;
    }
    for (const rn__ext_t *x = r.ext; x != NULL && rc == RN_OK; x = x->next) {
        const rn__ext_t *had = find_locked(registry, x->kind, ext_name(x), strlen(ext_name(x)));
        if (had != NULL)
            rc = rn__errf(err, RN_EINVAL, "plugin library %s: %s '%s' is already registered by %s",
                          path, kind_names[x->kind], ext_name(x), had->origin);
    }
    if (rc == RN_OK) {
        while (r.ext != NULL) {
            rn__ext_t *x = r.ext;
            r.ext = x->next;
            x->next = registry;
            registry = x;
        }
        loaded_t *l = rn_xcalloc(1, sizeof(*l));
        l->path = rn_xstrdup(resolved);
        l->next = libs;
        libs = l;
        committed = true;
    }
    pthread_mutex_unlock(&ext_lock);
    /* Its operators join the program's (`type: plugin` without library:). */
    for (size_t i = 0; i < r.n && rc == RN_OK; i++) {
        rn_error_t e = RN_ERROR_INIT;
        if (rn_process_fn_register(&r.fns[i], &e) != RN_OK)
            rc = rn__errf(err, e.code, "plugin library %s: %s", path, e.msg);
    }
    rn__plugin_reg_fini(&r);
    if (!committed)
        dlclose(h);
    /* Loaded: the handle stays open for the process's life (the registry
     * points into the library). */
    return rc;
}

/* ---- lookups ---- */

static const void *
lookup(rn_ext_kind_t kind, const char *name, size_t len)
{
    pthread_mutex_lock(&ext_lock);
    const rn__ext_t *x = find_locked(registry, kind, name, len);
    pthread_mutex_unlock(&ext_lock);
    return x ? (const void *)&x->t : NULL;
}

const rn_scalar_fn_t *
rn__ext_scalar(const char *name, size_t len)
{
    return lookup(RN_EXT_SCALAR, name, len);
}

const rn_aggregate_fn_t *
rn__ext_aggregate(const char *name, size_t len)
{
    return lookup(RN_EXT_AGGREGATE, name, len);
}

const rn_format_fn_t *
rn__ext_format(const char *name)
{
    return lookup(RN_EXT_FORMAT, name, strlen(name));
}

const rn_source_fn_t *
rn__ext_source(const char *name)
{
    return lookup(RN_EXT_SOURCE, name, strlen(name));
}

const rn_sink_fn_t *
rn__ext_sink(const char *name)
{
    return lookup(RN_EXT_SINK, name, strlen(name));
}

void
rn__ext_names(rn_ext_kind_t kind, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    pthread_mutex_lock(&ext_lock);
    for (const rn__ext_t *x = registry; x != NULL && o < size; x = x->next)
        if (x->kind == kind)
            o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? ", " : "", ext_name(x));
    pthread_mutex_unlock(&ext_lock);
}

size_t
rn__ext_names_split(const char *list, char *split, size_t size, const char **out, size_t max)
{
    size_t n = 0;
    if (size == 0)
        return 0;
    snprintf(split, size, "%s", list);
    for (char *s = split; *s != '\0' && n < max;) {
        out[n++] = s;
        char *comma = strstr(s, ", ");
        if (comma == NULL)
            break;
        *comma = '\0';
        s = comma + 2;
    }
    return n;
}
