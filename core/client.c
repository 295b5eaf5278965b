/*
 * client.c - the NoFUSS client state machine (docs/PEERS.md section 6).
 *
 * One check: START; ask; empty answer -> NO_RESPONSE_ERROR, not an object ->
 * PARSE_ERROR, {} -> UPTODATE; else UPDATING, then the filesystem image (if
 * any), then - only if that did not fail - the firmware (if any); RESET and
 * reboot when something was committed and nothing failed, END otherwise.
 *
 * Never brick: an image is written where nothing runs from and committed by
 * nf_port_flash_finish() only once it is whole and verified - its length is
 * Content-Length, its MD5 is the server's x-MD5 when there is one, a
 * firmware starts with 0xE9 (or 0x1F, gzip), and the port accepts it
 * (nf_port_flash_verify: a signature, checked by the port, never here).
 * Anything else aborts it.
 *
 * Resume: when an image's transfer ends before Content-Length and the 200
 * carried a strong ETag, the flash stays open and the same URL is asked
 * again with `Range: bytes=N-` and `If-Range: <ETag>` (RFC 9110 14.2 and
 * 13.1.5), at most NF_CLIENT_RESUME_MAX times per image. A 206 of exactly
 * the missing length continues the same write and the same MD5; a 200 means
 * the image changed: what was written is aborted and the new one begun;
 * anything else fails the image. Length and MD5 always cover the whole image.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "answer.h"
#include "nofuss/client.h"
#include "nofuss/port.h"

enum state {
	ST_IDLE = 0,
	ST_CHECK,      /* waiting for the check's answer */
	ST_FILESYSTEM, /* downloading the filesystem image */
	ST_FIRMWARE,   /* downloading the firmware image */
	ST_REBOOT,     /* updates committed: the caller reboots */
};

int nf_client_set_field(char *dst, size_t cap, const char *value)
{
	size_t n = value ? strlen(value) : 0;

	if (n >= cap)
		return -1;
	dst[n] = '\0';
	while (n-- > 0) /* a loop: smaller than a call to memcpy on the ESP8266 */
		dst[n] = value[n];
	return 0;
}

void nf_client_init(struct nf_client *c, void *port)
{
	memset(c, 0, sizeof *c);
	c->port = port;
}

/* Inlined on purpose: on the ESP8266 every call from another function is a
 * long call with its own literal, which costs more than this body. */
static inline __attribute__((always_inline)) void message(struct nf_client *c,
                                                          enum nf_message msg)
{
	if (c->on_message != NULL)
		c->on_message(c->message_ctx, c, msg);
}

/* Joins parts[0..n) (n >= 1) with "/" into c->url; fails when it does not
 * fit. Each part takes its characters and one more place: a "/" after it,
 * and after the last part the NUL instead. */
static int build_url(struct nf_client *c, const char *const *parts, int n)
{
	char *w = c->url;

	for (int i = 0; i < n; i++) {
		const char *s = parts[i];
		do {
			if (w == c->url + sizeof c->url)
				return -1;
			*w++ = *s != '\0' ? *s : '/';
		} while (*s++ != '\0');
	}
	w[-1] = '\0'; /* the last "/" */
	return 0;
}

/* The image of the current state: the filesystem's or the firmware's path
 * from the answer, or NULL. */
static const char *image_path(const struct nf_client *c)
{
	return c->state == ST_FIRMWARE ? c->firmware : c->spiffs;
}

static void request_image(struct nf_client *c);

/* Every step of a check ends here: records err, delivers msg, then asks for
 * the next image the answer names (the filesystem's, then the firmware's)
 * or, when there is none or err is set, ends the check: RESET when
 * something was committed and nothing failed, END otherwise. */
static void advance(struct nf_client *c, enum nf_error err, enum nf_message msg)
{
	c->error = (uint8_t)err;
	message(c, msg);
	/* The states are in the order of a check: CHECK, FILESYSTEM, FIRMWARE. */
	while (err == NF_OK && ++c->state <= ST_FIRMWARE) {
		const char *path = image_path(c);
		if (path != NULL && path[0] != '\0') {
			request_image(c);
			return;
		}
	}
	bool reboot = err == NF_OK && c->updated;
	c->state = reboot ? ST_REBOOT : ST_IDLE;
	message(c, reboot ? NF_MSG_RESET : NF_MSG_END);
}

