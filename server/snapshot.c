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

/* What the stock clients need to know of an image (stockindex.c): its size,
 * MD5 and the flash its header was built for. */
static void describe_image(struct nf_image_info *info, struct scan *sc, const struct nf_file *f)
{
	unsigned char head[NF_ESP_HEADER_LEN];
	const char *md5 = nf_digests_get(sc->s->digests, &f->id);
	ssize_t n = pread(f->fd, head, sizeof head, 0);

	info->present = f->size > 0;
	info->size = f->size;
	snprintf(info->md5, sizeof info->md5, "%s", md5 != NULL ? md5 : "");
	nf_esp_header_parse(head, n > 0 ? (size_t)n : 0, &info->hdr);
}

const struct nf_image_info *nf_snapshot_image(const struct nf_snapshot *s, size_t rule, int key)
{
	if (s->stock == NULL || rule >= nf_rules_count(s->rules) || key < 0 || key > 1)
		return NULL;
	return nf_stock_image(s->stock, (long)rule, key == 0 ? NF_KEY_FIRMWARE : NF_KEY_SPIFFS);
}

/* Looks at one image a rule names, and describes it in info when info is
 * not NULL (the first rule naming it). Returns -1 only when out of memory. */
static int look_at_image(struct scan *sc, enum nf_image_key k, const char *path,
                         struct nf_image_info *info)
{
	const char *key = nf_image_keys[k];
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
	if (rc == 0 && info != NULL)
		describe_image(info, sc, &f);
	close(f.fd);
	return rc;
}

static int scan_images(struct scan *sc)
{
	size_t n = nf_rules_count(sc->s->rules);

	for (size_t i = 0; i < n; i++) {
		sc->rule = i + 1;
		sc->rule_bad = false;
		for (enum nf_image_key k = NF_KEY_FIRMWARE; k < NF_KEY_COUNT; k++) {
			const char *path = nf_rules_image(sc->s->rules, i, nf_image_keys[k]);
			struct nf_image_info *info;
			bool fresh;
			if (path == NULL)
				continue;
			info = nf_stock_image_add(sc->s->stock, i, k, path, &fresh);
			if (info == NULL || look_at_image(sc, k, path, fresh ? info : NULL) != 0)
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
	s->not_modified = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	return s->empty != NULL && s->not_modified != NULL ? 0 : -1;
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
	s->stock = nf_stock_index_new(nf_rules_count(s->rules));
	if (s->digests == NULL || s->stock == NULL || build_answers(s) != 0 ||
	    scan_images(&sc) != 0 || nf_stock_index_finish(s->stock, s->rules) != 0)
		goto oom;
	nf_route_warn_shadowed(s->files, p->public_dir);
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
	if (s->not_modified != NULL)
		MHD_destroy_response(s->not_modified);
	nf_stock_index_free(s->stock);
	nf_digests_free(s->digests);
	nf_files_close(s->files);
	nf_rules_free(s->rules);
	free(s);
}
