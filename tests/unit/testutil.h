/*
 * testutil.h - file helpers shared by the unit tests.
 *
 * Tests that work on real files get a fresh folder from mkdtemp() under
 * /tmp, named /tmp/nofuss-test-<tag>-XXXXXX after the program that made it,
 * and remove it with everything under it afterwards, whether the test
 * passed or not. nf_test_tmpdir_setup and nf_test_tmpdir_teardown are that
 * pair as cmocka fixtures; the tag comes in as the test's initial state:
 *
 *     cmocka_unit_test_prestate_setup_teardown(test, nf_test_tmpdir_setup,
 *                                              nf_test_tmpdir_teardown,
 *                                              (void *)"rules")
 *
 * The write and read helpers fail the running test with fail_msg() (path
 * and reason) on any error, so they may only be called from inside a test,
 * and they hold no heap memory or open file when they fail.
 */
#ifndef NOFUSS_TEST_TESTUTIL_H
#define NOFUSS_TEST_TESTUTIL_H

#include <stddef.h>

/* Makes /tmp/nofuss-test-<tag>-XXXXXX with mkdtemp(). Returns its path,
 * malloc'd (the caller removes the folder with nf_test_rmtree and frees
 * the path), or NULL with errno set when it cannot be made. */
char *nf_test_mkdtemp(const char *tag);

/* Removes dir and everything under it, symlinks removed, never followed.
 * Returns 0, or -1 with errno set if something could not be removed. */
int nf_test_rmtree(const char *dir);

/* cmocka setup: *state on entry is the tag (a const char *); on success it
 * is replaced by nf_test_mkdtemp(tag)'s malloc'd path and 0 is returned.
 * Returns -1, *state untouched, when the folder cannot be made. */
int nf_test_tmpdir_setup(void **state);

/* cmocka teardown for nf_test_tmpdir_setup: removes the folder *state names
 * with nf_test_rmtree and frees the path. Returns nf_test_rmtree's result. */
int nf_test_tmpdir_teardown(void **state);

/* Writes len bytes of data to path, creating or truncating the file.
 * Fails the test on any error. */
void nf_test_write_data(const char *path, const void *data, size_t len);

/* Writes the string text (without its '\0') to path, creating or
 * truncating the file. Fails the test on any error. */
void nf_test_write_file(const char *path, const char *text);

/* The whole file at path as a malloc'd, '\0'-terminated string ("" when the
 * file is empty). The caller frees it. Fails the test on any error. */
char *nf_test_read_file(const char *path);

#endif
