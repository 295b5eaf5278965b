/*
 * devices.c - `nofuss devices`: the fleet inventory as a table (or the
 * API's JSON), filtered by the same names as GET /api/v1/devices, one page
 * or --all of them; `nofuss devices show KEY`: one device with its
 * history; and the writes on one device: pin, unpin, exclude, include, tag
 * and untag (docs/ROLLOUTS.md section 4). The server checks every filter
 * and value (one validator, docs/ADMIN.md section 3); this only passes
 * them on, percent-encoded.
 */
#include <getopt.h> /* optind */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

const struct nf_exit nf_devices_exits[] = {
    {NF_EXIT_OK, "done"},
    {NF_INV_EXIT_ERROR, "the server refused the request (a bad filter, the store off, ...)"},
    {NF_INV_EXIT_CONNECT, "the server cannot be reached, or it is not nofussd's admin API"},
    {NF_INV_EXIT_AUTH, "no token, or the server refused it"},
    {NF_INV_EXIT_NOT_FOUND, "show and the writes: no such device"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: nofuss devices [OPTION]...\n"
	    "       nofuss devices show KEY [--json]\n"
	    "       nofuss devices pin KEY RELEASE_ID | unpin KEY\n"
	    "       nofuss devices exclude KEY | include KEY\n"
	    "       nofuss devices tag KEY TAG | untag KEY TAG\n"
	    "List the devices nofussd's fleet store knows, through its admin API\n"
	    "(docs/ADMIN.md), newest seen first; or show one device (KEY: its MAC in any\n"
	    "form, or DEVICE@IP) with its history. Not the simulator: that is `nofuss device`.\n"
	    "pin offers the device that release (of its type) whatever the rollouts do;\n"
	    "exclude leaves it out of every rollout; tags are what rollouts target\n"
	    "(docs/ROLLOUTS.md section 4). The writes need an admin token.\n"
	    "\n"
	    "  -s, --server URL       the admin listener (default " NF_INV_DEFAULT_SERVER ")\n"
	    "      --token-file FILE  the bearer token: the first field of the first line\n"
	    "                         (nofussd's token file will do); default $NOFUSS_TOKEN\n"
	    "      --cacert FILE      with an https:// server, trust the certificates in\n"
	    "                         FILE (PEM) instead of the system's\n"
	    "      --json             the API's JSON instead of a table\n"
	    "      --type TYPE        device type, exactly\n"
	    "      --version VERSION  version, exactly\n"
	    "      --state STATE      none, offered, downloading, downloaded, confirmed,\n"
	    "                         reverted, failed or silent\n"
	    "      --seen-after TIME  last seen at or after TIME: RFC 3339 UTC, ms since\n"
	    "                         1970, or an age (90s, 15m, 24h, 7d)\n"
	    "      --seen-before TIME last seen before TIME\n"
	    "      --mac PREFIX       MAC starting with PREFIX (5C:CF:7F, 5ccf7f)\n"
	    "      --ip PREFIX        IP address starting with PREFIX (192.168.1.)\n"
	    "      --tag TAG          devices with this tag\n"
	    "      --pin ID|any       devices pinned to release ID, or to any release\n"
	    "      --excluded BOOL    true: devices excluded from rollouts; false: the others\n"
	    "      --sort FIELD       last_seen (default), first_seen, key, type, version,\n"
	    "                         state, ip\n"
	    "      --order ORDER      desc (default) or asc\n"
	    "      --offset N         skip N devices (default 0)\n"
	    "      --limit N          devices in a page, 1 to 1000 (default 100)\n"
	    "      --all              every page, until all matching devices are listed\n"
	    "  -h, --help             show this help and exit\n");
	nf_exit_help(out, nf_devices_exits);
}

struct options {
	const char *server, *token_file, *cacert;
	bool json, all;
	const char *type, *version, *state, *seen_after, *seen_before, *mac, *ip, *tag, *pin;
	const char *excluded;
	const char *sort, *order, *offset, *limit;
};

#define COLUMNS 7
static const struct {
	const char *head, *key;
	int width;
} columns[COLUMNS] = {
    {"KEY", "key", 24},       {"TYPE", "type", 16},   {"VERSION", "version", 12},
    {"CLIENT", "client", 15}, {"STATE", "state", 11}, {"LAST SEEN", "last_seen", 24},
    {"IP", "ip", 0},
};

static void print_row(json_t *dev)
{
	char buf[64];

	for (int i = 0; i < COLUMNS; i++) {
		const char *text = dev != NULL ? nf_inv_text(dev, columns[i].key, buf, sizeof buf)
		                               : columns[i].head;
		nf_inv_print(stdout, text, columns[i].width);
		if (i + 1 < COLUMNS)
			fputc(' ', stdout);
	}
	fputc('\n', stdout);
}

