/*
 * common.h - host-only helpers shared by nofussd and the tools: the table of
 * contents of the nofuss_common library. Never linked into the device core,
 * which runs on a microcontroller and has its own port.
 */
#ifndef NOFUSS_COMMON_H
#define NOFUSS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "vercmp.h" /* vercmp.c: PHP version_compare, exactly */

/* clock.c --------------------------------------------------------------- */
/* Milliseconds on the monotonic clock: for timeouts and durations, never
 * for dates (it does not follow the wall clock). */
uint64_t nf_clock_ms(void);
/* Milliseconds since 1970 on the wall clock: the times the fleet store
 * keeps (several nodes share them). A vDSO call, no system call. */
int64_t nf_clock_wall_ms(void);
/* The monotonic time ms from now, for pthread_cond_timedwait on a
 * condition made with CLOCK_MONOTONIC (pthread_condattr_setclock). */
struct timespec nf_clock_deadline(unsigned ms);

/* errf.c --------------------------------------------------------------- */
/* Formats a one-line reason into err[cap], as printf does; nothing when err
 * is NULL or cap is 0. For functions that return -1 and say why. */
void nf_errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* hex.c ----------------------------------------------------------------- */
/* Writes the 2*len lower-case hex digits of bytes into out, then a NUL:
 * out must have room for 2*len+1 bytes. Digests on the wire (x-MD5, the
 * ArduinoOTA MD5s) are lower-case. */
void nf_hex_encode(const unsigned char *bytes, size_t len, char *out);
/* The value of one hex digit (either case), or -1 for anything else. */
int nf_hex_digit(char c);
/* Reads exactly 2*len hex digits (either case) from hex into bytes.
 * Returns 0, or -1 when hex is shorter or holds anything but hex digits
 * (bytes is then unspecified). */
int nf_hex_decode(const char *hex, unsigned char *bytes, size_t len);

/* sign.c, sign_image.c, sign_verify.c -------------------------------------- */
/* Signed images in the ESP8266 Arduino core's own format (docs/SIGNING.md):
 *
 *     image bytes || signature || le32(signature length)
 *
 * The signature is RSASSA-PKCS1-v1_5 over the SHA-256 of the image bytes, as
 * long as the key's modulus (256 bytes for RSA-2048). The layout is on the
 * wire and in the devices' flash: do not change it. Every function below
 * returns an enum nf_sign_err and, when err is not NULL, writes a one-line
 * explanation of a failure (file, sizes, OpenSSL's reason) into err[errlen]. */

#define NF_SIGN_BITS_DEFAULT 2048 /* nf_sign_keygen's size when bits is 0 */
#define NF_SIGN_MIN_BITS     2048 /* smallest key accepted when min_bits is 0 */
#define NF_SIGN_MAX_BITS     4096 /* BearSSL on the ESP8266 verifies no larger RSA key */
#define NF_SIGN_MAX_SIG      (NF_SIGN_MAX_BITS / 8) /* longest signature, in bytes */
#define NF_SIGN_LEN_FIELD    4                      /* the trailing le32 length field */
#define NF_MAX_SIGN_PEM      (64 * 1024)            /* longest key file read */

/* Numbered once and never renumbered: callers may store or log them. */
enum nf_sign_err {
	NF_SIGN_OK = 0,
	NF_SIGN_ERR_ARG = 1,             /* bad argument (key size not 2048/3072/4096, ...) */
	NF_SIGN_ERR_IO = 2,              /* a file could not be read or written */
	NF_SIGN_ERR_EXISTS = 3,          /* an output file exists and overwriting was not asked */
	NF_SIGN_ERR_KEY = 4,             /* not a PEM key file, or an encrypted one */
	NF_SIGN_ERR_KEY_TYPE = 5,        /* a key, but not RSA */
	NF_SIGN_ERR_KEY_NOT_PRIVATE = 6, /* a public key where the private one is needed */
	NF_SIGN_ERR_KEY_TOO_SMALL = 7,   /* key or signer below the minimum key size */
	NF_SIGN_ERR_KEY_TOO_BIG = 8,     /* key above NF_SIGN_MAX_BITS */
	NF_SIGN_ERR_CRYPTO = 9,          /* OpenSSL failed (out of memory, ...) */
	NF_SIGN_ERR_ALREADY_SIGNED = 10, /* input ends with a trailer for this key size */
	NF_SIGN_ERR_PAD = 11,            /* a gzip image that cannot be padded */
	NF_SIGN_ERR_NO_TRAILER = 12,     /* no signature trailer: unsigned, or its end lost */
	NF_SIGN_ERR_TRUNCATED = 13,      /* the trailer claims more bytes than the file has */
	NF_SIGN_ERR_BAD_LENGTH = 14,     /* the length field is not this key's signature size */
	NF_SIGN_ERR_BAD_SIGNATURE = 15,  /* signed by another key, or altered since */
};

