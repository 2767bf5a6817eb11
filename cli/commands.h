/*
 * cli/commands.h: the `runnel` subcommands beyond run and validate.
 * Each returns the process's exit status.
 */
#ifndef RN_CLI_COMMANDS_H
#define RN_CLI_COMMANDS_H

#include <stdbool.h>

int rn_cmd_checkpoints(const char *dir, bool verify);
/* POST /savepoint (or /stop with stop) to the job at addr; dir may be NULL. */
int rn_cmd_savepoint(const char *addr, const char *dir, bool stop);

#endif
