/*
 * http.c - the libmicrohttpd glue: one access handler that turns a request
 * into a check answer or an image.
 *
 * The hot path (a check) allocates nothing and takes no lock: the answer
 * for every rule is a persistent MHD_Response built when the rules load,
 * "{}" is one shared response, and the check log line goes into checklog's
 * buffer. libmicrohttpd runs in external epoll mode driven by loop.c, so all
 * of this happens on one thread.
 *
 * Things real devices depend on (docs/PEERS.md sections 1, 2 and 5): answers
 * carry Content-Length and honour Connection: close (MHD does both); images
 * are never redirected, carry Content-Length and x-MD5, and are sent with
 * sendfile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nofussd.h"

struct nf_server {
	struct MHD_Daemon *daemon;
	const struct nf_config *cfg;
	struct nf_rules *rules;
	struct MHD_Response **answers; /* one per target of rules */
	struct MHD_Response *empty;    /* "{}" */
	struct MHD_Response *not_found, *bad_request, *not_allowed, *server_error;
	struct nf_files *files;
	struct nf_checklog *log;
	unsigned active;               /* requests begun and not yet completed */
	unsigned port;
	bool started;                  /* MHD's own errors are debug noise after start */
};

/* Marks a request whose first handler call has been seen. */
static char request_seen;

static struct MHD_Response *fixed_response(const char *body, const char *type)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (r != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
		MHD_destroy_response(r);
		r = NULL;
	}
	return r;
}

static void free_answers(struct nf_server *srv)
{
	if (srv->answers == NULL)
		return;
	for (size_t i = 0; i < nf_rules_count(srv->rules); i++)
		if (srv->answers[i] != NULL)
			MHD_destroy_response(srv->answers[i]);
	free(srv->answers);
	srv->answers = NULL;
}

/* One persistent response per target. Bodies are copied into the
 * responses, so answers already queued outlive a reload. */
static struct MHD_Response **build_answers(const struct nf_rules *rules)
{
	size_t n = nf_rules_count(rules);
	struct MHD_Response **answers = calloc(n + 1, sizeof *answers);

	if (answers == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct nf_target *t = nf_rules_target(rules, i);
		answers[i] = MHD_create_response_from_buffer(t->body_len, (void *)t->body,
		                                             MHD_RESPMEM_MUST_COPY);
		if (answers[i] == NULL ||
		    MHD_add_response_header(answers[i], MHD_HTTP_HEADER_CONTENT_TYPE,
		                            "application/json") != MHD_YES) {
			for (size_t j = 0; j <= i; j++)
				if (answers[j] != NULL)
					MHD_destroy_response(answers[j]);
			free(answers);
			return NULL;
		}
	}
	return answers;
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

/* The peer's address for the check log; IPv4-mapped IPv6 shown as IPv4.
 * out has room for INET6_ADDRSTRLEN bytes. */
static void client_ip(struct MHD_Connection *conn, char *out, size_t cap)
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
			inet_ntop(AF_INET6, a, out, (socklen_t)cap);
	}
}

static struct MHD_Response *answer_for(struct nf_server *srv, long target)
{
	return target < 0 ? srv->empty : srv->answers[target];
}

static const char *update_for(struct nf_server *srv, long target)
{
	return target < 0 ? NULL : nf_rules_target(srv->rules, (size_t)target)->version;
}

/* A request header, looked up with its name's length: MHD compares lengths
 * first, so a miss costs no string comparison (this is the hot path). */
static const char *header_n(struct MHD_Connection *conn, const char *name, size_t name_len,
                            size_t *value_len)
{
	const char *value = NULL;

	*value_len = 0;
	if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, name, name_len, &value,
	                                  value_len) != MHD_YES)
		return NULL;
	return value;
}
#define HEADER_N(conn, lit, len) header_n(conn, lit, sizeof lit - 1, len)

/* Header form: GET <base>/ with X-ESP8266-* headers (docs/PEERS.md section 2).
 * A missing or empty MAC, device or version is answered "{}". */
