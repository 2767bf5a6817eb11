/*
 * stream/rest.c: the job's REST endpoint (rest.listen): status, savepoints
 * and stop, on its own thread and libuv loop, HTTP parsed by http-parser.
 *
 *   GET  /status                    the job's counters and checkpoints (JSON)
 *   POST /savepoint {"dir": D}      takes a savepoint into D (or the
 *                                   savepoints root), answers with its path
 *   POST /stop {"savepoint": D}     the same, then the job stops; without
 *                                   D it stops with a final checkpoint
 *
 * Safe by default: the configured address is what it listens on
 * (loopback unless told otherwise: graph.c warns about others); a request
 * is at most 64 KB, one per connection, and a client idle for 10 s is
 * dropped; at most 16 connections. Every field of a body is checked: a
 * JSON object with no member but the one named above, a string. A
 * directory given over REST is made canonical (realpath of its parent, so
 * no "..", no symlink escapes, no encoded tricks since the JSON string is
 * taken as it is) and must be a new directory directly in the savepoints
 * root (checkpoints.savepoints), never in the checkpoint store's own
 * files or inside another savepoint.
 *
 * @thread its own, except start/stop (control).
 */
#include "stream/job_int.h"
#include "stream/fs.h"

#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define REQ_MAX (64 * 1024)
#define IDLE_MS 10000
#define CONNS_MAX 16

typedef struct rest rest_t;

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    rest_t *rest;
    http_parser parser;
    char url[256];
    size_t urllen;
    char *body;
    size_t bodylen;
    size_t seen;    /* bytes of the request so far */
    bool complete;  /* the request is parsed */
    bool waiting;   /* for a savepoint */
    bool closing;
    int nclosed;    /* handles closed (tcp, idle) */
    struct conn *next_done; /* completion queue */
    int status;
    char *reply;    /* JSON, malloc'd */
} conn_t;

struct rest {
    rn_job_t *job;
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t wake;
    uv_thread_t thread;
    int nconns;
    char sproot[PATH_MAX]; /* canonical savepoints root: every savepoint goes in it */
    uv_mutex_t lock;
    conn_t *done; /* savepoints finished, their replies to send */
    bool quit;
    uv_timer_t drain; /* quitting: waits for replies to go out */
    int64_t quit_ms;
};

static http_parser_settings settings;

/* ---- replies ---- */

static void
on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (++c->nclosed == 2) {
        c->rest->nconns--;
        free(c->body);
        free(c->reply);
        free(c);
    }
}

static void
conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

typedef struct wreq {
    uv_write_t w;
    char *buf;
    conn_t *c;
} wreq_t;

static void
on_written(uv_write_t *w, int status)
{
    wreq_t *r = (wreq_t *)w;
    (void)status;
    conn_close(r->c);
    free(r->buf);
    free(r);
}

static void
reply(conn_t *c, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    const char *reason = status == 200 ? "OK" : status == 202 ? "Accepted" : status == 400 ? "Bad Request"
                       : status == 404 ? "Not Found" : status == 409 ? "Conflict" : status == 413 ? "Payload Too Large"
                                                                                               : "Internal Server Error";
    size_t n = strlen(text) + 200;
    wreq_t *r = malloc(sizeof(*r));
    r->buf = malloc(n);
    r->c = c;
    int len = snprintf(r->buf, n,
                       "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                       "%zu\r\nConnection: close\r\n\r\n%s\n",
                       status, reason, strlen(text) + 1, text);
    free(text);
    uv_buf_t b = uv_buf_init(r->buf, (unsigned)len);
    if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(r->buf);
        free(r);
        conn_close(c);
    }
}

static void
reply_error(conn_t *c, int status, const char *msg)
{
    reply(c, status, json_pack("{s:s}", "error", msg));
}

/* ---- requests ---- */

/* The longest savepoint path taken: room for ".inprogress" and the
 * component directories and file names written inside it. */
#define SP_PATH_MAX 2048

/* Canonical form of dir: a new directory directly in the savepoints root.
 * Nowhere else: not in the checkpoint directory's own files (a chk-N or
 * shared/ there would be taken for the store's), not inside another
 * savepoint, and a name the cleanup at start would not remove. */
