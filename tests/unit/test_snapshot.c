/*
 * test_snapshot.c - unit tests for the served state and the threads that
 * make it: snapshot.c, digests.c, mailbox.c, builder.c and hasher.c.
 *
 * Everything runs on real files in a mkdtemp() folder (versions.json and
 * public/), with real threads. The snapshot builder: images' MD5s computed
 * on the first build, taken from the previous snapshot when the files are
 * unchanged, computed again when a file changed in place; a failed build
 * (bad rules, missing folder) returning nothing and leaving the previous
 * snapshot whole; missing-image warnings summed up past
 * NF_MAX_IMAGE_WARNINGS (stderr captured in a file). The builder thread
 * with the mailbox: a failed reload posts its reason and the latest
 * snapshot stays; a good one posts a newer snapshot; requests made in a row
 * coalesce; a retired snapshot is released on the builder thread. The mailbox's one slot; the digest table; the hasher. Every
 * wait is bounded (poll with a timeout).
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "nofussd.h"
#include "testutil.h"

#define MD5_HELLO "b1946ac92492d2347c6235b4d2611184" /* "hello\n" */
#define MD5_WORLD "591785b794601e212b260e25925636fd" /* "world\n" */
#define WAIT_MS   10000                              /* longest wait for a thread */

/* One test's folder: <dir>/versions.json and <dir>/public/. */
struct fixture {
	char *dir;
	char rules[256];
	char pub[256];
	struct nf_snapshot_params params;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);

	if (fx == NULL || (fx->dir = nf_test_mkdtemp("snapshot")) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->rules, sizeof fx->rules, "%s/versions.json", fx->dir);
	snprintf(fx->pub, sizeof fx->pub, "%s/public", fx->dir);
	if (mkdir(fx->pub, 0755) != 0)
		return -1;
	fx->params = (struct nf_snapshot_params){.rules_path = fx->rules, .public_dir = fx->pub, .hash = true};
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int rc = nf_test_rmtree(fx->dir);

	free(fx->dir);
	free(fx);
	return rc;
}

/* Helpers ----------------------------------------------------------------- */

static void put_image(struct fixture *fx, const char *rel, const char *text, time_t mtime)
{
	char path[512];
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};

	snprintf(path, sizeof path, "%s/%s", fx->pub, rel);
	nf_test_write_file(path, text);
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Two rules: device A gets /a.bin, device B gets /b.bin and an external
 * spiffs; a third names /a.bin again. */
static void write_two_image_rules(struct fixture *fx)
{
	nf_test_write_file(fx->rules,
	    "[{\"origin\":{\"device\":\"A\"},\"target\":{\"version\":\"2\",\"firmware\":\"/a.bin\"}},"
	    " {\"origin\":{\"device\":\"B\"},\"target\":{\"version\":\"2\",\"firmware\":\"b.bin\","
	    "\"spiffs\":\"http://cdn.example/fs.bin\"}},"
	    " {\"origin\":{\"device\":\"C\"},\"target\":{\"version\":\"2\",\"firmware\":\"/a.bin\"}}]");
}

static struct nf_snapshot *build_ok(struct fixture *fx, const struct nf_snapshot *prev)
{
	char err[NF_ERR_LEN] = "";
	struct nf_snapshot *s = nf_snapshot_build(&fx->params, prev, err, sizeof err);

	if (s == NULL)
		fail_msg("build failed: %s", err);
	return s;
}

/* The MD5 snapshot s holds for the file as it is now, or NULL. */
static const char *md5_in(const struct nf_snapshot *s, const char *rel)
{
	struct nf_file f;
	const char *md5;

	assert_int_equal(nf_files_get(s->files, rel, &f), 0);
	md5 = nf_digests_get(s->digests, &f.id);
	close(f.fd);
	return md5;
}

static void wait_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, WAIT_MS) != 1)
		fail_msg("nothing came within %d ms", WAIT_MS);
}

