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

#include <arpa/inet.h>
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
	struct nf_snapshot *plan;      /* the rollouts' plan (plan.c), or NULL */
	struct MHD_Response *not_found, *bad_request, *not_allowed, *server_error, *unavailable;
	struct MHD_Response *bad_framing, *bad_version; /* both with Connection: close */
	struct nf_checklog *log;
	struct nf_images *images;
	struct nf_tls *tls;            /* NULL: plain HTTP (tls.h) */
	struct nf_tls *admin_tls;      /* the admin listener's, borrowed: reloaded with tls */
	unsigned active;               /* requests begun and not yet completed */
	unsigned port;
	struct nf_store *store;        /* the fleet store, or NULL when off (record.c) */
	bool head;                     /* the request being handled is a HEAD (no body sent) */
	struct nf_counters counters;   /* for /metrics; the loop writes, anyone reads */
	struct nf_conns *conns;        /* head deadlines and shedding (conns.c) */
	struct nf_conns_stats reported; /* conns' counts when last logged */
	uint64_t reported_ms;
	bool started;                  /* MHD's own errors are debug noise after start */
	struct MHD_Response *unauthorized; /* 401 with WWW-Authenticate: Basic */
	struct MHD_Response *busy;     /* 503 with Retry-After: retry-after (downloads.c) */
	unsigned downloads;            /* image transfers in flight (downloads.c) */
	uint64_t full_reported_ms;     /* when max-downloads being reached was last logged */
	time_t auth_log_second;        /* 401s logged in this second, at most NF_AUTH_LOG_PER_SEC */
	unsigned auth_logged;
};

/* http.c: a response with a Content-Type. copy: the body is copied (it may
 * go away before the response does); otherwise it must outlive the
 * response (a string literal). NULL when out of memory. Any thread. */
struct MHD_Response *nf_http_response(const void *body, size_t len, const char *type, bool copy);
/* http.c: a request header's value, or NULL. */
const char *nf_http_header(struct MHD_Connection *conn, const char *name);
/* http.c: the peer's address as text ("-" when unknown); IPv4-mapped IPv6
 * shown as IPv4. */
void nf_http_client_ip(struct MHD_Connection *conn, char out[INET6_ADDRSTRLEN]);
/* http.c: the socket context the connection's NOTIFY_CONNECTION callback
 * set (its conns.c entry), or NULL. From the connection's own thread only
 * (libmicrohttpd 1.0 answers through one field per connection). */
void *nf_http_socket_context(struct MHD_Connection *conn);

/* headlimits.c: request heads too large to answer in libmicrohttpd's pool --- */
/* The req_cls of a request already refused with 414. */
extern char nf_head_refused;
/* MHD_OPTION_URI_LOG_CALLBACK: a request target over NF_MAX_URL bytes is
 * answered 414 at once, written to the socket (the pool may have no room
 * left to build it); returns &nf_head_refused for it, NULL otherwise. */
void *nf_head_uri(void *cls, const char *uri, struct MHD_Connection *conn);
/* On the first handler call: true when the request was refused (414
 * above, or now 431 because its head used more than --memory-limit bytes
 * of the pool, leaving less than NF_REPLY_ROOM for the answer); the caller
 * then returns MHD_NO, which closes the connection. */
bool nf_head_refuse(const struct nf_server *srv, struct MHD_Connection *conn, void *req_cls);

/* check.c: answer a header-form check (GET <base>/ with X-ESP8266-*
 * headers) or a path-form one (GET <base>/DEVICE/VERSION) from the served
 * snapshot, and log it. No allocation, no lock. */
enum MHD_Result nf_check_headers(struct nf_server *srv, struct MHD_Connection *conn);
enum MHD_Result nf_check_path(struct nf_server *srv, struct MHD_Connection *conn,
                              const struct nf_route *route);

