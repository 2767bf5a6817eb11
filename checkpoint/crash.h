/*
 * checkpoint/crash.h: named crash points, for tests of what a crash at a
 * given instant leaves behind (as RocksDB's kill points).
 *
 * RN_CRASH_AT=<name> in the environment makes the process _exit(77) the
 * first time it reaches rn__crash_point(<name>): no atexit handlers, no
 * buffered output flushed, no destructors, as close to SIGKILL as a
 * process can do to itself at a chosen line. Without the variable a crash
 * point costs a getenv.
 *
 * @thread any.
 */
#ifndef RN_CHECKPOINT_CRASH_H
#define RN_CHECKPOINT_CRASH_H

/* The exit status of a crash point, so that tests can tell it from a
 * failure. */
#define RN_CRASH_EXIT 77

/* Exits the process when name is the crash point RN_CRASH_AT names. */
void rn__crash_point(const char *name);

#endif
