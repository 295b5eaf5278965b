/*
 * store_checks.c - the fleet store's checks for either backend
 * (store_checks.h): real events posted through nf_store_post, written by
 * the real writer into a real database, read back through the queries the
 * admin API will use. Every wait is bounded (nf_store_sync, 30 s).
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_checks.h"

#define SYNC_MS 30000
#define MD5_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MD5_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Helpers ----------------------------------------------------------------- */

struct nf_store *store_check_open(const char *url, const struct nf_store_options *o)
{
	char err[512] = "";
	struct nf_store *s = nf_store_open(url, o, err, sizeof err);

	if (s == NULL)
		fail_msg("nf_store_open(%s): %s", url, err);
	return s;
}

struct nf_event store_check_event(const char *mac, const char *ip, const char *device,
                                  const char *version, int64_t t)
{
	struct nf_event e;

	memset(&e, 0, sizeof e);
	e.kind = NF_EVENT_CHECK;
	e.time_ms = t;
	e.client = mac != NULL ? NF_CLIENT_NOFUSS_HEADER : NF_CLIENT_NOFUSS_PATH;
	e.answer = NF_ANSWER_NONE;
	e.rule = -1;
	nf_store_copy(e.mac, sizeof e.mac, mac, 64);
	nf_store_copy(e.ip, sizeof e.ip, ip, 64);
	nf_store_copy(e.device, sizeof e.device, device, 64);
	nf_store_copy(e.version, sizeof e.version, version, 64);
	nf_store_copy(e.build, sizeof e.build, "b1", 64);
	return e;
}

void store_check_offer(struct nf_event *e, const char *target, const char *fw, const char *fs)
{
	e->answer = NF_ANSWER_OFFERED;
	e->rule = 3;
	nf_store_copy(e->target, sizeof e->target, target, 64);
	nf_store_copy(e->images[0].path, sizeof e->images[0].path, fw, 128);
	nf_store_copy(e->images[1].path, sizeof e->images[1].path, fs, 128);
}

struct nf_event store_check_download(int kind, const char *mac, const char *ip,
                                     const char *path, uint64_t bytes, uint64_t total,
                                     int64_t t)
{
	struct nf_event e;

	memset(&e, 0, sizeof e);
	e.kind = (uint8_t)kind;
	e.time_ms = t;
	e.client = mac != NULL ? NF_CLIENT_ESP8266_UPDATER : NF_CLIENT_UNKNOWN;
	e.rule = -1;
	nf_store_copy(e.mac, sizeof e.mac, mac, 64);
	nf_store_copy(e.ip, sizeof e.ip, ip, 64);
	nf_store_copy(e.images[0].path, sizeof e.images[0].path, path, 128);
	e.images[0].size = total;
	e.bytes = bytes;
	return e;
}

void store_check_sync(struct nf_store *s)
{
	assert_int_equal(nf_store_sync(s, SYNC_MS), 0);
}

void store_check_post(struct nf_store *s, const struct nf_event *ev)
{
	assert_int_equal(nf_store_post(s, ev), 0);
	store_check_sync(s);
}

struct nf_device store_check_device(struct nf_store *s, const char *key, int64_t now,
                                    struct nf_history **h, size_t *n)
{
	struct nf_device d;
	struct nf_history *hist = NULL;
	size_t count = 0;
	char err[512] = "";
	int rc = nf_store_device(s, key, now, &d, &hist, &count, err, sizeof err);

	if (rc != 1)
		fail_msg("nf_store_device(%s) = %d: %s", key, rc, err);
	if (h != NULL) {
		*h = hist;
		*n = count;
	} else {
		free(hist);
	}
	return d;
}

static const char *url_of(void **state)
{
	return ((struct store_fixture *)*state)->url;
}

/* The history's kinds, newest first, against the expected list. */
static void assert_kinds(const struct nf_history *h, size_t n, const int *kinds, size_t count)
{
	char got[256] = "", want[256] = "";

	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s ",
		         nf_history_kind_name(h[i].kind));
	for (size_t i = 0; i < count; i++)
		snprintf(want + strlen(want), sizeof want - strlen(want), "%s ",
		         nf_history_kind_name(kinds[i]));
	assert_string_equal(got, want);
}
#define ASSERT_KINDS(h, n, ...)                                                            \
	do {                                                                               \
		const int kinds_[] = {__VA_ARGS__};                                        \
		assert_kinds(h, n, kinds_, sizeof kinds_ / sizeof kinds_[0]);              \
	} while (0)

static void assert_state(struct nf_store *s, const char *key, int64_t now, int state)
{
	struct nf_device d = store_check_device(s, key, now, NULL, NULL);

	assert_string_equal(nf_update_state_name(d.state), nf_update_state_name(state));
}

/* No device is stored under key. */
static void assert_no_device(struct nf_store *s, const char *key)
{
	struct nf_device d;
	struct nf_history *h = NULL;
	size_t n = 0;
	char err[512] = "";

	assert_int_equal(nf_store_device(s, key, STORE_T0, &d, &h, &n, err, sizeof err), 0);
	free(h);
}

/* The state machine --------------------------------------------------------- */

#define MAC1 "5c:cf:7f:00:00:01"
#define KEY1 "5C:CF:7F:00:00:01"

/* MAC1, running 1.0, is offered 1.1 (firmware fw, filesystem fs) at t. */
static void offer_mac1(struct nf_store *s, int64_t t, const char *fw, const char *fs)
{
	struct nf_event e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", t);

	store_check_offer(&e, "1.1", fw, fs);
	assert_int_equal(nf_store_post(s, &e), 0);
}

/* MAC1 downloads all size bytes of path at t. */
static void done_mac1(struct nf_store *s, const char *path, uint64_t size, int64_t t)
{
	struct nf_event e =
		store_check_download(NF_EVENT_DOWNLOAD_DONE, MAC1, "10.0.0.1", path, size, size, t);

	assert_int_equal(nf_store_post(s, &e), 0);
}

/* The transitions the store counts for /metrics, since it was opened. */
static void assert_stats(struct nf_store *s, uint64_t confirmed, uint64_t reverted,
                         uint64_t held)
{
	struct nf_store_stats st;

	nf_store_stats(s, &st);
	assert_int_equal(st.confirmed, confirmed);
	assert_int_equal(st.reverted, reverted);
	assert_int_equal(st.held, held);
}

