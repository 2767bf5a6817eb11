/*
 * stream/conf_yaml.c: reads a YAML document into a configuration tree with
 * libyaml's event parser. The only file that sees libyaml's types and error
 * strings (STYLE.md rule 9).
 *
 * Design: events are folded into the tree with an explicit stack of open
 * maps and sequences, so nesting depth costs heap rather than C stack (and is
 * capped at RN_CONF_MAX_DEPTH because rn_conf_destroy recurses). A node is
 * attached to its parent when it is complete: a scalar at once, a map or
 * sequence at its end event. In a map the loader alternates key and value;
 * a key must be a scalar and must not repeat.
 *
 * What is refused, and why: duplicate keys (YAML says they are an error;
 * silently keeping one of them hides typos in large job files), anchors and
 * aliases (a shared subtree would make positions ambiguous and the tree a
 * DAG; job files are small enough to write values out), application tags,
 * several documents in one file, and an empty file.
 *
 * libyaml marks are 0-based; positions and messages are 1-based, as editors
 * and compilers print them.
 *
 * @thread any; nothing shared.
 */
#include "stream/conf.h"

#include <errno.h>
#include <yaml.h>

#define RN_CONF_MAX_DEPTH 256

struct frame {
    rn_conf_t *node; /* an open map or sequence */
    rn_conf_t *key;  /* a map's key waiting for its value, or NULL */
};

struct loader {
    yaml_parser_t parser;
    const char *name;
    const char *text;
    size_t len;
    rn_conf_src_t *src;
    struct frame *stack;
    size_t depth, cap;
    rn_conf_t *root;
    int docs;
    rn_error_t *err;
};

