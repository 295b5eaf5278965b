/*
 * listener.c - the admin listener: its own libmicrohttpd daemon, one thread
 * per connection (never the device loop's: the store's queries may wait),
 * the route table, bearer-token checks, and the answers' common headers.
 *
 * A request without a body is worked out on MHD's first call and its answer
 * held until the last call (upload_data_size 0): an answer queued on the
 * first call is sent with "Connection: close" (docs/HTTP-LAYER.md section
 * 6), so holding it keeps the connection alive. On a route that takes a
 * body (an upload) its body function is called before the body, with each
 * piece, and at the end, and the request lives on until MHD says it is over
 * (on_completed), cut or not. A request that frames a body the route does
 * not read (413, or any refusal of it before the route: 401, 403, 404, 405)
 * is answered at once, the body unread, and so its connection closed. Every write (a route with an action) is recorded in
 * the audit log once, with what it was answered, a cut upload too. Order of
 * checks: the path's length (414), the route (its pattern), the token (401,
 * or 403 when the route needs the admin role), then the method (405) and
 * the path (404). An unauthenticated client learns nothing of the API's
 * shape but the 401. The token is a bearer token, or else the web page's
 * session cookie (session.c), whose writes also need its CSRF token (403);
 * the page's own files (/, /ui/...) and the session routes come before any
 * token (web.c, docs/WEB.md).
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "admin.h"
#include "common.h"
#include "http.h"
#include "nofussd.h"

struct nf_admin {
	struct MHD_Daemon *daemon;
	struct nf_admin_guard guard; /* request-head deadlines (guard.c) */
	struct nf_admin_tokens tokens;
	struct nf_admin_sessions sessions; /* the web page's (session.c) */
	char web_dir[1024];
	bool tls, sessions_ok;
	struct nf_store *store;
	const struct nf_counters *counters;
	char public_dir[1024];
	const struct nf_sign_key *pubkey;
	struct nf_mailbox *rules, *plans; /* the newest rules and plan (nf_mailbox_latest) */
	pthread_mutex_t release_lock; /* nf_admin_release_lock */
	bool metrics_open;
	unsigned port;
	/* /metrics' fleet summary, refreshed at most every NF_ADMIN_SUMMARY_CACHE_MS. */
	pthread_mutex_t cache_lock;
	struct nf_fleet_summary summary;
	bool summary_ok;
	uint64_t summary_at; /* monotonic ms; 0 = never */
};

typedef int (*handler_fn)(struct nf_admin_request *r);
typedef int (*body_fn)(struct nf_admin_request *r, const char *data, size_t len, bool end);

/* The routes. A '*' segment matches one non-empty segment, percent-decoded
 * into r->args in order. */
