/*
 * stock.c - stock ESP8266/ESP32 HTTP updaters and Tasmota, answered from
 * the rules (issue 9 item 3; docs/PROTOCOL.md section 5, docs/PEERS.md
 * sections 5 and 9).
 *
 * Firmware that never heard of NoFUSS calls the core's updater on a fixed
 * URL, GET <base>/update/DEVICE (or <base>/update, the device type then
 * coming from the first rule that lists the device's MAC), and expects one
 * answer: 304 when it is current, or 200 with the image. So the check and
 * the download are one request here: the rules are matched with the MAC
 * (x-ESP8266-STA-MAC; ESP32: x-ESP32-BASE-MAC, else x-ESP32-STA-MAC, never
 * the AP MAC, which can be all zeros), the device type and the version
 * (x-ESP8266-version / x-ESP32-version when sent, else the version of the
 * rule whose image has the running sketch's MD5), and the image the
 * matching rule names is served by image.c (x-MD5, sendfile, the wait for a
 * late MD5). Filesystem mode gets the rule's "spiffs" image.
 *
 * Never offered: an image larger than the free sketch space or built for a
 * bigger flash than the chip (nf_stock_fits); such a device gets 304 and
 * the record says why.
 *
 * Tasmota sends "VERSION(TAG-IMAGE)" (TAG: "release" or a commit) and
 * counts a 304 as success. Its minimal and safeboot images are loaders,
 * never "current": they exist to fetch the full image. When the full image
 * does not fit and the rule names a "minimal" image that does, that is
 * served instead (Tasmota's own two-step upgrade, done by the server).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* What a stock updater's headers say. */
struct stock_request {
	enum nf_client_kind client;
	bool esp32, filesystem, version_query;
	const char *mode;
	char mac[NF_MAX_FIELD + 1];
	char version[NF_MAX_FIELD + 1]; /* Tasmota: the part before '(' */
	char image[NF_MAX_FIELD + 1];   /* Tasmota: the image name in the parentheses */
	bool has_version;
	bool loader; /* Tasmota's minimal or safeboot image: never current */
	struct nf_event_hw hw;
};

uint64_t nf_http_header_u64(struct MHD_Connection *conn, const char *name)
{
	return nf_stock_parse_u64(nf_http_header(conn, name));
}

