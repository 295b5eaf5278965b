/*
 * keys.c - the keys of signed images from the command line: `nofuss keygen`
 * makes an RSA key pair, `nofuss pubkey` writes a key's public half as PEM
 * (the ESP8266 core's public.key) or as the C header a sketch embeds (the
 * core's Updater_Signing.h), and nf_sign_tool_key loads a key for the other
 * commands with one message and one exit status for every way a key file
 * can be unusable. The work is the engine's (common/sign.c).
 */
#include <getopt.h> /* optind */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "sign.h"

struct nf_sign_key *nf_sign_tool_key(const char *path, int need_private, unsigned min_bits)
{
	struct nf_sign_key *key = NULL;
	char err[512];

	if (nf_sign_key_load(path, need_private, min_bits, &key, err, sizeof err) != NF_SIGN_OK) {
		nf_tool_error("%s", err);
		return NULL;
	}
	return key;
}

/* ---- nofuss keygen ---- */

const struct nf_exit nf_keygen_exits[] = {
    {NF_EXIT_OK, "the key files were written"},
    {NF_SIGN_EXIT_FAILED, "not written: a key file exists (without --force), or cannot be written"},
    {0, NULL},
};

static void keygen_usage(FILE *out)
{
	fprintf(out, "Usage: nofuss keygen [OPTION]... PRIVATE.pem [PUBLIC.pem]\n"
	             "Make an RSA key pair for signed images (docs/SIGNING.md): the private key\n"
	             "(PKCS#8 PEM, mode 0600; keep it off the update server) and, when PUBLIC.pem\n"
	             "is given, the public key (PEM, the ESP8266 core's public.key). Each file is\n"
	             "written atomically; an existing one is never replaced without --force.\n"
	             "'nofuss pubkey PRIVATE.pem' writes the public key later.\n\n"
	             "  -b, --bits N   key size: 2048 (default), 3072 or 4096\n"
	             "  -f, --force    replace existing key files\n"
	             "  -h, --help     show this help and exit\n");
	nf_exit_help(out, nf_keygen_exits);
}

struct keygen_options {
	unsigned long bits;
	bool force;
};

static int set_bits(void *opts, const char *value)
{
	struct keygen_options *o = opts;

	if (nf_parse_count("--bits", value, 0, NF_SIGN_MAX_BITS, &o->bits) != 0)
		return -1;
	if (o->bits != 2048 && o->bits != 3072 && o->bits != 4096) {
		nf_tool_error("--bits: %s: give 2048, 3072 or 4096", value);
		return -1;
	}
	return 0;
}

int nf_cmd_keygen(int argc, char *argv[], char *prog_argv[])
{
	static const struct nf_opt opts[] = {
	    NF_OPT_CALL("bits", 'b', NF_OPT_CALL, set_bits),
	    NF_OPT_FLAG("force", 'f', struct keygen_options, force),
	    NF_OPT_END,
	};
	struct keygen_options o = {.bits = NF_SIGN_BITS_DEFAULT};
	const char *private_path, *public_path;
	enum nf_sign_err rc;
	char err[512];
	int parsed = nf_opts_parse(opts, &o, keygen_usage, argc, argv);

	(void)prog_argv;
	if (parsed != 0)
		return parsed > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (argc - optind < 1 || argc - optind > 2) {
		nf_tool_error("give PRIVATE.pem and optionally PUBLIC.pem (see --help)");
		return NF_EXIT_USAGE;
	}
	private_path = argv[optind];
	public_path = argc - optind == 2 ? argv[optind + 1] : NULL;
	rc = nf_sign_keygen((unsigned)o.bits, private_path, public_path, o.force, err, sizeof err);
	if (rc != NF_SIGN_OK) {
		nf_tool_error("%s%s", err, rc == NF_SIGN_ERR_EXISTS ? " (give --force)" : "");
		return rc == NF_SIGN_ERR_ARG ? NF_EXIT_USAGE : NF_SIGN_EXIT_FAILED;
	}
	printf("RSA-%lu key pair: private key %s (keep it secret)%s%s\n", o.bits, private_path,
	       public_path != NULL ? ", public key " : "", public_path != NULL ? public_path : "");
	return NF_EXIT_OK;
}

const struct nf_exit nf_pubkey_exits[] = {
    {NF_EXIT_OK, "the public key was written"},
    {NF_SIGN_EXIT_FAILED, "it cannot be written"},
    {NF_SIGN_EXIT_KEY, "the key file is missing or unusable"},
    {0, NULL},
};

/* ---- nofuss pubkey ---- */

static void pubkey_usage(FILE *out)
{
	fprintf(out, "Usage: nofuss pubkey [OPTION]... KEY.pem\n"
	             "Write the public half of a key file (public or private PEM): as PEM, the\n"
	             "ESP8266 core's public.key, or with --header as the C header a sketch\n"
	             "embeds, byte for byte the core's Updater_Signing.h (ARDUINO_SIGNING and\n"
	             "the PEM as the PROGMEM array signing_pubkey; docs/SIGNING.md).\n\n"
	             "      --header       the C header instead of PEM\n"
	             "  -o, --output FILE  write to FILE (atomically) instead of standard output\n"
	             "  -h, --help         show this help and exit\n");
	nf_exit_help(out, nf_pubkey_exits);
}

struct pubkey_options {
	const char *output;
	bool header;
};

/* Writes the public key to out as PEM or as the header. 0, or -1 said. */
static int emit_pubkey(const struct nf_sign_key *key, bool header, FILE *out)
{
	char err[512];
	enum nf_sign_err rc = header ? nf_sign_pubkey_header(key, out, err, sizeof err)
	                             : nf_sign_pubkey_pem(key, out, err, sizeof err);

	if (rc != NF_SIGN_OK) {
		nf_tool_error("%s", err);
		return -1;
	}
	return 0;
}

/* Writes the public key to path atomically. 0, or -1 said. */
static int write_pubkey(const struct nf_sign_key *key, bool header, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int rc = -1;

	if (mem == NULL) {
		nf_tool_error("out of memory");
		return -1;
	}
	if (emit_pubkey(key, header, mem) == 0 && fclose(mem) == 0) {
		mem = NULL;
		rc = nf_write_file(path, (const uint8_t *)text, len);
	}
	if (mem != NULL)
		fclose(mem);
	free(text);
	return rc;
}

int nf_cmd_pubkey(int argc, char *argv[], char *prog_argv[])
{
	static const struct nf_opt opts[] = {
	    NF_OPT_FLAG("header", 0, struct pubkey_options, header),
	    NF_OPT_STRING("output", 'o', struct pubkey_options, output),
	    NF_OPT_END,
	};
	struct pubkey_options o = {0};
	struct nf_sign_key *key;
	int rc = nf_opts_parse(opts, &o, pubkey_usage, argc, argv);

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (argc - optind != 1) {
		nf_tool_error("give one key file (see --help)");
		return NF_EXIT_USAGE;
	}
	key = nf_sign_tool_key(argv[optind], 0, 0);
	if (key == NULL)
		return NF_SIGN_EXIT_KEY;
	rc = o.output != NULL ? write_pubkey(key, o.header, o.output)
	                      : emit_pubkey(key, o.header, stdout);
	nf_sign_key_free(key);
	return rc == 0 ? NF_EXIT_OK : NF_SIGN_EXIT_FAILED;
}
