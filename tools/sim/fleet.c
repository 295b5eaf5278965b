/*
 * fleet.c - `nofuss fleet`: a fleet of simulated ESP8266s (up to tens of
 * thousands) in one process against one NoFUSS server, to see a rollout
 * before real devices do: how long it takes, what the server holds up to,
 * which devices fail and why.
 *
 * Each device is the real device core (its own struct nf_client) on the
 * POSIX port with the memory flash (ports/posix/memflash.c): two firmware
 * slots and a filesystem kept as versions and MD5s, a bootloader with trial
 * boots, no files. A device costs about 1.6 KB while it sleeps.
 *
 * One thread, one event loop: epoll under libcurl's multi interface
 * (curl_multi_socket_action). The core is driven through its step API; each
 * GET it asks for is a transfer of the port (nf_posix_transfer_start/_end),
 * so the requests are byte for byte those of `nofuss device`: HTTP/1.0,
 * Connection: close, one connection per request. At most --concurrency
 * devices hold a transfer slot at once (an easy handle each, reused); the
 * others wait in a queue. Sleeping and rebooting devices wait in a timer
 * heap keyed by when they act next.
 *
 * A device's life: power-on (the bootloader boots slot a), a first check at
 * a random moment within --ramp, then one every --interval (+ a random
 * 0..--jitter). A check that installs an update ends with REBOOT: after
 * --reboot-delay the bootloader boots the new slot on trial, the firmware
 * confirms itself (or crashes, and the next boot reverts), and the device
 * checks again at once, reporting the version it now runs. The run ends
 * after --duration, or with --until-updated once every device has settled
 * (nothing more to install, or --give-up failures in a row), and always at
 * --timeout, which cuts what is still in flight.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "args.h"
#include "common.h"
#include "image.h"
#include "nofuss/posix.h"
#include "sim.h"

/* Limits and defaults. */
#define FLEET_DEVICES_MAX         100000ul /* designed for 10,000; each costs ~1.6 KB */
#define FLEET_DEVICES_DEFAULT     100ul
#define FLEET_CONCURRENCY_DEFAULT 256ul
#define FLEET_CONCURRENCY_MAX     20000ul /* one socket each: see the open-files check */
#define FLEET_NAMES_MAX           64u     /* device names in --device */
#define FLEET_NAMES_TEXT_MAX      2048u   /* the --device argument */
#define FLEET_TIME_MAX_S          (7.0 * 86400.0)
#define FLEET_REQUEST_MAX_S       3600.0
#define FLEET_INTERVAL_DEFAULT_MS 60000L
#define FLEET_DURATION_DEFAULT_MS 60000L
#define FLEET_TIMEOUT_DEFAULT_MS  600000L
#define FLEET_REBOOT_DEFAULT_MS   1000L
#define FLEET_PROGRESS_DEFAULT_MS 5000L
#define FLEET_TTY_REFRESH_MS      250L /* the status line on a terminal */
#define FLEET_GIVE_UP_DEFAULT     3ul
#define FLEET_GIVE_UP_MAX         100ul
#define FLEET_BOOTS_MAX           8u    /* boots in a row without a check: a boot loop */
#define FLEET_STEPS_MAX           8     /* core steps per transfer end; a check has 3 GETs */
#define FLEET_EVENTS_MAX          256   /* epoll events taken per wait */
#define FLEET_WAIT_MAX_MS         1000L /* longest sleep of the loop */
#define FLEET_FDS_SPARE           64ul  /* descriptors besides one socket per transfer */
#define FLEET_VERSIONS_MAX        32u   /* distinct versions in the summary; then "other" */
#define FLEET_PREFIX_MAX          24u   /* "[5C:CF:7F:00:00:01] " */
#define FLEET_MAC_MAX             0xFFFFFFFFFFFFull
#define FLEET_MAC_BASE_DEFAULT    "5C:CF:7F:00:00:00"
#define FLEET_FW_SIZE             (256u * 1024u) /* the provisioned images */
#define FLEET_FS_SIZE             (64u * 1024u)

/* Exit status (documented in usage() and docs/man/nofuss.1). */
#define FLEET_EXIT_FAILED 1
#define FLEET_EXIT_SETUP  3

/* Why a device failed: an enum nf_error, or one of these (what the
 * bootloader says about an update). */
#define FLEET_ERR_REVERTED  32 /* the new firmware did not confirm its trial boot */
#define FLEET_ERR_BRICKED   33 /* no slot holds a bootable firmware */
#define FLEET_ERR_BOOT_LOOP 34 /* FLEET_BOOTS_MAX boots without a check */
#define FLEET_ERRORS        35

enum phase {
	PH_BOOT = 0, /* in the heap: boots at due_ms */
	PH_SLEEP,    /* in the heap: checks at due_ms */
	PH_QUEUED,   /* due: waits for a transfer slot */
	PH_ACTIVE,   /* in a check, holding a slot */
	PH_DONE,     /* stopped */
};

enum result {
	RES_NONE = 0, /* no check finished since power-on or the last update */
	RES_UPTODATE, /* the last check went well and installed nothing */
	RES_FAILED,   /* the last check (or update) failed; error says why */
};

struct options {
	const char *server, *version, *fs_version, *build, *mac_base_text;
	char *names_text; /* a copy of --device; names point into it */
	const char *names[FLEET_NAMES_MAX];
	size_t nnames;
	unsigned long count, concurrency, give_up;
	unsigned long long mac_base;
	bool path_form, until_updated, json, quiet, verbose, duration_set;
	long interval_ms, jitter_ms, ramp_ms, duration_ms, timeout_ms, reboot_ms;
	long progress_ms, request_ms, connect_ms;
	unsigned long seed;
	bool seeded;
};

struct fleet;

struct device {
	struct nf_client client;
	struct nf_posix port;
	struct nf_posix_memflash flash;
	struct fleet *fleet;
	int64_t due_ms;      /* PH_BOOT, PH_SLEEP: when */
	uint8_t phase;       /* enum phase */
	uint8_t result;      /* enum result */
	uint8_t error;       /* RES_FAILED: enum nf_error or FLEET_ERR_* */
	uint8_t streak;      /* failures in a row */
	uint8_t boot_streak; /* boots since the last check */
	bool downloading;    /* this check began an image download */
	bool rebooting;      /* an update is committed: the next boot tells */
	bool updated;        /* installed an update and runs it */
	bool cut;            /* its check was cut by the end of the run */
};

