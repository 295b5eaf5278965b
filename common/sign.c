/*
 * sign.c - the keys of signed images: loading RSA keys from PEM, making a
 * key pair, writing the public key as PEM or as the C header an ESP8266
 * sketch embeds, and the module's error texts and shared helpers.
 *
 * The ESP8266 Arduino core verifies RSASSA-PKCS1-v1_5 signatures over
 * SHA-256 with BearSSL, from a public key compiled into the sketch (see
 * docs/SIGNING.md). Keys are read with OpenSSL's decoders, which never
 * prompt for a passphrase: an encrypted key is refused with a clear error
 * rather than blocking a daemon on a terminal. Key sizes are bounded below
 * by a minimum (2048 bits unless the caller says otherwise) and above by
 * what BearSSL verifies (4096 bits).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "sign_internal.h"

const char *nf_sign_strerror(enum nf_sign_err code)
{
	switch (code) {
	case NF_SIGN_OK: return "success";
	case NF_SIGN_ERR_ARG: return "invalid argument";
	case NF_SIGN_ERR_IO: return "file could not be read or written";
	case NF_SIGN_ERR_EXISTS: return "file exists (not overwritten)";
	case NF_SIGN_ERR_KEY: return "not a usable PEM key";
	case NF_SIGN_ERR_KEY_TYPE: return "not an RSA key";
	case NF_SIGN_ERR_KEY_NOT_PRIVATE: return "a public key where a private key is needed";
	case NF_SIGN_ERR_KEY_TOO_SMALL: return "key smaller than the minimum key size";
	case NF_SIGN_ERR_KEY_TOO_BIG: return "key larger than the ESP8266 core verifies";
	case NF_SIGN_ERR_CRYPTO: return "cryptographic library failure";
	case NF_SIGN_ERR_ALREADY_SIGNED: return "input already carries a signature trailer";
	case NF_SIGN_ERR_PAD: return "gzip image cannot be padded";
	case NF_SIGN_ERR_NO_TRAILER: return "image has no signature trailer";
	case NF_SIGN_ERR_TRUNCATED: return "signed image is truncated";
	case NF_SIGN_ERR_BAD_LENGTH: return "signature length field does not match the key";
	case NF_SIGN_ERR_BAD_SIGNATURE:
		return "signature does not verify (another key, or altered)";
	}
	return "unknown error";
}

enum nf_sign_err nf_sign_fail(enum nf_sign_err code, char *err, size_t errlen, const char *fmt, ...)
{
	unsigned long e = ERR_peek_error();

	if (err != NULL && errlen > 0) {
		va_list ap;
		size_t n;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		n = strlen(err);
		if (e != 0 && n + 1 < errlen) {
			const char *reason = ERR_reason_error_string(e);
			snprintf(err + n, errlen - n, ": %s",
			         reason != NULL ? reason : "OpenSSL error");
		}
	}
	ERR_clear_error();
	return code;
}

void nf_sign_prefix_path(char *err, size_t errlen, const char *path)
{
	char was[512];

	if (err == NULL || errlen == 0)
		return;
	snprintf(was, sizeof was, "%s", err);
	snprintf(err, errlen, "%s: %s", path, was);
}

/* fsyncs the folder holding path, so a rename or link into it is on disk.
 * Best effort: some file systems refuse fsync on a folder. */
static void sync_parent(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof copy, "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Moves the finished temporary file tmp to path (see nf_sign_write_atomic). */
static enum nf_sign_err publish(const char *tmp, const char *path, int overwrite, char *err,
                                size_t errlen)
{
	if (overwrite ? rename(tmp, path) : link(tmp, path)) {
		if (errno == EEXIST)
			return nf_sign_fail(NF_SIGN_ERR_EXISTS, err, errlen,
			                    "%s exists: not overwritten", path);
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot create %s: %s", path,
		                    strerror(errno));
	}
	sync_parent(path);
	return NF_SIGN_OK;
}

