/*
 * runnel/common.h: visibility and attribute macros shared by every public
 * header. Nothing here allocates or has state.
 */
#ifndef RUNNEL_COMMON_H
#define RUNNEL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Public functions are visible also when linked from the static library:
 * the runnel program exports them (-rdynamic) to the plugins it loads. */
#define RN_API __attribute__((visibility("default")))

#define RN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* Bumped whenever a public struct or vtable changes layout. Plugins record
 * the value they were built with; the loader refuses any other. */
#define RN_ABI_VERSION 2

#define RN_VERSION_STRING "0.1.0"

#endif