/* A transfer slot: one easy handle, reused by one device after another. */
struct slot {
	CURL *easy;
	struct device *d; /* NULL when free */
	struct nf_posix_transfer t;
};

struct fleet {
	struct options o;
	struct device *dev;
	uint32_t *heap; /* device indices, a min-heap on due_ms */
	size_t heap_len;
	uint32_t *queue; /* a ring of device indices */
	size_t q_head, q_len;
	struct slot *slots;
	uint32_t *free_slots;
	size_t nfree, active;
	size_t ready; /* devices set up (nf_posix_init done) */
	CURLM *multi;
	int ep;
	int64_t curl_due; /* when libcurl wants its timeout action, -1 never */
	int64_t t0, now, deadline, stop_at, end;
	bool stopping, timed_out, interrupted;
	uint64_t rng;
	char *prefixes; /* --verbose: each device's console prefix */
	/* Counters. */
	unsigned long checks, checks_failed, transfers, boots, reverts, crashes, installs, cut;
	unsigned long long bytes;
	unsigned long check_errors[FLEET_ERRORS];
	/* Progress. */
	FILE *out;
	bool tty, status_shown;
	int64_t next_progress; /* -1: no progress output */
};

static volatile sig_atomic_t stop_signal;

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss fleet --server URL --device NAME --version VERSION [OPTION]...\n"
	        "Run many simulated ESP8266s (the real device core, a flash in memory) in one\n"
	        "process against one NoFUSS server: each checks, downloads and verifies its\n"
	        "images, reboots into the new firmware and checks again, as a device does.\n\n"
	        "Devices:\n"
	        "  -s, --server URL         NoFUSS server, e.g. http://127.0.0.1:8080/\n"
	        "  -n, --devices N          how many (default 100; at most 100000)\n"
	        "  -d, --device NAME[,NAME...]  device name; with several, device i is\n"
	        "                           the (i mod count)th\n"
	        "      --version VERSION    firmware every device runs at power-on\n"
	        "      --fs-version VERSION its filesystem (default: the firmware's)\n"
	        "  -m, --mac-base MAC       device i has MAC base + i (default\n"
	        "                           " FLEET_MAC_BASE_DEFAULT ")\n"
	        "  -b, --build BUILD        build reported in header-form checks\n"
	        "  -p, --path-form          check with GET URL/DEVICE/VERSION (v1.0 servers)\n"
	        "Timing (seconds, decimals allowed):\n"
	        "  -r, --ramp SEC           first checks spread at random over SEC (default 0)\n"
	        "  -i, --interval SEC       time between checks (default 60)\n"
	        "  -j, --jitter SEC         add a random 0..SEC to each interval (default 0)\n"
	        "      --reboot-delay SEC   a reboot takes SEC before the next check (default 1)\n"
	        "      --duration SEC       start no check after SEC (default 60; none with\n"
	        "                           --until-updated); checks in flight finish\n"
	        "  -u, --until-updated      stop once every device has settled: its last\n"
	        "                           check found nothing to install, or it failed\n"
	        "                           --give-up checks (or updates) in a row\n"
	        "      --give-up N          see --until-updated (default 3)\n"
	        "      --timeout SEC        hard limit on the whole run; transfers in flight\n"
	        "                           are cut (default 600)\n"
	        "      --request-timeout SEC  one HTTP request (default 30)\n"
	        "      --connect-timeout SEC  TCP connect (default 5)\n"
	        "Load:\n"
	        "  -c, --concurrency N      devices in a transfer at once (default 256)\n"
	        "      --seed N             random seed for ramp and jitter (default: time)\n"
	        "Output:\n"
	        "      --progress SEC       a progress line every SEC when not on a terminal\n"
	        "                           (default 5; 0: none); a terminal gets one status\n"
	        "                           line, redrawn\n"
	        "      --json               the summary as JSON on stdout (progress goes to\n"
	        "                           stderr)\n"
	        "  -q, --quiet              no progress\n"
	        "  -v, --verbose            each device's updates, errors and reboots on stderr\n"
	        "  -h, --help               show this help and exit\n\n"
	        "Exit status: 0 no device failed; 1 some device failed (its last check or\n"
	        "update), or with --until-updated the run ended (--timeout, --duration, a\n"
	        "signal) before every device settled; 2 bad usage; 3 cannot run (memory, open\n"
	        "files, libcurl).\n");
}

/* ---- time, randomness, output ---- */

/* xorshift64*: ramp and jitter only; reproducible with --seed. */
static uint64_t rnd(struct fleet *f)
{
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 2685821657736338717ull;
}

/* A random 0..max (milliseconds). */
static long rnd_ms(struct fleet *f, long max)
{
	return max > 0 ? (long)(rnd(f) % (uint64_t)(max + 1)) : 0;
}

static void clear_status(struct fleet *f)
{
	if (f->status_shown) {
		fputs("\r\033[K", f->out);
		fflush(f->out);
		f->status_shown = false;
	}
}

