/*
 * record.c - what the counters and the fleet store learn of each check and
 * each image download (issue 9; docs/STORE.md sections 4 and 11).
 *
 * Everything here runs on the loop thread, inside a request, so it only
 * copies: the event is built from the request, the served snapshot (the
 * rule's target and images, their size and MD5 as the build recorded them:
 * no file is read here) and the clock, and handed to nf_store_post, which
 * copies it into the store's queue and never waits. A full queue drops the
 * event and counts it (the store's stats); the check is answered as if
 * nothing happened. bench/store.sh measures what this costs a check.
 */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common.h"
#include "http.h"

void nf_record_image_key(const char *path, char out[NF_STORE_MAX_IMAGE])
{
	char slashed[NF_MAX_URL + 2];
	size_t len;

	/* Served by someone else: kept as written. */
	if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0) {
		nf_store_image_key(path, strlen(path), out);
		return;
	}
	while (*path == '/')
		path++;
	len = strnlen(path, NF_MAX_URL);
	slashed[0] = '/';
	memcpy(slashed + 1, path, len);
	slashed[len + 1] = '\0';
	nf_store_image_key(slashed, len + 1, out);
}

/* The offered images of rule target, as the snapshot's build recorded
 * them (stockindex.c: key, and size and MD5 when the file was there and
 * hashed); no file is read here. */
static void offered_image(const struct nf_image_info *info, struct nf_store_image *out)
{
	memcpy(out->path, info->key, sizeof out->path);
	memcpy(out->md5, info->md5, NF_STORE_MD5_LEN);
	out->size = info->present ? info->size : 0;
}

static void offered_images(const struct nf_snapshot *snap, long target, struct nf_event *ev)
{
	for (int k = 0; k < NF_STORE_IMAGES; k++) {
		const struct nf_image_info *info = nf_snapshot_image(snap, (size_t)target, k);

		if (info != NULL)
			offered_image(info, &ev->images[k]);
	}
}