static enum MHD_Result header_check(struct nf_server *srv, struct MHD_Connection *conn)
{
	struct nf_query q;
	size_t mac_len, build_len;
	long target = -1;
	char ip[INET6_ADDRSTRLEN];

	q.mac = HEADER_N(conn, "X-ESP8266-MAC", &mac_len);
	q.device = HEADER_N(conn, "X-ESP8266-DEVICE", &q.device_len);
	q.version = HEADER_N(conn, "X-ESP8266-VERSION", &q.version_len);
	q.build = HEADER_N(conn, "X-ESP8266-BUILD", &build_len);
	if (mac_len > 0 && q.device_len > 0 && q.device_len <= NF_MAX_FIELD &&
	    q.version_len > 0 && q.version_len <= NF_MAX_FIELD)
		target = nf_rules_match(srv->rules, &q);
	client_ip(conn, ip, sizeof ip);
	nf_checklog_header(srv->log, time(NULL), ip, &q, update_for(srv, target));
	return MHD_queue_response(conn, MHD_HTTP_OK, answer_for(srv, target));
}

/* Path form: GET <base>/<DEVICE>/<VERSION> (docs/PEERS.md section 1). */
static enum MHD_Result path_check(struct nf_server *srv, struct MHD_Connection *conn,
                                  const struct nf_route *route)
{
	struct nf_query q = {route->device, route->device_len, route->version,
	                     route->version_len, NULL, NULL};
	long target = nf_rules_match(srv->rules, &q);
	char ip[INET6_ADDRSTRLEN];

	client_ip(conn, ip, sizeof ip);
	nf_checklog_path(srv->log, time(NULL), ip, &q, update_for(srv, target));
	return MHD_queue_response(conn, MHD_HTTP_OK, answer_for(srv, target));
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* If-Modified-Since: the file has not changed since the date given. */
static bool not_modified_since(struct MHD_Connection *conn, const struct nf_file *f)
{
	const char *v = header(conn, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	struct tm tm;
	const char *end;

	if (v == NULL)
		return false;
	memset(&tm, 0, sizeof tm);
	end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return end != NULL && *end == '\0' && f->mtime <= timegm(&tm);
}

/* An ESP8266 or ESP32 updater fetching a sketch it already runs. */
static bool runs_this_sketch(struct MHD_Connection *conn, const char *md5)
{
	const char *mode = header(conn, "x-ESP8266-mode");
	const char *running = header(conn, "x-ESP8266-sketch-md5");

	if (mode == NULL) {
		mode = header(conn, "x-ESP32-mode");
		running = header(conn, "x-ESP32-sketch-md5");
	}
	return mode != NULL && running != NULL && strcmp(mode, "sketch") == 0 &&
	       strcasecmp(running, md5) == 0;
}

/* True when an If-None-Match list names etag (or is "*"). */
static bool etag_listed(const char *list, const char *etag)
{
	size_t elen = strlen(etag);

	if (strcmp(list, "*") == 0)
		return true;
	for (const char *p = list; (p = strstr(p, etag)) != NULL; p += elen) {
		bool start = p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
		bool end = p[elen] == '\0' || p[elen] == ',' || p[elen] == ' ';
		if (start && end)
			return true;
	}
	return false;
}

static enum MHD_Result queue_file(struct MHD_Connection *conn, struct nf_file *f,
                                  unsigned status, uint64_t first, uint64_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char range[96];

	if (len == 0) {
		close(f->fd);
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	} else {
		/* Takes the fd and sends it with sendfile. */
		r = MHD_create_response_from_fd_at_offset64(len, f->fd, first);
		if (r == NULL)
			close(f->fd);
	}
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(r, "x-MD5", f->md5); /* the ESP updater verifies it */
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, f->etag);
	MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, f->last_modified);
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (status == MHD_HTTP_PARTIAL_CONTENT) {
		snprintf(range, sizeof range, "bytes %llu-%llu/%llu", (unsigned long long)first,
		         (unsigned long long)(first + len - 1), (unsigned long long)f->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, range);
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result serve_file(struct nf_server *srv, struct MHD_Connection *conn,
                                  const char *relpath)
{
	const char *inm, *range, *if_range;
	struct nf_file f;
	uint64_t first = 0, last = 0;

	if (nf_files_get(srv->files, relpath, &f) != 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES ||
		    errno == ENAMETOOLONG)
			return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, srv->not_found);
		nf_log(NF_LOG_ERROR, "%s: %s", relpath, strerror(errno));
		return MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, srv->server_error);
	}

	/* Stock firmware pointed straight at an image sends the MD5 of the
	 * sketch it runs; that very image is "no update" (304), not a reflash
	 * on every check (docs/PEERS.md section 5). */
	if (runs_this_sketch(conn, f.md5))
		return queue_file(conn, &f, MHD_HTTP_NOT_MODIFIED, 0, 0);
	inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if ((inm != NULL && etag_listed(inm, f.etag)) || (inm == NULL && not_modified_since(conn, &f)))
		return queue_file(conn, &f, MHD_HTTP_NOT_MODIFIED, 0, 0);

	range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	if_range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
	/* If-Range: the range applies only to the version the client has. */
	if (range != NULL && if_range != NULL && strcmp(if_range, f.etag) != 0 &&
	    strcmp(if_range, f.last_modified) != 0)
		range = NULL;
	switch (nf_range_parse(range, f.size, &first, &last)) {
	case NF_RANGE_OK:
		return queue_file(conn, &f, MHD_HTTP_PARTIAL_CONTENT, first, last - first + 1);
	case NF_RANGE_UNSATISFIABLE: {
		char cr[64];
		struct MHD_Response *r = fixed_response("Range Not Satisfiable\n", "text/plain");
		enum MHD_Result ret = MHD_NO;
		close(f.fd);
		if (r != NULL) {
			snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)f.size);
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
			ret = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
			MHD_destroy_response(r);
		}
		return ret;
	}
	default:
		return queue_file(conn, &f, MHD_HTTP_OK, 0, f.size);
	}
}

