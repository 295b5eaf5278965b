/*
 * releases.c - /api/v1/releases and /api/v1/audit (issue 10 items 1 and 8,
 * docs/ADMIN.md section 7): a release uploaded as the raw body of a POST
 * whose query names it (device, version, notes), so that curl
 * (--data-binary @fw.bin) and a browser's fetch(url, {body: file}) both send
 * it as it is, without multipart framing to parse; its filesystem image as
 * a second POST to the release; list, show and delete; and the audit log.
 *
 * What can be refused before the body is read is refused then (a bad
 * parameter, a Content-Length over the bound, a duplicate), the image's
 * header as soon as its first bytes come (upload.c), the rest at the end.
 * Files and rows change together under the listener's release lock, so a
 * delete never removes a file an upload just linked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"

#define MAX_PARAMS 4

/* Query parameters ------------------------------------------------------------ */

struct param {
	const char *name;
	char *value; /* cap bytes; "" when absent */
	size_t cap;
	bool seen;
};

/* Parses r's query into params[0..n): each at most once, no other names.
 * Returns 0, or -1 after answering 400 naming the parameter. */
static int parse_params(struct nf_admin_request *r, struct param *params, size_t n)
{
	const char *q = r->query, *end = r->query + r->query_len;

	for (size_t i = 0; i < n; i++)
		params[i].value[0] = '\0', params[i].seen = false;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp != NULL ? amp : end;
		const char *eq = memchr(q, '=', (size_t)(stop - q));
		const char *vstart = eq != NULL ? eq + 1 : stop;
		char name[32];
		size_t i;

		if (nf_admin_unescape(q, (size_t)((eq != NULL ? eq : stop) - q), true, name,
		                      sizeof name) < 0)
			snprintf(name, sizeof name, "?");
		for (i = 0; i < n && strcmp(params[i].name, name) != 0; i++)
			;
		if (i == n) {
			char names[128] = "";
			for (size_t j = 0; j < n; j++)
				snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
				         j ? ", " : "", params[j].name);
			nf_admin_error(r, MHD_HTTP_BAD_REQUEST, name,
			               "unknown parameter \"%.31s\": this takes %s", name,
			               n > 0 ? names : "none");
			return -1;
		}
		if (params[i].seen) {
			nf_admin_error(r, MHD_HTTP_BAD_REQUEST, name, "%s given twice", name);
			return -1;
		}
		params[i].seen = true;
		if (nf_admin_unescape(vstart, (size_t)(stop - vstart), true, params[i].value,
		                      params[i].cap) < 0) {
			nf_admin_error(r, MHD_HTTP_BAD_REQUEST, name,
			               "%s: a bad %%-escape, or longer than %zu bytes", name,
			               params[i].cap - 1);
			return -1;
		}
		q = stop + 1;
	}
	return 0;
}

/* [A-Za-z0-9_.-]{1,63}, as device types are written in versions.json. */
static bool device_valid(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
	return n > 0 && s[n] == '\0' && n < NF_STORE_MAX_TEXT;
}

bool nf_release_version_valid(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-");
	return n > 0 && s[n] == '\0' && n < NF_STORE_MAX_TEXT && strpbrk(s, "0123456789") != NULL &&
	       strchr("_.+-", s[0]) == NULL;
}

/* Notes: UTF-8 text, no control characters but newlines and tabs. */
static bool notes_valid(const char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 && c != '\n' && c != '\t')
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k = nf_admin_utf8_next((const unsigned char *)s + i, len - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

static int store_failed(struct nf_admin_request *r, const char *err)
{
	return nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "the fleet store failed: %s",
	                      err);
}

/* The Content-Length the client framed, checked against the bound before
 * the body is read. Returns 0, or -1 after answering 413. */
static int check_length(struct nf_admin_request *r, const char *field)
{
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && strtoull(cl, NULL, 10) > NF_ADMIN_MAX_IMAGE) {
		nf_admin_error(r, MHD_HTTP_CONTENT_TOO_LARGE, field,
		               "%s is %s bytes, larger than %u bytes, the most an image may have",
		               field, cl, NF_ADMIN_MAX_IMAGE);
		return -1;
	}
	return 0;
}

/* Unlinks public/path when no release names it any more (lock held). */
static void drop_if_unused(struct nf_admin_request *r, const char *path)
{
	char err[NF_ERR_LEN], full[1200];

	if (path[0] == '\0' || nf_store_release_uses(nf_admin_peek_store(r), path, err, sizeof err) != 0)
		return;
	snprintf(full, sizeof full, "%s%s", nf_admin_public_dir(r), path);
	unlink(full);
}

