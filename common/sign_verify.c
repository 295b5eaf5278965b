/*
 * sign_verify.c - checks signed images: the trailer parser and a streaming
 * verifier, with memory, file-descriptor and path front ends.
 *
 * The trailer (docs/SIGNING.md) is the signature, then its length as a
 * 32-bit little-endian integer, at the very end of the image. Like the
 * ESP8266 core's Updater, nofuss only accepts a length field equal to the
 * key's signature size and a signature over everything before it. Every
 * count is bounded before it is used: the length field is compared with
 * NF_SIGN_MAX_SIG before any arithmetic, and sizes are 64-bit, so no input
 * makes an offset wrap. The verifier holds back only the last signature +
 * 4 bytes of what it is fed and hashes the rest as it comes, so a 16 MB
 * image costs one chunk of memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "sign_internal.h"

struct nf_sign_verifier {
	const struct nf_sign_key *key;
	EVP_MD_CTX *md;
	uint64_t total; /* bytes fed */
	size_t keep;    /* key->sig_len + the length field */
	size_t held;    /* bytes in tail */
	unsigned char tail[NF_SIGN_MAX_SIG + NF_SIGN_LEN_FIELD]; /* the last bytes fed */
	int failed;                                              /* a hash update failed */
};

/* The length field: 4 bytes, little-endian (on the wire: do not change). */
static uint32_t length_field(const unsigned char *last4)
{
	return (uint32_t)last4[0] | (uint32_t)last4[1] << 8 | (uint32_t)last4[2] << 16 |
	       (uint32_t)last4[3] << 24;
}

enum nf_sign_err nf_sign_trailer_parse(const unsigned char last4[NF_SIGN_LEN_FIELD],
                                       uint64_t image_len, size_t key_sig_len, unsigned min_bits,
                                       struct nf_sign_trailer *t)
{
	uint32_t len;

	if (key_sig_len == 0 || key_sig_len > NF_SIGN_MAX_SIG)
		return NF_SIGN_ERR_ARG;
	if (min_bits == 0)
		min_bits = NF_SIGN_MIN_BITS;
	if (image_len < NF_SIGN_LEN_FIELD)
		return NF_SIGN_ERR_NO_TRAILER;
	len = length_field(last4);
	if (len == 0 || len > NF_SIGN_MAX_SIG)
		return NF_SIGN_ERR_NO_TRAILER;
	if (len * 8u < min_bits)
		return NF_SIGN_ERR_KEY_TOO_SMALL; /* the signature is as long as the signer's key */
	if (len != key_sig_len)
		return NF_SIGN_ERR_BAD_LENGTH;
	if (image_len - NF_SIGN_LEN_FIELD < len)
		return NF_SIGN_ERR_TRUNCATED;
	t->sig_len = len;
	t->payload_len = image_len - NF_SIGN_LEN_FIELD - len;
	return NF_SIGN_OK;
}

struct nf_sign_verifier *nf_sign_verifier_new(const struct nf_sign_key *key)
{
	struct nf_sign_verifier *v = calloc(1, sizeof *v);

	if (v == NULL)
		return NULL;
	v->key = key;
	v->keep = key->sig_len + NF_SIGN_LEN_FIELD;
	v->md = EVP_MD_CTX_new();
	if (v->md == NULL ||
	    EVP_DigestVerifyInit(v->md, NULL, EVP_sha256(), NULL, key->pkey) != 1) {
		nf_sign_fail(NF_SIGN_ERR_CRYPTO, NULL, 0, "verifier"); /* empties the queue */
		nf_sign_verifier_free(v);
		return NULL;
	}
	return v;
}

void nf_sign_verifier_free(struct nf_sign_verifier *v)
{
	if (v == NULL)
		return;
	EVP_MD_CTX_free(v->md);
	free(v);
}

/* Hashes n bytes of payload. */
static void hash(struct nf_sign_verifier *v, const unsigned char *p, size_t n)
{
	if (n > 0 && EVP_DigestVerifyUpdate(v->md, p, n) != 1)
		v->failed = 1;
}

enum nf_sign_err nf_sign_verifier_update(struct nf_sign_verifier *v, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t out, from_tail;

	v->total += len;
	if (v->held + len <= v->keep) { /* all of it may still be the trailer */
		memcpy(v->tail + v->held, p, len);
		v->held += len;
		return NF_SIGN_OK;
	}
	/* Everything but the last keep bytes is payload: first the oldest held
	 * bytes, then the start of data. */
	out = v->held + len - v->keep;
	from_tail = out < v->held ? out : v->held;
	hash(v, v->tail, from_tail);
	memmove(v->tail, v->tail + from_tail, v->held - from_tail);
	v->held -= from_tail;
	hash(v, p, out - from_tail);
	p += out - from_tail;
	len -= out - from_tail;
	memcpy(v->tail + v->held, p, len);
	v->held += len;
	if (v->failed)
		return nf_sign_fail(NF_SIGN_ERR_CRYPTO, NULL, 0, "hash");
	return NF_SIGN_OK;
}

