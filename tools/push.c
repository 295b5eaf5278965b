/*
 * push.c - `nofuss push ENV...`: over-the-air upload to devices described
 * by PlatformIO environments, the replacement for the seed's deploy script
 * (PROTOCOLS.md sections 7 and 8).
 *
 * For each environment: its section in platformio.ini (push_config.c) gives
 * the device's MQTT topic, the ArduinoOTA password and port and the built
 * image; the broker's RETAINED value of that topic (push_mqtt.c) gives the
 * device's IP address, which must be a valid IPv4 dotted quad or IPv6
 * address. Every environment is resolved before anything is uploaded, so a
 * typo in the fifth name does not leave a fleet half updated. --dry-run
 * stops after resolving and prints what would be done.
 *
 * The upload itself (ArduinoOTA, tools/ota*.c) is not written yet: it plugs
 * in at push_upload() below. Exit codes are the original script's (1 bad
 * usage, 2 unknown environment or no topic, 3 no valid IP), not the other
 * subcommands' 2 for bad usage: scripts around the original rely on them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mosquitto.h>

#include "nofuss.h"
#include "push_config.h"
#include "push_mqtt.h"

#define CONFIG_DEFAULT     "platformio.ini"
#define BROKER_DEFAULT     "localhost"
#define BROKER_ENV         "NOFUSS_MQTT_BROKER"
#define USER_ENV           "NOFUSS_MQTT_USER"
#define PASSWORD_ENV       "NOFUSS_MQTT_PASSWORD"
#define TIMEOUT_DEFAULT_MS 5000L
#define TIMEOUT_MAX_S      3600.0
#define NF_PUSH_MAX_QUOTED (NF_PUSH_MAX_PAYLOAD * 4u + 8u) /* a value, escaped */

/* Exit status (documented in usage()). */
#define PUSH_EXIT_USAGE     1
#define PUSH_EXIT_ENV       2
#define PUSH_EXIT_NO_IP     3
#define PUSH_EXIT_NO_UPLOAD 4
#define PUSH_EXIT_IMAGE     5

struct options {
	const char *config, *file, *fs_path, *cafile;
	bool fs, all, dry_run;
	long timeout_ms;
	struct nf_push_broker broker;
};

/* One resolved environment: everything the upload needs. */
struct push_job {
	const struct nf_push_env *env;
	char ip[NF_PUSH_MAX_PAYLOAD];
	const char *image; /* points into env or at an option */
	long long size;
	bool fs; /* filesystem image (espota -s, command 100) */
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss push [OPTION]... ENV...\n"
	        "       nofuss push [OPTION]... --all\n"
	        "Upload the built image of PlatformIO environments to their devices over the\n"
	        "air. Each [env:ENV] section of platformio.ini names the device's MQTT topic\n"
	        "(topic or custom_topic) and may give upload_flags = --auth=PASS --port N; the\n"
	        "device's IP address is the value retained on that topic by the broker.\n\n"
	        "Project:\n"
	        "  -c, --config FILE     the PlatformIO project file (default ./" CONFIG_DEFAULT
	        ")\n"
	        "  -a, --all             every environment that has a topic\n"
	        "  -f, --file FILE       upload FILE instead of .pio/build/ENV/firmware.bin\n"
	        "                        (one environment only; with --fs, the filesystem)\n"
	        "      --fs[=FILE]       upload the filesystem image instead: FILE, or\n"
	        "                        .pio/build/ENV/littlefs.bin or spiffs.bin\n"
	        "  -n, --dry-run         resolve everything, print what would be done, stop\n"
	        "MQTT (finding the device):\n"
	        "  -b, --broker HOST[:PORT]  the broker (default $" BROKER_ENV ", else\n"
	        "                        " BROKER_DEFAULT "; port 1883, 8883 with --cafile)\n"
	        "  -u, --user USER       MQTT user (default $" USER_ENV ")\n"
	        "  -P, --password PASS   MQTT password (default $" PASSWORD_ENV ")\n"
	        "      --cafile FILE     connect with TLS, checking the broker against FILE\n"
	        "  -t, --timeout SEC     wait at most SEC per environment for the retained\n"
	        "                        address (default 5)\n"
	        "  -h, --help            show this help and exit\n\n"
	        "Exit status: 0 ok (with --dry-run: every environment resolved); 1 bad usage;\n"
	        "2 unknown environment, no topic, or an unreadable or invalid " CONFIG_DEFAULT ";\n"
	        "3 no valid IP address (nothing retained within the timeout, an invalid value,\n"
	        "or the broker unreachable or refusing); 4 upload not available yet (this build\n"
	        "cannot upload: use --dry-run); 5 image missing or unreadable. With several\n"
	        "environments, the status of the first that failed; nothing is uploaded then.\n");
}

