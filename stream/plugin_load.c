/*
 * stream/plugin_load.c: loading a plugin library and finding its operators
 * (include/runnel/plugin.h, docs/plugins.md).
 *
 * A library is checked before dlopen() runs any of its code (constructors
 * run at load): a regular file, owned by the user that runs the job or by
 * root, writable by nobody else, in a directory nobody else can write
 * either (otherwise the file could be swapped for another between the
 * check and the load). Then RTLD_NOW | RTLD_LOCAL: every undefined symbol
 * is resolved at once, so a library built against a newer runnel fails
 * here with dlerror()'s message instead of crashing at its first call,
 * and its symbols stay out of the global namespace. Its init function
 * registers operators into an rn_plugin_t of this load; each registration
 * is checked for the ABI it was built with.
 *
 * dlopen() counts references: a library named by several components is
 * loaded once and unloaded with the last of them.
 *
 * @thread control (plan time).
 */
#include "stream/plugin_int.h"
#include "stream/plugin_ext.h"

#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The smallest table accepted: up to process(), which every ABI has. */
#define FN_MIN_SIZE (offsetof(rn_process_fn_t, process) + sizeof(void (*)(void)))

int
rn_plugin_register(rn_plugin_t *p, int abi, const rn_process_fn_t *fn, rn_error_t *err)
{
    if (p == NULL || fn == NULL)
        return rn__errf(err, RN_EINVAL, "rn_plugin_register: no plugin or no function");
    if (abi != RN_ABI_VERSION)
        return rn__errf(err, RN_EABI,
                        "%s was built against runnel ABI %d, this runnel has ABI %d: rebuild it "
                        "against this runnel's headers",
                        p->path, abi, RN_ABI_VERSION);
    if (fn->size < FN_MIN_SIZE)
        return rn__errf(err, RN_EABI, "%s: an operator's function table has %zu bytes, fewer "
                        "than any runnel's: is .size set to sizeof(rn_process_fn_t)?",
                        p->path, fn->size);
    if (fn->name == NULL || fn->name[0] == '\0')
        return rn__errf(err, RN_EINVAL, "%s: an operator without a name", p->path);
    if (fn->process == NULL)
        return rn__errf(err, RN_EINVAL, "%s: operator '%s' has no process function", p->path,
                        fn->name);
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->fns[i].name, fn->name) == 0)
            return rn__errf(err, RN_EINVAL, "%s: operator '%s' registered twice", p->path,
                            fn->name);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        rn_process_fn_t *v = rn_realloc(p->fns, cap * sizeof(*v));
        if (v == NULL)
            return rn__errf(err, RN_ENOMEM, "out of memory");
        p->fns = v;
        p->cap = cap;
    }
    /* A plugin built with an older header has a shorter table: the
     * members added since are absent, that is NULL. */
    rn_process_fn_t *c = &p->fns[p->n++];
    memset(c, 0, sizeof(*c));
    memcpy(c, fn, fn->size < sizeof(*c) ? fn->size : sizeof(*c));
    c->size = sizeof(*c);
    return RN_OK;
}

/* Whether st may hold code this process runs: ours or root's, and nobody
 * else may write it. */
