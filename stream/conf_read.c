/*
 * stream/conf_read.c: typed reading of configuration scalars (integers,
 * floats, booleans, durations, sizes, enums, string lists), key checking and
 * did-you-mean suggestions.
 *
 * Design: scalars stay text in the tree; a type is given when a component
 * asks for one, so the same tree serves every component and plugins. Every
 * error carries the position of the node at fault ("FILE:LINE:COL: key 'x':
 * expected ..., got 'y'"), since the user fixes a file, not a C struct.
 *
 * Quoting: a typed reader accepts a quoted scalar as well ("8" for an int).
 * The key asked for a number, so the quotes cannot mean "keep this a
 * string"; the quoted flag matters only where the type comes from the value
 * itself (literals, plugin config).
 *
 * Parsing is done by hand rather than with strtoll/strtod: those accept
 * leading blanks, locale-dependent forms and hex floats, and report
 * overflow through errno.
 *
 * @thread any (plan time); no state.
 */
#include "stream/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <strings.h>

/* ---- errors ----------------------------------------------------------- */

rn_code_t
rn__conf_err(rn_error_t *err, rn_code_t code, const rn_conf_t *node, const char *fmt, ...)
{
    char msg[RN_ERROR_MSG_MAX];
    const char *file = node != NULL ? rn_conf_file(node) : NULL;
    va_list ap;

    if (err == NULL)
        return code;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (file == NULL)
        return rn__errf(err, code, "%s", msg);
    if (rn_conf_line(node) <= 0)
        return rn__errf(err, code, "%s: %s", file, msg);
    return rn__errf(err, code, "%s:%d:%d: %s", file, rn_conf_line(node), rn_conf_col(node), msg);
}


/* ---- did you mean ----------------------------------------------------- */

