/*
 * fuzz/job_file.c: job files, as `runnel validate` reads them: the YAML
 * loader (rn_conf_load_string: syntax, anchors, positions) and then the
 * whole plan of the job (rn__job_plan: settings, components, schemas,
 * expressions, windows, edges), stopping where rn_job_new would go on to
 * recover a checkpoint and build the tasks.
 *
 * A job file names shared libraries to load (`plugins:`, an operator's
 * `library:`); loading whatever library an input names would run its code,
 * so such inputs are skipped: the plugin checks have tests of their own.
 */
#include "fuzz/fuzz_util.h"

#include "stream/job_int.h"

#include <runnel/runnel.h>
#include <string.h>

/* Whether any map of the tree has one of the keys that load a library. */
static bool
loads_code(const rn_conf_t *node)
{
    rn_conf_kind_t kind = rn_conf_kind(node);
    if (kind == RN_CONF_SCALAR)
        return false;
    for (size_t i = 0; i < rn_conf_len(node); i++) {
        if (kind == RN_CONF_MAP) {
            const char *key = rn_conf_key_at(node, i);
            if (key != NULL && (strcmp(key, "plugins") == 0 || strcmp(key, "library") == 0))
                return true;
        }
        if (loads_code(rn_conf_at(node, i)))
            return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_fuzz_quiet();
    rn_conf_t *root = rn_conf_load_string((const char *)data, size, "job.yaml", &err);
    if (root == NULL) {
        rn_fuzz_debug("the YAML", RN_EINVAL, &err);
        return 0;
    }
    if (loads_code(root)) {
        rn_conf_destroy(root);
        return 0;
    }
    rn_graph_t *g = rn_graph_from_conf(root, &err);
    if (g == NULL)
        return 0;
    /* rn_job_new's first steps: the job owns the tree, then plans it. */
    rn_job_t *job = rn_xcalloc(1, sizeof(*job));
    job->root = g->root;
    g->root = NULL;
    rn_graph_destroy(g);
    pthread_mutex_init(&job->lock, NULL);
    rn_fuzz_debug("the job's plan", rn__job_plan(job, &err), &err);
    rn_job_destroy(job);
    return 0;
}
