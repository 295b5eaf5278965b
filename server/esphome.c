/*
 * esphome.c - the manifest ESPHome's http_request update platform fetches,
 * answered from the rules (issue 9 item 3; docs/PROTOCOL.md section 5.3,
 * docs/PEERS.md section 9.3).
 *
 * ESPHome sends nothing that identifies the device, so its name is in the
 * URL the firmware was built with: GET <base>/esphome/NAME/manifest.json.
 * Nor does it send the version it runs; a firmware whose URL ends
 * "?version=${version}" (the YAML's substitution, compiled into each build)
 * tells it, and is then matched, recorded and confirmed like any other
 * device. Without it the rules are matched with an empty version (the
 * device compares versions itself, as strings). The answer is
 *   {"name":NAME,"version":V,"builds":[{"chipFamily":F,"ota":{"path":P,
 *    "md5":M,"summary":S,"release_url":U}}]}
 * where V is the target's version, P the firmware image's path below the
 * base (the device fetches it from this server; image.c serves it), M its
 * lower-case MD5 (required: the device refuses a manifest without it) and F
 * the target's "chipFamily", or the one the image header tells. The MD5 is
 * that of the file as it is at the request (image.c: the snapshot's, or a
 * late one), so that it is the digest of what the download will send.
 *
 * ESPHome takes a 304 for an error and takes an empty "version" for "no
 * update", but rejects a manifest whose builds have none for its chip. So
 * "nothing for you" is an empty version with an empty build for every chip
 * family ESPHome knows. When the MD5 of the image is not known yet (the
 * file was replaced since the rules were loaded), the answer is 503 with
 * Retry-After while the hasher thread computes it: the device tries again
 * at its next interval, rather than flashing against a wrong digest.
 */
#include <stdio.h>
#include <string.h>

#include "http.h"

#define NF_MAX_MANIFEST 8192 /* one manifest: a name, a path and a target's texts */

/* Every chipFamily ESPHome compares with (its ESPHOME_VARIANT values). */
static const char *const families[] = {"ESP8266",  "ESP32",    "ESP32-S2", "ESP32-S3",
                                       "ESP32-C2", "ESP32-C3", "ESP32-C5", "ESP32-C6",
                                       "ESP32-H2", "ESP32-P4", "RP2040"};

/* A bounded JSON writer: once full, stays failed. */
struct out {
	char *buf;
	size_t cap, len;
	bool failed;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->failed || o->len + n >= o->cap) {
		o->failed = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void put_s(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* s as a JSON string: quotes, backslashes and control bytes escaped. */
static void put_json(struct out *o, const char *s, size_t n)
{
	char esc[8];

	put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(o, esc, 6);
		} else {
			put(o, (const char *)&c, 1);
		}
	}
	put(o, "\"", 1);
}

static void put_json_s(struct out *o, const char *s)
{
	put_json(o, s, strlen(s));
}

static void manifest_head(struct out *o, const struct nf_route *route, const char *version)
{
	put_s(o, "{\"name\":");
	put_json(o, route->name, route->name_len);
	put_s(o, ",\"version\":");
	put_json_s(o, version);
	put_s(o, ",\"builds\":[");
}

/* "Nothing for you": a build for every family, no version, or the one the
 * device runs when it said so (ESPHome compares, finds them equal, and
 * shows the device as up to date on that version). */
static void manifest_none(struct out *o, const struct nf_route *route, const char *version)
{
	manifest_head(o, route, version);
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		put_s(o, i > 0 ? ",{\"chipFamily\":" : "{\"chipFamily\":");
		put_json_s(o, families[i]);
		put_s(o, ",\"ota\":{\"path\":\"\",\"md5\":\"\"}}");
	}
	put_s(o, "]}");
}

/* A target string the rule may carry ("summary", "chipFamily"), or "". */
static const char *target_text(const struct nf_snapshot *snap, long target, const char *key)
{
	const char *v = nf_rules_image(snap->rules, (size_t)target, key);
	return v != NULL ? v : "";
}

static void manifest_offer(struct out *o, const struct nf_server *srv,
                           const struct nf_snapshot *snap, const struct nf_route *route,
                           long target, const struct nf_image_info *img, const char *family,
                           const char *md5)
{
	const char *path = img->path;

	manifest_head(o, route, nf_rules_target(snap->rules, (size_t)target)->version);
	put_s(o, "{\"chipFamily\":");
	put_json_s(o, family);
	put_s(o, ",\"ota\":{\"path\":");
	if (strncmp(path, "http", 4) == 0) {
		put_json_s(o, path);
	} else {
		/* Below the base, from the root: the device joins it to the host. */
		char joined[NF_MAX_URL + 1];
		while (*path == '/')
			path++;
		if ((size_t)snprintf(joined, sizeof joined, "%s/%s", srv->cfg->base, path) >=
		    sizeof joined)
			o->failed = true;
		put_json_s(o, joined);
	}
	put_s(o, ",\"md5\":");
	put_json_s(o, md5);
	put_s(o, ",\"summary\":");
	put_json_s(o, target_text(snap, target, "summary"));
	put_s(o, ",\"release_url\":");
	put_json_s(o, target_text(snap, target, "release_url"));
	put_s(o, "}}]}");
}