/* Uploads ------------------------------------------------------------------------ */

int nf_release_sign_check(struct nf_admin_request *r, struct nf_upload *up)
{
	const struct nf_sign_key *key = nf_admin_pubkey(r);
	char md5[NF_MD5_HEX], why[NF_ERR_LEN];
	int rc;

	if (key == NULL)
		return 0;
	/* The same check the snapshot makes of a rule's image, so a release
	 * that is accepted here is never skipped there. */
	rc = nf_signed_check(key, nf_upload_fd(up), md5, why, sizeof why);
	if (rc == NF_SIGN_ERR_IO) {
		nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "firmware %s", why);
		return -1;
	}
	if (rc != NF_SIGN_OK) {
		nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "firmware",
		               "firmware is not signed by nofussd's public key (pubkey): %s; sign it "
		               "with `nofuss sign` (docs/SIGNING.md)",
		               why);
		return -1;
	}
	return 0;
}

struct add_state {
	struct nf_upload up;
	struct nf_release rel;
	bool started;
};

void nf_release_cleanup(struct nf_admin_request *r)
{
	struct add_state *s = r->body_state;

	if (s == NULL)
		return;
	if (s->started)
		nf_upload_abort(&s->up);
	free(s);
	r->body_state = NULL;
}

static int upload_failed(struct nf_admin_request *r, struct nf_upload *up)
{
	nf_upload_abort(up); /* the temporary file goes before the answer */
	return nf_admin_error(r, up->status, up->status < 500 ? up->field : NULL, "%s", up->err);
}

/* The body's common part: begin before it, feed each piece. A refusal is
 * answered at once (the listener holds the answer until the body's end
 * and drops the rest of the body); the temporary file goes at once.
 * Returns 1 when the caller should finish (end), 0 to go on, -1 answered. */
static int stream(struct nf_admin_request *r, struct add_state *s, const char *data,
                  size_t len, bool end)
{
	if (!s->started) {
		s->started = true;
		if (nf_upload_begin(&s->up, nf_admin_public_dir(r), s->up.field, NF_ADMIN_MAX_IMAGE,
		                    s->up.firmware) != 0) {
			upload_failed(r, &s->up);
			return -1;
		}
	}
	if (len > 0 && nf_upload_feed(&s->up, data, len) != 0) {
		upload_failed(r, &s->up);
		return -1;
	}
	return end ? 1 : 0;
}

/* The body's end for both routes: sealed, checked, stored, and saved (a
 * row written) under the release lock; a file no row names is dropped.
 * Returns 0 saved (the caller answers), or -1 answered. */
static int store_image(struct nf_admin_request *r, struct add_state *s,
                       int (*save)(struct nf_admin_request *r, struct add_state *s, char *err,
                                   size_t errlen))
{
	char err[NF_ERR_LEN];
	int rc;

	nf_admin_release_lock(r, true);
	if (nf_upload_seal(&s->up) != 0 ||
	    (s->up.firmware && nf_release_sign_check(r, &s->up) != 0) ||
	    nf_upload_store(&s->up) != 0) {
		nf_admin_release_lock(r, false);
		if (r->status == 0)
			upload_failed(r, &s->up);
		nf_upload_abort(&s->up); /* the temporary file goes before the answer */
		return -1;
	}
	nf_upload_abort(&s->up); /* stored under its name: the temporary one goes */
	rc = save(r, s, err, sizeof err);
	if (rc != 1)
		drop_if_unused(r, s->up.image.path);
	nf_admin_release_lock(r, false);
	if (rc < 0)
		store_failed(r, err);
	return rc == 1 ? 0 : -1;
}

static struct add_state *new_state(struct nf_admin_request *r, const char *field, bool firmware)
{
	struct add_state *s = calloc(1, sizeof *s);

	if (s != NULL) {
		snprintf(s->up.field, sizeof s->up.field, "%s", field);
		s->up.firmware = firmware;
		s->up.fd = -1;
		r->body_state = s;
	}
	return s;
}

static int answer_release(struct nf_admin_request *r, unsigned status, const struct nf_release *rel)
{
	snprintf(r->target, sizeof r->target, "release %lld (%s %s)", (long long)rel->id,
	         rel->device, rel->version);
	return nf_admin_json(r, status, nf_render_release(rel));
}