/* value, printable, quoted and escaped ("\x00"-style), for messages. */
static void quote(const char *value, bool truncated, char out[NF_PUSH_MAX_QUOTED])
{
	size_t n = 0;

	out[n++] = '\'';
	for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++) {
		if (*c >= 0x20 && *c < 0x7f && *c != '\\' && *c != '\'')
			out[n++] = (char)*c;
		else
			n += (size_t)snprintf(out + n, 5, "\\x%02x", *c);
	}
	out[n++] = '\'';
	if (truncated) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int parse_options(int argc, char *argv[], struct options *o)
{
	enum { OPT_FS = 256, OPT_CAFILE };
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"all", no_argument, NULL, 'a'},
	                                     {"file", required_argument, NULL, 'f'},
	                                     {"fs", optional_argument, NULL, OPT_FS},
	                                     {"dry-run", no_argument, NULL, 'n'},
	                                     {"broker", required_argument, NULL, 'b'},
	                                     {"user", required_argument, NULL, 'u'},
	                                     {"password", required_argument, NULL, 'P'},
	                                     {"cafile", required_argument, NULL, OPT_CAFILE},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *broker = NULL;
	int c;

	memset(o, 0, sizeof *o);
	o->config = CONFIG_DEFAULT;
	o->timeout_ms = TIMEOUT_DEFAULT_MS;
	optind = 0;
	while ((c = getopt_long(argc, argv, "c:af:nb:u:P:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'a': o->all = true; break;
		case 'f': o->file = optarg; break;
		case OPT_FS:
			o->fs = true;
			o->fs_path = optarg;
			break;
		case 'n': o->dry_run = true; break;
		case 'b': broker = optarg; break;
		case 'u': o->broker.user = optarg; break;
		case 'P': o->broker.password = optarg; break;
		case OPT_CAFILE: o->cafile = optarg; break;
		case 't':
			if (nf_parse_seconds("--timeout", optarg, 0.1, TIMEOUT_MAX_S,
			                     &o->timeout_ms) != 0)
				return -1;
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (o->all == (optind < argc)) {
		nf_tool_error(o->all ? "--all and environment names exclude each other"
		                     : "no environment given (ENV... or --all; see --help)");
		return -1;
	}
	if (o->file != NULL && (o->all || argc - optind > 1)) {
		nf_tool_error("--file needs exactly one environment");
		return -1;
	}
	if (o->file != NULL && o->fs_path != NULL) {
		nf_tool_error("--file and --fs=FILE exclude each other");
		return -1;
	}
	if (o->fs_path != NULL && (o->all || argc - optind > 1)) {
		nf_tool_error("--fs=FILE needs exactly one environment");
		return -1;
	}
	if (broker == NULL)
		broker = getenv(BROKER_ENV);
	if (broker == NULL || broker[0] == '\0')
		broker = BROKER_DEFAULT;
	if (nf_push_broker_parse(broker, o->cafile != NULL ? NF_PUSH_MQTTS_PORT : NF_PUSH_MQTT_PORT,
	                         &o->broker) != 0) {
		nf_tool_error("broker '%s' is not HOST, HOST:PORT or [IPV6]:PORT", broker);
		return -1;
	}
	if (o->broker.user == NULL)
		o->broker.user = getenv(USER_ENV);
	if (o->broker.password == NULL)
		o->broker.password = getenv(PASSWORD_ENV);
	o->broker.cafile = o->cafile;
	o->broker.timeout_ms = o->timeout_ms;
	return 0;
}

/* The environment's image: --file/--fs=FILE, else PlatformIO's. Returns 0
 * or PUSH_EXIT_IMAGE after saying why. */
static int find_image(const struct options *o, struct push_job *job)
{
	const struct nf_push_env *e = job->env;
	struct stat sb;

	job->fs = o->fs;
	if (o->file != NULL)
		job->image = o->file;
	else if (o->fs_path != NULL)
		job->image = o->fs_path;
	else if (!o->fs)
		job->image = e->firmware;
	else if (strcmp(e->filesystem, "spiffs") == 0)
		job->image = e->spiffs;
	else if (strcmp(e->filesystem, "littlefs") == 0 || stat(e->spiffs, &sb) != 0)
		job->image = e->littlefs; /* LittleFS is PlatformIO's default */
	else
		job->image = e->spiffs;

	if (stat(job->image, &sb) != 0) {
		nf_tool_error("%s: image %s: %s (build it first: pio run -e %s%s)", e->name,
		              job->image, strerror(errno), e->name, job->fs ? " -t buildfs" : "");
		return PUSH_EXIT_IMAGE;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size == 0) {
		nf_tool_error("%s: image %s is not a non-empty regular file", e->name, job->image);
		return PUSH_EXIT_IMAGE;
	}
	job->size = (long long)sb.st_size;
	return 0;
}

/* Finds the device's IP address. Returns 0 or PUSH_EXIT_NO_IP after
 * saying why. */
static int find_ip(const struct options *o, struct push_job *job)
{
	const struct nf_push_env *e = job->env;
	char err[NF_PUSH_MAX_ERRMSG], quoted[NF_PUSH_MAX_QUOTED];
	bool truncated;
	int rc;

	rc = nf_push_mqtt_retained(&o->broker, e->topic, job->ip, &truncated, err, sizeof err);
	if (rc == NF_PUSH_MQTT_FAILED) {
		nf_tool_error("%s: %s", e->name, err);
		return PUSH_EXIT_NO_IP;
	}
	if (rc == NF_PUSH_MQTT_NONE) {
		nf_tool_error(
		    "%s: nothing retained on topic '%s' within %ld.%03ld s (has the device "
		    "announced itself to %s:%d?)",
		    e->name, e->topic, o->timeout_ms / 1000, o->timeout_ms % 1000, o->broker.host,
		    o->broker.port);
		return PUSH_EXIT_NO_IP;
	}
	/* The original read it with $(mosquitto_sub ...), which drops trailing
	 * newlines: a device publishing "1.2.3.4\n" worked, so it still does. */
	for (size_t n = strlen(job->ip);
	     n > 0 && (job->ip[n - 1] == '\n' || job->ip[n - 1] == '\r');)
		job->ip[--n] = '\0';
	if (truncated || !nf_push_valid_ip(job->ip)) {
		quote(job->ip, truncated, quoted);
		nf_tool_error("%s: invalid IP address %s retained on topic '%s'", e->name, quoted,
		              e->topic);
		return PUSH_EXIT_NO_IP;
	}
	return 0;
}

/* Resolves one environment named name into job. Returns 0 or an exit
 * status after saying why. */
static int resolve(const struct options *o, const struct nf_push_config *cfg, const char *name,
                   struct push_job *job)
{
	int rc;

	memset(job, 0, sizeof *job);
	job->env = nf_push_config_find(cfg, name);
	if (job->env == NULL) {
		nf_tool_error("unknown environment '%s': %s has no [env:%s]", name, o->config,
		              name);
		return PUSH_EXIT_ENV;
	}
	if (job->env->problem[0] != '\0') {
		nf_tool_error("%s: %s", name, job->env->problem);
		return PUSH_EXIT_ENV;
	}
	if (job->env->topic[0] == '\0') {
		nf_tool_error("%s: [env:%s] (%s:%u) has no topic or custom_topic", name, name,
		              o->config, job->env->line);
		return PUSH_EXIT_ENV;
	}
	rc = find_ip(o, job);
	if (rc == 0)
		rc = find_image(o, job);
	return rc;
}

static void print_job(const struct push_job *job)
{
	const struct nf_push_env *e = job->env;

	printf("%s: topic=%s ip=%s port=%u auth=%s kind=%s image=%s size=%lld\n", e->name, e->topic,
	       job->ip, e->port, e->has_auth ? "yes" : "no", job->fs ? "filesystem" : "firmware",
	       job->image, job->size);
}

/* The upload step: ArduinoOTA to job->ip:port (PROTOCOLS.md section 7).
 * Returns 0 or an exit status after saying why. Until tools/ota*.c lands,
 * it only says that it cannot. */
static int push_upload(const struct push_job *job)
{
	nf_tool_error("%s: upload not available yet (resolved: %s port %u); use --dry-run",
	              job->env->name, job->ip, job->env->port);
	return PUSH_EXIT_NO_UPLOAD;
}

int nf_cmd_push(int argc, char *argv[], char *prog_argv[])
{
	struct options o;
	struct nf_push_config *cfg = NULL;
	struct push_job *jobs = NULL;
	size_t njobs = 0, nnames;
	bool lib = false;
	int rc, first = 0;

	(void)prog_argv;
	rc = parse_options(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : PUSH_EXIT_USAGE;

	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL) {
		nf_tool_error("out of memory");
		rc = PUSH_EXIT_ENV;
		goto done;
	}
	if (nf_push_config_read(o.config, cfg) != 0) {
		nf_tool_error("%s", cfg->error);
		rc = PUSH_EXIT_ENV;
		goto done;
	}
	nnames = o.all ? cfg->count : (size_t)(argc - optind);
	jobs = calloc(nnames > 0 ? nnames : 1, sizeof *jobs);
	if (jobs == NULL) {
		nf_tool_error("out of memory");
		rc = PUSH_EXIT_ENV;
		goto done;
	}
	mosquitto_lib_init();
	lib = true;
	for (size_t i = 0; i < nnames; i++) {
		const char *name = o.all ? cfg->env[i].name : argv[optind + (int)i];

		if (o.all && cfg->env[i].topic[0] == '\0')
			continue;
		rc = resolve(&o, cfg, name, &jobs[njobs]);
		if (rc != 0) {
			if (first == 0)
				first = rc;
			continue;
		}
		if (o.dry_run)
			print_job(&jobs[njobs]);
		njobs++;
	}
	if (o.all && njobs == 0 && first == 0) {
		nf_tool_error("no environment in %s has a topic", o.config);
		first = PUSH_EXIT_ENV;
	}
	rc = first;
	if (rc != 0 || o.dry_run)
		goto done;
	for (size_t i = 0; i < njobs && rc == 0; i++)
		rc = push_upload(&jobs[i]);
done:
	if (lib)
		mosquitto_lib_cleanup();
	free(jobs);
	free(cfg);
	return rc;
}
