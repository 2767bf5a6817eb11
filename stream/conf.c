/*
 * stream/conf.c: the configuration tree (maps, sequences, scalars) and
 * rn_conf_set_path, the --set override.
 *
 * Design: a node is a tagged union. A map is an array of (key node, value
 * node) entries kept in insertion order, which for a loaded file is file
 * order, so that "the first problem" reported by the checker is the first in
 * the file and printed graphs follow the file.
 * Keys are scalar nodes of their own so that "unknown key" errors point at
 * the key rather than at its value.
 *
 * Positions: every node holds a pointer to a refcounted source (the file
 * name), a 1-based line and a column. Nodes built in C have no source. A
 * value set by rn_conf_set_path gets the source "--set PATH" and no line, so
 * that an error about it reads "--set PATH: message" (rn__conf_err prints
 * "FILE: " when the line is unknown).
 *
 * The refcount is atomic although one tree belongs to one thread at a time:
 * a subtree handed to a component may be destroyed on another thread than
 * the rest of its file's nodes, and they share the source.
 *
 * Lookup: a map of up to MAP_INDEX_MIN keys is scanned; a larger one gets an
 * open-addressing index of entry numbers (linear probing, at most half
 * full), built when the map reaches that size and kept up as keys are
 * added, so that loading a map of n keys (each key checked for a duplicate)
 * costs O(n), not O(n^2), however large a generated job file is. Keys are
 * never removed, so the index never needs tombstones.
 *
 * @thread any, one thread per tree at a time.
 */
#include "stream/conf.h"

#include <stdatomic.h>
#include <sys/types.h>

struct rn_conf_src {
    atomic_int refs;
    char name[]; /* NUL-terminated */
};

struct conf_entry {
    rn_conf_t *key; /* a scalar */
    rn_conf_t *value;
};

struct rn_conf {
    rn_conf_kind_t kind;
    bool quoted;        /* scalars only */
    int line;           /* 1-based; 0 when unknown */
    int col;            /* 1-based; 0 when unknown */
    rn_conf_src_t *src; /* NULL when built in C */
    union {
        char *text; /* RN_CONF_SCALAR; never NULL */
        struct {
            struct conf_entry *entries;
            size_t len, cap;
            size_t *index;  /* entry number + 1 per slot, 0 = free; or NULL */
            size_t nindex;  /* slots: a power of two, or 0 */
        } map;
        struct {
            rn_conf_t **items;
            size_t len, cap;
        } seq;
    } u;
};

/* ---- sources -------------------------------------------------------- */

rn_conf_src_t *
rn__conf_src_new(const char *name)
{
    size_t len = strlen(name);
    rn_conf_src_t *src = rn_malloc(sizeof(*src) + len + 1);

    if (src == NULL)
        return NULL;
    atomic_init(&src->refs, 1);
    memcpy(src->name, name, len + 1);
    return src;
}

static rn_conf_src_t *
src_ref(rn_conf_src_t *src)
{
    if (src != NULL)
        atomic_fetch_add_explicit(&src->refs, 1, memory_order_relaxed);
    return src;
}

void
rn__conf_src_unref(rn_conf_src_t *src)
{
    if (src != NULL && atomic_fetch_sub_explicit(&src->refs, 1, memory_order_acq_rel) == 1)
        rn_free(src);
}

void
rn__conf_set_pos(rn_conf_t *node, rn_conf_src_t *src, int line, int col)
{
    /* Take the new reference before dropping the old one: they may be the
     * same source. */
    src_ref(src);
    rn__conf_src_unref(node->src);
    node->src = src;
    node->line = line;
    node->col = col;
}

/* ---- construction and destruction ------------------------------------ */

static rn_conf_t *
node_new(rn_conf_kind_t kind)
{
    rn_conf_t *node = rn_calloc(1, sizeof(*node));

    if (node != NULL)
        node->kind = kind;
    return node;
}

rn_conf_t *
rn_conf_new_map(void)
{
    return node_new(RN_CONF_MAP);
}

rn_conf_t *
rn_conf_new_seq(void)
{
    return node_new(RN_CONF_SEQ);
}

rn_conf_t *
rn__conf_new_scalar_n(const char *text, size_t len, bool quoted)
{
    rn_conf_t *node = node_new(RN_CONF_SCALAR);

    if (node == NULL)
        return NULL;
    node->u.text = rn_malloc(len + 1);
    if (node->u.text == NULL) {
        rn_free(node);
        return NULL;
    }
    if (len > 0)
        memcpy(node->u.text, text, len);
    node->u.text[len] = '\0';
    node->quoted = quoted;
    return node;
}

