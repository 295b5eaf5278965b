/*
 * device.c - `nofuss device`: a simulated ESP8266 that runs the real device
 * core (core/) on the POSIX port (ports/posix/) and updates itself from a
 * NoFUSS server, so the whole path - nofussd, HTTP, the core's checks, the
 * flash, the bootloader - can be exercised on one machine.
 *
 * Its flash is a directory (--flash DIR): two firmware slots, a filesystem
 * and the bootloader's state (ports/posix/flash.c). On first use the
 * directory is provisioned with a firmware built from --version/--device (or
 * taken from --image). Each run is a power-on: the bootloader picks a slot,
 * the "firmware" reads its own version out of the image it runs and prints
 * what its serial console would, then checks the server now and every
 * --interval seconds. After an update the core asks for a reset; the process
 * then re-executes itself (execv of /proc/self/exe with the same arguments),
 * which is the reboot: the bootloader runs the new slot on trial, the
 * firmware confirms it, and the next check reports the new version. A
 * firmware flagged "crashes at boot" reboots before confirming, and the
 * bootloader reverts to the previous slot.
 *
 * Optionally (--ota) it also takes ArduinoOTA pushes while it waits
 * between checks, into its own flash through the same sink as `nofuss
 * ota-recv --flash` (ota/flash_sink.c), and reboots the same way after one;
 * and (--mqtt) it announces its IP and versions on MQTT (announce.c).
 *
 * Counters that a real device would not keep across a reset but a bounded
 * simulation needs (checks and boots so far, flash operations for the power
 * cut injector) ride along in the environment (NOFUSS_SIM_RESUME).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "image.h"
#include "nofuss/posix.h"
#include "ota.h"
#include "sim.h"

#define RESUME_ENV           "NOFUSS_SIM_RESUME"
#define POWER_CUT_ENV        "NOFUSS_POWER_CUT_AT"
#define SELF_EXE             "/proc/self/exe"
#define RESUME_MAX           160u
#define INTERVAL_DEFAULT_MS  60000L
#define INTERVAL_MAX_S       (7.0 * 86400.0)
#define TIMEOUT_MAX_S        3600.0
#define MAX_BOOTS_DEFAULT    8ul
#define MAX_BOOTS_MAX        1000ul
#define MAX_CHECKS_MAX       100000000ul
#define COUNTER_MAX          4000000000ul
#define PROVISION_IMAGE_SIZE (256u * 1024u)
#define PROVISION_FS_SIZE    (64u * 1024u)

/* Exit status (documented in usage() and docs/man/nofuss.1). */
#define DEVICE_EXIT_CHECK_FAILED 1
#define DEVICE_EXIT_FLASH        3
#define DEVICE_EXIT_BRICKED      4
#define DEVICE_EXIT_BOOT_LOOP    5

enum reset_reason { RESET_POWER_ON = 0, RESET_SOFTWARE = 1, RESET_EXCEPTION = 2 };

struct options {
	const char *flash, *server, *device, *version, *fs_version, *image, *fs_image, *build;
	const char *mac;
	const char *ota_auth, *mqtt_user, *mqtt_password, *mqtt_base;
	char ota_ip[INET_ADDRSTRLEN]; /* "" without --ota */
	uint16_t ota_port;
	long ota_pause_ms, heartbeat_ms;
	char mqtt_host[NF_ANNOUNCE_TOPIC_MAX]; /* "" without --mqtt */
	uint16_t mqtt_port;
	bool path_form, until_current;
	long interval_ms, jitter_ms, timeout_ms, connect_ms;
	long max_checks; /* -1: no limit */
	unsigned long max_boots, power_cut_at;
	struct nf_posix_geometry geometry;
};

/* What survives a simulated reset; a power-on starts from zero. */
struct resume {
	unsigned long boots;  /* boots so far */
	unsigned long streak; /* boots since the last check */
	unsigned long checks; /* checks so far */
	unsigned long ops;    /* flash operations so far */
	int last_error;       /* the last check's enum nf_error, -1 for none */
	int reason;           /* enum reset_reason of this boot */
};

