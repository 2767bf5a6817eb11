/*
 * fuzz/fuzz_util.h: what the libFuzzer targets share: a private temporary
 * directory for inputs that runnel reads from files, and a quiet log.
 *
 * Each target is one process running one input at a time, so these keep
 * process-wide state (the directory) without locks.
 */
#ifndef RN_FUZZ_UTIL_H
#define RN_FUZZ_UTIL_H

#include "stream/core.h"

#include <stddef.h>
#include <stdint.h>

/* The process's scratch directory (made on first use, removed at exit).
 * @returns its path, owned by this module. Aborts when it cannot be made:
 * a target that cannot write its input has nothing to test. */
const char *rn_fuzz_dir(void);

/* Writes len bytes of data to path (created or truncated). Aborts on
 * failure, for the reason above. */
void rn_fuzz_write(const char *path, const void *data, size_t len);

/* Removes path and everything under it; a missing path is fine. */
void rn_fuzz_rmtree(const char *path);

/* Turns runnel's log off: bad input is the normal case here, and a line
 * per input would slow the fuzzer down and bury its own output. */
void rn_fuzz_quiet(void);

/* With RN_FUZZ_DEBUG set in the environment, prints what an input
 * reached: "what: ok" or "what: <err->msg>", to check that seeds go as
 * deep as meant. */
void rn_fuzz_debug(const char *what, rn_code_t rc, const rn_error_t *err);

#endif