enum nf_sign_err nf_sign_write_atomic(const char *path, unsigned mode, int overwrite,
                                      nf_sign_writer write, void *arg, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	enum nf_sign_err rc = NF_SIGN_OK;
	FILE *f = NULL;
	int fd = -1;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= sizeof tmp)
		return nf_sign_fail(NF_SIGN_ERR_ARG, err, errlen, "%s: path too long", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen,
		                    "cannot create a temporary file beside %s: %s", path,
		                    strerror(errno));
	if (fchmod(fd, (mode_t)mode) != 0 || (f = fdopen(fd, "wb")) == NULL) {
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: %s", tmp, strerror(errno));
		goto done;
	}
	fd = -1; /* f owns it now */
	rc = write(f, arg, err, errlen);
	if (rc != NF_SIGN_OK)
		goto done;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write %s: %s", tmp,
		                  strerror(errno));
		goto done;
	}
	if (fclose(f) != 0) {
		f = NULL;
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write %s: %s", tmp,
		                  strerror(errno));
		goto done;
	}
	f = NULL;
	rc = publish(tmp, path, overwrite, err, errlen);
done:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	unlink(tmp); /* after rename() it is already gone; after link() it is a second name */
	return rc;
}

/* The key in pem[len] for selection (EVP_PKEY_KEYPAIR or
 * EVP_PKEY_PUBLIC_KEY), any algorithm, or NULL. No passphrase callback is
 * set, so an encrypted key fails instead of prompting. */
static EVP_PKEY *decode_pem(const void *pem, size_t len, int selection)
{
	const unsigned char *p = pem;
	size_t left = len;
	EVP_PKEY *pkey = NULL;
	OSSL_DECODER_CTX *dctx =
	    OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, selection, NULL, NULL);

	if (dctx != NULL)
		(void)OSSL_DECODER_from_data(dctx, &p, &left);
	OSSL_DECODER_CTX_free(dctx);
	return pkey;
}

/* Checks that pkey is an RSA key of min_bits..NF_SIGN_MAX_BITS. */
static enum nf_sign_err check_rsa(EVP_PKEY *pkey, unsigned min_bits, char *err, size_t errlen)
{
	int bits = EVP_PKEY_get_bits(pkey);

	if (!EVP_PKEY_is_a(pkey, "RSA"))
		return nf_sign_fail(NF_SIGN_ERR_KEY_TYPE, err, errlen,
		                    "a key of type %s: the ESP8266 core's signed updates use RSA",
		                    EVP_PKEY_get0_type_name(pkey));
	if (bits < (int)min_bits)
		return nf_sign_fail(NF_SIGN_ERR_KEY_TOO_SMALL, err, errlen,
		                    "a %d-bit RSA key: the minimum is %u bits", bits, min_bits);
	if (bits > NF_SIGN_MAX_BITS)
		return nf_sign_fail(NF_SIGN_ERR_KEY_TOO_BIG, err, errlen,
		                    "a %d-bit RSA key: the ESP8266 core (BearSSL) verifies at most "
		                    "%d bits",
		                    bits, NF_SIGN_MAX_BITS);
	return NF_SIGN_OK;
}

/* Decodes pem[len] into *pkey, private when there is a private key, and
 * sets *is_private. Says why not otherwise. */
static enum nf_sign_err decode_key(const void *pem, size_t len, int need_private, EVP_PKEY **pkey,
                                   int *is_private, char *err, size_t errlen)
{
	EVP_PKEY *pub;

	if (memmem(pem, len, "ENCRYPTED", 9) != NULL)
		return nf_sign_fail(NF_SIGN_ERR_KEY, err, errlen,
		                    "an encrypted key: nofuss never asks for a passphrase (decrypt "
		                    "it with `openssl pkey -in KEY -out PLAIN.pem`)");
	*pkey = decode_pem(pem, len, EVP_PKEY_KEYPAIR);
	*is_private = *pkey != NULL;
	if (*pkey != NULL)
		return NF_SIGN_OK;
	pub = decode_pem(pem, len, EVP_PKEY_PUBLIC_KEY);
	ERR_clear_error(); /* the decoders' "unsupported" tells nothing more */
	if (pub != NULL && !need_private) {
		*pkey = pub;
		return NF_SIGN_OK;
	}
	EVP_PKEY_free(pub);
	if (pub != NULL)
		return nf_sign_fail(NF_SIGN_ERR_KEY_NOT_PRIVATE, err, errlen,
		                    "a public key: signing needs the private key");
	return nf_sign_fail(NF_SIGN_ERR_KEY, err, errlen,
	                    "not a PEM key (\"-----BEGIN PRIVATE KEY-----\", "
	                    "\"-----BEGIN PUBLIC KEY-----\" or their RSA forms)");
}

