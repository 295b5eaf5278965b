/*
 * rollout.c - `nofuss rollout start|list|show|pause|resume|advance|abort|halt`:
 * rollouts through nofussd's admin API (docs/ROLLOUTS.md section 2). `start`
 * turns its options into the JSON body of POST /api/v1/rollouts; the server
 * checks every value and its message (naming the field) is printed as is.
 * Only what cannot be put into JSON (a number that is not one) is refused
 * here. `show` prints the per-phase counts and the gates' figures; with
 * --watch it asks again every second and redraws one progress line (in
 * place on a terminal, one line per change otherwise) until the rollout
 * is completed, halted or aborted, or --deadline passes.
 */
#include <errno.h>
#include <getopt.h> /* optind */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inventory.h"

const struct nf_exit nf_rollout_exits[] = {
    {NF_EXIT_OK, "done"},
    {NF_INV_EXIT_ERROR, "the server refused the request (a bad value, a move that does not "
                        "apply now, the store off, ...)"},
    {NF_INV_EXIT_CONNECT, "the server cannot be reached, or it is not nofussd's admin API"},
    {NF_INV_EXIT_AUTH, "no token, or the server refused it (a read token cannot write)"},
    {NF_INV_EXIT_NOT_FOUND, "no such rollout"},
    {NF_INV_EXIT_STOPPED, "show --watch: the rollout ended halted or aborted"},
    {NF_INV_EXIT_DEADLINE, "show --watch: the deadline passed before the rollout ended"},
    {0, NULL},
};

#define WATCH_EVERY_MS 1000 /* --watch asks this often */

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss rollout start --release ID [OPTION]...\n"
	        "       nofuss rollout list\n"
	        "       nofuss rollout halt-all\n"
	        "       nofuss rollout show ID [--watch [--deadline SECONDS]]\n"
	        "       nofuss rollout pause|resume|advance|abort|halt ID\n"
	        "Offer a release to the devices of its type in phases by percentage, and move\n"
	        "rollouts through their states, through nofussd's admin API\n"
	        "(docs/ROLLOUTS.md). Writing needs an admin token.\n"
	        "\n"
	        "  -s, --server URL          the admin listener (default " NF_INV_DEFAULT_SERVER ")\n"
	        "      --token-file FILE     the bearer token (default $NOFUSS_TOKEN)\n"
	        "      --cacert FILE         with an https:// server, trust the certificates in FILE\n"
	        "      --release ID          start: the release to offer\n"
	        "      --phases LIST         start: percentages, increasing (default 1,10,50,100)\n"
	        "      --min-version V       start: only devices running V or later\n"
	        "      --max-version V       start: only devices running V or earlier\n"
	        "      --tags LIST           start: only devices with one of these tags (a,b)\n"
	        "      --macs LIST           start: only these devices (MACs, comma-separated)\n"
	        "      --success PCT         start: confirmed / offered to pass a phase (95)\n"
	        "      --error PCT           start: (reverted+failed+silent) / offered that halts (5)\n"
	        "      --soak SECONDS        start: a phase lasts at least this (3600)\n"
	        "      --silent-after SECONDS start: offered and unconfirmed this long: silent (3600)\n"
	        "      --approval            start: phases advance only with `advance`\n"
	        "      --window HH:MM-HH:MM  start: offer only then, the server's local time\n"
	        "                            (22:00-05:00 wraps midnight; default always)\n"
	        "      --rate N              start: new offers a minute at most (default 0: no\n"
	        "                            bound)\n"
	        "      --watch               show: redraw a progress line every second until the\n"
	        "                            rollout is completed, halted or aborted\n"
	        "      --deadline SECONDS    show --watch: give up after this long (default none)\n"
	        "      --json                the API's JSON\n"
	        "  -h, --help                show this help and exit\n");
	nf_exit_help(out, nf_rollout_exits);
}

struct options {
	const char *server, *token_file, *cacert, *release, *phases, *min_version, *max_version;
	const char *tags, *macs, *success, *error, *soak, *silent_after, *window, *rate;
	bool approval, json, watch;
	long deadline_ms;
};