/* How an image ended: FILESYSTEM_ or FIRMWARE_UPDATED, or _UPDATE_ERROR.
 * The four are 3/4 and 9/10, the states FILESYSTEM/FIRMWARE 2/3: so the
 * message is the state plus 1, or plus 7. Do not change either. */
static void image_done(struct nf_client *c, enum nf_error err)
{
	advance(c, err, (enum nf_message)(c->state + (err != NF_OK ? 7 : 1)));
}

/* Asks for the image of the current state, from its start. */
static void request_image(struct nf_client *c)
{
	const char *path = image_path(c);
	const char *parts[] = {c->server, path};
	bool firmware = c->state == ST_FIRMWARE;

	/* A path starting with "http" is a URL; anything else is relative to
	 * the server, joined with "/" as the original did (docs/PEERS.md section 6). */
	if (strncmp(path, "http", 4) == 0 ? build_url(c, parts + 1, 1) : build_url(c, parts, 2)) {
		image_done(c, NF_ERR_URL_TOO_LONG);
		return;
	}
	c->resumes = 0;
	c->request.image = true;
	c->headers[0].name = "x-ESP8266-mode";
	c->headers[0].value = firmware ? "sketch" : "spiffs";
	c->headers[1].name = "x-ESP8266-version";
	c->headers[1].value = c->version;
	c->request.nheaders = 1u + firmware; /* the version with the firmware only */
}

void nf_client_begin(struct nf_client *c)
{
	if (c->flash_open) /* a step-API caller abandoned a download */
		nf_port_flash_abort(c->port);
	/* One check's state, state to request (client.h), starts at zero. */
	memset(&c->state, 0, offsetof(struct nf_client, headers) - offsetof(struct nf_client, state));
	c->request.url = c->url;
	c->request.headers = c->headers;
	message(c, NF_MSG_START);

	enum nf_error err = NF_OK;
	if (c->server[0] == '\0' || c->device[0] == '\0' || c->version[0] == '\0') {
		err = NF_ERR_BAD_SETTINGS;
	} else {
		const char *parts[] = {c->server, c->device, c->version};
		if (build_url(c, parts, c->path_form ? 3 : 1) != 0)
			err = NF_ERR_URL_TOO_LONG;
	}
	if (err != NF_OK) {
		advance(c, err, NF_MSG_NO_RESPONSE_ERROR);
		return;
	}
	if (!c->path_form) { /* the header form (docs/PEERS.md section 2) */
		/* Stored one by one: no table of pointers in .rodata (RAM on the
		 * ESP8266 Arduino core) and no loop. */
		c->headers[0].name = "User-Agent";
		c->headers[0].value = "NoFussClient";
		c->headers[1].name = "X-ESP8266-MAC";
		c->headers[1].value = c->mac;
		c->headers[2].name = "X-ESP8266-DEVICE";
		c->headers[2].value = c->device;
		c->headers[3].name = "X-ESP8266-VERSION";
		c->headers[3].value = c->version;
		c->headers[4].name = "X-ESP8266-BUILD";
		c->headers[4].value = c->build;
		c->request.nheaders = 5;
	}
	c->state = ST_CHECK;
}

/* A check is under way: the caller performs a request. */
static bool busy(const struct nf_client *c)
{
	return c->state != ST_IDLE && c->state != ST_REBOOT;
}

