/*
 * tests/plugins/ext_format.c: record formats from a plugin (runnel/format.h),
 * for integration.plugin_format.
 *
 * "kv": one record is `name=value|name=value...`, fields by name in any
 * order; a field that is absent (or null, when encoding) is null; a name
 * the schema does not have is ignored. In names and values a backslash
 * escapes '|', '=' and '\' and writes a line break as \n and a carriage
 * return as \r, so that a record is one line. A string field takes the
 * value as it is (`name=` is the empty string); any other field takes it
 * by its look: true/false a bool, a decimal integer an int, another number
 * a float, anything else a string, and runnel converts it or refuses it
 * (`id=abc` is a bad record that runnel names). Floats are written in the
 * shortest form that reads back to the same double ("3" for 3.0: an int,
 * which runnel widens into the float field).
 *
 * "kvdec" decodes as kv and cannot encode (a sink refuses it); a record
 * that begins with "#fail" makes it fail with RN_EINVAL, not RN_EDATA:
 * the job stops, whatever the source's on_error says. "kvenc" encodes as
 * kv and cannot decode (a source refuses it).
 *
 * It links nothing of runnel's: the rn_fmt_* symbols are the program's.
 */
#include <runnel/plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAX 4096 /* longest name or value, unescaped */

static int
fail(rn_error_t *err, int code, const char *msg, const char *s, size_t len)
{
    if (err != NULL) {
        err->code = code;
        snprintf(err->msg, sizeof(err->msg), "kv: %s: '%.*s'", msg, (int)(len > 60 ? 60 : len),
                 s);
    }
    return code;
}

/* The end of the current part: the first unescaped stop byte, or end. */
static const char *
part_end(const char *p, const char *end, char stop)
{
    while (p < end && *p != stop)
        p += (*p == '\\' && p + 1 < end) ? 2 : 1;
    return p;
}

/* Unescapes s[0..len) into out (KV_MAX bytes). @returns the length, or -1
 * with err filled. */
static long
unescape(const char *s, size_t len, char *out, rn_error_t *err)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\') {
            if (++i == len)
                return fail(err, RN_EDATA, "a backslash ends the text", s, len), -1;
            switch (s[i]) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case '\\':
            case '|':
            case '=': c = s[i]; break;
            default: return fail(err, RN_EDATA, "unknown escape", s + i - 1, 2), -1;
            }
        }
        if (n == KV_MAX)
            return fail(err, RN_EDATA, "longer than 4096 bytes", s, len), -1;
        out[n++] = c;
    }
    return (long)n;
}

/* A value of a field that is not a string, by its look. */
static void
set_by_look(rn_fmt_t *r, int f, const char *v, size_t len)
{
    char buf[64], *e;
    if (len == 4 && memcmp(v, "true", 4) == 0) {
        rn_fmt_set_bool(r, f, true);
        return;
    }
    if (len == 5 && memcmp(v, "false", 5) == 0) {
        rn_fmt_set_bool(r, f, false);
        return;
    }
    if (len > 0 && len < sizeof(buf)) {
        memcpy(buf, v, len);
        buf[len] = '\0';
        errno = 0;
        long long i = strtoll(buf, &e, 10);
        if (*e == '\0' && errno == 0) {
            rn_fmt_set_int(r, f, i);
            return;
        }
        double d = strtod(buf, &e);
        if (*e == '\0') {
            rn_fmt_set_float(r, f, d);
            return;
        }
    }
    rn_fmt_set_string(r, f, v, len);
}

static int
kv_decode(rn_fmt_t *r, const char *data, size_t len, rn_error_t *err)
{
    static _Thread_local char name[KV_MAX + 1], val[KV_MAX];
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *pe = part_end(p, end, '|');
        const char *eq = part_end(p, pe, '=');
        if (eq == pe)
            return fail(err, RN_EDATA, "a field without '='", p, (size_t)(pe - p));
        long nl = unescape(p, (size_t)(eq - p), name, err);
        if (nl < 0)
            return RN_EDATA;
        name[nl] = '\0';
        long vl = unescape(eq + 1, (size_t)(pe - eq - 1), val, err);
        if (vl < 0)
            return RN_EDATA;
        int f = rn_fmt_field(r, name);
        if (f >= 0 && rn_fmt_field_type(r, f) == RN_TYPE_STRING)
            rn_fmt_set_string(r, f, val, (size_t)vl);
        else if (f >= 0)
            set_by_look(r, f, val, (size_t)vl);
        p = pe < end ? pe + 1 : pe;
    }
    return RN_OK;
}

