/*
 * release.c - `nofuss release add|list|show|delete`: releases through
 * nofussd's admin API (docs/ADMIN.md section 7). `add` streams the firmware
 * file as the body of POST /api/v1/releases and then, with --fs, the
 * filesystem image to the new release; when the second upload is refused
 * the release just made is deleted again, so a failed `add` leaves nothing
 * half done. The server validates everything; this passes values on.
 */
#include <getopt.h> /* optind */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

const struct nf_exit nf_release_exits[] = {
    {NF_EXIT_OK, "done"},
    {NF_INV_EXIT_ERROR, "the server refused the request (a bad image or version, a duplicate, "
                        "the store off, ...), or a file cannot be read"},
    {NF_INV_EXIT_CONNECT, "the server cannot be reached, or it is not nofussd's admin API"},
    {NF_INV_EXIT_AUTH, "no token, or the server refused it (a read token cannot write)"},
    {NF_INV_EXIT_NOT_FOUND, "show, delete: no such release"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss release add --device TYPE --version VERSION [--fs FS.bin]\n"
	        "                          [--notes TEXT] FIRMWARE.bin\n"
	        "       nofuss release list [--device TYPE]\n"
	        "       nofuss release show ID\n"
	        "       nofuss release delete ID\n"
	        "Upload a release (a firmware image for one device type and version, and an\n"
	        "optional filesystem image) to nofussd, which checks it, computes its MD5 and\n"
	        "SHA-256 and keeps it under public/releases/; list, show or delete releases.\n"
	        "Through the admin API (docs/ADMIN.md); writing needs an admin token.\n"
	        "\n"
	        "  -s, --server URL       the admin listener (default " NF_INV_DEFAULT_SERVER ")\n"
	        "      --token-file FILE  the bearer token (default $NOFUSS_TOKEN)\n"
	        "      --device TYPE      add: the device type; list: only this type\n"
	        "      --version VERSION  add: the release's version\n"
	        "      --fs FILE          add: the filesystem image\n"
	        "      --notes TEXT       add: release notes\n"
	        "      --json             the API's JSON\n"
	        "  -h, --help             show this help and exit\n");
	nf_exit_help(out, nf_release_exits);
}

struct options {
	const char *server, *token_file, *device, *version, *fs, *notes;
	bool json;
};

static void print_image(const char *label, json_t *img)
{
	char buf[64];
	static const char *const keys[] = {"path",   "size",       "md5",        "sha256",
	                                   "format", "flash_mode", "flash_size", "chip"};

	if (!json_is_object(img)) {
		printf("%-11s none\n", label);
		return;
	}
	printf("%s\n", label);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		printf("  %-11s ", keys[i]);
		nf_inv_print(stdout, nf_inv_text(img, keys[i], buf, sizeof buf), 0);
		fputc('\n', stdout);
	}
}

static void print_release(json_t *rel)
{
	static const char *const keys[] = {"id", "device", "version", "created", "created_by",
	                                   "notes"};
	char buf[64];

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		printf("%-11s ", keys[i]);
		nf_inv_print(stdout, nf_inv_text(rel, keys[i], buf, sizeof buf), 0);
		fputc('\n', stdout);
	}
	print_image("firmware", json_object_get(rel, "firmware"));
	print_image("filesystem", json_object_get(rel, "filesystem"));
}

