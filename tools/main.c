/*
 * main.c - `nofuss`, the command-line tools of the nofuss project: one
 * program with subcommands (`nofuss device`, `nofuss mkimage`, ...). This
 * file only dispatches: the table below maps a name to the function in the
 * subcommand's own file. The tools use the public API only (the device core
 * and its POSIX port), never the server's internals.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "args.h"
#include "image.h"
#include "inventory.h"
#include "ota.h"
#include "push.h"
#include "sign.h"
#include "sim.h"

static const struct {
	const char *name;
	nf_command_fn run;
	const char *summary;
	const struct nf_exit *exits; /* its exit statuses, bad usage aside */
} commands[] = {
    {"device", nf_cmd_device, "run a simulated ESP8266 that updates itself from a NoFUSS server",
     nf_device_exits},
    {"mkimage", nf_cmd_mkimage, "write a firmware or filesystem image the simulator accepts",
     nf_mkimage_exits},
    {"info", nf_cmd_info, "print the version and kind an image carries, and check it",
     nf_info_exits},
    {"fleet", nf_cmd_fleet, "run thousands of simulated devices against one server",
     nf_fleet_exits},
    {"push", nf_cmd_push, "upload PlatformIO builds to devices found through MQTT", nf_push_exits},
    {"ota-send", nf_cmd_ota_send, "push one image to a device over ArduinoOTA (espota)",
     nf_ota_send_exits},
    {"ota-recv", nf_cmd_ota_recv, "receive one ArduinoOTA push as a device would, then exit",
     nf_ota_recv_exits},
    {"keygen", nf_cmd_keygen, "make an RSA key pair for signed images", nf_keygen_exits},
    {"pubkey", nf_cmd_pubkey, "write a key's public half as PEM or as a sketch's C header",
     nf_pubkey_exits},
    {"sign", nf_cmd_sign, "sign an image as the ESP8266 core verifies it", nf_sign_exits},
    {"verify", nf_cmd_verify, "check that images are signed by a key", nf_verify_exits},
    {"devices", nf_cmd_devices, "list the fleet nofussd knows, or show one device (admin API)",
     nf_devices_exits},
    {"explain", nf_cmd_explain, "say why a device got the answer it got at its last check",
     nf_explain_exits},
    {"release", nf_cmd_release, "upload, list, show or delete releases (admin API)",
     nf_release_exits},
    {"rollout", nf_cmd_rollout, "start, list, show, pause, resume, advance or abort rollouts",
     nf_rollout_exits},
};

#define EXIT_LEAD_WIDTH 12 /* "  ota-send  " */

/* Bad usage: the same status for every command. */
static const struct nf_exit usage_row[] = {{NF_EXIT_USAGE, NF_EXIT_USAGE_TEXT}, {0, NULL}};

static void usage(FILE *out)
{
	fprintf(out, "Usage: nofuss COMMAND [OPTION]...\n"
	             "Tools for NoFUSS over-the-air updates of ESP8266/ESP32 fleets.\n\n"
	             "Commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
	        "\n'nofuss COMMAND --help' describes a command.\n"
	        "  -h, --help     show this help and exit\n"
	        "  -V, --version  show the version and exit\n\n"
	        "Exit status (each command's --help shows its rows, and nofuss(1) the same):\n");
	nf_exit_rows(out, usage_row, false, "  any       ");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		char lead[EXIT_LEAD_WIDTH + 1];

		snprintf(lead, sizeof lead, "  %-*s", EXIT_LEAD_WIDTH - 2, commands[i].name);
		nf_exit_rows(out, commands[i].exits, false, lead);
	}
}

int main(int argc, char *argv[])
{
	char name[64];
	int rc;

	if (argc < 2) {
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return NF_EXIT_OK;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("nofuss %s\n", NOFUSS_VERSION);
		return NF_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		snprintf(name, sizeof name, "nofuss %s", commands[i].name);
		nf_tool_set_name(name);
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fprintf(stderr, "nofuss: cannot initialise libcurl\n");
			return 1;
		}
		rc = commands[i].run(argc - 1, argv + 1, argv);
		curl_global_cleanup();
		return rc;
	}
	fprintf(stderr, "nofuss: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return NF_EXIT_USAGE;
}
