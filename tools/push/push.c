/*
 * push.c - `nofuss push ENV...`: over-the-air upload to devices described
 * by PlatformIO environments, the replacement for the seed's deploy script
 * (docs/PEERS.md sections 7 and 8).
 *
 * For each environment: its section in platformio.ini (config.c) gives
 * the device's MQTT topic, the ArduinoOTA password and port and the built
 * image; the broker's RETAINED value of that topic (mqtt.c) gives the
 * device's IP address, which must be one host's IPv4 address (the push is
 * IPv4 only). Every environment is resolved before anything is uploaded, so a
 * typo in the fifth name does not leave a fleet half updated. --dry-run
 * stops after resolving and prints what would be done.
 *
 * Then every environment is pushed (run.c), up to --jobs at a time, one
 * thread each: a watch on the device's "hello" topics (mqtt.c) notes the
 * retained version BEFORE the push, the image goes over ArduinoOTA
 * (ota/send.c), and the push only counts when the device comes back: it
 * announces its version (fsversion for --fs) afresh after the upload, that
 * version is the one expected (--expect-version, else the one the image
 * carries, else merely a different one), and a heartbeat or status "1"
 * arrives after the upload too. A summary table ends the run.
 * Exit codes follow the table every subcommand shares (2 bad usage); the
 * original script's 3 (no valid IP) keeps its meaning, its 1 (bad usage)
 * and 2 (unknown environment or no topic) are swapped.
 */
#include <errno.h>
#include <getopt.h> /* optind */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mosquitto.h>

#include "args.h"
#include "push.h"

#define CONFIG_DEFAULT     "platformio.ini"
#define BROKER_DEFAULT     "localhost"
#define BROKER_ENV         "NOFUSS_MQTT_BROKER"
#define USER_ENV           "NOFUSS_MQTT_USER"
#define PASSWORD_ENV       "NOFUSS_MQTT_PASSWORD"
#define TIMEOUT_DEFAULT_MS 5000L
#define TIMEOUT_MAX_S      3600.0
#define NF_PUSH_MAX_QUOTED (NF_PUSH_MAX_PAYLOAD * 4u + 8u) /* a value, escaped */
#define JOBS_DEFAULT       4
#define WAIT_DEFAULT_MS    60000L
#define WAIT_MAX_S         3600.0

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
	        "Push and proof:\n"
	        "  -j, --jobs N          push to N devices at a time (default 4)\n"
	        "  -w, --wait SEC        after the upload, wait at most SEC for the device to\n"
	        "                        come back (default 60)\n"
	        "  -e, --expect-version V  the version the device must announce (default:\n"
	        "                        the one the image carries; else any new one)\n"
	        "MQTT (finding the device):\n"
	        "  -b, --broker HOST[:PORT]  the broker (default $" BROKER_ENV ", else\n"
	        "                        " BROKER_DEFAULT "; port 1883, 8883 with --cafile)\n"
	        "  -u, --user USER       MQTT user (default $" USER_ENV ")\n"
	        "  -P, --password PASS   MQTT password (default $" PASSWORD_ENV ")\n"
	        "      --cafile FILE     connect with TLS, checking the broker against FILE\n"
	        "  -t, --timeout SEC     wait at most SEC per environment for the retained\n"
	        "                        address (default 5)\n"
	        "  -h, --help            show this help and exit\n\n"
	        "After the upload the device must come back: announce <base>/version\n"
	        "(--fs: <base>/fsversion) again, as expected, and a <base>/heartbeat or\n"
	        "<base>/status = 1, <base> being the topic without its last segment.\n"
	        "When resolving fails nothing is uploaded (the status of the first\n"
	        "environment that failed); otherwise every environment is pushed and the\n"
	        "status is the first failed one's in the summary.\n");
	nf_exit_help(out, nf_push_exits);
}

const struct nf_exit nf_push_exits[] = {
    {NF_EXIT_OK, "ok (with --dry-run: every environment resolved)"},
    {PUSH_EXIT_ENV, "unknown environment, no topic, or an unreadable or invalid " CONFIG_DEFAULT},
    {PUSH_EXIT_NO_IP,
     "no usable IP address (nothing retained within the timeout, a value that is not one "
     "host's IPv4 address, the broker unreachable or refusing)"},
    {PUSH_EXIT_UPLOAD,
     "the upload failed (no answer, a wrong password, the device refused or failed the image "
     "or did not acknowledge all of it, the upload's deadline passed)"},
    {PUSH_EXIT_IMAGE, "image missing or unreadable"},
    {PUSH_EXIT_PROOF,
     "uploaded but no proof: the device did not come back within --wait, came back with "
     "another version, or could not be watched"},
    {0, NULL},
};

/* The len bytes of value (at most NF_PUSH_MAX_PAYLOAD - 1), printable,
 * quoted and escaped ("\x00"-style), for messages. */
