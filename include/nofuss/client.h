/*
 * nofuss/client.h - the NoFUSS device client: the portable core.
 *
 * One caller-owned struct holds all state; nothing is allocated. The core
 * speaks NoFUSS (docs/PEERS.md section 6): it asks the server whether there is
 * an update, then downloads the filesystem image and then the firmware,
 * verifies each (length, x-MD5, first byte, then the port's own check such
 * as a signature) and commits it only when it is whole, and finally asks
 * the port to reboot. A download cut short is
 * resumed where it stopped (Range + If-Range with the image's ETag), up to
 * NF_CLIENT_RESUME_MAX times per image.
 *
 * The core does no I/O of its own. It is a state machine driven in one of
 * two ways:
 *  - nf_client_handle(): one whole check (and update), blocking, through the
 *    port's nf_port_http_get() (devices, the single-device simulator);
 *  - the step API (nf_client_begin / nf_client_request / nf_client_response_*
 *    / nf_client_next): the caller performs each HTTP GET however it likes,
 *    e.g. thousands at once from one event loop (the fleet simulator).
 * Flash, hashing, time and logging always go through the port (port.h).
 */
#ifndef NOFUSS_CLIENT_H
#define NOFUSS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes: compile-time constants, every input bounded by one of them. */
#define NF_CLIENT_URL_MAX      160 /* server URL, and every URL built from it */
#define NF_CLIENT_FIELD_MAX     32 /* device, version, build (with the NUL) */
#define NF_CLIENT_ANSWER_MAX   256 /* the server's JSON answer, in bytes */
#define NF_CLIENT_HASH_CTX_MAX 128 /* the port's MD5 context */
#define NF_CLIENT_HEADERS_MAX    6 /* request headers of one GET */
#define NF_CLIENT_ETAG_MAX      40 /* an image's strong ETag (with the NUL), for If-Range */
#define NF_CLIENT_RESUME_MAX     3 /* resumed requests per image before it fails */

/* Messages given to the callback, in the order and with the values of the
 * original NoFUSS client (docs/PEERS.md section 6). Do not change. */
enum nf_message {
	NF_MSG_START = 0,
	NF_MSG_UPTODATE = 1,
	NF_MSG_UPDATING = 2,
	NF_MSG_FILESYSTEM_UPDATED = 3,
	NF_MSG_FIRMWARE_UPDATED = 4,
	NF_MSG_RESET = 5,
	NF_MSG_END = 6,
	NF_MSG_NO_RESPONSE_ERROR = 7,
	NF_MSG_PARSE_ERROR = 8,
	NF_MSG_FILESYSTEM_UPDATE_ERROR = 9,
	NF_MSG_FIRMWARE_UPDATE_ERROR = 10,
};

/* Why the last check failed. Numbered; never renumbered. */
enum nf_error {
	NF_OK = 0,
	NF_ERR_TRANSPORT = 1,      /* connection failed or was cut */
	NF_ERR_HTTP_STATUS = 2,    /* the server answered something other than 200 */
	NF_ERR_EMPTY_ANSWER = 3,   /* the check's answer was empty */
	NF_ERR_PARSE = 4,          /* the answer is not a flat JSON object of strings */
	NF_ERR_ANSWER_TOO_BIG = 5, /* the answer is longer than NF_CLIENT_ANSWER_MAX */
	NF_ERR_URL_TOO_LONG = 6,   /* a URL does not fit NF_CLIENT_URL_MAX */
	NF_ERR_NO_LENGTH = 7,      /* an image came without a Content-Length > 0 */
	NF_ERR_TOO_BIG = 8,        /* the flash refused the image's size */
	NF_ERR_SHORT = 9,          /* fewer or more bytes than Content-Length */
	NF_ERR_MD5 = 10,           /* the image does not match the server's x-MD5 */
	NF_ERR_BAD_MD5_HEADER = 11,/* x-MD5 is not 32 hex characters */
	NF_ERR_MAGIC = 12,         /* a firmware image not starting with 0xE9 or 0x1F */
	NF_ERR_FLASH = 13,         /* the flash failed to write or commit */
	NF_ERR_BAD_SETTINGS = 14,  /* server, device or version missing or too long */
	NF_ERR_SIGNATURE = 15,     /* the port refused the whole image (nf_port_flash_verify) */
};

/* The human text of an error; never NULL. */
const char *nf_strerror(enum nf_error err);

/* What the step API wants the caller to do next. */
enum nf_action {
	NF_ACTION_IDLE = 0,   /* nothing: the check is over (or never began) */
	NF_ACTION_HTTP_GET,   /* perform nf_client_request(), feed the response */
	NF_ACTION_REBOOT,     /* updates are committed: restart the device */
};

struct nf_header {
	const char *name;
	const char *value;
};

/* One HTTP GET the core asks for. Pointers stay valid until the next call
 * into the core. */
struct nf_request {
	const char *url;
	const struct nf_header *headers;
	size_t nheaders;
	bool image;           /* an image download (else a check) */
};

struct nf_client;
typedef void (*nf_message_fn)(void *ctx, const struct nf_client *c, enum nf_message msg);

