/*
 * http.c - the libmicrohttpd glue: the daemon (start, run, quiesce, stop),
 * the dispatch of each request to a check (check.c) or an image (image.c),
 * and the swap of the served snapshot.
 *
 * libmicrohttpd runs in external epoll mode driven by loop.c, so every
 * request is handled on the loop thread and reads one snapshot: srv->snap,
 * which nf_server_publish replaces between two requests. Answers already
 * queued hold their own references (libmicrohttpd counts them), so the old
 * snapshot can go at once; downloads hold their own file descriptors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "http.h"
#include "tls.h"

/* Marks a request whose first handler call has been seen (a download
 * waiting for its MD5 holds its own state instead). */
static char request_seen;

struct MHD_Response *nf_http_response(const void *body, size_t len, const char *type, bool copy)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);

	if (r != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return r;
}

const char *nf_http_header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* Dotted quad of 4 bytes; glibc's inet_ntop goes through sprintf, which
 * cost 15% of a check (callgrind), so IPv4 is formatted here. */
static void format_ipv4(const unsigned char *a, char *out)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];
		if (v >= 100)
			*out++ = (char)('0' + v / 100);
		if (v >= 10)
			*out++ = (char)('0' + v / 10 % 10);
		*out++ = (char)('0' + v % 10);
		*out++ = i < 3 ? '.' : '\0';
	}
}

void *nf_http_socket_context(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

void nf_http_client_ip(struct MHD_Connection *conn, char out[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	memcpy(out, "-", 2);
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		format_ipv4((const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		            out);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			format_ipv4(&a->s6_addr[12], out);
		else
			inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
	}
}

/* With device credentials (creds.c): whether the request may have an
 * image, or a check when check is true (only with auth-checks). When not,
 * the 401 is counted and logged (at most NF_AUTH_LOG_PER_SEC lines a
 * second: a scan must not flood the journal) and the caller queues
 * srv->unauthorized. One SHA-256, no lock: the loop. */
static bool allowed(struct nf_server *srv, struct MHD_Connection *conn, bool check)
{
	const struct nf_creds *creds = srv->snap->creds;
	char who[NF_MAX_CRED_NAME + 1], ip[INET6_ADDRSTRLEN];
	enum nf_auth verdict;
	time_t now;

	if (creds == NULL || (check && !srv->cfg->auth_checks))
		return true;
	verdict = nf_creds_check(creds, nf_http_header(conn, MHD_HTTP_HEADER_AUTHORIZATION), who,
	                         sizeof who);
	if (verdict == NF_AUTH_OK)
		return true;
	nf_count(&srv->counters.auth_refused, 1);
	now = time(NULL);
	if (now != srv->auth_log_second) {
		srv->auth_log_second = now;
		srv->auth_logged = 0;
	}
	if (srv->auth_logged++ < NF_AUTH_LOG_PER_SEC) {
		nf_http_client_ip(conn, ip);
		nf_log(NF_LOG_WARN, "401 to %s for %s: %s%s%s", ip, check ? "a check" : "an image",
		       nf_auth_text(verdict), who[0] != '\0' ? ", name " : "", who);
	}
	return false;
}

/* queues the 401 */
static enum MHD_Result unauthorized(struct nf_server *srv, struct MHD_Connection *conn)
{
	return MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, srv->unauthorized);
}

static enum MHD_Result route_request(struct nf_server *srv, struct MHD_Connection *conn,
                                     const char *url, void **req_cls)
{
	struct nf_route route;
	bool folder;

	nf_route(srv->cfg->base, url, &route);
	/* The reserved URLs (docs/PROTOCOL.md section 5), unless a public
	 * folder of that name takes their place; a NoFUSS path-form check of a
	 * device named "update" sends no updater headers and stays a check. */
	if (route.reserved == NF_RESERVED_ESPHOME &&
	    !nf_files_is_folder(srv->snap->files, NF_ESPHOME_SEGMENT, sizeof NF_ESPHOME_SEGMENT - 1))
		return nf_esphome_manifest(srv, conn, &route);
	if (route.reserved == NF_RESERVED_UPDATE && nf_image_is_download(conn) &&
	    !nf_files_is_folder(srv->snap->files, NF_STOCK_SEGMENT, sizeof NF_STOCK_SEGMENT - 1))
		return nf_stock_update(srv, conn, &route, req_cls);
	switch (route.kind) {
	case NF_ROUTE_CHECK_HEADERS:
		if (!allowed(srv, conn, true))
			return unauthorized(srv, conn);
		return nf_check_headers(srv, conn);
	case NF_ROUTE_FILE_OR_CHECK:
		/* "/firmware/x.bin" has the shape of "/DEVICE/VERSION": when the
		 * first segment is a folder of images, it is a file. An updater's
		 * request is a download even for a file that is not there: the
		 * credential comes first, so a 404 tells nobody what exists. */
		folder = nf_files_is_folder(srv->snap->files, route.device, route.device_len);
		if (!allowed(srv, conn, !folder && !nf_image_is_download(conn)))
			return unauthorized(srv, conn);
		if (folder)
			return nf_image_serve(srv, conn, route.path, req_cls);
		/* An updater fetching an image that is not there is not a check:
		 * a "{}" would be flashed and rejected, a 404 is a clear error. */
		if (nf_image_is_download(conn))
			return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, srv->not_found);
		return nf_check_path(srv, conn, &route);
	case NF_ROUTE_FILE:
		if (!allowed(srv, conn, false))
			return unauthorized(srv, conn);
		return nf_image_serve(srv, conn, route.path, req_cls);
	case NF_ROUTE_NOT_FOUND:
		return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, srv->not_found);
	default:
		return MHD_queue_response(conn, MHD_HTTP_BAD_REQUEST, srv->bad_request);
	}
}

