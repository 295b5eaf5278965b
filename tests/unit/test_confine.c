/*
 * test_confine.c - unit tests for confine.c: opens beneath the public
 * folder, through the kernel's openat2(RESOLVE_BENEATH) and through the
 * component-by-component walk (forced by clearing use_openat2, as on a
 * kernel without openat2), on a real folder made with mkdtemp().
 *
 * Two races from an attack on nofussd are replayed with a thread renaming
 * folders while the test opens, bounded in count and time:
 *  - a folder on the path swapped, again and again, for a symlink that
 *    leads out (renameat2 RENAME_EXCHANGE): no open may ever reach the
 *    outside file (the old realpath() fallback did, 802 times in 23,136);
 *  - unrelated renames while opening through an inside "../" symlink: the
 *    kernel answers EAGAIN now and then, which must be retried, not
 *    reported (it gave 270 spurious 500s in 3,178 downloads).
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "nofussd.h"
#include "testutil.h"

#define RACE_OPENS 10000
#define RACE_MS    4000
#define RACE_MIN_OPENS 50 /* opens during the race, however slow the run */

struct fixture {
	char *dir;
	char pub[256], outside[256];
	struct nf_confine c;
};

static void path_of(char *out, size_t cap, const char *base, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", base, rel);

	assert_true(n > 0 && (size_t)n < cap);
}

static void put_text(const char *base, const char *rel, const char *text)
{
	char path[512];

	path_of(path, sizeof path, base, rel);
	nf_test_write_file(path, text);
}

