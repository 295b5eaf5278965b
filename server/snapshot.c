/*
 * snapshot.c - everything a request reads, built in one piece off the loop.
 *
 * A snapshot is the rules, the answer for each of them as a persistent
 * libmicrohttpd response (and the shared "{}"), the public folder opened
 * for this build, and the MD5 of every image the rules name. The loop
 * serves one snapshot at a time and swaps in the next between two
 * requests, so a reload is all or nothing: a bad rules file or an unusable
 * folder fails the build, and the snapshot being served stays whole.
 *
 * Building is slow by nature (a 16 MiB versions.json takes seconds to
 * parse, a 512 MB image seconds to hash), which is why it runs on the
 * builder thread (builder.c) and never on the loop. To keep reloads cheap,
 * an image whose identity (device, inode, size, mtime, ctime) is the same
 * as in the previous snapshot keeps its MD5; only new or changed files are
 * read.
 *
 * A rule naming a missing, empty or hidden image is a warning, not an
 * error. With 100,000 such rules one line each would drown the journal, so
 * the first NF_MAX_IMAGE_WARNINGS rules get their lines and the rest one
 * line that counts them.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "http.h"
#include "nofussd.h"

static atomic_uint_fast64_t next_generation = 1;

/* One build's progress through the images. */
struct scan {
	const struct nf_snapshot_params *p;
	const struct nf_snapshot *prev;
	struct nf_snapshot *s;
	size_t rule;          /* numbered from 1, as in messages */
	bool rule_bad;        /* this rule names an image that cannot be served */
	size_t image_cap;     /* room in s->images */
};

static void warn_image(struct scan *sc, const char *key, const char *path, const char *what)
{
	sc->rule_bad = true;
	if (sc->s->bad_images >= NF_MAX_IMAGE_WARNINGS) /* counted; summed up at the end */
		return;
	nf_log(NF_LOG_WARN, "%s: rule %zu: target.%s: %s: %s", sc->p->rules_path, sc->rule, key,
	       path, what);
}

/* router.c refuses dot segments and hidden names: such a path is never served. */
static bool hidden(const char *path)
{
	for (const char *p = path; *p != '\0'; p++)
		if (*p == '.' && (p == path || p[-1] == '/'))
			return true;
	return false;
}

/* The MD5 of f into the table: already there (two rules, one file), from
 * the previous snapshot, or computed. Returns -1 only when out of memory. */
static int record_digest(struct scan *sc, const struct nf_file *f)
{
	const char *md5 = nf_digests_get(sc->s->digests, &f->id);
	char computed[NF_MD5_HEX];

	if (md5 != NULL)
		return 0;
	md5 = sc->prev != NULL ? nf_digests_get(sc->prev->digests, &f->id) : NULL;
	if (md5 != NULL) {
		sc->s->reused++;
	} else {
		if (!sc->p->hash || nf_files_md5(f->fd, computed, NULL) != 0)
			return 0; /* a download will hash it (and report the error) */
		md5 = computed;
		sc->s->hashed++;
	}
	return nf_digests_put(sc->s->digests, &f->id, md5);
}

/* Numbers f's entry in the digests (once per distinct file) and notes it
 * as image k of the rule being scanned. Returns -1 only when out of memory. */
static int note_image(struct scan *sc, const struct nf_file *f, const char *path, int k)
{
	struct nf_snapshot *s = sc->s;
	uint32_t *tag = nf_digests_tag(s->digests, &f->id);
	char key[NF_STORE_MAX_IMAGE];

	if (tag == NULL) /* no MD5 known: the store records the path alone */
		return 0;
	nf_record_image_key(path, key);
	/* One entry per file, and per path to it: a second name of a file (a
	 * symlink) gets entries of its own, not linked from the tag. */
	if (*tag == 0 || strcmp(s->images[*tag - 1].key, key) != 0) {
		if (s->image_count == sc->image_cap) {
			size_t cap = sc->image_cap == 0 ? 8 : sc->image_cap * 2;
			struct nf_image_info *grown = realloc(s->images, cap * sizeof *grown);
			if (grown == NULL)
				return -1;
			s->images = grown;
			sc->image_cap = cap;
		}
		struct nf_image_info *info = &s->images[s->image_count++];
		info->size = f->size;
		memcpy(info->md5, nf_digests_get(s->digests, &f->id), NF_MD5_HEX);
		memcpy(info->key, key, sizeof info->key);
		if (*tag == 0)
			*tag = (uint32_t)s->image_count;
		s->rule_images[2 * (sc->rule - 1) + (size_t)k] = (uint32_t)s->image_count;
		return 0;
	}
	s->rule_images[2 * (sc->rule - 1) + (size_t)k] = *tag;
	return 0;
}