/* Waits for mail and takes it. */
static void take_mail(struct nf_mailbox *mb, struct nf_mail *mail)
{
	wait_readable(nf_mailbox_fd(mb));
	assert_true(nf_mailbox_take(mb, mail));
}

/* Builds with stderr going to a file; returns what was written there,
 * malloc'd. */
static char *build_capturing_stderr(struct fixture *fx, struct nf_snapshot **out)
{
	char path[512], err[NF_ERR_LEN];
	int saved, fd;

	snprintf(path, sizeof path, "%s/stderr.txt", fx->dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	*out = nf_snapshot_build(&fx->params, NULL, err, sizeof err);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	return nf_test_read_file(path);
}

static size_t count(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* The snapshot builder ------------------------------------------------------ */

static void test_digests_reused_and_recomputed(void **state)
{
	struct fixture *fx = *state;
	struct nf_snapshot *s1, *s2, *s3;

	put_image(fx, "a.bin", "hello\n", 1559642400);
	put_image(fx, "b.bin", "world\n", 1559642400);
	write_two_image_rules(fx);

	/* first build: both images read once (a.bin is named twice) */
	s1 = build_ok(fx, NULL);
	assert_int_equal(nf_rules_count(s1->rules), 3);
	assert_int_equal(s1->hashed, 2);
	assert_int_equal(s1->reused, 0);
	assert_int_equal(s1->bad_images, 0);
	assert_string_equal(md5_in(s1, "a.bin"), MD5_HELLO);
	assert_string_equal(md5_in(s1, "b.bin"), MD5_WORLD);
	assert_non_null(s1->answers[2]);
	assert_non_null(s1->empty);
	/* what the fleet store records of each rule's images: one entry per
	 * path (rules 0 and 2 share a.bin); the external spiffs by its URL,
	 * with no size or MD5 */
	assert_ptr_equal(nf_snapshot_image(s1, 0, 0), nf_snapshot_image(s1, 2, 0));
	assert_string_equal(nf_snapshot_image(s1, 0, 0)->md5, MD5_HELLO);
	assert_string_equal(nf_snapshot_image(s1, 0, 0)->key, "/a.bin");
	assert_string_equal(nf_snapshot_image(s1, 1, 0)->key, "/b.bin"); /* "b.bin" in the rule */
	assert_int_equal(nf_snapshot_image(s1, 0, 0)->size, 6);
	assert_string_equal(nf_snapshot_image(s1, 1, 0)->md5, MD5_WORLD);
	assert_null(nf_snapshot_image(s1, 0, 1));
	assert_string_equal(nf_snapshot_image(s1, 1, 1)->key, "http://cdn.example/fs.bin");
	assert_string_equal(nf_snapshot_image(s1, 1, 1)->md5, "");
	assert_false(nf_snapshot_image(s1, 1, 1)->present);
	assert_null(nf_snapshot_image(s1, 3, 0)); /* no such rule */
	assert_null(nf_snapshot_image(s1, 0, 2));

	/* nothing changed: nothing read */
	s2 = build_ok(fx, s1);
	assert_true(s2->generation > s1->generation);
	assert_int_equal(s2->hashed, 0);
	assert_int_equal(s2->reused, 2);
	assert_string_equal(md5_in(s2, "a.bin"), MD5_HELLO);

	/* a.bin rewritten in place, same size: read again; b.bin reused */
	put_image(fx, "a.bin", "world\n", 1559642460);
	s3 = build_ok(fx, s2);
	assert_int_equal(s3->hashed, 1);
	assert_int_equal(s3->reused, 1);
	assert_string_equal(md5_in(s3, "a.bin"), MD5_WORLD);
	assert_string_equal(md5_in(s3, "b.bin"), MD5_WORLD);
	assert_string_equal(nf_snapshot_image(s3, 2, 0)->md5, MD5_WORLD);
	assert_string_equal(nf_snapshot_image(s1, 2, 0)->md5, MD5_HELLO); /* s1 unchanged */
	/* the older snapshot knows nothing of the new file */
	assert_null(md5_in(s2, "a.bin"));

	nf_snapshot_release(s1);
	nf_snapshot_release(s2);
	nf_snapshot_release(s3);
}

/* Two names of one file (a symlink): each rule's image keeps the path it
 * names, as the device will ask for it, with the file's MD5. */
static void test_image_keys_per_path(void **state)
{
	struct fixture *fx = *state;
	struct nf_snapshot *s;
	char link[512];

	put_image(fx, "a.bin", "hello\n", 1559642400);
	snprintf(link, sizeof link, "%s/c.bin", fx->pub);
	assert_int_equal(symlink("a.bin", link), 0);
	nf_test_write_file(fx->rules,
	    "[{\"origin\":{\"device\":\"A\"},\"target\":{\"version\":\"2\",\"firmware\":\"/a.bin\"}},"
	    " {\"origin\":{\"device\":\"C\"},\"target\":{\"version\":\"2\",\"firmware\":\"/c.bin\"}},"
	    " {\"origin\":{\"device\":\"D\"},\"target\":{\"version\":\"2\",\"firmware\":\"//a.bin\"}}]");
	s = build_ok(fx, NULL);
	assert_int_equal(s->hashed, 1);
	assert_string_equal(nf_snapshot_image(s, 0, 0)->key, "/a.bin");
	assert_string_equal(nf_snapshot_image(s, 1, 0)->key, "/c.bin");
	assert_string_equal(nf_snapshot_image(s, 1, 0)->md5, MD5_HELLO);
	/* "//a.bin" is "/a.bin" to the store: one key, one MD5 */
	assert_string_equal(nf_snapshot_image(s, 2, 0)->key, "/a.bin");
	assert_string_equal(nf_snapshot_image(s, 2, 0)->md5, MD5_HELLO);
	nf_snapshot_release(s);
}

/* A build that fails returns nothing: no rules, no folder, nothing half
 * made; the previous snapshot is untouched. */
static void test_failed_build_keeps_old(void **state)
{
	struct fixture *fx = *state;
	char err[NF_ERR_LEN], want[NF_ERR_LEN];
	struct nf_snapshot *s1, *s;
	struct nf_snapshot_params gone = fx->params;
	char missing[300];

	put_image(fx, "a.bin", "hello\n", 1559642400);
	put_image(fx, "b.bin", "world\n", 1559642400);
	write_two_image_rules(fx);
	s1 = build_ok(fx, NULL);

	nf_test_write_file(fx->rules, "[{\"origin\":{\"device\":\"A\"}}]");
	s = nf_snapshot_build(&fx->params, s1, err, sizeof err);
	assert_null(s);
	snprintf(want, sizeof want, "%s: rule 1: target: missing", fx->rules);
	assert_string_equal(err, want);

	/* good rules, but the public folder is gone: all or nothing */
	write_two_image_rules(fx);
	snprintf(missing, sizeof missing, "%s/nope", fx->dir);
	gone.public_dir = missing;
	s = nf_snapshot_build(&gone, s1, err, sizeof err);
	assert_null(s);
	snprintf(want, sizeof want, "public folder %s: %s", missing, strerror(ENOENT));
	assert_string_equal(err, want);

	/* the old snapshot still answers */
	assert_int_equal(nf_rules_count(s1->rules), 3);
	assert_string_equal(md5_in(s1, "a.bin"), MD5_HELLO);
	nf_snapshot_release(s1);
}

/* 26 rules naming images that cannot be served: rule 3 an empty file,
 * rule 26 a hidden name, the others missing files. */
static void write_bad_image_rules(struct fixture *fx)
{
	enum { CAP = 16 * 1024 };
	char *rules = malloc(CAP), image[32];
	size_t n = 0;

	assert_non_null(rules);
	n += (size_t)snprintf(rules, CAP, "[");
	for (int i = 0; i < 26; i++) {
		if (i == 2)
			snprintf(image, sizeof image, "empty.bin");
		else if (i == 25)
			snprintf(image, sizeof image, ".hidden.bin");
		else
			snprintf(image, sizeof image, "gone%d.bin", i);
		n += (size_t)snprintf(rules + n, CAP - n,
		                      "%s{\"origin\":{\"device\":\"D%d\"},\"target\":{\"version\":\"2\","
		                      "\"firmware\":\"/%s\"}}",
		                      i ? "," : "", i, image);
	}
	snprintf(rules + n, CAP - n, "]");
	nf_test_write_file(fx->rules, rules);
	free(rules);
}

static void test_missing_image_warnings_summarised(void **state)
{
	struct fixture *fx = *state;
	struct nf_snapshot *s;
	char *log, want[NF_ERR_LEN];

	put_image(fx, "empty.bin", "", 1559642400);
	write_bad_image_rules(fx);
	log = build_capturing_stderr(fx, &s);
	assert_non_null(s);
	assert_int_equal(s->bad_images, 26);
	/* the first ten rules one by one: 9 missing, 1 empty */
	assert_int_equal(count(log, ": no such file\n"), 9);
	assert_int_equal(count(log, ": empty file\n"), 1);
	assert_int_equal(count(log, "never served"), 0);
	snprintf(want, sizeof want, "%s: rule 1: target.firmware: %s/gone0.bin: no such file\n",
	         fx->rules, fx->pub);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof want, "%s: rule 10: target.firmware:", fx->rules);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof want, "%s: rule 11:", fx->rules);
	assert_null(strstr(log, want));
	/* then one line for the other 16 */
	snprintf(want, sizeof want, "%s: and 16 more rules name missing or empty images\n",
	         fx->rules);
	assert_non_null(strstr(log, want));
	assert_int_equal(count(log, "\n"), 11);
	free(log);
	nf_snapshot_release(s);
}