static int output(const struct options *o, json_t *obj, bool one)
{
	if (o->json) {
		json_dumpf(obj, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (one) {
		print_release(obj);
	}
	json_decref(obj);
	return 0;
}

/* Before anything is sent: an image that cannot be read is said at once,
 * and a missing filesystem image never leaves its firmware uploaded. */
static bool readable_file(const char *file)
{
	struct stat st;
	FILE *f = nf_inv_open_upload(file, &st);

	if (f == NULL)
		return false;
	fclose(f);
	return true;
}

static int add(const struct nf_inv_conn *c, const struct options *o, const char *fw)
{
	char path[NF_INV_MAX_URL] = "/api/v1/releases";
	json_t *rel = NULL, *full = NULL;
	long long id;
	int rc;

	if (nf_inv_add_param(path, sizeof path, "device", o->device) != 0 ||
	    nf_inv_add_param(path, sizeof path, "version", o->version) != 0 ||
	    (o->notes != NULL && nf_inv_add_param(path, sizeof path, "notes", o->notes) != 0)) {
		nf_tool_error("the device, version and notes are too long");
		return NF_EXIT_USAGE;
	}
	if (!readable_file(fw) || (o->fs != NULL && !readable_file(o->fs)))
		return NF_INV_EXIT_ERROR;
	if ((rc = nf_inv_request(c, "POST", path, fw, &rel)) != 0)
		return rc;
	id = (long long)json_integer_value(json_object_get(rel, "id"));
	if (o->fs == NULL)
		return output(o, rel, true);
	snprintf(path, sizeof path, "/api/v1/releases/%lld/filesystem", id);
	rc = nf_inv_request(c, "POST", path, o->fs, &full);
	json_decref(rel);
	if (rc != 0) {
		json_t *gone = NULL;
		snprintf(path, sizeof path, "/api/v1/releases/%lld", id);
		if (nf_inv_request(c, "DELETE", path, NULL, &gone) == 0)
			nf_tool_error("release %lld deleted again: its filesystem image was refused",
			              id);
		json_decref(gone);
		return rc;
	}
	return output(o, full, true);
}

static int list(const struct nf_inv_conn *c, const struct options *o)
{
	char path[NF_INV_MAX_URL] = "/api/v1/releases", buf[64];
	json_t *all, *rel;
	size_t i;
	int rc;

	if (o->device != NULL && nf_inv_add_param(path, sizeof path, "device", o->device) != 0) {
		nf_tool_error("the device type is too long");
		return NF_EXIT_USAGE;
	}
	if ((rc = nf_inv_get(c, path, &all)) != 0)
		return rc;
	if (o->json)
		return output(o, all, false);
	printf("%-6s %-16s %-12s %-10s %-12s %-4s %s\n", "ID", "DEVICE", "VERSION", "SIZE", "MD5",
	       "FS", "CREATED");
	json_array_foreach(json_object_get(all, "releases"), i, rel)
	{
		json_t *fw = json_object_get(rel, "firmware");
		printf("%-6s ", nf_inv_text(rel, "id", buf, sizeof buf));
		nf_inv_print(stdout, nf_inv_text(rel, "device", buf, sizeof buf), 16);
		printf(" ");
		nf_inv_print(stdout, nf_inv_text(rel, "version", buf, sizeof buf), 12);
		printf(" %-10s ", nf_inv_text(fw, "size", buf, sizeof buf));
		printf("%.12s %-4s ", nf_inv_text(fw, "md5", buf, sizeof buf),
		       json_is_object(json_object_get(rel, "filesystem")) ? "yes" : "no");
		printf("%s\n", nf_inv_text(rel, "created", buf, sizeof buf));
	}
	printf("%zu releases\n", json_array_size(json_object_get(all, "releases")));
	json_decref(all);
	return 0;
}

static const struct nf_opt options_table[] = {
    NF_OPT_STRING("server", 's', struct options, server),
    NF_OPT_STRING("token-file", 0, struct options, token_file),
    NF_OPT_STRING("device", 0, struct options, device),
    NF_OPT_STRING("version", 0, struct options, version),
    NF_OPT_STRING("fs", 0, struct options, fs),
    NF_OPT_STRING("notes", 0, struct options, notes),
    NF_OPT_FLAG("json", 0, struct options, json),
    NF_OPT_END,
};

/* Checks the words after the action: how many, and the options it takes.
 * Returns NULL, or the message for bad usage. */
static const char *check_usage(const char *action, int operands, const struct options *o)
{
	bool add_only = o->version != NULL || o->fs != NULL || o->notes != NULL;

	if (strcmp(action, "add") == 0) {
		if (o->device == NULL || o->version == NULL)
			return "add needs --device TYPE and --version VERSION";
		return operands == 1 ? NULL : "add takes one FIRMWARE file";
	}
	if (strcmp(action, "list") == 0)
		return operands != 0 ? "list takes no operands" : add_only ? "list takes --device only"
		                                                         : NULL;
	if (strcmp(action, "show") == 0 || strcmp(action, "delete") == 0)
		return operands != 1                   ? "show and delete take one release ID"
		       : add_only || o->device != NULL ? "show and delete take no --device, --version"
		                                       : NULL;
	return "unknown action: add, list, show or delete";
}

int nf_cmd_release(int argc, char *argv[], char *prog_argv[])
{
	struct options o = {.server = NF_INV_DEFAULT_SERVER};
	struct nf_inv_conn c;
	char path[NF_INV_MAX_URL], enc[64];
	const char *action, *why;
	json_t *obj;
	int rc = nf_opts_parse(options_table, &o, usage, argc, argv);

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (optind >= argc) {
		nf_tool_error("which action? add, list, show or delete");
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	action = argv[optind];
	why = check_usage(action, argc - optind - 1, &o);
	if (why == NULL && (strcmp(action, "show") == 0 || strcmp(action, "delete") == 0) &&
	    nf_inv_escape(argv[optind + 1], enc, sizeof enc) != 0)
		why = "the release ID is too long";
	if (why != NULL) {
		nf_tool_error("%s", why);
		usage(stderr);
		return NF_EXIT_USAGE;
	}
	c = (struct nf_inv_conn){.server = o.server, .token_file = o.token_file};
	if ((rc = nf_inv_token(&c)) != 0)
		return rc;
	if (strcmp(action, "add") == 0) {
		rc = add(&c, &o, argv[optind + 1]);
	} else if (strcmp(action, "list") == 0) {
		rc = list(&c, &o);
	} else {
		bool del = strcmp(action, "delete") == 0;
		snprintf(path, sizeof path, "/api/v1/releases/%s", enc);
		rc = nf_inv_request(&c, del ? "DELETE" : "GET", path, NULL, &obj);
		if (rc == 0 && del && !o.json) {
			printf("release %s deleted\n", argv[optind + 1]);
			json_decref(obj);
		} else if (rc == 0) {
			rc = output(&o, obj, true);
		}
	}
	memset(c.token, 0, sizeof c.token);
	return rc;
}