#define DYM_MAX 64

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions, the commonest typo), ignoring ASCII case. */
static size_t
edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t rows[3][DYM_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2], *t;
    size_t i, j;

    for (j = 0; j <= lb; j++)
        prev[j] = j;
    for (i = 1; i <= la; i++) {
        cur[0] = i;
        for (j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t v = prev[j] + 1;

            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
        t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *
rn__did_you_mean(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, lw, lc, limit, d;

    if (word == NULL || candidates == NULL)
        return NULL;
    lw = strlen(word);
    if (lw == 0 || lw > DYM_MAX)
        return NULL;
    for (; *candidates != NULL; candidates++) {
        lc = strlen(*candidates);
        if (lc == 0 || lc > DYM_MAX)
            continue;
        /* A third of the longer word: "paralelism" finds "parallelism",
         * while "x" does not find "type". */
        limit = (lw > lc ? lw : lc) / 3;
        if (limit < 1)
            limit = 1;
        d = edit_distance(word, lw, *candidates, lc);
        if (d <= limit && d < best_d) {
            best = *candidates;
            best_d = d;
        }
    }
    return best;
}

/* Appends "a, b, c" (the choices) to buf. */
static void
join_choices(char *buf, size_t size, const char *const *choices)
{
    size_t used = 0;
    size_t i;

    buf[0] = '\0';
    for (i = 0; choices[i] != NULL && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", choices[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* ---- maps --------------------------------------------------------------- */

rn_code_t
rn__conf_check_keys(const rn_conf_t *map, const char *const *allowed, const char *what,
                    rn_error_t *err)
{
    size_t i, k;

    if (map == NULL)
        return RN_OK;
    if (rn_conf_kind(map) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, map, "%s must be a map, got %s", what,
                            rn__conf_kind_name(map));
    for (i = 0; i < rn_conf_len(map); i++) {
        const char *key = rn_conf_key_at(map, i);
        const char *hint;
        char list[256];

        for (k = 0; allowed[k] != NULL; k++) {
            if (strcmp(key, allowed[k]) == 0)
                break;
        }
        if (allowed[k] != NULL)
            continue;
        hint = rn__did_you_mean(key, allowed);
        if (hint != NULL)
            return rn__conf_err(err, RN_EINVAL, rn_conf_key_node_at(map, i),
                                "unknown key '%s' in %s; did you mean '%s'?", key, what, hint);
        join_choices(list, sizeof(list), allowed);
        return rn__conf_err(err, RN_EINVAL, rn_conf_key_node_at(map, i),
                            "unknown key '%s' in %s (known keys: %s)", key, what, list);
    }
    return RN_OK;
}

const rn_conf_t *
rn__conf_require(const rn_conf_t *map, const char *key, const char *what, rn_error_t *err)
{
    const rn_conf_t *node;

    if (map != NULL && rn_conf_kind(map) != RN_CONF_MAP) {
        rn__conf_err(err, RN_EINVAL, map, "%s must be a map, got %s", what, rn__conf_kind_name(map));
        return NULL;
    }
    node = rn_conf_get(map, key);
    if (node == NULL)
        rn__conf_err(err, RN_EINVAL, map, "missing required key '%s' in %s", key, what);
    return node;
}

/* The scalar under key: *node is NULL when the key is absent (RN_OK), else
 * the scalar; anything but a scalar is an error naming what was expected. */
static rn_code_t
get_scalar(const rn_conf_t *map, const char *key, const char *expected, const rn_conf_t **node,
           rn_error_t *err)
{
    *node = NULL;
    if (map == NULL)
        return RN_OK;
    if (rn_conf_kind(map) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, map, "expected a map holding '%s', got %s", key,
                            rn__conf_kind_name(map));
    *node = rn_conf_get(map, key);
    if (*node != NULL && rn_conf_kind(*node) != RN_CONF_SCALAR)
        return rn__conf_err(err, RN_EINVAL, *node, "key '%s': expected %s, got %s", key,
                            expected, rn__conf_kind_name(*node));
    return RN_OK;
}

/* "got 'two'", or "got an empty value" for a key written with no value. */
#define GOT_FMT "got %s%s%s"
#define GOT_ARGS(s) (s)[0] ? "'" : "", (s)[0] ? (s) : "an empty value", (s)[0] ? "'" : ""

/* ---- scalars ------------------------------------------------------------ */

rn_code_t
rn__conf_str(const rn_conf_t *map, const char *key, const char *dflt, const char **out,
             rn_error_t *err)
{
    const rn_conf_t *node;
    rn_code_t rc = get_scalar(map, key, "a string", &node, err);

    if (rc != RN_OK)
        return rc;
    *out = node != NULL ? rn_conf_scalar(node) : dflt;
    return RN_OK;
}

rn_code_t
rn__conf_listen(const rn_conf_t *map, const char *key, const char *dflt, const char **out,
                rn_error_t *err)
{
    const rn_conf_t *node;
    rn_code_t rc = get_scalar(map, key, "HOST:PORT", &node, err);
    const char *text, *colon, *p;
    char host[INET6_ADDRSTRLEN + 8];
    unsigned char addr[sizeof(struct in6_addr)];
    long port = 0;

    if (rc != RN_OK)
        return rc;
    text = node != NULL ? rn_conf_scalar(node) : dflt;
    *out = text;
    colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0')
        return rn__conf_err(err, RN_EINVAL, node,
                            "key '%s': expected HOST:PORT, such as 127.0.0.1:8081, got '%s'", key,
                            text);
    for (p = colon + 1; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p) || port > 65535)
            break;
        port = port * 10 + (*p - '0');
    }
    if (*p != '\0' || port < 1 || port > 65535)
        return rn__conf_err(err, RN_EINVAL, node,
                            "key '%s': the port must be a number from 1 to 65535, got '%s'", key,
                            colon + 1);
    if ((size_t)(colon - text) >= sizeof(host) ||
        (memcpy(host, text, (size_t)(colon - text)), host[colon - text] = '\0',
         inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1))
        return rn__conf_err(err, RN_EINVAL, node,
                            "key '%s': '%.*s' is not an IP address (such as 127.0.0.1 or ::1)",
                            key, (int)(colon - text), text);
    return RN_OK;
}

/* Parses a YAML 1.2 core-schema integer: [-+]?[0-9]+, 0x[0-9a-fA-F]+ or
 * 0o[0-7]+. @returns 0, -1 when not an integer, -2 on overflow. */
static int
parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    unsigned base = 10;
    uint64_t v = 0, limit;
    const char *p = s;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && p == s) {
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
    }
    if (*p == '\0')
        return -1;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p != '\0'; p++) {
        unsigned d;

        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && isxdigit((unsigned char)*p))
            d = (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
        else
            return -1;
        if (d >= base)
            return -1;
        if (v > (limit - d) / base)
            return -2;
        v = v * base + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

rn_code_t
rn__conf_int(const rn_conf_t *map, const char *key, int64_t dflt, int64_t *out, rn_error_t *err)
{
    const rn_conf_t *node;
    const char *s;
    int64_t v;
    int r;
    rn_code_t rc = get_scalar(map, key, "an integer", &node, err);

    if (rc != RN_OK)
        return rc;
    if (node == NULL) {
        *out = dflt;
        return RN_OK;
    }
    s = rn_conf_scalar(node);
    r = parse_int(s, &v);
    if (r == -2)
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': integer '%s' is out of range", key,
                            s);
    if (r != 0)
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': expected an integer, " GOT_FMT, key,
                            GOT_ARGS(s));
    *out = v;
    return RN_OK;
}