/* The framing headers of one request, counted. */
struct framing {
	unsigned host, length, transfer_encoding;
	bool length_nonzero;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
	struct framing *f = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
		f->host++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->transfer_encoding++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		f->length++;
		/* Only "0" (real NoFUSS clients send it on GET) is no body. */
		f->length_nonzero |= value == NULL || strspn(value, "0") != strlen(value) || !*value;
	}
	return MHD_YES;
}

/* A device request never has a body, so any request that frames one
 * (Content-Length above 0, any Transfer-Encoding) or frames it ambiguously
 * (two Content-Length, Content-Length with Transfer-Encoding) is refused
 * before a byte of it is read, and the connection closed: nothing hidden in
 * a body can be taken for a request of its own (smuggling). So is an HTTP
 * version other than 1.0 and 1.1 (505), and an HTTP/1.1 request without
 * exactly one Host (RFC 9112 section 3.2), and a method other than GET
 * and HEAD (405). NULL: the request may go on. */
static struct MHD_Response *refuse_framing(struct nf_server *srv, struct MHD_Connection *conn,
                                           const char *method, const char *version,
                                           unsigned *status)
{
	struct framing f = {0, 0, 0, false};
	bool http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;

	if (!http11 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0) {
		*status = MHD_HTTP_HTTP_VERSION_NOT_SUPPORTED;
		return srv->bad_version;
	}
	/* Before the body is looked at: queued now, the answer closes the
	 * connection, and whatever body there was is never read. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		*status = MHD_HTTP_METHOD_NOT_ALLOWED;
		return srv->not_allowed;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	*status = MHD_HTTP_BAD_REQUEST;
	if (f.transfer_encoding > 0 || f.length > 1 || f.length_nonzero || f.host > 1 ||
	    (http11 && f.host == 0))
		return srv->bad_framing;
	return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct nf_server *srv = cls;

	(void)upload_data;
	/* Answer on the second call: a response queued on the first goes out
	 * with Connection: close and kills keep-alive (docs/HTTP-LAYER.md). */
	if (*req_cls == NULL || *req_cls == &nf_head_refused) {
		unsigned status;
		struct MHD_Response *refusal;

		/* The head is complete: its deadline no longer applies. */
		nf_conns_head_done(srv->conns, nf_http_socket_context(conn));
		if (nf_head_refuse(srv, conn, *req_cls)) {
			*req_cls = NULL;
			return MHD_NO; /* answered on the socket; libmicrohttpd closes it */
		}
		refusal = refuse_framing(srv, conn, method, version, &status);
		*req_cls = &request_seen;
		srv->active++;
		if (refusal != NULL) /* at once: no body is ever read */
			return MHD_queue_response(conn, status, refusal);
		return MHD_YES;
	}
	srv->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0; /* image.c: no body to track */
	if (*req_cls != &request_seen) /* a download back from waiting for its MD5 */
		return nf_image_resumed(srv, conn, *req_cls);
	/* refuse_framing answered every request with a body or another method
	 * on its first call; this only guards against a libmicrohttpd that
	 * would hand one over anyway. */
	if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	return route_request(srv, conn, url, req_cls);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct nf_server *srv = cls;

	/* Kept alive or not: if it is, its next head is due (conns.c). */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		nf_conns_answered(srv->conns, nf_http_socket_context(conn), nf_clock_ms());
	if (*req_cls == NULL || *req_cls == &nf_head_refused) /* never counted */
		return;
	if (*req_cls != &request_seen)
		nf_image_completed(srv, conn, *req_cls, toe);
	srv->active--;
	*req_cls = NULL;
}