/* The list's path with every filter given; offset: a later page's, or
 * NULL for --offset's. 0 or an exit status. */
static int list_path(const struct options *o, const size_t *offset, char *path, size_t cap)
{
	const struct {
		const char *name, *value;
	} params[] = {
	    {"type", o->type},
	    {"version", o->version},
	    {"state", o->state},
	    {"seen_after", o->seen_after},
	    {"seen_before", o->seen_before},
	    {"mac", o->mac},
	    {"ip", o->ip},
	    {"tag", o->tag},
	    {"pin", o->pin},
	    {"excluded", o->excluded},
	    {"sort", o->sort},
	    {"order", o->order},
	    {"limit", o->limit},
	    {"offset", o->offset},
	};
	char off[32];

	snprintf(path, cap, "/api/v1/devices");
	snprintf(off, sizeof off, "%zu", offset != NULL ? *offset : 0);
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
		const char *value = params[i].value;
		if (offset != NULL && strcmp(params[i].name, "offset") == 0)
			value = off;
		if (value != NULL && nf_inv_add_param(path, cap, params[i].name, value) != 0) {
			nf_tool_error("the filters make a URL longer than %zu bytes", cap - 1);
			return NF_EXIT_USAGE;
		}
	}
	return 0;
}

/* One page, or with --all every page after it, into *out. 0 or an exit status. */
static int fetch(const struct nf_inv_conn *c, const struct options *o, json_t **out)
{
	char path[NF_INV_MAX_URL];
	json_t *all = NULL, *page, *next;
	size_t offset = 0;
	int rc = 0;

	for (unsigned pages = 0; pages < NF_INV_MAX_PAGES; pages++) {
		if ((rc = list_path(o, pages > 0 ? &offset : NULL, path, sizeof path)) != 0 ||
		    (rc = nf_inv_get(c, path, &page)) != 0)
			break;
		if (all == NULL) {
			all = page;
		} else {
			json_array_extend(json_object_get(all, "devices"),
			                  json_object_get(page, "devices"));
			json_object_set(all, "next_offset", json_object_get(page, "next_offset"));
			json_decref(page);
		}
		next = json_object_get(all, "next_offset");
		if (!o->all || !json_is_integer(next))
			break;
		offset = (size_t)json_integer_value(next);
	}
	if (rc != 0)
		json_decref(all);
	*out = rc == 0 ? all : NULL;
	return rc;
}

static int list(const struct nf_inv_conn *c, const struct options *o)
{
	json_t *all, *devices, *dev;
	char total[32], offset[32];
	size_t i;
	int rc = fetch(c, o, &all);

	if (rc != 0)
		return rc;
	devices = json_object_get(all, "devices");
	json_object_set_new(all, "count", json_integer((json_int_t)json_array_size(devices)));
	if (o->json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		print_row(NULL);
		json_array_foreach(devices, i, dev) print_row(dev);
		printf("%zu of %s devices (offset %s)\n", json_array_size(devices),
		       nf_inv_text(all, "total", total, sizeof total),
		       nf_inv_text(all, "offset", offset, sizeof offset));
	}
	json_decref(all);
	return 0;
}

/* "label: value" for each key of obj named in keys. */
static void print_fields(json_t *obj, const char *const *keys, const char *indent)
{
	char buf[64];

	for (; *keys != NULL; keys++) {
		printf("%s%-14s ", indent, *keys);
		nf_inv_print(stdout, nf_inv_text(obj, *keys, buf, sizeof buf), 0);
		fputc('\n', stdout);
	}
}

