/*
 * fake_port.h - a scripted port for testing the device core (core/).
 *
 * The core talks to the platform only through the nf_port_* functions of
 * include/nofuss/port.h; fake_port.c implements every one of them against a
 * struct fake_port, which the tests hand to nf_client_init() as the `port`
 * pointer. This boundary is the only place in nofuss where fakes are used.
 *
 * HTTP: nf_port_http_get() looks the request's URL up among the scripted
 * responses (fake_port_serve) and feeds it to the core through the step API,
 * optionally in chunks, cut short, failing before the headers, or without
 * ever ending it. A response may carry an ETag and answer a request with
 * `Range: bytes=N-` as a server would: with a 206 of the rest when If-Range
 * matches its ETag (or is absent), else in full (or with a scripted status);
 * and the file may be replaced after its first serving. A URL nothing was
 * scripted for gets an empty 404. Every request is recorded (URL and headers
 * copied) for assertions, and the body bytes delivered are counted.
 *
 * Flash: one committed image per enum nf_image and one scratch area. Writes
 * go to the scratch area only; nf_port_flash_finish() copies it over the
 * committed image of the kind given to begin. Every operation is recorded
 * (nf_port_flash_verify is counted apart, so that the recorded sequences
 * stay begin / write / finish / abort), and faults can be injected (begin
 * refuses, the Nth write fails, verify refuses, finish fails). Calls that
 * break the port contract (a write without a begin, more bytes than begin
 * announced, two begins in a row, a finish without an accepting verify of
 * the whole image first...) are counted in `violations`, which the tests
 * expect to stay 0.
 *
 * MD5 uses OpenSSL's MD5_CTX stored in the context bytes the core owns.
 */
#ifndef NOFUSS_TEST_FAKE_PORT_H
#define NOFUSS_TEST_FAKE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nofuss/client.h"
#include "nofuss/port.h"

#define FAKE_MAX_RESPONSES 8
#define FAKE_MAX_REQUESTS  16
#define FAKE_MAX_OPS       64 /* flash operations recorded (writes merge) */
#define FAKE_MAX_LOG       8
#define FAKE_LINE_MAX      128
#define FAKE_IMAGE_MAX     8192 /* bytes of one image, committed or scratch */

/* One scripted HTTP response. Strings and the body are not copied: they must
 * outlive the nf_port_http_get() calls that serve them. */
struct fake_response {
	const char *url;      /* the exact URL this answers; NULL: free slot */
	bool transport_error; /* response_end(false) before any header (with
	                       * no_end: not even that) */
	int status;
	long content_length; /* what response_begin gets; -1: absent */
	const char *md5;     /* x-MD5, or NULL when absent */
	const uint8_t *body;
	size_t body_len;
	long cut_after;  /* -1: whole body; N: N bytes, then end(false) */
	unsigned cuts;   /* cut_after applies to the first `cuts` servings; 0: all */
	size_t chunk;    /* deliver the body K bytes at a time; 0: one piece */
	bool no_end;     /* return without calling response_end at all */
	const char *etag; /* the ETag header, or NULL when absent */
	/* The answer to `Range: bytes=N-` when If-Range is absent or equals
	 * etag: 0 ignores the range (the whole body, as scripted), 206 sends
	 * bytes N.. with Content-Length = what is left, any other status is
	 * answered with no body. A different If-Range gets the whole body. */
	int range_status;
	/* After its first serving the file is this one (status, length, body,
	 * x-MD5, ETag and range answer); the cut and chunk settings above stay. */
	const struct fake_response *replaced_by;
	unsigned served; /* how many times it was served */
};

struct fake_request {
	char url[NF_CLIENT_URL_MAX];
	bool image;
	size_t nheaders;
	struct {
		char name[FAKE_LINE_MAX];
		char value[FAKE_LINE_MAX];
	} headers[NF_CLIENT_HEADERS_MAX];
};

enum fake_op_kind { FAKE_OP_BEGIN, FAKE_OP_WRITE, FAKE_OP_FINISH, FAKE_OP_ABORT };

struct fake_op {
	enum fake_op_kind kind;
	enum nf_image image; /* of the open session (BEGIN: the one asked) */
	uint32_t size;       /* BEGIN: size asked; WRITE: bytes (consecutive writes merge) */
	int result;          /* what the port returned (0 or -1; ABORT: 0) */
};

struct fake_image {
	uint8_t data[FAKE_IMAGE_MAX];
	size_t len;
	unsigned commits;
};

struct fake_port {
	/* HTTP */
	struct fake_response responses[FAKE_MAX_RESPONSES];
	struct fake_request requests[FAKE_MAX_REQUESTS];
	size_t nrequests; /* may exceed FAKE_MAX_REQUESTS; only the first are kept */
	size_t body_bytes; /* image body bytes fed to the core, over all responses */

	/* Flash */
	struct fake_image committed[2]; /* by enum nf_image */
	uint8_t scratch[FAKE_IMAGE_MAX];
	size_t scratch_len;
	uint32_t scratch_size; /* announced by begin */
	enum nf_image scratch_image;
	bool open;
	struct fake_op ops[FAKE_MAX_OPS];
	size_t nops;
	unsigned begins, writes, finishes, aborts;
	unsigned verifies;     /* nf_port_flash_verify calls */
	size_t verified_len;   /* scratch bytes the last verify saw */
	bool verified;         /* the open session's image was accepted by verify */
	/* Faults to inject */
	uint32_t max_size;   /* begin refuses a larger size (init: FAKE_IMAGE_MAX) */
	unsigned fail_write; /* the Nth write since init fails (1-based); 0: none */
	bool refuse_verify;  /* verify refuses every image (a bad signature) */
	bool fail_finish;

	/* MD5, reboot, log */
	unsigned md5_inits, md5_updates, md5_finals;
	unsigned reboots;
	char log[FAKE_MAX_LOG][FAKE_LINE_MAX];
	size_t nlog;

	unsigned violations; /* port contract broken by the core */
	char last_violation[FAKE_LINE_MAX];
};

/* Resets fp: no responses, empty committed images, no faults. */
void fake_port_init(struct fake_port *fp);

/* Scripts the response for url (replacing any for the same URL): status,
 * Content-Length = len, no x-MD5, the whole body in one piece. Returns the
 * slot so a test can change the other fields; the body and url must outlive
 * the requests. Fails the test when the table is full. */
struct fake_response *fake_port_serve(struct fake_port *fp, const char *url, int status,
                                      const void *body, size_t len);
/* The same with a NUL-terminated body. */
struct fake_response *fake_port_serve_str(struct fake_port *fp, const char *url, int status,
                                          const char *body);

/* Sets the committed image of a kind (what the device runs or mounts now). */
void fake_port_set_committed(struct fake_port *fp, enum nf_image image, const void *data,
                             size_t len);

/* Lower-case hex MD5 of data into out (33 bytes with the NUL). */
void fake_md5_hex(const void *data, size_t len, char out[33]);

/* The value of header `name` (exact case) in request r, or NULL. */
const char *fake_request_header(const struct fake_request *r, const char *name);

#endif
