/*
 * sign_image.c - signs ESP8266 image files in the core's format
 * (image || signature || le32 length), and knows the core's two traps.
 *
 * The signature is what `openssl dgst -sha256 -sign key.pem image` makes
 * (RSASSA-PKCS1-v1_5 is deterministic, so the bytes are the same). The
 * traps, from the core's Updater (docs/SIGNING.md):
 *  - it rewrites byte 2 (the flash mode) of an uncompressed app image (0xE9
 *    first) to the device's own mode as it writes it to flash, then hashes
 *    what is in flash: an image signed with another mode never verifies.
 *    nofuss warns, or sets the byte to the devices' mode before signing;
 *  - released cores (up to 3.1.2) read the image back in whole 32-bit words
 *    and miss the last bytes of an image whose length is not a multiple of 4,
 *    which gzip'ed images often have. nofuss warns, or grows the gzip header
 *    by one to three bytes of header comment, which the core's bootloader
 *    (uzlib) skips; padding at the end would not do, as the bootloader reads
 *    the uncompressed size from the last 4 bytes.
 * A third follows from that: firmware without a key keeps the trailer of a
 * signed gzip image, and its bootloader then takes the length field for the
 * uncompressed size. nofuss reminds of it for every gzip image it signs.
 * The library prints nothing: the warnings go back to the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sign_internal.h"

#define GZIP_FHCRC    0x02 /* gzip header flags (RFC 1952) */
#define GZIP_FEXTRA   0x04
#define GZIP_FNAME    0x08
#define GZIP_FCOMMENT 0x10

static const char *const mode_names[] = {"qio", "qout", "dio", "dout"};

int nf_sign_flash_mode_parse(const char *name)
{
	for (int i = 0; name != NULL && i < 4; i++)
		if (strcasecmp(name, mode_names[i]) == 0)
			return i;
	return NF_SIGN_FLASH_UNKNOWN;
}

const char *nf_sign_flash_mode_name(int mode)
{
	return mode >= 0 && mode < 4 ? mode_names[mode] : "unknown";
}

enum nf_sign_err nf_sign_data(const struct nf_sign_key *key, const void *data, size_t len,
                              unsigned char *sig, size_t *sig_len, char *err, size_t errlen)
{
	EVP_MD_CTX *md;
	enum nf_sign_err rc = NF_SIGN_OK;

	if (!key->is_private)
		return nf_sign_fail(NF_SIGN_ERR_KEY_NOT_PRIVATE, err, errlen,
		                    "signing needs the private key");
	*sig_len = NF_SIGN_MAX_SIG;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
	    EVP_DigestSign(md, sig, sig_len, data, len) != 1)
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "signing");
	EVP_MD_CTX_free(md);
	return rc;
}

/* An image being signed: its input file, and its first bytes as they will
 * be signed (flash mode set, gzip padding to insert). */
struct sign_job {
	const struct nf_sign_key *key;
	const char *in_path;
	int fd;              /* the input, read up to head_len so far */
	uint64_t in_len;     /* its size */
	unsigned char *head; /* NF_SIGN_CHUNK bytes: the first head_len of the input */
	size_t head_len;
	unsigned char pad[3]; /* gzip padding, inserted at head[pad_at] */
	size_t pad_len, pad_at;
};

/* Reads up to n bytes, fewer only at the end of the file. Returns the count,
 * or -1 with errno set. */
static ssize_t read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Hashes and writes n bytes. Returns 0 or -1. */
static int emit(EVP_MD_CTX *md, FILE *f, const unsigned char *data, size_t n)
{
	if (n == 0)
		return 0;
	if (EVP_DigestSignUpdate(md, data, n) != 1 || fwrite(data, 1, n, f) != n)
		return -1;
	return 0;
}

/* Writes the rest of the input after its head, hashing it. */
static enum nf_sign_err copy_rest(struct sign_job *job, EVP_MD_CTX *md, FILE *f, char *err,
                                  size_t errlen)
{
	uint64_t done = job->head_len;
	unsigned char extra;

	while (done < job->in_len) {
		uint64_t left = job->in_len - done;
		size_t want = left < NF_SIGN_CHUNK ? (size_t)left : NF_SIGN_CHUNK;
		ssize_t n = read_full(job->fd, job->head, want);

		if (n != (ssize_t)want)
			return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen,
			                    "%s: read error, or the file shrank while being read",
			                    job->in_path);
		if (emit(md, f, job->head, want) != 0)
			return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the image");
		done += want;
	}
	if (read_full(job->fd, &extra, 1) != 0)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s grew while being read",
		                    job->in_path);
	return NF_SIGN_OK;
}