static bool
check_dir(rest_t *r, const char *dir, char *out, char *why, size_t whysize)
{
    size_t len = strlen(dir);
    if (len == 0 || dir[0] != '/') {
        snprintf(why, whysize, "the directory must be an absolute path");
        return false;
    }
    if (len > SP_PATH_MAX) {
        snprintf(why, whysize, "the directory's path is %zu bytes long; at most %d are taken",
                 len, SP_PATH_MAX);
        return false;
    }
    char parent[SP_PATH_MAX + 1], base[SP_PATH_MAX + 1];
    memcpy(parent, dir, len + 1);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    snprintf(base, sizeof(base), "%s", slash + 1);
    if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    size_t blen = strlen(base);
    if (base[0] == '\0' || base[0] == '.' ||
        (blen >= 11 && strcmp(base + blen - 11, ".inprogress") == 0)) {
        snprintf(why, whysize,
                 "'%.*s' does not name a new directory (a name may not start with '.' or end "
                 "in .inprogress)",
                 SP_PATH_MAX, dir);
        return false;
    }
    char canon[PATH_MAX];
    if (realpath(parent, canon) == NULL) {
        snprintf(why, whysize, "'%s': %s", parent, strerror(errno));
        return false;
    }
    if (r->sproot[0] == '\0' || strcmp(canon, r->sproot) != 0) {
        snprintf(why, whysize,
                 "'%.*s' is not under the savepoints directory '%s': a savepoint goes into a "
                 "new directory directly in it (checkpoints.savepoints)",
                 SP_PATH_MAX, dir, r->sproot);
        return false;
    }
    if (snprintf(out, PATH_MAX, "%s/%s", canon, base) >= SP_PATH_MAX) {
        snprintf(why, whysize, "'%s/%s' is too long a path (at most %d bytes)", canon, base,
                 SP_PATH_MAX);
        return false;
    }
    struct stat sb;
    if (lstat(out, &sb) == 0) {
        snprintf(why, whysize, "'%s' exists already", out);
        return false;
    }
    return true;
}

/* The request's body: a JSON object whose only member, if any, is the
 * string `key`. @returns the string (borrowed from *body: free *body with
 * json_decref), NULL when absent, or NULL with why set (a 400). */
static const char *
body_dir(conn_t *c, const char *key, json_t **body, char *why, size_t whysize)
{
    json_error_t je;
    why[0] = '\0';
    *body = c->bodylen > 0 ? json_loadb(c->body, c->bodylen, JSON_REJECT_DUPLICATES, &je)
                           : json_object();
    if (*body == NULL || !json_is_object(*body)) {
        snprintf(why, whysize, "the body must be a JSON object, such as {\"%s\": \"/path\"}%s%s",
                 key, *body == NULL ? ": " : "", *body == NULL ? je.text : "");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(*body, k, v) {
        if (strcmp(k, key) != 0) {
            snprintf(why, whysize, "unknown field '%.64s': the body is {\"%s\": \"/path\"} or {}",
                     k, key);
            return NULL;
        }
    }
    v = json_object_get(*body, key);
    if (v == NULL)
        return NULL;
    if (!json_is_string(v)) {
        snprintf(why, whysize, "'%s' must be a string (a directory's absolute path)", key);
        return NULL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, whysize, "'%s' holds a NUL character", key);
        return NULL;
    }
    return json_string_value(v);
}

static void
status(conn_t *c)
{
    rn_job_stats_t st;
    rn_job_stats(c->rest->job, &st);
    reply(c, 200,
          json_pack("{s:s, s:s, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}", "job",
                    c->rest->job->name, "state", st.running ? "running" : "starting",
                    "records_in", (json_int_t)st.records_in, "records_out",
                    (json_int_t)st.records_out, "watermark", (json_int_t)st.watermark,
                    "checkpoints", "completed", (json_int_t)st.checkpoints_completed, "failed",
                    (json_int_t)st.checkpoints_failed, "last", (json_int_t)st.last_checkpoint,
                    "restored_from", (json_int_t)st.restored_from, "pause_p99_us",
                    (json_int_t)st.checkpoint_pause_p99_us));
}