/* The ESP8266 and ESP32 HTTP updaters send x-ESP8266-mode / x-ESP32-mode
 * with every image download (docs/PEERS.md section 5); checks never do. */
static bool is_image_download(struct MHD_Connection *conn)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-ESP8266-mode") != NULL ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-ESP32-mode") != NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct nf_server *srv = cls;
	struct nf_route route;

	(void)version;
	(void)upload_data;
	/* Answer on the second call: a response queued on the first goes out
	 * with Connection: close and kills keep-alive (docs/HTTP-LAYER.md section 6). */
	if (*req_cls == NULL) {
		*req_cls = &request_seen;
		srv->active++;
		return MHD_YES;
	}
	if (*upload_size != 0) { /* a body is never needed: drop it */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, srv->not_allowed);

	nf_route(srv->cfg->base, url, &route);
	switch (route.kind) {
	case NF_ROUTE_CHECK_HEADERS:
		return header_check(srv, conn);
	case NF_ROUTE_FILE_OR_CHECK:
		/* "/firmware/x.bin" has the shape of "/DEVICE/VERSION": when the
		 * first segment is a folder of images, it is a file. */
		if (nf_files_is_folder(srv->files, route.device, route.device_len))
			return serve_file(srv, conn, route.path);
		/* An updater fetching an image that is not there is not a check:
		 * a "{}" would be flashed and rejected, a 404 is a clear error. */
		if (is_image_download(conn))
			return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, srv->not_found);
		return path_check(srv, conn, &route);
	case NF_ROUTE_FILE:
		return serve_file(srv, conn, route.path);
	case NF_ROUTE_NOT_FOUND:
		return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, srv->not_found);
	default:
		return MHD_queue_response(conn, MHD_HTTP_BAD_REQUEST, srv->bad_request);
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct nf_server *srv = cls;

	(void)conn;
	(void)toe;
	if (*req_cls != NULL) {
		srv->active--;
		*req_cls = NULL;
	}
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
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	nf_log(srv->started ? NF_LOG_DEBUG : NF_LOG_ERROR, "http: %s", msg);
}

