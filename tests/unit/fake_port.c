/*
 * fake_port.c - the scripted port the core's unit tests link against (see
 * fake_port.h). Every nf_port_* function of include/nofuss/port.h is here;
 * the `port` pointer is always a struct fake_port.
 *
 * MD5 is OpenSSL's: the low-level MD5_CTX lives in the context bytes the
 * core hands over (checked to fit NF_CLIENT_HASH_CTX_MAX at compile time).
 * OpenSSL 3 marks MD5_Init() and friends deprecated; they are what fits in
 * a caller-owned buffer without a heap handle, so the warning is silenced
 * for this file only.
 */
#include <assert.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <openssl/md5.h>

#include "common.h"
#include "fake_port.h"

static_assert(sizeof(MD5_CTX) <= NF_CLIENT_HASH_CTX_MAX,
              "MD5_CTX must fit the core's hash context");
static_assert(alignof(MD5_CTX) <= 8, "the core's hash context is 8-byte aligned");

static struct fake_port *fake(void *port)
{
	if (port == NULL) {
		fprintf(stderr, "fake_port: NULL port pointer\n");
		abort();
	}
	return port;
}

static void violation(struct fake_port *fp, const char *what)
{
	fp->violations++;
	snprintf(fp->last_violation, sizeof fp->last_violation, "%s", what);
	fprintf(stderr, "fake_port: contract violation: %s\n", what);
}

static void record_op(struct fake_port *fp, enum fake_op_kind kind, enum nf_image image,
                      uint32_t size, int result)
{
	struct fake_op *last = fp->nops > 0 ? &fp->ops[fp->nops - 1] : NULL;

	if (kind == FAKE_OP_WRITE && result == 0 && last != NULL && last->kind == FAKE_OP_WRITE &&
	    last->result == 0) {
		last->size += size; /* consecutive good writes merge: chunking does not matter */
		return;
	}
	if (fp->nops == FAKE_MAX_OPS) {
		violation(fp, "too many flash operations");
		return;
	}
	fp->ops[fp->nops++] = (struct fake_op){kind, image, size, result};
}

void fake_port_init(struct fake_port *fp)
{
	memset(fp, 0, sizeof *fp);
	fp->max_size = FAKE_IMAGE_MAX;
}

struct fake_response *fake_port_serve(struct fake_port *fp, const char *url, int status,
                                      const void *body, size_t len)
{
	struct fake_response *slot = NULL;

	for (size_t i = 0; i < FAKE_MAX_RESPONSES && slot == NULL; i++)
		if (fp->responses[i].url != NULL && strcmp(fp->responses[i].url, url) == 0)
			slot = &fp->responses[i];
	for (size_t i = 0; i < FAKE_MAX_RESPONSES && slot == NULL; i++)
		if (fp->responses[i].url == NULL)
			slot = &fp->responses[i];
	if (slot == NULL) {
		fprintf(stderr, "fake_port: more than %d scripted responses\n", FAKE_MAX_RESPONSES);
		abort();
	}
	*slot = (struct fake_response){
	    .url = url,
	    .status = status,
	    .content_length = (long)len,
	    .body = body,
	    .body_len = len,
	    .cut_after = -1,
	};
	return slot;
}

struct fake_response *fake_port_serve_str(struct fake_port *fp, const char *url, int status,
                                          const char *body)
{
	return fake_port_serve(fp, url, status, body, strlen(body));
}

void fake_port_set_committed(struct fake_port *fp, enum nf_image image, const void *data,
                             size_t len)
{
	if (len > FAKE_IMAGE_MAX)
		abort();
	memcpy(fp->committed[image].data, data, len);
	fp->committed[image].len = len;
}

void fake_md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char digest[MD5_DIGEST_LENGTH];
	MD5_CTX ctx;

	MD5_Init(&ctx);
	MD5_Update(&ctx, data, len);
	MD5_Final(digest, &ctx);
	nf_hex_encode(digest, MD5_DIGEST_LENGTH, out);
}

const char *fake_request_header(const struct fake_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void copy_text(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "(null)");
}