static int
kvdec_decode(rn_fmt_t *r, const char *data, size_t len, rn_error_t *err)
{
    if (len >= 5 && memcmp(data, "#fail", 5) == 0)
        return fail(err, RN_EINVAL, "asked to fail", data, len);
    return kv_decode(r, data, len, err);
}

static int
put_escaped(rn_fmt_t *r, const char *s, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;
        switch (s[i]) {
        case '\\': esc = "\\\\"; break;
        case '|': esc = "\\|"; break;
        case '=': esc = "\\="; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        int rc = rn_fmt_write(r, s + run, i - run);
        if (rc == RN_OK)
            rc = rn_fmt_write(r, esc, 2);
        if (rc != RN_OK)
            return rc;
        run = i + 1;
    }
    return rn_fmt_write(r, s + run, len - run);
}

/* The shortest text that reads back to the same double; a whole number
 * without an exponent ("30", not "3e+01"). @returns its length. */
static int
fmt_float(char *buf, size_t size, double f)
{
    int n = 0;
    if (f == trunc(f) && fabs(f) < 1e15)
        return snprintf(buf, size, "%.0f", f);
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, f);
        if (isnan(f) || strtod(buf, NULL) == f)
            break;
    }
    return n;
}

static int
kv_encode(rn_fmt_t *r, rn_error_t *err)
{
    char num[40];
    bool first = true;
    (void)err;
    for (int i = 0; i < rn_fmt_nfields(r); i++) {
        const rn_val_t *v = rn_fmt_get(r, i);
        const char *name = rn_fmt_field_name(r, i);
        int rc;
        if (v->null)
            continue;
        if ((!first && (rc = rn_fmt_write(r, "|", 1)) != RN_OK) ||
            (rc = put_escaped(r, name, strlen(name))) != RN_OK ||
            (rc = rn_fmt_write(r, "=", 1)) != RN_OK)
            return rc;
        first = false;
        switch (rn_fmt_field_type(r, i)) {
        case RN_TYPE_STRING: rc = put_escaped(r, v->u.s, v->len); break;
        case RN_TYPE_BOOL: rc = rn_fmt_write(r, v->u.b ? "true" : "false", v->u.b ? 4 : 5); break;
        case RN_TYPE_FLOAT: {
            int n = fmt_float(num, sizeof(num), v->u.f);
            rc = rn_fmt_write(r, num, (size_t)n);
            break;
        }
        default: {
            int n = snprintf(num, sizeof(num), "%" PRId64, v->u.i);
            rc = rn_fmt_write(r, num, (size_t)n);
            break;
        }
        }
        if (rc != RN_OK)
            return rc;
    }
    return RN_OK;
}

static const rn_format_fn_t kv = {
    .size = sizeof(rn_format_fn_t),
    .name = "kv",
    .decode = kv_decode,
    .encode = kv_encode,
};

static const rn_format_fn_t kvdec = {
    .size = sizeof(rn_format_fn_t),
    .name = "kvdec",
    .decode = kvdec_decode,
};

static const rn_format_fn_t kvenc = {
    .size = sizeof(rn_format_fn_t),
    .name = "kvenc",
    .encode = kv_encode,
};

int
runnel_plugin_init(rn_plugin_t *p, rn_error_t *err)
{
    int rc = rn_plugin_register_format(p, RN_ABI_VERSION, &kv, err);
    if (rc == RN_OK)
        rc = rn_plugin_register_format(p, RN_ABI_VERSION, &kvdec, err);
    if (rc == RN_OK)
        rc = rn_plugin_register_format(p, RN_ABI_VERSION, &kvenc, err);
    return rc;
}