/* Before the body: the query, the bound, the duplicate. */
static int add_start(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct add_state *s;
	char device[NF_STORE_MAX_TEXT], version[NF_STORE_MAX_TEXT], notes[NF_STORE_MAX_NOTES];
	struct param params[] = {{"device", device, sizeof device, false},
	                         {"version", version, sizeof version, false},
	                         {"notes", notes, sizeof notes, false}};
	char err[NF_ERR_LEN];
	int rc;

	if (store == NULL || parse_params(r, params, 3) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target, "release %s %s", device, version);
	if (!device_valid(device))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "device",
		                      device[0] == '\0'
		                          ? "device is missing: ?device=TYPE&version=V"
		                          : "device \"%s\" is not a device type: 1 to 63 of A-Z a-z "
		                            "0-9 _ . -",
		                      device);
	if (!nf_release_version_valid(version))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "version",
		                      version[0] == '\0'
		                          ? "version is missing: ?device=TYPE&version=V"
		                          : "version \"%s\" is not a version: 1 to 63 of A-Z a-z 0-9 "
		                            "_ . + -, with a digit, starting with a letter or digit "
		                            "(compared as PHP's version_compare does)",
		                      version);
	if (!notes_valid(notes))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "notes",
		                      "notes must be UTF-8 text without control characters "
		                      "(newlines and tabs allowed)");
	if (check_length(r, "firmware") != 0)
		return MHD_YES;
	s = new_state(r, "firmware", true);
	if (s == NULL)
		return MHD_NO;
	rc = nf_store_release_find(store, device, version, &s->rel, err, sizeof err);
	if (rc < 0)
		return store_failed(r, err);
	if (rc > 0)
		return nf_admin_error(r, MHD_HTTP_CONFLICT, "version",
		                      "release %s %s exists already (id %lld): a stored release is "
		                      "never replaced; delete it first or give another version",
		                      device, version, (long long)s->rel.id);
	memset(&s->rel, 0, sizeof s->rel);
	snprintf(s->rel.device, sizeof s->rel.device, "%s", device);
	snprintf(s->rel.version, sizeof s->rel.version, "%s", version);
	snprintf(s->rel.notes, sizeof s->rel.notes, "%s", notes);
	snprintf(s->rel.created_by, sizeof s->rel.created_by, "%s", r->token_name);
	return MHD_YES;
}

/* Writes the new release's row; a duplicate is answered (0). */
static int save_release(struct nf_admin_request *r, struct add_state *s, char *err,
                        size_t errlen)
{
	int rc;

	s->rel.fw = s->up.image;
	s->rel.created_ms = nf_clock_wall_ms();
	rc = nf_store_release_add(nf_admin_store(r), &s->rel, err, errlen);
	if (rc == 0)
		nf_admin_error(r, MHD_HTTP_CONFLICT, "version", "release %s %s was added meanwhile",
		               s->rel.device, s->rel.version);
	return rc;
}

int nf_api_release_add(struct nf_admin_request *r, const char *data, size_t len, bool end)
{
	struct add_state *s = r->body_state;

	if (data == NULL && !end)
		return add_start(r);
	if (stream(r, s, data, len, end) <= 0 || store_image(r, s, save_release) != 0)
		return MHD_YES;
	nf_log(NF_LOG_INFO, "admin: token %s added release %lld: %s %s, %llu bytes, sha256 %s",
	       r->token_name, (long long)s->rel.id, s->rel.device, s->rel.version,
	       (unsigned long long)s->rel.fw.size, s->rel.fw.sha256);
	return answer_release(r, MHD_HTTP_CREATED, &s->rel);
}

int nf_admin_no_params(struct nf_admin_request *r)
{
	return parse_params(r, NULL, 0);
}

/* An id: decimal digits, no sign or leading zero, below 2^63 (strtoll
 * would clamp a larger one to an id that may exist). */
static bool parse_id(const char *text, long long *out)
{
	char *end;

	if (text[0] < '1' || text[0] > '9')
		return false;
	errno = 0;
	*out = strtoll(text, &end, 10);
	return *end == '\0' && errno != ERANGE;
}

int nf_admin_path_id(struct nf_admin_request *r, const char *what, int64_t *id)
{
	long long v;

	if (!parse_id(r->args[0], &v)) {
		nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "id",
		               "\"%.40s\" is not a %s id (a positive integer below 2^63)", r->args[0],
		               what);
		return -1;
	}
	*id = v;
	return parse_params(r, NULL, 0);
}

