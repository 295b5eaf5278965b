/*
 * stock.c - `nofuss device --client KIND` for the clients that are not
 * NoFUSS: the stock ESP8266 and ESP32 HTTP updaters, Tasmota and ESPHome
 * (docs/PEERS.md section 9, docs/PROTOCOL.md section 5). The simulated
 * device does what the real one does, with that client's exact headers:
 *
 *   esp8266-updater, esp32-updater, tasmota: one GET of SERVER/update/DEVICE
 *     (Tasmota: .../DEVICE.bin.gz, its version as "V(release-tasmota)");
 *     304 is "no update", 200 is the image: its length must fit the free
 *     space, its first byte be 0xE9 or 0x1F, its MD5 equal x-MD5 when sent;
 *   esphome: GET SERVER/esphome/DEVICE/manifest.json, the build for
 *     "ESP8266", no update when its version is empty or the running one
 *     (compared as strings), else GET its path (joined as ESPHome joins it)
 *     and check the MD5 against the manifest's, byte for byte.
 *
 * The image goes into the port's flash (nf_port_flash_*) and the device
 * reboots into it, as after a NoFUSS update, with the new sketch's MD5 and
 * version in the next request. Bodies are bounded: an image by the slot,
 * a manifest by NF_SIM_MANIFEST_MAX.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "args.h"
#include "common.h"
#include "nofuss/port.h"
#include "nofuss/posix.h"
#include "sim.h"

#define ESP32_SDK     "v5.3.2"
#define ESPHOME_AGENT "ESPHome/2025.11.0 (https://esphome.io)"

static const char *const client_names[NF_SIM_CLIENTS] = {
    "nofuss", "nofuss-path", "esp8266-updater", "esp32-updater", "esphome", "tasmota"};

int nf_sim_client_parse(const char *name, enum nf_sim_client *out)
{
	for (int i = 0; i < NF_SIM_CLIENTS; i++)
		if (strcmp(name, client_names[i]) == 0) {
			*out = (enum nf_sim_client)i;
			return 0;
		}
	return -1;
}

int nf_sim_client_option(const char *value, enum nf_sim_client *client, bool *path_form)
{
	if (nf_sim_client_parse(value, client) != 0) {
		nf_tool_error("--client: \"%s\": not one of nofuss, nofuss-path, esp8266-updater, "
		              "esp32-updater, esphome, tasmota",
		              value);
		return -1;
	}
	if (*client == NF_SIM_CLIENT_NOFUSS_PATH)
		*path_form = true;
	return 0;
}

const char *nf_sim_client_name(enum nf_sim_client kind)
{
	return (unsigned)kind < NF_SIM_CLIENTS ? client_names[kind] : "?";
}

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
	struct nf_sim_body *b = ud;
	size_t len = size * n;
	unsigned char *grown;

	if (b->len + len > b->max) {
		b->too_big = true;
		return 0; /* stops the transfer, as the updater stops reading */
	}
	grown = realloc(b->data, b->len + len + 1);
	if (grown == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct nf_sim_body *b = ud;
	size_t len = size * n;

	if (len > 6 && strncasecmp(buf, "x-MD5:", 6) == 0) {
		const char *v = buf + 6;
		size_t vlen = len - 6;
		while (vlen > 0 && (*v == ' ' || *v == '\t'))
			v++, vlen--;
		while (vlen > 0 &&
		       (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		if (vlen < sizeof b->md5) {
			memcpy(b->md5, v, vlen);
			b->md5[vlen] = '\0';
		}
	}
	return len;
}

static int add(struct curl_slist **l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add(struct curl_slist **l, const char *fmt, ...)
{
	char line[NF_POSIX_HEADER_MAX];
	va_list ap;
	struct curl_slist *n;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	n = curl_slist_append(*l, line);
	if (n == NULL)
		return -1;
	*l = n;
	return 0;
}

/* The request headers of kind, in its order (tests/fixtures/requests/). */
static int headers(struct nf_posix *p, enum nf_sim_client kind, const char *version,
                   struct curl_slist **l)
{
	struct nf_posix_flash_info f;
	int rc = 0;

	p->flash_ops->info(p, &f);
	if (kind == NF_SIM_CLIENT_ESPHOME) {
		rc |= add(l, "User-Agent: %s", ESPHOME_AGENT);
		rc |= add(l, "Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0");
		rc |= add(l, "Connection: keep-alive");
		rc |= add(l, "Content-Length: 0");
	} else if (kind == NF_SIM_CLIENT_ESP32) {
		rc |= add(l, "User-Agent: ESP32-http-Update");
		rc |= add(l, "Connection: close");
		rc |= add(l, "Cache-Control: no-cache");
		rc |= add(l, "x-ESP32-BASE-MAC: %s", p->sta_mac);
		rc |= add(l, "x-ESP32-STA-MAC: %s", p->sta_mac);
		rc |= add(l, "x-ESP32-AP-MAC: 00:00:00:00:00:00"); /* station mode, 3.x */
		rc |= add(l, "x-ESP32-free-space: %u", f.slot_size);
		rc |= add(l, "x-ESP32-sketch-size: %u", f.sketch_size);
		if (f.sketch_md5[0] != '\0')
			rc |= add(l, "x-ESP32-sketch-md5: %s", f.sketch_md5);
		rc |= add(l, "x-ESP32-chip-size: %u", f.chip_size);
		rc |= add(l, "x-ESP32-sdk-version: %s", ESP32_SDK);
		rc |= add(l, "x-ESP32-mode: sketch");
		rc |= add(l, "x-ESP32-version: %s", version);
	} else {
		rc |= add(l, "User-Agent: ESP8266-http-Update");
		rc |= add(l, "Connection: close");
		rc |= nf_posix_updater_headers(p, l);
		rc |= add(l, "x-ESP8266-mode: sketch");
		if (kind == NF_SIM_CLIENT_TASMOTA)
			rc |= add(l, "x-ESP8266-version: %s(release-tasmota)", version);
		else
			rc |= add(l, "x-ESP8266-version: %s", version);
		rc |= add(l, "Content-Length: 0");
	}
	rc |= add(l, "Accept:"); /* curl's own, removed */
	return rc == 0 ? 0 : -1;
}

static void md5_hex(struct nf_posix *p, const unsigned char *data, size_t len, char out[33])
{
	union {
		uint64_t align;
		uint8_t bytes[NF_CLIENT_HASH_CTX_MAX];
	} ctx;
	uint8_t d[16];

	nf_port_md5_init(p, ctx.bytes);
	nf_port_md5_update(p, ctx.bytes, data, len);
	nf_port_md5_final(p, ctx.bytes, d);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Writes the image into the flash, as the updater's Update class does. */
static enum nf_sim_stock flash(struct nf_posix *p, const struct nf_sim_body *b,
                               const char *want_md5, char *err, size_t cap)
{
	char got[33];

	if (b->len == 0 || (b->data[0] != 0xE9 && b->data[0] != 0x1F)) {
		snprintf(err, cap, "image: no 0xE9 or gzip magic");
		return NF_SIM_STOCK_FAILED;
	}
	md5_hex(p, b->data, b->len, got);
	if (want_md5[0] != '\0' && strcasecmp(got, want_md5) != 0) {
		snprintf(err, cap, "image: MD5 %s, expected %s", got, want_md5);
		return NF_SIM_STOCK_FAILED;
	}
	if (nf_port_flash_begin(p, NF_IMAGE_FIRMWARE, (uint32_t)b->len) != 0 ||
	    nf_port_flash_write(p, b->data, b->len) != 0 || nf_port_flash_verify(p) != 0) {
		nf_port_flash_abort(p);
		snprintf(err, cap, "flash: write failed");
		return NF_SIM_STOCK_FAILED;
	}
	if (nf_port_flash_finish(p) != 0) {
		snprintf(err, cap, "flash: commit failed");
		return NF_SIM_STOCK_FAILED;
	}
	nf_posix_logf(p, "[stock] ", "flashed %zu bytes, MD5 %s", b->len, got);
	return NF_SIM_STOCK_UPDATED;
}

/* ESPHome's join of a manifest's path (http_request_update.cpp). */
static void join_path(const char *manifest_url, const char *path, char *out, size_t cap)
{
	const char *host_end;

	if (strstr(path, "http") != NULL) {
		snprintf(out, cap, "%s", path);
	} else if (path[0] == '/') {
		host_end = strchr(manifest_url + (strlen(manifest_url) > 8 ? 8 : 0), '/');
		snprintf(
		    out, cap, "%.*s%s",
		    (int)(host_end != NULL ? host_end - manifest_url : (long)strlen(manifest_url)),
		    manifest_url, path);
	} else {
		host_end = strrchr(manifest_url, '/');
		snprintf(out, cap, "%.*s%s", (int)(host_end - manifest_url + 1), manifest_url,
		         path);
	}
}

static size_t slot_size(struct nf_posix *p)
{
	struct nf_posix_flash_info f;

	p->flash_ops->info(p, &f);
	return f.slot_size;
}

/* Sets curl up for r's request to url; 0, or -1 with err filled. */
static int prepare(struct nf_sim_stock_req *r, void *curl, const char *url, size_t max, char *err,
                   size_t cap)
{
	struct curl_slist *l = NULL;

	free(r->b.data);
	r->b = (struct nf_sim_body){.max = max};
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	if (headers(r->p, r->kind, r->version, &l) != 0) {
		curl_slist_free_all(l);
		snprintf(err, cap, "out of memory");
		return -1;
	}
	r->headers = l;
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION,
	                 r->kind == NF_SIM_CLIENT_ESPHOME ? CURL_HTTP_VERSION_1_1
	                                                  : CURL_HTTP_VERSION_1_0);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r->b);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r->b);
	r->errbuf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, r->p->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, r->p->connect_timeout_ms);
	nf_posix_curl_source(curl, r->p);
	/* ESPHome follows up to 3 redirects; the updaters follow none. */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, r->kind == NF_SIM_CLIENT_ESPHOME ? 1L : 0L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
	nf_posix_logf(r->p, "[stock] ", "GET %s as %s %s", url, nf_sim_client_name(r->kind),
	              r->version);
	return 0;
}