const struct nf_image_info *nf_snapshot_image(const struct nf_snapshot *s, size_t rule, int key)
{
	uint32_t i;

	if (s->rule_images == NULL || rule >= nf_rules_count(s->rules) || key < 0 || key > 1)
		return NULL;
	i = s->rule_images[2 * rule + (size_t)key];
	return i == 0 ? NULL : &s->images[i - 1];
}

/* Looks at one image a rule names. Returns -1 only when out of memory. */
static int look_at_image(struct scan *sc, const char *key, int k, const char *path)
{
	char full[NF_ERR_LEN];
	struct nf_file f;
	int rc;

	if (strncmp(path, "http", 4) == 0) /* served by someone else */
		return 0;
	if (hidden(path)) {
		warn_image(sc, key, path, "a name starting with '.' is never served");
		return 0;
	}
	while (*path == '/')
		path++;
	snprintf(full, sizeof full, "%s/%s", sc->p->public_dir, path);
	if (nf_files_get(sc->s->files, path, &f) != 0) {
		warn_image(sc, key, full, errno == ENOENT || errno == ENOTDIR ? "no such file"
		                                                              : strerror(errno));
		return 0;
	}
	if (f.size == 0) /* the ESP updater refuses it (error -101) */
		warn_image(sc, key, full, "empty file");
	rc = record_digest(sc, &f);
	if (rc == 0)
		rc = note_image(sc, &f, path, k);
	close(f.fd);
	return rc;
}

static int scan_images(struct scan *sc)
{
	static const char *const keys[] = {"firmware", "spiffs"};
	size_t n = nf_rules_count(sc->s->rules);

	sc->s->rule_images = calloc(2 * n + 1, sizeof *sc->s->rule_images);
	if (sc->s->rule_images == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		sc->rule = i + 1;
		sc->rule_bad = false;
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			const char *path = nf_rules_image(sc->s->rules, i, keys[k]);
			if (path != NULL && look_at_image(sc, keys[k], (int)k, path) != 0)
				return -1;
		}
		if (sc->rule_bad)
			sc->s->bad_images++;
	}
	if (sc->s->bad_images > NF_MAX_IMAGE_WARNINGS)
		nf_log(NF_LOG_WARN, "%s: and %zu more rules name missing or empty images",
		       sc->p->rules_path, sc->s->bad_images - NF_MAX_IMAGE_WARNINGS);
	return 0;
}

/* One persistent response per target. Bodies are copied into the
 * responses, so answers already queued outlive the snapshot. */
static int build_answers(struct nf_snapshot *s)
{
	size_t n = nf_rules_count(s->rules);

	s->answers = calloc(n + 1, sizeof *s->answers);
	if (s->answers == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct nf_target *t = nf_rules_target(s->rules, i);
		s->answers[i] = nf_http_response(t->body, t->body_len, NF_TYPE_JSON, true);
		if (s->answers[i] == NULL)
			return -1;
	}
	s->empty = nf_http_response("{}", 2, NF_TYPE_JSON, false);
	return s->empty != NULL ? 0 : -1;
}

struct nf_snapshot *nf_snapshot_build(const struct nf_snapshot_params *p,
                                      const struct nf_snapshot *prev, char *err, size_t errlen)
{
	uint64_t start = nf_clock_ms();
	struct nf_snapshot *s = calloc(1, sizeof *s);
	struct scan sc = {.p = p, .prev = prev, .s = s};

	if (s == NULL)
		goto oom;
	atomic_init(&s->refs, 1);
	s->generation = atomic_fetch_add(&next_generation, 1);
	s->rules = nf_rules_load(p->rules_path, err, errlen);
	if (s->rules == NULL)
		goto fail;
	s->files = nf_files_open(p->public_dir, err, errlen);
	if (s->files == NULL)
		goto fail;
	s->digests = nf_digests_new();
	if (s->digests == NULL || build_answers(s) != 0 || scan_images(&sc) != 0)
		goto oom;
	s->built = time(NULL);
	s->build_ms = nf_clock_ms() - start;
	return s;
oom:
	snprintf(err, errlen, "%s: out of memory", p->rules_path);
fail:
	nf_snapshot_release(s);
	return NULL;
}

struct nf_snapshot *nf_snapshot_retain(struct nf_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void nf_snapshot_release(struct nf_snapshot *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->answers != NULL)
		for (size_t i = 0; s->answers[i] != NULL; i++)
			MHD_destroy_response(s->answers[i]);
	free(s->answers);
	if (s->empty != NULL)
		MHD_destroy_response(s->empty);
	nf_digests_free(s->digests);
	free(s->images);
	free(s->rule_images);
	nf_files_close(s->files);
	nf_rules_free(s->rules);
	free(s);
}
