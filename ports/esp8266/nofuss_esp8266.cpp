/*
 * nofuss_esp8266.cpp - the port contract (include/nofuss/port.h) on the
 * ESP8266 with the Arduino core's classes.
 *
 * HTTP: ESP8266HTTPClient over a WiFiClient, HTTP/1.0, a new connection per
 * request (`Connection: close`), no redirects followed. The core's headers go
 * out as given, except User-Agent, which HTTPClient only takes through
 * setUserAgent(). Like the original NoFUSS client (docs/PEERS.md section 6),
 * a header-form check adds X-ESP8266-CHIPID and X-ESP8266-CHIPSIZE, and an
 * image download carries what the core's HTTP updater sends (docs/PEERS.md
 * section 5): User-Agent ESP8266-http-Update and the x-ESP8266-* set (chip
 * id, MACs, free space, the running sketch's size and MD5, chip size, SDK),
 * then the core's own (mode, version, and Range/If-Range when it resumes).
 * x-MD5 and ETag are collected; the body goes to the core in pieces of at
 * most NF_ESP8266_CHUNK bytes as it arrives, a check's body no further than
 * the core can hold, an image's no further once the core aborted it.
 *
 * Flash: the Updater. Firmware with U_FLASH, staged in the free sketch space
 * and copied over the running sketch by eboot at the next boot; filesystem
 * with U_FS, written in place (or staged, when the sketch is built with
 * ATOMIC_FS_UPDATE). The Updater checks the size against the space first,
 * before it erases anything. Update.end() commits: it checks the firmware's
 * header and, in a sketch built with a signing key (ARDUINO_SIGNING), the
 * image's signature; only then does it leave the copy command for eboot.
 * The core has checked length and x-MD5 before it calls finish.
 *
 * No heap of its own and no String: the Strings are the ones HTTPClient's
 * API takes and keeps itself.
 */
#include <Arduino.h>
#include <ESP8266HTTPClient.h>
#include <ESP8266WiFi.h>
#include <Updater.h>
#include <md5.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nofuss/port.h"
#include "nofuss_esp8266.h"

static_assert(sizeof(md5_context_t) <= NF_CLIENT_HASH_CTX_MAX, "md5_context_t must fit the core's");
static_assert(alignof(md5_context_t) <= 8, "the core's hash context is 8-byte aligned");

void nf_esp8266_init(struct nf_esp8266 *p)
{
	memset(p, 0, sizeof *p);
	p->timeout_ms = NF_ESP8266_TIMEOUT_MS;
}

static struct nf_esp8266 *esp(void *port)
{
	return static_cast<struct nf_esp8266 *>(port);
}

/* ---- HTTP -------------------------------------------------------------- */

/* The running sketch's MD5 in lower-case hex, as the HTTP updater sends it
 * (ESP.getSketchMD5() without its String); computed once per boot. */
static const char *sketch_md5(struct nf_esp8266 *p)
{
	md5_context_t ctx;
	uint8_t digest[16];
	uint32_t left = ESP.getSketchSize(), offset = 0;

	if (p->sketch_md5[0] != '\0')
		return p->sketch_md5;
	MD5Init(&ctx);
	while (left > 0) {
		uint32_t n = left < sizeof p->buf ? left : sizeof p->buf;
		if (!ESP.flashRead(offset, reinterpret_cast<uint32_t *>(p->buf), (n + 3) & ~3u))
			return ""; /* as the core's: an empty value */
		MD5Update(&ctx, p->buf, (uint16_t)n);
		offset += n;
		left -= n;
	}
	MD5Final(digest, &ctx);
	for (int i = 0; i < 16; i++)
		snprintf(p->sketch_md5 + 2 * i, 3, "%02x", digest[i]);
	return p->sketch_md5;
}

static void add_number(HTTPClient &http, const char *name, uint32_t v)
{
	char text[12];

	snprintf(text, sizeof text, "%lu", (unsigned long)v);
	http.addHeader(name, text);
}