/* Fewer than NF_MAX_IMAGE_WARNINGS: every one is printed, no summary. */
static void test_few_warnings_not_summarised(void **state)
{
	struct fixture *fx = *state;
	struct nf_snapshot *s;
	char *log;

	write_two_image_rules(fx); /* neither a.bin nor b.bin exists */
	log = build_capturing_stderr(fx, &s);
	assert_non_null(s);
	assert_int_equal(s->bad_images, 3);
	assert_int_equal(count(log, ": no such file\n"), 3);
	assert_null(strstr(log, "more rules"));
	free(log);
	nf_snapshot_release(s);
}

/* The builder thread and the mailbox ---------------------------------------- */

static void test_builder_failure_keeps_latest(void **state)
{
	struct fixture *fx = *state;
	char err[NF_ERR_LEN];
	struct nf_snapshot *s1 = NULL, *latest;
	struct nf_mailbox *mb;
	struct nf_builder *b;
	struct nf_mail mail;

	put_image(fx, "a.bin", "hello\n", 1559642400);
	put_image(fx, "b.bin", "world\n", 1559642400);
	write_two_image_rules(fx);
	s1 = build_ok(fx, NULL);
	mb = nf_mailbox_new(s1, err, sizeof err);
	assert_non_null(mb);
	b = nf_builder_start(&fx->params, mb, err, sizeof err);
	assert_non_null(b);
	assert_false(nf_mailbox_take(mb, &mail));

	nf_test_write_file(fx->rules, "[{");
	nf_builder_request(b);
	take_mail(mb, &mail);
	assert_null(mail.snap);
	assert_non_null(strstr(mail.failure, "versions.json:1:"));
	latest = nf_mailbox_latest(mb);
	assert_ptr_equal(latest, s1);
	nf_snapshot_release(latest);

	put_image(fx, "c.bin", "hello\n", 1559642400);
	nf_test_write_file(fx->rules, "[{\"origin\":{\"device\":\"A\"},\"target\":{\"version\":\"3\","
	                              "\"firmware\":\"/a.bin\",\"spiffs\":\"/c.bin\"}}]");
	nf_builder_request(b);
	take_mail(mb, &mail);
	assert_non_null(mail.snap);
	assert_string_equal(mail.failure, "");
	assert_true(mail.snap->generation > s1->generation);
	assert_int_equal(nf_rules_count(mail.snap->rules), 1);
	assert_int_equal(mail.snap->reused, 1); /* a.bin, from s1 */
	assert_int_equal(mail.snap->hashed, 1); /* c.bin */
	assert_memory_equal(mail.note, "reloaded ", 9);
	assert_non_null(strstr(mail.note, ": 1 rules"));
	latest = nf_mailbox_latest(mb);
	assert_ptr_equal(latest, mail.snap);
	nf_snapshot_release(latest);
	nf_snapshot_release(mail.snap);

	nf_builder_stop(b);
	nf_mailbox_free(mb);
	nf_snapshot_release(s1);
}

