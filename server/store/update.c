/*
 * update.c - proof of update: the life of each offer made to a device
 * (issue 9, item 2), as a pure function of the device's stored offer and one
 * event. No I/O: batch.c reads the offer from the database, applies the
 * device's events in order here and writes the offer and the history
 * entries back in the same transaction.
 *
 *   offered ──progress──> downloading ──every image done──> downloaded
 *      │                     │    ▲                          │
 *      │                     cut  └──progress/done──┐        │ later check
 *      │                     ▼                      │        ▼
 *      │                   failed ──────────────────┘   target? confirmed
 *      │                                                 else:  reverted
 *      └── a check reporting the target: confirmed (from any open state)
 *
 * An open offer is one in offered, downloading, downloaded or failed. A check
 * closes it: confirmed when it reports the target version, or, for a stock
 * updater, a sketch MD5 equal to the offered firmware's; reverted when the
 * offer was downloaded and the device reports anything else; withdrawn
 * (back to none) when it was not downloaded and the check is no longer
 * offered the same thing. A check offered a target starts a new offer
 * unless the same one is open. Silent (downloaded, then no check for a
 * while) is computed when reading (query.c), never stored.
 *
 * Order across nodes: a check older than the newest check applied is stale
 * and changes nothing; a download that does not belong to the open offer is
 * kept aside (early) and counted for the next offer naming that image if it
 * is at most skew_ms older than the offer, since another node's offer may
 * be committed after this node's download.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store.h"

bool nf_update_open(const struct nf_offer *o)
{
	return o->state == NF_UPDATE_OFFERED || o->state == NF_UPDATE_DOWNLOADING ||
	       o->state == NF_UPDATE_DOWNLOADED || o->state == NF_UPDATE_FAILED;
}

int nf_update_image(const struct nf_offer *o, const char *path)
{
	for (int i = 0; i < NF_STORE_IMAGES; i++)
		if (o->img[i].path[0] != '\0' && strcmp(o->img[i].path, path) == 0)
			return i;
	return -1;
}

struct out {
	struct nf_history *h;
	int n;
};

/* Moves o to state at t and writes a history entry of kind. */
static struct nf_history *enter(struct nf_offer *o, int state, int kind, int64_t t,
                                struct out *out)
{
	struct nf_history *h = &out->h[out->n++];

	if (o->state != state) {
		o->state = state;
		o->state_ms = t;
	}
	memset(h, 0, sizeof *h);
	h->at_ms = t;
	h->kind = kind;
	h->state = o->state;
	memcpy(h->target, o->target, sizeof h->target);
	h->rule = o->rule;
	return h;
}

static bool all_done(const struct nf_offer *o)
{
	int images = 0;

	for (int i = 0; i < NF_STORE_IMAGES; i++) {
		if (o->img[i].path[0] == '\0')
			continue;
		if (!o->img[i].done)
			return false;
		images++;
	}
	return images > 0;
}

/* A download's effect on image idx of the open offer. */
static void progress(struct nf_offer *o, int idx, int kind, uint64_t bytes, uint64_t size,
                     int64_t t, struct out *out)
{
	struct nf_offer_image *img = &o->img[idx];
	struct nf_history *h = NULL;

	if (size > 0)
		img->size = size;
	if (kind == NF_EVENT_DOWNLOAD_FAILED) {
		img->done = false;
		img->bytes = bytes;
		h = enter(o, NF_UPDATE_FAILED, NF_HISTORY_FAILED, t, out);
	} else {
		if (kind == NF_EVENT_DOWNLOAD_DONE) {
			img->done = true;
			bytes = img->size > 0 ? img->size : bytes;
		}
		if (bytes > img->bytes)
			img->bytes = bytes;
		if (all_done(o) && o->state != NF_UPDATE_DOWNLOADED)
			h = enter(o, NF_UPDATE_DOWNLOADED, NF_HISTORY_DOWNLOADED, t, out);
		else if (!all_done(o) && o->state != NF_UPDATE_DOWNLOADING)
			h = enter(o, NF_UPDATE_DOWNLOADING, NF_HISTORY_DOWNLOADING, t, out);
	}
	if (h != NULL) {
		memcpy(h->image, img->path, sizeof h->image);
		h->bytes = img->bytes;
		h->total = img->size;
	}
}

/* The check reports the offer's target: by version, or for a stock updater
 * by its running sketch's MD5 against the offered firmware's. */
static bool reports_target(const struct nf_offer *o, const struct nf_event *ev)
{
	if (ev->version[0] != '\0' && strcmp(ev->version, o->target) == 0)
		return true;
	return ev->hw.sketch_md5[0] != '\0' && o->img[0].md5[0] != '\0' &&
	       strcasecmp(ev->hw.sketch_md5, o->img[0].md5) == 0;
}

static bool same_offer(const struct nf_offer *o, const struct nf_event *ev)
{
	if (strcmp(o->target, ev->target) != 0)
		return false;
	for (int i = 0; i < NF_STORE_IMAGES; i++)
		if (strcmp(o->img[i].path, ev->images[i].path) != 0)
			return false;
	return true;
}

/* A new offer from the check ev, and the download seen before it if any. */
static void new_offer(struct nf_offer *o, const struct nf_event *ev, int64_t skew_ms,
                      struct out *out)
{
	int64_t t = ev->time_ms;
	struct nf_history *h;

