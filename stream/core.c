/*
 * stream/core.c: allocation hooks, error filling, logging and asserts.
 * @thread any. The only mutable global is the log level, set before a job
 * starts (STYLE.md rule 14).
 */
#include "stream/core.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

int rn__log_level = RN_LOG_LEVEL_WARN;

void *rn_malloc(size_t size) { return malloc(size); }
void *rn_calloc(size_t n, size_t size) { return calloc(n, size); }
void *rn_realloc(void *ptr, size_t size) { return realloc(ptr, size); }
void rn_free(void *ptr) { free(ptr); }

/* Through a volatile pointer: the compiler turns malloc and a memset of
 * zero into calloc, which is what rn_zalloc is not. */
static void *(*const volatile zero_fill)(void *, int, size_t) = memset;

#define HUGE_PAGE ((uintptr_t)2 << 20)

void
rn_huge_hint(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    if (p == NULL || len < 2 * HUGE_PAGE)
        return;
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t b = ((uintptr_t)p + len) & ~(HUGE_PAGE - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE); /* a hint: failure is harmless */
#else
    (void)p;
    (void)len;
#endif
}

void *
rn_zalloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = rn_malloc(n * size);
    if (p != NULL) {
        rn_huge_hint(p, n * size);
        zero_fill(p, 0, n * size);
    }
    return p;
}

static void
oom(size_t size)
{
    fprintf(stderr, "runnel: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
rn_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *
rn_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *
rn_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *
rn_xstrdup(const char *s)
{
    return rn_xstrndup(s, strlen(s));
}

char *
rn_xstrndup(const char *s, size_t n)
{
    char *p = rn_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

rn_code_t
rn__verrf(rn_error_t *err, rn_code_t code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->code = code;
        err->flags = 0;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

rn_code_t
rn__errf(rn_error_t *err, rn_code_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rn__verrf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

rn_code_t
rn__errctx(rn_error_t *err, const char *fmt, ...)
{
    char prefix[RN_ERROR_MSG_MAX];
    char old[RN_ERROR_MSG_MAX];
    va_list ap;

    if (err == NULL)
        return RN_EINVAL;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    return err->code;
}

const char *
rn_code_name(rn_code_t code)
{
    switch (code) {
    case RN_OK: return "RN_OK";
    case RN_EINVAL: return "RN_EINVAL";
    case RN_ENOMEM: return "RN_ENOMEM";
    case RN_ENOTFOUND: return "RN_ENOTFOUND";
    case RN_EIO: return "RN_EIO";
    case RN_EKAFKA: return "RN_EKAFKA";
    case RN_ECORRUPT: return "RN_ECORRUPT";
    case RN_ECANCELED: return "RN_ECANCELED";
    case RN_EABI: return "RN_EABI";
    case RN_EDATA: return "RN_EDATA";
    case RN_EAGAIN: return "RN_EAGAIN";
    }
    return "RN_E?";
}

const char *
rn_strerror(rn_code_t code)
{
    switch (code) {
    case RN_OK: return "success";
    case RN_EINVAL: return "invalid argument or job definition";
    case RN_ENOMEM: return "out of memory";
    case RN_ENOTFOUND: return "not found";
    case RN_EIO: return "I/O error";
    case RN_EKAFKA: return "Kafka error";
    case RN_ECORRUPT: return "corrupt data";
    case RN_ECANCELED: return "canceled";
    case RN_EABI: return "ABI version mismatch";
    case RN_EDATA: return "bad record";
    case RN_EAGAIN: return "try again";
    }
    return "unknown error";
}

void
rn__log(rn_log_level_t level, const char *ctx, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line so that lines from threads do not interleave. */
    fprintf(stderr, "runnel: %s: %s%s%s\n", names[level], ctx ? ctx : "", ctx ? ": " : "", line);
}

void
rn__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "runnel: assertion failed: %s at %s:%d\n", expr, file, line);
    abort();
}

int64_t
rn__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rn__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
