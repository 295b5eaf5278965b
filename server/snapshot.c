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
 * With a public key (pubkey = ...), every image a rule names is also
 * verified as a signed image in the same read that hashes it (signed.c),
 * and its result is kept and reused with the MD5; a rule naming an image
 * that does not verify is skipped, as if it were not in the file, with a
 * warning that says why.
 *
 * With device credentials (credentials = FILE), the file is read here too,
 * so that a reload swaps the rules and the credentials together.
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
	bool rule_refused;    /* ... or one whose signature fails: the rule is skipped */
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

/* What an earlier look at this very file found: in this build (two rules,
 * one file) or in prev, when prev verified with the same key. Returns true
 * with *md5 ("" when not computed), *sig and *why filled. */
static bool known(const struct nf_digests *d, const struct nf_file_id *id, bool need_md5,
                  const char **md5, int *sig, const char **why)
{
	*md5 = nf_digests_get(d, id);
	*sig = nf_digests_signature(d, id, why);
	if (*sig == NF_DIGEST_UNCHECKED && *md5 == NULL)
		return false; /* no entry */
	if (*md5 == NULL && need_md5)
		return false;
	if (*md5 == NULL)
		*md5 = "";
	return true;
}

/* The MD5 of f, and with a public key its signature check, into the table:
 * already there, from the previous snapshot when the file is unchanged, or
 * computed now in one read of the file. A refused signature makes the rule
 * skipped (sc->rule_refused) with a warning. Returns -1 only when out of
 * memory. */
static int record_image(struct scan *sc, const char *key, const char *full,
                        const struct nf_file *f)
{
	const struct nf_sign_key *pubkey = sc->p->pubkey;
	const char *md5, *why = "";
	char computed[NF_MD5_HEX] = "", reason[NF_ERR_LEN] = "";
	int sig = NF_DIGEST_UNCHECKED;

	if (known(sc->s->digests, &f->id, sc->p->hash, &md5, &sig, &why))
		goto judge;
	if (sc->prev != NULL && sc->prev->pubkey == pubkey &&
	    known(sc->prev->digests, &f->id, sc->p->hash, &md5, &sig, &why) &&
	    (pubkey == NULL || sig != NF_DIGEST_UNCHECKED)) {
		sc->s->reused++;
		sc->s->verify_reused += pubkey != NULL;
	} else if (sc->p->hash || pubkey != NULL) {
		sig = nf_signed_check(pubkey, f->fd, computed, reason, sizeof reason);
		if (sig == NF_SIGN_ERR_IO && pubkey == NULL)
			return 0; /* a download will hash it (and report the error) */
		md5 = computed;
		why = reason;
		sc->s->hashed++;
		sc->s->verified += pubkey != NULL;
		if (pubkey == NULL)
			sig = NF_DIGEST_UNCHECKED;
		nf_log(NF_LOG_DEBUG, "%s: %s", full,
		       pubkey == NULL        ? "hashed"
		       : sig == NF_SIGN_OK   ? "hashed, signature verified"
		                             : "hashed, signature refused");
	} else {
		return 0; /* --check without a key: existence is enough */
	}
	if (nf_digests_put_checked(sc->s->digests, &f->id, md5, sig, why) != 0)
		return -1;
judge:
	if (pubkey != NULL && sig != NF_SIGN_OK) {
		char what[NF_ERR_LEN];
		snprintf(what, sizeof what, "does not verify with the public key, rule skipped: %s",
		         why[0] != '\0' ? why : nf_sign_strerror((enum nf_sign_err)sig));
		sc->rule_refused = true;
		warn_image(sc, key, full, what);
	}
	return 0;
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
	rc = record_image(sc, key, full, &f);
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
		sc->rule_bad = sc->rule_refused = false;
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
		if (sc->rule_refused) {
			nf_rules_skip(sc->s->rules, i);
			sc->s->refused++;
		}
	}
	if (sc->s->bad_images > NF_MAX_IMAGE_WARNINGS)
		nf_log(NF_LOG_WARN, "%s: and %zu more rules name missing or empty images%s",
		       sc->p->rules_path, sc->s->bad_images - NF_MAX_IMAGE_WARNINGS,
		       sc->p->pubkey != NULL ? ", or images that do not verify" : "");
	if (sc->s->refused > 0)
		nf_log(NF_LOG_WARN, "%s: %zu of %zu rules skipped: they name images that do not verify",
		       sc->p->rules_path, sc->s->refused, n);
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
	s->pubkey = p->pubkey;
	s->generation = atomic_fetch_add(&next_generation, 1);
	s->rules = p->rules_text != NULL
	               ? nf_rules_parse(p->rules_text, p->rules_len, p->rules_path, err, errlen)
	               : nf_rules_load(p->rules_path, err, errlen);
	if (s->rules == NULL)
		goto fail;
	s->files = nf_files_open(p->public_dir, err, errlen);
	if (s->files == NULL)
		goto fail;
	if (p->credentials != NULL && p->credentials[0] != '\0') {
		s->creds = nf_creds_load(p->credentials, err, errlen);
		if (s->creds == NULL)
			goto fail;
	}
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

void nf_snapshot_describe(const struct nf_snapshot *s, const char *rules_path, char *out,
                          size_t cap)
{
	char sigs[128] = "";

	if (s->pubkey != NULL)
		snprintf(sigs, sizeof sigs, "; signatures: %zu verified, %zu unchanged, %zu rules skipped",
		         s->verified, s->verify_reused, s->refused);
	snprintf(out, cap,
	         "reloaded %s: %zu rules (generation %llu; images: %zu hashed, %zu unchanged%s; "
	         "%llu ms)",
	         rules_path, nf_rules_count(s->rules), (unsigned long long)s->generation, s->hashed,
	         s->reused, sigs, (unsigned long long)s->build_ms);
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
	nf_creds_free(s->creds);
	nf_files_close(s->files);
	nf_rules_free(s->rules);
	nf_plan_free(s->plan);
	free(s);
}