/* Requests in a row: one build, or two when the builder had already begun
 * the first; never one per request. */
static void test_builder_requests_coalesce(void **state)
{
	struct fixture *fx = *state;
	char err[NF_ERR_LEN];
	struct nf_snapshot *s1, *latest;
	struct nf_mailbox *mb;
	struct nf_builder *b;
	struct nf_mail mail;
	uint64_t builds;

	write_two_image_rules(fx);
	nf_log_set_level(NF_LOG_ERROR); /* the images are missing: no warnings */
	s1 = build_ok(fx, NULL);
	mb = nf_mailbox_new(s1, err, sizeof err);
	b = nf_builder_start(&fx->params, mb, err, sizeof err);
	assert_non_null(b);
	for (int i = 0; i < 20; i++)
		nf_builder_request(b);
	take_mail(mb, &mail);
	nf_snapshot_release(mail.snap);
	/* a second build, if one was due, is done well within this */
	if (poll(&(struct pollfd){.fd = nf_mailbox_fd(mb), .events = POLLIN}, 1, 1000) == 1) {
		assert_true(nf_mailbox_take(mb, &mail));
		nf_snapshot_release(mail.snap);
	}
	/* a snapshot the loop stops serving is released on the builder thread */
	nf_builder_retire(b, nf_snapshot_retain(s1));
	for (int i = 0; i < WAIT_MS && atomic_load(&s1->refs) > 1; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&s1->refs), 1); /* ours alone: the mailbox moved on */
	nf_builder_stop(b);
	latest = nf_mailbox_latest(mb);
	builds = latest->generation - s1->generation;
	assert_true(builds >= 1 && builds <= 2);
	assert_false(nf_mailbox_take(mb, &mail));
	nf_snapshot_release(latest);
	nf_mailbox_free(mb);
	nf_snapshot_release(s1);
	nf_log_set_level(NF_LOG_INFO);
}