enum nf_sign_err nf_sign_key_from_pem(const void *pem, size_t len, int need_private,
                                      unsigned min_bits, struct nf_sign_key **key, char *err,
                                      size_t errlen)
{
	enum nf_sign_err rc;
	EVP_PKEY *pkey = NULL;
	int is_private = 0;

	if (key == NULL)
		return nf_sign_fail(NF_SIGN_ERR_ARG, err, errlen, "no key to fill");
	*key = NULL;
	if (min_bits == 0)
		min_bits = NF_SIGN_MIN_BITS;
	if (pem == NULL || len > NF_MAX_SIGN_PEM || min_bits > NF_SIGN_MAX_BITS)
		return nf_sign_fail(
		    NF_SIGN_ERR_ARG, err, errlen,
		    "no key text, more than %d bytes of it, or a minimum over %d bits",
		    NF_MAX_SIGN_PEM, NF_SIGN_MAX_BITS);
	rc = decode_key(pem, len, need_private, &pkey, &is_private, err, errlen);
	if (rc == NF_SIGN_OK)
		rc = check_rsa(pkey, min_bits, err, errlen);
	if (rc == NF_SIGN_OK && (*key = calloc(1, sizeof **key)) == NULL)
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "out of memory");
	if (rc != NF_SIGN_OK) {
		EVP_PKEY_free(pkey);
		return rc;
	}
	(*key)->pkey = pkey;
	(*key)->bits = (unsigned)EVP_PKEY_get_bits(pkey);
	(*key)->sig_len = (size_t)EVP_PKEY_get_size(pkey);
	(*key)->min_bits = min_bits;
	(*key)->is_private = is_private;
	return NF_SIGN_OK;
}

enum nf_sign_err nf_sign_key_load(const char *path, int need_private, unsigned min_bits,
                                  struct nf_sign_key **key, char *err, size_t errlen)
{
	char *pem = NULL;
	size_t len;
	enum nf_sign_err rc;
	FILE *f;

	if (key != NULL)
		*key = NULL;
	if (path == NULL)
		return nf_sign_fail(NF_SIGN_ERR_ARG, err, errlen, "no key file named");
	f = fopen(path, "rb");
	if (f == NULL)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
	pem = malloc(NF_MAX_SIGN_PEM + 1);
	if (pem == NULL) {
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "out of memory");
		goto done;
	}
	len = fread(pem, 1, NF_MAX_SIGN_PEM + 1, f);
	if (ferror(f)) {
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: read error", path);
		goto done;
	}
	if (len > NF_MAX_SIGN_PEM) {
		rc =
		    nf_sign_fail(NF_SIGN_ERR_KEY, err, errlen,
		                 "%s: longer than %d bytes, not a key file", path, NF_MAX_SIGN_PEM);
		goto done;
	}
	rc = nf_sign_key_from_pem(pem, len, need_private, min_bits, key, err, errlen);
	if (rc != NF_SIGN_OK)
		nf_sign_prefix_path(err, errlen, path);
done:
	if (pem != NULL)
		OPENSSL_cleanse(pem, NF_MAX_SIGN_PEM + 1); /* it may hold a private key */
	free(pem);
	fclose(f);
	return rc;
}