enum nf_action nf_client_next(const struct nf_client *c)
{
	if (c->state == ST_REBOOT)
		return NF_ACTION_REBOOT;
	return busy(c) ? NF_ACTION_HTTP_GET : NF_ACTION_IDLE;
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20; /* lower case */
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Records the error of an image download and forgets what was written.
 * c->error is still NF_OK here: response_begin returns early once it is
 * set, and response_data works only while the flash is open, which an
 * error always closes. */
static void image_failed(struct nf_client *c, enum nf_error err)
{
	c->error = (uint8_t)err;
	if (c->flash_open)
		nf_port_flash_abort(c->port);
	c->flash_open = false;
}

void nf_client_response_begin(struct nf_client *c, int status, long content_length, const char *md5,
                              const char *etag)
{
	c->status = status;
	c->answer_len = 0;
	if ((c->state != ST_FILESYSTEM && c->state != ST_FIRMWARE) || c->error != NF_OK)
		return;

	/* A resumed image: 206 with exactly the missing bytes continues it. */
	if (c->flash_open && status == 206) {
		if (content_length != c->expected - c->received)
			image_failed(c, NF_ERR_SHORT);
		return;
	}
	/* An image: 200 with a length, as the ESP updater demands (section 5). */
	if (status != 200) {
		image_failed(c, NF_ERR_HTTP_STATUS);
		return;
	}
	if (c->flash_open) { /* a 200 to a resumed request: the image changed, start over */
		nf_port_flash_abort(c->port);
		c->flash_open = false;
	}
	c->received = 0;
	c->has_md5 = false;
	c->etag[0] = '\0';
	if (content_length <= 0 || content_length > INT32_MAX) {
		image_failed(c, NF_ERR_NO_LENGTH);
		return;
	}
	if (etag != NULL && etag[0] == '"') /* strong only: If-Range needs one */
		nf_client_set_field(c->etag, sizeof c->etag, etag);
	if (md5 != NULL) { /* 32 hex characters, or the ESP updater fails too */
		for (int i = 0; i < 32; i++) {
			int v = hex_value(md5[i]); /* the NUL of a shorter one is -1 */
			if (v < 0) {
				image_failed(c, NF_ERR_BAD_MD5_HEADER);
				return;
			}
			c->md5_expected[i / 2] = (uint8_t)(c->md5_expected[i / 2] << 4 | v);
		}
		if (md5[32] != '\0') {
			image_failed(c, NF_ERR_BAD_MD5_HEADER);
			return;
		}
		c->has_md5 = true;
	}
	c->expected = (int32_t)content_length;
	if (nf_port_flash_begin(c->port,
	                        c->state == ST_FIRMWARE ? NF_IMAGE_FIRMWARE : NF_IMAGE_FILESYSTEM,
	                        (uint32_t)content_length) != 0) {
		image_failed(c, NF_ERR_TOO_BIG);
		return;
	}
	c->flash_open = true;
	nf_port_md5_init(c->port, c->md5_ctx.bytes);
}

void nf_client_response_data(struct nf_client *c, const uint8_t *data, size_t len)
{
	if (len == 0)
		return;
	if (c->state == ST_CHECK) {
		if (c->answer_len + len > NF_CLIENT_ANSWER_MAX) {
			c->answer_len = NF_CLIENT_ANSWER_MAX + 1; /* marks "too big" */
			return;
		}
		memcpy(c->answer + c->answer_len, data, len);
		c->answer_len = (uint16_t)(c->answer_len + len);
		return;
	}
	if (!c->flash_open)
		return;
	if (c->received == 0 && c->state == ST_FIRMWARE && data[0] != 0xE9 && data[0] != 0x1F) {
		image_failed(c, NF_ERR_MAGIC);
		return;
	}
	if ((size_t)(c->expected - c->received) < len) {
		image_failed(c, NF_ERR_SHORT);
		return;
	} /* more than announced */
	if (nf_port_flash_write(c->port, data, len) != 0) {
		image_failed(c, NF_ERR_FLASH);
		return;
	}
	nf_port_md5_update(c->port, c->md5_ctx.bytes, data, len);
	c->received += (int32_t)len;
}

static void end_check(struct nf_client *c, bool ok)
{
	struct nf_answer a;
	enum nf_error err = !ok                                    ? NF_ERR_TRANSPORT
	                    : c->status != 200                     ? NF_ERR_HTTP_STATUS
	                    : c->answer_len > NF_CLIENT_ANSWER_MAX ? NF_ERR_ANSWER_TOO_BIG
	                    : c->answer_len == 0                   ? NF_ERR_EMPTY_ANSWER
	                    : nf_answer_parse(c->answer, c->answer_len, &a) != 0 ? NF_ERR_PARSE
	                                                                        : NF_OK;

	if (err != NF_OK) {
		/* docs/PEERS.md section 6: nothing usable is NO_RESPONSE_ERROR, a bad
		 * answer PARSE_ERROR. */
		advance(c, err,
		        err == NF_ERR_PARSE || err == NF_ERR_ANSWER_TOO_BIG ? NF_MSG_PARSE_ERROR
		                                                            : NF_MSG_NO_RESPONSE_ERROR);
		return;
	}
	/* {} is UPTODATE; the images stay NULL then, so advance() ends. */
	if (a.keys != 0) {
		c->new_version = a.field[NF_ANSWER_VERSION];
		c->firmware = a.field[NF_ANSWER_FIRMWARE];
		c->spiffs = a.field[NF_ANSWER_SPIFFS];
	}
	advance(c, NF_OK, a.keys == 0 ? NF_MSG_UPTODATE : NF_MSG_UPDATING);
}

/* Asks for the rest of a cut image: the same URL and headers, then Range
 * "bytes=N-" (N written backwards from the end of c->range) and If-Range. */
static void resume_image(struct nf_client *c)
{
	char *p = c->range + sizeof c->range - 1;
	uint32_t n = (uint32_t)c->received;

	c->resumes++;
	*p = '\0';
	*--p = '-';
	do {
		uint32_t q = n / 10;
		*--p = (char)('0' + (n - q * 10));
		n = q;
	} while (n != 0);
	p -= 6;
	memcpy(p, "bytes=", 6);
	size_t i = 1u + (c->state == ST_FIRMWARE); /* after x-ESP8266-mode (and -version) */
	c->headers[i].name = "Range";
	c->headers[i].value = p;
	c->headers[i + 1].name = "If-Range";
	c->headers[i + 1].value = c->etag;
	c->request.nheaders = i + 2;
}

/* Verifies a finished download and commits it; or, when it stopped short,
 * asks for the rest. */
static void end_image(struct nf_client *c, bool ok)
{
	uint8_t digest[16];
	enum nf_error err = (enum nf_error)c->error;

	if (!c->flash_open) {
		if (err == NF_OK)
			err = NF_ERR_TRANSPORT; /* the body never began */
	} else if (c->received < c->expected && c->etag[0] != '\0' &&
	           c->resumes < NF_CLIENT_RESUME_MAX) {
		resume_image(c);
		return;
	} else {
		nf_port_md5_final(c->port, c->md5_ctx.bytes, digest);
		err = !ok                                                      ? NF_ERR_TRANSPORT
		      : c->received != c->expected                             ? NF_ERR_SHORT
		      : c->has_md5 && memcmp(digest, c->md5_expected, 16) != 0 ? NF_ERR_MD5
		      : nf_port_flash_verify(c->port) != 0 ? NF_ERR_SIGNATURE /* the port's own check */
		                                           : NF_OK;
		if (err != NF_OK)
			nf_port_flash_abort(c->port);
		else if (nf_port_flash_finish(c->port) != 0)
			err = NF_ERR_FLASH;
		c->flash_open = false;
		c->updated |= err == NF_OK;
	}
	image_done(c, err);
}

void nf_client_response_end(struct nf_client *c, bool ok)
{
	c->responses++;
	if (c->state == ST_CHECK)
		end_check(c, ok);
	else if (busy(c))
		end_image(c, ok);
}

void nf_client_handle(struct nf_client *c)
{
	nf_client_begin(c);
	while (busy(c)) {
		uint32_t before = c->responses;
		nf_port_http_get(c->port, &c->request, c);
		if (c->responses == before) /* a port that forgot to end the response */
			nf_client_response_end(c, false);
	}
	if (c->state == ST_REBOOT) {
		c->state = ST_IDLE;
		nf_port_reboot(c->port);
	}
}
