/*
 * checkpoint/crash.c: named crash points (crash.h).
 *
 * The variable is read at every point rather than once: crash points sit
 * on checkpoint paths (a few calls a second), and a test sets it in a
 * forked child after its parent has passed points already.
 */
#include "checkpoint/crash.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
rn__crash_point(const char *name)
{
    const char *at = getenv("RN_CRASH_AT");
    if (at != NULL && strcmp(at, name) == 0)
        _exit(RN_CRASH_EXIT);
}
