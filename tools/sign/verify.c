/*
 * verify.c - `nofuss verify`: whether each file is an image signed by a key,
 * checked by the rules an ESP8266 built with that key applies
 * (common/sign_verify.c): the length field is the key's signature size, a
 * signer is not below the minimum key size, and the signature verifies over
 * every byte before it. One line per file on stdout, the reason with each
 * refusal, so a release script can gate on the exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h> /* optind */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "sign.h"

#define MIN_BITS_FLOOR 1024u /* the smallest --min-bits: nothing weaker is a signature */

const struct nf_exit nf_verify_exits[] = {
    {NF_EXIT_OK, "every file verifies"},
    {NF_SIGN_EXIT_FAILED, "a file does not verify, or cannot be read"},
    {NF_SIGN_EXIT_KEY, "the key file is missing or unusable"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss verify --pubkey PUBLIC.pem [OPTION]... FILE...\n"
	        "Check that each FILE is an image signed by the key, as a device built with\n"
	        "that key checks it (docs/SIGNING.md). One line per file:\n"
	        "  FILE: verified: RSA-BITS signature over N bytes\n"
	        "or FILE: refused: REASON.\n\n"
	        "      --pubkey FILE  the public key (PEM; a private key file will do)\n"
	        "      --min-bits N   refuse signatures by keys under N bits (default 2048)\n"
	        "  -h, --help         show this help and exit\n");
	nf_exit_help(out, nf_verify_exits);
}

struct options {
	const char *pubkey;
	unsigned long min_bits;
};

/* Verifies one file and says so. Returns whether it verified. */
static bool verify_one(const struct nf_sign_key *key, const char *path)
{
	struct nf_sign_trailer t;
	char err[512];
	enum nf_sign_err rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		printf("%s: refused: %s\n", path, strerror(errno));
		return false;
	}
	rc = nf_sign_verify_fd(key, fd, &t, err, sizeof err);
	close(fd);
	if (rc != NF_SIGN_OK) {
		printf("%s: refused: %s\n", path, err);
		return false;
	}
	printf("%s: verified: RSA-%u signature over %" PRIu64 " bytes\n", path,
	       nf_sign_key_bits(key), t.payload_len);
	return true;
}

int nf_cmd_verify(int argc, char *argv[], char *prog_argv[])
{
	static const struct nf_opt opts[] = {
	    NF_OPT_STRING("pubkey", 0, struct options, pubkey),
	    NF_OPT_COUNT("min-bits", 0, struct options, min_bits, MIN_BITS_FLOOR, NF_SIGN_MAX_BITS),
	    NF_OPT_END,
	};
	struct options o = {.min_bits = NF_SIGN_MIN_BITS};
	struct nf_sign_key *key;
	int rc = nf_opts_parse(opts, &o, usage, argc, argv);

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (o.pubkey == NULL || optind >= argc) {
		nf_tool_error("give --pubkey and at least one file (see --help)");
		return NF_EXIT_USAGE;
	}
	key = nf_sign_tool_key(o.pubkey, 0, (unsigned)o.min_bits);
	if (key == NULL)
		return NF_SIGN_EXIT_KEY;
	rc = NF_EXIT_OK;
	for (int i = optind; i < argc; i++)
		if (!verify_one(key, argv[i]))
			rc = NF_SIGN_EXIT_FAILED;
	nf_sign_key_free(key);
	return rc;
}