/* stock.c: a stock ESP8266/ESP32 updater or Tasmota at <base>/update[/DEVICE]
 * (a request with an x-ESP8266-mode or x-ESP32-mode header): 304, or the
 * rule's image through nf_image_serve (req_cls as there). Records the check. */
enum MHD_Result nf_stock_update(struct nf_server *srv, struct MHD_Connection *conn,
                                const struct nf_route *route, void **req_cls);
/* Whether target's firmware was built for a flash no bigger than the chip
 * size a NoFUSS header-form check reported (0: not reported, fits); false
 * with reason filled. */
bool nf_stock_check_fits(const struct nf_snapshot *snap, long target, uint64_t chip_size,
                         char *reason, size_t cap);
/* Says at debug level (--verbose) why a check was held back. */
void nf_stock_log_held(const struct nf_query *q, const char *reason);
/* A header holding a decimal number (at most 20 digits, nothing else), or 0. */
uint64_t nf_http_header_u64(struct MHD_Connection *conn, const char *name);

/* esphome.c: the manifest at <base>/esphome/NAME/manifest.json. Records the
 * check. */
enum MHD_Result nf_esphome_manifest(struct nf_server *srv, struct MHD_Connection *conn,
                                    const struct nf_route *route);

/* downloads.c: load control (max-downloads) ----------------------------- */
/* True when max-downloads is set and that many image transfers are in
 * flight: a check that would be an offer is deferred (NF_ANSWER_DEFERRED),
 * a transfer refused (nf_downloads_refuse). The one place that decides. */
bool nf_downloads_full(const struct nf_server *srv);
/* An image answer with a body was queued: one more in flight (and the
 * gauge and high-water mark for /metrics). Each begin has one end. */
void nf_downloads_begin(struct nf_server *srv);
/* That transfer's request is over, however it ended. */
void nf_downloads_end(struct nf_server *srv);
/* Queues 503 with Retry-After: retry-after, and counts it refused. */
enum MHD_Result nf_downloads_refuse(struct nf_server *srv, struct MHD_Connection *conn);
/* The reason a deferred check records ("20 image transfers in flight
 * (max-downloads 20)"), cut to cap. */
void nf_downloads_reason(const struct nf_server *srv, char *out, size_t cap);

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
/* The MD5 of relpath in the snapshot's public folder as the file is now
 * (not as the snapshot saw it): 0 with md5 filled; 1 when it is not known
 * yet (it is being hashed, and a later call finds it); -1 when the file
 * cannot be opened. Opens the file, never reads it. */
int nf_image_md5(struct nf_server *srv, const char *relpath, char md5[NF_MD5_HEX]);
/* The request in req_cls was resumed: answer it. */
enum MHD_Result nf_image_resumed(struct nf_server *srv, struct MHD_Connection *conn,
                                 void *req_cls);
/* The request in req_cls is over (toe: how): tell the store and the
 * counters how its download ended, and free it. */
void nf_image_completed(struct nf_server *srv, struct MHD_Connection *conn, void *req_cls,
                        enum MHD_RequestTerminationCode toe);
/* True for a request sent by an ESP8266 or ESP32 updater: an image
 * download, never a check. */
bool nf_image_is_download(struct MHD_Connection *conn);

/* choose.c: a pin, then versions.json, then a rollout ------------------------ */
struct nf_choice {
	const struct nf_snapshot *src; /* whose rules target indexes: srv->snap or srv->plan */
	long target;                   /* -1: none */
	int32_t code;                  /* src is the plan: the rule code the offer records */
	bool pinned;                   /* a pin decided (target -1: it runs the release) */
	bool deferred;                 /* a rollout picked it, past its offer rate */
	const char *why;               /* deferred: why (into why_buf), else NULL */
	char why_buf[NF_STORE_MAX_REASON];
	bool keyed;
	char key[NF_STORE_MAX_KEY];    /* the device's, once computed */
};
/* Starts a choice: versions.json's snapshot, no target. */
void nf_choice_init(struct nf_server *srv, struct nf_choice *c);
/* Before versions.json: true when the device's pin decides the answer
 * (then c->target is the pinned release's plan rule, or -1 when the device
 * runs it already). q->version must be NUL-terminated; ip is the peer's. */