void nf_esp8266_format_mac(char out[18], const uint8_t mac[6])
{
	snprintf(out, 18, "%02X:%02X:%02X:%02X:%02X:%02X", mac[0], mac[1], mac[2], mac[3], mac[4],
	         mac[5]);
}

static void add_mac(HTTPClient &http, const char *name, const uint8_t mac[6])
{
	char text[18];

	nf_esp8266_format_mac(text, mac);
	http.addHeader(name, text);
}

/* The updater's own headers of an image download (docs/PEERS.md section 5). */
static void add_updater_headers(struct nf_esp8266 *p, HTTPClient &http)
{
	uint8_t mac[6];

	add_number(http, "x-ESP8266-Chip-ID", ESP.getChipId());
	add_mac(http, "x-ESP8266-STA-MAC", WiFi.macAddress(mac));
	add_mac(http, "x-ESP8266-AP-MAC", WiFi.softAPmacAddress(mac));
	add_number(http, "x-ESP8266-free-space", ESP.getFreeSketchSpace());
	add_number(http, "x-ESP8266-sketch-size", ESP.getSketchSize());
	http.addHeader("x-ESP8266-sketch-md5", sketch_md5(p));
	add_number(http, "x-ESP8266-chip-size", ESP.getFlashChipRealSize());
	http.addHeader("x-ESP8266-sdk-version", ESP.getSdkVersion());
}

static void add_headers(struct nf_esp8266 *p, HTTPClient &http, const struct nf_request *req)
{
	const char *agent = req->image ? "ESP8266-http-Update" : "ESP8266HTTPClient";

	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "User-Agent") == 0)
			agent = req->headers[i].value;
	http.setUserAgent(agent); /* addHeader() refuses User-Agent */
	if (req->image)
		add_updater_headers(p, http);
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "User-Agent") != 0)
			http.addHeader(req->headers[i].name, req->headers[i].value);
	if (!req->image && req->nheaders > 0) { /* the header form (section 2) */
		add_number(http, "X-ESP8266-CHIPID", ESP.getChipId());
		add_number(http, "X-ESP8266-CHIPSIZE", ESP.getFlashChipRealSize());
	}
}

/* A collected header's value, or NULL when it was absent (or empty). The
 * string lives in http until http.end(). */
static const char *collected(HTTPClient &http, const char *name)
{
	return http.hasHeader(name) ? http.header(name).c_str() : NULL;
}

/* Feeds the body to the core in bounded pieces. Returns whether it came
 * whole: all of Content-Length, or up to a clean close when there was none;
 * a check's body is read no further than the core can hold (it marks the
 * answer too big itself). */
static bool stream_body(struct nf_esp8266 *p, HTTPClient &http, const struct nf_request *req,
                        struct nf_client *c)
{
	WiFiClient *s = http.getStreamPtr();
	long left = http.getSize(); /* -1: unknown */
	size_t fed = 0;
	uint32_t last = millis();

	while (left != 0 && s != NULL && !p->cancel) {
		size_t n = s->available();
		if (n == 0) {
			if (!s->connected())
				return left < 0;
			if (millis() - last > p->timeout_ms)
				return false;
			delay(1);
			continue;
		}
		if (n > sizeof p->buf)
			n = sizeof p->buf;
		if (left > 0 && n > (size_t)left)
			n = (size_t)left;
		int got = s->read(p->buf, n);
		if (got <= 0)
			continue;
		last = millis();
		nf_client_response_data(c, p->buf, (size_t)got);
		fed += (size_t)got;
		if (left > 0)
			left -= got;
		if (!req->image && fed > NF_CLIENT_ANSWER_MAX)
			return true;
	}
	return left == 0;
}

