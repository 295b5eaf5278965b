/*
 * test_files.c - unit tests for files.c: images under the public folder.
 *
 * Runs against a real public folder made with mkdtemp(): the MD5 (checked
 * against a known digest and against OpenSSL's EVP), the size and the
 * Last-Modified date; the file identity changing whenever the file does
 * (mtimes set explicitly with utimensat, so nothing sleeps), which is what
 * makes a remembered MD5 stale; nf_files_md5 giving up when cancelled;
 * symlinks that stay inside the folder working and symlinks that lead out
 * of it refused with ENOENT; folders, FIFOs and missing files not being
 * files; nested paths; and nf_files_is_folder (which decides whether
 * "<base>/A/B" is an image or a path-form check). The tables that remember
 * MD5s are tested in test_snapshot.c.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "nofussd.h"
#include "testutil.h"

#define MD5_HELLO "b1946ac92492d2347c6235b4d2611184" /* "hello\n" */
#define MD5_WORLD "591785b794601e212b260e25925636fd" /* "world\n" */
#define MD5_EMPTY "d41d8cd98f00b204e9800998ecf8427e"
#define T_2019    ((time_t)1559642400)               /* Tue, 04 Jun 2019 10:00:00 GMT */

/* One test's folders: <dir>/public is served, <dir>/outside is not. */
struct fixture {
	char *dir; /* malloc'd by nf_test_mkdtemp */
	char pub[128];
	char outside[128];
	struct nf_files *files;
};

/* Helpers ----------------------------------------------------------------- */

/* Writes len bytes to <base>/<rel>, creating or truncating it. */
static void put(const char *base, const char *rel, const void *data, size_t len)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", base, rel);
	nf_test_write_data(path, data, len);
}

static void put_text(const char *base, const char *rel, const char *text)
{
	put(base, rel, text, strlen(text));
}

static void make_dir(const char *base, const char *rel)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", base, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void make_link(const char *base, const char *rel, const char *target)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", base, rel);
	assert_int_equal(symlink(target, path), 0);
}

/* Sets the mtime of <base>/<rel> to t (and, as any change does, its ctime
 * to now). */
static void set_mtime(const char *base, const char *rel, time_t t)
{
	char path[512];
	struct timespec ts[2] = {{t, 0}, {t, 0}};

	snprintf(path, sizeof path, "%s/%s", base, rel);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Lower-case hex MD5 of a buffer, with OpenSSL's EVP. */
static void md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	assert_int_equal(EVP_Digest(data, len, digest, &dlen, EVP_md5(), NULL), 1);
	assert_int_equal(dlen, 16);
	nf_hex_encode(digest, 16, out);
}

/* Gets rel, expecting success; checks its md5 and size and that the fd
 * reads expected. Closes the fd. Holds no heap memory while it asserts. */
static void expect_file(struct nf_files *files, const char *rel, const void *expected,
                        size_t len)
{
	struct nf_file f;
	char md5[33], got_md5[NF_MD5_HEX];
	char *buf;
	ssize_t got;
	bool same;

	memset(&f, 0, sizeof f);
	f.fd = -1;
	if (nf_files_get(files, rel, &f) != 0)
		fail_msg("nf_files_get(\"%s\"): %s", rel, strerror(errno));
	md5_hex(expected, len, md5);
	assert_int_equal(nf_files_md5(f.fd, got_md5, NULL), 0);
	assert_string_equal(got_md5, md5);
	assert_int_equal(f.size, len);
	assert_true(f.fd >= 0);
	buf = malloc(len + 1);
	assert_non_null(buf);
	got = pread(f.fd, buf, len + 1, 0);
	same = got == (ssize_t)len && memcmp(buf, expected, len) == 0;
	free(buf);
	assert_int_equal(close(f.fd), 0);
	if (!same)
		fail_msg("nf_files_get(\"%s\"): the fd does not read the file", rel);
}