static int release_id(struct nf_admin_request *r, int64_t *id)
{
	return nf_admin_path_id(r, "release", id);
}

/* Gives the release its filesystem image; a race lost is answered (0). */
static int save_fs(struct nf_admin_request *r, struct add_state *s, char *err, size_t errlen)
{
	bool had = false;
	int rc = nf_store_release_set_fs(nf_admin_store(r), s->rel.id, &s->up.image, &had, err,
	                                 errlen);

	if (rc == 0)
		nf_admin_error(r, had ? MHD_HTTP_CONFLICT : MHD_HTTP_NOT_FOUND, "id",
		               had ? "release %lld was given a filesystem image meanwhile"
		                   : "release %lld was deleted meanwhile",
		               (long long)s->rel.id);
	return rc;
}

int nf_api_release_fs(struct nf_admin_request *r, const char *data, size_t len, bool end)
{
	struct add_state *s = r->body_state;
	struct nf_store *store;
	char err[NF_ERR_LEN];
	int rc;

	if (data == NULL && !end) {
		int64_t id;
		store = nf_admin_store(r);
		if (store == NULL || release_id(r, &id) != 0 ||
		    check_length(r, "filesystem") != 0)
			return MHD_YES;
		snprintf(r->target, sizeof r->target, "release %lld", (long long)id);
		s = new_state(r, "filesystem", false);
		if (s == NULL)
			return MHD_NO;
		rc = nf_store_release_get(store, id, &s->rel, err, sizeof err);
		if (rc < 0)
			return store_failed(r, err);
		if (rc == 0)
			return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no release %lld",
			                      (long long)id);
		if (s->rel.fs.path[0] != '\0')
			return nf_admin_error(r, MHD_HTTP_CONFLICT, "filesystem",
			                      "release %lld has a filesystem image already: a stored "
			                      "image is never replaced",
			                      (long long)id);
		return MHD_YES;
	}
	if (stream(r, s, data, len, end) <= 0 || store_image(r, s, save_fs) != 0)
		return MHD_YES;
	s->rel.fs = s->up.image;
	return answer_release(r, MHD_HTTP_CREATED, &s->rel);
}

/* Reads ------------------------------------------------------------------------- */

/* Sets rel["rollouts"] to [{"id","state"}] of the rollouts in list (newest
 * first) that offer release id: what a page shows beside a release, and
 * why it cannot be deleted. */
static void attach_rollouts(json_t *rel, int64_t id, const struct nf_rollout *list, size_t count)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < count; i++) {
		if (list[i].release_id != id)
			continue;
		json_t *o = json_object();
		if (o == NULL)
			continue;
		json_object_set_new(o, "id", json_integer((json_int_t)list[i].id));
		json_object_set_new(o, "state", json_string(nf_rollout_state_name(list[i].state)));
		json_array_append_new(a, o);
	}
	json_object_set_new(rel, "rollouts", a);
}

