/*
 * fuzz/fuzz_util.c: the targets' scratch directory and quiet log
 * (fuzz_util.h).
 */
#include "fuzz/fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[4096];

static int
rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void
rn_fuzz_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
remove_dir(void)
{
    if (dir[0] != '\0')
        rn_fuzz_rmtree(dir);
}

const char *
rn_fuzz_dir(void)
{
    if (dir[0] != '\0')
        return dir;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/runnel-fuzz-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "fuzz: mkdtemp '%s': %s\n", dir, strerror(errno));
        abort();
    }
    atexit(remove_dir);
    return dir;
}

void
rn_fuzz_write(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *p = data;
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (fd < 0 || done != len || close(fd) != 0) {
        fprintf(stderr, "fuzz: write '%s': %s\n", path, strerror(errno));
        abort();
    }
}

void
rn_fuzz_quiet(void)
{
    rn__log_level = -1;
}

void
rn_fuzz_debug(const char *what, rn_code_t rc, const rn_error_t *err)
{
    static int on = -1;
    if (on < 0)
        on = getenv("RN_FUZZ_DEBUG") != NULL;
    if (on)
        fprintf(stderr, "fuzz: %s: %s\n", what, rc == RN_OK ? "ok" : err->msg);
}