/* One slot: a newer snapshot replaces one not taken (and releases it);
 * failures keep their order relative to the snapshot. */
static void test_mailbox_one_slot(void **state)
{
	struct fixture *fx = *state;
	char err[NF_ERR_LEN];
	struct nf_snapshot *s1, *s2, *s3;
	struct nf_mailbox *mb;
	struct nf_mail mail;

	nf_test_write_file(fx->rules, "[]");
	s1 = build_ok(fx, NULL);
	s2 = build_ok(fx, s1);
	s3 = build_ok(fx, s2);
	mb = nf_mailbox_new(s1, err, sizeof err);
	assert_non_null(mb);

	nf_snapshot_retain(s2); /* to watch it */
	nf_mailbox_post(mb, s2, "two");
	nf_mailbox_post(mb, NULL, "broken");
	nf_mailbox_post(mb, s3, "three");
	assert_int_equal(atomic_load(&s2->refs), 1); /* only ours is left */
	take_mail(mb, &mail);
	assert_ptr_equal(mail.snap, s3);
	assert_string_equal(mail.note, "three");
	assert_string_equal(mail.failure, "broken");
	assert_false(mail.failure_last);
	nf_snapshot_release(mail.snap);
	assert_false(nf_mailbox_take(mb, &mail));

	nf_mailbox_post(mb, nf_snapshot_retain(s2), "two again");
	nf_mailbox_post(mb, NULL, "broken again");
	take_mail(mb, &mail);
	assert_ptr_equal(mail.snap, s2);
	assert_true(mail.failure_last);
	nf_snapshot_release(mail.snap);

	nf_mailbox_free(mb);
	nf_snapshot_release(s2);
	nf_snapshot_release(s1);
}

