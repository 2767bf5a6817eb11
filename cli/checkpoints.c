/*
 * cli/checkpoints.c: `runnel checkpoints DIR [--verify]`: the completed
 * checkpoints (and savepoints) under DIR with their size, time and status,
 * newest first. Status is the metadata's (either copy must check out);
 * --verify also checks both copies of the metadata, the size and
 * XXH3-128 of every file they name, and parses the state files that
 * restore parses, as restore does (rn__ckpt_verify_deep); it exits 2 when
 * anything listed is damaged (so also when no checkpoint is intact).
 * Checkpoints being written (.inprogress) are listed as such.
 */
#include "cli/commands.h"

#include "checkpoint/ckpt.h"
#include "checkpoint/meta.h"
#include "stream/fs.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
human(uint64_t n, char *out, size_t size)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, size, i == 0 ? "%.0f %s" : "%.1f %s", v, u[i]);
}

static void
when(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Damaged entries seen (with --verify: any check failed). */
static int ndamaged;

/* Prints one line for the checkpoint or savepoint whose metadata is in
 * dir (root: what its file paths are relative to). */
static void
show(const char *label, const char *dir, const char *root, const json_t *meta, bool verify)
{
    char size[32], t[32];
    human((uint64_t)json_integer_value(json_object_get(meta, "size")), size, sizeof(size));
    when(json_integer_value(json_object_get(meta, "time_ms")), t, sizeof(t));
    const char *status = "ok";
    rn_error_t err = RN_ERROR_INIT;
    if (verify) {
        status = "ok (verified)";
        if (rn__ckpt_meta_verify_copies(dir, RN_CKPT_META_MAX, &err) != RN_OK ||
            rn__ckpt_verify_deep(root, meta, &err) != RN_OK) {
            status = err.msg;
            ndamaged++;
        }
    }
    printf("%-22s %-9s %10s  %s  %s\n", label,
           json_string_value(json_object_get(meta, "kind")) ? "savepoint" : "checkpoint", size,
           t, status);
}

/* A directory with metadata that does not check out. */
static bool
show_damaged(const char *label, const char *dir, const char *kind, const rn_error_t *err)
{
    char p1[4096 + 32], p2[4096 + 32];
    snprintf(p1, sizeof(p1), "%s/%s", dir, RN_CKPT_META);
    snprintf(p2, sizeof(p2), "%s/%s", dir, RN_CKPT_META_COPY);
    if (access(p1, F_OK) != 0 && access(p2, F_OK) != 0 && strcmp(kind, "savepoint") == 0)
        return false; /* not a savepoint at all */
    printf("%-22s %-9s %10s  %-20s  damaged: %s\n", label, kind, "-", "-", err->msg);
    ndamaged++;
    return true;
}

/* Lists the savepoints in the subdirectories of dir (prefix: how to name
 * them). @returns how many. */
static int
savepoints_in(const char *dir, const char *prefix, bool verify)
{
    int shown = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strncmp(de->d_name, "chk-", 4) == 0 ||
            strcmp(de->d_name, "shared") == 0)
            continue;
        char sp[4096 + 256], label[600];
        snprintf(sp, sizeof(sp), "%s/%s", dir, de->d_name);
        snprintf(label, sizeof(label), "%s%s", prefix, de->d_name);
        rn_error_t err = RN_ERROR_INIT;
        json_t *meta = rn__savepoint_read_meta(sp, &err);
        if (meta != NULL) {
            show(label, sp, sp, meta, verify);
            json_decref(meta);
            shown++;
        } else if (err.code != RN_EINVAL && show_damaged(label, sp, "savepoint", &err)) {
            shown++;
        }
    }
    if (d != NULL)
        closedir(d);
    return shown;
}

int
rn_cmd_checkpoints(const char *dir, bool verify)
{
    int64_t *ids = NULL;
    size_t n = 0;
    int64_t max_seen = 0;
    rn_error_t err = RN_ERROR_INIT;
    if (rn__ckpt_list(dir, &ids, &n, &max_seen, &err) != RN_OK) {
        fprintf(stderr, "runnel: %s\n", err.msg);
        return 1;
    }
    printf("%-22s %-9s %10s  %-20s  %s\n", "NAME", "KIND", "SIZE", "TIME", "STATUS");
    int shown = 0;
    /* Being written: chk-N.inprogress. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "chk-", 4) == 0 && strstr(de->d_name, ".inprogress")) {
            printf("%-22s %-9s %10s  %-20s  %s\n", de->d_name, "checkpoint", "-", "-",
                   "in progress, or left by a crash (not a checkpoint)");
            shown++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char name[64];
        rn__ckpt_name(ids[i], name, sizeof(name));
        json_t *meta = rn__ckpt_read_meta(dir, ids[i], &err);
        char cdir[4096 + 64];
        snprintf(cdir, sizeof(cdir), "%s/%s", dir, name);
        if (meta == NULL) {
            show_damaged(name, cdir, "checkpoint", &err);
        } else {
            show(name, cdir, dir, meta, verify);
            json_decref(meta);
        }
        shown++;
    }
    rn_free(ids);
    if (d != NULL)
        closedir(d);
    /* Savepoints: subdirectories whose metadata says so, and those in
     * savepoints/ (the default root under a checkpoints directory). */
    shown += savepoints_in(dir, "", verify);
    char sub[4096 + 16];
    snprintf(sub, sizeof(sub), "%s/savepoints", dir);
    shown += savepoints_in(sub, "savepoints/", verify);
    /* DIR itself may be a savepoint. */
    json_t *meta = rn__savepoint_read_meta(dir, NULL);
    if (meta != NULL) {
        show(".", dir, dir, meta, verify);
        json_decref(meta);
        shown++;
    }
    if (shown == 0)
        printf("(no checkpoints or savepoints in %s)\n", dir);
    if (verify && ndamaged > 0) {
        fprintf(stderr, "runnel: %d damaged in %s\n", ndamaged, dir);
        return 2;
    }
    return 0;
}