void nf_sign_key_free(struct nf_sign_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

unsigned nf_sign_key_bits(const struct nf_sign_key *key)
{
	return key->bits;
}

size_t nf_sign_key_sig_len(const struct nf_sign_key *key)
{
	return key->sig_len;
}

int nf_sign_key_is_private(const struct nf_sign_key *key)
{
	return key->is_private;
}

static enum nf_sign_err write_private(FILE *f, void *arg, char *err, size_t errlen)
{
	if (PEM_write_PrivateKey(f, arg, NULL, NULL, 0, NULL, NULL) != 1)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the private key");
	return NF_SIGN_OK;
}

static enum nf_sign_err write_public(FILE *f, void *arg, char *err, size_t errlen)
{
	if (PEM_write_PUBKEY(f, arg) != 1)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the public key");
	return NF_SIGN_OK;
}

/* NF_SIGN_ERR_EXISTS when path exists and may not be replaced. */
static enum nf_sign_err check_absent(const char *path, int overwrite, char *err, size_t errlen)
{
	struct stat st;

	if (path == NULL || overwrite || lstat(path, &st) != 0)
		return NF_SIGN_OK;
	return nf_sign_fail(NF_SIGN_ERR_EXISTS, err, errlen, "%s exists: not overwritten", path);
}

enum nf_sign_err nf_sign_keygen(unsigned bits, const char *private_path, const char *public_path,
                                int overwrite, char *err, size_t errlen)
{
	enum nf_sign_err rc;
	EVP_PKEY *pkey;

	if (bits == 0)
		bits = NF_SIGN_BITS_DEFAULT;
	if (bits != 2048 && bits != 3072 && bits != 4096)
		return nf_sign_fail(NF_SIGN_ERR_ARG, err, errlen,
		                    "RSA-%u: nofuss makes 2048-, 3072- or 4096-bit keys", bits);
	if (private_path == NULL || (public_path != NULL && strcmp(private_path, public_path) == 0))
		return nf_sign_fail(NF_SIGN_ERR_ARG, err, errlen,
		                    "the private and public keys need two different files");
	rc = check_absent(private_path, overwrite, err, errlen);
	if (rc == NF_SIGN_OK)
		rc = check_absent(public_path, overwrite, err, errlen);
	if (rc != NF_SIGN_OK)
		return rc;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (pkey == NULL)
		return nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "RSA-%u key generation", bits);
	rc = nf_sign_write_atomic(private_path, 0600, overwrite, write_private, pkey, err, errlen);
	if (rc == NF_SIGN_OK && public_path != NULL) {
		rc = nf_sign_write_atomic(public_path, 0644, overwrite, write_public, pkey, err,
		                          errlen);
		if (rc != NF_SIGN_OK)
			unlink(private_path); /* no private key without its public half */
	}
	EVP_PKEY_free(pkey);
	return rc;
}

enum nf_sign_err nf_sign_pubkey_pem(const struct nf_sign_key *key, FILE *out, char *err,
                                    size_t errlen)
{
	if (PEM_write_PUBKEY(out, key->pkey) != 1 || fflush(out) != 0)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the public key");
	return NF_SIGN_OK;
}

enum nf_sign_err nf_sign_pubkey_header(const struct nf_sign_key *key, FILE *out, char *err,
                                       size_t errlen)
{
	/* The core's header form (its signing tool's header mode): every byte
	 * of the public key's PEM file as "0x%02x", separated by ", " and a
	 * newline, in a PROGMEM array with no terminating NUL. */
	BIO *mem = BIO_new(BIO_s_mem());
	enum nf_sign_err rc = NF_SIGN_OK;
	char *pem = NULL;
	long len;

	if (mem == NULL || PEM_write_bio_PUBKEY(mem, key->pkey) != 1) {
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "cannot encode the public key");
		goto done;
	}
	len = BIO_get_mem_data(mem, &pem);
	fputs("#include <pgmspace.h>\n#define ARDUINO_SIGNING 1\n"
	      "static const char signing_pubkey[] PROGMEM = {\n",
	      out);
	for (long i = 0; i < len; i++)
		fprintf(out, i + 1 < len ? "0x%02x, \n" : "0x%02x\n", (unsigned char)pem[i]);
	fputs("};\n", out);
	if (fflush(out) != 0 || ferror(out))
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the header");
done:
	BIO_free(mem);
	return rc;
}