int nf_api_releases(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	char device[NF_STORE_MAX_TEXT], err[NF_ERR_LEN];
	struct param params[] = {{"device", device, sizeof device, false}};
	struct nf_release *list;
	struct nf_rollout *ros;
	size_t count, nros;
	json_t *o, *a;

	if (store == NULL || parse_params(r, params, 1) != 0)
		return MHD_YES;
	if (nf_store_release_list(store, device, &list, &count, err, sizeof err) != 0)
		return store_failed(r, err);
	if (nf_store_rollout_list(store, &ros, &nros, err, sizeof err) != 0) {
		free(list);
		return store_failed(r, err);
	}
	o = json_object();
	a = json_array();
	for (size_t i = 0; a != NULL && i < count; i++) {
		json_t *rel = nf_render_release(&list[i]);
		if (rel != NULL)
			attach_rollouts(rel, list[i].id, ros, nros);
		json_array_append_new(a, rel);
	}
	free(list);
	free(ros);
	if (o == NULL) {
		json_decref(a);
		return nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	}
	json_object_set_new(o, "count", json_integer((json_int_t)count));
	json_object_set_new(o, "releases", a);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

int nf_api_release(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_release *rel;
	char err[NF_ERR_LEN];
	int64_t id;
	int rc;

	if (store == NULL || release_id(r, &id) != 0)
		return MHD_YES;
	rel = malloc(sizeof *rel);
	if (rel == NULL)
		return MHD_NO;
	rc = nf_store_release_get(store, id, rel, err, sizeof err);
	if (rc > 0) {
		struct nf_rollout *ros;
		size_t nros;
		if (nf_store_rollout_list(store, &ros, &nros, err, sizeof err) != 0) {
			free(rel);
			return store_failed(r, err);
		}
		json_t *o = nf_render_release(rel);
		if (o != NULL)
			attach_rollouts(o, id, ros, nros);
		free(ros);
		rc = nf_admin_json(r, MHD_HTTP_OK, o);
	}
	else if (rc == 0)
		rc = nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no release %lld", (long long)id);
	else
		rc = store_failed(r, err);
	free(rel);
	return rc;
}

int nf_api_release_delete(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	char unused[2][NF_STORE_MAX_IMAGE], err[NF_ERR_LEN], full[1200];
	int64_t id, rollout = 0, pinned = 0;
	int rc;

	if (store == NULL || release_id(r, &id) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target, "release %lld", (long long)id);
	nf_admin_release_lock(r, true);
	rc = nf_store_release_delete(store, id, unused, &rollout, &pinned, err, sizeof err);
	for (int i = 0; rc > 0 && i < 2; i++) {
		if (unused[i][0] == '\0')
			continue;
		snprintf(full, sizeof full, "%s%s", nf_admin_public_dir(r), unused[i]);
		unlink(full);
	}
	nf_admin_release_lock(r, false);
	if (rc == -2)
		return nf_admin_error(r, MHD_HTTP_CONFLICT, "id",
		                      "release %lld is used by rollout %lld, which is not over: abort "
		                      "it first",
		                      (long long)id, (long long)rollout);
	if (rc == -3)
		return nf_admin_error(r, MHD_HTTP_CONFLICT, "id",
		                      "release %lld is pinned on %lld device%s: unpin %s first (GET "
		                      "/api/v1/devices?pin=%lld lists %s)",
		                      (long long)id, (long long)pinned, pinned == 1 ? "" : "s",
		                      pinned == 1 ? "it" : "them", (long long)id,
		                      pinned == 1 ? "it" : "them");
	if (rc < 0)
		return store_failed(r, err);
	if (rc == 0)
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no release %lld", (long long)id);
	nf_log(NF_LOG_INFO, "admin: token %s deleted release %lld", r->token_name, (long long)id);
	json_t *o = json_object();
	if (o != NULL) {
		json_object_set_new(o, "id", json_integer((json_int_t)id));
		json_object_set_new(o, "deleted", json_true());
	}
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

int nf_api_release_edit(struct nf_admin_request *r)
{
	static const struct nf_body_field fields[] = {
	    {"notes", NF_BODY_STRING, true, 0, 0, 0, NF_STORE_MAX_NOTES - 1, 0, 0},
	    {NULL, 0, false, 0, 0, 0, 0, 0, 0},
	};
	struct nf_store *store = nf_admin_store(r);
	char field[NF_ADMIN_MAX_FIELD], err[NF_ERR_LEN];
	struct nf_release *rel;
	json_t *body;
	int64_t id;
	int rc;

	if (store == NULL || release_id(r, &id) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target, "release %lld", (long long)id);
	if (nf_admin_body_parse(r->body, r->body_len, fields, &body, field, err, sizeof err) != 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, field, "%s", err);
	const char *notes = json_string_value(json_object_get(body, "notes"));
	if (!notes_valid(notes)) {
		json_decref(body);
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "notes",
		                      "notes must be text without control characters (newlines "
		                      "and tabs allowed)");
	}
	rc = nf_store_release_set_notes(store, id, notes, err, sizeof err);
	json_decref(body);
	if (rc < 0)
		return store_failed(r, err);
	if (rc == 0)
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no release %lld", (long long)id);
	rel = malloc(sizeof *rel);
	if (rel == NULL)
		return MHD_NO;
	rc = nf_store_release_get(store, id, rel, err, sizeof err);
	rc = rc > 0 ? answer_release(r, MHD_HTTP_OK, rel)
	     : rc == 0 ? nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no release %lld", (long long)id)
	               : store_failed(r, err);
	free(rel);
	return rc;
}

/* The audit log ---------------------------------------------------------------------- */

void nf_admin_audit(struct nf_admin_request *r, const char *action)
{
	struct nf_store *store = nf_admin_peek_store(r);
	struct nf_audit a = {.at_ms = nf_clock_wall_ms(), .status = r->status};
	char err[NF_ERR_LEN];

	if (store == NULL)
		return;
	snprintf(a.token, sizeof a.token, "%s", r->token_name);
	snprintf(a.action, sizeof a.action, "%s", action);
	snprintf(a.target, sizeof a.target, "%s", r->target);
	snprintf(a.outcome, sizeof a.outcome, "%s", r->outcome);
	if (nf_store_audit_add(store, &a, err, sizeof err) != 0)
		nf_log(NF_LOG_WARN, "admin: the audit entry for %s by %s was not written: %s",
		       action, r->token_name, err);
}

int nf_api_audit(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	char before[24], limit[8], err[NF_ERR_LEN], *end;
	struct param params[] = {{"before", before, sizeof before, false},
	                         {"limit", limit, sizeof limit, false}};
	struct nf_audit *list;
	size_t count;
	long long b = 0, l = 100;
	json_t *o, *a;

	if (store == NULL || parse_params(r, params, 2) != 0)
		return MHD_YES;
	if (before[0] != '\0' && !parse_id(before, &b))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "before",
		                      "before is an audit entry's id (a positive integer below 2^63)");
	if (limit[0] != '\0' &&
	    ((l = strtoll(limit, &end, 10)) <= 0 || *end != '\0' || l > NF_ADMIN_MAX_AUDIT_PAGE))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "limit", "limit is 1 to %d",
		                      NF_ADMIN_MAX_AUDIT_PAGE);
	if (nf_store_audit_list(store, b, (size_t)l, &list, &count, err, sizeof err) != 0)
		return store_failed(r, err);
	o = json_object();
	a = json_array();
	for (size_t i = 0; a != NULL && i < count; i++) {
		json_t *e = json_object();
		if (e == NULL)
			continue;
		json_object_set_new(e, "id", json_integer((json_int_t)list[i].id));
		nf_render_time(e, "at", list[i].at_ms);
		json_object_set_new(e, "token", nf_render_string(list[i].token, sizeof list[i].token));
		json_object_set_new(e, "action", json_string(list[i].action));
		json_object_set_new(e, "target",
		                    nf_render_string(list[i].target, sizeof list[i].target));
		json_object_set_new(e, "status", json_integer(list[i].status));
		json_object_set_new(e, "outcome",
		                    nf_render_string(list[i].outcome, sizeof list[i].outcome));
		json_array_append_new(a, e);
	}
	if (o == NULL) {
		json_decref(a);
		free(list);
		return nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	}
	json_object_set_new(o, "count", json_integer((json_int_t)count));
	json_object_set_new(o, "next_before",
	                    count == (size_t)l && count > 0
	                        ? json_integer((json_int_t)list[count - 1].id)
	                        : json_null());
	json_object_set_new(o, "entries", a);
	free(list);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