static const struct route {
	const char *method;
	const char *pattern;
	enum nf_admin_role role; /* needed; NONE: /metrics when open */
	handler_fn fn;
	body_fn body;       /* instead of fn for a route that takes a body */
	const char *action; /* a write: its name in the audit log */
	bool json;          /* fn gets a JSON body (r->body), NF_ADMIN_MAX_BODY at most */
} routes[] = {
    {"GET", "/api/v1/devices", NF_ROLE_READ, nf_api_devices, NULL, NULL, false},
    {"GET", "/api/v1/devices/*", NF_ROLE_READ, nf_api_device, NULL, NULL, false},
    {"GET", "/api/v1/devices/*/decision", NF_ROLE_READ, nf_api_decision, NULL, NULL, false},
    {"GET", "/api/v1/decision/*", NF_ROLE_READ, nf_api_decision, NULL, NULL, false},
    {"POST", "/api/v1/devices/*/tags/*", NF_ROLE_ADMIN, nf_api_tag_add, NULL, "device.tag", false},
    {"DELETE", "/api/v1/devices/*/tags/*", NF_ROLE_ADMIN, nf_api_tag_remove, NULL,
     "device.untag", false},
    {"POST", "/api/v1/devices/*/pin", NF_ROLE_ADMIN, nf_api_device_pin, NULL, "device.pin", true},
    {"DELETE", "/api/v1/devices/*/pin", NF_ROLE_ADMIN, nf_api_device_unpin, NULL, "device.unpin",
     false},
    {"POST", "/api/v1/devices/*/exclude", NF_ROLE_ADMIN, nf_api_device_exclude, NULL,
     "device.exclude", false},
    {"DELETE", "/api/v1/devices/*/exclude", NF_ROLE_ADMIN, nf_api_device_include, NULL,
     "device.include", false},
    {"GET", "/api/v1/summary", NF_ROLE_READ, nf_api_summary, NULL, NULL, false},
    {"GET", "/api/v1/overview", NF_ROLE_READ, nf_api_overview, NULL, NULL, false},
    {"GET", "/api/v1/releases", NF_ROLE_READ, nf_api_releases, NULL, NULL, false},
    {"POST", "/api/v1/releases", NF_ROLE_ADMIN, NULL, nf_api_release_add, "release.add", false},
    {"GET", "/api/v1/releases/*", NF_ROLE_READ, nf_api_release, NULL, NULL, false},
    {"DELETE", "/api/v1/releases/*", NF_ROLE_ADMIN, nf_api_release_delete, NULL,
     "release.delete", false},
    {"PATCH", "/api/v1/releases/*", NF_ROLE_ADMIN, nf_api_release_edit, NULL, "release.edit",
     true},
    {"POST", "/api/v1/releases/*/filesystem", NF_ROLE_ADMIN, NULL, nf_api_release_fs,
     "release.filesystem", false},
    {"GET", "/api/v1/audit", NF_ROLE_READ, nf_api_audit, NULL, NULL, false},
    {"GET", "/api/v1/rollouts", NF_ROLE_READ, nf_api_rollouts, NULL, NULL, false},
    {"POST", "/api/v1/rollouts", NF_ROLE_ADMIN, nf_api_rollout_start, NULL, "rollout.start",
     true},
    {"POST", "/api/v1/rollouts/halt-all", NF_ROLE_ADMIN, nf_api_rollout_halt_all, NULL,
     "rollout.halt-all", false},
    {"GET", "/api/v1/rollouts/*", NF_ROLE_READ, nf_api_rollout, NULL, NULL, false},
    {"POST", "/api/v1/rollouts/*/*", NF_ROLE_ADMIN, nf_api_rollout_action, NULL,
     "rollout.action", false},
    {"GET", "/metrics", NF_ROLE_READ, nf_api_metrics, NULL, NULL, false},
    /* The web page's sessions: NONE, so no token is asked before them;
     * they check what they need themselves (web.c). */
    {"POST", "/api/v1/session", NF_ROLE_NONE, nf_api_session_start, NULL, NULL, true},
    {"GET", "/api/v1/session", NF_ROLE_NONE, nf_api_session_get, NULL, NULL, false},
    {"DELETE", "/api/v1/session", NF_ROLE_NONE, nf_api_session_end, NULL, NULL, false},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* Whether path matches pattern; the '*' segments decoded into args. */
static bool match(const char *pattern, const char *path, char args[2][NF_ADMIN_MAX_URL])
{
	int arg = 0;

	while (*pattern != '\0' && *path != '\0') {
		size_t plen = strcspn(pattern + 1, "/") + 1, slen = strcspn(path + 1, "/") + 1;
		if (*pattern != '/' || *path != '/')
			return false;
		if (plen == 2 && pattern[1] == '*') {
			if (slen == 1 || arg == 2 ||
			    nf_admin_unescape(path + 1, slen - 1, false, args[arg++],
			                      NF_ADMIN_MAX_URL) < 0)
				return false;
		} else if (plen != slen || memcmp(pattern, path, plen) != 0) {
			return false;
		}
		pattern += plen;
		path += slen;
	}
	/* One trailing '/' is forgiven: /api/v1/devices/ is the list. */
	return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

/* ---- answers ---- */

/* An answer made but not yet queued (struct nf_admin_request.hold). */
struct held {
	struct MHD_Response *resp;
	unsigned status;
	uint64_t dropped; /* body bytes read and dropped since */
};

/* The headers of every answer: the API's and the page's alike, so that
 * nothing the listener sends can be framed, sniffed or run inline
 * (docs/WEB.md section 4). */
static void add_common_headers(struct MHD_Response *resp, const char *cache)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", NF_WEB_CSP);
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

/* Queues resp, or keeps it in hold (see send_response). */
static enum MHD_Result queue_or_hold(struct MHD_Connection *conn, unsigned status,
                                     struct MHD_Response *resp, struct held *hold)
{
	enum MHD_Result rc;

	if (hold != NULL) {
		hold->resp = resp;
		hold->status = status;
		return MHD_YES;
	}
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

int nf_admin_send(struct nf_admin_request *r, unsigned status, struct MHD_Response *resp,
                  const char *cache)
{
	add_common_headers(resp, cache);
	r->status = status;
	snprintf(r->outcome, sizeof r->outcome, "ok");
	return queue_or_hold(r->conn, status, resp, r->hold);
}

/* Queues the answer, or with hold (a body route that reads its body to
 * the end first) keeps it in *hold for on_body to queue. */
static enum MHD_Result send_response(struct MHD_Connection *conn, unsigned status, const char *type,
                                     char *body, size_t len, const char *extra_name,
                                     const char *extra, struct held *hold)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);

	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	add_common_headers(resp, "no-store");
	if (extra_name != NULL)
		MHD_add_response_header(resp, extra_name, extra);
	return queue_or_hold(conn, status, resp, hold);
}

/* Sends obj; extra: one more header (or NULL). */
static int send_json(struct MHD_Connection *conn, unsigned status, json_t *obj,
                     const char *extra_name, const char *extra, struct held *hold)
{
	char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	size_t len;

	json_decref(obj);
	if (text == NULL) {
		static const char oom[] = "{\"error\":\"out of memory\",\"status\":500}\n";
		text = strdup(oom);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		if (text == NULL)
			return MHD_NO;
	}
	len = strlen(text);
	char *body = realloc(text, len + 2);
	if (body == NULL) {
		free(text);
		return MHD_NO;
	}
	body[len++] = '\n';
	body[len] = '\0';
	return send_response(conn, status, "application/json", body, len, extra_name, extra, hold);
}

int nf_admin_json(struct nf_admin_request *r, unsigned status, json_t *obj)
{
	r->status = status;
	snprintf(r->outcome, sizeof r->outcome, "ok");
	return send_json(r->conn, status, obj, NULL, NULL, r->hold);
}

int nf_admin_json_with(struct nf_admin_request *r, unsigned status, json_t *obj, const char *name,
                       const char *value)
{
	r->status = status;
	snprintf(r->outcome, sizeof r->outcome, "ok");
	return send_json(r->conn, status, obj, name, value, r->hold);
}

static json_t *error_body(unsigned status, const char *param, const char *msg)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "error", nf_render_string(msg, strlen(msg)));
	json_object_set_new(o, "status", json_integer(status));
	if (param != NULL && param[0] != '\0')
		json_object_set_new(o, "parameter", nf_render_string(param, strlen(param)));
	return o;
}