/* A static, never NULL, English sentence for code ("unknown error" for a
 * value outside the enum). */
const char *nf_sign_strerror(enum nf_sign_err code);

/* An RSA key loaded from PEM: private (it signs and verifies) or public
 * (it verifies). Opaque; one key may serve many threads at once (every
 * function below only reads it). */
struct nf_sign_key;

/* Loads the PEM key file at path. need_private: 1 for signing (only a
 * private key will do), 0 for verifying (a private key file is accepted too:
 * its public half is used). Accepts PKCS#8 and traditional private keys,
 * SubjectPublicKeyInfo ("PUBLIC KEY", what `openssl pkey -pubout` writes) and
 * PKCS#1 ("RSA PUBLIC KEY") public keys; never prompts for a passphrase
 * (encrypted keys are refused). min_bits is the smallest modulus accepted
 * (0: NF_SIGN_MIN_BITS); it is kept in the key and also bounds the signers
 * nf_sign_verify* accept. On NF_SIGN_OK *key is the caller's, freed with
 * nf_sign_key_free; on failure *key is NULL. */
enum nf_sign_err nf_sign_key_load(const char *path, int need_private, unsigned min_bits,
                                  struct nf_sign_key **key, char *err, size_t errlen);
/* The same from len bytes of PEM text in memory (not kept). */
enum nf_sign_err nf_sign_key_from_pem(const void *pem, size_t len, int need_private,
                                      unsigned min_bits, struct nf_sign_key **key, char *err,
                                      size_t errlen);
/* Frees a key from nf_sign_key_load/_from_pem; NULL is a no-op. */
void nf_sign_key_free(struct nf_sign_key *key);
/* The modulus size in bits (2048, ...), and the signature size in bytes
 * (the modulus in bytes: 256 for RSA-2048). */
unsigned nf_sign_key_bits(const struct nf_sign_key *key);
size_t nf_sign_key_sig_len(const struct nf_sign_key *key);
/* 1 when the key can sign. */
int nf_sign_key_is_private(const struct nf_sign_key *key);

/* Makes an RSA key pair of bits bits (0: NF_SIGN_BITS_DEFAULT; only 2048,
 * 3072 and 4096 are accepted) and writes the private key (PKCS#8 PEM, mode
 * 0600) to private_path and, unless public_path is NULL, the public key
 * (SubjectPublicKeyInfo PEM, mode 0644, the core's public.key form) to
 * public_path. Each file is written to a temporary name in its folder,
 * fsync'ed and then moved into place, so a crash leaves the old file or the
 * whole new one. An existing file is never replaced unless overwrite is 1:
 * NF_SIGN_ERR_EXISTS, and nothing written. If the public key cannot be
 * written, the new private key is removed again. */
enum nf_sign_err nf_sign_keygen(unsigned bits, const char *private_path, const char *public_path,
                                int overwrite, char *err, size_t errlen);

/* Writes the key's public half to out as SubjectPublicKeyInfo PEM, the
 * bytes `openssl pkey -pubout` writes. */
enum nf_sign_err nf_sign_pubkey_pem(const struct nf_sign_key *key, FILE *out, char *err,
                                    size_t errlen);
/* Writes to out the C header the ESP8266 core's build makes from a sketch's
 * public.key (its Updater_Signing.h: ARDUINO_SIGNING and the PEM bytes as the
 * PROGMEM array signing_pubkey), byte for byte as the core's signing tool
 * writes it for the PEM nf_sign_pubkey_pem writes. */
enum nf_sign_err nf_sign_pubkey_header(const struct nf_sign_key *key, FILE *out, char *err,
                                       size_t errlen);