/* Every connection is tracked from accept to close (conns.c). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct nf_server *srv = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		*socket_context = nf_conns_opened(srv->conns, conn, nf_clock_ms());
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		nf_conns_closed(srv->conns, *socket_context);
}

/* conns.c's close: shut the socket down; libmicrohttpd sees it at once
 * (the socket turns readable) and closes the connection its usual way. */
static void shut_connection(void *owner)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(owner, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (ci != NULL)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

/* The raw path goes to router.c, which decodes it itself and refuses
 * encoded slashes and NULs; query arguments are never used. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return strlen(s);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	struct nf_server *srv = cls;
	char msg[NF_ERR_LEN];
	size_t n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	nf_log(srv->started ? NF_LOG_DEBUG : NF_LOG_ERROR, "http: %s", msg);
}

void nf_server_count_reload(struct nf_server *srv, bool ok)
{
	nf_count(ok ? &srv->counters.reloads : &srv->counters.reload_failures, 1);
}

void nf_server_set_store(struct nf_server *srv, struct nf_store *store)
{
	srv->store = store;
}

struct nf_snapshot *nf_server_publish(struct nf_server *srv, struct nf_snapshot *snap)
{
	struct nf_snapshot *old = srv->snap;

	srv->snap = snap;
	return old;
}

struct nf_snapshot *nf_server_publish_plan(struct nf_server *srv, struct nf_snapshot *plan)
{
	struct nf_snapshot *old = srv->plan;

	srv->plan = plan;
	return old;
}

struct nf_store *nf_server_store(const struct nf_server *srv)
{
	return srv->store;
}

struct nf_snapshot *nf_server_snapshot(const struct nf_server *srv)
{
	return srv->snap;
}

/* Resolves cfg->listen into addr; "" or "*" leaves it unset (all addresses). */
static int listen_address(const struct nf_config *cfg, struct sockaddr_storage *addr,
                          bool *ipv6, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	int rc;

	if (cfg->listen[0] == '\0' || strcmp(cfg->listen, "*") == 0)
		return 1;
	snprintf(port, sizeof port, "%u", cfg->port);
	rc = getaddrinfo(cfg->listen, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "listen address \"%s\": %s", cfg->listen, gai_strerror(rc));
		return -1;
	}
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*ipv6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

static struct MHD_Daemon *start_daemon(struct nf_server *srv, unsigned flags,
                                       const struct sockaddr *addr)
{
	const struct nf_config *cfg = srv->cfg;

	return MHD_start_daemon(
	    flags | nf_tls_mhd_flags(srv->tls), (uint16_t)cfg->port, NULL, NULL, on_request, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, srv, /* first, to catch every message */
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
	    /* The head may use memory_limit; the answer's head gets its own
	     * room on top (headlimits.c). */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->memory_limit + NF_REPLY_ROOM,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)NF_LISTEN_BACKLOG,
	    /* main.c ignores SIGPIPE; without this MHD will not use sendfile. */
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
	    MHD_OPTION_URI_LOG_CALLBACK, nf_head_uri, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
	    MHD_OPTION_ARRAY, nf_tls_mhd_options(srv->tls), /* empty without TLS */
	    addr != NULL ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, addr,
	    MHD_OPTION_END);
}