int nf_admin_error(struct nf_admin_request *r, unsigned status, const char *param, const char *fmt,
                   ...)
{
	char msg[NF_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->status = status;
	nf_store_copy(r->outcome, sizeof r->outcome, msg, strlen(msg));
	return send_json(r->conn, status, error_body(status, param, msg), NULL, NULL, r->hold);
}

struct nf_store *nf_admin_store(struct nf_admin_request *r)
{
	if (r->admin->store == NULL)
		nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
		               "the fleet store is off: set \"store\" in nofussd's configuration "
		               "(docs/ADMIN.md section 1)");
	return r->admin->store;
}

struct nf_admin_sessions *nf_admin_sessions(const struct nf_admin_request *r)
{
	return &r->admin->sessions;
}

const char *nf_admin_web_dir(const struct nf_admin_request *r)
{
	return r->admin->web_dir;
}

bool nf_admin_tls(const struct nf_admin_request *r)
{
	return r->admin->tls;
}

enum nf_admin_role nf_admin_bearer(struct nf_admin_request *r, const char *authorization,
                                   char *name)
{
	nf_admin_tokens_refresh(&r->admin->tokens);
	return nf_admin_tokens_check(&r->admin->tokens, authorization, name, r->token_hash);
}

void nf_admin_refused(struct nf_admin_request *r, const char *what)
{
	char ip[INET6_ADDRSTRLEN];

	nf_http_client_ip(r->conn, ip);
	nf_admin_tokens_refused(&r->admin->tokens, ip, what);
}

