/*
 * http.c - nf_port_http_get with libcurl's easy interface, speaking like
 * the ESP8266's HTTP client and updater (PROTOCOLS.md sections 1, 2 and 5),
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
 * The response goes into the core as it arrives: response_begin when the
 * head is in (status, Content-Length or -1, x-MD5 or NULL), response_data
 * per piece, response_end(ok). A check's body is cut after
 * NF_POSIX_CHECK_BODY_MAX bytes (the core then reports it too big); an image
 * download stops as soon as the core aborts the flash (nf_port_flash_abort
 * sets p->cancel), as the ESP updater stops reading on the first error.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "nofuss/posix.h"

/* One request in flight. */
struct transfer {
	struct nf_posix *p;
	struct nf_client *c;
	bool image;
	int status;
	long length; /* Content-Length, -1 when absent or unreadable */
	bool has_md5;
	char md5[NF_POSIX_MD5_HEADER_MAX + 1];
	bool begun;   /* nf_client_response_begin called */
	size_t body;  /* body bytes received */
	bool too_big; /* a check's body went over the limit: cut on purpose */
};

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

/* The request headers, in the order the real clients send them (see
 * ../shared/fixtures/requests/captured-*.http). */
static int build_headers(struct nf_posix *p, const struct nf_request *req, struct curl_slist **list)
{
	const struct nf_posix_flash *f = &p->flash;
	const char *agent = req->image ? "ESP8266-http-Update" : "ESP8266HTTPClient";
	int rc = 0;

	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "User-Agent") == 0)
			agent = req->headers[i].value;
	rc |= add_header(list, "User-Agent", agent);
	rc |= add_header(list, "Connection", "close");
	if (req->image) {
		rc |= add_number(list, "x-ESP8266-Chip-ID", p->chip_id);
		rc |= add_header(list, "x-ESP8266-STA-MAC", p->sta_mac);
		rc |= add_header(list, "x-ESP8266-AP-MAC", p->ap_mac);
		rc |= add_number(list, "x-ESP8266-free-space", f->state.geometry.slot_size);
		rc |= add_number(list, "x-ESP8266-sketch-size", f->running_size);
		rc |= add_header(list, "x-ESP8266-sketch-md5", f->running_md5);
		rc |= add_number(list, "x-ESP8266-chip-size", f->state.geometry.chip_size);
		rc |= add_header(list, "x-ESP8266-sdk-version", p->sdk_version);
	}
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "User-Agent") != 0)
			rc |= add_header(list, req->headers[i].name, req->headers[i].value);
	if (!req->image && req->nheaders > 0) { /* the header form */
		rc |= add_number(list, "X-ESP8266-CHIPID", p->chip_id);
		rc |= add_number(list, "X-ESP8266-CHIPSIZE", f->state.geometry.chip_size);
	}
	rc |= add_header(list, "Content-Length", "0");
	/* "Name:" with no value removes a header curl would add itself. */
	if (rc == 0 && curl_slist_append(*list, "Accept:") == NULL)
		rc = -1;
	return rc == 0 ? 0 : -1;
}

static void begin(struct transfer *t)
{
	t->begun = true;
	nf_client_response_begin(t->c, t->status, t->length, t->has_md5 ? t->md5 : NULL);
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
	struct transfer *t = userdata;
	size_t len = size * nitems, nlen, vlen;
	char *colon, *value;

	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a status line: a new head */
		char *sp = memchr(buf, ' ', len);
		t->status = 0;
		t->length = -1;
		t->has_md5 = false;
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
	}
	return size * nitems;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
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

/* Sets every option for one request; 0 or -1. */
static int setup(CURL *curl, const struct nf_request *req, struct nf_posix *p,
                 struct curl_slist *headers, struct transfer *t, char *errbuf)
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

void nf_port_http_get(void *port, const struct nf_request *req, struct nf_client *c)
{
	struct nf_posix *p = port;
	struct transfer t = {.p = p, .c = c, .image = req->image, .length = -1};
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	bool ok = false;
	CURLcode res;

	if (p->curl == NULL)
		p->curl = curl_easy_init();
	if (p->curl == NULL) {
		nf_posix_logf(p, NULL, "http: cannot make a curl handle");
		goto done;
	}
	curl_easy_reset(p->curl);
	if (build_headers(p, req, &headers) != 0) {
		nf_posix_logf(p, NULL, "http: a request header is too long or holds a line break");
		goto done;
	}
	if (setup(p->curl, req, p, headers, &t, errbuf) != 0) {
		nf_posix_logf(p, NULL, "http: curl refused an option");
		goto done;
	}
	p->in_transfer = true;
	p->cancel = false;
	res = curl_easy_perform(p->curl);
	p->in_transfer = false;
	if (res == CURLE_OK && !t.begun) {
		long status = 0;
		curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
		t.status = (int)status;
		begin(&t);
	}
	ok = res == CURLE_OK || (res == CURLE_WRITE_ERROR && t.too_big);
	if (!ok && !p->cancel)
		nf_posix_logf(p, NULL, "http: GET %s: %s", req->url,
		              errbuf[0] != '\0' ? errbuf : curl_easy_strerror(res));
done:
	p->in_transfer = false;
	p->cancel = false;
	curl_slist_free_all(headers);
	nf_client_response_end(c, ok);
}
