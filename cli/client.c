/*
 * cli/client.c: `runnel savepoint ADDR [DIR]` and `runnel stop ADDR
 * [--savepoint DIR]`: one HTTP request to the job's REST endpoint
 * (stream/rest.c), the reply parsed by http-parser. A relative DIR is
 * made absolute against the current directory, since the job may run
 * elsewhere. The savepoint's path is the last line printed.
 */
#include "cli/commands.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct resp {
    char *body;
    size_t len;
    bool done;
} resp_t;

static int
on_body(http_parser *p, const char *at, size_t len)
{
    resp_t *r = p->data;
    char *b = realloc(r->body, r->len + len + 1);
    if (b == NULL)
        return 1;
    memcpy(b + r->len, at, len);
    r->body = b;
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int
on_done(http_parser *p)
{
    ((resp_t *)p->data)->done = true;
    return 0;
}

/* Sends one request; @returns the HTTP status (0 on failure, printed)
 * and the body in *body (malloc'd). */
static int
request(const char *addr, const char *method, const char *path, const char *json, char **body)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host) || strlen(colon + 1) >= 16) {
        fprintf(stderr, "runnel: '%s': expected HOST:PORT of the job's rest.listen\n", addr);
        return 0;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e != 0) {
        fprintf(stderr, "runnel: %s: %s\n", addr, gai_strerror(e));
        return 0;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "runnel: cannot reach the job at %s: %s (is it running with rest.listen "
                        "set to it?)\n",
                addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return 0;
    }
    freeaddrinfo(ai);
    size_t blen = json != NULL ? strlen(json) : 0;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, addr, blen);
    if (write(fd, head, (size_t)n) != n || (blen > 0 && write(fd, json, blen) != (ssize_t)blen)) {
        fprintf(stderr, "runnel: %s: write: %s\n", addr, strerror(errno));
        close(fd);
        return 0;
    }
    http_parser_settings s;
    memset(&s, 0, sizeof(s));
    s.on_body = on_body;
    s.on_message_complete = on_done;
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    resp_t r = {NULL, 0, false};
    p.data = &r;
    char buf[4096];
    ssize_t got;
    while (!r.done && (got = read(fd, buf, sizeof(buf))) > 0)
        http_parser_execute(&p, &s, buf, (size_t)got);
    if (!r.done)
        http_parser_execute(&p, &s, NULL, 0);
    close(fd);
    if (!r.done) {
        fprintf(stderr, "runnel: %s: no complete reply (the job may have stopped)\n", addr);
        free(r.body);
        return 0;
    }
    *body = r.body != NULL ? r.body : strdup("{}");
    return (int)p.status_code;
}

/* A directory argument as the job must see it: absolute. */
static char *
absolute(const char *dir)
{
    if (dir[0] == '/')
        return strdup(dir);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return strdup(dir);
    size_t n = strlen(cwd) + strlen(dir) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", cwd, dir);
    return p;
}

static int
finish(int status, char *body, const char *what)
{
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    free(body);
    const char *path = json_string_value(json_object_get(j, "path"));
    const char *error = json_string_value(json_object_get(j, "error"));
    int rc = 0;
    if (status == 200 && path != NULL) {
        printf("%s\n", path);
    } else if (status == 202) {
        fprintf(stderr, "runnel: %s\n", what);
    } else {
        fprintf(stderr, "runnel: %s\n", error != NULL ? error : "unexpected reply");
        rc = 2;
    }
    json_decref(j);
    return rc;
}

int
rn_cmd_savepoint(const char *addr, const char *dir, bool stop)
{
    json_t *req = json_object();
    if (dir != NULL) {
        char *abs = absolute(dir);
        json_object_set_new(req, stop ? "savepoint" : "dir", json_string(abs));
        free(abs);
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (dir != NULL || !stop)
        fprintf(stderr, "runnel: taking a savepoint%s...\n", stop ? ", then stopping" : "");
    char *body = NULL;
    int status = request(addr, "POST", stop ? "/stop" : "/savepoint", text, &body);
    free(text);
    if (status == 0)
        return 2;
    return finish(status, body, "the job is stopping with a final checkpoint");
}