void check_offer_to_confirmed(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0);
	struct nf_history *h;
	size_t n;

	store_check_offer(&e, "1.1", "/fw/s-1.1.bin", "/fs/s-1.1.bin");
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, "5C-CF-7F-00-00-01", STORE_T0, NULL, NULL);
	assert_string_equal(d.key, KEY1);
	assert_string_equal(d.mac, KEY1);
	assert_int_equal(d.state, NF_UPDATE_OFFERED);
	assert_string_equal(d.target, "1.1");
	assert_int_equal(d.rule, 3);
	assert_string_equal(d.from_version, "1.0");
	assert_int_equal(d.offered_ms, STORE_T0);
	assert_string_equal(d.images[1].path, "/fs/s-1.1.bin");

	e = store_check_download(NF_EVENT_DOWNLOAD_PROGRESS, MAC1, "10.0.0.1", "/fw/s-1.1.bin", 0,
	                         1000, STORE_T0 + 10);
	store_check_post(s, &e);
	assert_state(s, KEY1, STORE_T0, NF_UPDATE_DOWNLOADING);
	e.bytes = 600;
	e.time_ms = STORE_T0 + 20;
	store_check_post(s, &e);
	d = store_check_device(s, KEY1, STORE_T0, NULL, NULL);
	assert_int_equal(d.image_bytes[0], 600);
	assert_int_equal(d.images[0].size, 1000);

	e.kind = NF_EVENT_DOWNLOAD_DONE;
	e.bytes = 1000;
	e.time_ms = STORE_T0 + 30;
	store_check_post(s, &e);
	assert_state(s, KEY1, STORE_T0, NF_UPDATE_DOWNLOADING); /* the filesystem is missing */
	e = store_check_download(NF_EVENT_DOWNLOAD_DONE, MAC1, "10.0.0.1", "/fs/s-1.1.bin", 500,
	                         500, STORE_T0 + 40);
	store_check_post(s, &e);
	d = store_check_device(s, KEY1, STORE_T0 + 50, NULL, NULL);
	assert_int_equal(d.state, NF_UPDATE_DOWNLOADED);
	assert_int_equal(d.state_ms, STORE_T0 + 40);
	assert_int_equal(d.image_bytes[0], 1000);
	assert_int_equal(d.image_bytes[1], 500);

	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.1", STORE_T0 + 100);
	store_check_post(s, &e);
	d = store_check_device(s, KEY1, STORE_T0 + 100, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_CONFIRMED);
	assert_int_equal(d.state_ms, STORE_T0 + 100);
	assert_string_equal(d.version, "1.1");
	assert_int_equal(d.checks, 2);
	assert_int_equal(d.first_seen_ms, STORE_T0);
	assert_int_equal(d.last_seen_ms, STORE_T0 + 100);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_DOWNLOADING,
	             NF_HISTORY_OFFERED);
	assert_string_equal(h[0].version, "1.1");
	assert_stats(s, 1, 0, 0);
	assert_string_equal(h[1].image, "/fs/s-1.1.bin");
	assert_int_equal(h[1].bytes, 500);
	assert_int_equal(h[1].total, 500);
	assert_string_equal(h[3].version, "1.0");
	assert_string_equal(h[3].target, "1.1");
	assert_int_equal(h[3].rule, 3);
	assert_int_equal(h[3].at_ms, STORE_T0);
	free(h);
	nf_store_close(s);
}

void check_reverted(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e;
	struct nf_history *h;
	size_t n;

	offer_mac1(s, STORE_T0, "/fw/s-1.1.bin", NULL);
	done_mac1(s, "/fw/s-1.1.bin", 1000, STORE_T0 + 10);
	store_check_sync(s);
	assert_state(s, KEY1, STORE_T0 + 10, NF_UPDATE_DOWNLOADED);

	/* It comes back on the old version and is offered the update again. */
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0 + 100);
	store_check_offer(&e, "1.1", "/fw/s-1.1.bin", NULL);
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, KEY1, STORE_T0 + 100, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_OFFERED);
	assert_int_equal(d.offered_ms, STORE_T0 + 100);
	assert_int_equal(d.image_bytes[0], 0);
	ASSERT_KINDS(h, n, NF_HISTORY_OFFERED, NF_HISTORY_REVERTED, NF_HISTORY_DOWNLOADED,
	             NF_HISTORY_OFFERED);
	assert_string_equal(h[1].version, "1.0");
	assert_int_equal(h[1].state, NF_UPDATE_REVERTED);
	free(h);

	/* Downloaded again, and this time nothing is offered: reverted stays. */
	done_mac1(s, "/fw/s-1.1.bin", 1000, STORE_T0 + 110);
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0 + 200);
	store_check_post(s, &e);
	assert_state(s, KEY1, STORE_T0 + 200, NF_UPDATE_REVERTED);
	/* Two reverts committed (one per downloaded offer), for /metrics. */
	assert_stats(s, 0, 2, 0);
	nf_store_close(s);
}

void check_failed_then_confirmed(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e;
	struct nf_history *h;
	size_t n;

	offer_mac1(s, STORE_T0, "/fw/a.bin", NULL);
	e = store_check_download(NF_EVENT_DOWNLOAD_PROGRESS, MAC1, "10.0.0.1", "/fw/a.bin", 0,
	                         1000, STORE_T0 + 1);
	assert_int_equal(nf_store_post(s, &e), 0);
	e.kind = NF_EVENT_DOWNLOAD_FAILED;
	e.bytes = 300;
	e.time_ms = STORE_T0 + 2;
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, KEY1, STORE_T0 + 2, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_FAILED);
	assert_int_equal(d.image_bytes[0], 300);
	assert_int_equal(h[0].kind, NF_HISTORY_FAILED);
	assert_int_equal(h[0].bytes, 300);
	assert_int_equal(h[0].total, 1000);
	free(h);

	/* Offered the same again: still failed until it downloads. */
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0 + 50);
	store_check_offer(&e, "1.1", "/fw/a.bin", NULL);
	store_check_post(s, &e);
	assert_state(s, KEY1, STORE_T0 + 50, NF_UPDATE_FAILED);
	done_mac1(s, "/fw/a.bin", 1000, STORE_T0 + 60);
	store_check_sync(s);
	assert_state(s, KEY1, STORE_T0 + 60, NF_UPDATE_DOWNLOADED);
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.1", STORE_T0 + 100);
	store_check_post(s, &e);
	d = store_check_device(s, KEY1, STORE_T0 + 100, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_CONFIRMED);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_FAILED,
	             NF_HISTORY_DOWNLOADING, NF_HISTORY_OFFERED);
	free(h);
	nf_store_close(s);
}

void check_silent(void **state)
{
	struct nf_store_options o = {.silent_ms = 60000};
	struct nf_store *s = store_check_open(url_of(state), &o);
	struct nf_event e;
	const int64_t done = STORE_T0 + 10, early = done + 59999, late = done + 60001;
	struct nf_device_filter f = {.state = NF_UPDATE_SILENT, .now_ms = late};
	struct nf_device_list list;
	struct nf_fleet_summary sum;
	char err[512];

	offer_mac1(s, STORE_T0, "/fw/a.bin", NULL);
	done_mac1(s, "/fw/a.bin", 1000, done);
	store_check_sync(s);
	assert_state(s, KEY1, early, NF_UPDATE_DOWNLOADED);
	assert_state(s, KEY1, late, NF_UPDATE_SILENT);

	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_int_equal(list.total, 1);
	assert_int_equal(list.devices[0].state, NF_UPDATE_SILENT);
	nf_device_list_free(&list);
	f.state = NF_UPDATE_DOWNLOADED;
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_int_equal(list.total, 0);
	nf_device_list_free(&list);
	f.now_ms = early;
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_int_equal(list.total, 1);
	nf_device_list_free(&list);
	assert_int_equal(nf_store_summary(s, late, &sum, err, sizeof err), 0);
	assert_int_equal(sum.by_state[NF_UPDATE_SILENT], 1);
	assert_int_equal(sum.by_state[NF_UPDATE_DOWNLOADED], 0);
	nf_fleet_summary_free(&sum);

	/* A silent device that comes back on the target is confirmed. */
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.1", late + 1000);
	store_check_post(s, &e);
	assert_state(s, KEY1, late + 1000, NF_UPDATE_CONFIRMED);
	nf_store_close(s);
}