rn_conf_t *
rn_conf_new_scalar(const char *value)
{
    if (value == NULL)
        value = "";
    return rn__conf_new_scalar_n(value, strlen(value), false);
}

void
rn_conf_destroy(rn_conf_t *node)
{
    size_t i;

    if (node == NULL)
        return;
    switch (node->kind) {
    case RN_CONF_SCALAR:
        rn_free(node->u.text);
        break;
    case RN_CONF_MAP:
        for (i = 0; i < node->u.map.len; i++) {
            rn_conf_destroy(node->u.map.entries[i].key);
            rn_conf_destroy(node->u.map.entries[i].value);
        }
        rn_free(node->u.map.entries);
        rn_free(node->u.map.index);
        break;
    case RN_CONF_SEQ:
        for (i = 0; i < node->u.seq.len; i++)
            rn_conf_destroy(node->u.seq.items[i]);
        rn_free(node->u.seq.items);
        break;
    }
    rn__conf_src_unref(node->src);
    rn_free(node);
}

/* Grows an array of elem-sized items to hold one more. */
static bool
grow(void **items, size_t *cap, size_t len, size_t elem)
{
    size_t ncap;
    void *p;

    if (len < *cap)
        return true;
    ncap = *cap ? *cap * 2 : 4;
    p = rn_realloc(*items, ncap * elem);
    if (p == NULL)
        return false;
    *items = p;
    *cap = ncap;
    return true;
}

/* Maps this large or larger are indexed; smaller ones are scanned, which
 * for the tens of keys of a hand-written map is faster than hashing. */
#define MAP_INDEX_MIN 16

/* FNV-1a: short keys, no adversary to fear at plan time beyond size. */
static size_t
key_hash(const char *key)
{
    uint64_t h = 14695981039346656037ull;

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 32));
}

/* Puts entry i into the index, unless an entry with the same key is there
 * already: lookups answer the first one, as the scan does. */
static void
index_put(rn_conf_t *map, size_t i)
{
    const char *key = map->u.map.entries[i].key->u.text;
    size_t mask = map->u.map.nindex - 1;
    size_t s = key_hash(key) & mask;

    while (map->u.map.index[s] != 0) {
        if (strcmp(map->u.map.entries[map->u.map.index[s] - 1].key->u.text, key) == 0)
            return;
        s = (s + 1) & mask;
    }
    map->u.map.index[s] = i + 1;
}

/* (Re)builds the index with room for twice the map's entries. Out of memory
 * drops the index: lookups stay right, only slower (scans). */
static void
index_build(rn_conf_t *map)
{
    size_t n = 64;
    size_t *slots;

    while (n < map->u.map.len * 4)
        n *= 2;
    slots = rn_calloc(n, sizeof(*slots));
    rn_free(map->u.map.index);
    map->u.map.index = slots;
    map->u.map.nindex = slots != NULL ? n : 0;
    for (size_t i = 0; slots != NULL && i < map->u.map.len; i++)
        index_put(map, i);
}

/* The entry number of key in map, or -1. @param probes if not NULL, adds the
 * number of keys compared (tests check that lookups stay constant-time). */
static ssize_t
map_find_counted(const rn_conf_t *map, const char *key, size_t *probes)
{
    size_t n = 0;
    ssize_t found = -1;

    if (map->u.map.index != NULL) {
        size_t mask = map->u.map.nindex - 1;
        size_t s = key_hash(key) & mask;

        for (; map->u.map.index[s] != 0; s = (s + 1) & mask) {
            size_t i = map->u.map.index[s] - 1;

            n++;
            if (strcmp(map->u.map.entries[i].key->u.text, key) == 0) {
                found = (ssize_t)i;
                break;
            }
        }
    } else {
        for (size_t i = 0; i < map->u.map.len; i++) {
            n++;
            if (strcmp(map->u.map.entries[i].key->u.text, key) == 0) {
                found = (ssize_t)i;
                break;
            }
        }
    }
    if (probes != NULL)
        *probes += n;
    return found;
}

static ssize_t
map_find(const rn_conf_t *map, const char *key)
{
    return map_find_counted(map, key, NULL);
}

