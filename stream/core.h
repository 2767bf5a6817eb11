/*
 * stream/core.h: what every runnel source file needs: allocation, errors,
 * logging and asserts. Internal; not installed.
 */
#ifndef RN_STREAM_CORE_H
#define RN_STREAM_CORE_H

#include <runnel/runnel.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RN_INTERNAL __attribute__((visibility("hidden")))

/* Allocation goes through these so that tests can inject failures
 * (STYLE.md rule 12). rn_xmalloc aborts with the size on failure and is
 * only for small fixed sizes. */
void *rn_malloc(size_t size);
void *rn_calloc(size_t n, size_t size);
void *rn_realloc(void *ptr, size_t size);
void rn_free(void *ptr);
void *rn_xmalloc(size_t size);
void *rn_xcalloc(size_t n, size_t size);
/* n * size zeroed bytes (NULL when out of memory or on overflow), for a
 * large table that is probed before it is written (hash tables, sets,
 * filters): calloc's fresh pages map the shared zero page on the first
 * read and fault again on the first write, with a TLB shootdown to every
 * CPU running one of the process's threads (a checkpoint's coordinator
 * beside the task: 7% of a task's time); these are written once here. */
void *rn_zalloc(size_t n, size_t size);
/* Asks for transparent huge pages over the 2 MB pages inside [p, p+len)
 * (madvise MADV_HUGEPAGE; a hint, ignored where THP is off). For large
 * tables read at random, before their pages are touched: with 4 kB pages
 * nearly every probe of a table of tens of MB is a TLB miss too. */
void rn_huge_hint(void *p, size_t len);
void *rn_xrealloc(void *ptr, size_t size);
char *rn_xstrdup(const char *s);
char *rn_xstrndup(const char *s, size_t n);

/* Fills *err (when err != NULL) with code and the formatted message and
 * returns code, so that call sites read: return rn__errf(err, ...). */
rn_code_t rn__errf(rn_error_t *err, rn_code_t code, const char *fmt, ...) RN_PRINTF(3, 4);
rn_code_t rn__verrf(rn_error_t *err, rn_code_t code, const char *fmt, va_list ap);
/* Prefixes err->msg with "fmt...: " to add context going up. @returns err->code. */
rn_code_t rn__errctx(rn_error_t *err, const char *fmt, ...) RN_PRINTF(2, 3);

/* Logging to stderr. Nothing per record above DEBUG. */
typedef enum { RN_LOG_LEVEL_ERROR, RN_LOG_LEVEL_WARN, RN_LOG_LEVEL_INFO, RN_LOG_LEVEL_DEBUG } rn_log_level_t;
extern int rn__log_level;
void rn__log(rn_log_level_t level, const char *ctx, const char *fmt, ...) RN_PRINTF(3, 4);
#define RN_LOG_AT(lvl, ctx, ...)                                                                   \
    do {                                                                                           \
        if ((int)(lvl) <= rn__log_level)                                                           \
            rn__log((lvl), (ctx), __VA_ARGS__);                                                    \
    } while (0)
#define RN_LOG_ERROR(ctx, ...) RN_LOG_AT(RN_LOG_LEVEL_ERROR, ctx, __VA_ARGS__)
#define RN_LOG_WARN(ctx, ...) RN_LOG_AT(RN_LOG_LEVEL_WARN, ctx, __VA_ARGS__)
#define RN_LOG_INFO(ctx, ...) RN_LOG_AT(RN_LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define RN_LOG_DEBUG(ctx, ...) RN_LOG_AT(RN_LOG_LEVEL_DEBUG, ctx, __VA_ARGS__)

/* Always-on assert for invariants whose failure would corrupt state or
 * output. */
void rn__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define rn_assert(x) ((x) ? (void)0 : rn__assert_fail(#x, __FILE__, __LINE__))
#ifdef NDEBUG
#define rn_dassert(x) ((void)0)
#else
#define rn_dassert(x) rn_assert(x)
#endif
#define RN_NOTREACHED() rn__assert_fail("not reached", __FILE__, __LINE__)

#define RN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RN_LIKELY(x) __builtin_expect(!!(x), 1)

/* Wall-clock milliseconds since the epoch, and a monotonic clock in ns. */
int64_t rn__now_ms(void);
int64_t rn__mono_ns(void);

#define RN_TS_MIN INT64_MIN
#define RN_TS_MAX INT64_MAX

#endif
