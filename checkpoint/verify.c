/*
 * checkpoint/verify.c: the deep check of `runnel checkpoints --verify`.
 *
 * A checkpoint whose files all have the size and XXH3-128 its metadata
 * names can still be one that restore refuses: a writer's bug makes a
 * file that is intact but wrong. So beyond the store's checks
 * (rn__ckpt_verify), every state file that restore parses itself (the
 * handle files, the memory backend's tables) is parsed here as restore
 * parses it, with the same code (rn__state_check_file), read-only and in
 * place: what --verify passes, restore accepts. RocksDB's own files are
 * left to the checksums (the store's, and RocksDB's when it opens them).
 *
 * @thread any.
 */
#include "checkpoint/ckpt.h"

#include <string.h>

rn_code_t
rn__ckpt_verify_deep(const char *root, const json_t *meta, rn_error_t *err)
{
    rn_code_t rc = rn__ckpt_verify(root, meta, err);
    if (rc != RN_OK)
        return rc;
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(meta, "parts"), i, part)
    {
        const char *node = json_string_value(json_object_get(part, "node"));
        json_int_t inst = json_integer_value(json_object_get(part, "instance"));
        size_t j;
        json_t *sf;
        /* A memory table: the memory backend, which spills no timers. */
        bool mem = false;
        json_array_foreach(json_object_get(part, "state"), j, sf)
        {
            const char *as = json_string_value(json_object_get(sf, "as"));
            mem = mem || (as != NULL && strcmp(as, "mem") == 0);
        }
        json_array_foreach(json_object_get(part, "state"), j, sf)
        {
            /* rn__ckpt_verify checked both names are safe and relative. */
            const char *as = json_string_value(json_object_get(sf, "as"));
            if (mem && strcmp(as, "handle") == 0)
                as = "handle:memory";
            const char *path = json_string_value(json_object_get(sf, "path"));
            char full[4096 + 1100];
            snprintf(full, sizeof(full), "%s/%s", root, path);
            rc = rn__state_check_file(full, as, err);
            if (rc != RN_OK)
                return rn__errctx(err, "%s#%lld", node != NULL ? node : "?", (long long)inst);
        }
    }
    return RN_OK;
}