static const struct nf_opt options_table[] = {
    NF_OPT_STRING("server", 's', struct options, server),
    NF_OPT_STRING("token-file", 0, struct options, token_file),
    NF_OPT_STRING("release", 0, struct options, release),
    NF_OPT_STRING("phases", 0, struct options, phases),
    NF_OPT_STRING("min-version", 0, struct options, min_version),
    NF_OPT_STRING("max-version", 0, struct options, max_version),
    NF_OPT_STRING("tags", 0, struct options, tags),
    NF_OPT_STRING("macs", 0, struct options, macs),
    NF_OPT_STRING("success", 0, struct options, success),
    NF_OPT_STRING("error", 0, struct options, error),
    NF_OPT_STRING("soak", 0, struct options, soak),
    NF_OPT_STRING("silent-after", 0, struct options, silent_after),
    NF_OPT_FLAG("approval", 0, struct options, approval),
    NF_OPT_STRING("cacert", 0, struct options, cacert),
    NF_OPT_STRING("window", 0, struct options, window),
    NF_OPT_STRING("rate", 0, struct options, rate),
    NF_OPT_FLAG("watch", 0, struct options, watch),
    NF_OPT_SECONDS("deadline", 0, struct options, deadline_ms, 0.1, 30.0 * 24 * 3600),
    NF_OPT_FLAG("json", 0, struct options, json),
    NF_OPT_END,
};

/* A number given for --name into body[key] (an integer unless real). 0, or
 * -1 after saying why. */
static int put_number(json_t *body, const char *key, const char *name, const char *text,
                      bool real)
{
	char *end;
	double d = real ? strtod(text, &end) : 0;
	long long i = real ? 0 : strtoll(text, &end, 10);

	if (text[0] == '\0' || *end != '\0') {
		nf_tool_error("--%s: \"%s\" is not %s", name, text, real ? "a number" : "an integer");
		return -1;
	}
	json_object_set_new(body, key, real ? json_real(d) : json_integer(i));
	return 0;
}

/* "a,b" into body[key] as an array of strings, or of integers. */
static int put_list(json_t *body, const char *key, const char *name, const char *text,
                    bool ints)
{
	json_t *a = json_array();

	for (const char *p = text; a != NULL;) {
		size_t n = strcspn(p, ",");
		char item[64];
		snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), p);
		if (ints) {
			char *end;
			long long v = strtoll(item, &end, 10);
			if (item[0] == '\0' || *end != '\0') {
				nf_tool_error("--%s: \"%s\" is not an integer", name, item);
				json_decref(a);
				return -1;
			}
			json_array_append_new(a, json_integer(v));
		} else {
			json_array_append_new(a, json_string(item));
		}
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	json_object_set_new(body, key, a);
	return 0;
}

static json_t *start_body(const struct options *o)
{
	json_t *b = json_object();

	if (b == NULL || put_number(b, "release", "release", o->release, false) != 0 ||
	    (o->phases && put_list(b, "phases", "phases", o->phases, true) != 0) ||
	    (o->tags && put_list(b, "tags", "tags", o->tags, false) != 0) ||
	    (o->macs && put_list(b, "macs", "macs", o->macs, false) != 0) ||
	    (o->success && put_number(b, "success_threshold", "success", o->success, true) != 0) ||
	    (o->error && put_number(b, "error_threshold", "error", o->error, true) != 0) ||
	    (o->soak && put_number(b, "soak", "soak", o->soak, false) != 0) ||
	    (o->silent_after &&
	     put_number(b, "silent_after", "silent-after", o->silent_after, false) != 0) ||
	    (o->rate && put_number(b, "rate", "rate", o->rate, false) != 0)) {
		json_decref(b);
		return NULL;
	}
	if (o->min_version)
		json_object_set_new(b, "min_version", json_string(o->min_version));
	if (o->max_version)
		json_object_set_new(b, "max_version", json_string(o->max_version));
	if (o->approval)
		json_object_set_new(b, "approval", json_true());
	if (o->window)
		json_object_set_new(b, "window", json_string(o->window));
	return b;
}

