/*
 * fuzz/state_snapshot.c: the files of a keyed state snapshot in a
 * checkpoint, as a restore reads them: "handle" (the registry of states
 * and the in-memory timers, state/snapshot.c) and the memory backend's
 * "mem" (its table, state/memory.c). RocksDB's own files are RocksDB's to
 * check.
 *
 * Input: a flags byte, the handle file's length (u32, little-endian), the
 * handle file, then the mem file. Flags bit 0: a rescale (the snapshot
 * imported for a key-group range, bits 4-7 choosing it) rather than a
 * restore; bits 1-3: which states the operator registers before
 * rn__state_ready, as a window operator does (a merging "acc", "str",
 * the map "distinct"). A state that is ready has its timers fired and
 * their accumulators read, then is snapshot again.
 */
#include "fuzz/fuzz_util.h"

#include "state/state.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ACC_SIZE 16

static void
add_u64s(const void *ctx, void *dst, const void *src)
{
    (void)ctx;
    uint64_t a[2], b[2];
    memcpy(a, dst, sizeof(a));
    memcpy(b, src, sizeof(b));
    a[0] += b[0];
    a[1] += b[1];
    memcpy(dst, a, sizeof(a));
}

static void
exercise(rn_state_t *st, uint8_t flags)
{
    rn_error_t err = RN_ERROR_INIT;
    rn_vstate_t *acc = NULL;
    if (flags & 2) {
        rn_state_merge_t m = {ACC_SIZE, add_u64s, NULL, 0};
        acc = rn__state_value_merge(st, "acc", &m, &err);
    } else {
        acc = rn__state_value(st, "acc", &err);
    }
    if (acc == NULL || ((flags & 4) && rn__state_value(st, "str", &err) == NULL) ||
        ((flags & 8) && rn__state_map(st, "distinct", &err) == NULL) ||
        rn__state_ready(st, &err) != RN_OK) {
        rn_fuzz_debug("the restored state", RN_EINVAL, &err);
        return;
    }
    for (int d = 0; d < 2; d++) {
        rn_timer_t t;
        while (rn__timer_pop(st, (rn_time_domain_t)d, INT64_MAX, &t, &err) == RN_OK) {
            const void *val;
            size_t len;
            rn__vstate_get(acc, t.ns, t.nslen, &val, &len, &err);
        }
    }
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/again", rn_fuzz_dir());
    rn_fuzz_debug("the restored state, snapshot again",
                  rn__state_snapshot(st, dir, NULL, &err), &err);
    rn_fuzz_rmtree(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[4200], handle[4300], mem[4300];
    if (dir[0] == '\0') {
        rn_fuzz_quiet();
        snprintf(dir, sizeof(dir), "%s/snap", rn_fuzz_dir());
        snprintf(handle, sizeof(handle), "%s/handle", dir);
        snprintf(mem, sizeof(mem), "%s/mem", dir);
        mkdir(dir, 0700);
    }
    if (size < 5)
        return 0;
    uint8_t flags = data[0];
    uint32_t hlen = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
                    (uint32_t)data[4] << 24;
    data += 5;
    size -= 5;
    if (hlen > size)
        hlen = (uint32_t)size;
    rn_fuzz_write(handle, data, hlen);
    rn_fuzz_write(mem, data + hlen, size - hlen);

    rn_error_t err = RN_ERROR_INIT;
    rn_state_options_t opts = {.backend = "memory", .owner = "fuzz#0"};
    const char *imports[1] = {dir};
    if (flags & 1) {
        /* 128 key groups, a quarter of them taken by this instance. */
        uint32_t q = (flags >> 4) & 3;
        opts.import_dirs = imports;
        opts.nimport = 1;
        opts.kg_first = q * 32;
        opts.kg_last = q * 32 + 31;
    } else {
        opts.restore_dir = dir;
    }
    rn_state_t *st = rn__state_new(&opts, &err);
    if (st == NULL)
        rn_fuzz_debug("the snapshot", RN_EINVAL, &err);
    if (st != NULL) {
        exercise(st, flags);
        rn__state_destroy(st);
    }
    return 0;
}
