/*
 * device_options.c - `nofuss device`'s command line (see device.c): its
 * help, its option table, and the rules between options.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "nofuss/posix.h"
#include "ota.h"
#include "sim.h"

#define POWER_CUT_ENV       "NOFUSS_POWER_CUT_AT"
#define INTERVAL_DEFAULT_MS 60000L
#define INTERVAL_MAX_S      (7.0 * 86400.0)
#define TIMEOUT_MAX_S       3600.0
#define MAX_BOOTS_DEFAULT   8ul
#define MAX_BOOTS_MAX       1000ul
#define MAX_CHECKS_MAX      100000000ul

const struct nf_exit nf_device_exits[] = {
    {NF_EXIT_OK, "the checks ran and the last one went well"},
    {DEVICE_EXIT_CHECK_FAILED, "the last check failed"},
    {DEVICE_EXIT_FLASH, "the flash directory is unusable, or the reboot failed"},
    {DEVICE_EXIT_BRICKED, "bricked: no slot holds a bootable firmware"},
    {DEVICE_EXIT_BOOT_LOOP, "boot loop: --max-boots boots without a check"},
    {NF_POSIX_POWER_CUT_EXIT, "power cut (the fault injector)"},
    {0, NULL},
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
	        "      --client KIND        the client the firmware runs: nofuss (default),\n"
	        "                           nofuss-path, esp8266-updater, esp32-updater,\n"
	        "                           esphome, tasmota (docs/SIMULATOR.md)\n"
	        "      --url-version        esphome: the manifest URL ends ?version=VERSION,\n"
	        "                           the version it runs (docs/PROTOCOL.md 5.3)\n"
	        "      --pubkey FILE        accept only images signed by this key (PEM)\n"
	        "      --credential NAME:SECRET  send it as HTTP Basic with every request\n"
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
	        "                           console and kept across reboots); a pushed\n"
	        "                           image is written to the spare slot (or the\n"
	        "                           filesystem) and booted\n"
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
	        "  -h, --help               show this help and exit\n");
	nf_exit_help(out, nf_device_exits);
}

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
	((struct nf_device_options *)opts)->max_checks = 1;
	return 0;
}

static int set_max_checks(void *opts, const char *value)
{
	unsigned long n;

	if (nf_parse_count("--max-checks", value, 0, MAX_CHECKS_MAX, &n))
		return -1;
	((struct nf_device_options *)opts)->max_checks = (long)n;
	return 0;
}

static int set_ota(void *opts, const char *value)
{
	struct nf_device_options *o = opts;
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

static int set_client(void *opts, const char *value)
{
	struct nf_device_options *o = opts;

	return nf_sim_client_option(value, &o->client, &o->path_form);
}

static int set_mqtt(void *opts, const char *value)
{
	struct nf_device_options *o = opts;

	return parse_host_port("--mqtt", value, o->mqtt_host, sizeof o->mqtt_host, &o->mqtt_port, 1,
	                       NF_ANNOUNCE_PORT_DEFAULT);
}

#define O struct nf_device_options
static const struct nf_opt opts[] = {
    NF_OPT_STRING("flash", 'f', O, flash),
    NF_OPT_STRING("server", 's', O, server),
    NF_OPT_STRING("device", 'd', O, device),
    NF_OPT_STRING("mac", 'm', O, mac),
    NF_OPT_STRING("build", 'b', O, build),
    NF_OPT_FLAG("path-form", 'p', O, path_form),
    NF_OPT_CALL("client", 0, NF_OPT_CALL, set_client),
    NF_OPT_FLAG("url-version", 0, O, url_version),
    NF_OPT_STRING("pubkey", 0, O, pubkey),
    NF_OPT_STRING("credential", 0, O, credential),
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
    NF_OPT_COUNT("power-cut-at", 0, O, power_cut_at, 1, NF_DEVICE_COUNTER_MAX),
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

int nf_device_options(struct nf_device_options *o, int argc, char *argv[])
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
	if (o->url_version && o->client != NF_SIM_CLIENT_ESPHOME) {
		nf_tool_error("--url-version is for --client esphome");
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