/* --verbose: one line about device d on stderr. */
static void say(struct device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct device *d, const char *fmt, ...)
{
	struct fleet *f = d->fleet;
	va_list ap;

	if (!f->o.verbose)
		return;
	clear_status(f);
	fprintf(stderr, "[%s] %s %s: ", d->port.sta_mac, d->client.device, d->client.version);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char *error_text(int err)
{
	switch (err) {
	case FLEET_ERR_REVERTED: return "new firmware did not confirm its trial boot (reverted)";
	case FLEET_ERR_BRICKED: return "no bootable firmware (bricked)";
	case FLEET_ERR_BOOT_LOOP: return "boot loop: no check after repeated boots";
	default: return nf_strerror((enum nf_error)err);
	}
}

/* ---- the timer heap and the queue ---- */

static bool earlier(const struct fleet *f, uint32_t a, uint32_t b)
{
	return f->dev[a].due_ms < f->dev[b].due_ms;
}

static void heap_push(struct fleet *f, uint32_t i)
{
	size_t k = f->heap_len++;

	while (k > 0) {
		size_t parent = (k - 1) / 2;
		if (!earlier(f, i, f->heap[parent]))
			break;
		f->heap[k] = f->heap[parent];
		k = parent;
	}
	f->heap[k] = i;
}

static uint32_t heap_pop(struct fleet *f)
{
	uint32_t top = f->heap[0], last = f->heap[--f->heap_len];
	size_t k = 0, n = f->heap_len;

	if (n == 0)
		return top;
	for (;;) {
		size_t c = 2 * k + 1;
		if (c >= n)
			break;
		if (c + 1 < n && earlier(f, f->heap[c + 1], f->heap[c]))
			c++;
		if (!earlier(f, f->heap[c], last))
			break;
		f->heap[k] = f->heap[c];
		k = c;
	}
	f->heap[k] = last;
	return top;
}

static uint32_t index_of(const struct fleet *f, const struct device *d)
{
	return (uint32_t)(d - f->dev);
}

/* Puts d in the heap to boot (PH_BOOT) or check (PH_SLEEP) at due. */
static void schedule(struct fleet *f, struct device *d, enum phase ph, int64_t due)
{
	d->phase = (uint8_t)ph;
	d->due_ms = due;
	heap_push(f, index_of(f, d));
}

static void enqueue(struct fleet *f, struct device *d)
{
	d->phase = PH_QUEUED;
	f->queue[(f->q_head + f->q_len) % f->o.count] = index_of(f, d);
	f->q_len++;
}

static struct device *dequeue(struct fleet *f)
{
	struct device *d = &f->dev[f->queue[f->q_head]];

	f->q_head = (f->q_head + 1) % f->o.count;
	f->q_len--;
	return d;
}

/* ---- a device: boot, checks, results ---- */

static void on_message(void *ctx, const struct nf_client *c, enum nf_message msg)
{
	struct device *d = ctx;
	enum nf_error err = nf_client_last_error(c);

	switch (msg) {
	case NF_MSG_UPDATING:
		d->downloading = true;
		say(d, "UPDATING to %s", nf_client_offered_version(c));
		break;
	case NF_MSG_FILESYSTEM_UPDATED: say(d, "FILESYSTEM_UPDATED"); break;
	case NF_MSG_FIRMWARE_UPDATED: say(d, "FIRMWARE_UPDATED"); break;
	case NF_MSG_NO_RESPONSE_ERROR: say(d, "NO_RESPONSE_ERROR: %s", nf_strerror(err)); break;
	case NF_MSG_PARSE_ERROR: say(d, "PARSE_ERROR: %s", nf_strerror(err)); break;
	case NF_MSG_FILESYSTEM_UPDATE_ERROR:
		say(d, "FILESYSTEM_UPDATE_ERROR: %s", nf_strerror(err));
		break;
	case NF_MSG_FIRMWARE_UPDATE_ERROR:
		say(d, "FIRMWARE_UPDATE_ERROR: %s", nf_strerror(err));
		break;
	default: break;
	}
}

/* What a device does at power-on: the NoFUSS client's setup with the
 * version the firmware carries. */
static void setup_client(struct fleet *f, struct device *d, const char *version)
{
	const struct options *o = &f->o;
	struct nf_client *c = &d->client;

	/* Every value was checked to fit when the options were read. */
	nf_client_init(c, &d->port);
	nf_client_on_message(c, on_message, d);
	nf_client_set_path_form(c, o->path_form);
	nf_client_set_server(c, o->server);
	nf_client_set_device(c, o->names[index_of(f, d) % o->nnames]);
	nf_client_set_mac(c, d->port.sta_mac);
	nf_client_set_build(c, o->build != NULL ? o->build : "");
	nf_client_set_version(c, version);
}

static bool settled(const struct fleet *f, const struct device *d)
{
	return d->result == RES_UPTODATE || (d->result == RES_FAILED && d->streak >= f->o.give_up);
}

static void set_failed(struct device *d, int err)
{
	d->result = RES_FAILED;
	d->error = (uint8_t)err;
	if (d->streak < UINT8_MAX)
		d->streak++;
}

/* After a check (or a boot): the next check at due, or nothing more. */
static void next_check(struct fleet *f, struct device *d, int64_t due)
{
	if (f->stopping || (f->o.until_updated && settled(f, d))) {
		d->phase = PH_DONE;
		return;
	}
	schedule(f, d, PH_SLEEP, due);
}

/* The bootloader and the firmware's start-up; then a check at check_at. */
static void boot(struct fleet *f, struct device *d, int64_t check_at)
{
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	f->boots++;
	if (++d->boot_streak > FLEET_BOOTS_MAX) {
		say(d, "%u boots without a check: boot loop, giving up", FLEET_BOOTS_MAX);
		set_failed(d, FLEET_ERR_BOOT_LOOP);
		d->phase = PH_DONE;
		return;
	}
	if (nf_posix_memflash_boot(&d->flash, &b, err, sizeof err) != 0) {
		say(d, "bricked: %s", err);
		set_failed(d, FLEET_ERR_BRICKED);
		d->phase = PH_DONE;
		return;
	}
	if (b.how == NF_POSIX_BOOT_REVERTED || b.how == NF_POSIX_BOOT_FALLBACK) {
		f->reverts++;
		say(d, "boot: %s: booting slot %s", b.why, nf_posix_slot_name(b.slot));
	}
	if (b.firmware.flags & NF_POSIX_IMAGE_CRASH) {
		f->crashes++;
		say(d, "boot: firmware %s crashed at boot (simulated)", b.firmware.version);
		if (f->stopping)
			d->phase = PH_DONE;
		else
			schedule(f, d, PH_BOOT, f->now + f->o.reboot_ms);
		return;
	}
	nf_posix_memflash_confirm(&d->flash);
	setup_client(f, d, b.firmware.version);
	if (d->rebooting) {
		d->rebooting = false;
		if (b.how == NF_POSIX_BOOT_REVERTED) {
			set_failed(d, FLEET_ERR_REVERTED);
		} else {
			f->installs++;
			d->updated = true;
			d->streak = 0;
			say(d, "boot: running the update (slot %s, filesystem %s)",
			    nf_posix_slot_name(b.slot), b.fs_valid ? b.fs.version : "invalid");
		}
	}
	next_check(f, d, check_at);
}

/* A check is over; the slot is free again. */
static void check_done(struct fleet *f, struct slot *s, bool reboot)
{
	struct device *d = s->d;
	enum nf_error err = nf_client_last_error(&d->client);

	s->d = NULL;
	f->free_slots[f->nfree++] = (uint32_t)(s - f->slots);
	f->active--;
	nf_posix_release(&d->port); /* nothing held while it sleeps */
	d->boot_streak = 0;
	d->downloading = false;
	f->checks++;
	if (reboot) {
		say(d, "RESET: rebooting into the update");
		d->rebooting = true;
		d->result = RES_NONE;
		schedule(f, d, PH_BOOT, f->now + f->o.reboot_ms);
		return;
	}
	if (err != NF_OK) {
		f->checks_failed++;
		f->check_errors[err < FLEET_ERR_REVERTED ? err : 0]++;
		set_failed(d, err);
	} else {
		d->result = RES_UPTODATE;
		d->streak = 0;
	}
	next_check(f, d, f->now + f->o.interval_ms + rnd_ms(f, f->o.jitter_ms));
}

/* Moves the device in slot s on: its next GET, or the end of its check. */
static void advance(struct fleet *f, struct slot *s)
{
	struct device *d = s->d;

	for (int step = 0; step < FLEET_STEPS_MAX; step++) {
		switch (nf_client_next(&d->client)) {
		case NF_ACTION_HTTP_GET:
			/* A failed start has ended the response: ask again. */
			if (nf_posix_transfer_start(&s->t, s->easy, &d->port,
			                            nf_client_request(&d->client), &d->client) != 0)
				continue;
			curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
			if (curl_multi_add_handle(f->multi, s->easy) != CURLM_OK) {
				nf_posix_transfer_end(&s->t, s->easy, CURLE_FAILED_INIT);
				continue;
			}
			return;
		case NF_ACTION_REBOOT: check_done(f, s, true); return;
		default: check_done(f, s, false); return;
		}
	}
	check_done(f, s, false); /* a core that never ends its check: cannot happen */
}

/* Starts the checks of queued devices while slots are free. */
static void start_checks(struct fleet *f)
{
	while (f->nfree > 0 && f->q_len > 0) {
		struct device *d = dequeue(f);
		struct slot *s = &f->slots[f->free_slots[--f->nfree]];

		s->d = d;
		f->active++;
		d->phase = PH_ACTIVE;
		nf_client_begin(&d->client);
		advance(f, s);
	}
}

/* Boots and queues the devices whose time has come. */
static void fire_timers(struct fleet *f)
{
	/* A boot may schedule the device again at once (a crash with no
	 * --reboot-delay); the guard bounds the pass anyway. */
	for (size_t guard = 0; f->heap_len > 0 && guard < 4 * f->o.count + 16; guard++) {
		struct device *d = &f->dev[f->heap[0]];
		if (d->due_ms > f->now)
			break;
		heap_pop(f);
		if (d->phase == PH_BOOT)
			boot(f, d, f->now);
		else
			enqueue(f, d);
	}
}

/* --duration is over: no new check. Reboots due are done now, so that the
 * summary shows what each device runs; checks in flight finish. */
static void begin_stop(struct fleet *f)
{
	f->stopping = true;
	for (size_t guard = 0; f->heap_len > 0 && guard < 4 * f->o.count + 16; guard++) {
		struct device *d = &f->dev[heap_pop(f)];
		if (d->phase == PH_BOOT)
			boot(f, d, f->now);
		else
			d->phase = PH_DONE;
	}
	while (f->q_len > 0)
		dequeue(f)->phase = PH_DONE;
}

/* The end (--timeout, a signal): cuts every transfer in flight. */
static void cut_all(struct fleet *f)
{
	for (size_t i = 0; i < f->o.concurrency; i++) {
		struct slot *s = &f->slots[i];
		if (s->d == NULL)
			continue;
		curl_multi_remove_handle(f->multi, s->easy);
		nf_posix_transfer_end(&s->t, s->easy, CURLE_OPERATION_TIMEDOUT);
		s->d->cut = true;
		s->d->phase = PH_DONE;
		nf_posix_release(&s->d->port);
		s->d = NULL;
		f->active--;
		f->cut++;
	}
}

/* ---- libcurl's multi interface on epoll ---- */

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct fleet *f = userp;
	struct epoll_event ev;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (socketp != NULL) {
			epoll_ctl(f->ep, EPOLL_CTL_DEL, fd, NULL); /* may be closed already */
			curl_multi_assign(f->multi, fd, NULL);
		}
		return 0;
	}
	memset(&ev, 0, sizeof ev);
	ev.events =
	    ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
	ev.data.fd = fd;
	if (socketp != NULL) {
		if (epoll_ctl(f->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
			return 0;
	}
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) != 0 &&
	    (errno != EEXIST || epoll_ctl(f->ep, EPOLL_CTL_MOD, fd, &ev) != 0))
		return -1;                  /* libcurl fails this transfer */
	curl_multi_assign(f->multi, fd, f); /* any non-NULL: "registered" */
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct fleet *f = userp;

	(void)multi;
	f->curl_due = timeout_ms < 0 ? -1 : (int64_t)nf_clock_ms() + timeout_ms;
	return 0;
}