struct device {
	struct options o;
	struct resume r;
	char **prog_argv;
	struct nf_posix port;
	struct nf_client client;
	const char *name;                      /* the device name reported */
	bool uptodate;                         /* the last check found nothing new */
	char fs_version[NF_POSIX_IMAGE_FIELD]; /* the booted filesystem's, or "" */
	struct nf_ota_recv ota;                /* --ota; ota.udp -1 when off */
	struct nf_ota_flash_sink ota_sink;
	struct nf_announce mqtt; /* --mqtt */
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss device --flash DIR --server URL [OPTION]...\n"
	        "Run a simulated ESP8266 that boots from a flash directory and updates\n"
	        "itself from a NoFUSS server with the real device core. It prints what its\n"
	        "serial console would show and reboots by re-executing itself.\n\n"
	        "Device:\n"
	        "  -f, --flash DIR          flash directory (created and provisioned when empty)\n"
	        "  -s, --server URL         NoFUSS server, e.g. http://127.0.0.1:8080/\n"
	        "  -d, --device NAME        device name (when the firmware image carries none,\n"
	        "                           and for provisioning)\n"
	        "  -m, --mac MAC            station MAC (default 5C:CF:7F:00:00:01)\n"
	        "  -b, --build BUILD        build reported in header-form checks\n"
	        "  -p, --path-form          check with GET URL/DEVICE/VERSION (v1.0 servers)\n"
	        "Checks:\n"
	        "  -i, --interval SEC       time between checks (default 60)\n"
	        "  -j, --jitter SEC         add a random 0..SEC to each interval (default 0)\n"
	        "  -1, --once               one check, then stop (same as --max-checks 1)\n"
	        "  -n, --max-checks N       stop after N checks, counted across reboots\n"
	        "                           (0: boot only; default: no limit)\n"
	        "  -u, --until-up-to-date   stop after a check that finds nothing new\n"
	        "      --max-boots N        give up after N boots without a check (default 8)\n"
	        "      --timeout SEC        one whole HTTP request (default 30)\n"
	        "      --connect-timeout SEC  TCP connect (default 5)\n"
	        "Provisioning (only when the flash directory is empty):\n"
	        "      --version VERSION    firmware version to build and flash into slot a\n"
	        "      --fs-version VERSION filesystem version (default: the firmware's)\n"
	        "      --image FILE         flash this firmware image (nofuss mkimage) instead\n"
	        "      --fs-image FILE      flash this filesystem image\n"
	        "      --slot-size SIZE     each firmware slot (default 1M)\n"
	        "      --fs-size SIZE       the filesystem (default 1M)\n"
	        "      --chip-size SIZE     the flash chip (default 4M)\n"
	        "ArduinoOTA (pushes with nofuss ota-send or nofuss push):\n"
	        "      --ota IP[:PORT]      listen for pushes on this UDP address (default\n"
	        "                           port 8266; 0 picks a free one, printed on the\n"
	        "                           console); a pushed image is written to the\n"
	        "                           spare slot (or the filesystem) and booted\n"
	        "      --ota-auth PASS      require this OTA password\n"
	        "      --ota-pause SEC      pause before \"OK\" and before closing (default 1)\n"
	        "MQTT announcements (retained: BASE/ip, BASE/version, BASE/fsversion,\n"
	        "BASE/status; BASE/heartbeat; last will BASE/status = 0):\n"
	        "      --mqtt HOST[:PORT]   broker (default port 1883)\n"
	        "      --mqtt-base BASE     topic prefix, e.g. /home/cellar/washer\n"
	        "      --mqtt-user USER     MQTT user name\n"
	        "      --mqtt-password PASS MQTT password\n"
	        "      --heartbeat SEC      BASE/heartbeat interval (default 60)\n"
	        "Fault injection:\n"
	        "      --power-cut-at N     cut the power right before the Nth flash operation\n"
	        "                           of this run, counted across reboots (also the\n"
	        "                           environment variable " POWER_CUT_ENV ")\n"
	        "  -h, --help               show this help and exit\n\n"
	        "Exit status: 0 the checks ran and the last one went well; 1 the last check\n"
	        "failed; 2 bad usage; 3 flash directory unusable or reboot failed; 4 bricked:\n"
	        "no slot holds a bootable firmware; 5 boot loop: --max-boots boots without a\n"
	        "check; 6 power cut (the fault injector).\n");
}

/* ---- the serial console ---- */