/* Signs len bytes at data: writes the signature to sig (room for
 * NF_SIGN_MAX_SIG bytes) and its length to *sig_len. For building signed
 * images in memory: nf_sign_image is the file tool. */
enum nf_sign_err nf_sign_data(const struct nf_sign_key *key, const void *data, size_t len,
                              unsigned char *sig, size_t *sig_len, char *err, size_t errlen);

/* The ESP8266 flash modes, as byte 2 of an app image (0xE9 first) holds them. */
#define NF_SIGN_FLASH_UNKNOWN (-1)
#define NF_SIGN_FLASH_QIO     0
#define NF_SIGN_FLASH_QOUT    1
#define NF_SIGN_FLASH_DIO     2
#define NF_SIGN_FLASH_DOUT    3
/* "qio", "qout", "dio", "dout" (any case) to 0..3; -1 for anything else. */
int nf_sign_flash_mode_parse(const char *name);
/* "qio".."dout" for 0..3, "unknown" for anything else. Static. */
const char *nf_sign_flash_mode_name(int mode);

/* nf_sign_opts.flags */
#define NF_SIGN_FORCE          0x1u /* sign an input that already ends with a trailer */
#define NF_SIGN_SET_FLASH_MODE 0x2u /* write opts.flash_mode into byte 2 of an app image first */
#define NF_SIGN_PAD_GZIP       0x4u /* pad a gzip image to a multiple of 4 bytes first */
#define NF_SIGN_NO_OVERWRITE   0x8u /* refuse to replace an existing output file */

struct nf_sign_opts {
	unsigned flags; /* NF_SIGN_* above */
	int flash_mode; /* the devices' flash mode, or NF_SIGN_FLASH_UNKNOWN */
};

/* nf_sign_result.warnings: the library prints nothing; the caller shows
 * each bit set with nf_sign_warning_text. */
#define NF_SIGN_WARN_FLASH_MODE_UNCHECKED  0x01u  /* app image, devices' mode not given */
#define NF_SIGN_WARN_FLASH_MODE_MISMATCH   0x02u  /* byte 2 is not the devices' mode */
#define NF_SIGN_WARN_FLASH_MODE_INVALID    0x04u  /* byte 2 is no flash mode at all */
#define NF_SIGN_WARN_FLASH_MODE_SET        0x08u  /* byte 2 rewritten (NF_SIGN_SET_FLASH_MODE) */
#define NF_SIGN_WARN_UNALIGNED             0x10u  /* length not a multiple of 4 */
#define NF_SIGN_WARN_GZIP_PADDED           0x20u  /* gzip header grown (NF_SIGN_PAD_GZIP) */
#define NF_SIGN_WARN_NOT_APP_IMAGE         0x40u  /* neither an app image nor gzip */
#define NF_SIGN_WARN_RESIGNED              0x80u  /* an old trailer signed over (NF_SIGN_FORCE) */
#define NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES 0x100u /* a signed gzip breaks unsigned firmware */

/* nf_sign_result.kind, from the first bytes */
#define NF_SIGN_IMAGE_OTHER 0 /* neither: a filesystem image, or no ESP8266 image */
#define NF_SIGN_IMAGE_APP   1 /* 0xE9: an uncompressed app image */
#define NF_SIGN_IMAGE_GZIP  2 /* 0x1F 0x8B: a gzip'ed image */

struct nf_sign_result {
	unsigned warnings;    /* NF_SIGN_WARN_* bits */
	int kind;             /* NF_SIGN_IMAGE_* */
	int flash_mode_in;    /* byte 2 of an app image as read, else NF_SIGN_FLASH_UNKNOWN */
	int flash_mode;       /* byte 2 as signed, else NF_SIGN_FLASH_UNKNOWN */
	int devices_mode;     /* opts.flash_mode, copied for the warning texts */
	unsigned pad_len;     /* bytes added to a gzip header */
	uint64_t payload_len; /* bytes signed (the input, plus any padding) */
	size_t sig_len;       /* signature bytes appended */
};