/* Ends the transfers libcurl has finished and moves their devices on. */
static void reap(struct fleet *f)
{
	CURLMsg *msg;
	int left;

	/* Each finished transfer is reported once: bounded. */
	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode res = msg->data.result;
		char *priv = NULL;
		struct slot *s;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		s = (struct slot *)(void *)priv;
		curl_multi_remove_handle(f->multi, easy); /* msg is gone from here on */
		if (s == NULL || s->d == NULL)
			continue;
		f->transfers++;
		f->bytes += s->t.body;
		nf_posix_transfer_end(&s->t, easy, (int)res);
		advance(f, s);
	}
}

static long min_wait(long wait, int64_t due, int64_t now)
{
	if (due < 0)
		return wait;
	if (due <= now)
		return 0;
	return due - now < wait ? (long)(due - now) : wait;
}

/* ---- progress and summary ---- */

struct versions {
	size_t n;
	char name[FLEET_VERSIONS_MAX][NF_POSIX_IMAGE_FIELD];
	unsigned long count[FLEET_VERSIONS_MAX];
	unsigned long other;
};

struct tally {
	unsigned long uptodate, failed, unfinished, updated, updating;
	unsigned long unsettled; /* --until-updated: devices that did not settle */
	unsigned long failed_by[FLEET_ERRORS];
	struct versions fw, fs;
};

