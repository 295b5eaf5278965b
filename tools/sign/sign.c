/*
 * sign.c - `nofuss sign`: signs a firmware or filesystem image in the
 * ESP8266 core's format (image, RSASSA-PKCS1-v1_5 SHA-256 signature, its
 * length as le32), byte for byte what `openssl dgst -sha256 -sign` appends.
 * The engine (common/sign_image.c) finds the core's traps and reports them
 * as warning bits; this command prints each one on stderr and still signs:
 * the flash-mode byte the devices will rewrite, a length that is not a
 * multiple of 4, a gzip image that firmware without a key would break on,
 * an input that is no app image, an input signed again (docs/SIGNING.md).
 */
#include <getopt.h> /* optind */
#include <inttypes.h>
#include <stdio.h>

#include "args.h"
#include "sign.h"

const struct nf_exit nf_sign_exits[] = {
    {NF_EXIT_OK, "signed (warnings may be on stderr)"},
    {NF_SIGN_EXIT_FAILED, "not signed"},
    {NF_SIGN_EXIT_KEY, "the key file is missing or unusable"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss sign --key PRIVATE.pem -o OUT [OPTION]... IN\n"
	        "Sign the image IN as the ESP8266 core checks it (docs/SIGNING.md): OUT is\n"
	        "IN, its RSA signature over SHA-256, then the signature's length (4 bytes,\n"
	        "little-endian). Warns on stderr about what would make devices refuse it.\n\n"
	        "  -k, --key FILE              the private key (PEM)\n"
	        "  -o, --output FILE           the signed image (written atomically; may be IN)\n"
	        "      --flash-mode MODE       first set byte 2 of an app image to the devices'\n"
	        "                              flash mode: qio, qout, dio or dout\n"
	        "      --check-flash-mode MODE only warn when byte 2 is not MODE\n"
	        "      --pad                   first pad a gzip image to a multiple of 4 bytes\n"
	        "                              (in its header's comment)\n"
	        "  -f, --force                 sign an input that already ends with a signature\n"
	        "  -h, --help                  show this help and exit\n");
	nf_exit_help(out, nf_sign_exits);
}

struct options {
	const char *key, *output;
	bool pad, force, check; /* check: --check-flash-mode */
	int mode;               /* NF_SIGN_FLASH_*; UNKNOWN without either option */
	int modes_given;
};

/* --flash-mode and --check-flash-mode: one of them, once. */
static int set_mode(struct options *o, const char *opt, const char *value, bool check)
{
	o->mode = nf_sign_flash_mode_parse(value);
	o->check = check;
	if (o->mode == NF_SIGN_FLASH_UNKNOWN) {
		nf_tool_error("%s: '%s' is not qio, qout, dio or dout", opt, value);
		return -1;
	}
	if (++o->modes_given > 1) {
		nf_tool_error("give --flash-mode or --check-flash-mode, once");
		return -1;
	}
	return 0;
}

static int set_flash_mode(void *opts, const char *value)
{
	return set_mode(opts, "--flash-mode", value, false);
}

static int set_check_flash_mode(void *opts, const char *value)
{
	return set_mode(opts, "--check-flash-mode", value, true);
}

static const struct nf_opt opts[] = {
    NF_OPT_STRING("key", 'k', struct options, key),
    NF_OPT_STRING("output", 'o', struct options, output),
    NF_OPT_CALL("flash-mode", 0, NF_OPT_CALL, set_flash_mode),
    NF_OPT_CALL("check-flash-mode", 0, NF_OPT_CALL, set_check_flash_mode),
    NF_OPT_FLAG("pad", 0, struct options, pad),
    NF_OPT_FLAG("force", 'f', struct options, force),
    NF_OPT_END,
};

/* Prints each warning of res on stderr, as "nofuss sign: warning: ...". */
static void print_warnings(const struct nf_sign_result *res)
{
	char text[512];

	for (unsigned bit = 1; bit != 0 && bit <= res->warnings; bit <<= 1)
		if (res->warnings & bit)
			nf_tool_error("warning: %s",
			              nf_sign_warning_text(res, bit, text, sizeof text));
}

int nf_cmd_sign(int argc, char *argv[], char *prog_argv[])
{
	struct options o = {.mode = NF_SIGN_FLASH_UNKNOWN};
	struct nf_sign_opts so;
	struct nf_sign_result res;
	struct nf_sign_key *key;
	enum nf_sign_err rc;
	char err[512];
	int parsed = nf_opts_parse(opts, &o, usage, argc, argv);

	(void)prog_argv;
	if (parsed != 0)
		return parsed > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (o.key == NULL || o.output == NULL || argc - optind != 1) {
		nf_tool_error("give --key, -o and one input image (see --help)");
		return NF_EXIT_USAGE;
	}
	so.flash_mode = o.mode;
	so.flags = (o.force ? NF_SIGN_FORCE : 0u) | (o.pad ? NF_SIGN_PAD_GZIP : 0u) |
	           (o.mode != NF_SIGN_FLASH_UNKNOWN && !o.check ? NF_SIGN_SET_FLASH_MODE : 0u);
	key = nf_sign_tool_key(o.key, 1, 0);
	if (key == NULL)
		return NF_SIGN_EXIT_KEY;
	rc = nf_sign_image(key, argv[optind], o.output, &so, &res, err, sizeof err);
	if (rc != NF_SIGN_OK) {
		nf_tool_error("%s%s", err,
		              rc == NF_SIGN_ERR_ALREADY_SIGNED ? " (give --force)" : "");
	} else {
		print_warnings(&res);
		printf("%s: signed %" PRIu64 " bytes with RSA-%u (%zu-byte signature)\n", o.output,
		       res.payload_len, nf_sign_key_bits(key), res.sig_len);
	}
	nf_sign_key_free(key);
	return rc == NF_SIGN_OK ? NF_EXIT_OK : NF_SIGN_EXIT_FAILED;
}