/* A stock updater's check: no version, its sketch's MD5 and what it told. */
static struct nf_event stock_check(const char *mac, const char *md5, int64_t t)
{
	struct nf_event e = store_check_event(mac, "10.0.0.9", "", "", t);

	e.client = NF_CLIENT_ESP8266_UPDATER;
	e.hw.chip_id = 9223360;
	e.hw.chip_size = 4194304;
	e.hw.free_space = 491520;
	e.hw.sketch_size = 409600;
	nf_store_copy(e.hw.sketch_md5, sizeof e.hw.sketch_md5, md5, 64);
	nf_store_copy(e.hw.sdk, sizeof e.hw.sdk, "2.2.2-dev(38a443e)", 64);
	return e;
}

/* The updater is offered t.bin (MD5_B) and downloads all of it. */
static void stock_update(struct nf_store *s, const char *mac, int64_t t)
{
	struct nf_event e = stock_check(mac, MD5_A, t);

	store_check_offer(&e, "2.0", "/fw/t.bin", NULL);
	nf_store_copy(e.images[0].md5, sizeof e.images[0].md5, MD5_B, 64);
	e.images[0].size = 400000;
	assert_int_equal(nf_store_post(s, &e), 0);
	e = store_check_download(NF_EVENT_DOWNLOAD_DONE, mac, "10.0.0.9", "/fw/t.bin", 400000,
	                         400000, t + 5);
	nf_store_copy(e.images[0].md5, sizeof e.images[0].md5, MD5_B, 64);
	assert_int_equal(nf_store_post(s, &e), 0);
}

void check_stock_updater_md5(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e;

	stock_update(s, "18:FE:34:00:00:0A", STORE_T0);
	stock_update(s, "18:FE:34:00:00:0B", STORE_T0);
	store_check_sync(s);
	assert_state(s, "18:FE:34:00:00:0A", STORE_T0 + 5, NF_UPDATE_DOWNLOADED);

	/* A runs the offered image (its MD5, in upper case for once): confirmed. */
	e = stock_check("18:fe:34:00:00:0a", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", STORE_T0 + 100);
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, "18:FE:34:00:00:0A", STORE_T0 + 100, NULL, NULL);
	assert_int_equal(d.state, NF_UPDATE_CONFIRMED);
	assert_int_equal(d.client, NF_CLIENT_ESP8266_UPDATER);
	assert_int_equal(d.hw.chip_id, 9223360);
	assert_int_equal(d.hw.chip_size, 4194304);
	assert_int_equal(d.hw.free_space, 491520);
	assert_int_equal(d.hw.sketch_size, 409600);
	assert_string_equal(d.hw.sdk, "2.2.2-dev(38a443e)");
	assert_string_equal(d.images[0].md5, MD5_B);

	/* B still runs the old sketch and is offered the image again. */
	e = stock_check("18:FE:34:00:00:0B", MD5_A, STORE_T0 + 100);
	store_check_offer(&e, "2.0", "/fw/t.bin", NULL);
	store_check_post(s, &e);
	struct nf_history *h;
	size_t n;
	d = store_check_device(s, "18:FE:34:00:00:0B", STORE_T0 + 100, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_OFFERED);
	ASSERT_KINDS(h, n, NF_HISTORY_OFFERED, NF_HISTORY_REVERTED, NF_HISTORY_DOWNLOADED,
	             NF_HISTORY_OFFERED);
	free(h);
	nf_store_close(s);
}

void check_withdrawn_and_held(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e;
	struct nf_history *h;
	size_t n;

	offer_mac1(s, STORE_T0, "/fw/a.bin", NULL);
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0 + 10);
	assert_int_equal(nf_store_post(s, &e), 0); /* the rule is gone */
	for (int i = 0; i < 3; i++) {
		e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0 + 20 + 10 * i);
		e.answer = NF_ANSWER_HELD;
		e.rule = 4;
		nf_store_copy(e.target, sizeof e.target, "1.2", 64);
		nf_store_copy(e.reason, sizeof e.reason,
		              i < 2 ? "image 612 KiB, 480 KiB free" : "image for 4 MB flash, chip 1 MB",
		              128);
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	store_check_sync(s);
	struct nf_device d = store_check_device(s, KEY1, STORE_T0 + 50, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_NONE);
	assert_int_equal(d.answer, NF_ANSWER_HELD);
	assert_string_equal(d.answer_target, "1.2");
	assert_int_equal(d.answer_rule, 4);
	assert_string_equal(d.answer_reason, "image for 4 MB flash, chip 1 MB");
	ASSERT_KINDS(h, n, NF_HISTORY_HELD, NF_HISTORY_HELD, NF_HISTORY_WITHDRAWN,
	             NF_HISTORY_OFFERED);
	assert_string_equal(h[1].detail, "image 612 KiB, 480 KiB free");
	assert_string_equal(h[1].target, "1.2");
	assert_int_equal(h[1].rule, 4);
	assert_int_equal(h[2].state, NF_UPDATE_NONE);
	free(h);
	assert_stats(s, 0, 0, 2); /* two reasons: two held-back transitions */
	nf_store_close(s);
}

/* A check from mac at version whose offer of target (rule) was deferred. */
static struct nf_event deferred(const char *mac, const char *version, int64_t t, int32_t rule,
                                const char *target)
{
	struct nf_event e = store_check_event(mac, "10.0.0.1", "SONOFF", version, t);

	e.answer = NF_ANSWER_DEFERRED;
	e.rule = rule;
	nf_store_copy(e.target, sizeof e.target, target, 64);
	nf_store_copy(e.reason, sizeof e.reason, "20 image transfers in flight", 128);
	return e;
}

/* A deferred check (max-downloads reached) leaves the open offer as it is:
 * not withdrawn, not offered again; a download still counts for it, and a
 * later check reporting the target confirms it. A deferral with no open
 * offer opens none. */
void check_deferred_keeps_offer(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e;
	struct nf_history *h;
	size_t n;

	offer_mac1(s, STORE_T0, "/fw/a.bin", NULL);
	for (int i = 0; i < 2; i++) {
		e = deferred(MAC1, "1.0", STORE_T0 + 10 + 10 * i, 3, "1.1");
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	store_check_sync(s);
	struct nf_device d = store_check_device(s, KEY1, STORE_T0 + 30, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_OFFERED);
	assert_int_equal(d.state_ms, STORE_T0);
	assert_int_equal(d.offered_ms, STORE_T0);
	assert_int_equal(d.answer, NF_ANSWER_DEFERRED);
	assert_string_equal(d.answer_target, "1.1");
	assert_string_equal(d.answer_reason, "20 image transfers in flight");
	ASSERT_KINDS(h, n, NF_HISTORY_OFFERED);
	free(h);

	/* Downloaded, then a check on the target, itself deferred for the next
	 * version: confirmed all the same. */
	done_mac1(s, "/fw/a.bin", 1000, STORE_T0 + 40);
	e = deferred(MAC1, "1.1", STORE_T0 + 50, 5, "1.2");
	store_check_post(s, &e);
	d = store_check_device(s, KEY1, STORE_T0 + 60, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_CONFIRMED);
	assert_string_equal(d.target, "1.1");
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_OFFERED);
	free(h);

	/* Another device, deferred at its first check: no offer is opened. */
	e = deferred("5c:cf:7f:00:00:02", "1.0", STORE_T0 + 70, 3, "1.1");
	store_check_post(s, &e);
	d = store_check_device(s, "5C:CF:7F:00:00:02", STORE_T0 + 80, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_NONE);
	assert_int_equal(d.answer, NF_ANSWER_DEFERRED);
	assert_int_equal(n, 0);
	free(h);
	nf_store_close(s);
}