/* nf_sign_writer: the signed image into f. */
static enum nf_sign_err write_signed(FILE *f, void *arg, char *err, size_t errlen)
{
	struct sign_job *job = arg;
	unsigned char sig[NF_SIGN_MAX_SIG], len4[NF_SIGN_LEN_FIELD];
	size_t sig_len = sizeof sig;
	enum nf_sign_err rc;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, job->key->pkey) != 1) {
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "signing");
		goto done;
	}
	if (emit(md, f, job->head, job->pad_at) != 0 || emit(md, f, job->pad, job->pad_len) != 0 ||
	    emit(md, f, job->head + job->pad_at, job->head_len - job->pad_at) != 0) {
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the image");
		goto done;
	}
	rc = copy_rest(job, md, f, err, errlen);
	if (rc != NF_SIGN_OK)
		goto done;
	if (EVP_DigestSignFinal(md, sig, &sig_len) != 1) {
		rc = nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "signing");
		goto done;
	}
	for (int i = 0; i < NF_SIGN_LEN_FIELD; i++) /* on the wire: little-endian */
		len4[i] = (unsigned char)((uint32_t)sig_len >> (8 * i));
	if (fwrite(sig, 1, sig_len, f) != sig_len || fwrite(len4, 1, sizeof len4, f) != sizeof len4)
		rc = nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "cannot write the signature");
done:
	EVP_MD_CTX_free(md);
	return rc;
}

/* Refuses an input that already ends with a trailer for this key's size,
 * unless NF_SIGN_FORCE (then warns). */
static enum nf_sign_err check_unsigned(const struct sign_job *job, unsigned flags,
                                       struct nf_sign_result *r, char *err, size_t errlen)
{
	unsigned char last4[NF_SIGN_LEN_FIELD];
	struct nf_sign_trailer t;

	if (job->in_len < NF_SIGN_LEN_FIELD)
		return NF_SIGN_OK;
	if (pread(job->fd, last4, sizeof last4, (off_t)(job->in_len - sizeof last4)) !=
	    (ssize_t)sizeof last4)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: read error", job->in_path);
	if (nf_sign_trailer_parse(last4, job->in_len, job->key->sig_len, job->key->min_bits, &t) !=
	    NF_SIGN_OK)
		return NF_SIGN_OK;
	if (!(flags & NF_SIGN_FORCE))
		return nf_sign_fail(NF_SIGN_ERR_ALREADY_SIGNED, err, errlen,
		                    "%s already ends with a %zu-byte signature and its length "
		                    "(a signed image?): sign the unsigned image, or force it to "
		                    "sign the whole file again, old trailer included",
		                    job->in_path, job->key->sig_len);
	r->warnings |= NF_SIGN_WARN_RESIGNED;
	return NF_SIGN_OK;
}

/* Trap (a): byte 2 of an app image against the devices' flash mode. */
static void check_flash_mode(struct sign_job *job, const struct nf_sign_opts *opts,
                             struct nf_sign_result *r)
{
	unsigned char *mode = &job->head[2];

	r->flash_mode_in = *mode;
	if (opts->flags & NF_SIGN_SET_FLASH_MODE) {
		if (*mode != opts->flash_mode) {
			*mode = (unsigned char)opts->flash_mode;
			r->warnings |= NF_SIGN_WARN_FLASH_MODE_SET;
		}
	} else if (*mode > NF_SIGN_FLASH_DOUT) {
		r->warnings |= NF_SIGN_WARN_FLASH_MODE_INVALID;
	} else if (opts->flash_mode == NF_SIGN_FLASH_UNKNOWN) {
		r->warnings |= NF_SIGN_WARN_FLASH_MODE_UNCHECKED;
	} else if (*mode != opts->flash_mode) {
		r->warnings |= NF_SIGN_WARN_FLASH_MODE_MISMATCH;
	}
	r->flash_mode = *mode;
}

/* Where a gzip header in h[n] can take padding: *at is the offset of the
 * comment's NUL when it has one (*has_comment 1), else the offset where a
 * comment would start. Returns NULL, or why the header cannot be padded. */