/* Binds and starts the daemon on cfg's address. Returns 0 or -1 with err. */
static int listen_on(struct nf_server *srv, char *err, size_t errlen)
{
	/* External epoll: loop.c owns the thread. TURBO skips a syscall per
	 * connection and avoids stalls on bursts of new connections. Downloads
	 * wait for their MD5 suspended (image.c). */
	unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	const struct nf_config *cfg = srv->cfg;
	struct sockaddr_storage addr;
	bool ipv6 = false;
	int rc = listen_address(cfg, &addr, &ipv6, err, errlen);

	if (rc < 0)
		return -1;
	if (rc > 0) {
		/* All addresses: IPv6 and IPv4 on one socket, or IPv4 alone when
		 * the host has no IPv6. */
		srv->daemon = start_daemon(srv, flags | MHD_USE_DUAL_STACK, NULL);
		if (srv->daemon == NULL)
			srv->daemon = start_daemon(srv, flags, NULL);
	} else {
		/* "::" means every address, IPv4 included, as it does for nginx. */
		bool any6 = ipv6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&addr)->sin6_addr);
		srv->daemon = start_daemon(srv, flags | (any6 ? MHD_USE_DUAL_STACK : ipv6 ? MHD_USE_IPv6 : 0),
		                           (const struct sockaddr *)&addr);
	}
	if (srv->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s port %u: %s",
		         rc > 0 ? "all addresses" : cfg->listen, cfg->port,
		         errno ? strerror(errno) : "see above");
		return -1;
	}
	return 0;
}