static const char *const message_names[] = {
    "START",
    "UPTODATE",
    "UPDATING",
    "FILESYSTEM_UPDATED",
    "FIRMWARE_UPDATED",
    "RESET",
    "END",
    "NO_RESPONSE_ERROR",
    "PARSE_ERROR",
    "FILESYSTEM_UPDATE_ERROR",
    "FIRMWARE_UPDATE_ERROR",
};

static void on_message(void *ctx, const struct nf_client *c, enum nf_message msg)
{
	struct device *d = ctx;
	const char *name = (unsigned)msg < sizeof message_names / sizeof message_names[0]
	                       ? message_names[msg]
	                       : "?";
	enum nf_error err = nf_client_last_error(c);

	switch (msg) {
	case NF_MSG_START:
		d->uptodate = false;
		nf_posix_logf(&d->port, NULL, "%s: checking %s as %s %s", name, d->o.server,
		              d->name, c->version);
		break;
	case NF_MSG_UPTODATE:
		d->uptodate = true;
		nf_posix_logf(&d->port, NULL, "%s: %s is current", name, c->version);
		break;
	case NF_MSG_UPDATING:
		nf_posix_logf(&d->port, NULL, "%s: %s -> %s", name, c->version,
		              nf_client_offered_version(c));
		break;
	case NF_MSG_NO_RESPONSE_ERROR:
	case NF_MSG_PARSE_ERROR:
	case NF_MSG_FILESYSTEM_UPDATE_ERROR:
	case NF_MSG_FIRMWARE_UPDATE_ERROR:
		nf_posix_logf(&d->port, NULL, "%s: %s (error %d)", name, nf_strerror(err),
		              (int)err);
		break;
	default: nf_posix_logf(&d->port, NULL, "%s", name); break;
	}
}

/* ---- options ---- */