void nf_sim_stock_free(struct nf_sim_stock_req *r)
{
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	free(r->b.data);
	r->b.data = NULL;
}

int nf_sim_stock_begin(struct nf_sim_stock_req *r, void *curl, struct nf_posix *p,
                       enum nf_sim_client kind, bool url_version, const char *server,
                       const char *device, const char *version, char *err, size_t cap)
{
	size_t n = strlen(server);
	char url[NF_SIM_URL_MAX];
	int len;

	*r = (struct nf_sim_stock_req){.kind = kind, .p = p};
	snprintf(r->version, sizeof r->version, "%s", version);
	while (n > 0 && server[n - 1] == '/')
		n--;
	if (kind == NF_SIM_CLIENT_ESPHOME)
		len = snprintf(url, sizeof url, "%.*s/esphome/%s/manifest.json%s%s", (int)n, server,
		               device, url_version ? "?version=" : "", url_version ? version : "");
	else
		len = snprintf(url, sizeof url, "%.*s/update/%s%s", (int)n, server, device,
		               kind == NF_SIM_CLIENT_TASMOTA ? ".bin.gz" : "");
	if (len < 0 || (size_t)len >= sizeof url) {
		snprintf(err, cap, "URL too long");
		return -1;
	}
	snprintf(r->url, sizeof r->url, "%s", url);
	return prepare(r, curl, url,
	               kind == NF_SIM_CLIENT_ESPHOME ? NF_SIM_MANIFEST_MAX : slot_size(p), err,
	               cap);
}