static enum MHD_Result send_manifest(struct nf_server *srv, struct MHD_Connection *conn,
                                     const struct out *o)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (o->failed) {
		nf_log(NF_LOG_ERROR, "ESPHome manifest longer than %d bytes", NF_MAX_MANIFEST);
		return MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, srv->server_error);
	}
	r = nf_http_response(o->buf, o->len, NF_TYPE_JSON, true);
	if (r == NULL)
		return MHD_NO;
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result nf_esphome_manifest(struct nf_server *srv, struct MHD_Connection *conn,
                                    const struct nf_route *route)
{
	const char *running = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "version");
	struct nf_query q = {route->name, route->name_len, "", 0, NULL, NULL};
	struct nf_choice c;
	char ip[INET6_ADDRSTRLEN];

	if (running != NULL && strlen(running) > NF_VERSION_MAX) {
		static const char why[] = "Bad Request: version= is longer than 128 bytes\n";
		struct MHD_Response *r = nf_http_response(why, sizeof why - 1, NF_TYPE_TEXT, false);
		enum MHD_Result ret;

		if (r == NULL)
			return MHD_NO;
		ret = MHD_queue_response(conn, MHD_HTTP_BAD_REQUEST, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (running != NULL) {
		q.version = running;
		q.version_len = strlen(running);
	}
	/* No MAC: the device is NAME@IP to pins and rollouts. */
	nf_choice_init(srv, &c);
	nf_http_client_ip(conn, ip);
	if (!nf_choose_pin(srv, &q, ip, &c)) {
		c.target = nf_rules_match(c.src->rules, &q);
		nf_choose_rollout(srv, &q, ip, &c);
	}
	const struct nf_snapshot *snap = c.src;
	long target = c.target;
	const struct nf_target *t = target >= 0 ? nf_rules_target(snap->rules, (size_t)target) : NULL;
	/* Current: it said it runs the target's version. */
	bool current = running != NULL && running[0] != '\0' && t != NULL && t->version != NULL &&
	               strcmp(t->version, running) == 0;
	const struct nf_image_info *img =
	    current ? NULL : nf_stock_image(snap->stock, target, NF_KEY_FIRMWARE);
	const char *family = NULL, *held = NULL;
	char buf[NF_MAX_MANIFEST], md5[NF_MD5_HEX];
	const char *path;
	int known = -1;
	struct out o = {buf, sizeof buf, 0, false};
	enum nf_answer_kind answer = NF_ANSWER_NONE;

	if (img != NULL) {
		family = target_text(snap, target, "chipFamily");
		if (family[0] == '\0')
			family = nf_esp_chip_family(&img->hdr);
		if (strncmp(img->path, "http", 4) == 0)
			held = "image is a URL: nofussd cannot vouch for its MD5";
		else if (!img->present)
			held = "image missing or empty when the rules were loaded";
		else if (family == NULL)
			held = "chip family unknown: give the target a chipFamily";
		else {
			/* The MD5 of the file as it is now: a file replaced since the
			 * rules were loaded is not answered with its old digest. */
			for (path = img->path; *path == '/'; path++)
				;
			known = nf_image_md5(srv, path, md5);
			if (known < 0)
				held = "image missing";
		}
		if (known > 0) {
			/* Not a wrong digest, and not a 304: try again later. */
			nf_record_check(srv, conn,
			                &(struct nf_check_record){.client = NF_CLIENT_ESPHOME,
			                                          .q = &q,
			                                          .target = target,
			                                          .answer = NF_ANSWER_NONE,
			                                          .src = snap,
			                                          .code = c.code});
			return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			                          srv->unavailable);
		}
		if (known == 0)
			answer = nf_choice_defer(srv, &c) ? NF_ANSWER_DEFERRED : NF_ANSWER_OFFERED;
	}
	if (held != NULL) {
		answer = NF_ANSWER_HELD;
		nf_stock_log_held(&q, held);
	}
	nf_record_check(
	    srv, conn,
	    &(struct nf_check_record){.client = NF_CLIENT_ESPHOME,
	                              .q = &q,
	                              .target = target,
	                              .answer = answer,
	                              .reason = held != NULL ? held : c.why,
	                              .image = answer == NF_ANSWER_OFFERED ? img : NULL,
	                              .src = snap,
	                              .code = c.code});
	if (answer == NF_ANSWER_DEFERRED) /* ESPHome has no "not now": it retries */
		return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, srv->busy);
	if (answer == NF_ANSWER_OFFERED)
		manifest_offer(&o, srv, snap, route, target, img, family, md5);
	else
		manifest_none(&o, route, running != NULL ? running : "");
	return send_manifest(srv, conn, &o);
}