bool nf_choose_pin(struct nf_server *srv, const struct nf_query *q, const char *ip,
                   struct nf_choice *c);
/* After versions.json matched nothing (c->target -1, no pin): the rollout
 * that offers the device something, if any, into c (also when its offer
 * rate is spent: then c->deferred). */
void nf_choose_rollout(struct nf_server *srv, const struct nf_query *q, const char *ip,
                       struct nf_choice *c);
/* Whether c's offer must wait: its rollout's offer rate is spent, or
 * max-downloads transfers are in flight (downloads.c). The handlers then
 * answer "no update now" in their client's words. */
bool nf_choice_defer(const struct nf_server *srv, const struct nf_choice *c);

/* record.c: what the fleet store and the counters learn of each check --- */
/* One answered check, as every check handler describes it. */
struct nf_check_record {
	enum nf_client_kind client;    /* which client form asked */
	const struct nf_query *q;      /* device, version, mac (NULL: none), build */
	long target;                   /* the rule that answered, -1 none */
	enum nf_answer_kind answer;    /* none, offered, held back or deferred */
	const char *reason;            /* HELD, DEFERRED: why, e.g. "image 612 KiB, 480 KiB free" */
	const struct nf_event_hw *hw;  /* what a stock updater's headers told; NULL */
	/* OFFERED to a client that takes one image (a stock updater, ESPHome):
	 * that image, recorded in the slot of its kind (firmware or minimal:
	 * the firmware's; filesystem: the filesystem's), so that the offer is
	 * downloaded once it is. NULL: the rule's firmware and filesystem
	 * images, both of which a NoFUSS client takes. */
	const struct nf_image_info *image;
	bool image_filesystem;
	/* The snapshot whose rules target indexes when it is not the one
	 * served (a rollout plan's, choose.c), and the rule code its offer
	 * records then. NULL: srv->snap, and the code is target. */
	const struct nf_snapshot *src;
	int32_t code;
};
/* Counts the check and posts it to the store (when there is one). Never
 * waits: a full store queue drops the event and counts it. Loop thread. */
void nf_record_check(struct nf_server *srv, struct MHD_Connection *conn,
                     const struct nf_check_record *rec);
/* One image download, from its answer to its end (image.c keeps it). */
struct nf_download {
	char image[NF_STORE_MAX_IMAGE]; /* nf_record_image_key of the request's path */
	char md5[NF_STORE_MD5_LEN];
	char mac[NF_STORE_MAC_LEN];     /* from the updater's headers, "" none */
	char ip[NF_STORE_IP_LEN];
	uint8_t client;                 /* enum nf_client_kind the MAC header tells */
	uint64_t size;                  /* the image's bytes */
	uint64_t first, len;            /* the range sent: all of it, or a 206's */
	uint64_t acked;                 /* TCP bytes acknowledged when it began */
};
/* A 200 or 206 with a body was queued for d->image: counts it and posts
 * DOWNLOAD_PROGRESS at first. Fills the rest of d. Loop thread. */
void nf_record_download_start(struct nf_server *srv, struct MHD_Connection *conn,
                              struct nf_download *d, const char *md5, uint64_t size,
                              uint64_t first, uint64_t len);
/* The download ended: complete (libmicrohttpd sent its last byte) or not.
 * Counts it and posts DOWNLOAD_DONE (the image's end was reached),
 * DOWNLOAD_PROGRESS (a range short of it) or DOWNLOAD_FAILED, with the
 * bytes the peer acknowledged when cut. Loop thread. */
void nf_record_download_end(struct nf_server *srv, struct MHD_Connection *conn,
                            const struct nf_download *d, bool complete);

#endif