static void count_version(struct versions *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->name[i], name) == 0) {
			v->count[i]++;
			return;
		}
	}
	if (v->n == FLEET_VERSIONS_MAX) {
		v->other++;
		return;
	}
	snprintf(v->name[v->n], sizeof v->name[v->n], "%s", name);
	v->count[v->n++] = 1;
}

/* Counts the devices by state; versions too when full. */
static void tally(const struct fleet *f, struct tally *t, bool full)
{
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < f->o.count; i++) {
		const struct device *d = &f->dev[i];
		if (d->cut)
			t->unfinished++; /* its last check did not end */
		else if (d->result == RES_UPTODATE)
			t->uptodate++;
		else if (d->result == RES_FAILED) {
			t->failed++;
			t->failed_by[d->error < FLEET_ERRORS ? d->error : 0]++;
		} else
			t->unfinished++;
		if (d->updated)
			t->updated++;
		if (d->cut || !settled(f, d))
			t->unsettled++;
		if ((d->phase == PH_ACTIVE && d->downloading) || d->rebooting)
			t->updating++;
		if (full) {
			/* What the device reports: the version of the firmware it
			 * booted last, and the filesystem it would mount. */
			count_version(&t->fw, d->client.version);
			count_version(&t->fs, d->flash.fs.status == NF_POSIX_MEM_VALID
			                          ? d->flash.fs.version
			                          : "invalid");
		}
	}
}

static void progress(struct fleet *f, bool force)
{
	struct tally t;

	if (f->next_progress < 0 || (!force && f->now < f->next_progress))
		return;
	f->next_progress = f->now + (f->tty ? FLEET_TTY_REFRESH_MS : f->o.progress_ms);
	tally(f, &t, false);
	fprintf(f->out,
	        "%s[fleet] %.1fs  checks %lu | up to date %lu | updating %lu | updated %lu | "
	        "failed %lu | in flight %zu | queued %zu%s",
	        f->tty ? "\r" : "", (double)(f->now - f->t0) / 1000.0, f->checks, t.uptodate,
	        t.updating, t.updated, t.failed, f->active, f->q_len, f->tty ? "\033[K" : "\n");
	fflush(f->out);
	f->status_shown = f->tty;
}

static void print_versions(const char *what, const struct versions *v)
{
	printf("  %-12s", what);
	for (size_t i = 0; i < v->n; i++)
		printf("%s%s: %lu", i > 0 ? ", " : "", v->name[i], v->count[i]);
	if (v->other > 0)
		printf(", other: %lu", v->other);
	printf("\n");
}

static void print_text(const struct fleet *f, const struct tally *t, double secs)
{
	printf("nofuss fleet: %lu devices against %s: %.2f s%s\n", f->o.count, f->o.server, secs,
	       f->timed_out     ? " (stopped by --timeout)"
	       : f->interrupted ? " (stopped by a signal)"
	                        : "");
	printf("  %-12s%lu\n", "updated", t->updated);
	printf("  %-12s%lu\n", "up to date", t->uptodate);
	printf("  %-12s%lu\n", "failed", t->failed);
	for (int e = 0; e < FLEET_ERRORS; e++)
		if (t->failed_by[e] > 0)
			printf("  %12s%lu  %s\n", "", t->failed_by[e], error_text(e));
	printf("  %-12s%lu%s\n", "unfinished", t->unfinished,
	       f->cut > 0 ? "  (some checks cut at the end)" : "");
	printf("  %-12s%lu  %.1f checks/s, %lu failed\n", "checks", f->checks,
	       secs > 0 ? (double)f->checks / secs : 0.0, f->checks_failed);
	printf("  %-12s%llu bytes in %lu transfers\n", "downloaded", f->bytes, f->transfers);
	printf("  %-12s%lu  %lu reverted or fell back, %lu crashed\n", "boots", f->boots,
	       f->reverts, f->crashes);
	print_versions("firmware", &t->fw);
	print_versions("filesystem", &t->fs);
}

/* Sets key in obj to a new value; false when out of memory. */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static json_t *versions_json(const struct versions *v)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	for (size_t i = 0; ok && i < v->n; i++)
		ok = put(o, v->name[i], json_integer((json_int_t)v->count[i]));
	if (ok && v->other > 0)
		ok = put(o, "other", json_integer((json_int_t)v->other));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *errors_json(const unsigned long *by)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	for (int e = 0; ok && e < FLEET_ERRORS; e++)
		if (by[e] > 0)
			ok = put(o, error_text(e), json_integer((json_int_t)by[e]));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json(const struct fleet *f, const struct tally *t, double secs)
{
	json_t *o = json_object();
	bool ok = o != NULL;
	int rc = -1;

#define PUT_INT(k, v) (ok = ok && put(o, k, json_integer((json_int_t)(v))))
	ok = ok && put(o, "server", json_string(f->o.server));
	PUT_INT("devices", f->o.count);
	PUT_INT("bytes_per_device", sizeof(struct device)); /* while it sleeps */
	ok = ok && put(o, "seconds", json_real(secs));
	ok = ok && put(o, "timed_out", json_boolean(f->timed_out));
	ok = ok && put(o, "interrupted", json_boolean(f->interrupted));
	PUT_INT("updated", t->updated);
	PUT_INT("up_to_date", t->uptodate);
	PUT_INT("failed", t->failed);
	ok = ok && put(o, "failed_by_error", errors_json(t->failed_by));
	PUT_INT("unfinished", t->unfinished);
	PUT_INT("checks", f->checks);
	PUT_INT("checks_failed", f->checks_failed);
	ok = ok && put(o, "check_errors", errors_json(f->check_errors));
	ok = ok && put(o, "checks_per_s", json_real(secs > 0 ? (double)f->checks / secs : 0.0));
	PUT_INT("transfers", f->transfers);
	PUT_INT("transfers_cut", f->cut);
	PUT_INT("bytes_downloaded", f->bytes);
	PUT_INT("updates_installed", f->installs);
	PUT_INT("boots", f->boots);
	PUT_INT("reverted", f->reverts);
	PUT_INT("crashes", f->crashes);
	ok = ok && put(o, "firmware_versions", versions_json(&t->fw));
	ok = ok && put(o, "filesystem_versions", versions_json(&t->fs));
#undef PUT_INT
	if (!ok) {
		nf_tool_error("out of memory making the JSON summary");
		goto done;
	}
	if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
		nf_tool_error("cannot write the JSON summary");
		goto done;
	}
	printf("\n");
	rc = 0;