static void make_dir(const char *base, const char *rel)
{
	char path[512];

	path_of(path, sizeof path, base, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void make_link(const char *base, const char *rel, const char *target)
{
	char path[512];

	path_of(path, sizeof path, base, rel);
	assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	fx->dir = nf_test_mkdtemp("confine");
	path_of(fx->pub, sizeof fx->pub, fx->dir, "public");
	path_of(fx->outside, sizeof fx->outside, fx->dir, "outside");
	assert_int_equal(mkdir(fx->pub, 0755), 0);
	assert_int_equal(mkdir(fx->outside, 0755), 0);
	assert_non_null(realpath(fx->pub, fx->c.root));
	fx->c.rootlen = strlen(fx->c.root);
	fx->c.rootfd = open(fx->c.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->c.rootfd >= 0);
	fx->c.use_openat2 = true;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	close(fx->c.rootfd);
	nf_test_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* The file's first bytes as text, "" when it cannot be opened. */
static void read_beneath(struct nf_confine *c, const char *rel, char *out, size_t cap)
{
	int fd = nf_confine_open(c, rel, O_RDONLY);
	ssize_t n = fd < 0 ? 0 : read(fd, out, cap - 1);

	out[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void expect_text(struct nf_confine *c, const char *rel, const char *want)
{
	char got[64];

	read_beneath(c, rel, got, sizeof got);
	if (strcmp(got, want) != 0)
		fail_msg("%s (openat2 %s): read \"%s\", want \"%s\"", rel,
		         c->use_openat2 ? "on" : "off", got, want);
}

static void expect_refused(struct nf_confine *c, const char *rel)
{
	int fd = nf_confine_open(c, rel, O_RDONLY);

	if (fd >= 0) {
		close(fd);
		fail_msg("%s (openat2 %s): opened, must be refused", rel,
		         c->use_openat2 ? "on" : "off");
	}
}

/* Every way in and out, through both resolutions. */
static void test_inside_and_outside(void **state)
{
	struct fixture *fx = *state;
	char target[512];

	make_dir(fx->pub, "firmware");
	make_dir(fx->pub, "firmware/deep");
	put_text(fx->pub, "firmware/a.bin", "inside");
	put_text(fx->outside, "secret.bin", "secret");
	make_link(fx->pub, "rel.bin", "firmware/a.bin");
	make_link(fx->pub, "firmware/deep/up.bin", "../a.bin");
	make_link(fx->pub, "stable", "firmware");
	make_link(fx->pub, "chain.bin", "rel.bin");
	path_of(target, sizeof target, fx->c.root, "firmware/a.bin");
	make_link(fx->pub, "abs.bin", target);
	path_of(target, sizeof target, fx->c.root, "firmware");
	make_link(fx->pub, "absdir", target);
	path_of(target, sizeof target, fx->outside, "secret.bin");
	make_link(fx->pub, "abs-out.bin", target);
	make_link(fx->pub, "rel-out.bin", "../outside/secret.bin");
	make_link(fx->pub, "out", "../outside");
	make_link(fx->pub, "etc", "/etc");
	make_link(fx->pub, "loop1", "loop2");
	make_link(fx->pub, "loop2", "loop1");
	/* a prefix of the folder's path is not the folder */
	path_of(target, sizeof target - 8, fx->c.root, "");
	memcpy(target + strlen(target) - 1, "X/a.bin", 8); /* <root>X/a.bin */
	make_link(fx->pub, "prefix.bin", target);

	for (int kernel = 1; kernel >= 0; kernel--) {
		fx->c.use_openat2 = kernel;
		expect_text(&fx->c, "firmware/a.bin", "inside");
		expect_text(&fx->c, "rel.bin", "inside");
		expect_text(&fx->c, "chain.bin", "inside");
		expect_text(&fx->c, "firmware/deep/up.bin", "inside");
		expect_text(&fx->c, "stable/a.bin", "inside");
		expect_text(&fx->c, "abs.bin", "inside");
		expect_text(&fx->c, "absdir/a.bin", "inside");
		expect_text(&fx->c, "absdir/deep/up.bin", "inside");
		expect_text(&fx->c, "firmware/deep/../a.bin", "inside");
		expect_refused(&fx->c, "abs-out.bin");
		expect_refused(&fx->c, "rel-out.bin");
		expect_refused(&fx->c, "out/secret.bin");
		expect_refused(&fx->c, "etc/passwd");
		expect_refused(&fx->c, "../outside/secret.bin");
		expect_refused(&fx->c, "firmware/../../outside/secret.bin");
		expect_refused(&fx->c, "/etc/passwd");
		expect_refused(&fx->c, "prefix.bin");
		expect_refused(&fx->c, "missing.bin");
		expect_refused(&fx->c, "firmware/a.bin/x");
		expect_refused(&fx->c, "loop1");
		/* a file is not a folder, even through a symlink */
		assert_int_equal(nf_confine_open(&fx->c, "rel.bin", O_PATH | O_DIRECTORY), -1);
		assert_int_equal(nf_confine_open(&fx->c, "firmware/a.bin", O_PATH | O_DIRECTORY), -1);
	}
	/* a symlink loop says so */
	fx->c.use_openat2 = false;
	assert_int_equal(nf_confine_open(&fx->c, "loop1", O_RDONLY), -1);
	assert_int_equal(errno, ELOOP);
	/* the walk ends at a folder: O_PATH | O_DIRECTORY opens it */
	int fd = nf_confine_open(&fx->c, "absdir", O_PATH | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
}

/* Renames, on a thread of its own, until told to stop or for RACE_MS. */
struct renamer {
	char a[512], b[512];
	atomic_bool stop;
	atomic_long swaps;
};

static void *rename_loop(void *arg)
{
	struct renamer *r = arg;
	uint64_t end = nf_clock_ms() + RACE_MS + 2000;

	while (!atomic_load(&r->stop) && nf_clock_ms() < end) {
		if (renameat2(AT_FDCWD, r->a, AT_FDCWD, r->b, RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&r->swaps, 1);
		/* Let the opener run: under valgrind, which runs one thread at
		 * a time, a loop that never yields starved it (1 open in the
		 * whole race). */
		sched_yield();
	}
	return NULL;
}

/* public/sub is, turn by turn, a folder and a symlink that leads out:
 * whatever the moment, public/sub/x/abs.bin is the inside file or
 * nothing, never the outside one. */
static void test_folder_swapped_for_symlink_out(void **state)
{
	struct fixture *fx = *state;
	struct renamer r = {.stop = false, .swaps = 0};
	char target[512], got[64];
	long inside = 0, outside = 0, refused = 0;
	pthread_t t;

	make_dir(fx->pub, "sub");
	make_dir(fx->pub, "sub/x");
	put_text(fx->pub, "sub/x/real.bin", "inside");
	path_of(target, sizeof target, fx->c.root, "sub/x/real.bin");
	make_link(fx->pub, "sub/x/abs.bin", target);
	make_dir(fx->outside, "subX");
	make_dir(fx->outside, "subX/x");
	put_text(fx->outside, "subX/x/real.bin", "OUTSIDE");
	put_text(fx->outside, "subX/x/abs.bin", "OUTSIDE");
	path_of(target, sizeof target, fx->outside, "subX");
	make_link(fx->pub, "sublink", target);
	path_of(r.a, sizeof r.a, fx->pub, "sub");
	path_of(r.b, sizeof r.b, fx->pub, "sublink");

	assert_int_equal(pthread_create(&t, NULL, rename_loop, &r), 0);
	uint64_t end = nf_clock_ms() + RACE_MS;
	/* At least RACE_MIN_OPENS even on a slow run (valgrind), while the
	 * renamer still runs (it stops RACE_MS + 2 s after it started). */
	for (int i = 0; i < RACE_OPENS && (nf_clock_ms() < end || i < RACE_MIN_OPENS); i++) {
		fx->c.use_openat2 = i % 2; /* both resolutions */
		read_beneath(&fx->c, i % 4 < 2 ? "sub/x/abs.bin" : "sub/x/real.bin", got, sizeof got);
		if (strcmp(got, "inside") == 0)
			inside++;
		else if (strcmp(got, "") == 0)
			refused++;
		else
			outside++;
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	print_message("%ld inside, %ld refused, %ld outside, %ld swaps\n", inside, refused,
	              outside, atomic_load(&r.swaps));
	assert_int_equal(outside, 0);
	assert_true(inside > 0);
	assert_true(atomic_load(&r.swaps) > 0);
}

/* Renames elsewhere make the kernel answer EAGAIN to a ".." walk now and
 * then: an inside "../" symlink must still open, every time. */
static void test_unrelated_renames_never_fail_an_open(void **state)
{
	struct fixture *fx = *state;
	struct renamer r = {.stop = false, .swaps = 0};
	long failed = 0, opened = 0;
	pthread_t t;

	make_dir(fx->pub, "a");
	make_dir(fx->pub, "b");
	put_text(fx->pub, "b/real.bin", "inside");
	make_link(fx->pub, "a/up.bin", "../b/real.bin");
	make_dir(fx->pub, "t1");
	make_dir(fx->pub, "t2");
	path_of(r.a, sizeof r.a, fx->pub, "t1");
	path_of(r.b, sizeof r.b, fx->pub, "t2");

	assert_int_equal(pthread_create(&t, NULL, rename_loop, &r), 0);
	uint64_t end = nf_clock_ms() + RACE_MS;
	for (int i = 0; i < RACE_OPENS && nf_clock_ms() < end; i++) {
		int fd = nf_confine_open(&fx->c, "a/up.bin", O_RDONLY);
		if (fd < 0) {
			failed++;
		} else {
			opened++;
			close(fd);
		}
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	print_message("%ld opened, %ld failed, %ld renames\n", opened, failed,
	              atomic_load(&r.swaps));
	assert_int_equal(failed, 0);
	assert_true(opened > 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_inside_and_outside),
	    T(test_folder_swapped_for_symlink_out),
	    T(test_unrelated_renames_never_fail_an_open),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
