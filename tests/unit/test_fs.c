/*
 * tests/unit/test_fs.c: the permission checks of stream/fs.c
 * (rn__fs_check_path, rn__fs_check_private): every directory and link on
 * a path's way, as the path is resolved, not only the last directory nor
 * only the directories of its realpath.
 */
#include "rn_check.h"
#include "stream/fs.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[PATH_MAX];

static void
setup(void)
{
    const char *tmp = getenv("RN_TEST_TMP");
    char cmd[PATH_MAX + 64];
    snprintf(base, sizeof(base), "%s/fs-%d", tmp ? tmp : "/tmp", (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", base, base);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(chmod(base, 0700), 0);
}

static void
teardown(void)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    ck_assert_int_eq(system(cmd), 0);
}

/* base/rel, made as a directory with mode. */
static void
mkdir_mode(char *out, const char *rel, mode_t mode)
{
    snprintf(out, PATH_MAX, "%s/%s", base, rel);
    ck_assert_int_eq(mkdir(out, 0700), 0);
    ck_assert_int_eq(chmod(out, mode), 0);
}

START_TEST(test_fs_private_dir)
{
    rn_error_t err = RN_ERROR_INIT;
    char dir[PATH_MAX], real[PATH_MAX], want[PATH_MAX];
    struct stat sb;
    mkdir_mode(dir, "ok", 0700);
    ck_assert_rn_ok(rn__fs_check_private(dir, "dir", &err), &err);
    ck_assert_ptr_nonnull(realpath(dir, want));
    ck_assert_rn_ok(rn__fs_check_path(dir, "dir", real, &sb, &err), &err);
    ck_assert_str_eq(real, want);
    ck_assert(S_ISDIR(sb.st_mode));
    /* The directory itself writable by others. */
    ck_assert_int_eq(chmod(dir, 0770), 0);
    ck_assert_int_eq(rn__fs_check_private(dir, "dir", &err), RN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "chmod 700"));
}
END_TEST

START_TEST(test_fs_ancestor_writable)
{
    rn_error_t err = RN_ERROR_INIT;
    char open[PATH_MAX], dir[PATH_MAX];
    mkdir_mode(open, "open", 0777);
    mkdir_mode(dir, "open/ckpt", 0700);
    ck_assert_int_eq(rn__fs_check_private(dir, "checkpoint directory", &err), RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "on its way can be written by other users (mode 0777") != NULL,
                  "%s", err.msg);
    /* Group-writable is as bad. */
    ck_assert_int_eq(chmod(open, 0770), 0);
    ck_assert_int_eq(rn__fs_check_private(dir, "checkpoint directory", &err), RN_EINVAL);
    /* Sticky, as /tmp: others cannot rename or remove what they do not own. */
    ck_assert_int_eq(chmod(open, 01777), 0);
    ck_assert_rn_ok(rn__fs_check_private(dir, "checkpoint directory", &err), &err);
}
END_TEST

/* A link in a safe directory to a link in an unsafe one, which points
 * back to a safe directory: the realpath's directories are all safe, but
 * the unsafe directory's owner can point the second link elsewhere. */
START_TEST(test_fs_link_through_unsafe_dir)
{
    rn_error_t err = RN_ERROR_INIT;
    char open[PATH_MAX], dir[PATH_MAX], l1[PATH_MAX], l2[PATH_MAX];
    struct stat sb;
    mkdir_mode(open, "open", 0777);
    mkdir_mode(dir, "target", 0700);
    snprintf(l2, sizeof(l2), "%s/l2", open);
    snprintf(l1, sizeof(l1), "%s/l1", base);
    ck_assert_int_eq(symlink(dir, l2), 0);
    ck_assert_int_eq(symlink(l2, l1), 0);
    ck_assert_int_eq(rn__fs_check_path(l1, "plugin library", NULL, &sb, &err), RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "/open' on its way") != NULL, "%s", err.msg);
    /* The same target through a link in a safe directory only: fine. */
    ck_assert_int_eq(unlink(l1), 0);
    ck_assert_int_eq(symlink(dir, l1), 0);
    ck_assert_rn_ok(rn__fs_check_path(l1, "plugin library", NULL, &sb, &err), &err);
}
END_TEST

