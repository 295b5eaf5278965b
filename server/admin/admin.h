/*
 * admin.h - nofussd's admin listener (issue 9, items 5 and 6): the JSON API
 * under /api/v1 and the Prometheus /metrics, on their own address and port,
 * and the one header of the nofuss_admin library, grouped by file as its
 * table of contents (docs/ADMIN.md is the reference for users).
 *
 * Threads: the listener is a libmicrohttpd daemon of its own with one thread
 * per connection (at most NF_ADMIN_MAX_CONNECTIONS), never the device loop's:
 * its requests may wait on the store's queries (nf_store_devices, ...) and on
 * the token file. What it reads of the loop is the counters (atomics) and the
 * store's stats (atomics); the store may be NULL (the store is off), and then
 * the API answers 503 while /metrics still serves the counters.
 *
 * Growing it: routes are one table (listener.c), each with the methods it
 * takes and the role it needs; a handler gets a struct nf_admin_request and
 * answers with nf_admin_json/nf_admin_error. TLS is one more set of MHD
 * options and flags (struct nf_admin_params.mhd_*), passed to the one
 * function that creates the daemon. The web page's session cookie (issue 13,
 * session.c and web.c) is one more way to a role, beside the bearer token,
 * in listener.c's one authentication step; a request body (issue 10's
 * uploads) is one more phase for the route that takes one.
 */
#ifndef NOFUSS_ADMIN_H
#define NOFUSS_ADMIN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "counters.h"
#include "nofussd.h"
#include "store.h"

/* Limits on outside input --------------------------------------------------- */
#define NF_ADMIN_MAX_URL           2048      /* request path and query, raw */
#define NF_ADMIN_MAX_REQUEST_MEM   16384     /* MHD's memory per connection: bounds headers */
#define NF_ADMIN_MAX_TOKEN         256       /* characters in a token */
#define NF_ADMIN_MIN_TOKEN         16        /* a shorter token is refused at load */
#define NF_ADMIN_MAX_TOKENS        256       /* tokens in the token file */
#define NF_ADMIN_MAX_TOKEN_FILE    65536     /* bytes in the token file */
#define NF_ADMIN_MAX_TOKEN_NAME    64        /* a token's name, with the NUL */
#define NF_ADMIN_MAX_OFFSET        100000000 /* the devices list's offset */
#define NF_ADMIN_MAX_CONNECTIONS   32        /* connections (threads) at once */
#define NF_ADMIN_MAX_METRIC_SERIES 100       /* device type x version series in /metrics */
#define NF_ADMIN_MAX_IMAGE   (16u * 1024 * 1024) /* bytes of one uploaded image (16 MiB flash) */
#define NF_ADMIN_MAX_AUDIT_PAGE 1000             /* audit entries in one answer */
#define NF_RELEASES_DIR      "releases"         /* below the public folder */
#define NF_UPLOAD_STALE_S    600                /* an upload's temporary file untouched this long is left over */
#define NF_ADMIN_MAX_BODY    65536               /* bytes of a JSON request body */
#define NF_UPLOAD_WRITE      262144              /* bytes an upload gathers per write(2) */
#define NF_ADMIN_MAX_FIELD   48                  /* a field's name in an error, with the NUL */

/* Tuning -------------------------------------------------------------------- */
#define NF_ADMIN_DEFAULT_PORT     8081
#define NF_ADMIN_IDLE_TIMEOUT     30   /* seconds a connection may stay idle */
#define NF_ADMIN_HEAD_TIMEOUT     10   /* seconds a request head may take (guard.c) */
#define NF_ADMIN_GUARD_SWEEP_MS   100  /* the guard sweeps this often, at least: each sweep at the limit frees a slot */
#define NF_ADMIN_PER_IP_CONNECTIONS 16 /* connections from one address (a browser uses 6) */
#define NF_ADMIN_TOKEN_RECHECK_MS 1000 /* the token file is checked for changes this often */
#define NF_ADMIN_SUMMARY_CACHE_MS 5000 /* /metrics reuses a fleet summary this long */
#define NF_ADMIN_DEFAULT_PAGE     100  /* devices per page when no limit is asked */

/* guard.c: the request-head deadline of admin connections --------------------- */
/* conns.c behind a lock, swept by a thread of its own: a connection's head
 * is due NF_ADMIN_HEAD_TIMEOUT seconds after it opened (or after its last
 * answer plus the idle timeout), and near the limit the oldest still
 * waiting are closed. Never one whose head is complete. */