/* The digest table and the hasher ------------------------------------------- */

static void test_digests_table(void **state)
{
	struct nf_digests *d = nf_digests_new();
	struct nf_file_id id;
	char md5[NF_MD5_HEX];

	(void)state;
	assert_non_null(d);
	memset(&id, 0, sizeof id);
	for (int i = 0; i < 5000; i++) { /* many times the first size */
		id.dev = 7;
		id.ino = (ino_t)i;
		id.size = i;
		snprintf(md5, sizeof md5, "%032d", i);
		assert_int_equal(nf_digests_put(d, &id, md5), 0);
	}
	assert_int_equal(nf_digests_count(d), 5000);
	for (int i = 0; i < 5000; i += 7) {
		id.ino = (ino_t)i;
		id.size = i;
		snprintf(md5, sizeof md5, "%032d", i);
		assert_string_equal(nf_digests_get(d, &id), md5);
	}
	/* same inode, anything else changed: not this file any more */
	id.ino = 42;
	id.size = 42;
	id.mtim.tv_nsec = 1;
	assert_null(nf_digests_get(d, &id));
	assert_int_equal(nf_digests_put(d, &id, MD5_HELLO), 0); /* replaces */
	assert_int_equal(nf_digests_count(d), 5000);
	assert_string_equal(nf_digests_get(d, &id), MD5_HELLO);
	id.dev = 8;
	assert_null(nf_digests_get(d, &id));
	nf_digests_clear(d);
	assert_int_equal(nf_digests_count(d), 0);
	id.dev = 7;
	assert_null(nf_digests_get(d, &id));
	nf_digests_free(d);
}

static void test_hasher(void **state)
{
	struct fixture *fx = *state;
	char err[NF_ERR_LEN], path[300];
	struct nf_hash_job jobs[NF_MAX_HASH_JOBS + 1], extra, *done;
	struct nf_hasher *h = nf_hasher_start(err, sizeof err);
	int fd, got = 0;

	assert_non_null(h);
	put_image(fx, "a.bin", "hello\n", 1559642400);
	snprintf(path, sizeof path, "%s/a.bin", fx->pub);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);

	jobs[0].fd = fd;
	assert_int_equal(nf_hasher_submit(h, &jobs[0]), 0);
	while (got == 0) {
		wait_readable(nf_hasher_fd(h));
		for (done = nf_hasher_collect(h); done != NULL; done = done->next, got++) {
			assert_ptr_equal(done, &jobs[0]);
			assert_int_equal(done->error, 0);
			assert_string_equal(done->md5, MD5_HELLO);
		}
	}
	/* bounded: NF_MAX_HASH_JOBS in flight, then refused */
	for (int i = 0; i < NF_MAX_HASH_JOBS; i++) {
		jobs[i].fd = fd;
		assert_int_equal(nf_hasher_submit(h, &jobs[i]), 0);
	}
	extra.fd = fd;
	assert_int_equal(nf_hasher_submit(h, &extra), -1);
	/* stopping hands back every job not collected, done or cancelled */
	got = 0;
	for (done = nf_hasher_stop(h); done != NULL; done = done->next, got++)
		assert_true(done->error == 0 || done->error == ECANCELED);
	assert_int_equal(got, NF_MAX_HASH_JOBS);
	close(fd);
}

