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
 *
 * This file is the subcommand (its options, setting up and tearing down);
 * a device's life is fleet_life.c, the event loop fleet_loop.c, the
 * progress and summary fleet_report.c, their shared structures sim.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "image.h"
#include "nofuss/posix.h"
#include "sim.h"

/* Limits and defaults of the options. */
#define FLEET_DEVICES_MAX         100000ul /* designed for 10,000; each costs ~1.6 KB */
#define FLEET_DEVICES_DEFAULT     100ul
#define FLEET_CONCURRENCY_DEFAULT 256ul
#define FLEET_CONCURRENCY_MAX     20000ul /* one socket each: see the open-files check */
#define FLEET_NAMES_TEXT_MAX      2048u   /* the --device argument */
#define FLEET_TIME_MAX_S          (7.0 * 86400.0)
#define FLEET_REQUEST_MAX_S       3600.0
#define FLEET_INTERVAL_DEFAULT_MS 60000L
#define FLEET_DURATION_DEFAULT_MS 60000L
#define FLEET_TIMEOUT_DEFAULT_MS  600000L
#define FLEET_REBOOT_DEFAULT_MS   1000L
#define FLEET_PROGRESS_DEFAULT_MS 5000L
#define FLEET_GIVE_UP_DEFAULT     3ul
#define FLEET_GIVE_UP_MAX         100ul
#define FLEET_FDS_SPARE           64ul /* descriptors besides one socket per transfer */
#define FLEET_PREFIX_MAX          24u  /* "[5C:CF:7F:00:00:01] " */
#define FLEET_MAC_MAX             0xFFFFFFFFFFFFull
#define FLEET_MAC_BASE_DEFAULT    "5C:CF:7F:10:00:00" /* never nofuss device's default MAC */

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
	        "      --client KIND        the client the devices run: nofuss (default),\n"
	        "                           nofuss-path, esp8266-updater, esp32-updater,\n"
	        "                           esphome, tasmota (docs/SIMULATOR.md)\n"
	        "      --url-version        esphome: the manifest URL ends ?version=VERSION,\n"
	        "                           the version it runs (docs/PROTOCOL.md 5.3)\n"
	        "      --source-ips         device i connects from 127.1.0.1 + i, not\n"
	        "                           127.0.0.1: clients without a MAC (path form,\n"
	        "                           esphome) are each a device of their own to the\n"
	        "                           server (loopback servers only)\n"
	        "      --pubkey FILE        every device accepts only images signed by this\n"
	        "                           key (PEM; docs/SIGNING.md), as sketches built\n"
	        "                           with ARDUINO_SIGNING\n"
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
	        "  -h, --help               show this help and exit\n");
	nf_exit_help(out, nf_fleet_exits);
}

const struct nf_exit nf_fleet_exits[] = {
    {NF_EXIT_OK, "no device failed"},
    {FLEET_EXIT_FAILED,
     "a device failed (its last check or update), or with --until-updated the run ended "
     "(--timeout, --duration, a signal) before every device settled"},
    {FLEET_EXIT_SETUP, "cannot run (memory, open files, libcurl)"},
    {0, NULL},
};

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
	struct nf_fleet_options *o = opts;
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
	struct nf_fleet_options *o = opts;

	o->duration_set = true;
	return nf_parse_seconds("--duration", value, 0, FLEET_TIME_MAX_S, &o->duration_ms);
}

static int set_client(void *opts, const char *value)
{
	struct nf_fleet_options *o = opts;

	return nf_sim_client_option(value, &o->client, &o->path_form);
}

static int set_seed(void *opts, const char *value)
{
	struct nf_fleet_options *o = opts;

	o->seeded = true;
	return nf_parse_count("--seed", value, 0, 4294967295ul, &o->seed);
}

