/*
 * stream/row.c: schemas, the batch arena and batches (see row.h).
 * @thread a batch is used by one task at a time.
 */
#include "stream/row.h"

struct rn_arena_chunk {
    struct rn_arena_chunk *next;
    size_t size;
    char data[];
};

#define ARENA_CHUNK 16384

rn_schema_t *
rn__schema_new(void)
{
    return rn_xcalloc(1, sizeof(rn_schema_t));
}

void
rn__schema_destroy(rn_schema_t *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->nfields; i++)
        rn_free(s->fields[i].name);
    rn_free(s->fields);
    rn_free(s);
}

rn_code_t
rn__schema_add(rn_schema_t *s, const char *name, rn_type_t type, rn_error_t *err)
{
    if (rn__schema_find(s, name) >= 0)
        return rn__errf(err, RN_EINVAL, "field '%s' appears twice", name);
    if (s->nfields == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->fields = rn_xrealloc(s->fields, s->cap * sizeof(rn_field_t));
    }
    s->fields[s->nfields].name = rn_xstrdup(name);
    s->fields[s->nfields].type = type;
    s->nfields++;
    return RN_OK;
}

int
rn__schema_find(const rn_schema_t *s, const char *name)
{
    for (uint32_t i = 0; i < s->nfields; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

rn_schema_t *
rn__schema_copy(const rn_schema_t *s)
{
    rn_schema_t *c = rn__schema_new();
    for (uint32_t i = 0; i < s->nfields; i++)
        rn__schema_add(c, s->fields[i].name, s->fields[i].type, NULL);
    return c;
}

void
rn__schema_format(const rn_schema_t *s, char *buf, size_t size)
{
    size_t off = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    for (uint32_t i = 0; i < s->nfields && off < size; i++) {
        int n = snprintf(buf + off, size - off, "%s%s: %s", i ? ", " : "", s->fields[i].name,
                         rn_type_name(s->fields[i].type));
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

const char *
rn_type_name(rn_type_t type)
{
    switch (type) {
    case RN_TYPE_NULL: return "null";
    case RN_TYPE_STRING: return "string";
    case RN_TYPE_INT: return "int";
    case RN_TYPE_FLOAT: return "float";
    case RN_TYPE_BOOL: return "bool";
    case RN_TYPE_TIMESTAMP: return "timestamp";
    }
    return "?";
}

int
rn_type_parse(const char *name, rn_type_t *type)
{
    static const struct {
        const char *name;
        rn_type_t type;
    } names[] = {{"string", RN_TYPE_STRING},
                 {"int", RN_TYPE_INT},
                 {"float", RN_TYPE_FLOAT},
                 {"bool", RN_TYPE_BOOL},
                 {"timestamp", RN_TYPE_TIMESTAMP}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *type = names[i].type;
            return RN_OK;
        }
    }
    return RN_ENOTFOUND;
}

/* ---- arena ---- */

void
rn__arena_init(rn_arena_t *a)
{
    memset(a, 0, sizeof(*a));
}

void
rn__arena_fini(rn_arena_t *a)
{
    rn_arena_chunk_t *c, *next;
    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        rn_free(c);
    }
    for (c = a->full; c != NULL; c = next) {
        next = c->next;
        rn_free(c);
    }
    memset(a, 0, sizeof(*a));
}

void
rn__arena_reset(rn_arena_t *a)
{
    rn_arena_chunk_t *c, *next;
    /* Keep the current chunk; drop older ones so that one large batch does
     * not pin its memory forever. */
    for (c = a->full; c != NULL; c = next) {
        next = c->next;
        rn_free(c);
    }
    a->full = NULL;
    a->used = 0;
}

void *
rn__arena_alloc(rn_arena_t *a, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    if (a->head == NULL || a->used + size > a->head->size) {
        size_t csize = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        rn_arena_chunk_t *c = rn_xmalloc(sizeof(*c) + csize);
        c->size = csize;
        c->next = NULL;
        if (a->head != NULL) {
            a->head->next = a->full;
            a->full = a->head;
        }
        a->head = c;
        a->used = 0;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    return p;
}

const char *
rn__arena_strdup(rn_arena_t *a, const char *s, size_t len)
{
    char *p = rn__arena_alloc(a, len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* ---- batches ---- */

rn_batch_t *
rn__batch_new(const rn_schema_t *schema, uint32_t cap)
{
    rn_batch_t *b = rn_xcalloc(1, sizeof(*b));
    b->schema = schema;
    b->cap = cap;
    b->width = schema->nfields ? schema->nfields : 1;
    b->vals = rn_xmalloc((size_t)cap * b->width * sizeof(rn_value_t));
    b->ts = rn_xmalloc((size_t)cap * sizeof(int64_t));
    rn__arena_init(&b->arena);
    return b;
}

void
rn__batch_destroy(rn_batch_t *b)
{
    if (b == NULL)
        return;
    rn__arena_fini(&b->arena);
    rn_free(b->vals);
    rn_free(b->ts);
    rn_free(b);
}

void
rn__batch_reset(rn_batch_t *b)
{
    b->n = 0;
    b->next = NULL;
    rn__arena_reset(&b->arena);
}

rn_value_t *
rn__batch_append(rn_batch_t *b, int64_t ts)
{
    rn_assert(b->n < b->cap);
    rn_value_t *row = RN_ROW(b, b->n);
    for (uint32_t i = 0; i < b->width; i++) {
        memset(&row[i], 0, sizeof(rn_value_t));
        row[i].null = 1;
    }
    b->ts[b->n++] = ts;
    return row;
}

void
rn__batch_own_string(rn_batch_t *b, rn_value_t *cell)
{
    if (!cell->null)
        cell->u.s = rn__arena_strdup(&b->arena, cell->u.s, cell->len);
}

void
rn__batch_copy_row(rn_batch_t *b, const rn_value_t *src, int64_t ts)
{
    rn_assert(b->n < b->cap);
    rn_value_t *row = RN_ROW(b, b->n);
    const rn_schema_t *s = b->schema;
    memcpy(row, src, b->width * sizeof(rn_value_t));
    for (uint32_t i = 0; i < s->nfields; i++)
        if (s->fields[i].type == RN_TYPE_STRING)
            rn__batch_own_string(b, &row[i]);
    b->ts[b->n++] = ts;
}

bool
rn__val_equal(rn_type_t type, const rn_value_t *a, const rn_value_t *b)
{
    return rn__val_compare(type, a, b) == 0;
}

int
rn__val_compare(rn_type_t type, const rn_value_t *a, const rn_value_t *b)
{
    switch (type) {
    case RN_TYPE_INT:
    case RN_TYPE_TIMESTAMP: return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    case RN_TYPE_FLOAT: return (a->u.f > b->u.f) - (a->u.f < b->u.f);
    case RN_TYPE_BOOL: return (int)a->u.b - (int)b->u.b;
    case RN_TYPE_STRING: {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
        if (c != 0)
            return c < 0 ? -1 : 1;
        return (a->len > b->len) - (a->len < b->len);
    }
    case RN_TYPE_NULL: return 0;
    }
    return 0;
}
