/*
 * checkpoint/ckpt.h: checkpoints of a running job (docs/checkpoints.md):
 * the coordinator (coord.c), the checkpoint store (store.c: files,
 * metadata, retention, listing) and recovery (recover.c).
 *
 * The runtime (stream/barrier.c) and the coordinator meet here:
 *
 *  - The coordinator triggers checkpoint n (rn__job_trigger): sources
 *    record their position and send barrier n in band; tasks align,
 *    snapshot their operators (each rn_ckpt_part_t: the operator's own
 *    JSON, a file a sink hands over, the staging directory of its keyed
 *    state), forward the barrier and hand the parts to rn__ckpt_ack.
 *  - The coordinator's thread does the asynchronous part: it hashes and
 *    copies the staged files into the store while records keep flowing,
 *    writes the metadata when every task has acknowledged (the commit
 *    point), then tells the tasks (rn__job_complete), which let their
 *    sinks commit.
 *
 * @thread control for new/start/stop/destroy; any for ack and request_stop.
 */
#ifndef RN_CHECKPOINT_CKPT_H
#define RN_CHECKPOINT_CKPT_H

#include "state/state.h"
#include "stream/core.h"

#include <jansson.h>

typedef struct rn_job rn_job_t;
typedef struct rn_ckpt rn_ckpt_t;

/* The job file's `checkpoints` section. */
typedef struct rn_ckpt_conf {
    int64_t interval_ms; /* 0: no checkpoints */
    char *dir;           /* owned */
    char *savepoints;    /* owned: root of savepoints (default <dir>/savepoints) */
    bool exactly_once;   /* mode: exactly-once aligns barriers */
    int retain;          /* completed checkpoints kept, >= 1 */
    int64_t timeout_ms;
    bool full;           /* incremental: false: every file copied each time */
} rn_ckpt_conf_t;

/* One operator instance's part of a checkpoint. */
typedef struct rn_ckpt_part {
    char *node;     /* owned: component name */
    int instance;
    bool finished;  /* the instance had finished (bounded input) */
    int64_t wm;     /* its watermark */
    json_t *data;   /* owned (a reference): the operator's own, or NULL */
    char *file;     /* owned path: a file to keep in the checkpoint, or NULL */
    char *state;    /* owned path: staging directory of its keyed state, or NULL */
    uint32_t kg_first, kg_last; /* keyed: its key groups; kg_last < kg_first: none */
    /* The state snapshot's asynchronous rest: run by the coordinator before
     * it stores the files (keep), or by rn__ckpt_part_fini (discarded). */
    rn_state_finish_t fin;
} rn_ckpt_part_t;

void rn__ckpt_part_fini(rn_ckpt_part_t *p);

/* ---- the coordinator (coord.c) ---- */

/* @param conf copied. @returns a coordinator for job, or NULL with err. */
rn_ckpt_t *rn__ckpt_new(rn_job_t *job, const rn_ckpt_conf_t *conf, int64_t first_id,
                        rn_error_t *err);
/* Starts the coordinator's thread. */
rn_code_t rn__ckpt_start(rn_ckpt_t *c, rn_error_t *err);
/* Stops the thread; a checkpoint in progress is aborted. */
void rn__ckpt_stop(rn_ckpt_t *c);
void rn__ckpt_destroy(rn_ckpt_t *c);
/* A task's parts of checkpoint id (consumed: parts and the array), and
 * how long it held records back for it (alignment and synchronous part). */
void rn__ckpt_ack(rn_ckpt_t *c, int64_t id, int task, rn_ckpt_part_t *parts, int nparts,
                  int64_t pause_us);
/* A task cannot take checkpoint id (its snapshot failed): the
 * checkpoint is aborted and counted, the job goes on. */
void rn__ckpt_decline(rn_ckpt_t *c, int64_t id, const rn_error_t *why);
/* Called on the coordinator's thread when a savepoint is taken (path
 * set, err NULL) or failed (path NULL). */
typedef void (*rn_ckpt_done_fn)(void *ctx, const char *path, const rn_error_t *err);
/* Takes a savepoint into dir (which must not exist; its parent must), as
 * the next checkpoint; stop: the job stops after it. One at a time.
 * @thread any. */
rn_code_t rn__ckpt_savepoint(rn_ckpt_t *c, const char *dir, bool stop, rn_ckpt_done_fn done,
                             void *ctx, rn_error_t *err);
/* Takes a final checkpoint, after which the job stops (SIGTERM). */
void rn__ckpt_request_stop(rn_ckpt_t *c);
/* Where tasks stage snapshots of checkpoint id (a directory on the state
 * directory's file system, so that RocksDB hard-links): fills out. */
