/*
 * md5.c - nf_port_md5_* with OpenSSL's EVP interface.
 *
 * The core hands over NF_CLIENT_HASH_CTX_MAX bytes for the context; an
 * EVP_MD_CTX is opaque and allocated by OpenSSL, so those bytes hold a
 * pointer to it. The context belongs to the port handle, made once and
 * reset by each nf_port_md5_init: the core may abandon a digest without
 * calling nf_port_md5_final (an image that fails half-way), and a context
 * per digest would then leak. One digest runs at a time per handle, which
 * is all the core needs.
 */
#include <string.h>

#include <openssl/evp.h>

#include "nofuss/posix.h"

static EVP_MD_CTX *ctx_of(const void *ctx)
{
	EVP_MD_CTX *md;

	memcpy(&md, ctx, sizeof md);
	return md;
}

void nf_port_md5_init(void *port, void *ctx)
{
	struct nf_posix *p = port;
	EVP_MD_CTX *md;

	if (p->md5 == NULL)
		p->md5 = EVP_MD_CTX_new();
	md = p->md5;
	if (md != NULL && EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1) {
		nf_posix_logf(p, NULL, "md5: OpenSSL cannot start an MD5 digest");
		md = NULL;
	}
	memcpy(ctx, &md, sizeof md); /* NULL: the digest comes out wrong, never right */
}

void nf_port_md5_update(void *port, void *ctx, const uint8_t *data, size_t len)
{
	EVP_MD_CTX *md = ctx_of(ctx);

	(void)port;
	if (md != NULL)
		EVP_DigestUpdate(md, data, len);
}

void nf_port_md5_final(void *port, void *ctx, uint8_t digest[16])
{
	EVP_MD_CTX *md = ctx_of(ctx);
	unsigned int len = 0;

	(void)port;
	if (md == NULL || EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 16) {
		/* A failed digest must not pass an x-MD5 check by chance of
		 * leftover bytes: a fixed pattern fails it (but for 2^-128). */
		memset(digest, 0xFF, 16);
	}
}
