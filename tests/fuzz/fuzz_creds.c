/*
 * fuzz_creds.c - libFuzzer harness for device credentials (creds.c): the
 * first byte splits the input into a credentials file and an
 * Authorization header value, both judged as the server judges them. A
 * file refusal names the file; a header is never accepted unless the file
 * parsed with at least one credential; the claimed name is printable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char known[] = "fleet:000102030405060708090a0b0c0d0e0f:"
	                            "5b1f9f8b1b2a5c1d5a64f0f4e1e0a0e3a0c1f9d7e3b5b1e5c8f2a1d3b4c5d6e7\n";
	char err[NF_ERR_LEN], who[NF_MAX_CRED_NAME + 1], header[NF_MAX_AUTH * 2];
	struct nf_creds *cs;
	size_t split, hlen;

	if (size == 0)
		return 0;
	split = data[0] % (size);
	cs = nf_creds_parse((const char *)data + 1, split, "fuzz", err, sizeof err);
	if (cs == NULL) {
		if (strncmp(err, "fuzz", 4) != 0)
			abort();
		cs = nf_creds_parse(known, sizeof known - 1, "known", err, sizeof err);
		if (cs == NULL)
			abort();
	}
	hlen = size - 1 - split;
	if (hlen >= sizeof header)
		hlen = sizeof header - 1;
	memcpy(header, data + 1 + split, hlen);
	header[hlen] = '\0';
	enum nf_auth a = nf_creds_check(cs, header, who, sizeof who);
	if (a == NF_AUTH_OK && nf_creds_count(cs) == 0)
		abort();
	for (const char *p = who; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || *p == ':')
			abort();
	nf_creds_free(cs);
	return 0;
}