void check_path_form(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e = store_check_event(NULL, "192.168.1.50", "LIGHT", "1.0", STORE_T0);
	struct nf_store_stats st;

	/* Offer and download in two transactions: the download finds the
	 * offer in the database by IP. */
	store_check_offer(&e, "1.1", "/fw/l.bin", NULL);
	store_check_post(s, &e);
	e = store_check_download(NF_EVENT_DOWNLOAD_DONE, NULL, "192.168.1.50", "/fw/l.bin", 800,
	                         800, STORE_T0 + 5);
	store_check_post(s, &e);
	nf_store_copy(e.ip, sizeof e.ip, "192.168.1.52", 64); /* nobody was offered anything */
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, "LIGHT@192.168.1.50", STORE_T0 + 5, NULL, NULL);
	assert_int_equal(d.state, NF_UPDATE_DOWNLOADED);
	assert_string_equal(d.mac, "");
	assert_string_equal(d.ip, "192.168.1.50");
	assert_int_equal(d.client, NF_CLIENT_NOFUSS_PATH);
	nf_store_stats(s, &st);
	assert_int_equal(st.unmatched, 1);

	/* A second device type at the same IP, offer and download in one
	 * transaction: each download goes to the offer naming its image. */
	e = store_check_event(NULL, "192.168.1.50", "SWITCH", "3.0", STORE_T0 + 10);
	store_check_offer(&e, "3.1", "/fw/sw.bin", NULL);
	assert_int_equal(nf_store_post(s, &e), 0);
	e = store_check_download(NF_EVENT_DOWNLOAD_PROGRESS, NULL, "192.168.1.50", "/fw/sw.bin", 10,
	                         900, STORE_T0 + 11);
	assert_int_equal(nf_store_post(s, &e), 0);
	store_check_sync(s);
	assert_state(s, "SWITCH@192.168.1.50", STORE_T0 + 11, NF_UPDATE_DOWNLOADING);
	assert_state(s, "LIGHT@192.168.1.50", STORE_T0 + 11, NF_UPDATE_DOWNLOADED);
	e = store_check_event(NULL, "192.168.1.50", "LIGHT", "1.1", STORE_T0 + 20);
	store_check_post(s, &e);
	assert_state(s, "LIGHT@192.168.1.50", STORE_T0 + 20, NF_UPDATE_CONFIRMED);
	nf_store_close(s);
}

void check_download_before_offer(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e;
	struct nf_history *h;
	size_t n;

	/* A download of a MAC no check ever told: no device of its own. */
	done_mac1(s, "/fw/e.bin", 700, STORE_T0 + 1);
	store_check_sync(s);
	assert_no_device(s, KEY1);

	/* Another node's download committed before this node's offer (the
	 * device known from an earlier check). */
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0);
	store_check_post(s, &e);
	done_mac1(s, "/fw/e.bin", 700, STORE_T0 + 10);
	store_check_sync(s);
	assert_state(s, KEY1, STORE_T0 + 10, NF_UPDATE_NONE);
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0 + 5);
	store_check_offer(&e, "1.1", "/fw/e.bin", NULL);
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, KEY1, STORE_T0 + 10, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_DOWNLOADED);
	assert_string_equal(d.device, "SONOFF");
	assert_int_equal(d.first_seen_ms, STORE_T0);
	assert_int_equal(d.last_seen_ms, STORE_T0 + 10);
	assert_int_equal(d.checks, 2);
	ASSERT_KINDS(h, n, NF_HISTORY_DOWNLOADED, NF_HISTORY_OFFERED);
	free(h);

	/* A download long before its offer is not this offer's. */
	done_mac1(s, "/fw/x.bin", 700, STORE_T0 + 1000);
	store_check_sync(s);
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.1", STORE_T0 + 1000 + 3600000);
	store_check_offer(&e, "1.2", "/fw/x.bin", NULL);
	store_check_post(s, &e);
	assert_state(s, KEY1, STORE_T0 + 1000 + 3600000, NF_UPDATE_OFFERED);
	nf_store_close(s);
}

/* Path form: checks without a MAC, downloads by the ESP8266 updater, which
 * sends x-ESP8266-STA-MAC with each image request. */
#define PMAC1 "02:00:00:00:00:01"
#define PMAC2 "02:00:00:00:00:02"
#define PMAC3 "02:00:00:00:00:03"
#define PMAC4 "02:00:00:00:00:04"

/* device (no MAC) at ip, running 1.0, offered 1.1 with firmware fw at t. */
static void path_offer(struct nf_store *s, const char *ip, const char *device,
                       const char *fw, int64_t t)
{
	struct nf_event e = store_check_event(NULL, ip, device, "1.0", t);

	store_check_offer(&e, "1.1", fw, NULL);
	assert_int_equal(nf_store_post(s, &e), 0);
}

static void post_download(struct nf_store *s, int kind, const char *mac, const char *ip,
                          const char *fw, uint64_t bytes, int64_t t)
{
	struct nf_event e = store_check_download(kind, mac, ip, fw, bytes, 800, t);

	assert_int_equal(nf_store_post(s, &e), 0);
}

/* device (no MAC) at ip reports 1.1 at t, written before this returns. */
static void confirm_path(struct nf_store *s, const char *ip, const char *device, int64_t t)
{
	struct nf_event e = store_check_event(NULL, ip, device, "1.1", t);

	store_check_post(s, &e);
}

static uint64_t batches(struct nf_store *s)
{
	struct nf_store_stats st;

	nf_store_stats(s, &st);
	return st.batches;
}

