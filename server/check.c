/*
 * check.c - the two forms of a NoFUSS check, answered from the snapshot.
 *
 * This is the hot path, so it allocates nothing and takes no lock: it reads
 * the served snapshot (srv->snap, changed only by the loop between two
 * requests), matches the rules without allocating, queues the answer
 * prepared when the snapshot was built ("{}" when no rule matches), and
 * formats the check-log line into checklog's buffer.
 *
 * Answers carry Content-Length and honour Connection: close (libmicrohttpd
 * does both), which real devices depend on (docs/PEERS.md sections 1, 2).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"

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

void nf_client_ip(struct MHD_Connection *conn, char *out, size_t cap)
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

static struct MHD_Response *answer_for(const struct nf_snapshot *snap, long target)
{
	return target < 0 ? snap->empty : snap->answers[target];
}

static const char *update_for(const struct nf_snapshot *snap, long target)
{
	return target < 0 ? NULL : nf_rules_target(snap->rules, (size_t)target)->version;
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
enum MHD_Result nf_check_headers(struct nf_server *srv, struct MHD_Connection *conn)
{
	const struct nf_snapshot *snap = srv->snap;
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
		target = nf_rules_match(snap->rules, &q);
	nf_client_ip(conn, ip, sizeof ip);
	nf_checklog_header(srv->log, time(NULL), ip, &q, update_for(snap, target));
	nf_record_check(srv, conn,
	                &(struct nf_check_record){NF_CLIENT_NOFUSS_HEADER, &q, target,
	                                          target < 0 ? NF_ANSWER_NONE : NF_ANSWER_OFFERED,
	                                          NULL, NULL});
	return MHD_queue_response(conn, MHD_HTTP_OK, answer_for(snap, target));
}

/* Path form: GET <base>/<DEVICE>/<VERSION> (docs/PEERS.md section 1). */
enum MHD_Result nf_check_path(struct nf_server *srv, struct MHD_Connection *conn,
                              const struct nf_route *route)
{
	const struct nf_snapshot *snap = srv->snap;
	struct nf_query q = {route->device, route->device_len, route->version,
	                     route->version_len, NULL, NULL};
	long target = nf_rules_match(snap->rules, &q);
	char ip[INET6_ADDRSTRLEN];

	nf_client_ip(conn, ip, sizeof ip);
	nf_checklog_path(srv->log, time(NULL), ip, &q, update_for(snap, target));
	nf_record_check(srv, conn,
	                &(struct nf_check_record){NF_CLIENT_NOFUSS_PATH, &q, target,
	                                          target < 0 ? NF_ANSWER_NONE : NF_ANSWER_OFFERED,
	                                          NULL, NULL});
	return MHD_queue_response(conn, MHD_HTTP_OK, answer_for(snap, target));
}