struct nf_admin_guard {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stop;
	struct nf_conns *conns; /* NULL: not started */
	struct nf_conns_stats reported;
	uint64_t reported_ms;
};
int nf_admin_guard_start(struct nf_admin_guard *g, char *err, size_t errlen);
void nf_admin_guard_stop(struct nf_admin_guard *g);
/* A connection opened (its socket, read once when it opened): its entry,
 * the socket context to give the other calls (NULL: not tracked); closed;
 * its request head complete; answered and kept alive. */
struct nf_conn *nf_admin_guard_opened(struct nf_admin_guard *g, int fd);
void nf_admin_guard_closed(struct nf_admin_guard *g, struct nf_conn *entry);
void nf_admin_guard_head_done(struct nf_admin_guard *g, struct nf_conn *entry);
void nf_admin_guard_answered(struct nf_admin_guard *g, struct nf_conn *entry);

/* auth.c: the token file ------------------------------------------------------ */
/*
 * One token a line, "TOKEN [ROLE [NAME]]", fields separated by blanks; blank
 * lines and lines starting with '#' are skipped. TOKEN: NF_ADMIN_MIN_TOKEN to
 * NF_ADMIN_MAX_TOKEN printable ASCII characters without blanks. ROLE: admin
 * (the default) or read. NAME: [A-Za-z0-9_.@-], default "line-N"; issue 10's
 * audit log names a token by it. Only the SHA-256 of each token is kept.
 */
enum nf_admin_role { NF_ROLE_NONE = 0, NF_ROLE_READ, NF_ROLE_ADMIN };

struct nf_admin_token {
	unsigned char hash[32]; /* SHA-256 of the token */
	enum nf_admin_role role;
	char name[NF_ADMIN_MAX_TOKEN_NAME];
};

struct nf_admin_tokens {
	pthread_mutex_t lock; /* the table may be replaced while read */
	struct nf_admin_token *list;
	size_t count;
	char path[1024];
	/* The file as last loaded: a change of any of these reloads it. */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns, ctime_ns;
	uint64_t checked_ms; /* monotonic time of the last stat */
	time_t refused_second;   /* refusals said in this second, at most NF_AUTH_LOG_PER_SEC */
	unsigned refused_said;
};

/* Parses a token file's text (len bytes) into a new list (free with free()).
 * Returns 0 with *list and *count, or -1 with "LINE: why" in err. Pure. */
int nf_admin_tokens_parse(const char *text, size_t len, struct nf_admin_token **list, size_t *count,
                          char *err, size_t errlen);
/* Loads path: it must be a regular file, not readable or writable by others
 * (mode & 007 == 0), at most NF_ADMIN_MAX_TOKEN_FILE bytes, with at least one
 * token. Returns 0, or -1 with a message naming the file (and line). */
int nf_admin_tokens_load(struct nf_admin_tokens *t, const char *path, char *err, size_t errlen);
/* Re-reads the file when it changed (checked at most every
 * NF_ADMIN_TOKEN_RECHECK_MS). A file that became bad keeps the old tokens
 * and is said once per change. Any thread. */
void nf_admin_tokens_refresh(struct nf_admin_tokens *t);
/* The role of the token an "Authorization" header value carries ("Bearer
 * TOKEN"), or NF_ROLE_NONE; its name into name (NF_ADMIN_MAX_TOKEN_NAME)
 * and its SHA-256 into hash (may be NULL) when found. Hashes the token and
 * compares with every stored hash in constant time. Any thread. */
enum nf_admin_role nf_admin_tokens_check(struct nf_admin_tokens *t, const char *authorization,
                                         char *name, unsigned char *hash);
/* The role the token of SHA-256 hash has in the file as last loaded, or
 * NF_ROLE_NONE when it is no longer there; its name into name. Any thread. */
enum nf_admin_role nf_admin_tokens_role_of(struct nf_admin_tokens *t, const unsigned char hash[32],
                                           char *name);
void nf_admin_tokens_free(struct nf_admin_tokens *t);
/* Says that a token presented from ip was refused (what: "a sign-in", "a
 * bearer token"), at most NF_AUTH_LOG_PER_SEC lines a second: a guessing
 * run is seen without flooding the log. Any thread. */
void nf_admin_tokens_refused(struct nf_admin_tokens *t, const char *ip, const char *what);

/* session.c: the web page's sessions (docs/WEB.md section 3) -------------------- */
#define NF_ADMIN_MAX_SESSIONS      256    /* sessions at once; a new one replaces the oldest */
#define NF_ADMIN_MAX_SESSIONS_PER_TOKEN 32 /* one token's share: past it, its own oldest goes */
#define NF_ADMIN_SESSION_ID_LEN    64     /* hex digits of a session id and of a CSRF token */
#define NF_ADMIN_SESSION_DEFAULT_S 28800  /* a session's lifetime: 8 hours, a working day */
#define NF_ADMIN_MAX_SESSION_S     604800 /* admin-session-lifetime's bound: a week */
#define NF_ADMIN_MAX_COOKIE        4096   /* bytes of a Cookie header looked at */
#define NF_ADMIN_COOKIE            "nofuss_session"
#define NF_ADMIN_CSRF_HEADER       "X-CSRF-Token"