/* The JSON of a release ------------------------------------------------------------- */

static json_t *render_image(const struct nf_release_image *m)
{
	json_t *o;

	if (m->path[0] == '\0')
		return json_null();
	o = json_object();
	if (o == NULL)
		return NULL;
	const char *mode = nf_upload_flash_mode_name(m->flash_mode);
	json_object_set_new(o, "path", json_string(m->path));
	json_object_set_new(o, "size", json_integer((json_int_t)m->size));
	json_object_set_new(o, "md5", json_string(m->md5));
	json_object_set_new(o, "sha256", json_string(m->sha256));
	json_object_set_new(o, "format",
	                    json_string(m->format == NF_IMAGE_ESP    ? "esp"
	                                : m->format == NF_IMAGE_GZIP ? "gzip"
	                                                             : "raw"));
	json_object_set_new(o, "flash_mode", mode != NULL ? json_string(mode) : json_null());
	json_object_set_new(o, "flash_size", m->flash_size > 0
	                                         ? json_integer((json_int_t)m->flash_size)
	                                         : json_null());
	json_object_set_new(o, "chip", m->chip[0] != '\0' ? json_string(m->chip) : json_null());
	return o;
}

json_t *nf_render_release(const struct nf_release *rel)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "id", json_integer((json_int_t)rel->id));
	json_object_set_new(o, "device", nf_render_string(rel->device, sizeof rel->device));
	json_object_set_new(o, "version", nf_render_string(rel->version, sizeof rel->version));
	nf_render_time(o, "created", rel->created_ms);
	json_object_set_new(o, "created_by",
	                    nf_render_string(rel->created_by, sizeof rel->created_by));
	json_object_set_new(o, "notes", nf_render_string(rel->notes, sizeof rel->notes));
	json_object_set_new(o, "firmware", render_image(&rel->fw));
	json_object_set_new(o, "filesystem", render_image(&rel->fs));
	return o;
}