START_TEST(test_fs_dotdot_and_relative_links)
{
    rn_error_t err = RN_ERROR_INIT;
    char a[PATH_MAX], b[PATH_MAX], path[PATH_MAX + 32], real[PATH_MAX], want[PATH_MAX];
    struct stat sb;
    mkdir_mode(a, "a", 0700);
    mkdir_mode(b, "b", 0700);
    /* a/up -> ../b (relative target, resolved from a). */
    snprintf(path, sizeof(path), "%s/up", a);
    ck_assert_int_eq(symlink("../b", path), 0);
    snprintf(path, sizeof(path), "%s/a/./up/../a/../b", base);
    ck_assert_ptr_nonnull(realpath(b, want));
    ck_assert_rn_ok(rn__fs_check_path(path, "dir", real, &sb, &err), &err);
    ck_assert_str_eq(real, want);
}
END_TEST

START_TEST(test_fs_missing_and_loops)
{
    rn_error_t err = RN_ERROR_INIT;
    char path[PATH_MAX], x[PATH_MAX], y[PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/nope/deeper", base);
    ck_assert_int_eq(rn__fs_check_path(path, "dir", NULL, &sb, &err), RN_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "/nope': No such file") != NULL, "%s", err.msg);
    snprintf(x, sizeof(x), "%s/x", base);
    snprintf(y, sizeof(y), "%s/y", base);
    ck_assert_int_eq(symlink(y, x), 0);
    ck_assert_int_eq(symlink(x, y), 0);
    ck_assert_int_eq(rn__fs_check_path(x, "dir", NULL, &sb, &err), RN_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "too many symbolic links"));
}
END_TEST

/* Owned by another user: needs root to chown; said when skipped. */
START_TEST(test_fs_foreign_owner)
{
    rn_error_t err = RN_ERROR_INIT;
    char theirs[PATH_MAX], dir[PATH_MAX], link[PATH_MAX];
    struct stat sb;
    if (geteuid() != 0) {
        printf("test_fs_foreign_owner: skipped (needs root to chown)\n");
        return;
    }
    mkdir_mode(theirs, "theirs", 0755);
    mkdir_mode(dir, "theirs/ckpt", 0700);
    ck_assert_int_eq(chown(theirs, 65534, 65534), 0);
    ck_assert_int_eq(rn__fs_check_private(dir, "checkpoint directory", &err), RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "belongs to another user (uid 65534)") != NULL, "%s", err.msg);
    ck_assert_int_eq(chown(theirs, 0, 0), 0);
    ck_assert_int_eq(chown(dir, 65534, 65534), 0);
    ck_assert_int_eq(rn__fs_check_private(dir, "checkpoint directory", &err), RN_EINVAL);
    ck_assert_int_eq(chown(dir, 0, 0), 0);
    /* A link another user owns, in a sticky directory. */
    ck_assert_int_eq(chmod(theirs, 01777), 0);
    snprintf(link, sizeof(link), "%s/link", theirs);
    ck_assert_int_eq(symlink(dir, link), 0);
    ck_assert_int_eq(lchown(link, 65534, 65534), 0);
    ck_assert_int_eq(rn__fs_check_path(link, "plugin library", NULL, &sb, &err), RN_EINVAL);
    ck_assert_msg(strstr(err.msg, "symbolic link") != NULL, "%s", err.msg);
}
END_TEST

static Suite *
fs_suite(void)
{
    Suite *s = suite_create("fs");
    TCase *tc = tcase_create("check_path");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fs_private_dir);
    tcase_add_test(tc, test_fs_ancestor_writable);
    tcase_add_test(tc, test_fs_link_through_unsafe_dir);
    tcase_add_test(tc, test_fs_dotdot_and_relative_links);
    tcase_add_test(tc, test_fs_missing_and_loops);
    tcase_add_test(tc, test_fs_foreign_owner);
    suite_add_tcase(s, tc);
    return s;
}

RN_CHECK_MAIN(fs_suite)