struct nf_admin_session {
	unsigned char id_hash[32];     /* SHA-256 of the id */
	enum nf_admin_role role;       /* NONE: a free slot */
	uint64_t expires_ms;           /* monotonic */
	char name[NF_ADMIN_MAX_TOKEN_NAME]; /* the token's, for the audit log */
	unsigned char token_hash[32];  /* the token's SHA-256: revoking it ends the session */
};
struct nf_admin_sessions {
	pthread_mutex_t lock;
	struct nf_admin_session list[NF_ADMIN_MAX_SESSIONS];
	unsigned char csrf_key[32]; /* random, drawn at start: CSRF = HMAC(key, id) */
	uint64_t lifetime_ms;
};
/* An empty table whose sessions last lifetime_s (0: the default). 0, or -1
 * when the random generator fails. */
int nf_admin_sessions_init(struct nf_admin_sessions *s, unsigned lifetime_s);
void nf_admin_sessions_free(struct nf_admin_sessions *s);
/* A new session of role and name, made from the token of SHA-256
 * token_hash: its id (64 hex digits from RAND_bytes) into id. Returns 0, or
 * -1 when the random generator fails. Any thread. */
int nf_admin_session_create(struct nf_admin_sessions *s, enum nf_admin_role role, const char *name,
                            const unsigned char token_hash[32],
                            char id[NF_ADMIN_SESSION_ID_LEN + 1]);
/* The CSRF token of session id (HMAC-SHA256, 64 hex digits). */
void nf_admin_session_csrf(const struct nf_admin_sessions *s, const char *id,
                           char csrf[NF_ADMIN_SESSION_ID_LEN + 1]);
/* The role of the live session id, or NF_ROLE_NONE (unknown, expired: an
 * expired one is dropped). Its token's name into name
 * (NF_ADMIN_MAX_TOKEN_NAME) and SHA-256 into token_hash (may be NULL), the
 * time it has left into *expires_in_ms (may be NULL), and whether csrf (may
 * be NULL) is its CSRF token into *csrf_ok, compared in constant time. Any
 * thread. */
enum nf_admin_role nf_admin_session_check(struct nf_admin_sessions *s, const char *id,
                                          const char *csrf, bool *csrf_ok, char *name,
                                          int64_t *expires_in_ms, unsigned char *token_hash);
/* Ends session id. True when it was live. */
bool nf_admin_session_end(struct nf_admin_sessions *s, const char *id);
uint64_t nf_admin_session_lifetime_ms(const struct nf_admin_sessions *s);
/* The value of cookie name in a Cookie header (len bytes, outside input)
 * into out (cap bytes, NUL-terminated): pairs "NAME=VALUE" split by ';'.
 * Returns its length, or -1: absent, empty, given twice, longer than
 * cap - 1, or with a byte a cookie value may not hold (controls, blanks,
 * '"', ',', '\\'). Pure. */
int nf_admin_cookie_value(const char *header, size_t len, const char *name, char *out, size_t cap);

/* web.c: the page's files and the session endpoints (docs/WEB.md) ------------- */
#define NF_WEB_MAX_FILE  (1024 * 1024) /* bytes of one file the page is made of */
#define NF_WEB_MAX_NAME  64            /* a file's name under /ui/ */
/* The page's security headers, on every answer of the admin listener. */
#define NF_WEB_CSP                                                                                 \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "             \
	"frame-ancestors 'none'"

/* filter.c: the devices list's query string, outside input ------------------- */
/* The filter and the strings it points to. */
struct nf_admin_query {
	struct nf_device_filter filter;
	char device[NF_STORE_MAX_TEXT], version[NF_STORE_MAX_TEXT];
	char mac[NF_STORE_MAC_LEN], ip[NF_STORE_IP_LEN], tag[NF_STORE_MAX_TAG];
};
/* Parses a raw (percent-encoded) query string of len bytes, without the
 * '?', into out: type, version, state, seen_after, seen_before, mac, ip, tag,
 * sort, order, offset, limit (docs/ADMIN.md section 3). Times are RFC 3339
 * UTC, ms since 1970, or an age ("90s", "15m", "24h", "7d") counted back
 * from now_ms. An empty value means "any". Returns 0, or -1 with the
 * parameter's name in param (16 bytes) and a message naming it and the
 * values it accepts in err: an unknown or repeated parameter, a bad value,
 * a bad %-escape. Pure: no I/O, no allocation. */