/* Gets rel, expecting -1 with ENOENT. */
static void expect_refused(struct nf_files *files, const char *rel)
{
	struct nf_file f;

	memset(&f, 0, sizeof f);
	f.fd = -1;
	errno = 0;
	if (nf_files_get(files, rel, &f) == 0) {
		close(f.fd);
		fail_msg("nf_files_get(\"%s\") succeeded, expected ENOENT", rel);
	}
	if (errno != ENOENT)
		fail_msg("nf_files_get(\"%s\"): %s, expected ENOENT", rel, strerror(errno));
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	char err[512] = "";

	if (fx == NULL)
		return -1;
	fx->dir = nf_test_mkdtemp("files");
	if (fx->dir == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->pub, sizeof fx->pub, "%s/public", fx->dir);
	snprintf(fx->outside, sizeof fx->outside, "%s/outside", fx->dir);
	if (mkdir(fx->pub, 0755) != 0 || mkdir(fx->outside, 0755) != 0)
		return -1;
	fx->files = nf_files_open(fx->pub, err, sizeof err);
	if (fx->files == NULL) {
		fprintf(stderr, "nf_files_open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int rc;

	nf_files_close(fx->files);
	rc = nf_test_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return rc;
}

/* Tests ---------------------------------------------------------------------- */

static void test_open_errors(void **state)
{
	struct fixture *fx = *state;
	char path[256], err[512] = "", want[512];

	snprintf(path, sizeof path, "%s/missing", fx->dir);
	assert_null(nf_files_open(path, err, sizeof err));
	snprintf(want, sizeof want, "public folder %s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);

	put_text(fx->dir, "plain", "x");
	snprintf(path, sizeof path, "%s/plain", fx->dir);
	assert_null(nf_files_open(path, err, sizeof err));
	snprintf(want, sizeof want, "public folder %s: %s", path, strerror(ENOTDIR));
	assert_string_equal(err, want);
}

static void test_md5_size_date(void **state)
{
	struct fixture *fx = *state;
	struct nf_file f;
	char buf[16], md5[NF_MD5_HEX];

	put_text(fx->pub, "hello.bin", "hello\n");
	set_mtime(fx->pub, "hello.bin", T_2019);
	assert_int_equal(nf_files_get(fx->files, "hello.bin", &f), 0);
	assert_int_equal(nf_files_md5(f.fd, md5, NULL), 0);
	assert_string_equal(md5, MD5_HELLO);
	assert_int_equal(f.size, 6);
	assert_int_equal(f.mtime, T_2019);
	assert_string_equal(f.last_modified, "Tue, 04 Jun 2019 10:00:00 GMT");
	/* hashing used pread: the descriptor still reads from the start */
	assert_int_equal(read(f.fd, buf, sizeof buf), 6);
	assert_memory_equal(buf, "hello\n", 6);
	assert_int_equal(close(f.fd), 0);

	/* Last-Modified is always GMT, whatever the local zone */
	setenv("TZ", "XYZ-5", 1);
	tzset();
	set_mtime(fx->pub, "hello.bin", 0);
	assert_int_equal(nf_files_get(fx->files, "hello.bin", &f), 0);
	assert_string_equal(f.last_modified, "Thu, 01 Jan 1970 00:00:00 GMT");
	assert_int_equal(close(f.fd), 0);
	unsetenv("TZ");
	tzset();

	put(fx->pub, "empty.bin", "", 0);
	assert_int_equal(nf_files_get(fx->files, "empty.bin", &f), 0);
	assert_int_equal(nf_files_md5(f.fd, md5, NULL), 0);
	assert_string_equal(md5, MD5_EMPTY);
	assert_int_equal(f.size, 0);
	assert_int_equal(close(f.fd), 0);
}

/* Bigger than files.c's 64 KiB read buffer, not a multiple of it, with
 * bytes of every value (an image starts with 0xE9). */
static void test_md5_large_binary(void **state)
{
	struct fixture *fx = *state;
	size_t len = 3 * 64 * 1024 + 12345;
	unsigned char *data = malloc(len);

	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + i / 256);
	data[0] = 0xE9;
	put(fx->pub, "firmware.bin", data, len);
	expect_file(fx->files, "firmware.bin", data, len);
	free(data);
}

/* Gets rel and returns its identity and MD5; closes the fd. */
static void get_id(struct nf_files *files, const char *rel, struct nf_file_id *id,
                   char md5[NF_MD5_HEX])
{
	struct nf_file f;

	assert_int_equal(nf_files_get(files, rel, &f), 0);
	*id = f.id;
	assert_int_equal(nf_files_md5(f.fd, md5, NULL), 0);
	assert_int_equal(close(f.fd), 0);
}

/* Every way of changing a file changes its identity, so an MD5 remembered
 * for the old identity is never given for the new content. */
static void test_identity_follows_changes(void **state)
{
	struct fixture *fx = *state;
	struct nf_file_id before, after;
	char md5[NF_MD5_HEX], path[256], tmp[256];

	put_text(fx->pub, "a.bin", "hello\n");
	set_mtime(fx->pub, "a.bin", T_2019);
	get_id(fx->files, "a.bin", &before, md5);
	assert_string_equal(md5, MD5_HELLO);
	get_id(fx->files, "a.bin", &after, md5);
	assert_true(nf_file_id_equal(&before, &after)); /* unchanged: same identity */

	/* rewritten in place, same size, another mtime */
	put_text(fx->pub, "a.bin", "world\n");
	set_mtime(fx->pub, "a.bin", T_2019 + 60);
	get_id(fx->files, "a.bin", &after, md5);
	assert_false(nf_file_id_equal(&before, &after));
	assert_string_equal(md5, MD5_WORLD);
	before = after;

	/* replaced by rename (how a deploy does it), same size and same mtime
	 * as the file it replaces: a new inode */
	put_text(fx->pub, "a.bin.tmp", "hello\n");
	set_mtime(fx->pub, "a.bin.tmp", T_2019 + 60);
	snprintf(tmp, sizeof tmp, "%s/a.bin.tmp", fx->pub);
	snprintf(path, sizeof path, "%s/a.bin", fx->pub);
	assert_int_equal(rename(tmp, path), 0);
	get_id(fx->files, "a.bin", &after, md5);
	assert_false(nf_file_id_equal(&before, &after));
	assert_string_equal(md5, MD5_HELLO);
	before = after;

	/* a different size */
	put_text(fx->pub, "a.bin", "hello, world\n");
	set_mtime(fx->pub, "a.bin", T_2019 + 60);
	get_id(fx->files, "a.bin", &after, md5);
	assert_false(nf_file_id_equal(&before, &after));
	expect_file(fx->files, "a.bin", "hello, world\n", 13);
}

/* A cancelled hash gives up with ECANCELED (the hasher at shutdown). */
static void test_md5_cancelled(void **state)
{
	struct fixture *fx = *state;
	atomic_bool cancel;
	struct nf_file f;
	char md5[NF_MD5_HEX];

	put_text(fx->pub, "a.bin", "hello\n");
	assert_int_equal(nf_files_get(fx->files, "a.bin", &f), 0);
	atomic_init(&cancel, true);
	errno = 0;
	assert_int_equal(nf_files_md5(f.fd, md5, &cancel), -1);
	assert_int_equal(errno, ECANCELED);
	atomic_store(&cancel, false);
	assert_int_equal(nf_files_md5(f.fd, md5, &cancel), 0);
	assert_string_equal(md5, MD5_HELLO);
	assert_int_equal(close(f.fd), 0);
}

static void test_nested_paths(void **state)
{
	struct fixture *fx = *state;

	make_dir(fx->pub, "firmware");
	make_dir(fx->pub, "firmware/sonoff");
	make_dir(fx->pub, "firmware/sonoff/basic");
	put_text(fx->pub, "firmware/test-0.1.1.bin", "one\n");
	put_text(fx->pub, "firmware/sonoff/basic/image.bin", "deep\n");
	expect_file(fx->files, "firmware/test-0.1.1.bin", "one\n", 4);
	expect_file(fx->files, "firmware/sonoff/basic/image.bin", "deep\n", 5);
	expect_refused(fx->files, "firmware/sonoff/image.bin");
	/* same name in two folders: two files, two MD5s */
	put_text(fx->pub, "firmware/sonoff/test-0.1.1.bin", "two\n");
	expect_file(fx->files, "firmware/sonoff/test-0.1.1.bin", "two\n", 4);
	expect_file(fx->files, "firmware/test-0.1.1.bin", "one\n", 4);
}

static void test_symlinks_inside(void **state)
{
	struct fixture *fx = *state;

	make_dir(fx->pub, "firmware");
	put_text(fx->pub, "firmware/a-1.2.bin", "hello\n");
	make_link(fx->pub, "latest.bin", "firmware/a-1.2.bin");
	make_link(fx->pub, "firmware/current.bin", "a-1.2.bin");
	make_link(fx->pub, "firmware/up.bin", "../firmware/a-1.2.bin");
	make_link(fx->pub, "stable", "firmware");
	make_link(fx->pub, "chain.bin", "latest.bin");

	expect_file(fx->files, "latest.bin", "hello\n", 6);
	expect_file(fx->files, "firmware/current.bin", "hello\n", 6);
	expect_file(fx->files, "firmware/up.bin", "hello\n", 6);
	expect_file(fx->files, "stable/a-1.2.bin", "hello\n", 6);
	expect_file(fx->files, "chain.bin", "hello\n", 6);
	/* a symlink to a folder inside is a folder, not a file */
	assert_true(nf_files_is_folder(fx->files, "stable", 6));
	assert_false(nf_files_is_folder(fx->files, "latest.bin", 10));
	expect_refused(fx->files, "stable");
	/* dangling symlinks */
	make_link(fx->pub, "dangling.bin", "firmware/none.bin");
	make_link(fx->pub, "gone", "nothing");
	expect_refused(fx->files, "dangling.bin");
	assert_false(nf_files_is_folder(fx->files, "gone", 4));
}

/* An absolute symlink whose target is inside the folder stays inside it. */
static void test_absolute_symlink_inside(void **state)
{
	struct fixture *fx = *state;
	char target[256];

	put_text(fx->pub, "a.bin", "hello\n");
	snprintf(target, sizeof target, "%s/a.bin", fx->pub);
	make_link(fx->pub, "abs.bin", target);
	/* Regression (was a bug): with openat2(RESOLVE_BENEATH) every absolute symlink fails with
	 * EXDEV (mapped to ENOENT), even one that resolves inside the folder,
	 * while the realpath() fallback for older kernels accepts it; so
	 * "ln -s /var/lib/nofuss/public/a.bin abs.bin" works or not depending
	 * on the kernel. Expected: served, as files.c's header promises ("a
	 * symlink that stays inside the folder works"). */
	expect_file(fx->files, "abs.bin", "hello\n", 6);
}

static void test_symlinks_outside(void **state)
{
	struct fixture *fx = *state;
	char target[256];

	put_text(fx->outside, "secret.bin", "secret\n");
	snprintf(target, sizeof target, "%s/secret.bin", fx->outside);
	make_link(fx->pub, "abs-out.bin", target);
	make_link(fx->pub, "rel-out.bin", "../outside/secret.bin");
	make_link(fx->pub, "out", "../outside");
	make_link(fx->pub, "etc", "/etc");
	make_link(fx->pub, "passwd", "/etc/passwd");

	expect_refused(fx->files, "abs-out.bin");
	expect_refused(fx->files, "rel-out.bin");
	expect_refused(fx->files, "out/secret.bin");
	expect_refused(fx->files, "etc/passwd");
	expect_refused(fx->files, "passwd");
	/* the router refuses these too, but files.c must hold on its own */
	expect_refused(fx->files, "../outside/secret.bin");
	expect_refused(fx->files, "/etc/passwd");
	expect_refused(fx->files, "firmware/../../outside/secret.bin");
}

/* What nf_files_is_folder says is a folder of images decides that
 * "<base>/A/B" is served as a file (http.c). */
static void test_is_folder(void **state)
{
	struct fixture *fx = *state;
	char name[NF_MAX_FIELD + 2];

	make_dir(fx->pub, "firmware");
	make_dir(fx->pub, "firmware/sub");
	put_text(fx->pub, "firmware/a.bin", "x");
	put_text(fx->pub, "SONOFF", "a file named like a device");
	assert_true(nf_files_is_folder(fx->files, "firmware", 8));
	/* only the first len bytes count: the router hands out a pointer into
	 * "firmware/a.bin" */
	assert_true(nf_files_is_folder(fx->files, "firmware/a.bin", 8));
	assert_true(nf_files_is_folder(fx->files, "firmwareX", 8));
	assert_false(nf_files_is_folder(fx->files, "firmware", 7));
	assert_false(nf_files_is_folder(fx->files, "firmware", 0));
	assert_false(nf_files_is_folder(fx->files, "SONOFF", 6));   /* a file */
	assert_false(nf_files_is_folder(fx->files, "ESPURNA", 7));  /* missing */
	assert_false(nf_files_is_folder(fx->files, "Firmware", 8)); /* case matters */

	/* longer than NF_MAX_FIELD: never a folder (the router does not make
	 * such a route a check either) */
	memset(name, 'f', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	make_dir(fx->pub, name);
	assert_false(nf_files_is_folder(fx->files, name, NF_MAX_FIELD + 1));
	name[NF_MAX_FIELD] = '\0';
	make_dir(fx->pub, name);
	assert_true(nf_files_is_folder(fx->files, name, NF_MAX_FIELD));
}

/* nf_files_is_folder must agree with nf_files_get about what is under the
 * public folder. */
static void test_is_folder_confined(void **state)
{
	struct fixture *fx = *state;

	put_text(fx->outside, "secret.bin", "secret\n");
	make_link(fx->pub, "out", "../outside");
	make_link(fx->pub, "abs-out", fx->outside);
	make_link(fx->pub, "etc", "/etc");
	expect_refused(fx->files, "out/secret.bin");
	expect_refused(fx->files, "abs-out/secret.bin");
	/* Regression (was a bug): nf_files_is_folder() is a plain fstatat() that follows symlinks
	 * anywhere, so a symlink to a folder outside the public folder counts
	 * as a folder of images: http.c then sends "<base>/out/1.0" to
	 * serve_file, which nf_files_get refuses, and the device gets a 404
	 * instead of its path-form check answer. Expected: false, as the
	 * contract says ("a folder directly inside the public folder (a
	 * symlink to one counts)"). */
	assert_false(nf_files_is_folder(fx->files, "out", 3));
	assert_false(nf_files_is_folder(fx->files, "abs-out", 7));
	assert_false(nf_files_is_folder(fx->files, "etc", 3));
}

static void test_not_files(void **state)
{
	struct fixture *fx = *state;

	make_dir(fx->pub, "firmware");
	put_text(fx->pub, "firmware/a.bin", "x");
	expect_refused(fx->files, "firmware");
	expect_refused(fx->files, "firmware/");
	expect_refused(fx->files, "");
	expect_refused(fx->files, ".");
	expect_refused(fx->files, "missing.bin");
	expect_refused(fx->files, "firmware/missing.bin");
	expect_refused(fx->files, "missing/a.bin");
	/* a file used as a folder: ENOTDIR is "not found" too (http.c) */
	struct nf_file f;
	errno = 0;
	assert_int_equal(nf_files_get(fx->files, "firmware/a.bin/x", &f), -1);
	assert_true(errno == ENOENT || errno == ENOTDIR);
	expect_file(fx->files, "firmware/a.bin", "x", 1);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A FIFO is not a regular file, and looking at it must not block the
 * single-threaded daemon. */
static void test_fifo_not_opened(void **state)
{
	struct fixture *fx = *state;
	struct sigaction sa, old;
	char path[256];
	struct nf_file f;
	int rc, saved;

	snprintf(path, sizeof path, "%s/pipe.bin", fx->pub);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_false(nf_files_is_folder(fx->files, "pipe.bin", 8));

	/* No SA_RESTART: a blocked open() comes back with EINTR after 2 s. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	alarm(2);
	errno = 0;
	rc = nf_files_get(fx->files, "pipe.bin", &f);
	saved = errno;
	alarm(0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	if (rc == 0)
		close(f.fd);
	assert_int_equal(rc, -1);
	/* Regression (was a bug): open_beneath() opens without O_NONBLOCK before checking the
	 * file type, so opening a FIFO in the public folder blocks until a
	 * writer appears: the whole daemon hangs (here the alarm interrupts it
	 * and errno is EINTR). Expected: -1 with ENOENT at once. */
	assert_int_equal(saved, ENOENT);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_open_errors),
		T(test_md5_size_date),
		T(test_md5_large_binary),
		T(test_identity_follows_changes),
		T(test_md5_cancelled),
		T(test_nested_paths),
		T(test_symlinks_inside),
		T(test_absolute_symlink_inside),
		T(test_symlinks_outside),
		T(test_is_folder),
		T(test_is_folder_confined),
		T(test_not_files),
		T(test_fifo_not_opened),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
