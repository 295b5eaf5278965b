/*
 * http.h - what the libmicrohttpd side of nofussd shares: http.c (the
 * daemon and the dispatch of requests), check.c (the checks), image.c (the
 * images) and snapshot.c (which builds the answers). The rest of the server
 * sees only nofussd.h and never includes microhttpd.h.
 *
 * Everything here runs on the loop thread, except nf_http_response, which
 * the builder thread uses too.
 */
#ifndef NOFUSSD_HTTP_H
#define NOFUSSD_HTTP_H

#include <microhttpd.h>

#include "counters.h"
#include "nofussd.h"
#include "store.h"

#define NF_TYPE_JSON "application/json"
#define NF_TYPE_TEXT "text/plain"

struct nf_images; /* image.c's state: the hasher, late MD5s, waiting downloads */

struct nf_server {
	struct MHD_Daemon *daemon;
	const struct nf_config *cfg;
	struct nf_snapshot *snap;      /* served; read by every request */
	struct MHD_Response *not_found, *bad_request, *not_allowed, *server_error, *unavailable;
	struct MHD_Response *bad_framing, *bad_version; /* both with Connection: close */
	struct nf_checklog *log;
	struct nf_images *images;
	struct nf_tls *tls;            /* NULL: plain HTTP (tls.h) */
	unsigned active;               /* requests begun and not yet completed */
	unsigned port;
	struct nf_store *store;        /* the fleet store, or NULL when off (record.c) */
	struct nf_counters counters;   /* for /metrics; the loop writes, anyone reads */
	bool started;                  /* MHD's own errors are debug noise after start */
	struct MHD_Response *unauthorized; /* 401 with WWW-Authenticate: Basic */
	time_t auth_log_second;        /* 401s logged in this second, at most NF_AUTH_LOG_PER_SEC */
	unsigned auth_logged;
};

/* http.c: a response with a Content-Type. copy: the body is copied (it may
 * go away before the response does); otherwise it must outlive the
 * response (a string literal). NULL when out of memory. Any thread. */
struct MHD_Response *nf_http_response(const void *body, size_t len, const char *type, bool copy);
/* http.c: a request header's value, or NULL. */
const char *nf_http_header(struct MHD_Connection *conn, const char *name);

/* check.c: answer a header-form check (GET <base>/ with X-ESP8266-*
 * headers) or a path-form one (GET <base>/DEVICE/VERSION) from the served
 * snapshot, and log it. No allocation, no lock. */
enum MHD_Result nf_check_headers(struct nf_server *srv, struct MHD_Connection *conn);
/* check.c: the peer's address for logs, IPv4-mapped IPv6 shown as IPv4;
 * out has room for INET6_ADDRSTRLEN bytes ("-" when unknown). */
void nf_client_ip(struct MHD_Connection *conn, char *out, size_t cap);
enum MHD_Result nf_check_path(struct nf_server *srv, struct MHD_Connection *conn,
                              const struct nf_route *route);

/* image.c ------------------------------------------------------------------ */
/* The hasher thread and the late-MD5 table. NULL with err filled. */
struct nf_images *nf_images_new(char *err, size_t errlen);
/* Stops the hasher and resumes every download still waiting for it (they
 * fail). Call before stopping the daemon, which must not hold suspended
 * connections. */
void nf_images_stop(struct nf_images *im);
void nf_images_free(struct nf_images *im);
int nf_images_fd(const struct nf_images *im);
/* Resumes the downloads whose MD5 is ready. */
void nf_images_resume(struct nf_images *im);
/* Serves relpath from the snapshot's public folder, or suspends the
 * download until its MD5 is known; *req_cls then holds the waiting
 * request. */
enum MHD_Result nf_image_serve(struct nf_server *srv, struct MHD_Connection *conn,
                               const char *relpath, void **req_cls);
/* The request in req_cls was resumed: answer it. */
enum MHD_Result nf_image_resumed(struct nf_server *srv, struct MHD_Connection *conn,
                                 void *req_cls);
/* The request in req_cls is over: free it. */
void nf_image_completed(void *req_cls);
/* True for a request sent by an ESP8266 or ESP32 updater: an image
 * download, never a check. */
bool nf_image_is_download(struct MHD_Connection *conn);

/* record.c: what the fleet store and the counters learn of each check --- */
/* One answered check, as every check handler describes it. */
struct nf_check_record {
	enum nf_client_kind client;    /* which client form asked */
	const struct nf_query *q;      /* device, version, mac (NULL: none), build */
	long target;                   /* the rule that answered, -1 none */
	enum nf_answer_kind answer;    /* none, offered, or held back */
	const char *reason;            /* HELD: why, e.g. "image 612 KiB, 480 KiB free" */
	const struct nf_event_hw *hw;  /* what a stock updater's headers told; NULL */
};
/* Counts the check and posts it to the store (when there is one). Never
 * waits: a full store queue drops the event and counts it. Loop thread. */
void nf_record_check(struct nf_server *srv, struct MHD_Connection *conn,
                     const struct nf_check_record *rec);

#endif