size_t
rn__conf_map_probes(const rn_conf_t *map, const char *key)
{
    size_t probes = 0;

    if (map != NULL && map->kind == RN_CONF_MAP && key != NULL)
        (void)map_find_counted(map, key, &probes);
    return probes;
}

rn_code_t
rn__conf_map_add(rn_conf_t *map, rn_conf_t *key, rn_conf_t *value, rn_error_t *err)
{
    struct conf_entry *e;

    if (map == NULL || map->kind != RN_CONF_MAP || key == NULL || key->kind != RN_CONF_SCALAR ||
        value == NULL) {
        rn_conf_destroy(key);
        rn_conf_destroy(value);
        return rn__errf(err, RN_EINVAL, "rn__conf_map_add: needs a map, a scalar key and a value");
    }
    if (!grow((void **)&map->u.map.entries, &map->u.map.cap, map->u.map.len,
              sizeof(*map->u.map.entries))) {
        rn__errf(err, RN_ENOMEM, "out of memory adding key '%s'", key->u.text);
        rn_conf_destroy(key);
        rn_conf_destroy(value);
        return RN_ENOMEM;
    }
    e = &map->u.map.entries[map->u.map.len++];
    e->key = key;
    e->value = value;
    if (map->u.map.index != NULL && map->u.map.len * 2 <= map->u.map.nindex)
        index_put(map, map->u.map.len - 1);
    else if (map->u.map.len >= MAP_INDEX_MIN)
        index_build(map);
    return RN_OK;
}

rn_code_t
rn_conf_map_set(rn_conf_t *map, const char *key, rn_conf_t *value, rn_error_t *err)
{
    rn_conf_t *knode;
    ssize_t i;

    if (map == NULL || map->kind != RN_CONF_MAP || key == NULL || value == NULL) {
        rn_conf_destroy(value);
        return rn__errf(err, RN_EINVAL, "rn_conf_map_set: needs a map, a key and a value");
    }
    i = map_find(map, key);
    if (i >= 0) {
        /* Keep the entry's slot and key node (with its position): the key
         * is still where the file wrote it, only its value changed. */
        rn_conf_destroy(map->u.map.entries[i].value);
        map->u.map.entries[i].value = value;
        return RN_OK;
    }
    knode = rn_conf_new_scalar(key);
    if (knode == NULL) {
        rn_conf_destroy(value);
        return rn__errf(err, RN_ENOMEM, "out of memory adding key '%s'", key);
    }
    return rn__conf_map_add(map, knode, value, err);
}

rn_code_t
rn_conf_seq_append(rn_conf_t *seq, rn_conf_t *value, rn_error_t *err)
{
    if (seq == NULL || seq->kind != RN_CONF_SEQ || value == NULL) {
        rn_conf_destroy(value);
        return rn__errf(err, RN_EINVAL, "rn_conf_seq_append: needs a sequence and a value");
    }
    if (!grow((void **)&seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.len,
              sizeof(*seq->u.seq.items))) {
        rn_conf_destroy(value);
        return rn__errf(err, RN_ENOMEM, "out of memory appending to a sequence");
    }
    seq->u.seq.items[seq->u.seq.len++] = value;
    return RN_OK;
}

/* ---- accessors -------------------------------------------------------- */

rn_conf_kind_t
rn_conf_kind(const rn_conf_t *node)
{
    return node->kind;
}

const rn_conf_t *
rn_conf_get(const rn_conf_t *map, const char *key)
{
    ssize_t i;

    if (map == NULL || map->kind != RN_CONF_MAP || key == NULL)
        return NULL;
    i = map_find(map, key);
    return i >= 0 ? map->u.map.entries[i].value : NULL;
}

const rn_conf_t *
rn__conf_key_node(const rn_conf_t *map, const char *key)
{
    ssize_t i;

    if (map == NULL || map->kind != RN_CONF_MAP || key == NULL)
        return NULL;
    i = map_find(map, key);
    return i >= 0 ? map->u.map.entries[i].key : NULL;
}

size_t
rn_conf_len(const rn_conf_t *node)
{
    if (node == NULL)
        return 0;
    switch (node->kind) {
    case RN_CONF_MAP:
        return node->u.map.len;
    case RN_CONF_SEQ:
        return node->u.seq.len;
    case RN_CONF_SCALAR:
        break;
    }
    return 0;
}