static int show(const struct nf_inv_conn *c, const struct options *o, const char *key)
{
	static const char *const fields[] = {
	    "key",        "mac",       "ip",     "type",  "version",     "build", "client",
	    "first_seen", "last_seen", "checks", "state", "state_since", "tags",  "pin",
	    "excluded",   NULL};
	static const char *const answer[] = {"kind", "target", "rule", "reason", NULL};
	static const char *const offer[] = {"target", "rule", "offered", "from_version", NULL};
	static const char *const hw[] = {"chip_id",    "chip_size", "free_space", "sketch_size",
	                                 "sketch_md5", "sdk",       NULL};
	char path[NF_INV_MAX_URL], enc[NF_INV_MAX_URL / 2], buf[64], tags[512] = "";
	json_t *dev, *v;
	size_t i;
	int rc;

	if (nf_inv_escape(key, enc, sizeof enc) != 0) {
		nf_tool_error("the key is too long");
		return NF_EXIT_USAGE;
	}
	snprintf(path, sizeof path, "/api/v1/devices/%s", enc);
	if ((rc = nf_inv_get(c, path, &dev)) != 0)
		return rc;
	if (o->json) {
		json_dumpf(dev, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(dev);
		return 0;
	}
	json_array_foreach(json_object_get(dev, "tags"), i, v)
	    snprintf(tags + strlen(tags), sizeof tags - strlen(tags), "%s%s", i ? "," : "",
	             json_string_value(v));
	json_object_set_new(dev, "tags", json_string(tags));
	if (json_is_object(json_object_get(dev, "pin"))) {
		json_t *pin = json_object_get(dev, "pin");
		char b2[64];
		snprintf(tags, sizeof tags, "release %s (%s)",
		         nf_inv_text(pin, "release", buf, sizeof buf),
		         json_is_string(json_object_get(pin, "version"))
		             ? nf_inv_text(pin, "version", b2, sizeof b2)
		             : "deleted");
		json_object_set_new(dev, "pin", json_string(tags));
	}
	print_fields(dev, fields, "");
	printf("answer\n");
	print_fields(json_object_get(dev, "answer"), answer, "  ");
	if (json_is_object(json_object_get(dev, "offer"))) {
		printf("offer\n");
		print_fields(json_object_get(dev, "offer"), offer, "  ");
		json_array_foreach(json_object_get(json_object_get(dev, "offer"), "images"), i, v)
		{
			char b2[32], b3[32];
			printf("  image          %s ", nf_inv_text(v, "kind", buf, sizeof buf));
			nf_inv_print(stdout, nf_inv_text(v, "path", buf, sizeof buf), 0);
			printf(" %s/%s bytes\n", nf_inv_text(v, "bytes_served", b2, sizeof b2),
			       nf_inv_text(v, "size", b3, sizeof b3));
		}
	}
	printf("hardware\n");
	print_fields(json_object_get(dev, "hardware"), hw, "  ");
	printf("history (newest first)\n");
	json_array_foreach(json_object_get(dev, "history"), i, v)
	{
		static const char *const cols[] = {"at",      "kind",  "state", "target",
		                                   "version", "image", "detail"};
		static const int widths[] = {24, 11, 11, 12, 12, 0, 0};
		printf(" ");
		for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++) {
			const char *text = nf_inv_text(v, cols[k], buf, sizeof buf);
			if (widths[k] == 0 && text[0] == '\0')
				continue;
			printf(" ");
			nf_inv_print(stdout, text, widths[k]);
		}
		fputc('\n', stdout);
	}
	json_decref(dev);
	return 0;
}

/* The writes on one device: the action, its arguments after KEY, the
 * method, and the path after /api/v1/devices/KEY/. */
static const struct write {
	const char *name;
	int args;
	const char *method, *path;
} writes[] = {
    {"pin", 1, "POST", "pin"},        {"unpin", 0, "DELETE", "pin"},
    {"exclude", 0, "POST", "exclude"}, {"include", 0, "DELETE", "exclude"},
    {"tag", 1, "POST", "tags"},       {"untag", 1, "DELETE", "tags"},
};

static const struct write *find_write(const char *name)
{
	for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
		if (strcmp(writes[i].name, name) == 0)
			return &writes[i];
	return NULL;
}