static bool
trusted(const struct stat *st)
{
    return (st->st_uid == geteuid() || st->st_uid == 0) && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* Checks path before it is loaded. @returns RN_OK or RN_EINVAL with why. */
static rn_code_t
check_file(const char *path, rn_error_t *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return rn__errf(err, RN_EINVAL, "plugin library %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return rn__errf(err, RN_EINVAL, "plugin library %s is not a regular file", path);
    if (!trusted(&st))
        return rn__errf(err, RN_EINVAL,
                        "plugin library %s is writable by others than its owner, or owned by "
                        "another user: a plugin runs with the job's rights, so runnel loads only "
                        "libraries that the user running the job (or root) owns and alone can "
                        "write (chmod go-w)",
                        path);
    char *copy = rn_xstrdup(path);
    const char *dir = dirname(copy);
    rn_code_t rc = RN_OK;
    if (stat(dir, &st) != 0)
        rc = rn__errf(err, RN_EINVAL, "plugin library %s: its directory: %s", path, strerror(errno));
    else if (!trusted(&st) && !(st.st_mode & S_ISVTX))
        rc = rn__errf(err, RN_EINVAL,
                      "plugin library %s is in %s, which others than its owner can write (the "
                      "library could be replaced): move it, or chmod go-w the directory",
                      path, dir);
    rn_free(copy);
    return rc;
}

void
rn__plugin_unload(rn__plugin_lib_t *lib)
{
    if (lib == NULL)
        return;
    if (lib->handle != NULL)
        dlclose(lib->handle);
    rn_free(lib);
}

void
rn__plugin_reg_fini(rn_plugin_t *reg)
{
    rn_free(reg->fns);
    rn__ext_list_free(reg->ext);
    reg->fns = NULL;
    reg->ext = NULL;
    reg->n = reg->cap = 0;
}

void *
rn__plugin_open(const char *path, char resolved[PATH_MAX], rn_plugin_t *reg, rn_error_t *err)
{
    /* The file itself, through any symlinks, and its own directory are
     * what must be safe (a symlink in a safe directory may point into an
     * unsafe one); loading the resolved path also keeps dlopen from
     * searching the library path for a name without a slash. */
    if (realpath(path, resolved) == NULL) {
        rn__errf(err, RN_EINVAL, "plugin library %s: %s", path, strerror(errno));
        return NULL;
    }
    if (check_file(resolved, err) != RN_OK)
        return NULL;
    dlerror();
    void *h = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        rn__errf(err, RN_EINVAL, "plugin library %s cannot be loaded: %s", path,
                 why ? why : "unknown error");
        return NULL;
    }
    void *sym = dlsym(h, RN_PLUGIN_INIT_SYMBOL);
    if (sym == NULL) {
        rn__errf(err, RN_EINVAL,
                 "plugin library %s has no function %s: a plugin exports "
                 "int " RN_PLUGIN_INIT_SYMBOL "(rn_plugin_t *, rn_error_t *) (runnel/plugin.h)",
                 path, RN_PLUGIN_INIT_SYMBOL);
        dlclose(h);
        return NULL;
    }
    rn_plugin_init_fn init;
    memcpy(&init, &sym, sizeof(init)); /* object to function pointer, as POSIX allows */
    memset(reg, 0, sizeof(*reg));
    reg->path = path;
    rn_error_t e = RN_ERROR_INIT;
    int irc = init(reg, &e);
    if (irc != RN_OK) {
        if (e.msg[0] == '\0')
            rn__errf(&e, irc, "%s failed (%d)", RN_PLUGIN_INIT_SYMBOL, irc);
        rn__errf(err, irc < 0 ? (rn_code_t)irc : RN_EINVAL, "plugin library %s: %s", path, e.msg);
        rn__plugin_reg_fini(reg);
        dlclose(h);
        return NULL;
    }
    return h;
}

rn__plugin_lib_t *
rn__plugin_load(const char *path, const char *name, rn_error_t *err)
{
    char resolved[PATH_MAX];
    rn_plugin_t reg;
    void *h = rn__plugin_open(path, resolved, &reg, err);
    if (h == NULL)
        return NULL;
    rn__plugin_lib_t *lib = rn_xcalloc(1, sizeof(*lib));
    lib->handle = h;
    bool found = false;
    for (size_t i = 0; i < reg.n; i++)
        if (strcmp(reg.fns[i].name, name) == 0) {
            lib->fn = reg.fns[i];
            found = true;
        }
    if (!found) {
        char names[256] = "";
        size_t o = 0;
        for (size_t i = 0; i < reg.n && o < sizeof(names); i++)
            o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? ", " : "",
                                  reg.fns[i].name);
        rn__errf(err, RN_EINVAL, "plugin library %s has no operator '%s' (it registers: %s)", path,
                 name, reg.n ? names : "none");
        rn__plugin_reg_fini(&reg);
        rn__plugin_unload(lib);
        return NULL;
    }
    /* Functions, formats, sources and sinks of a library named by an
     * operator's `library:` are not registered: those come from the job's
     * `plugins:` list (rn__plugin_load_global). */
    rn__plugin_reg_fini(&reg);
    return lib;
}

/* ---- process functions registered by the program itself ---- */

static pthread_mutex_t fn_lock = PTHREAD_MUTEX_INITIALIZER;
static rn_plugin_t program = {.path = "this program"};

int
rn_process_fn_register(const rn_process_fn_t *fn, rn_error_t *err)
{
    pthread_mutex_lock(&fn_lock);
    int rc = RN_OK;
    bool known = false;
    for (size_t i = 0; fn != NULL && fn->size >= FN_MIN_SIZE && fn->name != NULL && i < program.n;
         i++)
        if (strcmp(program.fns[i].name, fn->name) == 0) {
            /* Again the same table: once is enough; another one under
             * the same name is a mistake. Compared member by member (the
             * registry holds a copy). */
            rn_process_fn_t c;
            memset(&c, 0, sizeof(c));
            memcpy(&c, fn, fn->size < sizeof(c) ? fn->size : sizeof(c));
            known = true;
            if (c.plan != program.fns[i].plan || c.open != program.fns[i].open ||
                c.process != program.fns[i].process || c.finish != program.fns[i].finish ||
                c.close != program.fns[i].close || c.on_timer != program.fns[i].on_timer)
                rc = rn__errf(err, RN_EINVAL, "another process function is registered as '%s'",
                              fn->name);
        }
    if (!known)
        rc = rn_plugin_register(&program, RN_ABI_VERSION, fn, err);
    pthread_mutex_unlock(&fn_lock);
    return rc;
}

rn__plugin_lib_t *
rn__plugin_builtin(const char *name, rn_error_t *err)
{
    rn__plugin_lib_t *lib = NULL;
    pthread_mutex_lock(&fn_lock);
    for (size_t i = 0; i < program.n; i++)
        if (strcmp(program.fns[i].name, name) == 0) {
            lib = rn_xcalloc(1, sizeof(*lib));
            lib->fn = program.fns[i];
        }
    pthread_mutex_unlock(&fn_lock);
    if (lib == NULL)
        rn__errf(err, RN_EINVAL,
                 "no process function '%s' is registered in this program "
                 "(rn_process_fn_register) or by a library of the job's `plugins:`, and no "
                 "library is given",
                 name);
    return lib;
}
