/*
 * stream/plugin_load.c: loading a plugin library and finding its operators
 * (include/runnel/plugin.h, docs/plugins.md).
 *
 * A library is checked before dlopen() runs any of its code (constructors
 * run at load): every directory and symbolic link on its way from / owned
 * by root or the user and writable by nobody else unless sticky (as /tmp:
 * rn__fs_check_path), then the file opened once and checked through that
 * descriptor: a regular file, owned by the user that runs the job or by
 * root, writable by nobody else. dlopen() loads /proc/self/fd/N, that
 * very file, so nothing can be swapped in between the check and the load;
 * the descriptor stays open, since the loader knows a library by its name
 * and that name must not come back for another file. Then RTLD_NOW |
 * RTLD_LOCAL: every undefined symbol is resolved at once, so a library
 * built against a newer runnel fails here with dlerror()'s message
 * instead of crashing at its first call, and its symbols stay out of the
 * global namespace. Its init function
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
#include "stream/fs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
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

/* Files opened for dlopen, kept open for the life of the process: the
 * loader knows a library by the name it was opened under, so a name
 * /proc/self/fd/N must never be reused for another file (a closed N would
 * be). One per distinct file (device and inode): a few per process. */
typedef struct kept_fd {
    dev_t dev;
    ino_t ino;
    int fd;
    struct kept_fd *next;
} kept_fd_t;

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static kept_fd_t *kept;

/* Opens path once and checks the open file: every directory and link on
 * its way (rn__fs_check_path: nobody else can swap it), then the file
 * itself through the descriptor, so what is checked is what is loaded.
 * @param resolved set to the real path.
 * @returns a descriptor that stays open (kept), or -1 with err set. */
static int
open_checked(const char *path, char resolved[PATH_MAX], rn_error_t *err)
{
    struct stat seen, st;
    if (rn__fs_check_path(path, "plugin library", resolved, &seen, err) != RN_OK)
        return -1;
    int fd = open(resolved, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rn__errf(err, RN_EINVAL, "plugin library %s: open '%s': %s", path, resolved,
                 strerror(errno));
        return -1;
    }
    const char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (st.st_dev != seen.st_dev || st.st_ino != seen.st_ino)
        why = "it changed while it was checked";
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why != NULL) {
        rn__errf(err, RN_EINVAL, "plugin library %s: %s", path, why);
        close(fd);
        return -1;
    }
    if (!trusted(&st)) {
        rn__errf(err, RN_EINVAL,
                 "plugin library %s is writable by others than its owner, or owned by "
                 "another user: a plugin runs with the job's rights, so runnel loads only "
                 "libraries that the user running the job (or root) owns and alone can "
                 "write (chmod go-w)",
                 path);
        close(fd);
        return -1;
    }
    pthread_mutex_lock(&kept_lock);
    kept_fd_t *k = kept;
    while (k != NULL && (k->dev != st.st_dev || k->ino != st.st_ino))
        k = k->next;
    if (k == NULL) {
        k = rn_xcalloc(1, sizeof(*k));
        k->dev = st.st_dev;
        k->ino = st.st_ino;
        k->fd = fd;
        k->next = kept;
        kept = k;
    } else {
        /* The same file, kept already (it holds the inode, so the inode
         * is that file's): one name for it in the loader. */
        close(fd);
    }
    fd = k->fd;
    pthread_mutex_unlock(&kept_lock);
    return fd;
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
    /* Loaded from the descriptor that was checked, never by name again:
     * a name could point elsewhere by then, and dlopen would search the
     * library path for a name without a slash. */
    int fd = open_checked(path, resolved, err);
    if (fd < 0)
        return NULL;
    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
    dlerror();
    void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
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