void check_path_form_mac(void **state)
{
	/* batch_ms of a minute: the writer writes when synced, so what is
	 * posted between two syncs is one batch (counted below). */
	struct nf_store_options o = {.batch_ms = 60000};
	struct nf_store *s = store_check_open(url_of(state), &o);
	struct nf_store_stats st;
	struct nf_fleet_summary sum;
	struct nf_history *h;
	size_t n;
	char err[512];
	uint64_t b0;

	/* Offer, progress, completion and confirmation in four batches. */
	path_offer(s, "10.9.0.1", "LIGHT", "/fw/l-1.1.bin", STORE_T0);
	store_check_sync(s);
	post_download(s, NF_EVENT_DOWNLOAD_PROGRESS, PMAC1, "10.9.0.1", "/fw/l-1.1.bin", 100,
	              STORE_T0 + 1);
	store_check_sync(s);
	assert_state(s, "LIGHT@10.9.0.1", STORE_T0 + 1, NF_UPDATE_DOWNLOADING);
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC1, "10.9.0.1", "/fw/l-1.1.bin", 800,
	              STORE_T0 + 2);
	store_check_sync(s);
	assert_state(s, "LIGHT@10.9.0.1", STORE_T0 + 2, NF_UPDATE_DOWNLOADED);
	confirm_path(s, "10.9.0.1", "LIGHT", STORE_T0 + 10);
	struct nf_device d = store_check_device(s, "LIGHT@10.9.0.1", STORE_T0 + 10, &h, &n);
	assert_int_equal(d.state, NF_UPDATE_CONFIRMED);
	assert_string_equal(d.mac, "");
	assert_int_equal(d.checks, 2);
	assert_int_equal(d.last_seen_ms, STORE_T0 + 10);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_DOWNLOADING,
	             NF_HISTORY_OFFERED);
	free(h);
	assert_no_device(s, PMAC1);

	/* Offer and download in one batch: the download goes to the row that
	 * batch's upsert made. */
	b0 = batches(s);
	path_offer(s, "10.9.0.2", "SWITCH", "/fw/s-1.1.bin", STORE_T0 + 20);
	post_download(s, NF_EVENT_DOWNLOAD_PROGRESS, PMAC2, "10.9.0.2", "/fw/s-1.1.bin", 300,
	              STORE_T0 + 21);
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC2, "10.9.0.2", "/fw/s-1.1.bin", 800,
	              STORE_T0 + 22);
	store_check_sync(s);
	assert_int_equal(batches(s) - b0, 1);
	assert_state(s, "SWITCH@10.9.0.2", STORE_T0 + 22, NF_UPDATE_DOWNLOADED);
	assert_no_device(s, PMAC2);
	/* ... and the confirming check in one batch with a repeated download. */
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC2, "10.9.0.2", "/fw/s-1.1.bin", 800,
	              STORE_T0 + 23);
	confirm_path(s, "10.9.0.2", "SWITCH", STORE_T0 + 30);
	store_check_device(s, "SWITCH@10.9.0.2", STORE_T0 + 30, &h, &n);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_DOWNLOADING,
	             NF_HISTORY_OFFERED);
	free(h);
	assert_no_device(s, PMAC2);

	/* A header-form device and a path-form one at one IP, both offered the
	 * same image: the download with the header device's MAC is its own. */
	path_offer(s, "10.9.0.3", "HDR", "/fw/h-1.1.bin", STORE_T0 + 40);
	struct nf_event e = store_check_event(PMAC3, "10.9.0.3", "HDR", "1.0", STORE_T0 + 41);
	store_check_offer(&e, "1.1", "/fw/h-1.1.bin", NULL);
	store_check_post(s, &e);
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC3, "10.9.0.3", "/fw/h-1.1.bin", 800,
	              STORE_T0 + 42);
	store_check_sync(s);
	assert_state(s, PMAC3, STORE_T0 + 42, NF_UPDATE_DOWNLOADED);
	assert_state(s, "HDR@10.9.0.3", STORE_T0 + 42, NF_UPDATE_OFFERED);
	/* Its next download, in the batch of its offer, too. */
	e = store_check_event(PMAC3, "10.9.0.3", "HDR", "1.1", STORE_T0 + 50);
	store_check_offer(&e, "1.2", "/fw/h-1.2.bin", NULL);
	assert_int_equal(nf_store_post(s, &e), 0);
	path_offer(s, "10.9.0.3", "HDR", "/fw/h-1.2.bin", STORE_T0 + 51);
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC3, "10.9.0.3", "/fw/h-1.2.bin", 800,
	              STORE_T0 + 52);
	store_check_sync(s);
	assert_state(s, PMAC3, STORE_T0 + 52, NF_UPDATE_DOWNLOADED);
	assert_state(s, "HDR@10.9.0.3", STORE_T0 + 52, NF_UPDATE_OFFERED);

	/* A MAC and an IP that match nothing, and an image nobody at the IP
	 * was offered: unmatched, no row. */
	nf_store_stats(s, &st);
	assert_int_equal(st.unmatched, 0);
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC4, "10.9.0.4", "/fw/l-1.1.bin", 800,
	              STORE_T0 + 60);
	post_download(s, NF_EVENT_DOWNLOAD_DONE, PMAC4, "10.9.0.1", "/fw/x.bin", 800,
	              STORE_T0 + 61);
	store_check_sync(s);
	nf_store_stats(s, &st);
	assert_int_equal(st.unmatched, 2);
	assert_no_device(s, PMAC4);
	assert_int_equal(nf_store_summary(s, STORE_T0 + 60, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, 4); /* LIGHT@, SWITCH@, HDR@ and PMAC3 */
	nf_fleet_summary_free(&sum);
	nf_store_close(s);
}

void check_stale_check(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_event e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.1", STORE_T0 + 2000);

	store_check_post(s, &e);
	e = store_check_event(MAC1, "10.0.0.2", "SONOFF", "1.0", STORE_T0 + 1000);
	store_check_offer(&e, "1.1", "/fw/a.bin", NULL);
	store_check_post(s, &e); /* older, written later: another node's */
	struct nf_device d = store_check_device(s, KEY1, STORE_T0 + 2000, NULL, NULL);
	assert_string_equal(d.version, "1.1");
	assert_string_equal(d.ip, "10.0.0.1");
	assert_int_equal(d.checks, 2);
	assert_int_equal(d.first_seen_ms, STORE_T0 + 1000);
	assert_int_equal(d.last_seen_ms, STORE_T0 + 2000);
	assert_int_equal(d.last_check_ms, STORE_T0 + 2000);
	assert_int_equal(d.state, NF_UPDATE_NONE);
	assert_int_equal(d.answer, NF_ANSWER_NONE);
	nf_store_close(s);
}

/* Strings with what SQL and array literals quote, and fields filled to
 * their last byte with no NUL (the writer cuts them, never reads past). */
void check_odd_strings(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	const char *odd = "We\"ird\\, {x} 'y' NULL";
	struct nf_event e = store_check_event(MAC1, "10.0.0.1", odd, "1.0 \"q\"", STORE_T0);
	struct nf_history *h;
	size_t n;

	e.answer = NF_ANSWER_HELD;
	nf_store_copy(e.reason, sizeof e.reason, "\"quoted\" \\ {a,b}", 64);
	memset(e.build, 'B', sizeof e.build); /* no NUL */
	store_check_post(s, &e);
	e = store_check_event(NULL, "10.0.0.7", odd, "2.0", STORE_T0);
	memset(e.target, 'T', sizeof e.target);
	store_check_offer(&e, NULL, "/fw/\"odd\",\\.bin", NULL);
	memset(e.target, 'T', sizeof e.target);
	store_check_post(s, &e);
	e = store_check_download(NF_EVENT_DOWNLOAD_DONE, NULL, "10.0.0.7", "/fw/\"odd\",\\.bin", 3,
	                         3, STORE_T0 + 1);
	store_check_post(s, &e);

	struct nf_device d = store_check_device(s, KEY1, STORE_T0, &h, &n);
	assert_string_equal(d.device, odd);
	assert_string_equal(d.version, "1.0 \"q\"");
	assert_int_equal(strlen(d.build), NF_STORE_MAX_TEXT - 1);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].detail, "\"quoted\" \\ {a,b}");
	free(h);
	char key[NF_STORE_MAX_KEY];
	snprintf(key, sizeof key, "%s@10.0.0.7", odd);
	d = store_check_device(s, key, STORE_T0 + 1, NULL, NULL);
	assert_int_equal(d.state, NF_UPDATE_DOWNLOADED);
	assert_int_equal(strlen(d.target), NF_STORE_MAX_TEXT - 1);
	assert_string_equal(d.images[0].path, "/fw/\"odd\",\\.bin");
	nf_store_close(s);
}