void nf_port_http_get(void *port, const struct nf_request *req, struct nf_client *c)
{
	static const char *keys[] = {"x-MD5", "ETag"};
	struct nf_esp8266 *p = esp(port);
	WiFiClient tcp;
	HTTPClient http;
	bool ok = false;

	if (!http.begin(tcp, req->url)) {
		nf_client_response_end(c, false);
		return;
	}
	http.useHTTP10(true);
	http.setReuse(false);
	http.setTimeout(p->timeout_ms);
	http.setFollowRedirects(HTTPC_DISABLE_FOLLOW_REDIRECTS);
	add_headers(p, http, req);
	http.collectHeaders(keys, 2);
	int status = http.GET();
	if (status > 0) {
		/* In the transfer from here: a refusal in response_begin (the image
		 * does not fit, a resumed one is answered 404...) stops the body. */
		p->in_transfer = true;
		p->cancel = false;
		nf_client_response_begin(c, status, http.getSize(), collected(http, "x-MD5"),
		                         collected(http, "ETag"));
		ok = stream_body(p, http, req, c);
		p->in_transfer = false;
	}
	http.end();
	nf_client_response_end(c, ok);
}

/* ---- flash -------------------------------------------------------------- */

int nf_port_flash_begin(void *port, enum nf_image image, uint32_t size)
{
	struct nf_esp8266 *p = esp(port);

	/* Refused when it does not fit, checked before anything is erased: then
	 * the body is not worth reading. A resumed download begun again after
	 * an abort (a 200: the image changed) wants its body. */
	bool ok = Update.begin(size, image == NF_IMAGE_FIRMWARE ? U_FLASH : U_FS);
	p->cancel = !ok && p->in_transfer;
	return ok ? 0 : -1;
}

int nf_port_flash_write(void *port, const uint8_t *data, size_t len)
{
	(void)port;
	return Update.write(const_cast<uint8_t *>(data), len) == len ? 0 : -1;
}

int nf_port_flash_verify(void *port)
{
	(void)port;
	/* Accept, and let the Updater decide: a sketch built with a signing key
	 * (ARDUINO_SIGNING) has the Updater check the signature in Update.end(),
	 * inside nf_port_flash_finish below, reading the image back from flash as
	 * it lies there (flash-mode byte included). A refusal there is
	 * NF_ERR_FLASH, and Update.getError() says UPDATE_ERROR_SIGN. Checking
	 * here as well would hash the image twice with the same key. */
	return 0;
}

int nf_port_flash_finish(void *port)
{
	(void)port;
	/* Header check, and the signature in a signing build; then the copy
	 * command for eboot (firmware). On failure the Updater has reset. */
	return Update.end() ? 0 : -1;
}

void nf_port_flash_abort(void *port)
{
	struct nf_esp8266 *p = esp(port);

	/* The Updater has no abort. Unfinished, end() discards it; all bytes in
	 * (an MD5 mismatch), one byte more is an error that resets it first, so
	 * end() finds nothing to commit. No copy command is left either way. */
	if (Update.isFinished()) {
		uint8_t extra = 0;
		Update.write(&extra, 1);
	}
	Update.end();
	if (p->in_transfer)
		p->cancel = true;
}

/* ---- MD5, reboot, log ---------------------------------------------------- */

void nf_port_md5_init(void *port, void *ctx)
{
	(void)port;
	MD5Init(static_cast<md5_context_t *>(ctx));
}

void nf_port_md5_update(void *port, void *ctx, const uint8_t *data, size_t len)
{
	(void)port;
	while (len > 0) { /* the ROM function takes 16-bit lengths */
		uint16_t n = len > 0xFFFF ? 0xFFFF : (uint16_t)len;
		MD5Update(static_cast<md5_context_t *>(ctx), data, n);
		data += n;
		len -= n;
	}
}

void nf_port_md5_final(void *port, void *ctx, uint8_t digest[16])
{
	(void)port;
	MD5Final(digest, static_cast<md5_context_t *>(ctx));
}

void nf_port_reboot(void *port)
{
	(void)port;
	ESP.restart();
}

void nf_port_log(void *port, const char *line)
{
	(void)port;
#ifdef DEBUG_ESP_PORT
	DEBUG_ESP_PORT.printf("[nofuss] %s\n", line);
#else
	(void)line;
#endif
}