void nf_server_set_rules(struct nf_server *srv, struct nf_rules *rules)
{
	struct MHD_Response **answers = build_answers(rules);

	if (answers == NULL) {
		nf_log(NF_LOG_ERROR, "out of memory building answers; keeping the previous rules");
		nf_rules_free(rules);
		return;
	}
	free_answers(srv);
	nf_rules_free(srv->rules);
	srv->rules = rules;
	srv->answers = answers;
}

int nf_server_reopen_files(struct nf_server *srv)
{
	char err[1024];
	struct nf_files *files = nf_files_open(srv->cfg->public_dir, err, sizeof err);

	if (files == NULL) {
		nf_log(NF_LOG_ERROR, "%s; still serving the folder opened before", err);
		return -1;
	}
	nf_files_close(srv->files);
	srv->files = files;
	return 0;
}

const struct nf_rules *nf_server_rules(const struct nf_server *srv)
{
	return srv->rules;
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
	    flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, srv, /* first, to catch every message */
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->memory_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
	    /* main.c ignores SIGPIPE; without this MHD will not use sendfile. */
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
	    addr != NULL ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, addr,
	    MHD_OPTION_END);
}

struct nf_server *nf_server_start(const struct nf_config *cfg, struct nf_rules *rules,
                                  struct nf_checklog *log, char *err, size_t errlen)
{
	/* External epoll: loop.c owns the thread. TURBO skips a syscall per
	 * connection and avoids stalls on bursts of new connections. */
	unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
	struct sockaddr_storage addr;
	const union MHD_DaemonInfo *info;
	struct nf_server *srv = calloc(1, sizeof *srv);
	bool ipv6 = false;
	int rc;

	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		nf_rules_free(rules);
		return NULL;
	}
	srv->cfg = cfg;
	srv->rules = rules;
	srv->log = log;
	srv->answers = build_answers(rules);
	srv->empty = fixed_response("{}", "application/json");
	srv->not_found = fixed_response("Not Found\n", "text/plain");
	srv->bad_request = fixed_response("Bad Request\n", "text/plain");
	srv->not_allowed = fixed_response("Method Not Allowed\n", "text/plain");
	srv->server_error = fixed_response("Internal Server Error\n", "text/plain");
	if (srv->answers == NULL || srv->empty == NULL || srv->not_found == NULL ||
	    srv->bad_request == NULL || srv->not_allowed == NULL || srv->server_error == NULL ||
	    MHD_add_response_header(srv->not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	srv->files = nf_files_open(cfg->public_dir, err, errlen);
	if (srv->files == NULL)
		goto fail;

	rc = listen_address(cfg, &addr, &ipv6, err, errlen);
	if (rc < 0)
		goto fail;
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
		goto fail;
	}
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

unsigned nf_server_port(const struct nf_server *srv)
{
	return srv->port;
}

int nf_server_run(struct nf_server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms = 1000;

	MHD_run(srv->daemon);
	if (MHD_get_timeout(srv->daemon, &ms) != MHD_YES || ms > 1000)
		ms = 1000;
	return (int)ms;
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

void nf_server_stop(struct nf_server *srv)
{
	if (srv == NULL)
		return;
	struct MHD_Response **fixed[] = {&srv->empty, &srv->not_found, &srv->bad_request,
	                                 &srv->not_allowed, &srv->server_error};
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (*fixed[i] != NULL)
			MHD_destroy_response(*fixed[i]);
	free_answers(srv);
	nf_rules_free(srv->rules);
	nf_files_close(srv->files);
	free(srv);
}
