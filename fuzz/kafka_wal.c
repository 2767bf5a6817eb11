/*
 * fuzz/kafka_wal.c: the kafka sink's write-ahead files (the epochs a
 * checkpoint keeps for `delivery: exactly-once`), read as a restore reads
 * them (rn__ktxn_wal_check: the reader of connectors/kafka_txn.c). The
 * input's first byte says whether the sink has a dead-letter topic; the
 * rest is the file.
 */
#include "fuzz/fuzz_util.h"

#include "connectors/kafka_txn.h"

#include <stdio.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[4200];
    if (path[0] == '\0') {
        rn_fuzz_quiet();
        snprintf(path, sizeof(path), "%s/wal", rn_fuzz_dir());
    }
    if (size < 1)
        return 0;
    rn_fuzz_write(path, data + 1, size - 1);
    rn_error_t err = RN_ERROR_INIT;
    uint64_t records;
    rn_fuzz_debug("write-ahead file", rn__ktxn_wal_check(path, data[0] & 1, &records, &err),
                  &err);
    return 0;
}