void rn__ckpt_staging(const rn_ckpt_t *c, int64_t id, const char *owner, char *out, size_t size);
/* Counters, for status and tests. */
typedef struct rn_ckpt_stats {
    int64_t completed;      /* checkpoints completed by this run */
    int64_t failed;         /* aborted: timeout, declined */
    int64_t last_id;        /* the newest completed, 0: none */
    int64_t last_duration_ms;
    uint64_t last_bytes;    /* bytes the last one added to the store */
    uint64_t last_size;     /* bytes the last one refers to */
    uint64_t total_added;   /* bytes all completed ones added to the store */
    uint64_t total_size;    /* bytes they referred to, summed */
    int64_t total_duration_ms;
    /* Pauses of record processing for checkpoints (per task: alignment
     * and synchronous part), over the last 4096. */
    int64_t pause_p50_us, pause_p99_us, pause_max_us;
    int64_t npauses;
} rn_ckpt_stats_t;
void rn__ckpt_stats(rn_ckpt_t *c, rn_ckpt_stats_t *st);

/* ---- recovery (recover.c) ---- */

/* What a job restores: per operator instance, its part of the checkpoint
 * with the paths of its files made ready (verified). */
typedef struct rn_restore {
    int64_t id;          /* the checkpoint restored */
    char *path;          /* its directory, owned */
    char *staging;       /* owned: where restored state files were linked */
    int nparts;
    rn_ckpt_part_t *parts; /* state: the ready snapshot directory */
    json_t *meta;        /* the metadata, owned */
    bool savepoint;      /* from a savepoint: parallelism may differ */
    int max_parallelism; /* key groups of the snapshot */
} rn_restore_t;

/* Finds the newest completed checkpoint in conf->dir whose metadata and
 * files check out and readies it for job. Damaged ones are reported; going
 * back past one is allowed only when rewind is true (every sink can take
 * back what it made visible), else RN_ECORRUPT says what and what to do.
 * @returns RN_OK with *out (NULL when there is no checkpoint; free with
 * rn__restore_free), or an error. *next_id: the id to take next. */
/* A check of metadata against the job that resumes (its graph): RN_OK,
 * or RN_ECORRUPT saying which part and field does not fit. */
typedef rn_code_t (*rn_ckpt_check_fn)(void *ctx, const json_t *meta, rn_error_t *err);
/* check (may be NULL) is run on each candidate after its files verified:
 * one that fails is damaged like one whose files do not check out. */
rn_code_t rn__ckpt_recover(const rn_ckpt_conf_t *conf, const char *job_name, bool rewind,
                           rn_ckpt_check_fn check, void *ctx, rn_restore_t **out,
                           int64_t *next_id, rn_error_t *err);
/* Verifies the savepoint in dir (check as above) and readies it (staging
 * under staging_base). */
rn_code_t rn__savepoint_recover(const char *dir, const char *staging_base,
                                rn_ckpt_check_fn check, void *ctx, rn_restore_t **out,
                                rn_error_t *err);
/* The part of (node, instance), or NULL. */
const rn_ckpt_part_t *rn__restore_part(const rn_restore_t *r, const char *node, int instance);
/* @returns the parallelism the checkpoint had for node, 0 when absent. */
int rn__restore_parallelism(const rn_restore_t *r, const char *node);
void rn__restore_free(rn_restore_t *r);

/* ---- the store (store.c) ---- */

#define RN_CKPT_FORMAT 1
/* Metadata larger than this is refused before it is read. */
#define RN_CKPT_META_MAX (64u << 20)

/* "chk-%08lld" */
void rn__ckpt_name(int64_t id, char *out, size_t size);
/* Ids of the completed checkpoints (names chk-N without a suffix) in dir,
 * newest first; *max_seen: the highest id of any chk-N* entry. */
rn_code_t rn__ckpt_list(const char *dir, int64_t **ids, size_t *n, int64_t *max_seen,
                        rn_error_t *err);
/* Reads and parses a checkpoint's metadata (either copy), checking its
 * format. @returns the JSON (owned) or NULL with err. */
json_t *rn__ckpt_read_meta(const char *root, int64_t id, rn_error_t *err);
/* A savepoint's metadata, from its directory. NULL with err when it is
 * not a savepoint (RN_ENOTFOUND: no metadata) or damaged. */
json_t *rn__savepoint_read_meta(const char *dir, rn_error_t *err);
/* Checks every field of metadata read from file (named in messages):
 * types, bounds and consistency (meta_check.c). @returns RN_OK or
 * RN_ECORRUPT naming the file and the field. */
rn_code_t rn__ckpt_check_meta(const char *file, const json_t *meta, rn_error_t *err);
/* Checks every file the metadata names (size and XXH3-128). */
rn_code_t rn__ckpt_verify(const char *root, const json_t *meta, rn_error_t *err);
/* rn__ckpt_verify, then every state file that restore parses (handles,
 * memory tables) parsed as restore does, read-only (checkpoint/verify.c):
 * a checkpoint that passes restores. */
rn_code_t rn__ckpt_verify_deep(const char *root, const json_t *meta, rn_error_t *err);
/* Keeps the newest retain checkpoints and the shared files they (and
 * keep, a JSON array of extra paths, may be NULL) refer to. */
rn_code_t rn__ckpt_retain(const char *root, int retain, const json_t *keep, rn_error_t *err);

#endif