/* Signs the image file in_path with the private key and writes
 * in || signature || le32(length) to out_path (a temporary file in its
 * folder, fsync'ed, then renamed: out_path may be in_path). opts may be NULL
 * (no flags, devices' mode unknown). Refuses with NF_SIGN_ERR_ALREADY_SIGNED
 * an input that already ends with a trailer for this key's size, unless
 * NF_SIGN_FORCE. Fills *res (which may be NULL) on NF_SIGN_OK, the ESP8266
 * core's traps among its warnings. Reads and writes in bounded chunks. */
enum nf_sign_err nf_sign_image(const struct nf_sign_key *key, const char *in_path,
                               const char *out_path, const struct nf_sign_opts *opts,
                               struct nf_sign_result *res, char *err, size_t errlen);
/* Writes into buf[len] the sentence for one warning bit of res (details from
 * res: modes, padding). Returns buf ("" for a bit that is not a warning). */
const char *nf_sign_warning_text(const struct nf_sign_result *res, unsigned bit, char *buf,
                                 size_t len);

/* A parsed trailer: sig_len signature bytes start at payload_len. */
struct nf_sign_trailer {
	uint64_t payload_len;
	uint32_t sig_len;
};

/* Reads the trailer of an image of image_len bytes (any value, even one that
 * could not be in memory) whose last 4 bytes are last4, for a key whose
 * signatures are key_sig_len bytes and a minimum key size of min_bits
 * (0: NF_SIGN_MIN_BITS). Returns, in this order of checks:
 * NF_SIGN_ERR_NO_TRAILER when image_len < 4 or the length field is 0 or above
 * NF_SIGN_MAX_SIG; NF_SIGN_ERR_KEY_TOO_SMALL when the field is the size of a
 * signature by a key under min_bits; NF_SIGN_ERR_BAD_LENGTH when it is not
 * key_sig_len; NF_SIGN_ERR_TRUNCATED when image_len < length + 4; else
 * NF_SIGN_OK with *t filled. Pure: no I/O, no heap. */
enum nf_sign_err nf_sign_trailer_parse(const unsigned char last4[NF_SIGN_LEN_FIELD],
                                       uint64_t image_len, size_t key_sig_len, unsigned min_bits,
                                       struct nf_sign_trailer *t);

/* A streaming verifier: feed a signed image in chunks of any size, then ask.
 * Holds back only the last signature + 4 bytes, so memory stays bounded
 * whatever the image size. */
struct nf_sign_verifier;
/* Returns a new verifier for key (which must outlive it), or NULL when out
 * of memory. Freed by nf_sign_verifier_free. */
struct nf_sign_verifier *nf_sign_verifier_new(const struct nf_sign_key *key);
/* Feeds the next len bytes. Returns NF_SIGN_OK or NF_SIGN_ERR_CRYPTO. */
enum nf_sign_err nf_sign_verifier_update(struct nf_sign_verifier *v, const void *data, size_t len);
/* After the last byte: parses the trailer (nf_sign_trailer_parse, with the
 * key's minimum) and checks the signature. NF_SIGN_OK fills *t (may be
 * NULL). Call once; then only nf_sign_verifier_free. */
enum nf_sign_err nf_sign_verifier_final(struct nf_sign_verifier *v, struct nf_sign_trailer *t,
                                        char *err, size_t errlen);
void nf_sign_verifier_free(struct nf_sign_verifier *v);

/* Verifies the signed image in data[len], in the open file fd (read from its
 * current offset to its end, in bounded chunks; fd stays open), or in the file
 * at path. NF_SIGN_OK fills *t (may be NULL): the payload is the first
 * t->payload_len bytes. Failures: NF_SIGN_ERR_NO_TRAILER, _TRUNCATED,
 * _BAD_LENGTH, _KEY_TOO_SMALL, _BAD_SIGNATURE (another key, or altered
 * bytes), _IO. */
enum nf_sign_err nf_sign_verify_mem(const struct nf_sign_key *key, const void *data, size_t len,
                                    struct nf_sign_trailer *t, char *err, size_t errlen);
enum nf_sign_err nf_sign_verify_fd(const struct nf_sign_key *key, int fd, struct nf_sign_trailer *t,
                                   char *err, size_t errlen);
enum nf_sign_err nf_sign_verify_file(const struct nf_sign_key *key, const char *path,
                                     struct nf_sign_trailer *t, char *err, size_t errlen);

#endif /* NOFUSS_COMMON_H */
