/*
 * connectors/decode_text.c: typed values from text, shared by the JSON and
 * CSV decoders: RFC 3339 timestamps, numbers and booleans from a cell, and
 * the quoted excerpt of a bad value in messages.
 *
 * Design: the text given is a (pointer, length) slice that need not be
 * NUL-terminated (a CSV cell, a JSON string), so the integer and timestamp
 * parsers are written here on slices; floats go through strtod on a small
 * stack copy. Timestamps are converted with Howard Hinnant's
 * days-from-civil formula rather than timegm(), which is not C11, depends
 * on nothing and handles years before 1970.
 *
 * @thread any; no state.
 */
#include "connectors/decode.h"

#include <errno.h>
#include <strings.h>
#include <math.h>

/* ---- numbers ---------------------------------------------------------- */

/* Parses [-+]?[0-9]+ exactly, without overflow. */
static bool
parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    /* The magnitude limit: 2^63 for negative numbers, 2^63 - 1 otherwise. */
    uint64_t lim;

    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return false;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* Negating through uint64_t avoids overflow at INT64_MIN. */
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Parses a whole slice with strtod. Refuses hex floats and empty text. */
static bool
parse_f64(const char *s, size_t len, double *out)
{
    char buf[64];
    char *end;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (buf[i] == 'x' || buf[i] == 'X')
            return false;
    errno = 0;
    *out = strtod(buf, &end);
    /* ERANGE on underflow gives a usable tiny value; only overflow fails. */
    if (end != buf + len || (errno == ERANGE && isinf(*out)))
        return false;
    return true;
}

/* An int written as a float with no fraction (3.0, 1e3) is accepted. */
static bool
float_as_i64(double f, int64_t *out)
{
    /* -2^63 is exact; 2^63 is the first value out of range. */
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != floor(f))
        return false;
    *out = (int64_t)f;
    return true;
}

static bool
parse_int_text(const char *s, size_t len, int64_t *out)
{
    double f;
    if (parse_i64(s, len, out))
        return true;
    return parse_f64(s, len, &f) && float_as_i64(f, out);
}

/* ---- timestamps --------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly n digits at s[*i]. */
static bool
digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0;
    if (*i + (size_t)n > len)
        return false;
    for (int k = 0; k < n; k++) {
        unsigned d = (unsigned char)s[*i + (size_t)k] - '0';
        if (d > 9)
            return false;
        v = v * 10 + (int)d;
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

static bool
expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

static bool
parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t i = 0;
    int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, frac = 0, off = 0;

    if (!digits(s, len, &i, 4, &year) || !expect(s, len, &i, '-') ||
        !digits(s, len, &i, 2, &mon) || !expect(s, len, &i, '-') ||
        !digits(s, len, &i, 2, &day))
        return false;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return false;
    i++;
    if (!digits(s, len, &i, 2, &hour) || !expect(s, len, &i, ':') ||
        !digits(s, len, &i, 2, &min) || !expect(s, len, &i, ':') ||
        !digits(s, len, &i, 2, &sec))
        return false;
    if (mon < 1 || mon > 12 || day < 1 ||
        day > mdays[mon - 1] + (mon == 2 && is_leap(year)) || hour > 23 || min > 59 || sec > 60)
        return false;
    if (i < len && s[i] == '.') {
        int n = 0;
        i++;
        /* Milliseconds from the first three digits; finer ones truncate. */
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
            if (n < 3)
                frac = frac * 10 + (s[i] - '0');
        if (n == 0)
            return false;
        for (; n < 3; n++)
            frac *= 10;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1, oh = 0, om = 0;
        i++;
        if (!digits(s, len, &i, 2, &oh) || !expect(s, len, &i, ':') ||
            !digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
            return false;
        off = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (i != len)
        return false;
    int64_t secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hour * 3600 +
                   min * 60 + sec - (int64_t)off * 60;
    *ms = secs * 1000 + frac;
    return true;
}

rn_code_t
rn__parse_timestamp(const char *s, size_t len, int64_t *ms)
{
    if (parse_i64(s, len, ms))
        return RN_OK;
    return parse_rfc3339(s, len, ms) ? RN_OK : RN_EDATA;
}

/* ---- UTF-8 -------------------------------------------------------------- */

size_t
rn__utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

size_t
rn__utf8_check(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        /* ASCII runs are the common case: skip them a byte at a time
         * without the sequence logic. */
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = rn__utf8_seq(u + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

/* ---- cells -------------------------------------------------------------- */

void
rn__decode_quote(char *buf, size_t size, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, n = len;
    bool cut = false;

    if (size < 8) {
        if (size > 0)
            buf[0] = '\0';
        return;
    }
    if (n > RN_DECODE_GOT_MAX) {
        n = RN_DECODE_GOT_MAX;
        /* Do not cut a UTF-8 sequence in two. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = true;
    }
    buf[o++] = '"';
    /* Room kept at the end for an escape (6), "..." (3), '"' and NUL. */
    for (size_t i = 0; i < n && o + 12 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c == '\t') {
            buf[o++] = '\\';
            buf[o++] = 't';
        } else if (c == '\r') {
            buf[o++] = '\\';
            buf[o++] = 'r';
        } else if (c < 0x20) {
            memcpy(buf + o, "\\u00", 4);
            buf[o + 4] = hex[c >> 4];
            buf[o + 5] = hex[c & 15];
            o += 6;
        } else {
            buf[o++] = (char)c;
        }
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool
parse_bool_text(const char *s, size_t len, bool *out)
{
    if (len == 4 && strncasecmp(s, "true", 4) == 0) {
        *out = true;
        return true;
    }
    if (len == 5 && strncasecmp(s, "false", 5) == 0) {
        *out = false;
        return true;
    }
    return false;
}

rn_code_t
rn__decode_text(rn_type_t type, const char *name, const char *s, size_t len, rn_value_t *out,
                rn_arena_t *arena, char *errbuf, size_t errlen)
{
    const char *t = s;
    size_t tlen = len;
    bool ok = false;

    if (type == RN_TYPE_STRING) {
        if (len > UINT32_MAX) {
            snprintf(errbuf, errlen, "field '%s': string of %zu bytes is too long", name, len);
            return RN_EDATA;
        }
        *out = rn__val_str(rn__arena_strdup(arena, s, len), (uint32_t)len);
        return RN_OK;
    }
    /* Numbers and the like may be padded with blanks in hand-written CSV. */
    while (tlen > 0 && is_blank(t[0])) {
        t++;
        tlen--;
    }
    while (tlen > 0 && is_blank(t[tlen - 1]))
        tlen--;
    *out = rn__val_int(0);
    switch (type) {
    case RN_TYPE_INT: ok = parse_int_text(t, tlen, &out->u.i); break;
    case RN_TYPE_FLOAT: ok = parse_f64(t, tlen, &out->u.f); break;
    case RN_TYPE_BOOL: ok = parse_bool_text(t, tlen, &out->u.b); break;
    case RN_TYPE_TIMESTAMP:
        ok = parse_int_text(t, tlen, &out->u.i) || rn__parse_timestamp(t, tlen, &out->u.i) == RN_OK;
        break;
    case RN_TYPE_STRING:
    case RN_TYPE_NULL: break;
    }
    if (!ok) {
        char got[RN_DECODE_GOT_MAX * 6 + 16];
        rn__decode_quote(got, sizeof(got), s, len);
        snprintf(errbuf, errlen, "field '%s': expected %s, got %s", name, rn_type_name(type), got);
        return RN_EDATA;
    }
    return RN_OK;
}
