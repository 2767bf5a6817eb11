/*
 * runnel/conf.h: the configuration tree.
 *
 * A job is described by a tree of maps, sequences and scalars, read from a
 * YAML job file or built in C. Every node remembers where it came from
 * (file, line, column) so that any error found later, when the graph is
 * checked, can be reported as FILE:LINE:COL. Scalars are kept as text; they
 * get a type only when a component reads them (rn__conf_* in stream/conf.h).
 *
 * Ownership: a node added to a map or sequence is owned by it; destroying
 * the root destroys the tree. Strings returned are owned by the tree and
 * valid until it is destroyed.
 *
 * @thread any, but one tree must not be used by two threads at once.
 */
#ifndef RUNNEL_CONF_H
#define RUNNEL_CONF_H

#include <runnel/error.h>

typedef struct rn_conf rn_conf_t;

typedef enum rn_conf_kind {
    RN_CONF_SCALAR = 0,
    RN_CONF_MAP = 1,
    RN_CONF_SEQ = 2,
} rn_conf_kind_t;

/* New empty nodes. @returns a node to free with rn_conf_destroy(), or NULL
 * when out of memory. */
RN_API rn_conf_t *rn_conf_new_map(void);
RN_API rn_conf_t *rn_conf_new_seq(void);
/* @param value copied. */
RN_API rn_conf_t *rn_conf_new_scalar(const char *value);

/* Sets key in map to value, replacing an existing entry (which is freed).
 * @param value consumed, on success and on failure alike. */
RN_API rn_code_t rn_conf_map_set(rn_conf_t *map, const char *key, rn_conf_t *value,
                                 rn_error_t *err);
/* Appends value to seq. @param value consumed, on success and failure. */
RN_API rn_code_t rn_conf_seq_append(rn_conf_t *seq, rn_conf_t *value, rn_error_t *err);

/* Overrides one value, as `--set key.path=value` does: path is a dotted list
 * of map keys (a sequence index is a decimal number); missing maps on the
 * way are created; value is read as a YAML flow value, so "3", "abc",
 * "[a, b]" and "{size: 1s}" all work. */
RN_API rn_code_t rn_conf_set_path(rn_conf_t *root, const char *path, const char *value,
                                  rn_error_t *err);

/* Reads a YAML document. Syntax errors come back as "FILE:LINE:COL: message".
 * Duplicate keys in a map are an error. Anchors and aliases are refused.
 * @returns the root node (free with rn_conf_destroy()) or NULL. */
RN_API rn_conf_t *rn_conf_load_file(const char *path, rn_error_t *err);
/* @param name the file name used in positions; borrowed for the call. */
RN_API rn_conf_t *rn_conf_load_string(const char *text, size_t len, const char *name,
                                      rn_error_t *err);

/* Accepts NULL. */
RN_API void rn_conf_destroy(rn_conf_t *node);

RN_API rn_conf_kind_t rn_conf_kind(const rn_conf_t *node);
/* @returns the value under key in a map (borrowed), or NULL. */
RN_API const rn_conf_t *rn_conf_get(const rn_conf_t *map, const char *key);
/* @returns entries of a map or items of a sequence; 0 for a scalar. */
RN_API size_t rn_conf_len(const rn_conf_t *node);
/* @returns item i of a sequence or value i of a map (in file order). */
RN_API const rn_conf_t *rn_conf_at(const rn_conf_t *node, size_t i);
/* @returns key i of a map, or NULL. */
RN_API const char *rn_conf_key_at(const rn_conf_t *map, size_t i);
/* @returns the key node of entry i of a map (for its position), or NULL. */
RN_API const rn_conf_t *rn_conf_key_node_at(const rn_conf_t *map, size_t i);
/* @returns the text of a scalar, or NULL for a map or sequence. */
RN_API const char *rn_conf_scalar(const rn_conf_t *node);
/* True when the scalar was quoted in YAML ('12' is a string, 12 is not). */
RN_API bool rn_conf_quoted(const rn_conf_t *node);

/* Where the node starts: file name (NULL when built in C), 1-based line and
 * column (0 when unknown). */
RN_API const char *rn_conf_file(const rn_conf_t *node);
RN_API int rn_conf_line(const rn_conf_t *node);
RN_API int rn_conf_col(const rn_conf_t *node);

#endif
