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
	struct nf_query q;
	struct nf_choice c;
	size_t mac_len, build_len;
	enum nf_answer_kind answer = NF_ANSWER_NONE;
	char ip[INET6_ADDRSTRLEN], reason[NF_STORE_MAX_REASON];

	nf_choice_init(srv, &c);
	nf_http_client_ip(conn, ip);
	q.mac = HEADER_N(conn, "X-ESP8266-MAC", &mac_len);
	q.device = HEADER_N(conn, "X-ESP8266-DEVICE", &q.device_len);
	q.version = HEADER_N(conn, "X-ESP8266-VERSION", &q.version_len);
	q.build = HEADER_N(conn, "X-ESP8266-BUILD", &build_len);
	if (mac_len > 0 && q.device_len > 0 && q.device_len <= NF_MAX_FIELD &&
	    q.version_len > 0 && q.version_len <= NF_MAX_FIELD && !nf_choose_pin(srv, &q, ip, &c)) {
		c.target = nf_rules_match(c.src->rules, &q);
		nf_choose_rollout(srv, &q, ip, &c);
	}
	/* Never offer what cannot fit (docs/PROTOCOL.md section 5.4): a client
	 * that reports its chip size gets "{}" for an image built for more. */
	if (c.target >= 0 &&
	    !nf_stock_check_fits(c.src, c.target, nf_http_header_u64(conn, "X-ESP8266-CHIPSIZE"),
	                         reason, sizeof reason)) {
		answer = NF_ANSWER_HELD;
		nf_stock_log_held(&q, reason);
	} else if (c.target >= 0) {
		answer = nf_choice_defer(srv, &c) ? NF_ANSWER_DEFERRED : NF_ANSWER_OFFERED;
	}
	nf_checklog_header(srv->log, time(NULL), ip, &q,
	                   answer == NF_ANSWER_OFFERED ? update_for(c.src, c.target) : NULL);
	nf_record_check(srv, conn,
	                &(struct nf_check_record){.client = NF_CLIENT_NOFUSS_HEADER,
	                                          .q = &q,
	                                          .target = c.target,
	                                          .answer = answer,
	                                          .reason = answer == NF_ANSWER_HELD ? reason
	                                                                             : c.why,
	                                          .src = c.src,
	                                          .code = c.code});
	return MHD_queue_response(conn, MHD_HTTP_OK,
	                          answer_for(c.src, answer == NF_ANSWER_OFFERED ? c.target : -1));
}

/* Path form: GET <base>/<DEVICE>/<VERSION> (docs/PEERS.md section 1). */
enum MHD_Result nf_check_path(struct nf_server *srv, struct MHD_Connection *conn,
                              const struct nf_route *route)
{
	struct nf_query q = {route->device, route->device_len, route->version,
	                     route->version_len, NULL, NULL};
	struct nf_choice c;
	enum nf_answer_kind answer;
	char ip[INET6_ADDRSTRLEN];

	nf_choice_init(srv, &c);
	nf_http_client_ip(conn, ip);
	if (!nf_choose_pin(srv, &q, ip, &c)) {
		c.target = nf_rules_match(c.src->rules, &q);
		nf_choose_rollout(srv, &q, ip, &c);
	}
	answer = c.target < 0                 ? NF_ANSWER_NONE
	         : nf_choice_defer(srv, &c) ? NF_ANSWER_DEFERRED
	                                      : NF_ANSWER_OFFERED;
	nf_checklog_path(srv->log, time(NULL), ip, &q,
	                 answer == NF_ANSWER_OFFERED ? update_for(c.src, c.target) : NULL);
	nf_record_check(srv, conn,
	                &(struct nf_check_record){.client = NF_CLIENT_NOFUSS_PATH,
	                                          .q = &q,
	                                          .target = c.target,
	                                          .answer = answer,
	                                          .reason = c.why,
	                                          .src = c.src,
	                                          .code = c.code});
	return MHD_queue_response(conn, MHD_HTTP_OK,
	                          answer_for(c.src, answer == NF_ANSWER_OFFERED ? c.target : -1));
}