/* Parses a YAML 1.2 core-schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)
 * ([eE][-+]?[0-9]+)?, [-+]?.inf or .nan (any of the three cases).
 * @returns 0, -1 when not a number, -2 on overflow. */
static int
parse_float(const char *s, double *out)
{
    const char *p = s, *num;
    bool neg = false, digits = false;
    char *end;
    double v;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (p == s && (strcmp(p, ".nan") == 0 || strcmp(p, ".NaN") == 0 || strcmp(p, ".NAN") == 0)) {
        *out = NAN;
        return 0;
    }
    num = p;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits = true;
        }
    }
    if (!digits)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p != '\0')
        return -1;
    errno = 0;
    v = strtod(num, &end);
    if (errno == ERANGE && isinf(v))
        return -2;
    *out = neg ? -v : v;
    return 0;
}

rn_code_t
rn__conf_float(const rn_conf_t *map, const char *key, double dflt, double *out, rn_error_t *err)
{
    const rn_conf_t *node;
    const char *s;
    double v;
    int r;
    rn_code_t rc = get_scalar(map, key, "a number", &node, err);

    if (rc != RN_OK)
        return rc;
    if (node == NULL) {
        *out = dflt;
        return RN_OK;
    }
    s = rn_conf_scalar(node);
    r = parse_float(s, &v);
    if (r == -2)
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': number '%s' is out of range", key,
                            s);
    if (r != 0)
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': expected a number, " GOT_FMT, key,
                            GOT_ARGS(s));
    *out = v;
    return RN_OK;
}

rn_code_t
rn__conf_bool(const rn_conf_t *map, const char *key, bool dflt, bool *out, rn_error_t *err)
{
    const rn_conf_t *node;
    const char *s;
    rn_code_t rc = get_scalar(map, key, "true or false", &node, err);

    if (rc != RN_OK)
        return rc;
    if (node == NULL) {
        *out = dflt;
        return RN_OK;
    }
    s = rn_conf_scalar(node);
    /* The YAML 1.2 core schema: yes/no/on/off are strings there, and
     * guessing them would make "country: no" a boolean. */
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        *out = true;
        return RN_OK;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
        *out = false;
        return RN_OK;
    }
    return rn__conf_err(err, RN_EINVAL, node, "key '%s': expected true or false, " GOT_FMT, key,
                        GOT_ARGS(s));
}

/* ---- durations and sizes ------------------------------------------------- */

enum unit_rc { UNIT_OK = 0, UNIT_SYNTAX, UNIT_NEGATIVE, UNIT_RANGE, UNIT_NO_UNIT };

/* Reads decimal digits into *v. @returns chars read, or -1 on overflow. */
static int
read_digits(const char **p, uint64_t *v)
{
    int n = 0;

    *v = 0;
    while (isdigit((unsigned char)**p)) {
        unsigned d = (unsigned)(**p - '0');

        if (*v > (UINT64_MAX - d) / 10)
            return -1;
        *v = *v * 10 + d;
        (*p)++;
        n++;
    }
    return n;
}

