/*
 * image.c - the simulated ESP8266's image format: what `nofuss mkimage`
 * writes, what the simulator's bootloader verifies before it boots a slot,
 * and where a running firmware reads its own version.
 *
 * A firmware image looks like a real one to everything that inspects the
 * first bytes (the ESP updater, nofussd, esptool): an ESP8266 image header
 * (0xE9, one segment, flash mode, flash size/frequency, entry point), one
 * segment whose data is the NoFUSS metadata block, the ESP checksum byte,
 * then a payload up to the image's size. A filesystem image starts with its
 * own metadata block. The metadata carries the version, the device, flags
 * ("crashes at boot") and the MD5 of the payload, so a torn or mixed image is
 * caught by the bootloader as it would be by a real image check.
 *
 * Layout (little-endian; on flash and on the wire: do not change):
 *
 *   firmware  0 0xE9 | 1 segments=1 | 2 flash mode | 3 size<<4|freq
 *             4 entry point (u32)   | 8 segment load address (u32)
 *             12 segment size = 96 (u32) | 16 metadata (96 bytes)
 *             112..126 zero | 127 checksum (0xEF xor the segment's bytes)
 *   filesystem 0 metadata (96 bytes) | 96..127 zero
 *   both      128.. payload (a byte pattern drawn from the metadata)
 *
 *   metadata  0 magic "NOFUSSv1" (firmware) or "NOFUSSFS" (filesystem)
 *             8 flags (u32) | 12 image size (u32) | 16 version (32, NUL-padded)
 *             48 device (32, NUL-padded) | 80 MD5 of bytes [128, size)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common.h"
#include "nofuss/posix.h"

#define ESP_MAGIC         0xE9
#define ESP_CHECKSUM_SEED 0xEF
#define OFF_ENTRY         4
#define OFF_SEG_ADDR      8
#define OFF_SEG_SIZE      12
#define OFF_META_FW       16
#define OFF_CHECKSUM      127
#define META_SIZE         96
#define META_MAGIC        0
#define META_FLAGS        8
#define META_SIZE_FIELD   12
#define META_VERSION      16
#define META_DEVICE       48
#define META_MD5          80
#define MAGIC_LEN         8
#define SEG_LOAD_ADDR     0x40100000u /* IRAM, where an ESP8266 sketch's code goes */
#define ENTRY_POINT       0x40100004u
#define READ_CHUNK        65536u

static const char magic_fw[MAGIC_LEN + 1] = "NOFUSSv1";
static const char magic_fs[MAGIC_LEN + 1] = "NOFUSSFS";

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A version or device: printable ASCII without spaces or '/', because it
 * travels in a URL path and in HTTP headers (docs/PEERS.md sections 1, 2). */
static bool field_ok(const char *s, bool may_be_empty)
{
	size_t n = strlen(s);

	if (n >= NF_POSIX_IMAGE_FIELD || (n == 0 && !may_be_empty))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/')
			return false;
	return true;
}

/* Reads a NUL-padded field; false when it has no NUL or bad characters. */
static bool get_field(const uint8_t *p, char *out, bool may_be_empty)
{
	if (memchr(p, '\0', NF_POSIX_IMAGE_FIELD) == NULL)
		return false;
	memcpy(out, p, NF_POSIX_IMAGE_FIELD);
	return field_ok(out, may_be_empty);
}

/* The payload: a pattern seeded from the metadata (FNV-1a, then xorshift32),
 * so that images of different versions differ everywhere. */
