/*
 * stream/plugin_int.h: what the plugin loader (plugin_load.c) gives the
 * plugin operator (op_plugin.c).
 */
#ifndef RN_STREAM_PLUGIN_INT_H
#define RN_STREAM_PLUGIN_INT_H

#include "stream/core.h"

#include <runnel/plugin.h>

typedef struct rn__plugin_lib {
    void *handle;              /* dlopen's */
    const rn_process_fn_t *fn; /* the operator the component names */
} rn__plugin_lib_t;

/* Checks, loads and initialises the library at path and finds operator
 * name in it. @returns the loaded library (free with rn__plugin_unload)
 * or NULL with err set. */
rn__plugin_lib_t *rn__plugin_load(const char *path, const char *name, rn_error_t *err);
/* Accepts NULL. */
void rn__plugin_unload(rn__plugin_lib_t *lib);

#endif