/* One write; prints what the device is now (or the API's JSON). */
static int write_one(const struct nf_inv_conn *c, const struct options *o,
                     const struct write *w, const char *key, const char *arg)
{
	char path[NF_INV_MAX_URL], enc[NF_INV_MAX_URL / 4], encarg[NF_INV_MAX_URL / 4];
	char buf[64], b2[64];
	json_t *body = NULL, *out = NULL, *pin;
	int rc;

	if (nf_inv_escape(key, enc, sizeof enc) != 0 ||
	    (arg != NULL && nf_inv_escape(arg, encarg, sizeof encarg) != 0)) {
		nf_tool_error("the key or the value is too long");
		return NF_EXIT_USAGE;
	}
	if (strcmp(w->name, "pin") == 0) {
		char *end;
		long long id = strtoll(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || *end != '\0') {
			nf_tool_error("pin: \"%s\" is not a release id", arg);
			return NF_EXIT_USAGE;
		}
		body = json_pack("{s:I}", "release", (json_int_t)id);
	}
	if (strcmp(w->path, "tags") == 0)
		snprintf(path, sizeof path, "/api/v1/devices/%s/tags/%s", enc, encarg);
	else
		snprintf(path, sizeof path, "/api/v1/devices/%s/%s", enc, w->path);
	rc = nf_inv_send(c, w->method, path, NULL, body, &out);
	json_decref(body);
	if (rc != 0)
		return rc;
	if (o->json) {
		json_dumpf(out, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (strcmp(w->path, "tags") == 0) {
		printf("%s: tag %s %s\n", nf_inv_text(out, "key", buf, sizeof buf), arg,
		       json_is_true(json_object_get(out, "added")) ? "added" : "removed");
	} else if (strcmp(w->path, "pin") == 0) {
		pin = json_object_get(out, "pin");
		nf_inv_print(stdout, nf_inv_text(out, "key", buf, sizeof buf), 0);
		if (json_is_object(pin))
			printf(": pinned to release %s (%s)\n",
			       nf_inv_text(pin, "release", buf, sizeof buf),
			       nf_inv_text(pin, "version", b2, sizeof b2));
		else
			printf(": not pinned\n");
	} else {
		nf_inv_print(stdout, nf_inv_text(out, "key", buf, sizeof buf), 0);
		printf(": %s\n", json_is_true(json_object_get(out, "excluded"))
		                     ? "excluded from rollouts"
		                     : "included in rollouts");
	}
	json_decref(out);
	return 0;
}

static const struct nf_opt options_table[] = {
    NF_OPT_STRING("server", 's', struct options, server),
    NF_OPT_STRING("token-file", 0, struct options, token_file),
    NF_OPT_STRING("cacert", 0, struct options, cacert),
    NF_OPT_FLAG("json", 0, struct options, json),
    NF_OPT_FLAG("all", 0, struct options, all),
    NF_OPT_STRING("type", 0, struct options, type),
    NF_OPT_STRING("version", 0, struct options, version),
    NF_OPT_STRING("state", 0, struct options, state),
    NF_OPT_STRING("seen-after", 0, struct options, seen_after),
    NF_OPT_STRING("seen-before", 0, struct options, seen_before),
    NF_OPT_STRING("mac", 0, struct options, mac),
    NF_OPT_STRING("ip", 0, struct options, ip),
    NF_OPT_STRING("tag", 0, struct options, tag),
    NF_OPT_STRING("pin", 0, struct options, pin),
    NF_OPT_STRING("excluded", 0, struct options, excluded),
    NF_OPT_STRING("sort", 0, struct options, sort),
    NF_OPT_STRING("order", 0, struct options, order),
    NF_OPT_STRING("offset", 0, struct options, offset),
    NF_OPT_STRING("limit", 0, struct options, limit),
    NF_OPT_END,
};

/* NULL (not given), or a count from min to max (nf_parse_count says why not). */
static bool count_ok(const char *what, const char *text, unsigned long min, unsigned long max)
{
	unsigned long v;

	return text == NULL || nf_parse_count(what, text, min, max, &v) == 0;
}

int nf_cmd_devices(int argc, char *argv[], char *prog_argv[])
{
	struct options o = {.server = NF_INV_DEFAULT_SERVER};
	struct nf_inv_conn c;
	int rc = nf_opts_parse(options_table, &o, usage, argc, argv);
	bool filtered;

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	filtered = o.type || o.version || o.state || o.seen_after || o.seen_before || o.mac ||
	           o.ip || o.tag || o.pin || o.excluded || o.sort || o.order || o.offset || o.limit || o.all;
	/* The numbers are checked here too: bad usage before any token is read. */
	if (!count_ok("--limit", o.limit, 1, NF_INV_MAX_LIMIT) ||
	    !count_ok("--offset", o.offset, 0, NF_INV_MAX_OFFSET))
		return NF_EXIT_USAGE;
	const struct write *w = optind < argc ? find_write(argv[optind]) : NULL;
	int want = w != NULL ? w->args + 2 : 2; /* the action, KEY and its arguments */
	if (optind < argc && ((w == NULL && strcmp(argv[optind], "show") != 0) ||
	                      argc - optind != want || filtered)) {
		nf_tool_error("%s",
		              w == NULL && strcmp(argv[optind], "show") != 0
		                  ? "unexpected argument (did you mean `nofuss devices show KEY`?)"
		              : argc - optind != want
		                  ? (w == NULL ? "show takes one KEY: a MAC or DEVICE@IP"
		                     : strcmp(w->name, "pin") == 0 ? "pin takes KEY RELEASE_ID"
		                     : w->args > 0                 ? "tag and untag take KEY TAG"
		                                                   : "this action takes one KEY")
		                  : "show and the writes take no filters");
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	c = (struct nf_inv_conn){.server = o.server, .token_file = o.token_file, .cacert = o.cacert};
	if ((rc = nf_inv_token(&c)) != 0)
		return rc;
	if (w != NULL)
		rc = write_one(&c, &o, w, argv[optind + 1], w->args > 0 ? argv[optind + 2] : NULL);
	else
		rc = optind < argc ? show(&c, &o, argv[optind + 1]) : list(&c, &o);
	memset(c.token, 0, sizeof c.token);
	return rc;
}