static void fill_payload(uint8_t *p, size_t len, const uint8_t *meta)
{
	uint32_t x = 2166136261u;

	for (size_t i = 0; i < META_MD5; i++)
		x = (x ^ meta[i]) * 16777619u;
	if (x == 0)
		x = 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static uint8_t esp_checksum(const uint8_t *data, size_t len)
{
	uint8_t sum = ESP_CHECKSUM_SEED;

	for (size_t i = 0; i < len; i++)
		sum ^= data[i];
	return sum;
}

int nf_posix_image_build(struct nf_posix_image *info, uint8_t *buf, size_t cap, char *err,
                         size_t errcap)
{
	bool fw = info->kind == NF_IMAGE_FIRMWARE;
	uint8_t *meta = buf + (fw ? OFF_META_FW : 0);
	unsigned int mdlen = 0;

	if (info->size < NF_POSIX_IMAGE_MIN || info->size > NF_POSIX_FLASH_SIZE_MAX) {
		nf_errf(err, errcap, "image size %u is out of range (%u to %u bytes)", info->size,
		     NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX);
		return -1;
	}
	if (cap < info->size) {
		nf_errf(err, errcap, "buffer of %zu bytes is too small", cap);
		return -1;
	}
	if (!field_ok(info->version, false)) {
		nf_errf(err, errcap, "version must be 1 to %u printable characters, no spaces or '/'",
		     NF_POSIX_IMAGE_FIELD - 1);
		return -1;
	}
	if (!field_ok(info->device, true)) {
		nf_errf(err, errcap,
		     "device must be at most %u printable characters, no spaces or '/'",
		     NF_POSIX_IMAGE_FIELD - 1);
		return -1;
	}
	if ((info->flags & ~NF_POSIX_IMAGE_FLAGS) != 0 || (!fw && info->flags != 0)) {
		nf_errf(err, errcap, "unknown image flags 0x%x", info->flags);
		return -1;
	}
	if (fw &&
	    (info->flash_mode > 3 || nf_posix_image_flash_bytes(info->flash_size_freq) == 0)) {
		nf_errf(err, errcap, "bad flash mode %u or flash size code 0x%02x", info->flash_mode,
		     info->flash_size_freq);
		return -1;
	}

	memset(buf, 0, NF_POSIX_IMAGE_MIN);
	memcpy(meta + META_MAGIC, fw ? magic_fw : magic_fs, MAGIC_LEN);
	put32(meta + META_FLAGS, info->flags);
	put32(meta + META_SIZE_FIELD, info->size);
	memcpy(meta + META_VERSION, info->version, strlen(info->version));
	memcpy(meta + META_DEVICE, info->device, strlen(info->device));
	fill_payload(buf + NF_POSIX_IMAGE_MIN, info->size - NF_POSIX_IMAGE_MIN, meta);
	if (EVP_Digest(buf + NF_POSIX_IMAGE_MIN, info->size - NF_POSIX_IMAGE_MIN, info->payload_md5,
	               &mdlen, EVP_md5(), NULL) != 1 ||
	    mdlen != 16) {
		nf_errf(err, errcap, "MD5 failed (OpenSSL)");
		return -1;
	}
	memcpy(meta + META_MD5, info->payload_md5, 16);
	if (fw) {
		buf[0] = ESP_MAGIC;
		buf[1] = 1; /* one segment */
		buf[2] = info->flash_mode;
		buf[3] = info->flash_size_freq;
		put32(buf + OFF_ENTRY, ENTRY_POINT);
		put32(buf + OFF_SEG_ADDR, SEG_LOAD_ADDR);
		put32(buf + OFF_SEG_SIZE, META_SIZE);
		buf[OFF_CHECKSUM] = esp_checksum(meta, META_SIZE);
	}
	return 0;
}

int nf_posix_image_parse(const uint8_t *buf, size_t len, struct nf_posix_image *info, char *err,
                         size_t errcap)
{
	const uint8_t *meta;

	memset(info, 0, sizeof *info);
	if (len < NF_POSIX_IMAGE_MIN) {
		nf_errf(err, errcap, "%zu bytes: shorter than an image's %u-byte header", len,
		     NF_POSIX_IMAGE_MIN);
		return -1;
	}
	if (buf[0] == ESP_MAGIC) {
		info->kind = NF_IMAGE_FIRMWARE;
		meta = buf + OFF_META_FW;
		if (memcmp(meta, magic_fw, MAGIC_LEN) != 0) {
			nf_errf(err, errcap, "an ESP8266 image without NoFUSS simulator metadata");
			return -1;
		}
		if (buf[1] != 1 || get32(buf + OFF_SEG_ADDR) != SEG_LOAD_ADDR ||
		    get32(buf + OFF_SEG_SIZE) != META_SIZE) {
			nf_errf(err, errcap, "bad ESP8266 segment header");
			return -1;
		}
		if (buf[2] > 3 || nf_posix_image_flash_bytes(buf[3]) == 0) {
			nf_errf(err, errcap, "bad flash mode %u or flash size code 0x%02x", buf[2],
			     buf[3]);
			return -1;
		}
		if (buf[OFF_CHECKSUM] != esp_checksum(meta, META_SIZE)) {
			nf_errf(err, errcap, "bad ESP8266 image checksum");
			return -1;
		}
		info->flash_mode = buf[2];
		info->flash_size_freq = buf[3];
	} else if (memcmp(buf, magic_fs, MAGIC_LEN) == 0) {
		info->kind = NF_IMAGE_FILESYSTEM;
		meta = buf;
	} else {
		nf_errf(err, errcap, "not a NoFUSS simulator image (first byte 0x%02x)", buf[0]);
		return -1;
	}
	info->flags = get32(meta + META_FLAGS);
	info->size = get32(meta + META_SIZE_FIELD);
	/* Flags are the firmware's (a crash at boot): nf_posix_image_build never
	 * writes them into a filesystem image, so the parser refuses them too. */
	if ((info->flags & ~NF_POSIX_IMAGE_FLAGS) != 0 ||
	    (info->kind == NF_IMAGE_FILESYSTEM && info->flags != 0)) {
		nf_errf(err, errcap, "unknown image flags 0x%x", info->flags);
		return -1;
	}
	if (info->size < NF_POSIX_IMAGE_MIN || info->size > NF_POSIX_FLASH_SIZE_MAX) {
		nf_errf(err, errcap, "recorded image size %u is out of range", info->size);
		return -1;
	}
	if (!get_field(meta + META_VERSION, info->version, false) ||
	    !get_field(meta + META_DEVICE, info->device, true)) {
		nf_errf(err, errcap, "bad version or device field");
		return -1;
	}
	memcpy(info->payload_md5, meta + META_MD5, 16);
	return 0;
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

int nf_posix_image_verify_file(int dirfd, const char *name, uint32_t max,
                               struct nf_posix_image *info, uint8_t md5[16], char *err,
                               size_t errcap)
{
	static const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
	uint8_t buf[READ_CHUNK];
	uint8_t digest[16];
	EVP_MD_CTX *whole = NULL, *payload = NULL;
	struct stat st;
	uint32_t left;
	int fd, rc = -1, saved = EINVAL;

	fd = openat(dirfd, name, flags);
	if (fd < 0) {
		saved = errno;
		nf_errf(err, errcap, "%s: %s", name, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		nf_errf(err, errcap, "%s: not a regular file", name);
		goto done;
	}
	if (st.st_size < (off_t)NF_POSIX_IMAGE_MIN || st.st_size > (off_t)max) {
		nf_errf(err, errcap, "%s: %lld bytes, not within %u..%u", name, (long long)st.st_size,
		     NF_POSIX_IMAGE_MIN, max);
		goto done;
	}
	if (read_full(fd, buf, NF_POSIX_IMAGE_MIN) != 0) {
		saved = EIO;
		nf_errf(err, errcap, "%s: read failed", name);
		goto done;
	}
	if (nf_posix_image_parse(buf, NF_POSIX_IMAGE_MIN, info, err, errcap) != 0)
		goto done;
	if ((off_t)info->size != st.st_size && !nf_posix_signed_tail(fd, info->size, st.st_size)) {
		nf_errf(err, errcap, "%s: %lld bytes, but the image says %u (torn write?)", name,
		     (long long)st.st_size, info->size);
		goto done;
	}
	whole = EVP_MD_CTX_new();
	payload = EVP_MD_CTX_new();
	if (whole == NULL || payload == NULL || EVP_DigestInit_ex(whole, EVP_md5(), NULL) != 1 ||
	    EVP_DigestInit_ex(payload, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(whole, buf, NF_POSIX_IMAGE_MIN) != 1) {
		saved = ENOMEM;
		nf_errf(err, errcap, "MD5 failed (OpenSSL)");
		goto done;
	}
	for (left = info->size - NF_POSIX_IMAGE_MIN; left > 0;) {
		uint32_t n = left < READ_CHUNK ? left : READ_CHUNK;
		if (read_full(fd, buf, n) != 0) {
			saved = EIO;
			nf_errf(err, errcap, "%s: read failed", name);
			goto done;
		}
		EVP_DigestUpdate(whole, buf, n);
		EVP_DigestUpdate(payload, buf, n);
		left -= n;
	}
	if (EVP_DigestFinal_ex(payload, digest, NULL) != 1 ||
	    memcmp(digest, info->payload_md5, 16) != 0) {
		nf_errf(err, errcap, "%s: payload MD5 mismatch (corrupt or mixed image)", name);
		goto done;
	}
	if (md5 != NULL && EVP_DigestFinal_ex(whole, md5, NULL) != 1) {
		saved = ENOMEM;
		nf_errf(err, errcap, "MD5 failed (OpenSSL)");
		goto done;
	}
	rc = 0;
done:
	EVP_MD_CTX_free(whole);
	EVP_MD_CTX_free(payload);
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		errno = saved;
	return rc;
}

/* ESP8266 flash size codes, header byte 3's high nibble (esptool's table). */
static const struct {
	uint8_t code;
	uint32_t bytes;
} flash_sizes[] = {
    {0x0, 512u * 1024u},  {0x1, 256u * 1024u},  {0x2, 1024u * 1024u},
    {0x3, 2048u * 1024u}, {0x4, 4096u * 1024u}, {0x5, 2048u * 1024u},
    {0x6, 4096u * 1024u}, {0x8, 8192u * 1024u}, {0x9, 16384u * 1024u},
};

uint32_t nf_posix_image_flash_bytes(uint8_t size_freq)
{
	uint8_t freq = size_freq & 0x0F;

	/* Frequencies: 0 40 MHz, 1 26 MHz, 2 20 MHz, 0xF 80 MHz. */
	if (freq != 0x0 && freq != 0x1 && freq != 0x2 && freq != 0xF)
		return 0;
	for (size_t i = 0; i < sizeof flash_sizes / sizeof flash_sizes[0]; i++)
		if (flash_sizes[i].code == size_freq >> 4)
			return flash_sizes[i].bytes;
	return 0;
}

int nf_posix_image_flash_code(uint32_t bytes)
{
	/* The first code for a size: the plain layouts, not the "-c1" ones. */
	for (size_t i = 0; i < sizeof flash_sizes / sizeof flash_sizes[0]; i++)
		if (flash_sizes[i].bytes == bytes)
			return flash_sizes[i].code;
	return -1;
}