static rn_code_t RN_PRINTF(4, 5)
lerr(struct loader *ld, rn_code_t code, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[RN_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rn__errf(ld->err, code, "%s:%zu:%zu: %s", ld->name, mark.line + 1, mark.column + 1,
                    msg);
}

/* The byte at a 0-based line and column (counted in characters), or -1. */
static int
char_at(const struct loader *ld, size_t line, size_t column)
{
    size_t i = 0, l = 0, c = 0;

    while (i < ld->len && l < line) {
        if (ld->text[i++] == '\n')
            l++;
    }
    while (i < ld->len && c < column && ld->text[i] != '\n') {
        i++;
        /* Skip UTF-8 continuation bytes: a column is a character. */
        while (i < ld->len && ((unsigned char)ld->text[i] & 0xC0) == 0x80)
            i++;
        c++;
    }
    return i < ld->len ? (unsigned char)ld->text[i] : -1;
}

/* Converts libyaml's parse error into "NAME:LINE:COL: problem", with a hint
 * for the mistakes people make most. */
static rn_code_t
syntax_error(struct loader *ld)
{
    yaml_parser_t *pr = &ld->parser;
    const char *problem = pr->problem != NULL ? pr->problem : "syntax error";
    const char *hint = "";
    char ctx[160] = "";
    yaml_mark_t mark = pr->problem_mark;

    if (pr->error == YAML_MEMORY_ERROR)
        return rn__errf(ld->err, RN_ENOMEM, "%s: out of memory reading YAML", ld->name);
    if (pr->error == YAML_READER_ERROR) {
        /* Reader errors (bad encoding, control characters) carry a byte
         * offset, not a mark. */
        size_t i;

        memset(&mark, 0, sizeof(mark));
        for (i = 0; i < pr->problem_offset && i < ld->len; i++) {
            if (ld->text[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else if (((unsigned char)ld->text[i] & 0xC0) != 0x80) {
                mark.column++;
            }
        }
        return lerr(ld, RN_EINVAL, mark, "%s (byte 0x%02x)", problem, (unsigned)pr->problem_value);
    }
    if (strcmp(problem, "found character that cannot start any token") == 0 &&
        char_at(ld, mark.line, mark.column) == '\t')
        return lerr(ld, RN_EINVAL, mark, "tab character: YAML is indented with spaces only");
    if (strstr(problem, "mapping values are not allowed") != NULL)
        hint = "; check the indentation, or quote a value that holds ': '";
    else if (strstr(problem, "did not find expected key") != NULL ||
             strstr(problem, "did not find expected '-'") != NULL)
        hint = "; check the indentation";
    if (pr->context != NULL)
        snprintf(ctx, sizeof(ctx), " (%s at %zu:%zu)", pr->context, pr->context_mark.line + 1,
                 pr->context_mark.column + 1);
    return lerr(ld, RN_EINVAL, mark, "%s%s%s", problem, hint, ctx);
}


/* Refuses anchors and application tags on a node. *str_tag is set when the
 * node is tagged !!str, which makes a plain scalar a string. */
static rn_code_t
check_props(struct loader *ld, const yaml_event_t *ev, const yaml_char_t *anchor,
            const yaml_char_t *tag, bool *str_tag)
{
    *str_tag = false;
    if (anchor != NULL)
        return lerr(ld, RN_EINVAL, ev->start_mark,
                    "anchors (&%s) are not supported; write the value out in full",
                    (const char *)anchor);
    if (tag != NULL) {
        if (strncmp((const char *)tag, "tag:yaml.org,2002:", 18) != 0)
            return lerr(ld, RN_EINVAL, ev->start_mark, "tag '%s' is not supported",
                        (const char *)tag);
        *str_tag = strcmp((const char *)tag, "tag:yaml.org,2002:str") == 0;
    }
    return RN_OK;
}

/* Places a complete node: the root, an item of the open sequence, or a key
 * or value of the open map. @param node consumed. */
static rn_code_t
attach(struct loader *ld, rn_conf_t *node, yaml_mark_t mark)
{
    struct frame *top;
    const rn_conf_t *first;

    if (ld->depth == 0) {
        ld->root = node;
        return RN_OK;
    }
    top = &ld->stack[ld->depth - 1];
    if (rn_conf_kind(top->node) == RN_CONF_SEQ)
        return rn_conf_seq_append(top->node, node, ld->err);
    if (top->key != NULL) {
        rn_conf_t *key = top->key;

        top->key = NULL;
        return rn__conf_map_add(top->node, key, node, ld->err);
    }
    if (rn_conf_kind(node) != RN_CONF_SCALAR) {
        const char *what = rn__conf_kind_name(node);

        rn_conf_destroy(node);
        return lerr(ld, RN_EINVAL, mark, "a map key must be a scalar, not %s", what);
    }
    first = rn__conf_key_node(top->node, rn_conf_scalar(node));
    if (first != NULL) {
        rn_code_t rc = lerr(ld, RN_EINVAL, mark, "duplicate key '%s' (first at %d:%d)",
                            rn_conf_scalar(node), rn_conf_line(first), rn_conf_col(first));
        rn_conf_destroy(node);
        return rc;
    }
    top->key = node;
    return RN_OK;
}

static rn_code_t
on_scalar(struct loader *ld, const yaml_event_t *ev)
{
    const char *value = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool str_tag;
    rn_conf_t *node;
    rn_code_t rc;

    rc = check_props(ld, ev, ev->data.scalar.anchor, ev->data.scalar.tag, &str_tag);
    if (rc != RN_OK)
        return rc;
    if (memchr(value, '\0', len) != NULL)
        return lerr(ld, RN_EINVAL, ev->start_mark, "a NUL character in a value is not supported");
    /* Quoted means "not plain": block scalars (| and >) are strings too. */
    node = rn__conf_new_scalar_n(value, len,
                                 str_tag || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE);
    if (node == NULL)
        return rn__errf(ld->err, RN_ENOMEM, "%s: out of memory", ld->name);
    rn__conf_set_pos(node, ld->src, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1);
    return attach(ld, node, ev->start_mark);
}

static rn_code_t
on_start(struct loader *ld, const yaml_event_t *ev, rn_conf_kind_t kind)
{
    const yaml_char_t *anchor, *tag;
    bool str_tag;
    rn_conf_t *node;
    rn_code_t rc;

    if (kind == RN_CONF_MAP) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    } else {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    }
    rc = check_props(ld, ev, anchor, tag, &str_tag);
    if (rc != RN_OK)
        return rc;
    if (ld->depth >= RN_CONF_MAX_DEPTH)
        return lerr(ld, RN_EINVAL, ev->start_mark, "nesting is deeper than %d levels",
                    RN_CONF_MAX_DEPTH);
    if (ld->depth == ld->cap) {
        size_t ncap = ld->cap ? ld->cap * 2 : 16;
        struct frame *s = rn_realloc(ld->stack, ncap * sizeof(*s));

        if (s == NULL)
            return rn__errf(ld->err, RN_ENOMEM, "%s: out of memory", ld->name);
        ld->stack = s;
        ld->cap = ncap;
    }
    node = kind == RN_CONF_MAP ? rn_conf_new_map() : rn_conf_new_seq();
    if (node == NULL)
        return rn__errf(ld->err, RN_ENOMEM, "%s: out of memory", ld->name);
    rn__conf_set_pos(node, ld->src, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1);
    ld->stack[ld->depth].node = node;
    ld->stack[ld->depth].key = NULL;
    ld->depth++;
    return RN_OK;
}

static rn_code_t
on_end(struct loader *ld)
{
    struct frame *top = &ld->stack[ld->depth - 1];
    rn_conf_t *node = top->node;
    yaml_mark_t mark;

    /* libyaml always pairs keys with values (an absent value is an empty
     * scalar), so a pending key here would be a libyaml bug. */
    rn_assert(top->key == NULL);
    ld->depth--;
    memset(&mark, 0, sizeof(mark));
    mark.line = (size_t)rn_conf_line(node) - 1;
    mark.column = (size_t)rn_conf_col(node) - 1;
    return attach(ld, node, mark);
}

/* Handles one event. Sets *done at the end of the stream. */
static rn_code_t
on_event(struct loader *ld, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return RN_OK;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return RN_OK;
    case YAML_DOCUMENT_START_EVENT:
        if (ld->docs++ > 0)
            return lerr(ld, RN_EINVAL, ev->start_mark,
                        "a second YAML document ('---'); a job file holds exactly one");
        return RN_OK;
    case YAML_ALIAS_EVENT:
        return lerr(ld, RN_EINVAL, ev->start_mark,
                    "aliases (*%s) are not supported; write the value out in full",
                    (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        return on_scalar(ld, ev);
    case YAML_MAPPING_START_EVENT:
        return on_start(ld, ev, RN_CONF_MAP);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(ld, ev, RN_CONF_SEQ);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return on_end(ld);
    }
    return RN_OK;
}

static void
loader_fini(struct loader *ld)
{
    size_t i;

    for (i = 0; i < ld->depth; i++) {
        rn_conf_destroy(ld->stack[i].key);
        rn_conf_destroy(ld->stack[i].node);
    }
    rn_free(ld->stack);
    rn__conf_src_unref(ld->src);
    yaml_parser_delete(&ld->parser);
}

rn_conf_t *
rn_conf_load_string(const char *text, size_t len, const char *name, rn_error_t *err)
{
    struct loader ld;
    yaml_event_t ev;
    bool done = false;
    rn_code_t rc = RN_OK;

    memset(&ld, 0, sizeof(ld));
    ld.name = name != NULL ? name : "<string>";
    ld.text = text != NULL ? text : "";
    ld.len = text != NULL ? len : 0;
    ld.err = err;
    if (!yaml_parser_initialize(&ld.parser)) {
        rn__errf(err, RN_ENOMEM, "%s: out of memory", ld.name);
        return NULL;
    }
    ld.src = rn__conf_src_new(ld.name);
    if (ld.src == NULL) {
        rn__errf(err, RN_ENOMEM, "%s: out of memory", ld.name);
        yaml_parser_delete(&ld.parser);
        return NULL;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)ld.text, ld.len);
    while (!done && rc == RN_OK) {
        if (!yaml_parser_parse(&ld.parser, &ev)) {
            rc = syntax_error(&ld);
            break;
        }
        rc = on_event(&ld, &ev, &done);
        yaml_event_delete(&ev);
    }
    if (rc == RN_OK && (ld.root == NULL || (rn_conf_kind(ld.root) == RN_CONF_SCALAR &&
                                            !rn_conf_quoted(ld.root) &&
                                            rn_conf_scalar(ld.root)[0] == '\0'))) {
        /* No document, or a document with nothing in it ("---" alone). */
        rc = rn__errf(err, RN_EINVAL, "%s: the document is empty (no YAML content)", ld.name);
    }
    if (rc != RN_OK) {
        rn_conf_destroy(ld.root);
        ld.root = NULL;
    }
    loader_fini(&ld);
    return ld.root;
}

rn_conf_t *
rn_conf_load_file(const char *path, rn_error_t *err)
{
    FILE *f;
    char *buf = NULL, *p;
    size_t len = 0, cap = 0, n;
    rn_conf_t *root;

    f = fopen(path, "rb");
    if (f == NULL) {
        rn__errf(err, RN_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* Read the whole file: job files are small, and having the text lets
     * syntax errors look at the offending character. */
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            p = rn_realloc(buf, cap);
            if (p == NULL) {
                rn_free(buf);
                fclose(f);
                rn__errf(err, RN_ENOMEM, "%s: out of memory reading the file", path);
                return NULL;
            }
            buf = p;
        }
        errno = 0;
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        /* A signal caught while reading (runnel catches SIGTERM from the
         * start, to stop cleanly) interrupts read(): read on. */
        if (ferror(f) && errno == EINTR) {
            clearerr(f);
            continue;
        }
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;

        rn_free(buf);
        fclose(f);
        rn__errf(err, RN_EIO, "%s: cannot read: %s", path, strerror(e));
        return NULL;
    }
    fclose(f);
    root = rn_conf_load_string(buf, len, path, err);
    rn_free(buf);
    return root;
}