/* The answers that do not depend on the rules. Returns 0 or -1. */
static int make_fixed_responses(struct nf_server *srv)
{
#define FIXED(text) nf_http_response(text, sizeof text - 1, NF_TYPE_TEXT, false)
	srv->not_found = FIXED("Not Found\n");
	srv->bad_request = FIXED("Bad Request\n");
	srv->not_allowed = FIXED("Method Not Allowed\n");
	srv->server_error = FIXED("Internal Server Error\n");
	srv->unavailable = FIXED("Service Unavailable\n");
	srv->bad_framing = FIXED("Bad Request\n");
	srv->bad_version = FIXED("HTTP Version Not Supported\n");
	srv->unauthorized = FIXED("Unauthorized\n");
	srv->busy = FIXED("Service Unavailable: too many downloads, retry later\n");
#undef FIXED
	char retry[16];
	snprintf(retry, sizeof retry, "%u", srv->cfg->retry_after);
	if (srv->not_found == NULL || srv->bad_request == NULL || srv->not_allowed == NULL ||
	    srv->server_error == NULL || srv->unavailable == NULL ||
	    MHD_add_response_header(srv->not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES ||
	    MHD_add_response_header(srv->unavailable, MHD_HTTP_HEADER_RETRY_AFTER, "5") != MHD_YES ||
	    srv->bad_framing == NULL || srv->bad_version == NULL || srv->unauthorized == NULL ||
	    srv->busy == NULL ||
	    MHD_add_response_header(srv->busy, MHD_HTTP_HEADER_RETRY_AFTER, retry) != MHD_YES ||
	    MHD_add_response_header(srv->unauthorized, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
	                            "Basic realm=\"nofuss\", charset=\"UTF-8\"") != MHD_YES ||
	    MHD_add_response_header(srv->bad_framing, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES ||
	    MHD_add_response_header(srv->bad_version, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)
		return -1;
	return 0;
}

struct nf_server *nf_server_start(const struct nf_config *cfg, struct nf_snapshot *snap,
                                  struct nf_checklog *log, char *err, size_t errlen)
{
	const union MHD_DaemonInfo *info;
	struct nf_server *srv = calloc(1, sizeof *srv);

	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		nf_snapshot_release(snap);
		return NULL;
	}
	srv->cfg = cfg;
	srv->snap = snap;
	srv->log = log;
	if (make_fixed_responses(srv) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	srv->conns = nf_conns_new(cfg->max_connections, cfg->header_timeout, cfg->idle_timeout,
	                          shut_connection);
	if (srv->conns == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	srv->reported_ms = nf_clock_ms();
	if (cfg->tls_cert[0] != '\0') {
		srv->tls = nf_tls_open("tls", cfg->tls_cert, cfg->tls_key, cfg->tls_priorities, err,
		                       errlen);
		if (srv->tls == NULL)
			goto fail;
	}
	srv->images = nf_images_new(err, errlen);
	if (srv->images == NULL || listen_on(srv, err, errlen) != 0)
		goto fail;
	/* Slow downloads each hold a full kernel send buffer; capping it bounds
	 * the memory 2,000 slow devices can pin (bench/server.sh). Set on the
	 * listening socket, every accepted one inherits it: no system call per
	 * connection. */
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_LISTEN_FD);
	if (cfg->sndbuf != 0 && info != NULL) {
		int size = (int)cfg->sndbuf;
		if (setsockopt(info->listen_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0)
			nf_log(NF_LOG_WARN, "sndbuf %u: %s", cfg->sndbuf, strerror(errno));
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : cfg->port;
	srv->started = true;
	return srv;
fail:
	nf_server_stop(srv);
	return NULL;
}

int nf_server_epoll_fd(const struct nf_server *srv)
{
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	return info ? info->epoll_fd : -1;
}

int nf_server_hasher_fd(const struct nf_server *srv)
{
	return nf_images_fd(srv->images);
}

void nf_server_resume(struct nf_server *srv)
{
	nf_images_resume(srv->images);
}

unsigned nf_server_port(const struct nf_server *srv)
{
	return srv->port;
}

const struct nf_counters *nf_server_counters(const struct nf_server *srv)
{
	return &srv->counters;
}

/* Says, at most once a minute, how many connections the head deadline and
 * the shedding closed since it last said so: the sign of a slowloris. */
static void report_slow_heads(struct nf_server *srv, uint64_t now)
{
	struct nf_conns_stats s = nf_conns_stats(srv->conns);
	unsigned long expired = s.expired - srv->reported.expired, shed = s.shed - srv->reported.shed;

	if (now - srv->reported_ms < NF_SLOW_REPORT_MS || (expired == 0 && shed == 0))
		return;
	nf_log(NF_LOG_WARN,
	       "slow request heads: %lu connections closed at the %us header-timeout and %lu at "
	       "the connection limit (%u open) in the last %llus",
	       expired, srv->cfg->header_timeout, shed, s.open,
	       (unsigned long long)(now - srv->reported_ms) / 1000);
	srv->reported = s;
	srv->reported_ms = now;
}

int nf_server_run(struct nf_server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms = NF_LOOP_MAX_SLEEP_MS;
	uint64_t now;
	int due;

	MHD_run(srv->daemon);
	now = nf_clock_ms();
	due = nf_conns_sweep(srv->conns, now);
	report_slow_heads(srv, now);
	if (MHD_get_timeout(srv->daemon, &ms) != MHD_YES || ms > NF_LOOP_MAX_SLEEP_MS)
		ms = NF_LOOP_MAX_SLEEP_MS;
	return (int)ms < due ? (int)ms : due;
}

void nf_server_quiesce(struct nf_server *srv)
{
	MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

unsigned nf_server_active_requests(const struct nf_server *srv)
{
	return srv->active;
}

void nf_server_set_admin_tls(struct nf_server *srv, struct nf_tls *tls)
{
	srv->admin_tls = tls;
}

void nf_server_reload_tls(struct nf_server *srv)
{
	nf_tls_reload(srv->tls);
	nf_tls_reload(srv->admin_tls); /* each on its own thread: neither waits */
}

void nf_server_stop(struct nf_server *srv)
{
	if (srv == NULL)
		return;
	struct MHD_Response **fixed[] = {&srv->not_found,  &srv->bad_request, &srv->not_allowed,
	                                 &srv->server_error, &srv->unavailable, &srv->bad_framing,
	                                 &srv->bad_version, &srv->unauthorized, &srv->busy};
	/* MHD must not be stopped with suspended connections: the downloads
	 * waiting for an MD5 are resumed first (and then closed). */
	nf_images_stop(srv->images);
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	nf_tls_close(srv->tls); /* no handshake can ask for it any more */
	nf_images_free(srv->images);
	nf_conns_free(srv->conns); /* after the daemon: stopping it closes every connection */
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (*fixed[i] != NULL)
			MHD_destroy_response(*fixed[i]);
	nf_snapshot_release(srv->snap);
	nf_snapshot_release(srv->plan);
	free(srv);
}
