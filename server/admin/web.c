/*
 * web.c - the back office page (issue 13; docs/WEB.md): its files, served
 * from the web folder on the admin listener's own threads, and the three
 * session endpoints that trade a token for a cookie and back.
 *
 * The page is static (HTML, CSS, JavaScript modules, no build step) and
 * public: it holds no data, and every figure it shows comes from the API
 * with the session's cookie. So its files need no token, and a name is
 * only ever looked up in the one folder: [a-z0-9_.-] and a known
 * extension, no '/', no leading '.'.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "common.h"

bool nf_web_is_page(const char *url)
{
	return strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0 || strncmp(url, "/ui/", 4) == 0 ||
	       strcmp(url, "/favicon.ico") == 0;
}

const char *nf_web_default_dir(void)
{
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	size_t blen = strlen(NF_WEB_BUILD_DIR);

	/* A nofussd under the build tree is a developer's or the tests': the
	 * page they see is the one they are editing. */
	if (n > 0 && (size_t)n > blen && strncmp(exe, NF_WEB_BUILD_DIR, blen) == 0 && exe[blen] == '/')
		return NF_WEB_SOURCE_DIR;
	return NF_WEB_INSTALL_DIR;
}

static const char *content_type(const char *name)
{
	static const char *const types[][2] = {
	    {".html", "text/html; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return NULL;
}

static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= NF_WEB_MAX_NAME || name[0] == '.')
		return false;
	for (const char *c = name; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr("_.-", *c)))
			return false;
	return true;
}

static int redirect(struct nf_admin_request *r, const char *to)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, to);
	return nf_admin_send(r, MHD_HTTP_FOUND, resp, "no-store");
}

/* A missing web folder is said once a run, not at every visit. */
static atomic_bool missing_said;

int nf_web_serve(struct nf_admin_request *r, const char *url)
{
	char path[1024 + NF_WEB_MAX_NAME + 2], etag[64];
	const char *name = url + (strncmp(url, "/ui/", 4) == 0 ? 4 : strlen(url));
	const char *type, *inm;
	struct MHD_Response *resp;
	struct stat st;
	int fd;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
		return nf_admin_send(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp, "no-store");
	}
	/* Browsers ask for /favicon.ico whatever they show (an API answer too). */
	if (strcmp(url, "/favicon.ico") == 0)
		return redirect(r, "/ui/icon.svg");
	if (strncmp(url, "/ui/", 4) != 0)
		return redirect(r, "/ui/");
	if (name[0] == '\0')
		name = "index.html";
	type = content_type(name);
	if (!name_ok(name) || type == NULL)
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, NULL, "no such file of the page: %.64s",
		                      name);
	snprintf(path, sizeof path, "%s/%s", nf_admin_web_dir(r), name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > NF_WEB_MAX_FILE) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (strcmp(name, "index.html") == 0 && !atomic_exchange(&missing_said, true))
			nf_log(NF_LOG_WARN, "web page: %s: %s (set admin-web-dir, docs/WEB.md)", path,
			       fd < 0 ? strerror(e) : "not a regular file of at most 1 MiB");
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, NULL,
		                      "no such file of the page: %.64s%s", name,
		                      strcmp(name, "index.html") == 0
		                          ? " (the web folder is missing: set admin-web-dir)"
		                          : "");
	}
	snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
	         (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
	             (unsigned long long)st.st_mtim.tv_nsec);
	inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm != NULL && strcmp(inm, etag) == 0) {
		close(fd);
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
		return nf_admin_send(r, MHD_HTTP_NOT_MODIFIED, resp, "no-cache");
	}
	resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* takes fd */
	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	/* Kept by the browser but asked again each time (a 304 when
	 * unchanged): an upgrade's page is never mixed with the old one's. */
	return nf_admin_send(r, MHD_HTTP_OK, resp, "no-cache");
}

/* ---- sessions ---- */

static const char *role_name(enum nf_admin_role role)
{
	return role == NF_ROLE_ADMIN ? "admin" : "read";
}

/* {"role", "name", "csrf", "expires_in"} of session id. */
static json_t *session_json(struct nf_admin_request *r, const char *id, enum nf_admin_role role,
                            int64_t left_ms)
{
	char csrf[NF_ADMIN_SESSION_ID_LEN + 1];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	nf_admin_session_csrf(nf_admin_sessions(r), id, csrf);
	json_object_set_new(o, "role", json_string(role_name(role)));
	json_object_set_new(o, "name", json_string(r->token_name));
	json_object_set_new(o, "csrf", json_string(csrf));
	json_object_set_new(o, "expires_in", json_integer((left_ms + 999) / 1000));
	return o;
}

