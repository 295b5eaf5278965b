/*
 * headlimits.c - how large a request head may be, and the answers to the
 * heads that are larger: 414 for a request target over NF_MAX_URL bytes,
 * 431 for a head that uses more than --memory-limit bytes of its pool.
 *
 * libmicrohttpd 0.9.75 keeps a request's head and its answer's head in one
 * memory pool per connection (docs/HTTP-LAYER.md section 11). It grows the
 * read buffer until the head fits, to the last byte of the pool, and builds
 * the answer's head afterwards in what is left: a head that fitted with
 * less room left than the answer needs was closed without a word. Its own
 * 414 and 431 free the pool first and always go out, but they come only
 * when the head does not fit at all.
 *
 * So the pool is --memory-limit plus NF_REPLY_ROOM (http.c), and a head
 * whose pool use (head_pool_use) is over --memory-limit, which may have
 * eaten into that room, is refused with 431. The refusal cannot be built in
 * the pool either, so it is written to the socket here, whole and fixed,
 * and libmicrohttpd is told to close the connection. A request target over
 * NF_MAX_URL is refused the same way as soon as the request line is in (the
 * URI callback), before libmicrohttpd reads the headers that would
 * otherwise turn it into its own 431.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"

char nf_head_refused;

/* Pool bytes libmicrohttpd 0.9.75 takes per header, cookie or query
 * argument: its struct MHD_HTTP_Header (56 bytes on 64-bit) rounded to 16.
 * On 32-bit it takes less, so the estimate only errs on the safe side. */
#define MHD_RECORD_BYTES 64
#define POOL_ALIGN(n) (((n) + 15) & ~(size_t)15)

/* Writes a whole answer with Connection: close to the connection's socket,
 * then shuts its sending side, so that nothing libmicrohttpd might still
 * send can follow. The socket is fresh or idle between two requests, so
 * its send buffer takes these ~200 bytes at once; a client that does not
 * read its earlier answers loses this one. */
static void write_refusal(struct MHD_Connection *conn, unsigned status, const char *reason)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char date[40], buf[320];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (ci == NULL)
		return;
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		date[0] = '\0';
	n = snprintf(buf, sizeof buf,
	             "HTTP/1.1 %u %s\r\nDate: %s\r\nConnection: close\r\n"
	             "Content-Type: " NF_TYPE_TEXT "\r\nContent-Length: %zu\r\n\r\n%s\n",
	             status, reason, date, strlen(reason) + 1, reason);
	if (n > 0 && (size_t)n < sizeof buf)
		(void)!send(ci->connect_fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(ci->connect_fd, SHUT_WR);
}

void *nf_head_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	if (strlen(uri) <= NF_MAX_URL)
		return NULL;
	write_refusal(conn, MHD_HTTP_URI_TOO_LONG, "URI Too Long");
	return &nf_head_refused;
}

/* What the head takes of the pool: its bytes, one record per header,
 * cookie and query argument, and the copy of a Cookie header that
 * libmicrohttpd parses. */
static size_t head_pool_use(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	int records = MHD_get_connection_values(
	    conn, MHD_HEADER_KIND | MHD_COOKIE_KIND | MHD_GET_ARGUMENT_KIND, NULL, NULL);
	const char *cookie = NULL;
	size_t cookie_len = 0;
	size_t use = ci != NULL ? POOL_ALIGN(ci->header_size) : 0;

	use += (size_t)(records > 0 ? records : 0) * MHD_RECORD_BYTES;
	if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE,
	                                  strlen(MHD_HTTP_HEADER_COOKIE), &cookie,
	                                  &cookie_len) == MHD_YES)
		use += POOL_ALIGN(cookie_len + 1);
	return use;
}

bool nf_head_refuse(const struct nf_server *srv, struct MHD_Connection *conn, void *req_cls)
{
	if (req_cls == &nf_head_refused)
		return true; /* answered 414 when its request line came in */
	if (head_pool_use(conn) <= srv->cfg->memory_limit)
		return false;
	write_refusal(conn, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
	              "Request Header Fields Too Large");
	return true;
}
