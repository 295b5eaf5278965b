/*
 * http.c - nf_port_http_get with libcurl's easy interface, speaking like
 * the ESP8266's HTTP client and updater (docs/PEERS.md sections 1, 2 and 5),
 * so nofussd cannot tell the simulator from a device:
 *
 *  - HTTP/1.0, `Connection: close`, `Content-Length: 0` on the GET, no
 *    redirects followed, no proxy, no Accept or Accept-Encoding headers,
 *    the path sent as is (`//firmware/x.bin` stays);
 *  - a check carries the core's headers (User-Agent: NoFussClient and the
 *    X-ESP8266-* set in the header form) plus X-ESP8266-CHIPID and
 *    X-ESP8266-CHIPSIZE, which the NoFUSS client adds from the chip; a
 *    path-form check carries the ESP8266HTTPClient User-Agent;
 *  - an image download carries `User-Agent: ESP8266-http-Update` and the
 *    updater's x-ESP8266-* headers (chip id, MACs, free space, running
 *    sketch's size and MD5, chip size, SDK), then the core's
 *    x-ESP8266-mode and x-ESP8266-version.
 *
 * The core's Range and If-Range headers go out as given when it resumes a
 * cut image download (curl does not interpret them).
 *
 * The response goes into the core as it arrives: response_begin when the
 * head is in (status, Content-Length or -1, x-MD5 and ETag or NULL), response_data
 * per piece, response_end(ok). A check's body is cut after
 * NF_POSIX_CHECK_BODY_MAX bytes (the core then reports it too big); an image
 * download stops as soon as the core aborts the flash (nf_port_flash_abort
 * sets p->cancel), as the ESP updater stops reading on the first error.
 *
 * A request is a transfer (nf_posix_transfer_start / _end around whatever
 * performs the easy handle): nf_port_http_get performs it at once, and the
 * fleet simulator runs thousands through curl's multi interface, with the
 * same headers and the same response handling.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "nofuss/posix.h"

_Static_assert(NF_POSIX_HTTP_ERROR_MAX >= CURL_ERROR_SIZE, "curl's error buffer must fit");

/* A header line "name: value"; an empty value is "name;" (curl would
 * otherwise drop the header, and X-ESP8266-BUILD may be empty). */
static int add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[NF_POSIX_HEADER_MAX];
	struct curl_slist *l;
	int n;

	if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
		return -1;
	if (value[0] == '\0')
		n = snprintf(line, sizeof line, "%s;", name);
	else
		n = snprintf(line, sizeof line, "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;
	l = curl_slist_append(*list, line);
	if (l == NULL)
		return -1;
	*list = l;
	return 0;
}

static int add_number(struct curl_slist **list, const char *name, unsigned long v)
{
	char value[24];

	snprintf(value, sizeof value, "%lu", v);
	return add_header(list, name, value);
}

int nf_posix_updater_headers(struct nf_posix *p, void *list)
{
	struct curl_slist **l = list;
	struct nf_posix_flash_info f;
	int rc = 0;

	p->flash_ops->info(p, &f);
	rc |= add_number(l, "x-ESP8266-Chip-ID", p->chip_id);
	rc |= add_header(l, "x-ESP8266-STA-MAC", p->sta_mac);
	rc |= add_header(l, "x-ESP8266-AP-MAC", p->ap_mac);
	rc |= add_number(l, "x-ESP8266-free-space", f.slot_size);
	rc |= add_number(l, "x-ESP8266-sketch-size", f.sketch_size);
	rc |= add_header(l, "x-ESP8266-sketch-md5", f.sketch_md5);
	rc |= add_number(l, "x-ESP8266-chip-size", f.chip_size);
	rc |= add_header(l, "x-ESP8266-sdk-version", p->sdk_version);
	return rc == 0 ? 0 : -1;
}

/* The request headers, in the order the real clients send them (see
 * tests/fixtures/requests/captured-*.http). */
