/*
 * rollout.c - `nofuss rollout start|list|show|pause|resume|advance|abort|halt`:
 * rollouts through nofussd's admin API (docs/ROLLOUTS.md section 2). `start`
 * turns its options into the JSON body of POST /api/v1/rollouts; the server
 * checks every value and its message (naming the field) is printed as is.
 * Only what cannot be put into JSON (a number that is not one) is refused
 * here.
 */
#include <getopt.h> /* optind */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

const struct nf_exit nf_rollout_exits[] = {
    {NF_EXIT_OK, "done"},
    {NF_INV_EXIT_ERROR, "the server refused the request (a bad value, a move that does not "
                        "apply now, the store off, ...)"},
    {NF_INV_EXIT_CONNECT, "the server cannot be reached, or it is not nofussd's admin API"},
    {NF_INV_EXIT_AUTH, "no token, or the server refused it (a read token cannot write)"},
    {NF_INV_EXIT_NOT_FOUND, "no such rollout"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss rollout start --release ID [OPTION]...\n"
	        "       nofuss rollout list\n"
	        "       nofuss rollout halt-all\n"
	        "       nofuss rollout show|pause|resume|advance|abort|halt ID\n"
	        "Offer a release to the devices of its type in phases by percentage, and move\n"
	        "rollouts through their states, through nofussd's admin API\n"
	        "(docs/ROLLOUTS.md). Writing needs an admin token.\n"
	        "\n"
	        "  -s, --server URL          the admin listener (default " NF_INV_DEFAULT_SERVER ")\n"
	        "      --token-file FILE     the bearer token (default $NOFUSS_TOKEN)\n"
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
	        "      --json                the API's JSON\n"
	        "  -h, --help                show this help and exit\n");
	nf_exit_help(out, nf_rollout_exits);
}

struct options {
	const char *server, *token_file, *release, *phases, *min_version, *max_version, *tags;
	const char *macs, *success, *error, *soak, *silent_after;
	bool approval, json;
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
	     put_number(b, "silent_after", "silent-after", o->silent_after, false) != 0)) {
		json_decref(b);
		return NULL;
	}
	if (o->min_version)
		json_object_set_new(b, "min_version", json_string(o->min_version));
	if (o->max_version)
		json_object_set_new(b, "max_version", json_string(o->max_version));
	if (o->approval)
		json_object_set_new(b, "approval", json_true());
	return b;
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
		nf_inv_print(stdout, nf_inv_text(ro, keys[k], buf, sizeof buf), 0);
		fputc('\n', stdout);
	}
	printf("%-14s", "phases");
	json_array_foreach(json_object_get(ro, "phases"), i, v)
	    printf(" %lld%%", (long long)json_integer_value(v));
	fputc('\n', stdout);
	json_dumpf(json_object_get(ro, "filters"), stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_dumpf(json_object_get(ro, "gates"), stdout, JSON_COMPACT);
	fputc('\n', stdout);
	if (json_is_string(json_object_get(ro, "note")))
		printf("note: %s\n", json_string_value(json_object_get(ro, "note")));
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
			printf("%-6s ", nf_inv_text(ro, "phase", buf, sizeof buf));
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
		nf_tool_error("%s", action[0] == '\0' ? "which action? start, list, show, pause, "
		                                        "resume, advance, abort or halt"
		                    : strcmp(action, "start") == 0 ? "start takes --release ID"
		                                                   : "bad usage of this action");
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	if (strcmp(action, "start") == 0 && (body = start_body(&o)) == NULL)
		return NF_EXIT_USAGE;
	c = (struct nf_inv_conn){.server = o.server, .token_file = o.token_file};
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