	/* Offered again what it just reverted: the revert is remembered, so
	 * that a device looping on an image that cannot boot counts against
	 * its rollout's gates instead of looking merely offered. */
	o->reverts = o->state == NF_UPDATE_REVERTED && strcmp(o->target, ev->target) == 0
	                 ? o->reverts + 1
	                 : 0;
	memcpy(o->target, ev->target, sizeof o->target);
	o->rule = ev->rule;
	o->offered_ms = t;
	memcpy(o->from, ev->version, sizeof o->from);
	memset(o->img, 0, sizeof o->img);
	for (int i = 0; i < NF_STORE_IMAGES; i++) {
		memcpy(o->img[i].path, ev->images[i].path, sizeof o->img[i].path);
		memcpy(o->img[i].md5, ev->images[i].md5, sizeof o->img[i].md5);
		o->img[i].size = ev->images[i].size;
	}
	o->state = NF_UPDATE_NONE; /* so that enter() stamps the time */
	h = enter(o, NF_UPDATE_OFFERED, NF_HISTORY_OFFERED, t, out);
	memcpy(h->version, ev->version, sizeof h->version);

	int idx = o->early.path[0] != '\0' ? nf_update_image(o, o->early.path) : -1;
	if (idx >= 0 && o->early_ms >= t - skew_ms) {
		int kind = o->early.done ? NF_EVENT_DOWNLOAD_DONE : NF_EVENT_DOWNLOAD_PROGRESS;
		if (o->img[idx].md5[0] == '\0')
			memcpy(o->img[idx].md5, o->early.md5, sizeof o->img[idx].md5);
		progress(o, idx, kind, o->early.bytes, o->early.size,
		         o->early_ms > t ? o->early_ms : t, out);
	}
	memset(&o->early, 0, sizeof o->early);
	o->early_ms = 0;
}

static void apply_check(struct nf_offer *o, const struct nf_event *ev, int64_t skew_ms,
                        struct out *out)
{
	int64_t t = ev->time_ms;
	bool offered = ev->answer == NF_ANSWER_OFFERED;
	/* Deferred (max-downloads): the offer stands, the device is only told
	 * "not now"; it is not withdrawn, and the device may still confirm. */
	bool deferred = ev->answer == NF_ANSWER_DEFERRED;
	struct nf_history *h;

	if (t < o->checked_ms)
		return; /* another node already applied a newer check */
	o->checked_ms = t;
	if (nf_update_open(o)) {
		if (reports_target(o, ev)) {
			h = enter(o, NF_UPDATE_CONFIRMED, NF_HISTORY_CONFIRMED, t, out);
			memcpy(h->version, ev->version, sizeof h->version);
		} else if (o->state == NF_UPDATE_DOWNLOADED) {
			h = enter(o, NF_UPDATE_REVERTED, NF_HISTORY_REVERTED, t, out);
			memcpy(h->version, ev->version, sizeof h->version);
		} else if (!deferred && (!offered || !same_offer(o, ev))) {
			h = enter(o, NF_UPDATE_NONE, NF_HISTORY_WITHDRAWN, t, out);
			memcpy(h->version, ev->version, sizeof h->version);
		}
	}
	if (offered && !(nf_update_open(o) && same_offer(o, ev)))
		new_offer(o, ev, skew_ms, out);
	if (ev->answer == NF_ANSWER_HELD &&
	    (o->answer != NF_ANSWER_HELD || strcmp(o->answer_reason, ev->reason) != 0 ||
	     strcmp(o->answer_target, ev->target) != 0)) {
		h = enter(o, o->state, NF_HISTORY_HELD, t, out);
		memcpy(h->target, ev->target, sizeof h->target);
		h->rule = ev->rule;
		memcpy(h->version, ev->version, sizeof h->version);
		memcpy(h->detail, ev->reason, sizeof h->detail);
	}
	o->answer = ev->answer;
	memcpy(o->answer_target, ev->target, sizeof o->answer_target);
	memcpy(o->answer_reason, ev->reason, sizeof o->answer_reason);
}

static void apply_download(struct nf_offer *o, const struct nf_event *ev, int64_t skew_ms,
                           struct out *out)
{
	const struct nf_store_image *im = &ev->images[0];
	int idx = nf_update_open(o) ? nf_update_image(o, im->path) : -1;

	if (idx < 0 || ev->time_ms < o->offered_ms - skew_ms) {
		/* Not (yet) for an open offer: kept for the offer naming it. */
		if (o->early_ms == 0 || strcmp(o->early.path, im->path) != 0)
			o->early.bytes = 0;
		memcpy(o->early.path, im->path, sizeof o->early.path);
		memcpy(o->early.md5, im->md5, sizeof o->early.md5);
		o->early.size = im->size;
		o->early.bytes = ev->bytes > o->early.bytes ? ev->bytes : o->early.bytes;
		o->early.done = ev->kind == NF_EVENT_DOWNLOAD_DONE;
		o->early_ms = ev->time_ms;
		return;
	}
	if (o->img[idx].md5[0] == '\0')
		memcpy(o->img[idx].md5, im->md5, sizeof o->img[idx].md5);
	progress(o, idx, ev->kind, ev->bytes, im->size, ev->time_ms, out);
}

int nf_update_apply(struct nf_offer *o, const struct nf_event *ev, int64_t skew_ms,
                    struct nf_history *h)
{
	struct out out = {h, 0};

	switch (ev->kind) {
	case NF_EVENT_CHECK:
		apply_check(o, ev, skew_ms, &out);
		break;
	case NF_EVENT_DOWNLOAD_PROGRESS:
	case NF_EVENT_DOWNLOAD_DONE:
	case NF_EVENT_DOWNLOAD_FAILED:
		if (ev->images[0].path[0] != '\0')
			apply_download(o, ev, skew_ms, &out);
		break;
	default:
		break;
	}
	return out.n;
}