static uint32_t clamp32(uint64_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* A header from the family's set: "x-ESP8266-<suffix>" or "x-ESP32-<suffix>". */
static const char *fam_header(struct MHD_Connection *conn, bool esp32, const char *suffix,
                              char *name, size_t cap)
{
	snprintf(name, cap, "x-%s-%s", esp32 ? "ESP32" : "ESP8266", suffix);
	return nf_http_header(conn, name);
}

static uint64_t fam_u64(struct MHD_Connection *conn, bool esp32, const char *suffix)
{
	char name[48];

	snprintf(name, sizeof name, "x-%s-%s", esp32 ? "ESP32" : "ESP8266", suffix);
	return nf_http_header_u64(conn, name);
}

static void copy_field(char *dst, const char *src)
{
	snprintf(dst, NF_MAX_FIELD + 1, "%s", src);
}

static void read_request(struct MHD_Connection *conn, struct stock_request *r)
{
	char name[48];
	const char *v;

	memset(r, 0, sizeof *r);
	r->mode = nf_http_header(conn, "x-ESP8266-mode");
	if (r->mode == NULL) {
		r->esp32 = true;
		r->mode = nf_http_header(conn, "x-ESP32-mode");
	}
	if (r->mode == NULL) /* http.c routes only updater requests here */
		r->mode = "sketch";
	r->client = r->esp32 ? NF_CLIENT_ESP32_UPDATER : NF_CLIENT_ESP8266_UPDATER;
	r->filesystem = strcmp(r->mode, "spiffs") == 0 || strcmp(r->mode, "littlefs") == 0;
	r->version_query = strcmp(r->mode, "version") == 0;

	/* Identity: never the AP MAC (docs/PEERS.md section 9.1). */
	v = fam_header(conn, r->esp32, r->esp32 ? "BASE-MAC" : "STA-MAC", name, sizeof name);
	if (v == NULL && r->esp32)
		v = fam_header(conn, true, "STA-MAC", name, sizeof name);
	if (v != NULL)
		copy_field(r->mac, v);

	v = fam_header(conn, r->esp32, "version", name, sizeof name);
	if (v != NULL && v[0] != '\0') {
		r->has_version = true;
		if (nf_stock_parse_tasmota(v, r->version, r->image)) {
			r->client = NF_CLIENT_TASMOTA;
			r->loader = strcmp(r->image, NF_STOCK_MINIMAL) == 0 ||
			            strcmp(r->image, "safeboot") == 0;
		} else
			copy_field(r->version, v);
	}

	r->hw.chip_id = r->esp32 ? 0 : fam_u64(conn, false, "Chip-ID");
	r->hw.chip_size = clamp32(fam_u64(conn, r->esp32, "chip-size"));
	r->hw.free_space = clamp32(fam_u64(conn, r->esp32, "free-space"));
	r->hw.sketch_size = clamp32(fam_u64(conn, r->esp32, "sketch-size"));
	v = fam_header(conn, r->esp32, "sketch-md5", name, sizeof name);
	if (v != NULL && strlen(v) == NF_MD5_HEX - 1)
		snprintf(r->hw.sketch_md5, sizeof r->hw.sketch_md5, "%s", v);
	v = fam_header(conn, r->esp32, "sdk-version", name, sizeof name);
	if (v != NULL)
		snprintf(r->hw.sdk, sizeof r->hw.sdk, "%s", v);
}

/* The device type: the URL's DEVICE up to its first '.' (Tasmota adds
 * ".bin", ".gz"), less a "-minimal" Tasmota puts there when it wants its
 * minimal image; without one, the device of the first rule that lists the
 * MAC ("" when none does, which only "*" rules match). */
static void device_of(const struct nf_snapshot *snap, const struct nf_route *route,
                      const struct stock_request *r, struct nf_query *q, bool *minimal)
{
	*minimal = false;
	if (route->name != NULL) {
		q->device = route->name;
		q->device_len = nf_stock_device_len(route->name, route->name_len, minimal);
		return;
	}
	long rule = nf_stock_rule_by_mac(snap->stock, r->mac);
	q->device = rule >= 0 ? nf_rules_device(snap->rules, (size_t)rule, &q->device_len) : NULL;
	if (q->device == NULL) {
		q->device = "";
		q->device_len = 0;
	}
}

/* The version the device runs: sent, or the target version of the rule
 * (versions.json's, else a rollout's or a pin's release) whose firmware
 * has the running sketch's MD5. NULL when neither tells. */
static const char *running_version(const struct nf_server *srv, const struct stock_request *r)
{
	const struct nf_snapshot *in[2] = {srv->snap, srv->plan};
	long rule;

	if (r->has_version)
		return r->version;
	for (int i = 0; i < 2; i++) {
		if (in[i] == NULL)
			continue;
		rule = nf_stock_rule_by_md5(in[i]->stock, r->hw.sketch_md5);
		if (rule >= 0)
			return nf_rules_target(in[i]->rules, (size_t)rule)->version;
	}
	return NULL;
}

/* The rule a Tasmota loader (minimal, safeboot) is answered by. Its version
 * is the loader's, not the application's: the rule whose minimal image it
 * runs (nofussd sent it), else the rules matched with its version, else
 * with an empty one (below every version). */
static long loader_target(const struct nf_snapshot *snap, const struct stock_request *r,
                          struct nf_query *q)
{
	long rule = nf_stock_rule_by_md5(snap->stock, r->hw.sketch_md5);
	const struct nf_image_info *min = nf_stock_image(snap->stock, rule, NF_KEY_MINIMAL);

	/* A rule skipped by the signature check offers nothing, not even to
	 * the loader its own minimal image put on the device. */
	if (min != NULL && strcasecmp(min->md5, r->hw.sketch_md5) == 0 &&
	    !nf_rules_skipped(snap->rules, (size_t)rule))
		return rule;
	rule = nf_rules_match(snap->rules, q);
	if (rule < 0) {
		struct nf_query any = *q;
		any.version = "";
		any.version_len = 0;
		rule = nf_rules_match(snap->rules, &any);
	}
	return rule;
}

/* One stock check in the making. */
struct decision {
	struct nf_query q;
	long target;
	enum nf_answer_kind answer;
	const struct nf_image_info *img; /* OFFERED: what to serve */
	char reason[NF_STORE_MAX_REASON];
};

static void hold(struct decision *d, const char *why)
{
	d->answer = NF_ANSWER_HELD;
	d->img = NULL;
	if (why != NULL)
		snprintf(d->reason, sizeof d->reason, "%s", why);
}

/* Which image, if any, the matched rule offers this device. */
static void decide(const struct nf_snapshot *snap, const struct stock_request *r, bool minimal,
                   struct decision *d)
{
	const struct nf_target *t = nf_rules_target(snap->rules, (size_t)d->target);
	bool loader = r->loader;
	enum nf_image_key key = r->filesystem ? NF_KEY_SPIFFS
	                        : minimal     ? NF_KEY_MINIMAL
	                                      : NF_KEY_FIRMWARE;
	const struct nf_image_info *img = nf_stock_image(snap->stock, d->target, key);
	enum nf_chip_family family = r->esp32 ? NF_CHIP_ESP32 : NF_CHIP_ESP8266;

	d->answer = NF_ANSWER_NONE;
	/* Current: the version it runs is the target's, or (sketch) it runs the
	 * very image. A Tasmota loader is never current. */
	if (!loader && t->version != NULL && d->q.version != NULL && d->q.version_len > 0 &&
	    strcmp(d->q.version, t->version) == 0)
		return;
	if (!loader && !r->filesystem && img != NULL && img->md5[0] != '\0' &&
	    strcasecmp(img->md5, r->hw.sketch_md5) == 0)
		return;
	if (img == NULL) {
		if (minimal)
			hold(d, "the rule names no minimal image");
		return; /* nothing of this kind to offer */
	}
	if (strncmp(img->path, "http", 4) == 0)
		return hold(d, "image is a URL: stock updaters do not follow redirects");
	if (!img->present)
		return hold(d, "image missing or empty when the rules were loaded");
	if (!nf_stock_fits(img, family, r->hw.free_space, r->hw.chip_size, r->filesystem, d->reason,
	                   sizeof d->reason)) {
		const struct nf_image_info *min =
		    nf_stock_image(snap->stock, d->target, NF_KEY_MINIMAL);
		char why[NF_STORE_MAX_REASON];
		/* Tasmota's two steps: the minimal image first, the full one
		 * from the minimal firmware, which has the space. */
		if (r->client != NF_CLIENT_TASMOTA || key != NF_KEY_FIRMWARE || min == NULL ||
		    !min->present || strncmp(min->path, "http", 4) == 0 ||
		    !nf_stock_fits(min, family, r->hw.free_space, r->hw.chip_size, false, why,
		                   sizeof why))
			return hold(d, NULL);
		img = min;
		d->reason[0] = '\0';
	}
	d->answer = NF_ANSWER_OFFERED;
	d->img = img;
}

/* ESP8266 core 3.1's getAvailableVersion (x-ESP8266-mode: version): 200,
 * no body, the version on offer in x-version and its MD5 in x-MD5. */
static enum MHD_Result answer_version(struct MHD_Connection *conn, const struct nf_snapshot *snap,
                                      const struct decision *d, const struct stock_request *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	const char *version = d->answer == NF_ANSWER_OFFERED
	                          ? nf_rules_target(snap->rules, (size_t)d->target)->version
	                          : r->version;
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "x-version", version != NULL ? version : "");
	if (d->answer == NF_ANSWER_OFFERED && d->img->md5[0] != '\0')
		MHD_add_response_header(resp, "x-MD5", d->img->md5);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result nf_stock_update(struct nf_server *srv, struct MHD_Connection *conn,
                                const struct nf_route *route, void **req_cls)
{
	const struct nf_snapshot *snap = srv->snap;
	struct stock_request r;
	struct decision d = {.target = -1};
	struct nf_choice c;
	char ip[INET6_ADDRSTRLEN];
	bool minimal;

	nf_choice_init(srv, &c);
	nf_http_client_ip(conn, ip);
	read_request(conn, &r);
	device_of(snap, route, &r, &d.q, &minimal);
	d.q.mac = r.mac[0] != '\0' ? r.mac : NULL;
	d.q.version = running_version(srv, &r);
	d.q.version_len = d.q.version != NULL ? strlen(d.q.version) : 0;
	if (d.q.version == NULL)
		d.q.version = ""; /* unknown: below every version, as the rules compare */
	/* Tasmota's image name goes where a build would: the inventory shows
	 * "safeboot" or "minimal" instead of taking it for a revert. */
	d.q.build = r.client == NF_CLIENT_TASMOTA ? r.image : NULL;
	/* A pin, then versions.json, then a rollout; a Tasmota loader is
	 * answered by the rule whose minimal image it runs, never a rollout's
	 * (a release has no minimal image). */
	if (d.q.device_len <= NF_MAX_FIELD && !(!r.loader && nf_choose_pin(srv, &d.q, ip, &c))) {
		c.target =
		    r.loader ? loader_target(snap, &r, &d.q) : nf_rules_match(snap->rules, &d.q);
		if (!r.loader)
			nf_choose_rollout(srv, &d.q, ip, &c);
	}
	snap = c.src;
	d.target = c.target;
	if (d.target >= 0)
		decide(snap, &r, minimal, &d);
	if (d.answer == NF_ANSWER_OFFERED && nf_choice_defer(srv, &c)) {
		d.answer = NF_ANSWER_DEFERRED; /* the version query: "no update"; else 503 */
		d.img = NULL;
	}

	nf_record_check(srv, conn,
	                &(struct nf_check_record){
	                    .client = r.client,
	                    .q = &d.q,
	                    .target = d.target,
	                    .answer = d.answer,
	                    .reason = d.answer == NF_ANSWER_HELD ? d.reason : c.why,
	                    .hw = &r.hw,
	                    .image = d.img, /* the one image this updater takes */
	                    .image_filesystem = r.filesystem,
	                    .src = snap,
	                    .code = c.code});
	if (d.answer == NF_ANSWER_HELD)
		nf_stock_log_held(&d.q, d.reason);
	if (r.version_query)
		return answer_version(conn, snap, &d, &r);
	if (d.answer == NF_ANSWER_DEFERRED)
		return nf_downloads_refuse(srv, conn);
	if (d.answer != NF_ANSWER_OFFERED)
		return MHD_queue_response(conn, MHD_HTTP_NOT_MODIFIED, snap->not_modified);
	const char *path = d.img->path;
	while (*path == '/')
		path++;
	return nf_image_serve(srv, conn, path, req_cls);
}

void nf_stock_log_held(const struct nf_query *q, const char *reason)
{
	nf_log(NF_LOG_DEBUG, "%s%s%.*s: held back: %s", q->mac != NULL ? q->mac : "",
	       q->mac != NULL ? " " : "", (int)q->device_len, q->device, reason);
}

bool nf_stock_check_fits(const struct nf_snapshot *snap, long target, uint64_t chip_size,
                         char *reason, size_t cap)
{
	reason[0] = '\0';
	if (chip_size == 0)
		return true;
	return nf_stock_fits(nf_stock_image(snap->stock, target, NF_KEY_FIRMWARE), NF_CHIP_ESP8266,
	                     0, chip_size, false, reason, cap);
}
