/*
 * sign_internal.h - what the three files of the signing module share and
 * nothing outside them sees: the key's layout, the error-message helper and
 * the chunk size of every file read and write.
 *
 * sign.c holds keys, key generation, the public key's C header and the
 * error texts; sign_image.c signs image files; sign_verify.c parses the
 * trailer and verifies. The public API is in common.h.
 */
#ifndef NOFUSS_SIGN_INTERNAL_H
#define NOFUSS_SIGN_INTERNAL_H

#include <openssl/evp.h>

#include "common.h"

#define NF_SIGN_CHUNK (64 * 1024) /* bytes read or written at once */

struct nf_sign_key {
	EVP_PKEY *pkey;
	unsigned bits;     /* modulus size */
	size_t sig_len;    /* modulus size in bytes: every signature's length */
	unsigned min_bits; /* smallest signer accepted when verifying */
	int is_private;
};

/* Writes "<printf text>" into err[errlen] (when err is not NULL and errlen is
 * not 0), followed by ": <reason>" of the oldest OpenSSL error queued, if
 * any; always empties OpenSSL's error queue. Returns code, so a failure is
 * one line: return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "...", ...). */
enum nf_sign_err nf_sign_fail(enum nf_sign_err code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Rewrites err[errlen] (when not NULL) as "<path>: <what it said>". */
void nf_sign_prefix_path(char *err, size_t errlen, const char *path);

/* Writes the content of a new file: returns NF_SIGN_OK, or an error it has
 * already described in err[errlen]. */
typedef enum nf_sign_err (*nf_sign_writer)(FILE *f, void *arg, char *err, size_t errlen);

/* Makes path with mode mode, atomically: write(f, arg, err, errlen) fills a
 * temporary file in the same folder, which is then flushed, fsync'ed and
 * moved into place: with rename() when overwrite, else with link(), so an
 * existing path is never replaced (NF_SIGN_ERR_EXISTS). The folder is
 * fsync'ed after. The temporary file is gone whatever happens. */
enum nf_sign_err nf_sign_write_atomic(const char *path, unsigned mode, int overwrite,
                                      nf_sign_writer write, void *arg, char *err, size_t errlen);

#endif /* NOFUSS_SIGN_INTERNAL_H */