/* The coordinator's thread: hand the reply to the REST loop. */
static void
savepoint_done(void *ctx, const char *path, const rn_error_t *err)
{
    conn_t *c = ctx;
    rest_t *r = c->rest;
    c->status = path != NULL ? 200 : 500;
    json_t *j = path != NULL ? json_pack("{s:s}", "path", path)
                             : json_pack("{s:s}", "error", err->msg);
    c->reply = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    uv_mutex_lock(&r->lock);
    c->next_done = r->done;
    r->done = c;
    uv_mutex_unlock(&r->lock);
    uv_async_send(&r->wake);
}

static void
savepoint(conn_t *c, bool stop)
{
    rest_t *r = c->rest;
    rn_job_t *job = r->job;
    json_t *body;
    char canon[PATH_MAX], why[PATH_MAX + SP_PATH_MAX + 200], dflt[PATH_MAX + 64];
    const char *dir = body_dir(c, stop ? "savepoint" : "dir", &body, why, sizeof(why));
    if (why[0] != '\0') {
        json_decref(body);
        reply_error(c, 400, why);
        return;
    }
    if (stop && dir == NULL) {
        json_decref(body);
        rn_job_stop(job);
        reply(c, 202, json_pack("{s:b}", "stopping", 1));
        return;
    }
    if (job->ckpt == NULL) {
        json_decref(body);
        reply_error(c, 409, "the job takes no checkpoints, so it cannot take savepoints");
        return;
    }
    if (dir == NULL) {
        snprintf(dflt, sizeof(dflt), "%s/savepoint-%lld", r->sproot, (long long)rn__now_ms());
        dir = dflt;
    }
    if (!check_dir(r, dir, canon, why, sizeof(why))) {
        json_decref(body);
        reply_error(c, 400, why);
        return;
    }
    json_decref(body);
    rn_error_t err = RN_ERROR_INIT;
    c->waiting = true;
    uv_timer_stop(&c->idle);
    if (rn__ckpt_savepoint(job->ckpt, canon, stop, savepoint_done, c, &err) != RN_OK) {
        c->waiting = false;
        reply_error(c, 409, err.msg);
    }
}

static void
dispatch(conn_t *c)
{
    const char *m = http_method_str((enum http_method)c->parser.method);
    if (strcmp(c->url, "/status") == 0 && strcmp(m, "GET") == 0)
        status(c);
    else if (strcmp(c->url, "/savepoint") == 0 && strcmp(m, "POST") == 0)
        savepoint(c, false);
    else if (strcmp(c->url, "/stop") == 0 && strcmp(m, "POST") == 0)
        savepoint(c, true);
    else
        reply_error(c, 404, "GET /status, POST /savepoint {\"dir\": D}, POST /stop "
                            "{\"savepoint\": D}");
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    if (c->urllen + len >= sizeof(c->url))
        return 1;
    memcpy(c->url + c->urllen, at, len);
    c->urllen += len;
    c->url[c->urllen] = '\0';
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    conn_t *c = p->data;
    char *b = realloc(c->body, c->bodylen + len + 1);
    if (b == NULL)
        return 1;
    c->body = b;
    memcpy(c->body + c->bodylen, at, len);
    c->bodylen += len;
    return 0;
}

static int
on_complete(http_parser *p)
{
    conn_t *c = p->data;
    c->complete = true;
    return 1; /* one request per connection */
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base != NULL ? suggested : 0;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (n < 0 || c->complete) {
        free(buf->base);
        if (n < 0 && !c->waiting)
            conn_close(c);
        return;
    }
    c->seen += (size_t)n;
    if (c->seen > REQ_MAX) {
        free(buf->base);
        uv_read_stop(s);
        reply_error(c, 413, "a request is at most 64 KB");
        return;
    }
    size_t used = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
    free(buf->base);
    if (c->complete) {
        uv_read_stop(s);
        dispatch(c);
    } else if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        uv_read_stop(s);
        reply_error(c, 400, "not an HTTP request this endpoint understands");
    }
}