/* HOST[:PORT] or IP[:PORT] into host and port. */
static int parse_host_port(const char *opt, const char *text, char *host, size_t cap,
                           uint16_t *port, unsigned long min_port, unsigned long default_port)
{
	const char *colon = strrchr(text, ':');
	size_t n = colon != NULL ? (size_t)(colon - text) : strlen(text);
	unsigned long p = default_port;

	if (n == 0 || n >= cap) {
		nf_tool_error("%s: %s: expected HOST[:PORT]", opt, text);
		return -1;
	}
	memcpy(host, text, n);
	host[n] = '\0';
	if (colon != NULL && nf_parse_count(opt, colon + 1, min_port, 65535, &p) != 0)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static int set_once(void *opts, const char *value)
{
	(void)value;
	((struct options *)opts)->max_checks = 1;
	return 0;
}

static int set_max_checks(void *opts, const char *value)
{
	unsigned long n;

	if (nf_parse_count("--max-checks", value, 0, MAX_CHECKS_MAX, &n))
		return -1;
	((struct options *)opts)->max_checks = (long)n;
	return 0;
}

static int set_ota(void *opts, const char *value)
{
	struct options *o = opts;
	struct in_addr a;

	if (parse_host_port("--ota", value, o->ota_ip, sizeof o->ota_ip, &o->ota_port, 0,
	                    NF_OTA_PORT_ESP8266) != 0)
		return -1;
	if (inet_pton(AF_INET, o->ota_ip, &a) != 1) {
		nf_tool_error("--ota: %s: not an IPv4 address", o->ota_ip);
		return -1;
	}
	return 0;
}

static int set_mqtt(void *opts, const char *value)
{
	struct options *o = opts;

	return parse_host_port("--mqtt", value, o->mqtt_host, sizeof o->mqtt_host, &o->mqtt_port,
	                       1, NF_ANNOUNCE_PORT_DEFAULT);
}

#define O struct options
static const struct nf_opt opts[] = {
    NF_OPT_STRING("flash", 'f', O, flash),
    NF_OPT_STRING("server", 's', O, server),
    NF_OPT_STRING("device", 'd', O, device),
    NF_OPT_STRING("mac", 'm', O, mac),
    NF_OPT_STRING("build", 'b', O, build),
    NF_OPT_FLAG("path-form", 'p', O, path_form),
    NF_OPT_SECONDS("interval", 'i', O, interval_ms, 0, INTERVAL_MAX_S),
    NF_OPT_SECONDS("jitter", 'j', O, jitter_ms, 0, INTERVAL_MAX_S),
    NF_OPT_CALL("once", '1', NF_OPT_CALL_NOARG, set_once),
    NF_OPT_CALL("max-checks", 'n', NF_OPT_CALL, set_max_checks),
    NF_OPT_FLAG("until-up-to-date", 'u', O, until_current),
    NF_OPT_COUNT("max-boots", 0, O, max_boots, 1, MAX_BOOTS_MAX),
    NF_OPT_SECONDS("timeout", 0, O, timeout_ms, 0.001, TIMEOUT_MAX_S),
    NF_OPT_SECONDS("connect-timeout", 0, O, connect_ms, 0.001, TIMEOUT_MAX_S),
    NF_OPT_STRING("version", 0, O, version),
    NF_OPT_STRING("fs-version", 0, O, fs_version),
    NF_OPT_STRING("image", 0, O, image),
    NF_OPT_STRING("fs-image", 0, O, fs_image),
    NF_OPT_SIZE("slot-size", 0, O, geometry.slot_size, NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX),
    NF_OPT_SIZE("fs-size", 0, O, geometry.fs_size, NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX),
    NF_OPT_SIZE("chip-size", 0, O, geometry.chip_size, NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX),
    NF_OPT_COUNT("power-cut-at", 0, O, power_cut_at, 1, COUNTER_MAX),
    NF_OPT_CALL("ota", 0, NF_OPT_CALL, set_ota),
    NF_OPT_STRING("ota-auth", 0, O, ota_auth),
    NF_OPT_SECONDS("ota-pause", 0, O, ota_pause_ms, 0, 60),
    NF_OPT_CALL("mqtt", 0, NF_OPT_CALL, set_mqtt),
    NF_OPT_STRING("mqtt-base", 0, O, mqtt_base),
    NF_OPT_STRING("mqtt-user", 0, O, mqtt_user),
    NF_OPT_STRING("mqtt-password", 0, O, mqtt_password),
    NF_OPT_SECONDS("heartbeat", 0, O, heartbeat_ms, 0.01, 86400),
    NF_OPT_END,
};
#undef O

/* Returns 0, 1 after --help, -1 on bad usage (printed). */
static int parse_options(struct options *o, int argc, char *argv[])
{
	int rc;

	o->interval_ms = INTERVAL_DEFAULT_MS;
	o->timeout_ms = NF_POSIX_TIMEOUT_MS_DEFAULT;
	o->connect_ms = NF_POSIX_CONNECT_TIMEOUT_MS_DEFAULT;
	o->max_checks = -1;
	o->max_boots = MAX_BOOTS_DEFAULT;
	o->ota_pause_ms = NF_OTA_PAUSE_MS_DEFAULT;
	o->heartbeat_ms = NF_ANNOUNCE_HEARTBEAT_MS;
	o->geometry.slot_size = NF_POSIX_SLOT_SIZE_DEFAULT;
	o->geometry.fs_size = NF_POSIX_FS_SIZE_DEFAULT;
	o->geometry.chip_size = NF_POSIX_CHIP_SIZE_DEFAULT;
	if (nf_posix_powercut_parse(getenv(POWER_CUT_ENV), &o->power_cut_at) != 0) {
		nf_tool_error(POWER_CUT_ENV ": '%s' is not a number", getenv(POWER_CUT_ENV));
		return -1;
	}
	rc = nf_opts_parse(opts, o, usage, argc, argv);
	if (rc != 0)
		return rc;
	if (nf_opts_no_operands(argc, argv) != 0)
		return -1;
	if (o->flash == NULL) {
		nf_tool_error("--flash DIR is required (see --help)");
		return -1;
	}
	if (o->server == NULL && o->max_checks != 0) {
		nf_tool_error("--server URL is required, unless --max-checks 0");
		return -1;
	}
	if ((o->mqtt_host[0] != '\0') != (o->mqtt_base != NULL && o->mqtt_base[0] != '\0')) {
		nf_tool_error("give --mqtt and --mqtt-base together");
		return -1;
	}
	if (o->ota_auth != NULL && o->ota_ip[0] == '\0') {
		nf_tool_error("--ota-auth needs --ota");
		return -1;
	}
	if (o->image != NULL && o->version != NULL) {
		nf_tool_error("give --image or --version, not both");
		return -1;
	}
	if (o->fs_image != NULL && o->fs_version != NULL) {
		nf_tool_error("give --fs-image or --fs-version, not both");
		return -1;
	}
	return 0;
}

/* ---- surviving a reboot ---- */

static int load_resume(struct resume *r)
{
	const char *text = getenv(RESUME_ENV);
	int used = -1;

	memset(r, 0, sizeof *r);
	r->last_error = -1;
	if (text == NULL || text[0] == '\0')
		return 0; /* a power-on */
	if (sscanf(text, "boots=%lu streak=%lu checks=%lu ops=%lu last=%d reason=%d%n", &r->boots,
	           &r->streak, &r->checks, &r->ops, &r->last_error, &r->reason, &used) != 6 ||
	    used < 0 || text[used] != '\0' || r->boots > COUNTER_MAX || r->streak > COUNTER_MAX ||
	    r->checks > COUNTER_MAX || r->ops > COUNTER_MAX || r->last_error < -1 ||
	    r->last_error > 255 || r->reason < RESET_POWER_ON || r->reason > RESET_EXCEPTION) {
		nf_tool_error(RESUME_ENV ": '%s' is not what a reboot leaves (unset it)", text);
		return -1;
	}
	return 0;
}

/* Restarts the device: the same program, the same arguments, the counters
 * in the environment. Returns only on failure. */
static int reboot(struct device *d, enum reset_reason reason)
{
	char text[RESUME_MAX];

	snprintf(text, sizeof text, "boots=%lu streak=%lu checks=%lu ops=%lu last=%d reason=%d",
	         d->r.boots, d->r.streak, d->r.checks, d->port.flash.cut.count, d->r.last_error,
	         (int)reason);
	nf_posix_log(&d->port, "[sim] ", "rebooting");
	nf_ota_recv_close(&d->ota);
	nf_announce_stop(&d->mqtt);
	if (setenv(RESUME_ENV, text, 1) != 0) {
		nf_tool_error("cannot reboot: %s", strerror(errno));
		return DEVICE_EXIT_FLASH;
	}
	nf_posix_destroy(&d->port);
	fflush(NULL);
	execv(SELF_EXE, d->prog_argv);
	nf_tool_error("cannot reboot: execv %s: %s", SELF_EXE, strerror(errno));
	return DEVICE_EXIT_FLASH;
}

/* ---- provisioning and booting ---- */

/* Reads an image file and checks it is a whole image of the given kind. */
static uint8_t *load_image(const char *path, enum nf_image kind, size_t *len, char *version,
                           size_t vcap)
{
	struct nf_posix_image info;
	char err[NF_POSIX_ERR_MAX];
	uint8_t *buf;

	if (nf_posix_image_verify_file(AT_FDCWD, path, NF_POSIX_FLASH_SIZE_MAX, &info, NULL, err,
	                               sizeof err) != 0) {
		nf_tool_error("%s (make images with nofuss mkimage)", err);
		return NULL;
	}
	if (info.kind != kind) {
		nf_tool_error("%s is a %s image", path,
		              info.kind == NF_IMAGE_FIRMWARE ? "firmware" : "filesystem");
		return NULL;
	}
	if (nf_read_file(path, NF_POSIX_FLASH_SIZE_MAX, &buf, len) != 0)
		return NULL;
	snprintf(version, vcap, "%s", info.version);
	return buf;
}

/* Fills an empty flash directory. Returns 0 or an exit status. */
static int provision(struct device *d)
{
	const struct options *o = &d->o;
	char version[NF_POSIX_IMAGE_FIELD] = "", err[NF_POSIX_ERR_MAX];
	uint8_t *fw = NULL, *fs = NULL;
	size_t fwlen = 0, fslen = 0;
	uint32_t size;
	int rc = NF_EXIT_USAGE;

	if (o->image != NULL) {
		fw = load_image(o->image, NF_IMAGE_FIRMWARE, &fwlen, version, sizeof version);
	} else if (o->version != NULL && o->device != NULL) {
		size = o->geometry.slot_size < PROVISION_IMAGE_SIZE ? o->geometry.slot_size
		                                                    : PROVISION_IMAGE_SIZE;
		fw = nf_tool_make_image(NF_IMAGE_FIRMWARE, o->version, o->device, size);
		fwlen = size;
		snprintf(version, sizeof version, "%s", o->version);
	} else {
		nf_tool_error(
		    "%s is empty: give --version and --device (or --image) to provision it",
		    o->flash);
		goto done;
	}
	if (fw == NULL)
		goto done;
	if (o->fs_image != NULL) {
		fs = load_image(o->fs_image, NF_IMAGE_FILESYSTEM, &fslen, err, sizeof err);
	} else {
		size = o->geometry.fs_size < PROVISION_FS_SIZE ? o->geometry.fs_size
		                                               : PROVISION_FS_SIZE;
		fs = nf_tool_make_image(NF_IMAGE_FILESYSTEM,
		                        o->fs_version ? o->fs_version : version, "", size);
		fslen = size;
	}
	if (fs == NULL)
		goto done;
	if (nf_posix_flash_provision(&d->port.flash, &o->geometry, fw, fwlen, fs, fslen, err,
	                             sizeof err) != 0) {
		nf_tool_error("cannot provision %s: %s", o->flash, err);
		rc = DEVICE_EXIT_FLASH;
		goto done;
	}
	nf_posix_logf(&d->port, "[sim] ", "provisioned %s: firmware %s in slot a", o->flash,
	              version);
	rc = 0;
done:
	free(fw);
	free(fs);
	return rc;
}

/* Runs the bootloader and the firmware's start-up. Returns 0 when the
 * firmware runs, or an exit status. A crashing firmware reboots from here. */
static int boot(struct device *d)
{
	static const char *const how_names[] = {"normal", "trial", "reverted", "fallback"};
	static const char *const reasons[] = {"power on", "software restart", "exception"};
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	d->r.boots++;
	d->r.streak++;
	if (d->r.streak > d->o.max_boots) {
		nf_posix_logf(&d->port, "[sim] ", "%lu boots without a check: boot loop, giving up",
		              d->r.streak - 1);
		return DEVICE_EXIT_BOOT_LOOP;
	}
	nf_posix_logf(&d->port, "[boot] ", "reset reason: %s", reasons[d->r.reason]);
	if (nf_posix_flash_boot(&d->port.flash, &b, err, sizeof err) != 0) {
		bool bricked = errno == ENOEXEC;
		nf_posix_logf(&d->port, "[boot] ", "%s", err);
		return bricked ? DEVICE_EXIT_BRICKED : DEVICE_EXIT_FLASH;
	}
	if (b.how == NF_POSIX_BOOT_REVERTED || b.how == NF_POSIX_BOOT_FALLBACK)
		nf_posix_logf(&d->port, "[boot] ", "%s: booting slot %s", b.why,
		              nf_posix_slot_name(b.slot));
	if (!b.fs_valid)
		nf_posix_logf(&d->port, "[boot] ", "filesystem: %s", b.fs_error);
	snprintf(d->fs_version, sizeof d->fs_version, "%s", b.fs_valid ? b.fs.version : "");
	nf_posix_logf(&d->port, "[boot] ", "slot=%s version=%s fs=%s device=%s mode=%s",
	              nf_posix_slot_name(b.slot), b.firmware.version,
	              b.fs_valid ? b.fs.version : "invalid",
	              b.firmware.device[0] != '\0' ? b.firmware.device : "-", how_names[b.how]);
	if (b.firmware.flags & NF_POSIX_IMAGE_CRASH) {
		/* What the ESP8266 prints when a sketch dies before it is up. */
		nf_posix_logf(&d->port, "[boot] ",
		              "Fatal exception 0(IllegalInstructionCause): firmware %s crashed at "
		              "boot (simulated)",
		              b.firmware.version);
		return reboot(d, RESET_EXCEPTION);
	}
	if (nf_posix_flash_confirm(&d->port.flash, err, sizeof err) != 0) {
		nf_posix_logf(&d->port, "[boot] ", "cannot confirm slot %s: %s",
		              nf_posix_slot_name(b.slot), err);
		return DEVICE_EXIT_FLASH;
	}
	if (b.how == NF_POSIX_BOOT_TRIAL)
		nf_posix_logf(&d->port, "[boot] ", "slot %s confirmed", nf_posix_slot_name(b.slot));

	d->name = b.firmware.device[0] != '\0' ? b.firmware.device : d->o.device;
	if (d->name == NULL) {
		nf_tool_error("the firmware carries no device name: give --device");
		return NF_EXIT_USAGE;
	}
	if (nf_client_set_version(&d->client, b.firmware.version) != 0 ||
	    nf_client_set_device(&d->client, d->name) != 0) {
		nf_tool_error("device name or version too long for the core (%d bytes)",
		              NF_CLIENT_FIELD_MAX - 1);
		return NF_EXIT_USAGE;
	}
	d->name = d->client.device; /* b, and the name in it, end with this function */
	return 0;
}

/* Sets up the port and the client from the options. 0 or an exit status. */
static int configure(struct device *d)
{
	const struct options *o = &d->o;

	d->port.timeout_ms = o->timeout_ms;
	d->port.connect_timeout_ms = o->connect_ms;
	if (o->mac != NULL && nf_posix_set_mac(&d->port, o->mac) != 0) {
		nf_tool_error("--mac: '%s' is not six hex pairs separated by colons", o->mac);
		return NF_EXIT_USAGE;
	}
	nf_posix_powercut_init(&d->port.flash.cut, o->power_cut_at, d->r.ops);
	nf_client_init(&d->client, &d->port);
	nf_client_on_message(&d->client, on_message, d);
	nf_client_set_path_form(&d->client, o->path_form);
	if ((o->server != NULL && nf_client_set_server(&d->client, o->server) != 0) ||
	    nf_client_set_mac(&d->client, d->port.sta_mac) != 0 ||
	    (o->build != NULL && nf_client_set_build(&d->client, o->build) != 0)) {
		nf_tool_error("--server or --build too long (%d and %d bytes at most)",
		              NF_CLIENT_URL_MAX - 1, NF_CLIENT_FIELD_MAX - 1);
		return NF_EXIT_USAGE;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- ArduinoOTA and MQTT ---- */

/* Starts the OTA listener and the MQTT announcements the options ask for.
 * 0 or an exit status. */
static int start_services(struct device *d)
{
	const struct options *o = &d->o;
	char err[NF_POSIX_ERR_MAX];

	if (o->ota_ip[0] != '\0') {
		struct nf_ota_recv_config cfg = {.password = o->ota_auth,
		                                 .pause_ms = o->ota_pause_ms,
		                                 .timeout_ms = NF_OTA_ANSWER_TIMEOUT_MS,
		                                 .log = stdout};
		struct nf_ota_sink sink;

		nf_ota_flash_sink_init(&d->ota_sink, &d->port, 0, &sink);
		if (nf_ota_recv_open(&d->ota, o->ota_ip, o->ota_port, &cfg, &sink, err,
		                     sizeof err) != 0) {
			nf_tool_error("--ota: %s", err);
			return DEVICE_EXIT_FLASH;
		}
		nf_posix_logf(&d->port, "[ota] ", "listening on %s:%u%s", o->ota_ip,
		              (unsigned)nf_ota_recv_port(&d->ota),
		              o->ota_auth != NULL && o->ota_auth[0] != '\0' ? " (password set)"
		                                                            : "");
	}
	if (o->mqtt_host[0] != '\0') {
		struct nf_announce_config cfg = {
		    .host = o->mqtt_host,
		    .port = o->mqtt_port,
		    .base = o->mqtt_base,
		    .user = o->mqtt_user,
		    .password = o->mqtt_password,
		    .ip = o->ota_ip[0] != '\0' ? o->ota_ip : "127.0.0.1",
		    .version = d->client.version,
		    .fsversion = d->fs_version,
		    .heartbeat_ms = o->heartbeat_ms,
		    .log = stdout,
		};

		if (nf_announce_start(&d->mqtt, &cfg, err, sizeof err) != 0) {
			nf_tool_error("--mqtt: %s", err);
			return NF_EXIT_USAGE;
		}
	}
	return 0;
}

/* One wait on the OTA socket. 0, or an exit status when a reboot failed. */
static int handle_ota(struct device *d, long ms)
{
	struct nf_ota_recv *r = &d->ota;
	bool firmware;

	switch (nf_ota_recv_poll(r, (int)ms)) {
	case NF_OTA_RECV_DONE:
		firmware = r->invite.command == NF_OTA_CMD_FIRMWARE;
		nf_posix_logf(&d->port, "[ota] ", "%s image of %u bytes committed",
		              firmware ? "firmware" : "filesystem", (unsigned)r->received);
		/* ArduinoOTA restarts after every successful update. */
		return reboot(d, RESET_SOFTWARE);
	case NF_OTA_RECV_FAILED:
		nf_posix_logf(&d->port, "[ota] ", "update failed: %s; running %s", r->err,
		              d->client.version);
		break;
	case NF_OTA_RECV_AUTH_FAILED: nf_posix_logf(&d->port, "[ota] ", "%s", r->err); break;
	default: break;
	}
	return 0;
}

#define IDLE_STEP_MS 100L /* longest wait while MQTT needs servicing */
#define IDLE_MAX_MS  3600000L

/* The wait between checks: serves OTA pushes and MQTT meanwhile. 0, or an
 * exit status when a reboot failed. */
static int idle(struct device *d, long ms)
{
	uint64_t deadline = nf_clock_ms() + (uint64_t)ms, now;
	long step;
	int rc;

	for (;;) {
		nf_announce_poll(&d->mqtt);
		now = nf_clock_ms();
		if (now >= deadline)
			return 0;
		step = deadline - now > IDLE_MAX_MS ? IDLE_MAX_MS : (long)(deadline - now);
		if (d->mqtt.mosq != NULL && step > IDLE_STEP_MS)
			step = IDLE_STEP_MS;
		if (d->ota.udp >= 0) {
			rc = handle_ota(d, step);
			if (rc != 0)
				return rc;
		} else {
			sleep_ms(step);
		}
	}
}

/* Checks until a limit; reboots after an update. Returns the exit status. */
static int run(struct device *d)
{
	bool first = true;
	int rc;

	for (;;) {
		if (d->o.max_checks >= 0 && d->r.checks >= (unsigned long)d->o.max_checks)
			break;
		if (!first) {
			long wait = d->o.interval_ms;
			if (d->o.jitter_ms > 0)
				wait += (long)(random() % (d->o.jitter_ms + 1));
			rc = idle(d, wait);
			if (rc != 0)
				return rc;
		}
		first = false;
		nf_client_handle(&d->client);
		d->r.checks++;
		d->r.streak = 0;
		d->r.last_error = (int)nf_client_last_error(&d->client);
		if (d->port.reboot_requested)
			return reboot(d, RESET_SOFTWARE);
		if (d->o.until_current && d->uptodate)
			break;
	}
	nf_posix_logf(&d->port, "[sim] ", "halt: %lu checks, %lu boots, %lu flash operations",
	              d->r.checks, d->r.boots, d->port.flash.cut.count);
	rc = d->r.last_error > 0 ? DEVICE_EXIT_CHECK_FAILED : NF_EXIT_OK;
	return rc;
}

int nf_cmd_device(int argc, char *argv[], char *prog_argv[])
{
	struct device *d;
	char err[NF_POSIX_ERR_MAX];
	int rc;

	/* The console is a serial line: every line out at once, also when a
	 * power cut ends the process with _exit. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	d = calloc(1, sizeof *d);
	if (d == NULL) {
		nf_tool_error("out of memory");
		return DEVICE_EXIT_FLASH;
	}
	d->prog_argv = prog_argv;
	d->ota.udp = -1;
	nf_posix_init(&d->port);
	rc = parse_options(&d->o, argc, argv);
	if (rc != 0) {
		rc = rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
		goto done;
	}
	if (load_resume(&d->r) != 0) {
		rc = NF_EXIT_USAGE;
		goto done;
	}
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	rc = configure(d);
	if (rc != 0)
		goto done;
	switch (nf_posix_flash_open(&d->port.flash, d->o.flash, err, sizeof err)) {
	case 0: break;
	case 1:
		rc = provision(d);
		if (rc != 0)
			goto done;
		break;
	default:
		nf_tool_error("%s", err);
		rc = DEVICE_EXIT_FLASH;
		goto done;
	}
	rc = boot(d);
	if (rc != 0)
		goto done;
	rc = start_services(d);
	if (rc != 0)
		goto done;
	rc = run(d);
done:
	nf_ota_recv_close(&d->ota);
	nf_announce_stop(&d->mqtt);
	nf_posix_destroy(&d->port);
	free(d);
	return rc;
}