int nf_admin_query_parse(const char *query, size_t len, int64_t now_ms, struct nf_admin_query *out,
                         char param[16], char *err, size_t errlen);
/* Percent-decodes src (len bytes) into dst (cap bytes, NUL-terminated);
 * plus: '+' is a space (query strings). Returns the length, or -1 for a bad
 * escape, an encoded NUL, or no room. */
int nf_admin_unescape(const char *src, size_t len, bool plus, char *dst, size_t cap);
/* True for a tag the store takes: [A-Za-z0-9_.-]{1,31}. */
bool nf_admin_tag_valid(const char *tag);
/* A time as RFC 3339 UTC ("2026-12-02T12:00:00Z", "...00.123Z", "+01:00"
 * offsets), ms since 1970, or an age back from now_ms. 0 or -1. */
int nf_admin_parse_time(const char *text, int64_t now_ms, int64_t *out_ms);
/* ms since 1970 as "2026-12-02T12:00:00.123Z" into out (32 bytes). */
void nf_admin_format_time(int64_t ms, char out[32]);

/* body.c: the JSON bodies of writes, outside input ---------------------------- */
enum nf_body_type {
	NF_BODY_STRING, NF_BODY_INT, NF_BODY_NUMBER, NF_BODY_BOOL, NF_BODY_STRINGS, NF_BODY_INTS
};
/* One field an endpoint takes; a table of them ends with a NULL name. */
struct nf_body_field {
	const char *name;
	enum nf_body_type type;
	bool required;
	long long min, max;          /* INT(S), NUMBER: the value's range */
	size_t min_len, max_len;     /* STRING(S): bytes */
	size_t min_count, max_count; /* STRINGS, INTS: elements */
};
struct json_t;
/* Parses text (len bytes) as a JSON object and checks it against fields:
 * no unknown or duplicate field, each of its type and within its bounds,
 * the required ones present. Returns 0 with the object in *out
 * (json_decref it), or -1 with the offending field's name in field
 * ("body" for the body as a whole, "phases[2]" for an element) and a
 * message naming it and what it must be in err. Pure. */
int nf_admin_body_parse(const char *text, size_t len, const struct nf_body_field *fields,
                        struct json_t **out, char field[NF_ADMIN_MAX_FIELD], char *err,
                        size_t errlen);

/* metrics.c: the Prometheus text format (0.0.4) ------------------------------ */
/* What /metrics shows, gathered by the caller; written by a pure function. */
struct nf_metrics_input {
	const struct nf_counters *counters;     /* never NULL */
	const struct nf_store_stats *store;     /* NULL when the store is off */
	const struct nf_fleet_summary *summary; /* NULL when off or failing */
};
/* A growable text buffer; failed is set (and the text dropped) when memory
 * runs out. */
