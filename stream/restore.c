/*
 * stream/restore.c: an operator instance's share of the checkpoint or
 * savepoint being restored (docs/checkpoints.md).
 *
 * Same parallelism as the snapshot: the instance takes its own part (its
 * JSON and file in open(), its state's snapshot directory, its
 * watermark). Another parallelism (savepoints only): a keyed instance
 * imports the key groups it now owns from every old instance that had
 * some; any other instance is given the parts of all old instances
 * (rn__op_restored_all) and redistributes them itself, or refuses.
 * Watermarks: the least of the old instances it takes from, so that what
 * was late stays late (Flink restarts without one).
 *
 * @thread control (building the job).
 */
#include "stream/job_int.h"

static rn_code_t
rescale(rn_job_t *job, rn_op_t *op, rn_state_options_t *so, const char **imports,
        rn_error_t *err)
{
    rn_restore_t *r = job->restore;
    rn_node_t *node = op->node;
    int64_t wm = RN_TS_MAX;
    bool all_finished = true;
    uint32_t first = 0, last = 0;
    int n = 0;
    op->restored_all = json_array();
    if (node->keyed)
        rn__key_group_range((uint32_t)op->instance, (uint32_t)job->max_parallelism,
                            (uint32_t)node->parallelism, &first, &last);
    for (int k = 0; k < r->nparts; k++) {
        const rn_ckpt_part_t *p = &r->parts[k];
        if (strcmp(p->node, node->name) != 0)
            continue;
        bool overlaps = p->kg_first <= last && p->kg_last >= first;
        if (!node->keyed || overlaps) {
            if (p->wm < wm)
                wm = p->wm;
            all_finished = all_finished && p->finished;
        }
        if (!node->keyed) {
            json_array_append_new(op->restored_all,
                                  json_pack("{s:i, s:O, s:s?}", "instance", p->instance, "data",
                                            p->data != NULL ? p->data : json_null(), "file",
                                            p->file));
            continue;
        }
        if (!overlaps || p->state == NULL || p->finished)
            continue;
        if (n == RN_RESTORE_IMPORTS_MAX)
            return rn__errf(err, RN_EINVAL, "'%s': more than %d old instances to rescale from",
                            node->name, RN_RESTORE_IMPORTS_MAX);
        imports[n++] = p->state;
    }
    op->wm = wm == RN_TS_MAX ? RN_TS_MIN : wm;
    op->restored_finished = all_finished && node->section == RN_SOURCE;
    if (node->keyed) {
        so->import_dirs = imports;
        so->nimport = n;
        so->kg_first = first;
        so->kg_last = last;
        RN_LOG_INFO(node->name, "instance %d takes key groups %u-%u from %d old instances",
                    op->instance, first, last, n);
    }
    return RN_OK;
}

rn_code_t
rn__op_restore_setup(rn_job_t *job, rn_op_t *op, rn_state_options_t *so, const char **imports,
                     rn_error_t *err)
{
    rn_node_t *node = op->node;
    int oldp = rn__restore_parallelism(job->restore, node->name);
    if (oldp != 0 && oldp != node->parallelism)
        return rescale(job, op, so, imports, err);
    op->restored = rn__restore_part(job->restore, node->name, op->instance);
    if (op->restored == NULL)
        return RN_OK;
    op->wm = op->restored->wm;
    op->restored_finished = op->restored->finished && node->section == RN_SOURCE;
    if (!op->restored->finished)
        so->restore_dir = op->restored->state;
    return RN_OK;
}