static enum unit_rc
parse_duration(const char *text, int64_t *out)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    const char *p = text;
    uint64_t total = 0, v;
    size_t i;
    int n;

    if (*p == '-')
        return UNIT_NEGATIVE;
    if (*p == '+')
        p++;
    if (strcmp(p, "0") == 0) {
        *out = 0;
        return UNIT_OK;
    }
    /* One or more <number><unit> groups: 250ms, 1h30m. */
    do {
        n = read_digits(&p, &v);
        if (n < 0)
            return UNIT_RANGE;
        if (n == 0)
            return UNIT_SYNTAX;
        if (*p == '\0')
            return p - n == text || (p - n == text + 1 && *text == '+') ? UNIT_NO_UNIT
                                                                        : UNIT_SYNTAX;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].name);

            if (strncmp(p, units[i].name, l) == 0 && !isalpha((unsigned char)p[l]))
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return UNIT_SYNTAX;
        p += strlen(units[i].name);
        if (v > (uint64_t)INT64_MAX / units[i].ms ||
            total > (uint64_t)INT64_MAX - v * units[i].ms)
            return UNIT_RANGE;
        total += v * units[i].ms;
    } while (*p != '\0');
    *out = (int64_t)total;
    return UNIT_OK;
}

rn_code_t
rn__parse_duration_ms(const char *text, int64_t *out)
{
    return text != NULL && parse_duration(text, out) == UNIT_OK ? RN_OK : RN_EINVAL;
}

rn_code_t
rn__conf_duration_ms(const rn_conf_t *map, const char *key, int64_t dflt, int64_t *out,
                     rn_error_t *err)
{
    const rn_conf_t *node;
    const char *s;
    int64_t v = 0;
    rn_code_t rc = get_scalar(map, key, "a duration", &node, err);

    if (rc != RN_OK)
        return rc;
    if (node == NULL) {
        *out = dflt;
        return RN_OK;
    }
    s = rn_conf_scalar(node);
    switch (parse_duration(s, &v)) {
    case UNIT_OK:
        *out = v;
        return RN_OK;
    case UNIT_NEGATIVE:
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': duration '%s' must not be negative",
                            key, s);
    case UNIT_RANGE:
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': duration '%s' is too large", key, s);
    case UNIT_NO_UNIT:
        return rn__conf_err(err, RN_EINVAL, node,
                            "key '%s': duration '%s' needs a unit (ms, s, m, h or d), as in '%ss'",
                            key, s, s);
    case UNIT_SYNTAX:
        break;
    }
    return rn__conf_err(err, RN_EINVAL, node,
                        "key '%s': expected a duration such as 250ms, 10s, 5m, 2h or 1d, " GOT_FMT,
                        key, GOT_ARGS(s));
}

static enum unit_rc
parse_size(const char *text, int64_t *out)
{
    static const struct {
        const char *name;
        int shift;
    } units[] = {
        {"b", 0},   {"k", 10},  {"kb", 10}, {"kib", 10}, {"m", 20},  {"mb", 20},  {"mib", 20},
        {"g", 30},  {"gb", 30}, {"gib", 30}, {"t", 40},  {"tb", 40}, {"tib", 40},
    };
    const char *p = text;
    uint64_t v;
    size_t i;
    int n;

    if (*p == '-')
        return UNIT_NEGATIVE;
    if (*p == '+')
        p++;
    n = read_digits(&p, &v);
    if (n < 0)
        return UNIT_RANGE;
    if (n == 0)
        return UNIT_SYNTAX;
    if (*p == ' ')
        p++; /* "256 MB" reads as people write it */
    if (*p == '\0') {
        if (v > (uint64_t)INT64_MAX)
            return UNIT_RANGE;
        *out = (int64_t)v;
        return UNIT_OK;
    }
    /* Units ignore case: "256mb" cannot mean megabits in a memory bound. */
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].name) == 0)
            break;
    }
    if (i == sizeof(units) / sizeof(units[0]))
        return UNIT_SYNTAX;
    if (v > ((uint64_t)INT64_MAX >> units[i].shift))
        return UNIT_RANGE;
    *out = (int64_t)(v << units[i].shift);
    return UNIT_OK;
}

rn_code_t
rn__parse_size(const char *text, int64_t *out)
{
    return text != NULL && parse_size(text, out) == UNIT_OK ? RN_OK : RN_EINVAL;
}

