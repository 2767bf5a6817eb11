/*
 * bench/bench_state.c: read-modify-write of a 16-byte accumulator through
 * the keyed-state API (rn__state_set_key + rn__vstate_ref), uniform random
 * keys, one thread: operations per second per core for each backend and
 * key count, and for rocksdb the cache hit rate and the state's size on
 * disk.
 * Usage: bench_state [OPS] [MEMORY_MB] [BACKENDS] (default 5M operations
 * per run, state.memory 64 MB, "memory,rocksdb"). Each run first creates
 * every key once (not timed), then times OPS random updates.
 */
#include "bench_common.h"

#include <dirent.h>
#include <sys/stat.h>

#include "state/state.h"
#include "stream/key.h"

typedef struct acc {
    int64_t count;
    int64_t sum;
} acc_t;

/* xorshift64*: cheap, deterministic keys. */
static uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static uint64_t
dir_bytes(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (stat(p, &sb) != 0)
            continue;
        total += S_ISDIR(sb.st_mode) ? dir_bytes(p) : (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

static int
set_key(rn_state_t *st, uint64_t id)
{
    char key[24];
    int n = snprintf(key, sizeof(key), "user%llu", (unsigned long long)id);
    uint64_t h = rn__key_hash((const uint8_t *)key, (size_t)n);
    rn__state_set_key_hashed(st, key, (size_t)n, rn__key_group(h, 128), h);
    return n;
}

static int
run(const char *backend, uint64_t keys, uint64_t ops, int64_t memory, const char *dir)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_state_options_t opts = {
        .backend = backend, .dir = dir, .memory_bytes = memory, .owner = "bench#0"};
    rn_state_t *st = rn__state_new(&opts, &err);
    if (st == NULL) {
        printf("%-8s %8llu keys: cannot open: %s\n", backend, (unsigned long long)keys, err.msg);
        return 1;
    }
    rn_vstate_t *vs = rn__state_value(st, "acc", &err);
    const char ns[8] = {0}; /* a window's namespace: its end time */
    bool created;
    for (uint64_t i = 0; i < keys; i++) {
        set_key(st, i);
        acc_t *a = rn__vstate_ref(vs, ns, sizeof(ns), sizeof(acc_t), &created, &err);
        if (a == NULL)
            goto fail;
        a->count = 1;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ULL, check = 0;
    double c0 = bench_cpu(), t0 = bench_now();
    for (uint64_t i = 0; i < ops; i++) {
        uint64_t id = next_rand(&seed) % keys;
        set_key(st, id);
        acc_t *a = rn__vstate_ref(vs, ns, sizeof(ns), sizeof(acc_t), &created, &err);
        if (a == NULL)
            goto fail;
        a->count++;
        a->sum += (int64_t)id;
        check += (uint64_t)a->count;
    }
    double wall = bench_now() - t0, cpu = bench_cpu() - c0;
    rn_state_stats_t stats;
    rn__state_stats(st, &stats);
    printf("%-8s %8llu keys: %llu read-modify-writes in %.3f s wall, %.3f s CPU: %.0f ops/s per "
           "core, %llu entries, %.1f MB in memory",
           backend, (unsigned long long)keys, (unsigned long long)ops, wall, cpu,
           (double)ops / (cpu > wall ? cpu : wall), (unsigned long long)stats.entries,
           (double)stats.bytes / 1048576.0);
    if (strcmp(backend, "rocksdb") == 0 && dir != NULL)
        printf(", %.1f MB on disk", (double)dir_bytes(dir) / 1048576.0);
    printf(" (check %llu)\n", (unsigned long long)(check % 1000));
    printf("RESULT state_rmw_%s_%llu_keys_ops_per_sec_per_core=%.0f\n", backend,
           (unsigned long long)keys, (double)ops / (cpu > wall ? cpu : wall));
    rn__state_destroy(st);
    return 0;
fail:
    printf("%-8s: %s\n", backend, err.msg);
    rn__state_destroy(st);
    return 1;
}

int
main(int argc, char **argv)
{
    uint64_t ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000ULL;
    int64_t memory = (argc > 2 ? atoll(argv[2]) : 64) << 20;
    const char *which = argc > 3 ? argv[3] : "memory,rocksdb";
    const uint64_t counts[] = {1000, 1000000};
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/bench-state-%d", tmp != NULL ? tmp : "/tmp", (int)getpid());
    int rc = 0;
    bench_print_machine();
    printf("state: %lld MB, 16-byte values, uniform random keys, %llu operations per run\n",
           (long long)(memory >> 20), (unsigned long long)ops);
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        if (strstr(which, "memory") != NULL)
            rc |= run("memory", counts[c], ops, memory, NULL);
        if (strstr(which, "rocksdb") != NULL)
            rc |= run("rocksdb", counts[c], ops, memory, dir);
    }
    rmdir(dir);
    return rc;
}