/* One offer's whole life (3 history entries) for target at t. */
static void one_update(struct nf_store *s, const char *from, const char *target, int64_t t)
{
	struct nf_event e = store_check_event(MAC1, "10.0.0.1", "SONOFF", from, t);

	store_check_offer(&e, target, "/fw/h.bin", NULL);
	assert_int_equal(nf_store_post(s, &e), 0);
	done_mac1(s, "/fw/h.bin", 10, t + 1);
	e = store_check_event(MAC1, "10.0.0.1", "SONOFF", target, t + 2);
	assert_int_equal(nf_store_post(s, &e), 0);
}

void check_history_bound(void **state)
{
	struct nf_store_options o = {.history_max = 4};
	struct nf_store *s = store_check_open(url_of(state), &o);
	char from[8], target[8];
	struct nf_history *h;
	size_t n;

	for (int i = 1; i <= 5; i++) {
		snprintf(from, sizeof from, "v%d", i - 1);
		snprintf(target, sizeof target, "v%d", i);
		one_update(s, from, target, STORE_T0 + 100 * i);
	}
	store_check_sync(s);
	store_check_device(s, KEY1, STORE_T0 + 1000, &h, &n);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_OFFERED,
	             NF_HISTORY_CONFIRMED);
	assert_string_equal(h[0].target, "v5");
	assert_string_equal(h[3].target, "v4");
	for (size_t i = 1; i < n; i++)
		assert_true(h[i].at_ms < h[i - 1].at_ms);
	free(h);
	nf_store_close(s);

	/* Smaller: the newest two stay, and new entries go on after them. */
	o.history_max = 2;
	s = store_check_open(url_of(state), &o);
	store_check_device(s, KEY1, STORE_T0 + 1000, &h, &n);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED);
	free(h);
	one_update(s, "v5", "v6", STORE_T0 + 600);
	store_check_sync(s);
	store_check_device(s, KEY1, STORE_T0 + 1000, &h, &n);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED);
	assert_string_equal(h[0].target, "v6");
	free(h);
	nf_store_close(s);

	/* Larger again: what was kept is read in order. */
	o.history_max = 8;
	s = store_check_open(url_of(state), &o);
	one_update(s, "v6", "v7", STORE_T0 + 700);
	store_check_sync(s);
	store_check_device(s, KEY1, STORE_T0 + 1000, &h, &n);
	ASSERT_KINDS(h, n, NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED, NF_HISTORY_OFFERED,
	             NF_HISTORY_CONFIRMED, NF_HISTORY_DOWNLOADED);
	free(h);
	nf_store_close(s);
}

/* Queries ----------------------------------------------------------------------- */

#define FLEET 30

/* Device i of 30: TYPE<i%3>, version 1.<i%2>, 10.0.<i/10>.<i>, seen at
 * T0 + i s; 0-4 offered, 5-7 downloaded, 0-2 tagged "lab". */
static struct nf_store *make_fleet(const char *url)
{
	struct nf_store *s = store_check_open(url, NULL);
	char mac[18], ip[32], type[8], version[8], err[256];

	for (int i = 0; i < FLEET; i++) {
		snprintf(mac, sizeof mac, "02:00:00:00:00:%02x", i);
		snprintf(ip, sizeof ip, "10.0.%d.%d", i / 10, i);
		snprintf(type, sizeof type, "TYPE%d", i % 3);
		snprintf(version, sizeof version, "1.%d", i % 2);
		struct nf_event e = store_check_event(mac, ip, type, version, STORE_T0 + 1000 * i);
		if (i < 8)
			store_check_offer(&e, "2.0", "/fw/2.bin", NULL);
		assert_int_equal(nf_store_post(s, &e), 0);
		if (i >= 5 && i < 8) {
			e = store_check_download(NF_EVENT_DOWNLOAD_DONE, mac, ip, "/fw/2.bin", 5, 5,
			                         STORE_T0 + 1000 * i);
			assert_int_equal(nf_store_post(s, &e), 0);
		}
	}
	store_check_sync(s);
	for (int i = 0; i < 3; i++) {
		snprintf(mac, sizeof mac, "02-00-00-00-00-%02X", i);
		assert_int_equal(nf_store_tag(s, mac, "lab", true, err, sizeof err), 1);
	}
	assert_int_equal(nf_store_tag(s, "02:00:00:00:00:00", "lab", true, err, sizeof err), 1);
	return s;
}

static uint64_t count(struct nf_store *s, struct nf_device_filter f)
{
	struct nf_device_list list;
	char err[512] = "";
	uint64_t total;

	if (f.now_ms == 0)
		f.now_ms = STORE_T0 + 1000 * FLEET;
	if (nf_store_devices(s, &f, &list, err, sizeof err) != 0)
		fail_msg("nf_store_devices: %s", err);
	assert_true(list.count <= list.total);
	total = list.total;
	nf_device_list_free(&list);
	return total;
}

#define ANY .state = -1

static void check_filters(struct nf_store *s)
{
	assert_int_equal(count(s, (struct nf_device_filter){ANY}), FLEET);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .device = "TYPE1"}), 10);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .version = "1.0"}), 15);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .device = "TYPE1",
	                                                    .version = "1.0"}), 5);
	assert_int_equal(count(s, (struct nf_device_filter){.state = NF_UPDATE_OFFERED}), 5);
	assert_int_equal(count(s, (struct nf_device_filter){.state = NF_UPDATE_DOWNLOADED}), 3);
	assert_int_equal(count(s, (struct nf_device_filter){.state = NF_UPDATE_NONE}), 22);
	assert_int_equal(count(s, (struct nf_device_filter){ANY,
	                                                    .seen_after_ms = STORE_T0 + 20000}), 10);
	assert_int_equal(count(s, (struct nf_device_filter){ANY,
	                                                    .seen_before_ms = STORE_T0 + 5000}), 5);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .seen_after_ms = STORE_T0 + 10000,
	                                                    .seen_before_ms = STORE_T0 + 12000}),
	                 2);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .mac_prefix = "02:00:00:00:00:1"}),
	                 14);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .mac_prefix = "02:00:00:00:00:0a"}),
	                 1);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .ip_prefix = "10.0.1."}), 10);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .ip_prefix = "10_0"}), 0);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .ip_prefix = "10.0.%"}), 0);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .tag = "lab"}), 3);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .tag = "lab", .device = "TYPE0"}),
	                 1);
}

/* Every page of 7 by key: each device once, in order. */
static void check_pages(struct nf_store *s)
{
	struct nf_device_filter f = {ANY, .sort = NF_SORT_KEY, .limit = 7};
	char last[NF_STORE_MAX_KEY] = "";
	size_t seen = 0;
	char err[512];

	for (f.offset = 0; f.offset < FLEET + 7; f.offset += 7) {
		struct nf_device_list list;

		assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
		assert_int_equal(list.total, FLEET);
		assert_int_equal(list.count, f.offset + 7 <= FLEET ? 7
		                             : f.offset < FLEET    ? FLEET - f.offset
		                                                   : 0);
		for (size_t i = 0; i < list.count; i++) {
			assert_true(strcmp(list.devices[i].key, last) > 0);
			snprintf(last, sizeof last, "%s", list.devices[i].key);
			seen++;
		}
		nf_device_list_free(&list);
	}
	assert_int_equal(seen, FLEET);
}