static const char *gzip_comment_at(const unsigned char *h, size_t n, size_t *at, int *has_comment)
{
	const unsigned char *nul;
	size_t pos = 10;
	unsigned flg;

	if (n < 10 || h[2] != 8 || (h[3] & 0xe0) != 0)
		return "not a deflate gzip header";
	flg = h[3];
	if (flg & GZIP_FHCRC)
		return "its header carries a CRC (FHCRC)";
	if (flg & GZIP_FEXTRA) {
		if (n < pos + 2)
			return "header longer than the first chunk read";
		pos += 2 + (size_t)(h[pos] | h[pos + 1] << 8);
	}
	if ((flg & GZIP_FNAME) && pos < n) {
		nul = memchr(h + pos, 0, n - pos);
		pos = nul != NULL ? (size_t)(nul - h) + 1 : n + 1;
	}
	*has_comment = (flg & GZIP_FCOMMENT) != 0;
	if (*has_comment && pos < n) {
		nul = memchr(h + pos, 0, n - pos);
		pos = nul != NULL ? (size_t)(nul - h) : n + 1;
	}
	if (pos >= n)
		return "header longer than the first chunk read";
	*at = pos;
	return NULL;
}

/* Trap (b): pads a gzip image to a multiple of 4 bytes when asked, by
 * growing (or adding) its header comment. */
static enum nf_sign_err pad_gzip(struct sign_job *job, struct nf_sign_result *r, char *err,
                                 size_t errlen)
{
	size_t need = (size_t)((4 - job->in_len % 4) % 4), at = 0;
	int has_comment = 0;
	const char *why;

	if (need == 0)
		return NF_SIGN_OK;
	why = gzip_comment_at(job->head, job->head_len, &at, &has_comment);
	if (why != NULL)
		return nf_sign_fail(NF_SIGN_ERR_PAD, err, errlen,
		                    "%s: cannot pad this gzip image: %s", job->in_path, why);
	memset(job->pad, ' ', need);
	if (!has_comment) {
		job->pad[need - 1] = '\0'; /* a new comment: spaces and its NUL */
		job->head[3] |= GZIP_FCOMMENT;
	}
	job->pad_len = need;
	job->pad_at = at;
	r->pad_len = (unsigned)need;
	r->warnings |= NF_SIGN_WARN_GZIP_PADDED;
	return NF_SIGN_OK;
}

/* Looks at the head of the image: its kind and the core's traps. */
static enum nf_sign_err inspect(struct sign_job *job, const struct nf_sign_opts *opts,
                                struct nf_sign_result *r, char *err, size_t errlen)
{
	const unsigned char *h = job->head;
	enum nf_sign_err rc = NF_SIGN_OK;

	r->flash_mode_in = r->flash_mode = NF_SIGN_FLASH_UNKNOWN;
	r->devices_mode = opts->flash_mode;
	if (job->head_len >= 3 && h[0] == 0xe9) {
		r->kind = NF_SIGN_IMAGE_APP;
		check_flash_mode(job, opts, r);
	} else if (job->head_len >= 2 && h[0] == 0x1f && h[1] == 0x8b) {
		r->kind = NF_SIGN_IMAGE_GZIP;
		r->warnings |= NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES;
		if (opts->flags & NF_SIGN_PAD_GZIP)
			rc = pad_gzip(job, r, err, errlen);
	} else {
		r->kind = NF_SIGN_IMAGE_OTHER;
		r->warnings |= NF_SIGN_WARN_NOT_APP_IMAGE;
	}
	r->payload_len = job->in_len + job->pad_len;
	if (r->payload_len % 4 != 0)
		r->warnings |= NF_SIGN_WARN_UNALIGNED;
	return rc;
}

/* Opens the input and reads its head. */
static enum nf_sign_err open_input(struct sign_job *job, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;

	job->fd = open(job->in_path, O_RDONLY | O_CLOEXEC);
	if (job->fd < 0 || fstat(job->fd, &st) != 0)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: %s", job->in_path,
		                    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: not a regular file",
		                    job->in_path);
	job->in_len = (uint64_t)st.st_size;
	job->head = malloc(NF_SIGN_CHUNK);
	if (job->head == NULL)
		return nf_sign_fail(NF_SIGN_ERR_CRYPTO, err, errlen, "out of memory");
	job->head_len = job->in_len < NF_SIGN_CHUNK ? (size_t)job->in_len : NF_SIGN_CHUNK;
	n = read_full(job->fd, job->head, job->head_len);
	if (n != (ssize_t)job->head_len)
		return nf_sign_fail(NF_SIGN_ERR_IO, err, errlen, "%s: read error", job->in_path);
	return NF_SIGN_OK;
}

enum nf_sign_err nf_sign_image(const struct nf_sign_key *key, const char *in_path,
                               const char *out_path, const struct nf_sign_opts *opts,
                               struct nf_sign_result *res, char *err, size_t errlen)
{
	static const struct nf_sign_opts defaults = {0, NF_SIGN_FLASH_UNKNOWN};
	struct sign_job job = {.key = key, .in_path = in_path, .fd = -1};
	struct nf_sign_result r = {0};
	enum nf_sign_err rc;

