/*
 * tests/rn_check.h: Check helpers shared by the unit suites.
 */
#ifndef RN_TESTS_CHECK_H
#define RN_TESTS_CHECK_H

#include <check.h>
#include <stdlib.h>

#include "stream/core.h"

/* Asserts rc == RN_OK and prints err->msg when it is not. */
#define ck_assert_rn_ok(rc, err)                                                                   \
    ck_assert_msg((rc) == RN_OK, "%s: %s", rn_code_name(rc), (err)->msg)

/* Runs one suite with the usual runner; the main() of every test file. */
#define RN_CHECK_MAIN(suite_fn)                                                                    \
    int main(void)                                                                                 \
    {                                                                                              \
        SRunner *sr = srunner_create(suite_fn());                                                  \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                          \
    }

#endif
