/*
 * signed.c - images checked against the public key nofussd is given
 * (pubkey = ..., docs/SIGNING.md section on the server).
 *
 * With a key configured, a rule may only name images signed in the ESP8266
 * core's format by its private half. The check reads the whole image, so it
 * runs where MD5s are computed: in the snapshot build, on the builder
 * thread, in the same single read that computes the image's MD5
 * (nf_files_md5_feed). Its result is remembered with the MD5, keyed by the
 * file's identity, so an unchanged image is verified once, not per reload
 * and never per download. The engine is common/sign_verify.c, the one the
 * tools and the device's POSIX port use.
 *
 * nf_signed_check is also the one call the release upload (issue 10) makes
 * on an uploaded file before accepting it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "nofussd.h"

static int feed_verifier(void *arg, const void *data, size_t len)
{
	return nf_sign_verifier_update(arg, data, len) == NF_SIGN_OK ? 0 : -1;
}

int nf_signed_check(const struct nf_sign_key *key, int fd, char md5[NF_MD5_HEX], char *why,
                    size_t whylen)
{
	struct nf_sign_verifier *v = key != NULL ? nf_sign_verifier_new(key) : NULL;
	int rc;

	if (key != NULL && v == NULL) {
		nf_errf(why, whylen, "out of memory");
		return NF_SIGN_ERR_CRYPTO;
	}
	if (nf_files_md5_feed(fd, md5, NULL, v != NULL ? feed_verifier : NULL, v) != 0) {
		nf_errf(why, whylen, "cannot be read: %s", strerror(errno));
		rc = NF_SIGN_ERR_IO;
	} else if (v != NULL) {
		rc = nf_sign_verifier_final(v, NULL, why, whylen);
	} else {
		rc = NF_SIGN_OK;
	}
	nf_sign_verifier_free(v);
	return rc;
}