static void set_cookie(struct nf_admin_request *r, const char *id, uint64_t max_age_s, char *out,
                       size_t cap)
{
	snprintf(out, cap, "%s=%s; Path=/; Max-Age=%llu; HttpOnly; SameSite=Strict%s",
	         NF_ADMIN_COOKIE, id, (unsigned long long)max_age_s,
	         nf_admin_tls(r) ? "; Secure" : "");
}

int nf_api_session_start(struct nf_admin_request *r)
{
	static const struct nf_body_field fields[] = {
	    {.name = "token", .type = NF_BODY_STRING, .required = true, .min_len = 1,
	     .max_len = NF_ADMIN_MAX_TOKEN},
	    {.name = NULL},
	};
	char field[NF_ADMIN_MAX_FIELD], err[NF_ERR_LEN], auth[NF_ADMIN_MAX_TOKEN + 16];
	char id[NF_ADMIN_SESSION_ID_LEN + 1], cookie[160];
	uint64_t life = nf_admin_session_lifetime_ms(nf_admin_sessions(r));
	json_t *body;
	int rc;

	if (nf_admin_no_params(r) != 0)
		return MHD_YES;
	if (nf_admin_body_parse(r->body, r->body_len, fields, &body, field, err, sizeof err) != 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, field, "%s", err);
	snprintf(auth, sizeof auth, "Bearer %s", json_string_value(json_object_get(body, "token")));
	json_decref(body);
	r->role = nf_admin_bearer(r, auth, r->token_name);
	OPENSSL_cleanse(auth, sizeof auth);
	if (r->role == NF_ROLE_NONE) {
		nf_admin_refused(r, "a sign-in");
		return nf_admin_error(r, MHD_HTTP_UNAUTHORIZED, "token",
		                      "this token is not in the admin token file");
	}
	if (nf_admin_session_create(nf_admin_sessions(r), r->role, r->token_name, r->token_hash,
	                            id) != 0)
		return nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
		                      "the random generator failed");
	set_cookie(r, id, life / 1000, cookie, sizeof cookie);
	rc = nf_admin_json_with(r, MHD_HTTP_OK, session_json(r, id, r->role, (int64_t)life),
	                        MHD_HTTP_HEADER_SET_COOKIE, cookie);
	snprintf(r->target, sizeof r->target, "/api/v1/session");
	nf_admin_audit(r, "session.start");
	OPENSSL_cleanse(id, sizeof id);
	return rc;
}

/* The cookie's live session: its role (name in r->token_name), or NONE
 * after answering 401. */
static enum nf_admin_role current(struct nf_admin_request *r, bool *csrf_ok, int64_t *left)
{
	enum nf_admin_role role = nf_admin_session_role(r, true, csrf_ok, left);

	if (role == NF_ROLE_NONE)
		nf_admin_error(r, MHD_HTTP_UNAUTHORIZED, NULL,
		               r->session_id[0] != '\0'
		                   ? "the session has expired or was ended: sign in again"
		                   : "not signed in: POST /api/v1/session {\"token\": TOKEN}");
	return role;
}

int nf_api_session_get(struct nf_admin_request *r)
{
	bool csrf_ok;
	int64_t left = 0;
	enum nf_admin_role role;

	if (nf_admin_no_params(r) != 0)
		return MHD_YES;
	/* Not a 401 when signed out: the page asks this on every load, and a
	 * signed-out visitor is not an error (nor a red line in its console). */
	if ((role = nf_admin_session_role(r, false, &csrf_ok, &left)) == NF_ROLE_NONE)
		return nf_admin_json(r, MHD_HTTP_OK,
		                     json_pack("{s:n,s:s}", "role", "why",
		                               r->session_id[0] != '\0'
		                                   ? "the session has expired or was ended"
		                                   : "not signed in"));
	return nf_admin_json(r, MHD_HTTP_OK, session_json(r, r->session_id, role, left));
}

int nf_api_session_end(struct nf_admin_request *r)
{
	bool csrf_ok = false;
	char cookie[160];
	int rc;

	if (nf_admin_no_params(r) != 0)
		return MHD_YES;
	if (current(r, &csrf_ok, NULL) == NF_ROLE_NONE)
		return MHD_YES;
	if (!csrf_ok)
		return nf_admin_error(r, MHD_HTTP_FORBIDDEN, NULL,
		                      "signing out needs the session's CSRF token in the %s header",
		                      NF_ADMIN_CSRF_HEADER);
	nf_admin_session_end(nf_admin_sessions(r), r->session_id);
	set_cookie(r, "", 0, cookie, sizeof cookie);
	rc = nf_admin_json_with(r, MHD_HTTP_OK, json_pack("{s:b}", "ended", 1),
	                        MHD_HTTP_HEADER_SET_COOKIE, cookie);
	snprintf(r->target, sizeof r->target, "/api/v1/session");
	nf_admin_audit(r, "session.end");
	return rc;
}
