/*
 * connectors/format_plugin.h: record formats from plugins (runnel/format.h)
 * as the connectors of this directory use them: the `format:` key read at
 * plan time, one record decoded into a row, one row encoded into bytes.
 * Private to connectors/.
 *
 * @thread plan: control; decode and encode: the task of the instance that
 * calls them (the plugin's callbacks run there too).
 */
#ifndef RN_CONNECTORS_FORMAT_PLUGIN_H
#define RN_CONNECTORS_FORMAT_PLUGIN_H

#include "connectors/encode.h"
#include "stream/conf.h"

#include <runnel/format.h>

/* What a component does with its format: reads records (a source: the
 * format needs decode) or writes them (a sink: encode). */
typedef enum rn_fmt_use { RN_FMT_DECODE, RN_FMT_ENCODE } rn_fmt_use_t;

/* Reads conf's `format`: one of builtins (NULL-terminated; *builtin is its
 * index, dflt when the key is absent, *ext NULL) or a format a plugin
 * registered (*builtin = dflt, *ext its table, which lives as long as the
 * process). Refused at the key's FILE:LINE:COL: an unknown name (the
 * message lists builtins and the registered formats) and a registered
 * format without the callback use needs. what names the component. */
rn_code_t rn__conn_format(const rn_conf_t *conf, const char *what, const char *const *builtins,
                          int dflt, rn_fmt_use_t use, int *builtin, const rn_format_fn_t **ext,
                          rn_error_t *err);

/* Decodes data[0..len) (borrowed for the call) with fn into row, which has
 * schema->nfields cells (set null first); strings are copied into arena.
 * @returns RN_OK; RN_EDATA, a bad record, with the reason in errbuf (the
 * plugin's message, or the field a setter refused); or another error, in
 * err ("format 'NAME': ..."), which stops the job. */
rn_code_t rn__fmt_decode(const rn_format_fn_t *fn, const rn_schema_t *schema, const char *data,
                         size_t len, rn_value_t *row, rn_arena_t *arena, char *errbuf,
                         size_t errlen, rn_error_t *err);

/* Encodes row (cells of schema; borrowed for the call) with fn, appending
 * the bytes to out (nothing else: no line break). On failure out is as it
 * was. @returns RN_OK or the plugin's error in err ("format 'NAME': ..."). */
rn_code_t rn__fmt_encode(const rn_format_fn_t *fn, const rn_schema_t *schema,
                         const rn_value_t *row, rn_buf_t *out, rn_error_t *err);

#endif