done:
	json_decref(o);
	return rc;
}

/* ---- options ---- */

/* A name the simulator accepts: 1 to 31 printable characters, no space,
 * '/' or ','. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= NF_CLIENT_FIELD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == ',')
			return false;
	return true;
}

static int set_names(void *opts, const char *text)
{
	struct options *o = opts;
	char *save = NULL, *tok;

	if (strlen(text) >= FLEET_NAMES_TEXT_MAX) {
		nf_tool_error("--device: longer than %u characters", FLEET_NAMES_TEXT_MAX - 1);
		return -1;
	}
	free(o->names_text);
	o->names_text = strdup(text);
	o->nnames = 0;
	if (o->names_text == NULL) {
		nf_tool_error("out of memory");
		return -1;
	}
	for (tok = strtok_r(o->names_text, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!name_ok(tok)) {
			nf_tool_error("--device: '%s' is not 1 to %d printable characters without "
			              "spaces, '/' or ','",
			              tok, NF_CLIENT_FIELD_MAX - 1);
			return -1;
		}
		if (o->nnames == FLEET_NAMES_MAX) {
			nf_tool_error("--device: more than %u names", FLEET_NAMES_MAX);
			return -1;
		}
		o->names[o->nnames++] = tok;
	}
	if (o->nnames == 0) {
		nf_tool_error("--device: no name in '%s'", text);
		return -1;
	}
	return 0;
}

static int parse_mac(const char *text, unsigned long long *out)
{
	unsigned long long v = 0;

	if (strlen(text) != 17)
		goto bad;
	for (int i = 0; i < 6; i++) {
		unsigned char byte;
		if (nf_hex_decode(text + 3 * i, &byte, 1) != 0 || (i < 5 && text[3 * i + 2] != ':'))
			goto bad;
		v = v << 8 | byte;
	}
	*out = v;
	return 0;
bad:
	nf_tool_error("--mac-base: '%s' is not six hex pairs separated by colons", text);
	return -1;
}

static void format_mac(unsigned long long v, char out[18])
{
	snprintf(out, 18, "%02X:%02X:%02X:%02X:%02X:%02X", (unsigned)(v >> 40) & 0xFF,
	         (unsigned)(v >> 32) & 0xFF, (unsigned)(v >> 24) & 0xFF, (unsigned)(v >> 16) & 0xFF,
	         (unsigned)(v >> 8) & 0xFF, (unsigned)v & 0xFF);
}

static int set_duration(void *opts, const char *value)
{
	struct options *o = opts;

	o->duration_set = true;
	return nf_parse_seconds("--duration", value, 0, FLEET_TIME_MAX_S, &o->duration_ms);
}

static int set_seed(void *opts, const char *value)
{
	struct options *o = opts;

	o->seeded = true;
	return nf_parse_count("--seed", value, 0, 4294967295ul, &o->seed);
}

#define O struct options
static const struct nf_opt opts[] = {
    NF_OPT_STRING("server", 's', O, server),
    NF_OPT_COUNT("devices", 'n', O, count, 1, FLEET_DEVICES_MAX),
    NF_OPT_CALL("device", 'd', NF_OPT_CALL, set_names),
    NF_OPT_STRING("version", 0, O, version),
    NF_OPT_STRING("fs-version", 0, O, fs_version),
    NF_OPT_STRING("mac-base", 'm', O, mac_base_text),
    NF_OPT_STRING("build", 'b', O, build),
    NF_OPT_FLAG("path-form", 'p', O, path_form),
    NF_OPT_SECONDS("ramp", 'r', O, ramp_ms, 0, FLEET_TIME_MAX_S),
    NF_OPT_SECONDS("interval", 'i', O, interval_ms, 0, FLEET_TIME_MAX_S),
    NF_OPT_SECONDS("jitter", 'j', O, jitter_ms, 0, FLEET_TIME_MAX_S),
    NF_OPT_SECONDS("reboot-delay", 0, O, reboot_ms, 0, FLEET_TIME_MAX_S),
    NF_OPT_CALL("duration", 0, NF_OPT_CALL, set_duration),
    NF_OPT_FLAG("until-updated", 'u', O, until_updated),
    NF_OPT_COUNT("give-up", 0, O, give_up, 1, FLEET_GIVE_UP_MAX),
    NF_OPT_SECONDS("timeout", 0, O, timeout_ms, 0.001, FLEET_TIME_MAX_S),
    NF_OPT_SECONDS("request-timeout", 0, O, request_ms, 0.001, FLEET_REQUEST_MAX_S),
    NF_OPT_SECONDS("connect-timeout", 0, O, connect_ms, 0.001, FLEET_REQUEST_MAX_S),
    NF_OPT_COUNT("concurrency", 'c', O, concurrency, 1, FLEET_CONCURRENCY_MAX),
    NF_OPT_CALL("seed", 0, NF_OPT_CALL, set_seed),
    NF_OPT_SECONDS("progress", 0, O, progress_ms, 0, FLEET_TIME_MAX_S),
    NF_OPT_FLAG("json", 0, O, json),
    NF_OPT_FLAG("quiet", 'q', O, quiet),
    NF_OPT_FLAG("verbose", 'v', O, verbose),
    NF_OPT_END,
};
#undef O

/* Returns 0, 1 after --help, -1 on bad usage (printed). */
static int parse_options(struct options *o, int argc, char *argv[])
{
	int rc;

	o->count = FLEET_DEVICES_DEFAULT;
	o->concurrency = FLEET_CONCURRENCY_DEFAULT;
	o->give_up = FLEET_GIVE_UP_DEFAULT;
	o->interval_ms = FLEET_INTERVAL_DEFAULT_MS;
	o->duration_ms = FLEET_DURATION_DEFAULT_MS;
	o->timeout_ms = FLEET_TIMEOUT_DEFAULT_MS;
	o->reboot_ms = FLEET_REBOOT_DEFAULT_MS;
	o->progress_ms = FLEET_PROGRESS_DEFAULT_MS;
	o->request_ms = NF_POSIX_TIMEOUT_MS_DEFAULT;
	o->connect_ms = NF_POSIX_CONNECT_TIMEOUT_MS_DEFAULT;
	o->mac_base_text = FLEET_MAC_BASE_DEFAULT;
	rc = nf_opts_parse(opts, o, usage, argc, argv);
	if (rc != 0)
		return rc;
	if (nf_opts_no_operands(argc, argv) != 0)
		return -1;
	if (o->server == NULL || o->nnames == 0 || o->version == NULL) {
		nf_tool_error("--server, --device and --version are required (see --help)");
		return -1;
	}
	if (strlen(o->server) >= NF_CLIENT_URL_MAX) {
		nf_tool_error("--server: longer than %d characters", NF_CLIENT_URL_MAX - 1);
		return -1;
	}
	if (o->build != NULL && strlen(o->build) >= NF_CLIENT_FIELD_MAX) {
		nf_tool_error("--build: longer than %d characters", NF_CLIENT_FIELD_MAX - 1);
		return -1;
	}
	if (parse_mac(o->mac_base_text, &o->mac_base) != 0)
		return -1;
	if (o->mac_base + (o->count - 1) > FLEET_MAC_MAX) {
		nf_tool_error("--mac-base %s: %lu devices go past FF:FF:FF:FF:FF:FF", o->mac_base_text,
		              o->count);
		return -1;
	}
	if (o->until_updated && !o->duration_set)
		o->duration_ms = -1; /* until settled, or --timeout */
	if (o->concurrency > o->count)
		o->concurrency = o->count;
	return 0;
}