static int build_headers(struct nf_posix *p, const struct nf_request *req, struct curl_slist **list)
{
	const char *agent = req->image ? "ESP8266-http-Update" : "ESP8266HTTPClient";
	struct nf_posix_flash_info f;
	int rc = 0;

	p->flash_ops->info(p, &f);

	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "User-Agent") == 0)
			agent = req->headers[i].value;
	rc |= add_header(list, "User-Agent", agent);
	rc |= add_header(list, "Connection", "close");
	if (req->image)
		rc |= nf_posix_updater_headers(p, list);
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "User-Agent") != 0)
			rc |= add_header(list, req->headers[i].name, req->headers[i].value);
	if (!req->image && req->nheaders > 0) { /* the header form */
		rc |= add_number(list, "X-ESP8266-CHIPID", p->chip_id);
		rc |= add_number(list, "X-ESP8266-CHIPSIZE", f.chip_size);
	}
	rc |= add_header(list, "Content-Length", "0");
	/* "Name:" with no value removes a header curl would add itself. */
	if (rc == 0 && curl_slist_append(*list, "Accept:") == NULL)
		rc = -1;
	return rc == 0 ? 0 : -1;
}

static void begin(struct nf_posix_transfer *t)
{
	t->begun = true;
	nf_client_response_begin(t->c, t->status, t->length, t->has_md5 ? t->md5 : NULL,
	                         t->has_etag ? t->etag : NULL);
}

/* Trims spaces and tabs at both ends, in place. */
static char *trim(char *s, size_t *len)
{
	while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		(*len)--;
	while (*len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		(*len)--;
	}
	return s;
}

static long parse_length(const char *v, size_t len)
{
	long n = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct nf_posix_transfer *t = userdata;
	size_t len = size * nitems, nlen, vlen;
	char *colon, *value;

	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a status line: a new head */
		char *sp = memchr(buf, ' ', len);
		t->status = 0;
		t->length = -1;
		t->has_md5 = false;
		t->has_etag = false;
		if (sp != NULL && (size_t)(sp - buf) + 4 <= len && isdigit((unsigned char)sp[1]) &&
		    isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
			t->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
		return size * nitems;
	}
	if (len == 0) { /* the end of a head */
		if (t->status >= 200 && !t->begun)
			begin(t);
		return size * nitems;
	}
	colon = memchr(buf, ':', len);
	if (colon == NULL)
		return size * nitems;
	nlen = (size_t)(colon - buf);
	vlen = len - nlen - 1;
	value = trim(colon + 1, &vlen);
	if (nlen == 14 && strncasecmp(buf, "Content-Length", 14) == 0) {
		t->length = parse_length(value, vlen);
	} else if (nlen == 5 && strncasecmp(buf, "x-MD5", 5) == 0) {
		/* Keep up to the limit; a longer value is invalid either way, and the
		 * core refuses anything but 32 hex characters (section 5). */
		if (vlen > NF_POSIX_MD5_HEADER_MAX)
			vlen = NF_POSIX_MD5_HEADER_MAX;
		memcpy(t->md5, value, vlen);
		t->md5[vlen] = '\0';
		t->has_md5 = true;
	} else if (nlen == 4 && strncasecmp(buf, "ETag", 4) == 0) {
		/* For If-Range when the core resumes this image; one that does not
		 * fit the core's buffer is dropped (the core then does not resume). */
		t->has_etag = vlen < sizeof t->etag;
		if (t->has_etag) {
			memcpy(t->etag, value, vlen);
			t->etag[vlen] = '\0';
		}
	}
	return size * nitems;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct nf_posix_transfer *t = userdata;
	size_t len = size * nmemb;

	if (!t->begun)
		begin(t);
	if (t->p->cancel)
		return 0;
	if (!t->image && t->body + len > NF_POSIX_CHECK_BODY_MAX) {
		nf_client_response_data(t->c, (const uint8_t *)data, len); /* marks it too big */
		t->too_big = true;
		return 0;
	}
	t->body += len;
	nf_client_response_data(t->c, (const uint8_t *)data, len);
	return t->p->cancel ? 0 : len;
}