void nf_record_check(struct nf_server *srv, struct MHD_Connection *conn,
                     const struct nf_check_record *rec)
{
	const struct nf_snapshot *snap = rec->src != NULL ? rec->src : srv->snap;
	const struct nf_query *q = rec->q;
	struct nf_event ev;

	if ((unsigned)rec->client < NF_CLIENT_COUNT && (unsigned)rec->answer < NF_ANSWER_KINDS)
		nf_count(&srv->counters.checks[rec->client][rec->answer], 1);
	if (srv->store == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.time_ms = nf_clock_wall_ms();
	ev.kind = NF_EVENT_CHECK;
	ev.client = (uint8_t)rec->client;
	ev.answer = (uint8_t)rec->answer;
	ev.rule = -1;
	/* The MAC as sent: the store's writer normalises it (nf_event_key), and
	 * keys a device whose MAC is not one (or all zeros) by type and IP, as
	 * a path-form one. Normalising here cost a third of this function. One
	 * too long to be a MAC is none (cut, it could pass for one). */
	if (q->mac != NULL) {
		size_t n = strnlen(q->mac, NF_STORE_MAC_LEN);
		if (n < NF_STORE_MAC_LEN)
			memcpy(ev.mac, q->mac, n + 1);
	}
	nf_http_client_ip(conn, ev.ip);
	nf_store_copy(ev.device, sizeof ev.device, q->device, q->device_len);
	nf_store_copy(ev.version, sizeof ev.version, q->version, q->version_len);
	if (q->build != NULL)
		nf_store_copy(ev.build, sizeof ev.build, q->build, NF_STORE_MAX_TEXT);
	if (rec->hw != NULL)
		ev.hw = *rec->hw;
	if (rec->answer != NF_ANSWER_NONE && rec->target >= 0 &&
	    (size_t)rec->target < nf_rules_count(snap->rules)) {
		const char *version = nf_rules_target(snap->rules, (size_t)rec->target)->version;
		ev.rule = snap == srv->snap ? (int32_t)rec->target : rec->code;
		if (version != NULL)
			nf_store_copy(ev.target, sizeof ev.target, version, NF_STORE_MAX_TEXT);
		if (rec->answer == NF_ANSWER_OFFERED && rec->image != NULL)
			offered_image(rec->image, &ev.images[rec->image_filesystem ? 1 : 0]);
		else if (rec->answer == NF_ANSWER_OFFERED)
			offered_images(snap, rec->target, &ev);
	}
	if (rec->answer == NF_ANSWER_HELD && rec->reason != NULL)
		nf_store_copy(ev.reason, sizeof ev.reason, rec->reason, NF_STORE_MAX_REASON);
	else if (rec->answer == NF_ANSWER_DEFERRED && rec->reason != NULL)
		nf_store_copy(ev.reason, sizeof ev.reason, rec->reason, NF_STORE_MAX_REASON);
	else if (rec->answer == NF_ANSWER_DEFERRED)
		nf_downloads_reason(srv, ev.reason, sizeof ev.reason);
	nf_store_post(srv->store, &ev); /* full: dropped and counted by the store */
}

/* Bytes the peer has acknowledged on the connection so far (TCP_INFO), or
 * 0 when unknown. Headers and earlier answers on the connection count too. */
static uint64_t bytes_acked(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct tcp_info ti;
	socklen_t len = sizeof ti;

	memset(&ti, 0, sizeof ti);
	if (ci == NULL || getsockopt(ci->connect_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
		return 0;
	return ti.tcpi_bytes_acked;
}

/* The identity a download carries: the stock updaters' MAC headers (the
 * NoFUSS client downloads with the ESP8266 updater). */
static void download_mac(struct MHD_Connection *conn, struct nf_download *d)
{
	static const struct {
		const char *name;
		enum nf_client_kind client;
	} macs[] = {
	    {"x-ESP8266-STA-MAC", NF_CLIENT_ESP8266_UPDATER},
	    {"x-ESP32-BASE-MAC", NF_CLIENT_ESP32_UPDATER},
	    {"x-ESP32-STA-MAC", NF_CLIENT_ESP32_UPDATER},
	    {"X-ESP8266-MAC", NF_CLIENT_NOFUSS_HEADER},
	};

	for (size_t i = 0; i < sizeof macs / sizeof macs[0]; i++) {
		const char *v = nf_http_header(conn, macs[i].name);
		if (v != NULL && nf_store_mac_normalize(v, d->mac) == 0) {
			d->client = (uint8_t)macs[i].client;
			return;
		}
	}
	d->mac[0] = '\0';
}

static void post_download(struct nf_server *srv, const struct nf_download *d, int kind,
                          uint64_t bytes)
{
	struct nf_event ev;

	memset(&ev, 0, sizeof ev);
	ev.time_ms = nf_clock_wall_ms();
	ev.kind = (uint8_t)kind;
	ev.client = d->client;
	ev.rule = -1;
	ev.bytes = bytes;
	memcpy(ev.mac, d->mac, sizeof ev.mac);
	memcpy(ev.ip, d->ip, sizeof ev.ip);
	memcpy(ev.images[0].path, d->image, sizeof ev.images[0].path);
	memcpy(ev.images[0].md5, d->md5, sizeof ev.images[0].md5);
	ev.images[0].size = d->size;
	nf_store_post(srv->store, &ev);
}

void nf_record_download_start(struct nf_server *srv, struct MHD_Connection *conn,
                              struct nf_download *d, const char *md5, uint64_t size, uint64_t first,
                              uint64_t len)
{
	nf_count(&srv->counters.downloads_started, 1);
	d->size = size;
	d->first = first;
	d->len = len;
	nf_store_copy(d->md5, sizeof d->md5, md5, NF_STORE_MD5_LEN);
	if (srv->store == NULL)
		return;
	download_mac(conn, d);
	nf_http_client_ip(conn, d->ip);
	d->acked = bytes_acked(conn);
	post_download(srv, d, NF_EVENT_DOWNLOAD_PROGRESS, first);
}

void nf_record_download_end(struct nf_server *srv, struct MHD_Connection *conn,
                            const struct nf_download *d, bool complete)
{
	uint64_t sent = d->len;

	if (!complete) {
		/* sendfile leaves no count behind; what the peer acknowledged is
		 * the best measure, short of the whole range by definition. */
		uint64_t acked = bytes_acked(conn);
		sent = acked > d->acked ? acked - d->acked : 0;
		if (sent >= d->len)
			sent = d->len > 0 ? d->len - 1 : 0;
	}
	nf_count(complete ? &srv->counters.downloads_completed : &srv->counters.downloads_failed,
	         1);
	nf_count(&srv->counters.download_bytes, sent);
	if (srv->store == NULL)
		return;
	if (!complete)
		post_download(srv, d, NF_EVENT_DOWNLOAD_FAILED, d->first + sent);
	else if (d->first + sent >= d->size) /* the image's last byte went out */
		post_download(srv, d, NF_EVENT_DOWNLOAD_DONE, d->size);
	else /* a range that stops short of the end: progress, not the end */
		post_download(srv, d, NF_EVENT_DOWNLOAD_PROGRESS, d->first + sent);
}