/* obj[key] as a number (integer or real), 0 when neither. */
static double number(json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

/* One row of the phases table: counts (an object with "offered", "pending", ...). */
static void print_counts(const char *phase, const char *percent, const char *status, json_t *c)
{
	static const char *const kinds[] = {"offered", "pending", "confirmed", "reverted",
	                                    "failed",  "silent",  "withdrawn"};
	char buf[32];

	printf("  %-6s %-8s %-8s", phase, percent, status);
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
		printf(" %9s", nf_inv_text(c, kinds[k], buf, sizeof buf));
	fputc('\n', stdout);
}

/* The per-phase table (each phase and the total) and the gates' figures. */
static void print_progress(json_t *ro)
{
	json_t *gates = json_object_get(ro, "gates"), *p;
	char phase[24], percent[24], buf[32];
	size_t i;

	if (!json_is_array(json_object_get(ro, "phase_counts"))) {
		printf("counts         unavailable: %s\n",
		       nf_inv_text(ro, "counts_error", buf, sizeof buf));
		return;
	}
	printf("  %-6s %-8s %-8s %9s %9s %9s %9s %9s %9s %9s\n", "PHASE", "PERCENT", "STATUS",
	       "OFFERED", "PENDING", "CONFIRMED", "REVERTED", "FAILED", "SILENT", "WITHDRAWN");
	json_array_foreach(json_object_get(ro, "phase_counts"), i, p)
	{
		snprintf(phase, sizeof phase, "%zu", i + 1);
		snprintf(percent, sizeof percent, "%.0f%%", number(p, "percent"));
		print_counts(phase, percent, nf_inv_text(p, "status", buf, sizeof buf), p);
	}
	print_counts("total", "", "", json_object_get(ro, "counts"));
	printf("gates          confirmed %.2f%% (passes at %.2f%%), errors %.2f%% (halts above "
	       "%.2f%%), soak left %.0f s of %.0f s, silent after %.0f s\n",
	       number(gates, "success_now"), number(gates, "success_threshold"),
	       number(gates, "error_now"), number(gates, "error_threshold"),
	       number(gates, "soak_left"), number(gates, "soak"), number(gates, "silent_after"));
	if (json_is_string(json_object_get(gates, "verdict")))
		printf("verdict        %s%s%s\n", json_string_value(json_object_get(gates, "verdict")),
		       json_is_string(json_object_get(gates, "why")) ? ": " : "",
		       json_is_string(json_object_get(gates, "why"))
		           ? json_string_value(json_object_get(gates, "why"))
		           : "");
}

static void print_rollout(json_t *ro)
{
	static const char *const keys[] = {"id",    "release", "device",  "state",
	                                   "state_since", "reason", "phase", "percent",
	                                   "phase_started", "approval", "created", "created_by"};
	char buf[64];
	json_t *v;
	size_t i;

	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		printf("%-14s ", keys[k]);
		/* The API counts phases from 0; people, the table below and the
		 * watch line from 1. */
		if (strcmp(keys[k], "phase") == 0 && json_is_integer(json_object_get(ro, "phase")))
			printf("%lld of %zu\n",
			       (long long)json_integer_value(json_object_get(ro, "phase")) + 1,
			       json_array_size(json_object_get(ro, "phases")));
		else {
			nf_inv_print(stdout, nf_inv_text(ro, keys[k], buf, sizeof buf), 0);
			fputc('\n', stdout);
		}
	}
	printf("%-14s %s\n", "window",
	       json_is_string(json_object_get(ro, "window"))
	           ? json_string_value(json_object_get(ro, "window"))
	           : "always");
	if (number(ro, "rate") > 0)
		printf("%-14s %.0f new offers a minute at most\n", "rate", number(ro, "rate"));
	else
		printf("%-14s no bound\n", "rate");
	printf("%-14s", "phases");
	json_array_foreach(json_object_get(ro, "phases"), i, v)
	    printf(" %lld%%", (long long)json_integer_value(v));
	fputc('\n', stdout);
	print_progress(ro);
	printf("%-14s ", "filters");
	json_dumpf(json_object_get(ro, "filters"), stdout, JSON_COMPACT);
	fputc('\n', stdout);
	/* versions.json answers these rules' devices first (docs/ROLLOUTS.md
	 * section 3): said, so that a rollout that seems stuck is explained. */
	if (json_array_size(json_object_get(ro, "shadowed_by")) > 0) {
		printf("%-14s versions.json rules", "shadowed by");
		json_array_foreach(json_object_get(ro, "shadowed_by"), i, v)
		    printf(" %lld", (long long)json_integer_value(v));
		printf(" (counted from 0) answer their devices first\n");
	}
}

