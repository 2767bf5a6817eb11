/*
 * runnel/error.h: error codes and the caller-owned error value.
 *
 * Every fallible call returns an rn_code_t (RN_OK is 0, errors are negative)
 * or a pointer (NULL on failure), and takes an rn_error_t *err as its last
 * argument. err may be NULL. Filling it never allocates.
 */
#ifndef RUNNEL_ERROR_H
#define RUNNEL_ERROR_H

#include <runnel/common.h>

typedef enum rn_code {
    RN_OK = 0,
    RN_EINVAL = -1,    /* bad argument or bad job definition */
    RN_ENOMEM = -2,    /* out of memory for an input-sized allocation */
    RN_ENOTFOUND = -3, /* absent key or name: an answer, msg stays empty */
    RN_EIO = -4,       /* file, RocksDB or socket I/O */
    RN_EKAFKA = -5,    /* librdkafka reported an error; see msg */
    RN_ECORRUPT = -6,  /* checksum or format-version mismatch */
    RN_ECANCELED = -7, /* the job is stopping */
    RN_EABI = -8,      /* plugin built against another runnel ABI */
    RN_EDATA = -9,     /* a record that does not parse or fit its schema */
    RN_EAGAIN = -10,   /* nothing to do now; try again later (internal) */
} rn_code_t;

#define RN_ERR_RETRIABLE 0x1u
#define RN_ERR_FATAL 0x2u
/* The job's definition is at fault (rn_job_new: the job file or the
 * options), not its checkpoints, files or machine: fix the definition. */
#define RN_ERR_DEFINITION 0x4u
#define RN_ERROR_MSG_MAX 512

/* Caller-owned, usually on the stack. Calls fill it; nothing is allocated. */
typedef struct rn_error {
    rn_code_t code;
    uint32_t flags;             /* RN_ERR_* */
    char msg[RN_ERROR_MSG_MAX]; /* "" when code == RN_OK */
} rn_error_t;

#define RN_ERROR_INIT {RN_OK, 0, {0}}

/* @returns the code's name, such as "RN_EIO"; a static string. */
RN_API const char *rn_code_name(rn_code_t code);
/* @returns a short description, such as "I/O error"; a static string. */
RN_API const char *rn_strerror(rn_code_t code);

#endif
