/*
 * fuzz/rest.c: requests to a job's REST endpoint (stream/rest.c: HTTP
 * parsed by http-parser, JSON bodies, savepoint directories checked),
 * sent over a real loopback connection to a running job, as a client
 * would send them; the reply is read to its end.
 *
 * The job (unbounded generated events, checkpoints under the scratch
 * directory) runs on a thread of its own; a request that stops it (POST
 * /stop) ends it, and the next input starts another. Savepoints that
 * requests take are removed after each input.
 *
 * Input: the first byte chooses the form. Odd: the rest is sent as it is
 * (raw HTTP). Even: the rest is "METHOD PATH\n" then a body, sent as an
 * HTTP/1.1 request with its Content-Length, and "@ROOT@" in the body
 * replaced by the checkpoints directory, so that the fuzzer reaches paths
 * inside and outside it.
 */
#include "fuzz/fuzz_util.h"

#include <runnel/runnel.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char job_yaml[] =
    "name: fuzzrest\n"
    "workers: 1\n"
    "state: {backend: memory}\n"
    "checkpoints: {interval: 1h, dir: '%s'}\n"
    "rest: {listen: '127.0.0.1:%d'}\n"
    "sources:\n"
    "  gen: {type: datagen, generator: sequence, rate: 200, keys: 5, interval: 1ms,\n"
    "        event_time: ts}\n"
    "operators:\n"
    "  per_key: {type: window_aggregate, inputs: [gen], key: [key],\n"
    "            window: {type: tumbling, size: 1s}, aggregates: {n: count()}}\n"
    "sinks:\n"
    "  out: {type: discard, inputs: [per_key]}\n";

static char root[4200];
static int port;
static rn_job_t *job;
static pthread_t thread;
static atomic_int ended;

static void *
run_job(void *arg)
{
    rn_error_t err = RN_ERROR_INIT;
    (void)arg;
    rn_job_run(job, &err);
    atomic_store(&ended, 1);
    return NULL;
}

/* A port free now on the loopback address (the kernel's choice). */
static int
free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        perror("fuzz: a free port");
        abort();
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static int
connect_once(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void
start_job(void)
{
    char yaml[sizeof(job_yaml) + 4300];
    rn_error_t err = RN_ERROR_INIT;
    rn_fuzz_rmtree(root);
    port = free_port();
    snprintf(yaml, sizeof(yaml), job_yaml, root, port);
    rn_graph_t *g = rn_graph_from_conf(rn_conf_load_string(yaml, strlen(yaml), "job", &err),
                                       &err);
    job = g != NULL ? rn_job_new(g, NULL, &err) : NULL;
    if (job == NULL) {
        fprintf(stderr, "fuzz: the REST job: %s\n", err.msg);
        abort();
    }
    rn_fuzz_quiet();
    atomic_store(&ended, 0);
    pthread_create(&thread, NULL, run_job, NULL);
}

/* Starts the job when none runs (or the last one ended: a request
 * stopped it); @returns a connection to its endpoint. */
static int
connect_job(void)
{
    for (;;) {
        if (job != NULL && atomic_load(&ended)) {
            pthread_join(thread, NULL);
            rn_job_destroy(job);
            job = NULL;
        }
        if (job == NULL)
            start_job();
        /* The endpoint listens once the job runs (a hang is caught by
         * libFuzzer's -timeout). */
        int fd = connect_once();
        if (fd >= 0)
            return fd;
        usleep(1000);
    }
}

static void
send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the endpoint closed the connection: a valid answer */
        c += w;
        n -= (size_t)w;
    }
}

/* The request of a structured input (see the top). */
static void
send_structured(int fd, const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t linelen = nl != NULL ? (size_t)(nl - data) : size;
    const uint8_t *body = nl != NULL ? nl + 1 : data + size;
    size_t bodylen = (size_t)(data + size - body);
    char *b = malloc(bodylen * (strlen(root) + 1) + 1);
    size_t n = 0;
    for (size_t i = 0; i < bodylen; i++) {
        if (bodylen - i >= 6 && memcmp(body + i, "@ROOT@", 6) == 0) {
            memcpy(b + n, root, strlen(root));
            n += strlen(root);
            i += 5;
        } else {
            b[n++] = (char)body[i];
        }
    }
    char head[512];
    int hn = snprintf(head, sizeof(head), "%.*s HTTP/1.1\r\nHost: fuzz\r\nContent-Length: %zu\r\n\r\n",
                      (int)(linelen > 300 ? 300 : linelen), (const char *)data, n);
    send_all(fd, head, (size_t)hn);
    send_all(fd, b, n);
    free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root[0] == '\0') {
        rn_fuzz_quiet();
        snprintf(root, sizeof(root), "%s/ckpts", rn_fuzz_dir());
    }
    if (size < 1)
        return 0;
    int fd = connect_job();
    if (data[0] & 1)
        send_all(fd, data + 1, size - 1);
    else
        send_structured(fd, data + 1, size - 1);
    shutdown(fd, SHUT_WR);
    char buf[4096];
    struct pollfd pfd = {fd, POLLIN, 0};
    /* The reply, to its end; a savepoint's comes when it is taken. */
    while (poll(&pfd, 1, 30000) == 1 && read(fd, buf, sizeof(buf)) > 0)
        ;
    close(fd);
    char sp[4300];
    snprintf(sp, sizeof(sp), "%s/savepoints", root);
    rn_fuzz_rmtree(sp);
    mkdir(sp, 0700); /* the endpoint's root: it must stay */
    return 0;
}