/* The ESPHome manifest in r->b: CURRENT, FAILED, or AGAIN with curl set
 * up for the image. */
static enum nf_sim_stock manifest_read(struct nf_sim_stock_req *r, void *curl, char *err,
                                       size_t cap)
{
	json_t *root = json_loadb((const char *)r->b.data, r->b.len, 0, NULL), *build;
	const char *latest = json_string_value(json_object_get(root, "version")), *path = NULL;
	char image_url[NF_SIM_URL_MAX];
	enum nf_sim_stock res = NF_SIM_STOCK_FAILED;
	size_t i;

	if (latest == NULL || !json_is_string(json_object_get(root, "name")) ||
	    !json_is_array(json_object_get(root, "builds"))) {
		snprintf(err, cap, "manifest: required fields missing");
		goto out;
	}
	json_array_foreach(json_object_get(root, "builds"), i, build)
	{
		const char *fam = json_string_value(json_object_get(build, "chipFamily"));
		json_t *ota = json_object_get(build, "ota");
		const char *md5 = json_string_value(json_object_get(ota, "md5"));
		if (fam == NULL || strcmp(fam, "ESP8266") != 0)
			continue;
		path = md5 != NULL ? json_string_value(json_object_get(ota, "path")) : NULL;
		snprintf(r->md5, sizeof r->md5, "%s", md5 != NULL ? md5 : "");
		break;
	}
	if (path == NULL) { /* both are required */
		snprintf(err, cap, "manifest: no ESP8266 build with a path and an md5");
		goto out;
	}
	if (latest[0] == '\0' || strcmp(latest, r->version) == 0) {
		res = NF_SIM_STOCK_CURRENT;
		goto out;
	}
	if (strlen(r->md5) != 32) {
		snprintf(err, cap, "manifest: md5 is not 32 characters");
		goto out;
	}
	nf_posix_logf(r->p, "[stock] ", "manifest offers %s", latest);
	join_path(r->url, path, image_url, sizeof image_url);
	r->stage = 1;
	res = prepare(r, curl, image_url, slot_size(r->p), err, cap) == 0 ? NF_SIM_STOCK_AGAIN
	                                                                  : NF_SIM_STOCK_FAILED;
out:
	json_decref(root);
	return res;
}