rn_code_t
rn__conf_size(const rn_conf_t *map, const char *key, int64_t dflt, int64_t *out, rn_error_t *err)
{
    const rn_conf_t *node;
    const char *s;
    int64_t v = 0;
    rn_code_t rc = get_scalar(map, key, "a size", &node, err);

    if (rc != RN_OK)
        return rc;
    if (node == NULL) {
        *out = dflt;
        return RN_OK;
    }
    s = rn_conf_scalar(node);
    switch (parse_size(s, &v)) {
    case UNIT_OK:
        *out = v;
        return RN_OK;
    case UNIT_NEGATIVE:
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': size '%s' must not be negative", key,
                            s);
    case UNIT_RANGE:
        return rn__conf_err(err, RN_EINVAL, node, "key '%s': size '%s' is too large", key, s);
    case UNIT_SYNTAX:
    case UNIT_NO_UNIT:
        break;
    }
    return rn__conf_err(err, RN_EINVAL, node,
                        "key '%s': expected a size such as 512, 64KB, 256MB or 1GB, " GOT_FMT, key,
                        GOT_ARGS(s));
}

/* ---- enums and lists ------------------------------------------------------ */

rn_code_t
rn__conf_enum(const rn_conf_t *map, const char *key, const char *const *choices, int dflt,
              int *out, rn_error_t *err)
{
    const rn_conf_t *node;
    const char *s, *hint;
    char list[256];
    int i;
    rn_code_t rc = get_scalar(map, key, "one of its choices", &node, err);

    if (rc != RN_OK)
        return rc;
    if (node == NULL) {
        *out = dflt;
        return RN_OK;
    }
    s = rn_conf_scalar(node);
    for (i = 0; choices[i] != NULL; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return RN_OK;
        }
    }
    join_choices(list, sizeof(list), choices);
    hint = rn__did_you_mean(s, choices);
    if (hint != NULL)
        return rn__conf_err(err, RN_EINVAL, node,
                            "key '%s': expected one of %s, " GOT_FMT "; did you mean '%s'?", key,
                            list, GOT_ARGS(s), hint);
    return rn__conf_err(err, RN_EINVAL, node, "key '%s': expected one of %s, " GOT_FMT, key, list,
                        GOT_ARGS(s));
}

rn_code_t
rn__conf_strlist(const rn_conf_t *map, const char *key, const char ***out, size_t *n,
                 rn_error_t *err)
{
    const rn_conf_t *node;
    const char **list;
    size_t i, len;

    *out = NULL;
    *n = 0;
    if (map == NULL)
        return RN_OK;
    if (rn_conf_kind(map) != RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, map, "expected a map holding '%s', got %s", key,
                            rn__conf_kind_name(map));
    node = rn_conf_get(map, key);
    if (node == NULL)
        return RN_OK;
    if (rn_conf_kind(node) == RN_CONF_MAP)
        return rn__conf_err(err, RN_EINVAL, node,
                            "key '%s': expected a name or a list of names, got a map", key);
    len = rn_conf_kind(node) == RN_CONF_SCALAR ? 1 : rn_conf_len(node);
    if (len == 0)
        return RN_OK;
    for (i = 0; rn_conf_kind(node) == RN_CONF_SEQ && i < len; i++) {
        const rn_conf_t *item = rn_conf_at(node, i);

        if (rn_conf_kind(item) != RN_CONF_SCALAR)
            return rn__conf_err(err, RN_EINVAL, item,
                                "key '%s': item %zu: expected a name, got %s", key, i + 1,
                                rn__conf_kind_name(item));
    }
    list = rn_malloc(len * sizeof(*list));
    if (list == NULL)
        return rn__conf_err(err, RN_ENOMEM, node, "key '%s': out of memory", key);
    if (rn_conf_kind(node) == RN_CONF_SCALAR) {
        list[0] = rn_conf_scalar(node);
    } else {
        for (i = 0; i < len; i++)
            list[i] = rn_conf_scalar(rn_conf_at(node, i));
    }
    *out = list;
    *n = len;
    return RN_OK;
}

const char *
rn__conf_kind_name(const rn_conf_t *node)
{
    switch (rn_conf_kind(node)) {
    case RN_CONF_MAP:
        return "a map";
    case RN_CONF_SEQ:
        return "a sequence";
    case RN_CONF_SCALAR:
        break;
    }
    return "a scalar";
}