/* Says in err why the trailer was refused. */
static enum nf_sign_err trailer_error(enum nf_sign_err rc, const struct nf_sign_verifier *v,
                                      const unsigned char *last4, char *err, size_t errlen)
{
	uint32_t len = length_field(last4);
	unsigned long long total = (unsigned long long)v->total;

	switch (rc) {
	case NF_SIGN_ERR_KEY_TOO_SMALL:
		return nf_sign_fail(rc, err, errlen,
		                    "signed with a %u-bit key (a %u-byte signature): the minimum "
		                    "key size is %u bits",
		                    len * 8, len, v->key->min_bits);
	case NF_SIGN_ERR_BAD_LENGTH:
		return nf_sign_fail(rc, err, errlen,
		                    "the trailer holds a %u-byte signature; this %u-bit key's are "
		                    "%zu bytes (another key size, or a damaged length field)",
		                    len, v->key->bits, v->key->sig_len);
	case NF_SIGN_ERR_TRUNCATED:
		return nf_sign_fail(rc, err, errlen,
		                    "truncated: the trailer claims a %u-byte signature but only "
		                    "%llu bytes come before its length field",
		                    len, total - NF_SIGN_LEN_FIELD);
	default:
		if (total < NF_SIGN_LEN_FIELD)
			return nf_sign_fail(NF_SIGN_ERR_NO_TRAILER, err, errlen,
			                    "%llu bytes: too short to be a signed image", total);
		return nf_sign_fail(NF_SIGN_ERR_NO_TRAILER, err, errlen,
		                    "no signature trailer (its last 4 bytes read as length %u): "
		                    "an unsigned image, or its end is missing",
		                    len);
	}
}

/* Whether the held signature is one this key made, over some SHA-256: its
 * PKCS#1 v1.5 block opens with the public key. Tells a payload altered
 * after signing (it is) from another signer or altered signature bytes
 * (it is not). Leaves an error queued when it is not, as the failed
 * verification before it did. */
static int is_keys_signature(const struct nf_sign_verifier *v, size_t sig_len)
{
	unsigned char digest[NF_SIGN_MAX_SIG];
	size_t dlen = sizeof digest;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(v->key->pkey, NULL);
	int ok = ctx != NULL && EVP_PKEY_verify_recover_init(ctx) == 1 &&
	         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	         EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	         EVP_PKEY_verify_recover(ctx, digest, &dlen, v->tail, sig_len) == 1 && dlen == 32;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

enum nf_sign_err nf_sign_verifier_final(struct nf_sign_verifier *v, struct nf_sign_trailer *t,
                                        char *err, size_t errlen)
{
	static const unsigned char none[NF_SIGN_LEN_FIELD];
	const unsigned char *last4 =
	    v->held >= NF_SIGN_LEN_FIELD ? v->tail + v->held - NF_SIGN_LEN_FIELD : none;
	struct nf_sign_trailer tr;
	enum nf_sign_err rc;

	if (v->failed)
		return nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "hash");
	rc = nf_sign_trailer_parse(last4, v->total, v->key->sig_len, v->key->min_bits, &tr);
	if (rc != NF_SIGN_OK)
		return trailer_error(rc, v, last4, err, errlen);
	/* The trailer is exactly keep bytes, and exactly what is held. */
	if (EVP_DigestVerifyFinal(v->md, v->tail, tr.sig_len) == 1) {
		if (t != NULL)
			*t = tr;
		return NF_SIGN_OK;
	}
	if (is_keys_signature(v, tr.sig_len)) {
		ERR_clear_error(); /* OpenSSL's reason ("bad signature") would only blur this */
		return nf_sign_fail(NF_SIGN_ERR_BAD_SIGNATURE, err, errlen,
		                    "the signature does not verify: tampered (it is this %u-bit "
		                    "key's signature, but the image bytes changed after signing)",
		                    v->key->bits);
	}
	return nf_sign_fail(NF_SIGN_ERR_BAD_SIGNATURE, err, errlen,
	                    "the signature does not verify with this %u-bit key: signed by "
	                    "another key, or the signature bytes altered",
	                    v->key->bits);
}

enum nf_sign_err nf_sign_verify_mem(const struct nf_sign_key *key, const void *data, size_t len,
                                    struct nf_sign_trailer *t, char *err, size_t errlen)
{
	struct nf_sign_verifier *v = nf_sign_verifier_new(key);
	enum nf_sign_err rc;

	if (v == NULL)
		return nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "out of memory");
	rc = nf_sign_verifier_update(v, data, len);
	if (rc == NF_SIGN_OK)
		rc = nf_sign_verifier_final(v, t, err, errlen);
	else
		nf_sign_fail(rc, err, errlen, "hash");
	nf_sign_verifier_free(v);
	return rc;
}

enum nf_sign_err nf_sign_verify_fd(const struct nf_sign_key *key, int fd, struct nf_sign_trailer *t,
                                   char *err, size_t errlen)
{
	struct nf_sign_verifier *v = nf_sign_verifier_new(key);
	unsigned char *buf = malloc(NF_SIGN_CHUNK);
	enum nf_sign_err rc = NF_SIGN_OK;
	ssize_t n;

	if (v == NULL || buf == NULL) {
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "out of memory");
		goto done;
	}
	for (;;) {
		n = read(fd, buf, NF_SIGN_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rc = nf_sign_verifier_update(v, buf, (size_t)n);
		if (rc != NF_SIGN_OK) {
			nf_sign_fail(rc, err, errlen, "hash");
			goto done;
		}
	}
	if (n < 0)
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "read error: %s", strerror(errno));
	else
		rc = nf_sign_verifier_final(v, t, err, errlen);
done:
	free(buf);
	nf_sign_verifier_free(v);
	return rc;
}

enum nf_sign_err nf_sign_verify_file(const struct nf_sign_key *key, const char *path,
                                     struct nf_sign_trailer *t, char *err, size_t errlen)
{
	enum nf_sign_err rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
	rc = nf_sign_verify_fd(key, fd, t, err, errlen);
	if (rc != NF_SIGN_OK)
		nf_sign_prefix_path(err, errlen, path);
	close(fd);
	return rc;
}