enum nf_admin_role nf_admin_session_role(struct nf_admin_request *r, bool with_csrf,
                                         bool *csrf_ok, int64_t *left)
{
	const char *csrf = with_csrf ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                                           NF_ADMIN_CSRF_HEADER)
	                             : NULL;
	unsigned char hash[32];
	enum nf_admin_role role;

	*csrf_ok = false;
	if (r->session_id[0] == '\0')
		return NF_ROLE_NONE;
	if (nf_admin_session_check(&r->admin->sessions, r->session_id, csrf, csrf_ok, r->token_name,
	                           left, hash) == NF_ROLE_NONE)
		return NF_ROLE_NONE;
	nf_admin_tokens_refresh(&r->admin->tokens);
	role = nf_admin_tokens_role_of(&r->admin->tokens, hash, r->token_name);
	if (role == NF_ROLE_NONE) {
		nf_admin_session_end(&r->admin->sessions, r->session_id);
		*csrf_ok = false;
	}
	return role;
}

struct nf_store *nf_admin_peek_store(const struct nf_admin_request *r)
{
	return r->admin->store;
}

const struct nf_sign_key *nf_admin_pubkey(const struct nf_admin_request *r)
{
	return r->admin->pubkey;
}

struct nf_snapshot *nf_admin_latest(const struct nf_admin_request *r, bool plan)
{
	struct nf_mailbox *mb = plan ? r->admin->plans : r->admin->rules;

	return mb != NULL ? nf_mailbox_latest(mb) : NULL;
}

const char *nf_admin_public_dir(const struct nf_admin_request *r)
{
	return r->admin->public_dir;
}

void nf_admin_release_lock(struct nf_admin_request *r, bool lock)
{
	if (lock)
		pthread_mutex_lock(&r->admin->release_lock);
	else
		pthread_mutex_unlock(&r->admin->release_lock);
}

/* ---- /metrics ---- */

int nf_admin_metrics_text(struct nf_admin *a, struct nf_admin_buf *out)
{
	struct nf_store_stats stats;
	struct nf_metrics_input in = {.counters = a->counters};
	char err[NF_ERR_LEN];
	int rc;

	if (a->store != NULL) {
		nf_store_stats(a->store, &stats);
		in.store = &stats;
	}
	pthread_mutex_lock(&a->cache_lock);
	uint64_t now = nf_clock_ms();
	if (a->store != NULL &&
	    (a->summary_at == 0 || now - a->summary_at >= NF_ADMIN_SUMMARY_CACHE_MS)) {
		/* Refreshed under the lock: scrapes that come meanwhile wait for
		 * this one query instead of each making their own. */
		nf_fleet_summary_free(&a->summary);
		a->summary_ok = nf_store_summary(a->store, 0, &a->summary, err, sizeof err) == 0;
		if (!a->summary_ok)
			nf_log(NF_LOG_WARN, "metrics: the fleet summary failed: %s", err);
		a->summary_at = now;
	}
	in.summary = a->summary_ok ? &a->summary : NULL;
	rc = nf_metrics_write(out, &in);
	pthread_mutex_unlock(&a->cache_lock);
	return rc;
}

int nf_api_metrics(struct nf_admin_request *r)
{
	struct nf_admin_buf b = {0};

	if (nf_admin_metrics_text(r->admin, &b) != 0) {
		nf_admin_buf_free(&b);
		return nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	}
	r->status = MHD_HTTP_OK;
	return send_response(r->conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
	                     b.data, b.len, NULL, NULL, r->hold);
}

/* ---- requests ---- */

struct query_text {
	char *buf;
	size_t len, cap;
	bool too_long;
};

/* Rebuilds the raw query string from MHD's arguments, which the unescape
 * callback left encoded: filter.c decodes it itself. */
