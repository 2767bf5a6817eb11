/*
 * cli/progress.h: the terminal progress line of `runnel run`.
 */
#ifndef RN_CLI_PROGRESS_H
#define RN_CLI_PROGRESS_H

#include <runnel/runnel.h>

typedef struct rn_progress rn_progress_t;

/* Starts redrawing the line once a second when stderr is a terminal.
 * @param job borrowed; must outlive the progress.
 * @returns a handle for rn_progress_stop(), or NULL when not a terminal. */
rn_progress_t *rn_progress_start(rn_job_t *job);
/* Stops and erases the line. Accepts NULL. */
void rn_progress_stop(rn_progress_t *p);

#endif
