/*
 * tests/unit/test_checkpoint.c: the checkpoint metadata's commit point
 * (checkpoint/meta.c) and named crash points (checkpoint/crash.c).
 */
#include "rn_check.h"
#include "checkpoint/crash.h"
#include "checkpoint/meta.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
tmp_dir(char *dir, size_t size, const char *what)
{
    const char *tmp = getenv("RN_TEST_TMP");
    snprintf(dir, size, "%s/ckpt-%s-%d", tmp ? tmp : "/tmp", what, (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void
rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Reads dir's metadata and checks it is want, from copy want_copy. */
static void
ck_meta(const char *dir, const char *want, int want_copy)
{
    rn_error_t err = RN_ERROR_INIT;
    void *data = NULL;
    size_t len = 0;
    int copy = -1;
    ck_assert_rn_ok(rn__ckpt_meta_read(dir, 1 << 20, &data, &len, &copy, &err), &err);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_str_eq(data, want);
    ck_assert_int_eq(copy, want_copy);
    rn_free(data);
}

static void
flip_byte(const char *dir, const char *name, off_t at)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void
truncate_to(const char *dir, const char *name, off_t len)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(truncate(path, len), 0);
}

static const char *const META = "{\"checkpoint\": 42, \"job\": \"clicks\"}";

START_TEST(test_ckpt_meta_roundtrip)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512], path[600];
    tmp_dir(dir, sizeof(dir), "rt");
    ck_assert_rn_ok(rn__ckpt_meta_write(dir, META, strlen(META), &err), &err);
    ck_meta(dir, META, 0);
    /* Both copies, 0600, and no temporary file left. */
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, RN_CKPT_META_COPY);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/%s.tmp", dir, RN_CKPT_META);
    ck_assert_int_ne(access(path, F_OK), 0);
    /* Rewritten: the new bytes. */
    ck_assert_rn_ok(rn__ckpt_meta_write(dir, "{}", 2, &err), &err);
    ck_meta(dir, "{}", 0);
    rm_dir(dir);
}
END_TEST

/* One damaged copy (a flipped byte anywhere, trailer included, a
 * truncation, a deletion) means "read the other"; both damaged is
 * RN_ECORRUPT naming both; none is RN_ENOTFOUND. */
START_TEST(test_ckpt_meta_damage)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[512], path[600];
    tmp_dir(dir, sizeof(dir), "dmg");
    size_t n = strlen(META);
    void *data = NULL;
    size_t len;
    int copy;

    ck_assert_int_eq(rn__ckpt_meta_read(dir, 1 << 20, &data, &len, &copy, &err), RN_ENOTFOUND);

    /* Every byte of the first copy, one at a time. */
    ck_assert_rn_ok(rn__ckpt_meta_write(dir, META, n, &err), &err);
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, RN_CKPT_META);
    ck_assert_int_eq(stat(path, &sb), 0);
    for (off_t at = 0; at < sb.st_size; at++) {
        flip_byte(dir, RN_CKPT_META, at);
        ck_meta(dir, META, 1);
        flip_byte(dir, RN_CKPT_META, at);
        ck_meta(dir, META, 0);
    }
    /* Truncated: by one byte, to the data alone, to nothing. */
    off_t cuts[] = {sb.st_size - 1, (off_t)n, 0};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        ck_assert_rn_ok(rn__ckpt_meta_write(dir, META, n, &err), &err);
        truncate_to(dir, RN_CKPT_META, cuts[i]);
        ck_meta(dir, META, 1);
    }
    /* The first copy deleted. */
    ck_assert_int_eq(unlink(path), 0);
    ck_meta(dir, META, 1);

    /* Both damaged. */
    ck_assert_rn_ok(rn__ckpt_meta_write(dir, META, n, &err), &err);
    flip_byte(dir, RN_CKPT_META, 3);
    truncate_to(dir, RN_CKPT_META_COPY, 5);
    ck_assert_int_eq(rn__ckpt_meta_read(dir, 1 << 20, &data, &len, &copy, &err), RN_ECORRUPT);
    ck_assert_msg(strstr(err.msg, RN_CKPT_META " fails its checksum") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, RN_CKPT_META_COPY " has 5 bytes") != NULL, "%s", err.msg);

    /* Larger than the caller allows: refused before it is read. */
    ck_assert_rn_ok(rn__ckpt_meta_write(dir, META, n, &err), &err);
    ck_assert_int_eq(rn__ckpt_meta_read(dir, n - 1, &data, &len, &copy, &err), RN_ECORRUPT);
    ck_meta(dir, META, 0);
    rm_dir(dir);
}
END_TEST

/* A crash at each point of the write leaves the previous metadata or the
 * new one readable, never neither, and never a mix. */
START_TEST(test_ckpt_meta_crash_points)
{
    static const char *const points[] = {"ckpt.meta_before_rename", "ckpt.meta_after_rename",
                                         "ckpt.meta_before_dir_fsync"};
    char dir[512];
    tmp_dir(dir, sizeof(dir), "crash");
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        rn_error_t err = RN_ERROR_INIT;
        ck_assert_rn_ok(rn__ckpt_meta_write(dir, "old", 3, &err), &err);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            setenv("RN_CRASH_AT", points[i], 1);
            rn__ckpt_meta_write(dir, "new", 3, NULL);
            _exit(0); /* not reached when the point is hit */
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == RN_CRASH_EXIT,
                      "crash point %s not hit (status %d)", points[i], status);
        void *data = NULL;
        size_t len;
        int copy;
        ck_assert_rn_ok(rn__ckpt_meta_read(dir, 1 << 20, &data, &len, &copy, &err), &err);
        ck_assert_msg(strcmp(data, "old") == 0 || strcmp(data, "new") == 0, "%s: read '%s'",
                      points[i], (char *)data);
        /* Hit in the first copy's rename: the old bytes survive; after it,
         * the new. */
        ck_assert_str_eq(data, i == 0 ? "old" : "new");
        rn_free(data);
    }
    rm_dir(dir);
}
END_TEST

static Suite *
checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("meta");
    tcase_add_test(tc, test_ckpt_meta_roundtrip);
    tcase_add_test(tc, test_ckpt_meta_damage);
    tcase_add_test(tc, test_ckpt_meta_crash_points);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(checkpoint_suite)
