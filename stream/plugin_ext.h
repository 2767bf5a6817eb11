/*
 * stream/plugin_ext.h: the process-wide registry of what plugins add
 * besides operators: scalar and aggregate functions, formats, sources and
 * sinks (runnel/functions.h, format.h, connector.h).
 *
 * Design: names are looked up while a job is planned, by the expression
 * parser, the window planner, the connectors and the component registry,
 * none of which knows of jobs or libraries; so the registry is global to
 * the process, as a JVM's classpath is. Libraries named in a job file's
 * `plugins:` are loaded once (by their resolved path) and stay loaded
 * for the process's life: the tables they registered must outlive every
 * plan that uses them, and a job's plans outlive its planning.
 *
 * @thread any (a lock guards the registry); lookups return tables that
 * never move nor die.
 */
#ifndef RN_STREAM_PLUGIN_EXT_H
#define RN_STREAM_PLUGIN_EXT_H

#include "stream/core.h"

#include <runnel/plugin.h>

typedef enum rn_ext_kind {
    RN_EXT_SCALAR = 0,
    RN_EXT_AGGREGATE,
    RN_EXT_FORMAT,
    RN_EXT_SOURCE,
    RN_EXT_SINK,
    RN_EXT_NKINDS
} rn_ext_kind_t;

/* "scalar function", "aggregate function", "format", "source", "sink". */
const char *rn__ext_kind_name(rn_ext_kind_t kind);

/* Loads the library at path (checked as rn__plugin_load does), runs its
 * init and adds everything it registers to the registry: its operators
 * become process functions (`type: plugin` without `library:`), the rest
 * usable by name. The same library again is a no-op. A function,
 * format, source or sink name taken by another library or built in
 * refuses the library before any of those is added; an operator name
 * another table has is refused after them (its earlier operators stay
 * registered). @returns RN_OK or an error. */
rn_code_t rn__plugin_load_global(const char *path, rn_error_t *err);

/* Lookups by name (name[0..len) need not be NUL-terminated). @returns
 * the table (a copy, the members the plugin's header did not know zeroed,
 * size set to this runnel's sizeof) or NULL. */
const rn_scalar_fn_t *rn__ext_scalar(const char *name, size_t len);
const rn_aggregate_fn_t *rn__ext_aggregate(const char *name, size_t len);
const rn_format_fn_t *rn__ext_format(const char *name);
const rn_source_fn_t *rn__ext_source(const char *name);
const rn_sink_fn_t *rn__ext_sink(const char *name);

/* Writes the registered names of kind, ", "-separated, into buf ("" when
 * none), for "expected one of" messages. */
void rn__ext_names(rn_ext_kind_t kind, char *buf, size_t size);
/* Splits a copy (split, size bytes, as long as list's buffer) of a list
 * rn__ext_names made into at most max names, in out. @returns how many;
 * out points into split. For did-you-mean over built-in and plugins'
 * names. */
size_t rn__ext_names_split(const char *list, char *split, size_t size, const char **out,
                           size_t max);

/* Built-in names, which a plugin may not take (each defined beside the
 * built-ins: expr_parse.c, windows/accum.c, connectors, registry.c). */
bool rn__expr_fn_builtin(const char *name);
bool rn__agg_fn_builtin(const char *name);
bool rn__format_builtin(const char *name);

#endif
