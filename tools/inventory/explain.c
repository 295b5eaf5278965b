/*
 * explain.c - `nofuss explain KEY`: why a device got what it got at its
 * last check, from the admin API's decision endpoint (which rule answered
 * and what it offered, or why it was held back, or why nothing matched),
 * with the state of its offer.
 */
#include <getopt.h> /* optind */
#include <stdio.h>
#include <string.h>

#include "inventory.h"

const struct nf_exit nf_explain_exits[] = {
    {NF_EXIT_OK, "done"},
    {NF_INV_EXIT_ERROR, "the server refused the request (a bad key, the store off, ...)"},
    {NF_INV_EXIT_CONNECT, "the server cannot be reached, or it is not nofussd's admin API"},
    {NF_INV_EXIT_AUTH, "no token, or the server refused it"},
    {NF_INV_EXIT_NOT_FOUND, "no such device"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss explain [OPTION]... KEY\n"
	        "Say why the device KEY (its MAC in any form, or DEVICE@IP) got the answer it\n"
	        "got at its last check: which rule of versions.json answered and what it\n"
	        "offered, why an offer was held back, or why nothing was offered; and where\n"
	        "its update stands. Asks nofussd's admin API (docs/ADMIN.md).\n"
	        "\n"
	        "  -s, --server URL       the admin listener (default " NF_INV_DEFAULT_SERVER ")\n"
	        "      --token-file FILE  the bearer token (default $NOFUSS_TOKEN)\n"
	        "      --cacert FILE      with an https:// server, trust the certificates in\n"
	        "                         FILE (PEM) instead of the system's\n"
	        "      --json             the API's JSON\n"
	        "  -h, --help             show this help and exit\n");
	nf_exit_help(out, nf_explain_exits);
}

struct options {
	const char *server, *token_file, *cacert;
	bool json;
};

/* What it would get now, step by step; "*" marks the step that answers. */
static void print_steps(json_t *steps)
{
	size_t i;
	json_t *step;
	char buf[256];

	if (!json_is_array(steps) || json_array_size(steps) == 0)
		return;
	printf("\nIf it checked now:\n");
	json_array_foreach(steps, i, step) {
		const char *what = json_string_value(json_object_get(step, "step"));
		printf("  %s %-14s ", json_is_true(json_object_get(step, "chosen")) ? "*" : " ",
		       what != NULL ? what : "?");
		if (json_object_get(step, "rollout") != NULL)
			printf("rollout %lld: ",
			       (long long)json_integer_value(json_object_get(step, "rollout")));
		nf_inv_print(stdout, nf_inv_text(step, "detail", buf, sizeof buf), 0);
		fputc('\n', stdout);
	}
}

int nf_cmd_explain(int argc, char *argv[], char *prog_argv[])
{
	static const struct nf_opt opts[] = {
	    NF_OPT_STRING("server", 's', struct options, server),
	    NF_OPT_STRING("token-file", 0, struct options, token_file),
	    NF_OPT_STRING("cacert", 0, struct options, cacert),
	    NF_OPT_FLAG("json", 0, struct options, json),
	    NF_OPT_END,
	};
	static const char *const fields[] = {
	    "key",         "type",          "version",       "client", "last_check",  "answer",
	    "answer_rule", "answer_target", "answer_reason", "state",  "state_since", "target",
	    "offer_source", NULL};
	struct options o = {.server = NF_INV_DEFAULT_SERVER};
	struct nf_inv_conn c;
	char path[NF_INV_MAX_URL], enc[NF_INV_MAX_URL / 2], buf[64];
	json_t *d;
	int rc = nf_opts_parse(opts, &o, usage, argc, argv);

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (argc - optind != 1) {
		nf_tool_error("%s", optind == argc
		                        ? "which device? give its KEY (a MAC or DEVICE@IP)"
		                        : "one KEY only");
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	if (nf_inv_escape(argv[optind], enc, sizeof enc) != 0) {
		nf_tool_error("the key is too long");
		return NF_EXIT_USAGE;
	}
	c = (struct nf_inv_conn){.server = o.server, .token_file = o.token_file, .cacert = o.cacert};
	if ((rc = nf_inv_token(&c)) != 0)
		return rc;
	snprintf(path, sizeof path, "/api/v1/devices/%s/decision", enc);
	rc = nf_inv_get(&c, path, &d);
	memset(c.token, 0, sizeof c.token);
	if (rc != 0)
		return rc;
	if (o.json) {
		json_dumpf(d, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		nf_inv_print(stdout, nf_inv_text(d, "explanation", buf, sizeof buf), 0);
		printf("\n\n");
		for (const char *const *k = fields; *k != NULL; k++) {
			printf("%-14s ", *k);
			nf_inv_print(stdout, nf_inv_text(d, *k, buf, sizeof buf), 0);
			fputc('\n', stdout);
		}
		print_steps(json_object_get(d, "now"));
	}
	json_decref(d);
	return 0;
}