static void record_request(struct fake_port *fp, const struct nf_request *req)
{
	struct fake_request *r;

	if (fp->nrequests++ >= FAKE_MAX_REQUESTS)
		return;
	r = &fp->requests[fp->nrequests - 1];
	if (req->url == NULL || strlen(req->url) >= sizeof r->url)
		violation(fp, "request URL NULL or longer than NF_CLIENT_URL_MAX");
	copy_text(r->url, sizeof r->url, req->url);
	r->image = req->image;
	r->nheaders = req->nheaders;
	if (req->nheaders > NF_CLIENT_HEADERS_MAX) {
		violation(fp, "more request headers than NF_CLIENT_HEADERS_MAX");
		r->nheaders = NF_CLIENT_HEADERS_MAX;
	}
	for (size_t i = 0; i < r->nheaders; i++) {
		copy_text(r->headers[i].name, sizeof r->headers[i].name, req->headers[i].name);
		copy_text(r->headers[i].value, sizeof r->headers[i].value, req->headers[i].value);
	}
}

/* The response slot scripted for url, or NULL. */
static struct fake_response *find_response(struct fake_port *fp, const char *url)
{
	for (size_t i = 0; i < FAKE_MAX_RESPONSES; i++)
		if (fp->responses[i].url != NULL && url != NULL &&
		    strcmp(fp->responses[i].url, url) == 0)
			return &fp->responses[i];
	return NULL;
}

/* The offset N of "bytes=N-" in req's Range header, or -1 when there is none
 * (a malformed one is a contract violation). */
static long range_start(struct fake_port *fp, const struct nf_request *req)
{
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *v = req->headers[i].value;
		char *end;
		long n;
		if (strcmp(req->headers[i].name, "Range") != 0)
			continue;
		if (strncmp(v, "bytes=", 6) != 0 || v[6] < '0' || v[6] > '9') {
			violation(fp, "malformed Range header");
			return -1;
		}
		n = strtol(v + 6, &end, 10);
		if (strcmp(end, "-") != 0)
			violation(fp, "Range header not of the form bytes=N-");
		return n;
	}
	return -1;
}

