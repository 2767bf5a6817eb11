/*
 * cli/checkpoints.c: `runnel checkpoints DIR [--verify]`: the completed
 * checkpoints (and savepoints) under DIR with their size, time and status,
 * newest first. Status is the metadata's (either copy must check out);
 * --verify also checks the size and XXH3-128 of every file they name, and
 * parses the state files that restore parses, as restore does
 * (rn__ckpt_verify_deep).
 * Checkpoints being written (.inprogress) are listed as such.
 */
#include "cli/commands.h"

#include "checkpoint/ckpt.h"
#include "stream/fs.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* Prints one line for the checkpoint or savepoint whose metadata is in
 * dir (root: what its file paths are relative to). */
static void
show(const char *label, const char *root, const json_t *meta, bool verify)
{
    char size[32], t[32];
    human((uint64_t)json_integer_value(json_object_get(meta, "size")), size, sizeof(size));
    when(json_integer_value(json_object_get(meta, "time_ms")), t, sizeof(t));
    const char *status = "ok";
    rn_error_t err = RN_ERROR_INIT;
    if (verify)
        status = rn__ckpt_verify_deep(root, meta, &err) == RN_OK ? "ok (verified)" : err.msg;
    printf("%-22s %-9s %10s  %s  %s\n", label,
           json_string_value(json_object_get(meta, "kind")) ? "savepoint" : "checkpoint", size,
           t, status);
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
        json_t *meta = rn__savepoint_read_meta(sp, NULL);
        if (meta != NULL) {
            show(label, sp, meta, verify);
            json_decref(meta);
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
        if (meta == NULL) {
            printf("%-22s %-9s %10s  %-20s  damaged: %s\n", name, "checkpoint", "-", "-",
                   err.msg);
        } else {
            show(name, dir, meta, verify);
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
        show(".", dir, meta, verify);
        json_decref(meta);
        shown++;
    }
    if (shown == 0)
        printf("(no checkpoints or savepoints in %s)\n", dir);
    return 0;
}