/* The one progress line of --watch. */
static void progress_line(json_t *ro, char *out, size_t cap)
{
	json_t *c = json_object_get(ro, "counts"), *gates = json_object_get(ro, "gates");
	char state[16], verdict[32];

	snprintf(state, sizeof state, "%s", json_string_value(json_object_get(ro, "state")));
	snprintf(verdict, sizeof verdict, "%s",
	         json_is_string(json_object_get(gates, "verdict"))
	             ? json_string_value(json_object_get(gates, "verdict"))
	             : "-");
	snprintf(out, cap,
	         "rollout %.0f %s: phase %.0f/%zu (%.0f%%), offered %.0f, confirmed %.0f (%.2f%%), "
	         "errors %.0f (%.2f%%), pending %.0f, soak left %.0f s: %s",
	         number(ro, "id"), state, number(ro, "phase") + 1,
	         json_array_size(json_object_get(ro, "phases")), number(ro, "percent"),
	         number(c, "offered"), number(c, "confirmed"), number(gates, "success_now"),
	         number(c, "reverted") + number(c, "failed") + number(c, "silent"),
	         number(gates, "error_now"), number(c, "pending"), number(gates, "soak_left"),
	         verdict);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* show --watch: the progress line until the rollout ends or the deadline
 * (deadline_ms 0: none) passes. */
static int watch(const struct nf_inv_conn *c, const char *path, long deadline_ms)
{
	bool tty = isatty(STDOUT_FILENO) == 1;
	int64_t end = deadline_ms > 0 ? mono_ms() + deadline_ms : 0;
	char line[512], last[512] = "";
	json_t *ro;
	int rc;

	for (;;) {
		if ((rc = nf_inv_get(c, path, &ro)) != 0) {
			if (tty && last[0] != '\0')
				fputc('\n', stdout);
			return rc;
		}
		const char *state = json_string_value(json_object_get(ro, "state"));
		bool over = state == NULL ||
		            (strcmp(state, "running") != 0 && strcmp(state, "paused") != 0);
		progress_line(ro, line, sizeof line);
		if (tty)
			printf("\r%s\033[K", line); /* redrawn in place, the rest cleared */
		else if (strcmp(line, last) != 0)
			printf("%s\n", line);
		fflush(stdout);
		snprintf(last, sizeof last, "%s", line);
		if (over) {
			if (tty)
				fputc('\n', stdout);
			if (state != NULL && strcmp(state, "completed") != 0)
				printf("%s: %s\n", state,
				       json_string_value(json_object_get(ro, "reason")) != NULL
				           ? json_string_value(json_object_get(ro, "reason"))
				           : "");
			rc = state != NULL && strcmp(state, "completed") == 0 ? NF_EXIT_OK
			                                                      : NF_INV_EXIT_STOPPED;
			json_decref(ro);
			return rc;
		}
		json_decref(ro);
		if (end != 0 && mono_ms() >= end) {
			if (tty)
				fputc('\n', stdout);
			nf_tool_error("--deadline passed; the rollout goes on");
			return NF_INV_EXIT_DEADLINE;
		}
		struct timespec ts = {WATCH_EVERY_MS / 1000, (WATCH_EVERY_MS % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

static int list(const struct nf_inv_conn *c, const struct options *o)
{
	char buf[64];
	json_t *all, *ro;
	size_t i;
	int rc = nf_inv_get(c, "/api/v1/rollouts", &all);

	if (rc != 0)
		return rc;
	if (o->json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		printf("%-6s %-8s %-16s %-10s %-6s %s\n", "ID", "RELEASE", "DEVICE", "STATE",
		       "PHASE", "PERCENT");
		json_array_foreach(json_object_get(all, "rollouts"), i, ro)
		{
			printf("%-6s ", nf_inv_text(ro, "id", buf, sizeof buf));
			printf("%-8s ", nf_inv_text(ro, "release", buf, sizeof buf));
			nf_inv_print(stdout, nf_inv_text(ro, "device", buf, sizeof buf), 16);
			printf(" %-10s ", nf_inv_text(ro, "state", buf, sizeof buf));
			printf("%-6lld ",
			       (long long)json_integer_value(json_object_get(ro, "phase")) + 1);
			printf("%s%%\n", nf_inv_text(ro, "percent", buf, sizeof buf));
		}
	}
	json_decref(all);
	return 0;
}

int nf_cmd_rollout(int argc, char *argv[], char *prog_argv[])
{
	static const char *const moves[] = {"pause", "resume", "advance", "abort", "halt", NULL};
	struct options o = {.server = NF_INV_DEFAULT_SERVER};
	struct nf_inv_conn c;
	char path[NF_INV_MAX_URL], enc[64];
	const char *action;
	json_t *body = NULL, *out = NULL;
	bool move = false;
	int rc = nf_opts_parse(options_table, &o, usage, argc, argv);

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	action = optind < argc ? argv[optind] : "";
	for (const char *const *m = moves; *m != NULL; m++)
		move = move || strcmp(action, *m) == 0;
	if (strcmp(action, "start") == 0 ? optind + 1 != argc || o.release == NULL
	    : strcmp(action, "list") == 0 || strcmp(action, "halt-all") == 0 ? optind + 1 != argc
	    : move || strcmp(action, "show") == 0
	        ? optind + 2 != argc || nf_inv_escape(argv[optind + 1], enc, sizeof enc) != 0
	        : true) {
		bool known = move || strcmp(action, "start") == 0 || strcmp(action, "list") == 0 ||
		             strcmp(action, "halt-all") == 0 || strcmp(action, "show") == 0;
		if (!known)
			nf_tool_error("%s%s%s start, list, show, pause, resume, advance, abort, halt "
			              "or halt-all",
			              action[0] == '\0' ? "which action?" : "unknown action \"", action,
			              action[0] == '\0' ? "" : "\":");
		else if (strcmp(action, "start") == 0)
			nf_tool_error("start takes --release ID and nothing else");
		else if (strcmp(action, "list") == 0 || strcmp(action, "halt-all") == 0)
			nf_tool_error("%s takes no argument", action);
		else
			nf_tool_error("%s takes one rollout ID", action);
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	if (strcmp(action, "start") == 0 && (body = start_body(&o)) == NULL)
		return NF_EXIT_USAGE;
	if ((o.watch || o.deadline_ms > 0) && (strcmp(action, "show") != 0 || o.json ||
	                                       (o.deadline_ms > 0 && !o.watch))) {
		nf_tool_error("--watch goes with show only, without --json; --deadline with --watch");
		json_decref(body);
		return NF_EXIT_USAGE;
	}
	c = (struct nf_inv_conn){.server = o.server, .token_file = o.token_file, .cacert = o.cacert};
	if ((rc = nf_inv_token(&c)) != 0) {
		json_decref(body);
		return rc;
	}
	if (strcmp(action, "list") == 0) {
		rc = list(&c, &o);
	} else if (strcmp(action, "halt-all") == 0) {
		rc = nf_inv_send(&c, "POST", "/api/v1/rollouts/halt-all", NULL, NULL, &out);
		if (rc == 0)
			printf("%lld rollouts halted\n",
			       (long long)json_integer_value(json_object_get(out, "halted")));
		json_decref(out);
	} else {
		if (body != NULL)
			snprintf(path, sizeof path, "/api/v1/rollouts");
		else if (move)
			snprintf(path, sizeof path, "/api/v1/rollouts/%s/%s", enc, action);
		else
			snprintf(path, sizeof path, "/api/v1/rollouts/%s", enc);
		if (o.watch) {
			rc = watch(&c, path, o.deadline_ms);
			memset(c.token, 0, sizeof c.token);
			return rc;
		}
		rc = nf_inv_send(&c, body != NULL || move ? "POST" : "GET", path, NULL, body, &out);
		if (rc == 0 && o.json) {
			json_dumpf(out, stdout, JSON_INDENT(2));
			fputc('\n', stdout);
		} else if (rc == 0) {
			print_rollout(out);
		}
		json_decref(out);
	}
	json_decref(body);
	memset(c.token, 0, sizeof c.token);
	return rc;
}