const rn_conf_t *
rn_conf_at(const rn_conf_t *node, size_t i)
{
    if (node == NULL || i >= rn_conf_len(node))
        return NULL;
    return node->kind == RN_CONF_MAP ? node->u.map.entries[i].value : node->u.seq.items[i];
}

const char *
rn_conf_key_at(const rn_conf_t *map, size_t i)
{
    const rn_conf_t *key = rn_conf_key_node_at(map, i);

    return key != NULL ? key->u.text : NULL;
}

const rn_conf_t *
rn_conf_key_node_at(const rn_conf_t *map, size_t i)
{
    if (map == NULL || map->kind != RN_CONF_MAP || i >= map->u.map.len)
        return NULL;
    return map->u.map.entries[i].key;
}

const char *
rn_conf_scalar(const rn_conf_t *node)
{
    return node != NULL && node->kind == RN_CONF_SCALAR ? node->u.text : NULL;
}

bool
rn_conf_quoted(const rn_conf_t *node)
{
    return node != NULL && node->kind == RN_CONF_SCALAR && node->quoted;
}

const char *
rn_conf_file(const rn_conf_t *node)
{
    return node != NULL && node->src != NULL ? node->src->name : NULL;
}

int
rn_conf_line(const rn_conf_t *node)
{
    return node != NULL ? node->line : 0;
}

int
rn_conf_col(const rn_conf_t *node)
{
    return node != NULL ? node->col : 0;
}

/* ---- rn_conf_set_path ------------------------------------------------- */

/* Path components, split at dots. A component may be quoted with ' or " to
 * hold dots, as librdkafka property names do:
 * sources.in.properties."fetch.min.bytes". */
struct path {
    char **parts;
    size_t n;
};

static void
path_fini(struct path *p)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        rn_free(p->parts[i]);
    rn_free(p->parts);
}

static rn_code_t
path_split(const char *path, struct path *p, rn_error_t *err)
{
    const char *s = path;
    size_t cap = 0;

    p->parts = NULL;
    p->n = 0;
    for (;;) {
        const char *start = s, *end;
        char quote = 0;

        if (*s == '"' || *s == '\'') {
            quote = *s++;
            start = s;
            while (*s != '\0' && *s != quote)
                s++;
            if (*s == '\0')
                return rn__errf(err, RN_EINVAL, "--set %s: unclosed quote in the path", path);
            end = s++;
            if (*s != '\0' && *s != '.')
                return rn__errf(err, RN_EINVAL, "--set %s: expected '.' after a quoted key",
                                path);
        } else {
            while (*s != '\0' && *s != '.')
                s++;
            end = s;
        }
        if (end == start && !quote)
            return rn__errf(err, RN_EINVAL, "--set %s: empty key in the path", path);
        if (!grow((void **)&p->parts, &cap, p->n, sizeof(*p->parts)))
            return rn__errf(err, RN_ENOMEM, "--set %s: out of memory", path);
        p->parts[p->n] = rn_malloc((size_t)(end - start) + 1);
        if (p->parts[p->n] == NULL)
            return rn__errf(err, RN_ENOMEM, "--set %s: out of memory", path);
        memcpy(p->parts[p->n], start, (size_t)(end - start));
        p->parts[p->n][end - start] = '\0';
        p->n++;
        if (*s == '\0')
            return RN_OK;
        s++; /* the dot */
        if (*s == '\0')
            return rn__errf(err, RN_EINVAL, "--set %s: empty key in the path", path);
    }
}

/* Parses a sequence index: decimal digits only. */
static bool
parse_index(const char *s, size_t *out)
{
    size_t v = 0;

    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*s - '0');
    }
    *out = v;
    return true;
}