static void quote(const char *value, size_t len, bool truncated, char out[NF_PUSH_MAX_QUOTED])
{
	const unsigned char *c = (const unsigned char *)value;
	size_t n = 0;

	out[n++] = '\'';
	for (size_t i = 0; i < len; i++) {
		if (c[i] >= 0x20 && c[i] < 0x7f && c[i] != '\\' && c[i] != '\'')
			out[n++] = (char)c[i];
		else
			n += (size_t)snprintf(out + n, 5, "\\x%02x", c[i]);
	}
	out[n++] = '\'';
	if (truncated) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static int set_fs(void *opts, const char *value)
{
	struct nf_push_options *o = opts;

	o->fs = true;
	o->fs_path = value;
	return 0;
}

static int set_expect(void *opts, const char *value)
{
	struct nf_push_options *o = opts;

	if (value[0] == '\0' || strlen(value) >= NF_PUSH_MAX_PAYLOAD) {
		nf_tool_error("--expect-version: empty or longer than %u characters",
		              NF_PUSH_MAX_PAYLOAD - 1);
		return -1;
	}
	o->expect = value;
	return 0;
}

static const struct nf_opt opts[] = {
    NF_OPT_STRING("config", 'c', struct nf_push_options, config),
    NF_OPT_FLAG("all", 'a', struct nf_push_options, all),
    NF_OPT_STRING("file", 'f', struct nf_push_options, file),
    NF_OPT_CALL("fs", 0, NF_OPT_CALL_OPTARG, set_fs),
    NF_OPT_FLAG("dry-run", 'n', struct nf_push_options, dry_run),
    NF_OPT_STRING("broker", 'b', struct nf_push_options, broker_text),
    NF_OPT_STRING("user", 'u', struct nf_push_options, broker.user),
    NF_OPT_STRING("password", 'P', struct nf_push_options, broker.password),
    NF_OPT_STRING("cafile", 0, struct nf_push_options, cafile),
    NF_OPT_SECONDS("timeout", 't', struct nf_push_options, timeout_ms, 0.1, TIMEOUT_MAX_S),
    NF_OPT_COUNT("jobs", 'j', struct nf_push_options, jobs, 1, NF_PUSH_MAX_JOBS),
    NF_OPT_SECONDS("wait", 'w', struct nf_push_options, wait_ms, 0.1, WAIT_MAX_S),
    NF_OPT_CALL("expect-version", 'e', NF_OPT_CALL, set_expect),
    NF_OPT_END,
};

static int parse_options(int argc, char *argv[], struct nf_push_options *o)
{
	const char *broker;
	int rc;

	memset(o, 0, sizeof *o);
	o->config = CONFIG_DEFAULT;
	o->timeout_ms = TIMEOUT_DEFAULT_MS;
	o->wait_ms = WAIT_DEFAULT_MS;
	o->jobs = JOBS_DEFAULT;
	rc = nf_opts_parse(opts, o, usage, argc, argv);
	if (rc != 0)
		return rc;
	broker = o->broker_text;
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
static int find_image(const struct nf_push_options *o, struct nf_push_job *job)
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
static int find_ip(const struct nf_push_options *o, struct nf_push_job *job)
{
	const struct nf_push_env *e = job->env;
	char err[NF_PUSH_MAX_ERRMSG], quoted[NF_PUSH_MAX_QUOTED];
	const char *why = "longer than an address";
	bool truncated;
	size_t n;
	int rc;

	rc = nf_push_mqtt_retained(&o->broker, e->topic, job->ip, &n, &truncated, err, sizeof err);
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
	while (n > 0 && (job->ip[n - 1] == '\n' || job->ip[n - 1] == '\r'))
		job->ip[--n] = '\0';
	if (truncated || !nf_push_usable_ip(job->ip, n, &why)) {
		quote(job->ip, n, truncated, quoted);
		nf_tool_error("%s: no usable IP address on topic '%s': %s is %s", e->name, e->topic,
		              quoted, why);
		return PUSH_EXIT_NO_IP;
	}
	return 0;
}

/* Resolves one environment named name into job. Returns 0 or an exit
 * status after saying why. */
static int resolve(const struct nf_push_options *o, const struct nf_push_config *cfg,
                   const char *name, struct nf_push_job *job)
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

static void print_job(const struct nf_push_job *job)
{
	const struct nf_push_env *e = job->env;

	printf("%s: topic=%s ip=%s port=%u auth=%s kind=%s image=%s size=%lld\n", e->name, e->topic,
	       job->ip, e->port, e->has_auth ? "yes" : "no", job->fs ? "filesystem" : "firmware",
	       job->image, job->size);
}

int nf_cmd_push(int argc, char *argv[], char *prog_argv[])
{
	struct nf_push_options o;
	struct nf_push_config *cfg = NULL;
	struct nf_push_job *jobs = NULL;
	size_t njobs = 0, nnames;
	bool lib = false;
	int rc, first = 0;

	(void)prog_argv;
	rc = parse_options(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;

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
	rc = nf_push_run(&o, jobs, njobs);
done:
	if (lib)
		mosquitto_lib_cleanup();
	for (size_t i = 0; jobs != NULL && i < njobs; i++)
		free(jobs[i].data);
	free(jobs);
	free(cfg);
	return rc;
}