static void check_sorts(struct nf_store *s)
{
	struct nf_device_filter f = {ANY, .limit = 2};
	struct nf_device_list list;
	char err[512];

	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_string_equal(list.devices[0].key, "02:00:00:00:00:00");
	assert_string_equal(list.devices[0].tags, "lab");
	assert_int_equal(list.devices[0].state, NF_UPDATE_OFFERED);
	nf_device_list_free(&list);
	f.descending = true;
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_string_equal(list.devices[0].key, "02:00:00:00:00:1D");
	assert_string_equal(list.devices[1].key, "02:00:00:00:00:1C");
	nf_device_list_free(&list);
	f.sort = NF_SORT_DEVICE; /* TYPE2 first, then by id descending */
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_string_equal(list.devices[0].device, "TYPE2");
	assert_string_equal(list.devices[0].key, "02:00:00:00:00:1D");
	nf_device_list_free(&list);

	f = (struct nf_device_filter){ANY, .limit = NF_STORE_MAX_PAGE + 1};
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), -1);
	assert_non_null(strstr(err, "limit"));
	f = (struct nf_device_filter){.state = NF_UPDATE_COUNT};
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), -1);
	assert_non_null(strstr(err, "state"));
	f = (struct nf_device_filter){ANY, .sort = NF_SORT_COUNT};
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), -1);
}

void check_list(void **state)
{
	struct nf_store *s = make_fleet(url_of(state));
	char err[256];

	check_filters(s);
	check_pages(s);
	check_sorts(s);
	/* Tags: removed, unknown devices, bad names. */
	assert_int_equal(nf_store_tag(s, "02:00:00:00:00:01", "lab", false, err, sizeof err), 1);
	assert_int_equal(count(s, (struct nf_device_filter){ANY, .tag = "lab"}), 2);
	assert_int_equal(nf_store_tag(s, "02:00:00:00:00:ff", "lab", true, err, sizeof err), 0);
	assert_int_equal(nf_store_tag(s, "02:00:00:00:00:02", "no way", true, err, sizeof err), -1);
	assert_int_equal(nf_store_tag(s, "nonsense", "lab", true, err, sizeof err), -1);
	nf_store_close(s);
}

