/*
 * fuzz_signed_image.c - libFuzzer harness for signed images (common/sign*.c):
 * the trailer parser on the input's last 4 bytes, for every key size and
 * minimum, with the input's own size and with sizes near 2^64; then the
 * verify path with one fixed RSA-2048 public key, from memory and streamed
 * in pieces whose size comes from the input.
 *
 * Checks: an accepted trailer lies inside the image (payload + signature +
 * length field = size, the signature as long as the key's); memory and
 * streamed verification agree; a failure always says why. The seeds in
 * corpus/signed_image were signed by this key's private half, which is not
 * kept: the fuzzer starts from images that verify.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArI9eAWbNdCf5OWJ4nj7T\n"
                               "IK5kP11WyKsuo6kMAo1xixgCBJfqmhkFQdNH5uzEvqDfI3a/wx7P2wdL3XAFCwPE\n"
                               "r9yTzV7EdebkByQKVAW98/ltOWEbX6OF/ufVCLisuiPgDy0SLN2qgb8Kr7dB4pP2\n"
                               "+OeR6hcp/bbxbB6NcvscnK+vUb/TTqzqe2FsgiEHh/BJVGYUzUTGxqbC71hU8leI\n"
                               "wjZ3PJTuDUg1fLO9zLM9L/TT0PSgL64WRjvkanZVpxfBOH7ThW5r9q44HpKuVLr9\n"
                               "DfwbH1Ze2DxRyB4D+vL2XFLGVPBHN14tShNOj9IEX5crWnLU4Gd7yoL3lx/G3llG\n"
                               "YwIDAQAB\n"
                               "-----END PUBLIC KEY-----\n";

static struct nf_sign_key *fixed_key(void)
{
	static struct nf_sign_key *key;

	if (key == NULL &&
	    nf_sign_key_from_pem(fuzz_pub, sizeof fuzz_pub - 1, 0, 0, &key, NULL, 0) != NF_SIGN_OK)
		abort();
	return key;
}

/* The trailer parser: whatever it accepts lies inside the image. */
static void parse_all_ways(const uint8_t *last4, uint64_t len)
{
	static const size_t sig_lens[] = {1, 128, 256, 384, NF_SIGN_MAX_SIG};
	static const unsigned mins[] = {0, 8, 1024, 4096};

	for (size_t i = 0; i < sizeof sig_lens / sizeof sig_lens[0]; i++)
		for (size_t j = 0; j < sizeof mins / sizeof mins[0]; j++) {
			struct nf_sign_trailer t;

			if (nf_sign_trailer_parse(last4, len, sig_lens[i], mins[j], &t) !=
			    NF_SIGN_OK)
				continue;
			if (t.sig_len != sig_lens[i] || t.payload_len > len ||
			    len - t.payload_len != (uint64_t)t.sig_len + NF_SIGN_LEN_FIELD)
				abort();
		}
}

/* The streamed verdict, in pieces of 1..64 bytes chosen by the input. */
static enum nf_sign_err verify_streamed(const uint8_t *data, size_t size, struct nf_sign_trailer *t)
{
	struct nf_sign_verifier *v = nf_sign_verifier_new(fixed_key());
	enum nf_sign_err rc;
	size_t off = 0;

	if (v == NULL)
		abort();
	while (off < size) {
		size_t piece = (size_t)(data[off] % 64u) + 1;

		if (piece > size - off)
			piece = size - off;
		if (nf_sign_verifier_update(v, data + off, piece) != NF_SIGN_OK)
			abort();
		off += piece;
	}
	rc = nf_sign_verifier_final(v, t, NULL, 0);
	nf_sign_verifier_free(v);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zeros[NF_SIGN_LEN_FIELD];
	const uint8_t *last4 = size >= NF_SIGN_LEN_FIELD ? data + size - NF_SIGN_LEN_FIELD : zeros;
	struct nf_sign_trailer a = {0, 0}, b = {0, 0};
	enum nf_sign_err mem, streamed;
	char err[512];

	parse_all_ways(last4, size);
	parse_all_ways(last4, UINT64_MAX - size);
	parse_all_ways(last4, UINT64_MAX);

	err[0] = '\0';
	mem = nf_sign_verify_mem(fixed_key(), data, size, &a, err, sizeof err);
	streamed = verify_streamed(data, size, &b);
	if (mem != streamed)
		abort();
	if (mem == NF_SIGN_OK && (a.payload_len + 256 + NF_SIGN_LEN_FIELD != size ||
	                          a.payload_len != b.payload_len || a.sig_len != b.sig_len))
		abort();
	if (mem != NF_SIGN_OK && (err[0] == '\0' || memchr(err, 0, sizeof err) == NULL))
		abort();
	return 0;
}