	if (opts == NULL)
		opts = &defaults;
	if (key == NULL || in_path == NULL || out_path == NULL ||
	    opts->flash_mode < NF_SIGN_FLASH_UNKNOWN || opts->flash_mode > NF_SIGN_FLASH_DOUT ||
	    ((opts->flags & NF_SIGN_SET_FLASH_MODE) && opts->flash_mode == NF_SIGN_FLASH_UNKNOWN))
		return nf_sign_fail(NF_SIGN_ERR_ARG, err, errlen,
		                    "no key, input or output, or a flash mode that is not "
		                    "qio/qout/dio/dout (setting the mode needs one)");
	if (!key->is_private)
		return nf_sign_fail(NF_SIGN_ERR_KEY_NOT_PRIVATE, err, errlen,
		                    "signing needs the private key");
	rc = open_input(&job, err, errlen);
	if (rc == NF_SIGN_OK)
		rc = check_unsigned(&job, opts->flags, &r, err, errlen);
	if (rc == NF_SIGN_OK)
		rc = inspect(&job, opts, &r, err, errlen);
	if (rc == NF_SIGN_OK)
		rc = nf_sign_write_atomic(out_path, 0644, !(opts->flags & NF_SIGN_NO_OVERWRITE),
		                          write_signed, &job, err, errlen);
	if (rc == NF_SIGN_OK) {
		r.sig_len = key->sig_len;
		if (res != NULL)
			*res = r;
	}
	if (job.fd >= 0)
		close(job.fd);
	free(job.head);
	return rc;
}

const char *nf_sign_warning_text(const struct nf_sign_result *res, unsigned bit, char *buf,
                                 size_t len)
{
	const char *in = nf_sign_flash_mode_name(res->flash_mode_in);
	const char *dev = nf_sign_flash_mode_name(res->devices_mode);

	switch (bit) {
	case NF_SIGN_WARN_FLASH_MODE_UNCHECKED:
		snprintf(buf, len,
		         "signed with flash mode %s (byte 2 of the app image): devices whose flash "
		         "runs in another mode rewrite that byte as they write the image, and then "
		         "reject the signature; give the devices' flash mode to check or set it",
		         in);
		break;
	case NF_SIGN_WARN_FLASH_MODE_MISMATCH:
		snprintf(buf, len,
		         "byte 2 of the app image says flash mode %s but the devices run %s: they "
		         "rewrite that byte as they write the image, so the signature will not "
		         "verify on them; sign with the devices' mode set",
		         in, dev);
		break;
	case NF_SIGN_WARN_FLASH_MODE_INVALID:
		snprintf(buf, len,
		         "byte 2 of the app image (0x%02x) is no flash mode: every device rewrites "
		         "it as it writes the image, so the signature will never verify; sign with "
		         "the devices' mode set",
		         (unsigned)res->flash_mode_in & 0xffu);
		break;
	case NF_SIGN_WARN_FLASH_MODE_SET:
		snprintf(buf, len,
		         "flash mode byte (byte 2) set from %s (0x%02x) to %s before signing", in,
		         (unsigned)res->flash_mode_in & 0xffu, dev);
		break;
	case NF_SIGN_WARN_UNALIGNED:
		snprintf(
		    buf, len,
		    "the image is %llu bytes, not a multiple of 4: released ESP8266 cores (up to "
		    "3.1.2) misread its end and reject the signature%s",
		    (unsigned long long)res->payload_len,
		    res->kind == NF_SIGN_IMAGE_GZIP ? "; pad the gzip image" : "");
		break;
	case NF_SIGN_WARN_GZIP_PADDED:
		snprintf(
		    buf, len,
		    "gzip header comment grown by %u byte(s) so that the image is a multiple of "
		    "4 bytes, as released ESP8266 cores need",
		    res->pad_len);
		break;
	case NF_SIGN_WARN_NOT_APP_IMAGE:
		snprintf(buf, len,
		         "the image starts with neither 0xE9 (an app image) nor gzip: the core's "
		         "Updater refuses it as firmware (a filesystem image is fine)");
		break;
	case NF_SIGN_WARN_RESIGNED:
		snprintf(buf, len,
		         "the input already ended with a signature trailer: signed again, old "
		         "trailer included in the payload");
		break;
	case NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES:
		snprintf(
		    buf, len,
		    "send this signed gzip image only to devices whose firmware verifies "
		    "signatures: firmware without a key keeps the trailer, and its bootloader "
		    "then reads the signature's length as the uncompressed size and installs a "
		    "broken image");
		break;
	default:
		if (len > 0)
			buf[0] = '\0';
	}
	return buf;
}