/* ---- setting up and tearing down ---- */

/* As many open files as the sockets need, within the hard limit. */
static int raise_files(unsigned long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0; /* let the sockets fail if it comes to that */
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rl.rlim_cur =
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		nf_tool_error("--concurrency %lu needs %lu open files; the limit is %llu "
		              "(ulimit -n; lower --concurrency)",
		              need - FLEET_FDS_SPARE, need, (unsigned long long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

/* The flash every device starts with: --version in slot a, --fs-version
 * in the filesystem. Returns 0 or an exit status. */
static int provision(const struct options *o, struct nf_posix_memflash *m)
{
	const struct nf_posix_geometry g = {.slot_size = NF_POSIX_SLOT_SIZE_DEFAULT,
	                                    .fs_size = NF_POSIX_FS_SIZE_DEFAULT,
	                                    .chip_size = NF_POSIX_CHIP_SIZE_DEFAULT};
	uint8_t *fw, *fs = NULL;
	char err[NF_POSIX_ERR_MAX];
	int rc = NF_EXIT_USAGE;

	fw = nf_tool_make_image(NF_IMAGE_FIRMWARE, o->version, o->names[0], FLEET_FW_SIZE);
	if (fw == NULL)
		goto done;
	fs = nf_tool_make_image(NF_IMAGE_FILESYSTEM, o->fs_version ? o->fs_version : o->version, "",
	                        FLEET_FS_SIZE);
	if (fs == NULL)
		goto done;
	if (nf_posix_memflash_provision(m, &g, fw, FLEET_FW_SIZE, fs, FLEET_FS_SIZE, err,
	                                sizeof err) != 0) {
		nf_tool_error("cannot provision: %s", err);
		rc = FLEET_EXIT_SETUP;
		goto done;
	}
	rc = 0;
done:
	free(fw);
	free(fs);
	return rc;
}

/* Allocates everything; returns 0 or an exit status (printed). */
static int setup(struct fleet *f)
{
	const struct options *o = &f->o;
	struct nf_posix_memflash template;
	int rc;

	rc = provision(o, &template);
	if (rc != 0)
		return rc;
	if (raise_files(o->concurrency + FLEET_FDS_SPARE) != 0)
		return FLEET_EXIT_SETUP;
	f->dev = calloc(o->count, sizeof *f->dev);
	f->heap = calloc(o->count, sizeof *f->heap);
	f->queue = calloc(o->count, sizeof *f->queue);
	f->slots = calloc(o->concurrency, sizeof *f->slots);
	f->free_slots = calloc(o->concurrency, sizeof *f->free_slots);
	if (o->verbose)
		f->prefixes = calloc(o->count, FLEET_PREFIX_MAX);
	if (f->dev == NULL || f->heap == NULL || f->queue == NULL || f->slots == NULL ||
	    f->free_slots == NULL || (o->verbose && f->prefixes == NULL)) {
		nf_tool_error("out of memory for %lu devices", o->count);
		return FLEET_EXIT_SETUP;
	}
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	if (f->ep < 0) {
		nf_tool_error("epoll: %s", strerror(errno));
		return FLEET_EXIT_SETUP;
	}
	f->multi = curl_multi_init();
	if (f->multi == NULL ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
		nf_tool_error("cannot set up a libcurl multi handle");
		return FLEET_EXIT_SETUP;
	}
	for (size_t i = 0; i < o->concurrency; i++) {
		f->slots[i].easy = curl_easy_init();
		if (f->slots[i].easy == NULL) {
			nf_tool_error("cannot make %lu libcurl handles", o->concurrency);
			return FLEET_EXIT_SETUP;
		}
		f->free_slots[f->nfree++] = (uint32_t)(o->concurrency - 1 - i);
	}
	f->curl_due = -1;
	f->rng = (o->seeded ? o->seed : (unsigned long)time(NULL) ^ (unsigned long)getpid()) *
	             2654435761ull +
	         0x9E3779B97F4A7C15ull;
	f->t0 = f->now = (int64_t)nf_clock_ms();
	f->deadline = f->t0 + o->timeout_ms;
	f->stop_at = o->duration_ms >= 0 ? f->t0 + o->duration_ms : -1;
	for (size_t i = 0; i < o->count; i++) {
		struct device *d = &f->dev[i];
		char mac[18];

		d->fleet = f;
		nf_posix_init(&d->port);
		d->port.console = NULL; /* 10,000 serial consoles: only with --verbose */
		d->port.timeout_ms = o->request_ms;
		d->port.connect_timeout_ms = o->connect_ms;
		format_mac(o->mac_base + i, mac);
		nf_posix_set_mac(&d->port, mac);
		if (o->verbose) {
			char *prefix = f->prefixes + i * FLEET_PREFIX_MAX;
			snprintf(prefix, FLEET_PREFIX_MAX, "[%s] ", mac);
			d->port.console = stderr;
			d->port.log_prefix = prefix;
		}
		d->flash = template; /* idle: no pointer inside */
		nf_posix_use_memflash(&d->port, &d->flash);
		f->ready = i + 1;
		boot(f, d, f->t0 + rnd_ms(f, o->ramp_ms)); /* power-on */
	}
	return 0;
}

static void teardown(struct fleet *f)
{
	if (f->slots != NULL) {
		for (size_t i = 0; i < f->o.concurrency; i++) {
			if (f->slots[i].d != NULL && f->multi != NULL)
				curl_multi_remove_handle(f->multi, f->slots[i].easy);
			if (f->slots[i].easy != NULL)
				curl_easy_cleanup(f->slots[i].easy);
		}
	}
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	if (f->ep >= 0)
		close(f->ep);
	for (size_t i = 0; i < f->ready; i++)
		nf_posix_destroy(&f->dev[i].port);
	free(f->dev);
	free(f->heap);
	free(f->queue);
	free(f->slots);
	free(f->free_slots);
	free(f->prefixes);
	free(f->o.names_text);
}

static void on_signal(int signo)
{
	stop_signal = signo;
}

/* ---- the loop ---- */

/* Runs until every device is done, --timeout or a signal. Returns 0, or -1
 * when the event loop itself fails (printed). */
static int run(struct fleet *f)
{
	struct epoll_event events[FLEET_EVENTS_MAX];
	int running = 0;

	/* Bounded in time: every pass checks the deadline, and each wait
	 * ends by FLEET_WAIT_MAX_MS at most. */
	for (;;) {
		long wait = FLEET_WAIT_MAX_MS;
		int n;

		f->now = (int64_t)nf_clock_ms();
		if (stop_signal != 0) {
			f->interrupted = true;
			break;
		}
		if (f->now >= f->deadline) {
			f->timed_out = true;
			break;
		}
		if (!f->stopping && f->stop_at >= 0 && f->now >= f->stop_at)
			begin_stop(f);
		fire_timers(f);
		start_checks(f);
		if (f->active == 0 && f->q_len == 0 && f->heap_len == 0)
			break; /* every device is done */
		progress(f, false);

		wait = min_wait(wait, f->curl_due, f->now);
		wait = min_wait(wait, f->heap_len > 0 ? f->dev[f->heap[0]].due_ms : -1, f->now);
		wait = min_wait(wait, f->next_progress, f->now);
		wait = min_wait(wait, f->deadline, f->now);
		wait = min_wait(wait, f->stopping ? -1 : f->stop_at, f->now);
		n = epoll_wait(f->ep, events, FLEET_EVENTS_MAX, (int)wait);
		if (n < 0 && errno != EINTR) {
			nf_tool_error("epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			uint32_t ev = events[i].events;
			int flags = ((ev & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			            ((ev & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			            ((ev & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
			curl_multi_socket_action(f->multi, events[i].data.fd, flags, &running);
		}
		f->now = (int64_t)nf_clock_ms();
		if (f->curl_due >= 0 && f->now >= f->curl_due) {
			f->curl_due = -1;
			curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		reap(f);
	}
	cut_all(f);
	return 0;
}

int nf_cmd_fleet(int argc, char *argv[], char *prog_argv[])
{
	struct fleet *f;
	struct sigaction sa;
	struct tally t;
	double secs;
	int rc;

	(void)prog_argv;
	f = calloc(1, sizeof *f);
	if (f == NULL) {
		nf_tool_error("out of memory");
		return FLEET_EXIT_SETUP;
	}
	f->ep = -1;
	rc = parse_options(&f->o, argc, argv);
	if (rc != 0) {
		rc = rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
		goto done;
	}
	f->out = f->o.json ? stderr : stdout;
	f->tty = isatty(fileno(f->out)) == 1;
	f->next_progress = f->o.quiet || f->o.progress_ms == 0 ? -1 : 0;
	rc = setup(f);
	if (rc != 0)
		goto done;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (run(f) != 0) {
		rc = FLEET_EXIT_SETUP;
		goto done;
	}
	f->end = (int64_t)nf_clock_ms();
	f->now = f->end;
	if (f->next_progress >= 0 && !f->tty)
		progress(f, true); /* the last word of a log */
	clear_status(f);
	secs = (double)(f->end - f->t0) / 1000.0;
	tally(f, &t, true);
	if (f->o.json) {
		if (print_json(f, &t, secs) != 0) {
			rc = FLEET_EXIT_SETUP;
			goto done;
		}
	} else {
		print_text(f, &t, secs);
	}
	fflush(stdout);
	rc = t.failed > 0 || (f->o.until_updated && t.unsettled > 0) ? FLEET_EXIT_FAILED
	                                                             : NF_EXIT_OK;
done:
	teardown(f);
	free(f);
	return rc;
}