static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	struct query_text *q = cls;
	int n = snprintf(q->buf + q->len, q->cap - q->len, "%s%s%s%s", q->len > 0 ? "&" : "", key,
	                 value != NULL ? "=" : "", value != NULL ? value : "");

	(void)kind;
	if (n < 0 || (size_t)n >= q->cap - q->len) {
		q->too_long = true;
		return MHD_NO;
	}
	q->len += (size_t)n;
	return MHD_YES;
}

static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return strlen(s);
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL ||
	       (cl != NULL && strspn(cl, "0") != strlen(cl));
}

static int unauthorized(struct MHD_Connection *conn, bool token_given, const char *msg,
                        struct held *hold)
{
	unsigned status = MHD_HTTP_UNAUTHORIZED;

	return send_json(conn, status, error_body(status, NULL, msg),
	                 MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	                 token_given ? "Bearer realm=\"nofussd\", error=\"invalid_token\""
	                             : "Bearer realm=\"nofussd\"",
	                 hold);
}

/* The session cookie's value into r->session_id, "" when none or bad. */
static void session_cookie(struct nf_admin_request *r)
{
	const char *cookie = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_COOKIE);

	if (cookie == NULL ||
	    nf_admin_cookie_value(cookie, strnlen(cookie, NF_ADMIN_MAX_COOKIE), NF_ADMIN_COOKIE,
	                          r->session_id, sizeof r->session_id) < 0)
		r->session_id[0] = '\0';
}

/* The one authentication step: a bearer token, else the session cookie
 * (with its CSRF token's verdict in r->csrf_ok). NULL with r->role and
 * r->token_name set, or why not, for a 401. */
static const char *authenticate(struct nf_admin_request *r)
{
	const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                               MHD_HTTP_HEADER_AUTHORIZATION);

	if (auth != NULL || r->session_id[0] == '\0') {
		r->role = nf_admin_bearer(r, auth, r->token_name);
		if (r->role != NF_ROLE_NONE)
			return NULL;
		if (auth != NULL)
			nf_admin_refused(r, "a bearer token");
		return auth != NULL ? "the bearer token is not valid"
		                    : "a bearer token is needed: Authorization: Bearer TOKEN";
	}
	r->role = nf_admin_session_role(r, true, &r->csrf_ok, NULL);
	if (r->role == NF_ROLE_NONE)
		return "the session has expired or was ended: sign in again";
	r->via_session = true;
	return NULL;
}

/* A request's audit entry, once: writes only (r->action set). */
static void audit_once(struct nf_admin_request *r)
{
	if (r->action == NULL || r->audited)
		return;
	r->audited = true;
	nf_admin_audit(r, r->action);
}

/* The rest of a request whose route takes a body: each piece of the body,
 * then its end. An answer made before the end is held (never queued while
 * the client still sends: the kernel would reset the connection over it)
 * and the rest of the body read and dropped, up to twice the image bound;
 * then the answer goes. */
static enum MHD_Result on_body(struct nf_admin_request *r, body_fn body, const char *data,
                               size_t *size)
{
	struct held *h = r->hold;
	int rc = MHD_YES;

	if (*size > 0) {
		if (r->status == 0)
			rc = body(r, data, *size, false);
		else if (h != NULL && h->resp != NULL)
			h->dropped += *size;
		*size = 0;
		if (h == NULL || h->resp == NULL || h->dropped <= 2ull * NF_ADMIN_MAX_IMAGE)
			return (enum MHD_Result)rc;
	} else if (r->status == 0) {
		rc = body(r, NULL, 0, true);
	}
	if (h != NULL && h->resp != NULL) {
		rc = MHD_queue_response(r->conn, h->status, h->resp);
		MHD_destroy_response(h->resp);
		h->resp = NULL;
	}
	audit_once(r);
	return (enum MHD_Result)rc;
}

/* A request kept between calls: a route that takes a body, or (body NULL)
 * a request without one whose answer waits in hold for MHD's last call. */
struct pending {
	struct nf_admin_request *r;
	body_fn body;
	struct held hold;
	handler_fn json_fn; /* a JSON route: its handler, called at the body's end */
	char *text;         /* the JSON body so far */
	size_t len;
};

