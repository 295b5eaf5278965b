/*
 * admin_fill.c - fills a fleet store for the admin API's test
 * (test_admin.py): N devices posted through the store library as the loop
 * will post them (checks, downloads), so that every update state and both
 * identities (MAC, device@ip) are there. Prints one JSON line per device
 * with what it posted and what the store should now say, which the test
 * compares with the API's answers.
 *
 * Usage: admin_fill STORE-URL N [NOW-MS]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

static const char *const types[] = {"SONOFF", "LIGHT", "SENSOR"};

/* What device i is, and the events that make it so. */
struct plan {
	char key[NF_STORE_MAX_KEY];
	const char *type, *version, *state, *answer;
	int64_t last_ms;
	int events;
};

static void post(struct nf_store *s, const struct nf_event *ev)
{
	if (nf_store_post(s, ev) != 0) {
		fprintf(stderr, "admin_fill: the store's queue is full\n");
		exit(1);
	}
}

static void check(struct nf_store *s, struct nf_event *ev, int64_t t, const char *version,
                  enum nf_answer_kind answer)
{
	struct nf_event e = *ev;

	e.kind = NF_EVENT_CHECK;
	e.time_ms = t;
	e.answer = (uint8_t)answer;
	e.rule = answer == NF_ANSWER_NONE ? -1 : 0;
	nf_store_copy(e.version, sizeof e.version, version, strlen(version));
	if (answer != NF_ANSWER_OFFERED) /* as the loop posts them: images only with an offer */
		memset(e.images, 0, sizeof e.images);
	if (answer == NF_ANSWER_NONE)
		e.target[0] = '\0';
	post(s, &e);
}

static void download(struct nf_store *s, struct nf_event *ev, int64_t t, enum nf_event_kind kind,
                     uint64_t bytes)
{
	ev->kind = (uint8_t)kind;
	ev->time_ms = t;
	ev->bytes = bytes;
	post(s, ev);
}

/* Posts device i's events, newest last at p->last_ms. */
static void fill_one(struct nf_store *s, unsigned i, int64_t now, struct plan *p)
{
	struct nf_event ev;
	char text[NF_STORE_MAX_TEXT];
	int kind = (int)(i % 6);
	int64_t t;

	memset(&ev, 0, sizeof ev);
	p->type = types[i % 3];
	p->version = i % 2 == 0 ? "1.0.0" : "1.1.0";
	p->last_ms = now - (i % 10 == 0 ? 2 * 86400000LL : (int64_t)i * 1000 + 5000);
	t = p->last_ms - 10000;
	ev.client = NF_CLIENT_NOFUSS_HEADER;
	snprintf(ev.ip, sizeof ev.ip, "10.%u.%u.%u", i / 65536 % 256, i / 256 % 256, i % 256);
	nf_store_copy(ev.device, sizeof ev.device, p->type, strlen(p->type));
	if (kind == 5) {
		ev.client = NF_CLIENT_NOFUSS_PATH;
		snprintf(p->key, sizeof p->key, "%s@%s", p->type, ev.ip);
	} else {
		snprintf(ev.mac, sizeof ev.mac, "5C:CF:7F:%02X:%02X:%02X", i / 65536 % 256,
		         i / 256 % 256, i % 256);
		snprintf(p->key, sizeof p->key, "%s", ev.mac);
	}
	snprintf(text, sizeof text, "/fw/%s-2.0.0.bin", p->type);
	nf_store_copy(ev.target, sizeof ev.target, "2.0.0", 5);
	nf_store_copy(ev.images[0].path, sizeof ev.images[0].path, text, strlen(text));
	ev.images[0].size = 4096;
	p->answer = "none";
	switch (kind) {
	case 1: /* offered, downloaded, confirmed */
		check(s, &ev, t, p->version, NF_ANSWER_OFFERED);
		download(s, &ev, t + 1000, NF_EVENT_DOWNLOAD_DONE, 4096);
		p->version = "2.0.0";
		check(s, &ev, p->last_ms, p->version, NF_ANSWER_NONE);
		p->state = "confirmed";
		p->events = 3;
		break;
	case 2: /* offered, downloaded, back on the old version: reverted */
		check(s, &ev, t, p->version, NF_ANSWER_OFFERED);
		download(s, &ev, t + 1000, NF_EVENT_DOWNLOAD_DONE, 4096);
		check(s, &ev, p->last_ms, p->version, NF_ANSWER_NONE);
		p->state = "reverted";
		p->events = 3;
		break;
	case 3: /* offered, the download cut: failed */
		check(s, &ev, t, p->version, NF_ANSWER_OFFERED);
		download(s, &ev, p->last_ms, NF_EVENT_DOWNLOAD_FAILED, 1000);
		p->state = "failed";
		p->answer = "offered";
		p->events = 2;
		break;
	case 4: /* held back: the image does not fit */
		nf_store_copy(ev.reason, sizeof ev.reason, "image 612 KiB, 480 KiB free", 27);
		check(s, &ev, p->last_ms, p->version, NF_ANSWER_HELD);
		p->state = "none";
		p->answer = "held";
		p->events = 1;
		break;
	default: /* 0 and 5: current, nothing offered */
		check(s, &ev, p->last_ms, p->version, NF_ANSWER_NONE);
		p->state = "none";
		p->events = 1;
		break;
	}
}

int main(int argc, char **argv)
{
	struct nf_store_options opt = {.queue_capacity = 65536};
	struct nf_store *s;
	struct timespec ts;
	char err[512];
	unsigned n;
	int64_t now;

	if (argc < 3) {
		fprintf(stderr, "usage: admin_fill STORE-URL N [NOW-MS]\n");
		return 2;
	}
	n = (unsigned)strtoul(argv[2], NULL, 10);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = argc > 3 ? strtoll(argv[3], NULL, 10)
	               : (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	s = nf_store_open(argv[1], &opt, err, sizeof err);
	if (s == NULL) {
		fprintf(stderr, "admin_fill: %s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct plan p;
		fill_one(s, i, now, &p);
		printf("{\"key\":\"%s\",\"type\":\"%s\",\"version\":\"%s\",\"state\":\"%s\","
		       "\"answer\":\"%s\",\"last_seen_ms\":%" PRId64 ",\"events\":%d}\n",
		       p.key, p.type, p.version, p.state, p.answer, p.last_ms, p.events);
		if (i % 4096 == 4095 && nf_store_sync(s, 60000) != 0) {
			fprintf(stderr, "admin_fill: the store did not keep up\n");
			return 1;
		}
	}
	if (nf_store_sync(s, 60000) != 0) {
		fprintf(stderr, "admin_fill: the store did not write everything\n");
		return 1;
	}
	nf_store_close(s);
	return 0;
}