static const char *request_header(const struct nf_request *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

void nf_port_http_get(void *port, const struct nf_request *req, struct nf_client *c)
{
	static const struct fake_response not_found = {.status = 404, .cut_after = -1};
	struct fake_port *fp = fake(port);
	struct fake_response *slot;
	const struct fake_response *rsp = &not_found, *file;
	const char *if_range;
	long first = range_start(fp, req), length, cut = -1;
	int status;
	size_t len, off = 0;
	bool cut_short = false;

	record_request(fp, req);
	slot = find_response(fp, req->url);
	if (slot != NULL) {
		slot->served++;
		rsp = slot;
		if (slot->cut_after >= 0 && (slot->cuts == 0 || slot->served <= slot->cuts))
			cut = slot->cut_after;
	}
	if (rsp->transport_error) {
		if (!rsp->no_end)
			nf_client_response_end(c, false);
		return;
	}
	file = rsp->replaced_by != NULL && rsp->served > 1 ? rsp->replaced_by : rsp;
	status = file->status;
	length = file->content_length;
	len = file->body_len;
	if_range = request_header(req, "If-Range");
	if (first >= 0 && file->range_status != 0 &&
	    (if_range == NULL || (file->etag != NULL && strcmp(if_range, file->etag) == 0))) {
		status = file->range_status;
		if (status == 206 && (size_t)first <= file->body_len) {
			off = (size_t)first;
			length = (long)(file->body_len - off);
		} else {
			len = 0;
			length = 0;
		}
	}
	nf_client_response_begin(c, status, length, file->md5, file->etag);
	if (cut >= 0 && (size_t)cut < len - off) {
		len = off + (size_t)cut;
		cut_short = true;
	}
	while (off < len) {
		size_t n = rsp->chunk > 0 && rsp->chunk < len - off ? rsp->chunk : len - off;
		nf_client_response_data(c, file->body + off, n);
		fp->body_bytes += req->image ? n : 0;
		off += n;
	}
	if (rsp->no_end)
		return;
	nf_client_response_end(c, !cut_short);
}

int nf_port_flash_begin(void *port, enum nf_image image, uint32_t size)
{
	struct fake_port *fp = fake(port);
	int result = 0;

	fp->begins++;
	if (fp->open)
		violation(fp, "flash_begin while a write is open");
	if (image != NF_IMAGE_FIRMWARE && image != NF_IMAGE_FILESYSTEM)
		violation(fp, "flash_begin with an unknown image kind");
	if (size == 0 || size > fp->max_size || size > FAKE_IMAGE_MAX) {
		result = -1;
	} else {
		fp->open = true;
		fp->verified = false;
		fp->scratch_image = image;
		fp->scratch_size = size;
		fp->scratch_len = 0;
	}
	record_op(fp, FAKE_OP_BEGIN, image, size, result);
	return result;
}

int nf_port_flash_write(void *port, const uint8_t *data, size_t len)
{
	struct fake_port *fp = fake(port);
	int result = 0;

	fp->writes++;
	if (!fp->open) {
		violation(fp, "flash_write without flash_begin");
		result = -1;
	} else if (len > fp->scratch_size - fp->scratch_len) {
		violation(fp, "flash_write past the size given to flash_begin");
		result = -1;
	} else if (fp->fail_write != 0 && fp->writes == fp->fail_write) {
		result = -1;
	} else {
		memcpy(fp->scratch + fp->scratch_len, data, len);
		fp->scratch_len += len;
	}
	record_op(fp, FAKE_OP_WRITE, fp->scratch_image, (uint32_t)len, result);
	return result;
}

int nf_port_flash_verify(void *port)
{
	struct fake_port *fp = fake(port);

	fp->verifies++;
	fp->verified_len = fp->scratch_len;
	if (!fp->open) {
		violation(fp, "flash_verify without flash_begin");
		return -1;
	}
	if (fp->scratch_len != fp->scratch_size)
		violation(fp, "flash_verify before the announced size was written");
	if (fp->verified)
		violation(fp, "flash_verify twice for one image");
	fp->verified = !fp->refuse_verify;
	return fp->refuse_verify ? -1 : 0;
}

int nf_port_flash_finish(void *port)
{
	struct fake_port *fp = fake(port);
	int result = 0;

	fp->finishes++;
	if (!fp->open) {
		violation(fp, "flash_finish without flash_begin");
		result = -1;
	} else if (fp->scratch_len != fp->scratch_size) {
		violation(fp, "flash_finish before the announced size was written");
		result = -1;
	} else if (!fp->verified) {
		violation(fp, "flash_finish without an accepting flash_verify");
		result = -1;
	} else if (fp->fail_finish) {
		result = -1; /* power cut or verify failure: nothing committed */
	} else {
		struct fake_image *img = &fp->committed[fp->scratch_image];
		memcpy(img->data, fp->scratch, fp->scratch_len);
		img->len = fp->scratch_len;
		img->commits++;
	}
	record_op(fp, FAKE_OP_FINISH, fp->scratch_image, (uint32_t)fp->scratch_len, result);
	fp->open = false;
	fp->verified = false;
	return result;
}

void nf_port_flash_abort(void *port)
{
	struct fake_port *fp = fake(port);

	fp->aborts++;
	if (!fp->open)
		violation(fp, "flash_abort without flash_begin");
	record_op(fp, FAKE_OP_ABORT, fp->scratch_image, (uint32_t)fp->scratch_len, 0);
	fp->open = false;
	fp->verified = false;
	fp->scratch_len = 0;
}

void nf_port_md5_init(void *port, void *ctx)
{
	struct fake_port *fp = fake(port);

	fp->md5_inits++;
	if ((uintptr_t)ctx % 8 != 0)
		violation(fp, "MD5 context not 8-byte aligned");
	MD5_Init(ctx);
}

void nf_port_md5_update(void *port, void *ctx, const uint8_t *data, size_t len)
{
	fake(port)->md5_updates++;
	MD5_Update(ctx, data, len);
}

void nf_port_md5_final(void *port, void *ctx, uint8_t digest[16])
{
	fake(port)->md5_finals++;
	MD5_Final(digest, ctx);
}

void nf_port_reboot(void *port)
{
	fake(port)->reboots++;
}

void nf_port_log(void *port, const char *line)
{
	struct fake_port *fp = fake(port);

	if (fp->nlog < FAKE_MAX_LOG)
		copy_text(fp->log[fp->nlog], sizeof fp->log[fp->nlog], line);
	fp->nlog++;
}