/* A JSON route's body: gathered (NF_ADMIN_MAX_BODY at most, 413 past it),
 * then handed to its handler as r->body. */
static int gather(struct nf_admin_request *r, const char *data, size_t len, bool end)
{
	struct pending *p = r->body_state;

	if (data == NULL && !end)
		return MHD_YES;
	if (!end) {
		if (len > NF_ADMIN_MAX_BODY - p->len)
			return nf_admin_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body",
			                      "the body is larger than %d bytes", NF_ADMIN_MAX_BODY);
		memcpy(p->text + p->len, data, len);
		p->len += len;
		return MHD_YES;
	}
	p->text[p->len] = '\0';
	r->body = p->text;
	r->body_len = p->len;
	return p->json_fn(r);
}

/* Whether a body route's refusal before the body waits for the body: not
 * when the client waits for "100 Continue" (it sends nothing unless told
 * to), nor when the body is framed larger than is ever read. */
static bool hold_first(struct MHD_Connection *conn)
{
	const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_EXPECT);
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (expect != NULL && strcasecmp(expect, "100-continue") == 0)
		return false;
	return cl == NULL || strtoull(cl, NULL, 10) <= 2ull * NF_ADMIN_MAX_IMAGE;
}

/* The last call of a request without a body: its held answer goes now,
 * so MHD keeps the connection alive when the client asked for it. */
static enum MHD_Result answer_held(struct pending *p, size_t *upload_data_size)
{
	enum MHD_Result rc;

	if (*upload_data_size > 0) { /* not framed, so never comes: dropped */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (p->hold.resp == NULL)
		return MHD_NO;
	rc = MHD_queue_response(p->r->conn, p->hold.status, p->hold.resp);
	MHD_destroy_response(p->hold.resp);
	p->hold.resp = NULL;
	return rc;
}

/* Every connection is tracked from accept to close (guard.c). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct nf_admin *a = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		/* Here, before its thread exists, nothing else asks about it. */
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci != NULL ? nf_admin_guard_opened(&a->guard, ci->connect_fd) : NULL;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		nf_admin_guard_closed(&a->guard, *socket_context);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	struct nf_admin *a = cls;
	struct nf_admin_request *r;
	struct pending *p;
	const struct route *found = NULL;
	bool path_known = false, get_like, deferred;
	char allow[64] = "";
	struct query_text q = {NULL, 0, NF_ADMIN_MAX_URL, false};
	enum MHD_Result rc;