void check_summary(void **state)
{
	struct nf_store_options o = {.silent_ms = 60000};
	struct nf_store *s = store_check_open(url_of(state), &o);
	struct nf_fleet_summary sum;
	char mac[18], err[512];

	for (int i = 0; i < 9; i++) {
		snprintf(mac, sizeof mac, "02:00:00:00:01:%02x", i);
		struct nf_event e = store_check_event(mac, "10.1.0.1", "SONOFF", i < 6 ? "1.0" : "1.1",
		                                      STORE_T0 + i);
		if (i < 2)
			store_check_offer(&e, "1.1", "/fw/s.bin", NULL);
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	struct nf_event e = store_check_event(NULL, "10.1.0.2", "LIGHT", "2.0", STORE_T0);
	assert_int_equal(nf_store_post(s, &e), 0);
	e = store_check_download(NF_EVENT_DOWNLOAD_DONE, "02:00:00:00:01:01", "10.1.0.1",
	                         "/fw/s.bin", 9, 9, STORE_T0 + 100);
	store_check_post(s, &e);

	assert_int_equal(nf_store_summary(s, STORE_T0 + 3600000, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, 10);
	assert_int_equal(sum.seen_24h, 10);
	assert_int_equal(sum.count, 3);
	assert_false(sum.truncated);
	assert_string_equal(sum.rows[0].device, "SONOFF");
	assert_string_equal(sum.rows[0].version, "1.0");
	assert_int_equal(sum.rows[0].count, 6);
	assert_string_equal(sum.rows[1].version, "1.1");
	assert_int_equal(sum.rows[1].count, 3);
	assert_string_equal(sum.rows[2].device, "LIGHT");
	assert_int_equal(sum.rows[2].count, 1);
	assert_int_equal(sum.by_state[NF_UPDATE_NONE], 8);
	assert_int_equal(sum.by_state[NF_UPDATE_OFFERED], 1);
	assert_int_equal(sum.by_state[NF_UPDATE_SILENT], 1);
	assert_int_equal(sum.by_state[NF_UPDATE_DOWNLOADED], 0);
	nf_fleet_summary_free(&sum);
	assert_int_equal(nf_store_summary(s, STORE_T0 + 1000, &sum, err, sizeof err), 0);
	assert_int_equal(sum.by_state[NF_UPDATE_DOWNLOADED], 1);
	assert_int_equal(sum.by_state[NF_UPDATE_SILENT], 0);
	nf_fleet_summary_free(&sum);
	assert_int_equal(nf_store_summary(s, STORE_T0 + 25 * 3600000LL, &sum, err, sizeof err), 0);
	assert_int_equal(sum.seen_24h, 0);
	nf_fleet_summary_free(&sum);
	nf_store_close(s);
}

/* Open and close ------------------------------------------------------------------ */

void check_close_writes_all(void **state)
{
	/* The writer would sleep for a minute: only close writes these. */
	struct nf_store_options o = {.batch_ms = 60000, .batch_max = 10000,
	                             .queue_capacity = 10000};
	struct nf_store *s = store_check_open(url_of(state), &o);
	struct nf_store_stats st;
	struct nf_fleet_summary sum;
	char mac[18], err[512];

	for (unsigned i = 0; i < 5000; i++) {
		snprintf(mac, sizeof mac, "02:00:00:%02X:%02X:%02X", i >> 16, (i >> 8) & 0xff,
		         i & 0xff);
		struct nf_event e = store_check_event(mac, "10.2.0.1", "CLOSE", "1.0", STORE_T0 + i);
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	nf_store_stats(s, &st);
	assert_int_equal(st.posted, 5000);
	assert_int_equal(st.written, 0);
	assert_int_equal(st.depth, 5000);
	memset(&st, 0xff, sizeof st);
	nf_store_close_stats(s, &st); /* the counters as it closed: all written */
	assert_int_equal(st.written, 5000);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.depth, 0);

	s = store_check_open(url_of(state), NULL);
	assert_int_equal(nf_store_summary(s, STORE_T0, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, 5000);
	nf_fleet_summary_free(&sum);
	nf_store_close(s);
}

void check_migrate_old(void **state)
{
	struct nf_store_options o = {.migrate_to = 1};
	struct nf_store *s = store_check_open(url_of(state), &o);
	struct nf_event e = store_check_event(MAC1, "10.0.0.1", "SONOFF", "1.0", STORE_T0);
	char err[512];

	assert_int_equal(nf_store_schema(s), 1);
	/* Schema 1 has no tags yet. (The writer writes the newest schema's
	 * columns: a store is always migrated to it before it writes, so no
	 * event is posted here.) */
	assert_int_equal(nf_store_tag(s, KEY1, "old", true, err, sizeof err), -1);
	nf_store_close(s);

	s = store_check_open(url_of(state), NULL);
	assert_int_equal(nf_store_schema(s), NF_STORE_SCHEMA_VERSION);
	store_check_offer(&e, "1.1", "/fw/a.bin", NULL);
	store_check_post(s, &e);
	struct nf_device d = store_check_device(s, KEY1, STORE_T0, NULL, NULL);
	assert_int_equal(d.state, NF_UPDATE_OFFERED);
	assert_string_equal(d.target, "1.1");
	assert_int_equal(nf_store_tag(s, KEY1, "new", true, err, sizeof err), 1);
	nf_store_close(s);

	/* Opening again migrates nothing more; asking for less downgrades nothing. */
	s = store_check_open(url_of(state), &o);
	assert_int_equal(nf_store_schema(s), NF_STORE_SCHEMA_VERSION);
	nf_store_close(s);
}

/* A rollout's counts (issue 10): each device once, in the phase its rule
 * code names; a device offered again what it reverted counts as
 * reverted until it confirms; an offer older than silent_after is silent. */
void check_rollout_counts(void **state)
{
	struct nf_store *s = store_check_open(url_of(state), NULL);
	struct nf_rollout r = {.id = 7, .silent_ms = 1000, .nphases = 2, .phases = {10, 100}};
	static const char *const macs[] = {"02:00:00:00:00:01", "02:00:00:00:00:02",
	                                   "02:00:00:00:00:03", "02:00:00:00:00:04",
	                                   "02:00:00:00:00:05"};
	struct nf_rollout_counts c;
	char err[256];
	int64_t t = STORE_T0;

	for (int i = 0; i < 5; i++) {
		struct nf_event e = store_check_event(macs[i], "10.0.0.9", "SONOFF", "1.0", t);
		store_check_offer(&e, "2.0", "/releases/x.bin", NULL);
		e.rule = nf_rollout_rule(7, i < 2 ? 0 : 1);
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	/* 0: downloads, comes back on 1.0 and is offered it again: reverted. */
	struct nf_event d = store_check_download(NF_EVENT_DOWNLOAD_DONE, macs[0], "10.0.0.9",
	                                         "/releases/x.bin", 100, 100, t + 10);
	assert_int_equal(nf_store_post(s, &d), 0);
	struct nf_event again = store_check_event(macs[0], "10.0.0.9", "SONOFF", "1.0", t + 20);
	store_check_offer(&again, "2.0", "/releases/x.bin", NULL);
	again.rule = nf_rollout_rule(7, 0);
	assert_int_equal(nf_store_post(s, &again), 0);
	/* 1: confirms. 2: no longer offered before downloading: withdrawn. */
	struct nf_event ok = store_check_event(macs[1], "10.0.0.9", "SONOFF", "2.0", t + 30);
	assert_int_equal(nf_store_post(s, &ok), 0);
	struct nf_event off = store_check_event(macs[2], "10.0.0.9", "SONOFF", "1.0", t + 40);
	assert_int_equal(nf_store_post(s, &off), 0);
	/* 3: its download is cut: failed. 4: nothing since: pending, then silent. */
	d = store_check_download(NF_EVENT_DOWNLOAD_FAILED, macs[3], "10.0.0.9", "/releases/x.bin",
	                         10, 100, t + 50);
	assert_int_equal(nf_store_post(s, &d), 0);
	store_check_sync(s);

	assert_int_equal(nf_store_rollout_counts(s, &r, t + 500, &c, err, sizeof err), 0);
	assert_int_equal(c.offered_total, 5);
	assert_int_equal(c.offered[0], 2);
	assert_int_equal(c.offered[1], 3);
	assert_int_equal(c.phase[0][NF_RC_REVERTED], 1);
	assert_int_equal(c.phase[0][NF_RC_CONFIRMED], 1);
	assert_int_equal(c.phase[1][NF_RC_WITHDRAWN], 1);
	assert_int_equal(c.phase[1][NF_RC_FAILED], 1);
	assert_int_equal(c.phase[1][NF_RC_PENDING], 1);
	assert_int_equal(nf_store_rollout_counts(s, &r, t + 5000, &c, err, sizeof err), 0);
	assert_int_equal(c.total[NF_RC_SILENT], 1);
	assert_int_equal(c.total[NF_RC_PENDING], 0);
	/* Another rollout's codes are not counted. */
	r.id = 8;
	assert_int_equal(nf_store_rollout_counts(s, &r, t + 500, &c, err, sizeof err), 0);
	assert_int_equal(c.offered_total, 0);
	nf_store_close(s);
}

/* Adds a release of SONOFF at version; returns its id. */
static int64_t add_release(struct nf_store *s, const char *version)
{
	struct nf_release rel = {.created_ms = STORE_T0};
	char err[512];

	snprintf(rel.device, sizeof rel.device, "SONOFF");
	snprintf(rel.version, sizeof rel.version, "%s", version);
	snprintf(rel.fw.path, sizeof rel.fw.path, "/releases/%s.bin", version);
	assert_int_equal(nf_store_release_add(s, &rel, err, sizeof err), 1);
	return rel.id;
}

static void delete_release(struct nf_store *s, int64_t id)
{
	char unused[2][NF_STORE_MAX_IMAGE], err[512];
	int64_t rollout, pinned;

	assert_int_equal(nf_store_release_delete(s, id, unused, &rollout, &pinned, err, sizeof err),
	                 1);
}

/* A release id is never given again once the newest release is deleted
 * (schema 6: before it, SQLite gave the largest id plus one); the migration
 * keeps the releases there were, ids and all. */
void check_release_ids_never_reused(void **state)
{
	struct nf_store_options o = {.migrate_to = 5};
	struct nf_store *s = store_check_open(url_of(state), &o);
	int64_t a = add_release(s, "1.0"), b = add_release(s, "2.0");
	struct nf_release got;
	char err[512];

	assert_true(b > a);
	nf_store_close(s);

	s = store_check_open(url_of(state), NULL);
	assert_int_equal(nf_store_release_get(s, a, &got, err, sizeof err), 1);
	assert_string_equal(got.version, "1.0");
	assert_int_equal(nf_store_release_get(s, b, &got, err, sizeof err), 1);
	assert_string_equal(got.version, "2.0");
	delete_release(s, b);
	int64_t c = add_release(s, "3.0");
	assert_true(c > b);
	delete_release(s, c);
	assert_true(add_release(s, "4.0") > c);
	nf_store_close(s);
}

/* Refused writes are kept to the newest audit_keep_refused (and up to a
 * sixteenth more between prunings); every write that went through stays. */
void check_audit_refusals_bounded(void **state)
{
	struct nf_store_options o = {.audit_keep_refused = 32};
	struct nf_store *s = store_check_open(url_of(state), &o);
	struct nf_audit a = {0}, *list = NULL;
	size_t count = 0, refused = 0, ok = 0;
	int64_t newest_refused = 0;
	char err[512];

	for (int i = 0; i < 400; i++) {
		a.at_ms = STORE_T0 + i;
		a.status = i % 50 == 0 ? 200 : 403;
		snprintf(a.token, sizeof a.token, "reader");
		snprintf(a.action, sizeof a.action, "device.pin");
		snprintf(a.target, sizeof a.target, "write %d", i);
		snprintf(a.outcome, sizeof a.outcome, a.status == 200 ? "ok" : "the read role");
		assert_int_equal(nf_store_audit_add(s, &a, err, sizeof err), 0);
	}
	assert_int_equal(nf_store_audit_list(s, 0, 1000, &list, &count, err, sizeof err), 0);
	for (size_t i = 0; i < count; i++) {
		if (list[i].status == 200) {
			ok++;
			continue;
		}
		refused++;
		if (newest_refused == 0)
			newest_refused = list[i].at_ms;
	}
	assert_int_equal(ok, 8);
	assert_true(refused >= 32 && refused <= 32 + 32 / 16 + 1);
	assert_int_equal(newest_refused, STORE_T0 + 399);
	free(list);
	nf_store_close(s);
}