enum nf_sim_stock nf_sim_stock_end(struct nf_sim_stock_req *r, void *curl, int result, char *err,
                                   size_t cap)
{
	enum nf_sim_stock res = NF_SIM_STOCK_FAILED;
	long status = 0;
	char got[33];

	err[0] = '\0';
	if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && r->b.too_big)) {
		snprintf(err, cap, "http: %s",
		         r->errbuf[0] ? r->errbuf : curl_easy_strerror((CURLcode)result));
		goto done;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 304 && r->kind != NF_SIM_CLIENT_ESPHOME) {
		res = NF_SIM_STOCK_CURRENT;
	} else if (status != 200) {
		snprintf(err, cap, "HTTP status %ld", status);
	} else if (r->b.too_big) {
		snprintf(err, cap, "image larger than the free space (%zu bytes)", r->b.max);
	} else if (r->kind == NF_SIM_CLIENT_ESPHOME && r->stage == 0) {
		res = manifest_read(r, curl, err, cap);
		if (res == NF_SIM_STOCK_AGAIN)
			return res;
	} else if (r->kind == NF_SIM_CLIENT_ESPHOME) {
		/* ESPHome compares the lower-case hex it computes byte for byte. */
		md5_hex(r->p, r->b.data, r->b.len, got);
		if (strcmp(got, r->md5) == 0)
			res = flash(r->p, &r->b, "", err, cap);
		else
			snprintf(err, cap, "image: MD5 %s, manifest says %s", got, r->md5);
	} else {
		res = flash(r->p, &r->b, r->b.md5, err, cap);
	}
done:
	nf_sim_stock_free(r);
	return res;
}

enum nf_sim_stock nf_sim_stock_check(struct nf_posix *p, enum nf_sim_client kind,
                                     bool url_version, const char *server, const char *device,
                                     const char *version, char *err, size_t cap)
{
	struct nf_sim_stock_req r;
	enum nf_sim_stock res;
	CURL *curl = curl_easy_init();

	err[0] = '\0';
	if (curl == NULL) {
		snprintf(err, cap, "out of memory");
		return NF_SIM_STOCK_FAILED;
	}
	res = nf_sim_stock_begin(&r, curl, p, kind, url_version, server, device, version, err,
	                         cap) == 0
	          ? NF_SIM_STOCK_AGAIN
	          : NF_SIM_STOCK_FAILED;
	while (res == NF_SIM_STOCK_AGAIN) /* at most twice: ESPHome's manifest, then its image */
		res = nf_sim_stock_end(&r, curl, (int)curl_easy_perform(curl), err, cap);
	nf_sim_stock_free(&r);
	curl_easy_cleanup(curl);
	return res;
}
