/*
 * verify.c - the POSIX port's signature check: nf_port_flash_verify, the
 * core's last question before it commits an image, answered with the
 * signed-image engine of nofuss_common (common/sign_verify.c, OpenSSL).
 *
 * A device given a public key (nf_posix_load_pubkey; `nofuss device
 * --pubkey`) is a sketch built with ARDUINO_SIGNING: it accepts only images
 * that end with a valid trailer by that key (docs/SIGNING.md). The bytes
 * are hashed as they stream in: port.c hands every byte that reaches the
 * flash to nf_posix_sign_write, and the verifier holds back only the last
 * signature + 4 bytes. The verdict comes once the whole image is in, and a
 * refusal is said on the console ("signature: refused: ...") before the
 * core aborts the image. A device without a key accepts every image, signed
 * or not, as unsigned firmware does.
 *
 * Whoever else writes through the port's flash calls (the ArduinoOTA
 * receiver) gets the same check: nf_port_flash_finish asks
 * nf_posix_sign_committable, which verifies an image nobody asked about.
 *
 * The trailer stays in the flash slot, after the image, as on an ESP8266
 * without a key: the simulator's image checks read an image by the size
 * its metadata records and accept a signature trailer after it
 * (nf_posix_signed_tail, called by image.c).
 */
#include <inttypes.h>
#include <unistd.h>

#include "common.h"
#include "nofuss/posix.h"

int nf_posix_load_pubkey(struct nf_posix *p, const char *path, char *err, size_t errcap)
{
	struct nf_sign_key *key = NULL;
	char why[NF_POSIX_ERR_MAX];

	if (nf_sign_key_load(path, 0, 0, &key, why, sizeof why) != NF_SIGN_OK) {
		nf_errf(err, errcap, "%s", why);
		return -1;
	}
	nf_posix_sign_close(p);
	p->sign_key = key;
	return 0;
}

void nf_posix_share_pubkey(struct nf_posix *p, struct nf_sign_key *key)
{
	nf_posix_sign_close(p);
	p->sign_key = key;
	p->sign_key_shared = key != NULL;
}

void nf_posix_sign_begin(struct nf_posix *p)
{
	nf_posix_sign_end(p);
	if (p->sign_key != NULL)
		p->sign_check = nf_sign_verifier_new(p->sign_key); /* NULL: refused at the end */
}

void nf_posix_sign_write(struct nf_posix *p, const uint8_t *data, size_t len)
{
	/* A hash failure is remembered by the verifier and refuses the image. */
	if (p->sign_check != NULL)
		(void)nf_sign_verifier_update(p->sign_check, data, len);
}

void nf_posix_sign_end(struct nf_posix *p)
{
	nf_sign_verifier_free(p->sign_check);
	p->sign_check = NULL;
	p->sign_accepted = false;
}

void nf_posix_sign_close(struct nf_posix *p)
{
	nf_posix_sign_end(p);
	if (!p->sign_key_shared)
		nf_sign_key_free(p->sign_key);
	p->sign_key = NULL;
	p->sign_key_shared = false;
}

int nf_port_flash_verify(void *port)
{
	struct nf_posix *p = port;
	struct nf_sign_trailer t;
	char err[NF_POSIX_ERR_MAX];
	enum nf_sign_err rc;

	if (p->sign_key == NULL)
		return 0; /* no key: any image, as firmware built without one */
	if (p->sign_check == NULL) {
		nf_posix_logf(p, NULL, "signature: refused: cannot check it (out of memory)");
		return -1;
	}
	rc = nf_sign_verifier_final(p->sign_check, &t, err, sizeof err);
	nf_sign_verifier_free(p->sign_check);
	p->sign_check = NULL;
	if (rc != NF_SIGN_OK) {
		nf_posix_logf(p, NULL, "signature: refused: %s", err);
		return -1;
	}
	nf_posix_logf(p, NULL, "signature: verified (RSA-%u, %" PRIu64 " bytes signed)",
	              nf_sign_key_bits(p->sign_key), t.payload_len);
	p->sign_accepted = true;
	return 0;
}

bool nf_posix_sign_committable(struct nf_posix *p)
{
	return p->sign_key == NULL || p->sign_accepted || nf_port_flash_verify(p) == 0;
}

bool nf_posix_signed_tail_bytes(const unsigned char last4[4], uint32_t recorded, uint64_t size)
{
	uint32_t len;

	if (size <= (uint64_t)recorded + NF_SIGN_LEN_FIELD)
		return false;
	len = (uint32_t)last4[0] | (uint32_t)last4[1] << 8 | (uint32_t)last4[2] << 16 |
	      (uint32_t)last4[3] << 24;
	return len <= NF_SIGN_MAX_SIG && (uint64_t)recorded + len + NF_SIGN_LEN_FIELD == size;
}

bool nf_posix_signed_tail(int fd, uint32_t recorded, off_t size)
{
	unsigned char last4[NF_SIGN_LEN_FIELD];

	if (size - (off_t)recorded <= NF_SIGN_LEN_FIELD ||
	    pread(fd, last4, sizeof last4, size - NF_SIGN_LEN_FIELD) != (ssize_t)sizeof last4)
		return false;
	return nf_posix_signed_tail_bytes(last4, recorded, (uint64_t)size);
}