	(void)version;
	if (*req_cls == a) { /* the body of a request already answered */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*req_cls != NULL) { /* a request kept from its first call */
		p = *req_cls;
		if (p->body != NULL)
			return on_body(p->r, p->body, upload_data, upload_data_size);
		return answer_held(p, upload_data_size);
	}
	*req_cls = a;
	/* The head is complete: its deadline no longer applies (guard.c). */
	nf_admin_guard_head_done(&a->guard, nf_http_socket_context(conn));
	r = calloc(1, sizeof *r); /* args are large: not on a thread's stack */
	p = calloc(1, sizeof *p);
	if (r == NULL || p == NULL) {
		free(r);
		free(p);
		return MHD_NO;
	}
	p->r = r;
	deferred = !has_body(conn);
	if (deferred)
		r->hold = &p->hold;
	r->admin = a;
	r->conn = conn;
	r->method = method;
	get_like = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	if (nf_web_is_page(url)) { /* the page's files: no token, no route */
		rc = (enum MHD_Result)nf_web_serve(r, url);
		goto done;
	}
	session_cookie(r);
	/* In r, not on this stack: a JSON route reads it at the body's end. */
	q.buf = r->query_buf;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &q);
	r->query = r->query_buf;
	r->query_len = q.len;
	if (strlen(url) >= NF_ADMIN_MAX_URL || q.too_long) {
		rc = nf_admin_error(r, MHD_HTTP_URI_TOO_LONG, NULL,
		                    "the URL is longer than %d bytes", NF_ADMIN_MAX_URL - 1);
		goto done;
	}
	for (size_t i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, url, r->args))
			continue;
		path_known = true;
		snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
		         allow[0] ? ", " : "", routes[i].method);
		if (strcmp(routes[i].method, method) == 0 ||
		    (get_like && strcmp(routes[i].method, "GET") == 0)) {
			found = &routes[i];
			break;
		}
	}
	if (!(found != NULL && found->fn == nf_api_metrics && a->metrics_open) &&
	    !(found != NULL && found->role == NF_ROLE_NONE)) {
		const char *msg = authenticate(r);
		if (msg != NULL) {
			rc = unauthorized(conn,
			                  MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
			                                              MHD_HTTP_HEADER_AUTHORIZATION) !=
			                      NULL,
			                  msg, r->hold);
			goto done;
		}
	}
	if (found != NULL) {
		r->action = found->action;
		snprintf(r->target, sizeof r->target, "%s", url);
	}
	if (r->via_session && !get_like && !r->csrf_ok) {
		rc = nf_admin_error(r, MHD_HTTP_FORBIDDEN, NULL,
		                    "a write through a session needs its CSRF token in the %s "
		                    "header (docs/WEB.md section 3)",
		                    NF_ADMIN_CSRF_HEADER);
	} else if (found == NULL && path_known) {
		if (strstr(allow, "GET") != NULL)
			snprintf(allow + strlen(allow), sizeof allow - strlen(allow), ", HEAD");
		rc = send_json(
		    conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    error_body(MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "method not allowed here"),
		    MHD_HTTP_HEADER_ALLOW, allow, r->hold);
	} else if (found == NULL) {
		rc = nf_admin_error(r, MHD_HTTP_NOT_FOUND, NULL,
		                    "no such endpoint; the API is under /api/v1 (docs/ADMIN.md)");
	} else if (found->role == NF_ROLE_ADMIN && r->role != NF_ROLE_ADMIN) {
		rc = nf_admin_error(r, MHD_HTTP_FORBIDDEN, NULL,
		                    "token \"%s\" has the read role; this needs an admin token",
		                    r->token_name);
	} else if (found->body != NULL || found->json) {
		if (found->json && (p->text = malloc(NF_ADMIN_MAX_BODY + 1)) == NULL) {
			rc = MHD_NO;
			goto done;
		}
		p->body = found->json ? gather : found->body;
		if (found->json) {
			p->json_fn = found->fn;
			r->body_state = p;
		}
		*req_cls = p;
		r->hold = hold_first(conn) ? &p->hold : NULL;
		rc = (enum MHD_Result)p->body(r, NULL, 0, false);
		if (r->status == 0)
			r->hold = &p->hold; /* the body comes: later answers held too */
		else if (r->hold == NULL)
			audit_once(r); /* answered at once */
		return rc; /* r lives on until on_completed */
	} else if (has_body(conn)) {
		rc = nf_admin_error(r, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
		                    "%s %s takes no request body", found->method, found->pattern);
	} else {
		rc = (enum MHD_Result)found->fn(r);
	}
done:
	audit_once(r);
	if (deferred && rc == MHD_YES) {
		*req_cls = p; /* the answer goes on the last call: answer_held */
		return MHD_YES;
	}
	if (p->hold.resp != NULL)
		MHD_destroy_response(p->hold.resp);
	free(p);
	free(r);
	return rc;
}

/* Frees a kept request at its end, whatever it was: a cut upload is
 * audited as such, and its state (a temporary file) dropped. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct nf_admin *a = cls;
	struct pending *p = *req_cls;

	/* Kept alive or not: if it is, its next head is due (guard.c). */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		nf_admin_guard_answered(&a->guard, nf_http_socket_context(conn));
	if (p == NULL || (void *)p == (void *)a)
		return;
	*req_cls = NULL;
	if (p->r->status == 0 && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		p->r->status = 0;
		snprintf(p->r->outcome, sizeof p->r->outcome,
		         "cut: the connection ended before the request did; nothing was stored");
	}
	audit_once(p->r);
	if (p->hold.resp != NULL)
		MHD_destroy_response(p->hold.resp);
	if (p->body != NULL && p->json_fn == NULL)
		nf_release_cleanup(p->r);
	free(p->text);
	free(p->r);
	free(p);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	char msg[NF_ERR_LEN];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	nf_log(NF_LOG_DEBUG, "admin http: %s", msg);
}

