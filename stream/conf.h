/*
 * stream/conf.h: typed reading of configuration nodes, for components and
 * the graph checker. Every error names the node's position as
 * "FILE:LINE:COL: message" (no position for nodes built in C).
 *
 * Getters take a map and a key: an absent key leaves the default and returns
 * RN_OK; a present key with a bad value is RN_EINVAL with a message naming
 * the key, what was expected and what was found.
 *
 * @thread any (plan time).
 */
#ifndef RN_STREAM_CONF_H
#define RN_STREAM_CONF_H

#include "stream/core.h"

/* Fills err with "FILE:LINE:COL: " + message for node (which may be NULL:
 * then no position). @returns code. */
rn_code_t rn__conf_err(rn_error_t *err, rn_code_t code, const rn_conf_t *node, const char *fmt,
                       ...) RN_PRINTF(4, 5);

/* Checks that every key of map is in allowed (NULL-terminated); an unknown
 * key gets "unknown key 'x' in <what>; did you mean 'y'?" at the key. A
 * non-map node gets "<what> must be a map". */
rn_code_t rn__conf_check_keys(const rn_conf_t *map, const char *const *allowed, const char *what,
                              rn_error_t *err);

/* The closest candidate by edit distance when it is close enough to be a
 * likely typo, else NULL. @returns a pointer into candidates. */
const char *rn__did_you_mean(const char *word, const char *const *candidates);

/* Present key or error "missing required key 'key' in <what>" at map. */
const rn_conf_t *rn__conf_require(const rn_conf_t *map, const char *key, const char *what,
                                  rn_error_t *err);

/* Scalars. *out is borrowed from the tree. */
rn_code_t rn__conf_str(const rn_conf_t *map, const char *key, const char *dflt, const char **out,
                       rn_error_t *err);
rn_code_t rn__conf_int(const rn_conf_t *map, const char *key, int64_t dflt, int64_t *out,
                       rn_error_t *err);
rn_code_t rn__conf_float(const rn_conf_t *map, const char *key, double dflt, double *out,
                         rn_error_t *err);
/* true/false (YAML 1.2 core schema). */
rn_code_t rn__conf_bool(const rn_conf_t *map, const char *key, bool dflt, bool *out,
                        rn_error_t *err);
/* Durations: 250ms, 10s, 5m, 2h, 1d; a bare 0 is accepted. */
rn_code_t rn__conf_duration_ms(const rn_conf_t *map, const char *key, int64_t dflt, int64_t *out,
                               rn_error_t *err);
/* Sizes: 512, 64KB, 256MB, 1GB (powers of 1024; KiB/MiB/GiB accepted). */
rn_code_t rn__conf_size(const rn_conf_t *map, const char *key, int64_t dflt, int64_t *out,
                        rn_error_t *err);
/* An address to listen on, HOST:PORT: an IPv4 or IPv6 address (no
 * brackets), a port from 1 to 65535. *out is borrowed from the tree. */
rn_code_t rn__conf_listen(const rn_conf_t *map, const char *key, const char *dflt,
                          const char **out, rn_error_t *err);
/* One of choices (NULL-terminated): *out is its index. A bad value gets a
 * message listing the choices, with did-you-mean. */
rn_code_t rn__conf_enum(const rn_conf_t *map, const char *key, const char *const *choices,
                        int dflt, int *out, rn_error_t *err);

/* "a map", "a sequence" or "a scalar", for messages. */
const char *rn__conf_kind_name(const rn_conf_t *node);

/* Parses a duration or a size from text (no node). @returns RN_OK or RN_EINVAL. */
rn_code_t rn__parse_duration_ms(const char *text, int64_t *out);
rn_code_t rn__parse_size(const char *text, int64_t *out);

/* A list of strings: a sequence of scalars or a single scalar (key: user
 * and key: [user] both work). *out is an array of n borrowed strings, to be
 * freed with rn_free() (the strings are not). */
rn_code_t rn__conf_strlist(const rn_conf_t *map, const char *key, const char ***out, size_t *n,
                           rn_error_t *err);

/*
 * Building a tree with positions: used by the YAML loader (conf_yaml.c) and
 * by rn_conf_set_path. The file name of a position is shared by every node
 * read from that file (a refcounted rn_conf_src_t), so a large file does not
 * copy its name into each node.
 */
typedef struct rn_conf_src rn_conf_src_t;

/* @param name copied. @returns a source with one reference (drop it with
 * rn__conf_src_unref()), or NULL when out of memory. */
rn_conf_src_t *rn__conf_src_new(const char *name);
/* Accepts NULL. */
void rn__conf_src_unref(rn_conf_src_t *src);
/* Sets where node starts. @param src borrowed: the node takes its own
 * reference (src may be NULL: no file). line and col are 1-based, 0 when
 * unknown. Only node itself changes, not its children. */
void rn__conf_set_pos(rn_conf_t *node, rn_conf_src_t *src, int line, int col);
/* A scalar of len bytes of text (copied), remembering whether it was quoted.
 * @returns a node to free with rn_conf_destroy(), or NULL when out of memory. */
rn_conf_t *rn__conf_new_scalar_n(const char *text, size_t len, bool quoted);
/* Appends an entry to map without looking for an existing one (the loader
 * has already refused duplicates). @param key a scalar node, kept as the
 * entry's key node; consumed with value, on success and failure alike. */
rn_code_t rn__conf_map_add(rn_conf_t *map, rn_conf_t *key, rn_conf_t *value, rn_error_t *err);
/* @returns the key node of key in map (borrowed), or NULL. */
const rn_conf_t *rn__conf_key_node(const rn_conf_t *map, const char *key);
/* How many keys a lookup of key in map compares: a constant on average for
 * a map of any size (maps of many keys are hashed). For tests. */
size_t rn__conf_map_probes(const rn_conf_t *map, const char *key);

#endif