/* Writes parts[0..n) joined by dots into buf, for messages. */
static const char *
path_prefix(const struct path *p, size_t n, char *buf, size_t size)
{
    size_t used = 0, j;

    buf[0] = '\0';
    if (n == 0)
        return "the root";
    for (j = 0; j < n && used < size; j++) {
        int w = snprintf(buf + used, size - used, "%s%s", j ? "." : "", p->parts[j]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

/* Whether key is parts[from..from+n) joined by dots. */
static bool
key_is_joined(const char *key, const struct path *p, size_t from, size_t n)
{
    size_t j, len;

    for (j = from; j < from + n; j++) {
        if (j > from && *key++ != '.')
            return false;
        len = strlen(p->parts[j]);
        if (strncmp(key, p->parts[j], len) != 0)
            return false;
        key += len;
    }
    return *key == '\0';
}

/* In a map, the existing key made of the most path components joined by
 * dots, so that a key holding dots (fetch.min.bytes) is found without
 * quoting. @returns the number of components used (0: no key matches) and
 * sets *entry to the entry's index. */
static size_t
match_dotted(const rn_conf_t *map, const struct path *p, size_t from, size_t upto, size_t *entry)
{
    size_t n, k;

    for (n = upto - from; n >= 1; n--) {
        for (k = 0; k < map->u.map.len; k++) {
            if (key_is_joined(map->u.map.entries[k].key->u.text, p, from, n)) {
                *entry = k;
                return n;
            }
        }
    }
    return 0;
}

/* Gives every node of a tree the source src and no line, recursively. */
static void
set_pos_tree(rn_conf_t *node, rn_conf_src_t *src)
{
    size_t i;

    rn__conf_set_pos(node, src, 0, 0);
    if (node->kind == RN_CONF_MAP) {
        for (i = 0; i < node->u.map.len; i++) {
            rn__conf_set_pos(node->u.map.entries[i].key, src, 0, 0);
            set_pos_tree(node->u.map.entries[i].value, src);
        }
    } else if (node->kind == RN_CONF_SEQ) {
        for (i = 0; i < node->u.seq.len; i++)
            set_pos_tree(node->u.seq.items[i], src);
    }
}

/* Rewrites a loader error "--set PATH:LINE:COL: message" as "--set PATH:
 * value 'VALUE': message": a line and column mean little in a one-line
 * command-line value (libyaml puts an unclosed bracket on line 2). */
static void
value_err(rn_error_t *err, const char *name, const char *value)
{
    char msg[RN_ERROR_MSG_MAX];
    size_t len = strlen(name);
    const char *rest;

    if (strncmp(err->msg, name, len) != 0 || err->msg[len] != ':')
        return;
    rest = err->msg + len + 1;
    if (*rest >= '0' && *rest <= '9') {
        rest = strstr(rest, ": ");
        if (rest == NULL)
            return;
        rest++;
    }
    snprintf(msg, sizeof(msg), "%s", rest + (*rest == ' '));
    rn__errf(err, err->code, "%s: value '%s': %s", name, value, msg);
}

/* Reads value as YAML into a tree positioned at "--set path". */
static rn_conf_t *
parse_value(const char *path, const char *value, rn_conf_src_t *src, rn_error_t *err)
{
    const char *s;
    rn_conf_t *node;

    /* An empty value is an empty string (--set group=), not an empty
     * document, which the loader refuses. */
    for (s = value; *s == ' ' || *s == '\t'; s++)
        ;
    if (*s == '\0') {
        node = rn_conf_new_scalar("");
        if (node == NULL)
            rn__errf(err, RN_ENOMEM, "--set %s: out of memory", path);
    } else {
        node = rn_conf_load_string(value, strlen(value), src->name, err);
        if (node == NULL && err != NULL)
            value_err(err, src->name, value);
    }
    if (node != NULL)
        set_pos_tree(node, src);
    return node;
}

/* Walks to the container that will hold the last component, creating maps
 * on the way. @returns it with *last set to the index of the last
 * component, or NULL with err set. When the rest of the path names an
 * existing key holding dots, *hit is that entry's index (else -1). */
static rn_conf_t *
walk(rn_conf_t *root, const char *path, const struct path *p, rn_conf_src_t *src, size_t *last,
     ssize_t *hit, rn_error_t *err)
{
    rn_conf_t *cur = root;
    char buf[256];
    size_t i = 0;

    *hit = -1;
    while (i + 1 < p->n) {
        rn_conf_t *next;
        size_t used = 1, idx;

        if (cur->kind == RN_CONF_MAP) {
            size_t entry = 0;

            used = match_dotted(cur, p, i, p->n, &entry);
            if (i + used == p->n) {
                *last = i;
                *hit = (ssize_t)entry;
                return cur;
            }
            if (used > 0) {
                next = cur->u.map.entries[entry].value;
            } else {
                rn_conf_t *key;

                used = 1;
                next = rn_conf_new_map();
                key = rn_conf_new_scalar(p->parts[i]);
                if (next == NULL || key == NULL) {
                    rn_conf_destroy(next);
                    rn_conf_destroy(key);
                    rn__errf(err, RN_ENOMEM, "--set %s: out of memory", path);
                    return NULL;
                }
                rn__conf_set_pos(next, src, 0, 0);
                rn__conf_set_pos(key, src, 0, 0);
                if (rn__conf_map_add(cur, key, next, err) != RN_OK)
                    return NULL;
            }
        } else if (cur->kind == RN_CONF_SEQ) {
            if (!parse_index(p->parts[i], &idx)) {
                rn__errf(err, RN_EINVAL, "--set %s: '%s' is a sequence; '%s' is not an index",
                         path, path_prefix(p, i, buf, sizeof(buf)), p->parts[i]);
                return NULL;
            }
            if (idx >= cur->u.seq.len) {
                rn__errf(err, RN_EINVAL, "--set %s: index %zu is out of range (%zu items)", path,
                         idx, cur->u.seq.len);
                return NULL;
            }
            next = cur->u.seq.items[idx];
        } else {
            next = NULL;
        }
        i += used;
        if (next == NULL || next->kind == RN_CONF_SCALAR) {
            rn__errf(err, RN_EINVAL, "--set %s: '%s' is a scalar, not a map or a sequence",
                     path, path_prefix(p, i, buf, sizeof(buf)));
            return NULL;
        }
        cur = next;
    }
    *last = i;
    return cur;
}

rn_code_t
rn_conf_set_path(rn_conf_t *root, const char *path, const char *value, rn_error_t *err)
{
    struct path p;
    rn_conf_src_t *src = NULL;
    rn_conf_t *cur, *node = NULL;
    char name[RN_ERROR_MSG_MAX];
    size_t last, idx;
    ssize_t hit;
    rn_code_t rc;
    rn_error_t local;

    /* The helpers report through err; keep their code even for a caller
     * that passes none. */
    if (err == NULL)
        err = &local;
    if (root == NULL || path == NULL || value == NULL)
        return rn__errf(err, RN_EINVAL, "rn_conf_set_path: needs a tree, a path and a value");
    if (root->kind == RN_CONF_SCALAR)
        return rn__errf(err, RN_EINVAL, "--set %s: the root is a scalar", path);
    rc = path_split(path, &p, err);
    if (rc != RN_OK)
        goto out;
    snprintf(name, sizeof(name), "--set %s", path);
    src = rn__conf_src_new(name);
    if (src == NULL) {
        rc = rn__errf(err, RN_ENOMEM, "--set %s: out of memory", path);
        goto out;
    }
    /* Parse before walking: walking creates missing maps, and a value that
     * does not parse must leave the tree as it was. */
    node = parse_value(path, value, src, err);
    if (node == NULL) {
        rc = err->code;
        goto out;
    }
    cur = walk(root, path, &p, src, &last, &hit, err);
    if (cur == NULL) {
        rn_conf_destroy(node);
        rc = err->code;
        goto out;
    }
    if (cur->kind == RN_CONF_MAP) {
        ssize_t i = hit >= 0 ? hit : map_find(cur, p.parts[last]);

        if (i >= 0) {
            rn_conf_destroy(cur->u.map.entries[i].value);
            cur->u.map.entries[i].value = node;
            rc = RN_OK;
        } else {
            rn_conf_t *key = rn_conf_new_scalar(p.parts[last]);

            if (key == NULL) {
                rn_conf_destroy(node);
                rc = rn__errf(err, RN_ENOMEM, "--set %s: out of memory", path);
                goto out;
            }
            rn__conf_set_pos(key, src, 0, 0);
            rc = rn__conf_map_add(cur, key, node, err);
        }
    } else if (!parse_index(p.parts[last], &idx)) {
        rn_conf_destroy(node);
        rc = rn__errf(err, RN_EINVAL, "--set %s: '%s' is a sequence; '%s' is not an index", path,
                      path_prefix(&p, last, name, sizeof(name)), p.parts[last]);
    } else if (idx < cur->u.seq.len) {
        rn_conf_destroy(cur->u.seq.items[idx]);
        cur->u.seq.items[idx] = node;
        rc = RN_OK;
    } else if (idx == cur->u.seq.len) {
        /* One past the end appends, so --set can grow a list of inputs. */
        rc = rn_conf_seq_append(cur, node, err);
    } else {
        rn_conf_destroy(node);
        rc = rn__errf(err, RN_EINVAL, "--set %s: index %zu is out of range (%zu items)", path,
                      idx, cur->u.seq.len);
    }
out:
    rn__conf_src_unref(src);
    path_fini(&p);
    return rc;
}