int nf_posix_curl_source(void *curl, const struct nf_posix *p)
{
	char iface[32];

	if (p->source_ip == 0)
		return 0;
	/* "host!": an address to bind to, never an interface name. */
	snprintf(iface, sizeof iface, "host!%u.%u.%u.%u", (unsigned)(p->source_ip >> 24),
	         (unsigned)(p->source_ip >> 16) & 255u, (unsigned)(p->source_ip >> 8) & 255u,
	         (unsigned)p->source_ip & 255u);
	return curl_easy_setopt(curl, CURLOPT_INTERFACE, iface) == CURLE_OK ? 0 : -1;
}

/* Sets every option for one request; 0 or -1. */
static int setup(CURL *curl, const struct nf_request *req, struct nf_posix *p,
                 struct curl_slist *headers, struct nf_posix_transfer *t, char *errbuf)
{
	CURLcode rc = CURLE_OK;

	rc |= curl_easy_setopt(curl, CURLOPT_URL, req->url);
	rc |= curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	rc |= curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_0);
	rc |= curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* section 5: never redirect */
	rc |= curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);     /* "//" as the device sends it */
	rc |= curl_easy_setopt(curl, CURLOPT_PROXY, "");          /* ignore http_proxy */
	rc |= curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
	rc |= curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
	rc |= curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, p->timeout_ms);
	rc |= curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (nf_posix_curl_source(curl, p) != 0)
		rc |= CURLE_BAD_FUNCTION_ARGUMENT;
	/* Sent with every request, checks and images, without a challenge first. */
	rc |= curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	rc |= curl_easy_setopt(curl, CURLOPT_USERPWD, p->credential);
	rc |= curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
	rc |= curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
	rc |= curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
	rc |= curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	rc |= curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	return rc == CURLE_OK ? 0 : -1;
}

int nf_posix_transfer_start(struct nf_posix_transfer *t, void *curl, struct nf_posix *p,
                            const struct nf_request *req, struct nf_client *c)
{
	struct curl_slist *headers = NULL;

	memset(t, 0, sizeof *t);
	t->p = p;
	t->c = c;
	t->image = req->image;
	t->length = -1;
	snprintf(t->url, sizeof t->url, "%s", req->url);
	curl_easy_reset(curl);
	if (build_headers(p, req, &headers) != 0) {
		nf_posix_logf(p, NULL, "http: a request header is too long or holds a line break");
		goto fail;
	}
	if (setup(curl, req, p, headers, t, t->errbuf) != 0) {
		nf_posix_logf(p, NULL, "http: curl refused an option");
		goto fail;
	}
	t->headers = headers;
	p->in_transfer = true;
	p->cancel = false;
	return 0;
fail:
	curl_slist_free_all(headers);
	curl_easy_reset(curl); /* forget the pointers into t */
	nf_client_response_end(c, false);
	return -1;
}

bool nf_posix_transfer_end(struct nf_posix_transfer *t, void *curl, int result)
{
	struct nf_posix *p = t->p;
	CURLcode res = (CURLcode)result;
	bool ok;

	if (res == CURLE_OK && !t->begun) {
		long status = 0;
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		t->status = (int)status;
		begin(t);
	}
	ok = res == CURLE_OK || (res == CURLE_WRITE_ERROR && t->too_big);
	if (!ok && !p->cancel)
		nf_posix_logf(p, NULL, "http: GET %s: %s", t->url,
		              t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(res));
	p->in_transfer = false;
	p->cancel = false;
	curl_slist_free_all(t->headers);
	t->headers = NULL;
	nf_client_response_end(t->c, ok);
	return ok;
}

void nf_port_http_get(void *port, const struct nf_request *req, struct nf_client *c)
{
	struct nf_posix *p = port;
	struct nf_posix_transfer t;
	CURLcode res;

	if (p->curl == NULL)
		p->curl = curl_easy_init();
	if (p->curl == NULL) {
		nf_posix_logf(p, NULL, "http: cannot make a curl handle");
		nf_client_response_end(c, false);
		return;
	}
	if (nf_posix_transfer_start(&t, p->curl, p, req, c) != 0)
		return;
	res = curl_easy_perform(p->curl);
	nf_posix_transfer_end(&t, p->curl, (int)res);
}