static void
on_idle(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (!c->waiting)
        conn_close(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
    rest_t *r = server->data;
    if (status < 0)
        return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->rest = r;
    uv_tcp_init(&r->loop, &c->tcp);
    uv_timer_init(&r->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    r->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || r->nconns > CONNS_MAX) {
        conn_close(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->idle, on_idle, IDLE_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void
on_drain(uv_timer_t *t)
{
    rest_t *r = t->data;
    if (r->nconns == 0 || rn__now_ms() - r->quit_ms > 2000)
        uv_stop(&r->loop);
}

static void
on_wake(uv_async_t *a)
{
    rest_t *r = a->data;
    uv_mutex_lock(&r->lock);
    conn_t *d = r->done;
    r->done = NULL;
    bool quit = r->quit;
    uv_mutex_unlock(&r->lock);
    while (d != NULL) {
        conn_t *next = d->next_done;
        d->waiting = false;
        json_error_t je;
        reply(d, d->status, json_loads(d->reply, 0, &je));
        d = next;
    }
    if (quit && r->quit_ms == 0) {
        /* Replies being written (a stop's savepoint path) go out first;
         * new connections are not taken. */
        r->quit_ms = rn__now_ms();
        uv_close((uv_handle_t *)&r->server, NULL);
        uv_timer_start(&r->drain, on_drain, 0, 10);
    }
}

static void
rest_main(void *arg)
{
    rest_t *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

static void
canon_root(const char *dir, char *out)
{
    out[0] = '\0';
    if (dir != NULL && realpath(dir, out) == NULL)
        out[0] = '\0';
}

rest_t *
rn__rest_start(rn_job_t *job, const char *listen, rn_error_t *err)
{
    char host[256];
    int port = 0;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof(host) ||
        (port = atoi(colon + 1)) <= 0 || port > 65535) {
        rn__errf(err, RN_EINVAL, "rest.listen '%s': expected HOST:PORT, such as 127.0.0.1:8081",
                 listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0) {
        rn__errf(err, RN_EINVAL, "rest.listen '%s': '%s' is not an IP address", listen, host);
        return NULL;
    }
    settings.on_url = on_url;
    settings.on_body = on_body;
    settings.on_message_complete = on_complete;
    rest_t *r = rn_xcalloc(1, sizeof(*r));
    r->job = job;
    /* The coordinator made the savepoints root and checked it
     * (rn__ckpt_new). */
    if (job->ckpt != NULL)
        canon_root(job->ckpt_conf.savepoints, r->sproot);
    uv_loop_init(&r->loop);
    uv_mutex_init(&r->lock);
    uv_tcp_init(&r->loop, &r->server);
    r->server.data = r;
    uv_async_init(&r->loop, &r->wake, on_wake);
    r->wake.data = r;
    uv_timer_init(&r->loop, &r->drain);
    r->drain.data = r;
    int e = uv_tcp_bind(&r->server, (const struct sockaddr *)&sa, 0);
    if (e == 0)
        e = uv_listen((uv_stream_t *)&r->server, 16, on_connection);
    if (e != 0) {
        rn__errf(err, RN_EIO, "rest.listen '%s': %s", listen, uv_strerror(e));
        uv_close((uv_handle_t *)&r->server, NULL);
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_close((uv_handle_t *)&r->drain, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        uv_mutex_destroy(&r->lock);
        rn_free(r);
        return NULL;
    }
    uv_thread_create(&r->thread, rest_main, r);
    return r;
}

static void
close_any(uv_handle_t *h, void *arg)
{
    rest_t *r = arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&r->server || h == (uv_handle_t *)&r->wake ||
        h == (uv_handle_t *)&r->drain)
        uv_close(h, NULL);
    else
        conn_close(h->data);
}

void
rn__rest_stop(rest_t *r)
{
    if (r == NULL)
        return;
    uv_mutex_lock(&r->lock);
    r->quit = true;
    uv_mutex_unlock(&r->lock);
    uv_async_send(&r->wake);
    uv_thread_join(&r->thread);
    uv_walk(&r->loop, close_any, r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    uv_mutex_destroy(&r->lock);
    rn_free(r);
}