/* The one place the daemon is made: TLS (or anything else) comes in through
 * p->mhd_flags and p->mhd_options. */
static struct MHD_Daemon *start_daemon(struct nf_admin *a, const struct nf_admin_params *p,
                                       const struct sockaddr *addr, unsigned family_flag)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
	                 MHD_USE_ERROR_LOG | family_flag | p->mhd_flags;

	return MHD_start_daemon(
	    flags, (uint16_t)p->port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
	    on_mhd_error, a, MHD_OPTION_CONNECTION_LIMIT, (unsigned)NF_ADMIN_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)NF_ADMIN_MAX_REQUEST_MEM,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)NF_ADMIN_IDLE_TIMEOUT,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL, MHD_OPTION_SOCK_ADDR, addr,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, a, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)NF_ADMIN_PER_IP_CONNECTIONS, p->mhd_options != NULL ? MHD_OPTION_ARRAY : MHD_OPTION_END, p->mhd_options,
	    MHD_OPTION_END);
}

struct nf_admin *nf_admin_start(const struct nf_admin_params *p, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE,
	                         .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	struct nf_admin *a = calloc(1, sizeof *a);
	const union MHD_DaemonInfo *info;
	char port[8];
	int gai;

	if (a == NULL)
		return nf_errf(err, errlen, "out of memory"), NULL;
	a->store = p->store;
	a->counters = p->counters;
	a->metrics_open = p->metrics_open;
	a->pubkey = p->pubkey;
	a->rules = p->rules;
	a->plans = p->plans;
	snprintf(a->public_dir, sizeof a->public_dir, "%s",
	         p->public_dir != NULL ? p->public_dir : "");
	if (a->public_dir[0] != '\0')
		nf_upload_sweep(a->public_dir);
	pthread_mutex_init(&a->cache_lock, NULL);
	pthread_mutex_init(&a->release_lock, NULL);
	snprintf(a->web_dir, sizeof a->web_dir, "%s",
	         p->web_dir != NULL && p->web_dir[0] != '\0' ? p->web_dir : nf_web_default_dir());
	a->tls = (p->mhd_flags & MHD_USE_TLS) != 0;
	if (nf_admin_sessions_init(&a->sessions, p->session_lifetime) != 0) {
		nf_errf(err, errlen, "admin listener: the random generator failed");
		goto fail;
	}
	a->sessions_ok = true;
	if (nf_admin_tokens_load(&a->tokens, p->token_file, err, errlen) != 0)
		goto fail;
	if (nf_admin_guard_start(&a->guard, err, errlen) != 0)
		goto fail;
	snprintf(port, sizeof port, "%u", p->port);
	gai = getaddrinfo(p->listen, port, &hints, &res);
	if (gai != 0) {
		nf_errf(err, errlen, "admin-listen \"%s\": %s", p->listen, gai_strerror(gai));
		goto fail;
	}
	errno = 0;
	a->daemon = start_daemon(a, p, res->ai_addr, res->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	freeaddrinfo(res);
	if (a->daemon == NULL) {
		nf_errf(err, errlen, "admin listener: cannot listen on %s port %u: %s", p->listen,
		        p->port, errno ? strerror(errno) : "see above");
		goto fail;
	}
	info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info != NULL ? info->port : p->port;
	return a;
fail:
	nf_admin_stop(a);
	return NULL;
}

unsigned nf_admin_port(const struct nf_admin *a)
{
	return a->port;
}

void nf_admin_stop(struct nf_admin *a)
{
	if (a == NULL)
		return;
	if (a->daemon != NULL)
		MHD_stop_daemon(a->daemon); /* joins every connection's thread */
	nf_admin_guard_stop(&a->guard);   /* after: closing connections tells it */
	nf_admin_tokens_free(&a->tokens);
	if (a->sessions_ok)
		nf_admin_sessions_free(&a->sessions);
	nf_fleet_summary_free(&a->summary);
	pthread_mutex_destroy(&a->cache_lock);
	pthread_mutex_destroy(&a->release_lock);
	free(a);
}
