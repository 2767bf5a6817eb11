/*
 * fuzz/ckpt_meta.c: a checkpoint's metadata (_metadata), as a job that
 * resumes reads it: the input is written as checkpoint 5 of a small job
 * (with a valid trailer, so that what is fuzzed is what the checksum lets
 * through: the JSON and its fields), next to the files of a real
 * checkpoint of that job (fuzz/fixtures/ckpt: its window state and its
 * file sink's pending output, taken by `runnel run` and SIGTERM). The job
 * is then made (rn_job_new: recovery, verification, restore of every
 * operator) and, when it is accepted, run to its end: sources resume from
 * their positions, the sink from its length, windows from their state.
 *
 * The seed is that checkpoint's own metadata (corpus/ckpt_meta).
 */
#include "fuzz/fuzz_util.h"

#include "checkpoint/meta.h"

#include <runnel/runnel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The job the fixture's checkpoint was taken of (fuzz/fixtures/README.md),
 * without its rate limit: restored, it runs as fast as it can. */
static const char job_yaml[] =
    "name: fuzzckpt\n"
    "parallelism: 2\n"
    "workers: 1\n"
    "state: {backend: memory}\n"
    "checkpoints: {interval: 1h, dir: '%s/ckpts'}\n"
    "sources:\n"
    "  gen: {type: datagen, generator: sequence, events: 4000, keys: 5, interval: 1ms,\n"
    "        event_time: ts, watermark: {max_out_of_orderness: 10ms}}\n"
    "operators:\n"
    "  per_key: {type: window_aggregate, inputs: [gen], key: [key],\n"
    "            window: {type: tumbling, size: 100ms}, aggregates: {n: count(), total: "
    "sum(value)}}\n"
    "sinks:\n"
    "  out: {type: file, inputs: [per_key], path: '%s/out.jsonl', format: json}\n";

/* The checkpoint's files, and the sink's output as the checkpoint left it
 * (the last, written beside the checkpoints). */
#define NFILES 6
static const char *const fixture_files[NFILES] = {
    "per_key#0/mem", "per_key#0/handle", "per_key#1/mem", "per_key#1/handle", "out#0/file",
    "out.jsonl"};

static char *fixture[NFILES];
static size_t fixture_len[NFILES];

static void
load_fixture(void)
{
    for (int i = 0; i < NFILES; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/fixtures/ckpt/%s", RN_FUZZ_DIR, fixture_files[i]);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            perror(path);
            abort();
        }
        fixture[i] = malloc(1 << 16);
        fixture_len[i] = fread(fixture[i], 1, 1 << 16, f);
        fclose(f);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[4096], yaml[sizeof(job_yaml) + 2 * 4096];
    if (root[0] == '\0') {
        rn_fuzz_quiet();
        load_fixture();
        snprintf(root, sizeof(root), "%s", rn_fuzz_dir());
        snprintf(yaml, sizeof(yaml), job_yaml, root, root);
    }
    char dir[4300], path[4400];
    snprintf(dir, sizeof(dir), "%s/ckpts", root);
    rn_fuzz_rmtree(dir);
    snprintf(path, sizeof(path), "%s/out.jsonl", root);
    rn_fuzz_write(path, fixture[NFILES - 1], fixture_len[NFILES - 1]);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/ckpts/chk-00000005", root);
    mkdir(dir, 0700);
    for (int i = 0; i < NFILES - 1; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, fixture_files[i]);
        char *slash = strrchr(path, '/');
        *slash = '\0';
        mkdir(path, 0700);
        *slash = '/';
        rn_fuzz_write(path, fixture[i], fixture_len[i]);
    }
    rn_error_t err = RN_ERROR_INIT;
    if (rn__ckpt_meta_write(dir, data, size, &err) != RN_OK) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        abort();
    }

    rn_conf_t *root_conf = rn_conf_load_string(yaml, strlen(yaml), "job.yaml", &err);
    rn_graph_t *g = rn_graph_from_conf(root_conf, &err);
    rn_job_options_t opts = RN_JOB_OPTIONS_INIT;
    opts.workers = 1;
    rn_job_t *job = g != NULL ? rn_job_new(g, &opts, &err) : NULL;
    if (job != NULL)
        rn_job_run(job, &err);
    rn_fuzz_debug("the restored job", err.code, &err);
    rn_job_destroy(job);
    rn_fuzz_quiet(); /* rn_job_new reads RUNNEL_LOG */
    return 0;
}