struct nf_admin_buf {
	char *data;
	size_t len, cap;
	bool failed;
};
void nf_admin_buf_printf(struct nf_admin_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void nf_admin_buf_free(struct nf_admin_buf *b);
/* Writes every metric of in into b (docs/ADMIN.md section 5). Device types
 * and versions are label values: escaped (\\ \" \n), invalid UTF-8
 * replaced, at most NF_ADMIN_MAX_METRIC_SERIES series, the rest summed
 * into type="other",version="other". Returns 0, or -1 out of memory. */
int nf_metrics_write(struct nf_admin_buf *b, const struct nf_metrics_input *in);
/* Appends text (up to len bytes or a NUL) as a label value: escaped,
 * invalid UTF-8 as U+FFFD. */
void nf_metrics_label(struct nf_admin_buf *b, const char *text, size_t len);
/* The length of the valid UTF-8 sequence at s (len bytes left), or 0. */
size_t nf_admin_utf8_next(const unsigned char *s, size_t len);

/* render.c: the API's JSON -------------------------------------------------- */
/* jansson values for the API's answers; NULL when out of memory. Strings
 * from devices are made valid UTF-8 (invalid bytes as U+FFFD). */
struct json_t;
struct json_t *nf_render_device(const struct nf_device *dev);
struct json_t *nf_render_history(const struct nf_history *h, size_t count);
struct json_t *nf_render_summary(const struct nf_fleet_summary *s, int64_t now_ms);
/* The decision: which rule answered the device's last check and why, or
 * why it got nothing, with a sentence saying so. */
struct json_t *nf_render_decision(const struct nf_device *dev, int64_t now_ms);
/* A JSON string of text (len bytes; invalid UTF-8 as U+FFFD), or NULL. */
struct json_t *nf_render_string(const char *text, size_t len);
/* Sets key to the RFC 3339 string of ms and key_ms to ms (null, null when 0). */
int nf_render_time(struct json_t *obj, const char *key, int64_t ms);

/* listener.c: the daemon ------------------------------------------------------ */
struct MHD_OptionItem; /* microhttpd.h, for TLS options; never needed here */

struct nf_admin_params {
	const char *listen; /* numeric IPv4 or IPv6 address */
	unsigned port;      /* 0 picks a free one */
	const char *token_file;
	bool metrics_open;      /* /metrics without a token */
	struct nf_store *store; /* NULL: the store is off (503) */
	const char *public_dir; /* releases are stored in its releases/ folder */
	/* NULL, or uploaded firmware must verify with it (nf_signed_check);
	 * must outlive the listener. */
	const struct nf_sign_key *pubkey;
	const struct nf_counters *counters;
	/* The newest versions.json snapshot and rollout plan (nf_mailbox_latest;
	 * plans NULL without a store), for shadowing and explain. */
	struct nf_mailbox *rules, *plans;
	/* Extra daemon flags and options (e.g. MHD_USE_TLS and the key and
	 * certificate), ending with MHD_OPTION_END; NULL for none. */
	unsigned mhd_flags;
	const struct MHD_OptionItem *mhd_options;
	/* The web page's files (NULL or "": nf_web_default_dir) and a
	 * session's lifetime in seconds (0: NF_ADMIN_SESSION_DEFAULT_S). */
	const char *web_dir;
	unsigned session_lifetime;
};

struct nf_admin;
/* Loads the token file and starts listening on its own threads. Returns
 * the listener (nf_admin_stop frees it), or NULL with err filled: a bad
 * token file, an address that cannot be bound. */
struct nf_admin *nf_admin_start(const struct nf_admin_params *p, char *err, size_t errlen);
/* The port it listens on (the one picked when asked for 0). */
unsigned nf_admin_port(const struct nf_admin *a);
/* Stops listening, waits for requests in progress, frees a. NULL is a no-op. */
void nf_admin_stop(struct nf_admin *a);

/* ========================================================================
 * Inside the library: between its own files.
 * ======================================================================== */
struct MHD_Connection;
struct MHD_Response;
struct held;
struct nf_admin_request {
	struct nf_admin *admin;
	struct MHD_Connection *conn;
	const char *method;
	const char *query; /* raw query string ("" for none): query_buf */
	char query_buf[NF_ADMIN_MAX_URL];
	size_t query_len;
	char args[2][NF_ADMIN_MAX_URL]; /* the route's '*' segments, percent-decoded */
	enum nf_admin_role role;
	char token_name[NF_ADMIN_MAX_TOKEN_NAME];
	unsigned char token_hash[32]; /* the bearer token's SHA-256 (nf_admin_bearer) */
	/* The session cookie's value ("" for none) and whether the role came
	 * from it rather than a bearer token. */
	char session_id[NF_ADMIN_SESSION_ID_LEN + 1];
	bool via_session;
	bool csrf_ok; /* via_session: the request carried its CSRF token */
	/* For the audit log of a write: what it acted on (the handler fills
	 * it), and the answer sent (nf_admin_json/nf_admin_error fill it). */
	char target[NF_STORE_MAX_TARGET];
	unsigned status;
	char outcome[NF_STORE_MAX_OUTCOME];
	/* A route that takes a body: the handler's state between calls. */
	void *body_state;
	const char *body;   /* a JSON route's body (len body_len), NUL-terminated */
	size_t body_len;
	struct held *hold;  /* listener.c: answers held until MHD's last call */
	const char *action; /* the route's audit name; NULL for reads */
	bool audited;
};
/* listener.c: answers (each returns MHD's result). */
/* Sends obj (taking its reference) as JSON with status. */
int nf_admin_json(struct nf_admin_request *r, unsigned status, struct json_t *obj);
/* Sends {"error": msg, "status": status[, "parameter": param]}. */
int nf_admin_error(struct nf_admin_request *r, unsigned status, const char *param, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* The store, or NULL after answering 503. */
struct nf_store *nf_admin_store(struct nf_admin_request *r);
/* The counters, the store's stats and a fleet summary at most
 * NF_ADMIN_SUMMARY_CACHE_MS old, for /metrics; the caller frees nothing. */
int nf_admin_metrics_text(struct nf_admin *a, struct nf_admin_buf *out);

/* Sends resp (taking it) with status and the headers of every answer
 * (security headers; cache: the Cache-Control value). */
int nf_admin_send(struct nf_admin_request *r, unsigned status, struct MHD_Response *resp,
                  const char *cache);
/* nf_admin_json with one more header (name, value). */
int nf_admin_json_with(struct nf_admin_request *r, unsigned status, struct json_t *obj,
                       const char *name, const char *value);
/* The listener's sessions, its web folder, and whether it serves TLS. */
struct nf_admin_sessions *nf_admin_sessions(const struct nf_admin_request *r);
const char *nf_admin_web_dir(const struct nf_admin_request *r);
bool nf_admin_tls(const struct nf_admin_request *r);
/* The role of a bearer token ("Bearer TOKEN"), its name into name, its
 * SHA-256 into r->token_hash. */
enum nf_admin_role nf_admin_bearer(struct nf_admin_request *r, const char *authorization,
                                   char *name);
/* Says (rate-limited) that r presented a token not in the file; what: "a
 * sign-in", "a bearer token". */
void nf_admin_refused(struct nf_admin_request *r, const char *what);
/* The role of the request's session cookie, or NF_ROLE_NONE: the session
 * checked against the token file as it is now. A session whose token was
 * removed from the file ends here (revoking a token signs its sessions
 * out), and one whose token's role changed takes the new role. The token's
 * name into r->token_name; whether the request's X-CSRF-Token is the
 * session's into *csrf_ok when with_csrf; the time left into *left (may be
 * NULL). */
enum nf_admin_role nf_admin_session_role(struct nf_admin_request *r, bool with_csrf,
                                         bool *csrf_ok, int64_t *left);

/* The store (NULL when off) without answering. */
struct nf_store *nf_admin_peek_store(const struct nf_admin_request *r);
/* The key uploaded firmware must verify with, or NULL. */
const struct nf_sign_key *nf_admin_pubkey(const struct nf_admin_request *r);
/* The newest versions.json snapshot (plan false) or rollout plan (true),
 * retained (the caller releases it), or NULL when there is none. */
struct nf_snapshot *nf_admin_latest(const struct nf_admin_request *r, bool plan);
/* Shadowing rules listed in one rollout's answer at most. */
#define NF_ADMIN_MAX_SHADOWS 16
/* The public folder releases are stored in. */
const char *nf_admin_public_dir(const struct nf_admin_request *r);
/* Serialises the steps of storing and deleting release files with their
 * rows (upload's link + insert, delete's delete + unlink). */
void nf_admin_release_lock(struct nf_admin_request *r, bool lock);

/* upload.c: one image streamed to disk ---------------------------------------- */
struct evp_md_ctx_st;
struct nf_upload {
	int fd;
	char dir[1024], tmp[1100];
	char field[16];           /* the field errors name: "firmware", "filesystem" */
	struct evp_md_ctx_st *md5, *sha;
	uint64_t max;
	bool firmware;            /* check the ESP/gzip header */
	unsigned char head[NF_ESP_HEADER_LEN];
	size_t head_len;
	struct nf_release_image image; /* filled as it comes; path at finish */
	/* Bytes not yet written: MHD hands the body over in pieces of its
	 * connection buffer (~16 KiB), so they are gathered into larger writes. */
	unsigned char pending[NF_UPLOAD_WRITE];
	size_t pending_len;
	unsigned status;          /* 0, or the HTTP status of the refusal */
	char err[256];
};
/* Makes public_dir/releases (mode 0755) when missing and a hidden
 * temporary file in it; starts the digests. Returns 0, or -1 with u->status
 * and u->err. Call nf_upload_abort afterwards in every case. */
int nf_upload_begin(struct nf_upload *u, const char *public_dir, const char *field,
                    uint64_t max, bool firmware);
/* Writes and hashes len more bytes; the first NF_ESP_HEADER_LEN checked
 * (firmware). Returns 0, or -1 with u->status (400 a bad header, 413 past
 * max, 500 I/O) and u->err naming u->field. */
int nf_upload_feed(struct nf_upload *u, const void *data, size_t len);
/* Checks what only the end can tell (empty, short header), fills the
 * digests into u->image and fsyncs. 0 or -1 as feed. */
int nf_upload_seal(struct nf_upload *u);
/* After seal: links the file to releases/<sha256>.bin (kept when it
 * exists: the same bytes) and sets u->image.path ("/releases/<sha256>.bin").
 * 0 or -1 as feed. */
int nf_upload_store(struct nf_upload *u);
/* The temporary file's descriptor (for a signature check), or -1. */
int nf_upload_fd(const struct nf_upload *u);
/* Closes and unlinks the temporary file and frees the digests. */
void nf_upload_abort(struct nf_upload *u);
/* "QIO", "QOUT", "DIO", "DOUT", or NULL. */
const char *nf_upload_flash_mode_name(int mode);
/* Removes the temporary files of uploads an earlier run left (a crash, a
 * kill -9) in public_dir/releases: those untouched for
 * NF_UPLOAD_STALE_S, so that another node's upload in progress on shared
 * storage is left alone. Returns how many were removed; says so once. */
size_t nf_upload_sweep(const char *public_dir);

/* releases.c: /api/v1/releases and /api/v1/audit ------------------------------ */
/* Body routes are called once with data NULL before the body (the headers
 * and the query: they may answer at once), then with each piece of the body
 * (len > 0), then once with data NULL and len 0 at its end, when they must
 * answer if they have not. r->body_state is theirs; nf_release_cleanup
 * frees it whatever happened. */
int nf_api_release_add(struct nf_admin_request *r, const char *data, size_t len, bool end);
int nf_api_release_fs(struct nf_admin_request *r, const char *data, size_t len, bool end);
void nf_release_cleanup(struct nf_admin_request *r);
int nf_api_releases(struct nf_admin_request *r);
int nf_api_release(struct nf_admin_request *r);
int nf_api_release_delete(struct nf_admin_request *r);
/* PATCH: {"notes": TEXT}, the one thing of a release that may change. */
int nf_api_release_edit(struct nf_admin_request *r);
int nf_api_audit(struct nf_admin_request *r);
/* True for a release's version: [A-Za-z0-9_.+-]{1,63} with a digit,
 * starting with a letter or digit. */
bool nf_release_version_valid(const char *s);
/* When a public key is configured, refuses (answering 400, returning -1)
 * an image that does not verify; 0 otherwise. Lock held. */
int nf_release_sign_check(struct nf_admin_request *r, struct nf_upload *up);
/* 0 when r has no query parameters, or -1 after answering 400 naming one. */
int nf_admin_no_params(struct nf_admin_request *r);
/* r->args[0] as the id of a what ("release") into *id, and no query
 * parameters. 0, or -1 after answering 400 naming "id" (or the parameter). */
int nf_admin_path_id(struct nf_admin_request *r, const char *what, int64_t *id);
/* The JSON of a release. */
struct json_t *nf_render_release(const struct nf_release *rel);
/* Writes the audit entry of request r (its action, target, status and
 * outcome) to the store; failures are logged. */
void nf_admin_audit(struct nf_admin_request *r, const char *action);

/* rollouts.c: /api/v1/rollouts (issue 10 item 2) ------------------------------ */
/* Defaults of a rollout's gates (docs/ROLLOUTS.md section 2). */
#define NF_ROLLOUT_DEFAULT_PHASES  {1, 10, 50, 100}
#define NF_ROLLOUT_DEFAULT_SUCCESS 95.0  /* % of offered devices confirmed */
#define NF_ROLLOUT_DEFAULT_ERROR   5.0   /* % reverted, failed or silent: halt */
#define NF_ROLLOUT_DEFAULT_SOAK_S  3600  /* a phase lasts at least this */
#define NF_ROLLOUT_DEFAULT_SILENT_S 3600 /* offered, no confirmation since: silent */
#define NF_ROLLOUT_MAX_TAGS  16
#define NF_ROLLOUT_MAX_MACS  28   /* fits NF_ROLLOUT_MAX_LIST */
#define NF_ROLLOUT_MAX_SECONDS (30LL * 24 * 3600)
#define NF_ROLLOUT_WINDOW_LEN 12      /* "HH:MM-HH:MM" with the NUL */
#define NF_ROLLOUT_MAX_RATE   100000  /* new offers a minute; 0 is no bound */
/* POST {"release", "phases", "min_version", "max_version", "tags", "macs",
 * "success_threshold", "error_threshold", "soak", "silent_after",
 * "approval", "window", "rate"}: 201 with the rollout. */
int nf_api_rollout_start(struct nf_admin_request *r);
int nf_api_rollouts(struct nf_admin_request *r);
/* The rollouts not over (running, paused, halted), each as GET
 * /api/v1/rollouts/{id} answers it, newest first; NULL with err filled
 * when the store fails. */
struct json_t *nf_api_rollouts_not_over(struct nf_admin_request *r, int64_t now, char *err,
                                        size_t errlen);
/* GET /api/v1/overview: what a fleet page shows, in one answer. */
int nf_api_overview(struct nf_admin_request *r);
int nf_api_rollout(struct nf_admin_request *r);
/* POST /api/v1/rollouts/halt-all: every running or paused rollout halted,
 * and every completed one still offering to late devices. */
int nf_api_rollout_halt_all(struct nf_admin_request *r);
/* POST /api/v1/rollouts/{id}/{pause|resume|advance|abort|halt}. */
int nf_api_rollout_action(struct nf_admin_request *r);
/* The JSON of a rollout (docs/ROLLOUTS.md section 2). With c (its counts
 * as of now_ms), also "counts", "phase_counts" and the gates' figures and
 * verdict (nf_rollout_judge); without, none of them. NULL out of memory. */
struct json_t *nf_render_rollout(const struct nf_rollout *ro, const struct nf_rollout_counts *c,
                                 int64_t now_ms);
/* A rollout's window, "HH:MM-HH:MM" in the server's local time (it may
 * wrap midnight: "22:00-05:00"), into minutes of the day; NULL or ""
 * is none (-1, -1). Returns 0, or -1 with a message in err: not that
 * form, an hour past 23 or a minute past 59, or an empty window (it ends
 * where it starts). Pure. */
int nf_rollout_window_parse(const char *text, int *start, int *end, char *err, size_t errlen);
/* The window as "HH:MM-HH:MM", or "" for none (either bound out of range). */
void nf_rollout_window_format(int start, int end, char out[NF_ROLLOUT_WINDOW_LEN]);

/* api.c: the /api/v1 handlers ------------------------------------------------ */
int nf_api_devices(struct nf_admin_request *r);
/* Answers 200 with the device r->args[0] names, as it is now (with its
 * history when asked), or the error that says why not. */
int nf_api_answer_device(struct nf_admin_request *r, bool history);
int nf_api_device(struct nf_admin_request *r);
int nf_api_decision(struct nf_admin_request *r);
int nf_api_summary(struct nf_admin_request *r);
int nf_api_tag_add(struct nf_admin_request *r);
int nf_api_tag_remove(struct nf_admin_request *r);
/* r->args[0] checked as a device key: 0, or -1 after answering 400. */
int nf_api_device_key(struct nf_admin_request *r);
/* Reads the device r->args[0] names, with its history (free *hist).
 * Returns 1 found; 0 (404) or -1 (400, 503) after answering. */
int nf_api_read_device(struct nf_admin_request *r, int64_t now, struct nf_device *dev,
                       struct nf_history **hist, size_t *count);

/* controls.c: a device's pin and exclusion (issue 10 item 4) ------------------ */
/* POST /api/v1/devices/{key}/pin {"release": ID}: the release must exist
 * and be for the device's type (400 naming "release"). 200 with the
 * device (its "pin" set). */
int nf_api_device_pin(struct nf_admin_request *r);
/* DELETE /api/v1/devices/{key}/pin: 200 with the device, pinned or not before. */
int nf_api_device_unpin(struct nf_admin_request *r);
/* POST and DELETE /api/v1/devices/{key}/exclude: left out of every
 * rollout, or taken back. 200 with the device. */
int nf_api_device_exclude(struct nf_admin_request *r);
int nf_api_device_include(struct nf_admin_request *r);
int nf_api_metrics(struct nf_admin_request *r);

/* web.c: the page and the session endpoints (docs/WEB.md) --------------------- */
/* Whether url is the page's (/, /ui, /ui/..., /favicon.ico): served
 * without a token. */
bool nf_web_is_page(const char *url);
/* GET or HEAD of the page's url: / and /ui redirect to /ui/ (and
 * /favicon.ico to /ui/icon.svg), /ui/ is
 * index.html, /ui/NAME a file of the web folder ([a-z0-9_.-], a known
 * extension, NF_WEB_MAX_FILE at most) with its Content-Type, ETag and
 * Cache-Control: no-cache (kept, revalidated). 404 for anything else,
 * 405 for another method. */
int nf_web_serve(struct nf_admin_request *r, const char *url);
/* The web folder when admin-web-dir is not set: the source tree's web/
 * when nofussd runs from its build tree, else the installed one
 * (DATADIR/nofuss/web). */
const char *nf_web_default_dir(void);
/* POST /api/v1/session {"token": TOKEN}: a session cookie (HttpOnly,
 * SameSite=Strict, Secure under TLS, Max-Age) and {"role", "name",
 * "csrf", "expires_in"}; 401 for a bad token. */
int nf_api_session_start(struct nf_admin_request *r);
/* GET /api/v1/session: the cookie's session ({"role", "name", "csrf",
 * "expires_in"}), or 200 {"role": null, "why"} when none. DELETE: ends it (CSRF token needed) and
 * clears the cookie. */
int nf_api_session_get(struct nf_admin_request *r);
int nf_api_session_end(struct nf_admin_request *r);

#endif /* NOFUSS_ADMIN_H */
