/*
 * testutil.c - file helpers shared by the unit tests (see testutil.h):
 * mkdtemp() folders under /tmp and their recursive removal, as plain
 * functions and as cmocka setup/teardown fixtures, and writing and reading
 * whole files. Linked into every unit test program.
 *
 * Errors in the write and read helpers end the test through fail_msg(),
 * after closing the file and freeing what they allocated, so a failing
 * test does not also report a leak under valgrind.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

char *nf_test_mkdtemp(const char *tag)
{
	static const char fmt[] = "/tmp/nofuss-test-%s-XXXXXX";
	size_t size = sizeof fmt + strlen(tag);
	char *dir = malloc(size);

	if (dir == NULL)
		return NULL;
	snprintf(dir, size, fmt, tag);
	if (mkdtemp(dir) == NULL) {
		int saved = errno;

		free(dir);
		errno = saved;
		return NULL;
	}
	return dir;
}

/* nftw callback: called children first (FTW_DEPTH), so remove() finds
 * every folder already empty. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int nf_test_rmtree(const char *dir)
{
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int nf_test_tmpdir_setup(void **state)
{
	char *dir = nf_test_mkdtemp(*state);

	if (dir == NULL)
		return -1;
	*state = dir;
	return 0;
}

int nf_test_tmpdir_teardown(void **state)
{
	char *dir = *state;
	int rc = nf_test_rmtree(dir);

	free(dir);
	return rc;
}

void nf_test_write_data(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int err;

	if (f == NULL) {
		fail_msg("%s: %s", path, strerror(errno));
		return; /* not reached: fail_msg leaves the test */
	}
	errno = 0;
	err = fwrite(data, 1, len, f) == len ? 0 : errno ? errno : EIO;
	if (fclose(f) != 0 && err == 0)
		err = errno;
	if (err != 0)
		fail_msg("%s: %s", path, strerror(err));
}

void nf_test_write_file(const char *path, const char *text)
{
	nf_test_write_data(path, text, strlen(text));
}

char *nf_test_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	long len = -1;
	int err = 0;

	if (f == NULL) {
		fail_msg("%s: %s", path, strerror(errno));
		return NULL; /* not reached: fail_msg leaves the test */
	}
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		err = errno;
	else if ((text = malloc((size_t)len + 1)) == NULL)
		err = ENOMEM;
	else if (fread(text, 1, (size_t)len, f) != (size_t)len)
		err = EIO; /* a read error, or the file shrank meanwhile */
	fclose(f);
	if (err != 0) {
		free(text);
		fail_msg("%s: %s", path, strerror(err));
		return NULL; /* not reached */
	}
	text[len] = '\0';
	return text;
}
