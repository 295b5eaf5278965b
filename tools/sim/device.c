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
 * the "firmware" reads its own version out of the image it runs (the
 * start-up of firmware.c, shared with the fleet) and prints what its
 * serial console would, then checks the server now and every
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

#define RESUME_ENV "NOFUSS_SIM_RESUME"
#define SELF_EXE   "/proc/self/exe"
#define RESUME_MAX 160u

enum reset_reason { RESET_POWER_ON = 0, RESET_SOFTWARE = 1, RESET_EXCEPTION = 2 };

/* What survives a simulated reset; a power-on starts from zero. */
struct resume {
	unsigned long boots;  /* boots so far */
	unsigned long streak; /* boots since the last check */
	unsigned long checks; /* checks so far */
	unsigned long ops;    /* flash operations so far */
	int last_error;       /* the last check's enum nf_error, -1 for none */
	int reason;           /* enum reset_reason of this boot */
	unsigned long ota;    /* the OTA port bound before the reset (--ota IP:0), 0 for none */
};

struct device {
	struct nf_device_options o;
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

/* ---- surviving a reboot ---- */

static int load_resume(struct resume *r)
{
	const char *text = getenv(RESUME_ENV);
	int used = -1;

	memset(r, 0, sizeof *r);
	r->last_error = -1;
	if (text == NULL || text[0] == '\0')
		return 0; /* a power-on */
	if (sscanf(text, "boots=%lu streak=%lu checks=%lu ops=%lu last=%d reason=%d ota=%lu%n",
	           &r->boots, &r->streak, &r->checks, &r->ops, &r->last_error, &r->reason, &r->ota,
	           &used) != 7 ||
	    used < 0 || text[used] != '\0' || r->ota > 65535 || r->boots > NF_DEVICE_COUNTER_MAX ||
	    r->streak > NF_DEVICE_COUNTER_MAX || r->checks > NF_DEVICE_COUNTER_MAX ||
	    r->ops > NF_DEVICE_COUNTER_MAX || r->last_error < -1 || r->last_error > 255 ||
	    r->reason < RESET_POWER_ON || r->reason > RESET_EXCEPTION) {
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

	/* A device keeps its OTA port across a reset: a port picked with
	 * --ota IP:0 rides along. */
	snprintf(text, sizeof text,
	         "boots=%lu streak=%lu checks=%lu ops=%lu last=%d reason=%d ota=%u", d->r.boots,
	         d->r.streak, d->r.checks, d->port.flash.cut.count, d->r.last_error, (int)reason,
	         (unsigned)nf_ota_recv_port(&d->ota));
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
	const struct nf_device_options *o = &d->o;
	char version[NF_POSIX_IMAGE_FIELD] = "", err[NF_POSIX_ERR_MAX];
	uint8_t *fw = NULL, *fs = NULL;
	size_t fwlen = 0, fslen = 0;
	uint32_t size;
	int rc = NF_EXIT_USAGE;

	if (o->image != NULL) {
		fw = load_image(o->image, NF_IMAGE_FIRMWARE, &fwlen, version, sizeof version);
	} else if (o->version != NULL && o->device != NULL) {
		size =
		    o->geometry.slot_size < NF_SIM_FW_SIZE ? o->geometry.slot_size : NF_SIM_FW_SIZE;
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
		size = o->geometry.fs_size < NF_SIM_FS_SIZE ? o->geometry.fs_size : NF_SIM_FS_SIZE;
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

/* What the bootloader did, on the console, before the firmware runs. */
static void booted(void *ctx, const struct nf_posix_boot *b)
{
	static const char *const how_names[] = {"normal", "trial", "reverted", "fallback"};
	struct device *d = ctx;

	if (b->how == NF_POSIX_BOOT_REVERTED || b->how == NF_POSIX_BOOT_FALLBACK)
		nf_posix_logf(&d->port, "[boot] ", "%s: booting slot %s", b->why,
		              nf_posix_slot_name(b->slot));
	if (!b->fs_valid)
		nf_posix_logf(&d->port, "[boot] ", "filesystem: %s", b->fs_error);
	snprintf(d->fs_version, sizeof d->fs_version, "%s", b->fs_valid ? b->fs.version : "");
	nf_posix_logf(&d->port, "[boot] ", "slot=%s version=%s fs=%s device=%s mode=%s",
	              nf_posix_slot_name(b->slot), b->firmware.version,
	              b->fs_valid ? b->fs.version : "invalid",
	              b->firmware.device[0] != '\0' ? b->firmware.device : "-", how_names[b->how]);
}

/* The firmware's settings for the shared start-up (firmware.c). */
static struct nf_sim_firmware firmware(struct device *d)
{
	return (struct nf_sim_firmware){.port = &d->port,
	                                .client = &d->client,
	                                .server = d->o.server,
	                                .build = d->o.build,
	                                .path_form = d->o.path_form,
	                                .name = d->o.device,
	                                .on_message = on_message,
	                                .booted = booted,
	                                .ctx = d};
}

/* A power-on: the bootloader and the firmware's start-up. Returns 0 when
 * the firmware runs, or an exit status. A crashing firmware reboots from
 * here. */
static int boot(struct device *d)
{
	static const char *const reasons[] = {"power on", "software restart", "exception"};
	const struct nf_sim_firmware fw = firmware(d);
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];
	enum nf_sim_start up;

	d->r.boots++;
	d->r.streak++;
	if (d->r.streak > d->o.max_boots) {
		nf_posix_logf(&d->port, "[sim] ", "%lu boots without a check: boot loop, giving up",
		              d->r.streak - 1);
		return DEVICE_EXIT_BOOT_LOOP;
	}
	nf_posix_logf(&d->port, "[boot] ", "reset reason: %s", reasons[d->r.reason]);
	up = nf_sim_power_on(&fw, &b, err, sizeof err);
	switch (up) {
	case NF_SIM_BRICKED:
	case NF_SIM_FLASH_FAILED:
		nf_posix_logf(&d->port, "[boot] ", "%s", err);
		return up == NF_SIM_BRICKED ? DEVICE_EXIT_BRICKED : DEVICE_EXIT_FLASH;
	case NF_SIM_CRASHED:
		/* What the ESP8266 prints when a sketch dies before it is up. */
		nf_posix_logf(&d->port, "[boot] ",
		              "Fatal exception 0(IllegalInstructionCause): firmware %s crashed at "
		              "boot (simulated)",
		              b.firmware.version);
		return reboot(d, RESET_EXCEPTION);
	case NF_SIM_CONFIRM_FAILED:
		nf_posix_logf(&d->port, "[boot] ", "cannot confirm slot %s: %s",
		              nf_posix_slot_name(b.slot), err);
		return DEVICE_EXIT_FLASH;
	default: break;
	}
	if (b.how == NF_POSIX_BOOT_TRIAL)
		nf_posix_logf(&d->port, "[boot] ", "slot %s confirmed", nf_posix_slot_name(b.slot));
	if (up == NF_SIM_NO_NAME) {
		nf_tool_error("the firmware carries no device name: give --device");
		return NF_EXIT_USAGE;
	}
	if (up == NF_SIM_TOO_LONG) {
		nf_tool_error("device name or version too long for the core (%d bytes)",
		              NF_CLIENT_FIELD_MAX - 1);
		return NF_EXIT_USAGE;
	}
	d->name = d->client.device;
	return 0;
}

/* Sets up the port from the options, and checks the client's settings fit
 * by setting it up once. 0 or an exit status. */
static int configure(struct device *d)
{
	const struct nf_device_options *o = &d->o;
	const struct nf_sim_firmware fw = firmware(d);
	char err[NF_POSIX_ERR_MAX];

	if (o->pubkey != NULL && nf_posix_load_pubkey(&d->port, o->pubkey, err, sizeof err) != 0) {
		nf_tool_error("--pubkey: %s", err);
		return NF_EXIT_USAGE;
	}
	d->port.timeout_ms = o->timeout_ms;
	d->port.credential = o->credential;
	d->port.connect_timeout_ms = o->connect_ms;
	if (o->mac != NULL && nf_posix_set_mac(&d->port, o->mac) != 0) {
		nf_tool_error("--mac: '%s' is not six hex pairs separated by colons", o->mac);
		return NF_EXIT_USAGE;
	}
	nf_posix_powercut_init(&d->port.flash.cut, o->power_cut_at, d->r.ops);
	if (nf_sim_client_init(&fw) != 0) {
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
	const struct nf_device_options *o = &d->o;
	char err[NF_POSIX_ERR_MAX];

	if (o->ota_ip[0] != '\0') {
		struct nf_ota_recv_config cfg = {.password = o->ota_auth,
		                                 .pause_ms = o->ota_pause_ms,
		                                 .timeout_ms = NF_OTA_ANSWER_TIMEOUT_MS,
		                                 .log = stdout};
		struct nf_ota_sink sink;

		nf_ota_flash_sink_init(&d->ota_sink, &d->port, 0, &sink);
		if (nf_ota_recv_open(&d->ota, o->ota_ip,
		                     o->ota_port != 0 ? o->ota_port : (uint16_t)d->r.ota, &cfg,
		                     &sink, err, sizeof err) != 0) {
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

/* One wait on the OTA socket. 0, or an exit status when a reboot failed.
 * The receiver logs every push on the console, a failure included. */
static int handle_ota(struct device *d, long ms)
{
	struct nf_ota_recv *r = &d->ota;
	bool firmware;

	if (nf_ota_recv_poll(r, (int)ms) != NF_OTA_RECV_DONE)
		return 0;
	firmware = r->invite.command == NF_OTA_CMD_FIRMWARE;
	nf_posix_logf(&d->port, "[ota] ", "%s image of %u bytes committed",
	              firmware ? "firmware" : "filesystem", (unsigned)r->received);
	/* ArduinoOTA restarts after every successful update. */
	return reboot(d, RESET_SOFTWARE);
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

/* One check of a stock client (stock.c): no NoFUSS messages, its own. */
static void stock_check(struct device *d)
{
	char err[NF_POSIX_ERR_MAX];
	enum nf_sim_stock res = nf_sim_stock_check(&d->port, d->o.client, d->o.url_version,
	                                           d->o.server, d->name, d->client.version, err,
	                                           sizeof err);

	d->uptodate = res == NF_SIM_STOCK_CURRENT;
	d->r.last_error = res == NF_SIM_STOCK_FAILED ? (int)NF_ERR_TRANSPORT : -1;
	if (res == NF_SIM_STOCK_CURRENT)
		nf_posix_logf(&d->port, "[stock] ", "no update: %s is current", d->client.version);
	else if (res == NF_SIM_STOCK_FAILED)
		nf_posix_logf(&d->port, "[stock] ", "update failed: %s", err);
	else
		nf_port_reboot(&d->port);
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
		if (d->o.client >= NF_SIM_CLIENT_ESP8266)
			stock_check(d);
		else
			nf_client_handle(&d->client);
		d->r.checks++;
		d->r.streak = 0;
		if (d->o.client < NF_SIM_CLIENT_ESP8266)
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
	rc = nf_device_options(&d->o, argc, argv);
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
	case 0:
		/* At power-on (not a reboot, which passes the same arguments):
		 * the flash wins over what would only provision an empty one. */
		if (d->r.boots == 0 && (d->o.version != NULL || d->o.image != NULL ||
		                        d->o.fs_version != NULL || d->o.fs_image != NULL))
			nf_posix_logf(&d->port, "[sim] ",
			              "%s already holds a firmware: it boots that, and --version, "
			              "--fs-version, --image and --fs-image are ignored (they only "
			              "provision an empty flash directory; remove it to start again)",
			              d->o.flash);
		break;
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