/* With a public key: each image verified once, its verdict reused while
 * the file is unchanged; a rule naming an unsigned image matches nothing,
 * so the device falls through to the next rule. */
static void test_signatures_verified_once(void **state)
{
	struct fixture *fx = *state;
	char priv[512], pub[512], raw[512], signed_path[512], err[NF_ERR_LEN];
	struct nf_sign_key *key = NULL, *pubkey = NULL;
	struct nf_snapshot *s1, *s2, *s3;
	struct nf_query q = {"A", 1, "1", 1, NULL, NULL};
	struct timespec old[2] = {{1000000, 0}, {1000000, 0}};

	snprintf(priv, sizeof priv, "%s/k.pem", fx->dir);
	snprintf(pub, sizeof pub, "%s/k.pub", fx->dir);
	assert_int_equal(nf_sign_keygen(0, priv, pub, 0, err, sizeof err), NF_SIGN_OK);
	assert_int_equal(nf_sign_key_load(priv, 1, 0, &key, err, sizeof err), NF_SIGN_OK);
	assert_int_equal(nf_sign_key_load(pub, 0, 0, &pubkey, err, sizeof err), NF_SIGN_OK);
	snprintf(raw, sizeof raw, "%s/raw.bin", fx->dir);
	nf_test_write_file(raw, "an image, signed below\n");
	snprintf(signed_path, sizeof signed_path, "%s/good.bin", fx->pub);
	assert_int_equal(nf_sign_image(key, raw, signed_path, NULL, NULL, err, sizeof err), NF_SIGN_OK);
	assert_int_equal(utimensat(AT_FDCWD, signed_path, old, 0), 0);
	put_image(fx, "plain.bin", "not signed\n", 1000000);
	nf_test_write_file(fx->rules,
	    "[{\"origin\":{\"device\":\"A\"},\"target\":{\"version\":\"3\",\"firmware\":\"/plain.bin\"}},"
	    " {\"origin\":{\"device\":\"A\"},\"target\":{\"version\":\"2\",\"firmware\":\"/good.bin\"}},"
	    " {\"origin\":{\"device\":\"B\"},\"target\":{\"version\":\"2\",\"firmware\":\"/good.bin\"}}]");
	fx->params.pubkey = pubkey;
	nf_log_set_level(NF_LOG_SILENT);
	s1 = build_ok(fx, NULL);
	assert_int_equal(s1->verified, 2); /* good.bin once for two rules, plain.bin */
	assert_int_equal(s1->verify_reused, 0);
	assert_int_equal(s1->refused, 1);
	assert_int_equal(nf_rules_match(s1->rules, &q), 1); /* rule 1 skipped */
	s2 = build_ok(fx, s1);
	assert_int_equal(s2->verified, 0);
	assert_int_equal(s2->verify_reused, 2);
	assert_int_equal(s2->refused, 1);
	/* Without a key, the previous verdicts are not reused as if checked. */
	fx->params.pubkey = NULL;
	s3 = build_ok(fx, s2);
	assert_null(s3->pubkey);
	assert_int_equal(s3->refused, 0);
	assert_int_equal(nf_rules_match(s3->rules, &q), 0);
	nf_log_set_level(NF_LOG_INFO);
	nf_snapshot_release(s1);
	nf_snapshot_release(s2);
	nf_snapshot_release(s3);
	nf_sign_key_free(key);
	nf_sign_key_free(pubkey);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_digests_reused_and_recomputed),
		T(test_image_keys_per_path),
		T(test_failed_build_keeps_old),
		T(test_missing_image_warnings_summarised),
		T(test_few_warnings_not_summarised),
		T(test_builder_failure_keeps_latest),
		T(test_builder_requests_coalesce),
		T(test_mailbox_one_slot),
		cmocka_unit_test(test_digests_table),
		T(test_hasher),
		T(test_signatures_verified_once),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