#define O struct nf_fleet_options
static const struct nf_opt opts[] = {
    NF_OPT_STRING("server", 's', O, server),
    NF_OPT_COUNT("devices", 'n', O, count, 1, FLEET_DEVICES_MAX),
    NF_OPT_CALL("device", 'd', NF_OPT_CALL, set_names),
    NF_OPT_STRING("version", 0, O, version),
    NF_OPT_STRING("fs-version", 0, O, fs_version),
    NF_OPT_STRING("mac-base", 'm', O, mac_base_text),
    NF_OPT_STRING("build", 'b', O, build),
    NF_OPT_STRING("pubkey", 0, O, pubkey),
    NF_OPT_FLAG("path-form", 'p', O, path_form),
    NF_OPT_CALL("client", 0, NF_OPT_CALL, set_client),
    NF_OPT_FLAG("url-version", 0, O, url_version),
    NF_OPT_FLAG("source-ips", 0, O, source_ips),
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
static int parse_options(struct nf_fleet_options *o, int argc, char *argv[])
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
	if (o->url_version && o->client != NF_SIM_CLIENT_ESPHOME) {
		nf_tool_error("--url-version is for --client esphome");
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
		nf_tool_error("--mac-base %s: %lu devices go past FF:FF:FF:FF:FF:FF",
		              o->mac_base_text, o->count);
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
static int provision(const struct nf_fleet_options *o, struct nf_posix_memflash *m)
{
	const struct nf_posix_geometry g = {.slot_size = NF_POSIX_SLOT_SIZE_DEFAULT,
	                                    .fs_size = NF_POSIX_FS_SIZE_DEFAULT,
	                                    .chip_size = NF_POSIX_CHIP_SIZE_DEFAULT};
	uint8_t *fw, *fs = NULL;
	char err[NF_POSIX_ERR_MAX];
	int rc = NF_EXIT_USAGE;

	fw = nf_tool_make_image(NF_IMAGE_FIRMWARE, o->version, o->names[0], NF_SIM_FW_SIZE);
	if (fw == NULL)
		goto done;
	fs = nf_tool_make_image(NF_IMAGE_FILESYSTEM, o->fs_version ? o->fs_version : o->version, "",
	                        NF_SIM_FS_SIZE);
	if (fs == NULL)
		goto done;
	if (nf_posix_memflash_provision(m, &g, fw, NF_SIM_FW_SIZE, fs, NF_SIM_FS_SIZE, err,
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
static int setup(struct nf_fleet *f)
{
	const struct nf_fleet_options *o = &f->o;
	struct nf_posix_memflash template;
	char err[NF_POSIX_ERR_MAX];
	int rc;

	rc = provision(o, &template);
	if (rc != 0)
		return rc;
	if (o->pubkey != NULL &&
	    nf_sign_key_load(o->pubkey, 0, 0, &f->sign_key, err, sizeof err) != NF_SIGN_OK) {
		nf_tool_error("--pubkey: %s", err);
		return NF_EXIT_USAGE;
	}
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
	rc = nf_fleet_loop_open(f);
	if (rc != 0)
		return rc;
	f->rng = (o->seeded ? o->seed : (unsigned long)time(NULL) ^ (unsigned long)getpid()) *
	             2654435761ull +
	         0x9E3779B97F4A7C15ull;
	f->t0 = f->now = (int64_t)nf_clock_ms();
	f->deadline = f->t0 + o->timeout_ms;
	f->stop_at = o->duration_ms >= 0 ? f->t0 + o->duration_ms : -1;
	for (size_t i = 0; i < o->count; i++) {
		struct nf_fleet_device *d = &f->dev[i];
		char mac[18];

		d->fleet = f;
		nf_posix_init(&d->port);
		d->port.console = NULL; /* 10,000 serial consoles: only with --verbose */
		d->port.timeout_ms = o->request_ms;
		d->port.connect_timeout_ms = o->connect_ms;
		format_mac(o->mac_base + i, mac);
		nf_posix_set_mac(&d->port, mac);
		if (o->source_ips)
			d->port.source_ip = FLEET_SOURCE_IP_BASE + (uint32_t)i;
		nf_posix_share_pubkey(&d->port, f->sign_key);
		if (o->verbose) {
			char *prefix = f->prefixes + i * FLEET_PREFIX_MAX;
			snprintf(prefix, FLEET_PREFIX_MAX, "[%s] ", mac);
			d->port.console = stderr;
			d->port.log_prefix = prefix;
		}
		d->flash = template; /* idle: no pointer inside */
		nf_posix_use_memflash(&d->port, &d->flash);
		f->ready = i + 1;
		nf_fleet_boot(f, d, f->t0 + nf_fleet_rnd_ms(f, o->ramp_ms)); /* power-on */
	}
	return 0;
}

static void teardown(struct nf_fleet *f)
{
	nf_fleet_loop_close(f);
	for (size_t i = 0; i < f->ready; i++)
		nf_posix_destroy(&f->dev[i].port);
	nf_sign_key_free(f->sign_key); /* after the devices that borrowed it */
	free(f->dev);
	free(f->heap);
	free(f->queue);
	free(f->slots);
	free(f->free_slots);
	free(f->prefixes);
	free(f->o.names_text);
}

int nf_cmd_fleet(int argc, char *argv[], char *prog_argv[])
{
	struct nf_fleet *f;
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
	rc = nf_fleet_run(f) != 0 ? FLEET_EXIT_SETUP : nf_fleet_report(f);
done:
	teardown(f);
	free(f);
	return rc;
}