/* The state. Caller-owned, opaque in spirit: use the functions. */
struct nf_client {
	/* The fields used most come first: on the ESP8266 a small offset makes
	 * a shorter instruction (bench/core-size.sh). */
	void *port;                               /* handed to every nf_port_* call */
	nf_message_fn on_message;
	void *message_ctx;
	uint32_t responses;                       /* responses ended, ever */

	/* One check in progress: state to request, zeroed at once by
	 * nf_client_begin (keep them together, in this order). */
	uint8_t state;
	uint8_t error;                            /* enum nf_error */
	bool updated;                             /* something was committed */
	bool flash_open;
	int status;                               /* HTTP status of the response */
	int32_t expected;                         /* the whole image's length */
	int32_t received;                         /* bytes of it written so far */
	bool has_md5;                             /* the server sent x-MD5 */
	uint8_t resumes;                          /* resumed requests of this image */
	uint16_t answer_len;
	const char *new_version, *firmware, *spiffs; /* into answer */
	struct nf_request request;
	struct nf_header headers[NF_CLIENT_HEADERS_MAX];
	uint8_t md5_expected[16];

	/* Settings. */
	bool path_form;                           /* GET server/DEVICE/VERSION */
	char server[NF_CLIENT_URL_MAX];
	char device[NF_CLIENT_FIELD_MAX];
	char version[NF_CLIENT_FIELD_MAX];
	char build[NF_CLIENT_FIELD_MAX];
	char mac[18];

	char etag[NF_CLIENT_ETAG_MAX];            /* the image's strong ETag, or "" */
	char range[18];                           /* "bytes=N-" of a resumed request */
	char url[NF_CLIENT_URL_MAX];
	char answer[NF_CLIENT_ANSWER_MAX + 1];    /* raw, then parsed in place */
	union {
		uint64_t align;
		uint8_t bytes[NF_CLIENT_HASH_CTX_MAX];
	} md5_ctx;
};

/* Resets c and binds it to a port context. Settings are empty. */
void nf_client_init(struct nf_client *c, void *port);
/* Copies value into a setting field of c (dst, cap bytes); returns 0, or -1
 * when it does not fit (the field is then left unchanged). The setters below
 * are the way to call it. */
int nf_client_set_field(char *dst, size_t cap, const char *value);

/* Settings. Each returns 0, or -1 when the value does not fit; the value is
 * copied. (Inline, so a device links only what it uses.) */
static inline int nf_client_set_server(struct nf_client *c, const char *url)
{
	return nf_client_set_field(c->server, sizeof c->server, url);
}
static inline int nf_client_set_device(struct nf_client *c, const char *device)
{
	return nf_client_set_field(c->device, sizeof c->device, device);
}
static inline int nf_client_set_version(struct nf_client *c, const char *version)
{
	return nf_client_set_field(c->version, sizeof c->version, version);
}
static inline int nf_client_set_build(struct nf_client *c, const char *build)
{
	return nf_client_set_field(c->build, sizeof c->build, build);
}
static inline int nf_client_set_mac(struct nf_client *c, const char *mac)
{
	return nf_client_set_field(c->mac, sizeof c->mac, mac);
}
/* Ask with GET server/DEVICE/VERSION (v1.0 servers) instead of headers. */
static inline void nf_client_set_path_form(struct nf_client *c, bool on)
{
	c->path_form = on;
}
static inline void nf_client_on_message(struct nf_client *c, nf_message_fn fn, void *ctx)
{
	c->on_message = fn;
	c->message_ctx = ctx;
}

/* One check, and the whole update when there is one, through the port.
 * Delivers messages as it goes; on success with an update it ends with
 * RESET and nf_port_reboot() (END is then never delivered). */
void nf_client_handle(struct nf_client *c);

/* The step API, for callers that do their own HTTP. nf_client_begin starts
 * a check (delivers START); then, while nf_client_next() says HTTP_GET,
 * perform nf_client_request() and feed its response: response_begin once
 * with the status, Content-Length (-1 when absent), x-MD5 and ETag (each
 * NULL when absent), response_data for each piece of the body, and
 * response_end with ok = false when the transfer failed or was cut. After a
 * cut image download the next request may be the same URL with Range and
 * If-Range: a 206 continues the image, a 200 starts it over. REBOOT means
 * restart. */
void nf_client_begin(struct nf_client *c);
enum nf_action nf_client_next(const struct nf_client *c);
static inline const struct nf_request *nf_client_request(const struct nf_client *c)
{
	return &c->request;
}
void nf_client_response_begin(struct nf_client *c, int status, long content_length,
                              const char *md5, const char *etag);
void nf_client_response_data(struct nf_client *c, const uint8_t *data, size_t len);
void nf_client_response_end(struct nf_client *c, bool ok);

/* The last check's error (NF_OK when it went well). */
static inline enum nf_error nf_client_last_error(const struct nf_client *c)
{
	return (enum nf_error)c->error;
}
/* The version the server offered in the last answer, or "". */
static inline const char *nf_client_offered_version(const struct nf_client *c)
{
	return c->new_version != NULL ? c->new_version : "";
}

#ifdef __cplusplus
}
#endif
#endif
